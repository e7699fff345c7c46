/*
 * common.c -- helpers every verb shares: error printing, JSON output,
 * strict number parsing, SI formatting.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#include "tools/tools.h"

int tool_input_error(const IrError *e)
{
	char buf[1024];
	fprintf(stderr, "meshplan: %s\n", ir_error_str(e, buf, sizeof buf));
	return EXIT_BADINPUT;
}

int tool_error(const char *verb, int code, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "meshplan %s: ", verb);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

void tool_print_json(json_t *obj)
{
	json_dumpf(obj, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
	fputc('\n', stdout);
	json_decref(obj);
}

bool tool_parse_double(const char *s, double *out)
{
	char *end;
	if (!s || !*s)
		return false;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !isfinite(v))
		return false;
	*out = v;
	return true;
}

bool tool_parse_int(const char *s, long *out)
{
	char *end;
	if (!s || !*s)
		return false;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

const char *tool_si(double v, char *buf, size_t n)
{
	static const char *suffix[] = {"", "k", "M", "G", "T", "P", "E"};
	int i = 0;
	double a = fabs(v);
	while (a >= 1000.0 && i < 6) {
		a /= 1000.0;
		v /= 1000.0;
		i++;
	}
	snprintf(buf, n, i ? "%.3g %s" : "%.4g%s", v, suffix[i]);
	return buf;
}
