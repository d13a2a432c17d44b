/*
 * AP start-up and the per-CPU work service.
 *
 * Start-up follows the SDM's "MP initialization" sequence for xAPIC
 * systems: INIT (level assert, then de-assert), 10 ms, Startup IPI, 200
 * us, a second Startup IPI.  The second SIPI must not restart an AP that
 * already runs: the trampoline counts its entries so tests can check.
 *
 * Work hand-off: the BSP writes fn/arg, then bumps req (release) and sends
 * VEC_WAKE; the AP's idle loop sees req != done with interrupts off, runs
 * the function with interrupts on, then publishes done = req (release).
 */
#include "apic.h"
#include "cpu.h"
#include "guest.h"
#include "idt.h"
#include "pc.h"
#include "smp.h"
#include "time.h"

#define AP_STACK_SIZE 8192

struct smp_cpu smp_cpus[SMP_MAX_CPUS];
volatile uint32_t smp_online;
void (*smp_ap_hook)(unsigned cpu);
volatile uint32_t print_lock;

/* Read by ap_start32 (trampoline.S): the top of each AP's stack. */
uint32_t ap_stack_top[SMP_MAX_CPUS];
static uint8_t ap_stacks[SMP_MAX_CPUS][AP_STACK_SIZE] __attribute__((aligned(16)));

extern const char ap_trampoline[], ap_trampoline_end[], ap_trampoline_entries[];

void spin_lock(volatile uint32_t *lock)
{
	while (__atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE))
		while (atomic_read(lock))
			cpu_relax();
}

void spin_unlock(volatile uint32_t *lock)
{
	__atomic_store_n(lock, 0, __ATOMIC_RELEASE);
}

unsigned smp_cpu_id(void)
{
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	uintptr_t base = (uintptr_t)ap_stacks;

	if (sp >= base && sp < base + sizeof(ap_stacks))
		return (sp - base) / AP_STACK_SIZE;
	return 0;   /* the BSP runs on boot.S's stack */
}

static void wake_handler(struct irq_frame *f)
{
	(void)f;
	apic_eoi();
}

static void record_self(unsigned cpu)
{
	struct smp_cpu *c = &smp_cpus[cpu];

	c->apic_id = apic_id();
	c->cpuid_apic_id = cpuid(1, 0).ebx >> 24;
	c->apic_base = rdmsr(MSR_APIC_BASE);
}

void smp_load_gdt(void);

void smp_init(void)
{
	smp_load_gdt();
	smp_prepare_trampoline();   /* nmi_unmask needs its real-mode part */
	pic_mask_all();             /* the BIOS left IRQ 0 running at vector 0x08 */
	idt_init();
	idt_load();
	idt_set_handler(VEC_WAKE, wake_handler);
	apic_sw_enable();
	record_self(0);
	smp_cpus[0].online = 1;
	smp_cpus[0].boots = 1;
	smp_online = 1;
	tsc_calibrate();
}

static void ap_idle(unsigned cpu)
{
	struct smp_cpu *c = &smp_cpus[cpu];

	for (;;) {
		uint32_t req;

		irq_disable();
		req = atomic_read(&c->req);
		if (req == c->done) {
			irq_wait_disabled();
			continue;
		}
		irq_enable();
		c->fn(c->arg);
		atomic_set(&c->done, req);
	}
}

/* Called by ap_start32 on the AP's own stack. */
void ap_main(unsigned cpu) __attribute__((noreturn));
void ap_main(unsigned cpu)
{
	struct smp_cpu *c = &smp_cpus[cpu];

	idt_load();
	apic_sw_enable();
	record_self(cpu);
	if (smp_ap_hook)
		smp_ap_hook(cpu);
	c->done = c->req;     /* work given before a restart is void */
	atomic_inc(&c->boots);
	if (!c->online) {
		atomic_set(&c->online, 1);
		atomic_inc(&smp_online);
	}
	ap_idle(cpu);
	__builtin_unreachable();
}

void smp_prepare_trampoline(void)
{
	size_t len = ap_trampoline_end - ap_trampoline;

	if (len > 0x1000)
		test_fail("AP trampoline is %u bytes, more than a page", (unsigned)len);
	memcpy((void *)SMP_TRAMPOLINE, ap_trampoline, len);
	for (unsigned i = 0; i < SMP_MAX_CPUS; i++)
		ap_stack_top[i] = (uint32_t)(uintptr_t)&ap_stacks[i][AP_STACK_SIZE];
}

uint32_t smp_trampoline_entries(void)
{
	return atomic_read((volatile uint32_t *)(SMP_TRAMPOLINE +
						 (ap_trampoline_entries - ap_trampoline)));
}

static void start_sequence(unsigned dest, uint32_t shorthand)
{
	apic_icr(dest, shorthand | APIC_DM_INIT | ICR_LEVEL | ICR_ASSERT);
	apic_icr(dest, shorthand | APIC_DM_INIT | ICR_LEVEL);
	udelay(10000);
	for (int i = 0; i < 2; i++) {
		apic_icr(dest, shorthand | APIC_DM_SIPI | (SMP_TRAMPOLINE >> 12));
		udelay(200);
	}
}

void smp_start_ap(unsigned dest)
{
	start_sequence(dest, ICR_SH_NONE);
}

void smp_start_all_aps(void)
{
	start_sequence(0, ICR_SH_OTHERS);
}

void smp_wait_online(unsigned n, unsigned ms)
{
	uint64_t end = deadline_ms(ms);

	while (atomic_read(&smp_online) < n)
		if (deadline_passed(end))
			test_fail("only %u of %u CPUs came up within %u ms",
				  atomic_read(&smp_online), n, ms);
		else
			cpu_relax();
}

unsigned smp_boot(unsigned ncpus)
{
	if (ncpus > SMP_MAX_CPUS)
		test_fail("%u CPUs, the tests handle at most %u", ncpus, SMP_MAX_CPUS);
	smp_prepare_trampoline();
	for (unsigned cpu = 1; cpu < ncpus; cpu++) {
		smp_start_ap(cpu);
		smp_wait_online(cpu + 1, 10000);
	}
	return smp_online;
}

void smp_call_async(unsigned cpu, smp_fn fn, void *arg)
{
	struct smp_cpu *c = &smp_cpus[cpu];

	if (!c->online)
		test_fail("smp_call to CPU %u, which is not online", cpu);
	smp_call_wait(cpu);
	c->fn = fn;
	c->arg = arg;
	atomic_set(&c->req, c->req + 1);
	apic_icr(c->apic_id, APIC_DM_FIXED | VEC_WAKE);
}

void smp_call_wait(unsigned cpu)
{
	struct smp_cpu *c = &smp_cpus[cpu];

	while (atomic_read(&c->done) != c->req)
		cpu_relax();
}

void smp_call(unsigned cpu, smp_fn fn, void *arg)
{
	smp_call_async(cpu, fn, arg);
	smp_call_wait(cpu);
}

void smp_call_all(smp_fn fn, void *arg)
{
	bool was_enabled = irq_enabled();

	for (unsigned cpu = 1; cpu < SMP_MAX_CPUS; cpu++)
		if (smp_cpus[cpu].online)
			smp_call_async(cpu, fn, arg);
	irq_enable();
	fn(arg);
	if (!was_enabled)
		irq_disable();
	for (unsigned cpu = 1; cpu < SMP_MAX_CPUS; cpu++)
		if (smp_cpus[cpu].online)
			smp_call_wait(cpu);
}
