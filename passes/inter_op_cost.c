/*
 * inter_op_cost.c -- stage costs for the inter-operator pass.
 *
 * Reads: the training graph, the cluster, the intra-op pass, the
 *        simulator's stage model (sim_stage_cost).
 * Writes: PassLayerCosts (each distinct layer on each logical view of each
 *        sub-mesh shape), PassStageTable (each range of layer clusters on
 *        each view), and the sharding of a plan's stages.
 *
 * Sub-mesh shapes are Alpa's: (1,1), (1,2), (1,4) .. (1,M), then whole
 * nodes (2,M) .. (N,M); each is seen as every n0 x n1 factorisation.
 *
 * Cost of a layer on a view: the intra-op ILP shards the layer alone
 * (nmicro microbatches per step), and sim_stage_cost times the plan: the
 * forward and backward of one microbatch, the once-per-step work, memory
 * per device, for each recomputation mode.  Twice: the fastest sharding,
 * and a lean one with gradients and optimizer state sharded over axis 0
 * (forced ZeRO-2), for stages that must trade time for memory.  Layers of
 * identical structure (op kinds, shapes, labels, roles, wiring: a hash)
 * share one solve, and two views that are each other's transpose over the
 * same kinds of links share one too.  The solves are independent and run
 * in parallel threads (the GLPK wrapper keeps one environment per thread).
 *
 * Costs are the simulator's with the overlap a plan has by default
 * (PASS_OVERLAP: bucketed gradient reduction during the last backward,
 * weight gathers prefetched a layer ahead), so the DP prices what the
 * chosen plan is simulated with.
 *
 * Cost of a stage (a range of layers) on a view: the sum of its layers'
 * costs, the once-per-step gradient buckets counted as they overlap the
 * stage's last backward (what outlasts the backward after the first
 * bucket is ready, at least the last bucket); recomputation work is the largest layer's (one layer is
 * recomputed at a time), and a tied weight's copy (its gradient sync) is
 * dropped when the layer owning the weight is in the same range.  This
 * leaves out the resharding between two layers whose separate plans
 * disagree at their boundary; the stages the DP finally picks are solved
 * whole (pass_shard_stages) and their exact costs take over.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "passes/passes.h"

/* ------------------------------------------------------------------ */
/* Threads                                                              */

typedef void (*JobFn)(void *ctx, int job);

typedef struct {
	pthread_mutex_t lock;
	int next, done, njobs;
	JobFn fn;
	void *ctx;
	PassProgress progress;
	void *progress_ctx;
	const char *what;
	double deadline;  /* CLOCK_MONOTONIC seconds; jobs not started by then are skipped */
	int keep;         /* except jobs [0, keep) */
	int skipped;
} Pool;

static void *pool_worker(void *arg)
{
	Pool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		int j = p->next < p->njobs ? p->next++ : -1;
		pthread_mutex_unlock(&p->lock);
		if (j < 0)
			return NULL;
		bool skip = j >= p->keep && isfinite(p->deadline) && ir_now_s() > p->deadline;
		if (!skip)
			p->fn(p->ctx, j);
		pthread_mutex_lock(&p->lock);
		p->skipped += skip;
		p->done++;
		if (p->progress)
			p->progress(p->progress_ctx, p->what, p->done, p->njobs);
		pthread_mutex_unlock(&p->lock);
	}
}

static int default_threads(int threads)
{
	if (threads > 0)
		return threads;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)(n < 256 ? n : 256) : 1;
}

/* Runs fn(ctx, 0 .. njobs-1) on `threads` threads (the caller's among them);
 * jobs not begun by `deadline` (CLOCK_MONOTONIC seconds; INFINITY: none) are
 * skipped.  Returns how many were. */
static int run_parallel_until(int njobs, int threads, JobFn fn, void *ctx, PassProgress progress,
			      void *progress_ctx, const char *what, double deadline, int keep)
{
	Pool p = {.next = 0, .njobs = njobs, .fn = fn, .ctx = ctx, .progress = progress,
		  .progress_ctx = progress_ctx, .what = what, .deadline = deadline, .keep = keep};
	pthread_mutex_init(&p.lock, NULL);
	int nt = default_threads(threads);
	if (nt > njobs)
		nt = njobs;
	pthread_t *tid = ir_xcalloc((size_t)(nt > 1 ? nt : 1), sizeof(pthread_t));
	int started = 0;
	for (int i = 1; i < nt; i++)
		if (!pthread_create(&tid[started], NULL, pool_worker, &p))
			started++;
	pool_worker(&p);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	free(tid);
	pthread_mutex_destroy(&p.lock);
	return p.skipped;
}

static void run_parallel(int njobs, int threads, JobFn fn, void *ctx, PassProgress progress,
			 void *progress_ctx, const char *what)
{
	run_parallel_until(njobs, threads, fn, ctx, progress, progress_ctx, what, INFINITY, 0);
}

void pass_run_jobs(int njobs, int threads, void (*fn)(void *ctx, int job), void *ctx)
{
	run_parallel(njobs, threads, fn, ctx, NULL, NULL, "jobs");
}

/* ------------------------------------------------------------------ */
/* Shapes and views                                                     */

int pass_submesh_shapes(const IrCluster *c, PassShape *out, int max)
{
	int n = 0, M = c->gpus_per_node, N = c->nodes;
	for (int g = 1; g < M && n < max; g *= 2)
		out[n++] = (PassShape){1, g};
	if (n < max)
		out[n++] = (PassShape){1, M};
	int room = max - n; /* shapes of 2 nodes or more */
	if ((double)N <= (double)(room + 1) * PASS_DEFAULT_UNITS) {
		for (int k = 2; k <= N && n < max; k++)
			out[n++] = (PassShape){k, M};
		return n;
	}
	/* 2..room+1 nodes cannot tile the cluster in PASS_DEFAULT_UNITS stages:
	 * the even splits of the nodes over 1..PASS_DEFAULT_UNITS stages (q and
	 * q + 1 nodes for N = q s + r), then the smallest counts in the room left */
	bool *want = ir_xcalloc((size_t)N + 2, sizeof(bool));
	if (!want)
		ir_oom();
	int count = 0;
	for (int st = 1; st <= PASS_DEFAULT_UNITS; st++) {
		int q = N / st;
		for (int k = q; k <= q + (N % st != 0); k++)
			if (k >= 2 && k <= N && !want[k]) {
				want[k] = true;
				count++;
			}
	}
	for (int k = 2; k <= N && count < room; k++)
		if (!want[k]) {
			want[k] = true;
			count++;
		}
	for (int k = 2; k <= N && n < max; k++)
		if (want[k])
			out[n++] = (PassShape){k, M};
	free(want);
	return n;
}

int pass_submesh_views(const IrCluster *c, PassShape s, IrLogicalMesh *out, int max)
{
	IrMesh m = {0, s.nodes, 0, s.gpus};
	int d = s.nodes * s.gpus, n = 0;
	for (int n0 = 1; n0 <= d && n < max; n0++)
		if (d % n0 == 0 && !ir_logical_mesh(c, &m, n0, d / n0, &out[n], NULL))
			n++;
	return n;
}

/* Does view b give the same costs as view a (b is a's transpose over the
 * same kinds of links; an axis of one device has no link)? */
static bool same_view(const IrLogicalMesh *a, const IrLogicalMesh *b)
{
	for (int t = 0; t < 2; t++) {
		bool ok = true;
		for (int k = 0; k < 2 && ok; k++) {
			int ka = k, kb = t ? 1 - k : k;
			ok = a->n[ka] == b->n[kb] &&
			     (a->n[ka] == 1 || a->crosses_nodes[ka] == b->crosses_nodes[kb]);
		}
		if (ok)
			return true;
	}
	return false;
}

/* ------------------------------------------------------------------ */
/* Structure of layer ranges                                            */

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

static uint64_t mix_str(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = mix(h, (unsigned char)*s);
	return mix(h, 0);
}

/* The ops of layers [a, b] in graph order, into ops[] (g->nops entries);
 * returns their count. */
static int range_ops(const IrGraph *g, int a, int b, int *ops)
{
	int n = 0;
	for (int i = 0; i < g->nops; i++)
		if (g->ops[i].layer >= a && g->ops[i].layer <= b)
			ops[n++] = i;
	return n;
}

/*
 * Structure of layers [a, b]: per op its kind, phase, function, attributes,
 * local labels, and per operand the tensor's dtype, role, shape, labels and
 * where it comes from (an op of the range by position, or outside; a
 * weight of the range or another's).  pos[] is scratch of g->nops ints,
 * all -1 on entry and on return.
 */
static uint64_t range_hash(const IrGraph *g, int a, int b, const int *ops, int n, int *pos)
{
	uint64_t h = mix(0x6d657368ull, (uint64_t)n);
	for (int j = 0; j < n; j++)
		pos[ops[j]] = j;
	for (int j = 0; j < n; j++) {
		const IrOp *op = &g->ops[ops[j]];
		h = mix(h, (uint64_t)op->kind * 7 + (uint64_t)op->phase);
		h = mix_str(h, op->fn);
		h = mix(h, (uint64_t)op->nin * 16 + (uint64_t)op->nout);
		h = mix(h, op->local);
		for (int k = 0; k < 4; k++)
			h = mix(h, (uint64_t)op->attr[k]);
		h = mix(h, op->fwd >= 0 && pos[op->fwd] >= 0 ? (uint64_t)pos[op->fwd] + 1 : 0);
		for (int k = 0; k < op->nin + op->nout; k++) {
			const IrTensor *t = &g->tensors[k < op->nin ? op->in[k] : op->out[k - op->nin]];
			h = mix(h, (uint64_t)t->dtype * 31 + (uint64_t)t->role);
			h = mix(h, (uint64_t)t->ndim);
			for (int d = 0; d < t->ndim; d++)
				h = mix(h, (uint64_t)t->dim[d]);
			h = mix_str(h, op->lab[k]);
			int p = t->producer;
			h = mix(h, p >= 0 && pos[p] >= 0 ? (uint64_t)pos[p] + 2 : p >= 0 ? 1 : 0);
			h = mix(h, t->layer >= a && t->layer <= b ? 1 : 2);
		}
	}
	for (int j = 0; j < n; j++)
		pos[ops[j]] = -1;
	return h;
}

/* The first layer owning a weight that layer l reads but does not update
 * (a tied weight: l holds a copy), or -1. */
static int tied_owner(const IrGraph *g, int l)
{
	for (int i = 0; i < g->nops; i++) {
		const IrOp *op = &g->ops[i];
		if (op->layer != l || op->phase != IR_FWD)
			continue;
		for (int k = 0; k < op->nin; k++) {
			const IrTensor *t = &g->tensors[op->in[k]];
			if (t->role == IR_T_WEIGHT && t->weight < 0 && t->layer != l)
				return t->layer;
		}
	}
	return -1;
}

/* ------------------------------------------------------------------ */
/* Layer costs                                                          */

enum { NRC = 3, NVAR = 2 };

/* Variants of a layer's sharding on a view: the fastest, and a lean one
 * with gradients and optimizer state sharded over the view's axis 0 (the
 * intra-op pass's forced ZeRO-2; on a 1 x n view, on its n x 1 transpose). */
enum { FAST = 0, LEAN = 1 };

typedef struct {
	bool ok;
	double fwd[NRC], bwd[NRC]; /* per recomputation mode */
	double act[NRC], work[NRC];
	double step;               /* once per step, tied sync included, bucketed
				      gradient reductions left out */
	double sync;               /* the bucketed gradient reductions (overlapped
				      with the last backward) */
	double gather;             /* ZeRO-1/2's updated-weight all-gathers, overlapped
				      with the next step's first forward (left out of step) */
	double state;              /* weights + gradients + optimizer (tied copy included) */
	double tied;               /* bytes of the tied copy: as weight and again as gradient */
	double tied_step;          /* its gradient sync, within step */
	double send;               /* bytes of one microbatch's activations later layers read */
} LayerCost;

struct PassLayerCosts {
	const IrGraph *g;
	const IrCluster *c;
	int nmicro;
	int nshapes;
	PassShape shape[PASS_MAX_SHAPES];
	int nviews[PASS_MAX_SHAPES];
	int maxviews;
	IrLogicalMesh *view;  /* [h * maxviews + v] */
	int *canon;           /* [h * maxviews + v]: the view whose solve it shares */
	IrLogicalMesh *lean;  /* [h * maxviews + v]: the view of its lean variant */
	int nlayers, nkeys;
	int *key;             /* per layer: its key */
	int *rep;             /* per key: a layer with it */
	int *owner;           /* per layer: tied_owner */
	LayerCost *cost;      /* [((key * nshapes + h) * maxviews + v) * NVAR + var] */
	PassWarm *warm;       /* the same index: each solve's LP basis (NULL once dropped) */
	const PassLayerCosts *prev; /* NULL, or the costs whose bases start these solves */
	int solved, cached, ilps;
	char error[512];      /* first failure of a solve or a timing */
	pthread_mutex_t lock;
};

typedef struct {
	int key, h, v;
	double weight; /* expected effort, for ordering */
} Job;

typedef struct {
	PassLayerCosts *lc;
	Job *jobs;
} JobCtx;

static LayerCost *cost_at(const PassLayerCosts *lc, int key, int h, int v, int var)
{
	return &lc->cost[(((size_t)key * lc->nshapes + h) * lc->maxviews + v) * NVAR + var];
}

/* Shards layer l on view (forced ZeRO stage `zero`) and times it into
 * out; 0, or -1 with e (out->ok false). */
static int cost_one(PassLayerCosts *lc, int l, const IrLogicalMesh *view, int zero,
		    LayerCost *out, PassWarm *warm, IrError *e)
{
	const IrGraph *g = lc->g;
	IrPlan plan;
	ir_plan_init(&plan);
	IrStagePlan st;
	PassIntraResult r;
	PassIntraOptions o = {.method = PASS_ILP, .nmicro = lc->nmicro, .zero = zero,
			      .warm = warm};
	memset(out, 0, sizeof *out);
	int rc = pass_intra_op(g, lc->c, view, l, l, &o, &plan, &st, &r, e);
	pthread_mutex_lock(&lc->lock);
	lc->ilps++;
	pthread_mutex_unlock(&lc->lock);
	for (int m = 0; m < NRC && !rc; m++) {
		SimStageCost sc;
		rc = sim_stage_cost_overlap(g, lc->c, &st, (IrRecompute)m, 0, PASS_OVERLAP, &sc, e);
		if (rc)
			break;
		out->fwd[m] = sc.fwd_s;
		out->bwd[m] = sc.bwd_s;
		out->act[m] = sc.mem.act_bytes;
		out->work[m] = sc.mem.act_work_bytes;
		out->sync = (PASS_OVERLAP & IR_OVERLAP_GRAD_REDUCE) ? sc.grad_sync_s : 0;
		out->step = sc.step_s - out->sync;
		out->gather = sc.param_gather_s; /* one layer: all of it is exposed */
		out->state = sc.mem.weight_bytes + sc.mem.grad_bytes + sc.mem.opt_bytes;
		out->tied = sc.mem.tied_grad_bytes;
		out->send = sc.send_bytes;
	}
	if (!rc && out->tied > 0) {
		/* as sim_stage_cost prices it: an all-reduce between the two copies */
		const IrCluster *c = lc->c;
		bool net = c->nodes > 1;
		out->tied_step = sim_collective_time_link(SIM_ALL_REDUCE, out->tied, 2,
							  net ? &c->inter : &c->intra, net);
	}
	out->ok = rc == 0;
	ir_plan_free(&plan);
	return rc;
}

/* One layer on one view: the fastest sharding, then the lean one (kept
 * when it holds less). */
static void solve_layer(void *ctx, int j)
{
	JobCtx *x = ctx;
	PassLayerCosts *lc = x->lc;
	const Job *job = &x->jobs[j];
	int l = lc->rep[job->key];
	const IrLogicalMesh *view = &lc->view[job->h * lc->maxviews + job->v];
	const IrLogicalMesh *lv = &lc->lean[job->h * lc->maxviews + job->v];
	LayerCost *fast = cost_at(lc, job->key, job->h, job->v, FAST);
	LayerCost *lean = cost_at(lc, job->key, job->h, job->v, LEAN);
	PassWarm *wf = NULL, *wl = NULL;
	if (lc->warm) {
		size_t i = (size_t)(fast - lc->cost);
		wf = &lc->warm[i];
		wl = &lc->warm[i + 1];
		for (int var = 0; var < NVAR && lc->prev; var++) {
			const PassWarm *from = &lc->prev->warm[i + (size_t)var];
			PassWarm *to = &lc->warm[i + (size_t)var];
			if (from->n > 0) {
				to->basis = malloc((size_t)from->n);
				if (!to->basis)
					abort();
				memcpy(to->basis, from->basis, (size_t)from->n);
				to->n = from->n;
			}
		}
	}
	IrError e;
	memset(&e, 0, sizeof e);
	memset(lean, 0, sizeof *lean);
	if (!cost_one(lc, l, view, 0, fast, wf, &e)) {
		IrError e2;
		if (lv->n[0] > 1 && !cost_one(lc, l, lv, 2, lean, wl, &e2) &&
		    !(lean->state < 0.99 * fast->state))
			lean->ok = false;
		return;
	}
	pthread_mutex_lock(&lc->lock);
	if (!lc->error[0]) {
		char buf[600];
		snprintf(lc->error, sizeof lc->error, "layer %s on a %dx%d mesh: %s",
			 lc->g->layers[l].name, view->n[0], view->n[1], ir_error_str(&e, buf, sizeof buf));
	}
	pthread_mutex_unlock(&lc->lock);
}

static int cmp_job(const void *a, const void *b)
{
	const Job *x = a, *y = b;
	if (x->weight != y->weight)
		return x->weight > y->weight ? -1 : 1;
	if (x->key != y->key)
		return x->key - y->key;
	if (x->h != y->h)
		return x->h - y->h;
	return x->v - y->v;
}

/* The shapes of lc's cluster, their views, and which view's solve each shares. */
static void setup_views(PassLayerCosts *lc)
{
	lc->nshapes = pass_submesh_shapes(lc->c, lc->shape, PASS_MAX_SHAPES);
	for (int h = 0; h < lc->nshapes; h++) {
		int d = lc->shape[h].nodes * lc->shape[h].gpus, nv = 0;
		for (int n0 = 1; n0 <= d; n0++)
			nv += d % n0 == 0;
		if (nv > lc->maxviews)
			lc->maxviews = nv;
	}
	size_t nv = (size_t)lc->nshapes * (size_t)lc->maxviews;
	lc->view = ir_xcalloc(nv, sizeof *lc->view);
	lc->canon = ir_xmalloc(sizeof(int) * nv);
	lc->lean = ir_xcalloc(nv, sizeof *lc->lean);
	if (!lc->view || !lc->canon || !lc->lean)
		abort();
	for (int h = 0; h < lc->nshapes; h++) {
		IrLogicalMesh *vs = &lc->view[(size_t)h * lc->maxviews];
		lc->nviews[h] = pass_submesh_views(lc->c, lc->shape[h], vs, lc->maxviews);
		for (int v = 0; v < lc->nviews[h]; v++) {
			int u = 0;
			while (u < v && !same_view(&vs[u], &vs[v]))
				u++;
			lc->canon[h * lc->maxviews + v] = u;
			/* the lean variant of a view shares its canonical view's solve */
			const IrLogicalMesh *c = &vs[u];
			IrLogicalMesh *lv = &lc->lean[h * lc->maxviews + v];
			*lv = *c;
			if (c->n[0] == 1 && c->n[1] > 1)
				ir_logical_mesh(lc->c, &c->mesh, c->n[1], 1, lv, NULL);
		}
	}
}

/* Keys of lc's layers (same structure, same key) and tied owners; each
 * layer's op count into nops[]. */
static void setup_keys(PassLayerCosts *lc, int *nops)
{
	const IrGraph *g = lc->g;
	int L = g->nlayers;
	lc->nlayers = L;
	lc->key = ir_xmalloc(sizeof(int) * (size_t)L);
	lc->rep = ir_xmalloc(sizeof(int) * (size_t)L);
	lc->owner = ir_xmalloc(sizeof(int) * (size_t)L);
	uint64_t *hash = ir_xmalloc(sizeof(uint64_t) * (size_t)L);
	int *ops = ir_xmalloc(sizeof(int) * (size_t)(g->nops + 1));
	int *pos = ir_xmalloc(sizeof(int) * (size_t)(g->nops + 1));
	if (!lc->key || !lc->rep || !lc->owner || !hash || !ops || !pos)
		abort();
	for (int i = 0; i < g->nops; i++)
		pos[i] = -1;
	for (int l = 0; l < L; l++) {
		int n = range_ops(g, l, l, ops);
		hash[l] = range_hash(g, l, l, ops, n, pos);
		nops[l] = n;
		lc->owner[l] = tied_owner(g, l);
		int k = 0;
		while (k < lc->nkeys && (hash[lc->rep[k]] != hash[l] || nops[lc->rep[k]] != n))
			k++;
		if (k == lc->nkeys)
			lc->rep[lc->nkeys++] = l;
		lc->key[l] = k;
	}
	free(hash);
	free(ops);
	free(pos);
}

PassLayerCosts *pass_layer_costs(const IrGraph *g, const IrCluster *c, int nmicro, int threads,
				 PassProgress progress, void *progress_ctx, IrError *e)
{
	return pass_layer_costs_warm(g, c, nmicro, threads, NULL, INFINITY, NULL, progress,
				     progress_ctx, e);
}

/* Under a deadline: the largest shapes first (a pipeline of one stage on
 * all devices needs only them, and a cut keeps the largest), then as
 * cmp_job. */
static int cmp_job_shape(const void *a, const void *b)
{
	const Job *x = a, *y = b;
	if (x->h != y->h)
		return y->h - x->h;
	return cmp_job(a, b);
}

/* Whether prev's bases can start lc's solves: the same layer keys, shapes
 * and views (each solve still checks its ILP's size). */
static bool warm_fits(const PassLayerCosts *lc, const PassLayerCosts *prev)
{
	if (!prev || !prev->warm || prev->nkeys != lc->nkeys || prev->nshapes != lc->nshapes ||
	    prev->maxviews != lc->maxviews)
		return false;
	for (int k = 0; k < lc->nkeys; k++)
		if (prev->rep[k] != lc->rep[k])
			return false;
	for (int h = 0; h < lc->nshapes; h++)
		if (prev->nviews[h] != lc->nviews[h])
			return false;
	return true;
}

void pass_layer_costs_drop_warm(PassLayerCosts *lc)
{
	if (!lc || !lc->warm)
		return;
	size_t n = (size_t)lc->nkeys * (size_t)lc->nshapes * (size_t)lc->maxviews * NVAR;
	for (size_t i = 0; i < n; i++)
		free(lc->warm[i].basis);
	free(lc->warm);
	lc->warm = NULL;
}

PassLayerCosts *pass_layer_costs_warm(const IrGraph *g, const IrCluster *c, int nmicro,
				      int threads, const PassLayerCosts *prev, double deadline,
				      int *skipped, PassProgress progress, void *progress_ctx,
				      IrError *e)
{
	if (!g->training) {
		ir_fail(e, g->file, 0, "the inter-op pass needs the training graph");
		return NULL;
	}
	PassLayerCosts *lc = ir_xcalloc(1, sizeof *lc);
	int *nops = ir_xmalloc(sizeof(int) * (size_t)(g->nlayers + 1));
	if (!lc || !nops)
		abort();
	pthread_mutex_init(&lc->lock, NULL);
	lc->g = g;
	lc->c = c;
	lc->nmicro = nmicro > 0 ? nmicro : 1;
	setup_views(lc);
	setup_keys(lc, nops);
	/* one job per key and view that is not another's transpose, the
	 * largest (2D views, many ops) first */
	size_t nv = (size_t)lc->nshapes * (size_t)lc->maxviews;
	lc->cost = ir_xcalloc((size_t)lc->nkeys * nv * NVAR, sizeof(LayerCost));
	lc->warm = ir_xcalloc((size_t)lc->nkeys * nv * NVAR + 1, sizeof(PassWarm));
	Job *jobs = ir_xmalloc(sizeof(Job) * ((size_t)lc->nkeys * nv + 1));
	if (!lc->cost || !lc->warm || !jobs)
		abort();
	lc->prev = warm_fits(lc, prev) ? prev : NULL;
	int njobs = 0;
	for (int k = 0; k < lc->nkeys; k++)
		for (int h = 0; h < lc->nshapes; h++)
			for (int v = 0; v < lc->nviews[h]; v++) {
				if (lc->canon[h * lc->maxviews + v] != v)
					continue;
				const IrLogicalMesh *m = &lc->view[h * lc->maxviews + v];
				double w = nops[lc->rep[k]] * (m->n[0] > 1 && m->n[1] > 1 ? 50.0 : 1.0);
				jobs[njobs++] = (Job){k, h, v, w};
			}
	qsort(jobs, (size_t)njobs, sizeof *jobs, isfinite(deadline) ? cmp_job_shape : cmp_job);
	JobCtx x = {lc, jobs};
	/* a cut never leaves the largest shape (one stage on every device) unsolved */
	int keep = 0;
	while (keep < njobs && jobs[keep].h == lc->nshapes - 1)
		keep++;
	int skip = run_parallel_until(njobs, threads, solve_layer, &x, progress, progress_ctx,
				      "layer costs", deadline, keep);
	if (skipped)
		*skipped = skip;
	lc->prev = NULL;
	free(jobs);
	free(nops);
	lc->solved = njobs;
	lc->cached = -njobs;
	for (int k = 0; k < lc->nkeys; k++)
		for (int h = 0; h < lc->nshapes; h++)
			for (int v = 0; v < lc->nviews[h]; v++) {
				int u = lc->canon[h * lc->maxviews + v];
				for (int var = 0; var < NVAR && u != v; var++)
					*cost_at(lc, k, h, v, var) = *cost_at(lc, k, h, u, var);
			}
	for (int l = 0; l < lc->nlayers; l++)
		for (int h = 0; h < lc->nshapes; h++)
			lc->cached += lc->nviews[h];
	/* a layer no view can shard is an error of the input or of the passes */
	for (int k = 0; k < lc->nkeys; k++) {
		bool any = false;
		for (int h = 0; h < lc->nshapes && !any; h++)
			for (int v = 0; v < lc->nviews[h] && !any; v++)
				any = cost_at(lc, k, h, v, FAST)->ok;
		if (!any) {
			ir_fail(e, g->file, 0, "%s", lc->error[0] ? lc->error : "no view shards a layer");
			pass_layer_costs_free(lc);
			return NULL;
		}
	}
	return lc;
}

void pass_layer_costs_free(PassLayerCosts *lc)
{
	if (!lc)
		return;
	free(lc->view);
	free(lc->canon);
	free(lc->key);
	free(lc->rep);
	free(lc->owner);
	free(lc->lean);
	free(lc->cost);
	pass_layer_costs_drop_warm(lc);
	pthread_mutex_destroy(&lc->lock);
	free(lc);
}

void pass_layer_costs_stats(const PassLayerCosts *lc, int *solved, int *cached, int *ilps)
{
	if (solved)
		*solved = lc->solved;
	if (cached)
		*cached = lc->cached;
	if (ilps)
		*ilps = lc->ilps;
}

/* ------------------------------------------------------------------ */
/* Clustering layers into units                                         */

/* FLOPs of layer l's forward and backward ops. */
static double layer_flops(const IrGraph *g, int l)
{
	double f = 0;
	for (int i = 0; i < g->nops; i++)
		if (g->ops[i].layer == l && g->ops[i].phase != IR_UPDATE)
			f += g->ops[i].flops;
	return f;
}

int pass_cluster_layers(const IrGraph *g, int max, int *unit_first)
{
	int n = g->nlayers;
	if (max <= 0)
		max = PASS_DEFAULT_UNITS;
	if (max > PASS_MAX_UNITS)
		max = PASS_MAX_UNITS;
	if (n <= max) {
		for (int u = 0; u <= n; u++)
			unit_first[u] = u;
		return n;
	}
	/* linear partition into exactly `max` groups, the largest as small as
	 * possible: best[k][i] for the first i layers in k groups */
	double *pre = ir_xcalloc((size_t)n + 1, sizeof(double));
	double *best = ir_xmalloc(sizeof(double) * (size_t)(max + 1) * (size_t)(n + 1));
	int *cut = ir_xmalloc(sizeof(int) * (size_t)(max + 1) * (size_t)(n + 1));
	if (!pre || !best || !cut)
		abort();
	for (int l = 0; l < n; l++)
		pre[l + 1] = pre[l] + layer_flops(g, l);
#define B(k, i) best[(size_t)(k) * (size_t)(n + 1) + (size_t)(i)]
#define C(k, i) cut[(size_t)(k) * (size_t)(n + 1) + (size_t)(i)]
	for (int i = 0; i <= n; i++)
		B(0, i) = i == 0 ? 0 : INFINITY;
	for (int k = 1; k <= max; k++)
		for (int i = 0; i <= n; i++) {
			B(k, i) = INFINITY;
			C(k, i) = -1;
			for (int j = k - 1; j < i; j++) {
				double v = fmax(B(k - 1, j), pre[i] - pre[j]);
				if (v < B(k, i) * (1 - 1e-12)) {
					B(k, i) = v;
					C(k, i) = j;
				}
			}
		}
	int i = n;
	unit_first[max] = n;
	for (int k = max; k >= 1; k--) {
		i = C(k, i);
		unit_first[k - 1] = i;
	}
#undef B
#undef C
	free(pre);
	free(best);
	free(cut);
	return max;
}

/* ------------------------------------------------------------------ */
/* Stage tables                                                         */

size_t pass_stage_index(const PassStageTable *t, int i, int j, int h, int v)
{
	return (((size_t)i * t->nunits + (size_t)j) * t->nshapes + (size_t)h) * t->maxviews +
	       (size_t)v;
}

void pass_stage_table_alloc(PassStageTable *t, int nunits, int nshapes, int maxviews)
{
	t->nunits = nunits;
	t->nshapes = nshapes;
	t->maxviews = maxviews;
	t->unit_first = ir_xcalloc((size_t)nunits + 1, sizeof(int));
	t->send_bytes = ir_xcalloc((size_t)nunits + 1, sizeof(double));
	t->view = ir_xcalloc((size_t)nshapes * (size_t)maxviews + 1, sizeof(IrLogicalMesh));
	t->option = ir_xcalloc((size_t)nunits * nunits * nshapes * maxviews + 1, sizeof(PassStageOption));
	if (!t->unit_first || !t->send_bytes || !t->view || !t->option)
		abort();
}

void pass_stage_table_free(PassStageTable *t)
{
	free(t->unit_first);
	free(t->send_bytes);
	free(t->view);
	free(t->option);
	t->unit_first = NULL;
	t->send_bytes = NULL;
	t->view = NULL;
	t->option = NULL;
}

static double option_time(const PassStageTable *t, const PassStageOption *o)
{
	return o->fwd_s + o->bwd_s + o->step_s / t->nmicro;
}

static double option_need(const PassStageOption *o, double inflight)
{
	return o->state_bytes + inflight * o->act_bytes + o->work_bytes;
}

double pass_stage_time(const PassStageTable *t, int i, int j, int h, int s, int *view)
{
	double best = INFINITY, M = t->mem_bytes;
	int bv = -1;
	double inflight = s < t->nmicro ? s : t->nmicro;
	for (int v = 0; v < t->nviews[h]; v++) {
		const PassStageOption *o = &t->option[pass_stage_index(t, i, j, h, v)];
		if (!o->ok || option_need(o, inflight) > M)
			continue;
		double time = option_time(t, o);
		if (time < best) {
			best = time;
			bv = v;
		}
	}
	for (int v = 0; t->twins && v < t->nviews[h] / 2; v++) {
		int w = v + t->nviews[h] / 2;
		const PassStageOption *f = &t->option[pass_stage_index(t, i, j, h, v)];
		const PassStageOption *l = &t->option[pass_stage_index(t, i, j, h, w)];
		double nf = option_need(f, inflight), nl = option_need(l, inflight);
		if (!f->ok || !l->ok || l->exact || nf <= M || nl > M || !(nl < nf))
			continue;
		double tf = option_time(t, f), tl = option_time(t, l);
		double time = tf + (nf - M) / (nf - nl) * fmax(tl - tf, 0);
		if (time < best) {
			best = time;
			bv = w;
		}
	}
	if (view)
		*view = bv;
	return best;
}

bool pass_shape_partial(const PassStageTable *t, int h)
{
	return t->shape[h].nodes == 1 && t->shape[h].gpus < t->gpus_per_node;
}

bool pass_place_next(const PassStageTable *t, int fill, int h, int *fill_after)
{
	if (!pass_shape_partial(t, h)) {
		*fill_after = fill;
		return true;
	}
	int f = fill + t->shape[h].gpus;
	if (f > t->gpus_per_node)
		return false;
	*fill_after = f == t->gpus_per_node ? 0 : f;
	return true;
}

double pass_stage_edge(const PassStageTable *t, int k, int prev, bool same_node, int h)
{
	if (k <= 0)
		return 0;
	bool net = t->nodes > 1 && !(same_node && pass_shape_partial(t, h));
	int d = t->shape[h].nodes * t->shape[h].gpus;
	if (prev >= 0 && t->shape[prev].nodes * t->shape[prev].gpus < d)
		d = t->shape[prev].nodes * t->shape[prev].gpus;
	return 2 * sim_collective_time_link(SIM_P2P, t->send_bytes[k - 1] / d, 2,
					    net ? &t->inter : &t->intra, net);
}

int pass_stage_options(const IrGraph *g, const IrCluster *c, const IrStagePlan *s,
		       PassStageOption out[3], IrError *e)
{
	(void)c;
	for (int m = 0; m < NRC; m++) {
		SimStageCost sc;
		if (sim_stage_cost_overlap(g, c, s, (IrRecompute)m, 0, PASS_OVERLAP, &sc, e))
			return -1;
		double step = sc.step_s + sc.param_gather_s;
		if ((PASS_OVERLAP & IR_OVERLAP_GRAD_REDUCE) && sc.grad_bucket_s > 0)
			/* the buckets run during the last backward: what outlasts it */
			step += fmax(0, sc.grad_end_s - sc.bwd_s) - sc.grad_sync_s;
		out[m] = (PassStageOption){
			.ok = true,
			.fwd_s = sc.fwd_s,
			.bwd_s = sc.bwd_s,
			.step_s = step,
			.state_bytes = sc.mem.weight_bytes + sc.mem.grad_bytes + sc.mem.opt_bytes,
			.act_bytes = sc.mem.act_bytes,
			.work_bytes = sc.mem.act_work_bytes,
			.exact = true,
		};
	}
	return 0;
}

/* Option of units i..j (layers a..b) on view v of shape h, variant var
 * (LEAN: each layer's lean sharding where it has one; !ok when none has). */
static PassStageOption compose(const PassLayerCosts *lc, int a, int b, int h, int v, int var,
			       int m)
{
	PassStageOption o = {.ok = true};
	bool lean = false;
	/* bucketed gradient reductions: one stream from the end of layer b's
	 * last backward, buckets in backward order; exposed is what outlasts
	 * the backward of layers a..b-1, and at least layer a's bucket */
	double sync = 0, sync_a = 0, hide = 0;
	/* the updated weights' all-gathers likewise: one stream from the start
	 * of layer a's first forward, buckets in forward order */
	double gat = 0, gat_a = 0, ahead = 0;
	for (int l = a; l <= b; l++) {
		const LayerCost *x = cost_at(lc, lc->key[l], h, v, FAST);
		const LayerCost *y = cost_at(lc, lc->key[l], h, v, LEAN);
		if (var == LEAN && y->ok) {
			x = y;
			lean = true;
		}
		o.ok = o.ok && x->ok;
		o.fwd_s += x->fwd[m];
		o.bwd_s += x->bwd[m];
		o.step_s += x->step;
		sync += x->sync;
		if (l == a)
			sync_a = x->sync;
		if (l < b)
			hide += x->bwd[m];
		gat += x->gather;
		if (l == a)
			gat_a = x->gather;
		if (l < b)
			ahead += x->fwd[m];
		o.state_bytes += x->state;
		o.act_bytes += x->act[m];
		o.work_bytes = fmax(o.work_bytes, x->work[m]);
		/* a tied copy whose owner is in the range is no copy */
		int w = lc->owner[l];
		if (w >= a && w <= b && x->tied > 0) {
			o.state_bytes -= 2 * x->tied;
			o.step_s -= x->tied_step;
		}
	}
	if (!o.ok || (var == LEAN && !lean))
		return (PassStageOption){.ok = false};
	o.step_s += fmax(sync_a, sync - hide) + fmax(gat_a, gat - ahead);
	o.zero = var == LEAN ? 2 : 0;
	return o;
}

int pass_stage_table(const PassLayerCosts *lc, const int *unit_first, int nunits,
		     IrRecompute rc, PassStageTable *t, IrError *e)
{
	memset(t, 0, sizeof *t);
	if (nunits < 1 || nunits > PASS_MAX_UNITS || unit_first[0] != 0 ||
	    unit_first[nunits] != lc->nlayers)
		return ir_fail(e, "", 0, "%d layer units do not cover the model's %d layers", nunits,
			       lc->nlayers);
	for (int u = 0; u < nunits; u++)
		if (unit_first[u + 1] <= unit_first[u])
			return ir_fail(e, "", 0, "layer unit %d is empty", u);
	/* views: each of lc's twice, the fast variant, then the lean one */
	pass_stage_table_alloc(t, nunits, lc->nshapes, NVAR * lc->maxviews);
	memcpy(t->unit_first, unit_first, sizeof(int) * (size_t)(nunits + 1));
	memcpy(t->shape, lc->shape, sizeof lc->shape);
	for (int h = 0; h < lc->nshapes; h++) {
		int n = lc->nviews[h];
		t->nviews[h] = NVAR * n;
		for (int v = 0; v < n; v++) {
			t->view[h * t->maxviews + v] = lc->view[h * lc->maxviews + v];
			t->view[h * t->maxviews + n + v] = lc->lean[h * lc->maxviews + v];
		}
	}
	t->nmicro = lc->nmicro;
	t->mem_bytes = lc->c->gpu.mem_bytes;
	t->recompute = rc;
	t->nodes = lc->c->nodes;
	t->gpus_per_node = lc->c->gpus_per_node;
	t->intra = lc->c->intra;
	t->inter = lc->c->inter;
	t->twins = true;
	/* what a unit sends on: its last layer's output (the same on every view) */
	for (int u = 0; u < nunits; u++) {
		int l = unit_first[u + 1] - 1;
		for (int h = 0; h < lc->nshapes && !t->send_bytes[u]; h++)
			for (int v = 0; v < lc->nviews[h] && !t->send_bytes[u]; v++)
				if (cost_at(lc, lc->key[l], h, v, FAST)->ok)
					t->send_bytes[u] = cost_at(lc, lc->key[l], h, v, FAST)->send;
	}
	for (int h = 0; h < lc->nshapes; h++)
		for (int vv = 0; vv < t->nviews[h]; vv++)
			for (int i = 0; i < nunits; i++)
				for (int j = i; j < nunits; j++)
					t->option[pass_stage_index(t, i, j, h, vv)] =
						compose(lc, unit_first[i], unit_first[j + 1] - 1, h,
							vv % lc->nviews[h], vv / lc->nviews[h], (int)rc);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Sharding a plan's stages                                             */

typedef struct {
	const IrGraph *g;
	const IrCluster *c;
	IrPlan *plan;
	const PassIntraOptions *opt; /* per stage, or NULL */
	int *solve_of;     /* per stage: the stage whose solve it copies (itself: solved) */
	IrStagePlan *out;  /* per stage: the solve's result (solved stages) */
	IrArena *arenas;   /* per stage: where its solve's arrays live */
	IrError *err;      /* per stage */
	int *rc;           /* per stage */
	int *jobs;         /* stages to solve */
	bool *fits;        /* per solved stage: proven optimal under its memory budget */
	double *state;     /* and the state bytes the budget counted */
} ShardCtx;

static void shard_one(void *ctx, int j)
{
	ShardCtx *x = ctx;
	int q = x->jobs[j];
	const IrStagePlan *s = &x->plan->stages[q];
	IrLogicalMesh lm;
	if (ir_logical_mesh(x->c, &s->mesh, s->n0, s->n1, &lm, &x->err[q])) {
		x->rc[q] = -1;
		return;
	}
	IrPlan tmp;
	ir_plan_init(&tmp);
	PassIntraOptions o = {.method = PASS_ILP};
	if (x->opt)
		o = x->opt[q];
	o.nmicro = x->plan->nmicro;
	PassIntraResult r;
	x->rc[q] = pass_intra_op(x->g, x->c, &lm, s->first_layer, s->last_layer, &o, &tmp,
				 &x->out[q], &r, &x->err[q]);
	x->fits[q] = !x->rc[q] && o.memory_budget > 0 && r.status == PASS_OPTIMAL;
	x->state[q] = r.state_bytes;
	if (x->rc[q] && o.memory_budget > 0) {
		/* the budget not met (within the ILP's limits): gradients and
		 * optimizer state sharded */
		o.memory_budget = 0;
		o.time_limit_s = 0;
		o.node_limit = 0;
		o.zero = 2;
		ir_plan_free(&tmp);
		ir_plan_init(&tmp);
		x->rc[q] = pass_intra_op(x->g, x->c, &lm, s->first_layer, s->last_layer, &o, &tmp,
					 &x->out[q], &r, &x->err[q]);
	}
	x->arenas[q] = tmp.arena; /* the result's arrays live on in it */
}

/* Copies stage plan src (layers of ops sa[]) onto the ops sb[] of another
 * range of the same structure, into dst (arrays in p's arena). */
static void copy_stage(const IrGraph *g, IrPlan *p, const IrStagePlan *src, const int *sa,
		       const int *sb, int n, IrStagePlan *dst, int *pos)
{
	IrStagePlan keep = *dst;
	ir_stage_alloc(p, dst, n, src->ncomm);
	dst->first_layer = keep.first_layer;
	dst->last_layer = keep.last_layer;
	dst->mesh = keep.mesh;
	dst->n0 = keep.n0;
	dst->n1 = keep.n1;
	for (int k = 0; k < n; k++)
		pos[sa[k]] = k;
	for (int k = 0; k < n; k++) {
		int i = pos[src->op[k]];
		dst->op[k] = sb[i];
		dst->strategy[k] = ir_strdup(&p->arena, src->strategy[k]);
		dst->ways[k] = src->ways[k];
	}
	for (int k = 0; k < src->ncomm; k++) {
		dst->comm[k] = src->comm[k];
		dst->comm[k].op = sb[pos[src->comm[k].op]];
	}
	ir_stage_copy_why(p, dst, src, NULL);
	for (int k = 0; k < dst->nwhy; k++)
		dst->why[k].op = sb[pos[src->why[k].op]];
	for (int k = 0; k < n; k++)
		pos[sa[k]] = -1;
	dst->weight_bytes = src->weight_bytes;
	dst->grad_bytes = src->grad_bytes;
	dst->opt_bytes = src->opt_bytes;
	dst->act_bytes = src->act_bytes;
	(void)g;
}

static bool same_shape_view(const IrStagePlan *a, const IrStagePlan *b)
{
	return a->mesh.nnodes == b->mesh.nnodes && a->mesh.ngpus == b->mesh.ngpus &&
	       a->n0 == b->n0 && a->n1 == b->n1;
}

/* Options a and b agree in everything but the memory budget. */
static bool same_but_budget(const PassIntraOptions *o, int a, int b)
{
	return o[a].method == o[b].method && o[a].zero == o[b].zero &&
	       o[a].time_limit_s == o[b].time_limit_s && o[a].node_limit == o[b].node_limit;
}

static bool same_options(const PassIntraOptions *o, int a, int b)
{
	return !o || (same_but_budget(o, a, b) && o[a].memory_budget == o[b].memory_budget);
}

/* Options a and b differ in the memory budget only (both have one). */
static bool budget_siblings(const PassIntraOptions *o, int a, int b)
{
	return o && o[a].memory_budget > 0 && o[b].memory_budget > 0 &&
	       o[a].memory_budget != o[b].memory_budget && same_but_budget(o, a, b);
}

/*
 * Stages of the same structure on the same shape and view whose options
 * differ in the memory budget only ("budget siblings", e.g. the lean
 * stages of a pipeline, whose budgets shrink with the microbatches in
 * flight) pose the same ILP up to its memory row: the one with the largest
 * budget is solved first, and its plan, when proven optimal under that
 * budget, is optimal for every sibling it also fits (a sibling's feasible
 * set is a subset holding it); a sibling it does not fit is solved itself.
 * Marks in defer[] each sibling that waits for its representative rep[].
 */
static void find_budget_siblings(const IrPlan *plan, const PassIntraOptions *opt,
				 const uint64_t *hash, const int *solve_of, int *rep, bool *defer)
{
	int S = plan->nstages;
	for (int q = 0; q < S; q++) {
		rep[q] = -1; /* in no class yet */
		defer[q] = false;
	}
	for (int q = 0; q < S; q++) {
		if (solve_of[q] != q || rep[q] >= 0)
			continue;
		int best = q, members = 1;
		rep[q] = q;
		for (int u = q + 1; u < S; u++)
			if (solve_of[u] == u && rep[u] < 0 && hash[u] == hash[q] &&
			    same_shape_view(&plan->stages[u], &plan->stages[q]) &&
			    budget_siblings(opt, u, q)) {
				rep[u] = q;
				members++;
				if (opt[u].memory_budget > opt[best].memory_budget)
					best = u;
			}
		for (int u = q; u < S && members > 1; u++)
			if (rep[u] == q) {
				rep[u] = best;
				defer[u] = u != best;
			}
	}
}

int pass_shard_stages(const IrGraph *g, const IrCluster *c, IrPlan *plan,
		      const PassIntraOptions *opt, int threads, int *solves, IrError *e)
{
	int S = plan->nstages;
	ShardCtx x = {g, c, plan, opt, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
	x.solve_of = ir_xmalloc(sizeof(int) * (size_t)S);
	x.out = ir_xcalloc((size_t)S, sizeof(IrStagePlan));
	x.arenas = ir_xcalloc((size_t)S, sizeof(IrArena));
	x.err = ir_xcalloc((size_t)S, sizeof(IrError));
	x.rc = ir_xcalloc((size_t)S, sizeof(int));
	x.jobs = ir_xmalloc(sizeof(int) * (size_t)S);
	x.fits = ir_xcalloc((size_t)S, sizeof(bool));
	x.state = ir_xcalloc((size_t)S, sizeof(double));
	uint64_t *hash = ir_xmalloc(sizeof(uint64_t) * (size_t)S);
	int *rep = ir_xmalloc(sizeof(int) * (size_t)S);
	bool *defer = ir_xmalloc(sizeof(bool) * (size_t)S);
	int *ops = ir_xmalloc(sizeof(int) * (size_t)(g->nops + 1));
	int *ops2 = ir_xmalloc(sizeof(int) * (size_t)(g->nops + 1));
	int *pos = ir_xmalloc(sizeof(int) * (size_t)(g->nops + 1));
	for (int i = 0; i < g->nops; i++)
		pos[i] = -1;
	for (int q = 0; q < S; q++) {
		const IrStagePlan *s = &plan->stages[q];
		int n = range_ops(g, s->first_layer, s->last_layer, ops);
		hash[q] = range_hash(g, s->first_layer, s->last_layer, ops, n, pos);
		x.solve_of[q] = q;
		for (int u = 0; u < q; u++)
			if (x.solve_of[u] == u && hash[u] == hash[q] &&
			    same_shape_view(&plan->stages[u], s) &&
			    same_options(opt, u, q)) {
				x.solve_of[q] = u;
				break;
			}
	}
	find_budget_siblings(plan, opt, hash, x.solve_of, rep, defer);
	/* the representatives and every other stage solved, then the
	 * siblings their representative's plan does not fit */
	int njobs = 0;
	for (int q = 0; q < S; q++)
		if (x.solve_of[q] == q && !defer[q])
			x.jobs[njobs++] = q;
	run_parallel(njobs, threads, shard_one, &x, NULL, NULL, "stages");
	int first = njobs;
	for (int q = 0; q < S; q++) {
		if (!defer[q])
			continue;
		int u = rep[q];
		if (!x.rc[u] && x.fits[u] && x.state[u] <= opt[q].memory_budget)
			x.solve_of[q] = u;
		else
			x.jobs[njobs++] = q;
	}
	x.jobs += first;
	run_parallel(njobs - first, threads, shard_one, &x, NULL, NULL, "stages");
	x.jobs -= first;
	for (int q = 0; q < S; q++) /* a copy of a copy copies the solve */
		while (x.solve_of[x.solve_of[q]] != x.solve_of[q])
			x.solve_of[q] = x.solve_of[x.solve_of[q]];
	int rc = 0;
	for (int j = 0; j < njobs && !rc; j++)
		if (x.rc[x.jobs[j]]) {
			int q = x.jobs[j];
			char buf[600];
			rc = ir_fail(e, "", 0, "stage %d (layers %d..%d): %s", q,
				     plan->stages[q].first_layer, plan->stages[q].last_layer,
				     ir_error_str(&x.err[q], buf, sizeof buf));
		}
	for (int q = 0; q < S && !rc; q++) {
		IrStagePlan *dst = &plan->stages[q];
		int u = x.solve_of[q];
		const IrStagePlan *src = &x.out[u];
		int na = range_ops(g, src->first_layer, src->last_layer, ops);
		int nb = range_ops(g, dst->first_layer, dst->last_layer, ops2);
		bool same = na == nb;
		for (int k = 0; k < na && same; k++)
			same = g->ops[ops[k]].kind == g->ops[ops2[k]].kind &&
			       g->ops[ops[k]].phase == g->ops[ops2[k]].phase;
		if (!same)
			rc = ir_fail(e, "", 0, "stages %d and %d differ in ops (internal error)", u, q);
		else
			copy_stage(g, plan, src, ops, ops2, nb, dst, pos);
	}
	for (int q = 0; q < S; q++)
		ir_arena_free(&x.arenas[q]);
	if (solves)
		*solves = njobs;
	free(x.solve_of);
	free(x.out);
	free(x.arenas);
	free(x.err);
	free(x.rc);
	free(x.jobs);
	free(x.fits);
	free(x.state);
	free(rep);
	free(defer);
	free(hash);
	free(ops);
	free(ops2);
	free(pos);
	return rc;
}
