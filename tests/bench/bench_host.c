/*
 * tests/bench/bench_host.c - the fast-path benchmark natively, spanheap
 * side by side with glibc malloc/free.
 *
 * Linked with build/host/libspanheap.a (optimised, no sanitizers). Runs the
 * same loops as the in-kernel kbench (tests/bench/kbench_loops.h) once with
 * kmalloc/kfree and once with malloc/free, pinned to one CPU so the TSC
 * and the caches stay put. glibc has no tiny allocator: its "tiny" column
 * is a plain malloc of the same size. Figures are TSC ticks (median of many runs), for
 * reading, never pass/fail. Usage: bench-host [runs]
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include "mm/kmalloc.h"
#include "tests/bench/kbench_loops.h"

#define RUNS_DEFAULT 101
#define PAIR_ITERS   10000
#define LARGE_ITERS  1000
#define LARGE_SIZE   (64u * 1024)

static void *libc_alloc(size_t size, unsigned flags)
{
	(void)flags;
	return malloc(size);
}

static void libc_free(const void *p)
{
	free((void *)p);
}

static void print_row(const char *what, uint64_t ours_x10, uint64_t libc_x10)
{
	printf("%-30s %8llu.%llu %8llu.%llu\n", what,
	       (unsigned long long)(ours_x10 / 10), (unsigned long long)(ours_x10 % 10),
	       (unsigned long long)(libc_x10 / 10), (unsigned long long)(libc_x10 % 10));
}

static void pin_to_one_cpu(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, &set)) {
			CPU_ZERO(&set);
			CPU_SET(c, &set);
			sched_setaffinity(0, sizeof(set), &set);
			return;
		}
	}
}

int main(int argc, char **argv)
{
	static const unsigned sizes[] = { 16, 32, 64, 128, 256 };
	unsigned runs = argc > 1 ? (unsigned)atoi(argv[1]) : RUNS_DEFAULT;
	char what[64];

	if (runs < 1 || runs > KBENCH_MAX_RUNS)
		runs = RUNS_DEFAULT;
	pin_to_one_cpu();
	/* Warm both heaps (lazy init, first spans) outside any timed loop. */
	kfree(kmalloc(16, 0));
	free(malloc(16));

	printf("rdtsc ticks per operation, median of %u runs (one CPU)\n", runs);
	printf("%-30s %10s %10s\n", "operation", "spanheap", "glibc");
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		snprintf(what, sizeof(what), "malloc+free %u B", sizes[i]);
		print_row(what,
			  kbench_pair_x10(kmalloc, kfree, sizes[i], 0, PAIR_ITERS, runs),
			  kbench_pair_x10(libc_alloc, libc_free, sizes[i], 0,
					  PAIR_ITERS, runs));
	}
	print_row("tiny 1 B NOSCAN, fits block",
		  kbench_tiny_fit_x10(kmalloc, kfree, KM_NOSCAN, runs),
		  kbench_tiny_fit_x10(libc_alloc, libc_free, 0, runs));
	uint64_t overhead = kbench_rdtsc_overhead_x10(runs);
	print_row("(empty rdtsc window, subtracted)", overhead, overhead);
	print_row("tiny 8 B NOSCAN kmalloc+kfree",
		  kbench_pair_x10(kmalloc, kfree, 8, KM_NOSCAN, PAIR_ITERS, runs),
		  kbench_pair_x10(libc_alloc, libc_free, 8, 0, PAIR_ITERS, runs));
	print_row("tiny 8 B NOSCAN, batch average",
		  kbench_tiny_batch_x10(kmalloc, kfree, KM_NOSCAN, runs),
		  kbench_tiny_batch_x10(libc_alloc, libc_free, 0, runs));
	print_row("malloc+free 64 KiB (large)",
		  kbench_pair_x10(kmalloc, kfree, LARGE_SIZE, 0, LARGE_ITERS, runs),
		  kbench_pair_x10(libc_alloc, libc_free, LARGE_SIZE, 0,
				  LARGE_ITERS, runs));
	return 0;
}
