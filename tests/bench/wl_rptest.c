/*
 * tests/bench/wl_rptest.c - "rptest": random sizes, per-thread working
 * sets, cross-thread frees (after rpmalloc's benchmark, rptest in
 * mimalloc-bench).
 *
 * Each thread keeps a working set of a slots (filled untimed). Each op
 * picks a random slot, releases its object and allocates a new one of a
 * log-uniform size in 16..16383 bytes (as many objects of 16..31 bytes as
 * of 8192..16383). With more than one thread, c in 1000 releases hand the
 * object to another, random thread instead of freeing it: it goes onto
 * that thread's inbox (a lock-free stack whose links live in the objects
 * themselves), and each thread frees what its inbox holds every 64 ops
 * and, once its ops are done, continually until every thread's are
 * (then once more: the end of the timed phase). In check mode an
 * object's pattern is checked before it is handed over. One op = one
 * allocation (and one release); each thread does ops of them.
 */
#include "tests/bench/workload.h"

#define RP_DRAIN_EVERY 64

static const struct wl_case rp_cases[] = {
	/* a = working set per thread, c = cross-thread releases per 1000 */
	{ "random-16-16k", 1500000u, 1024, 0, 125 },
};

/* What a handed-over object holds while it waits in an inbox. */
struct rp_node {
	struct rp_node *next;
	uint32_t size, tag;
};

struct rp_inbox {
	struct rp_node *top;
} __attribute__((aligned(64)));

static int rp_setup(struct wl_run *r)
{
	void *m = wl_malloc((r->nthreads + 1) * sizeof(struct rp_inbox));
	if (!m)
		return -1;
	r->shared = m;
	struct rp_inbox *in = (struct rp_inbox *)(((uintptr_t)m + 63) & ~(uintptr_t)63);
	for (unsigned i = 0; i < r->nthreads; i++)
		in[i].top = NULL;
	return 0;
}

static void rp_teardown(struct wl_run *r)
{
	wl_free(r->shared);
}

static struct rp_inbox *rp_inbox(struct wl_thread *t, unsigned id)
{
	uintptr_t m = ((uintptr_t)t->run->shared + 63) & ~(uintptr_t)63;
	return &((struct rp_inbox *)m)[id];
}

static uint32_t rp_size(struct wl_thread *t)
{
	unsigned e = 4 + (unsigned)wl_rng_below(&t->rng, 10); /* 2^4 .. 2^13 */
	return (1u << e) + (uint32_t)wl_rng_below(&t->rng, 1u << e);
}

static void rp_hand_over(struct wl_thread *t, struct wl_obj *o)
{
	unsigned to = (t->id + 1 + (unsigned)wl_rng_below(&t->rng, t->nthreads - 1)) % t->nthreads;
	struct rp_inbox *in = rp_inbox(t, to);
	if (t->run->check)
		wl_verify(t->run, o->p, o->size, o->tag);
	struct rp_node *n = o->p;
	n->size = o->size;
	n->tag = o->tag;
	n->next = __atomic_load_n(&in->top, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&in->top, &n->next, n, true,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
	o->p = NULL;
}

static void rp_drain(struct wl_thread *t)
{
	struct rp_node *n = __atomic_exchange_n(&rp_inbox(t, t->id)->top, NULL, __ATOMIC_ACQUIRE);
	while (n) {
		struct rp_node *next = n->next;
		if (t->run->check) {
			t->nfree++;
			if (n->size < 16 || n->size > 16383)
				wl_fail(t->run, "handed-over object's header changed", n->size, 0, 16, n->size);
		}
		wl_free(n);
		n = next;
	}
}

static void rp_thread(struct wl_thread *t)
{
	const struct wl_case *c = t->run->c;
	uint64_t n = c->a, ops = wl_scaled(t, c->ops, 1);
	uint64_t cross = t->nthreads > 1 ? c->c : 0;
	struct wl_obj *set = wl_obj_array(n);
	if (!set) {
		wl_fail(t->run, "no memory for the working set's array", n, 0, 0, 0);
	} else {
		for (uint64_t i = 0; i < n; i++)
			wl_obj_alloc(t, &set[i], rp_size(t));
	}
	wl_go(t);
	if (set) {
		for (uint64_t i = 0; i < ops; i++) {
			struct wl_obj *o = &set[wl_rng_below(&t->rng, n)];
			if (o->p && wl_rng_below(&t->rng, 1000) < cross)
				rp_hand_over(t, o);
			else
				wl_obj_free(t, o);
			wl_obj_alloc(t, o, rp_size(t));
			if (i % RP_DRAIN_EVERY == 0)
				rp_drain(t);
		}
		t->ops = ops;
	}
	/* Until every thread is done (then nothing is handed over any
	 * more), what the others still hand to this one is freed as it
	 * comes: held until the slowest thread finished, it grew without
	 * bound (2 threads at 8x scale: 14 MiB -> 860 MiB under spanheap,
	 * 170 MiB under tcmalloc), and the other thread's allocations, all
	 * on fresh pages, slowed it further. */
	wl_barrier_doing(t, rp_drain);
	wl_stop(t);
	wl_live_set_free(t, set, n);
}

const struct workload wl_rptest = {
	.name = "rptest",
	.cases = rp_cases,
	.ncases = 1,
	.setup = rp_setup,
	.thread = rp_thread,
	.teardown = rp_teardown,
};
