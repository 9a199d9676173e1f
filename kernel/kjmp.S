/*
 * kernel/kjmp.S - setjmp/longjmp for the kernel (callee-saved registers,
 * stack pointer, return address and RFLAGS), used to recover from an
 * expected fault in a self-test.
 *
 *   int kjmp_set(struct kjmp *j);          returns 0, then v from kjmp_long
 *   void kjmp_long(struct kjmp *j, int v); v != 0
 */
	.text
	.globl kjmp_set, kjmp_long
kjmp_set:
	movq %rbx, 0(%rdi)
	movq %rbp, 8(%rdi)
	movq %r12, 16(%rdi)
	movq %r13, 24(%rdi)
	movq %r14, 32(%rdi)
	movq %r15, 40(%rdi)
	leaq 8(%rsp), %rax
	movq %rax, 48(%rdi)             /* rsp after return */
	movq (%rsp), %rax
	movq %rax, 56(%rdi)             /* return address */
	pushfq
	popq %rax
	movq %rax, 64(%rdi)
	xorl %eax, %eax
	ret

kjmp_long:
	movq 0(%rdi), %rbx
	movq 8(%rdi), %rbp
	movq 16(%rdi), %r12
	movq 24(%rdi), %r13
	movq 32(%rdi), %r14
	movq 40(%rdi), %r15
	movq 48(%rdi), %rsp
	pushq 64(%rdi)
	popfq
	movl %esi, %eax
	jmp *56(%rdi)

/* No executable stack is needed (silences ld's warning). */
	.section .note.GNU-stack,"",@progbits
