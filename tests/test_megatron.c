/*
 * test_megatron.c -- Megatron-LM's plan by rule (passes/megatron.c): the
 * collectives of tensor and sequence parallelism per layer, weights and
 * activations per GPU against the closed forms of Shoeybi et al. 2019 and
 * Korthikanti et al. 2022, the layer split, ZeRO exactly as given, padding.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "passes/intra.h"
#include "tests/helpers.h"

#define DATA MESHPLAN_DATA_DIR "/tests/data"
#define TINY_CLUSTER DATA "/tiny-cluster.xml"

/* A 2-layer GPT: h 512, a 8, s 128, V 4096, microbatch b. */
enum { H = 512, A = 8, S = 128, V = 4096 };
#define GPT2 "layers=2,hidden=512,heads=8,seq=128,vocab=4096"

static IrGraph gpt(const char *set, int64_t b)
{
	char all[256];
	snprintf(all, sizeof all, "%s,batch=%lld", set, (long long)b);
	return test_graph("gpt", all);
}

static PassManual manual(int dp, int tp, int pp, int64_t mbs)
{
	return (PassManual){.dp = dp, .tp = tp, .pp = pp, .mbs = mbs, .v = 1,
			    .schedule = IR_SCHED_1F1B, .recompute = IR_RECOMP_NONE,
			    .shard = PASS_SHARD_MEGATRON};
}

static void build(const IrGraph *g, const IrCluster *c, const PassManual *m, int64_t batch,
		  IrPlan *p)
{
	IrError e;
	ir_plan_init(p);
	cr_assert_eq(pass_megatron_plan(g, c, m, batch, p, &e), 0, "%s", e.msg);
}

/* Per-microbatch collectives over the tp axis (1) of kind k and phase ph
 * in layer l; *bytes_ok: every one moves `bytes`. */
static int count(const IrGraph *g, const IrStagePlan *s, int l, IrPhase ph, SimColl k,
		 double bytes, bool *bytes_ok)
{
	int n = 0;
	for (int j = 0; j < s->ncomm; j++) {
		const IrComm *cm = &s->comm[j];
		const IrOp *op = &g->ops[cm->op];
		if (cm->per_step || cm->axis != 1 || op->layer != l || op->phase != ph ||
		    cm->kind != k)
			continue;
		n++;
		if (fabs(cm->bytes - bytes) > 1e-9 * bytes)
			*bytes_ok = false;
	}
	return n;
}

/* Shoeybi et al. 2019, section 3: per layer two all-reduces (g) in the
 * forward pass and two (f) in the backward, of the layer's activation
 * s*b*h elements (bf16: 2 bytes each), and nothing else over tp. */
Test(layout, tp4_all_reduces_twice_each_way_per_layer)
{
	const int64_t b = 2;
	IrCluster c = test_cluster(TINY_CLUSTER, 1);
	IrGraph g = gpt(GPT2, b);
	PassManual m = manual(1, 4, 1, b);
	IrPlan p;
	build(&g, &c, &m, b, &p);
	double want = (double)S * b * H * 2;
	for (int l = 1; l <= 2; l++) {
		bool ok = true;
		const IrStagePlan *s = &p.stages[0];
		cr_expect_eq(count(&g, s, l, IR_FWD, SIM_ALL_REDUCE, want, &ok), 2, "layer %d fwd", l);
		cr_expect_eq(count(&g, s, l, IR_BWD, SIM_ALL_REDUCE, want, &ok), 2, "layer %d bwd", l);
		cr_expect(ok, "layer %d: an all-reduce is not s*b*h*2 = %.0f bytes", l, want);
		for (int ph = IR_FWD; ph <= IR_BWD; ph++)
			for (int k = SIM_ALL_GATHER; k < SIM_NCOLL; k++) {
				bool ok2 = true;
				cr_expect_eq(count(&g, s, l, (IrPhase)ph, (SimColl)k, 0, &ok2), 0,
					     "layer %d: a %s over tp", l, sim_coll_name((SimColl)k));
			}
	}
	SimResult r;
	IrError e;
	cr_assert_eq(sim_plan(&g, &c, &p, &r, &e), 0, "%s", e.msg);
	sim_result_free(&r);
	ir_plan_free(&p);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

/* Korthikanti et al. 2022, section 4.2.2: with sequence parallelism each
 * all-reduce becomes an all-gather and a reduce-scatter: per layer 2 of
 * each in the forward pass and 2 of each in the backward, of s*b*h*2
 * bytes (the gathered tensor, the tensor before scattering). */
Test(layout, sp_all_gathers_and_reduce_scatters_twice_each_way_per_layer)
{
	const int64_t b = 2;
	IrCluster c = test_cluster(TINY_CLUSTER, 1);
	IrGraph g = gpt(GPT2, b);
	PassManual m = manual(1, 4, 1, b);
	m.sp = true;
	IrPlan p;
	build(&g, &c, &m, b, &p);
	double want = (double)S * b * H * 2;
	const IrStagePlan *s = &p.stages[0];
	for (int l = 1; l <= 2; l++)
		for (int ph = IR_FWD; ph <= IR_BWD; ph++) {
			bool ok = true, ok2 = true;
			cr_expect_eq(count(&g, s, l, (IrPhase)ph, SIM_ALL_GATHER, want, &ok), 2,
				     "layer %d phase %d all-gathers", l, ph);
			cr_expect_eq(count(&g, s, l, (IrPhase)ph, SIM_REDUCE_SCATTER, want, &ok), 2,
				     "layer %d phase %d reduce-scatters", l, ph);
			cr_expect(ok, "layer %d phase %d: a collective is not s*b*h*2 bytes", l, ph);
			cr_expect_eq(count(&g, s, l, (IrPhase)ph, SIM_ALL_REDUCE, 0, &ok2), 0,
				     "layer %d phase %d: an all-reduce is left", l, ph);
			cr_expect_eq(count(&g, s, l, (IrPhase)ph, SIM_ALL_TO_ALL, 0, &ok2), 0);
		}
	ir_plan_free(&p);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

/* Weights per GPU under tp = 4: every weight over tp (the embedding
 * vocabulary parallel, tied to the head), except what Megatron keeps whole
 * on every tp rank: layernorm gains and biases, the biases after the
 * row-parallel linears (attention output, second MLP linear), and the
 * position embedding.  GPT parameters: per layer 12h^2 + 13h, embedding
 * V h + s h, final layernorm 2h (Narayanan et al. 2021). */
Test(layout, weights_per_gpu_are_the_parameters_over_tp)
{
	const int T = 4, L = 2;
	IrCluster c = test_cluster(TINY_CLUSTER, 1);
	IrGraph g = gpt(GPT2, 1);
	PassManual m = manual(1, T, 1, 1);
	IrPlan p;
	build(&g, &c, &m, 1, &p);
	SimResult r;
	IrError e;
	cr_assert_eq(sim_plan(&g, &c, &p, &r, &e), 0, "%s", e.msg);
	double h = H;
	double P = L * (12 * h * h + 13 * h) + (double)V * h + (double)S * h + 2 * h;
	double whole = L * (4 * h + 2 * h) + 2 * h + (double)S * h;
	double want = 2 * ((P - whole) / T + whole);
	cr_log_info("weights per GPU %.0f B, rule %.0f B, params/tp %.0f B", r.rank_weight[0], want,
		    2 * P / T);
	cr_expect(fabs(r.rank_weight[0] - want) <= 1e-9 * want, "weights %.0f B, want %.0f",
		  r.rank_weight[0], want);
	/* within 3% of the parameters over tp at this small size */
	cr_expect(fabs(r.rank_weight[0] - 2 * P / T) <= 0.03 * 2 * P / T);
	sim_result_free(&r);
	ir_plan_free(&p);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

/* Activation memory of one layer, bytes, no recomputation, eager
 * attention (Korthikanti et al. 2022, eq. 2-4): tensor parallel
 * s*b*h*(10 + 24/t + 5*a*s/(h*t)); with sequence parallelism
 * s*b*h*(34 + 5*a*s/h)/t.  Measured as the difference between a 2-layer
 * and a 1-layer model's stage. */
static double layer_act(bool sp, int T, int64_t b, bool fused)
{
	IrCluster c = test_cluster(TINY_CLUSTER, 1);
	double act[2];
	for (int k = 0; k < 2; k++) {
		char set[128];
		snprintf(set, sizeof set, "layers=%d,hidden=%d,heads=%d,seq=%d,vocab=%d,attention=%d",
			 k + 1, H, A, S, V, fused ? IR_ATTENTION_FUSED : IR_ATTENTION_EAGER);
		IrGraph g = gpt(set, b);
		cr_assert_eq(g.fused_attention, fused);
		PassManual m = manual(1, T, 1, b);
		m.sp = sp;
		IrPlan p;
		build(&g, &c, &m, b, &p);
		SimStageMemory mem;
		IrError e;
		cr_assert_eq(sim_stage_memory(&g, &c, &p.stages[0], IR_RECOMP_NONE, 0, &mem, &e), 0,
			     "%s", e.msg);
		act[k] = mem.act_bytes;
		ir_plan_free(&p);
		ir_graph_free(&g);
	}
	ir_cluster_free(&c);
	return act[1] - act[0];
}

Test(layout, sp_activations_per_layer_match_korthikanti)
{
	const int64_t b = 2;
	const int T = 4;
	double s = S, h = H, a = A;
	double want = s * b * h * (34 + 5 * a * s / h) / T;
	double got = layer_act(true, T, b, false);
	cr_log_info("one layer, tp %d + sp, eager attention: %.0f B, Korthikanti %.0f B (%+.2f%%)",
		    T, got, want, 100 * (got - want) / want);
	cr_expect(fabs(got - want) <= 0.05 * want, "one layer keeps %.0f B, want %.0f (%+.1f%%)",
		  got, want, 100 * (got - want) / want);
}

/* Fused (FlashAttention) attention keeps no s x s scores: with sequence
 * parallelism one layer keeps 34*s*b*h/t bytes (Korthikanti et al. 2022's
 * count less its 5*a*s^2*b/t of attention scores; the O(s) softmax
 * statistics per head, a*s*b*4/t bytes, are the 0.2% over it here). */
Test(layout, sp_activations_per_layer_with_fused_attention)
{
	const int64_t b = 2;
	const int T = 4;
	double s = S, h = H;
	double want = 34 * s * b * h / T;
	double got = layer_act(true, T, b, true);
	cr_log_info("one layer, tp %d + sp, fused attention: %.0f B, 34sbh/t %.0f B (%+.2f%%)", T,
		    got, want, 100 * (got - want) / want);
	cr_expect(fabs(got - want) <= 0.05 * want, "one layer keeps %.0f B, want %.0f (%+.1f%%)",
		  got, want, 100 * (got - want) / want);
}

Test(layout, tp_activations_per_layer_match_korthikanti)
{
	const int64_t b = 2;
	const int T = 4;
	double s = S, h = H, a = A;
	double want = s * b * h * (10 + 24.0 / T + 5 * a * s / (h * T));
	double got = layer_act(false, T, b, false);
	cr_log_info("one layer, tp %d, eager attention: %.0f B, Korthikanti %.0f B (%+.2f%%)", T,
		    got, want, 100 * (got - want) / want);
	cr_expect(fabs(got - want) <= 0.05 * want, "one layer keeps %.0f B, want %.0f (%+.1f%%)",
		  got, want, 100 * (got - want) / want);
}

/* ------------------------------------------------------------------ */
/* Layers to stages                                                     */

/* Transformer layers per stage of pass_megatron_split (embedding and head
 * aside). */
static int split_counts(int layers, int stages, const int *given, int *per)
{
	char set[128];
	snprintf(set, sizeof set, "layers=%d,hidden=64,heads=2,seq=32,vocab=256", layers);
	IrGraph g = test_forward_graph("gpt", set);
	int first[64], last[64];
	char why[256];
	int rc = pass_megatron_split(&g, stages, given, first, last, why, sizeof why);
	if (!rc) {
		cr_expect_eq(first[0], 0);
		cr_expect_eq(last[stages - 1], g.nlayers - 1);
		for (int i = 0; i < stages; i++) {
			if (i)
				cr_expect_eq(first[i], last[i - 1] + 1, "stages are contiguous");
			per[i] = last[i] - first[i] + 1 - (i == 0) - (i == stages - 1);
		}
	}
	ir_graph_free(&g);
	return rc;
}

Test(split, even_when_the_stages_divide_the_layers)
{
	int per[64];
	cr_assert_eq(split_counts(8, 4, NULL, per), 0);
	for (int i = 0; i < 4; i++)
		cr_expect_eq(per[i], 2);
}

/* 70 layers over 12 stages: embedding and head count as a layer each,
 * 72 units of 6 (Megatron-Core's account-for-embedding/loss rule). */
Test(split, seventy_layers_over_twelve_stages)
{
	int per[64], sum = 0;
	cr_assert_eq(split_counts(70, 12, NULL, per), 0);
	for (int i = 0; i < 12; i++) {
		cr_expect_eq(per[i], i == 0 || i == 11 ? 5 : 6, "stage %d: %d layers", i, per[i]);
		sum += per[i];
	}
	cr_expect_eq(sum, 70);
	/* 9 layers over 4: 11 units, 2 each and the 3 left to stages 1..3 */
	cr_assert_eq(split_counts(9, 4, NULL, per), 0);
	const int want[4] = {1, 3, 3, 2};
	for (int i = 0; i < 4; i++)
		cr_expect_eq(per[i], want[i], "9 over 4, stage %d: %d", i, per[i]);
}

Test(split, an_explicit_split_is_taken_as_given_and_checked)
{
	int per[64];
	const int given[3] = {1, 4, 3};
	cr_assert_eq(split_counts(8, 3, given, per), 0);
	for (int i = 0; i < 3; i++)
		cr_expect_eq(per[i], given[i]);
	const int bad[3] = {1, 4, 4};
	cr_expect_neq(split_counts(8, 3, bad, per), 0, "adds up to 9, not 8");
	const int empty[3] = {4, 0, 4};
	cr_expect_neq(split_counts(8, 3, empty, per), 0, "a middle stage without layers");
	cr_expect_neq(split_counts(8, 11, NULL, per), 0, "more stages than layers");
}

/* `simulate --manual` with 70 layers and pp = 12 runs and prints the split. */
Test(split, simulate_manual_prints_the_uneven_split, .timeout = 300)
{
	char args[1024], out[1 << 15];
	snprintf(args, sizeof args,
		 "simulate gpt --set layers=70,hidden=64,heads=2,seq=32,vocab=256 --cluster %s "
		 "--nodes 3 --batch 12 --manual dp=1,tp=1,pp=12,mbs=1",
		 TINY_CLUSTER);
	cr_expect_eq(test_run(args, out, sizeof out), 0, "%s", out);
	cr_expect(strstr(out, "layers per stage  5:6:6:6:6:6:6:6:6:6:6:5") != NULL, "%s", out);
	snprintf(args, sizeof args,
		 "simulate gpt --set layers=70,hidden=64,heads=2,seq=32,vocab=256 --cluster %s "
		 "--nodes 3 --batch 12 --manual dp=1,tp=1,pp=12,mbs=1,layers=7:6:6:6:6:6:6:6:6:6:6:3",
		 TINY_CLUSTER);
	cr_expect_eq(test_run(args, out, sizeof out), 0, "%s", out);
	cr_expect(strstr(out, "layers per stage  7:6:6:6:6:6:6:6:6:6:6:3") != NULL, "%s", out);
	snprintf(args, sizeof args,
		 "simulate gpt --set layers=70,hidden=64,heads=2,seq=32,vocab=256 --cluster %s "
		 "--nodes 3 --batch 12 --manual dp=1,tp=1,pp=12,mbs=1,layers=7:6",
		 TINY_CLUSTER);
	cr_expect_eq(test_run(args, out, sizeof out), 2, "%s", out);
}

/* ------------------------------------------------------------------ */
/* ZeRO exactly as given, and padding                                   */

/* ZeRO-3 (FSDP) over 124 ranks of a GPT whose hidden size 256 (and
 * vocabulary 1000, heads 4, ...) 124 does not divide: every weight,
 * gradient and optimizer state is a 1/124 shard of its least padded dim,
 * padded to the ceiling; 16 bytes per padded element (bf16 weight and
 * gradient, fp32 master, m, v). */
Test(zero, fsdp_over_124_ranks_pads_to_the_ceiling, .timeout = 300)
{
	const int N = 124;
	IrCluster c = test_cluster(TINY_CLUSTER, 31); /* 31 nodes x 4 GPUs */
	IrGraph g = gpt("layers=2,hidden=256,heads=4,seq=64,vocab=1000", N);
	PassManual m = manual(N, 1, 1, 1);
	m.zero = 3;
	IrPlan p;
	build(&g, &c, &m, N, &p);
	SimResult r;
	IrError e;
	cr_assert_eq(sim_plan(&g, &c, &p, &r, &e), 0, "%s", e.msg);
	double padded = 0, P = 0;
	for (int t = 0; t < g.ntensors; t++) {
		const IrTensor *w = &g.tensors[t];
		if (w->role != IR_T_WEIGHT || w->weight >= 0)
			continue;
		double numel = (double)ir_tensor_numel(w), least = INFINITY;
		for (int d = 0; d < w->ndim; d++) {
			double per = ceil((double)w->dim[d] / N) * numel / (double)w->dim[d];
			least = per < least ? per : least;
		}
		padded += least;
		P += numel;
	}
	double got = r.rank_weight[0] + r.rank_grad[0] + r.rank_opt[0];
	cr_log_info("124-way FSDP: model state %.0f B per GPU, padded %.0f B, unpadded %.0f B",
		    got, 16 * padded, 16 * P / N);
	cr_expect(fabs(r.rank_weight[0] - 2 * padded) <= 1e-9 * padded);
	cr_expect(fabs(got - 16 * padded) <= 1e-9 * padded, "state %.0f B, want %.0f", got,
		  16 * padded);
	cr_expect_gt(got, 16 * P / N * 1.001, "the padding shows");
	cr_expect(r.step_time_s > 0 && isfinite(r.step_time_s));
	/* per microbatch and layer (FSDP's flat parameter): one all-gather of
	 * the layer's weights as one buffer padded to a multiple of N for
	 * forward, one more for backward where a backward op reads one of
	 * them, one reduce-scatter of its gradients; nothing all-reduced,
	 * nothing once per step */
	int L = g.nlayers;
	double flat[16] = {0};
	bool read_bwd[16] = {false};
	cr_assert_leq(L, 16);
	for (int t = 0; t < g.ntensors; t++) {
		if (g.tensors[t].role != IR_T_WEIGHT || g.tensors[t].weight >= 0)
			continue;
		int l = -1;
		for (int o = 0; o < g.nfwd_ops && l < 0; o++)
			for (int k = 0; k < g.ops[o].nin; k++)
				if (g.ops[o].in[k] == t)
					l = g.ops[o].layer;
		cr_assert_geq(l, 0);
		flat[l] += (double)ir_tensor_numel(&g.tensors[t]);
		for (int o = g.nfwd_ops; o < g.nops; o++)
			for (int k = 0; k < g.ops[o].nin && g.ops[o].phase == IR_BWD; k++)
				read_bwd[l] |= g.ops[o].in[k] == t;
	}
	int ag[16] = {0}, rs[16] = {0}, other = 0;
	for (int j = 0; j < p.stages[0].ncomm; j++) {
		const IrComm *cm = &p.stages[0].comm[j];
		/* the op's layer, or for a tied weight read in another layer
		 * (the head reading the embedding table) the layer it belongs to */
		int l = g.ops[cm->op].layer;
		for (int k = 0; k < L && fabs(cm->bytes - 2 * ceil(flat[l] / N) * N) > 0.5; k++)
			if (fabs(cm->bytes - 2 * ceil(flat[k] / N) * N) <= 0.5)
				l = k;
		double want = 2 * ceil(flat[l] / N) * N; /* bf16 */
		cr_expect(!cm->per_step, "ZeRO-3 has no per-step collective");
		if (cm->kind == SIM_ALL_GATHER)
			ag[l]++;
		else if (cm->kind == SIM_REDUCE_SCATTER)
			rs[l]++;
		else
			other++;
		if (cm->kind == SIM_ALL_GATHER || cm->kind == SIM_REDUCE_SCATTER)
			cr_expect(fabs(cm->bytes - want) <= 1e-9 * want,
				  "layer %d: %s of %.0f B, want the padded flat buffer %.0f B", l,
				  sim_coll_name(cm->kind), cm->bytes, want);
	}
	for (int l = 0; l < L; l++) {
		if (!(flat[l] > 0))
			continue;
		cr_expect_eq(ag[l], 1 + read_bwd[l], "layer %d: %d all-gathers", l, ag[l]);
		cr_expect_eq(rs[l], 1, "layer %d: %d reduce-scatters", l, rs[l]);
	}
	cr_expect_eq(other, 0);
	sim_result_free(&r);
	ir_plan_free(&p);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

/* ZeRO stages 0..3 over dp = 4 of a tp = 2 plan: model state per GPU is
 * the ZeRO paper's 2 + 2 + 12 bytes per parameter of the tp shard, the
 * terms sharded over dp as the stage says (Rajbhandari et al. 2020). */
Test(zero, each_stage_shards_what_it_says)
{
	IrCluster c = test_cluster(TINY_CLUSTER, 2); /* 8 GPUs */
	IrGraph g = gpt(GPT2, 4);
	double Pt = 0; /* elements per tp rank */
	PassManual m = manual(4, 2, 1, 1);
	IrPlan p0;
	build(&g, &c, &m, 4, &p0);
	SimResult r0;
	IrError e;
	cr_assert_eq(sim_plan(&g, &c, &p0, &r0, &e), 0, "%s", e.msg);
	Pt = r0.rank_weight[0] / 2;
	sim_result_free(&r0);
	ir_plan_free(&p0);
	const double N = 4;
	const double want[4] = {16 * Pt, 4 * Pt + 12 * Pt / N, 2 * Pt + 14 * Pt / N, 16 * Pt / N};
	for (int z = 0; z <= 3; z++) {
		m.zero = z;
		IrPlan p;
		build(&g, &c, &m, 4, &p);
		SimResult r;
		cr_assert_eq(sim_plan(&g, &c, &p, &r, &e), 0, "%s", e.msg);
		double got = r.rank_weight[0] + r.rank_grad[0] + r.rank_opt[0];
		cr_expect(fabs(got - want[z]) <= 1e-9 * want[z], "zero %d: %.0f B, want %.0f", z, got,
			  want[z]);
		sim_result_free(&r);
		ir_plan_free(&p);
	}
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

/* ZeRO-2 under gradient accumulation (m = 4 microbatches): the gradients
 * are reduce-scattered once per step, every weight's gradient exactly once
 * (bytes: the weights of a tp rank, which no dim of this model pads), and
 * nothing is reduced per microbatch; whole gradients are kept between
 * microbatches: model state 2 + 2 + 12 / N bytes per parameter. */
Test(zero, zero2_under_accumulation_reduces_once_per_step)
{
	IrCluster c = test_cluster(TINY_CLUSTER, 2); /* 8 GPUs */
	const int N = 4, M = 4;
	IrGraph g = gpt(GPT2, N);
	PassManual m = manual(N, 2, 1, 1);
	IrPlan p0;
	build(&g, &c, &m, N * M, &p0);
	SimResult r0;
	IrError e;
	cr_assert_eq(sim_plan(&g, &c, &p0, &r0, &e), 0, "%s", e.msg);
	double W = r0.rank_weight[0]; /* bytes of a tp rank's weights (bf16) */
	double Pt = W / 2;
	sim_result_free(&r0);
	ir_plan_free(&p0);
	m.zero = 2;
	IrPlan p;
	build(&g, &c, &m, N * M, &p);
	cr_assert_eq(p.nmicro, M);
	double rs_step = 0;
	int rs_micro = 0;
	for (int j = 0; j < p.stages[0].ncomm; j++) {
		const IrComm *cm = &p.stages[0].comm[j];
		if (cm->axis != 0 || cm->kind != SIM_REDUCE_SCATTER)
			continue;
		if (cm->per_step)
			rs_step += cm->bytes;
		else
			rs_micro++;
	}
	cr_expect_eq(rs_micro, 0, "%d reduce-scatters per microbatch", rs_micro);
	cr_expect(fabs(rs_step - W) <= 1e-9 * W, "%.0f B reduce-scattered per step, want %.0f",
		  rs_step, W);
	SimResult r;
	cr_assert_eq(sim_plan(&g, &c, &p, &r, &e), 0, "%s", e.msg);
	double got = r.rank_weight[0] + r.rank_grad[0] + r.rank_opt[0];
	double want = 4 * Pt + 12 * Pt / N;
	cr_expect(fabs(got - want) <= 1e-9 * want, "state %.0f B, want %.0f", got, want);
	sim_result_free(&r);
	ir_plan_free(&p);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

/* ------------------------------------------------------------------ */
/* The ILP's sequence-split attention pays for keys and values          */

static int op_named(const IrGraph *g, const char *name)
{
	for (int o = 0; o < g->nfwd_ops; o++)
		if (!strcmp(g->ops[o].name, name))
			return o;
	cr_assert_fail("no op %s", name);
	return -1;
}

/* An attention op (score: q.k, context: p.v) whose query sequence is
 * split over the tp axis needs the whole sequence of the other operand
 * (k, v) on every device: the intra-op pass's layouts say so, and turning
 * a sequence-split k or v into that layout costs an all-gather of the
 * whole tensor over the axis (the edge cost the ILP pays). */
Test(seqsplit, attention_split_over_the_sequence_gathers_keys_and_values)
{
	IrCluster c = test_cluster(TINY_CLUSTER, 1);
	IrGraph g = gpt("layers=1,hidden=512,heads=8,seq=128,vocab=4096", 2);
	IrLogicalMesh lm;
	IrError e;
	IrMesh mesh = {0, 1, 0, 4};
	cr_assert_eq(ir_logical_mesh(&c, &mesh, 1, 4, &lm, &e), 0, "%s", e.msg);
	PassCtx x = {&g, &c, &lm, NULL};
	const char *user[2] = {"block0/score", "block0/context"};
	const char *prod[2] = {"block0/k_bias", "block0/v_bias"};
	for (int i = 0; i < 2; i++) {
		int o = op_named(&g, user[i]);
		const IrOp *op = &g.ops[o];
		/* the query side's sequence label: dim 1 of the output */
		uint8_t ax[64] = {0};
		char sq = i == 0 ? op->lab[0][1] : op->lab[op->nin][1];
		ax[pass_label_index(sq)] = 2;
		PassOpChoice ch;
		cr_assert_eq(pass_op_choice(&x, o, ax, false, &ch), 0);
		cr_expect_eq(ch.in[1].dim[1], 0, "%s: its k/v operand must be whole over the sequence",
			     user[i]);
		/* k (v) as its producer writes it when that splits the sequence */
		int p = op_named(&g, prod[i]);
		const IrOp *po = &g.ops[p];
		uint8_t pax[64] = {0};
		pax[pass_label_index(po->lab[po->nin][1])] = 2;
		PassOpChoice pc;
		cr_assert_eq(pass_op_choice(&x, p, pax, false, &pc), 0);
		cr_assert_eq(pc.out[0].dim[1], 2);
		cr_assert_eq(po->out[0], op->in[1], "%s reads what %s writes", user[i], prod[i]);
		double kv = ir_tensor_bytes(&g.tensors[po->out[0]]);
		IrComm cm[4];
		int n = 0;
		double t = pass_reshard_time(&lm, kv, &pc.out[0], &ch.in[1], cm, &n, 4);
		double want = sim_mesh_collective_time(&lm, 1, SIM_ALL_GATHER, kv);
		cr_expect_gt(want, 0);
		cr_expect(fabs(t - want) <= 1e-12 + 1e-9 * want, "%s: %.3g s, all-gather %.3g s",
			  user[i], t, want);
		cr_expect_eq(n, 1);
		cr_expect_eq(cm[0].kind, SIM_ALL_GATHER);
		cr_expect(fabs(cm[0].bytes - kv) <= 1e-9 * kv, "gathers the whole k/v");
	}
	ir_graph_free(&g);
	ir_cluster_free(&c);
}
