/*
 * trace.c -- a simulated step as a Chrome trace (the JSON object format
 * Perfetto and chrome://tracing open): {"traceEvents": [...]}.
 *
 * Reads: the plan (for names) and a SimResult with its timeline.
 * Writes: JSON text.  One process (pid) per pipeline rank; thread (tid) 0
 * is its compute stream, thread 1 its communication: the collectives
 * inside each task (its last comm_s seconds), the sends of activations
 * and gradients to the neighbour stage, the per-step gradient sync.
 * Events are complete events (ph "X") with ts and dur in microseconds.
 * Each is built with Jansson and written at once, so a long timeline
 * never sits in memory as JSON objects.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "runtime-sim/sim.h"

enum { TID_COMPUTE = 0, TID_COMM = 1 };

typedef struct {
	FILE *f;
	bool first;
} Out;

static void emit(Out *o, json_t *ev)
{
	if (!o->first)
		fputs(",\n", o->f);
	o->first = false;
	json_dumpf(ev, o->f, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
	json_decref(ev);
}

static void meta(Out *o, const char *what, int pid, int tid, const char *name)
{
	json_t *ev = json_object();
	json_object_set_new(ev, "name", json_string(what));
	json_object_set_new(ev, "ph", json_string("M"));
	json_object_set_new(ev, "pid", json_integer(pid));
	json_object_set_new(ev, "tid", json_integer(tid));
	json_t *args = json_object();
	json_object_set_new(args, "name", json_string(name));
	json_object_set_new(ev, "args", args);
	emit(o, ev);
}

/* A complete event; seconds in, microseconds out.  Takes args. */
static void span(Out *o, const char *name, const char *cat, int pid, int tid, double start_s,
		 double dur_s, json_t *args)
{
	json_t *ev = json_object();
	json_object_set_new(ev, "name", json_string(name));
	json_object_set_new(ev, "cat", json_string(cat));
	json_object_set_new(ev, "ph", json_string("X"));
	json_object_set_new(ev, "ts", json_real(start_s * 1e6));
	json_object_set_new(ev, "dur", json_real(dur_s * 1e6));
	json_object_set_new(ev, "pid", json_integer(pid));
	json_object_set_new(ev, "tid", json_integer(tid));
	if (args)
		json_object_set_new(ev, "args", args);
	emit(o, ev);
}

static void write_trace(FILE *f, const IrPlan *p, const SimResult *r)
{
	Out o = {f, true};
	fputs("{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n", f);
	int P = r->nranks;
	for (int k = 0; k < P; k++) {
		const IrStagePlan *s = &p->stages[k];
		char name[160];
		snprintf(name, sizeof name, "rank %d: mesh %dx%d at node %d gpu %d, logical %dx%d", k,
			 s->mesh.nnodes, s->mesh.ngpus, s->mesh.node0, s->mesh.gpu0, s->n0, s->n1);
		meta(&o, "process_name", k, TID_COMPUTE, name);
		meta(&o, "thread_name", k, TID_COMPUTE, "compute");
		meta(&o, "thread_name", k, TID_COMM, "communication");
	}
	char name[96];
	for (int i = 0; i < r->tl.ntasks; i++) {
		const SimTask *t = &r->tl.task[i];
		const IrStagePlan *s = &p->stages[t->stage];
		snprintf(name, sizeof name, "%s s%d mb%d", t->backward ? "B" : "F", t->stage,
			 t->micro);
		json_t *args = json_object();
		json_object_set_new(args, "stage", json_integer(t->stage));
		json_object_set_new(args, "microbatch", json_integer(t->micro));
		json_object_set_new(args, "layers", json_sprintf("%d..%d", s->first_layer,
								  s->last_layer));
		if (t->backward && r->stage[t->stage].recompute_s > 0)
			json_object_set_new(args, "recompute_ms",
					    json_real(r->stage[t->stage].recompute_s * 1e3));
		span(&o, name, t->backward ? "backward" : "forward", t->rank, TID_COMPUTE, t->start,
		     t->end - t->start, args);
		if (t->comm_s > 0) {
			snprintf(name, sizeof name, "%s collectives s%d mb%d",
				 t->backward ? "B" : "F", t->stage, t->micro);
			span(&o, name, "collective", t->rank, TID_COMM, t->end - t->comm_s, t->comm_s,
			     NULL);
		}
		if (t->recv_s > 0) {
			/* the neighbour sent it: activation forward, gradient backward */
			int from = t->backward ? t->stage + 1 : t->stage - 1;
			snprintf(name, sizeof name, "send %s s%d->s%d mb%d",
				 t->backward ? "grad" : "act", from, t->stage, t->micro);
			json_t *a = json_object();
			json_object_set_new(a, "to_rank", json_integer(t->rank));
			span(&o, name, "p2p", from % P, TID_COMM, t->start - t->recv_s, t->recv_s, a);
		}
	}
	bool bucketed = p->overlap & IR_OVERLAP_GRAD_REDUCE;
	for (int k = 0; k < P; k++) {
		double comm = 0, total = r->rank_step_s[k];
		for (int i = k; i < r->nstages; i += P)
			comm += r->stage[i].step_comm_s - (bucketed ? r->stage[i].grad_sync_s : 0);
		double at = r->tl.rank_end[k];
		if (r->rank_sync_end[k] > r->rank_sync_start[k]) {
			/* bucketed reductions, overlapped with the last backward */
			span(&o, "gradient reduce (buckets)", "collective", k, TID_COMM,
			     r->rank_sync_start[k], r->rank_sync_end[k] - r->rank_sync_start[k], NULL);
			if (r->rank_sync_end[k] > at)
				at = r->rank_sync_end[k];
		}
		if (comm > 1e-15)
			span(&o, bucketed ? "parameter sync" : "gradient sync", "collective", k, TID_COMM,
			     at, comm, NULL);
		else
			comm = 0;
		if (total - comm > 0)
			span(&o, "optimizer step", "update", k, TID_COMPUTE, at + comm, total - comm,
			     NULL);
	}
	fputs("\n]}\n", f);
}

/* ------------------------------------------------------------------ */
/* Finer traces: per layer and per collective, per rank or per GPU       */

const char *sim_trace_detail_name(SimTraceDetail d)
{
	return d == SIM_TRACE_STAGE ? "stage" : d == SIM_TRACE_LAYER ? "layer" :
	       d == SIM_TRACE_GPU   ? "gpu" : "?";
}

int sim_trace_detail_parse(const char *s, SimTraceDetail *out)
{
	for (int d = SIM_TRACE_STAGE; d <= SIM_TRACE_GPU; d++)
		if (!strcmp(s, sim_trace_detail_name((SimTraceDetail)d))) {
			*out = (SimTraceDetail)d;
			return 0;
		}
	return -1;
}

/* The processes rank k's events go to: one (the rank) for layer detail;
 * for gpu detail one per GPU of its mesh, or per logical mesh row when the
 * mesh has more than SIM_TRACE_MAX_GPU_PROCS devices. */
static int rank_procs(const IrStagePlan *s, SimTraceDetail d)
{
	if (d != SIM_TRACE_GPU)
		return 1;
	int n = s->n0 * s->n1;
	return n > SIM_TRACE_MAX_GPU_PROCS ? s->n0 : n;
}

static void proc_name(const IrStagePlan *s, int k, int j, SimTraceDetail d, char *name,
		      size_t n)
{
	int ndev = s->n0 * s->n1, mg = s->mesh.ngpus > 0 ? s->mesh.ngpus : 1;
	if (d != SIM_TRACE_GPU) {
		snprintf(name, n, "rank %d: mesh %dx%d at node %d gpu %d, logical %dx%d", k,
			 s->mesh.nnodes, s->mesh.ngpus, s->mesh.node0, s->mesh.gpu0, s->n0, s->n1);
	} else if (ndev > SIM_TRACE_MAX_GPU_PROCS) {
		int d0 = j * s->n1, d1 = d0 + s->n1 - 1;
		snprintf(name, n, "rank %d, logical row %d: %d GPUs n%dg%d..n%dg%d", k, j, s->n1,
			 s->mesh.node0 + d0 / mg, s->mesh.gpu0 + d0 % mg, s->mesh.node0 + d1 / mg,
			 s->mesh.gpu0 + d1 % mg);
	} else {
		snprintf(name, n, "n%dg%d: rank %d, logical (%d,%d)", s->mesh.node0 + j / mg,
			 s->mesh.gpu0 + j % mg, k, j / s->n1, j % s->n1);
	}
}

static void coll_name(const IrGraph *g, const SimCollEvent *ce, char *name, size_t n)
{
	static const char *const axis[] = {"axis 0", "axis 1", "both axes"};
	snprintf(name, n, "%s%s %s (%s)", ce->recompute ? "recompute " : "",
		 sim_coll_name(ce->kind), g->ops[ce->op].name,
		 ce->axis >= 0 && ce->axis <= 2 ? axis[ce->axis] : "?");
}

/* The layer and collective events of task t on process pid, laid out as
 * the simulator times the task (task_time in simulate.c): per layer,
 * forward ascending and backward descending, its weight all-gathers (on
 * the communication stream ahead of it when prefetched), its kernels, then
 * its other collectives (beside the kernels with IR_OVERLAP_TP). */
static void task_detail(Out *o, const IrGraph *g, const IrPlan *p, const SimStageDetail *d,
			const SimTask *t, int pid)
{
	bool pf = p->overlap & IR_OVERLAP_PARAM_GATHER, tp = p->overlap & IR_OVERLAP_TP;
	bool bwd = t->backward;
	int nl = d->nlayers;
	double at = 0, gfree = 0, prev_start = 0;
	char name[192];
	for (int j = 0; j < nl; j++) {
		int l = bwd ? nl - 1 - j : j;
		const SimLayerTime *x = &d->layer[l];
		double c = bwd ? x->bwd_compute_s : x->fwd_compute_s;
		double m = bwd ? x->bwd_comm_s : x->fwd_comm_s;
		double w = bwd ? x->bwd_gather_s : x->fwd_gather_s;
		double gstart, start;
		if (pf) {
			gstart = fmax(gfree, prev_start);
			gfree = gstart + w;
			start = fmax(at, gfree);
			prev_start = start;
		} else {
			gstart = at;
			start = at + w;
		}
		double cs = tp ? start : start + c, gs = gstart;
		for (int i = 0; i < d->ncoll; i++) {
			const SimCollEvent *ce = &d->coll[i];
			if (ce->layer != l || ce->backward != bwd)
				continue;
			coll_name(g, ce, name, sizeof name);
			json_t *a = json_object();
			json_object_set_new(a, "microbatch", json_integer(t->micro));
			json_object_set_new(a, "layer", json_integer(d->first_layer + l));
			json_object_set_new(a, "task", json_string(bwd ? "backward" : "forward"));
			json_object_set_new(a, "bytes", json_real(ce->bytes));
			double *from = ce->gather ? &gs : &cs;
			span(o, name, "collective", pid, TID_COMM, t->start + *from, ce->time_s, a);
			*from += ce->time_s;
		}
		if (c > 0) {
			int layer = d->first_layer + l;
			snprintf(name, sizeof name, "%s %s mb%d", bwd ? "B" : "F",
				 layer < g->nlayers ? g->layers[layer].name : "?", t->micro);
			json_t *a = json_object();
			json_object_set_new(a, "stage", json_integer(t->stage));
			json_object_set_new(a, "microbatch", json_integer(t->micro));
			json_object_set_new(a, "layer", json_integer(layer));
			span(o, name, bwd ? "backward" : "forward", pid, TID_COMPUTE, t->start + start, c,
			     a);
		}
		at = start + (tp ? fmax(c, m) : c + m);
	}
}

/* Rank k's once-per-step events (as write_trace has them) on process pid. */
static void step_events(Out *o, const IrPlan *p, const SimResult *r, int k, int pid)
{
	int P = r->nranks;
	bool bucketed = p->overlap & IR_OVERLAP_GRAD_REDUCE;
	double comm = 0, total = r->rank_step_s[k];
	for (int i = k; i < r->nstages; i += P)
		comm += r->stage[i].step_comm_s - (bucketed ? r->stage[i].grad_sync_s : 0);
	double at = r->tl.rank_end[k];
	if (r->rank_sync_end[k] > r->rank_sync_start[k]) {
		span(o, "gradient reduce (buckets)", "collective", pid, TID_COMM,
		     r->rank_sync_start[k], r->rank_sync_end[k] - r->rank_sync_start[k], NULL);
		if (r->rank_sync_end[k] > at)
			at = r->rank_sync_end[k];
	}
	if (comm > 1e-15)
		span(o, bucketed ? "parameter sync" : "gradient sync", "collective", pid, TID_COMM,
		     at, comm, NULL);
	else
		comm = 0;
	if (total - comm > 0)
		span(o, "optimizer step", "update", pid, TID_COMPUTE, at + comm, total - comm, NULL);
}

static int write_detail(FILE *f, const IrGraph *g, const IrCluster *c, const IrPlan *p,
			const SimResult *r, SimTraceDetail dl, IrError *e)
{
	int P = r->nranks, S = r->nstages;
	SimStageDetail *det = ir_xcalloc((size_t)S, sizeof *det);
	int *base = ir_xcalloc((size_t)P + 1, sizeof(int));
	if (!det || !base)
		abort();
	int rc = 0;
	for (int i = 0; i < S && !rc; i++)
		rc = sim_stage_detail(g, c, &p->stages[i], p->recompute, p->zero, p->overlap,
				      &det[i], e);
	if (rc) {
		for (int i = 0; i < S; i++)
			sim_stage_detail_free(&det[i]);
		free(det);
		free(base);
		return -1;
	}
	for (int k = 0; k < P; k++)
		base[k + 1] = base[k] + rank_procs(&p->stages[k], dl);
	Out o = {f, true};
	fputs("{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n", f);
	char name[192];
	for (int k = 0; k < P; k++)
		for (int j = 0; j < base[k + 1] - base[k]; j++) {
			proc_name(&p->stages[k], k, j, dl, name, sizeof name);
			meta(&o, "process_name", base[k] + j, TID_COMPUTE, name);
			meta(&o, "thread_name", base[k] + j, TID_COMPUTE, "compute");
			meta(&o, "thread_name", base[k] + j, TID_COMM, "communication");
		}
	for (int k = 0; k < P; k++)
		for (int pid = base[k]; pid < base[k + 1]; pid++) {
			for (int i = 0; i < r->tl.ntasks; i++) {
				const SimTask *t = &r->tl.task[i];
				if (t->rank == k)
					task_detail(&o, g, p, &det[t->stage], t, pid);
				if (t->recv_s <= 0)
					continue;
				int from = t->backward ? t->stage + 1 : t->stage - 1;
				if (from % P != k)
					continue;
				snprintf(name, sizeof name, "send %s s%d->s%d mb%d",
					 t->backward ? "grad" : "act", from, t->stage, t->micro);
				json_t *a = json_object();
				json_object_set_new(a, "to_rank", json_integer(t->rank));
				span(&o, name, "p2p", pid, TID_COMM, t->start - t->recv_s, t->recv_s, a);
			}
			step_events(&o, p, r, k, pid);
		}
	fputs("\n]}\n", f);
	for (int i = 0; i < S; i++)
		sim_stage_detail_free(&det[i]);
	free(det);
	free(base);
	return 0;
}

int sim_trace_fwrite_detail(const IrGraph *g, const IrCluster *c, const IrPlan *p,
			    const SimResult *r, SimTraceDetail d, FILE *f, const char *path,
			    IrError *e)
{
	if (d == SIM_TRACE_STAGE)
		return sim_trace_fwrite(p, r, f, path, e);
	if (write_detail(f, g, c, p, r, d, e)) {
		snprintf(e->file, sizeof e->file, "%s", path);
		return -1;
	}
	if (fflush(f) != 0 || ferror(f))
		return ir_fail(e, path, 0, "cannot write the trace: %s", strerror(errno));
	return 0;
}

char *sim_trace_json(const IrPlan *p, const SimResult *r)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	if (!f)
		return NULL;
	write_trace(f, p, r);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

int sim_trace_fwrite(const IrPlan *p, const SimResult *r, FILE *f, const char *path, IrError *e)
{
	write_trace(f, p, r);
	if (fflush(f) != 0 || ferror(f))
		return ir_fail(e, path, 0, "cannot write the trace: %s", strerror(errno));
	return 0;
}

int sim_trace_write(const IrPlan *p, const SimResult *r, const char *path, IrError *e)
{
	IrOutput o;
	if (ir_output_open(&o, path, e))
		return -1;
	if (sim_trace_fwrite(p, r, o.f, path, e)) {
		ir_output_discard(&o);
		return -1;
	}
	return ir_output_commit(&o, e);
}
