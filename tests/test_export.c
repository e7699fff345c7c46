/*
 * test_export.c -- `meshplan export`: Megatron-LM arguments that Megatron-LM's
 * parser accepts, DeepSpeed keys that DeepSpeed reads, a DTensor map naming
 * every weight once, and plans an engine cannot run refused by stage.
 *
 * The accepted names are lists taken from the engines' sources, kept with
 * their commits: tests/data/megatron-flags.txt (Megatron-LM's
 * megatron/training/arguments.py and the flags its ArgumentGroupFactory makes
 * from config dataclasses) and tests/data/deepspeed-keys.txt (DeepSpeed's
 * config constants, ZeRO config fields and pipeline keys); the scripts that
 * list them are in scripts/.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/helpers.h"

#define DATA MESHPLAN_DATA_DIR "/tests/data"
#define SMALL "gpt --set layers=4,hidden=512,heads=8,seq=256"

/* Whether line `name` is in list file `path` (comment lines skipped). */
static bool listed(const char *path, const char *name)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	char line[256];
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		found = line[0] != '#' && !strcmp(line, name);
	}
	fclose(f);
	return found;
}

/* A plan of SMALL on the tiny cluster written by simulate --manual KEYS. */
static void manual_plan(char *path, const char *keys)
{
	strcpy(path, "/tmp/meshplan-export-XXXXXX");
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	char args[1024], out[8192];
	snprintf(args, sizeof args, "simulate " SMALL " --cluster %s/tiny-cluster.xml --batch 16 "
		 "--manual %s -o %s", DATA, keys, path);
	int code = test_run(args, out, sizeof out);
	cr_assert_eq(code, 0, "%s", out);
}

/* Runs export; stdout+stderr into out. */
static int export(const char *plan, const char *to, char *out, size_t n)
{
	char args[512];
	snprintf(args, sizeof args, "export %s --to %s", plan, to);
	return test_run(args, out, n);
}

/* Checks every "--flag" of Megatron-LM arguments against the list; the
 * number of flags checked. */
static int check_megatron_flags(const char *text)
{
	int n = 0;
	char *copy = strdup(text), *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#')
			continue;
		char flag[128];
		cr_assert_eq(sscanf(line, "%127s", flag), 1);
		cr_expect(!strncmp(flag, "--", 2), "not a flag: %s", line);
		cr_expect(listed(DATA "/megatron-flags.txt", flag),
			  "%s is not a flag Megatron-LM accepts", flag);
		n++;
	}
	free(copy);
	return n;
}

Test(export, megatron_flags_are_ones_megatron_accepts)
{
	char plan[64], out[16384];
	manual_plan(plan, "dp=2,tp=2,pp=2,mbs=2,sp=1,recompute=selective,zero=1");
	int code = export(plan, "megatron", out, sizeof out);
	unlink(plan);
	cr_assert_eq(code, 0, "%s", out);
	cr_expect_geq(check_megatron_flags(out), 10, "%s", out);
	cr_expect(strstr(out, "--tensor-model-parallel-size 2\n"), "%s", out);
	cr_expect(strstr(out, "--pipeline-model-parallel-size 2\n"), "%s", out);
	cr_expect(strstr(out, "--sequence-parallel\n"), "%s", out);
	cr_expect(strstr(out, "--micro-batch-size 2\n"), "%s", out);
	cr_expect(strstr(out, "--global-batch-size 16\n"), "%s", out);
	cr_expect(strstr(out, "--recompute-granularity selective\n"), "%s", out);
	cr_expect(strstr(out, "--use-distributed-optimizer\n"), "%s", out);
}

Test(export, megatron_interleaved_and_full_recompute)
{
	char plan[64], out[16384];
	manual_plan(plan, "dp=2,tp=2,pp=2,v=2,mbs=2,recompute=full");
	int code = export(plan, "megatron", out, sizeof out);
	unlink(plan);
	cr_assert_eq(code, 0, "%s", out);
	check_megatron_flags(out);
	cr_expect(strstr(out, "--num-layers-per-virtual-pipeline-stage 1\n"), "%s", out);
	cr_expect(strstr(out, "--recompute-granularity full\n"), "%s", out);
	cr_expect(!strstr(out, "--sequence-parallel"), "%s", out);
}

Test(export, a_plan_with_two_stage_meshes_is_refused_by_stage)
{
	char plan[64], out[8192];
	manual_plan(plan, "dp=2,tp=2,pp=2,mbs=2");
	/* stage 1 seen as 4x1 instead of 2x2 */
	char cmd[256];
	snprintf(cmd, sizeof cmd, "sed -i '0,/logical=\"2x2\"/! s/logical=\"2x2\"/logical=\"4x1\"/' %s",
		 plan);
	cr_assert_eq(system(cmd), 0);
	int code = export(plan, "megatron", out, sizeof out);
	cr_expect_eq(code, 1, "%s", out);
	cr_expect(strstr(out, "stage 1: mesh 4x1 where stage 0 has 2x2"), "%s", out);
	cr_expect(strchr(out, '\n') == out + strlen(out) - 1, "one line: %s", out);
	code = export(plan, "deepspeed", out, sizeof out);
	cr_expect_eq(code, 1, "%s", out);
	unlink(plan);
}

Test(export, deepspeed_refuses_tensor_parallelism)
{
	char plan[64], out[8192];
	manual_plan(plan, "dp=2,tp=2,pp=2,mbs=2");
	int code = export(plan, "deepspeed", out, sizeof out);
	unlink(plan);
	cr_expect_eq(code, 1, "%s", out);
	cr_expect(strstr(out, "stage 0: tensor parallelism"), "%s", out);
}

/* Every key path of o ("a.b") against the DeepSpeed list; the count. */
static int check_deepspeed_keys(json_t *o, const char *prefix)
{
	int n = 0;
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		char path[256];
		snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", k);
		cr_expect(listed(DATA "/deepspeed-keys.txt", path), "%s is not a DeepSpeed key", path);
		n++;
		if (json_is_object(v))
			n += check_deepspeed_keys(v, path);
	}
	return n;
}

Test(export, deepspeed_keys_are_ones_deepspeed_reads)
{
	char plan[64];
	manual_plan(plan, "dp=4,tp=1,pp=2,mbs=2,zero=1,recompute=full");
	char args[256];
	snprintf(args, sizeof args, "export %s --to deepspeed", plan);
	int code;
	json_t *j = test_run_json(args, &code);
	unlink(plan);
	cr_assert_eq(code, 0);
	cr_expect_geq(check_deepspeed_keys(j, ""), 10);
	/* DeepSpeed's own identity: batch = micro batch x accumulation x dp */
	json_int_t B = json_integer_value(json_object_get(j, "train_batch_size"));
	json_int_t mb = json_integer_value(json_object_get(j, "train_micro_batch_size_per_gpu"));
	json_int_t gas = json_integer_value(json_object_get(j, "gradient_accumulation_steps"));
	cr_expect_eq(B, 16);
	cr_expect_eq(B, mb * gas * 4);
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(j, "zero_optimization"),
							"stage")), 1);
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(j, "pipeline"), "stages")),
		     2);
	json_decref(j);
}

Test(export, dtensor_names_every_weight_exactly_once)
{
	char plan[64];
	manual_plan(plan, "dp=2,tp=2,pp=2,mbs=2");
	char args[256];
	snprintf(args, sizeof args, "export %s --to dtensor", plan);
	int code;
	json_t *j = test_run_json(args, &code);
	unlink(plan);
	cr_assert_eq(code, 0);
	json_t *w = json_object_get(j, "weights");
	IrGraph g = test_forward_graph("gpt", "layers=4,hidden=512,heads=8,seq=256");
	int nweights = 0;
	for (int t = 0; t < g.ntensors; t++) {
		if (g.tensors[t].role != IR_T_WEIGHT)
			continue;
		nweights++;
		json_t *e = json_object_get(w, g.tensors[t].name);
		cr_expect_not_null(e, "weight %s missing", g.tensors[t].name);
		if (!e)
			continue;
		json_t *pl = json_object_get(e, "placements");
		cr_expect_eq(json_array_size(pl), 2);
		for (size_t d = 0; d < json_array_size(pl); d++) {
			const char *s = json_string_value(json_array_get(pl, d));
			int dim;
			cr_expect(!strcmp(s, "Replicate()") ||
					  (sscanf(s, "Shard(%d)", &dim) == 1 && dim >= 0 &&
					   dim < g.tensors[t].ndim),
				  "%s: %s", g.tensors[t].name, s);
		}
	}
	/* json object keys are unique, so equal counts mean each exactly once */
	cr_expect_eq((int)json_object_size(w), nweights);
	/* the embedding table: vocabulary over tp (mesh dim 1), as Megatron-LM */
	json_t *wte = json_object_get(json_object_get(w, "wte"), "placements");
	cr_expect_str_eq(json_string_value(json_array_get(wte, 0)), "Replicate()");
	cr_expect_str_eq(json_string_value(json_array_get(wte, 1)), "Shard(0)");
	ir_graph_free(&g);
	json_decref(j);
}

/* compile --target ENGINE of the tiny model, exported --to ENGINE: exit 0. */
static void target_exports(const char *engine)
{
	char plan[] = "/tmp/meshplan-target-XXXXXX";
	int fd = mkstemp(plan);
	cr_assert_geq(fd, 0);
	close(fd);
	char args[1024], out[16384];
	snprintf(args, sizeof args, "compile %s/tiny.xml --cluster %s/tiny-cluster.xml --batch 16 "
		 "--target %s -o %s --json", DATA, DATA, engine, plan);
	int code;
	json_t *j = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	cr_expect_str_eq(json_string_value(json_object_get(j, "target")), engine);
	/* the unrestricted plan's step time beside the target's */
	cr_expect(json_is_real(json_object_get(j, "any_step_time_s")));
	cr_expect_gt(test_num(j, "step_time_s"), 0);
	json_decref(j);
	code = export(plan, engine, out, sizeof out);
	unlink(plan);
	cr_expect_eq(code, 0, "%s", out);
	if (!strcmp(engine, "megatron"))
		check_megatron_flags(out);
}

Test(export, a_megatron_target_plan_exports)
{
	target_exports("megatron");
}

Test(export, a_deepspeed_target_plan_exports)
{
	target_exports("deepspeed");
}

Test(export, stdout_redirected_to_a_file_gets_the_arguments)
{
	char plan[64], out[] = "/tmp/meshplan-export-out-XXXXXX";
	manual_plan(plan, "dp=2,tp=2,pp=2,mbs=2");
	int fd = mkstemp(out);
	cr_assert_geq(fd, 0);
	close(fd);
	char cmd[512];
	snprintf(cmd, sizeof cmd, "'%s' export %s --to megatron > %s", MESHPLAN_BIN, plan, out);
	cr_expect_eq(system(cmd), 0);
	FILE *f = fopen(out, "r");
	cr_assert_not_null(f);
	char line[256] = "";
	cr_expect_not_null(fgets(line, sizeof line, f));
	cr_expect(!strncmp(line, "# Megatron-LM arguments", 23), "%s", line);
	fclose(f);
	unlink(out);
	unlink(plan);
}
