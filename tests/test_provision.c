/*
 * test_provision.c -- `meshplan provision` against brute force over the
 * same sweep (every node count, cluster and batch, judged under the same
 * failure model), and elastic re-planning in `estimate`: a re-planned
 * step time against `compile` run directly on that node count, the linear
 * assumption against a hand-given run's figures.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/helpers.h"

#define DATA MESHPLAN_DATA_DIR "/tests/data"
#define MODEL DATA "/tiny.xml --set h=2048,layers=1"
#define SLOW DATA "/tiny-cluster.xml"
#define FAST DATA "/tiny-cluster-fast.xml"

typedef struct {
	char cluster[512];
	long long nodes, batch;
	double days, cost;
	bool fits;
} Line;

/* The lines of the brute-force sweep (tests/data/provision-small.xml),
 * days and cost under failures. */
static int brute_force(Line *l, int max)
{
	char path[256], cmd[1024];
	snprintf(path, sizeof path, "/tmp/meshplan-test-provision-%ld.jsonl", (long)getpid());
	snprintf(cmd, sizeof cmd, "'%s' sweep '%s/provision-small.xml' -o '%s' > /dev/null 2>&1",
		 MESHPLAN_BIN, DATA, path);
	cr_assert_eq(system(cmd), 0);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	char buf[8192];
	int n = 0;
	while (fgets(buf, sizeof buf, f) && n < max) {
		json_t *o = json_loads(buf, 0, NULL);
		cr_assert_not_null(o);
		Line *x = &l[n++];
		snprintf(x->cluster, sizeof x->cluster, "%s",
			 json_string_value(json_object_get(o, "cluster")));
		x->nodes = json_integer_value(json_object_get(o, "nodes"));
		x->batch = json_integer_value(json_object_get(o, "batch"));
		x->fits = json_is_true(json_object_get(o, "fits"));
		json_t *fo = json_object_get(o, "failures");
		x->days = x->fits ? json_number_value(json_object_get(fo, "days")) : INFINITY;
		x->cost = x->fits ? json_number_value(json_object_get(fo, "cost")) : INFINITY;
		json_decref(o);
	}
	fclose(f);
	unlink(path);
	return n;
}

static void check_choice(json_t *j, const Line *best)
{
	json_t *c = json_object_get(j, "choice");
	cr_assert(json_is_object(c), "no choice");
	const char *cl = json_string_value(json_object_get(c, "cluster"));
	/* the sweep names clusters from its folder, provision as given */
	cr_assert(strstr(best->cluster, strrchr(cl, '/') + 1), "%s vs %s", cl, best->cluster);
	cr_assert_eq(json_integer_value(json_object_get(c, "nodes")), best->nodes);
	cr_assert_eq(json_integer_value(json_object_get(c, "batch")), best->batch);
	double cost = json_number_value(json_object_get(c, "cost"));
	double days = json_number_value(json_object_get(c, "days"));
	cr_assert(fabs(cost / best->cost - 1) < 1e-9, "cost %.10g, brute force %.10g", cost,
		  best->cost);
	cr_assert(fabs(days / best->days - 1) < 1e-9, "days %.10g, brute force %.10g", days,
		  best->days);
}

Test(provision, deadline_choice_is_the_cheapest_in_time_by_brute_force, .timeout = 1200)
{
	Line l[16];
	int n = brute_force(l, 16);
	cr_assert_eq(n, 16);
	const double deadline = 0.104;
	int best = -1;
	for (int i = 0; i < n; i++)
		if (l[i].fits && l[i].days <= deadline && (best < 0 || l[i].cost < l[best].cost))
			best = i;
	cr_assert_geq(best, 0, "the test deadline should be met by some point");
	cr_assert_gt(l[best].nodes, 1, "a test where one node suffices checks little");
	char args[2048];
	snprintf(args, sizeof args, "provision " MODEL " --tokens 1e10 --deadline-days %g "
		 "--cluster " SLOW " --cluster " FAST " --nodes-max 4 --batch 64 --batch 256 --json "
		 "2>/dev/null", deadline);
	int code;
	json_t *j = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	check_choice(j, &l[best]);
	/* it searched: fewer compiles than the 16 of brute force */
	cr_assert_lt(json_integer_value(json_object_get(j, "compiles")), 16);
	/* where its probes show time rising with nodes, it says so */
	bool rising = false;
	json_t *ru = json_object_get(j, "runners_up");
	for (size_t a = 0; a < json_array_size(ru); a++)
		for (size_t b = 0; b < json_array_size(ru); b++) {
			json_t *x = json_array_get(ru, a), *y = json_array_get(ru, b);
			if (json_equal(json_object_get(x, "cluster"), json_object_get(y, "cluster")) &&
			    json_equal(json_object_get(x, "batch"), json_object_get(y, "batch")) &&
			    json_is_true(json_object_get(x, "fits")) &&
			    json_is_true(json_object_get(y, "fits")) &&
			    json_integer_value(json_object_get(y, "nodes")) >
				    json_integer_value(json_object_get(x, "nodes")) &&
			    json_number_value(json_object_get(y, "days")) >
				    json_number_value(json_object_get(x, "days")))
				rising = true;
		}
	if (rising)
		cr_assert_gt(json_array_size(json_object_get(j, "notes")), 0,
			     "time rises with nodes among the probes but no note says so");
	json_decref(j);
}

Test(provision, budget_choice_is_the_fastest_within_it_by_brute_force, .timeout = 1200)
{
	Line l[16];
	int n = brute_force(l, 16);
	const double budget = 100;
	int best = -1;
	for (int i = 0; i < n; i++)
		if (l[i].fits && l[i].cost <= budget && (best < 0 || l[i].days < l[best].days))
			best = i;
	cr_assert_geq(best, 0);
	char args[2048];
	snprintf(args, sizeof args, "provision " MODEL " --tokens 1e10 --budget %g "
		 "--cluster " SLOW " --cluster " FAST " --nodes-max 4 --batch 64 --batch 256 --json "
		 "2>/dev/null", budget);
	int code;
	json_t *j = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	check_choice(j, &l[best]);
	json_decref(j);
}

Test(provision, nothing_in_time_exits_1_and_bad_usage_2, .timeout = 600)
{
	char out[65536];
	cr_assert_eq(test_run("provision " MODEL " --tokens 1e10 --deadline-days 0.001 --cluster "
			      SLOW " --nodes-max 2 --batch 256", out, sizeof out), 1);
	cr_assert(strstr(out, "misses") || strstr(out, "none"), "%s", out);
	cr_assert_eq(test_run("provision " MODEL " --tokens 1e10 --cluster " SLOW, out, sizeof out),
		     2);
	cr_assert_eq(test_run("provision " MODEL " --tokens 1e10 --deadline-days 1 --budget 5 "
			      "--cluster " SLOW, out, sizeof out), 2);
	cr_assert_eq(test_run("provision " MODEL " --tokens -1 --deadline-days 1 --cluster " SLOW,
			      out, sizeof out), 2);
}

/* ------------------------------------------------------------------ */

static double json_path_num(json_t *o, const char *a, const char *b)
{
	json_t *x = json_object_get(o, a);
	if (b)
		x = json_object_get(x, b);
	cr_assert(json_is_number(x), "%s.%s missing", a, b ? b : "");
	return json_number_value(x);
}

Test(elastic, replanned_step_is_compiles_step_on_the_nodes_left, .timeout = 1200)
{
	char plan[256], args[2048];
	snprintf(plan, sizeof plan, "/tmp/meshplan-test-elastic-%ld.xml", (long)getpid());
	int code;
	snprintf(args, sizeof args, "compile " MODEL " --cluster " SLOW " --nodes 2 --batch 256 "
		 "-o %s --json", plan);
	json_t *c2 = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	double step2 = json_path_num(c2, "step_time_s", NULL);
	json_decref(c2);
	const char *fail = "--failures --policy elastic --failure-rate 5e-2 --repair-s 3600 "
			   "--replan-s 60";
	snprintf(args, sizeof args, "estimate %s --tokens 1e11 %s --json 2>/dev/null", plan, fail);
	json_t *e = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	json_t *fo = json_object_get(e, "failures");
	json_t *rp = json_object_get(fo, "replanning");
	cr_assert(json_is_object(rp), "no re-planning in the elastic estimate");
	json_t *counts = json_object_get(rp, "node_counts");
	cr_assert_eq(json_array_size(counts), 1, "2 nodes lose one: only 1 node to re-plan for");
	json_t *one = json_array_get(counts, 0);
	cr_assert_eq(json_integer_value(json_object_get(one, "nodes")), 1);
	double replanned = json_number_value(json_object_get(one, "step_time_s"));
	cr_assert_eq(json_integer_value(json_object_get(rp, "compiles")), 1,
		     "hundreds of failures, one compile per node count");
	cr_assert_gt(json_path_num(fo, "interruptions_by_cause", "hard"), 1.0);

	/* compile directly on 1 node */
	json_t *c1 = test_run_json("compile " MODEL " --cluster " SLOW " --nodes 1 --batch 256 --json",
				   &code);
	cr_assert_eq(code, 0);
	double step1 = json_path_num(c1, "step_time_s", NULL);
	json_decref(c1);
	cr_assert(fabs(replanned / step1 - 1) < 1e-9, "re-planned %.10g s, compile %.10g s",
		  replanned, step1);
	cr_assert(fabs(step1 / (2 * step2) - 1) > 0.01,
		  "the test needs a step that is not linear in GPUs");

	/* the linear assumption: a run given by hand, same failures */
	double tps = json_path_num(e, "inputs", "tokens_per_step");
	snprintf(args, sizeof args, "estimate --step-time %.17g --gpus 8 --gpus-per-node 4 "
		 "--tokens-per-step %.17g --tokens 1e11 --failures --policy elastic "
		 "--failure-rate 5e-2 --repair-s 3600 --json", step2, tps);
	json_t *lin = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	double ettr_lin = json_path_num(lin, "failures", "ettr");
	/* JSON carries 10 significant digits: the step time given back is rounded so */
	cr_assert(fabs(json_path_num(rp, "ettr_linear", NULL) / ettr_lin - 1) < 1e-8,
		  "linear ETTR %.10g, by hand %.10g", json_path_num(rp, "ettr_linear", NULL),
		  ettr_lin);
	cr_assert(fabs(json_path_num(rp, "ettr", NULL) / ettr_lin - 1) > 1e-3,
		  "re-planned steps should change ETTR here");
	/* re-planning downtime: --replan-s per re-plan, never more than one per
	 * hard fault and rejoin */
	double replan = json_path_num(fo, "time_lost_s", "replan");
	double events = json_path_num(fo, "interruptions_by_cause", "hard") +
			json_path_num(fo, "rejoins", NULL);
	cr_assert_gt(replan, 0);
	cr_assert_leq(replan, 60 * events * (1 + 1e-12));
	json_decref(lin);
	json_decref(e);
	unlink(plan);
}
