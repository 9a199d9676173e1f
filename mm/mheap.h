/*
 * mm/mheap.h - the page heap (Go's mheap): runs of 8 KiB pages.
 */
#ifndef MM_MHEAP_H
#define MM_MHEAP_H

#include <stddef.h>
#include <stdint.h>
#include "mm/mlock.h"
#include "mm/fixalloc.h"
#include "mm/mspan.h"
#include "mm/pagemap.h"

/* Free runs of exactly n pages sit on free[n] (1 <= n < MHEAP_NFREE);
 * longer runs on free[0]. */
#define MHEAP_NFREE 128
/* The heap grows by at least this much at a time. */
#define MHEAP_CHUNK_MIN (1UL << 20)

/* A region obtained from the platform with one mm_sys_alloc call. Free
 * runs never coalesce across chunks; a chunk that is one free run again is
 * given back. */
struct heap_chunk {
	uintptr_t base;
	size_t npages;
	struct heap_chunk *next, *prev;
};

struct mheap {
	/*
	 * lock protects everything in struct mheap, the page map's writes,
	 * every span in state MSPAN_FREE, and the state/startaddr/npages/
	 * chunk of every span record. Taken with interrupts off (irqsave);
	 * nests inside an mcentral lock, never the other way round.
	 */
	mm_spinlock_t lock;
	struct mspan *free[MHEAP_NFREE];
	uint64_t free_nonempty[MHEAP_NFREE / 64];
	struct heap_chunk *chunks;
	struct fixalloc span_alloc;   /* struct mspan */
	struct fixalloc chunk_alloc;  /* struct heap_chunk */
	struct fixalloc tiny_alloc;   /* struct tiny_meta */
	uint64_t chunk_bytes;         /* in chunks */
	uint64_t free_pages;          /* in free runs */
	uint64_t small_pages;         /* in small-object spans */
	uint64_t large_pages;         /* in large objects */
	uint64_t nlarge;              /* live large objects */
	uint64_t ngrow, nrelease;     /* chunks obtained / given back */
	int ready;                    /* set once by kmalloc_init (release) */
};

extern struct mheap mheap;

/* Once, before any other call (kmalloc_init). */
void mheap_init(void);
/* A span of npages pages for spanclass (0: one large object), or NULL
 * when the platform is out of memory. Takes mheap.lock. */
struct mspan *mheap_alloc_span(size_t npages, unsigned spanclass);
/* The same, the span's start a multiple of align_pages pages (a power of
 * two); the pages skipped to get there stay free. */
struct mspan *mheap_alloc_span_aligned(size_t npages, unsigned spanclass,
				       size_t align_pages);
/* Give a span's pages back (coalescing; a whole free chunk goes back to
 * the platform). Takes mheap.lock. */
void mheap_free_span(struct mspan *s);
/* Free the large object starting at p, checked under mheap.lock (so two
 * racing frees cannot both succeed): true when done, false when p is not
 * a live large object (nothing changed). */
bool mheap_free_large(uintptr_t p);
/* Bytes held from the platform: chunks + span metadata (page-map leaves,
 * which are never given back, are counted by pagemap_sys_bytes()). */
uint64_t mheap_sys_bytes(void);

static inline struct mspan *mheap_span_of(const void *p)
{
	return pagemap_lookup((uintptr_t)p);
}

static inline uint8_t mspan_state_of(const struct mspan *s)
{
	return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
}

#endif
