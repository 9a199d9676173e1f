/*
 * kernel/paging.h - the kernel's 4-level page tables and virtual memory layout.
 *
 *   0x0000000000000000 - 0x00007fffffffffff  unmapped (no user space yet), but
 *                                            for the AP trampoline's page at
 *                                            0x8000, identity-mapped with
 *                                            paging_map while smp_init starts
 *                                            the APs
 *   0xffff800000000000 - +RAM                direct map of all usable RAM and
 *                                            the first MiB, RW + NX, using
 *                                            1 GiB / 2 MiB / 4 KiB pages;
 *                                            RAM at or above DIRECT_MAP_RAM_LIMIT
 *                                            (1 TiB physical) is ignored: the
 *                                            heap's page map covers the first
 *                                            1 TiB of the direct map only
 *                                            (kernel/mm_platform.h)
 *   0xffffc00000000000 - 0xffffc0ffffffffff  kernel stacks with guard pages
 *                                            (kstack_alloc), and mappings
 *                                            made with paging_map
 *   0xffffffff80000000 - +image              the kernel image (loaded at 2 MiB
 *                                            physical): text RX, rodata R+NX,
 *                                            data/bss RW+NX, the boot stack's
 *                                            guard page left unmapped
 */
#ifndef MM_PAGING_H
#define MM_PAGING_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "kernel/pmm.h"

#define DIRECT_MAP_BASE   0xffff800000000000UL
/* The RAM the kernel uses lies below 2^DIRECT_MAP_RAM_BITS physical (kmain
 * drops what is above before paging and the pmm see it): every frame the
 * pmm hands out is then inside the heap's page-map window. */
#define DIRECT_MAP_RAM_BITS  40
#define DIRECT_MAP_RAM_LIMIT (1UL << DIRECT_MAP_RAM_BITS)
#define KSTACK_AREA_BASE  0xffffc00000000000UL
#define KSTACK_AREA_END   0xffffc10000000000UL
#define KERNEL_VMA        0xffffffff80000000UL

/* Protection bits for paging_map. */
#define PROT_READ  0x0u
#define PROT_WRITE 0x1u
#define PROT_EXEC  0x2u
#define PROT_NOCACHE 0x4u

/* Build the kernel's own page tables: the kernel image with per-section
 * permissions, the direct map of every range in ram[] (plus the first MiB),
 * then switch to them, dropping the boot identity map. Runs before the pmm
 * exists: its tables come from a pool inside the kernel image. */
void paging_init(const struct pmm_range *ram, size_t nram);

/* Map [va, va+size) to [pa, pa+size), 4 KiB granularity, tables from the
 * pmm. 0, or -1 when out of memory or a page is already mapped. */
int paging_map(uintptr_t va, uint64_t pa, size_t size, unsigned prot);
/* Unmap [va, va+size) (4 KiB pages only) and flush the TLB. */
void paging_unmap(uintptr_t va, size_t size);
/* Physical address va maps to, and its protection; false if unmapped. */
bool paging_translate(uintptr_t va, uint64_t *pa, unsigned *prot);
/* Make sure [pa, pa+size) is reachable through the direct map (for ACPI
 * tables and other firmware data outside usable RAM), read-only or RW. */
void *paging_map_phys(uint64_t pa, size_t size, unsigned prot);

/* A kernel stack of `pages` 4 KiB pages in the stack area, with an unmapped
 * guard page below it; returns its top, NULL when out of memory. */
void *kstack_alloc(size_t pages);

struct paging_info {
	uint64_t direct_map_bytes;   /* RAM reachable through the direct map */
	uint64_t pages_1g, pages_2m, pages_4k; /* direct-map leaf entries */
	uint64_t table_pages;        /* page-table pages in use */
	bool gbpages, nx;
};
void paging_get_info(struct paging_info *pi);

#endif
