/*
 * hf.c -- imports a Hugging Face transformers config.json as a model
 * document (models/model.rng), so that `hf:PATH` names a model like a zoo
 * entry and `meshplan import hf` writes it out.
 *
 * Reads: the config (JSON, via jansson) and optional parameter overrides.
 * Writes: the text of a model XML: a decoder-only transformer whose weights
 * are those of the transformers class the model_type selects, one for one,
 * so the parameter count is the real model's.  Every key of the config is
 * either read, or on a list of keys that change neither a shape nor a cost
 * (token ids, epsilons, rope bases, ...); any other key is refused by name,
 * so nothing that changes the model is dropped silently.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "ir/ir.h"

/* What a model_type builds (the transformers modelling file's layout). */
typedef struct HfArch {
	const char *type;
	bool rms;         /* RMSNorm with a gain; else LayerNorm with gain and bias */
	bool rotary;      /* rotary positions; else a learned position table */
	bool glu;         /* gate, up and down projections; else fc1 and fc2 */
	bool qkv_bias;    /* biases on q, k and v */
	bool out_bias;    /* biases on the attention output and the MLP */
	bool tied;        /* tie_word_embeddings when the config does not say */
	bool moe;         /* sparse MoE MLP (num_local_experts, num_experts_per_tok) */
	bool emb_scale;   /* embeddings scaled by sqrt(hidden) (Gemma) */
	bool parallel;    /* attention and MLP in parallel (use_parallel_residual) */
	const char *act;  /* activation when the config does not say */
} HfArch;

static const HfArch arches[] = {
	/*  type        rms    rotary glu    qkvb   outb   tied   moe    scale  par    act */
	{"llama",    true,  true,  true,  false, false, false, false, false, false, "silu"},
	{"mistral",  true,  true,  true,  false, false, false, false, false, false, "silu"},
	{"mixtral",  true,  true,  true,  false, false, false, true,  false, false, "silu"},
	{"qwen2",    true,  true,  true,  true,  false, false, false, false, false, "silu"},
	{"gemma",    true,  true,  true,  false, false, true,  false, true,  false, "gelu"},
	{"gpt2",     false, false, false, true,  true,  true,  false, false, false, "gelu_new"},
	{"gpt_neox", false, true,  false, true,  true,  false, false, false, true,  "gelu"},
};

/* Keys that change neither a shape nor a cost meshplan models. */
static const char *const ignored[] = {
	"_name_or_path", "architectures", "transformers_version", "bos_token_id",
	"eos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id",
	"initializer_range", "use_cache", "rms_norm_eps", "layer_norm_eps",
	"layer_norm_epsilon", "rope_theta", "rope_scaling", "rotary_emb_base",
	"pretraining_tp", "output_router_logits", "router_aux_loss_coef",
	"router_jitter_noise", "n_ctx", "scale_attn_weights", "reorder_and_upcast_attn",
	"scale_attn_by_inverse_layer_idx", "summary_activation", "summary_first_dropout",
	"summary_proj_to_labels", "summary_type", "summary_use_proj", "task_specific_params",
	"tokenizer_class", "id2label", "label2id", "classifier_dropout", "return_dict",
	"output_hidden_states", "output_attentions", "torchscript", "use_return_dict",
	"max_window_layers", "model_max_length", "problem_type", "is_decoder", "add_cross_attention",
};

/* A growable text buffer on the one allocator. */
typedef struct Buf {
	char *s;
	size_t n, cap;
} Buf;

__attribute__((format(printf, 2, 3))) static void put(Buf *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
		va_end(ap);
		if (k < 0)
			ir_oom();
		if (b->s && b->n + (size_t)k < b->cap) {
			b->n += (size_t)k;
			return;
		}
		b->cap = (b->cap + (size_t)k + 1) * 2;
		b->s = ir_xrealloc(b->s, b->cap);
	}
}

/* The config being read: which keys were looked at. */
typedef struct Cfg {
	json_t *root;
	const char *file;
	const char *used[96];
	int nused;
	char *notes;
	size_t notes_n;
} Cfg;

static void use(Cfg *c, const char *key)
{
	if (c->nused < (int)(sizeof c->used / sizeof c->used[0]))
		c->used[c->nused++] = key;
}

static bool was_used(const Cfg *c, const char *key)
{
	for (int i = 0; i < c->nused; i++)
		if (!strcmp(c->used[i], key))
			return true;
	return false;
}

__attribute__((format(printf, 2, 3))) static void note(Cfg *c, const char *fmt, ...)
{
	size_t at = strlen(c->notes);
	if (at + 2 >= c->notes_n)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->notes + at, c->notes_n - at - 1, fmt, ap);
	va_end(ap);
	strcat(c->notes, "\n");
}

/* The first of keys (NULL-terminated) present and not null: its value,
 * and in *which its name. */
static json_t *find(Cfg *c, const char *const *keys, const char **which)
{
	for (int i = 0; keys[i]; i++) {
		json_t *v = json_object_get(c->root, keys[i]);
		use(c, keys[i]);
		if (v && !json_is_null(v)) {
			if (which)
				*which = keys[i];
			return v;
		}
	}
	return NULL;
}

/* A positive integer field: 1 read, 0 absent (*v untouched), -1 with e. */
static int get_int(Cfg *c, const char *const *keys, int64_t *v, IrError *e)
{
	const char *k = NULL;
	json_t *j = find(c, keys, &k);
	if (!j)
		return 0;
	if (!json_is_integer(j) || json_integer_value(j) <= 0 ||
	    json_integer_value(j) > ((int64_t)1 << 40))
		return ir_fail(e, c->file, 0, "field '%s' must be a positive integer", k);
	*v = json_integer_value(j);
	return 1;
}

static int need_int(Cfg *c, const char *const *keys, int64_t *v, IrError *e)
{
	int r = get_int(c, keys, v, e);
	if (r == 0)
		return ir_fail(e, c->file, 0, "field '%s' is missing", keys[0]);
	return r < 0 ? -1 : 0;
}

/* A boolean field: 1 read, 0 absent, -1 with e. */
static int get_bool(Cfg *c, const char *key, bool *v, IrError *e)
{
	const char *const keys[] = {key, NULL};
	json_t *j = find(c, keys, NULL);
	if (!j)
		return 0;
	if (!json_is_boolean(j))
		return ir_fail(e, c->file, 0, "field '%s' must be true or false", key);
	*v = json_is_true(j);
	return 1;
}

/* A number field in [0, 1]: 1 read, 0 absent, -1 with e. */
static int get_frac(Cfg *c, const char *key, double *v, IrError *e)
{
	const char *const keys[] = {key, NULL};
	json_t *j = find(c, keys, NULL);
	if (!j)
		return 0;
	if (!json_is_number(j) || json_number_value(j) < 0 || json_number_value(j) > 1)
		return ir_fail(e, c->file, 0, "field '%s' must be a number in [0, 1]", key);
	*v = json_number_value(j);
	return 1;
}

/* The elementwise function of an activation name, NULL if not modelled. */
static const char *act_fn(const char *name)
{
	static const char *const gelu[] = {"gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh",
					   "gelu_python", "gelu_accurate", NULL};
	for (int i = 0; gelu[i]; i++)
		if (!strcmp(name, gelu[i]))
			return "gelu";
	if (!strcmp(name, "silu") || !strcmp(name, "swish"))
		return "silu";
	if (!strcmp(name, "relu"))
		return "relu";
	return NULL;
}

/* The shapes and switches read from a config. */
typedef struct Shape {
	const HfArch *arch;
	int64_t hidden, layers, heads, kv_heads, vocab, ffn, hdim, positions, seq;
	int64_t experts, topk, window;
	bool hdim_given;  /* head_dim differs from hidden/heads or was stated */
	bool tied, qkv_bias, out_bias, mlp_bias, parallel;
	const char *act;  /* elementwise function */
	const char *dtype;
	double attn_drop, resid_drop, emb_drop;
} Shape;

static int64_t ovr_value(const IrParamSet *ovr, const char *name, int64_t dflt, bool *given)
{
	for (int i = 0; ovr && i < ovr->n; i++)
		if (!strcmp(ovr->name[i], name)) {
			if (given)
				*given = true;
			return ovr->value[i];
		}
	return dflt;
}

static int read_shape(Cfg *c, const IrParamSet *ovr, Shape *s, IrHfModel *out, IrError *e)
{
	memset(s, 0, sizeof *s);
	const char *const k_type[] = {"model_type", NULL};
	json_t *jt = find(c, k_type, NULL);
	if (!jt || !json_is_string(jt))
		return ir_fail(e, c->file, 0, "field 'model_type' is missing (not a transformers "
				   "config.json?)");
	const char *type = json_string_value(jt);
	for (size_t i = 0; i < sizeof arches / sizeof arches[0]; i++)
		if (!strcmp(arches[i].type, type))
			s->arch = &arches[i];
	if (!s->arch) {
		if (!strcmp(type, "t5"))
			return ir_fail(e, c->file, 0, "field 'model_type' is 't5': encoder-decoder "
					   "configs are not imported (write the model XML, docs/formats.md)");
		return ir_fail(e, c->file, 0, "field 'model_type' is '%.64s', which is not imported "
				   "(llama, mistral, mixtral, qwen2, gemma, gpt2, gpt_neox)", type);
	}
	snprintf(out->name, sizeof out->name, "%s", type);
	const HfArch *a = s->arch;

	const char *const k_hidden[] = {"hidden_size", "n_embd", NULL};
	const char *const k_layers[] = {"num_hidden_layers", "n_layer", NULL};
	const char *const k_heads[] = {"num_attention_heads", "n_head", NULL};
	const char *const k_kv[] = {"num_key_value_heads", NULL};
	const char *const k_vocab[] = {"vocab_size", NULL};
	const char *const k_ffn[] = {"intermediate_size", "n_inner", NULL};
	const char *const k_hdim[] = {"head_dim", NULL};
	const char *const k_pos[] = {"max_position_embeddings", "n_positions", NULL};
	if (need_int(c, k_hidden, &s->hidden, e) || need_int(c, k_layers, &s->layers, e) ||
	    need_int(c, k_heads, &s->heads, e) || need_int(c, k_vocab, &s->vocab, e))
		return -1;
	s->kv_heads = s->heads;
	if (get_int(c, k_kv, &s->kv_heads, e) < 0)
		return -1;
	if (s->heads % s->kv_heads)
		return ir_fail(e, c->file, 0, "field 'num_key_value_heads' (%lld) must divide "
				   "'num_attention_heads' (%lld)", (long long)s->kv_heads,
			       (long long)s->heads);
	s->ffn = 4 * s->hidden; /* GPT-2's n_inner null, GPT-NeoX's default */
	int r = get_int(c, k_ffn, &s->ffn, e);
	if (r < 0 || (r == 0 && a->glu && need_int(c, k_ffn, &s->ffn, e)))
		return -1;
	int hr = get_int(c, k_hdim, &s->hdim, e);
	if (hr < 0)
		return -1;
	if (hr == 0) {
		if (s->hidden % s->heads)
			return ir_fail(e, c->file, 0, "'hidden_size' (%lld) is not a multiple of "
					   "'num_attention_heads' (%lld) and no 'head_dim' is given",
				       (long long)s->hidden, (long long)s->heads);
		s->hdim = s->hidden / s->heads;
	}
	s->hdim_given = hr == 1 && s->hdim * s->heads != s->hidden;
	if (need_int(c, k_pos, &s->positions, e))
		return -1;

	/* dtype of the weights */
	const char *const k_dt[] = {"torch_dtype", "dtype", NULL};
	const char *dk = NULL;
	json_t *jd = find(c, k_dt, &dk);
	s->dtype = "bf16";
	if (jd) {
		const char *d = json_is_string(jd) ? json_string_value(jd) : "";
		if (!strcmp(d, "bfloat16"))
			s->dtype = "bf16";
		else if (!strcmp(d, "float16"))
			s->dtype = "fp16";
		else if (!strcmp(d, "float32"))
			s->dtype = "fp32";
		else
			return ir_fail(e, c->file, 0, "field '%s' is '%.32s' (bfloat16, float16 or "
					   "float32)", dk, d);
	} else {
		note(c, "no torch_dtype: weights and activations in bf16");
	}

	/* activation */
	const char *const k_act[] = {"hidden_act", "activation_function", "hidden_activation",
				     NULL};
	const char *ak = NULL;
	json_t *ja = find(c, k_act, &ak);
	const char *act = ja && json_is_string(ja) ? json_string_value(ja) : a->act;
	if (ja && !json_is_string(ja))
		return ir_fail(e, c->file, 0, "field '%s' must be a string", ak);
	s->act = act_fn(act);
	if (!s->act)
		return ir_fail(e, c->file, 0, "field '%s' is '%.32s', an activation meshplan does "
				   "not model (gelu, silu, relu)", ak ? ak : "hidden_act", act);

	s->tied = a->tied;
	s->qkv_bias = a->qkv_bias;
	s->out_bias = a->out_bias;
	s->mlp_bias = a->out_bias;
	s->parallel = a->parallel;
	if (get_bool(c, "tie_word_embeddings", &s->tied, e) < 0)
		return -1;
	bool ab = false;
	int abr = get_bool(c, "attention_bias", &ab, e);
	if (abr < 0)
		return -1;
	if (abr == 1) {
		s->qkv_bias = ab;
		if (a->rms)
			s->out_bias = ab; /* LlamaAttention: bias on q, k, v and o alike */
	}
	if (get_bool(c, "mlp_bias", &s->mlp_bias, e) < 0)
		return -1;
	if (!strcmp(a->type, "gpt_neox") && get_bool(c, "use_parallel_residual", &s->parallel, e) < 0)
		return -1;

	/* partial rotary: an elementwise op's width, not a shape */
	double rpct = 1;
	int rr = get_frac(c, "rotary_pct", &rpct, e);
	if (rr == 0)
		rr = get_frac(c, "partial_rotary_factor", &rpct, e);
	if (rr < 0)
		return -1;
	if (rpct < 1)
		note(c, "rotary on %.0f%% of each head: modelled as rotary over the whole head "
			"(an elementwise op; no weight changes)", 100 * rpct);

	/* dropout (costs an elementwise op where it is non-zero) */
	if (get_frac(c, "attn_pdrop", &s->attn_drop, e) < 0 ||
	    get_frac(c, "attention_dropout", &s->attn_drop, e) < 0 ||
	    get_frac(c, "resid_pdrop", &s->resid_drop, e) < 0 ||
	    get_frac(c, "hidden_dropout", &s->resid_drop, e) < 0 ||
	    get_frac(c, "embd_pdrop", &s->emb_drop, e) < 0)
		return -1;

	/* mixture of experts */
	if (a->moe) {
		const char *const k_e[] = {"num_local_experts", NULL};
		const char *const k_k[] = {"num_experts_per_tok", NULL};
		if (need_int(c, k_e, &s->experts, e) || need_int(c, k_k, &s->topk, e))
			return -1;
		if (s->topk > s->experts)
			return ir_fail(e, c->file, 0, "field 'num_experts_per_tok' (%lld) is above "
					   "'num_local_experts' (%lld)", (long long)s->topk,
				       (long long)s->experts);
	}

	/* sliding window: used when set (and not switched off) */
	bool use_window = true;
	if (get_bool(c, "use_sliding_window", &use_window, e) < 0)
		return -1;
	const char *const k_w[] = {"sliding_window", NULL};
	int64_t w = 0;
	if (get_int(c, k_w, &w, e) < 0)
		return -1;
	s->window = use_window ? w : 0;

	/* the sequence length: --set seq, else max_position_embeddings */
	bool seq_given = false;
	s->seq = ovr_value(ovr, "seq", s->positions, &seq_given);
	out->seq = s->seq;
	out->seq_from_config = !seq_given;
	/* (without overrides, as for hf:PATH, a later --set seq may still fit:
	 * the document's constraint checks it then) */
	if (ovr && s->window && s->window < s->seq)
		return ir_fail(e, c->file, 0, "field 'sliding_window' (%lld) is below seq %lld%s: "
				   "windowed attention is not modelled; give --set seq=%lld or less",
			       (long long)s->window, (long long)s->seq,
			       seq_given ? "" : " (max_position_embeddings)", (long long)s->window);

	/* anything else might change the model: refuse it by name */
	const char *key;
	json_t *val;
	json_object_foreach(c->root, key, val) {
		if (was_used(c, key))
			continue;
		bool ok = false;
		for (size_t i = 0; i < sizeof ignored / sizeof ignored[0] && !ok; i++)
			ok = !strcmp(key, ignored[i]);
		/* dropout rates of 0 change nothing */
		if (!ok && strstr(key, "drop") && json_is_number(val) && json_number_value(val) == 0)
			ok = true;
		if (!ok)
			return ir_fail(e, c->file, 0, "field '%.64s' is not one meshplan reads for "
					   "model_type '%s', and it may change the model", key, a->type);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The model document                                                 */

static void param(Buf *b, const IrParamSet *ovr, const char *name, int64_t v, const char *doc)
{
	put(b, "  <param name=\"%s\" value=\"%lld\" doc=\"%s\"/>\n", name,
	    (long long)ovr_value(ovr, name, v, NULL), doc);
}

static void weight(Buf *b, const Shape *s, const char *name, const char *shape)
{
	put(b, "      <weight name=\"%s\" shape=\"%s\" dtype=\"%s\"/>\n", name, shape, s->dtype);
}

static void op(Buf *b, const char *name, const char *kind, const char *spec, const char *in,
	       const char *out)
{
	put(b, "      <op name=\"%s\" kind=\"%s\"", name, kind);
	if (spec)
		put(b, " spec=\"%s\"", spec);
	put(b, " in=\"%s\" out=\"%s\"/>\n", in, out);
}

/* x -> norm -> out, with weights PREFIX{i} (gain) and PREFIX_b{i} (bias). */
static void norm(Buf *b, const Shape *s, const char *name, const char *w, const char *in,
		 const char *out)
{
	char g[64], bias[64], ins[192];
	snprintf(g, sizeof g, "%s", w);
	if (s->arch->rms) {
		snprintf(ins, sizeof ins, "%s,%s", in, g);
		op(b, name, "rmsnorm", NULL, ins, out);
		return;
	}
	const char *br = strchr(w, '{');
	snprintf(bias, sizeof bias, "%.*s_b%s", br ? (int)(br - w) : (int)strlen(w), w, br ? br : "");
	snprintf(ins, sizeof ins, "%s,%s,%s", in, g, bias);
	op(b, name, "layernorm", NULL, ins, out);
}

static void norm_weights(Buf *b, const Shape *s, const char *w)
{
	weight(b, s, w, "hidden");
	if (!s->arch->rms) {
		char bias[64];
		const char *br = strchr(w, '{');
		snprintf(bias, sizeof bias, "%.*s_b%s", br ? (int)(br - w) : (int)strlen(w), w,
			 br ? br : "");
		weight(b, s, bias, "hidden");
	}
}

static void attention(Buf *b, const Shape *s)
{
	weight(b, s, "wq{i}", "hidden,kv_heads,qpk,hdim");
	weight(b, s, "wk{i}", "hidden,kv_heads,hdim");
	weight(b, s, "wv{i}", "hidden,kv_heads,hdim");
	if (s->qkv_bias) {
		weight(b, s, "bq{i}", "kv_heads,qpk,hdim");
		weight(b, s, "bk{i}", "kv_heads,hdim");
		weight(b, s, "bv{i}", "kv_heads,hdim");
	}
	weight(b, s, "wo{i}", "kv_heads,qpk,hdim,hidden");
	if (s->out_bias)
		weight(b, s, "bo{i}", "hidden");
	op(b, "q", "einsum", "bsh,hgrd->bsgrd", "xn,wq{i}", s->qkv_bias ? "q0b" : "q0");
	op(b, "k", "einsum", "bsh,hgd->bsgd", "xn,wk{i}", s->qkv_bias ? "k0b" : "k0");
	op(b, "v", "einsum", "bsh,hgd->bsgd", "xn,wv{i}", s->qkv_bias ? "v0" : "v");
	if (s->qkv_bias) {
		op(b, "q_bias", "add", NULL, "q0b,bq{i}", "q0");
		op(b, "k_bias", "add", NULL, "k0b,bk{i}", "k0");
		op(b, "v_bias", "add", NULL, "v0,bv{i}", "v");
	}
	if (s->arch->rotary) {
		op(b, "q_rope", "rotary", NULL, "q0", "q");
		op(b, "k_rope", "rotary", NULL, "k0", "k");
	}
	const char *q = s->arch->rotary ? "q" : "q0", *k = s->arch->rotary ? "k" : "k0";
	char in[64];
	snprintf(in, sizeof in, "%s,%s", q, k);
	op(b, "score", "einsum", "bsgrd,bzgd->bgrsz", in, "s0");
	op(b, "scale", "scale", NULL, "s0", "s1");
	op(b, "mask", "mask", NULL, "s1", "s2");
	op(b, "softmax", "softmax", NULL, "s2", s->attn_drop > 0 ? "p0" : "p");
	if (s->attn_drop > 0)
		op(b, "attn_drop", "dropout", NULL, "p0", "p");
	op(b, "context", "einsum", "bgrsz,bzgd->bsgrd", "p,v", "c");
	const char *o = s->out_bias ? "o0" : s->resid_drop > 0 ? "o1" : "o";
	op(b, "proj", "einsum", "bsgrd,grdh->bsh", "c,wo{i}", o);
	if (s->out_bias)
		op(b, "proj_bias", "add", NULL, "o0,bo{i}", s->resid_drop > 0 ? "o1" : "o");
	if (s->resid_drop > 0)
		op(b, "proj_drop", "dropout", NULL, "o1", "o");
}

/* yn -> d */
static void mlp(Buf *b, const Shape *s)
{
	const char *act = s->act;
	if (s->arch->moe) {
		weight(b, s, "wg{i}", "hidden,experts");
		weight(b, s, "w1{i}", "experts,hidden,ffn");
		weight(b, s, "w3{i}", "experts,hidden,ffn");
		weight(b, s, "w2{i}", "experts,ffn,hidden");
		op(b, "router", "einsum", "bsh,he->bse", "yn,wg{i}", "gl");
		op(b, "router_softmax", "softmax", NULL, "gl", "gp");
		op(b, "combine_weights", "einsum", "bse,ec->bsec", "gp,slots{i}", "cw");
		op(b, "dispatch", "einsum", "bsec,bsh->ebch", "cw,yn", "di");
		op(b, "expert_gate", "einsum", "ebch,ehf->ebcf", "di,w1{i}", "h0");
		op(b, "expert_act", act, NULL, "h0", "h1");
		op(b, "expert_up", "einsum", "ebch,ehf->ebcf", "di,w3{i}", "h2");
		op(b, "expert_glu", "mul", NULL, "h1,h2", "h3");
		op(b, "expert_down", "einsum", "ebcf,efh->ebch", "h3,w2{i}", "eo");
		op(b, "combine", "einsum", "bsec,ebch->bsh", "cw,eo", "d");
		return;
	}
	weight(b, s, "w1{i}", "hidden,ffn");
	if (s->arch->glu)
		weight(b, s, "w3{i}", "hidden,ffn");
	weight(b, s, "w2{i}", "ffn,hidden");
	if (s->mlp_bias) {
		weight(b, s, "b1{i}", "ffn");
		if (s->arch->glu)
			weight(b, s, "b3{i}", "ffn");
		weight(b, s, "b2{i}", "hidden");
	}
	op(b, s->arch->glu ? "gate" : "fc1", "einsum", "bsh,hf->bsf", "yn,w1{i}",
	   s->mlp_bias ? "g0b" : "g0");
	if (s->mlp_bias)
		op(b, "fc1_bias", "add", NULL, "g0b,b1{i}", "g0");
	op(b, "act", act, NULL, "g0", "g");
	const char *h = "g";
	if (s->arch->glu) {
		op(b, "up", "einsum", "bsh,hf->bsf", "yn,w3{i}", s->mlp_bias ? "u0" : "u");
		if (s->mlp_bias)
			op(b, "up_bias", "add", NULL, "u0,b3{i}", "u");
		op(b, "glu", "mul", NULL, "g,u", "m");
		h = "m";
	}
	char in[32];
	snprintf(in, sizeof in, "%s,w2{i}", h);
	const char *d0 = s->mlp_bias ? "d0" : s->resid_drop > 0 ? "d1" : "d";
	op(b, s->arch->glu ? "down" : "fc2", "einsum", "bsf,fh->bsh", in, d0);
	if (s->mlp_bias)
		op(b, "fc2_bias", "add", NULL, "d0,b2{i}", s->resid_drop > 0 ? "d1" : "d");
	if (s->resid_drop > 0)
		op(b, "mlp_drop", "dropout", NULL, "d1", "d");
}

static void emit(Buf *b, const Shape *s, const IrParamSet *ovr)
{
	const HfArch *a = s->arch;
	put(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	       "<model name=\"%s\" attention=\"fused\" xmlns=\"urn:meshplan:model\">\n"
	       "  <description>imported from a transformers config.json (model_type %s)"
	       "</description>\n",
	    a->type, a->type);
	param(b, ovr, "batch", 1, "samples per microbatch");
	put(b, "  <param name=\"seq\" value=\"%lld\" doc=\"tokens per sample%s\"/>\n",
	    (long long)s->seq,
	    ovr_value(ovr, "seq", -1, NULL) < 0 ? " (max_position_embeddings)" : "");
	param(b, ovr, "vocab", s->vocab, "vocab_size");
	param(b, ovr, "hidden", s->hidden, "hidden_size");
	param(b, ovr, "heads", s->heads, "num_attention_heads");
	param(b, ovr, "kv_heads", s->kv_heads, "num_key_value_heads");
	param(b, ovr, "layers", s->layers, "num_hidden_layers");
	param(b, ovr, "ffn", s->ffn, "intermediate_size");
	if (s->hdim_given)
		param(b, ovr, "hdim", s->hdim, "head_dim");
	else
		put(b, "  <param name=\"hdim\" value=\"hidden/heads\" doc=\"width of one head\"/>\n");
	put(b, "  <param name=\"qpk\" value=\"heads/kv_heads\" doc=\"query heads per key/value "
	       "head\"/>\n");
	if (!a->rotary)
		param(b, ovr, "positions", s->positions, "rows of the learned position table");
	if (s->window)
		param(b, ovr, "window", s->window, "sliding_window");
	if (a->moe) {
		param(b, ovr, "experts", s->experts, "num_local_experts");
		param(b, ovr, "topk", s->topk, "num_experts_per_tok");
		put(b, "  <param name=\"capacity\" value=\"(topk*seq + experts - 1)/experts\" "
		       "doc=\"expert slots per sample: ceil(topk*seq/experts)\"/>\n");
	}
	if (!s->hdim_given)
		put(b, "  <constraint rule=\"heads divides hidden\" zero=\"hidden %% heads\"/>\n");
	put(b, "  <constraint rule=\"kv_heads divides heads\" zero=\"heads %% kv_heads\"/>\n"
	       "  <constraint rule=\"at least one layer\" positive=\"layers\"/>\n"
	       "  <constraint rule=\"a positive sequence length\" positive=\"seq\"/>\n");
	if (!a->rotary)
		put(b, "  <constraint rule=\"seq at most the position table (n_positions)\" "
		       "positive=\"positions - seq + 1\"/>\n");
	if (s->window)
		put(b, "  <constraint rule=\"seq at most sliding_window (windowed attention is not "
		       "modelled)\" positive=\"window - seq + 1\"/>\n");

	/* embeddings */
	put(b, "  <layer name=\"embed\">\n"
	       "    <input name=\"tokens\" shape=\"batch,seq\" dtype=\"int32\"/>\n");
	weight(b, s, "tok_emb", "vocab,hidden");
	if (!a->rotary) {
		put(b, "    <input name=\"position_ids\" shape=\"batch,seq\" dtype=\"int32\"/>\n");
		weight(b, s, "pos_emb", "positions,hidden");
	}
	/* the token lookup, then each step that follows it, the last one into x */
	int steps = !a->rotary + a->emb_scale + (s->emb_drop > 0), k = 0;
	char cur[16], nxt[16];
	snprintf(cur, sizeof cur, "%s", steps ? "e0" : "x");
	op(b, "tok", "gather", NULL, "tok_emb,tokens", cur);
	if (!a->rotary) {
		op(b, "pos", "gather", NULL, "pos_emb,position_ids", "p0");
		k++;
		snprintf(nxt, sizeof nxt, k == steps ? "x" : "e%d", k);
		char in[40];
		snprintf(in, sizeof in, "%s,p0", cur);
		op(b, "pos_add", "add", NULL, in, nxt);
		memcpy(cur, nxt, sizeof cur);
	}
	if (a->emb_scale) {
		k++;
		snprintf(nxt, sizeof nxt, k == steps ? "x" : "e%d", k);
		op(b, "emb_scale", "scale", NULL, cur, nxt);
		memcpy(cur, nxt, sizeof cur);
	}
	if (s->emb_drop > 0)
		op(b, "emb_drop", "dropout", NULL, cur, "x");
	put(b, "  </layer>\n");

	/* blocks */
	put(b, "  <repeat count=\"layers\" var=\"i\">\n    <layer name=\"block{i}\">\n");
	if (a->moe)
		put(b, "      <input name=\"slots{i}\" shape=\"experts,capacity\" dtype=\"%s\"/>\n",
		    s->dtype);
	norm_weights(b, s, "attn_norm{i}");
	norm_weights(b, s, "mlp_norm{i}");
	norm(b, s, "attn_norm", "attn_norm{i}", "x", "xn");
	attention(b, s);
	if (s->parallel) {
		norm(b, s, "mlp_norm", "mlp_norm{i}", "x", "yn");
		mlp(b, s);
		op(b, "res1", "add", NULL, "x,o", "x1");
		op(b, "res2", "add", NULL, "x1,d", "x");
	} else {
		op(b, "res1", "add", NULL, "x,o", "x1");
		norm(b, s, "mlp_norm", "mlp_norm{i}", "x1", "yn");
		mlp(b, s);
		op(b, "res2", "add", NULL, "x1,d", "x");
	}
	put(b, "    </layer>\n  </repeat>\n");

	/* head */
	put(b, "  <layer name=\"head\">\n"
	       "    <input name=\"targets\" shape=\"batch,seq\" dtype=\"int32\"/>\n");
	norm_weights(b, s, "final_norm");
	if (!s->tied)
		weight(b, s, "output", "hidden,vocab");
	norm(b, s, "final_norm", "final_norm", "x", "xf");
	if (s->tied)
		op(b, "logits", "einsum", "bsh,vh->bsv", "xf,tok_emb", "z");
	else
		op(b, "logits", "einsum", "bsh,hv->bsv", "xf,output", "z");
	op(b, "loss", "loss", NULL, "z,targets", "l");
	put(b, "  </layer>\n</model>\n");
}

int ir_hf_import(const char *path, const IrParamSet *ovr, IrHfModel *out, IrError *e)
{
	memset(out, 0, sizeof *out);
	struct stat st;
	if (stat(path, &st) != 0)
		return ir_fail(e, path, 0, "cannot open: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return ir_fail(e, path, 0, "not a regular file");
	if (st.st_size > IR_MAX_FILE_BYTES)
		return ir_fail(e, path, 0, "file is %lld bytes, over the limit of %d "
				   "(docs/limits.md)", (long long)st.st_size, IR_MAX_FILE_BYTES);
	json_error_t je;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return ir_fail(e, path, je.line > 0 ? je.line : 0, "not valid JSON: %s", je.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return ir_fail(e, path, 0, "not a JSON object (a transformers config.json)");
	}
	Cfg c = {.root = root, .file = path, .notes = out->notes, .notes_n = sizeof out->notes};
	Shape s;
	int rc = read_shape(&c, ovr, &s, out, e);
	if (rc == 0) {
		Buf b = {0};
		emit(&b, &s, ovr);
		out->xml = b.s;
		out->len = b.n;
	}
	json_decref(root);
	return rc;
}

void ir_hf_free(IrHfModel *h)
{
	free(h->xml);
	h->xml = NULL;
}
