/*
 * tests/kernel/ktest_runner.h - what the runner needs from its side (kernel
 * or hosted) and what it offers to it.
 */
#ifndef TESTS_KTEST_RUNNER_H
#define TESTS_KTEST_RUNNER_H

#include <stdarg.h>
#include <stddef.h>
#include "tests/kernel/ktest.h"

/* Provided by the side: */
void ktest_vprint(const char *fmt, va_list ap);

/* Offered by the runner: */
int ktest_snprint(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Run every test whose suite (or suite.name) is in the comma-separated
 * filter (all when NULL or empty); returns the number that failed. */
int ktest_run_all(const char *filter);
/* Tests passed and failed so far (a skipped test is neither). */
void ktest_totals(int *passed, int *failed);
/* Tests skipped so far (ktest_skip, e.g. for lack of memory). */
int ktest_skipped(void);
/* The message of a failed comparison (what ktest_fail_cmp records). */
void ktest_format_cmp(char *buf, size_t size, const char *a_text,
		      const char *op, const char *b_text, uint64_t a, uint64_t b,
		      unsigned a_show, unsigned b_show);
/* The running test, or NULL. */
const struct ktest *ktest_current(void);
/* A fault or panic hit the running test: report it `not ok`. */
void ktest_abort_current(const char *why);

#endif
