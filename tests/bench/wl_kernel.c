/*
 * tests/bench/wl_kernel.c - the kernel driver of the benchmark workloads
 * (kernel argument "wl", see wl_kernel.h).
 *
 * The same workload files as on Linux (tests/bench/wl_*.c), here over
 * kmalloc/kfree, with one thread per CPU: the boot CPU sets a run up, then
 * smp_call_n() runs the workload's thread function on CPUs 0..N-1 at once,
 * each taking the next thread slot (id) from a counter. Time is the TSC,
 * read by thread 0 at wl_go() and wl_stop() (both barriers): under QEMU TCG
 * with -icount shift=0 one tick is one retired instruction. Caveat: there
 * TCG runs the CPUs one after another on one host thread, so with N CPUs
 * the ticks of a run are about the sum of all CPUs' instructions (spinning
 * waiters included), not the parallel time.
 *
 * After every run all CPUs give their cached spans back, so runs start
 * from the same heap. Benchmark runs print
 *   RESULT workload=W case=C cpus=N ops=O ticks=T ticks_per_op=X.Y
 *          [heap_kb=.. heap_after_free_kb=.. live_kb=.. metadata_kb=.. heap_per_live=X.YYY]
 * (heap_kb: kmem_stats.heap_bytes at the peak; metadata: the heap's span,
 * chunk and tiny-block records plus the page map's leaves). The smoke runs
 * (wl=smoke) check object contents, that every object came back (the
 * heap's live-object count is what it was before) and mheap_verify(), and
 * print KTAP.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kernel/bootjob.h"
#include "kernel/kargs.h"
#include "kernel/percpu.h"
#include "kernel/printk.h"
#include "kernel/smp.h"
#include "lib/printf.h"
#include "lib/string.h"
#include "mm/kmalloc.h"
#include "tests/bench/wl_kernel.h"
#include "tests/bench/workload.h"

static const struct workload *const all_workloads[] = {
	&wl_pair, &wl_glibc_simple, &wl_alloc_test, &wl_larson, &wl_xmalloc_test,
	&wl_cache_scratch, &wl_shbench, &wl_rptest, &wl_malloc_large, &wl_mem,
};
#define NWORKLOADS (sizeof(all_workloads) / sizeof(all_workloads[0]))

/* Default scale in the kernel, parts per million of the Linux default:
 * small enough that every workload on 1, 2 and 4 CPUs takes a few minutes
 * under TCG -icount. */
static uint64_t kernel_scale(const struct workload *wl)
{
	if (wl == &wl_malloc_large)
		return 200000;  /* 20 %: the kernel takes no page faults */
	if (wl == &wl_mem)
		return 250000;  /* 50 MiB live */
	if (wl == &wl_cache_scratch)
		return 15000;
	return 30000;           /* 3 % */
}

#define WL_SMOKE_SCALE 1000u /* a few thousand operations per case */

static struct wl_run krun;
static struct wl_thread kthreads[MAX_CPUS];
static unsigned next_thread;

/* --------------------------------------------------------- memory ---- */

void wl_mem_sample(struct wl_run *r, enum wl_mem_point point, uint64_t live)
{
	struct kmem_stats st;
	kmem_get_stats(&st);
	r->mem_valid = true;
	if (point == WL_MEM_PEAK) {
		r->mem_live_bytes = live;
		r->mem_peak_bytes = st.heap_bytes;
		/* From the same snapshot: chunk_bytes is every arena's (mheap's
		 * own is arena 0's alone, which made the other CPUs' arenas
		 * count as metadata on 2 and 4 CPUs). */
		r->mem_meta_bytes = st.heap_bytes - st.chunk_bytes + st.meta_pagemap_bytes;
	} else {
		r->mem_after_free_bytes = st.heap_bytes;
	}
}

void wl_mem_trace(struct wl_run *r)
{
	(void)r;
}

/* ----------------------------------------------------------- runs ---- */

static void drain_cpu(void *arg)
{
	(void)arg;
	kmem_drain_this_cpu();
}

static void cpu_entry(void *arg)
{
	struct wl_run *r = arg;
	unsigned id = __atomic_fetch_add(&next_thread, 1, __ATOMIC_ACQ_REL);
	r->wl->thread(&kthreads[id]);
}

/* Run one case on ncpus CPUs; the failure (if any) is in krun.failure. */
static struct wl_run *run_case(const struct workload *wl, const struct wl_case *c,
			       unsigned ncpus, uint64_t scale, bool check, uint64_t *ops)
{
	struct wl_run *r = &krun;
	struct kmem_stats before, after;

	smp_call_all(drain_cpu, NULL);
	kmem_get_stats(&before);
	memset(r, 0, sizeof(*r));
	r->wl = wl;
	r->c = c;
	r->nthreads = ncpus;
	r->scale = scale;
	r->check = check;
	r->barrier = (struct wl_barrier){ ncpus, 0, ncpus };
	*ops = 0;
	if (wl->setup && wl->setup(r) != 0) {
		wl_fail(r, "setup ran out of memory", 0, 0, 0, 0);
		return r;
	}
	memset(kthreads, 0, sizeof(kthreads));
	for (unsigned i = 0; i < ncpus; i++) {
		kthreads[i].run = r;
		kthreads[i].id = i;
		kthreads[i].nthreads = ncpus;
		kthreads[i].rng.s = wl_seed(wl->name, c->name, i);
	}
	next_thread = 0;
	smp_call_n(ncpus, cpu_entry, r);
	if (wl->teardown)
		wl->teardown(r);
	uint64_t nalloc = 0, nfree = 0;
	for (unsigned i = 0; i < ncpus; i++) {
		*ops += kthreads[i].ops;
		nalloc += kthreads[i].nalloc;
		nfree += kthreads[i].nfree;
	}
	smp_call_all(drain_cpu, NULL);
	if (!check)
		return r;
	kmem_get_stats(&after);
	if (nalloc != nfree)
		wl_fail(r, "objects allocated and freed do not match", 0, 0, nalloc, nfree);
	if (after.objects_inuse != before.objects_inuse)
		wl_fail(r, "the heap's live objects differ from before the run", 0, 0,
			before.objects_inuse, after.objects_inuse);
	if (*ops == 0)
		wl_fail(r, "the timed phase did no operation", 0, 0, 1, 0);
	if (mheap_verify() != 0)
		wl_fail(r, "mheap_verify failed after the run (see above)", 0, 0, 0, 1);
	return r;
}

static void print_result(const struct wl_run *r, uint64_t ops)
{
	uint64_t ticks = r->t_end - r->t_start;
	uint64_t x10 = ops ? ticks * 10 / ops : 0;
	char extra[200] = "";
	if (r->mem_valid) {
		uint64_t live = r->mem_live_bytes, heap = r->mem_peak_bytes;
		uint64_t per_live = live ? heap * 1000 / live : 0;
		snprintf(extra, sizeof(extra),
			 " heap_kb=%lu heap_after_free_kb=%lu live_kb=%lu metadata_kb=%lu heap_per_live=%lu.%03lu",
			 heap >> 10, r->mem_after_free_bytes >> 10, live >> 10,
			 r->mem_meta_bytes >> 10, per_live / 1000, per_live % 1000);
	}
	printk("RESULT workload=%s case=%s cpus=%u ops=%lu ticks=%lu ticks_per_op=%lu.%lu%s\n",
	       r->wl->name, r->c->name, r->nthreads, ops, ticks, x10 / 10, x10 % 10, extra);
}

static void print_failure(const struct wl_failure *f)
{
	printk("%s (size %lu, offset %lu: expected %lu, saw %lu)", f->what, f->size,
	       f->offset, f->expected, f->seen);
}

/* ------------------------------------------------------- arguments ---- */

static uint64_t parse_u64(const char **s)
{
	uint64_t v = 0;
	while (**s >= '0' && **s <= '9')
		v = v * 10 + (uint64_t)(*(*s)++ - '0');
	return v;
}

/* The CPU counts to run on: wl.cpus=1,2,4 (those online), else all. */
static unsigned cpu_counts(unsigned *counts, unsigned max)
{
	char buf[64];
	unsigned n = 0;
	if (kernel_arg("wl.cpus", buf, sizeof(buf))) {
		const char *s = buf;
		while (*s && n < max) {
			uint64_t v = parse_u64(&s);
			if (v >= 1 && v <= ncpus_online)
				counts[n++] = (unsigned)v;
			else
				printk("wl: %lu CPUs asked for, %u online: skipped\n", v, ncpus_online);
			while (*s && (*s < '0' || *s > '9'))
				s++;
		}
	}
	if (n == 0)
		counts[n++] = ncpus_online;
	return n;
}

/* Whether workload name is in the comma-separated list (all if empty). */
static bool selected(const char *list, const char *name)
{
	if (!*list || strcmp(list, "all") == 0)
		return true;
	size_t len = strlen(name);
	for (const char *p = list; *p;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n == len && strncmp(p, name, len) == 0)
			return true;
		p += n + (end ? 1 : 0);
	}
	return false;
}

/* --------------------------------------------------------- modes ---- */

static int bench(const char *list)
{
	unsigned counts[8], ncounts = cpu_counts(counts, 8);
	char buf[32];
	uint64_t scale_arg = 0;
	int failed = 0;

	if (kernel_arg("wl.scale", buf, sizeof(buf))) {
		const char *s = buf;
		scale_arg = parse_u64(&s);
	}
	printk("wl: workloads over kmalloc/kfree, TSC ticks (one instruction each under -icount shift=0)\n");
	for (unsigned w = 0; w < NWORKLOADS; w++) {
		const struct workload *wl = all_workloads[w];
		if (!selected(list, wl->name))
			continue;
		uint64_t scale = scale_arg ? scale_arg : kernel_scale(wl);
		for (unsigned i = 0; i < wl->ncases; i++) {
			for (unsigned k = 0; k < ncounts; k++) {
				uint64_t ops;
				struct wl_run *r = run_case(wl, &wl->cases[i], counts[k], scale, false, &ops);
				if (r->failure.what) {
					printk("wl: %s.%s.cpus%u FAILED: ", wl->name, wl->cases[i].name, counts[k]);
					print_failure(&r->failure);
					printk("\n");
					failed++;
					continue;
				}
				print_result(r, ops);
			}
		}
	}
	return failed;
}

static int smoke(void)
{
	unsigned counts[2] = { 1, 2 }, ncounts = ncpus_online >= 2 ? 2 : 1;
	unsigned total = 0, n = 0, passed = 0, failed = 0;

	for (unsigned w = 0; w < NWORKLOADS; w++)
		total += all_workloads[w]->ncases * ncounts;
	printk("KTAP version 1\n1..%u\n", total);
	for (unsigned w = 0; w < NWORKLOADS; w++) {
		const struct workload *wl = all_workloads[w];
		for (unsigned i = 0; i < wl->ncases; i++) {
			for (unsigned k = 0; k < ncounts; k++) {
				uint64_t ops;
				struct wl_run *r = run_case(wl, &wl->cases[i], counts[k],
							    WL_SMOKE_SCALE, true, &ops);
				n++;
				if (r->failure.what) {
					failed++;
					printk("not ok %u wl.%s.%s.cpus%u # ", n, wl->name,
					       wl->cases[i].name, counts[k]);
					print_failure(&r->failure);
					printk("\n");
				} else {
					passed++;
					printk("ok %u wl.%s.%s.cpus%u # %lu ops\n", n, wl->name,
					       wl->cases[i].name, counts[k], ops);
				}
			}
		}
	}
	printk("# wl smoke: %u passed, %u failed\n", passed, failed);
	return (int)failed;
}

int wl_kernel_run(const char *arg)
{
	if (strcmp(arg, "smoke") == 0)
		return smoke();
	return bench(arg);
}

/* Kernel argument "wl[=...]": run after the self-tests and kbench. */
static int wl_boot_job(void)
{
	char wl[128];
	if (!kernel_arg("wl", wl, sizeof(wl)))
		return 0;
	return wl_kernel_run(wl);
}
BOOT_JOB(wl, BOOT_JOB_BENCH, wl_boot_job);
