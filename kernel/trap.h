/*
 * kernel/trap.h - exceptions and interrupts.
 */
#ifndef KERNEL_TRAP_H
#define KERNEL_TRAP_H

#include <stdint.h>

struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

#define VEC_PAGE_FAULT   14
#define VEC_GP           13
#define VEC_DOUBLE_FAULT 8
#define VEC_TIMER        32
#define VEC_IPI_CALL     33
#define VEC_SPURIOUS     255

void idt_init(void);      /* build the IDT (once) */
void idt_load(void);      /* load it on this CPU */
typedef void (*irq_handler_t)(struct trap_frame *f);
void irq_set_handler(unsigned vector, irq_handler_t h);
const char *trap_name(unsigned vector);

/*
 * Expected faults, for tests that prove a fault happens (a write to kernel
 * text, a read of an unmapped page): run fn(arg) and catch one exception.
 * Returns 0 if fn returned normally, else the vector, with the fault's
 * details in *out.
 */
struct fault_info {
	uint64_t vector, error, rip, cr2;
};
int trap_catch_fault(void (*fn)(void *), void *arg, struct fault_info *out);

void trap_dispatch(struct trap_frame *f);
/* The deferred interrupts of a heap section that has ended
 * (kernel/mm_platform.h); called by heap_section_exit only. */
void heap_section_replay(void);

#endif
