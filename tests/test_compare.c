/*
 * test_compare.c -- `meshplan compare --tokens`: what a run of T tokens costs
 * per cluster, ordered by cost, each row equal to `estimate` of its plan.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/helpers.h"

#define DATA MESHPLAN_DATA_DIR "/tests/data"

Test(compare, each_rows_cost_is_estimate_of_its_plan)
{
	char dir[] = "/tmp/meshplan-compare-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char args[1024];
	snprintf(args, sizeof args,
		 "compare %s/tiny.xml --cluster %s/tiny-cluster.xml --cluster "
		 "%s/tiny-cluster-fast.xml --batch 16 --tokens 1e9 -o %s --json",
		 DATA, DATA, DATA, dir);
	int code;
	json_t *j = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	json_t *rows = json_object_get(j, "clusters");
	cr_assert_eq(json_array_size(rows), 2);
	double prev = -1;
	int cheapest = 0, fastest = 0;
	double best_days = INFINITY;
	for (size_t i = 0; i < json_array_size(rows); i++) {
		json_t *r = json_array_get(rows, i);
		json_t *run = json_object_get(r, "run");
		cr_assert_not_null(run);
		double cost = test_num(run, "cost");
		/* rows by cost */
		cr_expect_geq(cost, prev);
		prev = cost;
		cheapest += json_is_true(json_object_get(run, "cheapest"));
		fastest += json_is_true(json_object_get(run, "fastest"));
		best_days = fmin(best_days, test_num(run, "days"));
		/* the same run priced by estimate from the plan file */
		const char *plan = json_string_value(json_object_get(r, "plan"));
		cr_assert_not_null(plan);
		char eargs[1200];
		snprintf(eargs, sizeof eargs, "estimate %s --tokens 1e9 --json", plan);
		int ecode;
		json_t *est = test_run_json(eargs, &ecode);
		cr_assert_eq(ecode, 0);
		cr_expect_float_eq(cost, test_num(est, "cost"), 1e-9 * cost, "%s", plan);
		cr_expect_float_eq(test_num(run, "gpu_hours"), test_num(est, "gpu_hours"),
				   1e-9 * test_num(est, "gpu_hours"));
		cr_expect_float_eq(test_num(run, "days") * 86400, test_num(est, "wall_time_s"),
				   1e-9 * test_num(est, "wall_time_s"));
		cr_expect_float_eq(test_num(run, "energy_kwh"), test_num(est, "energy_kwh"),
				   1e-9 * test_num(est, "energy_kwh"));
		json_decref(est);
		unlink(plan);
	}
	/* the first row is the cheapest; one row is marked fastest, the one with
	 * the fewest days */
	cr_expect(json_is_true(json_object_get(json_object_get(json_array_get(rows, 0), "run"),
					       "cheapest")));
	cr_expect_eq(cheapest, 1);
	cr_expect_eq(fastest, 1);
	for (size_t i = 0; i < json_array_size(rows); i++) {
		json_t *run = json_object_get(json_array_get(rows, i), "run");
		if (json_is_true(json_object_get(run, "fastest")))
			cr_expect_eq(test_num(run, "days"), best_days);
	}
	rmdir(dir);
	json_decref(j);
}
