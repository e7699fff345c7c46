/*
 * svg.c -- pictures of a plan as standalone SVG 1.1 (no scripts, no
 * external fonts or styles): the pipeline schedule of a simulated step,
 * the cluster's GPUs with each stage's sub-mesh and logical view, and the
 * memory of each pipeline rank by kind.
 *
 * Reads: the plan, its cluster and a SimResult.  Writes: SVG text to an
 * open file; the caller checks the stream (ir_output_commit does).
 * Elements carry a class naming what they show (fwd, bwd, comm, p2p,
 * sync, update, idle; rank rows are <g class="rank">), so a reader can
 * measure the picture; hovering an element shows its <title>.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "runtime-sim/sim.h"

/* Colours: forward, backward, collectives, p2p, step sync, update, idle. */
#define C_FWD "#4c78a8"
#define C_BWD "#f58518"
#define C_COMM "#e45756"
#define C_P2P "#b279a2"
#define C_SYNC "#9d755d"
#define C_UPDATE "#54a24b"
#define C_IDLE "#eeeeee"

/* Per pipeline rank in the mesh and memory pictures. */
static const char *const rank_colour[] = {"#4c78a8", "#f58518", "#54a24b", "#e45756",
					  "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6",
					  "#9d755d", "#bab0ac"};
enum { NRANK_COLOURS = sizeof rank_colour / sizeof rank_colour[0] };

static const char *FONT = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\"";

void sim_xml_escape(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		switch (ch) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		default:
			if (ch >= 0x20 && ch != 0x7f)
				fputc(ch, f);
		}
	}
}

static void header(FILE *f, double w, double h, const char *title)
{
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" "
		   "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" %s font-size=\"12\">\n<title>",
		w, h, w, h, FONT);
	sim_xml_escape(f, title);
	fprintf(f, "</title>\n<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" "
		   "fill=\"#ffffff\"/>\n", w, h);
}

static void text(FILE *f, double x, double y, const char *anchor, const char *extra,
		 const char *s)
{
	fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"%s\"%s%s>", x, y, anchor,
		extra ? " " : "", extra ? extra : "");
	sim_xml_escape(f, s);
	fputs("</text>\n", f);
}

/* A rectangle of class cls with a tooltip (NULL: none). */
static void rect(FILE *f, const char *cls, double x, double y, double w, double h,
		 const char *fill, const char *tip)
{
	fprintf(f, "<rect class=\"%s\" x=\"%.9g\" y=\"%.2f\" width=\"%.9g\" height=\"%.2f\" "
		   "fill=\"%s\"", cls, x, y, w, h, fill);
	/* tasks wide enough get a white edge, so neighbours stay apart */
	if ((!strcmp(cls, "fwd") || !strcmp(cls, "bwd")) && w >= 3)
		fputs(" stroke=\"#ffffff\" stroke-width=\"0.6\"", f);
	if (tip) {
		fputs("><title>", f);
		sim_xml_escape(f, tip);
		fputs("</title></rect>\n", f);
	} else {
		fputs("/>\n", f);
	}
}

static void legend_item(FILE *f, double x, double y, const char *fill, const char *label)
{
	fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\" "
		   "stroke=\"#888888\" stroke-width=\"0.5\"/>\n", x, y - 10, fill);
	text(f, x + 16, y, "start", NULL, label);
}

/* A round step of about span/6: 1, 2 or 5 times a power of ten. */
static double tick_step(double span)
{
	if (!(span > 0))
		return 1;
	double raw = span / 6, p = pow(10, floor(log10(raw))), m = raw / p;
	return p * (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10);
}

/* ------------------------------------------------------------------ */
/* The pipeline schedule                                                */

enum { TL_LEFT = 150, TL_PLOT = 900, TL_TOP = 78, TL_ROW = 34, TL_COMPUTE = 20, TL_COMM = 7 };

void sim_svg_timeline(FILE *f, const IrPlan *p, const SimResult *r)
{
	int P = r->nranks;
	const SimTimeline *tl = &r->tl;
	/* the step: the pipeline, then each rank's sync and update */
	double T = tl->span_s;
	for (int k = 0; k < P; k++) {
		double end = fmax(tl->rank_end[k], r->rank_sync_end[k]) + r->rank_step_s[k];
		if (end > T)
			T = end;
	}
	if (!(T > 0))
		T = 1;
	double sx = TL_PLOT / T, W = TL_LEFT + TL_PLOT + 30, H = TL_TOP + P * TL_ROW + 50;
	char buf[256];
	/* tooltips on every task only while the file stays small */
	bool tips = tl->ntasks <= SIM_SVG_MAX_TIPS;
	/* the axis in ms, or in s for steps of 2 s and more */
	double unit = T >= 2 ? 1 : 1e-3;
	const char *uname = T >= 2 ? "s" : "ms";
	snprintf(buf, sizeof buf, "%s pipeline, %d rank%s, %d microbatch%s%s: step %.4g %s, "
		 "bubble %.1f%%", ir_schedule_name(p->schedule), P, P == 1 ? "" : "s", p->nmicro,
		 p->nmicro == 1 ? "" : "es", p->chunks > 1 ? " (interleaved chunks)" : "",
		 T / unit, uname, 100 * tl->bubble_fraction);
	header(f, W, H, buf);
	text(f, 10, 20, "start", "font-size=\"14\" font-weight=\"bold\"", buf);
	double lx = 10;
	static const struct {
		const char *fill, *label;
	} leg[] = {{C_FWD, "forward"}, {C_BWD, "backward"}, {C_COMM, "collectives (in a task)"},
		   {C_P2P, "send to next stage"}, {C_SYNC, "gradient sync"},
		   {C_UPDATE, "optimizer step"}, {C_IDLE, "idle (bubble)"}};
	for (size_t i = 0; i < sizeof leg / sizeof leg[0]; i++) {
		legend_item(f, lx, 44, leg[i].fill, leg[i].label);
		lx += 28 + 6.5 * (double)strlen(leg[i].label);
	}
	/* time axis with gridlines */
	double step = tick_step(T / unit), y0 = TL_TOP, y1 = TL_TOP + P * TL_ROW;
	fputs("<g class=\"axis\">\n", f);
	for (int i = 0; i * step <= T / unit * (1 + 1e-9); i++) {
		double x = TL_LEFT + i * step * unit * sx;
		fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#dddddd\"/>\n",
			x, y0 - 4, x, y1 + 4);
		snprintf(buf, sizeof buf, "%g", i * step);
		text(f, x, y1 + 18, "middle", NULL, buf);
	}
	snprintf(buf, sizeof buf, "time (%s)", uname);
	text(f, TL_LEFT + TL_PLOT / 2, y1 + 36, "middle", NULL, buf);
	text(f, TL_LEFT + TL_PLOT, y1 + 36, "end", "font-size=\"9\" fill=\"#666666\"",
	     "numbers in tasks: the microbatch");
	fputs("</g>\n", f);
	/* rows: the idle background over the pipeline phase, then the work */
	for (int k = 0; k < P; k++) {
		double y = TL_TOP + k * TL_ROW;
		fprintf(f, "<g class=\"rank\" id=\"rank-%d\">\n", k);
		double busy = tl->rank_busy[k];
		snprintf(buf, sizeof buf, "rank %d", k);
		text(f, TL_LEFT - 8, y + 14, "end", NULL, buf);
		snprintf(buf, sizeof buf, "idle %.1f%%",
			 tl->span_s > 0 ? 100 * (tl->span_s - busy) / tl->span_s : 0.0);
		text(f, TL_LEFT - 8, y + 27, "end", "font-size=\"9\" fill=\"#666666\"", buf);
		snprintf(buf, sizeof buf, "rank %d idle in the pipeline: %.4g of %.4g ms", k,
			 (tl->span_s - busy) * 1e3, tl->span_s * 1e3);
		rect(f, "idle", TL_LEFT, y, tl->span_s * sx, TL_COMPUTE, C_IDLE, buf);
		for (int i = 0; i < tl->ntasks; i++) {
			const SimTask *t = &tl->task[i];
			if (t->rank != k)
				continue;
			snprintf(buf, sizeof buf, "%s stage %d microbatch %d: %.4g..%.4g ms",
				 t->backward ? "backward" : "forward", t->stage, t->micro,
				 t->start * 1e3, t->end * 1e3);
			rect(f, t->backward ? "bwd" : "fwd", TL_LEFT + t->start * sx, y,
			     (t->end - t->start) * sx, TL_COMPUTE, t->backward ? C_BWD : C_FWD,
			     tips ? buf : NULL);
			if ((t->end - t->start) * sx >= 16) {
				/* the microbatch, inside the task */
				snprintf(buf, sizeof buf, "%d", t->micro);
				text(f, TL_LEFT + (t->start + t->end) / 2 * sx, y + 14, "middle",
				     "font-size=\"9\" fill=\"#ffffff\"", buf);
			}
			if (t->comm_s > 0) {
				snprintf(buf, sizeof buf, "collectives of %s stage %d microbatch %d: "
					 "%.4g ms", t->backward ? "backward" : "forward", t->stage,
					 t->micro, t->comm_s * 1e3);
				rect(f, "comm", TL_LEFT + (t->end - t->comm_s) * sx,
				     y + TL_COMPUTE + 1, t->comm_s * sx, TL_COMM, C_COMM,
				     tips ? buf : NULL);
			}
		}
		/* sends whose sender is this rank */
		for (int i = 0; i < tl->ntasks; i++) {
			const SimTask *t = &tl->task[i];
			if (t->recv_s <= 0)
				continue;
			int from = t->backward ? t->stage + 1 : t->stage - 1;
			if (from % P != k)
				continue;
			snprintf(buf, sizeof buf, "send %s stage %d to %d, microbatch %d: %.4g ms",
				 t->backward ? "gradient" : "activation", from, t->stage, t->micro,
				 t->recv_s * 1e3);
			rect(f, "p2p", TL_LEFT + (t->start - t->recv_s) * sx, y + TL_COMPUTE + 1,
			     t->recv_s * sx, TL_COMM, C_P2P, tips ? buf : NULL);
		}
		/* after the pipeline: bucketed reductions, per-step sync, update */
		bool bucketed = p->overlap & IR_OVERLAP_GRAD_REDUCE;
		double at = tl->rank_end[k], comm = 0;
		for (int i = k; i < r->nstages; i += P)
			comm += r->stage[i].step_comm_s - (bucketed ? r->stage[i].grad_sync_s : 0);
		if (r->rank_sync_end[k] > r->rank_sync_start[k]) {
			snprintf(buf, sizeof buf, "gradient reduction in buckets: %.4g..%.4g ms",
				 r->rank_sync_start[k] * 1e3, r->rank_sync_end[k] * 1e3);
			rect(f, "sync", TL_LEFT + r->rank_sync_start[k] * sx, y + TL_COMPUTE + 1,
			     (r->rank_sync_end[k] - r->rank_sync_start[k]) * sx, TL_COMM, C_SYNC, buf);
			at = fmax(at, r->rank_sync_end[k]);
		}
		double total = r->rank_step_s[k];
		if (comm < 1e-15)
			comm = 0;
		if (comm > total)
			comm = total;
		if (comm > 0) {
			snprintf(buf, sizeof buf, "%s: %.4g ms",
				 bucketed ? "parameter sync" : "gradient sync", comm * 1e3);
			rect(f, "sync", TL_LEFT + at * sx, y, comm * sx, TL_COMPUTE, C_SYNC, buf);
		}
		if (total - comm > 0) {
			snprintf(buf, sizeof buf, "optimizer step: %.4g ms", (total - comm) * 1e3);
			rect(f, "update", TL_LEFT + (at + comm) * sx, y, (total - comm) * sx,
			     TL_COMPUTE, C_UPDATE, buf);
		}
		fputs("</g>\n", f);
	}
	fputs("</svg>\n", f);
}

/* ------------------------------------------------------------------ */
/* The cluster and the stage meshes                                     */

/* The pipeline rank whose mesh holds GPU g of node n, -1 if none. */
static int owner(const IrPlan *p, int P, int n, int g)
{
	for (int k = 0; k < P && k < p->nstages; k++) {
		const IrMesh *m = &p->stages[k].mesh;
		if (n >= m->node0 && n < m->node0 + m->nnodes && g >= m->gpu0 &&
		    g < m->gpu0 + m->ngpus)
			return k;
	}
	return -1;
}

/* "stages 0, 4" of rank k into buf. */
static void rank_stages(const IrPlan *p, int P, int k, char *buf, size_t n)
{
	size_t at = (size_t)snprintf(buf, n, "stage%s", p->nstages > P ? "s" : "");
	for (int i = k; i < p->nstages && at < n; i += P)
		at += (size_t)snprintf(buf + at, n - at, "%s%d", i == k ? " " : ", ", i);
}

void sim_svg_mesh(FILE *f, const IrCluster *c, const IrPlan *p)
{
	int v = p->chunks < 1 ? 1 : p->chunks, P = p->nstages / v;
	int N = c->nodes, M = c->gpus_per_node;
	double cell = M <= 8 ? 26 : M <= 16 ? 16 : 8, gap = 2, pad = 8;
	double nodew = M * (cell + gap) - gap + 2 * pad, nodeh = cell + 2 * pad + 14;
	int per_row = (int)fmax(1, floor(980 / (nodew + 12)));
	int rows = (N + per_row - 1) / per_row;
	double top = 60, cl_h = rows * (nodeh + 12);
	/* logical views: one box per rank, up to 16x16 cells drawn */
	double lcell = 22, ltop = top + cl_h + 40, lx = 10, ly = ltop, lrow_h = 0;
	double lw[1024], lh[1024];
	int shown = P < 1024 ? P : 1024;
	for (int k = 0; k < shown; k++) {
		const IrStagePlan *s = &p->stages[k];
		bool cells = s->n0 <= 16 && s->n1 <= 16;
		lw[k] = cells ? fmax(s->n1 * lcell + 60, 210) : 210;
		lh[k] = (cells ? s->n0 * lcell : 30) + 64;
	}
	for (int k = 0; k < shown; k++) {
		if (lx + lw[k] > 1000 && lx > 10) {
			lx = 10;
			ly += lrow_h + 12;
			lrow_h = 0;
		}
		lx += lw[k] + 12;
		lrow_h = fmax(lrow_h, lh[k]);
	}
	double W = fmax(1000, per_row * (nodew + 12) + 20), H = ly + lrow_h + 20;
	char buf[256], st[128];
	snprintf(buf, sizeof buf, "%s: %d node%s x %d %s; %d pipeline rank%s", c->name, N,
		 N == 1 ? "" : "s", M, c->gpu.name ? c->gpu.name : "GPU", P, P == 1 ? "" : "s");
	header(f, W, H, buf);
	text(f, 10, 20, "start", "font-size=\"14\" font-weight=\"bold\"", buf);
	text(f, 10, 44, "start", "fill=\"#444444\"",
	     "Each GPU is coloured by the pipeline rank whose sub-mesh holds it.");
	fputs("<g class=\"cluster\">\n", f);
	for (int n = 0; n < N; n++) {
		double x = 10 + (n % per_row) * (nodew + 12), y = top + (n / per_row) * (nodeh + 12);
		fprintf(f, "<g class=\"node\" id=\"node-%d\">\n", n);
		fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" rx=\"4\" "
			   "fill=\"#f7f7f7\" stroke=\"#999999\"/>\n", x, y, nodew, nodeh);
		snprintf(buf, sizeof buf, "node %d", n);
		text(f, x + pad, y + 12, "start", "font-size=\"10\"", buf);
		for (int g = 0; g < M; g++) {
			int k = owner(p, P, n, g);
			double gx = x + pad + g * (cell + gap), gy = y + 16;
			if (k >= 0) {
				rank_stages(p, P, k, st, sizeof st);
				snprintf(buf, sizeof buf, "n%dg%d: rank %d (%s)", n, g, k, st);
			} else {
				snprintf(buf, sizeof buf, "n%dg%d: unused", n, g);
			}
			rect(f, k >= 0 ? "gpu" : "gpu unused", gx, gy, cell, cell,
			     k >= 0 ? rank_colour[k % NRANK_COLOURS] : "#ffffff", buf);
			if (k >= 0 && cell >= 20) {
				snprintf(buf, sizeof buf, "%d", k);
				text(f, gx + cell / 2, gy + cell / 2 + 4, "middle",
				     "font-size=\"11\" fill=\"#ffffff\"", buf);
			}
		}
		fputs("</g>\n", f);
	}
	fputs("</g>\n", f);
	text(f, 10, ltop - 14, "start", "font-size=\"13\" font-weight=\"bold\"",
	     "Logical view of each rank's sub-mesh (row-major over its nodes, then GPUs)");
	lx = 10;
	ly = ltop;
	lrow_h = 0;
	for (int k = 0; k < shown; k++) {
		const IrStagePlan *s = &p->stages[k];
		if (lx + lw[k] > 1000 && lx > 10) {
			lx = 10;
			ly += lrow_h + 12;
			lrow_h = 0;
		}
		IrLogicalMesh lm;
		IrError e;
		bool have = ir_logical_mesh(c, &s->mesh, s->n0, s->n1, &lm, &e) == 0;
		fprintf(f, "<g class=\"logical\" id=\"logical-%d\">\n", k);
		fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" rx=\"4\" "
			   "fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n", lx, ly, lw[k], lh[k],
			rank_colour[k % NRANK_COLOURS]);
		rank_stages(p, P, k, st, sizeof st);
		snprintf(buf, sizeof buf, "rank %d: %dx%d (%s)", k, s->n0, s->n1, st);
		text(f, lx + 6, ly + 14, "start", "font-weight=\"bold\"", buf);
		snprintf(buf, sizeof buf, "axis 0 (rows): %d over %s", s->n0,
			 have && lm.crosses_nodes[0] ? "the network" : "NVLink");
		text(f, lx + 6, ly + 28, "start", "font-size=\"9\" fill=\"#444444\"", buf);
		snprintf(buf, sizeof buf, "axis 1 (columns): %d over %s", s->n1,
			 have && lm.crosses_nodes[1] ? "the network" : "NVLink");
		text(f, lx + 6, ly + 40, "start", "font-size=\"9\" fill=\"#444444\"", buf);
		if (s->n0 <= 16 && s->n1 <= 16) {
			for (int i = 0; i < s->n0; i++)
				for (int j = 0; j < s->n1; j++) {
					int d = i * s->n1 + j, mg = s->mesh.ngpus > 0 ? s->mesh.ngpus : 1;
					int n = s->mesh.node0 + d / mg, g = s->mesh.gpu0 + d % mg;
					double cx = lx + 40 + j * lcell, cy = ly + 50 + i * lcell;
					snprintf(buf, sizeof buf, "(%d,%d) = n%dg%d", i, j, n, g);
					rect(f, "device", cx, cy, lcell - 2, lcell - 2,
					     rank_colour[k % NRANK_COLOURS], buf);
					if (s->n0 * s->n1 <= 16) {
						snprintf(buf, sizeof buf, "n%dg%d", n, g);
						text(f, cx + (lcell - 2) / 2, cy + 14, "middle",
						     "font-size=\"6\" fill=\"#ffffff\"", buf);
					}
				}
			snprintf(buf, sizeof buf, "%d", s->n0);
			text(f, lx + 30, ly + 50 + s->n0 * lcell / 2 + 4, "end", "font-size=\"9\"",
			     buf);
		} else {
			snprintf(buf, sizeof buf, "%d x %d devices", s->n0, s->n1);
			text(f, lx + 6, ly + 62, "start", NULL, buf);
		}
		fputs("</g>\n", f);
		lx += lw[k] + 12;
		lrow_h = fmax(lrow_h, lh[k]);
	}
	fputs("</svg>\n", f);
}

/* "12.3 GiB", "45.6 MiB" or "789 KiB" into buf. */
static const char *bytes_str(double b, char *buf, size_t n)
{
	if (b >= 1073741824.0 * 0.95)
		snprintf(buf, n, "%.2f GiB", b / 1073741824.0);
	else if (b >= 1048576.0 * 0.95)
		snprintf(buf, n, "%.1f MiB", b / 1048576.0);
	else
		snprintf(buf, n, "%.0f KiB", b / 1024.0);
	return buf;
}

/* ------------------------------------------------------------------ */
/* Memory per rank                                                      */

enum { MEM_LEFT = 150, MEM_PLOT = 700, MEM_TOP = 70, MEM_ROW = 30, MEM_BAR = 20 };

void sim_svg_memory(FILE *f, const IrCluster *c, const IrPlan *p, const SimResult *r)
{
	const double GiB = 1073741824.0;
	int P = r->nranks;
	double cap = c->gpu.mem_bytes, top = cap;
	for (int k = 0; k < P; k++)
		top = fmax(top, r->rank_mem[k]);
	if (!(top > 0))
		top = 1;
	top *= 1.08;
	double sx = MEM_PLOT / top, W = MEM_LEFT + MEM_PLOT + 170, H = MEM_TOP + P * MEM_ROW + 60;
	char buf[256];
	char pk[32];
	snprintf(buf, sizeof buf, "Memory per GPU of each pipeline rank (peak %s of %.2f GiB; "
		 "recompute %s, zero %d)", bytes_str(r->peak_memory_bytes, pk, sizeof pk), cap / GiB,
		 ir_recompute_name(p->recompute), p->zero);
	header(f, W, H, buf);
	text(f, 10, 20, "start", "font-size=\"14\" font-weight=\"bold\"", buf);
	static const struct {
		const char *cls, *fill, *label;
	} kind[] = {{"weights", C_FWD, "weights"}, {"gradients", C_BWD, "gradients"},
		    {"optimizer", C_UPDATE, "optimizer state"},
		    {"activations", C_COMM, "activations (peak, in flight)"}};
	double lx = 10;
	for (size_t i = 0; i < 4; i++) {
		legend_item(f, lx, 44, kind[i].fill, kind[i].label);
		lx += 28 + 6.5 * (double)strlen(kind[i].label);
	}
	double y1 = MEM_TOP + P * MEM_ROW;
	double step = tick_step(top / GiB);
	fputs("<g class=\"axis\">\n", f);
	for (int i = 0; i * step <= top / GiB; i++) {
		double x = MEM_LEFT + i * step * GiB * sx;
		fprintf(f, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#dddddd\"/>\n",
			x, MEM_TOP - 4, x, y1);
		snprintf(buf, sizeof buf, "%g", i * step);
		text(f, x, y1 + 16, "middle", NULL, buf);
	}
	text(f, MEM_LEFT + MEM_PLOT / 2, y1 + 34, "middle", NULL, "GiB per GPU");
	fputs("</g>\n", f);
	for (int k = 0; k < P; k++) {
		double y = MEM_TOP + k * MEM_ROW, x = MEM_LEFT;
		fprintf(f, "<g class=\"rank\" id=\"mem-rank-%d\">\n", k);
		char st[128];
		rank_stages(p, P, k, st, sizeof st);
		snprintf(buf, sizeof buf, "rank %d", k);
		text(f, MEM_LEFT - 8, y + 11, "end", NULL, buf);
		text(f, MEM_LEFT - 8, y + 22, "end", "font-size=\"9\" fill=\"#666666\"", st);
		double v[4] = {r->rank_weight[k], r->rank_grad[k], r->rank_opt[k], r->tl.rank_act[k]};
		for (int i = 0; i < 4; i++) {
			if (!(v[i] > 0))
				continue;
			char mb[32];
			snprintf(buf, sizeof buf, "rank %d %s: %s", k, kind[i].label,
				 bytes_str(v[i], mb, sizeof mb));
			rect(f, kind[i].cls, x, y, v[i] * sx, MEM_BAR, kind[i].fill, buf);
			x += v[i] * sx;
		}
		char mb[32];
		snprintf(buf, sizeof buf, "%s%s", bytes_str(r->rank_mem[k], mb, sizeof mb),
			 r->rank_mem[k] > cap ? " (does not fit)" : "");
		text(f, x + 6, y + 14, "start", r->rank_mem[k] > cap ? "fill=\"#c00000\"" : NULL,
		     buf);
		fputs("</g>\n", f);
	}
	double cx = MEM_LEFT + cap * sx;
	fprintf(f, "<line class=\"capacity\" x1=\"%.9g\" y1=\"%d\" x2=\"%.9g\" y2=\"%.2f\" "
		   "stroke=\"#000000\" stroke-width=\"2\" stroke-dasharray=\"6,3\"/>\n",
		cx, MEM_TOP - 8, cx, y1 + 2);
	snprintf(buf, sizeof buf, "GPU memory %.0f GiB", cap / GiB);
	text(f, cx, MEM_TOP - 12, "middle", "font-size=\"10\"", buf);
	fputs("</svg>\n", f);
}

/* ------------------------------------------------------------------ */

int sim_svg_write(SimSvg kind, const IrCluster *c, const IrPlan *p, const SimResult *r,
		  FILE *f, const char *path, IrError *e)
{
	switch (kind) {
	case SIM_SVG_TIMELINE: sim_svg_timeline(f, p, r); break;
	case SIM_SVG_MESH: sim_svg_mesh(f, c, p); break;
	case SIM_SVG_MEMORY: sim_svg_memory(f, c, p, r); break;
	}
	if (fflush(f) != 0 || ferror(f))
		return ir_fail(e, path, 0, "cannot write the picture");
	return 0;
}
