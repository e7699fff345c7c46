/*
 * cmd_export.c -- `meshplan export PLAN.xml --to megatron|deepspeed|dtensor`:
 * a plan as what a training engine consumes.
 *
 * megatron: Megatron-LM command-line arguments.  The plan must be one
 * Megatron-LM can run: one dp x tp mesh for every stage, a 1F1B or
 * interleaved schedule, middle stages of equal layers, and in every stage
 * exactly the sharding of Megatron-LM's own layout (passes/megatron.c,
 * with or without sequence parallelism), which is rebuilt for the plan's
 * dp, tp, pp, microbatch and layer split and compared op by op.
 * deepspeed: a DeepSpeed JSON config: the same check with tp = 1 (ZeRO
 * data parallelism, DeepSpeed's pipeline engine for pp > 1).
 * dtensor: each weight's PyTorch DTensor placements per mesh dim and the
 * device mesh of its stage (docs/formats.md); every plan has one.
 * A plan an engine cannot run is one line naming the stage and why, exit 1.
 */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "tools/tools.h"

static const char *VERB = "export";

enum { O_TO, O_OUT, O_HELP, NOPT };

static const ToolOpt opts[NOPT] = {
	[O_TO] = {"to", 0, TOOL_STR, "megatron|deepspeed|dtensor", TOOL_ANY, false, 0,
		  "the engine (required)"},
	[O_OUT] = {"out", 'o', TOOL_STR, "FILE", TOOL_ANY, false, 0,
		   "write here (default: stdout)"},
	[O_HELP] = {"help", 'h', TOOL_FLAG, NULL, TOOL_ANY, false, 0, "this text"},
};

static void usage(FILE *f)
{
	fputs("usage: meshplan export PLAN.xml --to megatron|deepspeed|dtensor [-o FILE]\n"
	      "\n"
	      "  megatron   Megatron-LM arguments (parallel sizes, sequence parallelism, batch,\n"
	      "             recomputation, distributed optimizer, overlap, model shape)\n"
	      "  deepspeed  a DeepSpeed JSON config (batch, ZeRO, precision, checkpointing, pipeline)\n"
	      "  dtensor    JSON: each weight's DTensor placements and its stage's device mesh\n"
	      "A plan the engine cannot run (stage meshes that differ, uneven middle stages, a\n"
	      "sharding the engine has no equivalent for) is refused with the stage and why\n"
	      "(exit 1); `compile --target megatron|deepspeed` finds plans that export.\n\noptions:\n",
	      f);
	tool_opts_help(f, opts, NOPT);
}

/* A plan read with its cluster and training graph. */
typedef struct Loaded {
	IrPlan p;
	IrCluster c;
	IrGraph g;
} Loaded;

/* What an engine needs of a plan in Megatron-LM's layout. */
typedef struct Layout {
	int dp, tp, pp, v;
	int64_t mbs;
	bool sp;
	int split[PASS_MAX_SPLIT]; /* transformer layers per stage */
} Layout;

static int transformer_layers(const IrGraph *g, const IrStagePlan *s)
{
	int n = s->last_layer - s->first_layer + 1;
	n -= s->first_layer == 0;
	n -= s->last_layer == g->nlayers - 1;
	return n;
}

/* Whether stage i of ref and p shard alike; else why into why. */
static bool same_stage(const IrGraph *g, const IrStagePlan *a, const IrStagePlan *b, char *why,
		       size_t n)
{
	if (a->nops != b->nops) {
		snprintf(why, n, "%d ops where Megatron-LM's layout has %d", a->nops, b->nops);
		return false;
	}
	for (int k = 0; k < a->nops; k++) {
		if (a->op[k] != b->op[k]) {
			snprintf(why, n, "holds op '%s' where Megatron-LM's layout has '%s'",
				 g->ops[a->op[k]].name, g->ops[b->op[k]].name);
			return false;
		}
		if (strcmp(a->strategy[k], b->strategy[k])) {
			snprintf(why, n, "op '%s' is sharded '%s' where Megatron-LM's layout has '%s'",
				 g->ops[a->op[k]].name, a->strategy[k][0] ? a->strategy[k] : "replicated",
				 b->strategy[k][0] ? b->strategy[k] : "replicated");
			return false;
		}
	}
	return true;
}

/*
 * The plan as Megatron-LM's layout (engine "Megatron-LM" or "DeepSpeed"):
 * 0 with L filled, or EXIT_INFEASIBLE after printing which stage and why.
 */
static int megatron_layout(const Loaded *ld, const char *engine, bool deepspeed, Layout *L)
{
	const IrPlan *p = &ld->p;
	const IrGraph *g = &ld->g;
	const IrStagePlan *s0 = &p->stages[0];
	memset(L, 0, sizeof *L);
	L->dp = s0->n0;
	L->tp = s0->n1;
	L->v = p->chunks > 0 ? p->chunks : 1;
	for (int i = 1; i < p->nstages; i++) {
		const IrStagePlan *s = &p->stages[i];
		if (s->n0 != s0->n0 || s->n1 != s0->n1)
			return tool_error(VERB, EXIT_INFEASIBLE,
					  "stage %d: mesh %dx%d where stage 0 has %dx%d: %s runs one "
					  "mesh shape for all stages",
					  i, s->n0, s->n1, s0->n0, s0->n1, engine);
	}
	if (p->nstages % L->v)
		return tool_error(VERB, EXIT_INFEASIBLE, "stage %d: %d stages are not %d chunks per "
					   "pipeline rank", p->nstages - 1, p->nstages, L->v);
	L->pp = p->nstages / L->v;
	if (p->schedule == IR_SCHED_GPIPE)
		return tool_error(VERB, EXIT_INFEASIBLE, "stage 0: the GPipe schedule: %s runs 1F1B",
				  engine);
	if (p->microbatch % L->dp)
		return tool_error(VERB, EXIT_INFEASIBLE, "stage 0: microbatch %lld does not split over "
					   "dp %d", (long long)p->microbatch, L->dp);
	L->mbs = p->microbatch / L->dp;
	if (p->nstages > PASS_MAX_SPLIT)
		return tool_error(VERB, EXIT_INFEASIBLE, "stage %d: more than %d stages",
				  PASS_MAX_SPLIT, PASS_MAX_SPLIT);
	for (int i = 0; i < p->nstages; i++)
		L->split[i] = transformer_layers(g, &p->stages[i]);
	/* middle stages even; only the first and last may differ (Megatron-LM's
	 * --decoder-first/last-pipeline-num-layers), and only without chunks */
	for (int i = 1; i + 1 < p->nstages; i++)
		if (L->split[i] != L->split[1] || (L->v > 1 && L->split[i] != L->split[0]))
			return tool_error(VERB, EXIT_INFEASIBLE,
					  "stage %d: %d layers where stage %d has %d: %s needs even "
					  "middle stages",
					  i, L->split[i], L->v > 1 ? 0 : 1, L->split[L->v > 1 ? 0 : 1],
					  engine);
	if (deepspeed) {
		if (L->tp > 1)
			return tool_error(VERB, EXIT_INFEASIBLE,
					  "stage 0: tensor parallelism over %d GPUs: DeepSpeed's engine "
					  "has none (export --to megatron)", L->tp);
		if (L->v > 1)
			return tool_error(VERB, EXIT_INFEASIBLE, "stage 0: %d model chunks per rank: "
					   "DeepSpeed's pipeline has no interleaving", L->v);
		if (L->pp > 1 && p->zero > 1)
			return tool_error(VERB, EXIT_INFEASIBLE, "stage 0: ZeRO stage %d with a pipeline: "
					   "DeepSpeed's pipeline engine takes ZeRO 0 or 1", p->zero);
		if (p->recompute == IR_RECOMP_SELECTIVE)
			return tool_error(VERB, EXIT_INFEASIBLE, "stage 0: selective recomputation: "
					   "DeepSpeed checkpoints whole layers only");
	}
	/* Megatron-LM's layout for these sizes, with and without sequence
	 * parallelism, against the plan's */
	char why[512] = "";
	int bad = 0;
	for (int sp = 0; sp < 2; sp++) {
		if (sp && L->tp == 1)
			break;
		PassManual m = {.dp = L->dp, .tp = L->tp, .pp = L->pp, .mbs = L->mbs, .v = L->v,
				.schedule = p->schedule, .recompute = p->recompute, .zero = p->zero,
				.shard = PASS_SHARD_MEGATRON, .sp = sp, .nsplit = p->nstages};
		memcpy(m.split, L->split, sizeof(int) * (size_t)p->nstages);
		IrPlan ref;
		ir_plan_init(&ref);
		IrError e;
		if (pass_megatron_plan(g, &ld->c, &m, p->global_batch, &ref, &e)) {
			snprintf(why, sizeof why, "%s", e.msg);
			bad = 0;
			ir_plan_free(&ref);
			continue;
		}
		bool same = true;
		for (int i = 0; i < p->nstages && same; i++)
			if (!same_stage(g, &p->stages[i], &ref.stages[i], why, sizeof why))
				same = false, bad = i;
		ir_plan_free(&ref);
		if (same) {
			L->sp = sp;
			return 0;
		}
	}
	return tool_error(VERB, EXIT_INFEASIBLE, "stage %d: %s", bad, why);
}

/* A model parameter's value, 0 if the model has none. */
static int64_t model_param(const IrModelDoc *m, const IrPlan *p, const char *name)
{
	int64_t v = 0;
	IrError e;
	if (!m || ir_model_param(m, &p->params, name, &v, &e))
		return 0;
	return v;
}

static IrDType weight_dtype(const IrGraph *g)
{
	for (int t = 0; t < g->ntensors; t++)
		if (g->tensors[t].role == IR_T_WEIGHT)
			return g->tensors[t].dtype;
	return IR_BF16;
}

static void megatron_args(FILE *f, const Loaded *ld, const Layout *L)
{
	const IrPlan *p = &ld->p;
	IrError e;
	IrModelDoc *m = ir_model_open(p->model, &e);
	fprintf(f, "# Megatron-LM arguments for %s on %d GPUs (dp %d x tp %d x pp %d)\n", p->model,
		L->dp * L->tp * L->pp, L->dp, L->tp, L->pp);
	fprintf(f, "--tensor-model-parallel-size %d\n", L->tp);
	fprintf(f, "--pipeline-model-parallel-size %d\n", L->pp);
	if (L->v > 1)
		fprintf(f, "--num-layers-per-virtual-pipeline-stage %d\n", L->split[0]);
	/* uneven first or last stage: both named, the middle ones even (checked) */
	int S = p->nstages;
	bool even = true;
	for (int i = 1; i < S; i++)
		even = even && L->split[i] == L->split[0];
	if (!even) {
		fprintf(f, "--decoder-first-pipeline-num-layers %d\n", L->split[0]);
		fprintf(f, "--decoder-last-pipeline-num-layers %d\n", L->split[S - 1]);
	}
	if (L->sp)
		fprintf(f, "--sequence-parallel\n");
	fprintf(f, "--micro-batch-size %lld\n", (long long)L->mbs);
	fprintf(f, "--global-batch-size %lld\n", (long long)p->global_batch);
	if (p->recompute == IR_RECOMP_FULL)
		fprintf(f, "--recompute-granularity full\n--recompute-method uniform\n"
			   "--recompute-num-layers 1\n");
	else if (p->recompute == IR_RECOMP_SELECTIVE)
		fprintf(f, "--recompute-granularity selective\n");
	if (p->zero == 1)
		fprintf(f, "--use-distributed-optimizer\n");
	else if (p->zero >= 2)
		fprintf(f, "--use-megatron-fsdp\n--data-parallel-sharding-strategy %s\n",
			p->zero == 2 ? "optim_grads" : "optim_grads_params");
	if (p->overlap & IR_OVERLAP_GRAD_REDUCE)
		fprintf(f, "--overlap-grad-reduce\n");
	if ((p->overlap & IR_OVERLAP_PARAM_GATHER) && p->zero >= 1)
		fprintf(f, "--overlap-param-gather\n");
	if (p->overlap & IR_OVERLAP_TP)
		fprintf(f, "--tp-comm-overlap\n");
	IrDType dt = weight_dtype(&ld->g);
	if (dt == IR_BF16)
		fprintf(f, "--bf16\n");
	else if (dt == IR_F16)
		fprintf(f, "--fp16\n");
	int64_t layers = 0;
	for (int i = 0; i < p->nstages; i++)
		layers += L->split[i];
	fprintf(f, "--num-layers %lld\n", (long long)layers);
	int64_t hidden = model_param(m, p, "hidden"), heads = model_param(m, p, "heads");
	int64_t kv = model_param(m, p, "kv_heads"), ffn = model_param(m, p, "ffn");
	int64_t seq = model_param(m, p, "seq"), experts = model_param(m, p, "experts");
	if (hidden)
		fprintf(f, "--hidden-size %lld\n", (long long)hidden);
	if (heads)
		fprintf(f, "--num-attention-heads %lld\n", (long long)heads);
	if (kv && heads && kv != heads)
		fprintf(f, "--group-query-attention\n--num-query-groups %lld\n", (long long)kv);
	if (ffn)
		fprintf(f, "--ffn-hidden-size %lld\n", (long long)ffn);
	if (seq)
		fprintf(f, "--seq-length %lld\n--max-position-embeddings %lld\n", (long long)seq,
			(long long)seq);
	if (experts)
		fprintf(f, "--num-experts %lld\n", (long long)experts);
	if (ld->g.fused_attention)
		fprintf(f, "--attention-backend flash\n");
	ir_model_close(m);
}

static json_t *deepspeed_config(const Loaded *ld, const Layout *L)
{
	const IrPlan *p = &ld->p;
	json_t *o = json_object();
	json_object_set_new(o, "train_batch_size", json_integer(p->global_batch));
	json_object_set_new(o, "train_micro_batch_size_per_gpu", json_integer(L->mbs));
	json_object_set_new(o, "gradient_accumulation_steps", json_integer(p->nmicro));
	IrDType dt = weight_dtype(&ld->g);
	json_t *prec = json_object();
	json_object_set_new(prec, "enabled", json_true());
	json_object_set_new(o, dt == IR_F16 ? "fp16" : "bf16", prec);
	json_t *z = json_object();
	json_object_set_new(z, "stage", json_integer(p->zero));
	json_object_set_new(z, "overlap_comm", json_boolean(p->overlap & IR_OVERLAP_GRAD_REDUCE));
	json_object_set_new(z, "contiguous_gradients", json_true());
	json_object_set_new(z, "reduce_scatter", json_boolean(p->zero >= 2));
	json_object_set_new(o, "zero_optimization", z);
	if (p->recompute == IR_RECOMP_FULL) {
		json_t *a = json_object();
		json_object_set_new(a, "partition_activations", json_false());
		json_object_set_new(a, "contiguous_memory_optimization", json_false());
		json_object_set_new(o, "activation_checkpointing", a);
	}
	if (L->pp > 1) {
		json_t *pp = json_object();
		json_object_set_new(pp, "stages", json_integer(L->pp));
		json_object_set_new(pp, "partition", json_string("uniform"));
		json_object_set_new(pp, "activation_checkpoint_interval",
				    json_integer(p->recompute == IR_RECOMP_FULL ? 1 : 0));
		json_object_set_new(o, "pipeline", pp);
	}
	return o;
}

/* Axes (bit 0: mesh dim 0, bit 1: mesh dim 1) label c is split over in
 * strategy s ("b=0,h=1,f=01"). */
static int label_axes(const char *s, char c)
{
	for (const char *q = s; *q; q++)
		if (*q == c && q[1] == '=' && (q == s || q[-1] == ',')) {
			int bits = 0;
			for (q += 2; *q == '0' || *q == '1'; q++)
				bits |= *q == '0' ? 1 : 2;
			return bits;
		}
	return 0;
}

static json_t *dtensor_map(const Loaded *ld)
{
	const IrPlan *p = &ld->p;
	const IrGraph *g = &ld->g;
	json_t *o = json_object();
	json_t *stages = json_array();
	for (int i = 0; i < p->nstages; i++) {
		const IrStagePlan *s = &p->stages[i];
		json_t *st = json_object();
		json_t *mesh = json_array();
		json_array_append_new(mesh, json_integer(s->n0));
		json_array_append_new(mesh, json_integer(s->n1));
		json_object_set_new(st, "mesh_shape", mesh);
		char sub[64];
		snprintf(sub, sizeof sub, "%dx%d@n%dg%d", s->mesh.nnodes, s->mesh.ngpus, s->mesh.node0,
			 s->mesh.gpu0);
		json_object_set_new(st, "devices", json_string(sub));
		json_array_append_new(stages, st);
	}
	json_object_set_new(o, "stages", stages);
	json_t *w = json_object();
	/* each weight: its first forward reader's sharding of the weight's dims */
	for (int i = 0; i < p->nstages; i++) {
		const IrStagePlan *s = &p->stages[i];
		for (int k = 0; k < s->nops; k++) {
			const IrOp *op = &g->ops[s->op[k]];
			if (op->phase != IR_FWD)
				continue;
			for (int a = 0; a < op->nin; a++) {
				const IrTensor *t = &g->tensors[op->in[a]];
				if (t->role != IR_T_WEIGHT || json_object_get(w, t->name))
					continue;
				json_t *e = json_object();
				json_object_set_new(e, "stage", json_integer(i));
				json_t *pl = json_array();
				for (int md = 0; md < 2; md++) {
					int d = -1;
					for (int dd = 0; dd < t->ndim && d < 0; dd++)
						if (label_axes(s->strategy[k], op->lab[a][dd]) & (1 << md))
							d = dd;
					char buf[32];
					snprintf(buf, sizeof buf, d < 0 ? "Replicate()" : "Shard(%d)", d);
					json_array_append_new(pl, json_string(buf));
				}
				json_object_set_new(e, "placements", pl);
				json_t *shape = json_array();
				for (int dd = 0; dd < t->ndim; dd++)
					json_array_append_new(shape, json_integer(t->dim[dd]));
				json_object_set_new(e, "shape", shape);
				json_object_set_new(w, t->name, e);
			}
		}
	}
	json_object_set_new(o, "weights", w);
	json_object_set_new(o, "format", json_string("meshplan-dtensor-1"));
	json_object_set_new(o, "model", json_string(p->model));
	return o;
}

int cmd_export(int argc, char **argv)
{
	ToolVal v[NOPT];
	const char *pos[1];
	int npos;
	ToolCmdLine cl = {.verb = VERB, .opts = opts, .nopts = NOPT, .maxpos = 1, .usage = usage};
	int code;
	if (tool_opts_done(&cl, argc, argv, v, pos, &npos, &code))
		return code;
	const char *to = v[O_TO].str;
	if (!npos || !to) {
		tool_error(VERB, EXIT_BADINPUT, !npos ? "name a plan file" : "--to is required");
		usage(stderr);
		return EXIT_BADINPUT;
	}
	int kind = !strcmp(to, "megatron") ? 0 : !strcmp(to, "deepspeed") ? 1 :
		   !strcmp(to, "dtensor") ? 2 : -1;
	if (kind < 0)
		return tool_error(VERB, EXIT_BADINPUT, "--to %s: megatron, deepspeed or dtensor", to);
	Loaded ld;
	IrError e;
	if (ir_plan_read(pos[0], &ld.p, &e))
		return tool_input_error(&e);
	if (ir_cluster_load(ld.p.cluster, ld.p.nodes, &ld.c, &e)) {
		ir_plan_free(&ld.p);
		return tool_input_error(&e);
	}
	if (tool_load_training_graph(ld.p.model, &ld.p.params, &ld.g, &e)) {
		ir_cluster_free(&ld.c);
		ir_plan_free(&ld.p);
		return tool_input_error(&e);
	}
	Layout L;
	code = kind == 2 ? EXIT_OK :
			   megatron_layout(&ld, kind ? "DeepSpeed" : "Megatron-LM", kind == 1, &L);
	/* -o: written atomically; else on stdout */
	IrOutput o = {.f = stdout};
	const char *out = v[O_OUT].str;
	if (!code && out && ir_output_open(&o, out, &e))
		code = tool_input_error(&e);
	if (!code) {
		if (kind == 0) {
			megatron_args(o.f, &ld, &L);
		} else {
			json_t *j = kind == 1 ? deepspeed_config(&ld, &L) : dtensor_map(&ld);
			json_dumpf(j, o.f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			fputc('\n', o.f);
			json_decref(j);
		}
		if (out ? ir_output_commit(&o, &e) : fflush(stdout) != 0 || ferror(stdout))
			code = tool_error(VERB, EXIT_INFEASIBLE, "%s", out ? e.msg : "writing stdout failed");
	}
	ir_graph_free(&ld.g);
	ir_cluster_free(&ld.c);
	ir_plan_free(&ld.p);
	return code;
}
