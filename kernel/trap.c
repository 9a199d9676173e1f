/*
 * kernel/trap.c - the IDT, and what happens on an exception or interrupt.
 *
 * Every exception is reported (vector name, error code, RIP with its
 * symbol, CR2 for page faults, registers, stack trace) and then panics;
 * nothing is ever left to become a silent triple fault. Double fault, NMI
 * and machine check run on their own IST stacks, so a kernel stack overflow
 * (a fault in a guard page) is still reported. Device interrupts go to the
 * handler registered with irq_set_handler.
 *
 * An interrupt that arrives inside one of the heap's fast-path sections
 * is deferred to the section's end (heap_section_defer, _replay), one in
 * the heap's fast text until the CPU has stepped out of it (heap_step;
 * the protocols: kernel/mm_platform.h).
 *
 * trap_catch_fault() lets a test run code that is meant to fault: the
 * CPU's catch slot (per CPU, only touched by that CPU with interrupts off
 * inside the handler) holds a kjmp buffer, and the exception handler jumps
 * back to it instead of panicking.
 */
#include <stdbool.h>
#include <stddef.h>
#include "kernel/trap.h"
#include "kernel/panic.h"
#include "kernel/printk.h"
#include "kernel/percpu.h"
#include "kernel/x86.h"
#include "kernel/ksyms.h"
#include "lib/irqflags.h"

struct idt_entry {
	uint16_t off0;
	uint16_t sel;
	uint8_t ist;
	uint8_t type;
	uint16_t off1;
	uint32_t off2;
	uint32_t zero;
} __attribute__((packed));

static struct idt_entry idt[256] __attribute__((aligned(16)));
static irq_handler_t handlers[256];
extern const uint64_t isr_table[];

static void set_gate(unsigned v, uint64_t addr, unsigned ist)
{
	idt[v].off0 = addr & 0xffff;
	idt[v].sel = 0x08;
	idt[v].ist = ist;
	idt[v].type = 0x8e; /* present, DPL 0, 64-bit interrupt gate */
	idt[v].off1 = (addr >> 16) & 0xffff;
	idt[v].off2 = addr >> 32;
	idt[v].zero = 0;
}

void idt_init(void)
{
	for (unsigned v = 0; v < 32; v++) {
		unsigned ist = v == 8 ? 1 : v == 2 ? 2 : v == 18 ? 3 : 0;
		set_gate(v, isr_table[v], ist);
	}
	set_gate(VEC_TIMER, isr_table[32], 0);
	set_gate(VEC_IPI_CALL, isr_table[33], 0);
	set_gate(VEC_SPURIOUS, isr_table[34], 0);
}

void idt_load(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) p = { sizeof(idt) - 1, (uint64_t)idt };
	__asm__ volatile("lidt %0" : : "m"(p));
}

void irq_set_handler(unsigned vector, irq_handler_t h)
{
	handlers[vector] = h;
}

static const char *const names[32] = {
	"divide error", "debug", "NMI", "breakpoint", "overflow",
	"bound range exceeded", "invalid opcode", "device not available",
	"double fault", "coprocessor segment overrun", "invalid TSS",
	"segment not present", "stack-segment fault", "general protection fault",
	"page fault", "reserved 15", "x87 floating-point error", "alignment check",
	"machine check", "SIMD floating-point error", "virtualization exception",
	"control protection", "reserved 22", "reserved 23", "reserved 24",
	"reserved 25", "reserved 26", "reserved 27", "hypervisor injection",
	"VMM communication", "security exception", "reserved 31",
};

const char *trap_name(unsigned vector)
{
	return vector < 32 ? names[vector] : "interrupt";
}

/* --- expected faults (tests) --- */

struct kjmp {
	uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip, rflags;
};
int kjmp_set(struct kjmp *j) __attribute__((returns_twice));
_Noreturn void kjmp_long(struct kjmp *j, int v);

static struct {
	struct kjmp *jmp;
	struct fault_info *info;
} catchers[MAX_CPUS];

int trap_catch_fault(void (*fn)(void *), void *arg, struct fault_info *out)
{
	struct kjmp j;
	unsigned cpu = this_cpu_id();
	out->vector = out->error = out->rip = out->cr2 = 0;
	int v = kjmp_set(&j);
	if (v == 0) {
		catchers[cpu].info = out;
		__atomic_store_n(&catchers[cpu].jmp, &j, __ATOMIC_RELEASE);
		fn(arg);
		catchers[cpu].jmp = NULL;
		return 0;
	}
	/* Back from the fault: the handler disarmed the slot. */
	return v;
}

static void report_fault(struct trap_frame *f)
{
	uintptr_t off;
	const char *sym = ksym_lookup(f->rip, &off);
	if (f->vector == VEC_PAGE_FAULT) {
		uint64_t cr2 = read_cr2();
		uint64_t e = f->error;
		panic_frame(f, "page fault: %s of %#lx (%s%s%s), error %#lx, at RIP %#lx <%s+%#lx>",
			    e & 16 ? "instruction fetch" : e & 2 ? "write" : "read",
			    cr2, e & 1 ? "protection violation" : "page not present",
			    e & 8 ? ", reserved bit set" : "", e & 4 ? ", user" : "",
			    e, f->rip, sym ? sym : "?", sym ? off : 0);
	}
	if (f->vector == VEC_DOUBLE_FAULT)
		panic_frame(f, "double fault (kernel stack overflow? CR2=%#lx), at RIP %#lx <%s+%#lx>",
			    read_cr2(), f->rip, sym ? sym : "?", sym ? off : 0);
	panic_frame(f, "%s (vector %lu), error %#lx, at RIP %#lx <%s+%#lx>",
		    trap_name((unsigned)f->vector), f->vector, f->error, f->rip,
		    sym ? sym : "?", sym ? off : 0);
}

/* The heap's fast text (kernel/mm_platform.h, linker.ld). */
extern const char __mm_fast_start[], __mm_fast_end[];
#define RFLAGS_TF (1ul << 8)
#define VEC_DEBUG 1

static bool in_heap_fast_text(uint64_t rip)
{
	return rip >= (uint64_t)__mm_fast_start && rip < (uint64_t)__mm_fast_end;
}

/* An interrupt inside a heap fast-path section on this CPU, or in the
 * heap's fast text: noted, not handled (nor acknowledged) until the
 * section ends or the CPU steps out of the text. */
_Static_assert(VEC_TIMER >= 32 && VEC_IPI_CALL < 64, "heap_deferred has a bit for each");
static int heap_section_defer(struct trap_frame *f)
{
	if (!percpu_ready || f->vector == VEC_SPURIOUS)
		return 0;
	struct cpu *c = this_cpu();
	if (c->heap_section) {
		c->heap_section |= HEAP_SECTION_DEFERRED;
	} else if (c->heap_stepping || in_heap_fast_text(f->rip)) {
		c->heap_stepping = 1;
		f->rflags |= RFLAGS_TF;   /* step out of the fast text: heap_step */
	} else {
		return 0;
	}
	c->heap_deferred |= 1u << (f->vector - 32);
	c->heap_deferrals++;
	return 1;
}

static void run_handler(struct trap_frame *f)
{
	if (handlers[f->vector])
		handlers[f->vector](f);
	else if (f->vector != VEC_SPURIOUS)
		printk("trap: unexpected interrupt %lu\n", f->vector);
}

/* The deferred handlers, lowest vector first, interrupts off. Their
 * frame holds only the vector, where the deferring code ended (rip) and
 * the flags it ran with. */
static void run_deferred(struct cpu *c, uint64_t rip, uint64_t rflags)
{
	uint32_t pending = c->heap_deferred;
	c->heap_deferred = 0;
	while (pending) {
		struct trap_frame f = { 0 };
		f.vector = 32 + (unsigned)__builtin_ctz(pending);
		f.rip = rip;
		f.cs = 0x08;
		f.rflags = rflags;
		pending &= pending - 1;
		run_handler(&f);
	}
}

/* From heap_section_exit (kernel/isr.S), at the end of a section that an
 * interrupt was deferred in: once the outermost section has ended, the
 * deferred handlers run. */
void heap_section_replay(void)
{
	unsigned long irq = arch_irq_save();
	struct cpu *c = this_cpu();
	if ((c->heap_section & ~HEAP_SECTION_DEFERRED) == 0) {
		c->heap_section = 0;
		run_deferred(c, (uint64_t)__builtin_return_address(0), irq);
	}
	arch_irq_restore(irq);
}

/*
 * The heap's fast text (kernel/mm_platform.h): an interrupt that arrives
 * while this CPU executes there is noted as in a section, and the CPU
 * returns to it with the trap flag set; each debug exception that follows
 * (one per instruction) looks whether RIP has left the range, and once it
 * has, clears the flag and runs the deferred handlers, unless the CPU
 * opened a section before it left (kfree's miss path does: mm/malloc.c,
 * kfree_core), whose end runs them then (heap_section_replay).
 */
static void heap_step(struct trap_frame *f)
{
	struct cpu *c = this_cpu();
	if (in_heap_fast_text(f->rip))
		return;   /* one more instruction */
	f->rflags &= ~RFLAGS_TF;
	c->heap_stepping = 0;
	if (c->heap_section) {
		c->heap_section |= HEAP_SECTION_DEFERRED;
		return;
	}
	run_deferred(c, f->rip, f->rflags);
}

void trap_dispatch(struct trap_frame *f)
{
	if (f->vector >= 32) {
		if (!heap_section_defer(f))
			run_handler(f);
		return;
	}
	if (f->vector == VEC_DEBUG && percpu_ready && this_cpu()->heap_stepping) {
		heap_step(f);
		return;
	}
	if (percpu_ready && f->vector != VEC_DOUBLE_FAULT && f->vector != 2 && f->vector != 18) {
		unsigned cpu = this_cpu_id();
		struct kjmp *j = catchers[cpu].jmp;
		if (j) {
			struct fault_info *out = catchers[cpu].info;
			out->vector = f->vector;
			out->error = f->error;
			out->rip = f->rip;
			out->cr2 = f->vector == VEC_PAGE_FAULT ? read_cr2() : 0;
			catchers[cpu].jmp = NULL;
			kjmp_long(j, (int)f->vector ? (int)f->vector : 256);
		}
	}
	report_fault(f);
}
