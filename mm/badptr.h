/*
 * mm/badptr.h - reports of bad pointers handed to the heap. See
 * mm/badptr.c.
 */
#ifndef MM_BADPTR_H
#define MM_BADPTR_H

#include <stdint.h>

struct mspan;

/* Report that `p`, given to operation `op` (kfree, ksize, krealloc) by
 * `caller`, is bad for reason `why`; s is its span, or NULL. Counted in
 * kmem_bad_frees; fatal after kmem_set_panic_on_bad_free(1). op NULL: a
 * quiet probe, nothing is reported. */
void mm_bad_pointer(const char *op, const char *why, const void *p,
		    const struct mspan *s, const void *caller);

/* Bad pointers reported so far (atomic). */
extern uint64_t kmem_bad_frees;

#endif
