/*
 * tests/bench/wl_xmalloc_test.c - "xmalloc-test": pure producer threads
 * allocate, pure consumer threads free (after Lever and Boreham's
 * xmalloc-test in mimalloc-bench): every object crosses threads.
 *
 * With N threads, the (N+1)/2 even-numbered ones produce and the N/2 odd
 * ones consume, through one bounded multi-producer multi-consumer queue
 * (Vyukov's: a ring of cells, each with a sequence number, claimed with a
 * compare-and-swap on the head or tail; lock-free, __atomic builtins).
 * Producers allocate objects of 16..b bytes and push them, spinning while
 * the queue is full; each consumer pops and frees its quota (the quotas
 * add up to the total, so all stop exactly when everything is freed).
 * With one thread, it produces a batch then consumes it, in turn.
 * One op = one object made and freed; the run makes ops x N of them.
 */
#include "tests/bench/workload.h"

#define XM_QUEUE 4096 /* cells, a power of two */
#define XM_BATCH 256  /* one thread alone: produce this many, then consume */

static const struct wl_case xmalloc_cases[] = {
	{ "producer-consumer", 3000000u, 0, 512, 0 }, /* b = largest size */
};

struct xm_cell {
	uint64_t seq;
	struct wl_obj obj;
};

struct xm_queue {
	uint64_t head __attribute__((aligned(64))); /* next cell to push */
	uint64_t tail __attribute__((aligned(64))); /* next cell to pop */
	struct xm_cell cells[XM_QUEUE] __attribute__((aligned(64)));
};

static int xm_setup(struct wl_run *r)
{
	struct xm_queue *q = wl_malloc(sizeof(*q) + 64);
	if (!q)
		return -1;
	r->shared = q;
	/* Align by hand: the heap need not give 64-byte alignment. */
	q = (struct xm_queue *)(((uintptr_t)q + 63) & ~(uintptr_t)63);
	q->head = q->tail = 0;
	for (uint64_t i = 0; i < XM_QUEUE; i++)
		q->cells[i].seq = i;
	return 0;
}

static struct xm_queue *xm_queue_of(struct wl_run *r)
{
	return (struct xm_queue *)(((uintptr_t)r->shared + 63) & ~(uintptr_t)63);
}

static void xm_teardown(struct wl_run *r)
{
	wl_free(r->shared);
}

static bool xm_push(struct xm_queue *q, const struct wl_obj *o)
{
	uint64_t pos = __atomic_load_n(&q->head, __ATOMIC_RELAXED);
	for (;;) {
		struct xm_cell *cell = &q->cells[pos & (XM_QUEUE - 1)];
		int64_t dif = (int64_t)(WL_LOAD(&cell->seq) - pos);
		if (dif == 0) {
			if (__atomic_compare_exchange_n(&q->head, &pos, pos + 1, true,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
				cell->obj = *o;
				WL_STORE(&cell->seq, pos + 1);
				return true;
			}
		} else if (dif < 0) {
			return false; /* full */
		} else {
			pos = __atomic_load_n(&q->head, __ATOMIC_RELAXED);
		}
	}
}

static bool xm_pop(struct xm_queue *q, struct wl_obj *o)
{
	uint64_t pos = __atomic_load_n(&q->tail, __ATOMIC_RELAXED);
	for (;;) {
		struct xm_cell *cell = &q->cells[pos & (XM_QUEUE - 1)];
		int64_t dif = (int64_t)(WL_LOAD(&cell->seq) - (pos + 1));
		if (dif == 0) {
			if (__atomic_compare_exchange_n(&q->tail, &pos, pos + 1, true,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
				*o = cell->obj;
				WL_STORE(&cell->seq, pos + XM_QUEUE);
				return true;
			}
		} else if (dif < 0) {
			return false; /* empty */
		} else {
			pos = __atomic_load_n(&q->tail, __ATOMIC_RELAXED);
		}
	}
}

static void xm_produce(struct wl_thread *t, struct xm_queue *q, uint64_t n)
{
	unsigned spins = 0;
	struct wl_obj o;
	for (uint64_t i = 0; i < n; i++) {
		/* Pushed even when NULL (the failure is recorded): the
		 * consumers count on every item. */
		wl_obj_alloc(t, &o, (uint32_t)wl_rng_range(&t->rng, 16, t->run->c->b));
		while (!xm_push(q, &o))
			wl_relax(&spins);
	}
}

static void xm_consume(struct wl_thread *t, struct xm_queue *q, uint64_t n)
{
	unsigned spins = 0;
	struct wl_obj o;
	for (uint64_t i = 0; i < n; i++) {
		while (!xm_pop(q, &o))
			wl_relax(&spins);
		wl_obj_free(t, &o);
	}
}

static void xmalloc_thread(struct wl_thread *t)
{
	struct xm_queue *q = xm_queue_of(t->run);
	uint64_t per_thread = wl_scaled(t, t->run->c->ops, 1);
	uint64_t total = per_thread * t->nthreads;
	unsigned producers = (t->nthreads + 1) / 2, consumers = t->nthreads / 2;

	wl_go(t);
	if (t->nthreads == 1) {
		for (uint64_t done = 0; done < total; done += XM_BATCH) {
			uint64_t k = total - done < XM_BATCH ? total - done : XM_BATCH;
			xm_produce(t, q, k);
			xm_consume(t, q, k);
		}
		t->ops = total;
	} else if (t->id % 2 == 0) {
		/* Producer k of P makes total/P, the first total%P one more. */
		unsigned k = t->id / 2;
		uint64_t n = total / producers + (k < total % producers);
		xm_produce(t, q, n);
		t->ops = n;
	} else {
		unsigned k = t->id / 2;
		xm_consume(t, q, total / consumers + (k < total % consumers));
	}
	wl_stop(t);
}

const struct workload wl_xmalloc_test = {
	.name = "xmalloc-test",
	.cases = xmalloc_cases,
	.ncases = 1,
	.setup = xm_setup,
	.thread = xmalloc_thread,
	.teardown = xm_teardown,
};
