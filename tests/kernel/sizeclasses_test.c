/*
 * tests/kernel/sizeclasses_test.c - the generated size classes are Go's
 * and keep Go's promises.
 *
 * mm/sizeclasses.{h,c} come from tools/mksizeclasses.c. These tests check
 * the result against facts published in Go's runtime (the bytes/obj and
 * pages/span columns of internal/runtime/gc/sizeclasses.go, embedded below
 * as test data; the pages per span follow our own rule on top of Go's,
 * expected_npages) and against the properties the heap relies on: every size
 * maps to the smallest class that holds it, waste stays within Go's bounds,
 * the magic divisor equals a real division at every offset of a span, and
 * object sizes are increasing and aligned.
 */
#include <stdint.h>
#include <stddef.h>
#include "mm/sizeclasses.h"
#include "tests/kernel/ktest.h"

/* Go's published table (Go 1.21+): class 1..67, bytes/obj and pages. */
static const uint16_t go_class_size[68] = {
	0,     8,     16,    24,    32,    48,    64,    80,    96,    112,
	128,   144,   160,   176,   192,   208,   224,   240,   256,   288,
	320,   352,   384,   416,   448,   480,   512,   576,   640,   704,
	768,   896,   1024,  1152,  1280,  1408,  1536,  1792,  2048,  2304,
	2688,  3072,  3200,  3456,  4096,  4864,  5376,  6144,  6528,  6784,
	6912,  8192,  9472,  9728,  10240, 10880, 12288, 13568, 14336, 16384,
	18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768,
};

static const uint8_t go_class_npages[68] = {
	0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 2, 1, 2,
	1, 3, 2, 3, 1, 3, 2, 3, 4, 5, 6, 1, 7, 6, 5, 4, 3, 5, 7, 2,
	9, 7, 5, 8, 3, 10, 7, 4,
};

/* Our pages per span: Go's, but a class whose Go span holds fewer than
 * 64 objects gets the shortest whole multiple of it that holds 64, at most
 * 8 pages (tools/mksizeclasses.c, grow_spans). */
static unsigned expected_npages(unsigned c)
{
	unsigned go = go_class_npages[c], k = 1;
	if (c == 0)
		return 0;
	while (k * go * 8192u / go_class_size[c] < 64 && (k + 1) * go <= 8)
		k++;
	return k * go;
}

static uint32_t span_bytes(unsigned cls)
{
	return (uint32_t)class_to_npages[cls] * MM_PAGE_SIZE;
}

static uint32_t objects_per_span(unsigned cls)
{
	return span_bytes(cls) / class_to_size[cls];
}

KTEST(sizeclasses, constants_match_go)
{
	KEXPECT_EQ(MM_PAGE_SIZE, 8192);
	KEXPECT_EQ(NUM_SIZE_CLASSES, 68);
	KEXPECT_EQ(MAX_SMALL_SIZE, 32768);
	KEXPECT_EQ(class_to_size[NUM_SIZE_CLASSES - 1], MAX_SMALL_SIZE);
	KEXPECT_EQ(class_to_size[TINY_SIZE_CLASS], TINY_SIZE);
	/* Class 0 is "large": no object size, no span of its own size. */
	KEXPECT_EQ(class_to_size[0], 0);
	KEXPECT_EQ(class_to_npages[0], 0);
	KEXPECT_EQ(class_to_divmagic[0], 0);
}

KTEST(sizeclasses, table_equals_gos_published_table_with_our_span_rule)
{
	for (unsigned c = 0; c < NUM_SIZE_CLASSES; c++) {
		KEXPECT_EQ(class_to_size[c], go_class_size[c]);
		KEXPECT_EQ(class_to_npages[c], expected_npages(c));
		if (ktest_failures()) {
			ktest_log("first mismatch at class %u", c);
			return;
		}
	}
}

KTEST(sizeclasses, every_size_maps_to_smallest_fitting_class)
{
	for (uint32_t size = 1; size <= MAX_SMALL_SIZE; size++) {
		unsigned c = size_to_class(size);

		KASSERT_GE(c, 1);
		KASSERT_LT(c, NUM_SIZE_CLASSES);
		KEXPECT_GE(class_to_size[c], size);
		if (c > 1)
			KEXPECT_LT(class_to_size[c - 1], size);
		if (ktest_failures()) {
			ktest_log("size %u maps to class %u (%u bytes)", size, c,
				  class_to_size[c]);
			return;
		}
	}
}

KTEST(sizeclasses, class_sizes_map_to_themselves)
{
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++)
		KEXPECT_EQ(size_to_class(class_to_size[c]), c);
}

/* Tail waste (the end of a span no object fits in) is at most 1/8 of the
 * span, Go's rule for choosing pages per span. */
KTEST(sizeclasses, tail_waste_at_most_one_eighth)
{
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		uint32_t span = span_bytes(c);
		uint32_t tail = span - objects_per_span(c) * class_to_size[c];

		KEXPECT_LE(tail * 8, span);
	}
}

/* Max waste: every object one byte bigger than the class below, plus the
 * tail. Go bounds it by 1.125 * 1.125 - 1 = 17/64 (26.6%) once alignment
 * no longer dominates (128 bytes up); below that the step between classes
 * is at most one alignment unit (16 bytes). */
KTEST(sizeclasses, max_waste_within_gos_bounds)
{
	uint32_t prev = 0;

	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		uint32_t size = class_to_size[c];
		uint32_t span = span_bytes(c);
		uint32_t objs = objects_per_span(c);
		uint64_t wasted = (uint64_t)(size - prev - 1) * objs +
				  (span - objs * size);

		if (size >= 128)
			KEXPECT_LE(wasted * 64, (uint64_t)span * 17);
		else
			KEXPECT_LE(size - prev, 16);
		prev = size;
	}
}

KTEST(sizeclasses, span_limits)
{
	uint32_t most_objs = 0, most_pages = 0;

	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		KEXPECT_GE(objects_per_span(c), 1);
		if (objects_per_span(c) > most_objs)
			most_objs = objects_per_span(c);
		if (class_to_npages[c] > most_pages)
			most_pages = class_to_npages[c];
	}
	KEXPECT_EQ(most_objs, MAX_OBJS_PER_SPAN);
	KEXPECT_EQ(most_pages, MAX_SIZE_CLASS_NPAGES);
}

KTEST(sizeclasses, divmagic_is_gos_formula)
{
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++)
		KEXPECT_EQ(class_to_divmagic[c],
			   (uint32_t)(0xffffffffu / class_to_size[c] + 1));
}

/* The heap turns an address into an object index with the magic divisor:
 * it must be the exact quotient for every offset in a span, end included,
 * and tell exactly the offsets that start an object. */
KTEST(sizeclasses, divmagic_equals_division_at_every_offset)
{
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		uint32_t size = class_to_size[c];
		uint32_t span = span_bytes(c);

		for (uint32_t off = 0; off <= span; off++) {
			if (size_class_obj_index(c, off) != off / size) {
				KEXPECT_EQ(size_class_obj_index(c, off), off / size);
				ktest_log("class %u (%u bytes), offset %u", c, size, off);
				return;
			}
			/* ... and the product's low half tells an object start
			 * (kfree's fast path). */
			uint64_t x = (uint64_t)off * class_to_divmagic[c];
			if (size_class_is_start(x, class_to_divmagic[c]) != (off % size == 0)) {
				KEXPECT_EQ(size_class_is_start(x, class_to_divmagic[c]),
					   off % size == 0);
				ktest_log("start test: class %u (%u bytes), offset %u", c, size, off);
				return;
			}
		}
	}
}

KTEST(sizeclasses, sizes_increasing_and_aligned)
{
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		uint32_t size = class_to_size[c];

		KEXPECT_GT(size, class_to_size[c - 1]);
		KEXPECT_EQ(size % MIN_HEAP_ALIGN, 0);
		/* Go: 16-byte alignment from 32 bytes up (24 is 8-aligned). */
		if (size >= 32)
			KEXPECT_EQ(size % 16, 0);
		/* Sizes past 1 KiB sit on the 128-byte lookup grid. */
		if (size > SMALL_SIZE_MAX)
			KEXPECT_EQ(size % LARGE_SIZE_DIV, 0);
	}
}

/* Every power of two from 8 to 32 KiB is a class of its own, so (spans
 * being 8 KiB-aligned) kmalloc of a power of two up to 8 KiB is naturally
 * aligned. */
KTEST(sizeclasses, powers_of_two_are_exact_classes)
{
	for (uint32_t size = 8; size <= MAX_SMALL_SIZE; size <<= 1)
		KEXPECT_EQ(class_to_size[size_to_class(size)], size);
}
