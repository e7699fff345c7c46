/*
 * resilience.c -- what failures and slow workers do to a whole run.
 *
 * Reads a SimRunSpec (fault-free time, step, GPUs) and a SimFailureModel;
 * writes a SimResilience: means over seeded Monte-Carlo runs of an
 * event-driven simulation in which
 *   - failures arrive as a Poisson process, rate = per-GPU-hour rate times
 *     the GPUs held; each is soft (process restart) or hard (node lost);
 *   - compute runs in segments of `interval` wall seconds closed by a
 *     blocking checkpoint save; a failure loses the open segment;
 *   - a failure costs detection, (hard, not elastic) a spare node,
 *     a restart and a checkpoint load, each of which a further failure
 *     may cut short (the recovery then starts again);
 *   - elastic: a hard fault takes a node out for repair_s, the job goes on
 *     on the rest at step_time_for_gpus(), and pauses restart_s to take
 *     the node back.
 * Failure times come from a cumulative-hazard clock with unit-exponential
 * thresholds drawn in order, so runs with the same seed see the same
 * failures whatever the checkpoint interval (common random numbers for
 * the sweep).  Also here: straggler pace for even and dynamic sharding.
 * Formulas and defaults: docs/estimate.md.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime-sim/sim.h"

static int res_fail(IrError *e, const char *fmt, ...)
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

/* ------------------------------------------------------------------ */
/* PRNG: xoshiro256** seeded through splitmix64 (Vigna), not rand().  */

typedef struct Rng {
	uint64_t s[4];
} Rng;

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_seed(Rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(Rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

/* Uniform in [0, 1). */
static double rng_unit(Rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1p-53;
}

/* Unit exponential. */
static double rng_exp(Rng *r)
{
	return -log1p(-rng_unit(r));
}

static double rng_normal(Rng *r)
{
	double u = 1.0 - rng_unit(r), v = rng_unit(r);
	return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* ------------------------------------------------------------------ */
/* Names.                                                               */

static const char *policy_names[SIM_NPOLICIES] = {"restart-all", "failover", "elastic"};
static const char *lost_names[SIM_NLOST] = {"detection", "restart", "checkpoint_save",
					    "checkpoint_load", "recompute", "degraded",
					    "replan"};

const char *sim_policy_name(SimPolicy p)
{
	return (unsigned)p < SIM_NPOLICIES ? policy_names[p] : "?";
}

int sim_policy_parse(const char *s, SimPolicy *out)
{
	for (int i = 0; i < SIM_NPOLICIES; i++)
		if (s && !strcmp(s, policy_names[i])) {
			*out = (SimPolicy)i;
			return 0;
		}
	return -1;
}

const char *sim_lost_name(SimLost k)
{
	return (unsigned)k < SIM_NLOST ? lost_names[k] : "?";
}

const char *sim_sharding_name(SimSharding s)
{
	return s == SIM_SHARD_DYNAMIC ? "dynamic" : "even";
}

int sim_sharding_parse(const char *s, SimSharding *out)
{
	if (s && !strcmp(s, "even"))
		*out = SIM_SHARD_EVEN;
	else if (s && !strcmp(s, "dynamic"))
		*out = SIM_SHARD_DYNAMIC;
	else
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Stragglers.                                                          */

double sim_straggler_ideal_pace(const double *speed, int n)
{
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += speed[i];
	return n / sum;
}

/* Min-heap of workers by the time they become free (ties: lower index). */
typedef struct Free {
	double t;
	int w;
} Free;

static bool free_less(const Free *a, const Free *b)
{
	return a->t < b->t || (a->t == b->t && a->w < b->w);
}

static void heap_down(Free *h, int n, int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && free_less(&h[l], &h[m]))
			m = l;
		if (r < n && free_less(&h[r], &h[m]))
			m = r;
		if (m == i)
			return;
		Free x = h[i];
		h[i] = h[m];
		h[m] = x;
		i = m;
	}
}

/*
 * Dynamic sharding: n * spw equal shards; the worker free first pulls
 * the next one.  At speed 1 a shard takes 1/spw of a step, so the
 * nominal makespan is 1 and the result is the pace directly.
 */
static double dynamic_pace(const double *speed, int n, int spw)
{
	Free *h = ir_xmalloc(sizeof *h * (size_t)n);
	if (!h)
		abort();
	for (int i = 0; i < n; i++)
		h[i] = (Free){0.0, i};
	double shard = 1.0 / spw, makespan = 0;
	long shards = (long)n * spw;
	for (long k = 0; k < shards; k++) {
		Free *top = &h[0];
		top->t += shard / speed[top->w];
		if (top->t > makespan)
			makespan = top->t;
		heap_down(h, n, 0);
	}
	free(h);
	return makespan;
}

double sim_straggler_pace(const double *speed, int n, SimSharding sh, int shards_per_worker)
{
	if (n <= 0)
		return 1.0;
	if (sh == SIM_SHARD_DYNAMIC)
		return dynamic_pace(speed, n, shards_per_worker > 0 ? shards_per_worker : 1);
	double slowest = speed[0];
	for (int i = 1; i < n; i++)
		if (speed[i] < slowest)
			slowest = speed[i];
	return 1.0 / slowest;
}

static bool parse_num(const char **p, double *v)
{
	char *end;
	*v = strtod(*p, &end);
	if (end == *p || !isfinite(*v))
		return false;
	*p = end;
	return true;
}

int sim_speeds_draw(const char *dist, int n, uint64_t seed, double *speed, IrError *e)
{
	static const char *kinds[] = {"normal:", "uniform:", "slow:"};
	int kind = -1;
	for (int i = 0; i < 3; i++)
		if (!strncmp(dist, kinds[i], strlen(kinds[i])))
			kind = i;
	double a, b;
	const char *p = kind < 0 ? dist : dist + strlen(kinds[kind]);
	if (kind < 0 || !parse_num(&p, &a) || *p++ != ':' || !parse_num(&p, &b) || *p)
		return res_fail(e, "speed distribution '%s': expected normal:MEAN:SD, "
				   "uniform:LO:HI or slow:FRACTION:SPEED", dist);
	if (n <= 0)
		return res_fail(e, "speed distribution needs a positive worker count");
	Rng r;
	rng_seed(&r, seed, 7);
	switch (kind) {
	case 0:
		if (a <= 0 || b < 0)
			return res_fail(e, "normal speeds need MEAN > 0 and SD >= 0");
		for (int i = 0; i < n; i++)
			speed[i] = fmax(0.05, a + b * rng_normal(&r));
		break;
	case 1:
		if (a <= 0 || b < a)
			return res_fail(e, "uniform speeds need 0 < LO <= HI");
		for (int i = 0; i < n; i++)
			speed[i] = a + (b - a) * rng_unit(&r);
		break;
	default:
		if (a < 0 || a > 1 || b <= 0)
			return res_fail(e, "slow speeds need 0 <= FRACTION <= 1 and SPEED > 0");
		int k = (int)lround(a * n);
		for (int i = 0; i < n; i++)
			speed[i] = i >= n - k ? b : 1.0;
		break;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Failure model.                                                       */

/* Llama 3 (Dubey et al. 2024, sec. 3.3.4): 419 unexpected interruptions in
 * 54 days on 16,384 H100s; ~78% hardware, so 22% taken as soft. */
#define LLAMA3_RATE (419.0 / (54.0 * 24.0 * 16384.0))

void sim_failure_model_default(SimFailureModel *f, SimPolicy p)
{
	memset(f, 0, sizeof *f);
	f->policy = p;
	f->rate_per_gpu_hour = LLAMA3_RATE;
	f->soft_fraction = 0.22;
	f->detect_s = 120;
	f->replace_s = 300;
	f->repair_s = 24 * 3600;
	f->runs = 32;
	f->seed = 1;
	if (p == SIM_RESTART_ALL) {
		/* persisted checkpoint on a parallel file system, whole-job relaunch */
		f->restart_s = 300;
		f->ckpt_save_s = 30;
		f->ckpt_load_s = 120;
	} else {
		/* in-memory checkpoint (Gemini, MegaScale), one node relaunched */
		f->restart_s = 120;
		f->ckpt_save_s = 1;
		f->ckpt_load_s = 30;
	}
}

int sim_failure_model_check(const SimFailureModel *f, IrError *e)
{
	if ((unsigned)f->policy >= SIM_NPOLICIES)
		return res_fail(e, "unknown recovery policy");
	if (!isfinite(f->rate_per_gpu_hour) || f->rate_per_gpu_hour <= 0)
		return res_fail(e, "failure rate must be positive (an MTBF must be positive "
				   "and finite), got %g per GPU-hour", f->rate_per_gpu_hour);
	if (!(f->soft_fraction >= 0 && f->soft_fraction <= 1))
		return res_fail(e, "soft-fault fraction must be in [0, 1], got %g", f->soft_fraction);
	struct {
		const char *name;
		double v;
	} t[] = {
		{"detection time", f->detect_s},   {"restart time", f->restart_s},
		{"replacement time", f->replace_s}, {"repair time", f->repair_s},
		{"checkpoint save time", f->ckpt_save_s},
		{"checkpoint load time", f->ckpt_load_s},
		{"checkpoint interval", f->ckpt_interval_s},
		{"horizon", f->horizon_s},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!isfinite(t[i].v) || t[i].v < 0)
			return res_fail(e, "%s must be zero or positive, got %g", t[i].name, t[i].v);
	if (f->runs <= 0 || f->runs > 100000)
		return res_fail(e, "runs must be in 1..100000, got %d", f->runs);
	return 0;
}

double sim_young_daly_interval(double ckpt_save_s, double mtbf_s, double step_s)
{
	return fmax(sqrt(2.0 * ckpt_save_s * mtbf_s), step_s);
}

/* ------------------------------------------------------------------ */
/* One run.                                                             */

enum { MAX_EVENTS = 20000000 }; /* per run: a backstop behind check_spec() */

typedef enum { PH_DONE, PH_FAILED, PH_STOPPED } PhaseEnd;

typedef struct Run {
	const SimRunSpec *r;
	const SimFailureModel *f;
	Rng rng;
	double interval;     /* compute wall seconds between checkpoints */
	double t;            /* wall clock */
	double hazard;       /* integral of the failure rate so far */
	double next_hazard;  /* the next failure strikes when hazard reaches it */
	double work;         /* fault-free seconds of work done */
	double ckpt_work;    /* ... as of the last completed checkpoint */
	double seg_wall;     /* compute wall time since that checkpoint */
	double seg_degraded; /* ... of which is the elastic slowdown */
	int nodes;           /* nodes of the job */
	int out;             /* elastic: nodes away for repair */
	double *back;        /* their return times, out entries, unsorted */
	int cap_back;
	bool last_hard;      /* kind of the latest failure */
	long events;
	double gpu_s;        /* integral of GPUs held */
	double lost[SIM_NLOST];
	double interruptions, soft, hard, checkpoints, rejoins;
} Run;

static int running_gpus(const Run *s)
{
	int g = s->r->gpus - s->out * s->r->gpus_per_node;
	return g > 0 ? g : 0;
}

static double rate_per_s(const Run *s)
{
	return s->f->rate_per_gpu_hour * running_gpus(s) / 3600.0;
}

static double time_to_failure(const Run *s)
{
	double rate = rate_per_s(s);
	return rate > 0 ? (s->next_hazard - s->hazard) / rate : INFINITY;
}

static double next_return(const Run *s)
{
	double tr = INFINITY;
	for (int i = 0; i < s->out; i++)
		tr = fmin(tr, s->back[i]);
	return tr;
}

static double time_left(const Run *s)
{
	return s->f->horizon_s > 0 ? s->f->horizon_s - s->t : INFINITY;
}

static void advance(Run *s, double dt)
{
	s->hazard += rate_per_s(s) * dt;
	s->gpu_s += (double)running_gpus(s) * dt;
	s->t += dt;
}

/* Takes back every node whose repair is over. */
static void take_back(Run *s)
{
	for (int i = 0; i < s->out;)
		if (s->back[i] <= s->t)
			s->back[i] = s->back[--s->out];
		else
			i++;
}

static double pace(const Run *s)
{
	int g = running_gpus(s);
	if (g == s->r->gpus)
		return 1.0;
	if (s->r->step_time_for_gpus) {
		/* INFINITY: no plan fits this many GPUs; the job waits for a node */
		double p = s->r->step_time_for_gpus(g, s->r->ctx) /
			   s->r->step_time_for_gpus(s->r->gpus, s->r->ctx);
		if (p > 0 && !isnan(p))
			return p;
	}
	return (double)s->r->gpus / g;
}

/* Elastic: the re-planning downtime for the GPUs running now. */
static double replan_time(const Run *s)
{
	int g = running_gpus(s);
	if (!s->r->replan_s || g == 0)
		return 0;
	double t = s->r->replan_s(g, s->r->ctx);
	return t > 0 && isfinite(t) ? t : 0;
}

/* A failure strikes now: count it, lose the open segment, draw the next. */
static void strike(Run *s)
{
	s->last_hard = rng_unit(&s->rng) >= s->f->soft_fraction;
	s->next_hazard += rng_exp(&s->rng);
	s->interruptions++;
	if (s->last_hard)
		s->hard++;
	else
		s->soft++;
	s->lost[SIM_LOST_RECOMPUTE] += s->seg_wall;
	s->work = s->ckpt_work;
	s->seg_wall = s->seg_degraded = 0;
	if (s->f->policy == SIM_ELASTIC && s->last_hard && s->out < s->nodes) {
		if (s->out == s->cap_back) {
			s->cap_back = s->cap_back ? 2 * s->cap_back : 16;
			s->back = ir_xrealloc(s->back, sizeof *s->back * (size_t)s->cap_back);
			if (!s->back)
				abort();
		}
		s->back[s->out++] = s->t + s->f->repair_s;
	}
}

/* Training blocked for d seconds, charged to k; a failure or the horizon
 * may end it early.  Nodes coming back meanwhile just join. */
static PhaseEnd phase(Run *s, double d, SimLost k)
{
	while (d > 0) {
		double step = fmin(d, next_return(s) - s->t);
		double tf = time_to_failure(s), th = time_left(s);
		if (tf < step && tf <= th) {
			advance(s, tf);
			s->lost[k] += tf;
			strike(s);
			return PH_FAILED;
		}
		if (th < step) {
			advance(s, th);
			s->lost[k] += th;
			return PH_STOPPED;
		}
		advance(s, step);
		s->lost[k] += step;
		d -= step;
		take_back(s);
	}
	return PH_DONE;
}

/* After a failure: detect, (spare node,) restart, load; again if struck. */
static PhaseEnd recover(Run *s)
{
	const SimFailureModel *f = s->f;
	for (;;) {
		if (++s->events > MAX_EVENTS)
			return PH_STOPPED;
		PhaseEnd pe = phase(s, f->detect_s, SIM_LOST_DETECT);
		if (pe == PH_DONE && s->last_hard && f->policy != SIM_ELASTIC)
			pe = phase(s, f->replace_s, SIM_LOST_RESTART);
		if (pe == PH_DONE && running_gpus(s) == 0) /* elastic, every node away */
			pe = phase(s, next_return(s) - s->t, SIM_LOST_RESTART);
		if (pe == PH_DONE)
			pe = phase(s, f->restart_s, SIM_LOST_RESTART);
		if (pe == PH_DONE && s->last_hard && f->policy == SIM_ELASTIC)
			pe = phase(s, replan_time(s), SIM_LOST_REPLAN);
		if (pe == PH_DONE)
			pe = phase(s, f->ckpt_load_s, SIM_LOST_LOAD);
		if (pe != PH_FAILED)
			return pe;
	}
}

static void commit_segment(Run *s)
{
	s->lost[SIM_LOST_DEGRADED] += s->seg_degraded;
	s->seg_wall = s->seg_degraded = 0;
}

/* Runs until the work is done or the horizon; false if it never ends. */
static bool run_once(Run *s)
{
	const double W = s->r->work_s;
	PhaseEnd pe = PH_DONE;
	while (pe != PH_STOPPED && s->work < W) {
		if (++s->events > MAX_EVENTS)
			return false;
		double p = pace(s);
		double to_end = (W - s->work) * p;
		double to_ckpt = s->interval - s->seg_wall;
		double to_back = next_return(s) - s->t;
		double tf = time_to_failure(s), th = time_left(s);
		double dt = fmin(fmin(to_end, to_ckpt), fmin(fmin(to_back, tf), th));
		advance(s, dt);
		s->seg_wall += dt;
		s->work += dt / p;
		s->seg_degraded += dt - dt / p;
		if (dt == tf) {
			strike(s);
			pe = recover(s);
		} else if (dt == th) {
			pe = PH_STOPPED;
		} else if (dt == to_end) {
			s->work = W;
		} else if (dt == to_back) {
			int was_out = s->out;
			take_back(s);
			if (s->out < was_out) { /* re-plan for the larger cluster */
				s->rejoins++;
				pe = phase(s, s->f->restart_s, SIM_LOST_RESTART);
				if (pe == PH_DONE)
					pe = phase(s, replan_time(s), SIM_LOST_REPLAN);
				if (pe == PH_FAILED)
					pe = recover(s);
			}
		} else {
			s->seg_wall = s->interval;
			pe = phase(s, s->f->ckpt_save_s, SIM_LOST_SAVE);
			if (pe == PH_DONE) {
				s->ckpt_work = s->work;
				s->checkpoints++;
				commit_segment(s);
			} else if (pe == PH_FAILED) {
				pe = recover(s);
			}
		}
		if (s->events > MAX_EVENTS)
			return false;
	}
	commit_segment(s);
	return true;
}

static double cluster_mtbf(const SimRunSpec *r, const SimFailureModel *f)
{
	return 3600.0 / (f->rate_per_gpu_hour * r->gpus);
}

static double interval_for(const SimRunSpec *r, const SimFailureModel *f)
{
	return f->ckpt_interval_s > 0
		       ? f->ckpt_interval_s
		       : sim_young_daly_interval(f->ckpt_save_s, cluster_mtbf(r, f), r->step_s);
}

static int check_spec(const SimRunSpec *r, const SimFailureModel *f, IrError *e)
{
	if (!(r->work_s > 0) || !isfinite(r->work_s))
		return res_fail(e, "run time must be positive, got %g s", r->work_s);
	if (!(r->step_s > 0) || !isfinite(r->step_s))
		return res_fail(e, "step time must be positive, got %g s", r->step_s);
	if (r->gpus <= 0 || r->gpus_per_node <= 0)
		return res_fail(e, "GPUs (%d) and GPUs per node (%d) must be positive", r->gpus,
				r->gpus_per_node);
	if (sim_failure_model_check(f, e))
		return -1;
	double mtbf = cluster_mtbf(r, f), interval = interval_for(r, f), lam = 1.0 / mtbf;
	/* Expected slowdown (Daly 2006): a segment of interval + save survives
	 * with probability exp(-lam (interval + C)), a recovery of `down`
	 * seconds with exp(-lam down); the run is hopeless far beyond 1. */
	double down = f->detect_s + f->replace_s + f->restart_s + f->ckpt_load_s;
	double seg = fmin(interval, r->work_s) + f->ckpt_save_s;
	double slow = exp(lam * down) * expm1(lam * seg) / (lam * fmin(interval, r->work_s));
	if (f->horizon_s == 0 && !(slow < 50))
		return res_fail(e, "the run would not finish: cluster MTBF %.4g s is far shorter "
				   "than a recovery and a checkpoint interval (%.4g s)", mtbf, down + seg);
	double span = f->horizon_s > 0 ? f->horizon_s : r->work_s * fmin(slow, 50);
	if (span / interval + span * lam > 5e6)
		return res_fail(e, "over 5 million failures and checkpoints per run (MTBF %.4g s, "
				   "interval %.4g s); too many to simulate", mtbf, interval);
	return 0;
}

int sim_resilience(const SimRunSpec *r, const SimFailureModel *f, SimResilience *out,
		   IrError *e)
{
	if (check_spec(r, f, e))
		return -1;
	memset(out, 0, sizeof *out);
	out->mtbf_s = cluster_mtbf(r, f);
	out->interval_s = interval_for(r, f);
	out->runs = f->runs;
	out->wall_min_s = out->ettr_min = INFINITY;
	out->wall_max_s = out->ettr_max = -INFINITY;
	int nodes = (r->gpus + r->gpus_per_node - 1) / r->gpus_per_node;
	long long events = 0;
	for (int k = 0; k < f->runs; k++) {
		Run s = {.r = r, .f = f, .interval = out->interval_s, .nodes = nodes};
		rng_seed(&s.rng, f->seed, (uint64_t)k + 1);
		s.next_hazard = rng_exp(&s.rng);
		bool ok = run_once(&s);
		free(s.back);
		if (!ok)
			return res_fail(e, "run %d did not finish within %d events (MTBF %.4g s)", k,
					MAX_EVENTS, out->mtbf_s);
		events += s.events;
		if (events > SIM_MAX_EVENTS && k + 1 < f->runs)
			return res_fail(e, "%d runs need over %d events (%lld in the first %d, MTBF "
					"%.4g s): ask for fewer runs or a shorter horizon",
					f->runs, SIM_MAX_EVENTS, events, k + 1, out->mtbf_s);
		double ettr = s.work / s.t;
		out->wall_s += s.t;
		out->wall_min_s = fmin(out->wall_min_s, s.t);
		out->wall_max_s = fmax(out->wall_max_s, s.t);
		out->gpu_hours += s.gpu_s / 3600.0;
		out->useful_s += s.work;
		out->ettr += ettr;
		out->ettr_min = fmin(out->ettr_min, ettr);
		out->ettr_max = fmax(out->ettr_max, ettr);
		out->progress += s.work / r->work_s;
		out->interruptions += s.interruptions;
		out->soft += s.soft;
		out->hard += s.hard;
		out->checkpoints += s.checkpoints;
		out->rejoins += s.rejoins;
		for (int i = 0; i < SIM_NLOST; i++)
			out->lost_s[i] += s.lost[i];
	}
	double n = f->runs;
	out->wall_s /= n;
	out->gpu_hours /= n;
	out->useful_s /= n;
	out->ettr /= n;
	out->progress /= n;
	out->interruptions /= n;
	out->soft /= n;
	out->hard /= n;
	out->checkpoints /= n;
	out->rejoins /= n;
	for (int i = 0; i < SIM_NLOST; i++)
		out->lost_s[i] /= n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Checkpoint-interval sweep.                                           */

/* Vertex of the least-squares parabola y = a + b u + c u^2; false if
 * it opens downwards or the system is singular. */
static bool parabola_vertex(const double *u, const double *y, int n, double *vertex)
{
	double s[5] = {0}, t[3] = {0};
	for (int i = 0; i < n; i++) {
		double p = 1;
		for (int k = 0; k < 5; k++) {
			s[k] += p;
			if (k < 3)
				t[k] += p * y[i];
			p *= u[i];
		}
	}
	/* normal equations [s0 s1 s2; s1 s2 s3; s2 s3 s4] (a b c) = t, by Cramer */
	double m[3][3] = {{s[0], s[1], s[2]}, {s[1], s[2], s[3]}, {s[2], s[3], s[4]}};
	double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
		     m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
		     m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
	if (fabs(det) < 1e-300)
		return false;
	double db = m[0][0] * (t[1] * m[2][2] - m[1][2] * t[2]) -
		    t[0] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
		    m[0][2] * (m[1][0] * t[2] - t[1] * m[2][0]);
	double dc = m[0][0] * (m[1][1] * t[2] - t[1] * m[2][1]) -
		    m[0][1] * (m[1][0] * t[2] - t[1] * m[2][0]) +
		    t[0] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
	double b = db / det, c = dc / det;
	if (!(c > 0))
		return false;
	*vertex = -b / (2 * c);
	return true;
}

int sim_ckpt_sweep(const SimRunSpec *r, const SimFailureModel *f, double lo_s, double hi_s,
		   int n, double *interval, double *slowdown, double *best_s, IrError *e)
{
	if (!(lo_s > 0) || !(hi_s >= lo_s) || !isfinite(hi_s) || n < 1)
		return res_fail(e, "sweep needs 0 < LO <= HI and at least one point");
	double *u = ir_xmalloc(sizeof *u * (size_t)n);
	if (!u)
		abort();
	int best = 0;
	for (int i = 0; i < n; i++) {
		SimFailureModel g = *f;
		g.ckpt_interval_s = n == 1 ? lo_s : lo_s * pow(hi_s / lo_s, (double)i / (n - 1));
		SimResilience res;
		if (sim_resilience(r, &g, &res, e)) {
			free(u);
			return -1;
		}
		interval[i] = g.ckpt_interval_s;
		slowdown[i] = res.wall_s / res.useful_s;
		u[i] = log(interval[i]);
		if (slowdown[i] < slowdown[best])
			best = i;
	}
	/* Refine: parabola over the grid best and up to 3 neighbours each side. */
	int lo = best - 3 < 0 ? 0 : best - 3, hi = best + 3 >= n ? n - 1 : best + 3;
	double v;
	*best_s = interval[best];
	if (best > 0 && best < n - 1 && parabola_vertex(u + lo, slowdown + lo, hi - lo + 1, &v) &&
	    v >= u[lo] && v <= u[hi])
		*best_s = exp(v);
	free(u);
	return 0;
}
