/*
 * test_tools.c -- verbs working together through the command line:
 * a plan written by simulate feeds estimate with the same step time.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* ---- calibrate ---- */

#define CAL_GPT "hidden=256,heads=4,seq=128,vocab=512,layers=2"

Test(calibrate, fits_writes_a_cluster_with_the_profile_and_refuses_bad_rows)
{
	char dir[] = "/tmp/meshplan-cal-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char runs[256], out[256], bad[256], args[1200];
	snprintf(runs, sizeof runs, "%s/runs.tsv", dir);
	snprintf(out, sizeof out, "%s/cal.xml", dir);
	snprintf(bad, sizeof bad, "%s/bad.tsv", dir);
	FILE *f = fopen(runs, "w");
	/* the measured figures were set against the ILP's sharding (shard=ilp) */
	fprintf(f, "# two runs\n"
		   "a gpt 16 dp=8,tp=1,pp=1,mbs=2,shard=ilp step_s 0.00135 " CAL_GPT "\n"
		   "b gpt 8 dp=1,tp=8,pp=1,mbs=8,shard=ilp step_s 0.00128 " CAL_GPT "\n");
	fclose(f);
	snprintf(args, sizeof args, "calibrate %s --cluster dgx-a100 --fit gemm-scale -o %s --json",
		 runs, out);
	int code;
	json_t *j = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	/* both runs about 9% slower than the model: a GEMM factor below 1 that
	 * brings both within 1% */
	double s = test_num(json_object_get(j, "parameters"), "gemm-scale");
	cr_assert(s > 0.5 && s < 1, "%g", s);
	for (int i = 0; i < 2; i++) {
		json_t *x = json_array_get(json_object_get(j, "runs"), (size_t)i);
		cr_assert(test_num(x, "uncalibrated_s") < 0.93 * test_num(x, "measured_s"));
		cr_assert(fabs(test_num(x, "fitted_s") / test_num(x, "measured_s") - 1) < 0.01);
	}
	json_t *r = json_array_get(json_object_get(j, "runs"), 0);
	cr_assert_float_eq(test_num(r, "measured_s"), 0.00135, 1e-15);
	cr_assert(json_is_number(json_object_get(r, "leave_one_out_s")));
	/* the written cluster carries the fitted factor as its default profile */
	IrCluster c;
	IrError e;
	cr_assert_eq(ir_cluster_load(out, 1, &c, &e), 0, "%s", e.msg);
	cr_assert_str_eq(c.profile, "calibrated");
	cr_assert(fabs(c.gpu.gemm_scale / s - 1) < 1e-5, "%g vs %g", c.gpu.gemm_scale, s);
	ir_cluster_free(&c);
	char spec[300];
	snprintf(spec, sizeof spec, "%s:nope", out);
	cr_assert_neq(ir_cluster_load(spec, 1, &c, &e), 0);
	cr_assert(strstr(e.msg, "no profile 'nope'"), "%s", e.msg);
	json_decref(j);
	/* a bad row: file:line, exit 2 */
	f = fopen(bad, "w");
	fprintf(f, "# header\na gpt 16 dp=8,tp=1,pp=1,mbs=2 watts 3\n");
	fclose(f);
	char buf[2048];
	snprintf(args, sizeof args, "calibrate %s --cluster dgx-a100", bad);
	cr_assert_eq(test_run(args, buf, sizeof buf), 2);
	char want[300];
	snprintf(want, sizeof want, "%s:2:", bad);
	cr_assert(strstr(buf, want), "%s", buf);
	remove(runs);
	remove(out);
	remove(bad);
	rmdir(dir);
}

/* Is `name` the word in column `col` (0 or 1) of a non-comment line of path? */
static bool tsv_names(const char *path, const char *name, int col)
{
	FILE *f = fopen(path, "r");
	cr_assert(f, "%s", path);
	char line[2048];
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		char w[2][128];
		if (sscanf(line, "%127s %127s", w[0], w[1]) == 2)
			found = !strcmp(w[col], name);
	}
	fclose(f);
	return found;
}

/* The zoo's named profiles load, and each is fitted on its own calibration
 * runs only: every run it names is in its calibration file, from its paper
 * or release, and none is a validation run of bench/validation_runs.tsv.
 * dgx-a100 carries one profile per Megatron-LM paper (four A100 runs each),
 * dgx-h100 one for Megatron-Core r0.8.0 (the nine H100 runs of the
 * Megatron-LM README's scaling table, each of them). */
Test(tools, named_profiles_are_fitted_on_their_papers_calibration_runs_only)
{
	static const struct {
		const char *cluster, *name, *prefix, *runs_file;
		int runs;
	} prof[] = {
		{"dgx-a100", "megatron-2021", "n21-", "/bench/calibration_runs.tsv", 4},
		{"dgx-a100", "megatron-2022", "k22-", "/bench/calibration_runs.tsv", 4},
		{"dgx-h100", "megatron-core-2024", "mc08-", "/bench/calibration_runs_h100.tsv", 9},
	};
	for (size_t i = 0; i < sizeof prof / sizeof *prof; i++) {
		char path[512], runs_file[512], key[64], sel[64];
		snprintf(path, sizeof path, "%s/clusters/%s.xml", MESHPLAN_DATA_DIR, prof[i].cluster);
		snprintf(runs_file, sizeof runs_file, "%s%s", MESHPLAN_DATA_DIR, prof[i].runs_file);
		FILE *f = fopen(path, "r");
		cr_assert(f, "%s", path);
		static char text[1 << 16];
		size_t n = fread(text, 1, sizeof text - 1, f);
		fclose(f);
		text[n] = 0;
		snprintf(sel, sizeof sel, "%s:%s", prof[i].cluster, prof[i].name);
		IrCluster c;
		IrError e;
		cr_assert_eq(ir_cluster_load(sel, 1, &c, &e), 0, "%s", e.msg);
		cr_expect(c.gpu.gemm_scale > 0, "%s sets its GEMM factor", sel);
		ir_cluster_free(&c);
		snprintf(key, sizeof key, "<profile name=\"%s\"", prof[i].name);
		const char *p = strstr(text, key), *end = p ? strstr(p, "/>") : NULL;
		cr_assert(p && end, "%s is in the zoo file", sel);
		const char *from = strstr(p, "fitted-from=\"");
		cr_assert(from && from < end);
		cr_expect(!strncmp(from + 13, prof[i].runs_file + 1, strlen(prof[i].runs_file) - 1),
			  "%s: fitted from %.40s", sel, from + 13);
		const char *r = strstr(p, "runs=\"");
		cr_assert(r && r < end);
		r += 6;
		int runs = 0;
		size_t k0 = strlen(prof[i].prefix);
		while (*r && *r != '"') {
			char run[64];
			size_t k = strcspn(r, ",\"");
			cr_assert_lt(k, sizeof run);
			memcpy(run, r, k);
			run[k] = 0;
			r += k + (r[k] == ',');
			runs++;
			cr_expect(!strncmp(run, prof[i].prefix, k0), "%s: %s is not its paper's", sel,
				  run);
			cr_expect(tsv_names(runs_file, run, 0), "%s: %s is not a calibration run", sel,
				  run);
			cr_expect(!tsv_names(MESHPLAN_DATA_DIR "/bench/validation_runs.tsv", run, 1),
				  "%s: %s is a validation run", sel, run);
		}
		cr_expect_eq(runs, prof[i].runs, "%s names %d runs", sel, runs);
	}
}

/* The H100 calibration runs are the README's nine and no validation run:
 * each name is new to bench/validation_runs.tsv, and no validation row on
 * dgx-h100 has a model shape of the README's table (its hidden sizes). */
Test(tools, h100_calibration_runs_are_not_validation_runs)
{
	FILE *f = fopen(MESHPLAN_DATA_DIR "/bench/calibration_runs_h100.tsv", "r");
	cr_assert(f);
	char line[2048];
	int n = 0;
	while (fgets(line, sizeof line, f)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		char name[128];
		cr_assert_eq(sscanf(line, "%127s", name), 1);
		cr_expect(!tsv_names(MESHPLAN_DATA_DIR "/bench/validation_runs.tsv", name, 1),
			  "%s is a validation run", name);
		n++;
	}
	fclose(f);
	cr_expect_eq(n, 9, "the README's table has nine runs, the file %d", n);
	f = fopen(MESHPLAN_DATA_DIR "/bench/validation_runs.tsv", "r");
	cr_assert(f);
	static const char *hidden[] = {"hidden=2048,", "hidden=6144,", "hidden=7168,",
				       "hidden=10240,", "hidden=12288,", "hidden=16384,",
				       "hidden=18432,"};
	while (fgets(line, sizeof line, f)) {
		if (line[0] == '#' || !strstr(line, "dgx-h100"))
			continue;
		for (size_t i = 0; i < sizeof hidden / sizeof *hidden; i++)
			cr_expect(!strstr(line, hidden[i]), "a validation row has %s", hidden[i]);
	}
	fclose(f);
}

/* tflops-megatron-core turns a Megatron-Core TFLOP/s figure into a step time
 * by core_r0.8.0's count, 12 B s l h^2 (2 + s/h + f/h + V/2lh): the README's
 * 1.7B run (192 x 4096 tokens, 24 layers, 2048 wide, vocabulary 131072, 48
 * GPUs at 408.8 TFLOP/s; 19.6 aggregate petaFLOP/s as its table says) took
 * 8.8665e15 / (408.8e12 x 48) = 0.451854 s. */
Test(calibrate, megatron_core_tflops_is_read_by_the_release_s_flop_count)
{
	char dir[] = "/tmp/meshplan-calmc-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char runs[256], args[600];
	snprintf(runs, sizeof runs, "%s/runs.tsv", dir);
	FILE *f = fopen(runs, "w");
	fprintf(f, "mc08-1.7B gpt 192 dp=48,tp=1,pp=1,mbs=1,zero=1 tflops-megatron-core 408.8 "
		   "layers=24,hidden=2048,heads=16,seq=4096,vocab=131072,attention=fused\n");
	fclose(f);
	snprintf(args, sizeof args, "calibrate %s --cluster dgx-h100 --fit gemm-scale --json", runs);
	int code;
	json_t *j = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	double F = 12.0 * 192 * 4096 * 24 * 2048.0 * 2048.0 *
		   (2 + 4096 / 2048.0 + 4 + 131072 / (2 * 24 * 2048.0));
	cr_assert(fabs(408.8 * 48 / 1000 - 19.6) < 0.05);
	double want = F / (408.8e12 * 48);
	json_t *r = json_array_get(json_object_get(j, "runs"), 0);
	cr_assert_float_eq(test_num(r, "measured_s"), want, 1e-9 * want, "%g vs %g",
			   test_num(r, "measured_s"), want);
	cr_assert_float_eq(want, 0.451854, 1e-6);
	json_decref(j);
	remove(runs);
	rmdir(dir);
}
