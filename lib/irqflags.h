/*
 * lib/irqflags.h - save, disable and restore the interrupt flag.
 *
 * In the kernel: pushfq and cli to save, and to restore an sti only if
 * the saved flags had IF set (no popfq). In the hosted build
 * (SPANHEAP_HOSTED) there are no interrupts and they do nothing.
 */
#ifndef LIB_IRQFLAGS_H
#define LIB_IRQFLAGS_H

#define X86_EFLAGS_IF 0x200UL

#ifdef SPANHEAP_HOSTED
static inline unsigned long arch_irq_save(void) { return 0; }
static inline void arch_irq_restore(unsigned long flags) { (void)flags; }
static inline void arch_irq_enable(void) {}
static inline void arch_irq_disable(void) {}
static inline int arch_irqs_enabled(void) { return 0; }
/* A hosted "CPU" is a thread the OS may preempt while it holds a spinlock
 * (in the kernel, interrupts are off instead), so a waiter gives its core
 * to the holder rather than spin; with more threads than cores, plain
 * spinning (worse under ThreadSanitizer) can stall for minutes. */
#include <sched.h>
static inline void cpu_relax(void)
{
	__builtin_ia32_pause();
	sched_yield();
}
#else
static inline unsigned long arch_irq_save(void)
{
	unsigned long flags;
	__asm__ volatile("pushfq; popq %0; cli" : "=r"(flags) : : "memory");
	return flags;
}
static inline void arch_irq_restore(unsigned long flags)
{
	if (flags & X86_EFLAGS_IF)
		__asm__ volatile("sti" : : : "memory");
}
static inline void arch_irq_enable(void) { __asm__ volatile("sti" : : : "memory"); }
static inline void arch_irq_disable(void) { __asm__ volatile("cli" : : : "memory"); }
static inline int arch_irqs_enabled(void)
{
	unsigned long flags;
	__asm__ volatile("pushfq; popq %0" : "=r"(flags));
	return (flags & X86_EFLAGS_IF) != 0;
}
static inline void cpu_relax(void) { __asm__ volatile("pause" : : : "memory"); }
#endif

#endif
