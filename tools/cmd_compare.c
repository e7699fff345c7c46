/*
 * cmd_compare.c -- `meshplan compare`: the same model compiled for several
 * clusters, one row each; with --against, the best hand-written grid plan
 * on each cluster beside the compiled one.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "passes/passes.h"
#include "tools/tools.h"

static const char *VERB = "compare";

enum { O_CLUSTER, O_NODES, O_BATCH, O_AGAINST, O_TOKENS, O_OUT, O_SET, O_JSON, O_QUIET,
       O_TIME_LIMIT, O_HELP, NOPT };

/* No progress on stderr (--quiet); each compile's wall-clock limit (0: none). */
static bool quiet;
static double time_limit;

static const ToolOpt opts[NOPT] = {
	[O_CLUSTER] = {"cluster", 0, TOOL_STR, "C", TOOL_ANY, true, 0,
		       "a cluster to compile for (file or zoo name; repeat, at most 16)"},
	[O_NODES] = {"nodes", 0, TOOL_INT, "N", 1, false, 1000000, true, 0,
		     "node count of the --cluster before it (before any: all)"},
	[O_BATCH] = {"batch", 0, TOOL_INT, "GLOBAL", 1, false, 1 << 30, false, 0,
		     "samples per training step (required)"},
	[O_AGAINST] = {"against", 0, TOOL_STR, "manual|data|expert", TOOL_ANY, false, 0,
		       "the best hand-written grid plan beside each compiled one"},
	[O_TOKENS] = {"tokens", 0, TOOL_NUM, "T", 0, true, 1e18, false, 0,
		      "per cluster: tokens/s, GPU-hours, days, cost and energy of T tokens "
		      "(estimate's defaults); rows by cost"},
	[O_OUT] = {"out", 'o', TOOL_STR, "DIR", TOOL_ANY, false, 0,
		   "write each cluster's plan to DIR/CLUSTER-GPUSgpus.xml"},
	[O_SET] = {"set", 0, TOOL_PARAMS, "NAME=VALUE,...", TOOL_ANY, true, 0,
		   "override model parameters"},
	[O_JSON] = {"json", 0, TOOL_FLAG, NULL, TOOL_ANY, false, 0, "one JSON object on stdout"},
	[O_TIME_LIMIT] = {"time-limit", 0, TOOL_NUM, "S", TOOL_POS, false, 0,
			  "stop each cluster's search after S seconds, keeping its best plan so "
			  "far (marked cut)"},
	[O_QUIET] = {"quiet", 'q', TOOL_FLAG, NULL, TOOL_ANY, false, 0,
		     "no progress on stderr (by default: a live line at a terminal, else a line "
		     "every 5 s, with an ETA)"},
	[O_HELP] = {"help", 'h', TOOL_FLAG, NULL, TOOL_ANY, false, 0, "this text"},
};

static void usage(FILE *f)
{
	fputs("usage: meshplan compare MODEL --cluster A [--nodes N] --cluster B [--nodes N] ...\n"
	      "                        --batch GLOBAL [options]\n"
	      "\n"
	      "Compiles MODEL for each cluster (as meshplan compile) and prints one row per\n"
	      "cluster: the best plan's step time, throughput, TFLOPS per GPU, MFU, peak memory\n"
	      "per device, its stages and the compile time.  A --nodes after a --cluster sets that\n"
	      "cluster's node count; before any --cluster it applies to all.\n"
	      "\n"
	      "--against puts the fastest hand-written grid plan that fits beside each compiled\n"
	      "one (simulated the same way), and the compiled plan's speedup over it:\n"
	      "  manual  every dp x tp x pp (tp within a node) and microbatch 1, 2, 4 .., stages\n"
	      "          of equal layers, each dp x tp mesh sharded by the ILP (Megatron-style)\n"
	      "  data    tp = 1, stages sharded data-parallel: data + pipeline parallelism\n"
	      "  expert  pp = 1, model state replicated but the experts, split over all GPUs\n"
	      "          (or, when no such plan fits, over one axis of a dp x ep mesh, ep within\n"
	      "          a node): data + expert parallelism (for mixture-of-experts models)\n"
	      "each with 1F1B, and per grid point every ZeRO stage 0-3 over dp with the least\n"
	      "recomputation (none, selective, full) that fits; this search runs many intra-op\n"
	      "solves and can take minutes on large clusters.\n\noptions:\n", f);
	tool_opts_help(f, opts, NOPT);
	fputs("\nExit: 0 every cluster has a plan, 1 some has none, 2 bad input.\n", f);
}

enum { MAX_CLUSTERS = 16 };

/* One plan's figures. */
typedef struct {
	int status; /* EXIT_* */
	char why[256];
	double step_s, samples_per_s, tflops, mfu, peak_mem, time_s;
	int stages;
	int64_t microbatch;
	bool cut;   /* --time-limit cut the search */
} Figures;

typedef struct {
	const char *name;
	long nodes;
	int gpus;
	double mem, price;
	Figures got;         /* the compiled plan (time_s: compile time) */
	Figures base;        /* --against: the best grid plan (time_s: search time) */
	double tokens_per_s; /* the compiled plan's */
	bool run;            /* --tokens: run and cost below are set */
	SimRunTime rt;       /* --tokens: the run */
	SimCostModel cm;     /* the cluster's cost defaults, as estimate takes them */
	SimCost cost;
	char plan_path[1024];/* -o: where the plan went */
	PassManual grid;
	int tried;
} Row;

typedef enum { AGAINST_NONE, AGAINST_MANUAL, AGAINST_DATA, AGAINST_EXPERT } Against;
static const char *const against_names[] = {"", "manual", "data", "expert"};

static void fill_figures(Figures *f, const SimResult *sr, int stages, int64_t microbatch)
{
	f->status = sr->fits ? EXIT_OK : EXIT_INFEASIBLE;
	if (!sr->fits)
		snprintf(f->why, sizeof f->why, "the plan does not fit memory");
	f->step_s = sr->step_time_s;
	f->samples_per_s = sr->samples_per_s;
	f->tflops = sr->tflops_per_gpu;
	f->mfu = sr->mfu;
	f->peak_mem = sr->peak_memory_bytes;
	f->stages = stages;
	f->microbatch = microbatch;
}

static void figures_json(json_t *o, const Figures *f, const char *time_key)
{
	json_object_set_new(o, "fits", json_boolean(f->status == EXIT_OK));
	json_object_set_new(o, time_key, json_real(f->time_s));
	json_object_set_new(o, "cut", f->cut ? json_string("time-limit") : json_null());
	if (f->status != EXIT_OK) {
		json_object_set_new(o, "message", json_string(f->why));
		return;
	}
	json_object_set_new(o, "step_time_s", json_real(f->step_s));
	json_object_set_new(o, "samples_per_s", json_real(f->samples_per_s));
	json_object_set_new(o, "tflops_per_gpu", json_real(f->tflops));
	json_object_set_new(o, "mfu", json_real(f->mfu));
	json_object_set_new(o, "peak_memory_bytes", json_real(f->peak_mem));
	json_object_set_new(o, "stages", json_integer(f->stages));
	json_object_set_new(o, "microbatch", json_integer(f->microbatch));
}

static void figures_row(const char *cluster, int gpus, const char *what, const Figures *f)
{
	if (f->status != EXIT_OK) {
		printf("  %-20s %5d %-19s no plan: %s\n", cluster, gpus, what, f->why);
		return;
	}
	printf("  %-20s %5d %-19s %10.4f %10.2f %8.1f %5.1f%% %9.2f %6d %5lld %9.2f%s\n", cluster,
	       gpus, what, f->step_s, f->samples_per_s, f->tflops, 100 * f->mfu,
	       f->peak_mem / 1073741824.0, f->stages, (long long)f->microbatch, f->time_s,
	       f->cut ? "  (cut by --time-limit: best so far)" : "");
}

/* The best grid plan of the --against family on cluster c. */
static void baseline_one(const IrModelDoc *m, const char *model, const IrParamSet *ps,
			 long batch, const IrCluster *c, Against against, Row *row)
{
	/* no time limit on the grid's ILPs: one that bound under load cut the
	 * search at another point, and two runs tried different plans */
	PassManualSearch o = {.global_batch = batch, .shard = PASS_SHARD_MEGATRON,
			      .method = PASS_ILP, .recompute = -1,
			      .progress = quiet ? NULL : tool_progress};
	if (against != AGAINST_MANUAL) {
		o.shard = PASS_SHARD_METHOD;
		o.method = against == AGAINST_DATA ? PASS_DATA : PASS_EXPERT;
		/* data: one axis; expert: a dp x ep mesh (the tp slot is ep) */
		o.max_tp = against == AGAINST_DATA ? 1 : 0;
		o.max_pp = against == AGAINST_EXPERT ? 1 : 0;
		o.tp_if_needed = against == AGAINST_EXPERT;
	}
	IrPlan plan;
	IrGraph g;
	SimResult sr;
	PassManualResult r;
	IrError e;
	memset(&e, 0, sizeof e);
	int rc = pass_manual_search(m, model, ps, c, row->name, (int)row->nodes, &o, &plan, &g,
				    &sr, &r, &e);
	if (o.progress)
		tool_progress_end();
	row->tried = r.tried;
	row->base.time_s = r.search_time_s;
	if (rc) {
		row->base.status = r.status == PASS_INFEASIBLE ? EXIT_INFEASIBLE : EXIT_BADINPUT;
		if (r.status == PASS_INFEASIBLE)
			snprintf(row->base.why, sizeof row->base.why, "%s", r.message);
		else
			ir_error_str(&e, row->base.why, sizeof row->base.why);
		ir_plan_free(&plan);
		return;
	}
	fill_figures(&row->base, &sr, plan.nstages, plan.microbatch);
	row->grid = r.best;
	sim_result_free(&sr);
	ir_plan_free(&plan);
	ir_graph_free(&g);
}

static void compile_one(const char *model, const IrParamSet *ps, long batch, Against against,
			double tokens, const char *outdir, Row *row)
{
	IrError e;
	memset(&e, 0, sizeof e);
	IrCluster c;
	Figures *f = &row->got;
	if (ir_cluster_load(row->name, (int)row->nodes, &c, &e)) {
		f->status = EXIT_BADINPUT;
		ir_error_str(&e, f->why, sizeof f->why);
		return;
	}
	row->gpus = ir_cluster_gpus(&c);
	row->mem = c.gpu.mem_bytes;
	row->price = c.price_per_gpu_hour;
	IrModelDoc *m = ir_model_open(model, &e);
	if (!m) {
		f->status = EXIT_BADINPUT;
		ir_error_str(&e, f->why, sizeof f->why);
		ir_cluster_free(&c);
		return;
	}
	PassInterOptions o = {.global_batch = batch, .recompute = -1, .tmax_gap = -1,
			      .time_limit_s = time_limit,
			      .progress = quiet ? NULL : tool_progress};
	IrPlan plan;
	IrGraph g;
	PassInterResult r;
	int rc = pass_inter_op(m, model, ps, &c, row->name, (int)row->nodes, &o, &plan, &g, &r, &e);
	if (o.progress)
		tool_progress_end();
	if (against != AGAINST_NONE && (!rc || r.status == PASS_INFEASIBLE))
		baseline_one(m, model, ps, batch, &c, against, row);
	ir_model_close(m);
	f->time_s = r.compile_time_s;
	f->cut = r.time_limited;
	if (rc) {
		f->status = r.status == PASS_INFEASIBLE ? EXIT_INFEASIBLE : EXIT_BADINPUT;
		if (r.status == PASS_INFEASIBLE)
			snprintf(f->why, sizeof f->why, "%s", r.message);
		else
			ir_error_str(&e, f->why, sizeof f->why);
		ir_plan_free(&plan);
		ir_cluster_free(&c);
		return;
	}
	SimResult sr;
	if (sim_plan(&g, &c, &plan, &sr, &e)) {
		f->status = EXIT_INFEASIBLE;
		snprintf(f->why, sizeof f->why, "simulating the plan: %.200s", e.msg);
	} else {
		fill_figures(f, &sr, plan.nstages, plan.microbatch);
		row->tokens_per_s = sr.tokens_per_s;
		tool_cost_model(&c, &row->cm);
		if (tokens > 0 && sr.fits &&
		    !sim_run_time(sr.step_time_s, row->gpus, sr.tokens_per_s * sr.step_time_s, tokens,
				  &row->rt, &e)) {
			sim_cost(&row->cm, row->rt.gpu_hours, &row->cost);
			row->run = true;
		}
		sim_result_free(&sr);
		if (outdir) {
			snprintf(row->plan_path, sizeof row->plan_path, "%s/%s-%dgpus.xml", outdir,
				 c.name, row->gpus);
			if (ir_plan_write(&plan, row->plan_path, &e)) {
				f->status = EXIT_BADINPUT;
				ir_error_str(&e, f->why, sizeof f->why);
			}
		}
	}
	ir_plan_free(&plan);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

/* --tokens: rows with a run by cost (then days), the others after, in order. */
static int by_cost(const Row *rows, const int *a, const int *b)
{
	const Row *x = &rows[*a], *y = &rows[*b];
	if (x->run != y->run)
		return x->run ? -1 : 1;
	if (x->run && x->cost.cost != y->cost.cost)
		return x->cost.cost < y->cost.cost ? -1 : 1;
	if (x->run && x->rt.wall_s != y->rt.wall_s)
		return x->rt.wall_s < y->rt.wall_s ? -1 : 1;
	return *a - *b;
}

static void order_rows(const Row *rows, int n, int *idx, int *cheapest, int *fastest)
{
	for (int i = 0; i < n; i++)
		idx[i] = i;
	/* insertion sort: at most MAX_CLUSTERS rows, stable */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && by_cost(rows, &idx[j], &idx[j - 1]) < 0; j--) {
			int t = idx[j];
			idx[j] = idx[j - 1];
			idx[j - 1] = t;
		}
	*cheapest = *fastest = -1;
	for (int i = 0; i < n; i++) {
		if (!rows[i].run)
			continue;
		if (rows[i].cm.price_per_gpu_hour > 0 &&
		    (*cheapest < 0 || rows[i].cost.cost < rows[*cheapest].cost.cost))
			*cheapest = i;
		if (*fastest < 0 || rows[i].rt.wall_s < rows[*fastest].rt.wall_s)
			*fastest = i;
	}
}

static json_t *run_json(const Row *r, bool cheapest, bool fastest)
{
	json_t *o = json_object();
	json_object_set_new(o, "tokens_per_s", json_real(r->tokens_per_s));
	json_object_set_new(o, "steps", json_real(r->rt.steps));
	json_object_set_new(o, "gpu_hours", json_real(r->rt.gpu_hours));
	json_object_set_new(o, "days", json_real(r->rt.wall_s / 86400));
	if (r->cm.price_per_gpu_hour > 0)
		json_object_set_new(o, "cost", json_real(r->cost.cost));
	else
		json_object_set_new(o, "cost", json_null());
	json_object_set_new(o, "currency", json_string(r->cm.currency));
	json_object_set_new(o, "energy_kwh", json_real(r->cost.energy_kwh));
	json_object_set_new(o, "co2e_t", json_real(r->cost.co2e_t));
	json_object_set_new(o, "cheapest", json_boolean(cheapest));
	json_object_set_new(o, "fastest", json_boolean(fastest));
	return o;
}

/* --cluster and --nodes in order: a --nodes belongs to the --cluster before it. */
typedef struct {
	Row *rows;
	int n;
	long nodes_all;
} Clusters;

static int on_option(void *ctx, int id, const char *value)
{
	Clusters *cs = ctx;
	if (id == O_CLUSTER) {
		if (cs->n == MAX_CLUSTERS)
			return tool_error(VERB, EXIT_BADINPUT, "at most %d clusters", MAX_CLUSTERS);
		cs->rows[cs->n++].name = value;
	} else if (id == O_NODES) {
		long v = strtol(value, NULL, 10); /* checked by the table */
		if (cs->n)
			cs->rows[cs->n - 1].nodes = v;
		else
			cs->nodes_all = v;
	}
	return EXIT_OK;
}

int cmd_compare(int argc, char **argv)
{
	Row rows[MAX_CLUSTERS];
	Against against = AGAINST_NONE;
	IrParamSet ps = {0};
	memset(rows, 0, sizeof rows);
	Clusters cs = {rows, 0, 0};
	ToolVal v[NOPT];
	const char *pos[1];
	int npos;
	ToolCmdLine cl = {.verb = VERB, .opts = opts, .nopts = NOPT, .maxpos = 1, .params = &ps,
			  .hook = on_option, .ctx = &cs, .usage = usage};
	int code0;
	if (tool_opts_done(&cl, argc, argv, v, pos, &npos, &code0))
		return code0;
	const char *model = npos ? pos[0] : NULL;
	int n = cs.n;
	long batch = (long)v[O_BATCH].num, nodes_all = cs.nodes_all;
	bool json = v[O_JSON].set;
	quiet = v[O_QUIET].set;
	time_limit = v[O_TIME_LIMIT].num;
	if (v[O_AGAINST].set) {
		const char *a = v[O_AGAINST].str;
		against = !strcmp(a, "manual") ? AGAINST_MANUAL :
			  !strcmp(a, "data")   ? AGAINST_DATA :
			  !strcmp(a, "expert") ? AGAINST_EXPERT : AGAINST_NONE;
		if (against == AGAINST_NONE)
			return tool_error(VERB, EXIT_BADINPUT,
					  "--against takes manual, data or expert, got '%s'", a);
	}
	double tokens = v[O_TOKENS].set ? v[O_TOKENS].num : 0;
	const char *outdir = v[O_OUT].str;
	if (!model || !n || !batch) {
		tool_error(VERB, EXIT_BADINPUT, "needs MODEL, --cluster and --batch (see --help)");
		return EXIT_BADINPUT;
	}
	int code = EXIT_OK;
	for (int i = 0; i < n; i++) {
		if (!rows[i].nodes)
			rows[i].nodes = nodes_all;
		compile_one(model, &ps, batch, against, tokens, outdir, &rows[i]);
		if (rows[i].got.status == EXIT_BADINPUT || rows[i].base.status == EXIT_BADINPUT) {
			fprintf(stderr, "meshplan compare: %s\n", rows[i].got.status == EXIT_BADINPUT ?
				rows[i].got.why : rows[i].base.why);
			return EXIT_BADINPUT;
		}
		if (rows[i].got.status != EXIT_OK)
			code = EXIT_INFEASIBLE;
	}
	int idx[MAX_CLUSTERS], cheapest, fastest;
	order_rows(rows, n, idx, &cheapest, &fastest);
	if (!tokens)
		for (int i = 0; i < n; i++)
			idx[i] = i;
	if (json) {
		json_t *arr = json_array();
		for (int k = 0; k < n; k++) {
			int i = idx[k];
			const Row *r = &rows[i];
			json_t *o = json_object();
			json_object_set_new(o, "cluster", json_string(r->name));
			json_object_set_new(o, "gpus", json_integer(r->gpus));
			figures_json(o, &r->got, "compile_time_s");
			if (r->got.status == EXIT_OK && r->price > 0)
				json_object_set_new(o, "cost_per_step",
						    json_real(r->price * r->gpus * r->got.step_s / 3600));
			if (against != AGAINST_NONE) {
				json_t *b = json_object();
				json_object_set_new(b, "family", json_string(against_names[against]));
				figures_json(b, &r->base, "search_time_s");
				json_object_set_new(b, "plans_tried", json_integer(r->tried));
				if (r->base.status == EXIT_OK) {
					json_object_set_new(b, "dp", json_integer(r->grid.dp));
					json_object_set_new(b, "tp", json_integer(r->grid.tp));
					json_object_set_new(b, "pp", json_integer(r->grid.pp));
					json_object_set_new(b, "mbs", json_integer(r->grid.mbs));
					json_object_set_new(b, "recompute",
							    json_string(ir_recompute_name(r->grid.recompute)));
					json_object_set_new(b, "zero", json_integer(r->grid.zero));
				}
				json_object_set_new(o, "baseline", b);
				if (r->got.status == EXIT_OK && r->base.status == EXIT_OK)
					json_object_set_new(o, "speedup",
							    json_real(r->base.step_s / r->got.step_s));
			}
			if (r->plan_path[0])
				json_object_set_new(o, "plan", json_string(r->plan_path));
			if (r->run)
				json_object_set_new(o, "run", run_json(r, i == cheapest, i == fastest));
			json_array_append_new(arr, o);
		}
		json_t *top = json_object();
		if (tokens)
			json_object_set_new(top, "tokens", json_real(tokens));
		json_object_set_new(top, "model", json_string(model));
		json_object_set_new(top, "global_batch", json_integer(batch));
		json_object_set_new(top, "clusters", arr);
		tool_print_json(top);
	} else {
		printf("%s, global batch %ld\n\n", model, batch);
		printf("  %-20s %5s %-19s %10s %10s %8s %6s %9s %6s %5s %9s\n", "cluster", "GPUs",
		       "plan", "step s", "samples/s", "TFLOPS", "MFU", "peak GiB", "stages", "mbs",
		       "time s");
		for (int k = 0; k < n; k++) {
			int i = idx[k];
			const Row *r = &rows[i];
			figures_row(r->name, r->gpus, "compiled", &r->got);
			if (against == AGAINST_NONE)
				continue;
			char what[64];
			if (r->base.status == EXIT_OK)
				snprintf(what, sizeof what, "%s %dx%dx%d%s%s", against_names[against],
					 r->grid.dp, r->grid.tp, r->grid.pp,
					 r->grid.recompute == IR_RECOMP_NONE   ? "" :
					 r->grid.recompute == IR_RECOMP_FULL ? " rc" : " sel",
					 r->grid.zero == 1 ? " z1" : r->grid.zero == 2 ? " z2" :
					 r->grid.zero == 3 ? " z3" : "");
			else
				snprintf(what, sizeof what, "%s", against_names[against]);
			figures_row("", r->gpus, what, &r->base);
			if (r->got.status == EXIT_OK && r->base.status == EXIT_OK)
				printf("  %-20s %5s %-19s %.3fx the %s grid plan's throughput\n", "", "",
				       "speedup", r->base.step_s / r->got.step_s, against_names[against]);
		}
		if (tokens) {
			char t[32];
			printf("\n  %s tokens, estimate's defaults per cluster (price, GPU power, PUE), "
			       "rows by cost\n", tool_si(tokens, t, sizeof t));
			printf("  %-20s %12s %12s %9s %14s %12s  %s\n", "cluster", "tokens/s",
			       "GPU-hours", "days", "cost", "energy MWh", "");
			for (int k = 0; k < n; k++) {
				const Row *r = &rows[idx[k]];
				if (!r->run) {
					printf("  %-20s no plan\n", r->name);
					continue;
				}
				char cost[48];
				if (r->cm.price_per_gpu_hour > 0)
					snprintf(cost, sizeof cost, "%.4g %s", r->cost.cost,
						 r->cm.currency);
				else
					snprintf(cost, sizeof cost, "unknown");
				printf("  %-20s %12.4g %12.4g %9.2f %14s %12.4g  %s%s\n", r->name,
				       r->tokens_per_s, r->rt.gpu_hours, r->rt.wall_s / 86400, cost,
				       r->cost.energy_kwh / 1000, idx[k] == cheapest ? "cheapest " : "",
				       idx[k] == fastest ? "fastest" : "");
			}
		}
		for (int k = 0; k < n; k++)
			if (rows[idx[k]].plan_path[0])
				printf("  plan %s\n", rows[idx[k]].plan_path);
		if (against != AGAINST_NONE)
			printf("\n  grid plans are dp x tp x pp (expert: dp x ep x 1); rc: full "
			       "recomputation, sel: selective;\n  zN: ZeRO stage N; time s: compile "
			       "or grid-search time\n");
	}
	return code;
}
