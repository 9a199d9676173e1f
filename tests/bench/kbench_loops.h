/*
 * tests/bench/kbench_loops.h - the timed loops behind every heap benchmark.
 *
 * Header-only so that the in-kernel benchmark (kbench.c) and the hosted one
 * (bench_host.c, which also times glibc malloc) run the very same loops.
 * The allocator is passed as a pair of function pointers to always-inline
 * functions; called with constant pointers the compiler turns them into
 * direct calls, so no indirect call is timed.
 *
 * Two ways of timing, both reporting the median of many runs:
 *  - batch: rdtsc around `iters` repetitions of an operation, divided by
 *    `iters` (for operations that can repeat back to back, such as a
 *    kmalloc+kfree pair of the same size);
 *  - window: rdtsc around a few calls that need untimed set-up before
 *    them (tiny allocations that must land in an already open 16-byte
 *    block), minus the measured cost of an empty rdtsc window, divided by
 *    their number.
 * Figures are TSC ticks; they equal core cycles where the TSC runs at the
 * core clock (and count retired instructions under QEMU -icount shift=0).
 * Results are in tenths of a tick, to print one decimal without floats.
 */
#ifndef TESTS_BENCH_KBENCH_LOOPS_H
#define TESTS_BENCH_KBENCH_LOOPS_H

#include <stddef.h>
#include <stdint.h>

#define KBENCH_ALWAYS_INLINE static inline __attribute__((always_inline))
#define KBENCH_MAX_RUNS 255 /* 2 KiB of samples: kernel stacks are small */

typedef void *(*kbench_alloc_fn)(size_t size, unsigned flags);
typedef void (*kbench_free_fn)(const void *p);

/* Read the TSC with the instructions around it kept out of the window. */
static inline uint64_t kbench_rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("lfence\n\trdtsc\n\tlfence"
			 : "=a"(lo), "=d"(hi) : : "memory");
	return ((uint64_t)hi << 32) | lo;
}

/* Make the compiler treat p as used and unknown (no malloc/free elision). */
#define KBENCH_OPAQUE(p) __asm__ volatile("" : "+r"(p))

static inline void kbench_sort(uint64_t *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++) {
		uint64_t x = v[i];
		unsigned j = i;
		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

static inline uint64_t kbench_median(uint64_t *v, unsigned n)
{
	kbench_sort(v, n);
	return v[n / 2];
}

/* Median cost, in tenths of a tick, of an empty timed window. */
static inline uint64_t kbench_rdtsc_overhead_x10(unsigned runs)
{
	uint64_t s[KBENCH_MAX_RUNS];

	for (unsigned r = 0; r < runs; r++) {
		uint64_t t0 = kbench_rdtsc();
		uint64_t t1 = kbench_rdtsc();
		s[r] = (t1 - t0) * 10;
	}
	return kbench_median(s, runs);
}

/* kmalloc(size)+kfree pairs back to back: median tenths of a tick per pair. */
KBENCH_ALWAYS_INLINE uint64_t kbench_pair_x10(kbench_alloc_fn alloc,
					      kbench_free_fn release,
					      size_t size, unsigned flags,
					      unsigned iters, unsigned runs)
{
	uint64_t s[KBENCH_MAX_RUNS];

	for (unsigned r = 0; r < runs; r++) {
		uint64_t t0 = kbench_rdtsc();
		for (unsigned i = 0; i < iters; i++) {
			void *p = alloc(size, flags);
			KBENCH_OPAQUE(p);
			release(p);
		}
		uint64_t t1 = kbench_rdtsc();
		s[r] = (t1 - t0) * 10 / iters;
	}
	return kbench_median(s, runs);
}

/*
 * Tiny allocations that fit the open block: 1-byte noscan objects, 16 to a
 * 16-byte block. Untimed, allocate until one starts a block (a new one, or
 * the current one started over because all of its objects were freed),
 * then time the KBENCH_TINY_FIT allocations that fill the rest of it, and
 * free them all untimed. Returns median tenths of a tick per allocation,
 * the rdtsc overhead taken off the window first (a single allocation is
 * below what one rdtsc window resolves). An allocator without a tiny path
 * simply gets its smallest size timed.
 */
#define KBENCH_TINY_FIT 15
KBENCH_ALWAYS_INLINE uint64_t kbench_tiny_fit_x10(kbench_alloc_fn alloc,
						  kbench_free_fn release,
						  unsigned flags, unsigned runs)
{
	uint64_t s[KBENCH_MAX_RUNS];
	uint64_t overhead = kbench_rdtsc_overhead_x10(runs);
	void *first[16], *p[KBENCH_TINY_FIT];

	for (unsigned r = 0; r < runs; r++) {
		unsigned nfirst = 0;
		do
			first[nfirst] = alloc(1, flags);
		while (((uintptr_t)first[nfirst++] & 15) && nfirst < 16);
		uint64_t t0 = kbench_rdtsc();
		for (unsigned i = 0; i < KBENCH_TINY_FIT; i++) {
			p[i] = alloc(1, flags);
			KBENCH_OPAQUE(p[i]);
		}
		uint64_t t1 = kbench_rdtsc();
		for (unsigned i = KBENCH_TINY_FIT; i > 0; i--)
			release(p[i - 1]);
		while (nfirst > 0)
			release(first[--nfirst]);
		uint64_t t = (t1 - t0) * 10;
		s[r] = (t > overhead ? t - overhead : 0) / KBENCH_TINY_FIT;
	}
	return kbench_median(s, runs);
}

/*
 * Back-to-back 8-byte noscan allocations, freed afterwards untimed: with
 * the tiny path every other one fits the open block and the rest open a
 * new one, so this is the average of the two. Median tenths of a tick per
 * allocation.
 */
#define KBENCH_TINY_BATCH 128 /* 1 KiB of pointers on the stack */
KBENCH_ALWAYS_INLINE uint64_t kbench_tiny_batch_x10(kbench_alloc_fn alloc,
						    kbench_free_fn release,
						    unsigned flags, unsigned runs)
{
	uint64_t s[KBENCH_MAX_RUNS];
	void *p[KBENCH_TINY_BATCH];

	for (unsigned r = 0; r < runs; r++) {
		uint64_t t0 = kbench_rdtsc();
		for (unsigned i = 0; i < KBENCH_TINY_BATCH; i++) {
			p[i] = alloc(8, flags);
			KBENCH_OPAQUE(p[i]);
		}
		uint64_t t1 = kbench_rdtsc();
		for (unsigned i = 0; i < KBENCH_TINY_BATCH; i++)
			release(p[i]);
		s[r] = (t1 - t0) * 10 / KBENCH_TINY_BATCH;
	}
	return kbench_median(s, runs);
}

#endif
