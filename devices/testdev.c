/*
 * testdev: a register file that lets a guest check every answer the buses
 * give it, at every access width and offset.
 *
 * State: stable.
 * Features: one register file seen through two windows: 16 ports (default
 *   0xe0..0xef) show its first 16 bytes, a 4 KiB MMIO window (default
 *   0xfebf0000) shows all of it.  Accesses of 1, 2, 4 and (MMIO) 8 bytes at
 *   any offset; every byte of an access is handled by the register it falls
 *   in, so an access may straddle registers.
 *
 *   offset  register  behaviour
 *   0x000   SCRATCH0  32-bit read/write, byte-granular
 *   0x004   ID        32-bit read-only: 0x56454454 ("TDEV" in memory order)
 *   0x008   INVERT    32-bit: each byte written is stored inverted, so a
 *                     read proves the written value arrived, not an echo
 *   0x00c   WCOUNT    32-bit: write accesses to the device since WCOUNT was
 *                     last written; a write touching it sets it to 0 and is
 *                     not counted
 *   0x010   BANK      0xff0 bytes of 64-bit read/write registers (MMIO only)
 *
 *   Bytes of an access that run past the end of a window read as 0xff and
 *   are dropped on writes.  A write updates each 64-bit word it touches
 *   with one compare-and-swap, so an access within one naturally aligned
 *   8-byte word is atomic; one straddling two words is two atomic steps.
 *   With "claimed" the device runs on the vCPU threads, bypassing the I/O
 *   thread and the global lock, which is what the benchmark compares.
 * Missing: nothing the tests needed.
 * Spec: our own; tests/unit/test_testdev.c and tests/guests/pio.c check it.
 * Args: "testdev:port,mmio[,claimed]", default "0xe0,0xfebf0000".
 * Snapshot: section "testdev", instance = its port: the register file and
 *   WCOUNT.  Read-only bytes (ID, WCOUNT's place) must load as they are.
 *   The restore bus runs with the VM paused, so the plain atomic loads and
 *   stores of the words race with no access.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "bus/message.h"
#include "bus/range.h"
#include "devices/restore.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#define TESTDEV_PIO_LEN   16u
#define TESTDEV_MMIO_LEN  4096u
#define TESTDEV_ID        0x56454454u
#define TESTDEV_WORDS     (TESTDEV_MMIO_LEN / 8)

enum reg_kind { REG_SCRATCH, REG_ID, REG_INVERT, REG_WCOUNT };

static const struct testdev_reg {
	const char *name;
	unsigned off, len;
	enum reg_kind kind;
} testdev_regs[] = {
	{ "SCRATCH0", 0x000, 4, REG_SCRATCH },
	{ "ID",       0x004, 4, REG_ID },
	{ "INVERT",   0x008, 4, REG_INVERT },
	{ "WCOUNT",   0x00c, 4, REG_WCOUNT },
	{ "BANK",     0x010, TESTDEV_MMIO_LEN - 0x10, REG_SCRATCH },
};

/* Per-byte behaviour of one 64-bit word, derived once from the table. */
struct word_masks {
	uint64_t writable;   /* bytes a write stores */
	uint64_t invert;     /* bytes stored inverted */
	uint64_t count;      /* bytes that read WCOUNT */
};

struct testdev {
	_Atomic uint64_t word[TESTDEV_WORDS];
	_Atomic uint32_t wcount;
	struct word_masks mask[TESTDEV_WORDS];
};

static enum reg_kind testdev_kind(unsigned off)
{
	for (size_t i = 0; i < sizeof(testdev_regs) / sizeof(testdev_regs[0]); i++)
		if (off - testdev_regs[i].off < testdev_regs[i].len)
			return testdev_regs[i].kind;
	return REG_ID;   /* unreachable: the table covers the window */
}

static void testdev_reset(struct testdev *td)
{
	for (unsigned w = 0; w < TESTDEV_WORDS; w++) {
		struct word_masks *m = &td->mask[w];

		for (unsigned b = 0; b < 8; b++) {
			uint64_t byte = 0xffull << (8 * b);

			switch (testdev_kind(w * 8 + b)) {
			case REG_SCRATCH: m->writable |= byte; break;
			case REG_INVERT:  m->writable |= byte; m->invert |= byte; break;
			case REG_WCOUNT:  m->count |= byte; break;
			case REG_ID:      break;
			}
		}
		atomic_init(&td->word[w], 0);
	}
	/* ID lives in its word like any byte; writes never reach it. */
	atomic_init(&td->word[0x004 / 8], (uint64_t)TESTDEV_ID << 32);
	atomic_init(&td->wcount, 0);
}

static uint64_t bytes_mask(unsigned n)
{
	return n >= 8 ? ~0ull : (1ull << (8 * n)) - 1;
}

/* Bytes [off, off+n) of the register file, n <= 8, within the window. */
static uint64_t testdev_read(struct testdev *td, unsigned off, unsigned n)
{
	uint64_t count = atomic_load(&td->wcount);
	uint64_t result = 0;
	unsigned done = 0;

	/* WCOUNT's bytes sit at offsets 12..15: spread it to its word place. */
	count <<= 32;
	while (done < n) {
		unsigned w = (off + done) / 8, b = (off + done) % 8;
		unsigned k = n - done < 8 - b ? n - done : 8 - b;
		uint64_t v = atomic_load(&td->word[w]);

		v = (v & ~td->mask[w].count) | (count & td->mask[w].count);
		result |= ((v >> (8 * b)) & bytes_mask(k)) << (8 * done);
		done += k;
	}
	return result;
}

static void testdev_write(struct testdev *td, unsigned off, unsigned n, uint64_t val)
{
	bool hits_count = false;
	unsigned done = 0;

	while (done < n) {
		unsigned w = (off + done) / 8, b = (off + done) % 8;
		unsigned k = n - done < 8 - b ? n - done : 8 - b;
		const struct word_masks *m = &td->mask[w];
		uint64_t span = bytes_mask(k) << (8 * b);
		uint64_t bits = ((val >> (8 * done)) << (8 * b)) ^ m->invert;
		uint64_t store = span & m->writable;
		uint64_t old = atomic_load(&td->word[w]);

		hits_count |= (span & m->count) != 0;
		while (store && !atomic_compare_exchange_weak(&td->word[w], &old,
							      (old & ~store) | (bits & store)))
			;
		done += k;
	}
	if (hits_count)
		atomic_store(&td->wcount, 0);
	else
		atomic_fetch_add(&td->wcount, 1);
}

/* One access at @off of a window @len bytes long: bytes past it are open bus. */
static uint64_t testdev_access(struct testdev *td, unsigned off, unsigned len,
			       unsigned size, bool write, uint64_t val)
{
	unsigned n = off + size <= len ? size : len - off;

	if (write) {
		testdev_write(td, off, n, val);
		return val;
	}
	return testdev_read(td, off, n) | (~bytes_mask(n) & bytes_mask(size));
}

static bool testdev_valid_size(unsigned size)
{
	return size == 1 || size == 2 || size == 4 || size == 8;
}

struct testdev_window {
	struct testdev *td;
	uint64_t base;
};

static bool testdev_pio(void *dev, uint64_t addr, void *msg)
{
	struct testdev_window *win = dev;
	struct msg_pio *m = msg;
	uint64_t v;

	if (!testdev_valid_size(m->size) || m->size > 4)
		return false;
	v = testdev_access(win->td, addr - win->base, TESTDEV_PIO_LEN, m->size,
			   m->write, m->value);
	if (!m->write)
		m->value = (uint32_t)v;
	return true;
}

static bool testdev_mmio(void *dev, uint64_t addr, void *msg)
{
	struct testdev_window *win = dev;
	struct msg_mmio *m = msg;
	uint64_t v;

	if (!testdev_valid_size(m->size))
		return false;
	v = testdev_access(win->td, addr - win->base, TESTDEV_MMIO_LEN, m->size,
			   m->write, m->value);
	if (!m->write)
		m->value = v;
	return true;
}

struct testdev_instance {
	struct testdev td;
	struct testdev_window pio, mmio;
};

struct testdev_args {
	unsigned long long port, mmio;
	bool claimed;
};

/* One comma-separated number; an empty field keeps the default. */
static int parse_field(const char **p, unsigned long long *val)
{
	char *end;

	if (**p && **p != ',') {
		*val = strtoull(*p, &end, 0);
		if (end == *p || (*end && *end != ','))
			return -EINVAL;
		*p = end;
	}
	if (**p == ',')
		(*p)++;
	return 0;
}

static int testdev_parse(const char *args, struct testdev_args *a)
{
	const char *p = args ? args : "";

	a->port = 0xe0;
	a->mmio = 0xfebf0000;
	a->claimed = false;
	if (parse_field(&p, &a->port) || parse_field(&p, &a->mmio))
		return -EINVAL;
	if (*p) {
		if (strcmp(p, "claimed"))
			return -EINVAL;
		a->claimed = true;
	}
	if (a->port > 0x10000 - TESTDEV_PIO_LEN || a->mmio % TESTDEV_MMIO_LEN ||
	    a->mmio > ~0ull - TESTDEV_MMIO_LEN + 1)
		return -EINVAL;
	return 0;
}

/* ---- Snapshots ---- */

#define TESTDEV_STATE_VERSION 1

static void testdev_save(struct testdev_instance *t, struct stream *s)
{
	stream_section_begin(s, "testdev", (uint32_t)t->pio.base, TESTDEV_STATE_VERSION);
	for (unsigned w = 0; w < TESTDEV_WORDS; w++)
		stream_put_u64(s, atomic_load(&t->td.word[w]));
	stream_put_u32(s, atomic_load(&t->td.wcount));
	stream_section_end(s);
}

static int testdev_load(struct testdev_instance *t, struct stream *s)
{
	uint64_t word[TESTDEV_WORDS];
	uint32_t wcount;

	if (stream_section_open(s, "testdev", (uint32_t)t->pio.base, TESTDEV_STATE_VERSION, NULL))
		return stream_error(s);
	for (unsigned w = 0; w < TESTDEV_WORDS; w++)
		word[w] = stream_get_u64(s);
	wcount = stream_get_u32(s);
	if (stream_section_close(s))
		return stream_error(s);
	/* The reset values of read-only bytes are still in the live words. */
	for (unsigned w = 0; w < TESTDEV_WORDS; w++) {
		uint64_t ro = ~t->td.mask[w].writable;

		if ((word[w] ^ atomic_load(&t->td.word[w])) & ro)
			return stream_fail(s, -EINVAL, "testdev: read-only bytes of word %#x "
					   "changed (%#llx)", w * 8, (unsigned long long)word[w]);
	}
	for (unsigned w = 0; w < TESTDEV_WORDS; w++)
		atomic_store(&t->td.word[w], word[w]);
	atomic_store(&t->td.wcount, wcount);
	return 0;
}

RESTORE_RECEIVER(testdev_restore_receive, struct testdev_instance, testdev_save, testdev_load)

static int testdev_create(struct vm *vm, const char *args)
{
	struct testdev_instance *t;
	struct testdev_args a;
	int err = testdev_parse(args, &a);

	if (err) {
		pr_err("testdev: bad arguments '%s' (want port,mmio[,claimed])", args);
		return err;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	testdev_reset(&t->td);
	t->pio = (struct testdev_window){ &t->td, a.port };
	t->mmio = (struct testdev_window){ &t->td, a.mmio };
	err = range_bus_add(vm->bus.pio, a.port, TESTDEV_PIO_LEN, testdev_pio,
			    a.claimed, &t->pio);
	if (err)
		goto out_free;
	err = range_bus_add(vm->bus.mmio, a.mmio, TESTDEV_MMIO_LEN, testdev_mmio,
			    a.claimed, &t->mmio);
	if (err)
		goto out_pio;
	err = bus_attach(vm->bus.restore, testdev_restore_receive, NULL, t);
	if (err) {
		range_bus_remove(vm->bus.mmio, a.mmio);
		range_bus_remove(vm->bus.pio, a.port);
		free(t);
		return err;
	}
	/* The buses go away after the exit hooks, with everything on them. */
	vm_at_exit(vm, free, t);
	pr_info("testdev: ports %#llx, mmio %#llx%s", a.port, a.mmio,
		a.claimed ? ", claimed" : "");
	return 0;
out_pio:
	range_bus_remove(vm->bus.pio, a.port);
out_free:
	pr_err("testdev: ports %#llx or mmio %#llx are taken", a.port, a.mmio);
	free(t);
	return err;
}

DEVICE_MODEL(testdev_model,
	.name = "testdev",
	.help = "testdev:port,mmio[,claimed]  register file for bus tests (default 0xe0,0xfebf0000)",
	.create = testdev_create)
