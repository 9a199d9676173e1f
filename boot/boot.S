/*
 * boot/boot.S - multiboot2 header and the 32-bit entry that takes the CPU
 * to 64-bit C.
 *
 * Two ways in, both in 32-bit protected mode with paging off:
 *  - multiboot2 (GRUB, BIOS or UEFI): GRUB finds the multiboot2 header and
 *    enters _start32 with EAX = multiboot2 magic and EBX = physical address
 *    of the boot information. A wrong magic prints a message on COM1 and
 *    halts.
 *  - PVH (QEMU `-M microvm -kernel spanheap.elf`, Xen, Firecracker): the
 *    loader finds the XEN_ELFNOTE_PHYS32_ENTRY note (type 18, name "Xen",
 *    in .note.Xen) and enters _start_pvh32 with EBX = physical address of
 *    struct hvm_start_info (kernel/pvh.h). Its "magic" for kmain is
 *    PVH_START_MAGIC; kmain turns the start information into a multiboot2
 *    block (kernel/pvh.c) and goes on as for GRUB.
 *  - gnu-efi loader (boot/efi/, BOOTX64.EFI straight from UEFI firmware):
 *    after ExitBootServices it calls _start_efi64 in 64-bit mode, on the
 *    firmware's identity-mapped page tables, interrupts off, with the
 *    System V arguments RDI = multiboot2 magic, RSI = physical address
 *    (< 4 GiB) of the multiboot2 block it built. The loader finds this
 *    entry through the "spanheap" ELF note (type 1, 8-byte physical
 *    address). _start_efi64 steps down to 32-bit protected mode with
 *    paging off (compatibility mode, CR0.PG and EFER.LME cleared) and
 *    enters _start32 like GRUB, so every path shares what follows.
 * All then check CPUID for long mode, build the boot page tables, enable
 * PAE, EFER.LME (+ NXE when present) and paging, load a 64-bit GDT and jump
 * to the higher half, where kmain(magic, boot_info_phys) runs on the boot
 * stack.
 *
 * Boot page tables (all in .boot.bss, physical addresses): the first 4 GiB
 * are mapped with 2 MiB pages three times over: identity (needed only for
 * the jump), at the direct-map base 0xffff800000000000 and, for the first
 * GiB, at the kernel base 0xffffffff80000000. kernel/paging.c replaces them with
 * the kernel's own tables early in kmain, which drops the identity map.
 */
#define MB2_MAGIC        0xe85250d6
#define MB2_BOOT_MAGIC   0x36d76289
#define MB2_ARCH_I386    0
#define PVH_START_MAGIC  0x336ec578     /* kernel/pvh.h */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define KERNEL_VMA       0xffffffff80000000
#define COM1             0x3f8

	.section .multiboot2, "a"
	.balign 8
mb2_header:
	.long MB2_MAGIC
	.long MB2_ARCH_I386
	.long mb2_header_end - mb2_header
	.long -(MB2_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header))

	/* Information request: the memory map is required. */
	.balign 8
	.word 1, 0
	.long 12
	.long 6
	/* Entry address: GRUB jumps to the physical _start32. */
	.balign 8
	.word 3, 0
	.long 12
	.long _start32
	/* No framebuffer tag: text mode / none; output goes to COM1. */
	.balign 8
	.word 0, 0
	.long 8
mb2_header_end:

	/* PVH: the ELF note a PVH loader looks for. A 64-bit ELF's note
	 * carries the entry as 8 bytes (QEMU reads a size_t) after the
	 * 4-byte-padded name; the section is 4-byte aligned, like Linux's. */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4                         /* namesz: "Xen\0" */
	.long 8                         /* descsz */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.balign 4
	.quad _start_pvh32

	/* gnu-efi loader: where _start_efi64 is (boot/efi/efiload.h). */
	.section .note.spanheap, "a", @note
	.balign 4
	.long 9                         /* namesz: "spanheap\0" */
	.long 8                         /* descsz */
	.long 1                         /* type: 64-bit UEFI entry */
	.asciz "spanheap"
	.balign 4
	.quad _start_efi64

	.section .boot.text, "ax"
	/* gnu-efi loader entry: 64-bit, EDI = magic, ESI = boot info (see
	 * above). Far return into the 32-bit code segment (0x18), then leave
	 * long mode: paging off, CR4 cleared (PCIDE would forbid that
	 * step; _start32 sets PAE again), EFER.LME off. */
	.code64
	.globl _start_efi64
_start_efi64:
	cli
	cld
	lgdt boot_gdt_ptr64
	pushq $0x18
	leaq 1f(%rip), %rax
	pushq %rax
	lretq
	.code32
1:	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movl %cr4, %eax
	andl $~(1 << 17), %eax          /* PCIDE */
	movl %eax, %cr4
	movl %cr0, %eax
	andl $~(1 << 31), %eax          /* PG: leaves long mode */
	movl %eax, %cr0
	xorl %eax, %eax
	movl %eax, %cr4
	movl $0xc0000080, %ecx
	rdmsr
	andl $~(1 << 8), %eax           /* EFER.LME */
	wrmsr
	movl %edi, %eax                 /* multiboot2 magic */
	movl %esi, %ebx                 /* boot information */
	jmp _start32

	.code32
	/* PVH entry: EBX = hvm_start_info (physical); flat 32-bit segments,
	 * paging off, interrupts off. */
	.globl _start_pvh32
_start_pvh32:
	cli
	cld
	movl $boot_stack_top - KERNEL_VMA, %esp
	movl $PVH_START_MAGIC, %edi     /* kmain's "magic": PVH */
	movl %ebx, %esi                 /* hvm_start_info physical address */
	call serial_init32
	jmp boot_common32

	/* multiboot2 entry: EAX = magic, EBX = boot information. */
	.globl _start32
_start32:
	cli
	cld
	movl $boot_stack_top - KERNEL_VMA, %esp
	movl %eax, %edi                 /* magic, kept for kmain */
	movl %ebx, %esi                 /* mbi physical address */

	call serial_init32

	cmpl $MB2_BOOT_MAGIC, %edi
	je boot_common32
	movl $msg_bad_magic, %eax
	call puts32
	movl %edi, %eax
	call puthex32
	movl $msg_bad_magic2, %eax
	call puts32
	jmp halt32
boot_common32:
	movl %edi, boot_magic           /* edi is reused below */
	/* CPUID present (EFLAGS.ID toggles)? */
	pushfl
	popl %eax
	movl %eax, %ecx
	xorl $(1 << 21), %eax
	pushl %eax
	popfl
	pushfl
	popl %eax
	pushl %ecx
	popfl
	cmpl %eax, %ecx
	je no_long_mode
	/* Extended leaf 0x80000001 available and LM set? */
	movl $0x80000000, %eax
	cpuid
	cmpl $0x80000001, %eax
	jb no_long_mode
	movl $0x80000001, %eax
	cpuid
	testl $(1 << 29), %edx
	jz no_long_mode
	movl %edx, %ebp                 /* keep NX bit (20) for later */

	/* Page tables. PD0..PD3 map 0-4 GiB with 2 MiB pages (PS|RW|P). */
	movl $boot_pd, %ebx
	xorl %ecx, %ecx
2:	movl %ecx, %eax
	shll $21, %eax
	orl $0x83, %eax
	movl %eax, (%ebx, %ecx, 8)
	movl %ecx, %eax
	shrl $11, %eax                  /* high 32 bits of ecx << 21 */
	movl %eax, 4(%ebx, %ecx, 8)
	incl %ecx
	cmpl $2048, %ecx
	jne 2b
	/* PDPT_low[0..3] -> PD0..PD3 */
	movl $boot_pdpt_low, %edi
	movl $boot_pd + 0x03, %eax
	xorl %ecx, %ecx
3:	movl %eax, (%edi, %ecx, 8)
	addl $4096, %eax
	incl %ecx
	cmpl $4, %ecx
	jne 3b
	/* PDPT_high[510] -> PD0 (0xffffffff80000000 -> phys 0) */
	movl $boot_pdpt_high, %edi
	movl $boot_pd + 0x03, %eax
	movl %eax, 510*8(%edi)
	/* PML4[0] and PML4[256] -> PDPT_low; PML4[511] -> PDPT_high */
	movl $boot_pml4, %edi
	movl $boot_pdpt_low + 0x03, %eax
	movl %eax, 0(%edi)
	movl %eax, 256*8(%edi)
	movl $boot_pdpt_high + 0x03, %eax
	movl %eax, 511*8(%edi)

	/* CR4.PAE, CR3, EFER.LME (+NXE), CR0.PG|WP */
	movl %cr4, %eax
	orl $(1 << 5), %eax
	movl %eax, %cr4
	movl $boot_pml4, %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx
	rdmsr
	orl $(1 << 8), %eax
	testl $(1 << 20), %ebp
	jz 4f
	orl $(1 << 11), %eax
4:	wrmsr
	movl %cr0, %eax
	orl $((1 << 31) | (1 << 16)), %eax
	movl %eax, %cr0

	lgdt boot_gdt_ptr
	/* restore the magic (edi was reused); esi still holds the boot info */
	movl boot_magic, %edi
	ljmp $0x08, $start64_low

no_long_mode:
	movl $msg_no_lm, %eax
	call puts32
halt32:
	/* Under QEMU with isa-debug-exit this leaves with a failure code;
	 * elsewhere the port write is ignored and we halt. */
	movw $0xf4, %dx
	movl $0x7f, %eax
	outl %eax, %dx
5:	cli
	hlt
	jmp 5b

/* 115200 8N1, FIFO on, polling only. */
serial_init32:
	movw $COM1 + 1, %dx
	xorb %al, %al
	outb %al, %dx
	movw $COM1 + 3, %dx
	movb $0x80, %al
	outb %al, %dx
	movw $COM1 + 0, %dx
	movb $1, %al
	outb %al, %dx
	movw $COM1 + 1, %dx
	xorb %al, %al
	outb %al, %dx
	movw $COM1 + 3, %dx
	movb $3, %al
	outb %al, %dx
	movw $COM1 + 2, %dx
	movb $0xc7, %al
	outb %al, %dx
	movw $COM1 + 4, %dx
	movb $0x0b, %al
	outb %al, %dx
	ret

/* putc32: %al */
putc32:
	pushl %edx
	pushl %eax
	movw $COM1 + 5, %dx
1:	inb %dx, %al
	testb $0x20, %al
	jz 1b
	popl %eax
	movw $COM1, %dx
	outb %al, %dx
	popl %edx
	ret

/* puts32: %eax = NUL-terminated string */
puts32:
	pushl %esi
	movl %eax, %esi
1:	lodsb
	testb %al, %al
	jz 2f
	call putc32
	jmp 1b
2:	popl %esi
	ret

/* puthex32: %eax as 0x%08x */
puthex32:
	pushl %ebx
	pushl %ecx
	movl %eax, %ebx
	movb $'0', %al
	call putc32
	movb $'x', %al
	call putc32
	movl $8, %ecx
1:	roll $4, %ebx
	movl %ebx, %eax
	andl $0xf, %eax
	movb hexdigits(%eax), %al
	call putc32
	loop 1b
	popl %ecx
	popl %ebx
	ret

	.code64
start64_low:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	xorw %ax, %ax
	movw %ax, %fs
	movw %ax, %gs
	movabsq $start64_high, %rax
	jmp *%rax

	.section .boot.data, "a"
	.balign 8
boot_gdt:
	.quad 0
	.quad 0x00af9a000000ffff        /* 0x08: 64-bit code, DPL 0 */
	.quad 0x00cf92000000ffff        /* 0x10: data */
	.quad 0x00cf9a000000ffff        /* 0x18: 32-bit code (_start_efi64) */
boot_gdt_ptr:
	.word boot_gdt_ptr - boot_gdt - 1
	.long boot_gdt
boot_gdt_ptr64:                         /* lgdt in 64-bit mode: 8-byte base */
	.word boot_gdt_ptr - boot_gdt - 1
	.quad boot_gdt
hexdigits:
	.ascii "0123456789abcdef"
msg_bad_magic:
	.asciz "\r\nspanheap: bad multiboot2 magic "
msg_bad_magic2:
	.asciz " (expected 0x36d76289): boot this kernel with GRUB's multiboot2 command or through its PVH note. Halting.\r\n"
msg_no_lm:
	.asciz "\r\nspanheap: this CPU has no long mode (CPUID 0x80000001 EDX.LM = 0); a 64-bit CPU is required. Halting.\r\n"

	.section .boot.bss, "aw", @nobits
	.balign 4096
	.globl boot_pml4
boot_pml4:	.skip 4096
boot_pdpt_low:	.skip 4096
boot_pdpt_high:	.skip 4096
boot_pd:	.skip 4 * 4096
boot_magic:	.skip 4                 /* kmain's magic, across the setup */

	.section .text.entry, "ax"
	.code64
start64_high:
	movabsq $boot_stack_top, %rsp
	xorl %ebp, %ebp                 /* end of the frame-pointer chain */
	/* edi = magic, esi = mbi physical address */
	call kmain
1:	cli
	hlt
	jmp 1b

	/* The boot CPU's stack, with the page below it left unmapped by
	 * paging.c as a guard (boot_stack_guard). */
	.section .bss.pagealigned, "aw", @nobits
	.balign 4096
	.globl boot_stack_guard, boot_stack_bottom, boot_stack_top
boot_stack_guard:
	.skip 4096
boot_stack_bottom:
	.skip 16384
boot_stack_top:

/* No executable stack is needed (silences ld's warning). */
	.section .note.GNU-stack,"",@progbits
