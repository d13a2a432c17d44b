/*
 * bench_pio: what one port access costs the guest, exit and VMM included,
 * measured inside the guest with the TSC.
 *
 * Two loops of 32-bit port accesses to one port, `out` (a posted write
 * for our VMM) and `in` (a read: the vCPU waits for the answer), each run
 * as BLOCKS blocks of ITERS accesses after a warm-up.  The loop body is
 * the access and a decrement-and-branch only: ring-0 guest code is
 * emulated on these hosts (about a microsecond per instruction), so
 * anything more in the loop would be measured too.
 *
 * Output, per loop: "BENCH pio_<out|in> port=P ops=N cycles=C
 * blk_min=A blk_p50=B blk_max=D" (the block figures in cycles per access);
 * the host converts cycles with the vCPU's TSC rate.
 *
 * Command line: port=P (0xe0) iters=N (200) blocks=N (10) warmup=N (50)
 * echo (check first that a device answers at P: a value written there
 * reads back, as our testdev's SCRATCH0 and QEMU's pc-testdev do).
 */
#include "cpu.h"
#include "guest.h"

#define ECHO_VALUE 0x1234abcdu
#define MAX_BLOCKS 64

static uint32_t port = 0xe0, iters = 200, blocks = 10, warmup = 50;

static void loop_out(uint32_t n)
{
	asm volatile("1: outl %%eax, %%dx\n\tdecl %%ecx\n\tjnz 1b"
		     : "+c"(n) : "a"(0x5a5a5a5au), "d"(port) : "memory");
}

static void loop_in(uint32_t n)
{
	uint32_t v;

	asm volatile("1: inl %%dx, %%eax\n\tdecl %%ecx\n\tjnz 1b"
		     : "+c"(n), "=a"(v) : "d"(port) : "memory");
}

/* Insertion sort: MAX_BLOCKS values at most. */
static void sort(uint32_t *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j && v[j - 1] > v[j]; j--) {
			uint32_t t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
}

static void measure(const char *name, void (*loop)(uint32_t))
{
	uint32_t per_op[MAX_BLOCKS];
	uint64_t total = 0;

	loop(warmup);
	for (unsigned b = 0; b < blocks; b++) {
		uint64_t t0 = rdtsc(), dt;

		loop(iters);
		dt = rdtsc() - t0;
		total += dt;
		per_op[b] = (uint32_t)div64(dt, iters);
	}
	sort(per_op, blocks);
	printf("BENCH %s port=0x%x ops=%u cycles=%llu blk_min=%u blk_p50=%u blk_max=%u\n",
	       name, port, iters * blocks, (unsigned long long)total, per_op[0],
	       per_op[blocks / 2], per_op[blocks - 1]);
}

int main(uint32_t magic, const struct mb_info *mbi)
{
	const char *args = guest_start("bench_pio", magic, mbi);

	cmdline_uint(args, "port", &port);
	cmdline_uint(args, "iters", &iters);
	cmdline_uint(args, "blocks", &blocks);
	cmdline_uint(args, "warmup", &warmup);
	if (!iters || !blocks || blocks > MAX_BLOCKS || !warmup)
		test_fail("bad arguments: iters=%u blocks=%u (1-%u) warmup=%u", iters, blocks,
			  MAX_BLOCKS, warmup);
	if (cmdline_has(args, "echo")) {
		outl(port, ECHO_VALUE);
		if (inl(port) != ECHO_VALUE)
			test_fail("nothing echoes at port 0x%x: wrote 0x%x, read 0x%x", port,
				  ECHO_VALUE, inl(port));
	}
	measure("pio_out", loop_out);
	measure("pio_in", loop_in);
	test_pass();
}
