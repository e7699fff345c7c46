/*
 * training.c -- builds the training graph from a forward graph.
 *
 * Reads: forward ops ops[0..nfwd_ops), their labels and shapes.
 * Writes: appended ops, in this order:
 *   backward ops, visiting forward ops in reverse (a topological order
 *     again, since a gradient is complete once all consumers are done);
 *   one `accumulate` per weight (gradient accumulation over microbatches);
 *   one `adam` per weight (mixed precision: the compute-dtype weight is
 *     rewritten from an fp32 master copy and fp32 moments m, v).
 * Backward ops reuse the forward op's label letters, so the sharding pass
 * sees the same logical dims in both directions.  The backward of an
 * einsum is two einsums with the same label set, hence 2x its FLOPs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

typedef struct {
	IrGraph *g;
	int *grad;       /* tensor -> its gradient tensor, -1 none yet */
	bool *needs;     /* tensor depends on a weight */
	bool plain;      /* next emit() has no local labels (gradient sums) */
	IrError *e;
	bool failed;     /* an emit() failed: e says why */
} Builder;

/* New tensor shaped like `like`, for gradients. */
static int grad_tensor(Builder *b, int like, const char *suffix, IrRole role)
{
	IrGraph *g = b->g;
	IrTensor t = g->tensors[like];
	char name[300];
	snprintf(name, sizeof name, "%s:%s", t.name, suffix);
	int id = ir_graph_add_tensor(g, name, t.ndim, t.dim, t.dtype == IR_I32 ? IR_F32 : t.dtype,
				     role, g->tensors[like].layer, 0);
	return id;
}

/* Appends a backward op of forward op f. */
static int emit(Builder *b, int f, IrOpKind kind, const char *fn, int nin, const int *in,
		const char *const *lab_in, int nout, const int *out, const char *const *lab_out,
		int64_t variant, const char *suffix)
{
	IrGraph *g = b->g;
	const IrOp *fo = &g->ops[f];
	IrOp op;
	memset(&op, 0, sizeof op);
	op.kind = kind;
	op.phase = IR_BWD;
	op.fn = fn;
	op.nin = nin;
	op.nout = nout;
	for (int k = 0; k < nin; k++) {
		op.in[k] = in[k];
		snprintf(op.lab[k], sizeof op.lab[k], "%s", lab_in[k]);
	}
	for (int k = 0; k < nout; k++) {
		op.out[k] = out[k];
		snprintf(op.lab[nin + k], sizeof op.lab[0], "%s", lab_out[k]);
	}
	op.local = b->plain ? 0 : fo->local;
	b->plain = false;
	op.layer = fo->layer;
	op.fwd = f;
	op.attr[0] = fo->attr[0];
	op.attr[1] = fo->attr[1];
	op.attr[2] = variant;
	op.name = ir_strfmt(&g->arena, "%s:%s", fo->name, suffix);
	int id = ir_graph_add_op(g, &op, b->e);
	if (id < 0 && !b->failed)
		b->failed = true; /* the first error is kept in b->e */
	return id;
}

/* Adds contribution c to the gradient of tensor x. */
static void contribute(Builder *b, int f, int x, int c)
{
	IrGraph *g = b->g;
	if (b->grad[x] < 0) {
		b->grad[x] = c;
		return;
	}
	/* Sum of two gradients of the same shape: labels are the dims in order. */
	char lab[IR_MAX_DIMS + 1];
	int nd = g->tensors[x].ndim;
	for (int d = 0; d < nd; d++)
		lab[d] = (char)('a' + d);
	lab[nd] = 0;
	int sum = grad_tensor(b, x, "gsum", g->tensors[c].role);
	int in[2] = {b->grad[x], c};
	const char *labs[2] = {lab, lab};
	const char *lo[1] = {lab};
	b->plain = true;
	emit(b, f, IR_ELEMENTWISE, "add", 2, in, labs, 1, &sum, lo, 0, "gsum");
	b->grad[x] = sum;
}

/* Gradient of input k of an elementwise/broadcasting op from a full-shape
 * gradient `full` (labels of the output): reduce over broadcast dims. */
static int unbroadcast(Builder *b, int f, int k, int full)
{
	IrGraph *g = b->g;
	const IrOp *fo = &g->ops[f];
	int x = fo->in[k];
	/* same shape: nothing to reduce (broadcast dims of size 1 still are:
	 * a [s,h] weight added to a [1,s,h] activation gets a [s,h] gradient) */
	if (g->tensors[x].ndim == g->tensors[full].ndim &&
	    ir_tensor_numel(&g->tensors[x]) == ir_tensor_numel(&g->tensors[full]))
		return full;
	int dx = grad_tensor(b, x, "grad", IR_T_GRAD);
	const char *li[1] = {fo->lab[fo->nin]};
	const char *lo[1] = {fo->lab[k]};
	emit(b, f, IR_REDUCE, "sum", 1, &full, li, 1, &dx, lo, 0, "unbroadcast");
	return dx;
}

static int backward_op(Builder *b, int f)
{
	IrGraph *g = b->g;
	IrOp fo = g->ops[f]; /* copy: emit() may grow g->ops */
	int y = fo.out[0];
	int dy = b->grad[y];
	const char *ly = fo.lab[fo.nin];
	if (fo.kind == IR_LOSS) {
		if (!b->needs[fo.in[0]])
			return 0;
		int dz = grad_tensor(b, fo.in[0], "grad", IR_T_GRAD);
		const char *li[2] = {fo.lab[0], fo.lab[1]};
		const char *lo[1] = {fo.lab[0]};
		emit(b, f, IR_LOSS, NULL, 2, fo.in, li, 1, &dz, lo, 0, "dlogits");
		contribute(b, f, fo.in[0], dz);
		return 0;
	}
	if (dy < 0)
		return 0; /* output does not reach the loss */

	for (int k = 0; k < fo.nin; k++) {
		int x = fo.in[k];
		if (!b->needs[x])
			continue;
		bool is_w = g->tensors[x].role == IR_T_WEIGHT;
		char suffix[16];
		snprintf(suffix, sizeof suffix, "d%s%d", is_w ? "W" : "X", k);
		IrRole role = IR_T_GRAD;
		int dx = -1;
		switch (fo.kind) {
		case IR_EINSUM: {
			dx = grad_tensor(b, x, "grad", role);
			if (fo.nin == 2) {
				int other = fo.in[1 - k];
				int in[2] = {dy, other};
				const char *li[2] = {ly, fo.lab[1 - k]};
				const char *lo[1] = {fo.lab[k]};
				emit(b, f, IR_EINSUM, NULL, 2, in, li, 1, &dx, lo, 0, suffix);
			} else {
				const char *li[1] = {ly};
				const char *lo[1] = {fo.lab[0]};
				emit(b, f, IR_EINSUM, NULL, 1, &dy, li, 1, &dx, lo, 0, suffix);
			}
			break;
		}
		case IR_ELEMENTWISE: {
			const char *fn = fo.fn;
			if (!strcmp(fn, "add") || !strcmp(fn, "sub")) {
				dx = unbroadcast(b, f, k, dy);
			} else if (!strcmp(fn, "mul") || !strcmp(fn, "div")) {
				int full = grad_tensor(b, y, "part", role);
				int in[2] = {dy, fo.in[1 - k]};
				const char *li[2] = {ly, fo.lab[1 - k]};
				const char *lo[1] = {ly};
				emit(b, f, IR_ELEMENTWISE, "mul", 2, in, li, 1, &full, lo, 0,
				     suffix);
				dx = unbroadcast(b, f, k, full);
			} else {
				dx = grad_tensor(b, x, "grad", role);
				int in[2] = {dy, x};
				const char *li[2] = {ly, fo.lab[0]};
				const char *lo[1] = {fo.lab[0]};
				emit(b, f, IR_ELEMENTWISE, ir_strfmt(&g->arena, "%s_grad", fn), 2,
				     in, li, 1, &dx, lo, 0, suffix);
			}
			break;
		}
		case IR_REDUCE: {
			dx = grad_tensor(b, x, "grad", role);
			const char *li[1] = {ly};
			const char *lo[1] = {fo.lab[0]};
			emit(b, f, IR_REDUCE, "broadcast", 1, &dy, li, 1, &dx, lo, 0, suffix);
			break;
		}
		case IR_SOFTMAX: {
			dx = grad_tensor(b, x, "grad", role);
			int in[2] = {dy, y};
			const char *li[2] = {ly, ly};
			const char *lo[1] = {fo.lab[0]};
			emit(b, f, IR_SOFTMAX, NULL, 2, in, li, 1, &dx, lo, 0, suffix);
			break;
		}
		case IR_LAYERNORM:
		case IR_RMSNORM: {
			if (k == 0) {
				dx = grad_tensor(b, x, "grad", role);
				int in[3] = {dy, x, fo.in[1]};
				const char *li[3] = {ly, fo.lab[0], fo.lab[1]};
				const char *lo[1] = {fo.lab[0]};
				emit(b, f, fo.kind, NULL, 3, in, li, 1, &dx, lo, 0, suffix);
				break;
			}
			if (k == 1) {
				/* one op yields the scale and bias gradients together */
				int nout = fo.nin - 1, outs[2];
				const char *lo[2] = {fo.lab[1], fo.lab[1]};
				for (int j = 0; j < nout; j++)
					outs[j] = grad_tensor(b, fo.in[1 + j], "grad", role);
				int in[2] = {dy, fo.in[0]};
				const char *li[2] = {ly, fo.lab[0]};
				emit(b, f, fo.kind, NULL, 2, in, li, nout, outs, lo, 1, "dW");
				for (int j = 0; j < nout; j++)
					if (b->needs[fo.in[1 + j]])
						contribute(b, f, fo.in[1 + j], outs[j]);
			}
			continue; /* beta's gradient came with gamma's */
		}
		case IR_GATHER: {
			if (k != 0)
				continue;
			dx = grad_tensor(b, x, "grad", role);
			int in[2] = {dy, fo.in[1]};
			const char *li[2] = {ly, fo.lab[1]};
			const char *lo[1] = {fo.lab[0]};
			emit(b, f, IR_GATHER, NULL, 2, in, li, 1, &dx, lo, 0, suffix);
			break;
		}
		case IR_TRANSPOSE:
		case IR_RESHAPE: {
			dx = grad_tensor(b, x, "grad", role);
			const char *li[1] = {ly};
			const char *lo[1] = {fo.lab[0]};
			emit(b, f, fo.kind, NULL, 1, &dy, li, 1, &dx, lo, 0, suffix);
			break;
		}
		case IR_CONV2D: {
			dx = grad_tensor(b, x, "grad", role);
			int in[2] = {k == 0 ? dy : fo.in[0], k == 0 ? fo.in[1] : dy};
			const char *li[2] = {k == 0 ? ly : fo.lab[0], k == 0 ? fo.lab[1] : ly};
			const char *lo[1] = {fo.lab[k]};
			emit(b, f, IR_CONV2D, NULL, 2, in, li, 1, &dx, lo, k, suffix);
			break;
		}
		case IR_POOL: {
			dx = grad_tensor(b, x, "grad", role);
			int in[2] = {dy, x};
			const char *li[2] = {ly, fo.lab[0]};
			const char *lo[1] = {fo.lab[0]};
			emit(b, f, IR_POOL, fo.fn, 2, in, li, 1, &dx, lo, 0, suffix);
			break;
		}
		default:
			return ir_fail(b->e, g->file, fo.line, "no backward rule for %s",
				       ir_op_kind_name(fo.kind));
		}
		if (dx >= 0)
			contribute(b, f, x, dx);
	}
	return 0;
}

/* accumulate + adam for one weight. */
static void update_weight(Builder *b, int w)
{
	IrGraph *g = b->g;
	IrTensor wt = g->tensors[w];
	char lab[IR_MAX_DIMS + 1];
	for (int d = 0; d < wt.ndim; d++)
		lab[d] = (char)('a' + d);
	lab[wt.ndim] = 0;

	IrOp op;
	memset(&op, 0, sizeof op);
	op.phase = IR_BWD;
	op.layer = wt.layer;
	op.fwd = -1;
	int acc = ir_graph_add_tensor(g, ir_strfmt(&g->arena, "%s:grad", wt.name), wt.ndim,
				      wt.dim, wt.dtype, IR_T_WGRAD, wt.layer, 0);
	g->tensors[acc].weight = w;
	op.kind = IR_ACCUM;
	op.nin = 1;
	op.in[0] = b->grad[w];
	op.nout = 1;
	op.out[0] = acc;
	strcpy(op.lab[0], lab);
	strcpy(op.lab[1], lab);
	op.name = ir_strfmt(&g->arena, "%s:accumulate", wt.name);
	if (ir_graph_add_op(g, &op, b->e) < 0)
		b->failed = true;

	static const char *state[3] = {"master", "adam_m", "adam_v"};
	int st[3];
	for (int i = 0; i < 3; i++) {
		st[i] = ir_graph_add_tensor(g, ir_strfmt(&g->arena, "%s:%s", wt.name, state[i]),
					    wt.ndim, wt.dim, IR_F32, IR_T_OPT, wt.layer, 0);
		g->tensors[st[i]].weight = w;
	}
	int neww = ir_graph_add_tensor(g, ir_strfmt(&g->arena, "%s:updated", wt.name), wt.ndim,
				       wt.dim, wt.dtype, IR_T_WEIGHT, wt.layer, 0);
	g->tensors[neww].weight = w;
	memset(&op, 0, sizeof op);
	op.kind = IR_ADAM;
	op.phase = IR_UPDATE;
	op.layer = wt.layer;
	op.fwd = -1;
	op.nin = 4;
	op.in[0] = acc;
	for (int i = 0; i < 3; i++)
		op.in[1 + i] = st[i];
	op.nout = 1;
	op.out[0] = neww;
	for (int k = 0; k < 5; k++)
		strcpy(op.lab[k], lab);
	op.name = ir_strfmt(&g->arena, "%s:adam", wt.name);
	if (ir_graph_add_op(g, &op, b->e) < 0)
		b->failed = true;
}

int ir_build_training(IrGraph *g, IrError *e)
{
	if (g->training)
		return 0;
	if (g->loss < 0)
		return ir_fail(e, g->file, 0, "the model has no loss op");
	int nt = g->ntensors;
	Builder b = {g, ir_xmalloc(sizeof(int) * (size_t)nt), ir_xcalloc((size_t)nt, sizeof(bool)), false, e, false};
	for (int i = 0; i < nt; i++) {
		b.grad[i] = -1;
		b.needs[i] = g->tensors[i].role == IR_T_WEIGHT;
	}
	for (int i = 0; i < g->nfwd_ops; i++) {
		const IrOp *op = &g->ops[i];
		bool any = false;
		for (int k = 0; k < op->nin; k++)
			any |= b.needs[op->in[k]];
		for (int k = 0; k < op->nout; k++)
			b.needs[op->out[k]] = any;
	}
	int rc = 0;
	for (int i = g->nfwd_ops - 1; i >= 0 && !rc; i--)
		if (g->ops[i].phase == IR_FWD)
			rc = backward_op(&b, i) || b.failed ? -1 : 0;
	for (int w = 0; w < nt && !rc; w++)
		if (g->tensors[w].role == IR_T_WEIGHT && b.grad[w] >= 0) {
			update_weight(&b, w);
			rc = b.failed ? -1 : 0;
		}
	free(b.grad);
	free(b.needs);
	if (!rc)
		g->training = true;
	return rc;
}

int ir_model_training(const IrModelDoc *m, const IrParamSet *overrides, int64_t batch,
		      IrGraph *g, IrError *e)
{
	IrParamSet ps = {0};
	if (overrides)
		ps = *overrides;
	if (ir_params_set(&ps, "batch", batch))
		return ir_fail(e, ir_model_file(m), 0, "too many parameter overrides");
	if (ir_model_instantiate(m, &ps, g, e))
		return -1;
	if (ir_build_training(g, e)) {
		ir_graph_free(g);
		return -1;
	}
	return 0;
}
