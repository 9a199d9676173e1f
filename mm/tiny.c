/*
 * mm/tiny.c - the tiny allocator (Go's, with explicit free).
 *
 * KM_NOSCAN requests of 1..15 bytes are packed into the CPU's current
 * 16-byte block (aligned 8 if the size is a multiple of 8, else 4, else
 * 2), which is an object of the dedicated span class TINY_SPAN_CLASS
 * (16-byte, noscan; ordinary 16-byte requests use the scan class, so a
 * free knows what it has). With explicit free a block is reclaimed only
 * when every tiny object in it is freed: each block has a balance in its
 * span's tiny_meta (allocated by the mheap with the span). Each block also
 * records where its objects end (`ends`, one bit per byte, written by the
 * allocating CPU only), which gives ksize() of a tiny object exactly and
 * counts the objects handed out (one end bit each). While the block is
 * this CPU's current block, the CPU records its own frees in its mcache
 * (their end bits, no atomics); frees from elsewhere decrement the balance
 * atomically; when the block is retired the CPU adds (handed out - freed
 * locally, the two masks' popcounts) to it. Whoever brings a retired
 * block's balance to 0 frees the block (mcache_free).
 *
 * Double frees: each object is named by its end bit. A free on the
 * block's CPU while the block is current sets the bit in the mcache
 * (tiny_freed_local, plain); any other free sets it in the block's
 * `freed` mask with an atomic OR, and finding it set is a double free
 * (reported, the balance untouched). Either kind checks both masks it can
 * see. At retirement the local bits are ORed into `freed`; a bit found in
 * both (a local free and a free from elsewhere of the same object, which
 * neither could see at the time) is reported then and counted once. A
 * restart finds such frees in `freed` too (tiny_restart), and a free from
 * elsewhere that meets a restart sees it (tiny_free). mm/tiny.pml models
 * all of this; docs/HEAP.md ("Tiny objects") says what it checks.
 *
 * A current block whose every object was freed on its CPU (its local
 * mask equals `ends`) starts over (tiny_restart): the next objects are
 * packed from its first byte again, instead of a new block being opened
 * while this one waits to be retired (what it saved: docs/HEAP.md, "Tiny
 * objects").
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

/* Second frees found in this CPU's current block (twice: their end bits,
 * each object freed on this CPU and elsewhere, which neither could see):
 * reported once, their count undone, and their decrements of the balance
 * (made or to come) cancelled when the block is retired (tiny_undone). A
 * restart that added them back at once could bring the balance of its
 * current block to 0 before such a decrement, and whoever made it would
 * give the block back with its next objects live (mm/tiny.pml). */
static void tiny_found_twice(struct mcache *mc, uint16_t twice, const char *why)
{
	unsigned n = (unsigned)mm_popcount64(twice);
	uint64_t *nfree = &mc->tiny_nfree;
	__atomic_store_n(nfree, __atomic_load_n(nfree, __ATOMIC_RELAXED) - n, __ATOMIC_RELAXED);
	mc->tiny_undone = (uint16_t)(mc->tiny_undone + n);
	mm_bad_pointer("kfree", why, (void *)mc->tiny, mheap_span_of((void *)mc->tiny), NULL);
}

void tiny_retire(struct mcache *mc, unsigned cpu)
{
	if (!mc->tiny)
		return;
	uintptr_t block = mc->tiny;
	struct mspan *s = mheap_span_of((void *)block);
	uint16_t local = mc->tiny_freed_local;
	uint16_t twice = local ? __atomic_fetch_or(mc->tiny_freed, local, __ATOMIC_ACQ_REL) & local : 0;
	if (twice)
		tiny_found_twice(mc, twice, "double free of a tiny object (one free on its CPU, "
				 "one elsewhere; found when its block was retired)");
	/* Handed out (an end bit each), less those freed here, plus the
	 * second frees from elsewhere whose decrements are to be cancelled. */
	int16_t live = (int16_t)(mm_popcount64(__atomic_load_n(mc->tiny_ends, __ATOMIC_RELAXED)) -
				 mm_popcount64(local) + mc->tiny_undone);
	int16_t left = __atomic_add_fetch(mc->tiny_balance, live, __ATOMIC_ACQ_REL);
	mc->tiny = 0;
	mc->tiny_offset = TINY_NO_BLOCK;
	mc->tiny_freed_local = 0;
	mc->tiny_undone = 0;
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
	mc->tiny_freed_local = 0;
	mc->tiny_ends = &s->tiny->ends[blk];
	mc->tiny_freed = &s->tiny->freed[blk];
	mc->tiny_balance = &s->tiny->balance[blk];
	__atomic_store_n(mc->tiny_ends, 0, __ATOMIC_RELAXED);
	__atomic_store_n(mc->tiny_freed, 0, __ATOMIC_RELAXED);
	return true;
}

void tiny_restart(struct mcache *mc)
{
	/* The end bits first, then the freed mask in one exchange, in this
	 * order for every CPU: a free from elsewhere that comes after finds
	 * no object to free, and one that read an end bit before either has
	 * its bit taken by the exchange or finds the end bit gone after its
	 * fetch_or (tiny_free). A plain load of the mask, skipping the
	 * exchange when it reads 0, halves a tiny kmalloc+kfree pair
	 * natively, but x86 may then read the mask before the store above is
	 * seen, and such a free would be counted in the block's next
	 * objects. */
	__atomic_store_n(mc->tiny_ends, 0, __ATOMIC_RELAXED);
	uint16_t twice = __atomic_exchange_n(mc->tiny_freed, 0, __ATOMIC_SEQ_CST);
	if (twice)
		tiny_found_twice(mc, twice, "double free of a tiny object (one free on its CPU, "
				 "one elsewhere; found when its block started over)");
	mc->tiny_offset = 0;
	mc->tiny_freed_local = 0;
}

void tiny_free_refused(const void *p, const void *caller)
{
	mm_bad_pointer("kfree", "double free of a tiny object", p, mheap_span_of(p), caller);
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
	if (__atomic_fetch_or(&s->tiny->freed[blk], bit, __ATOMIC_SEQ_CST) & bit) {
		mm_bad_pointer("kfree", "double free of a tiny object", p, s, caller);
		return;
	}
	/* The block may have started over since its end bit was read: its
	 * CPU freed every object in it, this one too, so this is a second
	 * free. Whoever clears the freed bit owns it: the restart (its
	 * exchange took it, counted it undone and reported it; the decrement
	 * below cancels that) or this free (reported here, nothing counted).
	 * The restart clears the end bits before its exchange, and this load
	 * follows the fetch_or: one of the two sees the other (unless an
	 * object handed out since ends there too: a free racing with the
	 * reuse of its slot, which no check tells from a free of the new
	 * object). Found by mm/tiny.pml: without it the block was given back
	 * with a live object in it. */
	if (!(__atomic_load_n(&s->tiny->ends[blk], __ATOMIC_SEQ_CST) & bit) &&
	    (__atomic_fetch_and(&s->tiny->freed[blk], (uint16_t)~bit, __ATOMIC_SEQ_CST) & bit)) {
		mm_bad_pointer("kfree", "double free of a tiny object (its block started over)",
			       p, s, caller);
		return;
	}
	stat_inc(&mc->tiny_nfree);
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
