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

typedef enum {
	SIM_ALL_REDUCE,
	SIM_ALL_GATHER,
	SIM_REDUCE_SCATTER,
	SIM_ALL_TO_ALL,
	SIM_P2P,
	SIM_NCOLL
} SimColl;

/* "all-reduce", "all-gather", "reduce-scatter", "all-to-all", "p2p"; "?" else. */
const char *sim_coll_name(SimColl k);

/* The constants of the model, one set for every GPU and link (hw.c). */
typedef struct SimHwModel {
	double eff_matmul;  /* fraction of peak FLOP/s a large dense GEMM reaches */
	double flops_half;  /* FLOPs per kernel at which it reaches half of eff_matmul */
	double eff_hbm;     /* fraction of HBM bandwidth a large streaming kernel reaches */
	double bytes_half;  /* bytes per kernel at which it reaches half of eff_hbm */
	double launch_s;    /* fixed cost of one kernel launch, seconds */
	double eff_nvlink;  /* fraction of a node-internal link's bw NCCL rings reach */
	double eff_network; /* fraction of a between-node link's bw NCCL rings reach */
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
 * The same over axis 0 or 1 of a logical mesh (m->n[axis] devices over
 * m->axis[axis]), or both (axis 2: all n0*n1 devices, bounded by the slower
 * link of the axes longer than 1, at network efficiency if either crosses
 * nodes).
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
/* Plan execution (simulate.c).                                         */

#endif
