/*
 * boot/efi/efiload.h - the pure parts of the gnu-efi loader (BOOTX64.EFI):
 * what can be decided from bytes alone, without calling the firmware.
 *
 * boot/efi/main.c does the firmware's part (files, pages, memory map,
 * ExitBootServices) and calls these to check the kernel ELF, find the
 * kernel's UEFI entry (the "spanheap" ELF note, boot/boot.S), convert
 * UEFI's memory map into a multiboot2 one and write the multiboot2
 * information block the kernel parses (kernel/multiboot2.c, the one
 * boot-information parser). Nothing here allocates or prints; every
 * function reports a problem as a message string. The same file is built
 * into the hosted test tests/host/efiload_test.c, under ASan and UBSan.
 */
#ifndef BOOT_EFI_EFILOAD_H
#define BOOT_EFI_EFILOAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define EL_MB2_MAGIC        0x36d76289u   /* kernel/multiboot2.h */
#define EL_PAGE             4096u

/* The ELF note boot/boot.S carries: name "spanheap", type 1, an 8-byte
 * physical address of the 64-bit entry _start_efi64. */
#define EL_NOTE_NAME        "spanheap"
#define EL_NOTE_EFI64_ENTRY 1

/* UEFI memory types (UEFI 2.x, EFI_MEMORY_TYPE). */
enum {
	EL_EFI_RESERVED, EL_EFI_LOADER_CODE, EL_EFI_LOADER_DATA,
	EL_EFI_BS_CODE, EL_EFI_BS_DATA, EL_EFI_RT_CODE, EL_EFI_RT_DATA,
	EL_EFI_CONVENTIONAL, EL_EFI_UNUSABLE, EL_EFI_ACPI_RECLAIM,
	EL_EFI_ACPI_NVS, EL_EFI_MMIO, EL_EFI_MMIO_PORT, EL_EFI_PAL_CODE,
	EL_EFI_PERSISTENT,
};

/* One PT_LOAD segment: [paddr, paddr + memsz), the first filesz bytes
 * from offset in the file, the rest zero. */
struct el_segment {
	uint64_t paddr;
	uint64_t memsz;
	uint64_t offset;
	uint64_t filesz;
};

#define EL_MAX_SEGMENTS 16

struct el_kernel {
	struct el_segment seg[EL_MAX_SEGMENTS];
	unsigned nseg;
	uint64_t entry64;          /* from the note; 0 when absent */
};

/* A physical range [start, end). */
struct el_range {
	uint64_t start;
	uint64_t end;
};

/*
 * Check the ELF header and program headers of a kernel file of file_size
 * bytes whose first buf_size bytes are in buf (the loader reads the head
 * first, to claim the kernel's memory before anything else can land
 * there), and fill *k. Returns NULL when it is a loadable x86-64 kernel,
 * else why not ("not an ELF file (bad magic)", "ELF machine is ... not
 * x86-64", "truncated", ...). Headers and notes must lie in buf; segments
 * in the file, within 64 bits and not overlapping each other.
 */
const char *el_check_elf(const void *buf, size_t buf_size, uint64_t file_size,
			 struct el_kernel *k);

/*
 * Check one segment against the loader's own image and the memory the
 * kernel may be placed in (ram[0..nram): the firmware map's ranges of
 * el_efi_type_placeable types, sorted or not). NULL when it may be placed;
 * else why not.
 */
const char *el_check_segment(const struct el_segment *s, struct el_range loader,
			     const struct el_range *ram, size_t nram);

/* May a kernel segment be written over memory of this UEFI type?
 * Conventional memory (claimed with AllocateAddress), boot-services code
 * and data (free after ExitBootServices, written only then) and ACPI NVS
 * (written after ExitBootServices: this kernel's image crosses OVMF's NVS
 * at 0x806000-0x900000; GRUB overwrites it the same way; S3 resume is
 * lost). Not runtime services, ACPI tables, MMIO, loader memory or
 * anything reserved. */
bool el_efi_type_placeable(uint32_t efi_type);

/* The multiboot2 memory-map type (1 available, 2 reserved, 3 ACPI
 * reclaimable, 4 ACPI NVS, 5 bad) for a UEFI memory type. Boot-services
 * and loader memory is available after ExitBootServices; runtime
 * services, ACPI tables and NVS, MMIO and unknown types are not. */
uint32_t el_efi_to_mb2_type(uint32_t efi_type);

/*
 * Convert a UEFI memory map (n descriptors of desc_size bytes at map, in
 * any order, possibly overlapping) into multiboot2 entries of 24 bytes
 * written to out (room for max entries): sorted by address, without
 * overlaps (where descriptors overlap, the more restrictive type wins:
 * bad > reserved > NVS > ACPI reclaimable > available), adjacent entries
 * of one type merged. Returns the number written, or -1 when out is too
 * small (2 * n entries always suffice) or desc_size is impossible.
 */
long el_efi_map_to_mb2(const void *map, size_t n, size_t desc_size,
		       uint8_t *out, size_t max);

/* Is word one of the space-separated words of line (alone, or as
 * "word=value")? */
bool el_has_word(const char *line, const char *word);

/* What goes into the multiboot2 block besides the memory maps. */
struct el_boot_info {
	const char *loader_name;
	const char *cmdline;       /* NULL: no command-line tag */
	const void *rsdp;          /* NULL: no ACPI tag */
	uint64_t efi_system_table; /* 0: no EFI64 tag */
	bool has_fb;               /* GOP framebuffer, 32 bpp direct colour */
	uint64_t fb_addr;
	uint32_t fb_pitch, fb_width, fb_height;
	uint8_t fb_red_pos, fb_green_pos, fb_blue_pos;
	const void *efi_map;       /* the UEFI memory map */
	size_t efi_map_n, efi_desc_size;
	uint32_t efi_desc_version;
};

/* Room a block for this boot information needs at most (bytes). */
size_t el_mb2_size(const struct el_boot_info *bi);

/*
 * Write the multiboot2 information block into out (8-byte aligned, size
 * bytes): loader name, command line, memory map (tag 6, converted),
 * ACPI RSDP (tag 15 for revision >= 2, else 14), framebuffer (tag 8),
 * EFI64 system table (tag 12), EFI memory map (tag 17), end tag. Returns
 * its total_size, or 0 with *error set.
 */
uint32_t el_build_mb2(const struct el_boot_info *bi, void *out, size_t size,
		      const char **error);

#endif
