/*
 * strategy.c -- sharding specs of tensors, strategies of ops, and the
 * time to turn one spec into another (resharding).
 *
 * A spec says, per tensor dim, which mesh axes split it (bit 1: axis 0,
 * bit 2: axis 1) and over which axes the tensor is a partial sum.  An op's
 * strategy assigns mesh axes to its labels; from the labels follow the
 * specs of every operand, the op's share of the work, and the all-reduce
 * that a split contracted label leaves behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/intra.h"

int pass_label_index(char c)
{
	uint64_t b = ir_label_bit(c);
	return b ? __builtin_ctzll(b) : -1;
}

int pass_axes_size(const IrLogicalMesh *m, int axes)
{
	return ((axes & 1) ? m->n[0] : 1) * ((axes & 2) ? m->n[1] : 1);
}

/* Collective axis argument for an axes mask: 0, 1 or 2 (both). */
static int coll_axis(int axes) { return axes == 3 ? 2 : axes == 2 ? 1 : 0; }

static int spec_ways(const IrLogicalMesh *m, const PassSpec *s)
{
	int w = 1;
	for (int d = 0; d < s->nd; d++)
		w *= pass_axes_size(m, s->dim[d]);
	return w;
}

static void add_comm(IrComm *out, int *n, int max, int kind, int axes, double bytes)
{
	if (!out || *n >= max)
		return;
	out[*n] = (IrComm){.kind = kind, .axis = coll_axis(axes), .bytes = bytes, .reshard = true};
	(*n)++;
}

double pass_reshard_time(const IrLogicalMesh *m, double tensor_bytes, const PassSpec *src,
			 const PassSpec *dst, IrComm *out, int *nout, int max)
{
	double t = 0;
	int n_local = 0;
	if (!nout)
		nout = &n_local;
	/* current per-device bytes */
	double local = tensor_bytes / spec_ways(m, src);
	int cur[IR_MAX_DIMS];
	for (int d = 0; d < src->nd; d++)
		cur[d] = src->dim[d];

	/* 1. partial sums: reduce-scatter onto a dim the destination splits on
	 *    that axis (and the source does not), else all-reduce. */
	int p = src->partial & ~dst->partial;
	if (p) {
		int rs_dim = -1;
		for (int d = 0; d < dst->nd; d++)
			if ((dst->dim[d] & p) == p && !(cur[d] & p)) {
				rs_dim = d;
				break;
			}
		if (rs_dim >= 0) {
			t += sim_mesh_collective_time(m, coll_axis(p), SIM_REDUCE_SCATTER, local);
			add_comm(out, nout, max, SIM_REDUCE_SCATTER, p, local);
			cur[rs_dim] |= p;
			local /= pass_axes_size(m, p);
		} else {
			t += sim_mesh_collective_time(m, coll_axis(p), SIM_ALL_REDUCE, local);
			add_comm(out, nout, max, SIM_ALL_REDUCE, p, local);
		}
	}
	/* 2. per axis: gather what the destination does not split, move what it
	 *    splits elsewhere (all-to-all), slice locally what it splits anew. */
	for (int a = 1; a <= 2; a <<= 1) {
		if (pass_axes_size(m, a) == 1)
			continue;
		int from = -1, to = -1;
		for (int d = 0; d < src->nd; d++) {
			if (cur[d] & a)
				from = d;
			if (dst->dim[d] & a)
				to = d;
		}
		if (from == to)
			continue;
		int n = pass_axes_size(m, a);
		if (from >= 0 && to < 0) {
			t += sim_mesh_collective_time(m, coll_axis(a), SIM_ALL_GATHER, local * n);
			add_comm(out, nout, max, SIM_ALL_GATHER, a, local * n);
			local *= n;
			cur[from] &= ~a;
		} else if (from >= 0 && to >= 0) {
			t += sim_mesh_collective_time(m, coll_axis(a), SIM_ALL_TO_ALL, local);
			add_comm(out, nout, max, SIM_ALL_TO_ALL, a, local);
			cur[from] &= ~a;
			cur[to] |= a;
		} else {
			cur[to] |= a; /* local slice: free */
			local /= n;
		}
	}
	return t;
}

/* ------------------------------------------------------------------ */
/* Op strategies                                                        */

void pass_attn_build(const IrGraph *g, PassAttn *a)
{
	memset(a, 0, sizeof *a);
	if (!g->fused_attention || !g->training)
		return;
	a->grp = ir_xmalloc(sizeof(int) * ((size_t)g->nops + 1));
	a->causal = ir_xcalloc((size_t)g->nops + 1, 1);
	a->nbwd = ir_xcalloc((size_t)g->nops + 1, sizeof(int));
	if (!a->grp || !a->causal || !a->nbwd)
		abort();
	sim_attention_groups(g, a->grp);
	for (int o = 0; o < g->nops; o++) {
		int r = a->grp[o];
		const IrOp *op = &g->ops[o];
		if (r < 0)
			continue;
		if (op->phase == IR_BWD)
			a->nbwd[r]++;
		else if (op->kind == IR_ELEMENTWISE && op->fn && !strcmp(op->fn, "mask"))
			a->causal[r] = 1;
	}
}

void pass_attn_free(PassAttn *a)
{
	free(a->grp);
	free(a->causal);
	free(a->nbwd);
	memset(a, 0, sizeof *a);
}

/* An op of a fused attention core priced as the simulator runs it: the
 * core's forward kernel at its score einsum (the score and context
 * einsums' FLOPs, halved under a causal mask; q, k, v and the output read
 * and written), nothing for the rest of its forward chain, and its
 * backward kernel (2.5x the FLOPs, twice the bytes) shared evenly by its
 * backward ops.  The context einsum's FLOPs and v and the output are taken
 * equal to the score einsum's and its q and k, at this op's ways. */
static double fused_share(const PassCtx *x, int op_index, const PassOpChoice *c)
{
	const IrGraph *g = x->g;
	const IrOp *op = &g->ops[op_index];
	int r = x->attn->grp[op_index];
	if (op->phase == IR_FWD && op_index != r)
		return 0;
	if (op->phase != IR_FWD && op->phase != IR_BWD)
		return c->compute;
	const IrOp *score = &g->ops[r];
	double fl = 2 * score->flops / c->ways * (x->attn->causal[r] ? 0.5 : 1);
	double bytes = 0;
	for (int k = 0; k < score->nin; k++)
		bytes += 2 * ir_tensor_bytes(&g->tensors[score->in[k]]) / c->ways;
	IrDType dt = g->tensors[score->out[0]].dtype;
	if (op->phase == IR_FWD)
		return sim_attention_time(&x->cluster->gpu, dt, fl, bytes, false);
	int n = x->attn->nbwd[r] > 0 ? x->attn->nbwd[r] : 1;
	return sim_attention_time(&x->cluster->gpu, dt, 2.5 * fl, 2 * bytes, true) / n;
}

/* Fills c from label axes `ax` (indexed by label index): operand specs,
 * ways, compute time and the all-reduce of partial sums (unless keep_partial).
 * Returns -1 when a split is not allowed (local label, size not divisible). */
int pass_op_choice(const PassCtx *x, int op_index, const uint8_t *ax, bool keep_partial,
		   PassOpChoice *c)
{
	const IrGraph *g = x->g;
	const IrOp *op = &g->ops[op_index];
	const IrLogicalMesh *m = x->mesh;
	memset(c, 0, sizeof *c);
	int used = 0;
	for (int k = 0; k < op->nin + op->nout; k++) {
		const IrTensor *t = &g->tensors[k < op->nin ? op->in[k] : op->out[k - op->nin]];
		PassSpec *s = k < op->nin ? &c->in[k] : &c->out[k - op->nin];
		s->nd = (uint8_t)t->ndim;
		for (int d = 0; d < t->ndim; d++) {
			char l = op->lab[k][d];
			int a = ax[pass_label_index(l)];
			if (!a)
				continue;
			if (op->local & ir_label_bit(l))
				return -1;
			int n = pass_axes_size(m, a);
			if (t->dim[d] % n)
				return -1;
			s->dim[d] = (uint8_t)a;
			used |= a;
		}
	}
	/* contracted labels that are split leave partial sums on the outputs */
	int partial = 0;
	for (int k = 0; k < op->nin; k++)
		for (int d = 0; op->lab[k][d]; d++) {
			char l = op->lab[k][d];
			int a = ax[pass_label_index(l)];
			if (a && pass_label_class(op, l) == PASS_LABEL_CONTRACTED)
				partial |= a;
		}
	c->ways = pass_axes_size(m, used);
	double bytes = 0;
	for (int k = 0; k < op->nin; k++)
		bytes += ir_tensor_bytes(&g->tensors[op->in[k]]) / spec_ways(m, &c->in[k]);
	for (int k = 0; k < op->nout; k++)
		bytes += ir_tensor_bytes(&g->tensors[op->out[k]]) / spec_ways(m, &c->out[k]);
	if (op->kind == IR_RESHAPE)
		bytes = 0;
	else if (op->kind == IR_ADAM || op->kind == IR_ACCUM)
		bytes *= 2;
	IrDType dt = g->tensors[op->out[0]].dtype;
	if (dt == IR_I32)
		dt = IR_F32;
	c->compute = op->flops > 0 || bytes > 0 ?
			     sim_kernel_time(&x->cluster->gpu, dt, op->flops / c->ways, bytes) :
			     0;
	if (x->attn && x->attn->grp && x->attn->grp[op_index] >= 0)
		c->compute = fused_share(x, op_index, c);
	if (partial) {
		if (keep_partial) {
			for (int k = 0; k < op->nout; k++)
				c->out[k].partial = (uint8_t)partial;
		} else {
			for (int k = 0; k < op->nout; k++) {
				double local = ir_tensor_bytes(&g->tensors[op->out[k]]) /
					       spec_ways(m, &c->out[k]);
				c->comm += sim_mesh_collective_time(m, coll_axis(partial),
								    SIM_ALL_REDUCE, local);
				if (c->nown < 2)
					c->own[c->nown++] = (IrComm){.op = op_index,
								     .kind = SIM_ALL_REDUCE,
								     .axis = coll_axis(partial),
								     .bytes = local};
			}
		}
	}
	memcpy(c->ax, ax, sizeof c->ax);
	return 0;
}

const char *pass_strategy_string(const IrOp *op, const uint8_t *ax, char *buf, size_t n)
{
	size_t o = 0;
	uint64_t seen = 0;
	buf[0] = 0;
	for (int k = 0; k < op->nin + op->nout; k++)
		for (int d = 0; op->lab[k][d]; d++) {
			char l = op->lab[k][d];
			uint64_t b = ir_label_bit(l);
			int a = ax[pass_label_index(l)];
			if (!a || (seen & b))
				continue;
			seen |= b;
			o += (size_t)snprintf(buf + o, o < n ? n - o : 0, "%s%c=%s", o ? "," : "", l,
					      a == 3 ? "01" : a == 1 ? "0" : "1");
		}
	if (o >= n && n)
		buf[n - 1] = 0;
	return buf;
}
