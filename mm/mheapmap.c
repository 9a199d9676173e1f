/*
 * mm/mheapmap.c - the heap map: the mheap drawn one character per page,
 * so that fragmentation can be seen (kmem_heap_map, kmem_heap_map_write).
 *
 * The map goes chunk by chunk (arena by arena, in each chunk list's
 * order), 64 pages to a line after the address of the line's first page.
 * Each page's span (mheap_span_in_chunk_locked: the page map, which holds
 * only the ends of large objects and free runs, and a walk between them)
 * gives the character by its state and class: a size class family for a small
 * span ('1'..'9' then 'a'..'z' without 'c': classes 1-2, 3-4, ..., 67),
 * 'L' a large object, 'c' a run in a per-CPU page cache, '.' a free run,
 * 'R' a free run in a retained (wholly free) chunk, '?' a page no span
 * covers (a broken heap).
 *
 * A line is made under its arena's lock and printed without it (mm_log
 * may be slow), so a map of a heap in use is a sequence of consistent
 * lines, not one snapshot. kmem_heap_map prints a run of identical lines once with a
 * count (a 256 MiB heap is 512 lines); kmem_heap_map_write writes every
 * line, for tests and tools.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "mm/kmalloc.h"
#include "mm/malloc_internal.h"
#include "mm/mheap.h"
#include "mm/platform.h"

#define MAP_LINE_PAGES 64

/* 34 families of two consecutive size classes (1..67). */
static const char class_family_chars[] = "123456789abdefghijklmnopqrstuvwxyz";

static char page_char(const struct mspan *s, const struct heap_chunk *c)
{
	if (!s)
		return '?';
	switch (mspan_state_of(s)) {
	case MSPAN_FREE:
		return c->retained ? 'R' : '.';
	case MSPAN_LARGE:
		return 'L';
	case MSPAN_CACHED:
		return 'c';
	case MSPAN_INUSE: {
		unsigned cls = spanclass_sizeclass(s->spanclass);
		return cls ? class_family_chars[(cls - 1) / 2] : '?';
	}
	default:
		return '?';
	}
}

/* One line of the map: pages [first, first + 64) of the k-th chunk (the
 * arenas' chunk lists one after the other) into out (no terminator).
 * Returns the characters written, 0 when the chunk has no such page or
 * there is no k-th chunk; *base and *npages are the chunk's. Under its
 * arena's lock for the line. */
static size_t map_line(size_t k, size_t first, char *out, uintptr_t *base, size_t *npages)
{
	size_t n = 0;
	for (unsigned arena = 0, narenas = mheap_arenas_in_use(); arena < narenas; arena++) {
		struct mheap *h = mheap_arena(arena);
		unsigned long flags = mm_spin_lock_irqsave(&h->lock);
		struct heap_chunk *c = h->chunks;
		for (; c && k; k--)
			c = c->next;
		if (c) {
			*base = c->base;
			*npages = c->npages;
			/* The page map holds only the ends of large objects and
			 * free runs (mm/pagemap.h): carry each span over its pages. */
			struct mspan *s = NULL;
			uintptr_t s_end = 0;
			for (size_t pg = first; pg < c->npages && n < MAP_LINE_PAGES; pg++, n++) {
				uintptr_t a = c->base + (pg << MM_PAGE_SHIFT);
				if (!s || a >= s_end) {
					s = mheap_span_in_chunk_locked(c, a);
					s_end = s ? s->startaddr + ((uintptr_t)s->npages << MM_PAGE_SHIFT) : 0;
				}
				out[n] = page_char(s, c);
			}
		}
		mm_spin_unlock_irqrestore(&h->lock, flags);
		if (c)
			break;
	}
	return n;
}

static bool same_line(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

/* Append len bytes of s to buf (size bytes) at *at, counting what does
 * not fit. */
static void put(char *buf, size_t size, size_t *at, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++, (*at)++)
		if (*at + 1 < size)
			buf[*at] = s[i];
}

/* "0x" and 16 hex digits of v into out. */
static void hex_addr(char *out, uintptr_t v)
{
	out[0] = '0';
	out[1] = 'x';
	for (int i = 0; i < 16; i++)
		out[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 0xf];
}

size_t kmem_heap_map_write(char *buf, size_t size)
{
	size_t at = 0;
	if (!mheap_ready()) {
		if (size)
			buf[0] = 0;
		return 0;
	}
	for (size_t k = 0;; k++) {
		uintptr_t base = 0;
		size_t npages = 0, n;
		char line[MAP_LINE_PAGES], addr[18];
		for (size_t first = 0; (n = map_line(k, first, line, &base, &npages)) > 0;
		     first += MAP_LINE_PAGES) {
			hex_addr(addr, base + (first << MM_PAGE_SHIFT));
			put(buf, size, &at, addr, sizeof(addr));
			put(buf, size, &at, " ", 1);
			put(buf, size, &at, line, n);
			put(buf, size, &at, "\n", 1);
		}
		if (npages == 0)
			break;
	}
	if (size)
		buf[at < size ? at : size - 1] = 0;
	return at;
}

void kmem_heap_map(void)
{
	if (!mheap_ready()) {
		mm_log("heap map: no heap yet");
		return;
	}
	mm_log("heap map: one character per 8 KiB page, 64 per line: '1'..'z' size class "
	       "family (classes 1-2, 3-4, ...), 'L' large, 'c' page-cached, '.' free, "
	       "'R' retained");
	for (size_t k = 0;; k++) {
		uintptr_t base = 0;
		size_t npages = 0, n, prev_n = 0, repeats = 0;
		char line[MAP_LINE_PAGES + 1], prev[MAP_LINE_PAGES + 1];
		for (size_t first = 0; (n = map_line(k, first, line, &base, &npages)) > 0;
		     first += MAP_LINE_PAGES) {
			line[n] = 0;
			if (first == 0)
				mm_log("chunk %p: %lu pages (%lu KiB)", (void *)base,
				       (unsigned long)npages,
				       (unsigned long)((npages << MM_PAGE_SHIFT) >> 10));
			if (n == prev_n && same_line(line, prev, n)) {
				repeats++;
				continue;
			}
			if (repeats)
				mm_log("  ... %lu more lines like the one above", (unsigned long)repeats);
			repeats = 0;
			mm_log("%p %s", (void *)(base + (first << MM_PAGE_SHIFT)), line);
			for (size_t i = 0; i <= n; i++)
				prev[i] = line[i];
			prev_n = n;
		}
		if (repeats)
			mm_log("  ... %lu more lines like the one above", (unsigned long)repeats);
		if (npages == 0)
			break;
	}
}
