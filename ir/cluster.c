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

static int read_link(const IrCluster *c, xmlNodePtr n, IrLink *l, IrError *e)
{
	double v;
	if (ir_xml_double(n, "gbyte-per-s", &v))
		l->bw = v * 1e9;
	else if (ir_xml_double(n, "gbit-per-s", &v))
		l->bw = v * 1e9 / 8.0;
	if (!ir_xml_double(n, "latency-us", &v))
		return ir_fail(e, c->file, ir_xml_line(n), "link has no latency-us");
	l->latency = v * 1e-6;
	return 0;
}

int ir_cluster_load(const char *spec, int nodes_override, IrCluster *c, IrError *e)
{
	memset(c, 0, sizeof *c);
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
		double v;
		if (ir_xml_is(n, "gpu")) {
			c->gpu.name = ir_xml_attr(&c->arena, n, "name");
			ir_xml_double(n, "memory-gib", &v);
			c->gpu.mem_bytes = v * 1073741824.0;
			ir_xml_double(n, "hbm-gbyte-per-s", &v);
			c->gpu.hbm_bw = v * 1e9;
			ir_xml_double(n, "power-w", &c->gpu.power_w);
			if (!ir_xml_double(n, "matmul-efficiency", &c->gpu.matmul_eff))
				c->gpu.matmul_eff = 0;
			if (!ir_xml_double(n, "attention-fwd-efficiency", &c->gpu.attn_fwd_eff))
				c->gpu.attn_fwd_eff = 0;
			if (!ir_xml_double(n, "attention-bwd-efficiency", &c->gpu.attn_bwd_eff))
				c->gpu.attn_bwd_eff = 0;
			for (xmlNodePtr p = n->children; p; p = p->next) {
				if (!ir_xml_is(p, "peak"))
					continue;
				IrArena tmp = {0};
				IrDType dt;
				ir_dtype_parse(ir_xml_attr(&tmp, p, "dtype"), &dt);
				ir_arena_free(&tmp);
				ir_xml_double(p, "tflops", &v);
				c->gpu.peak_flops[dt] = v * 1e12;
			}
		} else if (ir_xml_is(n, "nodes")) {
			ir_xml_double(n, "count", &v);
			c->nodes = (int)v;
			ir_xml_double(n, "gpus-per-node", &v);
			c->gpus_per_node = (int)v;
		} else if (ir_xml_is(n, "intra-node")) {
			rc = read_link(c, n, &c->intra, e);
		} else if (ir_xml_is(n, "network")) {
			rc = read_link(c, n, &c->inter, e);
		} else if (ir_xml_is(n, "economics")) {
			const char *cur = ir_xml_attr(&c->arena, n, "currency");
			if (cur)
				c->currency = cur;
			ir_xml_double(n, "price-per-gpu-hour", &c->price_per_gpu_hour);
			ir_xml_double(n, "carbon-kg-per-kwh", &c->carbon_kg_per_kwh);
			ir_xml_double(n, "pue", &c->pue);
		}
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
	if (!rc && nodes_override < 0)
		rc = ir_fail(e, "", 0, "--nodes must be positive, got %d", nodes_override);
	if (!rc && nodes_override > 0)
		c->nodes = nodes_override;
	if (!rc && nodes_override > 1000000)
		rc = ir_fail(e, "", 0, "--nodes %d is out of range", nodes_override);
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
	if (a <= 0 || b <= 0 || a > 65536 || b > 65536)
		return ir_fail(e, "", 0, "mesh '%s' needs positive sizes", s);
	*n0 = (int)a;
	*n1 = (int)b;
	return 0;
}
