/*
 * kernel/ktest_kernel.c - the kernel's side of the self-test runner
 * (tests/kernel/ktest_runner.h): output through printk.
 */
#include "tests/kernel/ktest_runner.h"
#include "kernel/printk.h"

void ktest_vprint(const char *fmt, va_list ap)
{
	vprintk(fmt, ap);
}
