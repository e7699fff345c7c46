/*
 * elim.c -- min-sum variable elimination (see elim.h).
 *
 * Two phases.  The symbolic one picks the order on the interaction graph
 * alone: repeatedly the live variable whose neighbours' domains have the
 * least product (the size of the table its elimination makes; ties: the
 * lowest index), joins its neighbours pairwise and drops it; it refuses
 * the problem once a table or the summed work passes the caller's bounds.
 * The numeric one follows that order: eliminating v sums the tables that
 * hold v and minimises over x_v for every assignment of v's neighbours,
 * keeping the minimising x_v; the assignment is then read back in reverse
 * order.
 */
#include "solver/elim.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	int k;        /* variables in scope */
	int *v;       /* scope, row-major: the last varies fastest */
	double *t;    /* prod dom entries */
	bool live;
} Table;

typedef struct {
	int *a;
	int n, cap;
} IntList;

struct ElimProblem {
	int n;
	int *dom;
	Table *tab;
	int ntab, captab;
	IntList *bucket; /* per variable: the tables whose scope holds it */
	IntList *adj;    /* per variable: its neighbours (symbolic phase) */
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

static bool has(const IntList *l, int x)
{
	for (int i = 0; i < l->n; i++)
		if (l->a[i] == x)
			return true;
	return false;
}

static void drop(IntList *l, int x)
{
	for (int i = 0; i < l->n; i++)
		if (l->a[i] == x) {
			l->a[i] = l->a[--l->n];
			return;
		}
}

/* A new table over scope v[0..k-1] (copied), values t (taken); its index or -1. */
static int add_table(ElimProblem *p, int k, const int *v, double *t)
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
	memcpy(s, v, sizeof(int) * (size_t)k);
	int id = p->ntab;
	p->tab[p->ntab++] = (Table){k, s, t, true};
	for (int i = 0; i < k; i++)
		if (push(&p->bucket[v[i]], id))
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
	p->adj = calloc((size_t)(n > 0 ? n : 1), sizeof(IntList));
	if (!p->dom || !p->bucket || !p->adj) {
		elim_free(p);
		return NULL;
	}
	for (int v = 0; v < n; v++) {
		if (dom[v] < 1) {
			elim_free(p);
			return NULL;
		}
		p->dom[v] = dom[v];
		double *t = calloc((size_t)dom[v], sizeof(double));
		if (!t) {
			elim_free(p);
			return NULL;
		}
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
		free(p->tab[i].v);
		free(p->tab[i].t);
	}
	for (int v = 0; v < p->n && p->bucket && p->adj; v++) {
		free(p->bucket[v].a);
		free(p->adj[v].a);
	}
	free(p->tab);
	free(p->bucket);
	free(p->adj);
	free(p->dom);
	free(p);
}

int elim_add_pair(ElimProblem *p, int a, int b, const double *C)
{
	if (!p || a < 0 || b < 0 || a >= p->n || b >= p->n || a == b)
		return -1;
	size_t sz = (size_t)p->dom[a] * (size_t)p->dom[b];
	double *t = malloc(sizeof(double) * sz);
	if (!t)
		return -1;
	memcpy(t, C, sizeof(double) * sz);
	int sc[2] = {a, b};
	if (add_table(p, 2, sc, t) < 0) {
		free(t);
		return -1;
	}
	if (!has(&p->adj[a], b) && (push(&p->adj[a], b) || push(&p->adj[b], a)))
		return -1;
	return 0;
}

int elim_width(const ElimProblem *p) { return p ? p->width : 0; }

/* Product of the domains of v's neighbours: the size of the table its
 * elimination makes. */
static double table_size(const ElimProblem *p, int v)
{
	double s = 1;
	for (int i = 0; i < p->adj[v].n; i++)
		s *= p->dom[p->adj[v].a[i]];
	return s;
}

/* The order, or 1 when it passes the bounds (-1: out of memory). */
static int plan_order(ElimProblem *p, double max_work, double max_table, int *order)
{
	int n = p->n;
	bool *gone = calloc((size_t)(n > 0 ? n : 1), sizeof(bool));
	double *size = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
	if (!gone || !size) {
		free(gone);
		free(size);
		return -1;
	}
	for (int v = 0; v < n; v++)
		size[v] = table_size(p, v);
	double work = 0;
	int rc = 0;
	p->width = 0;
	for (int step = 0; step < n && !rc; step++) {
		int best = -1;
		for (int v = 0; v < n; v++)
			if (!gone[v] && (best < 0 || size[v] < size[best]))
				best = v;
		int v = best;
		work += size[v] * p->dom[v];
		if (size[v] > max_table || work > max_work) {
			rc = 1;
			break;
		}
		order[step] = v;
		gone[v] = true;
		IntList *nb = &p->adj[v];
		if (nb->n > p->width)
			p->width = nb->n;
		for (int i = 0; i < nb->n && !rc; i++) {
			int a = nb->a[i];
			drop(&p->adj[a], v);
			for (int j = 0; j < nb->n && !rc; j++) {
				int b = nb->a[j];
				if (a != b && !has(&p->adj[a], b) && push(&p->adj[a], b))
					rc = -1;
			}
		}
		for (int i = 0; i < nb->n; i++)
			size[nb->a[i]] = table_size(p, nb->a[i]);
		nb->n = 0;
	}
	free(gone);
	free(size);
	return rc;
}

/* One elimination: the argmin table over scope (*sc, *k) of v, or NULL
 * when out of memory.  Adds the table of minima to p (or to *constant
 * when the scope is empty). */
static uint16_t *eliminate(ElimProblem *p, int v, int **sc, int *k, double *constant)
{
	IntList *bk = &p->bucket[v];
	int nf = 0, ns = 0;
	int *scope = malloc(sizeof(int) * (size_t)(p->n > 0 ? p->n : 1));
	int *fid = malloc(sizeof(int) * (size_t)(bk->n > 0 ? bk->n : 1));
	if (!scope || !fid) {
		free(scope);
		free(fid);
		return NULL;
	}
	for (int i = 0; i < bk->n; i++) {
		Table *t = &p->tab[bk->a[i]];
		if (!t->live)
			continue;
		fid[nf++] = bk->a[i];
		for (int j = 0; j < t->k; j++) {
			int u = t->v[j];
			bool seen = u == v;
			for (int q = 0; q < ns && !seen; q++)
				seen = scope[q] == u;
			if (!seen)
				scope[ns++] = u;
		}
	}
	/* strides of every table over scope (then v, innermost) */
	size_t *stride = calloc((size_t)nf * (size_t)(ns + 1), sizeof(size_t));
	size_t cells = 1;
	for (int q = 0; q < ns; q++)
		cells *= (size_t)p->dom[scope[q]];
	double *minv = malloc(sizeof(double) * cells);
	uint16_t *arg = malloc(sizeof(uint16_t) * cells);
	int *x = calloc((size_t)(ns > 0 ? ns : 1), sizeof(int));
	size_t *off = calloc((size_t)(nf > 0 ? nf : 1), sizeof(size_t));
	if (!stride || !minv || !arg || !x || !off) {
		free(scope);
		free(fid);
		free(stride);
		free(minv);
		free(arg);
		free(x);
		free(off);
		return NULL;
	}
	for (int f = 0; f < nf; f++) {
		const Table *t = &p->tab[fid[f]];
		size_t s = 1;
		for (int j = t->k - 1; j >= 0; j--) {
			int pos = ns; /* v */
			for (int q = 0; q < ns; q++)
				if (scope[q] == t->v[j])
					pos = q;
			stride[(size_t)f * (size_t)(ns + 1) + (size_t)pos] = s;
			s *= (size_t)p->dom[t->v[j]];
		}
	}
	int dv = p->dom[v];
	for (size_t c = 0; c < cells; c++) {
		double best = INFINITY;
		int bx = 0;
		for (int xv = 0; xv < dv; xv++) {
			double s = 0;
			for (int f = 0; f < nf; f++)
				s += p->tab[fid[f]].t[off[f] + (size_t)xv * stride[(size_t)f * (size_t)(ns + 1) + (size_t)ns]];
			if (s < best || xv == 0) {
				best = s;
				bx = xv;
			}
		}
		minv[c] = best;
		arg[c] = (uint16_t)bx;
		/* odometer over scope, last fastest */
		for (int q = ns - 1; q >= 0; q--) {
			for (int f = 0; f < nf; f++)
				off[f] += stride[(size_t)f * (size_t)(ns + 1) + (size_t)q];
			if (++x[q] < p->dom[scope[q]])
				break;
			for (int f = 0; f < nf; f++)
				off[f] -= stride[(size_t)f * (size_t)(ns + 1) + (size_t)q] *
					  (size_t)p->dom[scope[q]];
			x[q] = 0;
		}
	}
	for (int f = 0; f < nf; f++) {
		Table *t = &p->tab[fid[f]];
		t->live = false;
		free(t->t);
		t->t = NULL;
	}
	free(stride);
	free(x);
	free(off);
	free(fid);
	if (ns == 0) {
		*constant += minv[0];
		free(minv);
	} else if (add_table(p, ns, scope, minv) < 0) {
		free(minv);
		free(scope);
		free(arg);
		return NULL;
	}
	*sc = scope;
	*k = ns;
	return arg;
}

/* Value t of v is as good as s against everything: unary and every
 * pairwise table, over the neighbours' values still alive. */
static bool dominates(const ElimProblem *p, int v, int t, int s, bool *const *alive)
{
	const IntList *bk = &p->bucket[v];
	for (int i = 0; i < bk->n; i++) {
		const Table *tb = &p->tab[bk->a[i]];
		if (tb->k == 1) {
			if (tb->t[t] > tb->t[s])
				return false;
			continue;
		}
		int u = tb->v[0] == v ? tb->v[1] : tb->v[0];
		int du = p->dom[u];
		for (int y = 0; y < du; y++) {
			if (!alive[u][y])
				continue;
			double a, b;
			if (tb->v[0] == v) {
				a = tb->t[(size_t)t * (size_t)du + (size_t)y];
				b = tb->t[(size_t)s * (size_t)du + (size_t)y];
			} else {
				a = tb->t[(size_t)y * (size_t)p->dom[v] + (size_t)t];
				b = tb->t[(size_t)y * (size_t)p->dom[v] + (size_t)s];
			}
			if (a > b)
				return false;
		}
	}
	return true;
}

/*
 * Drops dominated values: s of v goes when another live value t is no
 * worse against every table (t < s when the two are equal everywhere),
 * repeated until nothing changes.  Some minimum keeps only live values,
 * so minimising over them is exact.  Returns the reduced problem (each
 * variable's live values renumbered in order, map[v][new] = old), NULL
 * when out of memory.
 */
static ElimProblem *reduce(const ElimProblem *p, int ***map_out)
{
	int n = p->n;
	bool **alive = calloc((size_t)(n > 0 ? n : 1), sizeof(bool *));
	int **map = calloc((size_t)(n > 0 ? n : 1), sizeof(int *));
	int *nd = calloc((size_t)(n > 0 ? n : 1), sizeof(int));
	double **un = calloc((size_t)(n > 0 ? n : 1), sizeof(double *));
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
					/* equal both ways: the lower index stays */
					if (t > s && dominates(p, v, s, t, alive))
						continue;
					alive[v][s] = false;
					changed = true;
					break;
				}
			}
	}
	for (int v = 0; v < n; v++) {
		nd[v] = 0;
		for (int x = 0; x < p->dom[v]; x++)
			if (alive[v][x])
				map[v][nd[v]++] = x;
		for (int i = 0; i < nd[v]; i++)
			un[v][i] = p->tab[v].t[map[v][i]]; /* table v: v's unary (elim_new) */
	}
	q = elim_new(n, nd, (const double *const *)un);
	for (int i = n; q && i < p->ntab; i++) {
		const Table *tb = &p->tab[i];
		int a = tb->v[0], b = tb->v[1];
		double *C = malloc(sizeof(double) * (size_t)nd[a] * (size_t)nd[b]);
		if (!C) {
			elim_free(q);
			q = NULL;
			break;
		}
		for (int x = 0; x < nd[a]; x++)
			for (int y = 0; y < nd[b]; y++)
				C[(size_t)x * (size_t)nd[b] + (size_t)y] =
					tb->t[(size_t)map[a][x] * (size_t)p->dom[b] + (size_t)map[b][y]];
		int rc = elim_add_pair(q, a, b, C);
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

static int solve_reduced(ElimProblem *p, double max_work, double max_table, int *xout,
			 double *min);

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

static int solve_reduced(ElimProblem *p, double max_work, double max_table, int *xout,
			 double *min)
{
	int n = p->n;
	for (int v = 0; v < n; v++)
		if (p->dom[v] > 65535)
			return 1;
	int *order = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
	if (!order)
		return -1;
	int rc = plan_order(p, max_work, max_table, order);
	if (rc) {
		free(order);
		return rc;
	}
	uint16_t **arg = calloc((size_t)(n > 0 ? n : 1), sizeof(uint16_t *));
	int **scope = calloc((size_t)(n > 0 ? n : 1), sizeof(int *));
	int *k = calloc((size_t)(n > 0 ? n : 1), sizeof(int));
	int *x = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
	double constant = 0;
	rc = !arg || !scope || !k || !x ? -1 : 0;
	for (int s = 0; s < n && !rc; s++) {
		int v = order[s];
		arg[v] = eliminate(p, v, &scope[v], &k[v], &constant);
		if (!arg[v])
			rc = -1;
	}
	for (int s = n - 1; s >= 0 && !rc; s--) {
		int v = order[s];
		size_t c = 0;
		for (int q = 0; q < k[v]; q++)
			c = c * (size_t)p->dom[scope[v][q]] + (size_t)x[scope[v][q]];
		x[v] = arg[v][c];
	}
	if (!rc) {
		memcpy(xout, x, sizeof(int) * (size_t)n);
		*min = constant;
	}
	for (int v = 0; v < n && arg && scope; v++) {
		free(arg[v]);
		free(scope[v]);
	}
	free(arg);
	free(scope);
	free(k);
	free(x);
	free(order);
	return rc;
}
