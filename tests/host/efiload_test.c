/*
 * tests/host/efiload_test.c - hosted test of the gnu-efi loader's pure
 * parts (boot/efi/efiload.c), built with ASan + UBSan by `make
 * host-efiload` (tools/efi.mk).
 *
 * ELF files are synthesised in a buffer (header, program headers, a
 * PT_LOAD and the "spanheap" entry note), then broken one way at a time:
 * bad magic, truncated, wrong class or machine, segment past the end of
 * the file, overlapping segments, no entry note. UEFI memory maps are
 * written as descriptors (40 or 48 bytes, the firmware's choice) in any
 * order, overlapping or not, and their multiboot2 conversion checked entry
 * by entry. Last, a whole multiboot2 block built by el_build_mb2 is parsed
 * by the kernel's own parser (kernel/multiboot2.c), which must accept it
 * and find every tag. Each check prints "ok"/"not ok" with what was
 * expected and seen; the last line is "N passed, N failed".
 */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include "boot/efi/efiload.h"
#include "kernel/multiboot2.h"

static int passed, failed;

#define CHECK(cond, ...) do { \
	if (cond) { passed++; printf("ok - "); } \
	else { failed++; printf("not ok - "); } \
	printf(__VA_ARGS__); printf("\n"); } while (0)

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* A small valid kernel: two PT_LOADs and a PT_NOTE, 0x3000 bytes. */
#define ELF_SIZE 0x3000
static uint8_t elf[ELF_SIZE];

static void phdr(unsigned i, uint32_t type, uint64_t off, uint64_t paddr, uint64_t filesz, uint64_t memsz)
{
	uint8_t *p = elf + 64 + i * 56;
	put32(p, type);
	put64(p + 8, off);
	put64(p + 16, paddr);
	put64(p + 24, paddr);
	put64(p + 32, filesz);
	put64(p + 40, memsz);
}

static void make_elf(void)
{
	memset(elf, 0, sizeof(elf));
	memcpy(elf, "\x7f" "ELF", 4);
	elf[4] = 2; elf[5] = 1; elf[6] = 1;
	put16(elf + 16, 2);
	put16(elf + 18, 62);
	put32(elf + 20, 1);
	put64(elf + 24, 0x200040);
	put64(elf + 32, 64);
	put16(elf + 52, 64);
	put16(elf + 54, 56);
	put16(elf + 56, 3);
	phdr(0, 1, 0x1000, 0x200000, 0x800, 0x8000);   /* .boot + .boot.bss */
	phdr(1, 1, 0x2000, 0x209000, 0x1000, 0x5000);  /* text, data, bss */
	phdr(2, 4, 0x400, 0x200400, 32, 32);       /* 12 + "spanheap\0" padded + 8 */
	uint8_t *n = elf + 0x400;                      /* the note */
	put32(n, 9); put32(n + 4, 8); put32(n + 8, 1);
	memcpy(n + 12, "spanheap", 9);
	put64(n + 24, 0x200038);
}

static void test_elf(void)
{
	struct el_kernel k;
	const char *why;

	make_elf();
	why = el_check_elf(elf, ELF_SIZE, ELF_SIZE, &k);
	CHECK(why == NULL, "valid ELF accepted (got \"%s\")", why ? why : "");
	CHECK(k.nseg == 2 && k.seg[0].paddr == 0x200000 && k.seg[1].memsz == 0x5000,
	      "two PT_LOAD segments found (nseg %u)", k.nseg);
	CHECK(k.entry64 == 0x200038, "entry note read: expected 0x200038, got %#llx",
	      (unsigned long long)k.entry64);
	why = el_check_elf(elf, 0x1000, ELF_SIZE, &k);
	CHECK(why == NULL, "head-only buffer with the whole file's size accepted (got \"%s\")", why ? why : "");

	struct { const char *what; void (*breakit)(void); uint64_t size; const char *expect; } cases[] = {
		{ "bad magic", NULL, ELF_SIZE, "bad magic" },
		{ "truncated header", NULL, 40, "truncated" },
		{ "truncated segment", NULL, 0x2800, "truncated" },
		{ "truncated program headers", NULL, 100, "truncated" },
	};
	make_elf(); elf[1] = 'X';
	why = el_check_elf(elf, ELF_SIZE, cases[0].size, &k);
	CHECK(why && strstr(why, cases[0].expect), "%s rejected: \"%s\"", cases[0].what, why ? why : "(accepted)");
	for (int i = 1; i < 4; i++) {
		make_elf();
		why = el_check_elf(elf, cases[i].size, cases[i].size, &k);
		CHECK(why && strstr(why, cases[i].expect), "%s rejected with \"%s\": \"%s\"",
		      cases[i].what, cases[i].expect, why ? why : "(accepted)");
	}
	make_elf(); put16(elf + 18, 183);   /* EM_AARCH64 */
	why = el_check_elf(elf, ELF_SIZE, ELF_SIZE, &k);
	CHECK(why && strstr(why, "wrong architecture"), "AArch64 ELF rejected: \"%s\"", why ? why : "(accepted)");
	make_elf(); elf[4] = 1;
	why = el_check_elf(elf, ELF_SIZE, ELF_SIZE, &k);
	CHECK(why && strstr(why, "64-bit"), "32-bit ELF rejected: \"%s\"", why ? why : "(accepted)");
	make_elf(); phdr(1, 1, 0x2000, 0x204000, 0x1000, 0x5000);
	why = el_check_elf(elf, ELF_SIZE, ELF_SIZE, &k);
	CHECK(why && strstr(why, "overlap"), "overlapping segments rejected: \"%s\"", why ? why : "(accepted)");
	make_elf(); phdr(1, 1, 0x2000, 0x209000, 0x6000, 0x5000);
	why = el_check_elf(elf, ELF_SIZE, ELF_SIZE, &k);
	CHECK(why != NULL, "filesz > memsz rejected: \"%s\"", why ? why : "(accepted)");
	make_elf(); phdr(1, 1, 0x2000, UINT64_MAX - 0x1000, 0x1000, 0x5000);
	why = el_check_elf(elf, ELF_SIZE, ELF_SIZE, &k);
	CHECK(why && strstr(why, "wraps"), "segment wrapping past 2^64 rejected: \"%s\"", why ? why : "(accepted)");
	make_elf(); elf[0x400 + 12] = 'x';
	why = el_check_elf(elf, ELF_SIZE, ELF_SIZE, &k);
	CHECK(why && strstr(why, "note"), "missing entry note rejected: \"%s\"", why ? why : "(accepted)");
	make_elf(); put32(elf + 0x400, 0xfffffff0);     /* namesz runs away */
	why = el_check_elf(elf, ELF_SIZE, ELF_SIZE, &k);
	CHECK(why != NULL, "note with a runaway name size rejected: \"%s\"", why ? why : "(accepted)");
	/* Every truncation of the file is rejected and read within bounds (ASan). */
	make_elf();
	int bad = 0;
	for (size_t n = 0; n < 0x2800; n += 7) {
		uint8_t *copy = malloc(n ? n : 1);
		memcpy(copy, elf, n);
		if (!el_check_elf(copy, n, n, &k))
			bad++;
		free(copy);
	}
	CHECK(bad == 0, "every truncation of the file below its segments' end rejected (%d accepted)", bad);
}

static void test_segment(void)
{
	struct el_segment s = { 0x200000, 0x640000, 0x1000, 0x40000 };
	struct el_range loader = { 0xde00000, 0xde40000 };
	struct el_range ram_unsorted[] = { { 0x810000, 0x900000 }, { 0x100000, 0x806000 }, { 0x806000, 0x810000 } };
	const char *why = el_check_segment(&s, loader, ram_unsorted, 3);
	CHECK(why == NULL, "segment covered by three unsorted adjacent ranges accepted (got \"%s\")", why ? why : "");
	struct el_range ram_gap[] = { { 0x100000, 0x806000 }, { 0x808000, 0x900000 } };
	why = el_check_segment(&s, loader, ram_gap, 2);
	CHECK(why && strstr(why, "outside"), "segment over a hole in RAM rejected: \"%s\"", why ? why : "(accepted)");
	struct el_range loader_in = { 0x300000, 0x340000 };
	why = el_check_segment(&s, loader_in, ram_unsorted, 3);
	CHECK(why && strstr(why, "loader"), "segment over the loader rejected: \"%s\"", why ? why : "(accepted)");
	CHECK(el_check_segment(&s, loader, NULL, 0) != NULL, "segment with no RAM at all rejected");
	CHECK(el_efi_type_placeable(EL_EFI_BS_DATA) && el_efi_type_placeable(EL_EFI_CONVENTIONAL) &&
	      !el_efi_type_placeable(EL_EFI_RT_DATA) && !el_efi_type_placeable(EL_EFI_ACPI_RECLAIM) &&
	      !el_efi_type_placeable(EL_EFI_MMIO) && !el_efi_type_placeable(EL_EFI_LOADER_DATA),
	      "placeable types: conventional and boot services yes; runtime, ACPI tables, MMIO, loader no");
}

/* UEFI descriptors of dsize bytes. */
static void efi_desc(uint8_t *map, size_t dsize, unsigned i, uint32_t type, uint64_t start, uint64_t pages)
{
	uint8_t *d = map + i * dsize;
	memset(d, 0xa5, dsize);   /* padding and attributes: junk */
	put32(d, type);
	put64(d + 8, start);
	put64(d + 16, 0);
	put64(d + 24, pages);
}

struct want { uint64_t addr, len; uint32_t type; };

static void check_map(const char *what, const uint8_t *map, size_t n, size_t dsize,
		      const struct want *w, size_t nw)
{
	uint8_t out[64 * 24];
	long got = el_efi_map_to_mb2(map, n, dsize, out, 64);
	bool same = got == (long)nw;
	for (size_t i = 0; same && i < nw; i++)
		same = get64(out + i * 24) == w[i].addr && get64(out + i * 24 + 8) == w[i].len &&
		       get32(out + i * 24 + 16) == w[i].type && get32(out + i * 24 + 20) == 0;
	CHECK(same, "%s: expected %zu entries, got %ld", what, nw, got);
	if (!same)
		for (long i = 0; i < got; i++)
			printf("#   got [%#llx +%#llx) type %u\n", (unsigned long long)get64(out + i * 24),
			       (unsigned long long)get64(out + i * 24 + 8), get32(out + i * 24 + 16));
}

static void test_map(void)
{
	uint8_t map[16 * 48];
	const size_t P = EL_PAGE;

	/* Sorted, OVMF-like: types converted, BS memory available. */
	efi_desc(map, 40, 0, EL_EFI_BS_CODE, 0, 1);
	efi_desc(map, 40, 1, EL_EFI_CONVENTIONAL, P, 0x9f);
	efi_desc(map, 40, 2, EL_EFI_CONVENTIONAL, 0x100000, 0x706);
	efi_desc(map, 40, 3, EL_EFI_ACPI_NVS, 0x806000, 2);
	efi_desc(map, 40, 4, EL_EFI_RT_DATA, 0x808000, 8);
	efi_desc(map, 40, 5, EL_EFI_ACPI_RECLAIM, 0x810000, 0x10);
	efi_desc(map, 40, 6, EL_EFI_MMIO, 0xb0000000, 0x10000);
	efi_desc(map, 40, 7, EL_EFI_UNUSABLE, 0x820000, 1);
	const struct want w1[] = {
		{ 0, 0xa0000, 1 }, { 0x100000, 0x706000, 1 }, { 0x806000, 0x2000, 4 },
		{ 0x808000, 0x8000, 2 }, { 0x810000, 0x10000, 3 }, { 0x820000, 0x1000, 5 },
		{ 0xb0000000, 0x10000000, 2 },
	};
	check_map("sorted map, every type converted, adjacent usable merged", map, 8, 40, w1, 7);

	/* The same, reversed and with 48-byte descriptors. */
	uint8_t map48[16 * 48];
	for (unsigned i = 0; i < 8; i++) {
		uint8_t *d = map + (7 - i) * 40;
		efi_desc(map48, 48, i, get32(d), get64(d + 8), get64(d + 24));
	}
	check_map("unsorted map with 48-byte descriptors", map48, 8, 48, w1, 7);

	/* Overlaps: a reserved hole inside conventional memory splits it;
	 * runtime data over boot-services data wins; duplicates merge. */
	efi_desc(map, 40, 0, EL_EFI_CONVENTIONAL, 0x100000, 0x100);     /* 1 MiB - 2 MiB */
	efi_desc(map, 40, 1, EL_EFI_RESERVED, 0x150000, 0x10);
	efi_desc(map, 40, 2, EL_EFI_BS_DATA, 0x1f0000, 0x20);             /* overlaps the end, goes on */
	efi_desc(map, 40, 3, EL_EFI_RT_CODE, 0x200000, 0x8);
	efi_desc(map, 40, 4, EL_EFI_CONVENTIONAL, 0x100000, 0x100);     /* duplicate */
	efi_desc(map, 40, 5, EL_EFI_CONVENTIONAL, 0x400000, 0);         /* empty */
	const struct want w2[] = {
		{ 0x100000, 0x50000, 1 }, { 0x150000, 0x10000, 2 }, { 0x160000, 0xa0000, 1 },
		{ 0x200000, 0x8000, 2 }, { 0x208000, 0x8000, 1 },
	};
	check_map("overlapping map: most restrictive type wins, empty entry dropped", map, 6, 40, w2, 5);

	uint8_t out[4 * 24];
	CHECK(el_efi_map_to_mb2(map, 6, 40, out, 4) == -1, "output too small reported (-1)");
	CHECK(el_efi_map_to_mb2(map, 6, 36, out, 4) == -1, "descriptor size 36 refused (-1)");
	CHECK(el_efi_map_to_mb2(map, 0, 40, out, 4) == 0, "empty map gives no entries");
	efi_desc(map, 40, 0, EL_EFI_CONVENTIONAL, UINT64_MAX - 0xfff, 0x100);
	long n = el_efi_map_to_mb2(map, 1, 40, out, 4);
	CHECK(n == 0 || (n == 1 && get64(out) + get64(out + 8) >= get64(out)),
	      "descriptor wrapping past 2^64 clamped, not wrapped (%ld entries)", n);
	CHECK(el_efi_to_mb2_type(EL_EFI_LOADER_DATA) == 1 && el_efi_to_mb2_type(EL_EFI_BS_DATA) == 1 &&
	      el_efi_to_mb2_type(EL_EFI_RT_CODE) == 2 && el_efi_to_mb2_type(EL_EFI_ACPI_RECLAIM) == 3 &&
	      el_efi_to_mb2_type(EL_EFI_ACPI_NVS) == 4 && el_efi_to_mb2_type(99) == 2,
	      "EFI type -> multiboot2 type table");
}

static void test_block(void)
{
	uint8_t map[8 * 48];
	efi_desc(map, 48, 0, EL_EFI_CONVENTIONAL, 0x100000, 0x1000);
	efi_desc(map, 48, 1, EL_EFI_ACPI_RECLAIM, 0x1100000, 0x10);
	efi_desc(map, 48, 2, EL_EFI_CONVENTIONAL, 0, 0x9f);
	uint8_t rsdp[36] = "RSD PTR ";
	rsdp[15] = 2;
	struct el_boot_info bi = {
		.loader_name = "test loader", .cmdline = "ktest=pmm bench",
		.rsdp = rsdp, .efi_system_table = 0xdead000, .has_fb = true,
		.fb_addr = 0x80000000, .fb_pitch = 4096, .fb_width = 1024, .fb_height = 768,
		.efi_map = map, .efi_map_n = 3, .efi_desc_size = 48, .efi_desc_version = 1,
	};
	size_t size = el_mb2_size(&bi);
	uint64_t *buf = malloc(size);
	const char *error;
	uint32_t total = el_build_mb2(&bi, buf, size, &error);
	CHECK(total > 0 && total <= size, "block built in its computed size (%u of %zu bytes; %s)",
	      total, size, error ? error : "no error");
	struct mb2_info info;
	int rc = mb2_parse(buf, &info);
	CHECK(rc == 0, "the kernel's parser accepts the block (%s)", info.error ? info.error : "ok");
	CHECK(info.bootloader && strcmp(info.bootloader, "test loader") == 0, "loader name tag");
	CHECK(info.cmdline && strcmp(info.cmdline, "ktest=pmm bench") == 0, "command line tag");
	CHECK(info.rsdp_v2 && info.rsdp_v2_len == 36 && !info.rsdp_v1, "ACPI 2.0 RSDP tag (revision 2)");
	CHECK(info.has_efi64 && info.efi64_system_table == 0xdead000, "EFI64 system table tag");
	CHECK(info.efi_mmap && info.efi_mmap_count == 3 && info.efi_desc_size == 48 &&
	      info.efi_desc_version == 1, "EFI memory map tag (3 x 48 bytes, version 1)");
	struct mb2_mmap_entry e0, e1;
	CHECK(info.mmap_count == 3 && mb2_mmap_get(&info, 0, &e0) && e0.addr == 0 && e0.type == 1 &&
	      mb2_mmap_get(&info, 1, &e1) && e1.addr == 0x100000 && e1.len == 0x1000000,
	      "memory map tag sorted (%zu entries)", info.mmap_count);
	CHECK(mb2_mmap_total(&info, MB2_MEMORY_ACPI_RECLAIMABLE) == 0x10000, "ACPI reclaimable kept apart");
	CHECK(info.nunknown == 1, "framebuffer tag present (one tag the kernel does not use: %u)", info.nunknown);
	rsdp[15] = 0;
	bi.has_fb = false;
	total = el_build_mb2(&bi, buf, size, &error);
	rc = mb2_parse(buf, &info);
	CHECK(total && rc == 0 && info.rsdp_v1 && !info.rsdp_v2, "ACPI 1.0 RSDP goes to tag 14");
	CHECK(el_build_mb2(&bi, buf, 64, &error) == 0 && error, "too small a buffer refused: \"%s\"",
	      error ? error : "");
	free(buf);
}

static void test_words(void)
{
	CHECK(el_has_word("a efi.stale_map_key b", "efi.stale_map_key"), "word in the middle found");
	CHECK(el_has_word("efi.stale_map_key=1", "efi.stale_map_key"), "word=value found");
	CHECK(!el_has_word("xefi.stale_map_key efi.stale_map_keyx", "efi.stale_map_key"),
	      "word inside longer words not found");
	CHECK(!el_has_word("", "efi.stale_map_key") && !el_has_word("   ", "x"), "empty line has no words");
}

int main(void)
{
	test_words();
	test_elf();
	test_segment();
	test_map();
	test_block();
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
