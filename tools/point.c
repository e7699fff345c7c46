/*
 * point.c -- one point of a sweep or a resource search: a model compiled
 * for a cluster at a node count and global batch, simulated, and the
 * whole run of a token budget priced from estimate's defaults (and, when
 * asked, run under failures with estimate's failure model).
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "passes/passes.h"
#include "tools/tools.h"

static int step_fail(ToolStep *s, int status, const char *why)
{
	s->status = status;
	snprintf(s->why, sizeof s->why, "%s", why);
	return status;
}

static json_t *plan_summary(const IrGraph *g, const IrPlan *p)
{
	json_t *stages = json_array();
	for (int i = 0; i < p->nstages; i++) {
		char layers[64], mesh[32], lg[16];
		tool_stage_labels(g, &p->stages[i], layers, mesh, lg);
		json_array_append_new(stages, json_pack("{s:s,s:s,s:s}", "layers", layers,
							"mesh", mesh, "logical", lg));
	}
	return json_pack("{s:i,s:I,s:i,s:s,s:s,s:o}", "nstages", p->nstages, "microbatch",
			 (json_int_t)p->microbatch, "microbatches", p->nmicro, "schedule",
			 ir_schedule_name(p->schedule), "recompute", ir_recompute_name(p->recompute),
			 "stages", stages);
}

int tool_point_step(const ToolPoint *pt, const char *plan_path, ToolStep *s)
{
	memset(s, 0, sizeof *s);
	double t0 = ir_now_s();
	IrError e;
	memset(&e, 0, sizeof e);
	char buf[600];
	IrParamSet ps = {0};
	if (pt->set && *pt->set && ir_params_parse(&ps, pt->set, &e))
		return step_fail(s, EXIT_BADINPUT, ir_error_str(&e, buf, sizeof buf));
	IrCluster c;
	if (ir_cluster_load(pt->cluster, pt->nodes, &c, &e))
		return step_fail(s, EXIT_BADINPUT, ir_error_str(&e, buf, sizeof buf));
	s->nodes = c.nodes;
	s->gpus = ir_cluster_gpus(&c);
	s->gpus_per_node = c.gpus_per_node;
	tool_cost_model(&c, &s->cost);
	IrModelDoc *m = ir_model_open(pt->model, &e);
	if (!m) {
		ir_cluster_free(&c);
		return step_fail(s, EXIT_BADINPUT, ir_error_str(&e, buf, sizeof buf));
	}
	/* no wall-clock budget: the plan must not depend on the machine's load */
	PassInterOptions o = {.global_batch = pt->batch, .microbatch = pt->microbatch,
			      .recompute = pt->recompute, .max_units = pt->max_units,
			      .threads = pt->threads, .tmax_gap = -1};
	IrPlan plan;
	IrGraph g;
	PassInterResult r;
	int rc = pass_inter_op(m, pt->model, &ps, &c, pt->cluster, pt->nodes, &o, &plan, &g, &r,
			       &e);
	ir_model_close(m);
	if (rc) {
		ir_plan_free(&plan);
		ir_cluster_free(&c);
		if (r.status == PASS_INFEASIBLE)
			return step_fail(s, EXIT_INFEASIBLE, r.message);
		return step_fail(s, EXIT_BADINPUT, ir_error_str(&e, buf, sizeof buf));
	}
	SimResult sr;
	if (sim_plan(&g, &c, &plan, &sr, &e)) {
		step_fail(s, EXIT_INFEASIBLE, ir_error_str(&e, buf, sizeof buf));
	} else {
		s->step_s = sr.step_time_s;
		s->tokens_per_s = sr.tokens_per_s;
		s->tokens_per_step = sr.tokens_per_s * sr.step_time_s;
		s->tflops_per_gpu = sr.tflops_per_gpu;
		s->mfu = sr.mfu;
		s->peak_mem_bytes = sr.peak_memory_bytes;
		s->plan = plan_summary(&g, &plan);
		if (!sr.fits)
			step_fail(s, EXIT_INFEASIBLE, "the plan does not fit the GPUs' memory");
		else if (plan_path && ir_plan_write(&plan, plan_path, &e))
			step_fail(s, EXIT_BADINPUT, ir_error_str(&e, buf, sizeof buf));
		sim_result_free(&sr);
	}
	ir_plan_free(&plan);
	ir_graph_free(&g);
	ir_cluster_free(&c);
	s->compile_s = ir_now_s() - t0;
	return s->status;
}

void tool_step_free(ToolStep *s)
{
	json_decref(s->plan);
	s->plan = NULL;
}

/*
 * The run's time and cost from a step: the one place sweep and provision
 * price a run, on estimate's functions (sim_run_time, sim_cost with the
 * cluster's defaults); compare's cost columns are to come the same way.
 */
int tool_point_run(const ToolStep *s, double tokens, const SimFailureModel *f, ToolRun *r,
		   IrError *e)
{
	memset(r, 0, sizeof *r);
	r->ettr = 1;
	SimRunTime rt;
	if (sim_run_time(s->step_s, s->gpus, s->tokens_per_step, tokens, &rt, e))
		return -1;
	r->steps = rt.steps;
	r->wall_s = rt.wall_s;
	r->gpu_hours = rt.gpu_hours;
	sim_cost(&s->cost, rt.gpu_hours, &r->cost);
	if (!f)
		return 0;
	SimRunSpec spec = {.work_s = rt.wall_s, .step_s = s->step_s, .gpus = s->gpus,
			   .gpus_per_node = s->gpus_per_node};
	SimResilience res;
	if (sim_resilience(&spec, f, &res, e))
		return -1;
	r->failures = true;
	r->ettr = res.ettr;
	r->fail_wall_s = res.wall_s;
	r->fail_gpu_hours = res.gpu_hours;
	r->ckpt_interval_s = res.interval_s;
	sim_cost(&s->cost, res.gpu_hours, &r->fail_cost);
	return 0;
}

double tool_run_days(const ToolRun *r)
{
	return (r->failures ? r->fail_wall_s : r->wall_s) / 86400.0;
}

double tool_run_cost(const ToolRun *r)
{
	return r->failures ? r->fail_cost.cost : r->cost.cost;
}
