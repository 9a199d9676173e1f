/*
 * mm/mcache.c - per-CPU span caches (Go's mcache; ours belongs to a CPU).
 *
 * Each CPU owns one struct mcache (mcaches[mm_cpu_id()]) holding one span
 * per span class. Allocation takes the next free slot of that span
 * (mspan_alloc_fast: ctz on the span's alloc_cache) with interrupts off and
 * no lock and no atomic read-modify-write: only this CPU writes its
 * cached spans' allocation state. Interrupts stay off for the few
 * instructions of the fast path, so an interrupt handler may kmalloc on the
 * same CPU without corrupting it.
 *
 * When the span's cached word is used up, the refill path (here, out of
 * line) moves to the next word with free slots; when the span is used up,
 * it sweeps it locally (frees recorded since the last sweep become free
 * slots) and keeps it if that freed at least an eighth of it; otherwise it
 * gives the span to its mcentral and takes another one (a lock per span,
 * never per object).
 */
#include "mm/mcache.h"
#include "mm/mcentral.h"
#include "mm/malloc_internal.h"

struct mcache mcaches[MM_MAX_CPUS];

void *mcache_refill_alloc(struct mcache *mc, unsigned spc, unsigned cpu)
{
	struct mspan *s = mc->alloc[spc];
	struct mcentral *c = &mcentrals[spc];

	if (!mheap_ready())
		kmalloc_init();
	if (s) {
		if (mspan_next_cache_word(s))
			return mspan_alloc_fast(s);
		unsigned freed = mspan_sweep(s);
		if (freed && freed >= s->nelems / 8u)
			return mspan_alloc_fast(s);
		mc->alloc[spc] = NULL;
		mcentral_uncache_span(c, s);
	}
	s = mcentral_cache_span(c, cpu);
	if (!s) {
		/* Out of memory: sweep what other classes have pending (empty
		 * spans go back to the mheap) and try once more. */
		kmem_reclaim();
		s = mcentral_cache_span(c, cpu);
		if (!s)
			return NULL;
	}
	mc->alloc[spc] = s;
	return mspan_alloc_fast(s);
}

void mcache_tiny_retire(struct mcache *mc, unsigned cpu)
{
	if (!mc->tiny)
		return;
	uintptr_t block = mc->tiny;
	int16_t live = (int16_t)(mc->tiny_handed - mc->tiny_local_frees);
	int16_t left = __atomic_add_fetch(mc->tiny_balance, live, __ATOMIC_ACQ_REL);
	mc->tiny = 0;
	mc->tiny_offset = 0;
	mc->tiny_handed = 0;
	mc->tiny_local_frees = 0;
	mc->tiny_ends = NULL;
	mc->tiny_balance = NULL;
	if (left == 0)
		kfree_block(block, cpu);
}

void mcache_release_all(struct mcache *mc, unsigned cpu)
{
	mcache_tiny_retire(mc, cpu);
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++) {
		struct mspan *s = mc->alloc[spc];
		if (s) {
			mc->alloc[spc] = NULL;
			mcentral_uncache_span(&mcentrals[spc], s);
		}
	}
}
