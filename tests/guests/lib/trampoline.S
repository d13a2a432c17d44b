/*
 * The AP start-up trampoline.  smp_prepare_trampoline() copies the bytes
 * between ap_trampoline and ap_trampoline_end to SMP_TRAMPOLINE (0x8000);
 * a SIPI with vector 0x08 starts an AP there in real mode at 0800:0000.
 * It counts its entry, loads a flat GDT, sets CR0.PE and far-jumps into
 * ap_start32 in the kernel proper.  The 16-bit part lives in .rodata: it
 * is never run where it is linked, and it is not 32-bit code to check.
 *
 * ap_start32 finds its stack by its APIC ID (ap_stack_top[id], set by the
 * BSP before the SIPI) and calls ap_main(id).
 *
 * The same page holds nmi_unmask's real-mode part.  The host's emulator
 * runs our ring-0 code and cannot emulate a protected-mode IRET, which is
 * what ends NMI blocking; a real-mode IRET it can emulate, and that one
 * unblocks NMIs too (KVM's emulate_iret_real).  So after an NMI the stub
 * calls nmi_unmask: a far jump to a 16-bit segment, CR0.PE off, an IRET
 * in real mode on a small per-CPU stack in this page (frames at
 * SMP_TRAMPOLINE + 0x800 + 16 * APIC ID), CR0.PE on, back to flat 32-bit.
 * Interrupts stay off throughout; an NMI arriving in the few instructions
 * between that IRET and protected mode would go through the real-mode
 * IVT, so the tests never send an NMI before the previous one was counted.
 */
#include "smp.h"

#define SEL_CODE   0x08
#define SEL_DATA   0x10
#define SEL_CODE16 0x18
#define SEL_DATA16 0x20
#define OFF(sym) ((sym) - ap_trampoline)
#define RM_SEG   (SMP_TRAMPOLINE >> 4)

	.section .rodata.trampoline, "a"
	.code16
	.p2align 4
	.globl ap_trampoline, ap_trampoline_end, ap_trampoline_entries
ap_trampoline:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lock incl OFF(ap_trampoline_entries)
	lgdtl OFF(tramp_gdtr)
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $SEL_CODE, $ap_start32

	/* nmi_unmask, 16-bit protected mode (CS = SEL_CODE16, base 0). */
nmi_pm16:
	movw $SEL_DATA16, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movl %cr0, %eax
	andl $~1, %eax
	movl %eax, %cr0
	ljmp $RM_SEG, $OFF(nmi_rm)
	/* Real mode: CS = RM_SEG, EBX = APIC ID, EBP = the 32-bit ESP. */
nmi_rm:
	movw $RM_SEG, %ax
	movw %ax, %ss
	movw %bx, %sp
	shlw $4, %sp
	addw $0x810, %sp
	pushw $0x0002               /* FLAGS: IF clear */
	pushw %cs
	pushw $OFF(nmi_rm_back)
	iret                        /* the one that ends NMI blocking */
nmi_rm_back:
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $SEL_CODE, $nmi_back32

	.p2align 2
ap_trampoline_entries:
	.long 0
	.word 0
tramp_gdtr:
	.word smp_gdt_end - smp_gdt - 1
	.long smp_gdt
ap_trampoline_end:

	.data
	.p2align 3
smp_gdt:
	.quad 0
	.quad 0x00cf9b000000ffff    /* 0x08: code, base 0, 4 GiB, 32-bit */
	.quad 0x00cf93000000ffff    /* 0x10: data, base 0, 4 GiB */
	.quad 0x00009b000000ffff    /* 0x18: code, base 0, 64 KiB, 16-bit */
	.quad 0x000093000000ffff    /* 0x20: data, base 0, 64 KiB, 16-bit */
smp_gdt_end:
	.p2align 2
	.word 0
smp_gdtr:
	.word smp_gdt_end - smp_gdt - 1
	.long smp_gdt

	.text
	.code32
	.globl ap_start32
ap_start32:
	movw $SEL_DATA, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %fs
	movw %ax, %gs
	movw %ax, %ss
	movl 0xfee00020, %eax       /* LAPIC ID register */
	shrl $24, %eax
	cmpl $SMP_MAX_CPUS, %eax
	jae 1f
	movl ap_stack_top(,%eax,4), %esp
	testl %esp, %esp
	jz 1f
	subl $12, %esp
	pushl %eax
	call ap_main
1:	cli
	hlt
	jmp 1b

/* void smp_load_gdt(void): the BSP moves from boot.S's GDT to ours. */
	.globl smp_load_gdt
smp_load_gdt:
	lgdt smp_gdtr
	ljmp $SEL_CODE, $1f
1:	movw $SEL_DATA, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %fs
	movw %ax, %gs
	movw %ax, %ss
	ret

/*
 * void nmi_unmask(void): end NMI blocking with a real-mode IRET (see the
 * top).  Interrupts must be disabled.  Keeps the callee-saved registers.
 */
	.globl nmi_unmask
nmi_unmask:
	pushl %ebx
	pushl %esi
	pushl %edi
	pushl %ebp
	movl %esp, %ebp
	movl 0xfee00020, %ebx       /* APIC ID: picks the real-mode stack */
	shrl $24, %ebx
	andl $(SMP_MAX_CPUS - 1), %ebx
	ljmp $SEL_CODE16, $(SMP_TRAMPOLINE + OFF(nmi_pm16))
nmi_back32:
	movw $SEL_DATA, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %fs
	movw %ax, %gs
	movw %ax, %ss
	movl %ebp, %esp
	popl %ebp
	popl %edi
	popl %esi
	popl %ebx
	ret
