/*
 * cmd_sweep.c -- `meshplan sweep SWEEP.xml`: every point of a sweep file's
 * cross product (models x clusters x node counts x batches x token
 * budgets) compiled, simulated and priced, one JSON line per point; then
 * the Pareto front of cost against days as a table and an SVG scatter.
 *
 * A job is one compile: a (model, cluster, nodes, batch) tuple; its token
 * budgets are the points it gives.  Jobs are dealt one at a time to
 * whoever asks: threads of this process, and under `mpirun` the other
 * ranks (rank 0 deals and works too; sweep_mpi.c).  Lines are appended to
 * the output as jobs finish, and the file is rewritten in point order at
 * the end, so a killed sweep keeps what it finished (--resume) and a
 * finished one reads the same whoever ran it.  Layout: docs/sweep.md.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "tools/sweep.h"

static const char *VERB = "sweep";

enum { O_OUT, O_RESUME, O_PLANS, O_SVG, O_THREADS, O_QUIET, O_HELP, NOPT };

static const ToolOpt opts[NOPT] = {
	[O_OUT] = {"output", 'o', TOOL_STR, "FILE", TOOL_ANY, false, 0,
		   "JSON lines, one per point (default: stdout, in point order)"},
	[O_RESUME] = {"resume", 0, TOOL_FLAG, NULL, TOOL_ANY, false, 0,
		      "keep the points already in --output, run the others"},
	[O_PLANS] = {"plans", 0, TOOL_STR, "DIR", TOOL_ANY, false, 0,
		     "write each point's plan to DIR/<job>.xml"},
	[O_SVG] = {"svg", 0, TOOL_STR, "FILE", TOOL_ANY, false, 0,
		   "Pareto scatter (default with -o: FILE with .svg for .jsonl)"},
	[O_THREADS] = {"threads", 0, TOOL_INT, "T", 1, false, 1024, false, 0,
		       "jobs at once per process (default: cores / ranks on the node)"},
	[O_QUIET] = {"quiet", 'q', TOOL_FLAG, NULL, TOOL_ANY, false, 0,
		     "no progress on stderr (by default: a live line at a terminal, else a line "
		     "every 5 s, with an ETA)"},
	[O_HELP] = {"help", 'h', TOOL_FLAG, NULL, TOOL_ANY, false, 0, "this text"},
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: meshplan sweep SWEEP.xml [-o results.jsonl] [--resume] [--plans DIR]\n"
		"                      [--svg FILE] [--threads T]\n"
		"       mpirun -np N meshplan sweep SWEEP.xml -o results.jsonl ...\n\n"
		"Compiles, simulates and prices every point of the sweep file's cross product\n"
		"(models/sweep.rng: models x clusters x nodes x batches x token budgets) and\n"
		"writes one JSON line per point: plan summary, step time, tokens/s, MFU, memory,\n"
		"days, GPU-hours, cost and energy (the cluster's defaults, as estimate), and with\n"
		"<failures> the same under failures.  With -o, lines are appended as points\n"
		"finish and the file is rewritten in point order at the end; stdout gets the\n"
		"Pareto front of cost against days (without -o the lines go to stdout and the\n"
		"front to stderr).  Under mpirun, rank 0 deals compiles one at a time to the\n"
		"ranks that ask (itself included); each rank runs --threads of them at once.\n\n"
		"options:\n");
	tool_opts_help(f, opts, NOPT);
	fprintf(f, "\nExit: 0 some point has a plan, 1 none has, 2 bad input.  docs/sweep.md.\n");
}

/* ------------------------------------------------------------------ */
/* Jobs and their lines.                                                */

void sweep_job_point(const Sweep *w, int j, ToolPoint *pt, int *m, int *c)
{
	const IrSweep *s = &w->s;
	int nn = s->nnodes ? s->nnodes : 1;
	int b = j % s->nbatch, n = (j / s->nbatch) % nn;
	*c = (j / s->nbatch / nn) % s->nclusters;
	*m = j / s->nbatch / nn / s->nclusters;
	*pt = (ToolPoint){.model = s->model[*m], .set = s->model_set[*m],
			  .cluster = s->cluster[*c], .nodes = s->nnodes ? s->nodes[n] : 0,
			  .batch = s->batch[b], .microbatch = s->microbatch,
			  .recompute = s->recompute, .max_units = s->max_units, .threads = 1};
}

/* "model|set|cluster|nodes|batch|tokens": what a line answers, for --resume. */
static void point_key(const ToolPoint *pt, double tokens, char *buf, size_t n)
{
	snprintf(buf, n, "%s|%s|%s|%d|%lld|%.17g", pt->model, pt->set ? pt->set : "", pt->cluster,
		 pt->nodes, (long long)pt->batch, tokens);
}

static json_t *jnum(double x)
{
	return isfinite(x) ? json_real(x) : json_null();
}

static json_t *point_line(const Sweep *w, const ToolPoint *pt, int point, double tokens,
			  const ToolStep *st)
{
	char key[2048];
	point_key(pt, tokens, key, sizeof key);
	json_t *o = json_object();
	json_object_set_new(o, "point", json_integer(point));
	json_object_set_new(o, "key", json_string(key));
	json_object_set_new(o, "model", json_string(pt->model));
	if (pt->set && *pt->set)
		json_object_set_new(o, "set", json_string(pt->set));
	json_object_set_new(o, "cluster", json_string(pt->cluster));
	json_object_set_new(o, "nodes", json_integer(st->nodes));
	json_object_set_new(o, "gpus", json_integer(st->gpus));
	json_object_set_new(o, "batch", json_integer(pt->batch));
	json_object_set_new(o, "tokens", json_real(tokens));
	json_object_set_new(o, "fits", json_boolean(st->status == EXIT_OK));
	if (st->plan)
		json_object_set(o, "plan", st->plan);
	if (st->status != EXIT_OK) {
		json_object_set_new(o, "message", json_string(st->why));
		return o;
	}
	json_object_set_new(o, "step_time_s", jnum(st->step_s));
	json_object_set_new(o, "tokens_per_step", jnum(st->tokens_per_step));
	json_object_set_new(o, "tokens_per_s", jnum(st->tokens_per_s));
	json_object_set_new(o, "tflops_per_gpu", jnum(st->tflops_per_gpu));
	json_object_set_new(o, "mfu", jnum(st->mfu));
	json_object_set_new(o, "peak_memory_bytes", jnum(st->peak_mem_bytes));
	ToolRun r;
	IrError e;
	SimFailureModel f;
	if (w->s.failures) {
		SimPolicy p = SIM_RESTART_ALL;
		sim_policy_parse(w->s.policy, &p);
		sim_failure_model_default(&f, p);
		if (w->s.runs)
			f.runs = w->s.runs;
		f.seed = w->s.seed;
	}
	if (tool_point_run(st, tokens, w->s.failures ? &f : NULL, &r, &e)) {
		json_object_set_new(o, "fits", json_false());
		json_object_set_new(o, "message", json_string(e.msg));
		return o;
	}
	json_object_set_new(o, "steps", jnum(r.steps));
	json_object_set_new(o, "days", jnum(r.wall_s / 86400));
	json_object_set_new(o, "gpu_hours", jnum(r.gpu_hours));
	json_object_set_new(o, "cost", jnum(r.cost.cost));
	json_object_set_new(o, "currency", json_string(st->cost.currency));
	json_object_set_new(o, "energy_kwh", jnum(r.cost.energy_kwh));
	if (r.failures) {
		json_object_set_new(o, "failures", json_pack("{s:s,s:i,s:o,s:o,s:o,s:o,s:o,s:o}",
			"policy", sim_policy_name(f.policy), "runs", f.runs,
			"ettr", jnum(r.ettr), "ckpt_interval_s", jnum(r.ckpt_interval_s),
			"days", jnum(r.fail_wall_s / 86400), "gpu_hours", jnum(r.fail_gpu_hours),
			"cost", jnum(r.fail_cost.cost), "energy_kwh", jnum(r.fail_cost.energy_kwh)));
	}
	return o;
}

/* Plan file of job j: DIR/<j>-<model>-<cluster>-n<nodes>-b<batch>.xml,
 * characters other than [A-Za-z0-9._-] as '_'. */
static void plan_path(const Sweep *w, int j, const ToolPoint *pt, char *buf, size_t n)
{
	char tail[512];
	const char *mb = strrchr(pt->model, '/'), *cb = strrchr(pt->cluster, '/');
	snprintf(tail, sizeof tail, "%d-%s%s%s-%s-n%d-b%lld", j, mb ? mb + 1 : pt->model,
		 pt->set && *pt->set ? "-" : "", pt->set ? pt->set : "", cb ? cb + 1 : pt->cluster,
		 pt->nodes, (long long)pt->batch);
	for (char *p = tail; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_'))
			*p = '_';
	snprintf(buf, n, "%s/%s.xml", w->plans, tail);
}

char *sweep_run_job(const Sweep *w, int j)
{
	ToolPoint pt;
	int m, c;
	sweep_job_point(w, j, &pt, &m, &c);
	char path[1024];
	if (w->plans)
		plan_path(w, j, &pt, path, sizeof path);
	ToolStep st;
	tool_point_step(&pt, w->plans ? path : NULL, &st);
	size_t cap = 4096, len = 0;
	char *text = malloc(cap);
	if (!text)
		abort();
	text[0] = 0;
	for (int t = 0; t < w->s.ntokens; t++) {
		json_t *o = point_line(w, &pt, j * w->s.ntokens + t, w->s.tokens[t], &st);
		char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
		json_decref(o);
		if (!line)
			abort();
		size_t k = strlen(line);
		while (len + k + 2 > cap) {
			cap *= 2;
			text = realloc(text, cap);
			if (!text)
				abort();
		}
		memcpy(text + len, line, k);
		len += k;
		text[len++] = '\n';
		text[len] = 0;
		free(line);
	}
	tool_step_free(&st);
	return text;
}

/* ------------------------------------------------------------------ */
/* Dealing and collecting (this process).                               */

int sweep_next_job(Sweep *w)
{
	pthread_mutex_lock(&w->lock);
	int j = w->next < w->ntodo ? w->todo[w->next++] : -1;
	pthread_mutex_unlock(&w->lock);
	return j;
}

/* Writes text at the end of the output file, flushed, or (stdout) every
 * job whose turn has come. */
void sweep_job_done(Sweep *w, int j, char *text)
{
	pthread_mutex_lock(&w->lock);
	w->result[j] = text;
	w->ndone++;
	if (w->out_f) {
		fputs(text, w->out_f);
		fflush(w->out_f);
	} else {
		while (w->emit < w->njobs && w->result[w->emit])
			fputs(w->result[w->emit++], stdout);
		fflush(stdout);
	}
	if (w->progress)
		tool_progress(NULL, "sweep compiles", w->ndone, w->ntodo);
	pthread_mutex_unlock(&w->lock);
}

static void *worker(void *arg)
{
	Sweep *w = arg;
	for (int j; (j = sweep_next_job(w)) >= 0;)
		sweep_job_done(w, j, sweep_run_job(w, j));
	return NULL;
}

int sweep_start_threads(void *arg, int n, void *(*fn)(void *), pthread_t *tid)
{
	for (int i = 0; i < n; i++)
		if (pthread_create(&tid[i], NULL, fn, arg))
			return i;
	return n;
}

/* ------------------------------------------------------------------ */
/* Resume: the lines already in the output.                             */

/* Reads the lines of path whose key is a point of this sweep; a job whose
 * every point is there is done (its text kept), the others run again.
 * Lines that do not parse (a kill mid-write) are dropped. */
static int read_previous(Sweep *w, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	int npoints = w->njobs * w->s.ntokens;
	char **line = calloc((size_t)npoints, sizeof *line);
	if (!line)
		abort();
	/* keys of every point, in order */
	char key[2048], *buf = NULL;
	size_t cap = 0;
	ssize_t k;
	while ((k = getline(&buf, &cap, f)) > 0) {
		if (buf[k - 1] != '\n')
			break; /* the last line, cut short */
		json_t *o = json_loads(buf, 0, NULL);
		json_t *pk = o ? json_object_get(o, "key") : NULL;
		json_t *pi = o ? json_object_get(o, "point") : NULL;
		if (json_is_string(pk) && json_is_integer(pi)) {
			/* find the point this key names (its index first) */
			json_int_t p0 = json_integer_value(pi);
			for (int q = 0; q < npoints; q++) {
				int p = (int)((p0 + q) % npoints);
				if (p < 0)
					p += npoints;
				ToolPoint pt;
				int m, c;
				sweep_job_point(w, p / w->s.ntokens, &pt, &m, &c);
				point_key(&pt, w->s.tokens[p % w->s.ntokens], key, sizeof key);
				if (!strcmp(key, json_string_value(pk))) {
					free(line[p]);
					line[p] = strdup(buf);
					break;
				}
			}
		}
		json_decref(o);
	}
	free(buf);
	fclose(f);
	for (int j = 0; j < w->njobs; j++) {
		bool all = true;
		size_t len = 0;
		for (int t = 0; t < w->s.ntokens; t++) {
			char *l = line[j * w->s.ntokens + t];
			all = all && l;
			len += l ? strlen(l) : 0;
		}
		if (!all)
			continue;
		char *text = malloc(len + 1);
		if (!text)
			abort();
		text[0] = 0;
		for (int t = 0; t < w->s.ntokens; t++)
			strcat(text, line[j * w->s.ntokens + t]);
		w->result[j] = text;
		w->kept++;
	}
	for (int p = 0; p < npoints; p++)
		free(line[p]);
	free(line);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The end: the file in point order, the front, the plot.              */

/* Writes text to path through a temporary file in the same folder. */
static int write_atomic(const char *path, const char *const *parts, int n)
{
	char tmp[4200];
	if (strlen(path) > 4096) {
		errno = ENAMETOOLONG;
		return -1;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "wb");
	if (!f)
		return -1;
	for (int i = 0; i < n; i++)
		if (parts[i])
			fputs(parts[i], f);
	if (fflush(f) || fsync(fileno(f)) || fclose(f) || rename(tmp, path)) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int finish(Sweep *w, const char *out, const char *svg)
{
	if (out && write_atomic(out, (const char *const *)w->result, w->njobs))
		return tool_error(VERB, EXIT_INFEASIBLE, "cannot write '%s': %s", out,
				  strerror(errno));
	SweepFront fr;
	if (sweep_front(w, &fr))
		return tool_error(VERB, EXIT_INFEASIBLE, "out of memory");
	sweep_front_print(&fr, out ? stdout : stderr);
	int rc = EXIT_OK;
	if (svg) {
		char *text = sweep_front_svg(&fr, w->s.name);
		const char *parts[1] = {text};
		if (!text || write_atomic(svg, parts, 1))
			rc = tool_error(VERB, EXIT_INFEASIBLE, "cannot write '%s': %s", svg,
					strerror(errno));
		free(text);
	}
	if (rc == EXIT_OK && fr.nfit == 0)
		rc = tool_error(VERB, EXIT_INFEASIBLE, "no point of the sweep has a plan that fits");
	sweep_front_free(&fr);
	return rc;
}

/* ------------------------------------------------------------------ */

/* Every model and cluster opens (so a typo fails before hours of work). */
static int check_inputs(const IrSweep *s)
{
	IrError e;
	char buf[1024];
	for (int i = 0; i < s->nmodels; i++) {
		IrParamSet ps = {0};
		IrModelDoc *m = ir_model_open(s->model[i], &e);
		if (m)
			ir_model_close(m);
		if (!m || (*s->model_set[i] && ir_params_parse(&ps, s->model_set[i], &e))) {
			fprintf(stderr, "meshplan: %s:%d: model '%s': %s\n", s->file, s->model_line[i],
				s->model[i], ir_error_str(&e, buf, sizeof buf));
			return EXIT_BADINPUT;
		}
	}
	for (int i = 0; i < s->nclusters; i++) {
		IrCluster c;
		if (ir_cluster_load(s->cluster[i], 0, &c, &e)) {
			fprintf(stderr, "meshplan: %s:%d: cluster '%s': %s\n", s->file,
				s->cluster_line[i], s->cluster[i], ir_error_str(&e, buf, sizeof buf));
			return EXIT_BADINPUT;
		}
		ir_cluster_free(&c);
	}
	return EXIT_OK;
}

static int default_threads(void)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
	long ranks = local ? strtol(local, NULL, 10) : 1;
	long t = cores / (ranks > 0 ? ranks : 1);
	return t >= 1 ? (int)t : 1;
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs the jobs of w->todo: threads here, ranks under MPI. */
static void run_jobs(Sweep *w)
{
	if (w->nranks > 1) {
		sweep_mpi_run(w);
		return;
	}
	pthread_t tid[1024];
	int n = sweep_start_threads(w, w->threads, worker, tid);
	if (n == 0)
		worker(w);
	for (int i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
}

static int sweep(Sweep *w, const ToolVal *v, const char *out, const char *svg)
{
	double t0 = ir_now_s(), c0 = cpu_now();
	w->njobs = w->s.nmodels * w->s.nclusters * (w->s.nnodes ? w->s.nnodes : 1) * w->s.nbatch;
	w->result = calloc((size_t)w->njobs, sizeof *w->result);
	w->todo = calloc((size_t)w->njobs, sizeof *w->todo);
	if (!w->result || !w->todo)
		abort();
	if (w->rank == 0 && v[O_RESUME].set && read_previous(w, out))
		return tool_error(VERB, EXIT_BADINPUT, "cannot read '%s': %s", out, strerror(errno));
	for (int j = 0; j < w->njobs; j++)
		if (!w->result[j])
			w->todo[w->ntodo++] = j;
	if (w->rank == 0 && out) {
		/* resumed: keep what is there and append; else start afresh */
		w->out_f = fopen(out, v[O_RESUME].set ? "ab" : "wb");
		if (!w->out_f)
			return tool_error(VERB, EXIT_BADINPUT, "cannot write '%s': %s", out,
					  strerror(errno));
	}
	w->progress = w->rank == 0 && !v[O_QUIET].set;
	if (w->rank == 0 && !out)
		while (w->emit < w->njobs && w->result[w->emit])
			fputs(w->result[w->emit++], stdout);
	run_jobs(w);
	if (w->progress)
		tool_progress_end();
	if (w->out_f)
		fclose(w->out_f);
	w->out_f = NULL;
	double cpu = cpu_now() - c0;
	int rc = EXIT_OK;
	if (w->rank == 0) {
		fprintf(stderr, "meshplan sweep: %d points, %d compiles run (%d kept), %.2f s wall, "
			"%.2f s CPU on rank 0, %d rank%s x %d thread%s\n",
			w->njobs * w->s.ntokens, w->ntodo, w->kept, ir_now_s() - t0, cpu, w->nranks,
			w->nranks > 1 ? "s" : "", w->threads, w->threads > 1 ? "s" : "");
		rc = finish(w, out, svg);
	}
	return rc;
}

int cmd_sweep(int argc, char **argv)
{
	ToolVal v[NOPT];
	const char *pos[1];
	int npos;
	ToolCmdLine cl = {.verb = VERB, .opts = opts, .nopts = NOPT, .maxpos = 1, .usage = usage};
	int rc;
	if (tool_opts_done(&cl, argc, argv, v, pos, &npos, &rc))
		return rc;
	if (npos != 1)
		return tool_error(VERB, EXIT_BADINPUT, "needs one SWEEP.xml (see --help)");
	if (v[O_RESUME].set && !v[O_OUT].set)
		return tool_error(VERB, EXIT_BADINPUT, "--resume needs -o FILE");
	const char *out = v[O_OUT].set ? v[O_OUT].str : NULL;
	char svgbuf[4096];
	const char *svg = v[O_SVG].set ? v[O_SVG].str : NULL;
	if (!svg && out) {
		size_t n = strlen(out);
		if (n > 6 && !strcmp(out + n - 6, ".jsonl"))
			snprintf(svgbuf, sizeof svgbuf, "%.*s.svg", (int)(n - 6), out);
		else
			snprintf(svgbuf, sizeof svgbuf, "%s.svg", out);
		svg = svgbuf;
	}
	Sweep w;
	memset(&w, 0, sizeof w);
	pthread_mutex_init(&w.lock, NULL);
	w.threads = v[O_THREADS].set ? (int)v[O_THREADS].num : default_threads();
	w.plans = v[O_PLANS].set ? v[O_PLANS].str : NULL;
	if (w.plans && mkdir(w.plans, 0777) && errno != EEXIST)
		return tool_error(VERB, EXIT_BADINPUT, "--plans: cannot make '%s': %s", w.plans,
				  strerror(errno));
	xmlInitParser();
	IrError e;
	if (ir_sweep_read(pos[0], &w.s, &e))
		return tool_input_error(&e);
	w.nranks = 1;
	if (sweep_mpi_init(&w)) {
		ir_sweep_free(&w.s);
		return tool_error(VERB, EXIT_INFEASIBLE, "MPI would not start");
	}
	rc = w.rank == 0 ? check_inputs(&w.s) : EXIT_OK;
	rc = sweep_mpi_agree(&w, rc);
	if (rc == EXIT_OK)
		rc = sweep(&w, v, out, svg);
	sweep_mpi_finalize(&w);
	for (int j = 0; j < w.njobs; j++)
		free(w.result[j]);
	free(w.result);
	free(w.todo);
	ir_sweep_free(&w.s);
	pthread_mutex_destroy(&w.lock);
	return rc;
}
