/*
 * The Linux bzImage file: a real-mode setup part (boot sector and setup
 * code, setup_sects + 1 sectors of 512 bytes) whose setup header at 0x1f1
 * describes the kernel, then the protected-mode part: the kernel's own
 * decompressor with the compressed vmlinux (the payload) inside it.
 *
 * Only boot protocol 2.06 and later (Linux 2.6.22, 2007) is accepted: it
 * gives cmdline_size; 2.08 adds payload_offset/payload_length, 2.10
 * pref_address/init_size, 2.12 xloadflags.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <asm/bootparam.h>

#define BZ_HDR_OFFSET      0x1f1       /* struct setup_header in the file and the zero page */
#define BZ_MAGIC_OFFSET    0x202
#define BZ_MAGIC           0x53726448u /* "HdrS" */
#define BZ_BOOT_FLAG       0xAA55
#define BZ_MIN_VERSION     0x0206
#define BZ_SECTOR          512u
#define BZ_DEFAULT_SECTS   4           /* setup_sects 0 means 4 */
#define BZ_LOAD_LOW_DEFAULT 0x100000u  /* 1 MiB: non-relocatable kernels */

struct bzimage {
	struct setup_header hdr;   /* the file's header; bytes past its end are zero */
	size_t hdr_len;            /* bytes of header in the file: 0x202 + byte at 0x201 - 0x1f1 */
	uint16_t version;
	uint64_t setup_size;       /* the real-mode part: (setup_sects ?: 4) + 1 sectors */
	uint64_t pm_offset;        /* the protected-mode part: from setup_size to the end */
	uint64_t pm_size;
	uint64_t payload_offset;   /* the compressed vmlinux, as a file offset */
	uint64_t payload_size;
	uint32_t init_size;        /* memory the kernel needs from its load address (2.10+), else 0 */
};

/* 1 if @img starts like a bzImage ("HdrS" at 0x202), else 0. */
int bzimage_probe(const void *img, size_t size);

/*
 * Check the setup header of @img (@size bytes, named @name in messages)
 * and fill @bz.  Returns 0, or with a message in @err:
 *   -ENOEXEC  not a bzImage, a truncated one, or inconsistent offsets
 *   -ENOTSUP  boot protocol older than 2.06, or a zImage (not LOADED_HIGH)
 */
int bzimage_parse(const void *img, size_t size, const char *name, struct bzimage *bz,
		  char *err, size_t errlen);
