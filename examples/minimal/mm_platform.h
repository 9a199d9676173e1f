/*
 * examples/minimal/mm_platform.h - the smallest platform the heap runs on:
 * one CPU, no interrupts that call the heap. mm_cpu_id() is always 0 and
 * the interrupt "save" does nothing, which is correct only because nothing
 * calls kmalloc/kfree from an interrupt handler or a second CPU (see
 * docs/INTEGRATING.md, "Interrupts and reentrancy"). The memory comes from
 * a static arena (examples/minimal/platform.c). The page map keeps its
 * default window (the whole 48-bit space, 3.5 MiB of .bss): the arena's
 * address is known only to the linker, and MM_PAGEMAP_BASE must be a
 * constant; a platform whose memory sits at a known address sets
 * MM_PAGEMAP_BASE/MM_PAGEMAP_BITS here (docs/INTEGRATING.md).
 */
#ifndef EXAMPLES_MINIMAL_MM_PLATFORM_H
#define EXAMPLES_MINIMAL_MM_PLATFORM_H

#define MM_MAX_CPUS 1

static inline unsigned mm_cpu_id(void) { return 0; }
static inline unsigned long mm_irq_save(void) { return 0; }
static inline void mm_irq_restore(unsigned long flags) { (void)flags; }
static inline void mm_cpu_relax(void) { }

#endif
