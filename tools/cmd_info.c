/*
 * cmd_info.c -- `meshplan info`: what a model or a cluster is.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tools/tools.h"

static const char *VERB = "info";

enum { O_CLUSTER, O_NODES, O_SET, O_JSON, O_HELP, NOPT };

static const ToolOpt opts[NOPT] = {
	[O_CLUSTER] = {"cluster", 0, TOOL_STR, "C", TOOL_ANY, false, 0,
		       "describe this cluster (file or zoo name) instead of a model"},
	[O_NODES] = {"nodes", 0, TOOL_INT, "N", 1, false, 1000000, false, 0,
		     "with --cluster: node count"},
	[O_SET] = {"set", 0, TOOL_PARAMS, "NAME=VALUE,...", TOOL_ANY, true, 0,
		   "override model parameters"},
	[O_JSON] = {"json", 0, TOOL_FLAG, NULL, TOOL_ANY, false, 0, "one JSON object on stdout"},
	[O_HELP] = {"help", 'h', TOOL_FLAG, NULL, TOOL_ANY, false, 0, "this text"},
};

static void usage(FILE *f)
{
	fputs("usage: meshplan info MODEL [--set NAME=VALUE,...] [--json]\n"
	      "       meshplan info --cluster CLUSTER [--nodes N] [--json]\n"
	      "\n"
	      "For a model: parameter count, op and tensor counts of the forward and the\n"
	      "training graph, FLOPs per sample (forward, backward, total), bytes of\n"
	      "weights, gradients and optimizer state (mixed-precision Adam), activation\n"
	      "bytes per sample: what backward reads of the forward pass on one GPU without\n"
	      "recomputation, with the model's attention kernel (fused: FlashAttention's\n"
	      "softmax statistics only; eager: the s x s scores; --set attention=fused|eager).\n"
	      "MODEL is a path or a zoo name (gpt, gpt:1.3b, llama:70b).\n"
	      "For a cluster: GPUs, peak FLOP/s, memory, links and economics.\n\noptions:\n", f);
	tool_opts_help(f, opts, NOPT);
}

static int info_cluster(const char *name, int nodes, bool json)
{
	IrCluster c;
	IrError e;
	if (ir_cluster_load(name, nodes, &c, &e))
		return tool_input_error(&e);
	int n = ir_cluster_gpus(&c);
	if (json) {
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(c.name));
		json_object_set_new(o, "file", json_string(c.file));
		json_object_set_new(o, "gpu", json_string(c.gpu.name));
		json_object_set_new(o, "nodes", json_integer(c.nodes));
		json_object_set_new(o, "gpus_per_node", json_integer(c.gpus_per_node));
		json_object_set_new(o, "gpus", json_integer(n));
		json_t *peak = json_object();
		for (int t = 0; t < IR_I32; t++)
			json_object_set_new(peak, ir_dtype_name((IrDType)t),
					    json_real(c.gpu.peak_flops[t]));
		json_object_set_new(o, "peak_flops", peak);
		json_object_set_new(o, "memory_bytes", json_real(c.gpu.hbm_bytes));
		json_object_set_new(o, "memory_reserve_bytes", json_real(c.gpu.reserve_bytes));
		json_object_set_new(o, "usable_memory_bytes", json_real(c.gpu.mem_bytes));
		json_object_set_new(o, "hbm_bytes_per_s", json_real(c.gpu.hbm_bw));
		json_object_set_new(o, "power_w", json_real(c.gpu.power_w));
		json_object_set_new(o, "matmul_efficiency",
				    json_real(c.gpu.matmul_eff > 0 ? c.gpu.matmul_eff :
								     sim_hw.eff_matmul));
		json_object_set_new(o, "intra_node_bytes_per_s", json_real(c.intra.bw));
		json_object_set_new(o, "intra_node_latency_s", json_real(c.intra.latency));
		json_object_set_new(o, "network_bytes_per_s", json_real(c.inter.bw));
		json_object_set_new(o, "network_latency_s", json_real(c.inter.latency));
		json_object_set_new(o, "price_per_gpu_hour", json_real(c.price_per_gpu_hour));
		json_object_set_new(o, "currency", json_string(c.currency));
		json_object_set_new(o, "carbon_kg_per_kwh", json_real(c.carbon_kg_per_kwh));
		json_object_set_new(o, "pue", json_real(c.pue));
		tool_print_json(o);
	} else {
		printf("cluster %s (%s)\n", c.name, c.file);
		printf("  GPUs              %d nodes x %d = %d x %s\n", c.nodes, c.gpus_per_node, n,
		       c.gpu.name);
		printf("  peak per GPU      bf16 %.1f TFLOP/s, fp16 %.1f, fp32 %.1f\n",
		       c.gpu.peak_flops[IR_BF16] / 1e12, c.gpu.peak_flops[IR_F16] / 1e12,
		       c.gpu.peak_flops[IR_F32] / 1e12);
		printf("  memory per GPU    %.1f GiB (%.1f usable, %.1f reserved for CUDA context, "
		       "NCCL and fragmentation), HBM %.0f GB/s, %.0f W\n",
		       c.gpu.hbm_bytes / 1073741824.0, c.gpu.mem_bytes / 1073741824.0,
		       c.gpu.reserve_bytes / 1073741824.0, c.gpu.hbm_bw / 1e9, c.gpu.power_w);
		printf("  large GEMMs       %.1f%% of peak%s\n",
		       100 * (c.gpu.matmul_eff > 0 ? c.gpu.matmul_eff : sim_hw.eff_matmul),
		       c.gpu.matmul_eff > 0 ? "" : " (the hardware model's default)");
		printf("  within a node     %.1f GB/s per GPU per direction, %.1f us\n",
		       c.intra.bw / 1e9, c.intra.latency * 1e6);
		printf("  between nodes     %.2f GB/s per GPU per direction, %.1f us\n",
		       c.inter.bw / 1e9, c.inter.latency * 1e6);
		printf("  cluster peak      %.2f PFLOP/s bf16\n",
		       c.gpu.peak_flops[IR_BF16] * n / 1e15);
		if (c.price_per_gpu_hour > 0)
			printf("  price             %.2f %s per GPU-hour\n", c.price_per_gpu_hour,
			       c.currency);
		if (c.carbon_kg_per_kwh > 0)
			printf("  grid              %.3f kg CO2e per kWh, PUE %.2f\n",
			       c.carbon_kg_per_kwh, c.pue);
	}
	ir_cluster_free(&c);
	return EXIT_OK;
}

/* Activations one batch keeps for backward on one GPU, no recomputation
 * (the simulator's definition, runtime-sim/memory.c). */
static double activation_bytes(const IrGraph *g)
{
	IrPlan p;
	ir_plan_init(&p);
	IrStagePlan s = {0};
	ir_stage_alloc(&p, &s, g->nops, 0);
	s.first_layer = 0;
	s.last_layer = g->nlayers - 1;
	s.mesh = (IrMesh){0, 1, 0, 1};
	s.n0 = s.n1 = 1;
	for (int o = 0; o < g->nops; o++) {
		s.op[o] = o;
		s.strategy[o] = "";
		s.ways[o] = 1;
	}
	IrCluster c = {0};
	SimStageMemory m;
	IrError e;
	double b = sim_stage_memory(g, &c, &s, IR_RECOMP_NONE, 0, &m, &e) ? NAN : m.act_bytes;
	ir_plan_free(&p);
	return b;
}

static int info_model(const char *name, const IrParamSet *ps, bool json)
{
	IrError e;
	IrModelDoc *m = ir_model_open(name, &e);
	if (!m)
		return tool_input_error(&e);
	tool_model_notes(m, ps);
	IrGraph g;
	if (ir_model_instantiate(m, ps, &g, &e)) {
		ir_model_close(m);
		return tool_input_error(&e);
	}
	int fwd_tensors = g.ntensors;
	if (ir_build_training(&g, &e)) {
		ir_graph_free(&g);
		ir_model_close(m);
		return tool_input_error(&e);
	}
	IrStats s;
	ir_graph_stats(&g, &s);
	s.act_bytes = activation_bytes(&g);
	double B = (double)g.batch;
	if (json) {
		json_t *o = json_object();
		json_object_set_new(o, "model", json_string(g.name));
		json_object_set_new(o, "file", json_string(g.file));
		json_object_set_new(o, "params", json_integer(s.params));
		json_object_set_new(o, "ops", json_integer(s.nops));
		json_object_set_new(o, "tensors", json_integer(s.ntensors));
		json_object_set_new(o, "forward_ops", json_integer(s.nfwd_ops));
		json_object_set_new(o, "forward_tensors", json_integer(fwd_tensors));
		json_object_set_new(o, "layers", json_integer(g.nlayers));
		json_object_set_new(o, "batch", json_integer(g.batch));
		json_object_set_new(o, "seq", json_integer(g.seq));
		json_t *f = json_object();
		json_object_set_new(f, "forward", json_real(s.fwd_flops / B));
		json_object_set_new(f, "backward", json_real(s.bwd_flops / B));
		json_object_set_new(f, "total", json_real((s.fwd_flops + s.bwd_flops) / B));
		json_object_set_new(o, "flops_per_sample", f);
		json_object_set_new(o, "optimizer_flops_per_step", json_real(s.update_flops));
		json_t *sb = json_object();
		json_object_set_new(sb, "weights", json_real(s.weight_bytes));
		json_object_set_new(sb, "gradients", json_real(s.grad_bytes));
		json_object_set_new(sb, "optimizer", json_real(s.opt_bytes));
		json_object_set_new(o, "state_bytes", sb);
		json_object_set_new(o, "activation_bytes_per_sample", json_real(s.act_bytes / B));
		json_object_set_new(o, "attention", json_string(g.fused_attention ? "fused" : "eager"));
		tool_print_json(o);
	} else {
		char a[32], b[32], c[32];
		printf("model %s (%s)\n", g.name, g.file);
		printf("  parameters          %s (%lld)\n", tool_si((double)s.params, a, sizeof a),
		       (long long)s.params);
		printf("  layers              %d (%s .. %s)\n", g.nlayers,
		       g.nlayers ? g.layers[0].name : "-",
		       g.nlayers ? g.layers[g.nlayers - 1].name : "-");
		printf("  forward graph       %d ops, %d tensors\n", s.nfwd_ops, fwd_tensors);
		printf("  training graph      %d ops, %d tensors\n", s.nops, s.ntensors);
		printf("  batch x seq         %lld x %lld\n", (long long)g.batch, (long long)g.seq);
		printf("  FLOPs per sample    forward %s, backward %s, total %s\n",
		       tool_si(s.fwd_flops / B, a, sizeof a), tool_si(s.bwd_flops / B, b, sizeof b),
		       tool_si((s.fwd_flops + s.bwd_flops) / B, c, sizeof c));
		printf("  optimizer per step  %s FLOPs\n", tool_si(s.update_flops, a, sizeof a));
		printf("  state               weights %sB, gradients %sB, optimizer %sB (%.1f bytes/param)\n",
		       tool_si(s.weight_bytes, a, sizeof a), tool_si(s.grad_bytes, b, sizeof b),
		       tool_si(s.opt_bytes, c, sizeof c),
		       (s.weight_bytes + s.grad_bytes + s.opt_bytes) / (double)s.params);
		printf("  activations/sample  %sB (what backward reads, no recomputation, %s attention)\n",
		       tool_si(s.act_bytes / B, a, sizeof a), g.fused_attention ? "fused" : "eager");
	}
	ir_graph_free(&g);
	ir_model_close(m);
	return EXIT_OK;
}

int cmd_info(int argc, char **argv)
{
	IrParamSet ps = {0};
	ToolVal v[NOPT];
	const char *pos[1];
	int npos;
	ToolCmdLine cl = {.verb = VERB, .opts = opts, .nopts = NOPT, .maxpos = 1, .params = &ps, .usage = usage};
	int code;
	if (tool_opts_done(&cl, argc, argv, v, pos, &npos, &code))
		return code;
	const char *model = npos ? pos[0] : NULL, *cluster = v[O_CLUSTER].str;
	bool json = v[O_JSON].set;
	if (cluster && !model)
		return info_cluster(cluster, (int)v[O_NODES].num, json);
	if (!model) {
		tool_error(VERB, EXIT_BADINPUT, "name a model or --cluster (see --help)");
		return EXIT_BADINPUT;
	}
	if (cluster)
		return tool_error(VERB, EXIT_BADINPUT, "give a model or --cluster, not both");
	return info_model(model, &ps, json);
}
