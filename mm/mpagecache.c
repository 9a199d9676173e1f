/*
 * mm/mpagecache.c - per-CPU page caches for large objects (Go's pageCache
 * per P; ours is fed by explicit frees, as tcmalloc's per-CPU caches are).
 *
 * A large object freed on a CPU stays that CPU's: its run goes, in state
 * MSPAN_CACHED with owner_cpu set to the CPU, into the CPU's page cache,
 * merged with any run of the same cache right before or after it in its
 * chunk. The CPU's next large allocation takes the smallest cached run
 * that fits and, when it is longer, splits it: the head becomes the
 * object, the tail stays cached. Neither takes a lock: a cached run,
 * its record and the page-map entries of its ends are the CPU's
 * (mm/pagemap.h), and the mheap never coalesces with a run that is not
 * MSPAN_FREE. Splits and merges trade span records through a stash of
 * PCACHE_SPARE records per CPU instead of the locked fixalloc, and keep
 * the outer ends of a run mapped at every step (mheap_extend_run), so a
 * CPU looking up a neighbour under its arena's lock never finds NULL.
 * Bounds: PCACHE_RUNS runs and PCACHE_MAX_PAGES pages (the platform's
 * MM_PCACHE_MAX_BYTES) per CPU; a free that would pass either gives the
 * smallest runs back to the mheap, all in one lock round. An object longer
 * than PCACHE_MAX_RUN, or in a chunk bigger than MHEAP_CHUNK_MIN (made
 * for one object of its size, which the mheap's retention keeps whole for
 * the next such object), goes back to the mheap.
 * A miss gives the cache back before it asks the mheap (cached runs kept
 * across misses change where the mheap places objects: on a 24 MiB
 * machine heap_churn's mixed sizes fragmented until 512 KiB no longer
 * fit), unless the platform says MM_PCACHE_KEEP_ON_MISS (hosted: what
 * lets two threads' large objects meet no lock); then the mheap is asked
 * without growing, and only when no free run fits does the cache go back
 * first, so a CPU never grows the heap while it holds cached pages. There
 * the object that goes back to the mheap (if at most PCACHE_MAX_PAGES)
 * waits too, as the CPU's one deferred run, for the CPU's next lock round:
 * the next such free's or a miss's, which gives it back under the same
 * lock (mheap_alloc_span_with), so a free and an allocation of big
 * objects take the lock once, not twice.
 * Drains (kmem_drain_*, a release request) give the cache, the deferred
 * run and the stash back.
 * Arenas (mm/mheap.h): a CPU's cache takes from and gives back to its
 * CPU's arena, and holds only that arena's runs and records; a large
 * object freed on a CPU of another arena goes straight back to its own.
 */
#include "mm/mpagecache.h"
#include "mm/mheap.h"
#include "mm/mbug.h"

struct page_cache page_caches[MM_MAX_CPUS];

void mheap_pcache_init(void)
{
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++)
		page_caches[cpu].arena = mheap_of_cpu(cpu);
}

static uintptr_t run_end(const struct mspan *s)
{
	return s->startaddr + ((uintptr_t)s->npages << MM_PAGE_SHIFT);
}

static void count(struct page_cache *pc, int64_t pages, int64_t runs)
{
	__atomic_store_n(&pc->pages, pc->pages + (uint64_t)pages, __ATOMIC_RELAXED);
	__atomic_store_n(&pc->nruns, pc->nruns + (uint64_t)runs, __ATOMIC_RELAXED);
}

/* The runs are run[0 .. nruns), in no order. */

/* Take slot i's run out of the cache (the last run moves into its slot). */
static struct mspan *slot_take(struct page_cache *pc, unsigned i)
{
	struct mspan *s = pc->run[i];
	pc->run[i] = pc->run[pc->nruns - 1];
	pc->run[pc->nruns - 1] = NULL;
	count(pc, -(int64_t)s->npages, -1);
	return s;
}

static void slot_add(struct page_cache *pc, struct mspan *s)
{
	pc->run[pc->nruns] = s;
	count(pc, (int64_t)s->npages, 1);
}

/* The slot holding s, PCACHE_RUNS if s is no run of this cache. Compares
 * pointers only: s may be a record another CPU is changing or reusing
 * (a neighbour found through the page map), which is never read. */
static unsigned slot_of(const struct page_cache *pc, const struct mspan *s)
{
	for (unsigned i = 0; i < pc->nruns; i++)
		if (pc->run[i] == s)
			return i;
	return PCACHE_RUNS;
}

/* ------------------------------------------------------ span records -- */

/* A record for a split's tail: from the stash, else the fixalloc. */
static struct mspan *record_get(struct page_cache *pc)
{
	if (pc->nspare)
		return pc->spare[--pc->nspare];
	struct mheap *h = pc->arena;
	unsigned long flags = mm_spin_lock_irqsave(&h->lock);
	struct mspan *t = fixalloc_alloc(&h->span_alloc, (unsigned)(pc - page_caches));
	mm_spin_unlock_irqrestore(&h->lock, flags);
	return t;
}

/* A record a merge emptied: to the stash, else back to the fixalloc. */
static void record_put(struct page_cache *pc, struct mspan *t)
{
	__atomic_store_n(&t->owner_cpu, -1, __ATOMIC_RELAXED);
	__atomic_store_n(&t->state, MSPAN_DEAD, __ATOMIC_RELEASE);
	if (pc->nspare < PCACHE_SPARE) {
		pc->spare[pc->nspare++] = t;
		return;
	}
	struct mheap *h = pc->arena;
	unsigned long flags = mm_spin_lock_irqsave(&h->lock);
	fixalloc_free(&h->span_alloc, t);
	mm_spin_unlock_irqrestore(&h->lock, flags);
}

/* --------------------------------------------------------- allocation -- */

/* Cut cached run s after its first npages pages: t (a blank record)
 * becomes the tail, cached in s's slot; s keeps the head. */
static void split_tail(struct mspan *s, struct mspan *t, size_t npages, unsigned cpu)
{
	t->startaddr = s->startaddr + (npages << MM_PAGE_SHIFT);
	t->npages = s->npages - npages;
	t->chunk = s->chunk;
	t->needzero = s->needzero;
	t->spanclass = 0;
	t->list = MSPAN_ON_NONE;
	t->local_cache = MSPAN_NOT_LOCAL;
	t->tiny = NULL;
	t->next = t->prev = NULL;
	mspan_clear_bits(t);
	__atomic_store_n(&t->owner_cpu, (int32_t)cpu, __ATOMIC_RELAXED);
	__atomic_store_n(&t->state, MSPAN_CACHED, __ATOMIC_RELEASE);
	/* The outer end first (s's last page is t's now), then the cut. */
	pagemap_set_page(run_end(s) - MM_PAGE_SIZE, t);
	pagemap_set_page(t->startaddr, t);
	s->npages = npages;
	pagemap_set_page(run_end(s) - MM_PAGE_SIZE, s);
}

/* Cut the run in slot best, longer than npages, to npages: the tail stays
 * cached in the slot; the head is returned (not yet an object). NULL when
 * no record can be had. */
__attribute__((noinline)) static struct mspan *take_split(struct page_cache *pc, unsigned best,
							  size_t npages, unsigned cpu)
{
	struct mspan *s = pc->run[best];
	struct mspan *t = record_get(pc);
	if (!t)
		return NULL;   /* the mheap may still have a fit */
	split_tail(s, t, npages, cpu);
	pc->run[best] = t;
	count(pc, -(int64_t)npages, 0);
	return s;
}

/* The run of exactly npages pages, else the smallest longer one cut to
 * npages, out of the cache (not yet an object), or NULL. */
static struct mspan *take_fit(struct page_cache *pc, size_t npages, unsigned cpu)
{
	unsigned best = PCACHE_RUNS;
	for (unsigned i = pc->nruns; i-- > 0;) {   /* the newest first: an exact fit ends it */
		struct mspan *s = pc->run[i];
		if (s->npages == npages)
			return slot_take(pc, i);
		if (s->npages > npages &&
		    (best == PCACHE_RUNS || s->npages < pc->run[best]->npages))
			best = i;
	}
	if (best == PCACHE_RUNS)
		return NULL;
	return take_split(pc, best, npages, cpu);
}

/* Under the lock of pc's arena: the deferred run back to it. */
static void give_deferred_locked(void *arg)
{
	struct page_cache *pc = arg;
	struct mspan *d = pc->deferred;
	if (d) {
		pc->deferred = NULL;
		__atomic_store_n(&pc->deferred_pages, 0, __ATOMIC_RELAXED);
		mheap_free_span_locked(d);
	}
}

/* Under the lock of pc's arena: everything back to it. */
static void give_all_locked(void *arg)
{
	struct page_cache *pc = arg;
	give_deferred_locked(pc);
	while (pc->nruns)
		mheap_free_span_locked(slot_take(pc, pc->nruns - 1));
	while (pc->nspare)
		fixalloc_free(&pc->arena->span_alloc, pc->spare[--pc->nspare]);
}

/* A miss: the mheap's free runs, in one lock round with the deferred run.
 * The cache goes back first or, where the platform keeps it across
 * misses, before the heap grows (it may coalesce into a fit there). */
__attribute__((noinline)) static struct mspan *alloc_miss(struct page_cache *pc, size_t npages,
							  size_t align_pages)
{
	struct mheap *h = pc->arena;
	struct mspan *s;
	if (!MM_PCACHE_KEEP_ON_MISS)
		return mheap_alloc_span_with(h, npages, 0, align_pages, true, give_all_locked, pc);
	s = mheap_alloc_span_with(h, npages, 0, align_pages, !pc->nruns, give_deferred_locked, pc);
	if (!s && pc->nruns)
		s = mheap_alloc_span_with(h, npages, 0, align_pages, true, give_all_locked, pc);
	return s;
}

struct mspan *mheap_alloc_large(size_t npages, size_t align_pages, unsigned cpu)
{
	struct page_cache *pc = &page_caches[cpu];
	struct mspan *s;
	if (align_pages != 1 || !pc->nruns || (s = take_fit(pc, npages, cpu)) == NULL)
		return alloc_miss(pc, npages, align_pages);
	if (DEBUG_HEAP)   /* as mheap_alloc_span_aligned: no stale trailer */
		memset((void *)s->startaddr, 0, npages << MM_PAGE_SHIFT);
	__atomic_store_n(&s->owner_cpu, -1, __ATOMIC_RELAXED);
	__atomic_store_n(&s->state, MSPAN_LARGE, __ATOMIC_RELEASE);
	return s;
}

/* --------------------------------------------------------------- free -- */

/* s (cached here, in no slot) absorbs the cached runs of this CPU right
 * before and after it; returns the run that holds them all. */
static struct mspan *merge_neighbours(struct page_cache *pc, struct mspan *s)
{
	struct heap_chunk *c = s->chunk;
	unsigned i;
	if (s->startaddr > c->base) {
		struct mspan *l = pagemap_lookup(s->startaddr - 1);
		if ((i = slot_of(pc, l)) < PCACHE_RUNS && run_end(l) == s->startaddr) {
			slot_take(pc, i);
			mheap_extend_run(l, s);
			record_put(pc, s);
			s = l;
		}
	}
	uintptr_t end = run_end(s);
	if (end < c->base + (c->npages << MM_PAGE_SHIFT)) {
		struct mspan *r = pagemap_lookup(end);
		if ((i = slot_of(pc, r)) < PCACHE_RUNS && r->startaddr == end) {
			slot_take(pc, i);
			mheap_extend_run(s, r);
			record_put(pc, r);
		}
	}
	return s;
}

/* Put s (cached here, in no slot) into a slot, first giving back the
 * smallest runs while it would not fit, in one lock round; s itself
 * when it is longer than PCACHE_MAX_RUN (merged). */
static void cache_run(struct page_cache *pc, struct mspan *s)
{
	if (s->npages > PCACHE_MAX_RUN) {
		mheap_free_span(s);
		return;
	}
	if (pc->nruns < PCACHE_RUNS && pc->pages + s->npages <= PCACHE_MAX_PAGES) {
		slot_add(pc, s);
		return;
	}
	struct mheap *h = pc->arena;
	unsigned long flags = mm_spin_lock_irqsave(&h->lock);
	while (pc->nruns == PCACHE_RUNS || pc->pages + s->npages > PCACHE_MAX_PAGES) {
		unsigned smallest = 0;
		for (unsigned i = 1; i < pc->nruns; i++)
			if (pc->run[i]->npages < pc->run[smallest]->npages)
				smallest = i;
		mheap_free_span_locked(slot_take(pc, smallest));
	}
	mm_spin_unlock_irqrestore(&h->lock, flags);
	mheap_trim_pending();
	slot_add(pc, s);
}

/* s, freed on this CPU, into its page cache (not empty). */
__attribute__((noinline)) static void cache_freed(struct page_cache *pc, struct mspan *s)
{
	cache_run(pc, merge_neighbours(pc, s));
}

bool mheap_free_large(uintptr_t p, struct mspan *s, unsigned cpu)
{
	uint8_t large = MSPAN_LARGE;
	/* The claim: of two racing frees, one wins. */
	if (!__atomic_compare_exchange_n(&s->state, &large, MSPAN_CACHED, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return false;
	/* A live large span's start and size do not change, but the caller
	 * read s before the claim: its record may have been reused since. */
	if (s->startaddr != p || pagemap_lookup(p) != s) {
		__atomic_store_n(&s->state, MSPAN_LARGE, __ATOMIC_RELEASE);
		return false;
	}
	s->needzero = 1;   /* its pages were handed out */
	struct page_cache *pc = &page_caches[cpu];
	/* Another arena's object (allocated on a CPU of that arena) goes
	 * straight back to it: a cache holds only its own arena's runs. */
	if (s->chunk->heap != pc->arena) {
		mheap_free_span(s);
		return true;
	}
	/* A chunk bigger than the least was made for one object of its size:
	 * its runs go back to the mheap, where it can be whole again. */
	if (s->npages > PCACHE_MAX_RUN || s->chunk->npages > (MHEAP_CHUNK_MIN >> MM_PAGE_SHIFT)) {
		if (MM_PCACHE_KEEP_ON_MISS && s->npages <= PCACHE_MAX_PAGES) {
			/* Deferred: one lock round for it and the next. */
			struct mspan *old = pc->deferred;
			__atomic_store_n(&s->owner_cpu, (int32_t)cpu, __ATOMIC_RELAXED);
			pc->deferred = s;
			__atomic_store_n(&pc->deferred_pages, s->npages, __ATOMIC_RELAXED);
			s = old;
		}
		if (s)
			mheap_free_span(s);
		return true;
	}
	__atomic_store_n(&s->owner_cpu, (int32_t)cpu, __ATOMIC_RELAXED);
	if (!pc->nruns)
		slot_add(pc, s);   /* nothing to merge with, room for any run */
	else
		cache_freed(pc, s);
	return true;
}

void mheap_pcache_drain(unsigned cpu)
{
	struct page_cache *pc = &page_caches[cpu];
	if (!pc->nruns && !pc->nspare && !pc->deferred)
		return;
	struct mheap *h = pc->arena;
	unsigned long flags = mm_spin_lock_irqsave(&h->lock);
	give_all_locked(pc);
	mm_spin_unlock_irqrestore(&h->lock, flags);
	mheap_trim_pending();
}
