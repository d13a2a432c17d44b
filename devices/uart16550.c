/*
 * 16550A UART, as the PC wires it (COM1 at 0x3f8, IRQ 4).
 *
 * State:    stable.
 * Features: all eleven registers (RBR/THR, IER, IIR/FCR, LCR, MCR, LSR,
 *           MSR, SCR, DLL/DLM behind DLAB); 16-byte RX FIFO with trigger
 *           levels and resets; interrupts in datasheet priority (line
 *           status, received data / character timeout, THR empty, modem
 *           status); loopback (THR into RX, MCR outputs into MSR inputs);
 *           OUT2 gating the IRQ line as the PC's board logic does; host
 *           console input held back while the FIFO is full (flow control
 *           on the host side, like a chardev that can only take what the
 *           FIFO has room for), so pasted text is not lost.
 * Missing:  bit timing (transmission is instant, so THRE/TEMT are always
 *           set and the character timeout fires as soon as fewer bytes
 *           than the trigger level wait), parity/framing errors, break,
 *           DMA mode signalling, real modem lines (CTS, DSR, DCD read as
 *           asserted, RI as not).
 * Spec:     National Semiconductor PC16550D datasheet (June 1995).
 *
 * Snapshot: section "uart", instance = base port: the registers, the RX
 * FIFO and the host input still waiting for it, and the level the IRQ
 * line was last set to.  No timers (transmission is instant).  The line
 * is not re-sent on load: the PIC and IOAPIC save the level they saw.
 *
 * Every access runs serialized (the I/O thread or the global lock): the
 * port range is not claimed, and neither is the console receiver.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "bus/message.h"
#include "devices/uart16550.h"
#include "unix/console.h"
#include "devices/restore.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/vm.h"

enum {
	UART_RBR = 0, UART_THR = 0, UART_DLL = 0,
	UART_IER = 1, UART_DLM = 1,
	UART_IIR = 2, UART_FCR = 2,
	UART_LCR = 3, UART_MCR = 4, UART_LSR = 5, UART_MSR = 6, UART_SCR = 7,
	UART_NPORTS = 8,
};

enum {
	IER_RDI = 0x01, IER_THRI = 0x02, IER_RLSI = 0x04, IER_MSI = 0x08,
	IER_MASK = 0x0f,
};

enum {
	IIR_NO_INT = 0x01, IIR_MSI = 0x00, IIR_THRI = 0x02, IIR_RDI = 0x04,
	IIR_RLSI = 0x06, IIR_TIMEOUT = 0x0c, IIR_FIFO_ON = 0xc0,
};

enum {
	FCR_ENABLE = 0x01, FCR_CLEAR_RX = 0x02, FCR_CLEAR_TX = 0x04,
	FCR_TRIGGER = 0xc0,
};

enum { LCR_DLAB = 0x80 };

enum {
	MCR_DTR = 0x01, MCR_RTS = 0x02, MCR_OUT1 = 0x04, MCR_OUT2 = 0x08,
	MCR_LOOP = 0x10, MCR_MASK = 0x1f,
};

enum {
	LSR_DR = 0x01, LSR_OE = 0x02, LSR_PE = 0x04, LSR_FE = 0x08,
	LSR_BI = 0x10, LSR_THRE = 0x20, LSR_TEMT = 0x40,
	LSR_ERRORS = LSR_OE | LSR_PE | LSR_FE | LSR_BI,
};

enum {
	MSR_DCTS = 0x01, MSR_DDSR = 0x02, MSR_TERI = 0x04, MSR_DDCD = 0x08,
	MSR_CTS = 0x10, MSR_DSR = 0x20, MSR_RI = 0x40, MSR_DCD = 0x80,
	MSR_DELTAS = 0x0f,
	/* What an idle null-modem cable presents. */
	MSR_IDLE_INPUTS = MSR_DCD | MSR_DSR | MSR_CTS,
};

#define UART_FIFO_SIZE 16
/* Host input waiting for room in the FIFO: a generous paste. */
#define UART_BACKLOG_SIZE 4096

struct byte_ring {
	unsigned head, count, size;
	uint8_t *buf;
};

struct uart {
	struct vm *vm;
	uint16_t base;
	uint8_t irq;
	bool irq_level;          /* what the line was last set to */
	bool console_input;      /* attached to the console bus */

	uint8_t ier, lcr, mcr, msr, scr, dll, dlm;
	uint8_t fcr;             /* FCR_ENABLE | trigger bits as written */
	uint8_t lsr_errors;      /* OE (the only error we produce) */
	uint8_t rbr;             /* last byte read, what an empty read returns */
	bool thre_pending;       /* THR-empty interrupt not yet acknowledged */

	struct byte_ring rx;     /* the receiver FIFO (1 deep in 16450 mode) */
	uint8_t rx_buf[UART_FIFO_SIZE];
	struct byte_ring backlog;
	uint8_t backlog_buf[UART_BACKLOG_SIZE];

	uart_output_fn out;
	void *out_ctx;
};

static bool ring_full(const struct byte_ring *r) { return r->count == r->size; }

static void ring_push(struct byte_ring *r, uint8_t byte)
{
	r->buf[(r->head + r->count++) % r->size] = byte;
}

static uint8_t ring_pop(struct byte_ring *r)
{
	uint8_t byte = r->buf[r->head];

	r->head = (r->head + 1) % r->size;
	r->count--;
	return byte;
}

static void ring_clear(struct byte_ring *r)
{
	r->head = r->count = 0;
}

static bool fifo_enabled(const struct uart *u)
{
	return u->fcr & FCR_ENABLE;
}

static unsigned rx_capacity(const struct uart *u)
{
	return fifo_enabled(u) ? UART_FIFO_SIZE : 1;
}

static unsigned rx_trigger(const struct uart *u)
{
	static const unsigned levels[4] = { 1, 4, 8, 14 };

	return fifo_enabled(u) ? levels[u->fcr >> 6] : 1;
}

static bool rx_full(const struct uart *u)
{
	return u->rx.count >= rx_capacity(u);
}

/* A byte arrives at the receiver: the FIFO takes it or it is overrun. */
static void rx_receive(struct uart *u, uint8_t byte)
{
	if (rx_full(u)) {
		u->lsr_errors |= LSR_OE;
		return;
	}
	ring_push(&u->rx, byte);
}

/* Move waiting host input into the FIFO; loopback disconnects the line. */
static void rx_refill(struct uart *u)
{
	if (u->mcr & MCR_LOOP)
		return;
	while (u->backlog.count && !rx_full(u))
		ring_push(&u->rx, ring_pop(&u->backlog));
}

static uint8_t lsr_value(const struct uart *u)
{
	return LSR_THRE | LSR_TEMT | u->lsr_errors | (u->rx.count ? LSR_DR : 0);
}

/* The highest-priority pending source, as IIR bits 0-3 report it. */
static uint8_t iir_source(const struct uart *u)
{
	if ((u->ier & IER_RLSI) && (u->lsr_errors & LSR_ERRORS))
		return IIR_RLSI;
	if ((u->ier & IER_RDI) && u->rx.count)
		return u->rx.count >= rx_trigger(u) ? IIR_RDI : IIR_TIMEOUT;
	if ((u->ier & IER_THRI) && u->thre_pending)
		return IIR_THRI;
	if ((u->ier & IER_MSI) && (u->msr & MSR_DELTAS))
		return IIR_MSI;
	return IIR_NO_INT;
}

/*
 * The PC board drives the ISA IRQ only while OUT2 is set; loopback forces
 * the OUT2 pin inactive, so the line stays low there too.
 */
static void irq_update(struct uart *u)
{
	bool gate = (u->mcr & (MCR_OUT2 | MCR_LOOP)) == MCR_OUT2;
	bool level = gate && iir_source(u) != IIR_NO_INT;
	struct msg_irq msg = { .line = u->irq };

	if (level == u->irq_level)
		return;
	u->irq_level = level;
	msg.action = level ? IRQ_ASSERT : IRQ_DEASSERT;
	bus_send(u->vm->bus.irq, &msg, BUS_FIFO);
}

/* Modem inputs: the MCR outputs in loopback, an idle cable otherwise. */
static uint8_t msr_inputs(const struct uart *u)
{
	uint8_t m = u->mcr;

	if (!(m & MCR_LOOP))
		return MSR_IDLE_INPUTS;
	return (m & MCR_RTS ? MSR_CTS : 0) | (m & MCR_DTR ? MSR_DSR : 0) |
	       (m & MCR_OUT1 ? MSR_RI : 0) | (m & MCR_OUT2 ? MSR_DCD : 0);
}

/* Latch delta bits for inputs that changed; RI counts its trailing edge. */
static void msr_update(struct uart *u)
{
	uint8_t old = u->msr & ~MSR_DELTAS, now = msr_inputs(u);
	uint8_t changed = old ^ now, deltas = 0;

	if (changed & MSR_CTS)
		deltas |= MSR_DCTS;
	if (changed & MSR_DSR)
		deltas |= MSR_DDSR;
	if ((old & MSR_RI) && !(now & MSR_RI))
		deltas |= MSR_TERI;
	if (changed & MSR_DCD)
		deltas |= MSR_DDCD;
	u->msr = now | (u->msr & MSR_DELTAS) | deltas;
}

/*
 * Transmission is instant: the THR empties at once, so the THRE interrupt
 * drops and comes back, which gives an edge-triggered PIC a fresh edge.
 */
static void thr_write(struct uart *u, uint8_t byte)
{
	u->thre_pending = false;
	irq_update(u);
	if (u->mcr & MCR_LOOP)
		rx_receive(u, byte);
	else if (u->out)
		u->out(u->out_ctx, &byte, 1);
	u->thre_pending = true;
}

static void ier_write(struct uart *u, uint8_t val)
{
	uint8_t old = u->ier;

	u->ier = val & IER_MASK;
	/* Enabling ETBEI with the THR empty raises THRE at once. */
	if (!(old & IER_THRI) && (u->ier & IER_THRI))
		u->thre_pending = true;
	else if (!(u->ier & IER_THRI))
		u->thre_pending = false;
}

/* FCR bits other than 0 only take effect while FIFOs stay enabled. */
static void fcr_write(struct uart *u, uint8_t val)
{
	bool enable = val & FCR_ENABLE;

	/* Switching the FIFOs on or off empties them, as does RX reset. */
	if (enable != fifo_enabled(u) || (enable && (val & FCR_CLEAR_RX)))
		ring_clear(&u->rx);
	/* FCR_CLEAR_TX: the transmitter never holds a byte. */
	u->fcr = enable ? (val & (FCR_ENABLE | FCR_TRIGGER)) : 0;
}

static void mcr_write(struct uart *u, uint8_t val)
{
	u->mcr = val & MCR_MASK;
	msr_update(u);
}

static void reg_write(struct uart *u, unsigned reg, uint8_t val)
{
	bool dlab = u->lcr & LCR_DLAB;

	switch (reg) {
	case UART_THR:
		if (dlab)
			u->dll = val;
		else
			thr_write(u, val);
		break;
	case UART_IER:
		if (dlab)
			u->dlm = val;
		else
			ier_write(u, val);
		break;
	case UART_FCR: fcr_write(u, val); break;
	case UART_LCR: u->lcr = val; break;
	case UART_MCR: mcr_write(u, val); break;
	case UART_LSR: break;   /* factory test only */
	case UART_MSR: break;
	case UART_SCR: u->scr = val; break;
	}
}

static uint8_t rbr_read(struct uart *u)
{
	if (u->rx.count)
		u->rbr = ring_pop(&u->rx);
	return u->rbr;
}

static uint8_t iir_read(struct uart *u)
{
	uint8_t src = iir_source(u);

	/* Reading IIR acknowledges THRE, but only when THRE is what it shows. */
	if (src == IIR_THRI)
		u->thre_pending = false;
	return src | (fifo_enabled(u) ? IIR_FIFO_ON : 0);
}

static uint8_t lsr_read(struct uart *u)
{
	uint8_t val = lsr_value(u);

	u->lsr_errors = 0;
	return val;
}

static uint8_t msr_read(struct uart *u)
{
	uint8_t val = u->msr;

	u->msr &= ~MSR_DELTAS;
	return val;
}

static uint8_t reg_read(struct uart *u, unsigned reg)
{
	bool dlab = u->lcr & LCR_DLAB;

	switch (reg) {
	case UART_RBR: return dlab ? u->dll : rbr_read(u);
	case UART_IER: return dlab ? u->dlm : u->ier;
	case UART_IIR: return iir_read(u);
	case UART_LCR: return u->lcr;
	case UART_MCR: return u->mcr;
	case UART_LSR: return lsr_read(u);
	case UART_MSR: return msr_read(u);
	default:       return u->scr;
	}
}

/* Wider accesses touch consecutive registers, as the ISA bus splits them. */
static bool uart_pio(void *dev, uint64_t addr, void *m)
{
	struct uart *u = dev;
	struct msg_pio *msg = m;
	uint32_t value = 0;

	for (unsigned i = 0; i < msg->size; i++) {
		uint64_t reg = addr + i - u->base;
		uint8_t byte = 0xff;

		if (reg < UART_NPORTS && msg->write)
			reg_write(u, reg, msg->value >> (8 * i));
		else if (reg < UART_NPORTS)
			byte = reg_read(u, reg);
		value |= (uint32_t)byte << (8 * i);
	}
	if (!msg->write)
		msg->value = value;
	rx_refill(u);
	irq_update(u);
	return true;
}

/* Host keyboard input; when even the backlog is full the byte is lost. */
static bool uart_console(void *dev, void *m)
{
	struct uart *u = dev;
	const struct msg_console *msg = m;
	unsigned len = msg->len < sizeof(msg->bytes) ? msg->len : sizeof(msg->bytes);

	for (unsigned i = 0; i < len; i++) {
		if (ring_full(&u->backlog))
			u->lsr_errors |= LSR_OE;
		else
			ring_push(&u->backlog, msg->bytes[i]);
	}
	rx_refill(u);
	irq_update(u);
	return true;
}

static void uart_to_console(void *ctx, const uint8_t *buf, size_t len)
{
	(void)ctx;
	console_write(buf, len);
}

/* ---- Snapshots ---- */

#define UART_STATE_VERSION 1

/* Oldest byte first: the ring's head is not part of the state. */
static void ring_save(const struct byte_ring *r, struct stream *s)
{
	stream_put_u32(s, r->count);
	for (unsigned i = 0; i < r->count; i++)
		stream_put_u8(s, r->buf[(r->head + i) % r->size]);
}

static void ring_load(struct byte_ring *r, struct stream *s, unsigned max, const char *what)
{
	uint32_t n = stream_get_u32(s);

	if (n > max) {
		stream_fail(s, -EINVAL, "uart: %u bytes in the %s, which holds %u", n, what, max);
		return;
	}
	ring_clear(r);
	stream_get(s, r->buf, n);
	r->count = n;
}

static void uart_save(struct uart *u, struct stream *s)
{
	uint8_t b[] = { u->irq_level, u->ier, u->lcr, u->mcr, u->msr, u->scr, u->dll, u->dlm,
			u->fcr, u->lsr_errors, u->rbr, u->thre_pending };

	stream_section_begin(s, "uart", u->base, UART_STATE_VERSION);
	stream_put(s, b, sizeof(b));
	ring_save(&u->rx, s);
	ring_save(&u->backlog, s);
	stream_section_end(s);
}

/* Checked on a copy: a refused stream leaves the UART as it was. */
static int uart_load(struct uart *u, struct stream *s)
{
	struct uart *n = malloc(sizeof(*n));
	uint8_t b[12];

	if (!n)
		return stream_fail(s, -ENOMEM, "uart: out of memory");
	*n = *u;
	n->rx.buf = n->rx_buf;
	n->backlog.buf = n->backlog_buf;
	if (!stream_section_open(s, "uart", u->base, UART_STATE_VERSION, NULL)) {
		stream_get(s, b, sizeof(b));
		n->irq_level = b[0], n->ier = b[1], n->lcr = b[2], n->mcr = b[3], n->msr = b[4];
		n->scr = b[5], n->dll = b[6], n->dlm = b[7], n->fcr = b[8], n->lsr_errors = b[9];
		n->rbr = b[10], n->thre_pending = b[11];
		if ((b[0] | b[11]) > 1 || b[1] & ~IER_MASK || b[3] & ~MCR_MASK ||
		    b[8] & ~(FCR_ENABLE | FCR_TRIGGER) || (b[8] && !(b[8] & FCR_ENABLE)) ||
		    b[9] & ~LSR_ERRORS)
			stream_fail(s, -EINVAL, "uart %#x: bad register (IER %#x, MCR %#x, FCR %#x, "
				    "LSR errors %#x)", u->base, b[1], b[3], b[8], b[9]);
		ring_load(&n->rx, s, rx_capacity(n), "receive FIFO");
		ring_load(&n->backlog, s, UART_BACKLOG_SIZE, "input backlog");
		stream_section_close(s);
	}
	if (!stream_error(s)) {
		memcpy(u, n, sizeof(*u));
		u->rx.buf = u->rx_buf;
		u->backlog.buf = u->backlog_buf;
	}
	free(n);
	return stream_error(s);
}

RESTORE_RECEIVER(uart_restore_receive, struct uart, uart_save, uart_load)

static void uart_reset(struct uart *u)
{
	u->dll = 0x0c;     /* 9600 baud, what a PC BIOS leaves */
	u->rx = (struct byte_ring){ .size = UART_FIFO_SIZE, .buf = u->rx_buf };
	u->backlog = (struct byte_ring){ .size = UART_BACKLOG_SIZE, .buf = u->backlog_buf };
	u->thre_pending = false;
	msr_update(u);
	u->msr &= ~MSR_DELTAS;
}

struct uart *uart_create(struct vm *vm, uint16_t port, uint8_t irq)
{
	struct uart *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	*u = (struct uart){ .vm = vm, .base = port, .irq = irq, .out = uart_to_console };
	uart_reset(u);
	if (range_bus_add(vm->bus.pio, port, UART_NPORTS, uart_pio, false, u)) {
		free(u);
		return NULL;
	}
	/* The first UART is the console; later ones only transmit to it. */
	if (!bus_receiver_count(vm->bus.console)) {
		if (bus_attach(vm->bus.console, uart_console, NULL, u)) {
			range_bus_remove(vm->bus.pio, port);
			free(u);
			return NULL;
		}
		u->console_input = true;
	}
	if (bus_attach(vm->bus.restore, uart_restore_receive, NULL, u)) {
		if (u->console_input)
			bus_detach(vm->bus.console, uart_console, u);
		range_bus_remove(vm->bus.pio, port);
		free(u);
		return NULL;
	}
	return u;
}

void uart_destroy(struct uart *u)
{
	if (!u)
		return;
	/* The detaches wait out RCU readers, so no callback is left running. */
	bus_detach(u->vm->bus.restore, uart_restore_receive, u);
	range_bus_remove(u->vm->bus.pio, u->base);
	if (u->console_input)
		bus_detach(u->vm->bus.console, uart_console, u);
	free(u);
}

void uart_set_output(struct uart *u, uart_output_fn out, void *ctx)
{
	u->out = out;
	u->out_ctx = ctx;
}

static void uart_destroy_hook(void *ctx)
{
	uart_destroy(ctx);
}

/* "port,irq" with either part optional: "", "0x2f8,3", ",3". */
static int uart_parse(const char *args, unsigned long *port, unsigned long *irq)
{
	char *end;

	if (*args && *args != ',') {
		*port = strtoul(args, &end, 0);
		args = end;
	}
	if (*args == ',' && args[1]) {
		*irq = strtoul(args + 1, &end, 0);
		args = end;
	}
	if (*args || *port > 0x10000 - UART_NPORTS || *irq > 255)
		return -EINVAL;
	return 0;
}

static int uart_model_create(struct vm *vm, const char *args)
{
	unsigned long port = 0x3f8, irq = 4;
	struct uart *u;

	if (uart_parse(args, &port, &irq)) {
		pr_err("uart: bad arguments '%s' (want port,irq)", args);
		return -EINVAL;
	}
	u = uart_create(vm, port, irq);
	if (!u) {
		pr_err("uart: cannot register ports %#lx-%#lx", port, port + UART_NPORTS - 1);
		return -EEXIST;
	}
	vm_at_exit(vm, uart_destroy_hook, u);
	return 0;
}

DEVICE_MODEL(uart_model,
	.name = "uart",
	.help = "uart:port,irq  16550A serial port (default 0x3f8,4); the first one is the console",
	.create = uart_model_create);
