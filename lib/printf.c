/*
 * lib/printf.c - vsnprintf for the freestanding kernel (see printf.h).
 */
#include <stdint.h>
#include <stdbool.h>
#include "lib/printf.h"

struct out {
	char *buf;
	size_t size;
	size_t len;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void pad(struct out *o, char c, int n)
{
	while (n-- > 0)
		put(o, c);
}

struct spec {
	bool left, zero, plus, space, alt;
	int width;
	int prec; /* -1: none */
};

/* Emit a number already converted to digits (reversed in tmp). */
static void put_number(struct out *o, const struct spec *s, const char *digits,
		       int ndigits, const char *prefix, int nprefix)
{
	int zeros = 0;
	if (s->prec >= 0 && s->prec > ndigits)
		zeros = s->prec - ndigits;
	int total = nprefix + zeros + ndigits;
	int padding = s->width > total ? s->width - total : 0;
	if (!s->left && !(s->zero && s->prec < 0))
		pad(o, ' ', padding);
	for (int i = 0; i < nprefix; i++)
		put(o, prefix[i]);
	if (!s->left && s->zero && s->prec < 0)
		pad(o, '0', padding);
	pad(o, '0', zeros);
	for (int i = ndigits - 1; i >= 0; i--)
		put(o, digits[i]);
	if (s->left)
		pad(o, ' ', padding);
}

static void format_int(struct out *o, const struct spec *s, uint64_t v,
		       bool negative, unsigned base, bool upper, bool is_signed,
		       bool is_pointer)
{
	const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char digits[24];
	int n = 0;
	if (!(v == 0 && s->prec == 0)) {
		do {
			digits[n++] = set[v % base];
			v /= base;
		} while (v);
	}
	char prefix[3];
	int np = 0;
	if (is_signed) {
		if (negative)
			prefix[np++] = '-';
		else if (s->plus)
			prefix[np++] = '+';
		else if (s->space)
			prefix[np++] = ' ';
	}
	if ((s->alt || is_pointer) && base == 16 && (n > 0 && !(n == 1 && digits[0] == '0'))) {
		prefix[np++] = '0';
		prefix[np++] = upper ? 'X' : 'x';
	} else if (s->alt && base == 8 && !(n > 0 && digits[n - 1] == '0')) {
		prefix[np++] = '0';
	}
	put_number(o, s, digits, n, prefix, np);
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };

	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
		struct spec s = { false, false, false, false, false, 0, -1 };
		for (;;) {
			char c = *++fmt;
			if (c == '-') s.left = true;
			else if (c == '0') s.zero = true;
			else if (c == '+') s.plus = true;
			else if (c == ' ') s.space = true;
			else if (c == '#') s.alt = true;
			else break;
		}
		if (*fmt == '*') {
			s.width = va_arg(ap, int);
			if (s.width < 0) {
				s.left = true;
				s.width = -s.width;
			}
			fmt++;
		} else {
			while (*fmt >= '0' && *fmt <= '9')
				s.width = s.width * 10 + (*fmt++ - '0');
		}
		if (*fmt == '.') {
			fmt++;
			s.prec = 0;
			if (*fmt == '*') {
				s.prec = va_arg(ap, int);
				fmt++;
			} else {
				while (*fmt >= '0' && *fmt <= '9')
					s.prec = s.prec * 10 + (*fmt++ - '0');
			}
		}
		int lng = 0; /* -2 hh, -1 h, 0 int, 1 long, 2 long long, 3 size_t */
		for (;;) {
			if (*fmt == 'l') lng = lng == 1 ? 2 : 1;
			else if (*fmt == 'h') lng = lng == -1 ? -2 : -1;
			else if (*fmt == 'z' || *fmt == 't' || *fmt == 'j') lng = 3;
			else break;
			fmt++;
		}
		char conv = *fmt;
		if (!conv)
			break;
		switch (conv) {
		case 'd':
		case 'i': {
			int64_t v;
			if (lng >= 1)
				v = lng == 1 ? va_arg(ap, long) : va_arg(ap, long long);
			else
				v = va_arg(ap, int);
			if (lng == -1) v = (short)v;
			if (lng == -2) v = (signed char)v;
			uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
			format_int(&o, &s, u, v < 0, 10, false, true, false);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
		case 'o': {
			uint64_t v;
			if (lng >= 1)
				v = lng == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned long long);
			else
				v = va_arg(ap, unsigned int);
			if (lng == -1) v = (unsigned short)v;
			if (lng == -2) v = (unsigned char)v;
			unsigned base = conv == 'u' ? 10 : conv == 'o' ? 8 : 16;
			format_int(&o, &s, v, false, base, conv == 'X', false, false);
			break;
		}
		case 'p': {
			uintptr_t v = (uintptr_t)va_arg(ap, void *);
			format_int(&o, &s, v, false, 16, false, false, true);
			break;
		}
		case 'c': {
			char c = (char)va_arg(ap, int);
			if (!s.left)
				pad(&o, ' ', s.width - 1);
			put(&o, c);
			if (s.left)
				pad(&o, ' ', s.width - 1);
			break;
		}
		case 's': {
			const char *str = va_arg(ap, const char *);
			if (!str)
				str = "(null)";
			int len = 0;
			while (str[len] && (s.prec < 0 || len < s.prec))
				len++;
			if (!s.left)
				pad(&o, ' ', s.width - len);
			for (int i = 0; i < len; i++)
				put(&o, str[i]);
			if (s.left)
				pad(&o, ' ', s.width - len);
			break;
		}
		case '%':
			put(&o, '%');
			break;
		default:
			/* Unknown conversion: show it verbatim. */
			put(&o, '%');
			put(&o, conv);
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = 0;
	return (int)o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
