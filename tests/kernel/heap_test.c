/*
 * tests/kernel/heap_test.c - the heap's public API, tested from outside.
 *
 * These suites use only mm/kmalloc.h (and the size-class table to know
 * which sizes exist), exactly as kernel code would, but for two heap_api
 * tests that check the fast paths' reach into the heap's own state
 * (the_fast_paths_reach_this_cpus_mcache,
 * a_free_above_the_page_maps_flat_part_goes_through_its_root), and build
 * into the kernel and into the hosted test binary. Each test frees
 * everything it allocated and ends with mheap_verify(); tests that empty
 * the heap also check that the heap's footprint returns to what it was
 * before (kmem_drain_all() first).
 *
 *   heap_api      kmalloc(0), kfree(NULL), impossible sizes, ksize, KM_ZERO,
 *                 kzalloc/kcalloc, counters
 *   heap_classes  every size class until several spans fill, patterns,
 *                 random-order free, memory back
 *   heap_tiny     Go's 16-byte tiny blocks: packing, alignment, reclaim
 *   heap_large    objects of odd page counts above 32 KiB
 *   heap_realloc  krealloc keeps contents, in place within a class
 *   heap_align    natural alignment of powers of two, kmalloc_aligned
 */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "lib/string.h"
#include "mm/kmalloc.h"
#include "mm/platform.h"
#include "mm/sizeclasses.h"
#include "mm/mcache.h"
#include "mm/mheap.h"
#include "tests/kernel/ktest.h"
#include "tests/kernel/heap_testlib.h"

/* Room for several spans of the smallest class (1024 objects per span). */
#define CLASS_MAX_OBJS 4096
static void *class_objs[CLASS_MAX_OBJS];
static struct heap_obj class_shadow[CLASS_MAX_OBJS];

/* ------------------------------------------------------------ heap_api -- */

KTEST(heap_api, kmalloc_zero_unique)
{
	enum { N = 64 };
	static void *p[N];
	struct kmem_stats before = heap_stats();

	for (int i = 0; i < N; i++) {
		p[i] = kmalloc(0, 0);
		KEXPECT_NOT_NULL(p[i]);
	}
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			if (p[i] && p[i] == p[j])
				KEXPECT_NE(p[i], p[j]);
	for (int i = 0; i < N; i++)
		kfree(p[i]);
	/* The same through the other entry points. */
	void *z = kzalloc(0, 0), *c = kcalloc(0, 8, 0), *c2 = kcalloc(8, 0, 0);
	void *n = kmalloc(0, KM_NOSCAN);
	KEXPECT_NOT_NULL(z);
	KEXPECT_NOT_NULL(c);
	KEXPECT_NOT_NULL(c2);
	KEXPECT_NOT_NULL(n);
	KEXPECT_NE(z, c);
	KEXPECT_NE(c, c2);
	kfree(z);
	kfree(c);
	kfree(c2);
	kfree(n);
	KEXPECT_EQ(heap_stats().bad_frees, before.bad_frees);
	KEXPECT_EQ(heap_stats().objects_inuse, before.objects_inuse);
	KEXPECT_EQ(mheap_verify(), 0);
}

/* Once the heap is set up, the fast paths' section hands this CPU its
 * own mcache (mm_irq_save_local: the kernel's %gs, the hosted thread's
 * pointer), and kfree's fast path frees into the span this CPU allocates
 * from (its local_cache is that mcache). */
KTEST(heap_api, the_fast_paths_reach_this_cpus_mcache)
{
	void *p = kmalloc(48, 0);
	KASSERT_NOT_NULL(p);
	unsigned long irq;
	void *mc = mm_irq_save_local(&irq);
	unsigned cpu = mm_cpu_id();
	mm_irq_restore_local(irq);
	KEXPECT_EQ(mc, (void *)&mcaches[cpu]);
	struct mspan *s = mheap_span_of(p);
	KASSERT_NOT_NULL(s);
	KEXPECT_EQ((void *)s->local_cache, (void *)&mcaches[cpu]);
	unsigned spc = s->spanclass;
	int i = mspan_obj_index(s, (uintptr_t)p);
	KASSERT_GE(i, 0);
	struct kmem_class_stats before;
	KASSERT_EQ(kmem_get_class_stats(spc, &before), 0);
	struct kmem_stats sbefore = heap_stats();
	kfree(p);
	/* Freed (debug mode's quarantine frees later): its slot no longer
	 * live, its class one live object fewer, one more free counted. */
	if (!DEBUG_HEAP) {
		struct kmem_class_stats after;
		KASSERT_EQ(kmem_get_class_stats(spc, &after), 0);
		KEXPECT_FALSE(mspan_obj_live(s, (unsigned)i));
		KEXPECT_EQ(after.objects_inuse, before.objects_inuse - 1);
		KEXPECT_EQ(heap_stats().nfree, sbefore.nfree + 1);
	}
}

/* Where the platform asks for the page map's flat part (the kernel),
 * kfree's fast path reads only it; a page above it (a machine with more
 * RAM than one block of leaves covers) is found through the root by
 * kfree's miss. Pretend every page is above it: every free still lands,
 * counted, none reported, the heap consistent. */
KTEST(heap_api, a_free_above_the_page_maps_flat_part_goes_through_its_root)
{
#if defined(MM_HAVE_PAGEMAP_FLAT) && !DEBUG_HEAP
	enum { N = 200 };
	void *p[N];
	KASSERT_GT(pagemap_flat_pages, 0);
	for (unsigned i = 0; i < N; i++)
		KASSERT_NOT_NULL(p[i] = kmalloc(i % 2 ? 64 : 5000, 0));
	struct kmem_stats before = heap_stats();
	uint64_t flat = pagemap_flat_pages;
	__atomic_store_n(&pagemap_flat_pages, 0, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < N; i++)
		kfree(p[i]);
	__atomic_store_n(&pagemap_flat_pages, flat, __ATOMIC_RELAXED);
	struct kmem_stats after = heap_stats();
	KEXPECT_EQ(after.nfree - before.nfree, N);
	KEXPECT_EQ(after.bad_frees, before.bad_frees);
	KEXPECT_EQ(mheap_verify(), 0);
#else
	KTEST_SKIP("no page map flat part (MM_HAVE_PAGEMAP_FLAT), or debug mode (its frees wait in quarantine)");
#endif
}

KTEST(heap_api, kfree_null_is_noop)
{
	struct kmem_stats before = heap_stats();
	kfree(NULL);
	kfree(NULL);
	struct kmem_stats after = heap_stats();
	KEXPECT_EQ(after.bad_frees, before.bad_frees);
	KEXPECT_EQ(after.objects_inuse, before.objects_inuse);
	KEXPECT_EQ(after.nfree, before.nfree);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_api, impossible_sizes_return_null)
{
	static const size_t sizes[] = {
		SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4095, SIZE_MAX / 2,
		(size_t)1 << 63, (size_t)1 << 62, ((size_t)1 << 48) + 1,
	};
	struct kmem_stats before = heap_stats();

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t s = sizes[i];
		KEXPECT_NULL(kmalloc(s, 0));
		KEXPECT_NULL(kmalloc(s, KM_NOSCAN));
		KEXPECT_NULL(kmalloc(s, KM_ZERO));
		KEXPECT_NULL(kzalloc(s, 0));
		KEXPECT_NULL(kmalloc_aligned(s, 64, 0));
		KEXPECT_NULL(kmalloc_aligned(s, 4096, 0));
		KEXPECT_NULL(krealloc(NULL, s, 0));
	}
	/* kcalloc: n * size overflows 64 bits. */
	KEXPECT_NULL(kcalloc(SIZE_MAX, 2, 0));
	KEXPECT_NULL(kcalloc(2, SIZE_MAX, 0));
	KEXPECT_NULL(kcalloc((size_t)1 << 32, (size_t)1 << 32, 0));
	KEXPECT_NULL(kcalloc(((size_t)1 << 33) + 1, (size_t)1 << 31, 0));
	KEXPECT_NULL(kcalloc(SIZE_MAX / 3 + 1, 3, 0));
	/* A failed krealloc leaves the object as it was. */
	void *p = kmalloc(200, 0);
	KASSERT_NOT_NULL(p);
	heap_fill(p, 77, 200);
	size_t usable = ksize(p);
	KEXPECT_NULL(krealloc(p, SIZE_MAX, 0));
	KEXPECT_NULL(krealloc(p, (size_t)1 << 63, 0));
	KEXPECT_TRUE(heap_check(p, 77, 200));
	KEXPECT_EQ(ksize(p), usable);
	kfree(p);

	struct kmem_stats after = heap_stats();
	KEXPECT_EQ(after.bad_frees, before.bad_frees);
	KEXPECT_EQ(after.objects_inuse, before.objects_inuse);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_api, ksize_at_least_requested)
{
	static const size_t large[] = { 32769, 33 * 1024, 40 * 1024 + 1,
					100000, 1024 * 1024 + 8 * 1024 };
	for (size_t s = 1; s <= 4096; s += (s < 256 ? 1 : 37)) {
		void *p = kmalloc(s, 0);
		void *q = kmalloc(s, KM_NOSCAN);
		KASSERT_NOT_NULL(p);
		KASSERT_NOT_NULL(q);
		KEXPECT_GE(ksize(p), s);
		KEXPECT_GE(ksize(q), s);
		/* The whole usable size is ours to write. */
		heap_fill(p, s, ksize(p));
		KEXPECT_TRUE(heap_check(p, s, ksize(p)));
		kfree(p);
		kfree(q);
	}
	/* Sizes up to the largest class map to their class's size. */
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		size_t s = class_to_size[c];
		void *p = kmalloc(s, 0);
		KASSERT_NOT_NULL(p);
		KEXPECT_EQ(ksize(p), s);
		kfree(p);
	}
	for (size_t i = 0; i < sizeof(large) / sizeof(large[0]); i++) {
		void *p = kmalloc(large[i], 0);
		KASSERT_NOT_NULL(p);
		KEXPECT_GE(ksize(p), large[i]);
		kfree(p);
	}
	KEXPECT_EQ(mheap_verify(), 0);
}

/* Dirty memory (a pattern, then freed) comes back zeroed with KM_ZERO. */
static void zero_after_reuse(size_t size, unsigned flags, int n)
{
	static void *p[64];
	for (int i = 0; i < n; i++) {
		p[i] = kmalloc(size, flags);
		KASSERT_NOT_NULL(p[i]);
		/* A tiny object shares its block: dirty only its bytes. */
		bool tiny = (flags & KM_NOSCAN) && size < TINY_SIZE;
		memset(p[i], 0xa5, tiny || ksize(p[i]) < size ? size : ksize(p[i]));
	}
	for (int i = n; i-- > 0;)
		kfree(p[i]);
	for (int i = 0; i < n; i++) {
		void *q;
		switch (i % 3) {
		case 0: q = kmalloc(size, flags | KM_ZERO); break;
		case 1: q = kzalloc(size, flags); break;
		default: q = kcalloc(1, size, flags); break;
		}
		KASSERT_NOT_NULL(q);
		const uint8_t *b = q;
		size_t nonzero = 0;
		for (size_t k = 0; k < size; k++)
			nonzero += b[k] != 0;
		if (nonzero)
			ktest_log("size %zu flags %#x: %zu non-zero bytes at %p",
				  size, flags, nonzero, q);
		KEXPECT_EQ(nonzero, 0);
		memset(q, 0x5a, size);
		p[i] = q;
	}
	for (int i = 0; i < n; i++)
		kfree(p[i]);
}

KTEST(heap_api, km_zero_zeroes_reused_memory)
{
	static const size_t sizes[] = { 1, 3, 8, 12, 15, 16, 24, 100, 512,
					1000, 4096, 9000, 32768, 40000, 300000 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int n = sizes[i] > 32768 ? 4 : 64;
		zero_after_reuse(sizes[i], 0, n);
		zero_after_reuse(sizes[i], KM_NOSCAN, n);
	}
	/* kcalloc multiplies. */
	uint32_t *a = kcalloc(1000, sizeof(uint32_t), 0);
	KASSERT_NOT_NULL(a);
	KEXPECT_GE(ksize(a), 1000 * sizeof(uint32_t));
	size_t nonzero = 0;
	for (int i = 0; i < 1000; i++)
		nonzero += a[i] != 0;
	KEXPECT_EQ(nonzero, 0);
	kfree(a);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_api, counters_follow_calls)
{
	enum { N = 50 };
	static void *p[N];
	struct kmem_stats s0 = heap_stats();
	for (int i = 0; i < N; i++) {
		p[i] = kmalloc(64 + (size_t)i * 16, 0);
		KASSERT_NOT_NULL(p[i]);
	}
	struct kmem_stats s1 = heap_stats();
	KEXPECT_EQ(s1.nmalloc - s0.nmalloc, N);
	KEXPECT_EQ(s1.objects_inuse - s0.objects_inuse, N);
	KEXPECT_GE(s1.span_bytes_inuse, s0.span_bytes_inuse);
	void *big = kmalloc(200 * 1024, 0);
	KASSERT_NOT_NULL(big);
	struct kmem_stats s2 = heap_stats();
	KEXPECT_GE(s2.large_bytes - s1.large_bytes, 200 * 1024);
	KEXPECT_GE(s2.heap_bytes, s2.large_bytes);
	kfree(big);
	for (int i = 0; i < N; i++)
		kfree(p[i]);
	struct kmem_stats s3 = heap_stats();
	KEXPECT_EQ(s3.nfree - s0.nfree, N + 1);
	KEXPECT_EQ(s3.objects_inuse, s0.objects_inuse);
	KEXPECT_EQ(s3.large_bytes, s0.large_bytes);
	KEXPECT_EQ(s3.bad_frees, s0.bad_frees);
	KEXPECT_EQ(mheap_verify(), 0);
}

/* -------------------------------------------------------- heap_classes -- */

/* Allocate `n` objects of class c (size = its bytes/obj), check each one's
 * size, alignment and non-overlap, fill, verify, free in random order. */
static void exercise_class(unsigned c, unsigned flags, size_t n,
			   struct ktest_rng *rng)
{
	size_t size = class_to_size[c];
	size_t got = 0, wrong = 0;

	for (size_t i = 0; i < n; i++) {
		void *p = kmalloc(size, flags);
		if (!p) {
			KEXPECT_NOT_NULL(p);
			break;
		}
		class_objs[got] = p;
		class_shadow[got] = (struct heap_obj){ (uintptr_t)p, size,
						       c * 100000 + got };
		got++;
		size_t align = heap_expected_align(p, size, flags);
		if (heap_is_pow2(size) && size <= 4096 && align < size)
			align = size;
		if (ksize(p) != size || (uintptr_t)p % align) {
			if (!wrong++)
				ktest_log("class %u (%zu bytes): object %p, ksize "
					  "%zu, expected %zu-aligned", c, size, p,
					  ksize(p), align);
		}
		heap_fill(p, c * 100000 + i, size);
	}
	KEXPECT_EQ(wrong, 0); /* ksize or alignment wrong */
	/* Every object is still intact once all of them are written. */
	size_t corrupt = 0;
	for (size_t i = 0; i < got; i++)
		corrupt += !heap_check(class_objs[i], c * 100000 + i, size);
	KEXPECT_EQ(corrupt, 0);
	KEXPECT_EQ(heap_count_overlaps(class_shadow, got), 0);
	/* class_shadow is now sorted; class_objs keeps allocation order for
	 * the ids. Free in random order, checking each before its free. */
	static size_t order[CLASS_MAX_OBJS];
	for (size_t i = 0; i < got; i++)
		order[i] = i;
	for (size_t i = got; i > 1; i--) {
		size_t j = (size_t)ktest_rng_below(rng, i);
		size_t t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	corrupt = 0;
	for (size_t k = 0; k < got; k++) {
		size_t i = order[k];
		corrupt += !heap_check(class_objs[i], c * 100000 + i, size);
		kfree(class_objs[i]);
	}
	KEXPECT_EQ(corrupt, 0);
}

KTEST(heap_classes, every_class_several_spans)
{
	struct ktest_rng rng;
	ktest_rng_seed(&rng, 0xc1a55e5);
	uint64_t start_bytes = heap_drained_bytes();
	struct kmem_stats before = heap_stats();

	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		size_t span = (size_t)class_to_npages[c] * MM_PAGE_SIZE;
		size_t per_span = span / class_to_size[c];
		size_t n = per_span * 3 + 1; /* three spans full, a fourth begun */
		if (n > CLASS_MAX_OBJS)
			n = CLASS_MAX_OBJS;
		exercise_class(c, (c & 1) ? KM_NOSCAN : 0, n, &rng);
		if (ktest_failures()) {
			ktest_log("class %u (%u bytes) failed", c,
				  class_to_size[c]);
			break;
		}
	}
	struct kmem_stats after = heap_stats();
	KEXPECT_EQ(after.objects_inuse, before.objects_inuse);
	KEXPECT_EQ(after.bad_frees, before.bad_frees);
	KEXPECT_EQ(heap_drained_bytes(), start_bytes);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_classes, sizes_between_classes)
{
	/* A size one byte above a class lands in the next class. */
	for (unsigned c = 1; c + 1 < NUM_SIZE_CLASSES; c++) {
		size_t s = (size_t)class_to_size[c] + 1;
		void *p = kmalloc(s, 0);
		KASSERT_NOT_NULL(p);
		KEXPECT_EQ(ksize(p), HEAP_DEBUG_MODE ? s : class_to_size[c + 1]);
		heap_fill(p, s, s);
		KEXPECT_TRUE(heap_check(p, s, s));
		kfree(p);
	}
	KEXPECT_EQ(mheap_verify(), 0);
}

/* ----------------------------------------------------------- heap_tiny -- */

KTEST(heap_tiny, packing_and_alignment)
{
	enum { N = 256 };
	static struct heap_obj objs[N];
	static void *ptrs[N];

	for (size_t size = 1; size < TINY_SIZE; size++) {
		struct kmem_stats before = heap_stats();
		size_t align = heap_tiny_align(size);
		for (size_t i = 0; i < N; i++) {
			void *p = kmalloc(size, KM_NOSCAN);
			KASSERT_NOT_NULL(p);
			ptrs[i] = p;
			objs[i] = (struct heap_obj){ (uintptr_t)p, size,
						     size * 1000 + i };
			if ((uintptr_t)p % align)
				ktest_log("tiny size %zu at %p: not %zu-aligned",
					  size, p, align);
			KEXPECT_EQ((uintptr_t)p % align, 0);
			KEXPECT_GE(ksize(p), size);
			heap_fill(p, size * 1000 + i, size);
		}
		struct kmem_stats after = heap_stats();
		if (!HEAP_DEBUG_MODE)
			KEXPECT_GE(after.tiny_allocs - before.tiny_allocs, N);
		/* Packed: count distinct 16-byte blocks. Each block holds
		 * 16 / round_up(size, align) objects; allow one partly used
		 * block at the start and one at the end. */
		size_t per_block = TINY_SIZE / ((size + align - 1) / align * align);
		size_t max_blocks = (N + per_block - 1) / per_block + 2;
		heap_sort_by_addr(objs, N);
		size_t blocks = 0;
		uintptr_t last = 0;
		for (size_t i = 0; i < N; i++) {
			uintptr_t b = objs[i].addr & ~(uintptr_t)(TINY_SIZE - 1);
			if (b != last || i == 0)
				blocks++;
			last = b;
			/* An object never straddles a block. */
			KEXPECT_EQ((objs[i].addr + size - 1) & ~(uintptr_t)(TINY_SIZE - 1), b);
		}
		if (!HEAP_DEBUG_MODE && blocks > max_blocks) {
			ktest_log("tiny size %zu: %zu objects in %zu blocks, "
				  "expected at most %zu", size, (size_t)N,
				  blocks, max_blocks);
			KEXPECT_LE(blocks, max_blocks);
		}
		KEXPECT_EQ(heap_count_overlaps(objs, N), 0);
		for (size_t i = 0; i < N; i++) {
			KEXPECT_TRUE(heap_check(ptrs[i], size * 1000 + i, size));
			kfree(ptrs[i]);
		}
	}
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_tiny, mixed_sizes_keep_contents)
{
	enum { N = 2048 };
	static void *ptrs[N];
	static size_t sizes[N];
	struct ktest_rng rng;
	ktest_rng_seed(&rng, 0x7171);

	for (size_t i = 0; i < N; i++) {
		sizes[i] = 1 + (size_t)ktest_rng_below(&rng, TINY_SIZE - 1);
		ptrs[i] = kmalloc(sizes[i], KM_NOSCAN);
		KASSERT_NOT_NULL(ptrs[i]);
		KEXPECT_EQ((uintptr_t)ptrs[i] % heap_tiny_align(sizes[i]), 0);
		heap_fill(ptrs[i], i, sizes[i]);
	}
	/* Free every other object, then allocate into the holes' blocks:
	 * the survivors must be untouched. */
	for (size_t i = 0; i < N; i += 2) {
		KEXPECT_TRUE(heap_check(ptrs[i], i, sizes[i]));
		kfree(ptrs[i]);
	}
	for (size_t i = 0; i < N; i += 2) {
		ptrs[i] = kmalloc(sizes[i], KM_NOSCAN);
		KASSERT_NOT_NULL(ptrs[i]);
		heap_fill(ptrs[i], i + N, sizes[i]);
	}
	size_t corrupt = 0;
	for (size_t i = 0; i < N; i++) {
		uint64_t id = (i & 1) ? i : i + N;
		corrupt += !heap_check(ptrs[i], id, sizes[i]);
		kfree(ptrs[i]);
	}
	KEXPECT_EQ(corrupt, 0);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_tiny, a_block_whose_objects_are_all_freed_starts_over)
{
#if defined(DEBUG_HEAP) && DEBUG_HEAP
	KTEST_SKIP("debug mode has no tiny allocator");
#endif
	struct kmem_stats before = heap_stats();
	/* 15 bytes: at the start of the current block (one just started
	 * over, or a new one). */
	uint8_t *f = kmalloc(15, KM_NOSCAN);
	KASSERT_NOT_NULL(f);
	KEXPECT_EQ((uintptr_t)f % TINY_SIZE, 0);
	kfree(f);
	/* It was the block's only object: the block is empty again, and the
	 * next objects are packed into it from its start (without the
	 * restart, 8 bytes would not fit behind 15 and a new block would
	 * open). */
	uint8_t *a = kmalloc(8, KM_NOSCAN), *b = kmalloc(4, KM_NOSCAN);
	KASSERT_NOT_NULL(a);
	KASSERT_NOT_NULL(b);
	KEXPECT_EQ(a, f);
	KEXPECT_EQ(b, f + 8);
	KEXPECT_EQ(ksize(a), 8);
	KEXPECT_EQ(ksize(b), 4);
	memset(a, 0xa5, 8);
	memset(b, 0x5a, 4);
	kfree(a);
	KEXPECT_EQ(b[3], 0x5a);   /* b's block stays: b is live */
	kfree(b);
	struct kmem_stats after = heap_stats();
	KEXPECT_EQ(after.nfree - before.nfree, 3);
	KEXPECT_EQ(after.objects_inuse, before.objects_inuse);
	KEXPECT_EQ(after.bad_frees, before.bad_frees);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_tiny, blocks_reclaimed_when_all_freed)
{
	/* Enough 4-byte objects to fill many spans of 16-byte blocks. */
	enum { N = 16384 };
	static void *ptrs[N];
	struct ktest_rng rng;
	ktest_rng_seed(&rng, 0x71e);
	uint64_t start_bytes = heap_drained_bytes();
	struct kmem_stats before = heap_stats();

	for (size_t i = 0; i < N; i++) {
		ptrs[i] = kmalloc(4, KM_NOSCAN);
		KASSERT_NOT_NULL(ptrs[i]);
		*(uint32_t *)ptrs[i] = (uint32_t)i;
	}
	KEXPECT_GT(heap_stats().span_bytes_inuse, before.span_bytes_inuse);
	/* Free three quarters in random order: blocks holding a survivor
	 * must stay, and the survivors stay intact. */
	heap_shuffle(ptrs, N, &rng);
	size_t keep = N / 4;
	for (size_t i = keep; i < N; i++)
		kfree(ptrs[i]);
	for (size_t i = 0; i < keep; i++) {
		uint32_t v = *(uint32_t *)ptrs[i];
		KEXPECT_LT(v, N);
	}
	/* Values stay unique: no survivor was overwritten by another. */
	size_t dup = 0;
	{
		static uint8_t seen[N / 8];
		memset(seen, 0, sizeof(seen));
		for (size_t i = 0; i < keep; i++) {
			uint32_t v = *(uint32_t *)ptrs[i];
			if (v >= N)
				continue;
			dup += (seen[v / 8] >> (v % 8)) & 1;
			seen[v / 8] |= (uint8_t)(1u << (v % 8));
		}
	}
	KEXPECT_EQ(dup, 0);
	for (size_t i = 0; i < keep; i++)
		kfree(ptrs[i]);
	struct kmem_stats after = heap_stats();
	KEXPECT_EQ(after.objects_inuse, before.objects_inuse);
	KEXPECT_EQ(after.bad_frees, before.bad_frees);
	/* Every block was reclaimed: the spans went back and so did the
	 * memory. */
	KEXPECT_EQ(heap_drained_bytes(), start_bytes);
	KEXPECT_EQ(mheap_verify(), 0);
}

/* ---------------------------------------------------------- heap_large -- */

KTEST(heap_large, odd_page_counts)
{
	static const size_t sizes[] = {
		32768 + 1, 33 * 1024, 40 * 1024 + 1, 48 * 1024 - 8,
		5 * 8192 + 3, 13 * 8192, 100000, 257 * 1024,
		1024 * 1024 + 8 * 1024, 3 * 1024 * 1024 + 7,
	};
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	static void *p[N];
	static struct heap_obj objs[N];
	uint64_t start_bytes = heap_drained_bytes();
	struct kmem_stats before = heap_stats();
	uint64_t total = 0;

	for (size_t i = 0; i < N; i++) {
		p[i] = kmalloc(sizes[i], i & 1 ? KM_NOSCAN : 0);
		KASSERT_NOT_NULL(p[i]);
		size_t usable = ksize(p[i]);
		KEXPECT_GE(usable, sizes[i]);
		/* A large object is a run of whole 8 KiB heap pages, as many
		 * as it needs rounded up to the platform's grain (mm/platform.h,
		 * MM_LARGE_GRAIN_PAGES). */
		KEXPECT_LT(usable - sizes[i], (size_t)MM_LARGE_GRAIN_PAGES * MM_PAGE_SIZE);
#if !DEBUG_HEAP   /* there ksize is the size asked for */
		KEXPECT_EQ(usable % ((size_t)MM_LARGE_GRAIN_PAGES * MM_PAGE_SIZE), 0);
#endif
		KEXPECT_EQ((uintptr_t)p[i] % 4096, 0);
		objs[i] = (struct heap_obj){ (uintptr_t)p[i], usable, i };
		total += sizes[i];
		/* Every byte is writable: fill it all once. */
		heap_fill_range(p[i], 1000 + i, 0, sizes[i]);
	}
	struct kmem_stats mid = heap_stats();
	KEXPECT_GE(mid.large_bytes - before.large_bytes, total);
	KEXPECT_EQ(mid.objects_inuse - before.objects_inuse, N);
	KEXPECT_EQ(heap_count_overlaps(objs, N), 0);
	for (size_t i = 0; i < N; i++)
		KEXPECT_EQ(heap_check_range(p[i], 1000 + i, 0, sizes[i]), sizes[i]);
	/* Free the odd ones, allocate smaller ones into the gaps, check the
	 * others survived. */
	for (size_t i = 1; i < N; i += 2)
		kfree(p[i]);
	for (size_t i = 1; i < N; i += 2) {
		p[i] = kmalloc(sizes[i] / 2 + 32768, 0);
		KASSERT_NOT_NULL(p[i]);
		heap_fill(p[i], 2000 + i, sizes[i] / 2 + 32768);
	}
	for (size_t i = 0; i < N; i++) {
		if (i & 1)
			KEXPECT_TRUE(heap_check(p[i], 2000 + i, sizes[i] / 2 + 32768));
		else
			KEXPECT_EQ(heap_check_range(p[i], 1000 + i, 0, sizes[i]),
				   sizes[i]);
		kfree(p[i]);
	}
	struct kmem_stats after = heap_stats();
	KEXPECT_EQ(after.large_bytes, before.large_bytes);
	KEXPECT_EQ(after.objects_inuse, before.objects_inuse);
	KEXPECT_EQ(heap_drained_bytes(), start_bytes);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_large, many_sizes_random_order)
{
	enum { N = 96 };
	static void *p[N];
	static size_t size[N];
	struct ktest_rng rng;
	ktest_rng_seed(&rng, 0x1a46e);
	/* All N are live at once, each in whole heap pages. */
	uint64_t need = 0;
	for (size_t i = 0; i < N; i++) {
		size[i] = MAX_SMALL_SIZE + 1 + (size_t)ktest_rng_below(&rng, 300 * 1024);
		need += (size[i] + MM_PAGE_SIZE - 1) / MM_PAGE_SIZE * MM_PAGE_SIZE;
	}
	/* Objects of 33..332 KiB are cut from chunks of at least 1 MiB,
	 * which the kernel's buddy pmm hands out in powers of two: up to a
	 * quarter of a chunk can be left over between them. Plus a page-map
	 * leaf and metadata blocks (1 MiB each at most). */
	KTEST_REQUIRE_FREE_BYTES(need + need / 4 + (2ULL << 20));
	uint64_t start_bytes = heap_drained_bytes();

	for (size_t i = 0; i < N; i++) {
		p[i] = kmalloc(size[i], 0);
		if (!p[i])  /* a failure must not starve the tests after it */
			for (size_t k = 0; k < i; k++)
				kfree(p[k]);
		KASSERT_NOT_NULL(p[i]);
		heap_fill(p[i], i, size[i]);
	}
	/* Free in a scattered order (37 is coprime with 96). */
	for (size_t k = 0; k < N; k++) {
		size_t i = (k * 37) % N;
		KEXPECT_TRUE(heap_check(p[i], i, size[i]));
		kfree(p[i]);
	}
	KEXPECT_EQ(heap_drained_bytes(), start_bytes);
	KEXPECT_EQ(mheap_verify(), 0);
}

/* -------------------------------------------------------- heap_realloc -- */

KTEST(heap_realloc, grow_and_shrink_keep_contents)
{
	static const size_t steps[] = {
		1, 7, 8, 24, 100, 1000, 1024, 5000, 32768, 40000,
		2 * 1024 * 1024 + 5, 70000, 32769, 3000, 200, 16, 9, 1,
	};
	for (unsigned flags = 0; flags <= KM_NOSCAN; flags += KM_NOSCAN) {
		size_t have = steps[0];
		uint8_t *p = krealloc(NULL, have, flags);
		KASSERT_NOT_NULL(p);
		heap_fill(p, 5, have);
		for (size_t i = 1; i < sizeof(steps) / sizeof(steps[0]); i++) {
			size_t want = steps[i];
			uint8_t *q = krealloc(p, want, flags);
			KASSERT_NOT_NULL(q);
			KEXPECT_GE(ksize(q), want);
			size_t keep = want < have ? want : have;
			size_t bad = heap_check_range(q, 5, 0, keep);
			if (bad != keep)
				ktest_log("krealloc %zu -> %zu: byte %zu changed",
					  have, want, bad);
			KEXPECT_EQ(bad, keep);
			if (want > have)
				heap_fill_range(q, 5, have, want);
			p = q;
			have = want;
		}
		kfree(p);
	}
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_realloc, in_place_within_class)
{
	if (HEAP_DEBUG_MODE) {
		/* Red zones sit right after the bytes asked for. */
		ktest_log("skipped: DEBUG_HEAP objects do not grow in place");
		KEXPECT_EQ(mheap_verify(), 0);
		return;
	}
	for (unsigned c = 2; c < NUM_SIZE_CLASSES; c++) {
		size_t size = class_to_size[c];
		size_t below = class_to_size[c - 1] + 1;
		void *p = kmalloc(below, 0);
		KASSERT_NOT_NULL(p);
		heap_fill(p, c, below);
		/* Growing to the class's full size and shrinking back to
		 * just above the class below keep the object where it is. */
		void *q = krealloc(p, size, 0);
		KEXPECT_EQ(q, p);
		KASSERT_NOT_NULL(q);
		KEXPECT_TRUE(heap_check(q, c, below));
		q = krealloc(q, below, 0);
		KEXPECT_EQ(q, p);
		KASSERT_NOT_NULL(q);
		KEXPECT_EQ(ksize(q), size);
		KEXPECT_TRUE(heap_check(q, c, below));
		kfree(q);
	}
	/* A large object shrunk within its pages stays too. */
	void *big = kmalloc(100000, 0);
	KASSERT_NOT_NULL(big);
	heap_fill(big, 9, 100000);
	void *same = krealloc(big, 99000, 0);
	KEXPECT_EQ(same, big);
	KASSERT_NOT_NULL(same);
	KEXPECT_TRUE(heap_check_upto(same, 9, 100000, 99000));
	kfree(same);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_realloc, null_and_zero)
{
	struct kmem_stats before = heap_stats();
	/* krealloc(NULL, n) is kmalloc(n). */
	void *p = krealloc(NULL, 50, 0);
	KASSERT_NOT_NULL(p);
	KEXPECT_GE(ksize(p), 50);
	/* krealloc(p, 0) frees p and returns the kmalloc(0) pointer. */
	void *z = krealloc(p, 0, 0);
	KEXPECT_NOT_NULL(z);
	kfree(z);
	/* Tiny objects move between blocks with their bytes. */
	uint8_t *t = kmalloc(5, KM_NOSCAN);
	KASSERT_NOT_NULL(t);
	heap_fill(t, 3, 5);
	t = krealloc(t, 13, KM_NOSCAN);
	KASSERT_NOT_NULL(t);
	KEXPECT_EQ(heap_check_range(t, 3, 0, 5), 5);
	t = krealloc(t, 600, KM_NOSCAN);
	KASSERT_NOT_NULL(t);
	KEXPECT_EQ(heap_check_range(t, 3, 0, 5), 5);
	kfree(t);
	struct kmem_stats after = heap_stats();
	KEXPECT_EQ(after.objects_inuse, before.objects_inuse);
	KEXPECT_EQ(after.bad_frees, before.bad_frees);
	KEXPECT_EQ(mheap_verify(), 0);
}

/* ---------------------------------------------------------- heap_align -- */

KTEST(heap_align, powers_of_two_naturally_aligned)
{
	enum { N = 24 };
	static void *p[N];
	for (size_t size = 1; size <= 32768; size <<= 1) {
		for (unsigned flags = 0; flags <= KM_NOSCAN; flags += KM_NOSCAN) {
			/* Tiny noscan objects follow Go's rules instead. */
			size_t want = (flags & KM_NOSCAN) && size < TINY_SIZE
					      ? heap_tiny_align(size) : size;
			for (int i = 0; i < N; i++) {
				p[i] = kmalloc(size, flags);
				KASSERT_NOT_NULL(p[i]);
				if ((uintptr_t)p[i] % want)
					ktest_log("kmalloc(%zu, %#x) = %p", size,
						  flags, p[i]);
				KEXPECT_EQ((uintptr_t)p[i] % want, 0);
			}
			for (int i = 0; i < N; i++)
				kfree(p[i]);
		}
	}
	/* Every non-tiny object is aligned to the largest power of two
	 * dividing its class's size (Go's classes: 24 bytes -> 8, 48 -> 16),
	 * at least 8. */
	for (size_t size = 1; size <= 40000; size += (size < 3000 ? 7 : 999)) {
		void *q = kmalloc(size, 0);
		KASSERT_NOT_NULL(q);
		size_t want = heap_expected_align(q, size, 0);
		if ((uintptr_t)q % want)
			ktest_log("kmalloc(%zu) = %p, ksize %zu: not %zu-aligned",
				  size, q, ksize(q), want);
		KEXPECT_EQ((uintptr_t)q % want, 0);
		KEXPECT_GE(want, 8);
		kfree(q);
	}
	KEXPECT_EQ(mheap_verify(), 0);
}

/* The failure this guards against: spans are placed at any free page, so
 * once 8 KiB and 24 KiB objects have cut the free runs into odd page
 * counts, 16 and 32 KiB objects used to land on 8 KiB boundaries. */
KTEST(heap_align, powers_of_two_aligned_after_fragmenting)
{
	enum { FRAG = 24, N = 64 };
	static void *frag[FRAG], *p[N];
	static const size_t sizes[] = { 8192, 16384, 32768 };

	for (int i = 0; i < FRAG; i++)
		frag[i] = kmalloc(i % 2 ? 8192 : 24576, 0);
	for (int i = 0; i < FRAG; i += 3) {
		kfree(frag[i]);
		frag[i] = NULL;
	}
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t size = sizes[k], misaligned = 0;
		for (int i = 0; i < N; i++) {
			p[i] = kmalloc(size, 0);
			KASSERT_NOT_NULL(p[i]);
			misaligned += (uintptr_t)p[i] % size != 0;
		}
		if (misaligned)
			ktest_log("%zu of %d objects of %zu bytes not naturally aligned",
				  misaligned, N, size);
		KEXPECT_EQ(misaligned, 0);
		for (int i = 0; i < N; i++) {
			void *q = kmalloc_aligned(100 + (size_t)i, size, 0);
			KASSERT_NOT_NULL(q);
			misaligned += (uintptr_t)q % size != 0;
			kfree(p[i]);
			p[i] = q;
		}
		if (misaligned)
			ktest_log("%zu kmalloc_aligned(.., %zu) results misaligned",
				  misaligned, size);
		KEXPECT_EQ(misaligned, 0);
		for (int i = 0; i < N; i++)
			kfree(p[i]);
	}
	for (int i = 0; i < FRAG; i++)
		kfree(frag[i]);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_align, kmalloc_aligned_every_power)
{
	static const size_t sizes[] = { 0, 1, 3, 8, 13, 17, 24, 100, 250, 1000,
					1500, 3000, 4096, 5000, 12345, 32768,
					40000, 100001 };
	enum { N = 4 };
	static void *p[N];

	/* Past 8 KiB a large object whose span starts aligned. */
	for (size_t align = 1; align <= (1 << 20); align <<= 1) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			size_t size = sizes[s];
			unsigned flags = (s & 1) ? KM_NOSCAN : 0;
			for (int i = 0; i < N; i++) {
				p[i] = kmalloc_aligned(size, align, flags);
				if (!p[i])  /* a failure must not starve the tests after it */
					for (int k = 0; k < i; k++)
						kfree(p[k]);
				KASSERT_NOT_NULL(p[i]);
				if ((uintptr_t)p[i] % align)
					ktest_log("kmalloc_aligned(%zu, %zu, %#x) "
						  "= %p", size, align, flags, p[i]);
				KEXPECT_EQ((uintptr_t)p[i] % align, 0);
				KEXPECT_GE(ksize(p[i]), size);
				heap_fill(p[i], align + s * 8 + (size_t)i, size);
			}
			for (int i = 0; i < N; i++) {
				KEXPECT_TRUE(heap_check(p[i], align + s * 8 + (size_t)i,
							size));
				kfree(p[i]);
			}
		}
	}
	/* An alignment that is not a power of two is refused, and so is
	 * one larger than any address space. */
	static const size_t bad_align[] = { 0, 3, 6, 24, 8193, (1 << 20) + 8192,
					    SIZE_MAX, (size_t)1 << 63 };
	for (size_t i = 0; i < sizeof(bad_align) / sizeof(bad_align[0]); i++) {
		void *q = kmalloc_aligned(64, bad_align[i], 0);
		if (q)
			ktest_log("kmalloc_aligned(64, %zu) = %p", bad_align[i], q);
		KEXPECT_NULL(q);
		kfree(q);
	}
	/* With KM_ZERO the memory is zeroed too. */
	uint8_t *z = kmalloc_aligned(3000, 1024, KM_ZERO);
	KASSERT_NOT_NULL(z);
	size_t nonzero = 0;
	for (int i = 0; i < 3000; i++)
		nonzero += z[i] != 0;
	KEXPECT_EQ(nonzero, 0);
	kfree(z);
	KEXPECT_EQ(mheap_verify(), 0);
}
