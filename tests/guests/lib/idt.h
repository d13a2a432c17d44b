/*
 * One IDT for every CPU of a test kernel: 256 interrupt gates into stubs
 * that save the registers and call the C handler set for the vector.
 *
 * Vectors without a handler fail the test: an exception prints where it
 * happened, an unexpected interrupt says which vector came on which CPU.
 * Handlers run with interrupts disabled (interrupt gates) and must send
 * their own EOI.
 */
#pragma once
#include <stdint.h>

/* What the stubs push, lowest address first. */
struct irq_frame {
	uint32_t edi, esi, ebp, esp_at_pusha, ebx, edx, ecx, eax;
	uint32_t vector, error;
	uint32_t eip, cs, eflags;
};

typedef void (*irq_handler_t)(struct irq_frame *frame);

#define VEC_NMI 2

/* Fill the table (once, on the BSP, before any CPU loads it). */
void idt_init(void);
/* Load the table on this CPU. */
void idt_load(void);
/* Route @vector to @fn (NULL: back to "unexpected"). */
void idt_set_handler(unsigned vector, irq_handler_t fn);
/* Called by the stubs. */
void idt_dispatch(struct irq_frame *frame);
