/*
 * tests/kernel/acpi_test.c - CPU discovery from the MADT: good tables give
 * every enabled CPU once; truncated, overrunning or empty ones are refused
 * with a reason (the kernel then runs on the boot CPU alone). Kernel only.
 */
#ifndef SPANHEAP_HOSTED
#include <stdint.h>
#include "tests/kernel/ktest.h"
#include "kernel/acpi.h"
#include "lib/string.h"

#define HDR 36 /* ACPI table header */

static uint8_t madt[256];
static size_t madt_len;

static void madt_begin(uint32_t lapic)
{
	memset(madt, 0, sizeof(madt));
	memcpy(madt, "APIC", 4);
	memcpy(madt + HDR, &lapic, 4);
	madt_len = HDR + 8;
}

static void madt_lapic(uint8_t apic_id, uint32_t flags)
{
	uint8_t *e = madt + madt_len;
	e[0] = 0, e[1] = 8, e[2] = apic_id, e[3] = apic_id;
	memcpy(e + 4, &flags, 4);
	madt_len += 8;
}

static void madt_x2apic(uint32_t apic_id, uint32_t flags)
{
	uint8_t *e = madt + madt_len;
	memset(e, 0, 16);
	e[0] = 9, e[1] = 16;
	memcpy(e + 4, &apic_id, 4);
	memcpy(e + 8, &flags, 4);
	madt_len += 16;
}

static void madt_finish(void)
{
	uint32_t len = (uint32_t)madt_len;
	memcpy(madt + 4, &len, 4);
	uint8_t sum = 0;
	madt[9] = 0;
	for (size_t i = 0; i < madt_len; i++)
		sum += madt[i];
	madt[9] = (uint8_t)-sum;
}

KTEST(acpi, madt_lists_enabled_cpus_once)
{
	struct acpi_cpus c;
	madt_begin(0xfee00000);
	madt_lapic(0, 1);
	madt_lapic(1, 1);
	madt_lapic(2, 0);          /* disabled: not a CPU to start */
	madt_lapic(1, 1);          /* listed twice: counted once */
	madt_x2apic(300, 1);       /* beyond 8 bits: x2APIC entry */
	madt_finish();
	KEXPECT_TRUE(acpi_checksum_ok(madt, madt_len));
	KASSERT_EQ(acpi_parse_madt(madt, madt_len, &c), 0);
	KEXPECT_EQ(c.count, 3);
	KEXPECT_EQ(c.apic_ids[0], 0);
	KEXPECT_EQ(c.apic_ids[1], 1);
	KEXPECT_EQ(c.apic_ids[2], 300);
	KEXPECT_EQ(c.lapic_phys, 0xfee00000);
	KEXPECT_NULL(c.error);
}

KTEST(acpi, lapic_address_override)
{
	struct acpi_cpus c;
	madt_begin(0xfee00000);
	madt_lapic(0, 1);
	uint8_t *e = madt + madt_len;
	memset(e, 0, 12);
	e[0] = 5, e[1] = 12;
	uint64_t addr = 0x1234567000ULL;
	memcpy(e + 4, &addr, 8);
	madt_len += 12;
	madt_finish();
	KASSERT_EQ(acpi_parse_madt(madt, madt_len, &c), 0);
	KEXPECT_EQ(c.lapic_phys, 0x1234567000ULL);
}

KTEST(acpi, corrupt_madts_are_refused_with_a_reason)
{
	struct acpi_cpus c;
	/* An entry whose length runs past the table. */
	madt_begin(0xfee00000);
	madt_lapic(0, 1);
	madt[madt_len - 8 + 1] = 200;
	madt_finish();
	KEXPECT_EQ(acpi_parse_madt(madt, madt_len, &c), -1);
	KEXPECT_EQ(c.count, 0);
	KEXPECT_NOT_NULL(c.error);
	/* A zero-length entry (would loop forever if trusted). */
	madt_begin(0xfee00000);
	madt_lapic(0, 1);
	madt[madt_len - 8 + 1] = 0;
	madt_finish();
	KEXPECT_EQ(acpi_parse_madt(madt, madt_len, &c), -1);
	/* No enabled CPU at all. */
	madt_begin(0xfee00000);
	madt_lapic(0, 0);
	madt_finish();
	KEXPECT_EQ(acpi_parse_madt(madt, madt_len, &c), -1);
	KEXPECT_NOT_NULL(c.error);
	/* Shorter than its fixed part. */
	KEXPECT_EQ(acpi_parse_madt(madt, HDR + 4, &c), -1);
}

KTEST(acpi, bad_checksum_is_detected)
{
	madt_begin(0xfee00000);
	madt_lapic(0, 1);
	madt_finish();
	KEXPECT_TRUE(acpi_checksum_ok(madt, madt_len));
	madt[HDR + 9] ^= 0x40;
	KEXPECT_FALSE(acpi_checksum_ok(madt, madt_len));
}

KTEST(acpi, corrupt_rsdp_copy_falls_back_with_a_reason)
{
	struct acpi_cpus c;
	uint8_t rsdp[36];
	memset(rsdp, 0, sizeof(rsdp));
	memcpy(rsdp, "RSD PTR ", 8);
	rsdp[8] = 1; /* wrong checksum */
	acpi_find_cpus(rsdp, sizeof(rsdp), &c);
	KEXPECT_EQ(c.count, 0);
	KASSERT_NOT_NULL(c.error);
	ktest_log("reason given: %s", c.error);
}
#endif
