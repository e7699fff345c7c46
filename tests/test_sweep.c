/*
 * test_sweep.c -- `meshplan sweep`: the same lines in the same order
 * whether run by threads or by MPI ranks, nothing lost or doubled by a
 * kill and --resume, the Pareto SVG holding exactly the non-dominated
 * lines, and bad sweep files refused with file and line.
 */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/helpers.h"

#ifndef MESHPLAN_MPIEXEC
#define MESHPLAN_MPIEXEC ""
#endif

#define SMALL MESHPLAN_DATA_DIR "/tests/data/sweep-small.xml"
enum { SMALL_POINTS = 16 }; /* 1 model x 2 clusters x 2 nodes x 2 batches x 2 token budgets */

/* A fresh folder for one test's files. */
static void scratch(char *dir, size_t n, const char *name)
{
	snprintf(dir, n, "/tmp/meshplan-test-sweep-%s-%ld", name, (long)getpid());
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
	cr_assert_eq(system(cmd), 0);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = 0;
	fclose(f);
	return s;
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Runs a shell command line; its exit status. */
static int sh(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(sweep, threads_give_the_lines_of_one_thread_in_point_order, .timeout = 600)
{
	char dir[256], cmd[2048], a[300], b[300];
	scratch(dir, sizeof dir, "threads");
	snprintf(a, sizeof a, "%s/one.jsonl", dir);
	snprintf(b, sizeof b, "%s/two.jsonl", dir);
	snprintf(cmd, sizeof cmd, "'%s' sweep '%s' -o '%s' --threads 1 > %s/one.txt 2>/dev/null",
		 MESHPLAN_BIN, SMALL, a, dir);
	cr_assert_eq(sh(cmd), 0);
	snprintf(cmd, sizeof cmd, "'%s' sweep '%s' -o '%s' --threads 3 > %s/two.txt 2>/dev/null",
		 MESHPLAN_BIN, SMALL, b, dir);
	cr_assert_eq(sh(cmd), 0);
	char *x = slurp(a), *y = slurp(b);
	cr_assert_eq(count_lines(x), SMALL_POINTS);
	cr_assert_str_eq(x, y);
	/* point i on line i */
	int i = 0;
	for (const char *l = x; *l; l = strchr(l, '\n') + 1, i++) {
		json_t *o = json_loadb(l, strcspn(l, "\n"), 0, NULL);
		cr_assert_not_null(o);
		cr_assert_eq(json_integer_value(json_object_get(o, "point")), i);
		json_decref(o);
	}
	/* without -o the lines go to stdout, in the same order */
	snprintf(cmd, sizeof cmd, "'%s' sweep '%s' --threads 2 > %s/stdout.jsonl 2>/dev/null",
		 MESHPLAN_BIN, SMALL, dir);
	cr_assert_eq(sh(cmd), 0);
	snprintf(b, sizeof b, "%s/stdout.jsonl", dir);
	char *z = slurp(b);
	cr_assert_str_eq(x, z);
	free(x), free(y), free(z);
}

Test(sweep, mpirun_two_ranks_gives_the_single_process_lines, .timeout = 600)
{
	if (!*MESHPLAN_MPIEXEC)
		cr_skip_test("built without MPI");
	char dir[256], cmd[2048], a[300], b[300];
	scratch(dir, sizeof dir, "mpi");
	snprintf(a, sizeof a, "%s/single.jsonl", dir);
	snprintf(b, sizeof b, "%s/mpi.jsonl", dir);
	snprintf(cmd, sizeof cmd, "'%s' sweep '%s' -o '%s' --threads 1 > %s/single.txt 2>/dev/null",
		 MESHPLAN_BIN, SMALL, a, dir);
	cr_assert_eq(sh(cmd), 0);
	/* OpenMPI's own allocations are not ours to account for */
	snprintf(cmd, sizeof cmd,
		 "ASAN_OPTIONS=detect_leaks=0 '%s' --allow-run-as-root --oversubscribe -np 2 "
		 "'%s' sweep '%s' -o '%s' --threads 1 > %s/mpi.txt 2> %s/mpi.err",
		 MESHPLAN_MPIEXEC, MESHPLAN_BIN, SMALL, b, dir, dir);
	cr_assert_eq(sh(cmd), 0, "%s", cmd);
	char *x = slurp(a), *y = slurp(b);
	cr_assert_eq(count_lines(x), SMALL_POINTS);
	cr_assert_str_eq(x, y);
	char p[300];
	snprintf(p, sizeof p, "%s/mpi.err", dir);
	char *err = slurp(p);
	cr_assert(strstr(err, "2 ranks"), "the run was not spread over 2 ranks: %s", err);
	snprintf(p, sizeof p, "%s/single.txt", dir);
	char *t1 = slurp(p);
	snprintf(p, sizeof p, "%s/mpi.txt", dir);
	char *t2 = slurp(p);
	cr_assert_str_eq(t1, t2);
	free(x), free(y), free(err), free(t1), free(t2);
}

Test(sweep, killed_half_way_and_resumed_holds_every_point_once, .timeout = 600)
{
	char dir[256], out[300], cmd[2048];
	scratch(dir, sizeof dir, "resume");
	snprintf(out, sizeof out, "%s/r.jsonl", dir);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		freopen("/dev/null", "w", stdout);
		freopen("/dev/null", "w", stderr);
		execl(MESHPLAN_BIN, MESHPLAN_BIN, "sweep", SMALL, "-o", out, "--threads", "1",
		      (char *)NULL);
		_exit(127);
	}
	/* kill it once a compile (2 points) is in the file */
	int lines = 0;
	for (int waited = 0; waited < 30000 && lines < 2; waited++) {
		nanosleep(&(struct timespec){0, 20000000}, NULL);
		FILE *f = fopen(out, "rb");
		if (!f)
			continue;
		lines = 0;
		for (int ch; (ch = fgetc(f)) != EOF;)
			lines += ch == '\n';
		fclose(f);
	}
	kill(pid, SIGKILL);
	int st;
	waitpid(pid, &st, 0);
	char *part = slurp(out);
	int before = count_lines(part);
	free(part);
	cr_assert(before >= 2 && before < SMALL_POINTS, "%d lines at the kill", before);
	snprintf(cmd, sizeof cmd, "'%s' sweep '%s' -o '%s' --resume --threads 1 > /dev/null 2> %s/err",
		 MESHPLAN_BIN, SMALL, out, dir);
	cr_assert_eq(sh(cmd), 0);
	char p[300];
	snprintf(p, sizeof p, "%s/err", dir);
	char *err = slurp(p);
	int run = -1, kept = -1;
	const char *s = strstr(err, "points, ");
	cr_assert_not_null(s, "%s", err);
	cr_assert_eq(sscanf(s + 8, "%d compiles run (%d kept)", &run, &kept), 2, "%s", err);
	cr_assert_geq(kept, before / 2, "kept %d compiles of %d lines", kept, before);
	cr_assert_eq(run + kept, SMALL_POINTS / 2);
	/* every point exactly once, in order */
	char *all = slurp(out);
	cr_assert_eq(count_lines(all), SMALL_POINTS);
	int seen[SMALL_POINTS] = {0}, i = 0;
	for (const char *l = all; *l; l = strchr(l, '\n') + 1, i++) {
		json_t *o = json_loadb(l, strcspn(l, "\n"), 0, NULL);
		cr_assert_not_null(o, "line %d does not parse", i);
		json_int_t pt = json_integer_value(json_object_get(o, "point"));
		cr_assert(pt >= 0 && pt < SMALL_POINTS);
		seen[pt]++;
		cr_assert_eq(pt, i);
		json_decref(o);
	}
	for (int k = 0; k < SMALL_POINTS; k++)
		cr_assert_eq(seen[k], 1, "point %d seen %d times", k, seen[k]);
	free(err), free(all);
}

/* Brute force: line i is non-dominated when no line j is at most as long
 * and as dear with one of the two strictly less. */
Test(sweep, svg_marks_exactly_the_non_dominated_points, .timeout = 600)
{
	char dir[256], out[300], svg[300], cmd[2048];
	scratch(dir, sizeof dir, "svg");
	snprintf(out, sizeof out, "%s/s.jsonl", dir);
	snprintf(svg, sizeof svg, "%s/s.svg", dir);
	snprintf(cmd, sizeof cmd, "'%s' sweep '%s' -o '%s' > /dev/null 2>&1", MESHPLAN_BIN, SMALL,
		 out);
	cr_assert_eq(sh(cmd), 0);
	char *all = slurp(out);
	double days[SMALL_POINTS], cost[SMALL_POINTS];
	int n = 0;
	for (const char *l = all; *l; l = strchr(l, '\n') + 1, n++) {
		json_t *o = json_loadb(l, strcspn(l, "\n"), 0, NULL);
		cr_assert(json_is_true(json_object_get(o, "fits")));
		days[n] = json_number_value(json_object_get(o, "days"));
		cost[n] = json_number_value(json_object_get(o, "cost"));
		json_decref(o);
	}
	cr_assert_eq(n, SMALL_POINTS);
	bool front[SMALL_POINTS];
	int nfront = 0;
	for (int i = 0; i < n; i++) {
		front[i] = true;
		for (int j = 0; j < n; j++)
			if (days[j] <= days[i] && cost[j] <= cost[i] &&
			    (days[j] < days[i] || cost[j] < cost[i]))
				front[i] = false;
		nfront += front[i];
	}
	cr_assert_geq(nfront, 2, "the test sweep should have a front of more than one point");
	xmlDocPtr doc = xmlReadFile(svg, NULL, XML_PARSE_NONET);
	cr_assert_not_null(doc, "the SVG is not well-formed XML");
	xmlNodePtr root = xmlDocGetRootElement(doc);
	cr_assert_str_eq((const char *)root->name, "svg");
	cr_assert_str_eq((const char *)root->ns->href, "http://www.w3.org/2000/svg");
	int circles = 0, marked[SMALL_POINTS] = {0};
	for (xmlNodePtr c = root->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "circle"))
			continue;
		circles++;
		xmlChar *cls = xmlGetProp(c, (const xmlChar *)"class");
		xmlChar *pt = xmlGetProp(c, (const xmlChar *)"data-point");
		int p = atoi((const char *)pt);
		cr_assert(p >= 0 && p < n);
		bool is_front = !strcmp((const char *)cls, "front");
		cr_assert_eq(is_front, front[p], "point %d: SVG says %s", p, (const char *)cls);
		marked[p]++;
		xmlFree(cls);
		xmlFree(pt);
	}
	cr_assert_eq(circles, n);
	for (int i = 0; i < n; i++)
		cr_assert_eq(marked[i], 1);
	xmlFreeDoc(doc);
	free(all);
}

Test(sweep, plans_dir_gets_one_readable_plan_per_compile, .timeout = 600)
{
	char dir[256], cmd[2048];
	scratch(dir, sizeof dir, "plans");
	snprintf(cmd, sizeof cmd, "'%s' sweep '%s' --plans '%s/plans' > /dev/null 2>&1",
		 MESHPLAN_BIN, SMALL, dir);
	cr_assert_eq(sh(cmd), 0);
	snprintf(cmd, sizeof cmd, "test $(ls '%s/plans' | wc -l) -eq %d", dir, SMALL_POINTS / 2);
	cr_assert_eq(sh(cmd), 0, "not one plan per compile");
	snprintf(cmd, sizeof cmd, "'%s' simulate \"$(ls -d '%s'/plans/* | head -1)\" > /dev/null",
		 MESHPLAN_BIN, dir);
	cr_assert_eq(sh(cmd), 0);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(sweep, bad_sweep_files_are_refused_with_file_and_line)
{
	char dir[256], path[300], args[600], out[4096];
	scratch(dir, sizeof dir, "bad");
	snprintf(path, sizeof path, "%s/nobatch.xml", dir);
	write_file(path, "<sweep xmlns=\"urn:meshplan:sweep\">\n  <model name=\"gpt\"/>\n"
			 "  <cluster name=\"dgx-a100\"/>\n  <tokens values=\"1e9\"/>\n</sweep>\n");
	snprintf(args, sizeof args, "sweep '%s'", path);
	cr_assert_eq(test_run(args, out, sizeof out), 2);
	cr_assert(strstr(out, "nobatch.xml:") && strstr(out, "schema"), "%s", out);

	snprintf(path, sizeof path, "%s/nomodel.xml", dir);
	write_file(path, "<sweep xmlns=\"urn:meshplan:sweep\">\n  <model name=\"no-such-model\"/>\n"
			 "  <cluster name=\"dgx-a100\"/>\n  <batch values=\"8\"/>\n"
			 "  <tokens values=\"1e9\"/>\n</sweep>\n");
	snprintf(args, sizeof args, "sweep '%s'", path);
	cr_assert_eq(test_run(args, out, sizeof out), 2);
	cr_assert(strstr(out, "nomodel.xml:2:"), "%s", out);

	snprintf(path, sizeof path, "%s/negative.xml", dir);
	write_file(path, "<sweep xmlns=\"urn:meshplan:sweep\">\n  <model name=\"gpt\"/>\n"
			 "  <cluster name=\"dgx-a100\"/>\n  <batch values=\"8 -1\"/>\n"
			 "  <tokens values=\"1e9\"/>\n</sweep>\n");
	snprintf(args, sizeof args, "sweep '%s'", path);
	cr_assert_eq(test_run(args, out, sizeof out), 2);
	cr_assert(strstr(out, "negative.xml:4:"), "%s", out);

	cr_assert_eq(test_run("sweep", out, sizeof out), 2);
	snprintf(args, sizeof args, "sweep '%s' --resume", SMALL);
	cr_assert_eq(test_run(args, out, sizeof out), 2);
	cr_assert(strstr(out, "--resume needs -o"), "%s", out);
	cr_assert_eq(test_run("sweep --help", out, sizeof out), 0);
}
