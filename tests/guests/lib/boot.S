/*
 * Multiboot v1 entry for the guest test kernels.
 *
 * The loader enters in 32-bit protected mode with EAX = 0x2BADB002 and
 * EBX = the multiboot info; the spec promises nothing about the GDT or
 * the stack, so install our own flat segments before touching memory
 * through them, clear .bss, and call main(magic, mbi).  Its return value
 * becomes the exit code (0 = pass).
 */
#define MB_HEADER_MAGIC 0x1BADB002
#define MB_PAGE_ALIGN   (1 << 0)
#define MB_MEMORY_INFO  (1 << 1)
#define MB_FLAGS        (MB_PAGE_ALIGN | MB_MEMORY_INFO)

#define SEL_CODE 0x08
#define SEL_DATA 0x10
#define STACK_SIZE 16384

	.section .multiboot, "a"
	.p2align 2
	.long MB_HEADER_MAGIC
	.long MB_FLAGS
	.long -(MB_HEADER_MAGIC + MB_FLAGS)

	.text
	.code32
	.globl _start
	.type _start, @function
_start:
	cli
	cld
	movl %eax, %ebp             /* magic; EBX (mbi) survives rep stos */
	lgdt gdt_desc
	ljmp $SEL_CODE, $1f
1:	movw $SEL_DATA, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %fs
	movw %ax, %gs
	movw %ax, %ss
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	shrl $2, %ecx
	xorl %eax, %eax
	rep stosl
	movl $stack_top, %esp
	subl $8, %esp               /* keep the call 16-byte aligned */
	pushl %ebx
	pushl %ebp
	call main
	movl %eax, (%esp)
	call guest_exit
	/* not reached: guest_exit halts if the VMM does not stop us */
	.size _start, . - _start

	.data
	.p2align 3
gdt:
	.quad 0
	.quad 0x00cf9b000000ffff    /* 0x08: code, base 0, 4 GiB, 32-bit */
	.quad 0x00cf93000000ffff    /* 0x10: data, base 0, 4 GiB */
gdt_end:
	.p2align 2
	.word 0
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt

	.bss
	.p2align 4
stack:
	.skip STACK_SIZE
stack_top:
