/*
 * tests/kernel/smp_test.c - every CPU the MADT listed is online, runs work
 * handed to it, has its own per-CPU area and stack, and takes timer
 * interrupts. Kernel only.
 */
#ifndef SPANHEAP_HOSTED
#include <stdint.h>
#include "tests/kernel/ktest.h"
#include "kernel/smp.h"
#include "kernel/percpu.h"
#include "kernel/lapic.h"
#include "kernel/kargs.h"
#include "kernel/x86.h"
#include "kernel/paging.h"
#include "lib/irqflags.h"
#include "lib/string.h"
#include "kernel/trap.h"
#include "mm/platform.h"

static uint32_t seen_id[MAX_CPUS];
static uintptr_t seen_self[MAX_CPUS];
static uintptr_t seen_rsp[MAX_CPUS];
static unsigned hits;

static void record(void *arg)
{
	(void)arg;
	unsigned id = this_cpu_id();
	int x;
	seen_id[id] = id + 1;
	seen_self[id] = (uintptr_t)this_cpu();
	seen_rsp[id] = (uintptr_t)&x;
	__atomic_fetch_add(&hits, 1, __ATOMIC_RELAXED);
}

KTEST(smp, call_all_runs_once_on_every_cpu)
{
	hits = 0;
	smp_call_all(record, NULL);
	KEXPECT_EQ(hits, ncpus_online);
	for (unsigned id = 0; id < ncpus_online; id++) {
		KEXPECT_EQ(seen_id[id], id + 1);
		KEXPECT_EQ(seen_self[id], (uintptr_t)&cpus[id]);
		if (id > 0) {
			/* APs run on their own stacks in the guarded stack area. */
			KEXPECT_GE(seen_rsp[id], KSTACK_AREA_BASE);
			KEXPECT_LT(seen_rsp[id], KSTACK_AREA_END);
			KEXPECT_LE(seen_rsp[id], (uintptr_t)cpus[id].stack_top);
		}
	}
	ktest_log("%u CPU(s) online", ncpus_online);
}

/* Each CPU's #DF, NMI and #MC stacks (its TSS's IST slots) are its own:
 * an AP's in the guarded stack area, 8 KiB each, apart from every other
 * CPU's; and writable (a word just below each top, written and read back
 * by the CPU itself, before any exception can use it). */
static void touch_ist(void *arg)
{
	(void)arg;
	struct cpu *c = this_cpu();
	for (int i = 0; i < 3; i++) {
		volatile uint64_t *w = (volatile uint64_t *)(c->tss.ist[i] - 64);
		*w = c->tss.ist[i];
		if (*w != c->tss.ist[i])
			__atomic_fetch_add(&hits, 1000, __ATOMIC_RELAXED);
	}
	__atomic_fetch_add(&hits, 1, __ATOMIC_RELAXED);
}

KTEST(smp, each_cpu_has_its_own_exception_stacks)
{
	hits = 0;
	smp_call_all(touch_ist, NULL);
	KEXPECT_EQ(hits, ncpus_online);
	for (unsigned a = 0; a < ncpus_online; a++) {
		for (int i = 0; i < 3; i++) {
			uint64_t top = cpus[a].tss.ist[i];
			KEXPECT_NE(top, 0);
			if (a > 0) {
				KEXPECT_EQ(top, (uint64_t)cpus[a].ist_top[i]);
				KEXPECT_GE(top - 8192, KSTACK_AREA_BASE);
				KEXPECT_LE(top, KSTACK_AREA_END);
			}
			for (unsigned b = 0; b <= a; b++)
				for (int j = 0; j < 3; j++)
					if (b != a || j != i) {
						uint64_t other = cpus[b].tss.ist[j];
						KEXPECT_TRUE(top <= other - 8192 || top - 8192 >= other);
					}
		}
	}
}

KTEST(smp, apic_ids_are_distinct)
{
	for (unsigned a = 0; a < ncpus_online; a++)
		for (unsigned b = a + 1; b < ncpus_online; b++)
			KEXPECT_NE(cpus[a].apic_id, cpus[b].apic_id);
	KEXPECT_EQ(lapic_id(), cpus[0].apic_id);
}

static void wait_for_ticks(void *arg)
{
	uint64_t want = (uint64_t)(uintptr_t)arg;
	struct cpu *c = this_cpu();
	uint64_t start = c->irq_count;
	/* Interrupts are on while a CPU runs mailbox work; give it time. */
	uint64_t deadline = rdtsc() + tsc_khz() * 5000; /* 5 s */
	while (c->irq_count - start < want && rdtsc() < deadline)
		cpu_relax();
}

KTEST(smp, timer_interrupts_reach_every_cpu)
{
	uint64_t before[MAX_CPUS];
	for (unsigned id = 0; id < ncpus_online; id++)
		before[id] = cpus[id].irq_count;
	KASSERT_TRUE(arch_irqs_enabled());
	smp_call_all(wait_for_ticks, (void *)(uintptr_t)3);
	for (unsigned id = 0; id < ncpus_online; id++)
		KEXPECT_GE(cpus[id].irq_count - before[id], 3);
}

/* Wait until a timer interrupt on CPU c was noted and deferred by the
 * heap (its bit in heap_deferred), or until deadline; whether it was.
 * Inline: the fast-text test below must call nothing. */
static inline __attribute__((always_inline)) int wait_timer_noted(struct cpu *c,
								  uint64_t deadline)
{
	while (!(__atomic_load_n(&c->heap_deferred, __ATOMIC_RELAXED) & 1u << (VEC_TIMER - 32)) &&
	       rdtsc() < deadline)
		cpu_relax();
	return (__atomic_load_n(&c->heap_deferred, __ATOMIC_RELAXED) >> (VEC_TIMER - 32)) & 1;
}

/* The heap's fast-path sections mask interrupts in software
 * (kernel/mm_platform.h): a timer interrupt that arrives inside one,
 * here two nested, is noted and its handler (which counts irq_count)
 * runs only as the outer section ends, on every CPU. */
struct section_seen {
	int deferred;                 /* the timer's bit was noted */
	uint64_t ticks_inside;        /* handler runs inside the sections */
	uint64_t ticks_after_inner;   /* ... after the inner one ended */
	uint64_t ticks_after_outer;   /* ... after the outer one ended */
	uint32_t section_after;       /* heap_section at the end */
	uint64_t deferrals;
};
static struct section_seen section_seen[MAX_CPUS];

static void section_defers_the_timer(void *arg)
{
	(void)arg;
	struct cpu *c = this_cpu();
	struct section_seen *r = &section_seen[c->id];
	uint64_t deadline = rdtsc() + tsc_khz() * 5000; /* 5 s */
	uint64_t deferrals = c->heap_deferrals;
	unsigned long outer, inner;
	mm_irq_save_local(&outer);
	mm_irq_save_local(&inner);
	uint64_t ticks = __atomic_load_n(&c->irq_count, __ATOMIC_RELAXED);
	r->deferred = wait_timer_noted(c, deadline);
	r->ticks_inside = __atomic_load_n(&c->irq_count, __ATOMIC_RELAXED) - ticks;
	mm_irq_restore_local(inner);
	r->ticks_after_inner = __atomic_load_n(&c->irq_count, __ATOMIC_RELAXED) - ticks;
	mm_irq_restore_local(outer);
	r->ticks_after_outer = __atomic_load_n(&c->irq_count, __ATOMIC_RELAXED) - ticks;
	r->section_after = __atomic_load_n(&c->heap_section, __ATOMIC_RELAXED);
	r->deferrals = c->heap_deferrals - deferrals;
}

KTEST(smp, an_interrupt_in_a_heap_section_waits_for_its_end)
{
	KASSERT_TRUE(arch_irqs_enabled());
	memset(section_seen, 0, sizeof(section_seen));
	smp_call_all(section_defers_the_timer, NULL);
	for (unsigned id = 0; id < ncpus_online; id++) {
		struct section_seen *r = &section_seen[id];
		KEXPECT_EQ(r->deferred, 1);
		KEXPECT_EQ(r->ticks_inside, 0);
		KEXPECT_EQ(r->ticks_after_inner, 0);
		KEXPECT_GE(r->ticks_after_outer, 1);
		KEXPECT_EQ(r->section_after, 0);
		KEXPECT_GE(r->deferrals, 1);
	}
}

/* The heap's fast text (kernel/mm_platform.h): a timer interrupt that
 * arrives while a CPU runs there is noted, the CPU single-steps until it
 * leaves the text, and the handler runs then, on every CPU. The wait
 * below stands for a fast path: it is in the fast text and calls
 * nothing. */
struct fast_text_seen {
	int deferred;                 /* the timer's bit was noted */
	uint64_t ticks_inside;        /* handler runs inside the text */
	uint64_t ticks_after;         /* ... after it returned */
	uint32_t stepping_after;      /* heap_stepping then */
	uint32_t deferred_after;      /* heap_deferred then */
	int trap_flag_after;          /* RFLAGS.TF then */
	uint64_t deferrals;
};
static struct fast_text_seen fast_text_seen[MAX_CPUS];

MM_FAST_TEXT __attribute__((noinline)) static int
wait_in_fast_text(struct cpu *c, uint64_t deadline, uint64_t *ticks_inside)
{
	uint64_t ticks = __atomic_load_n(&c->irq_count, __ATOMIC_RELAXED);
	int noted = wait_timer_noted(c, deadline);
	*ticks_inside = __atomic_load_n(&c->irq_count, __ATOMIC_RELAXED) - ticks;
	return noted;
}

static void fast_text_defers_the_timer(void *arg)
{
	(void)arg;
	struct cpu *c = this_cpu();
	struct fast_text_seen *r = &fast_text_seen[c->id];
	uint64_t deadline = rdtsc() + tsc_khz() * 5000; /* 5 s */
	uint64_t deferrals = c->heap_deferrals;
	uint64_t ticks = __atomic_load_n(&c->irq_count, __ATOMIC_RELAXED);
	r->deferred = wait_in_fast_text(c, deadline, &r->ticks_inside);
	r->ticks_after = __atomic_load_n(&c->irq_count, __ATOMIC_RELAXED) - ticks;
	r->stepping_after = __atomic_load_n(&c->heap_stepping, __ATOMIC_RELAXED);
	r->deferred_after = __atomic_load_n(&c->heap_deferred, __ATOMIC_RELAXED);
	r->trap_flag_after = (__builtin_ia32_readeflags_u64() >> 8) & 1;
	r->deferrals = c->heap_deferrals - deferrals;
}

KTEST(smp, an_interrupt_in_the_heaps_fast_text_waits_until_the_cpu_leaves_it)
{
	KASSERT_TRUE(arch_irqs_enabled());
	memset(fast_text_seen, 0, sizeof(fast_text_seen));
	smp_call_all(fast_text_defers_the_timer, NULL);
	for (unsigned id = 0; id < ncpus_online; id++) {
		struct fast_text_seen *r = &fast_text_seen[id];
		KEXPECT_EQ(r->deferred, 1);
		KEXPECT_EQ(r->ticks_inside, 0);
		KEXPECT_GE(r->ticks_after, 1);
		KEXPECT_EQ(r->stepping_after, 0);
		KEXPECT_EQ(r->deferred_after, 0);
		KEXPECT_EQ(r->trap_flag_after, 0);
		KEXPECT_GE(r->deferrals, 1);
	}
}

/* The same, but the CPU opens a section before it leaves the fast text,
 * as kfree's miss path does (mm/malloc.c, kfree_core): the handler must
 * wait for the section's end, not run as the CPU steps out of the text,
 * where it found kfree's tiny free half decided and its block changed
 * under it (a valid free refused as a double free: efi-direct-smp4 once
 * in make test). */
struct fast_text_section_seen {
	int deferred;                 /* the timer's bit was noted */
	uint64_t ticks_in_section;    /* handler runs once out of the text */
	uint64_t ticks_after;         /* ... after the section ended */
	uint32_t section_after;       /* heap_section then */
	uint32_t stepping_after;      /* heap_stepping then */
	int trap_flag_after;          /* RFLAGS.TF then */
};
static struct fast_text_section_seen fast_text_section_seen[MAX_CPUS];

MM_FAST_TEXT __attribute__((noinline)) static int
wait_in_fast_text_then_open_a_section(struct cpu *c, uint64_t deadline, unsigned long *irq)
{
	int noted = wait_timer_noted(c, deadline);
	mm_irq_save_local(irq);
	return noted;
}

static void fast_text_then_section(void *arg)
{
	(void)arg;
	struct cpu *c = this_cpu();
	struct fast_text_section_seen *r = &fast_text_section_seen[c->id];
	uint64_t deadline = rdtsc() + tsc_khz() * 5000; /* 5 s */
	uint64_t ticks = __atomic_load_n(&c->irq_count, __ATOMIC_RELAXED);
	unsigned long irq;
	r->deferred = wait_in_fast_text_then_open_a_section(c, deadline, &irq);
	r->ticks_in_section = __atomic_load_n(&c->irq_count, __ATOMIC_RELAXED) - ticks;
	mm_irq_restore_local(irq);
	r->ticks_after = __atomic_load_n(&c->irq_count, __ATOMIC_RELAXED) - ticks;
	r->section_after = __atomic_load_n(&c->heap_section, __ATOMIC_RELAXED);
	r->stepping_after = __atomic_load_n(&c->heap_stepping, __ATOMIC_RELAXED);
	r->trap_flag_after = (__builtin_ia32_readeflags_u64() >> 8) & 1;
}

KTEST(smp, an_interrupt_in_the_fast_text_waits_for_a_section_opened_there)
{
	KASSERT_TRUE(arch_irqs_enabled());
	memset(fast_text_section_seen, 0, sizeof(fast_text_section_seen));
	smp_call_all(fast_text_then_section, NULL);
	for (unsigned id = 0; id < ncpus_online; id++) {
		struct fast_text_section_seen *r = &fast_text_section_seen[id];
		KEXPECT_EQ(r->deferred, 1);
		KEXPECT_EQ(r->ticks_in_section, 0);
		KEXPECT_GE(r->ticks_after, 1);
		KEXPECT_EQ(r->section_after, 0);
		KEXPECT_EQ(r->stepping_after, 0);
		KEXPECT_EQ(r->trap_flag_after, 0);
	}
}

/* With the kernel argument smp.fake_missing_cpu (one boot configuration
 * of make test passes it), smp_init also tried a CPU that does not exist:
 * it must have been reported and skipped, and the others started. */
KTEST(smp, silent_cpu_is_skipped)
{
	if (!kernel_arg("smp.fake_missing_cpu", NULL, 0)) {
		KEXPECT_EQ(smp_cpus_skipped, 0);
		return;
	}
	KEXPECT_EQ(smp_cpus_skipped, 1);
	for (unsigned id = 0; id < ncpus_online; id++)
		KEXPECT_NE(cpus[id].apic_id, SMP_FAKE_APIC_ID);
}

/* Online CPU ids are dense: 0..ncpus_online-1 are online and nothing
 * above. With smp.fake_missing_cpu=1 (a make test boot passes it) the
 * silent CPU sits between the boot CPU and the real APs in the MADT list,
 * so an AP that kept the id it was offered before a failure would leave a
 * gap here. Every online CPU runs smp_call_all's work exactly once. */
static unsigned runs_on[MAX_CPUS];
static void count_run(void *arg)
{
	(void)arg;
	__atomic_fetch_add(&runs_on[this_cpu_id()], 1, __ATOMIC_RELAXED);
}

KTEST(smp, online_ids_are_dense)
{
	for (unsigned id = 0; id < MAX_CPUS; id++) {
		KEXPECT_EQ(cpus[id].online, id < ncpus_online);
		if (id < ncpus_online)
			KEXPECT_EQ(cpus[id].id, id);
		runs_on[id] = 0;
	}
	smp_call_all(count_run, NULL);
	for (unsigned id = 0; id < MAX_CPUS; id++)
		KEXPECT_EQ(runs_on[id], id < ncpus_online ? 1u : 0u);
	char pos[16];
	if (kernel_arg("smp.fake_missing_cpu", pos, sizeof(pos)) && pos[0])
		ktest_log("silent CPU at MADT position %s; %u CPU(s) online, %u skipped", pos,
			  ncpus_online, smp_cpus_skipped);
}

static unsigned counter;
static void contend(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100000; i++)
		__atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
}

KTEST(smp, cpus_run_concurrently)
{
	counter = 0;
	smp_call_all(contend, NULL);
	KEXPECT_EQ(counter, 100000u * ncpus_online);
}
#endif

#if !defined(SPANHEAP_HOSTED) && KTEST_SELFCHECK == 2 && defined(SPINLOCK_DEBUG)
#include "lib/spinlock.h"
/* Built only with `make test DEBUG=1 KTEST_SELFCHECK=2`: a self-deadlock.
 * The debug spinlock must turn it into a panic naming the owner CPU. */
static spinlock_t stuck_lock = SPINLOCK_INIT("selfcheck_stuck");

KTEST(selfcheck, lock_held_too_long_must_panic)
{
	spin_lock(&stuck_lock);
	ktest_log("taking '%s' again on CPU %u: the debug lock must panic", stuck_lock.name,
		  this_cpu_id());
	spin_lock(&stuck_lock);
}
#endif
