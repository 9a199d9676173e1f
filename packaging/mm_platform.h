/*
 * packaging/mm_platform.h - the platform seam of the prebuilt freestanding
 * archive (build/lib/libspanheap-freestanding.a, `make lib`), installed as
 * <spanheap/platform.h>. A prebuilt archive cannot inline its host's
 * mm_cpu_id() or mm_irq_save(), so here every hook of mm/platform.h is an
 * ordinary function the kernel that links the archive defines (the
 * archive's only undefined symbols, docs/INTEGRATING.md): the price is a
 * call where a source build inlines, a few instructions per kmalloc/kfree.
 * The archive is built with MM_MAX_CPUS 64 and the default options (among
 * them the default page-map window, the whole 48-bit address space: 3.5 MiB
 * of .bss); a kernel that wants other values (a smaller window:
 * MM_PAGEMAP_BASE/MM_PAGEMAP_BITS), the debug mode or inline hooks
 * compiles the sources instead (`make export-mm`).
 */
#ifndef SPANHEAP_PLATFORM_H
#define SPANHEAP_PLATFORM_H

#include <stddef.h>

#define MM_MAX_CPUS 64

/* This CPU's index, below MM_MAX_CPUS; called inside mm_irq_save only. */
unsigned mm_cpu_id(void);
/* Interrupts off on this CPU, returning the previous state; sections nest. */
unsigned long mm_irq_save(void);
/* Interrupts back as mm_irq_save found them. */
void mm_irq_restore(unsigned long flags);
/* One round of waiting for a heap lock (x86: pause). */
void mm_cpu_relax(void);

/* bytes (a multiple of 8 KiB) of mapped read-write memory, 8 KiB aligned
 * (no larger alignment is needed); NULL when out of memory. */
void *mm_sys_alloc(size_t bytes);
/* Give back a region exactly as mm_sys_alloc returned it. */
void mm_sys_free(void *p, size_t bytes);
/* One diagnostic line: the hook adds the newline. */
void mm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report and stop; never returns. */
_Noreturn void mm_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void *memset(void *dst, int c, size_t n);
void *memcpy(void *restrict dst, const void *restrict src, size_t n);

#endif
