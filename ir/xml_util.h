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
/* Attribute value copied into the arena, NULL when absent. */
const char *ir_xml_attr(IrArena *a, xmlNodePtr n, const char *name);
/* Attribute as a double; false when absent. */
bool ir_xml_double(xmlNodePtr n, const char *name, double *v);
bool ir_xml_is(xmlNodePtr n, const char *name);
int ir_xml_line(xmlNodePtr n);

#endif
