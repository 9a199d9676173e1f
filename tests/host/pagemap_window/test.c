/*
 * tests/host/pagemap_window/test.c - the heap with a page-map window that
 * does not cover everything its platform can hand out (pw_platform.h):
 * chunks just below the window, just above it and across its end are
 * refused (kmalloc returns NULL, the platform gets each region back, the
 * heap stays consistent by mheap_verify, live objects keep their
 * contents, mm_log says so exactly once); a chunk ending exactly at the
 * window's end is accepted; lookups outside the window (also at addresses
 * that equal a heap address in their low PW_BITS bits) find no span; and
 * after freeing everything, draining and scavenging, the heap keeps only
 * its page-map leaves. Built for two window sizes by
 * tests/host/pagemap-window.mk. KTAP, then "N passed, N failed".
 */
#include <stdio.h>
#include <string.h>
#include "mm/kmalloc.h"
#include "mm/pagemap.h"
#include "pw_platform.h"

#define NSMALL 300
static unsigned char *small[NSMALL];
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
		printf("not ok %d - %s\n    # expected %#llx, saw %#llx\n", ntest, what,
		       expected, seen);
	}
}

static int inside(const void *p, size_t n)
{
	return (uintptr_t)p >= PW_BASE && (uintptr_t)p + n <= PW_END;
}

static size_t small_size(unsigned i) { return 1 + (i * 37) % 2000; }
static unsigned char pattern(unsigned i) { return (unsigned char)(i * 13 + 5); }

/* Objects whose bytes are not their pattern any more. */
static unsigned small_damaged(void)
{
	unsigned bad = 0;
	for (unsigned i = 0; i < NSMALL; i++)
		for (size_t b = 0; b < small_size(i); b++)
			if (small[i][b] != pattern(i)) {
				bad++;
				break;
			}
	return bad;
}

/* A large request while the platform places chunks at `where`, which is
 * outside the window: refused, the region given back, heap consistent. */
static void refused(enum pw_place where, size_t bytes, const char *name)
{
	char what[160];
	unsigned handed = pw_counts.outside_handed;
	pw_place_chunks(where);
	void *p = kmalloc(bytes, 0);
	pw_place_chunks(PW_INSIDE);
	snprintf(what, sizeof(what), "%s: kmalloc(%zu) returns NULL", name, bytes);
	check(p == NULL, what, 0, (uintptr_t)p);
	snprintf(what, sizeof(what), "%s: the platform handed out a chunk there", name);
	check(pw_counts.outside_handed > handed, what, handed + 1, pw_counts.outside_handed);
	snprintf(what, sizeof(what), "%s: and got every byte of it back", name);
	check(pw_counts.outside_held == 0, what, 0, pw_counts.outside_held);
	snprintf(what, sizeof(what), "%s: mheap_verify() == 0", name);
	int v = mheap_verify();
	check(v == 0, what, 0, (unsigned)v);
	if (p)
		kfree(p);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);   /* every line out before a sanitizer stops us */
	printf("KTAP version 1\n1..29\n");
	printf("# window [%#lx, %#lx): %u bits, root %lu entries, leaves of %lu KiB\n",
	       PW_BASE, PW_END, PW_BITS, PAGEMAP_L1_ENTRIES, PAGEMAP_LEAF_BYTES >> 10);
	if (pw_platform_init() != 0) {
		perror("# mmap of the window at its fixed address");
		printf("not ok 1 - the window can be reserved\n0 passed, 1 failed\n");
		return 1;
	}
	kmalloc_init();

	unsigned out = 0;
	for (unsigned i = 0; i < NSMALL; i++) {
		small[i] = kmalloc(small_size(i), 0);
		if (!small[i] || !inside(small[i], small_size(i))) {
			out++;
			continue;
		}
		memset(small[i], pattern(i), small_size(i));
	}
	check(out == 0, "300 small objects allocated, all inside the window", 0, out);
	unsigned char *large = kmalloc(2UL << 20, 0);
	check(large && inside(large, 2UL << 20), "a 2 MiB object inside the window",
	      PW_BASE, (uintptr_t)large);

	refused(PW_BELOW, 4UL << 20, "a chunk ending at the window's base");
	refused(PW_ABOVE, 4UL << 20, "a chunk starting at the window's end");
	refused(PW_ACROSS, 3UL << 20, "a chunk across the window's end");
	check(pw_counts.across_handed > 0, "that chunk did cross the end", 1,
	      pw_counts.across_handed);
	check(pw_counts.window_log_lines == 1,
	      "one mm_log line naming MM_PAGEMAP_BASE and MM_PAGEMAP_BITS for three refusals",
	      1, pw_counts.window_log_lines);
	unsigned bad = out ? NSMALL : small_damaged();
	check(bad == 0, "the live objects keep their contents", 0, bad);

	/* The window's last pages: accepted, mapped, the page past them not. */
	pw_place_chunks(PW_TOP);
	unsigned char *top = kmalloc(3UL << 20, 0);
	pw_place_chunks(PW_INSIDE);
	check(top && pw_counts.top_handed > 0 && inside(top, 3UL << 20),
	      "a chunk ending exactly at the window's end is accepted", PW_END - (3UL << 20),
	      (uintptr_t)top);
	struct mspan *last = pagemap_lookup(PW_END - 1);
	check(last != NULL && last == pagemap_lookup((uintptr_t)top),
	      "the window's last byte maps to that object's span",
	      (uintptr_t)pagemap_lookup((uintptr_t)top), (uintptr_t)last);
	check(pagemap_lookup(PW_END) == NULL, "the first byte past the window maps to nothing", 0,
	      (uintptr_t)pagemap_lookup(PW_END));
	check(pagemap_lookup(PW_BASE - 1) == NULL, "the byte before the window maps to nothing",
	      0, (uintptr_t)pagemap_lookup(PW_BASE - 1));
	uintptr_t alias = (uintptr_t)small[0] + (1UL << PW_BITS);
	check(pagemap_lookup(alias) == NULL,
	      "a heap address plus the window's size (same low bits) maps to nothing", 0,
	      (uintptr_t)pagemap_lookup(alias));
	alias = (uintptr_t)small[0] - (1UL << PW_BITS);
	check(pagemap_lookup(alias) == NULL,
	      "a heap address minus the window's size maps to nothing", 0,
	      (uintptr_t)pagemap_lookup(alias));

	/* After the refusals the heap grows again. */
	unsigned char *again = kmalloc(5UL << 20, 0);
	check(again && inside(again, 5UL << 20), "after the refusals a 5 MiB object is allocated",
	      PW_BASE, (uintptr_t)again);
	if (again)
		memset(again, 0x5a, 5UL << 20);
	int v = mheap_verify();
	check(v == 0, "mheap_verify() == 0 with everything live", 0, (unsigned)v);

	kfree(again);
	kfree(top);
	kfree(large);
	for (unsigned i = 0; i < NSMALL; i++)
		kfree(small[i]);
	v = mheap_verify();
	check(v == 0, "mheap_verify() == 0 after freeing everything", 0, (unsigned)v);
	kmem_drain_all();
	kmem_scavenge();
	struct kmem_stats st;
	kmem_get_stats(&st);
	check(st.heap_bytes == 0 && st.retained_bytes == 0,
	      "after drain + scavenge the heap holds no chunk", 0,
	      st.heap_bytes + st.retained_bytes);
	check(pw_counts.inside_held == pagemap_sys_bytes(),
	      "the platform got back everything but the page-map leaves", pagemap_sys_bytes(),
	      pw_counts.inside_held);
	check(pw_counts.bad_frees == 0, "every mm_sys_free gave back a region as handed out", 0,
	      pw_counts.bad_frees);
	printf("# %u chunks refused, %u mm_log lines, %lu KiB of leaves kept\n",
	       pw_counts.outside_handed, pw_counts.log_lines,
	       (unsigned long)(pagemap_sys_bytes() >> 10));
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail != 0;
}
