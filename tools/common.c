/*
 * common.c -- helpers every verb shares: error printing, JSON output,
 * strict number parsing, SI formatting.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
	ToolOutputs o = {.plan = out, .trace = trace};
	return tool_write_all(verb, NULL, NULL, p, r, &o);
}

enum { OUT_PLAN, OUT_TRACE, OUT_TIMELINE, OUT_MESH, OUT_MEMORY, NOUT };

int tool_write_all(const char *verb, const IrGraph *g, const IrCluster *c, const IrPlan *p,
		   const SimResult *r, const ToolOutputs *to)
{
	IrError e;
	const char *path[NOUT] = {to->plan, to->trace, to->svg_timeline, to->svg_mesh,
				  to->svg_memory};
	IrOutput o[NOUT];
	memset(o, 0, sizeof o);
	int opened = 0;
	for (; opened < NOUT; opened++) {
		if (path[opened] && ir_output_open(&o[opened], path[opened], &e)) {
			for (int i = 0; i < opened; i++)
				if (path[i])
					ir_output_discard(&o[i]);
			return tool_input_error(&e);
		}
	}
	if ((path[OUT_MESH] || path[OUT_MEMORY] || (path[OUT_TRACE] && to->trace_detail)) &&
	    (!c || !g))
		abort(); /* these need the cluster and the graph */
	int bad = 0;
	for (int i = 0; i < NOUT && !bad; i++) {
		if (!path[i])
			continue;
		switch (i) {
		case OUT_PLAN: bad = ir_plan_fwrite(p, o[i].f, path[i], &e); break;
		case OUT_TRACE:
			bad = sim_trace_fwrite_detail(g, c, p, r, to->trace_detail, o[i].f, path[i],
						      &e);
			break;
		case OUT_TIMELINE:
			bad = sim_svg_write(SIM_SVG_TIMELINE, c, p, r, o[i].f, path[i], &e);
			break;
		case OUT_MESH: bad = sim_svg_write(SIM_SVG_MESH, c, p, r, o[i].f, path[i], &e); break;
		default: bad = sim_svg_write(SIM_SVG_MEMORY, c, p, r, o[i].f, path[i], &e); break;
		}
	}
	/* commit only when every file was written whole */
	for (int i = 0; i < NOUT; i++) {
		if (!path[i] || !o[i].f)
			continue;
		if (bad)
			ir_output_discard(&o[i]);
		else if (ir_output_commit(&o[i], &e))
			bad = 1;
	}
	if (bad)
		return tool_error(verb, EXIT_INFEASIBLE, "%s", ir_error_str(&e, (char[1024]){0}, 1024));
	return EXIT_OK;
}

int tool_trace_detail(const char *verb, const char *value, ToolOutputs *o)
{
	if (value && sim_trace_detail_parse(value, &o->trace_detail))
		return tool_error(verb, EXIT_BADINPUT, "--trace-detail is stage, layer or gpu, not '%s'",
				  value);
	if (value && !o->trace)
		return tool_error(verb, EXIT_BADINPUT, "--trace-detail goes with --trace FILE");
	return EXIT_OK;
}

/* Seconds between progress lines when stderr is not a terminal. */
static const double PROGRESS_EVERY_S = 5.0;

/* The phase being reported: its name, when it began, the last line. */
static struct {
	char what[64];
	double t0, last;
	int done;
	int tty; /* 0 unknown, 1 a terminal, 2 not */
	bool live; /* a terminal line is showing */
} prog;

void tool_progress(void *ctx, const char *what, int done, int total)
{
	(void)ctx;
	double now = ir_now_s();
	if (!prog.tty)
		prog.tty = isatty(2) ? 1 : 2;
	bool phase = strncmp(prog.what, what, sizeof prog.what - 1) || done < prog.done;
	if (phase) {
		snprintf(prog.what, sizeof prog.what, "%s", what);
		prog.t0 = now;
		prog.last = -INFINITY;
	}
	prog.done = done;
	double el = now - prog.t0;
	char eta[64] = "";
	if (total > 0 && done > 0 && done < total)
		snprintf(eta, sizeof eta, ", ETA %.0f s", el / done * (total - done));
	char count[32];
	if (total > 0)
		snprintf(count, sizeof count, "%d/%d", done, total);
	else
		snprintf(count, sizeof count, "%d", done);
	if (prog.tty == 1) {
		fprintf(stderr, "\r\033[K  %s %s, %.0f s%s ", what, count, el, eta);
		prog.live = !(total > 0 && done == total);
		if (!prog.live)
			fputs("\r\033[K", stderr);
	} else if (phase || now - prog.last >= PROGRESS_EVERY_S) {
		fprintf(stderr, "meshplan: %s %s, %.1f s%s\n", what, count, el, eta);
		prog.last = now;
	}
	fflush(stderr);
}

void tool_progress_end(void)
{
	if (prog.live)
		fputs("\r\033[K", stderr);
	prog.live = false;
	fflush(stderr);
}

const char *tool_duration(double s, char *buf, size_t n)
{
	if (!isfinite(s))
		snprintf(buf, n, "unknown");
	else if (s < 120)
		snprintf(buf, n, "%.3g s", s);
	else if (s < 7200)
		snprintf(buf, n, "%.3g min", s / 60);
	else if (s < 3 * 86400)
		snprintf(buf, n, "%.3g h", s / 3600);
	else
		snprintf(buf, n, "%.4g days", s / 86400);
	return buf;
}
