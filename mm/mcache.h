/*
 * mm/mcache.h - the per-CPU cache of spans (Go's mcache, one per CPU
 * instead of one per P). See mm/mcache.c.
 */
#ifndef MM_MCACHE_H
#define MM_MCACHE_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include "mm/platform.h"
#include "mm/mspan.h"

/* What allocation from span class spc needs, in 32 bytes (two classes
 * a cache line): the free slots of word cache_word of the allocation
 * span's alloc_bits that allocation hands out next, one bit each (Go's
 * allocCache, kept in the mcache so that other CPUs may read it:
 * kmem_get_stats); where that alloc_bits word is; the address of its slot
 * 0; the object size; and what kmalloc's fast path needs to load the word
 * again when it is used up (mcache_reload_fast_x4): its slot count, the
 * free slots that make a reload worth it there, and how many it loads.
 * free is 0 when used up or when there is no span, so the fast path tests
 * nothing else (the part of Go's emptymspan, a span with no free slot
 * standing for none). slots is 0 when there is no allocation span; while
 * it is not, every field names the span's word (cache_place in
 * mm/mcache.c), free or not. */
struct mcache_alloc_word {
	uint64_t free;
	uint64_t *alloc_word;   /* mspan_alloc_word(alloc[spc], alloc[spc]->cache_word) */
	uintptr_t base;         /* alloc[spc]->startaddr + cache_word * 64 * elemsize */
	uint32_t elemsize;
	uint8_t slots;          /* mspan_word_slots(alloc[spc], cache_word); 0: no span */
	uint8_t reload_min;     /* mcache_reload_min() */
	uint8_t reload_max;     /* mcache_reload_max() */
	uint8_t pad;
};

struct mcache {
	/*
	 * Everything here is touched only by its own CPU with interrupts off
	 * (no lock), except the counters, which kmem_get_stats() reads
	 * (relaxed) from anywhere, and mheap_verify()/kmem_drain_all(),
	 * which need every CPU quiescent.
	 */
	/* Per class: the allocation span's cached word (above). */
	struct mcache_alloc_word alloc_cache[NUM_SPAN_CLASSES];
	/* The allocation span per class; MCACHE_NO_SPAN when there is none. */
	struct mspan *alloc[NUM_SPAN_CLASSES];
	/* Spans this CPU still owns but does not allocate from, per class,
	 * each a circular list through the spans' next/prev, newest first
	 * (mm/mcache.c): the partial set (with room, local or remote frees
	 * since they went full; at most MCACHE_OWNED_PER_CLASS spans, and at most
	 * MCACHE_OWNED_PAGES pages over all classes) and the full set (used
	 * up as of their last sweep; not capped). */
	struct mspan *owned[NUM_SPAN_CLASSES];
	struct mspan *full[NUM_SPAN_CLASSES];
	uint8_t nowned[NUM_SPAN_CLASSES];
	uint32_t nfull[NUM_SPAN_CLASSES];
	uint32_t owned_pages;   /* of the partial sets */

	/* The tiny allocator's current 16-byte block (0: none), kept here
	 * with the rest of the CPU's state; mm/tiny.c owns these fields. */
	uintptr_t tiny;
	uint32_t tiny_offset;       /* next free byte in the block; TINY_NO_BLOCK
	                             * without one, where nothing fits */
	uint16_t tiny_freed_local;  /* end bits (as tiny_meta.ends) of the objects
	                             * freed on this CPU while it is current */
	uint16_t tiny_undone;       /* second frees from elsewhere found when it
	                             * started over: their decrements of its
	                             * balance are cancelled at retirement */
	uint16_t *tiny_ends;        /* the block's end-offset mask (tiny_meta) */
	uint16_t *tiny_freed;       /* the block's freed mask (tiny_meta) */
	int16_t *tiny_balance;      /* the block's live balance (tiny_meta) */

	/* Counters (owner-written, relaxed). Per span class: objects handed
	 * to callers on this CPU (tiny objects count in TINY_SPAN_CLASS, so
	 * nmalloc[TINY_SPAN_CLASS] is the tiny allocations); large objects
	 * separately. nmalloc of every other class is counted in bulk (Go's
	 * way): a cache word's slots as it is loaded, those left unused
	 * taken off as it is dropped, so the objects handed out are nmalloc -
	 * popcount(alloc_cache.free), which mcache_nmalloc reads; stats_seq
	 * (a sequence count, odd while the owner changes the two together)
	 * makes that read exact. Frees of small objects are not counted at
	 * all: the statistics take them as nmalloc less the objects live in
	 * the bitmaps (mm/mstats.c). Tiny objects' frees are counted, per
	 * free, in tiny_nfree (a tiny object is no slot). */
	uint64_t nmalloc[NUM_SPAN_CLASSES];
	uint64_t tiny_nfree;
	uint32_t stats_seq;
	uint64_t large_alloc, large_free;
	/* The last kmem_release_request this CPU answered, and whether it
	 * holds spans an answer would give back: set at its refills, cleared
	 * when it gives everything back (mm/malloc.c). Owner-written,
	 * read (relaxed) by a CPU whose allocation failed. */
	uint32_t pressure_seen;
	uint8_t holds_spans;
} __attribute__((aligned(64)));

extern struct mcache mcaches[MM_MAX_CPUS];

/* The CPU whose kfree fast path frees into s (its local_cache), or -1:
 * for reports and tests. */
static inline int mspan_local_cpu(const struct mspan *s)
{
	const struct mcache *mc = __atomic_load_n(&s->local_cache, __ATOMIC_RELAXED);
	return mc == MSPAN_NOT_LOCAL ? -1 : (int)(mc - mcaches);
}

/* tiny_offset with no tiny block: past its end, so the tiny fast path's
 * fit test fails with no test of tiny (mm/tiny.h). */
#define TINY_NO_BLOCK (TINY_SIZE + 1)

/* No allocation span (the cache word is then 0). */
#define MCACHE_NO_SPAN ((struct mspan *)NULL)

/* Caps of a CPU's owned set (mm/mcache.c): spans per class, and pages
 * over all classes (MM_OWNED_MAX_BYTES, mm/platform.h: 4 MiB by default
 * and in the kernel, 8 MiB hosted). */
#define MCACHE_OWNED_PER_CLASS 64u
#define MCACHE_OWNED_PAGES ((uint32_t)(MM_OWNED_MAX_BYTES >> MM_PAGE_SHIFT))

/* Count one in an owner-written counter that other CPUs read (relaxed):
 * the platform's way (mm/platform.h; on x86-64 one add to memory). */
static inline void stat_inc(uint64_t *c)
{
	mm_platform_counter_inc(c);
}

_Static_assert(sizeof(struct mcache_alloc_word) == 32, "4 x 8 bytes: mcache_alloc_word_x4");

/* &mc->alloc_cache[spc] from spc * 4: the byte offset is that times 8,
 * one scaled index on x86, where spc itself would need a shift and an
 * add (what size_to_class_times8 gives for the scan class of a size). */
static inline struct mcache_alloc_word *mcache_alloc_word_x4(struct mcache *mc,
							      uintptr_t spc_x4)
{
	return (struct mcache_alloc_word *)((char *)mc->alloc_cache + spc_x4 * 8);
}

/* An object of span class spc (given as spc * 4) from the span this CPU
 * caches, or NULL (none cached, or its cache word used up): ctz of the
 * cache word, its lowest bit cleared, the slot marked in its alloc_bits
 * word. The span record is not read. No counter: the slot was counted
 * when the word was loaded. Interrupts off; owner only. */
static inline void *mcache_alloc_fast_x4(struct mcache *mc, uintptr_t spc_x4)
{
	struct mcache_alloc_word *aw = mcache_alloc_word_x4(mc, spc_x4);
	uint64_t c = aw->free;
	uintptr_t i;
	if (__builtin_expect(!mm_platform_first_bit64(c, &i), 0))
		return NULL;
	__atomic_store_n(&aw->free, c & (c - 1), __ATOMIC_RELAXED);
	st64(aw->alloc_word, ld64(aw->alloc_word) | (1ULL << i));
	/* A 32-bit product (i < 64, elemsize <= 32 KiB): one imul from memory. */
	void *p = (void *)(aw->base + (uint32_t)i * aw->elemsize);
	if (p == NULL)
		__builtin_unreachable();   /* lets callers drop their NULL test */
	return p;
}

/* The same from span class spc. */
static inline void *mcache_alloc_fast(struct mcache *mc, unsigned spc)
{
	return mcache_alloc_fast_x4(mc, (uintptr_t)spc * 4);
}

/* Class spc's cache word becomes c (0: none), and nmalloc changes by
 * `counted` slots (those of c counted as handed out, less those of the
 * word it replaces, left unused). The bulk count of nmalloc, inside a
 * stats_seq section so that mcache_nmalloc never sees one change without
 * the other; a seqlock without fences (the data stores are releases, the
 * reader's loads acquires): whoever sees a new value sees the odd count
 * before it. The tiny class counts objects, not blocks (mm/tiny.h): its
 * words are not counted. Owner only, interrupts off. */
static inline __attribute__((always_inline)) void mcache_set_word(struct mcache *mc, unsigned spc,
								  uint64_t c, int64_t counted)
{
	uint32_t seq = mc->stats_seq;
	__atomic_store_n(&mc->stats_seq, seq + 1, __ATOMIC_RELAXED);
	if (spc != TINY_SPAN_CLASS)
		__atomic_store_n(&mc->nmalloc[spc], mc->nmalloc[spc] + (uint64_t)counted,
				 __ATOMIC_RELEASE);
	__atomic_store_n(&mc->alloc_cache[spc].free, c, __ATOMIC_RELEASE);
	__atomic_store_n(&mc->stats_seq, seq + 2, __ATOMIC_RELEASE);
}

/* The same with the slots counted: those of `counted` (c and the slot
 * handed out of it) less those of `old`, the word c replaces. */
static inline __attribute__((always_inline)) void mcache_count_word(struct mcache *mc,
								    unsigned spc, uint64_t old,
								    uint64_t c, uint64_t counted)
{
	mcache_set_word(mc, spc, c,
			(int64_t)mm_popcount64(counted) - (old ? (int64_t)mm_popcount64(old) : 0));
}

/* What kmalloc's fast path loads again (mcache_reload_fast_x4), from a
 * used-up word of `slots` slots of a span of nelems objects:
 *  - a span of one word (64 objects or fewer: the classes from 128 bytes
 *    up), when a quarter of it is free again (the refill's rule,
 *    mspan_reload_min): a pair loop in a span of few objects
 *    needs that every few allocations;
 *  - a word of a longer span only when all of its slots are free again:
 *    a pair loop's every 64 allocations (the kernel's 16-byte pair 60.1 ->
 *    58.6 instructions). Where some are still in use, the refill mostly
 *    moves on to the next word (alloc-test: 27 500 of 34 600 refills), and
 *    a reload tried there with the quarter rule took alloc-test's
 *    mispredicted branches up 16 %;
 *  - from a span of at most MCACHE_NEAR_SPAN_OBJS objects (the classes
 *    from 2 KiB up), only the lowest MCACHE_NEAR_SLOTS free slots, so that
 *    a malloc+free pair keeps reusing a few hot objects: loading all of
 *    them walked the pair through the whole span (40 KiB to 80 KiB), and
 *    each new object's first write missed L1 (pair-4096 under cachegrind:
 *    a D1 write miss per pair before, none after, for 11 instructions more
 *    a pair). The refill proper still loads whole words. */
#define MCACHE_NEAR_SPAN_OBJS 32u
#define MCACHE_NEAR_SLOTS 4u

static inline unsigned mcache_reload_min(unsigned nelems, unsigned slots)
{
	return nelems <= 64 ? mspan_reload_min(slots) : slots;
}

static inline unsigned mcache_reload_max(unsigned nelems)
{
	return nelems <= MCACHE_NEAR_SPAN_OBJS ? MCACHE_NEAR_SLOTS : 64;
}

/* The cache word of span class spc (given as spc * 4), found used up in
 * this same section, loaded again from its alloc_bits word when this CPU
 * freed enough of its slots since (reload_min, above), at most reload_max
 * of them, and its first slot handed out; else NULL (the refill proper
 * then: mcache_refill_alloc). From the cache word's own fields, without
 * the span record and without a call, so that kmalloc's fast path does it
 * in its section. The caller tests slots first (0: no span). Not the tiny
 * class (its words are not counted here). Interrupts off; owner only. */
static inline __attribute__((always_inline)) void *mcache_reload_fast_x4(struct mcache *mc,
									 uintptr_t spc_x4)
{
	struct mcache_alloc_word *aw = mcache_alloc_word_x4(mc, spc_x4);
	unsigned slots = aw->slots;
	uintptr_t i;
	uint64_t c = ~ld64(aw->alloc_word) & mspan_slots_mask(slots);
	unsigned n = mm_popcount64(c);
	if (n < aw->reload_min)   /* at least 1 */
		return NULL;
	if (n > aw->reload_max) {   /* reload_max is MCACHE_NEAR_SLOTS (or 64) */
		uint64_t rest = c;
		for (unsigned k = 0; k < MCACHE_NEAR_SLOTS; k++)
			rest &= rest - 1;   /* the lowest slot off */
		c ^= rest;
		n = MCACHE_NEAR_SLOTS;
	}
	if (!mm_platform_first_bit64(c, &i))
		return NULL;   /* not reached: n > 0 */
	unsigned spc = (unsigned)(spc_x4 / 4);
	if (spc == TINY_SPAN_CLASS)
		__builtin_unreachable();   /* not the tiny class: no test in the count */
	mcache_set_word(mc, spc, c & (c - 1), n);
	st64(aw->alloc_word, ld64(aw->alloc_word) | (1ULL << i));
	void *p = (void *)(aw->base + (uint32_t)i * aw->elemsize);
	if (p == NULL)
		__builtin_unreachable();   /* as mcache_alloc_fast_x4's */
	return p;
}

/* Objects of span class spc handed out on mc's CPU so far (tiny
 * objects for the tiny class), read from any CPU: exact, whatever that
 * CPU is doing. */
uint64_t mcache_nmalloc(const struct mcache *mc, unsigned spc);

/* Slow path of an allocation from span class spc on this CPU (interrupts
 * off): the same or the next word, local sweep, or a span from the
 * mcentral. NULL when out of memory. The heap must be initialized
 * (kmalloc_init), and the class's cache word found used up in this same
 * section (mcache_alloc looks; a word looked at before the section began
 * may have been refilled by an interrupt since: mm/platform.h,
 * MM_FAST_TEXT). */
void *mcache_refill_alloc(struct mcache *mc, unsigned spc, unsigned cpu);

/* Allocate one object of spc on this CPU (interrupts off). */
static inline void *mcache_alloc(struct mcache *mc, unsigned spc, unsigned cpu)
{
	void *p = mcache_alloc_fast(mc, spc);
	if (__builtin_expect(p != NULL, 1))
		return p;
	return mcache_refill_alloc(mc, spc, cpu);
}

/* Free object i (at p) of small span s on this CPU (interrupts off): a
 * plain store into alloc_bits if this CPU owns s (a full owned span moves
 * to the partial set), else the remote protocol (mcentral_free). False,
 * and reported as a bad kfree of p by caller, if the object is not live. */
bool mcache_free(struct mspan *s, unsigned i, unsigned cpu, const void *p, const void *caller);

/* Give every owned span (the allocation spans and the owned sets) back
 * to its mcentral, and pass on what is on this CPU's notice stack
 * (interrupts off). The tiny block is the tiny allocator's: tiny_retire()
 * it first. */
void mcache_release_all(struct mcache *mc, unsigned cpu);
/* Give back the owned sets only, and pass on the notice stack
 * (interrupts off; memory pressure). */
void mcache_release_owned(struct mcache *mc, unsigned cpu);

#endif
