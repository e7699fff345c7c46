/*
 * bench_fidelity.c -- the simulator, calibrated on one set of published runs,
 * judged on others it never saw.
 *
 * 1. `meshplan calibrate bench/calibration_runs.tsv --cluster dgx-a100`: the
 *    only runs the profile is fitted on (Narayanan et al. 2021 Table 1:
 *    1.7B, 18.4B, 145.6B, 1008B; Korthikanti et al. 2022 full recomputation:
 *    22B, 175B, 530B, 1T).  Printed: each run's fitted and leave-one-out
 *    error (the calibration error).
 * 2. Every run of bench/validation_runs.tsv (each row citing its source) is
 *    simulated with `meshplan simulate --manual` on its cluster, once as the
 *    zoo has it and once with the fitted profile (the same factors written
 *    into that cluster's file: the profile describes software, so it goes
 *    with the run to other GPUs; docs/calibration.md).  Printed: the
 *    validation error, apart.
 *
 * Everything runs through the command line a user has, so the bench checks
 * what people get.  Anchor: every validation run within 10% and
 * their mean absolute error at most 6%.  Exits 0 when met, 1 when missed or
 * a run has no plan, 2 when it cannot read its input.
 *
 * usage: bench_fidelity [--calibration F] [--validation F] [--keep DIR]
 */
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "runtime-sim/sim.h"

#define ANCHOR_EACH 0.10
#define ANCHOR_MAE 0.06

typedef struct {
	char source[48], name[48], model[64], cluster[64], plan[256], metric[24], set[256];
	long batch;
	double value;
} Row;

static int read_rows(const char *path, Row *rows, int max)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char line[2048];
	int n = 0, lineno = 0;
	while (fgets(line, sizeof line, f) && n < max) {
		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		Row *r = &rows[n];
		memset(r, 0, sizeof *r);
		char val[64];
		int got = sscanf(line, "%47s %47s %63s %63s %ld %255s %23s %63s %255s", r->source,
				 r->name, r->model, r->cluster, &r->batch, r->plan, r->metric, val,
				 r->set);
		if (got < 8 || !(r->value = atof(val), r->value > 0)) {
			fprintf(stderr, "%s:%d: not a run (source name model cluster batch plan metric "
					"value [set])\n", path, lineno);
			fclose(f);
			return -1;
		}
		if (got < 9 || !strcmp(r->set, "-"))
			r->set[0] = 0;
		n++;
	}
	fclose(f);
	return n;
}

static long plan_key(const char *plan, const char *key)
{
	size_t k = strlen(key);
	for (const char *p = plan; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, key, k) && p[k] == '=')
			return strtol(p + k + 1, NULL, 10);
	return 0;
}

static json_t *run_json(const char *cmd, int *code)
{
	FILE *f = popen(cmd, "r");
	if (!f)
		return NULL;
	json_error_t je;
	json_t *j = json_loadf(f, 0, &je);
	int st = pclose(f);
	*code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return j;
}

static double num(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Copies a zoo cluster file to `out` with the fitted profile made its default. */
static int write_profiled(const char *zoo, const char *out, json_t *params)
{
	FILE *f = fopen(zoo, "r");
	if (!f)
		return -1;
	static char text[1 << 16];
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = 0;
	char *root = strstr(text, "<cluster"), *close = strstr(text, "</cluster>");
	if (!root || !close)
		return -1;
	char *root_end = strchr(root, '>');
	FILE *w = fopen(out, "w");
	if (!w)
		return -1;
	fwrite(text, 1, (size_t)(root_end - text), w);
	fprintf(w, " profile=\"calibrated\">");
	fwrite(root_end + 1, 1, (size_t)(close - root_end - 1), w);
	fprintf(w, "  <profile name=\"calibrated\" fitted-from=\"bench/calibration_runs.tsv "
		   "(bench_fidelity)\"");
	const char *k;
	json_t *v;
	json_object_foreach(params, k, v) fprintf(w, " %s=\"%.9g\"", k, json_number_value(v));
	fprintf(w, "/>\n%s", close);
	return fclose(w);
}

/* Megatron-LM's hardware FLOPs per step, 96 B s l h^2 (1 + s/6h + V/16lh). */
static double megatron_flops(const Row *r)
{
	IrError e;
	IrModelDoc *m = ir_model_open(r->model, &e);
	if (!m)
		return NAN;
	IrParamSet ps = {0};
	if (r->set[0])
		ir_params_parse(&ps, r->set, &e);
	int64_t s = 0, l = 0, h = 0, V = 0;
	ir_model_param(m, &ps, "seq", &s, &e);
	ir_model_param(m, &ps, "layers", &l, &e);
	ir_model_param(m, &ps, "hidden", &h, &e);
	ir_model_param(m, &ps, "vocab", &V, &e);
	ir_model_close(m);
	double S = (double)s, L = (double)l, H = (double)h;
	return 96.0 * (double)r->batch * S * L * H * H * (1 + S / (6 * H) + (double)V / (16 * L * H));
}

/* Simulates row r on `cluster`; its step time, and the measured step time. */
static int simulate(const char *bin, const Row *r, const char *cluster, int gpn, double *step,
		    double *measured, bool *fits)
{
	long gpus = plan_key(r->plan, "dp") * plan_key(r->plan, "tp") * plan_key(r->plan, "pp");
	char cmd[2048];
	snprintf(cmd, sizeof cmd,
		 "'%s' simulate %s --cluster %s --nodes %ld --batch %ld --manual %s%s%s --json "
		 "2>/dev/null", bin, r->model, cluster, (gpus + gpn - 1) / gpn, r->batch, r->plan,
		 r->set[0] ? " --set " : "", r->set);
	int code;
	json_t *j = run_json(cmd, &code);
	if (!j || (code != 0 && code != 1)) {
		fprintf(stderr, "%s: no plan (%s)\n", r->name, cmd);
		json_decref(j);
		return -1;
	}
	*step = num(j, "step_time_s");
	*fits = json_is_true(json_object_get(j, "fits"));
	double G = (double)gpus, x = r->value;
	double peak = NAN;
	if (num(j, "mfu") > 0)
		peak = num(j, "tflops_per_gpu") * 1e12 / num(j, "mfu");
	if (!strcmp(r->metric, "step_s"))
		*measured = x;
	else if (!strcmp(r->metric, "tflops"))
		*measured = num(j, "hw_flops_per_step") / (x * 1e12 * G);
	else if (!strcmp(r->metric, "tflops-model"))
		*measured = num(j, "model_flops_per_step") / (x * 1e12 * G);
	else if (!strcmp(r->metric, "mfu"))
		*measured = num(j, "model_flops_per_step") / (x * peak * G);
	else if (!strcmp(r->metric, "tflops-megatron"))
		*measured = megatron_flops(r) / (x * 1e12 * G);
	else
		*measured = NAN;
	json_decref(j);
	return isfinite(*step) && isfinite(*measured) ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *cal = MESHPLAN_DATA_DIR "/bench/calibration_runs.tsv";
	const char *val = MESHPLAN_DATA_DIR "/bench/validation_runs.tsv";
	const char *keep = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--calibration") && i + 1 < argc)
			cal = argv[++i];
		else if (!strcmp(argv[i], "--validation") && i + 1 < argc)
			val = argv[++i];
		else if (!strcmp(argv[i], "--keep") && i + 1 < argc)
			keep = argv[++i];
		else {
			fprintf(stderr, "usage: bench_fidelity [--calibration F] [--validation F] "
					"[--keep DIR]\n");
			return 2;
		}
	}
	char binbuf[1024], bin[1100], dir[256];
	snprintf(binbuf, sizeof binbuf, "%s", argv[0]);
	snprintf(bin, sizeof bin, "%s/meshplan", dirname(binbuf));
	if (keep) {
		snprintf(dir, sizeof dir, "%s", keep);
		mkdir(dir, 0755);
	} else {
		snprintf(dir, sizeof dir, "/tmp/bench_fidelity-XXXXXX");
		if (!mkdtemp(dir))
			return 2;
	}
	static Row rows[64];
	int n = read_rows(val, rows, 64);
	if (n <= 0) {
		fprintf(stderr, "bench_fidelity: cannot read validation runs from %s\n", val);
		return 2;
	}

	/* 1. calibration */
	char cmd[2048], a100[400];
	snprintf(a100, sizeof a100, "%s/dgx-a100.xml", dir);
	snprintf(cmd, sizeof cmd, "'%s' calibrate '%s' --cluster dgx-a100 -o '%s' --json", bin, cal,
		 a100);
	int code = -1;
	json_t *cj = run_json(cmd, &code);
	if (!cj || code) {
		fprintf(stderr, "bench_fidelity: calibration failed (%s)\n", cmd);
		return code == 2 ? 2 : 1;
	}
	json_t *params = json_object_get(cj, "parameters");
	printf("Calibration: %s on dgx-a100 (profile fitted by meshplan calibrate)\n\n", cal);
	printf("%-12s %10s | %9s %7s | %9s %7s | %9s %7s\n", "run", "measured s", "model s", "error",
	       "fitted s", "error", "left out", "error");
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(cj, "runs"), i, r) {
		double m = num(r, "measured_s"), u = num(r, "uncalibrated_s"), f = num(r, "fitted_s"),
		       l = num(r, "leave_one_out_s");
		printf("%-12s %10.4g | %9.4g %+6.1f%% | %9.4g %+6.1f%% | %9.4g %+6.1f%%\n",
		       json_string_value(json_object_get(r, "name")), m, u, 100 * (u / m - 1), f,
		       100 * (f / m - 1), l, 100 * (l / m - 1));
	}
	printf("calibration error (mean absolute): model %.1f%%, fitted %.1f%%, leave-one-out "
	       "%.1f%%\nprofile:", 100 * num(cj, "mae_uncalibrated"), 100 * num(cj, "mae_fitted"),
	       100 * num(cj, "mae_leave_one_out"));
	const char *k;
	json_t *v;
	json_object_foreach(params, k, v) printf(" %s %.4g", k, json_number_value(v));
	printf("\n\n");

	/* 2. validation */
	printf("Validation: %s (never fitted on)\n\n", val);
	printf("%-22s %-13s %-14s %6s | %9s %9s %7s | %9s %7s\n", "source", "run", "cluster", "GPUs",
	       "published", "model s", "error", "calib s", "error");
	double mae = 0, mae0 = 0;
	int counted = 0, missed = 0;
	for (int q = 0; q < n; q++) {
		const Row *w = &rows[q];
		IrCluster c;
		IrError e;
		if (ir_cluster_load(w->cluster, 1, &c, &e)) {
			fprintf(stderr, "%s: %s\n", w->name, e.msg);
			missed++;
			continue;
		}
		char prof[400];
		snprintf(prof, sizeof prof, "%s/%s.xml", dir, w->cluster);
		if (access(prof, R_OK) && write_profiled(c.file, prof, params)) {
			fprintf(stderr, "%s: cannot write %s\n", w->name, prof);
			ir_cluster_free(&c);
			return 2;
		}
		int gpn = c.gpus_per_node;
		ir_cluster_free(&c);
		long gpus = plan_key(w->plan, "dp") * plan_key(w->plan, "tp") * plan_key(w->plan, "pp");
		double s0, s1, meas, meas1;
		bool fit0, fit1;
		if (simulate(bin, w, w->cluster, gpn, &s0, &meas, &fit0) ||
		    simulate(bin, w, prof, gpn, &s1, &meas1, &fit1)) {
			printf("%-22s %-13s %-14s %6ld | no plan\n", w->source, w->name, w->cluster, gpus);
			missed++;
			continue;
		}
		double e0 = s0 / meas - 1, e1 = s1 / meas - 1;
		mae0 += fabs(e0);
		mae += fabs(e1);
		counted++;
		missed += fabs(e1) > ANCHOR_EACH;
		printf("%-22s %-13s %-14s %6ld | %9.4g %9.4g %+6.1f%% | %9.4g %+6.1f%%%s\n", w->source,
		       w->name, w->cluster, gpus, meas, s0, 100 * e0, s1, 100 * e1,
		       fit1 ? "" : " (does not fit)");
		fflush(stdout);
	}
	mae = counted ? mae / counted : NAN;
	printf("validation error (mean absolute, %d runs): model %.1f%%, calibrated %.1f%%\n", counted,
	       counted ? 100 * mae0 / counted : NAN, 100 * mae);
	bool met = !missed && counted && mae <= ANCHOR_MAE;
	printf("\nanchor: every validation run within %.0f%% (%d outside or without a plan) and "
	       "mean absolute error <= %.0f%% (%.1f%%): %s\n", 100 * ANCHOR_EACH, missed,
	       100 * ANCHOR_MAE, 100 * mae, met ? "met" : "missed");
	json_decref(cj);
	return met ? 0 : 1;
}
