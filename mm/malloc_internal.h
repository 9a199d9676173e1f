/*
 * mm/malloc_internal.h - what the API layer's files (malloc.c, mdebug.c,
 * mstats.c, mverify.c) share beyond mm/kmalloc.h.
 */
#ifndef MM_MALLOC_INTERNAL_H
#define MM_MALLOC_INTERNAL_H

#include <stdint.h>
#include "mm/kmalloc.h"
#include "mm/mheap.h"

/* Has kmalloc_init run? (Before, the heap holds nothing.) */
static inline int mheap_ready(void)
{
	return __atomic_load_n(&mheap.ready, __ATOMIC_ACQUIRE);
}

/* Held by an idle CPU's kmem_scavenge_idle and by whoever reads every
 * CPU's mcache (mheap_verify, kmem_drain_all): the rule is in mm/malloc.c. */
extern mm_spinlock_t kmem_idle_lock;

/* NULL returns for lack of memory (atomic). */
extern uint64_t kmem_oom;

/*
 * Debug mode (DEBUG_HEAP=1): mm/mdebug.c is the public API and calls the
 * heap beneath it, never the other way round. The heap's own entry points
 * then take the names below: HEAP_API(kmem_drain_all) is kmem_drain_all
 * in a normal build and heap_raw_kmem_drain_all in debug mode.
 */
#if DEBUG_HEAP
#define HEAP_API(name) heap_raw_##name
/* kmalloc_aligned (align >= 8, a power of two), kfree with the caller to
 * report, and the usable size of a live object (0 if it is not one; op
 * NULL: no report). */
void *heap_raw_alloc(size_t size, size_t align, unsigned flags);
void heap_raw_free(const void *p, const void *caller);
size_t heap_raw_size(const char *op, const void *p, const void *caller);
/* Objects in the quarantine, and bytes of large ones among them: freed
 * as far as their users are concerned (kmem_get_stats). */
void kmem_debug_quarantined(uint64_t *objs, uint64_t *large_bytes);
#else
#define HEAP_API(name) name
static inline void kmem_debug_quarantined(uint64_t *objs, uint64_t *large_bytes)
{
	*objs = *large_bytes = 0;
}
#endif
void HEAP_API(kmem_drain_this_cpu)(void);
void HEAP_API(kmem_drain_all)(void);
void HEAP_API(kmem_lock_all)(void);
void HEAP_API(kmem_unlock_all)(void);
void HEAP_API(kmem_unlock_all_in_child)(void);

#endif
