/*
 * kernel/mm_platform.h - the kernel's side of the heap's platform seam
 * (mm/platform.h documents it). The CPU id comes from the per-CPU area
 * (struct cpu.id at %gs:8, see kernel/percpu.h); interrupts are turned off
 * with pushfq+cli and back on with a conditional sti (no popfq).
 */
#ifndef KERNEL_MM_PLATFORM_H
#define KERNEL_MM_PLATFORM_H

#include "lib/irqflags.h"

static inline unsigned mm_cpu_id(void)
{
	unsigned id;
	__asm__("movl %%gs:8, %0" : "=r"(id));
	return id;
}

static inline unsigned long mm_irq_save(void)
{
	return arch_irq_save();
}

static inline void mm_irq_restore(unsigned long flags)
{
	arch_irq_restore(flags);
}

#endif
