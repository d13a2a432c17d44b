/*
 * Linux loader: synthetic ELF64 vmlinux images and bzImages (with a gzip
 * payload made here) are written to temporary files and loaded; guest RAM,
 * the zero page, the PVH start info and the entry are checked against the
 * boot protocol.  A real kernel is loaded when one is found
 * (LINUX_TEST_BZIMAGE, build/linux/...), and the CPU entry states are run
 * under KVM when /dev/kvm works.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <asm/bootparam.h>
#include <linux/kvm.h>
#include "vmm/boot_cpu.h"
#include "vmm/cpu_state.h"
#include "vmm/bzimage.h"
#include "vmm/decompress.h"
#include "vmm/e820.h"
#include "vmm/kvm.h"
#include "vmm/linux_boot.h"
#include "vmm/memory.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "tests/unit/test_files.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define FILL 0xAA                 /* RAM pattern that loading must overwrite or keep */
#define SEG_DATA_OFF 0x1000u
#define NOTE_OFF 0x800u

struct seg {
	uint64_t paddr, filesz, memsz;
};

struct note {
	const char *name;
	uint32_t type, descsz;
	uint64_t desc;
};

/* ---- helpers ----------------------------------------------------------- */

static uint8_t seg_byte(unsigned seg, uint64_t i)
{
	return (uint8_t)(0x31 * (seg + 1) + i * 7) | 1;      /* never zero: tells data from bss */
}

static struct buf buf_dup(const void *data, size_t len)
{
	struct buf b = { malloc(len), len };

	assert_non_null(b.p);
	memcpy(b.p, data, len);
	return b;
}

static struct guest_memory mem_make(uint64_t size)
{
	struct guest_memory mem;

	assert_int_equal(guest_memory_init(&mem, size), 0);
	/* Only low RAM we look at: the rest stays untouched (MAP_NORESERVE). */
	memset(mem.region[0].host, FILL, size < 128 * MiB ? size : 128 * MiB);
	return mem;
}

static void put_note(uint8_t *p, const struct note *n, size_t *off)
{
	uint32_t namesz = strlen(n->name) + 1;
	uint32_t hdr[3] = { namesz, n->descsz, n->type };

	memcpy(p + *off, hdr, 12);
	*off += 12;
	memcpy(p + *off, n->name, namesz);
	*off += (namesz + 3) & ~3u;
	memcpy(p + *off, &n->desc, n->descsz);
	*off += (n->descsz + 3) & ~3u;
}

/* An ELF64 x86-64 vmlinux: PT_LOADs for @segs, one PT_NOTE with @notes. */
static struct buf vmlinux_make(const struct seg *segs, unsigned n, uint64_t entry,
			       const struct note *notes, unsigned nnotes)
{
	struct buf b;
	Elf64_Ehdr *eh;
	Elf64_Phdr *ph;
	uint64_t off = SEG_DATA_OFF;
	size_t noff = NOTE_OFF;

	b.len = SEG_DATA_OFF;
	for (unsigned i = 0; i < n; i++)
		b.len += (segs[i].filesz + 0xfff) & ~0xfffull;
	b.p = calloc(1, b.len);
	assert_non_null(b.p);
	eh = (Elf64_Ehdr *)b.p;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = entry;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = n + (nnotes ? 1 : 0);
	ph = (Elf64_Phdr *)(b.p + sizeof(*eh));
	for (unsigned i = 0; i < n; i++, ph++) {
		*ph = (Elf64_Phdr){
			.p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = off,
			.p_vaddr = 0xffffffff80000000ull + segs[i].paddr, .p_paddr = segs[i].paddr,
			.p_filesz = segs[i].filesz, .p_memsz = segs[i].memsz, .p_align = 0x1000,
		};
		for (uint64_t j = 0; j < segs[i].filesz; j++)
			b.p[off + j] = seg_byte(i, j);
		off += (segs[i].filesz + 0xfff) & ~0xfffull;
	}
	for (unsigned i = 0; i < nnotes; i++)
		put_note(b.p, &notes[i], &noff);
	assert_true(noff <= SEG_DATA_OFF);
	if (nnotes)
		*ph = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = NOTE_OFF,
				    .p_filesz = noff - NOTE_OFF, .p_align = 4 };
	return b;
}

/* The default test kernel: text+data at 1 MiB with bss, more at 2 MiB. */
static const struct seg std_segs[] = {
	{ 0x100000, 0x3000, 0x5000 },
	{ 0x200000, 0x1800, 0x1800 },
};
#define STD_ENTRY 0x100040ull

struct bz_opts {
	uint16_t version;
	uint8_t relocatable;
	uint32_t cmdline_size;
	uint32_t initrd_addr_max;
	uint32_t init_size;
	uint64_t pref_address;
};

static const struct bz_opts bz_default = {
	.version = 0x020f, .relocatable = 1, .cmdline_size = 2047,
	.initrd_addr_max = 0x7fffffff, .init_size = 0x10000, .pref_address = 0x100000,
};

#define BZ_SECTS 3
#define BZ_STUB 0x200             /* bytes of "decompressor" before the payload */

/* A bzImage whose payload is @payload (taken over). */
static struct buf bzimage_make(const struct bz_opts *o, struct buf *payload)
{
	size_t setup = (BZ_SECTS + 1) * 512;
	size_t pm = (BZ_STUB + payload->len + 15) & ~15ull;
	struct buf b = { calloc(1, setup + pm), setup + pm };
	struct setup_header *h = (struct setup_header *)(b.p + BZ_HDR_OFFSET);

	assert_non_null(b.p);
	b.p[0x1ef] = 0xff;                       /* the sentinel: must not reach the zero page */
	b.p[0x200] = 0xeb;
	b.p[0x201] = 0x26c - 0x202;
	h->setup_sects = BZ_SECTS;
	h->syssize = pm / 16;
	h->root_dev = 0x1234;                    /* a field the loader passes on */
	h->boot_flag = BZ_BOOT_FLAG;
	h->header = BZ_MAGIC;
	h->version = o->version;
	h->loadflags = LOADED_HIGH | KASLR_FLAG;
	h->code32_start = 0x100000;
	h->initrd_addr_max = o->initrd_addr_max;
	h->kernel_alignment = 0x200000;
	h->relocatable_kernel = o->relocatable;
	h->xloadflags = XLF_KERNEL_64;
	h->cmdline_size = o->cmdline_size;
	h->payload_offset = BZ_STUB;
	h->payload_length = payload->len;
	h->pref_address = o->pref_address;
	h->init_size = o->init_size;
	memset(b.p + setup, 0x90, BZ_STUB);      /* "nop": stands for the decompressor */
	memcpy(b.p + setup + BZ_STUB, payload->p, payload->len);
	free(payload->p);
	payload->p = NULL;
	return b;
}

/* A bzImage carrying std_segs' vmlinux, gzip'ed with the size appended. */
static const char *bzimage_std(const struct bz_opts *o)
{
	struct buf v = vmlinux_make(std_segs, 2, STD_ENTRY, NULL, 0);
	struct buf c = buf_gzip(&v, 6), b;

	buf_append_size(&c, v.len);
	free(v.p);
	b = bzimage_make(o, &c);
	return buf_write(&b);
}

static const char *vmlinux_std(void)
{
	struct buf v = vmlinux_make(std_segs, 2, STD_ENTRY, NULL, 0);

	return buf_write(&v);
}

static int load(struct guest_memory *mem, const struct linux_boot_args *a,
		struct linux_boot_entry *e, char *err)
{
	err[0] = '\0';
	return linux_boot_load(mem, a, e, err, 512);
}

/* A load that must work: its message otherwise. */
static void load_ok(struct guest_memory *mem, const struct linux_boot_args *a,
		    struct linux_boot_entry *e)
{
	char err[512];

	if (load(mem, a, e, err))
		fail_msg("%s", err);
}

static void expect_fail(struct guest_memory *mem, const struct linux_boot_args *a, int code,
			const char *what)
{
	struct linux_boot_entry e;
	char err[512];
	int ret = load(mem, a, &e, err);

	if (ret != code)
		fail_msg("expected %d, got %d: %s", code, ret, err);
	if (!strstr(err, what))
		fail_msg("message \"%s\" lacks \"%s\"", err, what);
}

static void zero_page_get(const struct guest_memory *mem, struct boot_params *bp)
{
	assert_int_equal(gpa_read(mem, LINUX_ZERO_PAGE_ADDR, bp, sizeof(*bp)), 0);
}

static void check_std_segments(const struct guest_memory *mem)
{
	for (unsigned i = 0; i < 2; i++) {
		const uint8_t *p = gpa_ptr(mem, std_segs[i].paddr, std_segs[i].memsz);

		for (uint64_t j = 0; j < std_segs[i].filesz; j++)
			if (p[j] != seg_byte(i, j))
				fail_msg("segment %u byte 0x%llx: %02x", i, (unsigned long long)j, p[j]);
		for (uint64_t j = std_segs[i].filesz; j < std_segs[i].memsz; j++)
			assert_int_equal(p[j], 0);
	}
	/* Bytes just past the bss are not ours. */
	assert_int_equal(*(const uint8_t *)gpa_ptr(mem, 0x105000, 1), FILL);
}

static void check_e820(const struct guest_memory *mem, const struct boot_params *bp)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	unsigned n = e820_build(mem, map);

	assert_int_equal(bp->e820_entries, n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(bp->e820_table[i].addr, map[i].addr);
		assert_int_equal(bp->e820_table[i].size, map[i].size);
		assert_int_equal(bp->e820_table[i].type, map[i].type);
	}
}

static const char *cmdline_at(const struct guest_memory *mem, uint64_t gpa)
{
	return gpa_ptr(mem, gpa, 1);
}

/* ---- vmlinux ------------------------------------------------------------- */

static void test_vmlinux(void **state)
{
	struct guest_memory mem = mem_make(64 * MiB);
	struct linux_boot_args a = { .kernel = vmlinux_std(), .cmdline = "console=ttyS0 quiet",
				     .unpack = true };
	struct linux_boot_entry e;
	struct boot_params bp;

	(void)state;
	assert_int_equal(linux_probe(a.kernel), 2);
	load_ok(&mem, &a, &e);
	assert_int_equal(e.mode, LINUX_CPU_LONG64);
	assert_int_equal(e.ip, STD_ENTRY);
	assert_int_equal(e.info, LINUX_ZERO_PAGE_ADDR);
	assert_int_equal(e.kernel_start, 0x100000);
	assert_int_equal(e.kernel_end, 0x201800);
	assert_int_equal(e.initrd_addr, 0);
	assert_int_equal(e.compression, KCOMP_NONE);
	check_std_segments(&mem);
	assert_string_equal(cmdline_at(&mem, LINUX_CMDLINE_ADDR), "console=ttyS0 quiet");

	/* A zero page as a boot loader must leave it for a vmlinux. */
	zero_page_get(&mem, &bp);
	assert_int_equal(bp.hdr.header, BZ_MAGIC);
	assert_int_equal(bp.hdr.boot_flag, BZ_BOOT_FLAG);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_true(bp.hdr.loadflags & LOADED_HIGH);
	assert_int_equal(bp.hdr.cmd_line_ptr, LINUX_CMDLINE_ADDR);
	assert_int_equal(bp.ext_cmd_line_ptr, 0);
	assert_int_equal(bp.hdr.cmdline_size, LINUX_DEFAULT_CMDLINE_SIZE);
	assert_int_equal(bp.hdr.ramdisk_image, 0);
	assert_int_equal(bp.hdr.ramdisk_size, 0);
	assert_int_equal(bp.acpi_rsdp_addr, 0);
	assert_int_equal(bp.sentinel, 0);
	assert_int_equal(bp.screen_info.orig_video_isVGA, 0);
	check_e820(&mem, &bp);
	guest_memory_free(&mem);
}

static void test_vmlinux_rsdp_no_cmdline(void **state)
{
	struct guest_memory mem = mem_make(64 * MiB);
	struct linux_boot_args a = { .kernel = vmlinux_std(), .rsdp = 0xe0000 };
	struct linux_boot_entry e;
	struct boot_params bp;

	(void)state;
	load_ok(&mem, &a, &e);
	zero_page_get(&mem, &bp);
	assert_int_equal(bp.acpi_rsdp_addr, 0xe0000);
	assert_string_equal(cmdline_at(&mem, LINUX_CMDLINE_ADDR), "");
	guest_memory_free(&mem);
}

static void test_vmlinux_errors(void **state)
{
	struct guest_memory mem = mem_make(16 * MiB);
	struct linux_boot_args a = { .unpack = true };
	struct buf v;
	uint8_t *ram = gpa_ptr(&mem, 0x100000, 1);

	(void)state;
	/* Entry outside every segment: a virtual address, say. */
	v = vmlinux_make(std_segs, 2, 0xffffffff81000000ull, NULL, 0);
	a.kernel = buf_write(&v);
	expect_fail(&mem, &a, -ENOEXEC, "entry point 0xffffffff81000000");
	assert_int_equal(*ram, FILL);            /* nothing was loaded */

	/* A segment in the boot area below 1 MiB. */
	v = vmlinux_make((const struct seg[]){ { 0x100000, 0x100, 0x100 }, { 0x8000, 0x100, 0x100 } },
			 2, 0x100000, NULL, 0);
	a.kernel = buf_write(&v);
	expect_fail(&mem, &a, -EINVAL, "below 1 MiB");
	assert_int_equal(*ram, FILL);

	/* A segment past the end of RAM, and one wrapping around. */
	v = vmlinux_make((const struct seg[]){ { 0x100000, 0x100, 0x100 }, { 15 * MiB, 0x100, 2 * MiB } },
			 2, 0x100000, NULL, 0);
	a.kernel = buf_write(&v);
	expect_fail(&mem, &a, -ENOMEM, "outside guest RAM");
	assert_int_equal(*ram, FILL);
	v = vmlinux_make((const struct seg[]){ { 0x100000, 0x100, UINT64_MAX - 0xff } }, 1, 0x100000, NULL, 0);
	a.kernel = buf_write(&v);
	expect_fail(&mem, &a, -ENOMEM, "outside guest RAM");

	/* File size above memory size; segment data past the end of the file. */
	v = vmlinux_make((const struct seg[]){ { 0x100000, 0x200, 0x100 } }, 1, 0x100000, NULL, 0);
	a.kernel = buf_write(&v);
	expect_fail(&mem, &a, -ENOEXEC, "file size");
	v = vmlinux_make(std_segs, 2, STD_ENTRY, NULL, 0);
	v.len -= 0x1000;
	a.kernel = buf_write(&v);
	expect_fail(&mem, &a, -ENOEXEC, "past the end of the file");

	/* Program headers past the end; no PT_LOAD at all. */
	v = vmlinux_make(std_segs, 2, STD_ENTRY, NULL, 0);
	((Elf64_Ehdr *)v.p)->e_phnum = 60000;
	a.kernel = buf_write(&v);
	expect_fail(&mem, &a, -ENOEXEC, "program headers");
	v = vmlinux_make(NULL, 0, STD_ENTRY, NULL, 0);
	a.kernel = buf_write(&v);
	expect_fail(&mem, &a, -ENOEXEC, "no loadable segment");

	/* ELF32, not x86-64, not ELF, no file. */
	v = vmlinux_make(std_segs, 2, STD_ENTRY, NULL, 0);
	v.p[EI_CLASS] = ELFCLASS32;
	a.kernel = buf_write(&v);
	expect_fail(&mem, &a, -ENOEXEC, "ELF64");
	assert_int_equal(linux_probe(a.kernel), 0);
	v = vmlinux_make(std_segs, 2, STD_ENTRY, NULL, 0);
	((Elf64_Ehdr *)v.p)->e_machine = EM_AARCH64;
	a.kernel = buf_write(&v);
	expect_fail(&mem, &a, -ENOEXEC, "x86-64");
	a.kernel = tmp_write("#!/bin/sh\necho hello\n", 21);
	expect_fail(&mem, &a, -ENOEXEC, "neither a Linux bzImage nor an ELF64 vmlinux");
	assert_int_equal(linux_probe(a.kernel), 0);
	a.kernel = "/nonexistent/vmlinux";
	expect_fail(&mem, &a, -ENOENT, "/nonexistent/vmlinux");
	assert_int_equal(linux_probe(a.kernel), -ENOENT);
	a.kernel = "/tmp";
	expect_fail(&mem, &a, -EISDIR, "not a regular file");
	assert_int_equal(*ram, FILL);
	guest_memory_free(&mem);
}

/* ---- bzImage --------------------------------------------------------------- */

static void test_bzimage_unpack(void **state)
{
	struct guest_memory mem = mem_make(64 * MiB);
	struct bz_opts o = bz_default;
	struct linux_boot_args a = { .cmdline = "root=/dev/vda", .unpack = true };
	struct linux_boot_entry e;
	struct boot_params bp;

	(void)state;
	o.init_size = 0x400000;
	a.kernel = bzimage_std(&o);
	assert_int_equal(linux_probe(a.kernel), 1);
	load_ok(&mem, &a, &e);
	assert_int_equal(e.mode, LINUX_CPU_LONG64);
	assert_int_equal(e.ip, STD_ENTRY);
	assert_int_equal(e.compression, KCOMP_GZIP);
	assert_int_equal(e.kernel_start, 0x100000);
	/* The kernel may use init_size from its start. */
	assert_int_equal(e.kernel_end, 0x100000 + 0x400000);
	check_std_segments(&mem);
	/* The "decompressor" stub is not loaded: the vmlinux is. */
	assert_int_not_equal(*(uint8_t *)gpa_ptr(&mem, 0x100000, 1), 0x90);

	zero_page_get(&mem, &bp);
	/* The image's header, then what a loader writes. */
	assert_int_equal(bp.hdr.header, BZ_MAGIC);
	assert_int_equal(bp.hdr.root_dev, 0x1234);
	assert_int_equal(bp.hdr.version, 0x020f);
	assert_int_equal(bp.hdr.init_size, 0x400000);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_int_equal(bp.hdr.loadflags, LOADED_HIGH | CAN_USE_HEAP);   /* KASLR_FLAG cleared */
	assert_int_equal(bp.hdr.heap_end_ptr, 0xde00);
	assert_int_equal(bp.hdr.vid_mode, 0xffff);
	assert_int_equal(bp.hdr.cmd_line_ptr, LINUX_CMDLINE_ADDR);
	assert_int_equal(bp.sentinel, 0);
	assert_string_equal(cmdline_at(&mem, LINUX_CMDLINE_ADDR), "root=/dev/vda");
	check_e820(&mem, &bp);
	guest_memory_free(&mem);
}

/* Without unpacking: the protected-mode part where the header says. */
static void test_bzimage_no_unpack(void **state)
{
	struct guest_memory mem = mem_make(64 * MiB);
	struct bz_opts o = bz_default;
	struct linux_boot_args a = { .unpack = false };
	struct linux_boot_entry e;
	struct boot_params bp;

	(void)state;
	o.pref_address = 0x1000000;
	o.init_size = 0x200000;
	a.kernel = bzimage_std(&o);
	load_ok(&mem, &a, &e);
	assert_int_equal(e.mode, LINUX_CPU_PROT32);
	assert_int_equal(e.ip, 0x1000000);
	assert_int_equal(e.info, LINUX_ZERO_PAGE_ADDR);
	assert_int_equal(e.kernel_end, 0x1200000);
	assert_int_equal(e.compression, KCOMP_NONE);
	assert_int_equal(*(uint8_t *)gpa_ptr(&mem, 0x1000000, 1), 0x90);
	assert_memory_equal(gpa_ptr(&mem, 0x1000000 + BZ_STUB, 2), "\x1f\x8b", 2);
	zero_page_get(&mem, &bp);
	assert_int_equal(bp.hdr.code32_start, 0x1000000);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);

	/* init_size beyond RAM. */
	o.init_size = 48 * MiB + 0x1000;
	a.kernel = bzimage_std(&o);
	expect_fail(&mem, &a, -ENOMEM, "RAM below 4 GiB ends at 0x4000000");

	/*
	 * Not relocatable: loaded at 1 MiB, but it moves itself to pref_address
	 * to run, so it occupies init_size from there.
	 */
	o.relocatable = 0;
	o.init_size = 0x200000;
	a.kernel = bzimage_std(&o);
	load_ok(&mem, &a, &e);
	assert_int_equal(e.ip, 0x100000);
	assert_int_equal(*(uint8_t *)gpa_ptr(&mem, 0x100000, 1), 0x90);
	assert_int_equal(e.kernel_start, 0x100000);
	assert_int_equal(e.kernel_end, 0x1200000);
	o.init_size = 48 * MiB + 1;
	a.kernel = bzimage_std(&o);
	expect_fail(&mem, &a, -ENOMEM, "init_size");
	o.relocatable = 1;

	/* The PVH entry needs the vmlinux. */
	o.init_size = 0x200000;
	a.kernel = bzimage_std(&o);
	a.entry = LINUX_ENTRY_PVH;
	expect_fail(&mem, &a, -ENOTSUP, "--no-unpack");
	guest_memory_free(&mem);
}

static void test_bzimage_errors(void **state)
{
	struct guest_memory mem = mem_make(64 * MiB);
	struct bz_opts o = bz_default;
	struct linux_boot_args a = { .unpack = true };
	struct buf p, b;

	(void)state;
	/* Too old to unpack (2.06-2.07 have no payload fields), and too old at all. */
	o.version = 0x0207;
	a.kernel = bzimage_std(&o);
	expect_fail(&mem, &a, -ENOTSUP, "--no-unpack");
	o.version = 0x0205;
	a.kernel = bzimage_std(&o);
	expect_fail(&mem, &a, -ENOTSUP, "too old");

	/* A bzip2 payload; an unknown one; a corrupt gzip one. */
	o = bz_default;
	p = buf_dup("BZh91AY&SYxxxxxxxxxx", 20);
	b = bzimage_make(&o, &p);
	a.kernel = buf_write(&b);
	expect_fail(&mem, &a, -ENOTSUP, "bzip2 compression is not supported");
	p = buf_dup("garbage!garbage!", 16);
	b = bzimage_make(&o, &p);
	a.kernel = buf_write(&b);
	expect_fail(&mem, &a, -ENOEXEC, "not recognised");
	p = buf_dup("\x1f\x8b\x08\x00garbagegarbage", 18);
	b = bzimage_make(&o, &p);
	a.kernel = buf_write(&b);
	expect_fail(&mem, &a, -EBADMSG, "gzip");

	/* The payload decompresses past init_size: refused, not loaded. */
	o.init_size = 0x1000;
	a.kernel = bzimage_std(&o);
	expect_fail(&mem, &a, -EFBIG, "limit");
	assert_int_equal(*(uint8_t *)gpa_ptr(&mem, 0x100000, 1), FILL);
	guest_memory_free(&mem);
}

/* ---- command line ------------------------------------------------------------ */

static void test_cmdline_limit(void **state)
{
	struct guest_memory mem = mem_make(64 * MiB);
	struct bz_opts o = bz_default;
	struct linux_boot_args a = { .unpack = true, .cmdline = "0123456789" };
	struct linux_boot_entry e;
	char *long_line;

	(void)state;
	o.cmdline_size = 10;                     /* excludes the NUL */
	a.kernel = bzimage_std(&o);
	load_ok(&mem, &a, &e);
	assert_string_equal(cmdline_at(&mem, LINUX_CMDLINE_ADDR), "0123456789");
	a.cmdline = "0123456789a";
	expect_fail(&mem, &a, -E2BIG, "at most 10");

	/* A vmlinux has no header: x86's COMMAND_LINE_SIZE. */
	long_line = malloc(LINUX_DEFAULT_CMDLINE_SIZE + 2);
	memset(long_line, 'x', LINUX_DEFAULT_CMDLINE_SIZE + 1);
	long_line[LINUX_DEFAULT_CMDLINE_SIZE + 1] = '\0';
	a.kernel = vmlinux_std();
	a.cmdline = long_line;
	expect_fail(&mem, &a, -E2BIG, "at most 2047");
	long_line[LINUX_DEFAULT_CMDLINE_SIZE] = '\0';
	load_ok(&mem, &a, &e);
	assert_int_equal(strlen(cmdline_at(&mem, LINUX_CMDLINE_ADDR)), LINUX_DEFAULT_CMDLINE_SIZE);
	free(long_line);
	guest_memory_free(&mem);
}

/* ---- initrd ---------------------------------------------------------------- */

static struct buf initrd_make(size_t len)
{
	struct buf b = { malloc(len), len };

	for (size_t i = 0; i < len; i++)
		b.p[i] = (uint8_t)(i * 31 + 7);
	return b;
}

static void check_initrd(const struct guest_memory *mem, uint64_t at, size_t len)
{
	const uint8_t *p = gpa_ptr(mem, at, len);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(i * 31 + 7))
			fail_msg("initrd byte %zu", i);
}

static void test_initrd_top_of_ram(void **state)
{
	struct guest_memory mem = mem_make(64 * MiB);
	struct buf rd = initrd_make(5000);
	struct linux_boot_args a = { .kernel = vmlinux_std(), .initrd = buf_write(&rd) };
	struct linux_boot_entry e;
	struct boot_params bp;

	(void)state;
	load_ok(&mem, &a, &e);
	/* The highest page-aligned place that holds it below 64 MiB. */
	assert_int_equal(e.initrd_addr, 64 * MiB - 0x2000);
	assert_int_equal(e.initrd_size, 5000);
	check_initrd(&mem, e.initrd_addr, 5000);
	zero_page_get(&mem, &bp);
	assert_int_equal(bp.hdr.ramdisk_image, 64 * MiB - 0x2000);
	assert_int_equal(bp.hdr.ramdisk_size, 5000);
	assert_int_equal(bp.ext_ramdisk_image, 0);

	/* An empty initrd is none. */
	a.initrd = tmp_write("", 0);
	load_ok(&mem, &a, &e);
	assert_int_equal(e.initrd_addr, 0);
	zero_page_get(&mem, &bp);
	assert_int_equal(bp.hdr.ramdisk_image, 0);
	assert_int_equal(bp.hdr.ramdisk_size, 0);
	guest_memory_free(&mem);
}

/* initrd_addr_max below the end of RAM is the ceiling. */
static void test_initrd_addr_max(void **state)
{
	struct guest_memory mem = mem_make(64 * MiB);
	struct buf rd = initrd_make(0x3000);
	struct bz_opts o = bz_default;
	struct linux_boot_args a = { .initrd = buf_write(&rd), .unpack = true };
	struct linux_boot_entry e;

	(void)state;
	o.initrd_addr_max = 0x1ffffff;           /* the last byte it may occupy */
	a.kernel = bzimage_std(&o);
	load_ok(&mem, &a, &e);
	assert_int_equal(e.initrd_addr, 0x2000000 - 0x3000);
	check_initrd(&mem, e.initrd_addr, 0x3000);
	/* Also on the classic path. */
	a.unpack = false;
	load_ok(&mem, &a, &e);
	assert_int_equal(e.initrd_addr, 0x2000000 - 0x3000);
	guest_memory_free(&mem);
}

/* Above 3 GiB of RAM the initrd stays below the PCI hole. */
static void test_initrd_big_ram(void **state)
{
	struct guest_memory mem;
	struct buf rd = initrd_make(0x1000);
	struct bz_opts o = bz_default;
	struct linux_boot_args a = { .initrd = buf_write(&rd), .unpack = true };
	struct linux_boot_entry e;

	(void)state;
	assert_int_equal(guest_memory_init(&mem, 8 * GiB), 0);
	o.initrd_addr_max = 0xffffffff;
	a.kernel = bzimage_std(&o);
	load_ok(&mem, &a, &e);
	assert_int_equal(e.initrd_addr, 3 * GiB - 0x1000);
	check_initrd(&mem, e.initrd_addr, 0x1000);
	guest_memory_free(&mem);
}

static void test_initrd_does_not_fit(void **state)
{
	struct guest_memory mem = mem_make(16 * MiB);
	struct buf rd = initrd_make(14 * MiB);
	struct bz_opts o = bz_default;
	struct linux_boot_args a = { .initrd = buf_write(&rd), .unpack = true };
	struct linux_boot_entry e;

	(void)state;
	/* The kernel reaches 1 MiB + init_size = 3 MiB: 13 MiB remain. */
	o.init_size = 2 * MiB;
	a.kernel = bzimage_std(&o);
	expect_fail(&mem, &a, -ENOMEM, "initrd does not fit");
	/* Exactly the room there is fits. */
	rd = initrd_make(13 * MiB);
	a.initrd = buf_write(&rd);
	load_ok(&mem, &a, &e);
	assert_int_equal(e.initrd_addr, 3 * MiB);
	/* The ceiling can be the cause too. */
	o.initrd_addr_max = 2 * MiB;
	a.kernel = bzimage_std(&o);
	rd = initrd_make(4096);
	a.initrd = buf_write(&rd);
	expect_fail(&mem, &a, -ENOMEM, "initrd_addr_max");
	a.initrd = "/nonexistent/initrd";
	expect_fail(&mem, &a, -ENOENT, "/nonexistent/initrd");
	guest_memory_free(&mem);
}

/* ---- PVH ------------------------------------------------------------------- */

static void test_pvh_note(void **state)
{
	const struct note gnu = { "GNU", 3, 8, 0x1122334455667788ull };
	const struct note xen8 = { "Xen", XEN_ELFNOTE_PHYS32_ENTRY, 8, 0x100080 };
	const struct note xen4 = { "Xen", XEN_ELFNOTE_PHYS32_ENTRY, 4, 0x100090 };
	const struct note other_xen = { "Xen", 1, 8, 0xffffffff80000000ull };
	const struct note big = { "Xen", XEN_ELFNOTE_PHYS32_ENTRY, 8, 0x100000000ull };
	struct buf v;
	uint32_t entry = 0;

	(void)state;
	v = vmlinux_make(std_segs, 2, STD_ENTRY, (const struct note[]){ gnu, other_xen, xen8 }, 3);
	assert_int_equal(linux_pvh_entry(v.p, v.len, &entry), 1);
	assert_int_equal(entry, 0x100080);
	free(v.p);
	v = vmlinux_make(std_segs, 2, STD_ENTRY, (const struct note[]){ xen4 }, 1);
	assert_int_equal(linux_pvh_entry(v.p, v.len, &entry), 1);
	assert_int_equal(entry, 0x100090);
	free(v.p);
	v = vmlinux_make(std_segs, 2, STD_ENTRY, (const struct note[]){ gnu }, 1);
	assert_int_equal(linux_pvh_entry(v.p, v.len, &entry), 0);
	free(v.p);
	v = vmlinux_make(std_segs, 2, STD_ENTRY, NULL, 0);
	assert_int_equal(linux_pvh_entry(v.p, v.len, &entry), 0);
	free(v.p);
	/* Entries above 4 GiB and notes running past their segment are malformed. */
	v = vmlinux_make(std_segs, 2, STD_ENTRY, (const struct note[]){ big }, 1);
	assert_int_equal(linux_pvh_entry(v.p, v.len, &entry), -ENOEXEC);
	free(v.p);
	v = vmlinux_make(std_segs, 2, STD_ENTRY, (const struct note[]){ gnu }, 1);
	((uint32_t *)(v.p + NOTE_OFF))[1] = 0x10000;     /* descsz */
	assert_int_equal(linux_pvh_entry(v.p, v.len, &entry), -ENOEXEC);
	free(v.p);
}

static void test_pvh_boot(void **state)
{
	struct guest_memory mem = mem_make(64 * MiB);
	const struct note xen = { "Xen", XEN_ELFNOTE_PHYS32_ENTRY, 8, 0x100080 };
	struct buf v = vmlinux_make(std_segs, 2, STD_ENTRY, &xen, 1);
	struct buf rd = initrd_make(0x1800);
	struct linux_boot_args a = {
		.kernel = buf_write(&v), .initrd = buf_write(&rd), .cmdline = "pvh",
		.entry = LINUX_ENTRY_PVH, .rsdp = 0xe0000,
	};
	struct e820_entry map[E820_MAX_ENTRIES];
	struct hvm_memmap_table_entry mm[E820_MAX_ENTRIES];
	struct hvm_modlist_entry mod;
	struct hvm_start_info si;
	struct linux_boot_entry e;
	unsigned n = e820_build(&mem, map);

	(void)state;
	load_ok(&mem, &a, &e);
	assert_int_equal(e.mode, LINUX_CPU_PVH);
	assert_int_equal(e.ip, 0x100080);
	assert_int_equal(e.info, LINUX_PVH_INFO_ADDR);
	check_std_segments(&mem);
	assert_int_equal(gpa_read(&mem, e.info, &si, sizeof(si)), 0);
	assert_int_equal(si.magic, XEN_HVM_START_MAGIC);
	assert_int_equal(si.version, 1);
	assert_int_equal(si.flags, 0);
	assert_int_equal(si.cmdline_paddr, LINUX_CMDLINE_ADDR);
	assert_string_equal(cmdline_at(&mem, si.cmdline_paddr), "pvh");
	assert_int_equal(si.rsdp_paddr, 0xe0000);
	assert_int_equal(si.nr_modules, 1);
	assert_int_equal(gpa_read(&mem, si.modlist_paddr, &mod, sizeof(mod)), 0);
	assert_int_equal(mod.paddr, 64 * MiB - 0x2000);
	assert_int_equal(mod.size, 0x1800);
	check_initrd(&mem, mod.paddr, 0x1800);
	assert_int_equal(si.memmap_entries, n);
	assert_int_equal(gpa_read(&mem, si.memmap_paddr, mm, n * sizeof(mm[0])), 0);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(mm[i].addr, map[i].addr);
		assert_int_equal(mm[i].size, map[i].size);
		assert_int_equal(mm[i].type, map[i].type);
		assert_int_equal(mm[i].reserved, 0);
	}
	/* Without the note there is no PVH entry. */
	a.kernel = vmlinux_std();
	expect_fail(&mem, &a, -ENOTSUP, "no PVH entry");
	guest_memory_free(&mem);
}

/* ---- a real kernel ------------------------------------------------------------ */

static const char *real_kernel(void)
{
	static const char *const candidates[] = {
		"build/linux/bzImage", "build/linux/debian/vmlinuz",
	};
	const char *env = getenv("LINUX_TEST_BZIMAGE");

	if (env)
		return access(env, R_OK) == 0 ? env : NULL;
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
		if (access(candidates[i], R_OK) == 0)
			return candidates[i];
	return NULL;
}

static void test_real_kernel(void **state)
{
	const char *path = real_kernel();
	struct guest_memory mem;
	struct linux_boot_args a = { .unpack = true, .cmdline = "console=ttyS0", .rsdp = 0xe0000 };
	struct linux_boot_entry e;
	struct boot_params bp;
	struct bzimage bz;
	struct buf img;
	Elf64_Ehdr eh;
	unsigned nload = 0;
	uint32_t pvh;
	size_t vlen;
	void *v;
	char err[512];
	int has_pvh;

	(void)state;
	if (!path) {
		printf("\n*** SKIPPED: no real bzImage (set LINUX_TEST_BZIMAGE, or make linux-guest / linux-stock) ***\n\n");
		skip();
	}
	printf("real kernel: %s\n", path);
	img = buf_read(path);
	assert_int_equal(bzimage_parse(img.p, img.len, path, &bz, err, sizeof(err)), 0);
	assert_true(bz.version >= 0x020a);
	/* The payload decompresses on the host to an ELF64 x86-64 with PT_LOADs. */
	if (decompress(img.p + bz.payload_offset, bz.payload_size, bz.init_size, &v, &vlen,
		       err, sizeof(err)))
		fail_msg("%s", err);
	printf("payload: %s, %llu -> %zu bytes (init_size %u)\n",
	       decompress_name(decompress_detect(img.p + bz.payload_offset, bz.payload_size)),
	       (unsigned long long)bz.payload_size, vlen, bz.init_size);
	assert_true(vlen > sizeof(eh));
	memcpy(&eh, v, sizeof(eh));
	assert_memory_equal(eh.e_ident, ELFMAG, SELFMAG);
	assert_int_equal(eh.e_ident[EI_CLASS], ELFCLASS64);
	assert_int_equal(eh.e_machine, EM_X86_64);
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, (uint8_t *)v + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		nload += ph.p_type == PT_LOAD;
	}
	assert_true(nload >= 2);
	has_pvh = linux_pvh_entry(v, vlen, &pvh);
	assert_true(has_pvh >= 0);
	free(v);

	/* Loaded as the frontend will: 64-bit entry at e_entry, zero page from the header. */
	assert_int_equal(guest_memory_init(&mem, 512 * MiB), 0);
	a.kernel = path;
	load_ok(&mem, &a, &e);
	assert_int_equal(e.mode, LINUX_CPU_LONG64);
	assert_int_equal(e.ip, eh.e_entry);
	assert_true(e.kernel_start >= LINUX_KERNEL_MIN);
	assert_true(e.kernel_end >= e.kernel_start + bz.init_size);
	zero_page_get(&mem, &bp);
	assert_int_equal(bp.hdr.header, BZ_MAGIC);
	assert_int_equal(bp.hdr.version, bz.version);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_int_equal(bp.acpi_rsdp_addr, 0xe0000);
	check_e820(&mem, &bp);
	/* startup_64 is loaded: the entry is not zero-filled. */
	assert_int_not_equal(*(uint32_t *)gpa_ptr(&mem, e.ip, 4), 0);

	if (has_pvh == 1) {
		a.entry = LINUX_ENTRY_PVH;
		load_ok(&mem, &a, &e);
		assert_int_equal(e.mode, LINUX_CPU_PVH);
		assert_int_equal(e.ip, pvh);
		a.entry = LINUX_ENTRY_64;
	} else {
		printf("(no PVH note in this kernel)\n");
	}

	/* The classic path: the protected-mode part, byte for byte. */
	a.unpack = false;
	load_ok(&mem, &a, &e);
	assert_int_equal(e.mode, LINUX_CPU_PROT32);
	assert_memory_equal(gpa_ptr(&mem, e.ip, bz.pm_size), img.p + bz.pm_offset, bz.pm_size);
	guest_memory_free(&mem);
	free(img.p);
}

/* ---- CPU entry states under KVM -------------------------------------------------- */

struct kvm_box {
	struct vm vm;
	struct vcpu *vcpu;
};

static int kvm_box_open(struct kvm_box *b, uint64_t ram)
{
	char err[256] = "";

	memset(b, 0, sizeof(*b));
	b->vm.kvm_fd = b->vm.vm_fd = -1;
	b->vm.ncpus = 1;
	assert_int_equal(guest_memory_init(&b->vm.mem, ram), 0);
	if (kvm_vm_create(&b->vm, err, sizeof(err)) < 0) {
		printf("\n*** SKIPPED: KVM unavailable: %s ***\n\n", err);
		kvm_vm_destroy(&b->vm);
		guest_memory_free(&b->vm.mem);
		return -1;
	}
	b->vcpu = vcpu_create(&b->vm, 0);
	assert_non_null(b->vcpu);
	return 0;
}

static void kvm_box_close(struct kvm_box *b)
{
	vcpu_destroy(b->vcpu);
	kvm_vm_destroy(&b->vm);
	guest_memory_free(&b->vm.mem);
}

static volatile sig_atomic_t watchdog_fired;

static void watchdog(int sig)
{
	(void)sig;
	watchdog_fired = 1;
}

/*
 * Run until HLT; any other exit is a failure.  A guest that loops (a
 * broken descriptor can do that) is stopped by SIGALRM, which makes
 * KVM_RUN return EINTR: a hang guard for a few instructions, not a timing.
 */
static void run_to_hlt(struct kvm_box *b, struct kvm_regs *r, struct kvm_sregs *s)
{
	struct sigaction sa = { .sa_handler = watchdog };    /* no SA_RESTART */

	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	watchdog_fired = 0;
	alarm(30);
	for (int i = 0; i < 100 && !watchdog_fired; i++) {
		if (ioctl(b->vcpu->fd, KVM_RUN, 0) < 0 && errno == EINTR)
			continue;
		if (b->vcpu->run->exit_reason == KVM_EXIT_HLT)
			break;
		if (b->vcpu->run->exit_reason != KVM_EXIT_INTR) {
			alarm(0);
			cpu_state_dump(b->vcpu, stderr);
			fail_msg("unexpected exit %u", b->vcpu->run->exit_reason);
		}
	}
	alarm(0);
	if (watchdog_fired) {
		cpu_state_dump(b->vcpu, stderr);
		fail_msg("the guest did not reach HLT");
	}
	assert_int_equal(b->vcpu->run->exit_reason, KVM_EXIT_HLT);
	assert_int_equal(ioctl(b->vcpu->fd, KVM_GET_REGS, r), 0);
	assert_int_equal(ioctl(b->vcpu->fd, KVM_GET_SREGS, s), 0);
}

#define CODE_AT   0x100000ull
#define FARPTR_AT 0x100100ull      /* m16:32 for the far jumps */
#define PROBE_AT  0xa0000000ull    /* 2.5 GiB: needs the identity map past 2 GiB */
#define PROBE_VAL 0x0123456789abcdefull

static void farptr_put(struct guest_memory *mem, uint32_t target)
{
	uint8_t p[6] = { target, target >> 8, target >> 16, target >> 24, BOOT_CS, 0 };

	assert_int_equal(gpa_write(mem, FARPTR_AT, p, sizeof(p)), 0);
}

/* A 3 GiB VM (or the test is skipped), PROBE_VAL at PROBE_AT, the far jumps to @target. */
static void probe_box_open(struct kvm_box *b, uint32_t target)
{
	uint64_t probe = PROBE_VAL;

	if (kvm_box_open(b, 3 * GiB))
		skip();
	farptr_put(&b->vm.mem, target);
	assert_int_equal(gpa_write(&b->vm.mem, PROBE_AT, &probe, 8), 0);
}

/* @code at @e->ip, entered in the state @e asks for, run to its final HLT. */
static void run_code(struct kvm_box *b, const struct linux_boot_entry *e, const uint8_t *code,
		     size_t len, struct kvm_regs *r, struct kvm_sregs *s)
{
	assert_int_equal(gpa_write(&b->vm.mem, e->ip, code, len), 0);
	assert_int_equal(linux_boot_setup_cpu(b->vcpu, &b->vm.mem, e), 0);
	run_to_hlt(b, r, s);
	assert_int_equal(r->rip, e->ip + len);
}

/*
 * Reloading DS/SS and CS from the boot GDT proves its descriptors; the
 * 64-bit immediate after the far jump proves CS is still a 64-bit segment.
 */
static void test_boot_cpu_long_mode(void **state)
{
	static const uint8_t code[] = {
		0x48, 0xa1, 0x00, 0x00, 0x00, 0xa0, 0, 0, 0, 0,   /* movabs 0xa0000000,%rax */
		0x48, 0x89, 0xc3,                                  /* mov %rax,%rbx */
		0xb8, BOOT_DS, 0, 0, 0,                            /* mov $0x18,%eax */
		0x8e, 0xd8, 0x8e, 0xd0,                            /* mov %eax,%ds; mov %eax,%ss */
		0xff, 0x2c, 0x25, 0x00, 0x01, 0x10, 0x00,          /* ljmp *FARPTR_AT */
		0x48, 0x89, 0xf7,                                  /* 0x1d: mov %rsi,%rdi */
		0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* movabs imm64,%rax */
		0xf4,                                              /* hlt */
	};
	const struct linux_boot_entry e = { .mode = LINUX_CPU_LONG64, .ip = CODE_AT, .info = 0x7000 };
	struct kvm_box b;
	struct kvm_regs r;
	struct kvm_sregs s;

	(void)state;
	probe_box_open(&b, CODE_AT + 0x1d);
	run_code(&b, &e, code, sizeof(code), &r, &s);
	assert_int_equal(r.rax, 0x1122334455667788ull);     /* a 64-bit immediate: long mode */
	assert_int_equal(r.rbx, PROBE_VAL);                 /* identity-mapped at 2.5 GiB */
	assert_int_equal(r.rdi, 0x7000);                    /* RSI had the zero page */
	assert_int_equal(r.rflags & (1u << 9), 0);          /* interrupts off */
	assert_int_equal(s.cs.selector, BOOT_CS);
	assert_int_equal(s.cs.l, 1);
	assert_int_equal(s.ds.selector, BOOT_DS);
	assert_int_equal(s.ss.selector, BOOT_DS);
	assert_int_equal(s.ds.type & 0xa, 0x2);             /* writable data */
	assert_true(s.efer & (1u << 10));                   /* LMA */
	assert_int_equal(s.cr3, BOOT_PML4_ADDR);
	kvm_box_close(&b);
}

static void test_boot_cpu_protected(void **state)
{
	static const uint8_t code[] = {
		0x89, 0xf7,                                        /* mov %esi,%edi */
		0x89, 0xdd,                                        /* mov %ebx,%ebp */
		0xa1, 0x00, 0x00, 0x00, 0xa0,                      /* mov 0xa0000000,%eax */
		0x89, 0xc3,                                        /* mov %eax,%ebx */
		0xb8, BOOT_DS, 0, 0, 0,                            /* mov $0x18,%eax */
		0x8e, 0xd8, 0x8e, 0xd0,                            /* mov %eax,%ds; mov %eax,%ss */
		0xff, 0x2d, 0x00, 0x01, 0x10, 0x00,                /* ljmp *FARPTR_AT */
		0xb8, 0x78, 0x56, 0x34, 0x12,                      /* 0x1a: mov $0x12345678,%eax */
		0xf4,
	};
	/* PVH: no segment loads (its GDT is the kernel's business). */
	static const uint8_t pvh_code[] = {
		0x89, 0xdd, 0x89, 0xf7, 0xb8, 0x78, 0x56, 0x34, 0x12, 0xf4,
	};
	struct linux_boot_entry e = { .mode = LINUX_CPU_PROT32, .ip = CODE_AT, .info = 0x7000 };
	struct kvm_box b;
	struct kvm_regs r;
	struct kvm_sregs s;

	(void)state;
	probe_box_open(&b, CODE_AT + 0x1a);
	run_code(&b, &e, code, sizeof(code), &r, &s);
	assert_int_equal(r.rax, 0x12345678);
	assert_int_equal(r.rbx, (uint32_t)PROBE_VAL);       /* flat, paging off */
	assert_int_equal(r.rdi, 0x7000);                    /* ESI: the zero page */
	assert_int_equal(r.rbp, 0);                         /* EBX zero */
	assert_int_equal(r.rflags & (1u << 9), 0);
	assert_int_equal(s.cs.selector, BOOT_CS);
	assert_int_equal(s.cs.db, 1);
	assert_int_equal(s.ds.selector, BOOT_DS);
	assert_int_equal(s.cr0 & (1u << 31), 0);            /* paging off */
	assert_int_equal(s.efer & (1u << 10), 0);

	/* PVH: flat protected mode, EBX = start info. */
	e = (struct linux_boot_entry){ .mode = LINUX_CPU_PVH, .ip = CODE_AT + 0x80, .info = 0x7000 };
	run_code(&b, &e, pvh_code, sizeof(pvh_code), &r, &s);
	assert_int_equal(r.rax, 0x12345678);
	assert_int_equal(r.rbp, 0x7000);                    /* EBX: the start info */
	assert_int_equal(s.cr0 & (1u << 31), 0);
	assert_int_equal(s.efer & (1u << 10), 0);
	kvm_box_close(&b);
}

static int cleanup(void **state)
{
	(void)state;
	tmp_files_remove();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vmlinux),
		cmocka_unit_test(test_vmlinux_rsdp_no_cmdline),
		cmocka_unit_test(test_vmlinux_errors),
		cmocka_unit_test(test_bzimage_unpack),
		cmocka_unit_test(test_bzimage_no_unpack),
		cmocka_unit_test(test_bzimage_errors),
		cmocka_unit_test(test_cmdline_limit),
		cmocka_unit_test(test_initrd_top_of_ram),
		cmocka_unit_test(test_initrd_addr_max),
		cmocka_unit_test(test_initrd_big_ram),
		cmocka_unit_test(test_initrd_does_not_fit),
		cmocka_unit_test(test_pvh_note),
		cmocka_unit_test(test_pvh_boot),
		cmocka_unit_test(test_real_kernel),
		cmocka_unit_test(test_boot_cpu_long_mode),
		cmocka_unit_test(test_boot_cpu_protected),
	};

	return cmocka_run_group_tests(tests, NULL, cleanup);
}
