/*
 * kernel/acpi.h - just enough ACPI to find the CPUs: the RSDP (from the
 * multiboot2 copy, else the BIOS areas), the RSDT/XSDT and the MADT.
 */
#ifndef KERNEL_ACPI_H
#define KERNEL_ACPI_H
#include <stdint.h>
#include <stddef.h>
#include "kernel/percpu.h"

struct acpi_cpus {
	uint32_t apic_ids[MAX_CPUS]; /* enabled CPUs, the boot CPU among them */
	unsigned count;
	unsigned dropped;            /* enabled CPUs beyond MAX_CPUS */
	uint64_t lapic_phys;         /* local APIC MMIO base */
	const char *error;           /* why discovery failed (count == 0) */
};

/* rsdp: the RSDP copy from multiboot2 (tag 15 or 14), or NULL to search
 * the EBDA and 0xe0000-0xfffff. Fills *out; on any missing or corrupt
 * table, out->count = 0 and out->error says why. */
void acpi_find_cpus(const void *rsdp, size_t rsdp_len, struct acpi_cpus *out);

/* The checksum rule: all bytes sum to 0 mod 256. */
int acpi_checksum_ok(const void *p, size_t len);
/* Parse a MADT image (header included) into *out; 0 or -1 with out->error. */
int acpi_parse_madt(const void *madt, size_t len, struct acpi_cpus *out);

#endif
