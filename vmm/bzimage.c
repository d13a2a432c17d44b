/*
 * bzImage setup header parsing.
 *
 * Spec: Documentation/arch/x86/boot.rst ("The real-mode kernel header",
 * "Details of header fields"), arch/x86/include/uapi/asm/bootparam.h.
 * State: stable.
 * Features: protocol 2.06+, setup_sects 0 meaning 4, syssize, the payload
 *   (2.08+), init_size (2.10+).
 * Missing: zImage, protocols before 2.06, setup_data chains (not needed:
 *   nothing is passed that way), the EFI handover entry.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "vmm/bzimage.h"

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

int bzimage_probe(const void *img, size_t size)
{
	uint32_t magic;

	if (size < BZ_MAGIC_OFFSET + 4)
		return 0;
	memcpy(&magic, (const uint8_t *)img + BZ_MAGIC_OFFSET, 4);
	return magic == BZ_MAGIC;
}

/* The header ends where the jump at 0x200 lands: 0x202 + its offset byte. */
static size_t header_end(const uint8_t *img)
{
	return 0x202 + img[0x201];
}

static int check_sizes(const char *name, struct bzimage *bz, uint64_t size,
		       char *err, size_t errlen)
{
	const struct setup_header *h = &bz->hdr;
	uint64_t sys = (uint64_t)h->syssize * 16;

	if (bz->setup_size >= size)
		return fail(err, errlen, -ENOEXEC, "%s: truncated: setup_sects says %llu bytes of setup code, the file has %llu bytes",
			    name, (unsigned long long)bz->setup_size, (unsigned long long)size);
	bz->pm_offset = bz->setup_size;
	bz->pm_size = size - bz->setup_size;
	if (sys > bz->pm_size)
		return fail(err, errlen, -ENOEXEC, "%s: truncated: syssize says %llu bytes of protected-mode kernel, the file has %llu",
			    name, (unsigned long long)sys, (unsigned long long)bz->pm_size);
	if (bz->version < 0x0208)
		return 0;
	if (h->payload_offset > bz->pm_size || h->payload_length > bz->pm_size - h->payload_offset)
		return fail(err, errlen, -ENOEXEC, "%s: truncated: payload 0x%x+0x%x lies past the end of the protected-mode kernel (0x%llx bytes)",
			    name, h->payload_offset, h->payload_length,
			    (unsigned long long)bz->pm_size);
	bz->payload_offset = bz->pm_offset + h->payload_offset;
	bz->payload_size = h->payload_length;
	return 0;
}

int bzimage_parse(const void *image, size_t size, const char *name, struct bzimage *bz,
		  char *err, size_t errlen)
{
	const uint8_t *img = image;
	unsigned sects;

	memset(bz, 0, sizeof(*bz));
	if (size < BZ_MAGIC_OFFSET + 6)
		return fail(err, errlen, -ENOEXEC, "%s: too short (%zu bytes) for a Linux kernel setup header",
			    name, size);
	if (!bzimage_probe(img, size))
		return fail(err, errlen, -ENOEXEC, "%s: not a Linux bzImage (no \"HdrS\" at 0x202)", name);
	if (size < header_end(img))
		return fail(err, errlen, -ENOEXEC, "%s: truncated inside its setup header (%zu bytes, the header ends at 0x%zx)",
			    name, size, header_end(img));
	bz->hdr_len = header_end(img) - BZ_HDR_OFFSET;
	if (bz->hdr_len > sizeof(bz->hdr))
		bz->hdr_len = sizeof(bz->hdr);
	memcpy(&bz->hdr, img + BZ_HDR_OFFSET, bz->hdr_len);
	bz->version = bz->hdr.version;
	if (bz->version < BZ_MIN_VERSION)
		return fail(err, errlen, -ENOTSUP, "%s: boot protocol %u.%02u is too old (2.06 or later needed)",
			    name, bz->version >> 8, bz->version & 0xff);
	if (bz->hdr.boot_flag != BZ_BOOT_FLAG)
		return fail(err, errlen, -ENOEXEC, "%s: boot_flag is 0x%04x, not 0xAA55", name,
			    bz->hdr.boot_flag);
	if (!(bz->hdr.loadflags & LOADED_HIGH))
		return fail(err, errlen, -ENOTSUP, "%s: a zImage (loaded below 1 MiB) is not supported",
			    name);
	sects = bz->hdr.setup_sects ? bz->hdr.setup_sects : BZ_DEFAULT_SECTS;
	bz->setup_size = (uint64_t)(sects + 1) * BZ_SECTOR;
	if (bz->version >= 0x020a)
		bz->init_size = bz->hdr.init_size;
	return check_sizes(name, bz, size, err, errlen);
}
