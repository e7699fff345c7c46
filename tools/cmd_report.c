/*
 * cmd_report.c -- `meshplan report PLAN.xml -o report.html`: one
 * self-contained HTML file (no scripts, no external resources) with the
 * plan's simulated step, its stages, the three pictures inline (schedule,
 * meshes, memory) and the cost of a run as `meshplan estimate` prices it
 * with the cluster's defaults.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "runtime-sim/sim.h"
#include "tools/tools.h"

static const char *VERB = "report";

enum { O_OUTPUT, O_TOKENS, O_NODES, O_HELP, NOPT };

static const ToolOpt opts[NOPT] = {
	[O_OUTPUT] = {"output", 'o', TOOL_STR, "report.html", TOOL_ANY, false, 0,
		      "the HTML file to write (required)"},
	[O_TOKENS] = {"tokens", 0, TOOL_NUM, "T", TOOL_POS, false, 0,
		      "tokens of the whole run the cost is for (default: per 1e9 tokens)"},
	[O_NODES] = {"nodes", 0, TOOL_INT, "N", 1, false, IR_MAX_NODES, false, 0,
		     "node count (default: the plan's)"},
	[O_HELP] = {"help", 'h', TOOL_FLAG, NULL, TOOL_ANY, false, 0, "this text"},
};

static void usage(FILE *f)
{
	fputs("usage: meshplan report PLAN.xml -o report.html [--tokens T] [--nodes N]\n"
	      "\n"
	      "Simulates the plan and writes one HTML file that needs nothing else to be read\n"
	      "(no scripts, no network): the step (time, throughput, MFU, bubble, memory), the\n"
	      "stages, the pipeline schedule, the cluster with each stage's sub-mesh, the memory\n"
	      "of each stage by kind (as --svg-timeline, --svg-mesh and --svg-memory draw them),\n"
	      "and the cost, energy and CO2e of a run of T tokens priced as `meshplan estimate`\n"
	      "does with the cluster's defaults.\n\noptions:\n", f);
	tool_opts_help(f, opts, NOPT);
	fputs("\nExit: 0 written, 1 the plan does not fit the GPUs' memory (the report says so) or\n"
	      "a write failed, 2 bad input.\n", f);
}

/* Preformatted text escaped, newlines kept. */
static void esc_text(FILE *f, const char *s)
{
	for (const char *p = s; *p; p++) {
		if (*p == '\n')
			fputc('\n', f);
		else if (*p == '\t')
			fputs("        ", f);
		else
			sim_xml_escape(f, (char[2]){*p, 0});
	}
}

/* A table row: label and a printf-formatted value (escaped). */
static void row(FILE *f, const char *label, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void row(FILE *f, const char *label, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fputs("<tr><th>", f);
	sim_xml_escape(f, label);
	fputs("</th><td>", f);
	sim_xml_escape(f, buf);
	fputs("</td></tr>\n", f);
}

/* A picture inline: the SVG without its XML declaration. */
static int picture(FILE *f, SimSvg kind, const IrCluster *c, const IrPlan *p,
		   const SimResult *r)
{
	char *text = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&text, &n);
	if (!m)
		return -1;
	IrError e;
	int bad = sim_svg_write(kind, c, p, r, m, "(memory)", &e);
	if (fclose(m) || bad) {
		free(text);
		return -1;
	}
	const char *at = text;
	if (!strncmp(at, "<?xml", 5)) {
		const char *nl = strchr(at, '\n');
		at = nl ? nl + 1 : at + n;
	}
	fputs("<div class=\"picture\">\n", f);
	fwrite(at, 1, n - (size_t)(at - text), f);
	fputs("</div>\n", f);
	free(text);
	return 0;
}

static void cost_section(FILE *f, const IrCluster *c, const SimResult *r, double tokens,
			 bool given)
{
	fputs("<h2>Cost of a run</h2>\n", f);
	double tps = r->tokens_per_s * r->step_time_s;
	SimRunTime rt;
	IrError e;
	if (sim_run_time(r->step_time_s, r->ngpus, tps, tokens, &rt, &e)) {
		fputs("<p>", f);
		sim_xml_escape(f, e.msg);
		fputs("</p>\n", f);
		return;
	}
	SimCostModel m;
	tool_cost_model(c, &m);
	SimCost sc;
	sim_cost(&m, rt.gpu_hours, &sc);
	char a[64], b[64];
	fputs("<p>", f);
	if (given)
		fprintf(f, "A run of %s tokens", tool_si(tokens, a, sizeof a));
	else
		fputs("Per 10<sup>9</sup> tokens trained (<code>--tokens</code> sets the run)", f);
	fputs(" at the simulated step time, without failures, priced with the cluster's "
	      "defaults as <code>meshplan estimate</code> takes them.</p>\n", f);
	/* the columns of `meshplan compare --tokens` */
	fputs("<table>\n<tr><th>cluster</th><th>tokens/s</th><th>GPU-hours</th><th>days</th>"
	      "<th>cost</th><th>energy MWh</th></tr>\n<tr><td>", f);
	sim_xml_escape(f, c->name);
	if (isfinite(sc.cost))
		snprintf(b, sizeof b, "%.4g %s", sc.cost, m.currency);
	else
		snprintf(b, sizeof b, "unknown");
	fprintf(f, "</td><td class=\"n\">%.4g</td><td class=\"n\">%.4g</td><td class=\"n\">%.2f"
		   "</td><td class=\"n\">", r->tokens_per_s, sc.gpu_hours, rt.wall_s / 86400);
	sim_xml_escape(f, b);
	fprintf(f, "</td><td class=\"n\">%.4g</td></tr>\n</table>\n<p></p>\n<table>\n",
		sc.energy_kwh / 1000);
	row(f, "tokens per step", "%.0f", tps);
	row(f, "steps", "%.0f", rt.steps);
	row(f, "wall time", "%s", tool_duration(rt.wall_s, a, sizeof a));
	row(f, "GPU-hours", "%s", tool_si(sc.gpu_hours, a, sizeof a));
	if (isfinite(sc.cost))
		row(f, "cost", "%s %s (%g %s per GPU-hour)", tool_si(sc.cost, a, sizeof a),
		    m.currency, m.price_per_gpu_hour, m.currency);
	else
		row(f, "cost", "unknown: the cluster file gives no price");
	if (isfinite(sc.energy_kwh))
		row(f, "energy", "%sWh (%g W per GPU, PUE %g)",
		    tool_si(sc.energy_kwh * 1000, a, sizeof a), m.power_w, m.pue);
	else
		row(f, "energy", "unknown: no GPU power");
	if (isfinite(sc.co2e_t))
		row(f, "CO2e", "%.4g t (%g kg per kWh; %s tree-years)", sc.co2e_t,
		    m.carbon_kg_per_kwh, tool_si(sc.tree_years, b, sizeof b));
	else
		row(f, "CO2e", "unknown: the cluster file gives no carbon intensity");
	fputs("</table>\n", f);
}

static const char *STYLE =
	"body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:24px;color:#222;"
	"max-width:1200px}\n"
	"h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccc}\n"
	"table{border-collapse:collapse;font-size:13px}\n"
	"th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}\n"
	"td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
	".picture{overflow-x:auto;margin:8px 0}\n"
	".bad{color:#c00000;font-weight:bold}\n"
	".note{color:#555;font-size:13px}\n"
	"pre.explain{font-size:12px;background:#f7f7f7;padding:10px;overflow-x:auto}\n";

static void write_html(FILE *f, const char *path, const IrGraph *g, const IrCluster *c, const IrPlan *p,
		       const SimResult *r, double tokens, bool given, int *bad)
{
	const double GiB = 1073741824.0;
	char ov[64];
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>"
	      "meshplan report: ", f);
	sim_xml_escape(f, p->model);
	fputs(" on ", f);
	sim_xml_escape(f, c->name);
	fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>", STYLE);
	sim_xml_escape(f, p->model);
	fprintf(f, " on %d &times; ", c->nodes);
	sim_xml_escape(f, c->name);
	fprintf(f, " (%d GPUs)</h1>\n", r->ngpus);

	fputs("<h2>Summary</h2>\n<table>\n", f);
	row(f, "model", "%s", p->model);
	row(f, "cluster", "%s: %d node%s of %d %s", c->name, c->nodes, c->nodes == 1 ? "" : "s",
	    c->gpus_per_node, c->gpu.name ? c->gpu.name : "GPUs");
	row(f, "batch", "%lld samples = %d microbatch%s of %lld, %lld tokens per sample",
	    (long long)p->global_batch, p->nmicro, p->nmicro == 1 ? "" : "es",
	    (long long)p->microbatch, (long long)g->seq);
	row(f, "pipeline", "%d stage%s on %d rank%s, %s schedule%s", p->nstages,
	    p->nstages == 1 ? "" : "s", r->nranks, r->nranks == 1 ? "" : "s",
	    ir_schedule_name(p->schedule), p->chunks > 1 ? " (interleaved chunks)" : "");
	row(f, "recomputation", "%s", ir_recompute_name(p->recompute));
	row(f, "ZeRO stage", "%d as planned (per stage as its memory shows it: the stages table)",
	    p->zero);
	row(f, "overlap", "%s", ir_overlap_name(p->overlap, ov, sizeof ov));
	row(f, "step time", "%.4f s (pipeline %.4f s, bubble %.1f%%)", r->step_time_s,
	    r->tl.span_s, 100 * r->bubble_fraction);
	row(f, "throughput", "%.2f samples/s, %.0f tokens/s", r->samples_per_s, r->tokens_per_s);
	row(f, "TFLOPS per GPU", "%.1f model (MFU %.1f%%), %.1f hardware (HFU %.1f%%)",
	    r->tflops_per_gpu, 100 * r->mfu, r->hw_tflops_per_gpu, 100 * r->hfu);
	row(f, "peak memory", "%.2f GiB of %.2f on rank %d: %s", r->peak_memory_bytes / GiB,
	    c->gpu.mem_bytes / GiB, r->peak_rank, r->fits ? "fits" : "DOES NOT FIT");
	fputs("</table>\n", f);

	fputs("<h2>Stages</h2>\n<table>\n<tr><th>stage</th><th>layers</th><th>rank</th>"
	      "<th>sub-mesh</th><th>logical</th><th>ZeRO</th><th>forward ms</th>"
	      "<th>backward ms</th><th>sync+opt ms</th><th>send ms</th>"
	      "<th>weights+grads+optimizer GiB</th>"
	      "<th>activations GiB per microbatch</th></tr>\n", f);
	for (int i = 0; i < r->nstages; i++) {
		const IrStagePlan *s = &p->stages[i];
		const SimStageCost *sc = &r->stage[i];
		char layers[64], mesh[32], lg[16];
		tool_stage_labels(g, s, layers, mesh, lg);
		fprintf(f, "<tr><td class=\"n\">%d</td><td>", i);
		sim_xml_escape(f, layers);
		fprintf(f, "</td><td class=\"n\">%d</td><td>%s</td><td>%s</td><td class=\"n\">%d</td>"
			   "<td class=\"n\">%.3f</td><td class=\"n\">%.3f</td><td class=\"n\">%.3f</td>"
			   "<td class=\"n\">%.3f</td><td class=\"n\">%.2f</td><td class=\"n\">%.3f</td>"
			   "</tr>\n", i % r->nranks, mesh, lg, tool_stage_zero(g, s, &sc->mem),
			sc->fwd_s * 1e3, sc->bwd_s * 1e3,
			sc->step_s * 1e3, r->xfer_s[i] * 1e3,
			(sc->mem.weight_bytes + sc->mem.grad_bytes + sc->mem.opt_bytes) / GiB,
			sc->mem.act_bytes / GiB);
	}
	fputs("</table>\n<p class=\"note\">sync+opt: once per step, the gradient reduction and "
	      "the optimizer; send: the activations to the next stage.</p>\n", f);

	/* why this plan: `meshplan explain`'s text */
	fputs("<h2 id=\"explain\">Why this plan</h2>\n<p class=\"note\">As <code>meshplan "
	      "explain</code> gives it: each stage's parallelism in words, each op's sharding, "
	      "and the alternatives the search weighed.</p>\n<pre class=\"explain\">", f);
	char *text = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&text, &n);
	if (m) {
		tool_explain_print(m, g, c, p, r, -1, NULL);
		if (fclose(m) == 0)
			esc_text(f, text);
		else
			*bad = 1;
		free(text);
	} else {
		*bad = 1;
	}
	fputs("</pre>\n", f);

	fputs("<h2>Pipeline schedule</h2>\n<p class=\"note\">One row per pipeline rank; "
	      "grey is idle time (the bubble).  Hover an element for its times.</p>\n", f);
	*bad |= picture(f, SIM_SVG_TIMELINE, c, p, r);
	fputs("<h2>Cluster and stage meshes</h2>\n", f);
	*bad |= picture(f, SIM_SVG_MESH, c, p, r);
	fputs("<h2>Memory per GPU</h2>\n", f);
	*bad |= picture(f, SIM_SVG_MEMORY, c, p, r);
	cost_section(f, c, r, tokens, given);
	fputs("<p class=\"note\">Written by <code>meshplan report</code> from ", f);
	sim_xml_escape(f, path);
	fputs("; the figures are the simulator's (docs/simulator.md).</p>\n</body>\n</html>\n",
	      f);
}

int cmd_report(int argc, char **argv)
{
	ToolVal v[NOPT];
	const char *pos[1];
	int npos;
	ToolCmdLine cl = {.verb = VERB, .opts = opts, .nopts = NOPT, .maxpos = 1, .usage = usage};
	int code;
	if (tool_opts_done(&cl, argc, argv, v, pos, &npos, &code))
		return code;
	if (!npos || !v[O_OUTPUT].set) {
		tool_error(VERB, EXIT_BADINPUT, "needs PLAN.xml and -o report.html");
		usage(stderr);
		return EXIT_BADINPUT;
	}
	IrError e;
	IrPlan p;
	IrCluster c;
	IrGraph g;
	SimResult r;
	if (tool_plan_simulate(pos[0], (int)v[O_NODES].num, &p, &c, &g, &r, &e))
		return tool_input_error(&e);
	IrOutput o;
	if (ir_output_open(&o, v[O_OUTPUT].str, &e)) {
		code = tool_input_error(&e);
	} else {
		int bad = 0;
		write_html(o.f, pos[0], &g, &c, &p, &r, v[O_TOKENS].set ? v[O_TOKENS].num : 1e9,
			   v[O_TOKENS].set, &bad);
		if (bad) {
			ir_output_discard(&o);
			code = tool_error(VERB, EXIT_INFEASIBLE, "%s: cannot draw the pictures",
					  v[O_OUTPUT].str);
		} else if (ir_output_commit(&o, &e)) {
			code = tool_error(VERB, EXIT_INFEASIBLE, "%s",
					  ir_error_str(&e, (char[1024]){0}, 1024));
		} else {
			code = r.fits ? EXIT_OK : EXIT_INFEASIBLE;
		}
	}
	sim_result_free(&r);
	ir_graph_free(&g);
	ir_cluster_free(&c);
	ir_plan_free(&p);
	return code;
}
