/*
 * calibrate.c -- fitting a cluster's software profile to measured runs.
 *
 * Reads: runs (a training graph, a plan and its cluster each, and the
 * step time measured on that cluster).
 * Writes: up to four profile factors (SimCalParam) into the runs' clusters
 * and the fitted values; nothing else.
 *
 * The fit is least squares on log(predicted / measured) step times
 * (relative errors, so a 1 s run and a 90 s run weigh alike), by
 * Levenberg-Marquardt with forward-difference derivatives.  The factors on
 * efficiencies are fitted in log space (they stay positive), the kernel
 * overhead in microseconds clamped at 0.  Plans are fixed: only their
 * timing changes, so one simulation per run and trial point.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime-sim/sim.h"

static const char *const cal_names[SIM_CAL_NPARAM] = {
	[SIM_CAL_GEMM] = "gemm-scale",
	[SIM_CAL_MEMORY] = "memory-scale",
	[SIM_CAL_COMM] = "comm-scale",
	[SIM_CAL_OVERHEAD] = "kernel-overhead-us",
};

const char *sim_cal_name(int k)
{
	return k >= 0 && k < SIM_CAL_NPARAM ? cal_names[k] : "?";
}

int sim_cal_parse(const char *list, unsigned *mask)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", list);
	unsigned m = 0;
	for (char *save = NULL, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		int k = -1;
		for (int i = 0; i < SIM_CAL_NPARAM; i++)
			if (!strcmp(w, cal_names[i]))
				k = i;
		if (k < 0)
			return -1;
		m |= 1u << k;
	}
	if (!m)
		return -1;
	*mask = m;
	return 0;
}

void sim_cal_default(double v[SIM_CAL_NPARAM])
{
	v[SIM_CAL_GEMM] = v[SIM_CAL_MEMORY] = v[SIM_CAL_COMM] = 1;
	v[SIM_CAL_OVERHEAD] = 0;
}

void sim_cal_apply(IrCluster *c, const double v[SIM_CAL_NPARAM])
{
	c->gpu.gemm_scale = v[SIM_CAL_GEMM];
	c->gpu.hbm_scale = v[SIM_CAL_MEMORY];
	c->intra.scale = c->inter.scale = v[SIM_CAL_COMM];
	c->gpu.overhead_s = v[SIM_CAL_OVERHEAD] * 1e-6;
}

int sim_cal_predict(const SimCalRun *runs, int n, const double v[SIM_CAL_NPARAM], double *pred,
		    IrError *e)
{
	for (int i = 0; i < n; i++) {
		sim_cal_apply(runs[i].c, v);
		SimResult r;
		if (sim_plan(runs[i].g, runs[i].c, runs[i].p, &r, e))
			return -1;
		pred[i] = r.step_time_s;
		sim_result_free(&r);
	}
	return 0;
}

/* The largest factor: the one that brings the model's efficiency to 1
 * (the higher of its two link kinds for collectives). */
static double upper(int k)
{
	switch (k) {
	case SIM_CAL_GEMM:
		return 1 / sim_hw.eff_matmul;
	case SIM_CAL_MEMORY:
		return 1 / sim_hw.eff_hbm;
	case SIM_CAL_COMM:
		return 1 / fmax(sim_hw.eff_nvlink, sim_hw.eff_network);
	}
	return INFINITY;
}

/* Parameters in fitting space: log of a factor, microseconds of overhead. */
static void to_values(const double *theta, const int *idx, int k, const double *base, double *v)
{
	memcpy(v, base, sizeof(double) * SIM_CAL_NPARAM);
	for (int j = 0; j < k; j++)
		v[idx[j]] = idx[j] == SIM_CAL_OVERHEAD ? fmax(0, theta[j]) : exp(theta[j]);
}

/* Residuals log(pred / measured), skipping run `skip`; their sum of squares. */
static int residuals(const SimCalRun *runs, int n, int skip, const double *v, double *res,
		     double *pred, double *ss, IrError *e)
{
	if (sim_cal_predict(runs, n, v, pred, e))
		return -1;
	*ss = 0;
	int m = 0;
	for (int i = 0; i < n; i++) {
		if (i == skip)
			continue;
		res[m] = log(pred[i] / runs[i].measured_s);
		*ss += res[m] * res[m];
		m++;
	}
	return 0;
}

/* Solves the k x k system a x = b (k <= 4) by Gaussian elimination with
 * partial pivoting; -1 when singular. */
static int solve(int k, double a[4][4], double *b, double *x)
{
	for (int c = 0; c < k; c++) {
		int p = c;
		for (int r = c + 1; r < k; r++)
			if (fabs(a[r][c]) > fabs(a[p][c]))
				p = r;
		if (fabs(a[p][c]) < 1e-300)
			return -1;
		for (int j = 0; j < k; j++) {
			double t = a[c][j];
			a[c][j] = a[p][j];
			a[p][j] = t;
		}
		double t = b[c];
		b[c] = b[p];
		b[p] = t;
		for (int r = c + 1; r < k; r++) {
			double f = a[r][c] / a[c][c];
			for (int j = c; j < k; j++)
				a[r][j] -= f * a[c][j];
			b[r] -= f * b[c];
		}
	}
	for (int r = k - 1; r >= 0; r--) {
		double s = b[r];
		for (int j = r + 1; j < k; j++)
			s -= a[r][j] * x[j];
		x[r] = s / a[r][r];
	}
	return 0;
}

int sim_calibrate(const SimCalRun *runs, int n, unsigned mask, int skip,
		  double v[SIM_CAL_NPARAM], SimCalFit *fit, IrError *e)
{
	int idx[SIM_CAL_NPARAM], k = 0;
	for (int j = 0; j < SIM_CAL_NPARAM; j++)
		if (mask & (1u << j))
			idx[k++] = j;
	int m = n - (skip >= 0 && skip < n);
	if (k < 1 || m < 1)
		return ir_fail(e, "", 0, "nothing to fit: %d parameters, %d runs", k, m);
	double base[SIM_CAL_NPARAM];
	memcpy(base, v, sizeof base);
	double theta[SIM_CAL_NPARAM], trial[SIM_CAL_NPARAM], cur[SIM_CAL_NPARAM];
	for (int j = 0; j < k; j++)
		theta[j] = idx[j] == SIM_CAL_OVERHEAD ? base[idx[j]] : log(base[idx[j]]);
	double *res = malloc(sizeof(double) * (size_t)n);
	double *r2 = malloc(sizeof(double) * (size_t)n);
	double *pred = malloc(sizeof(double) * (size_t)n);
	double *jac = malloc(sizeof(double) * (size_t)n * SIM_CAL_NPARAM);
	if (!res || !r2 || !pred || !jac)
		abort();
	double ss, lambda = 1e-3;
	int rc = 0, it = 0;
	bool converged = false;
	to_values(theta, idx, k, base, cur);
	rc = residuals(runs, n, skip, cur, res, pred, &ss, e);
	for (it = 0; it < SIM_CAL_MAX_ITER && !rc && !converged; it++) {
		/* Jacobian by forward differences */
		for (int j = 0; j < k && !rc; j++) {
			double h = idx[j] == SIM_CAL_OVERHEAD ? 0.05 : 1e-4;
			memcpy(trial, theta, sizeof trial);
			trial[j] += h;
			to_values(trial, idx, k, base, cur);
			double ss2;
			rc = residuals(runs, n, skip, cur, r2, pred, &ss2, e);
			for (int i = 0; i < m && !rc; i++)
				jac[(size_t)i * SIM_CAL_NPARAM + j] = (r2[i] - res[i]) / h;
		}
		if (rc)
			break;
		double jtj[4][4] = {{0}}, jtr[4] = {0};
		for (int i = 0; i < m; i++)
			for (int a = 0; a < k; a++) {
				jtr[a] += jac[(size_t)i * SIM_CAL_NPARAM + a] * res[i];
				for (int b = 0; b < k; b++)
					jtj[a][b] += jac[(size_t)i * SIM_CAL_NPARAM + a] *
						     jac[(size_t)i * SIM_CAL_NPARAM + b];
			}
		bool improved = false;
		for (int tries = 0; tries < 12 && !improved && !rc; tries++) {
			/* A parameter at a bound that the step would push past it
			 * is held there and the step solved for the others (an
			 * active set); clamping the full step instead leaves the
			 * others a direction meant for a move the bound forbids. */
			bool held[4] = {false};
			double a[4][4], b[4], d[4];
			int singular = 0;
			for (int pass = 0; pass <= k && !singular; pass++) {
				for (int p = 0; p < k; p++) {
					for (int q = 0; q < k; q++)
						a[p][q] = held[p] || held[q] ? 0 : jtj[p][q];
					a[p][p] = held[p] ? 1 : a[p][p] + lambda * (jtj[p][p] + 1e-12);
					b[p] = held[p] ? 0 : -jtr[p];
				}
				singular = solve(k, a, b, d);
				bool more = false;
				for (int j = 0; j < k && !singular; j++) {
					bool lo = idx[j] == SIM_CAL_OVERHEAD ? theta[j] <= 0
									     : theta[j] <= -log(4.0);
					bool hi = idx[j] != SIM_CAL_OVERHEAD &&
						  theta[j] >= log(upper(idx[j]));
					if (!held[j] && ((lo && d[j] < 0) || (hi && d[j] > 0)))
						held[j] = more = true;
				}
				if (!more)
					break;
			}
			if (singular) {
				lambda *= 10;
				continue;
			}
			for (int j = 0; j < k; j++) {
				trial[j] = theta[j] + d[j];
				if (idx[j] == SIM_CAL_OVERHEAD)
					trial[j] = fmax(0, trial[j]);
				else /* an efficiency never passes 1 */
					trial[j] = fmin(log(upper(idx[j])), fmax(-log(4.0), trial[j]));
			}
			to_values(trial, idx, k, base, cur);
			double ss2;
			rc = residuals(runs, n, skip, cur, r2, pred, &ss2, e);
			if (!rc && ss2 < ss) {
				improved = true;
				double gain = ss - ss2;
				memcpy(theta, trial, sizeof theta);
				memcpy(res, r2, sizeof(double) * (size_t)m);
				ss = ss2;
				lambda = fmax(lambda / 4, 1e-9);
				converged = gain < 1e-12 * (1 + ss);
			} else {
				lambda *= 4;
			}
		}
		if (!improved) { /* no step gains: a minimum, as far as the differences see */
			converged = !rc;
			break;
		}
	}
	if (!rc) {
		to_values(theta, idx, k, base, v);
		fit->iterations = it;
		fit->converged = converged;
		fit->rms_log = sqrt(ss / m);
		rc = sim_cal_predict(runs, n, v, pred, e);
		for (int i = 0; !rc && i < n && fit->pred_s; i++)
			fit->pred_s[i] = pred[i];
	}
	free(res);
	free(r2);
	free(pred);
	free(jac);
	return rc;
}
