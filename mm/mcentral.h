/*
 * mm/mcentral.h - per-span-class span lists (Go's mcentral) and the
 * protocol that frees an object into a span. See mm/mcentral.c.
 */
#ifndef MM_MCENTRAL_H
#define MM_MCENTRAL_H

#include <stdbool.h>
#include <stdint.h>
#include "mm/mlock.h"
#include "mm/mspan.h"

struct mcentral {
	/*
	 * lock protects partial, full, the list links of the spans on them,
	 * and owner_cpu / sweeping of every span of this class that no mcache
	 * holds. Taken with interrupts off (irqsave); the mheap arenas' locks
	 * nest inside.
	 */
	mm_spinlock_t lock;
	unsigned spanclass;
	struct mspan *partial;    /* swept, has free slots */
	struct mspan *full;       /* no free slot as of its last sweep */
	/* Spans that got a remote free while no sweep was due: a lock-free
	 * stack, pushed by any CPU (CAS), emptied whole under lock. */
	struct mspan *pending;
	/* Counters: written under lock, read without it (relaxed). */
	uint64_t nspans;          /* spans of this class in use */
	uint64_t nrefill;         /* spans handed to an mcache */
	uint64_t ngrow;           /* spans obtained from the mheap */
	uint64_t nrelease;        /* spans given back to the mheap */
} __attribute__((aligned(64)));

extern struct mcentral mcentrals[NUM_SPAN_CLASSES];

/* Once, before any other call (kmalloc_init). */
void mcentral_init(void);
/* A span with at least one free slot, now owned by mcache `cpu`; NULL when
 * out of memory. */
struct mspan *mcentral_cache_span(struct mcentral *c, unsigned cpu);
/* The mcache of its owner gives span s back (swept here); s is on no
 * list. */
void mcentral_uncache_span(struct mcentral *c, struct mspan *s);
/* Free object i of small span s from CPU cpu, which does not own it
 * (interrupts off): the remote-free protocol,
 * described at its definition. False, and reported as a bad kfree of p by
 * caller, if the object is not live. */
bool mcentral_free(struct mspan *s, unsigned i, unsigned cpu, const void *p,
		   const void *caller);

/* The notice stack of CPU cpu: spans it owns that got remote frees
 * (mm/mcentral.c). Take the whole stack (linked through pending_next;
 * NULL, after one relaxed load, if empty). Only CPU cpu itself, or a
 * drain with every CPU quiescent. */
struct mspan *mcentral_take_notices(unsigned cpu);
/* The top of the stack, for mheap_verify (every CPU quiescent). */
struct mspan *mcentral_peek_notices(unsigned cpu);
/* CPU cpu's hazard pointer: the span its remote free is touching, NULL
 * between frees (mcentral_free). For mheap_verify (every CPU quiescent:
 * each must be NULL) and its tests. */
struct mspan **mcentral_hazard_slot(unsigned cpu);
/* For each span taken, after reading its link: the popper owns it and
 * will sweep it (pending drops to 0)... */
void mcentral_notice_done(struct mspan *s);
/* ...or it does not, and the span goes on to its current owner's notice
 * stack or its mcentral's pending stack (pending stays 1). Also the
 * remote freer's push (mcentral_free). */
void mcentral_route_pending(struct mspan *s);
/* Sweep every pending span of this class: full spans with frees become
 * partial, empty spans go back to the mheap. */
void mcentral_reclaim(struct mcentral *c);
/* The same for every span class (out of memory: empties go back). */
void mcentral_reclaim_every_class(void);
/* Sweep every span on the lists (all CPUs quiescent or not, correct either
 * way) and give empty ones back to the mheap. */
void mcentral_reclaim_all(struct mcentral *c);

#endif
