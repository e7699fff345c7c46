/*
 * sweep_front.c -- what a sweep's lines summarise to: the Pareto front of
 * cost against days (a point is on it when no other point is at most as
 * long and at most as dear, and one of the two strictly), as a table and
 * as a standalone SVG scatter plot (log-scaled axes when the figures span
 * more than a decade).
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tools/sweep.h"

static int by_days(const void *a, const void *b)
{
	const SweepPoint *x = a, *y = b;
	if (x->days != y->days)
		return x->days < y->days ? -1 : 1;
	if (x->cost != y->cost)
		return x->cost < y->cost ? -1 : 1;
	return x->point - y->point;
}

static double num(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static void label(json_t *o, SweepPoint *p)
{
	const char *set = json_string_value(json_object_get(o, "set"));
	snprintf(p->label, sizeof p->label, "%s%s%s %s x%lld b%lld %.3g tokens",
		 json_string_value(json_object_get(o, "model")), set ? " " : "", set ? set : "",
		 json_string_value(json_object_get(o, "cluster")),
		 (long long)json_integer_value(json_object_get(o, "nodes")),
		 (long long)json_integer_value(json_object_get(o, "batch")),
		 num(o, "tokens"));
}

int sweep_front(const Sweep *w, SweepFront *f)
{
	memset(f, 0, sizeof *f);
	int cap = w->njobs * w->s.ntokens;
	f->p = calloc((size_t)(cap ? cap : 1), sizeof *f->p);
	if (!f->p)
		return -1;
	f->failures = w->s.failures;
	for (int j = 0; j < w->njobs; j++) {
		for (const char *l = w->result[j]; l && *l; l = strchr(l, '\n') + 1) {
			json_t *o = json_loadb(l, strcspn(l, "\n"), 0, NULL);
			f->npoints++;
			if (!o)
				continue;
			json_t *src = f->failures ? json_object_get(o, "failures") : o;
			SweepPoint *p = &f->p[f->nfit];
			p->point = (int)json_integer_value(json_object_get(o, "point"));
			p->days = num(src, "days");
			p->cost = num(src, "cost");
			const char *cur = json_string_value(json_object_get(o, "currency"));
			snprintf(p->currency, sizeof p->currency, "%s", cur ? cur : "");
			label(o, p);
			if (json_is_true(json_object_get(o, "fits")) && isfinite(p->days) &&
			    isfinite(p->cost) && f->nfit < cap)
				f->nfit++;
			json_decref(o);
		}
	}
	qsort(f->p, (size_t)f->nfit, sizeof *f->p, by_days);
	/* sorted by days then cost: a point is dominated iff an earlier one
	 * (no longer) is no dearer, and not its exact twin */
	double best = INFINITY, best_days = NAN;
	for (int i = 0; i < f->nfit; i++) {
		SweepPoint *p = &f->p[i];
		bool twin = p->cost == best && p->days == best_days;
		p->front = p->cost < best || twin;
		if (p->cost < best) {
			best = p->cost;
			best_days = p->days;
		}
	}
	return 0;
}

void sweep_front_free(SweepFront *f)
{
	free(f->p);
	memset(f, 0, sizeof *f);
}

void sweep_front_print(const SweepFront *f, FILE *out)
{
	int n = 0;
	for (int i = 0; i < f->nfit; i++)
		n += f->p[i].front;
	fprintf(out, "Pareto front of cost against days%s: %d of %d points (%d with a plan and a "
		"price)\n", f->failures ? " (under failures)" : "", n, f->npoints, f->nfit);
	fprintf(out, "  %6s %10s %14s  %s\n", "point", "days", "cost", "model cluster xnodes "
		"bbatch tokens");
	for (int i = 0; i < f->nfit; i++)
		if (f->p[i].front)
			fprintf(out, "  %6d %10.4g %14.6g %s  %s\n", f->p[i].point, f->p[i].days,
				f->p[i].cost, f->p[i].currency, f->p[i].label);
}

/* ------------------------------------------------------------------ */
/* SVG.                                                                 */

typedef struct Buf {
	char *s;
	size_t len, cap;
} Buf;

static void put(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(Buf *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = b->cap * 2 + (size_t)(n > 0 ? n : 0);
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			abort();
	}
}

/* Text with &, <, >, " escaped. */
static void put_text(Buf *b, const char *t)
{
	for (; *t; t++) {
		switch (*t) {
		case '&': put(b, "&amp;"); break;
		case '<': put(b, "&lt;"); break;
		case '>': put(b, "&gt;"); break;
		case '"': put(b, "&quot;"); break;
		default: put(b, "%c", *t);
		}
	}
}

/* An axis: linear, or log10 when the range spans more than a decade. */
typedef struct Axis {
	double lo, hi;
	bool log;
	double px0, px1; /* pixel positions of lo and hi */
} Axis;

static void axis_fit(Axis *a, double lo, double hi, double px0, double px1)
{
	a->log = lo > 0 && hi / lo > 10;
	if (a->log) {
		a->lo = pow(10, floor(log10(lo)));
		a->hi = pow(10, ceil(log10(hi)));
	} else {
		double span = hi - lo > 0 ? hi - lo : (hi > 0 ? hi : 1);
		a->lo = lo - 0.05 * span;
		a->hi = hi + 0.05 * span;
		if (a->lo < 0 && lo >= 0)
			a->lo = 0;
	}
	a->px0 = px0;
	a->px1 = px1;
}

static double axis_px(const Axis *a, double v)
{
	double t = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo))
			  : (v - a->lo) / (a->hi - a->lo);
	return a->px0 + t * (a->px1 - a->px0);
}

/* Tick values of a: decades (log) or 5 even steps. */
static int axis_ticks(const Axis *a, double *t, int max)
{
	int n = 0;
	if (a->log) {
		for (double v = a->lo; v <= a->hi * 1.0001 && n < max; v *= 10)
			t[n++] = v;
	} else {
		for (int i = 0; i <= 5 && n < max; i++)
			t[n++] = a->lo + (a->hi - a->lo) * i / 5;
	}
	return n;
}

char *sweep_front_svg(const SweepFront *f, const char *title)
{
	const double W = 720, H = 480, L = 90, R = 20, T = 40, B = 60;
	Buf b = {malloc(4096), 0, 4096};
	if (!b.s)
		abort();
	double dlo = INFINITY, dhi = -INFINITY, clo = INFINITY, chi = -INFINITY;
	for (int i = 0; i < f->nfit; i++) {
		dlo = fmin(dlo, f->p[i].days), dhi = fmax(dhi, f->p[i].days);
		clo = fmin(clo, f->p[i].cost), chi = fmax(chi, f->p[i].cost);
	}
	if (f->nfit == 0)
		dlo = clo = 0, dhi = chi = 1;
	Axis x, y;
	axis_fit(&x, dlo, dhi, L, W - R);
	axis_fit(&y, clo, chi, H - B, T);
	put(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
		"viewBox=\"0 0 %g %g\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
	put(&b, "<title>");
	put_text(&b, title);
	put(&b, ": cost against days</title>\n<rect width=\"100%%\" height=\"100%%\" "
		"fill=\"white\"/>\n<text x=\"%g\" y=\"24\" font-size=\"15\">", L);
	put_text(&b, title);
	put(&b, ": cost against days%s, Pareto front in red</text>\n",
	    f->failures ? " under failures" : "");
	/* axes and ticks */
	put(&b, "<g stroke=\"black\" fill=\"none\"><line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\"/>"
		"<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\"/></g>\n", L, H - B, W - R, H - B, L,
	    H - B, L, T);
	double t[16];
	int nt = axis_ticks(&x, t, 16);
	for (int i = 0; i < nt; i++) {
		double px = axis_px(&x, t[i]);
		put(&b, "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"black\"/>"
			"<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%.3g</text>\n", px, H - B,
		    px, H - B + 5, px, H - B + 18, t[i]);
	}
	nt = axis_ticks(&y, t, 16);
	for (int i = 0; i < nt; i++) {
		double py = axis_px(&y, t[i]);
		put(&b, "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"black\"/>"
			"<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n", L - 5, py, L,
		    py, L - 8, py + 4, t[i]);
	}
	put(&b, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">days%s</text>\n", (L + W - R) / 2,
	    H - 15, x.log ? " (log scale)" : "");
	put(&b, "<text transform=\"translate(20 %g) rotate(-90)\" text-anchor=\"middle\">cost "
		"(%s)%s</text>\n", (T + H - B) / 2, f->nfit ? f->p[0].currency : "",
	    y.log ? " (log scale)" : "");
	/* the front as a staircase, then every point */
	put(&b, "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.5\" points=\"");
	double prev_y = NAN;
	for (int i = 0; i < f->nfit; i++) {
		if (!f->p[i].front)
			continue;
		double px = axis_px(&x, f->p[i].days), py = axis_px(&y, f->p[i].cost);
		if (isfinite(prev_y))
			put(&b, "%.1f,%.1f ", px, prev_y);
		put(&b, "%.1f,%.1f ", px, py);
		prev_y = py;
	}
	put(&b, "\"/>\n");
	for (int i = 0; i < f->nfit; i++) {
		const SweepPoint *p = &f->p[i];
		put(&b, "<circle class=\"%s\" data-point=\"%d\" cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" "
			"fill=\"%s\"><title>point %d: ", p->front ? "front" : "dominated", p->point,
		    axis_px(&x, p->days), axis_px(&y, p->cost), p->front ? 5 : 3,
		    p->front ? "#d62728" : "#7f7f7f", p->point);
		put_text(&b, p->label);
		put(&b, ": %.4g days, %.6g %s</title></circle>\n", p->days, p->cost, p->currency);
	}
	put(&b, "</svg>\n");
	return b.s;
}
