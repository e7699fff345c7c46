/*
 * test_progress.c -- long work reports progress on stderr: lines with an
 * ETA when stderr is not a terminal, nothing with --quiet.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/helpers.h"

#define DATA MESHPLAN_DATA_DIR "/tests/data"

/* Runs `meshplan ARGS` with stderr into a file; returns what it holds. */
static char *stderr_of(const char *args, int *code)
{
	char path[] = "/tmp/meshplan-progress-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "'%s' %s > /dev/null 2> %s", MESHPLAN_BIN, args, path);
	int st = system(cmd);
	*code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	unlink(path);
	return buf;
}

Test(progress, a_compile_into_a_file_writes_lines_with_an_eta)
{
	int code;
	char *err = stderr_of("compile " DATA "/tiny.xml --cluster " DATA "/tiny-cluster.xml "
			      "--batch 8", &code);
	cr_assert_eq(code, 0, "%s", err);
	cr_expect(strstr(err, "meshplan: layer costs "), "%s", err);
	cr_expect(strstr(err, ", ETA "), "%s", err);
	cr_expect_null(strchr(err, '\r'), "no terminal line in a file: %s", err);
	/* each line a whole line */
	cr_expect(err[0] && err[strlen(err) - 1] == '\n', "%s", err);
}

Test(progress, quiet_writes_nothing)
{
	int code;
	char *err = stderr_of("compile " DATA "/tiny.xml --cluster " DATA "/tiny-cluster.xml "
			      "--batch 8 --quiet", &code);
	cr_assert_eq(code, 0);
	cr_expect_eq(strlen(err), 0, "%s", err);
}

/* A T5-large-sized model (48 layers of hidden 1024: about 0.6B parameters)
 * on 16 GPUs: its whole compile takes over 30 s in a Release build.  With
 * --time-limit 5 the search stops near 5 s with the best plan found by
 * then, and the output and the plan file say it was cut. */
Test(progress, a_time_limit_cuts_the_search_and_says_so, .timeout = 600)
{
	char plan[] = "/tmp/meshplan-cut-XXXXXX";
	int fd = mkstemp(plan);
	cr_assert_geq(fd, 0);
	close(fd);
	char args[512];
	snprintf(args, sizeof args,
		 "compile gpt --set layers=48,hidden=1024,heads=16,seq=512 --cluster dgx-a100 "
		 "--nodes 2 --batch 256 --time-limit 5 --quiet --json -o %s", plan);
	int code;
	json_t *j = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	double t = json_real_value(json_object_get(j, "compile_time_s"));
	cr_expect_str_eq(json_string_value(json_object_get(j, "cut")), "time-limit");
	/* past 5 s by the solves already running, the whole-device layer costs a
	 * cut always keeps and one stage solved whole (measured: 5.5 s in a
	 * Release build, 12 s under ASan on a loaded 2-core machine) */
	cr_expect(t >= 5 && t < 20, "compile time %.2f s", t);
	cr_expect_gt(json_real_value(json_object_get(j, "step_time_s")), 0);
	json_decref(j);
	FILE *f = fopen(plan, "r");
	cr_assert_not_null(f);
	static char buf[1 << 22];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	cr_expect(strstr(buf, "cut=\"time-limit\""), "the plan records the cut");
	unlink(plan);
}
