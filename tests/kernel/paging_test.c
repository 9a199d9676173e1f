/*
 * tests/kernel/paging_test.c - the kernel's page tables: the direct map
 * reaches the frames the pmm hands out, section permissions hold (a write
 * to text and a jump into data fault), stacks have guard pages. Kernel only.
 */
#ifndef SPANHEAP_HOSTED
#include <stdint.h>
#include "tests/kernel/ktest.h"
#include "kernel/paging.h"
#include "kernel/pmm.h"
#include "kernel/trap.h"
#include "kernel/x86.h"
#include "lib/string.h"

extern char _text_start[], _rodata_start[], _data_start[];

/* A scratch virtual address in the stack area, above anything kstack_alloc
 * will reach in a test run. */
#define TEST_VA (KSTACK_AREA_END - 0x10000000UL)

KTEST(paging, direct_map_write_is_seen_at_the_physical_address)
{
	uint8_t *frame = alloc_pages(0, GFP_ZERO);
	KASSERT_NOT_NULL(frame);
	uint64_t pa = virt_to_phys(frame);
	uint64_t got = 0;
	KEXPECT_TRUE(paging_translate((uintptr_t)frame, &got, NULL));
	KEXPECT_EQ(got, pa);
	/* A second mapping of the same frame sees what the direct map wrote. */
	KASSERT_EQ(paging_map(TEST_VA, pa, 4096, PROT_READ | PROT_WRITE), 0);
	volatile uint64_t *alias = (volatile uint64_t *)TEST_VA;
	((volatile uint64_t *)frame)[7] = 0x5ba0feedcafe1234ULL;
	KEXPECT_EQ(alias[7], 0x5ba0feedcafe1234ULL);
	alias[8] = 42;
	KEXPECT_EQ(((volatile uint64_t *)frame)[8], 42);
	paging_unmap(TEST_VA, 4096);
	KEXPECT_FALSE(paging_translate(TEST_VA, NULL, NULL));
	free_pages(frame, 0);
}

KTEST(paging, all_usable_ram_is_direct_mapped)
{
	struct pmm *p = pmm_global();
	/* First and last frame of every usable range translate to themselves. */
	for (size_t i = 0; i < p->nusable; i++) {
		uint64_t first = p->usable[i].start, last = p->usable[i].end - 4096;
		uint64_t pa = 0;
		KEXPECT_TRUE(paging_translate(DIRECT_MAP_BASE + first, &pa, NULL));
		KEXPECT_EQ(pa, first);
		KEXPECT_TRUE(paging_translate(DIRECT_MAP_BASE + last + 4095, &pa, NULL));
		KEXPECT_EQ(pa, last + 4095);
	}
	struct paging_info pi;
	paging_get_info(&pi);
	ktest_log("direct map: %lu MiB, %lu x 1G, %lu x 2M, %lu x 4K; 1G pages %s",
		  pi.direct_map_bytes >> 20, pi.pages_1g, pi.pages_2m, pi.pages_4k,
		  pi.gbpages ? "available" : "not available");
	if (!pi.gbpages)
		KEXPECT_EQ(pi.pages_1g, 0);
}

KTEST(paging, section_permissions)
{
	unsigned prot = 0;
	KASSERT_TRUE(paging_translate((uintptr_t)_text_start, NULL, &prot));
	KEXPECT_EQ(prot & PROT_WRITE, 0);
	KEXPECT_NE(prot & PROT_EXEC, 0);
	KASSERT_TRUE(paging_translate((uintptr_t)_rodata_start, NULL, &prot));
	KEXPECT_EQ(prot & (PROT_WRITE | PROT_EXEC), 0);
	KASSERT_TRUE(paging_translate((uintptr_t)_data_start, NULL, &prot));
	KEXPECT_EQ(prot & PROT_WRITE, PROT_WRITE);
	KEXPECT_EQ(prot & PROT_EXEC, 0);
	KEXPECT_NE(rdmsr(MSR_EFER) & EFER_NXE, 0);
	KEXPECT_NE(read_cr0() & (1UL << 16), 0); /* CR0.WP */
}

static void write_text(void *arg)
{
	*(volatile uint8_t *)arg = 0xc3;
}

KTEST(paging, write_to_text_faults)
{
	struct fault_info fi;
	uint8_t *target = (uint8_t *)write_text + 1;
	uint8_t before = *target;
	KEXPECT_EQ(trap_catch_fault(write_text, target, &fi), VEC_PAGE_FAULT);
	KEXPECT_EQ(fi.cr2, (uintptr_t)target);
	KEXPECT_EQ(fi.error & 3, 3); /* present + write */
	KEXPECT_EQ(*target, before);
}

static uint8_t data_code[16] __attribute__((aligned(16))) = { 0xc3 }; /* ret */

static void jump_to_data(void *arg)
{
	((void (*)(void))arg)();
}

KTEST(paging, data_is_not_executable)
{
	struct fault_info fi;
	KEXPECT_EQ(trap_catch_fault(jump_to_data, data_code, &fi), VEC_PAGE_FAULT);
	KEXPECT_EQ(fi.cr2, (uintptr_t)data_code);
	KEXPECT_NE(fi.error & 16, 0); /* instruction fetch */
}

static void touch(void *arg)
{
	*(volatile uint64_t *)arg = 1;
}

KTEST(paging, kernel_stack_has_a_guard_page)
{
	uint8_t *top = kstack_alloc(2);
	KASSERT_NOT_NULL(top);
	/* Both stack pages are usable... */
	touch(top - 8);
	touch(top - 2 * 4096);
	/* ...and the page below them faults. */
	struct fault_info fi;
	uint8_t *guard = top - 2 * 4096 - 8;
	KEXPECT_EQ(trap_catch_fault(touch, guard, &fi), VEC_PAGE_FAULT);
	KEXPECT_EQ(fi.cr2, (uintptr_t)guard);
	KEXPECT_EQ(fi.error & 1, 0); /* not present */
}

KTEST(paging, boot_identity_map_is_gone)
{
	KEXPECT_FALSE(paging_translate(0x200000, NULL, NULL));
	KEXPECT_FALSE(paging_translate(0x1000, NULL, NULL));
}
#endif
