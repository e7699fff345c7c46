/*
 * inter_op.c -- the inter-operator pass: the model's layers cut into
 * pipeline stages, each on a sub-mesh of the cluster (Alpa, Zheng et al.,
 * OSDI 2022, section 5).
 *
 * Reads: the model (instantiated per microbatch size), the cluster, the
 *        stage costs of inter_op_cost.c.
 * Writes: an IrPlan: stages (layer ranges, sub-meshes placed on the
 *        cluster, logical views, per-op strategies), microbatch size and
 *        count, 1F1B schedule, recomputation mode; its training graph.
 *
 * Requires: layer units (pass_cluster_layers) and a stage table; provides
 * the pipeline.  The DP is Alpa's (section 5.2):
 *   F(s, k, d; tmax) = min over i >= k and shape m with t(k..i, m) <= tmax
 *                      of t(k..i, m) + e + F(s-1, i+1, d - |m|),
 *   F(0, U, 0) = 0, and the answer min over tmax and s of
 *   F(s, 0, D) + (B - 1) * max(tmax, F(s, 0, D) / s),
 * with t(k..i, m) the fastest view of the stage on m that fits memory as
 * the s-th stage from the end (1F1B keeps min(s, B) microbatches) and e the
 * transfers into it.  Alpa's answer is F + (B - 1) * tmax; the max adds
 * 1F1B's other limit, a microbatch's round trip through all stages and
 * transfers over the s microbatches in flight.  The transfers depend on
 * where the stage before sits, so the state also carries the placement so
 * far (pass_place_next: how full the node being packed with partial-node
 * stages is) and the previous stage's shape when partial-node.  tmax runs
 * through the distinct stage times in ascending order from the smallest
 * that admits a pipeline (a bottleneck DP), and stops once B * tmax is no
 * better than the best plan (a plan whose slowest stage takes tmax costs
 * at least B * tmax).
 *
 * Around the DP: the microbatch size (divisors of the global batch, hill
 * climbing on the DP's estimates from a start that leaves room for
 * activations) and the recomputation mode (none, selective, full).  Then
 * refinement, best estimate first, for every microbatch size whose
 * estimate is within 2% of the best refined plan: the stages the DP picks
 * are sharded whole by the intra-op pass (a lean one with the memory its
 * activations leave as the ILP's budget), their exact costs
 * (sim_stage_cost) replace the per-layer sums in the table, and the DP runs
 * again, until it picks only stages already solved.  The stages are
 * placed as the DP assumed: whole-node sub-meshes on nodes of their own,
 * partial-node ones packed in pipeline order into the other nodes.
 */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "passes/intra.h"
#include "passes/passes.h"

/* Branch-and-bound nodes the ILP may create to meet a lean stage's memory
 * budget before the stage falls back to ZeRO-2 sharding (GLPK finds
 * budgeted solutions slowly on 2D meshes).  A count, not seconds: the same
 * input gives the same plan on any machine under any load. */
static const int LEAN_NODE_LIMIT = 2000;
/* DP reruns after solving stages whole, per microbatch size refined. */
static const int REFINE_ROUNDS = 12;

static int shape_devices(const PassShape *s) { return s->nodes * s->gpus; }

double pass_pipeline_cost(const PassStageTable *t, PassPipeline *p)
{
	double sum = 0, mx = 0;
	int fill = 0, prev = -1;
	bool placed = true;
	for (int q = 0; q < p->nstages; q++) {
		int s = p->nstages - q, v, h = p->shape[q], after = 0;
		double x = pass_stage_time(t, p->first[q], p->last[q], h, s, &v);
		mx = fmax(mx, x);
		bool pp = prev >= 0 && pass_shape_partial(t, prev);
		x += pass_stage_edge(t, p->first[q], pp ? prev : -1, pp && fill > 0, h);
		placed = placed && pass_place_next(t, fill, h, &after);
		fill = after;
		prev = h;
		p->time_s[q] = x;
		p->view[q] = v;
		sum += x;
	}
	p->tmax_s = mx;
	p->total_s = placed && p->nstages > 0 ?
			     sum + (t->nmicro - 1) * fmax(mx, sum / p->nstages) :
			     INFINITY;
	return p->total_s;
}

/* ------------------------------------------------------------------ */
/* The DP                                                               */

/* F(s, k, d, c): class c = fill * P + pc says how the stages before unit k
 * were placed: the GPUs taken of the node being packed with partial-node
 * stages (pass_place_next), and pc the stage just before: 0 when none or
 * whole-node, else 1 + its index among the partial-node shapes (the
 * transfers into the stage at k depend on it).  GPUs used before k are
 * fill modulo M, so only every M-th d goes with a class: F keeps those
 * only, d by its slot d / M. */
typedef struct {
	const PassStageTable *t;
	int U, H, D, S, M, P, NC;
	int DJ;     /* slots of d: d / M, 0 .. D / M (a class fixes d mod M) */
	int dev[PASS_MAX_SHAPES];
	bool part[PASS_MAX_SHAPES];
	int pcls[PASS_MAX_SHAPES];      /* shape -> pc */
	int pshape[PASS_MAX_SHAPES + 1]; /* pc -> shape (pc >= 1) */
	int *next;  /* [fill * H + h]: fill after shape h, -1 if it may not come next */
	double *C;  /* [((s-1) * U + k) * U + i) * H + h]: stage time, INFINITY if none fits */
	double *E;  /* [((k * P + pc) * 2 + same_node) * H + h]: transfers into it */
	double *F;  /* [((s * (U+1) + k) * (D+1) + d) * NC + c] */
	int *pick;  /* same index as F: i * H + h */
} Dp;

#define CI(x, s, k, i, h) ((((size_t)((s) - 1) * (x)->U + (k)) * (x)->U + (i)) * (x)->H + (h))
#define EI(x, k, pc, same, h) ((((size_t)(k) * (x)->P + (pc)) * 2 + (same)) * (x)->H + (h))

/* Does d go with class c (D - d GPUs used, fill = that modulo M)? */
static inline bool dp_d_of(const Dp *x, int d, int c)
{
	return ((x->D - d - c / x->P) % x->M + x->M) % x->M == 0;
}

/* F's index of (s, k, d, c): d by its slot d / M, as class c fixes d mod M;
 * the slots of one (s, k, c) are consecutive, so the recursion runs over d
 * innermost. */
static inline size_t FI(const Dp *x, int s, int k, int d, int c)
{
	assert(dp_d_of(x, d, c));
	return (((size_t)s * (size_t)(x->U + 1) + (size_t)k) * (size_t)x->NC + (size_t)c) *
		       (size_t)x->DJ + (size_t)(d / x->M);
}

/* Bytes of the DP's tables for S stages, U units, DJ slots of devices, NC
 * classes and H shapes (as a double: it may not fit a size_t). */
static double dp_bytes(double S, double U, double DJ, double NC, double H)
{
	return (S + 1) * (U + 1) * DJ * NC * (sizeof(double) + sizeof(int)) +
	       S * U * U * H * 3 * sizeof(double);
}

/* Entries of F (and pick). */
static size_t dp_nf(const Dp *x)
{
	return (size_t)(x->S + 1) * (size_t)(x->U + 1) * (size_t)x->DJ * (size_t)x->NC;
}

/* -1 (nothing allocated) when the tables would exceed PASS_DP_MAX_BYTES. */
static int dp_init(Dp *x, const PassStageTable *t, int devices)
{
	memset(x, 0, sizeof *x);
	x->t = t;
	x->U = t->nunits;
	x->H = t->nshapes;
	x->D = devices;
	x->M = t->gpus_per_node > 0 ? t->gpus_per_node : 1;
	x->P = 1;
	for (int h = 0; h < x->H; h++) {
		x->dev[h] = shape_devices(&t->shape[h]);
		x->part[h] = pass_shape_partial(t, h);
		x->pcls[h] = x->part[h] ? x->P : 0;
		if (x->part[h])
			x->pshape[x->P++] = h;
	}
	x->NC = x->M * x->P;
	x->DJ = x->D / x->M + 1;
	x->S = x->U < devices ? x->U : devices;
	if (x->S > PASS_MAX_UNITS)
		x->S = PASS_MAX_UNITS;
	if (dp_bytes(x->S, x->U, x->DJ, x->NC, x->H) > PASS_DP_MAX_BYTES)
		return -1;
	size_t nc = (size_t)x->S * x->U * x->U * x->H + 1;
	size_t ne = (size_t)x->U * x->P * 2 * x->H + 1;
	size_t nf = dp_nf(x);
	x->C = ir_xmalloc(sizeof(double) * nc);
	x->E = ir_xmalloc(sizeof(double) * ne);
	x->next = ir_xmalloc(sizeof(int) * ((size_t)x->M * x->H + 1));
	x->F = ir_xmalloc(sizeof(double) * nf);
	x->pick = ir_xmalloc(sizeof(int) * nf);
	if (!x->C || !x->E || !x->next || !x->F || !x->pick) {
		fputs("meshplan: out of memory\n", stderr);
		abort();
	}
	for (int s = 1; s <= x->S; s++)
		for (int k = 0; k < x->U; k++)
			for (int i = 0; i < x->U; i++)
				for (int h = 0; h < x->H; h++)
					x->C[CI(x, s, k, i, h)] =
						i < k || x->dev[h] > devices ?
							INFINITY :
							pass_stage_time(t, k, i, h, s, NULL);
	for (int k = 0; k < x->U; k++)
		for (int pc = 0; pc < x->P; pc++)
			for (int same = 0; same < 2; same++)
				for (int h = 0; h < x->H; h++)
					x->E[EI(x, k, pc, same, h)] =
						pass_stage_edge(t, k, pc ? x->pshape[pc] : -1, same, h);
	for (int f = 0; f < x->M; f++)
		for (int h = 0; h < x->H; h++) {
			int after;
			x->next[f * x->H + h] = pass_place_next(t, f, h, &after) ? after : -1;
		}
	return 0;
}

static void dp_free(Dp *x)
{
	free(x->C);
	free(x->E);
	free(x->next);
	free(x->F);
	free(x->pick);
}

/* The class after a stage of shape h placed in class c; -1 if it may not. */
static int dp_next(const Dp *x, int c, int h)
{
	int nf = x->next[(c / x->P) * x->H + h];
	return nf < 0 ? -1 : nf * x->P + x->pcls[h];
}

/* Could class c occur before unit k?  (No stage before unit 0; a partial
 * stage just before leaves its node with at least its own GPUs, or full.) */
static bool dp_class_ok(const Dp *x, int k, int c)
{
	int fill = c / x->P, pc = c % x->P;
	if (k == 0)
		return c == 0;
	return pc == 0 || fill == 0 || fill >= x->dev[x->pshape[pc]];
}

/* The first d >= s that goes with class c: d = D - used, used = fill mod M. */
static int dp_first_d(const Dp *x, int s, int c)
{
	int M = x->M, r = ((x->D - c / x->P) % M + M) % M;
	return s + ((r - s) % M + M) % M;
}

/* The pipeline of s stages behind F(s, 0, D, 0) of the last run, costed. */
static void dp_extract(const Dp *x, int bs, PassPipeline *out)
{
	memset(out, 0, sizeof *out);
	int k = 0, d = x->D, c = 0;
	for (int s = bs; s >= 1; s--) {
		int p = x->pick[FI(x, s, k, d, c)];
		int i = p / x->H, h = p % x->H, q = out->nstages++;
		out->first[q] = k;
		out->last[q] = i;
		out->shape[q] = h;
		k = i + 1;
		d -= x->dev[h];
		c = dp_next(x, c, h);
	}
	pass_pipeline_cost(x->t, out);
}

/* min over s of F(s, 0, D, 0) + (B-1) * max(tmax, F(s, 0, D, 0) / s)
 * under tmax (stage times alone <= tmax); the pipeline into out when finite. */
/* F before a recursion: nothing reachable but the end (all units placed,
 * all devices used: the fill is 0 then) of every class. */
static void dp_clear(Dp *x)
{
	for (size_t i = 0, n = dp_nf(x); i < n; i++)
		x->F[i] = INFINITY;
	for (int c = 0; c < x->NC; c++)
		if (dp_d_of(x, 0, c))
			x->F[FI(x, 0, x->U, 0, c)] = 0;
}

/* The d of class c with s stages left: first + j * M for j < the count
 * returned. */
static inline int dp_slots(const Dp *x, int s, int c, int *first)
{
	*first = dp_first_d(x, s, c);
	return *first > x->D ? 0 : (x->D - *first) / x->M + 1;
}

/* The least j at which a stage of shape h leaves the s - 1 stages after it
 * a GPU each (d - dev[h] >= s - 1, d = first + j * M). */
static inline int dp_j0(const Dp *x, int s, int first, int h)
{
	int need = s - 1 + x->dev[h] - first;
	return need <= 0 ? 0 : (need + x->M - 1) / x->M;
}

static double dp_run(Dp *x, double tmax, PassPipeline *out)
{
	int U = x->U, H = x->H, M = x->M;
	dp_clear(x);
	for (int s = 1; s <= x->S; s++)
		for (int k = 0; k + s <= U; k++)
			for (int c = 0; c < x->NC; c++) {
				if (!dp_class_ok(x, k, c))
					continue;
				int fill = c / x->P, pc = c % x->P, first;
				int same = pc > 0 && fill > 0, n = dp_slots(x, s, c, &first);
				if (!n)
					continue;
				double *fo = &x->F[FI(x, s, k, first, c)];
				int *po = &x->pick[FI(x, s, k, first, c)];
				for (int j = 0; j < n; j++)
					po[j] = -1;
				/* per d, the (h, i) in the same order with the same strict
				 * test as one d at a time: the same picks */
				for (int h = 0; h < H; h++) {
					int nc = dp_next(x, c, h), j0 = dp_j0(x, s, first, h);
					if (nc < 0 || j0 >= n)
						continue;
					double e = x->E[EI(x, k, pc, same, h)];
					int rest0 = first + j0 * M - x->dev[h];
					for (int i = k; i + s <= U; i++) {
						double t = x->C[CI(x, s, k, i, h)];
						if (!(t <= tmax))
							continue;
						double te = t + e;
						const double *fi = &x->F[FI(x, s - 1, i + 1, rest0, nc)];
						int p = i * H + h;
						for (int j = j0; j < n; j++) {
							double f = te + fi[j - j0];
							if (f < fo[j]) {
								fo[j] = f;
								po[j] = p;
							}
						}
					}
				}
			}
	double best = INFINITY;
	int bs = 0;
	for (int s = 1; s <= x->S; s++) {
		double f = x->F[FI(x, s, 0, x->D, 0)];
		double cost = f + (x->t->nmicro - 1) * fmax(tmax, f / s);
		if (cost < best) {
			best = cost;
			bs = s;
		}
	}
	if (out && isfinite(best))
		dp_extract(x, bs, out);
	return best;
}

/* min over pipelines of the largest of their stages' values C (CI's
 * index): the same recursion with max for sum. */
static double dp_minmax(Dp *x, const double *C)
{
	int U = x->U, H = x->H, M = x->M;
	dp_clear(x);
	for (int s = 1; s <= x->S; s++)
		for (int k = 0; k + s <= U; k++)
			for (int c = 0; c < x->NC; c++) {
				if (!dp_class_ok(x, k, c))
					continue;
				int first, n = dp_slots(x, s, c, &first);
				if (!n)
					continue;
				double *restrict fo = &x->F[FI(x, s, k, first, c)];
				for (int h = 0; h < H; h++) {
					int nc = dp_next(x, c, h), j0 = dp_j0(x, s, first, h);
					if (nc < 0 || j0 >= n)
						continue;
					int rest0 = first + j0 * M - x->dev[h];
					for (int i = k; i + s <= U; i++) {
						double a = C[CI(x, s, k, i, h)];
						if (!(a < INFINITY))
							continue; /* does not fit */
						/* level s - 1: apart from fo */
						const double *restrict fi =
							&x->F[FI(x, s - 1, i + 1, rest0, nc)];
						/* min and max written out: the values are never
						 * NaN, and libm's fmin/fmax were a tenth of a
						 * large compile's time */
						for (int j = j0; j < n; j++) {
							double b = fi[j - j0];
							double m = a > b ? a : b;
							fo[j] = m < fo[j] ? m : fo[j];
						}
					}
				}
			}
	double best = INFINITY;
	for (int s = 1; s <= x->S; s++) {
		double f = x->F[FI(x, s, 0, x->D, 0)];
		if (f < best)
			best = f;
	}
	return best;
}

/* The least tmax that admits a pipeline: min over pipelines of their
 * largest stage time. */
static double dp_bottleneck(Dp *x)
{
	return dp_minmax(x, x->C);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int pass_stage_dp(const PassStageTable *t, int devices, double tmax_gap, PassPipeline *out,
		  PassPipeline *by_stages)
{
	return pass_stage_dp_below(t, devices, tmax_gap, INFINITY, out, by_stages) ? -1 : 0;
}

int pass_stage_dp_below(const PassStageTable *t, int devices, double tmax_gap, double bound,
			PassPipeline *out, PassPipeline *by_stages)
{
	Dp x;
	if (dp_init(&x, t, devices))
		return -2;
	for (int s = 0; by_stages && s <= PASS_MAX_UNITS; s++)
		by_stages[s] = (PassPipeline){.total_s = INFINITY};
	size_t n = 0;
	double *cand = ir_xmalloc(sizeof(double) * ((size_t)x.S * x.U * x.U * x.H * 2 + 1));
	if (!cand)
		abort();
	for (size_t i = 0; i < (size_t)x.S * x.U * x.U * x.H; i++)
		if (isfinite(x.C[i]))
			cand[n++] = x.C[i];
	qsort(cand, n, sizeof *cand, cmp_double);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (!m || cand[i] != cand[m - 1])
			cand[m++] = cand[i];
	int rc = -1;
	double tmin = m > 0 ? dp_bottleneck(&x) : INFINITY;
	if (isfinite(tmin)) {
		/* from the smallest tmax that admits a pipeline */
		size_t lo = 0;
		while (lo + 1 < m && cand[lo] < tmin)
			lo++;
		/* a plan whose slowest stage takes tmax costs at least B * tmax */
		double best = bound;
		rc = isfinite(bound) ? 1 : -1;
		PassPipeline p;
		for (size_t i = lo; i < m && t->nmicro * cand[i] < best;) {
			size_t j = i;
			while (tmax_gap > 0 && j + 1 < m && cand[j + 1] <= cand[i] * (1 + tmax_gap))
				j++;
			if (isfinite(dp_run(&x, cand[j], &p)) && p.total_s < best) {
				best = p.total_s;
				*out = p;
				rc = 0;
			}
			for (int s = 1; by_stages && s <= x.S; s++)
				if (isfinite(x.F[FI(&x, s, 0, x.D, 0)])) {
					PassPipeline q;
					dp_extract(&x, s, &q);
					if (q.total_s < by_stages[s].total_s)
						by_stages[s] = q;
				}
			i = j + 1;
		}
	}
	free(cand);
	dp_free(&x);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Brute force, for checking                                            */

typedef struct {
	const PassStageTable *t;
	int S;
	PassPipeline cur, best;
	bool found;
} Brute;

static void brute(Brute *b, int k, int d)
{
	const PassStageTable *t = b->t;
	int q = b->cur.nstages;
	if (k == t->nunits) {
		if (d == 0 && q == b->S) {
			PassPipeline p = b->cur;
			double c = pass_pipeline_cost(t, &p);
			if (isfinite(c) && (!b->found || c < b->best.total_s)) {
				b->best = p;
				b->found = true;
			}
		}
		return;
	}
	if (q == b->S)
		return;
	int s = b->S - q;
	for (int i = k; i < t->nunits; i++)
		for (int h = 0; h < t->nshapes; h++) {
			int n = shape_devices(&t->shape[h]);
			if (n > d || !isfinite(pass_stage_time(t, k, i, h, s, NULL)))
				continue;
			b->cur.first[q] = k;
			b->cur.last[q] = i;
			b->cur.shape[q] = h;
			b->cur.nstages = q + 1;
			brute(b, i + 1, d - n);
			b->cur.nstages = q;
		}
}

int pass_stage_brute(const PassStageTable *t, int devices, PassPipeline *out)
{
	Brute b;
	memset(&b, 0, sizeof b);
	b.t = t;
	int smax = t->nunits < devices ? t->nunits : devices;
	for (b.S = 1; b.S <= smax && b.S <= PASS_MAX_UNITS; b.S++)
		brute(&b, 0, devices);
	if (!b.found)
		return -1;
	*out = b.best;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Least memory a pipeline needs                                        */

double pass_stage_min_memory(const PassStageTable *t, int devices)
{
	Dp x;
	if (dp_init(&x, t, devices))
		return INFINITY;
	int U = x.U, H = x.H;
	/* need[(s-1, k, i, h)]: the leanest view's memory as the s-th stage from the end */
	double *need = ir_xmalloc(sizeof(double) * ((size_t)x.S * U * U * H + 1));
	if (!need)
		abort();
	for (int s = 1; s <= x.S; s++)
		for (int k = 0; k < U; k++)
			for (int i = k; i < U; i++)
				for (int h = 0; h < H; h++) {
					double n = INFINITY, inflight = s < t->nmicro ? s : t->nmicro;
					for (int v = 0; v < t->nviews[h]; v++) {
						const PassStageOption *o =
							&t->option[pass_stage_index(t, k, i, h, v)];
						if (o->ok)
							n = fmin(n, o->state_bytes + inflight * o->act_bytes +
									    o->work_bytes);
					}
					need[CI(&x, s, k, i, h)] = x.dev[h] > devices ? INFINITY : n;
				}
	double best = dp_minmax(&x, need);
	free(need);
	dp_free(&x);
	return best;
}

#undef CI
#undef EI

/* ------------------------------------------------------------------ */
/* Placement                                                            */

/* Places stage q's shape at out[q] as pass_place_next assumes: whole-node
 * shapes on consecutive nodes from node 0 in pipeline order, partial-node
 * ones packed in pipeline order into the nodes after them.  -1 if the
 * shapes do not fit so. */
static int place(const IrCluster *c, const PassShape *shape, int S, IrMesh *out)
{
	int N = c->nodes, M = c->gpus_per_node, next = 0;
	for (int q = 0; q < S; q++)
		if (shape[q].nodes > 1 || shape[q].gpus == M) {
			out[q] = (IrMesh){next, shape[q].nodes, 0, M};
			next += shape[q].nodes;
		}
	int node = next, fill = 0;
	for (int q = 0; q < S; q++) {
		if (shape[q].nodes > 1 || shape[q].gpus == M)
			continue;
		if (fill + shape[q].gpus > M)
			return -1;
		out[q] = (IrMesh){node, 1, fill, shape[q].gpus};
		fill += shape[q].gpus;
		if (fill == M) {
			node++;
			fill = 0;
		}
	}
	return node + (fill > 0) <= N ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Search around the DP                                                 */

/* A stage solved whole: units i..j on shape h, view v of a candidate. */
typedef struct {
	int i, j, h, v;
	PassStageOption opt[3];  /* per recomputation mode */
	const IrStagePlan *st;   /* in one of the candidate's keep[] */
} Exact;

/* One microbatch size evaluated. */
typedef struct {
	int64_t b;
	IrGraph *g;              /* training graph at batch b */
	PassLayerCosts *lc;      /* its layer costs */
	double est;              /* the DP's best step time (INFINITY: none fits) */
	bool none[3];            /* per recomputation mode: the DP found no pipeline */
	IrRecompute rc;          /* and its mode */
	PassPipeline p;          /* and pipeline */
	Exact *exact;            /* stages solved whole */
	int nexact;
	IrPlan *keep;            /* plans holding them */
	int nkeep;
	bool refined;
	double cost;             /* after refinement: the DP's cost of p, solved whole */
	double sim_s;            /* and its simulated step time (INFINITY: does not fit) */
	PassPipeline *alt;       /* after refinement: per stage count the best pipeline
				    (PASS_MAX_UNITS + 1, total_s INFINITY: none met) */
} Cand;

typedef struct {
	const IrModelDoc *m;
	const IrParamSet *ps;
	const IrCluster *c;
	const PassInterOptions *o;
	PassInterResult *r;
	double t0;
	int devices;
	int64_t *div;       /* divisors of the global batch, ascending */
	int ndiv;
	int *cand_of;       /* per divisor: its candidate, -1 if not evaluated */
	Cand *cand;
	int ncand;
	int nunits;
	int unit_first[PASS_MAX_UNITS + 1];
} Search;

/* True once the user's time limit (if any) has passed; it is then
 * recorded in the result. */
static bool out_of_time(const Search *x)
{
	if (!(x->o->time_limit_s > 0) || ir_now_s() - x->t0 <= x->o->time_limit_s)
		return false;
	x->r->time_limited = true;
	return true;
}

static const Exact *find_exact(const Cand *k, int i, int j, int h, int v)
{
	for (int n = 0; n < k->nexact; n++) {
		const Exact *q = &k->exact[n];
		if (q->i == i && q->j == j && q->h == h && q->v == v)
			return q;
	}
	return NULL;
}

static IrGraph *load_graph(const Search *x, int64_t b, IrError *e)
{
	IrGraph *g = ir_xcalloc(1, sizeof *g);
	if (!g)
		abort();
	if (ir_model_training(x->m, x->ps, b, g, e)) {
		free(g);
		return NULL;
	}
	return g;
}

static void drop_graph(IrGraph *g)
{
	if (g) {
		ir_graph_free(g);
		free(g);
	}
}

static void cand_free(Cand *k)
{
	pass_layer_costs_free(k->lc);
	drop_graph(k->g);
	for (int n = 0; n < k->nkeep; n++)
		ir_plan_free(&k->keep[n]);
	free(k->keep);
	free(k->exact);
	free(k->alt);
	memset(k, 0, sizeof *k);
}

/* The stage table of candidate k under mode rc: its stages solved whole
 * with their exact costs (when `exact`); with `only` (a pipeline), the
 * views of its stages not solved whole ruled out. */
static int cand_table(const Search *x, const Cand *k, IrRecompute rc, bool exact,
		      const PassPipeline *only, PassStageTable *t, IrError *e)
{
	if (pass_stage_table(k->lc, x->unit_first, x->nunits, rc, t, e))
		return -1;
	for (int q = 0; only && q < only->nstages; q++)
		for (int v = 0; v < t->nviews[only->shape[q]]; v++)
			t->option[pass_stage_index(t, only->first[q], only->last[q], only->shape[q], v)]
				.ok = false;
	for (int n = 0; exact && n < k->nexact; n++) {
		const Exact *q = &k->exact[n];
		t->option[pass_stage_index(t, q->i, q->j, q->h, q->v)] = q->opt[rc];
	}
	return 0;
}

/* Memory per device of p's stages under t, into p->mem_bytes. */
static void pipeline_memory(const PassStageTable *t, PassPipeline *p)
{
	for (int q = 0; q < p->nstages; q++) {
		const PassStageOption *so =
			&t->option[pass_stage_index(t, p->first[q], p->last[q], p->shape[q], p->view[q])];
		int in = p->nstages - q < t->nmicro ? p->nstages - q : t->nmicro;
		p->mem_bytes[q] = so->state_bytes + in * so->act_bytes + so->work_bytes;
	}
}

/* Best pipeline of candidate k under mode rc (with its solved stages'
 * exact costs when `exact`) costing less than `bound`: its total, INFINITY
 * if none (and *none set if no pipeline fits at all), NAN on error. */
static double best_pipeline(const Search *x, const Cand *k, IrRecompute rc, bool exact,
			    double bound, PassPipeline *p, bool *none, PassPipeline *alts,
			    IrError *e)
{
	PassStageTable t;
	if (cand_table(x, k, rc, exact, NULL, &t, e))
		return NAN;
	double gap = x->o->tmax_gap < 0 ? 1e-3 : x->o->tmax_gap, total = INFINITY;
	double t0 = ir_now_s();
	int found = pass_stage_dp_below(&t, x->devices, gap, bound, p, alts);
	x->r->dp_s += ir_now_s() - t0;
	if (found == -2) {
		x->r->status = PASS_INFEASIBLE;
		snprintf(x->r->message, sizeof x->r->message,
			 "the stage DP for %d GPUs and %d layer clusters would need over %d MiB "
			 "(docs/limits.md): plan fewer GPUs or fewer layer clusters",
			 x->devices, t.nunits, PASS_DP_MAX_BYTES >> 20);
		ir_fail(e, "", 0, "%s", x->r->message);
		pass_stage_table_free(&t);
		return NAN;
	}
	if (!found) {
		total = p->total_s;
		pipeline_memory(&t, p);
	} else if (found < 0 && none) {
		*none = true;
	}
	for (int S = 1; alts && S <= PASS_MAX_UNITS; S++)
		if (isfinite(alts[S].total_s))
			pipeline_memory(&t, &alts[S]);
	pass_stage_table_free(&t);
	return total;
}

/* The best pipeline of candidate k over the recomputation modes allowed
 * into k->p, k->rc, k->est (the modes with none into k->none when
 * `record`); -1 on error. */
static int best_over_modes(const Search *x, Cand *k, bool exact, bool record, IrError *e)
{
	k->est = INFINITY;
	for (int rc = 0; rc < 3; rc++) {
		if (x->o->recompute >= 0 && rc != x->o->recompute)
			continue;
		/* only a mode that beats the best so far matters */
		PassPipeline p;
		double total = best_pipeline(x, k, (IrRecompute)rc, exact, k->est, &p,
					     record ? &k->none[rc] : NULL, NULL, e);
		if (isnan(total))
			return -1;
		if (total < k->est) {
			k->est = total;
			k->rc = (IrRecompute)rc;
			k->p = p;
		}
	}
	return 0;
}

/* Evaluates microbatch size div[i]: layer costs, then the DP per mode. */
static int evaluate(Search *x, int i, IrError *e)
{
	if (x->cand_of[i] >= 0)
		return 0;
	Cand *k = &x->cand[x->ncand];
	memset(k, 0, sizeof *k);
	k->b = x->div[i];
	int B = (int)(x->o->global_batch / k->b);
	k->g = load_graph(x, k->b, e);
	if (!k->g)
		return -1;
	double t = ir_now_s();
	/* the LPs start from the bases of the size evaluated last (only it keeps them) */
	PassLayerCosts *prev = x->ncand > 0 ? x->cand[x->ncand - 1].lc : NULL;
	int skipped = 0;
	k->lc = pass_layer_costs_warm(k->g, x->c, B, x->o->threads, prev,
				      x->o->time_limit_s > 0 ? x->t0 + x->o->time_limit_s : INFINITY,
				      &skipped, x->o->progress, x->o->progress_ctx, e);
	if (skipped)
		x->r->time_limited = true;
	pass_layer_costs_drop_warm(prev);
	x->r->layer_cost_s += ir_now_s() - t;
	if (!k->lc) {
		cand_free(k);
		return -1;
	}
	x->cand_of[i] = x->ncand++;
	int solved, cached, ilps;
	pass_layer_costs_stats(k->lc, &solved, &cached, &ilps);
	x->r->ilp_solved += ilps;
	x->r->ilp_cached += cached;
	if (!x->nunits)
		x->nunits = pass_cluster_layers(k->g, x->o->max_units, x->unit_first);
	if (best_over_modes(x, k, false, true, e))
		return -1;
	if (x->r->ntried < 32) {
		x->r->tried_microbatch[x->r->ntried] = k->b;
		x->r->tried_estimate_s[x->r->ntried++] = k->est;
	}
	return 0;
}

static double est_of(const Search *x, int i)
{
	return x->cand[x->cand_of[i]].est;
}

/* Index of the first microbatch size to try: the largest whose activations
 * (without recomputation) take at most a quarter of the memory the model
 * state leaves free on the whole cluster. */
static int start_index(Search *x, IrError *e)
{
	IrGraph *g = load_graph(x, 1, e);
	if (!g)
		return -1;
	IrStats st;
	ir_graph_stats(g, &st);
	drop_graph(g);
	double free_b = x->devices * x->c->gpu.mem_bytes -
			(st.weight_bytes + st.grad_bytes + st.opt_bytes);
	int i0 = 0;
	for (int i = 0; i < x->ndiv; i++)
		if (x->div[i] * st.act_bytes <= free_b / 4)
			i0 = i;
	return i0;
}

/* Microbatch sizes by the DP's estimates: from the start, smaller ones
 * until something fits, then hill-climbing (up while better, else down),
 * looking one size past a worse one: the estimate is not unimodal where a
 * larger microbatch needs more recomputation (worse) and then amortises it
 * over larger kernels (better again). */
static int search(Search *x, IrError *e)
{
	int i0 = start_index(x, e);
	if (i0 < 0 || evaluate(x, i0, e))
		return -1;
	while (!isfinite(est_of(x, i0)) && i0 > 0)
		if (evaluate(x, --i0, e))
			return -1;
	if (!isfinite(est_of(x, i0)))
		return 0;
	int best = i0, misses = 0;
	for (int i = i0 + 1; i < x->ndiv && misses < 2 && !out_of_time(x); i++) {
		if (evaluate(x, i, e))
			return -1;
		if (!isfinite(est_of(x, i)))
			break; /* larger ones hold more */
		if (est_of(x, i) < est_of(x, best)) {
			best = i;
			misses = 0;
		} else {
			misses++;
		}
	}
	if (best == i0) {
		misses = 0;
		for (int i = i0 - 1; i >= 0 && misses < 2 && !out_of_time(x); i--) {
			if (evaluate(x, i, e))
				return -1;
			if (est_of(x, i) < est_of(x, best)) {
				best = i;
				misses = 0;
			} else {
				misses++;
			}
		}
	}
	return 0;
}

/* Solves whole the stages of pipeline p (mode rc) not solved yet (a lean
 * one first with the memory its activations leave as the ILP's budget,
 * node-limited); how many there were, -1 on error. */
static int solve_missing(Search *x, Cand *k, const PassPipeline *p, IrRecompute rc, IrError *e)
{
	PassStageTable t; /* for the shapes, views and variants */
	if (cand_table(x, k, rc, false, NULL, &t, e))
		return -1;
	IrPlan tmp;
	ir_plan_init(&tmp);
	tmp.nmicro = (int)(x->o->global_batch / k->b);
	tmp.stages = ir_alloc(&tmp.arena, sizeof(IrStagePlan) * (size_t)p->nstages);
	int idx[PASS_MAX_UNITS];
	PassIntraOptions opt[PASS_MAX_UNITS];
	for (int q = 0; q < p->nstages; q++) {
		int h = p->shape[q], v = p->view[q];
		if (find_exact(k, p->first[q], p->last[q], h, v))
			continue;
		const IrLogicalMesh *lv = &t.view[h * t.maxviews + v];
		const PassStageOption *so = &t.option[pass_stage_index(&t, p->first[q], p->last[q],
									h, v)];
		int in = p->nstages - q < t.nmicro ? p->nstages - q : t.nmicro;
		double room = t.mem_bytes - in * so->act_bytes - so->work_bytes;
		opt[tmp.nstages] = (PassIntraOptions){.method = PASS_ILP, .zero = so->zero};
		if (so->zero && room > 0)
			opt[tmp.nstages] = (PassIntraOptions){.method = PASS_ILP, .memory_budget = room,
							      .node_limit = LEAN_NODE_LIMIT};
		idx[tmp.nstages] = q;
		tmp.stages[tmp.nstages++] = (IrStagePlan){
			.first_layer = x->unit_first[p->first[q]],
			.last_layer = x->unit_first[p->last[q] + 1] - 1,
			.mesh = lv->mesh, .n0 = lv->n[0], .n1 = lv->n[1]};
	}
	pass_stage_table_free(&t);
	int n = tmp.nstages;
	if (!n) {
		ir_plan_free(&tmp);
		return 0;
	}
	int solves = 0;
	double t0 = ir_now_s();
	int failed = pass_shard_stages(k->g, x->c, &tmp, opt, x->o->threads, &solves, e);
	x->r->refine_s += ir_now_s() - t0;
	if (failed) {
		ir_plan_free(&tmp);
		return -1;
	}
	x->r->stage_solves += solves;
	if (x->o->progress)
		x->o->progress(x->o->progress_ctx, "stages solved whole", x->r->stage_solves, 0);
	k->keep = ir_xrealloc(k->keep, sizeof *k->keep * (size_t)(k->nkeep + 1));
	k->exact = ir_xrealloc(k->exact, sizeof *k->exact * (size_t)(k->nexact + n));
	if (!k->keep || !k->exact)
		abort();
	k->keep[k->nkeep++] = tmp; /* the arena (the stages' arrays) moves with it */
	const IrPlan *kept = &k->keep[k->nkeep - 1];
	for (int j = 0; j < n; j++) {
		int q = idx[j];
		Exact *ex = &k->exact[k->nexact];
		*ex = (Exact){p->first[q], p->last[q], p->shape[q], p->view[q], {{0}}, NULL};
		ex->st = &kept->stages[j];
		if (pass_stage_options(k->g, x->c, ex->st, ex->opt, e))
			return -1;
		k->nexact++;
	}
	return n;
}

static int build_plan(const Search *x, const Cand *k, const PassPipeline *p, IrRecompute rc,
		      const char *model, const char *cluster, int nodes, IrPlan *plan, IrError *e);

/* Simulated step time of candidate k's pipeline p under mode rc (every
 * stage solved whole); INFINITY when it does not fit, NAN on error. */
static double simulate(const Search *x, const Cand *k, const PassPipeline *p, IrRecompute rc,
		       IrError *e)
{
	IrPlan plan;
	ir_plan_init(&plan);
	SimResult r;
	double step = NAN;
	if (!build_plan(x, k, p, rc, NULL, NULL, 0, &plan, e) && !sim_plan(k->g, x->c, &plan, &r, e)) {
		step = r.fits ? r.step_time_s : INFINITY;
		sim_result_free(&r);
	}
	ir_plan_free(&plan);
	return step;
}

/* Exact DP cost of pipeline p (mode rc) of candidate k, every stage solved
 * whole (p's times, views, memory refreshed); NAN on error. */
static double exact_cost(const Search *x, const Cand *k, PassPipeline *p, IrRecompute rc,
			 IrError *e)
{
	PassStageTable t;
	if (cand_table(x, k, rc, true, p, &t, e))
		return NAN;
	double c = pass_pipeline_cost(&t, p);
	pipeline_memory(&t, p);
	pass_stage_table_free(&t);
	return c;
}


/*
 * Refines candidate k: solves whole the stages the DP picks, puts their
 * exact costs in the table, reruns the DP (every recomputation mode),
 * until it picks only stages solved whole.  Stops early after REFINE_ROUNDS
 * rounds, once the DP's estimate reaches 1.02 x `bound` (the least
 * simulated step time known: as choose() rules, such a pipeline is not
 * solved whole), or once the user's time limit has passed and a pipeline
 * solved whole fits, keeping the best pipeline solved whole:
 * k->p, k->rc, k->cost (INFINITY: none fits once solved whole).
 */
static int refine(Search *x, Cand *k, double bound, IrError *e)
{
	PassPipeline best_p = k->p;
	IrRecompute best_rc = k->rc;
	k->cost = INFINITY;
	k->refined = true;
	for (int iter = 0;; iter++) {
		int n = solve_missing(x, k, &k->p, k->rc, e);
		if (n < 0)
			return -1;
		/* every stage of k->p is solved now: the best so far? */
		PassPipeline p = k->p;
		double c = exact_cost(x, k, &p, k->rc, e);
		if (isnan(c))
			return -1;
		if (c < k->cost) {
			k->cost = c;
			best_p = p;
			best_rc = k->rc;
		}
		if (n == 0 || iter >= REFINE_ROUNDS || (isfinite(k->cost) && out_of_time(x)))
			break;
		x->r->refinements++;
		if (best_over_modes(x, k, true, false, e))
			return -1;
		if (!(k->est < 1.02 * bound))
			break;
	}
	k->p = best_p;
	k->rc = best_rc;
	k->sim_s = INFINITY;
	if (!isfinite(k->cost))
		return 0;
	k->sim_s = simulate(x, k, &k->p, k->rc, e);
	if (isnan(k->sim_s))
		return -1;
	/* the best pipelines of other stage counts within 3%, checked in the
	 * simulator (the DP's cost leaves out how the schedule's end and the
	 * once-per-step work overlap) */
	PassPipeline *alt = ir_xmalloc(sizeof(PassPipeline) * (PASS_MAX_UNITS + 1));
	if (!alt)
		abort();
	PassPipeline p;
	if (isnan(best_pipeline(x, k, k->rc, true, INFINITY, &p, NULL, alt, e))) {
		free(alt);
		return -1;
	}
	/* the exact costs of the stages the loop below solves are not in alt */
	free(k->alt);
	k->alt = alt;
	int rc = 0;
	for (int S = 1; S <= PASS_MAX_UNITS && !rc; S++) {
		if (!(alt[S].total_s <= 1.03 * k->cost) || !(alt[S].total_s < 1.02 * bound) ||
		    S == k->p.nstages || out_of_time(x))
			continue;
		if (solve_missing(x, k, &alt[S], k->rc, e) < 0) {
			rc = -1;
			break;
		}
		double c = exact_cost(x, k, &alt[S], k->rc, e);
		double sim = isfinite(c) ? simulate(x, k, &alt[S], k->rc, e) : INFINITY;
		if (isnan(c) || isnan(sim))
			rc = -1;
		else if (sim < k->sim_s) {
			k->sim_s = sim;
			k->cost = c;
			k->p = alt[S];
		}
	}
	return rc;
}

/* Refines the candidates whose estimate is within 2% of the best simulated
 * step time so far, the hand-written plan's (`bound`, INFINITY: none)
 * among them, best estimate first (while the user's time limit, if any,
 * lasts); the winner's index (the least simulated step time), -1 if none
 * was refined or none fits, -2 on error. */
static int choose(Search *x, double bound, IrError *e)
{
	int win = -1;
	for (;;) {
		int next = -1;
		for (int n = 0; n < x->ncand; n++) {
			const Cand *k = &x->cand[n];
			if (!k->refined && isfinite(k->est) &&
			    (next < 0 || k->est < x->cand[next].est))
				next = n;
		}
		if (next < 0)
			break;
		Cand *k = &x->cand[next];
		double best = win >= 0 ? fmin(bound, x->cand[win].sim_s) : bound;
		if (k->est >= 1.02 * best || ((win >= 0 || isfinite(bound)) && out_of_time(x)))
			break;
		if (refine(x, k, best, e))
			return -2;
		if (isfinite(k->sim_s) && (win < 0 || k->sim_s < x->cand[win].sim_s))
			win = next;
	}
	return win;
}

/* The plan of candidate k's pipeline p under mode rc (every stage solved
 * whole): stages placed. */
static int build_plan(const Search *x, const Cand *k, const PassPipeline *p, IrRecompute rc,
		      const char *model, const char *cluster, int nodes, IrPlan *plan, IrError *e)
{
	plan->model = ir_strdup(&plan->arena, model ? model : "");
	plan->params = *x->ps;
	ir_params_set(&plan->params, "batch", k->b);
	plan->cluster = ir_strdup(&plan->arena, cluster ? cluster : x->c->name);
	plan->nodes = nodes;
	plan->global_batch = x->o->global_batch;
	plan->microbatch = k->b;
	plan->nmicro = (int)(x->o->global_batch / k->b);
	plan->schedule = IR_SCHED_1F1B;
	plan->chunks = 1;
	plan->recompute = rc;
	plan->zero = 0;
	plan->nstages = p->nstages;
	plan->stages = ir_alloc(&plan->arena, sizeof(IrStagePlan) * (size_t)p->nstages);
	PassShape shape[PASS_MAX_UNITS];
	IrMesh mesh[PASS_MAX_UNITS];
	const Exact *ex[PASS_MAX_UNITS];
	for (int q = 0; q < p->nstages; q++) {
		ex[q] = find_exact(k, p->first[q], p->last[q], p->shape[q], p->view[q]);
		if (!ex[q])
			return ir_fail(e, "", 0, "stage %d was not sharded (internal error)", q);
		shape[q] = (PassShape){ex[q]->st->mesh.nnodes, ex[q]->st->mesh.ngpus};
	}
	if (place(x->c, shape, p->nstages, mesh))
		return ir_fail(e, x->c->file, 0,
			       "the chosen sub-meshes do not tile the %dx%d cluster (internal error)",
			       x->c->nodes, x->c->gpus_per_node);
	for (int q = 0; q < p->nstages; q++) {
		const IrStagePlan *src = ex[q]->st;
		IrStagePlan *s = &plan->stages[q];
		*s = *src;
		ir_stage_alloc(plan, s, src->nops, src->ncomm);
		memcpy(s->op, src->op, sizeof(int) * (size_t)src->nops);
		memcpy(s->ways, src->ways, sizeof(int) * (size_t)src->nops);
		for (int n = 0; n < src->nops; n++)
			s->strategy[n] = ir_strdup(&plan->arena, src->strategy[n]);
		memcpy(s->comm, src->comm, sizeof(IrComm) * (size_t)src->ncomm);
		ir_stage_copy_why(plan, s, src, NULL);
		s->mesh = mesh[q];
	}
	return 0;
}

/* True (and recorded in r) once the user's time limit has passed. */
static bool past(double deadline, PassInterResult *r)
{
	if (!(ir_now_s() > deadline))
		return false;
	r->time_limited = true;
	return true;
}

/* r's per-stage figures from the simulator, for a plan that replaced the
 * DP's (fwd + bwd + step / nmicro, the rank's peak memory). */
static void adopt(const IrPlan *plan, const SimResult *sr, PassInterResult *r)
{
	for (int q = 0; q < plan->nstages && q < PASS_MAX_UNITS; q++) {
		const SimStageCost *sc = &sr->stage[q];
		r->stage_time_s[q] = sc->fwd_s + sc->bwd_s + sc->step_s / plan->nmicro;
		r->stage_mem_bytes[q] = sr->rank_mem[q % sr->nranks];
	}
	r->estimate_s = sr->step_time_s;
}

/* One plan the polish tries: the chosen stages re-sharded with ZeRO z
 * (m NULL), or a Megatron-style neighbour m; its simulation. */
typedef struct {
	int z;
	PassManual m;
	bool manual;
	IrPlan p;
	SimResult sr;
	bool ok;     /* sharded and simulated */
	int solves;
} Try;

typedef struct {
	const IrGraph *g;
	const IrCluster *c;
	const IrPlan *base;
	int threads;      /* per job */
	double deadline;
	Try *t;
	bool late;        /* a job did not start: the time limit had passed */
} TryCtx;

static void try_one(void *ctx, int j)
{
	TryCtx *x = ctx;
	Try *t = &x->t[j];
	if (ir_now_s() > x->deadline) {
		x->late = true; /* only a user's time limit makes this differ between runs */
		return;
	}
	IrError e2;
	if (t->manual) {
		ir_plan_init_like(&t->p, x->base, 0);
		t->ok = !pass_manual_plan(x->g, x->c, &t->m, x->base->global_batch, 0, x->threads,
					  false, &t->p, &t->sr, &t->solves, &e2);
		return;
	}
	int S = x->base->nstages;
	ir_plan_init_like(&t->p, x->base, S);
	t->p.zero = t->z;
	PassIntraOptions *opt = ir_xcalloc((size_t)S, sizeof *opt);
	for (int q = 0; q < S; q++) {
		const IrStagePlan *a = &x->base->stages[q];
		t->p.stages[q] = (IrStagePlan){.first_layer = a->first_layer,
					       .last_layer = a->last_layer, .mesh = a->mesh,
					       .n0 = a->n0, .n1 = a->n1};
		opt[q] = (PassIntraOptions){.method = PASS_ILP, .zero = t->z};
	}
	t->ok = !pass_shard_stages(x->g, x->c, &t->p, opt, x->threads, &t->solves, &e2);
	free(opt);
	if (t->ok)
		t->ok = !sim_plan(x->g, x->c, &t->p, &t->sr, &e2);
}

/* Shards and simulates the n tries, in parallel; then, in order, the
 * first strictly faster fitting one of each improvement replaces *plan
 * (so the result is the one a sequential pass would keep). */
static void run_tries(const IrGraph *g, const IrCluster *c, int threads, double deadline,
		      Try *t, int n, const char *from, IrPlan *plan, double *best,
		      PassInterResult *r)
{
	if (!n)
		return;
	int nt = threads > 0 ? threads : 0;
	TryCtx x = {g, c, plan, n >= 2 ? 1 : threads, deadline, t, false};
	pass_run_jobs(n, nt, try_one, &x);
	if (x.late)
		r->time_limited = true;
	int win = -1;
	for (int j = 0; j < n; j++) {
		if (!t[j].ok)
			continue;
		r->stage_solves += t[j].solves;
		if (t[j].sr.fits && t[j].sr.step_time_s < *best) {
			*best = t[j].sr.step_time_s;
			win = j;
		}
	}
	if (win >= 0) {
		adopt(&t[win].p, &t[win].sr, r);
		if (t[win].manual)
			snprintf(r->from, sizeof r->from, "%s", from);
		else
			snprintf(r->from, sizeof r->from, "dp+zero-%d", t[win].z);
		IrPlan old = *plan;
		*plan = t[win].p;
		t[win].p = old;
	}
	for (int j = 0; j < n; j++) {
		if (t[j].ok)
			sim_result_free(&t[j].sr);
		ir_plan_free(&t[j].p);
	}
}

/*
 * Megatron-style neighbours of the chosen plan: pp equal stages for pp
 * dividing the devices within a factor of two of its stage count, each on
 * a dp x tp mesh with the tp of the logical view that covers most of its
 * devices, the same microbatch and recomputation, ZeRO 0 or 1, sharded by
 * the ILP and laid out as Megatron-LM does (the candidates a hand-written
 * grid plan would be), kept when faster in the simulator and fitting.
 * The DP's layer units and per-layer sums can miss such a plan by a
 * little.
 */
static void uniform_neighbours(const IrGraph *g, const IrCluster *c, int threads,
			       double deadline, IrPlan *plan, double *best, PassInterResult *r)
{
	int devices = 0, S = plan->nstages, tp = 1, most = 0;
	for (int q = 0; q < S; q++)
		devices += ir_mesh_devices(&plan->stages[q].mesh);
	for (int q = 0; q < S; q++) {
		int n1 = plan->stages[q].n1, cover = 0;
		for (int u = 0; u < S; u++)
			if (plan->stages[u].n1 == n1)
				cover += ir_mesh_devices(&plan->stages[u].mesh);
		if (cover > most) {
			most = cover;
			tp = n1;
		}
	}
	Try *t = ir_xcalloc((size_t)4 * (2 * S + 2), sizeof *t);
	int n = 0;
	for (int pp = (S + 1) / 2; pp <= 2 * S && pp <= g->nlayers && pp <= PASS_MAX_UNITS; pp++) {
		if (devices % pp || (devices / pp) % tp)
			continue;
		int dp = devices / pp / tp;
		if (plan->microbatch % dp)
			continue;
		for (int zs = 0; zs < 2 * (dp > 1 ? 2 : 1); zs++) {
			PassManual m = {.dp = dp, .tp = tp, .pp = pp, .mbs = plan->microbatch / dp,
					.v = 1, .schedule = IR_SCHED_1F1B,
					.recompute = plan->recompute, .zero = zs / 2,
					.method = PASS_ILP,
					.shard = zs % 2 ? PASS_SHARD_MEGATRON : PASS_SHARD_METHOD};
			char why[256];
			if (pass_manual_check(c, &m, plan->global_batch, why, sizeof why))
				continue;
			t[n++] = (Try){.m = m, .manual = true};
		}
	}
	run_tries(g, c, threads, deadline, t, n, "uniform", plan, best, r);
	free(t);
}

/* The fastest hand-written plan, found beside the microbatch search: its
 * step time bounds which candidates are worth solving whole. */
typedef struct {
	bool ok;          /* a plan that fits */
	IrPlan plan;
	IrGraph g;        /* the training graph at its microbatch */
	SimResult sr;
	char from[16];    /* "grid" (Megatron-LM's layout) or "expert" */
} Hand;

static void hand_free(Hand *h)
{
	if (h->ok) {
		sim_result_free(&h->sr);
		ir_plan_free(&h->plan);
		ir_graph_free(&h->g);
	}
	memset(h, 0, sizeof *h);
}

/* The hand-written search, run in a thread of its own beside the
 * microbatch search; it reads only what the search does not change. */
typedef struct {
	const Search *x;
	const char *model, *cluster;
	int nodes;
	Hand h;
	bool late;        /* the user's time limit passed before a family began */
	double time_s;
	pthread_t tid;
	bool threaded;
} HandJob;

/*
 * The hand-written families (pass_manual_search, each point simulated):
 * every dp x tp x pp, microbatch, ZeRO stage and recomputation in
 * Megatron-LM's layout (no ILP), and for a model with experts also data +
 * expert parallelism on dp x ep meshes without a pipeline, as
 * DeepSpeed-MoE runs it.  The fastest that fits goes into j->h, so that a
 * compiled plan is never slower than the plan a person would find by hand
 * in those families (at the user's microbatch when one is fixed).
 */
static void *hand_search(void *arg)
{
	HandJob *j = arg;
	const Search *x = j->x;
	Hand *h = &j->h;
	double t0 = ir_now_s();
	IrError e;
	IrGraph *g1 = load_graph(x, 1, &e);
	if (!g1)
		return NULL; /* the microbatch search reports it */
	int nfam = pass_graph_has_experts(g1) ? 2 : 1;
	drop_graph(g1);
	PassManualSearch fam[2] = {{.global_batch = x->o->global_batch,
				    .shard = PASS_SHARD_MEGATRON, .method = PASS_ILP,
				    .microbatch = x->o->microbatch, .recompute = x->o->recompute,
				    .threads = x->o->threads},
				   {.global_batch = x->o->global_batch,
				    .shard = PASS_SHARD_METHOD, .method = PASS_EXPERT,
				    .max_pp = 1, .tp_if_needed = true, .microbatch = x->o->microbatch,
				    .recompute = x->o->recompute, .threads = x->o->threads}};
	for (int f = 0; f < nfam; f++) {
		if (x->o->time_limit_s > 0 && ir_now_s() - x->t0 > x->o->time_limit_s) {
			j->late = true;
			break;
		}
		Hand t;
		memset(&t, 0, sizeof t);
		PassManualResult mr;
		if (pass_manual_search(x->m, j->model ? j->model : "", x->ps, x->c,
				       j->cluster ? j->cluster : x->c->name, j->nodes, &fam[f], &t.plan,
				       &t.g, &t.sr, &mr, &e))
			continue; /* none fits, or the model has no such layout */
		t.ok = true;
		snprintf(t.from, sizeof t.from, "%s", f ? "expert" : "grid");
		if (!h->ok || t.sr.step_time_s < h->sr.step_time_s) {
			hand_free(h);
			*h = t;
		} else {
			hand_free(&t);
		}
	}
	j->time_s = ir_now_s() - t0;
	return NULL;
}

/* Starts the hand-written search (in a thread when one starts). */
static void hand_start(HandJob *j)
{
	if (j->x->o->no_hand)
		return;
	j->threaded = !pthread_create(&j->tid, NULL, hand_search, j);
	if (!j->threaded)
		hand_search(j);
}

/* Waits for it; its time and a time limit it met into the result. */
static void hand_join(HandJob *j, PassInterResult *r)
{
	if (j->threaded)
		pthread_join(j->tid, NULL);
	j->threaded = false;
	r->hand_s += j->time_s;
	if (j->late)
		r->time_limited = true;
}

/* The hand-written plan h replaces *plan (and its graph g; h keeps the old
 * ones to free). */
static void adopt_hand(Hand *h, IrGraph *g, IrPlan *plan, PassInterResult *r)
{
	adopt(&h->plan, &h->sr, r);
	snprintf(r->from, sizeof r->from, "%s", h->from);
	IrPlan op = *plan;
	*plan = h->plan;
	h->plan = op;
	IrGraph og = *g;
	*g = h->g;
	h->g = og;
}

/*
 * The chosen plan's stages re-sharded with optimizer state (ZeRO-1), then
 * also gradients (ZeRO-2), sharded over each mesh's axis 0, as hand-written
 * plans do; the fastest in the simulator that fits is kept.  The ILP's
 * objective prices each per-step collective alone where the simulator
 * runs them as one flat buffer per kind and axis, so a forced sharding can
 * come out ahead by a little.  Then the uniform neighbours, then the
 * hand-written plan h (taken when faster, its graph swapped into g).  The
 * tries of each step run in parallel.  0, or -1 with e.
 */
static int polish(IrGraph *g, const IrCluster *c, int threads, double deadline, Hand *h,
		  IrPlan *plan, PassInterResult *r, IrError *e)
{
	SimResult base;
	if (sim_plan(g, c, plan, &base, e))
		return -1;
	double best = base.fits ? base.step_time_s : INFINITY;
	sim_result_free(&base);
	Try t[2] = {{.z = 1}, {.z = 2}};
	if (!past(deadline, r))
		run_tries(g, c, threads, deadline, t, 2, "", plan, &best, r);
	if (isfinite(best) && !past(deadline, r))
		uniform_neighbours(g, c, threads, deadline, plan, &best, r);
	if (h->ok && h->sr.step_time_s < best)
		adopt_hand(h, g, plan, r);
	return 0;
}

/* "layers 0-11 on 1x8 as 2x4; ..." of pipeline p under t into the arena. */
static const char *pipeline_layout(const Search *x, const PassStageTable *t,
				   const PassPipeline *p, IrArena *a)
{
	char buf[2048];
	size_t o = 0;
	buf[0] = 0;
	for (int q = 0; q < p->nstages && o < sizeof buf; q++) {
		const PassShape *sh = &t->shape[p->shape[q]];
		int v = p->view[q] < 0 ? 0 : p->view[q];
		const IrLogicalMesh *lv = &t->view[p->shape[q] * t->maxviews + v];
		o += (size_t)snprintf(buf + o, sizeof buf - o, "%slayers %d-%d on %dx%d as %dx%d%s",
				      q ? "; " : "", x->unit_first[p->first[q]],
				      x->unit_first[p->last[q] + 1] - 1, sh->nodes, sh->gpus,
				      lv->n[0], lv->n[1],
				      t->twins && v >= t->nviews[p->shape[q]] / 2 ? " lean" : "");
	}
	return ir_strdup(a, buf);
}

static double pipeline_peak(const PassPipeline *p)
{
	double m = 0;
	for (int q = 0; q < p->nstages; q++)
		m = fmax(m, p->mem_bytes[q]);
	return m;
}

static void push_alt(IrPlan *plan, int *cap, IrSearchAlt a)
{
	IrPlanSearch *s = &plan->search;
	if (s->nalt == *cap) {
		int n = *cap ? 2 * *cap : 16;
		IrSearchAlt *b = ir_alloc(&plan->arena, sizeof *b * (size_t)n);
		if (s->nalt)
			memcpy(b, s->alt, sizeof *b * (size_t)s->nalt);
		s->alt = b;
		*cap = n;
	}
	s->alt[s->nalt++] = a;
}

/*
 * plan->search: what the search weighed besides winner k's pipeline: the
 * best pipeline of every other stage count, every other view of each
 * chosen stage's sub-mesh, the other recomputation modes and the other
 * microbatch sizes, each with the DP's estimate and memory.  0, or -1
 * with e.
 */
static int record_search(const Search *x, const Cand *k, IrPlan *plan, IrError *e)
{
	IrPlanSearch *s = &plan->search;
	IrArena *a = &plan->arena;
	s->from = ir_strdup(a, x->r->from[0] ? x->r->from : "dp");
	/* no pipeline of the DP fits: the hand-written plan's simulated time */
	s->estimate_s = !k ? x->r->estimate_s : k->refined ? k->cost : k->est;
	s->device_bytes = x->c->gpu.mem_bytes;
	s->cut = x->r->time_limited ? "time-limit" : NULL;
	s->nstage_s = plan->nstages < PASS_MAX_UNITS ? plan->nstages : PASS_MAX_UNITS;
	s->stage_s = ir_alloc(a, sizeof(double) * (size_t)(s->nstage_s + 1));
	for (int q = 0; q < s->nstage_s; q++) /* a plan that replaced the DP's: simulated */
		s->stage_s[q] = x->r->stage_time_s[q];
	if (x->r->from[0]) /* priced by the simulator, not the search */
		s->nstage_s = 0;
	if (!k)
		return 0; /* no pipeline of the DP fits */
	int cap = 0;
	PassStageTable t;
	if (cand_table(x, k, k->rc, true, NULL, &t, e))
		return -1;
	char what[128];
	snprintf(what, sizeof what, "%d stage%s (the DP's choice)", k->p.nstages,
		 k->p.nstages == 1 ? "" : "s");
	push_alt(plan, &cap, (IrSearchAlt){ir_strdup(a, what), pipeline_layout(x, &t, &k->p, a),
					   s->estimate_s, pipeline_peak(&k->p), true});
	for (int S = 1; k->alt && S <= PASS_MAX_UNITS; S++) {
		const PassPipeline *p = &k->alt[S];
		if (S == k->p.nstages || !isfinite(p->total_s))
			continue;
		snprintf(what, sizeof what, "%d stage%s", S, S == 1 ? "" : "s");
		push_alt(plan, &cap, (IrSearchAlt){ir_strdup(a, what), pipeline_layout(x, &t, p, a),
						   p->total_s, pipeline_peak(p), true});
	}
	/* the other views of each chosen stage's sub-mesh, the pipeline's step
	 * time as pass_pipeline_cost prices it with that stage's time changed */
	int S = k->p.nstages;
	double st[PASS_MAX_UNITS], edge[PASS_MAX_UNITS];
	for (int q = 0; q < S; q++) {
		const PassStageOption *so = &t.option[pass_stage_index(
			&t, k->p.first[q], k->p.last[q], k->p.shape[q], k->p.view[q] < 0 ? 0 : k->p.view[q])];
		st[q] = so->fwd_s + so->bwd_s + so->step_s / t.nmicro;
		edge[q] = k->p.time_s[q] - st[q];
		if (!x->r->from[0] && q < s->nstage_s)
			s->stage_s[q] = st[q];
	}
	for (int q = 0; q < S; q++) {
		int h = k->p.shape[q];
		int in = S - q < t.nmicro ? S - q : t.nmicro;
		int first_alt = s->nalt;
		for (int v = 0; v < t.nviews[h]; v++) {
			const PassStageOption *so =
				&t.option[pass_stage_index(&t, k->p.first[q], k->p.last[q], h, v)];
			if (v == k->p.view[q] || !so->ok)
				continue;
			const IrLogicalMesh *lv = &t.view[h * t.maxviews + v];
			bool lean = t.twins && v >= t.nviews[h] / 2;
			snprintf(what, sizeof what, "stage %d as %dx%d%s", q, lv->n[0], lv->n[1],
				 lean ? " lean (ZeRO-2)" : "");
			bool dup = false;
			for (int j = first_alt; j < s->nalt && !dup; j++)
				dup = !strcmp(s->alt[j].what, what);
			if (dup)
				continue;
			double sum = 0, mx = 0;
			for (int u = 0; u < S; u++) {
				double tu = u == q ? so->fwd_s + so->bwd_s + so->step_s / t.nmicro : st[u];
				mx = fmax(mx, tu);
				sum += tu + edge[u];
			}
			PassPipeline one = k->p;
			one.view[q] = v;
			double mem = so->state_bytes + in * so->act_bytes + so->work_bytes;
			push_alt(plan, &cap, (IrSearchAlt){ir_strdup(a, what),
							   pipeline_layout(x, &t, &one, a),
							   sum + (t.nmicro - 1) * fmax(mx, sum / S),
							   mem, mem <= t.mem_bytes});
		}
	}
	pass_stage_table_free(&t);
	/* the other recomputation modes at this microbatch */
	for (int rc = 0; rc < 3; rc++) {
		if (rc == (int)k->rc || (x->o->recompute >= 0 && rc != x->o->recompute))
			continue;
		PassPipeline p;
		bool none = false;
		double total = best_pipeline(x, k, (IrRecompute)rc, true, INFINITY, &p, &none, NULL, e);
		if (isnan(total))
			return -1;
		snprintf(what, sizeof what, "recompute %s", ir_recompute_name((IrRecompute)rc));
		IrSearchAlt r = {ir_strdup(a, what), "", NAN, 0, false};
		if (isfinite(total)) {
			PassStageTable t2;
			if (cand_table(x, k, (IrRecompute)rc, true, NULL, &t2, e))
				return -1;
			r = (IrSearchAlt){r.what, pipeline_layout(x, &t2, &p, a), total,
					  pipeline_peak(&p), true};
			pass_stage_table_free(&t2);
		} else {
			PassStageTable t2;
			if (cand_table(x, k, (IrRecompute)rc, true, NULL, &t2, e))
				return -1;
			r.mem_bytes = pass_stage_min_memory(&t2, x->devices);
			pass_stage_table_free(&t2);
		}
		push_alt(plan, &cap, r);
	}
	/* the other microbatch sizes (the DP's estimates from per-layer costs) */
	for (int n = 0; n < x->ncand; n++) {
		const Cand *o = &x->cand[n];
		if (o == k)
			continue;
		snprintf(what, sizeof what, "microbatch %lld (recompute %s)", (long long)o->b,
			 ir_recompute_name(o->rc));
		IrSearchAlt r = {ir_strdup(a, what), "", NAN, 0, false};
		if (isfinite(o->est)) {
			PassStageTable t2;
			if (cand_table(x, o, o->rc, o->refined, NULL, &t2, e))
				return -1;
			r = (IrSearchAlt){r.what, pipeline_layout(x, &t2, &o->p, a),
					  o->refined && isfinite(o->cost) ? o->cost : o->est,
					  pipeline_peak(&o->p), true};
			pass_stage_table_free(&t2);
		}
		push_alt(plan, &cap, r);
	}
	return 0;
}

/* The candidate of least estimate (NULL: none fits). */
static const Cand *best_estimate(const Search *x)
{
	const Cand *b = NULL;
	for (int n = 0; n < x->ncand; n++)
		if (isfinite(x->cand[n].est) && (!b || x->cand[n].est < b->est))
			b = &x->cand[n];
	return b;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* The microbatch sizes d dividing G with G/d <= 2^20 microbatches, the
 * smallest `max` of them in ascending order: pairs (d, G/d) up to sqrt(G),
 * so 2^20 steps for the largest batch (IR_MAX_BATCH = 2^40). */
static int batch_divisors(int64_t G, int64_t *div, int max)
{
	int64_t *all = ir_xmalloc(sizeof *all * 2 * 16384);
	int n = 0;
	for (int64_t d = 1; d <= G / d && n + 2 <= 2 * 16384; d++)
		if (G % d == 0) {
			all[n++] = d;
			if (G / d != d)
				all[n++] = G / d;
		}
	qsort(all, (size_t)n, sizeof *all, cmp_i64);
	int k = 0;
	for (int i = 0; i < n && k < max; i++)
		if (G / all[i] <= 1 << 20)
			div[k++] = all[i];
	free(all);
	return k;
}

/* The least memory per device any pipeline needs, over the microbatch
 * sizes and modes where the DP found none (INFINITY if none of them); NAN
 * on error.  Only a compile that fails needs it, so it is found then. */
static double least_need(const Search *x, IrError *e)
{
	double need = INFINITY;
	for (int n = 0; n < x->ncand; n++)
		for (int rc = 0; rc < 3; rc++) {
			if (!x->cand[n].none[rc])
				continue;
			PassStageTable t;
			if (cand_table(x, &x->cand[n], (IrRecompute)rc, false, NULL, &t, e))
				return NAN;
			need = fmin(need, pass_stage_min_memory(&t, x->devices));
			pass_stage_table_free(&t);
		}
	return need;
}

static int infeasible(PassInterResult *r, const IrCluster *c, int nunits, double need,
		      IrError *e)
{
	r->status = PASS_INFEASIBLE;
	r->need_bytes = need;
	PassShape shape[PASS_MAX_SHAPES];
	int nshapes = pass_submesh_shapes(c, shape, PASS_MAX_SHAPES), widest = 0;
	for (int h = 0; h < nshapes; h++)
		if (shape[h].nodes * shape[h].gpus > widest)
			widest = shape[h].nodes * shape[h].gpus;
	if (r->time_limited)
		snprintf(r->message, sizeof r->message,
			 "no plan found within the time limit (--time-limit): give it longer");
	else if ((long)nunits * widest < ir_cluster_gpus(c))
		snprintf(r->message, sizeof r->message,
			 "no pipeline uses all %d GPUs: the model's %d layer clusters on sub-meshes of "
			 "at most %d GPUs cover %ld",
			 ir_cluster_gpus(c), nunits, widest, (long)nunits * widest);
	else if (isfinite(need))
		snprintf(r->message, sizeof r->message,
			 "no plan fits: the leanest needs %.2f GiB per device, the GPU has %.2f GiB",
			 need / 1073741824.0, c->gpu.mem_bytes / 1073741824.0);
	else
		snprintf(r->message, sizeof r->message,
			 "no plan fits the GPU's %.2f GiB once its stages are sharded whole",
			 c->gpu.mem_bytes / 1073741824.0);
	return ir_fail(e, "", 0, "%s", r->message);
}

int pass_inter_op(const IrModelDoc *m, const char *model, const IrParamSet *ps,
		  const IrCluster *c, const char *cluster, int nodes, const PassInterOptions *o,
		  IrPlan *plan, IrGraph *g, PassInterResult *r, IrError *e)
{
	ir_plan_init(plan);
	memset(r, 0, sizeof *r);
	r->status = PASS_ERROR;
	r->have_bytes = c->gpu.mem_bytes;
	IrParamSet none = {0};
	Search x;
	memset(&x, 0, sizeof x);
	x.t0 = ir_now_s();
	x.m = m;
	x.ps = ps ? ps : &none;
	x.c = c;
	x.o = o;
	x.r = r;
	x.devices = ir_cluster_gpus(c);
	int64_t G = o->global_batch;
	if (G <= 0)
		return ir_fail(e, "", 0, "the global batch must be positive");
	if (o->microbatch > 0 && G % o->microbatch)
		return ir_fail(e, "", 0, "microbatch %lld does not divide the global batch %lld",
			       (long long)o->microbatch, (long long)G);
	if (o->recompute > IR_RECOMP_FULL)
		return ir_fail(e, "", 0, "unknown recomputation mode %d", o->recompute);
	x.div = ir_xmalloc(sizeof(int64_t) * 4096);
	x.cand_of = ir_xmalloc(sizeof(int) * 4096);
	x.cand = ir_xcalloc(4096, sizeof(Cand));
	if (!x.div || !x.cand_of || !x.cand)
		abort();
	if (o->microbatch > 0) {
		x.div[x.ndiv++] = o->microbatch;
	} else {
		x.ndiv = batch_divisors(G, x.div, 4096);
	}
	for (int i = 0; i < x.ndiv; i++)
		x.cand_of[i] = -1;
	HandJob hj = {.x = &x, .model = model, .cluster = cluster, .nodes = nodes};
	hand_start(&hj);
	int rc = search(&x, e), win = -1;
	hand_join(&hj, r);
	Hand *h = &hj.h;
	if (!rc) {
		win = choose(&x, h->ok ? h->sr.step_time_s : INFINITY, e);
		if (win == -2)
			rc = -1;
		else if (win < 0 && !h->ok) {
			double need = least_need(&x, e);
			rc = isnan(need) ? -1 : infeasible(r, c, x.nunits, need, e);
		}
	}
	double deadline = o->time_limit_s > 0 ? x.t0 + o->time_limit_s : INFINITY;
	if (!rc && win >= 0) {
		Cand *k = &x.cand[win];
		rc = build_plan(&x, k, &k->p, k->rc, model, cluster, nodes, plan, e);
		if (!rc) {
			r->estimate_s = k->cost;
			r->microbatch = k->b;
			r->recompute = k->rc;
			for (int q = 0; q < plan->nstages; q++) {
				r->stage_time_s[q] = k->p.time_s[q];
				r->stage_mem_bytes[q] = k->p.mem_bytes[q];
			}
			*g = *k->g;
			free(k->g);
			k->g = NULL;
			double t0 = ir_now_s();
			rc = polish(g, c, o->threads, deadline, h, plan, r, e);
			r->refine_s += ir_now_s() - t0;
			if (rc)
				ir_graph_free(g);
		}
	} else if (!rc) {
		/* no candidate's estimate came within 2% of the hand-written plan */
		memset(g, 0, sizeof *g);
		adopt_hand(h, g, plan, r);
	}
	if (!rc) {
		r->status = PASS_OPTIMAL;
		r->nunits = x.nunits;
		r->microbatch = plan->microbatch;
		r->nmicro = plan->nmicro;
		r->recompute = plan->recompute;
		rc = record_search(&x, win >= 0 ? &x.cand[win] : best_estimate(&x), plan, e);
		if (rc)
			ir_graph_free(g);
		snprintf(r->message, sizeof r->message, "%d stages, microbatch %lld x %d",
			 plan->nstages, (long long)plan->microbatch, plan->nmicro);
	}
	hand_free(h);
	if (rc)
		ir_plan_free(plan);
	for (int n = 0; n < x.ncand; n++)
		cand_free(&x.cand[n]);
	free(x.div);
	free(x.cand_of);
	free(x.cand);
	r->compile_time_s = ir_now_s() - x.t0;
	return rc;
}
