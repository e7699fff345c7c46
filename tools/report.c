/*
 * report.c -- the JSON report of a simulated plan, shared by simulate and
 * compile (compile adds its own keys).
 */
#include "tools/tools.h"

static json_t *mesh_json(const IrMesh *m)
{
	return json_pack("{s:i,s:i,s:i,s:i}", "node0", m->node0, "nodes", m->nnodes, "gpu0",
			 m->gpu0, "gpus", m->ngpus);
}

json_t *tool_sim_json(const IrGraph *g, const IrCluster *c, const IrPlan *p, const SimResult *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "model", json_string(p->model));
	json_object_set_new(o, "cluster", json_string(c->name));
	json_object_set_new(o, "gpus", json_integer(r->ngpus));
	json_object_set_new(o, "global_batch", json_integer(p->global_batch));
	json_object_set_new(o, "microbatch", json_integer(p->microbatch));
	json_object_set_new(o, "microbatches", json_integer(p->nmicro));
	json_object_set_new(o, "seq", json_integer(g->seq));
	json_object_set_new(o, "schedule", json_string(ir_schedule_name(p->schedule)));
	json_object_set_new(o, "chunks", json_integer(p->chunks));
	json_object_set_new(o, "recompute", json_string(ir_recompute_name(p->recompute)));
	json_object_set_new(o, "zero", json_integer(p->zero));
	char ov[64];
	json_object_set_new(o, "overlap", json_string(ir_overlap_name(p->overlap, ov, sizeof ov)));
	json_object_set_new(o, "pipeline_ranks", json_integer(r->nranks));
	json_object_set_new(o, "step_time_s", json_real(r->step_time_s));
	json_object_set_new(o, "pipeline_s", json_real(r->tl.span_s));
	json_object_set_new(o, "samples_per_s", json_real(r->samples_per_s));
	json_object_set_new(o, "tokens_per_s", json_real(r->tokens_per_s));
	json_object_set_new(o, "model_flops_per_step", json_real(r->model_flops));
	json_object_set_new(o, "hw_flops_per_step", json_real(r->hw_flops));
	json_object_set_new(o, "tflops_per_gpu", json_real(r->tflops_per_gpu));
	json_object_set_new(o, "hw_tflops_per_gpu", json_real(r->hw_tflops_per_gpu));
	json_object_set_new(o, "mfu", json_real(r->mfu));
	json_object_set_new(o, "hfu", json_real(r->hfu));
	json_object_set_new(o, "bubble_fraction", json_real(r->bubble_fraction));
	json_object_set_new(o, "peak_memory_bytes", json_real(r->peak_memory_bytes));
	json_object_set_new(o, "memory_bytes_per_gpu", json_real(c->gpu.mem_bytes));
	json_object_set_new(o, "hbm_bytes_per_gpu", json_real(c->gpu.hbm_bytes));
	json_object_set_new(o, "memory_reserve_bytes", json_real(c->gpu.reserve_bytes));
	json_object_set_new(o, "fits", json_boolean(r->fits));
	int k = r->peak_rank;
	json_object_set_new(o, "peak_memory", json_pack("{s:i,s:f,s:f,s:f,s:f}", "rank", k,
		"weights", r->rank_weight[k], "gradients", r->rank_grad[k], "optimizer",
		r->rank_opt[k], "activations", r->tl.rank_act[k]));
	json_t *ranks = json_array();
	for (int i = 0; i < r->nranks; i++)
		json_array_append_new(ranks, json_pack("{s:i,s:f,s:f,s:f,s:f}", "rank", i, "busy_s",
			r->tl.rank_busy[i], "end_s", r->tl.rank_end[i], "step_s", r->rank_step_s[i],
			"memory_bytes", r->rank_mem[i]));
	json_object_set_new(o, "ranks", ranks);
	json_t *stages = json_array();
	for (int i = 0; i < r->nstages; i++) {
		const IrStagePlan *s = &p->stages[i];
		const SimStageCost *sc = &r->stage[i];
		json_t *j = json_object();
		json_object_set_new(j, "layers", json_pack("[i,i]", s->first_layer, s->last_layer));
		json_object_set_new(j, "first_layer_name", json_string(g->layers[s->first_layer].name));
		json_object_set_new(j, "last_layer_name", json_string(g->layers[s->last_layer].name));
		json_object_set_new(j, "rank", json_integer(i % r->nranks));
		json_object_set_new(j, "mesh", mesh_json(&s->mesh));
		json_object_set_new(j, "logical_mesh", json_pack("[i,i]", s->n0, s->n1));
		json_object_set_new(j, "forward_s", json_real(sc->fwd_s));
		json_object_set_new(j, "backward_s", json_real(sc->bwd_s));
		json_object_set_new(j, "forward_comm_s", json_real(sc->fwd_comm_s));
		json_object_set_new(j, "backward_comm_s", json_real(sc->bwd_comm_s));
		json_object_set_new(j, "recompute_s", json_real(sc->recompute_s));
		json_object_set_new(j, "step_s", json_real(sc->step_s));
		json_object_set_new(j, "transfer_s", json_real(r->xfer_s[i]));
		json_object_set_new(j, "memory", json_pack("{s:f,s:f,s:f,s:f,s:f}", "weights",
			sc->mem.weight_bytes, "gradients", sc->mem.grad_bytes, "optimizer",
			sc->mem.opt_bytes, "activations_per_microbatch", sc->mem.act_bytes,
			"activation_work", sc->mem.act_work_bytes));
		json_array_append_new(stages, j);
	}
	json_object_set_new(o, "stages", stages);
	return o;
}


void tool_print_step_summary(const IrCluster *c, const SimResult *r)
{
	const double GiB = 1073741824.0;
	printf("  throughput        %.2f samples/s, %.0f tokens/s\n", r->samples_per_s,
	       r->tokens_per_s);
	printf("  TFLOPS per GPU    %.1f model (MFU %.1f%%), %.1f hardware (HFU %.1f%%)\n",
	       r->tflops_per_gpu, 100 * r->mfu, r->hw_tflops_per_gpu, 100 * r->hfu);
	int k = r->peak_rank;
	printf("  peak memory       %.2f GiB of %.2f usable (HBM %.2f less %.2f reserved) on rank "
	       "%d (weights %.2f, gradients %.2f, optimizer %.2f, activations %.2f): %s\n",
	       r->peak_memory_bytes / GiB, c->gpu.mem_bytes / GiB, c->gpu.hbm_bytes / GiB,
	       c->gpu.reserve_bytes / GiB, k, r->rank_weight[k] / GiB,
	       r->rank_grad[k] / GiB, r->rank_opt[k] / GiB, r->tl.rank_act[k] / GiB,
	       r->fits ? "fits" : "DOES NOT FIT");
}

void tool_stage_labels(const IrGraph *g, const IrStagePlan *s, char *layers, char *mesh,
		       char *logical)
{
	snprintf(layers, 64, "%d-%d %s..%s", s->first_layer, s->last_layer,
		 g->layers[s->first_layer].name, g->layers[s->last_layer].name);
	snprintf(mesh, 32, "%dx%d@n%dg%d", s->mesh.nnodes, s->mesh.ngpus, s->mesh.node0,
		 s->mesh.gpu0);
	snprintf(logical, 16, "%dx%d", s->n0, s->n1);
}
