/*
 * test_ir.c -- the IR: expressions, model loading, training graph, clusters,
 * meshes, and the errors bad input gets.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <libxml/parser.h>

#include "ir/ir.h"
#include "tests/helpers.h"

#define DATA MESHPLAN_DATA_DIR "/tests/data"

/* ---- helpers ---- */


static int lookup_none(void *ctx, const char *name, int64_t *v)
{
	(void)ctx;
	if (!strcmp(name, "hidden")) {
		*v = 2304;
		return 0;
	}
	return -1;
}

/* ---- expressions ---- */

Test(expr, evaluates_precedence_and_parameters)
{
	int64_t v;
	char why[128];
	cr_assert_eq(ir_expr_eval("4*hidden + hidden/24 - (3 % 2)", lookup_none, NULL, &v, why,
				  sizeof why), 0);
	cr_assert_eq(v, 4 * 2304 + 96 - 1);
}

Test(expr, reports_overflow_division_by_zero_and_unknown_names)
{
	int64_t v;
	char why[128];
	cr_assert_neq(ir_expr_eval("9223372036854775807+1", NULL, NULL, &v, why, sizeof why), 0);
	cr_assert(strstr(why, "overflows"), "%s", why);
	cr_assert_neq(ir_expr_eval("hidden/(hidden-2304)", lookup_none, NULL, &v, why, sizeof why), 0);
	cr_assert(strstr(why, "division by zero"), "%s", why);
	cr_assert_neq(ir_expr_eval("heads*2", lookup_none, NULL, &v, why, sizeof why), 0);
	cr_assert(strstr(why, "unknown parameter 'heads'"), "%s", why);
	cr_assert_neq(ir_expr_eval("3 +", NULL, NULL, &v, why, sizeof why), 0);
}

/* ---- the GPT family against Megatron-LM's formulas ---- */

typedef struct {
	const char *set;
	double l, h;
} MegatronRow;

static const MegatronRow megatron[] = {
	{"layers=24,hidden=2304,heads=24,seq=2048", 24, 2304},   /* 1.7B */
	{"layers=40,hidden=6144,heads=48,seq=2048", 40, 6144},   /* 18.4B */
	{"layers=80,hidden=12288,heads=96,seq=2048", 80, 12288}, /* 145.6B */
	{"layers=128,hidden=25600,heads=160,seq=2048", 128, 25600}, /* 1008B */
};

Test(gpt, parameter_count_matches_megatron_formula_within_0_1_percent)
{
	const double V = 51200, s = 2048;
	for (size_t i = 0; i < sizeof megatron / sizeof megatron[0]; i++) {
		const MegatronRow *r = &megatron[i];
		IrGraph g = test_forward_graph("gpt", r->set);
		IrStats st;
		ir_graph_stats(&g, &st);
		double P = 12 * r->l * r->h * r->h *
			   (1 + 13 / (12 * r->h) + (V + s) / (12 * r->l * r->h));
		double err = fabs((double)st.params - P) / P;
		cr_expect_lt(err, 0.001, "%s: %lld params vs formula %.0f (%.4f%%)", r->set,
			     (long long)st.params, P, 100 * err);
		ir_graph_free(&g);
	}
}

Test(gpt, training_flops_per_sample_match_megatron_formula_within_3_percent)
{
	const double V = 51200, s = 2048;
	for (size_t i = 0; i < sizeof megatron / sizeof megatron[0]; i++) {
		const MegatronRow *r = &megatron[i];
		IrGraph g = test_graph("gpt", r->set);
		IrStats st;
		ir_graph_stats(&g, &st);
		double got = (st.fwd_flops + st.bwd_flops) / (double)g.batch;
		double want = 72 * s * r->l * r->h * r->h *
			      (1 + s / (6 * r->h) + V / (12 * r->l * r->h));
		double err = fabs(got - want) / want;
		cr_expect_lt(err, 0.03, "%s: %.4g vs %.4g FLOPs (%.2f%%)", r->set, got, want,
			     100 * err);
		ir_graph_free(&g);
	}
}

Test(gpt, presets_and_set_overrides_apply_in_order)
{
	IrGraph a = test_forward_graph("gpt:1.3b", NULL);
	IrGraph b = test_forward_graph("gpt:1.3b", "layers=2");
	cr_assert_eq(a.nlayers, 24 + 2); /* embed + blocks + head */
	cr_assert_eq(b.nlayers, 2 + 2);
	ir_graph_free(&a);
	ir_graph_free(&b);
}

Test(llama, presets_match_published_parameter_counts_within_1_percent)
{
	const struct {
		const char *name;
		double params;
	} rows[] = {{"llama:7b", 6.74e9}, {"llama:13b", 13.0e9}, {"llama:70b", 69.0e9}};
	for (int i = 0; i < 3; i++) {
		IrGraph g = test_forward_graph(rows[i].name, NULL);
		IrStats st;
		ir_graph_stats(&g, &st);
		double err = fabs((double)st.params - rows[i].params) / rows[i].params;
		cr_expect_lt(err, 0.01, "%s: %lld params (%.2f%% off)", rows[i].name,
			     (long long)st.params, 100 * err);
		ir_graph_free(&g);
	}
}

/* ---- training graph ---- */

Test(training, einsum_backward_costs_exactly_twice_its_forward)
{
	IrGraph g = test_graph(DATA "/tiny.xml", NULL);
	int checked = 0;
	for (int i = 0; i < g.nfwd_ops; i++) {
		const IrOp *f = &g.ops[i];
		if (f->kind != IR_EINSUM)
			continue;
		double bwd = 0;
		int n = 0;
		for (int j = g.nfwd_ops; j < g.nops; j++)
			if (g.ops[j].fwd == i && g.ops[j].kind == IR_EINSUM) {
				bwd += g.ops[j].flops;
				n++;
			}
		/* the first layer's input x needs no gradient: only dW there */
		bool needs_dx = g.tensors[f->in[0]].role != IR_T_INPUT;
		cr_assert_eq(n, needs_dx ? 2 : 1, "%s", f->name);
		if (needs_dx) {
			cr_expect_float_eq(bwd, 2 * f->flops, 1e-9, "%s: %g vs %g", f->name, bwd,
					   f->flops);
			checked++;
		}
	}
	cr_assert_eq(checked, 4); /* fc2 x2, fc1 of block1, logits */
	ir_graph_free(&g);
}

Test(training, mixed_precision_adam_state_is_16_bytes_per_parameter)
{
	IrGraph g = test_graph(DATA "/tiny.xml", NULL);
	IrStats st;
	ir_graph_stats(&g, &st);
	cr_assert_eq(st.params, 2 * (8 * 32 + 32 * 8) + 8 * 4);
	cr_assert_float_eq(st.weight_bytes, 2.0 * st.params, 1e-9);
	cr_assert_float_eq(st.grad_bytes, 2.0 * st.params, 1e-9);
	cr_assert_float_eq(st.opt_bytes, 12.0 * st.params, 1e-9);
	ir_graph_free(&g);
}

Test(training, every_weight_gets_one_accumulation_and_one_adam_update)
{
	IrGraph g = test_graph("gpt", "layers=2,hidden=64,heads=4,seq=16,vocab=128");
	int weights = 0, accum = 0, adam = 0;
	for (int t = 0; t < g.ntensors; t++)
		weights += g.tensors[t].role == IR_T_WEIGHT && g.tensors[t].weight < 0;
	for (int i = 0; i < g.nops; i++) {
		accum += g.ops[i].kind == IR_ACCUM;
		adam += g.ops[i].kind == IR_ADAM;
		/* array order is a topological order */
		for (int k = 0; k < g.ops[i].nin; k++) {
			int p = g.tensors[g.ops[i].in[k]].producer;
			cr_assert_lt(p, i, "%s reads a tensor produced later", g.ops[i].name);
		}
	}
	cr_assert_eq(accum, weights);
	cr_assert_eq(adam, weights);
	ir_graph_free(&g);
}

/* Every gradient accumulated has its weight's shape and one label per dim,
 * also at batch 1, where a broadcast over the batch has the same element
 * count as the weight (wpe [s,h] added to a [1,s,h] activation). */
Test(training, weight_gradients_have_the_weights_shape_at_any_batch)
{
	const char *sets[] = {"batch=1,layers=1,hidden=64,heads=4,seq=16,vocab=128",
			      "batch=3,layers=1,hidden=64,heads=4,seq=16,vocab=128"};
	for (int s = 0; s < 2; s++) {
		IrGraph g = test_graph("gpt", sets[s]);
		int n = 0;
		for (int i = 0; i < g.nops; i++) {
			const IrOp *op = &g.ops[i];
			if (op->kind != IR_ACCUM)
				continue;
			const IrTensor *gr = &g.tensors[op->in[0]], *acc = &g.tensors[op->out[0]];
			cr_expect_eq(gr->ndim, acc->ndim, "%s (%s): gradient of %d dims for %d",
				     op->name, sets[s], gr->ndim, acc->ndim);
			cr_expect_eq((int)strlen(op->lab[0]), gr->ndim, "%s: labels", op->name);
			for (int d = 0; d < gr->ndim && d < acc->ndim; d++)
				cr_expect_eq(gr->dim[d], acc->dim[d], "%s dim %d", op->name, d);
			n++;
		}
		cr_expect_gt(n, 0);
		ir_graph_free(&g);
	}
}

Test(training, tied_embedding_gradient_sums_both_uses)
{
	IrGraph g = test_graph("gpt", "layers=1,hidden=64,heads=4,seq=16,vocab=128");
	int sums = 0;
	for (int i = g.nfwd_ops; i < g.nops; i++)
		if (g.ops[i].kind == IR_ELEMENTWISE && strstr(g.ops[i].name, ":gsum") &&
		    g.tensors[g.ops[i].out[0]].ndim == 2 &&
		    g.tensors[g.ops[i].out[0]].dim[0] == 128)
			sums++;
	cr_assert_eq(sums, 1, "wte is used by the lookup and the output head");
	ir_graph_free(&g);
}

/* ---- clusters and meshes ---- */

Test(cluster, a_gemm_efficiency_above_one_is_a_schema_violation)
{
	IrCluster c;
	IrError e;
	memset(&e, 0, sizeof e);
	cr_assert_eq(ir_cluster_load(DATA "/bad/cluster_efficiency.xml", 0, &c, &e), -1);
	cr_expect_eq(e.line, 4, "line %d: %s", e.line, e.msg);
	cr_expect(strstr(e.msg, "schema"), "%s", e.msg);
}

Test(cluster, logical_mesh_axes_cross_nodes_only_when_they_must)
{
	IrCluster c;
	IrError e;
	cr_assert_eq(ir_cluster_load(DATA "/tiny-cluster.xml", 0, &c, &e), 0, "%s", e.msg);
	cr_assert_eq(ir_cluster_gpus(&c), 8);
	cr_assert_float_eq(c.inter.bw, 100e9 / 8, 1);
	IrMesh whole = {0, 2, 0, 4};
	IrLogicalMesh v;
	cr_assert_eq(ir_logical_mesh(&c, &whole, 2, 4, &v, &e), 0);
	cr_assert(!v.crosses_nodes[1] && v.crosses_nodes[0]);
	cr_assert_float_eq(v.axis[1].bw, 100e9, 1);
	cr_assert_eq(ir_logical_mesh(&c, &whole, 1, 8, &v, &e), 0);
	cr_assert(v.crosses_nodes[1]);
	IrMesh node = {1, 1, 0, 4};
	cr_assert_eq(ir_logical_mesh(&c, &node, 2, 2, &v, &e), 0);
	cr_assert(!v.crosses_nodes[0] && !v.crosses_nodes[1]);
	cr_assert_neq(ir_logical_mesh(&c, &node, 3, 1, &v, &e), 0);
	IrMesh outside = {1, 2, 0, 4};
	cr_assert_neq(ir_logical_mesh(&c, &outside, 2, 4, &v, &e), 0);
	ir_cluster_free(&c);
	cr_assert_eq(ir_cluster_load(DATA "/tiny-cluster.xml", 16, &c, &e), 0);
	cr_assert_eq(ir_cluster_gpus(&c), 64);
	ir_cluster_free(&c);
}

Test(cluster, mesh_shape_strings_are_checked)
{
	int a, b;
	IrError e;
	cr_assert_eq(ir_mesh_shape_parse("2x4", &a, &b, &e), 0);
	cr_assert(a == 2 && b == 4);
	cr_assert_neq(ir_mesh_shape_parse("2x", &a, &b, &e), 0);
	cr_assert_neq(ir_mesh_shape_parse("0x8", &a, &b, &e), 0);
	cr_assert_neq(ir_mesh_shape_parse("2*4", &a, &b, &e), 0);
}

Test(cluster, zoo_clusters_load_with_positive_figures)
{
	const char *zoo[] = {"aws-p3.16xlarge", "dgx-a100", "dgx-h100", "dgx-h200"};
	for (int i = 0; i < 4; i++) {
		IrCluster c;
		IrError e;
		cr_assert_eq(ir_cluster_load(zoo[i], 0, &c, &e), 0, "%s: %s", zoo[i], e.msg);
		cr_expect_gt(c.gpu.peak_flops[IR_BF16] + c.gpu.peak_flops[IR_F16], 1e13, "%s", zoo[i]);
		cr_expect_gt(c.gpu.mem_bytes, 8e9);
		cr_expect_gt(c.intra.bw, c.inter.bw, "%s: NVLink faster than the network", zoo[i]);
		cr_expect_eq(c.gpus_per_node, 8);
		ir_cluster_free(&c);
	}
}

/* ---- one compiled schema per file, shared by loads in several threads ---- */

enum { LOAD_THREADS = 4, LOADS_EACH = 25 };

/* Each load's outcome against what the files say: tiny-cluster.xml has 2
 * nodes of 4 GPUs; the two bad files break their schema on lines 5 and 4. */
static void *load_repeatedly(void *arg)
{
	int *wrong = arg;
	for (int i = 0; i < LOADS_EACH; i++) {
		IrError e = {0};
		IrCluster c;
		if (ir_cluster_load(DATA "/tiny-cluster.xml", 0, &c, &e) == 0) {
			*wrong += ir_cluster_gpus(&c) != 8;
			ir_cluster_free(&c);
		} else {
			(*wrong)++;
		}
		IrModelDoc *m = ir_model_open(DATA "/tiny.xml", &e);
		*wrong += !m;
		if (m)
			ir_model_close(m);
		m = ir_model_open(DATA "/bad/schema_violation.xml", &e);
		*wrong += m || e.line != 5 || !strstr(e.msg, "schema violation");
		if (m)
			ir_model_close(m);
		*wrong += ir_cluster_load(DATA "/bad/cluster_efficiency.xml", 0, &c, &e) != -1 ||
			  e.line != 4 || !strstr(e.msg, "schema violation");
	}
	return NULL;
}

Test(schema, one_compiled_schema_validates_loads_in_four_threads)
{
	pthread_t t[LOAD_THREADS];
	int wrong[LOAD_THREADS] = {0};
	xmlInitParser(); /* libxml2's rule for threads, as meshplan sweep does */
	for (int i = 0; i < LOAD_THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, load_repeatedly, &wrong[i]), 0);
	for (int i = 0; i < LOAD_THREADS; i++) {
		pthread_join(t[i], NULL);
		cr_expect_eq(wrong[i], 0, "thread %d: %d of %d loads wrong", i, wrong[i],
			     4 * LOADS_EACH);
	}
}

/* ---- bad input through the command line: one line, file:line: cause, exit 2 ---- */

static int run_info(const char *args, char *err, size_t n)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "%s info %s 2>&1 >/dev/null", MESHPLAN_BIN, args);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	size_t got = fread(err, 1, n - 1, p);
	err[got] = 0;
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect_bad(const char *file, int line, const char *cause)
{
	char args[512], err[4096], where[600];
	snprintf(args, sizeof args, "%s/bad/%s", DATA, file);
	int rc = run_info(args, err, sizeof err);
	cr_expect_eq(rc, 2, "%s: exit %d, stderr: %s", file, rc, err);
	snprintf(where, sizeof where, "%s:%d: ", args, line);
	cr_expect(strstr(err, where) != NULL, "%s: wanted '%s' in: %s", file, where, err);
	cr_expect(strstr(err, cause) != NULL, "%s: wanted '%s' in: %s", file, cause, err);
	char *nl = strchr(err, '\n');
	cr_expect(nl && nl[1] == 0, "%s: more than one line on stderr: %s", file, err);
}

/* the first error libxml2 reports: the tag mismatch on line 7, not the end of the file */
Test(bad_input, not_well_formed_xml) { expect_bad("not_well_formed.xml", 7, "tag mismatch"); }
Test(bad_input, schema_violation) { expect_bad("schema_violation.xml", 5, "schema violation"); }
Test(bad_input, unknown_op_kind) { expect_bad("unknown_op.xml", 6, "unknown op kind 'frobnicate'"); }
Test(bad_input, unknown_parameter) { expect_bad("unknown_param.xml", 5, "unknown parameter 'width'"); }
Test(bad_input, division_by_zero) { expect_bad("division_by_zero.xml", 5, "division by zero"); }
Test(bad_input, einsum_sizes_disagree) { expect_bad("einsum_mismatch.xml", 7, "einsum label 'h' is 4"); }
Test(bad_input, undefined_tensor) { expect_bad("undefined_tensor.xml", 6, "undefined tensor 'z'"); }
Test(bad_input, zero_dimension) { expect_bad("zero_dim.xml", 5, "must be positive"); }
Test(bad_input, size_overflows_64_bits) { expect_bad("overflow.xml", 5, "overflows 64 bits"); }

Test(bad_input, missing_file)
{
	char err[4096];
	int rc = run_info("/nonexistent/model.xml", err, sizeof err);
	cr_expect_eq(rc, 2);
	cr_expect(strstr(err, "/nonexistent/model.xml: cannot open") != NULL, "%s", err);
}

Test(bad_input, negative_dimension_from_set)
{
	char err[4096], args[512];
	snprintf(args, sizeof args, "%s/tiny.xml --set h=-8", DATA);
	int rc = run_info(args, err, sizeof err);
	cr_expect_eq(rc, 2);
	cr_expect(strstr(err, "tiny.xml:") && strstr(err, "is -8, must be positive"), "%s", err);
}

Test(bad_input, unknown_set_parameter_and_preset)
{
	char err[4096];
	cr_expect_eq(run_info("gpt --set depth=3", err, sizeof err), 2);
	cr_expect(strstr(err, "no parameter 'depth'") != NULL, "%s", err);
	cr_expect_eq(run_info("gpt:huge", err, sizeof err), 2);
	cr_expect(strstr(err, "no preset 'huge'") != NULL, "%s", err);
}
