/*
 * mm/mdebug.c - the heap's debug mode (make DEBUG_HEAP=1), after Linux's
 * slub_debug and KASAN's reports.
 *
 * In debug mode this file is the public API (kmalloc, kfree, ksize, ...)
 * and the heap of mm/malloc.c sits under it (heap_raw_*). Every request of
 * n bytes becomes a heap object of at least n + KMEM_REDZONE_MIN +
 * KMEM_TRAILER_SIZE bytes, laid out as
 *
 *   | n bytes for the caller | red zone (0xcc), >= 32 bytes | trailer |
 *
 * The trailer (the object's last 32 bytes) records the requested size, the
 * state (live or freed), the allocation and the free call sites; its tag
 * (a magic number mixed with the object's address and size) tells a real
 * trailer from stale bytes. The caller's bytes start at the object start,
 * so alignment guarantees are unchanged, and ksize() is n.
 *
 *   kfree   checks the red zone (an overflow is reported with the number
 *           of bytes overwritten), marks the trailer freed (a second kfree
 *           finds it so: double free), poisons the object with 0x6b and
 *           puts it in the quarantine: a bounded global FIFO that delays
 *           its reuse, so a write through a stale pointer lands in poison.
 *   release when an object leaves the quarantine (FIFO order, or a flush:
 *           drain, out of memory) its poison is checked, then it is freed.
 *   kmalloc checks the poison again if the slot it got still holds a freed
 *           trailer (a write after the quarantine let go of it), then
 *           fills the object (0x5a, or zeros), the red zone and trailer.
 *
 * Every finding is printed with mm_log as "BUG: heap: ..." plus the
 * allocation, free and detecting call sites, counted (kmem_debug_stats),
 * and kept as the last report for tests; the heap itself stays consistent
 * (a double free is ignored, a damaged object is freed normally).
 * Pointers the heap never handed out keep the heap's always-on reports.
 */
#include <stdbool.h>
#include "mm/mdebug.h"

#if DEBUG_HEAP
#include "mm/kmalloc.h"
#include "mm/malloc_internal.h"
#include "mm/badptr.h"
#include "mm/mheap.h"
#include "mm/mlock.h"
#include "mm/platform.h"

/* Optional platform hook: name of the function containing a code address
 * and the offset into it, or NULL. The kernel provides it (ksyms). */
const char *mm_symbolize(const void *addr, unsigned long *offset) __attribute__((weak));

#define TRAILER_MAGIC 0x5ba9d3b0c0dedbadULL
#define STATE_SHIFT 56
#define SIZE_MASK ((1ULL << STATE_SHIFT) - 1)
enum { STATE_LIVE = 1, STATE_FREED = 2 };

struct trailer {
	uint64_t tag;          /* TRAILER_MAGIC ^ address ^ object size */
	uint64_t size_state;   /* requested size | state << STATE_SHIFT */
	const void *alloc_site;
	const void *free_site;
};
_Static_assert(sizeof(struct trailer) == KMEM_TRAILER_SIZE, "trailer size");

#define KMALLOC_DEBUG_MAX ((1ULL << 47) - 4096)

/* ------------------------------------------------------------ objects -- */

static uint64_t trailer_tag(const void *p, size_t objsize)
{
	return TRAILER_MAGIC ^ (uint64_t)(uintptr_t)p ^ ((uint64_t)objsize << 17);
}

static struct trailer *trailer_of(const void *p, size_t objsize)
{
	return (struct trailer *)((uintptr_t)p + objsize - KMEM_TRAILER_SIZE);
}

static unsigned sizeclass_of(const void *p)
{
	struct mspan *s = mheap_span_of(p);
	return s ? spanclass_sizeclass(s->spanclass) : 0;
}

/* Bytes in [from, to) of p that differ from `pattern`; first/last offset. */
static size_t count_changed(const void *p, size_t from, size_t to, uint8_t pattern,
			    size_t *first, size_t *last)
{
	const uint8_t *b = p;
	size_t n = 0;
	for (size_t i = from; i < to; i++) {
		if (b[i] != pattern) {
			if (!n)
				*first = i;
			*last = i;
			n++;
		}
	}
	return n;
}

/* ------------------------------------------------------------ reports -- */

/* report_lock (irqsave) protects last_report; the counters are atomic. */
static mm_spinlock_t report_lock = MM_SPINLOCK_INIT("kmem_debug_report");
static struct kmem_debug_report last_report;
static struct kmem_debug_stats dstats;

static void log_site(const char *what, const void *site)
{
	unsigned long off = 0;
	const char *name = site && mm_symbolize ? mm_symbolize(site, &off) : NULL;
	if (name)
		mm_log("  %s %s+%#lx (%p)", what, name, off, site);
	else
		mm_log("  %s %p", what, site);
}

static const char *bug_title(enum kmem_bug bug)
{
	switch (bug) {
	case KMEM_BUG_USE_AFTER_FREE: return "use-after-free write in object";
	case KMEM_BUG_OVERFLOW: return "out-of-bounds write after object";
	case KMEM_BUG_DOUBLE_FREE: return "double free of object";
	case KMEM_BUG_FREED_ACCESS: return "use of freed object";
	default: return "?";
	}
}

/* Print a report, count it, keep it as the last one. `found_by` names the
 * call that found it (kfree, kmalloc, quarantine, ksize, krealloc). */
static void report(const struct kmem_debug_report *r, const char *found_by)
{
	uint64_t *counter = r->bug == KMEM_BUG_USE_AFTER_FREE ? &dstats.use_after_free :
			    r->bug == KMEM_BUG_OVERFLOW ? &dstats.overflow :
			    r->bug == KMEM_BUG_DOUBLE_FREE ? &dstats.double_free :
			    &dstats.freed_access;
	unsigned long flags = mm_spin_lock_irqsave(&report_lock);
	last_report = *r;
	if (r->sizeclass)
		mm_log("BUG: heap: %s %p (kmalloc-%zu, %zu bytes requested)",
		       bug_title(r->bug), r->object, r->objsize, r->size);
	else
		mm_log("BUG: heap: %s %p (large object, %zu KiB, %zu bytes requested)",
		       bug_title(r->bug), r->object, r->objsize >> 10, r->size);
	if (r->bug == KMEM_BUG_USE_AFTER_FREE)
		mm_log("  %zu byte(s) of the freed object overwritten at offset %zu..%zu; found by %s",
		       r->nbytes, r->first_offset, r->last_offset, found_by);
	else if (r->bug == KMEM_BUG_OVERFLOW && r->nbytes)
		mm_log("  %zu byte(s) of the red zone overwritten at offset %zu..%zu "
		       "(%zu..%zu past the end); found by %s",
		       r->nbytes, r->first_offset, r->last_offset,
		       r->first_offset - r->size + 1, r->last_offset - r->size + 1, found_by);
	else if (r->bug == KMEM_BUG_OVERFLOW)
		mm_log("  red zone and tracking trailer overwritten (overflow of %zu+ bytes?); found by %s",
		       r->objsize - r->size, found_by);
	else
		mm_log("  found by %s", found_by);
	log_site("allocated at", r->alloc_site);
	if (r->free_site)
		log_site("freed at", r->free_site);
	if (r->caller)
		log_site("found in the call from", r->caller);
	mm_spin_unlock_irqrestore(&report_lock, flags);
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
	/* A double free or a freed pointer handed to ksize/krealloc is a bad
	 * pointer the heap ignored, as in the normal build. */
	if (r->bug == KMEM_BUG_DOUBLE_FREE || r->bug == KMEM_BUG_FREED_ACCESS)
		__atomic_fetch_add(&kmem_bad_frees, 1, __ATOMIC_RELAXED);
}

static void report_init(struct kmem_debug_report *r, enum kmem_bug bug, const void *p,
			size_t objsize, const struct trailer *t, const void *caller)
{
	memset(r, 0, sizeof(*r));
	r->bug = bug;
	r->object = p;
	r->objsize = objsize;
	r->sizeclass = sizeclass_of(p);
	r->caller = caller;
	if (t) {
		r->size = t->size_state & SIZE_MASK;
		r->alloc_site = t->alloc_site;
		r->free_site = t->free_site;
	}
}

/* Bytes [from, objsize - trailer) of the object should all be `fill`;
 * report the changed ones as `bug`. True if there was something to report. */
static bool check_fill(void *p, size_t objsize, struct trailer *t, size_t from,
		       uint8_t fill, enum kmem_bug bug, const char *found_by,
		       const void *caller)
{
	struct kmem_debug_report r;
	size_t first = 0, last = 0;
	size_t n = count_changed(p, from, objsize - KMEM_TRAILER_SIZE, fill, &first, &last);
	if (!n)
		return false;
	report_init(&r, bug, p, objsize, t, caller);
	r.nbytes = n;
	r.first_offset = first;
	r.last_offset = last;
	report(&r, found_by);
	return true;
}

/* Poison of a freed object intact? Otherwise report a use after free. */
static void check_poison(void *p, size_t objsize, struct trailer *t,
			 const char *found_by, const void *caller)
{
	if (check_fill(p, objsize, t, 0, KMEM_POISON_FREE, KMEM_BUG_USE_AFTER_FREE,
		       found_by, caller))
		/* One bug, one report: the object is poisoned again. */
		memset(p, KMEM_POISON_FREE, objsize - KMEM_TRAILER_SIZE);
}

/* Red zone of a live object intact? Otherwise report an overflow. */
static void check_redzone(void *p, size_t objsize, struct trailer *t, size_t size,
			  const char *found_by, const void *caller)
{
	check_fill(p, objsize, t, size, KMEM_POISON_REDZONE, KMEM_BUG_OVERFLOW, found_by,
		   caller);
}

/* --------------------------------------------------------- quarantine -- */

/* A FIFO ring of freed, poisoned objects. quarantine_lock (irqsave)
 * protects the ring and its totals; objects leave it under the lock and
 * are checked and freed after it is dropped. Those on their way out (and
 * those too big to keep) are counted in q_leaving (and q_leaving_large,
 * their bytes if large) from the moment the lock lets them go until the
 * heap has freed them, so that the statistics (kmem_debug_quarantined)
 * never see an object freed by its caller in neither place. */
struct qentry {
	void *p;
	size_t objsize;
};
static mm_spinlock_t quarantine_lock = MM_SPINLOCK_INIT("kmem_quarantine");
static struct qentry quarantine[KMEM_QUARANTINE_OBJS];
static unsigned q_head, q_count;
static size_t q_bytes, q_large_bytes;
static uint64_t q_leaving, q_leaving_large;   /* ++ under the lock, -- atomic */

/* e leaves the quarantine (or skips it): counted as leaving. */
static void quarantine_leaving_locked(struct qentry e)
{
	__atomic_fetch_add(&q_leaving, 1, __ATOMIC_RELAXED);
	if (e.objsize > MAX_SMALL_SIZE)
		__atomic_fetch_add(&q_leaving_large, e.objsize, __ATOMIC_RELAXED);
}

static struct qentry quarantine_pop_locked(void)
{
	struct qentry e = quarantine[q_head];
	q_head = (q_head + 1) % KMEM_QUARANTINE_OBJS;
	q_count--;
	q_bytes -= e.objsize;
	if (e.objsize > MAX_SMALL_SIZE)
		q_large_bytes -= e.objsize;
	quarantine_leaving_locked(e);
	return e;
}

/* Out of quarantine: check the poison, then really free it. */
static void quarantine_release(struct qentry e)
{
	struct trailer *t = trailer_of(e.p, e.objsize);
	check_poison(e.p, e.objsize, t, "the quarantine releasing it", NULL);
	__atomic_fetch_add(&dstats.released, 1, __ATOMIC_RELAXED);
	heap_raw_free(e.p, t->free_site);
	if (e.objsize > MAX_SMALL_SIZE)
		__atomic_fetch_sub(&q_leaving_large, e.objsize, __ATOMIC_RELEASE);
	__atomic_fetch_sub(&q_leaving, 1, __ATOMIC_RELEASE);
}

#define EVICT_BATCH 8

static void quarantine_put(void *p, size_t objsize)
{
	struct qentry evict[EVICT_BATCH];
	unsigned n = 0;

	unsigned long flags = mm_spin_lock_irqsave(&quarantine_lock);
	while (n < EVICT_BATCH && q_count &&
	       (q_count == KMEM_QUARANTINE_OBJS || q_bytes + objsize > KMEM_QUARANTINE_BYTES))
		evict[n++] = quarantine_pop_locked();
	bool keep = q_count < KMEM_QUARANTINE_OBJS && objsize <= KMEM_QUARANTINE_BYTES;
	if (keep) {
		quarantine[(q_head + q_count) % KMEM_QUARANTINE_OBJS] =
			(struct qentry){ p, objsize };
		q_count++;
		q_bytes += objsize;
		if (objsize > MAX_SMALL_SIZE)
			q_large_bytes += objsize;
	} else {
		quarantine_leaving_locked((struct qentry){ p, objsize });
	}
	mm_spin_unlock_irqrestore(&quarantine_lock, flags);
	if (keep)
		__atomic_fetch_add(&dstats.quarantined, 1, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < n; i++)
		quarantine_release(evict[i]);
	if (!keep)
		quarantine_release((struct qentry){ p, objsize });
}

void kmem_debug_flush_quarantine(void)
{
	for (;;) {
		struct qentry e;
		unsigned long flags = mm_spin_lock_irqsave(&quarantine_lock);
		bool any = q_count != 0;
		if (any)
			e = quarantine_pop_locked();
		mm_spin_unlock_irqrestore(&quarantine_lock, flags);
		if (!any)
			return;
		quarantine_release(e);
	}
}

static bool quarantine_empty(void)
{
	return __atomic_load_n(&q_count, __ATOMIC_RELAXED) == 0;
}

/* ---------------------------------------------------------- operations -- */

/* The alignment a debug object of `size` bytes gets: what the normal heap
 * gives (the largest power of two dividing the class size, up to 32 KiB:
 * the power-of-two classes are naturally aligned; 8 KiB for large
 * objects), and since ksize() is `size` here, also the largest power of
 * two dividing `size` (up to the same cap), so the kmalloc.h promise holds
 * either way. */
static size_t debug_align(size_t size)
{
	if (size > MAX_SMALL_SIZE)
		return MM_PAGE_SIZE;
	uint32_t cs = class_to_size[size ? size_to_class(size) : 1];
	size_t a = cs & -cs, b = size & -size;
	if (b > a)
		a = b;
	return a < 8 ? 8 : a;
}

static void *debug_alloc(size_t size, size_t align, unsigned flags, const void *caller)
{
	if (size > KMALLOC_DEBUG_MAX) {
		mm_alloc_failed();
		return NULL;
	}
	if (debug_align(size) > align)
		align = debug_align(size);
	size_t raw = size + KMEM_REDZONE_MIN + KMEM_TRAILER_SIZE;
	void *p = heap_raw_alloc(raw, align, flags & ~KM_ZERO);
	if (!p && !quarantine_empty()) {
		kmem_debug_flush_quarantine();
		p = heap_raw_alloc(raw, align, flags & ~KM_ZERO);
	}
	if (!p)
		return NULL;   /* the heap told the platform */
	size_t objsize = heap_raw_size(NULL, p, NULL);
	struct trailer *t = trailer_of(p, objsize);
	if (t->tag == trailer_tag(p, objsize) &&
	    (t->size_state >> STATE_SHIFT) == STATE_FREED)
		check_poison(p, objsize, t, "kmalloc handing it out again", caller);
	memset(p, (flags & KM_ZERO) ? 0 : KMEM_POISON_ALLOC, size);
	memset((char *)p + size, KMEM_POISON_REDZONE, objsize - KMEM_TRAILER_SIZE - size);
	t->alloc_site = caller;
	t->free_site = NULL;
	t->size_state = size | (uint64_t)STATE_LIVE << STATE_SHIFT;
	t->tag = trailer_tag(p, objsize);
	return p;
}

/* The trailer of live object p for operation `op`, or NULL (reported,
 * unless the heap reported it already as a bad pointer). */
static struct trailer *live_trailer(const char *op, const void *p, size_t *objsize,
				    const void *caller)
{
	*objsize = heap_raw_size(op, p, caller);
	if (!*objsize)
		return NULL;
	struct trailer *t = trailer_of(p, *objsize);
	struct kmem_debug_report r;
	if (t->tag != trailer_tag(p, *objsize)) {
		report_init(&r, KMEM_BUG_OVERFLOW, p, *objsize, NULL, caller);
		report(&r, op);
		return NULL;
	}
	if ((__atomic_load_n(&t->size_state, __ATOMIC_RELAXED) >> STATE_SHIFT) != STATE_LIVE) {
		report_init(&r, KMEM_BUG_FREED_ACCESS, p, *objsize, t, caller);
		report(&r, op);
		return NULL;
	}
	return t;
}

static void debug_free(const void *cp, const void *caller)
{
	void *p = (void *)cp;
	if (!p)
		return;
	size_t objsize = heap_raw_size(NULL, p, NULL);
	if (!objsize) {
		heap_raw_free(p, caller);   /* not a live heap object: the heap reports */
		return;
	}
	struct trailer *t = trailer_of(p, objsize);
	struct kmem_debug_report r;
	if (t->tag != trailer_tag(p, objsize)) {
		/* Overflow past the red zone: size and sites are lost. */
		report_init(&r, KMEM_BUG_OVERFLOW, p, objsize, NULL, caller);
		report(&r, "kfree");
		heap_raw_free(p, caller);
		return;
	}
	uint64_t ss = __atomic_load_n(&t->size_state, __ATOMIC_RELAXED);
	do {
		if ((ss >> STATE_SHIFT) != STATE_LIVE) {
			report_init(&r, KMEM_BUG_DOUBLE_FREE, p, objsize, t, caller);
			report(&r, "kfree");
			return;
		}
	} while (!__atomic_compare_exchange_n(&t->size_state, &ss,
					      (ss & SIZE_MASK) | (uint64_t)STATE_FREED << STATE_SHIFT,
					      false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
	check_redzone(p, objsize, t, ss & SIZE_MASK, "kfree", caller);
	t->free_site = caller;
	memset(p, KMEM_POISON_FREE, objsize - KMEM_TRAILER_SIZE);
	quarantine_put(p, objsize);
}

static void *debug_realloc(void *p, size_t size, unsigned flags, const void *caller)
{
	if (!p)
		return debug_alloc(size, 8, flags, caller);
	if (size == 0) {
		/* The kmalloc(0) object first, as mm/malloc.c's krealloc: with
		 * none to be had, NULL and p untouched. */
		void *q = debug_alloc(0, 8, flags, caller);
		if (q)
			debug_free(p, caller);
		return q;
	}
	size_t objsize;
	struct trailer *t = live_trailer("krealloc", p, &objsize, caller);
	if (!t)
		return NULL;
	size_t old = t->size_state & SIZE_MASK;
	if (size <= objsize - KMEM_TRAILER_SIZE - KMEM_REDZONE_MIN &&
	    (uintptr_t)p % debug_align(size) == 0) {
		/* In place: check the old red zone, lay out the new one. */
		check_redzone(p, objsize, t, old, "krealloc", caller);
		if (size > old)
			memset((char *)p + old, (flags & KM_ZERO) ? 0 : KMEM_POISON_ALLOC, size - old);
		memset((char *)p + size, KMEM_POISON_REDZONE, objsize - KMEM_TRAILER_SIZE - size);
		__atomic_store_n(&t->size_state, size | (uint64_t)STATE_LIVE << STATE_SHIFT,
				 __ATOMIC_RELAXED);
		return p;
	}
	void *q = debug_alloc(size, 8, flags, caller);
	if (!q)
		return NULL;
	memcpy(q, p, old < size ? old : size);
	debug_free(p, caller);
	return q;
}

/* ---------------------------------------------------------- public API -- */

void *kmalloc_noflags(size_t size)
{
	return debug_alloc(size, 8, 0, __builtin_return_address(0));
}

void *kmalloc_flags(size_t size, unsigned flags)
{
	return debug_alloc(size, 8, flags, __builtin_return_address(0));
}

void *kzalloc(size_t size, unsigned flags)
{
	return debug_alloc(size, 8, flags | KM_ZERO, __builtin_return_address(0));
}

void *kcalloc(size_t n, size_t size, unsigned flags)
{
	size_t bytes;
	if (__builtin_mul_overflow(n, size, &bytes)) {
		mm_alloc_failed();
		return NULL;
	}
	return debug_alloc(bytes, 8, flags | KM_ZERO, __builtin_return_address(0));
}

void *kmalloc_aligned(size_t size, size_t align, unsigned flags)
{
	if (align == 0 || (align & (align - 1)))
		return NULL;
	return debug_alloc(size, align < 8 ? 8 : align, flags, __builtin_return_address(0));
}

void kfree(const void *p)
{
	debug_free(p, __builtin_return_address(0));
}

size_t ksize(const void *p)
{
	if (!p)
		return 0;
	size_t objsize;
	struct trailer *t = live_trailer("ksize", p, &objsize, __builtin_return_address(0));
	return t ? (size_t)(t->size_state & SIZE_MASK) : 0;
}

void *krealloc(void *p, size_t size, unsigned flags)
{
	return debug_realloc(p, size, flags, __builtin_return_address(0));
}

/* -------------------------------------------------------------- queries -- */

void kmem_debug_get_stats(struct kmem_debug_stats *st)
{
	st->use_after_free = __atomic_load_n(&dstats.use_after_free, __ATOMIC_RELAXED);
	st->overflow = __atomic_load_n(&dstats.overflow, __ATOMIC_RELAXED);
	st->double_free = __atomic_load_n(&dstats.double_free, __ATOMIC_RELAXED);
	st->freed_access = __atomic_load_n(&dstats.freed_access, __ATOMIC_RELAXED);
	st->quarantined = __atomic_load_n(&dstats.quarantined, __ATOMIC_RELAXED);
	st->released = __atomic_load_n(&dstats.released, __ATOMIC_RELAXED);
	unsigned long flags = mm_spin_lock_irqsave(&quarantine_lock);
	st->quarantine_objs = q_count;
	st->quarantine_bytes = q_bytes;
	st->quarantine_large_bytes = q_large_bytes;
	mm_spin_unlock_irqrestore(&quarantine_lock, flags);
}

void kmem_debug_quarantined(uint64_t *objs, uint64_t *large_bytes)
{
	unsigned long flags = mm_spin_lock_irqsave(&quarantine_lock);
	*objs = q_count + __atomic_load_n(&q_leaving, __ATOMIC_ACQUIRE);
	*large_bytes = q_large_bytes + __atomic_load_n(&q_leaving_large, __ATOMIC_ACQUIRE);
	mm_spin_unlock_irqrestore(&quarantine_lock, flags);
}

void kmem_debug_last_report(struct kmem_debug_report *r)
{
	unsigned long flags = mm_spin_lock_irqsave(&report_lock);
	*r = last_report;
	mm_spin_unlock_irqrestore(&report_lock, flags);
}

/* ------------------------------------------------- drain and lock_all -- */
/* The heap's own (mm/malloc.c, heap_raw_kmem_*), with the quarantine
 * emptied first, or debug mode's two locks taken first (they are leaves:
 * never held across a heap call, so their place in the order is free). */

void kmem_drain_this_cpu(void)
{
	if (mheap_ready())
		kmem_debug_flush_quarantine();
	heap_raw_kmem_drain_this_cpu();
}

void kmem_drain_all(void)
{
	if (mheap_ready())
		kmem_debug_flush_quarantine();
	heap_raw_kmem_drain_all();
}

void kmem_lock_all(void)
{
	mm_spin_lock(&quarantine_lock);
	mm_spin_lock(&report_lock);
	heap_raw_kmem_lock_all();
}

void kmem_unlock_all(void)
{
	heap_raw_kmem_unlock_all();
	mm_spin_unlock(&report_lock);
	mm_spin_unlock(&quarantine_lock);
}

void kmem_unlock_all_in_child(void)
{
	heap_raw_kmem_unlock_all_in_child();
	mm_spin_lock_init(&report_lock, report_lock.name);
	mm_spin_lock_init(&quarantine_lock, quarantine_lock.name);
}

#endif /* DEBUG_HEAP */
