/*
 * One stub per vector: push a zero where the CPU pushes no error code,
 * push the vector, save the general registers and call idt_dispatch with
 * a pointer to them (struct irq_frame).  Segments are flat and never
 * change, so they are not saved.
 *
 * No IRET: the host's instruction emulator runs ring-0 code and cannot
 * emulate a protected-mode IRET (KVM's em_iret handles real mode only;
 * the guest dies with "KVM internal error").  The return path does what
 * IRET does for a same-privilege return instead: it rewrites the frame
 * so that POPF restores EFLAGS (with IF still clear) and RET pops EIP,
 * leaving ESP where the interrupted code had it; if the interrupted code
 * had IF set, STI goes just before the RET, whose interrupt shadow keeps
 * a new interrupt out until the RET is done.
 *
 * NMI blocking also ends only at an IRET: for vector 2 the stub calls
 * nmi_unmask (trampoline.S) before the handler, so a handler that counts
 * NMIs counts them only once the next one can come.
 */
/* The exceptions that push an error code: 8, 10-14, 17, 21, 29, 30. */
#define HAS_ERR(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || \
		    (v) == 21 || (v) == 29 || (v) == 30)

	.p2align 4
idt_common:
	pushal
	cld
	cmpl $2, 32(%esp)           /* NMI: unblock NMIs first (no IRET here) */
	jne 2f
	call nmi_unmask
2:	pushl %esp
	call idt_dispatch
	addl $4, %esp
	/* Frame: 8 registers, vector, error, eip, cs, eflags. */
	movl 48(%esp), %eax         /* eflags */
	movl %eax, 32(%esp)         /* ... kept in the vector slot for the test below */
	andl $~0x200, %eax
	movl 40(%esp), %edx         /* eip */
	movl %eax, 44(%esp)         /* cs slot: eflags with IF clear, for POPF */
	movl %edx, 48(%esp)         /* eflags slot: eip, for RET */
	popal
	testl $0x200, (%esp)        /* the interrupted code's IF */
	leal 12(%esp), %esp         /* to the cs slot; LEA leaves the flags alone */
	jz 1f
	popfl
	sti
	ret
1:	popfl
	ret

	.pushsection .rodata.idt_stubs, "a"
	.p2align 2
	.globl idt_stub_table
idt_stub_table:
	.popsection

	.set vec, 0
	.rept 256
	.p2align 3
1:
	.if !HAS_ERR(vec)
	pushl $0
	.endif
	pushl $vec
	jmp idt_common
	.pushsection .rodata.idt_stubs, "a"
	.long 1b
	.popsection
	.set vec, vec + 1
	.endr
