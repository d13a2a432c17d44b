/*
 * bench_ipi: IPI ping-pong between CPU 0 and CPU 1, timed per round trip
 * with the TSC inside the guest.
 *
 * CPU 0 sends PING to CPU 1 (fixed, physical destination); CPU 1's handler
 * answers PONG; CPU 0 waits for it, then sends the next.  Two ways to
 * wait on CPU 0: halting ("sti; hlt", the VMM must wake a sleeping vCPU)
 * and spinning with interrupts enabled (the VMM must kick a running
 * one).  CPU 1 always waits halted, as the test library's APs idle.
 *
 * Output: "BENCH ipi_<hlt|spin> trips=N cycles=C min=A p50=B p99=C2
 * max=D" (cycles per round trip).
 *
 * Command line: trips=N (200) warmup=N (20).
 */
#include "apic.h"
#include "cpu.h"
#include "guest.h"
#include "idt.h"
#include "pc.h"
#include "smp.h"
#include "time.h"

#define VEC_PING   0x60
#define VEC_PONG   0x61
#define MAX_TRIPS  2000

static uint32_t trips = 200, warmup = 20;
static volatile uint32_t pings, pongs;
static uint32_t sample[MAX_TRIPS];

static void ping_handler(struct irq_frame *f)
{
	(void)f;
	pings++;
	apic_icr(0, APIC_DM_FIXED | VEC_PONG);
	apic_eoi();
}

static void pong_handler(struct irq_frame *f)
{
	(void)f;
	pongs++;
	apic_eoi();
}

static void wait_pong(uint32_t want, bool halt)
{
	if (halt) {
		irq_disable();
		while (atomic_read(&pongs) < want)
			irq_wait_disabled();
		irq_enable();
	} else {
		while (atomic_read(&pongs) < want)
			cpu_relax();
	}
}

static void shell_sort(uint32_t *v, unsigned n)
{
	static const unsigned gaps[] = { 701, 301, 132, 57, 23, 10, 4, 1 };

	for (unsigned g = 0; g < sizeof(gaps) / sizeof(gaps[0]); g++)
		for (unsigned i = gaps[g]; i < n; i++) {
			uint32_t t = v[i];
			unsigned j = i;

			for (; j >= gaps[g] && v[j - gaps[g]] > t; j -= gaps[g])
				v[j] = v[j - gaps[g]];
			v[j] = t;
		}
}

static void ping_pong(const char *name, bool halt)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < warmup + trips; i++) {
		uint32_t want = pongs + 1;
		uint64_t t0 = rdtsc(), dt;

		apic_icr(1, APIC_DM_FIXED | VEC_PING);
		wait_pong(want, halt);
		dt = rdtsc() - t0;
		if (i >= warmup) {
			sample[i - warmup] = dt > 0xffffffffu ? 0xffffffffu : (uint32_t)dt;
			total += dt;
		}
	}
	if (pings != pongs)
		test_fail("%s: %u pings, %u pongs", name, pings, pongs);
	shell_sort(sample, trips);
	printf("BENCH %s trips=%u cycles=%llu min=%u p50=%u p99=%u max=%u\n", name, trips,
	       (unsigned long long)total, sample[0], sample[trips / 2],
	       sample[(uint32_t)div64((uint64_t)trips * 99, 100)], sample[trips - 1]);
}

int main(uint32_t magic, const struct mb_info *mbi)
{
	const char *args = guest_start("bench_ipi", magic, mbi);

	cmdline_uint(args, "trips", &trips);
	cmdline_uint(args, "warmup", &warmup);
	if (!trips || trips > MAX_TRIPS)
		test_fail("trips=%u: want 1-%u", trips, MAX_TRIPS);
	smp_init();
	pic_mask_all();
	if (fw_cfg_cpus() < 2)
		test_fail("needs 2 CPUs, the machine has %u", fw_cfg_cpus());
	idt_set_handler(VEC_PING, ping_handler);
	idt_set_handler(VEC_PONG, pong_handler);
	if (smp_boot(2) != 2)
		test_fail("CPU 1 did not come up");
	irq_enable();
	ping_pong("ipi_hlt", true);
	ping_pong("ipi_spin", false);
	irq_disable();
	test_pass();
}
