/* The snapshot stream format: round trip, and every kind of damage refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "vmm/stream.h"

static char path[64];

static void write_sample(void)
{
	struct stream s;
	uint8_t big[10000];

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	assert_int_equal(stream_open_write(&s, path), 0);
	stream_section_begin(&s, "alpha", 0, 2);
	stream_put_u32(&s, 0xdeadbeef);
	stream_put_u64(&s, 0x0123456789abcdefull);
	stream_section_end(&s);
	stream_section_begin(&s, "alpha", 1, 1);
	stream_put_u8(&s, 42);
	stream_section_end(&s);
	stream_section_begin(&s, "big", 7, 1);
	stream_put(&s, big, sizeof(big));
	stream_section_end(&s);
	assert_int_equal(stream_close(&s), 0);
}

static long file_size(void)
{
	FILE *f = fopen(path, "rb");
	long n;

	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fclose(f);
	return n;
}

static void poke(long off, uint8_t xor)
{
	FILE *f = fopen(path, "r+b");
	int c;

	fseek(f, off, SEEK_SET);
	c = fgetc(f);
	fseek(f, off, SEEK_SET);
	fputc(c ^ xor, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/tmp/test_stream.%d", getpid());
	write_sample();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static void test_round_trip(void **state)
{
	struct stream s;
	uint32_t version;
	const uint8_t *p;

	(void)state;
	assert_int_equal(stream_open_read(&s, path), 0);
	assert_int_equal(s.nsections, 3);
	assert_int_equal(stream_section_open(&s, "alpha", 1, 1, &version), 0);
	assert_int_equal(version, 1);
	assert_int_equal(stream_get_u8(&s), 42);
	assert_int_equal(stream_section_close(&s), 0);
	assert_int_equal(stream_section_open(&s, "big", 7, 1, NULL), 0);
	assert_int_equal(stream_left(&s), 10000);
	p = stream_get_ptr(&s, 10000);
	assert_non_null(p);
	assert_int_equal(p[9999], (uint8_t)(9999 * 7));
	assert_int_equal(stream_section_close(&s), 0);
	/* alpha/0 never opened: it shows up as unused. */
	assert_string_equal(stream_unused_section(&s)->name, "alpha");
	assert_int_equal(stream_section_open(&s, "alpha", 0, 2, &version), 0);
	assert_int_equal(stream_get_u32(&s), 0xdeadbeef);
	assert_true(stream_get_u64(&s) == 0x0123456789abcdefull);
	assert_int_equal(stream_section_close(&s), 0);
	assert_null(stream_unused_section(&s));
	stream_close(&s);
}

static void test_read_errors(void **state)
{
	struct stream s;

	(void)state;
	/* Reading past a section's end, leaving bytes unread, newer versions, missing. */
	assert_int_equal(stream_open_read(&s, path), 0);
	stream_section_open(&s, "alpha", 1, 1, NULL);
	stream_get_u32(&s);
	assert_int_not_equal(stream_error(&s), 0);
	assert_non_null(strstr(stream_why(&s), "past its end"));
	stream_close(&s);

	assert_int_equal(stream_open_read(&s, path), 0);
	stream_section_open(&s, "alpha", 0, 2, NULL);
	stream_get_u32(&s);
	assert_int_not_equal(stream_section_close(&s), 0);
	assert_non_null(strstr(stream_why(&s), "left unread"));
	stream_close(&s);

	assert_int_equal(stream_open_read(&s, path), 0);
	assert_int_not_equal(stream_section_open(&s, "alpha", 0, 1, NULL), 0);
	assert_non_null(strstr(stream_why(&s), "version 2"));
	stream_close(&s);

	assert_int_equal(stream_open_read(&s, path), 0);
	assert_int_not_equal(stream_section_open(&s, "gamma", 0, 1, NULL), 0);
	assert_non_null(strstr(stream_why(&s), "no section 'gamma'"));
	stream_close(&s);
}

/* Every single flipped byte anywhere in the file is refused at open. */
static void test_every_flip_refused(void **state)
{
	long n = file_size();
	struct stream s;

	(void)state;
	for (long off = 0; off < n; off += (off < 200 || off > n - 200) ? 1 : 97) {
		poke(off, 0x40);
		assert_int_not_equal(stream_open_read(&s, path), 0);
		stream_close(&s);
		poke(off, 0x40);
	}
	assert_int_equal(stream_open_read(&s, path), 0);
	stream_close(&s);
}

static void test_truncation_refused(void **state)
{
	long n = file_size();
	struct stream s;

	(void)state;
	for (long len = n - 1; len >= 0; len -= (len > n - 100 || len < 100) ? 1 : 211) {
		assert_int_equal(truncate(path, len), 0);
		assert_int_not_equal(stream_open_read(&s, path), 0);
		assert_true(strlen(stream_why(&s)) > 0);
		stream_close(&s);
	}
	write_sample();
}

static void test_magic_and_version(void **state)
{
	struct stream s;

	(void)state;
	poke(0, 1);
	assert_int_not_equal(stream_open_read(&s, path), 0);
	assert_non_null(strstr(stream_why(&s), "bad magic"));
	stream_close(&s);
	poke(0, 1);
	poke(8, 2);    /* format version 1 -> 3 */
	assert_int_not_equal(stream_open_read(&s, path), 0);
	assert_non_null(strstr(stream_why(&s), "format version 3"));
	stream_close(&s);
	poke(8, 2);
	assert_int_equal(stream_open_read(&s, path), 0);
	stream_close(&s);
}

static void test_write_misuse(void **state)
{
	struct stream s;

	(void)state;
	assert_int_equal(stream_open_write(&s, path), 0);
	stream_put_u32(&s, 1);           /* outside a section */
	assert_int_not_equal(stream_error(&s), 0);
	stream_close(&s);
	assert_int_equal(stream_open_write(&s, path), 0);
	stream_section_begin(&s, "a-name-that-is-far-too-long-for-a-section", 0, 1);
	assert_int_not_equal(stream_close(&s), 0);
	write_sample();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_read_errors),
		cmocka_unit_test(test_every_flip_refused),
		cmocka_unit_test(test_truncation_refused),
		cmocka_unit_test(test_magic_and_version),
		cmocka_unit_test(test_write_misuse),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
