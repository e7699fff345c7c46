/*
 * sweep.h -- private to `meshplan sweep` (cmd_sweep.c, sweep_mpi.c,
 * sweep_front.c): the state of one sweep run and its summaries.
 */
#ifndef MESHPLAN_TOOLS_SWEEP_H
#define MESHPLAN_TOOLS_SWEEP_H

#include <pthread.h>

#include "tools/tools.h"

typedef struct Sweep {
	IrSweep s;
	int njobs;            /* compiles: models x clusters x nodes x batches */
	int *todo, ntodo;     /* jobs to run, ascending */
	int next;             /* next index of todo to deal */
	char **result;        /* per job: its lines (ntokens of them), NULL until done */
	int ndone, kept;      /* jobs finished in this run; taken from --resume */
	int emit;             /* stdout: jobs printed so far (in order) */
	FILE *out_f;          /* -o: appended as jobs finish */
	const char *plans;    /* --plans DIR, or NULL */
	int threads;          /* jobs at once in this process */
	bool progress;
	int rank, nranks;     /* MPI: this rank and the count (1: no MPI) */
	pthread_mutex_t lock; /* next, result, ndone, emit, out_f */
} Sweep;

/* The compile of job j (token budgets aside) and its model/cluster index. */
void sweep_job_point(const Sweep *w, int j, ToolPoint *pt, int *m, int *c);
/* Compiles job j and returns its lines (malloc'd, one per token budget). */
char *sweep_run_job(const Sweep *w, int j);
/* The next job to deal, -1 when none is left (thread-safe). */
int sweep_next_job(Sweep *w);
/* Records job j's lines (takes text) and writes them out (thread-safe). */
void sweep_job_done(Sweep *w, int j, char *text);
/* Starts n threads running fn(arg); returns how many started. */
int sweep_start_threads(void *arg, int n, void *(*fn)(void *), pthread_t *tid);

/* MPI (sweep_mpi.c); without MPI built in, or not under mpirun, these
 * leave nranks 1 and do nothing. */
int sweep_mpi_init(Sweep *w);
/* Rank 0's exit code, told to every rank. */
int sweep_mpi_agree(Sweep *w, int rc);
/* Deals w->todo over the ranks (rank 0) or asks for and runs jobs. */
void sweep_mpi_run(Sweep *w);
void sweep_mpi_finalize(Sweep *w);

/* A point of the Pareto summary. */
typedef struct SweepPoint {
	int point;
	double days, cost;
	bool front;           /* no other point is at most as long and as dear, one strictly */
	char label[256];      /* model set cluster nodes batch tokens */
	char currency[8];
} SweepPoint;

typedef struct SweepFront {
	int npoints, nfit;    /* lines; of which fit with a finite cost */
	SweepPoint *p;        /* the nfit points, by days then cost */
	bool failures;        /* days and cost are under failures */
} SweepFront;

/* The front of w's lines (days and cost under failures when the lines
 * have them); -1 on allocation failure. */
int sweep_front(const Sweep *w, SweepFront *f);
void sweep_front_print(const SweepFront *f, FILE *out);
/* A standalone SVG scatter of cost against days, the front marked. */
char *sweep_front_svg(const SweepFront *f, const char *title);
void sweep_front_free(SweepFront *f);

#endif
