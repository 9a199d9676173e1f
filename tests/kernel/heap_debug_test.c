/*
 * tests/kernel/heap_debug_test.c - the heap's debug mode (make
 * DEBUG_HEAP=1, mm/mdebug.c): every bug it is meant to catch is committed
 * here on purpose, and the report is checked field by field (kind, object,
 * sizes, bytes overwritten, call sites), then the heap must still verify.
 * Built only in debug mode; kernel and hosted.
 */
#include "mm/mdebug.h"
#if DEBUG_HEAP
#include <stdint.h>
#include <stdbool.h>
#include "tests/kernel/ktest.h"
#include "mm/kmalloc.h"
#include "lib/string.h"

static struct kmem_debug_stats dstats(void)
{
	struct kmem_debug_stats st;
	kmem_debug_get_stats(&st);
	return st;
}

static struct kmem_debug_report last(void)
{
	struct kmem_debug_report r;
	kmem_debug_last_report(&r);
	return r;
}

/* A call site inside function fn (return addresses land a little past
 * the call instruction; test functions are short). */
static bool site_in(const void *site, void (*fn)(void))
{
	uintptr_t s = (uintptr_t)site, f = (uintptr_t)fn;
	return s > f && s < f + 4096;
}

/* Stores the compiler may not drop or move (the object is "dead"). */
static void poke(void *p, size_t off, uint8_t v)
{
	*(volatile uint8_t *)((uint8_t *)p + off) = v;
}
static uint8_t peek(const void *p, size_t off)
{
	return *(const volatile uint8_t *)((const uint8_t *)p + off);
}

KTEST(heap_debug, use_after_free_write_caught_by_quarantine)
{
	kmem_debug_flush_quarantine();
	struct kmem_debug_stats before = dstats();
	uint8_t *p = kmalloc(64, 0);
	KASSERT_NOT_NULL(p);
	kfree(p);
	KEXPECT_EQ(dstats().quarantine_objs, 1);
	poke(p, 5, 'X');       /* use after free */
	poke(p, 6, 'Y');
	kmem_debug_flush_quarantine();
	struct kmem_debug_stats after = dstats();
	KEXPECT_EQ(after.use_after_free, before.use_after_free + 1);
	KEXPECT_EQ(after.overflow, before.overflow);
	struct kmem_debug_report r = last();
	KEXPECT_EQ(r.bug, KMEM_BUG_USE_AFTER_FREE);
	KEXPECT_EQ((uintptr_t)r.object, (uintptr_t)p);
	KEXPECT_EQ(r.size, 64);
	KEXPECT_NE(r.sizeclass, 0);
	KEXPECT_GE(r.objsize, 64 + KMEM_REDZONE_MIN + KMEM_TRAILER_SIZE);
	KEXPECT_EQ(r.nbytes, 2);
	KEXPECT_EQ(r.first_offset, 5);
	KEXPECT_EQ(r.last_offset, 6);
	KEXPECT_TRUE(site_in(r.alloc_site, ktest_fn_heap_debug_use_after_free_write_caught_by_quarantine));
	KEXPECT_TRUE(site_in(r.free_site, ktest_fn_heap_debug_use_after_free_write_caught_by_quarantine));
	KEXPECT_LT((uintptr_t)r.alloc_site, (uintptr_t)r.free_site);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_debug, use_after_free_write_caught_on_reuse)
{
	/* The object leaves the quarantine intact, then is written through
	 * the stale pointer, then handed out again: kmalloc finds it. */
	enum { N = 4096 };
	static void *got[N];
	uint8_t *p = kmalloc(200, 0);
	KASSERT_NOT_NULL(p);
	kfree(p);
	kmem_debug_flush_quarantine();
	struct kmem_debug_stats before = dstats();
	poke(p, 0, 0);
	poke(p, 150, 0);
	poke(p, 199, 0);
	int n = 0, found = -1;
	for (; n < N && found < 0; n++) {
		got[n] = kmalloc(200, 0);
		if (!got[n])
			break;
		if (got[n] == p)
			found = n;
	}
	ktest_log("object came back after %d allocations", n);
	KEXPECT_GE(found, 0);
	struct kmem_debug_stats after = dstats();
	KEXPECT_EQ(after.use_after_free, before.use_after_free + (found >= 0 ? 1 : 0));
	struct kmem_debug_report r = last();
	if (found >= 0) {
		KEXPECT_EQ(r.bug, KMEM_BUG_USE_AFTER_FREE);
		KEXPECT_EQ((uintptr_t)r.object, (uintptr_t)p);
		KEXPECT_EQ(r.nbytes, 3);
		KEXPECT_EQ(r.first_offset, 0);
		KEXPECT_EQ(r.last_offset, 199);
		KEXPECT_TRUE(site_in(r.free_site, ktest_fn_heap_debug_use_after_free_write_caught_on_reuse));
		KEXPECT_TRUE(site_in(r.caller, ktest_fn_heap_debug_use_after_free_write_caught_on_reuse));
	}
	for (int i = 0; i < n; i++)
		kfree(got[i]);
	kmem_debug_flush_quarantine();
	KEXPECT_EQ(dstats().use_after_free, after.use_after_free);
	KEXPECT_EQ(mheap_verify(), 0);
}

/* Write `by` bytes past the end of a `size`-byte object, free it, check. */
static void overflow_by(size_t size, size_t by, void (*fn)(void))
{
	struct kmem_debug_stats before = dstats();
	uint8_t *p = kmalloc(size, 0);
	KASSERT_NOT_NULL(p);
	memset(p, 0x11, size);             /* every byte of the object: fine */
	for (size_t i = 0; i < by; i++)
		poke(p, size + i, 0x11);   /* the overflow */
	KEXPECT_EQ(dstats().overflow, before.overflow);   /* found on kfree */
	kfree(p);
	struct kmem_debug_stats after = dstats();
	KEXPECT_EQ(after.overflow, before.overflow + 1);
	KEXPECT_EQ(after.use_after_free, before.use_after_free);
	struct kmem_debug_report r = last();
	KEXPECT_EQ(r.bug, KMEM_BUG_OVERFLOW);
	KEXPECT_EQ((uintptr_t)r.object, (uintptr_t)p);
	KEXPECT_EQ(r.size, size);
	KEXPECT_EQ(r.nbytes, by);
	KEXPECT_EQ(r.first_offset, size);
	KEXPECT_EQ(r.last_offset, size + by - 1);
	(void)fn;   /* the calls are made here */
	KEXPECT_TRUE(site_in(r.alloc_site, (void (*)(void))overflow_by));
	KEXPECT_TRUE(site_in(r.caller, (void (*)(void))overflow_by));
	KEXPECT_LT((uintptr_t)r.alloc_site, (uintptr_t)r.caller);
	kmem_debug_flush_quarantine();
	/* Freed (and poisoned) normally after the report: nothing else. */
	KEXPECT_EQ(dstats().use_after_free, before.use_after_free);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_debug, overflow_by_one_byte)
{
	overflow_by(64, 1, ktest_fn_heap_debug_overflow_by_one_byte);
}

KTEST(heap_debug, overflow_by_17_bytes)
{
	overflow_by(64, 17, ktest_fn_heap_debug_overflow_by_17_bytes);
}

KTEST(heap_debug, overflow_of_odd_sizes_and_large_objects)
{
	overflow_by(1, 3, ktest_fn_heap_debug_overflow_of_odd_sizes_and_large_objects);
	overflow_by(1000, 32, ktest_fn_heap_debug_overflow_of_odd_sizes_and_large_objects);
	overflow_by(40000, 5, ktest_fn_heap_debug_overflow_of_odd_sizes_and_large_objects);
	KEXPECT_EQ(last().sizeclass, 0);   /* the 40000-byte one is large */
}

KTEST(heap_debug, double_free_reported_and_ignored)
{
	struct kmem_stats hs0;
	kmem_get_stats(&hs0);
	struct kmem_debug_stats before = dstats();
	uint8_t *p = kmalloc(100, 0);
	KASSERT_NOT_NULL(p);
	kfree(p);
	kfree(p);   /* double free, while the first is in quarantine */
	struct kmem_debug_stats after = dstats();
	KEXPECT_EQ(after.double_free, before.double_free + 1);
	struct kmem_debug_report r = last();
	KEXPECT_EQ(r.bug, KMEM_BUG_DOUBLE_FREE);
	KEXPECT_EQ((uintptr_t)r.object, (uintptr_t)p);
	KEXPECT_EQ(r.size, 100);
	KEXPECT_TRUE(site_in(r.alloc_site, ktest_fn_heap_debug_double_free_reported_and_ignored));
	KEXPECT_TRUE(site_in(r.free_site, ktest_fn_heap_debug_double_free_reported_and_ignored));
	KEXPECT_TRUE(site_in(r.caller, ktest_fn_heap_debug_double_free_reported_and_ignored));
	KEXPECT_LT((uintptr_t)r.free_site, (uintptr_t)r.caller);   /* first free, then second */
	struct kmem_stats hs1;
	kmem_get_stats(&hs1);
	KEXPECT_EQ(hs1.bad_frees, hs0.bad_frees + 1);
	/* ksize of the freed object: reported, 0. */
	KEXPECT_EQ(ksize(p), 0);
	KEXPECT_EQ(dstats().freed_access, before.freed_access + 1);
	kmem_debug_flush_quarantine();
	/* After the quarantine let it go, the heap's own check reports it. */
	kfree(p);
	kmem_get_stats(&hs1);
	KEXPECT_EQ(hs1.bad_frees, hs0.bad_frees + 3);
	KEXPECT_EQ(dstats().use_after_free, before.use_after_free);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_debug, ksize_poison_and_fill_patterns)
{
	uint8_t *p = kmalloc(100, 0);
	KASSERT_NOT_NULL(p);
	KEXPECT_EQ(ksize(p), 100);
	KEXPECT_EQ(peek(p, 0), KMEM_POISON_ALLOC);
	KEXPECT_EQ(peek(p, 99), KMEM_POISON_ALLOC);
	KEXPECT_EQ(peek(p, 100), KMEM_POISON_REDZONE);
	KEXPECT_EQ(peek(p, 100 + KMEM_REDZONE_MIN - 1), KMEM_POISON_REDZONE);
	memset(p, 0x22, 100);
	kfree(p);
	KEXPECT_EQ(peek(p, 0), KMEM_POISON_FREE);
	KEXPECT_EQ(peek(p, 99), KMEM_POISON_FREE);
	KEXPECT_EQ(peek(p, 100), KMEM_POISON_FREE);
	uint8_t *z = kzalloc(50, 0);
	KASSERT_NOT_NULL(z);
	KEXPECT_EQ(ksize(z), 50);
	for (int i = 0; i < 50; i++)
		KASSERT_EQ(z[i], 0);
	void *e = kmalloc(0, 0);
	KASSERT_NOT_NULL(e);
	KEXPECT_EQ(ksize(e), 0);
	kfree(z);
	kfree(e);
	/* Alignment promises hold in debug mode too. */
	void *a = kmalloc(4096, 0);
	KASSERT_NOT_NULL(a);
	KEXPECT_EQ((uintptr_t)a % 4096, 0);
	void *b = kmalloc_aligned(40, 256, 0);
	KASSERT_NOT_NULL(b);
	KEXPECT_EQ((uintptr_t)b % 256, 0);
	KEXPECT_EQ(ksize(b), 40);
	kfree(a);
	kfree(b);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_debug, krealloc_moves_red_zone)
{
	struct kmem_debug_stats before = dstats();
	uint8_t *p = kmalloc(10, 0);
	KASSERT_NOT_NULL(p);
	for (int i = 0; i < 10; i++)
		p[i] = (uint8_t)i;
	uint8_t *q = krealloc(p, 20, 0);      /* fits in place */
	KASSERT_NOT_NULL(q);
	KEXPECT_EQ(ksize(q), 20);
	uint8_t *r = krealloc(q, 3000, 0);    /* moves */
	KASSERT_NOT_NULL(r);
	KEXPECT_EQ(ksize(r), 3000);
	for (int i = 0; i < 10; i++)
		KEXPECT_EQ(r[i], i);
	memset(r, 1, 3000);
	KEXPECT_EQ(dstats().overflow, before.overflow);
	poke(r, 3000, 7);                      /* one past the new end */
	kfree(r);
	KEXPECT_EQ(dstats().overflow, before.overflow + 1);
	KEXPECT_EQ(last().first_offset, 3000);
	KEXPECT_EQ(last().size, 3000);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_debug, clean_churn_reports_nothing)
{
	enum { SLOTS = 256, OPS = 20000 };
	static uint8_t *slot[SLOTS];
	static size_t len[SLOTS];
	struct kmem_debug_stats before = dstats();
	struct ktest_rng rng;
	ktest_rng_seed(&rng, 0xdeb6);
	unsigned bad = 0;
	for (int op = 0; op < OPS; op++) {
		unsigned i = (unsigned)ktest_rng_below(&rng, SLOTS);
		if (slot[i]) {
			for (size_t k = 0; k < len[i]; k++)
				bad += slot[i][k] != (uint8_t)(i + k);
			kfree(slot[i]);
			slot[i] = NULL;
			continue;
		}
		len[i] = (size_t)ktest_rng_below(&rng, ktest_rng_below(&rng, 8) ? 600 : 70000);
		slot[i] = kmalloc(len[i], ktest_rng_below(&rng, 2) ? KM_NOSCAN : 0);
		KASSERT_NOT_NULL(slot[i]);
		for (size_t k = 0; k < len[i]; k++)   /* every byte it may use */
			slot[i][k] = (uint8_t)(i + k);
	}
	for (int i = 0; i < SLOTS; i++) {
		kfree(slot[i]);
		slot[i] = NULL;
	}
	kmem_debug_flush_quarantine();
	struct kmem_debug_stats after = dstats();
	KEXPECT_EQ(bad, 0);
	KEXPECT_EQ(after.use_after_free, before.use_after_free);
	KEXPECT_EQ(after.overflow, before.overflow);
	KEXPECT_EQ(after.double_free, before.double_free);
	KEXPECT_GT(after.released, before.released);
	KEXPECT_EQ(after.quarantine_objs, 0);
	KEXPECT_EQ(mheap_verify(), 0);
}

#endif /* DEBUG_HEAP */
