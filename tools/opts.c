/*
 * opts.c -- table-driven option parsing for verbs (the way `estimate`
 * parses): one ToolOpt table gives names, kinds, ranges and --help text.
 */
#include <math.h>
#include <string.h>

#include "tools/tools.h"

static int find(const ToolOpt *o, int n, const char *name, size_t len, bool is_short)
{
	for (int k = 0; k < n; k++) {
		if (is_short ? (o[k].short_name && o[k].short_name == name[0])
			     : (strlen(o[k].name) == len && !strncmp(o[k].name, name, len)))
			return k;
	}
	return -1;
}

static int range_error(const char *verb, const ToolOpt *o, const char *val)
{
	char range[64];
	if (o->lo == 0 && o->open)
		snprintf(range, sizeof range, "positive");
	else if (o->lo == 0 && isinf(o->hi))
		snprintf(range, sizeof range, "zero or positive");
	else if (isinf(o->hi))
		snprintf(range, sizeof range, "at least %g", o->lo);
	else
		snprintf(range, sizeof range, "in [%g, %g]", o->lo, o->hi);
	return tool_error(verb, EXIT_BADINPUT, "--%s must be %s, got %s", o->name, range, val);
}

/* Parses val for option o into x (numbers checked against o's range). */
static int number(const char *verb, const ToolOpt *o, const char *val, double *x)
{
	long n;
	bool isint = o->kind == TOOL_OPT_INT || o->kind == TOOL_OPT_INTS;
	if (isint ? !tool_parse_int(val, &n) : !tool_parse_double(val, x))
		return tool_error(verb, EXIT_BADINPUT, "--%s: '%s' is not %s", o->name, val,
				  isint ? "an integer" : "a number");
	if (isint)
		*x = (double)n;
	if (*x < o->lo || (o->open && *x == o->lo) || *x > o->hi)
		return range_error(verb, o, val);
	return EXIT_OK;
}

int tool_opts_parse(const char *verb, const ToolOpt *o, int n, int argc, char **argv,
		    ToolVal *v, const char **pos, int maxpos, int *npos)
{
	*npos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool is_long = !strncmp(a, "--", 2), is_short = !is_long && a[0] == '-' && a[1] &&
							      !a[2];
		if (!is_long && !is_short) {
			if (*npos >= maxpos)
				return tool_error(verb, EXIT_BADINPUT, "unexpected argument '%s'", a);
			pos[(*npos)++] = a;
			continue;
		}
		const char *name = a + (is_long ? 2 : 1), *eq = is_long ? strchr(name, '=') : NULL;
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		int id = find(o, n, name, len, is_short);
		if (id < 0)
			return tool_error(verb, EXIT_BADINPUT, "unknown option '%s' (see --help)", a);
		const ToolOpt *op = &o[id];
		bool many = op->kind == TOOL_OPT_STRS || op->kind == TOOL_OPT_INTS;
		if (v[id].set && !many)
			return tool_error(verb, EXIT_BADINPUT, "--%s given twice", op->name);
		v[id].set = true;
		if (op->kind == TOOL_OPT_FLAG) {
			if (eq)
				return tool_error(verb, EXIT_BADINPUT, "--%s takes no value", op->name);
			continue;
		}
		const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
		if (!val)
			return tool_error(verb, EXIT_BADINPUT, "--%s needs a value %s", op->name,
					  op->arg);
		v[id].str = val;
		if (many) {
			if (v[id].n >= TOOL_OPT_MAX_VALUES)
				return tool_error(verb, EXIT_BADINPUT, "--%s given more than %d times",
						  op->name, TOOL_OPT_MAX_VALUES);
			v[id].list[v[id].n] = val;
			if (op->kind == TOOL_OPT_INTS) {
				int rc = number(verb, op, val, &v[id].nums[v[id].n]);
				if (rc)
					return rc;
			}
			v[id].n++;
			continue;
		}
		if (op->kind == TOOL_OPT_STR)
			continue;
		int rc = number(verb, op, val, &v[id].num);
		if (rc)
			return rc;
	}
	return EXIT_OK;
}

void tool_opts_help(FILE *f, const ToolOpt *o, int n)
{
	for (int i = 0; i < n; i++) {
		char lhs[64];
		char sh[8] = "";
		if (o[i].short_name)
			snprintf(sh, sizeof sh, "-%c, ", o[i].short_name);
		snprintf(lhs, sizeof lhs, "%s--%s%s%s", sh, o[i].name, o[i].arg ? " " : "",
			 o[i].arg ? o[i].arg : "");
		fprintf(f, "  %-28s %s\n", lhs, o[i].help);
	}
}
