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

/* Heap-wide event counters (atomic). */
extern uint64_t kmem_bad_frees;
extern uint64_t kmem_oom;

#endif
