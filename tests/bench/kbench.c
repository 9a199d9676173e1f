/*
 * tests/bench/kbench.c - the heap's fast-path benchmark (see kbench.h).
 *
 * Every figure is the median over KBENCH_RUNS runs, so a timer interrupt
 * or a refill from the mcentral landing in a few runs does not move it.
 * The first runs of each loop also warm the mcache: the pair loops measure
 * the steady state in which the same object is handed out and given back.
 */
#include <stddef.h>
#include <stdint.h>
#include "mm/kmalloc.h"
#include "mm/platform.h"
#include "tests/bench/kbench.h"
#include "tests/bench/kbench_loops.h"
#include "kernel/bootjob.h"
#include "kernel/kargs.h"

#define KBENCH_RUNS        63    /* batch loops */
#define KBENCH_WINDOW_RUNS 201   /* timings of a few calls after set-up */
#define KBENCH_PAIR_ITERS  1000
#define KBENCH_LARGE_ITERS 100
#define KBENCH_LARGE_SIZE  (64u * 1024)

static void kbench_print(const char *what, uint64_t x10)
{
	mm_log("kbench: %-32s %6llu.%llu", what,
	       (unsigned long long)(x10 / 10), (unsigned long long)(x10 % 10));
}

void kbench_run(void)
{
	static const unsigned sizes[] = { 16, 32, 64, 128, 256 };
	static const char *const names[] = {
		"kmalloc+kfree 16 B", "kmalloc+kfree 32 B", "kmalloc+kfree 64 B",
		"kmalloc+kfree 128 B", "kmalloc+kfree 256 B",
	};

	mm_log("kbench: rdtsc ticks per operation, median of %d runs",
	       KBENCH_RUNS);
	mm_log("kbench: %-32s %8s", "operation", "ticks");
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		kbench_print(names[i],
			     kbench_pair_x10(kmalloc, kfree, sizes[i], 0,
					     KBENCH_PAIR_ITERS, KBENCH_RUNS));
	kbench_print("tiny 1 B NOSCAN, fits block",
		     kbench_tiny_fit_x10(kmalloc, kfree, KM_NOSCAN,
					 KBENCH_WINDOW_RUNS));
	kbench_print("(empty rdtsc window, subtracted)",
		     kbench_rdtsc_overhead_x10(KBENCH_WINDOW_RUNS));
	kbench_print("tiny 8 B NOSCAN kmalloc+kfree",
		     kbench_pair_x10(kmalloc, kfree, 8, KM_NOSCAN,
				     KBENCH_PAIR_ITERS, KBENCH_RUNS));
	kbench_print("tiny 8 B NOSCAN, batch average",
		     kbench_tiny_batch_x10(kmalloc, kfree, KM_NOSCAN, KBENCH_RUNS));
	kbench_print("kmalloc+kfree 64 KiB (large)",
		     kbench_pair_x10(kmalloc, kfree, KBENCH_LARGE_SIZE, 0,
				     KBENCH_LARGE_ITERS, KBENCH_RUNS));
}

/* Kernel argument "bench": run after the self-tests (`make run`). */
static int kbench_boot_job(void)
{
	if (kernel_arg("bench", NULL, 0))
		kbench_run();
	return 0;
}
BOOT_JOB(kbench, BOOT_JOB_BENCH, kbench_boot_job);
