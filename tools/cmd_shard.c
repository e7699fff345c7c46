/*
 * cmd_shard.c -- `meshplan shard`: the intra-op pass on one logical mesh.
 */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "tools/tools.h"

static const char *usage_text =
	"usage: meshplan shard MODEL --cluster C --mesh N0xN1 [--method ilp|data|zero2|zero3|heuristic|expert]\n"
	"                      [--batch N] [--microbatches M] [--memory-budget GIB] [--time-limit S]\n"
	"                      [--layers FIRST:LAST] [--nodes N] [--set NAME=VALUE,...] [--json]\n"
	"\n"
	"Chooses how every op of the training graph (forward, backward, optimizer update)\n"
	"is sharded on an N0 x N1 logical view of the first N0*N1 GPUs of the cluster,\n"
	"minimising step time (compute + collectives + resharding, in seconds from the\n"
	"hardware model).  --batch sets the model's batch parameter (samples per\n"
	"microbatch); --microbatches weights per-microbatch costs against the once-per-step\n"
	"gradient reduction and update (default 1).  --memory-budget bounds weights +\n"
	"gradients + optimizer state per device.  --layers restricts to a layer range.\n"
	"Exit: 0 plan found, 1 no plan (memory budget, time limit), 2 bad input.\n";

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
	const char *model = NULL, *cluster = NULL, *mesh = NULL;
	long nodes = 0, batch = 0, micro = 1;
	double budget = 0, tlimit = 0;
	int first = -1, last = -1;
	bool json = false;
	PassMethod method = PASS_ILP;
	IrParamSet ps = {0};
	IrError e;
	memset(&e, 0, sizeof e);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool more = i + 1 < argc;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_text, stdout);
			return EXIT_OK;
		} else if (!strcmp(a, "--json")) {
			json = true;
		} else if (!strcmp(a, "--cluster") && more) {
			cluster = argv[++i];
		} else if (!strcmp(a, "--mesh") && more) {
			mesh = argv[++i];
		} else if (!strcmp(a, "--method") && more) {
			if (pass_method_parse(argv[++i], &method))
				return tool_error("shard", EXIT_BADINPUT,
						  "unknown method '%s' (ilp, data, zero2, zero3, heuristic, expert)",
						  argv[i]);
		} else if (!strcmp(a, "--set") && more) {
			if (ir_params_parse(&ps, argv[++i], &e))
				return tool_input_error(&e);
		} else if (!strcmp(a, "--nodes") && more) {
			if (!tool_parse_int(argv[++i], &nodes) || nodes <= 0 || nodes > IR_MAX_NODES)
				return tool_error("shard", EXIT_BADINPUT, "--nodes needs an integer in 1..%d",
						  IR_MAX_NODES);
		} else if (!strcmp(a, "--batch") && more) {
			if (!tool_parse_int(argv[++i], &batch) || batch <= 0 || batch > IR_MAX_BATCH)
				return tool_error("shard", EXIT_BADINPUT, "--batch needs an integer in 1..%lld",
						  (long long)IR_MAX_BATCH);
		} else if (!strcmp(a, "--microbatches") && more) {
			if (!tool_parse_int(argv[++i], &micro) || micro <= 0 ||
			    micro > IR_MAX_MICROBATCHES)
				return tool_error("shard", EXIT_BADINPUT,
						  "--microbatches needs an integer in 1..%d",
						  IR_MAX_MICROBATCHES);
		} else if (!strcmp(a, "--memory-budget") && more) {
			if (!tool_parse_double(argv[++i], &budget) || budget <= 0)
				return tool_error("shard", EXIT_BADINPUT,
						  "--memory-budget needs a positive number of GiB");
			budget *= 1073741824.0;
		} else if (!strcmp(a, "--time-limit") && more) {
			if (!tool_parse_double(argv[++i], &tlimit) || tlimit <= 0)
				return tool_error("shard", EXIT_BADINPUT,
						  "--time-limit needs a positive number of seconds");
		} else if (!strcmp(a, "--layers") && more) {
			int end = 0;
			if (sscanf(argv[++i], "%d:%d%n", &first, &last, &end) != 2 || argv[i][end] ||
			    first < 0 || last < first)
				return tool_error("shard", EXIT_BADINPUT,
						  "--layers needs FIRST:LAST, got '%s'", argv[i]);
		} else if (a[0] == '-') {
			return tool_error("shard", EXIT_BADINPUT, "unknown or incomplete option '%s'", a);
		} else if (!model) {
			model = a;
		} else {
			return tool_error("shard", EXIT_BADINPUT, "unexpected argument '%s'", a);
		}
	}
	if (!model || !cluster || !mesh)
		return tool_error("shard", EXIT_BADINPUT,
				  "needs MODEL, --cluster and --mesh (meshplan shard --help)");
	int n0, n1;
	if (ir_mesh_shape_parse(mesh, &n0, &n1, &e))
		return tool_error("shard", EXIT_BADINPUT, "%s", e.msg);
	IrCluster c;
	if (ir_cluster_load(cluster, (int)nodes, &c, &e))
		return tool_input_error(&e);
	IrLogicalMesh lm;
	if (tool_mesh(&c, n0, n1, &lm, &e)) {
		ir_cluster_free(&c);
		return tool_error("shard", EXIT_BADINPUT, "%s", e.msg);
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
		return tool_error("shard", EXIT_BADINPUT, "--layers: the model has layers 0:%d", n - 1);
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
