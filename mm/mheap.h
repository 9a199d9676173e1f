/*
 * mm/mheap.h - the page heap (Go's mheap): runs of 8 KiB pages.
 */
#ifndef MM_MHEAP_H
#define MM_MHEAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "mm/platform.h"
#include "mm/mlock.h"
#include "mm/fixalloc.h"
#include "mm/mspan.h"
#include "mm/pagemap.h"

/* Free runs of exactly n pages sit on free[n] (1 <= n < MHEAP_NEXACT);
 * longer runs in bins of doubling lengths, free[MHEAP_NEXACT + k] holding
 * those of MHEAP_NEXACT << k up to twice that, the last bin all longer
 * (mheap_free_list_index); free[0] is not used. */
#define MHEAP_NEXACT 128
#define MHEAP_NLONG 28   /* 128 << 27 pages: 1 TiB */
#define MHEAP_NFREE (MHEAP_NEXACT + MHEAP_NLONG)
/* The heap grows by at least this much at a time (mm/platform.h). */
#define MHEAP_CHUNK_MIN MM_CHUNK_MIN_BYTES

/* A region obtained from the platform with one mm_sys_alloc call. Free
 * runs never coalesce across chunks; a chunk that is one free run again is
 * retained (on the retained list, oldest first) until the scavenger gives
 * it back. */
struct heap_chunk {
	uintptr_t base;
	size_t npages;
	struct heap_chunk *next, *prev;
	struct heap_chunk *rnext, *rprev;   /* retained list, while wholly free */
	bool retained;
};

struct mheap {
	/*
	 * lock protects everything in struct mheap, the page map's writes,
	 * every span in state MSPAN_FREE, and the state/startaddr/npages/
	 * chunk of every span record, but for the runs in a page cache and
	 * the records in its stash, which belong to the cache's CPU
	 * (mm/mpagecache.h). Taken with interrupts off (irqsave); nests
	 * inside an mcentral lock, never the other way round.
	 */
	mm_spinlock_t lock;
	struct mspan *free[MHEAP_NFREE];
	uint64_t free_nonempty[(MHEAP_NFREE + 63) / 64];
	struct heap_chunk *chunks;
	struct fixalloc span_alloc;   /* struct mspan, and 128-byte bitmap units */
	struct fixalloc chunk_alloc;  /* struct heap_chunk */
	struct fixalloc tiny_alloc;   /* struct tiny_meta */
	/* Small spans' bitmap units (mm/mspan.h): the 64-byte ones (pool 0)
	 * and the 256-byte ones (pool 2, the 8-byte class only); the
	 * 128-byte ones (pool 1) share the span records' fixalloc (same
	 * size), nbitmap_big of them. */
	struct fixalloc bits_alloc;
	struct fixalloc bits256_alloc;
	uint64_t nbitmap_big;
	uint64_t chunk_bytes;         /* in chunks */
	uint64_t free_pages;          /* in free runs */
	uint64_t small_pages;         /* in small-object spans */
	uint64_t large_pages;         /* in large objects and page caches */
	uint64_t ngrow, nrelease;     /* chunks obtained / given back */
	struct heap_chunk *retained_head, *retained_tail;   /* oldest first */
	uint64_t retained_pages;      /* in wholly free (retained) chunks */
	uint64_t scavenged_bytes;     /* given back by the scavenger, ever */
	int ready;                    /* set once by kmalloc_init (release) */
};

extern struct mheap mheap;

/* The fixalloc of bitmap pool `pool` (mspan_bitmap_pool). */
static inline struct fixalloc *mheap_bitmap_pool(unsigned pool)
{
	return pool == 0 ? &mheap.bits_alloc : pool == 1 ? &mheap.span_alloc : &mheap.bits256_alloc;
}

/* The free list of a free run of npages pages. */
static inline unsigned mheap_free_list_index(size_t npages)
{
	if (npages < MHEAP_NEXACT)
		return (unsigned)npages;
	unsigned k = (unsigned)(63 - __builtin_clzll((unsigned long long)npages)) - 7;
	return MHEAP_NEXACT + (k < MHEAP_NLONG ? k : MHEAP_NLONG - 1);
}

/* Once, before any other call (kmalloc_init). */
void mheap_init(void);
/* A span of npages pages for spanclass (0: one large object), or NULL
 * when the platform is out of memory. Takes mheap.lock. */
struct mspan *mheap_alloc_span(size_t npages, unsigned spanclass);
/* The same, the span's start a multiple of align_pages pages (a power of
 * two); the pages skipped to get there stay free. grow false: NULL rather
 * than asking the platform for more (a page cache's miss, mm/mpagecache.c). */
struct mspan *mheap_alloc_span_aligned(size_t npages, unsigned spanclass,
				       size_t align_pages, bool grow);
/* Work done under mheap.lock by mheap_alloc_span_with before it searches:
 * a page cache giving runs back in the allocation's own lock round. */
typedef void mheap_locked_fn(void *arg);
/* mheap_alloc_span_aligned, with first(arg) called under the lock before
 * the search (first may be NULL; not called when the arguments are
 * refused, before the lock). */
struct mspan *mheap_alloc_span_with(size_t npages, unsigned spanclass, size_t align_pages,
				    bool grow, mheap_locked_fn *first, void *arg);
/* Give a span's pages back (coalescing; a chunk wholly free is retained,
 * and the retained chunks beyond the policy's bound go back to the
 * platform). Takes mheap.lock. */
void mheap_free_span(struct mspan *s);
/* mheap_free_span's work, under mheap.lock (a span in a page cache, too). */
void mheap_free_span_locked(struct mspan *s);
/* Make t, the run right after s in its chunk, part of s; t's record is
 * the caller's to dispose of. Under mheap.lock for free runs, or by the
 * CPU whose page cache holds both (mm/pagemap.h's rule for writes). */
void mheap_extend_run(struct mspan *s, struct mspan *t);
/* Grow the live large object at p in place to npages pages when the pages
 * right after it are free in its chunk. True when done. */
bool mheap_grow_large(uintptr_t p, size_t npages);
/* Give retained chunks back to the platform, oldest first, until at most
 * keep_bytes are retained. Returns the bytes given back. */
uint64_t mheap_scavenge(uint64_t keep_bytes);
/* The policy's target for retained bytes (see mm/mheap.c): the idle
 * scavenger trims to it, frees keep at most twice it. Reads counters the
 * mheap lock protects without it: for reports and the (quiescent)
 * verifier; mheap_scavenge_to_target computes it under the lock. */
uint64_t mheap_retain_target(void);
/* Give back retained chunks beyond the policy's target, computed under
 * the lock; returns the bytes given back. */
uint64_t mheap_scavenge_to_target(void);
/* Bytes held from the platform: chunks + span metadata (page-map leaves,
 * which are never given back, are counted by pagemap_sys_bytes()). */
uint64_t mheap_sys_bytes(void);
/* Of those, the bytes of bitmaps (the 64-byte units' blocks, and the
 * 128-byte units handed out from the span records' blocks); and the units
 * handed out (under mheap.lock for an exact figure). */
uint64_t mheap_bitmap_sys_bytes(void);
uint64_t mheap_bitmap_units(void);

/* The span p's page maps to, lock-free: any page of a small span in use,
 * only the first and last of any other span (mm/pagemap.h); NULL else. */
static inline struct mspan *mheap_span_of(const void *p)
{
	return pagemap_lookup((uintptr_t)p);
}
/* The same for p where kfree's fast path looks (pagemap_fast_covers:
 * the page map's window, or its flat part where there is one), but
 * &mspan_none (no CPU's, no state, no bits) where that is NULL: the fast
 * path then tests no pointer. */
static inline struct mspan *mheap_span_of_or_none(const void *p)
{
	return pagemap_fast_lookup((uintptr_t)p);
}
/* The span holding p wherever it falls, also between the ends of a large
 * object or free run; NULL when p is in no chunk. Takes mheap.lock and
 * may walk a chunk's spans: for reports and introspection. */
struct mspan *mheap_span_containing(const void *p);
/* The same under mheap.lock, for an address a inside chunk c. */
struct mspan *mheap_span_in_chunk_locked(const struct heap_chunk *c, uintptr_t a);

static inline uint8_t mspan_state_of(const struct mspan *s)
{
	return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
}

#endif
