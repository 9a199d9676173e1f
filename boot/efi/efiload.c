/*
 * boot/efi/efiload.c - the gnu-efi loader's pure parts (see efiload.h).
 *
 * Everything read from the kernel file or the firmware's memory map is
 * read with el_get*() (byte copies, so nothing unaligned is dereferenced)
 * after a bounds check against the buffer it came from. The memory-map
 * conversion walks the map's boundaries in address order: at each point
 * it asks which descriptors cover it and keeps the most restrictive type
 * until the next boundary, so unsorted and overlapping maps come out
 * sorted and disjoint without any scratch memory (O(n^2) for n
 * descriptors; a firmware map has a few hundred at most). The multiboot2
 * block is written tag by tag like kernel/pvh.c's: {u32 type, u32 size,
 * payload}, each padded to 8 bytes, ending with the end tag {0, 8}.
 * Freestanding: no C library, so it builds into BOOTX64.EFI as is.
 */
#include "boot/efi/efiload.h"

#define PT_LOAD 1
#define PT_NOTE 4

static void el_copy(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	while (n--)
		*d++ = *s++;
}

static void el_zero(void *dst, size_t n)
{
	uint8_t *d = dst;
	while (n--)
		*d++ = 0;
}

static size_t el_strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

static uint16_t get16(const uint8_t *p) { uint16_t v; el_copy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; el_copy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; el_copy(&v, p, 8); return v; }
static void put32(uint8_t *p, uint32_t v) { el_copy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { el_copy(p, &v, 8); }

static uint64_t page_down(uint64_t a) { return a & ~(uint64_t)(EL_PAGE - 1); }
/* Rounded up; an address in the last page of the space stays below 2^64. */
static uint64_t page_up(uint64_t a)
{
	return a > UINT64_MAX - (EL_PAGE - 1) ? page_down(UINT64_MAX) : page_down(a + EL_PAGE - 1);
}

/* Does [off, off + len) lie inside a buffer of size bytes? */
static bool in_file(uint64_t off, uint64_t len, size_t size)
{
	return off <= size && len <= size - off;
}

/* The "spanheap" note's entry, searched in the PT_NOTE segment at
 * [off, off + len) of the file; 0 when absent. */
static uint64_t find_entry_note(const uint8_t *f, uint64_t off, uint64_t len)
{
	static const char name[] = EL_NOTE_NAME;
	uint64_t p = off, end = off + len;
	while (end - p >= 12) {
		uint32_t namesz = get32(f + p), descsz = get32(f + p + 4), type = get32(f + p + 8);
		uint64_t name_at = p + 12;
		uint64_t desc_at = name_at + (((uint64_t)namesz + 3) & ~3ull);
		uint64_t next = desc_at + (((uint64_t)descsz + 3) & ~3ull);
		if (next > end || next <= p)
			return 0;
		if (type == EL_NOTE_EFI64_ENTRY && namesz == sizeof(name) && descsz == 8) {
			bool same = true;
			for (size_t i = 0; i < sizeof(name); i++)
				same = same && f[name_at + i] == (uint8_t)name[i];
			if (same)
				return get64(f + desc_at);
		}
		p = next;
	}
	return 0;
}

static const char *check_header(const uint8_t *f, size_t size, uint64_t file_size)
{
	if (size < 4 || f[0] != 0x7f || f[1] != 'E' || f[2] != 'L' || f[3] != 'F')
		return "not an ELF file (bad magic)";
	if (size < 64 || file_size < 64)
		return "ELF file truncated inside its header";
	if (f[4] != 2)
		return "ELF class is not 64-bit (ELFCLASS64)";
	if (f[5] != 1)
		return "ELF data is not little-endian";
	if (get16(f + 18) != 62)
		return "ELF machine is not x86-64 (EM_X86_64 = 62): wrong architecture";
	if (get16(f + 16) != 2)
		return "ELF type is not an executable (ET_EXEC)";
	if (get16(f + 54) != 56)
		return "ELF program header size is not 56";
	uint16_t phnum = get16(f + 56);
	if (phnum == 0)
		return "ELF file has no program headers";
	if (!in_file(get64(f + 32), (uint64_t)phnum * 56, size))
		return size < file_size ? "ELF program headers too far into the file"
					: "ELF file truncated: program headers past its end";
	return NULL;
}

static bool overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
	return a0 < b1 && b0 < a1;
}

const char *el_check_elf(const void *buf, size_t size, uint64_t file_size,
			 struct el_kernel *k)
{
	const uint8_t *f = buf;
	if (size > file_size)
		size = (size_t)file_size;
	const char *why = check_header(f, size, file_size);
	el_zero(k, sizeof(*k));
	if (why)
		return why;
	uint64_t phoff = get64(f + 32);
	uint16_t phnum = get16(f + 56);
	for (uint16_t i = 0; i < phnum; i++) {
		const uint8_t *ph = f + phoff + (uint64_t)i * 56;
		uint32_t type = get32(ph);
		uint64_t offset = get64(ph + 8), paddr = get64(ph + 24);
		uint64_t filesz = get64(ph + 32), memsz = get64(ph + 40);
		if (type == PT_NOTE) {
			if (!in_file(offset, filesz, size))
				return size < file_size ? "ELF note segment too far into the file"
							: "ELF file truncated: a note segment runs past its end";
			if (!k->entry64)
				k->entry64 = find_entry_note(f, offset, filesz);
			continue;
		}
		if (type != PT_LOAD || memsz == 0)
			continue;
		if (filesz > memsz)
			return "ELF segment has more file bytes than memory bytes";
		if (offset > file_size || filesz > file_size - offset)
			return "ELF file truncated: a segment's bytes run past its end";
		if (paddr + memsz < paddr || page_up(paddr + memsz) < paddr + memsz)
			return "ELF segment wraps around the top of the address space";
		for (unsigned j = 0; j < k->nseg; j++)
			if (overlap(page_down(paddr), page_up(paddr + memsz),
				    page_down(k->seg[j].paddr),
				    page_up(k->seg[j].paddr + k->seg[j].memsz)))
				return "ELF segments overlap (or share a page)";
		if (k->nseg == EL_MAX_SEGMENTS)
			return "ELF file has too many loadable segments";
		k->seg[k->nseg++] = (struct el_segment){ paddr, memsz, offset, filesz };
	}
	if (k->nseg == 0)
		return "ELF file has no loadable segment";
	if (!k->entry64)
		return "no \"spanheap\" UEFI entry note (boot/boot.S _start_efi64): not a spanheap kernel?";
	bool entry_loaded = false;
	for (unsigned j = 0; j < k->nseg; j++)
		entry_loaded = entry_loaded || (k->entry64 >= k->seg[j].paddr &&
				k->entry64 - k->seg[j].paddr < k->seg[j].filesz);
	if (!entry_loaded)
		return "the UEFI entry point is not inside a loaded segment";
	return NULL;
}

const char *el_check_segment(const struct el_segment *s, struct el_range loader,
			     const struct el_range *ram, size_t nram)
{
	uint64_t start = page_down(s->paddr), end = page_up(s->paddr + s->memsz);
	if (overlap(start, end, loader.start, loader.end))
		return "ELF segment overlaps the loader itself";
	/* Covered by RAM: step from range to range until past the end. */
	uint64_t cur = start;
	while (cur < end) {
		uint64_t next = cur;
		for (size_t i = 0; i < nram; i++)
			if (ram[i].start <= cur && ram[i].end > next)
				next = ram[i].end;
		if (next == cur)
			return "ELF segment lies (partly) outside the RAM a kernel may use";
		cur = next;
	}
	return NULL;
}

bool el_efi_type_placeable(uint32_t t)
{
	return t == EL_EFI_CONVENTIONAL || t == EL_EFI_BS_CODE || t == EL_EFI_BS_DATA ||
	       t == EL_EFI_ACPI_NVS;
}

uint32_t el_efi_to_mb2_type(uint32_t t)
{
	switch (t) {
	case EL_EFI_CONVENTIONAL:
	case EL_EFI_LOADER_CODE:
	case EL_EFI_LOADER_DATA:
	case EL_EFI_BS_CODE:
	case EL_EFI_BS_DATA:
		return 1;
	case EL_EFI_ACPI_RECLAIM:
		return 3;
	case EL_EFI_ACPI_NVS:
		return 4;
	case EL_EFI_UNUSABLE:
		return 5;
	default:  /* runtime services, MMIO, PAL, persistent, reserved, unknown */
		return 2;
	}
}

/* How restrictive a multiboot2 type is: the larger wins an overlap. */
static unsigned rank(uint32_t mb2_type)
{
	switch (mb2_type) {
	case 1: return 1;
	case 3: return 2;
	case 4: return 3;
	case 2: return 4;
	default: return 5;
	}
}

static void desc_range(const uint8_t *d, uint64_t *start, uint64_t *end)
{
	uint64_t s = get64(d + 8), pages = get64(d + 24);
	*start = s;
	*end = pages > (UINT64_MAX - s) / EL_PAGE ? page_down(UINT64_MAX) : s + pages * EL_PAGE;
	if (*end < s)
		*end = s;
}

long el_efi_map_to_mb2(const void *map, size_t n, size_t desc_size,
		       uint8_t *out, size_t max)
{
	const uint8_t *m = map;
	if (desc_size < 40 || desc_size % 8 != 0)
		return -1;
	uint64_t cur = UINT64_MAX;
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		uint64_t s, e;
		desc_range(m + i * desc_size, &s, &e);
		if (e > s && s <= cur) {
			cur = s;
			any = true;
		}
	}
	long count = 0;
	while (any) {
		unsigned best = 0;
		uint32_t best_type = 0;
		uint64_t next = cur;
		for (size_t i = 0; i < n; i++) {
			uint64_t s, e;
			desc_range(m + i * desc_size, &s, &e);
			if (e <= s)
				continue;
			if (s <= cur && cur < e) {
				uint32_t t = el_efi_to_mb2_type(get32(m + i * desc_size));
				if (rank(t) > best) {
					best = rank(t);
					best_type = t;
				}
			}
			if (s > cur && (next == cur || s < next))
				next = s;
			if (e > cur && (next == cur || e < next))
				next = e;
		}
		if (next == cur)
			break;
		if (best) {
			uint8_t *last = count ? out + (count - 1) * 24 : NULL;
			if (last && get32(last + 16) == best_type && get64(last) + get64(last + 8) == cur) {
				put64(last + 8, get64(last + 8) + (next - cur));
			} else {
				if ((size_t)count == max)
					return -1;
				uint8_t *o = out + count * 24;
				put64(o, cur);
				put64(o + 8, next - cur);
				put32(o + 16, best_type);
				put32(o + 20, 0);
				count++;
			}
		}
		cur = next;
	}
	return count;
}

bool el_has_word(const char *line, const char *word)
{
	size_t wl = el_strlen(word);
	for (const char *p = line; *p; ) {
		while (*p == ' ' || *p == '\t')
			p++;
		size_t i = 0;
		while (i < wl && p[i] == word[i])
			i++;
		if (i == wl && wl && (p[i] == 0 || p[i] == ' ' || p[i] == '\t' || p[i] == '='))
			return true;
		while (*p && *p != ' ' && *p != '\t')
			p++;
	}
	return false;
}

/* ------------------------------------------------ the multiboot2 block -- */

struct builder {
	uint8_t *base;
	size_t size;
	size_t off;
};

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

static uint8_t *new_tag(struct builder *b, uint32_t type, size_t size)
{
	if (pad8(size) > b->size - b->off)
		return NULL;
	uint8_t *t = b->base + b->off;
	el_zero(t, pad8(size));
	put32(t, type);
	put32(t + 4, (uint32_t)size);
	b->off += pad8(size);
	return t;
}

static bool add_string(struct builder *b, uint32_t type, const char *s)
{
	size_t len = el_strlen(s);
	uint8_t *t = new_tag(b, type, 8 + len + 1);
	if (t)
		el_copy(t + 8, s, len);
	return t != NULL;
}

#define RSDP_V1_LEN 20
#define RSDP_V2_LEN 36
#define FB_TAG_SIZE 38

size_t el_mb2_size(const struct el_boot_info *bi)
{
	size_t n = 8;
	n += pad8(8 + el_strlen(bi->loader_name) + 1);
	if (bi->cmdline)
		n += pad8(8 + el_strlen(bi->cmdline) + 1);
	n += 16 + 2 * bi->efi_map_n * 24;
	n += pad8(8 + RSDP_V2_LEN) + pad8(FB_TAG_SIZE) + 16;
	n += 16 + bi->efi_map_n * bi->efi_desc_size;
	return n + 8;
}

static uint32_t fail(const char **error, const char *why)
{
	*error = why;
	return 0;
}

uint32_t el_build_mb2(const struct el_boot_info *bi, void *out, size_t size,
		      const char **error)
{
	struct builder b = { out, size, 8 };
	*error = NULL;
	if ((uintptr_t)out % 8 != 0 || size < 16 || size > (16u << 20))
		return fail(error, "multiboot2 buffer unaligned or of an impossible size");
	if (!add_string(&b, 2, bi->loader_name))
		return fail(error, "no room for the loader name");
	if (bi->cmdline && !add_string(&b, 1, bi->cmdline))
		return fail(error, "no room for the command line");

	size_t room = (b.size - b.off) >= 16 ? (b.size - b.off - 16) / 24 : 0;
	long n = el_efi_map_to_mb2(bi->efi_map, bi->efi_map_n, bi->efi_desc_size,
				   b.base + b.off + 16, room);
	if (n <= 0)
		return fail(error, n < 0 ? "no room for the memory map (or bad descriptor size)"
					 : "the UEFI memory map is empty");
	uint8_t *t = new_tag(&b, 6, 16 + (size_t)n * 24);  /* entries already in place */
	put32(t + 8, 24);
	put32(t + 12, 0);
	/* new_tag zeroed the entries it now owns: convert again in place. */
	el_efi_map_to_mb2(bi->efi_map, bi->efi_map_n, bi->efi_desc_size, t + 16, (size_t)n);

	if (bi->rsdp) {
		const uint8_t *r = bi->rsdp;
		bool v2 = r[15] >= 2;
		t = new_tag(&b, v2 ? 15 : 14, 8 + (v2 ? RSDP_V2_LEN : RSDP_V1_LEN));
		if (!t)
			return fail(error, "no room for the ACPI RSDP");
		el_copy(t + 8, r, v2 ? RSDP_V2_LEN : RSDP_V1_LEN);
	}
	if (bi->has_fb) {
		t = new_tag(&b, 8, FB_TAG_SIZE);
		if (!t)
			return fail(error, "no room for the framebuffer");
		put64(t + 8, bi->fb_addr);
		put32(t + 16, bi->fb_pitch);
		put32(t + 20, bi->fb_width);
		put32(t + 24, bi->fb_height);
		t[28] = 32;               /* bpp */
		t[29] = 1;                /* direct RGB */
		t[32] = bi->fb_red_pos;   t[33] = 8;
		t[34] = bi->fb_green_pos; t[35] = 8;
		t[36] = bi->fb_blue_pos;  t[37] = 8;
	}
	if (bi->efi_system_table) {
		t = new_tag(&b, 12, 16);
		if (!t)
			return fail(error, "no room for the EFI system table pointer");
		put64(t + 8, bi->efi_system_table);
	}
	t = new_tag(&b, 17, 16 + bi->efi_map_n * bi->efi_desc_size);
	if (!t)
		return fail(error, "no room for the EFI memory map");
	put32(t + 8, (uint32_t)bi->efi_desc_size);
	put32(t + 12, bi->efi_desc_version);
	el_copy(t + 16, bi->efi_map, bi->efi_map_n * bi->efi_desc_size);
	if (!new_tag(&b, 0, 8))
		return fail(error, "no room for the end tag");
	put32(b.base, (uint32_t)b.off);
	put32(b.base + 4, 0);
	return (uint32_t)b.off;
}
