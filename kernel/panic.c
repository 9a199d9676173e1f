/*
 * kernel/panic.c - the kernel's last words (see panic.h).
 *
 * panic() may run on any CPU, with any lock held, even inside printk, so it
 * prints with printk_unlocked. A panic inside panic (a fault while
 * reporting) goes straight to the exit. Whoever wants a last word (the
 * self-test runner, to fail the running test) installs a panic hook; the
 * kernel itself knows nothing of tests.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include "kernel/panic.h"
#include "kernel/printk.h"
#include "kernel/trap.h"
#include "kernel/ksyms.h"
#include "kernel/qemu.h"
#include "kernel/percpu.h"
#include "kernel/x86.h"
#include "lib/printf.h"
#include "lib/irqflags.h"

static int panicking;   /* 0, or the id + 1 of the CPU that reports its panic */
static void (*panic_hook)(const char *msg);

void panic_set_hook(void (*hook)(const char *msg))
{
	__atomic_store_n(&panic_hook, hook, __ATOMIC_RELEASE);
}

/* addr with its symbol. A return address (ret) is looked up one byte
 * back: the call before it may be its function's last instruction (a
 * call of a noreturn function such as panic), and the address then
 * names the next function. */
static void print_sym(const char *prefix, uintptr_t addr, bool ret)
{
	uintptr_t off;
	const char *name = ksym_lookup(ret ? addr - 1 : addr, &off);
	if (name && ret)
		off++;
	if (name)
		printk_unlocked("%s0x%016lx <%s+%#lx>\n", prefix, addr, name, off);
	else
		printk_unlocked("%s0x%016lx\n", prefix, addr);
}

static int plausible_stack(uintptr_t p)
{
	return p >= 0xffff800000000000UL && (p & 7) == 0;
}

/* The trace from rip (an instruction's address, or, rip_ret, a return
 * address) up the frame-pointer chain from rbp. */
static void dump_stack(unsigned long rbp, unsigned long rip, bool rip_ret)
{
	printk_unlocked("Call trace:\n");
	if (rip)
		print_sym("  ", rip, rip_ret);
	for (int depth = 0; depth < 32 && plausible_stack(rbp); depth++) {
		uintptr_t *frame = (uintptr_t *)rbp;
		uintptr_t ret = frame[1];
		if (!ret)
			break;
		print_sym("  ", ret, true);
		if (frame[0] <= rbp)
			break;
		rbp = frame[0];
	}
}

static void print_regs(const struct trap_frame *f)
{
	printk_unlocked("RIP: 0x%016lx  RSP: 0x%016lx  RFLAGS: %#010lx\n", f->rip, f->rsp, f->rflags);
	printk_unlocked("RAX: 0x%016lx  RBX: 0x%016lx  RCX: 0x%016lx\n", f->rax, f->rbx, f->rcx);
	printk_unlocked("RDX: 0x%016lx  RSI: 0x%016lx  RDI: 0x%016lx\n", f->rdx, f->rsi, f->rdi);
	printk_unlocked("RBP: 0x%016lx  R8:  0x%016lx  R9:  0x%016lx\n", f->rbp, f->r8, f->r9);
	printk_unlocked("R10: 0x%016lx  R11: 0x%016lx  R12: 0x%016lx\n", f->r10, f->r11, f->r12);
	printk_unlocked("R13: 0x%016lx  R14: 0x%016lx  R15: 0x%016lx\n", f->r13, f->r14, f->r15);
	printk_unlocked("CR0: 0x%016lx  CR2: 0x%016lx  CR3: 0x%016lx  CR4: 0x%016lx\n",
			read_cr0(), read_cr2(), read_cr3(), read_cr4());
}

/* Registers of the caller of panic(), captured as well as C allows. */
static void capture_regs(struct trap_frame *f, uintptr_t rbp, uintptr_t rip)
{
	__asm__ volatile("movq %%rax, %0\n\tmovq %%rbx, %1\n\tmovq %%rcx, %2\n\t"
			 "movq %%rdx, %3\n\tmovq %%rsi, %4\n\tmovq %%rdi, %5"
			 : "=m"(f->rax), "=m"(f->rbx), "=m"(f->rcx), "=m"(f->rdx),
			   "=m"(f->rsi), "=m"(f->rdi));
	__asm__ volatile("movq %%r8, %0\n\tmovq %%r9, %1\n\tmovq %%r10, %2\n\t"
			 "movq %%r11, %3\n\tmovq %%r12, %4\n\tmovq %%r13, %5\n\t"
			 "movq %%r14, %6\n\tmovq %%r15, %7"
			 : "=m"(f->r8), "=m"(f->r9), "=m"(f->r10), "=m"(f->r11),
			   "=m"(f->r12), "=m"(f->r13), "=m"(f->r14), "=m"(f->r15));
	__asm__ volatile("pushfq; popq %0" : "=r"(f->rflags));
	f->rbp = rbp;
	f->rip = rip;
	f->rsp = rbp + 16;
}

/* rip_ret: f->rip is a return address (panic's caller), not where an
 * exception stopped. */
static _Noreturn void vpanic(struct trap_frame *f, uintptr_t rbp, bool rip_ret, const char *fmt,
			     va_list ap)
{
	arch_irq_disable();
	unsigned cpu = percpu_ready ? this_cpu_id() : 0;
	int first = 0;
	if (!__atomic_compare_exchange_n(&panicking, &first, (int)cpu + 1, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		if (first == (int)cpu + 1) {
			printk_unlocked("\nspanheap: panic while panicking\n");
			qemu_exit(QEMU_EXIT_FAILURE);
		}
		/* Another CPU is reporting its panic: the console and the
		 * exit are its own (exiting here cut its report short). */
		for (;;)
			hlt();
	}
	char msg[256];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	printk_unlocked("\n------------[ cut here ]------------\n");
	printk_unlocked("KERNEL PANIC on CPU %u: %s\n", cpu, msg);
	print_regs(f);
	dump_stack(rbp, f->rip, rip_ret);
	printk_unlocked("---[ end Kernel panic ]---\n");
	void (*hook)(const char *msg) = __atomic_load_n(&panic_hook, __ATOMIC_ACQUIRE);
	if (hook)
		hook(msg);
	qemu_exit(QEMU_EXIT_FAILURE);
}

void panic(const char *fmt, ...)
{
	struct trap_frame f = { 0 };
	uintptr_t rbp = (uintptr_t)__builtin_frame_address(0);
	capture_regs(&f, rbp, (uintptr_t)__builtin_return_address(0));
	va_list ap;
	va_start(ap, fmt);
	/* The trace starts at panic()'s caller. */
	vpanic(&f, ((uintptr_t *)rbp)[0], true, fmt, ap);
}

void panic_frame(struct trap_frame *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vpanic(f, f->rbp, false, fmt, ap);
}

void qemu_exit(unsigned code)
{
	outl(0xf4, code);
	for (;;) {
		arch_irq_disable();
		hlt();
	}
}
