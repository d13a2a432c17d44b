/*
 * Counting under QMP stop/cont (driven by tests/qmp/run.sh).
 *
 * Every CPU counts in memory until an NMI (QMP inject-nmi) releases it:
 * its own counter with plain increments, a shared counter with locked
 * increments, and every 256 counts one port write to the test device,
 * whose WCOUNT register counts the writes that arrive.  The host watches
 * the counters from outside (QMP pmemsave of struct counters, whose
 * address the guest prints) while it stops and resumes the VM.
 *
 * At the end the counts must agree exactly: the shared counter equals the
 * sum of the per-CPU counters (no increment lost or done twice across a
 * pause), and WCOUNT equals the port writes the CPUs made (no in-flight
 * write dropped or repeated when a vCPU was stopped in the middle of it).
 *
 * Output: "counting: counters at 0x<addr>, <n> cpus" once every CPU was
 * given its work, then "final: ..." and PASS/FAIL.
 * Command line: none.
 */
#include "cpu.h"
#include "guest.h"
#include "idt.h"
#include "pc.h"
#include "smp.h"

#define TESTDEV_PORT   0xe0
#define TESTDEV_WCOUNT (TESTDEV_PORT + 0xc)
#define IO_EVERY       256

/* The layout tests/qmp/run.py reads: little-endian 32-bit words. */
struct counters {
	volatile uint32_t magic;                 /* COUNTERS_MAGIC */
	volatile uint32_t ncpus;
	volatile uint32_t release;               /* set by the NMI handler */
	volatile uint32_t shared;                /* locked increments of every CPU */
	volatile uint32_t count[SMP_MAX_CPUS];   /* each CPU's own increments */
	volatile uint32_t io[SMP_MAX_CPUS];      /* port writes each CPU made */
	volatile uint32_t nmis[SMP_MAX_CPUS];    /* NMIs each CPU took */
};

#define COUNTERS_MAGIC 0x434e5452   /* "RTNC" in memory order */

static struct counters counters __attribute__((aligned(64)));

static void nmi_handler(struct irq_frame *frame)
{
	(void)frame;
	atomic_inc(&counters.nmis[smp_cpu_id()]);
	atomic_set(&counters.release, 1);
}

static void count(void *arg)
{
	unsigned cpu = smp_cpu_id();
	uint32_t n = 0;

	(void)arg;
	while (!atomic_read(&counters.release)) {
		counters.count[cpu] = ++n;
		atomic_inc(&counters.shared);
		if (n % IO_EVERY == 0) {
			outb(TESTDEV_PORT, (uint8_t)cpu);
			counters.io[cpu]++;
		}
	}
}

int main(uint32_t magic, const struct mb_info *mbi)
{
	uint32_t sum = 0, io = 0, wcount;
	unsigned ncpus;

	guest_start("qmp_counter", magic, mbi);
	smp_init();
	idt_set_handler(VEC_NMI, nmi_handler);
	ncpus = fw_cfg_cpus();
	if (smp_boot(ncpus) != ncpus)
		test_fail("only %u of %u CPUs came up", smp_online, ncpus);
	counters.ncpus = ncpus;
	counters.magic = COUNTERS_MAGIC;
	outl(TESTDEV_WCOUNT, 0);   /* a write to WCOUNT zeroes it and is not counted */
	printf("counting: counters at 0x%x, %u cpus\n", (unsigned)(uintptr_t)&counters, ncpus);
	smp_call_all(count, NULL);

	wcount = inl(TESTDEV_WCOUNT);
	for (unsigned cpu = 0; cpu < ncpus; cpu++) {
		printf("final: cpu %u counted %u, %u port writes, %u NMIs\n", cpu,
		       counters.count[cpu], counters.io[cpu], counters.nmis[cpu]);
		sum += counters.count[cpu];
		io += counters.io[cpu];
		if (!counters.count[cpu])
			test_fail("CPU %u never counted", cpu);
	}
	printf("final: shared %u, sum %u, port writes %u, device saw %u\n", counters.shared,
	       sum, io, wcount);
	if (counters.shared != sum)
		test_fail("shared counter %u, but the CPUs counted %u", counters.shared, sum);
	if (wcount != io)
		test_fail("the device saw %u port writes, the CPUs made %u", wcount, io);
	test_pass();
}
