/*
 * mm/mspan.c - spans and their object bitmaps (Go's mspan).
 *
 * A span is a run of 8 KiB pages. A small-object span is cut into nelems
 * objects of one size class; a large span (class 0) is one object. All
 * bookkeeping lives in struct mspan and, for a small span, in its bitmap
 * units (sized for nelems: mm/mspan.h), never in the objects:
 *
 *   alloc_bits   bit i set: object i is handed out. The CPU whose mcache
 *                holds the span (its owner) sets the bit as it hands the
 *                object out and clears it when it frees the object: plain
 *                stores, no atomic instruction (mimalloc's local free
 *                list, as one bit).
 *   cache word   the free slots of one word of alloc_bits (cache_word),
 *                so allocation is a ctz and a clear-lowest-bit (Go's
 *                allocCache, non-inverted; the owner's mcache keeps it,
 *                mm/mcache.h).
 *   remote_bits  frees made by any other CPU: one atomic OR per object
 *                (mimalloc's thread-free list, as one bit).
 *
 * The owner's free makes its slot free at once; it is handed out again
 * when allocation next loads that word into its cache word (a refill
 * looks at the word it used up first). A remote free only records the
 * object; its slot becomes free when the span is swept (mspan_sweep): the
 * remote words are folded into alloc_bits and alloc_count is recounted
 * (and the owner's allocation restarts at the first word with a free
 * slot). A span is swept by its owner when it runs out of slots, and by
 * its mcentral (under the mcentral lock) whenever it is uncached or found
 * on the mcentral's pending stack.
 * How a free from another CPU is recorded without a lock, and why no free
 * is lost: mm/mcentral.c, mcentral_free.
 *
 * Liveness check (double free, free of a never-allocated slot): object i is
 * live iff its alloc_bits bit is set and remote_bits does not have it;
 * the check reads the remote word before alloc_bits, and a sweep clears
 * alloc_bits before the remote bits, so a second free racing with the
 * sweep of the first is refused (the order mm/mcentral.pml checks).
 * alloc_bits has one writer at a time (the owner, or the mcentral under
 * its lock) and only ever loses bits of objects already freed, so a CPU
 * checking the free of a live object always sees its bit.
 */
#include "mm/mspan.h"
#include "mm/bitops.h"
#include "mm/platform.h"

/* Word pairs (alloc word, remote word) of each bucket's bitmap. */
const uint8_t mspan_bitmap_words[MSPAN_BITMAP_BUCKETS] = { 1, 4, 8, 16 };
/* The bitmap of every record that is no small span: one zero pair. */
const uint64_t mspan_no_bits[2] = { 0, 0 };

/* Bytes of the bitmap (its word pairs) of bucket b. */
static size_t bitmap_bytes(unsigned b) { return mspan_bitmap_words[b] * 2 * sizeof(uint64_t); }

unsigned mspan_bitmap_pool(unsigned b)
{
	return bitmap_bytes(b) <= 64 ? 0 : bitmap_bytes(b) <= 128 ? 1 : 2;
}

size_t mspan_bitmap_unit_size(unsigned pool)
{
	return (size_t)64 << pool;
}

void mspan_bitmap_units(const struct mspan *s, void *units[MSPAN_BITMAP_UNITS])
{
	units[0] = s->bits;
}

bool mspan_bitmap_layout_ok(const struct mspan *s)
{
	if (mspan_bitmap_bucket(s->nelems) == 0)
		return s->bits == s->bits_inline;
	const char *b = (const char *)s->bits, *rec = (const char *)s;
	return b < rec || b >= rec + sizeof(*s);
}

unsigned mspan_nelems_of(unsigned spanclass, size_t npages)
{
	unsigned cls = spanclass_sizeclass(spanclass);
	if (cls == 0)
		return 1;
	return size_class_obj_index(cls, (uint32_t)(npages << MM_PAGE_SHIFT));
}

void mspan_clear_bits(struct mspan *s)
{
	s->bits = (uint64_t *)mspan_no_bits;
}

void mspan_init_objects(struct mspan *s, unsigned spanclass,
			void *const units[MSPAN_BITMAP_UNITS])
{
	unsigned cls = spanclass_sizeclass(spanclass);

	s->spanclass = (uint8_t)spanclass;
	s->divmagic = class_to_divmagic[cls];
	s->nelems = (uint16_t)mspan_nelems_of(spanclass, s->npages);
	s->elemsize = cls ? class_to_size[cls] : 0;   /* large: the object is the whole span */
	s->alloc_count = 0;
	s->owner_cpu = -1;
	s->remote_pending = 0;
	s->pending_next = NULL;
	if (cls == 0) {
		mspan_clear_bits(s);
		s->cache_word = 0;
		return;
	}
	s->cache_word = 0;
	if (mspan_bitmap_bucket(s->nelems) == 0) {
		s->bits_inline[0] = s->bits_inline[1] = 0;
		s->bits = s->bits_inline;
		return;
	}
	/* The unit comes zeroed from its fixalloc. */
	s->bits = units[0];
}

void mspan_sweep(struct mspan *s)
{
	unsigned nw = mspan_nwords(s), count = 0;

	for (unsigned w = 0; w < nw; w++) {
		/* Snapshot the remote frees, free their slots, and only then
		 * clear what was snapshot (a remote bit set meanwhile stays
		 * for the next sweep): a free that finds an object's remote
		 * bit gone finds its slot free (mspan_obj_live), so a double
		 * free racing with a sweep is still refused. */
		uint64_t r = __atomic_load_n(mspan_remote_word(s, w), __ATOMIC_ACQUIRE);
		uint64_t a = ld64(mspan_alloc_word(s, w));
		if (r) {
			a &= ~r;
			st64(mspan_alloc_word(s, w), a);
			__atomic_fetch_and(mspan_remote_word(s, w), ~r, __ATOMIC_SEQ_CST);
		}
		count += (unsigned)mm_popcount64(a);
	}
	s->alloc_count = (uint16_t)count;
}
