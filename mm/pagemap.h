/*
 * mm/pagemap.h - the page -> span map (Go's arena index, two levels).
 *
 * Any address is turned into its span in O(1) without a lock: mask it to
 * 48 bits (x86-64 canonical addresses: the kernel's direct map is
 * 0xffff8000_0000_0000 + phys, hosted mmap addresses are low), take the
 * 8 KiB page number (35 bits), index a static first level with the top 18
 * bits and a 1 MiB leaf (2^17 entries, one per page: 1 GiB of address
 * space) with the low 17. Leaves come from mm_sys_alloc when the heap first
 * grows into their GiB and are kept (like Go's arena index): they are
 * not part of kmem_stats.heap_bytes.
 * Writes happen under mheap.lock; reads are lock-free (acquire loads).
 */
#ifndef MM_PAGEMAP_H
#define MM_PAGEMAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "mm/sizeclasses.h"

struct mspan;

#define PAGEMAP_ADDR_BITS 48
#define PAGEMAP_LEAF_BITS 17
#define PAGEMAP_L1_BITS (PAGEMAP_ADDR_BITS - MM_PAGE_SHIFT - PAGEMAP_LEAF_BITS)
#define PAGEMAP_LEAF_ENTRIES (1UL << PAGEMAP_LEAF_BITS)
#define PAGEMAP_LEAF_BYTES (PAGEMAP_LEAF_ENTRIES * sizeof(void *))

extern struct mspan **pagemap_l1[1UL << PAGEMAP_L1_BITS];

static inline uint64_t pagemap_pageno(uintptr_t addr)
{
	return ((uint64_t)addr & ((1ULL << PAGEMAP_ADDR_BITS) - 1)) >> MM_PAGE_SHIFT;
}

/* The span holding addr, or NULL if addr is not in the heap. */
static inline struct mspan *pagemap_lookup(uintptr_t addr)
{
	/* A non-canonical address is never in the heap (and must not alias
	 * the canonical one with the same low 48 bits). */
	if ((uint64_t)((int64_t)((uint64_t)addr << 16) >> 16) != (uint64_t)addr)
		return NULL;
	uint64_t pn = pagemap_pageno(addr);
	struct mspan **leaf = __atomic_load_n(&pagemap_l1[pn >> PAGEMAP_LEAF_BITS],
					      __ATOMIC_ACQUIRE);
	if (!leaf)
		return NULL;
	return __atomic_load_n(&leaf[pn & (PAGEMAP_LEAF_ENTRIES - 1)], __ATOMIC_ACQUIRE);
}

/* Under mheap.lock: make leaves for [base, base+npages pages) exist and
 * count a chunk in each (false when out of memory; nothing changed). */
bool pagemap_add_chunk(uintptr_t base, size_t npages);
/* Under mheap.lock: the chunk is gone (its entries must already be NULL). */
void pagemap_remove_chunk(uintptr_t base, size_t npages);
/* Under mheap.lock: map npages pages from base to s (NULL to unmap). */
void pagemap_set(uintptr_t base, size_t npages, struct mspan *s);
/* Bytes of leaves held. */
uint64_t pagemap_sys_bytes(void);

#endif
