/*
 * mm/mcache.h - the per-CPU cache of spans (Go's mcache, one per CPU
 * instead of one per P). See mm/mcache.c.
 */
#ifndef MM_MCACHE_H
#define MM_MCACHE_H

#include <stddef.h>
#include <stdint.h>
#include "mm/platform.h"
#include "mm/mspan.h"

struct mcache {
	/*
	 * Everything here is touched only by its own CPU with interrupts off
	 * (no lock), except the counters, which kmem_get_stats() reads
	 * (relaxed) from anywhere, and mheap_verify()/kmem_drain_all(),
	 * which need every CPU quiescent.
	 */
	struct mspan *alloc[NUM_SPAN_CLASSES];  /* NULL: none cached yet */

	/* The tiny allocator's current 16-byte block (0: none). */
	uintptr_t tiny;
	uint32_t tiny_offset;       /* next free byte in the block */
	uint32_t tiny_handed;       /* objects handed out from it */
	uint32_t tiny_local_frees;  /* of those, freed on this CPU while current */
	uint16_t *tiny_ends;        /* the block's end-offset mask (tiny_meta) */
	int16_t *tiny_balance;      /* the block's live balance (tiny_meta) */

	/* Counters (owner-written, relaxed). Per span class: objects handed
	 * to callers and freed on this CPU (tiny objects count in
	 * TINY_SPAN_CLASS, so nmalloc[TINY_SPAN_CLASS] is the tiny
	 * allocations); large objects separately. */
	uint64_t nmalloc[NUM_SPAN_CLASSES];
	uint64_t nfree[NUM_SPAN_CLASSES];
	uint64_t large_alloc, large_free;
} __attribute__((aligned(64)));

extern struct mcache mcaches[MM_MAX_CPUS];

static inline void stat_inc(uint64_t *c)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

/* Next free object of a cached span, or NULL when its cache word is used
 * up: ctz, clear the lowest bit, mark the slot in alloc_bits. */
static inline void *mspan_alloc_fast(struct mspan *s)
{
	uint64_t c = s->alloc_cache;
	if (__builtin_expect(c == 0, 0))
		return NULL;
	unsigned i = (unsigned)__builtin_ctzll(c);
	unsigned w = s->cache_word;
	st64(&s->alloc_cache, c & (c - 1));
	st64(&s->alloc_bits[w], ld64(&s->alloc_bits[w]) | (1ULL << i));
	return (void *)(s->startaddr + (uintptr_t)(w * 64u + i) * s->elemsize);
}

/* Slow path of an allocation from span class spc on this CPU (interrupts
 * off): next word, local sweep, or a span from the mcentral. NULL when
 * out of memory. */
void *mcache_refill_alloc(struct mcache *mc, unsigned spc, unsigned cpu);
/* Allocate one object of spc on this CPU (interrupts off). */
static inline void *mcache_alloc(struct mcache *mc, unsigned spc, unsigned cpu)
{
	struct mspan *s = mc->alloc[spc];
	void *p;
	if (__builtin_expect(s != NULL, 1) && (p = mspan_alloc_fast(s)) != NULL)
		return p;
	return mcache_refill_alloc(mc, spc, cpu);
}
/* Give every cached span (and the tiny block) back (interrupts off). */
void mcache_release_all(struct mcache *mc, unsigned cpu);
/* Retire the current tiny block (interrupts off). */
void mcache_tiny_retire(struct mcache *mc, unsigned cpu);

#endif
