/*
 * tests/host/ktest_host_main.c - runs the self-tests in the hosted build.
 *
 * The same suites as in the kernel (those that do not need hardware), linked
 * against build/host/libspanheap.a and run under AddressSanitizer and
 * UndefinedBehaviorSanitizer. Usage: ktest-host [suite[,suite.name...]]
 * Prints KTAP and ends with "N passed, N failed".
 */
#include <stdio.h>
#include <stdarg.h>
#include "tests/kernel/ktest_runner.h"
#include "mm/kmalloc.h"

void ktest_vprint(const char *fmt, va_list ap)
{
	vprintf(fmt, ap);
	fflush(stdout);
}

int ktest_vsnprint(char *buf, size_t size, const char *fmt, va_list ap)
{
	return vsnprintf(buf, size, fmt, ap);
}

void ktest_before_each(const struct ktest *t)
{
	(void)t;
}

/* As in the kernel: every test leaves the heap consistent. */
void ktest_after_each(const struct ktest *t)
{
	(void)t;
	if (mheap_verify() != 0)
		ktest_fail(__FILE__, __LINE__, "expected mheap_verify() == 0 after the test, "
			   "saw a broken heap invariant (printed above)");
}

int main(int argc, char **argv)
{
	ktest_run_all(argc > 1 ? argv[1] : NULL);
	int passed, failed;
	ktest_totals(&passed, &failed);
	/* The closing line tools/run-tests.sh sums. */
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
