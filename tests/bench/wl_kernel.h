/*
 * tests/bench/wl_kernel.h - the benchmark workloads in the kernel (see
 * tests/bench/wl_kernel.c and tests/bench/README.md).
 *
 * Kernel arguments:
 *   wl                  every workload, every case, on all online CPUs:
 *                       RESULT lines
 *   wl=NAME[,NAME...]   only these workloads
 *   wl=smoke            every case at tiny scale on 1 and 2 CPUs with
 *                       contents, leaks and the heap verifier checked, as
 *                       KTAP (boot with notests: it prints its own plan)
 *   wl.cpus=1,2,4       CPU counts to run on (default: all online CPUs)
 *   wl.scale=PPM        operation counts in parts per million of the
 *                       Linux default (default: per workload, see .c)
 */
#ifndef TESTS_BENCH_WL_KERNEL_H
#define TESTS_BENCH_WL_KERNEL_H

/* Run what the "wl" argument (value in arg) asks for; returns the number
 * of failed runs (0 when all passed). */
int wl_kernel_run(const char *arg);

#endif
