/*
 * mm/mcentral.h - per-span-class span lists (Go's mcentral).
 */
#ifndef MM_MCENTRAL_H
#define MM_MCENTRAL_H

#include <stdint.h>
#include "lib/spinlock.h"
#include "mm/mspan.h"

struct mcentral {
	/*
	 * lock protects partial, full, the list links of the spans on them,
	 * and owner_cpu / sweeping of every span of this class that no mcache
	 * holds. Taken with interrupts off (irqsave); mheap.lock nests inside.
	 */
	spinlock_t lock;
	unsigned spanclass;
	struct mspan *partial;    /* swept, has free slots */
	struct mspan *full;       /* no free slot as of its last sweep */
	/* Spans that got a remote free while no sweep was due: a lock-free
	 * stack, pushed by any CPU (CAS), emptied whole under lock. */
	struct mspan *pending;
	uint64_t nspans;          /* spans of this class in use */
	uint64_t nrefill;         /* spans handed to an mcache */
	uint64_t ngrow;           /* spans obtained from the mheap */
	uint64_t nrelease;        /* spans given back to the mheap */
} __attribute__((aligned(64)));

extern struct mcentral mcentrals[NUM_SPAN_CLASSES];

void mcentral_init(void);
/* A span with at least one free slot, now owned by mcache `cpu`; NULL when
 * out of memory. */
struct mspan *mcentral_cache_span(struct mcentral *c, unsigned cpu);
/* The mcache of its owner gives span s back (swept here). */
void mcentral_uncache_span(struct mcentral *c, struct mspan *s);
/* Record that span s (of class c) has remote frees to be swept. */
void mcentral_push_pending(struct mcentral *c, struct mspan *s);
/* Sweep every pending span of this class: full spans with frees become
 * partial, empty spans go back to the mheap. */
void mcentral_reclaim(struct mcentral *c);
/* Sweep every span on the lists (all CPUs quiescent or not, correct either
 * way) and give empty ones back to the mheap. */
void mcentral_reclaim_all(struct mcentral *c);

#endif
