/*
 * tests/bench/wl_mem.c - "mem": how much memory the allocator holds for a
 * given live set, at the peak and after a large free.
 *
 * The threads together fill a live set of a bytes (200 MiB at full scale;
 * scaled like the op counts) with mixed objects: 60 % of 16..255 bytes,
 * 30 % of 256..4095, 9 % of 4 KiB..64 KiB - 1, 1 % of 64 KiB..1 MiB - 1,
 * each written in full (as a program would). Then each frees a random
 * 70 % of its objects; the driver samples memory (after-free figure); then
 * each allocates again up to its share, and the driver samples again (the
 * peak figures, with the live bytes at that point). On Linux: peak RSS
 * (VmHWM), RSS after the free, RSS per live byte; in the kernel: heap
 * bytes and metadata per live byte. Thread 0 also has the driver trace
 * RSS every 2 MiB it allocates or frees (Linux: SAMPLE lines, RSS against
 * time). The timed phase is all three steps; one op = one allocation.
 */
#include "tests/bench/workload.h"

static const struct wl_case mem_cases[] = {
	{ "mixed-200m", 200u << 20, 0, 0, 0 }, /* ops: live bytes wanted */
};

struct mem_shared {
	uint64_t live; /* bytes, summed over the threads (atomic) */
};

static int mem_setup(struct wl_run *r)
{
	struct mem_shared *m = wl_malloc(sizeof(*m));
	if (!m)
		return -1;
	m->live = 0;
	r->shared = m;
	return 0;
}

static void mem_teardown(struct wl_run *r)
{
	wl_free(r->shared);
}

static uint32_t mem_size(struct wl_thread *t)
{
	uint64_t k = wl_rng_below(&t->rng, 100);
	if (k < 60)
		return (uint32_t)wl_rng_range(&t->rng, 16, 255);
	if (k < 90)
		return (uint32_t)wl_rng_range(&t->rng, 256, 4095);
	if (k < 99)
		return (uint32_t)wl_rng_range(&t->rng, 4096, 65535);
	return (uint32_t)wl_rng_range(&t->rng, 65536, (1u << 20) - 1);
}

#define MEM_TRACE_EVERY (2u << 20) /* bytes allocated or freed by thread 0 */

/* Thread 0 traces memory every MEM_TRACE_EVERY bytes of churn. */
static void mem_churned(struct wl_thread *t, uint64_t *churn, uint64_t bytes)
{
	if (t->id != 0)
		return;
	*churn += bytes;
	if (*churn >= MEM_TRACE_EVERY) {
		*churn = 0;
		wl_mem_trace(t->run);
	}
}

/* Allocate into empty slots until this thread holds *live >= share. */
static uint64_t mem_fill(struct wl_thread *t, struct wl_obj *set, uint64_t n,
			 uint64_t share, uint64_t *live, uint64_t *churn)
{
	uint64_t made = 0;
	for (uint64_t i = 0; i < n && *live < share; i++) {
		if (set[i].p)
			continue;
		if (!wl_obj_alloc(t, &set[i], mem_size(t)))
			continue;
		if (!t->run->check)
			memset(set[i].p, (int)set[i].tag, set[i].size);
		*live += set[i].size;
		made++;
		mem_churned(t, churn, set[i].size);
	}
	return made;
}

static void mem_thread(struct wl_thread *t)
{
	struct mem_shared *m = t->run->shared;
	uint64_t total = wl_scaled(t, t->run->c->ops, 1 << 20);
	uint64_t share = total / t->nthreads;
	uint64_t n = share / 512 + 1024; /* slots: about 20 x the expected count */
	uint64_t live = 0, ops = 0, churn = 0;
	struct wl_obj *set = wl_obj_array(n);
	if (!set)
		wl_fail(t->run, "no memory for the slot array", n, 0, 0, 0);

	wl_go(t);
	if (set) {
		ops += mem_fill(t, set, n, share, &live, &churn);
		for (uint64_t i = 0; i < n; i++) {
			if (set[i].p && wl_rng_below(&t->rng, 100) < 70) {
				live -= set[i].size;
				mem_churned(t, &churn, set[i].size);
				wl_obj_free(t, &set[i]);
			}
		}
	}
	__atomic_add_fetch(&m->live, live, __ATOMIC_RELAXED);
	wl_barrier(t);
	if (t->id == 0) {
		wl_mem_trace(t->run);
		wl_mem_sample(t->run, WL_MEM_AFTER_FREE, WL_LOAD(&m->live));
	}
	wl_barrier(t);
	uint64_t before = live;
	if (set)
		ops += mem_fill(t, set, n, share, &live, &churn);
	__atomic_add_fetch(&m->live, live - before, __ATOMIC_RELAXED);
	wl_barrier(t);
	if (t->id == 0) {
		wl_mem_trace(t->run);
		wl_mem_sample(t->run, WL_MEM_PEAK, WL_LOAD(&m->live));
	}
	t->ops = ops;
	wl_stop(t);
	wl_live_set_free(t, set, n);
}

const struct workload wl_mem = {
	.name = "mem",
	.cases = mem_cases,
	.ncases = 1,
	.setup = mem_setup,
	.thread = mem_thread,
	.teardown = mem_teardown,
};
