/*
 * tests/kernel/heap_meta_test.c - span metadata sized to the span: the
 * 128-byte span record and the bitmap units of small spans (mm/mspan.h).
 *
 * A small span's bitmap (alloc and remote words in pairs) is sized for
 * the smallest bucket that holds its object count: a span of at most 64
 * objects keeps its pair in its record, on the line every free reads;
 * the others' live in one unit from the mheap's fixallocs, each pair on
 * one cache line; large spans and free runs have none; a span's unit
 * goes back with it. mheap_verify()
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
#include "mm/bitops.h"
#include "mm/fixalloc.h"
#include "mm/mheap.h"
#include "mm/mspan.h"
#include "mm/platform.h"
#include "tests/kernel/ktest.h"
#include "tests/kernel/heap_testlib.h"

static uint64_t bitmap_units(void)
{
	unsigned long flags = mm_spin_lock_irqsave(&mheap.lock);
	uint64_t n = mheap_bitmap_units();
	mm_spin_unlock_irqrestore(&mheap.lock, flags);
	return n;
}

static uintptr_t first_line(const uint64_t *p) { return (uintptr_t)p / 64; }
static uintptr_t last_line(const uint64_t *p, unsigned words)
{
	return (uintptr_t)(p + words - 1) / 64;
}

/* Sweeps and cache-word loads count bitmap words with mm_popcount64:
 * the platform's popcnt (hosted, when the CPU has it) or the compiler's,
 * or the SWAR sum; whichever it is, it counts what a bit-by-bit loop
 * counts. */
KTEST(heap_meta, bitmap_words_are_counted_exactly)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	static const uint64_t fixed[] = { 0, 1, ~0ULL, 1ULL << 63, 0x8000000000000001ULL,
					  0x5555555555555555ULL, 0xff00ff00ff00ff00ULL };
	for (unsigned k = 0; k < 1000 + sizeof(fixed) / sizeof(fixed[0]); k++) {
		uint64_t w = k < sizeof(fixed) / sizeof(fixed[0]) ? fixed[k] :
			(x = x * 6364136223846793005ULL + 1442695040888963407ULL);
		unsigned want = 0;
		for (unsigned b = 0; b < 64; b++)
			want += (unsigned)(w >> b & 1);
		if (mm_popcount64(w) != want || mm_popcount64_swar(w) != want) {
			KEXPECT_EQ(mm_popcount64(w), want);
			KEXPECT_EQ(mm_popcount64_swar(w), want);
			ktest_log("word %#llx", (unsigned long long)w);
			return;
		}
	}
}

KTEST(heap_meta, what_a_free_reads_is_on_the_records_first_line)
{
	KEXPECT_EQ(sizeof(struct mspan), 128);
	unsigned first = offsetof(struct mspan, startaddr) / 64;
	KEXPECT_EQ(offsetof(struct mspan, cache_word) / 64, first);
	KEXPECT_EQ(offsetof(struct mspan, bits) / 64, first);
	KEXPECT_EQ(offsetof(struct mspan, divmagic) / 64, first);
	KEXPECT_EQ(offsetof(struct mspan, local_cache) / 64, first);
	KEXPECT_EQ(offsetof(struct mspan, owner_cpu) / 64, first);
	KEXPECT_EQ(offsetof(struct mspan, state) / 64, first);
	KEXPECT_EQ(offsetof(struct mspan, bits_inline) / 64, first);
	KEXPECT_EQ((offsetof(struct mspan, bits_inline) + 15) / 64, first);
	KEXPECT_NE(offsetof(struct mspan, remote_pending) / 64, first);
	KEXPECT_NE(offsetof(struct mspan, pending_next) / 64, first);
}

/* Sizes whose spans cover every bucket: 1024, 512, 256, 64 objects per
 * span (the 8-byte class holds 1024), and one object of 32 KiB. */
static const size_t meta_sizes[] = { 8, 16, 32, 128, 1000, 32768 };
#define NSIZES (sizeof(meta_sizes) / sizeof(meta_sizes[0]))

KTEST(heap_meta, a_small_span_has_units_of_the_smallest_bucket_that_fits)
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
		KASSERT_TRUE(mspan_has_bitmaps(s));
		unsigned b = mspan_bitmap_bucket(s->nelems);
		unsigned words = mspan_bitmap_words[b], pool = mspan_bitmap_pool(b);
		/* Room for every object, and the bucket below would not do. */
		KEXPECT_GE(words * 64u, s->nelems);
		if (b > 0)
			KEXPECT_LT(mspan_bitmap_words[b - 1] * 64u, s->nelems);
		/* Each pair on one line: word w's alloc and remote words. */
		for (unsigned w = 0; w < words; w++) {
			KEXPECT_TRUE(mspan_remote_word(s, w) == mspan_alloc_word(s, w) + 1);
			KEXPECT_EQ(first_line(mspan_alloc_word(s, w)),
				   last_line(mspan_remote_word(s, w), 1));
		}
		if (b == 0) {
			/* The pair in the record, on the line a free reads. */
			KEXPECT_EQ(mspan_bitmap_nunits(b), 0);
			KEXPECT_TRUE(s->bits == s->bits_inline);
			KEXPECT_EQ(first_line(s->bits), first_line(&s->startaddr));
			kfree(p);
			continue;
		}
		/* The unit from the bucket's pool, and not inside a span. */
		void *units[MSPAN_BITMAP_UNITS];
		mspan_bitmap_units(s, units);
		for (unsigned u = 0; u < MSPAN_BITMAP_UNITS; u++) {
			KEXPECT_TRUE(fixalloc_owns(mheap_bitmap_pool(pool), units[u]));
			KEXPECT_NULL(mheap_span_of(units[u]));
		}
		KEXPECT_EQ(mheap_bitmap_pool(pool)->size, mspan_bitmap_unit_size(pool));
		KEXPECT_EQ(2 * words * sizeof(uint64_t), mspan_bitmap_unit_size(pool));
		kfree(p);
	}
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_meta, large_spans_and_free_runs_have_no_bitmaps)
{
	size_t size = 40 * MM_PAGE_SIZE;   /* past the page caches' runs */
	char *p = kmalloc(size, 0);
	KASSERT_NOT_NULL(p);
	struct mspan *s = mheap_span_of(p);
	KASSERT_NOT_NULL(s);
	KEXPECT_EQ(mspan_state_of(s), MSPAN_LARGE);
	KEXPECT_FALSE(mspan_has_bitmaps(s));
	KEXPECT_TRUE(s->bits == mspan_no_bits);
	kfree(p);
	/* Its pages are a free run now (or a page cache's run). */
	s = mheap_span_of(p);
	if (s) {
		KEXPECT_NE(mspan_state_of(s), MSPAN_INUSE);
		KEXPECT_FALSE(mspan_has_bitmaps(s));
	}
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_meta, units_go_back_with_their_spans)
{
	/* 256 objects of 32 bytes per one-page span (85 of 96 bytes, red
	 * zone and trailer included, in the debug build): 2560 objects need
	 * ten spans of the class at least, each with units of its own. */
	enum { N = 2560 };
	static void *objs[N];
	kmem_drain_all();
	uint64_t before = bitmap_units();
	for (unsigned i = 0; i < N; i++) {
		objs[i] = kmalloc(32, 0);
		KASSERT_NOT_NULL(objs[i]);
	}
	const struct mspan *s = mheap_span_of(objs[0]);
	KASSERT_NOT_NULL(s);
	unsigned per_span = mspan_bitmap_nunits(mspan_bitmap_bucket(s->nelems));
	KEXPECT_EQ(per_span, MSPAN_BITMAP_UNITS);   /* not bucket 0's record */
	uint64_t new_spans = N / s->nelems - 1;   /* one may have been there */
	KEXPECT_GE(bitmap_units(), before + new_spans * per_span);
	KEXPECT_EQ(mheap_verify(), 0);   /* units handed out = units of the spans */
	for (unsigned i = 0; i < N; i++)
		kfree(objs[i]);
	kmem_drain_all();
	KEXPECT_LE(bitmap_units(), before);
	KEXPECT_EQ(mheap_verify(), 0);
}

/* A fixalloc of its own (512-byte records, about 15 to an 8 KiB block):
 * an empty block stays as the one spare while other records are in use,
 * is used again before any new block, and goes back with the last record. */
KTEST(heap_meta, a_fixalloc_keeps_one_empty_block_until_its_last_record_goes)
{
	enum { MAX = 64 };
	static void *rec[MAX];
	static struct fixalloc f;
	fixalloc_init(&f, 512);
	unsigned n = 0;
	/* Fill blocks until the third one is started. */
	while (n < MAX && f.sys_bytes < 3 * FIXALLOC_BLOCK_SIZE) {
		rec[n] = fixalloc_alloc(&f, 0);
		KASSERT_NOT_NULL(rec[n]);
		n++;
	}
	KASSERT_EQ(f.sys_bytes, 3 * FIXALLOC_BLOCK_SIZE);
	unsigned per_block = (n - 1) / 2;   /* rec[n - 1] opened the third */
	/* Empty the third block, then the second: one of them stays. */
	fixalloc_free(&f, rec[--n]);
	KEXPECT_EQ(f.sys_bytes, 3 * FIXALLOC_BLOCK_SIZE);
	while (n > per_block)
		fixalloc_free(&f, rec[--n]);
	KEXPECT_EQ(f.sys_bytes, 2 * FIXALLOC_BLOCK_SIZE);
	/* Records come from the spare again, not from a new block. */
	for (unsigned i = 0; i < per_block; i++)
		KASSERT_NOT_NULL(rec[n++] = fixalloc_alloc(&f, 0));
	KEXPECT_EQ(f.sys_bytes, 2 * FIXALLOC_BLOCK_SIZE);
	while (n > 0)
		fixalloc_free(&f, rec[--n]);
	KEXPECT_EQ(f.sys_bytes, 0);
	KEXPECT_EQ(f.inuse, 0);
}

static uintptr_t block_of(const void *rec)
{
	return (uintptr_t)rec & ~(uintptr_t)(FIXALLOC_BLOCK_SIZE - 1);
}

/* Records for different CPUs never share a block (mm/fixalloc.h); the
 * spare, empty, goes to whichever CPU needs a block next. */
KTEST(heap_meta, a_fixalloc_gives_each_cpu_records_from_its_own_blocks)
{
	static struct fixalloc f;
	fixalloc_init(&f, 512);
	void *a0 = fixalloc_alloc(&f, 0);
	void *b1 = fixalloc_alloc(&f, 1);
	void *c0 = fixalloc_alloc(&f, 0);
	void *dlast = fixalloc_alloc(&f, MM_MAX_CPUS - 1);
	KASSERT_NOT_NULL(a0);
	KASSERT_NOT_NULL(b1);
	KASSERT_NOT_NULL(c0);
	KASSERT_NOT_NULL(dlast);
	KEXPECT_EQ(block_of(c0), block_of(a0));
	KEXPECT_NE(block_of(b1), block_of(a0));
	KEXPECT_NE(block_of(dlast), block_of(a0));
	KEXPECT_NE(block_of(dlast), block_of(b1));
	KEXPECT_EQ(f.sys_bytes, 3 * FIXALLOC_BLOCK_SIZE);

	/* CPU 1's block empties: it stays as the spare (others are in use)
	 * and CPU 2's first record comes from it, not from a new block. */
	uintptr_t spare = block_of(b1);
	fixalloc_free(&f, b1);
	KEXPECT_EQ(f.sys_bytes, 3 * FIXALLOC_BLOCK_SIZE);
	void *e2 = fixalloc_alloc(&f, 2);
	KASSERT_NOT_NULL(e2);
	KEXPECT_EQ(block_of(e2), spare);
	KEXPECT_EQ(f.sys_bytes, 3 * FIXALLOC_BLOCK_SIZE);
	/* CPU 1 needs a block of its own again. */
	void *g1 = fixalloc_alloc(&f, 1);
	KASSERT_NOT_NULL(g1);
	KEXPECT_NE(block_of(g1), spare);
	KEXPECT_EQ(f.sys_bytes, 4 * FIXALLOC_BLOCK_SIZE);

	void *all[] = { a0, c0, dlast, e2, g1 };
	for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		fixalloc_free(&f, all[i]);
	KEXPECT_EQ(f.sys_bytes, 0);
	KEXPECT_EQ(f.inuse, 0);
}

/* fixalloc_verify (which mheap_verify runs on every pool) catches a block
 * on another CPU's list and a spare that is still in use. */
KTEST(heap_meta, the_fixalloc_check_catches_a_block_on_the_wrong_cpus_list)
{
	static struct fixalloc f;
	fixalloc_init(&f, 512);
	void *a0 = fixalloc_alloc(&f, 0);
	void *b1 = fixalloc_alloc(&f, 1);
	KASSERT_NOT_NULL(a0);
	KASSERT_NOT_NULL(b1);
	KEXPECT_NULL(fixalloc_verify(&f));

	struct fixalloc_block *t = f.partial[0];
	f.partial[0] = f.partial[1];
	f.partial[1] = t;
	KEXPECT_NOT_NULL(fixalloc_verify(&f));
	f.partial[1] = f.partial[0];
	f.partial[0] = t;
	KEXPECT_NULL(fixalloc_verify(&f));

	/* b1's block empties and becomes the spare; claim it holds a record. */
	fixalloc_free(&f, b1);
	KASSERT_NOT_NULL(f.spare);
	void *c1 = fixalloc_alloc(&f, 1);   /* from the spare: in use again */
	KASSERT_NOT_NULL(c1);
	KEXPECT_NULL(f.spare);
	fixalloc_free(&f, c1);
	KASSERT_NOT_NULL(f.spare);
	struct fixalloc_block *spare = f.spare;
	f.spare = f.partial[0];   /* a block with a record in use */
	KEXPECT_NOT_NULL(fixalloc_verify(&f));
	f.spare = spare;
	KEXPECT_NULL(fixalloc_verify(&f));

	fixalloc_free(&f, a0);
	KEXPECT_EQ(f.sys_bytes, 0);
}

#ifdef SPANHEAP_HOSTED
/* With no memory for a block of its own, a CPU takes room in another's:
 * the record is had, the platform asked for nothing more. */
KTEST(heap_meta, a_fixalloc_out_of_memory_uses_another_cpus_block)
{
	static struct fixalloc f;
	fixalloc_init(&f, 512);
	void *a0 = fixalloc_alloc(&f, 0);
	KASSERT_NOT_NULL(a0);
	mm_host_set_sys_limit(mm_host_sys_bytes());
	void *b1 = fixalloc_alloc(&f, 1);
	mm_host_set_sys_limit(0);
	KASSERT_NOT_NULL(b1);
	KEXPECT_EQ(block_of(b1), block_of(a0));
	KEXPECT_EQ(f.sys_bytes, FIXALLOC_BLOCK_SIZE);
	fixalloc_free(&f, b1);
	fixalloc_free(&f, a0);
	KEXPECT_EQ(f.sys_bytes, 0);
}
#endif

KTEST(heap_meta, the_verifier_sees_each_broken_invariant)
{
	void *p = kmalloc(48, 0);   /* 170 objects per span: a partial last word */
	KASSERT_NOT_NULL(p);
	struct mspan *s = mheap_span_of(p);
	KASSERT_NOT_NULL(s);
	KEXPECT_EQ(mheap_verify(), 0);
	unsigned nelems = s->nelems;
	unsigned b = mspan_bitmap_bucket(nelems), pool = mspan_bitmap_pool(b);

	/* A bit past nelems, in the last word and in a word past it. */
	unsigned last = (nelems - 1) / 64;
	uint64_t saved = *mspan_remote_word(s, last);
	if (nelems % 64) {
		*mspan_remote_word(s, last) |= 1ULL << (nelems % 64);
		KEXPECT_VERIFY_BREAKS("bits set past nelems");
		*mspan_remote_word(s, last) = saved;
	}
	if (last + 1 < mspan_bitmap_words[b]) {
		*mspan_alloc_word(s, last + 1) = 1;
		KEXPECT_VERIFY_BREAKS("bits set past nelems");
		*mspan_alloc_word(s, last + 1) = 0;
	}
	/* Its bitmap in its record, where only bucket 0's may be. */
	uint64_t *sb = s->bits;
	s->bits = s->bits_inline;
	KEXPECT_VERIFY_BREAKS("not laid out as bucket");
	s->bits = sb;
	/* A small span without a bitmap. */
	s->bits = (uint64_t *)mspan_no_bits;
	KEXPECT_VERIFY_BREAKS("no bitmaps");
	s->bits = sb;

	/* A large span with a bitmap. */
	char *big = kmalloc(40 * MM_PAGE_SIZE, 0);
	KASSERT_NOT_NULL(big);
	struct mspan *l = mheap_span_of(big);
	KASSERT_NOT_NULL(l);
	l->bits = sb;
	KEXPECT_VERIFY_BREAKS("expected none (mspan_no_bits)");
	l->bits = (uint64_t *)mspan_no_bits;
	kfree(big);

	/* A unit handed out that no span holds (a leak), and then a unit of
	 * another pool in the span's place. */
	unsigned other_pool = (pool + 1) % MSPAN_BITMAP_POOLS;
	unsigned long flags = mm_spin_lock_irqsave(&mheap.lock);
	void *leak = fixalloc_alloc(mheap_bitmap_pool(pool), mm_cpu_id());
	void *other = fixalloc_alloc(mheap_bitmap_pool(other_pool), mm_cpu_id());
	mm_spin_unlock_irqrestore(&mheap.lock, flags);
	KASSERT_NOT_NULL(leak);
	KASSERT_NOT_NULL(other);
	KEXPECT_VERIFY_BREAKS("bitmap units of");
	flags = mm_spin_lock_irqsave(&mheap.lock);
	fixalloc_free(mheap_bitmap_pool(pool), leak);
	mm_spin_unlock_irqrestore(&mheap.lock, flags);
	s->bits = other;
	KEXPECT_VERIFY_BREAKS("not from pool");
	s->bits = sb;
	flags = mm_spin_lock_irqsave(&mheap.lock);
	fixalloc_free(mheap_bitmap_pool(other_pool), other);
	mm_spin_unlock_irqrestore(&mheap.lock, flags);

	/* A span record handed out that no span holds, with every bitmap
	 * unit accounted for: only the records' count can see it. */
	flags = mm_spin_lock_irqsave(&mheap.lock);
	void *record = fixalloc_alloc(&mheap.span_alloc, mm_cpu_id());
	mm_spin_unlock_irqrestore(&mheap.lock, flags);
	KASSERT_NOT_NULL(record);
	KEXPECT_VERIFY_BREAKS("span records in arena");
	flags = mm_spin_lock_irqsave(&mheap.lock);
	fixalloc_free(&mheap.span_alloc, record);
	mm_spin_unlock_irqrestore(&mheap.lock, flags);
	KEXPECT_EQ(mheap_verify(), 0);

	/* A span of bucket 0 whose bitmap is a unit, and one whose bitmap
	 * is another record's pair. */
	void *q = kmalloc(256, 0);   /* 32 objects per span: bucket 0 */
	KASSERT_NOT_NULL(q);
	struct mspan *u = mheap_span_of(q);
	KASSERT_NOT_NULL(u);
	if (mspan_state_of(u) == MSPAN_INUSE) {   /* not the debug build's large object */
		KEXPECT_EQ(mspan_bitmap_bucket(u->nelems), 0);
		uint64_t *ub = u->bits;
		u->bits = sb;
		KEXPECT_VERIFY_BREAKS("not laid out as bucket");
		u->bits = s->bits_inline;
		KEXPECT_VERIFY_BREAKS("not laid out as bucket");
		u->bits = ub;
	}
	kfree(q);

	KEXPECT_EQ(mheap_verify(), 0);
	kfree(p);
}
