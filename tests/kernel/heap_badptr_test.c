/*
 * tests/kernel/heap_badptr_test.c - bad pointers never corrupt the heap.
 *
 * kfree, ksize and krealloc check every pointer they are given: one the
 * heap never gave out (outside the heap, a non-canonical alias of a heap
 * address), an interior pointer, a double free, a pointer into a free page
 * run, a large object's inner page. Each is reported, counted in
 * kmem_stats.bad_frees and ignored. Each test performs the misuse, checks
 * the count went up by exactly one per bad kfree, that ksize says 0 and
 * krealloc refuses, that live objects around it kept their contents, that
 * the heap still allocates, and that mheap_verify() passes.
 *
 * With SPANHEAP_PANIC_ON_BAD_FREE the heap panics instead, so the suite
 * only logs that it was skipped.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "lib/string.h"
#include "mm/kmalloc.h"
#include "mm/sizeclasses.h"
#include "tests/kernel/ktest.h"
#include "tests/kernel/heap_testlib.h"

/* Live objects of assorted sizes that must survive every misuse. */
#define NCANARY 12
static void *canary[NCANARY];
static const size_t canary_size[NCANARY] = {
	8, 16, 48, 64, 100, 512, 1024, 3000, 8192, 32768, 40000, 300000,
};

static bool canaries_alloc(void)
{
	for (int i = 0; i < NCANARY; i++) {
		canary[i] = kmalloc(canary_size[i], 0);
		if (!canary[i])
			return false;
		heap_fill(canary[i], 0xca0 + (uint64_t)i, canary_size[i]);
	}
	return true;
}

static void canaries_check_and_free(void)
{
	size_t corrupt = 0;
	for (int i = 0; i < NCANARY; i++) {
		if (!canary[i])
			continue;
		corrupt += !heap_check(canary[i], 0xca0 + (uint64_t)i,
				       canary_size[i]);
		KEXPECT_EQ(ksize(canary[i]) >= canary_size[i], 1);
		kfree(canary[i]);
		canary[i] = NULL;
	}
	KEXPECT_EQ(corrupt, 0);
}

/* kfree(p) must be refused and counted once. */
static void expect_refused_kfree(const void *p, const char *what)
{
	uint64_t before = heap_stats().bad_frees;
	kfree(p);
	uint64_t after = heap_stats().bad_frees;
	if (after != before + 1)
		ktest_log("kfree(%p) [%s]: bad_frees went %llu -> %llu", p, what,
			  (unsigned long long)before, (unsigned long long)after);
	KEXPECT_EQ(after, before + 1);
}

/* kfree(p) must be refused and counted once; ksize(p) must be 0. */
static void expect_bad_kfree(const void *p, const char *what)
{
	expect_refused_kfree(p, what);
	size_t sz = ksize(p);
	if (sz)
		ktest_log("ksize(%p) [%s] = %zu, expected 0", p, what, sz);
	KEXPECT_EQ(sz, 0);
}

/* krealloc of a bad pointer refuses (NULL) and leaves the heap alone. */
static void expect_bad_krealloc(const void *p, const char *what)
{
	void *q = krealloc((void *)p, 64, 0);
	if (q)
		ktest_log("krealloc(%p) [%s] = %p, expected NULL", p, what, q);
	KEXPECT_NULL(q);
}

/* The heap still works: allocate and free a spread of sizes. */
static void expect_heap_usable(void)
{
	static void *p[16];
	for (int i = 0; i < 16; i++) {
		size_t size = (size_t)8 << (i % 14);
		p[i] = kmalloc(size, i & 1 ? KM_NOSCAN : 0);
		KASSERT_NOT_NULL(p[i]);
		heap_fill(p[i], (uint64_t)i, size);
	}
	for (int i = 0; i < 16; i++) {
		KEXPECT_TRUE(heap_check(p[i], (uint64_t)i, (size_t)8 << (i % 14)));
		kfree(p[i]);
	}
}

#ifdef SPANHEAP_PANIC_ON_BAD_FREE
#define SKIP_IF_PANICKING()                                                  \
	do {                                                                 \
		ktest_log("skipped: SPANHEAP_PANIC_ON_BAD_FREE makes bad "   \
			  "frees panic");                                    \
		return;                                                      \
	} while (0)
#else
#define SKIP_IF_PANICKING() do { } while (0)
#endif

static uint64_t not_heap_static[4];

KTEST(heap_badptr, outside_heap)
{
	SKIP_IF_PANICKING();
	uint64_t on_stack[4] = { 1, 2, 3, 4 };
	struct kmem_stats before = heap_stats();
	KASSERT_TRUE(canaries_alloc());

	expect_bad_kfree(not_heap_static, "static data");
	expect_bad_kfree(&not_heap_static[1], "static data + 8");
	expect_bad_kfree(on_stack, "stack");
	expect_bad_kfree((void *)(uintptr_t)8, "address 8");
	expect_bad_kfree((void *)(uintptr_t)0x1000, "address 0x1000");
	expect_bad_kfree((void *)(uintptr_t)0x100000000000ULL, "lower half, 16 TiB");
	expect_bad_kfree((void *)(uintptr_t)-4096, "top page");
	expect_bad_krealloc(not_heap_static, "static data");
	expect_bad_krealloc((void *)(uintptr_t)0x1000, "address 0x1000");
	KEXPECT_EQ(on_stack[0] + on_stack[3], 5);
	KEXPECT_EQ(not_heap_static[0], 0);

	canaries_check_and_free();
	expect_heap_usable();
	KEXPECT_EQ(heap_stats().objects_inuse, before.objects_inuse);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_badptr, noncanonical_alias_of_live_object)
{
	SKIP_IF_PANICKING();
	/* Same low 48 bits as a live object, different (non-canonical) upper
	 * bits: a page map keyed by masked addresses must not accept it. */
	KASSERT_TRUE(canaries_alloc());
	for (int i = 0; i < NCANARY; i++) {
		uintptr_t alias = (uintptr_t)canary[i] ^ 0xffff000000000000ULL;
		expect_bad_kfree((void *)alias, "non-canonical alias");
		alias = (uintptr_t)canary[i] ^ 0x8000000000000000ULL;
		expect_bad_kfree((void *)alias, "non-canonical alias (bit 63)");
	}
	canaries_check_and_free();
	expect_heap_usable();
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_badptr, interior_pointers)
{
	SKIP_IF_PANICKING();
	struct kmem_stats before = heap_stats();
	KASSERT_TRUE(canaries_alloc());
	for (int i = 0; i < NCANARY; i++) {
		uint8_t *p = canary[i];
		size_t size = canary_size[i];
		expect_bad_kfree(p + 1, "interior +1");
		if (size > 8)
			expect_bad_kfree(p + 8, "interior +8");
		expect_bad_kfree(p + size - 1, "interior last byte");
		if (size > 16)
			expect_bad_krealloc(p + 16, "interior +16");
	}
	canaries_check_and_free();
	expect_heap_usable();
	struct kmem_stats after = heap_stats();
	KEXPECT_EQ(after.objects_inuse, before.objects_inuse);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_badptr, large_inner_pages)
{
	SKIP_IF_PANICKING();
	KASSERT_TRUE(canaries_alloc());
	size_t size = 13 * MM_PAGE_SIZE + 100;
	uint8_t *big = kmalloc(size, 0);
	KASSERT_NOT_NULL(big);
	heap_fill(big, 0xb16, size);
	for (size_t off = MM_PAGE_SIZE; off < size; off += MM_PAGE_SIZE)
		expect_bad_kfree(big + off, "large object's inner page");
	expect_bad_kfree(big + 4096, "large object + 4096");
	expect_bad_krealloc(big + MM_PAGE_SIZE, "large object's inner page");
	KEXPECT_TRUE(heap_check(big, 0xb16, size));
	KEXPECT_GE(ksize(big), size);
	kfree(big);
	canaries_check_and_free();
	expect_heap_usable();
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_badptr, double_free_small)
{
	SKIP_IF_PANICKING();
	struct kmem_stats before = heap_stats();
	KASSERT_TRUE(canaries_alloc());
	for (unsigned c = 2; c < NUM_SIZE_CLASSES; c += 5) {
		size_t size = class_to_size[c];
		/* Neighbours stay live so the span stays where it is. */
		void *a = kmalloc(size, 0), *b = kmalloc(size, 0);
		void *d = kmalloc(size, 0);
		KASSERT_NOT_NULL(a);
		KASSERT_NOT_NULL(b);
		KASSERT_NOT_NULL(d);
		heap_fill(a, 1, size);
		heap_fill(d, 3, size);
		kfree(b);
		expect_bad_kfree(b, "double free");
		expect_bad_krealloc(b, "freed object");
		/* The slot is reusable exactly once. */
		void *e = kmalloc(size, 0), *f = kmalloc(size, 0);
		KASSERT_NOT_NULL(e);
		KASSERT_NOT_NULL(f);
		KEXPECT_NE(e, f);
		heap_fill(e, 5, size);
		heap_fill(f, 6, size);
		KEXPECT_TRUE(heap_check(a, 1, size));
		KEXPECT_TRUE(heap_check(d, 3, size));
		KEXPECT_TRUE(heap_check(e, 5, size));
		KEXPECT_TRUE(heap_check(f, 6, size));
		kfree(a);
		kfree(d);
		kfree(e);
		kfree(f);
		if (ktest_failures()) {
			ktest_log("class %u (%zu bytes)", c, size);
			break;
		}
	}
	canaries_check_and_free();
	expect_heap_usable();
	KEXPECT_EQ(heap_stats().objects_inuse, before.objects_inuse);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_badptr, double_free_after_span_returned)
{
	SKIP_IF_PANICKING();
	/* Free, let the span go back to the heap (and maybe the platform),
	 * then free again: the pointer is now in a free page run or outside
	 * the heap altogether. */
	void *p = kmalloc(2048, 0);
	KASSERT_NOT_NULL(p);
	kfree(p);
	kmem_drain_all();
	expect_bad_kfree(p, "double free after drain");
	expect_heap_usable();
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_badptr, free_page_run)
{
	SKIP_IF_PANICKING();
	struct kmem_stats before = heap_stats();
	/* b keeps the memory around a's pages in the heap, so after a's free
	 * its pages are a free run, not returned to the platform. */
	size_t size = 20 * MM_PAGE_SIZE;
	uint8_t *a = kmalloc(size, 0), *b = kmalloc(size, 0);
	KASSERT_NOT_NULL(a);
	KASSERT_NOT_NULL(b);
	heap_fill(b, 0xb, size);
	kfree(a);
	expect_bad_kfree(a, "large double free");
	expect_bad_kfree(a + 3 * MM_PAGE_SIZE, "free page run");
	expect_bad_kfree(a + size - MM_PAGE_SIZE, "free page run, last page");
	expect_bad_krealloc(a, "free page run");
	KEXPECT_TRUE(heap_check(b, 0xb, size));
	/* The run is still allocatable and the same size fits again. */
	void *c = kmalloc(size, 0);
	KASSERT_NOT_NULL(c);
	heap_fill(c, 0xc, size);
	KEXPECT_TRUE(heap_check(b, 0xb, size));
	KEXPECT_TRUE(heap_check(c, 0xc, size));
	kfree(c);
	kfree(b);
	expect_heap_usable();
	KEXPECT_EQ(heap_stats().objects_inuse, before.objects_inuse);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_badptr, ksize_of_bad_pointers_is_zero)
{
	SKIP_IF_PANICKING();
	KEXPECT_EQ(ksize(NULL), 0);
	KEXPECT_EQ(ksize(not_heap_static), 0);
	uint8_t *p = kmalloc(256, 0);
	KASSERT_NOT_NULL(p);
	KEXPECT_EQ(ksize(p + 8), 0);
	KEXPECT_EQ(ksize(p), 256);
	kfree(p);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_badptr, double_free_tiny)
{
	SKIP_IF_PANICKING();
	/* Live canaries keep objects_inuse above 0, where a miscount shows. */
	KASSERT_TRUE(canaries_alloc());
	struct kmem_stats before = heap_stats();
	/* 15-byte noscan objects take a 16-byte block each (the next one
	 * never fits behind them): x2's block is retired by the time x3 is
	 * allocated, x3's is this CPU's current block. */
	uint8_t *x1 = kmalloc(15, KM_NOSCAN);
	uint8_t *x2 = kmalloc(15, KM_NOSCAN);
	uint8_t *x3 = kmalloc(15, KM_NOSCAN);
	KASSERT_NOT_NULL(x1);
	KASSERT_NOT_NULL(x2);
	KASSERT_NOT_NULL(x3);
	KEXPECT_NE((uintptr_t)x2 / TINY_SIZE, (uintptr_t)x3 / TINY_SIZE);
	heap_fill(x1, 1, 15);
	heap_fill(x3, 3, 15);
	/* Retired block: the free reclaims it, the second free finds it
	 * free. */
	kfree(x2);
	expect_bad_kfree(x2, "double free of a tiny object (retired block)");
	/* Current block: the CPU's own count says nothing is left. */
	KEXPECT_TRUE(heap_check(x3, 3, 15));
	kfree(x3);
	/* (Only counts are kept for the current block, so ksize cannot
	 * tell this freed object from a live one: no ksize check here.) */
	expect_refused_kfree(x3, "double free of a tiny object (current block)");
	KEXPECT_TRUE(heap_check(x1, 1, 15));
	kfree(x1);
	/* Three frees succeeded; the refused ones count nowhere else. */
	struct kmem_stats after = heap_stats();
	KEXPECT_EQ(after.nfree - before.nfree, 3);
	KEXPECT_EQ(after.objects_inuse, before.objects_inuse);
	canaries_check_and_free();
	expect_heap_usable();
	KEXPECT_EQ(mheap_verify(), 0);
}

/*
 * Frees from another CPU (hosted: another thread, which the heap gives
 * another CPU slot; kernel: the next online CPU through smp_call_all).
 * False when there is no other CPU to free from.
 */
struct other_cpu_free {
	void *p;
	unsigned target;
};

#ifdef SPANHEAP_HOSTED
#include <pthread.h>
static void *other_cpu_free_thread(void *arg)
{
	kfree(((struct other_cpu_free *)arg)->p);
	return NULL;
}

static bool free_on_another_cpu(void *p)
{
	struct other_cpu_free r = { p, 0 };
	pthread_t t;
	if (pthread_create(&t, NULL, other_cpu_free_thread, &r))
		return false;
	pthread_join(t, NULL);
	return true;
}
#else
#include "kernel/percpu.h"
#include "kernel/smp.h"
static void other_cpu_free_call(void *arg)
{
	struct other_cpu_free *r = arg;
	if (this_cpu_id() == r->target)
		kfree(r->p);
}

static bool free_on_another_cpu(void *p)
{
	if (ncpus_online < 2)
		return false;
	struct other_cpu_free r = { p, this_cpu_id() == 0 ? 1u : 0u };
	smp_call_all(other_cpu_free_call, &r);
	return true;
}
#endif

/* Debug mode (mm/mdebug.c) wraps every object: no tiny blocks to share. */
#if defined(DEBUG_HEAP) && DEBUG_HEAP
#define SKIP_IF_NO_TINY() KTEST_SKIP("debug mode has no tiny allocator")
#else
#define SKIP_IF_NO_TINY() do { } while (0)
#endif

static bool another_cpu_exists(void)
{
#ifdef SPANHEAP_HOSTED
	return true;
#else
	return ncpus_online >= 2;
#endif
}

KTEST(heap_badptr, double_free_tiny_block_with_live_objects)
{
	SKIP_IF_PANICKING();
	SKIP_IF_NO_TINY();
	KASSERT_TRUE(canaries_alloc());
	struct kmem_stats before = heap_stats();
	/* Two objects in one block (8 + 4 bytes), then a 15-byte one that
	 * does not fit behind them: their block is retired with x2 live. */
	uint8_t *x1 = kmalloc(8, KM_NOSCAN), *x2 = kmalloc(4, KM_NOSCAN);
	uint8_t *x3 = kmalloc(15, KM_NOSCAN);
	KASSERT_NOT_NULL(x1);
	KASSERT_NOT_NULL(x2);
	KASSERT_NOT_NULL(x3);
	KEXPECT_EQ((uintptr_t)x1 / TINY_SIZE, (uintptr_t)x2 / TINY_SIZE);
	KEXPECT_NE((uintptr_t)x2 / TINY_SIZE, (uintptr_t)x3 / TINY_SIZE);
	heap_fill(x2, 2, 4);
	kfree(x1);
	/* Before: the balance went to 0 and the block was freed under x2. */
	expect_refused_kfree(x1, "double free of a tiny object (retired block, x2 live)");
	KEXPECT_EQ(ksize(x2), 4);
	KEXPECT_TRUE(heap_check(x2, 2, 4));

	/* The same in the current block: x4 and x5 share x3's successor. */
	uint8_t *x4 = kmalloc(8, KM_NOSCAN), *x5 = kmalloc(4, KM_NOSCAN);
	KASSERT_NOT_NULL(x4);
	KASSERT_NOT_NULL(x5);
	KEXPECT_EQ((uintptr_t)x4 / TINY_SIZE, (uintptr_t)x5 / TINY_SIZE);
	heap_fill(x5, 5, 4);
	kfree(x4);
	/* Before: only counts were kept, 1 freed of 2 handed out looked fine. */
	expect_refused_kfree(x4, "double free of a tiny object (current block, x5 live)");
	KEXPECT_TRUE(heap_check(x5, 5, 4));
	kfree(x2);
	kfree(x3);
	kfree(x5);
	struct kmem_stats after = heap_stats();
	KEXPECT_EQ(after.nfree - before.nfree, 5);
	KEXPECT_EQ(after.objects_inuse, before.objects_inuse);
	canaries_check_and_free();
	expect_heap_usable();
	KEXPECT_EQ(mheap_verify(), 0);
}

/* Two tiny objects of this CPU's current block (8 and 4 bytes); a NULL
 * (reported) when they could not be had. */
static void two_in_one_block(uint8_t **x1, uint8_t **x2)
{
	*x1 = kmalloc(8, KM_NOSCAN);
	*x2 = kmalloc(4, KM_NOSCAN);
	KASSERT_NOT_NULL(*x1);
	KASSERT_NOT_NULL(*x2);
	KEXPECT_EQ((uintptr_t)*x1 / TINY_SIZE, (uintptr_t)*x2 / TINY_SIZE);
}

KTEST(heap_badptr, double_free_tiny_here_and_elsewhere)
{
	SKIP_IF_PANICKING();
	SKIP_IF_NO_TINY();
	if (!another_cpu_exists())
		KTEST_SKIP("needs a second CPU");
	KASSERT_TRUE(canaries_alloc());
	struct kmem_stats before = heap_stats();
	uint8_t *x1, *x2;
	two_in_one_block(&x1, &x2);
	if (!x1 || !x2)
		return;
	heap_fill(x2, 2, 4);
	/* Freed here while its block is current, then again elsewhere: the
	 * second CPU cannot see this CPU's record; the retirement finds
	 * both and reports one double free. */
	kfree(x1);
	uint64_t bad = heap_stats().bad_frees;
	KASSERT_TRUE(free_on_another_cpu(x1));
	kmem_drain_this_cpu();
	KEXPECT_EQ(heap_stats().bad_frees, bad + 1);
	KEXPECT_EQ(ksize(x2), 4);
	KEXPECT_TRUE(heap_check(x2, 2, 4));
	kfree(x2);
	struct kmem_stats after = heap_stats();
	KEXPECT_EQ(after.objects_inuse, before.objects_inuse);
	canaries_check_and_free();
	expect_heap_usable();
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_badptr, double_free_tiny_found_when_its_block_starts_over)
{
	SKIP_IF_PANICKING();
	SKIP_IF_NO_TINY();
	if (!another_cpu_exists())
		KTEST_SKIP("needs a second CPU");
	KASSERT_TRUE(canaries_alloc());
	struct kmem_stats before = heap_stats();
	uint8_t *x1, *x2;
	two_in_one_block(&x1, &x2);
	if (!x1 || !x2)
		return;
	/* x1 freed here and elsewhere; then x2 here, the block's last
	 * object: the block starts over (mm/tiny.c), which finds the free
	 * from elsewhere of an object already freed here. */
	kfree(x1);
	uint64_t bad = heap_stats().bad_frees;
	KASSERT_TRUE(free_on_another_cpu(x1));
	KEXPECT_EQ(heap_stats().bad_frees, bad);
	kfree(x2);
	KEXPECT_EQ(heap_stats().bad_frees, bad + 1);
	/* Counted once, and the block's balance is whole: it is reused. */
	uint8_t *y = kmalloc(8, KM_NOSCAN);
	KASSERT_NOT_NULL(y);
	KEXPECT_EQ(y, x1);
	KEXPECT_EQ(ksize(y), 8);
	kfree(y);
	/* A free from elsewhere after the block started over finds no
	 * object there. */
	KASSERT_TRUE(free_on_another_cpu(y));
	KEXPECT_EQ(heap_stats().bad_frees, bad + 2);
	struct kmem_stats after = heap_stats();
	KEXPECT_EQ(after.nfree - before.nfree, 3);
	KEXPECT_EQ(after.objects_inuse, before.objects_inuse);
	canaries_check_and_free();
	expect_heap_usable();
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_badptr, double_free_remote_then_owner)
{
	SKIP_IF_PANICKING();
	if (!another_cpu_exists())
		KTEST_SKIP("needs a second CPU");
	KASSERT_TRUE(canaries_alloc());
	struct kmem_stats before = heap_stats();
	static const size_t sizes[] = { 16, 64, 1024, 8192 };
	for (unsigned k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		/* b keeps the span live and owned by this CPU. */
		void *a = kmalloc(sizes[k], 0), *b = kmalloc(sizes[k], 0), *c = kmalloc(sizes[k], 0);
		KASSERT_NOT_NULL(a);
		KASSERT_NOT_NULL(b);
		KASSERT_NOT_NULL(c);
		heap_fill(b, 7, sizes[k]);
		/* Remote free, then the owner frees it again before any sweep:
		 * before, the owner's fast path looked only at its own bits. */
		KASSERT_TRUE(free_on_another_cpu(a));
		expect_bad_kfree(a, "owner free after a remote free");
		/* Owner free, then a remote one. */
		kfree(c);
		uint64_t bad = heap_stats().bad_frees;
		KASSERT_TRUE(free_on_another_cpu(c));
		KEXPECT_EQ(heap_stats().bad_frees, bad + 1);
		KEXPECT_TRUE(heap_check(b, 7, sizes[k]));
		kfree(b);
	}
	struct kmem_stats after = heap_stats();
	KEXPECT_EQ(after.nfree - before.nfree, 12);
	KEXPECT_EQ(after.objects_inuse, before.objects_inuse);
	canaries_check_and_free();
	expect_heap_usable();
	KEXPECT_EQ(mheap_verify(), 0);
}
