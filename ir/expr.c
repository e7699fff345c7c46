/*
 * expr.c -- integer expressions over model parameters ("4*hidden",
 * "hidden/heads", "(seq+1)%2"): recursive descent, 64-bit, every
 * operation checked for overflow and division by zero.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

typedef struct {
	const char *s, *p;
	IrLookup lookup;
	void *ctx;
	char *why;
	size_t why_n;
	int failed;
	int depth; /* brackets and unary minus open now */
} Parser;

static int fail(Parser *P, const char *fmt, const char *arg)
{
	/* a long expression is quoted by its start, so the cause still fits */
	char cut[48];
	if (strlen(arg) >= sizeof cut) {
		snprintf(cut, sizeof cut, "%.40s...", arg);
		arg = cut;
	}
	if (!P->failed)
		snprintf(P->why, P->why_n, fmt, arg);
	P->failed = 1;
	return -1;
}

static void skip(Parser *P)
{
	while (isspace((unsigned char)*P->p))
		P->p++;
}

static int expr(Parser *P, int64_t *v);

static int primary_at(Parser *P, int64_t *v);

/* Nesting is bounded so that a hostile expression cannot exhaust the
 * stack: IR_MAX_EXPR_DEPTH brackets or minus signs, far past any shape. */
static int primary(Parser *P, int64_t *v)
{
	if (P->depth >= IR_MAX_EXPR_DEPTH)
		return fail(P, "'%s' nests brackets or minus signs deeper than 64", P->s);
	P->depth++;
	int rc = primary_at(P, v);
	P->depth--;
	return rc;
}

static int primary_at(Parser *P, int64_t *v)
{
	skip(P);
	const char *c = P->p;
	if (*c == '(') {
		P->p++;
		if (expr(P, v))
			return -1;
		skip(P);
		if (*P->p != ')')
			return fail(P, "missing ')' in '%s'", P->s);
		P->p++;
		return 0;
	}
	if (*c == '-') {
		P->p++;
		if (primary(P, v))
			return -1;
		if (__builtin_sub_overflow((int64_t)0, *v, v))
			return fail(P, "'%s' overflows 64 bits", P->s);
		return 0;
	}
	if (isdigit((unsigned char)*c)) {
		int64_t x = 0;
		while (isdigit((unsigned char)*P->p)) {
			if (__builtin_mul_overflow(x, 10, &x) ||
			    __builtin_add_overflow(x, *P->p - '0', &x))
				return fail(P, "'%s' overflows 64 bits", P->s);
			P->p++;
		}
		*v = x;
		return 0;
	}
	if (isalpha((unsigned char)*c) || *c == '_') {
		char name[64];
		size_t n = 0;
		while (isalnum((unsigned char)*P->p) || *P->p == '_') {
			if (n + 1 >= sizeof name)
				return fail(P, "a name in '%s' is longer than 63 characters", P->s);
			name[n++] = *P->p;
			P->p++;
		}
		name[n] = 0;
		if (!P->lookup || P->lookup(P->ctx, name, v))
			return fail(P, "unknown parameter '%s'", name);
		return 0;
	}
	if (!*c)
		return fail(P, "expression '%s' ends early", P->s);
	char bad[2] = {*c, 0};
	return fail(P, "unexpected '%s' in expression", bad);
}

static int term(Parser *P, int64_t *v)
{
	if (primary(P, v))
		return -1;
	for (;;) {
		skip(P);
		char op = *P->p;
		if (op != '*' && op != '/' && op != '%')
			return 0;
		P->p++;
		int64_t r;
		if (primary(P, &r))
			return -1;
		if (op == '*') {
			if (__builtin_mul_overflow(*v, r, v))
				return fail(P, "'%s' overflows 64 bits", P->s);
		} else {
			if (r == 0)
				return fail(P, "division by zero in '%s'", P->s);
			if (*v == INT64_MIN && r == -1)
				return fail(P, "'%s' overflows 64 bits", P->s);
			*v = op == '/' ? *v / r : *v % r;
		}
	}
}

static int expr(Parser *P, int64_t *v)
{
	if (term(P, v))
		return -1;
	for (;;) {
		skip(P);
		char op = *P->p;
		if (op != '+' && op != '-')
			return 0;
		P->p++;
		int64_t r;
		if (term(P, &r))
			return -1;
		if (op == '+' ? __builtin_add_overflow(*v, r, v) : __builtin_sub_overflow(*v, r, v))
			return fail(P, "'%s' overflows 64 bits", P->s);
	}
}

int ir_expr_eval(const char *text, IrLookup lookup, void *ctx, int64_t *out, char *why,
		 size_t why_n)
{
	Parser P = {text, text, lookup, ctx, why, why_n, 0, 0};
	if (expr(&P, out))
		return -1;
	skip(&P);
	if (*P.p) {
		char bad[2] = {*P.p, 0};
		return fail(&P, "unexpected '%s' in expression", bad);
	}
	return 0;
}
