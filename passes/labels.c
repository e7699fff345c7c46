/*
 * labels.c -- classifying an op's labels for sharding.
 */
#include <string.h>

#include "passes/passes.h"

PassLabelClass pass_label_class(const IrOp *op, char c)
{
	bool in_out = op->nout && strchr(op->lab[op->nin], c);
	bool in_in = false;
	for (int k = 0; k < op->nin; k++)
		in_in |= strchr(op->lab[k], c) != NULL;
	if (in_out && in_in)
		return PASS_LABEL_BATCH;
	return in_in ? PASS_LABEL_CONTRACTED : PASS_LABEL_OUTPUT;
}
