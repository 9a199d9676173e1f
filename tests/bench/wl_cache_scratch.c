/*
 * tests/bench/wl_cache_scratch.c - "cache-scratch": passive false sharing
 * (Hoard's cache-scratch, in mimalloc-bench).
 *
 * Set-up allocates one small object (a bytes) per thread, all from the one
 * set-up thread, so they sit side by side, sharing cache lines. Each
 * thread is handed its object, frees it, then ops times: allocates an
 * object of the same size, writes every byte of it b times, frees it. An
 * allocator that hands a thread back the very object it was given (whose
 * line another thread's object shares) makes the threads' writes fight
 * over cache lines: "passive" false sharing, caused by a free, not by the
 * program. One op = one allocate + b writes per byte + free; with one
 * thread there is nothing to share, which is the baseline.
 */
#include "tests/bench/workload.h"

static const struct wl_case scratch_cases[] = {
	{ "8b-1000w", 50000u, 8, 1000, 0 }, /* a = object size, b = writes */
};

/* Shared: one object per thread, all from the set-up thread. */
static int scratch_setup(struct wl_run *r)
{
	struct wl_obj *objs = wl_obj_array(r->nthreads);
	if (!objs)
		return -1;
	/* Allocated here, freed by the threads: counted by thread 0 below. */
	for (unsigned i = 0; i < r->nthreads; i++) {
		objs[i].p = wl_malloc(r->c->a);
		objs[i].size = (uint32_t)r->c->a;
		objs[i].tag = 0xc0de0000u + i;
		if (!objs[i].p)
			wl_fail(r, "allocation returned NULL", r->c->a, 0, 0, 0);
		else if (r->check)
			wl_fill(objs[i].p, objs[i].size, objs[i].tag);
	}
	r->shared = objs;
	return 0;
}

static void scratch_teardown(struct wl_run *r)
{
	wl_free(r->shared);
}

/* Write every byte of the object `writes` times; in check mode, see that
 * the last round's values are all there. */
static void scratch_write(struct wl_thread *t, struct wl_obj *o, uint64_t writes)
{
	volatile uint8_t *b = o->p;
	for (uint64_t w = 0; w < writes; w++)
		for (uint32_t k = 0; k < o->size; k++)
			b[k] = (uint8_t)(w + k);
	if (!t->run->check)
		return;
	for (uint32_t k = 0; k < o->size; k++) {
		uint8_t want = (uint8_t)(writes - 1 + k);
		if (b[k] != want) {
			wl_fail(t->run, "written object changed under its owner",
				o->size, k, want, b[k]);
			break;
		}
	}
	wl_fill(o->p, o->size, o->tag); /* what wl_obj_free checks */
}

static void scratch_thread(struct wl_thread *t)
{
	const struct wl_case *c = t->run->c;
	struct wl_obj *given = &((struct wl_obj *)t->run->shared)[t->id];
	uint64_t ops = wl_scaled(t, c->ops, 1), writes = c->b;
	struct wl_obj o;

	if (t->run->check && t->id == 0)
		t->nalloc += t->nthreads; /* the set-up's objects */
	wl_go(t);
	wl_obj_free(t, given);
	for (uint64_t i = 0; i < ops; i++) {
		if (!wl_obj_alloc(t, &o, (uint32_t)c->a))
			continue;
		scratch_write(t, &o, writes);
		wl_obj_free(t, &o);
	}
	t->ops = ops;
	wl_stop(t);
}

const struct workload wl_cache_scratch = {
	.name = "cache-scratch",
	.cases = scratch_cases,
	.ncases = 1,
	.setup = scratch_setup,
	.thread = scratch_thread,
	.teardown = scratch_teardown,
};
