/*
 * cmd_list.c -- `meshplan list [models|presets|clusters]`: what the zoo
 * holds, so that names need not be guessed.
 */
#include <string.h>

#include "tools/tools.h"

static const char *VERB = "list";

enum { O_JSON, O_HELP, NOPT };

static const ToolOpt opts[NOPT] = {
	[O_JSON] = {"json", 0, TOOL_FLAG, NULL, TOOL_ANY, false, 0, "one JSON object on stdout"},
	[O_HELP] = {"help", 'h', TOOL_FLAG, NULL, TOOL_ANY, false, 0, "this text"},
};

static void usage(FILE *f)
{
	fputs("usage: meshplan list [models|presets|clusters] [--json]\n"
	      "\n"
	      "The zoo: models (each a family; name one as FAMILY or FAMILY:PRESET), their\n"
	      "presets, and clusters (name one with --cluster).  Without a kind, all three.\n"
	      "A model file of your own takes presets the same way: ./my.xml:large.\n\noptions:\n",
	      f);
	tool_opts_help(f, opts, NOPT);
}

static void list_models(bool presets, json_t *out)
{
	char names[IR_ZOO_MAX][IR_ZOO_NAME];
	int n = ir_zoo_names("models", names, IR_ZOO_MAX);
	json_t *arr = json_array();
	if (!out)
		printf("%s\n", presets ? "presets (MODEL:PRESET)" : "models");
	for (int i = 0; i < n; i++) {
		IrError e;
		IrModelDoc *m = ir_model_open(names[i], &e);
		if (!m)
			continue; /* a broken zoo file is reported where it is used */
		const char *pn[IR_SUGGEST_LIST];
		int np = ir_model_presets(m, pn, IR_SUGGEST_LIST);
		if (np > IR_SUGGEST_LIST)
			np = IR_SUGGEST_LIST;
		if (!presets) {
			const char *d = ir_model_preset_doc(m, NULL);
			if (out)
				json_array_append_new(arr, json_pack("{s:s,s:s,s:i}", "name", names[i],
					"description", d ? d : "", "presets", np));
			else
				printf("  %-12s %2d presets  %.90s\n", names[i], np, d ? d : "");
		}
		for (int k = 0; presets && k < np; k++) {
			const char *d = ir_model_preset_doc(m, pn[k]);
			char full[128];
			snprintf(full, sizeof full, "%.60s:%.60s", names[i], pn[k]);
			if (out)
				json_array_append_new(arr, json_pack("{s:s,s:s}", "name", full, "doc",
								     d ? d : ""));
			else
				printf("  %-22s %s\n", full, d ? d : "");
		}
		ir_model_close(m);
	}
	if (out)
		json_object_set_new(out, presets ? "presets" : "models", arr);
	else
		json_decref(arr);
}

static void list_clusters(json_t *out)
{
	char names[IR_ZOO_MAX][IR_ZOO_NAME];
	int n = ir_zoo_names("clusters", names, IR_ZOO_MAX);
	json_t *arr = json_array();
	if (!out)
		printf("clusters\n");
	for (int i = 0; i < n; i++) {
		IrCluster c;
		IrError e;
		if (ir_cluster_load(names[i], 0, &c, &e))
			continue;
		if (out)
			json_array_append_new(arr, json_pack("{s:s,s:s,s:i,s:i}", "name", names[i],
				"gpu", c.gpu.name, "nodes", c.nodes, "gpus_per_node", c.gpus_per_node));
		else
			printf("  %-18s %d nodes x %d %s\n", names[i], c.nodes, c.gpus_per_node,
			       c.gpu.name);
		ir_cluster_free(&c);
	}
	if (out)
		json_object_set_new(out, "clusters", arr);
	else
		json_decref(arr);
}

int cmd_list(int argc, char **argv)
{
	ToolVal v[NOPT];
	const char *pos[1];
	int npos;
	ToolCmdLine cl = {.verb = VERB, .opts = opts, .nopts = NOPT, .maxpos = 1, .usage = usage};
	int code;
	if (tool_opts_done(&cl, argc, argv, v, pos, &npos, &code))
		return code;
	static const char *const kinds[] = {"models", "presets", "clusters"};
	int kind = -1; /* all */
	if (npos) {
		for (int k = 0; k < 3; k++)
			if (!strcmp(pos[0], kinds[k]))
				kind = k;
		if (kind < 0) {
			char hint[256];
			ir_suggest(pos[0], kinds, 3, hint, sizeof hint);
			return tool_error(VERB, EXIT_BADINPUT, "no list '%s'; %s", pos[0], hint);
		}
	}
	json_t *out = v[O_JSON].set ? json_object() : NULL;
	for (int k = 0; k < 3; k++) {
		if (kind >= 0 && kind != k)
			continue;
		if (!out && kind < 0 && k)
			putchar('\n');
		if (k == 2)
			list_clusters(out);
		else
			list_models(k == 1, out);
	}
	if (out)
		tool_print_json(out);
	return EXIT_OK;
}
