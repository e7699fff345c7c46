/*
 * megatron.c -- Megatron-LM's own plan, by rule: the one definition of
 * "Megatron's plan" that `simulate --manual`, `compare --against manual`
 * and bench/bench_megatron share.
 *
 * Layers to stages (pass_megatron_split): the transformer layers split
 * evenly over the pp*v model chunks, the embedding joining the first and
 * the head the last; when the chunks do not divide the layers, Megatron-
 * Core's account-for-embedding/loss-in-pipeline-split rule: embedding and
 * head count as one layer each and the layers + 2 are split as evenly as
 * possible, the stages after the first taking one more where they do not
 * divide.  An explicit split (transformer layers per chunk) overrides it.
 *
 * Sharding of a stage on its dp x tp mesh (Shoeybi et al. 2019; Narayanan
 * et al. 2021; Korthikanti et al. 2022):
 * - axis 0 (dp) splits the batch of every op that reads batched data;
 * - axis 1 (tp) splits, per op, the first label sized like a tensor-
 *   parallel dim: the output dim of a linear fed by a norm (column
 *   parallel: attention heads or key/value groups, MLP width, vocabulary of
 *   the head) or the vocabulary of an embedding table.  A linear reading
 *   such a split contracts it (row parallel) and leaves partial sums;
 *   attention, its softmax and the MLP activation follow the heads and the
 *   width; the embedding and the cross-entropy are vocabulary parallel;
 * - with sequence parallelism (sp) the ops that carry no tensor-parallel
 *   dim (norms, dropout, residual adds, the row-parallel biases) split the
 *   sequence over tp instead of repeating the work;
 * - collectives follow the layouts: partial sums are all-reduced where an
 *   op needs them whole, reduce-scattered where it needs them split over
 *   the sequence; a sequence split is all-gathered where an op needs the
 *   whole tensor (so per layer 2 all-reduces each way without sp, 2
 *   all-gathers and 2 reduce-scatters each way with it; a tensor gathered
 *   in forward is not gathered again for the weight gradient, Megatron
 *   overlapping that second all-gather with the input-gradient GEMM);
 *   partial sums of the backward of q, k and v are added before reducing,
 *   as Megatron's fused QKV GEMM does; a weight gradient left partial over
 *   tp (norm gains and biases under sp) is accumulated partial and
 *   all-reduced once per step;
 * - data parallelism and ZeRO, exactly as given: zero 0 all-reduces the
 *   accumulated gradients once per step; zero 1 (Megatron's distributed
 *   optimizer) shards the optimizer state over dp, reduce-scatters the
 *   gradients and all-gathers the updated weights once per step; zero 2
 *   also shards the gradients: with one microbatch per step they are
 *   reduce-scattered into shards as they are made, under gradient
 *   accumulation once per step (whole gradients accumulate in between, as
 *   FSDP does under a pipeline schedule); zero 3 (FSDP) also shards the
 *   weights at rest.  Where gradients are dp shards, each layer's weights
 *   and gradients are one flat buffer (FSDP's FlatParameter): one all-
 *   gather before the layer's forward, one before its backward, one
 *   reduce-scatter of its gradients per microbatch, the buffer padded to
 *   a multiple of dp.  The dp shard of a weight (its optimizer state, and
 *   its memory at rest) is one of its dims not split over tp, the one
 *   padding least; a dim the axis does not divide is padded to the
 *   ceiling, as FSDP pads its flat buffer.
 *
 * Reads: a training graph, a cluster, a PassManual.
 * Writes: an IrPlan's stages (strategies, ways, collectives).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/intra.h"

/* ------------------------------------------------------------------ */
/* Layers to stages                                                     */

int pass_megatron_split(const IrGraph *g, int S, const int *layers, int *first, int *last,
			char *why, size_t n)
{
	int L = g->nlayers;
	if (S < 1 || S > L) {
		snprintf(why, n, "pp*v = %d stages but the model has %d layers", S, L);
		return -1;
	}
	if (S == 1 && !layers) {
		first[0] = 0;
		last[0] = L - 1;
		return 0;
	}
	int mid = L - 2; /* transformer layers between embedding and head */
	if (mid < 1) {
		snprintf(why, n, "the model has no layers between its first and last to split");
		return -1;
	}
	int *per = malloc(sizeof(int) * (size_t)S);
	if (!per)
		abort();
	if (layers) {
		int sum = 0;
		for (int i = 0; i < S; i++) {
			if (layers[i] < 0 || (layers[i] == 0 && i > 0 && i < S - 1) ||
			    (layers[i] == 0 && S == 1)) {
				snprintf(why, n, "layers=: stage %d gets %d layers (only the first and "
					 "last may get none: the embedding or head alone)", i, layers[i]);
				free(per);
				return -1;
			}
			sum += layers[i];
			per[i] = layers[i];
		}
		if (sum != mid) {
			snprintf(why, n, "layers=: the split adds up to %d but the model has %d "
				 "layers between embedding and head", sum, mid);
			free(per);
			return -1;
		}
	} else if (mid % S == 0) {
		for (int i = 0; i < S; i++)
			per[i] = mid / S;
	} else {
		/* embedding and head as one layer each: units 0 and mid + 1; S <= L
		 * leaves every stage a unit, the first and last may keep only the
		 * embedding or the head */
		int U = mid + 2, base = U / S, extra = U % S;
		for (int i = 0; i < S; i++)
			per[i] = base + (i >= 1 && i <= extra ? 1 : 0);
		per[0] -= 1;
		per[S - 1] -= 1;
	}
	int at = 1;
	for (int i = 0; i < S; i++) {
		first[i] = i ? at : 0;
		at += per[i];
		last[i] = i == S - 1 ? L - 1 : at - 1;
	}
	free(per);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The rule                                                             */

enum { MAX_TP_SIZES = 16 };

typedef struct {
	const IrGraph *g;
	int n0, n1;
	bool sp;
	int zero;
	int nmicro;                    /* microbatches per step */
	int64_t tp_size[MAX_TP_SIZES]; /* sizes a tensor-parallel label has */
	int ntp;
	unsigned char *batched;        /* per tensor: batch dim first */
	int *first_fwd, *first_bwd;    /* per weight: its first forward / backward reader */
} Rule;

static int label_index(char c) { return __builtin_ctzll(ir_label_bit(c)); }

static void add_tp_size(Rule *R, int64_t n)
{
	for (int i = 0; i < R->ntp; i++)
		if (R->tp_size[i] == n)
			return;
	if (R->ntp < MAX_TP_SIZES)
		R->tp_size[R->ntp++] = n;
}

static bool is_tp_size(const Rule *R, int64_t n)
{
	for (int i = 0; i < R->ntp; i++)
		if (R->tp_size[i] == n)
			return true;
	return false;
}

static bool is_norm(const IrOp *op)
{
	return op->kind == IR_LAYERNORM || op->kind == IR_RMSNORM;
}

/* The tensor-parallel sizes, found by structure: the vocabulary of an
 * embedding table, the output dim of a linear fed by a norm (q, k, v, the
 * MLP's first linear(s), the head). */
static void find_tp_sizes(Rule *R)
{
	const IrGraph *g = R->g;
	for (int o = 0; o < g->nfwd_ops; o++) {
		const IrOp *op = &g->ops[o];
		if (op->kind == IR_GATHER && g->tensors[op->in[0]].role == IR_T_WEIGHT) {
			add_tp_size(R, g->tensors[op->in[0]].dim[0]);
			continue;
		}
		if (op->kind != IR_EINSUM || op->nin != 2)
			continue;
		for (int k = 0; k < 2; k++) {
			const IrTensor *W = &g->tensors[op->in[k]], *X = &g->tensors[op->in[1 - k]];
			if (W->role != IR_T_WEIGHT || X->producer < 0 ||
			    !is_norm(&g->ops[X->producer]))
				continue;
			for (int d = 0; op->lab[k][d]; d++) {
				char l = op->lab[k][d];
				if (strchr(op->lab[op->nin], l) && !strchr(op->lab[1 - k], l)) {
					add_tp_size(R, W->dim[d]);
					break;
				}
			}
		}
	}
}

/* batched[t]: the tensor carries the batch dim first (propagated from the
 * inputs: an output is batched when it keeps the batch label of a batched
 * input at dim 0; weight gradients are not). */
static void find_batched(Rule *R)
{
	const IrGraph *g = R->g;
	unsigned char *b = R->batched;
	for (int t = 0; t < g->ntensors; t++)
		b[t] = g->tensors[t].role == IR_T_INPUT && g->tensors[t].ndim > 0 &&
		       g->tensors[t].dim[0] == g->batch;
	for (int o = 0; o < g->nops; o++) {
		const IrOp *op = &g->ops[o];
		char bl = 0;
		for (int k = 0; k < op->nin && !bl; k++)
			if (b[op->in[k]])
				bl = op->lab[k][0];
		for (int k = 0; k < op->nout; k++)
			b[op->out[k]] = bl && op->lab[op->nin + k][0] == bl;
	}
}

static void find_readers(Rule *R)
{
	const IrGraph *g = R->g;
	for (int t = 0; t < g->ntensors; t++)
		R->first_fwd[t] = R->first_bwd[t] = -1;
	for (int o = 0; o < g->nops; o++) {
		const IrOp *op = &g->ops[o];
		if (op->phase == IR_UPDATE)
			continue;
		for (int k = 0; k < op->nin; k++) {
			int t = op->in[k];
			if (g->tensors[t].role != IR_T_WEIGHT)
				continue;
			int *f = op->phase == IR_FWD ? &R->first_fwd[t] : &R->first_bwd[t];
			if (*f < 0)
				*f = o;
		}
	}
}

/* The dim of weight-shaped tensor t (labels lab, tp axes ax) the dp axis
 * shards under ZeRO: the one leaving each device the fewest (padded)
 * elements, a dim not split over tp first among equals; a tensor whose
 * only dim is split over tp is split over dp too (ZeRO shards every
 * parameter).  -1 if none. */
static int zero_dim(const Rule *R, const IrTensor *t, const char *lab, const uint8_t *ax)
{
	int best = -1;
	double least = INFINITY;
	for (int pass = 0; pass < 2; pass++)
		for (int d = 0; d < t->ndim; d++) {
			bool on_tp = ax[label_index(lab[d])] & 2;
			if (on_tp != (pass == 1) || t->dim[d] < 1)
				continue;
			double e = 1;
			for (int i = 0; i < t->ndim; i++) {
				int64_t n = (ax[label_index(lab[i])] & 2) ? R->n1 : 1;
				if (i == d)
					n *= R->n0;
				e *= (double)((t->dim[i] + n - 1) / n);
			}
			if (e < least) {
				least = e;
				best = d;
			}
		}
	return best;
}

/* Are gradient accumulators dp shards, reduce-scattered every microbatch?
 * ZeRO-3 (FSDP FULL_SHARD) always; ZeRO-2 only with one microbatch per
 * step: under gradient accumulation it reduces once per step into the
 * optimizer's shard, accumulating whole gradients in between, as PyTorch's
 * pipeline schedules drive FSDP (gradient sync requested on the last
 * backward only: torch.distributed.pipelining, stage.py,
 * backward_maybe_with_nosync) and as Megatron-LM's distributed optimizer
 * does (docs/simulator.md). */
static bool shards_grads(const Rule *R)
{
	return R->zero >= 3 || (R->zero == 2 && R->nmicro <= 1);
}

/* Axes per label of op (bit 1: axis 0, bit 2: axis 1). */
static void rule_axes(const Rule *R, const IrOp *op, uint8_t ax[64])
{
	const IrGraph *g = R->g;
	memset(ax, 0, 64);
	char bl = 0;
	for (int k = 0; k < op->nin; k++)
		if (R->batched[op->in[k]]) {
			bl = op->lab[k][0];
			break;
		}
	if (bl && R->n0 > 1)
		ax[label_index(bl)] = 1;
	if (R->n1 > 1) {
		bool tp = false;
		for (int k = 0; k < op->nin + op->nout && !tp; k++) {
			const IrTensor *t = &g->tensors[k < op->nin ? op->in[k] : op->out[k - op->nin]];
			for (int i = 0; i < t->ndim; i++) {
				char l = op->lab[k][i];
				if (l == bl || ax[label_index(l)] || !is_tp_size(R, t->dim[i]))
					continue;
				ax[label_index(l)] = 2;
				tp = true;
				break;
			}
		}
		if (!tp && R->sp && bl) {
			/* sequence parallel: the sequence dim of a batched operand, unless
			 * a weight carries it (position embeddings stay whole) */
			char sl = 0;
			for (int k = 0; k < op->nin + op->nout && !sl; k++) {
				int ti = k < op->nin ? op->in[k] : op->out[k - op->nin];
				const IrTensor *t = &g->tensors[ti];
				if (R->batched[ti] && t->ndim >= 2 && t->dim[1] == g->seq &&
				    op->lab[k][1] != bl)
					sl = op->lab[k][1];
			}
			for (int k = 0; k < op->nin && sl; k++)
				if (g->tensors[op->in[k]].role == IR_T_WEIGHT && strchr(op->lab[k], sl))
					sl = 0;
			if (sl)
				ax[label_index(sl)] = 2;
		}
	}
	if (R->n0 > 1 && ((op->kind == IR_ADAM && R->zero >= 1) ||
			  (op->kind == IR_ACCUM && shards_grads(R)))) {
		const IrTensor *t = &g->tensors[op->out[0]];
		int d = zero_dim(R, t, op->lab[op->nin], ax);
		if (d >= 0)
			ax[label_index(op->lab[op->nin][d])] |= 1;
	}
}

/* Devices operand k is split over, padded to the ceiling per dim (numel
 * over the padded elements per device). */
static double operand_ways(const Rule *R, const IrOp *op, int k, const uint8_t *ax, int axes)
{
	const IrGraph *g = R->g;
	const IrTensor *t = &g->tensors[k < op->nin ? op->in[k] : op->out[k - op->nin]];
	double numel = 1, local = 1;
	for (int i = 0; i < t->ndim; i++) {
		int a = ax[label_index(op->lab[k][i])] & axes;
		int64_t n = ((a & 1) ? R->n0 : 1) * ((a & 2) ? R->n1 : 1);
		numel *= (double)t->dim[i];
		local *= (double)((t->dim[i] + n - 1) / n);
	}
	return local > 0 ? numel / local : 1;
}

/* Bytes per device of operand k over the dp axis alone (the buffer a tp
 * collective moves). */
static double dp_local_bytes(const Rule *R, const IrOp *op, int k, const uint8_t *ax)
{
	const IrTensor *t = &R->g->tensors[k < op->nin ? op->in[k] : op->out[k - op->nin]];
	return ir_tensor_bytes(t) / operand_ways(R, op, k, ax, 1);
}

static const char *strategy_string(IrArena *ar, const IrOp *op, const uint8_t *ax)
{
	char buf[128];
	return ir_strdup(ar, pass_strategy_string(op, ax, buf, sizeof buf));
}

/* A sum of two gradients of one tensor. */
static bool gsum_add(const IrOp *op)
{
	return op->phase == IR_BWD && op->kind == IR_ELEMENTWISE && op->nin == 2 && op->fn &&
	       !strcmp(op->fn, "add");
}

/* Layout of a tensor over the tp axis. */
enum { TP_WHOLE = -2, TP_PARTIAL = -1 }; /* else: the dim split over tp */

/* Layout operand k needs under ax: the dim it splits over tp, or whole. */
static int tp_need(const Rule *R, const IrOp *op, int k, const uint8_t *ax)
{
	const IrTensor *t = &R->g->tensors[k < op->nin ? op->in[k] : op->out[k - op->nin]];
	for (int i = 0; i < t->ndim; i++)
		if (ax[label_index(op->lab[k][i])] & 2)
			return i;
	return TP_WHOLE;
}

typedef struct {
	IrComm *v;
	int n, cap;
} Comms;

static void comm_push(Comms *c, IrComm x)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->v = realloc(c->v, sizeof(IrComm) * (size_t)c->cap);
		if (!c->v)
			abort();
	}
	c->v[c->n++] = x;
}

/* Bytes of weight w sharded over dp as ZeRO does, gathered (tp-local,
 * padded): what an all-gather of it delivers to each device. */
static double zero_gathered_bytes(const Rule *R, const IrOp *adam, const uint8_t *ax)
{
	const IrTensor *t = &R->g->tensors[adam->out[0]];
	double local = ir_tensor_bytes(t) / operand_ways(R, adam, adam->nin, ax, 3);
	return local * R->n0;
}

/*
 * FSDP's flat parameters (Zhao et al., "PyTorch FSDP", VLDB 2023, section
 * 3.2): each wrapped layer's weights are one flat buffer, padded so the dp
 * axis divides it, sharded at rest; one all-gather of it before the layer's
 * forward, one before its backward, one reduce-scatter of its gradients.
 * Per layer of the stage (index layer - first_layer): the gathered bytes
 * (tp-local), and the first forward and backward op reading one of its
 * weights.  n = 0 when no gradient is a dp shard.
 */
typedef struct {
	int n;
	double *bytes;
	int *first_fwd, *first_bwd;
	int *rs_done;
} Flat;

static void flat_build(const Rule *R, const IrStagePlan *s, const int *adam_of,
		       uint8_t (*adam_ax)[64], Flat *f)
{
	const IrGraph *g = R->g;
	memset(f, 0, sizeof *f);
	if (!shards_grads(R) || R->n0 <= 1)
		return;
	int nl = s->last_layer - s->first_layer + 1;
	f->n = nl;
	f->bytes = calloc((size_t)nl, sizeof(double));
	f->first_fwd = malloc(sizeof(int) * (size_t)nl);
	f->first_bwd = malloc(sizeof(int) * (size_t)nl);
	f->rs_done = calloc((size_t)nl, sizeof(int));
	double *elems = calloc((size_t)nl, sizeof(double));
	if (!f->bytes || !f->first_fwd || !f->first_bwd || !f->rs_done || !elems)
		abort();
	for (int l = 0; l < nl; l++)
		f->first_fwd[l] = f->first_bwd[l] = -1;
	for (int w = 0; w < g->ntensors; w++) {
		if (adam_of[w] < 0 || g->tensors[w].role != IR_T_WEIGHT)
			continue;
		const IrOp *a = &g->ops[adam_of[w]];
		int l = a->layer - s->first_layer;
		const IrTensor *t = &g->tensors[a->out[0]];
		double e = (double)ir_tensor_numel(t) / operand_ways(R, a, a->nin, adam_ax[w], 2);
		elems[l] += e;
		f->bytes[l] += e * (double)ir_dtype_size(t->dtype);
		int rf = R->first_fwd[w], rb = R->first_bwd[w];
		if (rf >= 0 && (f->first_fwd[l] < 0 || rf < f->first_fwd[l]))
			f->first_fwd[l] = rf;
		if (rb >= 0 && (f->first_bwd[l] < 0 || rb < f->first_bwd[l]))
			f->first_bwd[l] = rb;
	}
	/* padded to a multiple of the dp size, in whole elements */
	for (int l = 0; l < nl; l++)
		if (elems[l] > 0)
			f->bytes[l] *= ceil(elems[l] / R->n0) * R->n0 / elems[l];
	free(elems);
}

static void flat_free(Flat *f)
{
	free(f->bytes);
	free(f->first_fwd);
	free(f->first_bwd);
	free(f->rs_done);
}

static int rule_stage(const Rule *R, IrPlan *p, IrStagePlan *s, IrError *e)
{
	const IrGraph *g = R->g;
	int n0 = R->n0, n1 = R->n1;
	int nops = 0;
	for (int o = 0; o < g->nops; o++)
		nops += g->ops[o].layer >= s->first_layer && g->ops[o].layer <= s->last_layer;
	if (!nops)
		return ir_fail(e, "", 0, "stage of layers %d..%d has no ops", s->first_layer,
			       s->last_layer);
	int *state = malloc(sizeof(int) * (size_t)(g->ntensors + 1));
	int *ops = malloc(sizeof(int) * (size_t)nops);
	const char **strat = malloc(sizeof(char *) * (size_t)nops);
	int *ways = malloc(sizeof(int) * (size_t)nops);
	uint8_t(*adam_ax)[64] = calloc((size_t)g->ntensors + 1, 64); /* per weight */
	int *adam_of = malloc(sizeof(int) * (size_t)(g->ntensors + 1));
	if (!state || !ops || !strat || !ways || !adam_ax || !adam_of)
		abort();
	for (int t = 0; t < g->ntensors; t++) {
		state[t] = TP_WHOLE;
		adam_of[t] = -1;
	}
	/* the update ops first: where ZeRO-3 shards each weight */
	for (int o = 0; o < g->nops; o++) {
		const IrOp *op = &g->ops[o];
		if (op->kind != IR_ADAM || op->layer < s->first_layer || op->layer > s->last_layer)
			continue;
		int w = g->tensors[op->out[0]].weight;
		if (w >= 0) {
			adam_of[w] = o;
			rule_axes(R, op, adam_ax[w]);
		}
	}
	Flat fl;
	flat_build(R, s, adam_of, adam_ax, &fl);
	Comms cm = {0};
	int j = 0;
	for (int o = 0; o < g->nops; o++) {
		const IrOp *op = &g->ops[o];
		if (op->layer < s->first_layer || op->layer > s->last_layer)
			continue;
		uint8_t ax[64];
		rule_axes(R, op, ax);
		int used = 0;
		for (int i = 0; i < 64; i++)
			used |= ax[i];
		ops[j] = o;
		strat[j] = strategy_string(&p->arena, op, ax);
		ways[j] = ((used & 1) ? n0 : 1) * ((used & 2) ? n1 : 1);
		j++;
		/* ZeRO-3: a layer's weights at rest are dp shards of one flat
		 * buffer, gathered whole before the layer's first forward and
		 * first backward use */
		bool reads_weight = false;
		for (int k = 0; k < op->nin; k++)
			reads_weight |= g->tensors[op->in[k]].role == IR_T_WEIGHT;
		for (int l = 0; l < fl.n && R->zero >= 3 && reads_weight && op->phase != IR_UPDATE;
		     l++)
			if (fl.first_fwd[l] == o || fl.first_bwd[l] == o)
				comm_push(&cm, (IrComm){.op = o, .kind = SIM_ALL_GATHER, .axis = 0,
							.weight = true, .bytes = fl.bytes[l]});
		/* tensor parallelism: bring each activation or gradient input into
		 * the layout this op reads it in */
		bool adds_partials = gsum_add(op) && state[op->in[0]] == TP_PARTIAL &&
				     state[op->in[1]] == TP_PARTIAL;
		for (int k = 0; k < op->nin && n1 > 1 && !adds_partials; k++) {
			int t = op->in[k];
			IrRole role = g->tensors[t].role;
			if (role == IR_T_WEIGHT || role == IR_T_OPT || (k && op->in[k - 1] == t))
				continue;
			int have = state[t], need = tp_need(R, op, k, ax);
			if (have == need || have == TP_WHOLE)
				continue;
			if (op->kind == IR_ACCUM && have == TP_PARTIAL) {
				/* accumulated as partial sums, all-reduced once per step */
				comm_push(&cm, (IrComm){.op = o, .kind = SIM_ALL_REDUCE, .axis = 1,
							.per_step = true,
							.bytes = dp_local_bytes(R, op, 1, ax)});
				continue;
			}
			double b = dp_local_bytes(R, op, k, ax);
			SimColl kind = have == TP_PARTIAL ?
					       (need == TP_WHOLE ? SIM_ALL_REDUCE : SIM_REDUCE_SCATTER) :
					       (need == TP_WHOLE ? SIM_ALL_GATHER : SIM_ALL_TO_ALL);
			if (kind == SIM_ALL_TO_ALL)
				b /= n1;
			comm_push(&cm, (IrComm){.op = o, .kind = kind, .axis = 1, .bytes = b});
			state[t] = need; /* converted once for every later reader */
		}
		for (int k = 0; k < op->nout; k++) {
			int t = op->out[k];
			bool partial = adds_partials;
			for (int i = 0; i < op->nin && !partial; i++)
				for (const char *l = op->lab[i]; *l && !partial; l++)
					partial = (ax[label_index(*l)] & 2) &&
						  !strchr(op->lab[op->nin + k], *l);
			state[t] = partial ? TP_PARTIAL : tp_need(R, op, op->nin + k, ax);
		}
		/* data parallelism and ZeRO over the dp axis */
		if (op->kind == IR_ACCUM && n0 > 1) {
			int w = g->tensors[op->out[0]].weight;
			bool owned = w >= 0 && adam_of[w] >= 0;
			double full = ir_tensor_bytes(&g->tensors[op->out[0]]) /
				      operand_ways(R, op, 1, ax, 2);
			if (R->zero >= 1 && owned && shards_grads(R)) {
				/* the layer's gradients as one flat buffer, once per
				 * microbatch (at its first accumulation) */
				int l = op->layer - s->first_layer;
				if (!fl.rs_done[l]++)
					comm_push(&cm, (IrComm){.op = o, .kind = SIM_REDUCE_SCATTER,
								.axis = 0, .weight = true,
								.bytes = fl.bytes[l]});
			} else if (R->zero >= 1 && owned) {
				full = zero_gathered_bytes(R, &g->ops[adam_of[w]], adam_ax[w]);
				comm_push(&cm, (IrComm){.op = o, .kind = SIM_REDUCE_SCATTER, .axis = 0,
							.per_step = true, .bytes = full});
			} else {
				comm_push(&cm, (IrComm){.op = o, .kind = SIM_ALL_REDUCE, .axis = 0,
							.per_step = true, .bytes = full});
			}
		}
		if (op->kind == IR_ADAM && n0 > 1 && R->zero >= 1 && R->zero <= 2) {
			int w = g->tensors[op->out[0]].weight;
			if (w >= 0)
				comm_push(&cm, (IrComm){.op = o, .kind = SIM_ALL_GATHER, .axis = 0,
							.per_step = true,
							.bytes = zero_gathered_bytes(R, op, ax)});
		}
	}
	IrStagePlan keep = *s;
	ir_stage_alloc(p, s, nops, cm.n);
	s->first_layer = keep.first_layer;
	s->last_layer = keep.last_layer;
	s->mesh = keep.mesh;
	s->n0 = n0;
	s->n1 = n1;
	memcpy(s->op, ops, sizeof(int) * (size_t)nops);
	memcpy(s->strategy, strat, sizeof(char *) * (size_t)nops);
	memcpy(s->ways, ways, sizeof(int) * (size_t)nops);
	if (cm.n)
		memcpy(s->comm, cm.v, sizeof(IrComm) * (size_t)cm.n);
	free(cm.v);
	free(state);
	free(ops);
	free(strat);
	free(ways);
	free(adam_ax);
	free(adam_of);
	flat_free(&fl);
	return 0;
}

int pass_megatron_plan(const IrGraph *g, const IrCluster *c, const PassManual *m,
		       int64_t global_batch, IrPlan *plan, IrError *e)
{
	char why[256];
	if (pass_manual_check(c, m, global_batch, why, sizeof why))
		return ir_fail(e, "", 0, "%s", why);
	if (!g->training)
		return ir_fail(e, g->file, 0, "Megatron's plan needs the training graph");
	int S = m->pp * m->v;
	if (m->nsplit && m->nsplit != S)
		return ir_fail(e, "", 0, "layers= gives %d stages but pp*v = %d", m->nsplit, S);
	int *first = malloc(sizeof(int) * (size_t)S), *last = malloc(sizeof(int) * (size_t)S);
	if (!first || !last)
		abort();
	if (pass_megatron_split(g, S, m->nsplit ? m->split : NULL, first, last, why, sizeof why)) {
		free(first);
		free(last);
		return ir_fail(e, "", 0, "%s", why);
	}
	Rule R = {.g = g, .n0 = m->dp, .n1 = m->tp, .sp = m->sp && m->tp > 1, .zero = m->zero,
		  .nmicro = (int)(global_batch / ((int64_t)m->dp * m->mbs))};
	R.batched = calloc((size_t)g->ntensors + 1, 1);
	R.first_fwd = malloc(sizeof(int) * (size_t)(g->ntensors + 1));
	R.first_bwd = malloc(sizeof(int) * (size_t)(g->ntensors + 1));
	if (!R.batched || !R.first_fwd || !R.first_bwd)
		abort();
	find_tp_sizes(&R);
	find_batched(&R);
	find_readers(&R);
	plan->global_batch = global_batch;
	plan->microbatch = (int64_t)m->dp * m->mbs;
	plan->nmicro = (int)(global_batch / plan->microbatch);
	plan->schedule = m->schedule;
	plan->chunks = m->v;
	plan->recompute = m->recompute;
	plan->zero = m->zero;
	plan->nstages = S;
	plan->stages = ir_alloc(&plan->arena, sizeof(IrStagePlan) * (size_t)S);
	int rc = 0;
	for (int i = 0; i < S && !rc; i++) {
		IrStagePlan *s = &plan->stages[i];
		memset(s, 0, sizeof *s);
		s->first_layer = first[i];
		s->last_layer = last[i];
		s->mesh = pass_rank_mesh(c, m->dp * m->tp, i % m->pp);
		s->n0 = m->dp;
		s->n1 = m->tp;
		rc = rule_stage(&R, plan, s, e);
	}
	free(R.batched);
	free(R.first_fwd);
	free(R.first_bwd);
	free(first);
	free(last);
	return rc;
}
