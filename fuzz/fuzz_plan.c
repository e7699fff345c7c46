/*
 * fuzz_plan.c -- the plan reader, then the simulator on what it read: the
 * plan's own model and cluster names are replaced by tests/data/tiny.xml
 * and tiny-cluster.xml (a plan could name a 175B model), so a fuzzed plan
 * exercises the simulator's checks of stages, ops and strategies.
 */
#include "fuzz/fuzz.h"
#include "ir/ir.h"
#include "runtime-sim/sim.h"

static IrModelDoc *tiny;
static IrCluster cluster;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	IrError e;
	tiny = ir_model_open(MESHPLAN_DATA_DIR "/tests/data/tiny.xml", &e);
	if (!tiny || ir_cluster_load(MESHPLAN_DATA_DIR "/tests/data/tiny-cluster.xml", 0, &cluster, &e))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	IrError e;
	IrPlan p;
	if (ir_plan_read(fuzz_file(data, size), &p, &e))
		return 0;
	/* only small instances of tiny: a <set> could ask for a million layers */
	bool small = true;
	for (int i = 0; i < p.params.n; i++)
		small = small && p.params.value[i] >= -64 && p.params.value[i] <= 64;
	IrGraph g;
	if (small && !ir_model_instantiate(tiny, &p.params, &g, &e)) {
		if (!ir_build_training(&g, &e)) {
			SimResult r;
			if (!sim_plan(&g, &cluster, &p, &r, &e))
				sim_result_free(&r);
		}
		ir_graph_free(&g);
	}
	ir_plan_free(&p);
	return 0;
}
