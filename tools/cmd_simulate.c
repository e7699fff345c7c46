/*
 * cmd_simulate.c -- `meshplan simulate`: one training step of a plan on a
 * described cluster.  The plan comes from a file, or is written the way
 * people write them by hand (--manual dp=,tp=,pp=,mbs=...): pp stages of
 * equal layers, each on a dp x tp logical mesh whose sharding the intra-op
 * ILP chooses.
 */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "runtime-sim/sim.h"
#include "tools/tools.h"

static const char *VERB = "simulate";

enum {
	O_CLUSTER, O_NODES, O_BATCH, O_MANUAL, O_SET, O_TIME_LIMIT, O_TRACE, O_OUTPUT, O_JSON,
	O_HELP, NOPT
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
	[O_OUTPUT] = {"output", 'o', TOOL_STR, "PLAN.xml", TOOL_ANY, false, 0, "write the plan"},
	[O_JSON] = {"json", 0, TOOL_FLAG, NULL, TOOL_ANY, false, 0, "one JSON object on stdout"},
	[O_HELP] = {"help", 'h', TOOL_FLAG, NULL, TOOL_ANY, false, 0, "this text"},
};

static void usage(FILE *f)
{
	fputs("usage: meshplan simulate PLAN.xml [--trace FILE] [--json] [-o PLAN.xml]\n"
	      "       meshplan simulate MODEL --cluster C [--nodes N] --batch GLOBAL\n"
	      "                 --manual dp=D,tp=T,pp=P,mbs=B[,v=V][,recompute=none|selective|full]\n"
	      "                          [,zero=0|1|2|3][,schedule=gpipe|1f1b|interleaved]\n"
	      "                          [,overlap=default|none|grad-reduce+param-gather+tp]\n"
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
	      "(schedule interleaved, microbatches a multiple of P).  Layers are split evenly,\n"
	      "the first and last (embedding, head) joining the first and last stage.\n"
	      "overlap: communication run beside compute on each device's communication stream\n"
	      "(default: grad-reduce+param-gather, gradient reductions in buckets during the\n"
	      "last backward as DDP does, ZeRO-3 weight all-gathers prefetched a layer ahead;\n"
	      "tp also hides tensor-parallel collectives; none: every collective blocks).\n"
	      "method: how each stage is sharded on its mesh (default ilp; the others are the\n"
	      "baselines of meshplan shard --method).\n"
	      "A solve stopped by --time-limit keeps the best sharding found.\n\noptions:\n", f);
	tool_opts_help(f, opts, NOPT);
	fputs("\nExit: 0 the plan fits in memory, 1 it does not (the report says fits=false) or no\n"
	      "sharding was found, 2 bad input.\n", f);
}

typedef struct {
	long dp, tp, pp, mbs, v, zero;
	IrRecompute recompute;
	IrSchedule schedule;
	bool schedule_set;
	PassMethod method;
	unsigned overlap;
} Manual;

static int parse_manual(const char *text, Manual *m, char *why, size_t n)
{
	memset(m, 0, sizeof *m);
	m->v = 1;
	m->schedule = IR_SCHED_1F1B;
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
		} else if (!strcmp(k, "method")) {
			if (pass_method_parse(v, &m->method)) {
				snprintf(why, n, "--manual: method=%s is not ilp, data, zero2, zero3, "
					 "heuristic or expert", v);
				return -1;
			}
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
				 "zero, schedule, method, overlap)", k);
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
	char ov[64];
	printf(", recompute %s, zero %d, overlap %s, attention %s\n",
	       ir_recompute_name(p->recompute), p->zero, ir_overlap_name(p->overlap, ov, sizeof ov),
	       g->fused_attention ? "fused" : "eager");
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
		tool_stage_labels(g, s, layers, mesh, lg);
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
		return tool_error(VERB, EXIT_BADINPUT, "%s", why);
	if (!a->cluster || !a->batch)
		return tool_error(VERB, EXIT_BADINPUT, "--manual needs --cluster and --batch");
	IrCluster c;
	if (ir_cluster_load(a->cluster, (int)a->nodes, &c, &e))
		return tool_input_error(&e);
	PassManual pm = {.dp = (int)m.dp, .tp = (int)m.tp, .pp = (int)m.pp, .mbs = m.mbs,
			 .v = (int)m.v, .schedule = m.schedule, .recompute = m.recompute,
			 .zero = (int)m.zero, .method = m.method};
	if (pass_manual_check(&c, &pm, a->batch, why, sizeof why)) {
		ir_cluster_free(&c);
		return tool_error(VERB, EXIT_BADINPUT, "%s", why);
	}
	IrPlan plan;
	ir_plan_init(&plan);
	plan.overlap = m.overlap;
	plan.params = a->ps;
	ir_params_set(&plan.params, "batch", m.dp * m.mbs);
	IrGraph g;
	if (tool_load_training_graph(a->target, &plan.params, &g, &e)) {
		ir_cluster_free(&c);
		ir_plan_free(&plan);
		return tool_input_error(&e);
	}
	int code = EXIT_OK, S = (int)(m.pp * m.v), solves = 0;
	if (S > g.nlayers) {
		code = tool_error(VERB, EXIT_BADINPUT,
				  "pp*v = %d stages but the model has %d layers", S, g.nlayers);
	} else {
		plan.model = ir_strdup(&plan.arena, a->target);
		plan.cluster = ir_strdup(&plan.arena, a->cluster);
		plan.nodes = c.nodes;
		SimResult r;
		if (pass_manual_plan(&g, &c, &pm, a->batch, a->time_limit, 0, true, &plan, &r, &solves,
				     &e)) {
			code = tool_error(VERB, EXIT_INFEASIBLE, "no sharding: %s", e.msg);
		} else {
			code = finish(a, &g, &c, &plan, &r, &m);
			sim_result_free(&r);
		}
	}
	if (getenv("MESHPLAN_SIM_VERBOSE"))
		fprintf(stderr, "meshplan simulate: %d intra-op solves\n", solves);
	ir_graph_free(&g);
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
	ToolCmdLine cl = {.verb = VERB, .opts = opts, .nopts = NOPT, .maxpos = 1, .params = &a.ps};
	int code = tool_opts_parse(&cl, argc, argv, v, pos, &npos);
	if (code)
		return code;
	if (v[O_HELP].set) {
		usage(stdout);
		return EXIT_OK;
	}
	a.target = npos ? pos[0] : NULL;
	a.cluster = v[O_CLUSTER].str;
	a.manual = v[O_MANUAL].str;
	a.trace = v[O_TRACE].str;
	a.out = v[O_OUTPUT].str;
	a.nodes = (long)v[O_NODES].num;
	a.batch = (long)v[O_BATCH].num;
	a.json = v[O_JSON].set;
	/* per ILP solve: a binding memory budget can make GLPK search long */
	a.time_limit = v[O_TIME_LIMIT].set ? v[O_TIME_LIMIT].num : 30;
	if (!a.target) {
		tool_error(VERB, EXIT_BADINPUT, "name a plan file or a model");
		usage(stderr);
		return EXIT_BADINPUT;
	}
	if (a.manual)
		return simulate_manual(&a);
	if (a.cluster || a.batch || a.ps.n)
		return tool_error(VERB, EXIT_BADINPUT,
				  "--cluster, --batch and --set go with --manual (a plan file has them)");
	return simulate_file(&a);
}
