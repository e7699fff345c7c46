/*
 * cmd_provision.c -- `meshplan provision MODEL --tokens T (--deadline-days D
 * | --budget B) --cluster C ...`: the resources for a training run.  With a
 * deadline, the cheapest configuration (cluster, nodes, global batch, plan)
 * whose run under failures ends in time; with a budget, the fastest whose
 * run under failures costs no more.  Runs are judged as `estimate
 * --failures` judges them (its failure model and defaults, Young/Daly
 * checkpoints), each point compiled and simulated as `compile` does.
 *
 * Node counts are searched, not enumerated, over the counts 2^k and 3 x 2^k
 * (make_grid), on the assumption that more nodes finish sooner and cost
 * more (true while scaling is sublinear):
 *   deadline: the fewest nodes that meet it (doubling from a FLOPs lower
 *             bound until one meets it, then bisection), then the next count
 *             checked for a cheaper run;
 *   budget:   the fewest nodes that fit memory (doubling from 1, then
 *             bisection), then the most nodes within the budget (doubling,
 *             bisection), then the count below checked for a faster run.
 * Every probe is kept; where two probes contradict the assumption (more
 * nodes but slower, or cheaper) the output says so.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tools/tools.h"

static const char *VERB = "provision";

enum {
	O_TOKENS, O_DEADLINE, O_BUDGET, O_CLUSTER, O_NODES_MAX, O_BATCH, O_SET, O_POLICY, O_RUNS,
	O_SEED, O_THREADS, O_JSON, O_HELP, NOPT
};

static const ToolOpt opts[NOPT] = {
	[O_TOKENS] = {"tokens", 0, TOOL_NUM, "T", TOOL_POS, false, 0, "tokens of the whole run"},
	[O_DEADLINE] = {"deadline-days", 0, TOOL_NUM, "D", TOOL_POS, false, 0,
			"the cheapest run that ends within D days"},
	[O_BUDGET] = {"budget", 0, TOOL_NUM, "B", TOOL_POS, false, 0,
		      "or: the fastest run that costs at most B (cluster's currency)"},
	[O_CLUSTER] = {"cluster", 0, TOOL_STR, "C", TOOL_ANY, true, 0,
		       "a cluster to consider (repeat for more; zoo name or file)"},
	[O_NODES_MAX] = {"nodes-max", 0, TOOL_INT, "N", 1, false, 1 << 20, false, 0,
			 "most nodes of any cluster (default 1024)"},
	[O_BATCH] = {"batch", 0, TOOL_INT, "B", 1, false, 1e12, true, 0,
		     "global batch to consider (repeat; default: 4M tokens' worth)"},
	[O_SET] = {"set", 0, TOOL_STR, "NAME=VALUE,...", TOOL_ANY, false, 0, "model parameters"},
	[O_POLICY] = {"policy", 0, TOOL_STR, "P", TOOL_ANY, false, 0,
		      "failure recovery: restart-all (default) | failover | elastic"},
	[O_RUNS] = {"runs", 0, TOOL_INT, "N", 1, false, 100000, false, 0,
		    "Monte-Carlo runs of the failure model (32)"},
	[O_SEED] = {"seed", 0, TOOL_INT, "S", 0, false, 9.2e18, false, 0, "random seed (1)"},
	[O_THREADS] = {"threads", 0, TOOL_INT, "T", 1, false, 1024, false, 0,
		       "threads of each compile (default: one per core)"},
	[O_JSON] = {"json", 0, TOOL_FLAG, NULL, TOOL_ANY, false, 0, "one JSON object on stdout"},
	[O_HELP] = {"help", 'h', TOOL_FLAG, NULL, TOOL_ANY, false, 0, "this text"},
};

enum { PROV_MAX_LIST = 16 }; /* --cluster and --batch values */

/* The repeated options, in the order given. */
typedef struct Lists {
	const char *cluster[PROV_MAX_LIST];
	int nclusters;
	int64_t batch[PROV_MAX_LIST];
	int nbatch;
} Lists;

static int collect(void *ctx, int id, const char *value)
{
	Lists *l = ctx;
	if ((id == O_CLUSTER && l->nclusters == PROV_MAX_LIST) ||
	    (id == O_BATCH && l->nbatch == PROV_MAX_LIST))
		return tool_error(VERB, EXIT_BADINPUT, "--%s given more than %d times",
				  opts[id].name, PROV_MAX_LIST);
	if (id == O_CLUSTER)
		l->cluster[l->nclusters++] = value;
	else if (id == O_BATCH)
		l->batch[l->nbatch++] = (int64_t)strtoll(value, NULL, 10);
	return EXIT_OK;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: meshplan provision MODEL --tokens T (--deadline-days D | --budget B)\n"
		"                          --cluster C [--cluster C2 ...] [--nodes-max N]\n"
		"                          [--batch B ...] [options]\n\n"
		"Chooses the cluster, node count, global batch and plan for training MODEL on T\n"
		"tokens: with --deadline-days the cheapest run that ends in time, with --budget\n"
		"the fastest that costs no more.  Each point is compiled and simulated (as\n"
		"compile) and its run judged under failures (as estimate --failures: Llama 3's\n"
		"failure rate, Young/Daly checkpoints, the cluster's price).  Node counts\n"
		"(1, 2, 3, 4, 6, 8, 12 .. : 2^k and 3x2^k, and --nodes-max) are searched by\n"
		"doubling and bisection, assuming more nodes finish sooner and cost more; where\n"
		"probes contradict that, the output says so.  Prints the choice and the\n"
		"runners-up with why each lost.\n\n"
		"options:\n");
	tool_opts_help(f, opts, NOPT);
	fprintf(f, "\nExit: 0 a choice, 1 nothing meets the deadline or budget, 2 bad input.\n");
}

enum { PROV_MAX_GRID = 80 }; /* node counts of the search grid */

/* One probed configuration. */
typedef struct Probe {
	int cluster, nodes;
	int64_t batch;
	ToolStep st;
	ToolRun run;
	bool ok;             /* has a plan and a finished run */
	char why[600];       /* !ok: why not */
	double days, cost;   /* under failures */
} Probe;

typedef struct Prov {
	const ToolVal *v;
	const Lists *lists;
	const char *model;
	double tokens;
	bool deadline;       /* else budget */
	double limit;        /* days or money */
	int nodes_max;
	SimFailureModel fm;
	Probe *probe;
	int nprobe, cap;
	char notes[16][320]; /* non-monotone spots and other remarks */
	int nnotes;
	int grid[PROV_MAX_GRID]; /* node counts searched, ascending */
	int ngrid;
} Prov;

static void note(Prov *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(Prov *p, const char *fmt, ...)
{
	if (p->nnotes >= 16)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->notes[p->nnotes++], sizeof p->notes[0], fmt, ap);
	va_end(ap);
}

static bool meets(const Prov *p, const Probe *q)
{
	return q->ok && (p->deadline ? q->days <= p->limit : q->cost <= p->limit);
}

/* The probe of (cluster c, batch b, n nodes), compiled the first time. */
static Probe *probe(Prov *p, int c, int64_t b, int n)
{
	for (int i = 0; i < p->nprobe; i++)
		if (p->probe[i].cluster == c && p->probe[i].batch == b && p->probe[i].nodes == n)
			return &p->probe[i];
	if (p->nprobe == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 32;
		p->probe = realloc(p->probe, sizeof *p->probe * (size_t)p->cap);
		if (!p->probe)
			abort();
	}
	Probe *q = &p->probe[p->nprobe++];
	memset(q, 0, sizeof *q);
	q->cluster = c, q->batch = b, q->nodes = n;
	const ToolVal *v = p->v;
	ToolPoint pt = {.model = p->model, .set = v[O_SET].set ? v[O_SET].str : NULL,
			.cluster = p->lists->cluster[c], .nodes = n, .batch = b, .recompute = -1,
			.threads = v[O_THREADS].set ? (int)v[O_THREADS].num : 0};
	fprintf(stderr, "  provision: %s, %d nodes, batch %lld ...", pt.cluster, n, (long long)b);
	tool_point_step(&pt, NULL, &q->st);
	IrError e;
	if (q->st.status != EXIT_OK) {
		snprintf(q->why, sizeof q->why, "%s", q->st.why);
	} else if (tool_point_run(&q->st, p->tokens, &p->fm, &q->run, &e)) {
		snprintf(q->why, sizeof q->why, "%s", e.msg);
	} else {
		q->ok = true;
		q->days = tool_run_days(&q->run);
		q->cost = tool_run_cost(&q->run);
		if (!isfinite(q->cost)) {
			q->ok = false;
			snprintf(q->why, sizeof q->why, "the cluster has no price");
		}
	}
	if (q->ok)
		fprintf(stderr, " %.4g days, %.4g %s (compiled in %.1f s)\n", q->days, q->cost,
			q->st.cost.currency, q->st.compile_s);
	else
		fprintf(stderr, " no: %s\n", q->why);
	return q;
}

/*
 * The node counts searched: 2^k and 3 x 2^k (1, 2, 3, 4, 6, 8, 12, 16, 24 ..)
 * up to nodes_max, and nodes_max.  A plan uses every GPU it is given, and
 * counts with large prime factors split layers and batches badly (on
 * llama:70b, 138 A100 nodes plan slower than 128), so the search keeps to
 * counts that divide well; a sweep over other counts checks between them.
 */
static void make_grid(Prov *p)
{
	p->ngrid = 0;
	for (long v = 1; v <= p->nodes_max && p->ngrid < PROV_MAX_GRID - 1; v *= 2) {
		p->grid[p->ngrid++] = (int)v;
		if (v > 1 && 3 * v / 2 <= p->nodes_max)
			p->grid[p->ngrid++] = (int)(3 * v / 2);
	}
	if (p->grid[p->ngrid - 1] != p->nodes_max)
		p->grid[p->ngrid++] = p->nodes_max;
}

/* Index of the first grid count >= n (ngrid if none). */
static int grid_at(const Prov *p, int n)
{
	int i = 0;
	while (i < p->ngrid && p->grid[i] < n)
		i++;
	return i;
}

/* The first grid index >= lo whose count makes pred true, assuming pred is
 * monotone (false .. false true .. true): doubling the count from lo,
 * then bisection over the grid.  ngrid when the last count is false. */
typedef bool (*Pred)(Prov *p, int c, int64_t b, int n);

static int first_true(Prov *p, int c, int64_t b, int lo, Pred pred)
{
	int hi = p->ngrid - 1, bad = lo - 1, good = -1;
	for (int i = lo;; i = grid_at(p, 2 * p->grid[i]) > hi && i < hi ? hi
								      : grid_at(p, 2 * p->grid[i])) {
		if (i > hi)
			return p->ngrid;
		if (pred(p, c, b, p->grid[i])) {
			good = i;
			break;
		}
		bad = i;
		if (i >= hi)
			return p->ngrid;
	}
	while (good - bad > 1) {
		int mid = bad + (good - bad) / 2;
		if (pred(p, c, b, p->grid[mid]))
			good = mid;
		else
			bad = mid;
	}
	return good;
}

static bool fits(Prov *p, int c, int64_t b, int n)
{
	Probe *q = probe(p, c, b, n);
	return q->st.status == EXIT_OK;
}

static bool in_time(Prov *p, int c, int64_t b, int n)
{
	return meets(p, probe(p, c, b, n));
}

static bool over_budget(Prov *p, int c, int64_t b, int n)
{
	Probe *q = probe(p, c, b, n);
	return !q->ok || q->cost > p->limit;
}

/* FLOPs of training one token (forward and backward) and the lower bound
 * of nodes they need to end by the deadline at the GPUs' peak. */
static int nodes_lower_bound(Prov *p, int c, int64_t b)
{
	IrError e;
	IrParamSet ps = {0};
	if (p->v[O_SET].set && ir_params_parse(&ps, p->v[O_SET].str, &e))
		return 1;
	IrModelDoc *m = ir_model_open(p->model, &e);
	if (!m)
		return 1;
	IrGraph g;
	int rc = ir_model_training(m, &ps, 1, &g, &e);
	ir_model_close(m);
	if (rc)
		return 1;
	IrStats s;
	ir_graph_stats(&g, &s);
	double per_token = (s.fwd_flops + s.bwd_flops) / (double)(g.seq > 0 ? g.seq : 1);
	ir_graph_free(&g);
	IrCluster cl;
	if (ir_cluster_load(p->lists->cluster[c], 0, &cl, &e))
		return 1;
	double peak = cl.gpu.peak_flops[IR_BF16] * cl.gpus_per_node;
	ir_cluster_free(&cl);
	(void)b;
	double n = p->tokens * per_token / (p->limit * 86400.0 * peak);
	return n < 1 ? 1 : n > p->nodes_max ? p->nodes_max : (int)ceil(n);
}

/* Whether probes of (c, b) contradict "more nodes: sooner and dearer". */
static void check_monotone(Prov *p, int c, int64_t b)
{
	for (int i = 0; i < p->nprobe; i++) {
		const Probe *x = &p->probe[i];
		if (x->cluster != c || x->batch != b || !x->ok)
			continue;
		for (int j = 0; j < p->nprobe; j++) {
			const Probe *y = &p->probe[j];
			if (y->cluster != c || y->batch != b || !y->ok || y->nodes <= x->nodes)
				continue;
			if (y->days > x->days * (1 + 1e-9))
				note(p, "%s, batch %lld: time is not monotone in nodes: %d nodes take "
				     "%.4g days, %d nodes %.4g", p->lists->cluster[c], (long long)b,
				     x->nodes, x->days, y->nodes, y->days);
			else if (y->cost < x->cost * (1 - 1e-9))
				note(p, "%s, batch %lld: cost falls with nodes: %d nodes cost %.4g, %d "
				     "nodes %.4g", p->lists->cluster[c], (long long)b, x->nodes,
				     x->cost, y->nodes, y->cost);
		}
	}
}

/* The search on cluster c at batch b. */
static void search(Prov *p, int c, int64_t b)
{
	if (p->deadline) {
		int i = first_true(p, c, b, grid_at(p, nodes_lower_bound(p, c, b)), in_time);
		if (i + 1 < p->ngrid) /* the next count, in case it is cheaper */
			probe(p, c, b, p->grid[i + 1]);
	} else {
		int ifit = first_true(p, c, b, 0, fits);
		if (ifit < p->ngrid) {
			int iover = first_true(p, c, b, ifit, over_budget);
			if (iover - 2 >= ifit) /* the count below, in case it is faster */
				probe(p, c, b, p->grid[iover - 2]);
		}
	}
	check_monotone(p, c, b);
}

/* Better choice: deadline: cheaper (then sooner); budget: sooner (then cheaper). */
static bool better(const Prov *p, const Probe *a, const Probe *b)
{
	if (meets(p, a) != meets(p, b))
		return meets(p, a);
	double a1 = p->deadline ? a->cost : a->days, b1 = p->deadline ? b->cost : b->days;
	double a2 = p->deadline ? a->days : a->cost, b2 = p->deadline ? b->days : b->cost;
	if (a1 != b1)
		return a1 < b1;
	return a2 < b2;
}

static void why_lost(const Prov *p, const Probe *q, const Probe *win, char *buf, size_t n)
{
	const char *cur = win->st.cost.currency;
	if (!q->ok)
		snprintf(buf, n, "%s", q->why);
	else if (!meets(p, q) && p->deadline)
		snprintf(buf, n, "misses the deadline: %.4g days > %.4g", q->days, p->limit);
	else if (!meets(p, q))
		snprintf(buf, n, "over budget: %.4g %s > %.4g", q->cost, cur, p->limit);
	else if (p->deadline)
		snprintf(buf, n, "dearer: %.4g %s vs %.4g (+%.1f%%)", q->cost, cur, win->cost,
			 100 * (q->cost / win->cost - 1));
	else
		snprintf(buf, n, "slower: %.4g days vs %.4g (+%.1f%%)", q->days, win->days,
			 100 * (q->days / win->days - 1));
}

static const Prov *by_rank_ctx; /* qsort has no context argument */
static int by_rank(const void *a, const void *b)
{
	const Probe *x = *(Probe *const *)a, *y = *(Probe *const *)b;
	if (better(by_rank_ctx, x, y))
		return -1;
	if (better(by_rank_ctx, y, x))
		return 1;
	return 0;
}

static json_t *probe_json(const Prov *p, const Probe *q)
{
	json_t *o = json_pack("{s:s,s:i,s:i,s:I,s:b}", "cluster", p->lists->cluster[q->cluster],
			      "nodes", q->nodes, "gpus", q->st.gpus, "batch", (json_int_t)q->batch,
			      "fits", q->ok);
	if (!q->ok) {
		json_object_set_new(o, "message", json_string(q->why));
		return o;
	}
	json_object_set_new(o, "step_time_s", json_real(q->st.step_s));
	json_object_set_new(o, "tokens_per_s", json_real(q->st.tokens_per_s));
	json_object_set_new(o, "mfu", json_real(q->st.mfu));
	json_object_set_new(o, "days_fault_free", json_real(q->run.wall_s / 86400));
	json_object_set_new(o, "ettr", json_real(q->run.ettr));
	json_object_set_new(o, "ckpt_interval_s", json_real(q->run.ckpt_interval_s));
	json_object_set_new(o, "days", json_real(q->days));
	json_object_set_new(o, "gpu_hours", json_real(q->run.fail_gpu_hours));
	json_object_set_new(o, "cost", json_real(q->cost));
	json_object_set_new(o, "currency", json_string(q->st.cost.currency));
	json_object_set_new(o, "energy_kwh", json_real(q->run.fail_cost.energy_kwh));
	if (q->st.plan)
		json_object_set(o, "plan", q->st.plan);
	return o;
}

static void print_probe(const Prov *p, const Probe *q, const char *why)
{
	if (!q->ok) {
		printf("  %-18s %6d %7lld  %s\n", p->lists->cluster[q->cluster], q->nodes,
		       (long long)q->batch, why);
		return;
	}
	printf("  %-18s %6d %7lld %9.4g %6.1f%% %6.4f %9.4g %12.4g  %s\n",
	       p->lists->cluster[q->cluster], q->nodes, (long long)q->batch, q->days,
	       100 * q->st.mfu, q->run.ettr, q->run.fail_gpu_hours, q->cost, why);
}

static int report(Prov *p)
{
	Probe **rank = malloc(sizeof *rank * (size_t)(p->nprobe ? p->nprobe : 1));
	if (!rank)
		abort();
	for (int i = 0; i < p->nprobe; i++)
		rank[i] = &p->probe[i];
	by_rank_ctx = p;
	qsort(rank, (size_t)p->nprobe, sizeof *rank, by_rank);
	const Probe *win = p->nprobe && meets(p, rank[0]) ? rank[0] : NULL;
	char why[700];
	if (p->v[O_JSON].set) {
		json_t *o = json_object();
		json_object_set_new(o, "model", json_string(p->model));
		json_object_set_new(o, "tokens", json_real(p->tokens));
		json_object_set_new(o, p->deadline ? "deadline_days" : "budget", json_real(p->limit));
		json_object_set_new(o, "policy", json_string(sim_policy_name(p->fm.policy)));
		json_object_set_new(o, "choice", win ? probe_json(p, win) : json_null());
		json_t *ru = json_array();
		for (int i = win ? 1 : 0; i < p->nprobe; i++) {
			json_t *r = probe_json(p, rank[i]);
			if (win)
				why_lost(p, rank[i], win, why, sizeof why);
			else
				snprintf(why, sizeof why, "%s", rank[i]->ok ? "does not meet it" : rank[i]->why);
			json_object_set_new(r, "why", json_string(why));
			json_array_append_new(ru, r);
		}
		json_object_set_new(o, "runners_up", ru);
		json_t *notes = json_array();
		for (int i = 0; i < p->nnotes; i++)
			json_array_append_new(notes, json_string(p->notes[i]));
		json_object_set_new(o, "notes", notes);
		json_object_set_new(o, "compiles", json_integer(p->nprobe));
		tool_print_json(o);
	} else {
		printf("meshplan provision: %s, %.4g tokens, %s %.4g%s, failures: %s (%d runs)\n",
		       p->model, p->tokens, p->deadline ? "deadline" : "budget", p->limit,
		       p->deadline ? " days" : "", sim_policy_name(p->fm.policy), p->fm.runs);
		if (win) {
			printf("choice: %s, %d nodes (%d GPUs), global batch %lld: %.4g days, %.4g %s "
			       "(ETTR %.4f, checkpoint every %.0f s)\n",
			       p->lists->cluster[win->cluster], win->nodes, win->st.gpus,
			       (long long)win->batch, win->days, win->cost, win->st.cost.currency,
			       win->run.ettr, win->run.ckpt_interval_s);
			json_t *pl = win->st.plan;
			printf("  plan: %lld stages, microbatch %lld x %lld, %s, recompute %s; step "
			       "%.4g s, MFU %.1f%%\n",
			       (long long)json_integer_value(json_object_get(pl, "nstages")),
			       (long long)json_integer_value(json_object_get(pl, "microbatch")),
			       (long long)json_integer_value(json_object_get(pl, "microbatches")),
			       json_string_value(json_object_get(pl, "schedule")),
			       json_string_value(json_object_get(pl, "recompute")), win->st.step_s,
			       100 * win->st.mfu);
		} else {
			printf("choice: none of the %d configurations tried %s\n", p->nprobe,
			       p->deadline ? "ends by the deadline" : "fits the budget");
		}
		printf("%s (%d compiled):\n  %-18s %6s %7s %9s %7s %6s %9s %12s  %s\n",
		       win ? "runners-up" : "tried", p->nprobe, "cluster", "nodes", "batch", "days",
		       "MFU", "ETTR", "GPU-hours", "cost", win ? "why it lost" : "");
		for (int i = win ? 1 : 0; i < p->nprobe; i++) {
			if (win)
				why_lost(p, rank[i], win, why, sizeof why);
			else
				snprintf(why, sizeof why, "%s", rank[i]->ok ? "" : rank[i]->why);
			print_probe(p, rank[i], why);
		}
		for (int i = 0; i < p->nnotes; i++)
			printf("note: %s\n", p->notes[i]);
	}
	free(rank);
	return win ? EXIT_OK : EXIT_INFEASIBLE;
}

/* Default global batch: about 4M tokens per step (Llama 2's and 3's
 * pre-training batch), a power of two in samples. */
static int64_t default_batch(const char *model, const char *set)
{
	IrError e;
	IrParamSet ps = {0};
	int64_t seq = 1;
	if (set && ir_params_parse(&ps, set, &e))
		return 1024;
	IrModelDoc *m = ir_model_open(model, &e);
	if (!m)
		return 1024;
	if (ir_model_param(m, &ps, "seq", &seq, &e) || seq <= 0)
		seq = 1;
	ir_model_close(m);
	int64_t b = 1;
	while (b * seq * 2 <= (int64_t)1 << 22)
		b *= 2;
	return b;
}

int cmd_provision(int argc, char **argv)
{
	ToolVal v[NOPT];
	const char *pos[1];
	int npos;
	Lists lists = {0};
	ToolCmdLine cl = {.verb = VERB, .opts = opts, .nopts = NOPT, .maxpos = 1, .hook = collect,
			  .ctx = &lists, .usage = usage};
	int rc;
	if (tool_opts_done(&cl, argc, argv, v, pos, &npos, &rc))
		return rc;
	if (npos != 1)
		return tool_error(VERB, EXIT_BADINPUT, "needs one MODEL (see --help)");
	if (!v[O_TOKENS].set)
		return tool_error(VERB, EXIT_BADINPUT, "needs --tokens T");
	if (v[O_DEADLINE].set == v[O_BUDGET].set)
		return tool_error(VERB, EXIT_BADINPUT, "give --deadline-days D or --budget B (one)");
	if (!v[O_CLUSTER].set)
		return tool_error(VERB, EXIT_BADINPUT, "needs at least one --cluster C");
	Prov p = {.v = v, .lists = &lists, .model = pos[0], .tokens = v[O_TOKENS].num,
		  .deadline = v[O_DEADLINE].set,
		  .limit = v[O_DEADLINE].set ? v[O_DEADLINE].num : v[O_BUDGET].num,
		  .nodes_max = v[O_NODES_MAX].set ? (int)v[O_NODES_MAX].num : 1024};
	SimPolicy pol = SIM_RESTART_ALL;
	if (v[O_POLICY].set && sim_policy_parse(v[O_POLICY].str, &pol))
		return tool_error(VERB, EXIT_BADINPUT,
				  "--policy: unknown '%s' (restart-all, failover or elastic)",
				  v[O_POLICY].str);
	sim_failure_model_default(&p.fm, pol);
	make_grid(&p);
	if (v[O_RUNS].set)
		p.fm.runs = (int)v[O_RUNS].num;
	if (v[O_SEED].set)
		p.fm.seed = (uint64_t)v[O_SEED].num;
	/* inputs open before any compile */
	IrError e;
	IrModelDoc *m = ir_model_open(p.model, &e);
	if (!m)
		return tool_input_error(&e);
	ir_model_close(m);
	for (int c = 0; c < lists.nclusters; c++) {
		IrCluster cl;
		if (ir_cluster_load(lists.cluster[c], 0, &cl, &e))
			return tool_input_error(&e);
		ir_cluster_free(&cl);
	}
	int64_t batches[PROV_MAX_LIST];
	int nb = lists.nbatch;
	for (int i = 0; i < nb; i++)
		batches[i] = lists.batch[i];
	if (nb == 0)
		batches[nb++] = default_batch(p.model, v[O_SET].set ? v[O_SET].str : NULL);
	for (int c = 0; c < lists.nclusters; c++)
		for (int i = 0; i < nb; i++)
			search(&p, c, batches[i]);
	rc = report(&p);
	for (int i = 0; i < p.nprobe; i++)
		tool_step_free(&p.probe[i].st);
	free(p.probe);
	return rc;
}
