/*
 * The 8254 programmable interval timer (ports 0x40-0x43) and the PC's port
 * 0x61 (channel 2 gate, speaker enable, OUT2, refresh toggle).  "pit"
 * creates one through the device registry; the VMM and the tests use the
 * calls below when they need the handle.
 *
 * Two layers:
 *  - the chip (struct pit_chip): pure functions over the three channels
 *    and a time "now" in VM nanoseconds.  Counters are computed from the
 *    time elapsed since they were loaded; nothing ticks.  Tests drive it
 *    with made-up times.
 *  - the device (struct pit): the chip on the VM's port bus, its clock
 *    from vm_clock_ns(), and channel 0's OUT raising IRQ 0 through a timer.
 *    It runs serialized (I/O thread or global lock); so must every call.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct vm;
struct pit;

#define PIT_HZ    1193182u          /* input clock of every channel */
#define PIT_NEVER UINT64_MAX        /* no such tick / time */

enum { PIT_PORT_CH0 = 0x40, PIT_PORT_CH1 = 0x41, PIT_PORT_CH2 = 0x42,
       PIT_PORT_CTRL = 0x43, PIT_PORT_61 = 0x61 };

/* Port 0x61 bits. */
enum { PORT61_GATE2 = 0x01, PORT61_SPEAKER = 0x02, PORT61_REFRESH = 0x10,
       PORT61_OUT2 = 0x20 };

/*
 * The input clock: tick k happens at k / PIT_HZ seconds of VM time.
 * pit_ns_to_tick is the last tick at or before @ns; pit_tick_to_ns the
 * first nanosecond at which @tick has happened.
 */
uint64_t pit_ns_to_tick(uint64_t ns);
uint64_t pit_tick_to_ns(uint64_t tick);

enum pit_run {
	PIT_IDLE,      /* no count since the control word */
	PIT_ARMED,     /* modes 1 and 5: count written, waiting for a trigger */
	PIT_RUNNING,   /* counting from @base */
	PIT_HELD,      /* modes 0, 2, 3, 4: gate low, counting suspended */
};

struct pit_channel {
	/* Programming, from the control word. */
	uint8_t mode_bits;       /* M2-M0 as written: 6 and 7 act as 2 and 3 */
	uint8_t access;          /* 1 LSB, 2 MSB, 3 LSB then MSB */
	bool bcd;
	uint16_t cr;             /* count register, as written */
	uint8_t cr_lsb;          /* LSB waiting for its MSB */
	bool write_msb_next, read_msb_next;
	/* Output latch and status latch. */
	uint16_t latch;
	uint8_t latched_bytes;   /* count bytes left to read from @latch */
	bool status_latched;
	uint8_t status;
	/* The counting element, as a function of the tick. */
	bool gate;
	uint8_t run;             /* enum pit_run */
	bool done;               /* one-shot modes: the terminal edge is past */
	uint64_t base;           /* the tick at which the CE held @ce */
	uint32_t ce;             /* 1..modulus when loaded; the frozen value otherwise */
	uint32_t period;         /* modes 2, 3: the count in use */
	uint64_t reload_at;      /* modes 2, 3: tick at which @reload replaces @period */
	uint32_t reload;
	uint64_t null_until;     /* null count reads 1 before this tick */
};

struct pit_chip {
	struct pit_channel ch[3];
	uint8_t port61;          /* bits 0-3 as written */
	bool refresh;            /* bit 4: flips on every read */
};

/* Power-on: channels idle in mode 0, gates 0 and 1 high, gate 2 low. */
void pit_chip_reset(struct pit_chip *c);
/* A byte access to 0x40-0x43 or 0x61 at VM time @now_ns. */
void pit_chip_write(struct pit_chip *c, uint64_t now_ns, uint16_t port, uint8_t value);
uint8_t pit_chip_read(struct pit_chip *c, uint64_t now_ns, uint16_t port);
/* OUT of channel @ch, and the current count (binary, 0..modulus-1). */
bool pit_chip_out(const struct pit_chip *c, unsigned ch, uint64_t now_ns);
uint32_t pit_chip_count(const struct pit_chip *c, unsigned ch, uint64_t now_ns);
/* The first tick after @tick at which OUT of @ch rises, or PIT_NEVER. */
uint64_t pit_chip_next_edge(const struct pit_chip *c, unsigned ch, uint64_t tick);
void pit_chip_dump(const struct pit_chip *c, uint64_t now_ns, FILE *f);

/*
 * IRQ 0 bookkeeping: which rising edges of channel 0 were accounted for.
 * pit_irq_due says whether OUT rose since the last call (by counting or by
 * reprogramming) and moves the mark to @now_ns: however many edges went
 * by, it asks for one interrupt (the rest count as coalesced), so a host
 * that fell behind does not flood the guest.
 */
struct pit_irq_track {
	uint64_t checked;        /* tick up to which edges are accounted for */
	bool out;                /* OUT at @checked */
	uint64_t fired, coalesced;
};
void pit_irq_track_init(struct pit_irq_track *t, const struct pit_chip *c, uint64_t now_ns);
bool pit_irq_due(const struct pit_chip *c, struct pit_irq_track *t, uint64_t now_ns);
/* When to look again: the next rising edge after the mark, or PIT_NEVER. */
uint64_t pit_irq_next_ns(const struct pit_chip *c, const struct pit_irq_track *t);

/*
 * The device.  NULL on failure (ports taken, no memory, a PIT already on
 * @vm).  Needs the VM's timer service (vm_init_buses starts it).
 */
struct pit *pit_create(struct vm *vm);
/* Detach from the buses, stop the timer and free; no call runs afterwards. */
void pit_destroy(struct pit *pit);
/* The PIT created on @vm (by pit_create or "pit"), or NULL. */
struct pit *pit_find(struct vm *vm);
/*
 * Channel 0 in mode 3 with count 0 (65536: 18.2 Hz), as a PC BIOS leaves
 * it.  The same port writes a guest would do, sent through the port bus,
 * so it may be called from any registered thread.
 */
void pit_bios_init(struct pit *pit);

/* Byte accesses to 0x40-0x43 and 0x61 now (as the guest; serialized). */
void pit_port_write(struct pit *pit, uint16_t port, uint8_t value);
uint8_t pit_port_read(struct pit *pit, uint16_t port);
const struct pit_chip *pit_chip(const struct pit *pit);
const struct pit_irq_track *pit_irq_stats(const struct pit *pit);

void pit_dump(const struct pit *pit, FILE *f);
