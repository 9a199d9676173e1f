/*
 * lib/printf.h - formatted output into a buffer, for the kernel.
 *
 * Conversions: %d %i %u %x %X %o %p %s %c %%; flags '-', '0', '+', ' ',
 * '#'; a width and a precision (also as '*'); length modifiers hh h l ll z t.
 * Output is always NUL-terminated when size > 0; the return value is the
 * length the full output would have had, as in C99.
 */
#ifndef LIB_PRINTF_H
#define LIB_PRINTF_H

#include <stdarg.h>
#include <stddef.h>

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
