/*
 * tests/kernel/ktest.c - the self-test runner, shared by the kernel and the
 * hosted test binary.
 *
 * Tests live in the "ktests" section (see ktest.h). The runner walks it in
 * source order, grouping tests by suite in order of first appearance, runs
 * each followed by mheap_verify(), and prints KTAP version 1 through ktest_vprint(), which each side
 * provides (the kernel's vprintk, the hosted build's vprintf). The kernel's
 * trap handler calls ktest_abort_current() when a test faults, so the fault
 * is reported against the test that caused it.
 */
#include <stdarg.h>
#include "tests/kernel/ktest.h"
#include "tests/kernel/ktest_runner.h"
#include "mm/kmalloc.h"
#ifdef SPANHEAP_HOSTED
#include <stdio.h>          /* vsnprintf */
#else
#include "lib/printf.h"     /* vsnprintf */
#endif

extern const struct ktest __start_ktests[] __attribute__((weak));
extern const struct ktest __stop_ktests[] __attribute__((weak));

static const struct ktest *current;
static int current_number;
static int current_failures;
static int total_passed, total_failed;

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

static int same(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static void run_one(const struct ktest *t)
{
	current = t;
	current_number++;
	current_failures = 0;
	first_msg[0] = 0;
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
	} else {
		total_passed++;
		out("ok %d %s.%s\n", current_number, t->suite, t->name);
	}
	current = 0;
}

static int strcmp_(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}

/* Source order: by file name, then line. The linker section holds tests in
 * whatever order the compiler emitted them (often reversed). */
static int before(const struct ktest *a, const struct ktest *b)
{
	int c = strcmp_(a->file, b->file);
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
			seen = same(order[p]->suite, order[s]->suite);
		if (seen)
			continue;
		for (int t = s; t < total; t++)
			if (same(order[t]->suite, order[s]->suite))
				run_one(order[t]);
	}
	out("# ktest: %d passed, %d failed\n", total_passed, total_failed);
	return total_failed;
}

void ktest_totals(int *passed, int *failed)
{
	*passed = total_passed;
	*failed = total_failed;
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
