/*
 * main.c -- `meshplan VERB ...`: dispatches to the verb's cmd_* function.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "tools/tools.h"

typedef struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} Verb;

static const Verb verbs[] = {
	{"info", cmd_info, "describe a model (parameters, FLOPs, memory) or a cluster"},
	{"shard", cmd_shard, "choose the sharding of every op on one device mesh (intra-op ILP)"},
	{"simulate", cmd_simulate, "one training step of a plan: time, TFLOPS, MFU, memory, trace"},
	{"compile", cmd_compile, "the fastest plan: pipeline stages on sub-meshes, each sharded (Alpa)"},
	{"explain", cmd_explain, "why a compiled plan is as it is: parallelism in words, alternatives"},
	{"compare", cmd_compare, "the best plan of one model on several clusters, side by side"},
	{"estimate", cmd_estimate, "cost, energy and CO2 of a whole run; failures and stragglers"},
	{"calibrate", cmd_calibrate, "fit a cluster's software profile to runs measured on it"},
	{"provision", cmd_provision, "the cheapest resources for a deadline, the fastest for a budget"},
	{"sweep", cmd_sweep, "every point of a sweep file compiled and priced; Pareto front (MPI)"},
	{"export", cmd_export, "a plan as Megatron-LM arguments, a DeepSpeed config or DTensor placements"},
	{"import", cmd_import, "a model file from a Hugging Face config.json (import hf FILE)"},
	{"report", cmd_report, "one offline HTML file: a plan's step, stages, pictures and cost"},
	{"list", cmd_list, "the zoo: models, their presets, clusters"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: meshplan VERB [options]   (meshplan VERB --help for a verb's options)\n\n"
		   "verbs:\n");
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
	fprintf(f, "\nModels are named by path or zoo name (gpt, gpt:1.3b, llama:7b, ./my.xml:large);\n"
		   "clusters likewise (dgx-a100); meshplan list shows the zoo.\n"
		   "Exit codes: 0 success, 1 no feasible plan or runtime failure, 2 bad input or usage.\n");
}

int main(int argc, char **argv)
{
	/* Past a file size limit, a write fails with EFBIG and is reported,
	 * instead of the process being killed part way through an output. */
	signal(SIGXFSZ, SIG_IGN);
	ir_heap_keep();
	if (argc < 2) {
		usage(stderr);
		return EXIT_BADINPUT;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (!strcmp(argv[1], verbs[i].name))
			return verbs[i].run(argc - 1, argv + 1);
	const char *names[sizeof verbs / sizeof verbs[0]];
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		names[i] = verbs[i].name;
	char hint[512];
	ir_suggest(argv[1], names, (int)(sizeof verbs / sizeof verbs[0]), hint, sizeof hint);
	fprintf(stderr, "meshplan: unknown verb '%s'; %s\n", argv[1], hint);
	return EXIT_BADINPUT;
}
