/*
 * fuzz_manual.c -- the --manual parser, through `meshplan simulate` itself:
 * MODEL --manual INPUT --cluster (a missing file) --batch 16.  A plan the
 * parser accepts stops at the cluster, before any planning.
 */
#include "fuzz/fuzz.h"
#include "tools/tools.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_string(data, size);
	char *argv[] = {"simulate", MESHPLAN_DATA_DIR "/tests/data/tiny.xml", "--manual", text,
			"--cluster", "/nonexistent/cluster.xml", "--batch", "16", NULL};
	fuzz_mute_stderr(1);
	int rc = cmd_simulate(8, argv);
	fuzz_mute_stderr(0);
	if (rc != EXIT_BADINPUT)
		abort(); /* nothing gets past the missing cluster */
	free(text);
	return 0;
}
