/*
 * mm/mpagecache.h - per-CPU page caches for large objects (mm/mpagecache.c).
 */
#ifndef MM_MPAGECACHE_H
#define MM_MPAGECACHE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "mm/platform.h"
#include "mm/mspan.h"

/* At most PCACHE_RUNS runs and PCACHE_MAX_PAGES pages per CPU, each run
 * at most PCACHE_MAX_RUN pages; PCACHE_SPARE span records in the stash. */
#define PCACHE_MAX_PAGES (MM_PCACHE_MAX_BYTES >> MM_PAGE_SHIFT)
#define PCACHE_MAX_RUN (PCACHE_MAX_PAGES < 128 ? PCACHE_MAX_PAGES : 128)
#define PCACHE_RUNS 16
#define PCACHE_SPARE 8

/*
 * A CPU's page cache. Everything in it, and the records it points to
 * (their state, startaddr, npages and the page map's entries for their
 * ends), is written only by its CPU with interrupts off (as an mcache),
 * or with every CPU quiescent (kmem_drain_all, the verifier); pages and
 * nruns are also read (relaxed) by the statistics. Runs are in state
 * MSPAN_CACHED with owner_cpu = the CPU, stash records in MSPAN_DEAD.
 */
struct page_cache {
	struct mspan *run[PCACHE_RUNS];      /* run[0 .. nruns), in no order */
	struct mspan *spare[PCACHE_SPARE];   /* records for splits, from merges */
	uint32_t nspare;
	uint64_t pages, nruns;               /* in run[] */
	/* Where the platform keeps caches across misses: the last run too
	 * long for run[] freed here, on its way to the mheap in this CPU's
	 * next lock round (a miss's, or the next such free's). */
	struct mspan *deferred;
	uint64_t deferred_pages;
	struct mheap *arena;   /* mheap_of_cpu(its CPU), set once: every run
	                        * and stash record here is that arena's */
} __attribute__((aligned(64)));
extern struct page_cache page_caches[MM_MAX_CPUS];

/* Once, after mheap_init (kmalloc_init): each cache's arena. */
void mheap_pcache_init(void);
/* A large object of npages pages aligned to align_pages pages, for CPU
 * cpu (interrupts off): the smallest cached run that fits, split when
 * longer (no lock); else from the mheap, which grows only after this
 * CPU's cache has been given back. NULL when out of memory. */
struct mspan *mheap_alloc_large(size_t npages, size_t align_pages, unsigned cpu);
/* Free the large object starting at p, whose span the caller found to be
 * s, on CPU cpu (interrupts off). Claimed by one compare-and-swap of its
 * state (so two racing frees cannot both succeed), then kept in the CPU's
 * page cache (merged with cached neighbours) or given to the mheap. True
 * when done, false when p is not a live large object (nothing changed). */
bool mheap_free_large(uintptr_t p, struct mspan *s, unsigned cpu);
/* Give CPU cpu's page cache and stash back to the mheap (interrupts off,
 * on that CPU, or with every CPU quiescent). */
void mheap_pcache_drain(unsigned cpu);

#endif
