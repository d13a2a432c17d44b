/*
 * A guest parked at known register values, for QMP x-dump-state and
 * "info registers" (driven by tests/qmp/run.sh).
 *
 * The BSP sets state the dump must show, then loads the general registers
 * with fixed patterns and halts with interrupts off, for good:
 *   EAX=0x11111111 EBX=0x22222222 ECX=0x33333333 EDX=0x44444444
 *   ESI=0x55555555 EDI=0x66666666 EBP=0x77777777
 *   DR0=0x00c0ffee, IA32_SYSENTER_CS=0x0010, IA32_SYSENTER_ESP=0xfeedf00d,
 *   IA32_SYSENTER_EIP=0x0badcafe (KVM's MSRs),
 *   LAPIC: software-enabled (SVR 0x1ff), TPR 0x20, vector 0x40 pending in
 *   IRR (a self-IPI that cannot be taken with IF clear).
 * It prints "parked: eip after hlt 0x<addr>" before the last instructions,
 * so the host waits until query-cpus-fast says the vCPU is halted, then
 * expects RIP at that address.  APs are never started (they stay parked).
 * Command line: none.
 */
#include "apic.h"
#include "cpu.h"
#include "guest.h"

extern char qmp_regs_after_hlt[];

static void set_debug_and_msrs(void)
{
	asm volatile("mov %0, %%dr0" :: "r"(0x00c0ffeeu));
	wrmsr(0x174, 0x10);
	wrmsr(0x175, 0xfeedf00du);
	wrmsr(0x176, 0x0badcafeu);
}

static void set_lapic(void)
{
	apic_write(APIC_SVR, SVR_ENABLE | VEC_SPURIOUS);
	apic_write(APIC_TPR, 0x20);
	apic_icr(0, APIC_DM_FIXED | ICR_SH_SELF | 0x40);
	if (!apic_vector_bit(APIC_IRR, 0x40))
		test_fail("the self-IPI with vector 0x40 is not pending in IRR");
}

int main(uint32_t magic, const struct mb_info *mbi)
{
	guest_start("qmp_regs", magic, mbi);
	irq_disable();
	set_debug_and_msrs();
	set_lapic();
	printf("parked: eip after hlt 0x%x\n", (unsigned)(uintptr_t)qmp_regs_after_hlt);
	asm volatile("mov $0x11111111, %%eax\n\t"
		     "mov $0x22222222, %%ebx\n\t"
		     "mov $0x33333333, %%ecx\n\t"
		     "mov $0x44444444, %%edx\n\t"
		     "mov $0x55555555, %%esi\n\t"
		     "mov $0x66666666, %%edi\n\t"
		     "mov $0x77777777, %%ebp\n\t"
		     "1: cli\n\t"
		     "hlt\n"
		     ".globl qmp_regs_after_hlt\n"
		     "qmp_regs_after_hlt:\n\t"
		     "jmp 1b"
		     ::: "eax", "ebx", "ecx", "edx", "esi", "edi", "memory");
	test_fail("left the parking loop");
}
