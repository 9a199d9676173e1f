/*
 * kernel/isr.S - interrupt and exception entry stubs.
 *
 * Each stub pushes a zero error code where the CPU pushes none, then its
 * vector, and jumps to isr_common, which saves every general register into
 * a struct trap_frame (kernel/trap.h) and calls trap_dispatch(frame).
 */
	.text

.macro ISR_NOERR vec
	.globl isr\vec
isr\vec:
	pushq $0
	pushq $\vec
	jmp isr_common
.endm

.macro ISR_ERR vec
	.globl isr\vec
isr\vec:
	pushq $\vec
	jmp isr_common
.endm

ISR_NOERR 0
ISR_NOERR 1
ISR_NOERR 2
ISR_NOERR 3
ISR_NOERR 4
ISR_NOERR 5
ISR_NOERR 6
ISR_NOERR 7
ISR_ERR   8
ISR_NOERR 9
ISR_ERR   10
ISR_ERR   11
ISR_ERR   12
ISR_ERR   13
ISR_ERR   14
ISR_NOERR 15
ISR_NOERR 16
ISR_ERR   17
ISR_NOERR 18
ISR_NOERR 19
ISR_NOERR 20
ISR_ERR   21
ISR_NOERR 22
ISR_NOERR 23
ISR_NOERR 24
ISR_NOERR 25
ISR_NOERR 26
ISR_NOERR 27
ISR_NOERR 28
ISR_ERR   29
ISR_ERR   30
ISR_NOERR 31
/* Device interrupts used by the kernel: 32 = local APIC timer,
 * 33 = IPI "call function", 255 = spurious. */
ISR_NOERR 32
ISR_NOERR 33
ISR_NOERR 255

isr_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	cld
	movq %rsp, %rdi
	/* Keep the frame-pointer chain walkable through the trap: fake a
	 * frame whose return address is the interrupted RIP. */
	pushq 17*8(%rsp)                /* frame->rip */
	pushq %rbp
	movq %rsp, %rbp
	/* 16-byte align the stack for the C call. */
	movq %rsp, %rbx
	andq $-16, %rsp
	call trap_dispatch
	movq %rbx, %rsp
	addq $16, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp                  /* vector, error code */
	iretq

/* The end of a heap fast-path section that an interrupt was deferred in
 * (kernel/mm_platform.h): called from the middle of compiled code, so it
 * keeps every register and the flags, and aligns the stack for C. */
	.globl heap_section_exit
heap_section_exit:
	pushfq
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %rbp
	movq %rsp, %rbp
	andq $-16, %rsp
	cld
	call heap_section_replay
	movq %rbp, %rsp
	popq %rbp
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rax
	popfq
	ret

	.section .rodata
	.globl isr_table
	.balign 8
isr_table:
	.quad isr0, isr1, isr2, isr3, isr4, isr5, isr6, isr7
	.quad isr8, isr9, isr10, isr11, isr12, isr13, isr14, isr15
	.quad isr16, isr17, isr18, isr19, isr20, isr21, isr22, isr23
	.quad isr24, isr25, isr26, isr27, isr28, isr29, isr30, isr31
	.quad isr32, isr33, isr255

/* No executable stack is needed (silences ld's warning). */
	.section .note.GNU-stack,"",@progbits
