/*
 * mm/mheap.c - the page heap (Go's mheap).
 *
 * The mheap hands out spans: runs of 8 KiB pages, for the mcentrals (one
 * size class each) and for large objects (> 32 KiB, one span each). It gets
 * memory from the platform (mm_sys_alloc: pmm frames through the direct map
 * in the kernel, mmap when hosted) in chunks of at least
 * MM_CHUNK_MIN_BYTES (1 MiB by default, 8 MiB hosted; when that is
 * refused, small spans halve the request down to 1 MiB and a large object
 * asks for its size rounded up to a power of two), and keeps free page
 * runs on lists by length (exact lists up to 127 pages, then bins of
 * doubling lengths, a bitmap of non-empty lists).
 * Allocation takes the smallest run that fits and splits it; freeing
 * coalesces with free neighbours found through the page map, so free runs
 * are always maximal.
 * Only the ends of a free run or large object are in the page map (the
 * rule is in mm/pagemap.h), so none of this writes an entry per page but
 * for small spans.
 * The mheap comes in arenas (mm/mheap.h: arena 0 for small spans, each
 * CPU's for its large objects), each a struct mheap with its own chunks
 * and lists; one spinlock per arena (irqsave) protects it all (but the
 * runs a page cache holds: mm/mheap.h says who writes what): the mheap is
 * the slow path, visited once per span, never per object.
 *
 * Retention, the scavenger and adoption (what becomes of a chunk that is
 * wholly free again: kept for reuse, given back to the platform by
 * policy, or taken by another arena about to grow) are mm/mscavenge.c's.
 *
 * Page caches: large objects freed on a CPU stay in that CPU's page cache
 * (mm/mpagecache.c), in state MSPAN_CACHED, which the mheap never
 * coalesces with; it takes them back when a cache is full, missed or
 * drained, under its lock (mheap_free_span_locked; mheap_alloc_span_with
 * lets a cache give them back in an allocation's own lock round).
 */
#include "mm/mheap.h"
#include "mm/mheap_internal.h"
#include "mm/mbug.h"
#include "mm/platform.h"

struct mheap mheap = { .lock = MM_SPINLOCK_INIT("mheap") };
struct mheap mheap_more_arenas[MHEAP_NARENAS > 1 ? MHEAP_NARENAS - 1 : 1];
/* 1 + the highest arena that has ever grown (relaxed; only grows): the
 * policy's sums over the arenas stop there. */
static unsigned arenas_used = 1;

unsigned mheap_arenas_in_use(void)
{
	return __atomic_load_n(&arenas_used, __ATOMIC_RELAXED);
}

/* h has a chunk: count it in (a CAS loop: arenas grow concurrently). */
static void arena_now_used(const struct mheap *h)
{
	unsigned n = mheap_arenas_in_use();
	while (n <= h->arena &&
	       !__atomic_compare_exchange_n(&arenas_used, &n, h->arena + 1, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* Called once, by kmalloc_init, before mheap.ready is set. */
void mheap_init(void)
{
	for (unsigned i = 0; i < MHEAP_NARENAS; i++) {
		struct mheap *h = mheap_arena(i);
		if (i)
			mm_spin_lock_init(&h->lock, "mheap arena");
		h->arena = i;
		fixalloc_init(&h->span_alloc, sizeof(struct mspan));
		fixalloc_init(&h->chunk_alloc, sizeof(struct heap_chunk));
		fixalloc_init(&h->tiny_alloc, sizeof(struct tiny_meta));
		fixalloc_init(&h->bits_alloc, mspan_bitmap_unit_size(0));
		fixalloc_init(&h->bits256_alloc, mspan_bitmap_unit_size(2));
		MM_BUG_ON(h->span_alloc.size != mspan_bitmap_unit_size(1));
	}
	pagemap_init_flat();
}

/* Everything below that is static runs under h->lock, h the arena it is
 * given or the one of the span or chunk it is given. */
/* A metadata record for this CPU: the span (or run, or table) it is made
 * for is this CPU's, so it comes from this CPU's blocks (mm/fixalloc.h). */
static void *meta_alloc(struct mheap *h, struct fixalloc *f)
{
	MM_HELD(&h->lock);
	return fixalloc_alloc(f, mm_cpu_id());
}

static unsigned free_list_index(size_t npages)
{
	return mheap_free_list_index(npages);
}

/* A chunk wholly free: retained, the youngest. */
static void chunk_retain(struct heap_chunk *c)
{
	struct mheap *h = c->heap;
	MM_HELD(&h->lock);
	c->retained = true;
	c->rnext = NULL;
	c->rprev = h->retained_tail;
	if (c->rprev)
		c->rprev->rnext = c;
	else
		h->retained_head = c;
	h->retained_tail = c;
	/* Atomic: kmem_scavenge_idle peeks at it without the lock. */
	__atomic_store_n(&h->retained_pages, h->retained_pages + c->npages,
			 __ATOMIC_RELAXED);
}

static void chunk_unretain(struct heap_chunk *c)
{
	struct mheap *h = c->heap;
	MM_HELD(&h->lock);
	if (c->rprev)
		c->rprev->rnext = c->rnext;
	else
		h->retained_head = c->rnext;
	if (c->rnext)
		c->rnext->rprev = c->rprev;
	else
		h->retained_tail = c->rprev;
	c->rnext = c->rprev = NULL;
	c->retained = false;
	__atomic_store_n(&h->retained_pages, h->retained_pages - c->npages,
			 __ATOMIC_RELAXED);
}

/* Free runs are the only place a chunk is wholly free: a run covering its
 * chunk is listed exactly while the chunk is retained. */
static void free_insert(struct mspan *s)
{
	struct mheap *h = s->chunk->heap;
	MM_HELD(&h->lock);
	if (s->npages == s->chunk->npages)
		chunk_retain(s->chunk);
	unsigned i = free_list_index(s->npages);
	s->prev = NULL;
	s->next = h->free[i];
	if (s->next)
		s->next->prev = s;
	h->free[i] = s;
	h->free_nonempty[i / 64] |= 1ULL << (i % 64);
	s->list = MSPAN_ON_HEAP_FREE;
	h->free_pages += s->npages;
}

static void free_remove(struct mspan *s)
{
	struct mheap *h = s->chunk->heap;
	MM_HELD(&h->lock);
	if (s->chunk->retained)
		chunk_unretain(s->chunk);
	unsigned i = free_list_index(s->npages);
	if (s->prev)
		s->prev->next = s->next;
	else
		h->free[i] = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (!h->free[i])
		h->free_nonempty[i / 64] &= ~(1ULL << (i % 64));
	s->next = s->prev = NULL;
	s->list = MSPAN_ON_NONE;
	h->free_pages -= s->npages;
}

/* The shortest run of list i of at least npages pages, or NULL. */
static struct mspan *best_fit(struct mheap *h, unsigned i, size_t npages)
{
	struct mspan *best = NULL;
	for (struct mspan *s = h->free[i]; s; s = s->next)
		if (s->npages >= npages && (!best || s->npages < best->npages))
			best = s;
	return best;
}

/* Smallest free run of at least npages pages, or NULL: in npages's own bin
 * the best fit among its runs long enough, else from the first non-empty
 * list after it, where every run fits: an exact list's head, a bin's
 * shortest run. */
static struct mspan *free_find(struct mheap *h, size_t npages)
{
	MM_HELD(&h->lock);
	unsigned i = free_list_index(npages);
	if (i >= MHEAP_NEXACT) {
		struct mspan *s = best_fit(h, i, npages);
		if (s)
			return s;
		i++;
	}
	for (unsigned w = i / 64; w < (MHEAP_NFREE + 63) / 64; w++) {
		uint64_t m = h->free_nonempty[w];
		if (w == i / 64)
			m &= ~0ULL << (i % 64);
		if (m) {
			unsigned j = w * 64 + (unsigned)__builtin_ctzll(m);
			return j < MHEAP_NEXACT ? h->free[j] : best_fit(h, j, npages);
		}
	}
	return NULL;
}

/* Make [base, base + npages pages), memory in the page map's leaves, a
 * chunk of h with records c and s (from h's blocks): one free run, whose
 * pages may hold data if needzero. */
static void chunk_attach(struct mheap *h, struct heap_chunk *c, struct mspan *s, uintptr_t base,
			 size_t npages, bool needzero)
{
	MM_HELD(&h->lock);
	arena_now_used(h);
	c->heap = h;
	c->base = base;
	c->npages = npages;
	c->retained = false;
	c->rnext = c->rprev = NULL;
	c->prev = NULL;
	c->next = h->chunks;
	if (c->next)
		c->next->prev = c;
	h->chunks = c;
	h->chunk_bytes += npages << MM_PAGE_SHIFT;

	s->startaddr = c->base;
	s->npages = c->npages;
	s->chunk = c;
	s->owner_cpu = -1;
	s->needzero = needzero;
	mspan_clear_bits(s);
	s->local_cache = MSPAN_NOT_LOCAL;
	__atomic_store_n(&s->state, MSPAN_FREE, __ATOMIC_RELEASE);
	pagemap_set_ends(s->startaddr, s->npages, s);
	free_insert(s);
}

void mheap_chunk_detach(struct mspan *s)
{
	struct heap_chunk *c = s->chunk;
	struct mheap *h = c->heap;
	MM_HELD(&h->lock);
	MM_BUG_ON(s->state != MSPAN_FREE || s->startaddr != c->base || s->npages != c->npages);
	free_remove(s);
	pagemap_set_ends(c->base, c->npages, NULL);   /* one free run */
	if (c->prev)
		c->prev->next = c->next;
	else
		h->chunks = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->chunk_bytes -= c->npages << MM_PAGE_SHIFT;
	__atomic_store_n(&s->state, MSPAN_DEAD, __ATOMIC_RELEASE);
	fixalloc_free(&h->chunk_alloc, c);
	fixalloc_free(&h->span_alloc, s);
}

void mheap_chunk_give_back(uintptr_t base, size_t npages)
{
	pagemap_remove_chunk(base, npages);
	mm_sys_free((void *)base, npages << MM_PAGE_SHIFT);
}

/* Give back what chunk_records_get took (either may be NULL). */
static void chunk_records_put(struct mheap *h, struct heap_chunk *c, struct mspan *s)
{
	if (c)
		fixalloc_free(&h->chunk_alloc, c);
	if (s)
		fixalloc_free(&h->span_alloc, s);
}

/* The two records a new chunk of h needs, its chunk record and its free
 * run's span record: both, or (false) neither. Chunk records are the
 * mheap's, no CPU's, and read only under its lock: all from CPU 0's
 * blocks, not a block for every CPU that grows the heap. */
static bool chunk_records_get(struct mheap *h, struct heap_chunk **c, struct mspan **s)
{
	MM_HELD(&h->lock);
	*c = fixalloc_alloc(&h->chunk_alloc, 0);
	*s = meta_alloc(h, &h->span_alloc);
	if (*c && *s)
		return true;
	chunk_records_put(h, *c, *s);
	return false;
}

/* Get a chunk of at least npages pages from the platform (at least
 * MHEAP_CHUNK_MIN; less when that much is not to be had: for small spans
 * down to 1 MiB, for a large object, exact, down to its own size) and add
 * it as one free run. False when out of memory. */
static bool mheap_grow(struct mheap *h, size_t npages, bool exact)
{
	MM_HELD(&h->lock);
	size_t bytes = npages << MM_PAGE_SHIFT;
	if (bytes < MHEAP_CHUNK_MIN)
		bytes = MHEAP_CHUNK_MIN;
	struct heap_chunk *c;
	struct mspan *s;
	if (!chunk_records_get(h, &c, &s))
		return false;
	void *mem = mm_sys_alloc(bytes);
	/* A platform whose least chunk is big (MM_CHUNK_MIN_BYTES: the hosted
	 * build's 8 MiB) may still have 1 MiB, what the heap asked for
	 * before it had that option, for its small spans: a process near its
	 * memory limit. */
	while (!mem && !exact && bytes / 2 >= (1UL << 20) &&
	       bytes / 2 >= npages << MM_PAGE_SHIFT) {
		bytes = (bytes / 2) & ~(size_t)(MM_PAGE_SIZE - 1);
		mem = mm_sys_alloc(bytes);
	}
	if (!mem && exact && npages << MM_PAGE_SHIFT < bytes) {
		/* A large object on a machine whose free frames are too
		 * scattered for the least chunk: a chunk of its own size,
		 * rounded up to a power of two (what a buddy allocator hands
		 * out anyway), may still be had. */
		bytes = MM_PAGE_SIZE;
		while (bytes < npages << MM_PAGE_SHIFT)
			bytes <<= 1;
		mem = mm_sys_alloc(bytes);
	}
	if (mem && !pagemap_add_chunk((uintptr_t)mem, bytes >> MM_PAGE_SHIFT)) {
		mm_sys_free(mem, bytes);
		mem = NULL;
	}
	if (!mem) {
		chunk_records_put(h, c, s);
		return false;
	}
	h->ngrow++;
	chunk_attach(h, c, s, (uintptr_t)mem, bytes >> MM_PAGE_SHIFT, !MM_SYS_ALLOC_ZEROED);
	return true;
}

/* Under h->lock, let go meanwhile: before h grows from the platform, a
 * fitting chunk that another arena retains (already mapped, and faulted
 * in where that costs) becomes h's. False when none is. */
static bool adopt_chunk(struct mheap *h, size_t npages)
{
	MM_HELD(&h->lock);
	if (MHEAP_NARENAS == 1 || mheap_retained_pages() < npages)
		return false;
	size_t n = 0;
	bool needzero = true;
	mm_spin_unlock(&h->lock);
	uintptr_t base = mheap_take_retained_chunk(h, npages, &n, &needzero);
	mm_spin_lock(&h->lock);
	if (!base)
		return false;
	h->nadopt++;
	struct heap_chunk *c;
	struct mspan *s;
	if (!chunk_records_get(h, &c, &s)) {   /* the memory goes back to the platform */
		mheap_chunk_give_back(base, n);
		h->nrelease++;   /* adopted, and given back at once */
		return false;
	}
	chunk_attach(h, c, s, base, n, needzero);
	return true;
}

/* A page count an arena keeps under its lock, readable without it. */
static void count_pages(uint64_t *counter, int64_t pages)
{
	__atomic_store_n(counter, *counter + (uint64_t)pages, __ATOMIC_RELAXED);
}

/* Take the bitmap units of a small span of bucket b into units[], after
 * the *taken already there; false when out of memory (those taken stay,
 * counted by *taken). Bucket 0 takes none. */
static bool bitmaps_take(unsigned b, void *units[MSPAN_BITMAP_UNITS], unsigned *taken)
{
	struct mheap *h = &mheap;
	MM_HELD(&h->lock);
	unsigned pool = mspan_bitmap_pool(b);
	for (; *taken < mspan_bitmap_nunits(b); (*taken)++) {
		if (!(units[*taken] = meta_alloc(h, mheap_bitmap_pool(pool))))
			return false;
		h->nbitmap_big += pool == 1;
	}
	return true;
}

static void bitmaps_give(unsigned b, void *const units[MSPAN_BITMAP_UNITS], unsigned n)
{
	struct mheap *h = &mheap;
	MM_HELD(&h->lock);
	unsigned pool = mspan_bitmap_pool(b);
	for (unsigned i = 0; i < n; i++) {
		fixalloc_free(mheap_bitmap_pool(pool), units[i]);
		h->nbitmap_big -= pool == 1;
	}
}

/* Cut the first npages pages of free run s (off every list) into a span
 * record of their own, which is returned; the rest of s goes back on the
 * free lists. NULL when no record can be had (s is listed again). */
static struct mspan *split_head(struct mspan *s, size_t npages)
{
	struct mheap *h = s->chunk->heap;
	MM_HELD(&h->lock);
	struct mspan *t = meta_alloc(h, &h->span_alloc);
	if (!t) {
		free_insert(s);
		return NULL;
	}
	t->owner_cpu = -1;
	t->local_cache = MSPAN_NOT_LOCAL;
	mspan_clear_bits(t);
	t->startaddr = s->startaddr;
	t->npages = npages;
	t->chunk = s->chunk;
	t->needzero = s->needzero;
	s->startaddr += npages << MM_PAGE_SHIFT;
	s->npages -= npages;
	free_insert(s);
	/* s's first page is t's now; s's last stays. */
	pagemap_set_ends(t->startaddr, npages, t);
	pagemap_set(s->startaddr, 1, s);
	return t;
}

/* Merge free run b (right after a) into a; returns a. */
static struct mspan *merge_runs(struct mspan *a, struct mspan *b)
{
	struct mheap *h = a->chunk->heap;
	MM_HELD(&h->lock);
	mheap_extend_run(a, b);
	__atomic_store_n(&b->state, MSPAN_DEAD, __ATOMIC_RELEASE);
	fixalloc_free(&h->span_alloc, b);
	return a;
}

struct mspan *mheap_alloc_span(size_t npages, unsigned spanclass)
{
	return mheap_alloc_span_with(&mheap, npages, spanclass, 1, true, NULL, NULL);
}

struct mspan *mheap_alloc_span_aligned(size_t npages, unsigned spanclass,
				       size_t align_pages, bool grow)
{
	return mheap_alloc_span_with(&mheap, npages, spanclass, align_pages, grow, NULL, NULL);
}

struct mspan *mheap_alloc_span_with(struct mheap *h, size_t npages, unsigned spanclass,
				    size_t align_pages, bool grow, mheap_locked_fn *first,
				    void *arg)
{
	struct mspan *s, *t = NULL;   /* t: the head split off, this attempt */
	struct tiny_meta *tiny = NULL;
	void *units[MSPAN_BITMAP_UNITS] = { NULL };
	unsigned nunits = 0;
	bool small = spanclass_sizeclass(spanclass) != 0;
	unsigned bucket = mspan_bitmap_bucket(mspan_nelems_of(spanclass, npages));

	MM_BUG_ON(!__atomic_load_n(&mheap.ready, __ATOMIC_RELAXED));
	MM_BUG_ON(small && h != &mheap);   /* small spans' metadata is arena 0's */
	if (npages == 0 || npages > (1UL << (47 - MM_PAGE_SHIFT)) ||
	    align_pages == 0 || (align_pages & (align_pages - 1)) ||
	    align_pages > (1UL << (47 - MM_PAGE_SHIFT)))
		return NULL;
	/* Room for the span wherever an aligned start falls in the run. */
	size_t need = npages + align_pages - 1;
	uintptr_t align = (uintptr_t)align_pages << MM_PAGE_SHIFT;
	unsigned long flags = mm_spin_lock_irqsave(&h->lock);
	if (first)
		first(arg);
	bool retried = false;
retry:
	if (spanclass == TINY_SPAN_CLASS && !tiny &&
	    !(tiny = meta_alloc(h, &h->tiny_alloc)))
		goto oom;
	if (small && !bitmaps_take(bucket, units, &nunits))
		goto oom;
	s = free_find(h, need);
	if (!s) {
		if (!grow)
			goto fail;   /* no scavenging: retained runs were just searched */
		if (adopt_chunk(h, need))
			s = free_find(h, need);   /* the adopted chunk fits, if nothing else */
		if (!s) {
			if (!mheap_grow(h, need, !small))
				goto oom;
			s = free_find(h, need);
		}
		MM_BUG_ON(!s);   /* the chunk just added is a run that fits */
	}
	free_remove(s);
	size_t head = ((-s->startaddr) & (align - 1)) >> MM_PAGE_SHIFT;
	if (head) {
		/* The misaligned head stays a free run of its own. */
		t = split_head(s, head);
		if (!t)
			goto oom;
		free_remove(s);
		__atomic_store_n(&t->state, MSPAN_FREE, __ATOMIC_RELEASE);
		free_insert(t);
	}
	if (s->npages > npages) {
		/* Split: the head becomes the new span, the tail stays free. */
		struct mspan *rest = s;
		s = split_head(rest, npages);
		if (!s) {
			/* No record for it (rest is listed again): the head
			 * split off above goes back into rest, so that no two
			 * free runs are left side by side. */
			if (head) {
				free_remove(t);
				free_remove(rest);
				free_insert(merge_runs(t, rest));
			}
			goto oom;
		}
	}
	s->tiny = tiny;
	if (small && npages > 2)   /* every page of a small span is mapped */
		pagemap_set(s->startaddr + MM_PAGE_SIZE, npages - 2, s);
	if (DEBUG_HEAP)
		/* Debug mode: no stale tracking trailer of an earlier span on
		 * these pages may pass for one of this span's objects
		 * (mm/mdebug.c). */
		memset((void *)s->startaddr, 0, npages << MM_PAGE_SHIFT);
	mspan_init_objects(s, spanclass, units);
	if (!small) {
		count_pages(&h->large_pages, (int64_t)npages);
		__atomic_store_n(&s->state, MSPAN_LARGE, __ATOMIC_RELEASE);
	} else {
		count_pages(&h->small_pages, (int64_t)npages);
		__atomic_store_n(&s->state, MSPAN_INUSE, __ATOMIC_RELEASE);
	}
	mm_spin_unlock_irqrestore(&h->lock, flags);
	mheap_trim_pending();   /* first may have freed */
	return s;
oom:
	/* Out of memory (for the pages, or for a span record or a tiny
	 * table) while chunks are retained: every run is listed again; give
	 * every retained chunk back to the platform, this arena's and (with
	 * its lock let go meanwhile) the others', and try once more. */
	if (!retried) {
		uint64_t released = mheap_scavenge_locked(h, 0);
		if (MHEAP_NARENAS > 1) {
			mm_spin_unlock(&h->lock);
			released += mheap_scavenge_arenas(h, 0, false);
			mm_spin_lock(&h->lock);
		}
		retried = true;
		if (released)
			goto retry;
	}
fail:
	if (tiny)
		fixalloc_free(&h->tiny_alloc, tiny);
	bitmaps_give(bucket, units, nunits);
	mm_spin_unlock_irqrestore(&h->lock, flags);
	mheap_trim_pending();
	return NULL;
}

void mheap_extend_run(struct mspan *s, struct mspan *t)
{
	/* The outer ends first: a reader looking up a neighbour's end sees
	 * s or t, never NULL. s's first page is never unmapped. */
	pagemap_set_page(t->startaddr + ((t->npages - 1) << MM_PAGE_SHIFT), s);
	if (s->npages > 1)
		pagemap_set_page(s->startaddr + ((s->npages - 1) << MM_PAGE_SHIFT), NULL);
	if (t->npages > 1)
		pagemap_set_page(t->startaddr, NULL);
	s->npages += t->npages;
	s->needzero |= t->needzero;
}

void mheap_free_span_locked(struct mspan *s)
{
	struct mheap *h = s->chunk->heap;
	MM_HELD(&h->lock);
	uint8_t state = mspan_state_of(s);
	MM_BUG_ON(state != MSPAN_INUSE && state != MSPAN_LARGE && state != MSPAN_CACHED);
	if (state != MSPAN_INUSE) {
		count_pages(&h->large_pages, -(int64_t)s->npages);
	} else {
		count_pages(&h->small_pages, -(int64_t)s->npages);
		if (s->npages > 2)   /* a free run has only its ends mapped */
			pagemap_set(s->startaddr + MM_PAGE_SIZE, s->npages - 2, NULL);
	}
	if (s->tiny) {
		fixalloc_free(&h->tiny_alloc, s->tiny);
		s->tiny = NULL;
	}
	if (mspan_has_bitmaps(s)) {
		void *units[MSPAN_BITMAP_UNITS];
		unsigned b = mspan_bitmap_bucket(s->nelems);
		mspan_bitmap_units(s, units);
		bitmaps_give(b, units, mspan_bitmap_nunits(b));
		mspan_clear_bits(s);
	}
	s->list = MSPAN_ON_NONE;
	s->owner_cpu = -1;
	s->local_cache = MSPAN_NOT_LOCAL;
	s->needzero = 1;   /* its pages were handed out */
	__atomic_store_n(&s->state, MSPAN_FREE, __ATOMIC_RELEASE);

	struct heap_chunk *c = s->chunk;
	if (s->startaddr > c->base) {
		struct mspan *left = pagemap_lookup(s->startaddr - 1);
		if (left && mspan_state_of(left) == MSPAN_FREE) {
			free_remove(left);
			s = merge_runs(left, s);
		}
	}
	uintptr_t end = s->startaddr + ((uintptr_t)s->npages << MM_PAGE_SHIFT);
	if (end < c->base + (c->npages << MM_PAGE_SHIFT)) {
		struct mspan *right = pagemap_lookup(end);
		if (right && mspan_state_of(right) == MSPAN_FREE) {
			free_remove(right);
			s = merge_runs(s, right);
		}
	}
	free_insert(s);
	mheap_retain_bound_locked(h);
}

void mheap_free_span(struct mspan *s)
{
	struct mheap *h = s->chunk->heap;
	unsigned long flags = mm_spin_lock_irqsave(&h->lock);
	mheap_free_span_locked(s);
	mm_spin_unlock_irqrestore(&h->lock, flags);
	mheap_trim_pending();
}

/* mheap_grow_large's work, under h->lock, s claimed. */
static bool grow_claimed(struct mspan *s, size_t npages)
{
	struct mheap *h = s->chunk->heap;
	MM_HELD(&h->lock);
	size_t extra = npages - s->npages;
	struct heap_chunk *c = s->chunk;
	uintptr_t end = s->startaddr + ((uintptr_t)s->npages << MM_PAGE_SHIFT);
	if (end >= c->base + (c->npages << MM_PAGE_SHIFT))
		return false;
	struct mspan *right = pagemap_lookup(end);
	if (!right || mspan_state_of(right) != MSPAN_FREE || right->npages < extra)
		return false;
	free_remove(right);
	struct mspan *t = right;
	if (right->npages > extra && !(t = split_head(right, extra)))
		return false;   /* right is listed again */
	mheap_extend_run(s, t);
	__atomic_store_n(&t->state, MSPAN_DEAD, __ATOMIC_RELEASE);
	fixalloc_free(&h->span_alloc, t);
	count_pages(&h->large_pages, (int64_t)extra);
	return true;
}

bool mheap_grow_large(uintptr_t p, size_t npages)
{
	struct mspan *s = pagemap_lookup(p);
	uint8_t large = MSPAN_LARGE;
	/* Claimed as a free claims it (a racing free of p fails meanwhile);
	 * then its arena, which a live span's chunk does not change. */
	if (!s || !__atomic_compare_exchange_n(&s->state, &large, MSPAN_CACHED, false,
					       __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return false;
	bool ok = false;
	/* The record may have been reused between the lookup and the claim. */
	if (s->startaddr == p && pagemap_lookup(p) == s && npages > s->npages) {
		struct mheap *h = s->chunk->heap;
		unsigned long flags = mm_spin_lock_irqsave(&h->lock);
		ok = grow_claimed(s, npages);
		mm_spin_unlock_irqrestore(&h->lock, flags);
	}
	__atomic_store_n(&s->state, MSPAN_LARGE, __ATOMIC_RELEASE);
	return ok;
}

struct mspan *mheap_span_in_chunk_locked(const struct heap_chunk *c, uintptr_t a)
{
	MM_HELD(&c->heap->lock);
	struct mspan *s = pagemap_lookup(a);
	if (s)
		return s;
	/* Between the ends of a run: walk the chunk's spans, each of whose
	 * first page is mapped. */
	uintptr_t at = c->base, c_end = c->base + (c->npages << MM_PAGE_SHIFT);
	while (at < c_end && (s = pagemap_lookup(at)) != NULL) {
		uintptr_t end = at + ((uintptr_t)s->npages << MM_PAGE_SHIFT);
		if (a < end)
			return s;
		at = end;
	}
	return NULL;   /* a outside c, or a broken chunk (mheap_verify says where) */
}

struct mspan *mheap_span_containing(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	for (unsigned i = 0, n = mheap_arenas_in_use(); i < n; i++) {
		struct mheap *h = mheap_arena(i);
		struct mspan *s = NULL;
		bool found = false;
		unsigned long flags = mm_spin_lock_irqsave(&h->lock);
		for (struct heap_chunk *c = h->chunks; c; c = c->next) {
			if (a - c->base < (c->npages << MM_PAGE_SHIFT)) {
				s = mheap_span_in_chunk_locked(c, a);
				found = true;
				break;
			}
		}
		mm_spin_unlock_irqrestore(&h->lock, flags);
		if (found)
			return s;
	}
	return NULL;
}

uint64_t mheap_bitmap_sys_bytes(void)
{
	return mheap.bits_alloc.sys_bytes + mheap.bits256_alloc.sys_bytes +
	       mheap.nbitmap_big * mspan_bitmap_unit_size(1);
}

uint64_t mheap_bitmap_units(void)
{
	return mheap.bits_alloc.inuse + mheap.nbitmap_big + mheap.bits256_alloc.inuse;
}

uint64_t mheap_arena_sys_bytes_locked(const struct mheap *h)
{
	MM_HELD(&((struct mheap *)h)->lock);
	return h->chunk_bytes + h->span_alloc.sys_bytes + h->bits_alloc.sys_bytes +
	       h->bits256_alloc.sys_bytes + h->chunk_alloc.sys_bytes + h->tiny_alloc.sys_bytes;
}

void mheap_lock_arenas(void)
{
	for (unsigned i = 0; i < MHEAP_NARENAS; i++)
		mm_spin_lock(&mheap_arena(i)->lock);
}

void mheap_unlock_arenas(void)
{
	for (unsigned i = MHEAP_NARENAS; i-- > 0;)
		mm_spin_unlock(&mheap_arena(i)->lock);
}
