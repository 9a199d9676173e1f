/*
 * tests/kernel/multiboot2_test.c - the multiboot2 parser on synthetic boot
 * information blocks: good ones parse to the right fields, malformed ones
 * (truncated, bad sizes, no end tag, impossible memory-map entries, strings
 * without NUL) are rejected at the right tag, and randomly corrupted ones
 * never yield a pointer outside the block.
 */
#include "tests/kernel/ktest.h"
#include "kernel/multiboot2.h"
#include "lib/string.h"

/* Builder for synthetic blocks, in an 8-byte-aligned buffer. */
static uint64_t mbb_buf[1024];

struct mbb {
	uint8_t *p;
	uint32_t off;
};

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void mbb_begin(struct mbb *b)
{
	memset(mbb_buf, 0, sizeof(mbb_buf));
	b->p = (uint8_t *)mbb_buf;
	b->off = 8;
}

/* Append a tag header of the given size; returns the tag's first byte. */
static uint8_t *mbb_tag(struct mbb *b, uint32_t type, uint32_t size)
{
	uint8_t *t = b->p + b->off;
	put32(t, type);
	put32(t + 4, size);
	b->off += (size + 7) & ~7u;
	return t;
}

static uint32_t mbb_string(struct mbb *b, uint32_t type, const char *s)
{
	uint32_t off = b->off, len = (uint32_t)strlen(s) + 1;
	uint8_t *t = mbb_tag(b, type, 8 + len);
	memcpy(t + 8, s, len);
	return off;
}

static uint32_t mbb_end(struct mbb *b)
{
	uint32_t off = b->off;
	mbb_tag(b, MB2_TAG_END, 8);
	put32(b->p, b->off);
	return off;
}

static void mbb_mmap_entry(uint8_t *e, uint64_t addr, uint64_t len, uint32_t type)
{
	put64(e, addr);
	put64(e + 8, len);
	put32(e + 16, type);
	put32(e + 20, 0);
}

/* A QEMU-like memory map with n entries of entry_size bytes. */
static uint32_t mbb_mmap(struct mbb *b, uint32_t entry_size)
{
	static const struct { uint64_t a, l; uint32_t t; } m[] = {
		{ 0x0, 0x9fc00, MB2_MEMORY_AVAILABLE },
		{ 0x9fc00, 0x400, MB2_MEMORY_RESERVED },
		{ 0x100000, 0x7ee0000, MB2_MEMORY_AVAILABLE },
		{ 0x7fe0000, 0x20000, MB2_MEMORY_ACPI_RECLAIMABLE },
		{ 0xfffc0000, 0x40000, MB2_MEMORY_RESERVED },
		{ 0x100000000, 0x40000000, MB2_MEMORY_AVAILABLE },
	};
	uint32_t off = b->off, n = sizeof(m) / sizeof(m[0]);
	uint8_t *t = mbb_tag(b, MB2_TAG_MMAP, 16 + n * entry_size);
	put32(t + 8, entry_size);
	put32(t + 12, 0);
	for (uint32_t i = 0; i < n; i++)
		mbb_mmap_entry(t + 16 + i * entry_size, m[i].a, m[i].l, m[i].t);
	return off;
}

static const uint8_t rsdp1[MB2_RSDP_V1_LEN] = "RSD PTR \x01\x02\x03\x04\x05\x06\x07\x08";

/* A block with every tag the parser knows, plus an unknown one. */
static void build_full(struct mbb *b)
{
	mbb_begin(b);
	mbb_string(b, MB2_TAG_CMDLINE, "console=ttyS0 ktest=pmm");
	mbb_string(b, MB2_TAG_BOOTLOADER_NAME, "GRUB 2.12");
	uint8_t *t = mbb_tag(b, MB2_TAG_MODULE, 16 + 7);
	put32(t + 8, 0x200000);
	put32(t + 12, 0x234567);
	memcpy(t + 16, "initrd", 7);
	t = mbb_tag(b, MB2_TAG_MODULE, 17);
	put32(t + 8, 0x300000);
	put32(t + 12, 0x300000);
	t = mbb_tag(b, MB2_TAG_BASIC_MEMINFO, 16);
	put32(t + 8, 639);
	put32(t + 12, 129920);
	mbb_mmap(b, 24);
	t = mbb_tag(b, MB2_TAG_LOAD_BASE_ADDR, 12); /* unknown here, odd size */
	put32(t + 8, 0x100000);
	t = mbb_tag(b, MB2_TAG_ACPI_OLD, 8 + MB2_RSDP_V1_LEN);
	memcpy(t + 8, rsdp1, MB2_RSDP_V1_LEN);
	t = mbb_tag(b, MB2_TAG_ACPI_NEW, 8 + MB2_RSDP_V2_LEN);
	memcpy(t + 8, "RSD PTR ", 8);
	t = mbb_tag(b, MB2_TAG_EFI64, 16);
	put64(t + 8, 0x7f9e018ULL);
	t = mbb_tag(b, MB2_TAG_EFI_MMAP, 16 + 2 * 48);
	put32(t + 8, 48);
	put32(t + 12, 1);
	put32(t + 16, 7); /* EfiConventionalMemory */
	put64(t + 16 + 8, 0x100000);
	put64(t + 16 + 24, 0x700);
	put64(t + 16 + 32, 0xf);
	put32(t + 64, 6); /* EfiRuntimeServicesData */
	put64(t + 64 + 8, 0x7f000000);
	put64(t + 64 + 24, 3);
	mbb_end(b);
}

KTEST(multiboot2, parses_every_known_tag)
{
	struct mbb b;
	struct mb2_info info;
	build_full(&b);

	KASSERT_EQ(mb2_parse(mbb_buf, &info), 0);
	KEXPECT_NULL(info.error);
	KEXPECT_EQ(info.total_size, b.off);
	KEXPECT_EQ(info.ntags, 12);
	KEXPECT_EQ(info.nunknown, 1);
	KASSERT_NOT_NULL(info.cmdline);
	KEXPECT_EQ(strcmp(info.cmdline, "console=ttyS0 ktest=pmm"), 0);
	KASSERT_NOT_NULL(info.bootloader);
	KEXPECT_EQ(strcmp(info.bootloader, "GRUB 2.12"), 0);
	KASSERT_EQ(info.nmodules, 2);
	KEXPECT_EQ(info.modules[0].start, 0x200000);
	KEXPECT_EQ(info.modules[0].end, 0x234567);
	KEXPECT_EQ(strcmp(info.modules[0].cmdline, "initrd"), 0);
	KEXPECT_EQ(info.modules[1].start, 0x300000);
	KEXPECT_EQ(strcmp(info.modules[1].cmdline, ""), 0);
	KEXPECT_TRUE(info.has_meminfo);
	KEXPECT_EQ(info.mem_lower_kib, 639);
	KEXPECT_EQ(info.mem_upper_kib, 129920);
	KASSERT_NOT_NULL(info.rsdp_v1);
	KEXPECT_EQ(info.rsdp_v1_len, MB2_RSDP_V1_LEN);
	KEXPECT_EQ(memcmp(info.rsdp_v1, rsdp1, MB2_RSDP_V1_LEN), 0);
	KASSERT_NOT_NULL(info.rsdp_v2);
	KEXPECT_EQ(info.rsdp_v2_len, MB2_RSDP_V2_LEN);
	KEXPECT_TRUE(info.has_efi64);
	KEXPECT_EQ(info.efi64_system_table, 0x7f9e018ULL);
	KEXPECT_FALSE(info.efi_boot_services);

	KEXPECT_EQ(info.efi_mmap_count, 2);
	KEXPECT_EQ(info.efi_desc_size, 48);
	KEXPECT_EQ(info.efi_desc_version, 1);
	struct mb2_efi_desc d;
	KASSERT_TRUE(mb2_efi_mmap_get(&info, 1, &d));
	KEXPECT_EQ(d.type, 6);
	KEXPECT_EQ(d.phys_start, 0x7f000000);
	KEXPECT_EQ(d.num_pages, 3);
	KASSERT_TRUE(mb2_efi_mmap_get(&info, 0, &d));
	KEXPECT_EQ(d.attribute, 0xf);
	KEXPECT_FALSE(mb2_efi_mmap_get(&info, 2, &d));
}

KTEST(multiboot2, memory_map_entries)
{
	struct mbb b;
	struct mb2_info info;
	build_full(&b);
	KASSERT_EQ(mb2_parse(mbb_buf, &info), 0);

	KASSERT_EQ(info.mmap_count, 6);
	KEXPECT_EQ(info.mmap_entry_size, 24);
	struct mb2_mmap_entry e;
	KASSERT_TRUE(mb2_mmap_get(&info, 0, &e));
	KEXPECT_EQ(e.addr, 0);
	KEXPECT_EQ(e.len, 0x9fc00);
	KEXPECT_EQ(e.type, MB2_MEMORY_AVAILABLE);
	KASSERT_TRUE(mb2_mmap_get(&info, 3, &e));
	KEXPECT_EQ(e.addr, 0x7fe0000);
	KEXPECT_EQ(e.type, MB2_MEMORY_ACPI_RECLAIMABLE);
	KASSERT_TRUE(mb2_mmap_get(&info, 5, &e));
	KEXPECT_EQ(e.addr, 0x100000000ULL);
	KEXPECT_EQ(e.len, 0x40000000ULL);
	KEXPECT_FALSE(mb2_mmap_get(&info, 6, &e));
	KEXPECT_EQ(mb2_mmap_total(&info, MB2_MEMORY_AVAILABLE),
		   0x9fc00ULL + 0x7ee0000ULL + 0x40000000ULL);
	KEXPECT_EQ(mb2_mmap_total(&info, MB2_MEMORY_RESERVED), 0x400 + 0x40000);
	KEXPECT_EQ(strcmp(mb2_mmap_type_name(MB2_MEMORY_AVAILABLE), "usable"), 0);
	KEXPECT_EQ(strcmp(mb2_mmap_type_name(MB2_MEMORY_NVS), "ACPI NVS"), 0);
}

/* A future loader may use bigger entries; the parser must step by
 * entry_size, not by the 24 bytes it knows. */
KTEST(multiboot2, memory_map_with_larger_entries)
{
	struct mbb b;
	struct mb2_info info;
	mbb_begin(&b);
	mbb_mmap(&b, 40);
	mbb_end(&b);
	KASSERT_EQ(mb2_parse(mbb_buf, &info), 0);
	KEXPECT_EQ(info.mmap_count, 6);
	struct mb2_mmap_entry e;
	KASSERT_TRUE(mb2_mmap_get(&info, 4, &e));
	KEXPECT_EQ(e.addr, 0xfffc0000ULL);
	KEXPECT_EQ(e.type, MB2_MEMORY_RESERVED);
	KEXPECT_NULL(info.cmdline);
	KEXPECT_NULL(info.bootloader);
	KEXPECT_EQ(info.nmodules, 0);
	KEXPECT_NULL(info.rsdp_v1);
	KEXPECT_NULL(info.efi_mmap);
	KEXPECT_FALSE(info.has_meminfo);
}

KTEST(multiboot2, minimal_block_has_nothing)
{
	struct mbb b;
	struct mb2_info info;
	mbb_begin(&b);
	mbb_end(&b);
	KASSERT_EQ(mb2_parse(mbb_buf, &info), 0);
	KEXPECT_EQ(info.total_size, 16);
	KEXPECT_EQ(info.ntags, 1);
	KEXPECT_NULL(info.mmap);
	KEXPECT_EQ(info.mmap_count, 0);
	struct mb2_mmap_entry e;
	KEXPECT_FALSE(mb2_mmap_get(&info, 0, &e));
}

/* Expect rejection at a given tag offset with a message containing what. */
#define EXPECT_REJECT(what, at)                                              \
	do {                                                                 \
		struct mb2_info info_;                                       \
		KEXPECT_EQ(mb2_parse(mbb_buf, &info_), -1);                  \
		KEXPECT_NOT_NULL(info_.error);                               \
		if (info_.error)                                             \
			KEXPECT_NOT_NULL(strstr(info_.error, what));         \
		KEXPECT_EQ(info_.error_offset, at);                          \
	} while (0)

KTEST(multiboot2, rejects_bad_header)
{
	struct mb2_info info;
	KEXPECT_EQ(mb2_parse(NULL, &info), -1);
	KEXPECT_NOT_NULL(info.error);

	struct mbb b;
	mbb_begin(&b);
	mbb_end(&b);
	KEXPECT_EQ(mb2_parse((uint8_t *)mbb_buf + 4, &info), -1);
	KEXPECT_NOT_NULL(info.error);

	put32(b.p, 8); /* header only, no room for the end tag */
	EXPECT_REJECT("total_size", 0);
	put32(b.p, 0);
	EXPECT_REJECT("total_size", 0);
	put32(b.p, 0x40000000); /* 1 GiB: not a boot information block */
	EXPECT_REJECT("total_size", 0);
}

KTEST(multiboot2, rejects_truncated_block)
{
	struct mbb b;
	mbb_begin(&b);
	mbb_string(&b, MB2_TAG_CMDLINE, "abc");
	uint32_t mmap_off = mbb_mmap(&b, 24);
	mbb_end(&b);

	/* total_size ends in the middle of the memory map tag */
	put32(b.p, mmap_off + 40);
	EXPECT_REJECT("past total_size", mmap_off);
	/* total_size ends inside the memory map tag's header */
	put32(b.p, mmap_off + 4);
	EXPECT_REJECT("end tag missing", mmap_off);
	/* total_size ends right after the memory map: the end tag is cut */
	put32(b.p, mmap_off + 16 + 6 * 24);
	EXPECT_REJECT("end tag missing", mmap_off + 16 + 6 * 24);
}

KTEST(multiboot2, rejects_bad_tag_sizes)
{
	struct mbb b;
	mbb_begin(&b);
	mbb_string(&b, MB2_TAG_CMDLINE, "abc");
	uint32_t off = b.off;
	uint8_t *t = mbb_tag(&b, MB2_TAG_BASIC_MEMINFO, 16);
	mbb_end(&b);

	put32(t + 4, 4); /* smaller than a tag header */
	EXPECT_REJECT("size < 8", off);
	put32(t + 4, 0); /* would loop forever if accepted */
	EXPECT_REJECT("size < 8", off);
	put32(t + 4, 0xfffffff8); /* runs far past the end; no overflow */
	EXPECT_REJECT("past total_size", off);
	put32(t + 4, 12); /* too short for its payload */
	EXPECT_REJECT("meminfo", off);
	put32(t + 4, 16);
	struct mb2_info info;
	KEXPECT_EQ(mb2_parse(mbb_buf, &info), 0);

	/* An end tag of the wrong size (the block long enough to hold it). */
	put32(b.p + b.off - 4, 16);
	put32(b.p, b.off + 8);
	EXPECT_REJECT("end tag size", b.off - 8);
}

KTEST(multiboot2, rejects_missing_end_tag)
{
	struct mbb b;
	mbb_begin(&b);
	mbb_string(&b, MB2_TAG_CMDLINE, "abc");
	mbb_string(&b, MB2_TAG_BOOTLOADER_NAME, "loader");
	put32(b.p, b.off); /* block ends after the last tag */
	EXPECT_REJECT("end tag missing", b.off);

	/* An end tag whose type was overwritten is just another tag. */
	mbb_end(&b);
	put32(b.p + b.off - 8, 0x77);
	EXPECT_REJECT("end tag missing", b.off);
}

KTEST(multiboot2, rejects_bad_memory_map)
{
	static const uint32_t bad_sizes[] = { 0, 8, 16, 20, 23, 25, 28 };
	struct mbb b;
	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		mbb_begin(&b);
		uint32_t off = mbb_mmap(&b, 24);
		mbb_end(&b);
		put32(b.p + off + 8, bad_sizes[i]);
		EXPECT_REJECT("entry_size", off);
	}

	/* Entries of 24 bytes in a tag whose size is not 16 + n * 24. */
	mbb_begin(&b);
	uint32_t off = b.off;
	uint8_t *t = mbb_tag(&b, MB2_TAG_MMAP, 16 + 24 + 8);
	put32(t + 8, 24);
	mbb_end(&b);
	EXPECT_REJECT("inside an entry", off);

	/* Header too short to hold entry_size. */
	mbb_begin(&b);
	off = b.off;
	mbb_tag(&b, MB2_TAG_MMAP, 12);
	mbb_end(&b);
	EXPECT_REJECT("shorter", off);

	/* The same rules for the EFI memory map. */
	mbb_begin(&b);
	off = b.off;
	t = mbb_tag(&b, MB2_TAG_EFI_MMAP, 16 + 48);
	put32(t + 8, 36);
	mbb_end(&b);
	EXPECT_REJECT("entry_size", off);
}

KTEST(multiboot2, rejects_unterminated_strings)
{
	struct mbb b;
	mbb_begin(&b);
	uint32_t off = b.off;
	uint8_t *t = mbb_tag(&b, MB2_TAG_CMDLINE, 8 + 4);
	memcpy(t + 8, "abcd", 4); /* no NUL inside the tag */
	mbb_end(&b);
	EXPECT_REJECT("NUL", off);

	mbb_begin(&b);
	off = b.off;
	t = mbb_tag(&b, MB2_TAG_MODULE, 16 + 3);
	memcpy(t + 16, "mod", 3);
	mbb_end(&b);
	EXPECT_REJECT("NUL", off);

	mbb_begin(&b);
	off = b.off;
	mbb_tag(&b, MB2_TAG_BOOTLOADER_NAME, 8); /* empty payload */
	mbb_end(&b);
	EXPECT_REJECT("NUL", off);
}

KTEST(multiboot2, too_many_modules_are_counted)
{
	struct mbb b;
	mbb_begin(&b);
	for (uint32_t i = 0; i < MB2_MAX_MODULES + 3; i++) {
		uint8_t *t = mbb_tag(&b, MB2_TAG_MODULE, 17);
		put32(t + 8, 0x1000 * i);
		put32(t + 12, 0x1000 * i + 0x800);
	}
	mbb_end(&b);
	struct mb2_info info;
	KASSERT_EQ(mb2_parse(mbb_buf, &info), 0);
	KEXPECT_EQ(info.nmodules, MB2_MAX_MODULES);
	KEXPECT_EQ(info.nmodules_dropped, 3);
	KEXPECT_EQ(info.modules[MB2_MAX_MODULES - 1].start,
		   0x1000 * (MB2_MAX_MODULES - 1));
}

KTEST(multiboot2, ranges_for_the_pmm)
{
	struct mbb b;
	struct mb2_info info;
	struct pmm_range r[8];
	size_t dropped;
	build_full(&b);
	KASSERT_EQ(mb2_parse(mbb_buf, &info), 0);

	KASSERT_EQ(mb2_mmap_ranges(&info, true, r, 8, &dropped), 3);
	KEXPECT_EQ(dropped, 0);
	KEXPECT_EQ(r[0].start, 0);
	KEXPECT_EQ(r[0].end, 0x9fc00);
	KEXPECT_EQ(r[1].start, 0x100000);
	KEXPECT_EQ(r[1].end, 0x7fe0000);
	KEXPECT_EQ(r[2].start, 0x100000000ULL);
	KEXPECT_EQ(r[2].end, 0x140000000ULL);
	KASSERT_EQ(mb2_mmap_ranges(&info, false, r, 8, &dropped), 3);
	KEXPECT_EQ(r[0].start, 0x9fc00);
	KEXPECT_EQ(r[2].end, 0x100000000ULL);
	KEXPECT_EQ(mb2_mmap_ranges(&info, true, r, 2, &dropped), 2);
	KEXPECT_EQ(dropped, 1);

	/* The block and the first module; the empty second module has
	 * nothing to reserve. */
	KASSERT_EQ(mb2_boot_ranges(&info, 0x10000, r, 8, &dropped), 2);
	KEXPECT_EQ(r[0].start, 0x10000);
	KEXPECT_EQ(r[0].end, 0x10000 + info.total_size);
	KEXPECT_EQ(r[1].start, 0x200000);
	KEXPECT_EQ(r[1].end, 0x234567);
}

KTEST(multiboot2, ranges_clamp_and_fall_back_to_meminfo)
{
	struct mbb b;
	struct mb2_info info;
	struct pmm_range r[4];
	mbb_begin(&b);
	uint8_t *t = mbb_tag(&b, MB2_TAG_BASIC_MEMINFO, 16);
	put32(t + 8, 639);
	put32(t + 12, 65536);
	mbb_end(&b);
	KASSERT_EQ(mb2_parse(mbb_buf, &info), 0);
	KASSERT_EQ(mb2_mmap_ranges(&info, true, r, 4, NULL), 2);
	KEXPECT_EQ(r[0].end, 639 * 1024);
	KEXPECT_EQ(r[1].start, 0x100000);
	KEXPECT_EQ(r[1].end, 0x100000 + 65536ULL * 1024);
	KEXPECT_EQ(mb2_mmap_ranges(&info, false, r, 4, NULL), 0);

	/* An entry whose end wraps past 2^64 is clamped, an empty one skipped. */
	mbb_begin(&b);
	t = mbb_tag(&b, MB2_TAG_MMAP, 16 + 2 * 24);
	put32(t + 8, 24);
	mbb_mmap_entry(t + 16, 0xfffffffffff00000ULL, 0x200000, MB2_MEMORY_AVAILABLE);
	mbb_mmap_entry(t + 40, 0x100000, 0, MB2_MEMORY_AVAILABLE);
	mbb_end(&b);
	KASSERT_EQ(mb2_parse(mbb_buf, &info), 0);
	KASSERT_EQ(mb2_mmap_ranges(&info, true, r, 4, NULL), 1);
	KEXPECT_EQ(r[0].start, 0xfffffffffff00000ULL);
	KEXPECT_EQ(r[0].end, UINT64_MAX);
}

static bool inside(const struct mb2_info *info, const void *p, uint64_t len)
{
	uintptr_t a = (uintptr_t)p, base = (uintptr_t)info->base;
	return a >= base && a - base <= info->total_size &&
	       len <= info->total_size - (a - base);
}

static uint64_t bounded_strlen(const struct mb2_info *info, const char *s)
{
	uintptr_t end = (uintptr_t)info->base + info->total_size;
	uint64_t n = 0;
	while ((uintptr_t)(s + n) < end && s[n])
		n++;
	return n + 1;
}

/* Random corruption: whatever the parser accepts, every pointer it reports
 * lies inside the block (strings with their NUL, maps with every entry). */
KTEST(multiboot2, corrupted_blocks_stay_in_bounds)
{
	struct ktest_rng rng;
	struct mbb b;
	struct mb2_info info;
	unsigned accepted = 0, rejected = 0;

	ktest_rng_seed(&rng, 0x6d62320a);
	for (int iter = 0; iter < 3000; iter++) {
		build_full(&b);
		uint32_t total = b.off;
		int flips = 1 + (int)ktest_rng_below(&rng, 4);
		for (int f = 0; f < flips; f++) {
			uint32_t at = (uint32_t)ktest_rng_below(&rng, total);
			if (ktest_rng_below(&rng, 2))
				b.p[at] ^= (uint8_t)(1u << ktest_rng_below(&rng, 8));
			else
				b.p[at] = (uint8_t)ktest_rng_next(&rng);
		}
		/* Keep the claimed size inside our buffer: past it is memory
		 * the test does not own, not a parser bug. */
		uint32_t claimed;
		memcpy(&claimed, b.p, 4);
		if (claimed > sizeof(mbb_buf))
			put32(b.p, total);
		if (mb2_parse(mbb_buf, &info) != 0) {
			rejected++;
			KASSERT_NOT_NULL(info.error);
			KASSERT_LT(info.error_offset, info.total_size + 1);
			continue;
		}
		accepted++;
		KASSERT_LE(info.total_size, sizeof(mbb_buf));
		if (info.cmdline) {
			KASSERT_TRUE(inside(&info, info.cmdline, 1));
			KASSERT_TRUE(inside(&info, info.cmdline,
					    bounded_strlen(&info, info.cmdline)));
			KASSERT_EQ(info.cmdline[bounded_strlen(&info, info.cmdline) - 1], 0);
		}
		if (info.bootloader)
			KASSERT_EQ(info.bootloader[bounded_strlen(&info, info.bootloader) - 1], 0);
		for (size_t i = 0; i < info.nmodules; i++)
			KASSERT_EQ(info.modules[i].cmdline[bounded_strlen(
					   &info, info.modules[i].cmdline) - 1], 0);
		if (info.mmap)
			KASSERT_TRUE(inside(&info, info.mmap,
					    (uint64_t)info.mmap_count * info.mmap_entry_size));
		if (info.efi_mmap)
			KASSERT_TRUE(inside(&info, info.efi_mmap,
					    (uint64_t)info.efi_mmap_count * info.efi_desc_size));
		if (info.rsdp_v1)
			KASSERT_TRUE(inside(&info, info.rsdp_v1, info.rsdp_v1_len));
		if (info.rsdp_v2)
			KASSERT_TRUE(inside(&info, info.rsdp_v2, info.rsdp_v2_len));
	}
	ktest_log("corruption: %u accepted, %u rejected", accepted, rejected);
	KEXPECT_GT(accepted, 0);
	KEXPECT_GT(rejected, 0);
}
