/*
 * mm/malloc.c - kmalloc and friends: the public API over the Go-style heap.
 *
 * A request of at most 32 KiB is rounded to one of Go's size classes by
 * table lookup and served from this CPU's mcache (mm/mcache.c) with
 * interrupts off and no lock; a larger one gets a span of its own from the
 * mheap. KM_NOSCAN requests of 1..15 bytes take the tiny path: Go's tiny
 * allocator packs them into the CPU's current 16-byte block (aligned 8 if
 * the size is a multiple of 8, else 4, else 2), which is an object of the
 * dedicated span class TINY_SPAN_CLASS (16-byte, noscan; ordinary 16-byte
 * requests use the scan class). With explicit free a block is reclaimed
 * only when every tiny object in it is freed: each block has a balance in
 * its span's tiny_meta. While the block is this CPU's current block, the
 * CPU counts objects handed out and freed locally in its mcache (no
 * atomics); frees from elsewhere decrement the balance atomically; when
 * the block is retired the CPU adds (handed out - freed locally) to it.
 * Whoever brings a retired block's balance to 0 frees the block. Each
 * block also records where its objects end (one bit per byte, written by
 * the allocating CPU only), which gives ksize() of a tiny object exactly.
 *
 * kfree finds the span through the page map. If this CPU's mcache holds
 * the span, the object is recorded in the span's free_bits: plain loads and
 * stores, no atomic instruction. Otherwise (another CPU holds it, or none)
 * it is a remote free: one atomic OR into remote_bits plus the pending
 * protocol of mm/mcentral.c, never a global lock per object. Every free is
 * checked first (heap pointer, start of an object, object live); a bad one
 * is reported with pointer, span, class and caller, counted, and ignored
 * (or panics with SPANHEAP_PANIC_ON_BAD_FREE).
 *
 * Known limits of the cheap checks: a double free of a tiny object is
 * caught only once its block is free; a second free on the owning CPU of
 * an object first freed remotely, before the next sweep, is not caught.
 */
#include <stdbool.h>
#include "mm/kmalloc.h"
#include "mm/malloc_internal.h"
#include "mm/mcache.h"
#include "mm/mcentral.h"
#include "mm/mheap.h"
#include "mm/platform.h"
#include "lib/string.h"

/* Larger than any address space we run in: such requests fail. */
#define KMALLOC_MAX_SIZE (1ULL << 47)

uint64_t kmem_bad_frees;
uint64_t kmem_oom;

#ifdef SPANHEAP_PANIC_ON_BAD_FREE
static int panic_on_bad_free = 1;
#else
static int panic_on_bad_free;
#endif

void kmem_set_panic_on_bad_free(int on)
{
	__atomic_store_n(&panic_on_bad_free, on, __ATOMIC_RELAXED);
}

/* init_lock (irqsave) serialises the one-time set-up of the mheap and
 * the mcentrals; afterwards mheap.ready (release/acquire) is the gate. */
static spinlock_t init_lock = SPINLOCK_INIT("kmalloc_init");

void kmalloc_init(void)
{
	if (mheap_ready())
		return;
	unsigned long flags = spin_lock_irqsave(&init_lock);
	if (!mheap_ready()) {
		mheap_init();
		mcentral_init();
		__atomic_store_n(&mheap.ready, 1, __ATOMIC_RELEASE);
	}
	spin_unlock_irqrestore(&init_lock, flags);
}

static void *oom(void)
{
	__atomic_fetch_add(&kmem_oom, 1, __ATOMIC_RELAXED);
	return NULL;
}

/* ----------------------------------------------------------- reports -- */

static void bad_pointer(const char *op, const char *why, const void *p,
			const struct mspan *s, const void *caller)
{
	if (!op)
		return;   /* a quiet probe (debug mode's heap_raw_size) */
	__atomic_fetch_add(&kmem_bad_frees, 1, __ATOMIC_RELAXED);
	if (s)
		mm_log("%s(%p): %s; span %p [%#lx, %lu pages], class %u (%u bytes), caller %p",
		       op, p, why, (const void *)s, (unsigned long)s->startaddr,
		       (unsigned long)s->npages, spanclass_sizeclass(s->spanclass),
		       s->elemsize, caller);
	else
		mm_log("%s(%p): %s; caller %p", op, p, why, caller);
	if (__atomic_load_n(&panic_on_bad_free, __ATOMIC_RELAXED))
		mm_panic("%s(%p): %s (bad pointers are fatal: kmem_set_panic_on_bad_free)",
			 op, p, why);
}

/* ------------------------------------------------------------ kmalloc -- */

static inline unsigned small_spanclass(unsigned cls, unsigned flags)
{
	unsigned spc = spanclass_make(cls, flags & KM_NOSCAN);
	return spc == TINY_SPAN_CLASS ? spc - 1 : spc;
}

static inline void *kmalloc_spc(unsigned spc, unsigned flags)
{
	unsigned long irq = mm_irq_save();
	unsigned cpu = mm_cpu_id();
	struct mcache *mc = &mcaches[cpu];
	void *p = mcache_alloc(mc, spc, cpu);
	if (__builtin_expect(p != NULL, 1))
		stat_inc(&mc->nmalloc[spc]);
	mm_irq_restore(irq);
	if (__builtin_expect(p == NULL, 0))
		return oom();
	if (flags & KM_ZERO)
		memset(p, 0, class_to_size[spanclass_sizeclass(spc)]);
	return p;
}

/* A large object: a span of its own, its start aligned to align (a power
 * of two; spans are always page-aligned). */
__attribute__((noinline)) static void *kmalloc_large_aligned(size_t size, size_t align,
							     unsigned flags)
{
	if (size > KMALLOC_MAX_SIZE || align > KMALLOC_MAX_SIZE)
		return NULL;   /* impossible, not out of memory */
	size_t npages = size ? (size + MM_PAGE_SIZE - 1) >> MM_PAGE_SHIFT : 1;
	size_t align_pages = align > MM_PAGE_SIZE ? align >> MM_PAGE_SHIFT : 1;
	struct mspan *s = mheap_alloc_span_aligned(npages, 0, align_pages);
	if (!s) {
		kmem_reclaim();
		s = mheap_alloc_span_aligned(npages, 0, align_pages);
		if (!s)
			return oom();
	}
	unsigned long irq = mm_irq_save();
	stat_inc(&mcaches[mm_cpu_id()].large_alloc);
	mm_irq_restore(irq);
	void *p = (void *)s->startaddr;
	if (flags & KM_ZERO)
		memset(p, 0, npages << MM_PAGE_SHIFT);
	return p;
}

static void *kmalloc_large(size_t size, unsigned flags)
{
	return kmalloc_large_aligned(size, MM_PAGE_SIZE, flags);
}

/* Start a new tiny block for this CPU; returns it, or NULL (OOM). */
__attribute__((noinline)) static void *tiny_new_block(struct mcache *mc, unsigned cpu)
{
	mcache_tiny_retire(mc, cpu);
	void *b = mcache_alloc(mc, TINY_SPAN_CLASS, cpu);
	if (!b)
		return NULL;
	struct mspan *s = mheap_span_of(b);
	unsigned blk = (unsigned)(((uintptr_t)b - s->startaddr) / TINY_SIZE);
	mc->tiny = (uintptr_t)b;
	mc->tiny_offset = 0;
	mc->tiny_handed = 0;
	mc->tiny_local_frees = 0;
	mc->tiny_ends = &s->tiny->ends[blk];
	mc->tiny_balance = &s->tiny->balance[blk];
	__atomic_store_n(mc->tiny_ends, 0, __ATOMIC_RELAXED);
	return b;
}

/* Where a tiny object of `size` bytes would start in the current block:
 * Go's rule, 8-aligned if size % 8 == 0, else 4 if % 4, else 2 if % 2 (the
 * lowest set bit of size, capped at 8). Past TINY_SIZE: it does not fit. */
static inline uint32_t tiny_fit(const struct mcache *mc, size_t size)
{
	uint32_t align_mask = (1u << __builtin_ctz((unsigned)size | 8)) - 1;
	uint32_t off = (mc->tiny_offset + align_mask) & ~align_mask;
	return mc->tiny ? off : TINY_SIZE + 1;
}

/* Hand out the object at off of the current block (interrupts off). */
static inline void *tiny_take(struct mcache *mc, uint32_t off, size_t size)
{
	void *p = (void *)(mc->tiny + off);
	mc->tiny_offset = off + (uint32_t)size;
	mc->tiny_handed++;
	__atomic_store_n(mc->tiny_ends,
			 (uint16_t)(__atomic_load_n(mc->tiny_ends, __ATOMIC_RELAXED) |
				    (1u << (off + size - 1))), __ATOMIC_RELAXED);
	stat_inc(&mc->nmalloc[TINY_SPAN_CLASS]); /* tiny objects, not blocks */
	return p;
}

/* The current block is full (or there is none): open a new one. */
__attribute__((noinline)) static void *kmalloc_tiny_slow(size_t size, unsigned flags)
{
	unsigned long irq = mm_irq_save();
	unsigned cpu = mm_cpu_id();
	struct mcache *mc = &mcaches[cpu];
	/* An interrupt may have opened a block since the fast path looked. */
	uint32_t off = tiny_fit(mc, size);
	if (off + size > TINY_SIZE) {
		if (!tiny_new_block(mc, cpu)) {
			mm_irq_restore(irq);
			return oom();
		}
		off = 0;
	}
	void *p = tiny_take(mc, off, size);
	mm_irq_restore(irq);
	if (flags & KM_ZERO)
		memset(p, 0, size);
	return p;
}

/* A tiny object that fits this CPU's current block: a leaf that saves no
 * register and tail-calls the slow path otherwise. */
static inline void *kmalloc_tiny(size_t size, unsigned flags)
{
	unsigned long irq = mm_irq_save();
	struct mcache *mc = &mcaches[mm_cpu_id()];
	uint32_t off = tiny_fit(mc, size);
	if (__builtin_expect(off + size > TINY_SIZE, 0)) {
		mm_irq_restore(irq);
		return kmalloc_tiny_slow(size, flags);
	}
	void *p = tiny_take(mc, off, size);
	mm_irq_restore(irq);
	if (__builtin_expect(flags & KM_ZERO, 0))
		return memset(p, 0, size);
	return p;
}

static inline void *malloc_core(size_t size, unsigned flags)
{
	if (__builtin_expect(size > MAX_SMALL_SIZE, 0))
		return kmalloc_large(size, flags);
	if ((flags & KM_NOSCAN) && size - 1 < TINY_SIZE - 1)
		return kmalloc_tiny(size, flags);
	return kmalloc_spc(small_spanclass(size ? size_to_class(size) : 1, flags), flags);
}

/* A small object (size <= MAX_SMALL_SIZE) aligned to align (a power of
 * two up to 32 KiB): from the smallest class whose size is a multiple of
 * align, since objects sit at multiples of their size from a span start
 * aligned to 8 KiB and, for the power-of-two classes above 8 KiB, to their
 * size (mcentral_cache_span); powers of two up to 32 KiB are all classes,
 * so one exists. */
static void *kmalloc_align_class(size_t size, size_t align, unsigned flags)
{
	unsigned cls = size ? size_to_class(size) : 1;
	while (cls < NUM_SIZE_CLASSES && class_to_size[cls] % align)
		cls++;
	if (cls == NUM_SIZE_CLASSES)
		return kmalloc_large(size, flags);
	return kmalloc_spc(small_spanclass(cls, flags), flags);
}

/* -------------------------------------------------------------- kfree -- */

/* Free object i of small span s (any span class but tiny objects) on
 * `cpu`, interrupts off. False (and reported) if it is not live. */
static bool free_small_index(struct mspan *s, unsigned i, unsigned cpu,
			     const void *p, const void *caller)
{
	unsigned w = i / 64;
	uint64_t bit = 1ULL << (i % 64);

	if (__atomic_load_n(&s->owner_cpu, __ATOMIC_RELAXED) == (int32_t)cpu) {
		if (!mspan_obj_live(s, i)) {
			bad_pointer("kfree", "double free (object not allocated)", p, s, caller);
			return false;
		}
		st64(&s->free_bits[w], s->free_bits[w] | bit);
		return true;
	}

	/* Remote free; see the protocol in mm/mcentral.c. */
	__atomic_add_fetch(&s->remote_inflight, 1, __ATOMIC_SEQ_CST);
	bool ok = false;
	if (!mspan_obj_live(s, i)) {
		bad_pointer("kfree", "double free (object not allocated)", p, s, caller);
	} else if (__atomic_fetch_or(&s->remote_bits[w], bit, __ATOMIC_SEQ_CST) & bit) {
		bad_pointer("kfree", "double free (already freed remotely)", p, s, caller);
	} else {
		ok = true;
		if (__atomic_load_n(&s->remote_pending, __ATOMIC_SEQ_CST) == 0 &&
		    __atomic_exchange_n(&s->remote_pending, 1, __ATOMIC_SEQ_CST) == 0)
			mcentral_push_pending(&mcentrals[s->spanclass], s);
	}
	__atomic_sub_fetch(&s->remote_inflight, 1, __ATOMIC_SEQ_CST);
	return ok;
}

void kfree_block(uintptr_t block, unsigned cpu)
{
	struct mspan *s = mheap_span_of((void *)block);
	unsigned i = (unsigned)((block - s->startaddr) / TINY_SIZE);
	free_small_index(s, i, cpu, (void *)block, NULL);
}

static void kfree_tiny(struct mspan *s, const void *p, unsigned cpu, const void *caller)
{
	uintptr_t off = (uintptr_t)p - s->startaddr;
	unsigned blk = (unsigned)(off / TINY_SIZE), o = (unsigned)(off % TINY_SIZE);
	uintptr_t block = s->startaddr + (uintptr_t)blk * TINY_SIZE;

	if (blk >= s->nelems || !mspan_obj_live(s, blk)) {
		bad_pointer("kfree", "tiny object in a free block (double free?)", p, s, caller);
		return;
	}
	if (!(__atomic_load_n(&s->tiny->ends[blk], __ATOMIC_RELAXED) >> o)) {
		bad_pointer("kfree", "not a tiny object", p, s, caller);
		return;
	}
	struct mcache *mc = &mcaches[cpu];
	if (mc->tiny == block) {
		if (mc->tiny_local_frees >= mc->tiny_handed) {
			bad_pointer("kfree", "double free of a tiny object", p, s, caller);
			return;
		}
		mc->tiny_local_frees++;
		stat_inc(&mc->nfree[TINY_SPAN_CLASS]);
		return;
	}
	stat_inc(&mc->nfree[TINY_SPAN_CLASS]);
	if (__atomic_sub_fetch(&s->tiny->balance[blk], 1, __ATOMIC_ACQ_REL) == 0)
		free_small_index(s, blk, cpu, (void *)block, caller);
}

static void kfree_checked(const void *p, struct mspan *s, unsigned cpu, const void *caller);

/* kfree's slow path, entered with interrupts off (saved in irq), which it
 * turns back on: a tail call from the fast path. */
__attribute__((noinline)) static void kfree_slow(const void *p, struct mspan *s,
						  unsigned cpu, const void *caller,
						  unsigned long irq)
{
	kfree_checked(p, s, cpu, caller);
	mm_irq_restore(irq);
}

/* Every check of a free, and the free itself (interrupts off). */
static void kfree_checked(const void *p, struct mspan *s, unsigned cpu, const void *caller)
{
	if (!s) {
		bad_pointer("kfree", "not a heap pointer", p, s, caller);
		return;
	}
	switch (mspan_state_of(s)) {
	case MSPAN_FREE:
		bad_pointer("kfree", "pointer into a free page run", p, s, caller);
		return;
	case MSPAN_LARGE: {
		uintptr_t npages;
		if ((uintptr_t)p != s->startaddr) {
			bad_pointer("kfree", "interior pointer into a large object", p, s, caller);
			return;
		}
		if (!mheap_free_large((uintptr_t)p, &npages)) {
			bad_pointer("kfree", "double free of a large object", p, s, caller);
			return;
		}
		stat_inc(&mcaches[cpu].large_free);
		return;
	}
	case MSPAN_INUSE:
		break;
	default:
		bad_pointer("kfree", "span being torn down", p, s, caller);
		return;
	}
	if (s->spanclass == TINY_SPAN_CLASS) {
		kfree_tiny(s, p, cpu, caller);
		return;
	}
	int i = mspan_obj_index(s, (uintptr_t)p);
	if (i < 0) {
		bad_pointer("kfree", "not the start of an object", p, s, caller);
		return;
	}
	/* Read before the free: once it is recorded remotely, the span may
	 * be swept, given back and its record reused by another CPU. */
	unsigned spc = s->spanclass;
	if (free_small_index(s, (unsigned)i, cpu, p, caller))
		stat_inc(&mcaches[cpu].nfree[spc]);
}

/* A tiny object of this CPU's current block (interrupts off): the free is
 * only counted in the mcache; the block's balance is settled when it is
 * retired. The same checks as kfree_tiny's for this case; false sends the
 * free (or its report) down the slow path. */
static inline bool kfree_tiny_local(struct mcache *mc, const void *p)
{
	uintptr_t block = (uintptr_t)p & ~(uintptr_t)(TINY_SIZE - 1);
	unsigned o = (unsigned)((uintptr_t)p & (TINY_SIZE - 1));
	if (mc->tiny != block || mc->tiny_local_frees >= mc->tiny_handed ||
	    !(__atomic_load_n(mc->tiny_ends, __ATOMIC_RELAXED) >> o))
		return false;
	mc->tiny_local_frees++;
	stat_inc(&mc->nfree[TINY_SPAN_CLASS]);
	return true;
}

static inline __attribute__((always_inline)) void kfree_core(const void *p, const void *caller)
{
	if (!p)
		return;
	unsigned long irq = mm_irq_save();
	unsigned cpu = mm_cpu_id();
	struct mspan *s = mheap_span_of(p);

	/* Fast path: this CPU's mcache holds the span (so it is a live
	 * small span), the pointer is an object start, the object is live;
	 * or it is a tiny object of this CPU's current block. */
	if (__builtin_expect(s != NULL, 1) &&
	    __atomic_load_n(&s->owner_cpu, __ATOMIC_RELAXED) == (int32_t)cpu) {
		if (__builtin_expect(s->spanclass != TINY_SPAN_CLASS, 1)) {
			uintptr_t off = (uintptr_t)p - s->startaddr;
			uint32_t i = mspan_offset_index(s, (uint32_t)off);
			unsigned w = i / 64;
			uint64_t bit = 1ULL << (i % 64);
			if (__builtin_expect((uintptr_t)i * s->elemsize == off &&
					     (ld64(&s->alloc_bits[w]) & ~s->free_bits[w] & bit), 1)) {
				st64(&s->free_bits[w], s->free_bits[w] | bit);
				stat_inc(&mcaches[cpu].nfree[s->spanclass]);
				mm_irq_restore(irq);
				return;
			}
		} else if (kfree_tiny_local(&mcaches[cpu], p)) {
			mm_irq_restore(irq);
			return;
		}
	}
	kfree_slow(p, s, cpu, caller, irq);
}

/* ------------------------------------------------------ ksize/krealloc -- */

/* Usable size of a live object, or 0 (reported as `op`, unless op is
 * NULL) for a bad pointer. */
static size_t object_size(const char *op, const void *p, const void *caller)
{
	struct mspan *s = mheap_span_of(p);
	if (!s) {
		bad_pointer(op, "not a heap pointer", p, s, caller);
		return 0;
	}
	switch (mspan_state_of(s)) {
	case MSPAN_LARGE:
		if ((uintptr_t)p != s->startaddr) {
			bad_pointer(op, "interior pointer into a large object", p, s, caller);
			return 0;
		}
		return (size_t)s->npages << MM_PAGE_SHIFT;
	case MSPAN_INUSE:
		break;
	default:
		bad_pointer(op, "pointer into a free page run", p, s, caller);
		return 0;
	}
	uintptr_t off = (uintptr_t)p - s->startaddr;
	if (s->spanclass == TINY_SPAN_CLASS) {
		unsigned blk = (unsigned)(off / TINY_SIZE), o = (unsigned)(off % TINY_SIZE);
		uint16_t ends = blk < s->nelems && mspan_obj_live(s, blk) ?
			__atomic_load_n(&s->tiny->ends[blk], __ATOMIC_RELAXED) : 0;
		if (!(ends >> o)) {
			bad_pointer(op, "not a live tiny object", p, s, caller);
			return 0;
		}
		return (size_t)__builtin_ctz((unsigned)ends >> o) + 1;
	}
	int i = mspan_obj_index(s, (uintptr_t)p);
	if (i < 0) {
		bad_pointer(op, "not the start of an object", p, s, caller);
		return 0;
	}
	if (!mspan_obj_live(s, (unsigned)i)) {
		bad_pointer(op, "object not allocated (freed?)", p, s, caller);
		return 0;
	}
	return s->elemsize;
}

#if !DEBUG_HEAP
/* ---------------------------------------------------------- public API -- */

/* The tiny path, out of line: kmalloc tail-calls it. */
__attribute__((noinline)) static void *kmalloc_tiny_call(size_t size, unsigned flags)
{
	return kmalloc_tiny(size, flags);
}

/* Everything else kmalloc's fast path does not handle: large, size 0, a
 * cache word used up, no span cached yet. Out of line, so that the fast
 * path is a leaf that saves no register and tail-calls this. */
__attribute__((noinline)) static void *kmalloc_slow(size_t size, unsigned flags)
{
	return malloc_core(size, flags);
}

/*
 * The same-CPU fast path of a small allocation (1..32 KiB, not tiny): one
 * table lookup for the span class, interrupts off, this CPU's cached span,
 * ctz of its 64-slot cache word, the slot's bit set in alloc_bits, the
 * CPU's counter bumped, interrupts on. No lock, no atomic instruction.
 */
void *kmalloc(size_t size, unsigned flags)
{
	if (__builtin_expect(size - 1 < MAX_SMALL_SIZE, 1)) {
		if ((flags & KM_NOSCAN) && size < TINY_SIZE)
			return kmalloc_tiny_call(size, flags);
		unsigned spc = small_spanclass(size_to_class(size), flags);
		unsigned long irq = mm_irq_save();
		struct mcache *mc = &mcaches[mm_cpu_id()];
		struct mspan *s = mc->alloc[spc];
		uint64_t c;
		if (__builtin_expect(s != NULL && (c = s->alloc_cache) != 0, 1)) {
			unsigned i = (unsigned)__builtin_ctzll(c);
			unsigned w = s->cache_word;
			st64(&s->alloc_cache, c & (c - 1));
			st64(&s->alloc_bits[w], ld64(&s->alloc_bits[w]) | (1ULL << i));
			stat_inc(&mc->nmalloc[spc]);
			mm_irq_restore(irq);
			void *p = (void *)(s->startaddr + (uintptr_t)(w * 64u + i) * s->elemsize);
			if (__builtin_expect(flags & KM_ZERO, 0))
				return memset(p, 0, class_to_size[spanclass_sizeclass(spc)]);
			return p;
		}
		mm_irq_restore(irq);
	}
	return kmalloc_slow(size, flags);
}

static void *malloc_aligned_core(size_t size, size_t align, unsigned flags)
{
	if (align == 0 || (align & (align - 1)))
		return NULL;
	if (align > MAX_SMALL_SIZE || (align > MM_PAGE_SIZE && size > MAX_SMALL_SIZE))
		return kmalloc_large_aligned(size, align, flags);
	if (size > MAX_SMALL_SIZE)
		return kmalloc_large(size, flags);   /* spans are 8 KiB-aligned */
	if (align <= 8 && !((flags & KM_NOSCAN) && size - 1 < TINY_SIZE - 1))
		return malloc_core(size, flags);
	return kmalloc_align_class(size, align, flags);
}

void *kzalloc(size_t size, unsigned flags)
{
	return malloc_core(size, flags | KM_ZERO);
}

void *kcalloc(size_t n, size_t size, unsigned flags)
{
	size_t bytes;
	if (__builtin_mul_overflow(n, size, &bytes))
		return NULL;
	return malloc_core(bytes, flags | KM_ZERO);
}

void *kmalloc_aligned(size_t size, size_t align, unsigned flags)
{
	return malloc_aligned_core(size, align, flags);
}

void kfree(const void *p)
{
	kfree_core(p, __builtin_return_address(0));
}

size_t ksize(const void *p)
{
	if (!p)
		return 0;
	return object_size("ksize", p, __builtin_return_address(0));
}

void *krealloc(void *p, size_t size, unsigned flags)
{
	if (!p)
		return malloc_core(size, flags);
	if (size == 0) {
		kfree_core(p, __builtin_return_address(0));
		return malloc_core(0, flags);
	}
	size_t usable = object_size("krealloc", p, __builtin_return_address(0));
	if (!usable)
		return NULL;
	if (size <= usable)
		return p;
	void *q = malloc_core(size, flags);
	if (!q)
		return NULL;
	memcpy(q, p, usable);
	kfree_core(p, __builtin_return_address(0));
	return q;
}
#else
/* ---------------------------------------------- raw API for debug mode -- */
/* mm/mdebug.c provides the public API and wraps every object in a red
 * zone and a tracking trailer; these are the heap underneath it. align:
 * a power of two. */

void *heap_raw_alloc(size_t size, size_t align, unsigned flags)
{
	if (align > MM_PAGE_SIZE)
		return kmalloc_large_aligned(size, align, flags);
	if (size > MAX_SMALL_SIZE)
		return kmalloc_large(size, flags);   /* spans are 8 KiB-aligned */
	/* Never the tiny path: debug requests are at least 64 bytes. */
	return kmalloc_align_class(size, align, flags);
}

void heap_raw_free(const void *p, const void *caller)
{
	kfree_core(p, caller);
}

size_t heap_raw_size(const char *op, const void *p, const void *caller)
{
	return object_size(op, p, caller);
}
#endif

/* ------------------------------------------------------------- drain -- */

void kmem_reclaim(void)
{
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++)
		mcentral_reclaim(&mcentrals[spc]);
}

void kmem_drain_this_cpu(void)
{
	if (!mheap_ready())
		return;
#if DEBUG_HEAP
	kmem_debug_flush_quarantine();
#endif
	unsigned long irq = mm_irq_save();
	unsigned cpu = mm_cpu_id();
	mcache_release_all(&mcaches[cpu], cpu);
	mm_irq_restore(irq);
	kmem_reclaim();
}

/* Lock order: init_lock, the debug-mode locks, the mcentrals in span
 * class order, the mheap (see docs/ARCHITECTURE.md). */
void kmem_lock_all(void)
{
	spin_lock(&init_lock);
#if DEBUG_HEAP
	kmem_debug_lock_all();
#endif
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++)
		spin_lock(&mcentrals[spc].lock);
	spin_lock(&mheap.lock);
}

void kmem_unlock_all(void)
{
	spin_unlock(&mheap.lock);
	for (unsigned spc = NUM_SPAN_CLASSES; spc-- > 0;)
		spin_unlock(&mcentrals[spc].lock);
#if DEBUG_HEAP
	kmem_debug_unlock_all();
#endif
	spin_unlock(&init_lock);
}

/* In the child of a fork made under kmem_lock_all: the other threads'
 * tickets (they may have queued on a lock) died with them, so each lock is
 * set free afresh rather than handed to the next ticket. */
void kmem_unlock_all_in_child(void)
{
	spin_lock_init(&init_lock, init_lock.name);
#if DEBUG_HEAP
	kmem_debug_reset_locks();
#endif
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++)
		spin_lock_init(&mcentrals[spc].lock, mcentrals[spc].lock.name);
	spin_lock_init(&mheap.lock, mheap.lock.name);
}

void kmem_drain_all(void)
{
	if (!mheap_ready())
		return;
#if DEBUG_HEAP
	kmem_debug_flush_quarantine();
#endif
	unsigned long irq = mm_irq_save();
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++)
		mcache_release_all(&mcaches[cpu], cpu);
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++)
		mcentral_reclaim_all(&mcentrals[spc]);
	mm_irq_restore(irq);
}
