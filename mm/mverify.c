/*
 * mm/mverify.c - mheap_verify(): check every invariant of the heap.
 *
 * Walks every chunk page by page through the page map, every free list,
 * every mcentral list and pending stack and every CPU's mcache, and checks
 * that they agree: each page maps to the span that covers it, spans tile
 * their chunk, free runs are maximal (no two free neighbours) and each is
 * on the free list of its length, each small span is in exactly one place
 * (the allocation span or an owned set of the one mcache whose CPU owns
 * it, or one list of its own mcentral; owned sets well formed, counted, the
 * partial sets within their caps; local_cache as the set says; notice
 * stacks hold pending spans), bitmaps are consistent (frees only of
 * allocated slots, nothing past nelems, alloc_count of listed spans equal
 * to their bits), every small span and no other has a bitmap, in its
 * record for bucket 0, else in one unit of its bucket's pool, and
 * the totals add up (pages per state, spans per class, live objects per
 * class against the per-CPU counters, bytes held from the platform, span
 * records and bitmap units handed out by their fixallocs against the
 * spans found). The mheap's arenas are checked one by one: each walks only
 * its own chunks, small spans and their metadata are only in arena 0, a
 * page cache's runs and records only in its CPU's arena, and the retained
 * chunks of all arenas are within the policy's one bound.
 *
 * It takes every lock, but the per-CPU state it reads belongs to running
 * CPUs: call it only when every other CPU is quiescent (not inside the
 * heap; kmem_idle_lock keeps an idle CPU from entering it on its own).
 * It reports the first broken invariant with mm_log and returns 1;
 * mheap_verify_broken_rule then gives that report's format.
 */
#include "mm/kmalloc.h"
#include "mm/bitops.h"
#include "mm/malloc_internal.h"
#include "mm/mcache.h"
#include "mm/mcentral.h"
#include "mm/mheap.h"
#include "mm/mpagecache.h"
#include "mm/platform.h"

/* The format of the first report of the last mheap_verify, NULL when it
 * passed (mheap_verify_broken_rule): which check fired, for the tests
 * that break one invariant on purpose. Written under the locks
 * mheap_verify holds. */
static const char *broken_rule;

static void note_broken_rule(const char *fmt)
{
	if (!broken_rule)
		broken_rule = fmt;
}

const char *mheap_verify_broken_rule(void)
{
	return broken_rule;
}

/* Report a broken invariant (the format first, as mm_log's), and FAIL:
 * report it and return 1 from the check. */
#define FIRST_ARG(fmt, ...) fmt
#define REPORT(...)                                           \
	do {                                                  \
		note_broken_rule(FIRST_ARG(__VA_ARGS__, 0));  \
		mm_log("mheap_verify: " __VA_ARGS__);         \
	} while (0)
#define FAIL(...)                   \
	do {                        \
		REPORT(__VA_ARGS__); \
		return 1;           \
	} while (0)

/* Per span class tallies gathered by the chunk walk. */
static struct {
	uint64_t listed, cached, live;
} tally[NUM_SPAN_CLASSES];

/* Span records per arena, and bitmap units per pool, met by the chunk
 * walk (and in the page caches' stashes). */
static uint64_t records_seen[MHEAP_NARENAS], units_seen[MSPAN_BITMAP_POOLS];

static int check_small_span(const struct mspan *s)
{
	unsigned spc = s->spanclass, cls = spanclass_sizeclass(spc);

	if (cls == 0 || spc >= NUM_SPAN_CLASSES)
		FAIL("span %p: in-use small span with span class %u", (void *)s, spc);
	if (s->npages != class_to_npages[cls] || s->elemsize != class_to_size[cls])
		FAIL("span %p class %u: %lu pages of %u bytes, expected %u of %u",
		     (void *)s, cls, (unsigned long)s->npages, s->elemsize,
		     class_to_npages[cls], class_to_size[cls]);
	if (s->nelems != size_class_obj_index(cls, (uint32_t)s->npages << MM_PAGE_SHIFT))
		FAIL("span %p class %u: nelems %u wrong", (void *)s, cls, s->nelems);
	if (s->divmagic != class_to_divmagic[cls])
		FAIL("span %p class %u: divmagic %#x, expected %#x", (void *)s, cls,
		     s->divmagic, class_to_divmagic[cls]);
	if ((spc == TINY_SPAN_CLASS) != (s->tiny != NULL))
		FAIL("span %p class %u: tiny table %p in the wrong span class",
		     (void *)s, cls, (void *)s->tiny);

	/* Its bitmap: bucket 0's in its record, the others' in one unit of
	 * their bucket's pool; no bit past nelems anywhere in it. */
	unsigned bucket = mspan_bitmap_bucket(s->nelems), pool = mspan_bitmap_pool(bucket);
	unsigned nunits = mspan_bitmap_nunits(bucket);
	if (!mspan_has_bitmaps(s))
		FAIL("span %p class %u: no bitmaps", (void *)s, cls);
	if (!mspan_bitmap_layout_ok(s))
		FAIL("span %p class %u: bitmap %p not laid out as bucket %u's "
		     "(bucket 0: in the record; else a unit outside it)",
		     (void *)s, cls, (void *)s->bits, bucket);
	void *units[MSPAN_BITMAP_UNITS];
	mspan_bitmap_units(s, units);
	for (unsigned u = 0; u < nunits; u++)
		if (!fixalloc_owns(mheap_bitmap_pool(pool), units[u]))
			FAIL("span %p class %u: bitmap unit %p not from pool %u (bucket %u)",
			     (void *)s, cls, units[u], pool, bucket);
	units_seen[pool] += nunits;
	uint64_t bits = 0, live = 0;
	for (unsigned w = 0; w < mspan_bitmap_words[bucket]; w++) {
		uint64_t mask = w < mspan_nwords(s) ? mspan_word_mask(s, w) : 0;
		uint64_t a = *mspan_alloc_word(s, w), r = *mspan_remote_word(s, w);
		if ((a | r) & ~mask)
			FAIL("span %p class %u: bits set past nelems in word %u", (void *)s, cls, w);
		if (r & ~a)
			FAIL("span %p class %u: remote free recorded for unallocated slot (word %u: "
			     "alloc %#lx remote %#lx)", (void *)s, cls, w,
			     (unsigned long)a, (unsigned long)r);
		bits += (uint64_t)mm_popcount64(a);
		live += (uint64_t)mm_popcount64(a & ~r);
	}
	if (s->owner_cpu >= 0) {
		if (s->owner_cpu >= MM_MAX_CPUS)
			FAIL("span %p class %u: owner CPU %d out of range", (void *)s, cls,
			     s->owner_cpu);
		bool allocating = mcaches[s->owner_cpu].alloc[spc] == s;
		/* A CPU with an allocation span holds spans (its refills of
		 * the same word do not set holds_spans again: mm/mcache.c). */
		if (allocating && !mcaches[s->owner_cpu].holds_spans)
			FAIL("span %p class %u: CPU %d allocates from it but holds_spans is 0",
			     (void *)s, cls, s->owner_cpu);
		if (allocating && s->list != MSPAN_ON_NONE)
			FAIL("span %p class %u: CPU %d allocates from it and it is on list %u",
			     (void *)s, cls, s->owner_cpu, s->list);
		if (!allocating && s->list != MSPAN_ON_OWNED && s->list != MSPAN_ON_OWNED_FULL)
			FAIL("span %p class %u: owner CPU %d neither allocates from it nor "
			     "holds it in an owned set (list %u)", (void *)s, cls,
			     s->owner_cpu, s->list);
		/* kfree's fast path frees into the allocation span and the
		 * partial set only, never a tiny span (mm/mcache.c). */
		int local = s->list == MSPAN_ON_OWNED_FULL || spc == TINY_SPAN_CLASS ?
			-1 : s->owner_cpu;
		struct mcache *want = local >= 0 ? &mcaches[local] : MSPAN_NOT_LOCAL;
		if (s->local_cache != want)
			FAIL("span %p class %u: owner CPU %d, list %u, but local_cache %p "
			     "(expected %p, CPU %d's)", (void *)s, cls, s->owner_cpu, s->list,
			     (void *)s->local_cache, (void *)want, local);
		const struct mcache_alloc_word *aw = &mcaches[s->owner_cpu].alloc_cache[spc];
		uint64_t cache = allocating ? aw->free : 0;
		if (cache & ~(~*mspan_alloc_word(s, s->cache_word) & mspan_word_mask(s, s->cache_word)))
			FAIL("span %p class %u: its cache word offers allocated slots", (void *)s, cls);
		/* The fields the fast path reads, used up or not: it may load
		 * the word again from them (mm/mcache.h). */
		unsigned slots = mspan_word_slots(s, s->cache_word);
		if (allocating && (aw->slots != slots ||
				   aw->reload_min != mcache_reload_min(s->nelems, slots) ||
				   aw->reload_max != mcache_reload_max(s->nelems)))
			FAIL("span %p class %u: word %u of %u objects has %u slots, but CPU %d's "
			     "cache word says %u slots, reload from %u free, up to %u",
			     (void *)s, cls, s->cache_word, s->nelems, slots, s->owner_cpu,
			     aw->slots, aw->reload_min, aw->reload_max);
		if (allocating &&
		    (aw->alloc_word != mspan_alloc_word(s, s->cache_word) ||
		     aw->base != s->startaddr + (uintptr_t)s->cache_word * 64 * s->elemsize ||
		     aw->elemsize != s->elemsize))
			FAIL("span %p class %u: CPU %d's cached word %u is not the span's (alloc "
			     "word %p, base %#lx, size %lu)", (void *)s, cls, s->owner_cpu,
			     s->cache_word, (void *)aw->alloc_word, (unsigned long)aw->base,
			     (unsigned long)aw->elemsize);
		tally[spc].cached++;
	} else {
		if (s->list != MSPAN_ON_PARTIAL && s->list != MSPAN_ON_FULL)
			FAIL("span %p class %u: neither cached nor on an mcentral list", (void *)s, cls);
		if (s->local_cache != MSPAN_NOT_LOCAL)
			FAIL("span %p class %u: owned by no CPU, but local_cache %p", (void *)s, cls,
			     (void *)s->local_cache);
		if (s->alloc_count != bits)
			FAIL("span %p class %u: alloc_count %u, alloc bits %lu", (void *)s, cls,
			     s->alloc_count, (unsigned long)bits);
		if ((s->list == MSPAN_ON_FULL) != (bits == s->nelems))
			FAIL("span %p class %u: %lu of %u allocated but on the %s list",
			     (void *)s, cls, (unsigned long)bits, s->nelems,
			     s->list == MSPAN_ON_FULL ? "full" : "partial");
		tally[spc].listed++;
	}
	tally[spc].live += live;
	return 0;
}

/* Page-cached runs met by the chunk walk. */
static struct {
	uint64_t pages, runs;
} cached_seen;

/* A free run, large span or page-cached run: no bitmaps. */
static int check_no_bitmaps(const struct mspan *s)
{
	if (s->bits != mspan_no_bits)
		FAIL("span %p (state %u): bitmap %p, expected none (mspan_no_bits)",
		     (void *)s, s->state, (void *)s->bits);
	return 0;
}

/* A free or page-cached run that says its pages are as fresh from the
 * platform (needzero 0; only where MM_SYS_ALLOC_ZEROED) must read as
 * zeros: the first and last word of each page are looked at (a KM_ZERO
 * allocation of them would not clear them). */
static int check_fresh_run(const struct mspan *s)
{
	if (s->needzero > 1)
		FAIL("run %p: needzero %u", (void *)s, s->needzero);
	if (s->needzero)
		return 0;
	if (!MM_SYS_ALLOC_ZEROED)
		FAIL("run %p: needzero 0, but the platform's memory is not zeroed", (void *)s);
	for (uintptr_t k = 0; k < s->npages; k++) {
		const uint64_t *w = (const uint64_t *)(s->startaddr + (k << MM_PAGE_SHIFT));
		if (w[0] || w[MM_PAGE_SIZE / 8 - 1])
			FAIL("run %p [%#lx, %lu pages]: needzero 0, but page %lu holds data",
			     (void *)s, (unsigned long)s->startaddr, (unsigned long)s->npages,
			     (unsigned long)k);
	}
	return 0;
}

/* Arena h's chunks, page by page (its counts added to the totals). */
static int walk_chunks(const struct mheap *h, uint64_t *free_pages, uint64_t *small_pages,
		       uint64_t *large_pages, uint64_t *nlarge, uint64_t *chunk_bytes)
{
	for (struct heap_chunk *c = h->chunks; c; c = c->next) {
		uintptr_t end = c->base + (c->npages << MM_PAGE_SHIFT);
		bool prev_free = false;
		if (c->heap != h)
			FAIL("chunk %#lx on arena %u's list says it is arena %u's",
			     (unsigned long)c->base, h->arena, c->heap ? c->heap->arena : 999u);
		*chunk_bytes += c->npages << MM_PAGE_SHIFT;
		for (uintptr_t a = c->base; a < end;) {
			struct mspan *s = pagemap_lookup(a);
			if (!s)
				FAIL("chunk %#lx: page %#lx not in the page map",
				     (unsigned long)c->base, (unsigned long)a);
			if (s->startaddr != a || s->chunk != c || !s->npages ||
			    a + (s->npages << MM_PAGE_SHIFT) > end)
				FAIL("page %#lx maps to span %p [%#lx, %lu pages] that does not start there",
				     (unsigned long)a, (void *)s, (unsigned long)s->startaddr,
				     (unsigned long)s->npages);
			/* The page map's rule (mm/pagemap.h): a small span in
			 * use is mapped on every page, any other span on its
			 * ends, NULL between them. */
			for (uintptr_t k = 1; k < s->npages; k++) {
				struct mspan *want =
					s->state == MSPAN_INUSE || k == s->npages - 1 ? s : NULL;
				struct mspan *got = pagemap_lookup(a + (k << MM_PAGE_SHIFT));
				if (got != want)
					FAIL("span %p (state %u): page %lu of %lu maps to %p, expected %p",
					     (void *)s, s->state, (unsigned long)k,
					     (unsigned long)s->npages, (void *)got, (void *)want);
			}
			records_seen[h->arena]++;
			if (s->state == MSPAN_INUSE && h != &mheap)
				FAIL("small span %p in arena %u: small spans are arena 0's",
				     (void *)s, h->arena);
			if (s->state != MSPAN_INUSE && check_no_bitmaps(s))
				return 1;
			if ((s->state == MSPAN_FREE || s->state == MSPAN_CACHED) &&
			    check_fresh_run(s))
				return 1;
			/* kfree's fast path never frees into what is no small
			 * span (a NULL here would match a CPU that may not
			 * take that path). */
			if (s->state != MSPAN_INUSE && s->local_cache != MSPAN_NOT_LOCAL)
				FAIL("span %p (state %u) at %#lx: local_cache %p, not MSPAN_NOT_LOCAL",
				     (void *)s, s->state, (unsigned long)a, (void *)s->local_cache);
			switch (s->state) {
			case MSPAN_FREE:
				if (prev_free)
					FAIL("free run %p at %#lx not coalesced with its left neighbour",
					     (void *)s, (unsigned long)a);
				if (s->list != MSPAN_ON_HEAP_FREE)
					FAIL("free run %p not on a free list", (void *)s);
				*free_pages += s->npages;
				break;
			case MSPAN_CACHED:
				/* A run in a page cache: the mheap counts it
				 * with the large pages (check_page_caches). */
				cached_seen.pages += s->npages;
				cached_seen.runs++;
				*large_pages += s->npages;
				(*nlarge)++;
				if (s->spanclass != 0 || s->owner_cpu < 0 ||
				    s->owner_cpu >= MM_MAX_CPUS ||
				    mheap_of_cpu((unsigned)s->owner_cpu) != h)
					FAIL("page-cached run %p: class %u, owner CPU %d, arena %u",
					     (void *)s, s->spanclass, s->owner_cpu, h->arena);
				break;
			case MSPAN_LARGE:
				*large_pages += s->npages;
				(*nlarge)++;
				if (s->spanclass != 0 || s->list != MSPAN_ON_NONE)
					FAIL("large span %p: class %u, list %u", (void *)s,
					     s->spanclass, s->list);
				break;
			case MSPAN_INUSE:
				*small_pages += s->npages;
				if (check_small_span(s))
					return 1;
				break;
			default:
				FAIL("span %p in the page map is dead (state %u)", (void *)s, s->state);
			}
			prev_free = s->state == MSPAN_FREE;
			a += s->npages << MM_PAGE_SHIFT;
		}
		bool whole_free = prev_free && pagemap_lookup(c->base)->npages == c->npages;
		if (whole_free != c->retained)
			FAIL("chunk %#lx: %s free but %s on the retained list",
			     (unsigned long)c->base, whole_free ? "entirely" : "not entirely",
			     c->retained ? "" : "not");
	}
	return 0;
}

/* Arena h's retained list holds exactly its wholly free chunks (the
 * walk checked each chunk's flag), oldest first, as many pages as
 * counted (added to *all). */
static int check_retained(const struct mheap *h, uint64_t *all)
{
	uint64_t pages = 0;
	struct heap_chunk *prev = NULL;
	for (struct heap_chunk *c = h->retained_head; c; prev = c, c = c->rnext) {
		if (!c->retained || c->rprev != prev || c->heap != h)
			FAIL("arena %u's retained list: chunk %#lx badly linked (flag %d)",
			     h->arena, (unsigned long)c->base, c->retained);
		pages += c->npages;
		if (pages > h->chunk_bytes >> MM_PAGE_SHIFT)
			FAIL("arena %u's retained list longer than the arena", h->arena);
	}
	if (prev != h->retained_tail || pages != h->retained_pages)
		FAIL("arena %u's retained list: %lu pages, it counts %lu (tail %s)", h->arena,
		     (unsigned long)pages, (unsigned long)h->retained_pages,
		     prev == h->retained_tail ? "right" : "wrong");
	*all += pages;
	return 0;
}

/* No more retained in all arenas than the policy's bound: twice the
 * target after any free. */
static int check_retained_bound(uint64_t pages)
{
	if (pages > 2 * (mheap_retain_target() >> MM_PAGE_SHIFT))
		FAIL("%lu KiB retained, over the policy's bound of twice %lu KiB",
		     (unsigned long)((pages << MM_PAGE_SHIFT) >> 10),
		     (unsigned long)(mheap_retain_target() >> 10));
	return 0;
}

static unsigned slot_of_run(const struct page_cache *pc, const struct mspan *s)
{
	for (unsigned i = 0; i < PCACHE_RUNS; i++)
		if (pc->run[i] == s)
			return i;
	return PCACHE_RUNS;
}

/* Each CPU's page cache: runs in state MSPAN_CACHED, owned by that CPU,
 * in the page map, of at most PCACHE_MAX_RUN pages, in the first nruns
 * slots, counted right and within the cap, none twice and none adjacent
 * to another of the same cache in its chunk (a free merges them); its
 * deferred run, MSPAN_CACHED too, counted and in no slot; together all
 * the cached runs the walk found. The stash: records in state
 * MSPAN_DEAD, counted with the span records handed out. */
static int check_page_caches(void)
{
	uint64_t pages = 0, runs = 0;
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++) {
		const struct page_cache *pc = &page_caches[cpu];
		uint64_t p = 0, r = 0;
		if (pc->nruns > PCACHE_RUNS)
			FAIL("CPU %u page cache: %lu runs in %u slots", cpu,
			     (unsigned long)pc->nruns, PCACHE_RUNS);
		for (unsigned i = 0; i < PCACHE_RUNS; i++) {
			const struct mspan *s = pc->run[i];
			if ((s != NULL) != (i < pc->nruns))
				FAIL("CPU %u page cache: slot %u %s, with %lu runs", cpu, i,
				     s ? "in use" : "empty", (unsigned long)pc->nruns);
			if (!s)
				continue;
			if (s->state != MSPAN_CACHED || !s->npages ||
			    s->npages > PCACHE_MAX_RUN || s->owner_cpu != (int)cpu ||
			    pagemap_lookup(s->startaddr) != s || s->chunk->heap != mheap_of_cpu(cpu))
				FAIL("CPU %u page cache slot %u holds span %p (state %u, "
				     "%lu pages, owner %d)", cpu, i, (void *)s, s->state,
				     (unsigned long)s->npages, s->owner_cpu);
			uintptr_t end = s->startaddr + (s->npages << MM_PAGE_SHIFT);
			for (unsigned j = 0; j < i; j++) {
				const struct mspan *o = pc->run[j];
				if (o == s || (o && o->chunk == s->chunk &&
					       (o->startaddr == end ||
						o->startaddr + (o->npages << MM_PAGE_SHIFT) ==
							s->startaddr)))
					FAIL("CPU %u page cache: slots %u and %u hold %p and %p, "
					     "the same or adjacent runs", cpu, j, i, (void *)o,
					     (void *)s);
			}
			p += s->npages;
			r++;
		}
		if (p != pc->pages || r != pc->nruns || p > PCACHE_MAX_PAGES)
			FAIL("CPU %u page cache: %lu runs of %lu pages, counted %lu of %lu (cap %lu)",
			     cpu, (unsigned long)r, (unsigned long)p, (unsigned long)pc->nruns,
			     (unsigned long)pc->pages, (unsigned long)PCACHE_MAX_PAGES);
		if (pc->nspare > PCACHE_SPARE)
			FAIL("CPU %u page cache: %u records in a stash of %u", cpu, pc->nspare,
			     PCACHE_SPARE);
		const struct mspan *d = pc->deferred;
		if ((d != NULL) != (pc->deferred_pages != 0) ||
		    (d && (d->state != MSPAN_CACHED || d->owner_cpu != (int)cpu ||
			   d->npages != pc->deferred_pages || pagemap_lookup(d->startaddr) != d ||
			   d->chunk->heap != mheap_of_cpu(cpu) ||
			   slot_of_run(pc, d) < PCACHE_RUNS)))
			FAIL("CPU %u page cache: deferred run %p (%lu pages counted)", cpu,
			     (void *)d, (unsigned long)pc->deferred_pages);
		if (d) {
			pages += d->npages;
			runs++;
		}
		for (unsigned i = 0; i < pc->nspare; i++)
			if (pc->spare[i]->state != MSPAN_DEAD ||
			    !fixalloc_owns(&mheap_of_cpu(cpu)->span_alloc, pc->spare[i]))
				FAIL("CPU %u page cache: stash record %p in state %u%s", cpu,
				     (void *)pc->spare[i], pc->spare[i]->state,
				     pc->spare[i]->state == MSPAN_DEAD ? ", not its arena's" : "");
		records_seen[mheap_of_cpu(cpu)->arena] += pc->nspare;
		pages += p;
		runs += r;
	}
	if (pages != cached_seen.pages || runs != cached_seen.runs)
		FAIL("page caches hold %lu runs of %lu pages, the heap %lu of %lu",
		     (unsigned long)runs, (unsigned long)pages, (unsigned long)cached_seen.runs,
		     (unsigned long)cached_seen.pages);
	return 0;
}

static int check_free_lists(const struct mheap *h)
{
	uint64_t pages = 0;
	for (unsigned i = 0; i < MHEAP_NFREE; i++) {
		bool nonempty = (h->free_nonempty[i / 64] >> (i % 64)) & 1;
		if (nonempty != (h->free[i] != NULL))
			FAIL("arena %u free list %u: non-empty bit %d, head %p", h->arena, i,
			     nonempty, (void *)h->free[i]);
		for (struct mspan *s = h->free[i]; s; s = s->next) {
			if (s->chunk->heap != h)
				FAIL("arena %u free list %u holds span %p of arena %u", h->arena, i,
				     (void *)s, s->chunk->heap->arena);
			if (s->state != MSPAN_FREE || s->list != MSPAN_ON_HEAP_FREE)
				FAIL("free list %u holds span %p in state %u", i, (void *)s, s->state);
			if (!i || mheap_free_list_index(s->npages) != i)
				FAIL("free list %u holds a run of %lu pages", i,
				     (unsigned long)s->npages);
			if (pagemap_lookup(s->startaddr) != s)
				FAIL("free run %p on list %u is not in the page map", (void *)s, i);
			pages += s->npages;
		}
	}
	if (pages != h->free_pages)
		FAIL("arena %u's free lists hold %lu pages, it counts %lu", h->arena,
		     (unsigned long)pages, (unsigned long)h->free_pages);
	return 0;
}

/* CPU cpu's owned sets of class spc: well-formed circular lists of in-use
 * spans of the class, owned by cpu, marked MSPAN_ON_OWNED (the partial
 * set) or MSPAN_ON_OWNED_FULL (the full set), as many as the mcache
 * counts, the partial set within its caps; their spans added to *n. */
static uint64_t owned_pages_seen[MM_MAX_CPUS];

static int check_owned_ring(unsigned cpu, unsigned spc, bool full, uint64_t *n)
{
	const struct mcache *mc = &mcaches[cpu];
	const struct mspan *head = full ? mc->full[spc] : mc->owned[spc], *s = head;
	uint8_t id = full ? MSPAN_ON_OWNED_FULL : MSPAN_ON_OWNED;
	const char *name = full ? "full" : "partial";
	uint64_t count = 0;
	if (head) {
		do {
			if (s->state != MSPAN_INUSE || s->spanclass != spc ||
			    s->owner_cpu != (int)cpu || s->list != id ||
			    s->next->prev != s || mc->alloc[spc] == s)
				FAIL("CPU %u %s set of class %u holds span %p (state %u, "
				     "class %u, owner %d, list %u)", cpu, name, spc, (void *)s,
				     s->state, s->spanclass, s->owner_cpu, s->list);
			if (++count > tally[spc].cached)
				FAIL("CPU %u %s set of class %u: longer than the spans owned",
				     cpu, name, spc);
			if (!full && count > MCACHE_OWNED_PER_CLASS)
				FAIL("CPU %u partial set of class %u: more than %u spans", cpu,
				     spc, MCACHE_OWNED_PER_CLASS);
			if (!full)
				owned_pages_seen[cpu] += s->npages;
			s = s->next;
		} while (s != head);
	}
	uint64_t counted = full ? mc->nfull[spc] : mc->nowned[spc];
	if (count != counted)
		FAIL("CPU %u %s set of class %u: %lu spans, the mcache counts %lu", cpu,
		     name, spc, (unsigned long)count, (unsigned long)counted);
	*n += count;
	return 0;
}

static int check_owned_set(unsigned cpu, unsigned spc, uint64_t *n)
{
	const struct mcache *mc = &mcaches[cpu];
	if (spc == 2)
		owned_pages_seen[cpu] = 0;
	if (check_owned_ring(cpu, spc, false, n) || check_owned_ring(cpu, spc, true, n))
		return 1;
	if (spc == NUM_SPAN_CLASSES - 1 &&
	    (owned_pages_seen[cpu] != mc->owned_pages || mc->owned_pages > MCACHE_OWNED_PAGES))
		FAIL("CPU %u partial sets: %lu pages, the mcache counts %u (cap %u)", cpu,
		     (unsigned long)owned_pages_seen[cpu], mc->owned_pages,
		     MCACHE_OWNED_PAGES);
	return 0;
}

/* Is s in the owned set its list field names, of its owner's mcache? */
static bool in_owned_ring(const struct mspan *s)
{
	const struct mcache *mc = &mcaches[s->owner_cpu];
	const struct mspan *head = s->list == MSPAN_ON_OWNED_FULL ? mc->full[s->spanclass]
								  : mc->owned[s->spanclass];
	const struct mspan *t = head;
	uint64_t n = 0;
	if (head) {
		do {
			if (t == s)
				return true;
			t = t->next;
		} while (t != head && ++n <= mheap.small_pages);
	}
	return false;
}

/* The spans of class spc that say an mcache owns them and cannot be
 * found there: the first one is named (what the counts alone cannot
 * tell). */
static void name_unreachable_owned(unsigned spc)
{
	for (struct heap_chunk *c = mheap.chunks; c; c = c->next) {
		uintptr_t end = c->base + (c->npages << MM_PAGE_SHIFT);
		for (uintptr_t a = c->base; a < end;) {
			const struct mspan *s = pagemap_lookup(a);
			if (!s || !s->npages)
				return;
			if (s->state == MSPAN_INUSE && s->spanclass == spc && s->owner_cpu >= 0 &&
			    mcaches[s->owner_cpu].alloc[spc] != s && !in_owned_ring(s)) {
				REPORT("span %p [%#lx, %lu pages] class %u: owner CPU %d, "
				       "list %u, local_cache %p, next %p prev %p, %u of %u allocated, "
				       "pending %u: in no set of that CPU",
				       (void *)s, (unsigned long)s->startaddr,
				       (unsigned long)s->npages, spc, s->owner_cpu, s->list,
				       (void *)s->local_cache, (void *)s->next, (void *)s->prev,
				       s->alloc_count, s->nelems, s->remote_pending);
				return;
			}
			a += s->npages << MM_PAGE_SHIFT;
		}
	}
}

/* Each CPU's notice stack (mm/mcentral.c) holds pending in-use small
 * spans, none twice (a span is on one stack at a time); no CPU's hazard
 * names a span (no remote free in flight: every CPU is quiescent). */
static int check_notices(void)
{
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++) {
		const struct mspan *h = *mcentral_hazard_slot(cpu);
		if (h)
			FAIL("CPU %u: hazard pointer %p set with no remote free in flight", cpu,
			     (const void *)h);
		uint64_t n = 0;
		for (const struct mspan *s = mcentral_peek_notices(cpu); s; s = s->pending_next) {
			if (s->state != MSPAN_INUSE || spanclass_sizeclass(s->spanclass) == 0 ||
			    !s->remote_pending)
				FAIL("CPU %u notice stack holds span %p (state %u, class %u, "
				     "pending %u)", cpu, (void *)s, s->state, s->spanclass,
				     s->remote_pending);
			if (++n > mheap.small_pages)
				FAIL("CPU %u notice stack: a cycle", cpu);
		}
	}
	return 0;
}

/* Each mcache's tiny block: with none, tiny_offset is TINY_NO_BLOCK
 * (what the fast path's fit test relies on), else inside the block, and
 * its local frees are objects of it; the
 * fast paths' MM_CPU_LOCAL_NONE has no block and no cache word. */
static int check_tiny_blocks(void)
{
	for (unsigned cpu = 0; cpu <= MM_MAX_CPUS; cpu++) {
		const struct mcache *mc = cpu < MM_MAX_CPUS ? &mcaches[cpu] : &mm_cpu_local_none;
		if (mc->tiny ? mc->tiny_offset > TINY_SIZE : mc->tiny_offset != TINY_NO_BLOCK)
			FAIL("mcache %u (%p): tiny block %#lx, tiny_offset %u (with no block, %u)",
			     cpu, (void *)mc, (unsigned long)mc->tiny, mc->tiny_offset, TINY_NO_BLOCK);
		/* Its local frees name objects of the block (an end bit each);
		 * with no block there is nothing to settle. */
		uint16_t ends = mc->tiny ? __atomic_load_n(mc->tiny_ends, __ATOMIC_RELAXED) : 0;
		if (mc->tiny_freed_local & ~ends || (!mc->tiny && mc->tiny_undone))
			FAIL("mcache %u (%p): tiny block %#lx, local frees %#x outside its ends %#x "
			     "or %u second frees to cancel with no block",
			     cpu, (void *)mc, (unsigned long)mc->tiny, mc->tiny_freed_local, ends,
			     mc->tiny_undone);
	}
	const struct mcache *none = &mm_cpu_local_none;
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++)
		if (none->alloc_cache[spc].free || none->alloc_cache[spc].slots)
			FAIL("MM_CPU_LOCAL_NONE has a cache word for span class %u: %#lx "
			     "(of %u slots)", spc, (unsigned long)none->alloc_cache[spc].free,
			     none->alloc_cache[spc].slots);
	return 0;
}

/* What the page map's lookups read where there is no leaf or no span
 * (mm/pagemap.h) is still all zero: a write there would make kfree's
 * fast path take some page for a span of this CPU's. */
static int check_pagemap_none(void)
{
	const uint64_t *w = (const uint64_t *)&mspan_none;
	for (size_t i = 0; i < sizeof(mspan_none) / 8; i++)
		if (w[i])
			FAIL("mspan_none (%p) is written: word %lu is %#lx", (void *)&mspan_none,
			     (unsigned long)i, (unsigned long)w[i]);
	for (size_t i = 0; i < PAGEMAP_LEAF_ENTRIES; i++)
		if (pagemap_empty_leaf[i])
			FAIL("pagemap_empty_leaf (%p) is written: entry %lu is %#lx",
			     (void *)pagemap_empty_leaf, (unsigned long)i,
			     (unsigned long)pagemap_empty_leaf[i]);
	if (pagemap_none_base != (uintptr_t)&mspan_none)
		FAIL("pagemap_none_base is %#lx, not &mspan_none %p",
		     (unsigned long)pagemap_none_base, (void *)&mspan_none);
	if (pagemap_verify_flat())
		FAIL("the page map's root does not point at its flat part's leaves "
		     "(mm/pagemap.h), as kfree's fast path reads them");
	return 0;
}

static int check_centrals(void)
{
	for (unsigned spc = 2; spc < NUM_SPAN_CLASSES; spc++) {
		struct mcentral *c = &mcentrals[spc];
		uint64_t n = 0;
		for (int l = 0; l < 2; l++) {
			uint8_t id = l ? MSPAN_ON_FULL : MSPAN_ON_PARTIAL;
			for (struct mspan *s = l ? c->full : c->partial; s; s = s->next, n++) {
				if (s->state != MSPAN_INUSE || s->spanclass != spc || s->list != id)
					FAIL("mcentral %u: %s list holds span %p (state %u, class %u, list %u)",
					     spc, l ? "full" : "partial", (void *)s, s->state,
					     s->spanclass, s->list);
				if (n > tally[spc].listed)
					FAIL("mcentral %u: lists longer than its listed spans", spc);
			}
		}
		if (n != tally[spc].listed)
			FAIL("mcentral %u: %lu spans on its lists, %lu uncached spans in the heap",
			     spc, (unsigned long)n, (unsigned long)tally[spc].listed);
		if (c->nspans != tally[spc].listed + tally[spc].cached)
			FAIL("mcentral %u: counts %lu spans, the heap has %lu", spc,
			     (unsigned long)c->nspans,
			     (unsigned long)(tally[spc].listed + tally[spc].cached));
		for (struct mspan *s = c->pending; s; s = s->pending_next)
			if (s->state != MSPAN_INUSE || s->spanclass != spc || !s->remote_pending)
				FAIL("mcentral %u: pending stack holds span %p (state %u, class %u)",
				     spc, (void *)s, s->state, s->spanclass);
		uint64_t cached = 0;
		for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++) {
			struct mspan *s = mcaches[cpu].alloc[spc];
			if (mcaches[cpu].stats_seq & 1)
				FAIL("CPU %u: stats_seq %u is odd outside a cache word change", cpu,
				     mcaches[cpu].stats_seq);
			if (s == MCACHE_NO_SPAN && (mcaches[cpu].alloc_cache[spc].free ||
						    mcaches[cpu].alloc_cache[spc].slots))
				FAIL("CPU %u class %u: a cache word %#lx (of %u slots) but no "
				     "allocation span", cpu, spc,
				     (unsigned long)mcaches[cpu].alloc_cache[spc].free,
				     mcaches[cpu].alloc_cache[spc].slots);
			if (s == MCACHE_NO_SPAN)
				continue;
			cached++;
			if (s->state != MSPAN_INUSE || s->spanclass != spc || s->owner_cpu != (int)cpu)
				FAIL("CPU %u mcache class %u holds span %p (state %u, class %u, owner %d)",
				     cpu, spc, (void *)s, s->state, s->spanclass, s->owner_cpu);
		}
		for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++) {
			uint64_t n = 0;
			if (check_owned_set(cpu, spc, &n))
				return 1;
			cached += n;
		}
		if (cached != tally[spc].cached) {
			name_unreachable_owned(spc);
			FAIL("class %u: %lu spans in mcaches, %lu spans owned", spc,
			     (unsigned long)cached, (unsigned long)tally[spc].cached);
		}
		/* Frees are counted as mallocs less live objects
		 * (mm/mstats.c): never fewer mallocs than objects live. */
		if (spc != TINY_SPAN_CLASS) {
			uint64_t a = 0;
			for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++)
				a += mcache_nmalloc(&mcaches[cpu], spc);
			if (a < tally[spc].live)
				FAIL("class %u: %lu live objects in the bitmaps, but %lu handed out",
				     spc, (unsigned long)tally[spc].live, (unsigned long)a);
		}
	}
	return 0;
}

/* Arena h's chunks, free lists, retained list (its pages added to
 * *retained), page totals and metadata blocks; its large objects and
 * cached runs added to *nlarge. */
static int check_arena(const struct mheap *h, uint64_t *nlarge, uint64_t *retained)
{
	uint64_t free_pages = 0, small_pages = 0, large_pages = 0, chunk_bytes = 0;
	if (walk_chunks(h, &free_pages, &small_pages, &large_pages, nlarge, &chunk_bytes) ||
	    check_free_lists(h) || check_retained(h, retained))
		return 1;
	if (free_pages != h->free_pages || small_pages != h->small_pages ||
	    large_pages != h->large_pages || chunk_bytes != h->chunk_bytes)
		FAIL("arena %u page totals: walk found free %lu small %lu large %lu "
		     "in %lu bytes; it counts %lu %lu %lu in %lu", h->arena,
		     (unsigned long)free_pages, (unsigned long)small_pages,
		     (unsigned long)large_pages, (unsigned long)chunk_bytes,
		     (unsigned long)h->free_pages, (unsigned long)h->small_pages,
		     (unsigned long)h->large_pages, (unsigned long)h->chunk_bytes);
	uint64_t nchunks = 0;
	for (const struct heap_chunk *c = h->chunks; c; c = c->next)
		nchunks++;
	if (nchunks != h->ngrow + h->nadopt - h->ngiven - h->nrelease)
		FAIL("arena %u holds %lu chunks, but grew %lu, adopted %lu, gave %lu and released "
		     "%lu", h->arena, (unsigned long)nchunks, (unsigned long)h->ngrow,
		     (unsigned long)h->nadopt, (unsigned long)h->ngiven, (unsigned long)h->nrelease);
	if (free_pages + small_pages + large_pages != chunk_bytes >> MM_PAGE_SHIFT)
		FAIL("arena %u: pages in spans %lu != pages in chunks %lu", h->arena,
		     (unsigned long)(free_pages + small_pages + large_pages),
		     (unsigned long)(chunk_bytes >> MM_PAGE_SHIFT));
	/* Each CPU's lists of metadata blocks (mm/fixalloc.h). */
	const struct fixalloc *pools[] = { &h->span_alloc, &h->chunk_alloc, &h->tiny_alloc,
					   &h->bits_alloc, &h->bits256_alloc };
	const char *const pool_names[] = { "span records", "chunk records", "tiny tables",
					   "64-byte bitmap units", "256-byte bitmap units" };
	for (unsigned i = 0; i < sizeof(pools) / sizeof(pools[0]); i++) {
		const char *why = fixalloc_verify(pools[i]);
		if (why)
			FAIL("arena %u's fixalloc of %s: %s", h->arena, pool_names[i], why);
	}
	if (h != &mheap && (h->tiny_alloc.inuse || h->bits_alloc.inuse || h->bits256_alloc.inuse))
		FAIL("arena %u holds small spans' metadata", h->arena);
	return 0;
}

int mheap_verify(void)
{
	if (!mheap_ready())
		return 0;
	unsigned long irq = mm_irq_save();
	mm_spin_lock(&kmem_idle_lock);   /* no idle CPU enters the heap meanwhile */
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++)
		mm_spin_lock(&mcentrals[spc].lock);
	mheap_lock_arenas();

	broken_rule = NULL;
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++)
		tally[spc].listed = tally[spc].cached = tally[spc].live = 0;
	uint64_t nlarge = 0, retained = 0;
	cached_seen.pages = cached_seen.runs = 0;
	for (unsigned i = 0; i < MHEAP_NARENAS; i++)
		records_seen[i] = 0;
	for (unsigned p = 0; p < MSPAN_BITMAP_POOLS; p++)
		units_seen[p] = 0;
	int bad = 0;
	for (unsigned i = 0; !bad && i < MHEAP_NARENAS; i++)
		bad = check_arena(mheap_arena(i), &nlarge, &retained);
	if (!bad)
		bad = check_retained_bound(retained);
	if (!bad)
		bad = check_page_caches();
	if (!bad)
		bad = check_centrals();
	if (!bad)
		bad = check_notices();
	if (!bad)
		bad = check_tiny_blocks();
	if (!bad)
		bad = check_pagemap_none();
	/* Every record and every bitmap unit handed out belongs to a span of
	 * the heap: none leaked, none freed twice. */
	uint64_t handed[MSPAN_BITMAP_POOLS] = { mheap.bits_alloc.inuse, mheap.nbitmap_big,
						 mheap.bits256_alloc.inuse };
	for (unsigned p = 0; !bad && p < MSPAN_BITMAP_POOLS; p++) {
		if (units_seen[p] != handed[p]) {
			REPORT("small spans hold %lu bitmap units of %lu bytes, "
			       "%lu handed out", (unsigned long)units_seen[p],
			       (unsigned long)mspan_bitmap_unit_size(p), (unsigned long)handed[p]);
			bad = 1;
		}
	}
	/* The span records' fixalloc of arena 0 also holds the 128-byte units. */
	for (unsigned i = 0; !bad && i < MHEAP_NARENAS; i++) {
		const struct mheap *h = mheap_arena(i);
		uint64_t units = i == 0 ? mheap.nbitmap_big : 0;
		if (records_seen[i] + units != h->span_alloc.inuse) {
			REPORT("%lu span records in arena %u (and %lu bitmap units), "
			       "%lu handed out", (unsigned long)records_seen[i], i,
			       (unsigned long)units, (unsigned long)h->span_alloc.inuse);
			bad = 1;
		}
	}
	if (!bad) {
		uint64_t la = 0, lf = 0;
		for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++) {
			la += mcaches[cpu].large_alloc;
			lf += mcaches[cpu].large_free;
		}
		if (la - lf != nlarge - cached_seen.runs) {
			REPORT("%lu large objects in the heap, counters say %lu",
			       (unsigned long)(nlarge - cached_seen.runs), (unsigned long)(la - lf));
			bad = 1;
		}
	}

	mheap_unlock_arenas();
	for (unsigned spc = NUM_SPAN_CLASSES; spc-- > 0;)
		mm_spin_unlock(&mcentrals[spc].lock);
	mm_spin_unlock(&kmem_idle_lock);
	mm_irq_restore(irq);
	return bad;
}
