/*
 * test_manual.c -- hand-written grid plans (passes/manual.c): the search
 * against every grid plan built one by one, the data + expert baseline's
 * sharding, and `meshplan compare --against` run as a program.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "passes/passes.h"
#include "tests/helpers.h"

#define DATA MESHPLAN_DATA_DIR "/tests/data"
#define TINY_CLUSTER DATA "/tiny-cluster.xml"
#define SMALL_GPT "layers=4,hidden=128,heads=4,seq=128,vocab=1024"


static IrGraph load(const char *model, const char *set, int64_t batch)
{
	char all[256];
	snprintf(all, sizeof all, "%s,batch=%lld", set, (long long)batch);
	return test_graph(model, all);
}

/* The search's best plan against every grid point, microbatch,
 * recomputation mode and ZeRO stage built and simulated one by one, on a
 * GPU small enough that memory decides (a third of the plans do not fit);
 * with `micro` > 0, only the points whose dp * mbs is that microbatch. */
static void search_against_brute_force(int64_t micro)
{
	IrCluster c = test_cluster(TINY_CLUSTER, 1);
	c.gpu.mem_bytes = 6e6;
	const int64_t B = 16;
	IrParamSet ps = {0};
	IrError e;
	cr_assert_eq(ir_params_parse(&ps, SMALL_GPT, &e), 0);
	double best = INFINITY;
	int fits = 0, all = 0;
	PassManual want = {0};
	for (int tp = 1; tp <= 4; tp *= 2)
		for (int pp = 1; pp * tp <= 4; pp *= 2)
			for (int64_t mbs = 1; (4 / tp / pp) * mbs <= B; mbs *= 2) {
				int dp = 4 / tp / pp;
				if (micro > 0 && dp * mbs != micro)
					continue;
				IrGraph g = load("gpt", SMALL_GPT, dp * mbs);
				/* the sharding does not depend on the recomputation mode:
				 * one per ZeRO stage, simulated under each mode */
				for (int z = 0; z <= (dp > 1 ? 3 : 0); z++) {
					PassManual m = {.dp = dp, .tp = tp, .pp = pp, .mbs = mbs, .v = 1,
							.schedule = IR_SCHED_1F1B,
							.recompute = IR_RECOMP_NONE, .zero = z,
							.method = PASS_ILP};
					IrPlan p;
					ir_plan_init(&p);
					SimResult s;
					cr_assert_eq(pass_manual_plan(&g, &c, &m, B, 0, 1, false, &p, &s,
								      NULL, &e),
						     0, "%s", e.msg);
					sim_result_free(&s);
					for (int rc = 0; rc < 3; rc++) {
						p.recompute = m.recompute = (IrRecompute)rc;
						cr_assert_eq(sim_plan(&g, &c, &p, &s, &e), 0, "%s", e.msg);
						all++;
						if (s.fits) {
							fits++;
							if (s.step_time_s < best) {
								best = s.step_time_s;
								want = m;
							}
						}
						sim_result_free(&s);
					}
					ir_plan_free(&p);
				}
				ir_graph_free(&g);
			}
	cr_assert(isfinite(best));
	if (!micro)
		cr_expect(fits > 0 && fits < all, "%d of %d fit: memory should decide", fits, all);

	IrModelDoc *md = ir_model_open("gpt", &e);
	cr_assert(md, "%s", e.msg);
	PassManualSearch o = {.global_batch = B, .method = PASS_ILP, .recompute = -1,
			      .microbatch = micro, .threads = 1};
	IrPlan plan;
	IrGraph g;
	SimResult res;
	PassManualResult r;
	cr_assert_eq(pass_manual_search(md, "gpt", &ps, &c, "tiny", 1, &o, &plan, &g, &res, &r,
					&e),
		     0, "%s", e.msg);
	cr_expect(res.fits);
	cr_expect(fabs(res.step_time_s - best) <= 1e-9 * best,
		  "search %.9g (%dx%dx%d mbs %lld rc %d zero %d), brute force %.9g (%dx%dx%d mbs "
		  "%lld rc %d zero %d)",
		  res.step_time_s, r.best.dp, r.best.tp, r.best.pp, (long long)r.best.mbs,
		  r.best.recompute, r.best.zero, best, want.dp, want.tp, want.pp,
		  (long long)want.mbs, want.recompute, want.zero);
	cr_expect_eq(g.batch, plan.microbatch, "the graph is the one at the best microbatch");
	if (micro > 0)
		cr_expect_eq(plan.microbatch, micro);
	else
		cr_expect_lt(r.tried, all, "the search prunes (%d of %d)", r.tried, all);
	sim_result_free(&res);
	ir_plan_free(&plan);
	ir_graph_free(&g);
	ir_model_close(md);
	ir_cluster_free(&c);
}

Test(search, is_the_fastest_of_every_grid_plan_that_fits, .timeout = 600)
{
	search_against_brute_force(0);
}

Test(search, at_a_fixed_microbatch_is_the_fastest_grid_plan_with_it, .timeout = 600)
{
	search_against_brute_force(2);
}

Test(search, reports_the_least_memory_when_nothing_fits, .timeout = 300)
{
	IrCluster c = test_cluster(TINY_CLUSTER, 1);
	c.gpu.mem_bytes = 1e5;
	IrParamSet ps = {0};
	IrError e;
	cr_assert_eq(ir_params_parse(&ps, SMALL_GPT, &e), 0);
	IrModelDoc *md = ir_model_open("gpt", &e);
	cr_assert(md, "%s", e.msg);
	PassManualSearch o = {.global_batch = 16, .method = PASS_ILP, .recompute = -1,
			      .threads = 1};
	IrPlan plan;
	IrGraph g;
	SimResult res;
	PassManualResult r;
	cr_expect_eq(pass_manual_search(md, "gpt", &ps, &c, "tiny", 1, &o, &plan, &g, &res, &r,
					&e),
		     -1);
	cr_expect_eq(r.status, PASS_INFEASIBLE);
	cr_expect_gt(r.need_bytes, 1e5);
	cr_expect(strstr(r.message, "GiB per device"), "%s", r.message);
	ir_model_close(md);
	ir_cluster_free(&c);
}

/* ------------------------------------------------------------------ */
/* The data + expert baseline                                           */

/* Bytes of weights whose name starts with one of the prefixes. */
static double weight_bytes(const IrGraph *g, const char *const *prefix, int n, bool match)
{
	double b = 0;
	for (int t = 0; t < g->ntensors; t++) {
		const IrTensor *x = &g->tensors[t];
		if (x->role != IR_T_WEIGHT || x->weight >= 0)
			continue;
		bool hit = false;
		for (int k = 0; k < n; k++)
			hit = hit || !strncmp(x->name, prefix[k], strlen(prefix[k]));
		if (hit == match)
			b += ir_tensor_bytes(x);
	}
	return b;
}

Test(expert, splits_the_experts_over_the_devices_and_replicates_the_rest, .timeout = 300)
{
	IrCluster c = test_cluster(TINY_CLUSTER, 1);
	IrGraph g = load("moe", "layers=2,hidden=64,heads=4,seq=64,vocab=512,experts=4", 4);
	IrLogicalMesh lm;
	IrError e;
	cr_assert_eq(ir_logical_mesh(&c, &(IrMesh){0, 1, 0, 4}, 4, 1, &lm, &e), 0, "%s", e.msg);
	static const char *const experts[] = {"wi", "we"};
	double ex = weight_bytes(&g, experts, 2, true), rest = weight_bytes(&g, experts, 2, false);
	cr_assert_gt(ex, 0);
	const PassMethod methods[] = {PASS_EXPERT, PASS_DATA};
	/* model state is 16 B per parameter (8x the bf16 weight bytes); a budget
	 * of exactly the state with the experts split 4 ways leaves expert
	 * parallelism as the only plan, which data parallelism cannot meet */
	double budget = 8 * (rest + ex / 4) * (1 + 1e-9);
	for (int i = 0; i < 2; i++) {
		PassIntraOptions o = {.method = methods[i], .nmicro = 1, .memory_budget = budget};
		IrPlan p;
		ir_plan_init(&p);
		IrStagePlan st;
		PassIntraResult r;
		int rc = pass_intra_op(&g, &c, &lm, 0, g.nlayers - 1, &o, &p, &st, &r, &e);
		if (methods[i] == PASS_DATA) {
			cr_expect_eq(rc, -1);
			cr_expect_eq(r.status, PASS_INFEASIBLE);
		} else {
			cr_assert_eq(rc, 0, "%s", e.msg);
			double want = rest + ex / 4;
			cr_expect(fabs(st.weight_bytes - want) <= 1e-9 * want,
				  "weights %.0f B per device, want %.0f", st.weight_bytes, want);
		}
		ir_plan_free(&p);
	}
	/* a dense model has no expert dims: expert is data parallelism there */
	IrGraph d = load("gpt", SMALL_GPT, 4);
	double obj[2];
	for (int i = 0; i < 2; i++) {
		PassIntraOptions o = {.method = methods[i], .nmicro = 1};
		IrPlan p;
		ir_plan_init(&p);
		IrStagePlan st;
		PassIntraResult r;
		cr_assert_eq(pass_intra_op(&d, &c, &lm, 0, d.nlayers - 1, &o, &p, &st, &r, &e), 0,
			     "%s", e.msg);
		obj[i] = r.objective_s;
		ir_plan_free(&p);
	}
	cr_expect(fabs(obj[0] - obj[1]) <= 1e-12 * obj[1], "expert %.9g, data %.9g", obj[0],
		  obj[1]);
	ir_graph_free(&d);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

/* The data-parallel baseline takes a hand-written plan's ZeRO stage: model
 * state per device follows the ZeRO paper's formulas (16 B per parameter:
 * bf16 weight and gradient, fp32 master, m, v; N data-parallel devices). */
Test(baselines, data_parallelism_takes_the_zero_stage, .timeout = 300)
{
	IrCluster c = test_cluster(TINY_CLUSTER, 1);
	IrGraph g = load("gpt", SMALL_GPT, 4);
	double P = 0;
	for (int t = 0; t < g.ntensors; t++)
		if (g.tensors[t].role == IR_T_WEIGHT && g.tensors[t].weight < 0)
			P += (double)ir_tensor_numel(&g.tensors[t]);
	const double N = 4;
	const double want[4] = {16 * P, 4 * P + 12 * P / N, 2 * P + 14 * P / N, 16 * P / N};
	for (int z = 0; z <= 3; z++) {
		PassManual m = {.dp = 4, .tp = 1, .pp = 1, .mbs = 1, .v = 1,
				.schedule = IR_SCHED_1F1B, .recompute = IR_RECOMP_NONE, .zero = z,
				.method = PASS_DATA};
		IrPlan p;
		ir_plan_init(&p);
		SimResult s;
		IrError e;
		cr_assert_eq(pass_manual_plan(&g, &c, &m, 16, 0, 1, false, &p, &s, NULL, &e), 0,
			     "zero %d: %s", z, e.msg);
		double got = s.rank_weight[0] + s.rank_grad[0] + s.rank_opt[0];
		cr_expect(fabs(got - want[z]) <= 1e-9 * want[z], "zero %d: %.0f B, want %.0f", z, got,
			  want[z]);
		sim_result_free(&s);
		ir_plan_free(&p);
	}
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

/* ------------------------------------------------------------------ */
/* compare --against                                                    */



Test(compare, puts_the_best_grid_plan_beside_the_compiled_one, .timeout = 600)
{
	char args[1024];
	int code;
	snprintf(args, sizeof args,
		 "compare gpt --set %s --cluster %s --nodes 1 --batch 16 --against manual --json",
		 SMALL_GPT, TINY_CLUSTER);
	json_t *cmp = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	json_t *row = json_array_get(json_object_get(cmp, "clusters"), 0);
	json_t *b = json_object_get(row, "baseline");
	cr_assert_not_null(b);
	cr_assert(json_is_true(json_object_get(b, "fits")));
	cr_expect_str_eq(json_string_value(json_object_get(b, "family")), "manual");
	int dp = (int)test_num(b, "dp"), tp = (int)test_num(b, "tp"), pp = (int)test_num(b, "pp");
	cr_expect_eq(dp * tp * pp, 4);
	double got = test_num(row, "step_time_s"), base = test_num(b, "step_time_s");
	cr_expect(fabs(test_num(row, "speedup") - base / got) <= 1e-9 * base / got);
	/* the compiled plan is at least as fast as every hand-written grid plan */
	cr_expect_geq(base / got, 1 - 1e-6, "compiled %.9g s, best grid plan %.9g s", got, base);

	/* the grid plan it names simulates to the same step time */
	snprintf(args, sizeof args,
		 "simulate gpt --set %s --cluster %s --nodes 1 --batch 16 --manual "
		 "dp=%d,tp=%d,pp=%d,mbs=%d,recompute=%s,zero=%d --json",
		 SMALL_GPT, TINY_CLUSTER, dp, tp, pp, (int)test_num(b, "mbs"),
		 json_string_value(json_object_get(b, "recompute")), (int)test_num(b, "zero"));
	json_t *sim = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	cr_expect(fabs(test_num(sim, "step_time_s") - base) <= 1e-9 * base, "simulate %.9g, compare %.9g",
		  test_num(sim, "step_time_s"), base);
	json_decref(sim);
	json_decref(cmp);
}

Test(compare, against_something_unknown_is_bad_input)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd,
		 "%s compare gpt --cluster %s --batch 16 --against magic 2>/dev/null >/dev/null",
		 MESHPLAN_BIN, TINY_CLUSTER);
	int st = system(cmd);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}
