/*
 * mm/mcache.c - per-CPU span caches (Go's mcache; ours belongs to a CPU).
 *
 * Each CPU owns one struct mcache (mcaches[mm_cpu_id()]) holding one span
 * per span class to allocate from. Allocation takes the next free slot of
 * that span (mspan_alloc_fast: ctz on the span's alloc_cache) with
 * interrupts off and no lock and no atomic read-modify-write: only this
 * CPU writes its spans' allocation state. Interrupts stay off for the few
 * instructions of the fast path, so an interrupt handler may kmalloc on
 * the same CPU without corrupting it.
 *
 * Ownership (mimalloc's page ownership, SLUB's per-CPU partial slabs): a
 * span stays this CPU's after it stops allocating from it. A used-up
 * allocation span goes into the CPU's owned set for its class instead of
 * back to the mcentral, so frees on this CPU into it (kfree's fast path:
 * owner_cpu == this CPU) stay plain stores into free_bits, with no lock
 * and no atomic; other CPUs free into it by the remote protocol
 * (mm/mcentral.c) as before, and only the owner sweeps it. The set is
 * bounded: at most MCACHE_OWNED_PER_CLASS spans per class and
 * MCACHE_OWNED_PAGES pages per CPU; past either cap the oldest owned span
 * of the class (or the used-up span itself) goes back to its mcentral,
 * which from then on owns it (frees into it are remote again).
 *
 * Refill (out of line): when the span's cached word is used up, move to
 * the next word with free slots; when the span is used up, sweep it
 * locally and keep it if that freed at least an eighth of it; otherwise
 * it joins the owned set and the CPU takes, in order: an owned span that
 * has at least an eighth of its slots free once swept, a span from the
 * mcentral, and, out of memory, the same after giving back its owned sets
 * and having every mcentral sweep its pending spans.
 */
#include "mm/mcache.h"
#include "mm/mcentral.h"
#include "mm/mbug.h"

struct mcache mcaches[MM_MAX_CPUS];

/* Enough free slots to allocate from (an eighth of the span, at least 1). */
static bool worth_allocating(const struct mspan *s)
{
	unsigned room = s->nelems - s->alloc_count;
	return room && room >= s->nelems / 8u;
}

static void owned_unlink(struct mcache *mc, unsigned spc, struct mspan *s)
{
	MM_BUG_ON(s->list != MSPAN_ON_OWNED);
	if (s->next == s) {
		mc->owned[spc] = NULL;
	} else {
		s->prev->next = s->next;
		s->next->prev = s->prev;
		if (mc->owned[spc] == s)
			mc->owned[spc] = s->next;
	}
	s->next = s->prev = NULL;
	s->list = MSPAN_ON_NONE;
	mc->nowned[spc]--;
	mc->owned_pages -= (uint32_t)s->npages;
}

/* Give s, out of the owned set, back to its mcentral. */
static void disown(struct mcache *mc, unsigned spc, struct mspan *s)
{
	owned_unlink(mc, spc, s);
	mcentral_uncache_span(&mcentrals[spc], s);
}

/* Keep used-up span s owned (newest first), making room by giving the
 * oldest owned spans of its class back; s itself when it cannot fit. */
static void owned_keep(struct mcache *mc, unsigned spc, struct mspan *s)
{
	while (mc->owned[spc] &&
	       (mc->nowned[spc] >= MCACHE_OWNED_PER_CLASS ||
		mc->owned_pages + s->npages > MCACHE_OWNED_PAGES))
		disown(mc, spc, mc->owned[spc]->prev);
	if (mc->owned_pages + s->npages > MCACHE_OWNED_PAGES) {
		mcentral_uncache_span(&mcentrals[spc], s);
		return;
	}
	struct mspan *head = mc->owned[spc];
	if (head) {
		s->next = head;
		s->prev = head->prev;
		head->prev->next = s;
		head->prev = s;
	} else {
		s->next = s->prev = s;
	}
	s->list = MSPAN_ON_OWNED;
	mc->owned[spc] = s;
	mc->nowned[spc]++;
	mc->owned_pages += (uint32_t)s->npages;
}

/* An owned span worth allocating from (swept here), out of the set. */
static struct mspan *owned_take(struct mcache *mc, unsigned spc)
{
	struct mspan *s = mc->owned[spc];
	for (unsigned n = mc->nowned[spc]; n--; s = s->next) {
		mspan_sweep(s);
		if (worth_allocating(s)) {
			owned_unlink(mc, spc, s);
			return s;
		}
	}
	return NULL;
}

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
		struct mspan *t = owned_take(mc, spc);
		owned_keep(mc, spc, s);
		if (t) {
			mc->alloc[spc] = t;
			return mspan_alloc_fast(t);
		}
	} else if ((s = owned_take(mc, spc)) != NULL) {
		mc->alloc[spc] = s;
		return mspan_alloc_fast(s);
	}
	s = mcentral_cache_span(c, cpu);
	if (!s) {
		mcache_release_owned(mc, cpu);
		mcentral_reclaim_every_class();
		s = mcentral_cache_span(c, cpu);
		if (!s)
			return NULL;
	}
	mc->alloc[spc] = s;
	return mspan_alloc_fast(s);
}

void mcache_release_owned(struct mcache *mc, unsigned cpu)
{
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++) {
		while (mc->owned[spc]) {
			MM_BUG_ON(__atomic_load_n(&mc->owned[spc]->owner_cpu,
						  __ATOMIC_RELAXED) != (int32_t)cpu);
			disown(mc, spc, mc->owned[spc]);
		}
	}
	MM_BUG_ON(mc->owned_pages != 0);
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
	mcache_release_owned(mc, cpu);
}
