/*
 * tests/kernel/heap_meta_test.c - span metadata sized to the span: the
 * 128-byte span record and the bitmap blocks of small spans (mm/mspan.h).
 *
 * A small span's three bitmaps live in one block of the smallest bucket
 * that holds its object count, from the mheap's fixalloc of that bucket,
 * the remote words on cache lines of their own; large spans and free runs
 * have none; a span's block goes back with it, so after kmem_drain_all the
 * blocks handed out are exactly the small spans left. mheap_verify()
 * checks all of this on every call; the last test breaks each invariant
 * on purpose and expects the verifier to say so (a check that cannot fail
 * is no check). The heap is quiescent while a test runs (one thread
 * hosted, the other CPUs idle in the kernel). Runs hosted and in the
 * kernel, in the normal and the debug build.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "mm/kmalloc.h"
#include "mm/fixalloc.h"
#include "mm/mheap.h"
#include "mm/mspan.h"
#include "mm/platform.h"
#include "tests/kernel/ktest.h"
#include "tests/kernel/heap_testlib.h"

/* Small spans in the heap: the spans every mcentral counts. */
static uint64_t small_spans(void)
{
	uint64_t n = 0;
	for (unsigned spc = 2; spc < NUM_SPAN_CLASSES; spc++) {
		struct kmem_class_stats cs;
		if (kmem_get_class_stats(spc, &cs) == 0)
			n += cs.spans;
	}
	return n;
}

static uint64_t bitmap_blocks(void)
{
	unsigned long flags = mm_spin_lock_irqsave(&mheap.lock);
	uint64_t n = mheap_bitmap_blocks();
	mm_spin_unlock_irqrestore(&mheap.lock, flags);
	return n;
}

static unsigned line_of(const void *p) { return (unsigned)((uintptr_t)p / 64); }

KTEST(heap_meta, the_remote_fields_are_off_the_owners_cache_line)
{
	KEXPECT_EQ(sizeof(struct mspan), 128);
	unsigned owner = offsetof(struct mspan, alloc_cache) / 64;
	KEXPECT_EQ(offsetof(struct mspan, startaddr) / 64, owner);
	KEXPECT_EQ(offsetof(struct mspan, alloc_bits) / 64, owner);
	KEXPECT_EQ(offsetof(struct mspan, owner_cpu) / 64, owner);
	KEXPECT_NE(offsetof(struct mspan, remote_pending) / 64, owner);
	KEXPECT_NE(offsetof(struct mspan, remote_inflight) / 64, owner);
	KEXPECT_NE(offsetof(struct mspan, pending_next) / 64, owner);
}

/* Sizes whose spans cover every bucket: 1024, 512, 256, 64 objects per
 * span (the 8-byte class holds 1024), and one object of 32 KiB. */
static const size_t meta_sizes[] = { 8, 16, 32, 128, 1000, 32768 };
#define NSIZES (sizeof(meta_sizes) / sizeof(meta_sizes[0]))

KTEST(heap_meta, a_small_span_has_a_block_of_the_smallest_bucket_that_fits)
{
	for (unsigned k = 0; k < NSIZES; k++) {
		void *p = kmalloc(meta_sizes[k], 0);
		KASSERT_NOT_NULL(p);
		struct mspan *s = mheap_span_of(p);
		KASSERT_NOT_NULL(s);
		if (HEAP_DEBUG_MODE && mspan_state_of(s) == MSPAN_LARGE) {
			kfree(p);   /* red zone and trailer made it large */
			continue;
		}
		KASSERT_EQ(mspan_state_of(s), MSPAN_INUSE);
		unsigned b = mspan_bitmap_bucket(s->nelems);
		unsigned words = mspan_bitmap_words[b];
		KASSERT_NOT_NULL(mspan_bitmap_block(s));
		KEXPECT_TRUE(fixalloc_owns(&mheap.bits_alloc[b], s->alloc_bits));
		/* Room for every object, and the bucket below would not do. */
		KEXPECT_GE(words * 64u, s->nelems);
		if (b > 0)
			KEXPECT_LT(mspan_bitmap_words[b - 1] * 64u, s->nelems);
		KEXPECT_EQ(mheap.bits_alloc[b].size, mspan_bitmap_block_size(b));
		/* The remote words share no cache line with the owner's. */
		const uint64_t *alloc_end = s->alloc_bits + words - 1;
		const uint64_t *free_end = s->free_bits + words - 1;
		KEXPECT_GT(line_of(s->remote_bits), line_of(alloc_end));
		KEXPECT_GT(line_of(s->remote_bits), line_of(free_end));
		KEXPECT_LE((uintptr_t)(s->remote_bits + words),
			   (uintptr_t)s->alloc_bits + mspan_bitmap_block_size(b));
		/* Blocks are metadata: not inside any span. */
		KEXPECT_NULL(mheap_span_of(s->alloc_bits));
		kfree(p);
	}
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_meta, large_spans_and_free_runs_have_no_block)
{
	size_t size = 40 * MM_PAGE_SIZE;   /* past the page caches' runs */
	char *p = kmalloc(size, 0);
	KASSERT_NOT_NULL(p);
	struct mspan *s = mheap_span_of(p);
	KASSERT_NOT_NULL(s);
	KEXPECT_EQ(mspan_state_of(s), MSPAN_LARGE);
	KEXPECT_NULL(mspan_bitmap_block(s));
	KEXPECT_TRUE(s->alloc_bits == mspan_no_bits && s->free_bits == mspan_no_bits &&
		     s->remote_bits == mspan_no_bits);
	kfree(p);
	/* Its pages are a free run now (or a page cache's run). */
	s = mheap_span_of(p);
	if (s) {
		KEXPECT_NE(mspan_state_of(s), MSPAN_INUSE);
		KEXPECT_NULL(mspan_bitmap_block(s));
	}
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_meta, blocks_go_back_with_their_spans)
{
	/* 64 objects of 128 bytes per one-page span: 640 objects need ten
	 * spans of the class at least, each with a block of its own. */
	enum { N = 640 };
	static void *objs[N];
	kmem_drain_all();
	uint64_t before = bitmap_blocks();
	KEXPECT_EQ(before, small_spans());
	for (unsigned i = 0; i < N; i++) {
		objs[i] = kmalloc(128, 0);
		KASSERT_NOT_NULL(objs[i]);
	}
	uint64_t during = bitmap_blocks();
	KEXPECT_GE(during, before + N / 64);
	KEXPECT_EQ(during, small_spans());
	KEXPECT_EQ(mheap_verify(), 0);
	for (unsigned i = 0; i < N; i++)
		kfree(objs[i]);
	kmem_drain_all();
	KEXPECT_EQ(bitmap_blocks(), small_spans());
	KEXPECT_LE(bitmap_blocks(), before);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_meta, the_verifier_sees_each_broken_invariant)
{
	void *p = kmalloc(48, 0);   /* 170 objects per span: a partial last word */
	KASSERT_NOT_NULL(p);
	struct mspan *s = mheap_span_of(p);
	KASSERT_NOT_NULL(s);
	KEXPECT_EQ(mheap_verify(), 0);
	unsigned nelems = s->nelems;
	unsigned b = mspan_bitmap_bucket(nelems);

	/* A bit past nelems, in the last word and in a word past it. */
	unsigned last = (nelems - 1) / 64;
	uint64_t saved = s->remote_bits[last];
	if (nelems % 64) {
		s->remote_bits[last] |= 1ULL << (nelems % 64);
		KEXPECT_EQ(mheap_verify(), 1);
		s->remote_bits[last] = saved;
	}
	if (last + 1 < mspan_bitmap_words[b]) {
		s->alloc_bits[last + 1] = 1;
		KEXPECT_EQ(mheap_verify(), 1);
		s->alloc_bits[last + 1] = 0;
	}
	/* Pointers not laid out as the bucket says. */
	uint64_t *rb = s->remote_bits;
	s->remote_bits = s->free_bits;
	KEXPECT_EQ(mheap_verify(), 1);
	s->remote_bits = rb;
	/* A small span without a block. */
	uint64_t *ab = s->alloc_bits, *fb = s->free_bits;
	s->alloc_bits = s->free_bits = s->remote_bits = (uint64_t *)mspan_no_bits;
	KEXPECT_EQ(mheap_verify(), 1);
	s->alloc_bits = ab, s->free_bits = fb, s->remote_bits = rb;

	/* A large span with a block. */
	char *big = kmalloc(40 * MM_PAGE_SIZE, 0);
	KASSERT_NOT_NULL(big);
	struct mspan *l = mheap_span_of(big);
	l->alloc_bits = ab;
	KEXPECT_EQ(mheap_verify(), 1);
	l->alloc_bits = (uint64_t *)mspan_no_bits;
	kfree(big);

	/* A block handed out that no span holds (a leak). */
	unsigned long flags = mm_spin_lock_irqsave(&mheap.lock);
	void *leak = fixalloc_alloc(&mheap.bits_alloc[b]);
	mm_spin_unlock_irqrestore(&mheap.lock, flags);
	KASSERT_NOT_NULL(leak);
	KEXPECT_EQ(mheap_verify(), 1);
	flags = mm_spin_lock_irqsave(&mheap.lock);
	fixalloc_free(&mheap.bits_alloc[b], leak);
	mm_spin_unlock_irqrestore(&mheap.lock, flags);

	KEXPECT_EQ(mheap_verify(), 0);
	kfree(p);
}
