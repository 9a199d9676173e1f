/*
 * examples/uefi/platform.c - the heap's platform in a UEFI application
 * (gnu-efi, boot services running): the functions mm/platform.h asks for.
 *
 * Memory comes from the firmware's AllocatePages (EfiLoaderData, 4 KiB
 * pages), below 1 TiB (AllocateMaxAddress: the page map's window,
 * mm_platform.h; memory above it would be refused by the heap). The heap
 * needs 8 KiB alignment, which AllocatePages' 4 KiB pages do not promise:
 * mm_sys_alloc asks for one page more, keeps the aligned part and gives the
 * page before or after it back at once with FreePages. mm_sys_free gives the region
 * back with FreePages. Every page in and out is counted (uefi_pages), so the
 * self-test can check that the firmware got back all but what the heap
 * keeps by design (its page-map leaves).
 *
 * The heap's sections (mm_irq_save) raise the TPL to TPL_HIGH_LEVEL: the
 * timer interrupt is masked and no event notification can run. The UEFI
 * specification allows AllocatePages, FreePages and ConOut only at
 * TPL_NOTIFY or below, and the heap calls mm_sys_alloc, mm_sys_free and
 * mm_log inside its sections; so around each firmware call made inside a
 * section the TPL goes down to TPL_NOTIFY and back up to TPL_HIGH_LEVEL.
 * At TPL_NOTIFY still no event notification of the application's can run
 * (they run at TPL_CALLBACK or TPL_NOTIFY), so nothing can reach the heap
 * during the call. The heap is still never called from a notification
 * function: the sections are on one CPU, and an event at TPL_HIGH_LEVEL
 * does not exist for applications.
 *
 * mm_log prints one line on the console (console.c; OVMF mirrors ConOut to
 * the serial port); mm_panic prints and leaves QEMU with the failure code.
 * memset and memcpy come from gnu-efi's libefi.
 */
#include <efi.h>
#include <efilib.h>
#include <stdarg.h>
#include "mm/platform.h"
#include "examples/uefi/uefi_example.h"

#define EFI_PAGE (4096UL)

struct uefi_pages uefi_pages;
static unsigned section_depth;   /* heap sections entered and not left */

unsigned long uefi_heap_section_enter(void)
{
	EFI_TPL old = uefi_call_wrapper(BS->RaiseTPL, 1, TPL_HIGH_LEVEL);
	section_depth++;
	return old;
}

void uefi_heap_section_leave(unsigned long old_tpl)
{
	section_depth--;
	uefi_call_wrapper(BS->RestoreTPL, 1, (EFI_TPL)old_tpl);
}

/* Around a firmware call: down to TPL_NOTIFY if inside a heap section. */
static void firmware_call_begin(void)
{
	if (section_depth)
		uefi_call_wrapper(BS->RestoreTPL, 1, TPL_NOTIFY);
}

static void firmware_call_end(void)
{
	if (section_depth)
		uefi_call_wrapper(BS->RaiseTPL, 1, TPL_HIGH_LEVEL);
}

static void free_pages(uintptr_t addr, size_t bytes)
{
	if (bytes == 0)
		return;
	EFI_STATUS st = uefi_call_wrapper(BS->FreePages, 2, (EFI_PHYSICAL_ADDRESS)addr,
					  bytes / EFI_PAGE);
	if (EFI_ERROR(st)) {
		uefi_pages.free_errors++;
		return;
	}
	uefi_pages.free_calls++;
	uefi_pages.pages_freed += bytes / EFI_PAGE;
}

void *mm_sys_alloc(size_t bytes)
{
	size_t align = MM_SYS_ALIGN;
	size_t total = bytes + align - EFI_PAGE;
	/* In: the highest address the pages may reach, the window's last. */
	EFI_PHYSICAL_ADDRESS addr = (MM_PAGEMAP_BASE) + (1ULL << MM_PAGEMAP_BITS) - 1;

	firmware_call_begin();
	EFI_STATUS st = uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress,
					  EfiLoaderData, total / EFI_PAGE, &addr);
	if (EFI_ERROR(st)) {
		firmware_call_end();
		return NULL;
	}
	uefi_pages.alloc_calls++;
	uefi_pages.pages_allocated += total / EFI_PAGE;
	uintptr_t start = ((uintptr_t)addr + align - 1) & ~(uintptr_t)(align - 1);
	free_pages((uintptr_t)addr, start - (uintptr_t)addr);
	free_pages(start + bytes, (uintptr_t)addr + total - (start + bytes));
	firmware_call_end();

	if (start & (MM_SYS_ALIGN - 1))
		uefi_pages.misaligned++;
	uefi_pages.bytes_out += bytes;
	return (void *)start;
}

void mm_sys_free(void *p, size_t bytes)
{
	firmware_call_begin();
	free_pages((uintptr_t)p, bytes);
	firmware_call_end();
	uefi_pages.bytes_out -= bytes;
}

void mm_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	firmware_call_begin();
	console_vprintf(fmt, ap);
	console_printf("\n");
	firmware_call_end();
	va_end(ap);
	uefi_pages.log_lines++;
}

_Noreturn void mm_panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	firmware_call_begin();
	console_printf("uefi-example: heap panic: ");
	console_vprintf(fmt, ap);
	console_printf("\n");
	va_end(ap);
	uefi_example_qemu_exit(0);
	uefi_call_wrapper(RT->ResetSystem, 4, EfiResetShutdown, EFI_ABORTED, 0, NULL);
	for (;;)
		__asm__ volatile("cli; hlt");
}
