/*
 * util.c -- error records, the arena, dtype and kind names.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "ir/ir.h"

int ir_fail(IrError *e, const char *file, int line, const char *fmt, ...)
{
	if (!e)
		return -1;
	va_list ap;
	snprintf(e->file, sizeof e->file, "%s", file ? file : "");
	e->line = line;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return -1;
}

const char *ir_error_str(const IrError *e, char *buf, size_t n)
{
	if (e->file[0] && e->line > 0)
		snprintf(buf, n, "%s:%d: %s", e->file, e->line, e->msg);
	else if (e->file[0])
		snprintf(buf, n, "%s: %s", e->file, e->msg);
	else
		snprintf(buf, n, "%s", e->msg);
	return buf;
}

/* ---- the heap allocator ---- */

void ir_heap_keep(void)
{
#ifdef __GLIBC__
	mallopt(M_TRIM_THRESHOLD, IR_HEAP_KEEP_BYTES);
	mallopt(M_MMAP_THRESHOLD, IR_HEAP_MMAP_BYTES);
#endif
}

double ir_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

_Noreturn void ir_oom(void)
{
	fputs("meshplan: out of memory\n", stderr);
	abort();
}

static void *oom(void)
{
	ir_oom();
}

void *ir_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	return p ? p : oom();
}

void *ir_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	return p ? p : oom();
}

void *ir_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	return q ? q : oom();
}

char *ir_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(ir_xmalloc(n), s, n);
}

/* ---- arena ---- */

struct IrArenaBlock {
	IrArenaBlock *next;
	size_t used, size;
	_Alignas(16) unsigned char data[];
};

void *ir_alloc(IrArena *a, size_t n)
{
	if (n > SIZE_MAX / 2)
		oom();
	n = (n + 15) & ~(size_t)15;
	IrArenaBlock *b = a->head;
	if (!b || b->used + n > b->size) {
		size_t size = n > 65536 ? n : 65536;
		b = ir_xmalloc(sizeof *b + size);
		b->next = a->head;
		b->used = 0;
		b->size = size;
		a->head = b;
	}
	void *p = b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

char *ir_strdup(IrArena *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = ir_alloc(a, n);
	memcpy(p, s, n);
	return p;
}

char *ir_strfmt(IrArena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *p = ir_alloc(a, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void ir_arena_free(IrArena *a)
{
	while (a->head) {
		IrArenaBlock *n = a->head->next;
		free(a->head);
		a->head = n;
	}
}

/* ---- names ---- */

static const char *dtype_names[IR_NDTYPES] = {"fp32", "bf16", "fp16", "int32"};
static const size_t dtype_sizes[IR_NDTYPES] = {4, 2, 2, 4};

const char *ir_dtype_name(IrDType t) { return t < IR_NDTYPES ? dtype_names[t] : "?"; }
size_t ir_dtype_size(IrDType t) { return t < IR_NDTYPES ? dtype_sizes[t] : 0; }

int ir_dtype_parse(const char *s, IrDType *t)
{
	for (int i = 0; i < IR_NDTYPES; i++)
		if (!strcmp(s, dtype_names[i])) {
			*t = (IrDType)i;
			return 0;
		}
	return -1;
}

static const char *kind_names[IR_NOPKINDS] = {
	"einsum", "elementwise", "reduce", "softmax", "layernorm", "rmsnorm", "gather",
	"transpose", "reshape", "conv2d", "pool", "loss", "accumulate", "adam",
};

const char *ir_op_kind_name(IrOpKind k) { return k < IR_NOPKINDS ? kind_names[k] : "?"; }

/* Elementwise functions usable directly as a kind in XML, with their arity. */
static const struct {
	const char *name;
	int arity;
} elementwise_fns[] = {
	{"add", 2}, {"sub", 2}, {"mul", 2}, {"div", 2},
	{"gelu", 1}, {"silu", 1}, {"relu", 1}, {"sigmoid", 1}, {"tanh", 1}, {"exp", 1},
	{"scale", 1}, {"mask", 1}, {"dropout", 1}, {"rotary", 1}, {"neg", 1}, {"square", 1},
	{"sqrt", 1}, {"rsqrt", 1},
};

int ir_elementwise_arity(const char *fn)
{
	for (size_t i = 0; i < sizeof elementwise_fns / sizeof elementwise_fns[0]; i++)
		if (!strcmp(fn, elementwise_fns[i].name))
			return elementwise_fns[i].arity;
	return 0;
}

int ir_op_kind_parse(const char *s, IrOpKind *k, const char **fn)
{
	*fn = NULL;
	for (int i = 0; i < IR_ACCUM; i++)
		if (!strcmp(s, kind_names[i])) {
			*k = (IrOpKind)i;
			return 0;
		}
	for (size_t i = 0; i < sizeof elementwise_fns / sizeof elementwise_fns[0]; i++)
		if (!strcmp(s, elementwise_fns[i].name)) {
			*k = IR_ELEMENTWISE;
			*fn = elementwise_fns[i].name;
			return 0;
		}
	return -1;
}

const char *ir_role_name(IrRole r)
{
	static const char *n[] = {"input", "weight", "activation", "gradient", "weight-gradient",
				  "optimizer-state"};
	return r <= IR_T_OPT ? n[r] : "?";
}

uint64_t ir_label_bit(char c)
{
	if (c >= 'a' && c <= 'z')
		return 1ull << (c - 'a');
	if (c >= 'A' && c <= 'Z')
		return 1ull << (26 + c - 'A');
	return 0;
}

int64_t ir_tensor_numel(const IrTensor *t)
{
	int64_t n = 1;
	for (int i = 0; i < t->ndim; i++)
		n *= t->dim[i];
	return n;
}

double ir_tensor_bytes(const IrTensor *t)
{
	return (double)ir_tensor_numel(t) * (double)ir_dtype_size(t->dtype);
}

const char *ir_data_dir(void)
{
	const char *d = getenv("MESHPLAN_DATA");
	return d && *d ? d : MESHPLAN_DATA_DIR;
}

/* ---- "did you mean": edit distance over a list of names ---- */

/* Levenshtein distance, case-insensitive, capped at 64 characters a name. */
static int edit_distance(const char *a, const char *b)
{
	enum { MAXN = 64 };
	int la = (int)strlen(a), lb = (int)strlen(b);
	if (la > MAXN || lb > MAXN)
		return MAXN;
	int row[MAXN + 1];
	for (int j = 0; j <= lb; j++)
		row[j] = j;
	for (int i = 1; i <= la; i++) {
		int diag = row[0];
		row[0] = i;
		for (int j = 1; j <= lb; j++) {
			int up = row[j];
			int ca = a[i - 1], cb = b[j - 1];
			if (ca >= 'A' && ca <= 'Z')
				ca += 'a' - 'A';
			if (cb >= 'A' && cb <= 'Z')
				cb += 'a' - 'A';
			int best = diag + (ca != cb);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* Whether hay holds needle, ignoring case. */
static bool holds(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++) {
		size_t i = 0;
		while (i < n && hay[i] && (hay[i] | 32) == (needle[i] | 32))
			i++;
		if (i == n)
			return true;
	}
	return false;
}

const char *ir_suggest(const char *name, const char *const *names, int n, char *buf,
		       size_t len)
{
	buf[0] = 0;
	if (!name || n <= 0)
		return buf;
	int best = -1, bestd = 1 << 30;
	for (int i = 0; i < n; i++) {
		int d = edit_distance(name, names[i]);
		if (d < bestd) {
			bestd = d;
			best = i;
		}
	}
	/* a near miss: at most a third of the name wrong (2 edits for short names) */
	int slack = (int)strlen(name) / 3;
	if (slack < 2)
		slack = 2;
	if (bestd > slack) {
		/* no near miss: a name that holds this one whole ("h100" in "dgx-h100") */
		int hold = -1, nhold = 0;
		for (int i = 0; i < n; i++)
			if (strlen(name) >= 3 && holds(names[i], name)) {
				hold = i;
				nhold++;
			}
		if (nhold == 1) {
			best = hold;
			bestd = 0;
		}
	}
	size_t at = 0;
	if (best >= 0 && bestd <= slack)
		at = (size_t)snprintf(buf, len, "did you mean '%s'?", names[best]);
	if (!at && n <= IR_SUGGEST_LIST) {
		at += (size_t)snprintf(buf + at, len - at, "valid: ");
		for (int i = 0; i < n && at < len; i++)
			at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? ", " : "", names[i]);
	}
	return buf;
}
