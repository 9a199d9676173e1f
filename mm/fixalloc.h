/*
 * mm/fixalloc.h - fixed-size allocator for the heap's own metadata (Go's
 * fixalloc): span structs, spans' bitmap units, chunk records and
 * tiny-block side tables.
 *
 * Objects are carved from 8 KiB blocks obtained with mm_sys_alloc; each
 * block keeps its own free list and count of objects in use, and is given
 * back to the platform once its last object is freed (one empty block is
 * kept while others are in use), so an empty heap holds no metadata
 * either. Not thread-safe: the caller serialises
 * (every fixalloc belongs to an mheap arena and is used under its lock).
 *
 * Blocks belong to CPUs: a record is carved from a block of the CPU it is
 * for (the caller says which), so that two CPUs' hot records never share
 * a page (why, and what it costs: docs/HEAP.md, "Span metadata").
 */
#ifndef MM_FIXALLOC_H
#define MM_FIXALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "mm/platform.h"

#define FIXALLOC_BLOCK_SIZE (8UL * 1024)   /* one heap page (MM_SYS_ALIGN) */

struct fixalloc_block;

struct fixalloc {
	size_t size;                       /* object size, multiple of 64 */
	/* Per CPU, its blocks with a free object (the spare among them). */
	struct fixalloc_block *partial[MM_MAX_CPUS];
	uint64_t inuse;                    /* objects handed out */
	uint64_t sys_bytes;                /* blocks held, in bytes */
	struct fixalloc_block *spare;      /* an empty block kept, or NULL */
};

void fixalloc_init(struct fixalloc *f, size_t size);
/* A zeroed object for CPU cpu (< MM_MAX_CPUS), from one of its blocks,
 * else the spare or a new block, made its own; with the platform out of
 * memory, from another CPU's block; else NULL. */
void *fixalloc_alloc(struct fixalloc *f, unsigned cpu);
void fixalloc_free(struct fixalloc *f, void *p);
/* Is p an object carved from one of f's blocks (for the verifier; a
 * freed object passes too: fixalloc.inuse counts those)? */
bool fixalloc_owns(const struct fixalloc *f, const void *p);
/* NULL when f's lists are sound: each CPU's list holds blocks of that CPU
 * with room, the spare among them and empty; else what is wrong (for the
 * verifier; the caller serialises, as for the rest). */
const char *fixalloc_verify(const struct fixalloc *f);

#endif
