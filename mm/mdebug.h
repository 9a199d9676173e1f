/*
 * mm/mdebug.h - the heap's debug mode (make DEBUG_HEAP=1): what tests and
 * debuggers can ask it. See mm/mdebug.c for how it works.
 *
 * In a normal build (DEBUG_HEAP=0) none of this exists and the heap pays
 * nothing for it.
 */
#ifndef MM_MDEBUG_H
#define MM_MDEBUG_H

#include <stddef.h>
#include <stdint.h>

#ifndef DEBUG_HEAP
#define DEBUG_HEAP 0
#endif

#if DEBUG_HEAP

/* Bytes of red zone at least after every object (more when the size class
 * leaves more), and the tracking trailer after the red zone. */
#define KMEM_REDZONE_MIN 32
#define KMEM_TRAILER_SIZE 32
/* Byte patterns, as Linux's slub_debug: freed object, red zone, fresh
 * (uninitialized) object. */
#define KMEM_POISON_FREE 0x6b
#define KMEM_POISON_REDZONE 0xcc
#define KMEM_POISON_ALLOC 0x5a
/* The quarantine holds at most this many freed objects and bytes. */
#define KMEM_QUARANTINE_OBJS 1024
#define KMEM_QUARANTINE_BYTES (1UL << 20)

enum kmem_bug {
	KMEM_BUG_NONE = 0,
	KMEM_BUG_USE_AFTER_FREE,   /* poison of a freed object overwritten */
	KMEM_BUG_OVERFLOW,         /* red zone (maybe trailer) overwritten */
	KMEM_BUG_DOUBLE_FREE,      /* kfree of an object already freed */
	KMEM_BUG_FREED_ACCESS,     /* ksize/krealloc of a freed object */
};

/* One report, as printed. */
struct kmem_debug_report {
	enum kmem_bug bug;
	const void *object;
	size_t size;               /* bytes requested (0 if the trailer is lost) */
	size_t objsize;            /* bytes of the heap object (class size, or
				    * the large object's pages) */
	unsigned sizeclass;        /* 0: large object */
	size_t first_offset;       /* first bad byte, from the object start */
	size_t last_offset;        /* last bad byte */
	size_t nbytes;             /* bytes found overwritten */
	const void *alloc_site;    /* caller of kmalloc */
	const void *free_site;     /* caller of the (first) kfree, or NULL */
	const void *caller;        /* caller of the call that found it */
};

struct kmem_debug_stats {
	uint64_t use_after_free, overflow, double_free, freed_access;
	uint64_t quarantined;      /* objects put in quarantine */
	uint64_t released;         /* objects out of quarantine, back to the heap */
	uint64_t quarantine_objs;  /* in quarantine now */
	uint64_t quarantine_bytes;
	uint64_t quarantine_large_bytes;   /* of which in large objects */
};

void kmem_debug_get_stats(struct kmem_debug_stats *st);
/* The latest report (bug == KMEM_BUG_NONE if none yet). */
void kmem_debug_last_report(struct kmem_debug_report *r);
/* Check and free every quarantined object now. */
void kmem_debug_flush_quarantine(void);

#endif /* DEBUG_HEAP */
#endif
