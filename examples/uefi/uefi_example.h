/*
 * examples/uefi/uefi_example.h - what the files of the UEFI example share:
 * the platform's page counts (platform.c), the console (console.c: printf
 * to ConOut with the heap's formats), and the way out (main.c: QEMU's
 * isa-debug-exit; without it, back to the firmware).
 */
#ifndef EXAMPLES_UEFI_UEFI_EXAMPLE_H
#define EXAMPLES_UEFI_UEFI_EXAMPLE_H

#include <stdarg.h>
#include <stddef.h>

/* What mm_sys_alloc / mm_sys_free did with the firmware's pages. */
struct uefi_pages {
	unsigned long alloc_calls, free_calls;      /* AllocatePages, FreePages */
	unsigned long pages_allocated, pages_freed; /* 4 KiB pages, both ways */
	unsigned long free_errors;                  /* FreePages that failed */
	unsigned long misaligned;                   /* results not 8 KiB aligned */
	size_t bytes_out;                           /* held by the heap now */
	unsigned long log_lines;                    /* mm_log calls */
};
extern struct uefi_pages uefi_pages;

void console_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void console_vprintf(const char *fmt, va_list ap);

/* Leave QEMU through isa-debug-exit with success (ok != 0, status 33) or
 * failure (status 35); returns on a machine without the device. */
void uefi_example_qemu_exit(int ok);

#endif
