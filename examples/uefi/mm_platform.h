/*
 * examples/uefi/mm_platform.h - the heap's inline hooks for a UEFI
 * application (gnu-efi, boot services running): one CPU, so mm_cpu_id() is
 * always 0, and the heap's sections mask interrupts the UEFI way, by raising
 * the task priority level to TPL_HIGH_LEVEL (RaiseTPL) and putting the old
 * level back (RestoreTPL). The firmware calls live in platform.c, so no EFI
 * header reaches the files of mm/ that include this one.
 *
 * Boot services identity-map memory, so the heap's addresses are physical
 * ones: the page map's window is the first 1 TiB of physical memory, and
 * mm_sys_alloc asks AllocatePages for pages below 1 TiB only
 * (AllocateMaxAddress), so every chunk is inside it. The root is then
 * 64 KiB (208 KiB of page-map .bss in all) instead of the 48-bit default's
 * 2 MiB, which gnu-efi's linker script would put into the .EFI file itself
 * (its .bss is part of .data).
 */
#ifndef EXAMPLES_UEFI_MM_PLATFORM_H
#define EXAMPLES_UEFI_MM_PLATFORM_H

#define MM_MAX_CPUS 1
/* The page map's window: physical [0, 1 TiB). */
#define MM_PAGEMAP_BASE 0UL
#define MM_PAGEMAP_BITS 40

unsigned long uefi_heap_section_enter(void);   /* RaiseTPL(TPL_HIGH_LEVEL) */
void uefi_heap_section_leave(unsigned long old_tpl);   /* RestoreTPL(old_tpl) */

static inline unsigned mm_cpu_id(void) { return 0; }
static inline unsigned long mm_irq_save(void) { return uefi_heap_section_enter(); }
static inline void mm_irq_restore(unsigned long flags) { uefi_heap_section_leave(flags); }
static inline void mm_cpu_relax(void) { __builtin_ia32_pause(); }

#endif
