/*
 * kernel/panic.h - stop the kernel with a report: the message, the CPU's
 * registers and a stack trace with symbol names; then leave QEMU with the
 * failure code (or halt on real hardware). A hook installed with
 * panic_set_hook() runs after the report, before the exit: the self-test
 * runner uses it to report the running test `not ok`. One report at a
 * time: a CPU that panics while another reports halts where it is, and a
 * panic inside the report (on the reporting CPU) exits at once.
 */
#ifndef KERNEL_PANIC_H
#define KERNEL_PANIC_H
struct trap_frame;
_Noreturn void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, with the registers of an exception frame. */
_Noreturn void panic_frame(struct trap_frame *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* hook(message) is called once by the first panic, after the report, with
 * interrupts off; NULL removes it. The hook must not panic (a panic inside
 * it exits at once). */
void panic_set_hook(void (*hook)(const char *msg));

#define BUG_ON(cond) do { if (cond) panic("BUG_ON(%s) at %s:%d", #cond, __FILE__, __LINE__); } while (0)
#endif
