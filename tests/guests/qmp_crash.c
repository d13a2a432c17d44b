/*
 * A guest that crashes on purpose (driven by tests/qmp/run.sh): with an
 * empty IDT, a divide error cannot be delivered, nor the #GP or #DF that
 * follow: a triple fault.  The VMM must report GUEST_PANICKED and
 * SHUTDOWN over QMP, dump the machine's state and exit with status 4.
 * Command line: none.
 */
#include "cpu.h"
#include "guest.h"

int main(uint32_t magic, const struct mb_info *mbi)
{
	static const struct { uint16_t limit; uint32_t base; } __attribute__((packed)) empty = { 0, 0 };

	guest_start("qmp_crash", magic, mbi);
	printf("crashing: empty IDT, then a divide error\n");
	irq_disable();
	asm volatile("lidt %0\n\t"
		     "xor %%ecx, %%ecx\n\t"
		     "div %%ecx" :: "m"(empty) : "eax", "ecx", "edx");
	test_fail("still running after a triple fault");
}
