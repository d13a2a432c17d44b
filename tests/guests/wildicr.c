/*
 * A bad guest that programs wild ICR values: every delivery mode (the
 * reserved ones too), every shorthand, physical and logical destinations
 * including APIC IDs nobody has, and illegal vectors.  The VMM must keep
 * running and the LAPIC must report what the SDM says:
 *
 * 1. Fixed and lowest-priority IPIs with a vector below 16 are not sent:
 *    ESR bit 5 (send illegal vector) and one error interrupt (LVT error)
 *    each, for every destination and shorthand.  Reserved register
 *    offsets set ESR bit 7 (illegal register address) on read and write.
 * 2. Random ICRs (seeded): each NMI must reach exactly the CPUs its
 *    destination names (counted; NMI with the "self" shorthand is an
 *    invalid combination, so only survived), each illegal vector must
 *    raise exactly one error interrupt; everything else must merely not
 *    hurt.  INIT and SIPI only go where no CPU is (an INIT to ourselves
 *    would stop the test, not test the VMM), except the INIT level
 *    de-assert, which resets nobody and goes anywhere; vectors 16-31 are
 *    moved up to 32-47 (they are the CPU's exception vectors, which our
 *    stubs cannot tell from an exception with an error code).
 * 3. Afterwards self-IPIs and IPIs to every CPU still work and ESR is
 *    clean.
 *
 * Command line: rounds=N (400), seed=N.
 */
#include "apic.h"
#include "cpu.h"
#include "guest.h"
#include "idt.h"
#include "pc.h"
#include "smp.h"
#include "time.h"
#include "watchdog.h"

#define VEC_ERROR 0xfe
#define VEC_CHECK 0x90

static uint32_t rounds = 400, seed = 4242;
static unsigned ncpus;
static volatile uint32_t err_irqs[SMP_MAX_CPUS], nmis[SMP_MAX_CPUS];
static volatile uint32_t fixed_irqs[SMP_MAX_CPUS], check_irqs[SMP_MAX_CPUS];
static volatile uint32_t answered[SMP_MAX_CPUS];

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void error_handler(struct irq_frame *f)
{
	(void)f;
	err_irqs[smp_cpu_id()]++;
	apic_eoi();
}

static void nmi_handler(struct irq_frame *f)
{
	(void)f;
	nmis[smp_cpu_id()]++;
}

static void fixed_handler(struct irq_frame *f)
{
	(void)f;
	fixed_irqs[smp_cpu_id()]++;
	apic_eoi();
}

static void check_handler(struct irq_frame *f)
{
	(void)f;
	check_irqs[smp_cpu_id()]++;
	apic_eoi();
}

static void setup_cpu(void *arg)
{
	(void)arg;
	apic_write(APIC_LVT_ERROR, VEC_ERROR);
	(void)apic_esr();
}

/* Wait up to 2 s for *@p to reach @want. */
static bool wait_for(volatile uint32_t *p, uint32_t want)
{
	uint64_t end = deadline_ms(2000);

	while (atomic_read(p) < want)
		if (deadline_passed(end))
			return false;
	return true;
}

/* ---- 1. Illegal vectors and registers ---- */

static void check_illegal(void)
{
	static const uint32_t shorthands[] = { ICR_SH_NONE, ICR_SH_SELF, ICR_SH_ALL,
					       ICR_SH_OTHERS };
	static const unsigned dests[] = { 0, 1, 0x0f, 0x7e, 0xff };
	unsigned n = 0;

	for (unsigned v = 0; v < 16; v++)
		for (unsigned dm = 0; dm < 2; dm++) {
			uint32_t sh = shorthands[(v + dm) % 4];
			unsigned dest = dests[v % 5];
			uint32_t lo = sh | (dm ? APIC_DM_LOWEST : APIC_DM_FIXED) | v |
				      (v & 1 ? ICR_LOGICAL : 0), esr;

			apic_icr(dest, lo);
			n++;
			if (!wait_for(&err_irqs[0], n))
				test_fail("ICR 0x%x to 0x%x (vector %u): no error interrupt", lo,
					  dest, v);
			esr = apic_esr();
			if (esr != ESR_SEND_ILLEGAL)
				test_fail("ICR 0x%x to 0x%x (vector %u): ESR 0x%x, want 0x%x", lo,
					  dest, v, esr, ESR_SEND_ILLEGAL);
		}
	udelay(2000);
	if (err_irqs[0] != n)
		test_fail("%u error interrupts for %u illegal vectors", err_irqs[0], n);
	for (unsigned c = 1; c < ncpus; c++)
		if (err_irqs[c] || fixed_irqs[c])
			test_fail("CPU %u got %u error and %u other interrupts from illegal IPIs", c,
				  err_irqs[c], fixed_irqs[c]);

	(void)apic_read(0x010);
	if (apic_esr() != ESR_ILLEGAL_REG)
		test_fail("read of reserved offset 0x010: ESR not 0x%x", ESR_ILLEGAL_REG);
	apic_write(0x040, 0x12345678);
	if (apic_esr() != ESR_ILLEGAL_REG)
		test_fail("write to reserved offset 0x040: ESR not 0x%x", ESR_ILLEGAL_REG);
	n += 2;
	if (!wait_for(&err_irqs[0], n))
		test_fail("illegal register address: no error interrupt");
	printf("illegal vectors: ESR 0x20 and one error interrupt each (%u); illegal register"
	       " offsets: ESR 0x80\n", n - 2);
}

/* ---- 2. Wild ICRs ---- */

/* Which CPUs an NMI with @lo to @dest reaches (bit per CPU), from CPU 0. */
static uint32_t nmi_targets(uint32_t lo, unsigned dest)
{
	uint32_t all = (1u << ncpus) - 1;

	switch (lo & (3u << 18)) {
	case ICR_SH_SELF:
		return 1;
	case ICR_SH_ALL:
		return all;
	case ICR_SH_OTHERS:
		return all & ~1u;
	}
	if (dest == 0xff)
		return all;
	if (lo & ICR_LOGICAL)
		return 0;          /* every LDR is 0 */
	return dest < ncpus ? 1u << dest : 0;
}

/* True if @lo to @dest may reach an existing CPU (for INIT and SIPI). */
static bool hits_a_cpu(uint32_t lo, unsigned dest)
{
	if (lo & (3u << 18))
		return true;
	if (dest == 0xff)
		return true;
	return !(lo & ICR_LOGICAL) && dest < ncpus;
}

static void wild(void)
{
	uint32_t s = seed | 1, errs = err_irqs[0], n_nmi = 0, n_bad = 0, n_dm[8] = { 0 };

	for (uint32_t i = 0; i < rounds; i++) {
		uint32_t lo = rnd(&s) & 0x000ccfff;     /* the writable bits */
		unsigned dest = rnd(&s) & 0xff, dm = (lo >> 8) & 7, v = lo & 0xff;
		uint32_t before[SMP_MAX_CPUS], targets = 0;
		bool exact;

		if (rnd(&s) % 4 == 0)
			dest = ncpus + rnd(&s) % (0xff - ncpus);   /* nobody there */
		/* INIT level de-assert (level, not assert) resets nobody: let it go anywhere. */
		if ((dm == 5 && !(lo & ICR_LEVEL && !(lo & ICR_ASSERT))) || dm == 6)
			if (hits_a_cpu(lo, dest))
				continue;
		if (v >= 16 && v < 32)
			lo += 16;
		if (v == VEC_ERROR)
			lo ^= 1;
		/* An NMI to "self" is an invalid combination (SDM): no count for it. */
		exact = (lo & (3u << 18)) != ICR_SH_SELF;
		if (dm == 4) {
			targets = nmi_targets(lo, dest);
			for (unsigned c = 0; c < ncpus; c++)
				before[c] = nmis[c];
		}
		n_dm[dm]++;
		apic_icr(dest, lo);
		if (dm == 4) {
			n_nmi++;
			/* Count it, and never let a second NMI overtake the first. */
			for (unsigned c = 0; c < ncpus && exact; c++)
				if (targets >> c & 1 && !wait_for(&nmis[c], before[c] + 1))
					test_fail("NMI ICR 0x%x to 0x%x: CPU %u got none", lo, dest, c);
			udelay(exact ? 500 : 5000);
			for (unsigned c = 0; c < ncpus && exact; c++)
				if (nmis[c] != before[c] + (targets >> c & 1))
					test_fail("NMI ICR 0x%x to 0x%x: CPU %u got %u", lo, dest, c,
						  nmis[c] - before[c]);
		} else if ((dm == 0 || dm == 1) && v < 16) {
			n_bad++;
			if (!wait_for(&err_irqs[0], errs + n_bad))
				test_fail("ICR 0x%x: illegal vector without an error interrupt", lo);
		}
		if (i % 16 == 0)
			(void)apic_esr();
	}
	udelay(5000);
	if (err_irqs[0] != errs + n_bad)
		test_fail("%u error interrupts for %u illegal vectors", err_irqs[0] - errs, n_bad);
	printf("wild ICRs: fixed %u, lowest %u, SMI %u, reserved %u/%u, NMI %u (counted),"
	       " INIT %u, SIPI %u (to nobody), %u illegal vectors\n", n_dm[0], n_dm[1],
	       n_dm[2], n_dm[3], n_dm[7], n_nmi, n_dm[5], n_dm[6], n_bad);
}

/* ---- 3. Still working ---- */

static void answer(void *arg)
{
	(void)arg;
	answered[smp_cpu_id()] = apic_id() + 1;
}

static void check_alive(void)
{
	uint32_t before = check_irqs[0];

	(void)apic_esr();
	apic_icr(0, ICR_SH_SELF | APIC_DM_FIXED | VEC_CHECK);
	if (!wait_for(&check_irqs[0], before + 1))
		test_fail("self-IPI lost after the wild ICRs");
	for (unsigned c = 1; c < ncpus; c++) {
		before = check_irqs[c];
		apic_icr(c, APIC_DM_FIXED | VEC_CHECK);
		if (!wait_for(&check_irqs[c], before + 1))
			test_fail("IPI to CPU %u lost after the wild ICRs", c);
		smp_call(c, answer, NULL);
		if (answered[c] != c + 1)
			test_fail("CPU %u answered %d", c, (int)answered[c] - 1);
	}
	if (apic_esr())
		test_fail("ESR 0x%x after a clean IPI", apic_esr());
	printf("afterwards: self-IPI, IPIs and work on every CPU fine, ESR clean\n");
}

int main(uint32_t magic, const struct mb_info *mbi)
{
	const char *args = guest_start("wildicr", magic, mbi);

	cmdline_uint(args, "rounds", &rounds);
	cmdline_uint(args, "seed", &seed);
	smp_init();
	ncpus = fw_cfg_cpus();
	for (unsigned v = 0x20; v < 0x100; v++)
		if (v != VEC_WAKE && v != VEC_WATCHDOG)
			idt_set_handler(v, fixed_handler);
	idt_set_handler(VEC_ERROR, error_handler);
	idt_set_handler(VEC_CHECK, check_handler);
	idt_set_handler(VEC_NMI, nmi_handler);
	if (smp_boot(ncpus) != ncpus)
		test_fail("%u CPUs online, want %u", smp_online, ncpus);
	smp_call_all(setup_cpu, NULL);
	printf("%u CPUs, %u wild ICRs, seed %u\n", ncpus, rounds, seed);
	watchdog_start(30000, NULL);
	irq_enable();
	watchdog_phase("illegal vectors");
	check_illegal();
	watchdog_phase("wild ICRs");
	wild();
	watchdog_phase("after the wild ICRs");
	check_alive();
	watchdog_stop();
	irq_disable();
	test_pass();
}
