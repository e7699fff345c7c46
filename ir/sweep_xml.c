/*
 * sweep_xml.c -- sweep files (models/sweep.rng): lists of models, clusters,
 * node counts, global batches and token budgets whose cross product
 * `meshplan sweep` runs, plus compile and failure options for every point.
 * Reads: the file, validated.  Writes: an IrSweep in its own arena.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "ir/ir.h"
#include "ir/xml_util.h"

/* A relative path spec resolved from the sweep file's folder; zoo names,
 * hf: names and absolute paths as they are. */
static const char *resolve(IrSweep *s, const char *spec)
{
	if (!ir_xml_is_path(spec) || spec[0] == '/' || !strncmp(spec, "hf:", 3))
		return spec;
	const char *slash = strrchr(s->file, '/');
	if (!slash)
		return spec;
	return ir_strfmt(&s->arena, "%.*s/%s", (int)(slash - s->file), s->file, spec);
}

/* Counts the space-separated entries of a list attribute. */
static int count_words(const char *v)
{
	int n = 0;
	for (const char *p = v; *p;) {
		p += strspn(p, " \t\r\n");
		if (!*p)
			break;
		n++;
		p += strcspn(p, " \t\r\n");
	}
	return n;
}

/* Reads the `values` list of n (validated: positive numbers) into an
 * arena array of doubles; -1 with e when a list is too long or a value is
 * not finite. */
static int read_list(IrSweep *s, xmlNodePtr n, double **out, int *count, IrError *e)
{
	const char *v = ir_xml_attr(&s->arena, n, "values");
	int k = count_words(v);
	if (k > IR_SWEEP_MAX_LIST)
		return ir_fail(e, s->file, ir_xml_line(n),
			       "<%s> lists %d values, more than IR_SWEEP_MAX_LIST (%d)",
			       (const char *)n->name, k, IR_SWEEP_MAX_LIST);
	double *a = ir_alloc(&s->arena, sizeof *a * (size_t)(k ? k : 1));
	const char *p = v;
	for (int i = 0; i < k; i++) {
		p += strspn(p, " \t\r\n");
		char *end;
		errno = 0;
		a[i] = strtod(p, &end);
		if (errno || !isfinite(a[i]) || !(a[i] > 0))
			return ir_fail(e, s->file, ir_xml_line(n), "<%s>: '%.*s' is not a finite "
				       "positive number", (const char *)n->name,
				       (int)strcspn(p, " \t\r\n"), p);
		p = end;
	}
	*out = a;
	*count = k;
	return 0;
}

static int read_int_list(IrSweep *s, xmlNodePtr n, int64_t **out, int *count, IrError *e)
{
	double *d;
	if (read_list(s, n, &d, count, e))
		return -1;
	int64_t *a = ir_alloc(&s->arena, sizeof *a * (size_t)(*count ? *count : 1));
	for (int i = 0; i < *count; i++)
		a[i] = (int64_t)d[i];
	*out = a;
	return 0;
}

/* The <model>s and <cluster>s, counted first, then copied. */
static void read_specs(IrSweep *s, xmlNodePtr root)
{
	for (xmlNodePtr n = root->children; n; n = n->next) {
		s->nmodels += ir_xml_is(n, "model");
		s->nclusters += ir_xml_is(n, "cluster");
	}
	s->model = ir_alloc(&s->arena, sizeof *s->model * (size_t)s->nmodels);
	s->model_set = ir_alloc(&s->arena, sizeof *s->model_set * (size_t)s->nmodels);
	s->model_line = ir_alloc(&s->arena, sizeof *s->model_line * (size_t)s->nmodels);
	s->cluster = ir_alloc(&s->arena, sizeof *s->cluster * (size_t)s->nclusters);
	s->cluster_line = ir_alloc(&s->arena, sizeof *s->cluster_line * (size_t)s->nclusters);
	int im = 0, ic = 0;
	for (xmlNodePtr n = root->children; n; n = n->next) {
		if (ir_xml_is(n, "model")) {
			s->model[im] = resolve(s, ir_xml_attr(&s->arena, n, "name"));
			const char *set = ir_xml_attr(&s->arena, n, "set");
			s->model_set[im] = set ? set : "";
			s->model_line[im++] = ir_xml_line(n);
		} else if (ir_xml_is(n, "cluster")) {
			s->cluster[ic] = resolve(s, ir_xml_attr(&s->arena, n, "name"));
			s->cluster_line[ic++] = ir_xml_line(n);
		}
	}
}

static void read_options(IrSweep *s, xmlNodePtr n)
{
	double v;
	if (ir_xml_is(n, "compile")) {
		if (ir_xml_double(n, "microbatch", &v))
			s->microbatch = (int64_t)v;
		if (ir_xml_double(n, "clusters", &v))
			s->max_units = (int)v;
		const char *rc = ir_xml_attr(&s->arena, n, "recompute");
		IrRecompute r;
		if (rc && !ir_recompute_parse(rc, &r))
			s->recompute = (int)r;
	} else if (ir_xml_is(n, "failures")) {
		s->failures = true;
		const char *p = ir_xml_attr(&s->arena, n, "policy");
		if (p)
			s->policy = p;
		if (ir_xml_double(n, "runs", &v))
			s->runs = (int)v;
		const char *seed = ir_xml_attr(&s->arena, n, "seed");
		if (seed)
			s->seed = strtoull(seed, NULL, 10);
	}
}

int ir_sweep_read(const char *path, IrSweep *s, IrError *e)
{
	memset(s, 0, sizeof *s);
	s->recompute = -1;
	s->policy = "restart-all";
	s->seed = 1;
	s->file = ir_strdup(&s->arena, path);
	char schema[1024];
	snprintf(schema, sizeof schema, "%s/models/sweep.rng", ir_data_dir());
	xmlDocPtr doc = ir_xml_read_validated(s->file, schema, "sweep", e);
	if (!doc) {
		ir_arena_free(&s->arena);
		return -1;
	}
	xmlNodePtr root = xmlDocGetRootElement(doc);
	s->name = ir_xml_attr(&s->arena, root, "name");
	if (!s->name) {
		const char *b = strrchr(s->file, '/');
		s->name = b ? b + 1 : s->file;
	}
	read_specs(s, root);
	int rc = 0;
	for (xmlNodePtr n = root->children; n && !rc; n = n->next) {
		if (ir_xml_is(n, "nodes")) {
			int64_t *v;
			rc = read_int_list(s, n, &v, &s->nnodes, e);
			if (!rc) {
				s->nodes = ir_alloc(&s->arena, sizeof *s->nodes * (size_t)s->nnodes);
				for (int i = 0; i < s->nnodes; i++)
					s->nodes[i] = (int)v[i];
			}
		} else if (ir_xml_is(n, "batch")) {
			rc = read_int_list(s, n, &s->batch, &s->nbatch, e);
		} else if (ir_xml_is(n, "tokens")) {
			rc = read_list(s, n, &s->tokens, &s->ntokens, e);
		} else {
			read_options(s, n);
		}
	}
	double points = (double)s->nmodels * s->nclusters * (s->nnodes ? s->nnodes : 1) *
			s->nbatch * s->ntokens;
	if (!rc && points > IR_SWEEP_MAX_LIST)
		rc = ir_fail(e, s->file, ir_xml_line(root),
			     "the sweep has %.0f points, more than IR_SWEEP_MAX_LIST (%d)", points,
			     IR_SWEEP_MAX_LIST);
	xmlFreeDoc(doc);
	if (rc)
		ir_arena_free(&s->arena);
	return rc;
}

void ir_sweep_free(IrSweep *s)
{
	ir_arena_free(&s->arena);
	memset(s, 0, sizeof *s);
}
