/*
 * Port I/O and MMIO answers, checked at every width: drives the testdev
 * register file (devices/testdev.c) through its port and MMIO windows and
 * checks each read against a model of the device kept here, written from
 * its spec.  Then reads an empty port and an unmapped MMIO address, which
 * must answer all ones.
 *
 * Command line (all optional): rounds=N random accesses per window,
 * seed=N, port=P mmio=A (where testdev sits), unhandled_port=P,
 * unmapped_mmio=A.
 */
#include "guest.h"

#define TD_PIO_LEN   16
#define TD_MMIO_LEN  4096
#define TD_ID        0x56454454u
#define R_SCRATCH0   0x0
#define R_ID         0x4
#define R_INVERT     0x8
#define R_WCOUNT     0xc

static uint32_t td_port = 0xe0;
static uint32_t td_mmio = 0xfebf0000;
static uint32_t unhandled_port = 0x2a0;
static uint32_t unmapped_mmio = 0xfebf8000;

static unsigned n_port, n_mmio, n_string;

/* The model: every byte of the register file, and the write counter. */
static uint8_t model[TD_MMIO_LEN];
static uint32_t model_count;

static bool in_reg(unsigned off, unsigned reg)
{
	return off - reg < 4;
}

static void model_reset(void)
{
	memset(model, 0, sizeof(model));
	for (unsigned i = 0; i < 4; i++)
		model[R_ID + i] = TD_ID >> (8 * i);
	model_count = 0;
}

/* What a read of @size bytes at @off returns now. */
static uint32_t model_read(unsigned off, unsigned size)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < size; i++) {
		unsigned o = off + i;
		uint8_t b = in_reg(o, R_WCOUNT) ? model_count >> (8 * (o - R_WCOUNT)) : model[o];

		v |= (uint32_t)b << (8 * i);
	}
	return v;
}

static void model_write(unsigned off, unsigned size, uint32_t v)
{
	bool hits_count = false;

	for (unsigned i = 0; i < size; i++) {
		unsigned o = off + i;
		uint8_t b = v >> (8 * i);

		if (in_reg(o, R_WCOUNT))
			hits_count = true;
		else if (in_reg(o, R_INVERT))
			model[o] = ~b;
		else if (!in_reg(o, R_ID))
			model[o] = b;
	}
	model_count = hits_count ? 0 : model_count + 1;
}

static uint32_t port_io(unsigned port, unsigned size, bool write, uint32_t v)
{
	n_port++;
	switch (size) {
	case 1:
		if (write)
			outb(port, v);
		return write ? 0 : inb(port);
	case 2:
		if (write)
			outw(port, v);
		return write ? 0 : inw(port);
	default:
		if (write)
			outl(port, v);
		return write ? 0 : inl(port);
	}
}

static uint32_t mmio_io(uintptr_t addr, unsigned size, bool write, uint32_t v)
{
	n_mmio++;
	switch (size) {
	case 1:
		if (write)
			mmio_write8(addr, v);
		return write ? 0 : mmio_read8(addr);
	case 2:
		if (write)
			mmio_write16(addr, v);
		return write ? 0 : mmio_read16(addr);
	default:
		if (write)
			mmio_write32(addr, v);
		return write ? 0 : mmio_read32(addr);
	}
}

static const char *const window_name[] = { "port", "mmio" };

/* One access to testdev through window @mmio, checked against the model. */
static void td_access(bool mmio, unsigned off, unsigned size, bool write, uint32_t v)
{
	uint32_t mask = size == 4 ? ~0u : (1u << (8 * size)) - 1, got, want;

	v &= mask;
	if (write) {
		if (mmio)
			mmio_io(td_mmio + off, size, true, v);
		else
			port_io(td_port + off, size, true, v);
		model_write(off, size, v);
		return;
	}
	want = model_read(off, size);
	got = mmio ? mmio_io(td_mmio + off, size, false, 0)
		   : port_io(td_port + off, size, false, 0);
	if (got != want)
		test_fail("%s read of %u bytes at testdev+0x%x: got 0x%x, want 0x%x "
			  "(after %u port and %u mmio accesses)", window_name[mmio], size,
			  off, got, want, n_port, n_mmio);
}

static void td_read(bool mmio, unsigned off, unsigned size)
{
	td_access(mmio, off, size, false, 0);
}

static void td_write(bool mmio, unsigned off, unsigned size, uint32_t v)
{
	td_access(mmio, off, size, true, v);
}

/* Every width at every offset of the port window, through both windows. */
static void check_every_offset(void)
{
	for (unsigned size = 1; size <= 4; size *= 2)
		for (unsigned off = 0; off + size <= TD_PIO_LEN; off++) {
			td_read(false, off, size);
			td_read(true, off, size);
		}
}

static void check_directed(void)
{
	/* The reset state, and the ID at every width. */
	check_every_offset();
	/* Byte-granular scratch, written through one window, read through both. */
	td_write(false, R_SCRATCH0, 4, 0x11223344);
	td_write(false, R_SCRATCH0 + 1, 1, 0xaa);
	td_write(true, R_SCRATCH0 + 2, 2, 0xccbb);
	td_write(false, R_SCRATCH0 + 1, 2, 0x9988);
	td_write(true, R_SCRATCH0 + 3, 2, 0x7766);     /* straddles into ID */
	td_write(false, R_INVERT, 4, 0x12345678);
	td_write(true, R_INVERT + 1, 1, 0x0f);
	td_write(false, R_INVERT + 3, 2, 0xffff);      /* straddles into WCOUNT */
	td_write(false, R_ID, 4, 0);                   /* read-only, but counted */
	check_every_offset();
	/* A write not touching WCOUNT counts, one touching it resets. */
	td_write(true, 0x100, 4, 0xdeadbeef);
	td_read(false, R_WCOUNT, 4);
	td_write(true, R_WCOUNT + 2, 1, 0);
	td_read(false, R_WCOUNT, 4);
}

static uint32_t rng_state;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static void check_random(unsigned rounds)
{
	for (unsigned i = 0; i < 2 * rounds; i++) {
		uint32_t r = rnd(), v = rnd();
		bool mmio = i & 1, write = r & 1;
		unsigned size = 1u << ((r >> 1) % 3);
		unsigned len = mmio && (r & 0x80) ? TD_MMIO_LEN : TD_PIO_LEN + 8 * mmio;
		unsigned off = (r >> 8) % (len - size + 1);

		td_access(mmio, off, size, write, v);
		/* Read back what was written, through the other window if it can. */
		if (write)
			td_read(off + size <= TD_PIO_LEN ? !mmio : true, off, size);
	}
}

/* rep outs/ins: every element is one access to the device. */
static void check_string_io(void)
{
	static const uint8_t bytes[8] = { 0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87 };
	static const uint16_t words[4] = { 0x1234, 0x5678, 0x9abc, 0xdef0 };
	uint8_t in8[8];
	uint16_t in16[4];
	const void *src;
	void *dst;
	unsigned n;

	src = bytes;
	n = 8;
	asm volatile("rep outsb" : "+S"(src), "+c"(n) : "d"(td_port + R_SCRATCH0 + 1) : "memory");
	for (unsigned i = 0; i < 8; i++)
		model_write(R_SCRATCH0 + 1, 1, bytes[i]);
	src = words;
	n = 4;
	asm volatile("rep outsw" : "+S"(src), "+c"(n) : "d"(td_port + R_INVERT) : "memory");
	for (unsigned i = 0; i < 4; i++)
		model_write(R_INVERT, 2, words[i]);
	n_string += 12;
	check_every_offset();

	dst = in8;
	n = 8;
	asm volatile("rep insb" : "+D"(dst), "+c"(n) : "d"(td_port + R_ID + 1) : "memory");
	dst = in16;
	n = 4;
	asm volatile("rep insw" : "+D"(dst), "+c"(n) : "d"(td_port + R_INVERT) : "memory");
	n_string += 12;
	for (unsigned i = 0; i < 8; i++)
		if (in8[i] != model_read(R_ID + 1, 1))
			test_fail("rep insb element %u: got 0x%x, want 0x%x", i, in8[i],
				  model_read(R_ID + 1, 1));
	for (unsigned i = 0; i < 4; i++)
		if (in16[i] != model_read(R_INVERT, 2))
			test_fail("rep insw element %u: got 0x%x, want 0x%x", i, in16[i],
				  model_read(R_INVERT, 2));
	td_read(false, R_WCOUNT, 4);
}

/* Nothing answers: reads float high, writes vanish. */
static void check_unclaimed(void)
{
	for (unsigned size = 1; size <= 4; size *= 2) {
		uint32_t ones = size == 4 ? ~0u : (1u << (8 * size)) - 1, got;

		port_io(unhandled_port, size, true, 0);
		got = port_io(unhandled_port, size, false, 0);
		if (got != ones)
			test_fail("read of %u bytes at empty port 0x%x: got 0x%x, want 0x%x",
				  size, unhandled_port, got, ones);
		mmio_io(unmapped_mmio, size, true, 0);
		got = mmio_io(unmapped_mmio + 4 - size, size, false, 0);
		if (got != ones)
			test_fail("read of %u bytes at unmapped 0x%x: got 0x%x, want 0x%x",
				  size, unmapped_mmio + 4 - size, got, ones);
	}
}

/* Finally every byte of the device, against the model. */
static void check_whole_device(void)
{
	for (unsigned off = 0; off < TD_PIO_LEN; off += 4)
		td_read(false, off, 4);
	for (unsigned off = 0; off < TD_MMIO_LEN; off += 4)
		td_read(true, off, 4);
}

int main(uint32_t magic, const struct mb_info *mbi)
{
	const char *args = guest_start("pio", magic, mbi);
	uint32_t rounds = 300, id;

	rng_state = 1;
	cmdline_uint(args, "rounds", &rounds);
	cmdline_uint(args, "seed", &rng_state);
	cmdline_uint(args, "port", &td_port);
	cmdline_uint(args, "mmio", &td_mmio);
	cmdline_uint(args, "unhandled_port", &unhandled_port);
	cmdline_uint(args, "unmapped_mmio", &unmapped_mmio);
	if (!rng_state)
		rng_state = 1;
	printf("testdev at port 0x%x, mmio 0x%x; %u random accesses per window, seed %u\n",
	       td_port, td_mmio, rounds, rng_state);

	id = inl(td_port + R_ID);
	if (id != TD_ID)
		test_fail("no testdev at port 0x%x: ID reads 0x%x, want 0x%x",
			  td_port, id, TD_ID);
	model_reset();
	check_directed();
	printf("directed checks done\n");
	check_random(rounds);
	printf("random checks done\n");
	check_string_io();
	check_unclaimed();
	check_whole_device();
	printf("%u port accesses, %u mmio accesses, %u string elements: all answers right\n",
	       n_port, n_mmio, n_string);
	test_pass();
}
