/*
 * tests/kernel/heap_stats_test.c - the heap's introspection: the metadata,
 * slack and lock counters of kmem_get_stats / kmem_get_class_stats, and
 * the heap map (kmem_heap_map_write) against those statistics.
 *
 * The heap is quiescent while a test runs (one thread hosted, the other
 * CPUs idle in the kernel), so a map written right after a snapshot of the
 * statistics must agree with it page for page. Runs hosted and in the
 * kernel.
 */
#include <stdint.h>
#include <stdbool.h>
#include "mm/kmalloc.h"
#include "mm/fixalloc.h"
#include "mm/mcache.h"
#include "mm/mcentral.h"
#include "mm/mheap.h"
#include "mm/mpagecache.h"
#include "mm/mspan.h"
#include "mm/platform.h"
#include "tests/kernel/ktest.h"
#include "tests/kernel/heap_testlib.h"

KTEST(heap_stats, metadata_is_counted_and_consistent_with_the_spans)
{
	/* 16 bytes to 2 KiB: spans of bitmap units (the first one, 80
	 * bytes in the debug build, too) and spans of bucket 0. */
	void *p[8];
	for (unsigned i = 0; i < 8; i++) {
		p[i] = kmalloc(16u << i, 0);
		KASSERT_NOT_NULL(p[i]);
	}
	struct kmem_stats st;
	kmem_get_stats(&st);
	KEXPECT_GE(st.spans, 8);
	/* Span records come from 8 KiB fixalloc blocks, given back when
	 * empty but for one spare: at least the records' bytes, at most a
	 * block per record and the spare. */
	KEXPECT_GE(st.meta_span_bytes, st.spans * sizeof(struct mspan));
	KEXPECT_LE(st.meta_span_bytes, (st.spans + 1) * FIXALLOC_BLOCK_SIZE);
	KEXPECT_GT(st.meta_chunk_bytes, 0);
	KEXPECT_GT(st.meta_pagemap_bytes, 0);
	KEXPECT_GT(st.meta_static_bytes, 0);
	/* Eight small spans at least, one with units: those are counted. */
	KEXPECT_GT(st.meta_bitmap_bytes, 0);
	KEXPECT_EQ(st.metadata_bytes, st.meta_span_bytes + st.meta_bitmap_bytes +
		   st.meta_chunk_bytes + st.meta_tiny_bytes + st.meta_pagemap_bytes +
		   st.meta_static_bytes);
	/* heap_bytes = chunks + the fixalloc blocks. */
	KEXPECT_EQ(st.heap_bytes, st.chunk_bytes + st.meta_span_bytes + st.meta_bitmap_bytes +
		   st.meta_chunk_bytes + st.meta_tiny_bytes);
	KEXPECT_LT(st.meta_span_bytes + st.meta_bitmap_bytes + st.meta_chunk_bytes +
		   st.meta_tiny_bytes, st.heap_bytes);
	KEXPECT_EQ(st.pages_held, st.chunk_bytes / MM_PAGE_SIZE);
	KEXPECT_LE(st.object_bytes_inuse, st.span_bytes_inuse);
	for (unsigned i = 0; i < 8; i++)
		kfree(p[i]);
}

KTEST(heap_stats, class_stats_add_up_to_the_totals)
{
	void *p = kmalloc(200, 0);
	KASSERT_NOT_NULL(p);
	struct kmem_stats st;
	kmem_get_stats(&st);
	uint64_t object_bytes = 0, acquires = 0, span_bytes = 0;
	for (unsigned spc = 2; spc < NUM_SPAN_CLASSES; spc++) {
		struct kmem_class_stats cs;
		KASSERT_EQ(kmem_get_class_stats(spc, &cs), 0);
		KEXPECT_LE(cs.object_bytes, cs.span_bytes);
		KEXPECT_LE(cs.tail_bytes, cs.span_bytes);
		KEXPECT_EQ(cs.span_bytes, cs.spans * cs.pages_per_span * MM_PAGE_SIZE);
		KEXPECT_LE(cs.lock_contended, cs.lock_acquires);
		object_bytes += cs.object_bytes;
		acquires += cs.lock_acquires;
		span_bytes += cs.span_bytes;
	}
	struct kmem_class_stats none;
	KEXPECT_EQ(kmem_get_class_stats(NUM_SPAN_CLASSES, &none), -1);
	/* Every class from one walk: the same objects and spans (the lock
	 * counters may have grown since). */
	static struct kmem_class_stats all[KMEM_SPAN_CLASSES];
	kmem_get_all_class_stats(all);
	KEXPECT_EQ(all[0].spans + all[1].spans + all[0].object_size, 0);
	unsigned differ = 0;
	for (unsigned spc = 2; spc < NUM_SPAN_CLASSES; spc++) {
		struct kmem_class_stats cs;
		KASSERT_EQ(kmem_get_class_stats(spc, &cs), 0);
		differ += cs.object_size != all[spc].object_size || cs.spans != all[spc].spans ||
			  cs.objects_inuse != all[spc].objects_inuse ||
			  cs.object_bytes != all[spc].object_bytes;
	}
	KEXPECT_EQ(differ, 0);
	KEXPECT_EQ(object_bytes, st.object_bytes_inuse);
	KEXPECT_GE(st.object_bytes_inuse, ksize(p));
	KEXPECT_EQ(span_bytes, st.span_bytes_inuse);
	/* Counters only grow: what was summed after the snapshot is >=. */
	KEXPECT_GE(acquires, st.mcentral_lock_acquires);
	kfree(p);
}

KTEST(heap_stats, a_refill_takes_the_mcentral_lock)
{
	/* With nothing cached, the next allocation refills from an mcentral. */
	kmem_drain_this_cpu();
	struct kmem_stats before, after;
	kmem_get_stats(&before);
	void *p = kmalloc(1000, 0);
	KASSERT_NOT_NULL(p);
	kmem_get_stats(&after);
	KEXPECT_GT(after.mcentral_lock_acquires, before.mcentral_lock_acquires);
	KEXPECT_GE(after.mcentral_lock_contended, before.mcentral_lock_contended);
	KEXPECT_LE(after.mcentral_lock_contended, after.mcentral_lock_acquires);
	/* The statistics take the mheap lock themselves: counted. */
	KEXPECT_GT(after.mheap_lock_acquires, before.mheap_lock_acquires);
	kfree(p);
}

KTEST(heap_stats, pages_returned_counts_what_the_scavenger_gives_back)
{
	struct kmem_stats before, after;
	/* Above the least chunk: a chunk of its own, free again once it is. */
	void *big = kmalloc(MHEAP_CHUNK_MIN + (1u << 20), 0);
	KASSERT_NOT_NULL(big);
	kfree(big);
	/* Its run may wait in this CPU's page cache (the hosted build defers
	 * it to the next lock round): into the mheap, a free chunk. */
	unsigned long irq = mm_irq_save();
	mheap_pcache_drain(mm_cpu_id());
	mm_irq_restore(irq);
	kmem_get_stats(&before);
	uint64_t given = kmem_scavenge();
	kmem_get_stats(&after);
	/* An idle CPU's scavenger (kernel, more than one CPU) may give the
	 * chunk back first, or meanwhile: what left is counted once,
	 * whoever gave it. */
	uint64_t returned = after.pages_returned - before.pages_returned;
	KEXPECT_GE(returned, given / MM_PAGE_SIZE);
	KEXPECT_EQ(after.pages_held + returned, before.pages_held);
#ifdef SPANHEAP_HOSTED
	KEXPECT_EQ(returned, given / MM_PAGE_SIZE);   /* no other scavenger */
	KEXPECT_GT(given, 0);
#endif
}

/* Pages drawn as c: the characters after each line's address. */
static uint64_t count_char(const char *map, char c)
{
	uint64_t n = 0;
	size_t col = 0;
	for (; *map; map++) {
		if (*map == '\n')
			col = 0;
		else if (col++ >= 19)
			n += *map == c;
	}
	return n;
}

KTEST(heap_stats, heap_map_has_one_character_per_page)
{
	void *hold = kmalloc(100 * 1024, 0);   /* a large object on the map */
	KASSERT_NOT_NULL(hold);
	size_t need = kmem_heap_map_write(NULL, 0);
	KASSERT_GT(need, 0);
	size_t size = need * 2 + 65536;
	char *map = kmalloc(size, 0);
	KASSERT_NOT_NULL(map);
	struct kmem_stats st;
	kmem_get_stats(&st);
	size_t len = kmem_heap_map_write(map, size);
	KASSERT_LT(len, size);
	KEXPECT_EQ(map[len], 0);

	/* Lines: "0x" + 16 hex digits, a space, 1..64 page characters. */
	uint64_t pages = 0, lines = 0, bad_lines = 0;
	for (const char *l = map; *l; lines++) {
		const char *e = l;
		while (*e && *e != '\n')
			e++;
		size_t n = (size_t)(e - l);
		if (n < 20 || n > 19 + 64 || l[0] != '0' || l[1] != 'x' || l[18] != ' ')
			bad_lines++;
		else
			pages += n - 19;
		l = *e ? e + 1 : e;
	}
	KEXPECT_EQ(bad_lines, 0);
	KEXPECT_GT(lines, 0);
	KEXPECT_EQ(pages, st.pages_held);
	KEXPECT_EQ(count_char(map, '?'), 0);
	uint64_t free_chars = count_char(map, '.') + count_char(map, 'R') +
			      count_char(map, 'c');
	KEXPECT_EQ(free_chars, st.retained_bytes / MM_PAGE_SIZE);
	KEXPECT_EQ(count_char(map, 'c'), st.page_cache_bytes / MM_PAGE_SIZE);
	uint64_t large = count_char(map, 'L');
	if (!HEAP_DEBUG_MODE)   /* quarantined large objects are still 'L' */
		KEXPECT_EQ(large, st.large_bytes / MM_PAGE_SIZE);
	KEXPECT_GE(large, (100 * 1024 + size) / MM_PAGE_SIZE);
	KEXPECT_EQ(pages - free_chars - large, st.span_bytes_inuse / MM_PAGE_SIZE);
	kfree(map);
	kfree(hold);
}

/* The counts of kmem_get_stats rest on each CPU's cache words (allocations
 * are counted as a word is loaded, mm/mcache.h): the verifier checks that
 * a cache word offers only free slots of its span and sits beside its
 * span's alloc_bits word and slot addresses (used up too: kmalloc's fast
 * path loads it again from those fields, by its slot count and rule),
 * that there is none without a span, that no class holds more live
 * objects in its bitmaps than its CPUs handed out (its frees are the
 * difference: mm/mstats.c), that its tiny offset matches its tiny block
 * (TINY_NO_BLOCK with none), that no CPU is left inside a stats_seq
 * change, and (with these, the per-CPU state) that no remote free's hazard
 * pointer is left set; and that what the page map reads where there is no
 * span or leaf (mspan_none, pagemap_empty_leaf) is still zero. Each broken
 * on purpose on this CPU, then put back. */
KTEST(heap_stats, the_verifier_checks_each_cpus_cache_words)
{
	void *p = kmalloc(48, 0);
	KASSERT_NOT_NULL(p);
	struct mspan *s = mheap_span_of(p);
	KASSERT_NOT_NULL(s);
	/* A span of one word (16 KiB objects, 4 a span), whose used-up word
	 * kmalloc's fast path loads again from its cache word's fields alone,
	 * from a single free slot. */
	void *q = kmalloc(16384, 0);
	KASSERT_NOT_NULL(q);
	struct mspan *sq = mheap_span_of(q);
	KASSERT_NOT_NULL(sq);
	KASSERT_TRUE(sq->nelems <= 64);
	unsigned long irq = mm_irq_save();
	struct mcache *mc = &mcaches[mm_cpu_id()];
	unsigned spc = s->spanclass, i = (unsigned)(((uintptr_t)p - s->startaddr) / s->elemsize);
	int before = mheap_verify();
	/* p's slot (allocated) offered again, if p is in the cached word. */
	static const char not_arisen[] = "nothing: the case did not arise";
	const char *offered = not_arisen;
	if (mc->alloc[spc] == s && i / 64 == s->cache_word) {
		uint64_t saved = mc->alloc_cache[spc].free;
		mc->alloc_cache[spc].free |= 1ULL << (i % 64);
		offered = ktest_verify_rule();
		mc->alloc_cache[spc].free = saved;
	}
	/* The cached word's slot 0 one object off (kmalloc would hand out
	 * addresses of the next slots). */
	const char *shifted = not_arisen;
	if (mc->alloc[spc] == s && mc->alloc_cache[spc].free) {
		mc->alloc_cache[spc].base += s->elemsize;
		shifted = ktest_verify_rule();
		mc->alloc_cache[spc].base -= s->elemsize;
	}
	/* A cache word for a class this CPU has no span of. */
	const char *orphan = not_arisen;
	for (unsigned c = 2; c < NUM_SPAN_CLASSES && orphan == not_arisen; c++) {   /* class 0: large */
		if (mc->alloc[c] == MCACHE_NO_SPAN) {
			mc->alloc_cache[c].free = 1;
			orphan = ktest_verify_rule();
			mc->alloc_cache[c].free = 0;
		}
	}
	/* A word the cache word gives a slot too few (the fast path would
	 * never load its last slot again), or one it would load again from
	 * fewer free slots than its rule (mm/mcache.h, mcache_reload_min); and
	 * the word's slot 0 one object off with the word used up (a load from
	 * the fast path would hand out the next slots' addresses). */
	unsigned qspc = sq->spanclass;
	const char *short_word = not_arisen, *eager = not_arisen, *one_shifted = not_arisen;
	if (mc->alloc[qspc] == sq) {
		struct mcache_alloc_word *aw = &mc->alloc_cache[qspc];
		aw->slots--;
		short_word = ktest_verify_rule();
		aw->slots++;
		aw->reload_min--;
		eager = ktest_verify_rule();
		aw->reload_min++;
		uint64_t free = aw->free;
		aw->free = 0;
		aw->base += sq->elemsize;
		one_shifted = ktest_verify_rule();
		aw->base -= sq->elemsize;
		aw->free = free;
	}
	/* A word's slot count for a class this CPU has no span of. */
	const char *orphan_slots = not_arisen;
	for (unsigned c = 2; c < NUM_SPAN_CLASSES && orphan_slots == not_arisen; c++) {
		if (mc->alloc[c] == MCACHE_NO_SPAN) {
			mc->alloc_cache[c].slots = 2;
			orphan_slots = ktest_verify_rule();
			mc->alloc_cache[c].slots = 0;
		}
	}
	/* An allocation span, but holds_spans cleared (a release request
	 * would then not wait for this CPU). */
	const char *unheld = not_arisen;
	if (mc->alloc[spc] == s) {
		mc->holds_spans = 0;
		unheld = ktest_verify_rule();
		mc->holds_spans = 1;
	}
	/* A tiny offset the fast path would fit an object at with no block
	 * (or past the end of one). */
	uint32_t saved_offset = mc->tiny_offset;
	mc->tiny_offset = mc->tiny ? TINY_SIZE + 1 : 0;
	const char *tiny_off = ktest_verify_rule();
	mc->tiny_offset = saved_offset;
	/* One object fewer handed out, over every CPU, than its class has
	 * live (the statistics would count frees below zero). */
	struct kmem_class_stats cs = { 0 };
	uint64_t handed = 0;
	int class_stats_ok = kmem_get_class_stats(spc, &cs);
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++)
		handed += mcache_nmalloc(&mcaches[cpu], spc);
	uint64_t off = handed - cs.objects_inuse + 1;
	mc->nmalloc[spc] -= off;
	const char *overlive = ktest_verify_rule();
	mc->nmalloc[spc] += off;
	/* Left in the middle of a cache word change. */
	mc->stats_seq++;
	const char *odd = ktest_verify_rule();
	mc->stats_seq--;
	/* A remote free's hazard pointer left behind. */
	*mcentral_hazard_slot(mm_cpu_id()) = s;
	const char *hazard = ktest_verify_rule();
	*mcentral_hazard_slot(mm_cpu_id()) = NULL;
	/* The records a lookup reads where there is no span or no leaf
	 * written: kfree's fast path would take such a page for this CPU's. */
	mspan_none.local_cache = mc;
	const char *none_written = ktest_verify_rule();
	mspan_none.local_cache = NULL;
	pagemap_empty_leaf[PAGEMAP_LEAF_ENTRIES - 1] = (uintptr_t)s - (uintptr_t)&mspan_none;
	const char *leaf_written = ktest_verify_rule();
	pagemap_empty_leaf[PAGEMAP_LEAF_ENTRIES - 1] = 0;
	int after = mheap_verify();
	mm_irq_restore(irq);
	kfree(p);
	kfree(q);
	KEXPECT_EQ(before, 0);
	KEXPECT_EQ(class_stats_ok, 0);
	KEXPECT_RULE(offered, "cache word offers allocated slots");
	KEXPECT_RULE(shifted, "cached word %u is not the span");
	KEXPECT_RULE(orphan, "(of %u slots) but no allocation span");
	KEXPECT_RULE(short_word, "cache word says %u slots, reload from %u free");
	KEXPECT_RULE(eager, "cache word says %u slots, reload from %u free");
	KEXPECT_RULE(one_shifted, "cached word %u is not the span");
	KEXPECT_RULE(orphan_slots, "(of %u slots) but no allocation span");
	KEXPECT_RULE(unheld, "holds_spans is 0");
	KEXPECT_RULE(tiny_off, "tiny_offset %u");
	KEXPECT_RULE(overlive, "live objects in the bitmaps, but %lu handed out");
	KEXPECT_RULE(odd, "stats_seq %u is odd");
	KEXPECT_RULE(hazard, "hazard pointer %p set");
	KEXPECT_RULE(none_written, "mspan_none (%p) is written");
	KEXPECT_RULE(leaf_written, "pagemap_empty_leaf (%p) is written");
	KEXPECT_EQ(after, 0);
}
