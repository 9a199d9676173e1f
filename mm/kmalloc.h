/*
 * mm/kmalloc.h - the public heap API, Linux style.
 *
 * A Go-runtime-style allocator (mheap / mcentral / per-CPU mcache / mspan,
 * Go's 68 size classes, the 16-byte tiny allocator) with explicit free.
 * Works in the kernel and, unchanged, as the hosted library
 * build/host/libspanheap.a (which initializes itself on first use).
 *
 *   void *p = kmalloc(100, 0);          // 112-byte class, 16-aligned
 *   char *s = kmalloc(12, KM_NOSCAN);   // tiny path: packed 16-byte blocks
 *   p = krealloc(p, 4000, 0);           // contents kept
 *   kfree(p); kfree(s);                 // kfree(NULL) is a no-op
 *
 * Guarantees: kmalloc(0) returns a unique non-NULL pointer kfree accepts;
 * an impossible size returns NULL; a power-of-two size is naturally
 * aligned (as Linux's kmalloc since 5.4: up to 32 KiB by its size class,
 * larger ones are page-aligned large objects); every object is at least
 * 8-aligned, and aligned to the largest power of two (up to 32 KiB)
 * dividing its size class's object size (Go's classes: a 24-byte object is
 * 8-aligned, a 48-byte one 16-aligned); use kmalloc_aligned for more;
 * kfree, krealloc and ksize may be called from any CPU and from interrupt
 * handlers. A pointer the heap never gave out, an interior pointer or a
 * double free is reported (pointer, span, class, caller) and ignored, never
 * corrupting the heap (or panics: built with SPANHEAP_PANIC_ON_BAD_FREE,
 * or after kmem_set_panic_on_bad_free(1)).
 */
#ifndef MM_KMALLOC_H
#define MM_KMALLOC_H

#include <stddef.h>
#include <stdint.h>

/* Allocation flags. */
#define KM_ZERO   0x1u  /* return zeroed memory */
#define KM_NOSCAN 0x2u  /* the object holds no pointers (Go's noscan):
                         * requests < 16 bytes take the tiny path */

/* kmalloc's two halves, out of line: without flags (the fast path and
 * nothing else), and with any flags. */
void *kmalloc_noflags(size_t size);
void *kmalloc_flags(size_t size, unsigned flags);

/* Inline, as Linux's: with constant flags (the usual call) the test goes
 * away, and a call without flags (and malloc) reaches the fast path with
 * no flag test of its own. */
static inline void *kmalloc(size_t size, unsigned flags)
{
	if (flags)
		return kmalloc_flags(size, flags);
	return kmalloc_noflags(size);
}
void *kzalloc(size_t size, unsigned flags);
/* n * size, NULL when the product overflows. */
void *kcalloc(size_t n, size_t size, unsigned flags);
/* Resize, in place when the new size fits the object's size class.
 * krealloc(NULL, n) == kmalloc(n); krealloc(p, 0) frees p and returns the
 * kmalloc(0) pointer. On failure returns NULL and p is untouched. */
void *krealloc(void *p, size_t size, unsigned flags);
/* align: any power of two. Up to 32 KiB a small object of a suitable size
 * class (when the size fits one); beyond, a large object whose span
 * starts aligned. */
void *kmalloc_aligned(size_t size, size_t align, unsigned flags);
void kfree(const void *p);
/* Usable size of a live object (>= the size asked for); 0 for a bad pointer. */
size_t ksize(const void *p);

/* Heap-wide statistics. */
struct kmem_stats {
	uint64_t heap_bytes;        /* obtained from the platform (pmm/mmap) */
	uint64_t span_bytes_inuse;  /* in spans with at least one live object or cached */
	uint64_t large_bytes;       /* in live large (> 32 KiB) objects */
	uint64_t objects_inuse;     /* live small + large objects */
	uint64_t nmalloc, nfree;    /* calls that succeeded */
	uint64_t tiny_allocs;       /* served by the tiny path */
	uint64_t bad_frees;         /* reported and ignored */
	uint64_t oom;               /* NULL returns for lack of memory */
	uint64_t retained_bytes;    /* held from the platform in free page runs
	                             * and per-CPU page caches, ready for reuse */
	uint64_t scavenged_bytes;   /* given back to the platform by the
	                             * scavenger (policy, kmem_scavenge, drain), ever */
	uint64_t page_cache_bytes;  /* in the per-CPU page caches (part of retained) */

	/* Metadata: the heap's own bookkeeping, against chunk_bytes (the
	 * pages that hold objects). meta_span_bytes .. meta_tiny_bytes are
	 * fixalloc blocks (part of heap_bytes); the page-map leaves are not
	 * in heap_bytes; the static structures are .bss (mcaches, mcentrals,
	 * page caches, the mheap and the other arenas, the page-map root and
	 * its empty leaf, mspan_none). metadata_bytes is the sum of all
	 * six. */
	uint64_t chunk_bytes;          /* in chunks: the pages for objects */
	uint64_t spans;                /* span records in use (any state) */
	uint64_t meta_span_bytes;      /* blocks of span records (less the bitmaps in them) */
	uint64_t meta_bitmap_bytes;    /* small spans' bitmaps (mm/mspan.h) */
	uint64_t meta_chunk_bytes;     /* blocks of chunk records */
	uint64_t meta_tiny_bytes;      /* blocks of tiny-block side tables */
	uint64_t meta_pagemap_bytes;   /* page-map leaves */
	uint64_t meta_static_bytes;    /* .bss structures */
	uint64_t metadata_bytes;
	/* Internal fragmentation of the small spans: object_bytes_inuse is
	 * live objects x their class's object size (what callers asked for
	 * cannot be known; tiny objects, packed in 16-byte blocks, are not
	 * counted); span_bytes_inuse - object_bytes_inuse is the slack: free
	 * slots, each span's tail that holds no whole object, and the tiny
	 * class's spans. kmem_get_class_stats has it per class. */
	uint64_t object_bytes_inuse;
	/* Lock acquisitions, ever, and those that had to wait. */
	uint64_t mcentral_lock_acquires, mcentral_lock_contended;
	uint64_t mheap_lock_acquires, mheap_lock_contended;   /* all arenas */
	/* Pages held from the platform in chunks now, and given back ever. */
	uint64_t pages_held, pages_returned;
};
void kmem_get_stats(struct kmem_stats *st);

/* The span classes: spc = size class << 1 | noscan, 2 <= spc <
 * KMEM_SPAN_CLASSES (0 and 1 are the large objects'). */
#define KMEM_SPAN_CLASSES 136

/* One span class. */
struct kmem_class_stats {
	uint32_t object_size;       /* the class's object size */
	uint32_t objects_per_span;
	uint32_t pages_per_span;
	uint32_t noscan;
	uint64_t spans;             /* spans of this class in use */
	uint64_t objects_inuse;     /* live objects (tiny class: tiny objects) */
	uint64_t span_bytes;        /* spans x pages per span x 8 KiB */
	uint64_t object_bytes;      /* live objects x object size (0: tiny class) */
	uint64_t tail_bytes;        /* spans x the tail no object fits in */
	uint64_t lock_acquires, lock_contended;   /* its mcentral's lock */
};
/* 0 and *cs filled, or -1 for no such span class. Each call walks the
 * small spans' bitmaps (the live objects: frees are not counted one by
 * one); kmem_get_all_class_stats walks them once for every class. */
int kmem_get_class_stats(unsigned spc, struct kmem_class_stats *cs);
/* cs[spc] for every span class 2 <= spc < KMEM_SPAN_CLASSES, from one walk;
 * cs[0] and cs[1] zeroed. */
void kmem_get_all_class_stats(struct kmem_class_stats cs[KMEM_SPAN_CLASSES]);
/* /proc/slabinfo-style table of every size class, then the heap totals. */
void kmem_dump(void);
/* The mheap, one character per 8 KiB page, 64 to a line after the
 * address of the line's first page, chunk by chunk: a size class family
 * ('1'..'9', 'a'..'z' without 'c': classes 1-2, 3-4, ...), 'L' a large
 * object, 'c' a run in a per-CPU page cache, '.' free, 'R' free in a
 * retained (wholly free) chunk. A run of identical lines is printed once
 * with a count. */
void kmem_heap_map(void);
/* The same map, uncompressed, into buf (NUL-terminated, truncated to
 * size); returns the length the whole map needs. Each line: the address
 * (0x and 16 hex digits), a space, the page characters, '\n'. */
size_t kmem_heap_map_write(char *buf, size_t size);

/* Walk the whole heap and check every invariant. 0 when all hold; otherwise
 * prints the first broken invariant and returns non-zero. Only while no
 * other CPU is in the heap (an idle CPU's kmem_scavenge_idle waits). */
int mheap_verify(void);
/* After an mheap_verify that found a broken invariant: the format of the
 * report it printed (the rule, before its numbers are filled in: "%lu
 * span records in arena %u ..."), so that a test can tell which check
 * fired; NULL after one that passed (or before any). */
const char *mheap_verify_broken_rule(void);

/* Explicit initialization (the kernel calls it once the pmm is up); every
 * entry point also initializes lazily. */
void kmalloc_init(void);

/* Give back every cached span and page run this CPU (or, in the hosted
 * build, this thread) holds, so an emptied heap returns all its memory. */
void kmem_drain_this_cpu(void);
/* Same for every CPU's cache (only when no other CPU is in the heap; an
 * idle CPU's kmem_scavenge_idle waits for it). */
void kmem_drain_all(void);
/* A CPU (a hosted thread) going away: its caches go back to the heap like
 * kmem_drain_this_cpu's, but the heap keeps the free chunks its retention
 * policy allows, for the other CPUs to reuse. */
void kmem_release_this_cpu(void);

/* Memory pressure: ask every CPU to give back what its caches hold for
 * it alone (tiny block, allocation and owned spans, notices, page cache)
 * at its next small-object allocation slow path or kmem_scavenge_idle,
 * whichever comes first; call it where a shrinker would run. It does not
 * wait: a CPU that never allocates nor idles again keeps its caches. An
 * allocation that fails asks too, and waits (a bounded while) for the
 * answers before it tries once more. */
void kmem_release_request(void);

/* Give every free chunk the heap retains back to the platform now;
 * returns the bytes given back (cached spans and page caches are not
 * touched: kmem_drain_* give those back, and kmem_drain_all scavenges). */
uint64_t kmem_scavenge(void);
/* The background scavenger's step, for an idle CPU: trim the retained
 * free chunks to the policy's target (docs/HEAP.md), and answer a
 * kmem_release_request; a few loads when there is nothing to do, else it
 * holds kmem_idle_lock (mm/malloc.c) while it works, so that mheap_verify
 * and kmem_drain_all on another CPU find it out of the heap. Not from an
 * interrupt handler. */
void kmem_scavenge_idle(void);

/* Make a bad pointer given to kfree/krealloc/ksize fatal (mm_panic after
 * the report) or, with 0, reported and ignored (the default). */
void kmem_set_panic_on_bad_free(int on);

/* Take / release every heap lock, in the lock order: nothing can change
 * the heap's shared state in between (a CPU's own mcache excepted). For a
 * host that forks (hosted/: pthread_atfork) or snapshots the heap. */
void kmem_lock_all(void);
void kmem_unlock_all(void);
/* After fork, in the child (one thread left): every lock set free. */
void kmem_unlock_all_in_child(void);

#endif
