/*
 * tests/kernel/heap_smp_test.c - the heap under real concurrency: every CPU
 * churning every size class at once, producer/consumer pairs across CPUs
 * (one CPU allocates, another frees: the worst case for per-CPU caches),
 * large objects from each CPU's mheap arena freed on the next CPU, and
 * allocation inside the timer interrupt while the interrupted code is
 * itself in kmalloc/kfree. After each test every CPU drains its mcache, the
 * heap verifier must pass and every frame must be back in the pmm.
 * Kernel only (the hosted TSan stress covers the same ground with threads).
 */
#ifndef SPANHEAP_HOSTED
#include <stdint.h>
#include "tests/kernel/ktest.h"
#include "tests/kernel/heap_testlib.h"
#include "mm/kmalloc.h"
#include "kernel/pmm.h"
#include "mm/pagemap.h"
#include "mm/mcache.h"
#include "mm/mheap.h"
#include "kernel/smp.h"
#include "kernel/percpu.h"
#include "kernel/lapic.h"
#include "kernel/trap.h"
#include "kernel/x86.h"
#include "lib/irqflags.h"
#include "lib/string.h"

static size_t random_size(struct ktest_rng *r, unsigned *flags)
{
	uint64_t k = ktest_rng_below(r, 100);
	*flags = 0;
	if (k < 20) {
		*flags = KM_NOSCAN;
		return 1 + ktest_rng_below(r, 15); /* tiny */
	}
	if (k < 70)
		return 1 + ktest_rng_below(r, 512);
	if (k < 95)
		return 1 + ktest_rng_below(r, 32768);
	return 32769 + ktest_rng_below(r, 100000); /* large */
}

static uint64_t free_frames(void)
{
	struct pmm_stats st;
	pmm_stats(&st);
	return st.free_frames;
}

static void drain(void *arg)
{
	(void)arg;
	kmem_drain_this_cpu();
}

/* What the pmm holds once every CPU has given its cached spans back. */
struct heap_mark {
	uint64_t free_frames;
	uint64_t pagemap_bytes;
};

static struct heap_mark heap_mark(void)
{
	smp_call_all(drain, NULL);
	return (struct heap_mark){ free_frames(), pagemap_sys_bytes() };
}

/* Every CPU gives its cached spans back; then the heap must verify and
 * every frame must be back in the pmm, except the page map's leaves, which
 * the heap keeps once made (as Go keeps its arena index), 1 MiB for each
 * GiB of address space the test made it reach for the first time. */
static void expect_heap_back(struct heap_mark before)
{
	struct heap_mark after = heap_mark();
	KEXPECT_EQ(mheap_verify(), 0);
	uint64_t leaf_frames = (after.pagemap_bytes - before.pagemap_bytes) / PAGE_SIZE;
	KEXPECT_EQ(after.free_frames + leaf_frames, before.free_frames);
}

/* ---- every CPU churns every class ---- */

#define CHURN_SLOTS 128
#define CHURN_OPS 6000

struct churn_slot {
	void *p;
	size_t n;
	uint64_t tag;
};
static struct churn_slot churn_slots[MAX_CPUS][CHURN_SLOTS];
static unsigned churn_errors[MAX_CPUS];
static unsigned churn_null[MAX_CPUS];

/* Free every object of slots[0..n), each checked (a broken pattern
 * counted in *errors). */
static void free_slots(struct churn_slot *slots, unsigned n, unsigned *errors)
{
	for (unsigned i = 0; i < n; i++) {
		if (slots[i].p && !heap_check(slots[i].p, slots[i].tag, slots[i].n))
			(*errors)++;
		kfree(slots[i].p);
		slots[i].p = NULL;
	}
}

/* Operation op of CPU cpu on slot s: free its object (its pattern
 * checked: a broken one counted in *errors), or put a new one of a random
 * size there, filled (a NULL counted in *nulls). True when it freed. */
static bool churn_step(struct churn_slot *s, unsigned cpu, unsigned op, struct ktest_rng *r,
		       unsigned *errors, unsigned *nulls)
{
	if (s->p) {
		if (!heap_check(s->p, s->tag, s->n))
			(*errors)++;
		kfree(s->p);
		s->p = NULL;
		return true;
	}
	unsigned flags;
	s->n = random_size(r, &flags);
	s->tag = ((uint64_t)cpu << 32) | op;
	s->p = kmalloc(s->n, flags);
	if (s->p)
		heap_fill(s->p, s->tag, s->n);
	else
		(*nulls)++;
	return false;
}

static void churn(void *arg)
{
	(void)arg;
	unsigned cpu = this_cpu_id();
	struct churn_slot *slots = churn_slots[cpu];
	struct ktest_rng r;
	ktest_rng_seed(&r, 0x5eed0000 + cpu);
	for (unsigned op = 0; op < CHURN_OPS; op++)
		churn_step(&slots[ktest_rng_below(&r, CHURN_SLOTS)], cpu, op, &r,
			   &churn_errors[cpu], &churn_null[cpu]);
	free_slots(slots, CHURN_SLOTS, &churn_errors[cpu]);
}

KTEST(heap_smp, every_cpu_churns_every_class)
{
	struct heap_mark before = heap_mark();
	memset(churn_errors, 0, sizeof(churn_errors));
	memset(churn_null, 0, sizeof(churn_null));
	smp_call_all(churn, NULL);
	for (unsigned c = 0; c < ncpus_online; c++) {
		KEXPECT_EQ(churn_errors[c], 0);
		KEXPECT_EQ(churn_null[c], 0);
	}
	ktest_log("%u CPUs x %u operations", ncpus_online, CHURN_OPS);
	expect_heap_back(before);
}

/* ---- producer/consumer across CPUs ---- */

#define RING 64
#define PC_ITEMS 4000

/* Single-producer single-consumer ring from CPU i to CPU (i+1) % n. */
struct ring {
	void *slot[RING];
	size_t len[RING];
	uint64_t head; /* written by the producer */
	uint64_t tail; /* written by the consumer */
} __attribute__((aligned(64)));
static struct ring rings[MAX_CPUS];
static unsigned pc_errors[MAX_CPUS];
static unsigned pc_consumed[MAX_CPUS];
static unsigned pc_ncpus;

static void producer_consumer(void *arg)
{
	(void)arg;
	unsigned cpu = this_cpu_id();
	if (cpu >= pc_ncpus)
		return;
	struct ring *out = &rings[cpu];
	struct ring *in = &rings[(cpu + pc_ncpus - 1) % pc_ncpus];
	unsigned produced = 0, consumed = 0;
	struct ktest_rng r;
	ktest_rng_seed(&r, 0xc0ffee + cpu);
	while (produced < PC_ITEMS || consumed < PC_ITEMS) {
		uint64_t head = out->head;
		if (produced < PC_ITEMS &&
		    head - __atomic_load_n(&out->tail, __ATOMIC_ACQUIRE) < RING) {
			unsigned flags;
			size_t n = random_size(&r, &flags);
			void *p = kmalloc(n, flags);
			if (p)
				heap_fill(p, n, n);
			else
				pc_errors[cpu]++, n = 0; /* pass an empty item on */
			out->slot[head % RING] = p;
			out->len[head % RING] = n;
			__atomic_store_n(&out->head, head + 1, __ATOMIC_RELEASE);
			produced++;
		}
		uint64_t tail = in->tail;
		if (consumed < PC_ITEMS &&
		    __atomic_load_n(&in->head, __ATOMIC_ACQUIRE) != tail) {
			void *p = in->slot[tail % RING];
			size_t n = in->len[tail % RING];
			if (!heap_check(p, n, n))
				pc_errors[cpu]++;
			kfree(p); /* allocated on the previous CPU */
			__atomic_store_n(&in->tail, tail + 1, __ATOMIC_RELEASE);
			consumed++;
		}
	}
	pc_consumed[cpu] = consumed;
}

KTEST(heap_smp, producer_consumer_across_cpus)
{
	struct heap_mark before = heap_mark();
	pc_ncpus = ncpus_online;
	memset(rings, 0, sizeof(rings));
	memset(pc_errors, 0, sizeof(pc_errors));
	smp_call_all(producer_consumer, NULL);
	for (unsigned c = 0; c < pc_ncpus; c++) {
		KEXPECT_EQ(pc_errors[c], 0);
		KEXPECT_EQ(pc_consumed[c], PC_ITEMS);
	}
	ktest_log("%u CPUs, each freeing %u objects its neighbour allocated", pc_ncpus, PC_ITEMS);
	expect_heap_back(before);
}

/* ---- statistics read while the other CPUs allocate and free ---- */

/* kmem_get_stats counts the frees of small objects from the bitmaps
 * (mm/mstats.c: mallocs less the objects live). Read on CPU 0 while every
 * other CPU churns, each snapshot must lie within what the churners had
 * done: at least the mallocs and frees they had finished before the read,
 * at most the mallocs they had finished after it (plus one in flight per
 * CPU), frees never above mallocs, and at most the frees finished after
 * it plus the mallocs made during it (an object allocated and freed while
 * the walk ran may count as freed; plus a malloc and a free in flight per
 * CPU). In debug mode frees have only their lower bound: see below. */
#define STATS_READS 1000
/* Objects held on CPU 0 during the reads: 6 000 of 4 KiB (375 spans of
 * 64 KiB), so that each read's walk of the bitmaps lasts while the others
 * churn. With the walk and the malloc counts read in the other order
 * (mm/mstats.c) a read then comes out below the frees finished before it:
 * in about half the boots with 4 CPUs under TCG (3 of 6 tried), less often
 * with 2 (0 of 2). */
#define STATS_BALLAST 6000
static void *stats_ballast[STATS_BALLAST];
static uint64_t stats_mallocs[MAX_CPUS], stats_frees[MAX_CPUS];   /* finished */
static unsigned stats_stop;
static unsigned stats_off, stats_reads, stats_churn_errors;
static struct kmem_stats stats_base;

static uint64_t stats_sum(const uint64_t *per_cpu)
{
	uint64_t n = 0;
	for (unsigned c = 0; c < ncpus_online; c++)
		n += __atomic_load_n(&per_cpu[c], __ATOMIC_ACQUIRE);
	return n;
}

static void stats_read_while_churning(void)
{
	for (unsigned r = 0; r < STATS_READS; r++) {
		uint64_t m0 = stats_sum(stats_mallocs), f0 = stats_sum(stats_frees);
		struct kmem_stats st;
		kmem_get_stats(&st);
		uint64_t m1 = stats_sum(stats_mallocs), f1 = stats_sum(stats_frees);
		uint64_t nm = st.nmalloc - stats_base.nmalloc, nf = st.nfree - stats_base.nfree;
		uint64_t inflight = ncpus_online;
		/* Debug mode: an object leaving the quarantine during the
		 * read counts freed twice (mm/mstats.c), so frees have only
		 * their lower bound there (they may even pass the mallocs
		 * when the churners hold nothing). */
		if (nm < m0 || nm > m1 + inflight || nf < f0 ||
		    (!HEAP_DEBUG_MODE && (nf > nm || nf > f1 + (m1 - m0) + 2 * inflight))) {
			if (!stats_off)
				ktest_log("read %u: mallocs %lu in [%lu, %lu], frees %lu from %lu "
					  "(finished after: %lu)", r, (unsigned long)nm,
					  (unsigned long)m0, (unsigned long)(m1 + inflight),
					  (unsigned long)nf, (unsigned long)f0, (unsigned long)f1);
			stats_off++;
		}
		stats_reads++;
	}
	__atomic_store_n(&stats_stop, 1, __ATOMIC_RELEASE);
}

static void stats_churn(void *arg)
{
	(void)arg;
	unsigned cpu = this_cpu_id();
	if (cpu == 0) {
		stats_read_while_churning();
		return;
	}
	struct churn_slot *slots = churn_slots[cpu];
	struct ktest_rng r;
	ktest_rng_seed(&r, 0x57a70000 + cpu);
	uint64_t mallocs = 0, frees = 0;
	/* Slots filled in turn, then emptied in turn: the objects live swing
	 * between none and CHURN_SLOTS, so a read's walk overlaps many
	 * allocations (or frees) in a row. */
	for (unsigned op = 0; !__atomic_load_n(&stats_stop, __ATOMIC_ACQUIRE); op++) {
		struct churn_slot *s = &slots[op % CHURN_SLOTS];
		if (churn_step(s, cpu, op, &r, &stats_churn_errors, &stats_churn_errors))
			__atomic_store_n(&stats_frees[cpu], ++frees, __ATOMIC_RELEASE);
		else if (s->p)
			__atomic_store_n(&stats_mallocs[cpu], ++mallocs, __ATOMIC_RELEASE);
	}
	for (unsigned i = 0; i < CHURN_SLOTS; i++)
		frees += slots[i].p != NULL;
	free_slots(slots, CHURN_SLOTS, &stats_churn_errors);
	__atomic_store_n(&stats_frees[cpu], frees, __ATOMIC_RELEASE);
}

KTEST(heap_smp, statistics_while_every_other_cpu_allocates_and_frees)
{
	if (ncpus_online < 2)
		KTEST_SKIP("needs 2 CPUs, have %u", ncpus_online);
	struct heap_mark before = heap_mark();
	memset(stats_mallocs, 0, sizeof(stats_mallocs));
	memset(stats_frees, 0, sizeof(stats_frees));
	memset(churn_slots, 0, sizeof(churn_slots));
	stats_stop = stats_off = stats_reads = stats_churn_errors = 0;
	unsigned held = 0;
	while (held < STATS_BALLAST && (stats_ballast[held] = kmalloc(4096, 0)) != NULL)
		held++;
	if (held < STATS_BALLAST) {
		for (unsigned i = 0; i < held; i++)
			kfree(stats_ballast[i]);
		KTEST_SKIP("needs %u objects of 4 KiB, got %u", STATS_BALLAST, held);
	}
	stats_base = heap_stats();
	smp_call_all(stats_churn, NULL);
	for (unsigned i = 0; i < held; i++)
		kfree(stats_ballast[i]);
	KEXPECT_EQ(stats_reads, STATS_READS);
	KEXPECT_EQ(stats_off, 0);
	KEXPECT_EQ(stats_churn_errors, 0);
	/* Quiet again: exact (the ballast's frees too). */
	struct kmem_stats st = heap_stats();
	KEXPECT_EQ(st.nmalloc - stats_base.nmalloc, stats_sum(stats_mallocs));
	KEXPECT_EQ(st.nfree - stats_base.nfree, stats_sum(stats_frees) + STATS_BALLAST);
	ktest_log("%u reads while %u CPUs made %lu objects", STATS_READS, ncpus_online - 1,
		  (unsigned long)stats_sum(stats_mallocs));
	expect_heap_back(before);
}

/* ---- large objects in each CPU's arena, freed on another CPU ---- */

#define ARENA_OBJS 24
static void *arena_objs[MAX_CPUS][ARENA_OBJS];
static size_t arena_sizes[MAX_CPUS][ARENA_OBJS];
static unsigned arena_misplaced[MAX_CPUS], arena_errors[MAX_CPUS];

/* Each CPU's large objects, from its own arena (mm/mheap.h). */
static void arena_allocate(void *arg)
{
	(void)arg;
	unsigned cpu = this_cpu_id();
	struct ktest_rng r;
	ktest_rng_seed(&r, 0xa4e4a000 + cpu);
	for (unsigned i = 0; i < ARENA_OBJS; i++) {
		size_t n = 32769 + ktest_rng_below(&r, 600 * 1024);
		void *p = kmalloc(n, 0);
		struct mspan *s = p ? mheap_span_of(p) : NULL;
		if (!s || s->chunk->heap != mheap_of_cpu(cpu))
			arena_misplaced[cpu]++;
		if (p)
			heap_fill(p, ((uint64_t)cpu << 32) | i, n);
		arena_objs[cpu][i] = p;
		arena_sizes[cpu][i] = n;
	}
}

/* ... freed by the next CPU, all CPUs at once. */
static void arena_free_neighbours(void *arg)
{
	unsigned n = *(unsigned *)arg, cpu = this_cpu_id(), from = (cpu + 1) % n;
	for (unsigned i = 0; i < ARENA_OBJS; i++) {
		void *p = arena_objs[from][i];
		if (p && !heap_check(p, ((uint64_t)from << 32) | i, arena_sizes[from][i]))
			arena_errors[cpu]++;
		kfree(p);
	}
}

KTEST(heap_smp, large_objects_go_back_to_their_cpus_arena)
{
	if (ncpus_online < 2 || MHEAP_NARENAS < 2)
		KTEST_SKIP("needs 2 CPUs and 2 arenas, have %u and %u", ncpus_online,
			   (unsigned)MHEAP_NARENAS);
	struct heap_mark before = heap_mark();
	unsigned n = ncpus_online;
	memset(arena_misplaced, 0, sizeof(arena_misplaced));
	memset(arena_errors, 0, sizeof(arena_errors));
	smp_call_all(arena_allocate, NULL);
	smp_call_all(arena_free_neighbours, &n);
	for (unsigned c = 0; c < n; c++) {
		KEXPECT_EQ(arena_misplaced[c], 0);
		KEXPECT_EQ(arena_errors[c], 0);
	}
	ktest_log("%u CPUs x %u large objects, each freed by the next CPU", n, ARENA_OBJS);
	expect_heap_back(before);
}

/* ---- allocation in the timer interrupt ---- */

#define IRQ_KEEP 8
static struct churn_slot irq_slots[MAX_CPUS][IRQ_KEEP];
static unsigned irq_runs[MAX_CPUS];
static unsigned irq_errors[MAX_CPUS];

static void timer_allocates(unsigned cpu)
{
	/* Replace one kept object per tick, so objects live across ticks and
	 * interrupted kmalloc/kfree calls of the same CPU. */
	unsigned i = irq_runs[cpu]++ % IRQ_KEEP;
	struct churn_slot *s = &irq_slots[cpu][i];
	if (s->p) {
		if (!heap_check(s->p, s->tag, s->n))
			irq_errors[cpu]++;
		kfree(s->p);
	}
	s->n = 8 + (irq_runs[cpu] * 37) % 3000;
	s->tag = 0x1770000 + cpu * 1000 + irq_runs[cpu];
	s->p = kmalloc(s->n, irq_runs[cpu] % 3 ? 0 : KM_NOSCAN);
	if (s->p)
		heap_fill(s->p, s->tag, s->n);
	else
		irq_errors[cpu]++;
	/* And a short-lived tiny one. */
	void *t = kmalloc(5, KM_NOSCAN);
	if (!t)
		irq_errors[cpu]++;
	kfree(t);
}

static void churn_until_ticks(void *arg)
{
	(void)arg;
	unsigned cpu = this_cpu_id();
	/* Churn while the timer interrupts us, until it has run enough. */
	for (int round = 0; round < 200 && irq_runs[cpu] < 20; round++)
		churn(NULL);
}

/* Every CPU's fast paths reach that CPU's own mcache (kmalloc_init set
 * each CPU's pointer, whenever the CPU came up). */
static void *local_seen[MAX_CPUS];

static void read_local(void *arg)
{
	(void)arg;
	unsigned long irq;
	void *mc = mm_irq_save_local(&irq);
	local_seen[this_cpu_id()] = mc;
	mm_irq_restore_local(irq);
}

KTEST(heap_smp, every_cpu_reaches_its_own_mcache)
{
	memset(local_seen, 0, sizeof(local_seen));
	smp_call_all(read_local, NULL);
	KEXPECT_GE(ncpus_online, 1);
	for (unsigned c = 0; c < ncpus_online; c++)
		KEXPECT_EQ(local_seen[c], (void *)&mcaches[c]);
}

/* fn on every CPU while each timer tick calls hook; then every CPU drains
 * its mcache, after which no hook call is still running. */
static void churn_with_timer_hook(timer_hook_t hook, void (*fn)(void *arg))
{
	smp_set_timer_hook(hook);
	smp_call_all(fn, NULL);
	smp_set_timer_hook(NULL);
	smp_call_all(drain, NULL);
}

KTEST(heap_smp, allocation_inside_the_timer_interrupt)
{
	struct heap_mark before = heap_mark();
	memset(irq_runs, 0, sizeof(irq_runs));
	memset(irq_errors, 0, sizeof(irq_errors));
	memset(churn_errors, 0, sizeof(churn_errors));
	churn_with_timer_hook(timer_allocates, churn_until_ticks);
	for (unsigned c = 0; c < ncpus_online; c++) {
		KEXPECT_GE(irq_runs[c], 20);
		KEXPECT_EQ(irq_errors[c], 0);
		KEXPECT_EQ(churn_errors[c], 0);
		free_slots(irq_slots[c], IRQ_KEEP, &irq_errors[c]);
		KEXPECT_EQ(irq_errors[c], 0);
	}
	expect_heap_back(before);
}

/* ---- an interrupt storm ---- */

/* Every CPU frees, resizes and allocates (kmalloc, kzalloc,
 * kmalloc_aligned) with its timer at STORM_HZ, and each tick does too,
 * from interrupt context, with objects of the same few classes (two
 * small classes, a tiny size, one large size: storm_size): interrupts
 * land all over the heap's paths (those that arrive in the fast text
 * where the CPU leaves it), and often find the code they interrupted in
 * the middle of the class they work on. A quarter of the CPUs' steps and half the ticks' go
 * through slots that every CPU shares, so frees are remote too, on both
 * sides of an interrupt. */
#define STORM_HZ 20000
#define STORM_TICKS 3000
#define STORM_SLOTS 64
static struct churn_slot storm_slots[MAX_CPUS][STORM_SLOTS];
static struct churn_slot storm_irq_slots[MAX_CPUS][IRQ_KEEP];
static struct ktest_rng storm_irq_rng[MAX_CPUS];
static unsigned storm_runs[MAX_CPUS];
static unsigned storm_errors[MAX_CPUS];

/* One more error on CPU cpu: its ticks count there too, between the
 * load and the store of a plain increment. */
static void storm_error(unsigned cpu)
{
	__atomic_fetch_add(&storm_errors[cpu], 1, __ATOMIC_RELAXED);
}

/* A tiny size, a class of spans of several words (48 bytes), one of
 * spans of a single word whose used-up word kmalloc's fast path loads
 * again, four slots at a time (4 KiB: mm/mcache.h,
 * mcache_reload_fast_x4), and a large size. */
static size_t storm_size(struct ktest_rng *r, unsigned *flags)
{
	uint64_t k = ktest_rng_below(r, 16);
	*flags = k < 4 ? KM_NOSCAN : 0;
	return k < 4 ? 5 : k < 11 ? 48 : k < 15 ? 4096 : 40000;
}

/* Is p's first n bytes zero? */
static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* Free, resize (krealloc) or allocate (kmalloc, kzalloc, or
 * kmalloc_aligned) one object of slot s; false on a broken pattern, a
 * dirty kzalloc, a misaligned object or a NULL. */
static bool storm_step(struct churn_slot *s, struct ktest_rng *r, uint64_t tag)
{
	unsigned flags, how = (unsigned)ktest_rng_below(r, 8);
	if (s->p && how == 0) {
		size_t n = storm_size(r, &flags);
		void *p = krealloc(s->p, n, flags);
		if (!p)
			return false;
		bool ok = heap_check_upto(p, s->tag, s->n, n < s->n ? n : s->n);
		s->p = p;
		s->n = n;
		heap_fill(p, s->tag, n);
		return ok;
	}
	if (s->p) {
		bool ok = heap_check(s->p, s->tag, s->n);
		kfree(s->p);
		s->p = NULL;
		return ok;
	}
	s->n = storm_size(r, &flags);
	s->tag = tag;
	size_t align = (size_t)64 << ktest_rng_below(r, 7);   /* 64 B .. 4 KiB */
	bool ok = true;
	if (how == 1) {
		s->p = kzalloc(s->n, flags);
		ok = !s->p || all_zero(s->p, s->n);
	} else if (how == 2) {
		s->p = kmalloc_aligned(s->n, align, flags);
		ok = !s->p || ((uintptr_t)s->p & (align - 1)) == 0;
	} else {
		s->p = kmalloc(s->n, flags);
	}
	if (!s->p)
		return false;
	heap_fill(s->p, s->tag, s->n);
	return ok;
}

/* Objects any CPU's tick may free: most of them another CPU made. Each
 * is patterned by its own address over its whole usable size. */
#define STORM_SHARED 64
static void *storm_shared[STORM_SHARED];

static bool shared_step(struct ktest_rng *r)
{
	void **slot = &storm_shared[ktest_rng_below(r, STORM_SHARED)];
	void *old = __atomic_exchange_n(slot, NULL, __ATOMIC_ACQUIRE);
	if (old) {
		bool ok = heap_check(old, (uintptr_t)old, ksize(old));
		kfree(old);
		return ok;
	}
	unsigned flags;
	size_t n = storm_size(r, &flags);
	void *p = kmalloc(n, flags);
	if (!p)
		return false;
	heap_fill(p, (uintptr_t)p, ksize(p));
	void *expected = NULL;
	if (!__atomic_compare_exchange_n(slot, &expected, p, false, __ATOMIC_RELEASE,
					 __ATOMIC_RELAXED))
		kfree(p);   /* another CPU filled the slot meanwhile */
	return true;
}

static void free_shared(unsigned *errors)
{
	for (unsigned i = 0; i < STORM_SHARED; i++) {
		void *p = storm_shared[i];
		if (p && !heap_check(p, (uintptr_t)p, ksize(p)))
			(*errors)++;
		kfree(p);
		storm_shared[i] = NULL;
	}
}

/* Every other tick works on this CPU's own slots, the others on the
 * shared ones (remote frees, from interrupt context). */
static void timer_frees_or_allocates(unsigned cpu)
{
	unsigned run = storm_runs[cpu]++;
	bool ok = run & 1 ? shared_step(&storm_irq_rng[cpu]) :
			    storm_step(&storm_irq_slots[cpu][run / 2 % IRQ_KEEP], &storm_irq_rng[cpu],
				       0x570e000000ull + ((uint64_t)cpu << 24) + run);
	if (!ok)
		storm_error(cpu);
}

static void churn_in_a_storm(void *arg)
{
	(void)arg;
	unsigned cpu = this_cpu_id();
	struct ktest_rng r;
	ktest_rng_seed(&r, 0x5707e000 + cpu);
	ktest_rng_seed(&storm_irq_rng[cpu], 0x570e0000 + cpu);
	lapic_timer_start(STORM_HZ);
	uint64_t deadline = rdtsc() + tsc_khz() * 60000; /* 60 s */
	for (uint64_t op = 0; __atomic_load_n(&storm_runs[cpu], __ATOMIC_RELAXED) < STORM_TICKS &&
			      rdtsc() < deadline; op++) {
		struct churn_slot *s = &storm_slots[cpu][ktest_rng_below(&r, STORM_SLOTS)];
		bool ok = op % 4 == 3 ? shared_step(&r) : storm_step(s, &r, ((uint64_t)cpu << 32) | op);
		if (!ok)
			storm_error(cpu);
	}
	if (smp_timer_hz())
		lapic_timer_start(smp_timer_hz());
	else
		lapic_timer_stop();
	free_slots(storm_slots[cpu], STORM_SLOTS, &storm_errors[cpu]);
}

KTEST(heap_smp, churn_in_an_interrupt_storm)
{
	struct heap_mark before = heap_mark();
	memset(storm_runs, 0, sizeof(storm_runs));
	memset(storm_errors, 0, sizeof(storm_errors));
	churn_with_timer_hook(timer_frees_or_allocates, churn_in_a_storm);
	free_shared(&storm_errors[0]);
	for (unsigned c = 0; c < ncpus_online; c++) {
		KEXPECT_GE(storm_runs[c], STORM_TICKS);
		free_slots(storm_irq_slots[c], IRQ_KEEP, &storm_errors[c]);
		KEXPECT_EQ(storm_errors[c], 0);
	}
	ktest_log("%u CPUs, %u ticks on CPU 0, each a free or an allocation", ncpus_online,
		  storm_runs[0]);
	expect_heap_back(before);
}

/* ---- an interrupt as kmalloc leaves its fast path ---- */

/* kmalloc's fast path ends in the fast text; when the class's cache word
 * is used up it jumps to the refill, out of the text, and an interrupt
 * held back there runs at that jump (kernel/trap.c, heap_step). A
 * handler that allocates from the same class refills the cache word
 * itself; the refill it interrupted must then take from that word, not
 * load another over it (a BUG_ON in cache_load_take until it did). */
#define SAME_CLASS_SIZE 48
static void *hook_obj;
static unsigned hook_armed;   /* CPU id + 1 whose next tick allocates */

static void timer_allocates_same_class(unsigned cpu)
{
	if (__atomic_load_n(&hook_armed, __ATOMIC_ACQUIRE) != cpu + 1)
		return;
	__atomic_store_n(&hook_armed, 0, __ATOMIC_RELAXED);
	hook_obj = kmalloc(SAME_CLASS_SIZE, 0);
}

/* kmalloc_noflags(size) called right after `sti`: an interrupt pending
 * with interrupts off is taken after the call instruction, at kmalloc's
 * first instruction, in the fast text. */
__attribute__((noinline)) static void *kmalloc_as_interrupts_open(size_t size)
{
	register size_t arg __asm__("rdi") = size;
	void *p;
	__asm__ volatile("sti\n\tcall kmalloc_noflags"
			 : "=a"(p), "+r"(arg)
			 :
			 : "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "memory", "cc");
	return p;
}

KTEST(heap_smp, an_interrupt_as_kmalloc_leaves_its_fast_path_for_a_refill)
{
	if (DEBUG_HEAP)
		KTEST_SKIP("debug mode has no fast path");
	KASSERT_TRUE(arch_irqs_enabled());
	struct heap_mark before = heap_mark();
	enum { KEEP = 130 };
	static void *keep[KEEP];
	unsigned n = 0;
	void *first = kmalloc(SAME_CLASS_SIZE, 0);
	KASSERT_NOT_NULL(first);
	unsigned spc = mheap_span_of(first)->spanclass;

	unsigned long irq = arch_irq_save();
	struct cpu *c = this_cpu();
	struct mcache *mc = &mcaches[c->id];
	/* Use up this CPU's cache word of the class. */
	while (n < KEEP && mc->alloc_cache[spc].free != 0)
		keep[n++] = kmalloc(SAME_CLASS_SIZE, 0);
	uint64_t left = mc->alloc_cache[spc].free;
	hook_obj = NULL;
	smp_set_timer_hook(timer_allocates_same_class);
	__atomic_store_n(&hook_armed, c->id + 1, __ATOMIC_RELEASE);
	uint64_t deferrals = c->heap_deferrals, ticks = c->irq_count;
	lapic_send_ipi(c->apic_id, VEC_TIMER);   /* pending: interrupts are off */
	void *p = kmalloc_as_interrupts_open(SAME_CLASS_SIZE);
	uint64_t deferred = c->heap_deferrals - deferrals, ran = c->irq_count - ticks;
	arch_irq_restore(irq);
	smp_set_timer_hook(NULL);
	__atomic_store_n(&hook_armed, 0, __ATOMIC_RELAXED);

	KEXPECT_EQ(left, 0);          /* the cache word was used up */
	KEXPECT_GE(deferred, 1);      /* the tick came in the fast text */
	KEXPECT_GE(ran, 1);           /* and its handler ran within kmalloc */
	KEXPECT_NOT_NULL(hook_obj);
	KEXPECT_NOT_NULL(p);
	KEXPECT_NE(p, hook_obj);
	KEXPECT_EQ(mheap_verify(), 0);
	kfree(p);
	kfree(hook_obj);
	for (unsigned i = 0; i < n; i++)
		kfree(keep[i]);
	kfree(first);
	KEXPECT_EQ(mheap_verify(), 0);
	expect_heap_back(before);
}
#endif
