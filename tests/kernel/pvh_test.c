/*
 * tests/kernel/pvh_test.c - PVH start information to multiboot2
 * (kernel/pvh.c): a QEMU-microvm-like hvm_start_info converts into a block
 * that the multiboot2 parser accepts with the same command line, memory
 * map and RSDP bytes; start information the kernel cannot use (wrong
 * magic, version 0, no map, endless command line) is refused with a
 * reason; and no output size, however small, is ever overrun.
 *
 * The "physical addresses" in the start information are the test's own
 * pointers, read with a phys_offset of 0.
 */
#include "tests/kernel/ktest.h"
#include "kernel/pvh.h"
#include "kernel/multiboot2.h"
#include "lib/string.h"

#define PVH_TEST_OUT_WORDS 256

/* qboot's map for `-M microvm -m 256M`, with the trailing empty entry. */
static const struct hvm_memmap_table_entry pvh_test_map[] = {
	{ 0x0, 0x9fc00, 1, 0 },
	{ 0x9fc00, 0x400, 2, 0 },
	{ 0xd0000, 0x20000, 4, 0 },
	{ 0xf0000, 0x10000, 2, 0 },
	{ 0x100000, 0xff00000, 1, 0 },
	{ 0x0, 0x0, 0, 0 },
};

static uint8_t pvh_test_rsdp[36];
static uint64_t pvh_test_out[PVH_TEST_OUT_WORDS + 4];

static uint64_t addr(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

/* An ACPI RSDP of the given revision (checksums are acpi.c's business). */
static void make_rsdp(uint8_t revision)
{
	memset(pvh_test_rsdp, 0, sizeof(pvh_test_rsdp));
	memcpy(pvh_test_rsdp, "RSD PTR ", 8);
	memcpy(pvh_test_rsdp + 9, "BOCHS ", 6);
	pvh_test_rsdp[15] = revision;
	for (unsigned i = 16; i < sizeof(pvh_test_rsdp); i++)
		pvh_test_rsdp[i] = (uint8_t)(0xa0 + i);
}

static struct hvm_start_info make_start_info(const char *cmdline)
{
	struct hvm_start_info si;
	memset(&si, 0, sizeof(si));
	si.magic = PVH_START_MAGIC;
	si.version = 1;
	si.cmdline_paddr = cmdline ? addr(cmdline) : 0;
	si.memmap_paddr = addr(pvh_test_map);
	si.memmap_entries = sizeof(pvh_test_map) / sizeof(pvh_test_map[0]);
	return si;
}

static uint32_t convert(const struct hvm_start_info *si, size_t out_size, const char **error)
{
	memset(pvh_test_out, 0x5a, sizeof(pvh_test_out));
	return pvh_to_mb2(addr(si), 0, pvh_test_out, out_size, error);
}

KTEST(pvh, converts_microvm_start_info)
{
	static const char cmdline[] = "ktest=heap bench";
	make_rsdp(2);
	struct hvm_start_info si = make_start_info(cmdline);
	si.rsdp_paddr = addr(pvh_test_rsdp);
	const char *error = "unset";
	uint32_t total = convert(&si, PVH_TEST_OUT_WORDS * 8, &error);
	KASSERT_NE(total, 0);
	KEXPECT_NULL(error);

	struct mb2_info info;
	KASSERT_EQ(mb2_parse(pvh_test_out, &info), 0);
	KEXPECT_EQ(info.total_size, total);
	KEXPECT_EQ(info.ntags, 5);             /* name, cmdline, map, RSDP, end */
	KEXPECT_EQ(info.nunknown, 0);
	KASSERT_NOT_NULL(info.bootloader);
	KEXPECT_EQ(strncmp(info.bootloader, "PVH", 3), 0);
	KASSERT_NOT_NULL(info.cmdline);
	KEXPECT_EQ(strcmp(info.cmdline, cmdline), 0);

	KASSERT_EQ(info.mmap_count, sizeof(pvh_test_map) / sizeof(pvh_test_map[0]));
	for (size_t i = 0; i < info.mmap_count; i++) {
		struct mb2_mmap_entry e;
		KASSERT_TRUE(mb2_mmap_get(&info, i, &e));
		KEXPECT_EQ(e.addr, pvh_test_map[i].addr);
		KEXPECT_EQ(e.len, pvh_test_map[i].size);
		KEXPECT_EQ(e.type, pvh_test_map[i].type);
	}
	KEXPECT_EQ(mb2_mmap_total(&info, MB2_MEMORY_AVAILABLE), 0x9fc00 + 0xff00000);

	KEXPECT_NULL(info.rsdp_v1);
	KASSERT_NOT_NULL(info.rsdp_v2);
	KEXPECT_EQ(info.rsdp_v2_len, PVH_RSDP_V2_LEN);
	KEXPECT_EQ(memcmp(info.rsdp_v2, pvh_test_rsdp, PVH_RSDP_V2_LEN), 0);
}

KTEST(pvh, acpi_1_rsdp_goes_in_the_old_tag)
{
	make_rsdp(0);
	struct hvm_start_info si = make_start_info("x");
	si.rsdp_paddr = addr(pvh_test_rsdp);
	const char *error;
	KASSERT_NE(convert(&si, PVH_TEST_OUT_WORDS * 8, &error), 0);
	struct mb2_info info;
	KASSERT_EQ(mb2_parse(pvh_test_out, &info), 0);
	KEXPECT_NULL(info.rsdp_v2);
	KASSERT_NOT_NULL(info.rsdp_v1);
	KEXPECT_EQ(info.rsdp_v1_len, PVH_RSDP_V1_LEN);
	KEXPECT_EQ(memcmp(info.rsdp_v1, pvh_test_rsdp, PVH_RSDP_V1_LEN), 0);
}

KTEST(pvh, absent_cmdline_and_rsdp_give_no_tags)
{
	struct hvm_start_info si = make_start_info(NULL);
	const char *error;
	KASSERT_NE(convert(&si, PVH_TEST_OUT_WORDS * 8, &error), 0);
	struct mb2_info info;
	KASSERT_EQ(mb2_parse(pvh_test_out, &info), 0);
	KEXPECT_NULL(info.cmdline);
	KEXPECT_NULL(info.rsdp_v1);
	KEXPECT_NULL(info.rsdp_v2);
	KEXPECT_EQ(info.ntags, 3);             /* name, map, end */
}

/* One refused start information: 0 returned, the reason set. */
static void expect_refused(const struct hvm_start_info *si, const char *what)
{
	const char *error = NULL;
	uint32_t total = convert(si, PVH_TEST_OUT_WORDS * 8, &error);
	if (total != 0 || error == NULL)
		ktest_fail(__FILE__, __LINE__, "expected %s to be refused, saw total %u, error %s",
			   what, total, error ? error : "(none)");
}

KTEST(pvh, refuses_what_it_cannot_use)
{
	struct hvm_start_info si = make_start_info("ok");
	si.magic ^= 1;
	expect_refused(&si, "a wrong magic");

	si = make_start_info("ok");
	si.version = 0;
	expect_refused(&si, "version 0 (no memory map)");

	si = make_start_info("ok");
	si.memmap_entries = 0;
	expect_refused(&si, "an empty memory map");

	si = make_start_info("ok");
	si.memmap_paddr = 0;
	expect_refused(&si, "a memory map at address 0");

	static char endless[PVH_MAX_CMDLINE];
	memset(endless, 'a', sizeof(endless));
	si = make_start_info(endless);
	expect_refused(&si, "a command line without a NUL in PVH_MAX_CMDLINE bytes");

	const char *error = NULL;
	KEXPECT_EQ(pvh_to_mb2(0, 0, pvh_test_out, PVH_TEST_OUT_WORDS * 8, &error), 0);
	KEXPECT_NOT_NULL(error);
}

/* Every output size from the header up: either a block the parser accepts
 * that fits, or a refusal; never a byte written past out_size. */
KTEST(pvh, never_writes_past_the_output)
{
	static const char cmdline[] = "ktest=pvh notests smp.fake_missing_cpu";
	make_rsdp(2);
	struct hvm_start_info si = make_start_info(cmdline);
	si.rsdp_paddr = addr(pvh_test_rsdp);
	const char *error;
	uint32_t needed = convert(&si, PVH_TEST_OUT_WORDS * 8, &error);
	KASSERT_EQ(needed, 8 + 32 + 48 + 16 + 6 * 24 + 48 + 8);
	unsigned accepted = 0;
	for (size_t size = 16; size <= PVH_TEST_OUT_WORDS * 8; size += 8) {
		uint32_t total = convert(&si, size, &error);
		const uint8_t *bytes = (const uint8_t *)pvh_test_out;
		for (size_t i = size; i < sizeof(pvh_test_out); i++)
			if (bytes[i] != 0x5a) {
				ktest_fail(__FILE__, __LINE__,
					   "expected nothing written past %zu bytes, saw byte %zu changed",
					   size, i);
				return;
			}
		if (total == 0)
			continue;
		accepted++;
		KEXPECT_LE(total, size);
		struct mb2_info info;
		KEXPECT_EQ(mb2_parse(pvh_test_out, &info), 0);
	}
	/* Header, name, command line, map, RSDP, end: every size from the
	 * block's own up is accepted, every smaller one refused. */
	KEXPECT_EQ(accepted, (PVH_TEST_OUT_WORDS * 8 - needed) / 8 + 1);
}
