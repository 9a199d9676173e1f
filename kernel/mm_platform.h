/*
 * kernel/mm_platform.h - the kernel's side of the heap's platform seam
 * (mm/platform.h documents it). The kernel sizes the heap's per-CPU state
 * (MM_MAX_CPUS is the kernel's MAX_CPUS); the CPU id comes from the
 * per-CPU area (struct cpu.id at %gs:8, see kernel/percpu.h; not volatile,
 * so the compiler may reuse it within an mm_irq_save section), and so does
 * the fast paths' mcache pointer (struct cpu.mm_local); mm_irq_save turns
 * interrupts off with pushfq+cli and back on with a conditional sti (no
 * popfq), lib/irqflags.h, the slow paths' per-CPU sections
 * (mm_irq_save_local) mask them in software, and the fast paths run in
 * a range of code where interrupts are deferred (both below). The debug-lock build (`make DEBUG=1`, which
 * defines SPINLOCK_DEBUG for the kernel's own locks too) turns on the heap
 * locks' checks, timed with the TSC. The heap's memory comes from the pmm
 * through the direct map, so the page map's window is the direct map's
 * first 1 TiB (the RAM the kernel uses, kernel/paging.h): a root of 8192
 * entries (64 KiB of .bss, + 16 KiB of chunk counts) and 128 KiB leaves
 * (mm/pagemap.h) instead of the 48-bit default's 2 MiB root and 1 MiB
 * leaves.
 */
#ifndef KERNEL_MM_PLATFORM_H
#define KERNEL_MM_PLATFORM_H

#include <stddef.h>
#include "lib/irqflags.h"
#include "kernel/percpu.h"
#include "kernel/paging.h"

#define MM_MAX_CPUS MAX_CPUS
/* Free chunks the heap keeps from the pmm for reuse (at least; more while
 * the heap is large, see mm/mscavenge.c): small, since the pmm's other users
 * (page tables, DMA-ish buffers) need frames too. */
#define MM_RETAIN_MIN_BYTES (2UL << 20)
/* Each CPU's page cache (mm/mpagecache.c): 512 KiB of frames at most. */
#define MM_PCACHE_MAX_BYTES (512UL << 10)
/* An mheap arena per CPU, up to 8 (mm/mheap.h): CPUs allocating and
 * freeing large objects meet on no lock. Under KVM (vCPUs really in
 * parallel) malloc-large notouch took 3 700-5 200 ticks an operation on
 * 2 CPUs against 6 100-14 000 with one arena, and 8 500-21 000 on 4
 * CPUs against 257 000-602 000 (a ticket-lock convoy: 4 vCPUs, 2 host
 * cores); under TCG -icount, where CPUs take turns, 3 % more
 * instructions on 4 CPUs (notouch 1 198 -> 1 232; touch 2 297 -> 2 651),
 * 2 % more on 1 (docs/HEAP.md, "Arenas"). */
#define MM_HEAP_ARENAS 8
/* The page map's window: the direct map of the RAM below 1 TiB. */
#define MM_PAGEMAP_BASE DIRECT_MAP_BASE
#define MM_PAGEMAP_BITS DIRECT_MAP_RAM_BITS

static inline unsigned mm_cpu_id(void)
{
	unsigned id;
	__asm__("movl %%gs:8, %0" : "=r"(id));
	return id;
}

/* Count bitmap words with popcnt when the CPU has it (CPUID.01H:ECX.23,
 * read by mm_platform_detect_cpu before the heap starts; QEMU's qemu64
 * model lacks it): the heap's sweeps and cache-word loads. */
extern int mm_kernel_have_popcnt;
void mm_platform_detect_cpu(void);
#define MM_HAVE_POPCOUNT64 1
static inline int mm_platform_popcount64(uint64_t x, unsigned *n)
{
	if (__builtin_expect(mm_kernel_have_popcnt, 1)) {
		uint64_t r;
		__asm__ volatile("popcnt %1, %0" : "=r"(r) : "rm"(x));   /* volatile: never run before the test */
		*n = (unsigned)r;
		return 1;
	}
	return 0;
}

/* The one-instruction hooks: an unlocked add for the counters, btr, bsf,
 * a cmp with a memory operand. */
#include "lib/mm_hooks_x86_64.h"

static inline unsigned long mm_irq_save(void)
{
	return arch_irq_save();
}

static inline void mm_irq_restore(unsigned long flags)
{
	arch_irq_restore(flags);
}

/*
 * The per-CPU section and this CPU's mcache (mm/platform.h: kfree's and
 * kmalloc's misses, large objects; the fast paths proper use the fast
 * text below), with
 * interrupts masked in software (Linux's lazy interrupt disabling on
 * PowerPC, for the heap's sections only): the section adds 1 to this
 * CPU's heap_section (struct cpu) and loads struct cpu.mm_local, two
 * %gs-relative instructions, where pushfq, pop and cli were three; it
 * ends with a decrement and a branch not taken, where a test, a branch
 * and sti were. An interrupt that arrives inside a section is not
 * handled there: trap_dispatch (kernel/trap.c) finds heap_section
 * non-zero, notes the vector in heap_deferred, sets HEAP_SECTION_DEFERRED
 * and returns without the handler or its EOI (the local APIC then holds
 * back that vector and those below it). The section's end then leaves
 * heap_section non-zero, the branch is taken, and heap_section_exit
 * (kernel/isr.S: every register kept) calls heap_section_replay
 * (kernel/trap.c), which runs the deferred handlers with interrupts off,
 * as the IDT would have. So a handler never runs inside a section on its
 * CPU, as with cli, and the heap's mcache is never used by two contexts
 * at once. Sections nest (the replay waits for the outermost end). The
 * heap's other sections (mm_irq_save) and its locks turn interrupts off
 * for real.
 */
#define MM_HAVE_CPU_LOCAL 1
static inline void *mm_irq_save_local(unsigned long *flags)
{
	void *p;
	*flags = 0;
	__asm__ volatile("incl %%gs:%c1\n\t"
			 "movq %%gs:%c2, %0"
			 : "=r"(p)
			 : "i"(offsetof(struct cpu, heap_section)),
			   "i"(offsetof(struct cpu, mm_local))
			 : "memory");
	return p;
}

static inline void mm_irq_restore_local(unsigned long flags)
{
	(void)flags;
	__asm__ volatile("decl %%gs:%c0\n\t"
			 "jnz .Lheap_deferred%=\n"
			 ".Lheap_back%=:\n\t"
			 ".pushsection .text.unlikely, \"ax\"\n"
			 ".Lheap_deferred%=:\n\t"
			 "call heap_section_exit\n\t"
			 "jmp .Lheap_back%=\n\t"
			 ".popsection"
			 : : "i"(offsetof(struct cpu, heap_section)) : "memory", "cc");
}

/*
 * The fast paths proper (mm/platform.h, MM_HAVE_FAST_TEXT) need no
 * instruction at all: the heap puts every function that holds one in
 * .text.mm_fast, which linker.ld gathers between __mm_fast_start and
 * __mm_fast_end, and an interrupt that arrives while the CPU executes
 * there is deferred until it leaves: trap_dispatch (kernel/trap.c) notes
 * the vector as above, without the handler or its EOI, and returns with
 * the trap flag set, so that the CPU single-steps (a debug exception
 * after each instruction) until its RIP is out of the range, then runs
 * the deferred handlers from that debug exception with interrupts off,
 * or, when the CPU opened a section before it left (kfree's miss does),
 * leaves them to that section's end (HEAP_SECTION_DEFERRED, as above).
 * The fast paths are a few dozen instructions that call nothing, so a
 * deferral lasts at most that many steps. mm_fast_enter is then the load
 * of struct cpu.mm_local alone, mm_fast_exit nothing (a compiler
 * barrier): kmalloc+kfree 69 -> 63 instructions.
 */
/* The page map's flat part (mm/pagemap.h): the RAM's pages, from the
 * pmm's end (about 0.1 % of the RAM: 256 KiB for 256 MiB). */
uint64_t mm_kernel_ram_pages(void);
#define MM_HAVE_PAGEMAP_FLAT 1
static inline uint64_t mm_pagemap_flat_pages(void)
{
	return mm_kernel_ram_pages();
}

#define MM_HAVE_FAST_TEXT 1
#define MM_FAST_TEXT __attribute__((section(".text.mm_fast")))
static inline void *mm_fast_enter(unsigned long *flags)
{
	void *p;
	*flags = 0;
	__asm__ volatile("movq %%gs:%c1, %0"
			 : "=r"(p)
			 : "i"(offsetof(struct cpu, mm_local))
			 : "memory");
	return p;
}

static inline void mm_fast_exit(unsigned long flags)
{
	(void)flags;
	__asm__ volatile("" : : : "memory");
}

static inline void mm_cpu_local_set(unsigned cpu, void *p)
{
	__atomic_store_n(&cpus[cpu].mm_local, p, __ATOMIC_RELAXED);
}

static inline void mm_cpu_relax(void)
{
	cpu_relax();
}

#ifdef SPINLOCK_DEBUG
#define MM_LOCK_DEBUG 1
/* The holder's CPU id, also before the per-CPU area is set up (0 then). */
int mm_lock_debug_cpu(void);
static inline unsigned long long mm_lock_debug_clock(void)
{
	return __builtin_ia32_rdtsc();
}
#endif

#endif
