/*
 * tests/host/pagemap_window/pw_platform.h - what the page-map window test
 * asks of and reads from its platform (platform.c).
 */
#ifndef PAGEMAP_WINDOW_PLATFORM_H
#define PAGEMAP_WINDOW_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#define PW_END (PW_BASE + (1UL << PW_BITS))

/* Where the chunks (requests of 1 MiB and more) go; smaller requests
 * (fixalloc blocks, small leaves) are always served inside the window. */
enum pw_place {
	PW_INSIDE,     /* first fit inside the window */
	PW_BELOW,      /* ending exactly at PW_BASE */
	PW_ABOVE,      /* starting exactly at PW_END */
	PW_ACROSS,     /* across PW_END (a request that is not a power of two) */
	PW_TOP,        /* the next one inside, ending exactly at PW_END */
};

struct pw_counts {
	unsigned outside_handed;   /* chunks handed out not wholly inside */
	unsigned across_handed;    /* of which across the end */
	unsigned top_handed;       /* chunks placed at the window's top */
	size_t outside_held;       /* bytes of those not given back yet */
	size_t inside_held;        /* bytes inside the window held by the heap */
	unsigned log_lines;        /* mm_log calls */
	unsigned window_log_lines; /* ... naming MM_PAGEMAP_BASE and _BITS */
	unsigned bad_frees;        /* mm_sys_free of a region never handed out */
};

/* Reserve the window and the space around it; 0, or -1 (errno). */
int pw_platform_init(void);
void pw_place_chunks(enum pw_place where);
extern struct pw_counts pw_counts;

#endif
