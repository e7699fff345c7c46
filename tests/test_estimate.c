/*
 * test_estimate.c -- whole-run cost, energy and CO2 (runtime-sim/estimate.c)
 * and the `meshplan estimate` verb run as a program (MESHPLAN_BIN).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "runtime-sim/sim.h"
#include "tests/helpers.h"

#ifndef MESHPLAN_BIN
#define MESHPLAN_BIN "meshplan"
#endif

static bool within(double x, double want, double rel)
{
	return fabs(x - want) <= rel * fabs(want);
}

/* LLaMA-2 70B (Touvron et al. 2023, table 2): 1,720,320 A100 GPU-hours at
 * 400 W, 291.42 t CO2e; the implied grid intensity is 291.42 t / 688,128 kWh. */
static void llama2(SimCostModel *m)
{
	sim_cost_model_default(m);
	m->price_per_gpu_hour = 20;
	snprintf(m->currency, sizeof m->currency, "CNY");
	m->power_w = 400;
	m->carbon_kg_per_kwh = 291420.0 / 688128.0;
}

Test(cost, llama2_70b_reproduces_cost_co2_and_equivalents)
{
	SimCostModel m;
	SimCost c;
	llama2(&m);
	sim_cost(&m, 1720320, &c);
	cr_expect(within(c.cost, 34.4e6, 0.01), "cost %g CNY", c.cost);
	cr_expect(within(c.energy_kwh, 688128, 1e-9), "energy %g kWh", c.energy_kwh);
	cr_expect(within(c.co2e_t, 291, 0.01), "co2e %g t", c.co2e_t);
	cr_expect(within(c.tree_years, 24000, 0.02), "tree-years %g", c.tree_years);
	cr_expect(within(c.percap_us_years, 18.1, 0.01), "US per-capita years %g", c.percap_us_years);
	cr_expect(within(c.percap_cn_years, 42.8, 0.01), "China per-capita years %g",
		  c.percap_cn_years);
}

Test(cost, pue_multiplies_energy_and_co2)
{
	SimCostModel m;
	SimCost a, b;
	llama2(&m);
	sim_cost(&m, 1000, &a);
	m.pue = 1.1;
	sim_cost(&m, 1000, &b);
	cr_expect(within(b.energy_kwh, 1.1 * a.energy_kwh, 1e-12));
	cr_expect(within(b.co2e_t, 1.1 * a.co2e_t, 1e-12));
	cr_expect(within(b.cost, a.cost, 1e-12), "PUE does not change the GPU-hour price");
}

Test(cost, unknown_price_power_or_carbon_gives_nan_not_zero)
{
	SimCostModel m;
	SimCost c;
	sim_cost_model_default(&m);
	sim_cost(&m, 1000, &c);
	cr_expect(isnan(c.cost) && isnan(c.energy_kwh) && isnan(c.co2e_t));
	cr_expect_eq(c.gpu_hours, 1000);
}

Test(cost, model_check_rejects_negative_power_and_pue_below_one)
{
	SimCostModel m;
	IrError e;
	sim_cost_model_default(&m);
	cr_expect_eq(sim_cost_model_check(&m, &e), 0);
	m.power_w = -1;
	cr_expect_eq(sim_cost_model_check(&m, &e), -1);
	cr_expect(strstr(e.msg, "power") != NULL, "%s", e.msg);
	sim_cost_model_default(&m);
	m.pue = 0.9;
	cr_expect_eq(sim_cost_model_check(&m, &e), -1);
}

Test(run_time, steps_round_up_and_gpu_hours_follow)
{
	SimRunTime r;
	IrError e;
	cr_assert_eq(sim_run_time(2.0, 1024, 4e6, 1e9 + 1, &r, &e), 0);
	cr_expect_eq(r.steps, 251);
	cr_expect(within(r.wall_s, 502, 1e-12));
	cr_expect(within(r.gpu_hours, 502.0 * 1024 / 3600, 1e-12));
	cr_expect_eq(sim_run_time(0, 8, 1, 1, &r, &e), -1);
	cr_expect_eq(sim_run_time(1, 0, 1, 1, &r, &e), -1);
}

/* ------------------------------------------------------------------ */
/* Through the binary.                                                  */

/* Runs `meshplan estimate ARGS` (stderr too), output into out; exit code. */
static int run_estimate(const char *args, char *out, size_t n)
{
	char all[2048];
	snprintf(all, sizeof all, "estimate %s", args);
	return test_run(all, out, n);
}

static json_t *run_json(const char *args)
{
	static char out[1 << 16];
	char full[1024];
	snprintf(full, sizeof full, "%s --json", args);
	int rc = run_estimate(full, out, sizeof out);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	json_error_t err;
	json_t *o = json_loads(out, 0, &err);
	cr_assert(o, "not JSON (%s): %s", err.text, out);
	return o;
}

static double jget(json_t *o, const char *path)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", path);
	json_t *cur = o;
	for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
		cur = json_object_get(cur, tok);
	cr_assert(cur && json_is_number(cur), "no number at %s", path);
	return json_number_value(cur);
}

#define LLAMA2_ARGS                                                                  \
	"--gpu-hours 1720320 --gpus 2048 --price-per-gpu-hour 20 --currency CNY "    \
	"--power-w 400 --carbon-intensity 0.42349"

Test(cli, llama2_figures_come_out_of_the_binary_as_json)
{
	json_t *o = run_json(LLAMA2_ARGS);
	cr_expect(within(jget(o, "cost"), 34.4e6, 0.01));
	cr_expect(within(jget(o, "co2e_t"), 291, 0.01));
	cr_expect(within(jget(o, "energy_kwh"), 688128, 1e-9));
	cr_expect(within(jget(o, "gpu_hours"), 1720320, 1e-12));
	cr_expect(within(jget(o, "wall_time_s"), 1720320.0 * 3600 / 2048, 1e-12));
	cr_expect(within(jget(o, "tree_years"), 24000, 0.02));
	cr_expect(within(jget(o, "per_capita_years.us"), 18.1, 0.01));
	cr_expect(within(jget(o, "per_capita_years.china"), 42.8, 0.01));
	cr_expect_str_eq(json_string_value(json_object_get(o, "currency")), "CNY");
	json_decref(o);
}

Test(cli, human_table_names_the_figures)
{
	char out[8192];
	cr_assert_eq(run_estimate(LLAMA2_ARGS, out, sizeof out), 0, "%s", out);
	cr_expect(strstr(out, "34.4 M CNY") != NULL, "%s", out);
	cr_expect(strstr(out, "tree-years") != NULL, "%s", out);
	cr_expect(strstr(out, "per-capita") != NULL, "%s", out);
}

Test(cli, failures_report_ettr_interruptions_and_breakdowns)
{
	json_t *o = run_json("--step-time 10 --gpus 1024 --tokens-per-step 4e6 --tokens 1e11 "
			     "--failures --policy failover --runs 4");
	double ettr = jget(o, "failures.ettr");
	cr_expect(ettr > 0.5 && ettr < 1, "ettr %g", ettr);
	cr_expect(jget(o, "failures.interruptions") > 0);
	cr_expect(jget(o, "failures.interruptions_by_cause.hard") > 0);
	cr_expect(jget(o, "failures.time_lost_s.detection") > 0);
	cr_expect(jget(o, "wall_time_s") > jget(o, "failures.fault_free.wall_time_s"));
	json_decref(o);
}

Test(cli, same_seed_same_figures_other_seed_other_figures)
{
	static char a[1 << 16], b[1 << 16], c[1 << 16];
	const char *base = "--step-time 5 --gpus 2048 --tokens-per-step 8e6 --tokens 2e11 "
			   "--failures --policy elastic --runs 3 --json --seed ";
	char args[512];
	snprintf(args, sizeof args, "%s42", base);
	cr_assert_eq(run_estimate(args, a, sizeof a), 0, "%s", a);
	cr_assert_eq(run_estimate(args, b, sizeof b), 0, "%s", b);
	snprintf(args, sizeof args, "%s43", base);
	cr_assert_eq(run_estimate(args, c, sizeof c), 0, "%s", c);
	cr_expect_str_eq(a, b);
	cr_expect_str_neq(a, c);
}

/* Bad input: exit 2 and one line on stderr naming the problem. */
static void expect_bad(const char *args, const char *word)
{
	char out[4096];
	int rc = run_estimate(args, out, sizeof out);
	cr_expect_eq(rc, 2, "'%s' exit %d: %s", args, rc, out);
	cr_expect(strstr(out, word) != NULL, "'%s': no '%s' in: %s", args, word, out);
	char *nl = strchr(out, '\n');
	cr_expect(nl && nl[1] == 0, "'%s': not one line: %s", args, out);
}

#define FAIL_RUN "--step-time 1 --gpus 64 --tokens-per-step 1 --tokens 1e5 --failures "

Test(cli, bad_flags_exit_2_with_a_clear_message)
{
	expect_bad("--gpu-hours 100 --power-w -400", "--power-w");
	expect_bad(FAIL_RUN "--mtbf-hours 0", "--mtbf-hours");
	expect_bad(FAIL_RUN "--failure-rate 0", "--failure-rate");
	expect_bad(FAIL_RUN "--policy sometimes", "sometimes");
	expect_bad("--gpu-hours lots", "lots");
	expect_bad("--gpu-hours 100 --pue 0.8", "--pue");
	expect_bad("--gpu-hours 100 --carbon-intensity -1", "--carbon-intensity");
	expect_bad("--gpu-hours 100 --frobnicate", "--frobnicate");
	expect_bad(FAIL_RUN "--soft-fraction 2", "--soft-fraction");
	expect_bad(FAIL_RUN "--ckpt-save-s -3", "--ckpt-save-s");
	expect_bad(FAIL_RUN "--runs 1.5", "--runs");
	expect_bad("--step-time 1 --gpus 64 --tokens-per-step 1 --tokens 100 --policy failover",
		   "--failures");
	expect_bad("--step-time 1 --gpus 8 --tokens-per-step 1 --tokens 8 --speeds 1,-1",
		   "--speeds");
	expect_bad("--step-time 1 --gpus 8 --tokens-per-step 1 --tokens 8 --sharding greedy",
		   "greedy");
	expect_bad("--step-time 1 --gpus 8", "--tokens");
	expect_bad("", "nothing to estimate");
}

Test(cli, a_missing_plan_or_a_model_name_says_how_to_write_a_plan)
{
	expect_bad("/nonexistent/plan.xml --tokens 1e9", "meshplan compile");
	expect_bad("gpt --tokens 1e9", "not a readable plan file");
}

Test(cli, help_lists_every_flag_and_exits_0)
{
	static char out[1 << 15];
	cr_assert_eq(run_estimate("--help", out, sizeof out), 0);
	static const char *flags[] = {
		"--step-time", "--gpu-hours", "--cluster", "--price-per-gpu-hour", "--currency",
		"--power-w", "--pue", "--carbon-intensity", "--failures", "--policy",
		"--failure-rate", "--mtbf-hours", "--soft-fraction", "--detect-s", "--restart-s",
		"--ckpt-save-s", "--ckpt-load-s", "--ckpt-interval-s", "--runs", "--seed",
		"--speeds", "--speed-dist", "--sharding", "--json"};
	for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
		cr_expect(strstr(out, flags[i]) != NULL, "--help lacks %s", flags[i]);
}

Test(cli, stragglers_even_runs_at_the_slow_pace_dynamic_near_ideal)
{
	const char *base = "--step-time 1 --gpus 8 --tokens-per-step 1 --tokens 1000 "
			   "--speeds 1,1,1,1,1,1,1,0.5 --sharding ";
	char args[256];
	snprintf(args, sizeof args, "%seven", base);
	json_t *even = run_json(args);
	snprintf(args, sizeof args, "%sdynamic", base);
	json_t *dyn = run_json(args);
	cr_expect(within(jget(even, "wall_time_s"), 2000, 1e-9));
	cr_expect(within(jget(dyn, "wall_time_s"), 1000 * 8 / 7.5, 0.05));
	json_decref(even);
	json_decref(dyn);
}
