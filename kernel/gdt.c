/*
 * kernel/gdt.c - per-CPU GDT and TSS, and the per-CPU GS base.
 *
 * Every CPU has its own GDT (in its struct cpu) because each needs its own
 * TSS, whose IST slots give the double-fault, NMI and machine-check
 * handlers a known-good stack: a kernel stack overflow into its guard page
 * double-faults, and the #DF handler then still runs and reports it.
 */
#include <stddef.h>
#include "kernel/percpu.h"
#include "mm/platform.h"
#include "kernel/x86.h"
#include "lib/string.h"

/* mm_local starts as the heap's "not yet" pointer (mm/platform.h);
 * kmalloc_init sets every CPU's, up or not yet. */
struct cpu cpus[MAX_CPUS] = { [0 ... MAX_CPUS - 1] = { .mm_local = MM_CPU_LOCAL_NONE } };
unsigned ncpus_online = 1;
int percpu_ready;

#define IST_STACK_SIZE 8192
/* IST1 = #DF, IST2 = NMI, IST3 = #MC: the boot CPU's. An AP's come from
 * kstack_alloc as it is started (kernel/smp.c, cpus[id].ist_top), so a
 * machine pays for the CPUs it has, not for MAX_CPUS (1.5 MiB of .bss). */
static uint8_t ist_stacks_bsp[3][IST_STACK_SIZE] __attribute__((aligned(16)));

_Static_assert(offsetof(struct cpu, self) == 0, "this_cpu() reads %gs:0");
_Static_assert(offsetof(struct cpu, id) == 8, "this_cpu_id() reads %gs:8");
_Static_assert(offsetof(struct cpu, heap_deferred) < 256, "kernel/mm_platform.h: a short %gs offset");

struct gdt_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

void percpu_init(unsigned id)
{
	struct cpu *c = &cpus[id];
	c->self = c;
	c->id = id;
	/* c->online is set by smp.c once the CPU is fully up. */

	c->gdt[0] = 0;
	c->gdt[1] = 0x00af9a000000ffffULL; /* 0x08 kernel code, 64-bit */
	c->gdt[2] = 0x00cf92000000ffffULL; /* 0x10 kernel data */
	c->gdt[3] = 0x00affa000000ffffULL; /* 0x18 user code (unused) */
	c->gdt[4] = 0x00cff2000000ffffULL; /* 0x20 user data (unused) */
	uint64_t base = (uint64_t)&c->tss;
	uint64_t limit = sizeof(struct tss) - 1;
	c->gdt[5] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
		    (0x89ULL << 40) | (((limit >> 16) & 0xf) << 48) |
		    (((base >> 24) & 0xff) << 56);
	c->gdt[6] = base >> 32;

	memset(&c->tss, 0, sizeof(c->tss));
	for (int i = 0; i < 3; i++)
		c->tss.ist[i] = c->ist_top[i] ? (uint64_t)c->ist_top[i]
					      : (uint64_t)&ist_stacks_bsp[i][IST_STACK_SIZE];
	c->tss.iomap_base = sizeof(struct tss);

	struct gdt_ptr p = { sizeof(c->gdt) - 1, (uint64_t)c->gdt };
	__asm__ volatile(
		"lgdt %0\n\t"
		"movw $0x10, %%ax\n\t"
		"movw %%ax, %%ds\n\t"
		"movw %%ax, %%es\n\t"
		"movw %%ax, %%ss\n\t"
		"pushq $0x08\n\t"
		"leaq 1f(%%rip), %%rax\n\t"
		"pushq %%rax\n\t"
		"lretq\n"
		"1:\n\t"
		"movw $0x28, %%ax\n\t"
		"ltr %%ax\n\t"
		: : "m"(p) : "rax", "memory");
	/* Loading %gs clears the GS base on some CPUs: load it first. */
	__asm__ volatile("movw %w0, %%gs" : : "r"(0));
	wrmsr(MSR_GS_BASE, (uint64_t)c);
	if (id == 0)
		percpu_ready = 1;
}
