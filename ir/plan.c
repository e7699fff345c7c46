/*
 * plan.c -- the plan data structure: allocation and enum names.
 * (Its XML form is read and written by plan_xml.c.)
 */
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

static const char *sched_names[] = {"gpipe", "1f1b", "interleaved"};
static const char *recomp_names[] = {"none", "selective", "full"};

const char *ir_schedule_name(IrSchedule s) { return s <= IR_SCHED_INTERLEAVED ? sched_names[s] : "?"; }
const char *ir_recompute_name(IrRecompute r) { return r <= IR_RECOMP_FULL ? recomp_names[r] : "?"; }

int ir_schedule_parse(const char *s, IrSchedule *out)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, sched_names[i])) {
			*out = (IrSchedule)i;
			return 0;
		}
	return -1;
}

int ir_recompute_parse(const char *s, IrRecompute *out)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, recomp_names[i])) {
			*out = (IrRecompute)i;
			return 0;
		}
	return -1;
}

static const char *const coll_names[IR_NCOLL] = {
	[IR_ALL_REDUCE] = "all-reduce",       [IR_ALL_GATHER] = "all-gather",
	[IR_REDUCE_SCATTER] = "reduce-scatter", [IR_ALL_TO_ALL] = "all-to-all",
	[IR_P2P] = "p2p",
};

const char *ir_coll_name(IrColl k)
{
	return (unsigned)k < IR_NCOLL ? coll_names[k] : "?";
}

int ir_coll_parse(const char *s, IrColl *out)
{
	for (int i = 0; s && i < IR_NCOLL; i++)
		if (!strcmp(s, coll_names[i])) {
			*out = (IrColl)i;
			return 0;
		}
	return -1;
}

static const char *overlap_names[] = {"grad-reduce", "param-gather", "tp"};

const char *ir_overlap_name(unsigned overlap, char *buf, size_t n)
{
	size_t o = 0;
	buf[0] = 0;
	for (int i = 0; i < 3; i++)
		if (overlap & (1u << i)) {
			int k = snprintf(buf + o, n - o, "%s%s", o ? "," : "", overlap_names[i]);
			if (k < 0 || (size_t)k >= n - o)
				break;
			o += (size_t)k;
		}
	if (!o)
		snprintf(buf, n, "none");
	return buf;
}

int ir_overlap_parse(const char *s, unsigned *out)
{
	unsigned v = 0;
	char buf[128];
	snprintf(buf, sizeof buf, "%s", s);
	if (!strcmp(buf, "none") || !*buf) {
		*out = 0;
		return 0;
	}
	for (char *save = NULL, *w = strtok_r(buf, ",+", &save); w;
	     w = strtok_r(NULL, ",+", &save)) {
		int k = -1;
		for (int i = 0; i < 3; i++)
			if (!strcmp(w, overlap_names[i]))
				k = i;
		if (!strcmp(w, "default"))
			v |= IR_OVERLAP_DEFAULT;
		else if (k < 0)
			return -1;
		else
			v |= 1u << k;
	}
	*out = v;
	return 0;
}

void ir_plan_init(IrPlan *p)
{
	memset(p, 0, sizeof *p);
	p->nmicro = 1;
	p->microbatch = 1;
	p->chunks = 1;
	p->schedule = IR_SCHED_1F1B;
	p->overlap = IR_OVERLAP_DEFAULT;
}

void ir_plan_init_like(IrPlan *p, const IrPlan *from, int nstages)
{
	ir_plan_init(p);
	p->model = from->model ? ir_strdup(&p->arena, from->model) : NULL;
	p->cluster = from->cluster ? ir_strdup(&p->arena, from->cluster) : NULL;
	p->params = from->params;
	p->nodes = from->nodes;
	p->global_batch = from->global_batch;
	p->microbatch = from->microbatch;
	p->nmicro = from->nmicro;
	p->schedule = from->schedule;
	p->chunks = from->chunks;
	p->recompute = from->recompute;
	p->zero = from->zero;
	p->overlap = from->overlap;
	p->nstages = nstages;
	if (nstages > 0)
		p->stages = ir_alloc(&p->arena, sizeof(IrStagePlan) * (size_t)nstages);
}

void ir_plan_free(IrPlan *p)
{
	ir_arena_free(&p->arena);
	memset(p, 0, sizeof *p);
}

void ir_stage_alloc(IrPlan *p, IrStagePlan *s, int nops, int ncomm)
{
	s->nops = nops;
	s->op = ir_alloc(&p->arena, sizeof(int) * (size_t)(nops ? nops : 1));
	s->strategy = ir_alloc(&p->arena, sizeof(char *) * (size_t)(nops ? nops : 1));
	s->ways = ir_alloc(&p->arena, sizeof(int) * (size_t)(nops ? nops : 1));
	s->ncomm = ncomm;
	s->comm = ir_alloc(&p->arena, sizeof(IrComm) * (size_t)(ncomm ? ncomm : 1));
	s->op_line = NULL; /* a copy's entries have no lines of their own */
}

void ir_stage_copy_why(IrPlan *p, IrStagePlan *dst, const IrStagePlan *src, const int *map)
{
	dst->nwhy = src->nwhy;
	dst->ilp_s = src->ilp_s;
	dst->why = NULL;
	if (!src->nwhy)
		return;
	dst->why = ir_alloc(&p->arena, sizeof(IrOpWhy) * (size_t)src->nwhy);
	for (int i = 0; i < src->nwhy; i++) {
		const IrOpWhy *a = &src->why[i];
		IrOpWhy *b = &dst->why[i];
		*b = *a;
		b->op = map ? map[a->op] : a->op;
		b->chosen.strategy = ir_strdup(&p->arena, a->chosen.strategy);
		b->alt = ir_alloc(&p->arena, sizeof(IrAlt) * (size_t)(a->nalt ? a->nalt : 1));
		for (int k = 0; k < a->nalt; k++) {
			b->alt[k] = a->alt[k];
			b->alt[k].strategy = ir_strdup(&p->arena, a->alt[k].strategy);
		}
	}
}
