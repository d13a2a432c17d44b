/*
 * fw_cfg through the port bus, as a firmware reads it: select with a
 * 16-bit write to 0x510, read bytes from 0x511.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "bus/message.h"
#include "devices/fw_cfg.h"
#include "vmm/device.h"
#include "vmm/vm.h"
#include "restore_trip.h"

struct fixture {
	struct vm vm;
	struct fw_cfg *fw;
};

static int setup_mode(void **state, enum io_mode mode)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->vm.ncpus = 3;
	f->vm.mem.size = 0x12345678ull << 4;
	assert_int_equal(vm_init_buses(&f->vm, mode), 0);
	f->fw = fw_cfg_create(&f->vm);
	assert_non_null(f->fw);
	*state = f;
	return 0;
}

static int setup_lock(void **state) { return setup_mode(state, IO_MODE_LOCK); }
static int setup_thread(void **state) { return setup_mode(state, IO_MODE_THREAD); }

static int teardown(void **state)
{
	struct fixture *f = *state;

	fw_cfg_destroy(f->fw);
	vm_fini_buses(&f->vm);
	free(f);
	return 0;
}

static void sel(struct fixture *f, uint16_t key)
{
	struct msg_pio m = { .port = FW_CFG_PORT_SEL, .size = 2, .write = true, .value = key };

	assert_true(range_bus_send(f->vm.bus.pio, FW_CFG_PORT_SEL, &m));
}

static uint32_t rd(struct fixture *f, uint8_t size)
{
	struct msg_pio m = { .port = FW_CFG_PORT_DATA, .size = size, .value = 0xdeadbeef };

	assert_true(range_bus_send(f->vm.bus.pio, FW_CFG_PORT_DATA, &m));
	return m.value;
}

static void read_bytes(struct fixture *f, uint16_t key, uint8_t *buf, unsigned n)
{
	sel(f, key);
	for (unsigned i = 0; i < n; i++) {
		uint32_t v = rd(f, 1);

		assert_true(v <= 0xff);
		buf[i] = (uint8_t)v;
	}
}

static void test_signature(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[8];

	read_bytes(f, FW_CFG_SIGNATURE, buf, 8);
	assert_memory_equal(buf, "QEMU\0\0\0\0", 8);
}

static void test_id(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[4];

	read_bytes(f, FW_CFG_ID, buf, 4);
	assert_memory_equal(buf, "\x01\0\0\0", 4);
}

static void test_ram_size(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[10];
	uint64_t v = 0;

	read_bytes(f, FW_CFG_RAM_SIZE, buf, 10);
	for (int i = 7; i >= 0; i--)
		v = v << 8 | buf[i];
	assert_int_equal(v, f->vm.mem.size);
	assert_int_equal(buf[8], 0);
	assert_int_equal(buf[9], 0);
}

static void test_cpus(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[3];

	read_bytes(f, FW_CFG_NB_CPUS, buf, 3);
	assert_int_equal(buf[0] | buf[1] << 8, 3);
	assert_int_equal(buf[2], 0);
	f->vm.ncpus = 0x102;
	read_bytes(f, FW_CFG_MAX_CPUS, buf, 2);
	assert_int_equal(buf[0] | buf[1] << 8, 0x102);
}

/* Selecting again rewinds, even the same key in the middle of an item. */
static void test_reselect_rewinds(void **state)
{
	struct fixture *f = *state;

	sel(f, FW_CFG_SIGNATURE);
	assert_int_equal(rd(f, 1), 'Q');
	assert_int_equal(rd(f, 1), 'E');
	sel(f, FW_CFG_SIGNATURE);
	assert_int_equal(rd(f, 1), 'Q');
	sel(f, FW_CFG_NB_CPUS);
	assert_int_equal(rd(f, 1), 3);
}

static void test_unknown_key_zero(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[4];

	read_bytes(f, 0x0019, buf, 4);
	assert_memory_equal(buf, "\0\0\0\0", 4);
	read_bytes(f, 0x8003, buf, 4);
	assert_memory_equal(buf, "\0\0\0\0", 4);
}

/* A 32-bit read streams four bytes, low byte first; writes change nothing. */
static void test_wide_read_and_write(void **state)
{
	struct fixture *f = *state;
	struct msg_pio w = { .port = FW_CFG_PORT_DATA, .size = 1, .write = true, .value = 0x55 };

	sel(f, FW_CFG_SIGNATURE);
	assert_true(range_bus_send(f->vm.bus.pio, FW_CFG_PORT_DATA, &w));
	assert_int_equal(rd(f, 4), 'Q' | 'E' << 8 | 'M' << 16 | (uint32_t)'U' << 24);
	assert_int_equal(rd(f, 4), 0);
}

static void test_device_model(void **state)
{
	struct fixture *f = *state;

	/* The fixture's device owns the ports, so a second one must fail. */
	assert_non_null(device_model_find("fwcfg"));
	assert_int_not_equal(device_create(&f->vm, "fwcfg"), 0);
	assert_int_not_equal(device_create(&f->vm, "fwcfg:1"), 0);
}

/* Half way through the RAM size: the loaded device streams the rest. */
static void test_save_load(void **state)
{
	struct fixture *f = *state, *g;
	int fa;

	sel(f, FW_CFG_RAM_SIZE);
	assert_int_equal(rd(f, 2), 0x5678ull << 4 & 0xffff);
	assert_int_equal(rd(f, 1), (0x12345678ull << 4) >> 16 & 0xff);
	fa = trip_save(&f->vm);
	setup_lock(state);
	g = *state;
	*state = f;
	trip_reload(&g->vm, fa);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rd(g, 2), rd(f, 2));
	close(fa);
	teardown((void **)&g);
}

static void test_load_refuses(void **state)
{
	struct fixture *f = *state;
	uint32_t key = 0x10000, offset = 5;
	int fa;

	sel(f, FW_CFG_SIGNATURE);
	fa = trip_save(&f->vm);
	trip_assert_patched_refused(&f->vm, fa, "fwcfg", 0, 0, &key, 4, "bad selector 0x10000");
	trip_assert_patched_refused(&f->vm, fa, "fwcfg", 0, 4, &offset, 4,
				    "offset 5 beyond item 0 (4 bytes)");
	trip_assert_patched_refused(&f->vm, fa, "fwcfg", 0, 6, NULL, 0, "past its end");
	trip_assert_patched_refused(&f->vm, fa, "fwcfg", 0, 9, NULL, 0, "left unread");
	assert_int_equal(rd(f, 4), 0x554d4551);   /* "QEMU": still at the start */
	close(fa);
}

#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup_lock, teardown), \
		cmocka_unit_test_setup_teardown(t, setup_thread, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_signature),
		BOTH(test_id),
		BOTH(test_ram_size),
		BOTH(test_cpus),
		BOTH(test_reselect_rewinds),
		BOTH(test_unknown_key_zero),
		BOTH(test_wide_read_and_write),
		BOTH(test_save_load),
		BOTH(test_load_refuses),
		cmocka_unit_test_setup_teardown(test_device_model, setup_lock, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
