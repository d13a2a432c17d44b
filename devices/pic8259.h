/*
 * The 8259A PIC pair of a PC (master 0x20/0x21, slave 0xA0/0xA1, ELCR
 * 0x4D0/0x4D1), lock-free: every receiver is claimed and runs on the
 * sender's thread.  "pic" creates one through the device registry; the VMM
 * and the tests use the calls below directly when they need the handle.
 *
 * IRQ numbers are ISA numbers 0..15: 0..7 on the master, 8..15 on the
 * slave.  Line 2 is the cascade and cannot be driven from outside.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct vm;
struct pic;

/*
 * Create the pair on @vm's buses (ports, IRQ lines 0..15, INTA on the
 * legacy bus) in the power-on state: not initialised, all unmasked, vector
 * base 0.  NULL on failure (ports taken, no memory, a pair already there).
 */
struct pic *pic_create(struct vm *vm);
/* Detach from the buses and free; no call runs on it afterwards. */
void pic_destroy(struct pic *pic);
/* The pair created on @vm (by pic_create or "pic"), or NULL. */
struct pic *pic_find(struct vm *vm);

/*
 * Program the pair as a PC BIOS leaves it: ICW1-4 with vector bases 0x08
 * and 0x70, cascade on IRQ 2, 8086 mode, normal EOI; IMR master 0xb8
 * (timer, keyboard, cascade, floppy open), slave 0x8e (RTC, mouse, FPU,
 * primary ATA open).  The same port writes a guest would do.
 */
void pic_bios_init(struct pic *pic);

/* Input lines, as msg_irq on vm->bus.irq would drive them. */
void pic_raise(struct pic *pic, unsigned irq);
void pic_lower(struct pic *pic, unsigned irq);
void pic_pulse(struct pic *pic, unsigned irq);   /* raise + lower, atomic */

/*
 * INTA: the vector the pair hands the CPU now, performing IRR -> ISR (or
 * auto-EOI) on the master and, through IRQ 2, on the slave.  Without a
 * request it returns the spurious vector (base + 7 of the chip that had
 * none) and changes nothing.  This is what LEGACY_INTA does.
 */
int pic_intack(struct pic *pic);
/* The master's INT output, computed from the current state. */
bool pic_output(const struct pic *pic);

/* Byte accesses to 0x20/0x21, 0xA0/0xA1, 0x4D0/0x4D1 (as the guest). */
void pic_port_write(struct pic *pic, uint16_t port, uint8_t value);
uint8_t pic_port_read(struct pic *pic, uint16_t port);
/*
 * The EOI a Linux guest writes after handling @irq: a specific EOI on the
 * slave (irq >= 8) and on the master (the cascade for slave IRQs).
 */
void pic_eoi(struct pic *pic, unsigned irq);

/* A consistent copy of the hot state, [0] master, [1] slave. */
struct pic_snapshot {
	uint8_t irr[2], isr[2], imr[2], level[2];
	uint8_t elcr[2], vector_base[2], priority[2]; /* priority: highest IRQ */
	bool auto_eoi[2], special_mask[2], output;
	uint32_t messages;   /* INTR/DEASSERT messages sent so far */
	uint64_t deferred;   /* changes whose message another thread sent */
};
void pic_snapshot(const struct pic *pic, struct pic_snapshot *s);

void pic_dump(const struct pic *pic, FILE *f);
