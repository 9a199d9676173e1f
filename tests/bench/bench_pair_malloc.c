/*
 * tests/bench/bench_pair_malloc.c - a malloc+free pair loop for counting
 * instructions per pair of any malloc, under valgrind's callgrind.
 *
 * Linked against plain glibc; the allocator under test comes in with
 * LD_PRELOAD (libspanheap.so, libmimalloc.so.2, ...), or none for glibc.
 * tests/bench/run-bench runs it with N and 2N iterations and takes
 * (Ir(2N) - Ir(N)) / N: the program's start-up, the allocator's
 * initialisation and its first spans or pages cancel out, what is left is
 * the steady-state cost of one malloc(size) followed by free() of the same
 * pointer on one thread. The pointer goes through an empty asm statement so
 * the compiler cannot fold the pair away (GCC drops a malloc/free pair whose
 * result is unused).
 *
 * Usage: bench-pair-malloc SIZE ITERS
 */
#include <stdio.h>
#include <stdlib.h>

#define OPAQUE(p) __asm__ volatile("" : "+r"(p))

static void pairs(size_t size, long iters)
{
	for (long i = 0; i < iters; i++) {
		void *p = malloc(size);
		OPAQUE(p);
		free(p);
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s SIZE ITERS\n", argv[0]);
		return 2;
	}
	size_t size = strtoul(argv[1], NULL, 0);
	long iters = strtol(argv[2], NULL, 0);

	/* Initialise the allocator and its size class at 0 iterations too,
	 * so N against 2N cancels it. */
	void *first = malloc(size);
	OPAQUE(first);
	free(first);
	pairs(size, iters);
	return 0;
}
