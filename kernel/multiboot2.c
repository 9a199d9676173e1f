/*
 * kernel/multiboot2.c - walk the multiboot2 boot information, trusting
 * nothing.
 *
 * The block is a chain of 8-byte-aligned tags that only the loader vouches
 * for. Every read below is preceded by a check that it lies inside
 * [base, base + total_size): the tag header against the bytes left, the
 * payload against the tag's own size, each string against its tag (it must
 * end with a NUL inside it), each map against its entry size. Values are
 * read with memcpy so that no unaligned pointer is ever dereferenced. The
 * first violation stops the walk and is reported through info->error.
 */
#include "kernel/multiboot2.h"
#include "lib/string.h"
#ifndef SPANHEAP_HOSTED
#include "kernel/printk.h"
#endif

static uint32_t read_u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t read_u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static int fail(struct mb2_info *info, const char *why, uint32_t offset)
{
	info->error = why;
	info->error_offset = offset;
	return -1;
}

/* A string payload must hold its terminating NUL inside the tag. */
static const char *tag_string(const uint8_t *s, uint32_t len)
{
	if (len == 0 || !memchr(s, 0, len))
		return NULL;
	return (const char *)s;
}

/* Tag 6 and tag 17 share a shape: {entry_size, version, entries...}. */
static int parse_table(struct mb2_info *info, const uint8_t *tag, uint32_t size,
		       uint32_t off, uint32_t min_entry, const uint8_t **first,
		       uint32_t *entry_size, uint32_t *version, size_t *count)
{
	if (size < 16)
		return fail(info, "memory map tag shorter than its header", off);
	uint32_t esize = read_u32(tag + 8);
	if (esize < min_entry || esize % 8 != 0)
		return fail(info, "memory map entry_size impossible", off);
	if ((size - 16) % esize != 0)
		return fail(info, "memory map ends inside an entry", off);
	*first = tag + 16;
	*entry_size = esize;
	*version = read_u32(tag + 12);
	*count = (size - 16) / esize;
	return 0;
}

static int parse_module(struct mb2_info *info, const uint8_t *tag,
			uint32_t size, uint32_t off)
{
	if (size < 17)
		return fail(info, "module tag too short", off);
	uint32_t start = read_u32(tag + 8), end = read_u32(tag + 12);
	const char *cmdline = tag_string(tag + 16, size - 16);
	if (!cmdline)
		return fail(info, "module string not NUL-terminated", off);
	if (end < start)
		return fail(info, "module ends before it starts", off);
	if (info->nmodules == MB2_MAX_MODULES) {
		info->nmodules_dropped++;
		return 0;
	}
	struct mb2_module *m = &info->modules[info->nmodules++];
	m->start = start;
	m->end = end;
	m->cmdline = cmdline;
	return 0;
}

/* Record one tag's payload; size is already known to fit the block. */
static int parse_tag(struct mb2_info *info, const uint8_t *tag, uint32_t type,
		     uint32_t size, uint32_t off)
{
	switch (type) {
	case MB2_TAG_CMDLINE:
	case MB2_TAG_BOOTLOADER_NAME: {
		const char *s = tag_string(tag + 8, size - 8);
		if (!s)
			return fail(info, "string tag not NUL-terminated", off);
		if (type == MB2_TAG_CMDLINE)
			info->cmdline = s;
		else
			info->bootloader = s;
		return 0;
	}
	case MB2_TAG_MODULE:
		return parse_module(info, tag, size, off);
	case MB2_TAG_BASIC_MEMINFO:
		if (size < 16)
			return fail(info, "basic meminfo tag too short", off);
		info->has_meminfo = true;
		info->mem_lower_kib = read_u32(tag + 8);
		info->mem_upper_kib = read_u32(tag + 12);
		return 0;
	case MB2_TAG_MMAP:
		if (info->mmap)
			return 0; /* keep the first map */
		return parse_table(info, tag, size, off, MB2_MMAP_ENTRY_MIN,
				   &info->mmap, &info->mmap_entry_size,
				   &info->mmap_entry_version, &info->mmap_count);
	case MB2_TAG_EFI_MMAP:
		if (info->efi_mmap)
			return 0;
		return parse_table(info, tag, size, off, MB2_EFI_DESC_MIN,
				   &info->efi_mmap, &info->efi_desc_size,
				   &info->efi_desc_version, &info->efi_mmap_count);
	case MB2_TAG_EFI64:
		if (size < 16)
			return fail(info, "EFI64 system table tag too short", off);
		info->has_efi64 = true;
		info->efi64_system_table = read_u64(tag + 8);
		return 0;
	case MB2_TAG_ACPI_OLD:
		if (size < 8 + MB2_RSDP_V1_LEN)
			return fail(info, "ACPI old RSDP tag too short", off);
		info->rsdp_v1 = tag + 8;
		info->rsdp_v1_len = size - 8;
		return 0;
	case MB2_TAG_ACPI_NEW:
		if (size < 8 + MB2_RSDP_V2_LEN)
			return fail(info, "ACPI new RSDP tag too short", off);
		info->rsdp_v2 = tag + 8;
		info->rsdp_v2_len = size - 8;
		return 0;
	case MB2_TAG_EFI_BS:
		info->efi_boot_services = true;
		return 0;
	default:
		info->nunknown++;
		return 0;
	}
}

int mb2_parse(const void *mbi, struct mb2_info *out)
{
	memset(out, 0, sizeof(*out));
	if (!mbi)
		return fail(out, "no boot information (NULL)", 0);
	if ((uintptr_t)mbi % 8 != 0)
		return fail(out, "boot information not 8-byte aligned", 0);

	const uint8_t *base = mbi;
	uint32_t total = read_u32(base);
	out->base = base;
	out->total_size = total;
	if (total < 16)
		return fail(out, "total_size smaller than header + end tag", 0);
	if (total > MB2_MAX_TOTAL_SIZE)
		return fail(out, "total_size implausibly large", 0);

	uint32_t off = 8;
	for (;;) {
		if (total - off < 8)
			return fail(out, "end tag missing", off);
		const uint8_t *tag = base + off;
		uint32_t type = read_u32(tag), size = read_u32(tag + 4);
		if (size < 8)
			return fail(out, "tag size < 8", off);
		if (size > total - off)
			return fail(out, "tag runs past total_size", off);
		out->ntags++;
		if (type == MB2_TAG_END) {
			if (size != 8)
				return fail(out, "end tag size is not 8", off);
			return 0;
		}
		if (parse_tag(out, tag, type, size, off) != 0)
			return -1;
		/* Next tag on an 8-byte boundary; size <= total <= 16 MiB, so
		 * this cannot overflow. */
		off += (size + 7) & ~7u;
		if (off >= total)
			return fail(out, "end tag missing", off);
	}
}

bool mb2_mmap_get(const struct mb2_info *info, size_t i, struct mb2_mmap_entry *e)
{
	if (!info->mmap || i >= info->mmap_count)
		return false;
	const uint8_t *p = info->mmap + i * info->mmap_entry_size;
	e->addr = read_u64(p);
	e->len = read_u64(p + 8);
	e->type = read_u32(p + 16);
	return true;
}

bool mb2_efi_mmap_get(const struct mb2_info *info, size_t i, struct mb2_efi_desc *d)
{
	if (!info->efi_mmap || i >= info->efi_mmap_count)
		return false;
	const uint8_t *p = info->efi_mmap + i * info->efi_desc_size;
	d->type = read_u32(p);
	d->phys_start = read_u64(p + 8);
	d->virt_start = read_u64(p + 16);
	d->num_pages = read_u64(p + 24);
	d->attribute = read_u64(p + 32);
	return true;
}

const char *mb2_mmap_type_name(uint32_t type)
{
	switch (type) {
	case MB2_MEMORY_AVAILABLE:        return "usable";
	case MB2_MEMORY_RESERVED:         return "reserved";
	case MB2_MEMORY_ACPI_RECLAIMABLE: return "ACPI data";
	case MB2_MEMORY_NVS:              return "ACPI NVS";
	case MB2_MEMORY_BADRAM:           return "unusable";
	default:                          return "unknown";
	}
}

uint64_t mb2_mmap_total(const struct mb2_info *info, uint32_t type)
{
	struct mb2_mmap_entry e;
	uint64_t sum = 0;
	for (size_t i = 0; mb2_mmap_get(info, i, &e); i++)
		if (e.type == type)
			sum += e.len;
	return sum;
}

static void put_range(struct pmm_range *out, size_t max, size_t *n,
		      size_t *dropped, uint64_t start, uint64_t len)
{
	if (len == 0)
		return;
	uint64_t end = start + len < start ? UINT64_MAX : start + len;
	if (*n < max) {
		out[*n].start = start;
		out[*n].end = end;
		(*n)++;
	} else if (dropped) {
		(*dropped)++;
	}
}

size_t mb2_mmap_ranges(const struct mb2_info *info, bool usable,
		       struct pmm_range *out, size_t max, size_t *dropped)
{
	struct mb2_mmap_entry e;
	size_t n = 0;

	if (dropped)
		*dropped = 0;
	if (!info->mmap) {
		if (usable && info->has_meminfo) {
			put_range(out, max, &n, dropped, 0,
				  (uint64_t)info->mem_lower_kib << 10);
			put_range(out, max, &n, dropped, 0x100000,
				  (uint64_t)info->mem_upper_kib << 10);
		}
		return n;
	}
	for (size_t i = 0; mb2_mmap_get(info, i, &e); i++)
		if ((e.type == MB2_MEMORY_AVAILABLE) == usable)
			put_range(out, max, &n, dropped, e.addr, e.len);
	return n;
}

size_t mb2_boot_ranges(const struct mb2_info *info, uint64_t mbi_phys,
		       struct pmm_range *out, size_t max, size_t *dropped)
{
	size_t n = 0;

	if (dropped)
		*dropped = 0;
	put_range(out, max, &n, dropped, mbi_phys, info->total_size);
	for (size_t i = 0; i < info->nmodules; i++)
		put_range(out, max, &n, dropped, info->modules[i].start,
			  info->modules[i].end - info->modules[i].start);
	return n;
}

#ifndef SPANHEAP_HOSTED
void mb2_print_memmap(const struct mb2_info *info)
{
	struct mb2_mmap_entry e;

	if (!info->mmap) {
		printk("multiboot2: no memory map\n");
		return;
	}
	printk("multiboot2: memory map, %zu entries:\n", info->mmap_count);
	for (size_t i = 0; mb2_mmap_get(info, i, &e); i++) {
		if (e.len == 0) {
			printk("multiboot2: [mem 0x%016llx, empty] %s\n",
			       (unsigned long long)e.addr, mb2_mmap_type_name(e.type));
			continue;
		}
		uint64_t last = e.addr + e.len - 1;
		if (last < e.addr)
			last = ~0ULL; /* clamp an entry that wraps */
		if (e.type <= MB2_MEMORY_BADRAM && e.type != 0)
			printk("multiboot2: [mem 0x%016llx-0x%016llx] %s\n",
			       (unsigned long long)e.addr, (unsigned long long)last,
			       mb2_mmap_type_name(e.type));
		else
			printk("multiboot2: [mem 0x%016llx-0x%016llx] type %u\n",
			       (unsigned long long)e.addr, (unsigned long long)last,
			       e.type);
	}
	printk("multiboot2: %llu KiB usable\n",
	       (unsigned long long)(mb2_mmap_total(info, MB2_MEMORY_AVAILABLE) >> 10));
}

void mb2_print_info(const struct mb2_info *info)
{
	printk("multiboot2: %u bytes of boot information, %u tags\n",
	       info->total_size, info->ntags);
	if (info->bootloader)
		printk("multiboot2: boot loader: %s\n", info->bootloader);
	if (info->cmdline)
		printk("multiboot2: command line: \"%s\"\n", info->cmdline);
	if (info->has_meminfo)
		printk("multiboot2: basic meminfo: lower %u KiB, upper %u KiB\n",
		       info->mem_lower_kib, info->mem_upper_kib);
	for (size_t i = 0; i < info->nmodules; i++)
		printk("multiboot2: module [0x%08x-0x%08x) %s\n",
		       info->modules[i].start, info->modules[i].end,
		       info->modules[i].cmdline);
	if (info->nmodules_dropped)
		printk("multiboot2: %zu more modules ignored\n",
		       info->nmodules_dropped);
	if (info->rsdp_v1)
		printk("multiboot2: ACPI 1.0 RSDP copy (%zu bytes)\n",
		       info->rsdp_v1_len);
	if (info->rsdp_v2)
		printk("multiboot2: ACPI 2.0 RSDP copy (%zu bytes)\n",
		       info->rsdp_v2_len);
	if (info->has_efi64)
		printk("multiboot2: EFI64 system table at 0x%llx\n",
		       (unsigned long long)info->efi64_system_table);
	if (info->efi_mmap)
		printk("multiboot2: EFI memory map, %zu descriptors of %u bytes\n",
		       info->efi_mmap_count, info->efi_desc_size);
	mb2_print_memmap(info);
}
#endif
