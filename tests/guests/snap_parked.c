/*
 * A parked AP across checkpoint/restore (driven by tests/snapshot/run.sh).
 *
 * The BSP sends INIT to CPU 1 (never started) and says so; the host saves
 * a snapshot now, restores it in a new VMM and injects an NMI (QMP
 * inject-nmi).  Woken by it, the BSP sends a single SIPI: CPU 1 starts
 * only if the restored VM remembers that it got INIT.
 * Output: "INIT sent", then "CPU 1 up after one SIPI" and PASS.
 */
#include "apic.h"
#include "cpu.h"
#include "guest.h"
#include "idt.h"
#include "smp.h"

static volatile uint32_t nmis;

static void nmi_handler(struct irq_frame *f)
{
	(void)f;
	nmis++;
}

int main(uint32_t magic, const struct mb_info *mbi)
{
	guest_start("snap_parked", magic, mbi);
	smp_init();
	smp_prepare_trampoline();
	idt_set_handler(VEC_NMI, nmi_handler);
	apic_icr(1, APIC_DM_INIT | ICR_LEVEL | ICR_ASSERT);
	apic_icr(1, APIC_DM_INIT | ICR_LEVEL);
	printf("INIT sent\n");
	while (!nmis)
		asm volatile("hlt");       /* interrupts off: only the NMI wakes us */
	apic_icr(1, APIC_DM_SIPI | (SMP_TRAMPOLINE >> 12));
	smp_wait_online(2, 10000);
	printf("CPU 1 up after one SIPI\n");
	test_pass();
}
