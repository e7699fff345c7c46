/*
 * sweep_mpi.c -- a sweep over MPI ranks (built when CMake finds MPI:
 * MESHPLAN_MPI).  Used only when the process was started by an MPI
 * launcher (mpirun, srun: the launcher's environment says so); a plain
 * `meshplan sweep` never starts MPI.
 *
 * Rank 0 deals: its main thread answers requests, one job index per
 * request, from the same queue its own worker threads take from, and
 * collects the lines.  Every other rank keeps --threads jobs in flight:
 * its main thread asks rank 0 for a job whenever a thread is free, and
 * sends each job's lines back as it finishes.  Only main threads call MPI
 * (MPI_THREAD_FUNNELED).  Waiting is by polling with short sleeps, so an
 * idle main thread does not take a core from the workers.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/sweep.h"

#ifndef MESHPLAN_MPI

int sweep_mpi_init(Sweep *w)
{
	w->rank = 0;
	w->nranks = 1;
	return 0;
}
int sweep_mpi_agree(Sweep *w, int rc)
{
	(void)w;
	return rc;
}
void sweep_mpi_run(Sweep *w)
{
	(void)w;
}
void sweep_mpi_finalize(Sweep *w)
{
	(void)w;
}

#else

#include <mpi.h>

enum { TAG_REQ = 1, TAG_JOB, TAG_RESULT };

static bool started;

/* Started by an MPI launcher? (OpenMPI's mpirun, PMI/PMIx launchers such
 * as Slurm's srun.) */
static bool under_launcher(void)
{
	return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

int sweep_mpi_init(Sweep *w)
{
	w->rank = 0;
	w->nranks = 1;
	if (!under_launcher())
		return 0;
	int provided;
	if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
		return -1;
	started = true;
	MPI_Comm_rank(MPI_COMM_WORLD, &w->rank);
	MPI_Comm_size(MPI_COMM_WORLD, &w->nranks);
	return 0;
}

int sweep_mpi_agree(Sweep *w, int rc)
{
	if (w->nranks > 1)
		MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
	return rc;
}

void sweep_mpi_finalize(Sweep *w)
{
	(void)w;
	if (started)
		MPI_Finalize();
	started = false;
}

static void nap(void)
{
	struct timespec ts = {0, 2000000}; /* 2 ms */
	nanosleep(&ts, NULL);
}

static void *local_worker(void *arg)
{
	Sweep *w = arg;
	for (int j; (j = sweep_next_job(w)) >= 0;)
		sweep_job_done(w, j, sweep_run_job(w, j));
	return NULL;
}

/* Rank 0: deal to the others, work with threads, collect. */
static void deal(Sweep *w)
{
	pthread_t tid[1024];
	int nt = sweep_start_threads(w, w->threads, local_worker, tid);
	int stopped = 0, outstanding = 0;
	while (stopped < w->nranks - 1 || outstanding > 0) {
		int flag;
		MPI_Status st;
		MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
		if (!flag) {
			nap();
			continue;
		}
		if (st.MPI_TAG == TAG_REQ) {
			int dummy;
			MPI_Recv(&dummy, 1, MPI_INT, st.MPI_SOURCE, TAG_REQ, MPI_COMM_WORLD,
				 MPI_STATUS_IGNORE);
			int j = sweep_next_job(w);
			MPI_Send(&j, 1, MPI_INT, st.MPI_SOURCE, TAG_JOB, MPI_COMM_WORLD);
			if (j < 0)
				stopped++;
			else
				outstanding++;
		} else {
			int n;
			MPI_Get_count(&st, MPI_CHAR, &n);
			char *buf = malloc((size_t)n + 1);
			if (!buf)
				abort();
			MPI_Recv(buf, n, MPI_CHAR, st.MPI_SOURCE, TAG_RESULT, MPI_COMM_WORLD,
				 MPI_STATUS_IGNORE);
			buf[n] = 0;
			/* "<job>\n<lines>" */
			char *nl = strchr(buf, '\n');
			int j = (int)strtol(buf, NULL, 10);
			if (nl && j >= 0 && j < w->njobs)
				sweep_job_done(w, j, strdup(nl + 1));
			free(buf);
			outstanding--;
		}
	}
	for (int i = 0; i < nt; i++)
		pthread_join(tid[i], NULL);
}

/* Another rank: jobs from rank 0 into a local queue, lines back. */
typedef struct Remote {
	Sweep *w;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int *queue, nq, head;  /* jobs received, not yet taken */
	bool closed;           /* rank 0 has no more */
	int *fin_job;          /* finished, not yet sent */
	char **fin_text;
	int nfin;
} Remote;

static Remote remote;

static void *remote_worker(void *arg)
{
	Remote *r = arg;
	for (;;) {
		pthread_mutex_lock(&r->lock);
		while (r->head == r->nq && !r->closed)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->head == r->nq) {
			pthread_mutex_unlock(&r->lock);
			return NULL;
		}
		int j = r->queue[r->head++];
		pthread_mutex_unlock(&r->lock);
		char *text = sweep_run_job(r->w, j);
		pthread_mutex_lock(&r->lock);
		r->fin_job[r->nfin] = j;
		r->fin_text[r->nfin++] = text;
		pthread_mutex_unlock(&r->lock);
	}
}

static void work(Sweep *w)
{
	Remote *r = &remote;
	memset(r, 0, sizeof *r);
	r->w = w;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->queue = calloc((size_t)w->njobs + 1, sizeof *r->queue);
	r->fin_job = calloc((size_t)w->njobs + 1, sizeof *r->fin_job);
	r->fin_text = calloc((size_t)w->njobs + 1, sizeof *r->fin_text);
	if (!r->queue || !r->fin_job || !r->fin_text)
		abort();
	pthread_t tid[1024];
	int nt = sweep_start_threads(r, w->threads, remote_worker, tid);
	int inflight = 0;
	bool done = false;
	while (!done || inflight > 0) {
		while (!done && inflight < (nt > 0 ? nt : 1)) {
			int req = 0, j;
			MPI_Send(&req, 1, MPI_INT, 0, TAG_REQ, MPI_COMM_WORLD);
			MPI_Recv(&j, 1, MPI_INT, 0, TAG_JOB, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			pthread_mutex_lock(&r->lock);
			if (j < 0)
				done = r->closed = true;
			else
				r->queue[r->nq++] = j, inflight++;
			pthread_cond_broadcast(&r->cond);
			pthread_mutex_unlock(&r->lock);
		}
		pthread_mutex_lock(&r->lock);
		int nfin = r->nfin;
		pthread_mutex_unlock(&r->lock);
		if (nfin == 0) {
			nap();
			continue;
		}
		for (int i = 0; i < nfin; i++) {
			pthread_mutex_lock(&r->lock);
			int j = r->fin_job[i];
			char *text = r->fin_text[i];
			pthread_mutex_unlock(&r->lock);
			size_t n = strlen(text);
			char *msg = malloc(n + 16);
			if (!msg)
				abort();
			int k = snprintf(msg, 16, "%d\n", j);
			memcpy(msg + k, text, n);
			MPI_Send(msg, (int)(k + n), MPI_CHAR, 0, TAG_RESULT, MPI_COMM_WORLD);
			free(msg);
			free(text);
			inflight--;
		}
		pthread_mutex_lock(&r->lock);
		memmove(r->fin_job, r->fin_job + nfin, sizeof *r->fin_job * (size_t)(r->nfin - nfin));
		memmove(r->fin_text, r->fin_text + nfin,
			sizeof *r->fin_text * (size_t)(r->nfin - nfin));
		r->nfin -= nfin;
		pthread_mutex_unlock(&r->lock);
	}
	for (int i = 0; i < nt; i++)
		pthread_join(tid[i], NULL);
	free(r->queue);
	free(r->fin_job);
	free(r->fin_text);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
}

void sweep_mpi_run(Sweep *w)
{
	if (w->rank == 0)
		deal(w);
	else
		work(w);
}

#endif
