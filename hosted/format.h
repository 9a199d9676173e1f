/*
 * hosted/format.h - the heap's message formatter in the hosted library.
 *
 * The kernel's own vsnprintf (lib/printf.c), compiled under a private name
 * by hosted/format.c: mm_log runs inside malloc, so it must not enter stdio
 * (which may allocate), and a program's vsnprintf must stay the C
 * library's. Formats: those listed in mm/platform.h.
 */
#ifndef HOSTED_FORMAT_H
#define HOSTED_FORMAT_H

#include <stdarg.h>
#include <stddef.h>

int spanheap_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

#endif
