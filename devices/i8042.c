/*
 * 8042 keyboard controller at ports 0x60 (data) and 0x64 (status and
 * command), with a minimal keyboard behind it and no mouse.
 *
 * State:    stable, minimal: enough for an OS to probe it quickly, find a
 *           keyboard that never types, and reset the machine through it.
 * Features: status register: OBF, IBF (always 0: commands complete at
 *           once), SYS (set by the BIOS's self test; follows the command
 *           byte's bit 2), A2 (last write was a command), INH (1: not
 *           inhibited), AUXB (the output byte came from the aux port).
 *           Controller commands: 0x20 read and 0x60 write the command
 *           byte; 0xA7/0xA8 disable/enable the aux port and 0xAD/0xAE the
 *           keyboard (command byte bits 5 and 4); 0xA9 aux interface test
 *           and 0xAB keyboard interface test answer 0x00; 0xAA self test
 *           answers 0x55; 0xD0 reads and 0xD1 writes the output port (bit
 *           0 low resets the machine); 0xD2/0xD3 put the next data byte
 *           into the output buffer as keyboard/aux data; 0xD4 sends the
 *           next byte to the aux device, which is absent: it answers 0xFE
 *           (resend), so a mouse probe fails at once; 0xF0-0xFF pulse the
 *           output port's low bits, and a pulse of bit 0 (0xFE, the usual
 *           one) resets.  Every reset goes to vm_reset_request().
 *           Keyboard commands (data written with no controller command
 *           pending): 0xFF reset answers 0xFA 0xAA; 0xF2 identify answers
 *           0xFA 0xAB 0x83; 0xEE echo answers 0xEE; 0xED, 0xF0, 0xF3 (with
 *           a parameter byte) answer 0xFA to the command and to the
 *           parameter; everything else answers 0xFA.
 *           Interrupts: IRQ 1 is high while the output buffer holds
 *           keyboard data and the command byte enables it (bit 0), IRQ 12
 *           likewise for aux data (bit 1): level changes on vm->bus.irq,
 *           which the edge-triggered ISA inputs see as one edge per byte.
 * Missing:  scan codes (no host keyboard input), scan code sets and
 *           translation (XLATE is stored only; identify is not translated),
 *           typematic, LEDs (stored nowhere), a mouse, the A20 gate (A20 is
 *           always on; output port bit 1 is stored only), the input port
 *           (0xC0), controller RAM (0x21-0x3F, 0x61-0x7F), password and
 *           diagnostic commands, timeouts and parity errors.  Bytes queue
 *           in a 16-byte FIFO instead of the keyboard's own buffer.
 * Spec:     IBM PC/AT Technical Reference, "Keyboard Controller"; the
 *           8042 command list as in the IBM PS/2 Hardware Interface
 *           Technical Reference; IBM PS/2 keyboard command set.
 *
 * Snapshot: section "i8042" instance 0: command byte, output port, the
 *           commands waiting for a byte, the FIFO (oldest first) and the
 *           IRQ 1/12 levels last sent.  Nothing is re-sent on load: the
 *           PIC and IOAPIC save the levels they saw.
 *
 * Ports:    0x60 and 0x64 are two ranges: 0x61 (between them) is the
 *           PIT's.  Both are serialized (I/O thread or global lock).
 */
#include <errno.h>
#include <stdlib.h>
#include "bus/message.h"
#include "bus/range.h"
#include "devices/reset.h"
#include "devices/restore.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#define I8042_DATA    0x60
#define I8042_CMD     0x64
#define KBD_IRQ       1
#define AUX_IRQ       12
#define FIFO_SIZE     16

/* Status register. */
enum { STS_OBF = 0x01, STS_IBF = 0x02, STS_SYS = 0x04, STS_A2 = 0x08,
       STS_INH = 0x10, STS_AUXB = 0x20 };
/* Command byte. */
enum { CTR_KBDINT = 0x01, CTR_AUXINT = 0x02, CTR_SYS = 0x04, CTR_KBDDIS = 0x10,
       CTR_AUXDIS = 0x20, CTR_XLATE = 0x40 };
/* Output port. */
enum { OUT_RESET = 0x01, OUT_A20 = 0x02, OUT_KBD_OBF = 0x10, OUT_AUX_OBF = 0x20 };

struct i8042 {
	struct vm *vm;
	uint8_t ctr;                /* command byte */
	uint8_t outport;            /* bits 0-3 as last written */
	bool sys, a2;
	uint8_t pending_cmd;        /* controller command waiting for its data byte */
	uint8_t kbd_cmd;            /* keyboard command waiting for its parameter */
	struct { uint8_t byte; bool aux; } fifo[FIFO_SIZE];
	unsigned head, count;
	uint8_t last;               /* the output buffer keeps the last byte read */
	bool irq1, irq12;           /* line levels as last sent */
};

static void set_line(struct i8042 *k, bool *now, bool level, uint8_t line)
{
	struct msg_irq msg = { .line = line, .action = level ? IRQ_ASSERT : IRQ_DEASSERT };

	if (*now == level)
		return;
	*now = level;
	bus_send(k->vm->bus.irq, &msg, BUS_FIFO);
}

static void irq_update(struct i8042 *k)
{
	bool full = k->count > 0, aux = full && k->fifo[k->head].aux;

	set_line(k, &k->irq1, full && !aux && (k->ctr & CTR_KBDINT), KBD_IRQ);
	set_line(k, &k->irq12, aux && (k->ctr & CTR_AUXINT), AUX_IRQ);
}

static void push(struct i8042 *k, uint8_t byte, bool aux)
{
	if (k->count == FIFO_SIZE)
		return;                 /* the device would have waited: drop */
	k->fifo[(k->head + k->count) % FIFO_SIZE].byte = byte;
	k->fifo[(k->head + k->count) % FIFO_SIZE].aux = aux;
	k->count++;
}

/* Reading an empty buffer gives the last byte again, as the chip's latch. */
static uint8_t pop(struct i8042 *k)
{
	if (!k->count)
		return k->last;
	k->last = k->fifo[k->head].byte;
	k->head = (k->head + 1) % FIFO_SIZE;
	k->count--;
	return k->last;
}

static uint8_t status(const struct i8042 *k)
{
	uint8_t s = STS_INH;

	if (k->count)
		s |= STS_OBF | (k->fifo[k->head].aux ? STS_AUXB : 0);
	if (k->sys)
		s |= STS_SYS;
	if (k->a2)
		s |= STS_A2;
	return s;
}

static void reset_machine(struct i8042 *k, const char *why)
{
	pr_info("i8042: %s: reset", why);
	vm_reset_request(k->vm);
}

/* ---- The keyboard ---- */

static bool kbd_has_param(uint8_t cmd)
{
	return cmd == 0xED || cmd == 0xF0 || cmd == 0xF3;
}

static void kbd_write(struct i8042 *k, uint8_t v)
{
	if (k->kbd_cmd) {              /* the parameter of the last command */
		k->kbd_cmd = 0;
		push(k, 0xFA, false);
		return;
	}
	switch (v) {
	case 0xFF:                     /* reset: ACK, then self test passed */
		push(k, 0xFA, false);
		push(k, 0xAA, false);
		break;
	case 0xF2:                     /* identify: an MF2 keyboard */
		push(k, 0xFA, false);
		push(k, 0xAB, false);
		push(k, 0x83, false);
		break;
	case 0xEE:
		push(k, 0xEE, false);
		break;
	default:
		if (kbd_has_param(v))
			k->kbd_cmd = v;
		push(k, 0xFA, false);
	}
}

/* ---- The controller ---- */

static uint8_t outport(const struct i8042 *k)
{
	uint8_t v = (uint8_t)(k->outport & 0x0f);

	if (k->count)
		v |= k->fifo[k->head].aux ? OUT_AUX_OBF : OUT_KBD_OBF;
	return v;
}

static void write_outport(struct i8042 *k, uint8_t v)
{
	k->outport = v & 0x0f;
	if (!(v & OUT_RESET))
		reset_machine(k, "output port reset line low");
}

/* The data byte of a command that takes one. */
static void cmd_data(struct i8042 *k, uint8_t cmd, uint8_t v)
{
	switch (cmd) {
	case 0x60:
		k->ctr = v;
		k->sys = v & CTR_SYS;
		break;
	case 0xD1:
		write_outport(k, v);
		break;
	case 0xD2:
		push(k, v, false);
		break;
	case 0xD3:
		push(k, v, true);
		break;
	case 0xD4:
		push(k, 0xFE, true);   /* no mouse: resend */
		break;
	}
}

static void cmd_write(struct i8042 *k, uint8_t cmd)
{
	k->pending_cmd = 0;
	switch (cmd) {
	case 0x20: push(k, k->ctr, false); break;
	case 0xA7: k->ctr |= CTR_AUXDIS; break;
	case 0xA8: k->ctr &= (uint8_t)~CTR_AUXDIS; break;
	case 0xA9: push(k, 0x00, false); break;
	case 0xAA: k->sys = true; push(k, 0x55, false); break;
	case 0xAB: push(k, 0x00, false); break;
	case 0xAD: k->ctr |= CTR_KBDDIS; break;
	case 0xAE: k->ctr &= (uint8_t)~CTR_KBDDIS; break;
	case 0xD0: push(k, outport(k), false); break;
	case 0x60: case 0xD1: case 0xD2: case 0xD3: case 0xD4:
		k->pending_cmd = cmd;
		break;
	default:
		/* 0xF0-0xFF pulse the output port bits whose command bit is 0. */
		if (cmd >= 0xF0 && !(cmd & OUT_RESET))
			reset_machine(k, "reset pulse");
		else if (cmd < 0xF0)
			pr_info("i8042: command %#x ignored", cmd);
	}
}

static void data_write(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending_cmd;

	k->pending_cmd = 0;
	if (cmd)
		cmd_data(k, cmd, v);
	else
		kbd_write(k, v);
}

static bool i8042_pio(void *dev, uint64_t addr, void *m)
{
	struct i8042 *k = dev;
	struct msg_pio *msg = m;
	uint8_t v = (uint8_t)msg->value;

	if (msg->write) {
		k->a2 = addr == I8042_CMD;
		if (addr == I8042_CMD)
			cmd_write(k, v);
		else
			data_write(k, v);
	} else {
		v = addr == I8042_CMD ? status(k) : pop(k);
		msg->value = msg->size < 4 ? 0xffffff00u | v : v;
		if (msg->size < 4)
			msg->value &= (1u << (8 * msg->size)) - 1;
	}
	irq_update(k);
	return true;
}

/* ---- Snapshots ---- */

#define I8042_STATE_VERSION 1

static void i8042_save(struct i8042 *k, struct stream *s)
{
	uint8_t b[] = { k->ctr, k->outport, k->sys, k->a2, k->pending_cmd, k->kbd_cmd,
			k->last, k->irq1, k->irq12, (uint8_t)k->count };

	stream_section_begin(s, "i8042", 0, I8042_STATE_VERSION);
	stream_put(s, b, sizeof(b));
	for (unsigned i = 0; i < k->count; i++) {
		stream_put_u8(s, k->fifo[(k->head + i) % FIFO_SIZE].byte);
		stream_put_u8(s, k->fifo[(k->head + i) % FIFO_SIZE].aux);
	}
	stream_section_end(s);
}

static bool pending_ok(uint8_t cmd)
{
	return !cmd || cmd == 0x60 || (cmd >= 0xD1 && cmd <= 0xD4);
}

static int i8042_load(struct i8042 *k, struct stream *s)
{
	struct i8042 n = { .vm = k->vm };
	uint8_t b[10];

	if (stream_section_open(s, "i8042", 0, I8042_STATE_VERSION, NULL))
		return stream_error(s);
	stream_get(s, b, sizeof(b));
	if (!stream_error(s) && b[9] > FIFO_SIZE)
		stream_fail(s, -EINVAL, "i8042: %u bytes in a FIFO of %u", b[9], FIFO_SIZE);
	for (unsigned i = 0; i < b[9] && !stream_error(s); i++) {
		uint8_t aux;

		n.fifo[i].byte = stream_get_u8(s);
		aux = stream_get_u8(s);
		n.fifo[i].aux = aux;
		b[2] |= aux & ~1;      /* a flag that is not 0 or 1 fails below */
	}
	if (stream_section_close(s))
		return stream_error(s);
	if (b[1] > 0x0f || (b[2] | b[3] | b[7] | b[8]) > 1 || !pending_ok(b[4]) ||
	    (b[5] && !kbd_has_param(b[5])))
		return stream_fail(s, -EINVAL, "i8042: bad state (output port %#x, pending "
				   "command %#x, keyboard command %#x)", b[1], b[4], b[5]);
	n.ctr = b[0], n.outport = b[1], n.sys = b[2], n.a2 = b[3], n.pending_cmd = b[4];
	n.kbd_cmd = b[5], n.last = b[6], n.irq1 = b[7], n.irq12 = b[8], n.count = b[9];
	*k = n;
	return 0;
}

RESTORE_RECEIVER(i8042_restore_receive, struct i8042, i8042_save, i8042_load)

static void i8042_destroy(void *ctx)
{
	struct i8042 *k = ctx;

	bus_detach(k->vm->bus.restore, i8042_restore_receive, k);
	range_bus_remove(k->vm->bus.pio, I8042_CMD);
	range_bus_remove(k->vm->bus.pio, I8042_DATA);
	free(k);
}

static int i8042_create(struct vm *vm, const char *args)
{
	struct i8042 *k;

	if (*args) {
		pr_err("i8042: takes no arguments ('%s')", args);
		return -EINVAL;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->vm = vm;
	/* As a BIOS leaves it: keyboard interrupt on, translation, POST done. */
	k->ctr = CTR_KBDINT | CTR_SYS | CTR_XLATE;
	k->sys = true;
	k->outport = OUT_RESET | OUT_A20;
	if (range_bus_add(vm->bus.pio, I8042_DATA, 1, i8042_pio, false, k))
		goto fail;
	if (range_bus_add(vm->bus.pio, I8042_CMD, 1, i8042_pio, false, k))
		goto fail_data;
	if (bus_attach(vm->bus.restore, i8042_restore_receive, NULL, k))
		goto fail_cmd;
	vm_at_exit(vm, i8042_destroy, k);
	return 0;
fail_cmd:
	range_bus_remove(vm->bus.pio, I8042_CMD);
fail_data:
	range_bus_remove(vm->bus.pio, I8042_DATA);
fail:
	pr_err("i8042: port 0x60 or 0x64 taken");
	free(k);
	return -EEXIST;
}

DEVICE_MODEL(i8042_model,
	.name = "i8042",
	.help = "i8042  keyboard controller at 0x60/0x64: probes, no keys, 0xFE resets",
	.create = i8042_create);
