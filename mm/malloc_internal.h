/*
 * mm/malloc_internal.h - what the heap's files share beyond mm/kmalloc.h.
 */
#ifndef MM_MALLOC_INTERNAL_H
#define MM_MALLOC_INTERNAL_H

#include <stdint.h>
#include "mm/kmalloc.h"
#include "mm/mheap.h"

static inline int mheap_ready(void)
{
	return __atomic_load_n(&mheap.ready, __ATOMIC_ACQUIRE);
}

/* Sweep every mcentral's pending spans (empty spans go back to the mheap). */
void kmem_reclaim(void);
/* Free a tiny allocator's 16-byte block (an object of TINY_SPAN_CLASS)
 * whose tiny objects are all freed. Interrupts off. */
void kfree_block(uintptr_t block, unsigned cpu);

#if DEBUG_HEAP
/* Debug mode (mm/mdebug.c) builds the public API on these: the heap's
 * kmalloc/kmalloc_aligned (align <= 8: plain), kfree with the caller to
 * report, and the usable size of a live object (0 if it is not one; op
 * NULL: no report). */
void *heap_raw_alloc(size_t size, size_t align, unsigned flags);
void heap_raw_free(const void *p, const void *caller);
size_t heap_raw_size(const char *op, const void *p, const void *caller);
/* Free every quarantined object now (mm/mdebug.c). */
void kmem_debug_flush_quarantine(void);
/* Take / release debug mode's locks, for kmem_lock_all. */
void kmem_debug_lock_all(void);
void kmem_debug_unlock_all(void);
void kmem_debug_reset_locks(void);
#endif

/* Heap-wide event counters (atomic). */
extern uint64_t kmem_bad_frees;
extern uint64_t kmem_oom;

#endif
