/* kernel/serial.h - COM1, 115200 8N1, polled. */
#ifndef KERNEL_SERIAL_H
#define KERNEL_SERIAL_H
#include <stddef.h>
void serial_init(void);
void serial_putc(char c);
void serial_write(const char *s, size_t n);
#endif
