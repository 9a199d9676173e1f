/*
 * tests/bench/workload.h - the contract between a benchmark workload and
 * the two drivers that run it.
 *
 * A workload (tests/bench/wl_<name>.c, modelled on mimalloc-bench) is one
 * C file that only speaks this header: it allocates with wl_malloc /
 * wl_malloc_noscan / wl_free, keeps its objects as struct wl_obj, draws
 * random numbers from its thread's fixed-seed generator, and brackets the
 * part to be timed with wl_go() and wl_stop(). The same file builds
 *
 *  - on Linux (WL_HOST defined) into its own program over malloc/free,
 *    driven by tests/bench/wl_host.c, with threads standing in for CPUs;
 *    the allocator under test is swapped in with LD_PRELOAD;
 *  - into the kernel over kmalloc/kfree, driven by tests/bench/wl_kernel.c,
 *    with one thread per CPU (smp_call_n).
 *
 * A run of one case on N threads goes:
 *
 *   setup(run)          untimed, one thread: shared state (wl_malloc or
 *                       static storage; kernel stacks are small, so no big
 *                       arrays on the stack)
 *   thread(t) x N       at once, t->id = 0..N-1; each does untimed set-up,
 *                       wl_go(t) (barrier, the clock starts), the timed
 *                       work counting its allocations in t->ops, wl_stop(t)
 *                       (barrier, the clock stops), untimed clean-up
 *   teardown(run)       untimed, one thread; everything must be freed
 *
 * An "op" is one allocation made in the timed phase (its free may be timed
 * or not, see each workload); ns_per_op is wall time / ops over all threads.
 *
 * In check mode (the smoke runs) every object gets a pattern derived from
 * its tag written all over it (large objects: both ends and one byte per
 * page) and checked before it is freed; a mismatch, a NULL return or an
 * unbalanced malloc/free count fails the run with a reason. Outside check
 * mode an object only gets its first byte written (as a real program
 * would), unless the workload writes more itself.
 *
 * Only integers here: the kernel is built without floating point. Scale is
 * in parts per million (WL_SCALE_ONE = the default size of a case);
 * wl_scaled() applies it.
 */
#ifndef TESTS_BENCH_WORKLOAD_H
#define TESTS_BENCH_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef WL_HOST
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#else
#include "lib/string.h"
#include "mm/kmalloc.h"
#endif

/* ------------------------------------------------------------ allocator -- */

static inline void *wl_malloc(size_t size)
{
#ifdef WL_HOST
	return malloc(size);
#else
	return kmalloc(size, 0);
#endif
}

/* An object that holds no pointers: the kernel's tiny path for < 16 B. */
static inline void *wl_malloc_noscan(size_t size)
{
#ifdef WL_HOST
	return malloc(size);
#else
	return kmalloc(size, KM_NOSCAN);
#endif
}

static inline void wl_free(void *p)
{
#ifdef WL_HOST
	free(p);
#else
	kfree(p);
#endif
}

/* ---------------------------------------------------------- time, spin -- */

/* Nanoseconds (host) or TSC ticks (kernel; one retired instruction under
 * QEMU -icount shift=0). */
static inline uint64_t wl_now(void)
{
#ifdef WL_HOST
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#else
	uint32_t lo, hi;
	__asm__ volatile("lfence\n\trdtsc\n\tlfence" : "=a"(lo), "=d"(hi) : : "memory");
	return ((uint64_t)hi << 32) | lo;
#endif
}

/* One step of a spin-wait; *spins counts them. On Linux the thread gives
 * its core away after a while (threads may outnumber cores). */
static inline void wl_relax(unsigned *spins)
{
	__builtin_ia32_pause();
#ifdef WL_HOST
	if (++*spins >= 64) {
		*spins = 0;
		sched_yield();
	}
#else
	(void)spins;
#endif
}

#define WL_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define WL_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* ------------------------------------------------------------------ rng -- */

/* splitmix64: fixed seeds, the same sequence on both sides. */
struct wl_rng { uint64_t s; };

static inline uint64_t wl_rng_next(struct wl_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A thread's seed: FNV-1a of the workload and case names, and its id. */
static inline uint64_t wl_seed(const char *workload, const char *case_name, unsigned id)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const char *p = workload; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	for (const char *p = case_name; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	return h ^ ((uint64_t)id << 48);
}

/* Uniform in [0, n), n > 0 (multiply-shift, no division). */
static inline uint64_t wl_rng_below(struct wl_rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)wl_rng_next(r) * n) >> 64);
}

/* Uniform in [lo, hi]. */
static inline uint64_t wl_rng_range(struct wl_rng *r, uint64_t lo, uint64_t hi)
{
	return lo + wl_rng_below(r, hi - lo + 1);
}

/* ------------------------------------------------------------ the types -- */

/* One case of a workload: a name and up to four parameters, whose meaning
 * each workload documents. ops is the operation count (per thread) at
 * scale WL_SCALE_ONE. */
struct wl_case {
	const char *name;
	uint64_t ops;
	uint64_t a, b, c;
};

struct wl_barrier {
	unsigned count;      /* threads still to arrive in this round */
	unsigned generation; /* bumped when the last one arrives */
	unsigned nthreads;
};

/* What a failed check records (the first failure of a run wins). */
struct wl_failure {
	const char *what;    /* NULL while all is well */
	uint64_t size, offset, expected, seen;
};

struct workload;

/* One run of one case on nthreads threads. */
struct wl_run {
	const struct workload *wl;
	const struct wl_case *c;
	unsigned nthreads;
	uint64_t scale;          /* parts per million of the default */
	bool check;              /* smoke: fill, check, count */
	void *shared;            /* the workload's own state (setup/teardown) */
	struct wl_barrier barrier;
	uint64_t t_start, t_end; /* wl_now() at wl_go / wl_stop (thread 0) */
	struct wl_failure failure;
	int failure_claimed;
	/* Memory figures, for workloads that call wl_mem_sample(). */
	bool mem_valid;
	uint64_t mem_live_bytes;     /* live object bytes at the peak point */
	uint64_t mem_peak_bytes;     /* host: VmHWM; kernel: heap bytes */
	uint64_t mem_after_free_bytes;
	uint64_t mem_meta_bytes;     /* kernel: heap metadata */
};

/* One thread of a run (one CPU in the kernel). */
struct wl_thread {
	struct wl_run *run;
	unsigned id, nthreads;
	struct wl_rng rng;        /* seeded from the case and the thread id */
	uint64_t ops;             /* allocations in the timed phase */
	uint64_t nalloc, nfree;   /* check mode: every allocation and free */
	uint32_t seq;             /* tag source */
	void *local;              /* the workload's per-thread state */
} __attribute__((aligned(64)));

struct workload {
	const char *name;
	const struct wl_case *cases;
	unsigned ncases;
	/* Both optional (NULL). setup returns 0, or -1 when out of memory. */
	int (*setup)(struct wl_run *run);
	void (*thread)(struct wl_thread *t);
	void (*teardown)(struct wl_run *run);
};

/* --------------------------------------------------------- the helpers -- */

#define WL_SCALE_ONE 1000000u

/* x scaled by the run's scale, at least min. */
static inline uint64_t wl_run_scaled(const struct wl_run *r, uint64_t x, uint64_t min)
{
	uint64_t v = x * r->scale / WL_SCALE_ONE; /* x < 2^44: no overflow */
	return v < min ? min : v;
}

static inline uint64_t wl_scaled(const struct wl_thread *t, uint64_t x, uint64_t min)
{
	return wl_run_scaled(t->run, x, min);
}

/* Record a failure (the first one of the run is kept). */
static inline void wl_fail(struct wl_run *r, const char *what, uint64_t size,
			   uint64_t offset, uint64_t expected, uint64_t seen)
{
	if (__atomic_exchange_n(&r->failure_claimed, 1, __ATOMIC_ACQ_REL))
		return;
	r->failure.size = size;
	r->failure.offset = offset;
	r->failure.expected = expected;
	r->failure.seen = seen;
	WL_STORE(&r->failure.what, what);
}

/* Wait at t's barrier for the other threads; with work, do work(t)
 * while waiting and once more after they all arrived (for a thread whose
 * share is done but that the others still give work to: rptest's
 * inbox). */
static inline void wl_barrier_doing(struct wl_thread *t, void (*work)(struct wl_thread *))
{
	struct wl_barrier *b = &t->run->barrier;
	unsigned gen = WL_LOAD(&b->generation), spins = 0;
	if (__atomic_sub_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == 0) {
		WL_STORE(&b->count, b->nthreads);
		WL_STORE(&b->generation, gen + 1);
	} else {
		while (WL_LOAD(&b->generation) == gen) {
			if (work)
				work(t);
			wl_relax(&spins);
		}
	}
	if (work)
		work(t);
}

static inline void wl_barrier(struct wl_thread *t)
{
	wl_barrier_doing(t, NULL);
}

/* End of the untimed set-up: all threads ready, the clock starts. */
static inline void wl_go(struct wl_thread *t)
{
	wl_barrier(t);
	if (t->id == 0)
		t->run->t_start = wl_now();
}

/* End of the timed phase: all threads done, the clock stops. */
static inline void wl_stop(struct wl_thread *t)
{
	wl_barrier(t);
	if (t->id == 0)
		t->run->t_end = wl_now();
}

/* Memory figures (the mem workload). Called by thread 0 only, with the
 * other threads held at a barrier; live: object bytes live right now.
 * Provided by each driver: the host reads /proc/self/status, the kernel
 * the heap's statistics. */
enum wl_mem_point { WL_MEM_PEAK, WL_MEM_AFTER_FREE };
void wl_mem_sample(struct wl_run *r, enum wl_mem_point point, uint64_t live);
/* Thread 0 calls this now and then in the timed phase: the host driver
 * records (time, RSS) for an RSS-against-time trace; the kernel's ignores
 * it. */
void wl_mem_trace(struct wl_run *r);

/* ------------------------------------------------------------- objects -- */

/* A held object: where, how big, and the tag its pattern derives from. */
struct wl_obj {
	void *p;
	uint32_t size;
	uint32_t tag;
};

#define WL_CHECK_FULL 4096 /* objects up to this are patterned in full */

static inline uint8_t wl_pattern(uint32_t tag, uint64_t offset)
{
	uint64_t x = ((uint64_t)tag << 32 | (uint32_t)offset) * 0x9e3779b97f4a7c15ull;
	return (uint8_t)(x >> 56);
}

/* The patterned bytes of an n-byte object: all of a small one; the first
 * and last 2 KiB and one byte per 4 KiB page of a big one. Visit them with
 * for (off = 0; off < n; off = wl_next_patterned(off, n)). */
static inline uint64_t wl_next_patterned(uint64_t off, uint64_t n)
{
	if (n <= WL_CHECK_FULL || off + 1 < 2048 || off + 1 >= n - 2048)
		return off + 1;
	return off + 4096 < n - 2048 ? off + 4096 : n - 2048;
}

static inline void wl_fill(void *p, uint64_t n, uint32_t tag)
{
	uint8_t *b = p;
	for (uint64_t off = 0; off < n; off = wl_next_patterned(off, n))
		b[off] = wl_pattern(tag, off);
}

/* true when the pattern is intact; otherwise records the failure. */
static inline bool wl_verify(struct wl_run *r, const void *p, uint64_t n, uint32_t tag)
{
	const uint8_t *b = p;
	for (uint64_t off = 0; off < n; off = wl_next_patterned(off, n)) {
		if (b[off] != wl_pattern(tag, off)) {
			wl_fail(r, "object contents changed while it was live",
				n, off, wl_pattern(tag, off), b[off]);
			return false;
		}
	}
	return true;
}

/* The object has just been allocated (p may be NULL): pattern it in check
 * mode, else write its first byte. false (and a failure) on NULL. */
static inline bool wl_obj_init(struct wl_thread *t, struct wl_obj *o, void *p,
			       uint32_t size)
{
	o->p = p;
	o->size = size;
	o->tag = t->seq++ ^ (t->id << 24);
	if (!p) {
		wl_fail(t->run, "allocation returned NULL", size, 0, 0, 0);
		return false;
	}
	if (t->run->check) {
		t->nalloc++;
		wl_fill(p, size, o->tag);
	} else if (size) {
		*(volatile uint8_t *)p = (uint8_t)o->tag;
	}
	return true;
}

static inline bool wl_obj_alloc(struct wl_thread *t, struct wl_obj *o, uint32_t size)
{
	return wl_obj_init(t, o, wl_malloc(size), size);
}

static inline bool wl_obj_alloc_noscan(struct wl_thread *t, struct wl_obj *o, uint32_t size)
{
	return wl_obj_init(t, o, wl_malloc_noscan(size), size);
}

/* Check mode: verify the pattern. Then free; o becomes empty. Freeing an
 * empty wl_obj does nothing. */
static inline void wl_obj_free(struct wl_thread *t, struct wl_obj *o)
{
	if (!o->p)
		return;
	if (t->run->check) {
		t->nfree++;
		wl_verify(t->run, o->p, o->size, o->tag);
	}
	wl_free(o->p);
	o->p = NULL;
}

/* An array of n empty objects from the heap (NULL when out of memory). */
static inline struct wl_obj *wl_obj_array(uint64_t n)
{
	struct wl_obj *a = wl_malloc(n * sizeof(*a));
	if (a)
		memset(a, 0, n * sizeof(*a));
	return a;
}

/* A thread's live set: the array of n objects, none allocated yet; NULL
 * (and the run fails, saying so) when there is no memory for it. */
static inline struct wl_obj *wl_live_set_new(struct wl_thread *t, uint64_t n)
{
	struct wl_obj *set = wl_obj_array(n);
	if (!set)
		wl_fail(t->run, "no memory for the live set's array", n, 0, 0, 0);
	return set;
}

/* Free every object of a live set (empty slots are skipped), then the set. */
static inline void wl_live_set_free(struct wl_thread *t, struct wl_obj *set, uint64_t n)
{
	if (!set)
		return;
	for (uint64_t i = 0; i < n; i++)
		wl_obj_free(t, &set[i]);
	wl_free(set);
}

/* ------------------------------------------------------ the registry -- */

/* Every workload, one per tests/bench/wl_<name>.c. */
extern const struct workload wl_pair, wl_glibc_simple, wl_alloc_test, wl_larson,
	wl_xmalloc_test, wl_cache_scratch, wl_shbench, wl_rptest, wl_malloc_large,
	wl_mem;

#endif
