/*
 * test_cli.c -- the command line guides: every verb parses its options from
 * the table its --help prints, and a mistyped name gets a suggestion.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tests/helpers.h"

static const char *const verbs[] = {"info", "shard", "simulate", "compile", "compare",
				    "estimate", "sweep", "provision", "report", "explain"};

/* Every option --help names is one the parser knows, and --help names each
 * option the parser accepts only once. */
Test(cli, every_option_in_help_is_parsed)
{
	static char out[65536], err[8192];
	for (size_t v = 0; v < sizeof verbs / sizeof verbs[0]; v++) {
		char args[256];
		snprintf(args, sizeof args, "%s --help", verbs[v]);
		cr_assert_eq(test_run(args, out, sizeof out), 0, "%s --help", verbs[v]);
		int seen = 0;
		for (char *p = out; (p = strstr(p, "\n  ")); p++) {
			char name[64];
			const char *q = p + 3;
			if (!strncmp(q, "-", 1) && q[1] != '-' && q[2] == ',')
				q += 4; /* "-o, --output" */
			if (sscanf(q, "--%63[a-z0-9-]", name) != 1)
				continue;
			seen++;
			snprintf(args, sizeof args, "%s --%s", verbs[v], name);
			test_run(args, err, sizeof err);
			cr_expect_null(strstr(err, "unknown option"), "%s --%s: %s", verbs[v], name,
				       err);
		}
		cr_expect_geq(seen, 3, "%s --help lists %d options", verbs[v], seen);
	}
}

Test(cli, a_mistyped_option_gets_a_suggestion)
{
	char out[4096];
	cr_expect_eq(test_run("compile gpt --clster dgx-a100 --batch 8", out, sizeof out), 2);
	cr_expect(strstr(out, "did you mean '--cluster'?"), "%s", out);
	cr_expect_eq(test_run("estimate --step-tme 1", out, sizeof out), 2);
	cr_expect(strstr(out, "did you mean '--step-time'?"), "%s", out);
	cr_expect_eq(test_run("simulate plan.xml --jsn", out, sizeof out), 2);
	cr_expect(strstr(out, "did you mean '--json'?"), "%s", out);
}

Test(cli, a_mistyped_verb_gets_a_suggestion)
{
	char out[4096];
	cr_expect_eq(test_run("simulat x", out, sizeof out), 2);
	cr_expect(strstr(out, "did you mean 'simulate'?"), "%s", out);
	/* nothing near: the verbs are listed */
	cr_expect_eq(test_run("frobnicate", out, sizeof out), 2);
	cr_expect(strstr(out, "valid: info,"), "%s", out);
}

Test(cli, an_option_value_out_of_range_names_the_range)
{
	char out[4096];
	cr_expect_eq(test_run("compile gpt --cluster dgx-a100 --batch 0", out, sizeof out), 2);
	cr_expect(strstr(out, "--batch must be in 1.."), "%s", out);
	cr_expect_eq(test_run("compile gpt --cluster dgx-a100 --batch=abc", out, sizeof out), 2);
	cr_expect(strstr(out, "'abc' is not an integer"), "%s", out);
}

Test(cli, list_names_every_zoo_model_preset_and_cluster)
{
	int code;
	json_t *j = test_run_json("list --json", &code);
	cr_assert_eq(code, 0);
	json_t *models = json_object_get(j, "models"), *presets = json_object_get(j, "presets"),
	       *clusters = json_object_get(j, "clusters");
	/* models/ holds gpt, llama, moe, wresnet; clusters/ five files (aws-p3.16xlarge,
	 * dgx-a100, dgx-h100, dgx-h200, jean-zay-a100) */
	cr_expect_eq(json_array_size(models), 4);
	cr_expect_eq(json_array_size(clusters), 5);
	/* every listed preset opens */
	size_t i;
	json_t *p;
	int n = 0;
	json_array_foreach(presets, i, p) {
		IrError e;
		IrModelDoc *m = ir_model_open(json_string_value(json_object_get(p, "name")), &e);
		cr_expect_not_null(m, "%s", e.msg);
		ir_model_close(m);
		n++;
	}
	cr_expect_geq(n, 37); /* gpt 16, llama 6, moe 8, wresnet 7 */
	json_decref(j);
}

/* One typo per kind of name: model, preset, cluster, --set key, flag, verb. */
Test(cli, a_typo_in_each_kind_of_name_gets_a_suggestion)
{
	static const struct {
		const char *args, *want;
	} cases[] = {
		{"info lama:7b", "did you mean 'llama'?"},
		{"info llama:7B", "did you mean '7b'?"},
		{"info --cluster dgx-a10", "did you mean 'dgx-a100'?"},
		{"info --cluster h100", "did you mean 'dgx-h100'?"},
		{"info llama:7b --set hiden=4096", "did you mean 'hidden'?"},
		{"info llama:7b --jsno", "did you mean '--json'?"},
		{"infp llama:7b", "did you mean 'info'?"},
		{"list cluster", "did you mean 'clusters'?"},
	};
	char out[4096];
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		cr_expect_eq(test_run(cases[k].args, out, sizeof out), 2, "%s", cases[k].args);
		cr_expect(strstr(out, cases[k].want), "%s: %s", cases[k].args, out);
	}
}

Test(cli, a_parameter_set_that_breaks_a_model_rule_is_refused_with_the_rule)
{
	char out[4096];
	cr_expect_eq(test_run("info llama:7b --set heads=33", out, sizeof out), 2);
	cr_expect(strstr(out, "heads divides hidden"), "%s", out);
	cr_expect(strstr(out, "hidden % heads = 4"), "%s", out); /* 4096 = 124*33 + 4 */
	cr_expect_eq(test_run("info llama:70b --set kv_heads=7", out, sizeof out), 2);
	cr_expect(strstr(out, "kv_heads divides heads"), "%s", out);
	cr_expect_eq(test_run("info gpt --set layers=abc", out, sizeof out), 2);
	cr_expect(strstr(out, "parameter layers: unknown parameter 'abc'"), "%s", out);
	/* a rule kept: accepted */
	cr_expect_eq(test_run("info llama:7b --set heads=64", out, sizeof out), 0, "%s", out);
}

Test(cli, a_preset_of_a_model_file_is_named_file_colon_preset)
{
	int code;
	json_t *a = test_run_json("info " MESHPLAN_DATA_DIR "/models/gpt.xml:1.3b --json", &code);
	cr_assert_eq(code, 0);
	json_t *b = test_run_json("info gpt:1.3b --json", &code);
	cr_assert_eq(code, 0);
	cr_expect_eq(json_integer_value(json_object_get(a, "params")),
		     json_integer_value(json_object_get(b, "params")));
	/* Megatron's 1.3B: 24 layers of width 2048 ~ 1.3e9 parameters */
	cr_expect(json_integer_value(json_object_get(a, "params")) > 1200000000);
	json_decref(a);
	json_decref(b);
}
