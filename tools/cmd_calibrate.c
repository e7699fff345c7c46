/*
 * cmd_calibrate.c -- `meshplan calibrate RUNS.tsv --cluster C`: fits a
 * cluster's software profile (at most four named factors) to runs measured
 * on it, prints the fit and each run's leave-one-out error, and writes a
 * cluster file that carries the profile and where it came from.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/tools.h"

static const char *usage_text =
	"usage: meshplan calibrate RUNS.tsv --cluster C [-o CALIBRATED.xml] [--profile NAME]\n"
	"                          [--fit PARAM,...] [--time-limit S] [--json]\n"
	"\n"
	"Fits the cluster's software profile to runs measured on it, by least squares on\n"
	"log(predicted / measured) step time, and prints the fitted values, each run's\n"
	"error before and after, and its leave-one-out error (fitted without that run).\n"
	"PARAM (at most four, default all): gemm-scale (factor on GEMM and fused-attention\n"
	"efficiency), memory-scale (on HBM efficiency), comm-scale (on NCCL bus bandwidth\n"
	"efficiency), kernel-overhead-us (added to every kernel).\n"
	"RUNS.tsv: one run a line, whitespace-separated, '#' comments:\n"
	"  name model batch plan metric value [set]\n"
	"plan: the keys of simulate --manual (dp=,tp=,pp=,mbs=,...); GPUs = dp*tp*pp.\n"
	"metric: step_s (seconds per step), tflops (hardware TFLOPS per GPU as the\n"
	"simulator counts FLOPs), tflops-megatron (hardware TFLOPS per GPU by Megatron-LM's\n"
	"count 96 B s l h^2 (1 + s/6h + V/16lh), needs params seq, layers, hidden,\n"
	"vocab), tflops-megatron-core (model TFLOPS per GPU by Megatron-Core's count\n"
	"12 B s l h^2 (2 + s/h + f/h + V/2lh), multi-head attention and a plain MLP of\n"
	"width f, needs also ffn), mfu (model FLOPs over peak, a fraction).\n"
	"set: --set overrides or '-'.\n"
	"-o writes C's file with the profile added (<profile name=NAME ...>, default name\n"
	"'calibrated') and made the default; 'C:NAME' selects a profile anywhere a cluster\n"
	"is named.  Exit: 0, 1 a run has no plan, 2 bad input.\n";

typedef struct {
	char name[48], model[96], plan[256], metric[24], set[256];
	long batch;
	double value;
	int line;
} Row;

static int read_rows(const char *path, Row **out, int *n, IrError *e)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return ir_fail(e, path, 0, "cannot read: %s", strerror(errno));
	int cap = 16;
	Row *rows = malloc(sizeof *rows * (size_t)cap);
	char line[1024];
	int lineno = 0, k = 0, rc = 0;
	while (!rc && fgets(line, sizeof line, f)) {
		lineno++;
		char *p = line + strspn(line, " \t");
		if (*p == '#' || *p == '\n' || !*p)
			continue;
		if (k == cap)
			rows = realloc(rows, sizeof *rows * (size_t)(cap *= 2));
		Row *r = &rows[k];
		memset(r, 0, sizeof *r);
		char val[64];
		int got = sscanf(p, "%47s %95s %ld %255s %23s %63s %255s", r->name, r->model, &r->batch,
				 r->plan, r->metric, val, r->set);
		if (got < 6 || r->batch <= 0 || !tool_parse_double(val, &r->value) ||
		    !(r->value > 0)) {
			rc = ir_fail(e, path, lineno, "not a run (name model batch plan metric value "
				     "[set])");
			break;
		}
		if (strcmp(r->metric, "step_s") && strcmp(r->metric, "tflops") &&
		    strcmp(r->metric, "tflops-megatron") &&
		    strcmp(r->metric, "tflops-megatron-core") && strcmp(r->metric, "mfu")) {
			rc = ir_fail(e, path, lineno, "metric '%s' is not step_s, tflops, "
				     "tflops-megatron, tflops-megatron-core or mfu", r->metric);
			break;
		}
		if (got < 7 || !strcmp(r->set, "-"))
			r->set[0] = 0;
		r->line = lineno;
		k++;
	}
	fclose(f);
	if (!rc && !k)
		rc = ir_fail(e, path, 0, "no runs");
	if (rc) {
		free(rows);
		return -1;
	}
	*out = rows;
	*n = k;
	return 0;
}

/* GPUs of a plan's keys: dp * tp * pp (0 when a key is missing). */
static long plan_gpus(const char *plan)
{
	long v[3] = {0, 0, 0};
	static const char *keys[3] = {"dp=", "tp=", "pp="};
	for (int i = 0; i < 3; i++) {
		const char *p = plan;
		while ((p = strstr(p, keys[i])) && p != plan && p[-1] != ',')
			p++;
		if (p)
			v[i] = strtol(p + 3, NULL, 10);
	}
	return v[0] * v[1] * v[2];
}

/* The FLOPs of a step by the count a Megatron paper or release reports.
 * core false: Megatron-LM's hardware FLOPs (Narayanan et al. 2021, eq. 3,
 * with full recomputation), 96 B s l h^2 (1 + s/6h + V/16lh).  core true:
 * Megatron-Core's model FLOPs (megatron/training/training.py,
 * num_floating_point_operations, core_r0.8.0) for multi-head attention and a
 * plain (not gated) MLP of width f: 12 B s l h^2 (2 + s/h + f/h + V/2lh). */
static int megatron_flops(const char *model, const IrParamSet *ps, double B, bool core,
			  double *out, IrError *e)
{
	IrModelDoc *m = ir_model_open(model, e);
	if (!m)
		return -1;
	int64_t s, l, h, V, f = 0;
	int rc = ir_model_param(m, ps, "seq", &s, e) || ir_model_param(m, ps, "layers", &l, e) ||
		 ir_model_param(m, ps, "hidden", &h, e) || ir_model_param(m, ps, "vocab", &V, e) ||
		 (core && ir_model_param(m, ps, "ffn", &f, e));
	ir_model_close(m);
	if (rc)
		return -1;
	double S = (double)s, L = (double)l, H = (double)h;
	if (core)
		*out = 12.0 * B * S * L * H * H *
		       (2 + S / H + (double)f / H + (double)V / (2 * L * H));
	else
		*out = 96.0 * B * S * L * H * H * (1 + S / (6 * H) + (double)V / (16 * L * H));
	return 0;
}

typedef struct {
	IrPlan plan;
	IrGraph g;
	IrCluster c;
	long gpus;
	double measured_s, base_s;
} Built;

/* Builds run r's plan and its measured step time. */
static int build(const Row *r, const char *cluster, double time_limit, const char *file,
		 Built *b, IrError *e)
{
	memset(b, 0, sizeof *b);
	b->gpus = plan_gpus(r->plan);
	if (b->gpus <= 0)
		return ir_fail(e, file, r->line, "plan '%s' needs dp, tp and pp", r->plan);
	if (ir_cluster_load(cluster, 1, &b->c, e))
		return -1;
	int nodes = (int)((b->gpus + b->c.gpus_per_node - 1) / b->c.gpus_per_node);
	ir_cluster_free(&b->c);
	if (ir_cluster_load(cluster, nodes, &b->c, e))
		return -1;
	double v0[SIM_CAL_NPARAM];
	sim_cal_default(v0);
	sim_cal_apply(&b->c, v0); /* the fit starts from the uncalibrated model */
	IrParamSet ps = {0};
	if (r->set[0] && ir_params_parse(&ps, r->set, e)) {
		ir_cluster_free(&b->c);
		return ir_fail(e, file, r->line, "%s", e->msg);
	}
	SimResult res;
	int code = tool_manual_plan(r->model, &ps, &b->c, cluster, r->batch, r->plan, time_limit,
				    &b->plan, &b->g, &res, e);
	if (code) {
		char msg[sizeof e->msg];
		snprintf(msg, sizeof msg, "%s", e->msg);
		ir_fail(e, file, r->line, "run %s: %s", r->name, msg);
		ir_plan_free(&b->plan);
		ir_cluster_free(&b->c);
		return code;
	}
	b->base_s = res.step_time_s;
	double G = (double)b->gpus, x = r->value;
	if (!strcmp(r->metric, "step_s"))
		b->measured_s = x;
	else if (!strcmp(r->metric, "tflops"))
		b->measured_s = res.hw_flops / (x * 1e12 * G);
	else if (!strcmp(r->metric, "mfu"))
		b->measured_s = res.model_flops / (x * b->c.gpu.peak_flops[IR_BF16] * G);
	else {
		double F = 0;
		if (megatron_flops(r->model, &ps, (double)r->batch,
				   !strcmp(r->metric, "tflops-megatron-core"), &F, e))
			code = -1;
		b->measured_s = F / (x * 1e12 * G);
	}
	sim_result_free(&res);
	if (code) {
		ir_graph_free(&b->g);
		ir_plan_free(&b->plan);
		ir_cluster_free(&b->c);
	}
	return code;
}

/* The cluster file with <profile> added (or replaced) and made the default;
 * written to a temporary file beside `out`, checked by loading it, renamed. */
static int write_cluster(const char *src, const char *out, const char *profile,
			 const double *v, unsigned mask, const char *runs_file, const Row *rows,
			 int n, IrError *e)
{
	FILE *f = fopen(src, "r");
	if (!f)
		return ir_fail(e, src, 0, "cannot read: %s", strerror(errno));
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	char buf[4096];
	size_t k;
	while ((k = fread(buf, 1, sizeof buf, f)) > 0)
		fwrite(buf, 1, k, mem);
	fclose(f);
	fclose(mem);
	/* drop an earlier profile of this name */
	char key[128];
	snprintf(key, sizeof key, "<profile name=\"%s\"", profile);
	char *old = strstr(text, key);
	if (old) {
		char *end = strstr(old, "/>");
		if (end)
			memmove(old, end + 2, strlen(end + 2) + 1);
	}
	char *close = strstr(text, "</cluster>");
	char *root = strstr(text, "<cluster");
	if (!close || !root) {
		free(text);
		return ir_fail(e, src, 0, "not a cluster file");
	}
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp%d", out, (int)getpid());
	FILE *w = fopen(tmp, "w");
	if (!w) {
		free(text);
		return ir_fail(e, out, 0, "cannot write: %s", strerror(errno));
	}
	/* the root element, its profile= attribute set to this profile */
	char *root_end = strchr(root, '>');
	fwrite(text, 1, (size_t)(root - text), w);
	char *attr = strstr(root, " profile=\"");
	if (attr && attr < root_end) {
		char *q = strchr(attr + 10, '"');
		fwrite(root, 1, (size_t)(attr - root), w);
		fwrite(q + 1, 1, (size_t)(root_end - q - 1), w);
	} else {
		fwrite(root, 1, (size_t)(root_end - root), w);
	}
	fprintf(w, " profile=\"%s\">", profile);
	fwrite(root_end + 1, 1, (size_t)(close - root_end - 1), w);
	time_t now = time(NULL);
	char date[32];
	strftime(date, sizeof date, "%Y-%m-%dT%H:%MZ", gmtime(&now));
	fprintf(w, "  <!-- fitted by meshplan calibrate: least squares on log step time -->\n");
	fprintf(w, "  <profile name=\"%s\"", profile);
	for (int j = 0; j < SIM_CAL_NPARAM; j++)
		if (mask & (1u << j))
			fprintf(w, " %s=\"%.6g\"", sim_cal_name(j), v[j]);
	fprintf(w, "\n           fitted-from=\"%s\" fitted-on=\"%s\" runs=\"", runs_file, date);
	for (int i = 0; i < n; i++)
		fprintf(w, "%s%s", i ? "," : "", rows[i].name);
	fprintf(w, "\"/>\n");
	fputs(close, w);
	free(text);
	if (ferror(w) | fclose(w)) {
		remove(tmp);
		return ir_fail(e, out, 0, "cannot write: %s", strerror(errno));
	}
	IrCluster chk;
	if (ir_cluster_load(tmp, 0, &chk, e)) {
		remove(tmp);
		return -1;
	}
	ir_cluster_free(&chk);
	if (rename(tmp, out)) {
		remove(tmp);
		return ir_fail(e, out, 0, "cannot write: %s", strerror(errno));
	}
	return 0;
}

int cmd_calibrate(int argc, char **argv)
{
	const char *runs_file = NULL, *cluster = NULL, *out = NULL, *profile = "calibrated";
	unsigned mask = (1u << SIM_CAL_NPARAM) - 1;
	double time_limit = 30;
	bool json = false;
	IrError e;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		bool more = i + 1 < argc;
		if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
			fputs(usage_text, stdout);
			return EXIT_OK;
		} else if (!strcmp(s, "--json")) {
			json = true;
		} else if (!strcmp(s, "--cluster") && more) {
			cluster = argv[++i];
		} else if (!strcmp(s, "-o") && more) {
			out = argv[++i];
		} else if (!strcmp(s, "--profile") && more) {
			profile = argv[++i];
			if (!*profile || strspn(profile, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"
						 "TUVWXYZ0123456789_.-") != strlen(profile))
				return tool_error("calibrate", EXIT_BADINPUT,
						  "--profile: '%s' is not a name ([A-Za-z0-9_.-]+)",
						  profile);
		} else if (!strcmp(s, "--fit") && more) {
			if (sim_cal_parse(argv[++i], &mask))
				return tool_error("calibrate", EXIT_BADINPUT,
						  "--fit: '%s' is not a list of gemm-scale, "
						  "memory-scale, comm-scale, kernel-overhead-us", argv[i]);
		} else if (!strcmp(s, "--time-limit") && more) {
			if (!tool_parse_double(argv[++i], &time_limit) || time_limit <= 0)
				return tool_error("calibrate", EXIT_BADINPUT,
						  "--time-limit needs a positive number of seconds");
		} else if (s[0] == '-') {
			return tool_error("calibrate", EXIT_BADINPUT, "unknown or incomplete option '%s'",
					  s);
		} else if (!runs_file) {
			runs_file = s;
		} else {
			return tool_error("calibrate", EXIT_BADINPUT, "unexpected argument '%s'", s);
		}
	}
	if (!runs_file || !cluster)
		return tool_error("calibrate", EXIT_BADINPUT, "name RUNS.tsv and --cluster (see --help)");
	Row *rows = NULL;
	int n = 0;
	if (read_rows(runs_file, &rows, &n, &e))
		return tool_input_error(&e);
	Built *b = calloc((size_t)n, sizeof *b);
	SimCalRun *runs = calloc((size_t)n, sizeof *runs);
	double *fit_s = calloc((size_t)n, sizeof(double)), *loo_s = calloc((size_t)n, sizeof(double));
	int code = EXIT_OK, built = 0;
	for (int i = 0; i < n && !code; i++) {
		code = build(&rows[i], cluster, time_limit, runs_file, &b[i], &e);
		if (code) {
			code = code == EXIT_INFEASIBLE ? EXIT_INFEASIBLE : EXIT_BADINPUT;
			tool_input_error(&e);
			break;
		}
		built++;
		runs[i] = (SimCalRun){rows[i].name, &b[i].g, &b[i].plan, &b[i].c, b[i].measured_s};
	}
	double v[SIM_CAL_NPARAM];
	sim_cal_default(v);
	SimCalFit fit = {.pred_s = fit_s};
	int nparam = __builtin_popcount(mask);
	if (!code && sim_calibrate(runs, n, mask, -1, v, &fit, &e))
		code = tool_input_error(&e);
	/* leave-one-out: fitted without run i, from the full fit */
	for (int i = 0; i < n && !code; i++) {
		double w[SIM_CAL_NPARAM];
		memcpy(w, v, sizeof w);
		SimCalFit f = {0};
		double *p = calloc((size_t)n, sizeof(double));
		f.pred_s = p;
		if (n - 1 < 1 || sim_calibrate(runs, n, mask, i, w, &f, &e))
			loo_s[i] = NAN;
		else
			loo_s[i] = p[i];
		free(p);
	}
	if (!code && out) {
		if (write_cluster(b[0].c.file, out, profile, v, mask, runs_file, rows, n, &e))
			code = tool_input_error(&e);
	}
	if (!code) {
		double mae0 = 0, mae1 = 0, mae2 = 0;
		int nloo = 0;
		json_t *o = json ? json_object() : NULL, *jr = json ? json_array() : NULL;
		if (!json) {
			printf("calibrating %s on %d runs from %s (%d parameter%s, least squares on "
			       "log step time)\n\n", cluster, n, runs_file, nparam, nparam == 1 ? "" : "s");
			printf("%-10s %6s %10s | %10s %7s | %10s %7s | %10s %7s\n", "run", "GPUs",
			       "measured s", "model s", "error", "fitted s", "error", "left out s",
			       "error");
		}
		for (int i = 0; i < n; i++) {
			double m = b[i].measured_s;
			double e0 = b[i].base_s / m - 1, e1 = fit_s[i] / m - 1, e2 = loo_s[i] / m - 1;
			mae0 += fabs(e0);
			mae1 += fabs(e1);
			if (isfinite(e2)) {
				mae2 += fabs(e2);
				nloo++;
			}
			if (json) {
				json_t *x = json_object();
				json_object_set_new(x, "name", json_string(rows[i].name));
				json_object_set_new(x, "gpus", json_integer(b[i].gpus));
				json_object_set_new(x, "measured_s", json_real(m));
				json_object_set_new(x, "uncalibrated_s", json_real(b[i].base_s));
				json_object_set_new(x, "fitted_s", json_real(fit_s[i]));
				json_object_set_new(x, "leave_one_out_s",
						    isfinite(loo_s[i]) ? json_real(loo_s[i]) : json_null());
				json_array_append_new(jr, x);
			} else {
				printf("%-10s %6ld %10.4g | %10.4g %+6.1f%% | %10.4g %+6.1f%% | %10.4g "
				       "%+6.1f%%\n", rows[i].name, b[i].gpus, m, b[i].base_s, 100 * e0,
				       fit_s[i], 100 * e1, loo_s[i], 100 * e2);
			}
		}
		if (json) {
			json_t *p = json_object();
			for (int j = 0; j < SIM_CAL_NPARAM; j++)
				if (mask & (1u << j))
					json_object_set_new(p, sim_cal_name(j), json_real(v[j]));
			json_object_set_new(o, "cluster", json_string(cluster));
			json_object_set_new(o, "profile", json_string(profile));
			json_object_set_new(o, "parameters", p);
			json_object_set_new(o, "runs", jr);
			json_object_set_new(o, "mae_uncalibrated", json_real(mae0 / n));
			json_object_set_new(o, "mae_fitted", json_real(mae1 / n));
			json_object_set_new(o, "mae_leave_one_out",
					    nloo ? json_real(mae2 / nloo) : json_null());
			json_object_set_new(o, "iterations", json_integer(fit.iterations));
			json_object_set_new(o, "converged", json_boolean(fit.converged));
			if (out)
				json_object_set_new(o, "written", json_string(out));
			tool_print_json(o);
		} else {
			printf("mean absolute error: model %.1f%%, fitted %.1f%%, leave-one-out %.1f%%\n",
			       100 * mae0 / n, 100 * mae1 / n, nloo ? 100 * mae2 / nloo : NAN);
			printf("\nprofile %s (%d iterations%s):\n", profile, fit.iterations,
			       fit.converged ? "" : ", stopped before converging");
			for (int j = 0; j < SIM_CAL_NPARAM; j++)
				if (mask & (1u << j))
					printf("  %-20s %.4g\n", sim_cal_name(j), v[j]);
			if (out)
				printf("written to %s (use --cluster %s, or %s:%s)\n", out, out, out,
				       profile);
		}
	}
	for (int i = 0; i < built; i++) {
		ir_graph_free(&b[i].g);
		ir_plan_free(&b[i].plan);
		ir_cluster_free(&b[i].c);
	}
	free(b);
	free(runs);
	free(fit_s);
	free(loo_s);
	free(rows);
	return code;
}
