/*
 * mm/tiny.c - the tiny allocator (Go's, with explicit free).
 *
 * KM_NOSCAN requests of 1..15 bytes are packed into the CPU's current
 * 16-byte block (aligned 8 if the size is a multiple of 8, else 4, else
 * 2), which is an object of the dedicated span class TINY_SPAN_CLASS
 * (16-byte, noscan; ordinary 16-byte requests use the scan class, so a
 * free knows what it has). With explicit free a block is reclaimed only
 * when every tiny object in it is freed: each block has a balance in its
 * span's tiny_meta (allocated by the mheap with the span). While the block
 * is this CPU's current block, the CPU counts objects handed out and
 * freed locally in its mcache (no atomics); frees from elsewhere decrement
 * the balance atomically; when the block is retired the CPU adds (handed
 * out - freed locally) to it. Whoever brings a retired block's balance to
 * 0 frees the block (mcache_free). Each block also records where its
 * objects end (one bit per byte, written by the allocating CPU only),
 * which gives ksize() of a tiny object exactly.
 *
 * Double frees: each object is named by its end bit. A free on the
 * block's CPU while the block is current sets the bit in the mcache
 * (tiny_freed_local, plain); any other free sets it in the block's
 * `freed` mask with an atomic OR, and finding it set is a double free
 * (reported, the balance untouched). Either kind checks both masks it can
 * see. At retirement the local bits are ORed into `freed`; a bit found in
 * both (a local free and a free from elsewhere of the same object, which
 * neither could see at the time) is reported then and counted once.
 *
 * A current block whose every object was freed on its CPU starts over
 * (tiny_restart): the next objects are packed from its first byte again,
 * instead of a new block being opened while this one waits to be retired
 * (with the current-block test first on kfree's slow paths: 2 x tiny 8 B + 2
 * frees, 564 -> 388 instructions).
 */
#include "mm/tiny.h"
#include "mm/badptr.h"
#include "mm/bitops.h"
#include "mm/mbug.h"
#include "mm/mheap.h"

void tiny_init(struct mcache *mc)
{
	mc->tiny_offset = TINY_NO_BLOCK;
}

void tiny_retire(struct mcache *mc, unsigned cpu)
{
	if (!mc->tiny)
		return;
	uintptr_t block = mc->tiny;
	struct mspan *s = mheap_span_of((void *)block);
	uint16_t local = mc->tiny_freed_local;
	uint16_t twice = local ? __atomic_fetch_or(mc->tiny_freed, local, __ATOMIC_ACQ_REL) & local : 0;
	int16_t live = (int16_t)(mc->tiny_handed - mc->tiny_local_frees +
				 (unsigned)mm_popcount64(twice));
	if (twice) {
		/* The free from elsewhere was counted; count it undone. */
		uint64_t *nfree = &mc->nfree[TINY_SPAN_CLASS];
		__atomic_store_n(nfree, __atomic_load_n(nfree, __ATOMIC_RELAXED) -
				 (unsigned)mm_popcount64(twice), __ATOMIC_RELAXED);
		mm_bad_pointer("kfree", "double free of a tiny object (one free on its CPU, one "
			       "elsewhere; found when its block was retired)",
			       (void *)block, s, NULL);
	}
	int16_t left = __atomic_add_fetch(mc->tiny_balance, live, __ATOMIC_ACQ_REL);
	mc->tiny = 0;
	mc->tiny_offset = TINY_NO_BLOCK;
	mc->tiny_handed = 0;
	mc->tiny_local_frees = 0;
	mc->tiny_freed_local = 0;
	mc->tiny_ends = NULL;
	mc->tiny_freed = NULL;
	mc->tiny_balance = NULL;
	if (left == 0) {
		unsigned blk = (unsigned)((block - s->startaddr) / TINY_SIZE);
		mcache_free(s, blk, cpu, (void *)block, NULL);
	}
}

bool tiny_new_block(struct mcache *mc, unsigned cpu)
{
	tiny_retire(mc, cpu);
	void *b = mcache_alloc(mc, TINY_SPAN_CLASS, cpu);
	if (!b)
		return false;
	struct mspan *s = mheap_span_of(b);
	MM_BUG_ON(s->spanclass != TINY_SPAN_CLASS || !s->tiny);
	unsigned blk = (unsigned)(((uintptr_t)b - s->startaddr) / TINY_SIZE);
	mc->tiny = (uintptr_t)b;
	mc->tiny_offset = 0;
	mc->tiny_handed = 0;
	mc->tiny_local_frees = 0;
	mc->tiny_freed_local = 0;
	mc->tiny_ends = &s->tiny->ends[blk];
	mc->tiny_freed = &s->tiny->freed[blk];
	mc->tiny_balance = &s->tiny->balance[blk];
	__atomic_store_n(mc->tiny_ends, 0, __ATOMIC_RELAXED);
	__atomic_store_n(mc->tiny_freed, 0, __ATOMIC_RELAXED);
	return true;
}

/* Free tiny object p of this CPU's current block (interrupts off): only
 * recorded in the mcache (its end bit, a count); the block's balance and
 * freed mask are settled when it is retired. False (nothing changed) when
 * p is not a live object of the current block (not one, or freed already
 * here or elsewhere). */
static bool tiny_free_local(struct mcache *mc, const void *p)
{
	unsigned o = (unsigned)((uintptr_t)p & (TINY_SIZE - 1));
	uint16_t bit = tiny_end_bit(__atomic_load_n(mc->tiny_ends, __ATOMIC_RELAXED), o);
	if (!bit || ((mc->tiny_freed_local |
		      __atomic_load_n(mc->tiny_freed, __ATOMIC_RELAXED)) & bit))
		return false;
	mc->tiny_freed_local |= bit;
	mc->tiny_local_frees++;
	stat_inc(&mc->nfree[TINY_SPAN_CLASS]);
	return true;
}

/* Every object of the current block was freed on this CPU: empty it for
 * reuse from its start. A free from elsewhere recorded meanwhile can only
 * be the second free of one of them: reported, and its count undone (as
 * tiny_retire does). The end bits go first, so a free from elsewhere that
 * comes after finds no object to free (or one handed out since). */
static void tiny_restart(struct mcache *mc)
{
	__atomic_store_n(mc->tiny_ends, 0, __ATOMIC_RELAXED);
	uint16_t twice = __atomic_exchange_n(mc->tiny_freed, 0, __ATOMIC_ACQ_REL);
	if (twice) {
		unsigned n = (unsigned)mm_popcount64(twice);
		uint64_t *nfree = &mc->nfree[TINY_SPAN_CLASS];
		__atomic_store_n(nfree, __atomic_load_n(nfree, __ATOMIC_RELAXED) - n,
				 __ATOMIC_RELAXED);
		__atomic_add_fetch(mc->tiny_balance, (int16_t)n, __ATOMIC_ACQ_REL);
		mm_bad_pointer("kfree", "double free of a tiny object (one free on its CPU, one "
			       "elsewhere; found when its block started over)",
			       (void *)mc->tiny, mheap_span_of((void *)mc->tiny), NULL);
	}
	mc->tiny_offset = 0;
	mc->tiny_handed = 0;
	mc->tiny_local_frees = 0;
	mc->tiny_freed_local = 0;
}

void tiny_free_current(struct mcache *mc, const void *p, const void *caller)
{
	if (!tiny_free_local(mc, p))
		mm_bad_pointer("kfree", "double free of a tiny object", p,
			       mheap_span_of(p), caller);
	else if (mc->tiny_local_frees == mc->tiny_handed)
		tiny_restart(mc);
}

void tiny_free(struct mspan *s, const void *p, unsigned cpu, const void *caller)
{
	uintptr_t off = (uintptr_t)p - s->startaddr;
	unsigned blk = (unsigned)(off / TINY_SIZE), o = (unsigned)(off % TINY_SIZE);
	uintptr_t block = s->startaddr + (uintptr_t)blk * TINY_SIZE;

	if (blk >= s->nelems || !mspan_obj_live(s, blk)) {
		mm_bad_pointer("kfree", "tiny object in a free block (double free?)", p, s, caller);
		return;
	}
	uint16_t bit = tiny_end_bit(__atomic_load_n(&s->tiny->ends[blk], __ATOMIC_RELAXED), o);
	if (!bit) {
		mm_bad_pointer("kfree", "not a tiny object", p, s, caller);
		return;
	}
	struct mcache *mc = &mcaches[cpu];
	if (__atomic_fetch_or(&s->tiny->freed[blk], bit, __ATOMIC_ACQ_REL) & bit) {
		mm_bad_pointer("kfree", "double free of a tiny object", p, s, caller);
		return;
	}
	stat_inc(&mc->nfree[TINY_SPAN_CLASS]);
	if (__atomic_sub_fetch(&s->tiny->balance[blk], 1, __ATOMIC_ACQ_REL) == 0)
		mcache_free(s, blk, cpu, (void *)block, caller);
}

size_t tiny_size(const struct mspan *s, const void *p)
{
	uintptr_t off = (uintptr_t)p - s->startaddr;
	unsigned blk = (unsigned)(off / TINY_SIZE), o = (unsigned)(off % TINY_SIZE);
	uint16_t ends = blk < s->nelems && mspan_obj_live(s, blk) ?
		__atomic_load_n(&s->tiny->ends[blk], __ATOMIC_RELAXED) : 0;
	if (!(ends >> o))
		return 0;
	return (size_t)__builtin_ctz((unsigned)ends >> o) + 1;
}
