/*
 * mm/mheap.c - the page heap (Go's mheap).
 *
 * The mheap hands out spans: runs of 8 KiB pages, for the mcentrals (one
 * size class each) and for large objects (> 32 KiB, one span each). It gets
 * memory from the platform (mm_sys_alloc: pmm frames through the direct map
 * in the kernel, mmap when hosted) in chunks of at least 1 MiB, and keeps
 * free page runs on lists by length (exact lists up to 127 pages, one list
 * for longer runs, a bitmap of non-empty lists). Allocation takes the
 * smallest run that fits and splits it; freeing coalesces with free
 * neighbours found through the page map, so free runs are always maximal;
 * a chunk that has become one free run again goes back to the platform.
 * One spinlock (mheap.lock, irqsave) protects it all: the mheap is the
 * slow path, visited once per span, never per object.
 */
#include "mm/mheap.h"
#include "mm/mbug.h"
#include "mm/platform.h"

struct mheap mheap = { .lock = MM_SPINLOCK_INIT("mheap") };

/* Called once, by kmalloc_init, before mheap.ready is set. */
void mheap_init(void)
{
	fixalloc_init(&mheap.span_alloc, sizeof(struct mspan));
	fixalloc_init(&mheap.chunk_alloc, sizeof(struct heap_chunk));
	fixalloc_init(&mheap.tiny_alloc, sizeof(struct tiny_meta));
}

/* Everything below that is static runs under mheap.lock. */
static unsigned free_list_index(size_t npages)
{
	return npages < MHEAP_NFREE ? (unsigned)npages : 0;
}

static void free_insert(struct mspan *s)
{
	MM_HELD(&mheap.lock);
	unsigned i = free_list_index(s->npages);
	s->prev = NULL;
	s->next = mheap.free[i];
	if (s->next)
		s->next->prev = s;
	mheap.free[i] = s;
	mheap.free_nonempty[i / 64] |= 1ULL << (i % 64);
	s->list = MSPAN_ON_HEAP_FREE;
	mheap.free_pages += s->npages;
}

static void free_remove(struct mspan *s)
{
	MM_HELD(&mheap.lock);
	unsigned i = free_list_index(s->npages);
	if (s->prev)
		s->prev->next = s->next;
	else
		mheap.free[i] = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (!mheap.free[i])
		mheap.free_nonempty[i / 64] &= ~(1ULL << (i % 64));
	s->next = s->prev = NULL;
	s->list = MSPAN_ON_NONE;
	mheap.free_pages -= s->npages;
}

/* Smallest free run of at least npages pages, or NULL. */
static struct mspan *free_find(size_t npages)
{
	MM_HELD(&mheap.lock);
	if (npages < MHEAP_NFREE) {
		for (unsigned w = (unsigned)npages / 64; w < MHEAP_NFREE / 64; w++) {
			uint64_t m = mheap.free_nonempty[w];
			if (w == npages / 64)
				m &= ~0ULL << (npages % 64);
			if (m)
				return mheap.free[w * 64 + (unsigned)__builtin_ctzll(m)];
		}
	}
	/* Long runs: best fit. */
	struct mspan *best = NULL;
	for (struct mspan *s = mheap.free[0]; s; s = s->next)
		if (s->npages >= npages && (!best || s->npages < best->npages))
			best = s;
	return best;
}

/* Get a chunk of at least npages pages from the platform and add it as
 * one free run. False when out of memory. */
static bool mheap_grow(size_t npages)
{
	MM_HELD(&mheap.lock);
	size_t bytes = npages << MM_PAGE_SHIFT;
	if (bytes < MHEAP_CHUNK_MIN)
		bytes = MHEAP_CHUNK_MIN;

	struct heap_chunk *c = fixalloc_alloc(&mheap.chunk_alloc);
	struct mspan *s = fixalloc_alloc(&mheap.span_alloc);
	void *mem = (c && s) ? mm_sys_alloc(bytes) : NULL;
	if (mem && !pagemap_add_chunk((uintptr_t)mem, bytes >> MM_PAGE_SHIFT)) {
		mm_sys_free(mem, bytes);
		mem = NULL;
	}
	if (!mem) {
		if (c)
			fixalloc_free(&mheap.chunk_alloc, c);
		if (s)
			fixalloc_free(&mheap.span_alloc, s);
		return false;
	}
	c->base = (uintptr_t)mem;
	c->npages = bytes >> MM_PAGE_SHIFT;
	c->prev = NULL;
	c->next = mheap.chunks;
	if (c->next)
		c->next->prev = c;
	mheap.chunks = c;
	mheap.chunk_bytes += bytes;
	mheap.ngrow++;

	s->startaddr = c->base;
	s->npages = c->npages;
	s->chunk = c;
	s->owner_cpu = -1;
	__atomic_store_n(&s->state, MSPAN_FREE, __ATOMIC_RELEASE);
	pagemap_set(s->startaddr, s->npages, s);
	free_insert(s);
	return true;
}

static void chunk_release(struct mspan *s)
{
	MM_HELD(&mheap.lock);
	struct heap_chunk *c = s->chunk;

	pagemap_set(c->base, c->npages, NULL);
	pagemap_remove_chunk(c->base, c->npages);
	if (c->prev)
		c->prev->next = c->next;
	else
		mheap.chunks = c->next;
	if (c->next)
		c->next->prev = c->prev;
	mheap.chunk_bytes -= c->npages << MM_PAGE_SHIFT;
	mheap.nrelease++;
	mm_sys_free((void *)c->base, c->npages << MM_PAGE_SHIFT);
	__atomic_store_n(&s->state, MSPAN_DEAD, __ATOMIC_RELEASE);
	fixalloc_free(&mheap.chunk_alloc, c);
	fixalloc_free(&mheap.span_alloc, s);
}

/* Cut the first npages pages of free run s (off every list) into a span
 * record of their own, which is returned; the rest of s goes back on the
 * free lists. NULL when no record can be had (s is listed again). */
static struct mspan *split_head(struct mspan *s, size_t npages)
{
	MM_HELD(&mheap.lock);
	struct mspan *t = fixalloc_alloc(&mheap.span_alloc);
	if (!t) {
		free_insert(s);
		return NULL;
	}
	t->owner_cpu = -1;
	t->startaddr = s->startaddr;
	t->npages = npages;
	t->chunk = s->chunk;
	s->startaddr += npages << MM_PAGE_SHIFT;
	s->npages -= npages;
	free_insert(s);
	pagemap_set(t->startaddr, npages, t);
	return t;
}

struct mspan *mheap_alloc_span(size_t npages, unsigned spanclass)
{
	return mheap_alloc_span_aligned(npages, spanclass, 1);
}

struct mspan *mheap_alloc_span_aligned(size_t npages, unsigned spanclass,
				       size_t align_pages)
{
	struct mspan *s, *t;
	struct tiny_meta *tiny = NULL;

	MM_BUG_ON(!__atomic_load_n(&mheap.ready, __ATOMIC_RELAXED));
	if (npages == 0 || npages > (1UL << (47 - MM_PAGE_SHIFT)) ||
	    align_pages == 0 || (align_pages & (align_pages - 1)) ||
	    align_pages > (1UL << (47 - MM_PAGE_SHIFT)))
		return NULL;
	/* Room for the span wherever an aligned start falls in the run. */
	size_t need = npages + align_pages - 1;
	uintptr_t align = (uintptr_t)align_pages << MM_PAGE_SHIFT;
	unsigned long flags = mm_spin_lock_irqsave(&mheap.lock);

	if (spanclass == TINY_SPAN_CLASS && !(tiny = fixalloc_alloc(&mheap.tiny_alloc)))
		goto oom;
	s = free_find(need);
	if (!s) {
		if (!mheap_grow(need))
			goto oom;
		s = free_find(need);
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
		s = split_head(s, npages);
		if (!s)
			goto oom;
	}
	s->tiny = tiny;
	if (DEBUG_HEAP)
		/* Debug mode: no stale tracking trailer of an earlier span on
		 * these pages may pass for one of this span's objects
		 * (mm/mdebug.c). */
		memset((void *)s->startaddr, 0, npages << MM_PAGE_SHIFT);
	mspan_init_objects(s, spanclass);
	if (spanclass_sizeclass(spanclass) == 0) {
		mheap.large_pages += npages;
		mheap.nlarge++;
		__atomic_store_n(&s->state, MSPAN_LARGE, __ATOMIC_RELEASE);
	} else {
		mheap.small_pages += npages;
		__atomic_store_n(&s->state, MSPAN_INUSE, __ATOMIC_RELEASE);
	}
	mm_spin_unlock_irqrestore(&mheap.lock, flags);
	return s;
oom:
	if (tiny)
		fixalloc_free(&mheap.tiny_alloc, tiny);
	mm_spin_unlock_irqrestore(&mheap.lock, flags);
	return NULL;
}

/* Merge free run b (right after a) into a's record or a into b's,
 * whichever rewrites fewer page-map entries; returns the survivor. */
static struct mspan *merge_runs(struct mspan *a, struct mspan *b)
{
	MM_HELD(&mheap.lock);
	if (a->npages >= b->npages) {
		pagemap_set(b->startaddr, b->npages, a);
		a->npages += b->npages;
		__atomic_store_n(&b->state, MSPAN_DEAD, __ATOMIC_RELEASE);
		fixalloc_free(&mheap.span_alloc, b);
		return a;
	}
	pagemap_set(a->startaddr, a->npages, b);
	b->startaddr = a->startaddr;
	b->npages += a->npages;
	__atomic_store_n(&a->state, MSPAN_DEAD, __ATOMIC_RELEASE);
	fixalloc_free(&mheap.span_alloc, a);
	return b;
}

static void free_span_locked(struct mspan *s)
{
	MM_HELD(&mheap.lock);
	MM_BUG_ON(s->state != MSPAN_INUSE && s->state != MSPAN_LARGE);
	if (mspan_state_of(s) == MSPAN_LARGE) {
		mheap.large_pages -= s->npages;
		mheap.nlarge--;
	} else {
		mheap.small_pages -= s->npages;
	}
	if (s->tiny) {
		fixalloc_free(&mheap.tiny_alloc, s->tiny);
		s->tiny = NULL;
	}
	s->list = MSPAN_ON_NONE;
	s->owner_cpu = -1;
	__atomic_store_n(&s->state, MSPAN_FREE, __ATOMIC_RELEASE);

	struct heap_chunk *c = s->chunk;
	if (s->startaddr > c->base) {
		struct mspan *left = pagemap_lookup(s->startaddr - 1);
		if (left->state == MSPAN_FREE) {
			free_remove(left);
			s = merge_runs(left, s);
		}
	}
	uintptr_t end = s->startaddr + ((uintptr_t)s->npages << MM_PAGE_SHIFT);
	if (end < c->base + (c->npages << MM_PAGE_SHIFT)) {
		struct mspan *right = pagemap_lookup(end);
		if (right->state == MSPAN_FREE) {
			free_remove(right);
			s = merge_runs(s, right);
		}
	}
	if (s->npages == c->npages)
		chunk_release(s);
	else
		free_insert(s);
}

void mheap_free_span(struct mspan *s)
{
	unsigned long flags = mm_spin_lock_irqsave(&mheap.lock);
	free_span_locked(s);
	mm_spin_unlock_irqrestore(&mheap.lock, flags);
}

bool mheap_free_large(uintptr_t p)
{
	unsigned long flags = mm_spin_lock_irqsave(&mheap.lock);
	struct mspan *s = pagemap_lookup(p);
	bool ok = s && s->state == MSPAN_LARGE && s->startaddr == p;
	if (ok)
		free_span_locked(s);
	mm_spin_unlock_irqrestore(&mheap.lock, flags);
	return ok;
}

uint64_t mheap_sys_bytes(void)
{
	return mheap.chunk_bytes + mheap.span_alloc.sys_bytes +
	       mheap.chunk_alloc.sys_bytes + mheap.tiny_alloc.sys_bytes;
}
