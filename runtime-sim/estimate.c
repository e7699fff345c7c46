/*
 * estimate.c -- what a whole training run costs: wall time and GPU-hours
 * from a step time, then money, energy, CO2e and its equivalents.
 * Pure arithmetic; the formulas and the sources of every default are in
 * docs/estimate.md.  Reads: a step time or GPU-hours and a SimCostModel.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "runtime-sim/sim.h"

/* Fills e like ir_fail, without needing ir/ to link. */
static int est_fail(IrError *e, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		memset(e, 0, sizeof *e);
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof e->msg, fmt, ap);
		va_end(ap);
	}
	return -1;
}

void sim_cost_model_default(SimCostModel *m)
{
	memset(m, 0, sizeof *m);
	snprintf(m->currency, sizeof m->currency, "USD");
	m->pue = 1.0;               /* GPUs alone, as LLaMA-2's 291.42 t figure */
	m->tree_kg_per_year = 12.0; /* a common rule of thumb */
	m->percap_us_t = 16.1;
	m->percap_cn_t = 6.8;
}

int sim_cost_model_check(const SimCostModel *m, IrError *e)
{
	struct {
		const char *name;
		double v;
		bool positive; /* must be > 0, else >= 0 */
	} f[] = {
		{"price per GPU-hour", m->price_per_gpu_hour, false},
		{"power", m->power_w, false},
		{"carbon intensity", m->carbon_kg_per_kwh, false},
		{"tree absorption", m->tree_kg_per_year, true},
		{"US per-capita emissions", m->percap_us_t, true},
		{"China per-capita emissions", m->percap_cn_t, true},
	};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
		if (!isfinite(f[i].v) || f[i].v < 0 || (f[i].positive && f[i].v == 0))
			return est_fail(e, "%s must be %s, got %g", f[i].name,
					f[i].positive ? "positive" : "zero or positive", f[i].v);
	}
	if (!isfinite(m->pue) || m->pue < 1.0)
		return est_fail(e, "PUE must be at least 1, got %g", m->pue);
	size_t n = strlen(m->currency);
	if (n == 0 || n >= sizeof m->currency)
		return est_fail(e, "currency must be a code like USD or CNY");
	return 0;
}

void sim_cost(const SimCostModel *m, double gpu_hours, SimCost *c)
{
	c->gpu_hours = gpu_hours;
	c->cost = m->price_per_gpu_hour > 0 ? gpu_hours * m->price_per_gpu_hour : NAN;
	c->energy_kwh = m->power_w > 0 ? gpu_hours * m->power_w / 1000.0 * m->pue : NAN;
	c->co2e_t = m->carbon_kg_per_kwh > 0 ? c->energy_kwh * m->carbon_kg_per_kwh / 1000.0 : NAN;
	c->tree_years = c->co2e_t * 1000.0 / m->tree_kg_per_year;
	c->percap_us_years = c->co2e_t / m->percap_us_t;
	c->percap_cn_years = c->co2e_t / m->percap_cn_t;
}

int sim_run_time(double step_s, int gpus, double tokens_per_step, double tokens,
		 SimRunTime *r, IrError *e)
{
	if (!(step_s > 0) || !isfinite(step_s))
		return est_fail(e, "step time must be positive, got %g", step_s);
	if (gpus <= 0)
		return est_fail(e, "GPU count must be positive, got %d", gpus);
	if (!(tokens_per_step > 0) || !isfinite(tokens_per_step))
		return est_fail(e, "tokens per step must be positive, got %g", tokens_per_step);
	if (!(tokens > 0) || !isfinite(tokens))
		return est_fail(e, "tokens must be positive, got %g", tokens);
	r->steps = ceil(tokens / tokens_per_step);
	r->wall_s = r->steps * step_s;
	r->gpu_hours = r->wall_s * gpus / 3600.0;
	if (!isfinite(r->steps) || !isfinite(r->wall_s) || !isfinite(r->gpu_hours) ||
	    r->gpu_hours * 1e6 > DBL_MAX)
		return est_fail(e, "the run (%g tokens at %g per step, %g s each) overflows", tokens,
				tokens_per_step, step_s);
	return 0;
}
