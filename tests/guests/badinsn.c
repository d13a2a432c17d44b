/*
 * A crash guest: an instruction the host's emulator cannot run in ring 0.
 * POPCNT (f3 0f b8 c0, popcnt %eax,%eax) is copied into a buffer at run
 * time and called there, so lib/check-insns.sh, which rejects it in our
 * code, never sees it.  The expected verdict is the VMM's: exit status 4
 * with "KVM internal error" and the instruction bytes in its log
 * (tests/guests/run.sh checks both).  If POPCNT runs, we fail.
 */
#include "guest.h"

static uint8_t code[16] __attribute__((aligned(16)));

int main(uint32_t magic, const struct mb_info *mbi)
{
	static const uint8_t insn[] = { 0xf3, 0x0f, 0xb8, 0xc0,   /* popcnt %eax, %eax */
					0xc3 };                   /* ret */
	uint32_t eax = 0xf0f0;

	guest_start("badinsn", magic, mbi);
	memcpy(code, insn, sizeof(insn));
	printf("calling popcnt at 0x%x: the VMM must report a KVM internal error\n",
	       (unsigned)(uintptr_t)code);
	asm volatile("call *%1" : "+a"(eax) : "r"(code) : "memory", "cc");
	test_fail("popcnt ran in ring 0 (gave %u)", eax);
}
