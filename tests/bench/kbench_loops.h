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
 *  - single: rdtsc around one call, minus the measured cost of an empty
 *    rdtsc pair (for a call that needs untimed set-up before it, such as a
 *    tiny allocation that must land in an already open 16-byte block).
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
 * One 8-byte noscan allocation that fits the open tiny block: open a block
 * first (an 8-byte object at a 16-aligned address starts a block, so the
 * next one fits behind it), then time the second allocation alone. Frees
 * are untimed. Returns median tenths of a tick minus the rdtsc overhead.
 * An allocator without a tiny path simply gets its small-size cost timed.
 */
KBENCH_ALWAYS_INLINE uint64_t kbench_tiny_fit_x10(kbench_alloc_fn alloc,
						  kbench_free_fn release,
						  unsigned flags, unsigned runs)
{
	uint64_t s[KBENCH_MAX_RUNS];
	uint64_t overhead = kbench_rdtsc_overhead_x10(runs);

	for (unsigned r = 0; r < runs; r++) {
		void *a = alloc(8, flags), *a2 = NULL, *b;

		if ((uintptr_t)a & 15) /* a filled a block: open a fresh one */
			a2 = alloc(8, flags);
		uint64_t t0 = kbench_rdtsc();
		b = alloc(8, flags);
		KBENCH_OPAQUE(b);
		uint64_t t1 = kbench_rdtsc();
		release(b);
		release(a2);
		release(a);
		s[r] = (t1 - t0) * 10;
	}
	uint64_t m = kbench_median(s, runs);
	return m > overhead ? m - overhead : 0;
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
