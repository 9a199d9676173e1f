/*
 * kernel/bootjob.h - work that is not part of the kernel but that kmain
 * runs once the machine is up: the self-test runner and the benchmarks.
 *
 * The kernel knows none of them by name. Each declares itself with
 * BOOT_JOB(), which puts a struct boot_job into the "boot_jobs" linker
 * section (linker.ld collects it between __start_boot_jobs and
 * __stop_boot_jobs); kmain walks the section once per stage, in stage
 * order, calling every job of that stage (within a stage, in link order:
 * the Makefile lists kbench.c before the workloads). A job reads its own kernel
 * arguments (kernel/kargs.h) to decide whether it has anything to do, and
 * returns how many of its checks failed (0 when it did nothing), which
 * decides the kernel's exit status. Which jobs exist is a link-time
 * choice: `make KTESTS=0` links no tests and no benchmarks, and the
 * section is empty.
 */
#ifndef KERNEL_BOOTJOB_H
#define KERNEL_BOOTJOB_H

enum boot_job_stage {
	BOOT_JOB_TESTS,   /* self-tests; kmain then prints the heap's state */
	BOOT_JOB_BENCH,   /* benchmarks and workloads, after the tests */
	BOOT_JOB_NSTAGES,
};

struct boot_job {
	const char *name;
	enum boot_job_stage stage;
	int (*run)(void); /* number of failures */
};

#define BOOT_JOB(ident, stage_, fn)                                          \
	static const struct boot_job boot_job_##ident                        \
		__attribute__((used, section("boot_jobs"), aligned(8))) = {    \
		.name = #ident, .stage = (stage_), .run = (fn) }

#endif
