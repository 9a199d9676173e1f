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
 * never per object). Out of memory, it has every mcentral sweep its
 * pending spans (empty ones go back to the mheap) and tries once more.
 */
#include "mm/mcache.h"
#include "mm/mcentral.h"
#include "mm/mbug.h"

struct mcache mcaches[MM_MAX_CPUS];

void *mcache_refill_alloc(struct mcache *mc, unsigned spc, unsigned cpu)
{
	struct mspan *s = mc->alloc[spc];
	struct mcentral *c = &mcentrals[spc];

	if (s) {
		MM_BUG_ON(__atomic_load_n(&s->owner_cpu, __ATOMIC_RELAXED) != (int32_t)cpu);
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
		mcentral_reclaim_every_class();
		s = mcentral_cache_span(c, cpu);
		if (!s)
			return NULL;
	}
	mc->alloc[spc] = s;
	return mspan_alloc_fast(s);
}

void mcache_release_all(struct mcache *mc, unsigned cpu)
{
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++) {
		struct mspan *s = mc->alloc[spc];
		if (s) {
			MM_BUG_ON(__atomic_load_n(&s->owner_cpu, __ATOMIC_RELAXED) != (int32_t)cpu);
			mc->alloc[spc] = NULL;
			mcentral_uncache_span(&mcentrals[spc], s);
		}
	}
}
