/*
 * tests/kernel/ktest_test.c - the harness's own wording and memory probe.
 *
 * A failed comparison must say what was expected and show each side once:
 * ktest_format_cmp (what every KEXPECT_ and KASSERT_ comparison records) is
 * checked here against the exact messages, for literal sides, pointers,
 * negative and large values; KTEST_SHOW_ must classify the operand types
 * the way the messages assume. ktest_free_bytes, which decides a memory
 * skip, must report memory that is really there. Kernel and hosted.
 */
#include <stdint.h>
#include <stddef.h>
#include "tests/kernel/ktest.h"
#include "tests/kernel/ktest_runner.h"
#include "mm/kmalloc.h"
#include "lib/string.h"

static char got[256];

/* Does ktest_format_cmp word this comparison as `want`? */
static int cmp_says(const char *want, const char *a_text, const char *op,
		    const char *b_text, uint64_t a, uint64_t b, unsigned a_show,
		    unsigned b_show)
{
	ktest_format_cmp(got, sizeof(got), a_text, op, b_text, a, b, a_show,
			 b_show);
	if (strcmp(got, want) != 0) {
		ktest_log("expected \"%s\"", want);
		ktest_log("saw      \"%s\"", got);
		return 0;
	}
	return 1;
}

KTEST(ktest, literal_side_is_not_repeated)
{
	KEXPECT_TRUE(cmp_says("expected p[i] != NULL; p[i] = NULL", "p[i]", "!=",
			      "NULL", 0, 0, KTEST_SHOW_POINTER, 0));
	KEXPECT_TRUE(cmp_says("expected mheap_verify() == 0; mheap_verify() = -1",
			      "mheap_verify()", "==", "0", (uint64_t)-1, 0,
			      KTEST_SHOW_SIGNED, KTEST_SHOW_SIGNED));
	KEXPECT_TRUE(cmp_says("expected 0x1000 == align; align = 8", "0x1000",
			      "==", "align", 4096, 8, KTEST_SHOW_SIGNED, 0));
	KEXPECT_TRUE(cmp_says("expected n <= 4096UL; n = 5000 (0x1388)", "n",
			      "<=", "4096UL", 5000, 4096, 0, 0));
	KEXPECT_TRUE(cmp_says("expected r == -22; r = 0", "r", "==", "-22", 0,
			      (uint64_t)-22, KTEST_SHOW_SIGNED, KTEST_SHOW_SIGNED));
	KEXPECT_TRUE(cmp_says("expected 1 == 2", "1", "==", "2", 1, 2, 0, 0));
}

KTEST(ktest, both_sides_shown_once)
{
	KEXPECT_TRUE(cmp_says("expected a == b; a = 3, b = 4", "a", "==", "b", 3,
			      4, KTEST_SHOW_SIGNED, KTEST_SHOW_SIGNED));
	KEXPECT_TRUE(cmp_says("expected q == p; q = NULL, p = 0xffff800000824000",
			      "q", "==", "p", 0, 0xffff800000824000ULL,
			      KTEST_SHOW_POINTER, KTEST_SHOW_POINTER));
	KEXPECT_TRUE(cmp_says("expected ksize(q) >= want; ksize(q) = 40960 "
			      "(0xa000), want = 50000 (0xc350)", "ksize(q)", ">=",
			      "want", 40960, 50000, 0, 0));
	/* Unsigned: no minus sign, however large. */
	KEXPECT_TRUE(cmp_says("expected x < SIZE_MAX; x = 18446744073709551615 "
			      "(0xffffffffffffffff), SIZE_MAX = 18446744073709551615 "
			      "(0xffffffffffffffff)", "x", "<", "SIZE_MAX",
			      UINT64_MAX, UINT64_MAX, 0, 0));
	/* A constant's text that is not its value is not a literal of it. */
	KEXPECT_TRUE(cmp_says("expected n == 10; n = 9, 10 = 11", "n", "==", "10",
			      9, 11, 0, 0));
}

KTEST(ktest, operand_types_are_classified)
{
	int i = -1;
	long l = -1;
	size_t z = 1;
	unsigned u = 1;
	uint8_t b = 1;
	void *p = &i;
	const char *s = "";
	KEXPECT_EQ(KTEST_SHOW_(i), KTEST_SHOW_SIGNED);
	KEXPECT_EQ(KTEST_SHOW_(l), KTEST_SHOW_SIGNED);
	KEXPECT_EQ(KTEST_SHOW_(i + 0), KTEST_SHOW_SIGNED);
	KEXPECT_EQ(KTEST_SHOW_(z), 0);
	KEXPECT_EQ(KTEST_SHOW_(u), 0);
	KEXPECT_EQ(KTEST_SHOW_(b), 0);
	KEXPECT_EQ(KTEST_SHOW_(p), KTEST_SHOW_POINTER);
	KEXPECT_EQ(KTEST_SHOW_(s), KTEST_SHOW_POINTER);
	KEXPECT_EQ(KTEST_SHOW_(&got[0]), KTEST_SHOW_POINTER);
}

KTEST(ktest, free_bytes_are_really_there)
{
	/* What the probe reports free can be had: a quarter of it (at
	 * most 1 MiB) comes back from kmalloc. */
	uint64_t free = ktest_free_bytes();
	KASSERT_GE(free, 64 * 1024);
	size_t want = free / 4 < (1u << 20) ? (size_t)(free / 4) : (1u << 20);
	void *p = kmalloc(want, 0);
	KEXPECT_NOT_NULL(p);
	kfree(p);
	KEXPECT_TRUE(ktest_require_free_bytes(want));
}
