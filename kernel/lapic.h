/*
 * kernel/lapic.h - the local APIC (x2APIC mode when the CPU has it, else
 * xAPIC through MMIO): identity, inter-processor interrupts, the timer.
 */
#ifndef KERNEL_LAPIC_H
#define KERNEL_LAPIC_H
#include <stdint.h>
#include <stdbool.h>

/* Boot CPU: choose the mode, map the MMIO page if needed. */
void lapic_init(uint64_t lapic_phys);
/* Every CPU: enable its APIC (spurious vector 255), accept interrupts. */
void lapic_init_cpu(void);
uint32_t lapic_id(void);
bool lapic_x2apic(void);
void lapic_eoi(void);
/* Send INIT, then two STARTUP IPIs with vector (trampoline page >> 12). */
void lapic_start_ap(uint32_t apic_id, uint8_t vector);
/* Fixed-delivery IPI of `vector` to one CPU. */
void lapic_send_ipi(uint32_t apic_id, uint8_t vector);
/* Periodic timer on this CPU at about hz interrupts per second
 * (vector 32). lapic_timer_calibrate must have run on the boot CPU. */
void lapic_timer_start(unsigned hz);
void lapic_timer_stop(void);
void lapic_timer_calibrate(void);

/* Busy-wait, TSC-based (calibrated against the PIT at boot). */
void udelay(uint64_t us);
uint64_t tsc_khz(void);
#endif
