/*
 * elim.h -- exact minimisation of a sum of unary and pairwise costs over
 * discrete variables, by variable elimination (min-sum bucket elimination,
 * Dechter 1999; for a chain it is the Viterbi recursion).
 *
 *   minimise  sum_v u_v(x_v) + sum_(a,b) C_ab(x_a, x_b),  x_v in 0..n_v-1
 *
 * The elimination order is greedy, least new-table size first.  Work and
 * memory grow with the product of the domains of a variable's neighbours
 * when it is eliminated (the graph's induced width), so a problem whose
 * order would exceed a work bound is refused, and the caller solves it
 * another way (an ILP).  Deterministic: the same problem gives the same
 * assignment; among equal minima the one found first in the order.
 */
#ifndef MESHPLAN_SOLVER_ELIM_H
#define MESHPLAN_SOLVER_ELIM_H

#include <stdbool.h>

typedef struct ElimProblem ElimProblem;

/* n variables with dom[v] >= 1 values each and unary costs unary[v][x]
 * (copied; NULL: zero). */
ElimProblem *elim_new(int n, const int *dom, const double *const *unary);
void elim_free(ElimProblem *p);

/* Adds C(x_a, x_b) = C[x_a * dom[b] + x_b] (copied), a != b.  0, or -1
 * on a bad variable or out of memory. */
int elim_add_pair(ElimProblem *p, int a, int b, const double *C);

/*
 * Minimises: writes the assignment into x[n] and the minimum into *min.
 * 0 when solved; 1 when the elimination order would take more than
 * max_work table entries (summed over eliminations) or any one table more
 * than max_table entries (x untouched); -1 out of memory.
 */
int elim_solve(ElimProblem *p, double max_work, double max_table, int *x, double *min);

/*
 * Numbers items 0..n-1 by class: items i and j share a class when
 * same(i, j, ctx) (an equivalence); cls[i] gets the class, numbered in
 * order of first appearance; returns the number of classes.  rep (room
 * for n) receives each class's first item.
 */
int elim_classes(int n, bool (*same)(int i, int j, const void *ctx), const void *ctx, int *cls,
		 int *rep);

/* After elim_solve returned 0: the largest number of neighbours a
 * variable had when eliminated (the order's induced width). */
int elim_width(const ElimProblem *p);

#endif
