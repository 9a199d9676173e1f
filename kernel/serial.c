/*
 * kernel/serial.c - the COM1 UART, the kernel's console. Polled output
 * only; '\n' becomes "\r\n". Callers serialise (printk holds its lock).
 */
#include "kernel/serial.h"
#include "kernel/x86.h"

#define COM1 0x3f8

void serial_init(void)
{
	outb(COM1 + 1, 0x00);   /* no interrupts */
	outb(COM1 + 3, 0x80);   /* DLAB */
	outb(COM1 + 0, 0x01);   /* divisor 1: 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03);   /* 8N1 */
	outb(COM1 + 2, 0xc7);   /* FIFO on, cleared, 14-byte threshold */
	outb(COM1 + 4, 0x0b);   /* DTR, RTS, OUT2 */
}

static void raw_putc(char c)
{
	while (!(inb(COM1 + 5) & 0x20))
		;
	outb(COM1, (uint8_t)c);
}

void serial_putc(char c)
{
	if (c == '\n')
		raw_putc('\r');
	raw_putc(c);
}

void serial_write(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		serial_putc(s[i]);
}
