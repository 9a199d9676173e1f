/*
 * mm/badptr.c - what the heap says about a bad pointer.
 *
 * Every layer that checks a pointer (the API's kfree/ksize/krealloc, the
 * tiny allocator, the span-free protocol of mm/mcentral.c) reports a bad
 * one here: one mm_log line with the pointer, the reason, its span (range,
 * size class) and the caller, a count in kmem_bad_frees
 * (kmem_stats.bad_frees), and the heap carries on unchanged, unless bad
 * pointers were made fatal (kmem_set_panic_on_bad_free, or the build
 * switch SPANHEAP_PANIC_ON_BAD_FREE), when mm_panic follows the report.
 * It sits at the bottom of the heap's layers, beside the span, so that any
 * layer may report without calling up.
 */
#include "mm/badptr.h"
#include "mm/kmalloc.h"
#include "mm/mspan.h"
#include "mm/platform.h"

uint64_t kmem_bad_frees;

#ifdef SPANHEAP_PANIC_ON_BAD_FREE
static int panic_on_bad_free = 1;
#else
static int panic_on_bad_free;
#endif

void kmem_set_panic_on_bad_free(int on)
{
	__atomic_store_n(&panic_on_bad_free, on, __ATOMIC_RELAXED);
}

void mm_bad_pointer(const char *op, const char *why, const void *p,
		    const struct mspan *s, const void *caller)
{
	if (!op)
		return;   /* a quiet probe (debug mode's heap_raw_size) */
	__atomic_fetch_add(&kmem_bad_frees, 1, __ATOMIC_RELAXED);
	if (s)
		mm_log("%s(%p): %s; span %p [%#lx, %lu pages], class %u (%u bytes), caller %p",
		       op, p, why, (const void *)s, (unsigned long)s->startaddr,
		       (unsigned long)s->npages, spanclass_sizeclass(s->spanclass),
		       s->elemsize, caller);
	else
		mm_log("%s(%p): %s; caller %p", op, p, why, caller);
	if (__atomic_load_n(&panic_on_bad_free, __ATOMIC_RELAXED))
		mm_panic("%s(%p): %s (bad pointers are fatal: kmem_set_panic_on_bad_free)",
			 op, p, why);
}
