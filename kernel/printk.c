/*
 * kernel/printk.c - formatted output to COM1.
 *
 * console_lock (irqsave) protects the UART so that concurrent printk calls
 * from several CPUs or an interrupt handler never interleave within one
 * call. panic() bypasses it, because the CPU that panics may hold it.
 */
#include "kernel/printk.h"
#include "kernel/serial.h"
#include "lib/printf.h"
#include "lib/spinlock.h"

/* console_lock (irqsave): the UART, for one printk call at a time. */
static spinlock_t console_lock = SPINLOCK_INIT("console");

int vprintk(const char *fmt, va_list ap)
{
	char buf[512];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	size_t len = n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
	unsigned long flags = spin_lock_irqsave(&console_lock);
	serial_write(buf, len);
	spin_unlock_irqrestore(&console_lock, flags);
	return n;
}

int printk(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vprintk(fmt, ap);
	va_end(ap);
	return n;
}

int printk_unlocked(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	serial_write(buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
	return n;
}
