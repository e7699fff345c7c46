/*
 * cmd_compare.c -- `meshplan compare`: the same model compiled for several
 * clusters, one row each.
 */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "tools/tools.h"

static const char *usage_text =
	"usage: meshplan compare MODEL --cluster A [--nodes N] --cluster B [--nodes N] ...\n"
	"                        --batch GLOBAL [--set NAME=VALUE,...] [--json]\n"
	"\n"
	"Compiles MODEL for each cluster (as meshplan compile) and prints one row per\n"
	"cluster: the best plan's step time, throughput, TFLOPS per GPU, MFU, peak memory\n"
	"per device, its stages and the compile time.  A --nodes after a --cluster sets that\n"
	"cluster's node count; before any --cluster it applies to all.\n"
	"Exit: 0 every cluster has a plan, 1 some has none, 2 bad input.\n";

enum { MAX_CLUSTERS = 16 };

typedef struct {
	const char *name;
	long nodes;
	int status;          /* EXIT_* of this row */
	char why[256];
	double step_s, samples_per_s, tflops, mfu, peak_mem, mem, compile_s, price;
	int gpus, stages;
	int64_t microbatch;
	const char *gpu, *currency;
} Row;

static void compile_one(const char *model, const IrParamSet *ps, long batch, Row *row)
{
	IrError e;
	memset(&e, 0, sizeof e);
	IrCluster c;
	if (ir_cluster_load(row->name, (int)row->nodes, &c, &e)) {
		row->status = EXIT_BADINPUT;
		ir_error_str(&e, row->why, sizeof row->why);
		return;
	}
	row->gpus = ir_cluster_gpus(&c);
	row->mem = c.gpu.mem_bytes;
	row->price = c.price_per_gpu_hour;
	IrModelDoc *m = ir_model_open(model, &e);
	if (!m) {
		row->status = EXIT_BADINPUT;
		ir_error_str(&e, row->why, sizeof row->why);
		ir_cluster_free(&c);
		return;
	}
	PassInterOptions o = {.global_batch = batch, .recompute = -1, .tmax_gap = -1};
	IrPlan plan;
	IrGraph g;
	PassInterResult r;
	int rc = pass_inter_op(m, model, ps, &c, row->name, (int)row->nodes, &o, &plan, &g, &r, &e);
	ir_model_close(m);
	if (rc) {
		row->status = r.status == PASS_INFEASIBLE ? EXIT_INFEASIBLE : EXIT_BADINPUT;
		if (r.status == PASS_INFEASIBLE)
			snprintf(row->why, sizeof row->why, "%s", r.message);
		else
			ir_error_str(&e, row->why, sizeof row->why);
		ir_plan_free(&plan);
		ir_cluster_free(&c);
		return;
	}
	SimResult sr;
	if (sim_plan(&g, &c, &plan, &sr, &e)) {
		row->status = EXIT_INFEASIBLE;
		snprintf(row->why, sizeof row->why, "simulating the plan: %.200s", e.msg);
	} else {
		row->status = sr.fits ? EXIT_OK : EXIT_INFEASIBLE;
		if (!sr.fits)
			snprintf(row->why, sizeof row->why, "the plan does not fit memory");
		row->step_s = sr.step_time_s;
		row->samples_per_s = sr.samples_per_s;
		row->tflops = sr.tflops_per_gpu;
		row->mfu = sr.mfu;
		row->peak_mem = sr.peak_memory_bytes;
		row->stages = plan.nstages;
		row->microbatch = plan.microbatch;
		row->compile_s = r.compile_time_s;
		sim_result_free(&sr);
	}
	ir_plan_free(&plan);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

int cmd_compare(int argc, char **argv)
{
	const char *model = NULL;
	Row rows[MAX_CLUSTERS];
	int n = 0;
	long batch = 0, nodes_all = 0;
	bool json = false;
	IrParamSet ps = {0};
	IrError e;
	memset(rows, 0, sizeof rows);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool more = i + 1 < argc;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_text, stdout);
			return EXIT_OK;
		} else if (!strcmp(a, "--json")) {
			json = true;
		} else if (!strcmp(a, "--cluster") && more) {
			if (n == MAX_CLUSTERS)
				return tool_error("compare", EXIT_BADINPUT, "at most %d clusters",
						  MAX_CLUSTERS);
			rows[n++].name = argv[++i];
		} else if (!strcmp(a, "--nodes") && more) {
			long v;
			if (!tool_parse_int(argv[++i], &v) || v <= 0 || v > 1000000)
				return tool_error("compare", EXIT_BADINPUT,
						  "--nodes needs a positive integer, got '%s'", argv[i]);
			if (n)
				rows[n - 1].nodes = v;
			else
				nodes_all = v;
		} else if (!strcmp(a, "--batch") && more) {
			if (!tool_parse_int(argv[++i], &batch) || batch <= 0)
				return tool_error("compare", EXIT_BADINPUT,
						  "--batch needs a positive integer, got '%s'", argv[i]);
		} else if (!strcmp(a, "--set") && more) {
			if (ir_params_parse(&ps, argv[++i], &e))
				return tool_input_error(&e);
		} else if (a[0] == '-') {
			return tool_error("compare", EXIT_BADINPUT, "unknown or incomplete option '%s'", a);
		} else if (!model) {
			model = a;
		} else {
			return tool_error("compare", EXIT_BADINPUT, "unexpected argument '%s'", a);
		}
	}
	if (!model || !n || !batch)
		return tool_error("compare", EXIT_BADINPUT, "needs MODEL, --cluster and --batch\n%s",
				  usage_text);
	int code = EXIT_OK;
	for (int i = 0; i < n; i++) {
		if (!rows[i].nodes)
			rows[i].nodes = nodes_all;
		compile_one(model, &ps, batch, &rows[i]);
		if (rows[i].status == EXIT_BADINPUT) {
			fprintf(stderr, "meshplan compare: %s\n", rows[i].why);
			return EXIT_BADINPUT;
		}
		if (rows[i].status != EXIT_OK)
			code = EXIT_INFEASIBLE;
	}
	if (json) {
		json_t *arr = json_array();
		for (int i = 0; i < n; i++) {
			const Row *r = &rows[i];
			json_t *o = json_object();
			json_object_set_new(o, "cluster", json_string(r->name));
			json_object_set_new(o, "gpus", json_integer(r->gpus));
			json_object_set_new(o, "fits", json_boolean(r->status == EXIT_OK));
			if (r->status == EXIT_OK) {
				json_object_set_new(o, "step_time_s", json_real(r->step_s));
				json_object_set_new(o, "samples_per_s", json_real(r->samples_per_s));
				json_object_set_new(o, "tflops_per_gpu", json_real(r->tflops));
				json_object_set_new(o, "mfu", json_real(r->mfu));
				json_object_set_new(o, "peak_memory_bytes", json_real(r->peak_mem));
				json_object_set_new(o, "stages", json_integer(r->stages));
				json_object_set_new(o, "microbatch", json_integer(r->microbatch));
				json_object_set_new(o, "compile_time_s", json_real(r->compile_s));
				if (r->price > 0)
					json_object_set_new(o, "cost_per_step",
							    json_real(r->price * r->gpus * r->step_s / 3600));
			} else {
				json_object_set_new(o, "message", json_string(r->why));
			}
			json_array_append_new(arr, o);
		}
		json_t *top = json_object();
		json_object_set_new(top, "model", json_string(model));
		json_object_set_new(top, "global_batch", json_integer(batch));
		json_object_set_new(top, "clusters", arr);
		tool_print_json(top);
	} else {
		printf("%s, global batch %ld\n\n", model, batch);
		printf("  %-20s %5s %10s %10s %8s %6s %9s %6s %5s %9s\n", "cluster", "GPUs", "step s",
		       "samples/s", "TFLOPS", "MFU", "peak GiB", "stages", "mbs", "compile s");
		for (int i = 0; i < n; i++) {
			const Row *r = &rows[i];
			if (r->status != EXIT_OK) {
				printf("  %-20s %5d  no plan: %s\n", r->name, r->gpus, r->why);
				continue;
			}
			printf("  %-20s %5d %10.4f %10.2f %8.1f %5.1f%% %9.2f %6d %5lld %9.2f\n", r->name,
			       r->gpus, r->step_s, r->samples_per_s, r->tflops, 100 * r->mfu,
			       r->peak_mem / 1073741824.0, r->stages, (long long)r->microbatch,
			       r->compile_s);
		}
	}
	return code;
}
