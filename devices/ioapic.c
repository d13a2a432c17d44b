/*
 * I/O APIC: 24 redirection entries turning interrupt lines into messages
 * on the APIC bus.
 *
 * State:    stable.
 * Features: IOREGSEL/IOWIN, ID (4 bits), version 0x20 (max redirection
 *           entry 23), arbitration ID, 64-bit redirection entries written
 *           as two 32-bit halves; edge and level trigger, Remote IRR (set
 *           when a LAPIC accepted a level interrupt, cleared by an EOI for
 *           its vector: the LAPIC broadcast on vm->bus.eoi or the EOI
 *           register at +0x40, and by switching the entry to edge); level
 *           retrigger after EOI while the line stays asserted; polarity
 *           (active low inverts the input); mask (a level interrupt held
 *           back by the mask is delivered on unmask); fixed, lowest
 *           priority, SMI, NMI, INIT and ExtINT delivery; physical and
 *           logical destinations (bits 56-63).  The PC's ISA override sends
 *           IRQ 0 to pin 2.
 * Missing:  delivery status stays 0 (delivery is synchronous, nothing is
 *           ever "send pending"); an edge that meets a mask is lost, as
 *           the datasheet says (counted); reprogramming an edge entry
 *           never makes an edge by itself; no connection from the 8259's
 *           INTR to pin 0 (virtual wire mode B is not wired: the PIC talks
 *           to LINT0 instead); ISA IRQ 2 reaches no pin, as on boards
 *           where pin 2 carries the timer; one level per line (sharers of
 *           a line must agree); extended destination IDs.
 * Spec:     Intel 82093AA I/O APIC datasheet (1996); the EOI register and
 *           version 0x20 as in the Intel ICH I/O APIC.
 *
 * Snapshot: section "ioapic" (see "Snapshots" below): the input levels and
 * the entries with Remote IRR; nothing is sent on load.
 *
 * Serialized: the MMIO window, the IRQ and EOI receivers are unclaimed, so
 * plain state is enough.  Deliveries are synchronous sends on the APIC bus:
 * the LAPICs claim them and run on this thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "bus/message.h"
#include "devices/ioapic.h"
#include "devices/restore.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/vm.h"

/* Bits a guest can write; delivery status and Remote IRR are read-only. */
#define RTE_WRITABLE (IOAPIC_RTE_VECTOR | IOAPIC_RTE_DELMODE | IOAPIC_RTE_LOGICAL | \
		      IOAPIC_RTE_ACTIVE_LOW | IOAPIC_RTE_LEVEL | IOAPIC_RTE_MASKED |  \
		      (0xffull << IOAPIC_RTE_DEST_SHIFT))

struct ioapic {
	struct vm *vm;
	uint64_t base;
	uint8_t id;                   /* 4 bits */
	uint8_t regsel;
	uint32_t level;               /* input per pin as the device drives it */
	uint64_t rte[IOAPIC_PINS];
	struct ioapic_stats stats;
};


int ioapic_line_to_pin(unsigned line)
{
	if (line == 0)
		return 2;      /* the ISA override every PC MADT declares */
	if (line == 2 || line >= IOAPIC_PINS)
		return -1;     /* the cascade; pin 2 belongs to IRQ 0 */
	return (int)line;
}

static unsigned rte_mode(uint64_t rte)
{
	return (unsigned)(rte & IOAPIC_RTE_DELMODE) >> 8;
}

bool ioapic_pin_asserted(const struct ioapic *io, unsigned pin)
{
	bool in = io->level >> pin & 1;

	return in != !!(io->rte[pin] & IOAPIC_RTE_ACTIVE_LOW);
}

/*
 * Send the entry of @pin to the LAPICs.  Only fixed and lowest priority
 * interrupts can be level triggered (NMI, SMI, INIT and ExtINT are edge
 * by definition), so only those set Remote IRR.  Remote IRR is set before
 * the send so that an EOI that comes back inside it finds it set; it is
 * dropped again when nobody took the interrupt, or the pin would wait for
 * an EOI that never comes.
 */
static void deliver(struct ioapic *io, unsigned pin)
{
	uint64_t rte = io->rte[pin];
	unsigned mode = rte_mode(rte);
	bool level = (rte & IOAPIC_RTE_LEVEL) && (mode == APIC_DM_FIXED || mode == APIC_DM_LOWEST);
	struct msg_apic msg = {
		.vector = (uint8_t)(rte & IOAPIC_RTE_VECTOR),
		.delivery = (uint8_t)mode,
		.shorthand = APIC_SH_NONE,
		.logical = !!(rte & IOAPIC_RTE_LOGICAL),
		.level = level,
		.dest = (uint32_t)(rte >> IOAPIC_RTE_DEST_SHIFT),
		.source = UINT32_MAX,   /* not a CPU */
	};

	if (mode == 3 || mode == APIC_DM_SIPI) {
		io->stats.bad_mode++;
		return;
	}
	if (level)
		io->rte[pin] |= IOAPIC_RTE_REMOTE_IRR;
	bus_send(io->vm->bus.apic, &msg, BUS_FIFO);
	if (msg.accepted) {
		io->stats.delivered++;
		return;
	}
	io->stats.undelivered++;
	if (level)
		io->rte[pin] &= ~IOAPIC_RTE_REMOTE_IRR;
}

/* A level pin fires whenever it is asserted and nothing holds it back. */
static void service_level(struct ioapic *io, unsigned pin)
{
	uint64_t rte = io->rte[pin];

	if (ioapic_pin_asserted(io, pin) &&
	    !(rte & (IOAPIC_RTE_MASKED | IOAPIC_RTE_REMOTE_IRR)))
		deliver(io, pin);
}

static void input_changed(struct ioapic *io, unsigned pin, bool was)
{
	bool now = ioapic_pin_asserted(io, pin);
	uint64_t rte = io->rte[pin];

	if (!now || (was && !(rte & IOAPIC_RTE_LEVEL)))
		return;
	if (rte & IOAPIC_RTE_MASKED) {
		if (!was)
			io->stats.masked++;
		return;
	}
	if (rte & IOAPIC_RTE_LEVEL)
		service_level(io, pin);
	else
		deliver(io, pin);
}

static void set_input(struct ioapic *io, unsigned pin, bool high)
{
	bool was = ioapic_pin_asserted(io, pin);

	if (high)
		io->level |= 1u << pin;
	else
		io->level &= ~(1u << pin);
	input_changed(io, pin, was);
}

void ioapic_set_line(struct ioapic *io, unsigned line, int action)
{
	int pin = ioapic_line_to_pin(line);

	if (pin < 0)
		return;
	switch (action) {
	case IRQ_ASSERT:
		set_input(io, (unsigned)pin, true);
		break;
	case IRQ_DEASSERT:
		set_input(io, (unsigned)pin, false);
		break;
	case IRQ_EDGE:
		set_input(io, (unsigned)pin, true);
		set_input(io, (unsigned)pin, false);
		break;
	}
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t rte = io->rte[pin];

		if ((rte & IOAPIC_RTE_VECTOR) != vector || !(rte & IOAPIC_RTE_REMOTE_IRR))
			continue;
		io->rte[pin] = rte & ~IOAPIC_RTE_REMOTE_IRR;
		service_level(io, pin);   /* still asserted: the next interrupt */
	}
}

static void rte_write(struct ioapic *io, unsigned pin, bool high_half, uint32_t value)
{
	uint64_t old = io->rte[pin];
	uint64_t rte = high_half ? (old & 0xffffffffull) | (uint64_t)value << 32
				 : (old & ~0xffffffffull) | value;

	rte = (rte & RTE_WRITABLE) | (old & (IOAPIC_RTE_PENDING | IOAPIC_RTE_REMOTE_IRR));
	/* An edge entry has no Remote IRR: older Linux clears it this way. */
	if (!(rte & IOAPIC_RTE_LEVEL))
		rte &= ~IOAPIC_RTE_REMOTE_IRR;
	io->rte[pin] = rte;
	if (rte & IOAPIC_RTE_LEVEL)
		service_level(io, pin);   /* e.g. unmasked while asserted */
}

static uint32_t reg_read(const struct ioapic *io, uint8_t reg)
{
	switch (reg) {
	case IOAPIC_REG_ID:
	case IOAPIC_REG_ARB:
		return (uint32_t)io->id << 24;
	case IOAPIC_REG_VER:
		return (IOAPIC_PINS - 1) << 16 | IOAPIC_VERSION;
	}
	if (reg >= IOAPIC_REG_REDTBL && reg < IOAPIC_REG_REDTBL + 2 * IOAPIC_PINS) {
		unsigned idx = reg - IOAPIC_REG_REDTBL;

		return (uint32_t)(io->rte[idx / 2] >> (idx % 2 * 32));
	}
	return 0;
}

static void reg_write(struct ioapic *io, uint8_t reg, uint32_t value)
{
	if (reg == IOAPIC_REG_ID) {
		io->id = value >> 24 & 0xf;
	} else if (reg >= IOAPIC_REG_REDTBL && reg < IOAPIC_REG_REDTBL + 2 * IOAPIC_PINS) {
		unsigned idx = reg - IOAPIC_REG_REDTBL;

		rte_write(io, idx / 2, idx % 2, value);
	}
}

uint32_t ioapic_mmio_read(struct ioapic *io, unsigned offset)
{
	switch (offset) {
	case IOAPIC_REGSEL:
		return io->regsel;
	case IOAPIC_WINDOW:
		return reg_read(io, io->regsel);
	}
	return 0;   /* the EOI register is write-only; the rest is unused */
}

void ioapic_mmio_write(struct ioapic *io, unsigned offset, uint32_t value)
{
	switch (offset) {
	case IOAPIC_REGSEL:
		io->regsel = (uint8_t)value;
		break;
	case IOAPIC_WINDOW:
		reg_write(io, io->regsel, value);
		break;
	case IOAPIC_EOI:
		ioapic_eoi(io, (uint8_t)value);
		break;
	}
}

/*
 * Registers are 32 bits wide.  A narrower read returns its bytes of the
 * register; a write counts only when it starts a register (Linux writes
 * IOREGSEL with a byte or a dword, both work).
 */
static bool ioapic_mmio(void *dev, uint64_t addr, void *m)
{
	struct ioapic *io = dev;
	struct msg_mmio *msg = m;
	unsigned offset = (unsigned)(addr - io->base);
	unsigned shift = (offset & 3) * 8;

	if (msg->write) {
		if (!shift)
			ioapic_mmio_write(io, offset, (uint32_t)msg->value);
		return true;
	}
	msg->value = ioapic_mmio_read(io, offset & ~3u) >> shift;
	if (msg->size < 4)
		msg->value &= (1ull << (msg->size * 8)) - 1;
	return true;
}

static bool ioapic_irq(void *dev, void *m)
{
	const struct msg_irq *msg = m;

	if (ioapic_line_to_pin(msg->line) < 0)
		return false;
	ioapic_set_line(dev, msg->line, msg->action);
	return true;
}

static bool ioapic_eoi_msg(void *dev, void *m)
{
	struct ioapic *io = dev;
	const struct msg_eoi *msg = m;
	bool mine = false;

	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		mine |= (io->rte[pin] & IOAPIC_RTE_VECTOR) == msg->vector &&
			(io->rte[pin] & IOAPIC_RTE_REMOTE_IRR);
	ioapic_eoi(io, msg->vector);
	return mine;
}

/*
 * ---- Snapshots: section "ioapic" instance 0 (one per VM): ID, IOREGSEL,
 * the input levels and the 24 entries with their Remote IRR.  Nothing is
 * sent on load: an asserted level pin is either waiting for its EOI
 * (Remote IRR, saved here; the LAPIC saves its IRR/ISR/TMR), masked (it
 * fires on unmask, from the saved level), or was refused by every LAPIC,
 * exactly as before the checkpoint.  The devices driving the lines do not
 * re-send them either: the levels they drove are saved here and in the
 * PIC.  Runs with the VM paused, like every restore receiver.
 */

#define IOAPIC_STATE_VERSION 1

static void ioapic_save(struct ioapic *io, struct stream *s)
{
	stream_section_begin(s, "ioapic", 0, IOAPIC_STATE_VERSION);
	stream_put_u8(s, io->id);
	stream_put_u8(s, io->regsel);
	stream_put_u32(s, io->level);
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		stream_put_u64(s, io->rte[pin]);
	stream_section_end(s);
}

static int ioapic_load(struct ioapic *io, struct stream *s)
{
	uint64_t rte[IOAPIC_PINS];
	uint8_t id, regsel;
	uint32_t level;

	if (stream_section_open(s, "ioapic", 0, IOAPIC_STATE_VERSION, NULL))
		return stream_error(s);
	id = stream_get_u8(s);
	regsel = stream_get_u8(s);
	level = stream_get_u32(s);
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		rte[pin] = stream_get_u64(s);
	if (stream_section_close(s))
		return stream_error(s);
	if (id > 0xf || level >> IOAPIC_PINS)
		return stream_fail(s, -EINVAL, "ioapic: bad ID %u or input levels %#x", id, level);
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		if (rte[pin] & ~(RTE_WRITABLE | IOAPIC_RTE_REMOTE_IRR) ||
		    (rte[pin] & (IOAPIC_RTE_REMOTE_IRR | IOAPIC_RTE_LEVEL)) == IOAPIC_RTE_REMOTE_IRR)
			return stream_fail(s, -EINVAL, "ioapic: bad redirection entry %u: %#llx",
					   pin, (unsigned long long)rte[pin]);
	io->id = id;
	io->regsel = regsel;
	io->level = level;
	memcpy(io->rte, rte, sizeof(rte));
	return 0;
}

RESTORE_RECEIVER(ioapic_restore_receive, struct ioapic, ioapic_save, ioapic_load)

uint64_t ioapic_entry(const struct ioapic *io, unsigned pin)
{
	return pin < IOAPIC_PINS ? io->rte[pin] : 0;
}

struct ioapic_stats ioapic_stats(const struct ioapic *io)
{
	return io->stats;
}

struct ioapic *ioapic_find(struct vm *vm)
{
	return vm_device_find(vm, "ioapic");
}

struct ioapic *ioapic_create(struct vm *vm, uint64_t base)
{
	struct ioapic *io = calloc(1, sizeof(*io));

	if (!io)
		return NULL;
	io->vm = vm;
	io->base = base;
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		io->rte[pin] = IOAPIC_RTE_MASKED;
	if (vm_device_claim(vm, "ioapic", io)) {
		free(io);
		return NULL;
	}
	if (range_bus_add(vm->bus.mmio, base, IOAPIC_SIZE, ioapic_mmio, false, io))
		goto fail_registry;
	if (bus_attach(vm->bus.irq, ioapic_irq, NULL, io))
		goto fail_mmio;
	if (bus_attach(vm->bus.eoi, ioapic_eoi_msg, NULL, io))
		goto fail_irq;
	if (bus_attach(vm->bus.restore, ioapic_restore_receive, NULL, io))
		goto fail_eoi;
	return io;
fail_eoi:
	bus_detach(vm->bus.eoi, ioapic_eoi_msg, io);
fail_irq:
	bus_detach(vm->bus.irq, ioapic_irq, io);
fail_mmio:
	range_bus_remove(vm->bus.mmio, base);
fail_registry:
	vm_device_release(io->vm, "ioapic", io);
	free(io);
	return NULL;
}

void ioapic_destroy(struct ioapic *io)
{
	if (!io)
		return;
	/* Each detach waits out RCU readers: no callback is left running. */
	bus_detach(io->vm->bus.restore, ioapic_restore_receive, io);
	bus_detach(io->vm->bus.eoi, ioapic_eoi_msg, io);
	bus_detach(io->vm->bus.irq, ioapic_irq, io);
	range_bus_remove(io->vm->bus.mmio, io->base);
	vm_device_release(io->vm, "ioapic", io);
	free(io);
}

static const char *const mode_names[8] = {
	"fixed", "lowest", "smi", "rsvd3", "nmi", "init", "rsvd6", "extint",
};

void ioapic_dump(const struct ioapic *io, FILE *f)
{
	fprintf(f, "ioapic @%#llx: id %u, version %#x, regsel %#x, inputs %06x\n",
		(unsigned long long)io->base, io->id, IOAPIC_VERSION, io->regsel, io->level);
	fprintf(f, "  delivered %llu, undelivered %llu, masked %llu, bad mode %llu\n",
		(unsigned long long)io->stats.delivered,
		(unsigned long long)io->stats.undelivered,
		(unsigned long long)io->stats.masked,
		(unsigned long long)io->stats.bad_mode);
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t rte = io->rte[pin];

		fprintf(f, "  pin %2u: %016llx vec 0x%02x %-6s %s dest 0x%02x %s %s%s%s%s\n", pin,
			(unsigned long long)rte, (unsigned)(rte & IOAPIC_RTE_VECTOR),
			mode_names[rte_mode(rte)], rte & IOAPIC_RTE_LOGICAL ? "log " : "phys",
			(unsigned)(rte >> IOAPIC_RTE_DEST_SHIFT),
			rte & IOAPIC_RTE_LEVEL ? "level" : "edge ",
			rte & IOAPIC_RTE_ACTIVE_LOW ? "low " : "high",
			rte & IOAPIC_RTE_MASKED ? " masked" : "",
			rte & IOAPIC_RTE_REMOTE_IRR ? " remote-irr" : "",
			ioapic_pin_asserted(io, pin) ? " asserted" : "");
	}
}

static void ioapic_destroy_hook(void *ctx)
{
	ioapic_destroy(ctx);
}

static int ioapic_model_create(struct vm *vm, const char *args)
{
	uint64_t base = IOAPIC_BASE;
	struct ioapic *io;
	char *end;

	if (*args) {
		base = strtoull(args, &end, 0);
		if (end == args || *end || base & 0xfff) {
			pr_err("ioapic: bad base address '%s' (want a 4 KiB aligned address)", args);
			return -EINVAL;
		}
	}
	io = ioapic_create(vm, base);
	if (!io) {
		pr_err("ioapic: cannot create at %#llx (window taken or one already there)",
		       (unsigned long long)base);
		return -EEXIST;
	}
	vm_at_exit(vm, ioapic_destroy_hook, io);
	return 0;
}

DEVICE_MODEL(ioapic_model,
	.name = "ioapic",
	.help = "ioapic[:base]  I/O APIC, 24 pins (default 0xfec00000); ISA IRQ 0 -> pin 2",
	.create = ioapic_model_create);
