/*
 * hw.c -- the hardware model: what a kernel and a collective cost, in
 * seconds.  The intra-op ILP uses these times as its cost coefficients and
 * the simulator as its task durations, so the two never disagree.
 *
 * Reads: an IrGpu, IrLink or IrLogicalMesh filled by ir/ (nothing else).
 * Writes: nothing; every function is pure and thread-safe.
 *
 * Compute, per kernel (roofline with Hockney's r_inf, n_1/2 ramps):
 *   t = max(F / (peak[dt] * eff_c(F)), B / (hbm * eff_m(B))) + launch
 *   eff_c(F) = eff_matmul * F / (F + flops_half)
 *   eff_m(B) = eff_hbm * B / (B + bytes_half)
 * Collectives, ring alpha-beta (Thakur, Rabenseifner & Gropp 2005):
 *   all-reduce 2(n-1)/n B/(bw eff) + 2(n-1) lat; all-gather, reduce-
 *   scatter, all-to-all (n-1)/n B/(bw eff) + (n-1) lat; p2p B/(bw eff) + lat.
 *   The same factors as NCCL's bus bandwidth, "Performance reported by NCCL
 *   tests", https://github.com/NVIDIA/nccl-tests/blob/master/doc/PERFORMANCE.md
 *   A ring between nodes with g > 1 of its devices in each node runs one
 *   channel per NIC: bus bandwidth g times one GPU's network share, at most
 *   the NVLink bus bandwidth the ring also crosses, and of its steps only
 *   nodes - 1 (2(nodes - 1) for all-reduce) pay the network latency, the
 *   rest NVLink's (NVIDIA/nccl src/graph/tuning.cc, ncclTopoTuneModel:
 *   busBw = nChannels * speed; ring latency (nsteps - nInterSteps) *
 *   intraLat + nInterSteps * interLat).
 * Every constant below carries its public source; docs/hardware-model.md
 * explains the model and what it leaves out.
 */
#include <assert.h>
#include <stddef.h>

#include "runtime-sim/sim.h"

const SimHwModel sim_hw = {
	/*
	 * Large dense bf16 GEMM: 271.2 of 312 TFLOPS = 86.9% on A100 SXM
	 * (torch 2.6 / CUDA 12.6, best of a brute-force shape search, mean of
	 * 100 runs).  Same table: H100 SXM 80.3%, A100 PCIe 81.1%.
	 * Source: S. Bekman, "Machine Learning Engineering", Maximum Achievable
	 * Matmul FLOPS comparison table,
	 * https://github.com/stas00/ml-engineering/blob/master/compute/accelerator/README.md#maximum-achievable-matmul-flops-comparison-table
	 */
	.eff_matmul = 0.869,
	/*
	 * Work at which a kernel reaches half its large-size rate.  Calculon's
	 * A100 and H100 system files give matrix-unit efficiency 0.60 from
	 * 1 GFLOP and 0.95 from 128 GFLOP: 1 GFLOP runs at 0.6/0.95 of the
	 * large-op rate, so flops_half = 1e9 * (0.95/0.6 - 1) = 0.583e9.
	 * (That ramp then gives 0.965 of the large rate at 16 GFLOP, where the
	 * table steps to 0.9/0.95 = 0.947.)
	 * Source: Isaev et al., "Calculon: a methodology and tool for high-level
	 * co-design of systems and large language models", SC'23;
	 * https://github.com/calculon-ai/calculon/blob/main/systems/a100_80g.json
	 */
	.flops_half = 1e9 * (0.95 / 0.60 - 1.0),
	/*
	 * Streaming HBM kernel: 1.80 of 2.04 TB/s = 88% on A100 80GB SXM,
	 * confirmed by Nsight Compute; the thread cites a GTC talk where no
	 * kernel exceeded about 90%.  Source: NVIDIA Developer Forums,
	 * "Trouble to Reach Peak Bandwidth of A100",
	 * https://forums.developer.nvidia.com/t/trouble-to-reach-peak-bandwidth-of-a100/339083
	 */
	.eff_hbm = 0.88,
	/*
	 * Bytes at which a kernel reaches half its large-size bandwidth.
	 * Calculon's A100/H100 files: HBM efficiency 0.60 from 1 MB, 0.90
	 * from 100 MB; 1 MB at 0.6/0.9 of the large rate gives
	 * bytes_half = 1e6 * (0.9/0.6 - 1) = 0.5e6 (0.28 us at 1.8 TB/s, the
	 * order of a DRAM round trip, as Little's law expects).
	 * Source: https://github.com/calculon-ai/calculon/blob/main/systems/a100_80g.json
	 */
	.bytes_half = 1e6 * (0.90 / 0.60 - 1.0),
	/*
	 * Launch overhead of a null kernel: "about 3 microseconds with recent
	 * hardware and software".  Source: NVIDIA Developer Forums, "Too much
	 * time for kernel launch latency",
	 * https://forums.developer.nvidia.com/t/too-much-time-for-kernel-launch-latency/233645/3
	 */
	.launch_s = 3e-6,
	/*
	 * NVLink as NCCL sees it: "450GB/s is the line rate.  With the protocol
	 * overhead (~20%) NCCL can get an effective NVLink bandwidth of
	 * 370GB/s" (H100): 370/450 = 0.822.  On A100/A800 NVLink (200 GB/s per
	 * direction) the same maintainer expects ~160 GB/s bus bandwidth, 0.80.
	 * Sources: NVIDIA/nccl-tests#212 (S. Jeaugey),
	 * https://github.com/NVIDIA/nccl-tests/issues/212 ;
	 * NVIDIA/nccl#412, https://github.com/NVIDIA/nccl/issues/412
	 */
	.eff_nvlink = 370.0 / 450.0,
	/*
	 * InfiniBand as NCCL sees it: "24GB/s inter-node" bus bandwidth on a
	 * 200 Gb/s HDR NIC (25 GB/s): 0.96.  Consistent: 192 GB/s all-reduce
	 * bus bandwidth on DGX A100 with 8x200 Gb/s, and 48-49 GB/s per
	 * 400 Gb/s NDR NIC.  Sources: NVIDIA/nccl#412 (S. Jeaugey),
	 * https://github.com/NVIDIA/nccl/issues/412 ; NVIDIA/nccl#1576,
	 * https://github.com/NVIDIA/nccl/issues/1576 ; NVIDIA/nccl-tests#267,
	 * https://github.com/NVIDIA/nccl-tests/issues/267
	 */
	.eff_network = 24.0 / 25.0,
	/*
	 * Fused attention on A100 (FlashAttention-2, A100 80GB SXM4): "reaching
	 * up to 73% of the theoretical max throughput in the forward pass, and
	 * up to 63% of the theoretical max throughput in the backward pass",
	 * FLOPs counted as 4 s^2 d heads forward, halved with a causal mask,
	 * times 2.5 for backward (5 GEMMs, scores recomputed).  Source: T. Dao,
	 * "FlashAttention-2: Faster Attention with Better Parallelism and Work
	 * Partitioning", arXiv:2307.08691, sections 1 and 4.1.  H100/H200
	 * cluster files give FlashAttention-3's figures (docs/hardware-model.md).
	 */
	.eff_attn_fwd = 0.73,
	.eff_attn_bwd = 0.63,
};

double sim_compute_efficiency(double flops)
{
	if (!(flops > 0))
		return 0;
	return sim_hw.eff_matmul * flops / (flops + sim_hw.flops_half);
}

double sim_hbm_efficiency(double bytes)
{
	if (!(bytes > 0))
		return 0;
	return sim_hw.eff_hbm * bytes / (bytes + sim_hw.bytes_half);
}

/* Peak FLOP/s for dt; a dtype the GPU has no figure for (IR_I32) uses fp32. */
static double peak_flops(const IrGpu *gpu, IrDType dt)
{
	double p = ((int)dt >= 0 && (int)dt < IR_NDTYPES) ? gpu->peak_flops[dt] : 0;
	return p > 0 ? p : gpu->peak_flops[IR_F32];
}

double sim_kernel_time(const IrGpu *gpu, IrDType dt, double flops, double bytes)
{
	assert(gpu);
	if (!(flops > 0) && !(bytes > 0))
		return 0;
	double tc = 0, tm = 0;
	double peak = peak_flops(gpu, dt);
	double eff = (gpu->matmul_eff > 0 ? gpu->matmul_eff : sim_hw.eff_matmul) *
		     (gpu->gemm_scale > 0 ? gpu->gemm_scale : 1);
	double heff = sim_hw.eff_hbm * (gpu->hbm_scale > 0 ? gpu->hbm_scale : 1);
	/* flops / (peak * eff_c(flops)), written without the division by eff. */
	if (flops > 0 && peak > 0)
		tc = (flops + sim_hw.flops_half) / (peak * eff);
	if (bytes > 0 && gpu->hbm_bw > 0)
		tm = (bytes + sim_hw.bytes_half) / (gpu->hbm_bw * heff);
	return (tc > tm ? tc : tm) + sim_hw.launch_s + gpu->overhead_s;
}

double sim_attention_time(const IrGpu *gpu, IrDType dt, double flops, double bytes,
			  bool backward)
{
	assert(gpu);
	if (!(flops > 0) && !(bytes > 0))
		return 0;
	double peak = peak_flops(gpu, dt), tc = 0, tm = 0;
	double eff = backward ? (gpu->attn_bwd_eff > 0 ? gpu->attn_bwd_eff : sim_hw.eff_attn_bwd)
			      : (gpu->attn_fwd_eff > 0 ? gpu->attn_fwd_eff : sim_hw.eff_attn_fwd);
	eff *= gpu->gemm_scale > 0 ? gpu->gemm_scale : 1;
	double heff = sim_hw.eff_hbm * (gpu->hbm_scale > 0 ? gpu->hbm_scale : 1);
	if (flops > 0 && peak > 0)
		tc = flops / (peak * eff);
	if (bytes > 0 && gpu->hbm_bw > 0)
		tm = (bytes + sim_hw.bytes_half) / (gpu->hbm_bw * heff);
	return (tc > tm ? tc : tm) + sim_hw.launch_s + gpu->overhead_s;
}

double sim_collective_time_link(SimColl k, double bytes, int ndev, const IrLink *link,
				bool network)
{
	assert(link);
	if (ndev <= 1 || !(bytes > 0))
		return 0;
	double n = ndev;
	double bw = link->bw * (network ? sim_hw.eff_network : sim_hw.eff_nvlink) *
		    (link->scale > 0 ? link->scale : 1);
	double lat = link->latency;
	assert(bw > 0);
	switch (k) {
	case SIM_ALL_REDUCE:
		return 2 * (n - 1) / n * bytes / bw + 2 * (n - 1) * lat;
	case SIM_ALL_GATHER:
	case SIM_REDUCE_SCATTER:
	case SIM_ALL_TO_ALL:
		return (n - 1) / n * bytes / bw + (n - 1) * lat;
	case SIM_P2P:
		return bytes / bw + lat;
	case SIM_NCOLL:
		break;
	}
	assert(!"unknown collective");
	return 0;
}

double sim_collective_time_nodes(SimColl k, double bytes, int ndev, int per_node,
				 const IrLink *net, const IrLink *intra)
{
	assert(net && intra);
	if (per_node <= 1 || ndev <= per_node || ndev % per_node || !(intra->bw > 0))
		return sim_collective_time_link(k, bytes, ndev, net, true);
	if (!(bytes > 0))
		return 0;
	double n = ndev, nodes = ndev / per_node;
	double bw_net = per_node * net->bw * sim_hw.eff_network * (net->scale > 0 ? net->scale : 1);
	double bw_nvl = intra->bw * sim_hw.eff_nvlink * (intra->scale > 0 ? intra->scale : 1);
	double bw = bw_net < bw_nvl ? bw_net : bw_nvl;
	/* NCCL's ring latency: of the n - 1 steps (2(n - 1) for all-reduce),
	 * nodes - 1 cross the network */
	double steps = n - 1, inter = nodes - 1;
	double lat = (steps - inter) * intra->latency + inter * net->latency;
	switch (k) {
	case SIM_ALL_REDUCE:
		return 2 * (n - 1) / n * bytes / bw + 2 * lat;
	case SIM_ALL_GATHER:
	case SIM_REDUCE_SCATTER:
	case SIM_ALL_TO_ALL:
		return (n - 1) / n * bytes / bw + lat;
	case SIM_P2P:
		return sim_collective_time_link(k, bytes, ndev, net, true);
	case SIM_NCOLL:
		break;
	}
	assert(!"unknown collective");
	return 0;
}

double sim_collective_time(SimColl k, double bytes, int ndev, const IrLink *link)
{
	return sim_collective_time_link(k, bytes, ndev, link, false);
}

double sim_mesh_collective_time(const IrLogicalMesh *m, int axis, SimColl k, double bytes)
{
	assert(m && axis >= 0 && axis <= 2);
	if ((axis == 0 || axis == 1) && m->crosses_nodes[axis])
		return sim_collective_time_nodes(k, bytes, m->n[axis], m->per_node[axis],
						 &m->axis[axis], &m->intra);
	if (axis == 0 || axis == 1)
		return sim_collective_time_link(k, bytes, m->n[axis], &m->axis[axis], false);
	if (axis != 2)
		return 0;
	/* Both axes: a ring over all devices runs at its slowest hop.  Only
	 * axes longer than 1 have hops; if either crosses nodes, the ring does
	 * and the network link bounds it. */
	bool network = false;
	for (int a = 0; a < 2; a++)
		network = network || (m->n[a] > 1 && m->crosses_nodes[a]);
	const IrLink *slow = NULL;
	for (int a = 0; a < 2; a++) {
		const IrLink *l = &m->axis[a];
		if (m->n[a] <= 1 || (network && !m->crosses_nodes[a]))
			continue;
		if (!slow || l->bw < slow->bw || (l->bw == slow->bw && l->latency > slow->latency))
			slow = l;
	}
	if (!slow)
		return 0;
	if (network)
		return sim_collective_time_nodes(k, bytes, m->n[0] * m->n[1], m->mesh.ngpus, slow,
						 &m->intra);
	return sim_collective_time_link(k, bytes, m->n[0] * m->n[1], slow, network);
}
