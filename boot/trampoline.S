/*
 * boot/trampoline.S - where an application processor starts.
 *
 * smp.c copies this blob to physical TRAMPOLINE_BASE (0x8000, in the first
 * MiB that the pmm never hands out) and fills its data slots, then sends
 * INIT-SIPI-SIPI with vector 0x08: the AP wakes in real mode at 0800:0000.
 * It loads a small GDT, turns on PAE, the kernel's CR3, EFER.LME (+NXE),
 * and PE|PG|WP in one go, far-jumps into 64-bit mode (the page is
 * identity-mapped for the duration of AP start-up), claims the start-up
 * slot, takes its own stack and jumps to ap_main(cpu_id) in the higher half.
 *
 * The claim (tramp_claim: 0 open, 1 taken by an AP, 2 given up by the boot
 * CPU) is a lock cmpxchg 0 -> 1 made before the AP touches the stack or
 * id slots. smp.c opens it for each AP it starts and, when an AP stays
 * silent, closes it (0 -> 2) before reusing the slots for the next one: an
 * AP that wakes after that, or a second CPU racing for the same slots,
 * loses the claim and parks here (cli; hlt) without touching anything, so
 * no two CPUs ever share a stack or a CPU id.
 */
#define TRAMPOLINE_BASE 0x8000
#define T(x) (TRAMPOLINE_BASE + (x) - trampoline_start)

	.section .rodata
	.balign 16
	.globl trampoline_start, trampoline_end
	.globl tramp_cr3, tramp_nx, tramp_stack, tramp_entry, tramp_cpu, tramp_claim
	.code16
trampoline_start:
	cli
	cld
	xorw %ax, %ax
	movw %ax, %ds
	lgdtl T(tramp_gdt_ptr)
	movl %cr4, %eax
	orl $(1 << 5), %eax              /* PAE */
	movl %eax, %cr4
	movl T(tramp_cr3), %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx
	rdmsr
	orl $(1 << 8), %eax              /* LME */
	orl T(tramp_nx), %eax            /* NXE, if the boot CPU has it */
	wrmsr
	movl %cr0, %eax
	orl $0x80010001, %eax            /* PG | WP | PE */
	movl %eax, %cr0
	ljmpl $0x08, $T(tramp64)

	.code64
tramp64:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	xorw %ax, %ax
	movw %ax, %fs
	movw %ax, %gs
	xorl %eax, %eax
	movl $1, %ecx
	lock cmpxchgl %ecx, T(tramp_claim)
	jne tramp_park
	movq T(tramp_stack), %rsp
	xorl %ebp, %ebp
	pushq $0		/* ap_main's return address: a stack trace ends there */
	movl T(tramp_cpu), %edi
	movq T(tramp_entry), %rax
	jmp *%rax
tramp_park:
	cli
	hlt
	jmp tramp_park

	.balign 8
tramp_gdt:
	.quad 0
	.quad 0x00af9a000000ffff
	.quad 0x00cf92000000ffff
tramp_gdt_ptr:
	.word 23
	.long T(tramp_gdt)
	.balign 8
tramp_cr3:	.long 0
tramp_nx:	.long 0
tramp_stack:	.quad 0
tramp_entry:	.quad 0
tramp_cpu:	.long 0
tramp_claim:	.long 0
trampoline_end:
	.section .note.GNU-stack, "", @progbits
