/*
 * tests/kernel/harness_test.c - the kernel's own foundations: vsnprintf,
 * the symbol table, and the expected-fault machinery the other suites
 * rely on. Kernel only.
 */
#ifndef SPANHEAP_HOSTED
#include <stdint.h>
#include "tests/kernel/ktest.h"
#include "lib/printf.h"
#include "lib/string.h"
#include "kernel/trap.h"
#include "kernel/ksyms.h"
#include "kernel/percpu.h"
#include "kernel/smp.h"
#include "kernel/panic.h"

static int fmt_is(const char *want, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static char got[128];
static int fmt_is(const char *want, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(got, sizeof(got), fmt, ap);
	va_end(ap);
	if (strcmp(got, want) != 0) {
		ktest_log("format \"%s\": expected \"%s\", saw \"%s\"", fmt, want, got);
		return 0;
	}
	return 1;
}

KTEST(printf, integers)
{
	KEXPECT_TRUE(fmt_is("42 -7 0", "%d %d %u", 42, -7, 0u));
	KEXPECT_TRUE(fmt_is("4294967295", "%u", 4294967295u));
	KEXPECT_TRUE(fmt_is("-9223372036854775808", "%lld", (long long)INT64_MIN));
	KEXPECT_TRUE(fmt_is("18446744073709551615", "%llu", (unsigned long long)UINT64_MAX));
	KEXPECT_TRUE(fmt_is("ff FF 0xff", "%x %X %#x", 255, 255, 255));
	KEXPECT_TRUE(fmt_is("ffffffff80000000", "%lx", 0xffffffff80000000UL));
	KEXPECT_TRUE(fmt_is("123456", "%zu", (size_t)123456));
}

KTEST(printf, width_and_padding)
{
	KEXPECT_TRUE(fmt_is("   42", "%5d", 42));
	KEXPECT_TRUE(fmt_is("42   |", "%-5d|", 42));
	KEXPECT_TRUE(fmt_is("00042", "%05d", 42));
	KEXPECT_TRUE(fmt_is("-0042", "%05d", -42));
	KEXPECT_TRUE(fmt_is("0x00ff", "%#06x", 255));
	KEXPECT_TRUE(fmt_is("0x0000000000001000", "%#018lx", 0x1000UL));
	KEXPECT_TRUE(fmt_is("  abc|abc  |ab", "%5s|%-5s|%.2s", "abc", "abc", "abc"));
	KEXPECT_TRUE(fmt_is("x|  y", "%c|%3c", 'x', 'y'));
	KEXPECT_TRUE(fmt_is("100%", "%d%%", 100));
	const char *volatile nul = NULL;
	KEXPECT_TRUE(fmt_is("(null)", "%s", nul));
}

KTEST(printf, pointers_and_truncation)
{
	KEXPECT_TRUE(fmt_is("0xdeadbeef", "%p", (void *)0xdeadbeefUL));
	char small[8];
	int n = snprintf(small, sizeof(small), "%s", "0123456789");
	KEXPECT_EQ(n, 10);
	KEXPECT_EQ(strlen(small), 7);
	KEXPECT_EQ(memcmp(small, "0123456", 8), 0);
}

KTEST(ksyms, lookup)
{
	uintptr_t off = 1;
	const char *name = ksym_lookup((uintptr_t)ksym_lookup + 3, &off);
	KASSERT_NOT_NULL(name);
	KEXPECT_EQ(strcmp(name, "ksym_lookup"), 0);
	KEXPECT_EQ(off, 3);
	KEXPECT_EQ(ksym_address("kmain") != 0, 1);
	KEXPECT_NULL(ksym_lookup(0x1000, &off));
}

static void read_unmapped(void *arg)
{
	volatile uint64_t *p = arg;
	(void)*p;
}

KTEST(traps, page_fault_is_caught_and_reported)
{
	struct fault_info fi;
	uintptr_t bad = 0xffffe00000001000UL; /* nothing is ever mapped there */
	int v = trap_catch_fault(read_unmapped, (void *)bad, &fi);
	KEXPECT_EQ(v, 14);
	KEXPECT_EQ(fi.vector, 14);
	KEXPECT_EQ(fi.cr2, bad);
	KEXPECT_EQ(fi.error & 2, 0); /* a read */
	KEXPECT_EQ(fi.error & 1, 0); /* not present */
}

static void no_fault(void *arg)
{
	*(int *)arg = 7;
}

KTEST(traps, catch_without_fault_returns_zero)
{
	struct fault_info fi;
	int x = 0;
	KEXPECT_EQ(trap_catch_fault(no_fault, &x, &fi), 0);
	KEXPECT_EQ(x, 7);
}

static void undefined_insn(void *arg)
{
	(void)arg;
	__asm__ volatile("ud2");
}

KTEST(traps, invalid_opcode_is_caught)
{
	struct fault_info fi;
	KEXPECT_EQ(trap_catch_fault(undefined_insn, NULL, &fi), 6);
	KEXPECT_EQ(fi.vector, 6);
}

KTEST(percpu, gs_base_points_at_this_cpu)
{
	KEXPECT_EQ(this_cpu(), &cpus[0]);
	KEXPECT_EQ(this_cpu_id(), 0);
	KEXPECT_EQ(this_cpu()->self, this_cpu());
}

#if KTEST_SELFCHECK == 1
/* Built only with `make test KTEST_SELFCHECK=1`: a deliberately broken test
 * that dereferences an unmapped address without catching the fault. The
 * runner must report the page fault and fail the run. */
KTEST(selfcheck, unmapped_dereference_must_fail_the_run)
{
	volatile uint64_t *p = (uint64_t *)0xffffe0000badc000UL;
	ktest_log("about to read %p, which is unmapped", (void *)p);
	(void)*p;
}
#endif
#if KTEST_SELFCHECK == 3
/* Built only with `make test KTEST_SELFCHECK=3`: unbounded recursion runs
 * the boot stack into its guard page. The page fault cannot push its frame
 * there, so the CPU double-faults onto its IST stack, and the run must end
 * with the double-fault report, not a silent triple fault. */
static volatile unsigned recurse_limit = ~0u; /* never reached */

static unsigned recurse(unsigned depth)
{
	volatile char frame[512];
	frame[0] = (char)depth;
	if (depth == recurse_limit)
		return 0;
	return recurse(depth + 1) + frame[0];
}

KTEST(selfcheck, stack_overflow_must_be_reported)
{
	ktest_log("recursing into the boot stack's guard page");
	ktest_log("%u", recurse(0));
}
#endif
#if KTEST_SELFCHECK == 4
/* Built only with `make test KTEST_SELFCHECK=4`: CPU 1 panics while CPU 0
 * waits for it. The report must be whole (down to "end Kernel panic",
 * its trace ending at ap_main) and the run must fail naming this test. */
static void panic_on_cpu_1(void *arg)
{
	(void)arg;
	if (this_cpu_id() == 1)
		panic("selfcheck: a panic on CPU 1");
}

KTEST(selfcheck, a_panic_on_another_cpu_must_be_reported)
{
	if (ncpus_online < 2)
		KTEST_SKIP("needs a second CPU");
	smp_call_n(2, panic_on_cpu_1, NULL);
}
#endif
#endif /* !SPANHEAP_HOSTED */
