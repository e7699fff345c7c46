/*
 * bench_fidelity.c -- the simulator, calibrated on one set of published runs
 * per GPU generation, judged on others it never saw.
 *
 * 1. One calibration per GPU, each by `meshplan calibrate` on runs of that
 *    GPU only, the only runs its profile is fitted on:
 *    A100 (dgx-a100): bench/calibration_runs.tsv, Narayanan et al. 2021
 *      Table 1 (1.7B, 18.4B, 145.6B, 1008B) and Korthikanti et al. 2022 full
 *      recomputation (22B, 175B, 530B, 1T);
 *    H100 (dgx-h100): bench/calibration_runs_h100.tsv, the Megatron-LM
 *      README's Megatron-Core r0.8.0 H100 table (1.7B ... 462B).
 *    Printed: each run's fitted and leave-one-out error (the calibration
 *    error) and the fitted profile.
 * 2. Every run of bench/validation_runs.tsv (each row citing its source) is
 *    simulated with `meshplan simulate --manual` on its cluster, once as the
 *    zoo has it and once with the profile calibrated on its own GPU (the same
 *    factors written into that cluster's file; a row on a GPU without a
 *    calibration counts as missed).  A row may also name GPU attributes of its
 *    software that differ from the calibration runs' (a cited kernel figure,
 *    e.g. FlashAttention-2's attention efficiency), applied in both
 *    simulations, never fitted.  Printed: the validation error, apart, and
 *    the profile each row used.
 *
 * Everything runs through the command line a user has, so the bench checks
 * what people get.  Anchor: every validation run within 10% and
 * their mean absolute error at most 6%.  Exits 0 when met, 1 when missed or
 * a run has no plan, 2 when it cannot read its input.
 *
 * usage: bench_fidelity [--calibration F] [--calibration-h100 F] [--validation F]
 *                       [--keep DIR]
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
	char gpu[256]; /* <gpu> attributes of the run's software, "k=v,k=v" ("" none) */
	long batch;
	double value;
} Row;

/* One calibration per GPU: the runs it is fitted on, on the zoo cluster they
 * ran on; a validation row uses the one of its cluster's GPU. */
typedef struct {
	const char *gpu, *cluster, *label;
	char runs[1024];
	json_t *fit; /* meshplan calibrate --json */
} Calibration;

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
		int got = sscanf(line, "%47s %47s %63s %63s %ld %255s %23s %63s %255s %255s",
				 r->source, r->name, r->model, r->cluster, &r->batch, r->plan,
				 r->metric, val, r->set, r->gpu);
		if (got < 8 || !(r->value = atof(val), r->value > 0)) {
			fprintf(stderr, "%s:%d: not a run (source name model cluster batch plan metric "
					"value [set [gpu]])\n", path, lineno);
			fclose(f);
			return -1;
		}
		if (got < 9 || !strcmp(r->set, "-"))
			r->set[0] = 0;
		if (got < 10 || !strcmp(r->gpu, "-"))
			r->gpu[0] = 0;
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

/* Copies a zoo cluster file to `out`, its <gpu> attributes set as `gpu` says
 * ("k=v,k=v": replaced where the element has k, else added) and, with
 * `params`, the fitted profile made its default. */
static int write_profiled(const char *zoo, const char *out, const char *gpu, json_t *params,
			  const char *from)
{
	FILE *f = fopen(zoo, "r");
	if (!f)
		return -1;
	static char text[1 << 16];
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = 0;
	char *root = strstr(text, "<cluster"), *close = strstr(text, "</cluster>");
	char *el = strstr(text, "<gpu ");
	if (!root || !close || !el)
		return -1;
	char spec[256];
	snprintf(spec, sizeof spec, "%s", gpu);
	for (char *kv = strtok(spec, ","); kv; kv = strtok(NULL, ",")) {
		char *eq = strchr(kv, '=');
		char *el_end = strchr(el, '>');
		if (!eq || !el_end)
			return -1;
		*eq = 0;
		char key[80], tail[1 << 16];
		snprintf(key, sizeof key, " %s=\"", kv);
		char *a = strstr(el, key);
		if (a && a < el_end) { /* replace the value */
			char *v = a + strlen(key), *q = strchr(v, '"');
			snprintf(tail, sizeof tail, "%s", q);
			snprintf(v, sizeof text - (size_t)(v - text), "%s%s", eq + 1, tail);
		} else { /* add the attribute before the element's end */
			char *at = el_end[-1] == '/' ? el_end - 1 : el_end;
			snprintf(tail, sizeof tail, "%s", at);
			snprintf(at, sizeof text - (size_t)(at - text), " %s=\"%s\"%s", kv, eq + 1,
				 tail);
		}
		root = strstr(text, "<cluster");
		close = strstr(text, "</cluster>");
	}
	char *root_end = strchr(root, '>');
	FILE *w = fopen(out, "w");
	if (!w)
		return -1;
	if (!params) {
		fputs(text, w);
		return fclose(w);
	}
	fwrite(text, 1, (size_t)(root_end - text), w);
	fprintf(w, " profile=\"calibrated\">");
	fwrite(root_end + 1, 1, (size_t)(close - root_end - 1), w);
	fprintf(w, "  <profile name=\"calibrated\" fitted-from=\"%s (bench_fidelity)\"", from);
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

/* Fits calibration k: `meshplan calibrate` on its runs and cluster, and prints
 * the fit.  0, or the exit code to leave with. */
static int calibrate(const char *bin, Calibration *k)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "'%s' calibrate '%s' --cluster %s --json", bin, k->runs,
		 k->cluster);
	int code = -1;
	k->fit = run_json(cmd, &code);
	if (!k->fit || code) {
		fprintf(stderr, "bench_fidelity: calibration failed (%s)\n", cmd);
		return code == 2 ? 2 : 1;
	}
	printf("Calibration %s: %s on %s (profile fitted by meshplan calibrate)\n\n", k->label,
	       k->runs, k->cluster);
	printf("%-12s %10s | %9s %7s | %9s %7s | %9s %7s\n", "run", "measured s", "model s", "error",
	       "fitted s", "error", "left out", "error");
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(k->fit, "runs"), i, r) {
		double m = num(r, "measured_s"), u = num(r, "uncalibrated_s"), f = num(r, "fitted_s"),
		       l = num(r, "leave_one_out_s");
		printf("%-12s %10.4g | %9.4g %+6.1f%% | %9.4g %+6.1f%% | %9.4g %+6.1f%%\n",
		       json_string_value(json_object_get(r, "name")), m, u, 100 * (u / m - 1), f,
		       100 * (f / m - 1), l, 100 * (l / m - 1));
	}
	printf("calibration error (mean absolute): model %.1f%%, fitted %.1f%%, leave-one-out "
	       "%.1f%%\nprofile %s:", 100 * num(k->fit, "mae_uncalibrated"),
	       100 * num(k->fit, "mae_fitted"), 100 * num(k->fit, "mae_leave_one_out"), k->label);
	const char *key;
	json_t *v;
	json_object_foreach(json_object_get(k->fit, "parameters"), key, v)
		printf(" %s %.4g", key, json_number_value(v));
	printf("\n\n");
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	static Calibration cal[] = {
		{"A100-SXM4-80GB", "dgx-a100", "a100", MESHPLAN_DATA_DIR "/bench/calibration_runs.tsv",
		 NULL},
		{"H100-SXM5-80GB", "dgx-h100", "h100",
		 MESHPLAN_DATA_DIR "/bench/calibration_runs_h100.tsv", NULL},
	};
	enum { NCAL = sizeof cal / sizeof *cal };
	const char *val = MESHPLAN_DATA_DIR "/bench/validation_runs.tsv";
	const char *keep = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--calibration") && i + 1 < argc)
			snprintf(cal[0].runs, sizeof cal[0].runs, "%s", argv[++i]);
		else if (!strcmp(argv[i], "--calibration-h100") && i + 1 < argc)
			snprintf(cal[1].runs, sizeof cal[1].runs, "%s", argv[++i]);
		else if (!strcmp(argv[i], "--validation") && i + 1 < argc)
			val = argv[++i];
		else if (!strcmp(argv[i], "--keep") && i + 1 < argc)
			keep = argv[++i];
		else {
			fprintf(stderr, "usage: bench_fidelity [--calibration F] [--calibration-h100 F] "
					"[--validation F] [--keep DIR]\n");
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

	/* 1. calibration, one per GPU */
	for (int k = 0; k < NCAL; k++) {
		int code = calibrate(bin, &cal[k]);
		if (code)
			return code;
	}

	/* 2. validation */
	printf("Validation: %s (never fitted on)\n\n", val);
	printf("%-22s %-13s %-14s %6s %-7s | %9s %9s %7s | %9s %7s\n", "source", "run", "cluster",
	       "GPUs", "profile", "published", "model s", "error", "calib s", "error");
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
		long gpus = plan_key(w->plan, "dp") * plan_key(w->plan, "tp") * plan_key(w->plan, "pp");
		const Calibration *k = NULL;
		for (int i = 0; i < NCAL && !k; i++)
			if (!strcmp(c.gpu.name, cal[i].gpu))
				k = &cal[i];
		if (!k) {
			printf("%-22s %-13s %-14s %6ld %-7s | no calibration for %s\n", w->source, w->name,
			       w->cluster, gpus, "-", c.gpu.name);
			ir_cluster_free(&c);
			missed++;
			continue;
		}
		/* the zoo's file with the row's GPU attributes (uncalibrated), and
		 * that with the profile of its GPU */
		char base[400], prof[400];
		snprintf(base, sizeof base, "%s/%s.xml", dir, w->name);
		snprintf(prof, sizeof prof, "%s/%s-%s.xml", dir, w->name, k->label);
		if ((w->gpu[0] && write_profiled(c.file, base, w->gpu, NULL, NULL)) ||
		    write_profiled(c.file, prof, w->gpu, json_object_get(k->fit, "parameters"),
				   k->runs)) {
			fprintf(stderr, "%s: cannot write %s\n", w->name, prof);
			ir_cluster_free(&c);
			return 2;
		}
		int gpn = c.gpus_per_node;
		ir_cluster_free(&c);
		double s0, s1, meas, meas1;
		bool fit0, fit1;
		if (simulate(bin, w, w->gpu[0] ? base : w->cluster, gpn, &s0, &meas, &fit0) ||
		    simulate(bin, w, prof, gpn, &s1, &meas1, &fit1)) {
			printf("%-22s %-13s %-14s %6ld %-7s | no plan\n", w->source, w->name, w->cluster,
			       gpus, k->label);
			missed++;
			continue;
		}
		double e0 = s0 / meas - 1, e1 = s1 / meas - 1;
		mae0 += fabs(e0);
		mae += fabs(e1);
		counted++;
		missed += fabs(e1) > ANCHOR_EACH;
		printf("%-22s %-13s %-14s %6ld %-7s | %9.4g %9.4g %+6.1f%% | %9.4g %+6.1f%%%s%s%s\n",
		       w->source, w->name, w->cluster, gpus, k->label, meas, s0, 100 * e0, s1,
		       100 * e1, fit1 ? "" : " (does not fit)", w->gpu[0] ? " gpu " : "", w->gpu);
		fflush(stdout);
	}
	mae = counted ? mae / counted : NAN;
	printf("validation error (mean absolute, %d runs): model %.1f%%, calibrated %.1f%%\n", counted,
	       counted ? 100 * mae0 / counted : NAN, 100 * mae);
	bool met = !missed && counted && mae <= ANCHOR_MAE;
	printf("\nanchor: every validation run within %.0f%% (%d outside or without a plan) and "
	       "mean absolute error <= %.0f%% (%.1f%%): %s\n", 100 * ANCHOR_EACH, missed,
	       100 * ANCHOR_MAE, 100 * mae, met ? "met" : "missed");
	for (int k = 0; k < NCAL; k++)
		json_decref(cal[k].fit);
	return met ? 0 : 1;
}
