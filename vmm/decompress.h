/*
 * Host-side decompression of a bzImage's payload (the compressed vmlinux).
 *
 * The format is recognised by its magic, as the kernel's own
 * lib/decompress.c does.  Decoding is left to the system libraries: zlib
 * (gzip), liblzma (xz, and legacy lzma through its "alone" decoder),
 * libzstd (zstd) and liblz4 (the lz4 "legacy" frame the kernel build
 * writes with `lz4 -l`: magic 0x184C2102, then blocks of up to 8 MiB, each
 * a little-endian u32 compressed size and one LZ4 block).  bzip2 and lzo
 * are recognised and refused.
 *
 * The kernel build appends the uncompressed size (u32) after the stream;
 * every decoder here stops at the end of its stream and ignores it.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

enum kcomp {
	KCOMP_NONE,          /* not compressed: an ELF image */
	KCOMP_GZIP,
	KCOMP_XZ,
	KCOMP_LZMA,
	KCOMP_ZSTD,
	KCOMP_LZ4,
	KCOMP_BZIP2,         /* recognised, not supported */
	KCOMP_LZO,           /* recognised, not supported */
	KCOMP_UNKNOWN,
};

#define LZ4_LEGACY_MAGIC      0x184C2102u
#define LZ4_LEGACY_BLOCK_MAX  (8u << 20)
/* Bound on the output when the caller has none better (the header's init_size). */
#define DECOMPRESS_MAX_OUT    (512ull << 20)

enum kcomp decompress_detect(const void *in, size_t len);
const char *decompress_name(enum kcomp c);

/*
 * Decompress @in into a malloc'ed buffer (*out, *out_len; free() it).
 * Output beyond @max_out bytes is refused, so a small payload cannot make
 * us allocate without limit.  Returns 0 or a negative errno with a message
 * (without a file name) in @err:
 *   -ENOEXEC  no known compression magic
 *   -ENOTSUP  a compression we recognise but do not decode (bzip2, lzo)
 *   -EBADMSG  corrupt or truncated data
 *   -EFBIG    the output would exceed @max_out
 *   -ENOMEM   out of host memory
 */
int decompress(const void *in, size_t len, size_t max_out, void **out, size_t *out_len,
	       char *err, size_t errlen);
