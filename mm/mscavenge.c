/*
 * mm/mscavenge.c - retention and the scavenger (Go's retained heap and
 * its scavenger, mgcscavenge.go), over whole chunks.
 *
 * A chunk that has become one free run again is not given back at once
 * but put on its arena's retained list (oldest first, mm/mheap.c's
 * free_insert); its run stays on the free lists and the next allocation
 * that fits reuses it, already mapped and faulted in. The policy, over
 * all arenas: with T = max(MM_RETAIN_MIN_BYTES, in-use pages / 4) (in
 * use: small spans + large objects + page-cached and deferred runs), a
 * free that leaves more than 2T bytes retained gives its arena's oldest
 * retained chunks back (mm_sys_free) until at most T are, and when that is
 * not enough the other arenas' go back too before the call returns, each
 * arena's lock taken in turn once its own is let go
 * (mheap_retain_bound_locked, mheap_trim_pending);
 * kmem_scavenge_idle (an idle CPU) trims to T; kmem_scavenge,
 * kmem_drain_all and an allocation the platform refuses give every
 * retained chunk back (then the allocation is retried). An arena about to
 * grow from the platform first adopts a fitting chunk another arena
 * retains (mheap_take_retained_chunk; mm/mheap.c's adopt_chunk).
 * Free runs inside chunks that still hold spans are not given back.
 * Locks: each function says whose; none holds two arenas' locks.
 */
#include "mm/mheap.h"
#include "mm/mheap_internal.h"
#include "mm/mbug.h"
#include "mm/platform.h"

uint64_t mheap_scavenge_locked(struct mheap *h, uint64_t keep_pages)
{
	MM_HELD(&h->lock);
	uint64_t released = 0;
	while (h->retained_pages > keep_pages) {
		struct heap_chunk *c = h->retained_head;
		uintptr_t base = c->base;
		size_t npages = c->npages;
		struct mspan *s = pagemap_lookup(base);
		MM_BUG_ON(!s);
		mheap_chunk_detach(s);
		mheap_chunk_give_back(base, npages);
		h->nrelease++;
		released += npages;
	}
	h->scavenged_bytes += released << MM_PAGE_SHIFT;
	return released;
}

uint64_t mheap_retained_pages(void)
{
	uint64_t pages = 0;
	for (unsigned i = 0, n = mheap_arenas_in_use(); i < n; i++)
		pages += __atomic_load_n(&mheap_arena(i)->retained_pages, __ATOMIC_RELAXED);
	return pages;
}

/* Give h's oldest retained chunks back until all arenas retain at most
 * keep_pages pages, or h none; returns the pages given back. */
static uint64_t scavenge_share_locked(struct mheap *h, uint64_t keep_pages)
{
	uint64_t total = mheap_retained_pages();
	if (total <= keep_pages)
		return 0;
	uint64_t over = total - keep_pages;
	return mheap_scavenge_locked(h, h->retained_pages > over ? h->retained_pages - over : 0);
}

/* The policy's target in pages: max(MM_RETAIN_MIN_BYTES, in use / 4), in
 * use summed over the arenas (relaxed loads: each arena writes its counts
 * under its own lock). */
static uint64_t retain_target_pages(void)
{
	uint64_t inuse = 0;
	for (unsigned i = 0, n = mheap_arenas_in_use(); i < n; i++) {
		struct mheap *h = mheap_arena(i);
		inuse += __atomic_load_n(&h->small_pages, __ATOMIC_RELAXED) +
			 __atomic_load_n(&h->large_pages, __ATOMIC_RELAXED);
	}
	uint64_t floor = MM_RETAIN_MIN_BYTES >> MM_PAGE_SHIFT;
	return inuse / 4 > floor ? inuse / 4 : floor;
}

/* Set when a free left more than twice the target retained and its own
 * arena's chunks could not bring it down: the other arenas' chunks go back
 * in mheap_trim_pending, once no arena lock is held. */
static int trim_pending;

void mheap_retain_bound_locked(struct mheap *h)
{
	MM_HELD(&h->lock);
	uint64_t target = retain_target_pages();
	if (mheap_retained_pages() <= 2 * target)
		return;
	scavenge_share_locked(h, target);
	if (mheap_retained_pages() > 2 * target)
		__atomic_store_n(&trim_pending, 1, __ATOMIC_RELAXED);
}

uint64_t mheap_scavenge_arenas(const struct mheap *except, uint64_t keep_pages, bool keep_target)
{
	uint64_t pages = 0;
	for (unsigned i = 0; i < MHEAP_NARENAS; i++) {
		struct mheap *h = mheap_arena(i);
		if (h == except || !__atomic_load_n(&h->retained_pages, __ATOMIC_RELAXED))
			continue;
		unsigned long flags = mm_spin_lock_irqsave(&h->lock);
		pages += scavenge_share_locked(h, keep_target ? retain_target_pages() : keep_pages);
		mm_spin_unlock_irqrestore(&h->lock, flags);
	}
	return pages;
}

uint64_t mheap_retain_target(void)
{
	return retain_target_pages() << MM_PAGE_SHIFT;
}

uint64_t mheap_scavenge_to_target(void)
{
	return mheap_scavenge_arenas(NULL, 0, true) << MM_PAGE_SHIFT;
}

void mheap_trim_pending(void)
{
	if (__atomic_load_n(&trim_pending, __ATOMIC_RELAXED) &&
	    __atomic_exchange_n(&trim_pending, 0, __ATOMIC_RELAXED))
		mheap_scavenge_to_target();
}

uint64_t mheap_scavenge(uint64_t keep_bytes)
{
	return mheap_scavenge_arenas(NULL, keep_bytes >> MM_PAGE_SHIFT, false) << MM_PAGE_SHIFT;
}

uintptr_t mheap_take_retained_chunk(const struct mheap *h, size_t npages, size_t *n,
				   bool *needzero)
{
	for (unsigned i = 0, k = mheap_arenas_in_use(); i < k; i++) {
		struct mheap *o = mheap_arena(i);
		if (o == h || __atomic_load_n(&o->retained_pages, __ATOMIC_RELAXED) < npages)
			continue;
		uintptr_t base = 0;
		unsigned long flags = mm_spin_lock_irqsave(&o->lock);
		struct heap_chunk *best = NULL;
		for (struct heap_chunk *c = o->retained_head; c; c = c->rnext)
			if (c->npages >= npages && (!best || c->npages < best->npages))
				best = c;
		if (best) {
			struct mspan *s = pagemap_lookup(best->base);
			base = best->base;
			*n = best->npages;
			*needzero = s->needzero;
			mheap_chunk_detach(s);
			o->ngiven++;
		}
		mm_spin_unlock_irqrestore(&o->lock, flags);
		if (base)
			return base;
	}
	return 0;
}
