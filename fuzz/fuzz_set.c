/*
 * fuzz_set.c -- the --set parser (ir_params_parse), then the overrides
 * applied to tests/data/tiny.xml.
 */
#include "fuzz/fuzz.h"
#include "ir/ir.h"

static IrModelDoc *tiny;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	IrError e;
	tiny = ir_model_open(MESHPLAN_DATA_DIR "/tests/data/tiny.xml", &e);
	if (!tiny)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_string(data, size);
	IrError e;
	IrParamSet ps = {0};
	if (!ir_params_parse(&ps, text, &e)) {
		int64_t v;
		ir_model_param(tiny, &ps, "batch", &v, &e);
	}
	free(text);
	return 0;
}
