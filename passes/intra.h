/*
 * intra.h -- private to passes/: specs, op choices and the context of one
 * intra-op planning run.
 */
#ifndef MESHPLAN_PASSES_INTRA_H
#define MESHPLAN_PASSES_INTRA_H

#include "passes/passes.h"

/* Sharding of one tensor: axes per dim (bit 1 axis 0, bit 2 axis 1) and
 * the axes over which it holds partial sums. */
typedef struct PassSpec {
	uint8_t dim[IR_MAX_DIMS];
	uint8_t partial;
	uint8_t nd;
} PassSpec;

/* One op under one strategy. */
typedef struct PassOpChoice {
	uint8_t ax[64];              /* label index -> axes */
	PassSpec in[IR_MAX_IN];      /* layouts the op reads */
	PassSpec out[IR_MAX_OUT];    /* layouts it writes */
	int ways;                    /* devices its work is divided over */
	double compute;              /* seconds per run */
	double comm;                 /* seconds of its own collectives per run */
	IrComm own[2];
	int nown;
} PassOpChoice;

/* Fused attention as the simulator runs it (sim_attention_groups): per op
 * the score einsum of its core (-1: none); per score einsum whether a
 * causal mask halves the work and how many backward ops the core has. */
typedef struct PassAttn {
	int *grp;
	unsigned char *causal;
	int *nbwd;
} PassAttn;

/* Builds a for g; all NULL when g's attention is eager. */
void pass_attn_build(const IrGraph *g, PassAttn *a);
void pass_attn_free(PassAttn *a);

typedef struct PassCtx {
	const IrGraph *g;
	const IrCluster *cluster;
	const IrLogicalMesh *mesh;
	const PassAttn *attn; /* NULL: every op its own kernel */
} PassCtx;

int pass_label_index(char c);
int pass_axes_size(const IrLogicalMesh *m, int axes);
int pass_op_choice(const PassCtx *x, int op_index, const uint8_t *ax, bool keep_partial,
		   PassOpChoice *c);
/* Seconds to turn layout src into dst of a tensor of `tensor_bytes`;
 * the collectives used are appended to out[*nout] (up to max) when out. */
double pass_reshard_time(const IrLogicalMesh *m, double tensor_bytes, const PassSpec *src,
			 const PassSpec *dst, IrComm *out, int *nout, int max);
const char *pass_strategy_string(const IrOp *op, const uint8_t *ax, char *buf, size_t n);

/* Runs fn(ctx, 0..njobs-1) on up to `threads` threads (0: the cores
 * present), each job once, and returns when all have run. */
void pass_run_jobs(int njobs, int threads, void (*fn)(void *ctx, int job), void *ctx);

#endif
