/*
 * kernel/paging.c - the kernel's page tables (layout in kernel/paging.h).
 *
 * paging_init() replaces the boot tables (boot/boot.S) with the kernel's
 * own: the kernel image at 4 KiB granularity with per-section permissions
 * (W^X, NX where the CPU has it, CR0.WP already set by boot.S so the kernel
 * itself cannot write read-only pages), and a direct map of every usable
 * RAM range at DIRECT_MAP_BASE using the largest pages that fit (1 GiB when
 * CPUID says so, else 2 MiB, 4 KiB at unaligned edges). It runs before the
 * pmm exists, so its tables come from a pool in the kernel's bss; later
 * tables come from the pmm. Page-table pages are always reached through the
 * direct map.
 *
 * paging_lock (irqsave) protects every page-table update after boot and the
 * stack-area cursor. Translation (paging_translate) reads without it: it
 * only follows entries that, once present, never change their target.
 */
#include "kernel/paging.h"
#include "kernel/pmm.h"
#include "kernel/x86.h"
#include "kernel/printk.h"
#include "kernel/panic.h"
#include "lib/spinlock.h"
#include "lib/string.h"

#define PTE_P    (1UL << 0)
#define PTE_W    (1UL << 1)
#define PTE_PWT  (1UL << 3)
#define PTE_PCD  (1UL << 4)
#define PTE_PS   (1UL << 7)
#define PTE_NX   (1UL << 63)
#define PTE_ADDR 0x000ffffffffff000UL

#define SZ_4K (1UL << 12)
#define SZ_2M (1UL << 21)
#define SZ_1G (1UL << 30)

extern char _text_start[], _text_end[], _rodata_start[], _rodata_end[];
extern char _data_start[], _data_end[], _kernel_end[];
extern char boot_stack_guard[];

/* Page-table pages for paging_init, before the pmm exists: enough for the
 * kernel image and a direct map of 64 GiB in 2 MiB pages (any size with
 * 1 GiB pages) plus 4 KiB edges. */
#define BOOT_POOL_PAGES 112
static uint8_t boot_pool[BOOT_POOL_PAGES][4096] __attribute__((aligned(4096)));
static unsigned boot_pool_used;

/* paging_lock (irqsave): every page-table update after boot and
 * kstack_cursor. Lookups (paging_translate) go without it. */
static spinlock_t paging_lock = SPINLOCK_INIT("paging");
static uint64_t *pml4;       /* the kernel's top-level table */
static uint64_t nx_bit;      /* PTE_NX when EFER.NXE is on, else 0 */
static bool gbpages;
static struct paging_info info;
static uintptr_t kstack_cursor = KSTACK_AREA_BASE;

static uint64_t *table_virt(uint64_t phys)
{
	return (uint64_t *)(DIRECT_MAP_BASE + phys);
}

/* A zeroed page-table page: its physical address, or 0. */
static uint64_t alloc_table(void)
{
	if (pmm_global()->ready) {
		void *p = alloc_pages(0, GFP_ZERO);
		if (!p)
			return 0;
		info.table_pages++;
		return virt_to_phys(p);
	}
	if (boot_pool_used == BOOT_POOL_PAGES)
		panic("paging: boot page-table pool (%d pages) exhausted", BOOT_POOL_PAGES);
	uint8_t *page = boot_pool[boot_pool_used++];
	memset(page, 0, 4096);
	info.table_pages++;
	return (uint64_t)(uintptr_t)page - KERNEL_VMA;
}

static unsigned index_at(uintptr_t va, int level)
{
	return (va >> (12 + 9 * (level - 1))) & 511;
}

/* Entry for va at `level` (1 = PT, 2 = PD, 3 = PDPT), creating the tables
 * above it. NULL if a table cannot be allocated, or a large page above
 * `level` already covers va (*covered set). */
static uint64_t *walk_create(uintptr_t va, int level, bool *covered)
{
	uint64_t *table = pml4;
	*covered = false;
	for (int l = 4; l > level; l--) {
		uint64_t *e = &table[index_at(va, l)];
		if (!(*e & PTE_P)) {
			uint64_t t = alloc_table();
			if (!t)
				return NULL;
			*e = t | PTE_P | PTE_W;
		} else if (*e & PTE_PS) {
			*covered = true;
			return NULL;
		}
		table = table_virt(*e & PTE_ADDR);
	}
	return &table[index_at(va, level)];
}

static uint64_t prot_bits(unsigned prot)
{
	uint64_t bits = PTE_P;
	if (prot & PROT_WRITE)
		bits |= PTE_W;
	if (!(prot & PROT_EXEC))
		bits |= nx_bit;
	if (prot & PROT_NOCACHE)
		bits |= PTE_PCD | PTE_PWT;
	return bits;
}

/* Map one page of size 4K/2M/1G. 0 on success or when va is already
 * mapped by a covering page; 1 when a smaller table sits where a large page
 * should go (the caller maps smaller pages); -1 out of memory. */
static int map_page(uintptr_t va, uint64_t pa, uint64_t size, uint64_t bits)
{
	int level = size == SZ_1G ? 3 : size == SZ_2M ? 2 : 1;
	bool covered;
	uint64_t *e = walk_create(va, level, &covered);
	if (!e)
		return covered ? 0 : -1;
	if (*e & PTE_P)
		return (level > 1 && !(*e & PTE_PS)) ? 1 : 0;
	*e = pa | bits | (level > 1 ? PTE_PS : 0);
	if (size == SZ_1G)
		info.pages_1g++;
	else if (size == SZ_2M)
		info.pages_2m++;
	else
		info.pages_4k++;
	return 0;
}

/* Direct-map [start, end) with the largest pages that fit. */
static void direct_map_range(uint64_t start, uint64_t end)
{
	uint64_t bits = prot_bits(PROT_READ | PROT_WRITE);
	start &= ~(SZ_4K - 1);
	end = (end + SZ_4K - 1) & ~(SZ_4K - 1);
	for (uint64_t pa = start; pa < end;) {
		uint64_t size = SZ_4K;
		if (gbpages && (pa & (SZ_1G - 1)) == 0 && end - pa >= SZ_1G)
			size = SZ_1G;
		else if ((pa & (SZ_2M - 1)) == 0 && end - pa >= SZ_2M)
			size = SZ_2M;
		int r = map_page(DIRECT_MAP_BASE + pa, pa, size, bits);
		while (r == 1 && size > SZ_4K) {
			size = size == SZ_1G ? SZ_2M : SZ_4K;
			r = map_page(DIRECT_MAP_BASE + pa, pa, size, bits);
		}
		if (r < 0)
			panic("paging: out of page-table memory mapping %#lx", pa);
		pa += size;
	}
}

static void map_kernel_image(void)
{
	for (uintptr_t va = (uintptr_t)_text_start; va < (uintptr_t)_kernel_end; va += SZ_4K) {
		unsigned prot;
		if (va == (uintptr_t)boot_stack_guard)
			continue; /* the boot stack's guard page stays unmapped */
		if (va < (uintptr_t)_text_end)
			prot = PROT_READ | PROT_EXEC;
		else if (va < (uintptr_t)_rodata_end)
			prot = PROT_READ;
		else if (va < (uintptr_t)_data_end)
			prot = PROT_READ | PROT_WRITE;
		else
			prot = PROT_READ; /* .ksyms */
		if (map_page(va, va - KERNEL_VMA, SZ_4K, prot_bits(prot)) < 0)
			panic("paging: out of page-table memory mapping the kernel");
	}
}

void paging_init(const struct pmm_range *ram, size_t nram)
{
	uint32_t a, b, c, d;
	cpuid(0x80000001, 0, &a, &b, &c, &d);
	gbpages = (d >> 26) & 1;
	nx_bit = (rdmsr(MSR_EFER) & EFER_NXE) ? PTE_NX : 0;
	info.gbpages = gbpages;
	info.nx = nx_bit != 0;

	pml4 = table_virt(alloc_table());
	map_kernel_image();
	/* The first MiB (BIOS data, EBDA, the AP trampoline page) and RAM. */
	direct_map_range(0, 0x100000);
	for (size_t i = 0; i < nram; i++) {
		direct_map_range(ram[i].start, ram[i].end);
		info.direct_map_bytes += ram[i].end - ram[i].start;
	}
	write_cr3((uintptr_t)pml4 - DIRECT_MAP_BASE);
}

static uint64_t *lookup(uintptr_t va, uint64_t *page_size)
{
	uint64_t *table = pml4;
	for (int l = 4; l >= 1; l--) {
		uint64_t *e = &table[index_at(va, l)];
		if (!(*e & PTE_P))
			return NULL;
		if (l == 1 || (*e & PTE_PS)) {
			*page_size = 1UL << (12 + 9 * (l - 1));
			return e;
		}
		table = table_virt(*e & PTE_ADDR);
	}
	return NULL;
}

bool paging_translate(uintptr_t va, uint64_t *pa, unsigned *prot)
{
	uint64_t size;
	uint64_t *e = lookup(va, &size);
	if (!e)
		return false;
	if (pa)
		*pa = (*e & PTE_ADDR & ~(size - 1)) + (va & (size - 1));
	if (prot)
		*prot = ((*e & PTE_W) ? PROT_WRITE : 0) |
			((*e & PTE_NX) || !nx_bit ? 0 : PROT_EXEC) |
			((*e & PTE_PCD) ? PROT_NOCACHE : 0);
	return true;
}

int paging_map(uintptr_t va, uint64_t pa, size_t size, unsigned prot)
{
	uint64_t bits = prot_bits(prot);
	unsigned long flags = spin_lock_irqsave(&paging_lock);
	int r = 0;
	for (size_t off = 0; off < size; off += SZ_4K) {
		uint64_t existing;
		if (lookup(va + off, &existing)) {
			r = -1; /* already mapped */
			break;
		}
		if (map_page(va + off, pa + off, SZ_4K, bits) < 0) {
			r = -1;
			break;
		}
	}
	spin_unlock_irqrestore(&paging_lock, flags);
	return r;
}

void paging_unmap(uintptr_t va, size_t size)
{
	unsigned long flags = spin_lock_irqsave(&paging_lock);
	for (size_t off = 0; off < size; off += SZ_4K) {
		uint64_t psize;
		uint64_t *e = lookup(va + off, &psize);
		if (e && psize == SZ_4K) {
			*e = 0;
			info.pages_4k--;
			invlpg(va + off);
		}
	}
	spin_unlock_irqrestore(&paging_lock, flags);
}

void *paging_map_phys(uint64_t pa, size_t size, unsigned prot)
{
	uint64_t start = pa & ~(SZ_4K - 1);
	uint64_t end = (pa + size + SZ_4K - 1) & ~(SZ_4K - 1);
	unsigned long flags = spin_lock_irqsave(&paging_lock);
	for (uint64_t p = start; p < end; p += SZ_4K) {
		uint64_t psize;
		if (lookup(DIRECT_MAP_BASE + p, &psize))
			continue;
		if (map_page(DIRECT_MAP_BASE + p, p, SZ_4K, prot_bits(prot)) < 0) {
			spin_unlock_irqrestore(&paging_lock, flags);
			return NULL;
		}
	}
	spin_unlock_irqrestore(&paging_lock, flags);
	return (void *)(DIRECT_MAP_BASE + pa);
}

void *kstack_alloc(size_t pages)
{
	unsigned long flags = spin_lock_irqsave(&paging_lock);
	uintptr_t base = kstack_cursor;
	uintptr_t span = (pages + 1) * SZ_4K;
	if (base + span > KSTACK_AREA_END) {
		spin_unlock_irqrestore(&paging_lock, flags);
		return NULL;
	}
	kstack_cursor += span;
	spin_unlock_irqrestore(&paging_lock, flags);

	/* base is the guard page; the stack is the pages above it. */
	for (size_t i = 0; i < pages; i++) {
		void *frame = alloc_pages(0, GFP_ZERO);
		if (!frame || paging_map(base + (i + 1) * SZ_4K, virt_to_phys(frame), SZ_4K,
					 PROT_READ | PROT_WRITE) < 0)
			return NULL; /* the few pages already mapped are leaked */
	}
	return (void *)(base + span);
}

void paging_get_info(struct paging_info *pi)
{
	*pi = info;
}
