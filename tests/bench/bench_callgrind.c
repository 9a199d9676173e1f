/*
 * tests/bench/bench_callgrind.c - instruction counts per kmalloc+kfree pair.
 *
 * Runs `iters` kmalloc+kfree pairs (or malloc+free with "libc") of one size
 * and exits. tests/bench/callgrind.sh runs it under valgrind's callgrind
 * with N and 2N iterations; the difference of the two totals divided by N
 * is the cost of one pair, start-up and heap initialization cancelling out.
 * Usage: bench-callgrind spanheap|libc SIZE ITERS [tiny]
 *   tiny: allocate two 8-byte KM_NOSCAN objects per iteration (one opens a
 *   16-byte block, one fits it), then free both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mm/kmalloc.h"

#define OPAQUE(p) __asm__ volatile("" : "+r"(p))

static void pairs_spanheap(size_t size, long iters)
{
	for (long i = 0; i < iters; i++) {
		void *p = kmalloc(size, 0);
		OPAQUE(p);
		kfree(p);
	}
}

static void pairs_libc(size_t size, long iters)
{
	for (long i = 0; i < iters; i++) {
		void *p = malloc(size);
		OPAQUE(p);
		free(p);
	}
}

static void tiny_spanheap(long iters)
{
	for (long i = 0; i < iters; i++) {
		void *a = kmalloc(8, KM_NOSCAN), *b = kmalloc(8, KM_NOSCAN);
		OPAQUE(a);
		OPAQUE(b);
		kfree(b);
		kfree(a);
	}
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s spanheap|libc SIZE ITERS [tiny]\n", argv[0]);
		return 2;
	}
	size_t size = strtoul(argv[2], NULL, 0);
	long iters = strtol(argv[3], NULL, 0);
	int libc = strcmp(argv[1], "libc") == 0;
	int tiny = argc > 4 && strcmp(argv[4], "tiny") == 0;

	/* Initialize both heaps even at 0 iterations, so N vs 2N cancels it. */
	kfree(kmalloc(16, 0));
	free(malloc(16));
	if (tiny)
		tiny_spanheap(iters);
	else if (libc)
		pairs_libc(size, iters);
	else
		pairs_spanheap(size, iters);
	return 0;
}
