/* The snapshot stream format: round trip, and every kind of damage refused. */
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* Temporary files stream_open_write left beside @path. */
static int leftovers(void)
{
	char pattern[96];
	glob_t g;
	int n;

	snprintf(pattern, sizeof(pattern), "%s.tmp.*", path);
	if (glob(pattern, 0, NULL, &g))
		return 0;
	n = (int)g.gl_pathc;
	globfree(&g);
	return n;
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
	/* Failed writes leave the file that was there whole, and no temporary. */
	assert_int_equal(stream_open_read(&s, path), 0);
	assert_int_equal(s.nsections, 3);
	stream_close(&s);
	assert_int_equal(leftovers(), 0);
	write_sample();
}

/*
 * Padding puts data on a page of the file: at an odd offset the pad is
 * written and skipped again, the data can be mapped from the file (a file
 * the stream opened itself), and not from a buffer in memory.
 */
static void test_align_and_map(void **state)
{
	struct stream s, m;
	uint8_t page[4096];
	const uint8_t *p;
	uint64_t off;
	int fd;

	(void)state;
	memset(page, 0x5a, sizeof(page));
	assert_int_equal(stream_open_write(&s, path), 0);
	stream_section_begin(&s, "run", 0, 1);
	stream_put_u8(&s, 1);                 /* an odd offset before the pad */
	stream_put_align(&s, 4096);
	stream_put(&s, page, sizeof(page));
	stream_put_u8(&s, 2);
	stream_section_end(&s);
	assert_int_equal(stream_close(&s), 0);

	assert_int_equal(stream_open_read(&s, path), 0);
	assert_int_equal(stream_section_open(&s, "run", 0, 1, NULL), 0);
	assert_int_equal(stream_get_u8(&s), 1);
	stream_get_align(&s, 4096);
	p = stream_get_ptr(&s, sizeof(page));
	assert_non_null(p);
	assert_memory_equal(p, page, sizeof(page));
	fd = stream_file_of(&s, p, &off);
	assert_true(fd >= 0);
	assert_int_equal(off % 4096, 0);
	/* What a restore maps is the page written. */
	void *map = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, (off_t)off);
	assert_true(map != MAP_FAILED);
	assert_memory_equal(map, page, sizeof(page));
	munmap(map, 4096);
	assert_int_equal(stream_get_u8(&s), 2);
	assert_int_equal(stream_section_close(&s), 0);

	/* The same bytes in a caller's buffer: nothing to map from. */
	assert_int_equal(stream_open_read_mem(&m, s.map, s.size, "buffer"), 0);
	assert_int_equal(stream_section_open(&m, "run", 0, 1, NULL), 0);
	stream_get_u8(&m);
	stream_get_align(&m, 4096);
	p = stream_get_ptr(&m, sizeof(page));
	assert_memory_equal(p, page, sizeof(page));
	assert_int_equal(stream_file_of(&m, p, &off), -1);
	stream_get_u8(&m);
	assert_int_equal(stream_section_close(&m), 0);
	stream_close(&m);
	stream_close(&s);
	write_sample();
}

/* A section copied from one stream to another arrives unchanged. */
static void test_put_section(void **state)
{
	char copy[80];
	struct stream in, out;
	const uint8_t *p;

	(void)state;
	snprintf(copy, sizeof(copy), "%s.copy", path);
	assert_int_equal(stream_open_read(&in, path), 0);
	assert_int_equal(stream_open_write(&out, copy), 0);
	stream_put_section(&out, &in, stream_section_find(&in, "big", 7));
	assert_int_equal(stream_close(&out), 0);
	stream_close(&in);
	assert_int_equal(stream_open_read(&in, copy), 0);
	assert_int_equal(in.nsections, 1);
	assert_int_equal(stream_section_open(&in, "big", 7, 1, NULL), 0);
	p = stream_get_ptr(&in, 10000);
	assert_non_null(p);
	for (unsigned i = 0; i < 10000; i++)
		assert_int_equal(p[i], (uint8_t)(i * 7));
	assert_int_equal(stream_section_close(&in), 0);
	stream_close(&in);
	unlink(copy);
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
		cmocka_unit_test(test_align_and_map),
		cmocka_unit_test(test_put_section),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
