/*
 * kernel/multiboot2.h - what the boot loader told us, parsed safely.
 *
 * A multiboot2 boot loader (GRUB) hands the kernel a "boot information"
 * block: an 8-byte header (total_size, reserved) followed by tags, each
 * {u32 type, u32 size, payload}, each starting on an 8-byte boundary, the
 * last one the end tag {0, 8}. mb2_parse() walks that block once, checks
 * every tag against total_size before reading it, and records where the
 * interesting payloads are (memory map, command line, boot loader name,
 * modules, basic meminfo, EFI memory map, ACPI RSDP copies, EFI system
 * table). Nothing is copied: the pointers in struct mb2_info point into the
 * boot information, which must therefore stay reserved while they are used.
 * A malformed block (tag size < 8, a tag running past the end, no end tag,
 * a memory map whose entry size is impossible, a string without its NUL) is
 * rejected with a message and the offset of the bad tag.
 */
#ifndef KERNEL_MULTIBOOT2_H
#define KERNEL_MULTIBOOT2_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "kernel/pmm.h"     /* struct pmm_range */

/* Value in EAX when a multiboot2 loader jumps to the kernel. */
#define MB2_BOOTLOADER_MAGIC 0x36d76289u

/* Tag types (multiboot2 specification, section 3.6). */
#define MB2_TAG_END             0
#define MB2_TAG_CMDLINE         1
#define MB2_TAG_BOOTLOADER_NAME 2
#define MB2_TAG_MODULE          3
#define MB2_TAG_BASIC_MEMINFO   4
#define MB2_TAG_BOOTDEV         5
#define MB2_TAG_MMAP            6
#define MB2_TAG_FRAMEBUFFER     8
#define MB2_TAG_EFI32           11
#define MB2_TAG_EFI64           12
#define MB2_TAG_ACPI_OLD        14
#define MB2_TAG_ACPI_NEW        15
#define MB2_TAG_EFI_MMAP        17
#define MB2_TAG_EFI_BS          18
#define MB2_TAG_LOAD_BASE_ADDR  21

/* Memory map entry types (tag 6). */
#define MB2_MEMORY_AVAILABLE        1
#define MB2_MEMORY_RESERVED         2
#define MB2_MEMORY_ACPI_RECLAIMABLE 3
#define MB2_MEMORY_NVS              4
#define MB2_MEMORY_BADRAM           5

/* Bounds the parser enforces. */
#define MB2_MAX_TOTAL_SIZE  (16u << 20) /* a sane boot information block */
#define MB2_MAX_MODULES     16
#define MB2_MMAP_ENTRY_MIN  24          /* base, length, type, reserved */
#define MB2_EFI_DESC_MIN    40          /* UEFI EFI_MEMORY_DESCRIPTOR */
#define MB2_RSDP_V1_LEN     20
#define MB2_RSDP_V2_LEN     36

/* One memory-map entry, copied out of the (possibly unaligned) map. */
struct mb2_mmap_entry {
	uint64_t addr;
	uint64_t len;
	uint32_t type;
};

/* One UEFI memory descriptor, copied out of the EFI memory map. */
struct mb2_efi_desc {
	uint32_t type;
	uint64_t phys_start;
	uint64_t virt_start;
	uint64_t num_pages;
	uint64_t attribute;
};

/* A boot module (tag 3): [start, end) physical, with its command line. */
struct mb2_module {
	uint32_t start;
	uint32_t end;
	const char *cmdline;
};

struct mb2_info {
	const uint8_t *base;       /* the boot information block */
	uint32_t total_size;
	uint32_t ntags;            /* tags seen, end tag included */
	uint32_t nunknown;         /* tags of a type we do not use */

	const char *cmdline;       /* NULL when absent */
	const char *bootloader;    /* NULL when absent */

	bool has_meminfo;
	uint32_t mem_lower_kib;    /* basic meminfo (tag 4) */
	uint32_t mem_upper_kib;

	const uint8_t *mmap;       /* first entry of tag 6, NULL when absent */
	uint32_t mmap_entry_size;
	uint32_t mmap_entry_version;
	size_t mmap_count;

	struct mb2_module modules[MB2_MAX_MODULES];
	size_t nmodules;           /* kept, at most MB2_MAX_MODULES */
	size_t nmodules_dropped;   /* beyond MB2_MAX_MODULES */

	const uint8_t *efi_mmap;   /* first descriptor of tag 17, or NULL */
	uint32_t efi_desc_size;
	uint32_t efi_desc_version;
	size_t efi_mmap_count;

	const void *rsdp_v1;       /* copy of the ACPI 1.0 RSDP (tag 14) */
	const void *rsdp_v2;       /* copy of the ACPI 2.0+ RSDP (tag 15) */
	size_t rsdp_v1_len, rsdp_v2_len;

	bool has_efi64;
	uint64_t efi64_system_table; /* tag 12 */
	bool efi_boot_services;      /* tag 18: boot services not exited */

	const char *error;         /* NULL, or why the block was rejected */
	uint32_t error_offset;     /* byte offset of the offending tag */
};

/*
 * Parse the boot information at mbi into *out. Returns 0 on success;
 * -1 when the block is malformed, with out->error and out->error_offset set
 * (fields parsed before the bad tag stay filled but must not be trusted).
 */
int mb2_parse(const void *mbi, struct mb2_info *out);

/* Entry i (< mmap_count) of the memory map; false when out of range. */
bool mb2_mmap_get(const struct mb2_info *info, size_t i, struct mb2_mmap_entry *e);

/* Descriptor i (< efi_mmap_count) of the EFI memory map. */
bool mb2_efi_mmap_get(const struct mb2_info *info, size_t i, struct mb2_efi_desc *d);

/* Name of a memory-map entry type, as Linux prints it ("usable", ...). */
const char *mb2_mmap_type_name(uint32_t type);

/* Sum of the lengths of the entries of the given type. */
uint64_t mb2_mmap_total(const struct mb2_info *info, uint32_t type);

/*
 * The memory map as pmm ranges [start, end): with usable true, the
 * "available" entries; with usable false, every other entry, which the
 * caller should pass to pmm_init as reserved, so that a firmware map whose
 * entries overlap never gets a reserved byte handed out. Without a memory
 * map, the usable ranges come from basic meminfo. Entries whose end would
 * wrap are clamped. Returns the number written (at most max); more are
 * counted in *dropped when dropped is not NULL.
 */
size_t mb2_mmap_ranges(const struct mb2_info *info, bool usable,
		       struct pmm_range *out, size_t max, size_t *dropped);

/* What the loader's own data occupies, physical: the boot information
 * block (at mbi_phys) and every module. Same return convention. */
size_t mb2_boot_ranges(const struct mb2_info *info, uint64_t mbi_phys,
		       struct pmm_range *out, size_t max, size_t *dropped);

#ifndef SPANHEAP_HOSTED
/* Print the memory map like Linux's e820 table:
 *   multiboot2: [mem 0x0000000000000000-0x000000000009fbff] usable */
void mb2_print_memmap(const struct mb2_info *info);
/* Print the loader, command line, modules, ACPI/EFI tags and the map. */
void mb2_print_info(const struct mb2_info *info);
#endif

#endif
