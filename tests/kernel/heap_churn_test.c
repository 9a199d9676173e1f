/*
 * tests/kernel/heap_churn_test.c - a million random heap operations against
 * a shadow record.
 *
 * A fixed table of slots stands for the heap's clients. Each step picks a
 * slot at random: an empty slot gets a new object (kmalloc, kzalloc,
 * kcalloc or kmalloc_aligned, a mix of tiny, small, medium and large
 * sizes), a full one is freed or krealloc'ed. Every object is filled with a
 * pattern derived from its id and checked before it is freed or resized, so
 * an object the heap handed out twice, or a write the heap made into a live
 * object, shows up as a changed byte; every few thousand steps the live set
 * is sorted by address and checked for overlaps and the heap's counters
 * against the record, now and then this CPU's caches are drained under the
 * live objects, and mheap_verify() walks the heap. At the end everything
 * is freed and the heap must give back all the memory it took.
 *
 * The working set stays small (HEAP_CHURN_SLOTS objects, about 60% live,
 * a few MiB) so the run is quick under TCG emulation; HEAP_CHURN_OPS can be
 * raised for a soak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "lib/string.h"
#include "mm/kmalloc.h"
#include "mm/sizeclasses.h"
#include "tests/kernel/ktest.h"
#include "tests/kernel/heap_testlib.h"

#ifndef HEAP_CHURN_OPS
#define HEAP_CHURN_OPS 1000000
#endif
#define HEAP_CHURN_SLOTS 1024
#define CHURN_OVERLAP_EVERY 8192
#define CHURN_VERIFY_EVERY 131072
#define CHURN_DRAIN_EVERY 50000
#define CHURN_MAX_LARGE (512 * 1024)

struct churn_slot {
	void *p;
	size_t size;
	uint64_t id;
	size_t align;     /* alignment asked of kmalloc_aligned, else 0 */
	unsigned flags;
	bool live;
};

static struct churn_slot slots[HEAP_CHURN_SLOTS];
static struct heap_obj live_set[HEAP_CHURN_SLOTS];

struct churn_counts {
	uint64_t allocs, frees, reallocs, aligned, tiny, large;
	uint64_t corrupt, misaligned, short_ksize, not_zeroed, null;
	uint64_t overlaps, verify_fail, bad_counts;
};

/* Tiny 25%, 0..256 bytes 55%, up to 4 KiB 14%, up to 32 KiB 5%, large 1%. */
static size_t churn_size(struct ktest_rng *rng, unsigned *flags)
{
	uint64_t r = ktest_rng_below(rng, 1000);
	*flags = ktest_rng_below(rng, 2) ? KM_NOSCAN : 0;
	if (r < 250) {
		*flags = KM_NOSCAN;
		return 1 + (size_t)ktest_rng_below(rng, TINY_SIZE - 1);
	}
	if (r < 800)
		return (size_t)ktest_rng_below(rng, 257);
	if (r < 940)
		return 257 + (size_t)ktest_rng_below(rng, 4096 - 256);
	if (r < 990)
		return 4097 + (size_t)ktest_rng_below(rng, MAX_SMALL_SIZE - 4096);
	return MAX_SMALL_SIZE + 1 +
	       (size_t)ktest_rng_below(rng, CHURN_MAX_LARGE - MAX_SMALL_SIZE);
}

/* The alignment the object must have (mm/kmalloc.h's promise). */
static size_t churn_min_align(const struct churn_slot *s)
{
	return heap_promised_align(s->p, s->size, s->flags, s->align);
}

/* Check a fresh object: alignment, usable size, zeroing; then fill it.
 * A krealloc'ed object (resized) only promises the base alignment: it may
 * have stayed where it was, in a bigger class. */
static void churn_take(struct churn_slot *s, struct churn_counts *n,
		       bool zeroed, bool resized)
{
	size_t want = resized ? (s->size >= 16 ? heap_expected_align(s->p, s->size, 0) : 1)
			      : churn_min_align(s);
	if ((uintptr_t)s->p % want) {
		if (!n->misaligned)
			ktest_log("object %p of %zu bytes (flags %#x, align %zu) "
				  "not %zu-aligned", s->p, s->size, s->flags,
				  s->align, want);
		n->misaligned++;
	}
	if (ksize(s->p) < s->size) {
		if (!n->short_ksize)
			ktest_log("ksize(%p) = %zu < %zu", s->p, ksize(s->p),
				  s->size);
		n->short_ksize++;
	}
	if (zeroed) {
		const uint8_t *b = s->p;
		size_t from, to;
		bool nz = false;
		for (size_t k = 0; heap_region(s->size, k, &from, &to); k++)
			for (size_t i = from; i < to; i++)
				nz |= b[i] != 0;
		if (nz) {
			if (!n->not_zeroed)
				ktest_log("zeroed object %p of %zu bytes is not",
					  s->p, s->size);
			n->not_zeroed++;
		}
	}
	heap_fill(s->p, s->id, s->size);
	s->live = true;
}

static void churn_alloc(struct churn_slot *s, struct ktest_rng *rng,
			uint64_t id, struct churn_counts *n)
{
	unsigned flags;
	size_t size = churn_size(rng, &flags);
	uint64_t how = ktest_rng_below(rng, 100);
	bool zeroed = false;
	void *p;

	s->align = 0;
	if (how < 55) {
		p = kmalloc(size, flags);
	} else if (how < 65) {
		p = kmalloc(size, flags | KM_ZERO);
		zeroed = true;
	} else if (how < 72) {
		p = kzalloc(size, flags);
		zeroed = true;
	} else if (how < 80 && size >= 4) {
		/* kcalloc of n elements of size/n bytes. */
		size_t elem = 1 + (size_t)ktest_rng_below(rng, 4);
		size = size / elem * elem;
		p = kcalloc(size / elem, elem, flags);
		zeroed = true;
	} else {
		s->align = (size_t)1 << ktest_rng_below(rng, 13);
		p = kmalloc_aligned(size, s->align, flags);
		n->aligned++;
	}
	if (!p) {
		if (!n->null)
			ktest_log("allocation of %zu bytes (flags %#x, align %zu) "
				  "returned NULL", size, flags, s->align);
		n->null++;
		return;
	}
	n->allocs++;
	n->tiny += (flags & KM_NOSCAN) && size && size < TINY_SIZE;
	n->large += size > MAX_SMALL_SIZE;
	s->p = p;
	s->size = size;
	s->flags = flags;
	s->id = id;
	churn_take(s, n, zeroed, false);
}

static void churn_free(struct churn_slot *s, struct churn_counts *n)
{
	if (!heap_check(s->p, s->id, s->size))
		n->corrupt++;
	kfree(s->p);
	s->live = false;
	s->p = NULL;
	n->frees++;
}

static void churn_realloc(struct churn_slot *s, struct ktest_rng *rng,
			  struct churn_counts *n)
{
	unsigned flags;
	size_t size = churn_size(rng, &flags);
	flags = s->flags;
	if (!heap_check(s->p, s->id, s->size))
		n->corrupt++;
	void *q = krealloc(s->p, size, flags);
	if (!q) {
		if (!n->null)
			ktest_log("krealloc(%p, %zu) returned NULL", s->p, size);
		n->null++;
		return;
	}
	/* The kept prefix still holds the old pattern. */
	size_t keep = size < s->size ? size : s->size;
	if (!heap_check_upto(q, s->id, s->size, keep))
		n->corrupt++;
	n->reallocs++;
	s->p = q;
	s->size = size;
	s->align = 0;
	churn_take(s, n, false, true);
}

static size_t churn_overlaps(void)
{
	size_t k = 0;
	for (size_t i = 0; i < HEAP_CHURN_SLOTS; i++)
		if (slots[i].live)
			live_set[k++] = (struct heap_obj){
				(uintptr_t)slots[i].p, slots[i].size, slots[i].id };
	return heap_count_overlaps(live_set, k);
}

/* The heap's counters agree with the shadow record. */
static void churn_check_counts(const struct kmem_stats *before,
			       struct churn_counts *n)
{
	uint64_t live = 0, large = 0;
	for (size_t i = 0; i < HEAP_CHURN_SLOTS; i++) {
		live += slots[i].live;
		if (slots[i].live && slots[i].size > MAX_SMALL_SIZE)
			large += slots[i].size;
	}
	struct kmem_stats st = heap_stats();
	bool ok = st.objects_inuse == before->objects_inuse + live &&
		  st.large_bytes >= before->large_bytes + large &&
		  st.heap_bytes >= st.large_bytes &&
		  st.heap_bytes >= st.span_bytes_inuse &&
		  st.bad_frees == before->bad_frees;
	if (!ok && !n->bad_counts++)
		ktest_log("counters: objects_inuse %llu (expected %llu + %llu), "
			  "large_bytes %llu (live large %llu), heap_bytes %llu, "
			  "span_bytes_inuse %llu, bad_frees %llu",
			  (unsigned long long)st.objects_inuse,
			  (unsigned long long)before->objects_inuse,
			  (unsigned long long)live,
			  (unsigned long long)st.large_bytes,
			  (unsigned long long)large,
			  (unsigned long long)st.heap_bytes,
			  (unsigned long long)st.span_bytes_inuse,
			  (unsigned long long)st.bad_frees);
}

static void churn_run(uint64_t seed, uint64_t ops)
{
	struct ktest_rng rng;
	struct churn_counts n;
	uint64_t next_id = 1;

	ktest_rng_seed(&rng, seed);
	memset(&n, 0, sizeof(n));
	memset(slots, 0, sizeof(slots));
	uint64_t start_bytes = heap_drained_bytes();
	struct kmem_stats before = heap_stats();

	for (uint64_t op = 1; op <= ops; op++) {
		struct churn_slot *s = &slots[ktest_rng_below(&rng, HEAP_CHURN_SLOTS)];
		if (!s->live)
			churn_alloc(s, &rng, next_id++, &n);
		else if (ktest_rng_below(&rng, 10) < 7)
			churn_free(s, &n);
		else
			churn_realloc(s, &rng, &n);

		if (op % CHURN_OVERLAP_EVERY == 0) {
			n.overlaps += churn_overlaps();
			churn_check_counts(&before, &n);
		}
		/* Now and then give back this CPU's cached spans while objects
		 * are live: they must survive it. */
		if (op % CHURN_DRAIN_EVERY == 0)
			kmem_drain_this_cpu();
		if (op % CHURN_VERIFY_EVERY == 0 && mheap_verify() != 0)
			n.verify_fail++;
		if (n.corrupt + n.misaligned + n.short_ksize + n.not_zeroed +
		    n.null + n.overlaps + n.verify_fail + n.bad_counts > 20) {
			ktest_log("stopping after %llu operations",
				  (unsigned long long)op);
			break;
		}
	}
	n.overlaps += churn_overlaps();
	for (size_t i = 0; i < HEAP_CHURN_SLOTS; i++)
		if (slots[i].live)
			churn_free(&slots[i], &n);

	ktest_log("%llu allocs (%llu aligned, %llu tiny, %llu large), "
		  "%llu frees, %llu reallocs",
		  (unsigned long long)n.allocs, (unsigned long long)n.aligned,
		  (unsigned long long)n.tiny, (unsigned long long)n.large,
		  (unsigned long long)n.frees, (unsigned long long)n.reallocs);
	KEXPECT_EQ(n.corrupt, 0);
	KEXPECT_EQ(n.overlaps, 0);
	KEXPECT_EQ(n.misaligned, 0);
	KEXPECT_EQ(n.short_ksize, 0);
	KEXPECT_EQ(n.not_zeroed, 0);
	KEXPECT_EQ(n.null, 0);
	KEXPECT_EQ(n.verify_fail, 0);
	KEXPECT_EQ(n.bad_counts, 0);
	KEXPECT_EQ(n.allocs + n.reallocs + n.frees >= ops * 9 / 10, 1);
	struct kmem_stats after = heap_stats();
	KEXPECT_EQ(after.objects_inuse, before.objects_inuse);
	KEXPECT_EQ(after.large_bytes, before.large_bytes);
	KEXPECT_EQ(after.bad_frees, before.bad_frees);
	KEXPECT_EQ(heap_drained_bytes(), start_bytes);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_churn, million_mixed_ops)
{
	churn_run(0x5eed0001, HEAP_CHURN_OPS);
}

/* A second, shorter run with another seed over the same slots: the heap
 * after a full drain behaves like a fresh one. */
KTEST(heap_churn, after_drain_again)
{
	churn_run(0x5eed0002, HEAP_CHURN_OPS / 10);
}
