/*
 * tests/host/pagemap_window/platform.c - the page-map window test's
 * platform (Linux user space, one thread). The window [PW_BASE, PW_END) and
 * 16 MiB on each side of it are reserved with one mmap at a fixed address
 * (MAP_NORESERVE: only touched pages cost memory). Inside the window, pages
 * are handed out first fit (a byte per 8 KiB page says whether the heap has
 * it), a power-of-two request naturally aligned (this test's choice:
 * mm/platform.h requires 8 KiB only). The test chooses where the next
 * chunks (requests of 1 MiB and more) go: pw_place_chunks(PW_BELOW) and the
 * others place them just outside or across the window's edges (until the
 * test says otherwise: the heap asks again after scavenging), and every
 * such region is tracked until the heap gives it back; PW_TOP places one
 * chunk at the window's top (the 8 KiB page-map leaf that may follow goes
 * first fit). mm_log prints the line as a KTAP diagnostic and counts the
 * ones about the window.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "mm/platform.h"
#include "pw_platform.h"

#define SLACK (16UL << 20)
#define NPAGES ((1UL << PW_BITS) / MM_SYS_ALIGN)
#define CHUNK_MIN (1UL << 20)
#define MAX_OUTSIDE 8

struct pw_counts pw_counts;
static unsigned char page_used[NPAGES];
static enum pw_place place = PW_INSIDE;
static struct { uintptr_t p; size_t bytes; } outside[MAX_OUTSIDE];

int pw_platform_init(void)
{
	void *want = (void *)(PW_BASE - SLACK);
	void *got = mmap(want, (1UL << PW_BITS) + 2 * SLACK, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (got == MAP_FAILED)
		return -1;
	if (got != want) {
		munmap(got, (1UL << PW_BITS) + 2 * SLACK);
		errno = EEXIST;
		return -1;
	}
	return 0;
}

void pw_place_chunks(enum pw_place where)
{
	place = where;
}

static size_t first_page(uintptr_t p) { return (p - PW_BASE) / MM_SYS_ALIGN; }

/* Whether the window pages of [p, p+bytes) are all free. */
static int window_pages_free(uintptr_t p, size_t bytes)
{
	for (uintptr_t a = p; a < p + bytes && a < PW_END; a += MM_SYS_ALIGN)
		if (a >= PW_BASE && page_used[first_page(a)])
			return 0;
	return 1;
}

static void mark_window_pages(uintptr_t p, size_t bytes, unsigned char used)
{
	for (uintptr_t a = p; a < p + bytes && a < PW_END; a += MM_SYS_ALIGN)
		if (a >= PW_BASE)
			page_used[first_page(a)] = used;
}

static void *first_fit(size_t bytes, size_t align)
{
	for (uintptr_t p = PW_BASE; p + bytes <= PW_END; p += align)
		if (window_pages_free(p, bytes)) {
			mark_window_pages(p, bytes, 1);
			pw_counts.inside_held += bytes;
			return (void *)p;
		}
	return NULL;
}

static void *hand_outside(uintptr_t p, size_t bytes)
{
	for (unsigned i = 0; i < MAX_OUTSIDE; i++)
		if (!outside[i].p) {
			if (!window_pages_free(p, bytes))
				return NULL;
			mark_window_pages(p, bytes, 1);
			outside[i].p = p;
			outside[i].bytes = bytes;
			pw_counts.outside_handed++;
			pw_counts.outside_held += bytes;
			return (void *)p;
		}
	return NULL;
}

void *mm_sys_alloc(size_t bytes)
{
	int pow2 = (bytes & (bytes - 1)) == 0;
	size_t align = pow2 ? bytes : MM_SYS_ALIGN;

	if (bytes < CHUNK_MIN || place == PW_INSIDE)
		return first_fit(bytes, align);
	switch (place) {
	case PW_BELOW:
		return hand_outside((PW_BASE - bytes) & ~(uintptr_t)(align - 1), bytes);
	case PW_ABOVE:
		return hand_outside(PW_END, bytes);
	case PW_ACROSS:
		/* A naturally aligned power of two cannot cross PW_END. */
		if (pow2)
			return hand_outside(PW_END, bytes);
		pw_counts.across_handed++;
		return hand_outside(PW_END - CHUNK_MIN, bytes);
	case PW_TOP: {
		uintptr_t p = (PW_END - bytes) & ~(uintptr_t)(align - 1);
		if (!window_pages_free(p, bytes))
			return NULL;
		mark_window_pages(p, bytes, 1);
		pw_counts.inside_held += bytes;
		pw_counts.top_handed++;
		place = PW_INSIDE;   /* once: the leaf that follows goes anywhere */
		return (void *)p;
	}
	default:
		return NULL;
	}
}

void mm_sys_free(void *ptr, size_t bytes)
{
	uintptr_t p = (uintptr_t)ptr;
	for (unsigned i = 0; i < MAX_OUTSIDE; i++)
		if (outside[i].p == p) {
			if (outside[i].bytes != bytes)
				pw_counts.bad_frees++;
			mark_window_pages(p, outside[i].bytes, 0);
			pw_counts.outside_held -= outside[i].bytes;
			outside[i].p = 0;
			return;
		}
	if (p < PW_BASE || p + bytes > PW_END || p % MM_SYS_ALIGN) {
		pw_counts.bad_frees++;
		return;
	}
	for (uintptr_t a = p; a < p + bytes; a += MM_SYS_ALIGN)
		if (!page_used[first_page(a)]) {
			pw_counts.bad_frees++;
			return;
		}
	mark_window_pages(p, bytes, 0);
	madvise(ptr, bytes, MADV_DONTNEED);
	pw_counts.inside_held -= bytes;
}

void mm_log(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	printf("# mm_log: %s\n", buf);
	pw_counts.log_lines++;
	if (strstr(buf, "MM_PAGEMAP_BASE") && strstr(buf, "MM_PAGEMAP_BITS"))
		pw_counts.window_log_lines++;
}

_Noreturn void mm_panic(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	printf("# mm_panic: %s\nnot ok - the heap panicked\n0 passed, 1 failed\n", buf);
	fflush(stdout);
	abort();
}
