/*
 * kernel/pvh.h - the PVH boot protocol's start information, turned into a
 * multiboot2 boot information block.
 *
 * A PVH loader (QEMU's `-M microvm -kernel spanheap.elf`, through qboot;
 * also Xen, Firecracker, cloud-hypervisor) finds the kernel's
 * XEN_ELFNOTE_PHYS32_ENTRY note (boot/boot.S) and enters it in 32-bit
 * protected mode, paging off, with EBX = the physical address of a struct
 * hvm_start_info (Xen's public/arch-x86/hvm/start_info.h). The kernel has
 * one boot-information parser, the multiboot2 one (kernel/multiboot2.c),
 * so kmain converts the start information into a multiboot2 block first:
 * a boot loader name tag, the command line (tag 1), the memory map (tag 6:
 * PVH's map uses the E820 types, which are multiboot2's), and a copy of the
 * ACPI RSDP (tag 14 for revision 0, tag 15 for 2+) when rsdp_paddr is set.
 * Modules (an -initrd) are not converted: the kernel uses none.
 *
 * Every value comes from the loader and is checked before use: the magic,
 * a version >= 1 (version 0 has no memory map), the number of map entries
 * and the command line's length against the room left in the output.
 */
#ifndef KERNEL_PVH_H
#define KERNEL_PVH_H

#include <stddef.h>
#include <stdint.h>

/* hvm_start_info.magic, and what boot.S passes to kmain as its "magic"
 * when it was entered through the PVH note. */
#define PVH_START_MAGIC 0x336ec578u

/* Bounds of the conversion. */
#define PVH_MAX_CMDLINE 4096u   /* bytes searched for the NUL */
#define PVH_RSDP_V1_LEN 20u
#define PVH_RSDP_V2_LEN 36u

struct hvm_start_info {
	uint32_t magic;           /* PVH_START_MAGIC */
	uint32_t version;         /* 0, or 1 with the memory map fields */
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;   /* 0 or a NUL-terminated string */
	uint64_t rsdp_paddr;      /* 0 or the ACPI RSDP */
	uint64_t memmap_paddr;    /* version >= 1 */
	uint32_t memmap_entries;  /* version >= 1 */
	uint32_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;            /* E820 type: 1 RAM, 2 reserved, 3 ACPI, ... */
	uint32_t reserved;
};

/*
 * Build a multiboot2 boot information block in out (8-byte aligned,
 * out_size bytes) from the start information at physical address si_paddr.
 * Every physical address p the loader gave is read at p + phys_offset
 * (DIRECT_MAP_BASE in the kernel, 0 in a test that passes pointers).
 * Returns the block's total size, or 0 with *error saying why.
 */
uint32_t pvh_to_mb2(uint64_t si_paddr, uint64_t phys_offset, void *out,
		    size_t out_size, const char **error);

#endif
