/*
 * kernel/percpu.h - per-CPU data, reached through the GS base.
 *
 * Each CPU's IA32_GS_BASE points at its own struct cpu, whose first field
 * points at itself, so this_cpu() is one instruction (mov %gs:0, reg) and
 * this_cpu_id() another (mov %gs:8, reg). A CPU only ever writes its own
 * struct cpu (except where a field says otherwise).
 */
#ifndef KERNEL_PERCPU_H
#define KERNEL_PERCPU_H

#include <stdint.h>

/* The most CPUs the kernel brings up; CPU ids are 0..MAX_CPUS-1. The heap
 * is told this through kernel/mm_platform.h (its MM_MAX_CPUS). */
#define MAX_CPUS 64

struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

struct cpu {
	struct cpu *self;      /* offset 0: this_cpu() */
	uint32_t id;           /* offset 8: this_cpu_id(), 0 = boot CPU */
	uint32_t apic_id;
	int online;
	void *mm_local;        /* the heap's pointer for this CPU (its mcache; MM_CPU_LOCAL_NONE
				  before), written by the CPU that runs kmalloc_init for every
				  CPU: kernel/mm_platform.h */
	/* The heap's fast-path sections on this CPU (kernel/mm_platform.h):
	 * their depth in the low bits, HEAP_SECTION_DEFERRED set by an
	 * interrupt that arrived inside one; written by this CPU only (the
	 * interrupt handler in trap.c between two of its instructions). */
	uint32_t heap_section;
#define HEAP_SECTION_DEFERRED 0x80000000u
	uint32_t heap_deferred;        /* those interrupts: bit v - 32 for vector v */
	uint64_t heap_deferrals;       /* interrupts deferred so, ever */
	/* Set while this CPU single-steps out of the heap's fast text with
	 * interrupts deferred (kernel/trap.c); this CPU only. */
	uint32_t heap_stepping;
	uint64_t gdt[7];       /* null, kcode, kdata, ucode, udata, tss lo/hi */
	struct tss tss;
	/* These two are written by the boot CPU as it starts an AP (smp.c). */
	void *stack_top;       /* kernel stack (guard page below) */
	void *ist_top[3];      /* an AP's #DF, NMI, #MC stacks (kstack_alloc'ed); NULL: the boot CPU's */
	uint64_t irq_count;    /* timer interrupts taken */
	int in_panic;
};

extern struct cpu cpus[MAX_CPUS];
extern unsigned ncpus_online;

static inline struct cpu *this_cpu(void)
{
	struct cpu *c;
	__asm__ volatile("movq %%gs:0, %0" : "=r"(c));
	return c;
}

static inline unsigned this_cpu_id(void)
{
	unsigned id;
	__asm__ volatile("movl %%gs:8, %0" : "=r"(id));
	return id;
}

/* Point GS at cpus[id] and load that CPU's GDT, TSS and IST stacks. */
void percpu_init(unsigned id);
/* Before percpu_init ran on the boot CPU, this_cpu() must not be used. */
extern int percpu_ready;

#endif
