/*
 * tests/bench/wl_malloc_large.c - "malloc-large": churn of large objects,
 * 64 KiB to 8 MiB (after mimalloc-bench's malloc-large), with and without
 * touching their pages.
 *
 * Each thread keeps a live objects (filled untimed) and, ops times,
 * replaces a random one by a new object of log-uniform size in
 * 64 KiB .. 8 MiB - 1 (as many of 64..128 KiB as of 4..8 MiB). Case
 * "touch" writes one byte in every 4 KiB page of each new object (what a
 * program filling its buffer costs: page faults if the allocator gave
 * fresh memory); "notouch" writes only the first byte (the allocator's own
 * cost: mmap/munmap, page-run search, coalescing). One op = one free +
 * allocate.
 *
 * In the kernel sizes stop at 4 MiB - 1: its page allocator hands out at
 * most 4 MiB of contiguous memory (PMM_MAX_ORDER), so kmalloc of more
 * returns NULL there.
 */
#include "tests/bench/workload.h"

#ifdef WL_HOST
#define LARGE_MAX_SHIFT 22 /* sizes below 2^23: 8 MiB */
#else
#define LARGE_MAX_SHIFT 21 /* below 2^22: 4 MiB, the kernel's largest block */
#endif

static const struct wl_case large_cases[] = {
	/* a = live objects per thread, b = 1: touch every page */
	{ "touch", 600u, 8, 1, 0 },
	{ "notouch", 20000u, 8, 0, 0 },
};

static uint32_t large_size(struct wl_thread *t)
{
	unsigned e = 16 + (unsigned)wl_rng_below(&t->rng, LARGE_MAX_SHIFT - 16 + 1);
	return (1u << e) + (uint32_t)wl_rng_below(&t->rng, 1u << e);
}

static void large_alloc(struct wl_thread *t, struct wl_obj *o)
{
	if (!wl_obj_alloc(t, o, large_size(t)) || !t->run->c->b || t->run->check)
		return; /* check mode patterns one byte per page anyway */
	volatile uint8_t *b = o->p;
	for (uint32_t off = 4096; off < o->size; off += 4096)
		b[off] = (uint8_t)off;
}

static void large_thread(struct wl_thread *t)
{
	const struct wl_case *c = t->run->c;
	uint64_t n = c->a, ops = wl_scaled(t, c->ops, 1);
	struct wl_obj *set = wl_live_set_new(t, n);
	for (uint64_t i = 0; set && i < n; i++)
		large_alloc(t, &set[i]);
	wl_go(t);
	if (set) {
		for (uint64_t i = 0; i < ops; i++) {
			struct wl_obj *o = &set[wl_rng_below(&t->rng, n)];
			wl_obj_free(t, o);
			large_alloc(t, o);
		}
		t->ops = ops;
	}
	wl_stop(t);
	wl_live_set_free(t, set, n);
}

const struct workload wl_malloc_large = {
	.name = "malloc-large",
	.cases = large_cases,
	.ncases = sizeof(large_cases) / sizeof(large_cases[0]),
	.thread = large_thread,
};
