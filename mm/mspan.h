/*
 * mm/mspan.h - the span: a run of 8 KiB heap pages and the bookkeeping of
 * the objects cut from it (Go's mspan). See mm/mspan.c for the free scheme.
 */
#ifndef MM_MSPAN_H
#define MM_MSPAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "mm/sizeclasses.h"

/* span class = size class << 1 | noscan, as in Go. */
#define NUM_SPAN_CLASSES (NUM_SIZE_CLASSES * 2)
#define MSPAN_BITMAP_WORDS (MAX_OBJS_PER_SPAN / 64)
/* The tiny allocator's 16-byte blocks live in spans of this class only;
 * ordinary 16-byte requests use the scan class of the same size. */
#define TINY_SPAN_CLASS ((TINY_SIZE_CLASS << 1) | 1)

static inline unsigned spanclass_make(unsigned sizeclass, bool noscan)
{
	return sizeclass << 1 | (noscan ? 1u : 0u);
}
static inline unsigned spanclass_sizeclass(unsigned spc) { return spc >> 1; }
static inline bool spanclass_noscan(unsigned spc) { return spc & 1; }

enum mspan_state {
	MSPAN_DEAD = 0,   /* record not in use */
	MSPAN_FREE,       /* a free page run owned by the mheap */
	MSPAN_INUSE,      /* small-object span (mcentral or an mcache) */
	MSPAN_LARGE,      /* one large object */
	MSPAN_CACHED,     /* a free page run in one CPU's page cache (mm/mheap.c) */
};

/* Where a span is listed (for the verifier and for list removal). */
enum mspan_list_id {
	MSPAN_ON_NONE = 0,   /* an mcache allocates from it, or a large object */
	MSPAN_ON_PARTIAL,    /* mcentral: has free slots */
	MSPAN_ON_FULL,       /* mcentral: no free slot as of its last sweep */
	MSPAN_ON_HEAP_FREE,  /* mheap: free run list */
	MSPAN_ON_OWNED,      /* an mcache's owned set (mm/mcache.c) */
};

struct heap_chunk;

/* Tiny blocks: per 16-byte block, a live-object balance and the end
 * offsets of the objects packed into it (see mm/tiny.c). The mheap
 * allocates one with every span of TINY_SPAN_CLASS. */
struct tiny_meta {
	int16_t balance[MAX_OBJS_PER_SPAN / 2];
	uint16_t ends[MAX_OBJS_PER_SPAN / 2];
	/* Objects freed other than on their block's CPU while current (and
	 * all of them once it is retired): a bit at each one's end byte,
	 * set by an atomic OR, so a second free is seen. */
	uint16_t freed[MAX_OBJS_PER_SPAN / 2];
};

struct mspan {
	/*
	 * Who writes what (readers: see each field):
	 * - allocation state (alloc_cache, cache_word, alloc_bits, free_bits,
	 *   alloc_count): the CPU whose mcache holds the span (owner_cpu),
	 *   or, while no mcache holds it, whoever holds its mcentral's lock;
	 * - owner_cpu, list, next/prev while on an mcentral list: under the
	 *   mcentral lock; list, next/prev while in an mcache's owned set:
	 *   that mcache's CPU;
	 * - startaddr, npages, state, chunk, tiny, and next/prev while a free
	 *   run: under mheap.lock; elemsize, nelems, spanclass and divmagic
	 *   are set (mspan_init_objects) under mheap.lock as the span is made
	 *   and do not change while it lives;
	 * - remote_bits, remote_pending, remote_inflight, pending_next: the
	 *   remote-free protocol (mm/mcentral.c, mcentral_free).
	 * alloc_cache and cache_word are also read (relaxed) by other CPUs
	 * checking a free, hence the atomic accessors.
	 */
	uint64_t alloc_cache;     /* free slots of word cache_word, one bit each (Go's allocCache) */
	uintptr_t startaddr;
	uint32_t elemsize;
	uint16_t nelems;
	uint16_t cache_word;      /* word of alloc_bits that alloc_cache mirrors (Go's freeindex / 64) */
	uint16_t alloc_count;     /* live objects as of the last sweep (set by mspan_sweep) */
	uint8_t spanclass;
	uint8_t state;            /* enum mspan_state, read lock-free by kfree */
	int32_t owner_cpu;        /* mcache owning the span (allocating from it or in its owned set), -1 if none */
	uint32_t divmagic;        /* class_to_divmagic[class]: offset -> index without a lookup (Go's divMul) */
	uintptr_t npages;
	uint8_t list;             /* enum mspan_list_id */
	struct mspan *next, *prev;
	struct heap_chunk *chunk; /* the platform chunk the pages came from */
	struct tiny_meta *tiny;   /* TINY_SPAN_CLASS spans only */

	/* Frees by the owner CPU, pending the next sweep. Owner-only. */
	uint64_t free_bits[MSPAN_BITMAP_WORDS];
	/* Bit set: slot handed out and not yet swept free. Set by the owner
	 * at allocation, cleared by a sweep; read lock-free by any CPU that
	 * checks a free (relaxed atomics; one writer at a time). */
	uint64_t alloc_bits[MSPAN_BITMAP_WORDS];

	/* Remote side, on its own cache lines: frees from other CPUs
	 * (the protocol: mm/mcentral.c, mcentral_free). */
	uint64_t remote_bits[MSPAN_BITMAP_WORDS] __attribute__((aligned(64)));
	uint32_t remote_pending;       /* 1 while on its mcentral's pending stack */
	uint32_t remote_inflight;      /* remote frees between their first and last touch */
	struct mspan *pending_next;    /* link on that stack */
} __attribute__((aligned(64)));

static inline uint64_t ld64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void st64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

/* Index of the object at byte offset off (< the span's size) of small
 * span s: a multiply and a shift (see mm/sizeclasses.h). */
static inline uint32_t mspan_offset_index(const struct mspan *s, uint32_t off)
{
	return (uint32_t)(((uint64_t)off * s->divmagic) >> 32);
}

/* Next free object of a span this CPU's mcache holds, or NULL when its
 * cache word is used up: ctz, clear the lowest bit, mark the slot in
 * alloc_bits. Owner only. */
static inline void *mspan_alloc_fast(struct mspan *s)
{
	uint64_t c = s->alloc_cache;
	if (__builtin_expect(c == 0, 0))
		return NULL;
	unsigned i = (unsigned)__builtin_ctzll(c);
	unsigned w = s->cache_word;
	st64(&s->alloc_cache, c & (c - 1));
	st64(&s->alloc_bits[w], ld64(&s->alloc_bits[w]) | (1ULL << i));
	void *p = (void *)(s->startaddr + ((uintptr_t)w * 64 + i) * s->elemsize);
	if (p == NULL)
		__builtin_unreachable();   /* lets callers drop their NULL test */
	return p;
}

/* Free p into small span s that this CPU's mcache owns, if p is the
 * start of a live object: its bit in free_bits, plain stores. Live means
 * allocated and freed neither here nor remotely (a relaxed load of the
 * remote word: a remote free that happened before this one is seen).
 * False (and nothing changed) otherwise. Owner only. */
static inline bool mspan_free_owned(struct mspan *s, const void *p)
{
	uintptr_t off = (uintptr_t)p - s->startaddr;
	uint32_t i = mspan_offset_index(s, (uint32_t)off);
	unsigned w = i / 64;
	uint64_t bit = 1ULL << (i % 64);
	if (__builtin_expect((uintptr_t)i * s->elemsize == off &&
			     (ld64(&s->alloc_bits[w]) & ~s->free_bits[w] &
			      ~ld64(&s->remote_bits[w]) & bit), 1)) {
		st64(&s->free_bits[w], s->free_bits[w] | bit);
		return true;
	}
	return false;
}

/* Turn a fresh page run into a span of spanclass (0 = one large object). */
void mspan_init_objects(struct mspan *s, unsigned spanclass);
/* Load alloc_cache with the free slots of word w (no bits past nelems). */
void mspan_refill_cache(struct mspan *s, unsigned w);
/* Advance to the next word holding a free slot; false if none is left. */
bool mspan_next_cache_word(struct mspan *s);
/* Fold every recorded free (owner-local and remote) into alloc_bits,
 * restart allocation at slot 0, recompute alloc_count. Caller owns the
 * span (its mcache) or holds its mcentral lock. Returns slots freed. */
unsigned mspan_sweep(struct mspan *s);
/* Object index of an address inside the span, or -1 when it does not
 * point at the start of an object. */
int mspan_obj_index(const struct mspan *s, uintptr_t addr);
/* Is slot i handed out and not yet freed (as far as this CPU can see)? */
bool mspan_obj_live(const struct mspan *s, unsigned i);
#endif
