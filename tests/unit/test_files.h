/*
 * Files and buffers for the loader tests: images built in memory go to
 * temporary files for the loaders to open (a teardown deletes them with
 * tmp_files_remove()), and payloads are gzip'ed as the kernel build does.
 * Include after <cmocka.h>.
 */
#pragma once
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

/* Bytes a test owns. */
struct buf {
	uint8_t *p;
	size_t len;
};

static struct {
	char *path[64];
	unsigned n;
} tmp_files;

/* @data in a new file under $TMPDIR (or /tmp), named after the test program. */
static inline const char *tmp_write(const void *data, size_t len)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *path;
	int fd;

	assert_true(asprintf(&path, "%s/%s.XXXXXX", dir, program_invocation_short_name) > 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	assert_true(tmp_files.n < sizeof(tmp_files.path) / sizeof(tmp_files.path[0]));
	tmp_files.path[tmp_files.n++] = path;
	return path;
}

/* @b in a temporary file; the buffer is freed. */
static inline const char *buf_write(struct buf *b)
{
	const char *path = tmp_write(b->p, b->len);

	free(b->p);
	b->p = NULL;
	return path;
}

/* The whole of the file at @path. */
static inline struct buf buf_read(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct buf b = { NULL, 0 };
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	b.p = malloc(n ? n : 1);
	assert_non_null(b.p);
	assert_int_equal(fread(b.p, 1, n, f), (size_t)n);
	b.len = n;
	fclose(f);
	return b;
}

static inline void tmp_files_remove(void)
{
	while (tmp_files.n) {
		unlink(tmp_files.path[--tmp_files.n]);
		free(tmp_files.path[tmp_files.n]);
	}
}

/* @in as one gzip member (what gzip(1) writes), zlib level @level. */
static inline struct buf buf_gzip(const struct buf *in, int level)
{
	z_stream z = { 0 };
	struct buf c;

	assert_int_equal(deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
			 Z_OK);
	c.len = deflateBound(&z, in->len);
	c.p = malloc(c.len);
	assert_non_null(c.p);
	z.next_in = in->p;
	z.avail_in = in->len;
	z.next_out = c.p;
	z.avail_out = c.len;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	c.len = z.total_out;
	deflateEnd(&z);
	return c;
}

/* The kernel build appends the uncompressed size (le32) to the stream. */
static inline void buf_append_size(struct buf *c, size_t orig)
{
	c->p = realloc(c->p, c->len + 4);
	assert_non_null(c->p);
	for (int i = 0; i < 4; i++)
		c->p[c->len++] = (uint8_t)(orig >> (8 * i));
}
