/*
 * The shared IDT: 32-bit interrupt gates on the flat code segment (0x08,
 * as boot.S and the AP trampoline set it up), each into its stub in
 * idt_stubs.S.
 */
#include "guest.h"
#include "idt.h"
#include "smp.h"

#define SEL_CODE      0x08
#define GATE_INTR32   0x8e00   /* present, DPL 0, 32-bit interrupt gate */

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint16_t flags;
	uint16_t off_hi;
} __attribute__((packed));

struct idt_desc {
	uint16_t limit;
	uint32_t base;
} __attribute__((packed));

extern const uint32_t idt_stub_table[256];

static struct idt_gate idt[256] __attribute__((aligned(8)));
static irq_handler_t handlers[256];

static const char *const exc_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "?9", "#TS",
	"#NP", "#SS", "#GP", "#PF", "?15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

void idt_init(void)
{
	for (unsigned v = 0; v < 256; v++) {
		uint32_t off = idt_stub_table[v];

		idt[v] = (struct idt_gate){ .off_lo = off & 0xffff, .sel = SEL_CODE,
					    .flags = GATE_INTR32, .off_hi = off >> 16 };
	}
}

void idt_load(void)
{
	struct idt_desc d = { .limit = sizeof(idt) - 1, .base = (uint32_t)(uintptr_t)idt };

	asm volatile("lidt %0" :: "m"(d));
}

void idt_set_handler(unsigned vector, irq_handler_t fn)
{
	__atomic_store_n(&handlers[vector & 0xff], fn, __ATOMIC_RELEASE);
}

void idt_dispatch(struct irq_frame *f)
{
	irq_handler_t fn = __atomic_load_n(&handlers[f->vector & 0xff], __ATOMIC_ACQUIRE);

	if (fn) {
		fn(f);
		return;
	}
	if (f->vector < 32)
		test_fail("CPU %u: exception %u %s at eip 0x%x, error code 0x%x, eflags 0x%x",
			  smp_cpu_id(), f->vector,
			  exc_names[f->vector] ? exc_names[f->vector] : "", f->eip,
			  f->error, f->eflags);
	test_fail("CPU %u: unexpected interrupt, vector 0x%x at eip 0x%x",
		  smp_cpu_id(), f->vector, f->eip);
}
