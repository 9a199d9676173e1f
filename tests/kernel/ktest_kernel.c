/*
 * tests/kernel/ktest_kernel.c - the kernel's side of the self-test runner
 * (tests/kernel/ktest_runner.h), linked only into kernels built with
 * tests (the default; `make KTESTS=0` leaves it out).
 *
 * The kernel does not know the runner: this file registers it as a boot
 * job (kernel/bootjob.h) that kmain runs once the machine is up, and
 * installs a panic hook (kernel/panic.h) so that a fault or panic inside
 * a test is reported `not ok` against that test before the kernel stops.
 * Output goes through printk. Kernel arguments: ktest=SUITE[,SUITE.NAME...]
 * runs only those tests; notests runs none.
 */
#include "tests/kernel/ktest_runner.h"
#include "kernel/bootjob.h"
#include "kernel/kargs.h"
#include "kernel/panic.h"
#include "kernel/printk.h"
#include "lib/printf.h"

void ktest_vprint(const char *fmt, va_list ap)
{
	vprintk(fmt, ap);
}

/* Called by panic() after its report, on the panicking CPU. */
static void ktest_on_panic(const char *msg)
{
	if (!ktest_current())
		return;
	char why[300];
	snprintf(why, sizeof(why), "panic: %s", msg);
	ktest_abort_current(why);
}

static int ktest_boot_job(void)
{
	if (kernel_arg("notests", NULL, 0)) {
		printk("spanheap: self-tests not run (notests)\n");
		return 0;
	}
	char filter[256] = "";
	kernel_arg("ktest", filter, sizeof(filter));
	panic_set_hook(ktest_on_panic);
	int failed = ktest_run_all(filter);
	printk("spanheap: %s\n", failed ? "self-tests FAILED" : "all self-tests passed");
	return failed;
}
BOOT_JOB(ktest, BOOT_JOB_TESTS, ktest_boot_job);
