/*
 * examples/uefi/console.c - printf to the UEFI console (ConOut), with the
 * formats the heap's reports use (mm/platform.h: %d %u %x %s %c %p, the
 * l / ll / z modifiers, '#', '-', '0' and a width) plus %%. gnu-efi's own
 * Print has other formats (%s is a CHAR16 string), so the text is formatted
 * here into 8-bit characters, widened to CHAR16 in small pieces with "\n"
 * becoming "\r\n", and written with OutputString. OVMF mirrors ConOut to the
 * serial port, which is where the test runner reads the KTAP.
 */
#include <efi.h>
#include <efilib.h>
#include "examples/uefi/uefi_example.h"

static CHAR16 piece[128];
static unsigned piece_len;

static void flush(void)
{
	if (!piece_len)
		return;
	piece[piece_len] = 0;
	uefi_call_wrapper(ST->ConOut->OutputString, 2, ST->ConOut, piece);
	piece_len = 0;
}

static void put(char c)
{
	if (piece_len + 3 > sizeof(piece) / sizeof(piece[0]))
		flush();
	if (c == '\n')
		piece[piece_len++] = L'\r';
	piece[piece_len++] = (CHAR16)(unsigned char)c;
}

/* One number: digits of v in base, then padded to width. */
static void put_number(unsigned long long v, unsigned base, int negative, int alt,
		       int left, char pad, int width)
{
	char digits[24];
	int n = 0;
	do {
		digits[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	int len = n + negative + (alt ? 2 : 0);
	if (!left && pad == ' ')
		for (; width > len; width--)
			put(' ');
	if (negative)
		put('-');
	if (alt) {
		put('0');
		put('x');
	}
	if (!left && pad == '0')
		for (; width > len; width--)
			put('0');
	while (n)
		put(digits[--n]);
	for (; left && width > len; width--)
		put(' ');
}

static void put_string(const char *s, int left, int width)
{
	int len = 0;
	while (s[len])
		len++;
	for (; !left && width > len; width--)
		put(' ');
	while (*s)
		put(*s++);
	for (; left && width > len; width--)
		put(' ');
}

void console_vprintf(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			put(*fmt);
			continue;
		}
		int alt = 0, left = 0, width = 0, longs = 0;
		char pad = ' ';
		for (;; fmt++) {
			if (fmt[1] == '#')
				alt = 1;
			else if (fmt[1] == '-')
				left = 1;
			else if (fmt[1] == '0')
				pad = '0';
			else
				break;
		}
		while (fmt[1] >= '0' && fmt[1] <= '9')
			width = width * 10 + (*++fmt - '0');
		while (fmt[1] == 'l' || fmt[1] == 'z') {
			longs += fmt[1] == 'z' ? 2 : 1;
			fmt++;
		}
		unsigned long long u;
		long long d;
		switch (*++fmt) {
		case 'd':
			d = longs ? va_arg(ap, long long) : va_arg(ap, int);
			put_number(d < 0 ? -(unsigned long long)d : (unsigned long long)d, 10,
				   d < 0, 0, left, pad, width);
			break;
		case 'u':
		case 'x':
			u = longs ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
			put_number(u, *fmt == 'u' ? 10 : 16, 0, alt && *fmt == 'x', left, pad, width);
			break;
		case 'p':
			put_number((uintptr_t)va_arg(ap, void *), 16, 0, 1, left, pad, width);
			break;
		case 's':
			put_string(va_arg(ap, const char *), left, width);
			break;
		case 'c':
			put((char)va_arg(ap, int));
			break;
		case '%':
			put('%');
			break;
		default:
			put('%');
			if (!*fmt)
				fmt--;
			else
				put(*fmt);
		}
	}
	flush();
}

void console_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	console_vprintf(fmt, ap);
	va_end(ap);
}
