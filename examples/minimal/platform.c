/*
 * examples/minimal/platform.c - the functions of the minimal platform: a
 * static arena of 8 KiB pages handed out first-fit (a byte per page says
 * whether the heap has it; every page is 8 KiB aligned, all mm/platform.h
 * asks); mm_log only counts, mm_panic traps; and the
 * memset/memcpy the heap needs, as plain loops (the attribute keeps gcc
 * from turning them back into calls to themselves).
 */
#include "mm/platform.h"

#ifndef MINIMAL_ARENA_BYTES
#define MINIMAL_ARENA_BYTES (16UL << 20)
#endif
#define NPAGES (MINIMAL_ARENA_BYTES / MM_SYS_ALIGN)

static unsigned char arena[MINIMAL_ARENA_BYTES] __attribute__((aligned(MM_SYS_ALIGN)));
static unsigned char page_used[NPAGES];
size_t minimal_arena_bytes_out;   /* handed to the heap now */
unsigned minimal_log_lines;       /* mm_log calls */

void *mm_sys_alloc(size_t bytes)
{
	size_t n = bytes / MM_SYS_ALIGN;
	for (size_t i = 0; i + n <= NPAGES; i++) {
		size_t j = 0;
		while (j < n && !page_used[i + j])
			j++;
		if (j == n) {
			memset(&page_used[i], 1, n);
			minimal_arena_bytes_out += bytes;
			return arena + i * MM_SYS_ALIGN;
		}
	}
	return NULL;
}

void mm_sys_free(void *p, size_t bytes)
{
	memset(&page_used[((unsigned char *)p - arena) / MM_SYS_ALIGN], 0, bytes / MM_SYS_ALIGN);
	minimal_arena_bytes_out -= bytes;
}

void mm_log(const char *fmt, ...) { (void)fmt; minimal_log_lines++; }
_Noreturn void mm_panic(const char *fmt, ...) { (void)fmt; __builtin_trap(); }

#define PLAIN_LOOP __attribute__((optimize("no-tree-loop-distribute-patterns")))

PLAIN_LOOP void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

PLAIN_LOOP void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}
