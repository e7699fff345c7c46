/*
 * bench_intra.c -- the intra-operator pass against its baselines on the
 * zoo, under memory budgets, and its solve time.  Prints markdown tables (docs/intra-op.md holds a copy).
 *
 *   bench_intra [--skip-table] [--skip-budget] [--skip-time] [--tight-limit S]
 *
 * Table: one transformer layer (or residual block) of every zoo model, on
 * logical meshes of dgx-a100 (4 nodes of 8 A100s); the step objective of
 * the ILP and of each baseline, as baseline / ILP ("inf": the baseline has
 * no plan).  Budget rows: a budget of half the data-parallel state rules
 * `data` out; a tight one (15%) shows what the memory row costs GLPK.
 * Solve time: a GPT-3 layer on 2x4 (anchor < 1 s) and a 24-layer stage
 * (anchor < 10 s), with the time split into everything before GLPK
 * (strategy enumeration, edge costs, building the ILP; measured by a run
 * with a 1 ms GLPK time limit) and GLPK itself (the rest).
 * Exits 1 when an anchor is missed: a table row where the ILP is worse
 * than a baseline or any search (the ILP's or a baseline's) failed, or a
 * solve time over its anchor.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "passes/passes.h"

#define GIB 1073741824.0

static void die(const char *what, const IrError *e)
{
	fprintf(stderr, "bench_intra: %s: %s\n", what, e->msg);
	exit(1);
}

static IrGraph load(const char *model, const char *set, int batch)
{
	IrError e = {0};
	IrParamSet ps = {0};
	if (set && ir_params_parse(&ps, set, &e))
		die(set, &e);
	ir_params_set(&ps, "batch", batch);
	IrModelDoc *m = ir_model_open(model, &e);
	if (!m)
		die(model, &e);
	IrGraph g;
	if (ir_model_instantiate(m, &ps, &g, &e))
		die(model, &e);
	ir_model_close(m);
	if (ir_build_training(&g, &e))
		die(model, &e);
	return g;
}

/* n0 x n1 over the first n0*n1 GPUs, as `meshplan shard` builds it. */
static IrLogicalMesh mesh(const IrCluster *c, int n0, int n1)
{
	int d = n0 * n1, M = c->gpus_per_node;
	IrMesh m = d <= M ? (IrMesh){0, 1, 0, d} : (IrMesh){0, d / M, 0, M};
	IrLogicalMesh v;
	IrError e = {0};
	if (ir_logical_mesh(c, &m, n0, n1, &v, &e))
		die("mesh", &e);
	return v;
}

typedef struct {
	PassIntraResult r;
	double state;  /* weights + gradients + optimizer bytes per device */
	double wall;   /* seconds of pass_intra_op */
	int rc;
} Out;

static Out run(const IrGraph *g, const IrCluster *c, const IrLogicalMesh *m, int first, int last,
	       PassIntraOptions o)
{
	Out u;
	IrPlan plan;
	IrStagePlan st;
	IrError e = {0};
	ir_plan_init(&plan);
	double t0 = ir_now_s();
	u.rc = pass_intra_op(g, c, m, first, last, &o, &plan, &st, &u.r, &e);
	u.wall = ir_now_s() - t0;
	u.state = u.rc ? NAN : st.weight_bytes + st.grad_bytes + st.opt_bytes;
	ir_plan_free(&plan);
	return u;
}

/* "1.23" (baseline / ILP) or "inf". */
static const char *ratio(char *buf, size_t n, const Out *b, const Out *ilp)
{
	if (b->rc)
		snprintf(buf, n, "inf");
	else
		snprintf(buf, n, "%.3f", b->r.objective_s / ilp->r.objective_s);
	return buf;
}

typedef struct {
	const char *label, *model, *set;
	int first, last;
} Model;

/* One transformer layer (or residual block) per zoo model. */
static const Model models[] = {
	{"gpt:1.3b", "gpt:1.3b", "layers=2", 1, 1},
	{"llama:7b", "llama:7b", "layers=2", 1, 1},
	{"moe:380m", "moe:380m", "layers=2", 1, 1},
	{"wresnet:250m", "wresnet:250m", NULL, 9, 9},
};
enum { NMODELS = sizeof models / sizeof models[0] };

static const int meshes[][2] = {{1, 8}, {2, 4}, {4, 2}, {8, 1}, {4, 8}};
enum { NMESHES = sizeof meshes / sizeof meshes[0] };

enum { BATCH = 32, NMICRO = 4 };

/* Anchors missed: rows where the ILP is worse than a baseline or any
 * search failed, solve times over their anchor.  main exits 1 if any. */
static int misses;

static void table(const IrCluster *c)
{
	printf("### ILP against the baselines (batch %d per microbatch, %d microbatches)\n\n",
	       BATCH, NMICRO);
	printf("Baseline columns: baseline objective / ILP objective (>= 1 means the ILP is at "
	       "least as fast; inf: no plan).\n\n");
	printf("| model | layer | mesh | ILP step (ms) | data | zero2 | zero3 | heuristic | "
	       "ILP <= all baselines | ILP vars | pass time (s) |\n");
	printf("|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|\n");
	int bad = 0;
	for (int i = 0; i < NMODELS; i++) {
		const Model *md = &models[i];
		IrGraph g = load(md->model, md->set, BATCH);
		for (int k = 0; k < NMESHES; k++) {
			IrLogicalMesh m = mesh(c, meshes[k][0], meshes[k][1]);
			Out ilp = run(&g, c, &m, md->first, md->last,
				      (PassIntraOptions){.method = PASS_ILP, .nmicro = NMICRO});
			char cell[PASS_NMETHODS][32];
			bool ok = ilp.rc == 0;
			for (int b = PASS_DATA; b < PASS_NMETHODS; b++) {
				Out o = run(&g, c, &m, md->first, md->last,
					    (PassIntraOptions){.method = (PassMethod)b,
							       .nmicro = NMICRO});
				/* a failed search is a failure, not a row left out */
				if (o.rc != 0 || (ilp.rc == 0 &&
						  ilp.r.objective_s > o.r.objective_s * (1 + 1e-9)))
					ok = false;
				ratio(cell[b], sizeof cell[b], &o, &ilp);
			}
			bad += !ok;
			printf("| %s | %s | %dx%d | %.3f | %s | %s | %s | %s | %s | %d | %.2f |\n",
			       md->label, g.layers[md->first].name, meshes[k][0], meshes[k][1],
			       ilp.rc ? NAN : 1e3 * ilp.r.objective_s, cell[PASS_DATA],
			       cell[PASS_ZERO2], cell[PASS_ZERO3], cell[PASS_HEURISTIC],
			       ok ? "yes" : "no", ilp.r.variables, ilp.wall);
			fflush(stdout);
		}
		ir_graph_free(&g);
	}
	printf("\nRows where the ILP is worse than a baseline or a search failed: %d\n\n", bad);
	misses += bad;
}

static void budget_rows(const IrCluster *c, double frac, double limit)
{
	printf("### Memory budget of %.0f%% of the data-parallel state, 2x4 mesh%s\n\n",
	       100 * frac, limit > 0 ? "" : "");
	if (limit > 0)
		printf("GLPK time limit %.0f s per solve.\n\n", limit);
	printf("| model | budget (GiB) | data | zero2 | zero3 | heuristic | ILP status | "
	       "ILP step (ms) | ILP / unconstrained ILP | ILP state (GiB) | fits | gap | "
	       "pass time (s) |\n");
	printf("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---:|\n");
	for (int i = 0; i < NMODELS; i++) {
		const Model *md = &models[i];
		IrGraph g = load(md->model, md->set, BATCH);
		IrLogicalMesh m = mesh(c, 2, 4);
		Out data = run(&g, c, &m, md->first, md->last,
			       (PassIntraOptions){.method = PASS_DATA, .nmicro = NMICRO});
		Out free_ilp = run(&g, c, &m, md->first, md->last,
				   (PassIntraOptions){.method = PASS_ILP, .nmicro = NMICRO});
		double budget = frac * data.state;
		Out ilp = run(&g, c, &m, md->first, md->last,
			      (PassIntraOptions){.method = PASS_ILP, .nmicro = NMICRO,
						 .memory_budget = budget, .time_limit_s = limit});
		char cell[PASS_NMETHODS][32];
		for (int b = PASS_DATA; b < PASS_NMETHODS; b++) {
			Out o = run(&g, c, &m, md->first, md->last,
				    (PassIntraOptions){.method = (PassMethod)b, .nmicro = NMICRO,
						       .memory_budget = budget});
			ratio(cell[b], sizeof cell[b], &o, &ilp);
		}
		if (ilp.rc)
			printf("| %s | %.3f | %s | %s | %s | %s | %s | - | - | - | no | - | %.2f |\n",
			       md->label, budget / GIB, cell[PASS_DATA], cell[PASS_ZERO2],
			       cell[PASS_ZERO3], cell[PASS_HEURISTIC], pass_status_name(ilp.r.status),
			       ilp.wall);
		else
			printf("| %s | %.3f | %s | %s | %s | %s | %s | %.3f | %.3f | %.3f | %s | %.2g | "
			       "%.2f |\n",
			       md->label, budget / GIB, cell[PASS_DATA], cell[PASS_ZERO2],
			       cell[PASS_ZERO3], cell[PASS_HEURISTIC], pass_status_name(ilp.r.status),
			       1e3 * ilp.r.objective_s, ilp.r.objective_s / free_ilp.r.objective_s,
			       ilp.state / GIB, ilp.state <= budget * (1 + 1e-9) ? "yes" : "no",
			       ilp.r.gap, ilp.wall);
		fflush(stdout);
		ir_graph_free(&g);
	}
	printf("\n");
}

/* One solve-time row: the whole pass, and the pass with GLPK cut to 1 ms. */
static Out time_row(const char *what, const IrGraph *g, const IrCluster *c, int n0, int n1,
		    int first, int last, const char *anchor, double anchor_s)
{
	IrLogicalMesh m = mesh(c, n0, n1);
	PassIntraOptions o = {.method = PASS_ILP, .nmicro = 1};
	Out full = run(g, c, &m, first, last, o);
	o.time_limit_s = 1e-3;
	Out pre = run(g, c, &m, first, last, o);
	double glpk = full.wall - pre.wall;
	printf("| %s | %dx%d | %d:%d | %s | %d | %d | %.3f | %.3f | %.3f | %s | %s |\n", what, n0,
	       n1, first, last, pass_status_name(full.r.status), full.r.variables,
	       full.r.constraints, full.wall, pre.wall, glpk > 0 ? glpk : 0, anchor,
	       anchor_s <= 0 ? "-" : full.wall < anchor_s ? "yes" : "NO");
	fflush(stdout);
	if (full.rc != 0 || (anchor_s > 0 && !(full.wall < anchor_s)))
		misses++;
	return full;
}

static void solve_times(const IrCluster *c)
{
	printf("### Solve time (batch 1, one microbatch; wall clock of pass_intra_op)\n\n");
	printf("\"before GLPK\": strategy enumeration, edge cost matrices and building the ILP "
	       "(a run with a 1 ms GLPK limit); \"GLPK\": the difference.\n\n");
	printf("| stage | mesh | layers | status | variables | constraints | pass (s) | "
	       "before GLPK (s) | GLPK (s) | anchor | met |\n");
	printf("|---|---|---|---|---:|---:|---:|---:|---:|---|---|\n");
	IrGraph g3 = load("gpt:175b", "layers=1", 1);
	time_row("GPT-3 layer (h 12288, 96 heads, seq 2048)", &g3, c, 2, 4, 1, 1, "< 1 s", 1.0);
	ir_graph_free(&g3);
	IrGraph g = load("gpt:1.3b", NULL, 1);
	Out one = time_row("gpt:1.3b, 1 layer", &g, c, 2, 4, 1, 1, "", 0);
	Out three = time_row("gpt:1.3b, 3 layers (below the 4-layer run: solved whole)", &g, c, 2,
			     4, 1, 3, "", 0);
	Out four = time_row("gpt:1.3b, 4 layers (one run: two representatives)", &g, c, 2, 4, 1,
			    4, "", 0);
	Out all = time_row("gpt:1.3b, 24 layers (every block)", &g, c, 2, 4, 1, 24, "< 10 s",
			   10.0);
	printf("\nObjective against n x one layer alone (a lower bound: each layer alone pays no "
	       "boundary resharding):\n\n");
	printf("| layers | objective (ms) | n x one layer (ms) | ratio |\n|---:|---:|---:|---:|\n");
	const Out *rows[] = {&three, &four, &all};
	const int n[] = {3, 4, 24};
	for (int i = 0; i < 3; i++)
		printf("| %d | %.4f | %.4f | %.5f |\n", n[i], 1e3 * rows[i]->r.objective_s,
		       1e3 * n[i] * one.r.objective_s,
		       rows[i]->r.objective_s / (n[i] * one.r.objective_s));
	printf("\n");
	ir_graph_free(&g);
}

int main(int argc, char **argv)
{
	bool do_table = true, do_budget = true, do_time = true;
	double tight_limit = 20;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--skip-table"))
			do_table = false;
		else if (!strcmp(argv[i], "--skip-budget"))
			do_budget = false;
		else if (!strcmp(argv[i], "--skip-time"))
			do_time = false;
		else if (!strcmp(argv[i], "--tight-limit") && i + 1 < argc)
			tight_limit = atof(argv[++i]);
		else {
			fprintf(stderr, "usage: bench_intra [--skip-table] [--skip-budget] "
					"[--skip-time] [--tight-limit S]\n");
			return 2;
		}
	}
	IrCluster c;
	IrError e = {0};
	if (ir_cluster_load("dgx-a100", 4, &c, &e))
		die("dgx-a100", &e);
	double t0 = ir_now_s();
	printf("## bench_intra: dgx-a100, %d nodes x %d GPUs\n\n", c.nodes, c.gpus_per_node);
	if (do_table)
		table(&c);
	if (do_budget) {
		budget_rows(&c, 0.5, 0);
		budget_rows(&c, 0.15, tight_limit);
	}
	if (do_time)
		solve_times(&c);
	printf("Total bench time %.1f s\nAnchors missed: %d\n", ir_now_s() - t0, misses);
	ir_cluster_free(&c);
	return misses ? 1 : 0;
}
