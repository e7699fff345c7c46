/*
 * tools.h -- the meshplan command line: one cmd_*.c per verb, shared
 * option parsing and output helpers.  Only tools/ prints and exits.
 */
#ifndef MESHPLAN_TOOLS_H
#define MESHPLAN_TOOLS_H

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#include "ir/ir.h"
#include "runtime-sim/sim.h"

/* Exit codes (DESIGN.md section 7). */
enum { EXIT_OK = 0, EXIT_INFEASIBLE = 1, EXIT_BADINPUT = 2 };

/* Each verb: argv[0] is the verb name.  Returns the process exit code. */
int cmd_info(int argc, char **argv);
int cmd_estimate(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_shard(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_simulate(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_provision(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_explain(int argc, char **argv);
/* `meshplan explain`'s text for a simulated plan, to f: stage `only` (-1:
 * all), op records named op_name (NULL: all, and the stage cut). */
void tool_explain_print(FILE *f, const IrGraph *g, const IrCluster *c, const IrPlan *p,
			const SimResult *r, int only, const char *op_name);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
/* The notes of a model imported as hf:FILE, on stderr: what it assumes, and
 * where seq came from when ps does not set it (nothing for other models). */
void tool_model_notes(const IrModelDoc *m, const IrParamSet *ps);
int cmd_report(int argc, char **argv);
/* Logical mesh over the first n0*n1 GPUs of c (within a node, or whole nodes). */
int tool_mesh(const IrCluster *c, int n0, int n1, IrLogicalMesh *v, IrError *e);

/*
 * Options: each verb describes its options in one ToolOpt table that drives
 * parsing, range checks and the options part of --help (tools/opt.c).
 */
typedef enum {
	TOOL_NUM,    /* a finite number in [lo, hi] (lo excluded when open) */
	TOOL_INT,    /* an integer in [lo, hi] */
	TOOL_STR,    /* any text; the verb checks it */
	TOOL_FLAG,   /* no value */
	TOOL_PARAMS, /* NAME=VALUE,... into ToolCmdLine.params (--set) */
} ToolOptKind;

typedef struct ToolOpt {
	const char *name; /* --name (also --name=value) */
	char alias;       /* -x, or 0 */
	ToolOptKind kind;
	const char *arg;  /* the value's name in --help, NULL for flags */
	double lo;
	bool open;
	double hi;
	bool repeat;      /* may be given more than once (the hook sees each) */
	int group;        /* the verb's own grouping (e.g. needs another option) */
	const char *help;
} ToolOpt;

#define TOOL_ANY -INFINITY, false, INFINITY
#define TOOL_POS 0, true, INFINITY
#define TOOL_NONNEG 0, false, INFINITY

/* An option's value: set, times given, the text and (numbers) its value. */
typedef struct ToolVal {
	bool set;
	int count;
	double num;
	const char *str;
} ToolVal;

typedef struct ToolCmdLine {
	const char *verb;
	const ToolOpt *opts;
	int nopts;
	int maxpos;          /* positional arguments allowed */
	IrParamSet *params;  /* where TOOL_PARAMS options go */
	/* Called for every option given, in order, after its checks (value
	 * NULL for flags); returns EXIT_OK or an exit code that stops parsing. */
	int (*hook)(void *ctx, int id, const char *value);
	void *ctx;
	void (*usage)(FILE *f); /* the verb's --help text, for tool_opts_done */
} ToolCmdLine;

/* Parses argv[1..argc) into v[cl->nopts] and pos[] (at most cl->maxpos);
 * EXIT_OK, or the exit code after printing the error. */
int tool_opts_parse(const ToolCmdLine *cl, int argc, char **argv, ToolVal *v, const char **pos,
		    int *npos);
/* tool_opts_parse, then --help (an option named "help"): true when the verb
 * is done, with *code its exit code: EXIT_OK after printing cl->usage to
 * stdout, or the parse error's code. */
bool tool_opts_done(const ToolCmdLine *cl, int argc, char **argv, ToolVal *v, const char **pos,
		    int *npos, int *code);
/* "  --name ARG   help" per option. */
void tool_opts_help(FILE *f, const ToolOpt *opts, int n);

/* Prints "meshplan: <file>:<line>: <msg>" on stderr and returns EXIT_BADINPUT. */
int tool_input_error(const IrError *e);
/* Prints "meshplan <verb>: <msg>" on stderr and returns `code`. */
/* s seconds as "12.3 s", "4.5 min", "6.7 h" or "8.9 days" ("unknown" if not finite), in buf. */
const char *tool_duration(double s, char *buf, size_t n);
int tool_error(const char *verb, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Dumps a JSON object on stdout (indented, sorted as built) and frees it. */
void tool_print_json(json_t *obj);
/* A PassProgress on stderr: at a terminal one live line "what done/total,
 * elapsed, ETA" (total <= 0: unknown, no ETA), cleared at done == total and
 * by tool_progress_end; otherwise one such line when a phase begins and
 * then at most every 5 s.  The ETA is the phase's: its elapsed time over
 * the jobs done, times the jobs left. */
void tool_progress(void *ctx, const char *what, int done, int total);
void tool_progress_end(void);
/* Strict number parsing for flags: whole string must be a finite number. */
bool tool_parse_double(const char *s, double *out);
bool tool_parse_int(const char *s, long *out);
/* "1.23 G" style formatting for tables: value scaled to k/M/G/T/P. */
const char *tool_si(double v, char *buf, size_t n);

/* Opens a model, instantiates it with ps and builds its training graph. */
int tool_load_training_graph(const char *model, const IrParamSet *ps, IrGraph *g, IrError *e);
/* Writes the plan to `out` and the trace of r to `trace` (either may be
 * NULL): both into temporary files first, renamed over their targets only
 * when both were written whole.  EXIT_OK, or the code after printing why:
 * EXIT_BADINPUT when a target cannot be created, EXIT_INFEASIBLE when a
 * write fails (disk full, file too large). */
int tool_write_outputs(const char *verb, const IrPlan *p, const SimResult *r, const char *out,
		       const char *trace);
/* Every file a simulated plan can be written to (NULL: not wanted). */
typedef struct ToolOutputs {
	const char *plan, *trace;
	const char *svg_timeline, *svg_mesh, *svg_memory;
	SimTraceDetail trace_detail; /* the trace's (0: stage) */
} ToolOutputs;
/* --trace-detail's value into o->trace_detail; EXIT_OK or the code after
 * printing why. */
int tool_trace_detail(const char *verb, const char *value, ToolOutputs *o);
/* tool_write_outputs for all of them: each into a temporary file, renamed
 * over its target only when every one was written whole.  g and c may be
 * NULL only without svg_mesh, svg_memory and a trace finer than stages. */
int tool_write_all(const char *verb, const IrGraph *g, const IrCluster *c, const IrPlan *p,
		   const SimResult *r, const ToolOutputs *o);
/*
 * The plan of `simulate MODEL --manual KEYS` on cluster c (loaded from
 * cluster_spec), simulated: plan, its training graph g and result r filled.
 * 0, or EXIT_BADINPUT / EXIT_INFEASIBLE with e (plan initialised, g and r
 * not to be freed).
 */
int tool_manual_plan(const char *model, const IrParamSet *ps, const IrCluster *c,
		     const char *cluster_spec, int64_t batch, const char *keys, double time_limit,
		     IrPlan *plan, IrGraph *g, SimResult *r, IrError *e);
/* Reads PLAN.xml with its cluster (nodes > 0 overrides) and model and
 * simulates it; on success the caller frees p, c, g and r. */
int tool_plan_simulate(const char *path, int nodes, IrPlan *p, IrCluster *c, IrGraph *g,
		       SimResult *r, IrError *e);

/* The JSON report of a simulated plan (the keys of `simulate --json`). */
json_t *tool_sim_json(const IrGraph *g, const IrCluster *c, const IrPlan *p, const SimResult *r);
/* The ZeRO stage stage s shows (cmd_explain.c): 3 when its weights, 2 when
 * its gradients and optimizer state, 1 when its optimizer state are split
 * over more devices than its tensor and expert parallelism split them
 * (memory per device m, as the simulator counts it). */
int tool_stage_zero(const IrGraph *g, const IrStagePlan *s, const SimStageMemory *m);
/* Throughput, TFLOPS/MFU and peak-memory lines of a simulated step (tables). */
void tool_print_step_summary(const IrCluster *c, const SimResult *r);
/* A stage's table labels: layers "1-12 block0..block11" (64 bytes), sub-mesh
 * "1x8@n0g0" (32), logical mesh "2x4" (16). */
void tool_stage_labels(const IrGraph *g, const IrStagePlan *s, char *layers, char *mesh,
		       char *logical);

/* ------------------------------------------------------------------ */
/* Points of sweeps and resource searches (point.c).                    */

/* estimate's cost defaults for a cluster: its price, GPU power, PUE,
 * carbon intensity and currency (cmd_estimate.c). */
void tool_cost_model(const IrCluster *cl, SimCostModel *m);

/* A model compiled for a cluster at a node count and a global batch. */
typedef struct ToolPoint {
	const char *model;      /* spec: zoo, file or hf: name */
	const char *set;        /* "name=value,..." overrides, NULL or "" for none */
	const char *cluster;
	int nodes;              /* 0: the cluster's own */
	int64_t batch;          /* global batch, samples per step */
	int64_t microbatch;     /* 0: searched */
	int recompute;          /* IrRecompute, -1: searched */
	int max_units;          /* 0: compile's default */
	int threads;            /* compile's threads, 0: one per core */
} ToolPoint;

/* What a compiled point achieves per step. */
typedef struct ToolStep {
	int status;             /* EXIT_OK, EXIT_INFEASIBLE (no plan fits), EXIT_BADINPUT */
	char why[600];          /* status != EXIT_OK: one line */
	int nodes, gpus, gpus_per_node;
	double step_s, tokens_per_step, tokens_per_s, tflops_per_gpu, mfu, peak_mem_bytes;
	double compile_s;       /* wall seconds the compile took (not part of results) */
	SimCostModel cost;      /* the cluster's defaults, as estimate takes them */
	json_t *plan;           /* plan summary: stages, meshes, microbatches, recompute */
} ToolStep;

/*
 * Compiles and simulates point pt (as `meshplan compile` does, but with no
 * wall-clock limit on refinement, so the answer does not depend on load);
 * plan_path non-NULL: writes the plan there.  Fills s (s->plan: caller
 * frees with tool_step_free).  Returns s->status.
 */
int tool_point_step(const ToolPoint *pt, const char *plan_path, ToolStep *s);
void tool_step_free(ToolStep *s);

/* A whole run of `tokens` at a point's step: fault-free, and with
 * failures when asked. */
typedef struct ToolRun {
	double steps, wall_s, gpu_hours;
	SimCost cost;           /* gpu_hours priced by the cluster's defaults */
	bool failures;
	double ettr;            /* failures: useful / wall (else 1) */
	double fail_wall_s, fail_gpu_hours, ckpt_interval_s;
	SimCost fail_cost;
} ToolRun;

/* The run of `tokens` at step s; f non-NULL: also under failures (its
 * checkpoint interval 0: Young/Daly, as estimate chooses).  0, or -1 with
 * e (the run cannot finish). */
int tool_point_run(const ToolStep *s, double tokens, const SimFailureModel *f, ToolRun *r,
		   IrError *e);
/* Wall time and cost a run is judged by: under failures when computed. */
double tool_run_days(const ToolRun *r);
double tool_run_cost(const ToolRun *r);

#endif
