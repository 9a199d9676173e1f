/*
 * mm/pagemap.h - the page -> span map (Go's arena index, two levels).
 *
 * Any address is turned into its span in O(1) without a lock. The map
 * covers one window of the address space, chosen by the platform:
 * [MM_PAGEMAP_BASE, MM_PAGEMAP_BASE + 2^MM_PAGEMAP_BITS). A lookup takes
 * the address's offset in the window (one subtraction; an address below
 * or above the window has bits at or above MM_PAGEMAP_BITS, so one shift
 * and test reject it), its 8 KiB page number, indexes a static root with
 * the page number's top bits and a leaf (one entry per page) with the
 * low bits. The page number's bits are split in half between them, but a
 * leaf has at least 2^10 entries (8 KiB) and at most 2^17 (1 MiB: 1 GiB
 * of window): a small window costs little .bss (root, and the empty leaf
 * below) and a small machine little leaf. The kernel's 2^40 window: 2^13
 * root entries (64 KiB), leaves of 128 KiB for 128 MiB each. A platform
 * that defines no window gets the whole 48-bit x86-64 canonical space
 * (base 0xffff8000_0000_0000, 48 bits: the upper half, where a kernel's
 * direct map usually is, then the lower half, where hosted mmap addresses
 * are; a non-canonical address falls outside): a 2 MiB root, 1 MiB
 * leaves.
 *
 * Entries are offsets, so that 0 is "none" and a lookup that may find
 * nothing still reads something: a root entry is its leaf's offset from
 * pagemap_empty_leaf (an all-zero leaf of .bss that is never written),
 * a leaf entry its span's offset from mspan_none (a span record that is
 * no CPU's, no state, no bits). pagemap_lookup turns 0 into NULL for
 * everyone; kfree's fast path uses pagemap_lookup_or_none, which has no
 * NULL test (an address with no span gives mspan_none, whose local_cache
 * matches no mcache), and in the kernel (-mcmodel=kernel) the two bases
 * are the displacements of the loads: 2 instructions fewer per kfree.
 *
 * Leaves come from mm_sys_alloc when the heap first grows into their part
 * of the window and are kept (like Go's arena index): they are not part of
 * kmem_stats.heap_bytes. A chunk from mm_sys_alloc that is not wholly
 * inside the window is refused (pagemap_add_chunk returns false, the heap
 * gives it back and reports out of memory; mm_log says so once).
 * Writes happen under the lock of the arena whose chunk holds the page
 * (mm/mheap.h), but for the ends of a run in a CPU's page cache, which
 * that CPU writes (mm/mpagecache.c); reads are lock-free (acquire loads).
 * Leaves are made and counted under pagemap.c's own lock.
 *
 * What is mapped (the rule mm/mheap.c keeps and mheap_verify checks):
 * every page of a small span in use (state MSPAN_INUSE) maps to it, so
 * kfree finds an object's span from any of its pages; every other span (a
 * large object, a run in a page cache, a free run) has only its first and
 * last pages mapped, and the pages between map to NULL, as the boundary
 * tags of Go's old mheap. So allocating, freeing and coalescing a run of
 * any length writes a few entries, not one per page. A pointer between
 * the ends of a large object or free run finds no span here;
 * mheap_span_containing resolves it, for reports.
 */
#ifndef MM_PAGEMAP_H
#define MM_PAGEMAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "mm/platform.h"
#include "mm/sizeclasses.h"

struct mspan;

#if defined(MM_PAGEMAP_BASE) != defined(MM_PAGEMAP_BITS)
#error "the platform defines one of MM_PAGEMAP_BASE and MM_PAGEMAP_BITS: define both or neither"
#endif
#ifndef MM_PAGEMAP_BITS
/* The whole 48-bit canonical space: -2^47 .. 2^47 - 1, as one window. */
#define MM_PAGEMAP_BASE 0xffff800000000000UL
#define MM_PAGEMAP_BITS 48
#endif
/* At least 16 MiB (a leaf of 16 KiB, a multiple of MM_SYS_ALIGN), at
 * most 57 bits (5-level paging). */
#if MM_PAGEMAP_BITS < 24 || MM_PAGEMAP_BITS > 57
#error "MM_PAGEMAP_BITS must be between 24 and 57"
#endif

#define PAGEMAP_ADDR_BITS MM_PAGEMAP_BITS
/* Half the page number's bits (rounded up), between 10 (an 8 KiB leaf:
 * mm_sys_alloc's grain) and 17 (1 MiB). */
#define PAGEMAP_HALF_BITS ((PAGEMAP_ADDR_BITS - MM_PAGE_SHIFT + 1) / 2)
#define PAGEMAP_LEAF_BITS \
	(PAGEMAP_HALF_BITS < 10 ? 10 : PAGEMAP_HALF_BITS > 17 ? 17 : PAGEMAP_HALF_BITS)
#define PAGEMAP_L1_BITS (PAGEMAP_ADDR_BITS - MM_PAGE_SHIFT - PAGEMAP_LEAF_BITS)
#define PAGEMAP_L1_ENTRIES (1UL << PAGEMAP_L1_BITS)
#define PAGEMAP_LEAF_ENTRIES (1UL << PAGEMAP_LEAF_BITS)
#define PAGEMAP_LEAF_BYTES (PAGEMAP_LEAF_ENTRIES * sizeof(void *))

/* Root entry: (uintptr_t)leaf - (uintptr_t)pagemap_empty_leaf, 0 for
 * none; leaf entry: (uintptr_t)span - (uintptr_t)&mspan_none, 0 for
 * none. */
extern uintptr_t pagemap_l1[PAGEMAP_L1_ENTRIES];
extern uintptr_t pagemap_empty_leaf[PAGEMAP_LEAF_ENTRIES];
extern struct mspan mspan_none;
/* (uintptr_t)&mspan_none; never written. Hidden: in a shared library
 * one load, not a load of its address (from the GOT) and then of it. */
extern uintptr_t pagemap_none_base __attribute__((visibility("hidden")));

/* The window as numbers, for debuggers (tools/gdb/spanheap.py), which
 * cannot see the macros. */
struct pagemap_window {
	uint64_t base;
	unsigned addr_bits, leaf_bits;
};
extern const struct pagemap_window pagemap_window;

/* addr's offset in the window; at or above 2^PAGEMAP_ADDR_BITS (as an
 * unsigned number) when addr is outside it. */
static inline uint64_t pagemap_offset(uintptr_t addr)
{
	return (uint64_t)(addr - (uintptr_t)(MM_PAGEMAP_BASE));
}

/* The window page number of an address inside the window. */
static inline uint64_t pagemap_pageno(uintptr_t addr)
{
	return pagemap_offset(addr) >> MM_PAGE_SHIFT;
}

/* Is addr inside the window? One compare: the root index is past the
 * root exactly when addr's offset is at or above 2^PAGEMAP_ADDR_BITS. */
static inline bool pagemap_in_window(uintptr_t addr)
{
	return pagemap_pageno(addr) >> PAGEMAP_LEAF_BITS < PAGEMAP_L1_ENTRIES;
}

/* The entry of the page holding addr, which is inside the window: a
 * span's offset from mspan_none, 0 if none. */
static inline uintptr_t pagemap_entry_in_window(uintptr_t addr)
{
	uint64_t pn = pagemap_pageno(addr);
	uintptr_t leaf = __atomic_load_n(&pagemap_l1[pn >> PAGEMAP_LEAF_BITS], __ATOMIC_ACQUIRE);
	const uintptr_t *e = (const uintptr_t *)((uintptr_t)pagemap_empty_leaf + leaf) +
			     (pn & (PAGEMAP_LEAF_ENTRIES - 1));
	return __atomic_load_n(e, __ATOMIC_ACQUIRE);
}

/* The entry of the page holding addr, 0 if addr is not in the heap.
 * Outside the window is never in the heap (and must not alias an address
 * inside it with the same low bits). */
static inline uintptr_t pagemap_entry(uintptr_t addr)
{
	return pagemap_in_window(addr) ? pagemap_entry_in_window(addr) : 0;
}

/* The span holding addr, which is inside the window, or &mspan_none if
 * none does. */
static inline struct mspan *pagemap_lookup_or_none(uintptr_t addr)
{
	/* &mspan_none read from memory (one add of a memory operand), not
	 * as a constant: gcc would make it every field's displacement from
	 * the entry and keep the span in a second register too (two moves
	 * more in kfree). */
	return (struct mspan *)(pagemap_entry_in_window(addr) + pagemap_none_base);
}

/*
 * The flat part (MM_HAVE_PAGEMAP_FLAT: the platform's
 * mm_pagemap_flat_pages, mm/platform.h; the kernel: its RAM's pages; the
 * hosted build: its arena's, hosted/mm_platform.h).
 * At start-up the heap makes the leaves of the window's first
 * pagemap_flat_pages pages in one block (pagemap_init_flat), so that the
 * entry of page pn < pagemap_flat_pages is pagemap_flat[pn]: kfree's fast
 * path reads it with one compare and one load where the root and the
 * leaf took a shift, a mask and two loads (kernel kmalloc+kfree 62.9 ->
 * 59.9 instructions; hosted, through libspanheap.so, 74.9 -> 68.9). They
 * are ordinary leaves for everyone else (the root points into the
 * block), and a page above them is still found through the root, by
 * kfree's miss (kfree_miss). Both are written once, before the heap's
 * first chunk, and read plainly (one compare with a memory operand):
 * nothing can be freed before they are set.
 */
#ifdef MM_HAVE_PAGEMAP_FLAT
/* Hidden, as pagemap_none_base: in a shared library one load each. */
extern uintptr_t *pagemap_flat __attribute__((visibility("hidden")));
extern uint64_t pagemap_flat_pages __attribute__((visibility("hidden")));
/* Is addr's page in the flat part? */
static inline bool pagemap_fast_covers(uintptr_t addr)
{
	return pagemap_pageno(addr) < pagemap_flat_pages;
}
/* The span of addr's page in the flat part, or &mspan_none. */
static inline struct mspan *pagemap_fast_lookup(uintptr_t addr)
{
	return (struct mspan *)(__atomic_load_n(&pagemap_flat[pagemap_pageno(addr)],
						__ATOMIC_ACQUIRE) + pagemap_none_base);
}
#else
static inline bool pagemap_fast_covers(uintptr_t addr)
{
	return pagemap_in_window(addr);
}
static inline struct mspan *pagemap_fast_lookup(uintptr_t addr)
{
	return pagemap_lookup_or_none(addr);
}
#endif

/* The span holding addr, or NULL if addr is not in the heap. */
static inline struct mspan *pagemap_lookup(uintptr_t addr)
{
	uintptr_t e = pagemap_entry(addr);
	return e ? (struct mspan *)((uintptr_t)&mspan_none + e) : NULL;
}

/* Once, before the heap's first chunk: the flat part's leaves, if the
 * platform asks for them (a smaller part, down to none, when the
 * platform cannot give one block that big). */
void pagemap_init_flat(void);
/* For the verifier: 0 if the root points at the flat part's leaves. */
int pagemap_verify_flat(void);
/* Under an arena's lock: make leaves for [base, base+npages pages) exist and
 * count a chunk in each (false when out of memory, or when the chunk is
 * not wholly inside the window; nothing changed then). */
bool pagemap_add_chunk(uintptr_t base, size_t npages);
/* Under its arena's lock: the chunk is gone (its entries must already be
 * NULL). */
void pagemap_remove_chunk(uintptr_t base, size_t npages);
/* Under the lock of the pages' arena: map npages pages from base to s
 * (NULL to unmap). */
void pagemap_set(uintptr_t base, size_t npages, struct mspan *s);
/* Map the page at addr to s (NULL to unmap): under its arena's lock, or by the
 * CPU whose page cache holds the run the page belongs to. */
void pagemap_set_page(uintptr_t addr, struct mspan *s);
/* Under the pages' arena's lock: map the first and last of npages pages from base to s
 * (one page when npages is 1). */
void pagemap_set_ends(uintptr_t base, size_t npages, struct mspan *s);
/* Bytes of leaves held. */
uint64_t pagemap_sys_bytes(void);

#endif
