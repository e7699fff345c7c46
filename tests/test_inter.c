/*
 * test_inter.c -- the inter-operator pass (passes/inter_op.c,
 * passes/inter_op_cost.c): sub-mesh shapes and views, stage costs cached
 * by layer structure, Alpa's stage DP against brute force, the search
 * around it, and `meshplan compile` run as a program (MESHPLAN_BIN).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "passes/passes.h"
#include "tests/helpers.h"

#ifndef MESHPLAN_BIN
#define MESHPLAN_BIN "meshplan"
#endif
#define DATA MESHPLAN_DATA_DIR "/tests/data"
#define TINY DATA "/tiny.xml"
#define TINY_CLUSTER DATA "/tiny-cluster.xml"



static bool same_cost(double a, double b)
{
	return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b));
}

/* ------------------------------------------------------------------ */
/* Shapes and views                                                     */

Test(shapes, are_alpas_one_node_powers_of_two_then_whole_nodes)
{
	IrCluster c = test_cluster("aws-p3.16xlarge", 8);
	PassShape s[PASS_MAX_SHAPES];
	int n = pass_submesh_shapes(&c, s, PASS_MAX_SHAPES);
	int want[][2] = {{1, 1}, {1, 2}, {1, 4}, {1, 8}, {2, 8}, {3, 8}, {4, 8},
			 {5, 8}, {6, 8}, {7, 8}, {8, 8}};
	cr_assert_eq(n, 11);
	for (int i = 0; i < n; i++)
		cr_expect(s[i].nodes == want[i][0] && s[i].gpus == want[i][1], "shape %d: %dx%d", i,
			  s[i].nodes, s[i].gpus);
	ir_cluster_free(&c);
}

/* Too many nodes for one shape per node count (40 shapes, 36 of two nodes
 * or more): every even split of the nodes over 1..16 stages is there
 * (q and q + 1 nodes, N = q s + r), so a pipeline of any of those stage
 * counts tiles the cluster; below that size, nothing changes. */
Test(shapes, a_large_cluster_gets_its_even_splits)
{
	for (int N = 37; N <= 4096; N = N * 3 - 1) {
		IrCluster c = test_cluster("dgx-h100", N);
		PassShape s[PASS_MAX_SHAPES];
		int n = pass_submesh_shapes(&c, s, PASS_MAX_SHAPES);
		cr_assert_leq(n, PASS_MAX_SHAPES);
		cr_expect(s[0].nodes == 1 && s[0].gpus == 1 && s[3].nodes == 1 && s[3].gpus == 8);
		for (int i = 4; i < n; i++)
			cr_expect(s[i].gpus == 8 && s[i].nodes > s[i - 1].nodes, "N %d shape %d: %dx%d",
				  N, i, s[i].nodes, s[i].gpus);
		bool small = N <= 37 * PASS_DEFAULT_UNITS;
		if (small) /* Alpa's: every node count up to the room */
			for (int i = 4; i < n; i++)
				cr_expect_eq(s[i].nodes, i - 2, "N %d shape %d", N, i);
		for (int st = 1; !small && st <= PASS_DEFAULT_UNITS; st++) {
			int q = N / st, r = N % st;
			bool has_q = false, has_q1 = r == 0;
			for (int i = 0; i < n; i++) {
				has_q |= s[i].gpus == 8 && s[i].nodes == q;
				has_q1 |= s[i].gpus == 8 && s[i].nodes == q + 1;
			}
			cr_expect(has_q && has_q1, "N %d, %d stages: %d and %d nodes", N, st, q, q + 1);
		}
		if (!small)
			cr_expect_eq(n, PASS_MAX_SHAPES, "N %d: the room is filled", N);
		ir_cluster_free(&c);
	}
}

Test(shapes, views_are_every_factorisation)
{
	IrCluster c = test_cluster("aws-p3.16xlarge", 8);
	IrLogicalMesh v[64];
	/* 24 devices: 1x24 2x12 3x8 4x6 6x4 8x3 12x2 24x1 */
	int n = pass_submesh_views(&c, (PassShape){3, 8}, v, 64);
	cr_assert_eq(n, 8);
	for (int i = 0; i < n; i++)
		cr_expect_eq(v[i].n[0] * v[i].n[1], 24);
	cr_expect_eq(v[2].n[0], 3);
	cr_expect(!v[2].crosses_nodes[1] && v[2].crosses_nodes[0], "3x8: GPUs of a node on axis 1");
	ir_cluster_free(&c);
}

/* ------------------------------------------------------------------ */
/* Layer costs                                                          */

Test(layer_costs, identical_layers_are_solved_once)
{
	IrCluster c = test_cluster(TINY_CLUSTER, 0);
	int solved[2], cached[2];
	const char *sets[2] = {"layers=3,batch=8", "layers=5,batch=8"};
	for (int k = 0; k < 2; k++) {
		IrGraph g = test_graph(TINY, sets[k]);
		IrError e;
		PassLayerCosts *lc = pass_layer_costs(&g, &c, 4, 2, NULL, NULL, &e);
		cr_assert(lc, "%s", e.msg);
		pass_layer_costs_stats(lc, &solved[k], &cached[k], NULL);
		pass_layer_costs_free(lc);
		ir_graph_free(&g);
	}
	/* block0 (reads the model input), blocks 1.., head: 3 distinct layers on the
	 * 7 views that are not another's transpose (10 views over 4 shapes) */
	cr_expect_eq(solved[0], 3 * 7, "solved %d", solved[0]);
	cr_expect_eq(solved[1], solved[0], "two more identical blocks cost no solve");
	cr_expect_eq(cached[1], 6 * 10 - solved[1]);
	ir_cluster_free(&c);
}

Test(clusters, units_cover_the_layers_with_balanced_flops)
{
	IrGraph g = test_graph("gpt", "layers=30,hidden=64,heads=4,seq=32,vocab=256,batch=2");
	int uf[PASS_MAX_UNITS + 1];
	int n = pass_cluster_layers(&g, 8, uf);
	cr_assert_eq(n, 8);
	cr_expect_eq(uf[0], 0);
	cr_expect_eq(uf[n], g.nlayers);
	for (int u = 0; u < n; u++)
		cr_expect_lt(uf[u], uf[u + 1], "unit %d empty", u);
	/* 30 equal blocks + embed + head in 8 units: at most 5 blocks' FLOPs each */
	for (int u = 0; u < n; u++)
		cr_expect_leq(uf[u + 1] - uf[u], 6, "unit %d has %d layers", u, uf[u + 1] - uf[u]);
	int few[PASS_MAX_UNITS + 1];
	cr_expect_eq(pass_cluster_layers(&g, 64, few), g.nlayers, "no more units than layers");
	ir_graph_free(&g);
}

/* ------------------------------------------------------------------ */
/* The DP against brute force                                           */

/* DP (every tmax) and brute force agree on cost; the DP's pipeline costs
 * what it says and covers the units on exactly `devices` devices. */
static void check_dp(const PassStageTable *t, int devices, const char *what)
{
	PassPipeline dp, bf;
	int a = pass_stage_dp(t, devices, 0, &dp, NULL);
	int b = pass_stage_brute(t, devices, &bf);
	cr_assert_eq(a, b, "%s: DP found %s plan, brute force %s", what, a ? "no" : "a",
		     b ? "none" : "one");
	if (a)
		return;
	cr_expect(same_cost(dp.total_s, bf.total_s), "%s: DP %.12g, brute force %.12g", what,
		  dp.total_s, bf.total_s);
	PassPipeline again = dp;
	cr_expect(same_cost(pass_pipeline_cost(t, &again), dp.total_s), "%s: DP cost", what);
	int next = 0, used = 0;
	for (int q = 0; q < dp.nstages; q++) {
		cr_expect_eq(dp.first[q], next, "%s: stage %d", what, q);
		next = dp.last[q] + 1;
		used += t->shape[dp.shape[q]].nodes * t->shape[dp.shape[q]].gpus;
	}
	cr_expect_eq(next, t->nunits, "%s", what);
	cr_expect_eq(used, devices, "%s", what);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* A small model's real stage costs (one unit per layer). */
static void dp_case(const char *model, const char *set, int nmicro)
{
	IrCluster c = test_cluster(TINY_CLUSTER, 0);
	IrGraph g = test_graph(model, set);
	cr_assert_leq(g.nlayers, 6);
	IrError e;
	PassLayerCosts *lc = pass_layer_costs(&g, &c, nmicro, 2, NULL, NULL, &e);
	cr_assert(lc, "%s", e.msg);
	int uf[PASS_MAX_UNITS + 1];
	int nu = pass_cluster_layers(&g, 16, uf);
	for (int rc = 0; rc < 3; rc++) {
		PassStageTable t;
		cr_assert_eq(pass_stage_table(lc, uf, nu, (IrRecompute)rc, &t, &e), 0, "%s", e.msg);
		/* memory: plenty, then tight enough that some stages stop fitting:
		 * about half of them, and only the leanest */
		size_t no = (size_t)nu * nu * t.nshapes * t.maxviews, n = 0;
		double *need = malloc(sizeof(double) * no);
		for (size_t i = 0; i < no; i++)
			if (t.option[i].ok)
				need[n++] = t.option[i].state_bytes + 2 * t.option[i].act_bytes +
					    t.option[i].work_bytes;
		cr_assert(n > 0);
		qsort(need, n, sizeof *need, cmp_double);
		double mems[3] = {t.mem_bytes, need[n / 2], need[n / 10]};
		free(need);
		for (int k = 0; k < 3; k++) {
			t.mem_bytes = mems[k];
			for (int d = 1; d <= 8; d++) {
				char what[160];
				snprintf(what, sizeof what, "%s %s B=%d rc=%d mem=%g devices=%d", model,
					 set, nmicro, rc, mems[k], d);
				check_dp(&t, d, what);
			}
		}
		pass_stage_table_free(&t);
	}
	pass_layer_costs_free(lc);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

Test(dp, equals_brute_force_on_tiny_mlps, .timeout = 300)
{
	dp_case(TINY, "layers=1,batch=8", 4);
	dp_case(TINY, "layers=3,batch=16,h=64", 1);
	dp_case(TINY, "layers=5,batch=32,h=128", 8);
	dp_case(TINY, "layers=5,batch=4,h=256", 64);
}

Test(dp, equals_brute_force_on_a_tiny_gpt, .timeout = 300)
{
	dp_case("gpt", "layers=4,hidden=64,heads=4,seq=64,vocab=512,batch=8", 16);
}

/* Random tables: times and memory drawn per option. */
static uint64_t rng = 88172645463325252ull;
static double uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

Test(dp, equals_brute_force_on_random_tables, .timeout = 300)
{
	IrCluster c = test_cluster(TINY_CLUSTER, 0);
	for (int trial = 0; trial < 300; trial++) {
		PassStageTable t;
		memset(&t, 0, sizeof t);
		int nu = 1 + trial % 6;
		PassShape sh[PASS_MAX_SHAPES];
		int ns = pass_submesh_shapes(&c, sh, PASS_MAX_SHAPES);
		pass_stage_table_alloc(&t, nu, ns, 2);
		for (int u = 0; u <= nu; u++)
			t.unit_first[u] = u;
		memcpy(t.shape, sh, sizeof sh);
		t.twins = trial % 2; /* views 1 lean twins of views 0: interpolated stages */
		for (int h = 0; h < ns; h++)
			t.nviews[h] = t.twins ? 2 : 1 + (int)(uniform() * 2);
		t.nmicro = 1 + (int)(uniform() * 32);
		t.mem_bytes = 10;
		t.nodes = c.nodes;
		t.gpus_per_node = c.gpus_per_node;
		t.intra = c.intra;
		t.inter = c.inter;
		for (int u = 0; u < nu; u++)
			t.send_bytes[u] = uniform() * 1e6;
		for (int i = 0; i < nu; i++)
			for (int j = i; j < nu; j++)
				for (int h = 0; h < ns; h++)
					for (int v = 0; v < t.nviews[h]; v++) {
						int d = sh[h].nodes * sh[h].gpus;
						PassStageOption *o = &t.option[pass_stage_index(&t, i, j, h, v)];
						o->ok = uniform() < 0.9;
						o->fwd_s = (j - i + 1) * (0.5 + uniform()) / d;
						o->bwd_s = 2 * o->fwd_s;
						o->step_s = uniform() * 0.1;
						o->state_bytes = (j - i + 1) * uniform() * 8 / d;
						o->act_bytes = uniform();
						o->work_bytes = uniform() * 0.5;
						if (t.twins && v == 1) { /* leaner, slower */
							const PassStageOption *f = o - 1;
							o->state_bytes = f->state_bytes * uniform();
							o->fwd_s = f->fwd_s * (1 + uniform());
							o->bwd_s = 2 * o->fwd_s;
						}
					}
		for (int d = 1; d <= 8; d++) {
			char what[64];
			snprintf(what, sizeof what, "trial %d devices %d", trial, d);
			check_dp(&t, d, what);
		}
		pass_stage_table_free(&t);
	}
	ir_cluster_free(&c);
}

Test(dp, least_memory_is_what_the_leanest_pipeline_needs)
{
	IrCluster c = test_cluster(TINY_CLUSTER, 0);
	IrGraph g = test_graph(TINY, "layers=3,batch=8,h=64");
	IrError e;
	PassLayerCosts *lc = pass_layer_costs(&g, &c, 4, 2, NULL, NULL, &e);
	cr_assert(lc, "%s", e.msg);
	int uf[PASS_MAX_UNITS + 1];
	int nu = pass_cluster_layers(&g, 16, uf);
	PassStageTable t;
	cr_assert_eq(pass_stage_table(lc, uf, nu, IR_RECOMP_NONE, &t, &e), 0, "%s", e.msg);
	double need = pass_stage_min_memory(&t, 8);
	cr_assert(isfinite(need) && need > 0);
	PassPipeline p;
	t.mem_bytes = need * (1 + 1e-9);
	cr_expect_eq(pass_stage_dp(&t, 8, 0, &p, NULL), 0, "fits with exactly the memory it needs");
	t.mem_bytes = need * (1 - 1e-6);
	cr_expect_eq(pass_stage_dp(&t, 8, 0, &p, NULL), -1, "nothing fits with less");
	pass_stage_table_free(&t);
	pass_layer_costs_free(lc);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

/* ------------------------------------------------------------------ */
/* The whole pass                                                       */

/* Model `model` opened, `set` parsed into *ps. */
static IrModelDoc *open_model(const char *model, const char *set, IrParamSet *ps)
{
	IrError e;
	memset(ps, 0, sizeof *ps);
	if (set)
		cr_assert_eq(ir_params_parse(ps, set, &e), 0, "%s", e.msg);
	IrModelDoc *m = ir_model_open(model, &e);
	cr_assert(m, "%s", e.msg);
	return m;
}

static int compile(const char *model, const char *set, const char *cl, int64_t batch,
		   PassInterOptions o, IrPlan *plan, IrGraph *g, PassInterResult *r)
{
	IrError e;
	IrParamSet ps;
	IrModelDoc *m = open_model(model, set, &ps);
	IrCluster c = test_cluster(cl, 0);
	o.global_batch = batch;
	int rc = pass_inter_op(m, model, &ps, &c, cl, 0, &o, plan, g, r, &e);
	ir_model_close(m);
	ir_cluster_free(&c);
	return rc;
}

/* Compiles model (overrides `set`) for cluster c and holds the plan against
 * the best plan of a hand-written family (pass_manual_search with mo, an
 * independent search of its own): that plan is never faster, and the
 * compiled plan's graph is the one at its microbatch. */
static void never_beaten_by(const char *model, const char *set, IrCluster *c, int64_t B,
			    PassManualSearch mo, const char *family)
{
	IrError e;
	IrParamSet ps;
	IrModelDoc *md = open_model(model, set, &ps);
	IrPlan p;
	IrGraph g;
	PassInterResult r;
	PassInterOptions o = {.global_batch = B, .recompute = -1, .threads = 2, .tmax_gap = -1};
	cr_assert_eq(pass_inter_op(md, model, &ps, c, c->name, 0, &o, &p, &g, &r, &e), 0, "%s",
		     e.msg);
	cr_expect_eq(g.batch, p.microbatch, "graph at batch %lld, plan microbatch %lld",
		     (long long)g.batch, (long long)p.microbatch);
	SimResult s;
	cr_assert_eq(sim_plan(&g, c, &p, &s, &e), 0, "%s", e.msg);
	cr_assert(s.fits);
	mo.global_batch = B;
	IrPlan gp;
	IrGraph gg;
	SimResult gs;
	PassManualResult mr;
	cr_assert_eq(pass_manual_search(md, model, &ps, c, c->name, 0, &mo, &gp, &gg, &gs, &mr, &e),
		     0, "%s", e.msg);
	cr_expect(s.step_time_s <= gs.step_time_s * (1 + 1e-9),
		  "compiled %.9g s (from '%s'), %s %.9g s (%dx%dx%d mbs %lld zero %d)",
		  s.step_time_s, r.from, family, gs.step_time_s, mr.best.dp, mr.best.tp, mr.best.pp,
		  (long long)mr.best.mbs, mr.best.zero);
	sim_result_free(&gs);
	sim_result_free(&s);
	ir_plan_free(&gp);
	ir_graph_free(&gg);
	ir_plan_free(&p);
	ir_graph_free(&g);
	ir_model_close(md);
}

/* The hand-written grid in Megatron-LM's layout never beats the compiled
 * plan. */
Test(pass, the_compiled_plan_is_at_least_as_fast_as_the_best_megatron_grid_plan,
     .timeout = 300)
{
	IrCluster c = test_cluster(TINY_CLUSTER, 0);
	never_beaten_by("gpt", "layers=4,hidden=256,heads=4,seq=256,vocab=2048", &c, 64,
			(PassManualSearch){.shard = PASS_SHARD_MEGATRON, .method = PASS_ILP,
					   .recompute = -1, .threads = 1},
			"grid");
	ir_cluster_free(&c);
}

/* A mixture-of-experts model (Alpa's GShard MoE 690M on 2 V100s, where
 * the DP's pipeline alone is 0.95x as fast): the best data + expert
 * parallel plan (DeepSpeed-MoE's family) never beats the compiled plan. */
Test(pass, the_compiled_moe_plan_is_at_least_as_fast_as_the_best_data_expert_plan,
     .timeout = 600)
{
	IrCluster c = test_cluster("aws-p3.16xlarge", 1);
	c.gpus_per_node = 2;
	never_beaten_by("moe:690m", NULL, &c, 1024,
			(PassManualSearch){.shard = PASS_SHARD_METHOD, .method = PASS_EXPERT,
					   .max_pp = 1, .tp_if_needed = true, .recompute = -1,
					   .threads = 2},
			"data+expert");
	ir_cluster_free(&c);
}

Test(pass, a_tiny_gpt_plan_covers_the_model_and_uses_every_gpu, .timeout = 300)
{
	IrPlan p;
	IrGraph g;
	PassInterResult r;
	PassInterOptions o = {.recompute = -1, .threads = 2, .tmax_gap = -1};
	int rc = compile("gpt", "layers=4,hidden=128,heads=4,seq=128,vocab=1024", TINY_CLUSTER, 64,
			 o, &p, &g, &r);
	cr_assert_eq(rc, 0, "%s", r.message);
	cr_expect_eq(p.global_batch, 64);
	cr_expect_eq(p.microbatch * p.nmicro, 64);
	cr_expect_eq(g.batch, p.microbatch, "the graph is the one at the chosen microbatch");
	int next = 0, gpus = 0;
	for (int q = 0; q < p.nstages; q++) {
		cr_expect_eq(p.stages[q].first_layer, next);
		next = p.stages[q].last_layer + 1;
		gpus += ir_mesh_devices(&p.stages[q].mesh);
		cr_expect_eq(p.stages[q].n0 * p.stages[q].n1, ir_mesh_devices(&p.stages[q].mesh));
		cr_expect_gt(p.stages[q].nops, 0);
	}
	cr_expect_eq(next, g.nlayers);
	cr_expect_eq(gpus, 8);
	IrCluster c = test_cluster(TINY_CLUSTER, 0);
	SimResult sr;
	IrError e;
	cr_assert_eq(sim_plan(&g, &c, &p, &sr, &e), 0, "%s", e.msg);
	cr_expect(sr.fits);
	sim_result_free(&sr);
	ir_cluster_free(&c);
	ir_plan_free(&p);
	ir_graph_free(&g);
}

Test(pass, stages_of_identical_layers_share_one_solve, .timeout = 300)
{
	IrCluster c = test_cluster(TINY_CLUSTER, 0);
	IrGraph g = test_graph("gpt", "layers=4,hidden=64,heads=4,seq=64,vocab=512,batch=8");
	IrPlan p;
	ir_plan_init(&p);
	p.nmicro = 8;
	p.nstages = 4;
	p.stages = ir_alloc(&p.arena, 4 * sizeof(IrStagePlan));
	int range[4][2] = {{0, 1}, {2, 2}, {3, 3}, {4, 5}};
	for (int q = 0; q < 4; q++)
		p.stages[q] = (IrStagePlan){.first_layer = range[q][0], .last_layer = range[q][1],
					    .mesh = {q / 2, 1, (q % 2) * 2, 2}, .n0 = 1, .n1 = 2};
	IrError e;
	int solves = 0;
	cr_assert_eq(pass_shard_stages(&g, &c, &p, NULL, 2, &solves, &e), 0, "%s", e.msg);
	cr_expect_eq(solves, 3, "blocks 1 and 2 alone are the same stage");
	cr_assert_eq(p.stages[1].nops, p.stages[2].nops);
	for (int k = 0; k < p.stages[1].nops; k++) {
		cr_expect_str_eq(p.stages[1].strategy[k], p.stages[2].strategy[k]);
		cr_expect_eq(g.ops[p.stages[2].op[k]].layer, 3);
	}
	for (int k = 0; k < p.stages[2].ncomm; k++)
		cr_expect_eq(g.ops[p.stages[2].comm[k].op].layer, 3, "collectives name its own ops");
	ir_plan_free(&p);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

/* Stages whose options differ in the memory budget only: each plan is
 * the exhaustive search's optimum under that stage's own budget and fits
 * it, and the stages the loosest budget's plan fits share its solve. */
Test(pass, stages_differing_only_in_budget_match_exhaustive_search_each, .timeout = 300)
{
	IrCluster c = test_cluster(TINY_CLUSTER, 0);
	IrGraph g = test_graph(TINY, "layers=5");
	IrMesh mesh = {0, 1, 0, 2};
	IrLogicalMesh lm;
	IrError e;
	cr_assert_eq(ir_logical_mesh(&c, &mesh, 1, 2, &lm, &e), 0, "%s", e.msg);
	/* block 1 alone, no budget: the state its fastest plan holds */
	PassIntraOptions o = {.method = PASS_ILP, .nmicro = 4, .exhaustive = true};
	IrPlan tmp;
	ir_plan_init(&tmp);
	IrStagePlan st;
	PassIntraResult r;
	cr_assert_eq(pass_intra_op(&g, &c, &lm, 1, 1, &o, &tmp, &st, &r, &e), 0, "%s", e.msg);
	double free_s = r.objective_s, s0 = r.state_bytes;
	ir_plan_free(&tmp);
	cr_assert_gt(s0, 0);
	/* blocks 1..4 (the same structure), loosest budget not first */
	const double frac[4] = {2, 4, 1, 0.75};
	PassIntraOptions opt[4];
	IrPlan p;
	ir_plan_init(&p);
	p.nmicro = 4;
	p.nstages = 4;
	p.stages = ir_alloc(&p.arena, 4 * sizeof(IrStagePlan));
	for (int q = 0; q < 4; q++) {
		opt[q] = (PassIntraOptions){.method = PASS_ILP, .memory_budget = frac[q] * s0,
					    .exhaustive = true};
		p.stages[q] = (IrStagePlan){.first_layer = q + 1, .last_layer = q + 1,
					    .mesh = mesh, .n0 = 1, .n1 = 2};
	}
	int solves = 0;
	cr_assert_eq(pass_shard_stages(&g, &c, &p, opt, 2, &solves, &e), 0, "%s", e.msg);
	int binding = 0;
	for (int q = 0; q < 4; q++) {
		PassIntraOptions oq = opt[q];
		oq.nmicro = 4;
		ir_plan_init(&tmp);
		int rc = pass_intra_op(&g, &c, &lm, q + 1, q + 1, &oq, &tmp, &st, &r, &e);
		cr_assert_eq(rc, 0, "stage %d alone under %.2f x its free state: %s", q, frac[q],
			     e.msg);
		cr_expect(same_cost(p.stages[q].ilp_s, r.objective_s),
			  "stage %d (budget %.2f x): %.12g s, exhaustive alone %.12g s", q, frac[q],
			  p.stages[q].ilp_s, r.objective_s);
		double held = p.stages[q].weight_bytes + p.stages[q].grad_bytes +
			      p.stages[q].opt_bytes;
		cr_expect(held <= oq.memory_budget * (1 + 1e-12),
			  "stage %d holds %.0f bytes, budget %.0f", q, held, oq.memory_budget);
		binding += r.objective_s > free_s * (1 + 1e-9);
		ir_plan_free(&tmp);
	}
	cr_expect_eq(binding, 1, "only the 0.75 x budget costs time");
	cr_expect_eq(solves, 2, "budgets 4, 2 and 1 x share one solve; 0.75 x is solved alone");
	ir_plan_free(&p);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

/* ------------------------------------------------------------------ */
/* Through the binary                                                   */


Test(compile, a_model_that_fits_nowhere_says_how_much_memory_it_needs, .timeout = 300)
{
	static char out[1 << 16];
	/* 2 x 2 x 32768 x 131072 weights: 34 G parameters, 550 GB of state on 8 x 16 GiB */
	int rc = test_run("compile " TINY " --cluster " TINY_CLUSTER
		     " --batch 8 --set h=32768,layers=2", out, sizeof out);
	cr_expect_eq(rc, 1, "exit %d: %s", rc, out);
	cr_expect(strstr(out, "GiB per device"), "%s", out);
	cr_expect(strstr(out, "the GPU has 16.00 GiB"), "%s", out);
	double need = 0;
	const char *at = strstr(out, "needs ");
	cr_assert(at && sscanf(at, "needs %lf GiB", &need) == 1, "%s", out);
	cr_expect_gt(need, 16, "%s", out);
}

Test(compile, bad_input_exits_2)
{
	static char out[1 << 14];
	cr_expect_eq(test_run("compile " TINY " --cluster " TINY_CLUSTER, out, sizeof out), 2, "%s", out);
	cr_expect_eq(test_run("compile " TINY " --cluster " TINY_CLUSTER " --batch 64 --microbatch 5",
			 out, sizeof out), 2, "%s", out);
	cr_expect_eq(test_run("compile " TINY " --cluster nowhere --batch 8", out, sizeof out), 2, "%s",
		     out);
}

static json_t *run_json(const char *args)
{
	static char out[1 << 20];
	int rc = test_run(args, out, sizeof out);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	json_error_t err;
	json_t *o = json_loads(out, 0, &err);
	cr_assert(o, "not JSON (%s): %s", err.text, out);
	return o;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert(f, "%s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = 0;
	fclose(f);
	return s;
}

Test(compile, the_written_plan_simulates_to_the_same_figures_and_is_reproducible,
     .timeout = 900)
{
	char a[] = "/tmp/meshplan-inter-XXXXXX", b[] = "/tmp/meshplan-inter-XXXXXX";
	int fa = mkstemp(a), fb = mkstemp(b);
	cr_assert(fa >= 0 && fb >= 0);
	close(fa);
	close(fb);
	char args[1024];
	const char *base = "compile gpt --set layers=4,hidden=128,heads=4,seq=128,vocab=1024 "
			   "--cluster " TINY_CLUSTER " --batch 64 --json --quiet";
	snprintf(args, sizeof args, "%s -o %s", base, a);
	json_t *c1 = run_json(args);
	snprintf(args, sizeof args, "%s -o %s", base, b);
	json_decref(run_json(args));
	char *pa = slurp(a), *pb = slurp(b);
	cr_expect_str_eq(pa, pb, "the same inputs give a byte-identical plan");
	cr_expect(json_number_value(json_object_get(c1, "compile_time_s")) > 0);
	json_t *st = json_object_get(c1, "stages");
	cr_assert(json_array_size(st) >= 1);
	cr_expect(json_object_get(json_array_get(st, 0), "logical_mesh"));
	snprintf(args, sizeof args, "simulate %s --json", a);
	json_t *s1 = run_json(args);
	const char *keys[] = {"step_time_s", "samples_per_s", "tflops_per_gpu", "mfu",
			      "peak_memory_bytes", "bubble_fraction"};
	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		double x = json_number_value(json_object_get(c1, keys[k]));
		double y = json_number_value(json_object_get(s1, keys[k]));
		cr_expect(same_cost(x, y), "%s: compile %.12g, simulate %.12g", keys[k], x, y);
	}
	json_decref(c1);
	json_decref(s1);
	free(pa);
	free(pb);
	unlink(a);
	unlink(b);
}

/* ------------------------------------------------------------------ */
/* Results independent of the machine's load                            */

/* A load helper: threads that spin until told to stop, taking the cores
 * the compile would otherwise have. */
typedef struct {
	volatile int stop;
	volatile unsigned long spins;
} Load;

static void *spin(void *arg)
{
	Load *l = arg;
	while (!l->stop)
		l->spins++;
	return NULL;
}

/* The plan compiled for a tiny GPT on the two-node test cluster, written
 * to a string; with `busy` spinning threads running alongside. */
static char *compile_text(int busy, double time_limit_s, PassInterResult *r)
{
	Load l = {0, 0};
	pthread_t tid[8];
	for (int i = 0; i < busy; i++)
		cr_assert_eq(pthread_create(&tid[i], NULL, spin, &l), 0);
	IrPlan p;
	IrGraph g;
	PassInterOptions o = {.recompute = -1, .threads = 2, .tmax_gap = -1,
			      .time_limit_s = time_limit_s};
	int rc = compile("gpt", "layers=4,hidden=128,heads=4,seq=128,vocab=1024", TINY_CLUSTER, 64,
			 o, &p, &g, r);
	l.stop = 1;
	for (int i = 0; i < busy; i++)
		pthread_join(tid[i], NULL);
	cr_assert_eq(rc, 0, "%s", r->message);
	char path[] = "/tmp/meshplan-load-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	close(fd);
	IrError e;
	cr_assert_eq(ir_plan_write(&p, path, &e), 0, "%s", e.msg);
	char *text = slurp(path);
	unlink(path);
	ir_plan_free(&p);
	ir_graph_free(&g);
	return text;
}

Test(compile, the_plan_is_the_same_on_an_idle_and_on_a_busy_machine, .timeout = 900)
{
	PassInterResult r1, r2;
	char *idle = compile_text(0, 0, &r1);
	char *busy = compile_text(2, 0, &r2);
	cr_expect_str_eq(idle, busy, "the same inputs give a byte-identical plan under load");
	cr_expect(!r1.time_limited && !r2.time_limited, "no time limit was asked for");
	cr_expect_eq(r1.stage_solves, r2.stage_solves, "the same work both times");
	cr_expect_eq(r1.refinements, r2.refinements);
	free(idle);
	free(busy);
}

Test(compile, a_users_time_limit_that_cuts_the_search_is_recorded, .timeout = 900)
{
	PassInterResult r1, r2;
	char *cut = compile_text(0, 1e-9, &r1);
	char *none = compile_text(0, 0, &r2);
	cr_expect(r1.time_limited, "a limit already passed at the first refinement cuts it");
	cr_expect(!r2.time_limited);
	cr_expect_leq(r1.refinements, r2.refinements, "the cut search does no more work");
	free(cut);
	free(none);
}
