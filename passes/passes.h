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

#endif
