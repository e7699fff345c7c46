/*
 * ilp.c -- the ILP builder and its GLPK driver (see ilp.h).
 *
 * Reads: columns and rows added by the caller.  Writes: an IlpResult and
 * the assignment (IlpProblem.sol).
 *
 * The problem lives in our own arrays, the constraint matrix as 1-based
 * triplets (slot 0 unused) so that glp_load_matrix takes it as it is.  A
 * solve creates the thread's GLPK environment, loads everything in bulk,
 * runs the dual simplex on the LP relaxation, then branch-and-bound
 * (glp_intopt) from that basis, copies the assignment out and frees the
 * environment again.  GLPK errors longjmp back to run_glpk() through the
 * error hook, the way igraph's glpk_support.c does it: the hook calls
 * glp_free_env() first, which releases every GLPK object of the thread
 * (our glp_prob included, so it must not be deleted afterwards).
 */
#include "solver/ilp.h"

#include <float.h>
#include <glpk.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { COL_BIN, COL_CONT };

struct IlpProblem {
	/* columns, 0-based */
	int ncols, capcols;
	unsigned char *kind; /* COL_BIN or COL_CONT */
	double *lo, *hi;     /* bounds of continuous columns */
	double *cost;        /* objective coefficients */
	int *pos;            /* scratch for ilp_add_row: slot of column in the row being added, or -1 */

	/* rows, 0-based */
	int nrows, caprows;
	unsigned char *sense; /* IlpSense */
	double *rhs;

	/* nonzeros as GLPK wants them: entries 1..nnz, 1-based row and column numbers */
	int nnz, capnz; /* capnz counts slot 0 */
	int *nz_row, *nz_col;
	double *nz_val;

	/* assignment of the last solve */
	double *sol;   /* room for ncols values */
	int ncols_sol; /* how many of them hold an assignment, 0 when there is none */

	/* LP bases: the optimal one of the last solve (rows, then columns: GLPK's
	 * GLP_BS, GLP_NL, ... statuses), and one to start the next solve from */
	signed char *basis;
	int nbasis;    /* 0 when the last solve found no optimal LP basis */
	signed char *warm;
	int nwarm;

	char err[160]; /* why the last ilp_add_* failed */
};

/* ------------------------------------------------------------------ */
/* Building.                                                            */

static int fail(IlpProblem *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(IlpProblem *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err, sizeof p->err, fmt, ap);
	va_end(ap);
	return -1;
}

/* Grows *arr (element size sz) to hold at least `need` elements. */
static int grow(void **arr, int *cap, int need, size_t sz)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? (size_t)*cap : 16;
	while (ncap < (size_t)need)
		ncap *= 2;
	if (ncap > INT_MAX)
		ncap = INT_MAX;
	void *q = realloc(*arr, ncap * sz);
	if (!q)
		return -1;
	*arr = q;
	*cap = (int)ncap;
	return 0;
}

IlpProblem *ilp_new(void)
{
	IlpProblem *p = calloc(1, sizeof *p);
	return p;
}

void ilp_free(IlpProblem *p)
{
	if (!p)
		return;
	free(p->kind);
	free(p->lo);
	free(p->hi);
	free(p->cost);
	free(p->pos);
	free(p->sense);
	free(p->rhs);
	free(p->nz_row);
	free(p->nz_col);
	free(p->nz_val);
	free(p->sol);
	free(p->basis);
	free(p->warm);
	free(p);
}

/* Makes room for one more column in every column array. */
static int reserve_col(IlpProblem *p)
{
	if (p->ncols == INT_MAX - 1)
		return -1;
	int need = p->ncols + 1, cap = p->capcols, c;
	if (need <= cap)
		return 0;
	/* every column array shares capcols: grow them all to the same size */
	c = cap;
	if (grow((void **)&p->kind, &c, need, sizeof *p->kind))
		return -1;
	int ncap = c;
	c = cap;
	if (grow((void **)&p->lo, &c, ncap, sizeof *p->lo))
		return -1;
	c = cap;
	if (grow((void **)&p->hi, &c, ncap, sizeof *p->hi))
		return -1;
	c = cap;
	if (grow((void **)&p->cost, &c, ncap, sizeof *p->cost))
		return -1;
	c = cap;
	if (grow((void **)&p->pos, &c, ncap, sizeof *p->pos))
		return -1;
	for (int j = cap; j < ncap; j++)
		p->pos[j] = -1;
	p->capcols = ncap;
	return 0;
}

static int add_col(IlpProblem *p, int kind, double lo, double hi, double cost)
{
	if (reserve_col(p))
		return fail(p, "out of memory adding column %d", p->ncols);
	int j = p->ncols++;
	p->kind[j] = (unsigned char)kind;
	p->lo[j] = lo;
	p->hi[j] = hi;
	p->cost[j] = cost;
	p->err[0] = '\0';
	return j;
}

int ilp_add_binary(IlpProblem *p, double cost)
{
	if (!p)
		return -1;
	if (!isfinite(cost))
		return fail(p, "binary column %d: cost %g is not finite", p->ncols, cost);
	return add_col(p, COL_BIN, 0.0, 1.0, cost);
}

int ilp_add_continuous(IlpProblem *p, double lo, double hi, double cost)
{
	if (!p)
		return -1;
	if (!isfinite(cost))
		return fail(p, "continuous column %d: cost %g is not finite", p->ncols, cost);
	if (isnan(lo) || isnan(hi) || lo > hi || lo == INFINITY || hi == -INFINITY)
		return fail(p, "continuous column %d: bounds [%g, %g] are empty or not numbers",
			    p->ncols, lo, hi);
	return add_col(p, COL_CONT, lo, hi, cost);
}

int ilp_add_row(IlpProblem *p, int n, const int *cols, const double *vals, IlpSense sense,
		double rhs)
{
	if (!p)
		return -1;
	int row = p->nrows;
	if (n < 0 || (n > 0 && (!cols || !vals)))
		return fail(p, "row %d: %d entries with %s", row, n,
			    n < 0 ? "a negative count" : "a NULL array");
	if (sense != ILP_EQ && sense != ILP_LE && sense != ILP_GE)
		return fail(p, "row %d: unknown sense %d", row, (int)sense);
	if (!isfinite(rhs))
		return fail(p, "row %d: right-hand side %g is not finite", row, rhs);
	for (int k = 0; k < n; k++) {
		if (cols[k] < 0 || cols[k] >= p->ncols)
			return fail(p, "row %d, entry %d: column %d does not exist (%d columns)", row,
				    k, cols[k], p->ncols);
		if (!isfinite(vals[k]))
			return fail(p, "row %d, entry %d: coefficient %g is not finite", row, k, vals[k]);
	}
	if (row == INT_MAX - 1 || n > INT_MAX - 1 - p->nnz)
		return fail(p, "row %d: too many rows or nonzeros", row);
	int c = p->caprows;
	if (grow((void **)&p->sense, &c, row + 1, sizeof *p->sense))
		return fail(p, "row %d: out of memory", row);
	int ncap = c;
	c = p->caprows;
	if (grow((void **)&p->rhs, &c, ncap, sizeof *p->rhs))
		return fail(p, "row %d: out of memory", row);
	p->caprows = ncap;
	int need = p->nnz + n + 1; /* slot 0 is unused */
	c = p->capnz;
	if (grow((void **)&p->nz_row, &c, need, sizeof *p->nz_row))
		return fail(p, "row %d: out of memory", row);
	ncap = c;
	c = p->capnz;
	if (grow((void **)&p->nz_col, &c, ncap, sizeof *p->nz_col))
		return fail(p, "row %d: out of memory", row);
	c = p->capnz;
	if (grow((void **)&p->nz_val, &c, ncap, sizeof *p->nz_val))
		return fail(p, "row %d: out of memory", row);
	p->capnz = ncap;

	/* append, summing repeated columns through pos[] */
	int start = p->nnz + 1, len = 0;
	for (int k = 0; k < n; k++) {
		int j = cols[k];
		if (p->pos[j] >= 0) {
			p->nz_val[p->pos[j]] += vals[k];
			continue;
		}
		int s = start + len++;
		p->pos[j] = s;
		p->nz_row[s] = row + 1;
		p->nz_col[s] = j + 1;
		p->nz_val[s] = vals[k];
	}
	/* reset pos[], drop zeros */
	int w = start, bad = 0;
	for (int s = start; s < start + len; s++) {
		p->pos[p->nz_col[s] - 1] = -1;
		if (!isfinite(p->nz_val[s]))
			bad = 1;
		if (p->nz_val[s] == 0.0)
			continue;
		p->nz_row[w] = p->nz_row[s];
		p->nz_col[w] = p->nz_col[s];
		p->nz_val[w] = p->nz_val[s];
		w++;
	}
	if (bad)
		return fail(p, "row %d: repeated entries sum to a value that is not finite", row);
	p->nnz = w - 1;
	p->sense[row] = (unsigned char)sense;
	p->rhs[row] = rhs;
	p->nrows++;
	p->err[0] = '\0';
	return row;
}

int ilp_ncols(const IlpProblem *p) { return p ? p->ncols : 0; }
int ilp_nrows(const IlpProblem *p) { return p ? p->nrows : 0; }
int ilp_nnz(const IlpProblem *p) { return p ? p->nnz : 0; }
const char *ilp_last_error(const IlpProblem *p) { return p ? p->err : "no problem"; }

const signed char *ilp_basis(const IlpProblem *p, int *n)
{
	*n = p ? p->nbasis : 0;
	return *n > 0 ? p->basis : NULL;
}

int ilp_warm_start(IlpProblem *p, const signed char *basis, int n)
{
	if (!p || n < 0)
		return -1;
	signed char *w = realloc(p->warm, (size_t)n + 1);
	if (!w)
		return -1;
	if (n)
		memcpy(w, basis, (size_t)n);
	p->warm = w;
	p->nwarm = n;
	return 0;
}

double ilp_value(const IlpProblem *p, int col)
{
	if (!p || col < 0 || col >= p->ncols_sol)
		return NAN;
	return p->sol[col];
}

const char *ilp_status_name(IlpStatus s)
{
	switch (s) {
	case ILP_OPTIMAL: return "optimal";
	case ILP_FEASIBLE: return "feasible";
	case ILP_INFEASIBLE: return "infeasible";
	case ILP_TIMEOUT: return "timeout";
	case ILP_ERROR: return "error";
	case ILP_FRACTIONAL: return "fractional";
	}
	return "unknown";
}

bool ilp_thread_safe(void)
{
	return glp_config("TLS") != NULL;
}

/* ------------------------------------------------------------------ */
/* Solving.                                                             */

/* Everything GLPK's hooks and callback touch; lives in ilp_solve's frame. */
typedef struct {
	jmp_buf jmp;        /* where the error hook returns to */
	int verbose;        /* let GLPK's terminal output through */
	char glpk_msg[200]; /* text GLPK printed while failing */
	size_t glpk_len;
	double bound;       /* best lower bound on the optimum seen, -INFINITY if none */
	int node_limit;     /* IlpOptions.node_limit */
	bool node_stop;     /* the search was stopped at node_limit */
	int nodes;          /* subproblems created so far */
} GlpkCtx;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Terminal hook: keeps the text of an error message, prints only if verbose. */
static int on_term(void *info, const char *s)
{
	GlpkCtx *c = info;
	if (glp_at_error()) {
		/* lines are joined with "; " */
		for (; *s && c->glpk_len + 3 < sizeof c->glpk_msg; s++) {
			if (*s != '\n') {
				c->glpk_msg[c->glpk_len++] = *s;
			} else {
				c->glpk_msg[c->glpk_len++] = ';';
				c->glpk_msg[c->glpk_len++] = ' ';
			}
		}
		c->glpk_msg[c->glpk_len] = '\0';
	}
	return c->verbose ? 0 : 1;
}

/* Error hook: GLPK is in an undefined state; drop all of it and go back. */
static void on_error(void *info)
{
	GlpkCtx *c = info;
	glp_free_env();
	longjmp(c->jmp, 1);
}

/* Branch-and-bound callback: remembers the best bound of the search and
 * stops it once it has created node_limit subproblems (a count, so the
 * same problem stops at the same point on every machine). */
static void on_tree(glp_tree *T, void *info)
{
	GlpkCtx *c = info;
	int active, live, total;
	glp_ios_tree_size(T, &active, &live, &total);
	c->nodes = total;
	if (c->node_limit > 0 && glp_ios_reason(T) == GLP_ISELECT) {
		if (total >= c->node_limit) {
			c->node_stop = true;
			glp_ios_terminate(T);
		}
	}
	int best = glp_ios_best_node(T);
	if (best) {
		double b = glp_ios_node_bound(T, best);
		if (b > c->bound)
			c->bound = b;
	}
}

/* Milliseconds left until `deadline` for GLPK's tm_lim (INT_MAX: none). */
static int ms_left(double deadline)
{
	if (deadline == INFINITY)
		return INT_MAX;
	double ms = ceil((deadline - now_s()) * 1000.0);
	if (ms < 1.0)
		return 1;
	return ms >= (double)(INT_MAX - 1) ? INT_MAX - 1 : (int)ms;
}

static void load(const IlpProblem *p, glp_prob *P)
{
	glp_set_obj_dir(P, GLP_MIN);
	if (p->ncols > 0)
		glp_add_cols(P, p->ncols);
	if (p->nrows > 0)
		glp_add_rows(P, p->nrows);
	for (int j = 0; j < p->ncols; j++) {
		if (p->kind[j] == COL_BIN) {
			glp_set_col_kind(P, j + 1, GLP_BV);
		} else {
			double lo = p->lo[j], hi = p->hi[j];
			int type = lo == -INFINITY ? (hi == INFINITY ? GLP_FR : GLP_UP)
			         : hi == INFINITY  ? GLP_LO
			         : lo == hi        ? GLP_FX : GLP_DB;
			glp_set_col_bnds(P, j + 1, type, isfinite(lo) ? lo : 0.0, isfinite(hi) ? hi : 0.0);
		}
		if (p->cost[j] != 0.0)
			glp_set_obj_coef(P, j + 1, p->cost[j]);
	}
	for (int i = 0; i < p->nrows; i++) {
		static const int type[] = { [ILP_EQ] = GLP_FX, [ILP_LE] = GLP_UP, [ILP_GE] = GLP_LO };
		glp_set_row_bnds(P, i + 1, type[p->sense[i]], p->rhs[i], p->rhs[i]);
	}
	if (p->nnz > 0)
		glp_load_matrix(P, p->nnz, p->nz_row, p->nz_col, p->nz_val);
}

static void say(IlpResult *r, IlpStatus st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(IlpResult *r, IlpStatus st, const char *fmt, ...)
{
	va_list ap;
	r->status = st;
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof r->message, fmt, ap);
	va_end(ap);
}

static const char *glpk_code(int ret)
{
	switch (ret) {
	case GLP_EBADB: return "GLP_EBADB";
	case GLP_ESING: return "GLP_ESING";
	case GLP_ECOND: return "GLP_ECOND";
	case GLP_EBOUND: return "GLP_EBOUND";
	case GLP_EFAIL: return "GLP_EFAIL";
	case GLP_EOBJLL: return "GLP_EOBJLL";
	case GLP_EOBJUL: return "GLP_EOBJUL";
	case GLP_EITLIM: return "GLP_EITLIM";
	case GLP_ETMLIM: return "GLP_ETMLIM";
	case GLP_ENOPFS: return "GLP_ENOPFS";
	case GLP_ENODFS: return "GLP_ENODFS";
	case GLP_EROOT: return "GLP_EROOT";
	case GLP_ESTOP: return "GLP_ESTOP";
	case GLP_EMIPGAP: return "GLP_EMIPGAP";
	}
	return "unknown code";
}

/* Copies GLPK's MIP assignment into p->sol (allocated by ilp_solve) and sets r->objective. */
static void take_solution(IlpProblem *p, glp_prob *P, IlpResult *r)
{
	double obj = 0.0;
	for (int j = 0; j < p->ncols; j++) {
		double v = glp_mip_col_val(P, j + 1);
		if (p->kind[j] == COL_BIN)
			v = v > 0.5 ? 1.0 : 0.0;
		p->sol[j] = v;
		obj += p->cost[j] * v;
	}
	p->ncols_sol = p->ncols;
	r->objective = obj;
}

/* Relative gap as GLPK defines it: |obj - bound| / (eps + |obj|). */
static double rel_gap(double obj, double bound)
{
	if (bound == -INFINITY)
		return INFINITY;
	if (bound >= obj)
		return 0.0;
	return (obj - bound) / (DBL_EPSILON + fabs(obj));
}

/*
 * LP relaxation: scaled, from Bixby's crash basis, dual simplex (primal
 * where the basis is not dual feasible).  Of the combinations tried
 * (primal/dual, standard/advanced/crash basis, with and without the LP or
 * MIP presolver) this was fastest both on one-hot groups with a memory row
 * (50k columns: 1.4 s against 3.2 s from the slack basis) and on the pass's
 * chain-with-skips form (25k columns: 1.06 s against 1.11 s; glp_intopt's
 * presolver took 1.63 s).  Returns 1 with an optimal basis in P, else 0
 * with r filled.
 */
static int solve_lp(IlpProblem *p, glp_prob *P, const IlpOptions *o, double deadline,
		    IlpResult *r)
{
	glp_scale_prob(P, GLP_SF_AUTO);
	glp_smcp sm;
	glp_init_smcp(&sm);
	sm.msg_lev = o->verbose ? GLP_MSG_ON : GLP_MSG_OFF;
	sm.tm_lim = ms_left(deadline);
	if (o->iter_limit > 0)
		sm.it_lim = o->iter_limit;
	int ret = -1;
	if (p->nwarm == p->nrows + p->ncols && p->nwarm > 0) {
		/* the basis of a problem with the same rows: primal feasible when
		 * only costs changed, so primal simplex starts from it; any
		 * failure falls back to the cold start below */
		for (int i = 0; i < p->nrows; i++)
			glp_set_row_stat(P, i + 1, p->warm[i]);
		for (int j = 0; j < p->ncols; j++)
			glp_set_col_stat(P, j + 1, p->warm[p->nrows + j]);
		sm.meth = GLP_PRIMAL;
		ret = glp_simplex(P, &sm);
		if (ret == 0 && glp_get_status(P) != GLP_OPT)
			ret = -1;
		if (ret == GLP_ETMLIM || ret == GLP_EITLIM)
			ret = -1; /* the cold start gets the whole limit again (or hits it too) */
	}
	if (ret != 0) {
		glp_cpx_basis(P);
		sm.meth = GLP_DUALP;
		ret = glp_simplex(P, &sm);
	}
	int lp = ret == 0 ? glp_get_status(P) : GLP_UNDEF;
	if (ret == GLP_ETMLIM)
		say(r, ILP_TIMEOUT, "time limit %g s reached while solving the LP relaxation",
		    o->time_limit_s);
	else if (ret == GLP_EITLIM)
		say(r, ILP_TIMEOUT, "iteration limit %d reached while solving the LP relaxation",
		    o->iter_limit);
	else if (ret != 0)
		say(r, ILP_ERROR, "LP relaxation failed: glp_simplex returned %s", glpk_code(ret));
	else if (lp == GLP_NOFEAS)
		say(r, ILP_INFEASIBLE, "infeasible: the rows contradict each other even with "
				       "fractional values (LP relaxation infeasible)");
	else if (lp == GLP_UNBND)
		say(r, ILP_ERROR, "unbounded: the objective decreases without limit");
	else if (lp != GLP_OPT)
		say(r, ILP_ERROR, "LP relaxation ended with status %d", lp);
	if (ret == 0 && lp == GLP_OPT) {
		for (int i = 0; i < p->nrows; i++)
			p->basis[i] = (signed char)glp_get_row_stat(P, i + 1);
		for (int j = 0; j < p->ncols; j++)
			p->basis[p->nrows + j] = (signed char)glp_get_col_stat(P, j + 1);
		p->nbasis = p->nrows + p->ncols;
	}
	return ret == 0 && lp == GLP_OPT;
}

/* When P's optimal LP solution is integral in every binary, it is an
 * optimum of the ILP too (the relaxation's optimum bounds the ILP's, and it
 * is a feasible 0-1 assignment): takes it into p->sol and r, and returns 1,
 * so that branch-and-bound (and its preprocessing and root re-solve) is
 * skipped.  0 otherwise. */
static int take_integral_lp(IlpProblem *p, glp_prob *P, IlpResult *r)
{
	const double tol = 1e-7;
	for (int j = 0; j < p->ncols; j++) {
		if (p->kind[j] != COL_BIN)
			continue;
		double v = glp_get_col_prim(P, j + 1);
		if (fabs(v) > tol && fabs(v - 1.0) > tol)
			return 0;
	}
	double obj = 0.0;
	for (int j = 0; j < p->ncols; j++) {
		double v = glp_get_col_prim(P, j + 1);
		if (p->kind[j] == COL_BIN)
			v = v > 0.5 ? 1.0 : 0.0;
		p->sol[j] = v;
		obj += p->cost[j] * v;
	}
	p->ncols_sol = p->ncols;
	r->objective = obj;
	r->gap = 0.0;
	say(r, ILP_OPTIMAL, "optimal: objective %.9g (the LP relaxation is integral)", obj);
	return 1;
}

/* Branch-and-bound from P's optimal LP basis; fills r and, if there is one, p->sol. */
static void solve_mip(IlpProblem *p, glp_prob *P, const IlpOptions *o, double deadline,
		      IlpResult *r, GlpkCtx *c)
{
	c->bound = glp_get_obj_val(P);
	glp_iocp io;
	glp_init_iocp(&io);
	io.msg_lev = o->verbose ? GLP_MSG_ON : GLP_MSG_OFF;
	io.tm_lim = ms_left(deadline);
	io.mip_gap = o->mip_gap;
	/* cuts (Gomory, MIR, cover, clique) close most of the gap at the root:
	 * GPT-3 39B's layer ILPs on 2D meshes that branched over 105 and 395
	 * nodes without them (19,881 columns) took 1 to 5 with them, the
	 * compiled plan the same */
	io.gmi_cuts = io.mir_cuts = io.cov_cuts = io.clq_cuts = GLP_ON;
	io.cb_func = on_tree;
	io.cb_info = c;
	int ret = glp_intopt(P, &io);
	int mip = glp_mip_status(P);
	int has = mip == GLP_OPT || mip == GLP_FEAS;
	if (has)
		take_solution(p, P, r);
	if (ret == 0 && mip == GLP_OPT) {
		r->gap = 0.0;
		say(r, ILP_OPTIMAL, "optimal: objective %.9g", r->objective);
	} else if (ret == 0 && mip == GLP_NOFEAS) {
		say(r, ILP_INFEASIBLE, "infeasible: the LP relaxation is feasible but no assignment "
				       "with 0-1 binaries satisfies the rows");
	} else if (ret == GLP_EMIPGAP && has) {
		r->gap = rel_gap(r->objective, c->bound);
		if (r->gap > o->mip_gap)
			r->gap = o->mip_gap; /* GLPK measured it <= mip_gap; our bound may be staler */
		say(r, ILP_OPTIMAL, "optimal within gap %g: objective %.9g, gap %.3g", o->mip_gap,
		    r->objective, r->gap);
	} else if (ret == GLP_ETMLIM && has) {
		r->gap = rel_gap(r->objective, c->bound);
		say(r, ILP_FEASIBLE, "time limit %g s reached: objective %.9g, bound %.9g, gap %.3g",
		    o->time_limit_s, r->objective, c->bound, r->gap);
	} else if (ret == GLP_ETMLIM) {
		say(r, ILP_TIMEOUT, "time limit %g s reached before any feasible assignment was found",
		    o->time_limit_s);
	} else if (ret == GLP_ESTOP && c->node_stop && has) {
		r->gap = rel_gap(r->objective, c->bound);
		say(r, ILP_FEASIBLE, "node limit %d reached: objective %.9g, bound %.9g, gap %.3g",
		    o->node_limit, r->objective, c->bound, r->gap);
	} else if (ret == GLP_ESTOP && c->node_stop) {
		say(r, ILP_TIMEOUT, "node limit %d reached before any feasible assignment was found",
		    o->node_limit);
	} else {
		say(r, ILP_ERROR, "branch-and-bound failed: glp_intopt returned %s, status %d",
		    glpk_code(ret), mip);
	}
}

/*
 * Builds and solves p in the calling thread's GLPK environment, which it
 * creates and frees.  All state that must survive a longjmp is in *c or *r.
 */
static void run_glpk(IlpProblem *p, const IlpOptions *o, double t0, IlpResult *r, GlpkCtx *c)
{
	int env = glp_init_env();
	if (env != 0 && env != 1) {
		say(r, ILP_ERROR, "GLPK environment could not be created (code %d)", env);
		return;
	}
	glp_term_hook(on_term, c);
	glp_error_hook(on_error, c);
	if (setjmp(c->jmp)) {
		/* on_error freed the environment, our glp_prob with it */
		while (c->glpk_len > 0 && strchr("; ", c->glpk_msg[c->glpk_len - 1]))
			c->glpk_msg[--c->glpk_len] = '\0';
		say(r, ILP_ERROR, "GLPK error: %s", c->glpk_len ? c->glpk_msg : "(no message)");
		return;
	}
	glp_term_out(o->verbose ? GLP_ON : GLP_OFF);
	if (o->mem_limit_mb > 0)
		glp_mem_limit(o->mem_limit_mb);
	double deadline = o->time_limit_s > 0 ? t0 + o->time_limit_s : INFINITY;
	glp_prob *P = glp_create_prob();
	load(p, P);
	r->build_time_s = now_s() - t0;
	if (solve_lp(p, P, o, deadline, r) && !take_integral_lp(p, P, r)) {
		if (o->no_branch)
			say(r, ILP_FRACTIONAL, "the LP relaxation is fractional (objective %.9g); "
			    "branching not asked for", glp_get_obj_val(P));
		else
			solve_mip(p, P, o, deadline, r, c);
	}
	glp_delete_prob(P);
	glp_free_env();
}

/* ------------------------------------------------------------------ */
/* The solve memo.                                                      */

/*
 * GLPK is deterministic: the same columns, rows, matrix (in the same
 * order), options and starting basis give the same assignment, basis and
 * status on every run.  A planning run poses many problems more than
 * once: the same stage sharded whole for the refinement, for the other
 * stage counts, for the polish and for the Megatron-style neighbours, the
 * same layer on equal sub-meshes.  The memo keeps each solved problem's
 * result under a 128-bit digest of everything GLPK reads, and a problem
 * with the same digest takes the result instead of a solve.  Solves under
 * a time limit (a clock decided them) and verbose ones are not kept.
 * Bounded in bytes, oldest dropped first; the result of a solve never
 * depends on whether it came from the memo.
 */
typedef struct Memo {
	uint64_t h[2];
	int ncols, nrows, nnz;
	IlpResult r;
	int *nz_at;   /* the assignment's nonzero columns */
	double *nz;   /* and their values */
	int nnz_sol, ncols_sol;
	signed char *basis;
	int nbasis;
	size_t bytes;
	struct Memo *next;
} Memo;

static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;
static Memo *memo_head, *memo_tail;
static size_t memo_bytes;
static const size_t memo_cap = (size_t)128 << 20;
static long memo_hits, memo_misses;
static bool memo_on = true, memo_exit;

typedef struct {
	uint64_t a, b;
} Digest;

static inline void dg_word(Digest *d, uint64_t w)
{
	d->a = (d->a ^ w) * 0x100000001b3ull;
	d->a ^= d->a >> 29;
	d->b = (d->b + w) * 0x9e3779b97f4a7c15ull;
	d->b ^= d->b >> 31;
}

static void dg_bytes(Digest *d, const void *v, size_t n)
{
	const unsigned char *c = v;
	uint64_t w;
	dg_word(d, (uint64_t)n);
	for (; n >= 8; n -= 8, c += 8) {
		memcpy(&w, c, 8);
		dg_word(d, w);
	}
	w = 0;
	if (n)
		memcpy(&w, c, n);
	dg_word(d, w);
}

static Digest digest(const IlpProblem *p, const IlpOptions *o)
{
	Digest d = {0xcbf29ce484222325ull, 0x6a09e667f3bcc909ull};
	int opts[5] = {o->node_limit, o->iter_limit, o->mem_limit_mb, p->nwarm, o->no_branch};
	dg_bytes(&d, opts, sizeof opts);
	dg_bytes(&d, &o->mip_gap, sizeof o->mip_gap);
	dg_bytes(&d, p->kind, (size_t)p->ncols);
	dg_bytes(&d, p->lo, sizeof(double) * (size_t)p->ncols);
	dg_bytes(&d, p->hi, sizeof(double) * (size_t)p->ncols);
	dg_bytes(&d, p->cost, sizeof(double) * (size_t)p->ncols);
	dg_bytes(&d, p->sense, (size_t)p->nrows);
	dg_bytes(&d, p->rhs, sizeof(double) * (size_t)p->nrows);
	if (p->nnz > 0) {
		dg_bytes(&d, p->nz_row + 1, sizeof(int) * (size_t)p->nnz);
		dg_bytes(&d, p->nz_col + 1, sizeof(int) * (size_t)p->nnz);
		dg_bytes(&d, p->nz_val + 1, sizeof(double) * (size_t)p->nnz);
	}
	if (p->nwarm > 0)
		dg_bytes(&d, p->warm, (size_t)p->nwarm);
	/* a final mix so that each lane depends on the other */
	d.a ^= d.b >> 17;
	d.b ^= d.a << 13;
	return d;
}

static void memo_drop(Memo *m)
{
	free(m->nz_at);
	free(m->nz);
	free(m->basis);
	free(m);
}

static void memo_free_all(void)
{
	pthread_mutex_lock(&memo_lock);
	while (memo_head) {
		Memo *m = memo_head;
		memo_head = m->next;
		memo_drop(m);
	}
	memo_tail = NULL;
	memo_bytes = 0;
	pthread_mutex_unlock(&memo_lock);
}

/* The kept result of a problem with digest d into p and r: true, or false
 * when there is none. */
static bool memo_take(const Digest *d, IlpProblem *p, IlpResult *r)
{
	bool hit = false;
	pthread_mutex_lock(&memo_lock);
	for (Memo *m = memo_head; m; m = m->next) {
		if (m->h[0] != d->a || m->h[1] != d->b || m->ncols != p->ncols ||
		    m->nrows != p->nrows || m->nnz != p->nnz)
			continue;
		*r = m->r;
		if (m->ncols_sol)
			memset(p->sol, 0, sizeof(double) * (size_t)m->ncols_sol);
		for (int k = 0; k < m->nnz_sol; k++)
			p->sol[m->nz_at[k]] = m->nz[k];
		p->ncols_sol = m->ncols_sol;
		if (m->nbasis)
			memcpy(p->basis, m->basis, (size_t)m->nbasis);
		p->nbasis = m->nbasis;
		hit = true;
		break;
	}
	if (hit)
		memo_hits++;
	else
		memo_misses++;
	pthread_mutex_unlock(&memo_lock);
	return hit;
}

static void memo_keep(const Digest *d, const IlpProblem *p, const IlpResult *r)
{
	int n = 0;
	for (int j = 0; j < p->ncols_sol; j++)
		n += p->sol[j] != 0.0;
	size_t bytes = sizeof(Memo) + (sizeof(int) + sizeof(double)) * (size_t)n + (size_t)p->nbasis;
	if (bytes > memo_cap / 4)
		return;
	Memo *m = calloc(1, sizeof *m);
	if (!m)
		return;
	m->nz_at = n ? malloc(sizeof(int) * (size_t)n) : NULL;
	m->nz = n ? malloc(sizeof(double) * (size_t)n) : NULL;
	m->basis = p->nbasis ? malloc((size_t)p->nbasis) : NULL;
	if ((n && (!m->nz_at || !m->nz)) || (p->nbasis && !m->basis)) {
		memo_drop(m);
		return;
	}
	m->h[0] = d->a;
	m->h[1] = d->b;
	m->ncols = p->ncols;
	m->nrows = p->nrows;
	m->nnz = p->nnz;
	m->r = *r;
	m->ncols_sol = p->ncols_sol;
	m->nbasis = p->nbasis;
	m->bytes = bytes;
	for (int j = 0; j < p->ncols_sol; j++)
		if (p->sol[j] != 0.0) {
			m->nz_at[m->nnz_sol] = j;
			m->nz[m->nnz_sol++] = p->sol[j];
		}
	if (p->nbasis)
		memcpy(m->basis, p->basis, (size_t)p->nbasis);
	pthread_mutex_lock(&memo_lock);
	if (!memo_exit) {
		memo_exit = true;
		atexit(memo_free_all);
	}
	if (memo_tail)
		memo_tail->next = m;
	else
		memo_head = m;
	memo_tail = m;
	memo_bytes += bytes;
	while (memo_bytes > memo_cap && memo_head) {
		Memo *o = memo_head;
		memo_head = o->next;
		if (!memo_head)
			memo_tail = NULL;
		memo_bytes -= o->bytes;
		memo_drop(o);
	}
	pthread_mutex_unlock(&memo_lock);
}

void ilp_memo_set(bool on)
{
	pthread_mutex_lock(&memo_lock);
	memo_on = on;
	pthread_mutex_unlock(&memo_lock);
	if (!on)
		memo_free_all();
}

void ilp_memo_stats(long *hits, long *misses)
{
	pthread_mutex_lock(&memo_lock);
	if (hits)
		*hits = memo_hits;
	if (misses)
		*misses = memo_misses;
	pthread_mutex_unlock(&memo_lock);
}

/* Serialises solves when GLPK keeps its environment in one global. */
static pthread_mutex_t glpk_lock = PTHREAD_MUTEX_INITIALIZER;

IlpStatus ilp_solve(IlpProblem *p, const IlpOptions *o, IlpResult *r)
{
	static const IlpOptions none;
	if (!r)
		return ILP_ERROR;
	memset(r, 0, sizeof *r);
	r->objective = NAN;
	r->gap = NAN;
	if (!p) {
		say(r, ILP_ERROR, "no problem given");
		return r->status;
	}
	p->ncols_sol = 0;
	r->ncols = p->ncols;
	r->nrows = p->nrows;
	if (!o)
		o = &none;
	if (!(o->time_limit_s >= 0 && o->time_limit_s < 1e9) || !(o->mip_gap >= 0 && o->mip_gap < 1e9) ||
	    o->mem_limit_mb < 0 || o->node_limit < 0 || o->iter_limit < 0) {
		say(r, ILP_ERROR,
		    "bad options: time_limit_s %g, mip_gap %g, mem_limit_mb %d, node_limit %d, "
		    "iter_limit %d",
		    o->time_limit_s, o->mip_gap, o->mem_limit_mb, o->node_limit, o->iter_limit);
		return r->status;
	}
	/* room for the assignment, taken before GLPK runs so that a longjmp cannot leak it */
	double *sol = realloc(p->sol, (p->ncols > 0 ? (size_t)p->ncols : 1) * sizeof *sol);
	if (!sol) {
		say(r, ILP_ERROR, "out of memory for %d columns", p->ncols);
		return r->status;
	}
	p->sol = sol;
	signed char *basis = realloc(p->basis, (size_t)(p->nrows + p->ncols + 1));
	if (!basis) {
		say(r, ILP_ERROR, "out of memory for %d columns", p->ncols);
		return r->status;
	}
	p->basis = basis;
	p->nbasis = 0;
	double t0 = now_s();
	pthread_mutex_lock(&memo_lock);
	bool memo = memo_on && !(o->time_limit_s > 0) && !o->verbose;
	pthread_mutex_unlock(&memo_lock);
	Digest d = {0, 0};
	if (memo) {
		d = digest(p, o);
		if (memo_take(&d, p, r)) {
			r->build_time_s = 0;
			r->solve_time_s = now_s() - t0;
			return r->status;
		}
	}
	bool serial = !ilp_thread_safe();
	if (serial)
		pthread_mutex_lock(&glpk_lock);
	GlpkCtx c = { .verbose = o->verbose, .bound = -INFINITY, .node_limit = o->node_limit };
	run_glpk(p, o, t0, r, &c);
	r->solve_time_s = now_s() - t0;
	r->nodes = c.nodes;
	if (serial)
		pthread_mutex_unlock(&glpk_lock);
	if (r->status != ILP_OPTIMAL && r->status != ILP_FEASIBLE) {
		p->ncols_sol = 0;
		r->objective = NAN;
		r->gap = NAN;
	}
	if (memo && r->status != ILP_ERROR)
		memo_keep(&d, p, r);
	return r->status;
}
