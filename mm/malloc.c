/*
 * mm/malloc.c - kmalloc and friends: the public API over the Go-style heap.
 *
 * The top layer of mm/; everything it calls is below it (docs/
 * ARCHITECTURE.md, Layers): the tiny allocator (mm/tiny.c), this CPU's
 * mcache (mm/mcache.c), the mcentrals' span-free protocol
 * (mm/mcentral.c) and the mheap for large objects (mm/mheap.c).
 *
 * A request of at most 32 KiB is rounded to one of Go's size classes by
 * table lookup and served from this CPU's mcache with interrupts off and
 * no lock (kmalloc's fast path below); KM_NOSCAN requests of 1..15 bytes
 * go to the tiny allocator; a larger request gets a span of its own from
 * the mheap. Whatever misses kmalloc's fast paths enters a slow path that
 * first initializes the heap if need be (init_once; nothing below the API
 * initializes anything) and then picks the path by size and alignment.
 *
 * kfree finds the span through the page map. If this CPU allocates from
 * the span or holds it in its partial owned set (local_cache), the object is
 * cleared in the span's alloc_bits: plain loads and stores, no atomic
 * instruction (mspan_free_owned). Otherwise kfree_miss, in the same
 * section with the span found (kfree_slow for a pointer with no span),
 * classifies the pointer (the same classification ksize and krealloc
 * use) and hands a small object to mcache_free (a plain store into a
 * span of this CPU's full set, which moves it to the partial set; the
 * remote-free protocol for another CPU's span), a tiny one to tiny_free,
 * a large one to the mheap. Every free is checked (heap pointer, start of
 * an object, object live); a bad one is reported (mm/badptr.c) and
 * ignored.
 *
 * Every free into a span this CPU owns is local (no lock, no atomic),
 * whichever of its owned sets holds it (mm/mcache.c). Double frees are
 * caught whichever CPUs make the two frees (mm/mcentral.c, mm/tiny.c);
 * two frees racing on two CPUs with no order between them may not be.
 */
#include <stdbool.h>
#include "mm/kmalloc.h"
#include "mm/malloc_internal.h"
#include "mm/badptr.h"
#include "mm/tiny.h"
#include "mm/mcache.h"
#include "mm/mcentral.h"
#include "mm/mheap.h"
#include "mm/mpagecache.h"
#include "mm/mlock.h"
#include "mm/platform.h"

/* Larger than any address space we run in: such requests fail. */
#define KMALLOC_MAX_SIZE (1ULL << 47)

uint64_t kmem_oom;

/* kmem_release_request bumps it; each CPU compares it with its mcache's
 * pressure_seen on its small-allocation slow paths (not on large
 * allocations: a page-cache hit is a fast path of its own) and idle
 * passes and, when it moved, gives back its spans (the allocation spans
 * too), notices and page cache (answer_release_request). Relaxed: a late
 * look only delays the answer; an allocation that failed waits for the
 * answers, a bounded while (release_everywhere). */
static uint32_t pressure_epoch;

/* init_lock (irqsave) serialises the one-time set-up of the mheap and
 * the mcentrals; afterwards mheap.ready (release/acquire) is the gate. */
static mm_spinlock_t init_lock = MM_SPINLOCK_INIT("kmalloc_init");

#ifndef MM_HAVE_CPU_LOCAL
/* mm/platform.h's default, every CPU's entry MM_CPU_LOCAL_NONE until
 * kmalloc_init sets it. */
void *mm_cpu_local_table[MM_MAX_CPUS] = { [0 ... MM_MAX_CPUS - 1] = MM_CPU_LOCAL_NONE };
#endif

void kmalloc_init(void)
{
	if (mheap_ready())
		return;
	bool first = false;
	unsigned long flags = mm_spin_lock_irqsave(&init_lock);
	if (!mheap_ready()) {
		mheap_init();
		mheap_pcache_init();
		mcentral_init();
		for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++)
			tiny_init(&mcaches[cpu]);
		__atomic_store_n(&mheap.ready, 1, __ATOMIC_RELEASE);
		first = true;
	}
	mm_spin_unlock_irqrestore(&init_lock, flags);
	/* The fast paths' way to their mcache, from now on (outside any
	 * section: the hosted platform takes its slot lock). */
	if (first)
		for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++)
			mm_cpu_local_set(cpu, &mcaches[cpu]);
}

/* A request no heap could meet (a size above KMALLOC_MAX_SIZE, an
 * overflowing kcalloc): NULL, and the platform told (mm/platform.h). */
static void *impossible(void)
{
	mm_alloc_failed();
	return NULL;
}

/* Out of memory: counted, every CPU asked to give back what it caches. */
static void *oom(void)
{
	__atomic_fetch_add(&kmem_oom, 1, __ATOMIC_RELAXED);
	kmem_release_request();   /* other CPUs' caches may hold what we lack */
	return impossible();
}

void kmem_release_request(void)
{
	__atomic_add_fetch(&pressure_epoch, 1, __ATOMIC_RELAXED);
}

/* Has a kmem_release_request come that mc's CPU has not answered yet? */
static inline bool release_request_waits(const struct mcache *mc)
{
	return __atomic_load_n(&pressure_epoch, __ATOMIC_RELAXED) != mc->pressure_seen;
}

/* This CPU's answer to a kmem_release_request it has not seen yet
 * (interrupts off): its tiny block, its spans (allocation spans and owned
 * sets) and its notices back to the mcentrals, where other CPUs may
 * allocate from them, its page cache to the mheap, and every mcentral's
 * pending spans swept, so that empty spans reach the mheap. */
static void answer_release_request(struct mcache *mc, unsigned cpu)
{
	if (__builtin_expect(!release_request_waits(mc), 1))
		return;
	/* The epoch answered: read before the work, so that a request made
	 * meanwhile is answered by it or by the next slow path. */
	uint32_t e = __atomic_load_n(&pressure_epoch, __ATOMIC_RELAXED);
	tiny_retire(mc, cpu);   /* its block lives in the tiny allocation span */
	mcache_release_all(mc, cpu);
	mheap_pcache_drain(cpu);
	mcentral_reclaim_every_class();
	__atomic_store_n(&mc->pressure_seen, e, __ATOMIC_RELEASE);   /* answered */
}

/* How many times a CPU whose allocation failed looks at the others'
 * answers before it retries anyway: a CPU that neither allocates nor
 * idles does not answer. */
#define RELEASE_WAIT_LOOKS 65536u

/* An allocation failed on this CPU: ask every CPU to give back what it
 * holds for itself, answer here at once, and wait, a bounded while, until
 * every other CPU that holds spans has answered too; then the caller
 * tries once more. Interrupts on (a CPU may answer from its idle pass,
 * woken by an interrupt). */
static void release_everywhere(void)
{
	kmem_release_request();
	uint32_t e = __atomic_load_n(&pressure_epoch, __ATOMIC_RELAXED);
	unsigned long irq = mm_irq_save();
	unsigned me = mm_cpu_id();
	answer_release_request(&mcaches[me], me);
	mm_irq_restore(irq);
	for (unsigned look = 0; look < RELEASE_WAIT_LOOKS; look++) {
		unsigned cpu = 0;
		for (; cpu < MM_MAX_CPUS; cpu++) {
			const struct mcache *mc = &mcaches[cpu];
			if (cpu != me && __atomic_load_n(&mc->holds_spans, __ATOMIC_RELAXED) &&
			    (int32_t)(__atomic_load_n(&mc->pressure_seen, __ATOMIC_ACQUIRE) - e) < 0)
				break;
		}
		if (cpu == MM_MAX_CPUS)
			return;
		mm_cpu_relax();
	}
}

/* ------------------------------------------------------------ kmalloc -- */

static inline unsigned small_spanclass(unsigned cls, unsigned flags)
{
	unsigned spc = spanclass_make(cls, flags & KM_NOSCAN);
	return spc == TINY_SPAN_CLASS ? spc - 1 : spc;
}

static inline void *kmalloc_spc(unsigned spc, unsigned flags)
{
	void *p;
	for (bool retried = false;; retried = true) {
		unsigned long irq = mm_irq_save();
		unsigned cpu = mm_cpu_id();
		struct mcache *mc = &mcaches[cpu];
		answer_release_request(mc, cpu);
		p = mcache_alloc(mc, spc, cpu);   /* counted as its word was loaded */
		mm_irq_restore(irq);
		if (__builtin_expect(p != NULL, 1))
			break;
		if (retried)
			return oom();
		release_everywhere();
	}
	if (flags & KM_ZERO)
		memset(p, 0, class_to_size[spanclass_sizeclass(spc)]);
	return p;
}

/* The span of a large object, counted on this CPU in the same section (no
 * moment where the heap holds an object its counters do not: a fork in
 * the hosted build waits for the section to end). */
static struct mspan *large_span(size_t npages, size_t align_pages)
{
	unsigned long irq;
	struct mspan *s;
	struct mcache *mc = mm_irq_save_local(&irq);   /* the fast paths' section, if it may */
	if (__builtin_expect(mc != MM_CPU_LOCAL_NONE, 1)) {
		if ((s = mheap_alloc_large(npages, align_pages, mm_cpu_id())) != NULL)
			stat_inc(&mc->large_alloc);
		mm_irq_restore_local(irq);
		return s;
	}
	mm_irq_restore_local(irq);
	irq = mm_irq_save();
	unsigned cpu = mm_cpu_id();
	if ((s = mheap_alloc_large(npages, align_pages, cpu)) != NULL)
		stat_inc(&mcaches[cpu].large_alloc);
	mm_irq_restore(irq);
	return s;
}

/* Pages of a large object of size bytes (at most KMALLOC_MAX_SIZE):
 * whole pages, rounded up to the platform's grain (MM_LARGE_GRAIN_PAGES,
 * mm/platform.h), so that objects start on fewer distinct pages. */
static inline size_t large_npages(size_t size)
{
	size_t n = size ? (size + MM_PAGE_SIZE - 1) >> MM_PAGE_SHIFT : 1;
	return (n + MM_LARGE_GRAIN_PAGES - 1) / MM_LARGE_GRAIN_PAGES * MM_LARGE_GRAIN_PAGES;
}

/* A large object: a span of its own, its start aligned to align (a power
 * of two; spans are always page-aligned). */
__attribute__((noinline)) static void *kmalloc_large_aligned(size_t size, size_t align,
							     unsigned flags)
{
	if (size > KMALLOC_MAX_SIZE || align > KMALLOC_MAX_SIZE)
		return impossible();   /* not out of memory: not counted */
	size_t npages = large_npages(size);
	size_t align_pages = align > MM_PAGE_SIZE ? align >> MM_PAGE_SHIFT : 1;
	struct mspan *s = large_span(npages, align_pages);
	if (!s) {
		/* Memory pressure: this CPU's cached spans may hold whole
		 * chunks (and in the kernel, whole buddy blocks) hostage. */
		HEAP_API(kmem_drain_this_cpu)();
		s = large_span(npages, align_pages);
		if (!s) {
			release_everywhere();
			s = large_span(npages, align_pages);
		}
		if (!s)
			return oom();
	}
	void *p = (void *)s->startaddr;
	/* Pages fresh from a platform whose memory comes zeroed are not
	 * cleared again (nor touched: calloc of a big array costs no
	 * memory until it is written, as with glibc). */
	if ((flags & KM_ZERO) && s->needzero)
		memset(p, 0, npages << MM_PAGE_SHIFT);
	return p;
}

static void *kmalloc_large(size_t size, unsigned flags)
{
	return kmalloc_large_aligned(size, MM_PAGE_SIZE, flags);
}

static void *kmalloc_tiny(size_t size, unsigned flags)
{
	void *p = tiny_alloc(size);
	if (__builtin_expect(p == NULL, 0)) {
		release_everywhere();
		if (!(p = tiny_alloc(size)))
			return oom();
	}
	if (flags & KM_ZERO)
		memset(p, 0, size);
	return p;
}

/* A small object (size <= MAX_SMALL_SIZE) aligned to align (a power of
 * two up to 32 KiB): from the smallest class whose size is a multiple of
 * align, since objects sit at multiples of their size from a span start
 * aligned to 8 KiB and, for the power-of-two classes above 8 KiB, to their
 * size (mcentral_cache_span); powers of two up to 32 KiB are all classes,
 * so one exists. */
static void *kmalloc_align_class(size_t size, size_t align, unsigned flags)
{
	unsigned cls = size ? size_to_class(size) : 1;
	while (cls < NUM_SIZE_CLASSES && class_to_size[cls] % align)
		cls++;
	if (cls == NUM_SIZE_CLASSES)
		return kmalloc_large(size, flags);
	return kmalloc_spc(small_spanclass(cls, flags), flags);
}

/* The first thing of every slow path of an allocation (alloc_slow and
 * the tiny allocator's slow path): the heap is initialized on first use
 * here, and nowhere below the API. */
static inline void init_once(void)
{
	if (__builtin_expect(!mheap_ready(), 0))
		kmalloc_init();
}

/* Every allocation that misses kmalloc's fast paths (but for a tiny
 * block used up): the path by size and alignment (align: a power of two,
 * or 0 for kmalloc's own, which lets KM_NOSCAN requests of 1..15 bytes
 * take the tiny path). */
static void *alloc_slow(size_t size, size_t align, unsigned flags)
{
	init_once();
	if (align > MAX_SMALL_SIZE || (align > MM_PAGE_SIZE && size > MAX_SMALL_SIZE))
		return kmalloc_large_aligned(size, align, flags);
	if (size > MAX_SMALL_SIZE)
		return kmalloc_large(size, flags);   /* spans are 8 KiB-aligned */
	if (align == 0 && (flags & KM_NOSCAN) && size - 1 < TINY_SIZE - 1)
		return kmalloc_tiny(size, flags);
	if (align <= 8)
		return kmalloc_spc(small_spanclass(size ? size_to_class(size) : 1, flags), flags);
	return kmalloc_align_class(size, align, flags);
}

/* -------------------------------------------------------------- kfree -- */

/* What a pointer handed to kfree/ksize/krealloc is, as far as the
 * always-on checks can tell from its span. */
enum ptr_kind { PTR_BAD, PTR_LARGE, PTR_SMALL, PTR_TINY };
struct ptr_class {
	enum ptr_kind kind;
	unsigned index;        /* PTR_SMALL: the object's index in its span */
	const char *why;       /* PTR_BAD: the reason */
};

static inline __attribute__((always_inline)) struct ptr_class
classify_span(const void *p, const struct mspan *s)
{
	if (!s)
		return (struct ptr_class){ PTR_BAD, 0, "not a heap pointer" };
	switch (mspan_state_of(s)) {
	case MSPAN_FREE:
		return (struct ptr_class){ PTR_BAD, 0, "pointer into a free page run" };
	case MSPAN_LARGE:
		if ((uintptr_t)p != s->startaddr)
			return (struct ptr_class){ PTR_BAD, 0, "interior pointer into a large object" };
		return (struct ptr_class){ PTR_LARGE, 0, NULL };
	case MSPAN_CACHED:
		return (struct ptr_class){ PTR_BAD, 0, "pointer into a free page run (page cache)" };
	case MSPAN_INUSE:
		break;
	default:
		return (struct ptr_class){ PTR_BAD, 0, "span being torn down" };
	}
	if (s->spanclass == TINY_SPAN_CLASS)
		return (struct ptr_class){ PTR_TINY, 0, NULL };
	int i = mspan_obj_index(s, (uintptr_t)p);
	if (i < 0)
		return (struct ptr_class){ PTR_BAD, 0, "not the start of an object" };
	return (struct ptr_class){ PTR_SMALL, (unsigned)i, NULL };
}

/* p's page maps to no span: p is outside the heap, or between the first
 * and last pages of a large object or free run, which the page map leaves
 * unmapped (mm/pagemap.h). Find the span for the report; a span found
 * that would take p as a live object (a racing allocation mapped p's page
 * since) is not used: p was not the heap's when it was looked up. */
static __attribute__((noinline)) struct ptr_class classify_unmapped(const void *p, struct mspan **sp)
{
	struct mspan *s = mheap_span_containing(p);
	struct ptr_class pc = classify_span(p, s);
	if (pc.kind != PTR_BAD) {
		s = NULL;
		pc = classify_span(p, NULL);
	}
	*sp = s;
	return pc;
}

/* What p is, given *sp, the span its page maps to; *sp becomes the span
 * to name in a report. */
static inline __attribute__((always_inline)) struct ptr_class
classify(const void *p, struct mspan **sp)
{
	if (__builtin_expect(*sp != NULL, 1))
		return classify_span(p, *sp);
	return classify_unmapped(p, sp);
}

/* Every check of a free, and the free itself (interrupts off). */
__attribute__((noinline)) static void kfree_checked(const void *p, struct mspan *s, unsigned cpu,
						    const void *caller)
{
	struct ptr_class pc = classify(p, &s);
	switch (pc.kind) {
	case PTR_BAD:
		mm_bad_pointer("kfree", pc.why, p, s, caller);
		return;
	case PTR_LARGE:
		if (!mheap_free_large((uintptr_t)p, s, cpu)) {
			mm_bad_pointer("kfree", "double free of a large object", p, s, caller);
			return;
		}
		stat_inc(&mcaches[cpu].large_free);
		return;
	case PTR_TINY:
		tiny_free(s, p, cpu, caller);
		return;
	case PTR_SMALL:
		mcache_free(s, pc.index, cpu, p, caller);
		return;
	}
}

/* kfree's slow path inside its section, on CPU cpu (mc its mcache), for
 * p in span s (NULL: no span at p's page) and not in this CPU's current
 * tiny block. The common cases go first and stay lean, classified as
 * kfree_checked would: an object of a small span another CPU owns, or
 * none (a remote free), and a large object; everything else (reports,
 * tiny and full-set frees) is kfree_checked's, out of line. */
static inline __attribute__((always_inline)) void kfree_span_in(const void *p, struct mspan *s,
								struct mcache *mc, unsigned cpu,
								const void *caller)
{
	if (__builtin_expect(s == NULL, 0)) {
		kfree_checked(p, s, cpu, caller);
		return;
	}
	uint8_t state = mspan_state_of(s);
	int i;
	if (state == MSPAN_INUSE && s->spanclass != TINY_SPAN_CLASS &&
	    __atomic_load_n(&s->owner_cpu, __ATOMIC_RELAXED) != (int32_t)cpu &&
	    (i = mspan_obj_index(s, (uintptr_t)p)) >= 0) {
		mcentral_free(s, (unsigned)i, cpu, p, caller);
	} else if (state == MSPAN_LARGE && (uintptr_t)p == s->startaddr) {
		/* A large object: what kfree_checked's classification would
		 * find, without the call. */
		if (mheap_free_large((uintptr_t)p, s, cpu))
			stat_inc(&mc->large_free);
		else
			mm_bad_pointer("kfree", "double free of a large object", p, s, caller);
	} else {
		kfree_checked(p, s, cpu, caller);
	}
}

/* The same from p alone: first this CPU's current tiny block (whose
 * objects' span is no CPU's), then p's span. */
static inline __attribute__((always_inline)) void kfree_slow_in(const void *p, struct mcache *mc,
								unsigned cpu, const void *caller)
{
	if (tiny_in_current(mc, p)) {
		tiny_free_current(mc, p, caller);
		return;
	}
	kfree_span_in(p, mheap_span_of(p), mc, cpu, caller);
}

/* kfree's slow path: every check and every kind of free, in a section of
 * its own (the fast paths' own where the platform allows, its mcache
 * pointer with it; else mm_irq_save's). A tail call from the fast path. */
__attribute__((noinline)) static void kfree_slow(const void *p, const void *caller)
{
	if (!p)
		return;
	unsigned long irq;
	struct mcache *mc = mm_irq_save_local(&irq);
	if (__builtin_expect(mc != MM_CPU_LOCAL_NONE, 1)) {
		kfree_slow_in(p, mc, mm_cpu_id(), caller);
		mm_irq_restore_local(irq);
		return;
	}
	mm_irq_restore_local(irq);
	irq = mm_irq_save();
	unsigned cpu = mm_cpu_id();
	kfree_slow_in(p, &mcaches[cpu], cpu, caller);
	mm_irq_restore(irq);
}

/* kfree's fast path missed on a pointer into this CPU's current tiny
 * block, inside its section: the tiny free (inline, mm/tiny.h), then the
 * section ends. Apart from kfree_miss, so that neither saves registers
 * for the other's work (2 x tiny 8 B + 2 frees 257 -> 220 instructions
 * against the two in one function, and a remote or large free no
 * dearer). */
__attribute__((noinline)) static void kfree_tiny_current(struct mcache *mc, const void *p,
							 unsigned long irq, const void *caller)
{
	tiny_free_current(mc, p, caller);
	mm_irq_restore_local(irq);
}

/* kfree's fast path missed, inside its section (mc: mm_irq_save_local's
 * pointer, irq the section's flags): p's span s is not this CPU's, or p
 * is no live object of it, and p is not in this CPU's current tiny block
 * (kfree_tiny_current's). The free, or its report, in the same section
 * and without looking p up again (a remote free of sh8, a large free):
 * then the section ends. Where the fast path may not run
 * (MM_CPU_LOCAL_NONE), and for a pointer with no span (s is mspan_none:
 * NULL, a page of no span, an address outside the page map's window),
 * kfree_slow after the section. */
__attribute__((noinline)) static void kfree_miss(const void *p, struct mspan *s, struct mcache *mc,
						 unsigned long irq, const void *caller)
{
#ifdef MM_HAVE_PAGEMAP_FLAT
	/* A page above the page map's flat part (a machine with more RAM
	 * than one block of leaves covers: mm/pagemap.h): its span through
	 * the root, in this same section. */
	if (s == &mspan_none && pagemap_in_window((uintptr_t)p))
		s = pagemap_lookup_or_none((uintptr_t)p);
#endif
	if (__builtin_expect(s == &mspan_none || mc == MM_CPU_LOCAL_NONE, 0)) {
		mm_irq_restore_local(irq);
		kfree_slow(p, caller);
		return;
	}
	kfree_span_in(p, s, mc, mm_cpu_id(), caller);
	mm_irq_restore_local(irq);
}

/* kfree: the fast path, else kfree_miss in the same section (with
 * MM_HAVE_FAST_TEXT, in a section opened as the fast one ends). caller is
 * for reports; NULL: the return address, read on the way out only (a
 * frame-pointer build would set up its frame on the fast path to read it
 * before). */
static inline __attribute__((always_inline)) void kfree_core(const void *p, const void *caller)
{
	unsigned long irq;
	struct mcache *mc = mm_fast_enter(&irq);
	struct mspan *s = &mspan_none;

	/* This CPU allocates from the span or holds it in its partial set
	 * (so it is a live small span, never a tiny one: mm/mcache.c), the
	 * pointer is an object start, the object is live. MM_CPU_LOCAL_NONE
	 * (the fast path may not run) is no span's local_cache, nor is NULL,
	 * mspan_none's (no span at p). */
	if (__builtin_expect(pagemap_fast_covers((uintptr_t)p), 1) &&
	    (s = mheap_span_of_or_none(p),
	     mm_platform_ptr_eq_relaxed(&s->local_cache, mc)) &&
	    __builtin_expect(mspan_free_owned(s, p), 1)) {
		mm_fast_exit(irq);
		return;
	}
#ifdef MM_HAVE_FAST_TEXT
	/* kfree_miss may not continue a fast-text section (mm/platform.h):
	 * a section of its own is opened before the code leaves the text,
	 * so that s is still p's span there. */
	mm_fast_exit(irq);
	mc = mm_irq_save_local(&irq);
#endif
	if (!caller)
		caller = __builtin_return_address(0);
	if (tiny_in_current(mc, p))   /* MM_CPU_LOCAL_NONE has no block */
		kfree_tiny_current(mc, p, irq, caller);
	else
		kfree_miss(p, s, mc, irq, caller);
}

/* kfree_core out of line, in the fast text, for the heap's own callers
 * (krealloc, debug mode): the fast section may only be inlined into
 * MM_FAST_TEXT functions. */
MM_FAST_TEXT __attribute__((noinline)) static void kfree_from(const void *p, const void *caller)
{
	kfree_core(p, caller);
}

/* ------------------------------------------------------ ksize/krealloc -- */

/* Usable size of a live object, or 0 (reported as `op`, unless op is
 * NULL) for a bad pointer. */
static size_t object_size(const char *op, const void *p, const void *caller)
{
	struct mspan *s = mheap_span_of(p);
	struct ptr_class pc = classify(p, &s);
	size_t size = 0;
	const char *why = pc.why;

	switch (pc.kind) {
	case PTR_BAD:
		break;
	case PTR_LARGE:
		return (size_t)s->npages << MM_PAGE_SHIFT;
	case PTR_TINY:
		if (!(size = tiny_size(s, p)))
			why = "not a live tiny object";
		break;
	case PTR_SMALL:
		if (mspan_obj_live(s, pc.index))
			size = s->elemsize;
		else
			why = "object not allocated (freed?)";
		break;
	}
	if (!size)
		mm_bad_pointer(op, why, p, s, caller);
	return size;
}

#if !DEBUG_HEAP
/* ---------------------------------------------------------- public API -- */

/* Everything kmalloc's fast path does not handle: large, size 0, a cache
 * word or tiny block used up, no span cached yet. Out of line, so that the
 * fast path is a leaf that saves no register and tail-calls this. */
__attribute__((noinline)) static void *kmalloc_slow(size_t size, unsigned flags)
{
	if (size > MAX_SMALL_SIZE) {   /* alloc_slow's choice, made at once */
		init_once();
		return kmalloc_large(size, flags);
	}
	return alloc_slow(size, 0, flags);
}

/* kmalloc's fast path found the cache word of the small class of size
 * and flags used up (or none) and did not load it again itself (too few
 * slots free, a release request waiting, kmalloc with flags): the refill
 * (the same or the next word, the owned sets, the mcentral), in a
 * section of its own, without alloc_slow's choice of path and class
 * again; else, with the heap not yet set up, a release request waiting
 * for this CPU's answer or no memory, the whole slow path. The word is
 * tried again first: the fast path's section ended before this one
 * began, and an interrupt handler that ran between them (in the kernel,
 * one held back in the fast text runs as the CPU jumps here) may have
 * allocated from the class and refilled the word itself. */
__attribute__((noinline)) static void *kmalloc_miss(size_t size, unsigned flags)
{
	/* The class again, here rather than passed: the fast path then
	 * keeps only its offset (two instructions fewer there). */
	unsigned spc = small_spanclass(size_to_class(size), flags);
	unsigned long irq;
	void *p = NULL;
	struct mcache *mc = mm_irq_save_local(&irq);
	if (__builtin_expect(mc != MM_CPU_LOCAL_NONE, 1) && __builtin_expect(mheap_ready(), 1) &&
	    !release_request_waits(mc))
		p = mcache_alloc(mc, spc, mm_cpu_id());
	mm_irq_restore_local(irq);
	if (!p)
		return kmalloc_slow(size, flags);
	if (flags & KM_ZERO)
		memset(p, 0, class_to_size[spanclass_sizeclass(spc)]);
	return p;
}

/* This CPU's tiny block is used up (or there is none yet). */
__attribute__((noinline)) static void *kmalloc_tiny_slow(size_t size, unsigned flags)
{
	init_once();
	return kmalloc_tiny(size, flags);
}

/* The tiny fast path, out of line: kmalloc tail-calls it. */
MM_FAST_TEXT __attribute__((noinline)) static void *kmalloc_tiny_call(size_t size, unsigned flags)
{
	void *p = tiny_alloc_fast(size);
	if (__builtin_expect(p != NULL, 1)) {
		if (__builtin_expect(flags & KM_ZERO, 0))
			return memset(p, 0, size);
		return p;
	}
	return kmalloc_tiny_slow(size, flags);
}

/* The same-CPU fast path of a small allocation of span class spc (given
 * as spc * 4): an object of this CPU's cache word, or, with `reload`, of
 * the same word loaded again when it is used up and enough of its slots
 * came free (unless a release request waits for this CPU's answer, which
 * its slow path gives), or NULL (the caller's slow path then).
 * kmalloc_flags does without the reload: its other paths (zeroing, the
 * tiny path) made the compiler save two registers and a frame before its
 * hit path to have them for it. */
static inline __attribute__((always_inline)) void *kmalloc_fast(uintptr_t spc_x4, bool reload)
{
	unsigned long irq;
	struct mcache *mc = mm_fast_enter(&irq);
	void *p = mcache_alloc_fast_x4(mc, spc_x4);   /* MM_CPU_LOCAL_NONE: NULL */
	/* The section ends on each branch, so that the caller's test of p
	 * is this one (a platform whose section end is one asm statement
	 * would otherwise have the two paths meet there, and test again). */
	if (__builtin_expect(p != NULL, 1)) {
		mm_fast_exit(irq);
		return p;
	}
	if (reload && mcache_alloc_word_x4(mc, spc_x4)->slots && !release_request_waits(mc) &&
	    (p = mcache_reload_fast_x4(mc, spc_x4)) != NULL) {
		mm_fast_exit(irq);
		return p;
	}
	mm_fast_exit(irq);
	return NULL;
}

/* kmalloc with flags (and any size): the tiny path, or the fast path and
 * zeroing, else the slow path. Flags 0 are kmalloc_noflags'. */
MM_FAST_TEXT void *kmalloc_flags(size_t size, unsigned flags)
{
	if (__builtin_expect(flags == 0, 0))
		return kmalloc_noflags(size);
	if (__builtin_expect(size - 1 < MAX_SMALL_SIZE, 1)) {
		if ((flags & KM_NOSCAN) && size < TINY_SIZE)
			return kmalloc_tiny_call(size, flags);
		unsigned spc = small_spanclass(size_to_class(size), flags);
		void *p = kmalloc_fast((uintptr_t)spc * 4, false);
		if (__builtin_expect(p != NULL, 1)) {
			if (flags & KM_ZERO)
				return memset(p, 0, class_to_size[spanclass_sizeclass(spc)]);
			return p;
		}
		return kmalloc_miss(size, flags);
	}
	return kmalloc_slow(size, flags);
}

/*
 * kmalloc(size, 0): the same-CPU fast path of a small allocation (1..32
 * KiB; with flags, kmalloc_flags): one table lookup for the size class,
 * interrupts off, ctz of this CPU's 64-slot cache word of the class, the
 * slot's bit set in its span's alloc_bits, interrupts on. No lock, no
 * atomic instruction, no counter (counted in bulk: mm/mcache.h).
 */
MM_FAST_TEXT void *kmalloc_noflags(size_t size)
{
	if (__builtin_expect(size - 1 < MAX_SMALL_SIZE, 1)) {
		/* spanclass_make(class, 0) * 4 = class * 8, straight from
		 * the table: the fast path's offset into the mcache is then
		 * a scaled index. */
		void *p = kmalloc_fast(size_to_class_times8(size), true);
		if (__builtin_expect(p != NULL, 1))
			return p;
		return kmalloc_miss(size, 0);
	}
	return kmalloc_slow(size, 0);
}

void *kzalloc(size_t size, unsigned flags)
{
	return kmalloc(size, flags | KM_ZERO);
}

void *kcalloc(size_t n, size_t size, unsigned flags)
{
	size_t bytes;
	if (__builtin_mul_overflow(n, size, &bytes))
		return impossible();
	return kmalloc(bytes, flags | KM_ZERO);
}

void *kmalloc_aligned(size_t size, size_t align, unsigned flags)
{
	if (align == 0 || (align & (align - 1)))
		return NULL;
	return alloc_slow(size, align, flags);
}

MM_FAST_TEXT void kfree(const void *p)
{
	kfree_core(p, NULL);
}

size_t ksize(const void *p)
{
	if (!p)
		return 0;
	return object_size("ksize", p, __builtin_return_address(0));
}

void *krealloc(void *p, size_t size, unsigned flags)
{
	if (!p)
		return alloc_slow(size, 0, flags);
	if (size == 0) {
		/* The kmalloc(0) object first: with none to be had, NULL and
		 * p untouched, as promised (freeing p first lost it: the
		 * caller kept using an object whose pages the heap handed
		 * out again; found by the fuzzer). */
		void *q = alloc_slow(0, 0, flags);
		if (q)
			kfree_from(p, __builtin_return_address(0));
		return q;
	}
	size_t usable = object_size("krealloc", p, __builtin_return_address(0));
	if (!usable)
		return NULL;
	if (size <= usable)
		return p;
	if (usable > MAX_SMALL_SIZE && size <= KMALLOC_MAX_SIZE &&
	    mheap_grow_large((uintptr_t)p, large_npages(size))) {
		/* Grown in place into the free pages right after it. */
		if (flags & KM_ZERO)
			memset((char *)p + usable, 0, (large_npages(size) << MM_PAGE_SHIFT) - usable);
		return p;
	}
	void *q = alloc_slow(size, 0, flags);
	if (!q)
		return NULL;
	memcpy(q, p, usable);
	kfree_from(p, __builtin_return_address(0));
	return q;
}
#else
/* ---------------------------------------------- raw API for debug mode -- */
/* mm/mdebug.c provides the public API and wraps every object in a red
 * zone and a tracking trailer; these are the heap underneath it. */

void *heap_raw_alloc(size_t size, size_t align, unsigned flags)
{
	/* Never the tiny path: align is at least 8. */
	return alloc_slow(size, align, flags);
}

void heap_raw_free(const void *p, const void *caller)
{
	kfree_from(p, caller);
}

size_t heap_raw_size(const char *op, const void *p, const void *caller)
{
	return object_size(op, p, caller);
}
#endif

/* ------------------------------------------------------------- drain -- */
/* In debug mode these are heap_raw_kmem_* (HEAP_API, mm/malloc_internal.h),
 * and mm/mdebug.c's kmem_* empty its quarantine first / take its locks. */

/* This CPU's caches (tiny block, cached and owned spans, page cache)
 * back to the mcentrals and the mheap. */
static void release_this_cpu(void)
{
	unsigned long irq = mm_irq_save();
	unsigned cpu = mm_cpu_id();
	tiny_retire(&mcaches[cpu], cpu);
	mcache_release_all(&mcaches[cpu], cpu);
	mheap_pcache_drain(cpu);
	mm_irq_restore(irq);
	mcentral_reclaim_every_class();
}

void HEAP_API(kmem_drain_this_cpu)(void)
{
	if (!mheap_ready())
		return;
	release_this_cpu();
	mheap_scavenge(0);   /* a drain keeps nothing: every free chunk back */
}

void kmem_release_this_cpu(void)
{
	if (!mheap_ready())
		return;
	release_this_cpu();
	kmem_scavenge_idle();   /* the retention policy decides the rest */
}

void HEAP_API(kmem_drain_all)(void)
{
	if (!mheap_ready())
		return;
	unsigned long irq = mm_irq_save();
	mm_spin_lock(&kmem_idle_lock);
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++) {
		tiny_retire(&mcaches[cpu], cpu);
		mcache_release_all(&mcaches[cpu], cpu);
	}
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++)
		mcentral_reclaim_all(&mcentrals[spc]);
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++)
		mheap_pcache_drain(cpu);
	mheap_scavenge(0);   /* every retained chunk back: nothing is kept */
	mm_spin_unlock(&kmem_idle_lock);
	mm_irq_restore(irq);
}

/* ---------------------------------------------------------- scavenge -- */

uint64_t kmem_scavenge(void)
{
	return mheap_ready() ? mheap_scavenge(0) : 0;
}

/* kmem_idle_lock (taken inside an mm_irq_save section: interrupts off)
 * keeps a CPU that its caller made quiescent from entering the heap on
 * its own: kmem_scavenge_idle (the kernel's idle loop) holds it while it
 * works, mheap_verify and kmem_drain_all while they read and change every
 * CPU's mcache (they require every other CPU out of the heap, and an idle
 * CPU answering a release request is in it). The outermost heap lock. */
mm_spinlock_t kmem_idle_lock = MM_SPINLOCK_INIT("kmem_idle");

void kmem_scavenge_idle(void)
{
	if (!mheap_ready())
		return;
	unsigned long irq = mm_irq_save();
	unsigned cpu = mm_cpu_id();
	/* Nothing to do (no release request unanswered, no more retained
	 * than the floor, below which the target never is): the request's
	 * words and each arena's retained pages, loads only, no lock. */
	bool asked = release_request_waits(&mcaches[cpu]);
	bool over = (mheap_retained_pages() << MM_PAGE_SHIFT) > MM_RETAIN_MIN_BYTES;
	if (asked || over) {
		mm_spin_lock(&kmem_idle_lock);
		answer_release_request(&mcaches[cpu], cpu);
		if (over)
			mheap_scavenge_to_target();
		mm_spin_unlock(&kmem_idle_lock);
	}
	mm_irq_restore(irq);
}

/* Lock order: kmem_idle_lock, init_lock, the mcentrals in span class
 * order, the mheap's arenas in order (docs/ARCHITECTURE.md). Plain locks,
 * no mm_irq_save: a host that stops the heap from outside (the hosted
 * fork) must not enter it. */
void HEAP_API(kmem_lock_all)(void)
{
	mm_spin_lock(&kmem_idle_lock);
	mm_spin_lock(&init_lock);
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++)
		mm_spin_lock(&mcentrals[spc].lock);
	mheap_lock_arenas();
}

void HEAP_API(kmem_unlock_all)(void)
{
	mheap_unlock_arenas();
	for (unsigned spc = NUM_SPAN_CLASSES; spc-- > 0;)
		mm_spin_unlock(&mcentrals[spc].lock);
	mm_spin_unlock(&init_lock);
	mm_spin_unlock(&kmem_idle_lock);
}

/* In the child of a fork made under kmem_lock_all: the other threads'
 * tickets (they may have queued on a lock) died with them, so each lock is
 * set free afresh rather than handed to the next ticket. */
void HEAP_API(kmem_unlock_all_in_child)(void)
{
	mm_spin_lock_init(&kmem_idle_lock, kmem_idle_lock.name);
	mm_spin_lock_init(&init_lock, init_lock.name);
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++)
		mm_spin_lock_init(&mcentrals[spc].lock, mcentrals[spc].lock.name);
	for (unsigned i = 0; i < MHEAP_NARENAS; i++)
		mm_spin_lock_init(&mheap_arena(i)->lock, mheap_arena(i)->lock.name);
}
