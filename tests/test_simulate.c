/*
 * test_simulate.c -- the runtime simulator: pipeline schedules and their
 * bubbles, activations held by each schedule, stage costs with
 * recomputation, memory per device against the ZeRO and Korthikanti
 * formulas, and the Chrome trace.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime-sim/sim.h"
#include "tests/helpers.h"

/* ---- helpers ---- */

/* A small GPT whose dims are all different: batch 3, heads 4, head width 16,
 * sequence 32, hidden 64, vocabulary 128, MLP 256. */
#define GPT_SMALL "hidden=64,heads=4,seq=32,vocab=128,batch=3,layers=2"
enum { B = 3, A = 4, S = 32, H = 64, F = 256 };


static IrCluster cluster(void)
{
	return test_cluster("dgx-a100", 0);
}

typedef void (*Rule)(const IrGraph *g, const IrOp *op, int n0, int n1, uint8_t ax[64]);

static void replicated(const IrGraph *g, const IrOp *op, int n0, int n1, uint8_t ax[64])
{
	(void)g, (void)op, (void)n0, (void)n1;
	memset(ax, 0, 64);
}

static int lab_index(char c) { return __builtin_ctzll(ir_label_bit(c)); }

/* Megatron tensor + sequence parallelism on axis 1 (Korthikanti et al.
 * 2022): the heads or MLP width split where an op has them, else the
 * sequence. */
static void tensor_sequence(const IrGraph *g, const IrOp *op, int n0, int n1, uint8_t ax[64])
{
	(void)n0, (void)n1;
	memset(ax, 0, 64);
	for (int pass = 0; pass < 2; pass++)
		for (int k = 0; k < op->nin + op->nout; k++) {
			const IrTensor *t = &g->tensors[k < op->nin ? op->in[k] : op->out[k - op->nin]];
			for (int d = 0; d < t->ndim; d++) {
				int64_t n = t->dim[d];
				if (pass == 0 ? (n == A || n == F) : n == S) {
					ax[lab_index(op->lab[k][d])] = 2;
					return;
				}
			}
		}
}

static const char *axes_string(IrArena *ar, const IrOp *op, const uint8_t *ax)
{
	char buf[64];
	size_t o = 0;
	uint64_t seen = 0;
	buf[0] = 0;
	for (int k = 0; k < op->nin + op->nout; k++)
		for (const char *l = op->lab[k]; *l; l++) {
			int a = ax[lab_index(*l)];
			if (!a || (seen & ir_label_bit(*l)))
				continue;
			seen |= ir_label_bit(*l);
			o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%c=%s", o ? "," : "", *l,
					      a == 3 ? "01" : a == 1 ? "0" : "1");
		}
	return ir_strdup(ar, buf);
}

/* Stage of layers [first, last] on mesh m viewed n0 x n1, strategies by rule. */
static void stage(IrPlan *p, const IrGraph *g, IrStagePlan *s, int first, int last, IrMesh m,
		  int n0, int n1, Rule rule)
{
	int n = 0;
	for (int o = 0; o < g->nops; o++)
		n += g->ops[o].layer >= first && g->ops[o].layer <= last;
	ir_stage_alloc(p, s, n, 0);
	s->first_layer = first;
	s->last_layer = last;
	s->mesh = m;
	s->n0 = n0;
	s->n1 = n1;
	int j = 0;
	for (int o = 0; o < g->nops; o++) {
		const IrOp *op = &g->ops[o];
		if (op->layer < first || op->layer > last)
			continue;
		uint8_t ax[64];
		rule(g, op, n0, n1, ax);
		int used = 0;
		for (int k = 0; k < op->nin + op->nout; k++)
			for (const char *l = op->lab[k]; *l; l++)
				used |= ax[lab_index(*l)];
		s->op[j] = o;
		s->strategy[j] = axes_string(&p->arena, op, ax);
		s->ways[j] = ((used & 1) ? n0 : 1) * ((used & 2) ? n1 : 1);
		j++;
	}
}

/* A pipeline of balanced stages: forward tf, backward tb, act bytes each. */
static SimTimeline pipeline(IrSchedule sch, int p, int v, int m, double tf, double tb)
{
	SimStageCost *st = calloc((size_t)(p * v), sizeof *st);
	for (int i = 0; i < p * v; i++) {
		st[i].fwd_s = tf / v;
		st[i].bwd_s = tb / v;
		st[i].mem.act_bytes = 1.0 / v;
	}
	SimPipeline pl = {p * v, v, m, sch, st, NULL};
	SimTimeline t;
	IrError e = {0};
	cr_assert_eq(sim_pipeline(&pl, &t, &e), 0, "%s", e.msg);
	free(st);
	return t;
}

/* ---- schedules ---- */

Test(schedule, gpipe_and_1f1b_bubble_is_p_minus_1_over_m_plus_p_minus_1)
{
	static const int cases[][2] = {{2, 4}, {4, 8}, {4, 16}, {8, 8}, {8, 32}, {3, 7}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int p = cases[i][0], m = cases[i][1];
		double want = (double)(p - 1) / (m + p - 1);
		for (int s = IR_SCHED_GPIPE; s <= IR_SCHED_1F1B; s++) {
			SimTimeline t = pipeline((IrSchedule)s, p, 1, m, 1.0, 2.0);
			cr_assert(fabs(t.bubble_fraction - want) < 1e-12,
				  "%s p=%d m=%d: bubble %.6f, want %.6f", ir_schedule_name(s), p, m,
				  t.bubble_fraction, want);
			cr_assert(fabs(t.span_s - (m + p - 1) * 3.0) < 1e-9);
			cr_assert_eq(t.ntasks, 2 * p * m);
			sim_timeline_free(&t);
		}
	}
}

Test(schedule, interleaving_v_chunks_shrinks_the_bubble_by_v)
{
	static const int cases[][3] = {{4, 2, 8}, {4, 4, 16}, {8, 2, 16}, {2, 2, 4}, {4, 2, 4}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int p = cases[i][0], v = cases[i][1], m = cases[i][2];
		SimTimeline base = pipeline(IR_SCHED_1F1B, p, 1, m, 1.0, 2.0);
		SimTimeline il = pipeline(IR_SCHED_INTERLEAVED, p, v, m, 1.0, 2.0);
		/* bubble time (p-1)(tf+tb) without, (p-1)(tf+tb)/v with interleaving */
		cr_assert(fabs(base.bubble_s - (p - 1) * 3.0) < 1e-9);
		cr_assert(fabs(il.bubble_s * v - base.bubble_s) < 1e-9,
			  "p=%d v=%d m=%d: bubble %.6f x %d vs %.6f", p, v, m, il.bubble_s, v,
			  base.bubble_s);
		cr_assert(il.bubble_fraction < base.bubble_fraction);
		sim_timeline_free(&base);
		sim_timeline_free(&il);
	}
}

Test(schedule, one_f_one_b_holds_p_minus_i_microbatches_gpipe_all)
{
	int p = 4, m = 12;
	SimTimeline g = pipeline(IR_SCHED_GPIPE, p, 1, m, 1.0, 2.0);
	SimTimeline f = pipeline(IR_SCHED_1F1B, p, 1, m, 1.0, 2.0);
	for (int r = 0; r < p; r++) {
		cr_assert_float_eq(g.rank_act[r], m, 1e-12);
		cr_assert_float_eq(f.rank_act[r], p - r, 1e-12, "rank %d holds %.1f", r,
				   f.rank_act[r]);
		cr_assert(f.rank_act[r] < g.rank_act[r]);
	}
	sim_timeline_free(&g);
	sim_timeline_free(&f);
}

Test(schedule, every_task_runs_once_after_its_dependencies)
{
	int p = 4, v = 2, m = 8;
	SimTimeline t = pipeline(IR_SCHED_INTERLEAVED, p, v, m, 1.0, 2.0);
	int S = p * v;
	double *fe = calloc((size_t)(S * m), sizeof(double)), *bs = calloc((size_t)(S * m), sizeof(double));
	double *be = calloc((size_t)(S * m), sizeof(double)), *fs = calloc((size_t)(S * m), sizeof(double));
	int *seen = calloc((size_t)(2 * S * m), sizeof(int));
	for (int i = 0; i < t.ntasks; i++) {
		const SimTask *k = &t.task[i];
		cr_assert_eq(k->rank, k->stage % p);
		int at = k->stage * m + k->micro;
		seen[2 * at + k->backward]++;
		if (k->backward) {
			bs[at] = k->start;
			be[at] = k->end;
		} else {
			fs[at] = k->start;
			fe[at] = k->end;
		}
		if (i && t.task[i - 1].rank == k->rank)
			cr_assert(k->start >= t.task[i - 1].end - 1e-12);
	}
	for (int s = 0; s < S; s++)
		for (int j = 0; j < m; j++) {
			int at = s * m + j;
			cr_assert_eq(seen[2 * at], 1);
			cr_assert_eq(seen[2 * at + 1], 1);
			if (s)
				cr_assert(fs[at] >= fe[at - m] - 1e-12);
			cr_assert(bs[at] >= fe[at] - 1e-12);
			if (s < S - 1)
				cr_assert(bs[at] >= be[at + m] - 1e-12);
		}
	free(fe);
	free(fs);
	free(be);
	free(bs);
	free(seen);
	sim_timeline_free(&t);
}

Test(schedule, rejects_interleaving_without_whole_rounds_of_microbatches)
{
	SimStageCost st[4] = {{0}};
	SimPipeline pl = {4, 2, 3, IR_SCHED_INTERLEAVED, st, NULL};
	SimTimeline t;
	IrError e = {0};
	cr_assert_neq(sim_pipeline(&pl, &t, &e), 0);
	cr_assert(strstr(e.msg, "multiple"), "%s", e.msg);
	pl.schedule = IR_SCHED_1F1B;
	pl.nmicro = 4;
	cr_assert_neq(sim_pipeline(&pl, &t, &e), 0);
}

/* ---- stage costs ---- */

Test(stage, attention_cores_are_found_by_structure)
{
	IrGraph g = test_graph("gpt", GPT_SMALL);
	unsigned char *core = calloc((size_t)g.nops, 1);
	cr_assert_eq(sim_attention_cores(&g, core), 2);
	int n = 0;
	for (int o = 0; o < g.nops; o++) {
		if (!core[o])
			continue;
		n++;
		const char *nm = strchr(g.ops[o].name, '/') + 1;
		cr_assert(!strcmp(nm, "score") || !strcmp(nm, "scale") || !strcmp(nm, "mask") ||
			  !strcmp(nm, "softmax") || !strcmp(nm, "attn_drop"), "%s", g.ops[o].name);
	}
	cr_assert_eq(n, 10);
	free(core);
	/* a model without attention has none */
	IrGraph w = test_graph("wresnet", "batch=2");
	core = calloc((size_t)w.nops, 1);
	cr_assert_eq(sim_attention_cores(&w, core), 0);
	free(core);
	ir_graph_free(&w);
	ir_graph_free(&g);
}

Test(stage, recomputation_adds_forward_work_to_backward)
{
	IrGraph g = test_graph("gpt", GPT_SMALL);
	IrCluster c = cluster();
	IrPlan p;
	ir_plan_init(&p);
	IrStagePlan s;
	stage(&p, &g, &s, 0, g.nlayers - 1, (IrMesh){0, 1, 0, 1}, 1, 1, replicated);
	SimStageCost none, sel, full;
	IrError e = {0};
	cr_assert_eq(sim_stage_cost(&g, &c, &s, IR_RECOMP_NONE, 0, &none, &e), 0, "%s", e.msg);
	cr_assert_eq(sim_stage_cost(&g, &c, &s, IR_RECOMP_SELECTIVE, 0, &sel, &e), 0);
	cr_assert_eq(sim_stage_cost(&g, &c, &s, IR_RECOMP_FULL, 0, &full, &e), 0);
	cr_assert(none.fwd_s > 0 && none.bwd_s > none.fwd_s);
	cr_assert_float_eq(none.recompute_s, 0, 1e-15);
	cr_assert_float_eq(full.fwd_s, none.fwd_s, 1e-15);
	cr_assert_float_eq(full.bwd_s - none.bwd_s, full.recompute_s, 1e-15);
	cr_assert_float_eq(sel.bwd_s - none.bwd_s, sel.recompute_s, 1e-15);
	/* full re-runs every layer but the one with the loss; selective the cores */
	cr_assert(full.recompute_s < full.fwd_s && full.recompute_s > 0.5 * full.fwd_s);
	cr_assert(sel.recompute_s > 0 && sel.recompute_s < full.recompute_s);
	cr_assert(full.hw_flops > none.hw_flops);
	cr_assert_float_eq(full.model_flops, none.model_flops, 1e-6);
	/* model FLOPs: forward + backward of the graph */
	IrStats st;
	ir_graph_stats(&g, &st);
	double accum = 0;
	for (int o = 0; o < g.nops; o++)
		if (g.ops[o].kind == IR_ACCUM)
			accum += g.ops[o].flops;
	cr_assert_float_eq(none.model_flops, st.fwd_flops + st.bwd_flops - accum, 1.0);
	cr_assert_float_eq(none.update_flops, st.update_flops, 1.0);
	/* less kept, more recomputed */
	cr_assert(sel.mem.act_bytes < none.mem.act_bytes);
	cr_assert(full.mem.act_bytes < sel.mem.act_bytes);
	ir_plan_free(&p);
	ir_cluster_free(&c);
	ir_graph_free(&g);
}

Test(stage, collectives_count_per_microbatch_or_once_per_step)
{
	IrGraph g = test_graph("gpt", GPT_SMALL);
	IrCluster c = cluster();
	IrPlan p;
	ir_plan_init(&p);
	IrMesh m = {0, 1, 0, 8};
	IrStagePlan s0, s;
	stage(&p, &g, &s0, 0, g.nlayers - 1, m, 2, 4, replicated);
	s = s0;
	s.ncomm = 3;
	s.comm = ir_alloc(&p.arena, 3 * sizeof(IrComm));
	int fwd = g.layers[1].first_op, bwd = g.nfwd_ops + 2;
	cr_assert_eq(g.ops[bwd].phase, IR_BWD);
	s.comm[0] = (IrComm){.op = fwd, .kind = SIM_ALL_REDUCE, .axis = 1, .bytes = 1e8};
	s.comm[1] = (IrComm){.op = bwd, .kind = SIM_ALL_GATHER, .axis = 0, .bytes = 5e7};
	s.comm[2] = (IrComm){.op = bwd, .kind = SIM_ALL_REDUCE, .axis = 2, .bytes = 3e8,
			     .per_step = true};
	SimStageCost a, b;
	IrError e = {0};
	cr_assert_eq(sim_stage_cost(&g, &c, &s0, IR_RECOMP_NONE, 0, &a, &e), 0, "%s", e.msg);
	cr_assert_eq(sim_stage_cost(&g, &c, &s, IR_RECOMP_NONE, 0, &b, &e), 0, "%s", e.msg);
	IrLogicalMesh lm;
	cr_assert_eq(ir_logical_mesh(&c, &m, 2, 4, &lm, &e), 0);
	double t0 = sim_mesh_collective_time(&lm, 1, SIM_ALL_REDUCE, 1e8);
	double t1 = sim_mesh_collective_time(&lm, 0, SIM_ALL_GATHER, 5e7);
	double t2 = sim_mesh_collective_time(&lm, 2, SIM_ALL_REDUCE, 3e8);
	cr_assert_float_eq(b.fwd_s - a.fwd_s, t0, 1e-12);
	cr_assert_float_eq(b.fwd_comm_s, t0, 1e-12);
	cr_assert_float_eq(b.bwd_s - a.bwd_s, t1, 1e-12);
	cr_assert_float_eq(b.step_s - a.step_s, t2, 1e-12);
	cr_assert_float_eq(b.step_comm_s, t2, 1e-12);
	/* with full recomputation the forward collective runs again in backward */
	cr_assert_eq(sim_stage_cost(&g, &c, &s, IR_RECOMP_FULL, 0, &b, &e), 0);
	cr_assert_float_eq(b.bwd_comm_s, t1 + t0, 1e-12);
	/* a collective naming an op outside the stage is an error */
	s.comm[0].op = g.nops + 5;
	cr_assert_neq(sim_stage_cost(&g, &c, &s, IR_RECOMP_NONE, 0, &b, &e), 0);
	ir_plan_free(&p);
	ir_cluster_free(&c);
	ir_graph_free(&g);
}

/* ---- memory ---- */

/* ZeRO: optimizer (1), + gradients (2), + weights (3) split over Nd. */
static void zero_rule(const IrGraph *g, const IrOp *op, int n0, int n1, uint8_t ax[64], int z)
{
	(void)g, (void)n0, (void)n1;
	memset(ax, 0, 64);
	if ((op->kind == IR_ADAM && z >= 1) || (op->kind == IR_ACCUM && z >= 2))
		ax[lab_index(op->lab[0][0])] = 1;
}
static void zero1(const IrGraph *g, const IrOp *op, int n0, int n1, uint8_t ax[64])
{
	zero_rule(g, op, n0, n1, ax, 1);
}
static void zero2(const IrGraph *g, const IrOp *op, int n0, int n1, uint8_t ax[64])
{
	zero_rule(g, op, n0, n1, ax, 2);
}

Test(memory, model_state_is_16_bytes_per_parameter_and_follows_zero)
{
	IrGraph g = test_graph("gpt", GPT_SMALL);
	IrCluster c = cluster();
	IrStats st;
	ir_graph_stats(&g, &st);
	double psi = (double)st.params;
	const int nd = 4;
	/* Rajbhandari et al. 2020: 16, 4 + 12/Nd, 2 + 14/Nd, 16/Nd bytes per parameter */
	double want[4] = {16 * psi, 4 * psi + 12 * psi / nd, 2 * psi + 14 * psi / nd,
			  16 * psi / nd};
	Rule rules[4] = {replicated, zero1, zero2, zero2};
	for (int z = 0; z <= 3; z++) {
		IrPlan p;
		ir_plan_init(&p);
		IrStagePlan s;
		stage(&p, &g, &s, 0, g.nlayers - 1, (IrMesh){0, 1, 0, nd}, nd, 1, rules[z]);
		SimStageMemory m;
		IrError e = {0};
		cr_assert_eq(sim_stage_memory(&g, &c, &s, IR_RECOMP_NONE, z, &m, &e), 0, "%s",
			     e.msg);
		double got = m.weight_bytes + m.grad_bytes + m.opt_bytes;
		cr_assert_float_eq(got, want[z], 1e-6, "ZeRO-%d: %.0f bytes, want %.0f", z, got,
				   want[z]);
		cr_assert_float_eq(m.tied_grad_bytes, 0, 1e-12);
		ir_plan_free(&p);
	}
	cr_assert_float_eq(st.weight_bytes + st.grad_bytes + st.opt_bytes, 16 * psi, 1e-6);
	ir_cluster_free(&c);
	ir_graph_free(&g);
}

Test(memory, a_tied_weight_costs_a_copy_where_it_is_not_updated)
{
	IrGraph g = test_graph("gpt", GPT_SMALL);
	IrCluster c = cluster();
	IrPlan p;
	ir_plan_init(&p);
	IrStagePlan head;
	int L = g.nlayers;
	stage(&p, &g, &head, L - 1, L - 1, (IrMesh){0, 1, 0, 1}, 1, 1, replicated);
	SimStageMemory m;
	IrError e = {0};
	cr_assert_eq(sim_stage_memory(&g, &c, &head, IR_RECOMP_NONE, 0, &m, &e), 0, "%s", e.msg);
	double wte = 128.0 * 64 * 2; /* vocab x hidden, bf16 */
	cr_assert_float_eq(m.tied_grad_bytes, wte, 1e-9);
	cr_assert_float_eq(m.weight_bytes, wte + 2 * 64 * 2, 1e-9); /* + final layernorm */
	ir_plan_free(&p);
	ir_cluster_free(&c);
	ir_graph_free(&g);
}

Test(memory, transformer_layer_activations_match_korthikanti_with_tp_and_sp)
{
	IrGraph g = test_graph("gpt", GPT_SMALL);
	IrCluster c = cluster();
	double sbh = (double)S * B * H;
	for (int t = 1; t <= 4; t *= 2) {
		IrPlan p;
		ir_plan_init(&p);
		IrStagePlan s;
		stage(&p, &g, &s, 1, 1, (IrMesh){0, 1, 0, t}, 1, t, tensor_sequence);
		SimStageMemory none, sel, full;
		IrError e = {0};
		cr_assert_eq(sim_stage_memory(&g, &c, &s, IR_RECOMP_NONE, 0, &none, &e), 0, "%s",
			     e.msg);
		cr_assert_eq(sim_stage_memory(&g, &c, &s, IR_RECOMP_SELECTIVE, 0, &sel, &e), 0);
		cr_assert_eq(sim_stage_memory(&g, &c, &s, IR_RECOMP_FULL, 0, &full, &e), 0);
		/* Korthikanti et al. 2022, eq. 2-6: s b h (34 + 5 a s / h) / t */
		double want = sbh * (34.0 + 5.0 * A * S / H) / t;
		cr_assert(fabs(none.act_bytes - want) <= 0.05 * want,
			  "t=%d: %.0f bytes, formula %.0f", t, none.act_bytes, want);
		/* selective recomputation: 34 s b h / t kept, the cores recomputed */
		cr_assert(fabs(sel.act_bytes - 34 * sbh / t) <= 0.05 * 34 * sbh / t,
			  "selective: %.0f", sel.act_bytes);
		cr_assert_float_eq(sel.act_work_bytes, 5.0 * A * S * S * B / t, 1e-6);
		/* full: the layer's input only */
		cr_assert_float_eq(full.act_bytes, 2 * sbh / t, 1e-6);
		cr_assert(full.act_work_bytes > sel.act_bytes);
		ir_plan_free(&p);
	}
	ir_cluster_free(&c);
	ir_graph_free(&g);
}

/* ---- fused attention ---- */

static bool attention_op(const IrGraph *g, const IrOp *op)
{
	static const char *core[] = {"score", "scale", "mask", "softmax", "attn_drop", "context"};
	const IrOp *f = op->phase == IR_FWD ? op : op->fwd >= 0 ? &g->ops[op->fwd] : NULL;
	if (!f)
		return false;
	const char *nm = strchr(f->name, '/');
	nm = nm ? nm + 1 : f->name;
	for (size_t i = 0; i < sizeof core / sizeof core[0]; i++)
		if (!strcmp(nm, core[i]))
			return true;
	return false;
}

Test(fused, the_model_file_preset_and_set_choose_the_attention_kernel)
{
	IrGraph g = test_graph("gpt", GPT_SMALL);
	cr_assert(!g.fused_attention, "the 2021-era GPT runs eager attention");
	ir_graph_free(&g);
	g = test_graph("gpt", GPT_SMALL ",attention=fused");
	cr_assert(g.fused_attention);
	ir_graph_free(&g);
	g = test_graph("llama", "hidden=64,heads=4,kv_heads=2,seq=32,vocab=128,layers=2,ffn=96");
	cr_assert(g.fused_attention, "the llama zoo runs fused attention");
	ir_graph_free(&g);
	g = test_graph("llama", "hidden=64,heads=4,kv_heads=2,seq=32,vocab=128,layers=2,ffn=96,"
				"attention=eager");
	cr_assert(!g.fused_attention);
	ir_graph_free(&g);
	IrParamSet ps = {0};
	IrError e;
	cr_assert_neq(ir_params_parse(&ps, "attention=flash", &e), 0);
	cr_assert(strstr(e.msg, "fused or eager"), "%s", e.msg);
}

Test(fused, a_layer_keeps_34_sbh_over_t_with_sequence_parallelism)
{
	IrGraph g = test_graph("gpt", GPT_SMALL ",attention=fused");
	IrCluster c = cluster();
	double sbh = (double)S * B * H;
	for (int t = 1; t <= 4; t *= 2) {
		IrPlan p;
		ir_plan_init(&p);
		IrStagePlan s;
		stage(&p, &g, &s, 1, 1, (IrMesh){0, 1, 0, t}, 1, t, tensor_sequence);
		SimStageMemory m;
		IrError e = {0};
		cr_assert_eq(sim_stage_memory(&g, &c, &s, IR_RECOMP_NONE, 0, &m, &e), 0, "%s", e.msg);
		/* Korthikanti et al. 2022 without the 5 a s / h of the scores */
		double want = 34 * sbh / t;
		cr_assert(fabs(m.act_bytes - want) <= 0.05 * want, "t=%d: %.0f bytes, want %.0f", t,
			  m.act_bytes, want);
		/* nothing of s x s size is kept or worked on */
		cr_assert(m.act_bytes < sbh * 34.5 / t);
		cr_assert_float_eq(m.act_work_bytes, 0, 1e-9);
		ir_plan_free(&p);
	}
	ir_cluster_free(&c);
	ir_graph_free(&g);
}

Test(fused, backward_recomputes_scores_in_kernel_and_skips_masked_blocks)
{
	IrGraph ge = test_graph("gpt", GPT_SMALL);
	IrGraph gf = test_graph("gpt", GPT_SMALL ",attention=fused");
	IrCluster c = cluster();
	IrPlan p;
	ir_plan_init(&p);
	IrStagePlan s;
	stage(&p, &ge, &s, 0, ge.nlayers - 1, (IrMesh){0, 1, 0, 1}, 1, 1, replicated);
	SimStageCost eager, fused;
	IrError e = {0};
	cr_assert_eq(sim_stage_cost(&ge, &c, &s, IR_RECOMP_NONE, 0, &eager, &e), 0, "%s", e.msg);
	cr_assert_eq(sim_stage_cost(&gf, &c, &s, IR_RECOMP_NONE, 0, &fused, &e), 0, "%s", e.msg);
	/* model FLOPs: the usual count, the full s x s attention */
	cr_assert_float_eq(fused.model_flops, eager.model_flops, 1e-6);
	/* hardware FLOPs: every other op as before; per layer the two attention
	 * GEMMs (2 b s^2 h each) halved by the causal mask forward, and 2.5x that
	 * backward (5 GEMMs, the scores recomputed) */
	double other = 0;
	for (int o = 0; o < gf.nops; o++)
		if (gf.ops[o].phase != IR_UPDATE && !attention_op(&gf, &gf.ops[o]))
			other += gf.ops[o].flops;
	int layers = 2;
	double attn = 2.0 * B * S * S * H; /* score + context forward, halved */
	cr_assert_float_eq(fused.hw_flops, other + layers * 3.5 * attn, 1.0,
			   "%.0f vs %.0f", fused.hw_flops, other + layers * 3.5 * attn);
	cr_assert(fused.hw_flops < eager.hw_flops);
	/* memory does not rise: no score-sized tensor kept */
	cr_assert(fused.mem.act_bytes < eager.mem.act_bytes);
	/* selective recomputation has nothing left to recompute */
	SimStageCost sel;
	cr_assert_eq(sim_stage_cost(&gf, &c, &s, IR_RECOMP_SELECTIVE, 0, &sel, &e), 0, "%s", e.msg);
	cr_assert_float_eq(sel.recompute_s, 0, 1e-15);
	cr_assert_float_eq(sel.mem.act_bytes, fused.mem.act_bytes, 1e-6);
	ir_plan_free(&p);
	ir_cluster_free(&c);
	ir_graph_free(&ge);
	ir_graph_free(&gf);
}

Test(fused, kernel_time_follows_the_published_efficiency)
{
	IrCluster c = cluster();
	/* a large causal attention: 8 x 2k tokens, 16 heads of 128 */
	double f = 4.0 * 2048 * 2048 * 128 * 16 * 8 / 2;
	double t = sim_attention_time(&c.gpu, IR_BF16, f, 1e6, false);
	cr_assert_float_eq(t, f / (312e12 * 0.73) + 3e-6, 1e-12);
	t = sim_attention_time(&c.gpu, IR_BF16, 2.5 * f, 1e6, true);
	cr_assert_float_eq(t, 2.5 * f / (312e12 * 0.63) + 3e-6, 1e-12);
	IrCluster h = test_cluster("dgx-h100", 0);
	t = sim_attention_time(&h.gpu, IR_BF16, f, 1e6, false);
	cr_assert_float_eq(t, f / (989.4e12 * 0.62) + 3e-6, 1e-12);
	ir_cluster_free(&h);
	ir_cluster_free(&c);
}

/* ---- overlap ---- */

/* One stage of GPT_SMALL on 2 GPUs (data parallel), `nmicro` microbatches,
 * once-per-step collectives `kind` of bytes[l] on an update op of layer l. */
static void dp_plan_kind(const IrGraph *g, IrPlan *p, const double *bytes, int nmicro,
			 SimColl kind)
{
	ir_plan_init(p);
	p->model = "gpt";
	p->cluster = "dgx-a100";
	p->microbatch = B;
	p->nmicro = nmicro;
	p->global_batch = (int64_t)B * nmicro;
	p->nstages = 1;
	p->stages = ir_alloc(&p->arena, sizeof(IrStagePlan));
	IrStagePlan *s = &p->stages[0];
	stage(p, g, s, 0, g->nlayers - 1, (IrMesh){0, 1, 0, 2}, 2, 1, replicated);
	s->comm = ir_alloc(&p->arena, (size_t)g->nlayers * sizeof(IrComm));
	s->ncomm = 0;
	for (int l = 0; l < g->nlayers; l++) {
		if (!(bytes[l] > 0))
			continue;
		int upd = -1;
		for (int o = 0; o < g->nops && upd < 0; o++)
			if (g->ops[o].kind == IR_ADAM && g->ops[o].layer == l)
				upd = o;
		cr_assert(upd >= 0);
		s->comm[s->ncomm++] = (IrComm){.op = upd, .kind = kind, .axis = 0,
					       .bytes = bytes[l], .per_step = true};
	}
}

static void dp_plan(const IrGraph *g, IrPlan *p, const double *bytes, int nmicro)
{
	dp_plan_kind(g, p, bytes, nmicro, SIM_ALL_REDUCE);
}

Test(overlap, only_the_last_bucket_is_exposed_when_each_fits_in_the_backward_left)
{
	IrGraph g = test_graph("gpt", GPT_SMALL);
	IrCluster c = cluster();
	cr_assert_eq(g.nlayers, 4); /* embed, block0, block1, head */
	/* small buckets on layers 0, 1 and 3: each reduction (~4 us) is shorter
	 * than the backward of the layers after it in backward order */
	double bytes[4] = {2e3, 1e3, 0, 3e3};
	IrPlan p;
	dp_plan(&g, &p, bytes, 4);
	IrLogicalMesh lm;
	IrError e = {0};
	cr_assert_eq(ir_logical_mesh(&c, &p.stages[0].mesh, 2, 1, &lm, &e), 0);
	double t0 = sim_mesh_collective_time(&lm, 0, SIM_ALL_REDUCE, 2e3); /* layer 0: last */
	double flat = sim_mesh_collective_time(&lm, 0, SIM_ALL_REDUCE, 6e3);

	SimResult on, off;
	cr_assert_eq(sim_plan(&g, &c, &p, &on, &e), 0, "%s", e.msg);
	p.overlap = 0;
	cr_assert_eq(sim_plan(&g, &c, &p, &off, &e), 0, "%s", e.msg);
	const SimStageCost *so = &off.stage[0];
	/* off: today's figure, one flat all-reduce after the last backward */
	cr_assert_float_eq(so->grad_sync_s, flat, 1e-15);
	cr_assert_float_eq(off.step_time_s, off.tl.span_s + so->step_s, 1e-15);
	/* on: the update, plus only layer 0's reduction (its layer's backward is
	 * the last one) */
	double update = so->step_s - flat;
	cr_assert_float_eq(on.tl.span_s, off.tl.span_s, 1e-15);
	cr_assert_float_eq(on.step_time_s, on.tl.span_s + t0 + update, 1e-12,
			   "step %.9g, want %.9g", on.step_time_s, on.tl.span_s + t0 + update);
	/* the other buckets ran during the last backward, on the comm stream */
	cr_assert(on.rank_sync_start[0] < on.tl.span_s);
	cr_assert_float_eq(on.rank_sync_end[0], on.tl.span_s + t0, 1e-12);
	/* the trace shows them on the communication stream (thread 1) */
	p.overlap = IR_OVERLAP_DEFAULT;
	char *tr = sim_trace_json(&p, &on);
	cr_assert_not_null(tr);
	json_error_t je;
	json_t *j = json_loads(tr, 0, &je);
	cr_assert_not_null(j, "%s", je.text);
	size_t k;
	json_t *ev;
	int buckets = 0;
	json_array_foreach(json_object_get(j, "traceEvents"), k, ev) {
		const char *nm = json_string_value(json_object_get(ev, "name"));
		if (nm && !strcmp(nm, "gradient reduce (buckets)")) {
			buckets++;
			cr_assert_eq(json_integer_value(json_object_get(ev, "tid")), 1);
			double ts = json_number_value(json_object_get(ev, "ts")) * 1e-6;
			cr_assert(ts < on.tl.span_s, "starts during the last backward");
		}
	}
	cr_assert_eq(buckets, 1);
	json_decref(j);
	free(tr);
	sim_result_free(&on);
	sim_result_free(&off);

	/* a bucket longer than the backward left after it is exposed in part */
	double big[4] = {2e3, 1e3, 0, 3e9};
	ir_plan_free(&p);
	dp_plan(&g, &p, big, 4);
	cr_assert_eq(sim_plan(&g, &c, &p, &on, &e), 0, "%s", e.msg);
	double t3 = sim_mesh_collective_time(&lm, 0, SIM_ALL_REDUCE, 3e9);
	cr_assert(on.step_time_s > on.tl.span_s + t0 + update + 0.5 * t3);
	sim_result_free(&on);
	ir_plan_free(&p);
	ir_cluster_free(&c);
	ir_graph_free(&g);
}

Test(overlap, updated_weight_gathers_run_in_the_next_forward_and_only_the_first_is_exposed)
{
	IrGraph g = test_graph("gpt", GPT_SMALL);
	IrCluster c = cluster();
	/* ZeRO-1's all-gathers of the updated shards on layers 0, 1 and 3, each
	 * (~4 us) shorter than the forward of the layer before it */
	double bytes[4] = {2e3, 1e3, 0, 3e3};
	IrPlan p;
	dp_plan_kind(&g, &p, bytes, 4, SIM_ALL_GATHER);
	IrLogicalMesh lm;
	IrError e = {0};
	cr_assert_eq(ir_logical_mesh(&c, &p.stages[0].mesh, 2, 1, &lm, &e), 0);
	double t0 = sim_mesh_collective_time(&lm, 0, SIM_ALL_GATHER, 2e3); /* layer 0: first */
	double flat = sim_mesh_collective_time(&lm, 0, SIM_ALL_GATHER, 6e3);
	SimResult on, off;
	p.overlap = IR_OVERLAP_PARAM_GATHER;
	cr_assert_eq(sim_plan(&g, &c, &p, &on, &e), 0, "%s", e.msg);
	p.overlap = 0;
	cr_assert_eq(sim_plan(&g, &c, &p, &off, &e), 0, "%s", e.msg);
	/* off: one flat all-gather once per step (today's figure) */
	cr_assert_float_eq(off.step_time_s, off.tl.span_s + off.stage[0].step_s, 1e-15);
	double update = off.stage[0].step_s - flat;
	/* on: the step loses the flat gather and gains layer 0's bucket */
	cr_assert_float_eq(on.stage[0].param_gather_s, t0, 1e-15);
	cr_assert_float_eq(on.step_time_s, on.tl.span_s + update + t0, 1e-12,
			   "step %.9g, want %.9g", on.step_time_s, on.tl.span_s + update + t0);
	sim_result_free(&on);
	sim_result_free(&off);
	/* a bucket longer than all the forward before it: exposed is what it
	 * outlasts that forward by, plus its queue behind the earlier buckets */
	double big[4] = {2e3, 1e3, 0, 3e9};
	ir_plan_free(&p);
	dp_plan_kind(&g, &p, big, 4, SIM_ALL_GATHER);
	p.overlap = IR_OVERLAP_PARAM_GATHER;
	SimStageCost none, sc;
	IrStagePlan s0 = p.stages[0];
	s0.ncomm = 0;
	cr_assert_eq(sim_stage_cost(&g, &c, &s0, IR_RECOMP_NONE, 0, &none, &e), 0);
	cr_assert_eq(sim_stage_cost_overlap(&g, &c, &p.stages[0], IR_RECOMP_NONE, 0,
					    IR_OVERLAP_PARAM_GATHER, &sc, &e), 0, "%s", e.msg);
	double t1 = sim_mesh_collective_time(&lm, 0, SIM_ALL_GATHER, 1e3);
	double t3 = sim_mesh_collective_time(&lm, 0, SIM_ALL_GATHER, 3e9);
	/* forward of layers 0..2 runs while the stream works through t0 + t1 +
	 * t3; layer 3 starts once its bucket is in */
	IrPlan q; /* layer 3 alone: its forward */
	ir_plan_init(&q);
	IrStagePlan s3;
	stage(&q, &g, &s3, 3, 3, (IrMesh){0, 1, 0, 2}, 2, 1, replicated);
	SimStageCost x;
	cr_assert_eq(sim_stage_cost(&g, &c, &s3, IR_RECOMP_NONE, 0, &x, &e), 0);
	double fwd3 = x.fwd_s;
	ir_plan_free(&q);
	double want = t0 + t1 + t3 + fwd3 - none.fwd_s;
	cr_assert_float_eq(sc.param_gather_s, want, 1e-9 * t3, "exposed %.9g, want %.9g",
			   sc.param_gather_s, want);
	ir_plan_free(&p);
	ir_cluster_free(&c);
	ir_graph_free(&g);
}

Test(overlap, prefetched_weight_gathers_hide_behind_the_previous_layer)
{
	IrGraph g = test_graph("gpt", GPT_SMALL);
	IrCluster c = cluster();
	IrPlan p;
	ir_plan_init(&p);
	IrStagePlan s;
	stage(&p, &g, &s, 1, 2, (IrMesh){0, 1, 0, 2}, 2, 1, replicated);
	/* one weight all-gather on the first forward op of each block */
	s.comm = ir_alloc(&p.arena, 2 * sizeof(IrComm));
	s.ncomm = 2;
	IrLogicalMesh lm;
	IrError e = {0};
	cr_assert_eq(ir_logical_mesh(&c, &s.mesh, 2, 1, &lm, &e), 0);
	for (int l = 1; l <= 2; l++)
		s.comm[l - 1] = (IrComm){.op = g.layers[l].first_op, .kind = SIM_ALL_GATHER,
					 .axis = 0, .bytes = 1e3, .reshard = true, .weight = true};
	double w = sim_mesh_collective_time(&lm, 0, SIM_ALL_GATHER, 1e3);
	SimStageCost serial, pf, none;
	IrStagePlan s0 = s;
	s0.ncomm = 0;
	cr_assert_eq(sim_stage_cost_overlap(&g, &c, &s0, IR_RECOMP_NONE, 0, 0, &none, &e), 0);
	cr_assert_eq(sim_stage_cost_overlap(&g, &c, &s, IR_RECOMP_NONE, 0, 0, &serial, &e), 0);
	cr_assert_eq(sim_stage_cost_overlap(&g, &c, &s, IR_RECOMP_NONE, 0,
					    IR_OVERLAP_PARAM_GATHER, &pf, &e), 0, "%s", e.msg);
	/* serial: both gathers on the critical path */
	cr_assert_float_eq(serial.fwd_s, none.fwd_s + 2 * w, 1e-12);
	/* prefetched: the first layer waits for its gather, the second's is
	 * hidden behind the first layer's compute (longer than one gather) */
	cr_assert_float_eq(pf.fwd_s, none.fwd_s + w, 1e-12, "%.9g vs %.9g", pf.fwd_s,
			   none.fwd_s + w);
	ir_plan_free(&p);
	ir_cluster_free(&c);
	ir_graph_free(&g);
}

/* ---- calibration ---- */

/* Four runs of different make-up, timed with a planted profile. */
typedef struct {
	IrGraph g[4];
	IrPlan p[4];
	IrCluster c[4];
	SimCalRun runs[4]; /* measured: timed with the planted profile */
} PlantedRuns;

static void planted_runs(PlantedRuns *r, const double truth[SIM_CAL_NPARAM])
{
	IrGraph *g = r->g;
	IrPlan *p = r->p;
	IrCluster *c = r->c;
	SimCalRun *runs = r->runs;
	/* small and large microbatches (launch versus compute bound), tensor
	 * parallelism over NVLink, data parallelism with a large once-per-step
	 * all-reduce */
	static const char *sets[4] = {GPT_SMALL, "hidden=512,heads=8,seq=256,vocab=1024,batch=8,layers=2",
				      "hidden=256,heads=4,seq=64,vocab=512,batch=1,layers=2",
				      "hidden=1024,heads=16,seq=512,vocab=2048,batch=4,layers=2"};
	double meas[4];
	for (int i = 0; i < 4; i++) {
		g[i] = test_graph("gpt", sets[i]);
		c[i] = cluster();
		ir_plan_init(&p[i]);
		p[i].microbatch = g[i].batch;
		p[i].nmicro = 2;
		p[i].global_batch = 2 * g[i].batch;
		p[i].nstages = 1;
		p[i].stages = ir_alloc(&p[i].arena, sizeof(IrStagePlan));
		IrStagePlan *st = &p[i].stages[0];
		if (i % 2)
			stage(&p[i], &g[i], st, 0, g[i].nlayers - 1, (IrMesh){0, 1, 0, 4}, 1, 4,
			      tensor_sequence);
		else
			stage(&p[i], &g[i], st, 0, g[i].nlayers - 1, (IrMesh){0, 1, 0, 1}, 1, 1,
			      replicated);
		if (i == 2) { /* data parallel over 2 nodes: a per-step all-reduce */
			ir_plan_free(&p[i]);
			ir_cluster_free(&c[i]);
			c[i] = test_cluster("dgx-a100", 2);
			ir_plan_init(&p[i]);
			p[i].microbatch = g[i].batch;
			p[i].nmicro = 2;
			p[i].global_batch = 2 * g[i].batch;
			p[i].nstages = 1;
			p[i].stages = ir_alloc(&p[i].arena, sizeof(IrStagePlan));
			st = &p[i].stages[0];
			stage(&p[i], &g[i], st, 0, g[i].nlayers - 1, (IrMesh){0, 2, 0, 1}, 2, 1,
			      replicated);
			st->comm = ir_alloc(&p[i].arena, sizeof(IrComm));
			st->ncomm = 1;
			int upd = g[i].nops - 1;
			cr_assert_eq(g[i].ops[upd].phase, IR_UPDATE);
			st->comm[0] = (IrComm){.op = upd, .kind = SIM_ALL_REDUCE, .axis = 0,
					       .bytes = 4e8, .per_step = true};
		}
		runs[i] = (SimCalRun){"r", &g[i], &p[i], &c[i], 0};
	}
	IrError e = {0};
	cr_assert_eq(sim_cal_predict(runs, 4, truth, meas, &e), 0, "%s", e.msg);
	for (int i = 0; i < 4; i++)
		runs[i].measured_s = meas[i];
}

static void planted_free(PlantedRuns *r)
{
	for (int i = 0; i < 4; i++) {
		ir_plan_free(&r->p[i]);
		ir_cluster_free(&r->c[i]);
		ir_graph_free(&r->g[i]);
	}
}

/* Times four runs of different make-up with the profile `truth`, fits a
 * profile to those times from the defaults and checks it recovers `truth`
 * (each factor to 2%, each run to 1e-4) and converges. */
static void recovers_planted(const double truth[SIM_CAL_NPARAM])
{
	PlantedRuns r;
	planted_runs(&r, truth);
	IrError e = {0};
	double v[SIM_CAL_NPARAM], pred[4];
	sim_cal_default(v);
	SimCalFit fit = {.pred_s = pred};
	cr_assert_eq(sim_calibrate(r.runs, 4, (1u << SIM_CAL_NPARAM) - 1, -1, v, &fit, &e), 0,
		     "%s", e.msg);
	for (int i = 0; i < 4; i++)
		cr_assert(fabs(pred[i] / r.runs[i].measured_s - 1) < 1e-4, "run %d: %.9g vs %.9g", i,
			  pred[i], r.runs[i].measured_s);
	for (int j = 0; j < SIM_CAL_NPARAM; j++)
		cr_assert(fabs(v[j] / truth[j] - 1) < 2e-2, "%s: fitted %.6g, planted %.6g", sim_cal_name(j), v[j], truth[j]);
	cr_assert(fit.rms_log < 1e-4);
	cr_assert(fit.converged && fit.iterations < SIM_CAL_MAX_ITER, "%d iterations",
		  fit.iterations);
	planted_free(&r);
}

Test(calibrate, recovers_planted_profile_factors_from_their_own_step_times)
{
	double truth[SIM_CAL_NPARAM] = {0.8, 1.1, 0.7, 4.0};
	recovers_planted(truth);
	unsigned m;
	cr_assert_eq(sim_cal_parse("gemm-scale,kernel-overhead-us", &m), 0);
	cr_assert_eq(m, (1u << SIM_CAL_GEMM) | (1u << SIM_CAL_OVERHEAD));
	cr_assert_neq(sim_cal_parse("gemm,foo", &m), 0);
}

/* A profile with communication on its bound (NCCL at its line rate): the
 * fit holds it there once a step would pass it, fits the others, and
 * converges to the planted values. */
Test(calibrate, recovers_planted_profile_with_a_factor_on_its_bound)
{
	double truth[SIM_CAL_NPARAM] = {0.8, 1.1, 1 / fmax(sim_hw.eff_nvlink, sim_hw.eff_network),
					4.0};
	recovers_planted(truth);
}

/* Runs timed with communication faster than any profile may make it: the
 * best fit within the bounds has comm-scale on its bound, so fitting all four
 * factors must end where fitting the other three with comm-scale fixed there
 * ends, and converge on the way. */
Test(calibrate, fit_beyond_a_bound_ends_where_the_bound_is_fixed)
{
	PlantedRuns r;
	double up = 1 / fmax(sim_hw.eff_nvlink, sim_hw.eff_network);
	double truth[SIM_CAL_NPARAM] = {0.8, 1.1, 1.2 * up, 4.0};
	planted_runs(&r, truth);
	IrError e = {0};
	double all[SIM_CAL_NPARAM], three[SIM_CAL_NPARAM];
	sim_cal_default(all);
	sim_cal_default(three);
	three[SIM_CAL_COMM] = up;
	SimCalFit fa = {0}, f3 = {0};
	cr_assert_eq(sim_calibrate(r.runs, 4, (1u << SIM_CAL_NPARAM) - 1, -1, all, &fa, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(sim_calibrate(r.runs, 4, (1u << SIM_CAL_NPARAM) - 1 - (1u << SIM_CAL_COMM), -1,
				   three, &f3, &e), 0, "%s", e.msg);
	cr_assert(fa.converged && f3.converged, "%d and %d iterations", fa.iterations,
		  f3.iterations);
	cr_assert_float_eq(all[SIM_CAL_COMM], up, 1e-9);
	for (int j = 0; j < SIM_CAL_NPARAM; j++)
		cr_assert(fabs(all[j] - three[j]) < 1e-3 * (1 + three[j]), "%s: %.6g vs %.6g",
			  sim_cal_name(j), all[j], three[j]);
	cr_assert(fabs(fa.rms_log - f3.rms_log) < 1e-6, "%g vs %g", fa.rms_log, f3.rms_log);
	planted_free(&r);
}

/* ---- whole plans ---- */

/* Two-stage pipeline of GPT_SMALL on 2 x (1 x 2) GPUs. */
static void two_stage_plan(const IrGraph *g, IrPlan *p, IrSchedule sch, int nmicro)
{
	ir_plan_init(p);
	p->model = "gpt";
	p->cluster = "dgx-a100";
	p->microbatch = B;
	p->nmicro = nmicro;
	p->global_batch = (int64_t)B * nmicro;
	p->schedule = sch;
	p->nstages = 2;
	p->stages = ir_alloc(&p->arena, 2 * sizeof(IrStagePlan));
	stage(p, g, &p->stages[0], 0, 1, (IrMesh){0, 1, 0, 2}, 1, 2, tensor_sequence);
	stage(p, g, &p->stages[1], 2, g->nlayers - 1, (IrMesh){0, 1, 2, 2}, 1, 2,
	      tensor_sequence);
}

Test(plan, metrics_follow_from_the_step_time)
{
	IrGraph g = test_graph("gpt", GPT_SMALL);
	IrCluster c = cluster();
	IrPlan p;
	two_stage_plan(&g, &p, IR_SCHED_1F1B, 8);
	SimResult r;
	IrError e = {0};
	cr_assert_eq(sim_plan(&g, &c, &p, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(r.ngpus, 4);
	cr_assert_eq(r.nranks, 2);
	cr_assert(r.step_time_s > r.tl.span_s);
	cr_assert_float_eq(r.samples_per_s, 24 / r.step_time_s, 1e-9);
	cr_assert_float_eq(r.tokens_per_s, 24.0 * S / r.step_time_s, 1e-6);
	cr_assert_float_eq(r.tflops_per_gpu, r.model_flops / r.step_time_s / 4 / 1e12, 1e-12);
	cr_assert_float_eq(r.mfu, r.tflops_per_gpu / 312.0, 1e-12);
	cr_assert(r.hfu >= r.mfu);
	cr_assert(r.bubble_fraction > 0 && r.bubble_fraction < 0.5);
	cr_assert(r.fits);
	cr_assert(r.xfer_s[0] > 0);
	cr_assert(r.peak_memory_bytes >= r.rank_mem[0] && r.peak_memory_bytes >= r.rank_mem[1]);
	/* GPipe holds every microbatch: more memory, same balanced bubble */
	SimResult rg;
	p.schedule = IR_SCHED_GPIPE;
	cr_assert_eq(sim_plan(&g, &c, &p, &rg, &e), 0, "%s", e.msg);
	cr_assert(rg.tl.rank_act[0] > r.tl.rank_act[0]);
	sim_result_free(&rg);
	sim_result_free(&r);
	ir_plan_free(&p);
	ir_cluster_free(&c);
	ir_graph_free(&g);
}

Test(plan, rejects_plans_that_do_not_fit_the_model)
{
	IrGraph g = test_graph("gpt", GPT_SMALL);
	IrCluster c = cluster();
	IrPlan p;
	two_stage_plan(&g, &p, IR_SCHED_1F1B, 4);
	SimResult r;
	IrError e = {0};
	p.stages[1].first_layer = 3;
	cr_assert_neq(sim_plan(&g, &c, &p, &r, &e), 0);
	cr_assert(strstr(e.msg, "layer"), "%s", e.msg);
	p.stages[1].first_layer = 2;
	p.microbatch = 6;
	cr_assert_neq(sim_plan(&g, &c, &p, &r, &e), 0);
	cr_assert(strstr(e.msg, "batch"), "%s", e.msg);
	p.microbatch = B;
	p.stages[0].ways[0] = 7;
	cr_assert_neq(sim_plan(&g, &c, &p, &r, &e), 0);
	cr_assert(strstr(e.msg, "ways"), "%s", e.msg);
	p.stages[0].ways[0] = 1;
	p.stages[0].strategy[0] = "b=2";
	cr_assert_neq(sim_plan(&g, &c, &p, &r, &e), 0);
	cr_assert(strstr(e.msg, "strategy"), "%s", e.msg);
	ir_plan_free(&p);
	ir_cluster_free(&c);
	ir_graph_free(&g);
}

Test(trace, is_chrome_trace_json_with_compute_and_communication_tracks)
{
	IrGraph g = test_graph("gpt", GPT_SMALL);
	IrCluster c = cluster();
	IrPlan p;
	two_stage_plan(&g, &p, IR_SCHED_1F1B, 4);
	SimResult r;
	IrError e = {0};
	cr_assert_eq(sim_plan(&g, &c, &p, &r, &e), 0, "%s", e.msg);
	char *text = sim_trace_json(&p, &r);
	cr_assert_not_null(text);
	json_error_t je;
	json_t *root = json_loads(text, 0, &je);
	cr_assert_not_null(root, "line %d: %s", je.line, je.text);
	json_t *ev = json_object_get(root, "traceEvents");
	cr_assert(json_is_array(ev));
	int compute = 0, comm[2] = {0}, named = 0;
	size_t i;
	json_t *x;
	json_array_foreach(ev, i, x) {
		const char *ph = json_string_value(json_object_get(x, "ph"));
		cr_assert_not_null(ph);
		cr_assert(json_is_integer(json_object_get(x, "pid")));
		cr_assert(json_is_integer(json_object_get(x, "tid")));
		if (!strcmp(ph, "M")) {
			named++;
			continue;
		}
		cr_assert_str_eq(ph, "X");
		cr_assert(json_is_number(json_object_get(x, "ts")));
		cr_assert(json_is_number(json_object_get(x, "dur")));
		cr_assert(json_number_value(json_object_get(x, "dur")) >= 0);
		int pid = (int)json_integer_value(json_object_get(x, "pid"));
		int tid = (int)json_integer_value(json_object_get(x, "tid"));
		cr_assert(pid >= 0 && pid < 2 && (tid == 0 || tid == 1));
		const char *cat = json_string_value(json_object_get(x, "cat"));
		if (tid == 0 && (!strcmp(cat, "forward") || !strcmp(cat, "backward")))
			compute++;
		if (tid == 1)
			comm[pid]++;
	}
	cr_assert_eq(compute, r.tl.ntasks);
	cr_assert(comm[0] > 0 && comm[1] > 0, "communication events %d %d", comm[0], comm[1]);
	cr_assert_eq(named, 6);
	json_decref(root);
	free(text);
	sim_result_free(&r);
	ir_plan_free(&p);
	ir_cluster_free(&c);
	ir_graph_free(&g);
}
