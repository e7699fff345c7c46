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
