/*
 * tests/kernel/heap_pressure_test.c - kmem_release_request: under memory
 * pressure every CPU gives back what its caches hold for it alone (tiny
 * block, allocation spans, owned spans, notices, page cache) at its next
 * allocation slow path or idle pass (mm/malloc.c, answer_release_request).
 * A CPU first fills owned sets, the request is made, and the sets must be
 * untouched until that CPU takes a slow path (or, on another CPU, passes
 * through kmem_scavenge_idle), and empty afterwards, with every object
 * intact and the heap verifying. An allocation that fails waits for the
 * other CPUs' answers and tries again (release_everywhere).
 */
#include <stdbool.h>
#include <stdint.h>
#include "tests/kernel/ktest.h"
#include "tests/kernel/heap_testlib.h"
#include "mm/kmalloc.h"
#include "mm/mcache.h"
#include "mm/mheap.h"
#include "mm/platform.h"
#ifndef SPANHEAP_HOSTED
#include "kernel/smp.h"
#include "kernel/percpu.h"
#include "kernel/lapic.h"
#include "mm/malloc_internal.h"   /* kmem_idle_lock */
#endif

#define HOARD_OBJS 4000
#define HOARD_SIZE 48

static unsigned current_cpu(void)
{
	unsigned long irq = mm_irq_save();
	unsigned cpu = mm_cpu_id();
	mm_irq_restore(irq);
	return cpu;
}

/* Spans CPU cpu keeps in its owned sets (partial and full). */
static uint64_t owned_spans(unsigned cpu)
{
	uint64_t n = 0;
	for (unsigned spc = 0; spc < NUM_SPAN_CLASSES; spc++)
		n += mcaches[cpu].nowned[spc] + mcaches[cpu].nfull[spc];
	return n;
}

static void *hoard[HOARD_OBJS];

/* Fill spans of one class on this CPU, then free every other object:
 * used-up spans land in the full set and the frees move some back to the
 * partial set. */
static void make_hoard(void)
{
	for (unsigned i = 0; i < HOARD_OBJS; i++) {
		hoard[i] = kmalloc(HOARD_SIZE, 0);
		if (hoard[i])
			heap_fill_range(hoard[i], i, 0, HOARD_SIZE);
	}
	for (unsigned i = 0; i < HOARD_OBJS; i += 2) {
		kfree(hoard[i]);
		hoard[i] = NULL;
	}
}

/* The objects left are intact; free them. */
static unsigned free_hoard(void)
{
	unsigned bad = 0;
	for (unsigned i = 0; i < HOARD_OBJS; i++) {
		if (!hoard[i])
			continue;
		if (heap_check_range(hoard[i], i, 0, HOARD_SIZE) != HOARD_SIZE)
			bad++;
		kfree(hoard[i]);
		hoard[i] = NULL;
	}
	return bad;
}

KTEST(heap_pressure, this_cpu_answers_at_its_next_slow_path)
{
	unsigned cpu = current_cpu();
	make_hoard();
	for (unsigned i = 1; i < HOARD_OBJS; i += 2)
		KASSERT_NOT_NULL(hoard[i]);
	uint64_t before = owned_spans(cpu);
	KEXPECT_GT(before, 1);

	kmem_release_request();
	/* The request itself waits for nobody. */
	KEXPECT_EQ(owned_spans(cpu), before);
	/* A large allocation is not a slow path of the small-object caches. */
	void *big = kmalloc(40000, 0);
	KASSERT_NOT_NULL(big);
	KEXPECT_EQ(owned_spans(cpu), before);
	kfree(big);

	/* An aligned small allocation always takes the slow path: the
	 * answer comes first. */
	void *q = kmalloc_aligned(100, 4096, 0);
	KASSERT_NOT_NULL(q);
	KEXPECT_EQ(owned_spans(cpu), 0);
	KEXPECT_EQ(mcaches[cpu].owned_pages, 0);
	/* The allocation span of the hoard's class went back too. */
	KEXPECT_EQ(mcaches[cpu].alloc[spanclass_make(size_to_class(HOARD_SIZE), 0)],
		   MCACHE_NO_SPAN);
	KEXPECT_EQ(mheap_verify(), 0);
	kfree(q);

	/* A second slow path has nothing new to answer: sets refill. */
	KEXPECT_EQ(free_hoard(), 0);
	KEXPECT_EQ(mheap_verify(), 0);
	kmem_drain_this_cpu();
}

/* A used-up cache word of a span of one word is loaded again on
 * kmalloc's fast path (mm/mcache.h, mcache_reload_fast_x4), but not while
 * a release request waits for this CPU: a CPU that only ever reloads
 * (a malloc+free pair of 16 KiB objects) must still answer. */
KTEST(heap_pressure, a_word_loaded_again_on_the_fast_path_answers_first)
{
	if (HEAP_DEBUG_MODE)
		KTEST_SKIP("the debug heap has no fast path: every allocation takes the slow "
			   "path, which answers");
	unsigned cpu = current_cpu();
	unsigned spc = spanclass_make(size_to_class(16384), 0);
	void *objs[8] = { 0 };
	unsigned n = 0;
	do {
		objs[n] = kmalloc(16384, 0);
	} while (objs[n] && ++n < 8 && mcaches[cpu].alloc_cache[spc].free != 0);
	/* The word used up, all its slots from the span this test holds. */
	struct mspan *s = n ? mheap_span_of(objs[n - 1]) : NULL;
	bool used_up = n && objs[n - 1] && mcaches[cpu].alloc[spc] == s &&
		       mcaches[cpu].alloc_cache[spc].free == 0;
	for (unsigned i = 0; i < 8; i++)
		kfree(objs[i]);
	KASSERT_TRUE(used_up);
	uint32_t seen = mcaches[cpu].pressure_seen;
	kmem_release_request();
	void *p = kmalloc(16384, 0);
	KEXPECT_NOT_NULL(p);
	KEXPECT_NE(mcaches[cpu].pressure_seen, seen);
	KEXPECT_EQ(owned_spans(cpu), 0);
	KEXPECT_EQ(mheap_verify(), 0);
	kfree(p);
	kmem_drain_this_cpu();
}

#ifndef SPANHEAP_HOSTED
/* The CPU that hoards and answers; CPU 0 asks. */
#define HOARD_CPU 1u

static void hoard_on_cpu1(void *arg)
{
	(void)arg;
	if (this_cpu_id() == HOARD_CPU)
		make_hoard();
}

static void idle_pass_on_cpu1(void *arg)
{
	(void)arg;
	if (this_cpu_id() == HOARD_CPU)
		kmem_scavenge_idle();
}

static void free_on_cpu1(void *bad)
{
	if (this_cpu_id() == HOARD_CPU)
		*(unsigned *)bad = free_hoard();
}

static void drain(void *arg)
{
	(void)arg;
	kmem_drain_this_cpu();
}

/* CPU 1 hoards, CPU 0 asks (explicitly, or by running out of memory),
 * CPU 1 answers on its idle pass. */
static void idle_cpu_answers(bool by_oom)
{
	if (ncpus_online < 2)
		KTEST_SKIP("needs 2 CPUs, have %u", ncpus_online);
	smp_call_n(2, hoard_on_cpu1, NULL);
	uint64_t before = owned_spans(HOARD_CPU);
	KEXPECT_GT(before, 1);

	if (by_oom) {
		uint64_t oom = heap_stats().oom;
		/* Impossible: 64 TiB, aligned to 32 TiB. (Counted once, or
		 * more when the debug mode's layer retries.) */
		KEXPECT_NULL(kmalloc_aligned((size_t)1 << 46, (size_t)1 << 45, 0));
		KEXPECT_GT(heap_stats().oom, oom);
	} else {
		kmem_release_request();
	}
	/* CPU 1 answers on an idle pass: this one, or one of its own when its
	 * timer wakes it first. */
	smp_call_n(2, idle_pass_on_cpu1, NULL);
	KEXPECT_EQ(owned_spans(HOARD_CPU), 0);
	KEXPECT_EQ(mcaches[HOARD_CPU].owned_pages, 0);

	unsigned bad = 0;
	smp_call_n(2, free_on_cpu1, &bad);
	KEXPECT_EQ(bad, 0);
	smp_call_all(drain, NULL);
	KEXPECT_EQ(mheap_verify(), 0);
}

/* mheap_verify and kmem_drain_all read every CPU's mcache while an idle
 * CPU answering a release request changes its own: kmem_idle_lock keeps
 * the idle CPU out while they look (mm/malloc.c). CPU 0 holds the lock as
 * they do, asks for a release and waits until every other CPU's idle pass
 * queues on the lock: CPU 1's owned sets stay as they are until the lock
 * is let go, and its idle pass empties them then. */
KTEST(heap_pressure, an_idle_cpu_keeps_out_while_the_heap_is_inspected)
{
	if (ncpus_online < 2)
		KTEST_SKIP("needs 2 CPUs, have %u", ncpus_online);
	smp_call_n(2, hoard_on_cpu1, NULL);
	uint64_t before = owned_spans(HOARD_CPU);
	KEXPECT_GT(before, 1);

	unsigned long irq = mm_irq_save();
	mm_spin_lock(&kmem_idle_lock);
	kmem_release_request();
	/* Each other CPU's timer wakes it, and its idle pass, which has a
	 * request to answer, queues on the lock (a ticket drawn beyond
	 * ours). */
	uint32_t queued = 0;
	for (int ms = 0; ms < 2000 && queued < ncpus_online; ms++) {
		udelay(1000);
		queued = __atomic_load_n(&kmem_idle_lock.next, __ATOMIC_RELAXED) -
			 __atomic_load_n(&kmem_idle_lock.serving, __ATOMIC_RELAXED);
	}
	udelay(5000);   /* time enough to have changed something, were it not waiting */
	uint64_t held = owned_spans(HOARD_CPU);
	mm_spin_unlock(&kmem_idle_lock);
	mm_irq_restore(irq);
	KEXPECT_EQ(queued, ncpus_online);   /* ours and every other CPU's idle pass */
	KEXPECT_EQ(held, before);

	for (int ms = 0; ms < 2000 && owned_spans(HOARD_CPU) != 0; ms++)
		udelay(1000);
	KEXPECT_EQ(owned_spans(HOARD_CPU), 0);
	unsigned bad = 0;
	smp_call_n(2, free_on_cpu1, &bad);
	KEXPECT_EQ(bad, 0);
	smp_call_all(drain, NULL);
	KEXPECT_EQ(mheap_verify(), 0);
}

KTEST(heap_pressure, another_cpu_answers_on_its_idle_pass)
{
	idle_cpu_answers(false);
}

KTEST(heap_pressure, running_out_of_memory_asks_every_cpu)
{
	idle_cpu_answers(true);
}
#endif

#ifdef SPANHEAP_HOSTED
#include <pthread.h>
#include <sched.h>
#include <time.h>

/* An object size whose spans hold 32 objects (8 pages). */
#define HELD_SIZE 2048
#define HELD_OBJS 32
#define FILL_MAX 4096
static void *held[HELD_OBJS];
static void *fill_objs[FILL_MAX];
static int held_phase;

static void wait_phase(int want)
{
	while (__atomic_load_n(&held_phase, __ATOMIC_ACQUIRE) != want)
		sched_yield();
}

/* The other thread: holds a span of HELD_SIZE objects with free slots,
 * answers requests only on its idle passes, a millisecond apart. */
static void *holding_thread(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < HELD_OBJS; i++)
		held[i] = kmalloc(HELD_SIZE, 0);
	for (unsigned i = 0; i < HELD_OBJS; i += 2) {
		kfree(held[i]);
		held[i] = NULL;
	}
	__atomic_store_n(&held_phase, 1, __ATOMIC_RELEASE);
	wait_phase(2);
	/* The fill's failures made it give the span back: take it again. */
	held[0] = kmalloc(HELD_SIZE, 0);
	__atomic_store_n(&held_phase, 3, __ATOMIC_RELEASE);
	while (__atomic_load_n(&held_phase, __ATOMIC_ACQUIRE) == 3) {
		kmem_scavenge_idle();
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	for (unsigned i = 0; i < HELD_OBJS; i++)
		kfree(held[i]);
	kmem_drain_this_cpu();
	return NULL;
}

/* With the platform giving nothing more and the heap's pages used up,
 * the only free HELD_SIZE slots are in the other thread's span: this
 * thread's allocation fails, asks, waits for the other's idle pass to give
 * the span back, and succeeds. */
KTEST(heap_pressure, a_failed_allocation_waits_for_the_others_to_answer)
{
	uint64_t base = heap_drained_bytes();
	__atomic_store_n(&held_phase, 0, __ATOMIC_RELAXED);
	pthread_t t;
	KASSERT_EQ(pthread_create(&t, NULL, holding_thread, NULL), 0);
	wait_phase(1);
	mm_host_set_sys_limit(mm_host_sys_bytes());
	unsigned n = 0;
	while (n < FILL_MAX && (fill_objs[n] = kmalloc(64 * 1024, 0)) != NULL)
		n++;
	KEXPECT_LT(n, FILL_MAX);
	__atomic_store_n(&held_phase, 2, __ATOMIC_RELEASE);
	wait_phase(3);
	KEXPECT_NOT_NULL(held[0]);
	uint64_t oom = heap_stats().oom;
	void *mine = kmalloc(HELD_SIZE, 0);
	KEXPECT_NOT_NULL(mine);
	KEXPECT_EQ(heap_stats().oom, oom);
	kfree(mine);
	for (unsigned i = 0; i < n; i++)
		kfree(fill_objs[i]);
	mm_host_set_sys_limit(0);
	__atomic_store_n(&held_phase, 4, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	KEXPECT_EQ(mheap_verify(), 0);
	KEXPECT_EQ(heap_drained_bytes(), base);
}
#endif
