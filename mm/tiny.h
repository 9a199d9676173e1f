/*
 * mm/tiny.h - the tiny allocator: KM_NOSCAN requests of 1..15 bytes packed
 * into 16-byte blocks (Go's tiny allocator, with explicit free). See
 * mm/tiny.c.
 */
#ifndef MM_TINY_H
#define MM_TINY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "mm/mcache.h"
#include "mm/platform.h"

/* Where a tiny object of `size` bytes would start in the current block:
 * Go's rule, 8-aligned if size % 8 == 0, else 4 if % 4, else 2 if % 2 (the
 * lowest set bit of size, capped at 8). Past TINY_SIZE: it does not fit
 * (always, with no block: tiny_offset is TINY_NO_BLOCK then). */
static inline uint32_t tiny_fit(const struct mcache *mc, size_t size)
{
	uint32_t align_mask = (1u << __builtin_ctz((unsigned)size | 8)) - 1;
	return (mc->tiny_offset + align_mask) & ~align_mask;
}

/* Hand out the object at off of the current block (interrupts off). */
static inline void *tiny_take(struct mcache *mc, uint32_t off, size_t size)
{
	void *p = (void *)(mc->tiny + off);
	mc->tiny_offset = off + (uint32_t)size;
	__atomic_store_n(mc->tiny_ends,
			 (uint16_t)(__atomic_load_n(mc->tiny_ends, __ATOMIC_RELAXED) |
				    (1u << (off + size - 1))), __ATOMIC_RELAXED);
	stat_inc(&mc->nmalloc[TINY_SPAN_CLASS]); /* tiny objects, not blocks */
	if (p == NULL)
		__builtin_unreachable();   /* lets callers drop their NULL test */
	return p;
}

/* A tiny object (1 <= size < TINY_SIZE) from this CPU's current block,
 * or NULL when it does not fit there (or there is none, or the platform
 * says the fast paths may not run): a leaf, no lock, no atomic
 * read-modify-write, in the fast paths' section. */
static inline void *tiny_alloc_fast(size_t size)
{
	unsigned long irq;
	/* MM_CPU_LOCAL_NONE has no block: tiny_fit sends it to the slow path. */
	struct mcache *mc = mm_fast_enter(&irq);
	uint32_t off = tiny_fit(mc, size);
	/* The section ends on each branch (as kmalloc_fast's, mm/malloc.c). */
	if (__builtin_expect(off + size <= TINY_SIZE, 1)) {
		void *p = tiny_take(mc, off, size);
		mm_fast_exit(irq);
		if (p == NULL)
			__builtin_unreachable();   /* a block is never at 0 */
		return p;
	}
	mm_fast_exit(irq);
	return NULL;
}

/* Every mcache starts with no block (kmalloc_init, before the heap is
 * ready). */
void tiny_init(struct mcache *mc);

/* Retire this CPU's current block and open a new one (interrupts off);
 * false when out of memory. The heap must be initialized (kmalloc_init). */
bool tiny_new_block(struct mcache *mc, unsigned cpu);

/* A tiny object, opening a new block when the current one is full; NULL
 * when out of memory. The heap must be initialized (kmalloc_init). */
static inline void *tiny_alloc(size_t size)
{
	unsigned long irq = mm_irq_save();
	unsigned cpu = mm_cpu_id();
	struct mcache *mc = &mcaches[cpu];
	/* An interrupt may have opened a block since the fast path looked. */
	uint32_t off = tiny_fit(mc, size);
	void *p = NULL;
	if (off + size <= TINY_SIZE || (off = 0, tiny_new_block(mc, cpu)))
		p = tiny_take(mc, off, size);
	mm_irq_restore(irq);
	return p;
}

/* Bit of the end byte of the tiny object at offset o of a block whose
 * end mask is ends (0 when no object ends at or after o). */
static inline uint16_t tiny_end_bit(uint16_t ends, unsigned o)
{
	unsigned rest = (unsigned)ends >> o;
	return rest ? (uint16_t)(1u << (o + (unsigned)__builtin_ctz(rest))) : 0;
}

/* Is p in this CPU's current block (mc's)? */
static inline bool tiny_in_current(const struct mcache *mc, const void *p)
{
	return mc->tiny && mc->tiny == ((uintptr_t)p & ~(uintptr_t)(TINY_SIZE - 1));
}

/* Every object of the current block was freed on this CPU: start it over
 * (interrupts off; mm/tiny.c). */
void tiny_restart(struct mcache *mc);

/* Report p, refused by tiny_free_current, as kfree's by caller. */
void tiny_free_refused(const void *p, const void *caller);

/* Free p, in this CPU's current block (interrupts off), checked (a bad
 * one is reported as kfree's by caller): recorded in the mcache only (its
 * end bit in the local mask; the block's balance and freed mask are
 * settled when it is retired), and the block starts over once every
 * object handed out from it was freed here. Refused, nothing changed, when p is not a live
 * object of the block (not one, or freed already here or elsewhere).
 * Inline in kfree_tiny_current: the commonest tiny free calls nothing. */
static inline void tiny_free_current(struct mcache *mc, const void *p, const void *caller)
{
	unsigned o = (unsigned)((uintptr_t)p & (TINY_SIZE - 1));
	uint16_t ends = __atomic_load_n(mc->tiny_ends, __ATOMIC_RELAXED);   /* ours to write */
	uint16_t bit = tiny_end_bit(ends, o);
	if (__builtin_expect(!bit || ((mc->tiny_freed_local |
				       __atomic_load_n(mc->tiny_freed, __ATOMIC_RELAXED)) & bit), 0)) {
		tiny_free_refused(p, caller);
		return;
	}
	stat_inc(&mc->tiny_nfree);
	/* Each object handed out has an end bit: all of them freed here? */
	if ((mc->tiny_freed_local |= bit) == ends)
		tiny_restart(mc);
}

/* Free p, a pointer into span s of TINY_SPAN_CLASS but not into this
 * CPU's current block (kfree's slow paths give those to tiny_free_current
 * first), on CPU `cpu` (interrupts off): into the block's freed mask and
 * balance; a bad one is reported as kfree's by caller. */
void tiny_free(struct mspan *s, const void *p, unsigned cpu, const void *caller);

/* Usable size of live tiny object p of span s (up to where it ends in
 * its block), or 0 when p is not one. */
size_t tiny_size(const struct mspan *s, const void *p);

/* Retire this CPU's current block (interrupts off): what it handed out
 * and did not see freed goes into the block's balance. */
void tiny_retire(struct mcache *mc, unsigned cpu);

#endif
