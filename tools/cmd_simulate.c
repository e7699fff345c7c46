/*
 * cmd_simulate.c -- `meshplan simulate`: one training step of a plan on a
 * described cluster.  The plan comes from a file, or is written the way
 * people write them by hand (--manual dp=,tp=,pp=,mbs=...): pp stages of
 * equal layers, each on a dp x tp logical mesh whose sharding the intra-op
 * ILP chooses.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "passes/passes.h"
#include "runtime-sim/sim.h"
#include "tools/tools.h"

static const char *usage_text =
	"usage: meshplan simulate PLAN.xml [--trace FILE] [--json] [-o PLAN.xml]\n"
	"       meshplan simulate MODEL --cluster C [--nodes N] --batch GLOBAL\n"
	"                 --manual dp=D,tp=T,pp=P,mbs=B[,v=V][,recompute=none|selective|full]\n"
	"                          [,zero=0|1|2|3][,schedule=gpipe|1f1b|interleaved]\n"
	"                 [--set NAME=VALUE,...] [--time-limit S] [--trace FILE] [--json] [-o PLAN.xml]\n"
	"\n"
	"Simulates one training step: per stage and microbatch the forward and backward\n"
	"work (kernels and collectives of its sharding), transfers between stage meshes,\n"
	"the pipeline schedule, gradient synchronisation and the optimizer step; reports\n"
	"step time, throughput, TFLOPS per GPU (model and hardware FLOPs), MFU, HFU, the\n"
	"pipeline bubble and peak memory per device.\n"
	"\n"
	"--manual: D*T*P must be the cluster's GPU count.  Stage i of P sits on the i-th\n"
	"block of D*T GPUs as a D x T logical mesh.  mbs is the microbatch per data-parallel\n"
	"replica: the model is instantiated with batch = D*mbs (the samples one stage mesh\n"
	"works on at a time; the ILP normally splits them over the D axis), and a step has\n"
	"GLOBAL/(D*mbs) microbatches.  v > 1 interleaves v model chunks per pipeline rank\n"
	"(schedule interleaved, microbatches a multiple of P).  Layers are split evenly,\n"
	"the first and last (embedding, head) joining the first and last stage.\n"
	"-o writes the plan; --trace a Chrome trace (Perfetto) of the step.\n"
	"--time-limit bounds each sharding ILP (default 30 s); a solve stopped by it keeps\n"
	"the best sharding found.\n"
	"Exit: 0 the plan fits in memory, 1 it does not (the report says fits=false) or no\n"
	"sharding was found, 2 bad input.\n";

typedef struct {
	long dp, tp, pp, mbs, v, zero;
	IrRecompute recompute;
	IrSchedule schedule;
	bool schedule_set;
} Manual;

static int parse_manual(const char *text, Manual *m, char *why, size_t n)
{
	memset(m, 0, sizeof *m);
	m->v = 1;
	m->schedule = IR_SCHED_1F1B;
	char buf[512];
	if (strlen(text) >= sizeof buf) {
		snprintf(why, n, "--manual is too long");
		return -1;
	}
	strcpy(buf, text);
	char *save = NULL;
	for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq) {
			snprintf(why, n, "--manual: '%s' is not KEY=VALUE", kv);
			return -1;
		}
		*eq = 0;
		const char *k = kv, *v = eq + 1;
		long *num = !strcmp(k, "dp") ? &m->dp : !strcmp(k, "tp") ? &m->tp :
			    !strcmp(k, "pp") ? &m->pp : !strcmp(k, "mbs") ? &m->mbs :
			    !strcmp(k, "v") ? &m->v : !strcmp(k, "zero") ? &m->zero : NULL;
		if (num) {
			if (!tool_parse_int(v, num) || *num < (num == &m->zero ? 0 : 1) ||
			    *num > (num == &m->zero ? 3 : 1 << 20)) {
				snprintf(why, n, "--manual: %s=%s is not %s", k, v,
					 num == &m->zero ? "0, 1, 2 or 3" : "a positive integer");
				return -1;
			}
		} else if (!strcmp(k, "recompute")) {
			if (ir_recompute_parse(v, &m->recompute)) {
				snprintf(why, n, "--manual: recompute=%s is not none, selective or full", v);
				return -1;
			}
		} else if (!strcmp(k, "schedule")) {
			if (ir_schedule_parse(v, &m->schedule)) {
				snprintf(why, n, "--manual: schedule=%s is not gpipe, 1f1b or interleaved",
					 v);
				return -1;
			}
			m->schedule_set = true;
		} else {
			snprintf(why, n, "--manual: unknown key '%s' (dp, tp, pp, mbs, v, recompute, "
				 "zero, schedule)", k);
			return -1;
		}
	}
	if (!m->dp || !m->tp || !m->pp || !m->mbs) {
		snprintf(why, n, "--manual needs dp, tp, pp and mbs");
		return -1;
	}
	if (m->v > 1 && !m->schedule_set)
		m->schedule = IR_SCHED_INTERLEAVED;
	if (m->v > 1 && m->schedule != IR_SCHED_INTERLEAVED) {
		snprintf(why, n, "--manual: v=%ld needs the interleaved schedule", m->v);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Layers to stages                                                     */

static double layer_cost(const IrGraph *g, int l)
{
	double f = 1;
	for (int o = g->layers[l].first_op; o <= g->layers[l].last_op; o++)
		f += g->ops[o].flops;
	return f;
}

/*
 * S contiguous groups of layers.  When the layers between the first and
 * the last split evenly, that split, the first layer (embedding) joining
 * stage 0 and the last (head) the last stage, as Megatron-LM does;
 * otherwise the split minimising the largest stage's forward FLOPs.
 */
static int split_layers(const IrGraph *g, int S, int *first, int *last)
{
	int L = g->nlayers;
	if (S > L)
		return -1;
	if (S == 1) {
		first[0] = 0;
		last[0] = L - 1;
		return 0;
	}
	int mid = L - 2;
	if (mid >= S && mid % S == 0) {
		int per = mid / S;
		for (int i = 0; i < S; i++) {
			first[i] = 1 + i * per;
			last[i] = first[i] + per - 1;
		}
		first[0] = 0;
		last[S - 1] = L - 1;
		return 0;
	}
	/* min-max partition: best[k][j] = layers [0, j) in k groups */
	double *pre = calloc((size_t)L + 1, sizeof(double));
	double *best = malloc(sizeof(double) * (size_t)(S + 1) * (size_t)(L + 1));
	int *cut = malloc(sizeof(int) * (size_t)(S + 1) * (size_t)(L + 1));
	if (!pre || !best || !cut)
		abort();
	for (int l = 0; l < L; l++)
		pre[l + 1] = pre[l] + layer_cost(g, l);
#define AT(k, j) ((size_t)(k) * (size_t)(L + 1) + (size_t)(j))
	for (size_t i = 0; i < (size_t)(S + 1) * (size_t)(L + 1); i++)
		best[i] = 1e300;
	best[AT(0, 0)] = 0;
	for (int k = 1; k <= S; k++)
		for (int j = k; j <= L; j++)
			for (int i = k - 1; i < j; i++) {
				double c = pre[j] - pre[i];
				double v = best[AT(k - 1, i)] > c ? best[AT(k - 1, i)] : c;
				if (v < best[AT(k, j)]) {
					best[AT(k, j)] = v;
					cut[AT(k, j)] = i;
				}
			}
	int j = L;
	for (int k = S; k >= 1; k--) {
		int i = cut[AT(k, j)];
		first[k - 1] = i;
		last[k - 1] = j - 1;
		j = i;
	}
#undef AT
	free(pre);
	free(best);
	free(cut);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Stages of identical structure share one ILP solution                 */

static int stage_ops(const IrGraph *g, int fl, int ll, int *ops)
{
	int n = 0;
	for (int o = 0; o < g->nops; o++)
		if (g->ops[o].layer >= fl && g->ops[o].layer <= ll)
			ops[n++] = o;
	return n;
}

static int rel_layer(const IrGraph *g, int t, int fl, int ll)
{
	int p = g->tensors[t].producer;
	if (p < 0)
		return -2;
	int l = g->ops[p].layer;
	return l >= fl && l <= ll ? l - fl : -1;
}

static bool same_op(const IrGraph *g, const IrOp *a, const IrOp *b, int fa, int la, int fb,
		    int lb)
{
	if (a->kind != b->kind || a->phase != b->phase || a->nin != b->nin || a->nout != b->nout ||
	    a->flops != b->flops || a->bytes != b->bytes || a->local != b->local ||
	    a->layer - fa != b->layer - fb || (!a->fn) != (!b->fn) ||
	    (a->fn && strcmp(a->fn, b->fn)) || memcmp(a->lab, b->lab, sizeof a->lab))
		return false;
	for (int k = 0; k < a->nin; k++) {
		const IrTensor *x = &g->tensors[a->in[k]], *y = &g->tensors[b->in[k]];
		if (x->role != y->role || x->ndim != y->ndim || x->dtype != y->dtype ||
		    memcmp(x->dim, y->dim, sizeof x->dim) ||
		    rel_layer(g, a->in[k], fa, la) != rel_layer(g, b->in[k], fb, lb))
			return false;
		/* a weight another stage updates (tied) is not one this stage does */
		if (x->role == IR_T_WEIGHT) {
			int lx = x->layer, ly = y->layer;
			if ((lx >= fa && lx <= la) != (ly >= fb && ly <= lb))
				return false;
		}
	}
	return true;
}

/* Copies solved stage A onto stage B (same structure, same mesh shape). */
static void copy_stage(IrPlan *plan, const IrStagePlan *A, const int *bops, int nb,
		       IrStagePlan *B)
{
	IrStagePlan keep = *B;
	ir_stage_alloc(plan, B, nb, A->ncomm);
	B->first_layer = keep.first_layer;
	B->last_layer = keep.last_layer;
	B->mesh = keep.mesh;
	B->n0 = A->n0;
	B->n1 = A->n1;
	for (int i = 0; i < nb; i++) {
		B->op[i] = bops[i];
		B->strategy[i] = A->strategy[i];
		B->ways[i] = A->ways[i];
	}
	for (int j = 0; j < A->ncomm; j++) {
		B->comm[j] = A->comm[j];
		int lo = 0, hi = A->nops - 1;
		while (lo < hi) {
			int mid = (lo + hi) / 2;
			if (A->op[mid] < A->comm[j].op)
				lo = mid + 1;
			else
				hi = mid;
		}
		B->comm[j].op = bops[lo];
	}
	B->weight_bytes = A->weight_bytes;
	B->grad_bytes = A->grad_bytes;
	B->opt_bytes = A->opt_bytes;
	B->act_bytes = A->act_bytes;
}

/* ------------------------------------------------------------------ */
/* Building a manual plan                                               */

typedef struct {
	const IrGraph *g;
	const IrCluster *c;
	const Manual *m;
	int S;
	int *first, *last;
	double time_limit;
	int ilp_solves;
	double ilp_s;
} Builder;

static IrMesh rank_mesh(const IrCluster *c, int devices, int rank)
{
	int M = c->gpus_per_node, off = rank * devices;
	if (devices <= M)
		return (IrMesh){off / M, 1, off % M, devices};
	return (IrMesh){off / M, devices / M, 0, M};
}

/* Fills plan->stages; budget[i] > 0 bounds stage i's weights + gradients
 * + optimizer state.  -1 with e (and *status) when the pass fails. */
static int shard_stages(Builder *b, IrPlan *plan, const double *budget, PassStatus *status,
			IrError *e)
{
	const IrGraph *g = b->g;
	int D = (int)b->m->dp, T = (int)b->m->tp, P = (int)b->m->pp;
	int *ops = malloc(sizeof(int) * (size_t)g->nops);
	int *solved = malloc(sizeof(int) * (size_t)b->S); /* stages solved by the ILP */
	int nsolved = 0;
	if (!ops || !solved)
		abort();
	int rc = 0;
	for (int i = 0; i < b->S && !rc; i++) {
		IrStagePlan *st = &plan->stages[i];
		memset(st, 0, sizeof *st);
		st->first_layer = b->first[i];
		st->last_layer = b->last[i];
		st->mesh = rank_mesh(b->c, D * T, i % P);
		int n = stage_ops(g, st->first_layer, st->last_layer, ops);
		bool copied = false;
		for (int k = 0; k < nsolved && !copied; k++) {
			const IrStagePlan *A = &plan->stages[solved[k]];
			if (A->nops != n || budget[solved[k]] != budget[i])
				continue;
			bool same = true;
			for (int j = 0; j < n && same; j++)
				same = same_op(g, &g->ops[A->op[j]], &g->ops[ops[j]], A->first_layer,
					       A->last_layer, st->first_layer, st->last_layer);
			if (same) {
				copy_stage(plan, A, ops, n, st);
				copied = true;
			}
		}
		if (copied)
			continue;
		IrLogicalMesh lm;
		if (ir_logical_mesh(b->c, &st->mesh, D, T, &lm, e)) {
			rc = -1;
			*status = PASS_ERROR;
			break;
		}
		PassIntraOptions o = {.method = PASS_ILP, .nmicro = plan->nmicro,
				      .memory_budget = budget[i], .time_limit_s = b->time_limit,
				      .zero = plan->zero};
		PassIntraResult r;
		rc = pass_intra_op(g, b->c, &lm, st->first_layer, st->last_layer, &o, plan, st, &r,
				   e);
		b->ilp_solves++;
		b->ilp_s += r.solve_time_s;
		*status = r.status;
		if (!rc)
			solved[nsolved++] = i;
	}
	free(ops);
	free(solved);
	return rc;
}

/* The manual plan, sharded and simulated; a second round with memory
 * budgets when the first, unbounded, sharding does not fit. */
static int build_manual(Builder *b, IrPlan *plan, SimResult *res, PassStatus *status,
			IrError *e)
{
	double *budget = calloc((size_t)b->S, sizeof(double));
	if (!budget)
		abort();
	int rc = shard_stages(b, plan, budget, status, e);
	if (!rc)
		rc = sim_plan(b->g, b->c, plan, res, e);
	if (!rc && !res->fits) {
		/* bound model state by what activations leave of each device */
		double act = 0;
		for (int k = 0; k < res->nranks; k++)
			if (res->tl.rank_act[k] > act)
				act = res->tl.rank_act[k];
		double left = b->c->gpu.mem_bytes - act;
		bool any = left > 0;
		for (int i = 0; i < b->S; i++)
			budget[i] = left / plan->chunks;
		IrPlan p2;
		ir_plan_init(&p2);
		p2.model = ir_strdup(&p2.arena, plan->model);
		p2.cluster = ir_strdup(&p2.arena, plan->cluster);
		p2.params = plan->params;
		p2.nodes = plan->nodes;
		p2.global_batch = plan->global_batch;
		p2.microbatch = plan->microbatch;
		p2.nmicro = plan->nmicro;
		p2.schedule = plan->schedule;
		p2.chunks = plan->chunks;
		p2.recompute = plan->recompute;
		p2.zero = plan->zero;
		p2.nstages = plan->nstages;
		p2.stages = ir_alloc(&p2.arena, sizeof(IrStagePlan) * (size_t)p2.nstages);
		IrError e2;
		PassStatus st2;
		SimResult r2;
		if (any && !shard_stages(b, &p2, budget, &st2, &e2) &&
		    !sim_plan(b->g, b->c, &p2, &r2, &e2)) {
			if (r2.fits || r2.peak_memory_bytes < res->peak_memory_bytes) {
				sim_result_free(res);
				*res = r2;
				ir_plan_free(plan);
				*plan = p2;
				p2.arena.head = NULL;
			} else {
				sim_result_free(&r2);
			}
		}
		ir_plan_free(&p2);
	}
	free(budget);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Output                                                               */

static void print_table(const IrGraph *g, const IrCluster *c, const IrPlan *p,
			const SimResult *r, const Manual *m)
{
	const double GiB = 1073741824.0;
	printf("%s on %s, %d GPUs", p->model, c->name, r->ngpus);
	if (m)
		printf(": dp %ld x tp %ld x pp %ld, mbs %ld", m->dp, m->tp, m->pp, m->mbs);
	printf("\n  batch %lld = %d microbatches of %lld, %s", (long long)p->global_batch,
	       p->nmicro, (long long)p->microbatch, ir_schedule_name(p->schedule));
	if (p->chunks > 1)
		printf(" (v=%d)", p->chunks);
	printf(", recompute %s, zero %d\n", ir_recompute_name(p->recompute), p->zero);
	printf("  step time         %.4f s (pipeline %.4f s, bubble %.1f%%)\n", r->step_time_s,
	       r->tl.span_s, 100 * r->bubble_fraction);
	tool_print_step_summary(c, r);
	printf("\n  %-5s %-22s %-4s %-13s %-7s %9s %9s %9s %9s %8s %8s\n", "stage", "layers",
	       "rank", "mesh", "logical", "fwd ms", "bwd ms", "step ms", "xfer ms", "state GiB",
	       "act GiB");
	for (int i = 0; i < r->nstages; i++) {
		const IrStagePlan *s = &p->stages[i];
		const SimStageCost *sc = &r->stage[i];
		char layers[64], mesh[32], lg[16];
		snprintf(layers, sizeof layers, "%d-%d %s..%s", s->first_layer, s->last_layer,
			 g->layers[s->first_layer].name, g->layers[s->last_layer].name);
		snprintf(mesh, sizeof mesh, "%dx%d@n%dg%d", s->mesh.nnodes, s->mesh.ngpus,
			 s->mesh.node0, s->mesh.gpu0);
		snprintf(lg, sizeof lg, "%dx%d", s->n0, s->n1);
		printf("  %-5d %-22s %-4d %-13s %-7s %9.3f %9.3f %9.3f %9.3f %8.2f %8.3f\n", i, layers,
		       i % r->nranks, mesh, lg, sc->fwd_s * 1e3, sc->bwd_s * 1e3, sc->step_s * 1e3,
		       r->xfer_s[i] * 1e3,
		       (sc->mem.weight_bytes + sc->mem.grad_bytes + sc->mem.opt_bytes) / GiB,
		       sc->mem.act_bytes / GiB);
	}
}

/* ------------------------------------------------------------------ */

typedef struct {
	const char *target, *cluster, *manual, *trace, *out;
	long nodes, batch;
	double time_limit;
	bool json;
	IrParamSet ps;
} Args;

static int finish(const Args *a, const IrGraph *g, const IrCluster *c, IrPlan *p,
		  SimResult *r, const Manual *m)
{
	IrError e;
	if (a->out && ir_plan_write(p, a->out, &e))
		return tool_input_error(&e);
	if (a->trace && sim_trace_write(p, r, a->trace, &e))
		return tool_input_error(&e);
	if (a->json)
		tool_print_json(tool_sim_json(g, c, p, r));
	else
		print_table(g, c, p, r, m);
	return r->fits ? EXIT_OK : EXIT_INFEASIBLE;
}

static int simulate_file(const Args *a)
{
	IrError e;
	IrPlan p;
	IrCluster c;
	IrGraph g;
	SimResult r;
	if (tool_plan_simulate(a->target, (int)a->nodes, &p, &c, &g, &r, &e))
		return tool_input_error(&e);
	int code = finish(a, &g, &c, &p, &r, NULL);
	sim_result_free(&r);
	ir_graph_free(&g);
	ir_cluster_free(&c);
	ir_plan_free(&p);
	return code;
}

static int simulate_manual(const Args *a)
{
	IrError e;
	Manual m;
	char why[256];
	if (parse_manual(a->manual, &m, why, sizeof why))
		return tool_error("simulate", EXIT_BADINPUT, "%s", why);
	if (!a->cluster || !a->batch)
		return tool_error("simulate", EXIT_BADINPUT, "--manual needs --cluster and --batch");
	IrCluster c;
	if (ir_cluster_load(a->cluster, (int)a->nodes, &c, &e))
		return tool_input_error(&e);
	long gpus = ir_cluster_gpus(&c), D = m.dp, T = m.tp, P = m.pp;
	long block = D * T, M = c.gpus_per_node;
	const char *bad = NULL;
	char msg[256];
	if (D * T * P != gpus) {
		snprintf(msg, sizeof msg, "dp*tp*pp = %ld but %s has %ld GPUs (--nodes sets the count)",
			 D * T * P, c.name, gpus);
		bad = msg;
	} else if (block <= M ? M % block : block % M) {
		snprintf(msg, sizeof msg, "a stage's %ld GPUs (dp*tp) must divide a node of %ld or be "
			 "whole nodes", block, M);
		bad = msg;
	} else if (a->batch % (D * m.mbs)) {
		snprintf(msg, sizeof msg, "--batch %ld is not a multiple of dp*mbs = %ld", a->batch,
			 D * m.mbs);
		bad = msg;
	}
	long nmicro = bad ? 1 : a->batch / (D * m.mbs);
	if (!bad && m.v > 1 && P > 1 && nmicro % P) {
		snprintf(msg, sizeof msg, "the interleaved schedule needs the %ld microbatches to be "
			 "a multiple of pp = %ld", nmicro, P);
		bad = msg;
	}
	if (bad) {
		ir_cluster_free(&c);
		return tool_error("simulate", EXIT_BADINPUT, "%s", bad);
	}
	IrPlan plan;
	ir_plan_init(&plan);
	plan.params = a->ps;
	ir_params_set(&plan.params, "batch", D * m.mbs);
	IrGraph g;
	if (tool_load_training_graph(a->target, &plan.params, &g, &e)) {
		ir_cluster_free(&c);
		ir_plan_free(&plan);
		return tool_input_error(&e);
	}
	int S = (int)(P * m.v);
	Builder b = {&g, &c, &m, S, malloc(sizeof(int) * (size_t)S),
		     malloc(sizeof(int) * (size_t)S), a->time_limit, 0, 0};
	int code = EXIT_OK;
	if (split_layers(&g, S, b.first, b.last)) {
		code = tool_error("simulate", EXIT_BADINPUT,
				  "pp*v = %d stages but the model has %d layers", S, g.nlayers);
	} else {
		plan.model = ir_strdup(&plan.arena, a->target);
		plan.cluster = ir_strdup(&plan.arena, a->cluster);
		plan.nodes = c.nodes;
		plan.global_batch = a->batch;
		plan.microbatch = D * m.mbs;
		plan.nmicro = (int)nmicro;
		plan.schedule = m.schedule;
		plan.chunks = (int)m.v;
		plan.recompute = m.recompute;
		plan.zero = (int)m.zero;
		plan.nstages = S;
		plan.stages = ir_alloc(&plan.arena, sizeof(IrStagePlan) * (size_t)S);
		SimResult r;
		PassStatus st = PASS_OPTIMAL;
		if (build_manual(&b, &plan, &r, &st, &e)) {
			code = st == PASS_ERROR ? tool_input_error(&e)
						: tool_error("simulate", EXIT_INFEASIBLE, "%s: %s",
							     pass_status_name(st), e.msg);
		} else {
			code = finish(a, &g, &c, &plan, &r, &m);
			sim_result_free(&r);
		}
	}
	if (getenv("MESHPLAN_SIM_VERBOSE"))
		fprintf(stderr, "meshplan simulate: %d ILP solves, %.3f s\n", b.ilp_solves, b.ilp_s);
	free(b.first);
	free(b.last);
	ir_graph_free(&g);
	ir_cluster_free(&c);
	ir_plan_free(&plan);
	return code;
}

int cmd_simulate(int argc, char **argv)
{
	Args a;
	memset(&a, 0, sizeof a);
	a.time_limit = 30; /* per ILP solve: a binding memory budget can make GLPK search long */
	IrError e;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		bool more = i + 1 < argc;
		if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
			fputs(usage_text, stdout);
			return EXIT_OK;
		} else if (!strcmp(s, "--json")) {
			a.json = true;
		} else if (!strcmp(s, "--cluster") && more) {
			a.cluster = argv[++i];
		} else if (!strcmp(s, "--manual") && more) {
			a.manual = argv[++i];
		} else if (!strcmp(s, "--trace") && more) {
			a.trace = argv[++i];
		} else if (!strcmp(s, "-o") && more) {
			a.out = argv[++i];
		} else if (!strcmp(s, "--set") && more) {
			if (ir_params_parse(&a.ps, argv[++i], &e))
				return tool_input_error(&e);
		} else if (!strcmp(s, "--nodes") && more) {
			if (!tool_parse_int(argv[++i], &a.nodes) || a.nodes <= 0 || a.nodes > 1000000)
				return tool_error("simulate", EXIT_BADINPUT,
						  "--nodes needs a positive integer, got '%s'", argv[i]);
		} else if (!strcmp(s, "--batch") && more) {
			if (!tool_parse_int(argv[++i], &a.batch) || a.batch <= 0)
				return tool_error("simulate", EXIT_BADINPUT,
						  "--batch needs a positive integer, got '%s'", argv[i]);
		} else if (!strcmp(s, "--time-limit") && more) {
			if (!tool_parse_double(argv[++i], &a.time_limit) || a.time_limit <= 0)
				return tool_error("simulate", EXIT_BADINPUT,
						  "--time-limit needs a positive number of seconds");
		} else if (s[0] == '-') {
			return tool_error("simulate", EXIT_BADINPUT, "unknown or incomplete option '%s'",
					  s);
		} else if (!a.target) {
			a.target = s;
		} else {
			return tool_error("simulate", EXIT_BADINPUT, "unexpected argument '%s'", s);
		}
	}
	if (!a.target)
		return tool_error("simulate", EXIT_BADINPUT, "name a plan file or a model\n%s",
				  usage_text);
	if (a.manual)
		return simulate_manual(&a);
	if (a.cluster || a.batch || a.ps.n)
		return tool_error("simulate", EXIT_BADINPUT,
				  "--cluster, --batch and --set go with --manual (a plan file has them)");
	return simulate_file(&a);
}
