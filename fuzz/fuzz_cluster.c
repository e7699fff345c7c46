/*
 * fuzz_cluster.c -- the cluster loader, then every logical view of its
 * sub-meshes as the planner forms them.
 */
#include "fuzz/fuzz.h"
#include "ir/ir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	IrError e;
	IrCluster c;
	if (ir_cluster_load(fuzz_file(data, size), 0, &c, &e))
		return 0;
	IrMesh whole = {0, c.nodes, 0, c.gpus_per_node};
	int n = ir_mesh_devices(&whole);
	for (int n0 = 1; n0 <= n && n0 <= 64; n0++) {
		IrLogicalMesh v;
		if (n % n0 == 0)
			ir_logical_mesh(&c, &whole, n0, n / n0, &v, &e);
	}
	ir_cluster_free(&c);
	return 0;
}
