/*
 * intra_op.c -- the intra-operator pass: how every op of one pipeline
 * stage is sharded on one logical mesh (Alpa's intra-op ILP, solved with
 * GLPK through solver/).
 *
 * Reads: the training graph, the stage's layer range, the logical mesh,
 *        the hardware model (runtime-sim/) for every cost in seconds.
 * Writes: an IrStagePlan: per op its strategy and ways, the collectives
 *        and resharding it needs (per microbatch or per step), memory.
 *
 * Groups: an op that only follows its first operand (elementwise,
 * softmax, norms, transpose, reshape, gradient accumulation, the loss)
 * shares the strategy variable of that operand's producer; every weight
 * is a node of its own whose strategy is its storage layout.  Each group
 * has a one-hot choice; each pair of groups joined by tensors pays the
 * resharding between the producer's layout and the one the consumer
 * reads, linearised by a transportation block over the distinct layouts
 * (exact for 0/1 choices, and far smaller than one variable per pair of
 * strategies).  Per-microbatch work counts nmicro times per step; the
 * update and the gradient reduction after accumulation count once.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "passes/intra.h"
#include "solver/elim.h"
#include "solver/ilp.h"

typedef struct {
	int nops;
	int *ops;          /* graph op indices, leader first (empty for weight nodes) */
	int weight;        /* weight tensor of a weight node, else -1 */
	int nstrat;
	double *cost;      /* seconds per step of each strategy */
	double *comm;      /* of which own collectives */
	double *mem;       /* bytes per device */
	PassOpChoice *ch;  /* nstrat x nops */
	PassSpec *wspec;   /* weight nodes: the storage layout of each strategy */
	int var0;          /* first ILP column, -1 when fixed (one strategy) */
	int chosen;
} Group;

typedef struct {
	int src_group, dst_group;
	int src_op, src_out;  /* producer op and output index; -1 for weight storage */
	int dst_op, dst_in;   /* consumer op and operand index; -1 for weight storage */
	int tensor;
	double count;
} Link;

typedef struct {
	PassCtx x;
	const PassIntraOptions *o;
	int first_layer, last_layer;
	int *group_of;     /* op -> group, -1 outside the stage */
	int *pos_in_group; /* op -> index within its group */
	int *wgroup;       /* weight tensor -> its group, -1 */
	bool *keep_partial;/* tensor on a weight-gradient path: reduced once per step */
	Group *groups;
	int ngroups, cap_groups;
	Link *links;
	int nlinks, cap_links;
	int nmicro;
	/* identical-layer runs: solve two representatives, scale, replicate */
	bool *skip_layer;  /* layer stands in the ILP only through its run's representatives */
	double *scale;     /* per layer: copies each kept layer stands for */
	int *run;          /* per layer: run id, -1 */
	int *rep_op;       /* op of a skipped layer -> the op it copies (second representative) */
	const bool *force_leader; /* expansion: ops that lead a group in the reduced plan */
	const uint8_t *expert;    /* PASS_EXPERT: per tensor, a bit per expert dim */
} Plan;

static const char *method_names[PASS_NMETHODS] = {"ilp",       "data",  "zero2", "zero3",
						  "heuristic", "expert"};
const char *pass_method_name(PassMethod m) { return m < PASS_NMETHODS ? method_names[m] : "?"; }
int pass_method_parse(const char *s, PassMethod *m)
{
	for (int i = 0; i < PASS_NMETHODS; i++)
		if (!strcmp(s, method_names[i])) {
			*m = (PassMethod)i;
			return 0;
		}
	return -1;
}

const char *pass_status_name(PassStatus s)
{
	static const char *n[] = {"optimal", "feasible", "infeasible", "timeout", "error"};
	return s <= PASS_ERROR ? n[s] : "?";
}

static bool in_range(const Plan *P, int op)
{
	int l = P->x.g->ops[op].layer;
	return l >= P->first_layer && l <= P->last_layer;
}

static bool in_stage(const Plan *P, int op)
{
	return in_range(P, op) && !(P->skip_layer && P->skip_layer[P->x.g->ops[op].layer]);
}

/* How many copies a link stands for: inside the second representative,
 * every layer it is copied to; elsewhere one. */
static double link_scale(const Plan *P, int la, int lb)
{
	if (!P->run || la < 0 || lb < 0 || P->run[la] < 0 || P->run[la] != P->run[lb])
		return 1.0;
	return la == lb ? P->scale[la] : 1.0;
}

static double op_count(const Plan *P, int op)
{
	return P->x.g->ops[op].phase == IR_UPDATE ? 1.0 : (double)P->nmicro;
}

/* Ops that take their layout from their first operand. */
static bool is_follower(const IrGraph *g, const IrOp *op)
{
	switch (op->kind) {
	case IR_ELEMENTWISE:
	case IR_SOFTMAX:
	case IR_TRANSPOSE:
	case IR_RESHAPE:
	case IR_POOL:
	case IR_LOSS:
		break;
	case IR_LAYERNORM:
	case IR_RMSNORM:
		if (op->nout != 1)
			return false;
		break;
	default:
		return false;
	}
	int p = g->tensors[op->in[0]].producer;
	return p >= 0;
}

/* Linear ops pass partial sums through untouched. */
static bool is_linear(const IrOp *op)
{
	return op->kind == IR_ACCUM || op->kind == IR_TRANSPOSE || op->kind == IR_RESHAPE ||
	       (op->kind == IR_ELEMENTWISE && (!strcmp(op->fn, "add") || !strcmp(op->fn, "sub")));
}

static Group *new_group(Plan *P)
{
	if (P->ngroups == P->cap_groups) {
		P->cap_groups = P->cap_groups ? 2 * P->cap_groups : 256;
		P->groups = ir_xrealloc(P->groups, sizeof *P->groups * (size_t)P->cap_groups);
	}
	Group *gr = &P->groups[P->ngroups++];
	memset(gr, 0, sizeof *gr);
	gr->weight = -1;
	gr->var0 = -1;
	return gr;
}

static void add_link(Plan *P, Link l)
{
	if (P->nlinks == P->cap_links) {
		P->cap_links = P->cap_links ? 2 * P->cap_links : 1024;
		P->links = ir_xrealloc(P->links, sizeof *P->links * (size_t)P->cap_links);
	}
	P->links[P->nlinks++] = l;
}

/* ------------------------------------------------------------------ */
/* Strategy enumeration                                                 */

/* Follower layout from the spec of its first operand. */
static int follow(const Plan *P, int f, const PassSpec *in0, PassOpChoice *c)
{
	const IrGraph *g = P->x.g;
	const IrOp *op = &g->ops[f];
	uint8_t ax[64] = {0};
	int used = 0;
	for (int d = 0; d < in0->nd; d++) {
		int a = in0->dim[d];
		if (!a)
			continue;
		if (used & a)
			return -1;
		used |= a;
		ax[pass_label_index(op->lab[0][d])] |= (uint8_t)a;
	}
	bool keep = P->keep_partial[op->out[0]];
	if (pass_op_choice(&P->x, f, ax, keep, c))
		return -1;
	if (in0->partial) {
		if (is_linear(op)) {
			for (int k = 0; k < op->nin; k++)
				c->in[k].partial = in0->partial;
			for (int k = 0; k < op->nout; k++)
				c->out[k].partial = in0->partial;
			if (!keep) { /* reduce now, after the linear op */
				PassSpec full = c->out[0];
				full.partial = 0;
				double bytes = ir_tensor_bytes(&g->tensors[op->out[0]]);
				int n = 0;
				c->comm += pass_reshard_time(P->x.mesh, bytes, &c->out[0], &full,
							     c->own + c->nown, &n, 2 - c->nown);
				for (int i = 0; i < n; i++) {
					c->own[c->nown + i].op = f;
					c->own[c->nown + i].reshard = false;
				}
				c->nown += n;
				c->out[0].partial = 0;
			}
		} else {
			/* a non-linear op needs the full sums first */
			PassSpec full = *in0;
			full.partial = 0;
			double bytes = ir_tensor_bytes(&g->tensors[op->in[0]]);
			int n = 0;
			c->comm += pass_reshard_time(P->x.mesh, bytes, in0, &full, c->own + c->nown,
						     &n, 2 - c->nown);
			for (int i = 0; i < n; i++) {
				c->own[c->nown + i].op = f;
				c->own[c->nown + i].reshard = false;
			}
			c->nown += n;
		}
	}
	return 0;
}

/* Spec of tensor t as written by op p under choice c. */
static const PassSpec *out_spec(const IrGraph *g, int p, const PassOpChoice *c, int t)
{
	const IrOp *op = &g->ops[p];
	for (int k = 0; k < op->nout; k++)
		if (op->out[k] == t)
			return &c->out[k];
	return &c->out[0];
}

/* Candidate labels of an op: splittable, larger than one. */
static int candidates(const Plan *P, const IrOp *op, char *labs)
{
	int n = 0;
	uint64_t seen = 0;
	for (int k = 0; k < op->nin + op->nout; k++)
		for (int d = 0; op->lab[k][d]; d++) {
			char l = op->lab[k][d];
			uint64_t b = ir_label_bit(l);
			if ((seen & b) || (op->local & b))
				continue;
			seen |= b;
			if (ir_op_label_size(P->x.g, op, l) > 1)
				labs[n++] = l;
		}
	return n;
}

static void group_push(Plan *P, Group *gr, const PassOpChoice *chs, double mem)
{
	int s = gr->nstrat++;
	gr->ch = ir_xrealloc(gr->ch, sizeof *gr->ch * (size_t)gr->nstrat * (size_t)gr->nops);
	gr->cost = ir_xrealloc(gr->cost, sizeof(double) * (size_t)gr->nstrat);
	gr->comm = ir_xrealloc(gr->comm, sizeof(double) * (size_t)gr->nstrat);
	gr->mem = ir_xrealloc(gr->mem, sizeof(double) * (size_t)gr->nstrat);
	memcpy(&gr->ch[(size_t)s * (size_t)gr->nops], chs, sizeof *chs * (size_t)gr->nops);
	double cost = 0, comm = 0;
	for (int i = 0; i < gr->nops; i++) {
		double n = op_count(P, gr->ops[i]);
		cost += n * (chs[i].compute + chs[i].comm);
		comm += n * chs[i].comm;
	}
	gr->cost[s] = cost;
	gr->comm[s] = comm;
	gr->mem[s] = mem;
}

/* Memory per device of a group's ops under a choice: gradient
 * accumulators and optimizer state. */
static double ops_memory(const Plan *P, const Group *gr, const PassOpChoice *chs)
{
	const IrGraph *g = P->x.g;
	double mem = 0;
	for (int i = 0; i < gr->nops; i++) {
		const IrOp *op = &g->ops[gr->ops[i]];
		if (op->kind == IR_ACCUM) {
			const PassSpec *s = &chs[i].out[0];
			int w = 1;
			for (int d = 0; d < s->nd; d++)
				w *= pass_axes_size(P->x.mesh, s->dim[d]);
			mem += ir_tensor_bytes(&g->tensors[op->out[0]]) / w;
		} else if (op->kind == IR_ADAM) {
			for (int k = 1; k < 4; k++) {
				const PassSpec *s = &chs[i].in[k];
				int w = 1;
				for (int d = 0; d < s->nd; d++)
					w *= pass_axes_size(P->x.mesh, s->dim[d]);
				mem += ir_tensor_bytes(&g->tensors[op->in[k]]) / w;
			}
		}
	}
	return mem;
}

/*
 * Expert dims, per tensor: a weight's dim whose label is batch-like in a
 * forward einsum that reads it (in every input and in the output: e in
 * ebch,ehf->ebcf), one bit per dim; gradients and optimizer state take
 * their weight's bits.  Dense models have none.
 */
static uint8_t *expert_dims(const IrGraph *g)
{
	uint8_t *x = ir_xcalloc((size_t)g->ntensors + 1, 1);
	if (!x)
		abort();
	for (int o = 0; o < g->nfwd_ops; o++) {
		const IrOp *op = &g->ops[o];
		if (op->kind != IR_EINSUM || op->nin < 2)
			continue;
		for (int k = 0; k < op->nin; k++) {
			if (g->tensors[op->in[k]].role != IR_T_WEIGHT)
				continue;
			for (int d = 0; op->lab[k][d]; d++) {
				char c = op->lab[k][d];
				bool everywhere = strchr(op->lab[op->nin], c) != NULL;
				for (int j = 0; j < op->nin && everywhere; j++)
					everywhere = strchr(op->lab[j], c) != NULL;
				if (everywhere)
					x[op->in[k]] |= (uint8_t)(1u << d);
			}
		}
	}
	for (int t = 0; t < g->ntensors; t++) {
		int w = g->tensors[t].weight;
		if (w >= 0 && w != t && g->tensors[w].role == IR_T_WEIGHT)
			x[t] = x[w];
	}
	return x;
}

bool pass_graph_has_experts(const IrGraph *g)
{
	uint8_t *x = expert_dims(g);
	bool any = false;
	for (int t = 0; t < g->ntensors && !any; t++)
		any = x[t] != 0;
	free(x);
	return any;
}

static bool state_role(IrRole role)
{
	return role == IR_T_WEIGHT || role == IR_T_WGRAD || role == IR_T_OPT;
}

/* Is this choice allowed by the method (baselines, forced ZeRO)? */
static bool allowed(const Plan *P, const Group *gr, const PassOpChoice *chs)
{
	const IrGraph *g = P->x.g;
	PassMethod m = P->o->method;
	int all = (P->x.mesh->n[0] > 1 ? 1 : 0) | (P->x.mesh->n[1] > 1 ? 2 : 0);
	const IrOp *lead = &g->ops[gr->ops[0]];
	int axes = 0;
	for (int i = 0; i < 64; i++)
		axes |= chs[0].ax[i];
	bool adam = lead->kind == IR_ADAM, accum = lead->kind == IR_ACCUM;
	/* forced ZeRO (a hand-written plan's knob) holds for the data and expert
	 * baselines too: optimizer state, then gradients, over axis 0 */
	bool zero_state = P->x.mesh->n[0] > 1 &&
			  ((P->o->zero >= 1 && adam) || (P->o->zero >= 2 && accum));
	if (zero_state && (m == PASS_DATA || m == PASS_EXPERT))
		return (axes & 1) != 0;
	if (m == PASS_DATA || m == PASS_ZERO2 || m == PASS_ZERO3) {
		if (adam || accum)
			return m == PASS_DATA ? axes == 0 : axes == all;
		/* elsewhere only activation dims may be split, over all axes at once */
		for (int k = 0; k < lead->nin + lead->nout; k++) {
			int t = k < lead->nin ? lead->in[k] : lead->out[k - lead->nin];
			IrRole role = g->tensors[t].role;
			bool state = state_role(role);
			for (int d = 0; lead->lab[k][d]; d++) {
				int a = chs[0].ax[pass_label_index(lead->lab[k][d])];
				if (a && (a != all || state))
					return false;
			}
		}
		return true;
	}
	if (m == PASS_EXPERT) {
		/* model state split only on its expert dims (over any axes: experts
		 * over one axis of a dp x ep mesh); activations any way */
		for (int k = 0; k < lead->nin + lead->nout; k++) {
			int t = k < lead->nin ? lead->in[k] : lead->out[k - lead->nin];
			if (!state_role(g->tensors[t].role))
				continue;
			for (int d = 0; lead->lab[k][d]; d++)
				if (chs[0].ax[pass_label_index(lead->lab[k][d])] &&
				    !(P->expert[t] >> d & 1))
					return false;
		}
		return true;
	}
	if (zero_state)
		return (axes & 1) != 0;
	return true;
}

static bool weight_allowed(const Plan *P, int w, const PassSpec *s)
{
	PassMethod m = P->o->method;
	const IrTensor *t = &P->x.g->tensors[w];
	int all = (P->x.mesh->n[0] > 1 ? 1 : 0) | (P->x.mesh->n[1] > 1 ? 2 : 0);
	int used = 0;
	for (int d = 0; d < s->nd; d++)
		used |= s->dim[d];
	if (P->o->zero >= 3 && P->x.mesh->n[0] > 1 && (m == PASS_DATA || m == PASS_EXPERT))
		return (used & 1) != 0; /* forced ZeRO-3: weights over axis 0 too */
	if (m == PASS_DATA || m == PASS_ZERO2)
		return used == 0;
	if (m == PASS_ZERO3)
		return used == all;
	if (m == PASS_EXPERT) {
		for (int d = 0; d < s->nd; d++)
			if (s->dim[d] && !(P->expert[w] >> d & 1))
				return false;
		return true;
	}
	if (m == PASS_HEURISTIC) {
		int big = 0;
		for (int d = 1; d < t->ndim; d++)
			if (t->dim[d] > t->dim[big])
				big = d;
		return s->dim[big] == all || (all == 0);
	}
	if (P->o->zero >= 3 && P->x.mesh->n[0] > 1 && !(used & 1))
		return false;
	return true;
}

static void enumerate_weight(Plan *P, Group *gr, int w)
{
	const IrTensor *t = &P->x.g->tensors[w];
	const IrLogicalMesh *m = P->x.mesh;
	for (int d0 = -1; d0 < t->ndim; d0++) {
		if (d0 >= 0 && m->n[0] == 1)
			break;
		for (int d1 = -1; d1 < t->ndim; d1++) {
			if (d1 >= 0 && m->n[1] == 1)
				break;
			PassSpec s;
			memset(&s, 0, sizeof s);
			s.nd = (uint8_t)t->ndim;
			if (d0 >= 0)
				s.dim[d0] |= 1;
			if (d1 >= 0)
				s.dim[d1] |= 2;
			bool ok = true;
			int ways = 1;
			for (int d = 0; d < t->ndim; d++) {
				int n = pass_axes_size(m, s.dim[d]);
				ways *= n;
				if (t->dim[d] % n)
					ok = false;
			}
			if (!ok || !weight_allowed(P, w, &s))
				continue;
			gr->nstrat++;
			gr->wspec = ir_xrealloc(gr->wspec, sizeof *gr->wspec * (size_t)gr->nstrat);
			gr->cost = ir_xrealloc(gr->cost, sizeof(double) * (size_t)gr->nstrat);
			gr->comm = ir_xrealloc(gr->comm, sizeof(double) * (size_t)gr->nstrat);
			gr->mem = ir_xrealloc(gr->mem, sizeof(double) * (size_t)gr->nstrat);
			gr->wspec[gr->nstrat - 1] = s;
			gr->cost[gr->nstrat - 1] = 0;
			gr->comm[gr->nstrat - 1] = 0;
			gr->mem[gr->nstrat - 1] = ir_tensor_bytes(t) / ways;
		}
	}
}

/* Gradient accumulation may keep partial sums over mesh axes the layout
 * does not split (reduced once per step, full-size accumulator) or hold
 * reduced, sharded sums (reduced every microbatch, smaller accumulator). */
static void accum_variants(Plan *P, Group *gr, PassOpChoice *chs)
{
	int used = 0, mesh = (P->x.mesh->n[0] > 1 ? 1 : 0) | (P->x.mesh->n[1] > 1 ? 2 : 0);
	for (int d = 0; d < chs[0].out[0].nd; d++)
		used |= chs[0].out[0].dim[d];
	for (int p = 0; p <= 3; p++) {
		if ((p & ~mesh) || (p & used))
			continue;
		PassOpChoice c = chs[0];
		c.in[0].partial = c.out[0].partial = (uint8_t)p;
		if (allowed(P, gr, &c))
			group_push(P, gr, &c, ops_memory(P, gr, &c));
	}
}

static void enumerate_group(Plan *P, Group *gr)
{
	const IrGraph *g = P->x.g;
	const IrLogicalMesh *m = P->x.mesh;
	int lead = gr->ops[0];
	const IrOp *op = &g->ops[lead];
	char labs[64];
	int nl = candidates(P, op, labs);
	PassOpChoice *chs = ir_xcalloc((size_t)gr->nops, sizeof *chs);
	int n0 = m->n[0] > 1 ? nl : 0, n1 = m->n[1] > 1 ? nl : 0;
	for (int i0 = -1; i0 < n0; i0++)
		for (int i1 = -1; i1 < n1; i1++) {
			uint8_t ax[64] = {0};
			if (i0 >= 0)
				ax[pass_label_index(labs[i0])] |= 1;
			if (i1 >= 0)
				ax[pass_label_index(labs[i1])] |= 2;
			if (pass_op_choice(&P->x, lead, ax, P->keep_partial[op->out[0]], &chs[0]))
				continue;
			if (op->kind == IR_ACCUM) {
				accum_variants(P, gr, chs);
				continue;
			}
			bool ok = true;
			for (int i = 1; i < gr->nops && ok; i++) {
				int f = gr->ops[i];
				int t = g->ops[f].in[0];
				int p = g->tensors[t].producer;
				const PassSpec *src = out_spec(g, p, &chs[P->pos_in_group[p]], t);
				ok = follow(P, f, src, &chs[i]) == 0;
			}
			if (ok && allowed(P, gr, chs))
				group_push(P, gr, chs, ops_memory(P, gr, chs));
		}
	free(chs);
}

static bool is_grad_sum(const IrOp *op)
{
	return op->kind == IR_ELEMENTWISE && op->phase == IR_BWD && !strcmp(op->fn, "add");
}

/* Marks tensors whose partial sums may wait: everything consumed only by
 * gradient sums (the sum is reduced once, not each term) and by gradient
 * accumulation (reduced once per step). */
static void mark_partial(Plan *P)
{
	const IrGraph *g = P->x.g;
	size_t nt = g->ntensors > 0 ? (size_t)g->ntensors : 1;
	bool *other = ir_xcalloc(nt, sizeof(bool));
	bool *used = ir_xcalloc(nt, sizeof(bool));
	for (int i = 0; i < g->nops; i++) {
		const IrOp *op = &g->ops[i];
		bool sum = is_grad_sum(op) || op->kind == IR_ACCUM;
		for (int k = 0; k < op->nin; k++) {
			used[op->in[k]] = true;
			if (!sum)
				other[op->in[k]] = true;
		}
	}
	for (int t = 0; t < g->ntensors; t++)
		P->keep_partial[t] = used[t] && !other[t];
	/* an accumulator stays partial until the update reduces it */
	for (int i = 0; i < g->nops; i++)
		if (g->ops[i].kind == IR_ACCUM)
			P->keep_partial[g->ops[i].out[0]] = true;
	free(other);
	free(used);
}

static void build_groups(Plan *P)
{
	const IrGraph *g = P->x.g;
	for (int i = 0; i < g->nops; i++) {
		if (!in_stage(P, i))
			continue;
		const IrOp *op = &g->ops[i];
		int p = g->tensors[op->in[0]].producer;
		if (is_follower(g, op) && !(P->force_leader && P->force_leader[i]) && p >= 0 &&
		    P->group_of[p] >= 0 &&
		    P->groups[P->group_of[p]].weight < 0) {
			Group *gr = &P->groups[P->group_of[p]];
			gr->ops = ir_xrealloc(gr->ops, sizeof(int) * (size_t)(gr->nops + 1));
			P->pos_in_group[i] = gr->nops;
			gr->ops[gr->nops++] = i;
			P->group_of[i] = P->group_of[p];
		} else {
			Group *gr = new_group(P);
			gr->ops = ir_xmalloc(sizeof(int));
			gr->ops[0] = i;
			gr->nops = 1;
			P->group_of[i] = P->ngroups - 1;
			P->pos_in_group[i] = 0;
		}
	}
	/* weight nodes and links */
	for (int i = 0; i < g->nops; i++) {
		if (!in_stage(P, i))
			continue;
		const IrOp *op = &g->ops[i];
		int gi = P->group_of[i];
		for (int k = 0; k < op->nin; k++) {
			int t = op->in[k];
			const IrTensor *tt = &g->tensors[t];
			if (tt->role == IR_T_WEIGHT && tt->weight < 0) {
				if (P->wgroup[t] < 0) {
					Group *wg = new_group(P);
					wg->weight = t;
					P->wgroup[t] = P->ngroups - 1;
				}
				double sc = link_scale(P, tt->layer, op->layer);
				add_link(P, (Link){P->wgroup[t], gi, -1, -1, i, k, t, sc * op_count(P, i)});
				continue;
			}
			int p = tt->producer;
			if (p >= 0 && P->rep_op && P->rep_op[p] >= 0)
				p = P->rep_op[p]; /* written by a skipped copy: its representative */
			if (p < 0 || P->group_of[p] < 0)
				continue; /* data input or a tensor from another stage */
			if (k == 0 && P->group_of[p] == gi && P->pos_in_group[i] > 0)
				continue; /* the follower's own operand */
			int out = 0;
			for (int j = 0; j < g->ops[p].nout; j++)
				if (g->ops[p].out[j] == t)
					out = j;
			double sc = link_scale(P, g->ops[p].layer, op->layer);
			add_link(P, (Link){P->group_of[p], gi, p, out, i, k, t, sc * op_count(P, i)});
		}
		/* the updated weight is written back into the weight's storage once per step */
		if (op->kind == IR_ADAM) {
			int w = g->tensors[op->out[0]].weight;
			if (w >= 0 && P->wgroup[w] >= 0)
				add_link(P, (Link){gi, P->wgroup[w], i, 0, -1, -1, w,
						   link_scale(P, op->layer, g->tensors[w].layer)});
		}
	}
}

/* A skipped layer's ops reading tensors of another layer: the boundary
 * between two copies, or between the run and what follows.  The second
 * representative's op reads them instead, from the producer's representative. */
static void boundary_links(Plan *P)
{
	const IrGraph *g = P->x.g;
	if (!P->skip_layer)
		return;
	for (int i = 0; i < g->nops; i++) {
		if (!in_range(P, i) || !P->skip_layer[g->ops[i].layer])
			continue;
		const IrOp *op = &g->ops[i];
		int rep = P->rep_op[i];
		for (int k = 0; k < op->nin; k++) {
			int t = op->in[k];
			int p = g->tensors[t].producer;
			if (p < 0 || !in_range(P, p) || g->ops[p].layer == op->layer)
				continue; /* stage input, or inside the copy (scaled already) */
			if (P->rep_op[p] >= 0)
				p = P->rep_op[p];
			if (P->group_of[p] < 0)
				continue;
			int out = 0;
			for (int j = 0; j < g->ops[p].nout; j++)
				if (g->ops[p].out[j] == t)
					out = j;
			add_link(P, (Link){P->group_of[p], P->group_of[rep], p, out, rep, k, t,
					   op_count(P, i)});
		}
	}
}

/* Spec at one end of a link under a strategy of that end's group. */
static const PassSpec *link_spec(const Plan *P, const Link *l, bool src, int s)
{
	const Group *gr = &P->groups[src ? l->src_group : l->dst_group];
	if (gr->weight >= 0)
		return &gr->wspec[s];
	int op = src ? l->src_op : l->dst_op;
	const PassOpChoice *c = &gr->ch[(size_t)s * (size_t)gr->nops + (size_t)P->pos_in_group[op]];
	return src ? &c->out[l->src_out] : &c->in[l->dst_in];
}

/* ------------------------------------------------------------------ */
/* ILP                                                                  */

typedef struct {
	int a, b;      /* groups */
	int first, n;  /* links [first, first+n) after sorting */
} Edge;

static int cmp_link(const void *x, const void *y)
{
	const Link *a = x, *b = y;
	if (a->src_group != b->src_group)
		return a->src_group - b->src_group;
	return a->dst_group - b->dst_group;
}

static double edge_cost(const Plan *P, const Edge *e, int i, int j)
{
	double c = 0;
	for (int k = 0; k < e->n; k++) {
		const Link *l = &P->links[e->first + k];
		double bytes = ir_tensor_bytes(&P->x.g->tensors[l->tensor]);
		c += l->count * pass_reshard_time(P->x.mesh, bytes, link_spec(P, l, true, i),
						  link_spec(P, l, false, j), NULL, NULL, 0);
	}
	return c;
}

/* A cost matrix and which way classes() compares it. */
typedef struct {
	const double *C;
	int nb, dir, len;
} CostLines;

static bool same_line(int i, int j, const void *ctx)
{
	const CostLines *m = ctx;
	for (int k = 0; k < m->len; k++) {
		double u = m->dir ? m->C[(size_t)k * m->nb + i] : m->C[(size_t)i * m->nb + k];
		double v = m->dir ? m->C[(size_t)k * m->nb + j] : m->C[(size_t)j * m->nb + k];
		if (!(fabs(u - v) <= 1e-12 * (fabs(u) + fabs(v)) + 1e-15))
			return false;
	}
	return true;
}

/* Classes of identical rows (dir 0) or columns (dir 1) of matrix C (na x nb). */
static int classes(const double *C, int na, int nb, int dir, int *cls)
{
	int cnt = dir ? nb : na;
	int *rep = ir_xmalloc(sizeof(int) * (size_t)(cnt > 0 ? cnt : 1));
	CostLines m = {C, nb, dir, dir ? na : nb};
	int n = elim_classes(cnt, same_line, &m, cls, rep);
	free(rep);
	return n;
}

typedef struct {
	Edge e;
	double *C;
} Block;

/* The objective goes to GLPK in microseconds: costs in seconds (1e-9 ..
 * 1e-3) sit below GLPK's 1e-7 tolerances and would end the search early. */
#define ILP_UNIT 1e6

/* Step objective of one full assignment, straight from the definition. */
static double assignment_cost(const Plan *P, const int *pick, double *mem)
{
	double c = 0;
	*mem = 0;
	for (int gi = 0; gi < P->ngroups; gi++) {
		c += P->groups[gi].cost[pick[gi]];
		*mem += P->groups[gi].mem[pick[gi]];
	}
	for (int li = 0; li < P->nlinks; li++) {
		const Link *l = &P->links[li];
		double bytes = ir_tensor_bytes(&P->x.g->tensors[l->tensor]);
		c += l->count * pass_reshard_time(P->x.mesh, bytes,
						  link_spec(P, l, true, pick[l->src_group]),
						  link_spec(P, l, false, pick[l->dst_group]), NULL, NULL, 0);
	}
	return c;
}

/* Brute force over every combination of group strategies. */
static int solve_exhaustive(Plan *P, PassIntraResult *r)
{
	double combos = 1;
	for (int gi = 0; gi < P->ngroups; gi++)
		combos *= P->groups[gi].nstrat;
	if (combos > 1e7) {
		r->status = PASS_ERROR;
		snprintf(r->message, sizeof r->message, "%.3g combinations: too many to enumerate",
			 combos);
		return -1;
	}
	int *pick = ir_xcalloc((size_t)P->ngroups, sizeof(int));
	int *best = ir_xcalloc((size_t)P->ngroups, sizeof(int));
	double best_c = INFINITY;
	for (;;) {
		double mem, c = assignment_cost(P, pick, &mem);
		if ((P->o->memory_budget <= 0 || mem <= P->o->memory_budget) && c < best_c) {
			best_c = c;
			memcpy(best, pick, sizeof(int) * (size_t)P->ngroups);
		}
		int gi = 0;
		while (gi < P->ngroups && ++pick[gi] == P->groups[gi].nstrat)
			pick[gi++] = 0;
		if (gi == P->ngroups)
			break;
	}
	for (int gi = 0; gi < P->ngroups; gi++)
		P->groups[gi].chosen = best[gi];
	free(pick);
	free(best);
	if (isinf(best_c)) {
		r->status = PASS_INFEASIBLE;
		snprintf(r->message, sizeof r->message, "no combination fits the memory budget");
		return -1;
	}
	r->status = PASS_OPTIMAL;
	snprintf(r->message, sizeof r->message, "exhaustive search");
	return 0;
}

/* Bounds on variable elimination: table entries summed over the
 * eliminations (each a few additions) and per table; past them the ILP
 * solves the problem.  Work counts, not seconds. */
static const double ELIM_MAX_WORK = 1e7, ELIM_MAX_TABLE = 1e6;
/* When the LP relaxation is fractional, elimination up to these bounds
 * before branch-and-bound (about 1 ns per entry, so under half a second):
 * branching on the forced-ZeRO single-layer ILPs of a 39B GPT took up to
 * 15 s where elimination takes 0.3 s, but on a GPT layer on a 2x2 view
 * (7.6e8 entries) branching took 0.5 s and elimination over 2 s. */
static const double ELIM_MAX_WORK_FRACTIONAL = 3e8, ELIM_MAX_TABLE_FRACTIONAL = 4e6;

/*
 * Without a memory row the ILP is a sum of per-group costs and pairwise
 * resharding costs over one choice per group: variable elimination
 * minimises it exactly, in time linear in the groups where the graph of
 * groups has small induced width (a layer's chain with its residual and
 * weight side branches has width 2 or 3).  With a memory row, its
 * minimum is the ILP's optimum too when it meets the budget (a relaxation
 * whose optimum is feasible).  0 with every group's choice set; 1 when the
 * ILP must decide (too wide, or over the budget).
 */
static int solve_elim(Plan *P, const Block *blocks, int nblocks, double max_work,
		      double max_table, const char *how, PassIntraResult *r)
{
	int *var = ir_xmalloc(sizeof(int) * (size_t)(P->ngroups + 1));
	int *dom = ir_xmalloc(sizeof(int) * (size_t)(P->ngroups + 1));
	const double **un = ir_xmalloc(sizeof(double *) * (size_t)(P->ngroups + 1));
	int n = 0;
	for (int gi = 0; gi < P->ngroups; gi++) {
		Group *gr = &P->groups[gi];
		var[gi] = -1;
		if (gr->nstrat > 1) {
			var[gi] = n;
			dom[n] = gr->nstrat;
			un[n++] = gr->cost;
		}
	}
	ElimProblem *ep = elim_new(n, dom, un);
	if (!ep)
		ir_oom();
	for (int bi = 0; bi < nblocks; bi++)
		if (elim_add_pair(ep, var[blocks[bi].e.a], var[blocks[bi].e.b], blocks[bi].C))
			ir_oom();
	int *x = ir_xmalloc(sizeof(int) * (size_t)(n + 1));
	double min = 0;
	int rc = elim_solve(ep, max_work, max_table, x, &min);
	if (rc < 0)
		ir_oom();
	if (rc == 0 && P->o->memory_budget > 0) {
		double mem = 0;
		for (int gi = 0; gi < P->ngroups; gi++) {
			const Group *gr = &P->groups[gi];
			mem += gr->mem[var[gi] >= 0 ? x[var[gi]] : 0];
		}
		rc = mem > P->o->memory_budget;
	}
	if (rc == 0) {
		for (int gi = 0; gi < P->ngroups; gi++)
			P->groups[gi].chosen = var[gi] >= 0 ? x[var[gi]] : 0;
		r->status = PASS_OPTIMAL;
		r->variables = n;
		r->constraints = 0;
		snprintf(r->message, sizeof r->message,
			 "optimal: objective %.9g (variable elimination%s, width %d)", min * ILP_UNIT,
			 how, elim_width(ep));
	}
	elim_free(ep);
	free(x);
	free(var);
	free(dom);
	free(un);
	return rc;
}

static void free_blocks(Block *blocks, int nblocks)
{
	for (int bi = 0; bi < nblocks; bi++)
		free(blocks[bi].C);
	free(blocks);
}

static int solve(Plan *P, PassIntraResult *r)
{
	for (int gi = 0; gi < P->ngroups; gi++) {
		Group *gr = &P->groups[gi];
		if (gr->nstrat > 0)
			continue;
		r->status = PASS_INFEASIBLE;
		const IrGraph *g = P->x.g;
		snprintf(r->message, sizeof r->message,
			 "no strategy of method %s fits %s on the %dx%d mesh",
			 pass_method_name(P->o->method),
			 gr->weight >= 0 ? g->tensors[gr->weight].name : g->ops[gr->ops[0]].name,
			 P->x.mesh->n[0], P->x.mesh->n[1]);
		return -1;
	}
	if (P->o->exhaustive)
		return solve_exhaustive(P, r);
	/* 1. edge cost matrices; a side with one strategy folds into the other */
	if (P->nlinks > 1)
		qsort(P->links, (size_t)P->nlinks, sizeof *P->links, cmp_link);
	Block *blocks = NULL;
	int nblocks = 0;
	for (int i = 0; i < P->nlinks;) {
		Edge e = {P->links[i].src_group, P->links[i].dst_group, i, 0};
		while (i < P->nlinks && P->links[i].src_group == e.a && P->links[i].dst_group == e.b) {
			e.n++;
			i++;
		}
		Group *A = &P->groups[e.a], *B = &P->groups[e.b];
		int na = A->nstrat, nb = B->nstrat;
		double *C = ir_xmalloc(sizeof(double) * (size_t)na * (size_t)nb);
		double maxc = 0;
		for (int a = 0; a < na; a++)
			for (int b = 0; b < nb; b++) {
				C[(size_t)a * nb + b] = edge_cost(P, &e, a, b);
				if (C[(size_t)a * nb + b] > maxc)
					maxc = C[(size_t)a * nb + b];
			}
		if (maxc > 0 && e.a == e.b) {
			/* both ends in one group: only its own choices pair up */
			for (int s = 0; s < na; s++)
				A->cost[s] += C[(size_t)s * nb + s];
			maxc = 0;
		}
		if (maxc > 0 && (na == 1 || nb == 1)) {
			Group *V = na == 1 ? B : A;
			for (int s = 0; s < V->nstrat; s++)
				V->cost[s] += na == 1 ? C[s] : C[(size_t)s * nb];
		}
		if (maxc > 0 && na > 1 && nb > 1) {
			blocks = ir_xrealloc(blocks, sizeof *blocks * (size_t)(nblocks + 1));
			blocks[nblocks++] = (Block){e, C};
		} else {
			free(C);
		}
	}
	if (!P->o->glpk_only &&
	    !solve_elim(P, blocks, nblocks, ELIM_MAX_WORK, ELIM_MAX_TABLE, "", r)) {
		free_blocks(blocks, nblocks);
		return 0;
	}
	/* 2. one-hot choice per group */
	IlpProblem *ilp = ilp_new();
	if (!ilp)
		ir_oom();
	int ilp_bad = 0; /* an ilp_add_* failed */
	for (int gi = 0; gi < P->ngroups; gi++) {
		Group *gr = &P->groups[gi];
		if (gr->nstrat == 1)
			continue;
		gr->var0 = ilp_ncols(ilp);
		int *cols = ir_xmalloc(sizeof(int) * (size_t)gr->nstrat);
		double *ones = ir_xmalloc(sizeof(double) * (size_t)gr->nstrat);
		for (int s = 0; s < gr->nstrat; s++) {
			cols[s] = ilp_add_binary(ilp, gr->cost[s] * ILP_UNIT);
			ilp_bad |= cols[s] < 0;
			ones[s] = 1;
		}
		ilp_bad |= ilp_add_row(ilp, gr->nstrat, cols, ones, ILP_EQ, 1) < 0;
		free(cols);
		free(ones);
	}
	/* 3. transportation blocks between distinct layouts of two groups */
	for (int bi = 0; bi < nblocks; bi++) {
		Edge e = blocks[bi].e;
		double *C = blocks[bi].C;
		Group *A = &P->groups[e.a], *B = &P->groups[e.b];
		int na = A->nstrat, nb = B->nstrat;
		int *ra = ir_xmalloc(sizeof(int) * (size_t)na), *cb = ir_xmalloc(sizeof(int) * (size_t)nb);
		int P_ = classes(C, na, nb, 0, ra), Q = classes(C, na, nb, 1, cb);
		int *ya = ir_xmalloc(sizeof(int) * (size_t)P_ * (size_t)Q);
		for (int p = 0; p < P_; p++)
			for (int q = 0; q < Q; q++) {
				int a = 0, b = 0;
				while (ra[a] != p)
					a++;
				while (cb[b] != q)
					b++;
				ya[p * Q + q] =
					ilp_add_continuous(ilp, 0, 1, C[(size_t)a * nb + b] * ILP_UNIT);
				ilp_bad |= ya[p * Q + q] < 0;
			}
		int cap = (na > nb ? na : nb) + P_ + Q;
		int *cols = ir_xmalloc(sizeof(int) * (size_t)cap);
		double *vals = ir_xmalloc(sizeof(double) * (size_t)cap);
		for (int p = 0; p < P_; p++) {
			int n = 0;
			for (int q = 0; q < Q; q++) {
				cols[n] = ya[p * Q + q];
				vals[n++] = 1;
			}
			for (int a = 0; a < na; a++)
				if (ra[a] == p) {
					cols[n] = A->var0 + a;
					vals[n++] = -1;
				}
			ilp_bad |= ilp_add_row(ilp, n, cols, vals, ILP_EQ, 0) < 0;
		}
		for (int q = 0; q < Q; q++) {
			int n = 0;
			for (int p = 0; p < P_; p++) {
				cols[n] = ya[p * Q + q];
				vals[n++] = 1;
			}
			for (int b = 0; b < nb; b++)
				if (cb[b] == q) {
					cols[n] = B->var0 + b;
					vals[n++] = -1;
				}
			ilp_bad |= ilp_add_row(ilp, n, cols, vals, ILP_EQ, 0) < 0;
		}
		free(cols);
		free(vals);
		free(ya);
		free(ra);
		free(cb);
	}
	/* memory row */
	if (P->o->memory_budget > 0) {
		double fixed = 0;
		int n = 0;
		int *cols = ir_xmalloc(sizeof(int) * (size_t)(ilp_ncols(ilp) + 1));
		double *vals = ir_xmalloc(sizeof(double) * (size_t)(ilp_ncols(ilp) + 1));
		for (int gi = 0; gi < P->ngroups; gi++) {
			Group *gr = &P->groups[gi];
			if (gr->nstrat == 1) {
				fixed += gr->mem[0];
				continue;
			}
			for (int s = 0; s < gr->nstrat; s++)
				if (gr->mem[s] > 0) {
					cols[n] = gr->var0 + s;
					vals[n++] = gr->mem[s] / 1e9; /* GB keeps the row well scaled */
				}
		}
		if (fixed > P->o->memory_budget) {
			free(cols);
			free(vals);
			ilp_free(ilp);
			free_blocks(blocks, nblocks);
			r->status = PASS_INFEASIBLE;
			snprintf(r->message, sizeof r->message,
				 "fixed state alone needs %.4g GiB per device, budget %.4g GiB",
				 fixed / 1073741824.0, P->o->memory_budget / 1073741824.0);
			return -1;
		}
		if (n)
			ilp_bad |= ilp_add_row(ilp, n, cols, vals, ILP_LE,
					       (P->o->memory_budget - fixed) / 1e9) < 0;
		free(cols);
		free(vals);
	}
	r->variables = ilp_ncols(ilp);
	r->constraints = ilp_nrows(ilp);
	if (ilp_bad) {
		r->status = PASS_ERROR;
		snprintf(r->message, sizeof r->message, "building the ILP failed (%d columns)",
			 r->variables);
		ilp_free(ilp);
		free_blocks(blocks, nblocks);
		return -1;
	}
	IlpOptions io = {.time_limit_s = P->o->time_limit_s, .node_limit = P->o->node_limit};
	IlpResult ir;
	PassWarm *w = P->o->warm;
	if (w && w->n > 0 && ilp_warm_start(ilp, w->basis, w->n))
		ir_oom();
	/* the root LP first: where it is fractional and no memory row couples
	 * the groups, elimination with more room may be cheaper than branching
	 * (with a budget, its optimum seldom meets the row that made the LP
	 * fractional) */
	io.no_branch = !P->o->glpk_only && !(P->o->memory_budget > 0);
	IlpStatus st = ilp_solve(ilp, &io, &ir);
	int nb = 0;
	const signed char *basis = ilp_basis(ilp, &nb);
	if (st == ILP_FRACTIONAL) {
		if (!solve_elim(P, blocks, nblocks, ELIM_MAX_WORK_FRACTIONAL,
				ELIM_MAX_TABLE_FRACTIONAL, " after a fractional LP relaxation", r)) {
			ilp_free(ilp);
			free_blocks(blocks, nblocks);
			return 0;
		}
		/* branch-and-bound from the root's optimal basis */
		if (basis && ilp_warm_start(ilp, basis, nb))
			ir_oom();
		io.no_branch = false;
		st = ilp_solve(ilp, &io, &ir);
		basis = ilp_basis(ilp, &nb);
	}
	free_blocks(blocks, nblocks);
	if (w && basis) {
		signed char *b = realloc(w->basis, (size_t)nb);
		if (!b)
			abort();
		memcpy(b, basis, (size_t)nb);
		w->basis = b;
		w->n = nb;
	}
	r->solve_time_s = ir.solve_time_s;
	r->gap = st == ILP_FEASIBLE ? ir.gap : 0;
	snprintf(r->message, sizeof r->message, "%s", ir.message);
	if (st != ILP_OPTIMAL && st != ILP_FEASIBLE) {
		r->status = st == ILP_INFEASIBLE ? PASS_INFEASIBLE :
			    st == ILP_TIMEOUT	     ? PASS_TIMEOUT :
						       PASS_ERROR;
		if (st == ILP_INFEASIBLE)
			snprintf(r->message, sizeof r->message,
				 "no sharding fits %.4g GiB per device on the %dx%d mesh",
				 P->o->memory_budget / 1073741824.0, P->x.mesh->n[0],
				 P->x.mesh->n[1]);
		ilp_free(ilp);
		return -1;
	}
	r->status = st == ILP_OPTIMAL ? PASS_OPTIMAL : PASS_FEASIBLE;
	for (int gi = 0; gi < P->ngroups; gi++) {
		Group *gr = &P->groups[gi];
		gr->chosen = 0;
		if (gr->var0 >= 0)
			for (int s = 0; s < gr->nstrat; s++)
				if (ilp_value(ilp, gr->var0 + s) > 0.5)
					gr->chosen = s;
	}
	ilp_free(ilp);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Result                                                               */

/* The first op of the stage that reads weight w; -1 if none. */
static int weight_reader(const Plan *P, int w, int *k_out)
{
	const IrGraph *g = P->x.g;
	for (int i = 0; i < g->nops; i++) {
		if (!in_stage(P, i))
			continue;
		for (int k = 0; k < g->ops[i].nin; k++)
			if (g->ops[i].in[k] == w) {
				*k_out = k;
				return i;
			}
	}
	return -1;
}

/* Strategy s of group gr as text: the leading op's labels to axes, for a
 * weight the labels its first reader gives its dims. */
static const char *group_strategy(const Plan *P, const Group *gr, int s, int reader, int k,
				  char *buf, size_t n)
{
	const IrGraph *g = P->x.g;
	if (gr->weight < 0)
		return pass_strategy_string(&g->ops[gr->ops[0]], gr->ch[(size_t)s * gr->nops].ax,
					    buf, n);
	const PassSpec *sp = &gr->wspec[s];
	const char *lab = g->ops[reader].lab[k];
	size_t o = 0;
	buf[0] = 0;
	for (int d = 0; d < sp->nd && lab[d] && o < n; d++)
		if (sp->dim[d])
			o += (size_t)snprintf(buf + o, n - o, "%s%c=%s", o ? "," : "", lab[d],
					      sp->dim[d] == 3 ? "01" : sp->dim[d] == 1 ? "0" : "1");
	return buf;
}

/* Resharding on the links of group gi (lk[0..nl)) with the group under
 * strategy s and every other as chosen; *in: of that, the links into it. */
static double group_reshard(const Plan *P, int gi, int s, const int *lk, int nl, double *in)
{
	double all = 0;
	*in = 0;
	for (int q = 0; q < nl; q++) {
		const Link *l = &P->links[lk[q]];
		const Group *A = &P->groups[l->src_group], *B = &P->groups[l->dst_group];
		int a = l->src_group == gi ? s : A->chosen, b = l->dst_group == gi ? s : B->chosen;
		double bytes = ir_tensor_bytes(&P->x.g->tensors[l->tensor]);
		double t = l->count * pass_reshard_time(P->x.mesh, bytes, link_spec(P, l, true, a),
							link_spec(P, l, false, b), NULL, NULL, 0);
		all += t;
		if (l->dst_group == gi)
			*in += t;
	}
	return all;
}

/* out->why: per group of the stage its chosen strategy and the cheapest
 * IR_MAX_WHY_ALTS others (distinct as text), priced with the rest fixed. */
static void record_why(const Plan *P, IrPlan *plan, IrStagePlan *out)
{
	const IrGraph *g = P->x.g;
	int *deg = ir_xcalloc((size_t)P->ngroups + 1, sizeof(int));
	for (int li = 0; li < P->nlinks; li++) {
		deg[P->links[li].src_group + 1]++;
		if (P->links[li].dst_group != P->links[li].src_group)
			deg[P->links[li].dst_group + 1]++;
	}
	for (int gi = 0; gi < P->ngroups; gi++)
		deg[gi + 1] += deg[gi];
	int *lk = ir_xmalloc(sizeof(int) * (size_t)(deg[P->ngroups] + 1));
	int *fill = ir_xcalloc((size_t)P->ngroups, sizeof(int));
	for (int li = 0; li < P->nlinks; li++) {
		int a = P->links[li].src_group, b = P->links[li].dst_group;
		lk[deg[a] + fill[a]++] = li;
		if (b != a)
			lk[deg[b] + fill[b]++] = li;
	}
	out->why = ir_alloc(&plan->arena, sizeof(IrOpWhy) * (size_t)(P->ngroups ? P->ngroups : 1));
	out->nwhy = 0;
	out->ilp_s = 0;
	IrAlt *all = NULL;
	for (int gi = 0; gi < P->ngroups; gi++) {
		const Group *gr = &P->groups[gi];
		int k = 0, lead = gr->weight >= 0 ? weight_reader(P, gr->weight, &k) : gr->ops[0];
		if (lead < 0 || !in_stage(P, lead) || gr->nstrat < 1)
			continue;
		all = ir_xrealloc(all, sizeof *all * (size_t)gr->nstrat);
		const int *l = &lk[deg[gi]];
		int nl = deg[gi + 1] - deg[gi], na = 0;
		IrOpWhy *w = &out->why[out->nwhy++];
		memset(w, 0, sizeof *w);
		w->op = lead;
		w->weight = gr->weight >= 0;
		w->nstrat = gr->nstrat;
		for (int s = 0; s < gr->nstrat; s++) {
			char buf[256];
			double in;
			IrAlt a = {.comm_s = gr->comm[s], .compute_s = gr->cost[s] - gr->comm[s],
				   .mem_bytes = gr->mem[s]};
			a.reshard_s = group_reshard(P, gi, s, l, nl, &in);
			const char *st = group_strategy(P, gr, s, lead, k, buf, sizeof buf);
			if (s == gr->chosen) {
				w->chosen = a;
				w->chosen.strategy = ir_strdup(&plan->arena, st);
				w->reshard_in_s = in;
				out->ilp_s += a.compute_s + a.comm_s + in;
				continue;
			}
			double c = a.compute_s + a.comm_s + a.reshard_s;
			int dup = -1;
			for (int j = 0; j < na && dup < 0; j++)
				if (!strcmp(all[j].strategy, st))
					dup = j;
			if (dup >= 0 && all[dup].compute_s + all[dup].comm_s + all[dup].reshard_s <= c)
				continue;
			a.strategy = ir_strdup(&plan->arena, st);
			if (dup >= 0)
				all[dup] = a;
			else
				all[na++] = a;
		}
		/* the chosen one's text is not an alternative */
		int m = 0;
		for (int j = 0; j < na; j++)
			if (strcmp(all[j].strategy, w->chosen.strategy))
				all[m++] = all[j];
		na = m;
		for (int j = 1; j < na; j++) /* insertion sort by total cost */
			for (int i = j; i > 0; i--) {
				double ci = all[i].compute_s + all[i].comm_s + all[i].reshard_s;
				double cp = all[i - 1].compute_s + all[i - 1].comm_s + all[i - 1].reshard_s;
				if (!(ci < cp))
					break;
				IrAlt t = all[i];
				all[i] = all[i - 1];
				all[i - 1] = t;
			}
		w->nalt = na < IR_MAX_WHY_ALTS ? na : IR_MAX_WHY_ALTS;
		w->alt = ir_alloc(&plan->arena, sizeof(IrAlt) * (size_t)(w->nalt ? w->nalt : 1));
		memcpy(w->alt, all, sizeof(IrAlt) * (size_t)w->nalt);
	}
	free(all);
	free(lk);
	free(fill);
	free(deg);
	(void)g;
}

static void fill_stage(Plan *P, IrPlan *plan, IrStagePlan *out, PassIntraResult *r)
{
	const IrGraph *g = P->x.g;
	int nops = 0;
	for (int i = 0; i < g->nops; i++)
		nops += in_stage(P, i);
	/* collectives: own ones plus resharding on links */
	int ncomm = 0, cap = 64;
	IrComm *comm = ir_xmalloc(sizeof *comm * (size_t)cap);
	double compute = 0, own = 0, reshard = 0;
	for (int gi = 0; gi < P->ngroups; gi++) {
		Group *gr = &P->groups[gi];
		for (int i = 0; i < gr->nops; i++) {
			const PassOpChoice *c = &gr->ch[(size_t)gr->chosen * (size_t)gr->nops + (size_t)i];
			double n = op_count(P, gr->ops[i]);
			compute += n * c->compute;
			own += n * c->comm;
			for (int k = 0; k < c->nown; k++) {
				if (ncomm + 1 > cap)
					comm = ir_xrealloc(comm, sizeof *comm * (size_t)(cap *= 2));
				comm[ncomm] = c->own[k];
				comm[ncomm].op = gr->ops[i];
				comm[ncomm].per_step = g->ops[gr->ops[i]].phase == IR_UPDATE;
				comm[ncomm++].reshard = false;
			}
		}
	}
	for (int li = 0; li < P->nlinks; li++) {
		const Link *l = &P->links[li];
		const Group *A = &P->groups[l->src_group], *B = &P->groups[l->dst_group];
		IrComm tmp[4];
		int n = 0;
		double bytes = ir_tensor_bytes(&g->tensors[l->tensor]);
		reshard += l->count * pass_reshard_time(P->x.mesh, bytes,
							link_spec(P, l, true, A->chosen),
							link_spec(P, l, false, B->chosen), tmp, &n, 4);
		for (int k = 0; k < n; k++) {
			if (ncomm + 1 > cap)
				comm = ir_xrealloc(comm, sizeof *comm * (size_t)(cap *= 2));
			comm[ncomm] = tmp[k];
			comm[ncomm].op = l->dst_op >= 0 ? l->dst_op : l->src_op;
			comm[ncomm].per_step = l->count == 1.0 && (l->dst_op < 0 ||
					       g->ops[l->dst_op].phase == IR_UPDATE);
			comm[ncomm].weight = tmp[k].kind == SIM_ALL_GATHER &&
					     g->tensors[l->tensor].role == IR_T_WEIGHT;
			comm[ncomm++].reshard = true;
		}
	}
	ir_stage_alloc(plan, out, nops, ncomm);
	memcpy(out->comm, comm, sizeof *comm * (size_t)ncomm);
	free(comm);
	int j = 0;
	double mem_w = 0, mem_g = 0, mem_o = 0;
	for (int i = 0; i < g->nops; i++) {
		if (!in_stage(P, i))
			continue;
		const Group *gr = &P->groups[P->group_of[i]];
		const PassOpChoice *c =
			&gr->ch[(size_t)gr->chosen * (size_t)gr->nops + (size_t)P->pos_in_group[i]];
		char buf[256];
		out->op[j] = i;
		out->strategy[j] = ir_strdup(&plan->arena,
					     pass_strategy_string(&g->ops[i], c->ax, buf, sizeof buf));
		out->ways[j] = c->ways;
		const IrOp *op = &g->ops[i];
		if (op->kind == IR_ACCUM || op->kind == IR_ADAM) {
			Group one = *gr;
			one.nops = 1;
			one.ops = &gr->ops[P->pos_in_group[i]];
			double m = ops_memory(P, &one, c);
			if (op->kind == IR_ACCUM)
				mem_g += m;
			else
				mem_o += m;
		}
		j++;
	}
	for (int gi = 0; gi < P->ngroups; gi++)
		if (P->groups[gi].weight >= 0)
			mem_w += P->groups[gi].mem[P->groups[gi].chosen];
	out->weight_bytes = mem_w;
	out->grad_bytes = mem_g;
	out->opt_bytes = mem_o;
	/* activations of one microbatch: forward outputs, divided by their ways */
	double act = 0;
	for (int i = 0; i < g->nfwd_ops; i++) {
		if (!in_stage(P, i) || g->ops[i].kind == IR_RESHAPE)
			continue;
		const Group *gr = &P->groups[P->group_of[i]];
		const PassOpChoice *c =
			&gr->ch[(size_t)gr->chosen * (size_t)gr->nops + (size_t)P->pos_in_group[i]];
		int w = 1;
		for (int d = 0; d < c->out[0].nd; d++)
			w *= pass_axes_size(P->x.mesh, c->out[0].dim[d]);
		act += ir_tensor_bytes(&g->tensors[g->ops[i].out[0]]) / w;
	}
	out->act_bytes = act;
	record_why(P, plan, out);
	r->compute_s = compute;
	r->communication_s = own;
	r->resharding_s = reshard;
	r->objective_s = compute + own + reshard;
}

/* ------------------------------------------------------------------ */
/* Identical layers                                                     */

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

/* Structure of a layer: its ops in order with kinds, shapes, labels and
 * wiring inside the layer (positions), not names. */
static uint64_t layer_hash(const IrGraph *g, const int *ops, int n)
{
	uint64_t h = (uint64_t)n;
	for (int j = 0; j < n; j++) {
		const IrOp *op = &g->ops[ops[j]];
		h = mix(h, (uint64_t)op->kind * 31 + (uint64_t)op->phase * 7 + (uint64_t)op->nin);
		for (const char *c = op->fn ? op->fn : ""; *c; c++)
			h = mix(h, (uint64_t)*c);
		for (int k = 0; k < op->nin + op->nout; k++) {
			const IrTensor *t = &g->tensors[k < op->nin ? op->in[k] : op->out[k - op->nin]];
			h = mix(h, (uint64_t)t->dtype * 131 + (uint64_t)t->role);
			for (int d = 0; d < t->ndim; d++)
				h = mix(h, (uint64_t)t->dim[d]);
			for (const char *c = op->lab[k]; *c; c++)
				h = mix(h, (uint64_t)*c);
			int pos = -1;
			for (int q = 0; q < j && k < op->nin; q++)
				if (ops[q] == t->producer)
					pos = q;
			h = mix(h, (uint64_t)(pos + 2));
		}
	}
	return h;
}

/* Finds runs of at least four identical layers; keeps two representatives
 * of each (the first two) and skips the rest.  The second representative
 * stands for itself and every skipped layer (scale r-1), so the ILP's
 * objective and memory row are those of the expanded plan exactly; the
 * boundaries between copies are links of the second representative to
 * itself (boundary_links). */
static void find_runs(Plan *P)
{
	const IrGraph *g = P->x.g;
	int L = g->nlayers;
	int *count = ir_xcalloc((size_t)L, sizeof(int)), **lists = ir_xcalloc((size_t)L, sizeof(int *));
	for (int i = 0; i < g->nops; i++) {
		int l = g->ops[i].layer;
		if (l < P->first_layer || l > P->last_layer)
			continue;
		lists[l] = ir_xrealloc(lists[l], sizeof(int) * (size_t)(count[l] + 1));
		lists[l][count[l]++] = i;
	}
	uint64_t *h = ir_xcalloc((size_t)L, sizeof(uint64_t));
	for (int l = P->first_layer; l <= P->last_layer; l++)
		h[l] = layer_hash(g, lists[l], count[l]);
	P->skip_layer = ir_xcalloc((size_t)L, sizeof(bool));
	P->scale = ir_xmalloc(sizeof(double) * (size_t)L);
	P->run = ir_xmalloc(sizeof(int) * (size_t)L);
	P->rep_op = ir_xmalloc(sizeof(int) * (size_t)g->nops);
	for (int i = 0; i < g->nops; i++)
		P->rep_op[i] = -1;
	for (int l = 0; l < L; l++) {
		P->scale[l] = 1;
		P->run[l] = -1;
	}
	int nrun = 0;
	for (int k = P->first_layer; k <= P->last_layer;) {
		int e = k + 1;
		while (e <= P->last_layer && h[e] == h[k] && count[e] == count[k])
			e++;
		int r = e - k;
		if (r >= 4) {
			for (int l = k; l < e; l++)
				P->run[l] = nrun;
			nrun++;
			P->scale[k + 1] = r - 1; /* copied into every skipped layer */
			for (int l = k + 2; l < e; l++) {
				P->skip_layer[l] = true;
				for (int j = 0; j < count[l]; j++)
					P->rep_op[lists[l][j]] = lists[k + 1][j];
			}
		}
		k = e;
	}
	for (int l = 0; l < L; l++)
		free(lists[l]);
	free(lists);
	free(count);
	free(h);
}

/* Group costs and memory of representatives stand for their copies. */
static void scale_groups(Plan *P)
{
	if (!P->scale)
		return;
	for (int gi = 0; gi < P->ngroups; gi++) {
		Group *gr = &P->groups[gi];
		int l = gr->weight >= 0 ? P->x.g->tensors[gr->weight].layer
					: P->x.g->ops[gr->ops[0]].layer;
		double sc = l >= 0 ? P->scale[l] : 1.0;
		for (int s = 0; s < gr->nstrat; s++) {
			gr->cost[s] *= sc;
			gr->comm[s] *= sc;
			gr->mem[s] *= sc;
		}
	}
}

static void plan_build(Plan *P)
{
	const IrGraph *g = P->x.g;
	P->group_of = ir_xmalloc(sizeof(int) * (size_t)g->nops);
	P->pos_in_group = ir_xcalloc((size_t)g->nops, sizeof(int));
	P->wgroup = ir_xmalloc(sizeof(int) * (size_t)g->ntensors);
	P->keep_partial = ir_xcalloc((size_t)g->ntensors, sizeof(bool));
	for (int i = 0; i < g->nops; i++)
		P->group_of[i] = -1;
	for (int i = 0; i < g->ntensors; i++)
		P->wgroup[i] = -1;
	mark_partial(P);
	build_groups(P);
	boundary_links(P);
	for (int gi = 0; gi < P->ngroups; gi++) {
		Group *gr = &P->groups[gi];
		if (gr->weight >= 0)
			enumerate_weight(P, gr, gr->weight);
		else
			enumerate_group(P, gr);
	}
}

static void plan_free(Plan *P)
{
	for (int gi = 0; gi < P->ngroups; gi++) {
		Group *gr = &P->groups[gi];
		free(gr->ops);
		free(gr->cost);
		free(gr->comm);
		free(gr->mem);
		free(gr->ch);
		free(gr->wspec);
	}
	free(P->groups);
	free(P->links);
	free(P->group_of);
	free(P->pos_in_group);
	free(P->wgroup);
	free(P->keep_partial);
	free(P->skip_layer);
	free(P->scale);
	free(P->run);
	free(P->rep_op);
}

/* Chooses for every group of the full plan F the strategy its counterpart
 * in the solved reduced plan R chose (skipped layers copy their
 * representative). */
static void expand(const Plan *R, Plan *F)
{
	const IrGraph *g = F->x.g;
	for (int gi = 0; gi < F->ngroups; gi++) {
		Group *gr = &F->groups[gi];
		int pick = 0;
		if (gr->weight >= 0) {
			int w = gr->weight, rw = w;
			/* a skipped layer's weight maps through its first consumer */
			for (int i = 0; i < g->nops && R->wgroup[rw] < 0; i++)
				for (int k = 0; k < g->ops[i].nin; k++)
					if (g->ops[i].in[k] == w && R->rep_op[i] >= 0)
						rw = g->ops[R->rep_op[i]].in[k];
			if (R->wgroup[rw] >= 0) {
				const Group *rg = &R->groups[R->wgroup[rw]];
				for (int s = 0; s < gr->nstrat; s++)
					if (!memcmp(&gr->wspec[s], &rg->wspec[rg->chosen], sizeof(PassSpec)))
						pick = s;
			}
		} else {
			int lead = gr->ops[0];
			int rl = R->rep_op[lead] >= 0 ? R->rep_op[lead] : lead;
			if (R->group_of[rl] >= 0) {
				const Group *rg = &R->groups[R->group_of[rl]];
				const PassOpChoice *want =
					&rg->ch[(size_t)rg->chosen * (size_t)rg->nops + (size_t)R->pos_in_group[rl]];
				for (int s = 0; s < gr->nstrat; s++) {
					const PassOpChoice *c = &gr->ch[(size_t)s * (size_t)gr->nops];
					if (!memcmp(c->ax, want->ax, sizeof c->ax) &&
					    c->out[0].partial == want->out[0].partial)
						pick = s;
				}
			}
		}
		gr->chosen = pick; /* the others stay: record_why prices them */
	}
}

int pass_intra_op(const IrGraph *g, const IrCluster *c, const IrLogicalMesh *m, int first_layer,
		  int last_layer, const PassIntraOptions *o, IrPlan *plan, IrStagePlan *out,
		  PassIntraResult *r, IrError *e)
{
	memset(r, 0, sizeof *r);
	double t0 = ir_now_s();
	if (!g->training) {
		r->status = PASS_ERROR;
		return ir_fail(e, g->file, 0, "the intra-op pass needs the training graph");
	}
	if (first_layer < 0 || last_layer >= g->nlayers || first_layer > last_layer) {
		r->status = PASS_ERROR;
		return ir_fail(e, g->file, 0, "layer range %d..%d is outside 0..%d", first_layer,
			       last_layer, g->nlayers - 1);
	}
	Plan R, F;
	memset(&R, 0, sizeof R);
	PassAttn attn;
	pass_attn_build(g, &attn);
	R.x = (PassCtx){g, c, m, attn.grp ? &attn : NULL};
	R.o = o;
	R.first_layer = first_layer;
	R.last_layer = last_layer;
	R.nmicro = o->nmicro > 0 ? o->nmicro : 1;
	uint8_t *expert = o->method == PASS_EXPERT ? expert_dims(g) : NULL;
	R.expert = expert;
	F = R;
	if (!o->exhaustive)
		find_runs(&R);
	plan_build(&R);
	scale_groups(&R);
	int rc = solve(&R, r);
	if (!rc) {
		for (int gi = 0; gi < R.ngroups; gi++)
			r->state_bytes += R.groups[gi].mem[R.groups[gi].chosen];
		out->first_layer = first_layer;
		out->last_layer = last_layer;
		out->mesh = m->mesh;
		out->n0 = m->n[0];
		out->n1 = m->n[1];
		if (R.skip_layer) {
			/* the full plan groups ops as the reduced one did */
			bool *lead = ir_xcalloc((size_t)g->nops, sizeof(bool));
			for (int i = 0; i < g->nops; i++) {
				int rl = R.rep_op[i] >= 0 ? R.rep_op[i] : i;
				lead[i] = in_range(&R, i) && R.group_of[rl] >= 0 &&
					  R.pos_in_group[rl] == 0;
			}
			F.force_leader = lead;
			plan_build(&F);
			expand(&R, &F);
			fill_stage(&F, plan, out, r);
			plan_free(&F);
			free(lead);
		} else {
			fill_stage(&R, plan, out, r);
		}
	} else {
		ir_fail(e, g->file, 0, "%s", r->message);
	}
	plan_free(&R);
	free(expert);
	pass_attn_free(&attn);
	r->solve_time_s = ir_now_s() - t0;
	return rc;
}
