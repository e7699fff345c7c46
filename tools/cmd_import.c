/*
 * cmd_import.c -- `meshplan import hf CONFIG.json`: a Hugging Face
 * transformers config as a meshplan model file (ir/hf.c does the reading).
 */
#include <stdlib.h>
#include <string.h>

#include "tools/tools.h"

static const char *VERB = "import";

enum { O_OUT, O_SET, O_JSON, O_HELP, NOPT };

static const ToolOpt opts[NOPT] = {
	[O_OUT] = {"out", 'o', TOOL_STR, "FILE", TOOL_ANY, false, 0,
		   "write the model XML here (default: stdout)"},
	[O_SET] = {"set", 0, TOOL_PARAMS, "NAME=VALUE,...", TOOL_ANY, true, 0,
		   "parameter defaults of the written model (seq=N: instead of "
		   "max_position_embeddings)"},
	[O_JSON] = {"json", 0, TOOL_FLAG, NULL, TOOL_ANY, false, 0,
		    "the summary as one JSON object on stdout (needs -o)"},
	[O_HELP] = {"help", 'h', TOOL_FLAG, NULL, TOOL_ANY, false, 0, "this text"},
};

static void usage(FILE *f)
{
	fputs("usage: meshplan import hf CONFIG.json [-o MODEL.xml] [--set NAME=VALUE,...] [--json]\n"
	      "\n"
	      "Writes the model a Hugging Face transformers config.json describes as a meshplan\n"
	      "model file (model_type llama, mistral, mixtral, qwen2, gemma, gpt2, gpt_neox),\n"
	      "weight for weight, and prints its parameter count.  Every other verb also takes\n"
	      "hf:CONFIG.json as a model name.  seq is max_position_embeddings unless --set\n"
	      "seq=N is given; a config key that may change the model and is not read is an\n"
	      "error naming it (docs/formats.md, \"Hugging Face configs\").\n\noptions:\n", f);
	tool_opts_help(f, opts, NOPT);
}

void tool_model_notes(const IrModelDoc *m, const IrParamSet *ps)
{
	const char *n = ir_model_notes(m);
	for (const char *p = n; *p;) {
		const char *q = strchr(p, '\n');
		int len = q ? (int)(q - p) : (int)strlen(p);
		fprintf(stderr, "meshplan: %s: %.*s\n", ir_model_file(m), len, p);
		p += len + (q != NULL);
	}
	int64_t seq;
	bool given = false;
	for (int i = 0; ps && i < ps->n; i++)
		given = given || !strcmp(ps->name[i], "seq");
	if (!given && ir_model_seq_from_config(m, &seq))
		fprintf(stderr, "meshplan: %s: seq = %lld from max_position_embeddings "
				"(--set seq=N for another)\n",
			ir_model_file(m), (long long)seq);
}

int cmd_import(int argc, char **argv)
{
	IrParamSet ps = {0};
	ToolVal v[NOPT];
	const char *pos[2];
	int npos;
	ToolCmdLine cl = {.verb = VERB, .opts = opts, .nopts = NOPT, .maxpos = 2, .params = &ps, .usage = usage};
	int code;
	if (tool_opts_done(&cl, argc, argv, v, pos, &npos, &code))
		return code;
	if (npos != 2 || strcmp(pos[0], "hf")) {
		tool_error(VERB, EXIT_BADINPUT, npos ? "the only source is 'hf' (import hf CONFIG.json)"
						     : "name the source and the file: import hf CONFIG.json");
		usage(stderr);
		return EXIT_BADINPUT;
	}
	const char *out = v[O_OUT].str;
	bool json = v[O_JSON].set;
	if (json && !out)
		return tool_error(VERB, EXIT_BADINPUT, "--json prints the summary on stdout; give -o "
						       "for the model");
	IrError e;
	IrHfModel h;
	if (ir_hf_import(pos[1], &ps, &h, &e))
		return tool_input_error(&e);
	/* the parameter count, from the document itself */
	char spec[4200];
	snprintf(spec, sizeof spec, "hf:%s", pos[1]);
	IrModelDoc *m = ir_model_open(spec, &e);
	IrGraph g;
	if (!m || ir_model_instantiate(m, &ps, &g, &e)) {
		ir_model_close(m);
		ir_hf_free(&h);
		return tool_input_error(&e);
	}
	IrStats st;
	ir_graph_stats(&g, &st);
	/* -o: written atomically; else on stdout */
	IrOutput o = {.f = stdout};
	if (out && ir_output_open(&o, out, &e)) {
		ir_graph_free(&g);
		ir_model_close(m);
		ir_hf_free(&h);
		return tool_input_error(&e);
	}
	fwrite(h.xml, 1, h.len, o.f);
	if (out ? ir_output_commit(&o, &e) : fflush(stdout) != 0 || ferror(stdout)) {
		ir_graph_free(&g);
		ir_model_close(m);
		ir_hf_free(&h);
		return tool_error(VERB, EXIT_INFEASIBLE, "%s", out ? e.msg : "writing stdout failed");
	}
	tool_model_notes(m, &ps);
	if (json) {
		json_t *j = json_object();
		json_object_set_new(j, "model_type", json_string(h.name));
		json_object_set_new(j, "file", json_string(out));
		json_object_set_new(j, "params", json_integer(st.params));
		json_object_set_new(j, "seq", json_integer(g.seq));
		json_object_set_new(j, "seq_from", json_string(h.seq_from_config ?
								       "max_position_embeddings" :
								       "--set seq"));
		json_t *notes = json_array();
		for (const char *p = h.notes; *p;) {
			const char *q = strchr(p, '\n');
			size_t len = q ? (size_t)(q - p) : strlen(p);
			json_array_append_new(notes, json_stringn(p, len));
			p += len + (q != NULL);
		}
		json_object_set_new(j, "notes", notes);
		tool_print_json(j);
	} else {
		char a[32];
		fprintf(out ? stdout : stderr, "%s: model_type %s, %s parameters (%lld), seq %lld%s\n",
			out ? out : "model", h.name, tool_si((double)st.params, a, sizeof a),
			(long long)st.params, (long long)g.seq,
			h.seq_from_config ? " (max_position_embeddings)" : "");
	}
	ir_graph_free(&g);
	ir_model_close(m);
	ir_hf_free(&h);
	return EXIT_OK;
}
