/*
 * cmd_compile.c -- `meshplan compile`: the inter-op pass end to end.  Model
 * and cluster in; pipeline stages on sub-meshes, each sharded by the
 * intra-op ILP, out; the plan simulated for its figures.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "passes/passes.h"
#include "runtime-sim/sim.h"
#include "tools/tools.h"

static const char *VERB = "compile";

enum {
	O_CLUSTER, O_NODES, O_BATCH, O_MICROBATCH, O_RECOMPUTE, O_CLUSTERS, O_THREADS, O_SET,
	O_TARGET, O_OUTPUT, O_TRACE, O_TRACE_DETAIL, O_SVG_TIMELINE, O_SVG_MESH, O_SVG_MEMORY, O_JSON,
	O_QUIET, O_TIME_LIMIT, O_NO_HAND, O_HELP, NOPT
};

static const ToolOpt opts[NOPT] = {
	[O_CLUSTER] = {"cluster", 0, TOOL_STR, "C", TOOL_ANY, false, 0,
		       "cluster file or zoo name (required)"},
	[O_NODES] = {"nodes", 0, TOOL_INT, "N", 1, false, IR_MAX_NODES, false, 0,
		     "node count (default: the cluster file's)"},
	[O_BATCH] = {"batch", 0, TOOL_INT, "GLOBAL", 1, false, 1 << 30, false, 0,
		     "samples per training step (required)"},
	[O_MICROBATCH] = {"microbatch", 0, TOOL_INT, "B", 1, false, 1 << 30, false, 0,
			  "samples per microbatch (default: searched)"},
	[O_RECOMPUTE] = {"recompute", 0, TOOL_STR, "none|selective|full", TOOL_ANY, false, 0,
			 "activation recomputation (default: searched)"},
	[O_CLUSTERS] = {"clusters", 0, TOOL_INT, "L", 1, false, PASS_MAX_UNITS, false, 0,
			"layer clusters the DP cuts between (default 16)"},
	[O_THREADS] = {"threads", 0, TOOL_INT, "T", 1, false, 1024, false, 0,
		       "worker threads for stage costs (default: the CPUs)"},
	[O_SET] = {"set", 0, TOOL_PARAMS, "NAME=VALUE,...", TOOL_ANY, true, 0,
		   "override model parameters"},
	[O_TARGET] = {"target", 0, TOOL_STR, "any|megatron|deepspeed", TOOL_ANY, false, 0,
		      "only plans this engine runs (default any); shows the any plan beside"},
	[O_OUTPUT] = {"output", 'o', TOOL_STR, "PLAN.xml", TOOL_ANY, false, 0, "write the plan"},
	[O_TRACE] = {"trace", 0, TOOL_STR, "FILE", TOOL_ANY, false, 0,
		     "write a Chrome trace (Perfetto) of the step"},
	[O_TRACE_DETAIL] = {"trace-detail", 0, TOOL_STR, "stage|layer|gpu", TOOL_ANY, false, 0,
			    "trace events per task (default), per layer and collective, or that "
			    "on every GPU"},
	[O_SVG_TIMELINE] = {"svg-timeline", 0, TOOL_STR, "FILE", TOOL_ANY, false, 0,
			    "write the pipeline schedule as SVG"},
	[O_SVG_MESH] = {"svg-mesh", 0, TOOL_STR, "FILE", TOOL_ANY, false, 0,
			"write the cluster and each stage's sub-mesh as SVG"},
	[O_SVG_MEMORY] = {"svg-memory", 0, TOOL_STR, "FILE", TOOL_ANY, false, 0,
			  "write the memory of each stage by kind as SVG"},
	[O_JSON] = {"json", 0, TOOL_FLAG, NULL, TOOL_ANY, false, 0, "one JSON object on stdout"},
	[O_TIME_LIMIT] = {"time-limit", 0, TOOL_NUM, "S", TOOL_POS, false, 0,
			  "stop searching after S seconds and keep the best plan found so far "
			  "(the plan then depends on the machine's load; the plan file and the "
			  "output say so)"},
	[O_QUIET] = {"quiet", 'q', TOOL_FLAG, NULL, TOOL_ANY, false, 0,
		     "no progress on stderr (by default: a live line at a terminal, else a line "
		     "every 5 s, with an ETA)"},
	[O_NO_HAND] = {"no-hand-written", 0, TOOL_FLAG, NULL, TOOL_ANY, false, 0,
		       "neither search nor take hand-written plans: the plan is the DP's, every "
		       "stage sharded by the ILP (so `explain` has its records)"},
	[O_HELP] = {"help", 'h', TOOL_FLAG, NULL, TOOL_ANY, false, 0, "this text"},
};

static void usage(FILE *f)
{
	fputs("usage: meshplan compile MODEL --cluster C --batch GLOBAL [options]\n"
	      "\n"
	      "Finds the fastest plan for training MODEL on all GPUs of the cluster (Alpa's\n"
	      "inter-operator DP over the intra-operator ILP): the layers, grouped into at most\n"
	      "L clusters of equal FLOPs (default 16), are cut into pipeline stages; each stage\n"
	      "runs on a sub-mesh (1x1, 1x2, 1x4 .. 1xM GPUs of one node, or whole nodes) seen\n"
	      "as a logical N0xN1 mesh, sharded by the ILP.  GLOBAL samples per step are split\n"
	      "into microbatches (size searched unless --microbatch) under the 1F1B schedule;\n"
	      "the recomputation mode is searched unless --recompute.  Prints the stages, the\n"
	      "microbatches and the simulated step (as `meshplan simulate`); -o writes the plan\n"
	      "for `meshplan simulate`, --trace a Chrome trace of the step, --svg-timeline,\n"
	      "--svg-mesh and --svg-memory pictures of it (standalone SVG).\n"
	      "\n"
	      "The best hand-written plan (Megatron-LM's dp x tp x pp grid; for a model with\n"
	      "experts also data + expert parallelism) is searched beside, bounds which\n"
	      "candidates are refined, and is the result when it simulates faster;\n"
	      "--no-hand-written leaves it out.\n"
	      "\n"
	      "--target megatron|deepspeed searches only plans that engine runs, which\n"
	      "`meshplan export` turns into its arguments: every dp x tp x pp grid (one mesh\n"
	      "shape for all stages, Megatron-LM's layer split and its own layout of each\n"
	      "stage, passes/megatron.c), microbatches 1, 2, 4 .., ZeRO and recomputation;\n"
	      "deepspeed: tp = 1, ZeRO 0-1 with a pipeline, no selective recomputation.  The\n"
	      "plan of the unrestricted search (any) is compiled too and its step time shown\n"
	      "beside, the price of the restriction.\n\noptions:\n", f);
	tool_opts_help(f, opts, NOPT);
	fputs("\nExit: 0 a plan, 1 no plan fits the GPU's memory (the message says how much the\n"
	      "leanest needs), 2 bad input.\n", f);
}

typedef struct {
	const char *model, *cluster, *out, *trace;
	const char *svg_timeline, *svg_mesh, *svg_memory, *trace_detail;
	long nodes, batch, microbatch, clusters, threads;
	int recompute;
	int target; /* TARGET_* */
	bool json, quiet, no_hand;
	double time_limit;
	IrParamSet ps;
} Args;

enum { TARGET_ANY, TARGET_MEGATRON, TARGET_DEEPSPEED };

static int parse(int argc, char **argv, Args *a)
{
	memset(a, 0, sizeof *a);
	ToolVal v[NOPT];
	const char *pos[1];
	int npos;
	ToolCmdLine cl = {.verb = VERB, .opts = opts, .nopts = NOPT, .maxpos = 1, .params = &a->ps,
			  .usage = usage};
	int code;
	if (tool_opts_done(&cl, argc, argv, v, pos, &npos, &code))
		return code == EXIT_OK ? -1 : code; /* -1: --help was printed */
	a->model = npos ? pos[0] : NULL;
	a->cluster = v[O_CLUSTER].str;
	a->out = v[O_OUTPUT].str;
	a->trace = v[O_TRACE].str;
	a->svg_timeline = v[O_SVG_TIMELINE].str;
	a->svg_mesh = v[O_SVG_MESH].str;
	a->svg_memory = v[O_SVG_MEMORY].str;
	a->trace_detail = v[O_TRACE_DETAIL].str;
	if (a->trace_detail) {
		ToolOutputs to = {.trace = a->trace};
		int bad = tool_trace_detail(VERB, a->trace_detail, &to);
		if (bad)
			return bad;
	}
	a->nodes = (long)v[O_NODES].num;
	a->batch = (long)v[O_BATCH].num;
	a->microbatch = (long)v[O_MICROBATCH].num;
	a->clusters = (long)v[O_CLUSTERS].num;
	a->threads = (long)v[O_THREADS].num;
	a->json = v[O_JSON].set;
	a->quiet = v[O_QUIET].set;
	a->no_hand = v[O_NO_HAND].set;
	a->time_limit = v[O_TIME_LIMIT].num;
	a->recompute = -1;
	if (v[O_RECOMPUTE].set) {
		IrRecompute rc;
		if (ir_recompute_parse(v[O_RECOMPUTE].str, &rc))
			return tool_error(VERB, EXIT_BADINPUT,
					  "--recompute is none, selective or full, not '%s'",
					  v[O_RECOMPUTE].str);
		a->recompute = (int)rc;
	}
	if (v[O_TARGET].set) {
		const char *t = v[O_TARGET].str;
		a->target = !strcmp(t, "any") ? TARGET_ANY : !strcmp(t, "megatron") ? TARGET_MEGATRON :
			    !strcmp(t, "deepspeed") ? TARGET_DEEPSPEED : -1;
		if (a->target < 0)
			return tool_error(VERB, EXIT_BADINPUT,
					  "--target is any, megatron or deepspeed, not '%s'", t);
		if (a->target != TARGET_ANY && (a->microbatch || a->clusters))
			return tool_error(VERB, EXIT_BADINPUT, "--target %s searches its own grid: "
					  "no --microbatch or --clusters", t);
	}
	if (!a->model || !a->cluster || !a->batch) {
		tool_error(VERB, EXIT_BADINPUT, "needs MODEL, --cluster and --batch (see --help)");
		return EXIT_BADINPUT;
	}
	return 0;
}

/* The keys of `simulate --json`, plus the compiler's. */
static json_t *result_json(const IrGraph *g, const IrCluster *c, const IrPlan *p,
			   const SimResult *r, const PassInterResult *ir)
{
	json_t *o = tool_sim_json(g, c, p, r);
	json_object_set_new(o, "compile_time_s", json_real(ir->compile_time_s));
	json_object_set_new(o, "estimated_step_time_s", json_real(ir->estimate_s));
	json_object_set_new(o, "compile_breakdown_s", json_pack("{s:f,s:f,s:f,s:f}", "layer_costs",
		ir->layer_cost_s, "dp", ir->dp_s, "stages", ir->refine_s, "hand_written",
		ir->hand_s));
	json_object_set_new(o, "layer_clusters", json_integer(ir->nunits));
	json_object_set_new(o, "cut", ir->time_limited ? json_string("time-limit") : json_null());
	json_object_set_new(o, "ilp_solves", json_integer(ir->ilp_solved + ir->stage_solves));
	json_object_set_new(o, "ilp_cached", json_integer(ir->ilp_cached));
	json_t *tried = json_array();
	for (int i = 0; i < ir->ntried; i++)
		json_array_append_new(tried, json_pack("{s:I,s:f}", "microbatch",
			(json_int_t)ir->tried_microbatch[i], "estimate_s",
			isfinite(ir->tried_estimate_s[i]) ? ir->tried_estimate_s[i] : -1.0));
	json_object_set_new(o, "microbatch_search", tried);
	return o;
}

static void print_table(const IrGraph *g, const IrCluster *c, const IrPlan *p,
			const SimResult *r, const PassInterResult *ir)
{
	const double GiB = 1073741824.0;
	printf("%s on %s, %d GPUs: %d stage%s, compiled in %.2f s (%d ILP solves, %d cached)\n",
	       p->model, c->name, r->ngpus, p->nstages, p->nstages == 1 ? "" : "s",
	       ir->compile_time_s,
	       ir->ilp_solved + ir->stage_solves, ir->ilp_cached);
	printf("  compile time      layer costs %.2f s, stage DP %.2f s, stages solved whole %.2f s, "
	       "hand-written plans %.2f s\n", ir->layer_cost_s, ir->dp_s, ir->refine_s, ir->hand_s);
	if (ir->time_limited)
		printf("  search cut        by --time-limit after %.2f s: the best plan found by "
		       "then, not necessarily the best there is\n", ir->compile_time_s);
	printf("  batch %lld = %d microbatch%s of %lld, %s, recompute %s\n",
	       (long long)p->global_batch, p->nmicro, p->nmicro == 1 ? "" : "es",
	       (long long)p->microbatch,
	       ir_schedule_name(p->schedule), ir_recompute_name(p->recompute));
	printf("  microbatch sizes  ");
	/* (estimates of the stage-cutting DP: dynamic programming, not data parallelism) */
	for (int i = 0; i < ir->ntried; i++) {
		if (isfinite(ir->tried_estimate_s[i]))
			printf("%s%lld: %.4g s", i ? ", " : "", (long long)ir->tried_microbatch[i],
			       ir->tried_estimate_s[i]);
		else
			printf("%s%lld: none fits", i ? ", " : "", (long long)ir->tried_microbatch[i]);
	}
	printf(" (search estimates)\n");
	printf("  step time         %.4f s (pipeline %.4f s, bubble %.1f%%; search estimate %.4f s)\n",
	       r->step_time_s, r->tl.span_s, 100 * r->bubble_fraction, ir->estimate_s);
	tool_print_step_summary(c, r);
	printf("\n  %-5s %-24s %-13s %-7s %-4s %9s %9s %11s %9s %9s %8s %10s %10s\n", "stage",
	       "layers", "sub-mesh", "logical", "ZeRO", "fwd ms", "bwd ms", "sync+opt ms",
	       "xfer ms", "state GiB", "act GiB", "search ms", "search GiB");
	for (int i = 0; i < r->nstages; i++) {
		const IrStagePlan *s = &p->stages[i];
		const SimStageCost *sc = &r->stage[i];
		char layers[64], mesh[32], lg[16];
		tool_stage_labels(g, s, layers, mesh, lg);
		printf("  %-5d %-24s %-13s %-7s %-4d %9.3f %9.3f %11.3f %9.3f %9.2f %8.3f %10.3f "
		       "%10.2f\n", i, layers, mesh, lg, tool_stage_zero(g, s, &sc->mem),
		       sc->fwd_s * 1e3, sc->bwd_s * 1e3, sc->step_s * 1e3,
		       r->xfer_s[i] * 1e3,
		       (sc->mem.weight_bytes + sc->mem.grad_bytes + sc->mem.opt_bytes) / GiB,
		       sc->mem.act_bytes / GiB, ir->stage_time_s[i] * 1e3,
		       ir->stage_mem_bytes[i] / GiB);
	}
	printf("  (sync+opt: once per step, gradient reduction and optimizer; search: the time "
	       "per microbatch and memory per device the stage search priced)\n");
}

/* --target megatron|deepspeed: the fastest plan in the engine's space,
 * beside the unrestricted (any) plan's step time. */
static int compile_target(const Args *a, const IrModelDoc *m, const IrCluster *c)
{
	static const char *const names[] = {"any", "megatron", "deepspeed"};
	const char *target = names[a->target];
	PassManualSearch o = {.global_batch = a->batch, .shard = PASS_SHARD_MEGATRON,
			      .recompute = a->recompute, .threads = (int)a->threads,
			      .progress = a->quiet ? NULL : tool_progress};
	if (a->target == TARGET_DEEPSPEED) {
		o.max_tp = 1;
		o.no_selective = true;
		o.pipeline_zero1 = true;
		if (a->recompute == IR_RECOMP_SELECTIVE)
			return tool_error(VERB, EXIT_BADINPUT, "--target deepspeed: DeepSpeed has no "
					  "selective recomputation");
	}
	IrError e;
	memset(&e, 0, sizeof e);
	IrPlan plan;
	IrGraph g;
	SimResult sr;
	PassManualResult r;
	int rc = pass_manual_search(m, a->model, &a->ps, c, a->cluster, (int)a->nodes, &o, &plan,
				    &g, &sr, &r, &e);
	if (o.progress)
		tool_progress_end();
	if (rc) {
		ir_plan_free(&plan);
		if (r.status == PASS_INFEASIBLE)
			return tool_error(VERB, EXIT_INFEASIBLE, "--target %s: %s", target, r.message);
		return tool_input_error(&e);
	}
	/* the unrestricted plan, for its step time */
	PassInterOptions io = {.global_batch = a->batch, .recompute = a->recompute,
			       .threads = (int)a->threads, .tmax_gap = -1,
			       .progress = o.progress};
	IrPlan any;
	IrGraph ga;
	PassInterResult ir;
	SimResult sa;
	double any_s = NAN;
	IrError ea;
	if (!pass_inter_op(m, a->model, &a->ps, c, a->cluster, (int)a->nodes, &io, &any, &ga, &ir,
			   &ea)) {
		if (!sim_plan(&ga, c, &any, &sa, &ea)) {
			if (sa.fits)
				any_s = sa.step_time_s;
			sim_result_free(&sa);
		}
		ir_graph_free(&ga);
	}
	ir_plan_free(&any);
	ToolOutputs to = {.plan = a->out, .trace = a->trace, .svg_timeline = a->svg_timeline,
			  .svg_mesh = a->svg_mesh, .svg_memory = a->svg_memory};
	int code = tool_write_all(VERB, &g, c, &plan, &sr, &to);
	const PassManual *b = &r.best;
	if (code) {
		;
	} else if (a->json) {
		json_t *j = tool_sim_json(&g, c, &plan, &sr);
		json_object_set_new(j, "target", json_string(target));
		json_object_set_new(j, "grid", json_pack("{s:i,s:i,s:i,s:I,s:i}", "dp", b->dp, "tp",
							  b->tp, "pp", b->pp, "mbs",
							  (json_int_t)b->mbs, "zero", b->zero));
		json_object_set_new(j, "any_step_time_s", isfinite(any_s) ? json_real(any_s)
									  : json_null());
		json_object_set_new(j, "grid_plans_tried", json_integer(r.tried));
		tool_print_json(j);
	} else {
		printf("%s on %s, %d GPUs, --target %s: dp %d x tp %d x pp %d, microbatch %lld per "
		       "replica, ZeRO %d, recompute %s (%d grid plans tried in %.2f s)\n",
		       plan.model, c->name, sr.ngpus, target, b->dp, b->tp, b->pp, (long long)b->mbs,
		       b->zero, ir_recompute_name(plan.recompute), r.tried, r.search_time_s);
		if (isfinite(any_s))
			printf("  step time         %.4f s for %s; %.4f s for any plan (%+.1f%%)\n",
			       sr.step_time_s, target, any_s, 100 * (sr.step_time_s / any_s - 1));
		else
			printf("  step time         %.4f s for %s; no unrestricted plan fits\n",
			       sr.step_time_s, target);
		tool_print_step_summary(c, &sr);
	}
	if (code == EXIT_OK && !sr.fits)
		code = EXIT_INFEASIBLE;
	sim_result_free(&sr);
	ir_plan_free(&plan);
	ir_graph_free(&g);
	return code;
}

int cmd_compile(int argc, char **argv)
{
	Args a;
	int code = parse(argc, argv, &a);
	if (code)
		return code < 0 ? EXIT_OK : code;
	IrError e;
	memset(&e, 0, sizeof e);
	IrCluster c;
	if (ir_cluster_load(a.cluster, (int)a.nodes, &c, &e))
		return tool_input_error(&e);
	IrModelDoc *m = ir_model_open(a.model, &e);
	if (!m) {
		ir_cluster_free(&c);
		return tool_input_error(&e);
	}
	tool_model_notes(m, &a.ps);
	if (a.target != TARGET_ANY) {
		code = compile_target(&a, m, &c);
		ir_model_close(m);
		ir_cluster_free(&c);
		return code;
	}
	PassInterOptions o = {.global_batch = a.batch, .microbatch = a.microbatch,
			      .recompute = a.recompute, .max_units = (int)a.clusters,
			      .threads = (int)a.threads, .tmax_gap = -1,
			      .time_limit_s = a.time_limit, .no_hand = a.no_hand,
			      .progress = a.quiet ? NULL : tool_progress};
	IrPlan plan;
	IrGraph g;
	PassInterResult r;
	int rc = pass_inter_op(m, a.model, &a.ps, &c, a.cluster, (int)a.nodes, &o, &plan, &g, &r,
			       &e);
	ir_model_close(m);
	if (o.progress)
		tool_progress_end();
	if (rc) {
		ir_cluster_free(&c);
		ir_plan_free(&plan);
		if (r.status == PASS_INFEASIBLE)
			return tool_error(VERB, EXIT_INFEASIBLE, "%s", r.message);
		return tool_input_error(&e);
	}
	SimResult sr;
	if (sim_plan(&g, &c, &plan, &sr, &e)) {
		code = tool_error(VERB, EXIT_INFEASIBLE, "simulating the plan: %s", e.msg);
	} else {
		ToolOutputs to = {.plan = a.out, .trace = a.trace, .svg_timeline = a.svg_timeline,
				  .svg_mesh = a.svg_mesh, .svg_memory = a.svg_memory};
		code = tool_trace_detail(VERB, a.trace_detail, &to);
		if (!code)
			code = tool_write_all(VERB, &g, &c, &plan, &sr, &to);
		if (code)
			;
		else if (a.json)
			tool_print_json(result_json(&g, &c, &plan, &sr, &r));
		else
			print_table(&g, &c, &plan, &sr, &r);
		if (code == EXIT_OK && !sr.fits)
			code = EXIT_INFEASIBLE;
		sim_result_free(&sr);
	}
	ir_plan_free(&plan);
	ir_graph_free(&g);
	ir_cluster_free(&c);
	return code;
}
