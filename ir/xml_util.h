/*
 * xml_util.h -- private helpers of ir/ for reading validated XML with
 * line numbers (not part of the public ir.h).
 */
#ifndef MESHPLAN_IR_XML_UTIL_H
#define MESHPLAN_IR_XML_UTIL_H

#include <stdbool.h>
#include <libxml/tree.h>

#include "ir/ir.h"

/* True when spec names a file (has a '/' or ends in .xml) rather than a zoo entry. */
bool ir_xml_is_path(const char *spec);
/* Reads `file` without network access, validates it against the RelaxNG
 * schema `schema` and checks the root element; NULL with e on failure. */
xmlDocPtr ir_xml_read_validated(const char *file, const char *schema, const char *root,
				IrError *e);
/* The same for a document already in memory (buf[0..len)); errors name `file`. */
xmlDocPtr ir_xml_parse_validated(const char *buf, size_t len, const char *file,
				 const char *schema, const char *root, IrError *e);
/* Attribute value copied into the arena, NULL when absent. */
const char *ir_xml_attr(IrArena *a, xmlNodePtr n, const char *name);
/* Attribute as a double, unchecked; false when absent.  Prefer ir_xml_real. */
bool ir_xml_double(xmlNodePtr n, const char *name, double *v);
/* Attribute as a finite double in [lo, hi] ((lo, hi] when lo_open):
 * 1 read into *v, 0 absent (*v untouched), -1 with e naming file and the
 * element's line when it is not such a number. */
int ir_xml_real(xmlNodePtr n, const char *name, const char *file, double lo, bool lo_open,
		double hi, double *v, IrError *e);
/* Attribute as an integer in [lo, hi]; same returns. */
int ir_xml_int(xmlNodePtr n, const char *name, const char *file, int64_t lo, int64_t hi,
	       int64_t *v, IrError *e);
bool ir_xml_is(xmlNodePtr n, const char *name);
int ir_xml_line(xmlNodePtr n);

#endif
