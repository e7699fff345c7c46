/*
 * cmd_estimate.c -- `meshplan estimate`: what a whole training run costs
 * (wall time, GPU-hours, money, energy, CO2e and its equivalents) and what
 * failures and slow workers do to it (runtime-sim/resilience.c).
 *
 * A run is given by hand (--step-time, --gpus, --tokens-per-step, --tokens),
 * by its GPU-hours (--gpu-hours, cost side only), or by a plan or model,
 * whose step time comes from run_from_plan() (the simulator).
 * Model and defaults: docs/estimate.md.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "runtime-sim/sim.h"
#include "tools/tools.h"

static const char *VERB = "estimate";

/* ------------------------------------------------------------------ */
/* Options: one table drives parsing, range checks and --help.          */

typedef enum {
	O_STEP_TIME, O_GPUS, O_TOKENS_PER_STEP, O_TOKENS, O_GPU_HOURS, O_CLUSTER, O_NODES, O_BATCH,
	O_GPUS_PER_NODE,
	O_PRICE, O_CURRENCY, O_POWER, O_PUE, O_CARBON, O_TREE, O_PERCAP_US, O_PERCAP_CN,
	O_FAILURES, O_POLICY, O_FAILURE_RATE, O_MTBF_HOURS, O_SOFT_FRACTION, O_DETECT,
	O_RESTART, O_REPLACE, O_REPAIR, O_CKPT_SAVE, O_CKPT_LOAD, O_CKPT_INTERVAL, O_RUNS,
	O_SEED, O_HORIZON_DAYS, O_SWEEP, O_REPLAN,
	O_SPEEDS, O_SPEED_DIST, O_DP_WORKERS, O_SHARDING, O_SHARDS_PER_WORKER,
	O_JSON, O_HELP, NOPT
} OptId;

/* Option groups: FAILURES options are only meaningful with --failures. */
enum { G_ANY, G_FAILURES };

#define ANY TOOL_ANY
#define POS TOOL_POS
#define NONNEG TOOL_NONNEG

static const ToolOpt opts[NOPT] = {
	[O_STEP_TIME] = {"step-time", 0, TOOL_NUM, "S", POS, false, G_ANY, "seconds per training step"},
	[O_GPUS] = {"gpus", 0, TOOL_INT, "G", 1, false, 1e9, false, G_ANY, "GPUs of the job (default: the cluster's)"},
	[O_TOKENS_PER_STEP] = {"tokens-per-step", 0, TOOL_NUM, "N", POS, false, G_ANY, "tokens in one global batch"},
	[O_TOKENS] = {"tokens", 0, TOOL_NUM, "T", POS, false, G_ANY, "tokens of the whole run (steps = ceil(T/N))"},
	[O_GPU_HOURS] = {"gpu-hours", 0, TOOL_NUM, "H", POS, false, G_ANY, "cost side alone: GPU-hours of the run"},
	[O_CLUSTER] = {"cluster", 0, TOOL_STR, "C", ANY, false, G_ANY,
		       "cluster file or zoo name: GPUs, power, price, carbon, PUE defaults"},
	[O_NODES] = {"nodes", 0, TOOL_INT, "N", 1, false, IR_MAX_NODES, false, G_ANY, "with --cluster: node count"},
	[O_BATCH] = {"batch", 0, TOOL_INT, "B", 1, false, 1e12, false, G_ANY,
		     "MODEL form: global batch (samples per step) to compile for"},
	[O_GPUS_PER_NODE] = {"gpus-per-node", 0, TOOL_INT, "M", 1, false, IR_MAX_GPUS_PER_NODE, false, G_ANY,
			     "GPUs a hard fault takes (default: cluster's, else 8)"},
	[O_PRICE] = {"price-per-gpu-hour", 0, TOOL_NUM, "P", NONNEG, false, G_ANY, "price (default: cluster's)"},
	[O_CURRENCY] = {"currency", 0, TOOL_STR, "CUR", ANY, false, G_ANY, "currency code (default: cluster's, USD)"},
	[O_POWER] = {"power-w", 0, TOOL_NUM, "W", NONNEG, false, G_ANY, "average W per GPU (default: cluster GPU's TDP)"},
	[O_PUE] = {"pue", 0, TOOL_NUM, "X", 1, false, INFINITY, false, G_ANY,
		   "facility overhead, >= 1 (default: cluster's, else 1 = GPUs alone)"},
	[O_CARBON] = {"carbon-intensity", 0, TOOL_NUM, "K", NONNEG, false, G_ANY,
		      "kg CO2e per kWh (default: cluster's)"},
	[O_TREE] = {"tree-kg-per-year", 0, TOOL_NUM, "KG", POS, false, G_ANY, "CO2 a tree absorbs a year (12)"},
	[O_PERCAP_US] = {"per-capita-us", 0, TOOL_NUM, "T", POS, false, G_ANY, "US t CO2e per person-year (16.1)"},
	[O_PERCAP_CN] = {"per-capita-cn", 0, TOOL_NUM, "T", POS, false, G_ANY, "China t CO2e per person-year (6.8)"},
	[O_FAILURES] = {"failures", 0, TOOL_FLAG, NULL, ANY, false, G_ANY, "Monte-Carlo of failures and recovery"},
	[O_POLICY] = {"policy", 0, TOOL_STR, "P", ANY, false, G_FAILURES, "restart-all (default) | failover | elastic"},
	[O_FAILURE_RATE] = {"failure-rate", 0, TOOL_NUM, "R", POS, false, G_FAILURES,
			    "failures per GPU-hour (default Llama 3's 1.97e-5)"},
	[O_MTBF_HOURS] = {"mtbf-hours", 0, TOOL_NUM, "H", POS, false, G_FAILURES, "or: cluster MTBF of the whole job"},
	[O_SOFT_FRACTION] = {"soft-fraction", 0, TOOL_NUM, "F", 0, false, 1, false, G_FAILURES,
			     "share of faults a process restart fixes (0.22)"},
	[O_DETECT] = {"detect-s", 0, TOOL_NUM, "S", NONNEG, false, G_FAILURES, "fault to detection (120)"},
	[O_RESTART] = {"restart-s", 0, TOOL_NUM, "S", NONNEG, false, G_FAILURES,
		       "relaunch: job 300 (restart-all), node 120 (failover, elastic)"},
	[O_REPLACE] = {"replace-s", 0, TOOL_NUM, "S", NONNEG, false, G_FAILURES, "hard fault: swap in a spare node (300)"},
	[O_REPAIR] = {"repair-s", 0, TOOL_NUM, "S", NONNEG, false, G_FAILURES, "elastic: a lost node is back after (86400)"},
	[O_CKPT_SAVE] = {"ckpt-save-s", 0, TOOL_NUM, "S", NONNEG, false, G_FAILURES,
			 "blocking save: 30 (restart-all), 1 (in-memory: failover, elastic)"},
	[O_CKPT_LOAD] = {"ckpt-load-s", 0, TOOL_NUM, "S", NONNEG, false, G_FAILURES, "load: 120 (restart-all), 30 (others)"},
	[O_CKPT_INTERVAL] = {"ckpt-interval-s", 0, TOOL_NUM, "S", POS, false, G_FAILURES,
			     "compute between checkpoints (default sqrt(2 save MTBF))"},
	[O_RUNS] = {"runs", 0, TOOL_INT, "N", 1, false, 100000, false, G_FAILURES, "Monte-Carlo runs averaged (32; at most 5e7 events in all)"},
	[O_SEED] = {"seed", 0, TOOL_INT, "S", 0, false, 9.2e18, false, G_ANY, "random seed (1); same seed, same figures"},
	[O_HORIZON_DAYS] = {"horizon-days", 0, TOOL_NUM, "D", POS, false, G_FAILURES,
			    "simulate only the first D days of the run"},
	[O_SWEEP] = {"sweep-interval", 0, TOOL_FLAG, NULL, ANY, false, G_FAILURES,
		     "also sweep the checkpoint interval over [1/4, 4] x the default"},
	[O_REPLAN] = {"replan-s", 0, TOOL_NUM, "S", NONNEG, false, G_FAILURES,
		      "elastic: downtime of a re-plan (default: the compile's own time)"},
	[O_SPEEDS] = {"speeds", 0, TOOL_STR, "LIST", ANY, false, G_ANY,
		      "data-parallel worker speeds, e.g. 1,1,1,0.5 (1 = nominal)"},
	[O_SPEED_DIST] = {"speed-dist", 0, TOOL_STR, "DIST", ANY, false, G_ANY,
			  "normal:MEAN:SD | uniform:LO:HI | slow:FRACTION:SPEED"},
	[O_DP_WORKERS] = {"dp-workers", 0, TOOL_INT, "N", 1, false, 1e7, false, G_ANY,
			  "workers drawn by --speed-dist (default: --gpus)"},
	[O_SHARDING] = {"sharding", 0, TOOL_STR, "even|dynamic", ANY, false, G_ANY,
			"even: slowest sets the pace (default); dynamic: workers pull shards"},
	[O_SHARDS_PER_WORKER] = {"shards-per-worker", 0, TOOL_INT, "K", 1, false, 1e6, false, G_ANY,
				 "dynamic: shards per worker per step (32; workers x K <= 1e7)"},
	[O_JSON] = {"json", 0, TOOL_FLAG, NULL, ANY, false, G_ANY, "one JSON object on stdout"},
	[O_HELP] = {"help", 'h', TOOL_FLAG, NULL, ANY, false, G_ANY, "this text"},
};

typedef ToolVal Val;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: meshplan estimate --step-time S --gpus G --tokens-per-step N --tokens T [options]\n"
		"       meshplan estimate --gpu-hours H [--gpus G] [options]\n"
		"       meshplan estimate --cluster C [--nodes N] --step-time S --tokens-per-step N "
		"--tokens T ...\n"
		"       meshplan estimate PLAN.xml --tokens T [options]\n"
		"       meshplan estimate MODEL --cluster C [--nodes N] --batch B --tokens T [options]\n"
		"         (step time, tokens per step and GPUs simulated from a plan written by\n"
		"          meshplan compile -o or simulate -o; its cluster gives the defaults;\n"
		"          a MODEL is compiled for the cluster first, as meshplan compile does)\n\n"
		"Reports wall time, GPU-hours, cost, energy (GPU-hours x power x PUE), CO2e,\n"
		"tree-years and per-capita years; with --failures, a seeded Monte-Carlo of the run.\n\n"
		"options:\n");
	tool_opts_help(f, opts, NOPT);
	fprintf(f, "\nFailure options need --failures.  Times are seconds.  Sources of every\n"
		   "default: docs/estimate.md.  Exit codes: 0 ok, 1 run cannot finish, 2 bad input.\n");
}

static int parse_args(int argc, char **argv, Val *v, const char **input)
{
	const char *pos[1];
	int npos;
	ToolCmdLine cl = {.verb = VERB, .opts = opts, .nopts = NOPT, .maxpos = 1};
	int code = tool_opts_parse(&cl, argc, argv, v, pos, &npos);
	*input = npos ? pos[0] : NULL;
	return code;
}

/* ------------------------------------------------------------------ */
/* The run.                                                             */

typedef struct Run {
	double step_s;          /* seconds per step on all GPUs (nominal speed) */
	double tokens_per_step;
	double tokens;
	double steps;
	int gpus;               /* 0: unknown (--gpu-hours alone) */
	int gpus_per_node;
	double pace;            /* straggler slowdown, 1 without stragglers */
	double ideal_pace;      /* n / sum(speed) */
	int workers;            /* data-parallel workers with speeds, 0 if none */
	SimSharding sharding;
	double wall_s;          /* fault-free, stragglers included (NaN if unknown) */
	double gpu_hours;
	/* a plan or model: what elastic re-planning compiles for fewer nodes */
	bool replannable;
	char model[1024], set[2048], cluster[1024];
	int64_t global_batch;
} Run;

/* A plan file (its root element is <plan>), as opposed to a model. */
static bool is_plan_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	char head[4097];
	size_t n = fread(head, 1, sizeof head - 1, f);
	fclose(f);
	head[n] = 0;
	return strstr(head, "<plan") != NULL;
}

/*
 * Step time, tokens per step and GPUs of PLAN.xml: the simulator's answer
 * for the plan (written by `meshplan compile -o` or `simulate -o`).
 */
static int run_from_plan(const char *input, const Val *v, const IrCluster *cl, Run *run)
{
	IrError e;
	IrPlan p;
	IrCluster c;
	IrGraph g;
	SimResult r;
	if (!is_plan_file(input)) {
		/* MODEL --cluster C --batch B: compile it first */
		if (!cl || !v[O_BATCH].set)
			return tool_error(VERB, EXIT_BADINPUT,
					  "'%s' is not a plan file; for a model give --cluster C and "
					  "--batch B (or write a plan with meshplan compile -o)", input);
		IrModelDoc *m = ir_model_open(input, &e);
		if (!m)
			return tool_input_error(&e);
		IrParamSet ps = {0};
		PassInterOptions o = {.global_batch = (int64_t)v[O_BATCH].num, .recompute = -1,
				      .tmax_gap = -1};
		PassInterResult ir;
		int rc = pass_inter_op(m, input, &ps, cl, v[O_CLUSTER].str,
				       v[O_NODES].set ? (int)v[O_NODES].num : 0, &o, &p, &g, &ir, &e);
		ir_model_close(m);
		if (rc) {
			ir_plan_free(&p);
			if (ir.status == PASS_INFEASIBLE)
				return tool_error(VERB, EXIT_INFEASIBLE, "%s", ir.message);
			return tool_input_error(&e);
		}
		if (sim_plan(&g, cl, &p, &r, &e)) {
			ir_graph_free(&g);
			ir_plan_free(&p);
			return tool_input_error(&e);
		}
		ir_cluster_load(v[O_CLUSTER].str, v[O_NODES].set ? (int)v[O_NODES].num : 0, &c, &e);
	} else if (tool_plan_simulate(input, v[O_NODES].set ? (int)v[O_NODES].num : 0, &p, &c, &g,
				      &r, &e)) {
		return tool_input_error(&e);
	}
	run->step_s = r.step_time_s;
	run->tokens_per_step = r.tokens_per_s * r.step_time_s;
	run->replannable = true;
	snprintf(run->model, sizeof run->model, "%s", p.model);
	snprintf(run->cluster, sizeof run->cluster, "%s", p.cluster);
	run->global_batch = p.global_batch;
	size_t len = 0;
	for (int i = 0; i < p.params.n && len < sizeof run->set; i++)
		if (strcmp(p.params.name[i], "batch")) /* the microbatch: compile chooses it */
			len += (size_t)snprintf(run->set + len, sizeof run->set - len, "%s%s=%lld",
						len ? "," : "", p.params.name[i],
						(long long)p.params.value[i]);
	if (!v[O_GPUS].set)
		run->gpus = r.ngpus;
	bool fits = r.fits;
	sim_result_free(&r);
	ir_graph_free(&g);
	ir_cluster_free(&c);
	ir_plan_free(&p);
	if (!fits)
		return tool_error(VERB, EXIT_INFEASIBLE, "'%s' does not fit the GPUs' memory "
				  "(meshplan simulate %s shows where)", input, input);
	return EXIT_OK;
}

/* Speeds from --speeds or --speed-dist into a malloc'd array. */
static int load_speeds(const Val *v, int default_workers, uint64_t seed, double **speed, int *n)
{
	*speed = NULL;
	*n = 0;
	if (v[O_SPEEDS].set && v[O_SPEED_DIST].set)
		return tool_error(VERB, EXIT_BADINPUT, "give --speeds or --speed-dist, not both");
	if (v[O_SPEEDS].set) {
		const char *s = v[O_SPEEDS].str;
		int cap = 1;
		for (const char *p = s; *p; p++)
			cap += *p == ',';
		double *sp = ir_xmalloc(sizeof *sp * (size_t)cap);
		char buf[64];
		int k = 0;
		for (const char *p = s;; k++) {
			size_t len = strcspn(p, ",");
			if (len >= sizeof buf) {
				free(sp);
				return tool_error(VERB, EXIT_BADINPUT,
						  "--speeds: an item is longer than %d characters",
						  (int)sizeof buf - 1);
			}
			memcpy(buf, p, len);
			buf[len] = 0;
			if (!tool_parse_double(buf, &sp[k]) || sp[k] <= 0) {
				free(sp);
				return tool_error(VERB, EXIT_BADINPUT,
						  "--speeds: '%s' is not a positive number", buf);
			}
			p += strcspn(p, ",");
			if (!*p++)
				break;
		}
		*speed = sp;
		*n = k + 1;
		return EXIT_OK;
	}
	if (v[O_SPEED_DIST].set) {
		int w = v[O_DP_WORKERS].set ? (int)v[O_DP_WORKERS].num : default_workers;
		if (w <= 0)
			return tool_error(VERB, EXIT_BADINPUT, "--speed-dist needs --dp-workers or --gpus");
		double *sp = ir_xmalloc(sizeof *sp * (size_t)w);
		IrError e;
		if (sim_speeds_draw(v[O_SPEED_DIST].str, w, seed, sp, &e)) {
			free(sp);
			return tool_error(VERB, EXIT_BADINPUT, "--speed-dist: %s", e.msg);
		}
		*speed = sp;
		*n = w;
		return EXIT_OK;
	}
	if (v[O_DP_WORKERS].set)
		return tool_error(VERB, EXIT_BADINPUT, "--dp-workers needs --speed-dist");
	return EXIT_OK;
}

/* Shards a dynamic-sharding step may deal out (the work of its simulation). */
#define MAX_SHARDS 1e7

/* Fills run from the flags and the cluster; returns an exit code. */
static int build_run(const char *input, const Val *v, const IrCluster *cl, Run *run)
{
	memset(run, 0, sizeof *run);
	run->pace = run->ideal_pace = 1.0;
	run->wall_s = NAN;
	run->gpus = v[O_GPUS].set ? (int)v[O_GPUS].num : cl ? ir_cluster_gpus(cl) : 0;
	run->gpus_per_node = v[O_GPUS_PER_NODE].set ? (int)v[O_GPUS_PER_NODE].num
			     : cl                   ? cl->gpus_per_node
						    : 8;
	bool by_hand = v[O_STEP_TIME].set || v[O_TOKENS_PER_STEP].set || v[O_TOKENS].set;
	if (input && (v[O_STEP_TIME].set || v[O_TOKENS_PER_STEP].set || v[O_GPU_HOURS].set))
		return tool_error(VERB, EXIT_BADINPUT,
				  "give a plan/model or --step-time/--gpu-hours, not both");
	if (v[O_GPU_HOURS].set && by_hand)
		return tool_error(VERB, EXIT_BADINPUT,
				  "--gpu-hours replaces --step-time, --tokens-per-step and --tokens");
	if (input) {
		int rc = run_from_plan(input, v, cl, run);
		if (rc)
			return rc;
		if (!v[O_TOKENS].set)
			return tool_error(VERB, EXIT_BADINPUT, "--tokens T is needed with a plan or model");
		run->tokens = v[O_TOKENS].num;
	} else if (v[O_GPU_HOURS].set) {
		run->gpu_hours = v[O_GPU_HOURS].num;
		if (run->gpus > 0) {
			run->wall_s = run->gpu_hours * 3600.0 / run->gpus;
			run->step_s = 1.0; /* unknown: only bounds the checkpoint interval */
		}
		if (v[O_SPEEDS].set || v[O_SPEED_DIST].set)
			return tool_error(VERB, EXIT_BADINPUT,
					  "stragglers need a step time (--step-time), not --gpu-hours");
		if (v[O_FAILURES].set && run->gpus <= 0)
			return tool_error(VERB, EXIT_BADINPUT, "--failures with --gpu-hours needs --gpus");
		return EXIT_OK;
	} else if (by_hand) {
		static const OptId need[] = {O_STEP_TIME, O_TOKENS_PER_STEP, O_TOKENS};
		for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
			if (!v[need[i]].set)
				return tool_error(VERB, EXIT_BADINPUT,
						  "--step-time, --tokens-per-step and --tokens go "
						  "together: --%s is missing", opts[need[i]].name);
		run->step_s = v[O_STEP_TIME].num;
		run->tokens_per_step = v[O_TOKENS_PER_STEP].num;
		run->tokens = v[O_TOKENS].num;
	} else {
		return tool_error(VERB, EXIT_BADINPUT,
				  "nothing to estimate: give --step-time S --gpus G --tokens-per-step N "
				  "--tokens T, or --gpu-hours H (see --help)");
	}
	if (run->gpus <= 0)
		return tool_error(VERB, EXIT_BADINPUT, "--gpus (or --cluster) is needed with --step-time");

	double *speed;
	int n;
	int rc = load_speeds(v, run->gpus, v[O_SEED].set ? (uint64_t)v[O_SEED].num : 1, &speed,
			    &n);
	if (rc)
		return rc;
	if (v[O_SHARDING].set && sim_sharding_parse(v[O_SHARDING].str, &run->sharding)) {
		free(speed);
		return tool_error(VERB, EXIT_BADINPUT, "--sharding: unknown '%s' (even or dynamic)",
				  v[O_SHARDING].str);
	}
	if (n > 0) {
		int spw = v[O_SHARDS_PER_WORKER].set ? (int)v[O_SHARDS_PER_WORKER].num : 32;
		if (run->sharding == SIM_SHARD_DYNAMIC && (double)n * spw > MAX_SHARDS) {
			free(speed);
			return tool_error(VERB, EXIT_BADINPUT,
					  "%d workers x %d shards per worker is over %.0e shards "
					  "(docs/limits.md)", n, spw, MAX_SHARDS);
		}
		run->workers = n;
		run->pace = sim_straggler_pace(speed, n, run->sharding, spw);
		run->ideal_pace = sim_straggler_ideal_pace(speed, n);
	}
	free(speed);

	SimRunTime rt;
	IrError e;
	if (sim_run_time(run->step_s * run->pace, run->gpus, run->tokens_per_step, run->tokens,
			 &rt, &e))
		return tool_error(VERB, EXIT_BADINPUT, "%s", e.msg);
	run->steps = rt.steps;
	run->wall_s = rt.wall_s;
	run->gpu_hours = rt.gpu_hours;
	return EXIT_OK;
}

void tool_cost_model(const IrCluster *cl, SimCostModel *m)
{
	sim_cost_model_default(m);
	if (cl) {
		m->power_w = cl->gpu.power_w;
		m->price_per_gpu_hour = cl->price_per_gpu_hour;
		m->carbon_kg_per_kwh = cl->carbon_kg_per_kwh;
		m->pue = cl->pue >= 1 ? cl->pue : 1;
		if (cl->currency)
			snprintf(m->currency, sizeof m->currency, "%s", cl->currency);
	}
}

static int cost_model(const Val *v, const IrCluster *cl, SimCostModel *m)
{
	tool_cost_model(cl, m);
	if (v[O_PRICE].set)
		m->price_per_gpu_hour = v[O_PRICE].num;
	if (v[O_POWER].set)
		m->power_w = v[O_POWER].num;
	if (v[O_PUE].set)
		m->pue = v[O_PUE].num;
	if (v[O_CARBON].set)
		m->carbon_kg_per_kwh = v[O_CARBON].num;
	if (v[O_TREE].set)
		m->tree_kg_per_year = v[O_TREE].num;
	if (v[O_PERCAP_US].set)
		m->percap_us_t = v[O_PERCAP_US].num;
	if (v[O_PERCAP_CN].set)
		m->percap_cn_t = v[O_PERCAP_CN].num;
	if (v[O_CURRENCY].set) {
		const char *c = v[O_CURRENCY].str;
		size_t len = strlen(c);
		bool ok = len == 3;
		for (size_t i = 0; ok && i < len; i++)
			ok = c[i] >= 'A' && c[i] <= 'Z';
		if (!ok)
			return tool_error(VERB, EXIT_BADINPUT,
					  "--currency: '%s' is not a 3-letter code like USD or CNY", c);
		snprintf(m->currency, sizeof m->currency, "%s", c);
	}
	IrError e;
	if (sim_cost_model_check(m, &e))
		return tool_error(VERB, EXIT_BADINPUT, "%s", e.msg);
	return EXIT_OK;
}

static int failure_model(const Val *v, const Run *run, SimFailureModel *f)
{
	SimPolicy p = SIM_RESTART_ALL;
	if (v[O_POLICY].set && sim_policy_parse(v[O_POLICY].str, &p))
		return tool_error(VERB, EXIT_BADINPUT,
				  "--policy: unknown '%s' (restart-all, failover or elastic)",
				  v[O_POLICY].str);
	sim_failure_model_default(f, p);
	if (v[O_FAILURE_RATE].set && v[O_MTBF_HOURS].set)
		return tool_error(VERB, EXIT_BADINPUT, "give --failure-rate or --mtbf-hours, not both");
	if (v[O_FAILURE_RATE].set)
		f->rate_per_gpu_hour = v[O_FAILURE_RATE].num;
	if (v[O_MTBF_HOURS].set)
		f->rate_per_gpu_hour = 1.0 / (v[O_MTBF_HOURS].num * run->gpus);
	static const struct {
		OptId id;
		size_t off;
	} secs[] = {
		{O_SOFT_FRACTION, offsetof(SimFailureModel, soft_fraction)},
		{O_DETECT, offsetof(SimFailureModel, detect_s)},
		{O_RESTART, offsetof(SimFailureModel, restart_s)},
		{O_REPLACE, offsetof(SimFailureModel, replace_s)},
		{O_REPAIR, offsetof(SimFailureModel, repair_s)},
		{O_CKPT_SAVE, offsetof(SimFailureModel, ckpt_save_s)},
		{O_CKPT_LOAD, offsetof(SimFailureModel, ckpt_load_s)},
		{O_CKPT_INTERVAL, offsetof(SimFailureModel, ckpt_interval_s)},
	};
	for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++)
		if (v[secs[i].id].set)
			*(double *)((char *)f + secs[i].off) = v[secs[i].id].num;
	if (v[O_HORIZON_DAYS].set)
		f->horizon_s = v[O_HORIZON_DAYS].num * 86400.0;
	if (v[O_RUNS].set)
		f->runs = (int)v[O_RUNS].num;
	if (v[O_SEED].set)
		f->seed = (uint64_t)v[O_SEED].num;
	IrError e;
	if (sim_failure_model_check(f, &e))
		return tool_error(VERB, EXIT_BADINPUT, "%s", e.msg);
	return EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* Output.                                                              */

static json_t *jnum(double x)
{
	return isfinite(x) ? json_real(x) : json_null();
}

static json_t *cost_json(const SimCost *c, const SimCostModel *m)
{
	json_t *o = json_object();
	json_object_set_new(o, "gpu_hours", jnum(c->gpu_hours));
	json_object_set_new(o, "cost", jnum(c->cost));
	json_object_set_new(o, "currency", json_string(m->currency));
	json_object_set_new(o, "energy_kwh", jnum(c->energy_kwh));
	json_object_set_new(o, "co2e_t", jnum(c->co2e_t));
	json_object_set_new(o, "tree_years", jnum(c->tree_years));
	json_t *pc = json_object();
	json_object_set_new(pc, "us", jnum(c->percap_us_years));
	json_object_set_new(pc, "china", jnum(c->percap_cn_years));
	json_object_set_new(o, "per_capita_years", pc);
	return o;
}

static const char *si_or(double x, const char *unit, char *buf, size_t n)
{
	char tmp[32];
	if (!isfinite(x))
		snprintf(buf, n, "unknown");
	else
		snprintf(buf, n, "%s%s", tool_si(x, tmp, sizeof tmp), unit);
	return buf;
}

static void print_cost(const SimCost *c, const SimCostModel *m, double wall_s)
{
	char a[64], b[64];
	printf("  %-16s %s\n", "wall time", tool_duration(wall_s, a, sizeof a));
	printf("  %-16s %s\n", "GPU-hours", si_or(c->gpu_hours, "", a, sizeof a));
	if (isfinite(c->cost))
		printf("  %-16s %s %s   (%g %s/GPU-hour; 1%% of it: %s %s)\n", "cost",
		       si_or(c->cost, "", a, sizeof a), m->currency, m->price_per_gpu_hour,
		       m->currency, si_or(c->cost / 100, "", b, sizeof b), m->currency);
	else
		printf("  %-16s unknown (--price-per-gpu-hour)\n", "cost");
	if (isfinite(c->energy_kwh))
		printf("  %-16s %s   (%g W/GPU, PUE %g)\n", "energy",
		       si_or(c->energy_kwh * 1000, "Wh", a, sizeof a), m->power_w, m->pue);
	else
		printf("  %-16s unknown (--power-w)\n", "energy");
	if (isfinite(c->co2e_t)) {
		printf("  %-16s %.4g t   (%g kg/kWh)\n", "CO2e", c->co2e_t, m->carbon_kg_per_kwh);
		printf("  %-16s %s tree-years (%g kg/tree/year)\n", "  absorbed by",
		       si_or(c->tree_years, "", a, sizeof a), m->tree_kg_per_year);
		printf("  %-16s %.3g US / %.3g China per-capita years (%g / %g t)\n", "  equals",
		       c->percap_us_years, c->percap_cn_years, m->percap_us_t, m->percap_cn_t);
	} else {
		printf("  %-16s unknown (--carbon-intensity)\n", "CO2e");
	}
}

/* ------------------------------------------------------------------ */
/* Elastic re-planning: compile for the nodes that remain, once per count. */

typedef struct Replan {
	const Run *run;
	int nodes;               /* of the full job */
	double fixed_s;          /* --replan-s, or < 0: the compile's own time */
	double *step_s;          /* per node count: simulated step (NAN: not yet;
				    INFINITY: no plan fits) */
	double *compile_s;
	int compiles;
} Replan;

static void replan_node(Replan *rp, int nodes)
{
	if (!isnan(rp->step_s[nodes]))
		return;
	const Run *run = rp->run;
	ToolPoint pt = {.model = run->model, .set = run->set, .cluster = run->cluster,
			.nodes = nodes, .batch = run->global_batch, .recompute = -1};
	ToolStep st;
	fprintf(stderr, "  elastic: compiling for %d node%s ...", nodes, nodes > 1 ? "s" : "");
	tool_point_step(&pt, NULL, &st);
	rp->step_s[nodes] = st.status == EXIT_OK ? st.step_s : INFINITY;
	rp->compile_s[nodes] = st.compile_s;
	rp->compiles++;
	if (st.status == EXIT_OK)
		fprintf(stderr, " step %.4g s (%.1f s)\n", st.step_s, st.compile_s);
	else
		fprintf(stderr, " no plan: %s\n", st.why);
	tool_step_free(&st);
}

/* SimRunSpec.step_time_for_gpus: the re-planned step on `gpus` GPUs. */
static double replan_step(int gpus, void *ctx)
{
	Replan *rp = ctx;
	int nodes = gpus / rp->run->gpus_per_node;
	if (nodes >= rp->nodes)
		return rp->run->step_s * rp->run->pace;
	if (nodes < 1)
		return INFINITY;
	replan_node(rp, nodes);
	return rp->step_s[nodes] * rp->run->pace;
}

/* SimRunSpec.replan_s: what re-planning for `gpus` GPUs costs. */
static double replan_cost(int gpus, void *ctx)
{
	Replan *rp = ctx;
	if (rp->fixed_s >= 0)
		return rp->fixed_s;
	int nodes = gpus / rp->run->gpus_per_node;
	if (nodes < 1 || nodes > rp->nodes)
		return 0;
	if (nodes == rp->nodes) /* back to the plan already compiled */
		return 0;
	replan_node(rp, nodes);
	return rp->compile_s[nodes];
}

/* The re-planned node counts and the goodput against the linear assumption. */
static json_t *replan_json(const Replan *rp, const SimResilience *res, const SimResilience *lin)
{
	json_t *o = json_object();
	json_t *arr = json_array();
	for (int n = rp->nodes - 1; n >= 1; n--) {
		if (isnan(rp->step_s[n]))
			continue;
		json_t *c = json_object();
		json_object_set_new(c, "nodes", json_integer(n));
		json_object_set_new(c, "gpus", json_integer(n * rp->run->gpus_per_node));
		json_object_set_new(c, "fits", json_boolean(isfinite(rp->step_s[n])));
		json_object_set_new(c, "step_time_s", jnum(rp->step_s[n]));
		json_object_set_new(c, "linear_step_time_s",
				    jnum(rp->run->step_s * rp->nodes / n));
		json_object_set_new(c, "compile_s", jnum(rp->compile_s[n]));
		json_array_append_new(arr, c);
	}
	json_object_set_new(o, "node_counts", arr);
	json_object_set_new(o, "compiles", json_integer(rp->compiles));
	json_object_set_new(o, "replan_s", rp->fixed_s >= 0 ? jnum(rp->fixed_s)
							     : json_string("measured"));
	json_object_set_new(o, "ettr", jnum(res->ettr));
	json_object_set_new(o, "ettr_linear", jnum(lin->ettr));
	json_object_set_new(o, "wall_time_s", jnum(res->wall_s));
	json_object_set_new(o, "wall_time_linear_s", jnum(lin->wall_s));
	json_object_set_new(o, "goodput_vs_linear", jnum(res->ettr / lin->ettr - 1));
	return o;
}

static void print_replan(const Replan *rp, const SimResilience *res, const SimResilience *lin)
{
	printf("elastic re-planning (a plan compiled for each node count reached)\n");
	for (int n = rp->nodes - 1; n >= 1; n--) {
		if (isnan(rp->step_s[n]))
			continue;
		double linear = rp->run->step_s * rp->nodes / n;
		if (isfinite(rp->step_s[n]))
			printf("  %5d nodes      step %.4g s (linear %.4g s, x%.4f), re-plan %.3g s%s\n",
			       n, rp->step_s[n], linear, rp->step_s[n] / linear,
			       rp->fixed_s >= 0 ? rp->fixed_s : rp->compile_s[n],
			       rp->fixed_s >= 0 ? " (--replan-s)" : " (compile time)");
		else
			printf("  %5d nodes      no plan fits: the job waits for a node\n", n);
	}
	printf("  %-16s %.4f re-planned vs %.4f linear (goodput %+.3f%%); wall %.5g vs %.5g days\n",
	       "ETTR", res->ettr, lin->ettr, 100 * (res->ettr / lin->ettr - 1),
	       res->wall_s / 86400, lin->wall_s / 86400);
}

static int estimate_with(const Val *v, const char *input, IrCluster *cl, Replan *rpp)
{
	Run run;
	SimCostModel m;
	int rc = build_run(input, v, cl, &run);
	if (!rc)
		rc = cost_model(v, cl, &m);
	if (rc)
		return rc;
	for (int i = 0; i < NOPT; i++)
		if (opts[i].group == G_FAILURES && v[i].set && !v[O_FAILURES].set)
			return tool_error(VERB, EXIT_BADINPUT, "--%s needs --failures", opts[i].name);

	SimFailureModel f;
	SimResilience res, lin;
	SimRunSpec spec = {0};
	Replan *rp = rpp;
	bool elastic = false;
	bool failures = v[O_FAILURES].set;
	enum { NSWEEP = 25 };
	double sw_iv[NSWEEP], sw_slow[NSWEEP], sw_best = NAN, young = NAN;
	if (failures) {
		if ((rc = failure_model(v, &run, &f)))
			return rc;
		spec = (SimRunSpec){.work_s = run.wall_s, .step_s = run.step_s * run.pace,
				    .gpus = run.gpus, .gpus_per_node = run.gpus_per_node};
		IrError e;
		elastic = f.policy == SIM_ELASTIC && run.replannable &&
			  run.gpus % run.gpus_per_node == 0;
		if (v[O_REPLAN].set && !elastic)
			return tool_error(VERB, EXIT_BADINPUT,
					  "--replan-s needs --policy elastic and a plan or model");
		if (elastic) {
			/* the linear assumption first, on the same failures */
			if (sim_resilience(&spec, &f, &lin, &e))
				return tool_error(VERB, EXIT_INFEASIBLE, "%s", e.msg);
			rp->run = &run;
			rp->nodes = run.gpus / run.gpus_per_node;
			rp->fixed_s = v[O_REPLAN].set ? v[O_REPLAN].num : -1;
			rp->step_s = malloc(sizeof *rp->step_s * (size_t)(rp->nodes + 1));
			rp->compile_s = calloc((size_t)rp->nodes + 1, sizeof *rp->compile_s);
			if (!rp->step_s || !rp->compile_s)
				abort();
			for (int i = 0; i <= rp->nodes; i++)
				rp->step_s[i] = NAN;
			spec.step_time_for_gpus = replan_step;
			spec.replan_s = replan_cost;
			spec.ctx = rp;
		}
		int rc2 = sim_resilience(&spec, &f, &res, &e);
		if (rc2)
			return tool_error(VERB, EXIT_INFEASIBLE, "%s", e.msg);
		young = sim_young_daly_interval(f.ckpt_save_s, res.mtbf_s, spec.step_s);
		if (v[O_SWEEP].set &&
		    sim_ckpt_sweep(&spec, &f, young / 4, young * 4, NSWEEP, sw_iv, sw_slow, &sw_best, &e))
			return tool_error(VERB, EXIT_INFEASIBLE, "%s", e.msg);
	}

	SimCost c0, c;
	sim_cost(&m, run.gpu_hours, &c0);
	c = c0;
	double wall = run.wall_s;
	if (failures) {
		sim_cost(&m, res.gpu_hours, &c);
		wall = res.wall_s;
	}

	if (v[O_JSON].set) {
		json_t *o = json_object();
		json_t *in = json_object();
		if (run.step_s > 0 && run.tokens > 0) {
			json_object_set_new(in, "step_time_s", jnum(run.step_s));
			json_object_set_new(in, "tokens_per_step", jnum(run.tokens_per_step));
			json_object_set_new(in, "tokens", jnum(run.tokens));
			json_object_set_new(in, "steps", jnum(run.steps));
		}
		json_object_set_new(in, "gpus", run.gpus > 0 ? json_integer(run.gpus) : json_null());
		json_object_set_new(in, "price_per_gpu_hour", jnum(m.price_per_gpu_hour > 0 ? m.price_per_gpu_hour : NAN));
		json_object_set_new(in, "power_w", jnum(m.power_w > 0 ? m.power_w : NAN));
		json_object_set_new(in, "pue", jnum(m.pue));
		json_object_set_new(in, "carbon_kg_per_kwh", jnum(m.carbon_kg_per_kwh > 0 ? m.carbon_kg_per_kwh : NAN));
		json_object_set_new(o, "inputs", in);
		json_object_set_new(o, "wall_time_s", jnum(wall));
		json_t *cj = cost_json(&c, &m);
		json_object_update(o, cj);
		json_decref(cj);
		if (run.workers > 0) {
			json_t *s = json_object();
			json_object_set_new(s, "workers", json_integer(run.workers));
			json_object_set_new(s, "sharding", json_string(sim_sharding_name(run.sharding)));
			json_object_set_new(s, "slowdown", jnum(run.pace));
			json_object_set_new(s, "ideal_slowdown", jnum(run.ideal_pace));
			json_object_set_new(o, "stragglers", s);
		}
		if (failures) {
			json_t *fo = json_object();
			json_object_set_new(fo, "policy", json_string(sim_policy_name(f.policy)));
			json_object_set_new(fo, "runs", json_integer(f.runs));
			json_object_set_new(fo, "seed", json_integer((json_int_t)f.seed));
			json_object_set_new(fo, "failure_rate_per_gpu_hour", jnum(f.rate_per_gpu_hour));
			json_object_set_new(fo, "mtbf_s", jnum(res.mtbf_s));
			json_object_set_new(fo, "soft_fraction", jnum(f.soft_fraction));
			json_object_set_new(fo, "detect_s", jnum(f.detect_s));
			json_object_set_new(fo, "restart_s", jnum(f.restart_s));
			json_object_set_new(fo, "replace_s", jnum(f.replace_s));
			if (f.policy == SIM_ELASTIC)
				json_object_set_new(fo, "repair_s", jnum(f.repair_s));
			json_object_set_new(fo, "ckpt_save_s", jnum(f.ckpt_save_s));
			json_object_set_new(fo, "ckpt_load_s", jnum(f.ckpt_load_s));
			json_object_set_new(fo, "ckpt_interval_s", jnum(res.interval_s));
			json_object_set_new(fo, "ckpt_interval_young_daly_s", jnum(young));
			if (f.horizon_s > 0)
				json_object_set_new(fo, "horizon_s", jnum(f.horizon_s));
			json_object_set_new(fo, "ettr", jnum(res.ettr));
			json_object_set_new(fo, "ettr_min", jnum(res.ettr_min));
			json_object_set_new(fo, "ettr_max", jnum(res.ettr_max));
			json_object_set_new(fo, "interruptions", jnum(res.interruptions));
			json_t *by = json_object();
			json_object_set_new(by, "soft", jnum(res.soft));
			json_object_set_new(by, "hard", jnum(res.hard));
			json_object_set_new(fo, "interruptions_by_cause", by);
			json_object_set_new(fo, "checkpoints", jnum(res.checkpoints));
			if (f.policy == SIM_ELASTIC)
				json_object_set_new(fo, "rejoins", jnum(res.rejoins));
			if (elastic)
				json_object_set_new(fo, "replanning", replan_json(rp, &res, &lin));
			json_object_set_new(fo, "wall_time_s", jnum(res.wall_s));
			json_object_set_new(fo, "wall_time_min_s", jnum(res.wall_min_s));
			json_object_set_new(fo, "wall_time_max_s", jnum(res.wall_max_s));
			json_object_set_new(fo, "useful_time_s", jnum(res.useful_s));
			json_object_set_new(fo, "progress", jnum(res.progress));
			json_t *lost = json_object();
			for (int i = 0; i < SIM_NLOST; i++)
				json_object_set_new(lost, sim_lost_name(i), jnum(res.lost_s[i]));
			json_object_set_new(fo, "time_lost_s", lost);
			json_t *ff = cost_json(&c0, &m);
			json_object_set_new(ff, "wall_time_s", jnum(run.wall_s));
			json_object_set_new(fo, "fault_free", ff);
			if (v[O_SWEEP].set) {
				json_t *arr = json_array();
				for (int i = 0; i < NSWEEP; i++) {
					json_t *pt = json_object();
					json_object_set_new(pt, "interval_s", jnum(sw_iv[i]));
					json_object_set_new(pt, "slowdown", jnum(sw_slow[i]));
					json_array_append_new(arr, pt);
				}
				json_object_set_new(fo, "sweep", arr);
				json_object_set_new(fo, "sweep_best_interval_s", jnum(sw_best));
			}
			json_object_set_new(o, "failures", fo);
		}
		tool_print_json(o);
		return EXIT_OK;
	}

	char a[64], b[64];
	printf("meshplan estimate\n");
	if (run.tokens > 0)
		printf("  %-16s %.6g steps x %.4g s on %d GPUs (%s tokens, %s tokens/step)\n", "run",
		       run.steps, run.step_s, run.gpus, si_or(run.tokens, "", a, sizeof a),
		       si_or(run.tokens_per_step, "", b, sizeof b));
	if (run.workers > 0)
		printf("  %-16s %d workers, %s sharding: step x %.4g (ideal x %.4g)\n", "stragglers",
		       run.workers, sim_sharding_name(run.sharding), run.pace, run.ideal_pace);
	print_cost(&c, &m, wall);
	if (!failures)
		return EXIT_OK;
	printf("failures (%s, %d runs, seed %llu)\n", sim_policy_name(f.policy), f.runs,
	       (unsigned long long)f.seed);
	if (f.horizon_s > 0)
		printf("  %-16s %s simulated, %.3g%% of the run done\n", "horizon",
		       tool_duration(f.horizon_s, a, sizeof a), 100 * res.progress);
	printf("  %-16s %.3g per GPU-hour = cluster MTBF %s; %.0f%% soft\n", "failure rate",
	       f.rate_per_gpu_hour, tool_duration(res.mtbf_s, a, sizeof a), 100 * f.soft_fraction);
	printf("  %-16s every %s%s, save %g s, load %g s\n", "checkpoint",
	       tool_duration(res.interval_s, a, sizeof a),
	       v[O_CKPT_INTERVAL].set ? "" : " (Young/Daly sqrt(2 x save x MTBF))", f.ckpt_save_s,
	       f.ckpt_load_s);
	if (f.policy == SIM_ELASTIC)
		printf("  %-16s detect %g s, restart %g s, lost node back after %s\n", "recovery",
		       f.detect_s, f.restart_s, tool_duration(f.repair_s, a, sizeof a));
	else
		printf("  %-16s detect %g s, restart %g s, spare node (hard) %g s\n", "recovery",
		       f.detect_s, f.restart_s, f.replace_s);
	printf("  %-16s %.1f (soft %.1f, hard %.1f)\n", "interruptions", res.interruptions,
	       res.soft, res.hard);
	if (f.policy == SIM_ELASTIC)
		printf("  %-16s %.1f repaired nodes taken back\n", "rejoins", res.rejoins);
	printf("  %-16s %.4f (runs %.4f .. %.4f)\n", "ETTR", res.ettr, res.ettr_min, res.ettr_max);
	if (f.horizon_s > 0) {
		printf("  %-16s the work done in it takes %s without failures\n", "useful time",
		       tool_duration(res.useful_s, a, sizeof a));
	} else {
		printf("  %-16s %s with failures, %s without\n", "wall time",
		       tool_duration(res.wall_s, a, sizeof a), tool_duration(run.wall_s, b, sizeof b));
		printf("  %-16s %s with failures, %s without\n", "GPU-hours",
		       si_or(res.gpu_hours, "", a, sizeof a), si_or(run.gpu_hours, "", b, sizeof b));
	}
	printf("  %-16s", "time lost");
	for (int i = 0; i < SIM_NLOST; i++)
		printf("%s %s %s", i ? "," : "", sim_lost_name(i), tool_duration(res.lost_s[i], a, sizeof a));
	printf("\n");
	if (elastic)
		print_replan(rp, &res, &lin);
	if (v[O_SWEEP].set) {
		printf("checkpoint interval sweep (wall time / fault-free time)\n");
		for (int i = 0; i < NSWEEP; i++)
			printf("  %10s  %.5f\n", tool_duration(sw_iv[i], a, sizeof a), sw_slow[i]);
		printf("  best %s, Young/Daly %s\n", tool_duration(sw_best, a, sizeof a),
		       tool_duration(young, b, sizeof b));
	}
	return EXIT_OK;
}

static int estimate(const Val *v, const char *input, IrCluster *cl)
{
	Replan rp = {0};
	int rc = estimate_with(v, input, cl, &rp);
	free(rp.step_s);
	free(rp.compile_s);
	return rc;
}

int cmd_estimate(int argc, char **argv)
{
	Val v[NOPT] = {0};
	const char *input;
	int rc = parse_args(argc, argv, v, &input);
	if (rc)
		return rc;
	if (v[O_HELP].set) {
		usage(stdout);
		return EXIT_OK;
	}
	if (v[O_NODES].set && !v[O_CLUSTER].set && !input)
		return tool_error(VERB, EXIT_BADINPUT, "--nodes needs --cluster or a plan");
	if (input && !is_plan_file(input) && !v[O_CLUSTER].set)
		return tool_error(VERB, EXIT_BADINPUT,
				  "'%s' is not a readable plan file (for a model give --cluster C "
				  "--batch B, or write a plan with meshplan compile -o)", input);
	IrCluster cl, *clp = NULL;
	const char *cluster = v[O_CLUSTER].set ? v[O_CLUSTER].str : NULL;
	IrPlan plan;
	bool have_plan = false;
	if (input && !cluster) { /* a plan's own cluster gives the defaults */
		IrError e;
		if (ir_plan_read(input, &plan, &e))
			return tool_input_error(&e);
		have_plan = true;
		cluster = plan.cluster;
	}
	if (cluster) {
		IrError e;
		int nodes = v[O_NODES].set ? (int)v[O_NODES].num : have_plan ? plan.nodes : 0;
		rc = ir_cluster_load(cluster, nodes, &cl, &e);
		if (have_plan)
			ir_plan_free(&plan);
		if (rc)
			return tool_input_error(&e);
		clp = &cl;
	}
	rc = estimate(v, input, clp);
	if (clp)
		ir_cluster_free(clp);
	return rc;
}
