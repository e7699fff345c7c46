/*
 * common.c -- helpers every verb shares: error printing, JSON output,
 * strict number parsing, SI formatting.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#include "tools/tools.h"

/* Writes s with control characters as \xNN, so that a message stays on one
 * line whatever a file or an argument put into it. */
static void put_escaped(const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch < 0x20 || ch == 0x7f)
			fprintf(stderr, "\\x%02x", ch);
		else
			fputc(ch, stderr);
	}
}

int tool_input_error(const IrError *e)
{
	char buf[1024];
	fputs("meshplan: ", stderr);
	put_escaped(ir_error_str(e, buf, sizeof buf));
	fputc('\n', stderr);
	return EXIT_BADINPUT;
}

int tool_error(const char *verb, int code, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fprintf(stderr, "meshplan %s: ", verb);
	put_escaped(buf);
	fputc('\n', stderr);
	return code;
}

void tool_print_json(json_t *obj)
{
	json_dumpf(obj, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
	fputc('\n', stdout);
	json_decref(obj);
}

bool tool_parse_double(const char *s, double *out)
{
	char *end;
	if (!s || !*s)
		return false;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !isfinite(v))
		return false;
	*out = v;
	return true;
}

bool tool_parse_int(const char *s, long *out)
{
	char *end;
	if (!s || !*s)
		return false;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

const char *tool_si(double v, char *buf, size_t n)
{
	static const char *suffix[] = {"", "k", "M", "G", "T", "P", "E"};
	int i = 0;
	double a = fabs(v);
	while (a >= 1000.0 && i < 6) {
		a /= 1000.0;
		v /= 1000.0;
		i++;
	}
	snprintf(buf, n, i ? "%.3g %s" : "%.4g%s", v, suffix[i]);
	return buf;
}

int tool_load_training_graph(const char *model, const IrParamSet *ps, IrGraph *g, IrError *e)
{
	IrModelDoc *m = ir_model_open(model, e);
	if (!m)
		return -1;
	int rc = ir_model_instantiate(m, ps, g, e);
	ir_model_close(m);
	if (rc)
		return -1;
	if (ir_build_training(g, e)) {
		ir_graph_free(g);
		return -1;
	}
	return 0;
}

int tool_plan_simulate(const char *path, int nodes, IrPlan *p, IrCluster *c, IrGraph *g,
		       SimResult *r, IrError *e)
{
	if (ir_plan_read(path, p, e))
		return -1;
	if (ir_cluster_load(p->cluster, nodes ? nodes : p->nodes, c, e)) {
		ir_plan_free(p);
		return -1;
	}
	if (tool_load_training_graph(p->model, &p->params, g, e)) {
		ir_cluster_free(c);
		ir_plan_free(p);
		return -1;
	}
	if (sim_plan(g, c, p, r, e)) {
		if (e->file[0])
			e->line = 0; /* a line of another file; a plan's own errors have no file */
		snprintf(e->file, sizeof e->file, "%s", path);
		ir_graph_free(g);
		ir_cluster_free(c);
		ir_plan_free(p);
		return -1;
	}
	return 0;
}

int tool_write_outputs(const char *verb, const IrPlan *p, const SimResult *r, const char *out,
		       const char *trace)
{
	IrError e;
	IrOutput o = {0}, t = {0};
	if (out && ir_output_open(&o, out, &e))
		return tool_input_error(&e);
	if (trace && ir_output_open(&t, trace, &e)) {
		if (out)
			ir_output_discard(&o);
		return tool_input_error(&e);
	}
	int bad = out && ir_plan_fwrite(p, o.f, out, &e);
	bad = bad || (trace && sim_trace_fwrite(p, r, t.f, trace, &e));
	bad = bad || (out && ir_output_commit(&o, &e));
	bad = bad || (trace && ir_output_commit(&t, &e));
	if (bad) {
		if (o.f)
			ir_output_discard(&o);
		if (t.f)
			ir_output_discard(&t);
		return tool_error(verb, EXIT_INFEASIBLE, "%s", ir_error_str(&e, (char[1024]){0}, 1024));
	}
	return EXIT_OK;
}

void tool_progress(void *ctx, const char *what, int done, int total)
{
	(void)ctx;
	if (total > 0)
		fprintf(stderr, "\r  %s %d/%d ", what, done, total);
	else
		fprintf(stderr, "\r  %s %d ", what, done);
	if (total > 0 && done == total)
		fputs("\r\033[K", stderr);
	fflush(stderr);
}

void tool_progress_end(void)
{
	fputs("\r\033[K", stderr);
	fflush(stderr);
}
