/*
 * opt.c -- every verb's options from one table: parsing, range checks,
 * "did you mean" for unknown options, and the options part of --help, so
 * that the help text and the parser cannot drift apart.
 */
#include <math.h>
#include <string.h>

#include "tools/tools.h"

static int find(const ToolCmdLine *cl, const char *a, size_t len, bool alias)
{
	for (int k = 0; k < cl->nopts; k++) {
		const ToolOpt *o = &cl->opts[k];
		if (alias ? (o->alias && len == 1 && o->alias == a[0]) :
			    (strlen(o->name) == len && !strncmp(o->name, a, len)))
			return k;
	}
	return -1;
}

static int unknown(const ToolCmdLine *cl, const char *a)
{
	const char *names[128];
	char dashed[128][48];
	int n = 0;
	for (int k = 0; k < cl->nopts && n < 128; k++) {
		snprintf(dashed[n], sizeof dashed[n], "--%s", cl->opts[k].name);
		names[n] = dashed[n];
		n++;
	}
	char cut[64], hint[1024];
	const char *eq = strchr(a, '=');
	snprintf(cut, sizeof cut, "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
	ir_suggest(cut, names, n, hint, sizeof hint);
	return tool_error(cl->verb, EXIT_BADINPUT, "unknown option '%s'%s%s", cut, hint[0] ? "; " : "",
			  hint[0] ? hint : " (see --help)");
}

/* An option's range in words: "1..1000000", "positive", "in [0, 1]". */
static const char *range_text(const ToolOpt *o, char *buf, size_t n)
{
	if (o->kind == TOOL_INT && !isinf(o->hi))
		snprintf(buf, n, "%.0f..%.0f", o->lo, o->hi);
	else if (o->kind == TOOL_INT)
		snprintf(buf, n, "at least %.0f", o->lo);
	else if (o->lo == 0 && o->open && isinf(o->hi))
		snprintf(buf, n, "positive");
	else if (o->lo == 0 && isinf(o->hi))
		snprintf(buf, n, "zero or positive");
	else if (isinf(o->hi))
		snprintf(buf, n, "at least %g", o->lo);
	else
		snprintf(buf, n, "in %s%g, %g]", o->open ? "(" : "[", o->lo, o->hi);
	return buf;
}

static int range_error(const ToolCmdLine *cl, const ToolOpt *o, const char *val)
{
	char range[64];
	return tool_error(cl->verb, EXIT_BADINPUT, "--%s must be %s%s, got %s", o->name,
			  o->kind == TOOL_INT && !isinf(o->hi) ? "in " : "",
			  range_text(o, range, sizeof range), val);
}

/* Checks and stores one value of option id. */
static int take(const ToolCmdLine *cl, int id, const char *val, ToolVal *v)
{
	const ToolOpt *o = &cl->opts[id];
	v[id].str = val;
	if (o->kind == TOOL_NUM || o->kind == TOOL_INT) {
		long n;
		if (o->kind == TOOL_INT ? !tool_parse_int(val, &n) : !tool_parse_double(val, &v[id].num))
			return tool_error(cl->verb, EXIT_BADINPUT, "--%s: '%s' is not %s", o->name,
					  val, o->kind == TOOL_INT ? "an integer" : "a number");
		if (o->kind == TOOL_INT)
			v[id].num = (double)n;
		double x = v[id].num;
		if (x < o->lo || (o->open && x == o->lo) || x > o->hi)
			return range_error(cl, o, val);
	} else if (o->kind == TOOL_PARAMS) {
		IrError e;
		if (!cl->params)
			return tool_error(cl->verb, EXIT_BADINPUT, "--%s is not taken here", o->name);
		if (ir_params_parse(cl->params, val, &e))
			return tool_input_error(&e);
	}
	return cl->hook ? cl->hook(cl->ctx, id, val) : EXIT_OK;
}

int tool_opts_parse(const ToolCmdLine *cl, int argc, char **argv, ToolVal *v, const char **pos,
		    int *npos)
{
	memset(v, 0, sizeof *v * (size_t)cl->nopts);
	*npos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-' || !a[1]) {
			if (*npos >= cl->maxpos)
				return tool_error(cl->verb, EXIT_BADINPUT, "unexpected argument '%s'", a);
			pos[(*npos)++] = a;
			continue;
		}
		bool alias = a[1] != '-';
		const char *name = a + (alias ? 1 : 2), *eq = alias ? NULL : strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		int id = find(cl, name, len, alias);
		if (id < 0)
			return unknown(cl, a);
		const ToolOpt *o = &cl->opts[id];
		if (v[id].set && !o->repeat)
			return tool_error(cl->verb, EXIT_BADINPUT, "--%s given twice", o->name);
		v[id].set = true;
		v[id].count++;
		if (o->kind == TOOL_FLAG) {
			if (eq)
				return tool_error(cl->verb, EXIT_BADINPUT, "--%s takes no value", o->name);
			int rc = cl->hook ? cl->hook(cl->ctx, id, NULL) : EXIT_OK;
			if (rc)
				return rc;
			continue;
		}
		const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
		if (!val)
			return tool_error(cl->verb, EXIT_BADINPUT, "--%s needs a value %s", o->name,
					  o->arg ? o->arg : "");
		int rc = take(cl, id, val, v);
		if (rc)
			return rc;
	}
	return EXIT_OK;
}

bool tool_opts_done(const ToolCmdLine *cl, int argc, char **argv, ToolVal *v, const char **pos,
		    int *npos, int *code)
{
	*code = tool_opts_parse(cl, argc, argv, v, pos, npos);
	if (*code)
		return true;
	for (int i = 0; i < cl->nopts; i++)
		if (cl->usage && v[i].set && !strcmp(cl->opts[i].name, "help")) {
			cl->usage(stdout);
			return true;
		}
	return false;
}

void tool_opts_help(FILE *f, const ToolOpt *opts, int n)
{
	for (int i = 0; i < n; i++) {
		char lhs[64];
		char al[8] = "";
		if (opts[i].alias)
			snprintf(al, sizeof al, "-%c, ", opts[i].alias);
		snprintf(lhs, sizeof lhs, "%s--%s%s%s", al, opts[i].name, opts[i].arg ? " " : "",
			 opts[i].arg ? opts[i].arg : "");
		char range[80] = "";
		if ((opts[i].kind == TOOL_NUM || opts[i].kind == TOOL_INT) && !isinf(opts[i].lo)) {
			char r[64];
			snprintf(range, sizeof range, " [%s]", range_text(&opts[i], r, sizeof r));
		}
		if (strlen(lhs) > 28)
			fprintf(f, "  %s\n  %-28s %s%s\n", lhs, "", opts[i].help, range);
		else
			fprintf(f, "  %-28s %s%s\n", lhs, opts[i].help, range);
	}
}
