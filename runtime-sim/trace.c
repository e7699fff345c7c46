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

int sim_trace_write(const IrPlan *p, const SimResult *r, const char *path, IrError *e)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return ir_fail(e, path, 0, "cannot write the trace: %s", strerror(errno));
	write_trace(f, p, r);
	if (ferror(f) | fclose(f))
		return ir_fail(e, path, 0, "cannot write the trace: %s", strerror(errno));
	return 0;
}
