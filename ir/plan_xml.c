/*
 * plan_xml.c -- reads and writes an IrPlan as XML (models/plan.rng).
 *
 * Reads: a plan file, validated against the schema; then the checks the
 * schema cannot make (layer ranges, op order, mesh shapes), each error
 * naming the file and line.
 * Writes: the same form with libxml2's text writer; real numbers with
 * %.17g, so a plan read back is bit-identical and simulates identically.
 * Op indices refer to the training graph of the plan's model and
 * parameters; whether they fit that graph is the simulator's check.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/xmlwriter.h>

#include "ir/ir.h"
#include "ir/xml_util.h"

/* ------------------------------------------------------------------ */
/* Model and cluster paths: stored relative to the plan's own folder     */

/* The file inside a model spec (hf:FILE, FILE.xml:preset, a path) or a
 * cluster spec (FILE[:profile]): its offset and length; false for a zoo
 * name. */
static bool spec_file(const char *spec, bool model, size_t *at, size_t *len)
{
	if (model) {
		if (!strncmp(spec, "hf:", 3)) {
			*at = 3;
			*len = strlen(spec) - 3;
			return *len > 0;
		}
		const char *xc = strstr(spec, ".xml:");
		*at = 0;
		*len = xc ? (size_t)(xc + 4 - spec) : strlen(spec);
		return xc || ir_xml_is_path(spec);
	}
	const char *colon = strrchr(spec, ':');
	*at = 0;
	*len = colon && colon[1] && !strchr(colon, '/') ? (size_t)(colon - spec) : strlen(spec);
	char file[4096];
	snprintf(file, sizeof file, "%.*s", (int)*len, spec);
	return ir_xml_is_path(file);
}

/* The folder of path `file` (absolute, symbolic links resolved) into dir;
 * false if it cannot be found. */
static bool folder_of(const char *file, char *dir, size_t n)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", file);
	char *slash = strrchr(tmp, '/');
	const char *d = slash ? (slash == tmp ? "/" : (*slash = 0, tmp)) : ".";
	char *real = realpath(d, NULL);
	if (!real)
		return false;
	snprintf(dir, n, "%s", real);
	free(real);
	return true;
}

/* spec with its file (relative to the current folder) made relative to
 * folder `dir`, in a; spec itself when that cannot be done. */
static const char *spec_relative(IrArena *a, const char *spec, bool model, const char *dir)
{
	size_t at, len;
	if (!spec || !spec_file(spec, model, &at, &len))
		return spec;
	char file[4096];
	snprintf(file, sizeof file, "%.*s", (int)len, spec + at);
	char *abs = realpath(file, NULL);
	if (!abs)
		return spec;
	/* the common leading folders, then ".." for each of dir's others */
	size_t i = 0, common = 0;
	while (abs[i] && dir[i] && abs[i] == dir[i]) {
		i++;
		if (abs[i] == '/' || (!abs[i] && dir[i] == '/'))
			common = i;
	}
	if (!dir[i] && abs[i] == '/')
		common = i;
	char rel[4096] = "";
	size_t o = 0;
	for (const char *q = dir + common; *q; q++)
		if (*q == '/' && o + 4 < sizeof rel)
			o += (size_t)snprintf(rel + o, sizeof rel - o, "../");
	snprintf(rel + o, sizeof rel - o, "%s", abs + common + (abs[common] == '/'));
	free(abs);
	return ir_strfmt(a, "%.*s%s%s", (int)at, spec, rel, spec + at + len);
}

/* spec with a relative file taken from folder `dir` when it is there
 * (older plans stored paths as typed: those stay as they are otherwise). */
static const char *spec_from(IrArena *a, const char *spec, bool model, const char *dir)
{
	size_t at, len;
	if (!spec || !spec_file(spec, model, &at, &len) || spec[at] == '/')
		return spec;
	char file[8192];
	snprintf(file, sizeof file, "%s/%.*s", dir, (int)len, spec + at);
	if (access(file, R_OK))
		return spec;
	return ir_strfmt(a, "%.*s%s%s", (int)at, spec, file, spec + at + len);
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */

/* Largest byte count a plan may state (an exabyte: finite, far above any
 * device). */
#define MAX_BYTES 1e18
/* Longest time a plan may state (about 30 years). */
#define MAX_SECONDS 1e9

typedef struct {
	IrPlan *p;
	const char *file;
	IrError *e;
} Reader;

/* Integer attribute (the schema checked its form); -1 with e if out of range. */
static int attr_long(Reader *r, xmlNodePtr n, const char *name, long lo, long hi, long dflt,
		     long *out)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
	if (!v) {
		*out = dflt;
		return 0;
	}
	errno = 0;
	char *end;
	long x = strtol((const char *)v, &end, 10);
	bool ok = !errno && *end == 0 && x >= lo && x <= hi;
	xmlFree(v);
	if (!ok)
		return ir_fail(r->e, r->file, ir_xml_line(n), "%s must be in %ld..%ld", name, lo, hi);
	*out = x;
	return 0;
}

static bool attr_bool(xmlNodePtr n, const char *name)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
	bool b = v && (!strcmp((const char *)v, "true") || !strcmp((const char *)v, "1"));
	xmlFree(v);
	return b;
}

static int count_children(xmlNodePtr n, const char *name)
{
	int k = 0;
	for (xmlNodePtr c = n->children; c; c = c->next)
		k += ir_xml_is(c, name);
	return k;
}

/* A strategy's costs: compute, comm, reshard (seconds), memory (bytes). */
static int read_alt(Reader *r, xmlNodePtr n, IrAlt *a)
{
	a->strategy = ir_xml_attr(&r->p->arena, n, "strategy");
	if (!a->strategy)
		a->strategy = "";
	if (ir_xml_real(n, "compute", r->file, 0, false, MAX_SECONDS, &a->compute_s, r->e) < 0 ||
	    ir_xml_real(n, "comm", r->file, 0, false, MAX_SECONDS, &a->comm_s, r->e) < 0 ||
	    ir_xml_real(n, "reshard", r->file, 0, false, MAX_SECONDS, &a->reshard_s, r->e) < 0 ||
	    ir_xml_real(n, "memory", r->file, 0, false, MAX_BYTES, &a->mem_bytes, r->e) < 0)
		return -1;
	return 0;
}

static int read_why(Reader *r, xmlNodePtr n, IrOpWhy *w)
{
	long x;
	if (attr_long(r, n, "op", 0, 1L << 30, 0, &x))
		return -1;
	w->op = (int)x;
	w->weight = attr_bool(n, "weight");
	if (attr_long(r, n, "strategies", 1, 1L << 30, 1, &x))
		return -1;
	w->nstrat = (int)x;
	if (read_alt(r, n, &w->chosen) ||
	    ir_xml_real(n, "reshard-in", r->file, 0, false, MAX_SECONDS, &w->reshard_in_s, r->e) < 0)
		return -1;
	w->nalt = count_children(n, "alt");
	w->alt = ir_alloc(&r->p->arena, sizeof(IrAlt) * (size_t)(w->nalt ? w->nalt : 1));
	int k = 0;
	for (xmlNodePtr c = n->children; c; c = c->next)
		if (ir_xml_is(c, "alt") && read_alt(r, c, &w->alt[k++]))
			return -1;
	return 0;
}

static int read_search(Reader *r, xmlNodePtr n)
{
	IrPlanSearch *s = &r->p->search;
	IrArena *a = &r->p->arena;
	s->from = ir_xml_attr(a, n, "from");
	s->cut = ir_xml_attr(a, n, "cut");
	if (ir_xml_real(n, "estimate", r->file, 0, false, MAX_SECONDS, &s->estimate_s, r->e) < 0 ||
	    ir_xml_real(n, "device-memory", r->file, 0, false, MAX_BYTES, &s->device_bytes,
			r->e) < 0)
		return -1;
	const char *times = ir_xml_attr(a, n, "stage-times");
	s->stage_s = ir_alloc(a, sizeof(double) * (size_t)(r->p->nstages + 1));
	for (const char *q = times; q && *q && s->nstage_s < r->p->nstages;) {
		char *end;
		double v = strtod(q, &end);
		if (end == q || !isfinite(v) || v < 0)
			return ir_fail(r->e, r->file, ir_xml_line(n), "stage-times: '%s' is not a "
				       "list of times", times);
		s->stage_s[s->nstage_s++] = v;
		q = end;
		while (*q == ' ')
			q++;
	}
	s->nalt = count_children(n, "alt");
	s->alt = ir_alloc(a, sizeof(IrSearchAlt) * (size_t)(s->nalt ? s->nalt : 1));
	int k = 0;
	for (xmlNodePtr c = n->children; c; c = c->next) {
		if (!ir_xml_is(c, "alt"))
			continue;
		IrSearchAlt *t = &s->alt[k++];
		t->what = ir_xml_attr(a, c, "what");
		t->layout = ir_xml_attr(a, c, "layout");
		t->step_s = NAN;
		t->fits = attr_bool(c, "fits");
		if (ir_xml_real(c, "step", r->file, 0, false, MAX_SECONDS, &t->step_s, r->e) < 0 ||
		    ir_xml_real(c, "memory", r->file, 0, false, MAX_BYTES, &t->mem_bytes, r->e) < 0)
			return -1;
	}
	return 0;
}

static int read_stage(Reader *r, xmlNodePtr n, IrStagePlan *s)
{
	IrPlan *p = r->p;
	long v[6];
	static const char *const names[6] = {"first-layer", "last-layer", "node0", "nodes",
					     "gpu0", "gpus"};
	static const long hi[6] = {1L << 30, 1L << 30, IR_MAX_NODES - 1, IR_MAX_NODES,
				   IR_MAX_GPUS_PER_NODE - 1, IR_MAX_GPUS_PER_NODE};
	for (int i = 0; i < 6; i++)
		if (attr_long(r, n, names[i], 0, hi[i], 0, &v[i]))
			return -1;
	s->first_layer = (int)v[0];
	s->last_layer = (int)v[1];
	s->mesh = (IrMesh){(int)v[2], (int)v[3], (int)v[4], (int)v[5]};
	if (s->first_layer > s->last_layer)
		return ir_fail(r->e, r->file, ir_xml_line(n), "first-layer %d is after last-layer %d",
			       s->first_layer, s->last_layer);
	const char *shape = ir_xml_attr(&p->arena, n, "logical");
	IrError me;
	if (ir_mesh_shape_parse(shape, &s->n0, &s->n1, &me))
		return ir_fail(r->e, r->file, ir_xml_line(n), "%s", me.msg);
	if ((long)s->n0 * s->n1 != (long)s->mesh.nnodes * s->mesh.ngpus)
		return ir_fail(r->e, r->file, ir_xml_line(n),
			       "logical mesh %dx%d does not have the %d devices of %dx%d", s->n0,
			       s->n1, s->mesh.nnodes * s->mesh.ngpus, s->mesh.nnodes,
			       s->mesh.ngpus);
	if (ir_xml_real(n, "weight-bytes", r->file, 0, false, MAX_BYTES, &s->weight_bytes, r->e) < 0 ||
	    ir_xml_real(n, "grad-bytes", r->file, 0, false, MAX_BYTES, &s->grad_bytes, r->e) < 0 ||
	    ir_xml_real(n, "opt-bytes", r->file, 0, false, MAX_BYTES, &s->opt_bytes, r->e) < 0 ||
	    ir_xml_real(n, "act-bytes", r->file, 0, false, MAX_BYTES, &s->act_bytes, r->e) < 0)
		return -1;

	int nops = count_children(n, "op");
	if (!nops)
		return ir_fail(r->e, r->file, ir_xml_line(n), "stage of layers %d..%d has no ops",
			       s->first_layer, s->last_layer);
	ir_stage_alloc(p, s, nops, count_children(n, "comm"));
	s->line = ir_xml_line(n);
	s->op_line = ir_alloc(&p->arena, sizeof(int) * (size_t)nops);
	s->nwhy = count_children(n, "why");
	s->why = s->nwhy ? ir_alloc(&p->arena, sizeof(IrOpWhy) * (size_t)s->nwhy) : NULL;
	if (ir_xml_real(n, "ilp", r->file, 0, false, MAX_SECONDS, &s->ilp_s, r->e) < 0)
		return -1;
	int io = 0, ic = 0, iw = 0;
	long ndev = (long)s->n0 * s->n1;
	for (xmlNodePtr c = n->children; c; c = c->next) {
		long x;
		if (ir_xml_is(c, "op")) {
			if (attr_long(r, c, "id", 0, 1L << 30, 0, &x))
				return -1;
			if (io && x <= s->op[io - 1])
				return ir_fail(r->e, r->file, ir_xml_line(c),
					       "op %ld is not after op %d (ops go in graph order)", x,
					       s->op[io - 1]);
			s->op[io] = (int)x;
			s->op_line[io] = ir_xml_line(c);
			if (attr_long(r, c, "ways", 1, ndev, 1, &x))
				return -1;
			s->ways[io] = (int)x;
			s->strategy[io] = ir_xml_attr(&p->arena, c, "strategy");
			io++;
		} else if (ir_xml_is(c, "comm")) {
			IrComm *cm = &s->comm[ic++];
			if (attr_long(r, c, "op", 0, 1L << 30, 0, &x))
				return -1;
			cm->op = (int)x;
			if (attr_long(r, c, "axis", 0, 2, 0, &x))
				return -1;
			cm->axis = (int)x;
			IrArena tmp = {0};
			const char *kind = ir_xml_attr(&tmp, c, "kind");
			int bad = ir_coll_parse(kind, &cm->kind);
			ir_arena_free(&tmp);
			if (bad)
				return ir_fail(r->e, r->file, ir_xml_line(c),
					       "comm kind is not a collective meshplan knows");
			if (ir_xml_real(c, "bytes", r->file, 0, false, MAX_BYTES, &cm->bytes, r->e) < 0)
				return -1;
			cm->per_step = attr_bool(c, "per-step");
			cm->reshard = attr_bool(c, "reshard");
			cm->weight = attr_bool(c, "weight");
		} else if (ir_xml_is(c, "why")) {
			if (read_why(r, c, &s->why[iw++]))
				return -1;
		}
	}
	return 0;
}

static bool meshes_meet(const IrMesh *a, const IrMesh *b)
{
	return a->node0 < b->node0 + b->nnodes && b->node0 < a->node0 + a->nnodes &&
	       a->gpu0 < b->gpu0 + b->ngpus && b->gpu0 < a->gpu0 + a->ngpus;
}

/* Stages of different pipeline ranks run at the same time, so they may
 * not share a device.  With `chunks` model chunks per rank, stage k runs
 * on rank k mod (stages / chunks), and the chunks of one rank share its
 * devices by design. */
static int check_devices(Reader *r)
{
	const IrPlan *p = r->p;
	int ranks = p->nstages / p->chunks;
	for (int j = 1; j < p->nstages; j++)
		for (int i = 0; i < j; i++) {
			const IrStagePlan *a = &p->stages[i], *b = &p->stages[j];
			if (i % ranks == j % ranks || !meshes_meet(&a->mesh, &b->mesh))
				continue;
			return ir_fail(r->e, r->file, b->line,
				       "stage of layers %d..%d shares devices with the stage of "
				       "layers %d..%d (line %d); pipeline stages need their own GPUs",
				       b->first_layer, b->last_layer, a->first_layer, a->last_layer,
				       a->line);
		}
	return 0;
}

static int read_plan(Reader *r, xmlNodePtr root)
{
	IrPlan *p = r->p;
	p->model = ir_xml_attr(&p->arena, root, "model");
	p->cluster = ir_xml_attr(&p->arena, root, "cluster");
	char dir[4096];
	if (folder_of(r->file, dir, sizeof dir)) {
		p->model = spec_from(&p->arena, p->model, true, dir);
		p->cluster = spec_from(&p->arena, p->cluster, false, dir);
	}
	long x;
	if (attr_long(r, root, "nodes", 0, 1000000, 0, &x))
		return -1;
	p->nodes = (int)x;
	if (attr_long(r, root, "global-batch", 1, 1L << 40, 1, &x))
		return -1;
	p->global_batch = x;
	if (attr_long(r, root, "microbatch", 1, 1L << 40, 1, &x))
		return -1;
	p->microbatch = x;
	if (attr_long(r, root, "microbatches", 1, 1 << 24, 1, &x))
		return -1;
	p->nmicro = (int)x;
	if (attr_long(r, root, "chunks", 1, 1 << 16, 1, &x))
		return -1;
	p->chunks = (int)x;
	if (attr_long(r, root, "zero", 0, 3, 0, &x))
		return -1;
	p->zero = (int)x;
	IrArena tmp = {0};
	ir_schedule_parse(ir_xml_attr(&tmp, root, "schedule"), &p->schedule);
	ir_recompute_parse(ir_xml_attr(&tmp, root, "recompute"), &p->recompute);
	const char *ov = ir_xml_attr(&tmp, root, "overlap");
	p->overlap = 0; /* a plan without the attribute overlaps nothing */
	if (ov && ir_overlap_parse(ov, &p->overlap)) {
		ir_arena_free(&tmp);
		return ir_fail(r->e, r->file, ir_xml_line(root), "overlap '%s' is not none or a "
			       "list of grad-reduce, param-gather, tp", ov);
	}
	ir_arena_free(&tmp);
	if ((long)p->microbatch * p->nmicro != p->global_batch)
		return ir_fail(r->e, r->file, ir_xml_line(root),
			       "microbatch %lld x microbatches %d is not the global batch %lld",
			       (long long)p->microbatch, p->nmicro, (long long)p->global_batch);
	if (p->chunks > 1 && p->schedule != IR_SCHED_INTERLEAVED)
		return ir_fail(r->e, r->file, ir_xml_line(root),
			       "chunks=%d needs schedule=\"interleaved\"", p->chunks);

	p->nstages = count_children(root, "stage");
	p->stages = ir_alloc(&p->arena, sizeof(IrStagePlan) * (size_t)p->nstages);
	int i = 0;
	for (xmlNodePtr n = root->children; n; n = n->next) {
		if (ir_xml_is(n, "set")) {
			IrArena a = {0};
			const char *name = ir_xml_attr(&a, n, "name");
			long v;
			int rc = attr_long(r, n, "value", -(1L << 62), 1L << 62, 0, &v);
			if (!rc && ir_params_set(&p->params, name, v))
				rc = ir_fail(r->e, r->file, ir_xml_line(n), "too many <set> overrides");
			ir_arena_free(&a);
			if (rc)
				return -1;
		} else if (ir_xml_is(n, "stage")) {
			if (read_stage(r, n, &p->stages[i]))
				return -1;
			if (i && p->stages[i].first_layer != p->stages[i - 1].last_layer + 1)
				return ir_fail(r->e, r->file, ir_xml_line(n),
					       "stage starts at layer %d, the one before ends at %d",
					       p->stages[i].first_layer, p->stages[i - 1].last_layer);
			i++;
		} else if (ir_xml_is(n, "search")) {
			if (read_search(r, n))
				return -1;
		}
	}
	if (p->nstages % p->chunks)
		return ir_fail(r->e, r->file, ir_xml_line(root),
			       "%d stages are not %d chunks per pipeline rank", p->nstages,
			       p->chunks);
	return check_devices(r);
}

int ir_plan_read(const char *path, IrPlan *p, IrError *e)
{
	ir_plan_init(p);
	char schema[1024];
	snprintf(schema, sizeof schema, "%s/models/plan.rng", ir_data_dir());
	xmlDocPtr doc = ir_xml_read_validated(path, schema, "plan", e);
	if (!doc)
		return -1;
	Reader r = {p, path, e};
	int rc = read_plan(&r, xmlDocGetRootElement(doc));
	xmlFreeDoc(doc);
	if (rc)
		ir_plan_free(p);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Writing                                                              */

static int wattr(xmlTextWriterPtr w, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int wattr(xmlTextWriterPtr w, const char *name, const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return xmlTextWriterWriteAttribute(w, (const xmlChar *)name, (const xmlChar *)buf) < 0;
}

static int wstr(xmlTextWriterPtr w, const char *name, const char *v)
{
	return xmlTextWriterWriteAttribute(w, (const xmlChar *)name, (const xmlChar *)v) < 0;
}

static int write_alt(xmlTextWriterPtr w, const IrAlt *a)
{
	int bad = wstr(w, "strategy", a->strategy ? a->strategy : "");
	bad |= wattr(w, "compute", "%.17g", a->compute_s);
	bad |= wattr(w, "comm", "%.17g", a->comm_s);
	bad |= wattr(w, "reshard", "%.17g", a->reshard_s);
	bad |= wattr(w, "memory", "%.17g", a->mem_bytes);
	return bad;
}

static int write_why(xmlTextWriterPtr w, const IrOpWhy *y)
{
	int bad = xmlTextWriterStartElement(w, (const xmlChar *)"why") < 0;
	bad |= wattr(w, "op", "%d", y->op);
	if (y->weight)
		bad |= wstr(w, "weight", "true");
	bad |= wattr(w, "strategies", "%d", y->nstrat);
	bad |= write_alt(w, &y->chosen);
	bad |= wattr(w, "reshard-in", "%.17g", y->reshard_in_s);
	for (int k = 0; k < y->nalt && !bad; k++) {
		bad |= xmlTextWriterStartElement(w, (const xmlChar *)"alt") < 0;
		bad |= write_alt(w, &y->alt[k]);
		bad |= xmlTextWriterEndElement(w) < 0;
	}
	bad |= xmlTextWriterEndElement(w) < 0;
	return bad;
}

static int write_stage(xmlTextWriterPtr w, const IrStagePlan *s)
{
	int bad = xmlTextWriterStartElement(w, (const xmlChar *)"stage") < 0;
	bad |= wattr(w, "first-layer", "%d", s->first_layer);
	bad |= wattr(w, "last-layer", "%d", s->last_layer);
	bad |= wattr(w, "node0", "%d", s->mesh.node0);
	bad |= wattr(w, "nodes", "%d", s->mesh.nnodes);
	bad |= wattr(w, "gpu0", "%d", s->mesh.gpu0);
	bad |= wattr(w, "gpus", "%d", s->mesh.ngpus);
	bad |= wattr(w, "logical", "%dx%d", s->n0, s->n1);
	bad |= wattr(w, "weight-bytes", "%.17g", s->weight_bytes);
	bad |= wattr(w, "grad-bytes", "%.17g", s->grad_bytes);
	bad |= wattr(w, "opt-bytes", "%.17g", s->opt_bytes);
	bad |= wattr(w, "act-bytes", "%.17g", s->act_bytes);
	if (s->nwhy)
		bad |= wattr(w, "ilp", "%.17g", s->ilp_s);
	for (int i = 0; i < s->nops && !bad; i++) {
		bad |= xmlTextWriterStartElement(w, (const xmlChar *)"op") < 0;
		bad |= wattr(w, "id", "%d", s->op[i]);
		bad |= wattr(w, "ways", "%d", s->ways[i]);
		bad |= wstr(w, "strategy", s->strategy[i] ? s->strategy[i] : "");
		bad |= xmlTextWriterEndElement(w) < 0;
	}
	for (int i = 0; i < s->ncomm && !bad; i++) {
		const IrComm *c = &s->comm[i];
		if ((unsigned)c->kind >= IR_NCOLL || c->axis < 0 || c->axis > 2)
			return -1;
		bad |= xmlTextWriterStartElement(w, (const xmlChar *)"comm") < 0;
		bad |= wattr(w, "op", "%d", c->op);
		bad |= wstr(w, "kind", ir_coll_name(c->kind));
		bad |= wattr(w, "axis", "%d", c->axis);
		bad |= wattr(w, "bytes", "%.17g", c->bytes);
		if (c->per_step)
			bad |= wstr(w, "per-step", "true");
		if (c->reshard)
			bad |= wstr(w, "reshard", "true");
		if (c->weight)
			bad |= wstr(w, "weight", "true");
		bad |= xmlTextWriterEndElement(w) < 0;
	}
	for (int i = 0; i < s->nwhy && !bad; i++)
		bad |= write_why(w, &s->why[i]);
	bad |= xmlTextWriterEndElement(w) < 0;
	return bad ? -1 : 0;
}

static int write_search(xmlTextWriterPtr w, const IrPlanSearch *s)
{
	int bad = xmlTextWriterStartElement(w, (const xmlChar *)"search") < 0;
	bad |= wstr(w, "from", s->from ? s->from : "dp");
	bad |= wattr(w, "estimate", "%.17g", s->estimate_s);
	bad |= wattr(w, "device-memory", "%.17g", s->device_bytes);
	if (s->cut)
		bad |= wstr(w, "cut", s->cut);
	if (s->nstage_s) {
		char buf[4096];
		size_t o = 0;
		for (int i = 0; i < s->nstage_s && o < sizeof buf; i++)
			o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%.17g", i ? " " : "",
					      s->stage_s[i]);
		if (o >= sizeof buf)
			return 1;
		bad |= wstr(w, "stage-times", buf);
	}
	for (int i = 0; i < s->nalt && !bad; i++) {
		const IrSearchAlt *a = &s->alt[i];
		bad |= xmlTextWriterStartElement(w, (const xmlChar *)"alt") < 0;
		bad |= wstr(w, "what", a->what ? a->what : "");
		bad |= wstr(w, "layout", a->layout ? a->layout : "");
		if (isfinite(a->step_s))
			bad |= wattr(w, "step", "%.17g", a->step_s);
		bad |= wattr(w, "memory", "%.17g", isfinite(a->mem_bytes) ? a->mem_bytes : 0);
		bad |= wstr(w, "fits", a->fits ? "true" : "false");
		bad |= xmlTextWriterEndElement(w) < 0;
	}
	bad |= xmlTextWriterEndElement(w) < 0;
	return bad;
}

int ir_plan_fwrite(const IrPlan *p, FILE *f, const char *path, IrError *e)
{
	errno = 0;
	xmlOutputBufferPtr out = xmlOutputBufferCreateFile(f, NULL);
	xmlTextWriterPtr w = out ? xmlNewTextWriter(out) : NULL;
	if (!w) {
		if (out)
			xmlOutputBufferClose(out);
		return ir_fail(e, path, 0, "cannot write the plan: out of memory");
	}
	xmlTextWriterSetIndent(w, 1);
	xmlTextWriterSetIndentString(w, (const xmlChar *)"  ");
	int bad = xmlTextWriterStartDocument(w, NULL, "UTF-8", NULL) < 0;
	bad |= xmlTextWriterStartElement(w, (const xmlChar *)"plan") < 0;
	bad |= wstr(w, "xmlns", "urn:meshplan:plan");
	IrArena tmp = {0};
	const char *model = p->model, *cluster = p->cluster;
	char dir[4096];
	if (path && folder_of(path, dir, sizeof dir)) {
		model = spec_relative(&tmp, model, true, dir);
		cluster = spec_relative(&tmp, cluster, false, dir);
	}
	bad |= wstr(w, "model", model ? model : "");
	bad |= wstr(w, "cluster", cluster ? cluster : "");
	ir_arena_free(&tmp);
	if (p->nodes > 0)
		bad |= wattr(w, "nodes", "%d", p->nodes);
	bad |= wattr(w, "global-batch", "%lld", (long long)p->global_batch);
	bad |= wattr(w, "microbatch", "%lld", (long long)p->microbatch);
	bad |= wattr(w, "microbatches", "%d", p->nmicro);
	bad |= wstr(w, "schedule", ir_schedule_name(p->schedule));
	bad |= wattr(w, "chunks", "%d", p->chunks);
	bad |= wstr(w, "recompute", ir_recompute_name(p->recompute));
	bad |= wattr(w, "zero", "%d", p->zero);
	char ovb[64];
	bad |= wstr(w, "overlap", ir_overlap_name(p->overlap, ovb, sizeof ovb));
	for (int i = 0; i < p->params.n && !bad; i++) {
		bad |= xmlTextWriterStartElement(w, (const xmlChar *)"set") < 0;
		bad |= wstr(w, "name", p->params.name[i]);
		bad |= wattr(w, "value", "%lld", (long long)p->params.value[i]);
		bad |= xmlTextWriterEndElement(w) < 0;
	}
	for (int i = 0; i < p->nstages && !bad; i++)
		bad |= write_stage(w, &p->stages[i]) != 0;
	if (p->search.from && !bad)
		bad |= write_search(w, &p->search);
	bad |= xmlTextWriterEndDocument(w) < 0;
	bad |= xmlTextWriterFlush(w) < 0;
	xmlFreeTextWriter(w); /* closes `out`, not f */
	if (bad || ferror(f))
		return ir_fail(e, path, 0, "cannot write the plan: %s",
			       errno ? strerror(errno) : "a collective of unknown kind");
	return 0;
}

int ir_plan_write(const IrPlan *p, const char *path, IrError *e)
{
	IrOutput o;
	if (ir_output_open(&o, path, e))
		return -1;
	if (ir_plan_fwrite(p, o.f, path, e)) {
		ir_output_discard(&o);
		return -1;
	}
	return ir_output_commit(&o, e);
}
