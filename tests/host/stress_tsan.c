/*
 * tests/host/stress_tsan.c - the heap under real concurrency, watched by
 * ThreadSanitizer.
 *
 * Threads stand in for CPUs (the hosted platform gives each thread its own
 * mcache slot). Each thread allocates objects of every kind - tiny, every
 * small class, large - fills each with a pattern derived from a unique id,
 * frees some itself, resizes some, and hands the others through a
 * single-producer single-consumer ring to the next thread, which checks
 * the pattern and frees them: the cross-CPU free that per-CPU caches find
 * hardest, including tiny objects whose 16-byte block was carved on
 * another thread. At the end every ring is drained, every thread exits
 * (its mcache is drained by the platform), and the main thread drains
 * the heap and runs mheap_verify(). Then one thread allocates while the
 * main thread reads kmem_get_stats, which must stay exact; the heap's
 * lock keeps as many threads out of each other; two threads of different
 * mheap arenas free each other's large objects and one thread's frees
 * bring the other arena's retained chunks within the policy's bound, and
 * one arena adopts a chunk another retained, and with the platform capped
 * one arena's allocation takes what another retained;
 * last, tiny double frees race the restarts of their blocks.
 *
 * Usage: stress-tsan [--threads N] [--ops N] [--rounds N] [--tiny-rounds N]
 * [--tsan-log PATH] (--ops per thread and round; each round runs fresh
 * threads, so the slots of exited threads are reused; --tiny-rounds for
 * the tiny double frees that race restarts, 20 000 by default). Built
 * without sanitizers too (stress-native: make host-stress-native), where
 * those races come at full speed and a million rounds take seconds.
 * With --tsan-log (the same path as TSAN_OPTIONS=log_path=PATH), a report
 * file written by ThreadSanitizer fails the "no data race" check. Prints
 * one line per check and ends with "N passed, N failed".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>
#include "mm/kmalloc.h"
#include "mm/mlock.h"
#include "mm/mheap.h"
#include "mm/mcache.h"
#include "tests/kernel/heap_align.h"   /* the promised alignment */
#include "mm/sizeclasses.h"

#define MAX_THREADS 32
#define RING_SIZE 256 /* a power of two */
#define LOCAL_SLOTS 256
#define FULL_CHECK 4096

struct obj {
	void *p;
	size_t size;
	uint64_t id;
};

/* Thread t produces into ring[t]; thread (t + 1) % n consumes it. */
struct ring {
	_Atomic uint64_t head; /* next slot the producer writes */
	char pad1[56];
	_Atomic uint64_t tail; /* next slot the consumer reads */
	char pad2[56];
	struct obj slot[RING_SIZE];
};

struct worker {
	pthread_t thread;
	int index;
	uint64_t seed;
	/* results */
	uint64_t allocs, frees_local, frees_remote, passed, reallocs;
	uint64_t checked, corrupt, nulls, misaligned;
};

static int nthreads = 8;
static uint64_t ops_per_thread = 40000;
static int rounds = 2;
static struct ring rings[MAX_THREADS];
static struct worker workers[MAX_THREADS];
static pthread_barrier_t done_producing;

/* ---------------------------------------------------------------- pattern */

static inline uint64_t pattern_word(uint64_t id, uint64_t k)
{
	uint64_t x = (id << 32 ^ k) * 0x9e3779b97f4a7c15ULL + id;
	x ^= x >> 29;
	return x * 0xbf58476d1ce4e5b9ULL ^ (x >> 31);
}

static inline uint8_t pattern_byte(uint64_t id, size_t i)
{
	return (uint8_t)(pattern_word(id, i >> 3) >> ((i & 7) * 8));
}

static void fill_range(uint8_t *b, uint64_t id, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		b[i] = pattern_byte(id, i);
}

static bool check_range(const uint8_t *b, uint64_t id, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (b[i] != pattern_byte(id, i))
			return false;
	return true;
}

/* Objects above FULL_CHECK bytes: the first and last KiB only. */
static void fill(void *p, uint64_t id, size_t size)
{
	if (size <= FULL_CHECK) {
		fill_range(p, id, 0, size);
	} else {
		fill_range(p, id, 0, 1024);
		fill_range(p, id, size - 1024, size);
	}
}

static bool check(const void *p, uint64_t id, size_t size)
{
	if (size <= FULL_CHECK)
		return check_range(p, id, 0, size);
	return check_range(p, id, 0, 1024) &&
	       check_range(p, id, size - 1024, size);
}

/* -------------------------------------------------------------------- rng */

static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static inline uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return rng_next(s) % n;
}

/* Tiny 30%, every small class 65% (by class, not by byte), large 5%. */
static size_t pick_size(uint64_t *rng, unsigned *flags)
{
	uint64_t r = rng_below(rng, 100);
	*flags = rng_below(rng, 2) ? KM_NOSCAN : 0;
	if (r < 30) {
		*flags = KM_NOSCAN;
		return 1 + rng_below(rng, TINY_SIZE - 1);
	}
	if (r < 95) {
		unsigned c = 1 + (unsigned)rng_below(rng, NUM_SIZE_CLASSES - 1);
		size_t lo = c > 1 ? class_to_size[c - 1] + 1u : 1;
		return lo + rng_below(rng, class_to_size[c] - lo + 1);
	}
	return MAX_SMALL_SIZE + 1 + rng_below(rng, 256 * 1024);
}

/* ------------------------------------------------------------------ rings */

static bool ring_push(struct ring *r, struct obj o)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	if (head - tail == RING_SIZE)
		return false;
	r->slot[head % RING_SIZE] = o;
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	return true;
}

static bool ring_pop(struct ring *r, struct obj *o)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	if (head == tail)
		return false;
	*o = r->slot[tail % RING_SIZE];
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	return true;
}

/* ----------------------------------------------------------------- worker */

static void check_and_free(struct worker *w, struct obj *o, bool remote)
{
	w->checked++;
	if (!check(o->p, o->id, o->size)) {
		if (w->corrupt++ == 0)
			fprintf(stderr, "thread %d: object %p (id %#llx, %zu bytes) "
				"changed\n", w->index, o->p,
				(unsigned long long)o->id, o->size);
	}
	kfree(o->p);
	o->p = NULL;
	if (remote)
		w->frees_remote++;
	else
		w->frees_local++;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct obj local[LOCAL_SLOTS];
	struct ring *out = &rings[w->index];
	struct ring *in = &rings[(w->index + nthreads - 1) % nthreads];
	uint64_t rng = w->seed, next_id = (uint64_t)w->index << 48;

	memset(local, 0, sizeof(local));
	for (uint64_t op = 0; op < ops_per_thread; op++) {
		struct obj o;
		/* Consume what the previous thread sent, most of the time. */
		if (rng_below(&rng, 4) != 0 && ring_pop(in, &o))
			check_and_free(w, &o, true);

		struct obj *s = &local[rng_below(&rng, LOCAL_SLOTS)];
		if (!s->p) {
			unsigned flags;
			size_t size = pick_size(&rng, &flags);
			void *p = rng_below(&rng, 8) == 0
					  ? kmalloc_aligned(size, (size_t)1 << rng_below(&rng, 13), flags)
					  : kmalloc(size, flags);
			if (!p) {
				w->nulls++;
				continue;
			}
			/* Non-tiny: aligned to the largest power of two
			 * dividing the class size, at least 8. */
			if (!((flags & KM_NOSCAN) && size < TINY_SIZE) &&
			    (uintptr_t)p % heap_expected_align(p, size, flags))
				w->misaligned++;
			w->allocs++;
			*s = (struct obj){ p, size, next_id++ };
			fill(p, s->id, size);
			continue;
		}
		uint64_t what = rng_below(&rng, 10);
		if (what < 5) {
			/* Hand it to the next thread (free it here if full). */
			if (ring_push(out, *s)) {
				w->passed++;
				s->p = NULL;
			} else {
				check_and_free(w, s, false);
			}
		} else if (what < 8) {
			check_and_free(w, s, false);
		} else {
			unsigned flags;
			size_t size = pick_size(&rng, &flags);
			w->checked++;
			if (!check(s->p, s->id, s->size))
				w->corrupt++;
			void *q = krealloc(s->p, size, flags);
			if (!q) {
				w->nulls++;
				continue;
			}
			size_t keep = size < s->size ? size : s->size;
			if (!check_range(q, s->id, 0, keep < 1024 ? keep : 1024))
				w->corrupt++;
			w->reallocs++;
			s->p = q;
			s->size = size;
			fill(q, s->id, size);
		}
	}
	/* Every producer stops, then every consumer empties its ring. */
	pthread_barrier_wait(&done_producing);
	struct obj o;
	while (ring_pop(in, &o))
		check_and_free(w, &o, true);
	for (int i = 0; i < LOCAL_SLOTS; i++)
		if (local[i].p)
			check_and_free(w, &local[i], false);
	kmem_drain_this_cpu();
	return NULL;
}

/* ----------------------------------------------------------------- checks */

static int npassed, nfailed, ncheck;

static void report(bool ok, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void report(bool ok, const char *fmt, ...)
{
	va_list ap;
	printf("%sok %d ", ok ? "" : "not ", ++ncheck);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (ok)
		npassed++;
	else
		nfailed++;
}

/*
 * kmem_get_stats while another thread allocates and frees: allocations
 * are counted in bulk (mm/mcache.h): nmalloc counts a cache word's slots
 * as the word is loaded and the reader takes off those still unused; a
 * reader that missed the second part, or saw one of the two change
 * without the other, would be off by up to 64 (tiny objects, counted one
 * by one, ride along). The
 * allocator makes as many kmalloc/kfree pairs as the reader has allowed,
 * a 64-byte object and an 8-byte KM_NOSCAN one (tiny) in turn, and
 * publishes how many of each have returned. Every other read waits for it
 * to stop (the counts must then be exact); the others race with it (each
 * count must lie between what had returned before the read and one more
 * than after).
 */
#define STATS_READS 400
static _Atomic uint64_t stats_allowed, stats_allocs, stats_frees;
static _Atomic int stats_stop;

static void *stats_allocator(void *arg)
{
	(void)arg;
	for (uint64_t i = 0; !atomic_load_explicit(&stats_stop, memory_order_relaxed);) {
		if (i == atomic_load_explicit(&stats_allowed, memory_order_acquire))
			continue;
		void *p = i % 2 ? kmalloc(8, KM_NOSCAN) : kmalloc(64, 0);
		atomic_store_explicit(&stats_allocs, ++i, memory_order_release);
		kfree(p);
		atomic_store_explicit(&stats_frees, i, memory_order_release);
	}
	return NULL;
}

/* Is count within what the allocator had done before and after the read
 * (exactly, for a quiet read)? Records the worst miss. */
static bool stats_within(uint64_t n, uint64_t before, uint64_t after, bool quiet,
			 uint64_t *worst)
{
	if (n >= before && n <= after + (quiet ? 0 : 1))
		return true;
	uint64_t off = n < before ? before - n : n - after;
	*worst = off > *worst ? off : *worst;
	return false;
}

static void check_stats_while_allocating(void)
{
	struct kmem_stats st;
	kmem_get_stats(&st);
	uint64_t base_m = st.nmalloc, base_f = st.nfree, outside = 0, worst = 0, rng = 42;
	pthread_t t;
	if (pthread_create(&t, NULL, stats_allocator, NULL)) {
		report(false, "kmem_get_stats while a thread allocates: pthread_create failed");
		return;
	}
	for (unsigned r = 0; r < STATS_READS; r++) {
		bool quiet = r % 2;
		uint64_t allowed = atomic_load_explicit(&stats_allowed, memory_order_relaxed) +
				   1 + rng_below(&rng, 150);
		atomic_store_explicit(&stats_allowed, allowed, memory_order_release);
		if (quiet)
			while (atomic_load_explicit(&stats_frees, memory_order_acquire) != allowed)
				;
		uint64_t m0 = atomic_load_explicit(&stats_allocs, memory_order_acquire);
		uint64_t f0 = atomic_load_explicit(&stats_frees, memory_order_acquire);
		kmem_get_stats(&st);
		uint64_t m1 = atomic_load_explicit(&stats_allocs, memory_order_acquire);
		uint64_t f1 = atomic_load_explicit(&stats_frees, memory_order_acquire);
		bool ok = stats_within(st.nmalloc - base_m, m0, m1, quiet, &worst);
		ok = stats_within(st.nfree - base_f, f0, f1, quiet, &worst) && ok;
		outside += !ok;
	}
	atomic_store_explicit(&stats_stop, 1, memory_order_relaxed);
	pthread_join(t, NULL);
	report(outside == 0,
	       "kmem_get_stats exact while a thread allocates and frees (64 B and tiny): %d reads "
	       "over %llu pairs, %llu off (by up to %llu)", STATS_READS,
	       (unsigned long long)atomic_load_explicit(&stats_allocs, memory_order_relaxed),
	       (unsigned long long)outside, (unsigned long long)worst);
}

/*
 * Tiny double frees racing the block's restart (mm/tiny.pml's two races).
 * Each round the owner fills a fresh block with two 8-byte KM_NOSCAN
 * objects, frees the first, hands it to a second thread, and frees the
 * second, so that the block starts over while the second thread frees the
 * first object again. Then it fills the block with a 4-byte object, kept
 * alive for TINY_RACE_KEEP rounds with its contents checked, and a 12-byte
 * one freed at once; the next round's first object opens a new block and
 * retires this one. Every second free must be reported exactly once, no
 * kept object may change (a block given back with a live object in it is
 * handed out again and written over), and the heap must verify
 * afterwards. The reports are many: stderr (mm_log) is silenced for the
 * run.
 */
#define TINY_RACE_KEEP 8
static _Atomic(void *) tiny_race_box;
static _Atomic int tiny_race_done;
static _Atomic uint64_t tiny_race_doubles;
static uint64_t tiny_race_rounds = 20000;

static void *tiny_race_freer(void *arg)
{
	(void)arg;
	for (;;) {
		void *p = atomic_exchange_explicit(&tiny_race_box, NULL, memory_order_acquire);
		if (p) {
			kfree(p);   /* the second free */
			atomic_fetch_add_explicit(&tiny_race_doubles, 1, memory_order_relaxed);
		} else if (atomic_load_explicit(&tiny_race_done, memory_order_acquire)) {
			return NULL;
		}
	}
}

static void check_tiny_double_frees_racing_restarts(void)
{
	struct kmem_stats st;
	kmem_get_stats(&st);
	uint64_t bad0 = st.bad_frees, inuse0 = st.objects_inuse, changed = 0, offered = 0;
	uint32_t *keep[TINY_RACE_KEEP] = { 0 };
	uint32_t keep_id[TINY_RACE_KEEP] = { 0 };
	pthread_t t;
	if (pthread_create(&t, NULL, tiny_race_freer, NULL)) {
		report(false, "tiny double frees racing restarts: pthread_create failed");
		return;
	}
	fflush(stderr);
	int saved = dup(2), devnull = open("/dev/null", O_WRONLY);
	if (saved >= 0 && devnull >= 0)
		dup2(devnull, 2);
	for (uint32_t r = 0; r < tiny_race_rounds; r++) {
		uint64_t *a = kmalloc(8, KM_NOSCAN), *b = kmalloc(8, KM_NOSCAN);
		if (!a || !b) {
			kfree(a);
			kfree(b);
			continue;
		}
		*a = r;
		*b = ~(uint64_t)r;
		kfree(a);
		/* Offered only when the box is empty: the freer is waiting. */
		void *expect = NULL;
		if (atomic_compare_exchange_strong_explicit(&tiny_race_box, &expect, a,
							    memory_order_release,
							    memory_order_relaxed)) {
			offered++;
			/* Until the freer has taken it, and a few turns more
			 * on odd rounds: its free then meets the restart. */
			while (atomic_load_explicit(&tiny_race_box, memory_order_acquire))
				;
			for (volatile uint32_t spin = r % 2 ? r % 64 : 0; spin; spin--)
				;
		}
		kfree(b);   /* the block starts over here */
		unsigned k = r % TINY_RACE_KEEP;
		if (keep[k]) {
			changed += *keep[k] != keep_id[k];
			kfree(keep[k]);
		}
		keep[k] = kmalloc(4, KM_NOSCAN);
		keep_id[k] = r * 2654435761u;
		if (keep[k])
			*keep[k] = keep_id[k];
		kfree(kmalloc(12, KM_NOSCAN));   /* the block is full: the next opens one */
	}
	atomic_store_explicit(&tiny_race_done, 1, memory_order_release);
	pthread_join(t, NULL);
	for (unsigned k = 0; k < TINY_RACE_KEEP; k++) {
		if (keep[k]) {
			changed += *keep[k] != keep_id[k];
			kfree(keep[k]);
		}
	}
	fflush(stderr);
	if (saved >= 0) {
		dup2(saved, 2);
		close(saved);
	}
	if (devnull >= 0)
		close(devnull);
	kmem_drain_all();
	kmem_get_stats(&st);
	uint64_t doubles = atomic_load_explicit(&tiny_race_doubles, memory_order_relaxed);
	int verify = mheap_verify();
	report(doubles == offered && st.bad_frees - bad0 == doubles && changed == 0 &&
	       st.objects_inuse == inuse0 && verify == 0,
	       "tiny double frees racing restarts: %llu second frees (of %llu offered), %llu "
	       "reported (expected all), %llu kept objects changed, objects in use %llu "
	       "(expected %llu), mheap_verify %d (expected 0)",
	       (unsigned long long)doubles, (unsigned long long)offered,
	       (unsigned long long)(st.bad_frees - bad0), (unsigned long long)changed,
	       (unsigned long long)st.objects_inuse, (unsigned long long)inuse0, verify);
}

/* The heap's lock (mm/mlock.h; test-and-set here, MM_SPINLOCK_PREEMPTIBLE)
 * with as many threads as the rest of the test, more than the cores:
 * every increment of a plain counter under it counted, every acquisition
 * counted by the lock (and, under ThreadSanitizer, no race on the counter).
 */
#define LOCK_ROUNDS 20000
static mm_spinlock_t test_lock = MM_SPINLOCK_INIT("stress_test_lock");
static uint64_t under_lock;

static void *lock_hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < LOCK_ROUNDS; i++) {
		unsigned long flags = mm_spin_lock_irqsave(&test_lock);
		uint64_t v = under_lock;
		if (i % 64 == 0)
			sched_yield();   /* a holder that loses its core */
		under_lock = v + 1;
		mm_spin_unlock_irqrestore(&test_lock, flags);
	}
	return NULL;
}

static void check_lock_excludes(void)
{
	pthread_t t[MAX_THREADS];
	int n = 0;
	for (; n < nthreads; n++)
		if (pthread_create(&t[n], NULL, lock_hammer, NULL))
			break;
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	uint64_t want = (uint64_t)n * LOCK_ROUNDS;
	report(n == nthreads && under_lock == want && test_lock.nacquire == want &&
		       !mm_spin_held(&test_lock),
	       "heap lock: %d threads x %d increments under it = %llu (want %llu), "
	       "%llu acquisitions (%llu contended)", n, LOCK_ROUNDS,
	       (unsigned long long)under_lock, (unsigned long long)want,
	       (unsigned long long)test_lock.nacquire, (unsigned long long)test_lock.ncontended);
}

/* The arena checks' two threads: each takes a slot ("CPU") of its own
 * with its first heap call (so two arenas), notes its arena in
 * pair_arena[], meets the other at pair_barrier, runs pair_worker(its
 * index), and meets the other again before it exits (an exit drains its
 * caches), so neither disturbs what the other measures. */
static pthread_barrier_t pair_barrier;
static struct mheap *pair_arena[2];
static void (*pair_worker)(int me);

static void *pair_thread(void *arg)
{
	int me = (int)(intptr_t)arg;
	kfree(kmalloc(1, 0));
	pair_arena[me] = mheap_of_cpu(mm_cpu_id());
	pthread_barrier_wait(&pair_barrier);
	pair_worker(me);
	pthread_barrier_wait(&pair_barrier);
	return NULL;
}

/* worker(0) and worker(1) on two such threads; returns when both are done. */
static void run_two_threads(void (*worker)(int me))
{
	pthread_t t[2];
	pair_worker = worker;
	pthread_barrier_init(&pair_barrier, NULL, 2);
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, pair_thread, (void *)(intptr_t)i)) {
			fprintf(stderr, "pthread_create failed\n");
			exit(2);
		}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&pair_barrier);
}

/*
 * Arenas (mm/mheap.h): two live threads, so two slots and two arenas.
 * Each allocates large objects, which must come from its own arena, and
 * frees the other's, which must go back to theirs (mheap_verify checks
 * that no page cache holds another arena's run). Then thread 1 holds
 * ARENA_LIVE big objects (the policy's target grows with them) while
 * thread 0 frees as many again, which its arena retains; thread 1's
 * frees then shrink the target to its floor, and its last free must give
 * back thread 0's arena's chunks too (the trim left pending, done once
 * its own arena's lock is let go), so that no more than twice the target
 * stays retained.
 */
#define ARENA_OBJS 16
#define ARENA_SIZE (256 * 1024)
#define ARENA_BIG (8UL << 20)   /* a chunk of its own */
#define ARENA_LIVE 128          /* 1 GiB of address space, untouched */
#define ARENA_RETAIN 48
static void *arena_objs[2][ARENA_OBJS];
static _Atomic int arena_misplaced, arena_bad;
static uint64_t arena_retained_before, arena_retained_after, arena_bound, arena_other_left;

static void arena_worker(int me)
{
	int other = 1 - me;
	void *big[ARENA_LIVE];
	for (int i = 0; i < ARENA_OBJS; i++) {
		void *p = kmalloc(ARENA_SIZE, 0);
		struct mspan *s = p ? mheap_span_of(p) : NULL;
		if (!s || s->chunk->heap != pair_arena[me])
			arena_misplaced++;
		arena_objs[me][i] = p;
	}
	pthread_barrier_wait(&pair_barrier);
	for (int i = 0; i < ARENA_OBJS; i++)   /* the other arena's objects */
		kfree(arena_objs[other][i]);
	pthread_barrier_wait(&pair_barrier);
	if (me == 1 && mheap_verify())
		arena_bad++;
	pthread_barrier_wait(&pair_barrier);
	/* Retention across arenas. */
	int n = me == 1 ? ARENA_LIVE : ARENA_RETAIN;
	for (int i = 0; i < n; i++)
		big[i] = kmalloc(ARENA_BIG, 0);
	pthread_barrier_wait(&pair_barrier);
	if (me == 0) {
		for (int i = 0; i < n; i++)
			kfree(big[i]);
		arena_retained_before = pair_arena[0]->retained_pages;
	}
	pthread_barrier_wait(&pair_barrier);
	if (me == 1) {
		for (int i = 0; i < n; i++)
			kfree(big[i]);
		arena_retained_after = mheap_retained_pages() << MM_PAGE_SHIFT;
		arena_bound = 2 * mheap_retain_target();
		arena_other_left = pair_arena[0]->retained_pages;
		if (mheap_verify())
			arena_bad++;
	}
}

static void check_arenas(void)
{
	run_two_threads(arena_worker);
	report(MHEAP_NARENAS > 1 && pair_arena[0] != pair_arena[1] &&
		       arena_misplaced == 0,
	       "arenas: two threads' large objects come from their own arenas "
	       "(%u and %u of %d; %d misplaced)", pair_arena[0]->arena,
	       pair_arena[1]->arena, MHEAP_NARENAS, (int)arena_misplaced);
	report(arena_bad == 0, "arenas: mheap_verify passes after cross-arena frees and "
	       "the retention trim (%d failed)", (int)arena_bad);
	report(arena_retained_before > 2 * ((uint64_t)MM_RETAIN_MIN_BYTES >> MM_PAGE_SHIFT) &&
		       arena_retained_after <= arena_bound &&
		       arena_other_left < arena_retained_before,
	       "arenas: one arena's frees trim another's retained chunks: arena %u retained "
	       "%llu KiB, then all %llu KiB (bound %llu KiB), arena %u keeps %llu KiB",
	       pair_arena[0]->arena,
	       (unsigned long long)((arena_retained_before << MM_PAGE_SHIFT) >> 10),
	       (unsigned long long)(arena_retained_after >> 10),
	       (unsigned long long)(arena_bound >> 10), pair_arena[0]->arena,
	       (unsigned long long)((arena_other_left << MM_PAGE_SHIFT) >> 10));
}

/*
 * Adoption: a chunk that thread 1's arena retains (a freed 24 MiB object's
 * own) becomes thread 0's arena's when it needs one that size, instead
 * of a new one from the platform: the same address, nothing more mapped.
 */
#define ADOPT_BIG (24UL << 20)   /* above a page cache's deferred run */
static void *adopt_freed, *adopt_got;
static size_t adopt_sys_before, adopt_sys_after;
static uint64_t adopt_count_before, adopt_count_after;

static void adopt_worker(int me)
{
	if (me == 1) {
		adopt_freed = kmalloc(ADOPT_BIG, 0);
		kfree(adopt_freed);
	}
	pthread_barrier_wait(&pair_barrier);
	if (me == 0) {
		adopt_count_before = __atomic_load_n(&pair_arena[0]->nadopt, __ATOMIC_RELAXED);
		adopt_sys_before = mm_host_sys_bytes();
		adopt_got = kmalloc(ADOPT_BIG, 0);
		adopt_sys_after = mm_host_sys_bytes();
		adopt_count_after = __atomic_load_n(&pair_arena[0]->nadopt, __ATOMIC_RELAXED);
		kfree(adopt_got);
	}
}

static void check_arena_adopt(void)
{
	kmem_drain_all();   /* no retained chunk anywhere */
	run_two_threads(adopt_worker);
	report(pair_arena[0] != pair_arena[1] && adopt_freed && adopt_got == adopt_freed &&
		       adopt_sys_after == adopt_sys_before &&
		       adopt_count_after == adopt_count_before + 1 && mheap_verify() == 0,
	       "arenas: a 24 MiB object takes the chunk another arena retained (freed at %p, "
	       "got %p; %zu bytes from the platform before, %zu after; adopted %llu -> %llu)",
	       adopt_freed, adopt_got, adopt_sys_before, adopt_sys_after,
	       (unsigned long long)adopt_count_before, (unsigned long long)adopt_count_after);
}

/*
 * Arenas under memory pressure: thread 1's arena retains two freed 8 MiB
 * chunks (of three: the last waits as its CPU's deferred run); with the
 * platform capped at what it hands out now (and a little for metadata),
 * thread 0's arena, which has no free run, must get a 16 MiB object
 * (which neither retained chunk fits, so none is adopted) from the memory
 * thread 1's arena gives back, in the mheap's own retry (the retained
 * chunks go first), not by the large allocation's last resort, a drain of
 * thread 0's caches (it holds a small object's span throughout).
 */
#define OOM_BIG (8UL << 20)
#define OOM_META (1UL << 20)   /* room for metadata blocks, not a chunk */
static uint64_t oom_retained_before, oom_retained_after;
static void *oom_got;
static uint8_t oom_holds_before, oom_holds_after;

static void oom_worker(int me)
{
	if (me == 1) {
		void *a = kmalloc(OOM_BIG, 0), *b = kmalloc(OOM_BIG, 0), *c = kmalloc(OOM_BIG, 0);
		kfree(a);
		kfree(b);
		kfree(c);
		oom_retained_before = pair_arena[1]->retained_pages << MM_PAGE_SHIFT;
	}
	pthread_barrier_wait(&pair_barrier);
	if (me == 0) {
		void *small = kmalloc(64, 0);
		oom_holds_before = mcaches[mm_cpu_id()].holds_spans;
		mm_host_set_sys_limit(mm_host_sys_bytes() + OOM_META);
		oom_got = kmalloc(2 * OOM_BIG, 0);
		mm_host_set_sys_limit(0);
		oom_holds_after = mcaches[mm_cpu_id()].holds_spans;
		kfree(small);
		oom_retained_after = pair_arena[1]->retained_pages << MM_PAGE_SHIFT;
		kfree(oom_got);
	}
}

static void check_arena_oom(void)
{
	kmem_drain_all();   /* no retained chunk anywhere */
	run_two_threads(oom_worker);
	report(pair_arena[0] != pair_arena[1] && oom_retained_before >= 2 * OOM_BIG &&
		       oom_got != NULL && oom_retained_after < oom_retained_before &&
		       oom_holds_before && oom_holds_after && mheap_verify() == 0,
	       "arenas: with the platform capped, a 16 MiB object comes from what another "
	       "arena retained (%llu KiB retained there before, %llu after; object %p; "
	       "the CPU's caches %s)", (unsigned long long)(oom_retained_before >> 10),
	       (unsigned long long)(oom_retained_after >> 10), oom_got,
	       !oom_holds_before ? "held nothing before" :
	       oom_holds_after ? "kept" : "drained (the last resort)");
}

int main(int argc, char **argv)
{
	const char *tsan_log = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--threads"))
			nthreads = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--ops"))
			ops_per_thread = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--rounds"))
			rounds = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--tiny-rounds"))
			tiny_race_rounds = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--tsan-log"))
			tsan_log = argv[i + 1];
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (rounds < 1)
		rounds = 1;
	if (nthreads < 2 || nthreads > MAX_THREADS) {
		fprintf(stderr, "--threads must be 2..%d\n", MAX_THREADS);
		return 2;
	}

	/* Touch the heap once so the baseline includes its set-up. */
	kfree(kmalloc(1, 0));
	kmem_drain_all();
	struct kmem_stats st0, st1;
	kmem_get_stats(&st0);

	/* Each round starts fresh threads: the slots ("CPUs") of the last
	 * round's threads were released (and their mcaches drained) at their
	 * exit, and are handed out again. */
	pthread_barrier_init(&done_producing, NULL, (unsigned)nthreads);
	for (int round = 0; round < rounds; round++) {
		for (int t = 0; t < nthreads; t++) {
			workers[t].index = t;
			workers[t].seed = 0x5eed0000ULL + (uint64_t)t * 0x1234567ULL +
					  (uint64_t)round * 0x9e3779b9ULL;
			if (pthread_create(&workers[t].thread, NULL, worker_main,
					   &workers[t])) {
				fprintf(stderr, "pthread_create failed\n");
				return 2;
			}
		}
		for (int t = 0; t < nthreads; t++)
			pthread_join(workers[t].thread, NULL);
	}
	uint64_t remote = 0, total_ops = 0, nulls = 0, misaligned = 0;
	for (int t = 0; t < nthreads; t++) {
		struct worker *w = &workers[t];
		report(w->corrupt == 0,
		       "thread %d: %llu objects checked, %llu changed "
		       "(%llu allocs, %llu local frees, %llu remote frees, %llu reallocs)",
		       t, (unsigned long long)w->checked,
		       (unsigned long long)w->corrupt,
		       (unsigned long long)w->allocs,
		       (unsigned long long)w->frees_local,
		       (unsigned long long)w->frees_remote,
		       (unsigned long long)w->reallocs);
		remote += w->frees_remote;
		nulls += w->nulls;
		misaligned += w->misaligned;
		total_ops += w->allocs + w->frees_local + w->frees_remote + w->reallocs;
	}
	report(remote > 0 && remote * 10 > total_ops / 10,
	       "cross-thread frees happened: %llu of %llu operations",
	       (unsigned long long)remote, (unsigned long long)total_ops);
	report(nulls == 0, "no allocation returned NULL (%llu did)",
	       (unsigned long long)nulls);
	report(misaligned == 0, "objects aligned to their class (%llu were not)",
	       (unsigned long long)misaligned);

	check_stats_while_allocating();
	check_lock_excludes();
	check_arenas();
	check_arena_adopt();
	check_arena_oom();
	kmem_drain_all();
	kmem_get_stats(&st1);
	report(st1.bad_frees == st0.bad_frees, "no bad frees reported (%llu)",
	       (unsigned long long)(st1.bad_frees - st0.bad_frees));
	check_tiny_double_frees_racing_restarts();
	report(st1.objects_inuse == st0.objects_inuse,
	       "objects in use back to %llu (now %llu)",
	       (unsigned long long)st0.objects_inuse,
	       (unsigned long long)st1.objects_inuse);
	report(st1.heap_bytes == st0.heap_bytes,
	       "heap footprint back to %llu bytes after drain (now %llu)",
	       (unsigned long long)st0.heap_bytes,
	       (unsigned long long)st1.heap_bytes);
	report(mheap_verify() == 0, "mheap_verify() passes");
	if (tsan_log) {
		char name[4096];
		snprintf(name, sizeof(name), "%s.%d", tsan_log, (int)getpid());
		bool raced = access(name, F_OK) == 0;
		if (raced) {
			FILE *r = fopen(name, "r");
			char line[512];
			for (int n = 0; r && n < 200 && fgets(line, sizeof(line), r); n++)
				fputs(line, stderr);
			if (r)
				fclose(r);
		}
		report(!raced, "ThreadSanitizer reported nothing%s%s",
		       raced ? ": see " : "", raced ? name : "");
	}
	printf("%d passed, %d failed\n", npassed, nfailed);
	return nfailed ? 1 : 0;
}
