/*
 * test_hw.c -- the hardware model (runtime-sim/hw.c): kernel roofline with
 * its size ramps, ring collectives, mesh axes.  Every GPU and link here is
 * filled by hand, so the tests need no cluster file.
 */
#include <criterion/criterion.h>
#include <math.h>

#include "runtime-sim/sim.h"

/* A100 SXM 80GB as its datasheet gives it: 312 TFLOPS bf16/fp16 dense,
 * 19.5 TFLOPS fp32 (non-tensor), 2039 GB/s HBM2e. */
static IrGpu a100(void)
{
	IrGpu g = {.name = "A100-SXM4-80GB", .mem_bytes = 80.0 * (1 << 30), .hbm_bw = 2039e9,
		   .power_w = 400};
	g.peak_flops[IR_BF16] = 312e12;
	g.peak_flops[IR_F16] = 312e12;
	g.peak_flops[IR_F32] = 19.5e12;
	return g;
}

/* NVLink 3 (300 GB/s per direction) and one HDR NIC per GPU (25 GB/s). */
static const IrLink nvlink = {.bw = 300e9, .latency = 1e-6};
static const IrLink hdr = {.bw = 25e9, .latency = 5e-6};

static void assert_rel(double got, double want, double tol)
{
	cr_assert(fabs(got - want) <= tol * fabs(want), "got %.12g, want %.12g (rel tol %g)", got,
		  want, tol);
}

Test(hw_kernel, large_bf16_gemm_runs_at_the_documented_matmul_efficiency)
{
	IrGpu g = a100();
	double n = 8192;
	double flops = 2 * n * n * n, bytes = 3 * n * n * 2;
	double t = sim_kernel_time(&g, IR_BF16, flops, bytes);
	double achieved = flops / t / g.peak_flops[IR_BF16];
	assert_rel(achieved, 0.869, 0.01);
	assert_rel(sim_hw.eff_matmul, 0.869, 1e-12);
	/* 1.0995 TFLOP at 0.869 * 312 TFLOPS plus ramp and launch: 4.0605 ms. */
	assert_rel(t, 4.0605e-3, 1e-4);
}

/* A GPU's own measured GEMM efficiency replaces the default; memory-bound
 * kernels do not change. */
Test(hw_kernel, a_gpus_own_matmul_efficiency_replaces_the_default)
{
	IrGpu g = a100(), h = a100();
	h.matmul_eff = 0.803;
	double n = 8192, flops = 2 * n * n * n, bytes = 3 * n * n * 2;
	double tg = sim_kernel_time(&g, IR_BF16, flops, bytes) - sim_hw.launch_s;
	double th = sim_kernel_time(&h, IR_BF16, flops, bytes) - sim_hw.launch_s;
	assert_rel(th / tg, 0.869 / 0.803, 1e-12);
	assert_rel(sim_kernel_time(&h, IR_BF16, 1e6, 4e6), sim_kernel_time(&g, IR_BF16, 1e6, 4e6),
		   1e-12);
	/* from a cluster file: dgx-h100 gives 0.803, aws-p3.16xlarge none (the default) */
	IrCluster c;
	IrError e;
	cr_assert_eq(ir_cluster_load("dgx-h100", 1, &c, &e), 0, "%s", e.msg);
	assert_rel(c.gpu.matmul_eff, 0.803, 1e-12);
	ir_cluster_free(&c);
	cr_assert_eq(ir_cluster_load("aws-p3.16xlarge", 1, &c, &e), 0, "%s", e.msg);
	cr_expect_eq(c.gpu.matmul_eff, 0);
	ir_cluster_free(&c);
}

Test(hw_kernel, small_elementwise_kernel_is_memory_bound_plus_launch)
{
	IrGpu g = a100();
	/* gelu over 1M bf16 elements: read 2 MB, write 2 MB, ~8 flops each. */
	double elems = 1 << 20, bytes = 4 * elems, flops = 8 * elems;
	double t = sim_kernel_time(&g, IR_BF16, flops, bytes);
	double mem = bytes / (g.hbm_bw * sim_hbm_efficiency(bytes));
	double math = flops / (g.peak_flops[IR_BF16] * sim_compute_efficiency(flops));
	cr_assert(mem > math, "memory %g s should bound math %g s", mem, math);
	assert_rel(t, mem + sim_hw.launch_s, 1e-12);
	/* 4.19 MB at 2039 GB/s * 0.88 * 4.19/(4.19+0.5): 2.616 us, + 3 us launch. */
	assert_rel(t, 5.6162e-6, 1e-4);
}

Test(hw_kernel, time_is_monotone_in_flops)
{
	IrGpu g = a100();
	double prev = 0;
	for (double f = 1e3; f < 1e16; f *= 1.37) {
		double t = sim_kernel_time(&g, IR_BF16, f, 1e6);
		cr_assert(t >= prev, "time fell from %g to %g at %g flops", prev, t, f);
		prev = t;
	}
}

Test(hw_kernel, time_is_monotone_in_bytes)
{
	IrGpu g = a100();
	double prev = 0;
	for (double b = 1; b < 1e12; b *= 1.37) {
		double t = sim_kernel_time(&g, IR_BF16, 1e9, b);
		cr_assert(t >= prev, "time fell from %g to %g at %g bytes", prev, t, b);
		prev = t;
	}
}

Test(hw_kernel, an_empty_kernel_costs_nothing)
{
	IrGpu g = a100();
	cr_assert_eq(sim_kernel_time(&g, IR_BF16, 0, 0), 0.0);
}

Test(hw_kernel, a_dtype_without_a_peak_uses_the_fp32_peak)
{
	IrGpu g = a100();
	double f = 1e12;
	cr_assert_eq(sim_kernel_time(&g, IR_I32, f, 0), sim_kernel_time(&g, IR_F32, f, 0));
	assert_rel(sim_kernel_time(&g, IR_F32, f, 0),
		   (f + sim_hw.flops_half) / (19.5e12 * 0.869) + 3e-6, 1e-12);
}

Test(hw_efficiency, ramps_reach_half_at_their_half_size_and_saturate)
{
	assert_rel(sim_compute_efficiency(sim_hw.flops_half), sim_hw.eff_matmul / 2, 1e-12);
	assert_rel(sim_hbm_efficiency(sim_hw.bytes_half), sim_hw.eff_hbm / 2, 1e-12);
	assert_rel(sim_compute_efficiency(1e15), sim_hw.eff_matmul, 1e-5);
	assert_rel(sim_hbm_efficiency(1e12), sim_hw.eff_hbm, 1e-5);
	/* The Calculon anchor: 1 GFLOP runs at 0.60/0.95 of the large rate. */
	assert_rel(sim_compute_efficiency(1e9) / sim_hw.eff_matmul, 0.60 / 0.95, 1e-12);
	assert_rel(sim_hbm_efficiency(1e6) / sim_hw.eff_hbm, 0.60 / 0.90, 1e-12);
	cr_assert_eq(sim_compute_efficiency(0), 0.0);
	cr_assert_eq(sim_hbm_efficiency(-1), 0.0);
}

Test(hw_collective, ring_all_reduce_moves_2_n_minus_1_over_n_plus_2_n_minus_1_latencies)
{
	double b = 1e9;
	for (int n = 2; n <= 64; n *= 2) {
		double want = 2.0 * (n - 1) / n * b / (nvlink.bw * sim_hw.eff_nvlink) +
			      2.0 * (n - 1) * nvlink.latency;
		assert_rel(sim_collective_time(SIM_ALL_REDUCE, b, n, &nvlink), want, 1e-12);
	}
	/* 8 GPUs, 1 GB over NVLink 3: 1.75 GB / (300 GB/s * 370/450) + 14 us. */
	assert_rel(sim_collective_time(SIM_ALL_REDUCE, 1e9, 8, &nvlink), 7.1086e-3, 1e-4);
}

Test(hw_collective, all_gather_and_reduce_scatter_move_n_minus_1_over_n)
{
	double b = 3e8;
	int n = 8;
	double want = 7.0 / 8 * b / (nvlink.bw * sim_hw.eff_nvlink) + 7 * nvlink.latency;
	assert_rel(sim_collective_time(SIM_ALL_GATHER, b, n, &nvlink), want, 1e-12);
	assert_rel(sim_collective_time(SIM_REDUCE_SCATTER, b, n, &nvlink), want, 1e-12);
	assert_rel(sim_collective_time(SIM_ALL_TO_ALL, b, n, &nvlink), want, 1e-12);
}

Test(hw_collective, all_gather_plus_reduce_scatter_equals_all_reduce)
{
	for (int n = 2; n <= 1024; n = n * 3 + 1)
		for (double b = 1e3; b < 1e11; b *= 17) {
			for (int net = 0; net < 2; net++) {
				const IrLink *l = net ? &hdr : &nvlink;
				double ag = sim_collective_time_link(SIM_ALL_GATHER, b, n, l, net);
				double rs = sim_collective_time_link(SIM_REDUCE_SCATTER, b, n, l, net);
				double ar = sim_collective_time_link(SIM_ALL_REDUCE, b, n, l, net);
				assert_rel(ag + rs, ar, 1e-12);
			}
		}
}

Test(hw_collective, p2p_is_one_latency_plus_the_message_over_the_link)
{
	double b = 5e7;
	assert_rel(sim_collective_time(SIM_P2P, b, 2, &nvlink),
		   nvlink.latency + b / (nvlink.bw * sim_hw.eff_nvlink), 1e-12);
	assert_rel(sim_collective_time_link(SIM_P2P, b, 2, &hdr, true),
		   hdr.latency + b / (hdr.bw * 0.96), 1e-12);
}

Test(hw_collective, one_device_or_no_bytes_costs_nothing)
{
	for (int k = 0; k < SIM_NCOLL; k++) {
		cr_assert_eq(sim_collective_time((SimColl)k, 1e9, 1, &nvlink), 0.0);
		cr_assert_eq(sim_collective_time((SimColl)k, 1e9, 0, &nvlink), 0.0);
		cr_assert_eq(sim_collective_time((SimColl)k, 0, 8, &nvlink), 0.0);
	}
}

Test(hw_collective, a_network_link_runs_at_the_network_efficiency)
{
	double b = 1e9;
	double want = 2.0 * 15 / 16 * b / (hdr.bw * 0.96) + 30 * hdr.latency;
	assert_rel(sim_collective_time_link(SIM_ALL_REDUCE, b, 16, &hdr, true), want, 1e-12);
	cr_assert(sim_collective_time_link(SIM_ALL_REDUCE, b, 16, &hdr, true) <
		  sim_collective_time(SIM_ALL_REDUCE, b, 16, &hdr));
}

/* Two DGX-like nodes of 8 GPUs seen as 2 x 8: axis 0 between nodes. */
static IrLogicalMesh two_nodes(void)
{
	IrLogicalMesh m = {.mesh = {.node0 = 0, .nnodes = 2, .gpu0 = 0, .ngpus = 8},
			   .n = {2, 8},
			   .axis = {hdr, nvlink},
			   .crosses_nodes = {true, false}};
	return m;
}

Test(hw_mesh, an_axis_uses_its_own_link_and_size)
{
	IrLogicalMesh m = two_nodes();
	double b = 2e8;
	assert_rel(sim_mesh_collective_time(&m, 1, SIM_ALL_REDUCE, b),
		   sim_collective_time(SIM_ALL_REDUCE, b, 8, &nvlink), 1e-12);
	assert_rel(sim_mesh_collective_time(&m, 0, SIM_ALL_REDUCE, b),
		   sim_collective_time_link(SIM_ALL_REDUCE, b, 2, &hdr, true), 1e-12);
}

Test(hw_mesh, axis_2_spans_all_devices_over_the_slower_link)
{
	IrLogicalMesh m = two_nodes();
	double b = 1e9;
	/* without the link inside a node: one NIC's ring */
	double want = 2.0 * 15 / 16 * b / (hdr.bw * sim_hw.eff_network) + 30 * hdr.latency;
	assert_rel(sim_mesh_collective_time(&m, 2, SIM_ALL_REDUCE, b), want, 1e-12);
	/* with it: 8 devices a node, 8 NICs (8 x 25 GB/s x 0.96 = 192 GB/s,
	 * below NVLink's 300 x 0.822), 2 of the 30 steps between nodes */
	m.intra = nvlink;
	want = 2.0 * 15 / 16 * b / (8 * hdr.bw * sim_hw.eff_network) + 28 * nvlink.latency +
	       2 * hdr.latency;
	assert_rel(sim_mesh_collective_time(&m, 2, SIM_ALL_REDUCE, b), want, 1e-12);

	/* Inside one node, two links of different speed: the slower bounds. */
	IrLink slow = {.bw = 100e9, .latency = 2e-6};
	IrLogicalMesh one = {.mesh = {.node0 = 0, .nnodes = 1, .gpu0 = 0, .ngpus = 8},
			     .n = {2, 4},
			     .axis = {nvlink, slow},
			     .crosses_nodes = {false, false}};
	assert_rel(sim_mesh_collective_time(&one, 2, SIM_ALL_GATHER, b),
		   sim_collective_time(SIM_ALL_GATHER, b, 8, &slow), 1e-12);
}

/* A ring over 64 GPUs of 8 nodes, 8 in each (NCCL's tuning model): bus
 * bandwidth 8 NICs' worth, capped by NVLink's; 7 of the 63 all-gather
 * steps cross the network.  One GPU a node: the plain network ring. */
Test(hw_mesh, a_ring_over_nodes_uses_every_nic_of_a_node)
{
	IrLink ndr = {.bw = 50e9, .latency = 14e-6}, nvl4 = {.bw = 450e9, .latency = 3.4e-6};
	double b = 6e8;
	double bw = fmin(8 * 50e9 * sim_hw.eff_network, 450e9 * sim_hw.eff_nvlink);
	double want = 63.0 / 64 * b / bw + 56 * 3.4e-6 + 7 * 14e-6;
	assert_rel(sim_collective_time_nodes(SIM_ALL_GATHER, b, 64, 8, &ndr, &nvl4), want, 1e-12);
	assert_rel(sim_collective_time_nodes(SIM_REDUCE_SCATTER, b, 64, 8, &ndr, &nvl4), want,
		   1e-12);
	want = 2 * 63.0 / 64 * b / bw + 2 * (56 * 3.4e-6 + 7 * 14e-6);
	assert_rel(sim_collective_time_nodes(SIM_ALL_REDUCE, b, 64, 8, &ndr, &nvl4), want, 1e-12);
	/* 2 GPUs a node: 2 NICs, below NVLink */
	want = 31.0 / 32 * b / (2 * 50e9 * sim_hw.eff_network) + 16 * 3.4e-6 + 15 * 14e-6;
	assert_rel(sim_collective_time_nodes(SIM_ALL_GATHER, b, 32, 2, &ndr, &nvl4), want, 1e-12);
	assert_rel(sim_collective_time_nodes(SIM_ALL_GATHER, b, 8, 1, &ndr, &nvl4),
		   sim_collective_time_link(SIM_ALL_GATHER, b, 8, &ndr, true), 1e-12);

	/* the logical mesh says how many of an axis's devices share a node */
	IrCluster c = {.nodes = 8, .gpus_per_node = 8, .inter = ndr, .intra = nvl4};
	IrMesh all = {.node0 = 0, .nnodes = 8, .gpu0 = 0, .ngpus = 8};
	IrLogicalMesh lm;
	IrError e;
	cr_assert_eq(ir_logical_mesh(&c, &all, 64, 1, &lm, &e), 0, "%s", e.msg);
	assert_rel(sim_mesh_collective_time(&lm, 0, SIM_ALL_GATHER, b),
		   sim_collective_time_nodes(SIM_ALL_GATHER, b, 64, 8, &ndr, &nvl4), 1e-12);
	cr_assert_eq(ir_logical_mesh(&c, &all, 16, 4, &lm, &e), 0, "%s", e.msg);
	cr_assert_eq(lm.per_node[0], 2);
	cr_assert_eq(ir_logical_mesh(&c, &all, 8, 8, &lm, &e), 0, "%s", e.msg);
	assert_rel(sim_mesh_collective_time(&lm, 0, SIM_ALL_GATHER, b),
		   sim_collective_time_link(SIM_ALL_GATHER, b, 8, &ndr, true), 1e-12);
}

Test(hw_mesh, axis_2_ignores_an_axis_of_length_1)
{
	/* 1 x 8 in one node: axis 0 has no hops, whatever link it names. */
	IrLogicalMesh m = {.mesh = {.node0 = 0, .nnodes = 1, .gpu0 = 0, .ngpus = 8},
			   .n = {1, 8},
			   .axis = {hdr, nvlink},
			   .crosses_nodes = {false, false}};
	double b = 1e8;
	assert_rel(sim_mesh_collective_time(&m, 2, SIM_ALL_REDUCE, b),
		   sim_mesh_collective_time(&m, 1, SIM_ALL_REDUCE, b), 1e-12);
	cr_assert_eq(sim_mesh_collective_time(&m, 0, SIM_ALL_REDUCE, b), 0.0);
}

Test(hw_names, collectives_have_their_nccl_names)
{
	cr_assert_str_eq(sim_coll_name(SIM_ALL_REDUCE), "all-reduce");
	cr_assert_str_eq(sim_coll_name(SIM_ALL_GATHER), "all-gather");
	cr_assert_str_eq(sim_coll_name(SIM_REDUCE_SCATTER), "reduce-scatter");
	cr_assert_str_eq(sim_coll_name(SIM_ALL_TO_ALL), "all-to-all");
	cr_assert_str_eq(sim_coll_name(SIM_P2P), "p2p");
	cr_assert_str_eq(sim_coll_name(SIM_NCOLL), "?");
}
