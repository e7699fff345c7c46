/*
 * cmd_shard.c -- `meshplan shard`: the intra-op pass on one logical mesh.
 */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "tools/tools.h"

static const char *VERB = "shard";

enum {
	O_CLUSTER, O_MESH, O_METHOD, O_BATCH, O_MICROBATCHES, O_MEMORY_BUDGET, O_TIME_LIMIT,
	O_LAYERS, O_NODES, O_SET, O_JSON, O_HELP, NOPT
};

static const ToolOpt opts[NOPT] = {
	[O_CLUSTER] = {"cluster", 0, TOOL_STR, "C", TOOL_ANY, false, 0,
		       "cluster file or zoo name (required)"},
	[O_MESH] = {"mesh", 0, TOOL_STR, "N0xN1", TOOL_ANY, false, 0,
		    "logical mesh over the first N0*N1 GPUs (required)"},
	[O_METHOD] = {"method", 0, TOOL_STR, "ilp|data|zero2|zero3|heuristic|expert", TOOL_ANY,
		      false, 0, "how ops are sharded (default ilp)"},
	[O_BATCH] = {"batch", 0, TOOL_INT, "N", 1, false, 1 << 30, false, 0,
		     "the model's batch parameter (samples per microbatch)"},
	[O_MICROBATCHES] = {"microbatches", 0, TOOL_INT, "M", 1, false, IR_MAX_MICROBATCHES, false, 0,
			    "weight per-microbatch costs against per-step ones (1)"},
	[O_MEMORY_BUDGET] = {"memory-budget", 0, TOOL_NUM, "GIB", TOOL_POS, false, 0,
			     "bound weights + gradients + optimizer state per device"},
	[O_TIME_LIMIT] = {"time-limit", 0, TOOL_NUM, "S", TOOL_POS, false, 0,
			  "bound the ILP solve (best found kept)"},
	[O_LAYERS] = {"layers", 0, TOOL_STR, "FIRST:LAST", TOOL_ANY, false, 0,
		      "restrict to a layer range"},
	[O_NODES] = {"nodes", 0, TOOL_INT, "N", 1, false, 1000000, false, 0,
		     "node count (default: the cluster file's)"},
	[O_SET] = {"set", 0, TOOL_PARAMS, "NAME=VALUE,...", TOOL_ANY, true, 0,
		   "override model parameters"},
	[O_JSON] = {"json", 0, TOOL_FLAG, NULL, TOOL_ANY, false, 0, "one JSON object on stdout"},
	[O_HELP] = {"help", 'h', TOOL_FLAG, NULL, TOOL_ANY, false, 0, "this text"},
};

static void usage(FILE *f)
{
	fputs("usage: meshplan shard MODEL --cluster C --mesh N0xN1 [options]\n"
	      "\n"
	      "Chooses how every op of the training graph (forward, backward, optimizer update)\n"
	      "is sharded on an N0 x N1 logical view of the first N0*N1 GPUs of the cluster,\n"
	      "minimising step time (compute + collectives + resharding, in seconds from the\n"
	      "hardware model).\n\noptions:\n", f);
	tool_opts_help(f, opts, NOPT);
	fputs("\nExit: 0 plan found, 1 no plan (memory budget, time limit), 2 bad input.\n", f);
}

/* Logical mesh over the first n0*n1 devices of the cluster. */
int tool_mesh(const IrCluster *c, int n0, int n1, IrLogicalMesh *v, IrError *e)
{
	int d = n0 * n1, M = c->gpus_per_node;
	IrMesh m;
	if (d <= M)
		m = (IrMesh){0, 1, 0, d};
	else if (d % M == 0)
		m = (IrMesh){0, d / M, 0, M};
	else
		return ir_fail(e, "", 0, "a %dx%d mesh (%d GPUs) is neither within one node of %d "
			       "GPUs nor whole nodes", n0, n1, d, M);
	if (m.nnodes > c->nodes)
		return ir_fail(e, "", 0, "a %dx%d mesh needs %d GPUs, the cluster has %d", n0, n1, d,
			       ir_cluster_gpus(c));
	return ir_logical_mesh(c, &m, n0, n1, v, e);
}

static const char *coll_short(int k)
{
	return sim_coll_name((SimColl)k);
}

int cmd_shard(int argc, char **argv)
{
	long nodes, batch, micro;
	double budget, tlimit;
	int first = -1, last = -1;
	PassMethod method = PASS_ILP;
	IrParamSet ps = {0};
	IrError e;
	memset(&e, 0, sizeof e);
	ToolVal v[NOPT];
	const char *pos[1];
	int npos;
	ToolCmdLine cl = {.verb = VERB, .opts = opts, .nopts = NOPT, .maxpos = 1, .params = &ps, .usage = usage};
	int code0;
	if (tool_opts_done(&cl, argc, argv, v, pos, &npos, &code0))
		return code0;
	const char *model = npos ? pos[0] : NULL, *cluster = v[O_CLUSTER].str,
		   *mesh = v[O_MESH].str;
	bool json = v[O_JSON].set;
	nodes = (long)v[O_NODES].num;
	batch = (long)v[O_BATCH].num;
	micro = v[O_MICROBATCHES].set ? (long)v[O_MICROBATCHES].num : 1;
	budget = v[O_MEMORY_BUDGET].num * 1073741824.0;
	tlimit = v[O_TIME_LIMIT].num;
	if (v[O_METHOD].set && pass_method_parse(v[O_METHOD].str, &method))
		return tool_error(VERB, EXIT_BADINPUT,
				  "unknown method '%s' (ilp, data, zero2, zero3, heuristic, expert)",
				  v[O_METHOD].str);
	if (v[O_LAYERS].set) {
		int end = 0;
		const char *l = v[O_LAYERS].str;
		if (sscanf(l, "%d:%d%n", &first, &last, &end) != 2 || l[end] || first < 0 ||
		    last < first)
			return tool_error(VERB, EXIT_BADINPUT, "--layers needs FIRST:LAST, got '%s'", l);
	}
	if (!model || !cluster || !mesh) {
		tool_error(VERB, EXIT_BADINPUT, "needs MODEL, --cluster and --mesh (see --help)");
		return EXIT_BADINPUT;
	}
	int n0, n1;
	if (ir_mesh_shape_parse(mesh, &n0, &n1, &e))
		return tool_error(VERB, EXIT_BADINPUT, "%s", e.msg);
	IrCluster c;
	if (ir_cluster_load(cluster, (int)nodes, &c, &e))
		return tool_input_error(&e);
	IrLogicalMesh lm;
	if (tool_mesh(&c, n0, n1, &lm, &e)) {
		ir_cluster_free(&c);
		return tool_error(VERB, EXIT_BADINPUT, "%s", e.msg);
	}
	if (batch)
		ir_params_set(&ps, "batch", batch);
	IrModelDoc *m = ir_model_open(model, &e);
	IrGraph g;
	if (!m || ir_model_instantiate(m, &ps, &g, &e)) {
		ir_model_close(m);
		ir_cluster_free(&c);
		return tool_input_error(&e);
	}
	ir_model_close(m);
	if (ir_build_training(&g, &e)) {
		ir_graph_free(&g);
		ir_cluster_free(&c);
		return tool_input_error(&e);
	}
	if (first < 0) {
		first = 0;
		last = g.nlayers - 1;
	}
	if (last >= g.nlayers) {
		int n = g.nlayers;
		ir_graph_free(&g);
		ir_cluster_free(&c);
		return tool_error(VERB, EXIT_BADINPUT, "--layers: the model has layers 0:%d", n - 1);
	}
	PassIntraOptions o = {.method = method, .nmicro = (int)micro, .memory_budget = budget,
			      .time_limit_s = tlimit};
	IrPlan plan;
	ir_plan_init(&plan);
	IrStagePlan st;
	PassIntraResult r;
	int rc = pass_intra_op(&g, &c, &lm, first, last, &o, &plan, &st, &r, &e);
	int code = rc ? (r.status == PASS_ERROR ? EXIT_BADINPUT : EXIT_INFEASIBLE) : EXIT_OK;
	if (json) {
		json_t *j = json_object();
		json_object_set_new(j, "status", json_string(pass_status_name(r.status)));
		json_object_set_new(j, "method", json_string(pass_method_name(method)));
		json_object_set_new(j, "mesh", json_pack("[i,i]", n0, n1));
		json_object_set_new(j, "objective_s", json_real(r.objective_s));
		json_object_set_new(j, "compute_s", json_real(r.compute_s));
		json_object_set_new(j, "communication_s", json_real(r.communication_s));
		json_object_set_new(j, "resharding_s", json_real(r.resharding_s));
		json_object_set_new(j, "gap", json_real(r.gap));
		json_object_set_new(j, "solve_time_s", json_real(r.solve_time_s));
		json_object_set_new(j, "variables", json_integer(r.variables));
		json_object_set_new(j, "constraints", json_integer(r.constraints));
		json_object_set_new(j, "message", json_string(r.message));
		json_t *ss = json_array(), *cs = json_array();
		if (!rc) {
			for (int i = 0; i < st.nops; i++)
				json_array_append_new(ss, json_pack("{s:s,s:s,s:s,s:i}", "op",
					g.ops[st.op[i]].name, "kind", ir_op_kind_name(g.ops[st.op[i]].kind),
					"strategy", st.strategy[i], "ways", st.ways[i]));
			for (int i = 0; i < st.ncomm; i++)
				json_array_append_new(cs, json_pack("{s:s,s:s,s:i,s:f,s:b,s:b}", "op",
					g.ops[st.comm[i].op].name, "kind", coll_short(st.comm[i].kind),
					"axis", st.comm[i].axis, "bytes", st.comm[i].bytes,
					"per_step", st.comm[i].per_step, "reshard", st.comm[i].reshard));
			json_object_set_new(j, "memory_bytes", json_pack("{s:f,s:f,s:f,s:f}", "weights",
				st.weight_bytes, "gradients", st.grad_bytes, "optimizer", st.opt_bytes,
				"activations_per_microbatch", st.act_bytes));
		}
		json_object_set_new(j, "strategies", ss);
		json_object_set_new(j, "collectives", cs);
		tool_print_json(j);
	} else if (rc) {
		fprintf(stderr, "meshplan shard: %s: %s\n", pass_status_name(r.status), r.message);
	} else {
		printf("%s on %s, %dx%d mesh, layers %d:%d, method %s: %s\n", g.name, c.name, n0, n1,
		       first, last, pass_method_name(method), pass_status_name(r.status));
		printf("  step objective   %.6f s = compute %.6f + communication %.6f + resharding %.6f\n",
		       r.objective_s, r.compute_s, r.communication_s, r.resharding_s);
		printf("  ILP              %d variables, %d constraints, solved in %.3f s%s\n",
		       r.variables, r.constraints, r.solve_time_s,
		       r.status == PASS_FEASIBLE ? " (time limit: best found)" : "");
		printf("  memory/device    weights %.3f GiB, gradients %.3f GiB, optimizer %.3f GiB, "
		       "activations %.3f GiB per microbatch\n",
		       st.weight_bytes / 1073741824.0, st.grad_bytes / 1073741824.0,
		       st.opt_bytes / 1073741824.0, st.act_bytes / 1073741824.0);
		printf("\n  %-40s %-11s %-5s %s\n", "op", "kind", "ways", "strategy (label=mesh axes)");
		for (int i = 0; i < st.nops; i++)
			printf("  %-40s %-11s %-5d %s\n", g.ops[st.op[i]].name,
			       ir_op_kind_name(g.ops[st.op[i]].kind), st.ways[i],
			       st.strategy[i][0] ? st.strategy[i] : "replicated");
		printf("\n  %-40s %-15s %-4s %-14s %s\n", "collective of op", "kind", "axis", "bytes",
		       "when");
		for (int i = 0; i < st.ncomm; i++)
			printf("  %-40s %-15s %-4s %-14.0f %s%s\n", g.ops[st.comm[i].op].name,
			       coll_short(st.comm[i].kind),
			       st.comm[i].axis == 2 ? "0+1" : st.comm[i].axis ? "1" : "0", st.comm[i].bytes,
			       st.comm[i].per_step ? "per step" : "per microbatch",
			       st.comm[i].reshard ? ", resharding" : "");
	}
	ir_plan_free(&plan);
	ir_graph_free(&g);
	ir_cluster_free(&c);
	return code;
}
