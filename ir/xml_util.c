/*
 * xml_util.c -- reading and validating XML with libxml2, errors turned
 * into IrError records (file, line, message) instead of printed text.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
} ValidCtx;

static void on_valid_error(void *ctx, xmlErrorPtr err)
{
	ValidCtx *v = ctx;
	if (v->set || !err)
		return;
	v->set = true;
	set_msg(v->e, v->file, err->line, "schema violation: ", err->message);
}

static void quiet(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

xmlDocPtr ir_xml_read_validated(const char *file, const char *schema, const char *root,
				IrError *e)
{
	xmlSetGenericErrorFunc(NULL, quiet);
	xmlParserCtxtPtr pctx = xmlNewParserCtxt();
	if (!pctx) {
		ir_fail(e, file, 0, "out of memory");
		return NULL;
	}
	FILE *f = fopen(file, "rb");
	if (!f) {
		ir_fail(e, file, 0, "cannot open: %s", strerror(errno));
		xmlFreeParserCtxt(pctx);
		return NULL;
	}
	fclose(f);
	xmlDocPtr doc = xmlCtxtReadFile(pctx, file, NULL,
					XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		xmlErrorPtr err = xmlCtxtGetLastError(pctx);
		set_msg(e, file, err ? err->line : 0, "not well-formed XML: ",
			err ? err->message : NULL);
		xmlFreeParserCtxt(pctx);
		return NULL;
	}
	xmlFreeParserCtxt(pctx);

	xmlRelaxNGParserCtxtPtr sp = xmlRelaxNGNewParserCtxt(schema);
	xmlRelaxNGPtr rng = sp ? xmlRelaxNGParse(sp) : NULL;
	if (sp)
		xmlRelaxNGFreeParserCtxt(sp);
	if (!rng) {
		ir_fail(e, schema, 0, "cannot load the schema (set MESHPLAN_DATA to the source tree)");
		xmlFreeDoc(doc);
		return NULL;
	}
	xmlRelaxNGValidCtxtPtr vc = xmlRelaxNGNewValidCtxt(rng);
	ValidCtx v = {e, file, false};
	xmlRelaxNGSetValidStructuredErrors(vc, on_valid_error, &v);
	int rc = xmlRelaxNGValidateDoc(vc, doc);
	xmlRelaxNGFreeValidCtxt(vc);
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

bool ir_xml_is(xmlNodePtr n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

int ir_xml_line(xmlNodePtr n) { return (int)xmlGetLineNo(n); }
