/*
 * kernel/printk.h - the kernel's formatted console output (COM1).
 * Formats: see lib/printf.h. Safe from any CPU and from interrupt handlers
 * (one line is never interleaved with another).
 */
#ifndef KERNEL_PRINTK_H
#define KERNEL_PRINTK_H
#include <stdarg.h>
int printk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintk(const char *fmt, va_list ap);
/* Used by panic(): print without taking the console lock. */
int printk_unlocked(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#endif
