/*
 * passes.h -- meshplan's planning passes: sharding strategies per op,
 * resharding costs, the intra-operator ILP, layer clustering, the
 * inter-operator stage DP and the baseline planners.
 */
#ifndef MESHPLAN_PASSES_H
#define MESHPLAN_PASSES_H

#include "ir/ir.h"
#include "runtime-sim/sim.h"

/* How a label of an op behaves under sharding. */
typedef enum {
	PASS_LABEL_BATCH,      /* in the output and in every input that has it */
	PASS_LABEL_CONTRACTED, /* in inputs, not the output: partial sums */
	PASS_LABEL_OUTPUT,     /* only in the output: each device writes its slice */
} PassLabelClass;

/* Class of label c in op (c must occur in the op). */
PassLabelClass pass_label_class(const IrOp *op, char c);

/* ------------------------------------------------------------------ */
/* Intra-operator pass (intra_op.c): the sharding of one stage's ops on  */
/* one logical mesh, by ILP (GLPK) or by a baseline rule.                */

typedef enum {
	PASS_ILP,       /* the optimum of the ILP */
	PASS_DATA,      /* data parallel: batch split over all devices, weights replicated */
	PASS_ZERO2,     /* data parallel, gradients and optimizer state sharded */
	PASS_ZERO3,     /* ZeRO-3: weights sharded too, gathered before use */
	PASS_HEURISTIC, /* shard each weight's largest dim over all devices */
	PASS_NMETHODS
} PassMethod;

const char *pass_method_name(PassMethod m);
int pass_method_parse(const char *s, PassMethod *m);

typedef struct PassIntraOptions {
	PassMethod method;
	int nmicro;            /* microbatches per step (per-microbatch costs count nmicro times) */
	double memory_budget;  /* bytes per device for weights + gradients + optimizer; 0: none */
	double time_limit_s;   /* ILP time limit; 0: none */
	int zero;              /* >0: force optimizer (1), +gradient (2), +weight (3) sharding
				  over mesh axis 0, as a hand-written plan asks */
	bool exhaustive;       /* enumerate every combination instead of the ILP
				  (a check for small graphs; refuses above 1e7 combinations) */
} PassIntraOptions;

typedef enum {
	PASS_OPTIMAL,    /* proven optimal (or a baseline's plan) */
	PASS_FEASIBLE,   /* ILP time limit: best plan found, see gap */
	PASS_INFEASIBLE, /* nothing fits the memory budget */
	PASS_TIMEOUT,    /* ILP time limit with no plan */
	PASS_ERROR,
} PassStatus;

const char *pass_status_name(PassStatus s);

typedef struct PassIntraResult {
	PassStatus status;
	double objective_s;     /* compute + communication + resharding, one step */
	double compute_s, communication_s, resharding_s;
	double gap;             /* relative ILP gap, 0 when optimal */
	double solve_time_s;
	int variables, constraints;
	char message[256];
} PassIntraResult;

/*
 * Chooses a strategy for every op of layers [first_layer, last_layer] of
 * training graph g on logical mesh m and fills `out` (arrays in plan's
 * arena): per op its strategy and ways, the collectives and resharding
 * it needs, and memory per device.  Returns 0 when a plan was found
 * (status OPTIMAL or FEASIBLE), -1 otherwise with r->status and e set.
 */
int pass_intra_op(const IrGraph *g, const IrCluster *c, const IrLogicalMesh *m,
		  int first_layer, int last_layer, const PassIntraOptions *o, IrPlan *plan,
		  IrStagePlan *out, PassIntraResult *r, IrError *e);

/* ------------------------------------------------------------------ */
/* Inter-operator pass (inter_op_cost.c, inter_op.c): the model's layers */
/* cut into pipeline stages, each on a sub-mesh of the cluster seen as a */
/* logical mesh and sharded by the intra-op pass (Alpa's stage DP).      */

enum {
	PASS_MAX_SHAPES = 40, /* sub-mesh shapes: log2(M)+1 + N-1 */
	PASS_MAX_UNITS = 64,  /* layer clusters the DP cuts between */
};

/* A sub-mesh shape: `nodes` x `gpus` per node (gpus < M only when nodes == 1). */
typedef struct PassShape {
	int nodes, gpus;
} PassShape;

/* (1,1), (1,2), (1,4) .. (1,M), (2,M) .. (N,M) of cluster c; returns the count. */
int pass_submesh_shapes(const IrCluster *c, PassShape *out, int max);
/* Logical views n0 x n1 of shape s placed at node 0, GPU 0: every
 * factorisation, n0 ascending; returns the count. */
int pass_submesh_views(const IrCluster *c, PassShape s, IrLogicalMesh *out, int max);

/* One way to run a range of layers on one logical view, per device. */
typedef struct PassStageOption {
	bool ok;             /* false: no sharding was found */
	double fwd_s, bwd_s; /* forward and backward of one microbatch (recomputation included) */
	double step_s;       /* once per step: gradient sync, optimizer, tied-weight sync */
	double state_bytes;  /* weights + gradients + optimizer state */
	double act_bytes;    /* activations kept per microbatch in flight */
	double work_bytes;   /* live during one backward (recomputed activations) */
	double xfer_s;       /* its output to the next stage's mesh, one microbatch */
} PassStageOption;

/*
 * Stage costs for the DP: for units i <= j (clusters of consecutive
 * layers), shape h and view v, option[pass_stage_index(t, i, j, h, v)].
 * A stage's time is fwd_s + bwd_s + step_s / nmicro (the intra-op pass's
 * step objective over nmicro), plus 2 * xfer_s (activation forward,
 * gradient back) unless it is the last stage: in 1F1B's steady state a
 * pipeline of balanced stages runs a microbatch per stage time plus about
 * two transfers.  Under 1F1B a stage with s stages from it to
 * the end of the pipeline keeps min(s, nmicro) microbatches' activations,
 * and fits when state + min(s, nmicro) * act + work <= mem_bytes.
 */
typedef struct PassStageTable {
	int nunits;
	int *unit_first;          /* nunits + 1 entries: unit u is layers [unit_first[u], unit_first[u+1]) */
	int nshapes;
	PassShape shape[PASS_MAX_SHAPES];
	int nviews[PASS_MAX_SHAPES];
	int maxviews;
	IrLogicalMesh *view;      /* [h * maxviews + v] */
	PassStageOption *option;
	int nmicro;
	double mem_bytes;         /* GPU memory per device */
	IrRecompute recompute;
} PassStageTable;

size_t pass_stage_index(const PassStageTable *t, int i, int j, int h, int v);
/* Allocates t's arrays (unit_first, view, option: all options !ok) for the
 * given units and shapes; the caller fills shapes/views first. */
void pass_stage_table_alloc(PassStageTable *t, int nunits, int nshapes, int maxviews);
void pass_stage_table_free(PassStageTable *t);
/* Time of units i..j on shape h as a stage with s stages from it to the end
 * (itself included): the fastest view that fits; its index in *view.
 * INFINITY (view -1) when none fits. */
double pass_stage_time(const PassStageTable *t, int i, int j, int h, int s, int *view);

/* Costs of every distinct layer on every view of every shape (opaque). */
typedef struct PassLayerCosts PassLayerCosts;

typedef void (*PassProgress)(void *ctx, const char *what, int done, int total);

/*
 * Runs the intra-op ILP on each distinct layer of training graph g (layers
 * of identical structure share one key: op kinds, shapes, labels, roles
 * and wiring) on each logical view of each sub-mesh shape (views that are
 * transposes over the same links share one solve), nmicro microbatches per
 * step, in `threads` threads (0: one per core), and times each plan with
 * sim_stage_cost under every recomputation mode.  NULL with e on failure.
 */
PassLayerCosts *pass_layer_costs(const IrGraph *g, const IrCluster *c, int nmicro, int threads,
				 PassProgress progress, void *progress_ctx, IrError *e);
void pass_layer_costs_free(PassLayerCosts *lc);
/* ILP solves run, and layer-view costs taken from the cache instead. */
void pass_layer_costs_stats(const PassLayerCosts *lc, int *solved, int *cached);

/* Groups g's layers into at most max units of balanced FLOPs (the largest
 * unit as small as possible); fills unit_first (count + 1 entries) and
 * returns the count. */
int pass_cluster_layers(const IrGraph *g, int max, int *unit_first);

/*
 * Fills t (allocating it) with the stage costs of every unit range on every
 * view: the sums of its layers' costs (work: their maximum; a tied weight's
 * copy dropped when its owner is in the same range), under recomputation rc.
 */
int pass_stage_table(const PassLayerCosts *lc, const int *unit_first, int nunits,
		     IrRecompute rc, PassStageTable *t, IrError *e);

/* A pipeline: stage q is units [first[q], last[q]] on shape[q], view[q]. */
typedef struct PassPipeline {
	int nstages;
	int first[PASS_MAX_UNITS], last[PASS_MAX_UNITS];
	int shape[PASS_MAX_UNITS], view[PASS_MAX_UNITS];
	double time_s[PASS_MAX_UNITS]; /* per stage, as pass_stage_time */
	double total_s;  /* sum of stage times + (nmicro - 1) * their maximum */
	double tmax_s;   /* their maximum */
} PassPipeline;

/* Cost sum + (nmicro-1) * max of pipeline p's stages under t (times filled). */
double pass_pipeline_cost(const PassStageTable *t, PassPipeline *p);

/*
 * Alpa's DP: F(s, k, d; tmax) = min over i, shape of t(k..i, shape) +
 * F(s-1, i+1, d - |shape|), every t <= tmax and fitting memory as the s-th
 * stage from the end; the answer min over tmax of F(., 0, devices) +
 * (nmicro-1) * tmax, tmax ascending from the smallest feasible one,
 * stopping once nmicro * tmax >= best.  tmax_gap > 0 skips a tmax within
 * that relative distance of the last one tried (0: every value, exact).
 * Uses exactly `devices` devices.  -1 when no pipeline fits.
 */
int pass_stage_dp(const PassStageTable *t, int devices, double tmax_gap, PassPipeline *out);
/* Every cut into stages and every shape per stage, for checking the DP. */
int pass_stage_brute(const PassStageTable *t, int devices, PassPipeline *out);
/* Least, over pipelines using exactly `devices` devices, of the largest
 * memory per device a stage needs (its fastest-fitting view aside: the
 * leanest view); INFINITY when no shape combination uses the devices. */
double pass_stage_min_memory(const PassStageTable *t, int devices);

/*
 * Shards plan->stages[0 .. plan->nstages) (first_layer, last_layer, mesh,
 * n0, n1 set) with the intra-op ILP, plan->nmicro microbatches per step, in
 * `threads` threads (0: one per core); stages of identical structure on
 * the same view are solved once and copied.  *solves (if non-NULL): the
 * ILP solves run.  0, or -1 with e.
 */
int pass_shard_stages(const IrGraph *g, const IrCluster *c, IrPlan *plan, int threads,
		      int *solves, IrError *e);

typedef struct PassInterOptions {
	int64_t global_batch;   /* samples per step */
	int64_t microbatch;     /* > 0: this microbatch size, else searched */
	int recompute;          /* IrRecompute, or -1: searched */
	int max_units;          /* layer clusters (0: 16) */
	int threads;            /* 0: one per core */
	double tmax_gap;        /* see pass_stage_dp (< 0: default 1e-3) */
	PassProgress progress;  /* NULL: silent */
	void *progress_ctx;
} PassInterOptions;

typedef struct PassInterResult {
	PassStatus status;      /* OPTIMAL: a plan; INFEASIBLE: nothing fits memory */
	double compile_time_s;
	double estimate_s;      /* the DP's step time of the chosen plan */
	int64_t microbatch;
	int nmicro;
	IrRecompute recompute;
	int nunits;
	int ilp_solved, ilp_cached; /* layer-view solves run / taken from the cache */
	int stage_solves;       /* final per-stage intra-op solves */
	double stage_time_s[PASS_MAX_UNITS]; /* per stage: the DP's time (pass_stage_time) */
	double stage_mem_bytes[PASS_MAX_UNITS]; /* per stage: the DP's memory per device */
	int ntried;             /* microbatch sizes evaluated, in order */
	int64_t tried_microbatch[32];
	double tried_estimate_s[32]; /* the DP's best step time there (INFINITY: none fits) */
	int refits;             /* DP reruns at a lowered memory limit after the chosen
				   plan did not fit when simulated whole */
	double need_bytes;      /* INFEASIBLE: least memory per device a plan needs */
	double have_bytes;      /* the GPU's memory */
	char message[256];
} PassInterResult;

/*
 * Compiles model m (overrides ps; `model` and `cluster` are the specs as
 * given, kept in the plan) for cluster c: searches the microbatch size
 * (divisors of the global batch around a memory-based start), the
 * recomputation mode and, per choice, Alpa's DP over the stage costs; then
 * shards each chosen stage with the intra-op pass on its own layers
 * (stages of identical structure once) and places the sub-meshes.  Fills
 * plan (1F1B, initialised here) and g (the training graph at the chosen
 * microbatch, for sim_plan).  0 on success; -1 with r->status INFEASIBLE
 * (r->need_bytes set) when nothing fits, or ERROR with e.
 */
int pass_inter_op(const IrModelDoc *m, const char *model, const IrParamSet *ps,
		  const IrCluster *c, const char *cluster, int nodes, const PassInterOptions *o,
		  IrPlan *plan, IrGraph *g, PassInterResult *r, IrError *e);

#endif
