/*
 * ilp.h -- a small 0-1 / mixed integer program builder over GLPK 5.0.
 *
 * The intra-operator pass builds problems with thousands of binaries:
 * one-hot rows (sum = 1), linearisation rows (sum - var <= 0), perhaps a
 * knapsack-style memory row, and a linear objective to minimise.  This
 * module collects columns and rows in its own arrays (adding is O(entries),
 * no GLPK call) and hands them to GLPK in bulk at ilp_solve().
 *
 * Errors.  No function prints, exits or aborts.  Bad arguments give -1 (and
 * ilp_last_error() says why) or ILP_ERROR; a GLPK internal error, which by
 * default aborts the process, is caught by an error hook that frees the
 * thread's GLPK environment and longjmps back, so it becomes ILP_ERROR with
 * GLPK's own text in IlpResult.message.
 *
 * Threads.  Debian's GLPK 5.0 is built with thread-local storage
 * (glp_config("TLS") returns "_Thread_local"): each thread has its own GLPK
 * environment, so solves of *different* IlpProblems may run in parallel
 * threads.  ilp_solve() creates the calling thread's environment, solves,
 * copies the solution out and frees the environment (glp_free_env) before
 * it returns, so no GLPK memory outlives a call and threads may exit
 * freely.  (Consequence: nothing else in the process may keep GLPK objects
 * alive across an ilp_solve() in the same thread; solver/ is the only user
 * of GLPK.)  Should the library found at run time lack TLS, ilp_solve()
 * takes a process-wide mutex instead, i.e. solves are then serialised.
 * ilp_thread_safe() tells which.  One IlpProblem must not be used by two
 * threads at once.
 *
 * Indices are 0-based here; GLPK's 1-based numbering never shows.
 */
#ifndef MESHPLAN_ILP_H
#define MESHPLAN_ILP_H

#include <stdbool.h>

typedef struct IlpProblem IlpProblem;

typedef enum {
	ILP_EQ, /* sum a_j x_j  = rhs */
	ILP_LE, /* sum a_j x_j <= rhs */
	ILP_GE, /* sum a_j x_j >= rhs */
} IlpSense;

typedef enum {
	ILP_OPTIMAL,    /* proven optimal (within IlpOptions.mip_gap if > 0) */
	ILP_FEASIBLE,   /* a limit hit; the incumbent is returned with its gap */
	ILP_INFEASIBLE, /* no assignment satisfies the rows */
	ILP_TIMEOUT,    /* a limit hit before any feasible assignment was found */
	ILP_ERROR,      /* bad options, unbounded objective, or a GLPK failure */
	ILP_FRACTIONAL, /* IlpOptions.no_branch: the LP relaxation's optimum is not integral
	                 * (no assignment; its basis is readable with ilp_basis) */
} IlpStatus;

typedef struct IlpOptions {
	double time_limit_s; /* wall clock for the whole solve (LP and branch-and-bound), 0 = none;
	                      * the result then depends on the machine's speed and load, so a
	                      * user's choice only (work limits below give the same answer
	                      * everywhere) */
	int node_limit;      /* branch-and-bound subproblems created, 0 = none (a work limit) */
	int iter_limit;      /* simplex iterations of the LP relaxation, 0 = none (a work limit) */
	double mip_gap;      /* stop once (incumbent - bound) / |incumbent| <= mip_gap; 0 = exact */
	int mem_limit_mb;    /* cap on GLPK's heap in MiB, 0 = none; exceeding it gives ILP_ERROR */
	int verbose;         /* nonzero: let GLPK print its progress on stdout */
	bool no_branch;      /* stop at the root: ILP_FRACTIONAL where the LP relaxation's
	                      * optimum is not integral, instead of branch-and-bound */
} IlpOptions;

typedef struct IlpResult {
	IlpStatus status;
	double objective;    /* of the returned assignment; NAN when there is none */
	double gap;          /* relative gap of that assignment to the best bound: 0 when
	                      * proven optimal, INFINITY when no bound is known, NAN when
	                      * there is no assignment */
	double build_time_s; /* time to hand the problem to GLPK */
	double solve_time_s; /* whole ilp_solve(), build included */
	int ncols, nrows;    /* size of the problem solved */
	int nodes;           /* branch-and-bound subproblems created (0: solved at the root LP) */
	char message[256];   /* one line on what happened, never empty after ilp_solve() */
} IlpResult;

/* A new empty problem (minimisation), or NULL when out of memory. */
IlpProblem *ilp_new(void);
void ilp_free(IlpProblem *p);

/*
 * Adds a 0-1 variable with objective coefficient `cost`.  Returns its column
 * index (0, 1, 2, ... in order of addition) or -1 if cost is not finite or
 * memory runs out.
 */
int ilp_add_binary(IlpProblem *p, double cost);

/*
 * Adds a continuous variable lo <= x <= hi (lo may be -INFINITY, hi
 * INFINITY).  Returns its column index or -1 if lo > hi, a bound is NaN,
 * lo = +inf, hi = -inf, or cost is not finite.
 */
int ilp_add_continuous(IlpProblem *p, double lo, double hi, double cost);

/*
 * Adds the row sum_k vals[k] * x[cols[k]] (sense) rhs.  Entries naming the
 * same column twice are summed; zero coefficients are dropped.  Returns the
 * row index, or -1 (problem unchanged) if n < 0, a column does not exist, a
 * value or rhs is not finite, or memory runs out.
 */
int ilp_add_row(IlpProblem *p, int n, const int *cols, const double *vals, IlpSense sense,
		double rhs);

/* Sizes of the problem as built so far. */
int ilp_ncols(const IlpProblem *p);
int ilp_nrows(const IlpProblem *p);
int ilp_nnz(const IlpProblem *p);

/* Why the last ilp_add_* on p returned -1 ("" if none did). */
const char *ilp_last_error(const IlpProblem *p);

/*
 * Minimises the objective.  `o` may be NULL (no limits, exact).  Fills *r
 * (required) and returns r->status.  After ILP_OPTIMAL or ILP_FEASIBLE the
 * assignment is readable with ilp_value().  The problem is not changed and
 * may be extended and solved again.
 */
IlpStatus ilp_solve(IlpProblem *p, const IlpOptions *o, IlpResult *r);

/*
 * Value of column `col` in the assignment of the last solve: exactly 0.0 or
 * 1.0 for binaries.  NAN if the last solve returned no assignment (or there
 * was none yet) or col is out of range.
 */
double ilp_value(const IlpProblem *p, int col);

/*
 * The optimal basis of the last solve's LP relaxation: n (rows + columns)
 * statuses, rows first; NULL and n = 0 when it found none.  Valid until
 * the next solve or ilp_free.
 */
const signed char *ilp_basis(const IlpProblem *p, int *n);

/*
 * Starts the next solve's LP from `basis` (from ilp_basis of a problem
 * with the same rows and columns in the same order, costs may differ):
 * primal simplex from it, falling back to the cold start when n is not
 * rows + columns at solve time or the basis does not lead to the optimum.
 * The optimum is the same either way; among equal optima another may be
 * returned.  0, or -1 when out of memory.
 */
int ilp_warm_start(IlpProblem *p, const signed char *basis, int n);

/* "optimal", "feasible", "infeasible", "timeout", "error", "fractional". */
const char *ilp_status_name(IlpStatus s);

/*
 * The solve memo (on by default): a problem identical to one solved before
 * in this process (columns, rows, matrix, options, starting basis) takes
 * that solve's result, which GLPK would return again.  ilp_memo_set(false)
 * turns it off and empties it; ilp_memo_stats counts the solves that took
 * a kept result (hits) and those that ran (misses).
 */
void ilp_memo_set(bool on);
void ilp_memo_stats(long *hits, long *misses);

/* True when GLPK keeps its state per thread, so solves run in parallel. */
bool ilp_thread_safe(void);

#endif
