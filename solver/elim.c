/*
 * elim.c -- min-sum variable elimination (see elim.h).
 *
 * Tables see their variables through projections: a pairwise cost that
 * depends on x_a only through which of a few classes x_a falls in (equal
 * rows of the cost matrix) is stored over the classes.  Eliminating v
 * sums the live tables that hold v and minimises over x_v for every
 * combination of its neighbours' joint classes (the classes all those
 * tables together tell apart), keeping the minimising x_v; the new table
 * is over those joint classes.  So the work follows the number of
 * distinct behaviours of a neighbour, not its number of values.
 *
 * Before that, dominated values go: s of v when another live value t is
 * no worse against every table (the lower index stays when both are
 * equal everywhere), repeated until nothing changes; some minimum keeps
 * only live values.  The order is greedy: next the variable whose
 * elimination makes the smallest table (ties: the lowest index).  Which
 * tables an elimination sums and which classes its new table has depend
 * on the projections only, so the whole order and the work it takes are
 * planned before any value is summed: a problem over the work bound is
 * refused at the cost of its planning.  The assignment is read back in
 * reverse order.
 */
#include "solver/elim.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	int var, n; /* variable, classes */
	int *map;   /* value -> class */
} Proj;

typedef struct {
	int k;
	int *proj;  /* scope as projections, row-major: the last varies fastest */
	double *t;
	bool live;
} Table;

typedef struct {
	int *a;
	int n, cap;
} IntList;

struct ElimProblem {
	int n;
	int *dom;
	Proj *proj;
	int nproj, capproj;
	Table *tab;
	int ntab, captab;
	IntList *bucket; /* per variable: the tables whose scope holds it */
	int width;
};

static int push(IntList *l, int x)
{
	if (l->n == l->cap) {
		int c = l->cap ? 2 * l->cap : 4;
		int *a = realloc(l->a, sizeof(int) * (size_t)c);
		if (!a)
			return -1;
		l->a = a;
		l->cap = c;
	}
	l->a[l->n++] = x;
	return 0;
}

/* A projection of v (map taken); its id or -1. */
static int add_proj(ElimProblem *p, int v, int n, int *map)
{
	if (p->nproj == p->capproj) {
		int c = p->capproj ? 2 * p->capproj : 16;
		Proj *q = realloc(p->proj, sizeof(Proj) * (size_t)c);
		if (!q)
			return -1;
		p->proj = q;
		p->capproj = c;
	}
	p->proj[p->nproj] = (Proj){v, n, map};
	return p->nproj++;
}

/* A table over projections pr[0..k-1] (copied), values t (taken); its id or -1. */
static int add_table(ElimProblem *p, int k, const int *pr, double *t)
{
	if (p->ntab == p->captab) {
		int c = p->captab ? 2 * p->captab : 16;
		Table *q = realloc(p->tab, sizeof(Table) * (size_t)c);
		if (!q)
			return -1;
		p->tab = q;
		p->captab = c;
	}
	int *s = malloc(sizeof(int) * (size_t)(k > 0 ? k : 1));
	if (!s)
		return -1;
	memcpy(s, pr, sizeof(int) * (size_t)k);
	int id = p->ntab;
	p->tab[p->ntab++] = (Table){k, s, t, true};
	for (int i = 0; i < k; i++)
		if (push(&p->bucket[p->proj[pr[i]].var], id))
			return -1;
	return id;
}

ElimProblem *elim_new(int n, const int *dom, const double *const *unary)
{
	if (n < 0)
		return NULL;
	ElimProblem *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->n = n;
	p->dom = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
	p->bucket = calloc((size_t)(n > 0 ? n : 1), sizeof(IntList));
	if (!p->dom || !p->bucket) {
		elim_free(p);
		return NULL;
	}
	for (int v = 0; v < n; v++) {
		if (dom[v] < 1 || dom[v] > 65535) {
			elim_free(p);
			return NULL;
		}
		p->dom[v] = dom[v];
		/* projection v is v's identity, table v its unary costs */
		int *id = malloc(sizeof(int) * (size_t)dom[v]);
		double *t = calloc((size_t)dom[v], sizeof(double));
		if (!id || !t || add_proj(p, v, dom[v], id) < 0) {
			free(id);
			free(t);
			elim_free(p);
			return NULL;
		}
		for (int x = 0; x < dom[v]; x++)
			id[x] = x;
		if (unary && unary[v])
			memcpy(t, unary[v], sizeof(double) * (size_t)dom[v]);
		if (add_table(p, 1, &v, t) < 0) {
			free(t);
			elim_free(p);
			return NULL;
		}
	}
	return p;
}

void elim_free(ElimProblem *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->ntab; i++) {
		free(p->tab[i].proj);
		free(p->tab[i].t);
	}
	for (int i = 0; i < p->nproj; i++)
		free(p->proj[i].map);
	for (int v = 0; v < p->n && p->bucket; v++)
		free(p->bucket[v].a);
	free(p->tab);
	free(p->proj);
	free(p->bucket);
	free(p->dom);
	free(p);
}

int elim_classes(int n, bool (*same)(int i, int j, const void *ctx), const void *ctx, int *cls,
		 int *rep)
{
	int k = 0;
	for (int i = 0; i < n; i++) {
		int found = -1;
		for (int c = 0; c < k && found < 0; c++)
			if (same(i, rep[c], ctx))
				found = c;
		if (found < 0) {
			rep[k] = i;
			found = k++;
		}
		cls[i] = found;
	}
	return k;
}

typedef struct {
	const double *C;
	int na, nb;
} Matrix;

static bool same_row(int i, int j, const void *ctx)
{
	const Matrix *m = ctx;
	for (int k = 0; k < m->nb; k++)
		if (m->C[(size_t)i * m->nb + k] != m->C[(size_t)j * m->nb + k])
			return false;
	return true;
}

static bool same_col(int i, int j, const void *ctx)
{
	const Matrix *m = ctx;
	for (int k = 0; k < m->na; k++)
		if (m->C[(size_t)k * m->nb + i] != m->C[(size_t)k * m->nb + j])
			return false;
	return true;
}

int elim_add_pair(ElimProblem *p, int a, int b, const double *C)
{
	if (!p || a < 0 || b < 0 || a >= p->n || b >= p->n || a == b)
		return -1;
	int na = p->dom[a], nb = p->dom[b];
	int *ma = malloc(sizeof(int) * (size_t)na), *mb = malloc(sizeof(int) * (size_t)nb);
	int *ra = malloc(sizeof(int) * (size_t)na), *rb = malloc(sizeof(int) * (size_t)nb);
	double *t = NULL;
	int rc = -1;
	if (!ma || !mb || !ra || !rb)
		goto out;
	Matrix mx = {C, na, nb};
	int ca = elim_classes(na, same_row, &mx, ma, ra), cb = elim_classes(nb, same_col, &mx, mb, rb);
	t = malloc(sizeof(double) * (size_t)ca * (size_t)cb);
	if (!t)
		goto out;
	for (int i = 0; i < ca; i++)
		for (int j = 0; j < cb; j++)
			t[(size_t)i * cb + j] = C[(size_t)ra[i] * nb + rb[j]];
	int pa = add_proj(p, a, ca, ma);
	if (pa < 0)
		goto out;
	ma = NULL;
	int pb = add_proj(p, b, cb, mb);
	if (pb < 0)
		goto out;
	mb = NULL;
	int sc[2] = {pa, pb};
	if (add_table(p, 2, sc, t) < 0)
		goto out;
	t = NULL;
	rc = 0;
out:
	free(ma);
	free(mb);
	free(ra);
	free(rb);
	free(t);
	return rc;
}

int elim_width(const ElimProblem *p) { return p ? p->width : 0; }

/* Table tb (an original one: unary, or pairwise) at value xv of v and
 * value y of the other variable (ignored when unary). */
static double at2(const ElimProblem *p, const Table *tb, int v, int xv, int y)
{
	if (tb->k == 1)
		return tb->t[p->proj[tb->proj[0]].map[xv]];
	const Proj *a = &p->proj[tb->proj[0]], *b = &p->proj[tb->proj[1]];
	int xa = a->var == v ? xv : y, xb = a->var == v ? y : xv;
	return tb->t[(size_t)a->map[xa] * (size_t)b->n + (size_t)b->map[xb]];
}

/* Value t of v is no worse than s against every table of v (original
 * tables: unary or pairwise), over the other variables' live values. */
static bool dominates(const ElimProblem *p, int v, int t, int s, bool *const *alive)
{
	const IntList *bk = &p->bucket[v];
	for (int i = 0; i < bk->n; i++) {
		const Table *tb = &p->tab[bk->a[i]];
		if (tb->k == 1) {
			if (at2(p, tb, v, t, 0) > at2(p, tb, v, s, 0))
				return false;
			continue;
		}
		int u = p->proj[tb->proj[0]].var == v ? p->proj[tb->proj[1]].var :
							 p->proj[tb->proj[0]].var;
		for (int y = 0; y < p->dom[u]; y++)
			if (alive[u][y] && at2(p, tb, v, t, y) > at2(p, tb, v, s, y))
				return false;
	}
	return true;
}

/* The problem on the live values (renumbered in order, map[v][new] =
 * old), NULL when out of memory. */
static ElimProblem *reduce(const ElimProblem *p, int ***map_out)
{
	int n = p->n, m = n > 0 ? n : 1;
	bool **alive = calloc((size_t)m, sizeof(bool *));
	int **map = calloc((size_t)m, sizeof(int *));
	int *nd = calloc((size_t)m, sizeof(int));
	double **un = calloc((size_t)m, sizeof(double *));
	ElimProblem *q = NULL;
	if (!alive || !map || !nd || !un)
		goto out;
	for (int v = 0; v < n; v++) {
		alive[v] = malloc(sizeof(bool) * (size_t)p->dom[v]);
		map[v] = malloc(sizeof(int) * (size_t)p->dom[v]);
		un[v] = malloc(sizeof(double) * (size_t)p->dom[v]);
		if (!alive[v] || !map[v] || !un[v])
			goto out;
		for (int x = 0; x < p->dom[v]; x++)
			alive[v][x] = true;
	}
	for (bool changed = true; changed;) {
		changed = false;
		for (int v = 0; v < n; v++)
			for (int s = 0; s < p->dom[v]; s++) {
				if (!alive[v][s])
					continue;
				for (int t = 0; t < p->dom[v]; t++) {
					if (t == s || !alive[v][t] || !dominates(p, v, t, s, alive))
						continue;
					if (t > s && dominates(p, v, s, t, alive))
						continue; /* equal: the lower index stays */
					alive[v][s] = false;
					changed = true;
					break;
				}
			}
	}
	for (int v = 0; v < n; v++) {
		for (int x = 0; x < p->dom[v]; x++)
			if (alive[v][x])
				map[v][nd[v]++] = x;
		for (int i = 0; i < nd[v]; i++)
			un[v][i] = p->tab[v].t[map[v][i]]; /* table v: v's unary (elim_new) */
	}
	q = elim_new(n, nd, (const double *const *)un);
	for (int i = n; q && i < p->ntab; i++) {
		const Table *tb = &p->tab[i];
		int a = p->proj[tb->proj[0]].var, b = p->proj[tb->proj[1]].var;
		double *C = malloc(sizeof(double) * (size_t)nd[a] * (size_t)nd[b]);
		int rc = -1;
		if (C) {
			for (int x = 0; x < nd[a]; x++)
				for (int y = 0; y < nd[b]; y++)
					C[(size_t)x * (size_t)nd[b] + (size_t)y] =
						at2(p, tb, a, map[a][x], map[b][y]);
			rc = elim_add_pair(q, a, b, C);
		}
		free(C);
		if (rc) {
			elim_free(q);
			q = NULL;
		}
	}
out:
	for (int v = 0; v < n && alive; v++)
		free(alive[v]);
	for (int v = 0; v < n && un; v++)
		free(un[v]);
	free(alive);
	free(un);
	free(nd);
	if (!q && map) {
		for (int v = 0; v < n; v++)
			free(map[v]);
		free(map);
		map = NULL;
	}
	*map_out = map;
	return q;
}

/* What eliminating v involves: the live tables holding v, its neighbours
 * and, per neighbour, the joint classes of its values over those tables. */
typedef struct {
	int nf, *fid;       /* tables */
	int nu, *u;         /* neighbours */
	int *ncls;          /* per neighbour: joint classes */
	int **cls;          /* per neighbour: value -> joint class */
	double cells;       /* product of ncls: the new table's size */
} Step;

static void step_free(Step *s)
{
	for (int i = 0; i < s->nu; i++)
		free(s->cls[i]);
	free(s->fid);
	free(s->u);
	free(s->ncls);
	free(s->cls);
	memset(s, 0, sizeof *s);
}

/* Values of one variable seen through several projections. */
typedef struct {
	const ElimProblem *p;
	const int *pr;
	int np;
} Joint;

static bool same_joint(int x, int y, const void *ctx)
{
	const Joint *j = ctx;
	for (int k = 0; k < j->np; k++)
		if (j->p->proj[j->pr[k]].map[x] != j->p->proj[j->pr[k]].map[y])
			return false;
	return true;
}

/* Fills s for v; -1 when out of memory. */
static int step_plan(const ElimProblem *p, int v, Step *s)
{
	memset(s, 0, sizeof *s);
	const IntList *bk = &p->bucket[v];
	int cap = 1;
	for (int i = 0; i < bk->n; i++)
		cap += p->tab[bk->a[i]].k;
	s->fid = malloc(sizeof(int) * (size_t)(bk->n + 1));
	s->u = malloc(sizeof(int) * (size_t)cap);
	s->ncls = malloc(sizeof(int) * (size_t)cap);
	s->cls = calloc((size_t)cap, sizeof(int *));
	int *pr = malloc(sizeof(int) * (size_t)cap);
	if (!s->fid || !s->u || !s->ncls || !s->cls || !pr) {
		free(pr);
		return -1;
	}
	for (int i = 0; i < bk->n; i++) {
		const Table *tb = &p->tab[bk->a[i]];
		if (!tb->live)
			continue;
		s->fid[s->nf++] = bk->a[i];
		for (int j = 0; j < tb->k; j++) {
			int w = p->proj[tb->proj[j]].var;
			bool seen = w == v;
			for (int q = 0; q < s->nu && !seen; q++)
				seen = s->u[q] == w;
			if (!seen)
				s->u[s->nu++] = w;
		}
	}
	s->cells = 1;
	for (int q = 0; q < s->nu; q++) {
		int w = s->u[q], np = 0, d = p->dom[w];
		for (int f = 0; f < s->nf; f++) {
			const Table *tb = &p->tab[s->fid[f]];
			for (int j = 0; j < tb->k; j++)
				if (p->proj[tb->proj[j]].var == w)
					pr[np++] = tb->proj[j];
		}
		int *c = malloc(sizeof(int) * (size_t)d), *rep = malloc(sizeof(int) * (size_t)d);
		if (!c || !rep) {
			free(c);
			free(rep);
			free(pr);
			return -1;
		}
		Joint jt = {p, pr, np};
		int n = elim_classes(d, same_joint, &jt, c, rep);
		free(rep);
		s->cls[q] = c;
		s->ncls[q] = n;
		s->cells *= n;
	}
	free(pr);
	return 0;
}

/* Eliminates v as s planned, in structure only: the tables s sums are
 * retired and the table of minima over the neighbours' joint classes
 * joins p without values (its id into *tab; -1 when v has no neighbour).
 * -1 when out of memory. */
static int retire(ElimProblem *p, const Step *s, int *tab)
{
	int nu = s->nu;
	int *newpr = malloc(sizeof(int) * (size_t)(nu > 0 ? nu : 1));
	if (!newpr)
		return -1;
	for (int f = 0; f < s->nf; f++)
		p->tab[s->fid[f]].live = false;
	*tab = -1;
	int rc = 0;
	for (int q = 0; q < nu && !rc; q++) {
		int *map = malloc(sizeof(int) * (size_t)p->dom[s->u[q]]);
		if (!map) {
			rc = -1;
			break;
		}
		memcpy(map, s->cls[q], sizeof(int) * (size_t)p->dom[s->u[q]]);
		newpr[q] = add_proj(p, s->u[q], s->ncls[q], map);
		if (newpr[q] < 0) {
			free(map);
			rc = -1;
		}
	}
	if (!rc && nu > 0) {
		*tab = add_table(p, nu, newpr, NULL);
		rc = *tab < 0 ? -1 : 0;
	}
	free(newpr);
	return rc;
}

/* Eliminates v (retired as s planned, its new table `tab`) in values: sums
 * the tables s names (their values freed after), minimises over x_v for
 * every combination of the neighbours' joint classes (row-major, the last
 * neighbour fastest) into table tab (or *constant when tab < 0); returns
 * the argmin table, NULL when out of memory. */
static uint16_t *eliminate(ElimProblem *p, int v, const Step *s, int tab, double *constant)
{
	size_t cells = (size_t)s->cells;
	int nu = s->nu, nf = s->nf, dv = p->dom[v];
	double *minv = malloc(sizeof(double) * cells);
	uint16_t *arg = malloc(sizeof(uint16_t) * cells);
	/* per table: its stride for each neighbour's joint class (through a
	 * representative value) and its column for each x_v */
	size_t *off = calloc((size_t)nf, sizeof(size_t));
	size_t *vcol = calloc((size_t)nf * (size_t)dv, sizeof(size_t));
	size_t **step = calloc((size_t)nf * (size_t)(nu > 0 ? nu : 1), sizeof(size_t *));
	int *x = calloc((size_t)(nu > 0 ? nu : 1), sizeof(int));
	bool ok = minv && arg && off && vcol && step && x;
	for (int f = 0; f < nf && ok; f++) {
		const Table *tb = &p->tab[s->fid[f]];
		size_t stride = 1;
		for (int j = tb->k - 1; j >= 0; j--) {
			const Proj *pj = &p->proj[tb->proj[j]];
			if (pj->var == v) {
				for (int xv = 0; xv < dv; xv++)
					vcol[(size_t)f * dv + xv] += stride * (size_t)pj->map[xv];
			} else {
				int q = 0;
				while (s->u[q] != pj->var)
					q++;
				/* contribution of each joint class of neighbour q */
				size_t **sq = &step[(size_t)f * nu + q];
				if (!*sq)
					*sq = calloc((size_t)s->ncls[q], sizeof(size_t));
				if (!*sq) {
					ok = false;
					break;
				}
				for (int c = 0; c < s->ncls[q]; c++) {
					int y = 0; /* a value of class c */
					while (s->cls[q][y] != c)
						y++;
					(*sq)[c] += stride * (size_t)pj->map[y];
				}
			}
			stride *= (size_t)pj->n;
		}
	}
	if (ok) {
		for (size_t c = 0; c < cells; c++) {
			double best = INFINITY;
			int bx = 0;
			for (int xv = 0; xv < dv; xv++) {
				double sum = 0;
				for (int f = 0; f < nf; f++)
					sum += p->tab[s->fid[f]].t[off[f] + vcol[(size_t)f * dv + xv]];
				if (xv == 0 || sum < best) {
					best = sum;
					bx = xv;
				}
			}
			minv[c] = best;
			arg[c] = (uint16_t)bx;
			for (int q = nu - 1; q >= 0; q--) {
				int old = x[q];
				bool wrap = ++x[q] == s->ncls[q];
				if (wrap)
					x[q] = 0;
				for (int f = 0; f < nf; f++) {
					const size_t *sq = step[(size_t)f * nu + q];
					if (sq)
						off[f] += sq[x[q]] - sq[old];
				}
				if (!wrap)
					break;
			}
		}
	}
	for (int f = 0; f < nf * nu && step; f++)
		free(step[f]);
	free(step);
	free(off);
	free(vcol);
	free(x);
	for (int f = 0; f < nf && ok; f++) {
		Table *tb = &p->tab[s->fid[f]];
		free(tb->t);
		tb->t = NULL;
	}
	if (ok && tab < 0) {
		*constant += minv[0];
		free(minv);
	} else if (ok) {
		p->tab[tab].t = minv;
	} else {
		free(minv);
		free(arg);
		arg = NULL;
	}
	return arg;
}

/* Two passes: the order and every table's structure first (the work bound
 * decided before any value is summed, so a refused problem costs only its
 * planning), then the values in that order. */
static int solve_reduced(ElimProblem *p, double max_work, double max_table, int *xout,
			 double *min)
{
	int n = p->n, m = n > 0 ? n : 1;
	int *order = malloc(sizeof(int) * (size_t)m), *tab = malloc(sizeof(int) * (size_t)m);
	Step *st = calloc((size_t)m, sizeof(Step));
	bool *gone = calloc((size_t)m, sizeof(bool)), *stale = calloc((size_t)m, sizeof(bool));
	uint16_t **arg = calloc((size_t)m, sizeof(uint16_t *));
	double constant = 0, work = 0;
	int rc = !order || !tab || !st || !gone || !stale || !arg ? -1 : 0;
	for (int v = 0; v < n && !rc; v++)
		rc = step_plan(p, v, &st[v]);
	p->width = 0;
	for (int k = 0; k < n && !rc; k++) {
		int v = -1;
		for (int w = 0; w < n && !rc; w++) {
			if (gone[w])
				continue;
			if (stale[w]) {
				step_free(&st[w]);
				rc = step_plan(p, w, &st[w]);
				stale[w] = false;
			}
			if (v < 0 || st[w].cells < st[v].cells)
				v = w;
		}
		if (rc)
			break;
		work += st[v].cells * p->dom[v] * (st[v].nf > 0 ? st[v].nf : 1);
		if (st[v].cells > max_table || work > max_work) {
			rc = 1;
			break;
		}
		if (st[v].nu > p->width)
			p->width = st[v].nu;
		rc = retire(p, &st[v], &tab[v]);
		gone[v] = true;
		order[k] = v;
		for (int q = 0; q < st[v].nu; q++)
			stale[st[v].u[q]] = true;
	}
	for (int k = 0; k < n && !rc; k++) {
		int v = order[k];
		arg[v] = eliminate(p, v, &st[v], tab[v], &constant);
		if (!arg[v])
			rc = -1;
	}
	int *x = rc ? NULL : malloc(sizeof(int) * (size_t)m);
	if (!rc && !x)
		rc = -1;
	for (int k = n - 1; k >= 0 && !rc; k--) {
		int v = order[k];
		size_t c = 0;
		for (int q = 0; q < st[v].nu; q++)
			c = c * (size_t)st[v].ncls[q] + (size_t)st[v].cls[q][x[st[v].u[q]]];
		x[v] = arg[v][c];
	}
	if (!rc) {
		memcpy(xout, x, sizeof(int) * (size_t)n);
		*min = constant;
	}
	for (int v = 0; v < n && st && arg; v++) {
		step_free(&st[v]);
		free(arg[v]);
	}
	free(x);
	free(st);
	free(arg);
	free(gone);
	free(stale);
	free(order);
	free(tab);
	return rc;
}

int elim_solve(ElimProblem *p, double max_work, double max_table, int *xout, double *min)
{
	int **map = NULL;
	ElimProblem *q = reduce(p, &map);
	if (!q)
		return -1;
	int n = p->n;
	int *x = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
	int rc = x ? solve_reduced(q, max_work, max_table, x, min) : -1;
	p->width = q->width;
	if (!rc)
		for (int v = 0; v < n; v++)
			xout[v] = map[v][x[v]];
	free(x);
	for (int v = 0; v < n; v++)
		free(map[v]);
	free(map);
	elim_free(q);
	return rc;
}
