/*
 * test_intra.c -- the intra-operator pass (passes/intra_op.c): the ILP's
 * optimum against brute force, Megatron-LM and data parallelism as the
 * optima they should be, memory budgets, time limits, the baselines, and
 * `meshplan shard` run as a program (MESHPLAN_BIN).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "passes/passes.h"
#include "tests/helpers.h"

#define DATA MESHPLAN_DATA_DIR "/tests/data"

#ifndef MESHPLAN_BIN
#define MESHPLAN_BIN "meshplan"
#endif

/* ------------------------------------------------------------------ */
/* Helpers                                                              */



/* n0 x n1 over the first n0*n1 GPUs: within a node, or whole nodes
 * (as `meshplan shard` builds it). */
static IrLogicalMesh mesh(const IrCluster *c, int n0, int n1)
{
	int d = n0 * n1, M = c->gpus_per_node;
	IrMesh m = d <= M ? (IrMesh){0, 1, 0, d} : (IrMesh){0, d / M, 0, M};
	IrLogicalMesh v;
	IrError e = {0};
	cr_assert_eq(ir_logical_mesh(c, &m, n0, n1, &v, &e), 0, "%dx%d: %s", n0, n1, e.msg);
	return v;
}

/* One run of the pass; the stage plan lives in *plan (caller frees). */
typedef struct {
	IrPlan plan;
	IrStagePlan st;
	PassIntraResult r;
	IrError e;
	int rc;
} Run;

static void shard(Run *u, const IrGraph *g, const IrCluster *c, const IrLogicalMesh *m, int first,
		  int last, PassIntraOptions o)
{
	memset(u, 0, sizeof *u);
	ir_plan_init(&u->plan);
	u->rc = pass_intra_op(g, c, m, first, last, &o, &u->plan, &u->st, &u->r, &u->e);
	cr_assert(u->rc == 0 || u->rc == -1, "rc %d", u->rc);
	cr_assert_eq(u->rc == 0,
		     u->r.status == PASS_OPTIMAL || u->r.status == PASS_FEASIBLE,
		     "rc %d with status %s", u->rc, pass_status_name(u->r.status));
}

static double state_bytes(const IrStagePlan *st)
{
	return st->weight_bytes + st->grad_bytes + st->opt_bytes;
}

static bool rel_eq(double a, double b, double rel)
{
	return fabs(a - b) <= rel * fmax(fabs(a), fabs(b));
}

/* ------------------------------------------------------------------ */
/* Random small models                                                  */

typedef struct {
	unsigned long long s;
} Rng;

static unsigned rnd(Rng *r, unsigned n)
{
	r->s ^= r->s << 13;
	r->s ^= r->s >> 7;
	r->s ^= r->s << 17;
	return (unsigned)(r->s % n);
}

#define BATCH 1024 /* large enough that sharding pays: optima are not all-replicated */
#define WIDE 1024
#define NARROW 256

/*
 * A random forward graph of `nfwd` ops and a loss, as model XML:
 * activations [batch, width] with batch BATCH and widths WIDE or NARROW, one layer.
 * Each op reads the previous op's output (so every op reaches the loss),
 * and sometimes an earlier activation too: a residual add, a gating
 * product, or attention-like einsums across the batch.  At most `heavy`
 * ops are einsums or norms (they bring weights, backward einsums and most
 * of the strategies); the first op is always a matmul.
 */
static void random_model(unsigned seed, int nfwd, int heavy, const char *path)
{
	uint64_t z = 0x9E3779B97F4A7C15ull * (seed + 1); /* splitmix64 of the seed */
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	Rng r = {(z ^ (z >> 31)) | 1};
	char ws[4096] = "", os[8192] = "";
	size_t wn = 0, on = 0;
	int width[16] = {WIDE};
	int nact = 1, nw = 0;
#define W(...) (wn += (size_t)snprintf(ws + wn, sizeof ws - wn, __VA_ARGS__))
#define O(...) (on += (size_t)snprintf(os + on, sizeof os - on, __VA_ARGS__))
	for (int i = 0; i < nfwd; i++) {
		int cur = nact - 1, w = width[cur], other = -1;
		/* light: 2 unary, 3 add or mul of two activations, 4 softmax */
		unsigned kind = i == 0 ? 0 : heavy > 0 ? rnd(&r, 9) : 2 + rnd(&r, 3);
		if (kind == 3 || kind == 7) { /* needs an earlier activation of width w */
			for (int j = cur - 1; j >= 0 && other < 0; j--)
				if (width[j] == w)
					other = j;
			if (other < 0)
				kind = kind == 3 ? 2 : 0;
		}
		if (kind == 8) { /* "probabilities" [b,c] times "values" [c,h] */
			if (w == BATCH && cur > 0)
				other = (int)rnd(&r, (unsigned)cur);
			else
				kind = 0;
		}
		heavy -= kind < 2 || kind > 4;
		int nwid = w;
		switch (kind) {
		case 0:
		case 1:
			nwid = rnd(&r, 2) ? WIDE : NARROW;
			W("    <weight name=\"w%d\" shape=\"%d,%d\" dtype=\"bf16\"/>\n", nw, w, nwid);
			O("    <op kind=\"einsum\" spec=\"bh,hf->bf\" in=\"t%d,w%d\" out=\"t%d\"/>\n",
			  cur, nw++, nact);
			break;
		case 2: {
			static const char *fn[] = {"gelu", "relu", "scale", "dropout", "tanh"};
			O("    <op kind=\"%s\" in=\"t%d\" out=\"t%d\"/>\n", fn[rnd(&r, 5)], cur, nact);
			break;
		}
		case 3:
			O("    <op kind=\"%s\" in=\"t%d,t%d\" out=\"t%d\"/>\n", rnd(&r, 2) ? "add" : "mul",
			  cur, other, nact);
			break;
		case 4:
			O("    <op kind=\"softmax\" in=\"t%d\" out=\"t%d\"/>\n", cur, nact);
			break;
		case 5:
			W("    <weight name=\"w%d\" shape=\"%d\" dtype=\"bf16\"/>\n", nw, w);
			W("    <weight name=\"w%d\" shape=\"%d\" dtype=\"bf16\"/>\n", nw + 1, w);
			O("    <op kind=\"layernorm\" in=\"t%d,w%d,w%d\" out=\"t%d\"/>\n", cur, nw,
			  nw + 1, nact);
			nw += 2;
			break;
		case 6:
			W("    <weight name=\"w%d\" shape=\"%d\" dtype=\"bf16\"/>\n", nw, w);
			O("    <op kind=\"rmsnorm\" in=\"t%d,w%d\" out=\"t%d\"/>\n", cur, nw++, nact);
			break;
		case 7:
			nwid = BATCH;
			O("    <op kind=\"einsum\" spec=\"bh,ch->bc\" in=\"t%d,t%d\" out=\"t%d\"/>\n", cur,
			  other, nact);
			break;
		case 8:
			nwid = width[other];
			O("    <op kind=\"einsum\" spec=\"bc,ch->bh\" in=\"t%d,t%d\" out=\"t%d\"/>\n", cur,
			  other, nact);
			break;
		}
		width[nact++] = nwid;
	}
	O("    <op kind=\"loss\" in=\"t%d,y\" out=\"l\"/>\n", nact - 1);
#undef W
#undef O
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fprintf(f,
		"<?xml version=\"1.0\"?>\n"
		"<model name=\"random%u\" xmlns=\"urn:meshplan:model\">\n"
		"  <param name=\"batch\" value=\"%d\"/>\n"
		"  <input name=\"t0\" shape=\"batch,%d\" dtype=\"bf16\"/>\n"
		"  <input name=\"y\" shape=\"batch\" dtype=\"int32\"/>\n"
		"  <layer name=\"l0\">\n%s%s  </layer>\n</model>\n",
		seed, BATCH, WIDE, ws, os);
	fclose(f);
}

typedef struct {
	int n0, n1;    /* mesh of the tiny cluster (2 nodes of 4 GPUs) */
	int nfwd;      /* forward ops besides the loss */
	int heavy;     /* of which at most this many einsums or norms */
	unsigned seed;
} RandomCase;

/* Graphs are smaller where a mesh has more strategies, so that brute force
 * stays near a million combinations or below (well under a second each
 * under ASan); 2x4 crosses nodes on axis 0.  Forward op kinds in the
 * comments: E einsum, L layernorm, R rmsnorm, S softmax, u unary,
 * 2 add/mul of two activations. */
static const RandomCase random_cases[] = {
	{1, 2, 8, 2, 0},  /* ERS2uuS2 */
	{1, 2, 8, 2, 7},  /* ELS2uuuu */
	{1, 2, 8, 2, 10}, /* ER2SSu22 */
	{1, 2, 8, 2, 13}, /* EuRSuuu2 */
	{1, 2, 6, 1, 2},  /* Euu222 */
	{1, 2, 4, 2, 6},  /* EE2u: two matmuls */
	{2, 1, 8, 2, 18}, /* ERuSSSSu */
	{2, 1, 8, 2, 21}, /* E2RS2u2u */
	{2, 1, 8, 2, 3},  /* ERu2uS2u */
	{2, 1, 7, 1, 5},
	{2, 1, 6, 3, 17}, /* EL2Ru2 */
	{1, 4, 8, 2, 5},  /* EuSL2S2S */
	{1, 4, 8, 2, 10}, /* ER2SSu22 */
	{1, 4, 8, 2, 17}, /* ELuuuSuu */
	{1, 4, 6, 1, 0},
	{1, 4, 5, 3, 0},  /* ERL2u */
	{2, 2, 3, 1, 0},
	{2, 2, 6, 1, 2},
	{2, 2, 8, 1, 4},
	{2, 2, 5, 1, 1},
	{2, 2, 4, 1, 13},
	{2, 4, 3, 1, 1},
	{2, 4, 6, 1, 3},
	{2, 4, 4, 1, 5},
};
enum { NRANDOM = sizeof random_cases / sizeof random_cases[0] };

/* Compares ILP and brute force on every random case; returns how many
 * cases were compared.  budget_frac > 0: a memory budget of that fraction
 * of the unconstrained optimum's state (weights, gradients, optimizer). */
static int compare_random(const char *dir, double budget_frac, bool glpk_only, int *ninfeasible,
			  int *nbinding)
{
	IrCluster c = test_cluster(DATA "/tiny-cluster.xml", 0);
	int compared = 0;
	*ninfeasible = *nbinding = 0;
	for (int i = 0; i < NRANDOM; i++) {
		const RandomCase *k = &random_cases[i];
		char path[512];
		snprintf(path, sizeof path, "%s/random%d.xml", dir, i);
		random_model(k->seed, k->nfwd, k->heavy, path);
		IrGraph g = test_graph(path, NULL);
		IrLogicalMesh m = mesh(&c, k->n0, k->n1);
		PassIntraOptions o = {.method = PASS_ILP, .nmicro = 1 + i % 3, .glpk_only = glpk_only};
		double unconstrained = 0;
		if (budget_frac > 0) {
			Run free_run;
			shard(&free_run, &g, &c, &m, 0, 0, o);
			cr_assert_eq(free_run.rc, 0, "case %d: %s", i, free_run.r.message);
			o.memory_budget = budget_frac * state_bytes(&free_run.st);
			unconstrained = free_run.r.objective_s;
			ir_plan_free(&free_run.plan);
		}
		Run ilp, ex;
		shard(&ilp, &g, &c, &m, 0, 0, o);
		o.exhaustive = true;
		shard(&ex, &g, &c, &m, 0, 0, o);
		cr_assert_neq(ex.r.status, PASS_ERROR, "case %d (%dx%d, %d ops): %s", i, k->n0,
			      k->n1, k->nfwd, ex.r.message);
		cr_assert_eq(ilp.r.status, ex.r.status, "case %d: ILP %s (%s), exhaustive %s (%s)", i,
			     pass_status_name(ilp.r.status), ilp.r.message,
			     pass_status_name(ex.r.status), ex.r.message);
		if (ex.rc == 0) {
			cr_expect(rel_eq(ilp.r.objective_s, ex.r.objective_s, 1e-9),
				  "case %d (%dx%d, %d forward ops): ILP %.12g s, exhaustive %.12g s",
				  i, k->n0, k->n1, k->nfwd, ilp.r.objective_s, ex.r.objective_s);
			if (o.memory_budget > 0) {
				cr_expect(state_bytes(&ilp.st) <= o.memory_budget * (1 + 1e-9),
					  "case %d: ILP plan needs %g bytes, budget %g", i,
					  state_bytes(&ilp.st), o.memory_budget);
				*nbinding += ex.r.objective_s > unconstrained * (1 + 1e-9);
			}
		} else {
			(*ninfeasible)++;
		}
		compared++;
		ir_plan_free(&ilp.plan);
		ir_plan_free(&ex.plan);
		ir_graph_free(&g);
		unlink(path);
	}
	ir_cluster_free(&c);
	return compared;
}

/* ------------------------------------------------------------------ */
/* 1. The ILP finds the true optimum                                    */

/* A temporary folder for the random models, removed even when an
 * assertion ends the test (Criterion runs .fini then). */
static char tmpdir[64];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/meshplan-intra-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	char path[128];
	for (int i = 0; i < NRANDOM; i++) {
		snprintf(path, sizeof path, "%s/random%d.xml", tmpdir, i);
		unlink(path);
	}
	rmdir(tmpdir);
}

Test(ilp, optimum_equals_exhaustive_search_on_24_random_graphs, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
	/* by variable elimination where it is exact, else GLPK; then GLPK alone */
	for (int glpk = 0; glpk < 2; glpk++) {
		int infeasible, binding;
		int n = compare_random(tmpdir, 0, glpk, &infeasible, &binding);
		cr_expect_geq(n, 20);
		cr_expect_eq(infeasible, 0);
	}
}

Test(ilp, optimum_equals_exhaustive_search_under_a_memory_budget, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
	/* 80% of what the unconstrained optimum keeps: some cases get dearer
	 * plans, some none at all (both must agree on which) */
	for (int glpk = 0; glpk < 2; glpk++) {
		int infeasible, binding;
		int n = compare_random(tmpdir, 0.8, glpk, &infeasible, &binding);
		cr_log_info("%d cases: budget binds in %d, infeasible in %d", n, binding,
			    infeasible);
		cr_expect_geq(n, 20);
		cr_expect_geq(binding, 10, "the budget raised the optimum in %d cases only",
			      binding);
		cr_expect_geq(infeasible, 1);
	}
}

Test(ilp, exhaustive_search_refuses_more_than_ten_million_combinations)
{
	IrCluster c = test_cluster("dgx-a100", 0);
	IrGraph g = test_graph("gpt", "layers=1,hidden=256,heads=4,seq=64,vocab=512");
	IrLogicalMesh m = mesh(&c, 2, 4);
	Run u;
	shard(&u, &g, &c, &m, 1, 1, (PassIntraOptions){.method = PASS_ILP, .exhaustive = true});
	cr_expect_eq(u.rc, -1);
	cr_expect_eq(u.r.status, PASS_ERROR);
	cr_expect(strstr(u.r.message, "too many") != NULL, "%s", u.r.message);
	ir_plan_free(&u.plan);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

/* ------------------------------------------------------------------ */
/* 2. The optimum of a GPT layer is what practice found                 */

/* Tensors that hold a weight's gradient: the inputs of accumulation. */
static bool *wgrad_tensors(const IrGraph *g)
{
	bool *w = calloc((size_t)g->ntensors, sizeof(bool));
	for (int i = 0; i < g->nops; i++)
		if (g->ops[i].kind == IR_ACCUM) {
			w[g->ops[i].in[0]] = true;
			w[g->ops[i].out[0]] = true;
		}
	return w;
}

static const char *strategy_of(const IrGraph *g, const IrStagePlan *st, const char *op)
{
	for (int i = 0; i < st->nops; i++)
		if (!strcmp(g->ops[st->op[i]].name, op))
			return st->strategy[i];
	cr_assert_fail("op %s not in the stage", op);
	return NULL;
}

Test(gpt_layer, one_by_eight_is_megatron_tensor_parallelism)
{
	const int64_t b = 1, s = 1024, h = 1024;
	IrCluster c = test_cluster("dgx-a100", 0);
	IrGraph g = test_graph("gpt", "layers=1,batch=1");
	IrLogicalMesh m = mesh(&c, 1, 8);
	Run u;
	shard(&u, &g, &c, &m, 1, 1, (PassIntraOptions){.method = PASS_ILP, .nmicro = 1});
	cr_assert_eq(u.rc, 0, "%s", u.r.message);
	cr_expect_eq(u.r.status, PASS_OPTIMAL);
	bool *wg = wgrad_tensors(&g);
	int fwd = 0, bwd = 0;
	double act = (double)(b * s * h * 2);
	for (int i = 0; i < u.st.ncomm; i++) {
		const IrComm *k = &u.st.comm[i];
		const IrOp *op = &g.ops[k->op];
		bool on_wgrad = op->kind == IR_ACCUM || op->kind == IR_ADAM || wg[op->out[0]];
		cr_expect(!on_wgrad, "collective %s on weight gradient op %s",
			  sim_coll_name((SimColl)k->kind), op->name);
		bool ar = k->kind == SIM_ALL_REDUCE && !k->per_step && k->bytes == act;
		fwd += ar && op->phase == IR_FWD;
		bwd += ar && op->phase == IR_BWD;
	}
	cr_expect_eq(fwd, 2, "forward all-reduces of b*s*h*2 bytes: %d", fwd);
	cr_expect_eq(bwd, 2, "backward all-reduces of b*s*h*2 bytes: %d", bwd);
	cr_expect_eq(u.st.ncomm, 4, "collectives: %d", u.st.ncomm);
	/* column-parallel fc1, row-parallel fc2, attention split by heads */
	cr_expect_str_eq(strategy_of(&g, &u.st, "block0/fc1"), "f=1");
	cr_expect_str_eq(strategy_of(&g, &u.st, "block0/fc2"), "f=1");
	cr_expect_str_eq(strategy_of(&g, &u.st, "block0/q"), "a=1");
	cr_expect_str_eq(strategy_of(&g, &u.st, "block0/proj"), "a=1");
	free(wg);
	ir_plan_free(&u.plan);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

Test(gpt_layer, eight_by_one_is_data_parallelism_reducing_each_gradient_once)
{
	const double h = 1024, params = 12 * h * h + 13 * h; /* Narayanan et al. 2021 */
	IrCluster c = test_cluster("dgx-a100", 0);
	IrGraph g = test_graph("gpt", "layers=1,batch=8");
	IrLogicalMesh m = mesh(&c, 8, 1);
	Run u;
	shard(&u, &g, &c, &m, 1, 1, (PassIntraOptions){.method = PASS_ILP, .nmicro = 4});
	cr_assert_eq(u.rc, 0, "%s", u.r.message);
	double reduce = 0, gathered = 0, weights = 0;
	for (int t = 0; t < g.ntensors; t++)
		if (g.tensors[t].role == IR_T_WEIGHT && g.tensors[t].weight < 0 &&
		    g.tensors[t].layer == 1)
			weights += ir_tensor_bytes(&g.tensors[t]);
	cr_assert(rel_eq(weights, 2 * params, 1e-12), "layer weights %g bytes", weights);
	for (int i = 0; i < u.st.ncomm; i++) {
		const IrComm *k = &u.st.comm[i];
		const IrOp *op = &g.ops[k->op];
		cr_expect(k->per_step, "%s of %s runs every microbatch",
			  sim_coll_name((SimColl)k->kind), op->name);
		if (k->kind == SIM_ALL_REDUCE || k->kind == SIM_REDUCE_SCATTER) {
			cr_expect(op->kind == IR_ACCUM || op->kind == IR_ADAM,
				  "gradient reduction on %s", op->name);
			reduce += k->bytes;
		} else {
			cr_expect(k->kind == SIM_ALL_GATHER && op->kind == IR_ADAM,
				  "%s of %s is not a gather of an updated weight",
				  sim_coll_name((SimColl)k->kind), op->name);
			cr_expect_eq(k->bytes, ir_tensor_bytes(&g.tensors[op->out[0]]));
			gathered += k->bytes;
		}
	}
	cr_expect(rel_eq(reduce, 2 * params, 1e-12), "gradient reductions %g bytes, want %g",
		  reduce, 2 * params);
	cr_expect(rel_eq(u.st.grad_bytes, 2 * params, 1e-12), "grad_bytes %g", u.st.grad_bytes);
	cr_expect_leq(gathered, weights);
	/* every forward and backward einsum splits the batch over the 8 devices */
	for (int i = 0; i < u.st.nops; i++) {
		const IrOp *op = &g.ops[u.st.op[i]];
		if (op->kind == IR_EINSUM && op->phase != IR_UPDATE) {
			cr_expect_str_eq(u.st.strategy[i], "b=0", "%s", op->name);
			cr_expect_eq(u.st.ways[i], 8, "%s", op->name);
		}
	}
	ir_plan_free(&u.plan);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

Test(gpt_layer, a_run_of_identical_layers_costs_exactly_n_single_layers)
{
	/* n x (one layer alone) is a lower bound for n layers (boundaries cost
	 * nothing more only if neighbours agree); the pass solves a run of four
	 * or more identical layers through two representatives, and here it
	 * meets the bound, so the replicated plan is optimal. */
	static const struct {
		int n0, n1, batch, nmicro;
	} ms[] = {{1, 8, 1, 1}, {8, 1, 8, 4}, {2, 4, 8, 4}};
	IrCluster c = test_cluster("dgx-a100", 0);
	for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
		char set[128];
		snprintf(set, sizeof set, "layers=6,hidden=256,heads=8,seq=128,vocab=1024,batch=%d",
			 ms[i].batch);
		IrGraph g = test_graph("gpt", set);
		IrLogicalMesh m = mesh(&c, ms[i].n0, ms[i].n1);
		PassIntraOptions o = {.method = PASS_ILP, .nmicro = ms[i].nmicro};
		Run one, six;
		shard(&one, &g, &c, &m, 1, 1, o);
		shard(&six, &g, &c, &m, 1, 6, o);
		cr_assert_eq(one.rc, 0, "%s", one.r.message);
		cr_assert_eq(six.rc, 0, "%s", six.r.message);
		cr_expect(rel_eq(six.r.objective_s, 6 * one.r.objective_s, 1e-9),
			  "%dx%d: six layers %.12g s, six single layers %.12g s", ms[i].n0, ms[i].n1,
			  six.r.objective_s, 6 * one.r.objective_s);
		cr_expect(rel_eq(state_bytes(&six.st), 6 * state_bytes(&one.st), 1e-9));
		cr_expect_eq(six.st.nops, 6 * one.st.nops);
		cr_expect_eq(six.st.ncomm, 6 * one.st.ncomm);
		ir_plan_free(&one.plan);
		ir_plan_free(&six.plan);
		ir_graph_free(&g);
	}
	ir_cluster_free(&c);
}

/* ------------------------------------------------------------------ */
/* 3. Memory budgets and time limits                                    */

#define SMALL_GPT "layers=1,hidden=256,heads=8,seq=128,vocab=1024,batch=8"

Test(budget, rules_out_data_parallelism_but_the_ilp_still_fits)
{
	IrCluster c = test_cluster("dgx-a100", 0);
	IrGraph g = test_graph("gpt", SMALL_GPT);
	IrLogicalMesh m = mesh(&c, 1, 8);
	Run data, ilp, lim_data, lim_ilp;
	shard(&data, &g, &c, &m, 1, 1, (PassIntraOptions){.method = PASS_DATA});
	cr_assert_eq(data.rc, 0, "%s", data.r.message);
	double budget = 0.5 * state_bytes(&data.st);
	shard(&lim_data, &g, &c, &m, 1, 1,
	      (PassIntraOptions){.method = PASS_DATA, .memory_budget = budget});
	cr_expect_eq(lim_data.rc, -1);
	cr_expect_eq(lim_data.r.status, PASS_INFEASIBLE, "%s", pass_status_name(lim_data.r.status));
	cr_expect(lim_data.e.msg[0] != 0, "no message");
	shard(&ilp, &g, &c, &m, 1, 1, (PassIntraOptions){.method = PASS_ILP});
	shard(&lim_ilp, &g, &c, &m, 1, 1,
	      (PassIntraOptions){.method = PASS_ILP, .memory_budget = budget});
	cr_assert_eq(lim_ilp.rc, 0, "%s", lim_ilp.r.message);
	cr_expect_eq(lim_ilp.r.status, PASS_OPTIMAL);
	cr_expect_leq(state_bytes(&lim_ilp.st), budget * (1 + 1e-9));
	/* the budget can only cost time, and the data plan no longer competes */
	cr_expect_geq(lim_ilp.r.objective_s, ilp.r.objective_s * (1 - 1e-9));
	ir_plan_free(&data.plan);
	ir_plan_free(&lim_data.plan);
	ir_plan_free(&ilp.plan);
	ir_plan_free(&lim_ilp.plan);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

Test(budget, full_sharding_of_all_state_is_the_floor)
{
	/* 16 bytes of state per parameter (bf16 weight and gradient, fp32
	 * master, m and v) over 8 devices: 2 bytes per parameter per device.
	 * (1x8: on 2x4 the same budgets take GLPK 4-15 s, see docs/intra-op.md) */
	IrCluster c = test_cluster("dgx-a100", 0);
	IrGraph g = test_graph("gpt", SMALL_GPT);
	IrLogicalMesh m = mesh(&c, 1, 8);
	double h = 256, floor = 2 * (12 * h * h + 13 * h);
	Run under, over, none;
	shard(&under, &g, &c, &m, 1, 1,
	      (PassIntraOptions){.method = PASS_ILP, .memory_budget = 0.99 * floor});
	cr_expect_eq(under.rc, -1);
	cr_expect_eq(under.r.status, PASS_INFEASIBLE, "%s: %s", pass_status_name(under.r.status),
		     under.r.message);
	shard(&over, &g, &c, &m, 1, 1,
	      (PassIntraOptions){.method = PASS_ILP, .memory_budget = 1.01 * floor});
	cr_assert_eq(over.rc, 0, "%s", over.r.message);
	cr_expect_leq(state_bytes(&over.st), 1.01 * floor);
	shard(&none, &g, &c, &m, 1, 1,
	      (PassIntraOptions){.method = PASS_ILP, .memory_budget = 1});
	cr_expect_eq(none.rc, -1);
	cr_expect_eq(none.r.status, PASS_INFEASIBLE);
	cr_expect(strstr(none.e.msg, "GiB") != NULL, "%s", none.e.msg);
	ir_plan_free(&under.plan);
	ir_plan_free(&over.plan);
	ir_plan_free(&none.plan);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

Test(budget, holds_for_the_whole_stage_when_identical_layers_are_replicated)
{
	/* four identical layers: the pass solves two and copies the second */
	const double h = 256, params = 4 * (12 * h * h + 13 * h);
	IrCluster c = test_cluster("dgx-a100", 0);
	IrGraph g = test_graph("gpt", "layers=4,hidden=256,heads=8,seq=128,vocab=1024,batch=8");
	IrLogicalMesh m = mesh(&c, 1, 8);
	double budget = 0.4 * 16 * params; /* 40% of the data-parallel state */
	Run u;
	shard(&u, &g, &c, &m, 1, 4,
	      (PassIntraOptions){.method = PASS_ILP, .nmicro = 4, .memory_budget = budget});
	cr_assert_eq(u.rc, 0, "%s", u.r.message);
	cr_expect_leq(state_bytes(&u.st), budget * (1 + 1e-9), "plan needs %.4g bytes, budget %.4g",
		      state_bytes(&u.st), budget);
	ir_plan_free(&u.plan);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

Test(time_limit, a_tiny_limit_gives_feasible_or_timeout_never_a_crash)
{
	IrCluster c = test_cluster("dgx-a100", 0);
	IrGraph g = test_graph("gpt", "layers=4,hidden=512,heads=8,seq=256,vocab=1024,batch=8");
	IrLogicalMesh m = mesh(&c, 2, 4);
	Run u;
	shard(&u, &g, &c, &m, 1, 4, (PassIntraOptions){.method = PASS_ILP, .time_limit_s = 1e-3});
	cr_expect(u.r.status == PASS_FEASIBLE || u.r.status == PASS_TIMEOUT, "%s: %s",
		  pass_status_name(u.r.status), u.r.message);
	cr_expect(strstr(u.r.message, "time limit") != NULL, "%s", u.r.message);
	if (u.r.status == PASS_FEASIBLE) {
		cr_expect(isfinite(u.r.objective_s) && u.r.objective_s > 0);
		cr_expect_geq(u.r.gap, 0);
	}
	ir_plan_free(&u.plan);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

Test(pass, a_layer_range_outside_the_model_is_an_error)
{
	IrCluster c = test_cluster("dgx-a100", 0);
	IrGraph g = test_graph("gpt", SMALL_GPT);
	IrLogicalMesh m = mesh(&c, 2, 4);
	Run u;
	shard(&u, &g, &c, &m, 1, 7, (PassIntraOptions){.method = PASS_ILP});
	cr_expect_eq(u.rc, -1);
	cr_expect_eq(u.r.status, PASS_ERROR);
	cr_expect(strstr(u.e.msg, "layer range") != NULL, "%s", u.e.msg);
	ir_plan_free(&u.plan);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

Test(pass, a_stage_without_weights_splits_the_batch_and_needs_no_collective)
{
	IrCluster c = test_cluster(DATA "/tiny-cluster.xml", 0);
	IrGraph g = test_graph(DATA "/intra/no-weights.xml", NULL);
	IrLogicalMesh m = mesh(&c, 2, 2);
	Run u;
	shard(&u, &g, &c, &m, 0, 0, (PassIntraOptions){.method = PASS_ILP});
	cr_assert_eq(u.rc, 0, "%s", u.r.message);
	cr_expect_eq(u.st.ncomm, 0);
	cr_expect_eq(state_bytes(&u.st), 0);
	for (int i = 0; i < u.st.nops; i++)
		cr_expect_eq(u.st.ways[i], 4, "%s: %d ways", g.ops[u.st.op[i]].name, u.st.ways[i]);
	ir_plan_free(&u.plan);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}

/* ------------------------------------------------------------------ */
/* 4. The ILP is never worse than a baseline                            */

Test(baselines, ilp_objective_is_at_most_every_baseline_on_six_meshes)
{
	static const struct {
		const char *cluster;
		int n0, n1;
	} ms[] = {{"dgx-a100", 1, 8}, {"dgx-a100", 2, 4}, {"dgx-a100", 4, 2},
		  {"dgx-a100", 8, 1}, {DATA "/tiny-cluster.xml", 2, 2}, {DATA "/tiny-cluster.xml", 2, 4}};
	IrGraph g = test_graph("gpt", SMALL_GPT);
	for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
		IrCluster c = test_cluster(ms[i].cluster, 0);
		IrLogicalMesh m = mesh(&c, ms[i].n0, ms[i].n1);
		Run ilp;
		shard(&ilp, &g, &c, &m, 1, 1, (PassIntraOptions){.method = PASS_ILP, .nmicro = 2});
		cr_assert_eq(ilp.rc, 0, "%s", ilp.r.message);
		int feasible = 0;
		for (int k = PASS_DATA; k < PASS_NMETHODS; k++) {
			Run b;
			shard(&b, &g, &c, &m, 1, 1,
			      (PassIntraOptions){.method = (PassMethod)k, .nmicro = 2});
			if (b.rc == 0) {
				feasible++;
				cr_expect_leq(ilp.r.objective_s, b.r.objective_s * (1 + 1e-9),
					      "%dx%d: ILP %.9g s, %s %.9g s", ms[i].n0, ms[i].n1,
					      ilp.r.objective_s, pass_method_name((PassMethod)k),
					      b.r.objective_s);
				/* the parts add up */
				cr_expect(rel_eq(b.r.objective_s,
						 b.r.compute_s + b.r.communication_s + b.r.resharding_s,
						 1e-12));
			}
			ir_plan_free(&b.plan);
		}
		cr_expect_eq(feasible, PASS_NMETHODS - 1, "%dx%d: %d baselines feasible", ms[i].n0,
			     ms[i].n1, feasible);
		ir_plan_free(&ilp.plan);
		ir_cluster_free(&c);
	}
	ir_graph_free(&g);
}

/* ------------------------------------------------------------------ */
/* Through the binary                                                   */

/* Runs `meshplan shard ARGS`, stdout and stderr into out; exit code. */
static int run_shard(const char *args, char *out, size_t n)
{
	char all[2048];
	snprintf(all, sizeof all, "shard %s", args);
	return test_run(all, out, n);
}

static void expect_one_line(const char *args, int code, const char *word)
{
	char out[8192];
	int rc = run_shard(args, out, sizeof out);
	cr_expect_eq(rc, code, "'%s' exit %d: %s", args, rc, out);
	cr_expect(strstr(out, word) != NULL, "'%s': no '%s' in: %s", args, word, out);
	char *nl = strchr(out, '\n');
	cr_expect(nl && nl[1] == 0, "'%s': not one line: %s", args, out);
}

#define SHARD_GPT "gpt --set " SMALL_GPT " --layers 1:1 --cluster dgx-a100 "

Test(cli, a_malformed_mesh_exits_2_with_one_line)
{
	expect_one_line(SHARD_GPT "--mesh 2x", 2, "2x");
	expect_one_line(SHARD_GPT "--mesh 0x4", 2, "0x4");
	expect_one_line(SHARD_GPT "--mesh 3x3", 2, "3x3");
	expect_one_line(SHARD_GPT "--nodes 1 --mesh 4x4", 2, "4x4");
	expect_one_line(SHARD_GPT "--mesh 2x4 --method magic", 2, "magic");
}

Test(cli, an_infeasible_budget_or_time_limit_exits_1_with_one_line)
{
	expect_one_line(SHARD_GPT "--mesh 2x4 --memory-budget 0.000001", 1, "infeasible");
	expect_one_line(SHARD_GPT "--mesh 2x4 --memory-budget 0.001 --method data", 1,
			"infeasible");
	expect_one_line("gpt --set layers=4,hidden=512,heads=8,seq=256,vocab=1024,batch=8 "
			"--cluster dgx-a100 --mesh 2x4 --time-limit 0.001",
			1, "time limit");
}

Test(cli, json_has_the_objective_split_and_every_collective)
{
	char out[1 << 16];
	int rc = run_shard("gpt --set layers=1,batch=1 --layers 1:1 --cluster dgx-a100 --mesh 1x8 "
			   "--json",
			   out, sizeof out);
	cr_assert_eq(rc, 0, "%s", out);
	static const char *keys[] = {"\"status\": \"optimal\"", "\"objective_s\"", "\"compute_s\"",
				     "\"communication_s\"", "\"resharding_s\"", "\"solve_time_s\"",
				     "\"variables\"", "\"constraints\"", "\"strategies\"",
				     "\"collectives\"", "\"all-reduce\""};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		cr_expect(strstr(out, keys[i]) != NULL, "no %s in %s", keys[i], out);
}

/* With fused attention the ILP prices a layer as the simulator runs it: on
 * one GPU (no communication), a long-sequence layer's ILP compute is within
 * 10% of the simulated forward + backward + update, where pricing the
 * attention eagerly (s x s scores read and written by every op of the
 * chain) would put it far above. */
Test(ilp, fused_attention_is_priced_as_the_simulator_runs_it)
{
	IrCluster c = test_cluster("dgx-a100", 0);
	const char *set[2] = {"layers=1,hidden=256,heads=4,seq=4096,vocab=512,attention=fused",
			      "layers=1,hidden=256,heads=4,seq=4096,vocab=512,attention=eager"};
	double ratio[2];
	for (int i = 0; i < 2; i++) {
		IrGraph g = test_graph("gpt", set[i]);
		IrLogicalMesh m = mesh(&c, 1, 1);
		Run u;
		shard(&u, &g, &c, &m, 1, 1, (PassIntraOptions){.method = PASS_ILP});
		cr_assert_eq(u.rc, 0, "%s", u.e.msg);
		SimStageCost sc;
		IrError e;
		cr_assert_eq(sim_stage_cost(&g, &c, &u.st, IR_RECOMP_NONE, 0, &sc, &e), 0, "%s",
			     e.msg);
		double sim = sc.fwd_s + sc.bwd_s + sc.step_s;
		ratio[i] = u.r.compute_s / sim;
		cr_log_info("%s: ILP compute %.4g s, simulated %.4g s", set[i], u.r.compute_s, sim);
		ir_plan_free(&u.plan);
		ir_graph_free(&g);
	}
	cr_expect(fabs(ratio[0] - 1) <= 0.10, "fused: ILP / simulated = %.3f", ratio[0]);
	ir_cluster_free(&c);
}

/* GPT-3 1.3B's layers on every view of one 8-GPU node: the optimum
 * without GLPK (variable elimination where the graph is narrow enough)
 * equals GLPK's, one layer at a time and for the embedding, four blocks
 * and the head solved whole (identical blocks folded into two). */
Test(ilp, variable_elimination_and_glpk_agree_on_gpt_layers, .timeout = 300)
{
	IrCluster c = test_cluster("aws-p3.16xlarge", 1);
	IrGraph g = test_graph("gpt:1.3b", "batch=8,layers=4");
	int views[4][2] = {{1, 8}, {2, 4}, {4, 2}, {8, 1}};
	int ranges[3][2] = {{0, 0}, {1, 1}, {0, 5}};
	int elim = 0;
	for (int v = 0; v < 4; v++)
		for (int k = 0; k < 3; k++) {
			IrLogicalMesh m = mesh(&c, views[v][0], views[v][1]);
			Run a, b;
			PassIntraOptions o = {.method = PASS_ILP, .nmicro = 4};
			shard(&a, &g, &c, &m, ranges[k][0], ranges[k][1], o);
			o.glpk_only = true;
			shard(&b, &g, &c, &m, ranges[k][0], ranges[k][1], o);
			cr_assert_eq(a.rc, 0, "%s", a.r.message);
			cr_assert_eq(b.rc, 0, "%s", b.r.message);
			elim += strstr(a.r.message, "variable elimination") != NULL;
			cr_expect(rel_eq(a.r.objective_s, b.r.objective_s, 1e-9),
				  "%dx%d layers %d..%d: %.12g s (%s), GLPK %.12g s", views[v][0],
				  views[v][1], ranges[k][0], ranges[k][1], a.r.objective_s,
				  a.r.message, b.r.objective_s);
			ir_plan_free(&a.plan);
			ir_plan_free(&b.plan);
		}
	cr_log_info("%d of 12 solved by variable elimination", elim);
	cr_expect_geq(elim, 6);
	ir_graph_free(&g);
	ir_cluster_free(&c);
}
