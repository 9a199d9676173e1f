/*
 * kernel/smp.h - bringing up the other CPUs and running work on them.
 */
#ifndef KERNEL_SMP_H
#define KERNEL_SMP_H
#include <stddef.h>
#include "kernel/percpu.h"

/* Find the CPUs (ACPI MADT), start every AP (INIT-SIPI-SIPI), start each
 * CPU's APIC timer at timer_hz. rsdp: the multiboot2 copy or NULL.
 * Afterwards the online CPUs' ids are exactly 0..ncpus_online-1 (the boot
 * CPU is 0): an AP that did not start leaves no gap, so a loop over
 * 0..ncpus_online visits every online CPU and no other. */
void smp_init(const void *rsdp, size_t rsdp_len, unsigned timer_hz);

/* CPUs the MADT listed that did not come online in time (skipped). */
extern unsigned smp_cpus_skipped;
/* The APIC id that the kernel argument smp.fake_missing_cpu[=POSITION]
 * adds to the MADT's CPU list (at the end, or at that position). */
#define SMP_FAKE_APIC_ID 0xf0

/* Run fn(arg) on every online CPU at once (the caller's included), and
 * return when all have finished. fn gets this CPU's id via this_cpu_id().
 * Only one smp_call_all runs at a time (calls are serialised). */
void smp_call_all(void (*fn)(void *arg), void *arg);
/* Same, on CPUs [0, n) only (n <= ncpus_online). */
void smp_call_n(unsigned n, void (*fn)(void *arg), void *arg);

/* A function each CPU's timer interrupt calls (after counting it), or
 * NULL. Tests use it to allocate from interrupt context. */
typedef void (*timer_hook_t)(unsigned cpu);
void smp_set_timer_hook(timer_hook_t hook);
/* The rate every CPU's timer was started at (0: none), so that a test
 * that changed its own CPU's (lapic_timer_start) can put it back. */
unsigned smp_timer_hz(void);

#endif
