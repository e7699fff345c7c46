/*
 * cmd_simulate.c -- `meshplan simulate`: one training step of a plan on a
 * described cluster.  The plan comes from a file, or is written the way
 * people write them by hand (--manual dp=,tp=,pp=,mbs=...): pp stages,
 * each on a dp x tp logical mesh, laid out as Megatron-LM does
 * (pass_megatron_plan), or sharded by the intra-op ILP or a baseline.
 */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "runtime-sim/sim.h"
#include "tools/tools.h"

static const char *VERB = "simulate";

enum {
	O_CLUSTER, O_NODES, O_BATCH, O_MANUAL, O_SET, O_TIME_LIMIT, O_TRACE, O_TRACE_DETAIL, O_SVG_TIMELINE,
	O_SVG_MESH, O_SVG_MEMORY, O_OUTPUT, O_JSON, O_HELP, NOPT
};

static const ToolOpt opts[NOPT] = {
	[O_CLUSTER] = {"cluster", 0, TOOL_STR, "C", TOOL_ANY, false, 0,
		       "with --manual: cluster file or zoo name"},
	[O_NODES] = {"nodes", 0, TOOL_INT, "N", 1, false, 1000000, false, 0,
		     "node count (default: the plan's or the cluster file's)"},
	[O_BATCH] = {"batch", 0, TOOL_INT, "GLOBAL", 1, false, 1 << 30, false, 0,
		     "with --manual: samples per training step"},
	[O_MANUAL] = {"manual", 0, TOOL_STR, "dp=D,tp=T,pp=P,mbs=B,...", TOOL_ANY, false, 0,
		      "a hand-written plan (keys below)"},
	[O_SET] = {"set", 0, TOOL_PARAMS, "NAME=VALUE,...", TOOL_ANY, true, 0,
		   "with --manual: override model parameters"},
	[O_TIME_LIMIT] = {"time-limit", 0, TOOL_NUM, "S", TOOL_POS, false, 0,
			  "bound each sharding ILP (default 30 s)"},
	[O_TRACE] = {"trace", 0, TOOL_STR, "FILE", TOOL_ANY, false, 0,
		     "write a Chrome trace (Perfetto) of the step"},
	[O_TRACE_DETAIL] = {"trace-detail", 0, TOOL_STR, "stage|layer|gpu", TOOL_ANY, false, 0,
			    "trace events per task (default), per layer and collective, or that "
			    "on every GPU"},
	[O_SVG_TIMELINE] = {"svg-timeline", 0, TOOL_STR, "FILE", TOOL_ANY, false, 0,
			    "write the pipeline schedule as SVG"},
	[O_SVG_MESH] = {"svg-mesh", 0, TOOL_STR, "FILE", TOOL_ANY, false, 0,
			"write the cluster and each stage's sub-mesh as SVG"},
	[O_SVG_MEMORY] = {"svg-memory", 0, TOOL_STR, "FILE", TOOL_ANY, false, 0,
			  "write the memory of each stage by kind as SVG"},
	[O_OUTPUT] = {"output", 'o', TOOL_STR, "PLAN.xml", TOOL_ANY, false, 0, "write the plan"},
	[O_JSON] = {"json", 0, TOOL_FLAG, NULL, TOOL_ANY, false, 0, "one JSON object on stdout"},
	[O_HELP] = {"help", 'h', TOOL_FLAG, NULL, TOOL_ANY, false, 0, "this text"},
};

static void usage(FILE *f)
{
	fputs("usage: meshplan simulate PLAN.xml [--trace FILE] [--svg-* FILE] [--json] [-o PLAN.xml]\n"
	      "       meshplan simulate MODEL --cluster C [--nodes N] --batch GLOBAL\n"
	      "                 --manual dp=D,tp=T,pp=P,mbs=B[,v=V][,recompute=none|selective|full]\n"
	      "                          [,zero=0|1|2|3][,schedule=gpipe|1f1b|interleaved]\n"
	      "                          [,overlap=default|none|grad-reduce+param-gather+tp]\n"
	      "                          [,sp=0|1][,layers=A:B:C...][,shard=megatron|ilp]\n"
	      "                          [,method=ilp|data|zero2|zero3|heuristic|expert]\n"
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
	      "(schedule interleaved, microbatches a multiple of P).\n"
	      "Layers: the transformer layers split evenly over the P*V stages, the embedding\n"
	      "joining the first and the head the last; when P*V does not divide them,\n"
	      "embedding and head count as one layer each and the layers + 2 split as evenly\n"
	      "as possible, stages 1, 2, .. taking one more (Megatron-Core's account-for-\n"
	      "embedding/loss-in-pipeline-split).  layers=A:B:C.. gives the transformer layers\n"
	      "of each stage instead (P*V numbers; the first and last may be 0).\n"
	      "Sharding (shard=megatron, the default): Megatron-LM's own layout, column- then\n"
	      "row-parallel linears, attention heads over T, vocabulary-parallel embedding\n"
	      "and loss, the batch over D, ZeRO exactly as given (zero=0 gradients\n"
	      "all-reduced, 1 distributed optimizer, 2 gradients sharded too, 3 FSDP: weights\n"
	      "sharded and gathered per use; a dim D does not divide is padded).  sp=1 adds\n"
	      "sequence parallelism: all-gathers and reduce-scatters instead of all-reduces,\n"
	      "norm and dropout activations split over T.  shard=ilp lets the intra-op ILP\n"
	      "choose each stage's sharding on its D x T mesh (zero forces that much\n"
	      "sharding, 0 leaves it to the ILP).\n"
	      "overlap: communication run beside compute on each device's communication stream\n"
	      "(default: grad-reduce+param-gather, gradient reductions in buckets during the\n"
	      "last backward as DDP does, ZeRO-3 weight all-gathers prefetched a layer ahead;\n"
	      "tp also hides tensor-parallel collectives; none: every collective blocks).\n"
	      "method: shard the stages by the intra-op pass with this method (ilp, or the\n"
	      "baselines of meshplan shard --method) instead of Megatron's layout.\n"
	      "A solve stopped by --time-limit keeps the best sharding found.\n\noptions:\n", f);
	tool_opts_help(f, opts, NOPT);
	fputs("\nExit: 0 the plan fits in memory, 1 it does not (the report says fits=false) or no\n"
	      "sharding was found, 2 bad input.\n", f);
}

typedef struct {
	long dp, tp, pp, mbs, v, zero, sp;
	IrRecompute recompute;
	IrSchedule schedule;
	bool schedule_set;
	PassMethod method;
	PassShard shard;
	int nsplit;
	int split[PASS_MAX_SPLIT];
	unsigned overlap;
} Manual;

/* "A:B:C" into m->split; -1 with why. */
static int parse_split(const char *v, Manual *m, char *why, size_t n)
{
	char buf[1024];
	snprintf(buf, sizeof buf, "%s", v);
	m->nsplit = 0;
	char *save = NULL;
	for (char *t = strtok_r(buf, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
		long x;
		if (!tool_parse_int(t, &x) || x < 0 || x > 1 << 20 || m->nsplit == PASS_MAX_SPLIT) {
			snprintf(why, n, "--manual: layers=%s is not up to %d layer counts A:B:C..", v,
				 PASS_MAX_SPLIT);
			return -1;
		}
		m->split[m->nsplit++] = (int)x;
	}
	if (!m->nsplit) {
		snprintf(why, n, "--manual: layers= needs layer counts A:B:C..");
		return -1;
	}
	return 0;
}

static int parse_manual(const char *text, Manual *m, char *why, size_t n)
{
	memset(m, 0, sizeof *m);
	m->v = 1;
	m->schedule = IR_SCHED_1F1B;
	m->shard = PASS_SHARD_MEGATRON;
	m->overlap = IR_OVERLAP_DEFAULT;
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
			    !strcmp(k, "v") ? &m->v : !strcmp(k, "zero") ? &m->zero :
			    !strcmp(k, "sp") ? &m->sp : NULL;
		if (num) {
			bool z = num == &m->zero || num == &m->sp;
			long hi = num == &m->zero ? 3 : num == &m->sp ? 1 : 1 << 20;
			if (!tool_parse_int(v, num) || *num < (z ? 0 : 1) || *num > hi) {
				snprintf(why, n, "--manual: %s=%s is not %s", k, v,
					 num == &m->zero ? "0, 1, 2 or 3" :
					 num == &m->sp	 ? "0 or 1" :
							   "a positive integer");
				return -1;
			}
		} else if (!strcmp(k, "layers")) {
			if (parse_split(v, m, why, n))
				return -1;
		} else if (!strcmp(k, "shard")) {
			if (!strcmp(v, "megatron")) {
				m->shard = PASS_SHARD_MEGATRON;
			} else if (!strcmp(v, "ilp")) {
				m->shard = PASS_SHARD_METHOD;
				m->method = PASS_ILP;
			} else {
				snprintf(why, n, "--manual: shard=%s is not megatron or ilp", v);
				return -1;
			}
		} else if (!strcmp(k, "recompute")) {
			if (ir_recompute_parse(v, &m->recompute)) {
				snprintf(why, n, "--manual: recompute=%s is not none, selective or full", v);
				return -1;
			}
		} else if (!strcmp(k, "method")) {
			if (pass_method_parse(v, &m->method)) {
				snprintf(why, n, "--manual: method=%s is not ilp, data, zero2, zero3, "
					 "heuristic or expert", v);
				return -1;
			}
			m->shard = PASS_SHARD_METHOD;
		} else if (!strcmp(k, "overlap")) {
			if (ir_overlap_parse(v, &m->overlap)) {
				snprintf(why, n, "--manual: overlap=%s is not default, none or a + list "
					 "of grad-reduce, param-gather, tp", v);
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
				 "zero, schedule, sp, layers, shard, method, overlap)", k);
			return -1;
		}
	}
	if (!m->dp || !m->tp || !m->pp || !m->mbs) {
		snprintf(why, n, "--manual needs dp, tp, pp and mbs");
		return -1;
	}
	if (m->sp && m->shard != PASS_SHARD_MEGATRON) {
		snprintf(why, n, "--manual: sp=1 is part of Megatron's layout (shard=megatron)");
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
/* Output                                                               */

static void print_table(const IrGraph *g, const IrCluster *c, const IrPlan *p,
			const SimResult *r, const Manual *m)
{
	const double GiB = 1073741824.0;
	printf("%s on %s, %d GPUs", p->model, c->name, r->ngpus);
	if (m)
		printf(": dp %ld x tp %ld x pp %ld, mbs %ld, %s%s", m->dp, m->tp, m->pp, m->mbs,
		       m->shard == PASS_SHARD_MEGATRON ? "megatron layout" :
							 pass_method_name(m->method),
		       m->sp ? ", sequence parallel" : "");
	printf("\n  batch %lld = %d microbatch%s of %lld, %s", (long long)p->global_batch,
	       p->nmicro, p->nmicro == 1 ? "" : "es", (long long)p->microbatch,
	       ir_schedule_name(p->schedule));
	if (p->chunks > 1)
		printf(" (v=%d)", p->chunks);
	char ov[64];
	printf(", recompute %s, zero %d as planned, overlap %s, attention %s\n",
	       ir_recompute_name(p->recompute), p->zero, ir_overlap_name(p->overlap, ov, sizeof ov),
	       g->fused_attention ? "fused" : "eager");
	if (p->nstages > 1) {
		/* transformer layers per stage, embedding and head aside */
		printf("  layers per stage  ");
		for (int i = 0; i < p->nstages; i++) {
			const IrStagePlan *s = &p->stages[i];
			int n = s->last_layer - s->first_layer + 1 - (s->first_layer == 0) -
				(s->last_layer == g->nlayers - 1);
			printf("%s%d", i ? ":" : "", n);
		}
		printf("  (embedding with the first, head with the last)\n");
	}
	printf("  step time         %.4f s (pipeline %.4f s, bubble %.1f%%)\n", r->step_time_s,
	       r->tl.span_s, 100 * r->bubble_fraction);
	tool_print_step_summary(c, r);
	printf("\n  %-5s %-22s %-4s %-13s %-7s %-4s %9s %9s %11s %9s %8s %8s\n", "stage",
	       "layers", "rank", "mesh", "logical", "ZeRO", "fwd ms", "bwd ms", "sync+opt ms",
	       "xfer ms", "state GiB", "act GiB");
	for (int i = 0; i < r->nstages; i++) {
		const IrStagePlan *s = &p->stages[i];
		const SimStageCost *sc = &r->stage[i];
		char layers[64], mesh[32], lg[16];
		tool_stage_labels(g, s, layers, mesh, lg);
		printf("  %-5d %-22s %-4d %-13s %-7s %-4d %9.3f %9.3f %11.3f %9.3f %8.2f %8.3f\n", i,
		       layers, i % r->nranks, mesh, lg, tool_stage_zero(g, s, &sc->mem),
		       sc->fwd_s * 1e3, sc->bwd_s * 1e3, sc->step_s * 1e3,
		       r->xfer_s[i] * 1e3,
		       (sc->mem.weight_bytes + sc->mem.grad_bytes + sc->mem.opt_bytes) / GiB,
		       sc->mem.act_bytes / GiB);
	}
}

/* ------------------------------------------------------------------ */

typedef struct {
	const char *target, *cluster, *manual, *trace, *out;
	const char *svg_timeline, *svg_mesh, *svg_memory, *trace_detail;
	long nodes, batch;
	double time_limit;
	bool json;
	IrParamSet ps;
} Args;

static int finish(const Args *a, const IrGraph *g, const IrCluster *c, IrPlan *p,
		  SimResult *r, const Manual *m)
{
	ToolOutputs to = {.plan = a->out, .trace = a->trace, .svg_timeline = a->svg_timeline,
			  .svg_mesh = a->svg_mesh, .svg_memory = a->svg_memory};
	int code = tool_trace_detail(VERB, a->trace_detail, &to);
	if (!code)
		code = tool_write_all(VERB, g, c, p, r, &to);
	if (code)
		return code;
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

int tool_manual_plan(const char *model, const IrParamSet *ps, const IrCluster *c,
		     const char *cluster_spec, int64_t batch, const char *keys, double time_limit,
		     IrPlan *plan, IrGraph *g, SimResult *r, IrError *e)
{
	Manual m;
	char why[256];
	ir_plan_init(plan);
	memset(g, 0, sizeof *g);
	if (parse_manual(keys, &m, why, sizeof why))
		return ir_fail(e, "", 0, "%s", why), EXIT_BADINPUT;
	PassManual pm = {.dp = (int)m.dp, .tp = (int)m.tp, .pp = (int)m.pp, .mbs = m.mbs,
			 .v = (int)m.v, .schedule = m.schedule, .recompute = m.recompute,
			 .zero = (int)m.zero, .method = m.method, .shard = m.shard,
			 .sp = m.sp != 0, .nsplit = m.nsplit};
	memcpy(pm.split, m.split, sizeof pm.split);
	if (pass_manual_check(c, &pm, batch, why, sizeof why))
		return ir_fail(e, "", 0, "%s", why), EXIT_BADINPUT;
	plan->overlap = m.overlap;
	plan->params = *ps;
	ir_params_set(&plan->params, "batch", m.dp * m.mbs);
	if (tool_load_training_graph(model, &plan->params, g, e))
		return EXIT_BADINPUT;
	int S = (int)(m.pp * m.v), solves = 0;
	int *first = malloc(sizeof(int) * (size_t)S), *last = malloc(sizeof(int) * (size_t)S);
	if (!first || !last)
		abort();
	int bad = m.nsplit && m.nsplit != S ?
			  snprintf(why, sizeof why, "layers= gives %d stages but pp*v = %d", m.nsplit,
				   S) :
			  pass_megatron_split(g, S, m.nsplit ? m.split : NULL, first, last, why,
					      sizeof why);
	free(first);
	free(last);
	if (bad) {
		ir_graph_free(g);
		return ir_fail(e, "", 0, "--manual: %s", why), EXIT_BADINPUT;
	}
	plan->model = ir_strdup(&plan->arena, model);
	plan->cluster = ir_strdup(&plan->arena, cluster_spec);
	plan->nodes = c->nodes;
	if (pass_manual_plan(g, c, &pm, batch, time_limit, 0, true, plan, r, &solves, e)) {
		static const char pre[] = "no sharding: ";
		size_t k = sizeof pre - 1, len = strnlen(e->msg, sizeof e->msg - 1 - k);
		memmove(e->msg + k, e->msg, len);
		memcpy(e->msg, pre, k);
		e->msg[k + len] = 0;
		ir_graph_free(g);
		return EXIT_INFEASIBLE;
	}
	if (getenv("MESHPLAN_SIM_VERBOSE"))
		fprintf(stderr, "meshplan simulate: %d intra-op solves\n", solves);
	return 0;
}

static int simulate_manual(const Args *a)
{
	IrError e;
	if (!a->cluster || !a->batch)
		return tool_error(VERB, EXIT_BADINPUT, "--manual needs --cluster and --batch");
	IrCluster c;
	if (ir_cluster_load(a->cluster, (int)a->nodes, &c, &e))
		return tool_input_error(&e);
	IrPlan plan;
	IrGraph g;
	SimResult r;
	int code = tool_manual_plan(a->target, &a->ps, &c, a->cluster, a->batch, a->manual,
				    a->time_limit, &plan, &g, &r, &e);
	if (code == EXIT_BADINPUT && e.file[0]) /* the model file's own error */
		code = tool_input_error(&e);
	else if (code)
		code = tool_error(VERB, code, "%s", e.msg);
	if (!code) {
		Manual m;
		char why[8];
		parse_manual(a->manual, &m, why, sizeof why);
		code = finish(a, &g, &c, &plan, &r, &m);
		sim_result_free(&r);
		ir_graph_free(&g);
	}
	ir_cluster_free(&c);
	ir_plan_free(&plan);
	return code;
}

int cmd_simulate(int argc, char **argv)
{
	Args a;
	memset(&a, 0, sizeof a);
	ToolVal v[NOPT];
	const char *pos[1];
	int npos;
	ToolCmdLine cl = {.verb = VERB, .opts = opts, .nopts = NOPT, .maxpos = 1, .params = &a.ps, .usage = usage};
	int code;
	if (tool_opts_done(&cl, argc, argv, v, pos, &npos, &code))
		return code;
	a.target = npos ? pos[0] : NULL;
	a.cluster = v[O_CLUSTER].str;
	a.manual = v[O_MANUAL].str;
	a.trace = v[O_TRACE].str;
	a.svg_timeline = v[O_SVG_TIMELINE].str;
	a.svg_mesh = v[O_SVG_MESH].str;
	a.svg_memory = v[O_SVG_MEMORY].str;
	a.trace_detail = v[O_TRACE_DETAIL].str;
	a.out = v[O_OUTPUT].str;
	a.nodes = (long)v[O_NODES].num;
	a.batch = (long)v[O_BATCH].num;
	a.json = v[O_JSON].set;
	/* per ILP solve: a binding memory budget can make GLPK search long */
	a.time_limit = v[O_TIME_LIMIT].set ? v[O_TIME_LIMIT].num : 30;
	if (!a.target) {
		tool_error(VERB, EXIT_BADINPUT, "name a plan file or a model (see --help)");
		return EXIT_BADINPUT;
	}
	if (a.manual)
		return simulate_manual(&a);
	if (a.cluster || a.batch || a.ps.n)
		return tool_error(VERB, EXIT_BADINPUT,
				  "--cluster, --batch and --set go with --manual (a plan file has them)");
	return simulate_file(&a);
}
