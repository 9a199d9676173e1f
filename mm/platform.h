/*
 * mm/platform.h - the seam between the heap and whatever runs it.
 *
 * Everything in mm/ above the pmm (mheap, mspan, mcentral, mcache, malloc)
 * depends on the functions below and on nothing else of its host. The
 * kernel provides them in kernel/mm_platform.h + kernel/mm_platform.c; the
 * hosted build (Linux, mmap + pthreads) in hosted/mm_platform.h +
 * hosted/platform_linux.c. A hobby OS that lifts mm/ writes its own
 * mm_platform.h (found through its include path) with these definitions:
 *
 *   static inline unsigned mm_cpu_id(void);
 *       Index of the running CPU, 0 <= id < MM_MAX_CPUS. Must be cheap: the
 *       kmalloc fast path calls it once. Only meaningful while interrupts are
 *       off (or the caller cannot migrate).
 *   static inline unsigned long mm_irq_save(void);
 *   static inline void mm_irq_restore(unsigned long flags);
 *       Disable interrupts on this CPU and return the previous state /
 *       restore it. The hosted build makes these no-ops.
 *   void *mm_sys_alloc(size_t bytes);
 *       Hand the heap `bytes` of fresh memory (a multiple of MM_SYS_ALIGN,
 *       8 KiB), aligned to MM_SYS_ALIGN, mapped read-write, or NULL when out
 *       of memory. Requests that are a power of two come back naturally
 *       aligned in the kernel (buddy pmm); the hosted build guarantees it
 *       too. The kernel takes frames from the pmm and returns their
 *       direct-map address; the hosted build uses mmap.
 *   void mm_sys_free(void *p, size_t bytes);
 *       Give back a region exactly as obtained from mm_sys_alloc.
 *   void mm_log(const char *fmt, ...);
 *       printk-style diagnostic line (the kernel's printk, fprintf(stderr)).
 *   _Noreturn void mm_panic(const char *fmt, ...);
 *       Report and stop.
 *   const char *mm_symbolize(const void *addr, unsigned long *offset);
 *       Optional (a weak symbol): the name of the function containing
 *       addr, for debug-mode reports (mm/mdebug.c); NULL if unknown.
 *
 * plus lib/spinlock.h (ticket spinlock) and lib/string.h-style memset/memcpy.
 * Formats passed to mm_log / mm_panic use only: %d %u %x %s %c %p with the
 * l / ll / z length modifiers, '#', '-', '0' and a width.
 */
#ifndef MM_PLATFORM_H
#define MM_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#ifndef MM_MAX_CPUS
#define MM_MAX_CPUS 64
#endif

/* Granule and minimum alignment of mm_sys_alloc: one 8 KiB heap page. */
#define MM_SYS_ALIGN (8UL * 1024)

#include "mm_platform.h"

void *mm_sys_alloc(size_t bytes);
void mm_sys_free(void *p, size_t bytes);
void mm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void mm_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
