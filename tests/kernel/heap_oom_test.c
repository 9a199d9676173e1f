/*
 * tests/kernel/heap_oom_test.c - out of memory returns NULL and nothing else.
 *
 * The heap is filled until it refuses: first with large objects, then with
 * every size class from the largest down (so the small ones fill the
 * crumbs the large ones left), then with tiny objects. At that point every
 * class, every large size, kzalloc, kcalloc and kmalloc_aligned must return
 * NULL. The objects are kept on a list threaded through the objects
 * themselves (every object is at least 8 bytes), so the test needs no
 * memory of its own. Then everything is freed, and allocation of every
 * class succeeds again, the footprint returns to where it was and
 * mheap_verify() passes.
 *
 * Hosted, the platform is capped with mm_host_set_sys_limit() a few MiB
 * above what the heap holds, and a second test fills each class alone from
 * an empty heap. In the kernel the fill takes all of RAM, and then the pmm's
 * last frames too, twice: every frame comes back to the pmm (after the first
 * fill, less at most the page map's leaves for RAM the heap had not reached
 * before).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "lib/string.h"
#include "mm/kmalloc.h"
#include "mm/sizeclasses.h"
#include "tests/kernel/ktest.h"
#include "tests/kernel/heap_testlib.h"
#ifdef SPANHEAP_HOSTED
#include "mm/platform.h" /* mm_host_set_sys_limit, mm_host_sys_bytes */
#else
#include "kernel/pmm.h"
#endif

/* A filled object: the list runs through the objects. */
struct oom_link {
	struct oom_link *next;
	uint64_t check; /* ~address, when the object has room for it */
};

struct oom_list {
	struct oom_link *head;
	uint64_t count;
};

/* Allocate objects of `size` until NULL (or `cap` of them); returns how
 * many were taken. */
static uint64_t oom_fill(struct oom_list *l, size_t size, unsigned flags,
			 uint64_t cap)
{
	uint64_t n = 0;
	while (n < cap) {
		struct oom_link *o = kmalloc(size, flags);
		if (!o)
			break;
		o->next = l->head;
		if (ksize(o) >= sizeof(*o))
			o->check = ~(uint64_t)(uintptr_t)o;
		l->head = o;
		l->count++;
		n++;
	}
	return n;
}

/* Free the whole list; returns the number of objects whose check word
 * changed while they were live. */
static uint64_t oom_free_all(struct oom_list *l, uint64_t *freed)
{
	uint64_t bad = 0, n = 0;
	struct oom_link *o = l->head;
	while (o && n < l->count) {
		struct oom_link *next = o->next;
		size_t size = ksize(o);
		if (size >= sizeof(*o) && o->check != ~(uint64_t)(uintptr_t)o)
			bad++;
		kfree(o);
		o = next;
		n++;
	}
	*freed = n;
	l->head = NULL;
	l->count = 0;
	return bad;
}

/* With memory exhausted, every way of asking must say NULL. */
static void expect_all_null(void)
{
	static const size_t large[] = { 32769, 40 * 1024 + 1, 1 << 20,
					(1 << 20) + 8192, 16 << 20 };
	size_t nonnull = 0;
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		void *p = kmalloc(class_to_size[c], 0);
		if (p) {
			if (!nonnull)
				ktest_log("out of memory, yet kmalloc(%u) = %p",
					  class_to_size[c], p);
			nonnull++;
			kfree(p);
		}
	}
	for (size_t i = 0; i < sizeof(large) / sizeof(large[0]); i++) {
		void *p = kmalloc(large[i], 0);
		if (p) {
			ktest_log("out of memory, yet kmalloc(%zu) = %p",
				  large[i], p);
			nonnull++;
			kfree(p);
		}
	}
	void *p;
	if ((p = kmalloc(8, KM_NOSCAN)) != NULL)
		nonnull++, kfree(p);
	if ((p = kzalloc(4096, 0)) != NULL)
		nonnull++, kfree(p);
	if ((p = kcalloc(64, 64, 0)) != NULL)
		nonnull++, kfree(p);
	if ((p = kmalloc_aligned(100, 4096, 0)) != NULL)
		nonnull++, kfree(p);
	KEXPECT_EQ(nonnull, 0);
}

/* krealloc(p, 0) with no kmalloc(0) object to be had: NULL, and p still
 * live and whole (it used to free p first and then fail, losing it). p is
 * the newest object of the fill. Hosted the cap makes the NULL certain;
 * in the kernel another CPU may still give memory back (a release
 * request answered late), and then p is freed and the kmalloc(0) object
 * returned, which the contract allows too. */
static void expect_krealloc_to_0_keeps(struct oom_list *l)
{
	struct oom_link *o = l->head, *next = o->next;
	bool checked = ksize(o) >= sizeof(*o);
	void *q = krealloc(o, 0, 0);
#ifdef SPANHEAP_HOSTED
	KEXPECT_NULL(q);
#endif
	if (q) {   /* o was freed, as it may be once memory is had */
		l->head = next;
		l->count--;
		kfree(q);
		return;
	}
	KEXPECT_GE(ksize(o), checked ? sizeof(*o) : 1);
	if (checked)
		KEXPECT_EQ(o->check, ~(uint64_t)(uintptr_t)o);
}

/* After the fill was freed, every class allocates again. */
static void expect_all_allocate(void)
{
	size_t nulls = 0;
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		void *p = kmalloc(class_to_size[c], 0);
		if (!p) {
			if (!nulls)
				ktest_log("after freeing, kmalloc(%u) = NULL",
					  class_to_size[c]);
			nulls++;
		}
		kfree(p);
	}
	void *big = kmalloc(1 << 20, 0);
	KEXPECT_NOT_NULL(big);
	kfree(big);
	void *t = kmalloc(8, KM_NOSCAN);
	KEXPECT_NOT_NULL(t);
	kfree(t);
	KEXPECT_EQ(nulls, 0);
}

#ifndef SPANHEAP_HOSTED
/* With the heap full, take every frame the pmm still has (the heap cannot
 * use frames it cannot make 8 KiB runs of), check that the pmm and the heap
 * both refuse, and give the frames back. */
static void exhaust_pmm_too(void)
{
	struct oom_link *frames = NULL;
	uint64_t n = 0, freed = 0;
	void *f;
	while ((f = alloc_pages(0, 0)) != NULL) {
		struct oom_link *l = f;
		l->next = frames;
		frames = l;
		n++;
	}
	size_t nonnull = 0;
	for (unsigned order = 0; order <= 10; order++) {
		void *p = alloc_pages(order, 0);
		if (p) {
			ktest_log("pmm exhausted, yet alloc_pages(%u) = %p", order, p);
			nonnull++;
			free_pages(p, order);
		}
	}
	KEXPECT_EQ(nonnull, 0);
	expect_all_null();
	while (frames && freed < n) {
		struct oom_link *next = frames->next;
		free_pages(frames, 0);
		frames = next;
		freed++;
	}
	KEXPECT_EQ(freed, n);
	ktest_log("pmm: %llu more 4 KiB frames taken and given back",
		  (unsigned long long)n);
}
#endif

/* One pass of fills, largest requests first, each until NULL. */
static void fill_pass(struct oom_list *list, uint64_t cap_bytes, uint64_t *took_large,
		      uint64_t *took_small, uint64_t *took_tiny)
{
	*took_large += oom_fill(list, 1 << 20, 0, cap_bytes / (1 << 20) + 16);
	*took_large += oom_fill(list, 64 * 1024, 0, cap_bytes / (64 * 1024) + 16);
	for (unsigned c = NUM_SIZE_CLASSES - 1; c >= 1; c--) {
		size_t size = class_to_size[c];
		uint64_t cap = cap_bytes / size + 1024;
		uint64_t n = oom_fill(list, size, (c & 1) ? KM_NOSCAN : 0, cap);
		if (n >= cap)
			ktest_log("class %u: %llu objects and no NULL", c,
				  (unsigned long long)n);
		KEXPECT_LT(n, cap);
		*took_small += n;
	}
	uint64_t tiny = oom_fill(list, 8, KM_NOSCAN, cap_bytes / 8 + 4096);
	KEXPECT_LT(tiny, cap_bytes / 8 + 4096);
	*took_tiny += tiny;
	/* Last, the smallest large objects: free runs can outlast the small
	 * classes, whose new spans also need metadata blocks from the
	 * platform (bitmap units), while a large object needs pages and a
	 * span record only (seen in the debug kernel, whose layout left a
	 * run of 97 pages unused by the small fills). */
	*took_large += oom_fill(list, MAX_SMALL_SIZE + 1, 0,
				cap_bytes / (MAX_SMALL_SIZE + 1) + 16);
}

/* Fill everything, check, free everything, check. `cap` bounds each fill so
 * a heap that never says NULL fails instead of looping. */
static void oom_fill_everything(uint64_t cap_bytes)
{
	struct oom_list list = { NULL, 0 };
	uint64_t start_bytes = heap_drained_bytes();
	struct kmem_stats before = heap_stats();
	uint64_t took_large = 0, took_small = 0, took_tiny = 0, freed;

	/* Twice: a failed allocation asks every CPU to give back what it
	 * caches, and another CPU may answer after this one's pass (the
	 * kernel's idle APs answer when they next idle, and their
	 * scavenger may hand retained chunks to the pmm meanwhile); the
	 * second pass takes what came back late. */
	fill_pass(&list, cap_bytes, &took_large, &took_small, &took_tiny);
	fill_pass(&list, cap_bytes, &took_large, &took_small, &took_tiny);
	ktest_log("out of memory after %llu large, %llu small, %llu tiny objects"
		  " (heap %llu KiB)", (unsigned long long)took_large,
		  (unsigned long long)took_small, (unsigned long long)took_tiny,
		  (unsigned long long)(heap_stats().heap_bytes >> 10));
	KEXPECT_GT(took_large, 0);
	KEXPECT_GT(heap_stats().oom, before.oom);
	KEXPECT_EQ(mheap_verify(), 0);
	expect_all_null();
	expect_krealloc_to_0_keeps(&list);
#ifndef SPANHEAP_HOSTED
	exhaust_pmm_too();
#endif

	uint64_t count = list.count;
	KEXPECT_EQ(oom_free_all(&list, &freed), 0);
	KEXPECT_EQ(freed, count);
	KEXPECT_EQ(heap_stats().objects_inuse, before.objects_inuse);
	KEXPECT_EQ(heap_stats().bad_frees, before.bad_frees);
	KEXPECT_EQ(mheap_verify(), 0);
	expect_all_allocate();
	KEXPECT_EQ(heap_drained_bytes(), start_bytes);
	KEXPECT_EQ(mheap_verify(), 0);
}

#ifdef SPANHEAP_HOSTED

#define OOM_HEADROOM (4u << 20)

KTEST(heap_oom, fill_everything_capped)
{
	kmem_drain_all();
	mm_host_set_sys_limit(mm_host_sys_bytes() + OOM_HEADROOM);
	oom_fill_everything(OOM_HEADROOM);
	mm_host_set_sys_limit(0);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_oom, each_class_alone)
{
	uint64_t start_bytes = heap_drained_bytes();
	size_t headroom = 2u << 20;
	struct oom_list list = { NULL, 0 };
	uint64_t freed;

	for (unsigned c = 0; c < NUM_SIZE_CLASSES; c++) {
		/* Class 0 stands for large objects here. */
		size_t size = c ? class_to_size[c] : 100 * 1024;
		unsigned flags = (c & 1) ? KM_NOSCAN : 0;
		uint64_t cap = headroom / size + 1024;
		kmem_drain_all();
		mm_host_set_sys_limit(mm_host_sys_bytes() + headroom);
		uint64_t n = oom_fill(&list, size, flags, cap);
		KEXPECT_LT(n, cap);
		KEXPECT_GT(n, 0);
		/* Still NULL on a second try, and for kzalloc. */
		void *again = kmalloc(size, flags);
		KEXPECT_NULL(again);
		kfree(again);
		again = kzalloc(size, flags);
		KEXPECT_NULL(again);
		kfree(again);
		KEXPECT_EQ(mheap_verify(), 0);
		KEXPECT_EQ(oom_free_all(&list, &freed), 0);
		KEXPECT_EQ(freed, n);
		/* Freed memory is usable again under the same cap. */
		void *p = kmalloc(size, flags);
		KEXPECT_NOT_NULL(p);
		kfree(p);
		uint64_t n2 = oom_fill(&list, size, flags, cap);
		KEXPECT_GE(n2 + n / 8, n); /* about as many fit the second time */
		KEXPECT_EQ(oom_free_all(&list, &freed), 0);
		mm_host_set_sys_limit(0);
		if (ktest_failures()) {
			ktest_log("size %zu (class %u)", size, c);
			break;
		}
	}
	mm_host_set_sys_limit(0);
	KEXPECT_EQ(heap_drained_bytes(), start_bytes);
	KEXPECT_EQ(mheap_verify(), 0);
}

/* Aligned large objects from one free run, until NULL; each takes two
 * span records (the misaligned head split off, then the object split
 * from the tail), the platform capped at what it gives now, so that the
 * records run out before the run does. mheap_verify after the NULL. */
static int oom_fill_aligned_records(bool one_more_record)
{
	struct oom_list list = { NULL, 0 };
	uint64_t freed;
	kmem_drain_all();
	void *big = kmalloc(48u << 20, 0);
	if (!big)
		return -1;
	kfree(big);   /* its chunk retained: one run of 48 MiB for the fill */
	mm_host_set_sys_limit(mm_host_sys_bytes());
	void *odd = one_more_record ? kmalloc(65536, 0) : NULL;   /* a tail split: one record */
	for (;;) {
		struct oom_link *o = kmalloc_aligned(65536, 131072, 0);
		if (!o)
			break;
		o->next = list.head;
		o->check = ~(uint64_t)(uintptr_t)o;
		list.head = o;
		list.count++;
	}
	int verify = mheap_verify();
	kfree(odd);
	KEXPECT_EQ(oom_free_all(&list, &freed), 0);
	mm_host_set_sys_limit(0);
	KEXPECT_GT(freed, 0);
	return verify;
}

/* An aligned allocation splits its run twice: the misaligned head off,
 * then the object from the rest, each split taking a span record. With
 * no record left for the second (the platform refusing a new block of
 * them), the head goes back into the run: no two free runs are left side
 * by side (the fuzzer found them). The fill runs twice, the second time
 * one record shorter, so that one of them runs out between the splits. */
KTEST(heap_oom, an_aligned_allocation_out_of_records_leaves_one_run)
{
	KEXPECT_EQ(oom_fill_aligned_records(false), 0);
	KEXPECT_EQ(oom_fill_aligned_records(true), 0);
	KEXPECT_EQ(mheap_verify(), 0);
}

#else /* the kernel: all of RAM */

KTEST(heap_oom, fill_all_ram)
{
	struct pmm_stats p0, p1, p2;
	kmem_drain_all();
	pmm_stats(&p0);
	/* No cap but RAM itself: at most 2^40 bytes' worth per fill. */
	oom_fill_everything((uint64_t)1 << 40);
	kmem_drain_all();
	pmm_stats(&p1);
	/* The first fill may reach RAM the heap never used before; like Go's
	 * arena index, its page->span map keeps the leaf it made for that
	 * memory (1 MiB per GiB of address space), so allow at most that. */
	uint64_t kept = p0.free_frames - p1.free_frames;
	uint64_t leaf_bound = p0.total_frames / 1024 + 256;
	if (p1.free_frames != p0.free_frames)
		ktest_log("after the first fill the heap kept %llu KiB of %llu MiB",
			  (unsigned long long)kept * 4,
			  (unsigned long long)p0.total_frames / 256);
	KEXPECT_LE(p1.free_frames, p0.free_frames);
	KEXPECT_LE(kept, leaf_bound);
	/* A second fill reaches nothing new: every frame comes back. */
	oom_fill_everything((uint64_t)1 << 40);
	kmem_drain_all();
	pmm_stats(&p2);
	KEXPECT_EQ(p2.free_frames, p1.free_frames);
}

#endif
