/*
 * The VMM's fallback for ring-0 instructions this host's KVM emulator
 * refuses (vmm/insn_fallback.c): INT3 must raise #BP with the return
 * address just past it, as a CPU does, and FWAIT with no x87 exception
 * pending must do nothing.  Both are copied into a buffer at run time
 * (lib/check-insns.sh rejects them in our own code).  On a host with
 * hardware virtualization they run natively and the test passes the same.
 */
#include "guest.h"
#include "idt.h"

#define VEC_BP 3
#define ROUNDS 5

static uint8_t code[16] __attribute__((aligned(16)));
static volatile uint32_t bp_count, bp_eip;

static void on_breakpoint(struct irq_frame *f)
{
	bp_count++;
	bp_eip = f->eip;
}

static void call_code(void)
{
	uint32_t eax = 0x1234;

	asm volatile("call *%1" : "+a"(eax) : "r"(code) : "memory", "cc");
	if (eax != 0x1234)
		test_fail("eax changed to 0x%x", eax);
}

int main(uint32_t magic, const struct mb_info *mbi)
{
	static const uint8_t int3[] = { 0xcc, 0x90, 0xc3 };   /* int3; nop; ret */
	static const uint8_t fwait[] = { 0x9b, 0x9b, 0xc3 };  /* fwait; fwait; ret */

	guest_start("trapinsn", magic, mbi);
	idt_init();
	idt_load();
	idt_set_handler(VEC_BP, on_breakpoint);
	memcpy(code, int3, sizeof(int3));
	for (unsigned i = 1; i <= ROUNDS; i++) {
		call_code();
		if (bp_count != i)
			test_fail("int3 round %u: %u breakpoints", i, bp_count);
		if (bp_eip != (uint32_t)(uintptr_t)code + 1)
			test_fail("int3: #BP returned to 0x%x, want 0x%x (just past it)", bp_eip,
				  (unsigned)(uintptr_t)code + 1);
	}
	printf("int3: %u breakpoints, each returning just past the int3\n", bp_count);
	memcpy(code, fwait, sizeof(fwait));
	call_code();
	if (bp_count != ROUNDS)
		test_fail("fwait raised an exception");
	printf("fwait: ran as a no-op (no x87 exception pending)\n");
	test_pass();
}
