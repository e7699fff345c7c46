/*
 * xml_util.c -- reading and validating XML with libxml2, errors turned
 * into IrError records (file, line, message) instead of printed text.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/parser.h>
#include <libxml/relaxng.h>

#include "ir/xml_util.h"

bool ir_xml_is_path(const char *spec)
{
	size_t n = strlen(spec);
	return strchr(spec, '/') || (n > 4 && !strcmp(spec + n - 4, ".xml"));
}

/* Trims libxml2's trailing newline and period off a message. */
static void set_msg(IrError *e, const char *file, int line, const char *what, const char *msg)
{
	char buf[400];
	snprintf(buf, sizeof buf, "%s", msg ? msg : "unknown error");
	size_t n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '.'))
		buf[--n] = 0;
	ir_fail(e, file, line, "%s%s", what, buf);
}

typedef struct {
	IrError *e;
	const char *file;
	bool set;
} ErrCtx;

/* libxml2 reports errors through here; the first one is kept (later ones
 * are usually consequences of it).  Schema errors about an attribute may
 * come without a line: the element's line is used then. */
static void on_error(void *ctx, xmlErrorPtr err)
{
	ErrCtx *v = ctx;
	if (v->set || !err || err->level < XML_ERR_ERROR)
		return;
	v->set = true;
	int line = err->line;
	if (line <= 0 && err->node)
		line = (int)xmlGetLineNo((xmlNodePtr)err->node);
	set_msg(v->e, v->file, line,
		err->domain == XML_FROM_RELAXNGV ? "schema violation: " : "not well-formed XML: ",
		err->message);
}

static void quiet(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

/* Reads a regular file of at most IR_MAX_FILE_BYTES into a malloc'd
 * buffer; NULL with e. */
static char *read_file(const char *file, size_t *len, IrError *e)
{
	struct stat st;
	if (stat(file, &st) != 0) {
		ir_fail(e, file, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		ir_fail(e, file, 0, "is a directory, not a file");
		return NULL;
	}
	if (S_ISREG(st.st_mode) && st.st_size > IR_MAX_FILE_BYTES) {
		ir_fail(e, file, 0, "file is %lld bytes, over the limit of %d (docs/limits.md)",
			(long long)st.st_size, IR_MAX_FILE_BYTES);
		return NULL;
	}
	FILE *f = fopen(file, "rb");
	if (!f) {
		ir_fail(e, file, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	/* The buffer starts one byte past the file's size (64 KiB for a pipe)
	 * and doubles while there is more, up to one byte past the limit. */
	size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536, n = 0;
	char *buf = ir_xmalloc(cap);
	for (;;) {
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap || cap > IR_MAX_FILE_BYTES)
			break;
		cap = cap > IR_MAX_FILE_BYTES / 2 ? (size_t)IR_MAX_FILE_BYTES + 1 : 2 * cap;
		buf = ir_xrealloc(buf, cap);
	}
	int err = ferror(f) ? errno : 0;
	fclose(f);
	if (err) {
		ir_fail(e, file, 0, "cannot read: %s", strerror(err));
		free(buf);
		return NULL;
	}
	if (n > IR_MAX_FILE_BYTES) {
		ir_fail(e, file, 0, "file is over the limit of %d bytes (docs/limits.md)",
			IR_MAX_FILE_BYTES);
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* Line of the first DOCTYPE declaration, 0 if none.  Document type
 * declarations bring entities, which have no use in meshplan's files and
 * can make a small file expand without bound; they are refused outright. */
static int doctype_line(const char *buf, size_t n)
{
	static const char key[] = "<!DOCTYPE";
	if (!n)
		return 0;
	const char *end = buf + n, *at = buf;
	while ((at = memchr(at, '<', (size_t)(end - at)))) {
		if ((size_t)(end - at) >= sizeof key - 1 && !memcmp(at, key, sizeof key - 1))
			break;
		at++;
	}
	if (!at)
		return 0;
	int line = 1;
	for (const char *p = buf; (p = memchr(p, '\n', (size_t)(at - p))); p++)
		line++;
	return line;
}

/* ---- compiled schemas, one per path, for the life of the process ----
 * Compiling a RelaxNG schema (xmlRelaxNGParse) costs more than reading and
 * validating a typical model file, so each schema path is compiled once.
 * libxml2 allows one compiled xmlRelaxNGPtr to be shared by any number of
 * validations, each with its own xmlRelaxNGValidCtxt; the table itself is
 * guarded by a mutex.  A schema that fails to compile is not kept (each
 * load reports it again).  Past SCHEMA_SLOTS paths a schema is compiled
 * for the one validation and freed after it.  The table is freed at exit. */

enum { SCHEMA_SLOTS = 8 }; /* model, cluster, plan, sweep, with room for a second data dir */

static struct {
	char *path;
	xmlRelaxNGPtr rng;
} schemas[SCHEMA_SLOTS];
static int nschemas;
static pthread_mutex_t schemas_lock = PTHREAD_MUTEX_INITIALIZER;

static void schemas_free(void)
{
	pthread_mutex_lock(&schemas_lock);
	for (int i = 0; i < nschemas; i++) {
		xmlRelaxNGFree(schemas[i].rng);
		free(schemas[i].path);
	}
	nschemas = 0;
	pthread_mutex_unlock(&schemas_lock);
}

static xmlRelaxNGPtr schema_compile(const char *path)
{
	xmlRelaxNGParserCtxtPtr sp = xmlRelaxNGNewParserCtxt(path);
	if (!sp)
		return NULL;
	xmlRelaxNGPtr rng = xmlRelaxNGParse(sp);
	xmlRelaxNGFreeParserCtxt(sp);
	return rng;
}

/* The compiled schema at path, NULL when it does not compile.  *owned is
 * set when the caller must free it (the table was full). */
static xmlRelaxNGPtr schema_get(const char *path, bool *owned)
{
	*owned = false;
	pthread_mutex_lock(&schemas_lock);
	for (int i = 0; i < nschemas; i++) {
		if (!strcmp(schemas[i].path, path)) {
			xmlRelaxNGPtr rng = schemas[i].rng;
			pthread_mutex_unlock(&schemas_lock);
			return rng;
		}
	}
	/* compiled under the lock: libxml2's type library initialisation
	 * (xmlRelaxNGInitTypes) is not itself thread-safe */
	xmlRelaxNGPtr rng = schema_compile(path);
	if (rng && nschemas < SCHEMA_SLOTS) {
		if (!nschemas)
			atexit(schemas_free);
		schemas[nschemas].path = ir_xstrdup(path);
		schemas[nschemas].rng = rng;
		nschemas++;
	} else if (rng) {
		*owned = true;
	}
	pthread_mutex_unlock(&schemas_lock);
	return rng;
}

xmlDocPtr ir_xml_read_validated(const char *file, const char *schema, const char *root,
				IrError *e)
{
	size_t len;
	char *buf = read_file(file, &len, e);
	if (!buf)
		return NULL;
	xmlDocPtr doc = ir_xml_parse_validated(buf, len, file, schema, root, e);
	free(buf);
	return doc;
}

xmlDocPtr ir_xml_parse_validated(const char *buf, size_t len, const char *file,
				 const char *schema, const char *root, IrError *e)
{
	xmlSetGenericErrorFunc(NULL, quiet);
	int dl = doctype_line(buf, len);
	if (dl) {
		ir_fail(e, file, dl, "DOCTYPE and entity declarations are not allowed");
		return NULL;
	}
	xmlParserCtxtPtr pctx = xmlNewParserCtxt();
	if (!pctx) {
		ir_fail(e, file, 0, "out of memory");
		return NULL;
	}
	ErrCtx v = {e, file, false};
	xmlSetStructuredErrorFunc(&v, on_error);
	xmlDocPtr doc = xmlCtxtReadMemory(pctx, buf, (int)len, file, NULL,
					  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc && (doc->intSubset || doc->extSubset)) {
		xmlFreeDoc(doc);
		doc = NULL;
		v.set = true;
		ir_fail(e, file, 0, "DOCTYPE and entity declarations are not allowed");
	}
	if (!doc) {
		xmlErrorPtr err = xmlCtxtGetLastError(pctx);
		if (!v.set)
			set_msg(e, file, err ? err->line : 0, "not well-formed XML: ",
				err ? err->message : NULL);
		xmlFreeParserCtxt(pctx);
		xmlSetStructuredErrorFunc(NULL, NULL);
		return NULL;
	}
	xmlFreeParserCtxt(pctx);
	xmlSetStructuredErrorFunc(NULL, NULL);

	bool owned;
	xmlRelaxNGPtr rng = schema_get(schema, &owned);
	if (!rng) {
		ir_fail(e, schema, 0, "cannot load the schema (set MESHPLAN_DATA to the source tree)");
		xmlFreeDoc(doc);
		return NULL;
	}
	xmlRelaxNGValidCtxtPtr vc = xmlRelaxNGNewValidCtxt(rng);
	if (!vc) {
		ir_fail(e, file, 0, "out of memory");
		if (owned)
			xmlRelaxNGFree(rng);
		xmlFreeDoc(doc);
		return NULL;
	}
	v.set = false;
	xmlRelaxNGSetValidStructuredErrors(vc, on_error, &v);
	int rc = xmlRelaxNGValidateDoc(vc, doc);
	xmlRelaxNGFreeValidCtxt(vc);
	if (owned)
		xmlRelaxNGFree(rng);
	if (rc != 0) {
		if (!v.set)
			ir_fail(e, file, 0, "schema violation: not a meshplan %s", root);
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

const char *ir_xml_attr(IrArena *a, xmlNodePtr n, const char *name)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
	if (!v)
		return NULL;
	char *s = ir_strdup(a, (const char *)v);
	xmlFree(v);
	return s;
}

bool ir_xml_double(xmlNodePtr n, const char *name, double *out)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
	if (!v)
		return false;
	*out = strtod((const char *)v, NULL);
	xmlFree(v);
	return true;
}

int ir_xml_real(xmlNodePtr n, const char *name, const char *file, double lo, bool lo_open,
		double hi, double *out, IrError *e)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
	if (!v)
		return 0;
	char *end;
	errno = 0;
	double x = strtod((const char *)v, &end);
	bool ok = end != (char *)v && !*end && !errno && isfinite(x) &&
		  (lo_open ? x > lo : x >= lo) && x <= hi;
	if (!ok) {
		ir_fail(e, file, ir_xml_line(n), "%s must be a finite number in %s%g, %g], not '%.40s'",
			name, lo_open ? "(" : "[", lo, hi, (const char *)v);
		xmlFree(v);
		return -1;
	}
	xmlFree(v);
	*out = x;
	return 1;
}

int ir_xml_int(xmlNodePtr n, const char *name, const char *file, int64_t lo, int64_t hi,
	       int64_t *out, IrError *e)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
	if (!v)
		return 0;
	char *end;
	errno = 0;
	long long x = strtoll((const char *)v, &end, 10);
	bool ok = end != (char *)v && !*end && !errno && x >= lo && x <= hi;
	if (!ok) {
		ir_fail(e, file, ir_xml_line(n), "%s must be an integer in %lld..%lld, not '%.40s'",
			name, (long long)lo, (long long)hi, (const char *)v);
		xmlFree(v);
		return -1;
	}
	xmlFree(v);
	*out = x;
	return 1;
}

bool ir_xml_is(xmlNodePtr n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

int ir_xml_line(xmlNodePtr n) { return (int)xmlGetLineNo(n); }
