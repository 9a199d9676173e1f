/*
 * tests/bench/wl_glibc_simple.c - "glibc-simple": a live set of n small
 * objects per thread, replaced one at a time in FIFO or LIFO order
 * (after glibc's bench-malloc-simple, as mimalloc-bench runs it).
 *
 * Each thread first allocates its n objects (untimed; sizes 16..256 in
 * steps of 16, from the thread's generator), then replaces them:
 *  - FIFO: the oldest object is freed and a new one allocated in its
 *    place (a ring), so every object lives exactly n replacements;
 *  - LIFO: the newest half of the set is freed newest first, then
 *    allocated again (a stack that breathes), so the same few slots churn.
 * n = 100 fits in any thread cache, 1 600 in a few spans, 100 000 (about
 * 13 MiB per thread) does not. a = n, b = 0 FIFO / 1 LIFO. One op = one
 * free + allocate; each thread does ops of them.
 */
#include "tests/bench/workload.h"

#define SIMPLE_OPS 3000000u

static const struct wl_case simple_cases[] = {
	{ "fifo-100", SIMPLE_OPS, 100, 0, 0 },
	{ "fifo-1600", SIMPLE_OPS, 1600, 0, 0 },
	{ "fifo-100000", SIMPLE_OPS, 100000, 0, 0 },
	{ "lifo-100", SIMPLE_OPS, 100, 1, 0 },
	{ "lifo-1600", SIMPLE_OPS, 1600, 1, 0 },
	{ "lifo-100000", SIMPLE_OPS, 100000, 1, 0 },
};

static uint32_t simple_size(struct wl_thread *t)
{
	return 16 * (uint32_t)wl_rng_range(&t->rng, 1, 16);
}

static void simple_fifo(struct wl_thread *t, struct wl_obj *set, uint64_t n, uint64_t ops)
{
	uint64_t oldest = 0;
	for (uint64_t i = 0; i < ops; i++) {
		wl_obj_free(t, &set[oldest]);
		wl_obj_alloc(t, &set[oldest], simple_size(t));
		oldest = oldest + 1 == n ? 0 : oldest + 1;
	}
}

static void simple_lifo(struct wl_thread *t, struct wl_obj *set, uint64_t n, uint64_t ops)
{
	uint64_t half = n / 2 ? n / 2 : 1, done = 0;
	while (done < ops) {
		uint64_t k = ops - done < half ? ops - done : half;
		for (uint64_t i = 0; i < k; i++)
			wl_obj_free(t, &set[n - 1 - i]);
		for (uint64_t i = k; i > 0; i--)
			wl_obj_alloc(t, &set[n - i], simple_size(t));
		done += k;
	}
}

static void simple_thread(struct wl_thread *t)
{
	const struct wl_case *c = t->run->c;
	uint64_t n = c->a, ops = wl_scaled(t, c->ops, 1);
	struct wl_obj *set = wl_live_set_new(t, n);
	for (uint64_t i = 0; set && i < n; i++)
		wl_obj_alloc(t, &set[i], simple_size(t));
	wl_go(t);
	if (set) {
		if (c->b)
			simple_lifo(t, set, n, ops);
		else
			simple_fifo(t, set, n, ops);
		t->ops = ops;
	}
	wl_stop(t);
	wl_live_set_free(t, set, n);
}

const struct workload wl_glibc_simple = {
	.name = "glibc-simple",
	.cases = simple_cases,
	.ncases = sizeof(simple_cases) / sizeof(simple_cases[0]),
	.thread = simple_thread,
};
