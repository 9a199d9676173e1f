/*
 * examples/minimal/selftest.c - the minimal platform's proof in user space
 * (tools/check-boundary.sh builds it with the .c files of mm/ and platform.c, nothing
 * else of the project): allocate every size from 1 to 4096 bytes and a
 * range of large ones, fill each object with a pattern of its own, check
 * every byte, free everything, check mheap_verify() == 0, then drain and
 * scavenge and check that the arena got back every byte except the heap's
 * page-map leaves (which it keeps by design; its fixalloc blocks come back
 * too), and that a second round takes no more. KTAP, then
 * "N passed, N failed".
 */
#include <stdio.h>
#include <stdint.h>
#include "mm/kmalloc.h"
#include "mm/pagemap.h"   /* PAGEMAP_LEAF_BYTES: what the heap keeps */

extern size_t minimal_arena_bytes_out;
extern unsigned minimal_log_lines;

#define NSMALL 4096
static const size_t large_sizes[] = { 4097, 8192, 32768, 32769, 65536, 100000,
				      1 << 20, (1 << 20) + 1, 3 << 20 };
#define NLARGE (sizeof(large_sizes) / sizeof(large_sizes[0]))
static unsigned char *objs[NSMALL + NLARGE];

static int npass, nfail, ntest;
static void check(int ok, const char *what, unsigned long long expected,
		  unsigned long long seen)
{
	ntest++;
	if (ok) {
		npass++;
		printf("ok %d - %s\n", ntest, what);
	} else {
		nfail++;
		printf("not ok %d - %s\n    # expected %llu, saw %llu\n", ntest, what,
		       expected, seen);
	}
}

static size_t size_of(unsigned i) { return i < NSMALL ? i + 1 : large_sizes[i - NSMALL]; }
static unsigned char pattern(unsigned i, size_t b) { return (unsigned char)(i * 7 + b * 13 + 1); }

/* One round; returns the number of objects whose bytes were wrong. */
static unsigned round_all_sizes(unsigned *nnull)
{
	unsigned bad = 0;
	*nnull = 0;
	for (unsigned i = 0; i < NSMALL + NLARGE; i++) {
		objs[i] = kmalloc(size_of(i), 0);
		if (!objs[i]) {
			(*nnull)++;
			continue;
		}
		for (size_t b = 0; b < size_of(i); b++)
			objs[i][b] = pattern(i, b);
	}
	for (unsigned i = 0; i < NSMALL + NLARGE; i++) {
		for (size_t b = 0; objs[i] && b < size_of(i); b++)
			if (objs[i][b] != pattern(i, b)) {
				bad++;
				break;
			}
	}
	return bad;
}

static void free_all(void)
{
	for (unsigned i = 0; i < NSMALL + NLARGE; i++)
		kfree(objs[i]);
}

int main(void)
{
	printf("KTAP version 1\n1..9\n");
	kmalloc_init();
	unsigned nnull, bad = round_all_sizes(&nnull);
	check(nnull == 0, "every size from 1 to 4096 and 9 large ones allocated", 0, nnull);
	check(bad == 0, "every object holds its own pattern", 0, bad);
	check(mheap_verify() == 0, "mheap_verify() == 0 with everything live", 0, 1);
	free_all();
	check(mheap_verify() == 0, "mheap_verify() == 0 after freeing everything", 0, 1);

	kmem_drain_all();
	kmem_scavenge();
	struct kmem_stats st;
	kmem_get_stats(&st);
	check(st.objects_inuse == 0, "no object in use", 0, st.objects_inuse);
	size_t kept = minimal_arena_bytes_out;
	check(st.heap_bytes == 0 && st.retained_bytes == 0,
	      "the heap holds no chunk and no fixalloc block after drain + scavenge",
	      0, st.heap_bytes + st.retained_bytes);
	/* A page-map leaf maps 1 GiB; the arena lies in one or two of them. */
	check(kept == PAGEMAP_LEAF_BYTES || kept == 2 * PAGEMAP_LEAF_BYTES,
	      "every arena byte back but the page-map leaves (1 or 2 of 1 MiB)",
	      PAGEMAP_LEAF_BYTES, kept);

	bad = round_all_sizes(&nnull);
	free_all();
	kmem_drain_all();
	kmem_scavenge();
	check(bad == 0 && nnull == 0 && mheap_verify() == 0,
	      "a second round: contents right, heap consistent", 0, bad + nnull);
	check(minimal_arena_bytes_out == kept,
	      "after the second round the arena is back where the first left it",
	      kept, minimal_arena_bytes_out);
	printf("# arena: %zu bytes kept by the heap's bookkeeping; %u mm_log lines\n",
	       kept, minimal_log_lines);
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail != 0;
}
