/*
 * A crash guest: triple fault.  It loads an IDT with limit 0 and loads DS
 * with a selector beyond the GDT: the #GP finds no gate, nor does the #DF
 * it escalates to, and the CPU shuts down.  The expected verdict is the
 * VMM's, not ours: exit status 4 with "triple fault" and the registers in
 * its log (tests/guests/run.sh checks both).  If we get past the fault,
 * we fail.
 */
#include "guest.h"

struct idt_desc {
	uint16_t limit;
	uint32_t base;
} __attribute__((packed));

int main(uint32_t magic, const struct mb_info *mbi)
{
	static const struct idt_desc empty = { 0, 0 };

	guest_start("triple", magic, mbi);
	printf("loading an empty IDT, then DS = 0xfff8: the VMM must report a triple fault\n");
	asm volatile("cli; lidt %0" :: "m"(empty));
	asm volatile("movw %w0, %%ds" :: "r"(0xfff8) : "memory");
	test_fail("still running after a #GP with an empty IDT");
}
