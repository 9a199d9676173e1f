/*
 * kernel/pvh.c - convert PVH's hvm_start_info into a multiboot2 block (see
 * pvh.h for the why).
 *
 * The output is written tag by tag through a small builder that knows how
 * much room is left: each tag is {u32 type, u32 size, payload}, padded to
 * 8 bytes, and the block ends with the end tag {0, 8}; the header's
 * total_size is filled in last. The loader's structures are copied with
 * memcpy (nothing it gives is assumed aligned), and the command line is
 * searched for its NUL within PVH_MAX_CMDLINE bytes only. Freestanding:
 * memcpy, memset and strnlen from lib/ (the C library's in the hosted test).
 */
#include "kernel/pvh.h"
#include "kernel/multiboot2.h"
#include "lib/string.h"

struct mb2_builder {
	uint8_t *base;
	size_t size;
	uint32_t off;             /* next tag */
};

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

static const void *phys(uint64_t paddr, uint64_t phys_offset)
{
	return (const void *)(uintptr_t)(paddr + phys_offset);
}

/* Room for a tag of size bytes? Then write its header and return it. */
static uint8_t *new_tag(struct mb2_builder *b, uint32_t type, uint32_t size)
{
	uint32_t padded = (size + 7) & ~7u;
	if (padded > b->size - b->off)
		return NULL;
	uint8_t *t = b->base + b->off;
	memset(t, 0, padded);
	put32(t, type);
	put32(t + 4, size);
	b->off += padded;
	return t;
}

static int add_string(struct mb2_builder *b, uint32_t type, const char *s, size_t len)
{
	uint8_t *t = new_tag(b, type, 8 + (uint32_t)len + 1);
	if (!t)
		return -1;
	memcpy(t + 8, s, len);
	t[8 + len] = 0;
	return 0;
}

static int add_memmap(struct mb2_builder *b, const struct hvm_start_info *si,
		      uint64_t phys_offset)
{
	if (si->memmap_entries > (b->size - b->off) / 24)
		return -1;
	uint8_t *t = new_tag(b, MB2_TAG_MMAP, 16 + si->memmap_entries * 24);
	if (!t)
		return -1;
	put32(t + 8, 24);             /* entry_size */
	put32(t + 12, 0);             /* entry_version */
	const uint8_t *in = phys(si->memmap_paddr, phys_offset);
	for (uint32_t i = 0; i < si->memmap_entries; i++) {
		struct hvm_memmap_table_entry e;
		memcpy(&e, in + i * sizeof(e), sizeof(e));
		uint8_t *o = t + 16 + i * 24;
		put64(o, e.addr);
		put64(o + 8, e.size);
		put32(o + 16, e.type);
		put32(o + 20, 0);
	}
	return 0;
}

/* The RSDP's revision (byte 15) says which multiboot2 tag carries it. */
static int add_rsdp(struct mb2_builder *b, uint64_t rsdp_paddr, uint64_t phys_offset)
{
	const uint8_t *rsdp = phys(rsdp_paddr, phys_offset);
	bool v2 = rsdp[15] >= 2;
	uint32_t len = v2 ? PVH_RSDP_V2_LEN : PVH_RSDP_V1_LEN;
	uint8_t *t = new_tag(b, v2 ? MB2_TAG_ACPI_NEW : MB2_TAG_ACPI_OLD, 8 + len);
	if (!t)
		return -1;
	memcpy(t + 8, rsdp, len);
	return 0;
}

static uint32_t fail(const char **error, const char *why)
{
	*error = why;
	return 0;
}

uint32_t pvh_to_mb2(uint64_t si_paddr, uint64_t phys_offset, void *out,
		    size_t out_size, const char **error)
{
	static const char loader[] = "PVH (hvm_start_info)";
	struct hvm_start_info si;
	struct mb2_builder b = { out, out_size, 8 };

	*error = NULL;
	if ((uintptr_t)out % 8 != 0 || out_size < 16 || out_size > MB2_MAX_TOTAL_SIZE)
		return fail(error, "output buffer unaligned or of an impossible size");
	if (si_paddr == 0)
		return fail(error, "no start information (EBX = 0)");
	memcpy(&si, phys(si_paddr, phys_offset), sizeof(si));
	if (si.magic != PVH_START_MAGIC)
		return fail(error, "start information magic is not 0x336ec578");
	if (si.version < 1)
		return fail(error, "start information version 0 has no memory map");
	if (si.memmap_paddr == 0 || si.memmap_entries == 0)
		return fail(error, "start information has an empty memory map");

	if (add_string(&b, MB2_TAG_BOOTLOADER_NAME, loader, sizeof(loader) - 1) != 0)
		return fail(error, "no room for the boot loader name");
	if (si.cmdline_paddr) {
		const char *s = phys(si.cmdline_paddr, phys_offset);
		size_t len = strnlen(s, PVH_MAX_CMDLINE);
		if (len == PVH_MAX_CMDLINE)
			return fail(error, "command line longer than PVH_MAX_CMDLINE");
		if (add_string(&b, MB2_TAG_CMDLINE, s, len) != 0)
			return fail(error, "no room for the command line");
	}
	if (add_memmap(&b, &si, phys_offset) != 0)
		return fail(error, "no room for the memory map");
	if (si.rsdp_paddr && add_rsdp(&b, si.rsdp_paddr, phys_offset) != 0)
		return fail(error, "no room for the ACPI RSDP");
	if (!new_tag(&b, MB2_TAG_END, 8))
		return fail(error, "no room for the end tag");
	put32(b.base, b.off);         /* total_size */
	put32(b.base + 4, 0);         /* reserved */
	return b.off;
}
