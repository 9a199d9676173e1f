/*
 * mm/mheap_internal.h - what mm/mheap.c and mm/mscavenge.c (retention,
 * the scavenger, adoption) call of each other; nothing else includes it.
 */
#ifndef MM_MHEAP_INTERNAL_H
#define MM_MHEAP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "mm/mheap.h"

/* mm/mheap.c */
/* Take the chunk that free run s covers wholly off its arena (under the
 * arena's lock): off its lists, its run's ends unmapped, its records
 * freed. The memory stays mapped and in the page map's leaves, for the
 * caller to give back to the platform or to another arena. */
void mheap_chunk_detach(struct mspan *s);
/* Memory of a detached chunk back to the platform. */
void mheap_chunk_give_back(uintptr_t base, size_t npages);

/* mm/mscavenge.c */
/* Give h's oldest retained chunks back until it retains at most
 * keep_pages pages (under h->lock); returns the pages given back. */
uint64_t mheap_scavenge_locked(struct mheap *h, uint64_t keep_pages);
/* After a free into h (under its lock): with more than twice the target
 * retained in all, h's oldest chunks go back until at most the target is;
 * if that is not enough, the trim is left pending (mheap_trim_pending,
 * mm/mheap.h, does it once the caller has let go of the lock). */
void mheap_retain_bound_locked(struct mheap *h);
/* Every arena but except in turn, under its lock (none held by the
 * caller), gives retained chunks back until all retain at most
 * keep_pages pages (keep_target: the policy's target instead); returns
 * the pages given back. */
uint64_t mheap_scavenge_arenas(const struct mheap *except, uint64_t keep_pages,
			       bool keep_target);
/* A retained chunk of at least npages pages of an arena other than h
 * (the shortest of the first such arena, by index, that has one: each
 * arena's lock is taken in turn, so the shortest of all could be gone by
 * the time it was compared), detached from it (the caller holds no arena lock):
 * its base, its pages in *n and whether they may hold data in
 * *needzero; 0 when there is none. */
uintptr_t mheap_take_retained_chunk(const struct mheap *h, size_t npages, size_t *n,
				   bool *needzero);

#endif
