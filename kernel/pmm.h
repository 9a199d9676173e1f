/*
 * kernel/pmm.h - the physical page allocator: a buddy allocator over 4 KiB
 * frames, fed from the boot memory map.
 *
 * Blocks are 2^order contiguous, naturally aligned frames, order 0 (4 KiB)
 * to PMM_MAX_ORDER (4 MiB). All state lives in a struct pmm, so a test can
 * run a private allocator over fake memory; the kernel uses one global
 * instance through the Linux-style API (alloc_pages / free_pages).
 * Addresses handed out are direct-map virtual addresses
 * (phys + direct_map_offset).
 */
#ifndef MM_PMM_H
#define MM_PMM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "lib/spinlock.h"

#define PAGE_SHIFT 12
#define PAGE_SIZE  (1UL << PAGE_SHIFT)

#define PMM_MAX_ORDER  10   /* largest block: 2^10 frames = 4 MiB */
#define PMM_NR_ORDERS  (PMM_MAX_ORDER + 1)
#define PMM_MAX_RANGES 128  /* usable / reserved ranges kept after merging */

/* alloc_pages() flags. */
#define GFP_ZERO 0x1u       /* zero the block before returning it */

/* A physical range [start, end), any alignment. */
struct pmm_range {
	uint64_t start;
	uint64_t end;
};

/* Why pmm_free() refused a block (negative return values). */
enum pmm_free_error {
	PMM_BAD_MISALIGNED = 1, /* not aligned to the block size */
	PMM_BAD_NOT_RAM,        /* outside RAM the pmm manages, or reserved */
	PMM_BAD_FREE,           /* the block is (partly) free already */
	PMM_BAD_INTERIOR,       /* inside an allocated block, not its start */
	PMM_BAD_ORDER,          /* allocated with a different order */
	PMM_BAD_PARTLY_FREE,    /* order too big: part of that range is free */
};

/* Frame descriptor: one per frame in [base_pfn, end_pfn). Free blocks are
 * linked through their head frame's descriptor (indices, not pointers). */
struct pmm_frame {
	uint32_t next, prev;  /* free-list links, PMM_NIL at the ends */
	uint8_t state;        /* PMM_FRAME_* (kernel/pmm.c) */
	uint8_t order;        /* for block heads */
	uint16_t pad;
};

struct pmm_stats {
	uint64_t total_frames;     /* frames the allocator manages */
	uint64_t free_frames;
	uint64_t free_blocks[PMM_NR_ORDERS];
	uint64_t nalloc, nfree;    /* successful calls */
	uint64_t alloc_failures;   /* NULL returns */
	uint64_t bad_frees;        /* refused frees */
	uint64_t base_pfn, end_pfn;/* frames the descriptor array covers */
	uint64_t meta_phys;        /* descriptor array: physical start, */
	uint64_t meta_frames;      /* ... and size in frames */
};

struct pmm {
	/* Protects every field below and the frame descriptors; taken with
	 * interrupts off (spin_lock_irqsave) so that an interrupt handler may
	 * allocate. Never held while calling out (no logging under it). */
	spinlock_t lock;
	bool ready;
	uintptr_t direct_map_offset;   /* virt = phys + offset */
	uint64_t base_pfn, end_pfn;
	struct pmm_frame *frames;      /* frames[pfn - base_pfn] */
	uint32_t free_head[PMM_NR_ORDERS];
	struct pmm_stats st;
	/* Sorted, merged, page-rounded: usable inwards, reserved outwards
	 * (the descriptor array included). Written only by init. */
	struct pmm_range usable[PMM_MAX_RANGES];
	size_t nusable;
	struct pmm_range reserved[PMM_MAX_RANGES];
	size_t nreserved;
};

/* --- Instance API (tests build private allocators over fake memory). --- */

/* Build an allocator over ram minus reserved. The descriptor array is carved
 * out of the lowest usable, unreserved run big enough to hold it, which
 * must be reachable at phys + direct_map_offset. RAM ranges past
 * PMM_MAX_RANGES are logged and ignored. Returns 0, or -1 (logged) when the
 * reserved ranges do not fit PMM_MAX_RANGES, no RAM is left outside them,
 * the RAM spans too many frames for a frame index, or no free run holds
 * the descriptor array. */
int pmm_init_instance(struct pmm *p, const struct pmm_range *ram, size_t nram,
		      const struct pmm_range *reserved, size_t nreserved,
		      uintptr_t direct_map_offset);
/* A block of 2^order frames (direct-map address), or NULL. */
void *pmm_alloc(struct pmm *p, unsigned order, unsigned flags);
/* 0, or -enum pmm_free_error; a refused free is logged with its address,
 * counted in bad_frees and changes nothing else. */
int pmm_free(struct pmm *p, void *addr, unsigned order);
void pmm_get_stats(struct pmm *p, struct pmm_stats *st);
bool pmm_instance_is_reserved(const struct pmm *p, uint64_t phys);
bool pmm_instance_is_usable(const struct pmm *p, uint64_t phys);
/* Digest of the allocator's whole state (descriptors, free lists): equal
 * digests mean the same frames are free in the same blocks. */
uint64_t pmm_state_digest(struct pmm *p);
/* Check every invariant; 0 when they hold, else logs the first broken one. */
int pmm_verify(struct pmm *p);
void pmm_dump_instance(struct pmm *p);

/* --- The kernel's allocator (Linux-style). --- */

int pmm_init(const struct pmm_range *ram, size_t nram,
	     const struct pmm_range *reserved, size_t nreserved,
	     uintptr_t direct_map_offset);
struct pmm *pmm_global(void);
void *alloc_pages(unsigned order, unsigned flags);
void free_pages(void *addr, unsigned order);
static inline void *alloc_page(unsigned flags) { return alloc_pages(0, flags); }
static inline void free_page(void *addr) { free_pages(addr, 0); }
/* Is phys inside a reserved range / a usable range of the kernel's map? */
bool pmm_is_reserved(uint64_t phys);
bool pmm_is_usable(uint64_t phys);
void pmm_stats(struct pmm_stats *st);
void pmm_dump(void);

/* Direct map translation (the kernel's offset, set by pmm_init). */
extern uintptr_t pmm_direct_map_offset;
static inline uint64_t virt_to_phys(const void *v)
{
	return (uint64_t)((uintptr_t)v - pmm_direct_map_offset);
}
static inline void *phys_to_virt(uint64_t phys)
{
	return (void *)((uintptr_t)phys + pmm_direct_map_offset);
}

#endif
