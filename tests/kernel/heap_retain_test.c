/*
 * tests/kernel/heap_retain_test.c - large objects: free chunks retained by
 * the mheap and given back by the scavenger's policy, the per-CPU page
 * caches, krealloc growing a large object in place (mm/mheap.c).
 *
 * Platform calls are counted through the mheap's own counters (ngrow:
 * chunks obtained with mm_sys_alloc, nrelease: given back with
 * mm_sys_free); retained bytes through kmem_stats and mheap.retained_pages.
 * Every test starts from a drained heap (kmem_drain_all gives every
 * retained chunk back) and ends with every object freed. Runs hosted and
 * in the kernel; the out-of-memory test needs the hosted platform's cap,
 * the several-CPU tests are one per build (threads hosted, smp_call_n in
 * the kernel).
 */
#include <stdint.h>
#include <stdbool.h>
#include "mm/kmalloc.h"
#include "mm/mheap.h"
#include "mm/mpagecache.h"
#include "mm/platform.h"
#include "tests/kernel/ktest.h"
#include "tests/kernel/heap_testlib.h"
#ifdef SPANHEAP_HOSTED
#include <pthread.h>
#else
#include "kernel/smp.h"
#include "kernel/percpu.h"
#endif

#define MIB (1024UL * 1024)
#define PAGES(n) ((size_t)(n) * MM_PAGE_SIZE)
/* Pages a large object of n pages takes: n rounded up to the platform's
 * grain (mm/platform.h, MM_LARGE_GRAIN_PAGES: 8 hosted, 1 in the kernel). */
#define GRAIN(n) (((size_t)(n) + MM_LARGE_GRAIN_PAGES - 1) / MM_LARGE_GRAIN_PAGES * \
		  MM_LARGE_GRAIN_PAGES)
/* A large object too big for the page caches: it comes from the mheap. */
#define BIG_PAGES 40
/* One chunk's worth: an object the size of the least chunk (1 MiB in the
 * kernel, 8 MiB hosted) is a chunk of its own. */
#define CHUNK_OBJ MHEAP_CHUNK_MIN

/* Are bytes [0, n) of p all equal to c? */
static __attribute__((unused)) bool all_bytes(const void *p, uint8_t c, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != c)
			return false;
	return true;
}

static uint64_t ngrow(void) { return __atomic_load_n(&mheap.ngrow, __ATOMIC_RELAXED); }
static uint64_t nrelease(void) { return __atomic_load_n(&mheap.nrelease, __ATOMIC_RELAXED); }
static uint64_t retained_chunk_bytes(void)
{
	return __atomic_load_n(&mheap.retained_pages, __ATOMIC_RELAXED) << MM_PAGE_SHIFT;
}

/* Give this CPU's page cache back to the mheap. */
static void page_cache_flush(void)
{
	unsigned long irq = mm_irq_save();
	mheap_pcache_drain(mm_cpu_id());
	mm_irq_restore(irq);
}

/* This CPU's page cache flushed, the heap verifies, and once drained it
 * holds what it held at base. */
static inline void expect_flushed_and_back(uint64_t base)
{
	page_cache_flush();
	KEXPECT_EQ(mheap_verify(), 0);
	KEXPECT_EQ(heap_drained_bytes(), base);
}

KTEST(heap_retain, freed_chunk_is_reused_without_the_platform)
{
	uint64_t base = heap_drained_bytes();
	size_t size = BIG_PAGES * MM_PAGE_SIZE;
	uint8_t *a = kmalloc(size, 0);
	KASSERT_NOT_NULL(a);
	heap_fill(a, 0xa1, size);
	kfree(a);
	/* Its pages are free again, and kept. */
	KEXPECT_GE(heap_stats().retained_bytes, size);
	uint64_t grown = ngrow(), released = nrelease();
	uint8_t *b = kmalloc(size, 0);
	KASSERT_NOT_NULL(b);
	KEXPECT_EQ(ngrow(), grown);      /* no mm_sys_alloc */
	KEXPECT_EQ(nrelease(), released);
	heap_fill(b, 0xb2, size);
	KEXPECT_TRUE(heap_check(b, 0xb2, size));
	kfree(b);
	KEXPECT_EQ(mheap_verify(), 0);
	KEXPECT_EQ(heap_drained_bytes(), base);
	KEXPECT_EQ(retained_chunk_bytes(), 0);
}

/* KM_ZERO large objects: pages fresh from a platform whose memory comes
 * zeroed (MM_SYS_ALLOC_ZEROED: hosted) are not cleared again, pages used
 * before are, whatever runs they were split from or merged into; the
 * verifier catches a run that says it is fresh but holds data. Not in
 * debug mode, whose quarantine delays the free (and which clears every
 * span as it is made). */
#if !DEBUG_HEAP
KTEST(heap_retain, zeroed_large_objects_are_cleared_when_their_pages_were_used)
{
	uint64_t base = heap_drained_bytes();
	size_t size = BIG_PAGES * MM_PAGE_SIZE;
	uint8_t *a = kzalloc(size, 0);
	KASSERT_NOT_NULL(a);
	KEXPECT_TRUE(all_bytes(a, 0, size));
	/* Cut from the first chunk made since the drain. */
	KEXPECT_EQ(mheap_span_of(a)->needzero, !MM_SYS_ALLOC_ZEROED);
	heap_fill(a, 0xa5, size);
	kfree(a);
	page_cache_flush();   /* merged into the chunk's free run */
	KEXPECT_EQ(mheap_verify(), 0);
	struct mspan *run = mheap_span_containing(a);
	KASSERT_NOT_NULL(run);
	KEXPECT_EQ(run->state, MSPAN_FREE);
	KEXPECT_EQ(run->needzero, 1);
	/* Broken on purpose: a run that holds data, said to be fresh. */
	run->needzero = 0;
	/* Seen as such, or (the kernel) as fresh pages on a platform whose
	 * memory is not zeroed. */
	KEXPECT_VERIFY_BREAKS("needzero 0, but");
	run->needzero = 1;
	KEXPECT_EQ(mheap_verify(), 0);

	uint8_t *b = kzalloc(size, 0);   /* from that run again */
	KASSERT_NOT_NULL(b);
	KEXPECT_EQ(mheap_span_of(b)->needzero, 1);
	KEXPECT_TRUE(all_bytes(b, 0, size));
	kfree(b);
	expect_flushed_and_back(base);
}
#endif

#define CHURN_MAX 160   /* 2 x a 64 MiB floor + 4, in chunks of at least 1 MiB */

KTEST(heap_retain, scavenger_keeps_retained_memory_bounded)
{
	static void *objs[CHURN_MAX];
	uint64_t base = heap_drained_bytes();
	/* Enough chunks to go past the bound, twice the target. */
	unsigned want = (unsigned)(2 * mheap_retain_target() / CHUNK_OBJ) + 4;
	KASSERT_LE(want, CHURN_MAX);
	/* In debug mode an object of the least chunk's size (red zones and
	 * trailer added) takes a chunk a page bigger, which the kernel's
	 * buddy allocator hands out as twice the size (1 MiB + 8 KiB: 2
	 * MiB): twice the room (2 CPUs in 24 MiB had 7 of 8). */
	KTEST_REQUIRE_FREE_BYTES((want + 2) * CHUNK_OBJ * (HEAP_DEBUG_MODE ? 2 : 1));
	struct kmem_stats before = heap_stats();
	unsigned n = 0;
	for (; n < want; n++) {
		objs[n] = kmalloc(CHUNK_OBJ, 0);
		if (!objs[n])
			break;
		heap_fill(objs[n], (uint8_t)n, CHUNK_OBJ);
	}
	KEXPECT_EQ(n, want);
	/* Each object's chunk: CHUNK_OBJ, more in debug mode (red zones)
	 * and with a grain of more than a page (MM_LARGE_GRAIN_PAGES). */
	uint64_t chunk_bytes = n ? PAGES(mheap_span_of(objs[0])->npages) : CHUNK_OBJ;
	uint64_t released = nrelease();
	for (unsigned i = 0; i < n; i++)
		kfree(objs[i]);
	/* The mheap's policy is under test, not the page cache's (which
	 * holds 16 MiB of these hosted): its runs go to the mheap too. */
	page_cache_flush();
	/* Every chunk came free; the policy kept at most twice its target
	 * and gave the rest back. */
	uint64_t target = mheap_retain_target();
	KEXPECT_GE(target, MM_RETAIN_MIN_BYTES);
	KEXPECT_LE(retained_chunk_bytes(), 2 * target);
	KEXPECT_GT(retained_chunk_bytes(), 0);
	KEXPECT_GT(nrelease(), released);
	struct kmem_stats after = heap_stats();
	KEXPECT_GT(after.scavenged_bytes, before.scavenged_bytes);
	/* The idle scavenger trims to the target itself. */
	kmem_scavenge_idle();
	KEXPECT_LE(retained_chunk_bytes(), target);
	KEXPECT_GT(retained_chunk_bytes(), 0);
	/* What is retained is reused: the same churn again asks the
	 * platform only for what was given back. */
	uint64_t kept = retained_chunk_bytes() / chunk_bytes, grown = ngrow();
	for (unsigned i = 0; i < kept; i++) {
		objs[i] = kmalloc(CHUNK_OBJ, 0);
		KASSERT_NOT_NULL(objs[i]);
	}
	KEXPECT_EQ(ngrow(), grown);
	for (unsigned i = 0; i < kept; i++)
		kfree(objs[i]);
	page_cache_flush();
	/* An explicit scavenge gives every retained chunk back. */
	KEXPECT_GE(kmem_scavenge(), kept * chunk_bytes);
	KEXPECT_EQ(retained_chunk_bytes(), 0);
	KEXPECT_EQ(mheap_verify(), 0);
	KEXPECT_EQ(heap_drained_bytes(), base);
}

/* The page-cache tests count exact runs: debug mode (red zones, trailers,
 * the quarantine) changes every large object's size and delays its free. */
#if !DEBUG_HEAP
KTEST(heap_retain, page_cache_serves_this_cpu_and_drains)
{
	uint64_t base = heap_drained_bytes();
	size_t size = 64 * 1024;   /* 8 pages: page-cache sized */
	void *a = kmalloc(size, 0);
	KASSERT_NOT_NULL(a);
	struct kmem_stats st = heap_stats();
	KEXPECT_EQ(st.page_cache_bytes, 0);
	kfree(a);
	st = heap_stats();
	KEXPECT_EQ(st.page_cache_bytes, size);
	KEXPECT_EQ(st.large_bytes, 0);
	/* The cached run is not an object: freeing it again is reported. */
	uint64_t bad = st.bad_frees;
	kfree(a);
	KEXPECT_EQ(heap_stats().bad_frees, bad + 1);
	KEXPECT_EQ(mheap_verify(), 0);
	/* The same size again on this CPU: the same run, no lock, no chunk. */
	uint64_t grown = ngrow();
	void *b = kmalloc(size, KM_ZERO);
	KEXPECT_EQ(b, a);
	KEXPECT_EQ(ngrow(), grown);
	KEXPECT_TRUE(all_bytes(b, 0, size));
	KEXPECT_EQ(heap_stats().page_cache_bytes, 0);
	/* The cache is bounded: free more than it holds. */
	void *objs[PCACHE_MAX_PAGES / 8 + 4];
	unsigned n = sizeof objs / sizeof objs[0];
	for (unsigned i = 0; i < n; i++) {
		objs[i] = kmalloc(size, 0);
		KASSERT_NOT_NULL(objs[i]);
	}
	for (unsigned i = 0; i < n; i++)
		kfree(objs[i]);
	KEXPECT_LE(heap_stats().page_cache_bytes, PCACHE_MAX_PAGES * MM_PAGE_SIZE);
	KEXPECT_EQ(mheap_verify(), 0);
	kfree(b);
	kmem_drain_this_cpu();
	KEXPECT_EQ(heap_stats().page_cache_bytes, 0);
	KEXPECT_EQ(mheap_verify(), 0);
	KEXPECT_EQ(heap_drained_bytes(), base);
}

/* Runs in this CPU's page cache. */
static uint64_t cached_runs_here(void)
{
	unsigned long irq = mm_irq_save();
	uint64_t n = page_caches[mm_cpu_id()].nruns;
	mm_irq_restore(irq);
	return n;
}

/* From an empty page cache, one freed run of npages pages in it: its
 * address (the object it was), NULL if the allocation failed. */
static uint8_t *cache_one_run(size_t npages)
{
	page_cache_flush();
	uint8_t *a = kmalloc(PAGES(npages), 0);
	if (!a)
		return NULL;
	kfree(a);
	KEXPECT_EQ(heap_stats().page_cache_bytes, PAGES(GRAIN(npages)));
	KEXPECT_EQ(cached_runs_here(), 1);
	return a;
}

KTEST(heap_retain, page_cache_splits_a_longer_run_and_merges_it_back)
{
	uint64_t base = heap_drained_bytes();
	uint8_t *a = cache_one_run(24);
	KASSERT_NOT_NULL(a);
	/* Two objects cut from the one run, head first: no chunk, no
	 * mheap. */
	uint64_t grown = ngrow();
	uint8_t *b = kmalloc(PAGES(8), 0);
	KASSERT_NOT_NULL(b);
	KEXPECT_EQ(b, a);
	KEXPECT_EQ(heap_stats().page_cache_bytes, PAGES(16));
	KEXPECT_EQ(ksize(b), PAGES(8));
	uint8_t *c = kmalloc(PAGES(16), 0);
	KASSERT_NOT_NULL(c);
	KEXPECT_EQ(c, a + PAGES(8));
	KEXPECT_EQ(heap_stats().page_cache_bytes, 0);
	KEXPECT_EQ(ngrow(), grown);
	heap_fill(b, 0x5b, PAGES(8));
	heap_fill(c, 0x5c, PAGES(16));
	KEXPECT_TRUE(heap_check(b, 0x5b, PAGES(8)));
	KEXPECT_EQ(mheap_verify(), 0);
	/* The halves come back and merge: one run of 24 pages again. */
	kfree(b);
	KEXPECT_EQ(cached_runs_here(), 1);
	kfree(c);
	KEXPECT_EQ(cached_runs_here(), 1);
	KEXPECT_EQ(heap_stats().page_cache_bytes, PAGES(24));
	KEXPECT_EQ(mheap_verify(), 0);
	uint8_t *d = kmalloc(PAGES(24), 0);
	KEXPECT_EQ(d, a);
	kfree(d);
	expect_flushed_and_back(base);
}

/* Each page-cache invariant mheap_verify checks, broken on purpose: the
 * verifier must say so (a check that cannot fail is no check). */
KTEST(heap_retain, the_verifier_sees_a_broken_page_cache)
{
	uint64_t base = heap_drained_bytes();
	uint8_t *a = cache_one_run(20);
	KASSERT_NOT_NULL(a);
	uint8_t *b = kmalloc(PAGES(8), 0);   /* cut from it: the rest stays */
	KASSERT_NOT_NULL(b);
	kfree(b);   /* merged back: a stash record */
	unsigned long irq = mm_irq_save();
	struct page_cache *pc = &page_caches[mm_cpu_id()];
	mm_irq_restore(irq);
	KASSERT_EQ(pc->nruns, 1);
	KASSERT_GE(pc->nspare, 1);
	KEXPECT_EQ(mheap_verify(), 0);
	struct mspan *r = pc->run[0];

	pc->pages++;   /* miscounted */
	KEXPECT_VERIFY_BREAKS("runs of %lu pages, counted");
	pc->pages--;
	pc->run[1] = r;   /* a slot past the runs in use */
	KEXPECT_VERIFY_BREAKS("slot %u %s, with");
	pc->nruns = 2, pc->pages *= 2;   /* the same run twice */
	KEXPECT_VERIFY_BREAKS("the same or adjacent runs");
	pc->run[1] = NULL, pc->nruns = 1, pc->pages /= 2;
	r->owner_cpu ^= 1;   /* another CPU's run */
	KEXPECT_VERIFY_BREAKS("page-cached run %p: class %u, owner CPU");
	r->owner_cpu ^= 1;
	pc->deferred = r, pc->deferred_pages = r->npages;   /* deferred and in a slot */
	KEXPECT_VERIFY_BREAKS("deferred run");
	pc->deferred = NULL, pc->deferred_pages = 0;
	pc->spare[0]->state = MSPAN_FREE;   /* a live record in the stash */
	KEXPECT_VERIFY_BREAKS("stash record");
	pc->spare[0]->state = MSPAN_DEAD;
	KEXPECT_EQ(mheap_verify(), 0);

	expect_flushed_and_back(base);
}

KTEST(heap_retain, page_cache_keeps_its_bounds)
{
	enum { N = 2 * PCACHE_RUNS + 8 };
	static uint8_t *objs[N];
	uint64_t base = heap_drained_bytes();
	page_cache_flush();
	/* 5-page objects (8 with the hosted grain); freeing every other one
	 * leaves runs that cannot merge: more of them than the cache has
	 * slots. */
	for (unsigned i = 0; i < N; i++) {
		objs[i] = kmalloc(PAGES(5), 0);
		KASSERT_NOT_NULL(objs[i]);
	}
	for (unsigned i = 0; i < N; i += 2)
		kfree(objs[i]);
	KEXPECT_LE(cached_runs_here(), PCACHE_RUNS);
	KEXPECT_LE(heap_stats().page_cache_bytes, PAGES(PCACHE_MAX_PAGES));
	KEXPECT_GT(heap_stats().page_cache_bytes, 0);
	KEXPECT_EQ(mheap_verify(), 0);
	for (unsigned i = 1; i < N; i += 2)
		kfree(objs[i]);
	KEXPECT_LE(cached_runs_here(), PCACHE_RUNS);
	KEXPECT_LE(heap_stats().page_cache_bytes, PAGES(PCACHE_MAX_PAGES));
	KEXPECT_EQ(mheap_verify(), 0);
	/* An object longer than a cached run may be goes to the mheap: at
	 * once, or where caches are kept across misses at this CPU's next
	 * lock round (the deferred run, below). */
	page_cache_flush();
	uint8_t *big = kmalloc(PAGES(PCACHE_MAX_RUN + 1), 0);
	KASSERT_NOT_NULL(big);
	kfree(big);
	KEXPECT_EQ(cached_runs_here(), 0);
	KEXPECT_EQ(heap_stats().page_cache_bytes,
		   MM_PCACHE_KEEP_ON_MISS ? PAGES(GRAIN(PCACHE_MAX_RUN + 1)) : 0);
	KEXPECT_EQ(mheap_verify(), 0);
	page_cache_flush();
	KEXPECT_EQ(heap_stats().page_cache_bytes, 0);
	KEXPECT_EQ(mheap_verify(), 0);
	KEXPECT_EQ(heap_drained_bytes(), base);
}

#ifdef SPANHEAP_HOSTED
/* Hosted only: it needs a 1 MiB object to be page-cache sized (the
 * kernel's cache stops at 512 KiB). */
KTEST(heap_retain, page_cache_leaves_big_chunks_to_the_mheap)
{
	uint64_t base = heap_drained_bytes();
	/* An object 2 MiB above the least chunk has a chunk of its own;
	 * freed, the chunk is retained whole. */
	size_t xsize = MHEAP_CHUNK_MIN + 2 * MIB, ysize = PAGES(PCACHE_MAX_RUN);
	uint8_t *x = kmalloc(xsize, 0);
	KASSERT_NOT_NULL(x);
	kfree(x);   /* deferred, then given back by the next miss's lock round */
	/* All of it but 1 MiB fits no other free run (a drained heap retains
	 * no chunk, and each chunk left holds spans and is no bigger than
	 * the least chunk): cut from its head; then 1 MiB, the tightest fit
	 * there is, is the rest of that chunk, and freed it goes back to the
	 * mheap (deferred), never to the page cache's runs, so that the
	 * chunk can be whole again. */
	uint8_t *z = kmalloc(xsize - ysize, 0);
	KASSERT_NOT_NULL(z);
	KEXPECT_TRUE(z == x);
	uint8_t *y = kmalloc(ysize, 0);
	KASSERT_NOT_NULL(y);
	KEXPECT_TRUE(y >= x && y < x + xsize);
	kfree(y);
	KEXPECT_EQ(cached_runs_here(), 0);
	kfree(z);
	page_cache_flush();
	KEXPECT_GE(retained_chunk_bytes(), xsize);
	KEXPECT_EQ(mheap_verify(), 0);
	KEXPECT_EQ(heap_drained_bytes(), base);
}
#endif

/* Acquisitions of the lock of this CPU's arena, where its large objects
 * come from. */
static uint64_t mheap_locks(void)
{
	return __atomic_load_n(&mheap_of_cpu(mm_cpu_id())->lock.nacquire, __ATOMIC_RELAXED);
}

/* Where caches are kept across misses, a freed run too long for the
 * cache's slots waits, as the deferred run, for this CPU's next lock
 * round, which the next such free or a miss takes anyway: one round for
 * both. */
KTEST(heap_retain, a_long_run_goes_back_in_the_next_lock_round)
{
	if (!MM_PCACHE_KEEP_ON_MISS)
		KTEST_SKIP("this platform gives the page cache back at every miss");
	uint64_t base = heap_drained_bytes();
	page_cache_flush();
	size_t big = PAGES(PCACHE_MAX_RUN + 8);
	uint8_t *a = kmalloc(big, 0), *b = kmalloc(big, 0);
	KASSERT_NOT_NULL(a);
	KASSERT_NOT_NULL(b);
	uint64_t locks = mheap_locks();
	kfree(a);
	KEXPECT_EQ(mheap_locks(), locks);
	KEXPECT_EQ(heap_stats().page_cache_bytes, big);
	locks = mheap_locks();   /* heap_stats takes it */
	kfree(b);   /* a goes back, b waits */
	KEXPECT_EQ(mheap_locks(), locks + 1);
	KEXPECT_EQ(heap_stats().page_cache_bytes, big);
	KEXPECT_EQ(mheap_verify(), 0);
	locks = mheap_locks();
	uint8_t *c = kmalloc(big, 0);   /* a miss: b goes back in its round */
	KASSERT_NOT_NULL(c);
	KEXPECT_EQ(mheap_locks(), locks + 1);
	KEXPECT_EQ(heap_stats().page_cache_bytes, 0);
	kfree(c);
	expect_flushed_and_back(base);
}

KTEST(heap_retain, page_cache_goes_back_before_the_heap_grows)
{
	uint64_t base = heap_drained_bytes();
	KASSERT_NOT_NULL(cache_one_run(8));
	/* Bigger than every free run of a drained heap (it retains no chunk,
	 * and each chunk left holds spans and is no bigger than the least
	 * chunk): it needs a new chunk, and the cache goes back first. */
	uint64_t grown = ngrow();
	uint8_t *big = kmalloc(MHEAP_CHUNK_MIN + MIB, 0);
	KASSERT_NOT_NULL(big);
	KEXPECT_GT(ngrow(), grown);
	KEXPECT_EQ(heap_stats().page_cache_bytes, 0);
	kfree(big);
	KEXPECT_EQ(mheap_verify(), 0);
	KEXPECT_EQ(heap_drained_bytes(), base);
}

KTEST(heap_retain, krealloc_grows_a_large_object_in_place)
{
	uint64_t base = heap_drained_bytes();
	size_t size = BIG_PAGES * MM_PAGE_SIZE;
	/* Taken from the head of a free run (the mheap splits the
	 * smallest run that fits): unless that run fit exactly, the pages
	 * after it are free. */
	uint8_t *a = kmalloc(size, 0);
	KASSERT_NOT_NULL(a);
	heap_fill(a, 0x3c, size);
	struct mspan *next = mheap_span_of(a + size);
	bool room = next && mspan_state_of(next) == MSPAN_FREE && next->npages >= BIG_PAGES;
	uint64_t large = heap_stats().large_bytes;
	uint8_t *b = krealloc(a, 2 * size, KM_ZERO);
	KASSERT_NOT_NULL(b);
	if (room) {
		KEXPECT_EQ(b, a);
		KEXPECT_EQ(heap_stats().large_bytes, large + size);
	} else {
		ktest_log("no free pages after the object: krealloc moved it");
	}
	KEXPECT_EQ(ksize(b), 2 * size);
	KEXPECT_TRUE(heap_check(b, 0x3c, size));
	KEXPECT_TRUE(all_bytes(b + size, 0, size));
	KEXPECT_EQ(mheap_verify(), 0);
	/* Blocked by a neighbour: moved, contents kept. */
	uint8_t *c = kmalloc(size, 0);
	KASSERT_NOT_NULL(c);
	uint8_t *d = NULL;
	if (c == b + 2 * size) {
		d = krealloc(b, 3 * size, 0);
		KASSERT_NOT_NULL(d);
		KEXPECT_NE(d, b);
		KEXPECT_TRUE(heap_check(d, 0x3c, size));
		b = d;
	}
	kfree(c);
	kfree(b);
	KEXPECT_EQ(mheap_verify(), 0);
	KEXPECT_EQ(heap_drained_bytes(), base);
}

#endif

#ifdef SPANHEAP_HOSTED
KTEST(heap_retain, out_of_memory_gives_retained_chunks_back_and_succeeds)
{
	static void *objs[6];
	uint64_t base = heap_drained_bytes();
	for (unsigned i = 0; i < 6; i++) {
		objs[i] = kmalloc(CHUNK_OBJ, 0);
		KASSERT_NOT_NULL(objs[i]);
	}
	for (unsigned i = 0; i < 6; i++)
		kfree(objs[i]);
	/* Kept as retained chunks (too big for the page cache). */
	KEXPECT_GE(heap_stats().retained_bytes, 6 * CHUNK_OBJ);
	/* The platform has 1 MiB more to give; three chunks' worth fit no
	 * retained chunk, and only fit once the retained chunks have gone
	 * back. */
	mm_host_set_sys_limit(mm_host_sys_bytes() + MIB);
	uint64_t oom = heap_stats().oom;
	void *big = kmalloc(3 * CHUNK_OBJ, 0);
	mm_host_set_sys_limit(0);
	KEXPECT_NOT_NULL(big);
	KEXPECT_EQ(heap_stats().oom, oom);
	KEXPECT_EQ(retained_chunk_bytes(), 0);
	if (big)
		heap_fill(big, 0x77, 3 * CHUNK_OBJ);
	kfree(big);
	KEXPECT_EQ(mheap_verify(), 0);
	KEXPECT_EQ(heap_drained_bytes(), base);
}

/* A platform that has less than the least chunk (MHEAP_CHUNK_MIN) to
 * give still gives a large object a chunk of its own size (512 KiB
 * here). */
KTEST(heap_retain, a_large_object_takes_a_smaller_chunk_when_the_least_is_refused)
{
	static void *objs[64];
	uint64_t base = heap_drained_bytes();
	/* The chunk this test grows needs its page-map leaf, 1 MiB from the
	 * platform, if it lands in a GiB of address space the heap has not
	 * used yet (about one run in 20 did): a probe of the same size finds
	 * where mmap puts it, and the room allows that leaf then. */
	void *probe = mm_sys_alloc(512 * 1024);
	KASSERT_NOT_NULL(probe);
	bool leaf = pagemap_l1[pagemap_pageno((uintptr_t)probe) >> PAGEMAP_LEAF_BITS] != 0;
	mm_sys_free(probe, 512 * 1024);
	mm_host_set_sys_limit(mm_host_sys_bytes() + 512 * 1024 + 64 * 1024 +
			      (leaf ? 0 : PAGEMAP_LEAF_BYTES));
	uint64_t grown = ngrow();
	unsigned n = 0;
	/* 60 pages (61 with debug mode's red zones): a 64-page chunk. */
	while (n < 64 && (objs[n] = kmalloc(PAGES(60), 0)) != NULL)
		n++;
	mm_host_set_sys_limit(0);
	KEXPECT_LT(n, 64);
	KEXPECT_GT(ngrow(), grown);
	for (unsigned i = 0; i < n; i++)
		kfree(objs[i]);
	expect_flushed_and_back(base);
}
#endif

/* ---- page caches on several CPUs ---- */
#if !DEBUG_HEAP

#define PCPU_ROUNDS 200
#define PCPU_MAX 16
static unsigned pcpu_errors[PCPU_MAX];
static unsigned pcpu_hits[PCPU_MAX];

/* One page-cache size per CPU: after the first round each allocation
 * comes back from this CPU's own cache (the run it freed, with what it
 * wrote), never another's run. */
static void page_cache_churn(unsigned id)
{
	for (unsigned r = 0; r < PCPU_ROUNDS; r++) {
		size_t size = (5 + id % 12) * MM_PAGE_SIZE;   /* 40..128 KiB */
		uint8_t *p = kmalloc(size, 0);
		if (!p) {
			pcpu_errors[id]++;
			continue;
		}
		uint8_t tag = (uint8_t)(id + 1);
		if (r >= 1 && p[0] == tag && p[size - 1] == tag)
			pcpu_hits[id]++;
		p[0] = p[size - 1] = tag;
		kfree(p);
	}
	kmem_drain_this_cpu();
}

#ifdef SPANHEAP_HOSTED
static void *page_cache_thread(void *arg)
{
	page_cache_churn((unsigned)(uintptr_t)arg);
	return NULL;
}

static unsigned run_everywhere(void)
{
	pthread_t t[4];
	unsigned n = 4;
	for (unsigned i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, page_cache_thread, (void *)(uintptr_t)i) != 0)
			return i;
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	return n;
}
#else
static void page_cache_cpu(void *arg)
{
	(void)arg;
	unsigned id = this_cpu_id();
	if (id < PCPU_MAX)
		page_cache_churn(id);
}

static unsigned run_everywhere(void)
{
	unsigned n = ncpus_online < PCPU_MAX ? ncpus_online : PCPU_MAX;
	smp_call_n(n, page_cache_cpu, NULL);
	return n;
}
#endif

KTEST(heap_retain, page_caches_on_several_cpus)
{
	uint64_t base = heap_drained_bytes();
	for (unsigned i = 0; i < PCPU_MAX; i++)
		pcpu_errors[i] = pcpu_hits[i] = 0;
	unsigned n = run_everywhere();
	KEXPECT_GE(n, 1);
	for (unsigned i = 0; i < n; i++) {
		KEXPECT_EQ(pcpu_errors[i], 0);
		/* Each round finds its own run with its own last contents:
		 * the run stayed in this CPU's cache. */
		KEXPECT_EQ(pcpu_hits[i], PCPU_ROUNDS - 1);
	}
	KEXPECT_EQ(heap_stats().page_cache_bytes, 0);
	KEXPECT_EQ(mheap_verify(), 0);
	KEXPECT_EQ(heap_drained_bytes(), base);
}
#endif
