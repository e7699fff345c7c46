/*
 * ir.h -- meshplan's intermediate representation.
 *
 * Three things live here: the tensor graph (forward and training), the
 * cluster with its device meshes, and the readers for their XML forms.
 * A graph is two arrays, tensors[] and ops[], addressed by index; array
 * order of ops is a topological order.  Every op carries a label string
 * per operand (one letter per tensor dim, einsum style) so that passes can
 * derive sharding strategies generically from labels, whatever the kind.
 */
#ifndef MESHPLAN_IR_H
#define MESHPLAN_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------------ */
/* Errors: library code fills a record, tools/ prints it and exits.    */

typedef struct IrError {
	char file[256]; /* input file the error is about, "" if none */
	int line;       /* 1-based line in that file, 0 if unknown */
	char msg[512];  /* what is wrong, one line, no trailing period */
} IrError;

/* Fills e (if non-NULL) and returns -1, so callers can `return ir_fail(...)`. */
int ir_fail(IrError *e, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* "file:line: msg" (or the parts that are set) into buf. */
const char *ir_error_str(const IrError *e, char *buf, size_t n);
/* "did you mean 'x'?" when one of names is a near miss of name (edit distance),
 * else "valid: a, b, c" when there are at most IR_SUGGEST_LIST names, else "".
 * Returns buf. */
enum { IR_SUGGEST_LIST = 24 };
const char *ir_suggest(const char *name, const char *const *names, int n, char *buf,
		       size_t len);

/* ------------------------------------------------------------------ */
/* Arena: every string and small array of a graph lives in one pool.   */

typedef struct IrArenaBlock IrArenaBlock;
typedef struct IrArena {
	IrArenaBlock *head;
} IrArena;

void *ir_alloc(IrArena *a, size_t n); /* zeroed, 16-byte aligned; aborts on OOM */
char *ir_strdup(IrArena *a, const char *s);
char *ir_strfmt(IrArena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ir_arena_free(IrArena *a);

/* The one heap allocator: malloc/calloc/realloc/strdup that print
 * "meshplan: out of memory" and abort instead of returning NULL.
 * ir_xcalloc also aborts when n * size overflows. */
void *ir_xmalloc(size_t n);
void *ir_xcalloc(size_t n, size_t size);
void *ir_xrealloc(void *p, size_t n);
char *ir_xstrdup(const char *s);
/* What they do on failure: "meshplan: out of memory" and abort. */
_Noreturn void ir_oom(void);
/* Makes the process keep freed heap memory (up to IR_HEAP_KEEP_BYTES at
 * the heap's top, blocks up to IR_HEAP_MMAP_BYTES from the heap) instead
 * of returning it to the kernel at once (glibc; elsewhere nothing).  A
 * planning run builds and frees solver problems of tens of megabytes
 * thousands of times; with glibc's defaults each solve faults its pages in
 * afresh.  For programs (the CLI, the benchmarks), not for the library's
 * own calls: it sets a process-wide policy. */
void ir_heap_keep(void);
enum { IR_HEAP_KEEP_BYTES = 64 << 20, IR_HEAP_MMAP_BYTES = 32 << 20 };
/* Seconds on the monotonic clock: for durations, progress and a user's
 * time limit, never to decide a result otherwise. */
double ir_now_s(void);

/* ------------------------------------------------------------------ */
/* Input limits (docs/limits.md): what a file or flag may ask for.     */

enum {
	IR_MAX_FILE_BYTES = 8 << 20, /* model, cluster and plan files */
	IR_MAX_OPS = 20000,          /* forward ops a model may expand to */
	IR_MAX_EXPR_DEPTH = 64,      /* brackets and unary minus nested in one expression */
	IR_MAX_EXPAND = 30000,       /* elements a model's repeats may visit */
	IR_MAX_NODES = 1000000,      /* nodes of a cluster */
	IR_MAX_GPUS_PER_NODE = 1024, /* GPUs of one node */
	IR_MAX_TEXT = 4096,          /* a parameter list (--set) */
	IR_MAX_MICROBATCHES = 1 << 24, /* microbatches of a step */
};
#define IR_MAX_BATCH ((int64_t)1 << 40) /* samples of a global batch */

/* ------------------------------------------------------------------ */
/* Output files, written atomically: into a temporary file in the
 * target's folder, renamed over the target by ir_output_commit.  Until
 * then (and after a failure or a kill) the old file is untouched.  A
 * target that exists and is not a regular file (/dev/stdout, a pipe) is
 * written in place. */

typedef struct IrOutput {
	FILE *f;
	char *path; /* the target */
	char *tmp;  /* the temporary file, NULL when writing in place */
} IrOutput;

/* Opens o for `path`; -1 with e (the path is not writable). */
int ir_output_open(IrOutput *o, const char *path, IrError *e);
/* Flushes, checks every write, fsyncs, closes and renames; on failure
 * removes the temporary file and fills e.  Frees o's fields either way. */
int ir_output_commit(IrOutput *o, IrError *e);
/* Closes and removes the temporary file; the target is untouched. */
void ir_output_discard(IrOutput *o);

/* ------------------------------------------------------------------ */
/* Tensors and ops.                                                     */

enum {
	IR_MAX_DIMS = 8,     /* dims per tensor */
	IR_MAX_IN = 4,       /* inputs per op */
	IR_MAX_OUT = 2,      /* outputs per op */
	IR_MAX_OPND = IR_MAX_IN + IR_MAX_OUT,
};

typedef enum { IR_F32, IR_BF16, IR_F16, IR_I32, IR_NDTYPES } IrDType;

typedef enum {
	IR_T_INPUT,  /* data fed to the model (tokens, images, labels) */
	IR_T_WEIGHT, /* trainable parameter, in the compute dtype */
	IR_T_ACT,    /* forward activation */
	IR_T_GRAD,   /* gradient of an activation (backward pass) */
	IR_T_WGRAD,  /* gradient of a weight, accumulated over microbatches */
	IR_T_OPT,    /* optimizer state: fp32 master weight, Adam m and v */
} IrRole;

typedef struct IrTensor {
	const char *name;
	int ndim;
	int64_t dim[IR_MAX_DIMS];
	IrDType dtype;
	IrRole role;
	int producer; /* op that writes it, -1 for inputs and weights */
	int layer;    /* layer index, see IrGraph.layers */
	int weight;   /* WGRAD/OPT and updated weights: the weight it belongs to; else -1 */
	int line;     /* XML line that declared or produced it */
} IrTensor;

typedef enum {
	IR_EINSUM,      /* spec "bsh,hf->bsf": matmuls, attention, experts */
	IR_ELEMENTWISE, /* fn = add, mul, gelu, silu, dropout, ...; broadcasting */
	IR_REDUCE,      /* fn = sum|mean|max over the dims the output lacks */
	IR_SOFTMAX,     /* over the last dim */
	IR_LAYERNORM,   /* over the last dim, with scale and bias weights */
	IR_RMSNORM,     /* over the last dim, with a scale weight */
	IR_GATHER,      /* embedding lookup: table[v,h], ids[...] -> [..., h] */
	IR_TRANSPOSE,   /* perm attribute */
	IR_RESHAPE,     /* shape attribute, same element count */
	IR_CONV2D,      /* NHWC input, RSCF filter, stride, same/valid padding */
	IR_POOL,        /* NHWC max/avg pool, window and stride */
	IR_LOSS,        /* softmax cross-entropy: logits[..., v], targets[...] */
	IR_ACCUM,       /* gradient accumulation: acc += g (training graph) */
	IR_ADAM,        /* optimizer update of one weight (training graph) */
	IR_NOPKINDS
} IrOpKind;

typedef enum { IR_FWD, IR_BWD, IR_UPDATE } IrPhase;

typedef struct IrOp {
	IrOpKind kind;
	IrPhase phase;
	const char *name; /* unique, e.g. "block3/fc1" or "block3/fc1:dW" */
	const char *fn;   /* elementwise/reduce/pool function; NULL otherwise */
	int nin, nout;
	int in[IR_MAX_IN];
	int out[IR_MAX_OUT];
	/*
	 * One label letter per dim of every operand: lab[0..nin) for inputs,
	 * lab[nin..nin+nout) for outputs.  Same letter = same logical dim.
	 * A label in all inputs that have it and in the output is batch-like,
	 * in inputs but not the output is contracted (partial sums), in one
	 * input and the output is free.  Labels in `local` may not be split
	 * (normalised dims, conv spatial dims, softmax axis).
	 */
	char lab[IR_MAX_OPND][IR_MAX_DIMS + 1];
	uint64_t local; /* bit ir_label_bit(c) per unsplittable label */
	int layer;      /* layer index */
	int fwd;        /* BWD/UPDATE: the forward op (or -1); FWD: itself */
	int line;       /* XML line, 0 for generated ops */
	int64_t attr[4];/* conv: stride, pad(0 valid,1 same); pool: window, stride */
	double flops;   /* floating-point operations of the whole op */
	double bytes;   /* bytes read + written by the whole op */
} IrOp;

typedef struct IrLayer {
	const char *name; /* "block3", or "embed"/"head" for top-level ops */
	int first_op, last_op; /* forward ops [first_op, last_op] */
} IrLayer;

typedef struct IrGraph {
	IrArena arena;
	const char *name;
	const char *file; /* the model file it came from */
	IrTensor *tensors;
	int ntensors, cap_tensors;
	IrOp *ops;
	int nops, cap_ops;
	IrLayer *layers;
	int nlayers, cap_layers;
	int nfwd_ops;   /* ops[0..nfwd_ops) are the forward graph */
	int loss;       /* tensor index of the loss, -1 before training graph */
	int64_t batch;  /* value of the model's batch parameter (samples) */
	int64_t seq;    /* tokens per sample (param "seq"), 1 if none */
	bool training;  /* training graph built */
	bool fused_attention; /* attention runs as one fused (FlashAttention-style)
				 kernel: the model's attention="fused", a preset's,
				 or --set attention=fused */
} IrGraph;

uint64_t ir_label_bit(char c);        /* 'a'..'z','A'..'Z' -> one bit */
const char *ir_dtype_name(IrDType t);
int ir_dtype_parse(const char *s, IrDType *t); /* 0 ok, -1 unknown */
size_t ir_dtype_size(IrDType t);
const char *ir_op_kind_name(IrOpKind k);
int ir_op_kind_parse(const char *s, IrOpKind *k, const char **fn);
/* Inputs an elementwise function takes (1 or 2), 0 if unknown. */
int ir_elementwise_arity(const char *fn);
const char *ir_role_name(IrRole r);

int64_t ir_tensor_numel(const IrTensor *t);
double ir_tensor_bytes(const IrTensor *t);

/* Graph construction (used by the XML reader and the training builder). */
void ir_graph_init(IrGraph *g, const char *name);
void ir_graph_free(IrGraph *g);
/* Appends a layer named `name` (arena-owned) starting at the next op; its index.
 * The array grows geometrically: a model of many small layers loads in linear time. */
int ir_graph_add_layer(IrGraph *g, const char *name);
int ir_graph_add_tensor(IrGraph *g, const char *name, int ndim, const int64_t *dim,
			IrDType dt, IrRole role, int layer, int line);
/* Adds an op whose output tensors already exist; fills labels, shape checks,
 * FLOPs and bytes.  Returns the op index, or -1 with e filled. */
int ir_graph_add_op(IrGraph *g, IrOp *proto, IrError *e);

/*
 * Builds a forward op's output shape and labels from its inputs: einsum
 * spec, broadcasting, reduce dims, conv/pool windows, reshape targets.
 * On entry op->in/nin/kind/fn/attr are set (and lab[] for einsum);
 * fills op->lab, op->local and out_dim/out_ndim/out_dtype.
 */
int ir_infer_op(const IrGraph *g, IrOp *op, const int64_t *reshape_to, int reshape_nd,
		int *out_ndim, int64_t *out_dim, IrDType *out_dtype, IrError *e);

/* Fills op->lab from an einsum spec ("bsh,hf->bsf"); op->nin must be set. */
int ir_einsum_parse(const IrGraph *g, IrOp *op, const char *spec, IrError *e);

/* FLOPs and bytes of an op, from its kind, phase and operand shapes. */
double ir_op_flops(const IrGraph *g, const IrOp *op);
double ir_op_bytes(const IrGraph *g, const IrOp *op);
/* Size of the dim carrying `label` in the op, 0 if none. */
int64_t ir_op_label_size(const IrGraph *g, const IrOp *op, char label);

/*
 * Training graph: appends to a forward graph the loss seed, the backward
 * op(s) of every forward op (einsum backward: two einsums of the same
 * FLOPs each, so 2x forward), gradient sums where a tensor fans out,
 * gradient accumulation, and one Adam update per weight with fp32
 * master weight, m and v (mixed precision).
 */
int ir_build_training(IrGraph *g, IrError *e);

/* Totals over a graph. */
typedef struct IrStats {
	int64_t params;          /* elements of all weights */
	int nops, ntensors;      /* whole graph (training graph once built) */
	int nfwd_ops;
	double fwd_flops;        /* forward FLOPs of one batch */
	double bwd_flops;        /* backward FLOPs of one batch (incl. accumulation) */
	double update_flops;     /* optimizer FLOPs of one step */
	double weight_bytes;     /* weights in their dtype */
	double grad_bytes;       /* weight gradients */
	double opt_bytes;        /* master weights + Adam moments */
	double act_bytes;        /* forward activations of one batch kept for backward */
} IrStats;
void ir_graph_stats(const IrGraph *g, IrStats *s);

/* ------------------------------------------------------------------ */
/* Models in XML: parsed once, instantiated per parameter set.          */

typedef struct IrModelDoc IrModelDoc; /* opaque: the validated XML */

typedef struct IrParam {
	const char *name;
	int64_t value;
} IrParam;

/* Up to 64 "name=value" overrides from --set and from presets. */
typedef struct IrParamSet {
	int n;
	char name[64][48];
	int64_t value[64];
} IrParamSet;
/* Parses "a=1,b=2" (values are integer expressions of numbers only).
 * The reserved name "attention" takes fused or eager (stored as
 * IR_ATTENTION_FUSED / IR_ATTENTION_EAGER) and selects the attention
 * kernel instead of a model parameter. */
#define IR_ATTENTION_EAGER 0
#define IR_ATTENTION_FUSED 1
int ir_params_parse(IrParamSet *ps, const char *text, IrError *e);
int ir_params_set(IrParamSet *ps, const char *name, int64_t value);

/*
 * Resolves a model by path or zoo name ("gpt", "llama:70b" = family plus
 * preset), reads and validates it against models/model.rng.
 */
IrModelDoc *ir_model_open(const char *name_or_path, IrError *e);
void ir_model_close(IrModelDoc *m);
const char *ir_model_name(const IrModelDoc *m);
const char *ir_model_file(const IrModelDoc *m);
/* Presets and parameters as declared (for --help and listings). */
int ir_model_presets(const IrModelDoc *m, const char **names, int max);
/* A preset's doc attribute, or (preset NULL) the model's <description>;
 * NULL if none. */
const char *ir_model_preset_doc(const IrModelDoc *m, const char *preset);
/* Builds the forward graph with defaults < preset (from open) < overrides. */
int ir_model_instantiate(const IrModelDoc *m, const IrParamSet *overrides, IrGraph *g,
			 IrError *e);
/* ir_model_instantiate with batch = `batch` (over the overrides), then
 * ir_build_training: the training graph one microbatch runs.  0, or -1
 * with e (g left empty). */
int ir_model_training(const IrModelDoc *m, const IrParamSet *overrides, int64_t batch,
		      IrGraph *g, IrError *e);
/* Value of a parameter after defaults, preset and overrides. */
int ir_model_param(const IrModelDoc *m, const IrParamSet *overrides, const char *name,
		   int64_t *value, IrError *e);

/* Integer expression over parameters: + - * / % ( ), overflow-checked. */
typedef int (*IrLookup)(void *ctx, const char *name, int64_t *value);
int ir_expr_eval(const char *text, IrLookup lookup, void *ctx, int64_t *out,
		 char *why, size_t why_n);

/*
 * A Hugging Face transformers config.json as a model document (ir/hf.c):
 * model_type llama, mistral, mixtral, qwen2, gemma, gpt2 or gpt_neox.
 * Overrides (may be NULL) become the defaults of the parameters they name;
 * without seq, seq is max_position_embeddings.  With overrides, a seq the
 * sliding window does not cover is refused now; without (NULL), by the
 * document's constraint when instantiated.  A key that is neither read
 * nor known to change nothing is refused by name.  0, or -1 with e.
 */
typedef struct IrHfModel {
	char *xml;            /* the model document (malloc'd) */
	size_t len;
	char name[64];        /* the model_type */
	int64_t seq;          /* the seq parameter's default */
	bool seq_from_config; /* seq is max_position_embeddings (no override) */
	char notes[1024];     /* what the document assumes, one line each */
} IrHfModel;
int ir_hf_import(const char *path, const IrParamSet *overrides, IrHfModel *out, IrError *e);
void ir_hf_free(IrHfModel *h);
/* For a model opened as hf:PATH: the import's notes ("" if none), and
 * whether seq defaults to max_position_embeddings (*seq its value); false
 * for other models. */
const char *ir_model_notes(const IrModelDoc *m);
bool ir_model_seq_from_config(const IrModelDoc *m, int64_t *seq);

/* Directory holding models/ and clusters/ (env MESHPLAN_DATA, else built-in). */
const char *ir_data_dir(void);

/* The zoo: names of the .xml files in ir_data_dir()/kind ("models",
 * "clusters"), sorted, at most max; their count. */
enum { IR_ZOO_NAME = 64, IR_ZOO_MAX = 64 };
int ir_zoo_names(const char *kind, char (*names)[IR_ZOO_NAME], int max);
/* ir_suggest over the zoo names of kind. */
const char *ir_zoo_suggest(const char *kind, const char *name, char *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Clusters and device meshes.                                          */

typedef struct IrGpu {
	const char *name;
	double peak_flops[IR_NDTYPES]; /* dense FLOP/s per dtype (IR_I32: 0) */
	double mem_bytes;              /* usable memory: HBM less reserve_bytes; what a
					  plan must fit in */
	double hbm_bytes;              /* HBM capacity (memory-gib) */
	double reserve_bytes;          /* kept back for the CUDA context, NCCL buffers and
					  the allocator's fragmentation: reserve-gib, else
					  IR_MEM_RESERVE_FRACTION of HBM */
	double hbm_bw;                 /* HBM bytes/s */
	double power_w;                /* board power (TDP) */
	double matmul_eff;             /* fraction of peak a large GEMM reaches (measured);
					  0: the hardware model's default */
	/* A calibrated software profile (cluster file <profile>; 0: none):
	 * factors on the hardware model's efficiencies and an extra cost per
	 * kernel, fitted by `meshplan calibrate` (docs/calibration.md). */
	double gemm_scale;             /* on GEMM and fused-attention efficiency */
	double hbm_scale;              /* on HBM efficiency (memory-bound kernels) */
	double overhead_s;             /* added to every kernel's launch cost */
	double attn_fwd_eff;           /* fraction of peak a fused attention forward
					  (FlashAttention) reaches; 0: the model's default */
	double attn_bwd_eff;           /* the same for its backward */
} IrGpu;

typedef struct IrLink {
	double bw;      /* bytes/s per GPU per direction */
	double latency; /* seconds per message */
	double scale;   /* calibrated factor on the bus-bandwidth efficiency NCCL
			   reaches on this link's kind; 0: none */
} IrLink;

typedef struct IrCluster {
	IrArena arena;
	const char *name;
	const char *file;
	IrGpu gpu;
	int nodes;          /* N */
	int gpus_per_node;  /* M */
	IrLink intra;       /* within a node (NVLink/NVSwitch) */
	IrLink inter;       /* between nodes (network), per GPU */
	double price_per_gpu_hour; /* 0 if not given */
	const char *currency;      /* "USD" if not given */
	double carbon_kg_per_kwh;  /* 0 if not given */
	double pue;                /* 1 if not given */
	const char *profile;       /* calibrated profile applied (NULL: none) */
	const char *profile_note;  /* its provenance as the file states it */
} IrCluster;

/* Default memory reserve, a fraction of HBM: vLLM's default
 * gpu_memory_utilization of 0.9 (docs.vllm.ai, engine arguments), the share
 * of GPU memory a widely used engine leaves to its own tensors, the rest kept
 * for the CUDA context, NCCL's buffers and fragmentation.  A cluster file's
 * <gpu reserve-gib="..."> replaces it (docs/formats.md). */
#define IR_MEM_RESERVE_FRACTION 0.10

/* Reads a cluster by path or zoo name; nodes_override > 0 replaces N.
 * "name:profile" applies the file's <profile name="profile"> (calibrated
 * efficiency factors); without it, the profile the root's profile=
 * attribute names, if any. */
int ir_cluster_load(const char *name_or_path, int nodes_override, IrCluster *c, IrError *e);
void ir_cluster_free(IrCluster *c);
int ir_cluster_gpus(const IrCluster *c);

/* A sub-rectangle of the cluster: nodes [node0, node0+nnodes), GPUs
 * [gpu0, gpu0+ngpus) within each. */
typedef struct IrMesh {
	int node0, nnodes;
	int gpu0, ngpus;
} IrMesh;

/* A mesh seen as n0 x n1 devices (row-major over node, then GPU);
 * per axis the link its collectives cross. */
typedef struct IrLogicalMesh {
	IrMesh mesh;
	int n[2];
	IrLink axis[2];
	bool crosses_nodes[2];
	int per_node[2]; /* devices of one axis group inside one node (0: 1) */
	IrLink intra;    /* the link inside a node */
} IrLogicalMesh;

int ir_mesh_devices(const IrMesh *m);
/* Fills v for shape n0 x n1 of mesh m; -1 with e if n0*n1 != devices. */
int ir_logical_mesh(const IrCluster *c, const IrMesh *m, int n0, int n1, IrLogicalMesh *v,
		    IrError *e);
/* Parses "2x4" into n0, n1; -1 with e when malformed or not positive. */
int ir_mesh_shape_parse(const char *s, int *n0, int *n1, IrError *e);

/* ------------------------------------------------------------------ */
/* Plans: what the passes decide and the simulator executes.           */

typedef enum { IR_SCHED_GPIPE, IR_SCHED_1F1B, IR_SCHED_INTERLEAVED } IrSchedule;
typedef enum { IR_RECOMP_NONE, IR_RECOMP_SELECTIVE, IR_RECOMP_FULL } IrRecompute;

const char *ir_schedule_name(IrSchedule s);
int ir_schedule_parse(const char *s, IrSchedule *out);
const char *ir_recompute_name(IrRecompute r);
int ir_recompute_parse(const char *s, IrRecompute *out);

/* The collectives a plan names; the simulator prices them (SimColl). */
typedef enum {
	IR_ALL_REDUCE,
	IR_ALL_GATHER,
	IR_REDUCE_SCATTER,
	IR_ALL_TO_ALL,
	IR_P2P,
	IR_NCOLL
} IrColl;
/* "all-reduce", "all-gather", "reduce-scatter", "all-to-all", "p2p"; "?" else. */
const char *ir_coll_name(IrColl k);
/* That name back; -1 for any other. */
int ir_coll_parse(const char *s, IrColl *out);

/* One communication a stage's sharding needs: a collective of `kind`;
 * `bytes` is the logical buffer on one device as sim_collective_time
 * takes it. */
typedef struct IrComm {
	int op;        /* the op it belongs to (before it runs: its inputs'
			  resharding; after: its partial sums) */
	IrColl kind;
	int axis;      /* 0, 1, or 2 = both axes of the logical mesh */
	double bytes;
	bool per_step; /* once per step (gradient sync after accumulation,
			  parameter all-gather after the update), not per microbatch */
	bool reshard;  /* converts a tensor's layout between two ops */
	bool weight;   /* gathers a weight sharded at rest (ZeRO-3 / FSDP parameter
			  all-gather): may be prefetched (IR_OVERLAP_PARAM_GATHER);
			  on a reduce-scatter in backward: reduces gradients into
			  their dp shards, overlapped with the backward of the
			  layers before it (IR_OVERLAP_GRAD_REDUCE) */
} IrComm;

/* Communication a plan overlaps with compute (IrPlan.overlap bits). */
enum {
	IR_OVERLAP_GRAD_REDUCE = 1,  /* gradient reductions in buckets during the last
					backward (DDP's default; Megatron-LM's
					--overlap-grad-reduce) */
	IR_OVERLAP_PARAM_GATHER = 2, /* ZeRO-3/FSDP parameter all-gathers prefetched one
					layer ahead */
	IR_OVERLAP_TP = 4,           /* tensor-parallel collectives behind the compute of
					their layer (off unless a plan asks) */
	IR_OVERLAP_DEFAULT = IR_OVERLAP_GRAD_REDUCE | IR_OVERLAP_PARAM_GATHER,
};
/* "none" or a comma list of "grad-reduce", "param-gather", "tp" into buf. */
const char *ir_overlap_name(unsigned overlap, char *buf, size_t n);
/* Parses that form (also "default"); -1 on an unknown word. */
int ir_overlap_parse(const char *s, unsigned *out);

/* One strategy the intra-op pass had for a group of ops (an op and the
 * ops that follow its layout) or for a weight's storage layout: its costs
 * per step, the rest of the stage as chosen. */
typedef struct IrAlt {
	const char *strategy;  /* as IrStagePlan.strategy */
	double compute_s;      /* its ops' kernels */
	double comm_s;         /* their own collectives (partial sums, gradient sync) */
	double reshard_s;      /* layout conversions on the tensors into and out of it */
	double mem_bytes;      /* model state it holds per device */
} IrAlt;

/* Why the intra-op pass sharded a group as it did: the chosen strategy and
 * the cheapest others, each priced with every other group as chosen.  The
 * chosen compute + comm + reshard_in over a stage's records add up to the
 * ILP's objective (IrStagePlan.ilp_s). */
typedef struct IrOpWhy {
	int op;                /* the group's leading op (graph op index) */
	bool weight;           /* the storage layout of the weight that op reads first */
	int nstrat;            /* strategies the ILP had for it */
	IrAlt chosen;          /* reshard_s: into and out of it, as the alternatives */
	double reshard_in_s;   /* of that: the conversions into it */
	int nalt;
	IrAlt *alt;            /* cheapest first (compute + comm + reshard) */
} IrOpWhy;

enum { IR_MAX_WHY_ALTS = 4 }; /* alternatives recorded per group */

/* The sharding of one stage's ops on its logical mesh. */
typedef struct IrStagePlan {
	int first_layer, last_layer; /* layers [first_layer, last_layer] */
	IrMesh mesh;                 /* sub-mesh of the cluster */
	int n0, n1;                  /* its logical view */
	int nops;
	int *op;                     /* graph op indices of the stage, in graph order */
	const char **strategy;       /* per entry: "b=0,h=1" label -> axes (0, 1, 01); "" replicated */
	int *ways;                   /* per entry: devices its work is divided over (1..n0*n1) */
	int ncomm;
	IrComm *comm;
	/* memory per device */
	double weight_bytes, grad_bytes, opt_bytes;
	double act_bytes;            /* forward activations of one microbatch kept for backward */
	int line;                    /* of its <stage> element when read from a plan file, else 0 */
	int *op_line;                /* per entry: line of its <op> element, or NULL */
	/* how the intra-op pass chose (0 records: not recorded, or not the ILP's) */
	int nwhy;
	IrOpWhy *why;
	double ilp_s;                /* the ILP's objective: compute + communication +
					resharding of one step */
} IrStagePlan;

/* One pipeline, or one stage's view, the inter-op search weighed. */
typedef struct IrSearchAlt {
	const char *what;      /* "3 stages", "microbatch 8", "recompute none", "stage 0 as 8x1" */
	const char *layout;    /* its stages' sub-meshes and views, "1x8:2x4 1x8:8x1" */
	double step_s;         /* the DP's step-time estimate (stage view: the stage's time
				  per microbatch); NAN when none fits */
	double mem_bytes;      /* largest memory per device of its stages (none fits: the
				  least any pipeline there needs; 0: not known) */
	bool fits;
} IrSearchAlt;

/* What the inter-op search weighed besides the plan it chose.  nalt 0 and
 * from NULL: not recorded (a plan written before, or not compiled). */
typedef struct IrPlanSearch {
	const char *from;      /* "dp", or what replaced the DP's plan: "dp+zero-1",
				  "dp+zero-2", "uniform" (a Megatron-style neighbour) */
	double estimate_s;     /* the DP's step-time estimate of its pipeline */
	double device_bytes;   /* the GPU's memory */
	const char *cut;       /* NULL, or "time-limit": the search was cut short */
	int nstage_s;
	double *stage_s;       /* per stage of the plan: the time the search priced it at, one
				  microbatch's forward + backward + the once-per-step work over
				  the microbatches (transfers not included) */
	int nalt;
	IrSearchAlt *alt;
} IrPlanSearch;

/* A whole plan. */
typedef struct IrPlan {
	IrArena arena;
	const char *model;      /* model spec as given (zoo name or path) */
	IrParamSet params;      /* overrides used, with batch = microbatch size */
	const char *cluster;    /* cluster spec as given */
	int nodes;              /* nodes of the cluster used (0: the file's) */
	int64_t global_batch;   /* samples per step */
	int64_t microbatch;     /* samples per microbatch (per data-parallel replica of a stage:
				   the whole stage mesh processes one microbatch at a time) */
	int nmicro;             /* microbatches per step */
	IrSchedule schedule;
	int chunks;             /* interleaved: model chunks per pipeline rank (v), else 1 */
	IrRecompute recompute;
	int zero;               /* optimizer sharding stage 0..3 */
	unsigned overlap;       /* IR_OVERLAP_* bits; ir_plan_init: IR_OVERLAP_DEFAULT, a
				   plan file without the attribute: none */
	int nstages;
	IrStagePlan *stages;    /* in pipeline order */
	IrPlanSearch search;    /* compile's record of the alternatives */
} IrPlan;

void ir_plan_init(IrPlan *p);
/* Initialises p with from's model, cluster, params, batch, schedule,
 * recomputation and ZeRO settings (strings copied into p's arena) and
 * nstages zeroed stages to fill. */
void ir_plan_init_like(IrPlan *p, const IrPlan *from, int nstages);
void ir_plan_free(IrPlan *p);
/* Copies src's why records into dst (in p's arena), their op indices
 * through map (NULL: as they are; else map[op] for every op). */
void ir_stage_copy_why(IrPlan *p, IrStagePlan *dst, const IrStagePlan *src, const int *map);
/* Allocates a stage's arrays for n ops in p's arena. */
void ir_stage_alloc(IrPlan *p, IrStagePlan *s, int nops, int ncomm);
/* Reads a plan file (models/plan.rng) into p (initialised here); -1 with e
 * naming the file and line.  Op indices are checked against the model by
 * the simulator, not here. */
int ir_plan_read(const char *path, IrPlan *p, IrError *e);
/* Writes p so that ir_plan_read gives it back exactly (atomically, see
 * IrOutput); ir_plan_fwrite writes it to an open file, `path` for errors. */
int ir_plan_write(const IrPlan *p, const char *path, IrError *e);
int ir_plan_fwrite(const IrPlan *p, FILE *f, const char *path, IrError *e);

/* ------------------------------------------------------------------ */
/* Sweep files (models/sweep.rng): lists whose cross product is run.    */

enum { IR_SWEEP_MAX_LIST = 4096 }; /* entries of one list, and points of a sweep */

typedef struct IrSweep {
	IrArena arena;
	const char *file;
	const char *name;          /* the file's name attribute, else its base name */
	int nmodels, nclusters, nnodes, nbatch, ntokens;
	const char **model;        /* specs; relative paths resolved from the file's folder */
	const char **model_set;    /* per model: "a=1,b=2" overrides, "" if none */
	int *model_line;           /* line of each <model>, for errors */
	const char **cluster;
	int *cluster_line;
	int *nodes;                /* nnodes == 0: each cluster's own count */
	int64_t *batch;
	double *tokens;
	int64_t microbatch;        /* <compile>: 0 searched */
	int recompute;             /* IrRecompute, -1 searched */
	int max_units;             /* 0: compile's default */
	bool failures;             /* <failures> present */
	const char *policy;        /* "restart-all" unless given */
	int runs;                  /* 0: the default */
	uint64_t seed;             /* failures: 1 unless given */
} IrSweep;

/* Reads and validates a sweep file; -1 with e naming file and line.  The
 * cross product may hold at most IR_SWEEP_MAX_LIST points. */
int ir_sweep_read(const char *path, IrSweep *s, IrError *e);
void ir_sweep_free(IrSweep *s);

#endif
