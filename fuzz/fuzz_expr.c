/*
 * fuzz_expr.c -- the integer expression evaluator over a few parameters.
 */
#include "fuzz/fuzz.h"
#include "ir/ir.h"

static int lookup(void *ctx, const char *name, int64_t *v)
{
	(void)ctx;
	static const struct {
		const char *name;
		int64_t v;
	} p[] = {{"batch", 8}, {"hidden", 4096}, {"heads", 32}, {"zero", 0},
		 {"big", INT64_MAX}, {"small", INT64_MIN}, {"neg", -1}};
	for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
		if (!strcmp(name, p[i].name)) {
			*v = p[i].v;
			return 0;
		}
	return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_string(data, size);
	int64_t v;
	char why[256];
	ir_expr_eval(text, lookup, NULL, &v, why, sizeof why);
	ir_expr_eval(text, NULL, NULL, &v, why, sizeof why);
	free(text);
	return 0;
}
