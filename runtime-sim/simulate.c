/*
 * simulate.c -- executing a plan on a described cluster: the cost of each
 * stage, one training step's pipeline as discrete events, and the metrics.
 *
 * Reads: a training graph, a cluster, an IrPlan whose stages carry
 * strategies (however they were found).
 * Writes: SimStageCost per stage, a SimTimeline, a SimResult.
 *
 * Stage cost: every op of the stage is one kernel, sim_kernel_time of its
 * FLOPs over its ways and of its operands' bytes in their layouts; every
 * IrComm one collective on the stage's logical mesh.  Forward ops and
 * their collectives make the forward task of a microbatch; backward ops
 * (with accumulation) and recomputed forward work the backward task; the
 * update ops and per_step collectives run once after the last backward.
 *
 * Pipeline: each rank runs its tasks in the schedule's order; a task
 * starts when the rank is free and its input (the previous stage's
 * activation, or the next stage's gradient) has arrived over the link
 * between the two stage meshes.  Transfers overlap compute; the
 * collectives inside a task do not (they are on its critical path).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime-sim/sim.h"

/* ------------------------------------------------------------------ */
/* Stage cost                                                           */

/* Who reads each tensor, over the whole graph, as sim_bwd_reads has it. */
typedef struct {
	int *nread;  /* per tensor: ops that read it */
	int *nphase; /* per tensor and phase (t * 3 + phase): ops of that phase that read it */
	int *reader; /* per tensor: the first of them */
} Readers;

static void readers_build(const IrGraph *g, Readers *r)
{
	r->nread = ir_xcalloc((size_t)g->ntensors + 1, sizeof(int));
	r->nphase = ir_xcalloc(3 * ((size_t)g->ntensors + 1), sizeof(int));
	r->reader = ir_xmalloc(sizeof(int) * ((size_t)g->ntensors + 1));
	if (!r->nread || !r->nphase || !r->reader)
		abort();
	for (int o = 0; o < g->nops; o++) {
		const IrOp *op = &g->ops[o];
		for (int k = 0; k < op->nin; k++) {
			int t = op->in[k];
			if (sim_bwd_reads(g, op, k) != SIM_READ_YES)
				continue;
			if (k && op->in[k - 1] == t)
				continue; /* the same tensor twice: one read */
			r->nphase[(size_t)t * 3 + op->phase]++;
			if (!r->nread[t]++)
				r->reader[t] = o;
		}
	}
}

/* Loop fusion: elementwise and softmax ops fuse with an elementwise or
 * softmax producer in the same phase, as XLA fuses loops and Megatron-LM's
 * fused kernels do (bias-GELU, bias-dropout-add, scale-mask-softmax).
 * GEMMs take no epilogues.  A tensor passed along such an edge is not read
 * back from HBM, and not written at all when nothing else reads it. */
static bool fusible(const IrOp *op)
{
	return op->kind == IR_ELEMENTWISE || op->kind == IR_SOFTMAX;
}

static bool fused_edge(const IrGraph *g, const int *pos, const Readers *rd, int t,
		       const IrOp *consumer)
{
	int p = g->tensors[t].producer;
	if (p < 0 || pos[p] < 0 || !fusible(&g->ops[p]) || !fusible(consumer) ||
	    g->ops[p].phase != consumer->phase)
		return false;
	/* no other reader in this phase */
	return rd->nphase[(size_t)t * 3 + consumer->phase] == 1;
}

/* Bytes one device moves for stage entry i under `ax`: each operand in
 * its layout (as the intra-op pass prices it), minus what fusion and the
 * real reads of backward ops (sim_bwd_reads) save, plus dropout masks. */
static double op_dev_bytes(const IrGraph *g, const IrStagePlan *s, const int *pos,
			   const Readers *rd, int i, const uint8_t *ax)
{
	const IrOp *op = &g->ops[s->op[i]];
	if (op->kind == IR_RESHAPE)
		return 0;
	double b = 0;
	for (int k = 0; k < op->nin + op->nout; k++) {
		int t = k < op->nin ? op->in[k] : op->out[k - op->nin];
		double w = sim_operand_ways(g, op, k, ax, s->n0, s->n1);
		double tb = ir_tensor_bytes(&g->tensors[t]);
		if (k < op->nin) {
			SimRead how = sim_bwd_reads(g, op, k);
			if (how == SIM_READ_NO || fused_edge(g, pos, rd, t, op))
				continue;
			if (how == SIM_READ_MASK) {
				const IrOp *f = &g->ops[op->fwd];
				tb = (double)ir_tensor_numel(&g->tensors[f->out[0]]);
			}
		} else {
			/* an intermediate only its fused consumer reads is never written */
			if (rd->nread[t] == 1 && fused_edge(g, pos, rd, t, &g->ops[rd->reader[t]]))
				continue;
			if (op->kind == IR_ELEMENTWISE && op->fn && !strncmp(op->fn, "dropout", 7) &&
			    op->phase == IR_FWD)
				b += (double)ir_tensor_numel(&g->tensors[t]) / w; /* its mask */
		}
		b += tb / w;
	}
	if (op->kind == IR_ADAM || op->kind == IR_ACCUM)
		b *= 2;
	return b;
}

static double op_time(const IrGraph *g, const IrCluster *c, const IrStagePlan *s,
		      const int *pos, const Readers *rd, int i, const uint8_t *ax)
{
	const IrOp *op = &g->ops[s->op[i]];
	double bytes = op_dev_bytes(g, s, pos, rd, i, ax);
	if (!(op->flops > 0) && !(bytes > 0))
		return 0;
	IrDType dt = op->nout ? g->tensors[op->out[0]].dtype : IR_F32;
	if (dt == IR_I32)
		dt = IR_F32;
	return sim_kernel_time(&c->gpu, dt,
			       op->flops / s->ways[i] * sim_op_padding(g, op, ax, s->n0, s->n1),
			       bytes);
}

static bool layer_has_loss(const IrGraph *g, int layer)
{
	const IrLayer *L = &g->layers[layer];
	for (int o = L->first_op; o <= L->last_op && o < g->nfwd_ops; o++)
		if (g->ops[o].kind == IR_LOSS)
			return true;
	return false;
}

/* Is forward op o re-run in backward under rc?  (Fused attention keeps
 * nothing of its core to recompute selectively: its backward kernel
 * recomputes the scores itself.) */
static bool recomputed(const IrGraph *g, const unsigned char *core, IrRecompute rc, int o)
{
	if (g->ops[o].phase != IR_FWD)
		return false;
	if (rc == IR_RECOMP_FULL)
		return !layer_has_loss(g, g->ops[o].layer);
	return rc == IR_RECOMP_SELECTIVE && core[o] && !g->fused_attention;
}

/* Per device bytes of operand k of stage entry i in its own layout. */
static double operand_dev_bytes(const IrGraph *g, const IrStagePlan *s, int i, int k,
				const uint8_t *ax)
{
	const IrOp *op = &g->ops[s->op[i]];
	int t = k < op->nin ? op->in[k] : op->out[k - op->nin];
	return ir_tensor_bytes(&g->tensors[t]) / sim_operand_ways(g, op, k, ax, s->n0, s->n1);
}

/*
 * Fused attention (FlashAttention-2/3): per core, one forward kernel in
 * place of the score einsum, the chain and the context einsum, and one
 * backward kernel in place of their backward ops.  Hardware FLOPs: the two
 * einsums over their ways, halved under a causal mask (masked blocks are
 * skipped; the FlashAttention papers count FLOPs the same way), and 2.5x
 * that for backward (5 GEMMs: the scores are recomputed).  Bytes: q, k, v
 * and the output (forward), twice that (backward: they and dO in, dq, dk,
 * dv out).  fwd_t[o] / bwd_t[o] / hw[o] are set at the score einsum o.
 */
typedef struct {
	int *grp;          /* per graph op: its core's score einsum, -1 none */
	double *fwd_t, *bwd_t, *fwd_hw; /* per graph op (at score einsums) */
	unsigned char *bwd_done; /* per graph op: backward kernel counted */
} Fused;

static void fused_build(const IrGraph *g, const IrCluster *c, const IrStagePlan *s,
			const int *pos, uint8_t (*ax)[64], Fused *f)
{
	memset(f, 0, sizeof *f);
	if (!g->fused_attention)
		return;
	f->grp = ir_xmalloc(sizeof(int) * ((size_t)g->nops + 1));
	f->fwd_t = ir_xcalloc((size_t)g->nops + 1, sizeof(double));
	f->bwd_t = ir_xcalloc((size_t)g->nops + 1, sizeof(double));
	f->fwd_hw = ir_xcalloc((size_t)g->nops + 1, sizeof(double));
	f->bwd_done = ir_xcalloc((size_t)g->nops + 1, 1);
	double *bytes = ir_xcalloc((size_t)g->nops + 1, sizeof(double));
	unsigned char *causal = ir_xcalloc((size_t)g->nops + 1, 1);
	if (!f->grp || !f->fwd_t || !f->bwd_t || !f->fwd_hw || !f->bwd_done || !bytes || !causal)
		abort();
	sim_attention_groups(g, f->grp);
	for (int i = 0; i < s->nops; i++) {
		int o = s->op[i], r = f->grp[o];
		const IrOp *op = &g->ops[o];
		if (r < 0 || op->phase != IR_FWD)
			continue;
		if (op->kind == IR_EINSUM) {
			f->fwd_hw[r] += op->flops / s->ways[i];
			if (o == r) /* score einsum: q and k */
				bytes[r] += operand_dev_bytes(g, s, i, 0, ax[i]) +
					    operand_dev_bytes(g, s, i, 1, ax[i]);
			else /* context einsum: v and the output */
				bytes[r] += operand_dev_bytes(g, s, i, 1, ax[i]) +
					    operand_dev_bytes(g, s, i, 2, ax[i]);
		} else if (op->kind == IR_ELEMENTWISE && op->fn && !strcmp(op->fn, "mask")) {
			causal[r] = 1;
		}
	}
	for (int i = 0; i < s->nops; i++) {
		int o = s->op[i];
		if (f->grp[o] != o || g->ops[o].phase != IR_FWD)
			continue;
		if (causal[o])
			f->fwd_hw[o] *= 0.5;
		IrDType dt = g->tensors[g->ops[o].out[0]].dtype;
		f->fwd_t[o] = sim_attention_time(&c->gpu, dt, f->fwd_hw[o], bytes[o], false);
		f->bwd_t[o] = sim_attention_time(&c->gpu, dt, 2.5 * f->fwd_hw[o], 2 * bytes[o], true);
	}
	(void)pos;
	free(bytes);
	free(causal);
}

static void fused_free(Fused *f)
{
	free(f->grp);
	free(f->fwd_t);
	free(f->bwd_t);
	free(f->fwd_hw);
	free(f->bwd_done);
}

/* Whole bytes of forward tensors the stage writes and later stages read. */
static double send_bytes(const IrGraph *g, const int *pos)
{
	unsigned char *seen = ir_xcalloc((size_t)g->ntensors + 1, 1);
	if (!seen)
		abort();
	double sum = 0;
	for (int o = 0; o < g->nops; o++) {
		const IrOp *op = &g->ops[o];
		if (op->phase != IR_FWD || pos[o] >= 0)
			continue;
		for (int k = 0; k < op->nin; k++) {
			int t = op->in[k], p = g->tensors[t].producer;
			if (p < 0 || p > o || pos[p] < 0 || seen[t])
				continue;
			seen[t] = 1;
			sum += ir_tensor_bytes(&g->tensors[t]);
		}
	}
	free(seen);
	return sum;
}

/* Per layer of a stage, what its tasks spend (overlap.c's inputs). */
typedef struct {
	double fc, fm, fg; /* forward: kernels, blocking collectives, weight gathers */
	double bc, bm, bg; /* backward (recomputation included): the same */
	double br;         /* backward: reduce-scatter of the layer's gradient shards */
	double red[SIM_NCOLL][3]; /* bytes of once-per-step gradient reductions */
	double gat[3];     /* bytes of once-per-step weight all-gathers (ZeRO-1/2's
			    * updated shards), per axis */
} LayerWork;

/* A task over a stage's layers (forward ascending, backward descending):
 * per layer its kernels, blocking collectives, weight gathers and
 * gradient reduce-scatters.  Weight gathers prefetched one layer ahead run
 * on the communication stream: a layer's gather starts once the previous
 * layer's compute has begun and the stream is free, and the layer waits
 * for it.  With `reduce` a layer's gradient reduce-scatter joins the
 * stream when the layer's compute ends (after the gather already queued
 * for the next layer, as FSDP issues them) and the task ends when the
 * stream drains; without it the reduce-scatter blocks.  With tp a layer's
 * collectives hide behind its kernels (max instead of sum).  With none of
 * them it is the plain sum. */
static double task_time(const LayerWork *lw, int nl, bool backward, bool prefetch, bool tp,
			bool reduce)
{
	double t = 0, cfree = 0, prev_start = 0, pending = 0;
	for (int j = 0; j < nl; j++) {
		const LayerWork *x = &lw[backward ? nl - 1 - j : j];
		double c = backward ? x->bc : x->fc, m = backward ? x->bm : x->fm;
		double w = backward ? x->bg : x->fg, r = backward ? x->br : 0;
		double work = tp ? fmax(c, m) : c + m;
		if (!reduce) {
			work += r;
			r = 0;
		}
		double start;
		if (prefetch) {
			double gstart = fmax(cfree, prev_start);
			cfree = gstart + w;
			start = fmax(t, cfree);
		} else {
			start = t + w;
		}
		if (pending > 0) /* the previous layer's reduce-scatter, issued at its end */
			cfree = fmax(cfree, t) + pending;
		prev_start = start;
		t = start + work;
		pending = r;
	}
	if (pending > 0)
		cfree = fmax(cfree, t) + pending;
	return fmax(t, reduce ? cfree : 0);
}

/*
 * What the once-per-step weight all-gathers (LayerWork.gat) add to the
 * first forward of a step when they overlap it: issued together in layer
 * order on the communication stream when the step starts, one bucket per
 * layer; a layer's forward waits for its own bucket.  Only the first
 * bucket is exposed when each later one is shorter than the forward
 * before it.
 */
static double param_gather_exposed(const LayerWork *lw, int nl, const IrLogicalMesh *lm, bool tp)
{
	double t = 0, cfree = 0, work = 0;
	for (int l = 0; l < nl; l++) {
		const LayerWork *x = &lw[l];
		for (int a = 0; a < 3; a++)
			if (x->gat[a] > 0)
				cfree += sim_mesh_collective_time(lm, a, SIM_ALL_GATHER, x->gat[a]);
		double w = (tp ? fmax(x->fc, x->fm) : x->fc + x->fm) + x->fg;
		t = fmax(t, cfree) + w;
		work += w;
	}
	return fmax(t, cfree) - work;
}

/* Appends a collective to det (NULL: nothing). */
static void detail_coll(SimStageDetail *det, const IrComm *cm, int layer, double t, bool bwd,
			bool recompute)
{
	if (!det)
		return;
	if (det->ncoll % 64 == 0) {
		det->coll = ir_xrealloc(det->coll, sizeof *det->coll * (size_t)(det->ncoll + 64));
		if (!det->coll)
			abort();
	}
	det->coll[det->ncoll++] = (SimCollEvent){.op = cm->op, .layer = layer,
		.kind = (SimColl)cm->kind, .axis = cm->axis, .bytes = cm->bytes, .time_s = t,
		.backward = bwd, .recompute = recompute,
		.gather = cm->weight && cm->kind == SIM_ALL_GATHER};
}

static int stage_cost(const IrGraph *g, const IrCluster *c, const IrStagePlan *s, IrRecompute rc,
		      int zero, unsigned overlap, SimStageCost *out, SimStageDetail *det,
		      IrError *e)
{
	memset(out, 0, sizeof *out);
	if (!g->training)
		return ir_fail(e, g->file, 0, "the simulator needs the training graph");
	IrLogicalMesh lm;
	if (ir_logical_mesh(c, &s->mesh, s->n0, s->n1, &lm, e))
		return -1;
	if (sim_stage_memory(g, c, s, rc, zero, &out->mem, e))
		return -1;
	int ndev = s->n0 * s->n1;
	out->devices = ndev;

	int *pos = ir_xmalloc(sizeof(int) * (size_t)(g->nops + 1));
	uint8_t(*ax)[64] = ir_xmalloc(64 * (size_t)(s->nops + 1));
	unsigned char *core = ir_xcalloc((size_t)g->nops + 1, 1);
	double *t_op = ir_xcalloc((size_t)s->nops + 1, sizeof(double));
	if (!pos || !ax || !core || !t_op)
		abort();
	for (int o = 0; o < g->nops; o++)
		pos[o] = -1;
	int rcode = 0;
	for (int i = 0; i < s->nops && !rcode; i++) {
		pos[s->op[i]] = i; /* order and range checked by sim_stage_memory */
		sim_strategy_parse(s->strategy[i], ax[i]);
		if (s->ways[i] < 1 || s->ways[i] > ndev)
			rcode = ir_fail(e, "", s->op_line ? s->op_line[i] : 0,
					"op %s: ways %d on a mesh of %d devices",
					g->ops[s->op[i]].name, s->ways[i], ndev);
	}
	if (rc == IR_RECOMP_SELECTIVE)
		sim_attention_cores(g, core);

	int L0 = s->first_layer, nl = s->last_layer - s->first_layer + 1;
	LayerWork *lw = ir_xcalloc((size_t)(nl > 0 ? nl : 1), sizeof *lw);
	if (!lw)
		abort();
#define LW(o) (&lw[g->ops[o].layer < L0 ? 0 : g->ops[o].layer - L0 >= nl ? nl - 1 \
							 : g->ops[o].layer - L0])
	Readers rd;
	readers_build(g, &rd);
	Fused fu;
	if (!rcode)
		fused_build(g, c, s, pos, ax, &fu);
	else
		memset(&fu, 0, sizeof fu);
	double bucket[SIM_NCOLL][3] = {{0}};
	double recompute_comm = 0;
	for (int i = 0; i < s->nops && !rcode; i++) {
		int o = s->op[i];
		const IrOp *op = &g->ops[o];
		double t, fl;
		int r = fu.grp ? fu.grp[o] : -1;
		if (r >= 0 && op->phase == IR_FWD) {
			/* one fused kernel, counted at the score einsum */
			t = o == r ? fu.fwd_t[r] : 0;
			fl = o == r ? fu.fwd_hw[r] : 0;
		} else if (r >= 0 && op->phase == IR_BWD) {
			t = fl = 0;
			if (!fu.bwd_done[r]) {
				fu.bwd_done[r] = 1;
				t = fu.bwd_t[r];
				fl = 2.5 * fu.fwd_hw[r];
			}
		} else {
			t = op_time(g, c, s, pos, &rd, i, ax[i]);
			fl = op->flops / s->ways[i];
		}
		t_op[i] = t;
		switch (op->phase) {
		case IR_FWD:
			out->fwd_s += t;
			out->hw_flops += fl;
			out->model_flops += op->flops;
			LW(o)->fc += t;
			if (recomputed(g, core, rc, o)) {
				out->recompute_s += t;
				out->hw_flops += fl;
				LW(o)->bc += t;
			}
			break;
		case IR_BWD:
			LW(o)->bc += t;
			out->bwd_s += t;
			out->hw_flops += fl;
			if (op->kind != IR_ACCUM)
				out->model_flops += op->flops;
			break;
		case IR_UPDATE:
			out->step_s += t;
			out->update_flops += fl;
			break;
		}
	}
	for (int j = 0; j < s->ncomm && !rcode; j++) {
		const IrComm *cm = &s->comm[j];
		if (cm->op < 0 || cm->op >= g->nops || pos[cm->op] < 0) {
			rcode = ir_fail(e, "", 0, "stage of layers %d..%d: a collective names op %d, "
				       "not one of the stage's", s->first_layer, s->last_layer, cm->op);
			break;
		}
		if ((unsigned)cm->kind >= SIM_NCOLL || cm->axis < 0 || cm->axis > 2 ||
		    !(cm->bytes >= 0)) {
			rcode = ir_fail(e, "", 0, "op %s: collective of kind %d on axis %d is invalid",
					g->ops[cm->op].name, cm->kind, cm->axis);
			break;
		}
		IrPhase ph = g->ops[cm->op].phase;
		if (cm->per_step || ph == IR_UPDATE) {
			bucket[cm->kind][cm->axis] += cm->bytes;
			if (cm->kind == SIM_ALL_REDUCE || cm->kind == SIM_REDUCE_SCATTER)
				LW(cm->op)->red[cm->kind][cm->axis] += cm->bytes;
			else if (cm->kind == SIM_ALL_GATHER)
				LW(cm->op)->gat[cm->axis] += cm->bytes;
			continue;
		}
		double t = sim_mesh_collective_time(&lm, cm->axis, (SimColl)cm->kind, cm->bytes);
		bool gather = cm->weight && cm->kind == SIM_ALL_GATHER;
		int li = (int)(LW(cm->op) - lw);
		detail_coll(det, cm, li, t, ph != IR_FWD, false);
		if (ph == IR_FWD && recomputed(g, core, rc, cm->op))
			detail_coll(det, cm, li, t, true, true);
		if (cm->weight && cm->kind == SIM_REDUCE_SCATTER && ph == IR_BWD) {
			out->bwd_s += t;
			out->bwd_comm_s += t;
			LW(cm->op)->br += t;
			continue;
		}
		if (ph == IR_FWD) {
			out->fwd_s += t;
			out->fwd_comm_s += t;
			*(gather ? &LW(cm->op)->fg : &LW(cm->op)->fm) += t;
			if (recomputed(g, core, rc, cm->op)) {
				out->recompute_s += t;
				recompute_comm += t;
				*(gather ? &LW(cm->op)->bg : &LW(cm->op)->bm) += t;
			}
		} else {
			out->bwd_s += t;
			out->bwd_comm_s += t;
			*(gather ? &LW(cm->op)->bg : &LW(cm->op)->bm) += t;
		}
	}
	/* once-per-step collectives run as one per kind and axis, over a flat
	 * buffer (Megatron-LM's contiguous gradient buffer; DDP's buckets) */
	double gather_s = 0; /* the once-per-step weight all-gathers, flat */
	for (int k = 0; k < SIM_NCOLL && !rcode; k++)
		for (int a = 0; a < 3; a++)
			if (bucket[k][a] > 0) {
				double t = sim_mesh_collective_time(&lm, a, (SimColl)k, bucket[k][a]);
				out->step_s += t;
				out->step_comm_s += t;
				if (k == SIM_ALL_REDUCE || k == SIM_REDUCE_SCATTER)
					out->grad_sync_s += t;
				if (k == SIM_ALL_GATHER)
					gather_s += t;
			}
	if (!rcode && overlap) {
		bool pf = overlap & IR_OVERLAP_PARAM_GATHER, tp = overlap & IR_OVERLAP_TP;
		if (pf && gather_s > 0) {
			/* Megatron-LM's --overlap-param-gather: the updated shards'
			 * all-gathers leave the step and run in the next step's first
			 * forward, one bucket per layer */
			double exposed = param_gather_exposed(lw, nl, &lm, tp);
			out->step_s -= gather_s;
			out->step_comm_s -= gather_s;
			out->param_gather_s = exposed;
		}
		if (pf || tp)
			out->fwd_s = task_time(lw, nl, false, pf, tp, false);
		if (overlap & IR_OVERLAP_GRAD_REDUCE) {
			/* one bucket per layer, ready when the layer's backward ends
			 * in the stage's last backward; reduced in that order on the
			 * communication stream */
			double at = 0, cfree = 0, first = -1;
			for (int l = nl - 1; l >= 0; l--) {
				const LayerWork *x = &lw[l];
				at += tp ? fmax(x->bc, x->bm) + x->bg : x->bc + x->bm + x->bg;
				double d = 0;
				for (int k = 0; k < SIM_NCOLL; k++)
					for (int a = 0; a < 3; a++)
						if (x->red[k][a] > 0)
							d += sim_mesh_collective_time(&lm, a, (SimColl)k,
										      x->red[k][a]);
				if (d <= 0)
					continue;
				double st = fmax(at, cfree);
				if (first < 0)
					first = st;
				cfree = st + d;
				out->grad_bucket_s += d;
			}
			out->grad_first_s = first > 0 ? first : 0;
			out->grad_end_s = cfree;
		}
	}
	if (!rcode) {
		out->bwd_s += out->recompute_s;
		out->bwd_comm_s += recompute_comm;
		bool shards = false; /* gradient reduce-scatters to overlap */
		for (int l = 0; l < nl && (overlap & IR_OVERLAP_GRAD_REDUCE); l++)
			shards |= lw[l].br > 0;
		if ((overlap & (IR_OVERLAP_PARAM_GATHER | IR_OVERLAP_TP)) || shards) {
			out->bwd_s = task_time(lw, nl, true, overlap & IR_OVERLAP_PARAM_GATHER,
					       overlap & IR_OVERLAP_TP,
					       overlap & IR_OVERLAP_GRAD_REDUCE);
		}
		/* tied copies: their gradient is summed with the owner stage's
		 * (an all-reduce between the two, over the network when the
		 * cluster has more than one node) */
		if (out->mem.tied_grad_bytes > 0) {
			bool net = c->nodes > 1;
			double t = sim_collective_time_link(SIM_ALL_REDUCE, out->mem.tied_grad_bytes,
							    2, net ? &c->inter : &c->intra, net);
			out->step_s += t;
			out->step_comm_s += t;
		}
		out->send_bytes = send_bytes(g, pos);
	}
#undef LW
	if (det && !rcode) {
		det->first_layer = L0;
		det->nlayers = nl;
		det->layer = ir_xcalloc((size_t)(nl > 0 ? nl : 1), sizeof *det->layer);
		if (!det->layer)
			abort();
		for (int l = 0; l < nl; l++)
			det->layer[l] = (SimLayerTime){lw[l].fc, lw[l].fm, lw[l].fg, lw[l].bc,
						       lw[l].bm, lw[l].bg};
	}
	free(lw);
	fused_free(&fu);
	free(rd.nread);
	free(rd.nphase);
	free(rd.reader);
	free(pos);
	free(ax);
	free(core);
	free(t_op);
	return rcode;
}

int sim_stage_cost(const IrGraph *g, const IrCluster *c, const IrStagePlan *s, IrRecompute rc,
		   int zero, SimStageCost *out, IrError *e)
{
	return stage_cost(g, c, s, rc, zero, 0, out, NULL, e);
}

int sim_stage_cost_overlap(const IrGraph *g, const IrCluster *c, const IrStagePlan *s,
			   IrRecompute rc, int zero, unsigned overlap, SimStageCost *out,
			   IrError *e)
{
	return stage_cost(g, c, s, rc, zero, overlap, out, NULL, e);
}

int sim_stage_detail(const IrGraph *g, const IrCluster *c, const IrStagePlan *s,
		     IrRecompute rc, int zero, unsigned overlap, SimStageDetail *d, IrError *e)
{
	memset(d, 0, sizeof *d);
	SimStageCost sc;
	if (stage_cost(g, c, s, rc, zero, overlap, &sc, d, e)) {
		sim_stage_detail_free(d);
		return -1;
	}
	return 0;
}

void sim_stage_detail_free(SimStageDetail *d)
{
	free(d->layer);
	free(d->coll);
	memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------------ */
/* Schedules                                                            */

typedef struct {
	int stage, micro;
	bool bwd;
} Slot;

/* Fills order[] with rank r's tasks; returns their count (2 * chunks * m). */
static int rank_order(IrSchedule sch, int p, int v, int m, int r, Slot *order)
{
	int n = 0;
	if (v == 1 && sch == IR_SCHED_GPIPE) {
		for (int j = 0; j < m; j++)
			order[n++] = (Slot){r, j, false};
		for (int j = 0; j < m; j++)
			order[n++] = (Slot){r, j, true};
		return n;
	}
	if (v == 1) { /* 1F1B, and interleaving with one chunk */
		int w = p - r - 1 < m ? p - r - 1 : m;
		for (int j = 0; j < w; j++)
			order[n++] = (Slot){r, j, false};
		for (int j = 0; j < m - w; j++) {
			order[n++] = (Slot){r, w + j, false};
			order[n++] = (Slot){r, j, true};
		}
		for (int j = m - w; j < m; j++)
			order[n++] = (Slot){r, j, true};
		return n;
	}
	/* Megatron-LM's interleaved 1F1B (Narayanan et al. 2021, section 2.2):
	 * the k-th forward on a rank is chunk (k mod pv) / p of microbatch
	 * (k / pv) p + k mod p; backwards visit chunks in reverse. */
	int total = m * v;
	int warm = m == p ? total : (p - r - 1) * 2 + (v - 1) * p;
	if (warm > total)
		warm = total;
#define FWD_SLOT(k) (Slot){((k) % (p * v)) / p * p + r, ((k) / (p * v)) * p + (k) % p, false}
#define BWD_SLOT(k) (Slot){(v - 1 - ((k) % (p * v)) / p) * p + r, ((k) / (p * v)) * p + (k) % p, true}
	for (int k = 0; k < warm; k++)
		order[n++] = FWD_SLOT(k);
	for (int k = 0; k < total - warm; k++) {
		order[n++] = FWD_SLOT(warm + k);
		order[n++] = BWD_SLOT(k);
	}
	for (int k = total - warm; k < total; k++)
		order[n++] = BWD_SLOT(k);
#undef FWD_SLOT
#undef BWD_SLOT
	return n;
}

void sim_timeline_free(SimTimeline *t)
{
	free(t->task);
	free(t->rank_end);
	free(t->rank_busy);
	free(t->rank_act);
	memset(t, 0, sizeof *t);
}

int sim_pipeline(const SimPipeline *pl, SimTimeline *t, IrError *e)
{
	memset(t, 0, sizeof *t);
	int S = pl->nstages, v = pl->chunks, m = pl->nmicro;
	if (S < 1 || v < 1 || S % v || m < 1)
		return ir_fail(e, "", 0, "pipeline of %d stages in %d chunks with %d microbatches",
			       S, v, m);
	int p = S / v;
	if (v > 1 && pl->schedule != IR_SCHED_INTERLEAVED)
		return ir_fail(e, "", 0, "%d model chunks per rank need the interleaved schedule", v);
	if (v > 1 && p > 1 && m % p)
		return ir_fail(e, "", 0,
			       "the interleaved schedule needs microbatches (%d) to be a multiple "
			       "of the pipeline ranks (%d)", m, p);
	if ((double)S * m > 5e7)
		return ir_fail(e, "", 0, "%d stages x %d microbatches is too many to simulate", S, m);
	int per = 2 * v * m;
	t->nranks = p;
	t->ntasks = p * per;
	t->task = ir_xcalloc((size_t)t->ntasks, sizeof(SimTask));
	t->rank_end = ir_xcalloc((size_t)p, sizeof(double));
	t->rank_busy = ir_xcalloc((size_t)p, sizeof(double));
	t->rank_act = ir_xcalloc((size_t)p, sizeof(double));
	Slot *order = ir_xmalloc(sizeof(Slot) * (size_t)t->ntasks);
	double *fdone = ir_xmalloc(sizeof(double) * (size_t)S * (size_t)m);
	double *bdone = ir_xmalloc(sizeof(double) * (size_t)S * (size_t)m);
	int *idx = ir_xcalloc((size_t)p, sizeof(int));
	double *cur = ir_xcalloc((size_t)p, sizeof(double));
	if (!t->task || !t->rank_end || !t->rank_busy || !t->rank_act || !order || !fdone ||
	    !bdone || !idx || !cur)
		abort();
	for (long i = 0; i < (long)S * m; i++)
		fdone[i] = bdone[i] = -1;
	for (int r = 0; r < p; r++)
		rank_order(pl->schedule, p, v, m, r, order + (size_t)r * per);

	long left = t->ntasks;
	int rc = 0;
	while (left > 0) {
		bool progress = false;
		for (int r = 0; r < p; r++) {
			double free_at = t->rank_end[r];
			while (idx[r] < per) {
				size_t at = (size_t)r * per + idx[r];
				Slot sl = order[at];
				const SimStageCost *sc = &pl->stage[sl.stage];
				long key = (long)sl.stage * m + sl.micro;
				double ready = 0, recv = 0;
				if (!sl.bwd && sl.stage > 0) {
					ready = fdone[key - m];
					recv = pl->xfer_s ? pl->xfer_s[sl.stage - 1] : 0;
				} else if (sl.bwd && sl.stage < S - 1) {
					ready = bdone[key + m];
					recv = pl->xfer_s ? pl->xfer_s[sl.stage] : 0;
				} else if (sl.bwd) {
					ready = fdone[key];
				}
				if (ready < 0)
					break;
				ready += recv;
				SimTask *tk = &t->task[at];
				tk->stage = sl.stage;
				tk->micro = sl.micro;
				tk->rank = r;
				tk->backward = sl.bwd;
				tk->start = ready > free_at ? ready : free_at;
				tk->end = tk->start + (sl.bwd ? sc->bwd_s : sc->fwd_s);
				tk->comm_s = sl.bwd ? sc->bwd_comm_s : sc->fwd_comm_s;
				tk->recv_s = recv;
				free_at = tk->end;
				t->rank_busy[r] += tk->end - tk->start;
				if (sl.bwd) {
					double live = cur[r] + sc->mem.act_work_bytes;
					if (live > t->rank_act[r])
						t->rank_act[r] = live;
					cur[r] -= sc->mem.act_bytes;
					bdone[key] = tk->end;
				} else {
					cur[r] += sc->mem.act_bytes;
					if (cur[r] > t->rank_act[r])
						t->rank_act[r] = cur[r];
					fdone[key] = tk->end;
				}
				idx[r]++;
				left--;
				progress = true;
			}
			t->rank_end[r] = free_at;
		}
		if (!progress) {
			rc = ir_fail(e, "", 0, "the %s schedule deadlocks (internal error)",
				     ir_schedule_name(pl->schedule));
			break;
		}
	}
	if (!rc) {
		double busy = 0;
		for (int r = 0; r < p; r++) {
			if (t->rank_end[r] > t->span_s)
				t->span_s = t->rank_end[r];
			busy += t->rank_busy[r];
		}
		t->bubble_s = t->span_s - busy / p;
		t->bubble_fraction = t->span_s > 0 ? t->bubble_s / t->span_s : 0;
	}
	free(order);
	free(fdone);
	free(bdone);
	free(idx);
	free(cur);
	if (rc)
		sim_timeline_free(t);
	return rc;
}

/* ------------------------------------------------------------------ */
/* A whole plan                                                         */

void sim_result_free(SimResult *r)
{
	free(r->stage);
	free(r->xfer_s);
	free(r->rank_step_s);
	free(r->rank_mem);
	free(r->rank_weight);
	free(r->rank_grad);
	free(r->rank_opt);
	free(r->rank_sync_start);
	free(r->rank_sync_end);
	sim_timeline_free(&r->tl);
	memset(r, 0, sizeof *r);
}

static bool same_mesh(const IrMesh *a, const IrMesh *b)
{
	return a->node0 == b->node0 && a->nnodes == b->nnodes && a->gpu0 == b->gpu0 &&
	       a->ngpus == b->ngpus;
}

/* Sending a stage's output to the next stage's mesh: each device of the
 * smaller mesh receives its own slice over its own link (the scatter /
 * gather of Megatron-LM, Alpa's cross-mesh resharding). */
static double transfer_time(const IrCluster *c, const IrStagePlan *a, const IrStagePlan *b,
			    double bytes)
{
	if (same_mesh(&a->mesh, &b->mesh))
		return 0; /* chunks of one rank: the tensor stays where it is */
	int da = ir_mesh_devices(&a->mesh), db = ir_mesh_devices(&b->mesh);
	double per = bytes / (da < db ? da : db);
	bool one_node = a->mesh.nnodes == 1 && b->mesh.nnodes == 1 &&
			a->mesh.node0 == b->mesh.node0;
	return sim_collective_time_link(SIM_P2P, per, 2, one_node ? &c->intra : &c->inter,
					!one_node);
}

static int check_plan(const IrGraph *g, const IrPlan *p, IrError *e)
{
	if (p->nstages < 1)
		return ir_fail(e, "", 0, "the plan has no stages");
	int v = p->chunks < 1 ? 1 : p->chunks;
	if (p->nstages % v)
		return ir_fail(e, "", 0, "%d stages do not make %d chunks per rank", p->nstages, v);
	if (p->nmicro < 1 || p->microbatch < 1)
		return ir_fail(e, "", 0, "the plan needs microbatches (%d of %lld samples)",
			       p->nmicro, (long long)p->microbatch);
	if (g->batch != p->microbatch)
		return ir_fail(e, "", 0,
			       "the graph is instantiated with batch %lld, the plan's microbatch "
			       "is %lld", (long long)g->batch, (long long)p->microbatch);
	int p_ranks = p->nstages / v;
	int next = 0;
	for (int i = 0; i < p->nstages; i++) {
		const IrStagePlan *s = &p->stages[i];
		if (s->first_layer != next)
			return ir_fail(e, "", s->line, "stage %d starts at layer %d, not %d", i,
				       s->first_layer, next);
		next = s->last_layer + 1;
		if (!same_mesh(&s->mesh, &p->stages[i % p_ranks].mesh))
			return ir_fail(e, "", s->line,
				       "stage %d is chunk %d of rank %d but not on that rank's mesh",
				       i, i / p_ranks, i % p_ranks);
	}
	if (next != g->nlayers)
		return ir_fail(e, "", 0, "the stages cover layers 0..%d of the model's %d", next - 1,
			       g->nlayers);
	return 0;
}

int sim_plan(const IrGraph *g, const IrCluster *c, const IrPlan *p, SimResult *r, IrError *e)
{
	memset(r, 0, sizeof *r);
	if (check_plan(g, p, e))
		return -1;
	int S = p->nstages, v = p->chunks < 1 ? 1 : p->chunks, P = S / v;
	r->nstages = S;
	r->nranks = P;
	r->stage = ir_xcalloc((size_t)S, sizeof(SimStageCost));
	r->xfer_s = ir_xcalloc((size_t)S, sizeof(double));
	r->rank_step_s = ir_xcalloc((size_t)P, sizeof(double));
	r->rank_mem = ir_xcalloc((size_t)P, sizeof(double));
	r->rank_weight = ir_xcalloc((size_t)P, sizeof(double));
	r->rank_grad = ir_xcalloc((size_t)P, sizeof(double));
	r->rank_opt = ir_xcalloc((size_t)P, sizeof(double));
	r->rank_sync_start = ir_xcalloc((size_t)P, sizeof(double));
	r->rank_sync_end = ir_xcalloc((size_t)P, sizeof(double));
	if (!r->stage || !r->xfer_s || !r->rank_step_s || !r->rank_mem || !r->rank_weight ||
	    !r->rank_grad || !r->rank_opt || !r->rank_sync_start || !r->rank_sync_end)
		abort();
	for (int i = 0; i < S; i++) {
		if (sim_stage_cost_overlap(g, c, &p->stages[i], p->recompute, p->zero, p->overlap,
					   &r->stage[i], e)) {
			if (e) {
				char buf[sizeof e->msg];
				memcpy(buf, e->msg, sizeof buf);
				int n = snprintf(e->msg, sizeof e->msg, "stage %d: ", i);
				if (n > 0 && (size_t)n < sizeof e->msg)
					memcpy(e->msg + n, buf, sizeof e->msg - (size_t)n - 1);
				e->msg[sizeof e->msg - 1] = 0;
			}
			sim_result_free(r);
			return -1;
		}
	}
	for (int i = 0; i + 1 < S; i++)
		r->xfer_s[i] = transfer_time(c, &p->stages[i], &p->stages[i + 1],
					     r->stage[i].send_bytes);
	SimPipeline pl = {S, v, p->nmicro, p->schedule, r->stage, r->xfer_s};
	if (sim_pipeline(&pl, &r->tl, e)) {
		sim_result_free(r);
		return -1;
	}
	double gbatch = p->global_batch > 0 ? (double)p->global_batch
					    : (double)p->microbatch * p->nmicro;
	r->step_time_s = 0;
	r->peak_memory_bytes = 0;
	bool bucketed = p->overlap & IR_OVERLAP_GRAD_REDUCE;
	if (bucketed) {
		/* each stage's buckets run during its last backward (the last
		 * microbatch's) on its rank's communication stream */
		for (int k = 0; k < P; k++)
			r->rank_sync_start[k] = -1;
		for (int j = 0; j < r->tl.ntasks; j++) {
			const SimTask *t = &r->tl.task[j];
			const SimStageCost *sc = &r->stage[t->stage];
			if (!t->backward || t->micro != p->nmicro - 1 || !(sc->grad_bucket_s > 0))
				continue;
			double a = t->start + sc->grad_first_s, b = t->start + sc->grad_end_s;
			if (r->rank_sync_start[t->rank] < 0 || a < r->rank_sync_start[t->rank])
				r->rank_sync_start[t->rank] = a;
			if (b > r->rank_sync_end[t->rank])
				r->rank_sync_end[t->rank] = b;
		}
		for (int k = 0; k < P; k++)
			if (r->rank_sync_start[k] < 0)
				r->rank_sync_start[k] = 0;
	}
	for (int i = 0; i < S; i++) {
		const SimStageCost *sc = &r->stage[i];
		int k = i % P;
		r->rank_step_s[k] += sc->step_s - (bucketed ? sc->grad_sync_s : 0) + sc->param_gather_s;
		r->rank_weight[k] += sc->mem.weight_bytes;
		r->rank_grad[k] += sc->mem.grad_bytes;
		r->rank_opt[k] += sc->mem.opt_bytes;
		r->model_flops += sc->model_flops * p->nmicro;
		r->hw_flops += sc->devices * (sc->hw_flops * p->nmicro + sc->update_flops);
		if (i < P)
			r->ngpus += sc->devices;
	}
	for (int k = 0; k < P; k++) {
		double end = fmax(r->tl.rank_end[k], r->rank_sync_end[k]) + r->rank_step_s[k];
		if (end > r->step_time_s)
			r->step_time_s = end;
		r->rank_mem[k] = r->rank_weight[k] + r->rank_grad[k] + r->rank_opt[k] +
				 r->tl.rank_act[k];
		if (r->rank_mem[k] > r->peak_memory_bytes) {
			r->peak_memory_bytes = r->rank_mem[k];
			r->peak_rank = k;
		}
	}
	double T = r->step_time_s, peak = c->gpu.peak_flops[IR_BF16];
	r->samples_per_s = T > 0 ? gbatch / T : 0;
	r->tokens_per_s = r->samples_per_s * (double)g->seq;
	r->tflops_per_gpu = T > 0 ? r->model_flops / T / r->ngpus / 1e12 : 0;
	r->hw_tflops_per_gpu = T > 0 ? r->hw_flops / T / r->ngpus / 1e12 : 0;
	r->mfu = peak > 0 ? r->tflops_per_gpu * 1e12 / peak : 0;
	r->hfu = peak > 0 ? r->hw_tflops_per_gpu * 1e12 / peak : 0;
	r->bubble_fraction = r->tl.bubble_fraction;
	r->fits = r->peak_memory_bytes <= c->gpu.mem_bytes;
	return 0;
}
