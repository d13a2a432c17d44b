/*
 * The frontend's command line: defaults, every option, the QEMU spellings,
 * --mem's bare-MiB rule, and the values and arguments it must refuse.
 * options_parse() rewrites the QEMU aliases in argv, so each case gets a
 * fresh writable argv array.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include "unix/options.h"

#define MiB (1ull << 20)
#define MAX_ARGS 64

static struct vmm_options o;
static char err[256];
static char *argv_store[MAX_ARGS + 1];

/* Parse "vmm" followed by the NULL-terminated arguments. */
static enum opt_result parse(const char *first, ...)
{
	va_list ap;
	int argc = 0;

	argv_store[argc++] = (char *)"vmm";
	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *)) {
		assert_true(argc < MAX_ARGS);
		argv_store[argc++] = (char *)a;
	}
	va_end(ap);
	argv_store[argc] = NULL;
	err[0] = '\0';
	return options_parse(argc, argv_store, &o, err, sizeof(err));
}

/* A refused command line says why. */
#define assert_refused(...) do {                                        \
		assert_int_equal(parse(__VA_ARGS__, NULL), OPT_ERROR);      \
		assert_true(strlen(err) > 0);                                \
	} while (0)

static void test_defaults(void **state)
{
	(void)state;
	assert_int_equal(parse("--kernel", "k.elf", NULL), OPT_RUN);
	assert_string_equal(o.kernel, "k.elf");
	assert_string_equal(o.cmdline, "");
	assert_int_equal(o.nmodules, 0);
	assert_int_equal(o.cpus, 1);
	assert_int_equal(o.mem, 128 * MiB);
	assert_int_equal(o.io, IO_MODE_THREAD);
	assert_true(o.pin);
	assert_int_equal(o.npin, 0);
	assert_false(o.stats);
	assert_true(o.default_devices);
	assert_int_equal(o.ndevices, 0);
	assert_int_equal(o.spin, -1);
	assert_int_equal(o.verbose, 0);
}

static void test_every_option(void **state)
{
	(void)state;
	assert_int_equal(parse("--kernel", "/boot/k", "--cmdline", "console=ttyS0 quiet",
			       "--module", "m1.bin arg", "--module", "m2.bin",
			       "--cpus", "4", "--mem", "1G", "--io", "lock", "--pin", "2,3,5",
			       "--stats", "--device", "uart:0x2f8,3", "--device", "testdev",
			       "--no-defaults", "--spin", "2000", "-v", "--verbose", NULL),
			 OPT_RUN);
	assert_string_equal(o.kernel, "/boot/k");
	assert_string_equal(o.cmdline, "console=ttyS0 quiet");
	assert_int_equal(o.nmodules, 2);
	assert_string_equal(o.modules[0], "m1.bin arg");
	assert_string_equal(o.modules[1], "m2.bin");
	assert_int_equal(o.cpus, 4);
	assert_int_equal(o.mem, 1024 * MiB);
	assert_int_equal(o.io, IO_MODE_LOCK);
	assert_true(o.pin);
	assert_int_equal(o.npin, 3);
	assert_int_equal(o.pin_cpus[0], 2);
	assert_int_equal(o.pin_cpus[1], 3);
	assert_int_equal(o.pin_cpus[2], 5);
	assert_true(o.stats);
	assert_int_equal(o.ndevices, 2);
	assert_string_equal(o.devices[0], "uart:0x2f8,3");
	assert_string_equal(o.devices[1], "testdev");
	assert_false(o.default_devices);
	assert_int_equal(o.spin, 2000);
	assert_int_equal(o.verbose, 2);
}

static void test_options_in_any_order(void **state)
{
	(void)state;
	assert_int_equal(parse("--cpus", "2", "--io", "thread", "--kernel", "k", NULL), OPT_RUN);
	assert_string_equal(o.kernel, "k");
	assert_int_equal(o.cpus, 2);
	assert_int_equal(o.io, IO_MODE_THREAD);
	/* The last one wins, and a new parse starts from the defaults. */
	assert_int_equal(parse("--kernel", "a", "--kernel", "b", "--pin", "off", NULL), OPT_RUN);
	assert_string_equal(o.kernel, "b");
	assert_false(o.pin);
	assert_int_equal(parse("--kernel", "a", NULL), OPT_RUN);
	assert_true(o.pin);
	assert_int_equal(o.cpus, 1);
}

static void test_qemu_aliases(void **state)
{
	(void)state;
	assert_int_equal(parse("-kernel", "vmlinux", "-append", "root=/dev/sda",
			       "-smp", "3", "-m", "256", NULL), OPT_RUN);
	assert_string_equal(o.kernel, "vmlinux");
	assert_string_equal(o.cmdline, "root=/dev/sda");
	assert_int_equal(o.cpus, 3);
	assert_int_equal(o.mem, 256 * MiB);
	assert_int_equal(parse("--kernel", "k", "--append", "x", "--smp", "2", "-m", "1G", NULL),
			 OPT_RUN);
	assert_string_equal(o.cmdline, "x");
	assert_int_equal(o.cpus, 2);
	assert_int_equal(o.mem, 1024 * MiB);
}

static void test_mem_sizes(void **state)
{
	static const struct { const char *arg; uint64_t bytes; } ok[] = {
		{ "512", 512 * MiB },        /* a bare number is MiB, as in QEMU */
		{ "2", 2 * MiB },
		{ "64", 64 * MiB },
		{ "4096", 4096 * MiB },
		{ "512M", 512 * MiB },
		{ "2G", 2048 * MiB },
		{ "2048K", 2 * MiB },
		{ "3584M", 3584 * MiB },
		{ "1T", 1024 * 1024 * MiB },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(parse("--kernel", "k", "--mem", ok[i].arg, NULL), OPT_RUN);
		if (o.mem != ok[i].bytes)
			fail_msg("--mem %s gave %llu bytes", ok[i].arg, (unsigned long long)o.mem);
	}
}

static void test_mem_refused(void **state)
{
	static const char *const bad[] = {
		"0", "1", "1M", "1K", "2047K",     /* below 2 MiB */
		"4097K",                           /* not whole pages */
		"abc", "", "12X", "-64", "1.5G",
		"2T",                              /* above 1 TiB */
		"99999999999999999999999",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse("--kernel", "k", "--mem", bad[i], NULL) != OPT_ERROR)
			fail_msg("--mem '%s' accepted as %llu bytes", bad[i],
				 (unsigned long long)o.mem);
}

static void test_cpus(void **state)
{
	(void)state;
	assert_int_equal(parse("--kernel", "k", "--cpus", "64", NULL), OPT_RUN);
	assert_int_equal(o.cpus, 64);
	assert_refused("--kernel", "k", "--cpus", "0");
	assert_refused("--kernel", "k", "--cpus", "65");
	assert_refused("--kernel", "k", "--cpus", "abc");
	assert_refused("--kernel", "k", "--cpus", "-1");
	assert_refused("--kernel", "k", "--cpus", "2x");
	assert_refused("--kernel", "k", "--cpus", "");
	assert_refused("--kernel", "k", "--cpus", "99999999999999999999999");
	assert_refused("--kernel", "k", "-smp", "0");
}

static void test_io_pin_spin(void **state)
{
	(void)state;
	assert_refused("--kernel", "k", "--io", "foo");
	assert_refused("--kernel", "k", "--io", "");
	assert_refused("--kernel", "k", "--io", "Thread");

	assert_int_equal(parse("--kernel", "k", "--pin", "on", NULL), OPT_RUN);
	assert_true(o.pin);
	assert_int_equal(o.npin, 0);
	assert_int_equal(parse("--kernel", "k", "--pin", "7", NULL), OPT_RUN);
	assert_int_equal(o.npin, 1);
	assert_int_equal(o.pin_cpus[0], 7);
	assert_refused("--kernel", "k", "--pin", "1,x");
	assert_refused("--kernel", "k", "--pin", "garbage");
	assert_refused("--kernel", "k", "--pin", "");
	assert_refused("--kernel", "k", "--pin", ",");
	assert_refused("--kernel", "k", "--pin", "-1");
	assert_refused("--kernel", "k", "--pin", "1;2");

	assert_int_equal(parse("--kernel", "k", "--spin", "0", NULL), OPT_RUN);
	assert_int_equal(o.spin, 0);
	assert_refused("--kernel", "k", "--spin", "abc");
	assert_refused("--kernel", "k", "--spin", "-5");
}

static void test_devices(void **state)
{
	(void)state;
	assert_int_equal(parse("--kernel", "k", "--device", "uart", NULL), OPT_RUN);
	assert_int_equal(o.ndevices, 1);
	assert_int_equal(parse("--kernel", "k", "--device", "testdev:0xe0,0xfebf0000", NULL),
			 OPT_RUN);
	assert_string_equal(o.devices[0], "testdev:0xe0,0xfebf0000");
	assert_refused("--kernel", "k", "--device", "nosuchdevice");
	assert_true(strstr(err, "nosuchdevice") != NULL);
	assert_refused("--kernel", "k", "--device", "uartx:0x3f8");
	assert_refused("--kernel", "k", "--device", "");
}

static void test_too_many_modules(void **state)
{
	char *args[2 + 2 * (OPT_MAX_MODULES + 1) + 1];
	int argc = 0;

	(void)state;
	args[argc++] = (char *)"vmm";
	args[argc++] = (char *)"--kernel=k";
	for (int i = 0; i <= OPT_MAX_MODULES; i++) {
		args[argc++] = (char *)"--module";
		args[argc++] = (char *)"m.bin";
	}
	args[argc] = NULL;
	assert_int_equal(options_parse(argc, args, &o, err, sizeof(err)), OPT_ERROR);
	assert_int_equal(options_parse(argc - 2, args, &o, err, sizeof(err)), OPT_RUN);
	assert_int_equal(o.nmodules, OPT_MAX_MODULES);
}

static void test_bad_command_lines(void **state)
{
	(void)state;
	assert_refused("--cpus", "2");               /* no kernel */
	assert_true(strstr(err, "kernel") != NULL);
	assert_int_equal(parse(NULL), OPT_ERROR);
	assert_refused("--kernel", "k", "stray");
	assert_true(strstr(err, "stray") != NULL);
	assert_refused("stray", "--kernel", "k");
	assert_refused("--kernel", "k", "--bogus");
	assert_true(strstr(err, "--bogus") != NULL);
	assert_refused("--kernel", "k", "-x");
	assert_refused("--kernel");                  /* missing argument */
	assert_refused("--kernel", "k", "--cpus");
	assert_refused("--kernel", "k", "--stats=yes");
}

static void test_help_and_version_exit_ok(void **state)
{
	FILE *saved = stdout;

	(void)state;
	/* Keep the usage text out of the test log. */
	stdout = fopen("/dev/null", "w");
	assert_non_null(stdout);
	assert_int_equal(parse("--help", NULL), OPT_EXIT_OK);
	assert_int_equal(parse("--kernel", "k", "--help", NULL), OPT_EXIT_OK);
	assert_int_equal(parse("--version", NULL), OPT_EXIT_OK);
	fclose(stdout);
	stdout = saved;
}

/*
 * Each parse starts afresh, whatever the previous one left behind: here a
 * refused short option in the middle of a cluster ("-vxv", or a mistyped
 * QEMU option "-kernelx" read as -k -e -r ...).  getopt keeps its place in
 * the cluster across calls unless it is reset with optind = 0.
 */
static void check_afresh(const char *cluster)
{
	char *first[] = { (char *)"vmm", (char *)cluster, (char *)"--kernel", (char *)"k", NULL };
	enum opt_result r;

	assert_int_equal(options_parse(4, first, &o, err, sizeof(err)), OPT_ERROR);
	r = parse("--kernel", "k2", NULL);
	if (r != OPT_RUN)
		fail_msg("parse after '%s' refused: %s", cluster, err);
	assert_int_equal(o.verbose, 0);
	assert_string_equal(o.kernel, "k2");
}

static void test_parse_after_error_starts_afresh(void **state)
{
	(void)state;
	check_afresh("-vxv");
	check_afresh("-kernelx");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_option),
		cmocka_unit_test(test_options_in_any_order),
		cmocka_unit_test(test_qemu_aliases),
		cmocka_unit_test(test_mem_sizes),
		cmocka_unit_test(test_mem_refused),
		cmocka_unit_test(test_cpus),
		cmocka_unit_test(test_io_pin_spin),
		cmocka_unit_test(test_devices),
		cmocka_unit_test(test_too_many_modules),
		cmocka_unit_test(test_bad_command_lines),
		cmocka_unit_test(test_help_and_version_exit_ok),
		cmocka_unit_test(test_parse_after_error_starts_afresh),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
