/*
 * bench_megatron.c -- the simulator against published training runs
 * (bench/published_runs.tsv: Narayanan et al. 2021, Table 1, TFLOPS per
 * GPU; Korthikanti et al. 2022, iteration times of the full-recomputation
 * baseline).
 *
 * For each run the plan Megatron-LM executed is built by rule
 * (pass_megatron_plan, the layout `simulate --manual` uses), not by the
 * ILP, so that the comparison tests the simulator alone: tensor
 * parallelism over the tp axis of each stage's dp x tp mesh (attention
 * heads, MLP width and vocabulary split, Megatron's all-reduces of partial
 * sums, the vocabulary-parallel embedding and loss), data parallelism over
 * the dp axis (gradients all-reduced once per step), no ZeRO, full
 * recomputation as the row says, the embedding with the first stage and
 * the head with the last.  Where microbatch size and interleaving degree
 * are not published ("-") the bench tries mbs 1, 2, 4, 8 and every v
 * dividing the layers per rank (up to 8) and keeps the fastest plan that
 * fits in memory.
 *
 * Predicted TFLOPS per GPU use the papers' own count,
 * 96 B s l h^2 (1 + s/(6h) + V/(16 l h)) per step, over the simulated
 * step time, so predicted and published differ only by the time (a
 * published step time is turned into TFLOPS by the same count).  The
 * simulator's own hardware-FLOP count is printed beside it.  With --ilp
 * each run's best (mbs, v) is simulated again with the sharding the
 * intra-op ILP chooses on the same meshes (`meshplan simulate --manual ...,shard=ilp`).
 *
 * usage: bench_megatron [published_runs.tsv] [--ilp]
 * Anchor: every run within 10% of its published figure (the bar for
 * Table 1, held to the other set as well).  Exits 0 when all are, 1 when
 * a run misses it or has no plan that fits, 2 when it cannot read its input.
 */
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "passes/passes.h"
#include "runtime-sim/sim.h"

typedef struct {
	char source[32], name[32], model[64], cluster[64];
	int gpus, tp, pp;
	long batch;
	IrRecompute recompute;
	int mbs, v;          /* 0: not published, searched */
	bool time_metric;    /* published is a step time in s, not TFLOPS per GPU */
	double published;
} Run;

typedef struct {
	int64_t B, heads, ffn, vocab, hidden, seq, layers;
} Dims;

/* ------------------------------------------------------------------ */
/* Megatron-LM's plan: the shared rule (passes/megatron.c)              */

/* The plan of run r with microbatch mbs per replica and v chunks per rank. */
static int megatron_plan(const IrGraph *g, const IrCluster *c, const Run *r, int mbs, int v,
			 IrPlan *p, IrError *e)
{
	int dp = r->gpus / (r->tp * r->pp);
	ir_plan_init(p);
	p->model = r->model;
	p->cluster = r->cluster;
	p->nodes = c->nodes;
	PassManual m = {.dp = dp, .tp = r->tp, .pp = r->pp, .mbs = mbs, .v = v,
			.schedule = v > 1 ? IR_SCHED_INTERLEAVED : IR_SCHED_1F1B,
			.recompute = r->recompute, .zero = 0, .shard = PASS_SHARD_MEGATRON};
	if (pass_megatron_plan(g, c, &m, r->batch, p, e)) {
		ir_plan_free(p);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */

static double paper_flops(const Dims *d, double B)
{
	double s = (double)d->seq, l = (double)d->layers, h = (double)d->hidden,
	       V = (double)d->vocab;
	return 96.0 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h));
}

/* One row: source name model cluster gpus tp pp batch recompute mbs v
 * metric published, tab- or space-separated; mbs and v "-" when not
 * published; metric "tflops" (hardware TFLOPS per GPU) or "step_s". */
static int read_runs(const char *path, Run *runs, int max)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char line[512];
	int n = 0, lineno = 0;
	while (fgets(line, sizeof line, f) && n < max) {
		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		Run *r = &runs[n];
		char rc[16], mbs[16], v[16], metric[16];
		if (sscanf(line, "%31s %31s %63s %63s %d %d %d %ld %15s %15s %15s %15s %lf", r->source,
			   r->name, r->model, r->cluster, &r->gpus, &r->tp, &r->pp, &r->batch, rc, mbs,
			   v, metric, &r->published) != 13 ||
		    ir_recompute_parse(rc, &r->recompute) ||
		    (strcmp(metric, "tflops") && strcmp(metric, "step_s")) || r->tp < 1 ||
		    r->pp < 1 || r->gpus % (r->tp * r->pp) || !(r->published > 0)) {
			fprintf(stderr, "%s:%d: not a run (source name model cluster gpus tp pp "
					"batch recompute mbs v tflops|step_s published)\n",
				path, lineno);
			fclose(f);
			return -1;
		}
		r->mbs = strcmp(mbs, "-") ? atoi(mbs) : 0;
		r->v = strcmp(v, "-") ? atoi(v) : 0;
		r->time_metric = !strcmp(metric, "step_s");
		n++;
	}
	fclose(f);
	return n;
}

typedef struct {
	double flops; /* the paper's hardware FLOPs of one step */
	double tflops, hw_tflops, step_s, mfu, bubble, mem_gib, sim_s;
	int mbs, v;
	bool found;
} Best;

static void bench_run(const Run *r, Best *best)
{
	memset(best, 0, sizeof *best);
	IrError e;
	IrCluster c;
	if (ir_cluster_load(r->cluster, r->gpus / 8, &c, &e)) {
		fprintf(stderr, "%s: %s\n", r->name, e.msg);
		return;
	}
	IrModelDoc *m = ir_model_open(r->model, &e);
	if (!m) {
		fprintf(stderr, "%s: %s\n", r->name, e.msg);
		ir_cluster_free(&c);
		return;
	}
	int dp = r->gpus / (r->tp * r->pp);
	static const int mbss[] = {1, 2, 4, 8};
	for (size_t mi = 0; mi < sizeof mbss / sizeof mbss[0]; mi++) {
		int mbs = r->mbs ? r->mbs : mbss[mi];
		if (r->mbs && mi)
			break;
		if (r->batch % ((long)dp * mbs))
			continue;
		IrParamSet ps = {0};
		ir_params_set(&ps, "batch", (int64_t)dp * mbs);
		IrGraph g;
		if (ir_model_instantiate(m, &ps, &g, &e) || ir_build_training(&g, &e)) {
			fprintf(stderr, "%s: %s\n", r->name, e.msg);
			continue;
		}
		Dims d = {(int64_t)dp * mbs, 0, 0, 0, 0, 0, 0};
		ir_model_param(m, &ps, "heads", &d.heads, &e);
		ir_model_param(m, &ps, "ffn", &d.ffn, &e);
		ir_model_param(m, &ps, "vocab", &d.vocab, &e);
		ir_model_param(m, &ps, "hidden", &d.hidden, &e);
		ir_model_param(m, &ps, "seq", &d.seq, &e);
		ir_model_param(m, &ps, "layers", &d.layers, &e);
		long nmicro = r->batch / ((long)dp * mbs);
		int per_rank = (g.nlayers - 2) / r->pp;
		for (int v = r->v ? r->v : 1; v <= (r->v ? r->v : 8); v++) {
			if ((g.nlayers - 2) % (r->pp * v) || (v > 1 && r->pp == 1) ||
			    (v > 1 && nmicro % r->pp) || per_rank % v)
				continue;
			IrPlan p;
			if (megatron_plan(&g, &c, r, mbs, v, &p, &e)) {
				fprintf(stderr, "%s mbs %d v %d: %s\n", r->name, mbs, v, e.msg);
				continue;
			}
			SimResult res;
			double t0 = ir_now_s();
			int rc = sim_plan(&g, &c, &p, &res, &e);
			double dt = ir_now_s() - t0;
			if (rc) {
				fprintf(stderr, "%s mbs %d v %d: %s\n", r->name, mbs, v, e.msg);
			} else {
				double tf = paper_flops(&d, (double)r->batch) / res.step_time_s /
					    r->gpus / 1e12;
				if (res.fits && tf > best->tflops) {
					*best = (Best){paper_flops(&d, (double)r->batch), tf,
						       res.hw_tflops_per_gpu, res.step_time_s, res.mfu,
						       res.bubble_fraction,
						       res.peak_memory_bytes / 1073741824.0, dt, mbs, v,
						       true};
				}
				if (getenv("BENCH_VERBOSE") && p.nstages > 1) {
					const SimStageCost *sc = &res.stage[1];
					printf("    stage 1: fwd %.2f ms (comm %.2f), bwd %.2f ms (comm %.2f, "
					       "recompute %.2f), step %.3f s, xfer %.2f ms\n",
					       sc->fwd_s * 1e3, sc->fwd_comm_s * 1e3, sc->bwd_s * 1e3,
					       sc->bwd_comm_s * 1e3, sc->recompute_s * 1e3, sc->step_s,
					       res.xfer_s[1] * 1e3);
				}
				if (getenv("BENCH_VERBOSE"))
					printf("  %-7s mbs %d v %d: %.1f TFLOPS (sim %.1f), step %.3f s, "
					       "bubble %.3f, %.1f GiB%s, simulated in %.3f s\n",
					       r->name, mbs, v, tf, res.hw_tflops_per_gpu,
					       res.step_time_s, res.bubble_fraction,
					       res.peak_memory_bytes / 1073741824.0,
					       res.fits ? "" : " (does not fit)", dt);
				sim_result_free(&res);
			}
			ir_plan_free(&p);
		}
		ir_graph_free(&g);
	}
	ir_model_close(m);
	ir_cluster_free(&c);
}

/* The ILP's sharding of the same meshes, through the command line. */
static double ilp_tflops(const char *bin, const Run *r, const Best *b, double *step_s)
{
	char cmd[2400];
	int dp = r->gpus / (r->tp * r->pp);
	snprintf(cmd, sizeof cmd,
		 "'%s' simulate %s --cluster %s --nodes %d --batch %ld --manual "
		 "dp=%d,tp=%d,pp=%d,mbs=%d,v=%d,recompute=%s,shard=ilp --json 2>/dev/null",
		 bin, r->model, r->cluster, r->gpus / 8, r->batch, dp, r->tp, r->pp, b->mbs, b->v,
		 ir_recompute_name(r->recompute));
	FILE *f = popen(cmd, "r");
	if (!f)
		return NAN;
	json_error_t je;
	json_t *j = json_loadf(f, 0, &je);
	pclose(f);
	if (!j)
		return NAN;
	*step_s = json_number_value(json_object_get(j, "step_time_s"));
	json_decref(j);
	return *step_s;
}

/* The bar each run is held to: |predicted - published| / published. */
#define ANCHOR 0.10

static const char *source_title(const char *source)
{
	if (!strcmp(source, "narayanan2021"))
		return "Narayanan et al. 2021, Table 1 (hardware TFLOPS per GPU, full recomputation; "
		       "mbs and v searched)";
	if (!strcmp(source, "korthikanti2022"))
		return "Korthikanti et al. 2022, iteration time with full recomputation, dp 1 "
		       "(shown as hardware TFLOPS per GPU by the same count)";
	return source;
}

int main(int argc, char **argv)
{
	const char *path = MESHPLAN_DATA_DIR "/bench/published_runs.tsv";
	bool ilp = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ilp"))
			ilp = true;
		else
			path = argv[i];
	}
	Run runs[64];
	int n = read_runs(path, runs, 64);
	if (n <= 0) {
		fprintf(stderr, "bench_megatron: cannot read runs from %s\n", path);
		return 2;
	}
	char bin[1024];
	snprintf(bin, sizeof bin, "%s", argv[0]);
	char meshplan[1100];
	snprintf(meshplan, sizeof meshplan, "%s/meshplan", dirname(bin));

	int shown = 0, missed = 0;
	for (int i = 0; i < n; i++) {
		if (i && !strcmp(runs[i].source, runs[i - 1].source))
			continue;
		/* one table per source, its rows in file order */
		const char *src = runs[i].source;
		printf("%s%s\n\n", shown++ ? "\n" : "", source_title(src));
		printf("%-7s %5s %3s %3s %5s %-9s | %9s %9s %7s | %8s %8s | %8s %3s %2s %6s %6s %7s "
		       "%7s%s\n",
		       "run", "GPUs", "tp", "pp", "batch", "recompute", "published", "predicted",
		       "error", "pub s", "step s", "sim hwTF", "mbs", "v", "MFU", "bubble", "mem GiB",
		       "sim s", ilp ? "  ILP plan TF" : "");
		double sum_abs = 0;
		int counted = 0;
		for (int k = i; k < n && !strcmp(runs[k].source, src); k++) {
			const Run *r = &runs[k];
			Best b;
			bench_run(r, &b);
			const char *rc = ir_recompute_name(r->recompute);
			if (!b.found) {
				printf("%-7s %5d %3d %3d %5ld %-9s | %9s\n", r->name, r->gpus, r->tp,
				       r->pp, r->batch, rc, "no plan fits");
				missed++;
				continue;
			}
			/* a published step time as TFLOPS per GPU by the same count, and back */
			double pub = r->time_metric ? b.flops / (r->published * r->gpus) / 1e12
						    : r->published;
			double pub_s = b.flops / (pub * 1e12 * r->gpus);
			double err = (b.tflops - pub) / pub;
			sum_abs += fabs(err);
			counted++;
			missed += fabs(err) > ANCHOR;
			printf("%-7s %5d %3d %3d %5ld %-9s | %9.1f %9.1f %+6.1f%% | %8.3f %8.3f | %8.1f "
			       "%3d %2d %5.1f%% %6.3f %7.1f %7.3f",
			       r->name, r->gpus, r->tp, r->pp, r->batch, rc, pub, b.tflops, 100 * err,
			       pub_s, b.step_s, b.hw_tflops, b.mbs, b.v, 100 * b.mfu, b.bubble,
			       b.mem_gib, b.sim_s);
			if (ilp) {
				double step = NAN;
				ilp_tflops(meshplan, r, &b, &step);
				printf("  %11.1f", b.tflops * b.step_s / step);
			}
			printf("\n");
		}
		if (counted)
			printf("mean absolute error %.1f%% over %d runs\n", 100 * sum_abs / counted,
			       counted);
	}
	printf("\nanchor: every run within %.0f%% of its published figure: %s (%d of %d outside)\n",
	       100 * ANCHOR, missed ? "missed" : "met", missed, n);
	return missed ? 1 : 0;
}
