/*
 * bzImage setup header parsing on synthetic images: a good one, and each
 * way an image can be wrong (truncated, not Linux, too old, zImage,
 * setup_sects or payload past the end).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "vmm/bzimage.h"

#define PM_SIZE     0x3000u     /* protected-mode part of the synthetic image */
#define PAYLOAD_OFF 0x400u      /* payload offset inside it */
#define PAYLOAD_LEN 0x1000u

struct image {
	uint8_t *p;
	size_t len;
	struct setup_header *h;     /* inside p */
};


/* A protocol 2.15 image with @sects setup sectors (0 meaning 4). */
static struct image image_make(uint8_t sects)
{
	unsigned real = sects ? sects : 4;
	struct image img;

	img.len = (real + 1) * 512 + PM_SIZE;
	img.p = calloc(1, img.len);
	assert_non_null(img.p);
	img.h = (struct setup_header *)(img.p + BZ_HDR_OFFSET);
	img.p[0x200] = 0xeb;                    /* jmp to the end of the header */
	img.p[0x201] = 0x26c - 0x202;
	img.p[0x1ef] = 0xff;                    /* the sentinel, outside the header */
	img.h->setup_sects = sects;
	img.h->syssize = PM_SIZE / 16;
	img.h->boot_flag = BZ_BOOT_FLAG;
	img.h->header = BZ_MAGIC;
	img.h->version = 0x020f;
	img.h->loadflags = LOADED_HIGH;
	img.h->code32_start = 0x100000;
	img.h->initrd_addr_max = 0x7fffffff;
	img.h->kernel_alignment = 0x200000;
	img.h->relocatable_kernel = 1;
	img.h->xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G;
	img.h->cmdline_size = 2047;
	img.h->payload_offset = PAYLOAD_OFF;
	img.h->payload_length = PAYLOAD_LEN;
	img.h->pref_address = 0x1000000;
	img.h->init_size = 0x800000;
	/* Recognisable payload bytes. */
	for (unsigned i = 0; i < PAYLOAD_LEN; i++)
		img.p[(real + 1) * 512 + PAYLOAD_OFF + i] = (uint8_t)(i * 7 + 3);
	return img;
}

static int parse(const struct image *img, struct bzimage *bz, char *err)
{
	err[0] = '\0';
	return bzimage_parse(img->p, img->len, "vmlinuz", bz, err, 256);
}

static void test_good(void **state)
{
	struct image img = image_make(27);
	struct bzimage bz;
	char err[256];

	(void)state;
	assert_int_equal(bzimage_probe(img.p, img.len), 1);
	assert_int_equal(parse(&img, &bz, err), 0);
	assert_int_equal(bz.version, 0x020f);
	assert_int_equal(bz.setup_size, 28 * 512);
	assert_int_equal(bz.pm_offset, 28 * 512);
	assert_int_equal(bz.pm_size, PM_SIZE);
	assert_int_equal(bz.payload_offset, 28 * 512 + PAYLOAD_OFF);
	assert_int_equal(bz.payload_size, PAYLOAD_LEN);
	assert_int_equal(img.p[bz.payload_offset + 1], 10);
	assert_int_equal(bz.init_size, 0x800000);
	assert_int_equal(bz.hdr_len, 0x26c - BZ_HDR_OFFSET);
	assert_int_equal(bz.hdr.cmdline_size, 2047);
	assert_int_equal(bz.hdr.initrd_addr_max, 0x7fffffff);
	assert_int_equal(bz.hdr.kernel_alignment, 0x200000);
	assert_int_equal(bz.hdr.relocatable_kernel, 1);
	assert_int_equal(bz.hdr.pref_address, 0x1000000);
	assert_int_equal(bz.hdr.code32_start, 0x100000);
	assert_true(bz.hdr.xloadflags & XLF_KERNEL_64);
	free(img.p);
}

static void test_setup_sects_zero_means_4(void **state)
{
	struct image img = image_make(0);
	struct bzimage bz;
	char err[256];

	(void)state;
	assert_int_equal(parse(&img, &bz, err), 0);
	assert_int_equal(bz.setup_size, 5 * 512);
	assert_int_equal(bz.payload_offset, 5 * 512 + PAYLOAD_OFF);
	assert_int_equal(img.p[bz.payload_offset], 3);
	free(img.p);
}

/* Only the bytes the jump at 0x200 says are header are copied. */
static void test_short_header(void **state)
{
	struct image img = image_make(4);
	struct bzimage bz;
	char err[256];

	(void)state;
	img.p[0x201] = 0x234 - 0x202;           /* a 2.0x-sized header: ends before cmdline_size */
	assert_int_equal(parse(&img, &bz, err), 0);
	assert_int_equal(bz.hdr_len, 0x234 - BZ_HDR_OFFSET);
	assert_int_equal(bz.hdr.initrd_addr_max, 0x7fffffff);   /* at 0x22c: inside */
	assert_int_equal(bz.hdr.cmdline_size, 0);               /* at 0x238: outside */
	free(img.p);
}

static void expect_fail(struct image *img, int code, const char *what)
{
	struct bzimage bz;
	char err[256];

	assert_int_equal(parse(img, &bz, err), code);
	if (!strstr(err, what) || !strstr(err, "vmlinuz"))
		fail_msg("message \"%s\" lacks \"%s\" or the file name", err, what);
}

static void test_truncated(void **state)
{
	struct image img = image_make(27);
	size_t full = img.len;

	(void)state;
	img.len = 0x100;                        /* not even a header */
	expect_fail(&img, -ENOEXEC, "too short");
	img.len = 0x210;                        /* header, but no setup code */
	expect_fail(&img, -ENOEXEC, "truncated");
	img.len = 28 * 512;                     /* setup only */
	expect_fail(&img, -ENOEXEC, "truncated");
	img.len = full - 1;                     /* one byte short of syssize */
	expect_fail(&img, -ENOEXEC, "syssize");
	img.len = full;
	img.h->payload_length = PM_SIZE;        /* payload runs past the end */
	expect_fail(&img, -ENOEXEC, "payload");
	img.h->payload_length = PAYLOAD_LEN;
	img.h->payload_offset = 0xffffff00u;    /* offset + length overflows 32 bits */
	expect_fail(&img, -ENOEXEC, "payload");
	free(img.p);
}

static void test_not_linux(void **state)
{
	struct image img = image_make(27);

	(void)state;
	memcpy(img.p + BZ_MAGIC_OFFSET, "HdrZ", 4);
	assert_int_equal(bzimage_probe(img.p, img.len), 0);
	expect_fail(&img, -ENOEXEC, "HdrS");
	memcpy(img.p + BZ_MAGIC_OFFSET, "HdrS", 4);
	img.h->boot_flag = 0x1234;
	expect_fail(&img, -ENOEXEC, "boot_flag");
	free(img.p);
}

static void test_too_old(void **state)
{
	struct image img = image_make(27);

	(void)state;
	img.h->version = 0x0205;
	expect_fail(&img, -ENOTSUP, "2.05 is too old");
	img.h->version = 0x0206;                /* the oldest accepted: no payload fields */
	{
		struct bzimage bz;
		char err[256];

		assert_int_equal(parse(&img, &bz, err), 0);
		assert_int_equal(bz.payload_size, 0);
		assert_int_equal(bz.init_size, 0);
	}
	free(img.p);
}

static void test_zimage(void **state)
{
	struct image img = image_make(27);

	(void)state;
	img.h->loadflags = 0;
	expect_fail(&img, -ENOTSUP, "zImage");
	free(img.p);
}

/* setup_sects pointing past the end of the file. */
static void test_bad_setup_sects(void **state)
{
	struct image img = image_make(4);

	(void)state;
	img.h->setup_sects = 200;
	expect_fail(&img, -ENOEXEC, "setup_sects");
	free(img.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_setup_sects_zero_means_4),
		cmocka_unit_test(test_short_header),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_not_linux),
		cmocka_unit_test(test_too_old),
		cmocka_unit_test(test_zimage),
		cmocka_unit_test(test_bad_setup_sects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
