/*
 * test_headroom.c -- a GPU's usable memory is its HBM less a reserve (CUDA
 * context, NCCL buffers, fragmentation): a plan fits only within it.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/helpers.h"

#define DATA MESHPLAN_DATA_DIR "/tests/data"
#define GiB 1073741824.0

/* tiny-cluster with memory-gib="mem" and the reserve attribute `reserve`
 * ("" for none), written to path. */
static void cluster_file(char *path, const char *mem, const char *reserve)
{
	strcpy(path, "/tmp/meshplan-headroom-XXXXXX");
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	char cmd[1024];
	snprintf(cmd, sizeof cmd,
		 "sed 's|memory-gib=\"16\" reserve-gib=\"0\"|memory-gib=\"%s\" %s|' %s/tiny-cluster.xml > %s",
		 mem, reserve, DATA, path);
	cr_assert_eq(system(cmd), 0);
}

/* simulate the SMALL plan on cluster `path`; its JSON, exit status in *code. */
static json_t *simulate_on(const char *path, int *code)
{
	char args[1024];
	snprintf(args, sizeof args,
		 "simulate gpt --set layers=4,hidden=512,heads=8,seq=256 --cluster %s --batch 16 "
		 "--manual dp=2,tp=2,pp=2,mbs=2 --json", path);
	return test_run_json(args, code);
}

Test(headroom, a_plan_over_usable_memory_but_under_hbm_does_not_fit)
{
	char path[64];
	/* the plan's peak: about 0.28 GiB per GPU (checked below) */
	cluster_file(path, "0.5", "reserve-gib=\"0.3\"");
	int code;
	json_t *j = simulate_on(path, &code);
	double peak = test_num(j, "peak_memory_bytes");
	cr_assert_gt(peak, 0.2 * GiB);
	cr_assert_lt(peak, 0.5 * GiB);
	cr_expect_float_eq(test_num(j, "memory_bytes_per_gpu"), 0.2 * GiB, 1);
	cr_expect_float_eq(test_num(j, "hbm_bytes_per_gpu"), 0.5 * GiB, 1);
	cr_expect(json_is_false(json_object_get(j, "fits")));
	cr_expect_eq(code, 1);
	json_decref(j);

	/* the table shows both figures */
	char out[16384], args[1024];
	snprintf(args, sizeof args,
		 "simulate gpt --set layers=4,hidden=512,heads=8,seq=256 --cluster %s --batch 16 "
		 "--manual dp=2,tp=2,pp=2,mbs=2", path);
	code = test_run(args, out, sizeof out);
	cr_expect_eq(code, 1, "%s", out);
	cr_expect(strstr(out, "of 0.20 usable (HBM 0.50 less 0.30 reserved)"), "%s", out);
	cr_expect(strstr(out, "DOES NOT FIT"), "%s", out);
	unlink(path);

	/* a smaller reserve: the same plan fits */
	cluster_file(path, "0.5", "reserve-gib=\"0.1\"");
	j = simulate_on(path, &code);
	cr_expect(json_is_true(json_object_get(j, "fits")));
	cr_expect_eq(code, 0);
	json_decref(j);
	unlink(path);
}

Test(headroom, the_default_reserve_is_a_tenth_of_hbm)
{
	char path[64];
	cluster_file(path, "0.5", "");
	int code;
	json_t *j = simulate_on(path, &code);
	cr_expect_float_eq(test_num(j, "memory_reserve_bytes"), 0.05 * GiB, 1);
	cr_expect_float_eq(test_num(j, "memory_bytes_per_gpu"), 0.45 * GiB, 1);
	json_decref(j);
	unlink(path);
}

Test(headroom, a_reserve_of_all_the_memory_is_refused)
{
	char path[64], out[4096], args[512];
	cluster_file(path, "0.5", "reserve-gib=\"0.5\"");
	snprintf(args, sizeof args, "info --cluster %s", path);
	int code = test_run(args, out, sizeof out);
	unlink(path);
	cr_expect_eq(code, 2, "%s", out);
	cr_expect(strstr(out, "reserve-gib"), "%s", out);
}
