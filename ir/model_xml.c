/*
 * model_xml.c -- reads a model description (models/model.rng) and
 * instantiates its forward graph for one parameter set.
 *
 * Reads: the XML file, the schema, parameter overrides.
 * Writes: an IrGraph of forward ops in document order (a topological
 * order, since a tensor must be defined before it is used), with layers.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/parser.h>
#include <libxml/relaxng.h>
#include <libxml/tree.h>

#include "ir/ir.h"
#include "ir/xml_util.h"

struct IrModelDoc {
	IrArena arena;
	xmlDocPtr doc;
	const char *file;
	const char *name;
	const char *preset; /* NULL when none was asked for */
	const char *notes;  /* hf: the import's notes; NULL for other models */
	int64_t hf_seq;     /* hf: seq's default */
	bool hf_seq_from_config; /* hf: seq is max_position_embeddings */
};

/* hf:PATH: the model document imported from a transformers config.json. */
static IrModelDoc *open_hf(IrModelDoc *m, const char *path, IrError *e)
{
	IrHfModel h;
	if (ir_hf_import(path, NULL, &h, e)) {
		free(m);
		return NULL;
	}
	m->file = ir_strdup(&m->arena, path);
	m->notes = ir_strdup(&m->arena, h.notes);
	m->hf_seq = h.seq;
	m->hf_seq_from_config = h.seq_from_config;
	char schema[1024];
	snprintf(schema, sizeof schema, "%s/models/model.rng", ir_data_dir());
	m->doc = ir_xml_parse_validated(h.xml, h.len, m->file, schema, "model", e);
	ir_hf_free(&h);
	if (!m->doc) {
		ir_arena_free(&m->arena);
		free(m);
		return NULL;
	}
	m->name = ir_xml_attr(&m->arena, xmlDocGetRootElement(m->doc), "name");
	return m;
}

const char *ir_model_notes(const IrModelDoc *m) { return m->notes ? m->notes : ""; }

bool ir_model_seq_from_config(const IrModelDoc *m, int64_t *seq)
{
	if (!m->notes || !m->hf_seq_from_config)
		return false;
	*seq = m->hf_seq;
	return true;
}

/* ------------------------------------------------------------------ */
/* Opening and validation                                              */

IrModelDoc *ir_model_open(const char *spec, IrError *e)
{
	IrModelDoc *m = ir_xcalloc(1, sizeof *m);
	if (!strncmp(spec, "hf:", 3))
		return open_hf(m, spec + 3, e);
	const char *path = spec;
	const char *xml_colon = strstr(spec, ".xml:");
	if (xml_colon) {
		/* FILE.xml:preset: a preset of the user's own model file */
		path = ir_strfmt(&m->arena, "%.*s", (int)(xml_colon + 4 - spec), spec);
		m->preset = ir_strdup(&m->arena, xml_colon + 5);
	} else if (!ir_xml_is_path(spec)) {
		const char *colon = strchr(spec, ':');
		char family[128];
		size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
		if (n >= sizeof family) {
			ir_fail(e, "", 0, "model name is longer than %d characters",
				(int)sizeof family - 1);
			free(m);
			return NULL;
		}
		memcpy(family, spec, n);
		family[n] = 0;
		if (colon)
			m->preset = ir_strdup(&m->arena, colon + 1);
		path = ir_strfmt(&m->arena, "%s/models/%s.xml", ir_data_dir(), family);
		struct stat st;
		if (stat(path, &st) != 0) {
			char hint[512];
			ir_zoo_suggest("models", family, hint, sizeof hint);
			ir_fail(e, spec, 0, "no such model file or zoo model%s%s (meshplan list models)",
				hint[0] ? "; " : "", hint);
			ir_arena_free(&m->arena);
			free(m);
			return NULL;
		}
	}
	m->file = ir_strdup(&m->arena, path);
	char schema[1024];
	snprintf(schema, sizeof schema, "%s/models/model.rng", ir_data_dir());
	m->doc = ir_xml_read_validated(m->file, schema, "model", e);
	if (!m->doc) {
		ir_arena_free(&m->arena);
		free(m);
		return NULL;
	}
	xmlNodePtr root = xmlDocGetRootElement(m->doc);
	m->name = ir_xml_attr(&m->arena, root, "name");
	if (m->preset) {
		bool found = false;
		for (xmlNodePtr c = root->children; c; c = c->next)
			if (ir_xml_is(c, "preset")) {
				const char *pn = ir_xml_attr(&m->arena, c, "name");
				if (pn && !strcmp(pn, m->preset))
					found = true;
			}
		if (!found) {
			const char *names[IR_SUGGEST_LIST + 1];
			int n = ir_model_presets(m, names, IR_SUGGEST_LIST + 1);
			char hint[512];
			ir_suggest(m->preset, names, n < IR_SUGGEST_LIST ? n : IR_SUGGEST_LIST + 1, hint,
				   sizeof hint);
			ir_fail(e, m->file, 0, "model '%s' has no preset '%s'%s%s", m->name,
				m->preset, hint[0] ? "; " : "", hint);
			ir_model_close(m);
			return NULL;
		}
	}
	return m;
}

void ir_model_close(IrModelDoc *m)
{
	if (!m)
		return;
	if (m->doc)
		xmlFreeDoc(m->doc);
	ir_arena_free(&m->arena);
	free(m);
}

const char *ir_model_name(const IrModelDoc *m) { return m->name; }
const char *ir_model_file(const IrModelDoc *m) { return m->file; }

int ir_model_presets(const IrModelDoc *m, const char **names, int max)
{
	int n = 0;
	xmlNodePtr root = xmlDocGetRootElement(m->doc);
	for (xmlNodePtr c = root->children; c; c = c->next)
		if (ir_xml_is(c, "preset")) {
			if (n < max)
				names[n] = ir_xml_attr(&((IrModelDoc *)m)->arena, c, "name");
			n++;
		}
	return n;
}

const char *ir_model_preset_doc(const IrModelDoc *m, const char *preset)
{
	xmlNodePtr root = xmlDocGetRootElement(m->doc);
	IrArena *a = &((IrModelDoc *)m)->arena;
	for (xmlNodePtr c = root->children; c; c = c->next) {
		if (!preset && ir_xml_is(c, "description")) {
			xmlChar *t = xmlNodeGetContent(c);
			char *d = ir_strdup(a, t ? (const char *)t : "");
			xmlFree(t);
			for (char *p = d; *p; p++)
				if (*p == '\n' || *p == '\t')
					*p = ' ';
			return d;
		}
		if (preset && ir_xml_is(c, "preset")) {
			const char *pn = ir_xml_attr(a, c, "name");
			if (pn && !strcmp(pn, preset))
				return ir_xml_attr(a, c, "doc");
		}
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Parameters                                                           */

int ir_params_set(IrParamSet *ps, const char *name, int64_t value)
{
	for (int i = 0; i < ps->n; i++)
		if (!strcmp(ps->name[i], name)) {
			ps->value[i] = value;
			return 0;
		}
	if (ps->n >= 64 || strlen(name) >= sizeof ps->name[0])
		return -1;
	snprintf(ps->name[ps->n], sizeof ps->name[0], "%s", name);
	ps->value[ps->n++] = value;
	return 0;
}

int ir_params_parse(IrParamSet *ps, const char *text, IrError *e)
{
	if (strlen(text) > IR_MAX_TEXT)
		return ir_fail(e, "", 0, "parameter list is longer than %d characters", IR_MAX_TEXT);
	char *buf = ir_xstrdup(text);
	int rc = 0;
	for (char *save = NULL, *item = strtok_r(buf, ",", &save); item && !rc;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		if (!eq || eq == item) {
			rc = ir_fail(e, "", 0, "parameter '%.64s' is not NAME=VALUE", item);
			break;
		}
		*eq = 0;
		int64_t v;
		char why[256];
		if (strlen(item) >= sizeof ps->name[0]) {
			rc = ir_fail(e, "", 0, "parameter name '%.64s' is longer than %d characters",
				     item, (int)sizeof ps->name[0] - 1);
		} else if (!strcmp(item, "attention")) {
			if (!strcmp(eq + 1, "fused") || !strcmp(eq + 1, "1"))
				v = IR_ATTENTION_FUSED;
			else if (!strcmp(eq + 1, "eager") || !strcmp(eq + 1, "0"))
				v = IR_ATTENTION_EAGER;
			else
				rc = ir_fail(e, "", 0, "parameter attention: expected fused or eager, "
					     "got '%.64s'", eq + 1);
		} else if (ir_expr_eval(eq + 1, NULL, NULL, &v, why, sizeof why)) {
			rc = ir_fail(e, "", 0, "parameter %s: %s", item, why);
		}
		if (!rc && ir_params_set(ps, item, v))
			rc = ir_fail(e, "", 0, "more than %d parameters",
				     (int)(sizeof ps->value / sizeof ps->value[0]));
	}
	free(buf);
	return rc;
}

/* A scope of name -> value bindings: model params, then repeat vars. */
typedef struct {
	int n;
	const char *name[512];
	int64_t value[512];
} Env;

static int env_lookup(void *ctx, const char *name, int64_t *v)
{
	const Env *env = ctx;
	for (int i = env->n - 1; i >= 0; i--)
		if (!strcmp(env->name[i], name)) {
			*v = env->value[i];
			return 0;
		}
	return -1;
}

static const IrParamSet *find_preset(const IrModelDoc *m, IrParamSet *out, IrError *e)
{
	memset(out, 0, sizeof *out);
	if (!m->preset)
		return out;
	xmlNodePtr root = xmlDocGetRootElement(m->doc);
	IrArena tmp = {0};
	for (xmlNodePtr c = root->children; c; c = c->next) {
		if (!ir_xml_is(c, "preset"))
			continue;
		const char *pn = ir_xml_attr(&tmp, c, "name");
		if (!pn || strcmp(pn, m->preset))
			continue;
		for (xmlNodePtr s = c->children; s; s = s->next) {
			if (!ir_xml_is(s, "set"))
				continue;
			const char *n = ir_xml_attr(&tmp, s, "name");
			const char *v = ir_xml_attr(&tmp, s, "value");
			int64_t val;
			char why[256];
			if (ir_expr_eval(v, NULL, NULL, &val, why, sizeof why)) {
				ir_fail(e, m->file, ir_xml_line(s), "preset '%s': %s", pn, why);
				ir_arena_free(&tmp);
				return NULL;
			}
			ir_params_set(out, n, val);
		}
	}
	ir_arena_free(&tmp);
	return out;
}

/*
 * <constraint rule="heads divides hidden" zero="hidden % heads"/> and
 * <constraint rule="..." positive="expr"/>: what a parameter set must
 * satisfy (after defaults, preset and --set).  A broken one is refused with
 * its rule and the values of the parameters it names.
 */
static int check_constraints(const IrModelDoc *m, const Env *env, IrArena *a, IrError *e)
{
	xmlNodePtr root = xmlDocGetRootElement(m->doc);
	for (xmlNodePtr c = root->children; c; c = c->next) {
		if (!ir_xml_is(c, "constraint"))
			continue;
		const char *rule = ir_xml_attr(a, c, "rule");
		const char *zero = ir_xml_attr(a, c, "zero");
		const char *pos = ir_xml_attr(a, c, "positive");
		const char *text = zero ? zero : pos;
		int64_t v;
		char why[256];
		if (!text)
			return ir_fail(e, m->file, ir_xml_line(c), "constraint needs zero= or positive=");
		if (ir_expr_eval(text, env_lookup, (void *)env, &v, why, sizeof why))
			return ir_fail(e, m->file, ir_xml_line(c), "constraint '%s': %s", text, why);
		if (zero ? v == 0 : v > 0)
			continue;
		/* the values of the names in the expression */
		char vals[256] = "";
		size_t at = 0;
		for (const char *p = text; *p && at < sizeof vals;) {
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_')) {
				p++;
				continue;
			}
			const char *q = p;
			while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || *q == '_' ||
			       (*q >= '0' && *q <= '9'))
				q++;
			char name[64];
			snprintf(name, sizeof name, "%.*s", (int)(q - p), p);
			int64_t pv;
			if (!env_lookup((void *)env, name, &pv) && !strstr(vals, name))
				at += (size_t)snprintf(vals + at, sizeof vals - at, "%s%s=%lld",
						       at ? ", " : "", name, (long long)pv);
			p = q;
		}
		return ir_fail(e, m->file, ir_xml_line(c),
			       "model '%s' needs %s, but %s (%s = %lld, must be %s)", m->name,
			       rule ? rule : text, vals, text, (long long)v,
			       zero ? "0" : "positive");
	}
	return 0;
}

/* Evaluates the model's <param>s in order into env: defaults < preset < overrides. */
static int eval_params(const IrModelDoc *m, const IrParamSet *ovr, Env *env, IrArena *a,
		       IrError *e)
{
	IrParamSet preset;
	if (!find_preset(m, &preset, e))
		return -1;
	const IrParamSet *layers[2] = {ovr, &preset};
	xmlNodePtr root = xmlDocGetRootElement(m->doc);
	env->n = 0;
	for (xmlNodePtr c = root->children; c; c = c->next) {
		if (!ir_xml_is(c, "param"))
			continue;
		const char *name = ir_xml_attr(a, c, "name");
		const char *text = ir_xml_attr(a, c, "value");
		int64_t v = 0;
		bool set = false;
		for (int l = 0; l < 2 && !set; l++)
			for (int i = 0; layers[l] && i < layers[l]->n; i++)
				if (!strcmp(layers[l]->name[i], name)) {
					v = layers[l]->value[i];
					set = true;
				}
		char why[256];
		if (!set && ir_expr_eval(text, env_lookup, env, &v, why, sizeof why))
			return ir_fail(e, m->file, ir_xml_line(c), "param '%s': %s", name, why);
		if (env->n >= 512)
			return ir_fail(e, m->file, ir_xml_line(c), "too many params");
		env->name[env->n] = name;
		env->value[env->n++] = v;
	}
	for (int l = 0; l < 2; l++)
		for (int i = 0; layers[l] && i < layers[l]->n; i++) {
			int64_t dummy;
			if (!strcmp(layers[l]->name[i], "attention"))
				continue; /* reserved: the attention kernel, not a parameter */
			if (env_lookup(env, layers[l]->name[i], &dummy)) {
				char hint[1024];
				ir_suggest(layers[l]->name[i], env->name, env->n, hint, sizeof hint);
				return ir_fail(e, m->file, 0, "model '%s' has no parameter '%s'%s%s%s",
					       m->name, layers[l]->name[i],
					       l == 0 ? " (an override)" : " (from its preset)",
					       hint[0] ? "; " : "", hint);
			}
		}
	return check_constraints(m, env, a, e);
}

int ir_model_param(const IrModelDoc *m, const IrParamSet *ovr, const char *name,
		   int64_t *value, IrError *e)
{
	Env *env = ir_xcalloc(1, sizeof *env);
	IrArena a = {0};
	int rc = eval_params(m, ovr, env, &a, e);
	if (!rc && env_lookup(env, name, value))
		rc = ir_fail(e, m->file, 0, "model '%s' has no parameter '%s'", m->name, name);
	ir_arena_free(&a);
	free(env);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Instantiation                                                        */

typedef struct {
	const IrModelDoc *m;
	IrGraph *g;
	Env *env;
	IrError *e;
	/* name -> newest tensor, open addressing over tensor indices */
	int *slot;
	int nslot;
	int layer;         /* current layer index, -1 outside any */
	bool in_layer;     /* inside an explicit <layer> */
	bool implicit;     /* the current layer is an implicit one for top-level items */
	int nimplicit;
	long visits;       /* elements visited, repeats expanded (IR_MAX_EXPAND) */
} Ctx;

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

/* Finds the slot of `name`; -1 if absent. */
static int sym_find(const Ctx *c, const char *name)
{
	uint32_t h = hash_str(name) & (uint32_t)(c->nslot - 1);
	while (c->slot[h] >= 0) {
		const char *tn = c->g->tensors[c->slot[h]].name;
		const char *hash = strchr(tn, '#');
		size_t n = hash ? (size_t)(hash - tn) : strlen(tn);
		if (strlen(name) == n && !strncmp(tn, name, n))
			return (int)h;
		h = (h + 1) & (uint32_t)(c->nslot - 1);
	}
	return -(int)h - 2; /* free slot, encoded */
}

static void sym_bind(Ctx *c, const char *name, int tensor)
{
	if (c->g->ntensors * 2 >= c->nslot) {
		int old_n = c->nslot, *old = c->slot;
		c->nslot *= 2;
		c->slot = ir_xmalloc(sizeof(int) * (size_t)c->nslot);
		for (int i = 0; i < c->nslot; i++)
			c->slot[i] = -1;
		for (int i = 0; i < old_n; i++)
			if (old[i] >= 0) {
				const char *tn = c->g->tensors[old[i]].name;
				char base[256];
				const char *hash = strchr(tn, '#');
				size_t n = hash ? (size_t)(hash - tn) : strlen(tn);
				snprintf(base, sizeof base, "%.*s", (int)n, tn);
				int s = sym_find(c, base);
				c->slot[-s - 2] = old[i];
			}
		free(old);
	}
	int s = sym_find(c, name);
	c->slot[s >= 0 ? s : -s - 2] = tensor;
}

#define CFAIL(node, ...) ir_fail(c->e, c->m->file, ir_xml_line(node), __VA_ARGS__)

/* Substitutes {expr} pieces of a name with their values. */
static int subst(Ctx *c, xmlNodePtr node, const char *text, char *out, size_t n)
{
	size_t o = 0;
	for (const char *p = text; *p;) {
		if (*p == '{') {
			const char *close = strchr(p, '}');
			if (!close)
				return CFAIL(node, "unclosed '{' in name '%s'", text);
			char expr[256];
			if (close - p - 1 >= (ptrdiff_t)sizeof expr)
				return CFAIL(node, "expression in name '%.64s' is too long", text);
			snprintf(expr, sizeof expr, "%.*s", (int)(close - p - 1), p + 1);
			int64_t v;
			char why[256];
			if (ir_expr_eval(expr, env_lookup, c->env, &v, why, sizeof why))
				return CFAIL(node, "in name '%s': %s", text, why);
			o += (size_t)snprintf(out + o, o < n ? n - o : 0, "%lld", (long long)v);
			p = close + 1;
		} else {
			if (o + 1 < n)
				out[o] = *p;
			o++;
			p++;
		}
	}
	if (o >= n)
		return CFAIL(node, "name '%s' is too long", text);
	out[o] = 0;
	return 0;
}

static int parse_shape(Ctx *c, xmlNodePtr node, const char *what, const char *text, int *nd,
		       int64_t *dim)
{
	char buf[1024];
	if (strlen(text) >= sizeof buf)
		return CFAIL(node, "shape of '%s' is longer than %d characters", what,
			     (int)sizeof buf - 1);
	snprintf(buf, sizeof buf, "%s", text);
	*nd = 0;
	int64_t total = 1;
	for (char *save = NULL, *item = strtok_r(buf, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		if (*nd >= IR_MAX_DIMS)
			return CFAIL(node, "'%s' has more than %d dims", what, IR_MAX_DIMS);
		int64_t v;
		char why[256];
		if (ir_expr_eval(item, env_lookup, c->env, &v, why, sizeof why))
			return CFAIL(node, "shape of '%s': %s", what, why);
		if (v <= 0)
			return CFAIL(node, "shape of '%s': dim %d is %lld, must be positive",
				     what, *nd, (long long)v);
		if (__builtin_mul_overflow(total, v, &total) ||
		    __builtin_mul_overflow(total, (int64_t)8, &(int64_t){0}))
			return CFAIL(node, "size of '%s' overflows 64 bits", what);
		dim[(*nd)++] = v;
	}
	return 0;
}

/* Opens an implicit layer for a top-level item when none is open. */
static void ensure_layer(Ctx *c)
{
	if (c->in_layer || (c->implicit && c->layer >= 0))
		return;
	IrGraph *g = c->g;
	c->layer = ir_graph_add_layer(g, ir_strfmt(&g->arena, "ops%d", c->nimplicit++));
	c->implicit = true;
}

static int do_items(Ctx *c, xmlNodePtr first);

static int do_tensor(Ctx *c, xmlNodePtr node, IrRole role)
{
	IrArena *a = &c->g->arena;
	char name[256];
	if (subst(c, node, ir_xml_attr(a, node, "name"), name, sizeof name))
		return -1;
	if (strchr(name, '#') || strchr(name, ','))
		return CFAIL(node, "tensor name '%s' may not contain '#' or ','", name);
	if (sym_find(c, name) >= 0)
		return CFAIL(node, "tensor '%s' is declared twice", name);
	int nd;
	int64_t dim[IR_MAX_DIMS];
	if (parse_shape(c, node, name, ir_xml_attr(a, node, "shape"), &nd, dim))
		return -1;
	IrDType dt;
	ir_dtype_parse(ir_xml_attr(a, node, "dtype"), &dt);
	if (role == IR_T_WEIGHT && dt == IR_I32)
		return CFAIL(node, "weight '%s' cannot be int32", name);
	/* a top-level input belongs to no layer; a weight opens one */
	if (role == IR_T_WEIGHT || c->in_layer)
		ensure_layer(c);
	int layer = role == IR_T_INPUT && !c->in_layer ? -1 : c->layer;
	int t = ir_graph_add_tensor(c->g, name, nd, dim, dt, role, layer, ir_xml_line(node));
	sym_bind(c, name, t);
	return 0;
}

static int split_names(Ctx *c, xmlNodePtr node, const char *text, char names[][256], int max)
{
	char buf[1024];
	if (strlen(text) >= sizeof buf)
		return CFAIL(node, "operand list '%.64s...' is longer than %d characters", text,
			     (int)sizeof buf - 1);
	snprintf(buf, sizeof buf, "%s", text);
	int n = 0;
	for (char *save = NULL, *item = strtok_r(buf, ", ", &save); item;
	     item = strtok_r(NULL, ", ", &save)) {
		if (n >= max)
			return CFAIL(node, "too many operands in '%s' (at most %d)", text, max);
		if (subst(c, node, item, names[n], 256))
			return -1;
		n++;
	}
	return n;
}

static int parse_int_list(Ctx *c, xmlNodePtr node, const char *what, const char *text,
			  int64_t *v, int max)
{
	char buf[256];
	if (strlen(text) >= sizeof buf)
		return CFAIL(node, "%s is longer than %d characters", what, (int)sizeof buf - 1);
	snprintf(buf, sizeof buf, "%s", text);
	int n = 0;
	for (char *save = NULL, *item = strtok_r(buf, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		char why[256];
		if (n >= max)
			return CFAIL(node, "%s has too many entries", what);
		if (ir_expr_eval(item, env_lookup, c->env, &v[n], why, sizeof why))
			return CFAIL(node, "%s: %s", what, why);
		n++;
	}
	return n;
}

static int do_op(Ctx *c, xmlNodePtr node)
{
	IrGraph *g = c->g;
	IrArena *a = &g->arena;
	IrOp op;
	memset(&op, 0, sizeof op);
	op.line = ir_xml_line(node);
	if (g->nops >= IR_MAX_OPS)
		return CFAIL(node, "the model expands to over %d ops (docs/limits.md)", IR_MAX_OPS);
	op.phase = IR_FWD;
	op.fwd = -1;
	const char *kind = ir_xml_attr(a, node, "kind");
	if (ir_op_kind_parse(kind, &op.kind, &op.fn))
		return CFAIL(node, "unknown op kind '%s'", kind);
	if (op.kind == IR_ELEMENTWISE && !op.fn) {
		op.fn = ir_xml_attr(a, node, "fn");
		if (!op.fn || !ir_elementwise_arity(op.fn))
			return CFAIL(node, "elementwise op needs a known fn, got '%s'",
				     op.fn ? op.fn : "");
	}
	if (op.kind == IR_REDUCE || op.kind == IR_POOL) {
		op.fn = ir_xml_attr(a, node, "fn");
		if (!op.fn)
			op.fn = op.kind == IR_REDUCE ? "sum" : "max";
		if (strcmp(op.fn, "sum") && strcmp(op.fn, "mean") && strcmp(op.fn, "max") &&
		    !(op.kind == IR_POOL && !strcmp(op.fn, "avg")))
			return CFAIL(node, "%s fn '%s' is not known", kind, op.fn);
	}

	char names[IR_MAX_IN + 1][256];
	int nin = split_names(c, node, ir_xml_attr(a, node, "in"), names, IR_MAX_IN);
	if (nin < 0)
		return -1;
	op.nin = nin;
	for (int k = 0; k < nin; k++) {
		int s = sym_find(c, names[k]);
		if (s < 0)
			return CFAIL(node, "undefined tensor '%s'", names[k]);
		op.in[k] = c->slot[s];
	}
	char outs[2][256];
	int nout = split_names(c, node, ir_xml_attr(a, node, "out"), outs, 2);
	if (nout < 0)
		return -1;
	if (nout != 1)
		return CFAIL(node, "an op has exactly one output, got %d", nout);
	op.nout = 1;

	int64_t reshape[IR_MAX_DIMS];
	int reshape_nd = 0;
	const char *attr;
	if (op.kind == IR_EINSUM) {
		const char *spec = ir_xml_attr(a, node, "spec");
		if (!spec)
			return CFAIL(node, "einsum needs a spec attribute");
		if (ir_einsum_parse(g, &op, spec, c->e))
			return -1;
	}
	if (op.kind == IR_REDUCE) {
		int64_t ax[IR_MAX_DIMS];
		attr = ir_xml_attr(a, node, "axes");
		int n = parse_int_list(c, node, "axes", attr ? attr : "-1", ax, IR_MAX_DIMS);
		if (n < 0)
			return -1;
		int nd = g->tensors[op.in[0]].ndim;
		for (int i = 0; i < n; i++) {
			int64_t d = ax[i] < 0 ? ax[i] + nd : ax[i];
			if (d < 0 || d >= nd)
				return CFAIL(node, "reduce axis %lld out of range for %d dims",
					     (long long)ax[i], nd);
			op.attr[0] |= 1 << d;
		}
	}
	if (op.kind == IR_TRANSPOSE) {
		int64_t perm[IR_MAX_DIMS];
		attr = ir_xml_attr(a, node, "perm");
		if (!attr)
			return CFAIL(node, "transpose needs a perm attribute");
		int n = parse_int_list(c, node, "perm", attr, perm, IR_MAX_DIMS);
		if (n < 0)
			return -1;
		for (int i = 0; i < n; i++) {
			if (perm[i] < 0 || perm[i] >= IR_MAX_DIMS)
				return CFAIL(node, "transpose perm entry %lld out of range",
					     (long long)perm[i]);
			op.attr[0] |= perm[i] << (4 * i);
		}
		op.attr[1] = n;
	}
	if (op.kind == IR_RESHAPE) {
		attr = ir_xml_attr(a, node, "shape");
		if (!attr)
			return CFAIL(node, "reshape needs a shape attribute");
		if (parse_shape(c, node, outs[0], attr, &reshape_nd, reshape))
			return -1;
	}
	if (op.kind == IR_CONV2D || op.kind == IR_POOL) {
		int64_t v[1];
		int idx = op.kind == IR_CONV2D ? 0 : 1;
		if ((attr = ir_xml_attr(a, node, "stride"))) {
			if (parse_int_list(c, node, "stride", attr, v, 1) < 0)
				return -1;
			if (v[0] <= 0)
				return CFAIL(node, "stride must be positive");
			op.attr[idx] = v[0];
		}
		if (op.kind == IR_POOL && (attr = ir_xml_attr(a, node, "window"))) {
			if (parse_int_list(c, node, "window", attr, v, 1) < 0)
				return -1;
			if (v[0] <= 0)
				return CFAIL(node, "window must be positive");
			op.attr[0] = v[0];
		}
		if (op.kind == IR_CONV2D) {
			attr = ir_xml_attr(a, node, "padding");
			op.attr[1] = !attr || !strcmp(attr, "same");
		}
	}

	ensure_layer(c);
	op.layer = c->layer;
	int ond;
	int64_t odim[IR_MAX_DIMS];
	IrDType odt;
	if (ir_infer_op(g, &op, reshape, reshape_nd, &ond, odim, &odt, c->e))
		return -1;
	if ((attr = ir_xml_attr(a, node, "dtype")))
		ir_dtype_parse(attr, &odt);
	int64_t total = 1;
	for (int d = 0; d < ond; d++)
		if (__builtin_mul_overflow(total, odim[d], &total) ||
		    __builtin_mul_overflow(total, (int64_t)8, &(int64_t){0}))
			return CFAIL(node, "size of '%s' overflows 64 bits", outs[0]);

	/* SSA: a rebound name gets a versioned tensor name. */
	int s = sym_find(c, outs[0]);
	const char *tname = outs[0];
	if (s >= 0) {
		const IrTensor *prev = &g->tensors[c->slot[s]];
		if (prev->role == IR_T_WEIGHT)
			return CFAIL(node, "op output '%s' would overwrite a weight", outs[0]);
		tname = ir_strfmt(a, "%s#%d", outs[0], g->ntensors);
	}
	int t = ir_graph_add_tensor(g, tname, ond, odim, odt, IR_T_ACT, c->layer, op.line);
	op.out[0] = t;
	const char *opname = ir_xml_attr(a, node, "name");
	char nbuf[256];
	if (opname) {
		if (subst(c, node, opname, nbuf, sizeof nbuf))
			return -1;
	} else
		snprintf(nbuf, sizeof nbuf, "%s%d", kind, g->nops);
	op.name = ir_strfmt(a, "%s/%s", g->layers[c->layer].name, nbuf);
	int id = ir_graph_add_op(g, &op, c->e);
	if (id < 0)
		return -1;
	g->layers[c->layer].last_op = id;
	if (g->layers[c->layer].first_op > id)
		g->layers[c->layer].first_op = id;
	sym_bind(c, outs[0], t);
	return 0;
}

static int do_layer(Ctx *c, xmlNodePtr node)
{
	IrGraph *g = c->g;
	if (c->in_layer)
		return CFAIL(node, "layers do not nest");
	char name[256];
	if (subst(c, node, ir_xml_attr(&g->arena, node, "name"), name, sizeof name))
		return -1;
	c->layer = ir_graph_add_layer(g, ir_strdup(&g->arena, name));
	c->in_layer = true;
	c->implicit = false;
	int rc = do_items(c, node->children);
	c->in_layer = false;
	if (!rc && g->layers[c->layer].last_op < g->layers[c->layer].first_op)
		return CFAIL(node, "layer '%s' has no ops", name);
	return rc;
}

static int do_repeat(Ctx *c, xmlNodePtr node)
{
	IrArena *a = &c->g->arena;
	int64_t count;
	char why[256];
	const char *text = ir_xml_attr(a, node, "count");
	if (ir_expr_eval(text, env_lookup, c->env, &count, why, sizeof why))
		return CFAIL(node, "repeat count: %s", why);
	if (count < 0 || count > 100000)
		return CFAIL(node, "repeat count %lld is out of range", (long long)count);
	const char *var = ir_xml_attr(a, node, "var");
	if (c->env->n >= 512)
		return CFAIL(node, "repeats nest too deep");
	int slot = c->env->n++;
	c->env->name[slot] = var ? var : "_";
	for (int64_t i = 0; i < count; i++) {
		c->env->value[slot] = i;
		if (++c->visits > IR_MAX_EXPAND)
			return CFAIL(node, "the model expands to over %d elements (docs/limits.md)",
				     IR_MAX_EXPAND);
		if (do_items(c, node->children))
			return -1;
	}
	c->env->n--;
	return 0;
}

static int do_items(Ctx *c, xmlNodePtr first)
{
	for (xmlNodePtr n = first; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (++c->visits > IR_MAX_EXPAND)
			return CFAIL(n, "the model expands to over %d elements (docs/limits.md)",
				     IR_MAX_EXPAND);
		/* top-level items outside <layer> join an implicit layer, one per run */
		if (ir_xml_is(n, "layer") || ir_xml_is(n, "repeat"))
			c->implicit = false;
		int rc = 0;
		if (ir_xml_is(n, "input"))
			rc = do_tensor(c, n, IR_T_INPUT);
		else if (ir_xml_is(n, "weight"))
			rc = do_tensor(c, n, IR_T_WEIGHT);
		else if (ir_xml_is(n, "op"))
			rc = do_op(c, n);
		else if (ir_xml_is(n, "layer"))
			rc = do_layer(c, n);
		else if (ir_xml_is(n, "repeat"))
			rc = do_repeat(c, n);
		if (rc)
			return rc;
	}
	return 0;
}

/* The attention kernel: --set attention=... < the preset's attention
 * attribute < the model's (default eager). */
static bool attention_fused(const IrModelDoc *m, xmlNodePtr root, const IrParamSet *ovr)
{
	for (int i = 0; ovr && i < ovr->n; i++)
		if (!strcmp(ovr->name[i], "attention"))
			return ovr->value[i] == IR_ATTENTION_FUSED;
	IrArena tmp = {0};
	const char *a = NULL;
	if (m->preset)
		for (xmlNodePtr c = root->children; c && !a; c = c->next) {
			if (!ir_xml_is(c, "preset"))
				continue;
			const char *pn = ir_xml_attr(&tmp, c, "name");
			if (pn && !strcmp(pn, m->preset))
				a = ir_xml_attr(&tmp, c, "attention");
		}
	if (!a)
		a = ir_xml_attr(&tmp, root, "attention");
	bool fused = a && !strcmp(a, "fused");
	ir_arena_free(&tmp);
	return fused;
}

int ir_model_instantiate(const IrModelDoc *m, const IrParamSet *ovr, IrGraph *g, IrError *e)
{
	ir_graph_init(g, m->name);
	g->file = ir_strdup(&g->arena, m->file);
	Env *env = ir_xcalloc(1, sizeof *env);
	Ctx c = {.m = m, .g = g, .env = env, .e = e, .layer = -1};
	c.nslot = 1024;
	c.slot = ir_xmalloc(sizeof(int) * (size_t)c.nslot);
	for (int i = 0; i < c.nslot; i++)
		c.slot[i] = -1;
	int rc = eval_params(m, ovr, env, &g->arena, e);
	if (!rc) {
		int64_t v;
		if (!env_lookup(env, "batch", &v))
			g->batch = v;
		if (!env_lookup(env, "seq", &v))
			g->seq = v;
		xmlNodePtr root = xmlDocGetRootElement(m->doc);
		g->fused_attention = attention_fused(m, root, ovr);
		rc = do_items(&c, root->children);
	}
	if (!rc) {
		g->nfwd_ops = g->nops;
		int nloss = 0;
		for (int i = 0; i < g->nops; i++)
			if (g->ops[i].kind == IR_LOSS) {
				nloss++;
				g->loss = g->ops[i].out[0];
			}
		if (nloss != 1)
			rc = ir_fail(e, m->file, 0, "a model needs exactly one loss op, found %d",
				     nloss);
		else if (g->batch <= 0)
			rc = ir_fail(e, m->file, 0, "param batch must be positive");
	}
	free(c.slot);
	free(env);
	if (rc)
		ir_graph_free(g);
	return rc;
}
