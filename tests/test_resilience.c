/*
 * test_resilience.c -- the Monte-Carlo of a whole run with failures,
 * checkpoints and recovery policies, and straggler pace
 * (runtime-sim/resilience.c).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <string.h>

#include "runtime-sim/sim.h"

static bool within(double x, double want, double rel)
{
	return fabs(x - want) <= rel * fabs(want);
}

/* Llama 3 405B pre-training (Dubey et al. 2024, sec. 3.3.4): 16,384 H100s,
 * a 54-day snapshot with 419 unexpected interruptions. */
enum { LLAMA3_GPUS = 16384 };
#define LLAMA3_DAYS 54.0
#define LLAMA3_RATE (419.0 / (LLAMA3_DAYS * 24 * LLAMA3_GPUS))

static SimRunSpec llama3_run(void)
{
	/* longer than the window, so the 54 days are all training */
	return (SimRunSpec){.work_s = 100 * 86400.0, .step_s = 10, .gpus = LLAMA3_GPUS,
			    .gpus_per_node = 8};
}

static SimResilience llama3(SimPolicy p, double ckpt_save_s, int runs, uint64_t seed)
{
	SimRunSpec r = llama3_run();
	SimFailureModel f;
	sim_failure_model_default(&f, p);
	f.rate_per_gpu_hour = LLAMA3_RATE;
	f.ckpt_save_s = ckpt_save_s;
	f.horizon_s = LLAMA3_DAYS * 86400;
	f.runs = runs;
	f.seed = seed;
	SimResilience res;
	IrError e;
	cr_assert_eq(sim_resilience(&r, &f, &res, &e), 0, "%s", e.msg);
	return res;
}

Test(failures, default_rate_is_llama3s)
{
	SimFailureModel f;
	sim_failure_model_default(&f, SIM_RESTART_ALL);
	cr_expect(within(f.rate_per_gpu_hour, LLAMA3_RATE, 1e-12));
}

Test(failures, llama3_rate_gives_419_interruptions_in_54_days)
{
	for (int p = 0; p < SIM_NPOLICIES; p++) {
		SimResilience res = llama3((SimPolicy)p, p == SIM_RESTART_ALL ? 30 : 1, 64, 1);
		cr_log_info("%s: %.1f interruptions in 54 days (soft %.1f, hard %.1f), ETTR %.4f",
			    sim_policy_name(p), res.interruptions, res.soft, res.hard, res.ettr);
		/* elastic holds fewer GPUs while nodes are away: a few fewer failures */
		cr_expect(within(res.interruptions, 419, 0.05), "%s: %g", sim_policy_name(p),
			  res.interruptions);
		cr_expect(within(res.hard / res.interruptions, 0.78, 0.05));
		cr_expect(within(res.mtbf_s, 54.0 * 86400 / 419, 1e-9));
	}
}

Test(failures, failover_with_subsecond_checkpoint_keeps_ettr_above_0_9)
{
	SimResilience fo = llama3(SIM_FAILOVER, 0.5, 32, 1);
	SimResilience ra = llama3(SIM_RESTART_ALL, 180, 32, 1);
	cr_log_info("failover, 0.5 s checkpoint every %.0f s: ETTR %.4f (%.4f..%.4f)",
		    fo.interval_s, fo.ettr, fo.ettr_min, fo.ettr_max);
	cr_log_info("restart-all, 180 s checkpoint every %.0f s: ETTR %.4f (%.4f..%.4f)",
		    ra.interval_s, ra.ettr, ra.ettr_min, ra.ettr_max);
	cr_expect(fo.ettr_min > 0.9, "failover ETTR %g", fo.ettr_min);
	cr_expect(ra.ettr_max < 0.9, "restart-all ETTR %g", ra.ettr_max);
}

Test(failures, wall_time_is_useful_time_plus_every_loss)
{
	for (int p = 0; p < SIM_NPOLICIES; p++) {
		SimRunSpec r = {.work_s = 20 * 86400.0, .step_s = 4, .gpus = 4096, .gpus_per_node = 8};
		SimFailureModel f;
		sim_failure_model_default(&f, (SimPolicy)p);
		f.runs = 1;
		f.repair_s = 6 * 3600;
		SimResilience res;
		cr_assert_eq(sim_resilience(&r, &f, &res, NULL), 0);
		double sum = res.useful_s;
		for (int k = 0; k < SIM_NLOST; k++) {
			cr_expect(res.lost_s[k] >= 0, "%s %s", sim_policy_name(p), sim_lost_name(k));
			sum += res.lost_s[k];
		}
		cr_expect(within(sum, res.wall_s, 1e-9), "%s: %g vs %g", sim_policy_name(p), sum,
			  res.wall_s);
		cr_expect(within(res.useful_s, r.work_s, 1e-9), "the run finishes");
		cr_expect(within(res.ettr, r.work_s / res.wall_s, 1e-9));
		cr_expect(res.interruptions == res.soft + res.hard);
	}
}

Test(failures, same_seed_same_figures)
{
	SimResilience a = llama3(SIM_ELASTIC, 1, 4, 99), b = llama3(SIM_ELASTIC, 1, 4, 99);
	SimResilience c = llama3(SIM_ELASTIC, 1, 4, 100);
	cr_expect(memcmp(&a, &b, sizeof a) == 0);
	cr_expect(a.interruptions != c.interruptions || a.ettr != c.ettr);
}

Test(failures, young_daly_interval_is_sqrt_2_c_mtbf_and_at_least_a_step)
{
	cr_expect(within(sim_young_daly_interval(30, 14400, 5), sqrt(2 * 30 * 14400.0), 1e-12));
	cr_expect_eq(sim_young_daly_interval(0, 14400, 5), 5);
	SimRunSpec r = llama3_run();
	SimFailureModel f;
	sim_failure_model_default(&f, SIM_RESTART_ALL);
	f.runs = 1;
	f.horizon_s = 86400;
	SimResilience res;
	cr_assert_eq(sim_resilience(&r, &f, &res, NULL), 0);
	cr_expect(within(res.interval_s, sqrt(2 * f.ckpt_save_s * res.mtbf_s), 1e-12));
}

Test(failures, interval_sweep_finds_best_within_10_percent_of_young_daly)
{
	/* Long run (2,000 MTBFs) so the mean wall time is smooth; same seeds
	 * at every interval. */
	SimFailureModel f;
	sim_failure_model_default(&f, SIM_RESTART_ALL);
	f.ckpt_save_s = 30;
	f.rate_per_gpu_hour = 1.0 / (4 * 1024); /* cluster MTBF 4 h on 1,024 GPUs */
	f.runs = 8;
	SimRunSpec r = {.step_s = 5, .gpus = 1024, .gpus_per_node = 8};
	double mtbf = 4 * 3600.0, young = sqrt(2 * f.ckpt_save_s * mtbf);
	r.work_s = 2000 * mtbf;
	enum { N = 33 };
	double iv[N], slow[N], best;
	IrError e;
	cr_assert_eq(sim_ckpt_sweep(&r, &f, young / 4, young * 4, N, iv, slow, &best, &e), 0,
		     "%s", e.msg);
	cr_log_info("sweep: best interval %.0f s, sqrt(2 C MTBF) = %.0f s (%.3f)", best, young,
		    best / young);
	cr_expect(within(best, young, 0.10), "best %g vs %g", best, young);
	cr_expect(slow[0] > slow[N / 2] && slow[N - 1] > slow[N / 2], "a valley, not a slope");
	cr_expect(slow[N / 2] > 1);
}

Test(failures, elastic_default_slows_the_smaller_job_linearly)
{
	SimRunSpec r = {.work_s = 30 * 86400.0, .step_s = 10, .gpus = 4096, .gpus_per_node = 8};
	SimFailureModel f;
	sim_failure_model_default(&f, SIM_ELASTIC);
	f.runs = 2;
	f.soft_fraction = 0;
	SimResilience res;
	cr_assert_eq(sim_resilience(&r, &f, &res, NULL), 0);
	/* ~one node of 512 away at a time: about 1/512 slower while it is */
	cr_expect(res.lost_s[SIM_LOST_DEGRADED] > 0, "fewer GPUs, slower steps");
	cr_expect(res.lost_s[SIM_LOST_DEGRADED] < 0.01 * res.wall_s);
	cr_expect(res.rejoins > 0, "repaired nodes come back");
	cr_expect(res.lost_s[SIM_LOST_RESTART] >= res.rejoins * f.restart_s * 0.99);
	cr_expect(res.gpu_hours < res.wall_s * r.gpus / 3600.0, "a lost node is not held");
}

static int cb_calls;
static double flat_step(int gpus, void *ctx)
{
	(void)gpus;
	cb_calls++;
	return *(double *)ctx; /* a re-planner that loses nothing on fewer GPUs */
}

Test(failures, elastic_callback_that_keeps_pace_removes_the_slowdown)
{
	double step = 10;
	SimRunSpec r = {.work_s = 30 * 86400.0, .step_s = step, .gpus = 4096, .gpus_per_node = 8,
			.step_time_for_gpus = flat_step, .ctx = &step};
	SimFailureModel f;
	sim_failure_model_default(&f, SIM_ELASTIC);
	f.runs = 2;
	SimResilience res;
	cb_calls = 0;
	cr_assert_eq(sim_resilience(&r, &f, &res, NULL), 0);
	cr_expect(cb_calls > 0);
	cr_expect(fabs(res.lost_s[SIM_LOST_DEGRADED]) < 1e-6);
}

Test(failures, bad_models_are_refused)
{
	SimRunSpec r = llama3_run();
	SimFailureModel f;
	IrError e;
	SimResilience res;
	sim_failure_model_default(&f, SIM_FAILOVER);
	f.rate_per_gpu_hour = 0; /* an infinite MTBF is fine, a zero one is not: rate > 0 */
	cr_expect_eq(sim_resilience(&r, &f, &res, &e), -1);
	sim_failure_model_default(&f, SIM_FAILOVER);
	f.ckpt_save_s = -1;
	cr_expect_eq(sim_resilience(&r, &f, &res, &e), -1);
	cr_expect(strstr(e.msg, "checkpoint save") != NULL, "%s", e.msg);
	sim_failure_model_default(&f, SIM_FAILOVER);
	f.rate_per_gpu_hour = 1; /* MTBF of a fraction of a second: never finishes */
	cr_expect_eq(sim_resilience(&r, &f, &res, &e), -1);
	SimPolicy p;
	cr_expect_eq(sim_policy_parse("restart-all", &p), 0);
	cr_expect_eq(p, SIM_RESTART_ALL);
	cr_expect_eq(sim_policy_parse("sometimes", &p), -1);
}

/* ------------------------------------------------------------------ */
/* Stragglers.                                                          */

Test(stragglers, one_half_speed_worker_of_eight)
{
	double speed[8] = {1, 1, 1, 1, 1, 1, 1, 0.5};
	double ideal = sim_straggler_ideal_pace(speed, 8);
	double even = sim_straggler_pace(speed, 8, SIM_SHARD_EVEN, 32);
	double dyn = sim_straggler_pace(speed, 8, SIM_SHARD_DYNAMIC, 32);
	cr_log_info("even x%.4f, dynamic x%.4f, ideal x%.4f", even, dyn, ideal);
	cr_expect(within(ideal, 8 / 7.5, 1e-12));
	cr_expect(within(even, 2.0, 1e-12), "even runs at the slow worker's pace");
	cr_expect(within(dyn, ideal, 0.05), "dynamic %g vs ideal %g", dyn, ideal);
	cr_expect(dyn >= ideal - 1e-12, "never better than ideal");
}

Test(stragglers, nominal_speeds_cost_nothing)
{
	double speed[16];
	for (int i = 0; i < 16; i++)
		speed[i] = 1;
	cr_expect(within(sim_straggler_pace(speed, 16, SIM_SHARD_EVEN, 8), 1, 1e-12));
	cr_expect(within(sim_straggler_pace(speed, 16, SIM_SHARD_DYNAMIC, 8), 1, 1e-12));
}

Test(stragglers, finer_shards_bring_dynamic_closer_to_ideal)
{
	double speed[8] = {1, 1, 1, 1, 1, 1, 1, 0.5};
	double ideal = sim_straggler_ideal_pace(speed, 8);
	double coarse = sim_straggler_pace(speed, 8, SIM_SHARD_DYNAMIC, 2);
	double fine = sim_straggler_pace(speed, 8, SIM_SHARD_DYNAMIC, 256);
	cr_expect(fine <= coarse);
	cr_expect(within(fine, ideal, 0.01), "%g vs %g", fine, ideal);
}

Test(stragglers, drawn_speeds_are_seeded)
{
	double a[64], b[64], c[64];
	IrError e;
	cr_assert_eq(sim_speeds_draw("normal:1:0.1", 64, 5, a, &e), 0);
	cr_assert_eq(sim_speeds_draw("normal:1:0.1", 64, 5, b, &e), 0);
	cr_assert_eq(sim_speeds_draw("normal:1:0.1", 64, 6, c, &e), 0);
	cr_expect(memcmp(a, b, sizeof a) == 0);
	cr_expect(memcmp(a, c, sizeof a) != 0);
	cr_assert_eq(sim_speeds_draw("slow:0.125:0.5", 8, 1, a, &e), 0);
	int slow = 0;
	for (int i = 0; i < 8; i++)
		slow += a[i] == 0.5;
	cr_expect_eq(slow, 1);
	cr_expect_eq(sim_speeds_draw("gauss:1:1", 8, 1, a, &e), -1);
	cr_expect_eq(sim_speeds_draw("uniform:2:1", 8, 1, a, &e), -1);
}
