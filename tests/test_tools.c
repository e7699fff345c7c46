/*
 * test_tools.c -- verbs working together through the command line:
 * a plan written by simulate feeds estimate with the same step time.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/helpers.h"

#define DATA MESHPLAN_DATA_DIR "/tests/data"


Test(tools, estimate_of_a_plan_uses_the_simulated_step_time)
{
	char plan[] = "/tmp/meshplan-test-plan-XXXXXX";
	int fd = mkstemp(plan);
	cr_assert_geq(fd, 0);
	char args[1024];
	int code;
	snprintf(args, sizeof args,
		 "simulate %s/tiny.xml --cluster %s/tiny-cluster.xml --batch 16 "
		 "--manual dp=2,tp=2,pp=2,mbs=2 --json -o %s", DATA, DATA, plan);
	json_t *sim = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	double step = json_real_value(json_object_get(sim, "step_time_s"));
	cr_assert_gt(step, 0);

	snprintf(args, sizeof args, "estimate %s --tokens 1600 --json", plan);
	json_t *est = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	json_t *in = json_object_get(est, "inputs");
	cr_expect_float_eq(json_real_value(json_object_get(in, "step_time_s")), step, 1e-12 * step);
	cr_expect_float_eq(json_real_value(json_object_get(in, "tokens_per_step")), 16.0, 1e-9);
	cr_expect_eq(json_integer_value(json_object_get(in, "gpus")), 8);
	/* 1600 tokens at 16 per step: 100 steps; wall time follows */
	cr_expect_float_eq(json_real_value(json_object_get(est, "wall_time_s")), 100 * step,
			   1e-9 * step);
	/* price of the tiny cluster: 2 USD per GPU-hour */
	cr_expect_float_eq(json_real_value(json_object_get(est, "cost")),
			   100 * step * 8 / 3600.0 * 2.0, 1e-9);
	json_decref(sim);
	json_decref(est);
	unlink(plan);
}

Test(tools, compare_gives_each_cluster_the_plan_compile_finds)
{
	char args[1024];
	int code;
	snprintf(args, sizeof args,
		 "compare %s/tiny.xml --cluster %s/tiny-cluster.xml --nodes 1 "
		 "--cluster %s/tiny-cluster.xml --nodes 2 --batch 32 --json", DATA, DATA, DATA);
	json_t *cmp = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	json_t *rows = json_object_get(cmp, "clusters");
	cr_assert_eq(json_array_size(rows), 2);
	for (int i = 0; i < 2; i++) {
		json_t *row = json_array_get(rows, (size_t)i);
		cr_expect_eq(json_integer_value(json_object_get(row, "gpus")), 4 * (i + 1));
		snprintf(args, sizeof args,
			 "compile %s/tiny.xml --cluster %s/tiny-cluster.xml --nodes %d --batch 32 --json",
			 DATA, DATA, i + 1);
		json_t *one = test_run_json(args, &code);
		cr_assert_eq(code, 0);
		double want = json_real_value(json_object_get(one, "step_time_s"));
		cr_expect_gt(want, 0);
		cr_expect_float_eq(json_real_value(json_object_get(row, "step_time_s")), want,
				   1e-12 * want);
		json_decref(one);
	}
	json_decref(cmp);
}

Test(tools, estimate_of_a_model_compiles_it_first)
{
	char args[1024];
	int code;
	snprintf(args, sizeof args,
		 "compile %s/tiny.xml --cluster %s/tiny-cluster.xml --batch 32 --json", DATA, DATA);
	json_t *one = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	double step = json_real_value(json_object_get(one, "step_time_s"));
	snprintf(args, sizeof args,
		 "estimate %s/tiny.xml --cluster %s/tiny-cluster.xml --batch 32 --tokens 3200 --json",
		 DATA, DATA);
	json_t *est = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	json_t *in = json_object_get(est, "inputs");
	cr_expect_float_eq(json_real_value(json_object_get(in, "step_time_s")), step, 1e-12 * step);
	cr_expect_float_eq(json_real_value(json_object_get(in, "steps")), 100.0, 1e-9);
	json_decref(one);
	json_decref(est);
}
