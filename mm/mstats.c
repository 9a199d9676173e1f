/*
 * mm/mstats.c - heap statistics and the /proc/slabinfo-style dump.
 *
 * Counting stays off the shared paths: each CPU counts its own mallocs
 * per span class in its mcache (in bulk, plain stores, read here with
 * relaxed loads), the mcentrals count spans and refills under their locks,
 * each mheap arena counts pages under its lock. Frees of small objects are
 * counted nowhere: the objects live are in the bitmaps, so a snapshot walks
 * the small spans (class_counts) and takes a class's frees as its mallocs
 * less its live objects (kfree's fast path then has no counter to add to:
 * docs/HEAP.md, "Statistics"). A snapshot is exact when no other CPU
 * allocates or frees; while they do, it is approximate (each object
 * counted as its bits are read), never torn.
 *
 * Also reported: the metadata (fixalloc blocks of span records, bitmap
 * blocks, chunk and tiny records, page-map leaves, the static structures), the slack of the small
 * spans per class (span bytes against live objects x object size), and
 * the lock counters every mm_spinlock keeps (mm/mlock.h), read relaxed.
 */
#include "mm/kmalloc.h"
#include "mm/malloc_internal.h"
#include "mm/mcache.h"
#include "mm/mcentral.h"
#include "mm/mheap.h"
#include "mm/mpagecache.h"
#include "mm/badptr.h"
#include "mm/platform.h"
#include "mm/pagemap.h"

static uint64_t rd(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/* Per span class, over every CPU: objects handed out, and those of them
 * live now (tiny class: tiny objects). */
struct class_counts {
	uint64_t nmalloc[NUM_SPAN_CLASSES];
	uint64_t live[NUM_SPAN_CLASSES];
};

/* The objects live in small span s: slots set in alloc_bits and not in
 * remote_bits (remote frees not swept yet). The remote word first, as
 * mspan_obj_live reads them (a sweep clears them in the other order).
 * Acquire loads: what class_counts reads after them stays after them. */
static uint64_t span_live(const struct mspan *s)
{
	uint64_t n = 0;
	for (unsigned w = 0, nw = mspan_nwords(s); w < nw; w++) {
		uint64_t r = __atomic_load_n(mspan_remote_word(s, w), __ATOMIC_ACQUIRE);
		uint64_t a = __atomic_load_n(mspan_alloc_word(s, w), __ATOMIC_ACQUIRE);
		n += (uint64_t)mm_popcount64(a & ~r & mspan_word_mask(s, w));
	}
	return n;
}

/* Add the live objects of every small span in use to live[], per class
 * (not the tiny class's: its slots are blocks). Small spans are all in
 * arena 0 and only its lock allocates or frees one, so under that lock
 * each stays in use, with its bitmap, while the walk reads it. Other runs
 * may change meanwhile (a page cache splits and merges its runs without
 * the lock, never into a small span), so a page that does not start a
 * run its record agrees with is stepped over one page at a time. */
static void small_live(uint64_t live[NUM_SPAN_CLASSES])
{
	unsigned long flags = mm_spin_lock_irqsave(&mheap.lock);
	for (struct heap_chunk *c = mheap.chunks; c; c = c->next) {
		uintptr_t end = c->base + (c->npages << MM_PAGE_SHIFT);
		for (uintptr_t a = c->base; a < end;) {
			const struct mspan *s = pagemap_lookup(a);
			size_t n = 1;
			if (s && __atomic_load_n(&s->startaddr, __ATOMIC_RELAXED) == a) {
				n = __atomic_load_n(&s->npages, __ATOMIC_RELAXED);
				if (mspan_state_of(s) == MSPAN_INUSE &&
				    s->spanclass != TINY_SPAN_CLASS)
					live[s->spanclass] += span_live(s);
				if (n == 0 || n > (end - a) >> MM_PAGE_SHIFT)
					n = 1;
			}
			a += n << MM_PAGE_SHIFT;
		}
	}
	mm_spin_unlock_irqrestore(&mheap.lock, flags);
}

/* The counts of every class. The bitmaps are read before the malloc
 * counts (span_live's acquire loads), so that, with other CPUs at work,
 * an object seen live is one the counts include: frees (nmalloc - live)
 * never come out below those done before the call. */
static void class_counts(struct class_counts *cc)
{
	uint64_t tiny_nfree = 0;
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++)
		cc->live[spc] = 0;
	small_live(cc->live);
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++) {
		cc->nmalloc[spc] = 0;
		for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++)
			cc->nmalloc[spc] += mcache_nmalloc(&mcaches[cpu], spc);
	}
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++)
		tiny_nfree += rd(&mcaches[cpu].tiny_nfree);
	uint64_t tiny = cc->nmalloc[TINY_SPAN_CLASS];
	cc->live[TINY_SPAN_CLASS] = tiny >= tiny_nfree ? tiny - tiny_nfree : 0;
}

/* Frees of class spc: objects handed out, less those live. */
static uint64_t class_nfree(const struct class_counts *cc, unsigned spc)
{
	return cc->nmalloc[spc] >= cc->live[spc] ? cc->nmalloc[spc] - cc->live[spc] : 0;
}

/* What the mheap's arenas count, summed, each read under its lock. */
struct heap_counts {
	uint64_t chunk_bytes, free_pages, small_pages, large_pages;
	uint64_t records;            /* span_alloc objects: records and 128-byte units */
	uint64_t span_sys_bytes;     /* span_alloc blocks */
	uint64_t chunk_sys_bytes, tiny_sys_bytes, sys_bytes;
	uint64_t scavenged_bytes, ngrow, nrelease;
	uint64_t lock_acquires, lock_contended;
};

static void heap_counts(struct heap_counts *hc)
{
	*hc = (struct heap_counts){ 0 };
	for (unsigned i = 0, n = mheap_arenas_in_use(); i < n; i++) {
		struct mheap *h = mheap_arena(i);
		unsigned long flags = mm_spin_lock_irqsave(&h->lock);
		hc->chunk_bytes += h->chunk_bytes;
		hc->free_pages += h->free_pages;
		hc->small_pages += h->small_pages;
		hc->large_pages += h->large_pages;
		hc->records += h->span_alloc.inuse;
		hc->span_sys_bytes += h->span_alloc.sys_bytes;
		hc->chunk_sys_bytes += h->chunk_alloc.sys_bytes;
		hc->tiny_sys_bytes += h->tiny_alloc.sys_bytes;
		hc->sys_bytes += mheap_arena_sys_bytes_locked(h);
		hc->scavenged_bytes += h->scavenged_bytes;
		hc->ngrow += h->ngrow;
		hc->nrelease += h->nrelease;
		mm_spin_unlock_irqrestore(&h->lock, flags);
		/* Read after our own acquisition: it is counted. */
		hc->lock_acquires += rd(&h->lock.nacquire);
		hc->lock_contended += rd(&h->lock.ncontended);
	}
}

/* kmem_dump's line per arena that ever held a chunk (arena 0 always). */
static void dump_arenas(void)
{
	for (unsigned i = 0, n = mheap_arenas_in_use(); i < n; i++) {
		struct mheap *h = mheap_arena(i);
		unsigned long flags = mm_spin_lock_irqsave(&h->lock);
		uint64_t chunk = h->chunk_bytes, free_pages = h->free_pages;
		uint64_t retained = h->retained_pages, small = h->small_pages;
		uint64_t large = h->large_pages;
		uint64_t ngrow = h->ngrow, nadopt = h->nadopt, nrelease = h->nrelease;
		uint64_t ngiven = h->ngiven;
		mm_spin_unlock_irqrestore(&h->lock, flags);
		mm_log("arena %u: %lu KiB in chunks (%lu KiB free, %lu KiB of it retained), "
		       "%lu KiB small spans, %lu KiB large objects and cached runs; "
		       "chunks grown %lu, adopted %lu, given to other arenas %lu, released %lu; "
		       "lock %lu acquired, %lu contended", i, (unsigned long)(chunk >> 10),
		       (unsigned long)((free_pages << MM_PAGE_SHIFT) >> 10),
		       (unsigned long)((retained << MM_PAGE_SHIFT) >> 10),
		       (unsigned long)((small << MM_PAGE_SHIFT) >> 10),
		       (unsigned long)((large << MM_PAGE_SHIFT) >> 10), (unsigned long)ngrow,
		       (unsigned long)nadopt, (unsigned long)ngiven, (unsigned long)nrelease,
		       (unsigned long)rd(&h->lock.nacquire), (unsigned long)rd(&h->lock.ncontended));
	}
}

/* Class spc's figures (2 <= spc < NUM_SPAN_CLASSES) from the counts. */
static void class_stats(const struct class_counts *cc, unsigned spc,
			struct kmem_class_stats *cs)
{
	struct mcentral *c = &mcentrals[spc];
	unsigned cls = spanclass_sizeclass(spc);
	uint32_t span_size = (uint32_t)class_to_npages[cls] << MM_PAGE_SHIFT;
	cs->object_size = class_to_size[cls];
	cs->objects_per_span = (uint32_t)size_class_obj_index(cls, span_size);
	cs->pages_per_span = class_to_npages[cls];
	cs->noscan = spanclass_noscan(spc);
	cs->spans = rd(&c->nspans);
	cs->objects_inuse = cc->live[spc];
	cs->span_bytes = cs->spans * span_size;
	cs->object_bytes = spc == TINY_SPAN_CLASS ? 0 : cs->objects_inuse * cs->object_size;
	cs->tail_bytes = cs->spans * (span_size - cs->objects_per_span * cs->object_size);
	cs->lock_acquires = rd(&c->lock.nacquire);
	cs->lock_contended = rd(&c->lock.ncontended);
}

/* The fields past the original ones: metadata, slack, locks, pages. */
static void get_extra_stats(struct kmem_stats *st, const struct heap_counts *hc,
			    const struct class_counts *cc)
{
	st->object_bytes_inuse = 0;
	st->mcentral_lock_acquires = st->mcentral_lock_contended = 0;
	for (unsigned spc = 2; spc < NUM_SPAN_CLASSES; spc++) {
		struct kmem_class_stats cs;
		class_stats(cc, spc, &cs);
		st->object_bytes_inuse += cs.object_bytes;
		st->mcentral_lock_acquires += cs.lock_acquires;
		st->mcentral_lock_contended += cs.lock_contended;
	}
	/* The small spans' slack is never negative, counters racing or not. */
	if (st->object_bytes_inuse > st->span_bytes_inuse)
		st->object_bytes_inuse = st->span_bytes_inuse;
	unsigned long flags = mm_spin_lock_irqsave(&mheap.lock);
	/* The 128-byte bitmap units sit in the span records' blocks: they
	 * count as bitmaps. Arena 0 holds every bitmap. */
	uint64_t nbitmap_big = mheap.nbitmap_big;
	st->meta_bitmap_bytes = mheap_bitmap_sys_bytes();
	uint64_t bits_sys_bytes = mheap.bits_alloc.sys_bytes + mheap.bits256_alloc.sys_bytes;
	mm_spin_unlock_irqrestore(&mheap.lock, flags);
	st->chunk_bytes = hc->chunk_bytes;
	st->spans = hc->records - nbitmap_big;   /* records only */
	st->meta_span_bytes = hc->span_sys_bytes + bits_sys_bytes - st->meta_bitmap_bytes;
	st->meta_chunk_bytes = hc->chunk_sys_bytes;
	st->meta_tiny_bytes = hc->tiny_sys_bytes;
	st->meta_pagemap_bytes = pagemap_sys_bytes();
	st->pages_returned = hc->scavenged_bytes >> MM_PAGE_SHIFT;
	st->mheap_lock_acquires = hc->lock_acquires;
	st->mheap_lock_contended = hc->lock_contended;
	st->pages_held = st->chunk_bytes >> MM_PAGE_SHIFT;
	st->meta_static_bytes = sizeof(mcaches) + sizeof(mcentrals) +
				sizeof(page_caches) + sizeof(mheap) + sizeof(mheap_more_arenas) +
				sizeof(pagemap_l1) + sizeof(pagemap_empty_leaf) + sizeof(mspan_none);
	st->metadata_bytes = st->meta_span_bytes + st->meta_bitmap_bytes + st->meta_chunk_bytes +
			     st->meta_tiny_bytes + st->meta_pagemap_bytes +
			     st->meta_static_bytes;
}

void kmem_get_stats(struct kmem_stats *st)
{
	uint64_t nm = 0, nf = 0;
	struct class_counts cc;

	/* Debug mode: objects in the quarantine are freed as far as their
	 * users are concerned (mm/mdebug.c); none in a normal build. Read
	 * before the bitmaps: an object that leaves the quarantine meanwhile
	 * is then counted freed twice rather than not at all. */
	uint64_t qobjs, qlarge;
	kmem_debug_quarantined(&qobjs, &qlarge);
	class_counts(&cc);
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++) {
		nm += cc.nmalloc[spc];
		nf += class_nfree(&cc, spc);
	}
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++) {
		nm += rd(&mcaches[cpu].large_alloc);
		nf += rd(&mcaches[cpu].large_free);
	}
	uint64_t cached_pages = 0;
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++)
		cached_pages += rd(&page_caches[cpu].pages) + rd(&page_caches[cpu].deferred_pages);
	struct heap_counts hc;
	heap_counts(&hc);
	st->heap_bytes = mheap_ready() ? hc.sys_bytes : 0;
	st->span_bytes_inuse = hc.small_pages << MM_PAGE_SHIFT;
	/* Page-cached runs count as large pages in the mheap (the heap
	 * gave them out) but hold no object. */
	if (cached_pages > hc.large_pages)
		cached_pages = hc.large_pages;
	st->large_bytes = (hc.large_pages - cached_pages) << MM_PAGE_SHIFT;
	st->retained_bytes = (hc.free_pages + cached_pages) << MM_PAGE_SHIFT;
	st->scavenged_bytes = hc.scavenged_bytes;
	st->page_cache_bytes = cached_pages << MM_PAGE_SHIFT;
	nf += qobjs;
	st->large_bytes -= qlarge;
	st->nmalloc = nm;
	st->nfree = nf;
	st->objects_inuse = nm >= nf ? nm - nf : 0;
	st->tiny_allocs = cc.nmalloc[TINY_SPAN_CLASS];
	st->bad_frees = __atomic_load_n(&kmem_bad_frees, __ATOMIC_RELAXED);
	st->oom = __atomic_load_n(&kmem_oom, __ATOMIC_RELAXED);
	get_extra_stats(st, &hc, &cc);
}

_Static_assert(KMEM_SPAN_CLASSES == NUM_SPAN_CLASSES, "mm/kmalloc.h's count of span classes");

int kmem_get_class_stats(unsigned spc, struct kmem_class_stats *cs)
{
	if (spc < 2 || spc >= NUM_SPAN_CLASSES)
		return -1;
	struct class_counts cc;
	class_counts(&cc);
	class_stats(&cc, spc, cs);
	return 0;
}

void kmem_get_all_class_stats(struct kmem_class_stats cs[KMEM_SPAN_CLASSES])
{
	struct class_counts cc;
	class_counts(&cc);
	cs[0] = cs[1] = (struct kmem_class_stats){ 0 };
	for (unsigned spc = 2; spc < NUM_SPAN_CLASSES; spc++)
		class_stats(&cc, spc, &cs[spc]);
}

void kmem_dump(void)
{
	struct kmem_stats st;
	struct class_counts cc;

	mm_log("slabinfo - spanheap (Go size classes; 'n' = noscan span class)");
	mm_log("# name          <active_objs> <num_objs> <objsize> <objperspan> <pagesperspan>"
	       " : spandata <num_spans> : <refills> <grows> <releases>"
	       " : slack <KiB> <tail KiB> : lock <acquires> <contended>");
	class_counts(&cc);
	for (unsigned spc = 2; spc < NUM_SPAN_CLASSES; spc++) {
		struct mcentral *c = &mcentrals[spc];
		uint64_t a = cc.nmalloc[spc];
		unsigned long flags = mm_spin_lock_irqsave(&c->lock);
		uint64_t nspans = c->nspans, nrefill = c->nrefill;
		uint64_t ngrow = c->ngrow, nrelease = c->nrelease;
		mm_spin_unlock_irqrestore(&c->lock, flags);
		if (!nspans && !a && !nrefill)
			continue;
		struct kmem_class_stats cs;
		class_stats(&cc, spc, &cs);
		uint64_t slack = cs.span_bytes - (cs.object_bytes < cs.span_bytes ?
						  cs.object_bytes : cs.span_bytes);
		mm_log("%s-%-10u%c %13lu %10lu %9u %13u %15u : spandata %11lu : %9lu %7lu %10lu"
		       " : slack %7lu %6lu : lock %9lu %6lu",
		       spc == TINY_SPAN_CLASS ? "tiny" : "kmalloc", cs.object_size,
		       cs.noscan ? 'n' : ' ',
		       (unsigned long)cs.objects_inuse,
		       (unsigned long)(nspans * cs.objects_per_span), cs.object_size,
		       cs.objects_per_span, cs.pages_per_span, (unsigned long)nspans,
		       (unsigned long)nrefill, (unsigned long)ngrow,
		       (unsigned long)nrelease, (unsigned long)(slack >> 10),
		       (unsigned long)(cs.tail_bytes >> 10),
		       (unsigned long)cs.lock_acquires, (unsigned long)cs.lock_contended);
	}
	kmem_get_stats(&st);
	struct heap_counts hc;
	heap_counts(&hc);
	uint64_t free_pages = hc.free_pages;
	uint64_t ngrow = hc.ngrow, nrelease = hc.nrelease;
	uint64_t chunk_bytes = hc.chunk_bytes;
	uint64_t cached_runs = 0, nlarge = 0;
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++) {
		cached_runs += rd(&page_caches[cpu].nruns) + (rd(&page_caches[cpu].deferred_pages) != 0);
		nlarge += rd(&mcaches[cpu].large_alloc) - rd(&mcaches[cpu].large_free);
	}
	mm_log("large objects: %lu live, %lu KiB; page caches: %lu runs, %lu KiB",
	       (unsigned long)nlarge,
	       (unsigned long)(st.large_bytes >> 10), (unsigned long)cached_runs,
	       (unsigned long)(st.page_cache_bytes >> 10));
	mm_log("retained: %lu KiB free (%lu KiB in wholly free chunks, target %lu KiB), "
	       "%lu KiB scavenged", (unsigned long)(st.retained_bytes >> 10),
	       (unsigned long)((mheap_retained_pages() << MM_PAGE_SHIFT) >> 10),
	       (unsigned long)(mheap_retain_target() >> 10),
	       (unsigned long)(st.scavenged_bytes >> 10));
	mm_log("heap: %lu KiB from the platform (%lu KiB in chunks, %lu KiB free runs), "
	       "%lu KiB in small spans; chunks grown %lu, released %lu",
	       (unsigned long)(st.heap_bytes >> 10), (unsigned long)(chunk_bytes >> 10),
	       (unsigned long)((free_pages << MM_PAGE_SHIFT) >> 10),
	       (unsigned long)(st.span_bytes_inuse >> 10), (unsigned long)ngrow,
	       (unsigned long)nrelease);
	if (MHEAP_NARENAS > 1)
		dump_arenas();
	mm_log("objects: %lu in use, %lu mallocs, %lu frees, %lu tiny, %lu bad frees, %lu OOM",
	       (unsigned long)st.objects_inuse, (unsigned long)st.nmalloc,
	       (unsigned long)st.nfree, (unsigned long)st.tiny_allocs,
	       (unsigned long)st.bad_frees, (unsigned long)st.oom);
	mm_log("metadata: %lu KiB (span records %lu KiB for %lu spans, bitmaps %lu KiB, "
	       "chunk records %lu KiB, tiny tables %lu KiB, page-map leaves %lu KiB, static %lu KiB) "
	       "for %lu KiB of chunks",
	       (unsigned long)(st.metadata_bytes >> 10), (unsigned long)(st.meta_span_bytes >> 10),
	       (unsigned long)st.spans, (unsigned long)(st.meta_bitmap_bytes >> 10),
	       (unsigned long)(st.meta_chunk_bytes >> 10),
	       (unsigned long)(st.meta_tiny_bytes >> 10),
	       (unsigned long)(st.meta_pagemap_bytes >> 10),
	       (unsigned long)(st.meta_static_bytes >> 10), (unsigned long)(st.chunk_bytes >> 10));
	mm_log("small spans: %lu KiB, %lu KiB of live objects (x object size), %lu KiB slack",
	       (unsigned long)(st.span_bytes_inuse >> 10),
	       (unsigned long)(st.object_bytes_inuse >> 10),
	       (unsigned long)((st.span_bytes_inuse - st.object_bytes_inuse) >> 10));
	mm_log("locks: mcentral %lu acquired, %lu contended; mheap %lu acquired, %lu contended; "
	       "pages: %lu held, %lu returned",
	       (unsigned long)st.mcentral_lock_acquires, (unsigned long)st.mcentral_lock_contended,
	       (unsigned long)st.mheap_lock_acquires, (unsigned long)st.mheap_lock_contended,
	       (unsigned long)st.pages_held, (unsigned long)st.pages_returned);
}
