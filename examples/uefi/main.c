/*
 * examples/uefi/main.c - the heap as the allocator of a UEFI application,
 * and its self-test. efi_main runs with boot services up, turns the
 * firmware's watchdog off, and tests the heap on the platform of
 * platform.c (pages from AllocatePages, sections at TPL_HIGH_LEVEL, one
 * CPU), printing KTAP on the console (mirrored to serial by OVMF):
 *
 *   - every size from 1 byte to 32 KiB, in windows of 1024 consecutive
 *     sizes live at once, and several large objects (32 KiB + 1 to 16 MiB) live
 *     together; each object filled with a pattern of its own (64-bit words,
 *     then the tail bytes) and every byte checked; mheap_verify() with
 *     everything of a window live;
 *   - everything freed, mheap_verify() == 0, kmem_drain_all +
 *     kmem_scavenge: no object, chunk or fixalloc block left;
 *   - the firmware's pages balance: the 4 KiB pages AllocatePages handed
 *     out less those FreePages took back are exactly the regions the heap
 *     still holds, which are only its page-map leaves (for this 40-bit
 *     window 128 KiB per 128 MiB of address space touched: 1 or 2 here),
 *     and no FreePages failed;
 *   - every request came back 8 KiB aligned (the alignment AllocatePages'
 *     4 KiB pages do not promise);
 *   - a second round of large objects takes no more pages.
 *
 * Then it leaves QEMU through isa-debug-exit (status 33 on success, 35 on
 * failure; tests/run-qemu judges the KTAP and the status). On a machine
 * without the device the write does nothing and efi_main returns to the
 * firmware's boot manager (EFI_SUCCESS or EFI_ABORTED).
 */
#include <efi.h>
#include <efilib.h>
#include "mm/kmalloc.h"
#include "mm/pagemap.h"   /* PAGEMAP_LEAF_BYTES: what the heap keeps */
#include "examples/uefi/uefi_example.h"

#define SMALL_MAX   (32 * 1024)
#define WINDOW      1024
#define EFI_PAGE    4096UL
#define NTESTS      10

static const size_t large_sizes[] = { 32769, 65536, 100000, 1 << 20, (1 << 20) + 1,
				      3 << 20, 16 << 20 };
#define NLARGE (sizeof(large_sizes) / sizeof(large_sizes[0]))

static unsigned char *window[WINDOW];
static unsigned char *large[NLARGE];
static int ntest, nfail;

static void check(int ok, const char *what, unsigned long long expected,
		  unsigned long long seen)
{
	ntest++;
	if (ok) {
		console_printf("ok %d - %s\n", ntest, what);
		return;
	}
	nfail++;
	console_printf("not ok %d - %s\n    # expected %llu, saw %llu\n", ntest, what,
		       expected, seen);
}

/* The pattern of object `id`: word k is seed + k * odd, tail byte b is b ^ id. */
static uint64_t seed_of(unsigned id) { return 0x9e3779b97f4a7c15ULL * (id + 1); }

static void fill(unsigned char *p, size_t size, unsigned id)
{
	uint64_t *w = (uint64_t *)p, s = seed_of(id);
	size_t k, nw = size / 8;
	for (k = 0; k < nw; k++)
		w[k] = s + k * 0x100000001b3ULL;
	for (size_t b = nw * 8; b < size; b++)
		p[b] = (unsigned char)(b ^ id);
}

static int holds_pattern(const unsigned char *p, size_t size, unsigned id)
{
	const uint64_t *w = (const uint64_t *)p;
	uint64_t s = seed_of(id);
	size_t k, nw = size / 8;
	for (k = 0; k < nw; k++)
		if (w[k] != s + k * 0x100000001b3ULL)
			return 0;
	for (size_t b = nw * 8; b < size; b++)
		if (p[b] != (unsigned char)(b ^ id))
			return 0;
	return 1;
}

/* Every size 1..SMALL_MAX, a window at a time; counts into the pointers. */
static void all_small_sizes(unsigned *nnull, unsigned *nbad, unsigned *nverify)
{
	for (size_t first = 1; first <= SMALL_MAX; first += WINDOW) {
		for (unsigned i = 0; i < WINDOW; i++) {
			window[i] = kmalloc(first + i, 0);
			if (window[i])
				fill(window[i], first + i, first + i);
			else
				(*nnull)++;
		}
		for (unsigned i = 0; i < WINDOW; i++)
			if (window[i] && !holds_pattern(window[i], first + i, first + i))
				(*nbad)++;
		if (mheap_verify() != 0)
			(*nverify)++;
		for (unsigned i = 0; i < WINDOW; i++)
			kfree(window[i]);
	}
}

/* The large objects, all live at once; returns how many were wrong or NULL. */
static unsigned large_round(void)
{
	unsigned bad = 0;
	for (unsigned i = 0; i < NLARGE; i++) {
		large[i] = kmalloc(large_sizes[i], 0);
		if (large[i])
			fill(large[i], large_sizes[i], 100000 + i);
	}
	for (unsigned i = 0; i < NLARGE; i++)
		if (!large[i] || !holds_pattern(large[i], large_sizes[i], 100000 + i))
			bad++;
	if (mheap_verify() != 0)
		bad++;
	for (unsigned i = 0; i < NLARGE; i++)
		kfree(large[i]);
	return bad;
}

static unsigned long pages_out(void)
{
	return uefi_pages.pages_allocated - uefi_pages.pages_freed;
}

static void selftest(void)
{
	console_printf("KTAP version 1\n1..%d\n", NTESTS);
	kmalloc_init();

	unsigned nnull = 0, nbad = 0, nverify = 0;
	all_small_sizes(&nnull, &nbad, &nverify);
	check(nnull == 0, "every size from 1 to 32768 bytes allocated (1024 sizes live at once)",
	      0, nnull);
	check(nbad == 0, "every small object holds its own pattern", 0, nbad);
	check(nverify == 0, "mheap_verify() == 0 with each window of sizes live", 0, nverify);
	check(large_round() == 0,
	      "large objects 32769 B .. 16 MiB live together, contents and mheap_verify right",
	      0, 1);
	check(mheap_verify() == 0, "mheap_verify() == 0 after freeing everything", 0, 1);

	kmem_drain_all();
	kmem_scavenge();
	struct kmem_stats st;
	kmem_get_stats(&st);
	check(st.objects_inuse == 0 && st.heap_bytes == 0 && st.retained_bytes == 0,
	      "drain + scavenge: no object, chunk or fixalloc block left in the heap",
	      0, st.objects_inuse + st.heap_bytes + st.retained_bytes);
	size_t kept = uefi_pages.bytes_out;
	check(kept == PAGEMAP_LEAF_BYTES || kept == 2 * PAGEMAP_LEAF_BYTES,
	      "the heap holds only its page-map leaves (1 or 2 of PAGEMAP_LEAF_BYTES)",
	      PAGEMAP_LEAF_BYTES, kept);
	check(pages_out() * EFI_PAGE == kept && uefi_pages.free_errors == 0,
	      "AllocatePages pages - FreePages pages == the leaves' pages, no FreePages error",
	      kept / EFI_PAGE, pages_out());
	check(uefi_pages.alloc_calls > 0 && uefi_pages.misaligned == 0,
	      "every mm_sys_alloc came back 8 KiB aligned",
	      0, uefi_pages.misaligned + (uefi_pages.alloc_calls == 0));

	unsigned long before = pages_out();
	unsigned bad = large_round();
	kmem_drain_all();
	kmem_scavenge();
	check(bad == 0 && pages_out() == before,
	      "a second large round gives every page back through FreePages",
	      before, pages_out() + bad);

	console_printf("# AllocatePages: %lu calls, %lu pages; FreePages: %lu calls, %lu pages;"
		       " kept by the heap: %zu bytes; mm_log lines: %lu\n",
		       uefi_pages.alloc_calls, uefi_pages.pages_allocated,
		       uefi_pages.free_calls, uefi_pages.pages_freed, kept, uefi_pages.log_lines);
	console_printf("%d passed, %d failed\n", ntest - nfail, nfail);
}

void uefi_example_qemu_exit(int ok)
{
	unsigned code = ok ? 0x10 : 0x11;
	__asm__ volatile("outl %0, %1" : : "a"(code), "Nd"((unsigned short)0xf4));
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	InitializeLib(image, systab);
	uefi_call_wrapper(BS->SetWatchdogTimer, 4, 0, 0, 0, NULL);
	console_printf("uefi-example: the spanheap heap in a gnu-efi application\n");
	selftest();
	uefi_example_qemu_exit(nfail == 0);
	return nfail == 0 ? EFI_SUCCESS : EFI_ABORTED;
}
