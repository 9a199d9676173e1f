/*
 * kernel/ktest_kernel.c - the kernel's side of the self-test runner
 * (tests/kernel/ktest_runner.h): output through printk, and the heap
 * verifier run after every test once the heap is up.
 */
#include "tests/kernel/ktest_runner.h"
#include "kernel/printk.h"
#include "lib/printf.h"
#include "mm/kmalloc.h"

void ktest_vprint(const char *fmt, va_list ap)
{
	vprintk(fmt, ap);
}

int ktest_vsnprint(char *buf, size_t size, const char *fmt, va_list ap)
{
	return vsnprintf(buf, size, fmt, ap);
}

void ktest_before_each(const struct ktest *t)
{
	(void)t;
}

/* Every test leaves the heap consistent: the verifier runs after each one
 * (the other CPUs are idle between tests). */
void ktest_after_each(const struct ktest *t)
{
	(void)t;
	if (mheap_verify() != 0)
		ktest_fail(__FILE__, __LINE__, "expected mheap_verify() == 0 after the test, saw a broken heap invariant (printed above)");
}
