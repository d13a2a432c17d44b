/*
 * Payload decompression: each format is produced here by its own library
 * (and, where installed, by the command-line tool the kernel build uses),
 * then decoded by decompress() and compared byte for byte.  Also the
 * output bound, truncated and corrupt input, and refused formats.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lz4.h>
#include <lzma.h>
#include <zstd.h>
#include "vmm/decompress.h"
#include "tests/unit/test_files.h"

#define MiB (1u << 20)

/* Text-like bytes: compressible, but not a trivial run. */
static struct buf sample(size_t len, uint32_t seed)
{
	static const char words[][8] = { "kernel ", "vmlinux", " page ", "e820 ", "initrd",
					 "\x7f\x00\x01\x02", "boot ", "\xff\xfe" };
	struct buf b = { malloc(len), len };
	uint32_t x = seed;

	assert_non_null(b.p);
	for (size_t i = 0; i < len;) {
		x = x * 1103515245 + 12345;
		if ((x >> 16) % 5 == 0) {
			b.p[i++] = (uint8_t)(x >> 8);
		} else {
			const char *w = words[(x >> 20) % 8];
			for (size_t k = 0; k < 7 && i < len; k++)
				b.p[i++] = (uint8_t)w[k];
		}
	}
	return b;
}

static struct buf zeros(size_t len)
{
	struct buf b = { calloc(1, len), len };

	assert_non_null(b.p);
	return b;
}

static struct buf gz(const struct buf *in)
{
	return buf_gzip(in, 9);
}

/* As scripts/xz_wrap.sh: CRC32 check, the x86 BCJ filter, then LZMA2. */
static struct buf xz(const struct buf *in)
{
	lzma_options_lzma opt;
	lzma_filter filters[3] = {
		{ .id = LZMA_FILTER_X86 }, { .id = LZMA_FILTER_LZMA2, .options = &opt },
		{ .id = LZMA_VLI_UNKNOWN },
	};
	struct buf c = { NULL, 0 };
	size_t cap = lzma_stream_buffer_bound(in->len);

	assert_false(lzma_lzma_preset(&opt, 1));
	c.p = malloc(cap);
	assert_int_equal(lzma_stream_buffer_encode(filters, LZMA_CHECK_CRC32, NULL, in->p, in->len,
						   c.p, &c.len, cap), LZMA_OK);
	return c;
}

static struct buf lzma_alone(const struct buf *in)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_options_lzma opt;
	struct buf c;

	assert_false(lzma_lzma_preset(&opt, 1));
	assert_int_equal(lzma_alone_encoder(&s, &opt), LZMA_OK);
	c.len = in->len + in->len / 2 + 4096;
	c.p = malloc(c.len);
	s.next_in = in->p;
	s.avail_in = in->len;
	s.next_out = c.p;
	s.avail_out = c.len;
	assert_int_equal(lzma_code(&s, LZMA_FINISH), LZMA_STREAM_END);
	c.len = s.total_out;
	lzma_end(&s);
	return c;
}

static struct buf zst(const struct buf *in)
{
	struct buf c = { malloc(ZSTD_compressBound(in->len)), 0 };

	c.len = ZSTD_compress(c.p, ZSTD_compressBound(in->len), in->p, in->len, 3);
	assert_false(ZSTD_isError(c.len));
	return c;
}

static void put_le32(struct buf *c, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		c->p[c->len++] = (uint8_t)(v >> (8 * i));
}

/* The legacy frame as `lz4 -l` writes it; @frames > 1 repeats the magic. */
static struct buf lz4_legacy(const struct buf *in, unsigned frames)
{
	size_t nblocks = (in->len + LZ4_LEGACY_BLOCK_MAX - 1) / LZ4_LEGACY_BLOCK_MAX;
	struct buf c = { malloc(4 * frames + nblocks * (4 + LZ4_compressBound(LZ4_LEGACY_BLOCK_MAX))), 0 };

	put_le32(&c, LZ4_LEGACY_MAGIC);
	for (size_t off = 0, i = 0; off < in->len; off += LZ4_LEGACY_BLOCK_MAX, i++) {
		int n = in->len - off < LZ4_LEGACY_BLOCK_MAX ? (int)(in->len - off) : (int)LZ4_LEGACY_BLOCK_MAX;
		int clen;

		if (i && i < frames)
			put_le32(&c, LZ4_LEGACY_MAGIC);
		clen = LZ4_compress_default((const char *)in->p + off, (char *)c.p + c.len + 4, n,
					    LZ4_compressBound(n));
		assert_true(clen > 0);
		put_le32(&c, (uint32_t)clen);
		c.len += clen;
	}
	return c;
}

static struct buf lz4_one(const struct buf *in)
{
	return lz4_legacy(in, 1);
}

struct format {
	const char *name;
	enum kcomp kind;
	struct buf (*compress)(const struct buf *in);
};

static const struct format formats[] = {
	{ "gzip", KCOMP_GZIP, gz },
	{ "xz", KCOMP_XZ, xz },
	{ "lzma", KCOMP_LZMA, lzma_alone },
	{ "zstd", KCOMP_ZSTD, zst },
	{ "lz4", KCOMP_LZ4, lz4_one },
};
#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

static void expect_roundtrip(const struct buf *c, const struct buf *orig, size_t max)
{
	char err[256];
	void *out = NULL;
	size_t out_len = 0;
	int ret = decompress(c->p, c->len, max, &out, &out_len, err, sizeof(err));

	if (ret)
		fail_msg("decompress: %d %s", ret, err);
	assert_int_equal(out_len, orig->len);
	assert_memory_equal(out, orig->p, orig->len);
	free(out);
}

static int expect_error(const struct buf *c, size_t max, char *err, size_t errlen)
{
	void *out = (void *)0x1;
	size_t out_len = 12345;
	int ret = decompress(c->p, c->len, max, &out, &out_len, err, errlen);

	assert_true(ret < 0);
	/* A failure hands nothing back. */
	assert_ptr_equal(out, (void *)0x1);
	assert_int_equal(out_len, 12345);
	assert_true(err[0] != '\0');
	return ret;
}

static void test_detect(void **state)
{
	struct buf d = sample(64 * 1024, 1);

	(void)state;
	for (size_t i = 0; i < NFORMATS; i++) {
		struct buf c = formats[i].compress(&d);

		assert_int_equal(decompress_detect(c.p, c.len), formats[i].kind);
		assert_string_equal(decompress_name(formats[i].kind), formats[i].name);
		free(c.p);
	}
	assert_int_equal(decompress_detect("\x7f" "ELF\x02", 5), KCOMP_NONE);
	assert_int_equal(decompress_detect("BZh91AY&SY", 10), KCOMP_BZIP2);
	assert_int_equal(decompress_detect("\x89LZO\x00\x0d\x0a\x1a\x0a\x10", 10), KCOMP_LZO);
	assert_int_equal(decompress_detect("\x89LZO", 4), KCOMP_UNKNOWN);
	assert_int_equal(decompress_detect("hello", 5), KCOMP_UNKNOWN);
	assert_int_equal(decompress_detect("\x1f", 1), KCOMP_UNKNOWN);
	free(d.p);
}

/* Every format, with and without the kernel's appended size. */
static void test_roundtrip(void **state)
{
	struct buf d = sample(1 * MiB + 123, 2);

	(void)state;
	for (size_t i = 0; i < NFORMATS; i++) {
		struct buf c = formats[i].compress(&d);

		expect_roundtrip(&c, &d, DECOMPRESS_MAX_OUT);
		buf_append_size(&c, d.len);
		expect_roundtrip(&c, &d, DECOMPRESS_MAX_OUT);
		/* A bound of exactly the output size is enough. */
		expect_roundtrip(&c, &d, d.len);
		free(c.p);
	}
	free(d.p);
}

/* An uncompressed ELF payload passes through. */
static void test_uncompressed(void **state)
{
	struct buf d = sample(100000, 3);
	char err[256];

	(void)state;
	memcpy(d.p, "\x7f" "ELF", 4);
	expect_roundtrip(&d, &d, d.len);
	assert_int_equal(expect_error(&d, d.len - 1, err, sizeof(err)), -EFBIG);
	free(d.p);
}

/* Several 8 MiB blocks, and legacy frames concatenated (magic repeated). */
static void test_lz4_blocks(void **state)
{
	struct buf d = sample(2 * LZ4_LEGACY_BLOCK_MAX + 4321, 4);
	struct buf one = lz4_legacy(&d, 1), three = lz4_legacy(&d, 3);

	(void)state;
	assert_true(three.len == one.len + 8);
	expect_roundtrip(&one, &d, DECOMPRESS_MAX_OUT);
	expect_roundtrip(&three, &d, DECOMPRESS_MAX_OUT);
	buf_append_size(&three, d.len);
	expect_roundtrip(&three, &d, DECOMPRESS_MAX_OUT);
	free(one.p);
	free(three.p);
	free(d.p);
}

/* 16 MiB of zeros compresses to a few KiB; a 1 MiB bound must refuse it. */
static void test_bomb(void **state)
{
	struct buf d = zeros(16 * MiB);
	char err[256];

	(void)state;
	for (size_t i = 0; i < NFORMATS; i++) {
		struct buf c = formats[i].compress(&d);

		assert_true(c.len < MiB);
		buf_append_size(&c, d.len);
		assert_int_equal(expect_error(&c, MiB, err, sizeof(err)), -EFBIG);
		assert_non_null(strstr(err, "limit"));
		/* One byte short of the real size is refused too. */
		assert_int_equal(expect_error(&c, d.len - 1, err, sizeof(err)), -EFBIG);
		free(c.p);
	}
	free(d.p);
}

static void test_truncated(void **state)
{
	struct buf d = sample(1 * MiB, 5);
	char err[256];

	(void)state;
	for (size_t i = 0; i < NFORMATS; i++) {
		struct buf c = formats[i].compress(&d);

		c.len /= 2;
		assert_int_equal(expect_error(&c, DECOMPRESS_MAX_OUT, err, sizeof(err)), -EBADMSG);
		assert_non_null(strstr(err, formats[i].name));
		free(c.p);
	}
	free(d.p);
}

/* Formats with a checksum notice a flipped byte; lz4 a bad block size. */
static void test_corrupt(void **state)
{
	struct buf d = sample(1 * MiB, 6);
	struct buf (*const checked[])(const struct buf *) = { gz, xz };
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(checked) / sizeof(checked[0]); i++) {
		struct buf c = checked[i](&d);

		c.p[c.len / 2] ^= 0x55;
		assert_int_equal(expect_error(&c, DECOMPRESS_MAX_OUT, err, sizeof(err)), -EBADMSG);
		free(c.p);
	}
	struct buf c = lz4_one(&d);

	c.p[4] = 0xff;               /* block size now far past the end */
	c.p[7] = 0x7f;
	assert_int_equal(expect_error(&c, DECOMPRESS_MAX_OUT, err, sizeof(err)), -EBADMSG);
	free(c.p);
	free(d.p);
}

static void test_unsupported(void **state)
{
	struct buf bz = { (uint8_t *)"BZh91AY&SY\x01\x02\x03\x04", 14 };
	struct buf lzo = { (uint8_t *)"\x89LZO\x00\x0d\x0a\x1a\x0a\x10\x30", 11 };
	struct buf junk = { (uint8_t *)"\x12\x34\x56\x78\x9a", 5 };
	char err[256];

	(void)state;
	assert_int_equal(expect_error(&bz, MiB, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "bzip2 compression is not supported"));
	assert_int_equal(expect_error(&lzo, MiB, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "lzo"));
	assert_int_equal(expect_error(&junk, MiB, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "12 34 56 78"));
}

/* ---- the command-line tools the kernel build runs ---------------------- */

static int have_tool(const char *tool)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

static void test_cli_tools(void **state)
{
	/* As the kernel's scripts do it, with faster levels; lz4 gets 2 blocks. */
	static const struct { const char *tool, *args; enum kcomp kind; size_t len; } cli[] = {
		{ "gzip", "-n -c", KCOMP_GZIP, MiB },
		{ "xz", "--check=crc32 --x86 --lzma2=preset=1,dict=32MiB -c", KCOMP_XZ, MiB },
		{ "lzma", "-1 -c", KCOMP_LZMA, MiB },
		{ "zstd", "-q -c", KCOMP_ZSTD, MiB },
		{ "lz4", "-q -l -c", KCOMP_LZ4, LZ4_LEGACY_BLOCK_MAX + MiB },
	};
	struct buf d = sample(LZ4_LEGACY_BLOCK_MAX + MiB, 7);
	char in[] = "/tmp/test_decompress.XXXXXX", out[sizeof(in) + 4], cmd[512];
	unsigned ran = 0;
	int fd;

	(void)state;
	fd = mkstemp(in);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, d.p, d.len), (ssize_t)d.len);
	close(fd);
	snprintf(out, sizeof(out), "%s.out", in);
	for (size_t i = 0; i < sizeof(cli) / sizeof(cli[0]); i++) {
		struct buf c;

		if (!have_tool(cli[i].tool)) {
			printf("SKIPPED: %s is not installed\n", cli[i].tool);
			continue;
		}
		snprintf(cmd, sizeof(cmd), "head -c %zu %s | %s %s > %s", cli[i].len, in, cli[i].tool,
			 cli[i].args, out);
		assert_int_equal(system(cmd), 0);
		c = buf_read(out);
		assert_int_equal(decompress_detect(c.p, c.len), cli[i].kind);
		buf_append_size(&c, cli[i].len);
		expect_roundtrip(&c, &(struct buf){ d.p, cli[i].len }, cli[i].len);
		free(c.p);
		ran++;
	}
	unlink(in);
	unlink(out);
	free(d.p);
	if (!ran)
		skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_uncompressed),
		cmocka_unit_test(test_lz4_blocks),
		cmocka_unit_test(test_bomb),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_unsupported),
		cmocka_unit_test(test_cli_tools),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
