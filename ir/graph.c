/*
 * graph.c -- the tensor graph: growing its arrays, inferring a forward
 * op's output shape and operand labels, and each kind's FLOPs and bytes.
 *
 * Labels: every operand dim gets a letter; the same letter across operands
 * is the same logical dim.  Passes read only labels and sizes, so one
 * generic rule derives sharding strategies for every kind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

void ir_graph_init(IrGraph *g, const char *name)
{
	memset(g, 0, sizeof *g);
	g->name = ir_strdup(&g->arena, name ? name : "model");
	g->loss = -1;
	g->batch = 1;
	g->seq = 1;
}

void ir_graph_free(IrGraph *g)
{
	free(g->tensors);
	free(g->ops);
	free(g->layers);
	ir_arena_free(&g->arena);
	memset(g, 0, sizeof *g);
}

static void *grow(void *p, int *cap, int need, size_t elem)
{
	if (need <= *cap)
		return p;
	int n = *cap ? *cap : 64;
	while (n < need)
		n *= 2;
	void *q = ir_xrealloc(p, (size_t)n * elem);
	if (!q) {
		fputs("meshplan: out of memory\n", stderr);
		abort();
	}
	*cap = n;
	return q;
}

int ir_graph_add_layer(IrGraph *g, const char *name)
{
	g->layers = grow(g->layers, &g->cap_layers, g->nlayers + 1, sizeof *g->layers);
	g->layers[g->nlayers] = (IrLayer){name, g->nops, g->nops - 1};
	return g->nlayers++;
}

int ir_graph_add_tensor(IrGraph *g, const char *name, int ndim, const int64_t *dim, IrDType dt,
			IrRole role, int layer, int line)
{
	g->tensors = grow(g->tensors, &g->cap_tensors, g->ntensors + 1, sizeof *g->tensors);
	IrTensor *t = &g->tensors[g->ntensors];
	memset(t, 0, sizeof *t);
	t->name = ir_strdup(&g->arena, name);
	t->ndim = ndim;
	for (int i = 0; i < ndim; i++)
		t->dim[i] = dim[i];
	t->dtype = dt;
	t->role = role;
	t->producer = -1;
	t->layer = layer;
	t->weight = -1;
	t->line = line;
	return g->ntensors++;
}

int ir_graph_add_op(IrGraph *g, IrOp *proto, IrError *e)
{
	(void)e;
	g->ops = grow(g->ops, &g->cap_ops, g->nops + 1, sizeof *g->ops);
	int id = g->nops++;
	IrOp *op = &g->ops[id];
	*op = *proto;
	if (op->phase == IR_FWD)
		op->fwd = id;
	for (int i = 0; i < op->nout; i++)
		g->tensors[op->out[i]].producer = id;
	op->flops = ir_op_flops(g, op);
	op->bytes = ir_op_bytes(g, op);
	return id;
}

/* ---- label helpers ---- */

static const char LETTERS[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/* Next letter not yet used by any operand label of op. */
static char fresh_label(const IrOp *op, uint64_t *used)
{
	for (int i = 0; LETTERS[i]; i++) {
		uint64_t b = ir_label_bit(LETTERS[i]);
		if (!(*used & b)) {
			*used |= b;
			return LETTERS[i];
		}
	}
	(void)op;
	return 0;
}

static void seq_labels(char *lab, int n, uint64_t *used, const IrOp *op)
{
	for (int i = 0; i < n; i++)
		lab[i] = fresh_label(op, used);
	lab[n] = 0;
}

int64_t ir_op_label_size(const IrGraph *g, const IrOp *op, char label)
{
	for (int k = 0; k < op->nin + op->nout; k++) {
		const IrTensor *t = &g->tensors[k < op->nin ? op->in[k] : op->out[k - op->nin]];
		for (int d = 0; op->lab[k][d]; d++)
			if (op->lab[k][d] == label && d < t->ndim)
				return t->dim[d];
	}
	return 0;
}

#define FAIL(...) ir_fail(e, g->file, op->line, __VA_ARGS__)

int ir_einsum_parse(const IrGraph *g, IrOp *op, const char *spec, IrError *e)
{
	const char *arrow = strstr(spec, "->");
	if (!arrow)
		return FAIL("einsum spec '%s' has no '->'", spec);
	int k = 0, n = 0;
	for (const char *p = spec; p < arrow; p++) {
		if (*p == ',') {
			op->lab[k][n] = 0;
			if (++k >= IR_MAX_IN)
				return FAIL("einsum spec '%s' has too many inputs", spec);
			n = 0;
		} else if (ir_label_bit(*p)) {
			if (n >= IR_MAX_DIMS)
				return FAIL("einsum spec '%s' has too many dims", spec);
			op->lab[k][n++] = *p;
		} else if (*p != ' ')
			return FAIL("einsum spec '%s': '%c' is not a label letter", spec, *p);
	}
	op->lab[k][n] = 0;
	if (k + 1 != op->nin)
		return FAIL("einsum spec '%s' names %d inputs but the op has %d", spec, k + 1,
			    op->nin);
	n = 0;
	for (const char *p = arrow + 2; *p; p++) {
		if (ir_label_bit(*p)) {
			if (n >= IR_MAX_DIMS)
				return FAIL("einsum spec '%s' has too many dims", spec);
			op->lab[op->nin][n++] = *p;
		} else if (*p != ' ')
			return FAIL("einsum spec '%s': '%c' is not a label letter", spec, *p);
	}
	op->lab[op->nin][n] = 0;
	return 0;
}

/* Checks an einsum's labels against its input shapes; computes output dims. */
static int infer_einsum(const IrGraph *g, IrOp *op, int *ond, int64_t *odim, IrError *e)
{
	int64_t size[128] = {0};
	uint64_t in_mask[IR_MAX_IN] = {0};
	for (int k = 0; k < op->nin; k++) {
		const IrTensor *t = &g->tensors[op->in[k]];
		int n = (int)strlen(op->lab[k]);
		if (n != t->ndim)
			return FAIL("einsum operand '%s' has %d dims but its labels '%s' name %d",
				    t->name, t->ndim, op->lab[k], n);
		for (int d = 0; d < n; d++) {
			unsigned char c = (unsigned char)op->lab[k][d];
			if (in_mask[k] & ir_label_bit((char)c))
				return FAIL("einsum label '%c' repeats within operand '%s'", c,
					    t->name);
			in_mask[k] |= ir_label_bit((char)c);
			if (size[c] && size[c] != t->dim[d])
				return FAIL("einsum label '%c' is %lld in '%s' but %lld elsewhere", c,
					    (long long)t->dim[d], t->name, (long long)size[c]);
			size[c] = t->dim[d];
		}
	}
	const char *out = op->lab[op->nin];
	uint64_t out_mask = 0;
	*ond = (int)strlen(out);
	for (int d = 0; out[d]; d++) {
		unsigned char c = (unsigned char)out[d];
		if (!size[c])
			return FAIL("einsum output label '%c' is in no input", c);
		if (out_mask & ir_label_bit((char)c))
			return FAIL("einsum label '%c' repeats in the output", c);
		out_mask |= ir_label_bit((char)c);
		odim[d] = size[c];
	}
	/* A label in just one input and not the output would be a reduction of
	 * that input alone: say so, a `reduce` op expresses it. */
	for (int k = 0; k < op->nin; k++) {
		uint64_t others = out_mask;
		for (int j = 0; j < op->nin; j++)
			if (j != k)
				others |= in_mask[j];
		if (op->nin > 1 && (in_mask[k] & ~others))
			for (int d = 0; op->lab[k][d]; d++)
				if (!(others & ir_label_bit(op->lab[k][d])))
					return FAIL("einsum label '%c' appears only in input '%s'; "
						    "use a reduce op",
						    op->lab[k][d], g->tensors[op->in[k]].name);
	}
	return 0;
}

static int parse_axes(const IrGraph *g, IrOp *op, int ndim, uint64_t *mask, IrError *e)
{
	/* attr[0] holds the reduce-axes bitmask, filled by the XML reader. */
	*mask = 0;
	for (int d = 0; d < IR_MAX_DIMS; d++)
		if (op->attr[0] & (1 << d)) {
			if (d >= ndim)
				return FAIL("reduce axis %d out of range for %d dims", d, ndim);
			*mask |= 1u << d;
		}
	if (!*mask)
		return FAIL("reduce op has no axes");
	return 0;
}

int ir_infer_op(const IrGraph *g, IrOp *op, const int64_t *reshape_to, int reshape_nd,
		int *ond, int64_t *odim, IrDType *odt, IrError *e)
{
	const IrTensor *x = &g->tensors[op->in[0]];
	uint64_t used = 0;
	op->local = 0;
	*odt = x->dtype;
	int no = op->nin; /* index of the output's labels */

	switch (op->kind) {
	case IR_EINSUM:
		if (op->nin > 2)
			return FAIL("einsum takes one or two inputs, not %d", op->nin);
		if (infer_einsum(g, op, ond, odim, e))
			return -1;
		break;

	case IR_ELEMENTWISE: {
		int arity = ir_elementwise_arity(op->fn);
		if (arity != op->nin)
			return FAIL("'%s' takes %d input%s, not %d", op->fn, arity,
				    arity == 1 ? "" : "s", op->nin);
		int nd = 0;
		for (int k = 0; k < op->nin; k++)
			if (g->tensors[op->in[k]].ndim > nd)
				nd = g->tensors[op->in[k]].ndim;
		*ond = nd;
		seq_labels(op->lab[no], nd, &used, op);
		for (int d = 0; d < nd; d++)
			odim[d] = 1;
		for (int k = 0; k < op->nin; k++) {
			const IrTensor *t = &g->tensors[op->in[k]];
			int off = nd - t->ndim;
			for (int d = 0; d < t->ndim; d++) {
				int64_t s = t->dim[d], o = odim[off + d];
				if (s != o && s != 1 && o != 1)
					return FAIL("cannot broadcast '%s' (dim %d is %lld) against "
						    "size %lld",
						    t->name, d, (long long)s, (long long)o);
				if (s > o)
					odim[off + d] = s;
			}
		}
		for (int k = 0; k < op->nin; k++) {
			const IrTensor *t = &g->tensors[op->in[k]];
			int off = nd - t->ndim;
			for (int d = 0; d < t->ndim; d++) {
				if (t->dim[d] == odim[off + d])
					op->lab[k][d] = op->lab[no][off + d];
				else {
					op->lab[k][d] = fresh_label(op, &used);
					op->local |= ir_label_bit(op->lab[k][d]);
				}
			}
			op->lab[k][t->ndim] = 0;
		}
		break;
	}

	case IR_REDUCE: {
		uint64_t axes;
		if (parse_axes(g, op, x->ndim, &axes, e))
			return -1;
		seq_labels(op->lab[0], x->ndim, &used, op);
		int n = 0;
		for (int d = 0; d < x->ndim; d++)
			if (!(axes & (1u << d))) {
				op->lab[no][n] = op->lab[0][d];
				odim[n++] = x->dim[d];
			}
		op->lab[no][n] = 0;
		*ond = n;
		break;
	}

	case IR_SOFTMAX:
	case IR_LAYERNORM:
	case IR_RMSNORM: {
		int want = op->kind == IR_SOFTMAX ? 1 : op->kind == IR_LAYERNORM ? 3 : 2;
		if (op->nin != want)
			return FAIL("%s takes %d input%s, not %d", ir_op_kind_name(op->kind), want,
				    want == 1 ? "" : "s", op->nin);
		if (x->ndim < 1)
			return FAIL("%s needs at least one dim", ir_op_kind_name(op->kind));
		seq_labels(op->lab[0], x->ndim, &used, op);
		char last = op->lab[0][x->ndim - 1];
		for (int k = 1; k < op->nin; k++) {
			const IrTensor *w = &g->tensors[op->in[k]];
			if (w->ndim != 1 || w->dim[0] != x->dim[x->ndim - 1])
				return FAIL("%s scale '%s' must have shape [%lld]",
					    ir_op_kind_name(op->kind), w->name,
					    (long long)x->dim[x->ndim - 1]);
			op->lab[k][0] = last;
			op->lab[k][1] = 0;
		}
		strcpy(op->lab[no], op->lab[0]);
		op->local |= ir_label_bit(last);
		*ond = x->ndim;
		memcpy(odim, x->dim, sizeof x->dim);
		break;
	}

	case IR_GATHER: {
		if (op->nin != 2)
			return FAIL("gather takes a table and ids, not %d inputs", op->nin);
		const IrTensor *ids = &g->tensors[op->in[1]];
		if (x->ndim != 2)
			return FAIL("gather table '%s' must be 2-D [rows, width]", x->name);
		if (ids->dtype != IR_I32)
			return FAIL("gather ids '%s' must be int32", ids->name);
		if (ids->ndim + 1 > IR_MAX_DIMS)
			return FAIL("gather ids '%s' have too many dims", ids->name);
		seq_labels(op->lab[1], ids->ndim, &used, op);
		op->lab[0][0] = fresh_label(op, &used);
		op->lab[0][1] = fresh_label(op, &used);
		op->lab[0][2] = 0;
		strcpy(op->lab[no], op->lab[1]);
		op->lab[no][ids->ndim] = op->lab[0][1];
		op->lab[no][ids->ndim + 1] = 0;
		*ond = ids->ndim + 1;
		memcpy(odim, ids->dim, sizeof ids->dim);
		odim[ids->ndim] = x->dim[1];
		break;
	}

	case IR_TRANSPOSE: {
		seq_labels(op->lab[0], x->ndim, &used, op);
		int seen = 0;
		/* attr[0]: perm packed 4 bits per dim, attr[1]: ndim of perm */
		if (op->attr[1] != x->ndim)
			return FAIL("transpose perm names %lld dims but '%s' has %d",
				    (long long)op->attr[1], x->name, x->ndim);
		for (int d = 0; d < x->ndim; d++) {
			int p = (int)((op->attr[0] >> (4 * d)) & 0xf);
			if (p >= x->ndim || (seen & (1 << p)))
				return FAIL("transpose perm is not a permutation of 0..%d",
					    x->ndim - 1);
			seen |= 1 << p;
			op->lab[no][d] = op->lab[0][p];
			odim[d] = x->dim[p];
		}
		op->lab[no][x->ndim] = 0;
		*ond = x->ndim;
		break;
	}

	case IR_RESHAPE: {
		int64_t n_in = ir_tensor_numel(x), n_out = 1;
		for (int d = 0; d < reshape_nd; d++)
			n_out *= reshape_to[d];
		if (n_in != n_out)
			return FAIL("reshape of '%s' from %lld to %lld elements", x->name,
				    (long long)n_in, (long long)n_out);
		/* Walk both shapes in groups of equal product; the leading dims of a
		 * group share a label (splitting them into contiguous blocks is the
		 * same split), the rest stay local. */
		int i = 0, j = 0;
		while (i < x->ndim || j < reshape_nd) {
			int i0 = i, j0 = j;
			int64_t pi = i < x->ndim ? x->dim[i++] : 1;
			int64_t pj = j < reshape_nd ? reshape_to[j++] : 1;
			while (pi != pj) {
				if (pi < pj && i < x->ndim)
					pi *= x->dim[i++];
				else if (j < reshape_nd)
					pj *= reshape_to[j++];
				else
					break;
			}
			char c = fresh_label(op, &used);
			if (i0 < x->ndim)
				op->lab[0][i0] = c;
			if (j0 < reshape_nd)
				op->lab[no][j0] = c;
			for (int a = i0 + 1; a < i; a++) {
				op->lab[0][a] = fresh_label(op, &used);
				op->local |= ir_label_bit(op->lab[0][a]);
			}
			for (int b = j0 + 1; b < j; b++) {
				op->lab[no][b] = fresh_label(op, &used);
				op->local |= ir_label_bit(op->lab[no][b]);
			}
			if (!(i0 < x->ndim && j0 < reshape_nd))
				op->local |= ir_label_bit(c);
		}
		op->lab[0][x->ndim] = 0;
		op->lab[no][reshape_nd] = 0;
		*ond = reshape_nd;
		memcpy(odim, reshape_to, sizeof(int64_t) * (size_t)reshape_nd);
		break;
	}

	case IR_CONV2D: {
		if (op->nin != 2)
			return FAIL("conv2d takes an input and a filter, not %d inputs", op->nin);
		const IrTensor *w = &g->tensors[op->in[1]];
		if (x->ndim != 4 || w->ndim != 4)
			return FAIL("conv2d needs a 4-D NHWC input and a 4-D RSCF filter");
		if (w->dim[2] != x->dim[3])
			return FAIL("conv2d filter '%s' has %lld input channels, input has %lld",
				    w->name, (long long)w->dim[2], (long long)x->dim[3]);
		int64_t stride = op->attr[0] > 0 ? op->attr[0] : 1;
		int same = op->attr[1] != 0;
		for (int d = 1; d <= 2; d++) {
			int64_t in = x->dim[d], k = w->dim[d - 1];
			int64_t o = same ? (in + stride - 1) / stride : (in - k) / stride + 1;
			if (o <= 0)
				return FAIL("conv2d window %lld is larger than the input (%lld)",
					    (long long)k, (long long)in);
			odim[d] = o;
		}
		odim[0] = x->dim[0];
		odim[3] = w->dim[3];
		*ond = 4;
		/* x: n h w c, w: r s c f, out: n h w f (spatial and window local) */
		strcpy(op->lab[0], "nhwc");
		strcpy(op->lab[1], "rscf");
		strcpy(op->lab[no], "nhwf");
		op->local = ir_label_bit('h') | ir_label_bit('w') | ir_label_bit('r') |
			    ir_label_bit('s');
		break;
	}

	case IR_POOL: {
		if (x->ndim != 4)
			return FAIL("pool needs a 4-D NHWC input, '%s' has %d dims", x->name,
				    x->ndim);
		int64_t win = op->attr[0] > 0 ? op->attr[0] : 2;
		int64_t stride = op->attr[1] > 0 ? op->attr[1] : win;
		for (int d = 1; d <= 2; d++) {
			int64_t o = (x->dim[d] - win) / stride + 1;
			if (x->dim[d] < win || o <= 0)
				return FAIL("pool window %lld is larger than the input (%lld)",
					    (long long)win, (long long)x->dim[d]);
			odim[d] = o;
		}
		odim[0] = x->dim[0];
		odim[3] = x->dim[3];
		*ond = 4;
		strcpy(op->lab[0], "nhwc");
		strcpy(op->lab[no], "nhwc");
		op->local = ir_label_bit('h') | ir_label_bit('w');
		break;
	}

	case IR_LOSS: {
		if (op->nin != 2)
			return FAIL("loss takes logits and targets, not %d inputs", op->nin);
		const IrTensor *y = &g->tensors[op->in[1]];
		if (y->dtype != IR_I32)
			return FAIL("loss targets '%s' must be int32", y->name);
		if (x->ndim != y->ndim + 1)
			return FAIL("loss logits '%s' must have one dim more than targets '%s'",
				    x->name, y->name);
		for (int d = 0; d < y->ndim; d++)
			if (x->dim[d] != y->dim[d])
				return FAIL("loss targets '%s' dim %d is %lld, logits have %lld",
					    y->name, d, (long long)y->dim[d],
					    (long long)x->dim[d]);
		seq_labels(op->lab[0], x->ndim, &used, op);
		memcpy(op->lab[1], op->lab[0], (size_t)y->ndim);
		op->lab[1][y->ndim] = 0;
		strcpy(op->lab[no], op->lab[1]);
		*ond = y->ndim;
		memcpy(odim, y->dim, sizeof y->dim);
		*odt = IR_F32;
		break;
	}

	default:
		return FAIL("op kind '%s' cannot appear in a model", ir_op_kind_name(op->kind));
	}

	if (op->kind != IR_GATHER && op->kind != IR_LOSS && x->dtype == IR_I32)
		return FAIL("%s input '%s' is int32; only gather and loss take integer inputs",
			    ir_op_kind_name(op->kind), x->name);
	for (int d = 0; d < *ond; d++)
		if (odim[d] <= 0)
			return FAIL("op output dim %d is %lld", d, (long long)odim[d]);
	return 0;
}

/* ---- FLOPs and bytes ---- */

/* FLOPs per element of an elementwise function (forward); backward of a
 * unary function costs its derivative, counted as the same. */
static double elementwise_cost(const char *fn)
{
	if (!fn)
		return 1;
	if (!strncmp(fn, "gelu", 4))
		return 8; /* tanh approximation: x*0.5*(1+tanh(0.798*(x+0.0447*x^3))) */
	if (!strncmp(fn, "silu", 4) || !strncmp(fn, "sigmoid", 7))
		return 4;
	if (!strncmp(fn, "rotary", 6))
		return 3; /* x*cos + rotate(x)*sin */
	if (!strncmp(fn, "dropout", 7))
		return 2; /* compare with the mask, scale */
	return 1;
}

static double label_product(const IrGraph *g, const IrOp *op)
{
	uint64_t seen = 0;
	double p = 1;
	for (int k = 0; k < op->nin + op->nout; k++) {
		const IrTensor *t = &g->tensors[k < op->nin ? op->in[k] : op->out[k - op->nin]];
		for (int d = 0; op->lab[k][d] && d < t->ndim; d++) {
			uint64_t b = ir_label_bit(op->lab[k][d]);
			if (!(seen & b)) {
				seen |= b;
				p *= (double)t->dim[d];
			}
		}
	}
	return p;
}

static double numel(const IrGraph *g, int t) { return (double)ir_tensor_numel(&g->tensors[t]); }

double ir_op_flops(const IrGraph *g, const IrOp *op)
{
	double in0 = numel(g, op->in[0]);
	double out0 = op->nout ? numel(g, op->out[0]) : 0;
	switch (op->kind) {
	case IR_EINSUM:
		return 2.0 * label_product(g, op);
	case IR_ELEMENTWISE:
		return out0 * elementwise_cost(op->fn);
	case IR_REDUCE:
		return op->phase == IR_FWD ? in0 : out0;
	case IR_SOFTMAX:
		return (op->phase == IR_FWD ? 5.0 : 4.0) * out0;
	case IR_LAYERNORM: /* forward 8/elt; backward: input 10/elt, scale+bias 4/elt */
		return (op->phase == IR_FWD ? 8.0 : op->attr[2] ? 4.0 : 10.0) * in0;
	case IR_RMSNORM:
		return (op->phase == IR_FWD ? 4.0 : op->attr[2] ? 2.0 : 6.0) * in0;
	case IR_GATHER:
		return op->phase == IR_FWD ? 0.0 : in0; /* backward: scatter-add */
	case IR_TRANSPOSE:
	case IR_RESHAPE:
		return 0.0;
	case IR_CONV2D: {
		/* Forward and both backward convolutions cost the same:
		 * 2 * N * H' * W' * F * R * S * C, from the forward shapes. */
		const IrOp *f = op->phase == IR_FWD ? op : &g->ops[op->fwd];
		const IrTensor *w = &g->tensors[f->in[1]];
		double o = numel(g, f->out[0]);
		return 2.0 * o * (double)(w->dim[0] * w->dim[1] * w->dim[2]);
	}
	case IR_POOL:
		return op->phase == IR_FWD ? in0 : out0;
	case IR_LOSS:
		return 5.0 * in0;
	case IR_ACCUM:
		return in0;
	case IR_ADAM:
		return 12.0 * in0; /* m, v updates, bias correction, step, decay */
	default:
		return 0.0;
	}
}

double ir_op_bytes(const IrGraph *g, const IrOp *op)
{
	if (op->kind == IR_RESHAPE)
		return 0.0; /* a view */
	double b = 0;
	for (int k = 0; k < op->nin; k++)
		b += ir_tensor_bytes(&g->tensors[op->in[k]]);
	for (int k = 0; k < op->nout; k++)
		b += ir_tensor_bytes(&g->tensors[op->out[k]]);
	if (op->kind == IR_ADAM || op->kind == IR_ACCUM)
		b *= 2; /* state read and written back in place */
	return b;
}

void ir_graph_stats(const IrGraph *g, IrStats *s)
{
	memset(s, 0, sizeof *s);
	s->nops = g->nops;
	s->ntensors = g->ntensors;
	s->nfwd_ops = g->nfwd_ops;
	for (int i = 0; i < g->nops; i++) {
		const IrOp *op = &g->ops[i];
		if (op->phase == IR_FWD)
			s->fwd_flops += op->flops;
		else if (op->phase == IR_BWD)
			s->bwd_flops += op->flops;
		else
			s->update_flops += op->flops;
	}
	for (int i = 0; i < g->ntensors; i++) {
		const IrTensor *t = &g->tensors[i];
		double b = ir_tensor_bytes(t);
		switch (t->role) {
		case IR_T_WEIGHT:
			if (t->weight < 0) {
				s->params += ir_tensor_numel(t);
				s->weight_bytes += b;
			}
			break;
		case IR_T_WGRAD:
			s->grad_bytes += b;
			break;
		case IR_T_OPT:
			s->opt_bytes += b;
			break;
		case IR_T_ACT:
			if (t->producer >= 0 && g->ops[t->producer].phase == IR_FWD &&
			    g->ops[t->producer].kind != IR_RESHAPE)
				s->act_bytes += b;
			break;
		default:
			break;
		}
	}
}
