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
	struct mheap *heap;   /* the arena it belongs to, for good */
	uintptr_t base;
	size_t npages;
	struct heap_chunk *next, *prev;
	struct heap_chunk *rnext, *rprev;   /* retained list, while wholly free */
	bool retained;
};

struct mheap {
	/*
	 * lock protects everything in this struct mheap (an arena), the page
	 * map's entries for the pages of its chunks, every span in state
	 * MSPAN_FREE in them, and the state/startaddr/npages/chunk of every
	 * span record of its chunks, but for the runs in a page cache and the
	 * records in its stash, which belong to the cache's CPU
	 * (mm/mpagecache.h). Taken with interrupts off (irqsave); nests
	 * inside an mcentral lock, never the other way round. One arena's
	 * lock is never taken while another's is held (but by kmem_lock_all
	 * and mheap_verify, in arena order).
	 */
	mm_spinlock_t lock;
	unsigned arena;               /* its index (0: the main heap) */
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
	uint64_t nadopt, ngiven;      /* retained chunks taken from / by other arenas */
	struct heap_chunk *retained_head, *retained_tail;   /* oldest first */
	uint64_t retained_pages;      /* in wholly free (retained) chunks */
	uint64_t scavenged_bytes;     /* given back by the scavenger, ever */
	int ready;                    /* set once by kmalloc_init (release) */
};

/*
 * Arenas: MM_HEAP_ARENAS instances of the mheap (mm/platform.h; 1 by
 * default, 8 in the kernel and the hosted library). Arena 0, `mheap`,
 * makes every small span and holds all their metadata (bitmaps, tiny
 * tables); a large object comes from the arena of the CPU that allocates
 * it (mheap_of_cpu) and goes back to the arena of its chunk
 * (chunk->heap), so CPUs of different arenas allocating and freeing
 * large objects share no lock and no line. Retention is one
 * policy over all arenas (mm/mscavenge.c).
 */
#define MHEAP_NARENAS MM_HEAP_ARENAS
extern struct mheap mheap;
extern struct mheap mheap_more_arenas[MHEAP_NARENAS > 1 ? MHEAP_NARENAS - 1 : 1];

/* Arena i (< MHEAP_NARENAS). */
static inline struct mheap *mheap_arena(unsigned i)
{
	return i == 0 ? &mheap : &mheap_more_arenas[i - 1];
}

/* The arena CPU cpu's large objects come from. */
static inline struct mheap *mheap_of_cpu(unsigned cpu)
{
	return mheap_arena(cpu % MHEAP_NARENAS);
}

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
/* A span of npages pages for spanclass (0: one large object) from arena
 * 0, or NULL when the platform is out of memory. Takes mheap.lock. */
struct mspan *mheap_alloc_span(size_t npages, unsigned spanclass);
/* The same, the span's start a multiple of align_pages pages (a power of
 * two); the pages skipped to get there stay free. grow false: NULL rather
 * than asking the platform for more (a page cache's miss, mm/mpagecache.c). */
struct mspan *mheap_alloc_span_aligned(size_t npages, unsigned spanclass,
				       size_t align_pages, bool grow);
/* Work done under h->lock by mheap_alloc_span_with before it searches:
 * a page cache giving runs back in the allocation's own lock round. */
typedef void mheap_locked_fn(void *arg);
/* mheap_alloc_span_aligned from arena h (a small span only from arena
 * 0), with first(arg) called under h->lock before the search (first may
 * be NULL; not called when the arguments are refused, before the lock). */
struct mspan *mheap_alloc_span_with(struct mheap *h, size_t npages, unsigned spanclass,
				    size_t align_pages, bool grow, mheap_locked_fn *first,
				    void *arg);
/* Give a span's pages back to its arena, s->chunk->heap (coalescing; a
 * chunk wholly free is retained, and the retained chunks beyond the
 * policy's bound go back to the platform). Takes that arena's lock. */
void mheap_free_span(struct mspan *s);
/* mheap_free_span's work, under s->chunk->heap->lock (a span in a page
 * cache, too); the caller calls mheap_trim_pending once it has let go of
 * the lock. */
void mheap_free_span_locked(struct mspan *s);
/* With no arena lock held: if a free left more retained than the policy
 * allows and its own arena could not give enough back, every arena in
 * turn gives back its oldest retained chunks until the target is met. */
void mheap_trim_pending(void);
/* Make t, the run right after s in its chunk, part of s; t's record is
 * the caller's to dispose of. Under their arena's lock for free runs, or
 * by the CPU whose page cache holds both (mm/pagemap.h's rule for writes). */
void mheap_extend_run(struct mspan *s, struct mspan *t);
/* Grow the live large object at p in place to npages pages when the pages
 * right after it are free in its chunk. True when done. */
bool mheap_grow_large(uintptr_t p, size_t npages);
/* Give retained chunks back to the platform, oldest first, arena by
 * arena, until at most keep_bytes are retained in all. Returns the bytes
 * given back. */
uint64_t mheap_scavenge(uint64_t keep_bytes);
/* The policy's target for retained bytes (see mm/mscavenge.c): the idle
 * scavenger trims to it, frees keep at most twice it. Reads counters the
 * arenas' locks protect without them: for reports and the (quiescent)
 * verifier; mheap_scavenge_to_target computes it under the lock. */
uint64_t mheap_retain_target(void);
/* Give back retained chunks beyond the policy's target, computed under
 * the lock; returns the bytes given back. */
uint64_t mheap_scavenge_to_target(void);
/* Arenas [0, mheap_arenas_in_use()) are all that ever held a chunk (the
 * count only grows; relaxed). */
unsigned mheap_arenas_in_use(void);
/* Pages retained in wholly free chunks, all arenas (relaxed loads). */
uint64_t mheap_retained_pages(void);
/* Bytes arena h holds from the platform, under its lock: chunks + span
 * metadata (page-map leaves, which are never given back, are counted by
 * pagemap_sys_bytes()). */
uint64_t mheap_arena_sys_bytes_locked(const struct mheap *h);
/* Every arena's lock, in arena order (plain: the caller has interrupts
 * off or stops the heap from outside): kmem_lock_all, mheap_verify; and
 * back in the reverse order. */
void mheap_lock_arenas(void);
void mheap_unlock_arenas(void);
/* Of those, the bytes of bitmaps (the 64-byte and 256-byte units'
 * blocks, and the 128-byte units handed out from the span records'
 * blocks); and the units handed out (under mheap.lock for an exact
 * figure). Arena 0 holds them all. */
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
 * object or free run; NULL when p is in no chunk. Takes each arena's lock
 * in turn and may walk a chunk's spans: for reports and introspection. */
struct mspan *mheap_span_containing(const void *p);
/* The same under c->heap->lock, for an address a inside chunk c. */
struct mspan *mheap_span_in_chunk_locked(const struct heap_chunk *c, uintptr_t a);

static inline uint8_t mspan_state_of(const struct mspan *s)
{
	return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
}

#endif
