/*
 * mm/mspan.h - the span: a run of 8 KiB heap pages and the bookkeeping of
 * the objects cut from it (Go's mspan). See mm/mspan.c for the free scheme.
 */
#ifndef MM_MSPAN_H
#define MM_MSPAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "mm/bitops.h"
#include "mm/sizeclasses.h"

/* span class = size class << 1 | noscan, as in Go. */
#define NUM_SPAN_CLASSES (NUM_SIZE_CLASSES * 2)
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
	MSPAN_ON_OWNED,      /* an mcache's partial owned set (mm/mcache.c) */
	MSPAN_ON_OWNED_FULL, /* an mcache's used-up owned set (mm/mcache.c) */
};

struct heap_chunk;
struct mcache;
/* local_cache of a span no CPU's kfree fast path frees into. */
#define MSPAN_NOT_LOCAL ((struct mcache *)NULL)

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

/*
 * Bitmaps sized to the span. A small-object span's bitmap is one array of
 * word pairs, s->bits: word w of alloc_bits at bits[2w] and word w of
 * remote_bits at bits[2w + 1] (mspan_alloc_word, mspan_remote_word), so
 * that the two words a free of slot i reads share a cache line. It holds
 * mspan_bitmap_words[b] pairs, b being the span's bucket: the smallest of
 * 1, 4, 8 and 16 pairs (64, 256, 512, 1024 objects) that holds its
 * nelems. Bucket 0 (spans of at most 64 objects: 43 of the 67 classes)
 * keeps its pair in the span record itself, on the first line, which
 * every free reads anyway; the others' pairs live in one unit of their
 * own from the mheap's fixallocs (pool 0: 64-byte units for bucket 1, a
 * fixalloc of their own; pool 1: 128-byte units for bucket 2, sharing
 * the span records' fixalloc; pool 2: 256-byte units for bucket 3),
 * taken under mheap.lock when mspan_init_objects makes the span and given
 * back with it (Go allocates allocBits per span too). A free then reads
 * one line of the record and one of bitmap, none for bucket 0 (rptest, 16
 * B to 16 KiB, cachegrind's L1: misses per operation 3.83 with the two
 * bitmaps in units of their own, 2.85 with bucket 0 in the record, 2.67
 * with the words paired). Owner and remote writers share those lines:
 * a remote free reads the alloc word anyway (its liveness test), so it
 * moves that line whichever line its own write is on. Large spans and
 * free runs have no bitmap: bits points at mspan_no_bits, one zero pair
 * that is never written (a large span is one object, whose free is the
 * claim of its state; mm/mheap.c).
 */
#define MSPAN_BITMAP_BUCKETS 4
#define MSPAN_BITMAP_POOLS 3        /* units of 64, 128 and 256 bytes */
#define MSPAN_BITMAP_UNITS 1        /* per small span outside bucket 0 */
struct mspan;
extern const uint8_t mspan_bitmap_words[MSPAN_BITMAP_BUCKETS];   /* pairs: 1, 4, 8, 16 */
extern const uint64_t mspan_no_bits[2];

/* The bucket of a small span of nelems objects. */
static inline unsigned mspan_bitmap_bucket(unsigned nelems)
{
	unsigned nw = (nelems + 63u) / 64u;
	return nw <= 1 ? 0 : nw <= 4 ? 1 : nw <= 8 ? 2 : 3;
}
/* Bitmap units a span of bucket b takes from the pools: none for bucket
 * 0 (its pair is in the record), MSPAN_BITMAP_UNITS otherwise. */
static inline unsigned mspan_bitmap_nunits(unsigned b)
{
	return b == 0 ? 0 : MSPAN_BITMAP_UNITS;
}
/* Bucket b's pool (0: 64-byte units, 1: 128-byte, 2: 256-byte), b > 0;
 * the unit size of a pool. */
unsigned mspan_bitmap_pool(unsigned b);
size_t mspan_bitmap_unit_size(unsigned pool);
/* A small span's units, as mspan_init_objects was given them (the first
 * mspan_bitmap_nunits of its bucket). */
void mspan_bitmap_units(const struct mspan *s, void *units[MSPAN_BITMAP_UNITS]);
/* Is a small span's bitmap where its bucket says: bucket 0's in its
 * record, the others' in a unit outside it (for the verifier; which pool
 * the unit comes from, it checks with fixalloc_owns)? */
bool mspan_bitmap_layout_ok(const struct mspan *s);

/* A span record: 128 bytes, two cache lines. The first holds what every
 * free reads (kfree's fast path: the bitmap pointer, the object
 * geometry, local_cache, and a bucket-0 span's bitmap pair;
 * kmalloc's reads none of it: its cached word is in the mcache) and what
 * the owner's refill writes; the second the rest, and the fields of the
 * remote-free protocol's stacks, which other CPUs write. */
struct mspan {
	/*
	 * Who writes what (readers: see each field):
	 * - allocation state (cache_word, the words of alloc_bits,
	 *   alloc_count): the CPU whose
	 *   mcache holds the span (owner_cpu), or, while no mcache holds
	 *   it, whoever holds its mcentral's lock;
	 * - owner_cpu, list, next/prev while on an mcentral list: under the
	 *   mcentral lock; list, next/prev while in an mcache's owned set:
	 *   that mcache's CPU;
	 * - startaddr, npages, state, chunk, tiny, and next/prev while a free
	 *   run: under the lock of its chunk's arena (mheap.lock for every
	 *   small span); elemsize, nelems, spanclass, divmagic and the bitmap
	 *   pointer are set (mspan_init_objects) under that lock as the span
	 *   is made and do not change while it lives;
	 * - the words of remote_bits, remote_pending, pending_next: the
	 *   remote-free protocol
	 *   (mm/mcentral.c, mcentral_free).
	 * The words of alloc_bits are also read (relaxed) by other CPUs
	 * checking a free, hence the atomic accessors. The free slots of
	 * word cache_word that allocation hands out next (Go's allocCache)
	 * are kept in the owner's mcache (mm/mcache.h), not here.
	 */
	uintptr_t startaddr;
	/* The bitmap's word pairs ("Bitmaps" above): alloc_bits, bit set:
	 * slot handed out and not freed by the owner nor swept free; set by
	 * the owner at allocation, cleared by the owner's free and by a
	 * sweep of a remote free; read lock-free by any CPU that checks a
	 * free (relaxed atomics; one writer at a time). remote_bits: frees
	 * from other CPUs (the protocol: mm/mcentral.c, mcentral_free). */
	uint64_t *bits;
	/* The owner's mcache while kfree's fast path may free into it (the
	 * allocation span, the partial owned set), else MSPAN_NOT_LOCAL
	 * (mm/mcache.c): the fast path compares it with this CPU's mcache
	 * pointer, MM_CPU_LOCAL_NONE where the fast path may not run, which
	 * no span has. A struct mcache *, kept as void * so that the fast
	 * path reads it through mm_platform_ptr_eq_relaxed (void *const *)
	 * as the type it has. */
	void *local_cache;
	uint32_t elemsize;
	uint32_t divmagic;        /* class_to_divmagic[class]: offset -> index without a lookup (Go's divMul) */
	/* The bitmap pair of a span of at most 64 objects (bucket 0), here
	 * on the line every free reads anyway ("Bitmaps" above). */
	uint64_t bits_inline[2];
	int32_t owner_cpu;        /* mcache owning the span (allocating from it or in its owned set), -1 if none */
	uint16_t alloc_count;     /* alloc_bits set as of the last sweep (set by mspan_sweep) */
	uint16_t nelems;
	uint16_t cache_word;      /* word of alloc_bits the owner's cache word mirrors (Go's freeindex / 64) */
	uint8_t spanclass;
	uint8_t state;            /* enum mspan_state, read lock-free by kfree */
	uint8_t list;             /* enum mspan_list_id */
	/* 1: the pages may hold old data, so a KM_ZERO large object made of
	 * them is cleared; 0 only while they are as fresh from a platform
	 * whose memory comes zeroed (MM_SYS_ALLOC_ZEROED; Go's needzero).
	 * Set as a chunk's run is made, inherited by a split, or'ed by a
	 * merge, 1 from a span's free on (mm/mheap.c, mm/mpagecache.c). */
	uint8_t needzero;

	/* Second line: rarely written by the owner, and the remote side. */
	uintptr_t npages __attribute__((aligned(64)));
	struct mspan *next, *prev;
	struct heap_chunk *chunk; /* the platform chunk the pages came from */
	struct tiny_meta *tiny;   /* TINY_SPAN_CLASS spans only */
	struct mspan *pending_next;    /* link on a pending or notice stack */
	uint32_t remote_pending;       /* 1 while routed to such a stack, or on one */
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct mspan) == 128, "a span record is two cache lines");

static inline uint64_t ld64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void st64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

/* Word w of small span s's alloc_bits, and of its remote_bits: the two
 * words of pair w ("Bitmaps" above). */
static inline uint64_t *mspan_alloc_word(const struct mspan *s, unsigned w)
{
	return &s->bits[2 * w];
}
static inline uint64_t *mspan_remote_word(const struct mspan *s, unsigned w)
{
	return &s->bits[2 * w + 1];
}

/* Index of the object at byte offset off (< the span's size) of small
 * span s: a multiply and a shift (see mm/sizeclasses.h). */
static inline uint32_t mspan_offset_index(const struct mspan *s, uint32_t off)
{
	return (uint32_t)(((uint64_t)off * s->divmagic) >> 32);
}

/* Free p into small span s that this CPU's mcache owns, if p is the
 * start of a live object: its bit in alloc_bits cleared, plain stores, so
 * the slot is free again at once (mimalloc's local free list, as a bit).
 * Live means allocated and not freed remotely (a relaxed load of the
 * remote word: a remote free that happened before this one is seen; one
 * racing with it finds the alloc bit cleared, mcentral_free). The remote
 * word is loaded first, as mspan_obj_live does (no sweep can run here:
 * the owner sweeps its spans): gcc then keeps the alloc word's address
 * in the load and the store (no lea; kfree 40 -> 39 instructions in the
 * kernel). False (and nothing changed) otherwise. Owner only. */
static inline bool mspan_free_owned(struct mspan *s, const void *p)
{
	uintptr_t off = (uintptr_t)p - s->startaddr;
	uint64_t x = (uint64_t)(uint32_t)off * s->divmagic;
	if (__builtin_expect(!size_class_is_start(x, s->divmagic), 0))
		return false;
	uint32_t i = (uint32_t)(x >> 32);   /* mspan_offset_index */
	uint64_t *pair = mspan_alloc_word(s, i / 64);
	uint64_t r = ld64(pair + 1);
	uint64_t a = ld64(pair);
	if (__builtin_expect(!mm_platform_bit_test_clear64(&a, i), 0) ||
	    __builtin_expect(r >> (i % 64) & 1, 0))
		return false;
	st64(pair, a);
	return true;
}

/* Turn a fresh page run into a span of spanclass (0 = one large object).
 * units: for a small span, mspan_bitmap_nunits(b) zeroed units of pool
 * mspan_bitmap_pool(b), b = mspan_bitmap_bucket(nelems) (see
 * mspan_nelems_of); unused for a large one and for bucket 0 (whose words
 * are in the record). */
void mspan_init_objects(struct mspan *s, unsigned spanclass,
			void *const units[MSPAN_BITMAP_UNITS]);
/* Objects in a span of spanclass of npages pages (1 for class 0). */
unsigned mspan_nelems_of(unsigned spanclass, size_t npages);
/* Point a record that is no small span (a free run, a large span) at
 * mspan_no_bits. */
void mspan_clear_bits(struct mspan *s);
/* Does s have a bitmap (a small span; in its record or in a unit)? */
static inline bool mspan_has_bitmaps(const struct mspan *s)
{
	return s->bits != mspan_no_bits && s->bits != NULL;
}
/* How many words each of small span s's bitmaps has. */
static inline unsigned mspan_nwords(const struct mspan *s)
{
	return (s->nelems + 63u) / 64u;
}
/* How many slots word w of small span s has (1..64; the last word may be
 * partial). */
static inline unsigned mspan_word_slots(const struct mspan *s, unsigned w)
{
	unsigned left = s->nelems - w * 64u;
	return left >= 64 ? 64u : left;
}
/* The bits of a word's `slots` slots (1..64). */
static inline uint64_t mspan_slots_mask(unsigned slots)
{
	return ~0ULL >> (64u - slots);
}
/* The slots of word w of small span s. */
static inline uint64_t mspan_word_mask(const struct mspan *s, unsigned w)
{
	return mspan_slots_mask(mspan_word_slots(s, w));
}
/* The free slots that make a used-up cache word of `slots` slots worth
 * loading again rather than moving on (at least 1): the owner freed a
 * quarter of them since it was loaded (a pair reuses the same hot slots;
 * a mix of kept and freed objects does not reload it for a slot or two). */
static inline unsigned mspan_reload_min(unsigned slots)
{
	return (slots + 3) / 4;
}
/* The free slots of cache_word itself if worth reloading, else 0.
 * Inline: the refill of the same word calls nothing. Owner only. */
static inline uint64_t mspan_same_cache_word(const struct mspan *s)
{
	unsigned w = s->cache_word;
	uint64_t c = ~ld64(mspan_alloc_word(s, w)) & mspan_word_mask(s, w);
	return mm_popcount64(c) >= mspan_reload_min(mspan_word_slots(s, w)) ? c : 0;
}
/* The first word from w on with a free slot becomes cache_word; its free
 * slots, or 0 (and cache_word unchanged). Inline: a refill's commonest
 * step. Owner only. */
static inline uint64_t mspan_cache_word_from(struct mspan *s, unsigned w)
{
	for (unsigned nw = mspan_nwords(s); w < nw; w++) {
		uint64_t c = ~ld64(mspan_alloc_word(s, w)) & mspan_word_mask(s, w);
		if (c) {
			s->cache_word = (uint16_t)w;
			return c;
		}
	}
	return 0;
}
/* The free slots of the next word after cache_word that has any. */
static inline uint64_t mspan_cache_word_after(struct mspan *s)
{
	return mspan_cache_word_from(s, s->cache_word + 1u);
}
/* The same from the span's start: the first word with a free slot. */
static inline uint64_t mspan_first_cache_word(struct mspan *s)
{
	return mspan_cache_word_from(s, 0);
}
/* Fold the remote frees into alloc_bits and recompute alloc_count.
 * Caller owns the span (its mcache) or holds its mcentral lock. */
void mspan_sweep(struct mspan *s);
/* Object index of an address inside the span (below its end), or -1
 * when it does not point at the start of an object: the index and the
 * start test from one product, as kfree's fast path. */
static inline int mspan_obj_index(const struct mspan *s, uintptr_t addr)
{
	uintptr_t off = addr - s->startaddr;
	if (spanclass_sizeclass(s->spanclass) == 0)
		return off == 0 ? 0 : -1;
	uint64_t x = (uint64_t)(uint32_t)off * s->divmagic;
	uint32_t i = (uint32_t)(x >> 32);
	if (!size_class_is_start(x, s->divmagic) || i >= s->nelems)
		return -1;
	return (int)i;
}
/* Is slot i handed out and not yet freed (as far as this CPU can see)?
 * The remote word first, alloc_bits last: a sweep clears them in the
 * other order (mspan_sweep). */
static inline bool mspan_obj_live(const struct mspan *s, unsigned i)
{
	uint64_t bit = 1ULL << (i % 64);
	unsigned w = i / 64;

	if (__atomic_load_n(mspan_remote_word(s, w), __ATOMIC_ACQUIRE) & bit)
		return false;
	return ld64(mspan_alloc_word(s, w)) & bit;
}
#endif
