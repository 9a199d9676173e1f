/*
 * tests/kernel/heap_owned_test.c - a CPU's owned spans (mm/mcache.c): the
 * allocation span, the capped partial set and the uncapped full set, and
 * the notice stacks through which remote frees reach a span's owner
 * (mm/mcentral.c).
 *
 * Each test drives one CPU's mcache into a known state and reads it back
 * from the span records and the mcache itself: which set holds a span
 * (list), who owns it (owner_cpu), whether kfree's fast path may free into
 * it (local_cache), what sits on a CPU's notice stack (remote_pending,
 * pending_next). The properties at stake:
 *   - many live objects on one CPU stay that CPU's (the full set is not
 *     capped), so freeing them there is local: no remote protocol, the
 *     mcentral lock taken at most once per span (giving spans back);
 *   - a local free into a full-set span moves it to the partial set, after
 *     which frees into it are fast-path frees again;
 *   - remote frees put the owner's spans on its notice stack, its next
 *     refill takes them, and a producer/consumer pair across CPUs keeps a
 *     flat footprint although the full set has no cap;
 *   - a span on a notice stack that its CPU gave away (drain, or the
 *     partial set's cap) is routed on to whoever owns it now and swept;
 *   - double frees into full-set spans and spans on notice stacks are
 *     still reported, and leave the span where it was.
 * Every test ends with mheap_verify() and every page back.
 *
 * The other CPU is, in the kernel, the next online CPU (smp_call_all; the
 * cross-CPU tests skip on one CPU) and, hosted, a worker thread that lives
 * for the test (the heap gives it a CPU slot of its own; its slot drains
 * when it exits). In the debug build (DEBUG_HEAP=1) kfree delays frees in
 * its quarantine, so the tests call the heap under the debug layer
 * (heap_raw_alloc/heap_raw_free, mm/malloc_internal.h): the same spans, the
 * same paths. The heap is otherwise quiescent while a test runs.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "mm/kmalloc.h"
#include "mm/malloc_internal.h"
#include "mm/mcache.h"
#include "mm/mcentral.h"
#include "mm/mheap.h"
#include "mm/mspan.h"
#include "mm/platform.h"
#include "tests/kernel/ktest.h"
#include "tests/kernel/heap_testlib.h"

/* 48 bytes: 170 objects in a one-page span, a 16-aligned class. */
#define OBJ_SIZE 48

#if HEAP_DEBUG_MODE
static void *obj_alloc(void) { return heap_raw_alloc(OBJ_SIZE, 8, 0); }
static void obj_free(const void *p) { heap_raw_free(p, __builtin_return_address(0)); }
#else
static void *obj_alloc(void) { return kmalloc(OBJ_SIZE, 0); }
static void obj_free(const void *p) { kfree(p); }
#endif

#ifdef SPANHEAP_PANIC_ON_BAD_FREE
#define SKIP_IF_PANICKING() KTEST_SKIP("SPANHEAP_PANIC_ON_BAD_FREE makes bad frees panic")
#else
#define SKIP_IF_PANICKING() do { } while (0)
#endif

static struct mspan *span_of(const void *p) { return mheap_span_of(p); }

/* This CPU (hosted: this thread's slot, which its first heap call gave
 * it; every test allocates before asking). */
static unsigned here(void) { return mm_cpu_id(); }

static uint64_t class_spans(unsigned spc)
{
	struct kmem_class_stats cs;
	return kmem_get_class_stats(spc, &cs) == 0 ? cs.spans : 0;
}

/* ------------------------------------------------------ the other CPU -- */

/* other_start: is there another CPU (hosted: start the worker)?
 * other_run(fn, arg): run fn(arg) on it and wait. other_stop: it gives
 * its caches back (hosted: the worker exits). other_id: its CPU id. */
static unsigned other_id;

static void record_cpu(void *arg)
{
	*(unsigned *)arg = mm_cpu_id();
}

#ifdef SPANHEAP_HOSTED
#include <pthread.h>

static pthread_t worker;
static pthread_mutex_t worker_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t worker_cv = PTHREAD_COND_INITIALIZER;
static void (*worker_fn)(void *);
static void *worker_arg;
static enum { W_IDLE, W_JOB, W_QUIT } worker_state;

static void *worker_main(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&worker_mu);
	for (;;) {
		while (worker_state == W_IDLE)
			pthread_cond_wait(&worker_cv, &worker_mu);
		if (worker_state == W_QUIT)
			break;
		pthread_mutex_unlock(&worker_mu);
		worker_fn(worker_arg);
		pthread_mutex_lock(&worker_mu);
		worker_state = W_IDLE;
		pthread_cond_broadcast(&worker_cv);
	}
	pthread_mutex_unlock(&worker_mu);
	return NULL;
}

static void other_run(void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&worker_mu);
	worker_fn = fn;
	worker_arg = arg;
	worker_state = W_JOB;
	pthread_cond_broadcast(&worker_cv);
	while (worker_state != W_IDLE)
		pthread_cond_wait(&worker_cv, &worker_mu);
	pthread_mutex_unlock(&worker_mu);
}

static void first_heap_call(void *unused)
{
	(void)unused;
	kfree(kmalloc(1, 0));
}

static bool worker_running;   /* a test that failed early left it */
static void other_stop(void);

static bool other_start(void)
{
	if (worker_running)
		other_stop();
	worker_state = W_IDLE;
	if (pthread_create(&worker, NULL, worker_main, NULL) != 0)
		return false;
	worker_running = true;
	/* Its first heap call gives the worker its slot. */
	other_run(first_heap_call, NULL);
	other_run(record_cpu, &other_id);
	return true;
}

static void other_stop(void)
{
	pthread_mutex_lock(&worker_mu);
	worker_state = W_QUIT;
	pthread_cond_broadcast(&worker_cv);
	pthread_mutex_unlock(&worker_mu);
	pthread_join(worker, NULL);
	worker_running = false;
}

static unsigned cpus_online(void) { return 2; }
/* Hosted threads have no idle pass: nothing to answer in the background. */
static void others_answer_requests(void) {}
#else
#include "kernel/percpu.h"
#include "kernel/smp.h"

struct other_job {
	void (*fn)(void *);
	void *arg;
	unsigned target;
};

static void other_dispatch(void *arg)
{
	struct other_job *j = arg;
	if (this_cpu_id() == j->target)
		j->fn(j->arg);
}

static void other_run(void (*fn)(void *), void *arg)
{
	struct other_job j = { fn, arg, this_cpu_id() == 0 ? 1u : 0u };
	smp_call_all(other_dispatch, &j);
}

static bool other_start(void)
{
	if (ncpus_online < 2)
		return false;
	other_run(record_cpu, &other_id);
	return true;
}

static void drain_job(void *arg)
{
	(void)arg;
	kmem_drain_this_cpu();
}

/* An idle CPU answers a pending kmem_release_request (an earlier test ran
 * out of memory on purpose) when its timer wakes it: let every CPU answer
 * now, before a test counts lock acquisitions. */
static void answer_job(void *arg)
{
	(void)arg;
	kmem_scavenge_idle();
}

static void others_answer_requests(void)
{
	smp_call_all(answer_job, NULL);
}

static void other_stop(void)
{
	other_run(drain_job, NULL);
}

static unsigned cpus_online(void) { return ncpus_online; }
#endif

/* Free n objects (the other CPU runs it). */
struct free_job {
	void **objs;
	unsigned n;
	unsigned step;   /* every step-th object, from the first */
};

static void free_objs_job(void *arg)
{
	struct free_job *j = arg;
	for (unsigned i = 0; i < j->n; i += j->step) {
		obj_free(j->objs[i]);
		j->objs[i] = NULL;
	}
}

static void free_on_other(void **objs, unsigned n, unsigned step)
{
	struct free_job j = { objs, n, step };
	other_run(free_objs_job, &j);
}

/* ------------------------------------------------------------ helpers -- */

/* The distinct spans of a set of objects, sorted by address. */
#define MAX_SPANS 1024
struct span_set {
	struct mspan *s[MAX_SPANS];
	unsigned n;
	bool overflow;
};

static bool span_set_has(const struct span_set *set, const struct mspan *s)
{
	unsigned lo = 0, hi = set->n;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (set->s[mid] == s)
			return true;
		if ((uintptr_t)set->s[mid] < (uintptr_t)s)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static void span_set_of(struct span_set *set, void *const *objs, unsigned n)
{
	set->n = 0;
	set->overflow = false;
	struct mspan *last = NULL;
	for (unsigned i = 0; i < n; i++) {
		struct mspan *s = objs[i] ? span_of(objs[i]) : NULL;
		if (!s || s == last)
			continue;
		last = s;
		if (set->n == MAX_SPANS) {
			set->overflow = true;
			return;
		}
		/* Insert in order, unless present. */
		unsigned k = set->n;
		while (k > 0 && (uintptr_t)set->s[k - 1] > (uintptr_t)s)
			k--;
		if (k > 0 && set->s[k - 1] == s)
			continue;
		for (unsigned m = set->n; m > k; m--)
			set->s[m] = set->s[m - 1];
		set->s[k] = s;
		set->n++;
	}
}

/* Where the spans of a set are, as seen from CPU cpu's mcache. */
struct where {
	unsigned alloc, partial, full, not_owned, bad_local;
};

static struct where where_are(const struct span_set *set, unsigned cpu, unsigned spc)
{
	struct where w = { 0, 0, 0, 0, 0 };
	const struct mcache *mc = &mcaches[cpu];
	for (unsigned i = 0; i < set->n; i++) {
		const struct mspan *s = set->s[i];
		if (s->owner_cpu != (int32_t)cpu) {
			w.not_owned++;
			continue;
		}
		if (s == mc->alloc[spc]) {
			w.alloc++;
			w.bad_local += mspan_local_cpu(s) != (int)cpu;
		} else if (s->list == MSPAN_ON_OWNED) {
			w.partial++;
			w.bad_local += mspan_local_cpu(s) != (int)cpu;
		} else if (s->list == MSPAN_ON_OWNED_FULL) {
			w.full++;
			w.bad_local += mspan_local_cpu(s) != -1;
		}
	}
	return w;
}

/* Spans on CPU cpu's notice stack: how many, how many of them in set,
 * how many without remote_pending. */
struct notices {
	unsigned n, ours, not_pending;
};

static struct notices notices_of(unsigned cpu, const struct span_set *set)
{
	struct notices r = { 0, 0, 0 };
	for (const struct mspan *s = mcentral_peek_notices(cpu); s && r.n < 100000;
	     s = s->pending_next) {
		r.n++;
		r.ours += set && span_set_has(set, s);
		r.not_pending += __atomic_load_n(&s->remote_pending, __ATOMIC_RELAXED) != 1;
	}
	return r;
}

static bool on_notice_stack(unsigned cpu, const struct mspan *span)
{
	unsigned n = 0;
	for (const struct mspan *s = mcentral_peek_notices(cpu); s && n < 100000;
	     s = s->pending_next, n++)
		if (s == span)
			return true;
	return false;
}

/* Allocate on this CPU into objs[*n..max) until stop(arg) holds; false
 * if it never did (or the heap ran out). */
static bool alloc_until(void **objs, unsigned *n, unsigned max,
			bool (*stop)(const void *arg), const void *arg)
{
	while (!stop(arg)) {
		if (*n == max)
			return false;
		void *p = obj_alloc();
		if (!p)
			return false;
		objs[(*n)++] = p;
	}
	return true;
}

static bool span_is_full_set(const void *arg)
{
	return ((const struct mspan *)arg)->list == MSPAN_ON_OWNED_FULL;
}

static void free_all_here(void **objs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		obj_free(objs[i]);
		objs[i] = NULL;
	}
}

/* kfree(p) on this CPU (other: on the other one) must be refused and
 * counted once. */
static void expect_refused(const void *p, bool other, const char *what)
{
	uint64_t before = heap_stats().bad_frees;
	if (other) {
		void *q = (void *)p;
		free_on_other(&q, 1, 1);
	} else {
		obj_free(p);
	}
	uint64_t after = heap_stats().bad_frees;
	if (after != before + 1)
		ktest_log("%s: bad_frees went %llu -> %llu, expected +1", what,
			  (unsigned long long)before, (unsigned long long)after);
	KEXPECT_EQ(after, before + 1);
}

/* Everything back: the heap verifies and holds what it held at base. */
static void expect_all_back(uint64_t base)
{
	KEXPECT_EQ(mheap_verify(), 0);
	KEXPECT_EQ(heap_drained_bytes(), base);
	KEXPECT_EQ(mheap_verify(), 0);
}

/* ------------------------------------------------------------------ 1 -- */

#define MANY 20000
static void *many[MANY];
static struct span_set many_spans;

KTEST(heap_owned, many_live_objects_stay_this_cpus_and_free_locally)
{
	uint64_t base = heap_drained_bytes();
	struct kmem_stats st0 = heap_stats();
	unsigned n = 0;
	while (n < MANY && (many[n] = obj_alloc()) != NULL)
		n++;
	if (n < MANY) {
		free_all_here(many, n);
		KASSERT_EQ(n, MANY);
	}
	unsigned cpu = here();
	unsigned spc = span_of(many[0])->spanclass;
	span_set_of(&many_spans, many, MANY);
	KASSERT_FALSE(many_spans.overflow);
	struct where w = where_are(&many_spans, cpu, spc);
	const struct mcache *mc = &mcaches[cpu];
	ktest_log("%u objects of %u bytes in %u spans: alloc %u, partial %u, full %u, "
		  "not this CPU's %u", MANY, span_of(many[0])->elemsize, many_spans.n,
		  w.alloc, w.partial, w.full, w.not_owned);
	/* 20000 objects need more spans than the partial set's cap: before
	 * the full set existed, all but 8 would have been given away. */
	KEXPECT_GT(many_spans.n, MCACHE_OWNED_PER_CLASS + 1);
	KEXPECT_EQ(w.not_owned, 0);
	KEXPECT_EQ(w.alloc + w.partial + w.full, many_spans.n);
	KEXPECT_EQ(w.bad_local, 0);
	KEXPECT_GT(w.full, MCACHE_OWNED_PER_CLASS);
	KEXPECT_GE(mc->nfull[spc] + mc->nowned[spc] + (mc->alloc[spc] != MCACHE_NO_SPAN), many_spans.n);
	KEXPECT_EQ(mheap_verify(), 0);

	/* FIFO: the oldest (full-set) spans first. */
	others_answer_requests();
	struct kmem_stats before = heap_stats();
	unsigned remote = 0;
	for (unsigned i = 0; i < MANY; i++) {
		remote += span_of(many[i])->owner_cpu != (int32_t)cpu;
		obj_free(many[i]);
		many[i] = NULL;
	}
	struct kmem_stats after = heap_stats();
	uint64_t locks = after.mcentral_lock_acquires - before.mcentral_lock_acquires;
	ktest_log("freed in FIFO order: %u into spans of another CPU, %llu mcentral lock "
		  "acquisitions", remote, (unsigned long long)locks);
	KEXPECT_EQ(remote, 0);
	KEXPECT_EQ(after.nfree - before.nfree, MANY);
	KEXPECT_EQ(after.bad_frees, before.bad_frees);
	/* At most one per span: giving it back past the partial set's cap. */
	KEXPECT_LE(locks, many_spans.n);
	/* No free took the remote protocol (it pushes the span on a stack). */
	KEXPECT_NULL(mcentral_peek_notices(cpu));
	KEXPECT_NULL(__atomic_load_n(&mcentrals[spc].pending, __ATOMIC_RELAXED));
	KEXPECT_EQ(mheap_verify(), 0);

	kmem_drain_this_cpu();
	struct kmem_stats end = heap_stats();
	KEXPECT_EQ(end.heap_bytes, base);
	KEXPECT_EQ(end.pages_held, st0.pages_held);
	KEXPECT_EQ(end.spans, st0.spans);
	KEXPECT_EQ(end.objects_inuse, st0.objects_inuse);
	expect_all_back(base);
}

/* ------------------------------------------------------------------ 2 -- */

#define SOME (3 * MAX_OBJS_PER_SPAN)
static void *some[SOME];

static bool alloc_span_is(const void *arg)
{
	const struct mspan *s = arg;
	return mcaches[here()].alloc[s->spanclass] == s;
}

KTEST(heap_owned, a_local_free_moves_a_full_span_to_the_partial_set)
{
	uint64_t base = heap_drained_bytes();
	unsigned n = 0;
	some[n++] = obj_alloc();
	KASSERT_NOT_NULL(some[0]);
	unsigned cpu = here();
	struct mspan *f = span_of(some[0]);
	unsigned spc = f->spanclass;
	/* Fill f: when the allocation span moves on, f joins the full set. */
	bool filled = alloc_until(some, &n, SOME, span_is_full_set, f);
	if (!filled) {
		free_all_here(some, n);
		KASSERT_TRUE(filled);
	}
	KEXPECT_EQ(f->list, MSPAN_ON_OWNED_FULL);
	KEXPECT_EQ(mspan_local_cpu(f), -1);
	KEXPECT_EQ(f->owner_cpu, (int32_t)cpu);
	KEXPECT_NE(mcaches[cpu].alloc[spc], f);
	KEXPECT_EQ(mcaches[cpu].nowned[spc], 0);
	KEXPECT_EQ(mheap_verify(), 0);

	/* One free: the slow path (local_cache is MSPAN_NOT_LOCAL) moves f
	 * to the partial set; the next ones find local_cache == this CPU's
	 * mcache (the fast path). */
	uint64_t locks = heap_stats().mcentral_lock_acquires;
	unsigned in_f = 0, moved = 0;
	for (unsigned i = 0; i < n; i++) {
		if (span_of(some[i]) != f)
			continue;
		obj_free(some[i]);
		some[i] = NULL;
		if (in_f++ == 0) {
			KEXPECT_EQ(f->list, MSPAN_ON_OWNED);
			KEXPECT_EQ(mspan_local_cpu(f), (int)cpu);
			KEXPECT_EQ(f->owner_cpu, (int32_t)cpu);
			KEXPECT_EQ(mcaches[cpu].nowned[spc], 1);
		} else {
			moved += f->list != MSPAN_ON_OWNED || mspan_local_cpu(f) != (int)cpu;
		}
	}
	KEXPECT_EQ(in_f, f->nelems);
	KEXPECT_EQ(moved, 0);
	/* All local: nothing given back (the partial set had room), no
	 * lock (mheap_verify takes them all: only after this). */
	KEXPECT_EQ(heap_stats().mcentral_lock_acquires, locks);
	KEXPECT_EQ(mheap_verify(), 0);

	/* The next refill allocates from f again, without a new span. */
	uint64_t spans = class_spans(spc);
	unsigned before = n;
	bool reused = alloc_until(some, &n, SOME, alloc_span_is, f);
	KEXPECT_TRUE(reused);
	ktest_log("span %p back as the allocation span after %u allocations", (void *)f,
		  n - before);
	KEXPECT_LE(class_spans(spc), spans);
	KEXPECT_EQ(mheap_verify(), 0);
	free_all_here(some, n);
	expect_all_back(base);
}

/* ------------------------------------------------------------------ 3 -- */

/* Spans (of 8 KiB, 170 objects of 48 B): about twice MCACHE_OWNED_PER_CLASS. */
#define PC_OBJS (2 * MCACHE_OWNED_PER_CLASS * (8192 / OBJ_SIZE))
#define PC_ROUNDS 20
static void *pc[PC_OBJS];
static struct span_set pc_spans0, pc_spans;

static bool alloc_pc(void)
{
	for (unsigned i = 0; i < PC_OBJS; i++) {
		if ((pc[i] = obj_alloc()) == NULL) {
			free_all_here(pc, i);
			return false;
		}
	}
	return true;
}

KTEST(heap_owned, remote_frees_are_noticed_and_the_footprint_stays_flat)
{
	if (cpus_online() < 2)
		KTEST_SKIP("needs a second CPU, %u online", cpus_online());
	uint64_t base = heap_drained_bytes();
	KASSERT_TRUE(other_start());
	KASSERT_TRUE(alloc_pc());
	unsigned cpu = here();
	unsigned spc = span_of(pc[0])->spanclass;
	KEXPECT_NE(other_id, cpu);
	span_set_of(&pc_spans0, pc, PC_OBJS);
	struct where w = where_are(&pc_spans0, cpu, spc);
	KEXPECT_EQ(w.not_owned, 0);
	KEXPECT_EQ(w.alloc, 1);
	KEXPECT_EQ(w.full + w.partial, pc_spans0.n - 1);
	KEXPECT_GT(w.full, MCACHE_OWNED_PER_CLASS);

	/* The other CPU frees them all: every span goes on this CPU's
	 * notice stack, once, and stays where it was until we look. */
	free_on_other(pc, PC_OBJS, 1);
	struct notices nt = notices_of(cpu, &pc_spans0);
	ktest_log("%u spans, %u on CPU %u's notice stack after CPU %u freed every object",
		  pc_spans0.n, nt.n, cpu, other_id);
	KEXPECT_EQ(nt.n, pc_spans0.n);
	KEXPECT_EQ(nt.ours, pc_spans0.n);
	KEXPECT_EQ(nt.not_pending, 0);
	struct where w2 = where_are(&pc_spans0, cpu, spc);
	KEXPECT_EQ(w2.full, w.full);
	KEXPECT_EQ(w2.alloc, 1);
	KEXPECT_EQ(mheap_verify(), 0);

	/* Produce again: the refill takes the notices and allocates from
	 * the same spans, so neither the class nor the heap grows. */
	uint64_t spans0 = class_spans(spc);
	uint64_t bytes0 = heap_stats().heap_bytes;
	uint64_t max_spans = 0, max_bytes = 0;
	for (unsigned r = 1; r <= PC_ROUNDS; r++) {
		KASSERT_TRUE(alloc_pc());
		uint64_t spans = class_spans(spc), bytes = heap_stats().heap_bytes;
		max_spans = spans > max_spans ? spans : max_spans;
		max_bytes = bytes > max_bytes ? bytes : max_bytes;
		if (r == 1) {
			/* The stack was taken; at least the spans kept (the
			 * allocation span and a full partial set) were reused. */
			KEXPECT_NULL(mcentral_peek_notices(cpu));
			span_set_of(&pc_spans, pc, PC_OBJS);
			unsigned reused = 0;
			for (unsigned i = 0; i < pc_spans.n; i++)
				reused += span_set_has(&pc_spans0, pc_spans.s[i]);
			ktest_log("round 1: %u of its %u spans were round 0's", reused,
				  pc_spans.n);
			KEXPECT_GE(reused, MCACHE_OWNED_PER_CLASS + 1);
		}
		free_on_other(pc, PC_OBJS, 1);
	}
	ktest_log("%u rounds of %u objects: class spans %llu then at most %llu, heap "
		  "%llu then at most %llu bytes", PC_ROUNDS, PC_OBJS,
		  (unsigned long long)spans0, (unsigned long long)max_spans,
		  (unsigned long long)bytes0, (unsigned long long)max_bytes);
	/* The same objects need the same spans: an empty span beyond the
	 * partial set's cap goes back, its pages are reused. */
	KEXPECT_LE(max_spans, spans0);
	KEXPECT_LE(max_bytes, bytes0);
	KEXPECT_EQ(mheap_verify(), 0);
	other_stop();
	expect_all_back(base);
}

/* ------------------------------------------------------------------ 4 -- */

KTEST(heap_owned, notices_of_a_drained_cpu_are_routed_on_and_swept)
{
	if (cpus_online() < 2)
		KTEST_SKIP("needs a second CPU, %u online", cpus_online());
	uint64_t base = heap_drained_bytes();
	KASSERT_TRUE(other_start());
	KASSERT_TRUE(alloc_pc());
	unsigned cpu = here();
	span_set_of(&pc_spans0, pc, PC_OBJS);
	/* Half the objects of every span freed remotely: all on our stack. */
	free_on_other(pc, PC_OBJS, 2);
	struct notices nt = notices_of(cpu, &pc_spans0);
	KEXPECT_EQ(nt.ours, pc_spans0.n);
	/* We give everything away with those notices unread: the drain
	 * passes them on, its reclaim sweeps them; half full, they are
	 * listed in their mcentral, owned by nobody, pending no more. */
	kmem_drain_this_cpu();
	KEXPECT_NULL(mcentral_peek_notices(cpu));
	unsigned owned = 0, pending = 0, unlisted = 0;
	for (unsigned i = 0; i < pc_spans0.n; i++) {
		const struct mspan *s = pc_spans0.s[i];
		owned += s->owner_cpu != -1;
		pending += s->remote_pending != 0;
		unlisted += s->list != MSPAN_ON_PARTIAL;
	}
	KEXPECT_EQ(owned, 0);
	KEXPECT_EQ(pending, 0);
	KEXPECT_EQ(unlisted, 0);
	KEXPECT_EQ(mheap_verify(), 0);
	/* The other half, freed remotely into spans nobody owns (their
	 * mcentral's pending stack), and everything goes back. */
	struct kmem_stats before = heap_stats();
	free_on_other(pc + 1, PC_OBJS - 1, 2);
	KEXPECT_EQ(heap_stats().nfree - before.nfree, PC_OBJS / 2);
	KEXPECT_EQ(heap_stats().bad_frees, before.bad_frees);
	other_stop();
	expect_all_back(base);
}

/* A span on A's notice stack that A's partial-set cap gives away, and
 * that B then takes: A's refill routes it to B, B's refill sweeps it. */
#define STALE_MAX (16 * MAX_OBJS_PER_SPAN)
static void *stale_a[STALE_MAX];
static void *stale_b[3 * MAX_OBJS_PER_SPAN];

static bool enough_full(const void *arg)
{
	unsigned spc = *(const unsigned *)arg;
	return mcaches[here()].nfull[spc] >= MCACHE_OWNED_PER_CLASS + 1;
}

struct b_alloc_job {
	unsigned n, max;
	bool (*stop)(unsigned n);
	bool ok;
};

static bool one_object(unsigned n) { return n >= 1; }

static unsigned notice_watch;   /* the CPU whose stack b_until_noticed watches */
static bool b_until_noticed(unsigned n)
{
	(void)n;
	return mcentral_peek_notices(notice_watch) == NULL;
}

static void b_alloc_job(void *arg)
{
	struct b_alloc_job *j = arg;
	j->ok = false;
	while (!j->stop(j->n)) {
		if (j->n == j->max)
			return;
		void *p = obj_alloc();
		if (!p)
			return;
		stale_b[j->n++] = p;
	}
	j->ok = true;
}

static bool a_until_noticed(const void *arg)
{
	return mcentral_peek_notices(*(const unsigned *)arg) == NULL;
}

KTEST(heap_owned, a_stale_notice_is_routed_to_the_spans_new_owner)
{
	if (cpus_online() < 2)
		KTEST_SKIP("needs a second CPU, %u online", cpus_online());
	uint64_t base = heap_drained_bytes();
	KASSERT_TRUE(other_start());
	unsigned na = 0;
	stale_a[na++] = obj_alloc();
	KASSERT_NOT_NULL(stale_a[0]);
	unsigned cpu = here(), b = other_id;
	unsigned spc = span_of(stale_a[0])->spanclass;
	bool ok = alloc_until(stale_a, &na, STALE_MAX, enough_full, &spc);
	KEXPECT_TRUE(ok);
	/* The full spans, oldest first (allocation order). */
	struct mspan *f[MCACHE_OWNED_PER_CLASS + 1];
	unsigned nf = 0;
	void *one[MCACHE_OWNED_PER_CLASS + 1], *other_obj = NULL;
	for (unsigned i = 0; i < na && nf < MCACHE_OWNED_PER_CLASS + 1; i++) {
		struct mspan *s = span_of(stale_a[i]);
		if (nf && f[nf - 1] == s) {
			if (nf == 1 && !other_obj)
				other_obj = stale_a[i], stale_a[i] = NULL;
			continue;
		}
		f[nf] = s;
		one[nf++] = stale_a[i];
		stale_a[i] = NULL;
	}
	KASSERT_EQ(nf, MCACHE_OWNED_PER_CLASS + 1);
	KASSERT_NOT_NULL(other_obj);
	for (unsigned k = 0; k < nf; k++)
		KEXPECT_EQ(f[k]->list, MSPAN_ON_OWNED_FULL);
	/* A local free into each of the oldest eight: the partial set is
	 * full, f[0] its oldest. */
	for (unsigned k = 0; k < MCACHE_OWNED_PER_CLASS; k++)
		obj_free(one[k]);
	KEXPECT_EQ(mcaches[cpu].nowned[spc], MCACHE_OWNED_PER_CLASS);
	KEXPECT_EQ(f[0]->list, MSPAN_ON_OWNED);
	struct mspan *oldest = mcaches[cpu].owned[spc];
	KEXPECT_EQ(oldest ? oldest->prev : NULL, f[0]);
	/* B frees into f[0]: on our notice stack. */
	free_on_other(&other_obj, 1, 1);
	KEXPECT_EQ(mcentral_peek_notices(cpu), f[0]);
	KEXPECT_EQ(f[0]->remote_pending, 1);
	/* A local free into f[8] pushes f[0] out of the partial set: given
	 * back to its mcentral while on our stack. */
	obj_free(one[MCACHE_OWNED_PER_CLASS]);
	KEXPECT_EQ(f[MCACHE_OWNED_PER_CLASS]->list, MSPAN_ON_OWNED);
	KEXPECT_EQ(f[0]->owner_cpu, -1);
	KEXPECT_EQ(f[0]->list, MSPAN_ON_PARTIAL);
	KEXPECT_EQ(mspan_local_cpu(f[0]), -1);
	KEXPECT_TRUE(on_notice_stack(cpu, f[0]));
	KEXPECT_EQ(mheap_verify(), 0);
	/* B's first allocation takes f[0], the newest partial span of the
	 * mcentral. */
	struct b_alloc_job j = { 0, 3 * MAX_OBJS_PER_SPAN, one_object, false };
	other_run(b_alloc_job, &j);
	KEXPECT_TRUE(j.ok);
	KEXPECT_EQ(span_of(stale_b[0]), f[0]);
	KEXPECT_EQ(f[0]->owner_cpu, (int32_t)b);
	KEXPECT_TRUE(on_notice_stack(cpu, f[0]));
	KEXPECT_EQ(mheap_verify(), 0);
	/* Our next refill finds a span we do not own on our stack: it goes
	 * on to B's, still pending. */
	ok = alloc_until(stale_a, &na, STALE_MAX, a_until_noticed, &cpu);
	KEXPECT_TRUE(ok);
	KEXPECT_TRUE(on_notice_stack(b, f[0]));
	KEXPECT_EQ(f[0]->remote_pending, 1);
	KEXPECT_EQ(mheap_verify(), 0);
	/* B's next refill takes it: pending no more, still B's. */
	notice_watch = b;
	j.stop = b_until_noticed;
	other_run(b_alloc_job, &j);
	KEXPECT_TRUE(j.ok);
	KEXPECT_FALSE(on_notice_stack(b, f[0]));
	KEXPECT_EQ(f[0]->remote_pending, 0);
	KEXPECT_EQ(f[0]->owner_cpu, (int32_t)b);
	KEXPECT_EQ(mheap_verify(), 0);
	ktest_log("span %p: CPU %u's stack, given back, taken by CPU %u, routed on, swept "
		  "(B allocated %u objects)", (void *)f[0], cpu, b, j.n);
	/* Everything freed where it lives now (ours into f[0] are remote). */
	uint64_t bad = heap_stats().bad_frees;
	struct free_job fj = { stale_b, j.n, 1 };
	other_run(free_objs_job, &fj);
	free_all_here(stale_a, na);
	KEXPECT_EQ(heap_stats().bad_frees, bad);
	other_stop();
	kmem_drain_this_cpu();
	expect_all_back(base);
}

/* ------------------------------------------------------------------ 5 -- */

KTEST(heap_owned, a_double_free_into_a_full_set_span_is_reported)
{
	SKIP_IF_PANICKING();
	uint64_t base = heap_drained_bytes();
	unsigned n = 0;
	some[n++] = obj_alloc();
	KASSERT_NOT_NULL(some[0]);
	struct mspan *f = span_of(some[0]);
	unsigned spc = f->spanclass;
	bool ok = alloc_until(some, &n, SOME, span_is_full_set, f);
	KEXPECT_TRUE(ok);
	void *x = some[1];
	some[1] = NULL;
	KASSERT_EQ(span_of(x), f);
	/* Freed once (f to the partial set), then again: refused. */
	obj_free(x);
	KEXPECT_EQ(f->list, MSPAN_ON_OWNED);
	expect_refused(x, false, "local double free, partial set");
	/* A refill sweeps f: one free slot is not worth allocating from, so
	 * back to the full set, x's slot swept free. Now a third free. */
	struct mspan *cur = mcaches[here()].alloc[spc];
	ok = alloc_until(some, &n, SOME, span_is_full_set, f);
	KEXPECT_TRUE(ok);
	KEXPECT_NE(mcaches[here()].alloc[spc], cur);
	KEXPECT_EQ(mspan_local_cpu(f), -1);
	expect_refused(x, false, "local double free, full set");
	KEXPECT_EQ(f->list, MSPAN_ON_OWNED_FULL);
	KEXPECT_EQ(mspan_local_cpu(f), -1);
	KEXPECT_EQ(mheap_verify(), 0);
	uint64_t bad = heap_stats().bad_frees;
	free_all_here(some, n);
	KEXPECT_EQ(heap_stats().bad_frees, bad);
	expect_all_back(base);
}

KTEST(heap_owned, a_double_free_into_a_span_on_a_notice_stack_is_reported)
{
	SKIP_IF_PANICKING();
	if (cpus_online() < 2)
		KTEST_SKIP("needs a second CPU, %u online", cpus_online());
	uint64_t base = heap_drained_bytes();
	KASSERT_TRUE(other_start());
	unsigned n = 0;
	some[n++] = obj_alloc();
	KASSERT_NOT_NULL(some[0]);
	unsigned cpu = here();
	struct mspan *g = span_of(some[0]);
	bool ok = alloc_until(some, &n, SOME, span_is_full_set, g);
	KEXPECT_TRUE(ok);
	void *y = some[1];
	some[1] = NULL;
	KASSERT_EQ(span_of(y), g);
	void *q = y;
	free_on_other(&q, 1, 1);
	KEXPECT_TRUE(on_notice_stack(cpu, g));
	KEXPECT_EQ(g->list, MSPAN_ON_OWNED_FULL);
	/* Again from B (remote), then from A (its owner, full set). */
	expect_refused(y, true, "remote double free, span on the owner's notice stack");
	expect_refused(y, false, "owner's double free of a remotely freed object");
	KEXPECT_EQ(g->list, MSPAN_ON_OWNED_FULL);
	KEXPECT_EQ(mspan_local_cpu(g), -1);
	KEXPECT_EQ(g->remote_pending, 1);
	KEXPECT_TRUE(on_notice_stack(cpu, g));
	KEXPECT_EQ(mheap_verify(), 0);
	uint64_t bad = heap_stats().bad_frees;
	free_all_here(some, n);
	KEXPECT_EQ(heap_stats().bad_frees, bad);
	other_stop();
	kmem_drain_this_cpu();
	expect_all_back(base);
}

/* ------------------------------------------------- refilling a word -- */

/* The refill rule (mm/mspan.h, mspan_same_cache_word): a used-up cache
 * word is loaded again when this CPU's frees gave a quarter of it back (a
 * malloc+free pair keeps reusing its hot slots), and not for fewer: then
 * the next word with free slots comes. */
#define WORD_OBJS 400
static void *word_objs[WORD_OBJS];

static unsigned word_of(const struct mspan *s, const void *p)
{
	return (unsigned)(((uintptr_t)p - s->startaddr) / s->elemsize) / 64u;
}

/* Free `count` of the objects in word w of s; how many were there. */
static unsigned free_in_word(struct mspan *s, unsigned w, unsigned count)
{
	unsigned freed = 0;
	for (unsigned i = 0; i < WORD_OBJS && freed < count; i++) {
		if (word_objs[i] && span_of(word_objs[i]) == s && word_of(s, word_objs[i]) == w) {
			obj_free(word_objs[i]);
			word_objs[i] = NULL;
			freed++;
		}
	}
	return freed;
}

static bool cache_word_used_up(struct mspan *s)
{
	struct mcache *mc = &mcaches[here()];
	return mc->alloc[s->spanclass] == s && mc->alloc_cache[s->spanclass].free == 0;
}

KTEST(heap_owned, a_used_up_word_is_loaded_again_once_a_quarter_came_back)
{
	unsigned n = 0, w = 0;
	struct mspan *s = NULL;
	bool found = false;
	/* Allocate until this CPU's cache word of the class is used up: a
	 * full 64-slot word holding at least 32 of these objects, with a
	 * next word that has free slots. */
	while (n < WORD_OBJS && !found) {
		void *p = obj_alloc();
		KASSERT_NOT_NULL(p);
		word_objs[n++] = p;
		s = span_of(p);
		w = s->cache_word;
		if (!cache_word_used_up(s) || (w + 2u) * 64u > s->nelems ||
		    (~*mspan_alloc_word(s, w + 1) == 0))
			continue;
		unsigned mine = 0;
		for (unsigned i = 0; i < n; i++)
			mine += span_of(word_objs[i]) == s && word_of(s, word_objs[i]) == w;
		found = mine >= 32;
	}
	KASSERT_TRUE(found);

	/* A quarter back: the same word again. */
	KEXPECT_EQ(free_in_word(s, w, 16), 16);
	for (unsigned k = 0; k < 16; k++) {
		void *p = obj_alloc();
		KASSERT_NOT_NULL(p);
		KEXPECT_EQ(span_of(p), s);
		KEXPECT_EQ(word_of(s, p), w);
		for (unsigned i = 0; i < WORD_OBJS; i++)
			if (!word_objs[i]) {
				word_objs[i] = p;
				break;
			}
	}
	KEXPECT_TRUE(cache_word_used_up(s));
	/* Less than a quarter back: the next word, counted as it is loaded
	 * (this allocation; the rest as they are handed out). */
	KEXPECT_EQ(free_in_word(s, w, 15), 15);
	struct mcache *mc = &mcaches[here()];
	uint64_t counted = mcache_nmalloc(mc, s->spanclass);
	void *p = obj_alloc();
	KASSERT_NOT_NULL(p);
	KEXPECT_EQ(span_of(p), s);
	KEXPECT_EQ(word_of(s, p), w + 1);
	KEXPECT_EQ(s->cache_word, w + 1);
	KEXPECT_EQ(mcache_nmalloc(mc, s->spanclass), counted + 1);
	KEXPECT_EQ(mc->alloc_cache[s->spanclass].alloc_word, mspan_alloc_word(s, w + 1));
	KEXPECT_EQ(mheap_verify(), 0);
	obj_free(p);
	for (unsigned i = 0; i < WORD_OBJS; i++) {
		if (word_objs[i])
			obj_free(word_objs[i]);
		word_objs[i] = NULL;
	}
	KEXPECT_EQ(mheap_verify(), 0);
}

/* A span whose objects fit one word (16 KiB objects: 4 a span; 4 KiB:
 * 16): kmalloc's fast path loads its used-up word again from the cache
 * word's own fields (mm/mcache.h, mcache_reload_fast_x4), by the same
 * rule, hands out the lowest free slot and counts the slots it loaded as
 * a refill does; from a span of up to MCACHE_NEAR_SPAN_OBJS objects it
 * loads the lowest MCACHE_NEAR_SLOTS free slots only. */
#define ONE_WORD_OBJS 16

/* Allocate objects of `size` into objs until this CPU's cache word of
 * the class is used up; how many. */
static unsigned use_up_word(size_t size, void **objs, unsigned max)
{
	unsigned spc = spanclass_make(size_to_class(size), 0), n = 0;
	do {
		objs[n] = kmalloc(size, 0);
		if (!objs[n])
			break;
		n++;
	} while (n < max && mcaches[here()].alloc_cache[spc].free != 0);
	return n;
}

static void one_word_span_loaded_again(size_t size)
{
	unsigned spc = spanclass_make(size_to_class(size), 0);
	void *objs[ONE_WORD_OBJS + 1] = { 0 };
	unsigned n = use_up_word(size, objs, ONE_WORD_OBJS + 1);
	struct mcache *mc = &mcaches[here()];
	struct mspan *s = n ? span_of(objs[n - 1]) : NULL;
	/* The word used up, and its span one word. */
	bool used_up = n && mc->alloc[spc] == s && mc->alloc_cache[spc].free == 0 &&
		       s->nelems <= ONE_WORD_OBJS;
	for (unsigned i = 0; i < n; i++) {
		if (!used_up || span_of(objs[i]) == s) {
			kfree(objs[i]);
			objs[i] = NULL;
		}
	}
	KASSERT_TRUE(used_up);
	KEXPECT_EQ(mc->alloc_cache[spc].slots, s->nelems);
	uint64_t free_slots = ~*mspan_alloc_word(s, 0) & mspan_word_mask(s, 0);
	/* More free slots than a near reload takes: the cap is seen. */
	if (s->nelems > MCACHE_NEAR_SLOTS)
		KEXPECT_GT((unsigned)__builtin_popcountll(free_slots), MCACHE_NEAR_SLOTS);
	/* A quarter free at least: the word is loaded again. */
	KEXPECT_GE((unsigned)__builtin_popcountll(free_slots) * 4, s->nelems);
	uint64_t want = free_slots;   /* what the reload takes */
	if (s->nelems <= MCACHE_NEAR_SPAN_OBJS) {
		want = 0;
		for (uint64_t f = free_slots; f && __builtin_popcountll(want) < MCACHE_NEAR_SLOTS;
		     f &= f - 1)
			want |= f & (0 - f);
	}
	uint64_t counted = mcache_nmalloc(mc, spc);
	void *p = kmalloc(size, 0);
	KEXPECT_NOT_NULL(p);
	KEXPECT_EQ((uintptr_t)p, s->startaddr + (uintptr_t)__builtin_ctzll(free_slots) * s->elemsize);
	KEXPECT_EQ(mc->alloc[spc], s);
	/* Counted: this allocation, and the word's other slots as they are
	 * handed out (mcache_nmalloc leaves out the word's unused ones). */
	KEXPECT_EQ(mcache_nmalloc(mc, spc), counted + 1);
	KEXPECT_EQ(mc->alloc_cache[spc].free, want & (want - 1));
	KEXPECT_EQ(mheap_verify(), 0);
	kfree(p);
	for (unsigned i = 0; i < n; i++)
		kfree(objs[i]);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_owned, a_one_word_span_is_loaded_again_with_its_freed_slots)
{
	if (HEAP_DEBUG_MODE)
		KTEST_SKIP("the debug heap holds freed objects back: no slot comes free at once");
	one_word_span_loaded_again(16384);   /* 4 objects: all of them */
	one_word_span_loaded_again(4096);    /* 16: the lowest 4 */
}
