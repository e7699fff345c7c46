/*
 * sim.h -- meshplan's runtime simulator: the hardware model shared with the
 * planner (roofline compute, collectives over mesh axes), the execution of
 * a plan on a described cluster, and whole-run estimates.
 * All times are seconds, all sizes bytes, all rates per second.
 */
#ifndef MESHPLAN_SIM_H
#define MESHPLAN_SIM_H

#include "ir/ir.h"

/* ================================================================== */
/* Hardware model (hw.c): every constant carries its public source.    */
/* The model, its constants and their sources: docs/hardware-model.md. */

/* The collectives are the plan's (ir.h), under the simulator's names. */
typedef IrColl SimColl;
#define SIM_ALL_REDUCE IR_ALL_REDUCE
#define SIM_ALL_GATHER IR_ALL_GATHER
#define SIM_REDUCE_SCATTER IR_REDUCE_SCATTER
#define SIM_ALL_TO_ALL IR_ALL_TO_ALL
#define SIM_P2P IR_P2P
#define SIM_NCOLL IR_NCOLL
static inline const char *sim_coll_name(SimColl k) { return ir_coll_name(k); }

/* The constants of the model, one set for every GPU and link (hw.c). */
typedef struct SimHwModel {
	double eff_matmul;  /* fraction of peak FLOP/s a large dense GEMM reaches */
	double flops_half;  /* FLOPs per kernel at which it reaches half of eff_matmul */
	double eff_hbm;     /* fraction of HBM bandwidth a large streaming kernel reaches */
	double bytes_half;  /* bytes per kernel at which it reaches half of eff_hbm */
	double launch_s;    /* fixed cost of one kernel launch, seconds */
	double eff_nvlink;  /* fraction of a node-internal link's bw NCCL rings reach */
	double eff_network; /* fraction of a between-node link's bw NCCL rings reach */
	double eff_attn_fwd; /* fraction of peak a fused attention forward reaches */
	double eff_attn_bwd; /* the same for the fused backward (5 GEMMs, scores recomputed) */
} SimHwModel;
extern const SimHwModel sim_hw;

/*
 * Size-dependent efficiencies (Hockney's r_inf, n_1/2 form): the fraction
 * of peak FLOP/s a kernel of `flops` reaches, eff_matmul * f / (f + flops_half),
 * and the fraction of HBM bandwidth one moving `bytes` reaches,
 * eff_hbm * b / (b + bytes_half).  0 for f or b <= 0.
 */
double sim_compute_efficiency(double flops);
double sim_hbm_efficiency(double bytes);

/*
 * Time of a kernel doing `flops` floating-point operations in dtype `dt`
 * and moving `bytes` to and from HBM on one GPU: the roofline
 * max(flops / (peak * eff_flops), bytes / (hbm * eff_hbm)) plus a kernel
 * launch overhead, with size-dependent efficiencies.  A dtype without a
 * peak (IR_I32) uses the fp32 one; no flops and no bytes cost 0.
 */
double sim_kernel_time(const IrGpu *gpu, IrDType dt, double flops, double bytes);

/*
 * Time of one fused attention kernel (FlashAttention) running `flops`
 * hardware FLOPs (masked blocks skipped) and moving `bytes`:
 * max(flops / (peak * eff), bytes / (hbm * eff_hbm)) + launch, eff the
 * GPU's fused-attention forward or backward efficiency.
 */
double sim_attention_time(const IrGpu *gpu, IrDType dt, double flops, double bytes,
			  bool backward);

/*
 * Time of collective `k` among `ndev` devices joined by `link`, where
 * `bytes` is the size of the whole logical buffer on one device:
 * all-reduce: the buffer every device holds and ends with, reduced;
 * all-gather: the gathered result on each device; reduce-scatter: the
 * input each device holds before scattering; all-to-all: what each device
 * holds; p2p: the message.  ndev <= 1 or bytes <= 0 costs 0.
 * Ring (alpha-beta) costs: all-reduce 2(n-1)/n * bytes / (bw * eff) +
 * 2(n-1) * latency; all-gather, reduce-scatter, all-to-all
 * (n-1)/n * bytes / (bw * eff) + (n-1) * latency; p2p
 * bytes / (bw * eff) + latency.  `link` is taken to be inside a node
 * (eff = sim_hw.eff_nvlink); for a link between nodes use
 * sim_collective_time_link(..., true) or sim_mesh_collective_time.
 */
double sim_collective_time(SimColl k, double bytes, int ndev, const IrLink *link);
/* The same with the link's kind given: `network` true for between nodes. */
double sim_collective_time_link(SimColl k, double bytes, int ndev, const IrLink *link,
				bool network);

/*
 * A ring over `ndev` devices on ndev / per_node nodes, per_node of them in
 * each: when per_node > 1 each node's share of the ring runs over
 * per_node NICs (bus bandwidth per_node * net->bw at network efficiency,
 * at most intra->bw at NVLink efficiency), and nodes - 1 of its ndev - 1
 * steps (twice for all-reduce) pay net->latency, the others
 * intra->latency, as NCCL's tuning model has it.  per_node <= 1 is
 * sim_collective_time_link(..., net, true).
 */
double sim_collective_time_nodes(SimColl k, double bytes, int ndev, int per_node,
				 const IrLink *net, const IrLink *intra);

/*
 * The same over axis 0 or 1 of a logical mesh (m->n[axis] devices over
 * m->axis[axis]), or both (axis 2: all n0*n1 devices, bounded by the slower
 * link of the axes longer than 1, at network efficiency if either crosses
 * nodes).  An axis crossing nodes with m->per_node[axis] > 1 devices in
 * each node (axis 2: the mesh's GPUs per node) is priced by
 * sim_collective_time_nodes.
 */
double sim_mesh_collective_time(const IrLogicalMesh *m, int axis, SimColl k, double bytes);

/* ================================================================== */
/* Whole-run estimates (estimate.c, resilience.c).                     */
/* Formulas, defaults and their sources: docs/estimate.md.             */

/* What a GPU-hour costs and emits.  0 in price, power or carbon means
 * "not known": the figures that need it come out NaN. */
typedef struct SimCostModel {
	double price_per_gpu_hour; /* currency units per GPU-hour */
	char currency[8];          /* ISO 4217 code ("USD", "CNY") */
	double power_w;            /* average draw per GPU, W (board power) */
	double pue;                /* facility overhead factor, >= 1 (1: GPUs only) */
	double carbon_kg_per_kwh;  /* grid intensity, kg CO2e per kWh */
	double tree_kg_per_year;   /* CO2 one tree absorbs in a year: 12 */
	double percap_us_t;        /* annual per-capita emissions, t: US 16.1 */
	double percap_cn_t;        /* China 6.8 */
} SimCostModel;

typedef struct SimCost {
	double gpu_hours;
	double cost;            /* price * gpu_hours */
	double energy_kwh;      /* gpu_hours * power_w / 1000 * pue */
	double co2e_t;          /* energy_kwh * carbon / 1000 */
	double tree_years;      /* co2e / tree absorption */
	double percap_us_years; /* co2e / per-capita emissions */
	double percap_cn_years;
} SimCost;

void sim_cost_model_default(SimCostModel *m);
/* -1 with e filled when a figure is negative, PUE < 1, or the like. */
int sim_cost_model_check(const SimCostModel *m, IrError *e);
void sim_cost(const SimCostModel *m, double gpu_hours, SimCost *c);

/* A run without failures: steps = ceil(tokens / tokens_per_step). */
typedef struct SimRunTime {
	double steps, wall_s, gpu_hours;
} SimRunTime;
int sim_run_time(double step_s, int gpus, double tokens_per_step, double tokens,
		 SimRunTime *r, IrError *e);

/* Stragglers: data-parallel workers with relative speeds (1 = nominal). */
typedef enum { SIM_SHARD_EVEN, SIM_SHARD_DYNAMIC } SimSharding;
const char *sim_sharding_name(SimSharding s);
int sim_sharding_parse(const char *s, SimSharding *out); /* 0 ok, -1 unknown */
/*
 * Step time with these speeds over the step time at nominal speed.
 * even: every worker gets 1/n of the batch, the slowest sets the pace
 * (1 / min speed).  dynamic: the batch is cut into n * shards_per_worker
 * equal shards that idle workers pull in turn (DLRover style); the pace
 * is the simulated makespan, within about 1/shards_per_worker of ideal.
 */
double sim_straggler_pace(const double *speed, int n, SimSharding sh, int shards_per_worker);
/* n / sum(speed): the pace if work split exactly by speed. */
double sim_straggler_ideal_pace(const double *speed, int n);
/* Speeds from "normal:MEAN:SD", "uniform:LO:HI" or "slow:FRAC:SPEED"
 * (that fraction of workers at SPEED, the rest at 1), drawn with seed;
 * normal draws are clamped to >= 0.05. */
int sim_speeds_draw(const char *dist, int n, uint64_t seed, double *speed, IrError *e);

/* Failures, checkpoints and recovery: a Monte-Carlo of the whole run. */
typedef enum { SIM_RESTART_ALL, SIM_FAILOVER, SIM_ELASTIC, SIM_NPOLICIES } SimPolicy;
const char *sim_policy_name(SimPolicy p);
int sim_policy_parse(const char *s, SimPolicy *out); /* 0 ok, -1 unknown */

typedef struct SimFailureModel {
	SimPolicy policy;
	double rate_per_gpu_hour; /* failures per GPU-hour held (Poisson) */
	double soft_fraction;     /* share that only needs a process restart */
	double detect_s;          /* fault until the job knows */
	double restart_s;         /* relaunch: whole job (restart-all) or one node */
	double replace_s;         /* hard fault: bring in a spare node (not elastic) */
	double repair_s;          /* elastic: a lost node is back after this */
	double ckpt_save_s;       /* training blocked per checkpoint */
	double ckpt_load_s;       /* read the checkpoint back after a restart */
	double ckpt_interval_s;   /* compute time between checkpoints; 0: Young/Daly */
	double horizon_s;         /* > 0: simulate only this much wall time */
	int runs;                 /* Monte-Carlo runs averaged */
	uint64_t seed;
} SimFailureModel;

/* Defaults of docs/estimate.md for policy p (checkpoint kind follows it). */
void sim_failure_model_default(SimFailureModel *f, SimPolicy p);
int sim_failure_model_check(const SimFailureModel *f, IrError *e);
/* Young's first-order optimum sqrt(2 C MTBF), never below one step. */
double sim_young_daly_interval(double ckpt_save_s, double mtbf_s, double step_s);

typedef struct SimRunSpec {
	double work_s;       /* fault-free wall time of the whole run */
	double step_s;       /* one step on all GPUs (checkpoints fall between steps) */
	int gpus;            /* GPUs of the job */
	int gpus_per_node;   /* a hard fault takes a node */
	/* Elastic: step time on `gpus` GPUs (the re-planner); NULL: scales as
	 * step_s * job gpus / gpus (throughput linear in GPU count). */
	double (*step_time_for_gpus)(int gpus, void *ctx);
	/* Elastic: downtime of re-planning for `gpus` GPUs, charged each time
	 * the job moves to a new GPU count (a node lost or back); NULL: none. */
	double (*replan_s)(int gpus, void *ctx);
	void *ctx;
} SimRunSpec;

/* Where the wall time beyond the fault-free time goes. */
typedef enum {
	SIM_LOST_DETECT,    /* fault to detection */
	SIM_LOST_RESTART,   /* relaunch, spare node, elastic rejoin */
	SIM_LOST_SAVE,      /* blocking checkpoint saves */
	SIM_LOST_LOAD,      /* checkpoint loads after restarts */
	SIM_LOST_RECOMPUTE, /* work since the last checkpoint, done again */
	SIM_LOST_DEGRADED,  /* elastic: slower pace on fewer GPUs */
	SIM_LOST_REPLAN,    /* elastic: re-planning for the new GPU count */
	SIM_NLOST
} SimLost;
const char *sim_lost_name(SimLost k);

/* Means over runs, unless named otherwise. */
typedef struct SimResilience {
	double mtbf_s;        /* cluster MTBF of the full job */
	double interval_s;    /* checkpoint interval used */
	double wall_s;        /* wall time of the run (or the horizon) */
	double wall_min_s, wall_max_s;
	double gpu_hours;     /* GPU-hours held (spares swap in; elastic: fewer) */
	double useful_s;      /* fault-free time of the work done */
	double ettr;          /* useful_s / wall_s, mean of per-run ratios */
	double ettr_min, ettr_max;
	double progress;      /* share of the work done (1 unless horizon) */
	double interruptions, soft, hard;
	double checkpoints, rejoins;
	double lost_s[SIM_NLOST];
	int runs;
} SimResilience;

/* Events all Monte-Carlo runs of sim_resilience may take together
 * (docs/limits.md): a bound on its work, whatever --runs and the horizon. */
enum { SIM_MAX_EVENTS = 50000000 };
/* wall = useful + sum(lost) in every run; -1 with e on bad input. */
int sim_resilience(const SimRunSpec *r, const SimFailureModel *f, SimResilience *out,
		   IrError *e);

/* Slowdown (mean wall time / mean fault-free time of the work done, so
 * horizon runs compare too) at n checkpoint intervals spaced
 * geometrically over [lo_s, hi_s], same seeds at each, into interval[]
 * and slowdown[]; *best_s: the minimum refined by a least-squares
 * parabola in log(interval) over its neighbours.  -1 with e on bad input. */
int sim_ckpt_sweep(const SimRunSpec *r, const SimFailureModel *f, double lo_s, double hi_s,
		   int n, double *interval, double *slowdown, double *best_s, IrError *e);

/* ================================================================== */
/* Plan execution (simulate.c, memory.c, trace.c).                      */
/* The model, its conventions and its checks: docs/simulator.md.        */

/*
 * A stage plan's strategy string ("b=0,h=1,a=01") as mesh axes per label:
 * axes[i] for the label with ir_label_bit index i, bit 1 = axis 0,
 * bit 2 = axis 1; 0 = not split.  "" is all replicated.  -1 if malformed.
 */
int sim_strategy_parse(const char *strategy, uint8_t axes[64]);

/*
 * Devices operand k of op is divided over when its labels are split over
 * mesh axes `axes` (as sim_strategy_parse gives them) of an n0 x n1 mesh:
 * its elements over the elements one device holds, each split dim padded
 * to the ceiling (a dim its axes do not divide holds ceil(dim / n) per
 * device, as FSDP pads its flat buffer).  The product of the axes' sizes
 * when they divide every dim.
 */
double sim_operand_ways(const IrGraph *g, const IrOp *op, int k, const uint8_t axes[64], int n0,
			int n1);
/* Padding of op's work under `axes`: the product over its split labels of
 * ceil(size / n) * n / size (1 when the axes divide every split label). */
double sim_op_padding(const IrGraph *g, const IrOp *op, const uint8_t axes[64], int n0, int n1);

/* Memory of one stage, bytes per device of its mesh. */
typedef struct SimStageMemory {
	double weight_bytes;   /* weights at rest (tied copies of other stages' weights too) */
	double grad_bytes;     /* accumulated weight gradients */
	double opt_bytes;      /* fp32 master weights and Adam moments */
	double act_bytes;      /* activations one microbatch keeps from forward to backward */
	double act_work_bytes; /* recomputed activations live during one backward */
	double tied_grad_bytes; /* part of grad_bytes: copies of weights another stage
				   updates, all-reduced with it once per step */
} SimStageMemory;

/*
 * Whether backward op b reads its input k: SIM_READ_NO for the input of a
 * linear function (scale, mask, neg, rotary: the derivative does not
 * depend on it), SIM_READ_MASK for a dropout's input (backward reads the
 * 1-byte keep mask the forward wrote instead), SIM_READ_YES otherwise
 * (and for every operand of a non-backward op).  The training graph lists
 * such inputs generically; memory and kernel bytes follow this instead.
 */
typedef enum { SIM_READ_NO, SIM_READ_YES, SIM_READ_MASK } SimRead;
SimRead sim_bwd_reads(const IrGraph *g, const IrOp *b, int k);

/*
 * Marks core[op] = 1 for the forward ops of every attention core of g,
 * found by structure: a "context" einsum of two activations fed through a
 * chain of one-input elementwise/softmax ops, a softmax among them, by a
 * "score" einsum of two activations.  The chain and the score einsum are
 * the core (selective recomputation re-runs them).  core has g->nops
 * entries; returns how many cores it found.
 */
int sim_attention_cores(const IrGraph *g, unsigned char *core);

/*
 * The ops fused attention runs as one kernel: grp[o] = the score einsum of
 * the attention core that op o belongs to (its score einsum, the chain, the
 * context einsum, and every backward op of those), -1 for other ops.  grp
 * has g->nops entries; returns the number of cores.
 */
int sim_attention_groups(const IrGraph *g, int *grp);

/*
 * Memory per device (memory.c).  Weights, gradients and optimizer state
 * follow the layouts of the stage's ops: optimizer state that of the adam
 * op, gradients that of the accumulate op, weights that of their first
 * forward consumer, or with zero >= 3 that of the adam op (sharded at rest,
 * gathered before use).  Activations are the forward tensors that backward
 * ops read, in the layout their producer wrote, a dropout's 1-byte mask
 * instead of its input, nothing for linear functions (scale, mask, neg,
 * rotary); recomputation `selective` drops the attention core (found by
 * structure: a score einsum of two activations, a chain of one-input ops
 * with a softmax, a context einsum) into act_work_bytes, `full` keeps only
 * each layer's inputs and counts one layer's activations as work (the
 * layer holding the loss is never recomputed).
 */
int sim_stage_memory(const IrGraph *g, const IrCluster *c, const IrStagePlan *s, IrRecompute rc,
		     int zero, SimStageMemory *m, IrError *e);

/* What one stage costs.  Times are per device of the stage's mesh. */
typedef struct SimStageCost {
	double fwd_s;         /* forward of one microbatch, its collectives included */
	double bwd_s;         /* backward of one microbatch, recomputation included */
	double fwd_comm_s;    /* the collectives within fwd_s */
	double bwd_comm_s;    /* the collectives within bwd_s (recomputed ones too) */
	double recompute_s;   /* the forward work bwd_s re-runs */
	double step_s;        /* once per step: per_step collectives, update ops, tied-weight sync */
	double step_comm_s;   /* the collectives within step_s */
	double grad_sync_s;   /* part of step_s: the gradient reductions (all-reduce,
				 reduce-scatter) as one flat buffer per kind and axis */
	/* With IR_OVERLAP_GRAD_REDUCE: the reductions in one bucket per layer on the
	 * communication stream during the stage's last backward, each starting when
	 * its layer's backward ends and the stream is free.  Offsets from that
	 * backward's start: */
	double grad_first_s;  /* the first bucket starts */
	double grad_end_s;    /* the last bucket ends (exposed: what passes bwd_s) */
	double grad_bucket_s; /* sum of the buckets' times */
	/* With IR_OVERLAP_PARAM_GATHER and ZeRO-1/2: the once-per-step all-gathers
	 * of the updated weight shards leave step_s and run during the next step's
	 * first forward, one bucket per layer; what they add to it: */
	double param_gather_s;
	double send_bytes;    /* activations of one microbatch the next stages read (whole tensors) */
	double model_flops;   /* forward + backward FLOPs of one microbatch, whole stage */
	double hw_flops;      /* FLOPs one device runs per microbatch (recomputation, replication) */
	double update_flops;  /* FLOPs one device runs per step */
	int devices;          /* devices of the stage's mesh */
	SimStageMemory mem;
} SimStageCost;

/*
 * Cost of stage s of training graph g on cluster c: each op's kernel
 * (sim_kernel_time of flops/ways and of the bytes of its operands in their
 * layouts, in its output's dtype), plus its IrComm collectives on the
 * stage's logical mesh.  Usable on its own (the inter-op DP calls it).
 * -1 with e when the stage plan does not fit the graph or the cluster.
 */
int sim_stage_cost(const IrGraph *g, const IrCluster *c, const IrStagePlan *s, IrRecompute rc,
		   int zero, SimStageCost *out, IrError *e);

/*
 * The same with communication overlapped as `overlap` (IR_OVERLAP_* bits)
 * says; sim_stage_cost is overlap 0.  Each device has a compute and a
 * communication stream.  PARAM_GATHER: weight all-gathers (IrComm.weight)
 * run on the communication stream one layer ahead of the compute that
 * needs them (fwd_s, bwd_s shrink).  TP: each layer's other collectives
 * hide behind its kernels.  GRAD_REDUCE: grad_first_s / grad_end_s /
 * grad_bucket_s describe the bucketed reductions; sim_plan takes them in
 * place of grad_sync_s.
 */
int sim_stage_cost_overlap(const IrGraph *g, const IrCluster *c, const IrStagePlan *s,
			   IrRecompute rc, int zero, unsigned overlap, SimStageCost *out,
			   IrError *e);

/* What sim_stage_cost_overlap sums, per layer of the stage and per
 * collective, for a finer trace.  Times per device. */
typedef struct SimLayerTime {
	double fwd_compute_s, fwd_comm_s, fwd_gather_s; /* kernels, blocking collectives,
							   weight all-gathers */
	double bwd_compute_s, bwd_comm_s, bwd_gather_s; /* the same, recomputation included */
} SimLayerTime;

/* One collective of a microbatch's forward or backward task. */
typedef struct SimCollEvent {
	int op;          /* the graph op it belongs to */
	int layer;       /* index into SimStageDetail.layer */
	SimColl kind;
	int axis;        /* 0, 1, or 2 for both */
	double bytes, time_s;
	bool backward;   /* in the backward task */
	bool recompute;  /* a forward collective run again during backward */
	bool gather;     /* a weight all-gather (prefetched with IR_OVERLAP_PARAM_GATHER) */
} SimCollEvent;

typedef struct SimStageDetail {
	int first_layer, nlayers;
	SimLayerTime *layer;  /* nlayers */
	int ncoll;
	SimCollEvent *coll;   /* in the plan's order; per_step ones are not here */
} SimStageDetail;

/* Stage s's cost split per layer and per collective (the layers and
 * collectives of sim_stage_cost_overlap with the same arguments). */
int sim_stage_detail(const IrGraph *g, const IrCluster *c, const IrStagePlan *s,
		     IrRecompute rc, int zero, unsigned overlap, SimStageDetail *d, IrError *e);
void sim_stage_detail_free(SimStageDetail *d);

/* One forward or backward of one microbatch on one stage. */
typedef struct SimTask {
	int stage, micro, rank;
	bool backward;
	double start, end;    /* on the rank's compute stream */
	double comm_s;        /* the task's own collectives: its last comm_s seconds */
	double recv_s;        /* transfer of its input from the neighbour stage */
} SimTask;

/* A pipeline: stage costs, transfers and the schedule. */
typedef struct SimPipeline {
	int nstages;          /* model chunks in pipeline order: nranks * chunks */
	int chunks;           /* v: stage i runs on rank i % nranks */
	int nmicro;
	IrSchedule schedule;  /* chunks > 1 needs IR_SCHED_INTERLEAVED */
	const SimStageCost *stage;
	const double *xfer_s; /* per stage: sending its output to stage i+1 (and the
				 gradient back); NULL: free */
} SimPipeline;

/* Timeline and memory of one step's forward/backward phase. */
typedef struct SimTimeline {
	int nranks, ntasks;
	SimTask *task;        /* in start order per rank, ranks after each other */
	double span_s;        /* last backward end */
	double *rank_end;     /* per rank: its last backward end */
	double *rank_busy;    /* per rank: compute stream busy time */
	double *rank_act;     /* per rank: peak activation bytes held */
	double bubble_s;      /* span_s - mean rank_busy */
	double bubble_fraction; /* bubble_s / span_s */
} SimTimeline;

/*
 * Runs one step's forward and backward tasks in the schedule's order per
 * rank (GPipe: all forwards, then all backwards; 1F1B: p-r-1 warm-up
 * forwards, then one forward one backward; interleaved: Megatron-LM's
 * order, nmicro a multiple of nranks), each starting when its rank is free
 * and its input has arrived.  Tracks activations held per rank.
 */
int sim_pipeline(const SimPipeline *p, SimTimeline *t, IrError *e);
void sim_timeline_free(SimTimeline *t);

/* Everything `meshplan simulate` reports. */
typedef struct SimResult {
	int nstages, nranks, ngpus;
	SimStageCost *stage;      /* per stage */
	double *xfer_s;           /* per stage: transfer to the next */
	SimTimeline tl;
	double *rank_step_s;      /* per rank: per-step work after its last backward (and,
				     with IR_OVERLAP_GRAD_REDUCE, after its buckets) */
	double *rank_sync_start, *rank_sync_end; /* per rank: its bucketed gradient
				     reductions on the communication stream (0, 0: none) */
	double *rank_mem;         /* per rank: peak bytes per device */
	double *rank_weight, *rank_grad, *rank_opt; /* per rank, bytes per device */
	double step_time_s;
	double samples_per_s, tokens_per_s;
	double model_flops;       /* per step, all devices (no recomputation) */
	double hw_flops;          /* per step, all devices, as executed */
	double tflops_per_gpu, hw_tflops_per_gpu;
	double mfu, hfu;          /* against the GPU's bf16 peak */
	double bubble_fraction;
	double peak_memory_bytes; /* the fullest device */
	int peak_rank;
	bool fits;                /* peak_memory_bytes <= the GPU's memory */
} SimResult;

/*
 * Simulates one training step of plan p (stages with strategies, e.g. from
 * the intra-op pass) for training graph g (instantiated with batch =
 * p->microbatch) on cluster c.  -1 with e on an inconsistent plan.
 */
int sim_plan(const IrGraph *g, const IrCluster *c, const IrPlan *p, SimResult *r, IrError *e);
void sim_result_free(SimResult *r);

/* Chrome trace (Perfetto) of a simulated step as JSON text (trace.c): a
 * process per pipeline rank, a compute and a communication thread each.
 * Returns malloc'd text, NULL on failure. */
char *sim_trace_json(const IrPlan *p, const SimResult *r);
/* Writes it to `path` atomically (IrOutput); -1 with e on failure.
 * sim_trace_fwrite writes it to an open file, `path` for errors. */
int sim_trace_write(const IrPlan *p, const SimResult *r, const char *path, IrError *e);
int sim_trace_fwrite(const IrPlan *p, const SimResult *r, FILE *f, const char *path, IrError *e);

/* How fine a trace is.  stage: the above, one event per task.  layer: a
 * process per pipeline rank, each task split into an event per layer on
 * the compute thread and one per collective on the communication thread,
 * laid out as the simulator times the task.  gpu: the same on a process
 * per GPU of each stage's mesh (every GPU of a stage runs the same work),
 * or per logical mesh row when a mesh has more than
 * SIM_TRACE_MAX_GPU_PROCS GPUs. */
typedef enum { SIM_TRACE_STAGE, SIM_TRACE_LAYER, SIM_TRACE_GPU } SimTraceDetail;
enum { SIM_TRACE_MAX_GPU_PROCS = 64 };
const char *sim_trace_detail_name(SimTraceDetail d);
int sim_trace_detail_parse(const char *s, SimTraceDetail *out); /* 0 ok, -1 unknown */
/* The trace at detail d (g and c: the plan's graph and cluster; unused for
 * stage); -1 with e on failure. */
int sim_trace_fwrite_detail(const IrGraph *g, const IrCluster *c, const IrPlan *p,
			    const SimResult *r, SimTraceDetail d, FILE *f, const char *path,
			    IrError *e);

/* Pictures of a plan as standalone SVG without scripts (svg.c).  Classes
 * name what each element shows, so a reader can measure the picture. */
typedef enum { SIM_SVG_TIMELINE, SIM_SVG_MESH, SIM_SVG_MEMORY } SimSvg;
/* Timelines of more tasks than this carry no per-task tooltips. */
enum { SIM_SVG_MAX_TIPS = 20000 };
/* The step's pipeline schedule: a <g class="rank"> row per pipeline rank,
 * forward (class fwd) and backward (bwd) tasks on its compute lane over an
 * idle background (class idle) spanning the pipeline phase, collectives
 * (comm), sends (p2p), gradient sync (sync) and the update (update) after
 * it; a legend and a time axis in ms. */
/* Text for XML, SVG or HTML: &, <, >, " and ' escaped, control characters dropped. */
void sim_xml_escape(FILE *f, const char *s);
void sim_svg_timeline(FILE *f, const IrPlan *p, const SimResult *r);
/* The cluster's nodes and GPUs coloured by the pipeline rank whose sub-mesh
 * holds them, and each rank's logical n0 x n1 view with its devices. */
void sim_svg_mesh(FILE *f, const IrCluster *c, const IrPlan *p);
/* Per pipeline rank a bar of bytes per GPU by kind (weights, gradients,
 * optimizer, activations), against a line at the GPU's memory. */
void sim_svg_memory(FILE *f, const IrCluster *c, const IrPlan *p, const SimResult *r);
/* One of them to an open file, `path` for errors; -1 with e when the write
 * fails. */
int sim_svg_write(SimSvg kind, const IrCluster *c, const IrPlan *p, const SimResult *r,
		  FILE *f, const char *path, IrError *e);

/* ================================================================== */
/* Calibration (calibrate.c): a cluster's software profile fitted to   */
/* measured runs.  docs/calibration.md.                                 */

/* The profile's parameters (cluster file <profile> attributes). */
enum {
	SIM_CAL_GEMM,     /* gemm-scale: factor on GEMM and fused-attention efficiency */
	SIM_CAL_MEMORY,   /* memory-scale: factor on HBM efficiency */
	SIM_CAL_COMM,     /* comm-scale: factor on NCCL bus-bandwidth efficiency, both links */
	SIM_CAL_OVERHEAD, /* kernel-overhead-us: microseconds added to every kernel */
	SIM_CAL_NPARAM
};
const char *sim_cal_name(int k);
/* "gemm-scale,kernel-overhead-us" into bits 1 << SIM_CAL_*; -1 unknown or empty. */
int sim_cal_parse(const char *list, unsigned *mask);
/* The uncalibrated values: factors 1, overhead 0. */
void sim_cal_default(double v[SIM_CAL_NPARAM]);
/* Writes the values into a cluster (IrGpu/IrLink profile fields). */
void sim_cal_apply(IrCluster *c, const double v[SIM_CAL_NPARAM]);

/* One measured run: its plan is fixed, only its timing is refitted. */
typedef struct SimCalRun {
	const char *name;
	const IrGraph *g;
	const IrPlan *p;
	IrCluster *c;       /* the run's cluster: the fit writes the profile into it */
	double measured_s;  /* measured step time */
} SimCalRun;

/* Levenberg-Marquardt iterations a fit may take; it stops sooner when a step
 * gains less than 1e-12 of the sum of squares (converged). */
#define SIM_CAL_MAX_ITER 200

typedef struct SimCalFit {
	double rms_log;     /* root mean square of log(predicted / measured), fitted runs */
	int iterations;     /* taken; SIM_CAL_MAX_ITER without `converged` is a cut-off fit */
	bool converged;
	double *pred_s;     /* NULL or per run (all n): predicted step time at the fit */
} SimCalFit;

/* Step times of the runs with profile values v, into pred. */
int sim_cal_predict(const SimCalRun *runs, int n, const double v[SIM_CAL_NPARAM], double *pred,
		    IrError *e);
/*
 * Fits the parameters in `mask` (the others stay at v's values) to the
 * runs but `skip` (-1: none; leave-one-out passes one) by least squares on
 * log(predicted / measured), Levenberg-Marquardt from v; v gets the fit.
 * Factors stay within [1/4, the one that takes the model's default
 * efficiency to 1], the overhead >= 0; a parameter at a bound the step would
 * pass is held there for that step (an active set).
 */
int sim_calibrate(const SimCalRun *runs, int n, unsigned mask, int skip,
		  double v[SIM_CAL_NPARAM], SimCalFit *fit, IrError *e);

#endif
