/*
 * bench_dirty: a guest that dirties guest RAM at a set rate, for the
 * migration benchmark (bench/migrate.sh).
 *
 * The BSP writes one word into each of rate pages every millisecond,
 * walking round a working set of ws pages from 16 MiB up; rate=0 leaves
 * RAM alone (the guest only halts).  It prints "dirty: ready" once under
 * way, then runs until the VMM is stopped.  The other vCPUs of the
 * machine stay parked: the working set is the BSP's.
 *
 * Command line: rate=N pages per ms (default 0), ws=N pages (default 1024).
 */
#include "cpu.h"
#include "guest.h"
#include "time.h"

#define WS_BASE (16u << 20)

int main(uint32_t magic, const struct mb_info *mbi)
{
	const char *args = guest_start("bench_dirty", magic, mbi);
	uint32_t rate = 0, ws = 1024, next = 0, stamp = 1;

	cmdline_uint(args, "rate", &rate);
	cmdline_uint(args, "ws", &ws);
	if (!ws)
		ws = 1;
	printf("dirty: ready rate=%u ws=%u\n", rate, ws);
	for (uint64_t t = rdtsc();; t += tsc_from_us(1000)) {
		for (uint32_t i = 0; i < rate; i++) {
			*(volatile uint32_t *)(uintptr_t)(WS_BASE + next * 4096u) = stamp++;
			next = next + 1 == ws ? 0 : next + 1;
		}
		while (rdtsc() < t + tsc_from_us(1000))
			cpu_relax();
	}
}
