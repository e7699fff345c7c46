/*
 * test_import.c -- Hugging Face configs as models (ir/hf.c, `meshplan
 * import hf`, hf:PATH names): parameter counts against the published
 * counts of the real models, seq and its source, and refusals by field.
 *
 * The configs in tests/data/hf/ are the config.json files published with
 * each model on the Hugging Face Hub (meta-llama/Llama-2-7b-hf,
 * mistralai/Mistral-7B-v0.1, mistralai/Mixtral-8x7B-v0.1, Qwen/Qwen2-7B,
 * google/gemma-7b, openai-community/gpt2, EleutherAI/gpt-neox-20b).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/helpers.h"

#define DATA MESHPLAN_DATA_DIR "/tests/data"
#define HF "hf:" DATA "/hf/"

static int64_t params_of(const char *model, const char *set)
{
	IrGraph g = test_forward_graph(model, set);
	IrStats s;
	ir_graph_stats(&g, &s);
	ir_graph_free(&g);
	return s.params;
}

/*
 * Published counts.  KerasHub's preset tables state the parameter count of
 * the checkpoints they convert from these Hugging Face models
 * (keras-team/keras-hub, keras_hub/src/models/<family>/<family>_presets.py,
 * "params"); GPT-NeoX-20B's is in EleutherAI's model card and paper (Black
 * et al. 2022, arXiv:2204.06745, "n_parameters 20554567680").
 */
Test(import, llama_2_7b_has_its_published_parameter_count)
{
	/* llama_presets.py, llama2_7b_en: 6738415616 */
	cr_expect_eq(params_of(HF "llama-2-7b.json", NULL), 6738415616LL);
}

Test(import, mistral_7b_has_its_published_parameter_count)
{
	/* mistral_presets.py, mistral_7b_en: 7241732096.  Its 4096-token
	 * sliding window is below max_position_embeddings (32768), so the
	 * sequence is set to the window. */
	cr_expect_eq(params_of(HF "mistral-7b-v0.1.json", "seq=4096"), 7241732096LL);
}

Test(import, mixtral_8x7b_has_its_published_parameter_count)
{
	/* mixtral_presets.py, mixtral_8_7b_en: 46702792704 */
	cr_expect_eq(params_of(HF "mixtral-8x7b-v0.1.json", "seq=4096"), 46702792704LL);
}

Test(import, qwen2_7b_has_its_published_parameter_count)
{
	/* qwen_presets.py, qwen2.5_math_7b_en: 7615616512 (Qwen2.5-Math-7B has
	 * Qwen2-7B's shapes: 28 layers, 3584 wide, 18944 FFN, 28 query and 4 KV
	 * heads, 152064 tokens, q/k/v biases, untied head) */
	cr_expect_eq(params_of(HF "qwen2-7b.json", "seq=4096"), 7615616512LL);
}

Test(import, gemma_7b_has_its_published_parameter_count)
{
	/* gemma_presets.py, gemma_7b_en: 8537680896 (head_dim 256, so
	 * heads*head_dim = 4096 is not hidden_size = 3072; tied embedding) */
	cr_expect_eq(params_of(HF "gemma-7b.json", NULL), 8537680896LL);
}

Test(import, gpt2_has_its_published_parameter_count)
{
	/* gpt2_presets.py, gpt2_base_en: 124439808 (learned positions, biases,
	 * LayerNorm, tied embedding) */
	cr_expect_eq(params_of(HF "gpt2.json", NULL), 124439808LL);
}

Test(import, gpt_neox_20b_has_its_published_parameter_count)
{
	/* Black et al. 2022, model card table: n_parameters 20554567680 */
	cr_expect_eq(params_of(HF "gpt-neox-20b.json", NULL), 20554567680LL);
}

Test(import, seq_is_max_position_embeddings_unless_set)
{
	IrGraph g = test_forward_graph(HF "llama-2-7b.json", "layers=1");
	cr_expect_eq(g.seq, 4096);
	ir_graph_free(&g);
	g = test_forward_graph(HF "llama-2-7b.json", "layers=1,seq=512");
	cr_expect_eq(g.seq, 512);
	ir_graph_free(&g);

	char out[8192];
	int code = test_run("info " HF "llama-2-7b.json --set layers=1", out, sizeof out);
	cr_expect_eq(code, 0, "%s", out);
	cr_expect(strstr(out, "seq = 4096 from max_position_embeddings"), "%s", out);
	code = test_run("info " HF "llama-2-7b.json --set layers=1,seq=512", out, sizeof out);
	cr_expect_eq(code, 0, "%s", out);
	cr_expect(!strstr(out, "max_position_embeddings"), "%s", out);
}

/* Writes text to a temporary .json file; its path in buf. */
static void temp_config(char *buf, const char *text)
{
	strcpy(buf, "/tmp/meshplan-hf-XXXXXX");
	int fd = mkstemp(buf);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void expect_refused(const char *config, const char *field)
{
	char path[64], args[256], out[4096];
	temp_config(path, config);
	snprintf(args, sizeof args, "import hf %s -o /dev/null", path);
	int code = test_run(args, out, sizeof out);
	unlink(path);
	cr_expect_eq(code, 2, "%s", out);
	cr_expect(strstr(out, field), "no '%s' in: %s", field, out);
	cr_expect(strchr(out, '\n') == out + strlen(out) - 1, "one line: %s", out);
}

#define SMALL "\"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, " \
	      "\"vocab_size\": 100, \"intermediate_size\": 128, \"max_position_embeddings\": 32"

Test(import, refuses_an_unknown_model_type_naming_the_field)
{
	expect_refused("{\"model_type\": \"falcon\", " SMALL "}", "'model_type'");
	expect_refused("{\"model_type\": \"t5\", " SMALL "}", "encoder-decoder");
	expect_refused("{" SMALL "}", "'model_type' is missing");
}

Test(import, refuses_a_field_it_does_not_read)
{
	/* a key that may change the model is never dropped silently */
	expect_refused("{\"model_type\": \"llama\", \"num_experts\": 4, " SMALL "}",
		       "'num_experts'");
	expect_refused("{\"model_type\": \"llama\", \"hidden_act\": \"tanh\", " SMALL "}",
		       "'hidden_act'");
	expect_refused("{\"model_type\": \"llama\", \"num_key_value_heads\": 3, " SMALL "}",
		       "'num_key_value_heads'");
	expect_refused("{\"model_type\": \"llama\", \"hidden_size\": 64, \"hidden_size\": 32}",
		       "duplicate");
}

Test(import, refuses_a_sliding_window_below_seq)
{
	char out[4096];
	int code = test_run("import hf " DATA "/hf/mistral-7b-v0.1.json -o /dev/null", out,
			    sizeof out);
	cr_expect_eq(code, 2, "%s", out);
	cr_expect(strstr(out, "'sliding_window' (4096) is below seq 32768"), "%s", out);
	code = test_run("import hf " DATA "/hf/mistral-7b-v0.1.json -o /dev/null --set seq=4096",
			out, sizeof out);
	cr_expect_eq(code, 0, "%s", out);
}

Test(import, written_model_loads_with_the_same_count)
{
	char path[] = "/tmp/meshplan-hf-model-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	char args[512], out[4096];
	snprintf(args, sizeof args, "import hf %s/hf/gpt2.json -o %s", DATA, path);
	int code = test_run(args, out, sizeof out);
	cr_assert_eq(code, 0, "%s", out);
	cr_expect(strstr(out, "124439808"), "%s", out);
	cr_expect_eq(params_of(path, NULL), 124439808LL);
	unlink(path);
}

Test(import, compile_takes_an_hf_name)
{
	char plan[] = "/tmp/meshplan-hf-plan-XXXXXX";
	int fd = mkstemp(plan);
	cr_assert_geq(fd, 0);
	close(fd);
	char args[1024];
	snprintf(args, sizeof args,
		 "compile " HF "qwen2-7b.json --set layers=1,hidden=256,heads=4,kv_heads=2,"
		 "ffn=512,vocab=1000,seq=128 --cluster %s/tiny-cluster.xml --nodes 1 --batch 8 "
		 "-o %s --json", DATA, plan);
	int code;
	json_t *j = test_run_json(args, &code);
	cr_expect_eq(code, 0);
	cr_expect_gt(test_num(j, "step_time_s"), 0);
	json_decref(j);
	snprintf(args, sizeof args, "simulate %s --json", plan);
	j = test_run_json(args, &code);
	cr_expect_eq(code, 0);
	json_decref(j);
	unlink(plan);
}
