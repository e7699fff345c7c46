/*
 * cluster.c -- cluster descriptions (clusters/cluster.rng), device meshes
 * and their logical views.
 *
 * Devices are numbered node-major: device d is GPU d % M of node d / M
 * within a mesh.  A logical view n0 x n1 is row-major over that order, so
 * axis 1 joins consecutive devices and axis 0 devices n1 apart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/parser.h>

#include "ir/ir.h"
#include "ir/xml_util.h"

/* Upper bounds of cluster figures: far above any real part, low enough
 * that products of them stay finite (docs/limits.md). */
#define MAXFIG 1e9

static int read_link(const IrCluster *c, xmlNodePtr n, IrLink *l, IrError *e)
{
	double v;
	int got = ir_xml_real(n, "gbyte-per-s", c->file, 0, true, MAXFIG, &v, e);
	if (got < 0)
		return -1;
	if (got)
		l->bw = v * 1e9;
	got = ir_xml_real(n, "gbit-per-s", c->file, 0, true, MAXFIG, &v, e);
	if (got < 0)
		return -1;
	if (got)
		l->bw = v * 1e9 / 8.0;
	if (!(l->bw > 0))
		return ir_fail(e, c->file, ir_xml_line(n), "link has no bandwidth");
	got = ir_xml_real(n, "latency-us", c->file, 0, false, MAXFIG, &v, e);
	if (got < 0)
		return -1;
	if (!got)
		return ir_fail(e, c->file, ir_xml_line(n), "link has no latency-us");
	l->latency = v * 1e-6;
	return 0;
}

/* A required real attribute of n. */
static int need_real(const IrCluster *c, xmlNodePtr n, const char *name, double lo, bool lo_open,
		     double hi, double *v, IrError *e)
{
	int got = ir_xml_real(n, name, c->file, lo, lo_open, hi, v, e);
	if (got == 0)
		return ir_fail(e, c->file, ir_xml_line(n), "%s is missing", name);
	return got < 0 ? -1 : 0;
}

static int read_gpu(IrCluster *c, xmlNodePtr n, IrError *e)
{
	double v;
	c->gpu.name = ir_xml_attr(&c->arena, n, "name");
	if (need_real(c, n, "memory-gib", 0, true, MAXFIG, &v, e))
		return -1;
	c->gpu.hbm_bytes = v * 1073741824.0;
	double reserve = -1;
	if (ir_xml_real(n, "reserve-gib", c->file, 0, false, v, &reserve, e) < 0)
		return -1;
	if (reserve >= v)
		return ir_fail(e, c->file, ir_xml_line(n), "reserve-gib %g leaves no memory of "
				   "memory-gib %g", reserve, v);
	c->gpu.reserve_bytes = reserve >= 0 ? reserve * 1073741824.0 :
					      IR_MEM_RESERVE_FRACTION * c->gpu.hbm_bytes;
	c->gpu.mem_bytes = c->gpu.hbm_bytes - c->gpu.reserve_bytes;
	if (need_real(c, n, "hbm-gbyte-per-s", 0, true, MAXFIG, &v, e))
		return -1;
	c->gpu.hbm_bw = v * 1e9;
	if (need_real(c, n, "power-w", 0, true, MAXFIG, &c->gpu.power_w, e))
		return -1;
	c->gpu.matmul_eff = 0;
	c->gpu.attn_fwd_eff = c->gpu.attn_bwd_eff = 0;
	if (ir_xml_real(n, "matmul-efficiency", c->file, 0, true, 1, &c->gpu.matmul_eff, e) < 0 ||
	    ir_xml_real(n, "attention-fwd-efficiency", c->file, 0, true, 1, &c->gpu.attn_fwd_eff,
			e) < 0 ||
	    ir_xml_real(n, "attention-bwd-efficiency", c->file, 0, true, 1, &c->gpu.attn_bwd_eff,
			e) < 0)
		return -1;
	for (xmlNodePtr p = n->children; p; p = p->next) {
		if (!ir_xml_is(p, "peak"))
			continue;
		IrArena tmp = {0};
		IrDType dt;
		const char *name = ir_xml_attr(&tmp, p, "dtype");
		int bad = !name || ir_dtype_parse(name, &dt) || dt == IR_I32;
		ir_arena_free(&tmp);
		if (bad)
			return ir_fail(e, c->file, ir_xml_line(p), "peak needs a dtype of fp32, bf16 or fp16");
		if (need_real(c, p, "tflops", 0, true, MAXFIG, &v, e))
			return -1;
		c->gpu.peak_flops[dt] = v * 1e12;
	}
	return 0;
}

static int read_economics(IrCluster *c, xmlNodePtr n, IrError *e)
{
	const char *cur = ir_xml_attr(&c->arena, n, "currency");
	if (cur)
		c->currency = cur;
	if (ir_xml_real(n, "price-per-gpu-hour", c->file, 0, false, MAXFIG,
			&c->price_per_gpu_hour, e) < 0 ||
	    ir_xml_real(n, "carbon-kg-per-kwh", c->file, 0, false, 1000, &c->carbon_kg_per_kwh,
			e) < 0 ||
	    ir_xml_real(n, "pue", c->file, 1, false, 100, &c->pue, e) < 0)
		return -1;
	return 0;
}

/* Applies <profile name="..."> of the cluster file (calibrated factors). */
static int apply_profile(IrCluster *c, xmlNodePtr root, const char *want, IrError *e)
{
	for (xmlNodePtr n = root->children; n; n = n->next) {
		if (!ir_xml_is(n, "profile"))
			continue;
		const char *name = ir_xml_attr(&c->arena, n, "name");
		if (!name || strcmp(name, want))
			continue;
		double v;
		int got;
		if ((got = ir_xml_real(n, "gemm-scale", c->file, 0, true, MAXFIG, &v, e)) < 0)
			return -1;
		if (got)
			c->gpu.gemm_scale = v;
		if ((got = ir_xml_real(n, "memory-scale", c->file, 0, true, MAXFIG, &v, e)) < 0)
			return -1;
		if (got)
			c->gpu.hbm_scale = v;
		if ((got = ir_xml_real(n, "comm-scale", c->file, 0, true, MAXFIG, &v, e)) < 0)
			return -1;
		if (got)
			c->intra.scale = c->inter.scale = v;
		if ((got = ir_xml_real(n, "kernel-overhead-us", c->file, 0, false, MAXFIG, &v, e)) < 0)
			return -1;
		if (got)
			c->gpu.overhead_s = v * 1e-6;
		c->profile = name;
		c->profile_note = ir_xml_attr(&c->arena, n, "fitted-from");
		return 0;
	}
	return ir_fail(e, c->file, ir_xml_line(root), "cluster '%s' has no profile '%s'", c->name,
		       want);
}

int ir_cluster_load(const char *spec_in, int nodes_override, IrCluster *c, IrError *e)
{
	memset(c, 0, sizeof *c);
	if (nodes_override < 0 || nodes_override > IR_MAX_NODES)
		return ir_fail(e, "", 0, "a cluster has 1..%d nodes, not %d", IR_MAX_NODES,
			       nodes_override);
	/* "cluster:profile" selects a named profile of the file */
	const char *spec = spec_in, *want = NULL;
	const char *colon = strrchr(spec_in, ':');
	if (colon && colon[1] && !strchr(colon, '/')) {
		spec = ir_strfmt(&c->arena, "%.*s", (int)(colon - spec_in), spec_in);
		want = ir_strdup(&c->arena, colon + 1);
	}
	const char *path = spec;
	if (!ir_xml_is_path(spec)) {
		path = ir_strfmt(&c->arena, "%s/clusters/%s.xml", ir_data_dir(), spec);
		struct stat st;
		if (stat(path, &st) != 0) {
			ir_arena_free(&c->arena);
			char hint[512];
			ir_zoo_suggest("clusters", spec, hint, sizeof hint);
			return ir_fail(e, spec, 0,
				       "no such cluster file or zoo cluster%s%s (meshplan list clusters)",
				       hint[0] ? "; " : "", hint);
		}
	}
	c->file = ir_strdup(&c->arena, path);
	char schema[1024];
	snprintf(schema, sizeof schema, "%s/clusters/cluster.rng", ir_data_dir());
	xmlDocPtr doc = ir_xml_read_validated(c->file, schema, "cluster", e);
	if (!doc) {
		ir_arena_free(&c->arena);
		return -1;
	}
	xmlNodePtr root = xmlDocGetRootElement(doc);
	c->name = ir_xml_attr(&c->arena, root, "name");
	c->currency = "USD";
	c->pue = 1.0;
	int rc = 0;
	for (xmlNodePtr n = root->children; n && !rc; n = n->next) {
		if (ir_xml_is(n, "gpu")) {
			rc = read_gpu(c, n, e);
		} else if (ir_xml_is(n, "nodes")) {
			int64_t v = 0;
			if (ir_xml_int(n, "count", c->file, 1, IR_MAX_NODES, &v, e) < 0)
				rc = -1;
			c->nodes = (int)v;
			v = 0;
			if (!rc && ir_xml_int(n, "gpus-per-node", c->file, 1, IR_MAX_GPUS_PER_NODE,
					      &v, e) < 0)
				rc = -1;
			c->gpus_per_node = (int)v;
		} else if (ir_xml_is(n, "intra-node")) {
			rc = read_link(c, n, &c->intra, e);
		} else if (ir_xml_is(n, "network")) {
			rc = read_link(c, n, &c->inter, e);
		} else if (ir_xml_is(n, "economics")) {
			rc = read_economics(c, n, e);
		}
	}
	if (!rc && (c->nodes <= 0 || c->gpus_per_node <= 0))
		rc = ir_fail(e, c->file, 0, "cluster has no <nodes count=... gpus-per-node=...>");
	if (!rc) {
		const char *dflt = ir_xml_attr(&c->arena, root, "profile");
		if (want || dflt)
			rc = apply_profile(c, root, want ? want : dflt, e);
	}
	if (!rc && c->gpu.peak_flops[IR_BF16] <= 0 && c->gpu.peak_flops[IR_F16] <= 0)
		rc = ir_fail(e, c->file, 0, "gpu has no bf16 or fp16 peak");
	/* A dtype without its own figure runs at the nearest one given. */
	if (!rc) {
		double *p = c->gpu.peak_flops;
		if (p[IR_BF16] <= 0)
			p[IR_BF16] = p[IR_F16];
		if (p[IR_F16] <= 0)
			p[IR_F16] = p[IR_BF16];
		if (p[IR_F32] <= 0)
			p[IR_F32] = p[IR_BF16] / 16.0;
	}
	xmlFreeDoc(doc);
	if (!rc && nodes_override > 0)
		c->nodes = nodes_override;
	if (rc)
		ir_cluster_free(c);
	return rc;
}

void ir_cluster_free(IrCluster *c)
{
	ir_arena_free(&c->arena);
	memset(c, 0, sizeof *c);
}

int ir_cluster_gpus(const IrCluster *c) { return c->nodes * c->gpus_per_node; }

int ir_mesh_devices(const IrMesh *m) { return m->nnodes * m->ngpus; }

int ir_logical_mesh(const IrCluster *c, const IrMesh *m, int n0, int n1, IrLogicalMesh *v,
		    IrError *e)
{
	int nd = ir_mesh_devices(m);
	if (n0 <= 0 || n1 <= 0 || (long)n0 * n1 != nd)
		return ir_fail(e, "", 0, "logical mesh %dx%d does not have the %d devices of %dx%d",
			       n0, n1, nd, m->nnodes, m->ngpus);
	if (m->node0 < 0 || m->gpu0 < 0 || m->node0 + m->nnodes > c->nodes ||
	    m->gpu0 + m->ngpus > c->gpus_per_node)
		return ir_fail(e, "", 0, "mesh of %dx%d at node %d, gpu %d is outside the %dx%d cluster",
			       m->nnodes, m->ngpus, m->node0, m->gpu0, c->nodes, c->gpus_per_node);
	memset(v, 0, sizeof *v);
	v->mesh = *m;
	v->n[0] = n0;
	v->n[1] = n1;
	/* Axis 1 joins devices [k*n1, (k+1)*n1): within one node iff n1 <= M
	 * and the groups do not straddle nodes (n1 divides M).  Axis 0 joins
	 * devices n1 apart: within a node iff the whole mesh is one node. */
	int per_node = m->ngpus;
	v->crosses_nodes[1] = m->nnodes > 1 && (n1 > per_node || per_node % n1 != 0);
	v->crosses_nodes[0] = m->nnodes > 1 && n0 > 1;
	for (int a = 0; a < 2; a++)
		v->axis[a] = v->crosses_nodes[a] ? c->inter : c->intra;
	v->intra = c->intra;
	/* an axis-1 group spanning nodes fills each; an axis-0 group has
	 * M / n1 devices in a node when n1 divides M (devices n1 apart) */
	v->per_node[1] = n1 > per_node && n1 % per_node == 0 ? per_node : 1;
	v->per_node[0] = n1 < per_node && per_node % n1 == 0 ? per_node / n1 : 1;
	if (v->per_node[0] > n0)
		v->per_node[0] = n0;
	return 0;
}

int ir_mesh_shape_parse(const char *s, int *n0, int *n1, IrError *e)
{
	char *end;
	long a = strtol(s, &end, 10);
	if (end == s || (*end != 'x' && *end != 'X'))
		return ir_fail(e, "", 0, "mesh '%s' is not of the form N0xN1 (e.g. 2x4)", s);
	const char *p = end + 1;
	long b = strtol(p, &end, 10);
	if (end == p || *end)
		return ir_fail(e, "", 0, "mesh '%s' is not of the form N0xN1 (e.g. 2x4)", s);
	if (a <= 0 || b <= 0)
		return ir_fail(e, "", 0, "mesh '%s' needs positive sizes", s);
	if (a > 1L << 30 || b > 1L << 30 || a * b > 1L << 30)
		return ir_fail(e, "", 0, "mesh '%s' has more than %ld devices", s, 1L << 30);
	*n0 = (int)a;
	*n1 = (int)b;
	return 0;
}
