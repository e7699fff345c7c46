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

#endif
