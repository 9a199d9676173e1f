/*
 * kernel/panic.h - stop the kernel with a report: the message, the CPU's
 * registers and a stack trace with symbol names; then leave QEMU with the
 * failure code (or halt on real hardware). If a self-test is running, it is
 * reported `not ok` first.
 */
#ifndef KERNEL_PANIC_H
#define KERNEL_PANIC_H
struct trap_frame;
_Noreturn void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, with the registers of an exception frame. */
_Noreturn void panic_frame(struct trap_frame *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Print a stack trace starting from frame pointer rbp. */
void dump_stack_from(unsigned long rbp, unsigned long rip);

#define BUG_ON(cond) do { if (cond) panic("BUG_ON(%s) at %s:%d", #cond, __FILE__, __LINE__); } while (0)
#endif
