/*
 * mm/mcentral.c - the spans of one span class (Go's mcentral), and the
 * one protocol by which any CPU frees an object into a span.
 *
 * Each span class has an mcentral: a spinlock, a list of swept spans with
 * free slots (partial) and a list of spans that were full when last swept
 * (full). An mcache takes spans with free slots (mcentral_cache_span:
 * from partial, else a fresh span from the mheap) and owns them until it
 * gives them back (mcentral_uncache_span: swept here, then listed, or
 * handed to the mheap if it is empty): its allocation span and its owned
 * set (mm/mcache.c). Spans an mcache owns are on no mcentral list; their
 * owner_cpu says which mcache owns them.
 *
 * Frees into a span that no mcache owns, and frees from CPUs other than
 * the owner, are remote frees (mcentral_free, below, where the protocol
 * and its races are described; mm/mcentral.pml models it). So that a
 * full span that gets such frees is found again, and an emptied one goes
 * back to the mheap, the freeing CPU puts the span on a stack: its
 * owner's notice stack when an mcache owns it (emptied by that CPU before
 * it asks its mcentral for a span, mm/mcache.c), else the mcentral's `pending` stack
 * (emptied, under the lock, before every refill and whenever the heap
 * would otherwise run out of memory: reclaim_locked).
 */
#include "mm/mcentral.h"
#include "mm/badptr.h"
#include "mm/mbug.h"
#include "mm/mheap.h"
#include "mm/platform.h"

struct mcentral mcentrals[NUM_SPAN_CLASSES];

/* Per CPU: spans it owns that got a remote free (a lock-free stack
 * through pending_next: pushed by any CPU with a CAS, taken whole by an
 * exchange, by its CPU only, or by a drain with every CPU quiescent). */
static struct notice_stack {
	struct mspan *head;
} __attribute__((aligned(64))) notices[MM_MAX_CPUS];

/* Per CPU: the span its remote free is touching, NULL between frees (a
 * hazard pointer: mcentral_free). Written only by its CPU, with interrupts
 * off, each on a line of its own; read by place_swept under an mcentral
 * lock. hazard_cpus is 1 + the highest CPU that ever published one (it
 * only grows), so that place_swept reads no more slots than were used. */
static struct remote_hazard {
	struct mspan *span;
} __attribute__((aligned(64))) hazards[MM_MAX_CPUS];
static unsigned hazard_cpus;

struct mspan **mcentral_hazard_slot(unsigned cpu)
{
	return &hazards[cpu].span;
}

/* Is a remote free touching s (under its mcentral's lock, after a sweep
 * of s: mcentral_free says why that is enough)? */
static bool hazard_on(const struct mspan *s)
{
	unsigned n = __atomic_load_n(&hazard_cpus, __ATOMIC_ACQUIRE);
	for (unsigned cpu = 0; cpu < n; cpu++)
		if (__atomic_load_n(&hazards[cpu].span, __ATOMIC_ACQUIRE) == s)
			return true;
	return false;
}

void mcentral_init(void)
{
	for (unsigned i = 0; i < NUM_SPAN_CLASSES; i++) {
		struct mcentral *c = &mcentrals[i];
		mm_spin_lock_init(&c->lock, "mcentral");
		c->spanclass = i;
	}
}

/* The counters: written under c->lock, read without it (kmem_get_stats). */
static void counter_add(uint64_t *n, int d)
{
	__atomic_store_n(n, *n + (uint64_t)(int64_t)d, __ATOMIC_RELAXED);
}

static struct mspan **list_head(struct mcentral *c, uint8_t id)
{
	return id == MSPAN_ON_PARTIAL ? &c->partial : &c->full;
}

/* Under c->lock. */
static void list_push(struct mcentral *c, struct mspan *s, uint8_t id)
{
	MM_HELD(&c->lock);
	struct mspan **head = list_head(c, id);
	s->prev = NULL;
	s->next = *head;
	if (*head)
		(*head)->prev = s;
	*head = s;
	s->list = id;
}

/* Under c->lock. */
static void list_remove(struct mcentral *c, struct mspan *s)
{
	MM_HELD(&c->lock);
	if (s->list == MSPAN_ON_NONE)
		return;
	struct mspan **head = list_head(c, s->list);
	if (s->prev)
		s->prev->next = s->next;
	else
		*head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	s->list = MSPAN_ON_NONE;
}

/* Under c->lock: list a swept span no mcache holds, or give it back to
 * the mheap when it is empty and no remote free still touches it. */
static void place_swept(struct mcentral *c, struct mspan *s)
{
	MM_HELD(&c->lock);
	MM_BUG_ON(__atomic_load_n(&s->owner_cpu, __ATOMIC_RELAXED) >= 0);
	if (s->alloc_count == 0 &&
	    __atomic_load_n(&s->remote_pending, __ATOMIC_SEQ_CST) == 0 &&
	    !hazard_on(s)) {
		counter_add(&c->nspans, -1);
		counter_add(&c->nrelease, 1);
		mheap_free_span(s);
		return;
	}
	list_push(c, s, s->alloc_count < s->nelems ? MSPAN_ON_PARTIAL : MSPAN_ON_FULL);
}

/* Push s on a pending or notice stack. */
static void stack_push(struct mspan **top, struct mspan *s)
{
	struct mspan *head = __atomic_load_n(top, __ATOMIC_RELAXED);
	do {
		s->pending_next = head;
	} while (!__atomic_compare_exchange_n(top, &head, s, 1,
					      __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

/* s, pending, goes where whoever sweeps it will look: its owner's notice
 * stack, or its mcentral's pending stack if no mcache owns it. The owner
 * may change meanwhile; whoever pops a span it cannot sweep routes it
 * again (mm/mcache.c's take_notices, reclaim_locked). */
void mcentral_route_pending(struct mspan *s)
{
	int32_t owner = __atomic_load_n(&s->owner_cpu, __ATOMIC_SEQ_CST);
	stack_push(owner >= 0 ? &notices[owner].head : &mcentrals[s->spanclass].pending, s);
}

struct mspan *mcentral_take_notices(unsigned cpu)
{
	if (!__atomic_load_n(&notices[cpu].head, __ATOMIC_RELAXED))
		return NULL;
	return __atomic_exchange_n(&notices[cpu].head, NULL, __ATOMIC_ACQUIRE);
}

struct mspan *mcentral_peek_notices(unsigned cpu)
{
	return __atomic_load_n(&notices[cpu].head, __ATOMIC_ACQUIRE);
}

void mcentral_notice_done(struct mspan *s)
{
	__atomic_store_n(&s->remote_pending, 0, __ATOMIC_SEQ_CST);
}

/* Under c->lock: sweep and place every span on the pending stack. */
static void reclaim_locked(struct mcentral *c)
{
	MM_HELD(&c->lock);
	if (!__atomic_load_n(&c->pending, __ATOMIC_RELAXED))
		return;
	struct mspan *s = __atomic_exchange_n(&c->pending, NULL, __ATOMIC_ACQUIRE);
	while (s) {
		struct mspan *next = s->pending_next;   /* before the flag drops */
		int32_t owner = __atomic_load_n(&s->owner_cpu, __ATOMIC_RELAXED);
		if (owner < 0) {
			__atomic_store_n(&s->remote_pending, 0, __ATOMIC_SEQ_CST);
			list_remove(c, s);
			mspan_sweep(s);
			place_swept(c, s);
		} else {
			/* An mcache took it since: to its owner, who sweeps it
			 * (the owner cannot change while we hold the lock). */
			stack_push(&notices[owner].head, s);
		}
		s = next;
	}
}

void mcentral_reclaim_every_class(void)
{
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++)
		mcentral_reclaim(&mcentrals[spc]);
}

void mcentral_reclaim(struct mcentral *c)
{
	/* Nothing pending, no lock (a push after this look is one after
	 * the unlock would have been; its next reclaim finds it). */
	if (!__atomic_load_n(&c->pending, __ATOMIC_RELAXED))
		return;
	unsigned long flags = mm_spin_lock_irqsave(&c->lock);
	reclaim_locked(c);
	mm_spin_unlock_irqrestore(&c->lock, flags);
}

void mcentral_reclaim_all(struct mcentral *c)
{
	unsigned long flags = mm_spin_lock_irqsave(&c->lock);
	reclaim_locked(c);
	struct mspan *lists[2] = { c->partial, c->full };
	c->partial = c->full = NULL;
	for (int i = 0; i < 2; i++) {
		struct mspan *s = lists[i];
		while (s) {
			struct mspan *next = s->next;
			s->next = s->prev = NULL;
			s->list = MSPAN_ON_NONE;
			mspan_sweep(s);
			place_swept(c, s);
			s = next;
		}
	}
	mm_spin_unlock_irqrestore(&c->lock, flags);
}

/* Under c->lock: mcache `cpu` holds s from now on. */
static void take_ownership(struct mcentral *c, struct mspan *s, unsigned cpu)
{
	MM_HELD(&c->lock);
	MM_BUG_ON(s->list != MSPAN_ON_NONE);
	__atomic_store_n(&s->owner_cpu, (int32_t)cpu, __ATOMIC_RELAXED);
	counter_add(&c->nrefill, 1);
}

struct mspan *mcentral_cache_span(struct mcentral *c, unsigned cpu)
{
	unsigned long flags = mm_spin_lock_irqsave(&c->lock);
	struct mspan *s;

	reclaim_locked(c);
	if ((s = c->partial) != NULL) {
		list_remove(c, s);
		mspan_sweep(s);         /* pick up remote frees since it was listed */
		/* It was listed partial, and nobody allocates from a listed
		 * span; a sweep only adds free slots. */
		MM_BUG_ON(s->alloc_count >= s->nelems);
		take_ownership(c, s, cpu);
		mm_spin_unlock_irqrestore(&c->lock, flags);
		return s;
	}
	mm_spin_unlock_irqrestore(&c->lock, flags);

	/* A power-of-two class larger than a page gets a span aligned to its
	 * object size, so that every power-of-two size is naturally aligned
	 * (smaller ones are: 8 KiB-aligned spans, objects at multiples of
	 * their size). Linux promises the same since 5.4. */
	unsigned cls = spanclass_sizeclass(c->spanclass);
	size_t elem = class_to_size[cls];
	size_t align_pages = (elem & (elem - 1)) == 0 && elem > MM_PAGE_SIZE ?
		elem >> MM_PAGE_SHIFT : 1;
	s = mheap_alloc_span_aligned(class_to_npages[cls], c->spanclass, align_pages, true);
	if (!s)
		return NULL;
	flags = mm_spin_lock_irqsave(&c->lock);
	counter_add(&c->nspans, 1);
	counter_add(&c->ngrow, 1);
	take_ownership(c, s, cpu);
	mm_spin_unlock_irqrestore(&c->lock, flags);
	return s;
}

void mcentral_uncache_span(struct mcentral *c, struct mspan *s)
{
	unsigned long flags = mm_spin_lock_irqsave(&c->lock);
	__atomic_store_n(&s->owner_cpu, -1, __ATOMIC_RELAXED);
	mspan_sweep(s);
	place_swept(c, s);
	mm_spin_unlock_irqrestore(&c->lock, flags);
}

/*
 * The span-free protocol. The CPU whose mcache owns the span (allocates
 * from it or keeps it in an owned set) frees by clearing the object's bit
 * in alloc_bits with plain stores (only it writes them while it owns the
 * span; kfree's fast path, mspan_free_owned, and mcache_free are this
 * case). Any other CPU (or any
 * CPU, when no mcache holds the span) must not take a lock per object,
 * must not lose the free, and must not touch a span record that has been
 * given back and reused:
 *
 *   freer:   hazard[me] = s; if !live(i): report;
 *            old = fetch_or(remote_bits[w], bit); if old & bit: report
 *                double free
 *            if pending == 0 && xchg(pending, 1) == 0: route the span
 *                (mcentral_route_pending): push it (CAS) on its owner's notice
 *                stack if owner_cpu >= 0, else on its mcentral's stack
 *            hazard[me] = NULL
 *                     (the hazard stores plain, relaxed then release; the
 *                     rest seq_cst: one locked instruction unless the
 *                     freer routes the span)
 *   mcentral popper (mcentral lock, reclaim_locked): take the whole stack
 *            (xchg head, NULL); for each span: read its link; if no
 *            mcache holds it: pending = 0, sweep (fetch_and each remote
 *            word), place it (place_swept); else push it on its owner's
 *            notice stack (pending stays 1)
 *   owner popper (CPU c, its refill or release, mm/mcache.c): take its
 *            notice stack whole; for each span: read its link; if c owns
 *            it: pending = 0 (its own sweeps pick the frees up; a full
 *            span moves to the partial set); else route it again
 *   a span goes back to the mheap only if: swept empty, no mcache holds
 *            it, pending == 0 and no CPU's hazard is the span (under the
 *            mcentral lock)
 *
 * - A pending span is on one stack, or between the xchg and the push of
 *   the one CPU routing it; owner_cpu read by a freer may be stale, so a
 *   span can land on the stack of a CPU that gave it away: that CPU
 *   routes it on (its owner_cpu is then not the popper, and only a CPU
 *   itself takes spans, so the test is stable).
 * - A bit set after the span's sweep harvested its word is followed by
 *   the freer's look at `pending`, which then reads 0 (or a later push):
 *   the span is pushed again, so no free is stranded.
 * - Every freer that touches the span keeps its CPU's hazard pointing at
 *   it until it is done, so the record is never given back (and recycled)
 *   under a freer. The hazard store needs no fence of its own: a span can
 *   be found empty only once the freer's bit was folded in by a sweep,
 *   whose acquire load of the remote word read the fetch_or (a release)
 *   that follows the store; so whoever then gives the span back reads the
 *   hazard, or the release store that clears it after the freer's last
 *   touch. (A count in the span, up and down, was two locked
 *   instructions on a line all its freers share: shbench sh8 on 2
 *   threads, every free a remote one, 30.8 -> 25.8 ns an operation.)
 * - A span is on a stack at most once (the `pending` flag) and never
 *   given back while on one; a popper reads the link before it clears
 *   the flag or pushes the span elsewhere.
 * - `owner_cpu == me` is stable for the CPU asking (only it caches and
 *   uncaches its own spans, with interrupts off), so the owner/remote
 *   decision is race-free. alloc_bits has one writer at a time (the
 *   owner, or the mcentral under its lock) and loses only bits of freed
 *   objects, so the liveness check of a valid free never fails spuriously.
 * - Double frees: a free is refused if the object's bit is clear in
 *   alloc_bits or set in remote_bits, whoever frees (the owner's fast
 *   path reads the remote word too, relaxed); a second remote free finds
 *   its bit already set by the fetch_or. A free that happened before another is always seen by
 *   it; two frees of one object racing on two CPUs with no order between
 *   them are a use-after-free race the checks may miss (the sweep then
 *   counts the object once).
 */
bool mcentral_free(struct mspan *s, unsigned i, unsigned cpu, const void *p,
		   const void *caller)
{
	unsigned w = i / 64;
	uint64_t bit = 1ULL << (i % 64);

	/* The pair's line, written by its owner as it allocates, comes over
	 * once and writable for the fetch_or, not shared for the liveness
	 * loads and then upgraded: shbench sh8 on 2 threads 15.3 -> 13.9 ns
	 * (medians of 21 paired runs; rptest and xmalloc-test within 1 %). */
	mm_platform_prefetch_write(mspan_remote_word(s, w));
	/* Published (hazard_cpus raised first) by the fetch_or below. */
	unsigned n = __atomic_load_n(&hazard_cpus, __ATOMIC_RELAXED);
	while (n <= cpu &&
	       !__atomic_compare_exchange_n(&hazard_cpus, &n, cpu + 1, 1,
					    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
		;
	__atomic_store_n(&hazards[cpu].span, s, __ATOMIC_RELAXED);
	bool ok = false;
	if (!mspan_obj_live(s, i)) {
		mm_bad_pointer("kfree", "double free (object not allocated)", p, s, caller);
	} else if (__atomic_fetch_or(mspan_remote_word(s, w), bit, __ATOMIC_SEQ_CST) & bit) {
		mm_bad_pointer("kfree", "double free (already freed remotely)", p, s, caller);
	} else {
		ok = true;
		if (__atomic_load_n(&s->remote_pending, __ATOMIC_SEQ_CST) == 0 &&
		    __atomic_exchange_n(&s->remote_pending, 1, __ATOMIC_SEQ_CST) == 0)
			mcentral_route_pending(s);
	}
	__atomic_store_n(&hazards[cpu].span, NULL, __ATOMIC_RELEASE);
	return ok;
}
