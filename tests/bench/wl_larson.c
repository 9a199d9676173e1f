/*
 * tests/bench/wl_larson.c - "larson": a server-like workload (Larson and
 * Krishnan's benchmark, as in mimalloc-bench's larson-sized).
 *
 * There are as many slot arrays as threads, a objects each, sizes 8..b
 * bytes uniformly. In each round every thread works on one array,
 * replacing objects in randomly chosen slots (free, allocate) ops/rounds
 * times; then the arrays move on: in round r thread i holds array
 * (i + r) mod N. So an object is usually freed by another thread than the
 * one that allocated it, as in a server where requests migrate between
 * worker threads. Arrays are filled untimed by the thread that holds them
 * first. One op = one free + allocate; each thread does ops of them.
 */
#include "tests/bench/workload.h"

#define LARSON_ROUNDS 20

static const struct wl_case larson_cases[] = {
	/* a = slots per array, b = largest size */
	{ "sized-8-1000", 4000000u, 1000, 1000, 0 },
};

struct larson {
	struct wl_obj **arrays; /* nthreads arrays of a objects */
};

static int larson_setup(struct wl_run *r)
{
	struct larson *l = wl_malloc(sizeof(*l));
	if (!l)
		return -1;
	l->arrays = wl_malloc(r->nthreads * sizeof(*l->arrays));
	if (!l->arrays) {
		wl_free(l);
		return -1;
	}
	for (unsigned i = 0; i < r->nthreads; i++) {
		l->arrays[i] = wl_obj_array(r->c->a);
		if (!l->arrays[i]) {
			while (i--)
				wl_free(l->arrays[i]);
			wl_free(l->arrays);
			wl_free(l);
			return -1;
		}
	}
	r->shared = l;
	return 0;
}

static void larson_teardown(struct wl_run *r)
{
	struct larson *l = r->shared;
	for (unsigned i = 0; i < r->nthreads; i++)
		wl_free(l->arrays[i]);
	wl_free(l->arrays);
	wl_free(l);
}

static uint32_t larson_size(struct wl_thread *t)
{
	return (uint32_t)wl_rng_range(&t->rng, 8, t->run->c->b);
}

static void larson_thread(struct wl_thread *t)
{
	const struct wl_case *c = t->run->c;
	struct larson *l = t->run->shared;
	uint64_t n = c->a, ops = wl_scaled(t, c->ops, LARSON_ROUNDS);
	uint64_t per_round = ops / LARSON_ROUNDS;

	struct wl_obj *mine = l->arrays[t->id];
	for (uint64_t i = 0; i < n; i++)
		wl_obj_alloc(t, &mine[i], larson_size(t));
	wl_go(t);
	for (unsigned r = 0; r < LARSON_ROUNDS; r++) {
		struct wl_obj *a = l->arrays[(t->id + r) % t->nthreads];
		for (uint64_t i = 0; i < per_round; i++) {
			struct wl_obj *o = &a[wl_rng_below(&t->rng, n)];
			wl_obj_free(t, o);
			wl_obj_alloc(t, o, larson_size(t));
		}
		wl_barrier(t); /* hand the arrays on */
	}
	t->ops = per_round * LARSON_ROUNDS;
	wl_stop(t);
	struct wl_obj *last = l->arrays[(t->id + LARSON_ROUNDS - 1) % t->nthreads];
	for (uint64_t i = 0; i < n; i++)
		wl_obj_free(t, &last[i]);
}

const struct workload wl_larson = {
	.name = "larson",
	.cases = larson_cases,
	.ncases = 1,
	.setup = larson_setup,
	.thread = larson_thread,
	.teardown = larson_teardown,
};
