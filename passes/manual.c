/*
 * manual.c -- plans written the way people write them by hand: a grid of
 * dp x tp x pp with a microbatch size, pp stages of equal layers
 * (pass_megatron_split), stage i on the i-th block of dp*tp GPUs seen as a
 * dp x tp logical mesh, each stage laid out as Megatron-LM does
 * (pass_megatron_plan) or sharded by the intra-op pass (the ILP, or a
 * baseline rule).
 * pass_manual_plan builds and simulates one such plan; pass_manual_search
 * tries every grid point and keeps the fastest that fits, the baseline
 * `compare --against manual` and the suite benchmarks hold compiled plans
 * against.
 *
 * Reads: a training graph (or a model to instantiate), a cluster.
 * Writes: an IrPlan and its SimResult.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "passes/passes.h"

int pass_manual_check(const IrCluster *c, const PassManual *m, int64_t batch, char *why,
		      size_t n)
{
	long gpus = ir_cluster_gpus(c), D = m->dp, T = m->tp, P = m->pp;
	long block = D * T, M = c->gpus_per_node;
	if (D < 1 || T < 1 || P < 1 || m->mbs < 1 || m->v < 1) {
		snprintf(why, n, "dp, tp, pp, mbs and v must be positive");
		return -1;
	}
	if (D * T * P != gpus) {
		snprintf(why, n, "dp*tp*pp = %ld but %s has %ld GPUs", D * T * P, c->name, gpus);
		return -1;
	}
	if (block <= M ? M % block : block % M) {
		snprintf(why, n, "a stage's %ld GPUs (dp*tp) must divide a node of %ld or be "
			 "whole nodes", block, M);
		return -1;
	}
	if (batch % (D * m->mbs)) {
		snprintf(why, n, "the global batch %lld is not a multiple of dp*mbs = %lld",
			 (long long)batch, (long long)(D * m->mbs));
		return -1;
	}
	long nmicro = (long)(batch / (D * m->mbs));
	if (nmicro > IR_MAX_MICROBATCHES) {
		snprintf(why, n, "%ld microbatches, over the limit of %d", nmicro, IR_MAX_MICROBATCHES);
		return -1;
	}
	if (m->v > 1 && m->schedule != IR_SCHED_INTERLEAVED) {
		snprintf(why, n, "v=%d needs the interleaved schedule", m->v);
		return -1;
	}
	if (m->v > 1 && P > 1 && nmicro % P) {
		snprintf(why, n, "the interleaved schedule needs the %ld microbatches to be a "
			 "multiple of pp = %ld", nmicro, P);
		return -1;
	}
	return 0;
}

/* Pipeline rank r's block of `devices` GPUs: part of a node, or whole nodes. */
IrMesh pass_rank_mesh(const IrCluster *c, int devices, int rank)
{
	int M = c->gpus_per_node, off = rank * devices;
	if (devices <= M)
		return (IrMesh){off / M, 1, off % M, devices};
	return (IrMesh){off / M, devices / M, 0, M};
}

/* ------------------------------------------------------------------ */
/* One plan                                                             */

/* Stages of p laid out (layers, meshes), sharded, no budget or per-stage
 * budgets; pass_shard_stages solves identical stages once. */
static int shard(const IrGraph *g, const IrCluster *c, const PassManual *m, IrPlan *p,
		 const int *first, const int *last, double budget, double time_limit,
		 int threads, int *solves, IrError *e)
{
	int S = p->nstages;
	PassIntraOptions *opt = ir_xcalloc((size_t)S, sizeof *opt);
	if (!opt)
		abort();
	for (int i = 0; i < S; i++) {
		IrStagePlan *st = &p->stages[i];
		memset(st, 0, sizeof *st);
		st->first_layer = first[i];
		st->last_layer = last[i];
		st->mesh = pass_rank_mesh(c, m->dp * m->tp, i % m->pp);
		st->n0 = m->dp;
		st->n1 = m->tp;
		opt[i] = (PassIntraOptions){.method = m->method, .nmicro = p->nmicro,
					    .memory_budget = budget, .time_limit_s = time_limit,
					    .zero = m->zero};
	}
	int n = 0;
	int rc = pass_shard_stages(g, c, p, opt, threads, &n, e);
	*solves += n;
	free(opt);
	return rc;
}

int pass_manual_plan(const IrGraph *g, const IrCluster *c, const PassManual *m,
		     int64_t global_batch, double time_limit, int threads, bool second_round,
		     IrPlan *plan, SimResult *res, int *solves, IrError *e)
{
	char why[256];
	int dummy = 0;
	if (!solves)
		solves = &dummy;
	if (pass_manual_check(c, m, global_batch, why, sizeof why))
		return ir_fail(e, "", 0, "%s", why);
	if (m->shard == PASS_SHARD_MEGATRON) {
		if (pass_megatron_plan(g, c, m, global_batch, plan, e))
			return -1;
		return sim_plan(g, c, plan, res, e);
	}
	int S = m->pp * m->v;
	if (m->nsplit && m->nsplit != S)
		return ir_fail(e, "", 0, "layers= gives %d stages but pp*v = %d", m->nsplit, S);
	int *first = ir_xmalloc(sizeof(int) * (size_t)S), *last = ir_xmalloc(sizeof(int) * (size_t)S);
	if (!first || !last)
		abort();
	if (pass_megatron_split(g, S, m->nsplit ? m->split : NULL, first, last, why, sizeof why)) {
		free(first);
		free(last);
		return ir_fail(e, "", 0, "%s", why);
	}
	plan->global_batch = global_batch;
	plan->microbatch = (int64_t)m->dp * m->mbs;
	plan->nmicro = (int)(global_batch / plan->microbatch);
	plan->schedule = m->schedule;
	plan->chunks = m->v;
	plan->recompute = m->recompute;
	plan->zero = m->zero;
	plan->nstages = S;
	plan->stages = ir_alloc(&plan->arena, sizeof(IrStagePlan) * (size_t)S);
	int rc = shard(g, c, m, plan, first, last, 0, time_limit, threads, solves, e);
	if (!rc)
		rc = sim_plan(g, c, plan, res, e);
	if (!rc && !res->fits && second_round) {
		/* a second round: model state bounded by what the activations leave */
		double act = 0;
		for (int k = 0; k < res->nranks; k++)
			if (res->tl.rank_act[k] > act)
				act = res->tl.rank_act[k];
		double left = c->gpu.mem_bytes - act;
		IrPlan p2;
		ir_plan_init_like(&p2, plan, S);
		IrError e2;
		SimResult r2;
		if (left > 0 &&
		    !shard(g, c, m, &p2, first, last, left / plan->chunks, time_limit, threads,
			   solves, &e2) &&
		    !sim_plan(g, c, &p2, &r2, &e2)) {
			if (r2.fits || r2.peak_memory_bytes < res->peak_memory_bytes) {
				sim_result_free(res);
				*res = r2;
				IrPlan t = *plan;
				*plan = p2;
				p2 = t;
			} else {
				sim_result_free(&r2);
			}
		}
		ir_plan_free(&p2);
	}
	free(first);
	free(last);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The best grid plan                                                   */

typedef struct {
	int64_t batch;
	IrGraph *g;
} GraphAt;

static IrGraph *graph_at(const IrModelDoc *md, const IrParamSet *ps, GraphAt *cache, int *n,
			 int64_t b, IrError *e)
{
	for (int i = 0; i < *n; i++)
		if (cache[i].batch == b)
			return cache[i].g;
	IrGraph *g = ir_xcalloc(1, sizeof *g);
	if (!g)
		abort();
	if (ir_model_training(md, ps, b, g, e)) {
		free(g);
		return NULL;
	}
	cache[*n].batch = b;
	cache[(*n)++].g = g;
	return g;
}

/* A plan that fits: kept (p and s move into bp and bs) when it is the
 * fastest so far, else freed; p and s are left empty either way. */
static void note_best(PassManualResult *r, const PassManual *m, IrPlan *p, SimResult *s,
		      IrPlan *bp, SimResult *bs, bool *have)
{
	if (!*have || s->step_time_s < bs->step_time_s) {
		if (*have) {
			ir_plan_free(bp);
			sim_result_free(bs);
		}
		*bp = *p;
		*bs = *s;
		r->best = *m;
		*have = true;
	} else {
		sim_result_free(s);
		ir_plan_free(p);
	}
	ir_plan_init(p);
	memset(s, 0, sizeof *s);
}

int pass_manual_search(const IrModelDoc *md, const char *model, const IrParamSet *ps,
		       const IrCluster *c, const char *cluster, int nodes,
		       const PassManualSearch *o, IrPlan *plan, IrGraph *g, SimResult *res,
		       PassManualResult *r, IrError *e)
{
	double t0 = ir_now_s();
	memset(r, 0, sizeof *r);
	ir_plan_init(plan);
	memset(g, 0, sizeof *g);
	memset(res, 0, sizeof *res);
	r->have_bytes = c->gpu.mem_bytes;
	int gpus = ir_cluster_gpus(c), M = c->gpus_per_node;
	int max_tp = o->max_tp > 0 ? o->max_tp : M;
	int64_t B = o->global_batch;
	/* one graph per distinct microbatch dp * mbs: at most 64 mbs per divisor dp of gpus */
	int ndiv = 0;
	for (int d = 1; (long)d * d <= gpus; d++)
		ndiv += gpus % d ? 0 : d * d == gpus ? 1 : 2;
	GraphAt *cache = ir_xcalloc((size_t)ndiv * 64 + 1, sizeof *cache);
	int ncache = 0;
	IrError first_err = {0}; /* the first grid point that failed other than by memory */
	bool errored = false;
	IrGraph *g1 = graph_at(md, ps, cache, &ncache, 1, e);
	if (!g1) {
		free(cache);
		return r->status = PASS_ERROR, -1;
	}
	int L = g1->nlayers;
	int max_pp = o->max_pp > 0 ? o->max_pp : L;
	bool have = false;
	int rc = 0;
	static const IrRecompute modes[3] = {IR_RECOMP_NONE, IR_RECOMP_SELECTIVE,
					     IR_RECOMP_FULL};
	for (int tp = 1; tp <= max_tp && !rc; tp++) {
		if (gpus % tp || (tp > 1 && o->tp_if_needed && have))
			continue;
		for (int pp = 1; pp <= max_pp && pp <= L && !rc; pp++) {
			if ((gpus / tp) % pp)
				continue;
			int dp = gpus / tp / pp;
			PassManual m = {.dp = dp, .tp = tp, .pp = pp, .v = 1,
					.schedule = IR_SCHED_1F1B, .method = o->method,
					.shard = o->shard};
			char why[256];
			/* mbs 1, 2, 4 .. up to B / dp; a fixed microbatch: the one
			 * mbs that makes it, if any */
			int64_t mb = o->microbatch, first = mb > 0 ? mb / dp : 1;
			int64_t last = mb > 0 ? first : B / dp;
			if (mb > 0 && mb % dp)
				continue;
			for (int64_t mbs = first; mbs <= last && !rc; mbs *= 2) {
				m.mbs = mbs;
				m.recompute = IR_RECOMP_NONE;
				m.zero = 0;
				if (pass_manual_check(c, &m, B, why, sizeof why))
					continue;
				IrGraph *gm = graph_at(md, ps, cache, &ncache, (int64_t)dp * mbs, e);
				if (!gm) {
					rc = -1;
					break;
				}
				/* per ZeRO stage one sharding (it does not depend on the
				 * recomputation), simulated under the least recomputation
				 * that fits */
				bool any_fit = false, act_over = false;
				int zmax = dp == 1 ? 0 : pp > 1 && o->pipeline_zero1 ? 1 : 3;
				for (int z = 0; z <= zmax; z++) {
					act_over = false;
					m.zero = z;
					m.recompute = IR_RECOMP_NONE;
					double bound = have ? res->step_time_s : INFINITY;
					IrPlan p;
					ir_plan_init(&p);
					p.model = ir_strdup(&p.arena, model);
					p.cluster = ir_strdup(&p.arena, cluster);
					p.params = *ps;
					ir_params_set(&p.params, "batch", (int64_t)dp * mbs);
					p.nodes = nodes ? nodes : c->nodes;
					SimResult s;
					memset(&s, 0, sizeof s);
					IrError e2;
					if (pass_manual_plan(gm, c, &m, B, o->time_limit_s, o->threads, false,
							     &p, &s, &r->ilp_solves, &e2)) {
						if (!errored)
							first_err = e2;
						errored = true;
						ir_plan_free(&p);
						break;
					}
					sim_result_free(&s);
					bool fit = false, slow = false, least = true;
					int tried_modes = 0;
					for (int k = 0; k < 3 && !fit; k++) {
						if (o->recompute >= 0 && (int)modes[k] != o->recompute)
							continue;
						if (o->no_selective && modes[k] == IR_RECOMP_SELECTIVE)
							continue;
						least = tried_modes++ == 0;
						m.recompute = p.recompute = modes[k];
						r->tried++;
						if (sim_plan(gm, c, &p, &s, &e2)) {
							if (!errored)
								first_err = e2;
							errored = true;
							break;
						}
						fit = s.fits;
						if (fit)
							r->fitted++;
						double act = 0;
						for (int q = 0; q < s.nranks; q++)
							act = s.tl.rank_act[q] > act ? s.tl.rank_act[q] : act;
						/* under the most recomputation tried */
						bool last = modes[k] == IR_RECOMP_FULL ||
							    (int)modes[k] == o->recompute;
						act_over = last && act >= c->gpu.mem_bytes;
						/* a faster plan needs less recomputation or sharding */
						slow = s.step_time_s >= bound;
						if (fit) {
							note_best(r, &m, &p, &s, plan, res, &have);
						} else {
							if (s.peak_memory_bytes > 0 &&
							    (r->need_bytes <= 0 ||
							     s.peak_memory_bytes < r->need_bytes))
								r->need_bytes = s.peak_memory_bytes;
							sim_result_free(&s);
						}
						if (slow)
							break;
					}
					ir_plan_free(&p);
					any_fit = any_fit || fit;
					/* none fits: ZeRO cannot help activations that alone
					 * overflow; a plan already no faster than the best
					 * under the least recomputation gets no faster with
					 * more sharding (slow only under more recomputation:
					 * more sharding may let less of it fit) */
					if ((fit && m.recompute == IR_RECOMP_NONE) || (slow && least) ||
					    (!fit && act_over))
						break;
				}
				if (o->progress)
					o->progress(o->progress_ctx, "grid plans", r->tried, 0);
				if (!any_fit && act_over)
					break; /* a larger microbatch holds more */
			}
		}
	}
	r->search_time_s = ir_now_s() - t0;
	if (!rc && have) {
		/* the graph the best plan was built on, handed to the caller */
		int64_t b = plan->microbatch;
		for (int i = 0; i < ncache; i++)
			if (cache[i].batch == b) {
				*g = *cache[i].g;
				free(cache[i].g);
				cache[i].g = NULL;
			}
	}
	for (int i = 0; i < ncache; i++)
		if (cache[i].g) {
			ir_graph_free(cache[i].g);
			free(cache[i].g);
		}
	free(cache);
	if (rc) {
		if (have) {
			ir_plan_free(plan);
			sim_result_free(res);
		}
		ir_plan_init(plan);
		return r->status = PASS_ERROR, -1;
	}
	if (!have && errored && r->need_bytes <= 0) {
		/* nothing was even simulated: the failure is the answer */
		*e = first_err;
		return r->status = PASS_ERROR, -1;
	}
	if (!have) {
		r->status = PASS_INFEASIBLE;
		snprintf(r->message, sizeof r->message,
			 "no grid plan fits: the leanest needs %.2f GiB per device, the GPU has "
			 "%.2f GiB", r->need_bytes / 1073741824.0, r->have_bytes / 1073741824.0);
		return ir_fail(e, "", 0, "%s", r->message);
	}
	r->status = PASS_OPTIMAL;
	return 0;
}
