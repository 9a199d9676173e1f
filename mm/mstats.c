/*
 * mm/mstats.c - heap statistics and the /proc/slabinfo-style dump.
 *
 * Counting stays off the shared paths: each CPU counts its own mallocs and
 * frees per span class in its mcache (plain stores, read here with relaxed
 * loads), the mcentrals count spans and refills under their locks, the
 * mheap counts pages under its lock. A snapshot sums them; while other CPUs
 * run it is approximate (counters move while we add), never torn.
 */
#include "mm/kmalloc.h"
#include "mm/malloc_internal.h"
#include "mm/mcache.h"
#include "mm/mcentral.h"
#include "mm/mheap.h"
#include "mm/badptr.h"
#include "mm/platform.h"

static uint64_t rd(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/* Objects handed out and freed for span class spc, over every CPU. */
static void class_counts(unsigned spc, uint64_t *nmalloc, uint64_t *nfree)
{
	*nmalloc = *nfree = 0;
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++) {
		*nmalloc += rd(&mcaches[cpu].nmalloc[spc]);
		*nfree += rd(&mcaches[cpu].nfree[spc]);
	}
}

void kmem_get_stats(struct kmem_stats *st)
{
	uint64_t nm = 0, nf = 0, tiny = 0;

	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++) {
		uint64_t a, f;
		class_counts(spc, &a, &f);
		nm += a;
		nf += f;
	}
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++) {
		nm += rd(&mcaches[cpu].large_alloc);
		nf += rd(&mcaches[cpu].large_free);
		tiny += rd(&mcaches[cpu].nmalloc[TINY_SPAN_CLASS]);
	}
	uint64_t cached_pages = 0;
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++)
		cached_pages += rd(&page_caches[cpu].pages);
	unsigned long flags = mm_spin_lock_irqsave(&mheap.lock);
	st->heap_bytes = mheap_ready() ? mheap_sys_bytes() : 0;
	st->span_bytes_inuse = mheap.small_pages << MM_PAGE_SHIFT;
	/* Page-cached runs count as large pages in the mheap (the heap
	 * gave them out) but hold no object. */
	if (cached_pages > mheap.large_pages)
		cached_pages = mheap.large_pages;
	st->large_bytes = (mheap.large_pages - cached_pages) << MM_PAGE_SHIFT;
	st->retained_bytes = (mheap.free_pages + cached_pages) << MM_PAGE_SHIFT;
	st->scavenged_bytes = mheap.scavenged_bytes;
	st->page_cache_bytes = cached_pages << MM_PAGE_SHIFT;
	mm_spin_unlock_irqrestore(&mheap.lock, flags);
	/* Debug mode: objects in the quarantine are freed as far as their
	 * users are concerned (mm/mdebug.c); none in a normal build. */
	uint64_t qobjs, qlarge;
	kmem_debug_quarantined(&qobjs, &qlarge);
	nf += qobjs;
	st->large_bytes -= qlarge;
	st->nmalloc = nm;
	st->nfree = nf;
	st->objects_inuse = nm >= nf ? nm - nf : 0;
	st->tiny_allocs = tiny;
	st->bad_frees = __atomic_load_n(&kmem_bad_frees, __ATOMIC_RELAXED);
	st->oom = __atomic_load_n(&kmem_oom, __ATOMIC_RELAXED);
}

void kmem_dump(void)
{
	struct kmem_stats st;

	mm_log("slabinfo - spanheap (Go size classes; 'n' = noscan span class)");
	mm_log("# name          <active_objs> <num_objs> <objsize> <objperspan> <pagesperspan>"
	       " : spandata <num_spans> : <refills> <grows> <releases>");
	for (unsigned spc = 2; spc < NUM_SPAN_CLASSES; spc++) {
		struct mcentral *c = &mcentrals[spc];
		unsigned cls = spanclass_sizeclass(spc);
		uint64_t a, f;
		class_counts(spc, &a, &f);
		unsigned long flags = mm_spin_lock_irqsave(&c->lock);
		uint64_t nspans = c->nspans, nrefill = c->nrefill;
		uint64_t ngrow = c->ngrow, nrelease = c->nrelease;
		mm_spin_unlock_irqrestore(&c->lock, flags);
		if (!nspans && !a && !nrefill)
			continue;
		unsigned objs = (unsigned)size_class_obj_index(cls,
			(uint32_t)class_to_npages[cls] << MM_PAGE_SHIFT);
		mm_log("%s-%-10u%c %13lu %10lu %9u %13u %15u : spandata %11lu : %9lu %7lu %10lu",
		       spc == TINY_SPAN_CLASS ? "tiny" : "kmalloc", class_to_size[cls],
		       spanclass_noscan(spc) ? 'n' : ' ',
		       (unsigned long)(a >= f ? a - f : 0),
		       (unsigned long)(nspans * objs), class_to_size[cls], objs,
		       class_to_npages[cls], (unsigned long)nspans,
		       (unsigned long)nrefill, (unsigned long)ngrow,
		       (unsigned long)nrelease);
	}
	kmem_get_stats(&st);
	unsigned long flags = mm_spin_lock_irqsave(&mheap.lock);
	uint64_t nlarge = mheap.nlarge, free_pages = mheap.free_pages;
	uint64_t ngrow = mheap.ngrow, nrelease = mheap.nrelease;
	uint64_t chunk_bytes = mheap.chunk_bytes;
	mm_spin_unlock_irqrestore(&mheap.lock, flags);
	uint64_t cached_runs = 0;
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++)
		cached_runs += rd(&page_caches[cpu].nruns);
	mm_log("large objects: %lu live, %lu KiB; page caches: %lu runs, %lu KiB",
	       (unsigned long)(nlarge >= cached_runs ? nlarge - cached_runs : 0),
	       (unsigned long)(st.large_bytes >> 10), (unsigned long)cached_runs,
	       (unsigned long)(st.page_cache_bytes >> 10));
	mm_log("retained: %lu KiB free (%lu KiB in wholly free chunks, target %lu KiB), "
	       "%lu KiB scavenged", (unsigned long)(st.retained_bytes >> 10),
	       (unsigned long)((__atomic_load_n(&mheap.retained_pages, __ATOMIC_RELAXED)
				<< MM_PAGE_SHIFT) >> 10),
	       (unsigned long)(mheap_retain_target() >> 10),
	       (unsigned long)(st.scavenged_bytes >> 10));
	mm_log("heap: %lu KiB from the platform (%lu KiB in chunks, %lu KiB free runs), "
	       "%lu KiB in small spans; chunks grown %lu, released %lu",
	       (unsigned long)(st.heap_bytes >> 10), (unsigned long)(chunk_bytes >> 10),
	       (unsigned long)((free_pages << MM_PAGE_SHIFT) >> 10),
	       (unsigned long)(st.span_bytes_inuse >> 10), (unsigned long)ngrow,
	       (unsigned long)nrelease);
	mm_log("objects: %lu in use, %lu mallocs, %lu frees, %lu tiny, %lu bad frees, %lu OOM",
	       (unsigned long)st.objects_inuse, (unsigned long)st.nmalloc,
	       (unsigned long)st.nfree, (unsigned long)st.tiny_allocs,
	       (unsigned long)st.bad_frees, (unsigned long)st.oom);
}
