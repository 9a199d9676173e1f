/*
 * tests/bench/kbench.h - the heap's fast-path benchmark, in the kernel and
 * hosted.
 *
 * kbench_run() times, as the median of many runs of tight loops read with
 * rdtsc: a same-CPU kmalloc+kfree pair of 16, 32, 64, 128 and 256 bytes,
 * 1-byte KM_NOSCAN allocations that fit the open tiny block, an 8-byte
 * KM_NOSCAN pair and batch, and a 64 KiB (large, class 0) pair, and prints
 * a small table through mm_log(). The kernel calls it at the end of
 * `make run`; under QEMU TCG with `-icount shift=0` the TSC counts retired
 * instructions, so the figures are repeatable there. Figures are for
 * reading, never pass/fail.
 */
#ifndef TESTS_BENCH_KBENCH_H
#define TESTS_BENCH_KBENCH_H

void kbench_run(void);

#endif
