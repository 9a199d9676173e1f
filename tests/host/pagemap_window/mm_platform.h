/*
 * tests/host/pagemap_window/mm_platform.h - the platform of the page-map
 * window test (tests/host/pagemap_window/test.c): one CPU, no interrupts,
 * as examples/minimal, and a deliberately small page-map window of
 * 2^PW_BITS bytes at PW_BASE (PW_BITS comes from the build: the test is
 * built for a window of 64 MiB, 8 root entries, and for one of 4 GiB,
 * 512 root entries; 8 KiB leaves, mm/pagemap.h). platform.c hands the
 * heap memory inside the window, or, when the test asks, just below it,
 * just above it, across its end, or at its very top.
 */
#ifndef PAGEMAP_WINDOW_MM_PLATFORM_H
#define PAGEMAP_WINDOW_MM_PLATFORM_H

#define MM_MAX_CPUS 1

#ifndef PW_BITS
#define PW_BITS 26
#endif
/* 32 TiB: in the lower half of a Linux process, far from its mappings. */
#define PW_BASE 0x200000000000UL
#define MM_PAGEMAP_BASE PW_BASE
#define MM_PAGEMAP_BITS PW_BITS

static inline unsigned mm_cpu_id(void) { return 0; }
static inline unsigned long mm_irq_save(void) { return 0; }
static inline void mm_irq_restore(unsigned long flags) { (void)flags; }
static inline void mm_cpu_relax(void) { }

#endif
