/*
 * test_explain.c -- `meshplan explain`: a compiled plan explained from what
 * compile recorded in it, with figures that add up to the simulator's.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/helpers.h"

#define DATA MESHPLAN_DATA_DIR "/tests/data"

/* gpt:1.3b on one p3.16xlarge node; the microbatch size and recomputation
 * fixed (the compile's search around the DP is what takes time). */
#define CASE                                                                              \
	"gpt:1.3b --cluster aws-p3.16xlarge --nodes 1 --batch 256 --microbatch 32 "      \
	"--recompute selective"

static char plan_path[64];

static void compile_case(void)
{
	snprintf(plan_path, sizeof plan_path, "/tmp/meshplan-explain-XXXXXX");
	int fd = mkstemp(plan_path);
	cr_assert_geq(fd, 0);
	close(fd);
	char args[512], out[65536];
	snprintf(args, sizeof args, "compile " CASE " -o %s", plan_path);
	cr_assert_eq(test_run(args, out, sizeof out), 0, "%s", out);
}

static void remove_case(void) { unlink(plan_path); }

/* Every forward op's sharding is named in words; one op has at least two
 * alternatives, each with compute, communication and resharding cost; the
 * stage cut has at least three alternatives with step time and memory. */
static void names_shardings_and_alternatives(void)
{
	char args[256];
	snprintf(args, sizeof args, "explain %s --json", plan_path);
	int code;
	json_t *j = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	json_t *stages = json_object_get(j, "stages");
	cr_assert_gt(json_array_size(stages), 0);
	int nfwd = 0, with_alts = 0;
	size_t i, k;
	json_t *st, *op;
	json_array_foreach(stages, i, st) {
		cr_expect_gt(strlen(json_string_value(json_object_get(st, "parallelism"))), 5);
		json_array_foreach(json_object_get(st, "forward_ops"), k, op) {
			const char *w = json_string_value(json_object_get(op, "sharding"));
			cr_expect(w && strlen(w) > 5, "%s", json_string_value(json_object_get(op, "name")));
			nfwd++;
		}
		json_array_foreach(json_object_get(st, "ops"), k, op) {
			json_t *alts = json_object_get(op, "alternatives");
			if (json_array_size(alts) < 2)
				continue;
			json_t *a = json_array_get(alts, 1);
			cr_expect(json_is_real(json_object_get(a, "compute_s")));
			cr_expect(json_is_real(json_object_get(a, "comm_s")));
			cr_expect(json_is_real(json_object_get(a, "reshard_s")));
			with_alts++;
		}
	}
	IrGraph g = test_forward_graph("gpt:1.3b", NULL);
	cr_expect_eq(nfwd, g.nops, "%d forward ops explained, the model has %d", nfwd, g.nops);
	ir_graph_free(&g);
	cr_expect_gt(with_alts, 0);
	json_t *cut = json_object_get(j, "stage_cut");
	cr_assert(json_is_true(json_object_get(cut, "recorded")));
	int timed = 0;
	json_array_foreach(json_object_get(cut, "alternatives"), i, op)
		timed += json_is_real(json_object_get(op, "step_s")) &&
			 json_real_value(json_object_get(op, "memory_bytes")) > 0;
	cr_expect_geq(timed, 4, "the choice and at least three alternatives: %d", timed);
	json_decref(j);
}

/* The chosen costs add up: per stage the time the search priced it at is
 * the simulator's stage time (fwd + bwd + step / microbatches, from
 * `simulate`, a separate run) within 1%, and the per-op records add up to
 * the ILP's objective. */
static void chosen_costs_add_up_to_the_simulated_stage_time(void)
{
	char args[256];
	int code;
	snprintf(args, sizeof args, "simulate %s --json", plan_path);
	json_t *sim = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	snprintf(args, sizeof args, "explain %s --json", plan_path);
	json_t *ex = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	int nmicro = (int)json_integer_value(json_object_get(ex, "microbatches"));
	/* the stage times the search priced are its own (not the simulator's,
	 * as when a re-sharded plan replaced the DP's) */
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(ex, "stage_cut"),
							   "from")), "dp");
	json_t *ss = json_object_get(sim, "stages"), *es = json_object_get(ex, "stages");
	cr_assert_eq(json_array_size(ss), json_array_size(es));
	for (size_t q = 0; q < json_array_size(ss); q++) {
		json_t *s = json_array_get(ss, q), *e = json_array_get(es, q);
		double t = json_real_value(json_object_get(s, "forward_s")) +
			   json_real_value(json_object_get(s, "backward_s")) +
			   json_real_value(json_object_get(s, "step_s")) / nmicro;
		double priced = json_real_value(json_object_get(e, "search_stage_time_s"));
		cr_expect(fabs(priced - t) <= 0.01 * t, "stage %zu: priced %.6g s, simulated %.6g s",
			  q, priced, t);
		json_t *c = json_object_get(e, "costs_per_step");
		cr_assert_not_null(c);
		double sum = 0;
		size_t k;
		json_t *op;
		json_array_foreach(json_object_get(e, "ops"), k, op) {
			json_t *ch = json_object_get(op, "chosen");
			sum += json_real_value(json_object_get(ch, "compute_s")) +
			       json_real_value(json_object_get(ch, "comm_s")) +
			       json_real_value(json_object_get(ch, "reshard_in_s"));
		}
		double ilp = json_real_value(json_object_get(c, "ilp_s"));
		cr_expect(fabs(sum - ilp) <= 1e-9 * ilp, "stage %zu: records %.9g, ILP %.9g", q, sum,
			  ilp);
	}
	json_decref(sim);
	json_decref(ex);
}

/* Both on one compile of the case. */
Test(explain, gpt_1_3b_on_p3_explained, .init = compile_case, .fini = remove_case,
     .timeout = 900)
{
	names_shardings_and_alternatives();
	chosen_costs_add_up_to_the_simulated_stage_time();
}

/* On a model without fusable chains the ILP's own cost model is the
 * simulator's: the records add up to the simulated stage time. */
Test(explain, records_match_the_simulator_where_nothing_fuses)
{
	char plan[] = "/tmp/meshplan-explain-tiny-XXXXXX";
	int fd = mkstemp(plan);
	cr_assert_geq(fd, 0);
	close(fd);
	char args[512], out[65536];
	snprintf(args, sizeof args,
		 "compile %s/tiny.xml --cluster %s/tiny-cluster.xml --batch 8 --microbatch 8 "
		 "--recompute none --no-hand-written -o %s", DATA, DATA, plan);
	cr_assert_eq(test_run(args, out, sizeof out), 0, "%s", out);
	snprintf(args, sizeof args, "explain %s --json", plan);
	int code;
	json_t *ex = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	json_t *st;
	size_t q;
	json_array_foreach(json_object_get(ex, "stages"), q, st) {
		json_t *c = json_object_get(st, "costs_per_step");
		double sum = json_real_value(json_object_get(c, "sum_s"));
		double sim = json_real_value(json_object_get(c, "simulated_s"));
		cr_expect(fabs(sum - sim) <= 0.01 * sim, "stage %zu: %.6g vs %.6g", q, sum, sim);
	}
	json_decref(ex);
	/* an op by name gets its table of alternatives */
	snprintf(args, sizeof args, "explain %s --op fc1", plan);
	cr_expect_eq(test_run(args, out, sizeof out), 0, "%s", out);
	cr_expect(strstr(out, "chosen"), "%s", out);
	unlink(plan);
}

/* A plan written without the records (here: a compiled one with them
 * taken out) is still explained, and says what was not recorded. */
Test(explain, an_old_plan_says_what_was_not_recorded)
{
	char plan[] = "/tmp/meshplan-explain-old-XXXXXX", old[64];
	int fd = mkstemp(plan);
	cr_assert_geq(fd, 0);
	close(fd);
	char args[512], out[65536];
	snprintf(args, sizeof args,
		 "compile %s/tiny.xml --cluster %s/tiny-cluster.xml --batch 8 --microbatch 8 "
		 "--recompute none --no-hand-written -o %s", DATA, DATA, plan);
	cr_assert_eq(test_run(args, out, sizeof out), 0, "%s", out);
	snprintf(old, sizeof old, "%s.old.xml", plan);
	FILE *in = fopen(plan, "r"), *o = fopen(old, "w");
	cr_assert(in && o);
	char line[4096];
	int dropped = 0;
	while (fgets(line, sizeof line, in)) {
		const char *t = line + strspn(line, " ");
		bool rec = !strncmp(t, "<why", 4) || !strncmp(t, "</why", 5) ||
			   !strncmp(t, "<alt", 4) || !strncmp(t, "<search", 7) ||
			   !strncmp(t, "</search", 8);
		dropped += rec;
		if (!rec)
			fputs(line, o);
	}
	fclose(in);
	fclose(o);
	cr_assert_gt(dropped, 0);
	snprintf(args, sizeof args, "explain %s", old);
	cr_expect_eq(test_run(args, out, sizeof out), 0, "%s", out);
	cr_expect(strstr(out, "parallelism   "), "%s", out);
	cr_expect(strstr(out, "choices were not recorded"), "%s", out);
	cr_expect(strstr(out, "stage cut") && strstr(out, "not recorded in this plan"), "%s", out);
	unlink(old);
	unlink(plan);
}

/* A plan names its model and cluster files relative to its own folder:
 * simulated from another folder, it finds them. */
Test(explain, a_plan_finds_its_files_from_any_folder)
{
	char dir[] = "/tmp/meshplan-paths-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "mkdir -p %s/in %s/out && cp %s/tiny.xml %s/tiny-cluster.xml %s/in/",
		 dir, dir, DATA, DATA, dir);
	cr_assert_eq(system(cmd), 0);
	/* compiled from inside dir, the files named relative to it */
	snprintf(cmd, sizeof cmd,
		 "cd %s && '%s' compile in/tiny.xml --cluster in/tiny-cluster.xml --batch 8 "
		 "--quiet -o out/plan.xml > /dev/null", dir, MESHPLAN_BIN);
	cr_assert_eq(system(cmd), 0);
	/* simulated from /, and explained from the plan's own folder */
	char args[512], out[65536];
	snprintf(args, sizeof args, "simulate %s/out/plan.xml", dir);
	snprintf(cmd, sizeof cmd, "cd / && '%s' %s > /dev/null 2>&1", MESHPLAN_BIN, args);
	cr_expect_eq(system(cmd), 0, "simulate from /");
	snprintf(args, sizeof args, "explain %s/out/plan.xml", dir);
	cr_expect_eq(test_run(args, out, sizeof out), 0, "%s", out);
	FILE *f;
	snprintf(cmd, sizeof cmd, "%s/out/plan.xml", dir);
	cr_assert_not_null(f = fopen(cmd, "r"));
	size_t n = fread(out, 1, sizeof out - 1, f);
	out[n] = 0;
	fclose(f);
	cr_expect(strstr(out, "model=\"../in/tiny.xml\""), "stored relative to the plan");
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}
