/*
 * mm/pagemap.c - maintenance of the two-level page -> span map (see
 * mm/pagemap.h). Every page of every chunk the heap holds is mapped to the
 * span that covers it (in-use or free), so a lookup never sees a stale
 * span. Leaves are made on demand and kept (leaf_chunks counts the chunks
 * in each, for the verifier and for a future release policy).
 */
#include "mm/pagemap.h"
#include "mm/mheap.h"
#include "mm/platform.h"

struct mspan **pagemap_l1[1UL << PAGEMAP_L1_BITS];
/* Chunks overlapping each leaf. Protected by mheap.lock. */
static uint16_t leaf_chunks[1UL << PAGEMAP_L1_BITS];
static uint64_t leaf_bytes;

static uint64_t l1_index(uint64_t pn) { return pn >> PAGEMAP_LEAF_BITS; }

bool pagemap_add_chunk(uintptr_t base, size_t npages)
{
	MM_HELD(&mheap.lock);
	uint64_t first = l1_index(pagemap_pageno(base));
	uint64_t last = l1_index(pagemap_pageno(base) + npages - 1);

	for (uint64_t i = first; i <= last; i++) {
		if (pagemap_l1[i])
			continue;
		struct mspan **leaf = mm_sys_alloc(PAGEMAP_LEAF_BYTES);
		if (!leaf) {
			/* Undo the leaves made for this chunk. */
			for (uint64_t j = first; j < i; j++) {
				if (leaf_chunks[j] == 0 && pagemap_l1[j]) {
					struct mspan **l = pagemap_l1[j];
					__atomic_store_n(&pagemap_l1[j], NULL, __ATOMIC_RELEASE);
					mm_sys_free(l, PAGEMAP_LEAF_BYTES);
					leaf_bytes -= PAGEMAP_LEAF_BYTES;
				}
			}
			return false;
		}
		memset(leaf, 0, PAGEMAP_LEAF_BYTES);
		leaf_bytes += PAGEMAP_LEAF_BYTES;
		__atomic_store_n(&pagemap_l1[i], leaf, __ATOMIC_RELEASE);
	}
	for (uint64_t i = first; i <= last; i++)
		leaf_chunks[i]++;
	return true;
}

void pagemap_remove_chunk(uintptr_t base, size_t npages)
{
	MM_HELD(&mheap.lock);
	uint64_t first = l1_index(pagemap_pageno(base));
	uint64_t last = l1_index(pagemap_pageno(base) + npages - 1);

	/* Leaves are kept once made (as Go keeps its arena index): giving
	 * them back would make the next growth into this GiB cost an extra
	 * 1 MiB, which an almost exhausted platform may not have. */
	for (uint64_t i = first; i <= last; i++) {
		MM_BUG_ON(leaf_chunks[i] == 0);
		leaf_chunks[i]--;
	}
}

void pagemap_set(uintptr_t base, size_t npages, struct mspan *s)
{
	MM_HELD(&mheap.lock);
	uint64_t pn = pagemap_pageno(base);
	for (size_t k = 0; k < npages; k++, pn++) {
		struct mspan **leaf = pagemap_l1[l1_index(pn)];
		__atomic_store_n(&leaf[pn & (PAGEMAP_LEAF_ENTRIES - 1)], s, __ATOMIC_RELEASE);
	}
}

uint64_t pagemap_sys_bytes(void)
{
	return leaf_bytes;
}
