/*
 * kernel/lapic.c - the local APIC.
 *
 * x2APIC registers are MSRs 0x800 + (xAPIC offset >> 4); the ICR is one
 * 64-bit MSR with the destination in its high half. In xAPIC mode the
 * registers are 32-bit MMIO at the base from the MADT, mapped uncached.
 * The TSC and the APIC timer are calibrated once against a 10 ms PIT
 * one-shot: channel 2 (gate on port 0x61), which every PC has, or channel 0
 * on a machine without port 0x61 (QEMU's microvm).
 */
#include "kernel/lapic.h"
#include "kernel/x86.h"
#include "kernel/printk.h"
#include "kernel/panic.h"
#include "kernel/trap.h"
#include "kernel/paging.h"

#define MSR_APIC_BASE 0x1b
#define APIC_BASE_ENABLE (1UL << 11)
#define APIC_BASE_X2APIC (1UL << 10)

#define REG_ID      0x020
#define REG_TPR     0x080
#define REG_EOI     0x0b0
#define REG_SVR     0x0f0
#define REG_ESR     0x280
#define REG_ICR_LO  0x300
#define REG_ICR_HI  0x310
#define REG_LVT_TIMER 0x320
#define REG_TIMER_INIT 0x380
#define REG_TIMER_CUR  0x390
#define REG_TIMER_DIV  0x3e0

static bool x2apic;
static volatile uint32_t *mmio;
static uint64_t tsc_per_ms;
static uint32_t apic_ticks_per_ms;

static uint32_t rd(uint32_t reg)
{
	if (x2apic)
		return (uint32_t)rdmsr(0x800 + (reg >> 4));
	return mmio[reg / 4];
}

static void wr(uint32_t reg, uint32_t v)
{
	if (x2apic)
		wrmsr(0x800 + (reg >> 4), v);
	else
		mmio[reg / 4] = v;
}

static void icr_send(uint32_t apic_id, uint32_t low)
{
	if (x2apic) {
		wrmsr(0x830, ((uint64_t)apic_id << 32) | low);
		return;
	}
	wr(REG_ICR_HI, apic_id << 24);
	wr(REG_ICR_LO, low);
	while (rd(REG_ICR_LO) & (1u << 12)) /* delivery pending */
		cpu_relax();
}

bool lapic_x2apic(void)
{
	return x2apic;
}

/* The legacy 8259 PICs: remap them away from the exception vectors (the
 * BIOS leaves IRQ0 on vector 8, where it would look like a double fault)
 * to 0xf0-0xff, and mask every line. The local APIC does the rest. */
static void pic_disable(void)
{
	outb(0x20, 0x11);  /* ICW1: init, expect ICW4 */
	outb(0xa0, 0x11);
	outb(0x21, 0xf0);  /* ICW2: vector base */
	outb(0xa1, 0xf8);
	outb(0x21, 0x04);  /* ICW3: slave on IRQ2 */
	outb(0xa1, 0x02);
	outb(0x21, 0x01);  /* ICW4: 8086 mode */
	outb(0xa1, 0x01);
	outb(0x21, 0xff);  /* mask everything */
	outb(0xa1, 0xff);
}

void lapic_init(uint64_t lapic_phys)
{
	pic_disable();
	uint32_t a, b, c, d;
	cpuid(1, 0, &a, &b, &c, &d);
	if (!(d & (1u << 9)))
		panic("lapic: this CPU has no local APIC");
	x2apic = (c >> 21) & 1;
	if (!x2apic) {
		if (!lapic_phys)
			lapic_phys = rdmsr(MSR_APIC_BASE) & ~0xfffUL;
		mmio = paging_map_phys(lapic_phys, 4096, PROT_READ | PROT_WRITE | PROT_NOCACHE);
		if (!mmio)
			panic("lapic: cannot map the local APIC at %#lx", lapic_phys);
	}
}

void lapic_init_cpu(void)
{
	uint64_t base = rdmsr(MSR_APIC_BASE) | APIC_BASE_ENABLE;
	if (x2apic)
		base |= APIC_BASE_X2APIC;
	wrmsr(MSR_APIC_BASE, base);
	wr(REG_TPR, 0);
	wr(REG_SVR, 0x100 | VEC_SPURIOUS);
	wr(REG_LVT_TIMER, 1u << 16); /* masked until started */
}

uint32_t lapic_id(void)
{
	return x2apic ? rd(REG_ID) : rd(REG_ID) >> 24;
}

void lapic_eoi(void)
{
	wr(REG_EOI, 0);
}

void lapic_send_ipi(uint32_t apic_id, uint8_t vector)
{
	icr_send(apic_id, vector | (1u << 14));
}

void lapic_start_ap(uint32_t apic_id, uint8_t vector)
{
	icr_send(apic_id, 0x4500);               /* INIT, assert */
	udelay(10000);
	for (int i = 0; i < 2; i++) {
		icr_send(apic_id, 0x4600 | vector);  /* STARTUP */
		udelay(200);
	}
}

/* A PIT one-shot of ms milliseconds (mode 0), polled by pit_expired().
 * Channel 2, whose gate and output are on port 0x61, as on every PC. A
 * machine without port 0x61 (QEMU's microvm: no speaker port) reads 0xff
 * there, so OUT2 looks high right after the start, when mode 0 holds it
 * low; then channel 0 (always gated on) runs the one-shot instead and its
 * OUT is read with the read-back command. */
static bool pit_use_ch0;

static void pit_wait_start(unsigned ms)
{
	uint32_t count = 1193182u * ms / 1000;
	outb(0x61, (inb(0x61) & ~0x02) | 0x01); /* gate on, speaker off */
	outb(0x43, 0xb0);                         /* ch2, lo/hi, mode 0 */
	outb(0x42, count & 0xff);
	outb(0x42, count >> 8);
	/* Reload the gate to start counting. */
	uint8_t v = inb(0x61);
	outb(0x61, v & ~0x01);
	outb(0x61, v | 0x01);
	pit_use_ch0 = inb(0x61) & 0x20;
	if (pit_use_ch0) {
		outb(0x43, 0x30);                 /* ch0, lo/hi, mode 0 */
		outb(0x40, count & 0xff);
		outb(0x40, count >> 8);
	}
}

static int pit_expired(void)
{
	if (!pit_use_ch0)
		return inb(0x61) & 0x20;
	outb(0x43, 0xe2);                         /* read back ch0's status */
	return inb(0x40) & 0x80;                  /* OUT */
}

void lapic_timer_calibrate(void)
{
	wr(REG_TIMER_DIV, 0x3);          /* divide by 16 */
	wr(REG_LVT_TIMER, 1u << 16);     /* masked, one-shot */
	pit_wait_start(10);
	uint64_t t0 = rdtsc();
	wr(REG_TIMER_INIT, 0xffffffff);
	while (!pit_expired())
		cpu_relax();
	uint64_t t1 = rdtsc();
	uint32_t left = rd(REG_TIMER_CUR);
	wr(REG_TIMER_INIT, 0);
	tsc_per_ms = (t1 - t0) / 10;
	apic_ticks_per_ms = (0xffffffffu - left) / 10;
	if (!tsc_per_ms)
		tsc_per_ms = 1000000;
	if (!apic_ticks_per_ms)
		apic_ticks_per_ms = 1000;
	printk("lapic: %s mode, TSC %lu kHz, APIC timer %u kHz (bus/16), against PIT channel %d\n",
	       x2apic ? "x2APIC" : "xAPIC", tsc_per_ms, apic_ticks_per_ms, pit_use_ch0 ? 0 : 2);
}

void lapic_timer_start(unsigned hz)
{
	uint32_t count = apic_ticks_per_ms * 1000 / hz;
	wr(REG_TIMER_DIV, 0x3);
	wr(REG_LVT_TIMER, VEC_TIMER | (1u << 17)); /* periodic */
	wr(REG_TIMER_INIT, count ? count : 1);
}

void lapic_timer_stop(void)
{
	wr(REG_LVT_TIMER, 1u << 16);
	wr(REG_TIMER_INIT, 0);
}

uint64_t tsc_khz(void)
{
	return tsc_per_ms;
}

void udelay(uint64_t us)
{
	uint64_t per_ms = tsc_per_ms ? tsc_per_ms : 3000000; /* before calibration: assume 3 GHz */
	uint64_t end = rdtsc() + per_ms * us / 1000;
	while (rdtsc() < end)
		cpu_relax();
}
