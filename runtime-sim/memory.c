/*
 * memory.c -- bytes per device of one pipeline stage: weights, gradients,
 * optimizer state, and the activations one microbatch keeps from its
 * forward to its backward pass, under each recomputation mode.
 *
 * Reads: the training graph, a stage plan's ops, strategies and ways.
 * Writes: a SimStageMemory.  The schedule (how many microbatches are in
 * flight) is simulate.c's business; this file prices one microbatch.
 *
 * A tensor lives on a device in the layout of the op that wrote it: its
 * bytes divided by the mesh axes its producer's strategy splits its dims
 * over.  (A consumer that needs another layout reshards a transient copy.)
 * Tensors produced outside the stage take the layout of their reader.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime-sim/sim.h"

int sim_strategy_parse(const char *s, uint8_t axes[64])
{
	memset(axes, 0, 64);
	if (!s)
		return 0;
	const char *p = s;
	while (*p) {
		uint64_t bit = ir_label_bit(*p);
		if (!bit || p[1] != '=')
			return -1;
		p += 2;
		int a = 0;
		while (*p == '0' || *p == '1') {
			a |= *p == '0' ? 1 : 2;
			p++;
		}
		if (!a)
			return -1;
		axes[__builtin_ctzll(bit)] = (uint8_t)a;
		if (*p == ',') {
			p++;
			if (!*p)
				return -1;
		} else if (*p) {
			return -1;
		}
	}
	return 0;
}

/* The stage as seen by this file: where each graph op sits in it, and the
 * parsed axes of every entry. */
typedef struct {
	const IrGraph *g;
	const IrStagePlan *s;
	int n[2];
	int *pos;          /* graph op -> entry of s, -1 outside the stage */
	uint8_t (*ax)[64]; /* per entry */
} View;

/* Entry i's strategy names only labels of its op, and its ways are the
 * devices those labels' mesh axes span. */
static int check_entry(const IrGraph *g, const IrStagePlan *s, int i, const uint8_t ax[64],
		       int line, IrError *e)
{
	const IrOp *op = &g->ops[s->op[i]];
	uint64_t have = 0;
	for (int k = 0; k < op->nin + op->nout; k++)
		for (const char *l = op->lab[k]; *l; l++)
			have |= ir_label_bit(*l);
	for (const char *q = s->strategy[i]; q && *q; q++)
		if ((q == s->strategy[i] || q[-1] == ',') && !(ir_label_bit(*q) & have))
			return ir_fail(e, "", line,
				       "op %s: strategy '%s' names label '%c', which the op does not "
				       "have", op->name, s->strategy[i], *q);
	int used = 0;
	for (int b = 0; b < 64; b++)
		used |= ax[b];
	int ways = ((used & 1) ? s->n0 : 1) * ((used & 2) ? s->n1 : 1);
	if (s->ways[i] != ways)
		return ir_fail(e, "", line,
			       "op %s: ways=%d, but strategy '%s' divides its work over %d devices",
			       op->name, s->ways[i], s->strategy[i], ways);
	return 0;
}

static int view_open(View *v, const IrGraph *g, const IrStagePlan *s, IrError *e)
{
	memset(v, 0, sizeof *v);
	v->g = g;
	v->s = s;
	v->n[0] = s->n0;
	v->n[1] = s->n1;
	v->pos = ir_xmalloc(sizeof(int) * (size_t)(g->nops ? g->nops : 1));
	v->ax = ir_xmalloc(64 * (size_t)(s->nops ? s->nops : 1));
	if (!v->pos || !v->ax) {
		free(v->pos);
		free(v->ax);
		return ir_fail(e, "", 0, "out of memory");
	}
	for (int i = 0; i < g->nops; i++)
		v->pos[i] = -1;
	for (int i = 0; i < s->nops; i++) {
		int o = s->op[i];
		if (o < 0 || o >= g->nops || (i && o <= s->op[i - 1])) {
			free(v->pos);
			free(v->ax);
			return ir_fail(e, "", 0,
				       "stage of layers %d..%d: op %d is not an op of the graph in order",
				       s->first_layer, s->last_layer, o);
		}
		v->pos[o] = i;
		int line = s->op_line ? s->op_line[i] : 0;
		int bad = sim_strategy_parse(s->strategy[i], v->ax[i])
				  ? ir_fail(e, "", line, "op %s: malformed strategy '%s'",
					    g->ops[o].name, s->strategy[i])
				  : check_entry(g, s, i, v->ax[i], line, e);
		if (bad) {
			free(v->pos);
			free(v->ax);
			return -1;
		}
	}
	return 0;
}

static void view_close(View *v)
{
	free(v->pos);
	free(v->ax);
}

double sim_operand_ways(const IrGraph *g, const IrOp *op, int k, const uint8_t axes[64], int n0,
			int n1)
{
	const IrTensor *t = &g->tensors[k < op->nin ? op->in[k] : op->out[k - op->nin]];
	double numel = 1, local = 1, w = 1;
	bool padded = false;
	for (int d = 0; op->lab[k][d]; d++) {
		int a = axes[__builtin_ctzll(ir_label_bit(op->lab[k][d]))];
		int64_t n = (int64_t)((a & 1) ? n0 : 1) * ((a & 2) ? n1 : 1);
		w *= (double)n;
		if (d < t->ndim) {
			numel *= (double)t->dim[d];
			local *= (double)((t->dim[d] + n - 1) / n);
			padded |= t->dim[d] % n != 0;
		}
	}
	return padded && local > 0 ? numel / local : w;
}

double sim_op_padding(const IrGraph *g, const IrOp *op, const uint8_t axes[64], int n0, int n1)
{
	double f = 1;
	uint64_t seen = 0;
	for (int k = 0; k < op->nin + op->nout; k++)
		for (const char *l = op->lab[k]; *l; l++) {
			uint64_t bit = ir_label_bit(*l);
			int a = axes[__builtin_ctzll(bit)];
			if (!a || (seen & bit))
				continue;
			seen |= bit;
			int64_t n = (int64_t)((a & 1) ? n0 : 1) * ((a & 2) ? n1 : 1);
			int64_t L = ir_op_label_size(g, op, *l);
			if (L > 0 && L % n)
				f *= (double)((L + n - 1) / n * n) / (double)L;
		}
	return f;
}

/* Devices operand k of stage entry i is divided over (padded). */
static double split(const View *v, int i, int k)
{
	return sim_operand_ways(v->g, &v->g->ops[v->s->op[i]], k, v->ax[i], v->n[0], v->n[1]);
}

/* Bytes per device of tensor t as read by operand k of entry i: in its
 * producer's layout when the producer is in the stage, else the reader's. */
static double tensor_dev_bytes(const View *v, int t, int i, int k)
{
	const IrTensor *T = &v->g->tensors[t];
	double b = ir_tensor_bytes(T);
	int p = T->producer >= 0 ? v->pos[T->producer] : -1;
	if (p >= 0) {
		const IrOp *po = &v->g->ops[T->producer];
		for (int j = 0; j < po->nout; j++)
			if (po->out[j] == t)
				return b / split(v, p, po->nin + j);
	}
	return b / split(v, i, k);
}

/* Elementwise functions whose derivative does not depend on their input:
 * their backward reads only the incoming gradient (a causal mask is a
 * fixed pattern, rotary a fixed rotation). */
static bool linear_fn(const char *fn)
{
	static const char *lin[] = {"scale", "mask", "neg", "rotary"};
	if (!fn)
		return false;
	for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++)
		if (!strcmp(fn, lin[i]))
			return true;
	return false;
}

static bool is_dropout(const IrOp *op)
{
	return op->kind == IR_ELEMENTWISE && op->fn && !strncmp(op->fn, "dropout", 7);
}

SimRead sim_bwd_reads(const IrGraph *g, const IrOp *b, int k)
{
	if (b->phase != IR_BWD || b->fwd < 0)
		return SIM_READ_YES;
	const IrOp *f = &g->ops[b->fwd];
	if (f->nin < 1 || b->in[k] != f->in[0] || f->kind != IR_ELEMENTWISE)
		return SIM_READ_YES;
	if (linear_fn(f->fn))
		return SIM_READ_NO;
	return is_dropout(f) ? SIM_READ_MASK : SIM_READ_YES;
}

static bool is_activation(const IrGraph *g, int t)
{
	const IrTensor *T = &g->tensors[t];
	if (T->role == IR_T_INPUT)
		return true;
	return T->role == IR_T_ACT && T->producer >= 0 && g->ops[T->producer].phase == IR_FWD;
}

/* Finds the attention cores; core[] as sim_attention_cores, and when grp
 * is given grp[o] = the score einsum of the core that forward op o (score,
 * chain or context einsum) belongs to, -1 elsewhere. */
static int find_cores(const IrGraph *g, unsigned char *core, int *grp)
{
	int found = 0;
	memset(core, 0, (size_t)g->nops);
	if (grp)
		for (int o = 0; o < g->nops; o++)
			grp[o] = -1;
	for (int i = 0; i < g->nfwd_ops; i++) {
		const IrOp *e2 = &g->ops[i];
		if (e2->phase != IR_FWD || e2->kind != IR_EINSUM || e2->nin != 2 ||
		    !is_activation(g, e2->in[0]) || !is_activation(g, e2->in[1]))
			continue;
		for (int k = 0; k < 2; k++) {
			int chain[16], n = 0;
			bool softmax = false;
			int t = e2->in[k];
			while (n < 16) {
				int p = g->tensors[t].producer;
				if (p < 0 || g->ops[p].phase != IR_FWD)
					break;
				const IrOp *po = &g->ops[p];
				if (po->kind == IR_EINSUM) {
					if (softmax && po->nin == 2 && is_activation(g, po->in[0]) &&
					    is_activation(g, po->in[1])) {
						core[p] = 1;
						for (int j = 0; j < n; j++)
							core[chain[j]] = 1;
						if (grp) {
							grp[p] = grp[i] = p;
							for (int j = 0; j < n; j++)
								grp[chain[j]] = p;
						}
						found++;
					}
					break;
				}
				if ((po->kind != IR_ELEMENTWISE && po->kind != IR_SOFTMAX) ||
				    po->nin != 1)
					break;
				softmax |= po->kind == IR_SOFTMAX;
				chain[n++] = p;
				t = po->in[0];
			}
		}
	}
	return found;
}

int sim_attention_cores(const IrGraph *g, unsigned char *core)
{
	return find_cores(g, core, NULL);
}

int sim_attention_groups(const IrGraph *g, int *grp)
{
	unsigned char *core = ir_xcalloc((size_t)g->nops + 1, 1);
	if (!core)
		abort();
	int n = find_cores(g, core, grp);
	for (int o = g->nfwd_ops; o < g->nops; o++) {
		int f = g->ops[o].fwd;
		if (g->ops[o].phase == IR_BWD && f >= 0 && f < g->nfwd_ops)
			grp[o] = grp[f];
	}
	free(core);
	return n;
}

/* Bytes per device of the softmax statistics (one fp32 log-sum-exp per
 * row of scores) that fused attention keeps for backward, per core. */
static void fused_stats(const View *v, const unsigned char *core, double *per_layer, int L0,
			int nl)
{
	const IrGraph *g = v->g;
	for (int i = 0; i < v->s->nops; i++) {
		int o = v->s->op[i];
		const IrOp *op = &g->ops[o];
		if (op->phase != IR_FWD || op->kind != IR_SOFTMAX || !core[o])
			continue;
		const IrTensor *t = &g->tensors[op->out[0]];
		double rows = (double)ir_tensor_numel(t) / (double)t->dim[t->ndim - 1];
		int li = op->layer - L0;
		if (li >= 0 && li < nl)
			per_layer[li] += rows * 4.0 / split(v, i, op->nin);
	}
}

/* One thing backward reads: a forward tensor, or a dropout's mask. */
typedef struct {
	double bytes; /* per device */
	int layer;    /* layer of the backward op that reads it */
	bool core;    /* written by an attention core op */
	bool inner;   /* written inside that layer (not one of its inputs) */
} Item;

typedef struct {
	Item *v;
	int n, cap;
} Items;

static void push(Items *it, Item x)
{
	if (it->n == it->cap) {
		it->cap = it->cap ? 2 * it->cap : 256;
		it->v = ir_xrealloc(it->v, sizeof(Item) * (size_t)it->cap);
		if (!it->v)
			abort();
	}
	it->v[it->n++] = x;
}

/* Activations: what the stage's backward ops read of the forward pass. */
static void backward_reads(const View *v, const unsigned char *core, unsigned char *seen_t,
			   unsigned char *seen_mask, Items *it)
{
	const IrGraph *g = v->g;
	for (int i = 0; i < v->s->nops; i++) {
		const IrOp *b = &g->ops[v->s->op[i]];
		if (b->phase != IR_BWD || b->fwd < 0)
			continue;
		const IrOp *f = &g->ops[b->fwd];
		for (int k = 0; k < b->nin; k++) {
			int t = b->in[k];
			if (!is_activation(g, t))
				continue;
			SimRead how = sim_bwd_reads(g, b, k);
			if (how == SIM_READ_NO)
				continue;
			if (how == SIM_READ_MASK) {
				/* a 1-byte keep mask of the dropout's output */
				if (seen_mask[b->fwd])
					continue;
				seen_mask[b->fwd] = 1;
				int fp = v->pos[b->fwd];
				double n = (double)ir_tensor_numel(&g->tensors[f->out[0]]);
				double d = fp >= 0 ? split(v, fp, f->nin) : split(v, i, k);
				push(it, (Item){n / d, b->layer, core[b->fwd] != 0, true});
				continue;
			}
			if (seen_t[t])
				continue;
			seen_t[t] = 1;
			int p = g->tensors[t].producer;
			bool inner = p >= 0 && g->ops[p].layer == b->layer;
			push(it, (Item){tensor_dev_bytes(v, t, i, k), b->layer, p >= 0 && core[p] != 0,
					inner});
		}
	}
}

/* Layer inputs: forward tensors a layer's forward ops read that were
 * written outside the layer (kept under full recomputation). */
static double layer_inputs(const View *v, int layer, unsigned char *seen_t)
{
	const IrGraph *g = v->g;
	double sum = 0;
	for (int i = 0; i < v->s->nops; i++) {
		const IrOp *op = &g->ops[v->s->op[i]];
		if (op->phase != IR_FWD || op->layer != layer)
			continue;
		for (int k = 0; k < op->nin; k++) {
			int t = op->in[k];
			int p = g->tensors[t].producer;
			if (!is_activation(g, t) || (p >= 0 && g->ops[p].layer == layer) || seen_t[t])
				continue;
			seen_t[t] = 1;
			sum += tensor_dev_bytes(v, t, i, k);
		}
	}
	return sum;
}

static bool layer_has_loss(const View *v, int layer)
{
	const IrLayer *L = &v->g->layers[layer];
	for (int o = L->first_op; o <= L->last_op && o < v->g->nfwd_ops; o++)
		if (v->g->ops[o].kind == IR_LOSS)
			return true;
	return false;
}

static void activations(const View *v, IrRecompute rc, SimStageMemory *m)
{
	const IrGraph *g = v->g;
	unsigned char *core = ir_xcalloc((size_t)g->nops + 1, 1);
	unsigned char *seen_mask = ir_xcalloc((size_t)g->nops + 1, 1);
	unsigned char *seen_t = ir_xcalloc((size_t)g->ntensors + 1, 1);
	if (!core || !seen_mask || !seen_t)
		abort();
	sim_attention_cores(g, core);
	Items it = {0};
	backward_reads(v, core, seen_t, seen_mask, &it);

	int L0 = v->s->first_layer, nl = v->s->last_layer - L0 + 1;
	double *work = ir_xcalloc((size_t)nl, sizeof(double));
	double *stats = ir_xcalloc((size_t)nl, sizeof(double));
	if (!work || !stats)
		abort();
	m->act_bytes = m->act_work_bytes = 0;
	if (rc == IR_RECOMP_FULL)
		memset(seen_t, 0, (size_t)g->ntensors + 1);
	/* fused attention keeps none of the core's tensors, only its softmax
	 * statistics (FlashAttention's log-sum-exp) */
	if (g->fused_attention) {
		fused_stats(v, core, stats, L0, nl);
		for (int l = 0; l < nl; l++) {
			if (rc == IR_RECOMP_FULL && !layer_has_loss(v, L0 + l))
				work[l] += stats[l];
			else
				m->act_bytes += stats[l];
		}
	}
	for (int j = 0; j < it.n; j++) {
		const Item *x = &it.v[j];
		int li = x->layer - L0;
		bool in_stage = li >= 0 && li < nl;
		if (g->fused_attention && x->core)
			continue;
		switch (rc) {
		case IR_RECOMP_NONE:
			m->act_bytes += x->bytes;
			break;
		case IR_RECOMP_SELECTIVE:
			if (x->core && in_stage)
				work[li] += x->bytes;
			else
				m->act_bytes += x->bytes;
			break;
		case IR_RECOMP_FULL:
			if (!in_stage || layer_has_loss(v, x->layer))
				m->act_bytes += x->bytes;
			else if (x->inner)
				work[li] += x->bytes;
			break; /* a recomputed layer's inputs: counted below */
		}
	}
	if (rc == IR_RECOMP_FULL)
		for (int l = 0; l < nl; l++)
			if (!layer_has_loss(v, L0 + l))
				m->act_bytes += layer_inputs(v, L0 + l, seen_t);
	for (int l = 0; l < nl; l++)
		if (work[l] > m->act_work_bytes)
			m->act_work_bytes = work[l];
	free(work);
	free(stats);
	free(it.v);
	free(core);
	free(seen_mask);
	free(seen_t);
}

/* Weights, gradients, optimizer state of the weights the stage updates,
 * and copies of weights it reads but another stage updates (tied). */
static void model_state(const View *v, int zero, SimStageMemory *m)
{
	const IrGraph *g = v->g;
	const IrStagePlan *s = v->s;
	int *adam = ir_xmalloc(sizeof(int) * (size_t)(g->ntensors + 1)); /* weight -> entry */
	unsigned char *done = ir_xcalloc((size_t)g->ntensors + 1, 1);
	if (!adam || !done)
		abort();
	for (int t = 0; t < g->ntensors; t++)
		adam[t] = -1;
	for (int i = 0; i < s->nops; i++) {
		const IrOp *op = &g->ops[s->op[i]];
		if (op->kind == IR_ADAM) {
			int w = g->tensors[op->out[0]].weight;
			if (w >= 0)
				adam[w] = i;
			for (int k = 1; k < op->nin; k++)
				m->opt_bytes += ir_tensor_bytes(&g->tensors[op->in[k]]) / split(v, i, k);
		} else if (op->kind == IR_ACCUM) {
			m->grad_bytes += ir_tensor_bytes(&g->tensors[op->out[0]]) / split(v, i, 1);
		}
	}
	/* weights at rest: the first forward consumer's layout (or the update's) */
	for (int i = 0; i < s->nops; i++) {
		const IrOp *op = &g->ops[s->op[i]];
		if (op->phase != IR_FWD)
			continue;
		for (int k = 0; k < op->nin; k++) {
			int w = op->in[k];
			const IrTensor *W = &g->tensors[w];
			if (W->role != IR_T_WEIGHT || done[w])
				continue;
			done[w] = 1;
			double b = ir_tensor_bytes(W);
			if (adam[w] < 0) {
				/* tied: a copy here, its gradient summed with the owner's */
				m->weight_bytes += b / split(v, i, k);
				m->grad_bytes += b / split(v, i, k);
				m->tied_grad_bytes += b / split(v, i, k);
			} else if (zero >= 3) {
				const IrOp *a = &g->ops[s->op[adam[w]]];
				m->weight_bytes += b / split(v, adam[w], a->nin);
			} else {
				m->weight_bytes += b / split(v, i, k);
			}
		}
	}
	/* updated weights no forward op of the stage reads */
	for (int t = 0; t < g->ntensors; t++)
		if (adam[t] >= 0 && !done[t]) {
			const IrOp *a = &g->ops[s->op[adam[t]]];
			m->weight_bytes += ir_tensor_bytes(&g->tensors[t]) / split(v, adam[t], a->nin);
		}
	free(adam);
	free(done);
}

int sim_stage_memory(const IrGraph *g, const IrCluster *c, const IrStagePlan *s, IrRecompute rc,
		     int zero, SimStageMemory *m, IrError *e)
{
	(void)c;
	memset(m, 0, sizeof *m);
	if (s->n0 <= 0 || s->n1 <= 0)
		return ir_fail(e, "", 0, "stage of layers %d..%d has logical mesh %dx%d",
			       s->first_layer, s->last_layer, s->n0, s->n1);
	if (s->first_layer < 0 || s->last_layer >= g->nlayers || s->first_layer > s->last_layer)
		return ir_fail(e, "", 0, "stage layers %d..%d are not within the model's %d layers",
			       s->first_layer, s->last_layer, g->nlayers);
	View v;
	if (view_open(&v, g, s, e))
		return -1;
	model_state(&v, zero, m);
	activations(&v, rc, m);
	view_close(&v);
	return 0;
}
