/*
 * fuzz_model.c -- the model loader: read, validate, instantiate with the
 * model's defaults, build the training graph.
 */
#include "fuzz/fuzz.h"
#include "ir/ir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	IrError e;
	IrModelDoc *m = ir_model_open(fuzz_file(data, size), &e);
	if (!m)
		return 0;
	IrParamSet none = {0};
	IrGraph g;
	if (!ir_model_instantiate(m, &none, &g, &e)) {
		if (!ir_build_training(&g, &e)) {
			IrStats st;
			ir_graph_stats(&g, &st);
		}
		ir_graph_free(&g);
	}
	ir_model_close(m);
	return 0;
}
