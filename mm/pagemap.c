/*
 * mm/pagemap.c - maintenance of the two-level page -> span map (see
 * mm/pagemap.h, which says what is mapped: every page of a small span in
 * use, the first and last pages of any other span). Leaves are made on
 * demand and kept (leaf_chunks counts the chunks in each, so that adding
 * a chunk can be undone and a future release policy can tell an unused
 * leaf). A chunk not wholly inside the platform's window is refused
 * before anything changes: the heap gives it back and treats the growth as
 * out of memory; the first refusal is logged, naming the chunk and the
 * window.
 */
#include "mm/pagemap.h"
#include "mm/mheap.h"
#include "mm/platform.h"

_Static_assert(((uint64_t)(MM_PAGEMAP_BASE) & (MM_SYS_ALIGN - 1)) == 0,
	       "MM_PAGEMAP_BASE must be a multiple of MM_SYS_ALIGN (8 KiB)");

uintptr_t pagemap_l1[PAGEMAP_L1_ENTRIES];
/* Read through for every root entry that has no leaf; never written. */
uintptr_t pagemap_empty_leaf[PAGEMAP_LEAF_ENTRIES];
/* What every page without a span maps to, for pagemap_lookup_or_none:
 * zero, so its local_cache is no mcache. Never written. */
struct mspan mspan_none;
uintptr_t pagemap_none_base = (uintptr_t)&mspan_none;
/* pagemap_lock protects the root's entries (leaves made), leaf_chunks,
 * leaf_bytes (read relaxed without it) and window_refusal_logged: what
 * the arenas share. Taken inside an arena's lock (interrupts off), the
 * innermost heap lock; so a host holding every arena's lock (a fork)
 * finds it free. */
static mm_spinlock_t pagemap_lock = MM_SPINLOCK_INIT("pagemap");
/* Chunks overlapping each leaf. */
static uint16_t leaf_chunks[PAGEMAP_L1_ENTRIES];
static uint64_t leaf_bytes;
static bool window_refusal_logged;

const struct pagemap_window pagemap_window = {
	.base = (uint64_t)(MM_PAGEMAP_BASE),
	.addr_bits = PAGEMAP_ADDR_BITS,
	.leaf_bits = PAGEMAP_LEAF_BITS,
};

static uint64_t l1_index(uint64_t pn) { return pn >> PAGEMAP_LEAF_BITS; }

/* The leaf of root entry i, NULL if none. */
static uintptr_t *leaf_of(uint64_t i)
{
	uintptr_t e = pagemap_l1[i];
	return e ? (uintptr_t *)((uintptr_t)pagemap_empty_leaf + e) : NULL;
}

static void set_leaf(uint64_t i, uintptr_t *leaf)
{
	uintptr_t e = leaf ? (uintptr_t)leaf - (uintptr_t)pagemap_empty_leaf : 0;
	__atomic_store_n(&pagemap_l1[i], e, __ATOMIC_RELEASE);
}

/* Whether [base, base+npages pages) lies wholly inside the window. */
static bool in_window(uintptr_t base, size_t npages)
{
	uint64_t off = pagemap_offset(base), size = 1ULL << PAGEMAP_ADDR_BITS;
	return npages != 0 && off < size &&
	       (uint64_t)npages <= (size - off) >> MM_PAGE_SHIFT;
}

static void log_window_refusal(uintptr_t base, size_t npages)
{
	if (window_refusal_logged)
		return;
	window_refusal_logged = true;
	mm_log("mm: the platform returned memory at %#lx-%#lx, outside the page map's "
	       "window MM_PAGEMAP_BASE %#lx, MM_PAGEMAP_BITS %u (mm_platform.h); "
	       "refused, treated as out of memory (logged once)",
	       (unsigned long)base, (unsigned long)(base + ((uintptr_t)npages << MM_PAGE_SHIFT) - 1),
	       (unsigned long)(MM_PAGEMAP_BASE), (unsigned)PAGEMAP_ADDR_BITS);
}

static void count_leaf_bytes(int64_t bytes)
{
	__atomic_store_n(&leaf_bytes, leaf_bytes + (uint64_t)bytes, __ATOMIC_RELAXED);
}

static bool add_chunk_locked(uintptr_t base, size_t npages)
{
	MM_HELD(&pagemap_lock);
	if (!in_window(base, npages)) {
		log_window_refusal(base, npages);
		return false;
	}
	uint64_t first = l1_index(pagemap_pageno(base));
	uint64_t last = l1_index(pagemap_pageno(base) + npages - 1);

	for (uint64_t i = first; i <= last; i++) {
		if (pagemap_l1[i])
			continue;
		uintptr_t *leaf = mm_sys_alloc(PAGEMAP_LEAF_BYTES);
		if (!leaf) {
			/* Undo the leaves made for this chunk. */
			for (uint64_t j = first; j < i; j++) {
				if (leaf_chunks[j] == 0 && pagemap_l1[j]) {
					uintptr_t *l = leaf_of(j);
					set_leaf(j, NULL);
					mm_sys_free(l, PAGEMAP_LEAF_BYTES);
					count_leaf_bytes(-(int64_t)PAGEMAP_LEAF_BYTES);
				}
			}
			return false;
		}
		if (!MM_SYS_ALLOC_ZEROED)
			memset(leaf, 0, PAGEMAP_LEAF_BYTES);
		count_leaf_bytes((int64_t)PAGEMAP_LEAF_BYTES);
		set_leaf(i, leaf);
	}
	for (uint64_t i = first; i <= last; i++)
		leaf_chunks[i]++;
	return true;
}

bool pagemap_add_chunk(uintptr_t base, size_t npages)
{
	mm_spin_lock(&pagemap_lock);
	bool ok = add_chunk_locked(base, npages);
	mm_spin_unlock(&pagemap_lock);
	return ok;
}

void pagemap_remove_chunk(uintptr_t base, size_t npages)
{
	mm_spin_lock(&pagemap_lock);
	uint64_t first = l1_index(pagemap_pageno(base));
	uint64_t last = l1_index(pagemap_pageno(base) + npages - 1);

	/* Leaves are kept once made (as Go keeps its arena index): giving
	 * them back would make the next growth into this part of the window
	 * cost an extra leaf, which an almost exhausted platform may not
	 * have. */
	for (uint64_t i = first; i <= last; i++) {
		MM_BUG_ON(leaf_chunks[i] == 0);
		leaf_chunks[i]--;
	}
	mm_spin_unlock(&pagemap_lock);
}

void pagemap_set_page(uintptr_t addr, struct mspan *s)
{
	uint64_t pn = pagemap_pageno(addr);
	uintptr_t *leaf = leaf_of(l1_index(pn));
	uintptr_t e = s ? (uintptr_t)s - (uintptr_t)&mspan_none : 0;
	__atomic_store_n(&leaf[pn & (PAGEMAP_LEAF_ENTRIES - 1)], e, __ATOMIC_RELEASE);
}

void pagemap_set(uintptr_t base, size_t npages, struct mspan *s)
{
	for (size_t k = 0; k < npages; k++)
		pagemap_set_page(base + (k << MM_PAGE_SHIFT), s);
}

void pagemap_set_ends(uintptr_t base, size_t npages, struct mspan *s)
{
	pagemap_set(base, 1, s);
	if (npages > 1)
		pagemap_set(base + ((npages - 1) << MM_PAGE_SHIFT), 1, s);
}

uint64_t pagemap_sys_bytes(void)
{
	return __atomic_load_n(&leaf_bytes, __ATOMIC_RELAXED);
}

#ifdef MM_HAVE_PAGEMAP_FLAT
uintptr_t *pagemap_flat;
uint64_t pagemap_flat_pages;

void pagemap_init_flat(void)
{
	/* Leaves for the pages asked for, a power of two of them (one
	 * mm_sys_alloc, which may round up to one anyway), halved until the
	 * platform has a block. */
	uint64_t want = mm_pagemap_flat_pages(), leaves = 1;
	if (want > (uint64_t)PAGEMAP_L1_ENTRIES << PAGEMAP_LEAF_BITS)
		want = (uint64_t)PAGEMAP_L1_ENTRIES << PAGEMAP_LEAF_BITS;
	if (!want)
		return;
	while (leaves << PAGEMAP_LEAF_BITS < want)
		leaves <<= 1;
	uintptr_t *block = NULL;
	for (; leaves && !(block = mm_sys_alloc(leaves * PAGEMAP_LEAF_BYTES)); leaves >>= 1)
		;
	if (!block) {
		mm_log("mm: no memory for the page map's flat part (%lu pages); kfree's fast "
		       "path looks up the root", (unsigned long)want);
		return;
	}
	if (!MM_SYS_ALLOC_ZEROED)
		memset(block, 0, leaves * PAGEMAP_LEAF_BYTES);
	for (uint64_t i = 0; i < leaves; i++) {
		MM_BUG_ON(pagemap_l1[i] != 0);
		set_leaf(i, block + i * PAGEMAP_LEAF_ENTRIES);
	}
	leaf_bytes += leaves * PAGEMAP_LEAF_BYTES;
	pagemap_flat = block;
	__atomic_store_n(&pagemap_flat_pages, leaves << PAGEMAP_LEAF_BITS, __ATOMIC_RELEASE);
}

int pagemap_verify_flat(void)
{
	for (uint64_t i = 0; i < pagemap_flat_pages >> PAGEMAP_LEAF_BITS; i++)
		if (leaf_of(i) != pagemap_flat + i * PAGEMAP_LEAF_ENTRIES)
			return 1;
	return 0;
}
#else
void pagemap_init_flat(void)
{
}

int pagemap_verify_flat(void)
{
	return 0;
}
#endif
