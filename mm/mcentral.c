/*
 * mm/mcentral.c - the spans of one span class (Go's mcentral).
 *
 * Each span class has an mcentral: a spinlock, a list of swept spans with
 * free slots (partial) and a list of spans that were full when last swept
 * (full). An mcache that runs out of slots gives its span back
 * (mcentral_uncache_span: swept here, then listed, or handed to the mheap
 * if it is empty) and takes one with free slots (mcentral_cache_span:
 * from partial, else a fresh span from the mheap). Spans held by an mcache
 * are on no list; their owner_cpu says which mcache holds them.
 *
 * Frees into a span that no mcache holds (and frees from CPUs other than
 * the holder) are recorded in the span's remote_bits. So that a full span
 * that gets such frees is found again, and an emptied one goes back to the
 * mheap, the freeing CPU pushes the span on the mcentral's `pending` stack
 * the first time (a lock-free push; the flag span->remote_pending keeps a
 * span on the stack at most once). The stack is emptied, under the lock,
 * before every refill (mcentral_reclaim) and whenever the mheap would
 * otherwise have to grow.
 *
 * The remote-free protocol (malloc.c, kfree_remote) and the rule for
 * giving a span back are what make this safe without a lock per object:
 *
 *   freer:   inflight++;  remote_bits |= bit;  if pending 0->1: push;
 *            inflight--                       (all seq_cst atomics)
 *   sweeper: pending = 0 (when popping);  harvest remote_bits;
 *            give the span back only if it is empty, not cached,
 *            pending == 0 and inflight == 0.
 *
 * A bit set after the sweeper harvested its word is followed by the
 * freer's look at the flag, which then sees 0 (or a newer push) and
 * pushes: no free is ever stranded. A freer still touching the span keeps
 * inflight > 0, so the span record is never recycled under it.
 */
#include "mm/mcentral.h"
#include "mm/mheap.h"
#include "mm/platform.h"

struct mcentral mcentrals[NUM_SPAN_CLASSES];

void mcentral_init(void)
{
	for (unsigned i = 0; i < NUM_SPAN_CLASSES; i++) {
		struct mcentral *c = &mcentrals[i];
		spin_lock_init(&c->lock, "mcentral");
		c->spanclass = i;
	}
}

static struct mspan **list_head(struct mcentral *c, uint8_t id)
{
	return id == MSPAN_ON_PARTIAL ? &c->partial : &c->full;
}

static void list_push(struct mcentral *c, struct mspan *s, uint8_t id)
{
	struct mspan **head = list_head(c, id);
	s->prev = NULL;
	s->next = *head;
	if (*head)
		(*head)->prev = s;
	*head = s;
	s->list = id;
}

static void list_remove(struct mcentral *c, struct mspan *s)
{
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
	if (s->alloc_count == 0 &&
	    __atomic_load_n(&s->remote_pending, __ATOMIC_SEQ_CST) == 0 &&
	    __atomic_load_n(&s->remote_inflight, __ATOMIC_SEQ_CST) == 0) {
		c->nspans--;
		c->nrelease++;
		mheap_free_span(s);
		return;
	}
	list_push(c, s, s->alloc_count < s->nelems ? MSPAN_ON_PARTIAL : MSPAN_ON_FULL);
}

void mcentral_push_pending(struct mcentral *c, struct mspan *s)
{
	struct mspan *head = __atomic_load_n(&c->pending, __ATOMIC_RELAXED);
	do {
		s->pending_next = head;
	} while (!__atomic_compare_exchange_n(&c->pending, &head, s, 1,
					      __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

/* Under c->lock. */
static void reclaim_locked(struct mcentral *c)
{
	if (!__atomic_load_n(&c->pending, __ATOMIC_RELAXED))
		return;
	struct mspan *s = __atomic_exchange_n(&c->pending, NULL, __ATOMIC_ACQUIRE);
	while (s) {
		struct mspan *next = s->pending_next;   /* before the flag drops */
		__atomic_store_n(&s->remote_pending, 0, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&s->owner_cpu, __ATOMIC_RELAXED) < 0) {
			list_remove(c, s);
			mspan_sweep(s);
			place_swept(c, s);
		}
		/* else an mcache holds it; its owner sweeps it. */
		s = next;
	}
}

void mcentral_reclaim(struct mcentral *c)
{
	unsigned long flags = spin_lock_irqsave(&c->lock);
	reclaim_locked(c);
	spin_unlock_irqrestore(&c->lock, flags);
}

void mcentral_reclaim_all(struct mcentral *c)
{
	unsigned long flags = spin_lock_irqsave(&c->lock);
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
	spin_unlock_irqrestore(&c->lock, flags);
}

static void take_ownership(struct mcentral *c, struct mspan *s, unsigned cpu)
{
	__atomic_store_n(&s->owner_cpu, (int32_t)cpu, __ATOMIC_RELAXED);
	c->nrefill++;
}

struct mspan *mcentral_cache_span(struct mcentral *c, unsigned cpu)
{
	unsigned long flags = spin_lock_irqsave(&c->lock);
	struct mspan *s;

	reclaim_locked(c);
	while ((s = c->partial) != NULL) {
		list_remove(c, s);
		mspan_sweep(s);         /* pick up remote frees since it was listed */
		if (s->alloc_count < s->nelems) {
			take_ownership(c, s, cpu);
			spin_unlock_irqrestore(&c->lock, flags);
			return s;
		}
		list_push(c, s, MSPAN_ON_FULL);   /* cannot happen; keep it listed */
	}
	spin_unlock_irqrestore(&c->lock, flags);

	/* A power-of-two class larger than a page gets a span aligned to its
	 * object size, so that every power-of-two size is naturally aligned
	 * (smaller ones are: 8 KiB-aligned spans, objects at multiples of
	 * their size). Linux promises the same since 5.4. */
	unsigned cls = spanclass_sizeclass(c->spanclass);
	size_t elem = class_to_size[cls];
	size_t align_pages = (elem & (elem - 1)) == 0 && elem > MM_PAGE_SIZE ?
		elem >> MM_PAGE_SHIFT : 1;
	s = mheap_alloc_span_aligned(class_to_npages[cls], c->spanclass, align_pages);
	if (!s)
		return NULL;
	flags = spin_lock_irqsave(&c->lock);
	c->nspans++;
	c->ngrow++;
	take_ownership(c, s, cpu);
	spin_unlock_irqrestore(&c->lock, flags);
	return s;
}

void mcentral_uncache_span(struct mcentral *c, struct mspan *s)
{
	unsigned long flags = spin_lock_irqsave(&c->lock);
	__atomic_store_n(&s->owner_cpu, -1, __ATOMIC_RELAXED);
	mspan_sweep(s);
	place_swept(c, s);
	spin_unlock_irqrestore(&c->lock, flags);
}
