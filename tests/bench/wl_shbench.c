/*
 * tests/bench/wl_shbench.c - "shbench": batches of mixed sizes freed in
 * different orders, after MicroQuill's SmartHeap benchmarks sh6bench
 * (case sh6: each thread frees its own batches) and sh8bench (case sh8:
 * every batch is freed by the next thread).
 *
 * Each round, a thread allocates a batch of a objects whose sizes sweep
 * 1..b bytes in a scrambled order (i * 37 + round * 13 mod b), then the
 * batch is freed in one of three orders, rotating by round: in allocation
 * order, in reverse, or odd positions first then even ones. In sh8 a
 * thread hands its batch to thread id+1 (mod N) through a one-slot
 * mailbox and frees the batch handed to it by thread id-1: every object
 * is freed by another thread than its allocator (with one thread, by
 * itself). A thread cycles through three batch arrays, so the one it
 * fills is never one its neighbour is still freeing. One op = one object
 * allocated and freed; each thread does ops of them (whole batches).
 */
#include "tests/bench/workload.h"

static const struct wl_case sh_cases[] = {
	/* a = batch size, b = largest size, c = 1: cross-thread (sh8) */
	{ "sh6", 4000000u, 500, 1000, 0 },
	{ "sh8", 4000000u, 500, 1000, 1 },
};

struct sh_mailbox {
	struct wl_obj *batch; /* handed over, waiting to be freed; or NULL */
} __attribute__((aligned(64)));

struct sh_shared {
	void *box_mem;            /* the mailboxes, one per thread, ... */
	struct sh_mailbox *boxes; /* ... each on its own cache line */
	struct wl_obj **arrays;   /* three batch arrays per thread */
};

static void sh_teardown(struct wl_run *r)
{
	struct sh_shared *sh = r->shared;
	if (sh->arrays)
		for (unsigned i = 0; i < 3 * r->nthreads; i++)
			wl_free(sh->arrays[i]);
	wl_free(sh->arrays);
	wl_free(sh->box_mem);
	wl_free(sh);
}

static int sh_setup(struct wl_run *r)
{
	struct sh_shared *sh = wl_malloc(sizeof(*sh));
	if (!sh)
		return -1;
	r->shared = sh;
	sh->box_mem = wl_malloc((r->nthreads + 1) * sizeof(struct sh_mailbox));
	sh->arrays = wl_malloc(3 * r->nthreads * sizeof(*sh->arrays));
	if (sh->arrays)
		memset(sh->arrays, 0, 3 * r->nthreads * sizeof(*sh->arrays));
	if (!sh->box_mem || !sh->arrays) {
		sh_teardown(r);
		return -1;
	}
	sh->boxes = (struct sh_mailbox *)(((uintptr_t)sh->box_mem + 63) & ~(uintptr_t)63);
	for (unsigned i = 0; i < r->nthreads; i++)
		sh->boxes[i].batch = NULL;
	for (unsigned i = 0; i < 3 * r->nthreads; i++) {
		if (!(sh->arrays[i] = wl_obj_array(r->c->a))) {
			sh_teardown(r);
			return -1;
		}
	}
	return 0;
}

static void sh_alloc_batch(struct wl_thread *t, struct wl_obj *batch, uint64_t round)
{
	uint64_t n = t->run->c->a, max = t->run->c->b;
	for (uint64_t i = 0; i < n; i++)
		wl_obj_alloc(t, &batch[i], (uint32_t)(1 + (i * 37 + round * 13) % max));
}

static void sh_free_batch(struct wl_thread *t, struct wl_obj *batch, uint64_t round)
{
	uint64_t n = t->run->c->a;
	switch (round % 3) {
	case 0:
		for (uint64_t i = 0; i < n; i++)
			wl_obj_free(t, &batch[i]);
		break;
	case 1:
		for (uint64_t i = n; i > 0; i--)
			wl_obj_free(t, &batch[i - 1]);
		break;
	default:
		for (uint64_t i = 1; i < n; i += 2)
			wl_obj_free(t, &batch[i]);
		for (uint64_t i = 0; i < n; i += 2)
			wl_obj_free(t, &batch[i]);
		break;
	}
}

/* Hand batch to the next thread, then take (and free) ours. */
static void sh_pass_on(struct wl_thread *t, struct wl_obj *batch, uint64_t round)
{
	struct sh_shared *sh = t->run->shared;
	struct sh_mailbox *next = &sh->boxes[(t->id + 1) % t->nthreads];
	struct sh_mailbox *mine = &sh->boxes[t->id];
	unsigned spins = 0;
	while (WL_LOAD(&next->batch))
		wl_relax(&spins);
	WL_STORE(&next->batch, batch);
	struct wl_obj *given;
	while (!(given = WL_LOAD(&mine->batch)))
		wl_relax(&spins);
	WL_STORE(&mine->batch, NULL);
	sh_free_batch(t, given, round);
}

static void sh_thread(struct wl_thread *t)
{
	const struct wl_case *c = t->run->c;
	struct sh_shared *sh = t->run->shared;
	struct wl_obj **arrays = &sh->arrays[3 * t->id];
	uint64_t rounds = wl_scaled(t, c->ops, c->a) / c->a;

	wl_go(t);
	for (uint64_t r = 0; r < rounds; r++) {
		struct wl_obj *batch = arrays[r % 3];
		sh_alloc_batch(t, batch, r);
		if (c->c)
			sh_pass_on(t, batch, r);
		else
			sh_free_batch(t, batch, r);
	}
	t->ops = rounds * c->a;
	wl_stop(t);
}

const struct workload wl_shbench = {
	.name = "shbench",
	.cases = sh_cases,
	.ncases = sizeof(sh_cases) / sizeof(sh_cases[0]),
	.setup = sh_setup,
	.thread = sh_thread,
	.teardown = sh_teardown,
};
