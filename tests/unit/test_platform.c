/*
 * The small PC platform devices, driven through the VM's port bus as a
 * vCPU drives them: the Reset Control Register (0xCF9) and the reset
 * policy, the 8042 keyboard controller (0x60/0x64), the POST code port
 * (0x80) and PCI configuration mechanism #1 (0xCF8/0xCFC).  Register
 * values are restated from the specifications.  Every test runs behind
 * the global lock and behind the I/O thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "tests/unit/pio_access.h"
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include "bus/message.h"
#include "devices/port80.h"
#include "devices/reset.h"
#include "vmm/device.h"
#include "vmm/vm.h"
#include "restore_trip.h"

struct fixture {
	struct vm vm;
	struct port80 *p80;
	int level[16];                 /* IRQ lines as the messages left them */
	_Atomic unsigned bad_irq;      /* edges, or "changes" that change nothing */
	struct vm *restarted;
};

static struct fixture *f;

static bool capture_irq(void *dev, void *m)
{
	struct fixture *fx = dev;
	const struct msg_irq *msg = m;
	int level = msg->action == IRQ_ASSERT;

	if (msg->line >= 16 || msg->action == IRQ_EDGE || fx->level[msg->line] == level)
		atomic_fetch_add(&fx->bad_irq, 1);
	else
		fx->level[msg->line] = level;
	return true;
}

static int setup(void **state, enum io_mode mode, const char *pci)
{
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(vm_init_buses(&f->vm, mode), 0);
	assert_int_equal(bus_attach(f->vm.bus.irq, capture_irq, bus_claim_always, f), 0);
	assert_int_equal(device_create(&f->vm, "reset"), 0);
	assert_int_equal(device_create(&f->vm, "i8042"), 0);
	assert_int_equal(device_create(&f->vm, pci), 0);
	f->p80 = port80_create(&f->vm);
	assert_non_null(f->p80);
	reset_set_action(&f->vm, REBOOT_EXIT);
	reset_set_restart_handler(NULL);
	*state = f;
	return 0;
}

static int setup_lock(void **state) { return setup(state, IO_MODE_LOCK, "pcihost"); }
static int setup_thread(void **state) { return setup(state, IO_MODE_THREAD, "pcihost"); }
static int setup_lock_nobridge(void **state)
{
	return setup(state, IO_MODE_LOCK, "pcihost:nobridge");
}

static int setup_thread_nobridge(void **state)
{
	return setup(state, IO_MODE_THREAD, "pcihost:nobridge");
}

static int teardown(void **state)
{
	(void)state;
	assert_int_equal(atomic_load(&f->bad_irq), 0);
	reset_set_action(&f->vm, REBOOT_EXIT);
	reset_set_restart_handler(NULL);
	port80_destroy(f->p80);
	vm_run_exit_hooks(&f->vm);
	bus_detach(f->vm.bus.irq, capture_irq, f);
	vm_fini_buses(&f->vm);
	free(f);
	f = NULL;
	return 0;
}

static uint32_t in_n(uint16_t port, unsigned size)
{
	return vm_pio_in(&f->vm, port, size);
}

static void out_n(uint16_t port, unsigned size, uint32_t v)
{
	vm_pio_out(&f->vm, port, size, v);
}

static uint8_t inb(uint16_t port) { return (uint8_t)in_n(port, 1); }
static void outb(uint16_t port, uint8_t v) { out_n(port, 1, v); }

static bool exiting(void)
{
	return atomic_load(&f->vm.exiting);
}

/* ---- Port 0x80 ---- */

static void test_port80(void **state)
{
	struct bus_stats *s = range_bus_stats(f->vm.bus.pio);
	uint64_t claimed = atomic_load(&s->claimed);

	(void)state;
	assert_int_equal(inb(0x80), 0xff);
	assert_int_equal(port80_writes(f->p80), 0);
	outb(0x80, 0x12);
	outb(0x80, 0x34);
	assert_int_equal(inb(0x80), 0x34);
	assert_int_equal(in_n(0x80, 2), 0xff34);
	out_n(0x80, 2, 0xabcd);
	assert_int_equal(inb(0x80), 0xcd);
	assert_int_equal(port80_writes(f->p80), 3);
	assert_int_equal(port80_last(f->p80), 0xcd);
	/* Claimed: every access ran on this thread. */
	assert_int_equal(atomic_load(&s->claimed) - claimed, 7);
	port80_destroy(f->p80);
	f->p80 = NULL;
	assert_int_equal(device_create(&f->vm, "port80:1"), -EINVAL);
	assert_int_equal(device_create(&f->vm, "port80"), 0);
	assert_int_equal(inb(0x80), 0xff);
	assert_int_equal(device_create(&f->vm, "port80"), -EEXIST);
}

/* ---- Reset Control Register ---- */

static void test_cf9(void **state)
{
	uint64_t n = reset_request_count();

	(void)state;
	assert_int_equal(inb(0xcf9), 0x00);
	outb(0xcf9, 0x02);                        /* SYS_RST alone: armed, no reset */
	assert_int_equal(inb(0xcf9), 0x02);
	outb(0xcf9, 0x0a);
	assert_int_equal(inb(0xcf9), 0x0a);
	assert_false(exiting());
	outb(0xcf9, 0x06);                        /* the FADT's RESET_VALUE */
	assert_true(exiting());
	assert_int_equal(f->vm.exit_status, 0);
	assert_int_equal(reset_request_count(), n + 1);
	assert_int_equal(inb(0xcf9) & 0x04, 0);   /* RST_CPU reads 0 */
}

static void test_cf9_full(void **state)
{
	(void)state;
	outb(0xcf9, 0x0e);
	assert_true(exiting());
	assert_int_equal(f->vm.exit_status, 0);
}

/* Only byte accesses at 0xCF9 reach the RCR: a dword at 0xCF8 is PCI's. */
static void test_cf9_not_dword(void **state)
{
	uint64_t n = reset_request_count();

	(void)state;
	out_n(0xcf8, 4, 0xffffffff);
	out_n(0xcf8, 2, 0x0600);
	out_n(0xcf9, 2, 0x0606);
	out_n(0xcf9, 4, 0x06060606);
	assert_false(exiting());
	assert_int_equal(reset_request_count(), n);
}

static void record_restart(struct vm *vm)
{
	f->restarted = vm;
}

static void test_policy(void **state)
{
	(void)state;
	assert_int_equal(reset_action(), REBOOT_EXIT);
	reset_set_action(&f->vm, REBOOT_RESTART);
	assert_int_equal(reset_action(), REBOOT_RESTART);
	reset_set_restart_handler(record_restart);
	outb(0xcf9, 0x06);
	assert_ptr_equal(f->restarted, &f->vm);   /* the handler, not an exit */
	assert_false(exiting());
	reset_set_restart_handler(NULL);
	vm_reset_request(&f->vm);                 /* no handler yet: exits 0 too */
	assert_true(exiting());
	assert_int_equal(f->vm.exit_status, 0);
}

static void test_reset_model(void **state)
{
	(void)state;
	assert_int_equal(device_create(&f->vm, "reset"), -EEXIST);   /* one per process */
	assert_int_equal(device_create(&f->vm, "reset:x"), -EINVAL);
}

/* ---- 8042 ---- */

enum { OBF = 0x01, IBF = 0x02, SYS = 0x04, A2 = 0x08, INH = 0x10, AUXB = 0x20 };

static void expect_bytes(const uint8_t *want, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t st = inb(0x64);

		if (!(st & OBF))
			fail_msg("byte %u: output buffer empty (status %#x)", i, st);
		assert_int_equal(inb(0x60), want[i]);
	}
	assert_int_equal(inb(0x64) & OBF, 0);
}

static void kbc_command(uint8_t cmd)
{
	outb(0x64, cmd);
}

static void test_i8042_status(void **state)
{
	(void)state;
	assert_int_equal(inb(0x64), SYS | INH);
	kbc_command(0xaa);                         /* self test */
	assert_int_equal(inb(0x64), SYS | INH | A2 | OBF);
	assert_int_equal(inb(0x60), 0x55);
	assert_int_equal(inb(0x64), SYS | INH | A2);
	outb(0x60, 0xf4);                          /* data: A2 clears */
	assert_int_equal(inb(0x64) & (A2 | IBF), 0);
	assert_int_equal(inb(0x60), 0xfa);
	assert_int_equal(inb(0x60), 0xfa);         /* an empty buffer repeats */
}

static void test_i8042_commands(void **state)
{
	static const uint8_t tests[] = { 0x00, 0x00 };

	(void)state;
	kbc_command(0x20);
	expect_bytes((const uint8_t[]){ 0x45 }, 1);    /* XLATE | SYS | INT */
	kbc_command(0x60);
	outb(0x60, 0x00);
	kbc_command(0x20);
	expect_bytes((const uint8_t[]){ 0x00 }, 1);
	assert_int_equal(inb(0x64) & SYS, 0);           /* follows the command byte */
	kbc_command(0xad);                              /* keyboard off */
	kbc_command(0xa7);                              /* aux off */
	kbc_command(0x20);
	expect_bytes((const uint8_t[]){ 0x30 }, 1);
	kbc_command(0xae);
	kbc_command(0xa8);
	kbc_command(0x20);
	expect_bytes((const uint8_t[]){ 0x00 }, 1);
	kbc_command(0xab);                              /* interface tests */
	kbc_command(0xa9);
	expect_bytes(tests, 2);
	kbc_command(0xaa);
	expect_bytes((const uint8_t[]){ 0x55 }, 1);
	assert_int_equal(inb(0x64) & SYS, SYS);
	kbc_command(0xd0);                              /* output port: no reset, A20 */
	assert_int_equal(inb(0x60) & 0x03, 0x03);
	kbc_command(0xd2);                              /* write keyboard buffer */
	outb(0x60, 0x1c);
	assert_int_equal(inb(0x64) & (OBF | AUXB), OBF);
	assert_int_equal(inb(0x60), 0x1c);
	kbc_command(0xd3);                              /* write aux buffer */
	outb(0x60, 0x5a);
	assert_int_equal(inb(0x64) & (OBF | AUXB), OBF | AUXB);
	assert_int_equal(inb(0x60), 0x5a);
	kbc_command(0xd4);                              /* to the (absent) mouse */
	outb(0x60, 0xf2);
	assert_int_equal(inb(0x64) & (OBF | AUXB), OBF | AUXB);
	expect_bytes((const uint8_t[]){ 0xfe }, 1);
	assert_false(exiting());
}

static void test_i8042_keyboard(void **state)
{
	(void)state;
	outb(0x60, 0xff);
	expect_bytes((const uint8_t[]){ 0xfa, 0xaa }, 2);
	outb(0x60, 0xf2);
	expect_bytes((const uint8_t[]){ 0xfa, 0xab, 0x83 }, 3);
	outb(0x60, 0xed);                               /* LEDs, then its parameter */
	outb(0x60, 0x07);
	expect_bytes((const uint8_t[]){ 0xfa, 0xfa }, 2);
	outb(0x60, 0xf3);                               /* typematic 0xff is a parameter */
	outb(0x60, 0xff);
	expect_bytes((const uint8_t[]){ 0xfa, 0xfa }, 2);
	outb(0x60, 0xee);
	expect_bytes((const uint8_t[]){ 0xee }, 1);
	outb(0x60, 0xf5);
	expect_bytes((const uint8_t[]){ 0xfa }, 1);
}

/* IRQ 1 follows keyboard data with INT set; IRQ 12 aux data with INT2. */
static void test_i8042_irq(void **state)
{
	(void)state;
	outb(0x60, 0xff);
	assert_int_equal(f->level[1], 1);
	(void)inb(0x60);
	assert_int_equal(f->level[1], 1);                /* 0xAA is next */
	(void)inb(0x60);
	assert_int_equal(f->level[1], 0);
	kbc_command(0xd3);
	outb(0x60, 0x01);
	assert_int_equal(f->level[12], 0);               /* INT2 is off */
	(void)inb(0x60);
	kbc_command(0x60);
	outb(0x60, 0x47);                                /* INT | INT2 | SYS | XLATE */
	kbc_command(0xd3);
	outb(0x60, 0x01);
	assert_int_equal(f->level[12], 1);
	assert_int_equal(f->level[1], 0);
	(void)inb(0x60);
	assert_int_equal(f->level[12], 0);
	kbc_command(0x60);
	outb(0x60, 0x44);                                /* interrupts off */
	outb(0x60, 0xf2);
	assert_int_equal(f->level[1], 0);
	kbc_command(0x60);                               /* on, with bytes waiting */
	outb(0x60, 0x45);
	assert_int_equal(f->level[1], 1);
}

static void test_i8042_pulse_reset(void **state)
{
	(void)state;
	kbc_command(0xff);                               /* pulses nothing */
	kbc_command(0xfd);                               /* bit 1 only */
	assert_false(exiting());
	kbc_command(0xfe);
	assert_true(exiting());
	assert_int_equal(f->vm.exit_status, 0);
}

static void test_i8042_outport_reset(void **state)
{
	(void)state;
	kbc_command(0xd1);
	outb(0x60, 0x03);                                /* reset line high: nothing */
	assert_false(exiting());
	kbc_command(0xd0);
	assert_int_equal(inb(0x60) & 0x03, 0x03);
	kbc_command(0xd1);
	outb(0x60, 0x02);                                /* bit 0 low: reset */
	assert_true(exiting());
	assert_int_equal(f->vm.exit_status, 0);
}

static void test_i8042_model(void **state)
{
	struct msg_pio m = { .port = 0x61, .size = 1 };

	(void)state;
	assert_int_equal(device_create(&f->vm, "i8042"), -EEXIST);
	assert_int_equal(device_create(&f->vm, "i8042:1"), -EINVAL);
	/* Port 0x61 between the two ranges stays free for the PIT. */
	assert_false(range_bus_send(f->vm.bus.pio, 0x61, &m));
}

/* ---- PCI configuration mechanism #1 ---- */

static uint32_t cfg_addr(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
	return 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc);
}

static uint32_t cfg_read(unsigned bus, unsigned dev, unsigned fn, unsigned reg, unsigned size)
{
	out_n(0xcf8, 4, cfg_addr(bus, dev, fn, reg));
	return in_n((uint16_t)(0xcfc + (reg & 3)), size);
}

static void cfg_write(unsigned bus, unsigned dev, unsigned fn, unsigned reg, unsigned size,
		      uint32_t v)
{
	out_n(0xcf8, 4, cfg_addr(bus, dev, fn, reg));
	out_n((uint16_t)(0xcfc + (reg & 3)), size, v);
}

static void test_pci_address(void **state)
{
	(void)state;
	out_n(0xcf8, 4, 0xffffffff);
	assert_int_equal(in_n(0xcf8, 4), 0x80fffffc);    /* reserved bits read 0 */
	out_n(0xcf8, 4, 0x12345678);
	assert_int_equal(in_n(0xcf8, 4), 0x00345678);
	/* Linux's mechanism #1 probe. */
	outb(0xcfb, 0x01);
	assert_int_equal(in_n(0xcf8, 4), 0x00345678);
	out_n(0xcf8, 4, 0x80000000);
	assert_int_equal(in_n(0xcf8, 4), 0x80000000);
	/* Its mechanism #2 probe must fail: byte accesses are not CONFIG_ADDRESS. */
	outb(0xcfb, 0x00);
	outb(0xcf8, 0x00);
	outb(0xcfa, 0x00);
	assert_int_equal(inb(0xcf8), 0xff);
	assert_int_equal(inb(0xcfa), 0xff);
	assert_int_equal(in_n(0xcf8, 4), 0x80000000);
}

static void test_pci_empty(void **state)
{
	static const unsigned bdf[][3] = {
		{ 0, 1, 0 }, { 0, 0, 1 }, { 0, 31, 7 }, { 1, 0, 0 }, { 255, 31, 7 }, { 0, 3, 0 },
	};

	(void)state;
	for (unsigned i = 0; i < sizeof(bdf) / sizeof(bdf[0]); i++) {
		assert_int_equal(cfg_read(bdf[i][0], bdf[i][1], bdf[i][2], 0, 2), 0xffff);
		assert_int_equal(cfg_read(bdf[i][0], bdf[i][1], bdf[i][2], 0, 4), 0xffffffff);
		assert_int_equal(cfg_read(bdf[i][0], bdf[i][1], bdf[i][2], 0x0a, 2), 0xffff);
		cfg_write(bdf[i][0], bdf[i][1], bdf[i][2], 0x3c, 1, 0x0b);
		assert_int_equal(cfg_read(bdf[i][0], bdf[i][1], bdf[i][2], 0x3c, 1), 0xff);
	}
	/* Enable bit clear: no configuration cycle at all. */
	out_n(0xcf8, 4, 0);
	assert_int_equal(in_n(0xcfc, 4), 0xffffffff);
}

static void test_pci_host_bridge(void **state)
{
	(void)state;
	assert_int_equal(cfg_read(0, 0, 0, 0x00, 4), 0x12378086);   /* i440FX */
	assert_int_equal(cfg_read(0, 0, 0, 0x00, 2), 0x8086);
	assert_int_equal(cfg_read(0, 0, 0, 0x02, 2), 0x1237);
	assert_int_equal(cfg_read(0, 0, 0, 0x01, 1), 0x80);
	assert_int_equal(cfg_read(0, 0, 0, 0x0a, 2), 0x0600);       /* host bridge */
	assert_int_equal(cfg_read(0, 0, 0, 0x08, 4) >> 8, 0x060000);
	assert_int_equal(cfg_read(0, 0, 0, 0x0e, 1), 0x00);         /* header type 0 */
	assert_int_equal(cfg_read(0, 0, 0, 0x34, 1), 0x00);         /* no capabilities */
	/* Read-only IDs; a BAR that sizes to nothing; writable bits only. */
	cfg_write(0, 0, 0, 0x00, 4, 0);
	assert_int_equal(cfg_read(0, 0, 0, 0x00, 4), 0x12378086);
	cfg_write(0, 0, 0, 0x10, 4, 0xffffffff);
	assert_int_equal(cfg_read(0, 0, 0, 0x10, 4), 0);
	cfg_write(0, 0, 0, 0x04, 2, 0xffff);
	assert_int_equal(cfg_read(0, 0, 0, 0x04, 2), 0x0007);
	cfg_write(0, 0, 0, 0x3c, 1, 0x0b);
	assert_int_equal(cfg_read(0, 0, 0, 0x3c, 4), 0x0000000b);
	/* A word at 0xCFE is offset 2 of the selected dword. */
	out_n(0xcf8, 4, cfg_addr(0, 0, 0, 0));
	assert_int_equal(in_n(0xcfe, 2), 0x1237);
	assert_int_equal(in_n(0xcfe, 4), 0xffff1237);                /* past 0xCFF */
}

static void test_pci_nobridge(void **state)
{
	(void)state;
	assert_int_equal(cfg_read(0, 0, 0, 0x00, 4), 0xffffffff);
	assert_int_equal(cfg_read(0, 0, 0, 0x0a, 2), 0xffff);
	out_n(0xcf8, 4, 0xffffffff);
	assert_int_equal(in_n(0xcf8, 4), 0x80fffffc);
}

static void test_pci_model(void **state)
{
	(void)state;
	assert_int_equal(device_create(&f->vm, "pcihost"), -EEXIST);
	assert_int_equal(device_create(&f->vm, "pcihost:bridge"), -EINVAL);
}

/* ---- Snapshots: the 8042, the PCI host and port 0x80 in one round trip ---- */

/* Every port the three devices answer on, read from fixture @x. */
static void read_platform(struct fixture *x, uint32_t r[6])
{
	struct fixture *keep = f;

	f = x;
	r[0] = inb(0x64);
	r[1] = in_n(0xcf8, 4);
	r[2] = in_n(0xcfc, 4);
	r[3] = inb(0x80);
	r[4] = inb(0x60);
	r[5] = (uint32_t)(f->level[1] | f->level[12] << 1);
	f = keep;
}

static void test_save_load(void **state)
{
	struct fixture *a = f, *b;
	uint32_t ra[6], rb[6];
	int fa;

	(void)state;
	outb(0x60, 0xf2);                          /* identify: FA AB 83 */
	kbc_command(0x60);
	outb(0x60, 0x47);                          /* INT | INT2 | SYS | XLATE */
	kbc_command(0xd3);
	outb(0x60, 0x07);                          /* an aux byte behind them */
	outb(0x60, 0xed);                          /* LEDs: the parameter is pending */
	kbc_command(0xd2);                         /* a controller command pending */
	cfg_write(0, 0, 0, 0x3c, 1, 0x0b);
	cfg_write(0, 0, 0, 0x04, 2, 0x0005);
	out_n(0xcf8, 4, cfg_addr(0, 0, 0, 0x3c));
	outb(0x80, 0x42);
	assert_int_equal(f->level[1], 1);
	fa = trip_save(&a->vm);

	/* A second VM with the same devices but reset (one per process). */
	b = calloc(1, sizeof(*b));
	assert_non_null(b);
	assert_int_equal(vm_init_buses(&b->vm, IO_MODE_LOCK), 0);
	assert_int_equal(bus_attach(b->vm.bus.irq, capture_irq, bus_claim_always, b), 0);
	assert_int_equal(device_create(&b->vm, "i8042"), 0);
	assert_int_equal(device_create(&b->vm, "pcihost"), 0);
	b->p80 = port80_create(&b->vm);
	assert_non_null(b->p80);
	trip_reload(&b->vm, fa);
	b->level[1] = 1;                           /* what the PIC saved */
	assert_int_equal(port80_writes(b->p80), port80_writes(a->p80));
	/* The pending 0xD2 takes the next byte on both. */
	vm_pio_out(&a->vm, 0x60, 1, 0x99);
	vm_pio_out(&b->vm, 0x60, 1, 0x99);
	for (int i = 0; i < 8; i++) {
		read_platform(a, ra);
		read_platform(b, rb);
		assert_memory_equal(ra, rb, sizeof(ra));
	}
	assert_int_equal(ra[2], 0x0b);
	assert_int_equal(ra[3], 0x42);
	close(fa);
	assert_int_equal(atomic_load(&b->bad_irq), 0);
	port80_destroy(b->p80);
	vm_run_exit_hooks(&b->vm);
	bus_detach(b->vm.bus.irq, capture_irq, b);
	vm_fini_buses(&b->vm);
	free(b);
}

static void test_load_refuses(void **state)
{
	uint8_t seventeen = 17, cmd = 0x61, kcmd = 0xf4, zero = 0, vendor = 0x87;
	uint32_t addr = 0x80000001;
	int fa;

	(void)state;
	fa = trip_save(&f->vm);
	trip_assert_patched_refused(&f->vm, fa, "i8042", 0, 9, &seventeen, 1, "17 bytes");
	trip_assert_patched_refused(&f->vm, fa, "i8042", 0, 4, &cmd, 1, "pending command 0x61");
	trip_assert_patched_refused(&f->vm, fa, "i8042", 0, 5, &kcmd, 1, "keyboard command 0xf4");
	trip_assert_patched_refused(&f->vm, fa, "i8042", 0, 11, NULL, 0, "left unread");
	trip_assert_patched_refused(&f->vm, fa, "pcihost", 0, 0, &addr, 4, "0x80000001");
	trip_assert_patched_refused(&f->vm, fa, "pcihost", 0, 4, &zero, 1, "host bridge missing");
	trip_assert_patched_refused(&f->vm, fa, "pcihost", 0, 5, &vendor, 1,
				    "read-only config byte 0 changed");
	trip_assert_patched_refused(&f->vm, fa, "pcihost", 0, 100, NULL, 0, "past its end");
	trip_assert_patched_refused(&f->vm, fa, "port80", 0, 3, NULL, 0, "past its end");
	trip_assert_patched_refused(&f->vm, fa, "port80", 0, 9, NULL, 0, "left unread");
	close(fa);
	assert_int_equal(cfg_read(0, 0, 0, 0x00, 4), 0x12378086);
}

#define BOTH(fn) \
	cmocka_unit_test_setup_teardown(fn, setup_lock, teardown), \
	cmocka_unit_test_setup_teardown(fn, setup_thread, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_port80),
		BOTH(test_cf9),
		BOTH(test_cf9_full),
		BOTH(test_cf9_not_dword),
		BOTH(test_policy),
		BOTH(test_reset_model),
		BOTH(test_i8042_status),
		BOTH(test_i8042_commands),
		BOTH(test_i8042_keyboard),
		BOTH(test_i8042_irq),
		BOTH(test_i8042_pulse_reset),
		BOTH(test_i8042_outport_reset),
		BOTH(test_i8042_model),
		BOTH(test_pci_address),
		BOTH(test_pci_empty),
		BOTH(test_pci_host_bridge),
		cmocka_unit_test_setup_teardown(test_pci_nobridge, setup_lock_nobridge, teardown),
		cmocka_unit_test_setup_teardown(test_pci_nobridge, setup_thread_nobridge, teardown),
		BOTH(test_pci_model),
		BOTH(test_save_load),
		BOTH(test_load_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
