/*
 * test_plan.c -- plans as XML (models/plan.rng): written and read back
 * exactly, bad files named by file and line; and `meshplan simulate` run
 * as a program (MESHPLAN_BIN): a manual plan, its written plan file
 * simulating to identical figures, bad input, plans that do not fit.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime-sim/sim.h"
#include "tests/helpers.h"

#ifndef MESHPLAN_BIN
#define MESHPLAN_BIN "meshplan"
#endif

#define SMALL "hidden=64,heads=4,seq=32,vocab=128,layers=2"

/* ---- helpers ---- */

static char tmpdir[64];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/meshplan-plan-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

static const char *tmp(const char *name)
{
	static char buf[4][256];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
	return buf[k];
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* Runs `meshplan ARGS`; stdout into out, stderr into err; the exit code. */
static int run(const char *args, char *out, size_t n, char *err, size_t en)
{
	char cmd[4096];
	const char *ef = tmp("stderr.txt");
	snprintf(cmd, sizeof cmd, "'%s' %s 2>'%s'", MESHPLAN_BIN, args, ef);
	FILE *p = popen(cmd, "r");
	cr_assert(p, "popen %s", cmd);
	size_t len = fread(out, 1, n - 1, p);
	out[len] = 0;
	int st = pclose(p);
	FILE *f = fopen(ef, "r");
	len = f ? fread(err, 1, en - 1, f) : 0;
	err[len] = 0;
	if (f)
		fclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static json_t *run_json(const char *args, int want_code)
{
	static char out[1 << 20], err[4096];
	char full[4096];
	snprintf(full, sizeof full, "%s --json", args);
	int rc = run(full, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, want_code, "exit %d: %s", rc, err);
	json_error_t je;
	json_t *o = json_loads(out, 0, &je);
	cr_assert(o, "not JSON (%s): %s", je.text, out);
	return o;
}


static IrGraph load_small(int batch)
{
	IrError e = {0};
	IrParamSet ps = {0};
	cr_assert_eq(ir_params_parse(&ps, SMALL, &e), 0);
	ir_params_set(&ps, "batch", batch);
	IrModelDoc *m = ir_model_open("gpt", &e);
	cr_assert_not_null(m, "%s", e.msg);
	IrGraph g;
	cr_assert_eq(ir_model_instantiate(m, &ps, &g, &e), 0, "%s", e.msg);
	ir_model_close(m);
	cr_assert_eq(ir_build_training(&g, &e), 0, "%s", e.msg);
	return g;
}

/* A hand-made two-stage plan with every kind of field set. */
static void sample_plan(const IrGraph *g, IrPlan *p)
{
	ir_plan_init(p);
	p->model = ir_strdup(&p->arena, "gpt");
	p->cluster = ir_strdup(&p->arena, "dgx-a100");
	p->nodes = 4;
	ir_params_parse(&p->params, SMALL ",batch=4", NULL);
	p->microbatch = 4;
	p->nmicro = 6;
	p->global_batch = 24;
	p->schedule = IR_SCHED_INTERLEAVED;
	p->chunks = 2;
	p->recompute = IR_RECOMP_SELECTIVE;
	p->zero = 1;
	p->nstages = 4;
	p->stages = ir_alloc(&p->arena, 4 * sizeof(IrStagePlan));
	int first[4] = {0, 1, 2, 3};
	for (int i = 0; i < 4; i++) {
		IrStagePlan *s = &p->stages[i];
		int n = 0;
		for (int o = 0; o < g->nops; o++)
			n += g->ops[o].layer == first[i];
		ir_stage_alloc(p, s, n, 3);
		s->first_layer = s->last_layer = first[i];
		s->mesh = (IrMesh){i % 2, 1, 0, 8};
		s->n0 = 2;
		s->n1 = 4;
		int j = 0;
		for (int o = 0; o < g->nops; o++)
			if (g->ops[o].layer == first[i]) {
				s->op[j] = o;
				s->strategy[j] = j % 3 ? "" : ir_strfmt(&p->arena, "%c=0",
									g->ops[o].lab[0][0]);
				s->ways[j] = j % 3 ? 1 : 2;
				j++;
			}
		s->comm[0] = (IrComm){s->op[1], SIM_ALL_REDUCE, 1, 1.0 / 3.0 * 1e6, false, false, false};
		s->comm[1] = (IrComm){s->op[n - 1], SIM_REDUCE_SCATTER, 2, 12345.678, true, true, false};
		s->comm[2] = (IrComm){s->op[0], SIM_ALL_GATHER, 0, 0.1, false, true, true};
		s->weight_bytes = 1e9 / 7;
		s->grad_bytes = 2.5e8;
		s->opt_bytes = 3.0e9 + 0.125;
		s->act_bytes = 1.0 / 9.0;
	}
}

static void assert_same_plan(const IrPlan *a, const IrPlan *b)
{
	cr_assert_str_eq(a->model, b->model);
	cr_assert_str_eq(a->cluster, b->cluster);
	cr_assert_eq(a->nodes, b->nodes);
	cr_assert_eq(a->params.n, b->params.n);
	for (int i = 0; i < a->params.n; i++) {
		cr_assert_str_eq(a->params.name[i], b->params.name[i]);
		cr_assert_eq(a->params.value[i], b->params.value[i]);
	}
	cr_assert_eq(a->global_batch, b->global_batch);
	cr_assert_eq(a->microbatch, b->microbatch);
	cr_assert_eq(a->nmicro, b->nmicro);
	cr_assert_eq(a->schedule, b->schedule);
	cr_assert_eq(a->chunks, b->chunks);
	cr_assert_eq(a->recompute, b->recompute);
	cr_assert_eq(a->zero, b->zero);
	cr_assert_eq(a->overlap, b->overlap);
	cr_assert_eq(a->nstages, b->nstages);
	for (int i = 0; i < a->nstages; i++) {
		const IrStagePlan *x = &a->stages[i], *y = &b->stages[i];
		cr_assert_eq(x->first_layer, y->first_layer);
		cr_assert_eq(x->last_layer, y->last_layer);
		cr_assert_eq(memcmp(&x->mesh, &y->mesh, sizeof x->mesh), 0);
		cr_assert_eq(x->n0, y->n0);
		cr_assert_eq(x->n1, y->n1);
		cr_assert_eq(x->nops, y->nops);
		for (int j = 0; j < x->nops; j++) {
			cr_assert_eq(x->op[j], y->op[j]);
			cr_assert_eq(x->ways[j], y->ways[j]);
			cr_assert_str_eq(x->strategy[j], y->strategy[j]);
		}
		cr_assert_eq(x->ncomm, y->ncomm);
		for (int j = 0; j < x->ncomm; j++) {
			cr_assert_eq(x->comm[j].op, y->comm[j].op);
			cr_assert_eq(x->comm[j].kind, y->comm[j].kind);
			cr_assert_eq(x->comm[j].axis, y->comm[j].axis);
			cr_assert(x->comm[j].bytes == y->comm[j].bytes, "%.17g vs %.17g",
				  x->comm[j].bytes, y->comm[j].bytes);
			cr_assert_eq(x->comm[j].per_step, y->comm[j].per_step);
			cr_assert_eq(x->comm[j].reshard, y->comm[j].reshard);
			cr_assert_eq(x->comm[j].weight, y->comm[j].weight);
		}
		cr_assert(x->weight_bytes == y->weight_bytes && x->grad_bytes == y->grad_bytes &&
			  x->opt_bytes == y->opt_bytes && x->act_bytes == y->act_bytes);
	}
}

TestSuite(plan_xml, .init = make_tmpdir, .fini = remove_tmpdir);
TestSuite(simulate_cli, .init = make_tmpdir, .fini = remove_tmpdir);

/* ---- XML ---- */

Test(plan_xml, written_and_read_back_is_the_same_plan_and_simulates_the_same)
{
	IrGraph g = load_small(4);
	IrPlan p, q;
	sample_plan(&g, &p);
	IrError e = {0};
	const char *f = tmp("plan.xml");
	cr_assert_eq(ir_plan_write(&p, f, &e), 0, "%s", e.msg);
	cr_assert_eq(ir_plan_read(f, &q, &e), 0, "%s:%d: %s", e.file, e.line, e.msg);
	assert_same_plan(&p, &q);

	IrCluster c;
	cr_assert_eq(ir_cluster_load("dgx-a100", 0, &c, &e), 0);
	SimResult a, b;
	cr_assert_eq(sim_plan(&g, &c, &p, &a, &e), 0, "%s", e.msg);
	cr_assert_eq(sim_plan(&g, &c, &q, &b, &e), 0, "%s", e.msg);
	cr_assert(a.step_time_s == b.step_time_s && a.hw_flops == b.hw_flops &&
		  a.peak_memory_bytes == b.peak_memory_bytes &&
		  a.bubble_fraction == b.bubble_fraction);
	sim_result_free(&a);
	sim_result_free(&b);
	ir_cluster_free(&c);
	ir_plan_free(&p);
	ir_plan_free(&q);
	ir_graph_free(&g);
}

static void expect_read_error(const char *text, int line, const char *what)
{
	const char *f = tmp("bad.xml");
	write_file(f, text);
	IrPlan p;
	IrError e = {0};
	cr_assert_neq(ir_plan_read(f, &p, &e), 0, "accepted: %s", text);
	cr_assert_str_eq(e.file, f);
	cr_assert_eq(e.line, line, "line %d, want %d: %s", e.line, line, e.msg);
	cr_assert(strstr(e.msg, what), "'%s' does not say '%s'", e.msg, what);
}

#define HEAD "<?xml version=\"1.0\"?>\n<plan xmlns=\"urn:meshplan:plan\" model=\"gpt\" " \
	     "cluster=\"dgx-a100\" global-batch=\"8\" microbatch=\"2\" microbatches=\"4\" "
#define STAGE "  <stage first-layer=\"0\" last-layer=\"3\" node0=\"0\" nodes=\"1\" gpu0=\"0\" " \
	      "gpus=\"2\" logical=\"1x2\">\n"

Test(plan_xml, bad_files_are_named_by_file_and_line)
{
	expect_read_error(HEAD "schedule=\"1f1b\" recompute=\"none\">\n" STAGE "    <op id=\"1\"\n",
			  5, "not well-formed");
	expect_read_error(HEAD "schedule=\"2f2b\" recompute=\"none\">\n" STAGE "  </stage>\n</plan>\n",
			  2, "schema violation");
	expect_read_error(HEAD "schedule=\"1f1b\" recompute=\"none\">\n" STAGE
			  "    <op id=\"5\" ways=\"1\" strategy=\"\"/>\n"
			  "    <op id=\"4\" ways=\"1\" strategy=\"\"/>\n  </stage>\n</plan>\n",
			  5, "graph order");
	expect_read_error(HEAD "schedule=\"1f1b\" recompute=\"none\">\n" STAGE
			  "    <op id=\"5\" ways=\"3\" strategy=\"b=0\"/>\n  </stage>\n</plan>\n",
			  4, "ways");
	expect_read_error(HEAD "schedule=\"1f1b\" recompute=\"none\">\n"
			  "  <stage first-layer=\"0\" last-layer=\"3\" node0=\"0\" nodes=\"1\" "
			  "gpu0=\"0\" gpus=\"2\" logical=\"2x2\"/>\n</plan>\n",
			  3, "logical mesh");
	expect_read_error("<?xml version=\"1.0\"?>\n<plan xmlns=\"urn:meshplan:plan\" model=\"gpt\" "
			  "cluster=\"dgx-a100\" global-batch=\"9\" microbatch=\"2\" "
			  "microbatches=\"4\" schedule=\"1f1b\" recompute=\"none\">\n" STAGE
			  "  </stage>\n</plan>\n",
			  2, "global batch");
	expect_read_error(HEAD "schedule=\"1f1b\" recompute=\"none\">\n" STAGE
			  "    <op id=\"5\" ways=\"1\" strategy=\"b=2\"/>\n  </stage>\n</plan>\n",
			  4, "schema violation");
}

/* ---- the command line ---- */

#define MANUAL "simulate gpt --set " SMALL " --cluster dgx-a100 --nodes 1 --batch 24 "

Test(simulate_cli, a_written_plan_simulates_to_identical_figures)
{
	char args[1024];
	const char *f = tmp("manual.xml");
	snprintf(args, sizeof args,
		 MANUAL "--manual dp=2,tp=2,pp=2,mbs=3,recompute=selective -o '%s'", f);
	json_t *a = run_json(args, 0);
	snprintf(args, sizeof args, "simulate '%s'", f);
	json_t *b = run_json(args, 0);
	cr_assert(json_equal(a, b), "figures differ");
	cr_assert_eq(test_num(a, "microbatches"), 4);
	cr_assert_eq(test_num(a, "microbatch"), 6);
	cr_assert_eq(test_num(a, "gpus"), 8);
	static const char *keys[] = {"step_time_s", "tokens_per_s", "samples_per_s",
				     "tflops_per_gpu", "hw_tflops_per_gpu", "mfu", "hfu",
				     "bubble_fraction", "peak_memory_bytes"};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		cr_assert(test_num(a, keys[i]) > 0, "%s", keys[i]);
	cr_assert(json_is_true(json_object_get(a, "fits")));
	json_t *st = json_object_get(a, "stages");
	cr_assert_eq(json_array_size(st), 2);
	json_t *s0 = json_array_get(st, 0);
	cr_assert(test_num(s0, "forward_s") > 0 && test_num(s0, "backward_s") > test_num(s0, "forward_s"));
	cr_assert(json_is_object(json_object_get(s0, "memory")));
	cr_assert(json_is_array(json_object_get(s0, "layers")));
	json_decref(a);
	json_decref(b);
}

Test(simulate_cli, interleaved_manual_plan_writes_a_trace)
{
	char args[1024], out[1 << 14], err[4096];
	const char *tr = tmp("trace.json");
	snprintf(args, sizeof args,
		 "simulate gpt --set hidden=64,heads=4,seq=32,vocab=128,layers=4 --cluster dgx-a100 "
		 "--nodes 1 --batch 32 --manual dp=2,tp=2,pp=2,mbs=2,v=2,recompute=full "
		 "--trace '%s'", tr);
	int rc = run(args, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, "interleaved (v=2)"), "%s", out);
	json_error_t je;
	json_t *t = json_load_file(tr, 0, &je);
	cr_assert_not_null(t, "%s", je.text);
	cr_assert(json_array_size(json_object_get(t, "traceEvents")) > 2 * 2 * 2 * 8);
	json_decref(t);
}

static void expect_usage_error(const char *args, const char *what)
{
	char out[8192], err[4096];
	int rc = run(args, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 2, "exit %d for %s: %s", rc, args, err);
	cr_assert(strstr(err, what), "'%s' does not say '%s'", err, what);
	char *nl = strchr(err, '\n');
	cr_assert(nl && !nl[1], "not one line: %s", err);
}

Test(simulate_cli, bad_input_is_one_line_and_exit_2)
{
	expect_usage_error(MANUAL "--manual dp=2,tp=two,pp=2,mbs=3", "tp=two");
	expect_usage_error(MANUAL "--manual dp=2,tp=2,pp=2", "needs dp, tp, pp and mbs");
	expect_usage_error(MANUAL "--manual dp=2,tp=2,pp=2,mbs=3,zz=1", "unknown key");
	expect_usage_error(MANUAL "--manual dp=2,tp=2,pp=2,mbs=3,recompute=half", "recompute");
	expect_usage_error(MANUAL "--manual dp=4,tp=2,pp=2,mbs=3", "dp*tp*pp = 16");
	expect_usage_error(MANUAL "--manual dp=1,tp=2,pp=2,mbs=3", "dp*tp*pp = 4");
	expect_usage_error(MANUAL "--manual dp=2,tp=2,pp=2,mbs=5", "not a multiple");
	expect_usage_error(MANUAL "--manual dp=2,tp=2,pp=2,mbs=3,v=2,schedule=1f1b",
			   "interleaved");
	expect_usage_error("simulate gpt --cluster dgx-a100 --batch 8", "plan file");
	expect_usage_error("simulate /nonexistent/plan.xml", "cannot open");
}

Test(simulate_cli, a_plan_that_does_not_fit_is_reported_with_exit_1)
{
	json_t *o = run_json("simulate gpt --set hidden=20480,heads=160,layers=2 --cluster "
			     MESHPLAN_DATA_DIR "/tests/data/tiny-cluster.xml --nodes 2 --batch 8 "
			     "--manual dp=8,tp=1,pp=1,mbs=1",
			     1);
	cr_assert(json_is_false(json_object_get(o, "fits")));
	cr_assert(test_num(o, "peak_memory_bytes") > test_num(o, "memory_bytes_per_gpu"));
	json_decref(o);
}
