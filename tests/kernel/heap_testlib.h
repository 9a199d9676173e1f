/*
 * tests/kernel/heap_testlib.h - helpers shared by the heap_* self-tests.
 *
 * The heap suites test mm/kmalloc.h from the outside, as any kernel code
 * would use it, in the kernel and in the hosted build alike. They need three
 * things over and over: a byte pattern derived from an object's id (so a
 * changed or overlapping object is caught when its pattern is checked
 * before it is freed), a sort of addresses (so "no two live objects
 * overlap" is one pass over sorted intervals), and the heap's counters
 * before and after. Everything here is static inline: the file is included
 * by several test files and must not warn about unused functions.
 */
#ifndef TESTS_KERNEL_HEAP_TESTLIB_H
#define TESTS_KERNEL_HEAP_TESTLIB_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "lib/string.h"
#include "mm/kmalloc.h"
#include "tests/kernel/heap_align.h"
#include "tests/kernel/ktest.h"

/*
 * The heap's debug mode (make DEBUG_HEAP=1) changes two visible things:
 * ksize() is exactly the size asked for (the rest of the object is a red
 * zone), and nothing takes the tiny path (red zone and trailer make every
 * object bigger than a tiny block). Tests of class sizes, in-place krealloc
 * and tiny packing check those only in the normal build.
 */
#if defined(DEBUG_HEAP) && DEBUG_HEAP
#define HEAP_DEBUG_MODE 1
#else
#define HEAP_DEBUG_MODE 0
#endif

/* Word k of the pattern of object `id`: a mix of both, never constant. */
static inline uint64_t heap_pattern_word(uint64_t id, uint64_t k)
{
	uint64_t x = (id << 32 ^ k) * 0x9e3779b97f4a7c15ULL + id;
	x ^= x >> 29;
	return x * 0xbf58476d1ce4e5b9ULL ^ (x >> 31);
}

/* Byte i of the pattern of object `id` (byte i & 7 of word i / 8, little
 * endian, so aligned words and single bytes agree). */
static inline uint8_t heap_pattern_byte(uint64_t id, size_t i)
{
	return (uint8_t)(heap_pattern_word(id, i >> 3) >> ((i & 7) * 8));
}

/* Write the pattern of `id` into bytes [from, to) of object p. */
static inline void heap_fill_range(void *p, uint64_t id, size_t from, size_t to)
{
	uint8_t *b = p;
	size_t i = from;
	while (i < to && ((uintptr_t)(b + i) & 7))
		b[i] = heap_pattern_byte(id, i), i++;
	if (((uintptr_t)b & 7) == 0) {
		for (; i + 8 <= to; i += 8)
			*(uint64_t *)(b + i) = heap_pattern_word(id, i >> 3);
	}
	for (; i < to; i++)
		b[i] = heap_pattern_byte(id, i);
}

/* Offset of the first byte in [from, to) of p that differs from the
 * pattern of `id`, or `to` when all match. */
static inline size_t heap_check_range(const void *p, uint64_t id, size_t from,
				      size_t to)
{
	const uint8_t *b = p;
	size_t i = from;
	while (i < to && ((uintptr_t)(b + i) & 7)) {
		if (b[i] != heap_pattern_byte(id, i))
			return i;
		i++;
	}
	if (((uintptr_t)b & 7) == 0) {
		for (; i + 8 <= to; i += 8)
			if (*(const uint64_t *)(b + i) != heap_pattern_word(id, i >> 3))
				break;
	}
	for (; i < to; i++)
		if (b[i] != heap_pattern_byte(id, i))
			return i;
	return to;
}

/*
 * Objects above HEAP_FULL_CHECK bytes get a sparse pattern: their first and
 * last KiB and one word at every 4 KiB boundary in between. Together with
 * the interval checks that still sees overlaps and stray writes, while
 * keeping million-operation runs fast under emulation. heap_region() walks
 * that layout: region k of an object of `size` bytes is [*from, *to);
 * it returns false past the last region.
 */
#define HEAP_FULL_CHECK 4096u

static inline bool heap_region(size_t size, size_t k, size_t *from, size_t *to)
{
	if (size <= HEAP_FULL_CHECK) {
		*from = 0, *to = size;
		return k == 0;
	}
	size_t words = (size - 1024 - 8) / 4096; /* 4096, 8192, ... */
	if (k == 0) {
		*from = 0, *to = 1024;
	} else if (k <= words) {
		*from = k * 4096, *to = k * 4096 + 8;
	} else if (k == words + 1) {
		*from = size - 1024, *to = size;
	} else {
		return false;
	}
	return true;
}

static inline void heap_fill(void *p, uint64_t id, size_t size)
{
	size_t from, to;
	for (size_t k = 0; heap_region(size, k, &from, &to); k++)
		heap_fill_range(p, id, from, to);
}

/* True when the pattern of `id`, laid out for an object of `size` bytes,
 * is intact in the object's first `limit` bytes; otherwise logs the first
 * differing offset. */
static inline bool heap_check_upto(const void *p, uint64_t id, size_t size,
				   size_t limit)
{
	size_t from, to;
	for (size_t k = 0; heap_region(size, k, &from, &to); k++) {
		if (to > limit)
			to = limit;
		if (from >= to)
			continue;
		size_t bad = heap_check_range(p, id, from, to);
		if (bad != to) {
			ktest_log("object %p (id %llu, %zu bytes): byte %zu is "
				  "%#x, expected %#x", p, (unsigned long long)id,
				  size, bad, ((const uint8_t *)p)[bad],
				  heap_pattern_byte(id, bad));
			return false;
		}
	}
	return true;
}

static inline bool heap_check(const void *p, uint64_t id, size_t size)
{
	return heap_check_upto(p, id, size, size);
}

/* A live object in a shadow record. */
struct heap_obj {
	uintptr_t addr;
	size_t size;
	uint64_t id;
};

/* Sort objects by address (heapsort: no recursion, no allocation). */
static inline void heap_sift_down(struct heap_obj *a, size_t root, size_t n)
{
	for (;;) {
		size_t child = 2 * root + 1;
		if (child >= n)
			return;
		if (child + 1 < n && a[child + 1].addr > a[child].addr)
			child++;
		if (a[root].addr >= a[child].addr)
			return;
		struct heap_obj t = a[root];
		a[root] = a[child];
		a[child] = t;
		root = child;
	}
}

static inline void heap_sort_by_addr(struct heap_obj *a, size_t n)
{
	if (n < 2)
		return;
	for (size_t i = n / 2; i-- > 0;)
		heap_sift_down(a, i, n);
	for (size_t end = n - 1; end > 0; end--) {
		struct heap_obj t = a[0];
		a[0] = a[end];
		a[end] = t;
		heap_sift_down(a, 0, end);
	}
}

/* Sorts `a` and returns the number of adjacent pairs whose byte ranges
 * [addr, addr + max(size, 1)) overlap, logging the first one. */
static inline size_t heap_count_overlaps(struct heap_obj *a, size_t n)
{
	size_t bad = 0;
	heap_sort_by_addr(a, n);
	for (size_t i = 1; i < n; i++) {
		size_t prev_size = a[i - 1].size ? a[i - 1].size : 1;
		if (a[i - 1].addr + prev_size > a[i].addr) {
			if (!bad)
				ktest_log("objects overlap: %#llx+%zu and %#llx+%zu",
					  (unsigned long long)a[i - 1].addr,
					  a[i - 1].size,
					  (unsigned long long)a[i].addr, a[i].size);
			bad++;
		}
	}
	return bad;
}

/* Fisher-Yates shuffle of a pointer array. */
static inline void heap_shuffle(void **a, size_t n, struct ktest_rng *rng)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)ktest_rng_below(rng, i);
		void *t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}

static inline struct kmem_stats heap_stats(void)
{
	struct kmem_stats st;
	kmem_get_stats(&st);
	return st;
}

/* Give every cached span back and return the heap's footprint: a test
 * records it first and compares at the end, after freeing everything. */
static inline uint64_t heap_drained_bytes(void)
{
	kmem_drain_all();
	return heap_stats().heap_bytes;
}

#endif
