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
	PASS_EXPERT,    /* data + expert parallel: model state replicated except on expert
			   dims (a weight dim batch-like in an einsum: in every operand and
			   the output, as e in ebch,ehf->ebcf), which may be split over
			   either mesh axis or both; activations split any way */
	PASS_NMETHODS
} PassMethod;

const char *pass_method_name(PassMethod m);
int pass_method_parse(const char *s, PassMethod *m);

/* An LP basis carried from one ILP solve to the next of the same
 * structure (solver/ilp.h: ilp_basis, ilp_warm_start); basis is malloc'd. */
typedef struct PassWarm {
	signed char *basis;
	int n;                 /* 0: none */
} PassWarm;

typedef struct PassIntraOptions {
	PassMethod method;
	int nmicro;            /* microbatches per step (per-microbatch costs count nmicro times) */
	double memory_budget;  /* bytes per device for weights + gradients + optimizer; 0: none */
	double time_limit_s;   /* ILP wall-clock limit, 0: none (a user's choice: the result
				  then depends on the machine's load) */
	int node_limit;        /* ILP branch-and-bound nodes, 0: none (a work limit) */
	PassWarm *warm;        /* NULL, or the ILP starts from warm's basis when it fits and
				  leaves its own there (the optimum is the same either way) */
	int zero;              /* >0: force optimizer (1), +gradient (2), +weight (3) sharding
				  over mesh axis 0, as a hand-written plan asks */
	bool exhaustive;       /* enumerate every combination instead of the ILP
				  (a check for small graphs; refuses above 1e7 combinations) */
	bool glpk_only;        /* always the ILP, also where variable elimination is exact
				  (a check) */
} PassIntraOptions;

typedef enum {
	PASS_OPTIMAL,    /* proven optimal (or a baseline's plan) */
	PASS_FEASIBLE,   /* ILP time or node limit: best plan found, see gap */
	PASS_INFEASIBLE, /* nothing fits the memory budget */
	PASS_TIMEOUT,    /* ILP time or node limit with no plan */
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
	double state_bytes;     /* per device, weights + gradients + optimizer state of the
				   plan found, as PassIntraOptions.memory_budget counts them */
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

/* True when some weight of g has an expert dim (a dim that a forward
 * einsum reading it carries through every operand: e in ebch,ehf->ebcf),
 * as mixture-of-experts layers do. */
bool pass_graph_has_experts(const IrGraph *g);

/* ------------------------------------------------------------------ */
/* Inter-operator pass (inter_op_cost.c, inter_op.c): the model's layers */
/* cut into pipeline stages, each on a sub-mesh of the cluster seen as a */
/* logical mesh and sharded by the intra-op pass (Alpa's stage DP).      */

enum {
	PASS_MAX_SHAPES = 40, /* sub-mesh shapes: log2(M)+1 + N-1 */
	PASS_MAX_UNITS = 64,  /* layer clusters the DP cuts between */
	PASS_DEFAULT_UNITS = 16, /* ... when not asked for another count */
	PASS_DP_MAX_BYTES = 512 << 20, /* the stage DP's tables (pass_stage_dp) */
};

/* A sub-mesh shape: `nodes` x `gpus` per node (gpus < M only when nodes == 1). */
typedef struct PassShape {
	int nodes, gpus;
} PassShape;

/* (1,1), (1,2), (1,4) .. (1,M), (2,M) .. (N,M) of cluster c, at most max;
 * returns the count.  Where 2 .. the room left nodes could not tile the
 * cluster in PASS_DEFAULT_UNITS stages, the node counts are the even
 * splits of the nodes over 1 .. PASS_DEFAULT_UNITS stages and then the
 * smallest counts (ascending either way). */
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
	int zero;            /* the intra-op pass's forced ZeRO stage to shard it so */
	bool exact;          /* measured on the stage sharded whole (else: sums of layers) */
} PassStageOption;

/*
 * Stage costs for the DP: for units i <= j (clusters of consecutive
 * layers), shape h and view v, option[pass_stage_index(t, i, j, h, v)].
 * A stage's time is fwd_s + bwd_s + step_s / nmicro (the intra-op pass's
 * step objective over nmicro).  Under 1F1B a stage with s
 * stages from it to the end of the pipeline (itself included) keeps
 * min(s, nmicro) microbatches' activations, and fits when
 * state + min(s, nmicro) * act + work <= mem_bytes.
 */
typedef struct PassStageTable {
	int nunits;
	int *unit_first;          /* nunits + 1 entries: unit u is layers [unit_first[u], unit_first[u+1]) */
	double *send_bytes;       /* per unit: activations of one microbatch its last layer sends on */
	int nshapes;
	PassShape shape[PASS_MAX_SHAPES];
	int nviews[PASS_MAX_SHAPES];
	int maxviews;
	IrLogicalMesh *view;      /* [h * maxviews + v] */
	PassStageOption *option;
	int nmicro;
	double mem_bytes;         /* GPU memory per device */
	IrRecompute recompute;
	int nodes, gpus_per_node; /* of the cluster */
	IrLink intra, inter;      /* its links */
	bool twins;               /* views [n/2, n) of a shape are lean twins of [0, n/2) */
} PassStageTable;

size_t pass_stage_index(const PassStageTable *t, int i, int j, int h, int v);
/* Allocates t's arrays (unit_first, view, option: all options !ok) for the
 * given units and shapes; the caller fills shapes/views first. */
void pass_stage_table_alloc(PassStageTable *t, int nunits, int nshapes, int maxviews);
void pass_stage_table_free(PassStageTable *t);
/*
 * The placement the DP assumes and the pass makes: whole-node shapes on
 * nodes of their own; partial-node shapes packed in pipeline order into
 * the other nodes, one after another, none straddling two nodes.  `fill`
 * is how many GPUs of the node being packed are taken (0: none).  May
 * shape h come next, and what is the fill after it?
 */
bool pass_place_next(const PassStageTable *t, int fill, int h, int *fill_after);
/* Is shape h less than a node? */
bool pass_shape_partial(const PassStageTable *t, int h);
/*
 * The transfers into a stage of shape h at unit k > 0 from the stage
 * before it, activation forward and gradient back, as the simulator times
 * them: each device of the smaller mesh gets its share over its own link
 * (prev: the shape before when it is a partial-node one, else -1: taken to
 * be no smaller than h); inside a node when both are partial-node shapes in
 * the same node (same_node: prev left its node unfilled), over the network
 * otherwise (when there is one).  0 for k = 0.
 */
double pass_stage_edge(const PassStageTable *t, int k, int prev, bool same_node, int h);

/*
 * Time of units i..j on shape h as a stage with s stages from it to the end
 * (itself included): the fastest view that fits; its index in *view.
 * INFINITY (view -1) when none fits.  Transfers not included.  With twins,
 * a view whose fastest sharding does not fit but whose lean twin (not yet
 * exact) does may also take the part of the twin's savings it needs, at
 * that part of the twin's extra time (as sharding that many of its layers
 * lean would; the intra-op pass, given the memory left as its budget, does
 * no worse); that counts as the twin's view.
 */
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
 * sim_stage_cost under every recomputation mode.  Besides the fastest
 * sharding, a lean one: gradients and optimizer state sharded over axis 0
 * (PassIntraOptions.zero = 2; a 1 x n view solved as its n x 1 transpose),
 * kept where it holds less.  NULL with e on failure.
 */
PassLayerCosts *pass_layer_costs(const IrGraph *g, const IrCluster *c, int nmicro, int threads,
				 PassProgress progress, void *progress_ctx, IrError *e);
/* The same, each ILP's LP started from the basis of the same solve in prev
 * (NULL: none; costs of another microbatch size of the same model and
 * cluster) where its structure is the same: the same costs, found faster.
 * deadline (CLOCK_MONOTONIC seconds, INFINITY: none; a user's wall-clock
 * limit): solves not begun by then are skipped, their costs left unknown
 * (no option), the largest shapes solved first and never the largest
 * skipped; *skipped (if non-NULL): how many. */
PassLayerCosts *pass_layer_costs_warm(const IrGraph *g, const IrCluster *c, int nmicro,
				      int threads, const PassLayerCosts *prev, double deadline,
				      int *skipped, PassProgress progress, void *progress_ctx,
				      IrError *e);
/* Frees the LP bases lc keeps for a later pass_layer_costs_warm. */
void pass_layer_costs_drop_warm(PassLayerCosts *lc);
void pass_layer_costs_free(PassLayerCosts *lc);
/* Layer-view pairs solved, those taken from the cache instead, and the ILP
 * solves run (a pair takes one or two: fastest, then lean). */
void pass_layer_costs_stats(const PassLayerCosts *lc, int *solved, int *cached, int *ilps);

/* Groups g's layers into at most max units of balanced FLOPs (the largest
 * unit as small as possible); fills unit_first (count + 1 entries) and
 * returns the count. */
int pass_cluster_layers(const IrGraph *g, int max, int *unit_first);

/*
 * Fills t (allocating it) with the stage costs of every unit range on every
 * view: the sums of its layers' costs (work: their maximum; a tied weight's
 * copy dropped when its owner is in the same range), under recomputation rc.
 * Each view of lc comes twice (twins): views [0, n) with each layer's
 * fastest sharding, [n, 2n) with its lean one (zero 2; !ok where no layer
 * has a lean sharding; a 1 x n view's lean twin is its n x 1 transpose).
 */
int pass_stage_table(const PassLayerCosts *lc, const int *unit_first, int nunits,
		     IrRecompute rc, PassStageTable *t, IrError *e);

/* The options of a stage already sharded (its whole layer range solved at
 * once), per recomputation mode: sim_stage_cost's figures. */
int pass_stage_options(const IrGraph *g, const IrCluster *c, const IrStagePlan *s,
		       PassStageOption out[3], IrError *e);

/* A pipeline: stage q is units [first[q], last[q]] on shape[q], view[q]. */
typedef struct PassPipeline {
	int nstages;
	int first[PASS_MAX_UNITS], last[PASS_MAX_UNITS];
	int shape[PASS_MAX_UNITS], view[PASS_MAX_UNITS];
	double time_s[PASS_MAX_UNITS]; /* per stage: pass_stage_time + pass_stage_edge */
	double mem_bytes[PASS_MAX_UNITS]; /* per stage: state + in-flight activations + work */
	double total_s;  /* see pass_pipeline_cost */
	double tmax_s;   /* the largest pass_stage_time */
} PassPipeline;

/*
 * Step time of pipeline p under t (per-stage times and views filled):
 * with t_q = pass_stage_time and e_q the transfers into stage q,
 *   sum_q (t_q + e_q) + (nmicro - 1) * max(max_q t_q, sum_q (t_q + e_q) / S).
 * The sum is filling and draining the pipeline; then a microbatch leaves
 * every slowest-stage time, unless the round trip of one microbatch through
 * all S stages and back (transfers included) over the S microbatches 1F1B
 * keeps in flight is longer.  INFINITY when the shapes cannot be placed as
 * pass_place_next packs them.
 */
double pass_pipeline_cost(const PassStageTable *t, PassPipeline *p);

/*
 * Alpa's DP: F(s, k, d; tmax) = min over i, shape of t(k..i, shape) + e +
 * F(s-1, i+1, d - |shape|), every t <= tmax and fitting memory as the s-th
 * stage from the end, e the transfers into it (the state also carries the
 * placement so far and the previous stage's shape if partial-node); the answer min over tmax and s of F(s, 0, devices) +
 * (nmicro-1) * max(tmax, F / s), tmax ascending from the smallest feasible
 * one, stopping once nmicro * tmax >= best: pass_pipeline_cost's optimum.
 * tmax_gap > 0 skips a tmax within that relative distance of the last one
 * tried (0: every value, exact).  Uses exactly `devices` devices.  -1 when
 * no pipeline fits, -2 when its tables would exceed PASS_DP_MAX_BYTES.  by_stages (NULL, or PASS_MAX_UNITS + 1 entries): per
 * stage count S, the best pipeline of S stages met on the way (total_s
 * INFINITY if none): alternatives to check in the simulator.
 */
int pass_stage_dp(const PassStageTable *t, int devices, double tmax_gap, PassPipeline *out,
		  PassPipeline *by_stages);
/* The same, looking only for a pipeline costing less than `bound` (the
 * tmax loop stops once B * tmax >= bound): 0 found, 1 pipelines fit but
 * none costs less, -1 none fits. */
int pass_stage_dp_below(const PassStageTable *t, int devices, double tmax_gap, double bound,
			PassPipeline *out, PassPipeline *by_stages);
/* Every cut into stages and every shape per stage, for checking the DP. */
int pass_stage_brute(const PassStageTable *t, int devices, PassPipeline *out);
/* Least, over pipelines using exactly `devices` devices, of the largest
 * memory per device a stage needs (its fastest-fitting view aside: the
 * leanest view); INFINITY when no shape combination uses the devices. */
double pass_stage_min_memory(const PassStageTable *t, int devices);

/*
 * Shards plan->stages[0 .. plan->nstages) (first_layer, last_layer, mesh,
 * n0, n1 set) with the intra-op pass, options opt[q] for stage q (NULL: the
 * ILP, nothing forced; nmicro is always plan->nmicro), in `threads` threads
 * (0: one per core); stages of identical structure on the same view with
 * the same options are solved once and copied.  A stage whose memory
 * budget the ILP cannot meet (within its limits) is sharded with
 * gradients and optimizer state over axis 0 instead (zero = 2, no budget).
 * *solves (if non-NULL): the stages solved.  0, or -1 with e.
 */
int pass_shard_stages(const IrGraph *g, const IrCluster *c, IrPlan *plan,
		      const PassIntraOptions *opt, int threads, int *solves, IrError *e);

typedef struct PassInterOptions {
	int64_t global_batch;   /* samples per step */
	int64_t microbatch;     /* > 0: this microbatch size, else searched */
	int recompute;          /* IrRecompute, or -1: searched */
	int max_units;          /* layer clusters (0: 16) */
	int threads;            /* 0: one per core */
	double tmax_gap;        /* see pass_stage_dp (< 0: default 1e-3) */
	double time_limit_s;    /* a user's wall-clock limit on the compile, 0: none; once
				   passed, refinement stops (with a plan solved whole) and
				   time_limited says so: the plan then depends on the load */
	bool no_hand;           /* neither search nor take hand-written plans */
	PassProgress progress;  /* NULL: silent */
	void *progress_ctx;
} PassInterOptions;

typedef struct PassInterResult {
	PassStatus status;      /* OPTIMAL: a plan; INFEASIBLE: nothing fits memory */
	double compile_time_s;
	double layer_cost_s;    /* of which: layer costs (ILPs) */
	double dp_s;            /* the DP runs */
	double refine_s;        /* solving chosen stages whole, and the polish */
	double hand_s;          /* the hand-written families (pass_manual_search) */
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
	int refinements;        /* DP reruns after solving the chosen stages whole */
	bool time_limited;      /* options.time_limit_s cut the search short */
	char from[16];          /* "" (the DP's pipeline), or what replaced it after the
				   simulator: "dp+zero-1", "dp+zero-2", "uniform", or a
				   hand-written plan: "grid" (Megatron-LM's layout),
				   "expert" (data + expert parallelism) */
	double need_bytes;      /* INFEASIBLE: least memory per device a plan needs */
	double have_bytes;      /* the GPU's memory */
	char message[256];
} PassInterResult;

/*
 * Compiles model m (overrides ps; `model` and `cluster` are the specs as
 * given, kept in the plan) for cluster c: searches the microbatch size
 * (divisors of the global batch around a memory-based start), the
 * recomputation mode and, per choice, Alpa's DP over the stage costs
 * (sums of per-layer costs); beside it, in a thread, the hand-written
 * families (pass_manual_search: Megatron-LM's layout, and data + expert
 * parallelism for a model with experts).  Then refines the candidates whose
 * estimate is below 1.02x the least simulated step time known: the stages
 * the DP picks are sharded whole by the intra-op pass (stages of identical
 * structure once), their exact costs replace the sums in the table, and the
 * DP runs again, until it picks only stages already solved (or the
 * refinement budget is spent: then the best pipeline solved whole).  The
 * polish (ZeRO re-shards, Megatron-style neighbours) follows, and the
 * fastest plan in the simulator wins, the hand-written one among them (it
 * is the result when no candidate was refined; r->from says which).
 * Places the sub-meshes.  Fills
 * plan (1F1B, initialised here) and g (the training graph at the chosen
 * microbatch, for sim_plan).  0 on success; -1 with r->status INFEASIBLE
 * (r->need_bytes set) when nothing fits, or ERROR with e.
 */
int pass_inter_op(const IrModelDoc *m, const char *model, const IrParamSet *ps,
		  const IrCluster *c, const char *cluster, int nodes, const PassInterOptions *o,
		  IrPlan *plan, IrGraph *g, PassInterResult *r, IrError *e);

/* ------------------------------------------------------------------ */
/* Hand-written grid plans (manual.c)                                    */

/* How a hand-written plan's stages are sharded on their dp x tp meshes. */
typedef enum {
	PASS_SHARD_METHOD,   /* the intra-op pass with PassManual.method (the ILP or a baseline) */
	PASS_SHARD_MEGATRON, /* Megatron-LM's own layout, by rule (megatron.c) */
} PassShard;

enum { PASS_MAX_SPLIT = 256 }; /* stages an explicit layer split may name */

/* The overlap the inter-op pass prices stages with: the plans it makes
 * carry ir_plan_init's default, and are simulated with it. */
#define PASS_OVERLAP IR_OVERLAP_DEFAULT

typedef struct PassManual {
	int dp, tp, pp;      /* dp*tp*pp = the cluster's GPUs */
	int64_t mbs;         /* samples per microbatch per data-parallel replica */
	int v;               /* model chunks per pipeline rank (> 1: interleaved) */
	IrSchedule schedule;
	IrRecompute recompute;
	int zero;            /* ZeRO stage over the dp axis (METHOD: forced, 0: the ILP decides;
				MEGATRON: exactly this stage) */
	PassMethod method;   /* PASS_SHARD_METHOD: how each stage is sharded */
	PassShard shard;
	bool sp;             /* MEGATRON: sequence parallelism over tp */
	int nsplit;          /* > 0: split[0..nsplit) transformer layers per stage (pp*v of them) */
	int split[PASS_MAX_SPLIT];
} PassManual;

/* 0 when m can run on c with this global batch; else -1 and why. */
int pass_manual_check(const IrCluster *c, const PassManual *m, int64_t global_batch, char *why,
		      size_t n);
/*
 * S contiguous groups of g's layers, the rule of every hand-written plan
 * (megatron.c).  The first layer (embedding) joins stage 0 and the last
 * (head) stage S-1.  `layers` (NULL: default) gives the layers between
 * them per stage; by default they split evenly when S divides them
 * (Megatron-LM), else embedding and head count as one layer each and the
 * layers + 2 split as evenly as possible, stages 1, 2, .. taking one more
 * (Megatron-Core's account-for-embedding/loss-in-pipeline-split).  -1 with
 * why when S is not in 1..layers or `layers` does not add up.
 */
int pass_megatron_split(const IrGraph *g, int S, const int *layers, int *first, int *last,
			char *why, size_t n);
/* Pipeline rank r's block of `devices` GPUs: part of a node, or whole nodes
 * (the layout of hand-written and Megatron plans). */
IrMesh pass_rank_mesh(const IrCluster *c, int devices, int rank);

/*
 * Megatron-LM's plan m (m->shard is not read) of training graph g (batch =
 * dp*mbs) on cluster c, by rule: stages as pass_megatron_split cuts them
 * (m->split when m->nsplit), stage i on pipeline rank i % pp's block of
 * dp*tp GPUs as a dp x tp logical mesh; column- then row-parallel linears,
 * attention heads (or key/value groups) over tp, vocabulary-parallel
 * embedding and loss, sequence parallelism when m->sp, the batch over dp,
 * ZeRO stage m->zero exactly (0: gradients all-reduced; 1: Megatron's
 * distributed optimizer; 2: gradient accumulators sharded too; 3: FSDP,
 * weights sharded and gathered per use), a dim a mesh axis does not
 * divide padded to the ceiling.  The collectives and their sizes are in
 * the stage plans.  The caller initialises plan (model, cluster, params,
 * nodes); this fills its batch, schedule and stages.  0, or -1 with e.
 */
int pass_megatron_plan(const IrGraph *g, const IrCluster *c, const PassManual *m,
		       int64_t global_batch, IrPlan *plan, IrError *e);
/*
 * Builds and simulates manual plan m: pp*v stages cut by
 * pass_megatron_split, stage i on pipeline rank i % pp's block of dp*tp
 * GPUs as a dp x tp logical mesh, laid out by pass_megatron_plan
 * (m->shard MEGATRON) or sharded by the intra-op pass (METHOD: m->method;
 * ILP time limit per solve, 0: none).  g is the training graph at batch = dp*mbs.  When the plan does
 * not fit and second_round is set, a second sharding bounds model state by
 * what activations leave (the ILP's memory budget) and is kept if it fits
 * or holds less.  The caller initialises plan and
 * sets its model, cluster, params and nodes.  *solves (if non-NULL) grows
 * by the intra-op solves run.  0 (res filled: see res->fits), or -1 with e.
 */
int pass_manual_plan(const IrGraph *g, const IrCluster *c, const PassManual *m,
		     int64_t global_batch, double time_limit, int threads, bool second_round,
		     IrPlan *plan, SimResult *res, int *solves, IrError *e);

typedef struct PassManualSearch {
	int64_t global_batch;
	PassShard shard;       /* MEGATRON: Megatron-LM's layout; METHOD: `method` */
	PassMethod method;     /* sharding inside each stage (shard METHOD) */
	int max_tp;            /* largest tp (0: GPUs per node) */
	int max_pp;            /* largest pp (0: the layer count) */
	int64_t microbatch;    /* > 0: only plans whose dp * mbs is this (else mbs 1, 2, 4 ..) */
	bool tp_if_needed;     /* tp > 1 only when no tp = 1 plan fits (expert parallelism:
				  experts over all devices where their count allows) */
	int recompute;         /* IrRecompute, or -1: none, then selective, then full */
	bool no_selective;     /* recompute -1: none, then full (an engine without
				  selective recomputation: DeepSpeed) */
	bool pipeline_zero1;   /* pp > 1: ZeRO 0 and 1 only (DeepSpeed's pipeline engine) */
	double time_limit_s;   /* per intra-op solve (0: none) */
	int threads;           /* 0: one per core */
	PassProgress progress; /* NULL: silent */
	void *progress_ctx;
} PassManualSearch;

typedef struct PassManualResult {
	PassStatus status;     /* OPTIMAL: best found; INFEASIBLE: none fits */
	PassManual best;
	int tried, fitted;     /* grid plans simulated, of which fit */
	int ilp_solves;
	double search_time_s;
	double need_bytes;     /* INFEASIBLE: least peak memory per device seen */
	double have_bytes;     /* the GPU's memory */
	char message[256];
} PassManualResult;

/*
 * The fastest hand-written grid plan of model m on cluster c: every
 * dp x tp x pp (tp <= max_tp, pp <= max_pp, a stage's dp*tp GPUs dividing a
 * node or whole nodes), microbatch sizes 1, 2, 4 .. per replica that divide
 * the batch, 1F1B, and the knobs people turn to fit memory: recomputation
 * none, selective, full, and within each ZeRO stage 0..3 over the dp axis,
 * the first that fits (each step only adds time to the sharding before it;
 * a grid point whose unsharded plan is already no faster than the best so
 * far stops there).  A microbatch that fits under none of them ends that
 * grid point's sizes.  No ILP memory budgets: a hand-written plan has none.
 * Fills plan, g (the training graph at its batch, for sim_plan) and res.
 * 0, or -1 with r->status INFEASIBLE (r->need_bytes) or ERROR and e.
 */
int pass_manual_search(const IrModelDoc *m, const char *model, const IrParamSet *ps,
		       const IrCluster *c, const char *cluster, int nodes,
		       const PassManualSearch *o, IrPlan *plan, IrGraph *g, SimResult *res,
		       PassManualResult *r, IrError *e);

#endif
