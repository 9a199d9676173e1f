/*
 * kernel/kargs.c - the kernel's arguments (see kargs.h).
 *
 * kmain appends each source's line to one fixed buffer at boot, before
 * any other CPU runs; afterwards the buffer is only read, so lookups need
 * no lock. A lookup scans the words left to right and matches "key"
 * exactly or "key=" as a prefix: "ktest" matches "ktest" and
 * "ktest=heap", never "ktests" or "ktest.x".
 */
#include "kernel/kargs.h"
#include "lib/string.h"

static char args[512];

/* The word starting at p ends at the next space or the end of the line. */
static const char *word_end(const char *p)
{
	while (*p && *p != ' ')
		p++;
	return p;
}

/* Copy the value of the word [p, end) whose key is klen bytes long. */
static void copy_value(const char *p, const char *end, size_t klen, char *out, size_t size)
{
	const char *v = p[klen] == '=' ? p + klen + 1 : end;
	size_t n = (size_t)(end - v) < size - 1 ? (size_t)(end - v) : size - 1;
	memcpy(out, v, n);
	out[n] = 0;
}

int kernel_arg(const char *key, char *out, size_t size)
{
	size_t klen = strlen(key);
	const char *p = args;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *end = word_end(p);
		if ((size_t)(end - p) >= klen && strncmp(p, key, klen) == 0 &&
		    (p[klen] == '=' || p + klen == end)) {
			if (out && size)
				copy_value(p, end, klen, out, size);
			return 1;
		}
		p = end;
	}
	return 0;
}

void kargs_append(const char *s)
{
	size_t len = strlen(args);
	if (len && len + 1 < sizeof(args))
		args[len++] = ' ';
	strlcpy(args + len, s, sizeof(args) - len);
}

const char *kargs_line(void)
{
	return args;
}
