/*
 * tests/host/ktest_host_main.c - runs the self-tests in the hosted build.
 *
 * The same suites as in the kernel (those that do not need hardware), linked
 * against build/host/libspanheap-san.a and run under AddressSanitizer and
 * UndefinedBehaviorSanitizer. Usage: ktest-host [suite[,suite.name...]]
 * Prints KTAP and ends with "N passed, N failed" (preceded by "N skipped"
 * when a test skipped itself, which counts as neither). The kernel's pmm
 * (kernel/pmm.c) is linked in for its suite and logs through printk, which
 * here writes to stderr, out of the KTAP stream.
 */
#include <stdio.h>
#include <stdarg.h>
#include "kernel/printk.h"
#include "tests/kernel/ktest_runner.h"

int printk(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vfprintf(stderr, fmt, ap);
	va_end(ap);
	return n;
}

void ktest_vprint(const char *fmt, va_list ap)
{
	vprintf(fmt, ap);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	ktest_run_all(argc > 1 ? argv[1] : NULL);
	int passed, failed, skipped = ktest_skipped();
	ktest_totals(&passed, &failed);
	/* Skipped tests are counted apart, on a line of their own; the
	 * closing line, which tools/run-tests.sh sums, is passed and failed. */
	if (skipped)
		printf("%d skipped\n", skipped);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
