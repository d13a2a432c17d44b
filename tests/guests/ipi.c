/*
 * Inter-processor interrupts with exact counts.
 *
 * 1. Self-IPI on every CPU: the "self" shorthand and the own physical
 *    ID; IRR while IF is clear; priority order (0x90 before 0x50); ISR
 *    set during the handler; one IRR bit per vector (three sends while
 *    IF is clear give one interrupt); TPR holds back a lower class.
 * 2. Ping-pong: CPU 0 sends PING to CPU n, whose handler answers PONG,
 *    N round trips per AP, CPU 0 waiting in HLT for each PONG.
 * 3. Storm: every CPU sends to every other CPU at once, P IPIs on each of
 *    4 vectors per (source, destination); the handlers count per
 *    (destination, source, vector) and every count must be exactly P.  A
 *    sender sends the next IPI of a (destination, vector) only after the
 *    previous one was taken: IPIs in flight on one vector would merge in
 *    IRR, as the architecture says they may.
 * 4. Logical flat destinations (LDR = 1 << cpu): every subset of the CPUs
 *    as a multicast, the logical broadcast, and the "all including self"
 *    and "all excluding self" shorthands: exact counts per CPU.
 * 5. Lowest priority: with one CPU at TPR 0 and the others higher, every
 *    lowest-priority IPI to all CPUs goes to that CPU; then with equal
 *    TPRs the total is exact.
 * 6. NMI (delivery mode NMI, IDT vector 2): to each AP idle in HLT, to an
 *    AP spinning with IF clear (the NMI must come anyway), to an AP in
 *    "cli; hlt" (only an NMI wakes it), to the own APIC ID, and with the
 *    "all excluding self" shorthand.
 *
 * Command line: pingpong=N (300) storm=P (50) nmis=N (50) lowest=N (30).
 */
#include "apic.h"
#include "cpu.h"
#include "guest.h"
#include "idt.h"
#include "pc.h"
#include "smp.h"
#include "time.h"
#include "watchdog.h"

/* The storm gives every CPU its own vectors: 8 CPUs fit below 256. */
#define MAXC        8
#define VEC_PING    0x60
#define VEC_PONG    0x61
#define VEC_SELF_LO 0x50
#define VEC_SELF_HI 0x90
#define VEC_MCAST   0x70
#define VEC_STORM   0x80          /* + 4 * source + k, k < 4 */
#define VEC_LOWEST  0xe0
#define STORM_VECS  4

static unsigned ncpus;
static uint32_t n_pingpong = 300, n_storm = 50, n_nmis = 50, n_lowest = 30;

static volatile uint32_t ping_count[MAXC], pong_count;
static volatile uint32_t storm_count[MAXC][MAXC][STORM_VECS];
static volatile uint32_t mcast_count[MAXC], lowest_count[MAXC];
static volatile uint32_t nmi_count[MAXC], nmi_if_clear[MAXC], nmi_waiting[MAXC];
static volatile uint32_t self_count[MAXC], self_order[MAXC][8], self_isr_ok[MAXC];

static void report(void)
{
	printf("pings:");
	for (unsigned c = 0; c < ncpus; c++)
		printf(" %u", ping_count[c]);
	printf(", pongs %u\nnmis:", pong_count);
	for (unsigned c = 0; c < ncpus; c++)
		printf(" %u", nmi_count[c]);
	printf("\nstorm counts [dst][src]:");
	for (unsigned d = 0; d < ncpus; d++)
		for (unsigned s = 0; s < ncpus; s++)
			printf(" %u:%u=%u/%u/%u/%u", d, s, storm_count[d][s][0], storm_count[d][s][1],
			       storm_count[d][s][2], storm_count[d][s][3]);
	printf("\n");
}

/* ---- Handlers ---- */

static void ping_handler(struct irq_frame *f)
{
	(void)f;
	ping_count[smp_cpu_id()]++;
	apic_icr(0, APIC_DM_FIXED | VEC_PONG);
	apic_eoi();
}

static void pong_handler(struct irq_frame *f)
{
	(void)f;
	pong_count++;
	apic_eoi();
}

static void storm_handler(struct irq_frame *f)
{
	unsigned src = (f->vector - VEC_STORM) / STORM_VECS, k = f->vector % STORM_VECS;

	storm_count[smp_cpu_id()][src][k]++;
	apic_eoi();
}

static void mcast_handler(struct irq_frame *f)
{
	(void)f;
	mcast_count[smp_cpu_id()]++;
	apic_eoi();
}

static void lowest_handler(struct irq_frame *f)
{
	(void)f;
	apic_eoi();
	/* After the EOI: the sender waits for this, then the APR is back to TPR. */
	lowest_count[smp_cpu_id()]++;
}

static void nmi_handler(struct irq_frame *f)
{
	unsigned cpu = smp_cpu_id();

	if (!(f->eflags & (1u << 9)))
		nmi_if_clear[cpu]++;
	nmi_count[cpu]++;
}

static void self_handler(struct irq_frame *f)
{
	unsigned cpu = smp_cpu_id(), n = self_count[cpu];

	if (apic_vector_bit(APIC_ISR, f->vector) && !apic_vector_bit(APIC_IRR, f->vector))
		self_isr_ok[cpu]++;
	if (n < 8)
		self_order[cpu][n] = f->vector;
	self_count[cpu] = n + 1;
	apic_eoi();
}

/* ---- Waiting ---- */

/* Spin (interrupts on) until *@p >= @want; the watchdog catches a hang. */
static void wait_count(volatile uint32_t *p, uint32_t want)
{
	while (atomic_read(p) < want)
		cpu_relax();
}

/* Same, halting between checks: woken by the interrupt that counts. */
static void halt_until(volatile uint32_t *p, uint32_t want)
{
	irq_disable();
	while (atomic_read(p) < want)
		irq_wait_disabled();
	irq_enable();
}

/* ---- 1. Self-IPIs ---- */

/*
 * Enable interrupts until *@p reaches @want (or 5 s pass), then 2 ms more
 * for any extra ones, and disable them again.  A mere "sti; nop; cli" is
 * not enough here: the VMM injects at its next chance to, which on this
 * host can be a few hundred microseconds after the window opened.
 */
static void irq_window(volatile uint32_t *p, uint32_t want)
{
	uint64_t end = deadline_ms(5000);

	irq_enable();
	while (atomic_read(p) < want && !deadline_passed(end))
		cpu_relax();
	udelay(2000);
	irq_disable();
}

static void fail_self(unsigned cpu, const char *what)
{
	spin_lock(&print_lock);
	test_fail("CPU %u: self-IPI: %s (count %u, order 0x%x 0x%x 0x%x)", cpu, what,
		  self_count[cpu], self_order[cpu][0], self_order[cpu][1], self_order[cpu][2]);
}

static void self_test(void *arg)
{
	unsigned cpu = smp_cpu_id();
	uint64_t end;

	(void)arg;
	irq_disable();
	self_count[cpu] = 0;
	apic_icr(0, ICR_SH_SELF | APIC_DM_FIXED | VEC_SELF_LO);
	apic_icr(apic_id(), APIC_DM_FIXED | VEC_SELF_HI);
	if (!apic_vector_bit(APIC_IRR, VEC_SELF_LO) || !apic_vector_bit(APIC_IRR, VEC_SELF_HI))
		fail_self(cpu, "IRR bits not set while IF is clear");
	if (self_count[cpu])
		fail_self(cpu, "delivered while IF was clear");
	irq_window(&self_count[cpu], 2);
	if (self_count[cpu] != 2 || self_order[cpu][0] != VEC_SELF_HI ||
	    self_order[cpu][1] != VEC_SELF_LO)
		fail_self(cpu, "want 0x90 then 0x50");
	if (self_isr_ok[cpu] != 2)
		fail_self(cpu, "ISR bit not set (or IRR still set) in the handler");
	if (apic_vector_bit(APIC_ISR, VEC_SELF_LO) || apic_vector_bit(APIC_ISR, VEC_SELF_HI))
		fail_self(cpu, "ISR bit still set after EOI");

	/* One IRR bit per vector: three sends, one interrupt. */
	for (int i = 0; i < 3; i++)
		apic_icr(0, ICR_SH_SELF | APIC_DM_FIXED | VEC_SELF_LO);
	irq_window(&self_count[cpu], 3);
	if (self_count[cpu] != 3)
		fail_self(cpu, "three sends of one vector while IF was clear: want one interrupt");

	/* TPR class 6 holds back vector 0x50 (class 5), not 0x90. */
	apic_write(APIC_TPR, 0x60);
	apic_icr(0, ICR_SH_SELF | APIC_DM_FIXED | VEC_SELF_LO);
	irq_enable();
	udelay(2000);
	irq_disable();
	if (self_count[cpu] != 3 || !apic_vector_bit(APIC_IRR, VEC_SELF_LO))
		fail_self(cpu, "vector 0x50 delivered with TPR 0x60");
	if ((apic_read(APIC_PPR) & 0xf0) != 0x60)
		fail_self(cpu, "PPR does not follow TPR");
	apic_write(APIC_TPR, 0);
	irq_enable();
	end = deadline_ms(5000);
	while (self_count[cpu] < 4 && !deadline_passed(end))
		cpu_relax();
	if (self_count[cpu] != 4)
		fail_self(cpu, "vector 0x50 not delivered after TPR went back to 0");
}

/* ---- 2. Ping-pong ---- */

static void ping_pong(unsigned peer)
{
	uint32_t pongs = pong_count, pings = ping_count[peer];
	uint64_t t0 = rdtsc(), dt;

	for (uint32_t i = 1; i <= n_pingpong; i++) {
		apic_icr(peer, APIC_DM_FIXED | VEC_PING);
		halt_until(&pong_count, pongs + i);
	}
	dt = rdtsc() - t0;
	if (ping_count[peer] - pings != n_pingpong || pong_count - pongs != n_pingpong)
		test_fail("ping-pong with CPU %u: %u pings, %u pongs, want %u", peer,
			  ping_count[peer] - pings, pong_count - pongs, n_pingpong);
	printf("ping-pong CPU 0 <-> CPU %u: %u round trips, %u us each\n", peer, n_pingpong,
	       (unsigned)div64(tsc_to_us(dt), n_pingpong));
}

/* ---- 3. Storm ---- */

static void storm_run(void *arg)
{
	unsigned me = smp_cpu_id();
	uint32_t sent[MAXC][STORM_VECS] = { { 0 } };
	bool busy = true;

	(void)arg;
	while (busy) {
		busy = false;
		for (unsigned d = 0; d < ncpus; d++) {
			if (d == me)
				continue;
			for (unsigned k = 0; k < STORM_VECS; k++) {
				uint32_t got = atomic_read(&storm_count[d][me][k]);

				if (got < n_storm)
					busy = true;
				if (sent[d][k] < n_storm && got == sent[d][k]) {
					apic_icr(d, APIC_DM_FIXED | (VEC_STORM + STORM_VECS * me + k));
					sent[d][k]++;
				} else if (got > sent[d][k]) {
					spin_lock(&print_lock);
					test_fail("storm: CPU %u got %u IPIs on vector 0x%x from CPU %u,"
						  " which sent %u", d, got, VEC_STORM + STORM_VECS * me + k,
						  me, sent[d][k]);
				}
			}
		}
		if (busy)
			cpu_relax();
	}
}

static void storm(void)
{
	uint64_t t0 = rdtsc(), dt;
	unsigned total = 0;

	smp_call_all(storm_run, NULL);
	dt = rdtsc() - t0;
	for (unsigned d = 0; d < ncpus; d++)
		for (unsigned s = 0; s < ncpus; s++)
			for (unsigned k = 0; k < STORM_VECS; k++) {
				uint32_t want = d == s ? 0 : n_storm;

				if (storm_count[d][s][k] != want) {
					report();
					test_fail("storm: CPU %u got %u IPIs on vector 0x%x from CPU %u,"
						  " want %u", d, storm_count[d][s][k],
						  VEC_STORM + STORM_VECS * s + k, s, want);
				}
				total += storm_count[d][s][k];
			}
	printf("storm: %u IPIs, exactly %u per (source, destination, vector), %u ms\n",
	       total, n_storm, (unsigned)div64(tsc_to_us(dt), 1000));
}

/* ---- 4. Logical destinations and shorthands ---- */

static void set_logical(void *arg)
{
	(void)arg;
	apic_write(APIC_DFR, 0xffffffff);                 /* flat model */
	apic_write(APIC_LDR, (1u << smp_cpu_id()) << 24);
}

static void check_mcast(const uint32_t *want, const char *what)
{
	uint32_t total = 0, expect = 0;
	uint64_t end;

	for (unsigned c = 0; c < ncpus; c++)
		expect += want[c];
	/* Wait for the total, then check nobody got more than its share. */
	end = deadline_ms(10000);
	do {
		total = 0;
		for (unsigned c = 0; c < ncpus; c++)
			total += atomic_read(&mcast_count[c]);
	} while (total < expect && !deadline_passed(end));
	udelay(1000);
	for (unsigned c = 0; c < ncpus; c++)
		if (mcast_count[c] != want[c])
			test_fail("%s: CPU %u got %u, want %u", what, c, mcast_count[c], want[c]);
}

static void logical(void)
{
	uint32_t want[MAXC] = { 0 };
	unsigned all = (1u << ncpus) - 1;

	smp_call_all(set_logical, NULL);
	for (unsigned mask = 1; mask <= all; mask++) {
		apic_icr(mask, ICR_LOGICAL | APIC_DM_FIXED | VEC_MCAST);
		for (unsigned c = 0; c < ncpus; c++)
			want[c] += mask >> c & 1;
		check_mcast(want, "logical multicast");
	}
	apic_icr(0xff, ICR_LOGICAL | APIC_DM_FIXED | VEC_MCAST);
	for (unsigned c = 0; c < ncpus; c++)
		want[c]++;
	check_mcast(want, "logical broadcast");
	apic_icr(0, ICR_SH_ALL | APIC_DM_FIXED | VEC_MCAST);
	for (unsigned c = 0; c < ncpus; c++)
		want[c]++;
	check_mcast(want, "all including self");
	apic_icr(0, ICR_SH_OTHERS | APIC_DM_FIXED | VEC_MCAST);
	for (unsigned c = 1; c < ncpus; c++)
		want[c]++;
	check_mcast(want, "all excluding self");
	printf("logical flat: %u multicast masks, broadcast and both \"all\" shorthands exact\n",
	       all);
}

/* ---- 5. Lowest priority ---- */

static volatile uint32_t low_cpu;

/* TPR 0 on the chosen CPU, 0x30 + 0x10 * cpu on the others (all below 0xe0). */
static void set_tpr(void *arg)
{
	unsigned cpu = smp_cpu_id();

	(void)arg;
	apic_write(APIC_TPR, cpu == low_cpu ? 0 : 0x30 + 0x10 * cpu);
}

static void zero_tpr(void *arg)
{
	(void)arg;
	apic_write(APIC_TPR, 0);
}

static uint32_t lowest_total(void)
{
	uint32_t t = 0;

	for (unsigned c = 0; c < ncpus; c++)
		t += atomic_read(&lowest_count[c]);
	return t;
}

static void lowest(void)
{
	unsigned all = (1u << ncpus) - 1;

	for (unsigned t = 0; t < ncpus; t++) {
		low_cpu = t;
		smp_call_all(set_tpr, NULL);
		memset((void *)lowest_count, 0, sizeof(lowest_count));
		for (uint32_t i = 1; i <= n_lowest; i++) {
			apic_icr(all, ICR_LOGICAL | APIC_DM_LOWEST | VEC_LOWEST);
			wait_count(&lowest_count[t], i);
		}
		udelay(1000);
		if (lowest_total() != n_lowest)
			test_fail("lowest priority, CPU %u at TPR 0: %u of %u went elsewhere", t,
				  lowest_total() - lowest_count[t], n_lowest);
	}
	smp_call_all(zero_tpr, NULL);
	memset((void *)lowest_count, 0, sizeof(lowest_count));
	for (uint32_t i = 1; i <= n_lowest * ncpus; i++) {
		apic_icr(all, ICR_LOGICAL | APIC_DM_LOWEST | VEC_LOWEST);
		while (lowest_total() < i)
			cpu_relax();
	}
	udelay(1000);
	if (lowest_total() != n_lowest * ncpus)
		test_fail("lowest priority, equal TPRs: %u delivered, want %u", lowest_total(),
			  n_lowest * ncpus);
	printf("lowest priority: always the CPU with the lowest TPR; equal TPRs:");
	for (unsigned c = 0; c < ncpus; c++)
		printf(" %u", lowest_count[c]);
	printf("\n");
}

/* ---- 6. NMI ---- */

/* Wait with IF clear until the NMI count reaches *arg, spinning. */
static void nmi_spin_cli(void *arg)
{
	unsigned cpu = smp_cpu_id();

	irq_disable();
	atomic_set(&nmi_waiting[cpu], 1);
	while (atomic_read(&nmi_count[cpu]) < *(volatile uint32_t *)arg)
		cpu_relax();
	irq_enable();
}

/* The same in "cli; hlt": only an NMI wakes the CPU. */
static void nmi_halt_cli(void *arg)
{
	unsigned cpu = smp_cpu_id();

	irq_disable();
	atomic_set(&nmi_waiting[cpu], 1);
	while (atomic_read(&nmi_count[cpu]) < *(volatile uint32_t *)arg)
		asm volatile("hlt" ::: "memory");
	irq_enable();
}

static void nmi_to(unsigned cpu, smp_fn waiter, const char *how)
{
	static volatile uint32_t target;
	uint32_t base = nmi_count[cpu], clear = nmi_if_clear[cpu];

	target = base + n_nmis;
	if (waiter) {
		nmi_waiting[cpu] = 0;
		smp_call_async(cpu, waiter, (void *)&target);
		wait_count(&nmi_waiting[cpu], 1);
		/* Give "cli; hlt" time to halt: the NMI must also come before. */
		udelay(1000);
	}
	for (uint32_t i = 1; i <= n_nmis; i++) {
		apic_icr(cpu, APIC_DM_NMI);
		wait_count(&nmi_count[cpu], base + i);
	}
	if (waiter)
		smp_call_wait(cpu);
	if (nmi_count[cpu] != base + n_nmis)
		test_fail("NMIs to CPU %u %s: %u, want %u", cpu, how, nmi_count[cpu] - base, n_nmis);
	if (waiter && nmi_if_clear[cpu] - clear != n_nmis)
		test_fail("NMIs to CPU %u %s: only %u came with IF clear", cpu, how,
			  nmi_if_clear[cpu] - clear);
}

static void nmis(void)
{
	uint32_t before[MAXC];

	for (unsigned c = 1; c < ncpus; c++) {
		nmi_to(c, NULL, "idle in hlt");
		nmi_to(c, nmi_spin_cli, "spinning with IF clear");
		nmi_to(c, nmi_halt_cli, "in cli; hlt");
	}
	nmi_to(0, NULL, "to itself");
	for (unsigned c = 0; c < ncpus; c++)
		before[c] = nmi_count[c];
	apic_icr(0, ICR_SH_OTHERS | APIC_DM_NMI);
	for (unsigned c = 1; c < ncpus; c++)
		wait_count(&nmi_count[c], before[c] + 1);
	udelay(2000);
	for (unsigned c = 0; c < ncpus; c++)
		if (nmi_count[c] != before[c] + (c != 0))
			test_fail("NMI to all excluding self: CPU %u got %u", c,
				  nmi_count[c] - before[c]);
	printf("NMI: %u to each CPU idle, spinning with IF clear and in cli;hlt; shorthand exact\n",
	       n_nmis);
}

int main(uint32_t magic, const struct mb_info *mbi)
{
	const char *args = guest_start("ipi", magic, mbi);

	cmdline_uint(args, "pingpong", &n_pingpong);
	cmdline_uint(args, "storm", &n_storm);
	cmdline_uint(args, "nmis", &n_nmis);
	cmdline_uint(args, "lowest", &n_lowest);
	smp_init();
	pic_mask_all();
	ncpus = fw_cfg_cpus();
	if (ncpus > 8)
		ncpus = 8;   /* logical flat mode addresses 8 CPUs */
	idt_set_handler(VEC_PING, ping_handler);
	idt_set_handler(VEC_PONG, pong_handler);
	for (unsigned v = VEC_STORM; v < VEC_STORM + STORM_VECS * MAXC; v++)
		idt_set_handler(v, storm_handler);
	idt_set_handler(VEC_MCAST, mcast_handler);
	idt_set_handler(VEC_LOWEST, lowest_handler);
	idt_set_handler(VEC_SELF_LO, self_handler);
	idt_set_handler(VEC_SELF_HI, self_handler);
	idt_set_handler(VEC_NMI, nmi_handler);
	if (smp_boot(ncpus) != ncpus)
		test_fail("%u CPUs online, want %u", smp_online, ncpus);
	printf("%u CPUs online\n", ncpus);
	watchdog_start(30000, report);
	irq_enable();

	watchdog_phase("self-IPI");
	smp_call_all(self_test, NULL);
	printf("self-IPI: IRR, priority order, ISR, coalescing and TPR right on %u CPUs\n", ncpus);
	watchdog_phase("ping-pong");
	for (unsigned c = 1; c < ncpus; c++)
		ping_pong(c);
	watchdog_phase("storm");
	storm();
	watchdog_phase("logical destinations");
	logical();
	watchdog_phase("lowest priority");
	lowest();
	watchdog_phase("NMI");
	nmis();
	watchdog_stop();
	irq_disable();
	test_pass();
}
