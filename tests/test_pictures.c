/*
 * test_pictures.c -- the SVG pictures of a plan: well-formed XML (libxml2
 * parses them), one row per pipeline rank, and the idle area of the
 * schedule's rows equal to the pipeline bubble, against the closed form
 * (p-1)/(m+p-1) of GPipe and 1F1B with equal stages and against the
 * simulator's own bubble fraction for a real plan.
 */
#include <criterion/criterion.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime-sim/sim.h"
#include "tests/helpers.h"

#define DATA MESHPLAN_DATA_DIR "/tests/data"

static xmlDocPtr parse_svg_text(const char *text, size_t n)
{
	xmlDocPtr d = xmlReadMemory(text, (int)n, "picture.svg", NULL,
				    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	cr_assert_not_null(d, "the SVG is not well-formed XML");
	xmlNodePtr root = xmlDocGetRootElement(d);
	cr_assert_str_eq((const char *)root->name, "svg");
	return d;
}

static xmlDocPtr parse_svg_file(const char *path)
{
	xmlDocPtr d = xmlReadFile(path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR |
						     XML_PARSE_NOWARNING);
	cr_assert_not_null(d, "%s is not well-formed XML", path);
	return d;
}

static xmlXPathObjectPtr xpath(xmlDocPtr d, xmlNodePtr at, const char *expr)
{
	xmlXPathContextPtr cx = xmlXPathNewContext(d);
	if (at)
		cx->node = at;
	xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, cx);
	xmlXPathFreeContext(cx);
	cr_assert_not_null(o, "%s", expr);
	return o;
}

static int count(xmlDocPtr d, xmlNodePtr at, const char *expr)
{
	xmlXPathObjectPtr o = xpath(d, at, expr);
	int n = o->nodesetval ? o->nodesetval->nodeNr : 0;
	xmlXPathFreeObject(o);
	return n;
}

static double attr(xmlNodePtr n, const char *name)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
	cr_assert_not_null(v, "no %s", name);
	double x = strtod((const char *)v, NULL);
	xmlFree(v);
	return x;
}

static int count_substr(const char *s, const char *what)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

#define RANKS "//*[local-name()='g'][@class='rank']"

/*
 * The bubble as the picture shows it: per rank row, the time its compute
 * lane is not covered by forward or backward rectangles between the first
 * task's start and the last task's end (over all rows), as a share of
 * rows x that span.  *rows: the rank rows.
 */
static double svg_bubble(xmlDocPtr d, int *rows)
{
	xmlXPathObjectPtr o = xpath(d, NULL, RANKS);
	int P = o->nodesetval ? o->nodesetval->nodeNr : 0;
	*rows = P;
	double lo = INFINITY, hi = -INFINITY, busy = 0;
	for (int k = 0; k < P; k++) {
		xmlXPathObjectPtr t = xpath(d, o->nodesetval->nodeTab[k],
					    "./*[local-name()='rect'][@class='fwd' or @class='bwd']");
		for (int i = 0; t->nodesetval && i < t->nodesetval->nodeNr; i++) {
			double x = attr(t->nodesetval->nodeTab[i], "x");
			double w = attr(t->nodesetval->nodeTab[i], "width");
			lo = fmin(lo, x);
			hi = fmax(hi, x + w);
			busy += w;
		}
		xmlXPathFreeObject(t);
	}
	xmlXPathFreeObject(o);
	cr_assert(P > 0 && hi > lo, "no tasks in the picture");
	return 1 - busy / (P * (hi - lo));
}

/* A pipeline of p equal stages (forward f, backward b, no transfers) run
 * with `m` microbatches under schedule s, v chunks per rank, as a SimResult
 * (only what the timeline picture reads). */
static void equal_pipeline(int p, int v, int m, IrSchedule s, double f, double b, SimResult *r,
			   IrPlan *plan, SimStageCost *sc)
{
	memset(r, 0, sizeof *r);
	memset(plan, 0, sizeof *plan);
	for (int i = 0; i < p * v; i++) {
		memset(&sc[i], 0, sizeof sc[i]);
		sc[i].fwd_s = f / v;
		sc[i].bwd_s = b / v;
	}
	SimPipeline pl = {p * v, v, m, s, sc, NULL};
	IrError e;
	cr_assert_eq(sim_pipeline(&pl, &r->tl, &e), 0, "%s", e.msg);
	r->nstages = p * v;
	r->nranks = p;
	r->stage = sc;
	r->rank_step_s = calloc((size_t)p, sizeof(double));
	r->rank_sync_start = calloc((size_t)p, sizeof(double));
	r->rank_sync_end = calloc((size_t)p, sizeof(double));
	plan->schedule = s;
	plan->chunks = v;
	plan->nmicro = m;
	plan->nstages = p * v;
}

static void free_pipeline(SimResult *r)
{
	free(r->rank_step_s);
	free(r->rank_sync_start);
	free(r->rank_sync_end);
	sim_timeline_free(&r->tl);
}

static double timeline_bubble(const IrPlan *plan, const SimResult *r, int *rows)
{
	char *text = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);
	cr_assert_not_null(f);
	sim_svg_timeline(f, plan, r);
	cr_assert_eq(fclose(f), 0);
	xmlDocPtr d = parse_svg_text(text, n);
	double b = svg_bubble(d, rows);
	xmlFreeDoc(d);
	free(text);
	return b;
}

/* GPipe and 1F1B with p equal stages and m microbatches idle (p-1)/(m+p-1)
 * of the time (Huang et al. 2019; Narayanan et al. 2021, section 2.2.1);
 * interleaving v chunks per rank: (p-1)/(v*m+p-1). */
Test(pictures, timeline_bubble_matches_the_closed_form)
{
	static const struct {
		int p, v, m;
		IrSchedule s;
	} cases[] = {{4, 1, 8, IR_SCHED_GPIPE}, {4, 1, 8, IR_SCHED_1F1B}, {2, 1, 4, IR_SCHED_1F1B},
		     {8, 1, 32, IR_SCHED_1F1B}, {8, 1, 3, IR_SCHED_GPIPE}, {1, 1, 5, IR_SCHED_1F1B},
		     {4, 2, 8, IR_SCHED_INTERLEAVED}, {4, 3, 12, IR_SCHED_INTERLEAVED}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int p = cases[i].p, v = cases[i].v, m = cases[i].m;
		SimStageCost sc[32];
		SimResult r;
		IrPlan plan;
		equal_pipeline(p, v, m, cases[i].s, 1e-3, 2e-3, &r, &plan, sc);
		int rows;
		double got = timeline_bubble(&plan, &r, &rows);
		double want = (double)(p - 1) / (v * m + p - 1);
		cr_expect_eq(rows, p, "case %zu: %d rows for %d ranks", i, rows, p);
		cr_expect(fabs(got - want) <= 0.01 * want + 1e-9,
			  "case %zu (%s p=%d v=%d m=%d): picture's bubble %.5f, closed form %.5f", i,
			  ir_schedule_name(cases[i].s), p, v, m, got, want);
		free_pipeline(&r);
	}
}

/* A real plan through the command line: the three pictures parse, the
 * timeline has one row per rank and shows the simulator's bubble, the
 * mesh one GPU per cluster GPU and each rank's logical view whole, the
 * memory bars each rank's bytes against the GPU's memory. */
Test(pictures, svg_files_of_a_simulated_plan)
{
	char dir[] = "/tmp/meshplan-pictures-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char args[2048];
	int code;
	snprintf(args, sizeof args,
		 "simulate %s/tiny.xml --cluster %s/tiny-cluster.xml --batch 16 "
		 "--manual dp=2,tp=2,pp=2,mbs=2 --json --svg-timeline %s/t.svg --svg-mesh %s/m.svg "
		 "--svg-memory %s/mem.svg", DATA, DATA, dir, dir, dir);
	json_t *sim = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	int P = (int)json_integer_value(json_object_get(sim, "pipeline_ranks"));
	cr_assert_eq(P, 2);

	char path[512];
	snprintf(path, sizeof path, "%s/t.svg", dir);
	xmlDocPtr d = parse_svg_file(path);
	int rows;
	double got = svg_bubble(d, &rows), want = test_num(sim, "bubble_fraction");
	cr_expect_eq(rows, P);
	cr_expect_gt(want, 0.05);
	cr_expect(fabs(got - want) <= 0.01 * want, "picture's bubble %.5f, simulator's %.5f", got,
		  want);
	xmlFreeDoc(d);

	snprintf(path, sizeof path, "%s/m.svg", dir);
	d = parse_svg_file(path);
	IrCluster c = test_cluster(DATA "/tiny-cluster.xml", 0);
	cr_expect_eq(count(d, NULL, "//*[local-name()='g'][@class='node']"), c.nodes);
	cr_expect_eq(count(d, NULL, "//*[local-name()='rect'][starts-with(@class,'gpu')]"),
		     c.nodes * c.gpus_per_node);
	cr_expect_eq(count(d, NULL, "//*[local-name()='g'][@class='logical']"), P);
	json_t *stages = json_object_get(sim, "stages");
	for (int k = 0; k < P; k++) {
		json_t *lm = json_object_get(json_array_get(stages, (size_t)k), "logical_mesh");
		int n0 = (int)json_integer_value(json_array_get(lm, 0));
		int n1 = (int)json_integer_value(json_array_get(lm, 1));
		char q[160];
		snprintf(q, sizeof q,
			 "//*[local-name()='g'][@id='logical-%d']/*[local-name()='rect'][@class="
			 "'device']", k);
		cr_expect_eq(count(d, NULL, q), n0 * n1, "rank %d", k);
	}
	xmlFreeDoc(d);

	snprintf(path, sizeof path, "%s/mem.svg", dir);
	d = parse_svg_file(path);
	xmlXPathObjectPtr cap = xpath(d, NULL, "//*[local-name()='line'][@class='capacity']");
	cr_assert_eq(cap->nodesetval->nodeNr, 1);
	double cap_x = attr(cap->nodesetval->nodeTab[0], "x1");
	xmlXPathFreeObject(cap);
	xmlXPathObjectPtr rk = xpath(d, NULL, RANKS);
	cr_assert_eq(rk->nodesetval->nodeNr, P);
	json_t *ranks = json_object_get(sim, "ranks");
	double gpu = test_num(sim, "memory_bytes_per_gpu");
	for (int k = 0; k < P; k++) {
		xmlXPathObjectPtr bars = xpath(d, rk->nodesetval->nodeTab[k],
					       "./*[local-name()='rect']");
		cr_assert_geq(bars->nodesetval->nodeNr, 1);
		double x0 = attr(bars->nodesetval->nodeTab[0], "x"), w = 0;
		for (int i = 0; i < bars->nodesetval->nodeNr; i++)
			w += attr(bars->nodesetval->nodeTab[i], "width");
		xmlXPathFreeObject(bars);
		double mem = test_num(json_array_get(ranks, (size_t)k), "memory_bytes");
		cr_expect(fabs(w / (cap_x - x0) - mem / gpu) <= 0.01 * mem / gpu,
			  "rank %d: bar %.5g of capacity, memory %.5g", k, w / (cap_x - x0),
			  mem / gpu);
	}
	xmlXPathFreeObject(rk);
	xmlFreeDoc(d);
	ir_cluster_free(&c);
	json_decref(sim);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_expect_eq(system(cmd), 0);
}

/* An SVG target that cannot be created: bad input, and no other output is
 * left behind. */
Test(pictures, an_unwritable_picture_writes_nothing)
{
	char dir[] = "/tmp/meshplan-pictures-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char args[2048], out[8192];
	snprintf(args, sizeof args,
		 "simulate %s/tiny.xml --cluster %s/tiny-cluster.xml --batch 16 "
		 "--manual dp=2,tp=2,pp=2,mbs=2 -o %s/plan.xml --svg-mesh %s/no/such/dir/m.svg",
		 DATA, DATA, dir, dir);
	cr_expect_eq(test_run(args, out, sizeof out), 2, "%s", out);
	char path[512];
	snprintf(path, sizeof path, "%s/plan.xml", dir);
	cr_expect_neq(access(path, F_OK), 0, "the plan was written");
	cr_expect_eq(rmdir(dir), 0);
}

/* ------------------------------------------------------------------ */
/* The HTML report, rendered by headless Chromium                        */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int paeth(int a, int b, int c)
{
	int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
	return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/*
 * Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium's
 * screenshots are) into malloc'd RGB pixels; *w, *h its size.
 */
static unsigned char *png_rgb(const char *path, int *w, int *h)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "no screenshot %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *file = malloc((size_t)n);
	cr_assert_eq(fread(file, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	cr_assert(n > 8 && !memcmp(file, "\x89PNG\r\n\x1a\n", 8), "%s is not a PNG", path);
	unsigned char *idat = NULL;
	size_t nidat = 0;
	int depth = 0, type = -1, interlace = 0;
	for (long at = 8; at + 12 <= n;) {
		uint32_t len = be32(file + at);
		const unsigned char *kind = file + at + 4, *data = file + at + 8;
		cr_assert(at + 12 + (long)len <= n, "truncated PNG");
		if (!memcmp(kind, "IHDR", 4)) {
			*w = (int)be32(data);
			*h = (int)be32(data + 4);
			depth = data[8];
			type = data[9];
			interlace = data[12];
		} else if (!memcmp(kind, "IDAT", 4)) {
			idat = realloc(idat, nidat + len);
			memcpy(idat + nidat, data, len);
			nidat += len;
		}
		at += 12 + (long)len;
	}
	cr_assert(depth == 8 && (type == 2 || type == 6) && !interlace,
		  "PNG depth %d type %d interlace %d", depth, type, interlace);
	int bpp = type == 6 ? 4 : 3;
	size_t stride = (size_t)*w * bpp, raw_n = (stride + 1) * (size_t)*h;
	unsigned char *raw = malloc(raw_n);
	uLongf got = raw_n;
	cr_assert_eq(uncompress(raw, &got, idat, nidat), Z_OK, "PNG data does not inflate");
	cr_assert_eq(got, raw_n);
	unsigned char *px = malloc(stride * (size_t)*h), *rgb = malloc((size_t)*w * *h * 3);
	for (int y = 0; y < *h; y++) {
		int filter = raw[(size_t)y * (stride + 1)];
		const unsigned char *in = raw + (size_t)y * (stride + 1) + 1;
		unsigned char *out = px + (size_t)y * stride, *up = y ? out - stride : NULL;
		for (size_t i = 0; i < stride; i++) {
			int a = i >= (size_t)bpp ? out[i - bpp] : 0, b = up ? up[i] : 0;
			int c = up && i >= (size_t)bpp ? up[i - bpp] : 0, pred = 0;
			switch (filter) {
			case 0: pred = 0; break;
			case 1: pred = a; break;
			case 2: pred = b; break;
			case 3: pred = (a + b) / 2; break;
			case 4: pred = paeth(a, b, c); break;
			default: cr_assert_fail("PNG filter %d", filter);
			}
			out[i] = (unsigned char)(in[i] + pred);
		}
	}
	for (size_t i = 0; i < (size_t)*w * *h; i++)
		memcpy(rgb + 3 * i, px + bpp * i, 3);
	free(px);
	free(raw);
	free(idat);
	free(file);
	return rgb;
}

static bool have_chromium(char *bin, size_t n)
{
	static const char *const names[] = {"chromium", "chromium-browser", "google-chrome"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char cmd[128];
		snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", names[i]);
		if (system(cmd) == 0) {
			snprintf(bin, n, "%s", names[i]);
			return true;
		}
	}
	return false;
}

/* The report of a real plan: self-contained (no script, no reference to
 * another file), rendered by headless Chromium without a console message
 * (the page has no scripts, so any is an error) and not blank: the
 * screenshot's pixels vary, and a good share of them is not background. */
Test(pictures, report_renders_in_headless_chromium, .timeout = 300)
{
	char dir[] = "/tmp/meshplan-report-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char args[2048], out[16384];
	snprintf(args, sizeof args,
		 "simulate %s/tiny.xml --cluster %s/tiny-cluster.xml --batch 16 "
		 "--manual dp=2,tp=2,pp=2,mbs=2 --json -o %s/plan.xml", DATA, DATA, dir);
	int code;
	json_t *sim = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	double step = test_num(sim, "step_time_s");
	json_decref(sim);
	snprintf(args, sizeof args, "report %s/plan.xml -o %s/report.html --tokens 1e6", dir, dir);
	cr_assert_eq(test_run(args, out, sizeof out), 0, "%s", out);

	char path[512];
	snprintf(path, sizeof path, "%s/report.html", dir);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	static char html[1 << 20];
	size_t n = fread(html, 1, sizeof html - 1, f);
	fclose(f);
	html[n] = 0;
	cr_expect_null(strstr(html, "<script"), "the report has a script");
	cr_expect_null(strstr(html, "src="), "the report loads another file");
	cr_expect_null(strstr(html, "href="), "the report links another file");
	cr_expect_eq(count_substr(html, "<svg "), 3, "three pictures inline");
	cr_expect(strstr(html, "id=\"explain\""), "no explain section");
	/* the run: 1e6 tokens at 16 per step, 8 GPUs at the tiny cluster's 2 USD per GPU-hour */
	char want[128];
	double gpuh = ceil(1e6 / 16) * step * 8 / 3600;
	snprintf(want, sizeof want, "<td class=\"n\">%.4g</td>", gpuh);
	cr_expect(strstr(html, want), "no GPU-hours cell %s", want);
	snprintf(want, sizeof want, "<td class=\"n\">%.4g USD</td>", 2 * gpuh);
	cr_expect(strstr(html, want), "no cost cell %s", want);
	/* explain's text: the stage's parallelism in words */
	cr_expect(strstr(html, "parallelism   "), "no explain text in the report");

	char bin[64];
	if (!have_chromium(bin, sizeof bin)) {
		char cmd[600];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		cr_expect_eq(system(cmd), 0);
		cr_skip_test("chromium is not installed (scripts/deps.sh installs it)");
	}
	char cmd[2048];
	snprintf(cmd, sizeof cmd,
		 "cd '%s' && timeout 240 %s --headless --no-sandbox --disable-gpu "
		 "--no-first-run --user-data-dir='%s/profile' --enable-logging=stderr "
		 "--hide-scrollbars --window-size=1240,1800 --screenshot='%s/shot.png' "
		 "'file://%s/report.html' >'%s/chromium.log' 2>&1",
		 dir, bin, dir, dir, dir, dir);
	int st = system(cmd);
	snprintf(path, sizeof path, "%s/chromium.log", dir);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	static char log[1 << 20];
	n = fread(log, 1, sizeof log - 1, f);
	fclose(f);
	log[n] = 0;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "chromium failed (%d):\n%s", st, log);
	cr_expect_null(strstr(log, ":CONSOLE"), "a console message on the page:\n%s", log);

	snprintf(path, sizeof path, "%s/shot.png", dir);
	int w, h;
	unsigned char *rgb = png_rgb(path, &w, &h);
	cr_expect_eq(w, 1240);
	cr_expect_eq(h, 1800);
	/* grey level variance, and the share of pixels unlike the corner's */
	double sum = 0, sum2 = 0;
	long differ = 0, np = (long)w * h;
	for (long i = 0; i < np; i++) {
		double y = (rgb[3 * i] + rgb[3 * i + 1] + rgb[3 * i + 2]) / 3.0;
		sum += y;
		sum2 += y * y;
		differ += memcmp(rgb + 3 * i, rgb, 3) != 0;
	}
	double mean = sum / np, var = sum2 / np - mean * mean;
	cr_expect_gt(var, 100, "the screenshot is blank (grey variance %.1f)", var);
	cr_expect_gt((double)differ / np, 0.03, "only %.2f%% of the screenshot is drawn",
		     100.0 * differ / np);
	free(rgb);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_expect_eq(system(cmd), 0);
}

/* ------------------------------------------------------------------ */
/* The finer trace                                                       */

/*
 * --trace-detail gpu on a two-stage GPT with tp=2 (Megatron layout, no
 * overlap, no recomputation): a process per GPU; per process and
 * microbatch one forward and one backward event per layer of its stage,
 * and per transformer block the two all-reduces of the forward (after
 * attention and after the MLP) and the two of the backward (Narayanan et
 * al. 2021, section 3.2), each on the communication thread; the layer
 * events and collectives of a task fill the task's simulated time.
 */
Test(pictures, gpu_trace_event_counts_match_the_closed_form)
{
	char dir[] = "/tmp/meshplan-trace-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char args[2048];
	int code;
	snprintf(args, sizeof args,
		 "simulate gpt --set layers=2,hidden=64,heads=4,seq=16,vocab=128 "
		 "--cluster %s/tiny-cluster.xml --batch 16 "
		 "--manual dp=2,tp=2,pp=2,mbs=2,overlap=none --json --trace %s/t.json "
		 "--trace-detail gpu", DATA, dir);
	json_t *sim = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	int m = (int)json_integer_value(json_object_get(sim, "microbatches"));
	cr_assert_eq(m, 4);
	json_t *stages = json_object_get(sim, "stages");
	cr_assert_eq(json_array_size(stages), 2);

	char path[512];
	snprintf(path, sizeof path, "%s/t.json", dir);
	json_error_t err;
	json_t *tr = json_load_file(path, 0, &err);
	cr_assert_not_null(tr, "%s: %s", path, err.text);
	json_t *ev = json_object_get(tr, "traceEvents");
	/* per process: layer events, block collectives by task, busy time */
	enum { NP = 8 };
	int procs = 0, fwd[NP] = {0}, bwd[NP] = {0}, coll_f[NP] = {0}, coll_b[NP] = {0};
	double busy_f[NP] = {0}, busy_b[NP] = {0};
	size_t i;
	json_t *e;
	json_array_foreach(ev, i, e) {
		const char *ph = json_string_value(json_object_get(e, "ph"));
		int pid = (int)json_integer_value(json_object_get(e, "pid"));
		cr_assert(pid >= 0 && pid < NP, "pid %d", pid);
		if (!strcmp(ph, "M")) {
			const char *what = json_string_value(json_object_get(e, "name"));
			procs += !strcmp(what, "process_name");
			continue;
		}
		const char *cat = json_string_value(json_object_get(e, "cat"));
		json_t *a = json_object_get(e, "args");
		double dur = json_number_value(json_object_get(e, "dur")) * 1e-6;
		int tid = (int)json_integer_value(json_object_get(e, "tid"));
		if (!strcmp(cat, "forward") || !strcmp(cat, "backward")) {
			cr_expect_eq(tid, 0, "compute on thread 0");
			bool b = !strcmp(cat, "backward");
			(b ? bwd : fwd)[pid]++;
			(b ? busy_b : busy_f)[pid] += dur;
		} else if (!strcmp(cat, "collective") && json_object_get(a, "task")) {
			cr_expect_eq(tid, 1, "collectives on thread 1");
			bool b = !strcmp(json_string_value(json_object_get(a, "task")), "backward");
			(b ? busy_b : busy_f)[pid] += dur;
			const char *name = json_string_value(json_object_get(e, "name"));
			int layer = (int)json_integer_value(json_object_get(a, "layer"));
			/* layers 1 and 2 are the blocks (0 embedding, 3 head) */
			if (layer >= 1 && layer <= 2 && !strncmp(name, "all-reduce", 10))
				(b ? coll_b : coll_f)[pid]++;
		}
	}
	cr_expect_eq(procs, NP, "one process per GPU");
	for (int pid = 0; pid < NP; pid++) {
		int k = pid / 4; /* GPUs 0-3: stage 0 (embedding, block 0), 4-7: stage 1 */
		json_t *st = json_array_get(stages, (size_t)k);
		int L = (int)(json_integer_value(json_array_get(json_object_get(st, "layers"), 1)) -
			      json_integer_value(json_array_get(json_object_get(st, "layers"), 0)) + 1);
		cr_expect_eq(L, 2);
		cr_expect_eq(fwd[pid], m * L, "process %d: %d forward layer events", pid, fwd[pid]);
		cr_expect_eq(bwd[pid], m * L, "process %d: %d backward layer events", pid, bwd[pid]);
		/* one block per stage: 2 all-reduces forward, 2 backward */
		cr_expect_eq(coll_f[pid], 2 * m, "process %d: %d forward block all-reduces", pid,
			     coll_f[pid]);
		cr_expect_eq(coll_b[pid], 2 * m, "process %d: %d backward block all-reduces", pid,
			     coll_b[pid]);
		double f = test_num(st, "forward_s"), b = test_num(st, "backward_s");
		cr_expect(fabs(busy_f[pid] - m * f) <= 1e-6 * m * f, "process %d: forward %.9g of %.9g",
			  pid, busy_f[pid], m * f);
		cr_expect(fabs(busy_b[pid] - m * b) <= 1e-6 * m * b,
			  "process %d: backward %.9g of %.9g", pid, busy_b[pid], m * b);
	}
	json_decref(tr);
	json_decref(sim);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_expect_eq(system(cmd), 0);
}

/* compile writes the same pictures (and a finer trace) beside its plan. */
Test(pictures, compile_writes_the_pictures)
{
	char dir[] = "/tmp/meshplan-pictures-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char args[2048];
	int code;
	snprintf(args, sizeof args,
		 "compile %s/tiny.xml --cluster %s/tiny-cluster.xml --batch 16 --json "
		 "--svg-timeline %s/t.svg --svg-mesh %s/m.svg --svg-memory %s/mem.svg "
		 "--trace %s/t.json --trace-detail layer", DATA, DATA, dir, dir, dir, dir);
	json_t *j = test_run_json(args, &code);
	cr_assert_eq(code, 0);
	int P = (int)json_integer_value(json_object_get(j, "pipeline_ranks"));
	char path[512];
	snprintf(path, sizeof path, "%s/t.svg", dir);
	xmlDocPtr d = parse_svg_file(path);
	int rows;
	double got = svg_bubble(d, &rows), want = test_num(j, "bubble_fraction");
	cr_expect_eq(rows, P);
	cr_expect(fabs(got - want) <= 0.01 * want + 1e-6, "picture's bubble %.5f, simulator's %.5f",
		  got, want);
	xmlFreeDoc(d);
	snprintf(path, sizeof path, "%s/m.svg", dir);
	d = parse_svg_file(path);
	cr_expect_eq(count(d, NULL, "//*[local-name()='g'][@class='logical']"), P);
	xmlFreeDoc(d);
	snprintf(path, sizeof path, "%s/mem.svg", dir);
	d = parse_svg_file(path);
	cr_expect_eq(count(d, NULL, RANKS), P);
	xmlFreeDoc(d);
	snprintf(path, sizeof path, "%s/t.json", dir);
	json_error_t err;
	json_t *tr = json_load_file(path, 0, &err);
	cr_expect_not_null(tr, "%s: %s", path, err.text);
	json_decref(tr);
	json_decref(j);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_expect_eq(system(cmd), 0);
}
