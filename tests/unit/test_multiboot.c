/*
 * Multiboot v1 loader: tiny ELF32 and a.out-kludge images are built here,
 * written to temporary files, loaded into guest RAM, and the RAM, the info
 * structure and the entry state are checked against the spec.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "vmm/memory.h"
#include "vmm/multiboot.h"
#include "tests/unit/test_files.h"

#define MiB (1ull << 20)
#define SEG_DATA_OFF 0x1000u      /* file offset of the first segment's bytes */
#define SEG_DATA_STRIDE 0x2000u
#define MB_HDR_OFF 0x200u         /* where the ELF images carry their multiboot header */
#define FILL 0xAA                 /* RAM pattern that loading must overwrite or keep */

struct seg {
	uint32_t type;                /* 0: PT_LOAD */
	uint32_t paddr, vaddr;        /* vaddr 0: same as paddr */
	uint32_t filesz, memsz;
	uint32_t offset;              /* 0: SEG_DATA_OFF + i * SEG_DATA_STRIDE */
};

/* ---- helpers ----------------------------------------------------------- */

static uint8_t seg_byte(unsigned seg, uint32_t i)
{
	return (uint8_t)(0x31 * (seg + 1) + i * 7 + 1);
}

static uint8_t file_byte(uint32_t i)
{
	return (uint8_t)(i * 13 + 5) | 1;     /* never zero: tells loaded bytes from bss */
}

static uint64_t align_page(uint64_t v)
{
	return (v + 4095) & ~4095ull;
}

static void mb_header_put(uint8_t *at, uint32_t flags)
{
	struct multiboot_header h = {
		.magic = MB_HEADER_MAGIC, .flags = flags, .checksum = -(MB_HEADER_MAGIC + flags),
	};

	memcpy(at, &h, 12);
}

/* An ELF32 EM_386 executable with @n segments and a multiboot header at MB_HDR_OFF. */
static struct buf elf_image(const struct seg *segs, unsigned n, uint32_t entry, uint32_t mb_flags)
{
	struct buf img = { .len = SEG_DATA_OFF + n * SEG_DATA_STRIDE };
	Elf32_Ehdr *eh;

	img.p = calloc(1, img.len);
	assert_non_null(img.p);
	eh = (Elf32_Ehdr *)img.p;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS32;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_386;
	eh->e_version = EV_CURRENT;
	eh->e_entry = entry;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(Elf32_Phdr);
	eh->e_phnum = n;
	for (unsigned i = 0; i < n; i++) {
		Elf32_Phdr *ph = (Elf32_Phdr *)(img.p + sizeof(*eh)) + i;
		uint32_t off = SEG_DATA_OFF + i * SEG_DATA_STRIDE;

		assert_true(segs[i].filesz <= SEG_DATA_STRIDE || segs[i].offset);
		ph->p_type = segs[i].type ? segs[i].type : PT_LOAD;
		ph->p_offset = segs[i].offset ? segs[i].offset : off;
		ph->p_paddr = segs[i].paddr;
		ph->p_vaddr = segs[i].vaddr ? segs[i].vaddr : segs[i].paddr;
		ph->p_filesz = segs[i].filesz;
		ph->p_memsz = segs[i].memsz;
		if (!segs[i].offset)
			for (uint32_t j = 0; j < segs[i].filesz; j++)
				img.p[off + j] = seg_byte(i, j);
	}
	mb_header_put(img.p + MB_HDR_OFF, mb_flags);
	return img;
}

/*
 * An a.out-kludge image of @file_len pattern bytes, header at @hdr_off; the
 * load starts at file offset @load_off, which lands at @load_addr.
 */
static struct buf aout_image(size_t file_len, uint32_t hdr_off, uint32_t load_off,
			       uint32_t load_addr, uint32_t load_end, uint32_t bss_end,
			       uint32_t entry, uint32_t extra_flags)
{
	uint32_t flags = MB_HF_AOUT_KLUDGE | extra_flags;
	struct multiboot_header h = {
		.magic = MB_HEADER_MAGIC, .flags = flags, .checksum = -(MB_HEADER_MAGIC + flags),
		.header_addr = load_addr + (hdr_off - load_off), .load_addr = load_addr,
		.load_end_addr = load_end, .bss_end_addr = bss_end, .entry_addr = entry,
	};
	struct buf img = { .p = malloc(file_len), .len = file_len };

	assert_non_null(img.p);
	for (size_t i = 0; i < file_len; i++)
		img.p[i] = file_byte(i);
	memcpy(img.p + hdr_off, &h, sizeof(h));
	return img;
}

static void ram_fill(struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
	uint8_t *p = gpa_ptr(mem, gpa, len);

	assert_non_null(p);
	memset(p, FILL, len);
}

static uint8_t ram_byte(struct guest_memory *mem, uint64_t gpa)
{
	uint8_t b;

	assert_int_equal(gpa_read(mem, gpa, &b, 1), 0);
	return b;
}

static void info_read(struct guest_memory *mem, const struct boot_entry *e,
		      struct multiboot_info *info)
{
	assert_int_equal(gpa_read(mem, e->ebx, info, sizeof(*info)), 0);
}

/* A NUL-terminated string in guest RAM. */
static const char *ram_str(struct guest_memory *mem, uint32_t gpa)
{
	const char *s = gpa_ptr(mem, gpa, 1);

	assert_non_null(s);
	assert_non_null(gpa_ptr(mem, gpa, strlen(s) + 1));
	return s;
}

static int load(struct guest_memory *mem, const char *path, const char *cmdline,
		const struct multiboot_module_arg *mods, unsigned nmods,
		struct boot_entry *e, char *err)
{
	memset(err, 0, 256);
	return multiboot_load(mem, path, cmdline, mods, nmods, e, err, 256);
}

/* A load that must work, and the info structure it hands over in EBX. */
static void load_info(struct guest_memory *mem, const char *path, const char *cmdline,
		      const struct multiboot_module_arg *mods, unsigned nmods,
		      struct boot_entry *e, struct multiboot_info *info)
{
	char err[256];

	assert_int_equal(load(mem, path, cmdline, mods, nmods, e, err), 0);
	info_read(mem, e, info);
}

/* A refused load: the expected errno, and a message that names @name. */
static void expect_error(struct guest_memory *mem, const char *path, const char *cmdline,
			 const struct multiboot_module_arg *mods, unsigned nmods,
			 int expect, const char *name, const char *words)
{
	struct boot_entry e = { .eip = 0x1234 };
	char err[256];

	assert_int_equal(load(mem, path, cmdline, mods, nmods, &e, err), expect);
	assert_true(err[0]);
	assert_non_null(strstr(err, name));
	if (words && !strstr(err, words))
		fail_msg("message \"%s\" lacks \"%s\"", err, words);
	assert_int_equal(e.eip, 0x1234);     /* entry untouched on failure */
}

/* @img (freed) in a file that a load of it alone must refuse. */
static void expect_refused(struct guest_memory *mem, struct buf img, int expect, const char *words)
{
	const char *p = buf_write(&img);

	expect_error(mem, p, NULL, NULL, 0, expect, p, words);
}

static int mem_setup(void **state, uint64_t size)
{
	struct guest_memory *mem = calloc(1, sizeof(*mem));

	if (!mem || guest_memory_init(mem, size)) {
		free(mem);
		return -1;
	}
	*state = mem;
	return 0;
}

static int setup_64m(void **state) { return mem_setup(state, 64 * MiB); }
static int setup_16m(void **state) { return mem_setup(state, 16 * MiB); }

static int teardown(void **state)
{
	struct guest_memory *mem = *state;

	if (mem) {
		guest_memory_free(mem);
		free(mem);
	}
	tmp_files_remove();
	return 0;
}

/* ---- successful loads --------------------------------------------------- */

static void test_elf_segments(void **state)
{
	struct guest_memory *mem = *state;
	struct seg segs[] = {
		{ .paddr = 0x100000, .filesz = 0x200, .memsz = 0x200 },
		{ .type = PT_NOTE, .paddr = 0x300000, .filesz = 0x10, .memsz = 0x10 },
		{ .paddr = 0x102000, .filesz = 0x100, .memsz = 0x1000 },
	};
	struct buf img = elf_image(segs, 3, 0x100010, 0);
	const char *path = buf_write(&img);
	struct multiboot_info info;
	struct boot_entry e;
	char err[256];

	ram_fill(mem, 0x100000, 0x210000);
	assert_int_equal(load(mem, path, "console=ttyS0", NULL, 0, &e, err), 0);
	assert_string_equal(err, "");
	for (uint32_t i = 0; i < 0x200; i++)
		assert_int_equal(ram_byte(mem, 0x100000 + i), seg_byte(0, i));
	for (uint32_t i = 0; i < 0x100; i++)
		assert_int_equal(ram_byte(mem, 0x102000 + i), seg_byte(2, i));
	for (uint32_t i = 0x100; i < 0x1000; i++)
		assert_int_equal(ram_byte(mem, 0x102000 + i), 0);        /* bss */
	/* Nothing outside the segments, nor the PT_NOTE, is written. */
	assert_int_equal(ram_byte(mem, 0x100200), FILL);
	assert_int_equal(ram_byte(mem, 0x101fff), FILL);
	assert_int_equal(ram_byte(mem, 0x103000), FILL);
	assert_int_equal(ram_byte(mem, 0x300000), FILL);

	assert_int_equal(e.eip, 0x100010);
	assert_int_equal(e.eax, 0x2BADB002);
	assert_int_equal(e.ebx, MB_INFO_START);
	assert_true(e.ebx < 0xA0000);
	info_read(mem, &e, &info);
	assert_int_equal(info.flags & (MB_INFO_MEMORY | MB_INFO_CMDLINE | MB_INFO_MODS |
				       MB_INFO_MMAP | MB_INFO_LOADER_NAME),
			 MB_INFO_MEMORY | MB_INFO_CMDLINE | MB_INFO_MODS | MB_INFO_MMAP |
			 MB_INFO_LOADER_NAME);
	assert_int_equal(info.flags & (MB_INFO_VBE | MB_INFO_FRAMEBUFFER), 0);
	assert_int_equal(info.mem_lower, 640);
	assert_int_equal(info.mem_upper, (64 * MiB - MiB) / 1024);
	assert_int_equal(info.mods_count, 0);
	assert_string_equal(ram_str(mem, info.boot_loader_name), "vmm");
	/* The kernel's own path first, as GRUB and QEMU pass it. */
	{
		char want[512];

		snprintf(want, sizeof(want), "%s console=ttyS0", path);
		assert_string_equal(ram_str(mem, info.cmdline), want);
	}
	/* Strings and tables live in the info area, not over the kernel. */
	assert_in_range(info.cmdline, MB_INFO_START, MB_INFO_END - 1);
	assert_in_range(info.mmap_addr, MB_INFO_START, MB_INFO_END - 1);
}

static void test_elf_higher_half_entry(void **state)
{
	struct guest_memory *mem = *state;
	struct seg segs[] = {
		{ .paddr = 0x200000, .vaddr = 0xC0200000, .filesz = 0x100, .memsz = 0x100 },
	};
	struct buf img = elf_image(segs, 1, 0xC0200020, 0);
	const char *path = buf_write(&img);
	struct boot_entry e;
	char err[256];

	assert_int_equal(load(mem, path, NULL, NULL, 0, &e, err), 0);
	/* Loaded at p_paddr; the virtual entry moves with its segment. */
	assert_int_equal(ram_byte(mem, 0x200000), seg_byte(0, 0));
	assert_int_equal(e.eip, 0x200020);
}

static void test_cmdline_without_args(void **state)
{
	struct guest_memory *mem = *state;
	struct seg segs[] = { { .paddr = 0x100000, .filesz = 0x10, .memsz = 0x10 } };
	struct buf img = elf_image(segs, 1, 0x100000, 0);
	const char *path = buf_write(&img);
	struct multiboot_info info;
	struct boot_entry e;

	load_info(mem, path, NULL, NULL, 0, &e, &info);
	assert_string_equal(ram_str(mem, info.cmdline), path);
	load_info(mem, path, "", NULL, 0, &e, &info);
	assert_string_equal(ram_str(mem, info.cmdline), path);
}

static void check_mmap(struct guest_memory *mem, const struct multiboot_info *info,
		       const struct multiboot_mmap_entry *want, unsigned nwant)
{
	struct multiboot_mmap_entry got;
	unsigned n = 0;

	assert_true(info->flags & MB_INFO_MMAP);
	/* Walk it as a kernel does: each entry's size says where the next one is. */
	for (uint32_t at = info->mmap_addr; at < info->mmap_addr + info->mmap_length; n++) {
		assert_int_equal(gpa_read(mem, at, &got, sizeof(got)), 0);
		assert_true(n < nwant);
		assert_int_equal(got.size, 20);
		assert_int_equal(got.addr, want[n].addr);
		assert_int_equal(got.len, want[n].len);
		assert_int_equal(got.type, want[n].type);
		at += got.size + 4;
	}
	assert_int_equal(n, nwant);
}

static void test_memory_info_16m(void **state)
{
	struct guest_memory *mem = *state;
	struct seg segs[] = { { .paddr = 0x100000, .filesz = 0x10, .memsz = 0x10 } };
	struct buf img = elf_image(segs, 1, 0x100000, MB_HF_MEMORY_INFO);
	const char *path = buf_write(&img);
	const struct multiboot_mmap_entry want[] = {
		{ .addr = 0, .len = 0x9FC00, .type = MB_MMAP_RAM },
		{ .addr = 0x9FC00, .len = 0x400, .type = MB_MMAP_RESERVED },
		{ .addr = 0xF0000, .len = 0x10000, .type = MB_MMAP_RESERVED },
		{ .addr = MiB, .len = 15 * MiB, .type = MB_MMAP_RAM },
	};
	struct multiboot_info info;
	struct boot_entry e;

	load_info(mem, path, NULL, NULL, 0, &e, &info);
	assert_true(info.flags & MB_INFO_MEMORY);
	assert_int_equal(info.mem_lower, 640);
	assert_int_equal(info.mem_upper, 15 * 1024);
	check_mmap(mem, &info, want, 4);
}

/* Above the PCI hole RAM continues at 4 GiB; mem_upper stops at the hole. */
static void test_memory_info_above_4g(void **state)
{
	struct guest_memory mem;
	struct seg segs[] = { { .paddr = 0x100000, .filesz = 0x10, .memsz = 0x10 } };
	struct buf img = elf_image(segs, 1, 0x100000, 0);
	const char *path = buf_write(&img);
	const uint64_t size = 3584 * MiB;
	const struct multiboot_mmap_entry want[] = {
		{ .addr = 0, .len = 0x9FC00, .type = MB_MMAP_RAM },
		{ .addr = 0x9FC00, .len = 0x400, .type = MB_MMAP_RESERVED },
		{ .addr = 0xF0000, .len = 0x10000, .type = MB_MMAP_RESERVED },
		{ .addr = MiB, .len = GUEST_PCI_HOLE_START - MiB, .type = MB_MMAP_RAM },
		{ .addr = GUEST_HIGH_RAM_START, .len = size - GUEST_PCI_HOLE_START, .type = MB_MMAP_RAM },
	};
	struct multiboot_info info;
	struct boot_entry e;

	(void)state;
	if (guest_memory_init(&mem, size))
		skip();          /* no address space for 3.5 GiB here */
	load_info(&mem, path, NULL, NULL, 0, &e, &info);
	assert_int_equal(info.mem_upper, (GUEST_PCI_HOLE_START - MiB) / 1024);
	check_mmap(&mem, &info, want, 5);
	guest_memory_free(&mem);
}

static void test_aout_kludge(void **state)
{
	struct guest_memory *mem = *state;
	/* File bytes 0x80.. land at 0x200000; the header sits 0x80 further in. */
	struct buf img = aout_image(0x1000, 0x100, 0x80, 0x200000, 0x200000 + 0x600,
				      0x200000 + 0x2000, 0x200040, 0);
	struct boot_entry e;
	char err[256];

	ram_fill(mem, 0x200000, 0x3000);
	assert_int_equal(load(mem, tmp_write(img.p, img.len), NULL, NULL, 0, &e, err), 0);
	for (uint32_t i = 0; i < 0x600; i++)
		assert_int_equal(ram_byte(mem, 0x200000 + i), img.p[0x80 + i]);
	/* The rest of the file is not loaded: bss_end_addr zeroes to there. */
	for (uint32_t i = 0x600; i < 0x2000; i++)
		assert_int_equal(ram_byte(mem, 0x200000 + i), 0);
	assert_int_equal(ram_byte(mem, 0x202000), FILL);
	assert_int_equal(e.eip, 0x200040);
	assert_int_equal(e.eax, MB_BOOTLOADER_MAGIC);
	assert_int_equal(e.ebx, MB_INFO_START);
	free(img.p);
}

/* load_end_addr 0: to the end of the file; bss_end_addr 0: no bss. */
static void test_aout_kludge_whole_file(void **state)
{
	struct guest_memory *mem = *state;
	struct buf img = aout_image(0x1234, 0x10, 0, 0x300000, 0, 0, 0x300000, 0);
	struct boot_entry e;
	char err[256];

	ram_fill(mem, 0x300000, 0x2000);
	assert_int_equal(load(mem, tmp_write(img.p, img.len), NULL, NULL, 0, &e, err), 0);
	for (uint32_t i = 0; i < img.len; i++)
		assert_int_equal(ram_byte(mem, 0x300000 + i), img.p[i]);
	assert_int_equal(ram_byte(mem, 0x300000 + img.len), FILL);
	assert_int_equal(e.eip, 0x300000);
	free(img.p);
}

/* The kludge wins over the ELF headers when both are there (spec 3.1.3). */
static void test_aout_kludge_in_elf(void **state)
{
	struct guest_memory *mem = *state;
	struct seg segs[] = { { .paddr = 0x100000, .filesz = 0x100, .memsz = 0x100 } };
	struct buf img = elf_image(segs, 1, 0x100000, 0);
	uint32_t flags = MB_HF_AOUT_KLUDGE;
	struct multiboot_header h = {
		.magic = MB_HEADER_MAGIC, .flags = flags, .checksum = -(MB_HEADER_MAGIC + flags),
		.header_addr = 0x400000 + MB_HDR_OFF, .load_addr = 0x400000,
		.load_end_addr = 0x400000 + SEG_DATA_OFF + 0x100, .entry_addr = 0x401000,
	};
	const char *path;
	struct boot_entry e;
	char err[256];

	memcpy(img.p + MB_HDR_OFF, &h, sizeof(h));
	path = buf_write(&img);
	ram_fill(mem, 0x100000, 0x100);
	assert_int_equal(load(mem, path, NULL, NULL, 0, &e, err), 0);
	assert_int_equal(ram_byte(mem, 0x400000), 0x7f);                 /* the ELF magic */
	assert_int_equal(ram_byte(mem, 0x401000), seg_byte(0, 0));
	assert_int_equal(ram_byte(mem, 0x100000), FILL);                 /* p_paddr unused */
	assert_int_equal(e.eip, 0x401000);
}

static void test_modules(void **state)
{
	struct guest_memory *mem = *state;
	struct seg segs[] = { { .paddr = 0x100000, .filesz = 0x100, .memsz = 0x2345 } };
	struct buf img = elf_image(segs, 1, 0x100000, MB_HF_PAGE_ALIGN | MB_HF_MEMORY_INFO);
	const char *path = buf_write(&img);
	uint8_t m0[5000], m1[3];
	struct multiboot_module_arg mods[3];
	struct multiboot_mod_list list[3];
	struct multiboot_info info;
	struct boot_entry e;
	char want[512];
	uint64_t next = align_page(0x100000 + 0x2345);

	for (unsigned i = 0; i < sizeof(m0); i++)
		m0[i] = file_byte(i);
	memcpy(m1, "abc", 3);
	mods[0] = (struct multiboot_module_arg){ tmp_write(m0, sizeof(m0)), "root=/dev/ram x=1" };
	mods[1] = (struct multiboot_module_arg){ tmp_write(m1, sizeof(m1)), NULL };
	mods[2] = (struct multiboot_module_arg){ tmp_write("", 0), "empty" };

	load_info(mem, path, "k", mods, 3, &e, &info);
	assert_true(info.flags & MB_INFO_MODS);
	assert_int_equal(info.mods_count, 3);
	assert_int_equal(gpa_read(mem, info.mods_addr, list, sizeof(list)), 0);
	for (unsigned i = 0; i < 3; i++) {
		uint64_t size = i == 0 ? sizeof(m0) : i == 1 ? sizeof(m1) : 0;

		/* In order, each on the first free page above the previous one. */
		assert_int_equal(list[i].mod_start % 4096, 0);
		assert_int_equal(list[i].mod_start, next);
		assert_int_equal(list[i].mod_end, list[i].mod_start + size);
		next = align_page(list[i].mod_end);
		snprintf(want, sizeof(want), "%s%s%s", mods[i].path, mods[i].cmdline ? " " : "",
			 mods[i].cmdline ? mods[i].cmdline : "");
		assert_string_equal(ram_str(mem, list[i].cmdline), want);
	}
	assert_memory_equal(gpa_ptr(mem, list[0].mod_start, sizeof(m0)), m0, sizeof(m0));
	assert_memory_equal(gpa_ptr(mem, list[1].mod_start, sizeof(m1)), m1, sizeof(m1));
	/* The kernel's bss survives the modules. */
	assert_int_equal(ram_byte(mem, 0x100000 + 0x2344), 0);
}

/* A kernel below the info area: modules still go above the info area. */
static void test_modules_above_info_area(void **state)
{
	struct guest_memory *mem = *state;
	struct buf img = aout_image(0x800, 0x20, 0, 0x2000, 0x2800, 0x3000, 0x2000, 0);
	const char *path = buf_write(&img);
	struct multiboot_module_arg mod = { tmp_write("module", 6), NULL };
	struct multiboot_mod_list l;
	struct multiboot_info info;
	struct boot_entry e;

	load_info(mem, path, NULL, &mod, 1, &e, &info);
	assert_int_equal(gpa_read(mem, info.mods_addr, &l, sizeof(l)), 0);
	assert_int_equal(l.mod_start, MB_INFO_END);
	assert_memory_equal(gpa_ptr(mem, l.mod_start, 6), "module", 6);
	assert_int_equal(ram_byte(mem, 0x2000), file_byte(0));
}

/* Flag 2 (video mode) is ignored: the load works and no video info is claimed. */
static void test_video_flag_ignored(void **state)
{
	struct guest_memory *mem = *state;
	struct buf img = aout_image(0x100, 0, 0, 0x100000, 0, 0, 0x100000, MB_HF_VIDEO_MODE);
	const char *path = buf_write(&img);
	struct multiboot_info info;
	struct boot_entry e;

	load_info(mem, path, NULL, NULL, 0, &e, &info);
	assert_int_equal(info.flags & (MB_INFO_VBE | MB_INFO_FRAMEBUFFER), 0);
}

/* The magic may sit at any 4-byte boundary up to the last word of the first 8 KiB. */
static void test_header_search_bounds(void **state)
{
	struct guest_memory *mem = *state;
	struct seg segs[] = { { .paddr = 0x100000, .filesz = 0x10, .memsz = 0x10 } };
	struct buf img = elf_image(segs, 1, 0x100000, 0);
	uint8_t *big = calloc(1, 0x3000);
	struct boot_entry e;
	char err[256];
	const char *p;

	assert_non_null(big);
	memcpy(big, img.p, img.len);
	memset(big + MB_HDR_OFF, 0, 12);
	free(img.p);

	mb_header_put(big + 8192 - 12, 0);
	p = tmp_write(big, 0x3000);
	assert_int_equal(multiboot_probe(p), 1);
	assert_int_equal(load(mem, p, NULL, NULL, 0, &e, err), 0);

	memset(big + 8192 - 12, 0, 12);
	mb_header_put(big + 8192, 0);
	p = tmp_write(big, 0x3000);
	assert_int_equal(multiboot_probe(p), 0);
	expect_error(mem, p, NULL, NULL, 0, -ENOEXEC, p, "no multiboot header");

	memset(big + 8192, 0, 12);
	mb_header_put(big + 0x102, 0);                 /* not 4-byte aligned */
	p = tmp_write(big, 0x3000);
	assert_int_equal(multiboot_probe(p), 0);
	expect_error(mem, p, NULL, NULL, 0, -ENOEXEC, p, "no multiboot header");
	free(big);
}

static void test_probe(void **state)
{
	struct seg segs[] = { { .paddr = 0x100000, .filesz = 0x10, .memsz = 0x10 } };
	struct buf img = elf_image(segs, 1, 0x100000, 0);
	uint8_t zeros[4096] = { 0 };

	(void)state;
	assert_int_equal(multiboot_probe(buf_write(&img)), 1);
	assert_int_equal(multiboot_probe(tmp_write(zeros, sizeof(zeros))), 0);
	assert_int_equal(multiboot_probe(tmp_write("", 0)), 0);
	assert_int_equal(multiboot_probe("/nonexistent/kernel.elf"), -ENOENT);
}

/* ---- refused images ----------------------------------------------------- */

static void test_err_files(void **state)
{
	struct guest_memory *mem = *state;
	uint8_t zeros[4096] = { 0 };
	const char *p;

	expect_error(mem, "/nonexistent/kernel.elf", NULL, NULL, 0, -ENOENT,
		     "/nonexistent/kernel.elf", NULL);
	p = tmp_write("", 0);
	expect_error(mem, p, NULL, NULL, 0, -ENOEXEC, p, "empty");
	p = tmp_write(zeros, sizeof(zeros));
	expect_error(mem, p, NULL, NULL, 0, -ENOEXEC, p, "no multiboot header in the first 8 KiB");
	expect_error(mem, "/", NULL, NULL, 0, -EISDIR, "/", NULL);
}

static void test_err_bad_checksum(void **state)
{
	struct guest_memory *mem = *state;
	struct seg segs[] = { { .paddr = 0x100000, .filesz = 0x10, .memsz = 0x10 } };
	struct buf img = elf_image(segs, 1, 0x100000, 0);
	const char *p;

	img.p[MB_HDR_OFF + 8] ^= 1;
	p = buf_write(&img);
	expect_error(mem, p, NULL, NULL, 0, -ENOEXEC, p, "checksum");
	assert_int_equal(multiboot_probe(p), 0);
}

static void test_err_not_elf_no_kludge(void **state)
{
	struct guest_memory *mem = *state;
	uint8_t buf[256];
	const char *p;

	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = file_byte(i);
	mb_header_put(buf + 16, MB_HF_PAGE_ALIGN);
	p = tmp_write(buf, sizeof(buf));
	expect_error(mem, p, NULL, NULL, 0, -ENOEXEC, p, "not an ELF");
}

static void test_err_unsupported_flag(void **state)
{
	struct guest_memory *mem = *state;
	struct seg segs[] = { { .paddr = 0x100000, .filesz = 0x10, .memsz = 0x10 } };
	struct buf img = elf_image(segs, 1, 0x100000, 1u << 3);
	const char *p = buf_write(&img);

	expect_error(mem, p, NULL, NULL, 0, -ENOTSUP, p, "flags");
	/* Optional bits 17-31 are fine. */
	img = elf_image(segs, 1, 0x100000, 1u << 20);
	p = buf_write(&img);
	{
		struct boot_entry e;
		char err[256];

		assert_int_equal(load(mem, p, NULL, NULL, 0, &e, err), 0);
	}
}

static void test_err_elf_headers(void **state)
{
	struct guest_memory *mem = *state;
	struct seg segs[] = { { .paddr = 0x100000, .filesz = 0x10, .memsz = 0x10 } };
	struct buf img;
	Elf32_Ehdr *eh;
	uint8_t small[40] = { 0x7f, 'E', 'L', 'F', ELFCLASS32, ELFDATA2LSB, EV_CURRENT };
	const char *p;

	img = elf_image(segs, 1, 0x100000, 0);
	img.p[EI_CLASS] = ELFCLASS64;
	expect_refused(mem, img, -ENOEXEC, "ELF64");

	img = elf_image(segs, 1, 0x100000, 0);
	((Elf32_Ehdr *)img.p)->e_machine = EM_X86_64;
	expect_refused(mem, img, -ENOEXEC, "EM_386");

	img = elf_image(segs, 1, 0x100000, 0);
	img.p[EI_DATA] = ELFDATA2MSB;
	expect_refused(mem, img, -ENOEXEC, NULL);

	img = elf_image(segs, 1, 0x100000, 0);
	((Elf32_Ehdr *)img.p)->e_type = ET_DYN;
	expect_refused(mem, img, -ENOEXEC, NULL);

	/* A file shorter than the ELF header. */
	mb_header_put(small + 16, 0);
	p = tmp_write(small, sizeof(small));
	expect_error(mem, p, NULL, NULL, 0, -ENOEXEC, p, "truncated");

	/* Program headers past the end of the file. */
	img = elf_image(segs, 1, 0x100000, 0);
	eh = (Elf32_Ehdr *)img.p;
	eh->e_phnum = 1000;
	expect_refused(mem, img, -ENOEXEC, "program header");

	img = elf_image(segs, 1, 0x100000, 0);
	((Elf32_Ehdr *)img.p)->e_phoff = 0xFFFFFFF0;
	expect_refused(mem, img, -ENOEXEC, "program header");

	img = elf_image(segs, 1, 0x100000, 0);
	((Elf32_Ehdr *)img.p)->e_phentsize = 16;
	expect_refused(mem, img, -ENOEXEC, "program header");

	img = elf_image(segs, 1, 0x100000, 0);
	((Elf32_Ehdr *)img.p)->e_phnum = 0;
	expect_refused(mem, img, -ENOEXEC, "program header");

	/* Only a PT_NOTE: nothing to load. */
	segs[0].type = PT_NOTE;
	expect_refused(mem, elf_image(segs, 1, 0x100000, 0), -ENOEXEC, "no loadable");
}

static void test_err_segment_outside_ram(void **state)
{
	struct guest_memory *mem = *state;
	const uint64_t ram = 64 * MiB;
	struct seg beyond[] = { { .paddr = 128 * MiB, .filesz = 0x10, .memsz = 0x10 } };
	/* Starts in RAM, its bss runs past the end. */
	struct seg straddle[] = { { .paddr = ram - 0x100, .filesz = 0x10, .memsz = 0x1000 } };
	/* paddr + memsz wraps in 32 bits. */
	struct seg wrap[] = { { .paddr = 0xFFFFF000, .filesz = 0x10, .memsz = 0x2000 } };
	struct seg hole[] = { { .paddr = 0xFEE00000, .filesz = 0x10, .memsz = 0x10 } };
	/* A good segment before a bad one must not be written either. */
	struct seg second_bad[] = {
		{ .paddr = 0x100000, .filesz = 0x10, .memsz = 0x10 },
		{ .paddr = ram, .filesz = 0x10, .memsz = 0x10 },
	};

	ram_fill(mem, 0x100000, 0x10);
	expect_refused(mem, elf_image(beyond, 1, 0x100000, 0), -ENOMEM, "outside guest RAM");
	expect_refused(mem, elf_image(straddle, 1, 0x100000, 0), -ENOMEM, "outside guest RAM");
	assert_int_equal(ram_byte(mem, ram - 0x100), 0);
	expect_refused(mem, elf_image(wrap, 1, 0x100000, 0), -ENOMEM, "outside guest RAM");
	expect_refused(mem, elf_image(hole, 1, 0x100000, 0), -ENOMEM, "outside guest RAM");
	expect_refused(mem, elf_image(second_bad, 2, 0x100000, 0), -ENOMEM, "outside guest RAM");
	assert_int_equal(ram_byte(mem, 0x100000), FILL);
}

static void test_err_segment_file_range(void **state)
{
	struct guest_memory *mem = *state;
	/* The image is SEG_DATA_OFF + 0x2000 bytes long. */
	struct seg past_end[] = { { .paddr = 0x100000, .offset = SEG_DATA_OFF + 0x1F00,
				    .filesz = 0x200, .memsz = 0x200 } };
	struct seg wraps[] = { { .paddr = 0x100000, .offset = 0xFFFFFFF0,
				 .filesz = 0x20, .memsz = 0x20 } };
	struct seg file_gt_mem[] = { { .paddr = 0x100000, .filesz = 0x20, .memsz = 0x10 } };
	struct seg at_end[] = { { .paddr = 0x100000, .offset = SEG_DATA_OFF + 0x1F00,
				  .filesz = 0x100, .memsz = 0x100 } };
	struct buf img;
	struct boot_entry e;
	char err[256];
	const char *p;

	expect_refused(mem, elf_image(past_end, 1, 0x100000, 0), -ENOEXEC, "end of the file");
	expect_refused(mem, elf_image(wraps, 1, 0x100000, 0), -ENOEXEC, "end of the file");
	expect_refused(mem, elf_image(file_gt_mem, 1, 0x100000, 0), -ENOEXEC, "file size");
	/* Exactly up to the last byte is fine. */
	img = elf_image(at_end, 1, 0x100000, 0);
	p = buf_write(&img);
	assert_int_equal(load(mem, p, NULL, NULL, 0, &e, err), 0);
}

static void test_err_overlaps_info_area(void **state)
{
	struct guest_memory *mem = *state;
	struct seg segs[] = { { .paddr = MB_INFO_START - 0x100, .filesz = 0x10, .memsz = 0x200 } };

	expect_refused(mem, elf_image(segs, 1, MB_INFO_START - 0x100, 0), -EINVAL, "info area");
}

static void test_err_aout_kludge(void **state)
{
	struct guest_memory *mem = *state;
	struct buf img;

	/* load_addr above header_addr: header_addr = load_addr + (0x10 - 0x20). */
	img = aout_image(0x1000, 0x10, 0x20, 0x100000, 0, 0, 0x100000, 0);
	expect_refused(mem, img, -ENOEXEC, "load_addr");
	/* The load start would be before the file start. */
	img = aout_image(0x1000, 0x10, 0, 0x100000, 0, 0, 0x100000, 0);
	((struct multiboot_header *)(img.p + 0x10))->load_addr = 0x100000 - 0x100;
	expect_refused(mem, img, -ENOEXEC, "before the file start");
	/* load_end_addr past the end of the file. */
	img = aout_image(0x1000, 0x10, 0, 0x100000, 0x100000 + 0x1001, 0, 0x100000, 0);
	expect_refused(mem, img, -ENOEXEC, "end of the file");
	/* load_end_addr below load_addr. */
	img = aout_image(0x1000, 0x10, 0, 0x100000, 0xFFF00, 0, 0x100000, 0);
	expect_refused(mem, img, -ENOEXEC, "load_end_addr");
	/* bss_end_addr inside the loaded part. */
	img = aout_image(0x1000, 0x10, 0, 0x100000, 0x100800, 0x100400, 0x100000, 0);
	expect_refused(mem, img, -ENOEXEC, "bss_end_addr");
	/* bss beyond RAM. */
	img = aout_image(0x1000, 0x10, 0, 0x100000, 0x100800, 0x8000000, 0x100000, 0);
	expect_refused(mem, img, -ENOMEM, "outside guest RAM");
	/* The header's address fields cut off by the end of the file. */
	img = aout_image(0x1000, 0x10, 0, 0x100000, 0, 0, 0x100000, 0);
	img.len = 0x10 + 20;
	expect_refused(mem, img, -ENOEXEC, "truncated");
}

static void test_err_modules(void **state)
{
	struct guest_memory *mem = *state;        /* 16 MiB */
	struct seg segs[] = { { .paddr = 0x100000, .filesz = 0x10, .memsz = 0x10 } };
	struct buf img = elf_image(segs, 1, 0x100000, 0);
	const char *k = buf_write(&img);
	struct multiboot_module_arg mods[2] = { { tmp_write("x", 1), NULL } };
	const char *big;
	int fd;

	mods[1] = (struct multiboot_module_arg){ "/nonexistent/initrd", NULL };
	expect_error(mem, k, NULL, mods, 2, -ENOENT, "/nonexistent/initrd", NULL);

	/* 15 MiB fits from 1 MiB on but not above the kernel and the first module. */
	big = tmp_write("", 0);
	fd = open(big, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 15 * MiB), 0);
	close(fd);
	mods[1] = (struct multiboot_module_arg){ big, NULL };
	expect_error(mem, k, NULL, mods, 2, -ENOMEM, big, "does not fit");
	mods[0] = (struct multiboot_module_arg){ big, NULL };
	expect_error(mem, k, NULL, mods, 1, -ENOMEM, big, "does not fit");
}

static void test_err_cmdline_too_long(void **state)
{
	struct guest_memory *mem = *state;
	struct seg segs[] = { { .paddr = 0x100000, .filesz = 0x10, .memsz = 0x10 } };
	struct buf img = elf_image(segs, 1, 0x100000, 0);
	const char *k = buf_write(&img);
	size_t len = MB_INFO_END - MB_INFO_START;
	char *longarg = malloc(len + 1);
	struct multiboot_module_arg mod = { tmp_write("x", 1), NULL };
	struct boot_entry e;
	char err[256];

	assert_non_null(longarg);
	memset(longarg, 'a', len);
	longarg[len] = '\0';
	expect_error(mem, k, longarg, NULL, 0, -E2BIG, k, "too long");
	mod.cmdline = longarg;
	expect_error(mem, k, NULL, &mod, 1, -E2BIG, mod.path, "too long");
	/* 4 KiB, a typical limit, fits. */
	longarg[4096] = '\0';
	assert_int_equal(load(mem, k, longarg, &mod, 1, &e, err), 0);
	free(longarg);
}

#define T64(f) cmocka_unit_test_setup_teardown(f, setup_64m, teardown)
#define T16(f) cmocka_unit_test_setup_teardown(f, setup_16m, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T64(test_elf_segments),
		T64(test_elf_higher_half_entry),
		T64(test_cmdline_without_args),
		T16(test_memory_info_16m),
		T16(test_memory_info_above_4g),
		T64(test_aout_kludge),
		T64(test_aout_kludge_whole_file),
		T64(test_aout_kludge_in_elf),
		T64(test_modules),
		T64(test_modules_above_info_area),
		T64(test_video_flag_ignored),
		T64(test_header_search_bounds),
		T16(test_probe),
		T64(test_err_files),
		T64(test_err_bad_checksum),
		T64(test_err_not_elf_no_kludge),
		T64(test_err_unsupported_flag),
		T64(test_err_elf_headers),
		T64(test_err_segment_outside_ram),
		T64(test_err_segment_file_range),
		T64(test_err_overlaps_info_area),
		T64(test_err_aout_kludge),
		T16(test_err_modules),
		T64(test_err_cmdline_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
