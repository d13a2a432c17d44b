/*
 * Host-side decompression of a bzImage payload.
 *
 * Spec: the kernel's magic numbers (lib/decompress.c), gzip (RFC 1952),
 * the .xz file format 1.1.0, the .lzma "alone" format (LZMA SDK), zstd
 * (RFC 8878), and the lz4 legacy frame (lz4 programs/lz4io.c, written by
 * `lz4 -l`, read by the kernel's lib/decompress_unlz4.c).
 * State: stable.
 * Features: gzip, xz, lzma, zstd, lz4 legacy; an uncompressed ELF passes
 *   through; the output is bounded.
 * Missing: bzip2 and lzo (recognised, refused with a clear message).
 *
 * Why on the host: in the guest the kernel's own decompressor runs in
 * ring 0, which KVM here emulates instruction by instruction (about 1.5 M
 * instructions/s): minutes for a distribution kernel, milliseconds here.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>
#include "vmm/decompress.h"
#include "vmm/log.h"

/* liblzma's dictionary memory: the kernel's xz uses 32 MiB, its lzma 64 MiB. */
#define LZMA_MEMLIMIT (256ull << 20)

struct dctx {
	char *err;
	size_t errlen;
};

/* The growing output buffer, never larger than @max. */
struct obuf {
	uint8_t *p;
	size_t len, cap, max;
	size_t first;             /* size of the first allocation */
};

/* Say why in the caller's error buffer and return @code. */
#define fail(c, code, ...) report_error((c)->err, (c)->errlen, (code), __VA_ARGS__)

static uint32_t le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Make room for @need more bytes: -EFBIG past the bound. */
static int obuf_reserve(struct obuf *o, size_t need)
{
	size_t cap = o->cap ? o->cap : o->first;
	uint8_t *p;

	if (need <= o->cap - o->len)
		return 0;
	if (need > o->max - o->len)
		return -EFBIG;
	while (cap - o->len < need)
		cap = cap > o->max / 2 ? o->max : cap * 2;
	p = realloc(o->p, cap);
	if (!p)
		return -ENOMEM;
	o->p = p;
	o->cap = cap;
	return 0;
}

/* Room for at least one byte once the buffer is full. */
static int obuf_room(struct obuf *o)
{
	return o->len < o->cap ? 0 : obuf_reserve(o, 1);
}

static size_t obuf_avail(const struct obuf *o, size_t limit)
{
	return o->cap - o->len < limit ? o->cap - o->len : limit;
}

static int run_gzip(struct dctx *c, const uint8_t *in, size_t len, struct obuf *o)
{
	z_stream z = { 0 };
	int ret = 0, zr;

	if (len > UINT_MAX)
		return fail(c, -EBADMSG, "gzip: payload of %zu bytes is too large", len);
	/* 16 + window bits: a gzip wrapper, not zlib's own. */
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)in;
	z.avail_in = len;
	for (;;) {
		ret = obuf_room(o);
		if (ret)
			break;
		z.next_out = o->p + o->len;
		z.avail_out = obuf_avail(o, UINT_MAX);
		zr = inflate(&z, Z_NO_FLUSH);
		o->len = z.next_out - o->p;
		if (zr == Z_STREAM_END)
			break;
		if (zr == Z_OK || (zr == Z_BUF_ERROR && z.avail_out == 0))
			continue;
		if (zr == Z_MEM_ERROR)
			ret = -ENOMEM;
		else if (zr == Z_BUF_ERROR)
			ret = fail(c, -EBADMSG, "gzip: data is truncated");
		else
			ret = fail(c, -EBADMSG, "gzip: corrupt data (%s)", z.msg ? z.msg : "?");
		break;
	}
	inflateEnd(&z);
	return ret;
}

static int lzma_error(struct dctx *c, const char *name, lzma_ret r)
{
	switch (r) {
	case LZMA_MEM_ERROR:
		return -ENOMEM;
	case LZMA_MEMLIMIT_ERROR:
		return fail(c, -EBADMSG, "%s: needs more than %llu MiB of dictionary", name,
			    LZMA_MEMLIMIT >> 20);
	case LZMA_BUF_ERROR:
		return fail(c, -EBADMSG, "%s: data is truncated", name);
	case LZMA_FORMAT_ERROR:
		return fail(c, -EBADMSG, "%s: bad header", name);
	case LZMA_OPTIONS_ERROR:
		return fail(c, -EBADMSG, "%s: unsupported options", name);
	default:
		return fail(c, -EBADMSG, "%s: corrupt data (liblzma error %d)", name, (int)r);
	}
}

/* xz, or with @alone the legacy .lzma format. */
static int run_lzma(struct dctx *c, const uint8_t *in, size_t len, struct obuf *o, bool alone)
{
	const char *name = alone ? "lzma" : "xz";
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret r;
	int ret = 0;

	r = alone ? lzma_alone_decoder(&s, LZMA_MEMLIMIT)
		  : lzma_stream_decoder(&s, LZMA_MEMLIMIT, 0);
	if (r != LZMA_OK)
		return lzma_error(c, name, r);
	s.next_in = in;
	s.avail_in = len;
	for (;;) {
		ret = obuf_room(o);
		if (ret)
			break;
		s.next_out = o->p + o->len;
		s.avail_out = obuf_avail(o, SIZE_MAX);
		/* FINISH: all input is there, so running dry means truncated. */
		r = lzma_code(&s, LZMA_FINISH);
		o->len = s.next_out - o->p;
		if (r == LZMA_STREAM_END)
			break;
		if (r == LZMA_OK)
			continue;
		ret = lzma_error(c, name, r);
		break;
	}
	lzma_end(&s);
	return ret;
}

static int run_zstd(struct dctx *c, const uint8_t *in, size_t len, struct obuf *o)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer ib = { .src = in, .size = len };
	int ret = 0;

	if (!d)
		return -ENOMEM;
	for (;;) {
		ZSTD_outBuffer ob;
		size_t r;

		ret = obuf_room(o);
		if (ret)
			break;
		ob = (ZSTD_outBuffer){ .dst = o->p, .size = o->cap, .pos = o->len };
		r = ZSTD_decompressStream(d, &ob, &ib);
		o->len = ob.pos;
		if (ZSTD_isError(r)) {
			ret = ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? -ENOMEM :
			      fail(c, -EBADMSG, "zstd: %s", ZSTD_getErrorName(r));
			break;
		}
		if (r == 0)            /* the frame is decoded and flushed */
			break;
		if (ib.pos == ib.size && ob.pos < ob.size) {
			ret = fail(c, -EBADMSG, "zstd: data is truncated");
			break;
		}
	}
	ZSTD_freeDCtx(d);
	return ret;
}

/*
 * The legacy frame has no end mark: blocks run to the end of the input.
 * The kernel's appended size looks like one more block size with nothing
 * after it; a size equal to the magic starts a concatenated frame.
 */
static int run_lz4(struct dctx *c, const uint8_t *in, size_t len, struct obuf *o)
{
	const size_t bound = LZ4_compressBound(LZ4_LEGACY_BLOCK_MAX);
	size_t pos = 4;
	uint8_t *block = malloc(LZ4_LEGACY_BLOCK_MAX);
	int ret = 0;

	if (!block)
		return -ENOMEM;
	while (!ret && len - pos >= 4) {
		uint32_t csize = le32(in + pos);
		size_t at = pos;
		int n;

		pos += 4;
		if (csize == LZ4_LEGACY_MAGIC)
			continue;
		if (pos == len)
			break;
		if (csize == 0 || csize > bound || csize > len - pos) {
			ret = fail(c, -EBADMSG, "lz4: block at offset %zu has size %u, %zu bytes remain",
				   at, csize, len - pos);
			break;
		}
		n = LZ4_decompress_safe((const char *)in + pos, (char *)block, (int)csize,
					LZ4_LEGACY_BLOCK_MAX);
		if (n < 0) {
			ret = fail(c, -EBADMSG, "lz4: corrupt block at offset %zu", at);
			break;
		}
		ret = obuf_reserve(o, n);
		if (!ret) {
			memcpy(o->p + o->len, block, n);
			o->len += n;
		}
		pos += csize;
	}
	if (!ret && pos != len)
		ret = fail(c, -EBADMSG, "lz4: %zu stray bytes at the end", len - pos);
	free(block);
	return ret;
}

static int run_copy(const uint8_t *in, size_t len, struct obuf *o)
{
	int ret = obuf_reserve(o, len);

	if (!ret) {
		memcpy(o->p, in, len);
		o->len = len;
	}
	return ret;
}

enum kcomp decompress_detect(const void *buf, size_t len)
{
	static const struct {
		enum kcomp c;
		uint8_t len;
		uint8_t magic[9];
	} magics[] = {
		{ KCOMP_NONE, 4, { 0x7f, 'E', 'L', 'F' } },
		{ KCOMP_GZIP, 2, { 0x1f, 0x8b } },
		{ KCOMP_XZ, 6, { 0xfd, '7', 'z', 'X', 'Z', 0x00 } },
		{ KCOMP_LZMA, 3, { 0x5d, 0x00, 0x00 } },
		{ KCOMP_ZSTD, 4, { 0x28, 0xb5, 0x2f, 0xfd } },
		{ KCOMP_LZ4, 4, { 0x02, 0x21, 0x4c, 0x18 } },
		{ KCOMP_BZIP2, 3, { 'B', 'Z', 'h' } },
		{ KCOMP_LZO, 9, { 0x89, 'L', 'Z', 'O', 0x00, 0x0d, 0x0a, 0x1a, 0x0a } },
	};

	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++)
		if (len >= magics[i].len && !memcmp(buf, magics[i].magic, magics[i].len))
			return magics[i].c;
	return KCOMP_UNKNOWN;
}

const char *decompress_name(enum kcomp c)
{
	static const char *const names[] = {
		[KCOMP_NONE] = "uncompressed", [KCOMP_GZIP] = "gzip", [KCOMP_XZ] = "xz",
		[KCOMP_LZMA] = "lzma", [KCOMP_ZSTD] = "zstd", [KCOMP_LZ4] = "lz4",
		[KCOMP_BZIP2] = "bzip2", [KCOMP_LZO] = "lzo", [KCOMP_UNKNOWN] = "unknown",
	};

	return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "unknown";
}

/* The kernel's appended size, when plausible, saves the reallocations. */
static size_t first_size(const uint8_t *in, size_t len, size_t max)
{
	size_t hint = len >= 4 ? le32(in + len - 4) + (size_t)4096 : 0;

	if (hint <= 4096 || hint > max)
		hint = len < max / 4 ? 4 * len : max;
	if (hint < (1u << 20))
		hint = 1u << 20;
	return hint < max ? hint : (max ? max : 1);
}

static int run(struct dctx *c, enum kcomp kind, const uint8_t *in, size_t len, struct obuf *o)
{
	const uint8_t *b = in;

	switch (kind) {
	case KCOMP_NONE:  return run_copy(in, len, o);
	case KCOMP_GZIP:  return run_gzip(c, in, len, o);
	case KCOMP_XZ:    return run_lzma(c, in, len, o, false);
	case KCOMP_LZMA:  return run_lzma(c, in, len, o, true);
	case KCOMP_ZSTD:  return run_zstd(c, in, len, o);
	case KCOMP_LZ4:   return run_lz4(c, in, len, o);
	case KCOMP_BZIP2:
	case KCOMP_LZO:
		return fail(c, -ENOTSUP, "%s compression is not supported: build the kernel with gzip, xz, lzma, zstd or lz4, or boot its uncompressed vmlinux",
			    decompress_name(kind));
	default:
		break;
	}
	if (len < 4)
		return fail(c, -ENOEXEC, "payload of %zu bytes is too short to recognise", len);
	return fail(c, -ENOEXEC, "compression not recognised (magic %02x %02x %02x %02x)",
		    b[0], b[1], b[2], b[3]);
}

int decompress(const void *in, size_t len, size_t max_out, void **out, size_t *out_len,
	       char *err, size_t errlen)
{
	struct dctx c = { .err = err, .errlen = errlen };
	enum kcomp kind = decompress_detect(in, len);
	struct obuf o = { .max = max_out, .first = first_size(in, len, max_out) };
	int ret;

	if (errlen)
		err[0] = '\0';
	ret = run(&c, kind, in, len, &o);
	if (ret == -EFBIG)
		fail(&c, ret, "%s data decompresses to more than %zu bytes (the limit): refused",
		     decompress_name(kind), max_out);
	else if (ret == -ENOMEM)
		fail(&c, ret, "%s: out of memory while decompressing", decompress_name(kind));
	if (ret) {
		free(o.p);
		return ret;
	}
	*out = o.p;
	*out_len = o.len;
	return 0;
}
