/*
 * tests/bench/wl_host.c - the Linux driver of one benchmark workload.
 *
 * Linked with one tests/bench/wl_<name>.c (its struct workload is named by
 * -DWL_SYMBOL=wl_<name>) into the program build/bench/wl/<name>, over plain
 * malloc/free: the allocator under test comes in with LD_PRELOAD. Threads
 * stand in for CPUs.
 *
 *   <bin> --list                    one case name per line
 *   <bin> --case CASE --threads N   run it, print one RESULT line
 *   <bin> --smoke                   every case at tiny scale on 1 and 2
 *                                   threads with contents checked, as KTAP,
 *                                   last line "N passed, N failed"
 *   --scale F                       multiply the operation counts by F
 *
 * RESULT workload=W case=C threads=N ops=O seconds=S ns_per_op=X
 *        [peak_rss_kb=.. rss_after_free_kb=.. live_kb=.. rss_per_live=..]
 * then, for a workload that traces its memory (mem), RSS against time:
 * SAMPLE workload=W case=C t=<seconds since the clock started> rss_kb=<VmRSS>
 *
 * The clock (CLOCK_MONOTONIC) runs from the workload's wl_go() to its
 * wl_stop(), both barriers; set-up and clean-up are not timed. Memory
 * figures come from /proc/self/status (VmHWM, VmRSS), read with open/read
 * into a static buffer so that reading them allocates nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/bench/workload.h"

#ifndef WL_SYMBOL
#error "build with -DWL_SYMBOL=wl_<name>"
#endif

#define WL_SMOKE_SCALE 1000u /* parts per million: a few thousand operations */

static const struct workload *const wl = &WL_SYMBOL;

/* ---------------------------------------------------------- /proc ---- */

/* The kB value of "Key:" in /proc/self/status, 0 when unreadable. */
static uint64_t proc_status_kb(const char *key)
{
	static char buf[8192];
	int fd = open("/proc/self/status", O_RDONLY);
	if (fd < 0)
		return 0;
	ssize_t n, len = 0;
	while (len < (ssize_t)sizeof(buf) - 1 &&
	       (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += n;
	close(fd);
	buf[len] = 0;
	size_t klen = strlen(key);
	for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':')
			return strtoull(line + klen + 1, NULL, 10);
	}
	return 0;
}

void wl_mem_sample(struct wl_run *r, enum wl_mem_point point, uint64_t live)
{
	r->mem_valid = true;
	if (point == WL_MEM_PEAK) {
		r->mem_live_bytes = live;
		r->mem_peak_bytes = proc_status_kb("VmHWM") * 1024;
	} else {
		r->mem_after_free_bytes = proc_status_kb("VmRSS") * 1024;
	}
}

/* The RSS trace of the last run: (ns since wl_go, VmRSS kB), printed as
 * "SAMPLE t=<s> rss_kb=<n>" lines after the RESULT line. */
#define TRACE_MAX 4096
static struct { uint64_t ns, rss_kb; } trace[TRACE_MAX];
static unsigned ntrace;

void wl_mem_trace(struct wl_run *r)
{
	if (r->check || ntrace == TRACE_MAX)
		return;
	uint64_t now = wl_now();
	trace[ntrace].rss_kb = proc_status_kb("VmRSS");
	trace[ntrace].ns = now - r->t_start;
	ntrace++;
}

/* ------------------------------------------------------------ runs --- */

static void *thread_main(void *arg)
{
	struct wl_thread *t = arg;
	t->run->wl->thread(t);
	return NULL;
}

/* Run one case; the failure (if any) is in run->failure. *ops_out: the
 * allocations of the timed phase over all threads. */
static void run_case(struct wl_run *run, const struct wl_case *c, unsigned nthreads,
		     uint64_t scale, bool check, uint64_t *ops_out)
{
	memset(run, 0, sizeof(*run));
	ntrace = 0;
	run->wl = wl;
	run->c = c;
	run->nthreads = nthreads;
	run->scale = scale;
	run->check = check;
	run->barrier = (struct wl_barrier){ nthreads, 0, nthreads };
	*ops_out = 0;
	if (wl->setup && wl->setup(run) != 0) {
		wl_fail(run, "setup ran out of memory", 0, 0, 0, 0);
		return;
	}
	struct wl_thread *threads;
	pthread_t *tids = calloc(nthreads, sizeof(*tids));
	if (posix_memalign((void **)&threads, 64, nthreads * sizeof(*threads)) != 0 || !tids) {
		wl_fail(run, "out of memory for the threads", 0, 0, 0, 0);
		return;
	}
	memset(threads, 0, nthreads * sizeof(*threads));
	for (unsigned i = 0; i < nthreads; i++) {
		threads[i].run = run;
		threads[i].id = i;
		threads[i].nthreads = nthreads;
		threads[i].rng.s = wl_seed(wl->name, c->name, i);
	}
	unsigned started = 0;
	for (; started < nthreads; started++) {
		int e = pthread_create(&tids[started], NULL, thread_main, &threads[started]);
		if (e) {
			fprintf(stderr, "%s: pthread_create: %s\n", wl->name, strerror(e));
			exit(2); /* the others wait at a barrier for it forever */
		}
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (wl->teardown)
		wl->teardown(run);
	uint64_t nalloc = 0, nfree = 0;
	for (unsigned i = 0; i < nthreads; i++) {
		*ops_out += threads[i].ops;
		nalloc += threads[i].nalloc;
		nfree += threads[i].nfree;
	}
	if (check && nalloc != nfree)
		wl_fail(run, "objects allocated and freed do not match", 0, 0, nalloc, nfree);
	if (check && *ops_out == 0)
		wl_fail(run, "the timed phase did no operation", 0, 0, 1, 0);
	free(threads);
	free(tids);
}

static void print_failure(FILE *f, const struct wl_failure *fl)
{
	fprintf(f, "%s (size %llu, offset %llu: expected %llu, saw %llu)", fl->what,
		(unsigned long long)fl->size, (unsigned long long)fl->offset,
		(unsigned long long)fl->expected, (unsigned long long)fl->seen);
}

static const struct wl_case *find_case(const char *name)
{
	for (unsigned i = 0; i < wl->ncases; i++)
		if (strcmp(wl->cases[i].name, name) == 0)
			return &wl->cases[i];
	return NULL;
}

static int bench_one(const char *case_name, unsigned nthreads, uint64_t scale)
{
	const struct wl_case *c = find_case(case_name);
	if (!c) {
		fprintf(stderr, "%s: no case \"%s\" (see --list)\n", wl->name, case_name);
		return 2;
	}
	static struct wl_run run;
	uint64_t ops;
	run_case(&run, c, nthreads, scale, false, &ops);
	if (run.failure.what) {
		fprintf(stderr, "%s.%s.t%u: ", wl->name, c->name, nthreads);
		print_failure(stderr, &run.failure);
		fputc('\n', stderr);
		return 1;
	}
	double secs = (double)(run.t_end - run.t_start) / 1e9;
	printf("RESULT workload=%s case=%s threads=%u ops=%llu seconds=%.6f ns_per_op=%.3f",
	       wl->name, c->name, nthreads, (unsigned long long)ops, secs,
	       ops ? secs * 1e9 / (double)ops : 0.0);
	if (run.mem_valid) {
		uint64_t live_kb = run.mem_live_bytes / 1024;
		printf(" peak_rss_kb=%llu rss_after_free_kb=%llu live_kb=%llu rss_per_live=%.3f",
		       (unsigned long long)(run.mem_peak_bytes / 1024),
		       (unsigned long long)(run.mem_after_free_bytes / 1024),
		       (unsigned long long)live_kb,
		       live_kb ? (double)run.mem_peak_bytes / (double)run.mem_live_bytes : 0.0);
	}
	printf("\n");
	for (unsigned i = 0; i < ntrace; i++)
		printf("SAMPLE workload=%s case=%s t=%.6f rss_kb=%llu\n", wl->name, c->name,
		       (double)trace[i].ns / 1e9, (unsigned long long)trace[i].rss_kb);
	return 0;
}

static int smoke(uint64_t scale)
{
	static const unsigned thread_counts[] = { 1, 2 };
	static struct wl_run run;
	unsigned n = 0, passed = 0, failed = 0;

	printf("KTAP version 1\n1..%u\n", wl->ncases * 2);
	for (unsigned i = 0; i < wl->ncases; i++) {
		for (unsigned k = 0; k < 2; k++) {
			uint64_t ops;
			run_case(&run, &wl->cases[i], thread_counts[k], scale, true, &ops);
			n++;
			if (run.failure.what) {
				failed++;
				printf("not ok %u %s.%s.t%u # ", n, wl->name, wl->cases[i].name,
				       thread_counts[k]);
				print_failure(stdout, &run.failure);
				printf("\n");
			} else {
				passed++;
				printf("ok %u %s.%s.t%u # %llu ops\n", n, wl->name,
				       wl->cases[i].name, thread_counts[k], (unsigned long long)ops);
			}
			fflush(stdout);
		}
	}
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: %s --list | --case CASE --threads N [--scale F] | --smoke [--scale F]\n",
		wl->name);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *case_name = NULL;
	unsigned nthreads = 1;
	double scale = -1;
	int list = 0, do_smoke = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--list") == 0)
			list = 1;
		else if (strcmp(argv[i], "--smoke") == 0)
			do_smoke = 1;
		else if (strcmp(argv[i], "--case") == 0 && i + 1 < argc)
			case_name = argv[++i];
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			nthreads = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc)
			scale = strtod(argv[++i], NULL);
		else
			usage();
	}
	if (nthreads == 0 || nthreads > 1024)
		usage();
	if (list) {
		for (unsigned i = 0; i < wl->ncases; i++)
			printf("%s\n", wl->cases[i].name);
		return 0;
	}
	if (do_smoke) {
		uint64_t s = WL_SMOKE_SCALE;
		if (scale > 0)
			s = (uint64_t)(scale * WL_SCALE_ONE + 0.5);
		return smoke(s ? s : 1);
	}
	if (!case_name)
		usage();
	uint64_t s = WL_SCALE_ONE;
	if (scale > 0)
		s = (uint64_t)(scale * WL_SCALE_ONE + 0.5);
	return bench_one(case_name, nthreads, s ? s : 1);
}
