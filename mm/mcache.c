/*
 * mm/mcache.c - per-CPU span caches (Go's mcache; ours belongs to a CPU).
 *
 * Each CPU owns one struct mcache (mcaches[mm_cpu_id()]) holding one span
 * per span class to allocate from. Allocation takes the next free slot of
 * that span (mcache_alloc_fast: ctz on the class's cache word) with
 * interrupts off and no lock and no atomic read-modify-write: only this
 * CPU writes its spans' allocation state. Interrupts stay off for the few
 * instructions of the fast path, so an interrupt handler may kmalloc on
 * the same CPU without corrupting it.
 *
 * Ownership (mimalloc's page ownership, SLUB's per-CPU partial slabs): a
 * span stays this CPU's after it stops allocating from it, so frees on
 * this CPU into it stay plain stores into alloc_bits, with no lock and no
 * atomic; other CPUs free into it by the remote protocol (mm/mcentral.c),
 * and only the owner sweeps it. A CPU's spans of a class are:
 *   - the allocation span (mc->alloc);
 *   - the partial set (mc->owned): spans with room (local frees since
 *     they went full, or remote ones not yet swept); at most
 *     MCACHE_OWNED_PER_CLASS spans per class and
 *     MCACHE_OWNED_PAGES pages over all classes; past either cap the
 *     oldest goes back to its mcentral (from then on frees into it are
 *     remote, and other CPUs may allocate from it);
 *   - the full set (mc->full): spans used up as of their last sweep (fewer
 *     free slots than a refill needs, refill_min), not capped, never
 *     scanned. They hold no free memory to speak of until frees come, and
 *     each free brings its span back into view: a local one finds
 *     local_cache == MSPAN_NOT_LOCAL, leaves kfree's fast path and moves
 *     the span to the partial set (mcache_free); a remote one puts it on
 *     this CPU's notice stack (mm/mcentral.c), which the CPU empties when
 *     its partial set has no span worth taking (take_notices).
 * kfree's fast path frees into spans whose local_cache is this CPU's
 * mcache: the allocation span and the partial set (tiny spans never:
 * mm/tiny.c); a free into a full one takes the slow path once.
 *
 * Refill (out of line): when the span's cached word is used up, load it
 * again if this CPU freed a quarter of its slots meanwhile (a pair reuses
 * the same hot slots; kmalloc's fast path mostly does it itself,
 * mcache_reload_fast_x4), else move to the next word with free slots;
 * when the span is used up, sweep it locally and keep it if it has refill_min
 * free slots (local frees since its words were loaded, and remote ones);
 * otherwise it joins the full set and the CPU takes, in order: a partial
 * span with refill_min slots free once swept, the oldest first (spans
 * found with fewer go to the full set), the same after emptying its
 * notice stack (not before: a span left on the stack takes no push for
 * the remote frees that come meanwhile; docs/HEAP.md, "Owned spans"), a
 * span from the mcentral, and, out of memory, the same after giving back
 * its owned sets and notices (mcache_release_owned) and having every
 * mcentral sweep its pending spans.
 */
#include "mm/mcache.h"
#include "mm/mcentral.h"
#include "mm/badptr.h"
#include "mm/bitops.h"
#include "mm/mbug.h"

struct mcache mcaches[MM_MAX_CPUS];
/* MM_CPU_LOCAL_NONE (mm/platform.h): nobody's mcache, never written. Its
 * cache words are 0 and it has no tiny block, so kmalloc's fast paths
 * miss on it, and it is no span's local_cache, so kfree's does too. */
struct mcache mm_cpu_local_none = { .tiny_offset = TINY_NO_BLOCK };

/* The free slots that make a span worth a refill: an eighth of it, but
 * for spans of few objects (under 64) up to half of it or 8 slots, so that
 * a refill is not spent on a slot or two (larson's 8-1000 byte objects:
 * 40 -> 36 ns an operation). */
static unsigned refill_min(const struct mspan *s)
{
	unsigned eighth = s->nelems / 8u;
	unsigned few = s->nelems / 2u < 8u ? s->nelems / 2u : 8u;
	unsigned m = eighth > few ? eighth : few;
	return m ? m : 1;
}

static bool worth_allocating(const struct mspan *s)
{
	return (unsigned)(s->nelems - s->alloc_count) >= refill_min(s);
}

/* Circular lists through the spans' next/prev, newest at *head. */
static void ring_push(struct mspan **head, struct mspan *s)
{
	struct mspan *h = *head;
	if (h) {
		s->next = h;
		s->prev = h->prev;
		h->prev->next = s;
		h->prev = s;
	} else {
		s->next = s->prev = s;
	}
	*head = s;
}

static void ring_remove(struct mspan **head, struct mspan *s)
{
	if (s->next == s) {
		*head = NULL;
	} else {
		s->prev->next = s->next;
		s->next->prev = s->prev;
		if (*head == s)
			*head = s->next;
	}
	s->next = s->prev = NULL;
}

/* Take s off whichever owned set holds it. */
static void owned_unlink(struct mcache *mc, struct mspan *s)
{
	unsigned spc = s->spanclass;
	if (s->list == MSPAN_ON_OWNED) {
		ring_remove(&mc->owned[spc], s);
		mc->nowned[spc]--;
		mc->owned_pages -= (uint32_t)s->npages;
	} else {
		MM_BUG_ON(s->list != MSPAN_ON_OWNED_FULL);
		ring_remove(&mc->full[spc], s);
		mc->nfull[spc]--;
	}
	s->list = MSPAN_ON_NONE;
	__atomic_store_n(&s->local_cache, MSPAN_NOT_LOCAL, __ATOMIC_RELAXED);
}

/* kfree's fast path may free into s on this CPU from now on. Not a tiny
 * span: its objects are no slots, and their frees go through tiny_free
 * (so the fast path has no tiny test). */
static void make_local(struct mcache *mc, struct mspan *s)
{
	if (s->spanclass == TINY_SPAN_CLASS)
		return;
	__atomic_store_n(&s->local_cache, mc, __ATOMIC_RELAXED);
}

/* Give s, out of its owned set, back to its mcentral. */
static void disown(struct mcache *mc, struct mspan *s)
{
	owned_unlink(mc, s);
	mcentral_uncache_span(&mcentrals[s->spanclass], s);
}

/* s (on no list) joins the full set. */
static void keep_full(struct mcache *mc, struct mspan *s)
{
	ring_push(&mc->full[s->spanclass], s);
	s->list = MSPAN_ON_OWNED_FULL;
	mc->nfull[s->spanclass]++;
	__atomic_store_n(&s->local_cache, MSPAN_NOT_LOCAL, __ATOMIC_RELAXED);
}

/* s (on no list) joins the partial set, newest first, making room by
 * giving the oldest partial spans back; s itself when it cannot fit. */
static void keep_partial(struct mcache *mc, struct mspan *s)
{
	unsigned spc = s->spanclass;
	while (mc->owned[spc] &&
	       (mc->nowned[spc] >= MCACHE_OWNED_PER_CLASS ||
		mc->owned_pages + s->npages > MCACHE_OWNED_PAGES))
		disown(mc, mc->owned[spc]->prev);
	if (mc->owned_pages + s->npages > MCACHE_OWNED_PAGES) {
		mcentral_uncache_span(&mcentrals[spc], s);
		return;
	}
	ring_push(&mc->owned[spc], s);
	s->list = MSPAN_ON_OWNED;
	mc->nowned[spc]++;
	mc->owned_pages += (uint32_t)s->npages;
	make_local(mc, s);
}

/* A full span got a free: into the partial set, where refills look. */
static void unfull(struct mcache *mc, struct mspan *s)
{
	owned_unlink(mc, s);
	keep_partial(mc, s);
}

/* A partial span worth allocating from (swept here), out of the set;
 * the ones found without room enough go to the full set. */
static struct mspan *owned_take(struct mcache *mc, unsigned spc)
{
	struct mspan *s;
	while (mc->owned[spc] != NULL) {
		s = mc->owned[spc]->prev;   /* the oldest: frees had longest to come */
		owned_unlink(mc, s);
		mspan_sweep(s);
		if (worth_allocating(s))
			return s;
		keep_full(mc, s);
	}
	return NULL;
}

/* Empty this CPU's notice stack (mm/mcentral.c): an owned span on it got
 * remote frees, so a full one moves to the partial set; a span this CPU
 * no longer owns is passed on to where its owner will look. */
static void take_notices(struct mcache *mc, unsigned cpu)
{
	struct mspan *s = mcentral_take_notices(cpu);
	while (s) {
		struct mspan *next = s->pending_next;   /* before the flag drops */
		if (__atomic_load_n(&s->owner_cpu, __ATOMIC_RELAXED) == (int32_t)cpu) {
			mcentral_notice_done(s);
			if (s->list == MSPAN_ON_OWNED_FULL)
				unfull(mc, s);
		} else {
			mcentral_route_pending(s);
		}
		s = next;
	}
}

/* ------------------------------------------------- cache word, counts */

/* Class spc's cache names word s->cache_word of s, its allocation span:
 * where its alloc_bits word is, its slot 0, the object size, and what the
 * fast path's reload needs (the word's slots, its rule and its cap). */
static inline __attribute__((always_inline)) void cache_place(struct mcache *mc, unsigned spc,
								 const struct mspan *s)
{
	struct mcache_alloc_word *aw = &mc->alloc_cache[spc];
	aw->alloc_word = mspan_alloc_word(s, s->cache_word);
	aw->base = s->startaddr + (uintptr_t)s->cache_word * 64 * s->elemsize;
	aw->elemsize = s->elemsize;
	aw->slots = (uint8_t)mspan_word_slots(s, s->cache_word);
	aw->reload_min = (uint8_t)mcache_reload_min(s->nelems, aw->slots);
	aw->reload_max = (uint8_t)mcache_reload_max(s->nelems);
}

/* Class spc has no allocation span any more (its cache word is 0). */
static void cache_unplace(struct mcache *mc, unsigned spc)
{
	mc->alloc[spc] = MCACHE_NO_SPAN;
	mc->alloc_cache[spc].slots = 0;
}

/* Every refill ends here: c (not 0), the free slots of the word the
 * cache is placed at, replaces the used-up cache word (0), counted, and
 * its first slot is handed out, as mcache_alloc_fast would (the slot's
 * alloc bit set), without loading c back. */
static inline __attribute__((always_inline)) void *cache_load_take(struct mcache *mc, unsigned spc,
								     uint64_t c)
{
	struct mcache_alloc_word *aw = &mc->alloc_cache[spc];
	uintptr_t i;
	MM_BUG_ON(aw->free != 0);
	if (!mm_platform_first_bit64(c, &i))
		MM_BUG_ON(1);   /* a refill's word has a free slot */
	mcache_count_word(mc, spc, 0, c & (c - 1), c);
	st64(aw->alloc_word, ld64(aw->alloc_word) | (1ULL << i));
	return (void *)(aw->base + i * aw->elemsize);
}

uint64_t mcache_nmalloc(const struct mcache *mc, unsigned spc)
{
	for (;;) {
		uint32_t seq = __atomic_load_n(&mc->stats_seq, __ATOMIC_ACQUIRE);
		uint64_t n = __atomic_load_n(&mc->nmalloc[spc], __ATOMIC_ACQUIRE);
		uint64_t c = __atomic_load_n(&mc->alloc_cache[spc].free, __ATOMIC_ACQUIRE);
		if (!(seq & 1) && __atomic_load_n(&mc->stats_seq, __ATOMIC_RELAXED) == seq)
			return spc == TINY_SPAN_CLASS ? n : n - (uint64_t)mm_popcount64(c);
		mm_cpu_relax();
	}
}

/* s, swept, with a free slot, becomes the allocation span of its class. */
static void *alloc_from(struct mcache *mc, struct mspan *s)
{
	unsigned spc = s->spanclass;
	mc->alloc[spc] = s;
	make_local(mc, s);
	uint64_t c = mspan_first_cache_word(s);
	cache_place(mc, spc, s);
	return cache_load_take(mc, spc, c);
}

/* The rest of a refill (mcache_refill_alloc): s (the allocation span,
 * or MCACHE_NO_SPAN) has no free slot after its cache word; sweep it,
 * else the owned sets and the mcentral. */
static __attribute__((noinline)) void *refill_next(struct mcache *mc, unsigned spc,
						   unsigned cpu, struct mspan *s)
{
	if (!mc->holds_spans)
		__atomic_store_n(&mc->holds_spans, 1, __ATOMIC_RELAXED);
	if (s != MCACHE_NO_SPAN) {
		mspan_sweep(s);
		if (worth_allocating(s)) {
			uint64_t c = mspan_first_cache_word(s);
			cache_place(mc, spc, s);
			return cache_load_take(mc, spc, c);
		}
		cache_unplace(mc, spc);
		keep_full(mc, s);
	}
	if ((s = owned_take(mc, spc)) != NULL)
		return alloc_from(mc, s);
	take_notices(mc, cpu);
	if ((s = owned_take(mc, spc)) != NULL)
		return alloc_from(mc, s);
	s = mcentral_cache_span(&mcentrals[spc], cpu);
	if (!s) {
		mcache_release_owned(mc, cpu);
		mcentral_reclaim_every_class();
		s = mcentral_cache_span(&mcentrals[spc], cpu);
		if (!s)
			return NULL;
	}
	return alloc_from(mc, s);
}

/* The commonest refills first, inline, with few registers to save: the
 * same word of the allocation span again (spans of few objects, 8 to 32
 * KiB, need it every few allocations), else its next word with a free
 * slot (a span whose words are partly in use: 27 500 of alloc-test's
 * 34 600 refills per 800 000 allocations); the rest out of line. A span
 * that is this CPU's allocation span means holds_spans is set already. */
void *mcache_refill_alloc(struct mcache *mc, unsigned spc, unsigned cpu)
{
	struct mspan *s = mc->alloc[spc];
	if (s != MCACHE_NO_SPAN) {
		MM_BUG_ON(__atomic_load_n(&s->owner_cpu, __ATOMIC_RELAXED) != (int32_t)cpu);
		uint64_t c = mspan_same_cache_word(s);
		if (!c && (c = mspan_cache_word_after(s)) != 0)
			cache_place(mc, spc, s);
		if (c)
			return cache_load_take(mc, spc, c);
	}
	return refill_next(mc, spc, cpu, s);
}

bool mcache_free(struct mspan *s, unsigned i, unsigned cpu, const void *p, const void *caller)
{
	if (__atomic_load_n(&s->owner_cpu, __ATOMIC_RELAXED) != (int32_t)cpu)
		return mcentral_free(s, i, cpu, p, caller);
	if (!mspan_obj_live(s, i)) {   /* its free, remote and alloc bits */
		mm_bad_pointer("kfree", "double free (object not allocated)", p, s, caller);
		return false;
	}
	uint64_t *a = mspan_alloc_word(s, i / 64);
	st64(a, ld64(a) & ~(1ULL << (i % 64)));
	if (s->list == MSPAN_ON_OWNED_FULL)
		unfull(&mcaches[cpu], s);
	return true;
}

void mcache_release_owned(struct mcache *mc, unsigned cpu)
{
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++) {
		struct mspan **sets[2] = { &mc->owned[spc], &mc->full[spc] };
		for (int k = 0; k < 2; k++) {
			while (*sets[k]) {
				MM_BUG_ON(__atomic_load_n(&(*sets[k])->owner_cpu,
							  __ATOMIC_RELAXED) != (int32_t)cpu);
				disown(mc, *sets[k]);
			}
		}
	}
	MM_BUG_ON(mc->owned_pages != 0);
	/* Nothing is owned now: whatever is on the notice stack is passed on
	 * to the mcentrals, whose reclaim sweeps it. */
	take_notices(mc, cpu);
}

void mcache_release_all(struct mcache *mc, unsigned cpu)
{
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++) {
		struct mspan *s = mc->alloc[spc];
		if (s != MCACHE_NO_SPAN) {
			MM_BUG_ON(__atomic_load_n(&s->owner_cpu, __ATOMIC_RELAXED) != (int32_t)cpu);
			/* Its unused slots: not handed out. */
			mcache_count_word(mc, spc, mc->alloc_cache[spc].free, 0, 0);
			cache_unplace(mc, spc);
			__atomic_store_n(&s->local_cache, MSPAN_NOT_LOCAL, __ATOMIC_RELAXED);
			mcentral_uncache_span(&mcentrals[spc], s);
		}
	}
	mcache_release_owned(mc, cpu);
	__atomic_store_n(&mc->holds_spans, 0, __ATOMIC_RELAXED);
}
