/*
 * tests/kernel/ktest.c - the self-test runner, shared by the kernel and the
 * hosted test binary.
 *
 * Tests live in the "ktests" section (see ktest.h). The runner walks it in
 * source order, grouping tests by suite in order of first appearance, runs
 * each followed by mheap_verify(), and prints KTAP version 1 through
 * ktest_vprint(), which each side provides (the kernel's vprintk, the
 * hosted build's vprintf). The panic hook that ktest_kernel.c installs (a
 * fault panics) calls ktest_abort_current() when a test faults, so the
 * fault is reported against the test that caused it.
 *
 * A test ends in one of three ways: passed, failed (any ktest_fail), or
 * skipped (ktest_skip and no failure), reported "ok N name # SKIP reason"
 * and counted apart from both. A failed comparison is worded here
 * (ktest_format_cmp) so that each side appears once.
 */
#include <stdarg.h>
#include <stdbool.h>
#include "tests/kernel/ktest.h"
#include "tests/kernel/ktest_runner.h"
#include "mm/kmalloc.h"
#include "lib/string.h"     /* strcmp, strstr */
#ifdef SPANHEAP_HOSTED
#include <stdio.h>          /* vsnprintf */
#include <unistd.h>         /* sysconf */
#else
#include "lib/printf.h"     /* vsnprintf */
#include "kernel/pmm.h"     /* pmm_stats */
#endif

extern const struct ktest __start_ktests[] __attribute__((weak));
extern const struct ktest __stop_ktests[] __attribute__((weak));

static const struct ktest *current;
static int current_number;
static int current_failures;
static int total_passed, total_failed, total_skipped;

static void out(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ktest_vprint(fmt, ap);
	va_end(ap);
}

int ktest_snprint(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

const struct ktest *ktest_current(void)
{
	return current;
}

int ktest_failures(void)
{
	return current_failures;
}

/* The first failure of a test is kept for its "not ok" line. */
static char first_msg[256];

void ktest_fail(const char *file, int line, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	out("    # FAIL %s:%d: %s\n", file, line, msg);
	if (current_failures++ == 0) {
		const char *base = file;
		for (const char *p = file; *p; p++)
			if (*p == '/')
				base = p + 1;
		ktest_snprint(first_msg, sizeof(first_msg), "%s at %s:%d", msg,
			      base, line);
	}
}

/* Why the running test skipped itself ("" when it did not). */
static char skip_msg[200];

void ktest_skip(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(skip_msg, sizeof(skip_msg), fmt, ap);
	va_end(ap);
	if (!skip_msg[0])
		ktest_snprint(skip_msg, sizeof(skip_msg), "(no reason given)");
}

/* ------------------------------------------------------- free memory -- */

/* Free memory outside the heap: the pmm's free frames in the kernel; in
 * the hosted build the machine's available physical memory. */
static uint64_t free_bytes_outside_heap(void)
{
#ifdef SPANHEAP_HOSTED
	long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
#else
	struct pmm_stats st;
	pmm_stats(&st);
	return st.free_frames * PAGE_SIZE;
#endif
}

uint64_t ktest_free_bytes(void)
{
	/* Between tests the other CPUs are idle, so every cache can go. */
	kmem_drain_all();
	struct kmem_stats st;
	kmem_get_stats(&st);
	uint64_t used = st.span_bytes_inuse + st.large_bytes;
	uint64_t idle = st.heap_bytes > used ? st.heap_bytes - used : 0;
	return free_bytes_outside_heap() + idle;
}

#define MIB (1024ULL * 1024)

int ktest_require_free_bytes(uint64_t bytes)
{
	uint64_t have = ktest_free_bytes();
	if (have >= bytes)
		return 1;
	/* The need rounded up, what there is rounded down. */
	ktest_skip("needs %llu MiB, have %llu MiB",
		   (unsigned long long)((bytes + MIB - 1) / MIB),
		   (unsigned long long)(have / MIB));
	return 0;
}

/* ------------------------------------------------ comparison messages -- */

/* Is text a C literal whose value is v (42, 0x1000, 4096UL, -1, NULL)? */
static bool literal_of(const char *text, uint64_t v)
{
	if (strcmp(text, "NULL") == 0 || strcmp(text, "false") == 0)
		return v == 0;
	if (strcmp(text, "true") == 0)
		return v == 1;
	const char *p = text;
	bool neg = *p == '-';
	if (neg)
		p++;
	if (*p < '0' || *p > '9')
		return false;
	unsigned base = 10;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		base = 16, p += 2;
	else if (p[0] == '0' && p[1])
		base = 8, p++;
	uint64_t n = 0;
	for (;; p++) {
		unsigned d;
		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else if (*p >= 'A' && *p <= 'F')
			d = (unsigned)(*p - 'A' + 10);
		else
			break;
		if (d >= base)
			return false;
		n = n * base + d;
	}
	while (*p == 'u' || *p == 'U' || *p == 'l' || *p == 'L')
		p++;
	return !*p && (neg ? 0 - n : n) == v;
}

/* One value: a pointer as NULL or hex; a negative signed value in
 * decimal; otherwise decimal, with the hex as well from 4096 on. */
static int format_value(char *buf, size_t size, uint64_t v, unsigned show)
{
	if (show & KTEST_SHOW_POINTER)
		return v ? ktest_snprint(buf, size, "%#llx", (unsigned long long)v)
			 : ktest_snprint(buf, size, "NULL");
	if ((show & KTEST_SHOW_SIGNED) && (int64_t)v < 0)
		return ktest_snprint(buf, size, "%lld", (long long)v);
	if (v >= 4096)
		return ktest_snprint(buf, size, "%llu (%#llx)",
				     (unsigned long long)v, (unsigned long long)v);
	return ktest_snprint(buf, size, "%llu", (unsigned long long)v);
}

void ktest_format_cmp(char *buf, size_t size, const char *a_text,
		      const char *op, const char *b_text, uint64_t a, uint64_t b,
		      unsigned a_show, unsigned b_show)
{
	char va[48], vb[48];
	format_value(va, sizeof(va), a, a_show);
	format_value(vb, sizeof(vb), b, b_show);
	bool show_a = !literal_of(a_text, a), show_b = !literal_of(b_text, b);
	if (show_a && show_b)
		ktest_snprint(buf, size, "expected %s %s %s; %s = %s, %s = %s",
			      a_text, op, b_text, a_text, va, b_text, vb);
	else if (show_a || show_b)
		ktest_snprint(buf, size, "expected %s %s %s; %s = %s", a_text,
			      op, b_text, show_a ? a_text : b_text,
			      show_a ? va : vb);
	else
		ktest_snprint(buf, size, "expected %s %s %s", a_text, op, b_text);
}

void ktest_fail_cmp(const char *file, int line, const char *a_text,
		    const char *op, const char *b_text, uint64_t a, uint64_t b,
		    unsigned a_show, unsigned b_show)
{
	char msg[256];
	ktest_format_cmp(msg, sizeof(msg), a_text, op, b_text, a, b, a_show,
			 b_show);
	ktest_fail(file, line, "%s", msg);
}

const char *ktest_verify_rule(void)
{
	return mheap_verify() ? mheap_verify_broken_rule() : NULL;
}

void ktest_expect_rule(const char *file, int line, const char *rule, const char *want)
{
	if (!rule)
		ktest_fail(file, line, "expected the verifier to report \"%s\"; it passed",
			   want);
	else if (!strstr(rule, want))
		ktest_fail(file, line, "expected the verifier to report \"%s\"; it reported \"%s\"",
			   want, rule);
}

void ktest_log(const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	out("    # %s\n", msg);
}

/* Does the filter entry f[0..len) ("suite" or "suite.name") name t? */
static int entry_matches(const struct ktest *t, const char *f, size_t len)
{
	size_t sl = 0;
	while (t->suite[sl])
		sl++;
	if (len == sl) {
		for (size_t i = 0; i < len; i++)
			if (f[i] != t->suite[i])
				return 0;
		return 1;
	}
	if (len > sl && f[sl] == '.') {
		for (size_t i = 0; i < sl; i++)
			if (f[i] != t->suite[i])
				return 0;
		const char *n = t->name;
		size_t i = sl + 1;
		for (; i < len && *n; i++, n++)
			if (f[i] != *n)
				return 0;
		return i == len && !*n;
	}
	return 0;
}

/* filter is a comma-separated list of suite names or suite.name; an entry
 * "-suite" or "-suite.name" excludes (a filter of exclusions only runs
 * everything else). */
static int matches(const struct ktest *t, const char *filter)
{
	if (!filter || !*filter)
		return 1;
	int included = 0, any_include = 0;
	const char *f = filter;
	while (*f) {
		const char *end = f;
		while (*end && *end != ',')
			end++;
		size_t len = (size_t)(end - f);
		if (*f == '-') {
			if (entry_matches(t, f + 1, len - 1))
				return 0;
		} else if (len) {
			any_include = 1;
			included |= entry_matches(t, f, len);
		}
		f = *end ? end + 1 : end;
	}
	return any_include ? included : 1;
}

static void run_one(const struct ktest *t)
{
	current = t;
	current_number++;
	current_failures = 0;
	first_msg[0] = 0;
	skip_msg[0] = 0;
	t->fn();
	/* Every test leaves the heap consistent (between tests the other
	 * CPUs are idle, as the verifier needs). */
	if (mheap_verify() != 0)
		ktest_fail(__FILE__, __LINE__, "expected mheap_verify() == 0 after the test, "
			   "saw a broken heap invariant (printed above)");
	if (current_failures) {
		total_failed++;
		out("not ok %d %s.%s # %s\n", current_number, t->suite, t->name,
		    first_msg);
	} else if (skip_msg[0]) {
		total_skipped++;
		out("ok %d %s.%s # SKIP %s\n", current_number, t->suite, t->name,
		    skip_msg);
	} else {
		total_passed++;
		out("ok %d %s.%s\n", current_number, t->suite, t->name);
	}
	current = 0;
}

/* Source order: by file name, then line. The linker section holds tests in
 * whatever order the compiler emitted them (often reversed). */
static int before(const struct ktest *a, const struct ktest *b)
{
	int c = strcmp(a->file, b->file);
	return c < 0 || (c == 0 && a->line < b->line);
}

#define KTEST_MAX 2048
static const struct ktest *order[KTEST_MAX];

int ktest_run_all(const char *filter)
{
	const struct ktest *begin = __start_ktests, *end = __stop_ktests;
	int total = 0;

	for (const struct ktest *t = begin; t < end && total < KTEST_MAX; t++) {
		if (!matches(t, filter))
			continue;
		int i = total++;
		while (i > 0 && before(t, order[i - 1])) {
			order[i] = order[i - 1];
			i--;
		}
		order[i] = t;
	}
	out("KTAP version 1\n");
	out("1..%d\n", total);
	/* Suites run one after another, in order of first appearance. */
	for (int s = 0; s < total; s++) {
		int seen = 0;
		for (int p = 0; p < s && !seen; p++)
			seen = strcmp(order[p]->suite, order[s]->suite) == 0;
		if (seen)
			continue;
		for (int t = s; t < total; t++)
			if (strcmp(order[t]->suite, order[s]->suite) == 0)
				run_one(order[t]);
	}
	if (total_skipped)
		out("# ktest: %d skipped\n", total_skipped);
	out("# ktest: %d passed, %d failed\n", total_passed, total_failed);
	return total_failed;
}

void ktest_totals(int *passed, int *failed)
{
	*passed = total_passed;
	*failed = total_failed;
}

int ktest_skipped(void)
{
	return total_skipped;
}

void ktest_abort_current(const char *why)
{
	if (!current) {
		out("# ktest: fault outside any test: %s\n", why);
		return;
	}
	total_failed++;
	out("not ok %d %s.%s # %s\n", current_number, current->suite,
	    current->name, why);
	out("# ktest: run aborted; %d passed, %d failed\n", total_passed,
	    total_failed);
	current = 0;
}
