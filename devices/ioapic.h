/*
 * The I/O APIC (82093AA register model, version 0x20 with the EOI
 * register), 24 pins, at 0xFEC00000 by default.  It runs serialized (the
 * I/O thread or the global lock): none of its receivers is claimed, and
 * every call below must be made serialized the same way (a stress harness
 * wraps them in its own lock).  "ioapic[:base]" creates one through the
 * device registry; the VMM and the tests use the calls below when they
 * need the handle.
 *
 * Input lines as on vm->bus.irq: 0..15 are ISA IRQs, 16..23 GSIs.  The PC
 * override sends ISA IRQ 0 to pin 2; pin 0 stays unconnected and ISA IRQ 2
 * (the 8259 cascade) reaches no pin.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct vm;
struct ioapic;

#define IOAPIC_BASE     0xfec00000ull
#define IOAPIC_SIZE     0x1000
#define IOAPIC_PINS     24
#define IOAPIC_VERSION  0x20

/* MMIO offsets in the window. */
enum { IOAPIC_REGSEL = 0x00, IOAPIC_WINDOW = 0x10, IOAPIC_EOI = 0x40 };
/* Indirect registers (IOREGSEL values). */
enum { IOAPIC_REG_ID = 0x00, IOAPIC_REG_VER = 0x01, IOAPIC_REG_ARB = 0x02,
       IOAPIC_REG_REDTBL = 0x10 };

/* Redirection entry bits. */
#define IOAPIC_RTE_VECTOR     0xffull
#define IOAPIC_RTE_DELMODE    (7ull << 8)
#define IOAPIC_RTE_LOGICAL    (1ull << 11)
#define IOAPIC_RTE_PENDING    (1ull << 12)   /* delivery status, read-only */
#define IOAPIC_RTE_ACTIVE_LOW (1ull << 13)
#define IOAPIC_RTE_REMOTE_IRR (1ull << 14)   /* read-only */
#define IOAPIC_RTE_LEVEL      (1ull << 15)
#define IOAPIC_RTE_MASKED     (1ull << 16)
#define IOAPIC_RTE_DEST_SHIFT 56

struct ioapic_stats {
	uint64_t delivered;     /* messages some LAPIC accepted */
	uint64_t undelivered;   /* messages no LAPIC accepted */
	uint64_t masked;        /* edges (or level assertions) that met a mask */
	uint64_t bad_mode;      /* reserved delivery modes, not sent */
};

/*
 * Create the IOAPIC on @vm's buses (MMIO window at @base, IRQ lines, EOI
 * broadcasts), every pin masked.  NULL on failure (window taken, no
 * memory, an IOAPIC already on @vm).
 */
struct ioapic *ioapic_create(struct vm *vm, uint64_t base);
/* Detach from the buses and free; no call runs on it afterwards. */
void ioapic_destroy(struct ioapic *io);
/* The IOAPIC created on @vm (by ioapic_create or "ioapic"), or NULL. */
struct ioapic *ioapic_find(struct vm *vm);

/* The pin an input line reaches, or -1 (ISA IRQ 2, lines >= 24). */
int ioapic_line_to_pin(unsigned line);

/* An input line changes, as msg_irq on vm->bus.irq does it. */
void ioapic_set_line(struct ioapic *io, unsigned line, int action);
/* An EOI for @vector (the broadcast on vm->bus.eoi, or the EOI register). */
void ioapic_eoi(struct ioapic *io, uint8_t vector);

/* 32-bit accesses to the MMIO window, @offset from its base (as the guest). */
uint32_t ioapic_mmio_read(struct ioapic *io, unsigned offset);
void ioapic_mmio_write(struct ioapic *io, unsigned offset, uint32_t value);

/* State for checks and the harness. */
uint64_t ioapic_entry(const struct ioapic *io, unsigned pin);
bool ioapic_pin_asserted(const struct ioapic *io, unsigned pin); /* after polarity */
struct ioapic_stats ioapic_stats(const struct ioapic *io);

void ioapic_dump(const struct ioapic *io, FILE *f);
