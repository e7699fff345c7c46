/*
 * cmd_explain.c -- `meshplan explain PLAN.xml`: why a compiled plan is as
 * it is, from what compile recorded in the plan file (no search re-run).
 *
 * Per stage: its parallelism in familiar words (data, tensor, sequence and
 * expert parallel degrees, ZeRO stage, recomputation), derived from the
 * ops' strategies and the stage's memory; per op: its sharding in words and
 * the alternatives the intra-op ILP had, with compute, communication and
 * resharding cost; for the stage cut: the inter-op search's alternatives,
 * each with its step-time estimate, memory, and why it lost.  The plan is
 * simulated (model and cluster loaded) so that the ILP's costs are shown
 * beside the simulator's stage times.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tools/tools.h"

static const char *VERB = "explain";

enum { O_STAGE, O_OP, O_JSON, O_HELP, NOPT };

static const ToolOpt opts[NOPT] = {
	[O_STAGE] = {"stage", 0, TOOL_INT, "K", 0, false, 1 << 20, false, 0,
		     "only stage K (from 0)"},
	[O_OP] = {"op", 0, TOOL_STR, "NAME", TOOL_ANY, false, 0,
		  "only op NAME (block3/fc1, or fc1 for every layer's), with every alternative"},
	[O_JSON] = {"json", 0, TOOL_FLAG, NULL, TOOL_ANY, false, 0, "one JSON object on stdout"},
	[O_HELP] = {"help", 'h', TOOL_FLAG, NULL, TOOL_ANY, false, 0, "this text"},
};

static void usage(FILE *f)
{
	fputs("usage: meshplan explain PLAN.xml [--stage K] [--op NAME] [--json]\n"
	      "\n"
	      "Why the plan is as it is, from what `meshplan compile` recorded in it: per\n"
	      "stage the parallelism in familiar words (data, tensor, sequence, expert\n"
	      "parallel, ZeRO, recomputation) and the devices; per op its sharding and the\n"
	      "alternatives the intra-op ILP had, with compute, communication and resharding\n"
	      "cost per step; for the stage cut the inter-op search's alternatives (other\n"
	      "stage counts, sub-mesh views, recomputation modes, microbatch sizes) with\n"
	      "step time, memory and why each lost.  Plans written without these records\n"
	      "are explained as far as their stages allow.\n\noptions:\n",
	      f);
	tool_opts_help(f, opts, NOPT);
}

/* ------------------------------------------------------------------ */
/* Labels in words                                                      */

typedef enum { K_BATCH, K_SEQ, K_COLUMN, K_ROW, K_EXPERT, K_PARTIAL, K_OTHER, NKINDS } Kind;

static const char *const kind_words[NKINDS] = {
	"batch", "sequence", "output features (column-parallel)",
	"input features (row-parallel, partial sums)", "experts",
	"contracted dim (partial sums)", "dim",
};

/* Size of label c in op (0 if absent). */
static int64_t label_size(const IrGraph *g, const IrOp *op, char c)
{
	for (int k = 0; k < op->nin + op->nout; k++) {
		const char *p = strchr(op->lab[k], c);
		if (p && c) {
			int t = k < op->nin ? op->in[k] : op->out[k - op->nin];
			return g->tensors[t].dim[p - op->lab[k]];
		}
	}
	return 0;
}

/* Operand holding the weight (an input WEIGHT, or a WGRAD output), -1. */
static int weight_operand(const IrGraph *g, const IrOp *op)
{
	for (int k = 0; k < op->nin; k++)
		if (g->tensors[op->in[k]].role == IR_T_WEIGHT)
			return k;
	if (op->nout && g->tensors[op->out[0]].role == IR_T_WGRAD)
		return op->nin;
	return -1;
}

static Kind classify(const IrGraph *g, const IrOp *op, char c)
{
	int w = weight_operand(g, op);
	bool in_out = op->nout && strchr(op->lab[op->nin], c);
	bool in_w = w >= 0 && strchr(op->lab[w], c);
	bool in_act = false;
	for (int k = 0; k < op->nin; k++)
		if (k != w && strchr(op->lab[k], c))
			in_act = true;
	if (in_w && w < op->nin) {
		if (in_out && in_act)
			return K_EXPERT;
		return in_out ? K_COLUMN : K_ROW;
	}
	if (in_w) /* the weight gradient's dims */
		return K_COLUMN;
	int64_t n = label_size(g, op, c);
	if (n == g->batch && (!in_out || op->lab[op->nin][0] == c || op->lab[0][0] == c))
		return K_BATCH;
	if (g->seq > 1 && n == g->seq)
		return K_SEQ;
	return in_out ? K_OTHER : K_PARTIAL;
}

static int axes_size(const IrStagePlan *s, int axes)
{
	return (axes & 1 ? s->n0 : 1) * (axes & 2 ? s->n1 : 1);
}

/* Parses "b=0,h=1,a=01" into per-label axes; returns the count. */
static int parse_strategy(const char *st, char *lab, int *axes, int max)
{
	int n = 0;
	for (const char *p = st; p && *p && n < max;) {
		if (p[1] != '=')
			break;
		lab[n] = p[0];
		axes[n] = !strncmp(p + 2, "01", 2) ? 3 : p[2] == '0' ? 1 : 2;
		n++;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return n;
}

/* Degrees per kind of op's strategy st on stage s (1 = not split). */
static void strategy_degrees(const IrGraph *g, const IrOp *op, const IrStagePlan *s,
			     const char *st, int deg[NKINDS])
{
	for (int k = 0; k < NKINDS; k++)
		deg[k] = 1;
	char lab[32];
	int axes[32];
	int n = parse_strategy(st, lab, axes, 32);
	for (int i = 0; i < n; i++)
		deg[classify(g, op, lab[i])] *= axes_size(s, axes[i]);
}

/* The sharding in words: "batch 2 ways (axis 0), output features
 * (column-parallel) 4 ways (axis 1)", or "replicated". */
static const char *strategy_words(const IrGraph *g, const IrOp *op, const IrStagePlan *s,
				  const char *st, bool weight, char *buf, size_t size)
{
	char lab[32];
	int axes[32];
	int n = parse_strategy(st, lab, axes, 32);
	size_t o = 0;
	buf[0] = 0;
	for (int i = 0; i < n && o < size; i++) {
		Kind k = classify(g, op, lab[i]);
		const char *ax = axes[i] == 3 ? "both axes" : axes[i] == 1 ? "axis 0" : "axis 1";
		if (k == K_OTHER || k == K_PARTIAL)
			o += (size_t)snprintf(buf + o, size - o, "%s%s '%c' %d ways (%s)",
					      o ? ", " : "", kind_words[k], lab[i],
					      axes_size(s, axes[i]), ax);
		else
			o += (size_t)snprintf(buf + o, size - o, "%s%s %d ways (%s)", o ? ", " : "",
					      weight && (k == K_COLUMN || k == K_ROW) ? "weight dim" :
					      kind_words[k], axes_size(s, axes[i]), ax);
	}
	if (!n)
		snprintf(buf, size, "replicated (every device does it whole)");
	return buf;
}

/* ------------------------------------------------------------------ */
/* A stage's parallelism                                                */

typedef struct {
	int data, tensor, expert, seq_split; /* degrees (1: none) */
	bool seq_parallel;                   /* norms/elementwise split over the sequence */
	int zero;                            /* 0..3 as the memory shows it */
	double fw, fg, fo;                   /* ways weights, gradients, optimizer state are split */
} Parallel;

/* The most common degree by FLOPs. */
static int mode_of(const double *w, int n)
{
	int best = 1;
	for (int d = 1; d < n; d++)
		if (w[d] > w[best])
			best = d;
	return best;
}

static void stage_parallel(const IrGraph *g, const IrStagePlan *s, const SimStageMemory *m,
			   Parallel *p)
{
	memset(p, 0, sizeof *p);
	int nd = s->n0 * s->n1 + 1;
	double *wd = calloc((size_t)nd, sizeof(double)), *wt = calloc((size_t)nd, sizeof(double));
	if (!wd || !wt)
		abort();
	p->expert = p->seq_split = 1;
	for (int i = 0; i < s->nops; i++) {
		const IrOp *op = &g->ops[s->op[i]];
		if (op->phase != IR_FWD)
			continue;
		int deg[NKINDS];
		strategy_degrees(g, op, s, s->strategy[i], deg);
		if (op->kind == IR_EINSUM && weight_operand(g, op) >= 0) {
			int t = deg[K_COLUMN] * deg[K_ROW];
			if (deg[K_BATCH] < nd)
				wd[deg[K_BATCH]] += op->flops + 1;
			if (t < nd)
				wt[t] += op->flops + 1;
			if (deg[K_EXPERT] > p->expert)
				p->expert = deg[K_EXPERT];
			if (deg[K_SEQ] > p->seq_split)
				p->seq_split = deg[K_SEQ];
		} else if (op->kind != IR_EINSUM && deg[K_SEQ] > 1) {
			p->seq_parallel = true;
		}
	}
	p->data = mode_of(wd, nd);
	p->tensor = mode_of(wt, nd);
	free(wd);
	free(wt);
	double W = 0, G = 0, O = 0;
	for (int t = 0; t < g->ntensors; t++) {
		const IrTensor *x = &g->tensors[t];
		if (x->layer < s->first_layer || x->layer > s->last_layer)
			continue;
		double b = ir_tensor_bytes(x);
		W += x->role == IR_T_WEIGHT && x->producer < 0 ? b : 0; /* not updated copies */
		G += x->role == IR_T_WGRAD ? b : 0;
		O += x->role == IR_T_OPT ? b : 0;
	}
	p->fw = m->weight_bytes > 0 ? W / m->weight_bytes : 1;
	p->fg = m->grad_bytes > 0 ? G / m->grad_bytes : 1;
	p->fo = m->opt_bytes > 0 ? O / m->opt_bytes : 1;
	/* ZeRO: model state split beyond the model-parallel split */
	double mp = 1.05 * p->tensor * p->expert;
	p->zero = p->fw > mp ? 3 : p->fg > mp && p->fo > mp ? 2 : p->fo > mp ? 1 : 0;
}

int tool_stage_zero(const IrGraph *g, const IrStagePlan *s, const SimStageMemory *m)
{
	Parallel par;
	stage_parallel(g, s, m, &par);
	return par.zero;
}

static const char *parallel_words(const Parallel *p, IrRecompute rc, char *buf, size_t n)
{
	size_t o = 0;
	buf[0] = 0;
#define ADD(...) o += (size_t)snprintf(buf + o, o < n ? n - o : 0, __VA_ARGS__)
	if (p->data > 1)
		ADD("data parallel %d", p->data);
	if (p->tensor > 1)
		ADD("%stensor parallel %d", o ? " + " : "", p->tensor);
	if (p->seq_parallel && p->tensor > 1)
		ADD(" + sequence parallel");
	if (p->seq_split > 1)
		ADD("%ssequence split %d (context parallel)", o ? " + " : "", p->seq_split);
	if (p->expert > 1)
		ADD("%sexpert parallel %d", o ? " + " : "", p->expert);
	if (!o)
		ADD("no split of the work (one device, or every device repeats it)");
	if (p->zero)
		ADD(" + ZeRO-%d", p->zero);
	if (rc != IR_RECOMP_NONE)
		ADD(", %s recomputation", ir_recompute_name(rc));
#undef ADD
	return buf;
}

static const char *devices_words(const IrStagePlan *s, char *buf, size_t n)
{
	if (s->mesh.nnodes == 1)
		snprintf(buf, n, "node %d, GPU%s %d%s%.0d", s->mesh.node0, s->mesh.ngpus > 1 ? "s" : "",
			 s->mesh.gpu0, s->mesh.ngpus > 1 ? "-" : "",
			 s->mesh.ngpus > 1 ? s->mesh.gpu0 + s->mesh.ngpus - 1 : 0);
	else
		snprintf(buf, n, "nodes %d-%d, %d GPUs each", s->mesh.node0,
			 s->mesh.node0 + s->mesh.nnodes - 1, s->mesh.ngpus);
	return buf;
}

/* ------------------------------------------------------------------ */
/* Ops                                                                  */

/* The op's name without its layer's prefix ("fc1" of "block3/fc1"). */
static const char *short_name(const IrGraph *g, const IrOp *op)
{
	const char *ln = op->layer >= 0 ? g->layers[op->layer].name : NULL;
	size_t n = ln ? strlen(ln) : 0;
	if (ln && !strncmp(op->name, ln, n) && op->name[n] == '/')
		return op->name + n + 1;
	return op->name;
}

static bool op_matches(const IrGraph *g, const IrOp *op, const char *want)
{
	return !want || !strcmp(op->name, want) || !strcmp(short_name(g, op), want);
}

static double alt_total(const IrAlt *a) { return a->compute_s + a->comm_s + a->reshard_s; }

static json_t *alt_json(const IrAlt *a)
{
	return json_pack("{s:s,s:f,s:f,s:f,s:f,s:f}", "strategy", a->strategy ? a->strategy : "",
			 "compute_s", a->compute_s, "comm_s", a->comm_s, "reshard_s", a->reshard_s,
			 "total_s", alt_total(a), "memory_bytes", a->mem_bytes);
}

static json_t *why_json(const IrGraph *g, const IrStagePlan *s, const IrOpWhy *w)
{
	const IrOp *op = &g->ops[w->op];
	char words[512];
	json_t *alts = json_array();
	for (int k = 0; k < w->nalt; k++) {
		json_t *a = alt_json(&w->alt[k]);
		json_object_set_new(a, "sharding", json_string(strategy_words(
			g, op, s, w->alt[k].strategy, w->weight, words, sizeof words)));
		json_array_append_new(alts, a);
	}
	json_t *c = alt_json(&w->chosen);
	json_object_set_new(c, "reshard_in_s", json_real(w->reshard_in_s));
	return json_pack("{s:s,s:i,s:b,s:s,s:i,s:o,s:o}", "name", op->name, "op", w->op,
			 "weight", w->weight, "sharding",
			 strategy_words(g, op, s, w->chosen.strategy, w->weight, words, sizeof words),
			 "strategies", w->nstrat, "chosen", c, "alternatives", alts);
}

static void print_why(FILE *f, const IrGraph *g, const IrStagePlan *s, const IrOpWhy *w)
{
	const IrOp *op = &g->ops[w->op];
	char words[512];
	fprintf(f, "    %s%s: %s\n", w->weight ? "weight read by " : "", op->name,
	       strategy_words(g, op, s, w->chosen.strategy, w->weight, words, sizeof words));
	fprintf(f, "      %-34s %10s %10s %10s %10s %9s\n", "strategy (label=mesh axes)", "compute ms",
	       "comm ms", "reshard ms", "total ms", "state MiB");
	const IrAlt *rows[1 + IR_MAX_WHY_ALTS];
	int n = 0;
	rows[n++] = &w->chosen;
	for (int k = 0; k < w->nalt && n < 1 + IR_MAX_WHY_ALTS; k++)
		rows[n++] = &w->alt[k];
	for (int k = 0; k < n; k++) {
		const IrAlt *a = rows[k];
		char label[64];
		snprintf(label, sizeof label, "%s%s", *a->strategy ? a->strategy : "(replicated)",
			 k ? "" : "  chosen");
		fprintf(f, "      %-34s %10.4f %10.4f %10.4f %10.4f %9.1f", label, a->compute_s * 1e3,
		       a->comm_s * 1e3, a->reshard_s * 1e3, alt_total(a) * 1e3,
		       a->mem_bytes / 1048576.0);
		if (k)
			fprintf(f, "  %+.1f%%", 100 * (alt_total(a) / fmax(alt_total(&w->chosen), 1e-30) - 1));
		fprintf(f, "\n");
	}
	fprintf(f, "      (%d strategies in all; costs per step, the rest of the stage as chosen)\n",
	       w->nstrat);
}

/* Forward ops of a stage, each op's name once per run of layers with the
 * same short name and strategy: "block0..block23  fc1  <words>". */
static void print_ops(FILE *f, const IrGraph *g, const IrStagePlan *s)
{
	fprintf(f, "  %-22s %-14s %s\n", "layers", "op", "sharding");
	bool *done = calloc((size_t)s->nops + 1, sizeof(bool));
	if (!done)
		abort();
	for (int i = 0; i < s->nops; i++) {
		const IrOp *op = &g->ops[s->op[i]];
		if (done[i] || op->phase != IR_FWD)
			continue;
		const char *sn = short_name(g, op);
		int last = i, count = 0;
		for (int j = i; j < s->nops; j++) {
			const IrOp *o2 = &g->ops[s->op[j]];
			if (!done[j] && o2->phase == IR_FWD && !strcmp(short_name(g, o2), sn) &&
			    !strcmp(s->strategy[j], s->strategy[i])) {
				done[j] = true;
				last = j;
				count++;
			}
		}
		char layers[64], words[512];
		const char *l0 = op->layer >= 0 ? g->layers[op->layer].name : "-";
		const IrOp *ol = &g->ops[s->op[last]];
		const char *l1 = ol->layer >= 0 ? g->layers[ol->layer].name : "-";
		if (count > 1)
			snprintf(layers, sizeof layers, "%s..%s (%d)", l0, l1, count);
		else
			snprintf(layers, sizeof layers, "%s", sn == op->name ? "-" : l0);
		fprintf(f, "  %-22s %-14s %s\n", layers, sn,
		       strategy_words(g, op, s, s->strategy[i], false, words, sizeof words));
	}
	free(done);
}

/* ------------------------------------------------------------------ */
/* Stages                                                               */

typedef struct {
	double compute, comm, reshard;
} Sums;

static Sums why_sums(const IrStagePlan *s)
{
	Sums u = {0, 0, 0};
	for (int i = 0; i < s->nwhy; i++) {
		u.compute += s->why[i].chosen.compute_s;
		u.comm += s->why[i].chosen.comm_s;
		u.reshard += s->why[i].reshard_in_s;
	}
	return u;
}

/* The simulator's time of the stage per step, without recomputation:
 * nmicro x (forward + backward) + the once-per-step work. */
static double sim_stage_step(const IrPlan *p, const SimResult *r, int q)
{
	const SimStageCost *c = &r->stage[q];
	return p->nmicro * (c->fwd_s + c->bwd_s - c->recompute_s) + c->step_s;
}

/* The simulator's stage time per microbatch: forward + backward + the
 * once-per-step work over the microbatches. */
static double sim_stage_time(const IrPlan *p, const SimResult *r, int q)
{
	const SimStageCost *c = &r->stage[q];
	return c->fwd_s + c->bwd_s + c->step_s / p->nmicro;
}

static json_t *stage_json(const IrGraph *g, const IrPlan *p, const SimResult *r, int q,
			  const char *op_name)
{
	const IrStagePlan *s = &p->stages[q];
	Parallel par;
	stage_parallel(g, s, &r->stage[q].mem, &par);
	char words[256], layers[64], mesh[32], lg[16], dev[64];
	tool_stage_labels(g, s, layers, mesh, lg);
	Sums u = why_sums(s);
	json_t *ops = json_array();
	for (int i = 0; i < s->nwhy; i++)
		if (op_matches(g, &g->ops[s->why[i].op], op_name))
			json_array_append_new(ops, why_json(g, s, &s->why[i]));
	json_t *o = json_pack(
		"{s:i,s:s,s:s,s:s,s:s,s:s,s:{s:i,s:i,s:b,s:i,s:i,s:i,s:s,s:f,s:f,s:f},s:b,s:o}",
		"stage", q, "layers", layers, "sub_mesh", mesh, "logical", lg, "devices",
		devices_words(s, dev, sizeof dev), "parallelism",
		parallel_words(&par, p->recompute, words, sizeof words), "degrees", "data",
		par.data, "tensor", par.tensor, "sequence_parallel", par.seq_parallel, "sequence_split",
		par.seq_split, "expert", par.expert, "zero", par.zero, "recompute",
		ir_recompute_name(p->recompute), "weight_split", par.fw, "grad_split", par.fg,
		"optimizer_split", par.fo, "recorded", s->nwhy > 0, "ops", ops);
	json_t *fwd = json_array();
	for (int i = 0; i < s->nops; i++) {
		const IrOp *op = &g->ops[s->op[i]];
		char w[512];
		if (op->phase == IR_FWD && op_matches(g, op, op_name))
			json_array_append_new(fwd, json_pack("{s:s,s:s,s:s}", "name", op->name,
				"strategy", s->strategy[i],
				"sharding", strategy_words(g, op, s, s->strategy[i], false, w, sizeof w)));
	}
	json_object_set_new(o, "forward_ops", fwd);
	json_object_set_new(o, "simulated_stage_time_s", json_real(sim_stage_time(p, r, q)));
	json_object_set_new(o, "search_stage_time_s", q < p->search.nstage_s ?
			    json_real(p->search.stage_s[q]) : json_null());
	if (s->nwhy)
		json_object_set_new(o, "costs_per_step", json_pack(
			"{s:f,s:f,s:f,s:f,s:f,s:f}", "compute_s", u.compute, "comm_s", u.comm,
			"reshard_s", u.reshard, "sum_s", u.compute + u.comm + u.reshard, "ilp_s",
			s->ilp_s, "simulated_s", sim_stage_step(p, r, q)));
	return o;
}

static void print_stage(FILE *f, const IrGraph *g, const IrPlan *p, const SimResult *r, int q,
			const char *op_name)
{
	const IrStagePlan *s = &p->stages[q];
	const double GiB = 1073741824.0;
	Parallel par;
	stage_parallel(g, s, &r->stage[q].mem, &par);
	char words[256], layers[64], mesh[32], lg[16], dev[64];
	tool_stage_labels(g, s, layers, mesh, lg);
	fprintf(f, "\nstage %d: layers %s on %s (%s), logical mesh %s\n", q, layers, mesh,
	       devices_words(s, dev, sizeof dev), lg);
	fprintf(f, "  parallelism   %s\n", parallel_words(&par, p->recompute, words, sizeof words));
	const SimStageMemory *m = &r->stage[q].mem;
	fprintf(f, "  model state   weights split %.3g ways, gradients %.3g, optimizer state %.3g: "
	       "%.2f + %.2f + %.2f GiB per device, activations %.2f GiB\n",
	       par.fw, par.fg, par.fo, m->weight_bytes / GiB, m->grad_bytes / GiB,
	       m->opt_bytes / GiB, m->act_bytes / GiB);
	if (q < p->search.nstage_s)
		fprintf(f, "  stage time    %.2f ms per microbatch as the search priced it (forward + "
		       "backward + once-per-step work / %d); simulated %.2f ms\n",
		       p->search.stage_s[q] * 1e3, p->nmicro, sim_stage_time(p, r, q) * 1e3);
	if (!s->nwhy) {
		fprintf(f, "  the ILP's choices were not recorded in this plan (written before explain, "
		       "or laid out by rule); shardings as planned:\n");
	} else {
		Sums u = why_sums(s);
		fprintf(f, "  cost per step compute %.2f ms + communication %.2f ms + resharding %.2f ms "
		       "= %.2f ms (the ILP's objective %.2f ms)\n",
		       u.compute * 1e3, u.comm * 1e3, u.reshard * 1e3,
		       (u.compute + u.comm + u.reshard) * 1e3, s->ilp_s * 1e3);
		double sim = sim_stage_step(p, r, q);
		fprintf(f, "                the simulator: %d x (forward + backward%s) + once-per-step "
		       "work = %.2f ms%s\n",
		       p->nmicro, r->stage[q].recompute_s > 0 ? " - recomputation" : "", sim * 1e3,
		       fabs(s->ilp_s - sim) > 0.01 * sim ?
			       " (the ILP prices each op as its own kernel; the simulator fuses "
			       "elementwise ops into their producers and counts dropout masks)" : "");
	}
	if (op_name) {
		int shown = 0, more = 0;
		for (int i = 0; i < s->nwhy; i++) {
			if (!op_matches(g, &g->ops[s->why[i].op], op_name))
				continue;
			if (shown < 3) {
				print_why(f, g, s, &s->why[i]);
				shown++;
			} else {
				more++;
			}
		}
		if (more)
			fprintf(f, "    (%d more records of '%s': meshplan explain --json shows them)\n", more,
			       op_name);
		if (!shown)
			fprintf(f, "    '%s' has no record in this stage (an op that follows its input's "
			       "layout, or not in the stage)\n", op_name);
	} else {
		print_ops(f, g, s);
	}
}

/* ------------------------------------------------------------------ */
/* The stage cut                                                        */

static const char *verdict(const IrPlanSearch *x, const IrSearchAlt *a, char *buf, size_t n)
{
	const double GiB = 1073741824.0;
	if (!a->fits && a->mem_bytes > x->device_bytes)
		snprintf(buf, n, "does not fit (%.1f GiB > %.1f GiB)", a->mem_bytes / GiB,
			 x->device_bytes / GiB);
	else if (!a->fits)
		snprintf(buf, n, "does not fit");
	else if (a->step_s > x->estimate_s * (1 + 1e-9))
		snprintf(buf, n, "slower by %.1f%%", 100 * (a->step_s / x->estimate_s - 1));
	else if (a->step_s < x->estimate_s * (1 - 1e-9))
		snprintf(buf, n, "estimated faster, but a per-layer estimate: slower once solved "
			 "whole");
	else
		snprintf(buf, n, "as fast (a tie)");
	return buf;
}

/* What replaced the DP's pipeline (IrPlanSearch.from), in words. */
static const char *from_words(const char *from)
{
	static const struct {
		const char *from, *words;
	} w[] = {
		{"dp+zero-1", "the DP's pipeline, re-sharded with the optimizer state split (ZeRO-1), "
			      "simulated faster"},
		{"dp+zero-2", "the DP's pipeline, re-sharded with gradients and optimizer state split "
			      "(ZeRO-2), simulated faster"},
		{"uniform", "a Megatron-style neighbour (equal stages, one dp x tp mesh shape), "
			    "simulated faster than the DP's pipeline"},
		{"grid", "the best hand-written dp x tp x pp plan in Megatron-LM's layout, simulated "
			 "faster than the DP's pipeline"},
		{"expert", "the best hand-written data + expert parallel plan (DeepSpeed-MoE style), "
			   "simulated faster than the DP's pipeline"},
	};
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
		if (!strcmp(from, w[i].from))
			return w[i].words;
	return "the DP's pipeline";
}

static json_t *search_json(const IrPlanSearch *x)
{
	if (!x->from)
		return json_pack("{s:b}", "recorded", 0);
	json_t *alts = json_array();
	for (int i = 0; i < x->nalt; i++) {
		const IrSearchAlt *a = &x->alt[i];
		char v[128];
		json_array_append_new(alts, json_pack("{s:s,s:s,s:o,s:f,s:b,s:s}", "what", a->what,
			"layout", a->layout, "step_s",
			isfinite(a->step_s) ? json_real(a->step_s) : json_null(), "memory_bytes",
			a->mem_bytes, "fits", a->fits, "verdict",
			i ? verdict(x, a, v, sizeof v) : "chosen"));
	}
	return json_pack("{s:b,s:s,s:f,s:f,s:o,s:o}", "recorded", 1, "from", x->from,
			 "estimate_s", x->estimate_s, "device_bytes", x->device_bytes, "cut",
			 x->cut ? json_string(x->cut) : json_null(), "alternatives", alts);
}

static void print_search(FILE *f, const IrPlan *p, const SimResult *r)
{
	const IrPlanSearch *x = &p->search;
	const double GiB = 1073741824.0;
	fprintf(f, "\nstage cut (the inter-op DP and the search around it)\n");
	if (!x->from) {
		fprintf(f, "  not recorded in this plan (written before explain, or not compiled)\n");
		return;
	}
	fprintf(f, "  chosen        %s; the DP estimated %.4g s per step, the simulator says %.4g s\n",
	       from_words(x->from), x->estimate_s, r->step_time_s);
	if (x->cut)
		fprintf(f, "  the search was cut short by --time-limit: this is the best plan found by "
		       "then\n");
	fprintf(f, "  %-34s %10s %9s  %s\n", "alternative", "step s", "mem GiB", "why not");
	for (int i = 0; i < x->nalt; i++) {
		const IrSearchAlt *a = &x->alt[i];
		char v[128], st[32], mem[32];
		snprintf(st, sizeof st, isfinite(a->step_s) ? "%.4g" : "-", a->step_s);
		snprintf(mem, sizeof mem, a->mem_bytes > 0 ? "%.2f" : "-", a->mem_bytes / GiB);
		fprintf(f, "  %-34s %10s %9s  %s\n", a->what, st, mem, i ? verdict(x, a, v, sizeof v) :
		       "chosen by the DP");
		if (*a->layout)
			fprintf(f, "  %-34s %s\n", "", a->layout);
	}
}

/* ------------------------------------------------------------------ */

void tool_explain_print(FILE *f, const IrGraph *g, const IrCluster *c, const IrPlan *p,
			const SimResult *r, int only, const char *op_name)
{
	fprintf(f, "%s on %s, %d GPUs: %d stage%s, batch %lld = %d microbatch%s of %lld, %s, "
		"recompute %s; simulated step %.4f s\n",
		p->model, c->name, r->ngpus, p->nstages, p->nstages == 1 ? "" : "s",
		(long long)p->global_batch, p->nmicro, p->nmicro == 1 ? "" : "es",
		(long long)p->microbatch, ir_schedule_name(p->schedule),
		ir_recompute_name(p->recompute), r->step_time_s);
	for (int q = 0; q < p->nstages; q++)
		if (only < 0 || q == only)
			print_stage(f, g, p, r, q, op_name);
	if (!op_name)
		print_search(f, p, r);
}

int cmd_explain(int argc, char **argv)
{
	ToolVal v[NOPT];
	const char *pos[1];
	int npos;
	ToolCmdLine cl = {.verb = VERB, .opts = opts, .nopts = NOPT, .maxpos = 1, .usage = usage};
	int code;
	if (tool_opts_done(&cl, argc, argv, v, pos, &npos, &code))
		return code;
	if (npos != 1) {
		tool_error(VERB, EXIT_BADINPUT, "needs PLAN.xml");
		usage(stderr);
		return EXIT_BADINPUT;
	}
	IrError e;
	memset(&e, 0, sizeof e);
	IrPlan p;
	IrCluster c;
	IrGraph g;
	SimResult r;
	if (tool_plan_simulate(pos[0], 0, &p, &c, &g, &r, &e))
		return tool_input_error(&e);
	int only = v[O_STAGE].set ? (int)v[O_STAGE].num : -1;
	const char *op_name = v[O_OP].str;
	if (only >= p.nstages) {
		code = tool_error(VERB, EXIT_BADINPUT, "--stage %d: the plan has stages 0..%d", only,
				  p.nstages - 1);
	} else if (v[O_JSON].set) {
		json_t *st = json_array();
		for (int q = 0; q < p.nstages; q++)
			if (only < 0 || q == only)
				json_array_append_new(st, stage_json(&g, &p, &r, q, op_name));
		tool_print_json(json_pack("{s:s,s:s,s:i,s:I,s:I,s:i,s:s,s:i,s:f,s:o,s:o}", "model",
			p.model, "cluster", p.cluster, "gpus", r.ngpus, "global_batch",
			(json_int_t)p.global_batch, "microbatch", (json_int_t)p.microbatch,
			"microbatches", p.nmicro, "recompute", ir_recompute_name(p.recompute), "zero",
			p.zero, "step_time_s", r.step_time_s, "stages", st, "stage_cut",
			search_json(&p.search)));
	} else {
		tool_explain_print(stdout, &g, &c, &p, &r, only, op_name);
	}
	sim_result_free(&r);
	ir_graph_free(&g);
	ir_cluster_free(&c);
	ir_plan_free(&p);
	return code;
}
