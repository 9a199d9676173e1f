/*
 * tests/bench/wl_alloc_test.c - "alloc-test": a live set whose objects are
 * replaced at random, sizes Pareto-distributed up to 1 KiB (after the
 * alloc-test benchmark of mimalloc-bench, 1..N threads).
 *
 * Each thread fills its own live set of a objects (untimed), then, ops
 * times, frees a randomly chosen one and allocates a new object in its
 * place. Sizes follow a Pareto law with shape 1 and scale 8 bytes,
 * truncated at 1 KiB by redrawing: P(size > s) = 8 / s, so half the
 * objects are under 16 bytes, one in eight above 64, one in 128 reaches
 * 1 KiB (drawn with integers only: 8 * 2^32 / u for u uniform in
 * [1, 2^32]). Random replacement scatters the frees across spans, which is
 * what separates allocators here. One op = one free + allocate.
 */
#include "tests/bench/workload.h"

static const struct wl_case alloc_test_cases[] = {
	{ "pareto-1k", 4000000u, 10000, 0, 0 }, /* a = live objects per thread */
};

static uint32_t pareto_size(struct wl_thread *t)
{
	for (;;) {
		uint64_t u = (wl_rng_next(&t->rng) >> 32) + 1; /* 1 .. 2^32 */
		uint64_t s = (8ull << 32) / u;
		if (s <= 1024)
			return (uint32_t)s;
	}
}

static void alloc_test_thread(struct wl_thread *t)
{
	const struct wl_case *c = t->run->c;
	uint64_t n = c->a, ops = wl_scaled(t, c->ops, 1);
	struct wl_obj *set = wl_live_set_new(t, n);
	for (uint64_t i = 0; set && i < n; i++)
		wl_obj_alloc(t, &set[i], pareto_size(t));
	wl_go(t);
	if (set) {
		for (uint64_t i = 0; i < ops; i++) {
			struct wl_obj *o = &set[wl_rng_below(&t->rng, n)];
			wl_obj_free(t, o);
			wl_obj_alloc(t, o, pareto_size(t));
		}
		t->ops = ops;
	}
	wl_stop(t);
	wl_live_set_free(t, set, n);
}

const struct workload wl_alloc_test = {
	.name = "alloc-test",
	.cases = alloc_test_cases,
	.ncases = 1,
	.thread = alloc_test_thread,
};
