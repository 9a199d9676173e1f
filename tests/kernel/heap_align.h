/*
 * tests/kernel/heap_align.h - the alignment mm/kmalloc.h promises, as the
 * tests check it: one statement of the rule for the in-kernel suites
 * (through heap_testlib.h), the hosted fuzzer and the TSan stress.
 */
#ifndef TESTS_KERNEL_HEAP_ALIGN_H
#define TESTS_KERNEL_HEAP_ALIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "mm/kmalloc.h"
#include "mm/sizeclasses.h"   /* MAX_SMALL_SIZE, TINY_SIZE */

static inline bool heap_is_pow2(size_t x)
{
	return x && !(x & (x - 1));
}

/* Go's tiny-allocator alignment for a noscan request below 16 bytes. */
static inline size_t heap_tiny_align(size_t size)
{
	if ((size & 7) == 0)
		return 8;
	if ((size & 3) == 0)
		return 4;
	if ((size & 1) == 0)
		return 2;
	return 1;
}

/*
 * The alignment of a live object p of `size` bytes asked with `flags`:
 * Go's tiny rules for a noscan request under 16 bytes; otherwise the
 * largest power of two dividing its class's object size (ksize), up to
 * 32 KiB (8 KiB, a page, for a large object), and at least 8.
 */
static inline size_t heap_expected_align(const void *p, size_t size,
					 unsigned flags)
{
	if ((flags & KM_NOSCAN) && size > 0 && size < TINY_SIZE)
		return heap_tiny_align(size);
	size_t usable = ksize(p);
	size_t a = usable ? usable & -usable : 8;
	/* Small: up to the 32 KiB class; a large object is page-aligned. */
	size_t cap = usable > MAX_SMALL_SIZE ? 8192 : 32768;
	if (a > cap)
		a = cap;
	return a < 8 ? 8 : a;
}

/* The whole promise for a fresh object: heap_expected_align, a
 * power-of-two size up to 32 KiB naturally aligned (tiny requests
 * excepted), and at least `align` (from kmalloc_aligned; 0 otherwise). */
static inline size_t heap_promised_align(const void *p, size_t size,
					 unsigned flags, size_t align)
{
	size_t a = heap_expected_align(p, size, flags);
	if (heap_is_pow2(size) && size <= 32768 && size > a &&
	    !((flags & KM_NOSCAN) && size < TINY_SIZE))
		a = size;
	return align > a ? align : a;
}

#endif
