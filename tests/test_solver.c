/*
 * test_solver.c -- solver/ilp: known optima, the one-hot and linearisation
 * rows of the intra-op pass, infeasibility, time limits, agreement with
 * brute force, errors as return codes, and parallel solves.
 */
#include <criterion/criterion.h>
#include <glpk.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solver/ilp.h"

static const double ONES[64] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* Deterministic generator (xorshift64*), so every run sees the same problems. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}
static int rng_int(uint64_t *s, int lo, int hi) /* inclusive */
{
	return lo + (int)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

/* ------------------------------------------------------------------ */
/* Known optima.                                                        */

/* Burkardt's P01 knapsack: capacity 165, optimum profit 309 by items 1,2,3,4,6. */
Test(ilp, knapsack_p01_has_profit_309_with_items_1_2_3_4_6)
{
	static const double w[10] = { 23, 31, 29, 44, 53, 38, 63, 85, 89, 82 };
	static const double v[10] = { 92, 57, 49, 68, 60, 43, 67, 84, 87, 72 };
	static const double want[10] = { 1, 1, 1, 1, 0, 1, 0, 0, 0, 0 };
	IlpProblem *p = ilp_new();
	int cols[10];
	for (int j = 0; j < 10; j++)
		cols[j] = ilp_add_binary(p, -v[j]);
	cr_assert_eq(ilp_add_row(p, 10, cols, w, ILP_LE, 165), 0);
	IlpResult r;
	cr_assert_eq(ilp_solve(p, NULL, &r), ILP_OPTIMAL, "%s", r.message);
	cr_assert_float_eq(r.objective, -309.0, 1e-9);
	cr_assert_eq(r.gap, 0.0);
	for (int j = 0; j < 10; j++)
		cr_assert_eq(ilp_value(p, cols[j]), want[j], "item %d", j + 1);
	cr_assert_eq(r.ncols, 10);
	cr_assert_eq(r.nrows, 1);
	ilp_free(p);
}

/* Burkardt's P01 knapsack posed three times: the repeated problem takes
 * the memo's result, a changed capacity is solved anew; every optimum is
 * checked against brute force over the 1024 subsets. */
static double knapsack_brute(const double *w, const double *v, double cap)
{
	double best = 0;
	for (int m = 0; m < 1024; m++) {
		double ws = 0, vs = 0;
		for (int j = 0; j < 10; j++)
			if (m >> j & 1) {
				ws += w[j];
				vs += v[j];
			}
		if (ws <= cap && vs > best)
			best = vs;
	}
	return best;
}

Test(ilp, an_identical_problem_takes_the_memo_and_a_changed_one_is_solved)
{
	static const double w[10] = {23, 31, 29, 44, 53, 38, 63, 85, 89, 82};
	static const double v[10] = {92, 57, 49, 68, 60, 43, 67, 84, 87, 72};
	const double caps[3] = {165, 165, 150};
	long h0, m0, h, m;
	ilp_memo_stats(&h0, &m0);
	for (int k = 0; k < 3; k++) {
		IlpProblem *p = ilp_new();
		int cols[10];
		for (int j = 0; j < 10; j++)
			cols[j] = ilp_add_binary(p, -v[j]);
		cr_assert_eq(ilp_add_row(p, 10, cols, w, ILP_LE, caps[k]), 0);
		IlpResult r;
		cr_assert_eq(ilp_solve(p, NULL, &r), ILP_OPTIMAL, "%s", r.message);
		cr_expect_float_eq(r.objective, -knapsack_brute(w, v, caps[k]), 1e-9);
		double got = 0, used = 0;
		for (int j = 0; j < 10; j++) {
			got += v[j] * ilp_value(p, cols[j]);
			used += w[j] * ilp_value(p, cols[j]);
		}
		cr_expect_float_eq(got, knapsack_brute(w, v, caps[k]), 1e-9, "capacity %g", caps[k]);
		cr_expect_leq(used, caps[k]);
		ilp_free(p);
		ilp_memo_stats(&h, &m);
		/* other tests may solve in other threads: count at least */
		if (k == 1)
			cr_expect_geq(h - h0, 1, "the repeated problem was solved again");
	}
	cr_expect_geq(m - m0, 2, "the first and the changed problem are misses");
	/* off: nothing is taken */
	ilp_memo_set(false);
	ilp_memo_stats(&h0, NULL);
	IlpProblem *p = ilp_new();
	int cols[10];
	for (int j = 0; j < 10; j++)
		cols[j] = ilp_add_binary(p, -v[j]);
	cr_assert_eq(ilp_add_row(p, 10, cols, w, ILP_LE, 165), 0);
	IlpResult r;
	cr_assert_eq(ilp_solve(p, NULL, &r), ILP_OPTIMAL);
	cr_expect_float_eq(r.objective, -309.0, 1e-9);
	ilp_memo_stats(&h, NULL);
	cr_expect_eq(h, h0);
	ilp_free(p);
	ilp_memo_set(true);
}

/* The textbook 4x4 assignment: minimum cost 13 (2 + 6 + 1 + 4). */
Test(ilp, assignment_4x4_costs_13_with_one_hot_rows_and_columns)
{
	static const double c[4][4] = { { 9, 2, 7, 8 }, { 6, 4, 3, 7 }, { 5, 8, 1, 8 }, { 7, 6, 9, 4 } };
	static const int pick[4] = { 1, 0, 2, 3 };
	IlpProblem *p = ilp_new();
	int x[4][4];
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++)
			x[i][j] = ilp_add_binary(p, c[i][j]);
	for (int i = 0; i < 4; i++) {
		int row[4], col[4];
		for (int j = 0; j < 4; j++)
			row[j] = x[i][j], col[j] = x[j][i];
		cr_assert_geq(ilp_add_row(p, 4, row, ONES, ILP_EQ, 1), 0);
		cr_assert_geq(ilp_add_row(p, 4, col, ONES, ILP_EQ, 1), 0);
	}
	IlpResult r;
	cr_assert_eq(ilp_solve(p, NULL, &r), ILP_OPTIMAL, "%s", r.message);
	cr_assert_float_eq(r.objective, 13.0, 1e-9);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++)
			cr_assert_eq(ilp_value(p, x[i][j]), j == pick[i] ? 1.0 : 0.0);
	ilp_free(p);
}

/* Every one-hot group ends with exactly one chosen strategy, its cheapest. */
Test(ilp, one_hot_groups_each_choose_exactly_their_cheapest_member)
{
	enum { G = 40, K = 6 };
	uint64_t seed = 42;
	IlpProblem *p = ilp_new();
	int x[G][K];
	double want = 0;
	for (int g = 0; g < G; g++) {
		double best = INFINITY;
		for (int k = 0; k < K; k++) {
			double cost = rng_int(&seed, 1, 1000) / 100.0;
			x[g][k] = ilp_add_binary(p, cost);
			best = fmin(best, cost);
		}
		want += best;
		cr_assert_eq(ilp_add_row(p, K, x[g], ONES, ILP_EQ, 1), g);
	}
	IlpResult r;
	cr_assert_eq(ilp_solve(p, NULL, &r), ILP_OPTIMAL, "%s", r.message);
	cr_assert_float_eq(r.objective, want, 1e-9);
	for (int g = 0; g < G; g++) {
		double sum = 0;
		for (int k = 0; k < K; k++)
			sum += ilp_value(p, x[g][k]);
		cr_assert_eq(sum, 1.0, "group %d", g);
	}
	ilp_free(p);
}

/*
 * The intra-op pass's form: two ops with strategies s_u, s_v, an edge with
 * e[i][j] = s_u[i] * s_v[j] linearised by sum e = 1, row sums <= s_u[i],
 * column sums <= s_v[j].  The optimum is min over (i, j) of
 * cu[i] + cv[j] + R[i][j]; here (2, 2) = 3 + 4 + 0 = 7: the other diagonal
 * pairs cost 8, and the two cheapest strategies (u 0, v 1) would need a
 * resharding of 10.
 */
Test(ilp, edge_linearisation_picks_the_pair_minimising_cost_plus_resharding)
{
	static const double cu[3] = { 1, 5, 3 }, cv[3] = { 7, 3, 4 };
	static const double R[3][3] = { { 0, 10, 10 }, { 10, 0, 10 }, { 10, 10, 0 } };
	IlpProblem *p = ilp_new();
	int su[3], sv[3], e[3][3];
	for (int i = 0; i < 3; i++)
		su[i] = ilp_add_binary(p, cu[i]);
	for (int j = 0; j < 3; j++)
		sv[j] = ilp_add_binary(p, cv[j]);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			e[i][j] = ilp_add_binary(p, R[i][j]);
	ilp_add_row(p, 3, su, ONES, ILP_EQ, 1);
	ilp_add_row(p, 3, sv, ONES, ILP_EQ, 1);
	ilp_add_row(p, 9, &e[0][0], ONES, ILP_EQ, 1);
	for (int i = 0; i < 3; i++) {
		int rc[4] = { e[i][0], e[i][1], e[i][2], su[i] };
		int cc[4] = { e[0][i], e[1][i], e[2][i], sv[i] };
		double w[4] = { 1, 1, 1, -1 };
		cr_assert_geq(ilp_add_row(p, 4, rc, w, ILP_LE, 0), 0);
		cr_assert_geq(ilp_add_row(p, 4, cc, w, ILP_LE, 0), 0);
	}
	IlpResult r;
	cr_assert_eq(ilp_solve(p, NULL, &r), ILP_OPTIMAL, "%s", r.message);
	cr_assert_float_eq(r.objective, 7.0, 1e-9);
	cr_assert_eq(ilp_value(p, su[2]), 1.0);
	cr_assert_eq(ilp_value(p, sv[2]), 1.0);
	cr_assert_eq(ilp_value(p, e[2][2]), 1.0);
	ilp_free(p);
}

/* A memory row makes the fast, memory-hungry strategies unaffordable together. */
Test(ilp, memory_row_trades_time_for_memory_within_the_budget)
{
	/* per op: strategy 0 costs 1 s and 4 GB, strategy 1 costs 3 s and 1 GB */
	enum { OPS = 5 };
	IlpProblem *p = ilp_new();
	int all[2 * OPS];
	double mem[2 * OPS];
	for (int v = 0; v < OPS; v++) {
		all[2 * v] = ilp_add_binary(p, 1.0);
		all[2 * v + 1] = ilp_add_binary(p, 3.0);
		mem[2 * v] = 4e9;
		mem[2 * v + 1] = 1e9;
		ilp_add_row(p, 2, &all[2 * v], ONES, ILP_EQ, 1);
	}
	IlpResult r;
	cr_assert_eq(ilp_solve(p, NULL, &r), ILP_OPTIMAL);
	cr_assert_float_eq(r.objective, 5.0, 1e-9); /* no budget: all fast, 20 GB */
	/* 12 GB: k fast ops need 4k + (5 - k) <= 12, so k <= 2: 2*1 + 3*3 = 11 s */
	cr_assert_eq(ilp_add_row(p, 2 * OPS, all, mem, ILP_LE, 12e9), OPS);
	cr_assert_eq(ilp_solve(p, NULL, &r), ILP_OPTIMAL, "%s", r.message);
	cr_assert_float_eq(r.objective, 11.0, 1e-9);
	double used = 0;
	for (int k = 0; k < 2 * OPS; k++)
		used += mem[k] * ilp_value(p, all[k]);
	cr_assert_leq(used, 12e9);
	ilp_free(p);
}

/* Minimise the makespan t of two machines: jobs 3,5,6,7,9 (sum 30) split 15/15. */
Test(ilp, continuous_makespan_over_binary_assignment_is_15)
{
	static const double len[5] = { 3, 5, 6, 7, 9 };
	IlpProblem *p = ilp_new();
	int t = ilp_add_continuous(p, 0, INFINITY, 1.0);
	int a[5], b[5];
	for (int j = 0; j < 5; j++) {
		a[j] = ilp_add_binary(p, 0);
		b[j] = ilp_add_binary(p, 0);
		int pair[2] = { a[j], b[j] };
		ilp_add_row(p, 2, pair, ONES, ILP_EQ, 1);
	}
	int ca[6], cb[6];
	double w[6];
	for (int j = 0; j < 5; j++)
		ca[j] = a[j], cb[j] = b[j], w[j] = len[j];
	ca[5] = cb[5] = t;
	w[5] = -1;
	ilp_add_row(p, 6, ca, w, ILP_LE, 0);
	ilp_add_row(p, 6, cb, w, ILP_LE, 0);
	IlpResult r;
	cr_assert_eq(ilp_solve(p, NULL, &r), ILP_OPTIMAL, "%s", r.message);
	cr_assert_float_eq(r.objective, 15.0, 1e-6);
	cr_assert_float_eq(ilp_value(p, t), 15.0, 1e-6);
	ilp_free(p);
}

Test(ilp, repeated_columns_in_a_row_are_summed)
{
	IlpProblem *p = ilp_new();
	int x = ilp_add_binary(p, -1.0);
	int cols[2] = { x, x };
	cr_assert_eq(ilp_add_row(p, 2, cols, ONES, ILP_LE, 1.5), 0); /* 2x <= 1.5 */
	cr_assert_eq(ilp_nnz(p), 1);
	IlpResult r;
	cr_assert_eq(ilp_solve(p, NULL, &r), ILP_OPTIMAL);
	cr_assert_eq(ilp_value(p, x), 0.0);
	cr_assert_float_eq(r.objective, 0.0, 1e-12);
	/* entries cancelling to zero are dropped */
	double w[2] = { 1, -1 };
	cr_assert_eq(ilp_add_row(p, 2, cols, w, ILP_EQ, 0), 1);
	cr_assert_eq(ilp_nnz(p), 1);
	ilp_free(p);
}

Test(ilp, empty_problem_is_optimal_at_zero)
{
	IlpProblem *p = ilp_new();
	IlpResult r;
	cr_assert_eq(ilp_solve(p, NULL, &r), ILP_OPTIMAL, "%s", r.message);
	cr_assert_eq(r.objective, 0.0);
	cr_assert_eq(r.ncols, 0);
	ilp_free(p);
}

/* ------------------------------------------------------------------ */
/* Infeasibility.                                                       */

Test(ilp, contradicting_rows_are_infeasible)
{
	IlpProblem *p = ilp_new();
	int x[2] = { ilp_add_binary(p, 1), ilp_add_binary(p, 1) };
	ilp_add_row(p, 2, x, ONES, ILP_EQ, 1);
	ilp_add_row(p, 2, x, ONES, ILP_GE, 2);
	IlpResult r;
	cr_assert_eq(ilp_solve(p, NULL, &r), ILP_INFEASIBLE);
	cr_assert_str_eq(ilp_status_name(r.status), "infeasible");
	cr_assert(strstr(r.message, "infeasible"), "%s", r.message);
	cr_assert(isnan(r.objective));
	cr_assert(isnan(ilp_value(p, x[0])));
	ilp_free(p);
}

/* x + y = 1/2 has fractional solutions but no 0-1 one. */
Test(ilp, only_fractional_solutions_is_infeasible)
{
	IlpProblem *p = ilp_new();
	int x[3] = { ilp_add_binary(p, 1), ilp_add_binary(p, 2), ilp_add_binary(p, 3) };
	double w[3] = { 2, 2, 2 };
	ilp_add_row(p, 3, x, w, ILP_EQ, 3); /* x + y + z = 1.5 */
	IlpResult r;
	cr_assert_eq(ilp_solve(p, NULL, &r), ILP_INFEASIBLE, "%s", r.message);
	cr_assert(strstr(r.message, "infeasible"), "%s", r.message);
	ilp_free(p);
}

Test(ilp, an_empty_row_that_cannot_hold_is_infeasible)
{
	IlpProblem *p = ilp_new();
	ilp_add_binary(p, 1);
	cr_assert_eq(ilp_add_row(p, 0, NULL, NULL, ILP_GE, 1), 0); /* 0 >= 1 */
	IlpResult r;
	cr_assert_eq(ilp_solve(p, NULL, &r), ILP_INFEASIBLE, "%s", r.message);
	ilp_free(p);
}

/* Knapsack max x + y + z, 2x + 2y + 2z <= 3: the LP optimum puts 1.5 in
 * all (fractional, -1.5), the 0-1 optimum takes one item (-1). */
Test(ilp, no_branch_stops_at_a_fractional_root_and_leaves_its_basis)
{
	IlpProblem *p = ilp_new();
	int x[3] = { ilp_add_binary(p, -1), ilp_add_binary(p, -1), ilp_add_binary(p, -1) };
	double w[3] = { 2, 2, 2 };
	ilp_add_row(p, 3, x, w, ILP_LE, 3);
	IlpOptions o = {.no_branch = true};
	IlpResult r;
	cr_assert_eq(ilp_solve(p, &o, &r), ILP_FRACTIONAL, "%s", r.message);
	cr_assert_str_eq(ilp_status_name(r.status), "fractional");
	cr_assert(strstr(r.message, "-1.5"), "%s", r.message);
	cr_assert(isnan(r.objective));
	cr_assert(isnan(ilp_value(p, x[0])));
	int n = 0;
	cr_assert_not_null(ilp_basis(p, &n));
	cr_assert_eq(n, 1 + 3);
	/* branching from that basis (or without the option) reaches the 0-1 optimum */
	o.no_branch = false;
	cr_assert_eq(ilp_solve(p, &o, &r), ILP_OPTIMAL, "%s", r.message);
	cr_assert_float_eq(r.objective, -1.0, 1e-9);
	ilp_free(p);
}

/* An integral root is the answer with or without no_branch. */
Test(ilp, no_branch_changes_nothing_where_the_root_is_integral)
{
	IlpProblem *p = ilp_new();
	int x[2] = { ilp_add_binary(p, 3), ilp_add_binary(p, 1) };
	ilp_add_row(p, 2, x, ONES, ILP_EQ, 1);
	IlpOptions o = {.no_branch = true};
	IlpResult r;
	cr_assert_eq(ilp_solve(p, &o, &r), ILP_OPTIMAL, "%s", r.message);
	cr_assert_float_eq(r.objective, 1.0, 1e-9);
	cr_assert_eq(ilp_value(p, x[1]), 1.0);
	ilp_free(p);
}

/* ------------------------------------------------------------------ */
/* Time limits and gaps.                                                */

/* A 0-1 multidimensional knapsack: easy to find a packing, slow to prove one best. */
static IlpProblem *hard_knapsack(int n, int m, uint64_t seed, double (*w)[150])
{
	IlpProblem *p = ilp_new();
	int cols[150];
	for (int j = 0; j < n; j++)
		cols[j] = ilp_add_binary(p, -(double)rng_int(&seed, 500, 1500));
	for (int i = 0; i < m; i++) {
		double cap = 0;
		for (int j = 0; j < n; j++) {
			w[i][j] = rng_int(&seed, 100, 1000);
			cap += w[i][j];
		}
		ilp_add_row(p, n, cols, w[i], ILP_LE, floor(cap / 2));
	}
	return p;
}

Test(ilp, tiny_time_limit_returns_incumbent_with_gap_or_timeout)
{
	/* GLPK has not closed the gap of this one after 20 s */
	enum { N = 150, M = 10 };
	double w[M][150];
	IlpProblem *p = hard_knapsack(N, M, 7, w);
	IlpOptions o = { .time_limit_s = 0.05 };
	IlpResult r;
	IlpStatus st = ilp_solve(p, &o, &r);
	cr_assert(st == ILP_FEASIBLE || st == ILP_TIMEOUT, "%s: %s", ilp_status_name(st), r.message);
	cr_assert_lt(r.solve_time_s, 2.0, "limit ignored: %g s", r.solve_time_s);
	if (st == ILP_TIMEOUT) {
		cr_assert(isnan(r.objective));
		cr_assert(isnan(ilp_value(p, 0)));
	} else {
		cr_assert_geq(r.gap, 0.0);
		cr_assert_lt(r.gap, 1.0, "gap %g", r.gap);
		double load[M] = { 0 };
		for (int j = 0; j < N; j++) {
			double x = ilp_value(p, j);
			cr_assert(x == 0.0 || x == 1.0);
			for (int i = 0; i < M; i++)
				load[i] += w[i][j] * x;
		}
		for (int i = 0; i < M; i++) {
			double cap = 0;
			for (int j = 0; j < N; j++)
				cap += w[i][j];
			cr_assert_leq(load[i], floor(cap / 2), "row %d overfull", i);
		}
		cr_assert_lt(r.objective, 0.0);
	}
	ilp_free(p);
}

/* A node limit is work, not time: the same problem stops at the same
 * incumbent every time, whatever else the machine is doing. */
Test(ilp, node_limit_stops_at_the_same_incumbent_every_time)
{
	enum { N = 150, M = 10 };
	double w[M][150];
	IlpProblem *p = hard_knapsack(N, M, 7, w);
	IlpOptions o = { .node_limit = 50 };
	IlpResult r1, r2;
	IlpStatus st = ilp_solve(p, &o, &r1);
	cr_assert(st == ILP_FEASIBLE, "%s: %s", ilp_status_name(st), r1.message);
	cr_expect(strstr(r1.message, "node limit 50"), "%s", r1.message);
	cr_expect(r1.nodes >= 50 && r1.nodes <= 52, "stops once 50 subproblems exist: %d",
		  r1.nodes);
	cr_expect_gt(r1.gap, 0.0, "the limit cut the search before the proof");
	double x1[N];
	for (int j = 0; j < N; j++)
		x1[j] = ilp_value(p, j);
	cr_assert_eq(ilp_solve(p, &o, &r2), ILP_FEASIBLE);
	cr_expect_eq(r1.objective, r2.objective);
	cr_expect_eq(r1.nodes, r2.nodes);
	for (int j = 0; j < N; j++)
		cr_expect_eq(ilp_value(p, j), x1[j], "column %d", j);
	ilp_free(p);
}

Test(ilp, an_integral_lp_relaxation_is_taken_without_branching)
{
	/* one-hot rows with distinct costs: the LP optimum is 0-1 already */
	IlpProblem *p = ilp_new();
	int c[3];
	for (int g = 0; g < 4; g++) {
		for (int k = 0; k < 3; k++)
			c[k] = ilp_add_binary(p, 1.0 + g + 0.5 * ((k + g) % 3));
		double one[3] = { 1, 1, 1 };
		ilp_add_row(p, 3, c, one, ILP_EQ, 1);
	}
	IlpResult r;
	cr_assert_eq(ilp_solve(p, NULL, &r), ILP_OPTIMAL, "%s", r.message);
	cr_expect_eq(r.nodes, 0, "no branch-and-bound node");
	cr_expect(strstr(r.message, "integral"), "%s", r.message);
	/* each group takes its cheapest, 1 + g: 4 + 0 + 1 + 2 + 3 */
	cr_expect(fabs(r.objective - 10.0) < 1e-12, "objective %g", r.objective);
	ilp_free(p);
}

Test(ilp, negative_node_or_iteration_limits_are_bad_options)
{
	IlpProblem *p = ilp_new();
	ilp_add_binary(p, 1);
	IlpResult r;
	IlpOptions o1 = { .node_limit = -1 }, o2 = { .iter_limit = -1 };
	cr_expect_eq(ilp_solve(p, &o1, &r), ILP_ERROR);
	cr_expect_eq(ilp_solve(p, &o2, &r), ILP_ERROR);
	ilp_free(p);
}

/* With a 20% gap tolerance the answer may be worse than the optimum, but by at most 20%. */
Test(ilp, mip_gap_tolerance_stops_early_within_that_gap)
{
	double w[4][150];
	IlpProblem *p = hard_knapsack(30, 4, 11, w);
	IlpResult exact, loose;
	cr_assert_eq(ilp_solve(p, NULL, &exact), ILP_OPTIMAL, "%s", exact.message);
	IlpOptions o = { .mip_gap = 0.2 };
	cr_assert_eq(ilp_solve(p, &o, &loose), ILP_OPTIMAL, "%s", loose.message);
	cr_assert_leq(loose.gap, 0.2);
	cr_assert_geq(loose.objective, exact.objective - 1e-9);
	cr_assert_leq(loose.objective, exact.objective * (1 - 0.2) + 1e-9); /* objective < 0 */
	ilp_free(p);
}

/* ------------------------------------------------------------------ */
/* Agreement with brute force.                                          */

typedef struct {
	int n, m;
	double cost[14];
	int nnz[8];
	int col[8][14];
	double val[8][14];
	IlpSense sense[8];
	double rhs[8];
} Small;

/* Random 0-1 problem: n in [4, 14], up to 8 rows of small integer coefficients. */
static void small_random(uint64_t seed, Small *s)
{
	memset(s, 0, sizeof *s);
	s->n = rng_int(&seed, 4, 14);
	s->m = rng_int(&seed, 1, 8);
	for (int j = 0; j < s->n; j++)
		s->cost[j] = rng_int(&seed, -20, 20) + rng_int(&seed, 0, 99) / 100.0;
	for (int i = 0; i < s->m; i++) {
		s->sense[i] = (IlpSense)rng_int(&seed, 0, 2);
		for (int j = 0; j < s->n; j++) {
			if (rng_int(&seed, 0, 2) == 0)
				continue;
			s->col[i][s->nnz[i]] = j;
			s->val[i][s->nnz[i]++] = rng_int(&seed, -5, 9);
		}
		int span = s->nnz[i] * 3;
		s->rhs[i] = s->sense[i] == ILP_EQ ? rng_int(&seed, 0, 6) : rng_int(&seed, -2, span);
	}
}

/* Minimum over all 2^n assignments; INFINITY if none is feasible. */
static double small_brute(const Small *s)
{
	double best = INFINITY;
	for (uint32_t mask = 0; mask < (1u << s->n); mask++) {
		int ok = 1;
		for (int i = 0; i < s->m && ok; i++) {
			double lhs = 0;
			for (int k = 0; k < s->nnz[i]; k++)
				lhs += s->val[i][k] * (double)((mask >> s->col[i][k]) & 1u);
			ok = s->sense[i] == ILP_EQ ? lhs == s->rhs[i]
			   : s->sense[i] == ILP_LE ? lhs <= s->rhs[i] : lhs >= s->rhs[i];
		}
		if (!ok)
			continue;
		double c = 0;
		for (int j = 0; j < s->n; j++)
			c += s->cost[j] * (double)((mask >> j) & 1u);
		best = fmin(best, c);
	}
	return best;
}

static IlpProblem *small_build(const Small *s)
{
	IlpProblem *p = ilp_new();
	for (int j = 0; j < s->n; j++)
		ilp_add_binary(p, s->cost[j]);
	for (int i = 0; i < s->m; i++)
		ilp_add_row(p, s->nnz[i], s->col[i], s->val[i], s->sense[i], s->rhs[i]);
	return p;
}

/* Solves s and checks it against brute force; returns 0 when they agree. */
static int small_check(const Small *s, char *why, size_t n)
{
	double want = small_brute(s);
	IlpProblem *p = small_build(s);
	IlpResult r;
	IlpStatus st = ilp_solve(p, NULL, &r);
	int bad = 0;
	if (want == INFINITY) {
		bad = st != ILP_INFEASIBLE;
	} else if (st != ILP_OPTIMAL || fabs(r.objective - want) > 1e-6) {
		bad = 1;
	} else {
		double c = 0;
		for (int j = 0; j < s->n; j++)
			c += s->cost[j] * ilp_value(p, j);
		bad = fabs(c - want) > 1e-6;
	}
	if (bad)
		snprintf(why, n, "n=%d m=%d: brute force %g, solver %s %g (%s)", s->n, s->m, want,
			 ilp_status_name(st), r.objective, r.message);
	ilp_free(p);
	return bad;
}

Test(ilp, forty_random_binary_problems_match_brute_force)
{
	int infeasible = 0;
	for (uint64_t k = 1; k <= 40; k++) {
		Small s;
		small_random(k * 0x9E3779B97F4A7C15ull, &s);
		char why[400];
		cr_assert_eq(small_check(&s, why, sizeof why), 0, "problem %d: %s", (int)k, why);
		infeasible += small_brute(&s) == INFINITY;
	}
	/* both kinds of answer were exercised */
	cr_assert_gt(infeasible, 0);
	cr_assert_lt(infeasible, 40);
}

/* ------------------------------------------------------------------ */
/* Errors are return codes.                                             */

Test(ilp, rows_naming_missing_columns_or_bad_numbers_are_refused)
{
	IlpProblem *p = ilp_new();
	int x = ilp_add_binary(p, 1);
	int ghost[2] = { x, 5 };
	cr_assert_eq(ilp_add_row(p, 2, ghost, ONES, ILP_LE, 1), -1);
	cr_assert(strstr(ilp_last_error(p), "column 5 does not exist"), "%s", ilp_last_error(p));
	int neg = -1;
	cr_assert_eq(ilp_add_row(p, 1, &neg, ONES, ILP_LE, 1), -1);
	double nan_val = NAN;
	cr_assert_eq(ilp_add_row(p, 1, &x, &nan_val, ILP_LE, 1), -1);
	cr_assert_eq(ilp_add_row(p, 1, &x, ONES, ILP_LE, INFINITY), -1);
	cr_assert_eq(ilp_add_row(p, -1, &x, ONES, ILP_LE, 1), -1);
	cr_assert_eq(ilp_add_row(p, 1, NULL, ONES, ILP_LE, 1), -1);
	cr_assert_eq(ilp_add_row(p, 1, &x, ONES, (IlpSense)7, 1), -1);
	cr_assert_eq(ilp_add_binary(p, INFINITY), -1);
	cr_assert_eq(ilp_add_continuous(p, 2, 1, 0), -1);
	cr_assert_eq(ilp_add_continuous(p, NAN, 1, 0), -1);
	cr_assert_eq(ilp_add_row(NULL, 1, &x, ONES, ILP_LE, 1), -1);
	/* nothing was half-added: the problem is as before and still solves */
	cr_assert_eq(ilp_ncols(p), 1);
	cr_assert_eq(ilp_nrows(p), 0);
	cr_assert_eq(ilp_nnz(p), 0);
	cr_assert_eq(ilp_add_row(p, 1, &x, ONES, ILP_GE, 1), 0);
	cr_assert_str_eq(ilp_last_error(p), "");
	IlpResult r;
	cr_assert_eq(ilp_solve(p, NULL, &r), ILP_OPTIMAL, "%s", r.message);
	cr_assert_eq(r.objective, 1.0);
	ilp_free(p);
}

Test(ilp, bad_options_or_no_problem_give_ilp_error)
{
	IlpProblem *p = ilp_new();
	ilp_add_binary(p, 1);
	IlpResult r;
	IlpOptions o = { .time_limit_s = -1 };
	cr_assert_eq(ilp_solve(p, &o, &r), ILP_ERROR);
	cr_assert(strstr(r.message, "bad options"), "%s", r.message);
	o = (IlpOptions){ .mip_gap = NAN };
	cr_assert_eq(ilp_solve(p, &o, &r), ILP_ERROR);
	cr_assert_eq(ilp_solve(NULL, NULL, &r), ILP_ERROR);
	cr_assert_eq(ilp_solve(p, NULL, NULL), ILP_ERROR);
	cr_assert_str_eq(ilp_status_name(ILP_ERROR), "error");
	ilp_free(p);
}

/* 6250 one-hot groups of 8 plus a memory row over all: 50k columns, 100k nonzeros. */
static IlpProblem *big_one_hot(double *optimum)
{
	enum { G = 6250, K = 8 };
	IlpProblem *p = ilp_new();
	int *all = malloc(sizeof *all * G * K);
	double *mem = malloc(sizeof *mem * G * K);
	uint64_t seed = 3;
	*optimum = 0;
	for (int g = 0; g < G; g++) {
		double best = INFINITY;
		for (int k = 0; k < K; k++) {
			double c = rng_int(&seed, 1, 1000) * 1e-6;
			all[g * K + k] = ilp_add_binary(p, c);
			mem[g * K + k] = 1e6 * (1 + k % 4);
			best = fmin(best, c);
		}
		*optimum += best;
		ilp_add_row(p, K, &all[g * K], ONES, ILP_EQ, 1);
	}
	ilp_add_row(p, G * K, all, mem, ILP_LE, 4e6 * G); /* never binding */
	free(all);
	free(mem);
	return p;
}

/* GLPK's own failure (its heap cap) must come back as ILP_ERROR, and GLPK works afterwards. */
Test(ilp, glpk_internal_error_becomes_ilp_error_and_the_next_solve_works)
{
	double want;
	IlpProblem *p = big_one_hot(&want);
	IlpOptions o = { .mem_limit_mb = 1 };
	IlpResult r;
	cr_assert_eq(ilp_solve(p, &o, &r), ILP_ERROR);
	cr_assert(strstr(r.message, "GLPK error"), "%s", r.message);
	cr_assert(strstr(r.message, "limit"), "%s", r.message);
	cr_assert(isnan(ilp_value(p, 0)));
	ilp_free(p);

	IlpProblem *q = ilp_new();
	int x[2] = { ilp_add_binary(q, 2), ilp_add_binary(q, 1) };
	ilp_add_row(q, 2, x, ONES, ILP_EQ, 1);
	cr_assert_eq(ilp_solve(q, NULL, &r), ILP_OPTIMAL, "%s", r.message);
	cr_assert_eq(r.objective, 1.0);
	ilp_free(q);
}

Test(ilp, fifty_thousand_columns_build_in_well_under_a_second, .timeout = 120)
{
	double want;
	IlpProblem *p = big_one_hot(&want);
	cr_assert_eq(ilp_ncols(p), 50000);
	cr_assert_eq(ilp_nnz(p), 100000);
	IlpResult r;
	cr_assert_eq(ilp_solve(p, NULL, &r), ILP_OPTIMAL, "%s", r.message);
	cr_assert_lt(r.build_time_s, 0.5, "build took %g s", r.build_time_s);
	cr_assert_float_eq(r.objective, want, 1e-9);
	ilp_free(p);
}

/* ------------------------------------------------------------------ */
/* Threads.                                                             */

Test(ilp, thread_safety_follows_glpk_thread_local_storage)
{
	cr_assert_eq(ilp_thread_safe(), glp_config("TLS") != NULL);
}

typedef struct {
	int first, count; /* small problems, seeds first .. first+count-1 */
	int wrong;        /* how many disagreed with brute force */
	uint64_t ks_seed; /* a 30-item knapsack ... */
	double ks_want;   /* ... and its optimum found by a solve in the main thread */
	double ks_got;
	int fail_glpk; /* also provoke a GLPK error first */
	IlpStatus fail_status;
	char why[400];
} Worker;

static double knapsack_optimum(uint64_t seed)
{
	double w[4][150];
	IlpProblem *p = hard_knapsack(30, 4, seed, w);
	IlpResult r;
	IlpStatus st = ilp_solve(p, NULL, &r);
	ilp_free(p);
	return st == ILP_OPTIMAL ? r.objective : NAN;
}

static void *worker(void *arg)
{
	Worker *w = arg;
	if (w->fail_glpk) {
		double want;
		IlpProblem *p = big_one_hot(&want);
		IlpOptions o = { .mem_limit_mb = 1 };
		IlpResult r;
		w->fail_status = ilp_solve(p, &o, &r);
		ilp_free(p);
	}
	w->ks_got = knapsack_optimum(w->ks_seed);
	for (int k = w->first; k < w->first + w->count; k++) {
		Small s;
		small_random((uint64_t)k * 0x9E3779B97F4A7C15ull, &s);
		if (small_check(&s, w->why, sizeof w->why))
			w->wrong++;
	}
	return NULL;
}

/*
 * Eight threads at once, each a knapsack and 15 small problems, while two of
 * them also make GLPK fail on purpose: every answer is the one found alone.
 */
Test(ilp, eight_threads_solving_at_once_all_get_the_single_thread_optima, .timeout = 120)
{
	enum { T = 8, PER = 15 };
	pthread_t th[T];
	Worker w[T];
	for (int t = 0; t < T; t++) {
		w[t] = (Worker){ .first = 100 + t * PER, .count = PER, .ks_seed = 1000 + (uint64_t)t,
				 .fail_glpk = t % 4 == 1 };
		w[t].ks_want = knapsack_optimum(w[t].ks_seed);
		cr_assert(w[t].ks_want < 0, "knapsack %d: %g", t, w[t].ks_want);
	}
	for (int t = 0; t < T; t++)
		cr_assert_eq(pthread_create(&th[t], NULL, worker, &w[t]), 0);
	for (int t = 0; t < T; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < T; t++) {
		cr_assert_eq(w[t].wrong, 0, "thread %d: %s", t, w[t].why);
		cr_assert_float_eq(w[t].ks_got, w[t].ks_want, 1e-9, "thread %d", t);
		if (w[t].fail_glpk)
			cr_assert_eq(w[t].fail_status, ILP_ERROR, "thread %d", t);
	}
}

/* ------------------------------------------------------------------ */
/* Variable elimination (solver/elim).                                  */

#include "solver/elim.h"

/* Brute force over every assignment of a pairwise problem. */
static double brute_pairs(int n, const int *dom, double un[][4], int ne, const int (*e)[2],
			  double C[][16])
{
	int x[8] = {0};
	double best = INFINITY;
	for (;;) {
		double s = 0;
		for (int v = 0; v < n; v++)
			s += un[v][x[v]];
		for (int k = 0; k < ne; k++)
			s += C[k][x[e[k][0]] * dom[e[k][1]] + x[e[k][1]]];
		if (s < best)
			best = s;
		int v = 0;
		while (v < n && ++x[v] == dom[v])
			x[v++] = 0;
		if (v == n)
			return best;
	}
}

Test(elim, two_hundred_random_pairwise_problems_match_brute_force)
{
	uint64_t seed = 0x5eed0e11ull;
	for (int it = 0; it < 200; it++) {
		int n = rng_int(&seed, 1, 7), dom[8], ne = 0, e[28][2];
		double un[8][4], C[28][16];
		for (int v = 0; v < n; v++) {
			dom[v] = rng_int(&seed, 1, 4);
			for (int x = 0; x < dom[v]; x++)
				un[v][x] = rng_int(&seed, 0, 20);
		}
		/* a random graph with cycles; some costs repeat so that values tie
		 * or dominate */
		for (int a = 0; a < n; a++)
			for (int b = a + 1; b < n; b++)
				if (rng_int(&seed, 0, 2) > 0) {
					e[ne][0] = rng_int(&seed, 0, 1) ? a : b;
					e[ne][1] = e[ne][0] == a ? b : a;
					for (int k = 0; k < 16; k++)
						C[ne][k] = rng_int(&seed, 0, 3) * 5;
					ne++;
				}
		const double *u[8];
		for (int v = 0; v < n; v++)
			u[v] = un[v];
		ElimProblem *p = elim_new(n, dom, u);
		cr_assert_not_null(p);
		for (int k = 0; k < ne; k++)
			cr_assert_eq(elim_add_pair(p, e[k][0], e[k][1], C[k]), 0);
		int x[8];
		double min = NAN;
		cr_assert_eq(elim_solve(p, 1e9, 1e9, x, &min), 0, "problem %d", it);
		double want = brute_pairs(n, dom, un, ne, (const int(*)[2])e, C);
		cr_expect_eq(min, want, "problem %d (%d variables, %d pairs): %g, brute force %g", it,
			     n, ne, min, want);
		/* the assignment returned has the cost returned */
		double s = 0;
		for (int v = 0; v < n; v++) {
			cr_assert(x[v] >= 0 && x[v] < dom[v]);
			s += un[v][x[v]];
		}
		for (int k = 0; k < ne; k++)
			s += C[k][x[e[k][0]] * dom[e[k][1]] + x[e[k][1]]];
		cr_expect_eq(s, want, "problem %d: the assignment costs %g, not %g", it, s, want);
		elim_free(p);
	}
}

/* Under a work bound the order is planned in full before any value is
 * summed: a problem is either refused (the assignment left as it was) or
 * solved to the brute-force minimum, and a bound that refuses refuses
 * every smaller one too. */
Test(elim, under_a_work_bound_a_problem_is_refused_whole_or_solved_to_the_brute_force_minimum)
{
	uint64_t seed = 0xb0d9e7ull;
	int refused = 0, solved = 0;
	for (int it = 0; it < 300; it++) {
		int n = rng_int(&seed, 2, 7), dom[8], ne = 0, e[28][2];
		double un[8][4], C[28][16];
		for (int v = 0; v < n; v++) {
			dom[v] = rng_int(&seed, 2, 4);
			for (int x = 0; x < dom[v]; x++)
				un[v][x] = rng_int(&seed, 0, 20);
		}
		for (int a = 0; a < n; a++)
			for (int b = a + 1; b < n; b++)
				if (rng_int(&seed, 0, 2) > 0) {
					e[ne][0] = a;
					e[ne][1] = b;
					for (int k = 0; k < 16; k++)
						C[ne][k] = rng_int(&seed, 0, 30);
					ne++;
				}
		const double *u[8];
		for (int v = 0; v < n; v++)
			u[v] = un[v];
		ElimProblem *p = elim_new(n, dom, u);
		cr_assert_not_null(p);
		for (int k = 0; k < ne; k++)
			cr_assert_eq(elim_add_pair(p, e[k][0], e[k][1], C[k]), 0);
		double want = brute_pairs(n, dom, un, ne, (const int(*)[2])e, C);
		double bound = rng_int(&seed, 1, 400);
		int x[8];
		for (int v = 0; v < 8; v++)
			x[v] = -7;
		double min = NAN;
		int rc = elim_solve(p, bound, 1e9, x, &min);
		cr_assert(rc == 0 || rc == 1, "problem %d: rc %d", it, rc);
		if (rc == 1) {
			refused++;
			for (int v = 0; v < n; v++)
				cr_expect_eq(x[v], -7, "problem %d: refused, yet x[%d] was written", it, v);
			cr_expect_eq(elim_solve(p, bound / 2, 1e9, x, &min), 1,
				     "problem %d: refused at %g, not at %g", it, bound, bound / 2);
			cr_assert_eq(elim_solve(p, 1e9, 1e9, x, &min), 0, "problem %d", it);
		} else {
			solved++;
		}
		cr_expect_eq(min, want, "problem %d: %g, brute force %g", it, min, want);
		double s = 0;
		for (int v = 0; v < n; v++)
			s += un[v][x[v]];
		for (int k = 0; k < ne; k++)
			s += C[k][x[e[k][0]] * dom[e[k][1]] + x[e[k][1]]];
		cr_expect_eq(s, want, "problem %d: the assignment costs %g, not %g", it, s, want);
		elim_free(p);
	}
	cr_expect(refused > 30 && solved > 30, "bounds exercised both ways: %d refused, %d solved",
		  refused, solved);
}

Test(elim, a_chain_is_width_one_and_a_clique_past_the_bound_is_refused)
{
	/* a chain of 50 variables of 3 values: Viterbi, width 1 */
	int dom[50];
	for (int v = 0; v < 50; v++)
		dom[v] = 3;
	ElimProblem *p = elim_new(50, dom, NULL);
	/* staying costs 0, moving costs 1; the first variable prefers 2 */
	double C[9] = {0, 1, 1, 1, 0, 1, 1, 1, 0};
	for (int v = 0; v + 1 < 50; v++)
		cr_assert_eq(elim_add_pair(p, v, v + 1, C), 0);
	ElimProblem *q = elim_new(50, dom, (const double *const[50]){(double[]){5, 5, 0}});
	for (int v = 0; v + 1 < 50; v++)
		cr_assert_eq(elim_add_pair(q, v, v + 1, C), 0);
	int x[50];
	double min;
	cr_assert_eq(elim_solve(q, 1e6, 1e6, x, &min), 0);
	cr_expect_eq(min, 0);
	for (int v = 0; v < 50; v++)
		cr_expect_eq(x[v], 2, "x[%d] = %d", v, x[v]);
	cr_expect_eq(elim_width(q), 1);
	elim_free(p);
	elim_free(q);
	/* 6 variables of 10 values, all pairs joined with costs no value
	 * dominates: eliminating needs a table of 10^5 entries */
	int d6[6] = {10, 10, 10, 10, 10, 10};
	ElimProblem *k = elim_new(6, d6, NULL);
	double R[100];
	for (int i = 0; i < 100; i++)
		R[i] = (i * 37) % 11;
	for (int a = 0; a < 6; a++)
		for (int b = a + 1; b < 6; b++)
			cr_assert_eq(elim_add_pair(k, a, b, R), 0);
	cr_expect_eq(elim_solve(k, 1e9, 1e4, x, &min), 1, "a table of 1e5 entries is over 1e4");
	cr_expect_eq(elim_solve(k, 1e9, 1e6, x, &min), 0);
	elim_free(k);
}
