/*
 * helpers.h -- what several test programs need: a model's training graph,
 * a cluster, and `meshplan` run as a program with its JSON read back.
 * Failures end the calling test (Criterion assertions).
 */
#ifndef MESHPLAN_TEST_HELPERS_H
#define MESHPLAN_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/wait.h>

#include "ir/ir.h"

#ifndef MESHPLAN_BIN
#define MESHPLAN_BIN "meshplan"
#endif

/* Forward graph of `model` (zoo name or path) with overrides "a=1,b=2" (or NULL). */
static inline IrGraph test_forward_graph(const char *model, const char *set)
{
	IrError e = {0};
	IrParamSet ps = {0};
	if (set)
		cr_assert_eq(ir_params_parse(&ps, set, &e), 0, "%s", e.msg);
	IrModelDoc *m = ir_model_open(model, &e);
	cr_assert_not_null(m, "%s: %s", model, e.msg);
	IrGraph g;
	cr_assert_eq(ir_model_instantiate(m, &ps, &g, &e), 0, "%s:%d: %s", e.file, e.line, e.msg);
	ir_model_close(m);
	return g;
}

/* Its training graph. */
static inline IrGraph test_graph(const char *model, const char *set)
{
	IrGraph g = test_forward_graph(model, set);
	IrError e = {0};
	cr_assert_eq(ir_build_training(&g, &e), 0, "%s", e.msg);
	return g;
}

/* Cluster `name` (zoo name or path), `nodes` of it (0: the file's count). */
static inline IrCluster test_cluster(const char *name, int nodes)
{
	IrCluster c;
	IrError e = {0};
	cr_assert_eq(ir_cluster_load(name, nodes, &c, &e), 0, "%s: %s", name, e.msg);
	return c;
}

/* Runs `meshplan ARGS`, stdout and stderr into out (n bytes); its exit status. */
static inline int test_run(const char *args, char *out, size_t n)
{
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", MESHPLAN_BIN, args);
	FILE *p = popen(cmd, "r");
	cr_assert(p, "popen %s", cmd);
	size_t len = fread(out, 1, n - 1, p);
	out[len] = 0;
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs `meshplan ARGS` and parses what it prints as JSON; *code: its exit status. */
static inline json_t *test_run_json(const char *args, int *code)
{
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "%s %s", MESHPLAN_BIN, args);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	json_error_t err;
	json_t *j = json_loadf(p, 0, &err);
	int st = pclose(p);
	*code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	cr_assert_not_null(j, "%s: %s", cmd, err.text);
	return j;
}

/* The number at `key` of object o. */
static inline double test_num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	cr_assert(json_is_number(v), "no number '%s'", key);
	return json_number_value(v);
}

#endif
