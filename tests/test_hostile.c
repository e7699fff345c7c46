/*
 * test_hostile.c -- meshplan run as a hostile user runs it: every bad
 * input is refused with exit 2 (1 for a runtime failure) and exactly one
 * line on stderr naming the file, line and cause; outputs are written
 * atomically.  Each test is one defect, through the binary.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/helpers.h"

#define DATA MESHPLAN_DATA_DIR "/tests/data"
#define HOSTILE DATA "/hostile"
#define TINY DATA "/tiny.xml"
#define TINYC DATA "/tiny-cluster.xml"

/* Runs `sh -c "CMD"` with stdout discarded; its stderr into err; the exit
 * status (-1 when killed by a signal). */
static int sh(const char *cmd, char *err, size_t n)
{
	char full[8192];
	snprintf(full, sizeof full, "( %s ) 2>&1 >/dev/null", cmd);
	FILE *p = popen(full, "r");
	cr_assert(p, "popen %s", full);
	size_t len = fread(err, 1, n - 1, p);
	err[len] = 0;
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `meshplan ARGS`: asserts the exit code and that stderr is one line
 * containing `want`. */
static void refused(const char *args, int code, const char *want)
{
	char cmd[8192], err[8192];
	/* compile and compare report progress on stderr unless --quiet */
	bool searches = !strncmp(args, "compile ", 8) || !strncmp(args, "compare ", 8);
	snprintf(cmd, sizeof cmd, "'%s' %s%s", MESHPLAN_BIN, args, searches ? " --quiet" : "");
	int rc = sh(cmd, err, sizeof err);
	cr_expect_eq(rc, code, "exit %d, want %d: %s\n  stderr: %s", rc, code, args, err);
	size_t len = strlen(err);
	cr_expect(len > 0 && err[len - 1] == '\n' && !memchr(err, '\n', len - 1),
		  "not one line: %s\n  stderr: [%s]", args, err);
	cr_expect(strstr(err, want), "'%s' not in: %s", want, err);
}

/* A copy of file `from` with `a` replaced by `b` (first occurrence) at `to`. */
static void edit_copy(const char *from, const char *to, const char *a, const char *b)
{
	FILE *f = fopen(from, "rb");
	cr_assert(f, "%s", from);
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *at = strstr(buf, a);
	cr_assert(at, "'%s' not in %s", a, from);
	f = fopen(to, "wb");
	cr_assert(f);
	fwrite(buf, 1, (size_t)(at - buf), f);
	fputs(b, f);
	fputs(at + strlen(a), f);
	fclose(f);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 20);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	cr_assert(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

/* Files in dir, "." and ".." aside. */
static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	cr_assert(d);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static char tmpdir[64];

static void mk_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/meshplan-hostile-XXXXXX");
	cr_assert(mkdtemp(tmpdir));
}

static void rm_tmpdir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	cr_expect_eq(system(cmd), 0);
}

/* A plan of tiny on the tiny cluster, written by simulate -o. */
static void make_plan(const char *path)
{
	char args[1024], out[8192];
	snprintf(args, sizeof args,
		 "simulate %s --cluster %s --batch 16 --manual dp=2,tp=2,pp=2,mbs=2 -o %s", TINY,
		 TINYC, path);
	cr_assert_eq(test_run(args, out, sizeof out), 0, "%s", out);
}

/* simulate of that plan with its first `a` replaced by `b` exits `code` with `want`. */
static void edited_plan_refused(const char *a, const char *b, int code, const char *want)
{
	char plan[128], bad[128], args[512];
	snprintf(plan, sizeof plan, "%s/p.xml", tmpdir);
	snprintf(bad, sizeof bad, "%s/bad.xml", tmpdir);
	make_plan(plan);
	edit_copy(plan, bad, a, b);
	snprintf(args, sizeof args, "simulate %s", bad);
	refused(args, code, want);
}

TestSuite(hostile, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 300);

/* ---- 1. the stage DP is sized before it is allocated ---- */

Test(hostile, a_million_nodes_is_refused_before_the_dp_allocates)
{
	refused("compile " TINY " --cluster dgx-a100 --nodes 1000000 --batch 16", 1,
		"meshplan compile: the stage DP for 8000000 GPUs");
}

Test(hostile, a_node_of_100000_gpus_is_refused_by_the_cluster_reader)
{
	refused("compile " TINY " --cluster " HOSTILE "/huge_node.xml --batch 16", 2,
		"huge_node.xml:8: gpus-per-node must be an integer in 1..1024");
}

/* ---- 2. outputs ---- */

Test(hostile, writing_to_dev_full_fails_with_exit_1)
{
	char plan[128], args[512];
	snprintf(plan, sizeof plan, "%s/p.xml", tmpdir);
	make_plan(plan);
	snprintf(args, sizeof args, "simulate %s -o /dev/full", plan);
	refused(args, 1, "/dev/full: cannot write the plan: No space left on device");
	snprintf(args, sizeof args, "simulate %s --trace /dev/full", plan);
	refused(args, 1, "/dev/full: cannot write");
}

Test(hostile, a_file_size_limit_leaves_the_old_file_and_exits_1)
{
	char plan[128], out[128], cmd[1024], err[4096];
	snprintf(plan, sizeof plan, "%s/p.xml", tmpdir);
	snprintf(out, sizeof out, "%s/out.xml", tmpdir);
	make_plan(plan);
	put(out, "old\n");
	snprintf(cmd, sizeof cmd, "ulimit -f 1; '%s' simulate %s -o %s", MESHPLAN_BIN, plan, out);
	int rc = sh(cmd, err, sizeof err);
	cr_expect_eq(rc, 1, "exit %d: %s", rc, err);
	cr_expect(strstr(err, "File too large"), "%s", err);
	char *now = slurp(out);
	cr_expect_str_eq(now, "old\n");
	free(now);
	cr_expect_eq(count_files(tmpdir), 2, "no temporary file is left behind");
}

Test(hostile, a_failed_trace_leaves_the_plan_untouched)
{
	char plan[128], args[512];
	snprintf(plan, sizeof plan, "%s/p.xml", tmpdir);
	make_plan(plan);
	char *before = slurp(plan);
	/* a new plan for -o, and a trace that cannot be created */
	snprintf(args, sizeof args,
		 "simulate %s --cluster %s --batch 32 --manual dp=2,tp=2,pp=2,mbs=2 -o %s "
		 "--trace %s/missing/t.json", TINY, TINYC, plan, tmpdir);
	refused(args, 2, "missing/t.json: cannot write: No such file or directory");
	char *after = slurp(plan);
	cr_expect_str_eq(after, before, "the plan given with -o is not written");
	free(before);
	free(after);
	cr_expect_eq(count_files(tmpdir), 1);
}

/* Kills `meshplan ARGS` after `us` microseconds; the target then holds the
 * old text or a whole new file (ending in `tail`), never a piece. */
static void kill_during(const char *args, const char *target, const char *tail, int us)
{
	put(target, "old\n");
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execl("/bin/sh", "sh", "-c", args, (char *)NULL);
		_exit(127);
	}
	nanosleep(&(struct timespec){us / 1000000, (long)(us % 1000000) * 1000}, NULL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	char *now = slurp(target);
	cr_assert(now);
	size_t n = strlen(now), t = strlen(tail);
	cr_expect(!strcmp(now, "old\n") || (n >= t && !strcmp(now + n - t, tail)),
		  "after a kill at %d us the target holds a piece: %.200s", us, now);
	free(now);
}

Test(hostile, a_kill_during_the_outputs_keeps_the_old_files_whole)
{
	char plan[128], out[128], trace[128], cmd[1024];
	snprintf(plan, sizeof plan, "%s/p.xml", tmpdir);
	snprintf(out, sizeof out, "%s/out.xml", tmpdir);
	snprintf(trace, sizeof trace, "%s/t.json", tmpdir);
	make_plan(plan);
	/* exec: the kill reaches meshplan itself */
	snprintf(cmd, sizeof cmd, "exec '%s' simulate %s -o %s", MESHPLAN_BIN, plan, out);
	for (int us = 0; us <= 300000; us += 15000)
		kill_during(cmd, out, "</plan>\n", us);
	snprintf(cmd, sizeof cmd, "exec '%s' simulate %s --trace %s", MESHPLAN_BIN, plan, trace);
	for (int us = 0; us <= 300000; us += 15000)
		kill_during(cmd, trace, "]}\n", us);
}

Test(hostile, outputs_into_a_directory_are_refused)
{
	char plan[128], args[512];
	snprintf(plan, sizeof plan, "%s/p.xml", tmpdir);
	make_plan(plan);
	snprintf(args, sizeof args, "simulate %s -o %s", plan, tmpdir);
	refused(args, 2, "cannot write: is a directory");
}

/* ---- 3. small files, unbounded work ---- */

Test(hostile, nested_repeats_stop_at_the_expansion_limit)
{
	time_t t0 = time(NULL);
	refused("info " HOSTILE "/nested_repeat.xml", 2,
		"nested_repeat.xml:8: the model expands to over 30000 elements");
	refused("info " HOSTILE "/empty_repeat.xml", 2,
		"empty_repeat.xml:8: the model expands to over 30000 elements");
	cr_expect_leq(time(NULL) - t0, 60, "refused quickly");
}

/* Found by fuzzing: 100000 implicit layers, each one a grow-by-one realloc,
 * took 31 s and 944 MB under ASan before the limit refused them (then at
 * 100000 elements; 1.5-1.9 s under ASan on a loaded machine even in linear
 * time, 0.65-0.84 s at the limit of 30000). */
Test(hostile, many_implicit_layers_load_in_linear_time)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	refused("info " HOSTILE "/implicit_layers.xml", 2,
		"implicit_layers.xml:9: the model expands to over 30000 elements");
	clock_gettime(CLOCK_MONOTONIC, &b);
	double s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
	cr_expect_lt(s, 10, "refused in %.2f s", s);
}

Test(hostile, entity_declarations_are_refused)
{
	refused("info --cluster " HOSTILE "/entity_cluster.xml", 2,
		"entity_cluster.xml:2: DOCTYPE and entity declarations are not allowed");
}

Test(hostile, a_file_over_the_size_limit_is_refused_before_it_is_read)
{
	char path[128], args[256];
	snprintf(path, sizeof path, "%s/big.xml", tmpdir);
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 100 << 20), 0); /* 100 MB, sparse */
	close(fd);
	snprintf(args, sizeof args, "info %s", path);
	refused(args, 2, "big.xml: file is 104857600 bytes, over the limit of 8388608");
}

/* A pipe has no size to check first: it is read up to the limit of
 * 8388608 bytes (ir.h, docs/limits.md), which loads, and a byte more is
 * refused.  The file is tiny.xml padded with a comment to the size. */
Test(hostile, a_pipe_of_the_size_limit_loads_and_one_byte_more_is_refused)
{
	char *tiny = slurp(TINY);
	cr_assert(tiny);
	size_t n = strlen(tiny);
	for (int extra = 0; extra <= 1; extra++) {
		char path[128], cmd[512], err[8192];
		snprintf(path, sizeof path, "%s/pipe%d.xml", tmpdir, extra);
		FILE *f = fopen(path, "wb");
		cr_assert(f);
		fputs(tiny, f);
		fputs("<!--", f);
		for (size_t i = n + 8; i < (8u << 20) + (size_t)extra; i++)
			fputc('x', f);
		fputs("-->\n", f);
		cr_assert_eq(ftell(f), (8L << 20) + extra);
		fclose(f);
		snprintf(cmd, sizeof cmd, "cat %s | '%s' info /dev/stdin", path, MESHPLAN_BIN);
		int rc = sh(cmd, err, sizeof err);
		if (!extra) {
			cr_expect_eq(rc, 0, "exit %d: %s", rc, err);
		} else {
			cr_expect_eq(rc, 2, "exit %d: %s", rc, err);
			cr_expect_str_eq(err, "meshplan: /dev/stdin: file is over the limit of "
					      "8388608 bytes (docs/limits.md)\n");
		}
		unlink(path);
	}
	free(tiny);
}

/* ---- 5. NaN and infinity ---- */

Test(hostile, nan_and_infinity_in_a_cluster_are_refused_with_their_line)
{
	refused("info --cluster " HOSTILE "/nan_memory.xml", 2,
		"nan_memory.xml:4: memory-gib must be a finite number in (0, 1e+09], not 'NaN'");
	refused("info --cluster " HOSTILE "/inf_latency.xml", 2,
		"inf_latency.xml:10: latency-us must be a finite number");
	refused("info --cluster " HOSTILE "/inf_price.xml", 2,
		"inf_price.xml:11: price-per-gpu-hour must be a finite number");
	refused("info --cluster " HOSTILE "/nan_pue.xml", 2, "nan_pue.xml:11: pue must be");
	refused("info --cluster " HOSTILE "/inf_tflops.xml", 2, "inf_tflops.xml:5: tflops must be");
}

Test(hostile, infinite_comm_bytes_in_a_plan_are_refused)
{
	edited_plan_refused("</stage>",
			    "<comm op=\"2\" kind=\"all-reduce\" axis=\"0\" bytes=\"INF\"/></stage>", 2,
			    "bytes must be a finite number in [0, 1e+18], not 'INF'");
}

/* ---- 6. integers ---- */

Test(hostile, integers_out_of_range_are_refused_not_wrapped)
{
	refused("info --cluster " HOSTILE "/big_count.xml", 2,
		"big_count.xml:8: count must be an integer in 1..1000000, not '2147483648'");
	refused("info --cluster " HOSTILE "/big_gpus_per_node.xml", 2,
		"big_gpus_per_node.xml:8: gpus-per-node must be an integer in 1..1024");
	refused("shard " TINY " --cluster " TINYC " --mesh 65536x65536", 2,
		"mesh '65536x65536' has more than 1073741824 devices");
	refused("shard " TINY " --cluster " TINYC " --nodes 4294967298 --mesh 1x4", 2,
		"meshplan shard: --nodes must be in 1..1000000, got 4294967298");
	refused("simulate " TINY " --cluster " TINYC " --batch 68719476752 "
		"--manual dp=2,tp=2,pp=2,mbs=2", 2,
		"meshplan simulate: --batch must be in 1..1073741824, got 68719476752");
	/* within the flag's range, the microbatch count is still bounded */
	refused("simulate " TINY " --cluster " TINYC " --batch 1073741824 "
		"--manual dp=1,tp=4,pp=2,mbs=1", 2, "1073741824 microbatches, over the limit of 16777216");
}

Test(hostile, a_plan_stage_of_65536x65536_is_refused)
{
	char plan[128], bad[128], args[512];
	snprintf(plan, sizeof plan, "%s/p.xml", tmpdir);
	snprintf(bad, sizeof bad, "%s/bad.xml", tmpdir);
	make_plan(plan);
	edit_copy(plan, bad, "logical=\"2x2\"", "logical=\"65536x65536\"");
	snprintf(args, sizeof args, "simulate %s", bad);
	refused(args, 2, "mesh '65536x65536' has more than 1073741824 devices");
	edit_copy(plan, bad, "gpus=\"4\"", "gpus=\"65536\"");
	refused(args, 2, "gpus must be in 0..1024");
}

/* ---- 7. long strings ---- */

Test(hostile, long_strings_are_refused_not_cut)
{
	static char args[16384];
	char set[6000];
	/* 2048 characters used to be cut into a different value */
	int n = snprintf(set, sizeof set, "h=");
	for (int i = 0; i < 2100; i++)
		n += snprintf(set + n, sizeof set - (size_t)n, "1");
	snprintf(args, sizeof args, "info %s --set %s", TINY, set);
	refused(args, 2, "overflows 64 bits");
	n = snprintf(set, sizeof set, "h=8");
	for (int i = 0; n < 4200; i++)
		n += snprintf(set + n, sizeof set - (size_t)n, ",h=8");
	snprintf(args, sizeof args, "info %s --set %s", TINY, set);
	refused(args, 2, "parameter list is longer than 4096 characters");
	refused("info " HOSTILE "/long_shape.xml", 2,
		"long_shape.xml:8: shape of 'x' is longer than 1023 characters");
	snprintf(args, sizeof args,
		 "estimate --step-time 1 --gpus 4 --tokens-per-step 10 --tokens 100 --speeds "
		 "1,0.%0100d1", 0);
	refused(args, 2, "--speeds: an item is longer than 63 characters");
}

/* ---- 4. flags inside their ranges, bounded work ---- */

Test(hostile, flags_in_range_make_bounded_work)
{
	time_t t0 = time(NULL);
	/* 2^40: the divisors are found up to sqrt(G), not by counting to G */
	refused("compare " TINY " --cluster " TINYC " --batch 1099511627776", 2,
		"--batch must be in 1..1073741824");
	refused("compile " TINY " --cluster dgx-a100 --nodes 100000 --batch 16", 1,
		"the stage DP for 800000 GPUs");
	refused("estimate --step-time 1 --gpus 16384 --tokens-per-step 4e6 --tokens 1e15 "
		"--failures --runs 100000", 1, "100000 runs need over 50000000 events");
	refused("estimate --step-time 1 --gpus 64 --tokens-per-step 1 --tokens 10 "
		"--speed-dist uniform:0.5:1 --dp-workers 10000000 --sharding dynamic "
		"--shards-per-worker 1000000", 2, "is over 1e+07 shards");
	cr_expect_leq(time(NULL) - t0, 120, "each refused within seconds");
}

Test(hostile, help_shows_each_flags_range)
{
	char out[16384];
	cr_assert_eq(test_run("compile --help", out, sizeof out), 0);
	cr_expect(strstr(out, "node count (default: the cluster file's) [1..1000000]"), "%s", out);
	cr_assert_eq(test_run("estimate --help", out, sizeof out), 0);
	cr_expect(strstr(out, "[1..100000]"), "%s", out);
}

/* ---- 8. plans that do not mean what they say ---- */

/* A copy of `from` at `to` without the <op> elements of its first stage. */
static void drop_first_stage_ops(const char *from, const char *to)
{
	char *buf = slurp(from);
	cr_assert(buf, "%s", from);
	FILE *f = fopen(to, "wb");
	cr_assert(f, "%s", to);
	bool in_first = false, done = false;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (!done && strstr(line, "<stage "))
			in_first = true;
		if (in_first && strstr(line, "</stage>"))
			in_first = false, done = true;
		if (!(in_first && strstr(line, "<op ")))
			fprintf(f, "%s\n", line);
	}
	fclose(f);
	free(buf);
}

Test(hostile, a_plan_whose_stages_share_devices_is_refused_with_the_line)
{
	/* pp=2: stage 0 on node 0, stage 1 (line 19) on node 1 */
	edited_plan_refused("node0=\"1\" nodes=\"1\" gpu0=\"0\"", "node0=\"0\" nodes=\"1\" gpu0=\"2\"", 2,
			    "bad.xml:19: stage of layers 1..2 shares devices with the stage of "
			    "layers 0..0 (line 4)");
}

Test(hostile, a_stage_without_ops_is_refused_with_the_line)
{
	char plan[128], bad[128], args[512];
	snprintf(plan, sizeof plan, "%s/p.xml", tmpdir);
	snprintf(bad, sizeof bad, "%s/bad.xml", tmpdir);
	make_plan(plan);
	drop_first_stage_ops(plan, bad);
	snprintf(args, sizeof args, "simulate %s", bad);
	refused(args, 2, "bad.xml:4: stage of layers 0..0 has no ops");
}

Test(hostile, a_strategy_naming_a_label_the_op_lacks_is_refused_with_the_line)
{
	/* line 5: op 0, block0/fc1, batch-split "b=0" over 2 ways */
	edited_plan_refused("<op id=\"0\" ways=\"2\" strategy=\"b=0\"/>",
			    "<op id=\"0\" ways=\"2\" strategy=\"Z=0\"/>", 2,
			    "bad.xml:5: stage 0: op block0/fc1: strategy 'Z=0' names label 'Z', "
			    "which the op does not have");
}

Test(hostile, ways_that_do_not_match_the_strategy_are_refused_with_the_line)
{
	/* "b=0" splits over mesh axis 0 of the 2x2 stage: 2 devices, not 4 */
	edited_plan_refused("<op id=\"0\" ways=\"2\" strategy=\"b=0\"/>",
			    "<op id=\"0\" ways=\"4\" strategy=\"b=0\"/>", 2,
			    "bad.xml:5: stage 0: op block0/fc1: ways=4, but strategy 'b=0' divides "
			    "its work over 2 devices");
}

/* ---- 9. messages ---- */

Test(hostile, messages_name_the_right_file_and_line)
{
	char plan[128], bad[128], args[512];
	snprintf(plan, sizeof plan, "%s/p.xml", tmpdir);
	snprintf(bad, sizeof bad, "%s/bad.xml", tmpdir);
	make_plan(plan);
	/* a schema error in an attribute carries the element's line */
	edit_copy(plan, bad, "microbatches=\"", "microbatches=\"x");
	snprintf(args, sizeof args, "simulate %s", bad);
	refused(args, 2, "bad.xml:2: schema violation");
	/* a directory is not "an empty document" */
	refused("info " DATA, 2, "tests/data: is a directory, not a file");
	/* control characters are escaped: one line, nothing spoofed */
	refused("info " HOSTILE "/newline_tensor.xml", 2,
		"newline_tensor.xml:6: undefined tensor 'nothere\\x0ameshplan:'");
	/* an overflowed cluster size is the cluster file's fault */
	refused("compile " TINY " --cluster " HOSTILE "/big_count.xml --batch 16", 2,
		"big_count.xml:8: count must be");
}

Test(hostile, the_first_xml_error_is_reported)
{
	char path[128], args[256];
	snprintf(path, sizeof path, "%s/two.xml", tmpdir);
	/* the first fault is on line 3; libxml2's last error would be later */
	put(path, "<?xml version=\"1.0\"?>\n<model name=\"a\" xmlns=\"urn:meshplan:model\">\n"
		  "  <param name=\"batch\" value=\"1\"/ >\n  <a><b></a>\n</model>\n");
	snprintf(args, sizeof args, "info %s", path);
	refused(args, 2, "two.xml:3: not well-formed XML");
}

Test(hostile, a_trace_on_a_full_disk_is_a_runtime_failure)
{
	char plan[128], args[512];
	snprintf(plan, sizeof plan, "%s/p.xml", tmpdir);
	make_plan(plan);
	snprintf(args, sizeof args, "simulate %s --trace /dev/full", plan);
	refused(args, 1, "No space left on device");
}

Test(hostile, an_estimate_that_overflows_is_refused)
{
	refused("estimate --step-time 1e300 --gpus 4 --tokens-per-step 1 --tokens 1e300", 2,
		"overflows");
}

Test(hostile, a_missing_argument_is_one_line_that_points_to_help)
{
	refused("compile", 2, "meshplan compile: needs MODEL, --cluster and --batch (see --help)");
	refused("compare " TINY, 2, "meshplan compare: needs MODEL, --cluster and --batch (see --help)");
	refused("shard " TINY, 2, "meshplan shard: needs MODEL, --cluster and --mesh (see --help)");
	refused("simulate", 2, "meshplan simulate: name a plan file or a model (see --help)");
	refused("info", 2, "meshplan info: name a model or --cluster (see --help)");
	refused("calibrate", 2, "meshplan calibrate: name RUNS.tsv and --cluster (see --help)");
	refused("sweep", 2, "meshplan sweep: needs one SWEEP.xml (see --help)");
	refused("provision", 2, "meshplan provision: needs one MODEL (see --help)");
}

/* ---- 10. an unknown zoo model ---- */

Test(hostile, an_unknown_zoo_model_exits_2_without_a_leak)
{
	/* under LeakSanitizer a leak would turn the exit code into 1 */
	refused("info nosuchmodel", 2, "nosuchmodel: no such model file or zoo model");
}

/* ---- found by fuzzing: deep nesting in an expression ---- */

Test(hostile, deeply_nested_brackets_in_set_are_refused_not_a_stack_overflow)
{
	char args[5000];
	int n = snprintf(args, sizeof args, "info %s --set 'h=", TINY);
	for (int i = 0; i < 2000; i++)
		args[n++] = '(';
	args[n++] = '1';
	for (int i = 0; i < 2000; i++)
		args[n++] = ')';
	args[n++] = '\'';
	args[n] = 0;
	refused(args, 2, "nests brackets or minus signs deeper than 64");
}

Test(hostile, a_long_run_of_minus_signs_is_refused_not_a_stack_overflow)
{
	char args[5000];
	int n = snprintf(args, sizeof args, "info %s --set 'h=", TINY);
	for (int i = 0; i < 3000; i++)
		args[n++] = '-';
	args[n++] = '1';
	args[n++] = '\'';
	args[n] = 0;
	refused(args, 2, "nests brackets or minus signs deeper than 64");
}

/* A schema that cannot be read is the same one line on every load (a
 * schema is compiled once per process, a failed one is not kept). */
Test(hostile, a_missing_schema_is_one_line_naming_it)
{
	char cmd[8192], err[8192];
	snprintf(cmd, sizeof cmd, "MESHPLAN_DATA=/nonexistent '%s' info %s", MESHPLAN_BIN, TINY);
	int rc = sh(cmd, err, sizeof err);
	cr_expect_eq(rc, 2, "exit %d: %s", rc, err);
	cr_expect_str_eq(err, "meshplan: /nonexistent/models/model.rng: cannot load the schema "
			      "(set MESHPLAN_DATA to the source tree)\n");
}
