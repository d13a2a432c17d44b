/*
 * AP bring-up: the number of CPUs fw_cfg reports must equal the number of
 * CPUs that come up and report in, each with its own APIC ID.
 *
 * 1. The BSP: IA32_APIC_BASE (BSP and enable bits, base 0xFEE00000), APIC
 *    ID 0 in the LAPIC and in CPUID, an integrated APIC version.
 * 2. Every AP at once: INIT-SIPI-SIPI with the "all excluding self"
 *    shorthand.  Each AP must enter the trampoline exactly once (the
 *    second SIPI finds it running and must be ignored) and report its
 *    APIC ID (LAPIC register and CPUID agree, equal to its vCPU index),
 *    IA32_APIC_BASE without the BSP bit, and a LAPIC in its reset state.
 * 3. INIT parks an AP: it stops running (work given to it is not done),
 *    and a SIPI restarts it at the trampoline with its LAPIC reset (TPR
 *    and LVT timer back to their reset values).
 * 4. A SIPI to a running AP does nothing; INIT and SIPI to an APIC ID that
 *    does not exist start nothing.
 * 5. Every CPU reports in from its own context (smp_call_all).
 *
 * Command line: none.
 */
#include "apic.h"
#include "cpu.h"
#include "guest.h"
#include "idt.h"
#include "pc.h"
#include "smp.h"
#include "time.h"

/* What each CPU saw when it came up (the AP hook). */
static volatile uint32_t boot_tpr[SMP_MAX_CPUS], boot_lvt_timer[SMP_MAX_CPUS];
static volatile uint32_t reported[SMP_MAX_CPUS], report_count;
static volatile uint32_t ran[SMP_MAX_CPUS];

static void ap_hook(unsigned cpu)
{
	boot_tpr[cpu] = apic_read(APIC_TPR);
	boot_lvt_timer[cpu] = apic_read(APIC_LVT_TIMER);
}

static void check_bsp(void)
{
	uint64_t base = rdmsr(MSR_APIC_BASE);
	uint32_t ver = apic_read(APIC_VER);

	printf("BSP: IA32_APIC_BASE 0x%llx, APIC ID %u, CPUID APIC ID %u, version 0x%x\n",
	       (unsigned long long)base, apic_id(), smp_cpus[0].cpuid_apic_id, ver);
	if (!(base & APIC_BASE_BSP) || !(base & APIC_BASE_ENABLE) ||
	    (base & ~0xfffull) != APIC_BASE)
		test_fail("BSP: IA32_APIC_BASE is 0x%llx, want base 0x%x with BSP and enable",
			  (unsigned long long)base, APIC_BASE);
	if (apic_id() != 0 || smp_cpus[0].cpuid_apic_id != 0)
		test_fail("BSP: APIC ID %u, CPUID APIC ID %u, want 0", apic_id(),
			  smp_cpus[0].cpuid_apic_id);
	if ((ver & 0xff) < 0x10 || (ver & 0xff) > 0x15 || ((ver >> 16) & 0xff) < 3)
		test_fail("BSP: APIC version register 0x%x is not an integrated xAPIC's", ver);
}

static void check_ap(unsigned cpu, uint32_t boots)
{
	const struct smp_cpu *c = &smp_cpus[cpu];

	if (!c->online || c->boots != boots)
		test_fail("CPU %u: online %u, came up %u times, want %u", cpu, c->online,
			  c->boots, boots);
	if (c->apic_id != cpu || c->cpuid_apic_id != cpu)
		test_fail("CPU %u: LAPIC ID %u, CPUID APIC ID %u, want %u", cpu, c->apic_id,
			  c->cpuid_apic_id, cpu);
	if ((c->apic_base & APIC_BASE_BSP) || !(c->apic_base & APIC_BASE_ENABLE) ||
	    (c->apic_base & ~0xfffull) != APIC_BASE)
		test_fail("CPU %u: IA32_APIC_BASE 0x%llx, want 0x%x | enable, no BSP bit", cpu,
			  (unsigned long long)c->apic_base, APIC_BASE);
	if (boot_tpr[cpu] != 0 || boot_lvt_timer[cpu] != LVT_MASKED)
		test_fail("CPU %u: came up with TPR 0x%x, LVT timer 0x%x: not the reset state",
			  cpu, boot_tpr[cpu], boot_lvt_timer[cpu]);
}

/* Wait up to @ms for @cpu to have come up @boots times. */
static void wait_boots(unsigned cpu, uint32_t boots, unsigned ms)
{
	uint64_t end = deadline_ms(ms);

	while (atomic_read(&smp_cpus[cpu].boots) < boots)
		if (deadline_passed(end))
			test_fail("CPU %u did not come up (time %u) within %u ms", cpu, boots, ms);
}

static void start_all(unsigned ncpus)
{
	uint32_t entries;

	smp_prepare_trampoline();
	smp_start_all_aps();
	smp_wait_online(ncpus, 10000);
	/* Give a wrongly honoured second SIPI time to show. */
	udelay(20000);
	entries = smp_trampoline_entries();
	printf("all APs at once: %u CPUs online, %u trampoline entries\n", smp_online, entries);
	if (entries != ncpus - 1)
		test_fail("%u trampoline entries for %u APs: the second SIPI restarted a running AP?",
			  entries, ncpus - 1);
	for (unsigned cpu = 1; cpu < ncpus; cpu++)
		check_ap(cpu, 1);
	for (unsigned cpu = ncpus; cpu < SMP_MAX_CPUS; cpu++)
		if (smp_cpus[cpu].online)
			test_fail("CPU %u came up, but fw_cfg says there are %u", cpu, ncpus);
}

static void set_state(void *arg)
{
	(void)arg;
	apic_write(APIC_TPR, 0x30);
	apic_write(APIC_LVT_TIMER, 0x40);
}

static void mark_ran(void *arg)
{
	(void)arg;
	atomic_inc(&ran[smp_cpu_id()]);
}

/* INIT parks @cpu, SIPI brings it back through the trampoline, reset. */
static void restart_ap(unsigned cpu)
{
	uint32_t entries = smp_trampoline_entries();
	uint32_t ran_before;

	smp_call(cpu, set_state, NULL);
	apic_icr(cpu, APIC_DM_INIT | ICR_LEVEL | ICR_ASSERT);
	apic_icr(cpu, APIC_DM_INIT | ICR_LEVEL);
	udelay(10000);
	/* Parked: work given to it must not run. */
	ran_before = ran[cpu];
	smp_call_async(cpu, mark_ran, NULL);
	udelay(50000);
	if (ran[cpu] != ran_before)
		test_fail("CPU %u ran code after INIT, before any SIPI", cpu);
	apic_icr(cpu, APIC_DM_SIPI | (SMP_TRAMPOLINE >> 12));
	wait_boots(cpu, 2, 10000);
	if (smp_trampoline_entries() != entries + 1)
		test_fail("CPU %u: %u trampoline entries for one restart", cpu,
			  smp_trampoline_entries() - entries);
	check_ap(cpu, 2);
	/* It works again. */
	smp_call(cpu, mark_ran, NULL);
	if (ran[cpu] != ran_before + 1)
		test_fail("CPU %u: does not run work after its restart", cpu);
}

static void stray_sipis(unsigned ncpus)
{
	uint32_t entries = smp_trampoline_entries();

	/* A SIPI to every running AP, without INIT. */
	apic_icr(0, ICR_SH_OTHERS | APIC_DM_SIPI | (SMP_TRAMPOLINE >> 12));
	/* INIT-SIPI to APIC IDs nobody has. */
	for (unsigned id = ncpus; id < ncpus + 3 && id < 0xff; id++)
		smp_start_ap(id);
	udelay(20000);
	if (smp_trampoline_entries() != entries)
		test_fail("stray SIPIs: %u trampoline entries", smp_trampoline_entries() - entries);
	for (unsigned cpu = 1; cpu < ncpus; cpu++) {
		uint32_t before = ran[cpu];

		if (smp_cpus[cpu].boots != 2)
			test_fail("CPU %u restarted by a SIPI without INIT", cpu);
		smp_call(cpu, mark_ran, NULL);
		if (ran[cpu] != before + 1)
			test_fail("CPU %u does not run work after a stray SIPI", cpu);
	}
}

static void report_in(void *arg)
{
	unsigned cpu = smp_cpu_id();

	(void)arg;
	spin_lock(&print_lock);
	printf("CPU %u reporting: APIC ID %u\n", cpu, apic_id());
	spin_unlock(&print_lock);
	reported[cpu] = apic_id() + 1;
	atomic_inc(&report_count);
}

int main(uint32_t magic, const struct mb_info *mbi)
{
	unsigned ncpus, maxcpus = 0;

	guest_start("smp", magic, mbi);
	smp_init();
	ncpus = fw_cfg_cpus();
	fw_cfg_read(FW_CFG_MAX_CPUS, &maxcpus, 2);
	printf("fw_cfg: %u CPUs (max %u)\n", ncpus, maxcpus);
	if (ncpus < 1 || ncpus > SMP_MAX_CPUS)
		test_fail("fw_cfg reports %u CPUs", ncpus);
	if (maxcpus < ncpus)
		test_fail("fw_cfg: max CPUs %u below the CPU count %u", maxcpus, ncpus);
	check_bsp();
	smp_ap_hook = ap_hook;

	start_all(ncpus);
	for (unsigned cpu = 1; cpu < ncpus; cpu++)
		restart_ap(cpu);
	if (ncpus > 1)
		printf("INIT parks and SIPI restarts each AP\n");
	stray_sipis(ncpus);
	printf("stray SIPIs and INITs to absent APIC IDs start nothing\n");

	smp_call_all(report_in, NULL);
	irq_disable();
	for (unsigned cpu = 0; cpu < ncpus; cpu++)
		if (reported[cpu] != cpu + 1)
			test_fail("CPU %u reported APIC ID %d", cpu, (int)reported[cpu] - 1);
	if (report_count != ncpus)
		test_fail("%u CPUs reported in, fw_cfg says %u", report_count, ncpus);
	printf("%u of %u CPUs reported in\n", report_count, ncpus);
	test_pass();
}
