/*
 * Linux loader: bzImage (boot protocol 2.06+) and ELF64 vmlinux.
 *
 * Spec: Documentation/arch/x86/boot.rst (loading, the 32-bit and 64-bit
 * boot protocols, zero-page.rst), arch/x86/include/uapi/asm/bootparam.h;
 * Xen's PVH boot ABI (docs/misc/pvh.pandoc, public/arch-x86/hvm/start_info.h)
 * for the PVH entry; ELF-64 (System V ABI) for the vmlinux.
 * State: stable.
 * Features: host-side unpacking of the bzImage payload (the formats of
 *   vmm/decompress.h), vmlinux loaded by PT_LOAD at p_paddr and entered
 *   at startup_64 with a zero page, or at its PVH entry with hvm_start_info;
 *   the classic path (--no-unpack) entering the bzImage's 32-bit entry;
 *   command line, initrd, e820 map, ACPI RSDP address.
 * Missing: KASLR (the kernel runs where it was linked), loading above
 *   4 GiB, setup_data (e820 beyond 128 entries, DTB), EFI handover, video
 *   modes (screen_info is left zero: no VGA console), ELF32 kernels.
 *
 * Every guest write goes through gpa_ptr/gpa_write after a range check in
 * 64-bit arithmetic, so a hostile image can only be refused.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <asm/bootparam.h>
#include "vmm/boot_cpu.h"
#include "vmm/bzimage.h"
#include "vmm/cpu_state.h"
#include "vmm/e820.h"
#include "vmm/linux_boot.h"
#include "vmm/log.h"

#define PAGE       4096ull
#define FOUR_GB    0x100000000ull

_Static_assert(sizeof(struct boot_params) == 4096, "zero page layout");
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info layout");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry layout");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry layout");
_Static_assert(LINUX_PVH_MEMMAP_ADDR + E820_MAX_ENTRIES * sizeof(struct hvm_memmap_table_entry)
	       <= LINUX_PVH_INFO_ADDR + PAGE, "PVH info fits its page");

struct lb_ctx {
	struct guest_memory *mem;
	const struct linux_boot_args *a;
	char *err;
	size_t errlen;
};

/* What the kernel loaders found and put into RAM. */
struct lb_kernel {
	const struct bzimage *bz;  /* NULL for a bare vmlinux */
	enum linux_cpu_mode mode;
	uint64_t start, end;
	uint64_t entry;
	int have_pvh;
	uint32_t pvh_entry;
	enum kcomp comp;
};

/* Say why in the caller's error buffer and return @code. */
#define fail(c, code, ...) report_error((c)->err, (c)->errlen, (code), __VA_ARGS__)

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* ---- files --------------------------------------------------------------- */

static int file_open(struct lb_ctx *c, const char *path, uint64_t *size)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), e;

	if (fd < 0 || fstat(fd, &st) < 0) {
		e = errno;
		if (fd >= 0)
			close(fd);
		return fail(c, -e, "%s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(c, S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL, "%s: not a regular file", path);
	}
	*size = st.st_size;
	return fd;
}

static int file_read(struct lb_ctx *c, const char *path, int fd, void *dst, uint64_t len)
{
	uint8_t *p = dst;
	uint64_t off = 0;

	while (off < len) {
		ssize_t n = pread(fd, p + off, len - off, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			return fail(c, -e, "%s: read: %s", path, strerror(e));
		}
		if (n == 0)
			return fail(c, -EIO, "%s: file shrank while loading", path);
		off += n;
	}
	return 0;
}

/* The whole kernel file in host memory (freed by the caller). */
static int file_slurp(struct lb_ctx *c, const char *path, uint8_t **buf, size_t *size)
{
	uint64_t len;
	int fd = file_open(c, path, &len), ret;

	if (fd < 0)
		return fd;
	ret = 0;
	if (len > LINUX_MAX_FILE)
		ret = fail(c, -EFBIG, "%s: %llu bytes is too large for a kernel", path,
			   (unsigned long long)len);
	*buf = ret ? NULL : malloc(len ? len : 1);
	if (!ret && !*buf)
		ret = fail(c, -ENOMEM, "%s: out of memory", path);
	if (!ret)
		ret = file_read(c, path, fd, *buf, len);
	close(fd);
	if (ret) {
		free(*buf);
		*buf = NULL;
		return ret;
	}
	*size = len;
	return 0;
}

/* ---- ELF64 vmlinux --------------------------------------------------------- */

static void phdr_get(const uint8_t *img, const Elf64_Ehdr *eh, unsigned i, Elf64_Phdr *ph)
{
	memcpy(ph, img + eh->e_phoff + (uint64_t)i * sizeof(*ph), sizeof(*ph));
}

/* Header and program header table wholly in the file: 0 or -ENOEXEC. */
static int elf_header(const uint8_t *img, size_t size, Elf64_Ehdr *eh, const char **why)
{
	*why = NULL;
	if (size < sizeof(*eh) || memcmp(img, ELFMAG, SELFMAG)) {
		*why = "not an ELF file";
	} else {
		memcpy(eh, img, sizeof(*eh));
		if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB)
			*why = "not a little-endian ELF64 file (a 32-bit kernel?)";
		else if (eh->e_machine != EM_X86_64)
			*why = "not an x86-64 ELF file";
		else if (eh->e_phentsize != sizeof(Elf64_Phdr))
			*why = "unexpected program header size";
		else if (eh->e_phoff > size ||
			 (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > size - eh->e_phoff)
			*why = "program headers lie past the end of the file";
	}
	return *why ? -ENOEXEC : 0;
}

static uint64_t note_word(const uint8_t *p, uint32_t len)
{
	uint64_t v = 0;

	memcpy(&v, p, len);
	return v;
}

/* Walk one PT_NOTE segment [off, end) for Xen's PHYS32_ENTRY note. */
static int pvh_note_scan(const uint8_t *img, uint64_t off, uint64_t end, uint32_t *entry)
{
	while (end - off >= 12) {
		uint32_t namesz = note_word(img + off, 4);
		uint32_t descsz = note_word(img + off + 4, 4);
		uint32_t type = note_word(img + off + 8, 4);
		uint64_t name = off + 12;
		uint64_t desc = name + align_up(namesz, 4);
		uint64_t next = desc + align_up(descsz, 4);
		uint64_t v;

		if (next > end || desc + descsz > end)
			return -ENOEXEC;
		if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 && !memcmp(img + name, "Xen", 4)) {
			if (descsz != 4 && descsz != 8)
				return -ENOEXEC;
			v = note_word(img + desc, descsz);
			if (v >= FOUR_GB)
				return -ENOEXEC;
			*entry = (uint32_t)v;
			return 1;
		}
		off = next;
	}
	return 0;
}

int linux_pvh_entry(const void *image, size_t size, uint32_t *entry)
{
	const uint8_t *img = image;
	const char *why;
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	int ret;

	if (elf_header(img, size, &eh, &why))
		return -ENOEXEC;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		phdr_get(img, &eh, i, &ph);
		if (ph.p_type != PT_NOTE)
			continue;
		if (ph.p_offset > size || ph.p_filesz > size - ph.p_offset)
			return -ENOEXEC;
		ret = pvh_note_scan(img, ph.p_offset, ph.p_offset + ph.p_filesz, entry);
		if (ret)
			return ret;
	}
	return 0;
}

static int seg_check(struct lb_ctx *c, const char *name, const Elf64_Phdr *ph, size_t size)
{
	unsigned long long pa = ph->p_paddr, ms = ph->p_memsz;

	if (ph->p_filesz > ph->p_memsz)
		return fail(c, -ENOEXEC, "%s: segment at 0x%llx has file size 0x%llx above its memory size 0x%llx",
			    name, pa, (unsigned long long)ph->p_filesz, ms);
	if (ph->p_offset > size || ph->p_filesz > size - ph->p_offset)
		return fail(c, -ENOEXEC, "%s: segment at 0x%llx lies past the end of the file (truncated?)",
			    name, pa);
	if (pa < LINUX_KERNEL_MIN)
		return fail(c, -EINVAL, "%s: segment at 0x%llx lies below 1 MiB, in the boot area",
			    name, pa);
	if (!gpa_ptr(c->mem, pa, ms))
		return fail(c, -ENOMEM, "%s: segment 0x%llx-0x%llx lies outside guest RAM (RAM below 4 GiB ends at 0x%llx)",
			    name, pa, pa + ms, (unsigned long long)guest_low_ram_end(c->mem));
	return 0;
}

/* Check every PT_LOAD first, so that a bad image leaves RAM untouched. */
static int elf_load(struct lb_ctx *c, const char *name, const uint8_t *img, size_t size,
		    struct lb_kernel *k)
{
	const char *why;
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	unsigned nload = 0;
	int ret, entry_ok = 0;

	if (elf_header(img, size, &eh, &why))
		return fail(c, -ENOEXEC, "%s: %s", name, why);
	k->start = UINT64_MAX;
	k->end = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		phdr_get(img, &eh, i, &ph);
		if (ph.p_type != PT_LOAD)
			continue;
		ret = seg_check(c, name, &ph, size);
		if (ret)
			return ret;
		nload++;
		k->start = min_u64(k->start, ph.p_paddr);
		k->end = max_u64(k->end, ph.p_paddr + ph.p_memsz);
		entry_ok |= eh.e_entry >= ph.p_paddr && eh.e_entry - ph.p_paddr < ph.p_memsz;
	}
	if (!nload)
		return fail(c, -ENOEXEC, "%s: no loadable segment", name);
	if (!entry_ok)
		return fail(c, -ENOEXEC, "%s: entry point 0x%llx is not in a loaded segment (not a physical address?)",
			    name, (unsigned long long)eh.e_entry);
	ret = linux_pvh_entry(img, size, &k->pvh_entry);
	if (ret < 0)
		return fail(c, -ENOEXEC, "%s: malformed ELF note segment", name);
	k->have_pvh = ret;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		uint8_t *host;

		phdr_get(img, &eh, i, &ph);
		if (ph.p_type != PT_LOAD)
			continue;
		host = gpa_ptr(c->mem, ph.p_paddr, ph.p_memsz);
		memcpy(host, img + ph.p_offset, ph.p_filesz);
		memset(host + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
	}
	k->entry = eh.e_entry;
	k->mode = LINUX_CPU_LONG64;
	return 0;
}

/* ---- bzImage ------------------------------------------------------------- */

/* Decompress the payload here and load the vmlinux inside it. */
static int bz_unpack(struct lb_ctx *c, const uint8_t *img, const struct bzimage *bz,
		     struct lb_kernel *k)
{
	const char *path = c->a->kernel;
	uint64_t max = bz->init_size ? min_u64(bz->init_size, DECOMPRESS_MAX_OUT) : DECOMPRESS_MAX_OUT;
	char msg[200], name[4200];
	size_t vlen;
	void *v;
	int ret;

	if (bz->version < 0x0208)
		return fail(c, -ENOTSUP, "%s: boot protocol %u.%02u does not locate its payload (2.08 needed): boot it with --no-unpack",
			    path, bz->version >> 8, bz->version & 0xff);
	k->comp = decompress_detect(img + bz->payload_offset, bz->payload_size);
	ret = decompress(img + bz->payload_offset, bz->payload_size, max, &v, &vlen, msg, sizeof(msg));
	if (ret)
		return fail(c, ret, "%s: payload: %s", path, msg);
	pr_info("%s: %s payload, %llu bytes unpacked to %zu", path, decompress_name(k->comp),
		(unsigned long long)bz->payload_size, vlen);
	snprintf(name, sizeof(name), "%s (unpacked %s payload)", path, decompress_name(k->comp));
	ret = elf_load(c, name, v, vlen, k);
	free(v);
	/* The kernel may use init_size bytes from its start: keep the initrd clear. */
	if (!ret && bz->init_size)
		k->end = max_u64(k->end, k->start + bz->init_size);
	return ret;
}

static int ram_check(struct lb_ctx *c, const char *what, uint64_t at, uint64_t len)
{
	if (at < FOUR_GB && gpa_ptr(c->mem, at, len))
		return 0;
	return fail(c, -ENOMEM, "%s: the kernel%s needs 0x%llx-0x%llx, but RAM below 4 GiB ends at 0x%llx",
		    c->a->kernel, what, (unsigned long long)at, (unsigned long long)(at + len),
		    (unsigned long long)guest_low_ram_end(c->mem));
}

/*
 * The classic path: the protected-mode part at 1 MiB, or at pref_address
 * if relocatable.  A non-relocatable kernel moves itself to pref_address
 * to run, and needs init_size bytes from there (boot.rst, init_size).
 */
static int bz_load_protected(struct lb_ctx *c, const uint8_t *img, const struct bzimage *bz,
			     struct lb_kernel *k)
{
	const struct setup_header *h = &bz->hdr;
	int has_pref = bz->version >= 0x020a && h->pref_address >= LINUX_KERNEL_MIN;
	uint64_t at = BZ_LOAD_LOW_DEFAULT, run;
	int ret;

	if (h->relocatable_kernel && has_pref)
		at = h->pref_address;
	run = !h->relocatable_kernel && has_pref ? h->pref_address : at;
	ret = ram_check(c, "", at, bz->pm_size);
	if (!ret)
		ret = ram_check(c, " (init_size from its run address)", run, bz->init_size);
	if (ret)
		return ret;
	memcpy(gpa_ptr(c->mem, at, bz->pm_size), img + bz->pm_offset, bz->pm_size);
	k->start = min_u64(at, run);
	k->end = max_u64(at + bz->pm_size, run + bz->init_size);
	k->entry = at;           /* the 32-bit entry is the start of the protected-mode part */
	k->mode = LINUX_CPU_PROT32;
	return 0;
}

static int kernel_load(struct lb_ctx *c, const uint8_t *img, size_t size, struct bzimage *bz,
		       struct lb_kernel *k)
{
	const char *path = c->a->kernel;
	int ret;

	if (bzimage_probe(img, size)) {
		ret = bzimage_parse(img, size, path, bz, c->err, c->errlen);
		if (ret)
			return ret;
		k->bz = bz;
		return c->a->unpack ? bz_unpack(c, img, bz, k) : bz_load_protected(c, img, bz, k);
	}
	if (size >= SELFMAG && !memcmp(img, ELFMAG, SELFMAG))
		return elf_load(c, path, img, size, k);
	return fail(c, -ENOEXEC, "%s: neither a Linux bzImage nor an ELF64 vmlinux", path);
}

/* ---- command line, initrd ------------------------------------------------- */

static int cmdline_write(struct lb_ctx *c, const struct lb_kernel *k)
{
	const char *s = c->a->cmdline ? c->a->cmdline : "";
	uint64_t limit = k->bz ? k->bz->hdr.cmdline_size : LINUX_DEFAULT_CMDLINE_SIZE;
	size_t len = strlen(s);

	limit = min_u64(limit, LINUX_CMDLINE_AREA - 1);
	if (len > limit)
		return fail(c, -E2BIG, "%s: the command line is %zu bytes, the kernel accepts at most %llu",
			    c->a->kernel, len, (unsigned long long)limit);
	if (gpa_write(c->mem, LINUX_CMDLINE_ADDR, s, len + 1))
		return fail(c, -ENOMEM, "guest RAM too small for the command line at 0x%llx",
			    LINUX_CMDLINE_ADDR);
	return 0;
}

/* Highest page-aligned place below the ceiling and above the kernel. */
static int initrd_load(struct lb_ctx *c, const struct lb_kernel *k, struct linux_boot_entry *out)
{
	const char *path = c->a->initrd;
	uint64_t max = k->bz ? k->bz->hdr.initrd_addr_max : LINUX_DEFAULT_INITRD_MAX;
	uint64_t top = min_u64(min_u64(max + 1, guest_low_ram_end(c->mem)), LINUX_INITRD_CEILING);
	uint64_t floor = align_up(k->end, PAGE), size, at;
	int fd = file_open(c, path, &size), ret;

	if (fd < 0)
		return fd;
	if (!size) {             /* an empty initrd is no initrd */
		close(fd);
		return 0;
	}
	if (size > top || ((top - size) & ~(PAGE - 1)) < floor) {
		close(fd);
		return fail(c, -ENOMEM, "%s: initrd does not fit: %llu bytes, free RAM for it is 0x%llx-0x%llx (above the kernel, below %s)",
			    path, (unsigned long long)size, (unsigned long long)floor,
			    (unsigned long long)top,
			    top == max + 1 ? "initrd_addr_max" : "the end of low RAM");
	}
	at = (top - size) & ~(PAGE - 1);
	ret = file_read(c, path, fd, gpa_ptr(c->mem, at, size), size);
	close(fd);
	if (ret)
		return ret;
	out->initrd_addr = at;
	out->initrd_size = size;
	return 0;
}

/* ---- zero page, PVH start info ----------------------------------------------- */

/* What a bare vmlinux gets in place of a bzImage's header. */
static void header_synthesize(struct setup_header *h)
{
	h->boot_flag = BZ_BOOT_FLAG;
	h->header = BZ_MAGIC;
	h->version = 0x020f;
	h->loadflags = LOADED_HIGH;
	h->kernel_alignment = 0x200000;
	h->initrd_addr_max = LINUX_DEFAULT_INITRD_MAX;
	h->cmdline_size = LINUX_DEFAULT_CMDLINE_SIZE;
}

static void zero_page_build(struct lb_ctx *c, const struct lb_kernel *k,
			    const struct linux_boot_entry *out, struct boot_params *bp)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	unsigned n = e820_build(c->mem, map);
	uint64_t low = guest_low_ram_end(c->mem);

	memset(bp, 0, sizeof(*bp));
	if (k->bz)
		memcpy(&bp->hdr, &k->bz->hdr, k->bz->hdr_len);
	else
		header_synthesize(&bp->hdr);
	bp->hdr.type_of_loader = 0xff;              /* "undefined" loader */
	/* No KASLR happened; the real-mode setup (never run) may use a heap. */
	bp->hdr.loadflags = (bp->hdr.loadflags & ~(KASLR_FLAG | QUIET_FLAG | KEEP_SEGMENTS)) |
			    CAN_USE_HEAP;
	bp->hdr.heap_end_ptr = 0xe000 - 0x200;
	bp->hdr.vid_mode = 0xffff;                  /* "normal" */
	bp->hdr.cmd_line_ptr = LINUX_CMDLINE_ADDR;
	bp->hdr.ramdisk_image = out->initrd_addr;
	bp->hdr.ramdisk_size = out->initrd_size;
	bp->hdr.setup_data = 0;
	if (k->mode == LINUX_CPU_PROT32)
		bp->hdr.code32_start = k->start;
	bp->acpi_rsdp_addr = c->a->rsdp;
	bp->alt_mem_k = low > LINUX_KERNEL_MIN ? (uint32_t)min_u64((low - LINUX_KERNEL_MIN) >> 10, UINT32_MAX) : 0;
	bp->e820_entries = n;
	for (unsigned i = 0; i < n; i++) {
		bp->e820_table[i].addr = map[i].addr;
		bp->e820_table[i].size = map[i].size;
		bp->e820_table[i].type = map[i].type;
	}
}

static int zero_page_write(struct lb_ctx *c, const struct lb_kernel *k,
			   const struct linux_boot_entry *out)
{
	struct boot_params *bp = malloc(sizeof(*bp));
	int ret;

	if (!bp)
		return fail(c, -ENOMEM, "out of memory");
	zero_page_build(c, k, out, bp);
	ret = gpa_write(c->mem, LINUX_ZERO_PAGE_ADDR, bp, sizeof(*bp));
	free(bp);
	return ret ? fail(c, -ENOMEM, "guest RAM too small for the zero page") : 0;
}

static int pvh_info_write(struct lb_ctx *c, const struct linux_boot_entry *out)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	struct hvm_memmap_table_entry mm[E820_MAX_ENTRIES] = { 0 };
	unsigned n = e820_build(c->mem, map);
	struct hvm_modlist_entry mod = { .paddr = out->initrd_addr, .size = out->initrd_size };
	struct hvm_start_info si = {
		.magic = XEN_HVM_START_MAGIC, .version = 1,
		.nr_modules = out->initrd_addr ? 1 : 0,
		.modlist_paddr = out->initrd_addr ? LINUX_PVH_MODLIST_ADDR : 0,
		.cmdline_paddr = LINUX_CMDLINE_ADDR, .rsdp_paddr = c->a->rsdp,
		.memmap_paddr = LINUX_PVH_MEMMAP_ADDR, .memmap_entries = n,
	};

	for (unsigned i = 0; i < n; i++)
		mm[i] = (struct hvm_memmap_table_entry){
			.addr = map[i].addr, .size = map[i].size, .type = map[i].type,
		};
	if (gpa_write(c->mem, LINUX_PVH_INFO_ADDR, &si, sizeof(si)) ||
	    gpa_write(c->mem, LINUX_PVH_MODLIST_ADDR, &mod, sizeof(mod)) ||
	    gpa_write(c->mem, LINUX_PVH_MEMMAP_ADDR, mm, n * sizeof(mm[0])))
		return fail(c, -ENOMEM, "guest RAM too small for the PVH start info");
	return 0;
}

/* ---- entry points ------------------------------------------------------------ */

static int entry_choose(struct lb_ctx *c, struct lb_kernel *k, struct linux_boot_entry *out)
{
	out->mode = k->mode;
	out->ip = k->entry;
	out->info = LINUX_ZERO_PAGE_ADDR;
	if (c->a->entry != LINUX_ENTRY_PVH)
		return 0;
	if (k->mode == LINUX_CPU_PROT32)
		return fail(c, -ENOTSUP, "%s: the PVH entry needs the vmlinux: do not combine it with --no-unpack",
			    c->a->kernel);
	if (!k->have_pvh)
		return fail(c, -ENOTSUP, "%s: no PVH entry (ELF note XEN_ELFNOTE_PHYS32_ENTRY): kernel built without CONFIG_PVH?",
			    c->a->kernel);
	out->mode = LINUX_CPU_PVH;
	out->ip = k->pvh_entry;
	out->info = LINUX_PVH_INFO_ADDR;
	return 0;
}

int linux_boot_load(struct guest_memory *mem, const struct linux_boot_args *a,
		    struct linux_boot_entry *out, char *err, size_t errlen)
{
	struct lb_ctx c = { .mem = mem, .a = a, .err = err, .errlen = errlen };
	struct lb_kernel k = { .comp = KCOMP_NONE };
	struct bzimage bz;
	uint8_t *img;
	size_t size;
	int ret;

	if (errlen)
		err[0] = '\0';
	memset(out, 0, sizeof(*out));
	ret = file_slurp(&c, a->kernel, &img, &size);
	if (ret)
		return ret;
	ret = kernel_load(&c, img, size, &bz, &k);
	free(img);
	if (!ret)
		ret = entry_choose(&c, &k, out);
	if (!ret)
		ret = cmdline_write(&c, &k);
	if (!ret && a->initrd)
		ret = initrd_load(&c, &k, out);
	if (!ret)
		ret = out->mode == LINUX_CPU_PVH ? pvh_info_write(&c, out) : zero_page_write(&c, &k, out);
	if (ret)
		return ret;
	out->kernel_start = k.start;
	out->kernel_end = k.end;
	out->compression = k.comp;
	return 0;
}

int linux_boot_setup_cpu(struct vcpu *bsp, struct guest_memory *mem,
			 const struct linux_boot_entry *e)
{
	switch (e->mode) {
	case LINUX_CPU_LONG64:
		return boot_cpu_long_mode(bsp, mem, e->ip, e->info);
	case LINUX_CPU_PROT32:
		return boot_cpu_protected(bsp, mem, e->ip, e->info);
	case LINUX_CPU_PVH:
		return cpu_state_protected_flat(bsp, e->ip, 0, e->info);
	}
	return -EINVAL;
}

int linux_probe(const char *path)
{
	uint8_t buf[0x210] = { 0 };
	Elf64_Ehdr eh;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = pread(fd, buf, sizeof(buf), 0);
	if (n < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	close(fd);
	if (bzimage_probe(buf, n))
		return 1;
	if ((size_t)n < sizeof(eh) || memcmp(buf, ELFMAG, SELFMAG))
		return 0;
	memcpy(&eh, buf, sizeof(eh));
	return eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_machine == EM_X86_64 ? 2 : 0;
}
