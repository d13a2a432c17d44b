/*
 * Multiboot v1 loader.
 *
 * Spec: The Multiboot Specification 0.6.96 (GNU GRUB): 3.1 OS image format,
 * 3.2 machine state, 3.3 boot information format.
 * State: stable.
 * Features: ELF32 (EM_386) loaded by its PT_LOAD program headers at p_paddr,
 *   entry translated from virtual to physical as GRUB 2 does; the a.out
 *   kludge (header flag 16); modules page-aligned above the kernel, each
 *   with its command line; mem_lower/mem_upper and an e820-style memory
 *   map; command line; boot loader name.
 * Missing: video modes (header flag 2 is ignored and no VBE/framebuffer
 *   info is given), ELF section headers and a.out symbols (info flags 4/5),
 *   boot device, drives, APM, config table.
 *
 * Every guest write goes through gpa_ptr/gpa_write, and every size read
 * from the image is checked in 64-bit arithmetic before use, so a hostile
 * image can at worst be refused.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "vmm/log.h"
#include "vmm/multiboot.h"

#define MB_PAGE          4096ull
#define MB_4G            0x100000000ull
#define MB_1M            0x100000ull
#define MB_EBDA          0x9FC00ull     /* top of conventional RAM on a PC */
#define MB_BIOS_ROM      0xF0000ull
#define MB_MAX_MMAP      (3 + GUEST_MAX_REGIONS)
#define MB_FLAGS_KNOWN   (MB_HF_PAGE_ALIGN | MB_HF_MEMORY_INFO | MB_HF_VIDEO_MODE)

struct mb_ctx {
	struct guest_memory *mem;
	char *err;
	size_t errlen;
};

struct mb_file {
	const char *path;
	int fd;
	uint64_t size;
};

/* What the kernel image occupies, and where it starts. */
struct mb_kernel {
	uint64_t end;
	uint32_t entry;
};

/* The info area is built in a host buffer, then copied to the guest. */
struct mb_area {
	uint8_t buf[MB_INFO_END - MB_INFO_START];
	size_t used;
};

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Say why in the caller's error buffer and return @code. */
#define fail(c, code, ...) report_error((c)->err, (c)->errlen, (code), __VA_ARGS__)

static void file_close(struct mb_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

static int file_open(struct mb_ctx *c, struct mb_file *f, const char *path)
{
	struct stat st;
	int e;

	f->path = path;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0) {
		e = errno;
		return fail(c, -e, "%s: %s", path, strerror(e));
	}
	if (fstat(f->fd, &st) < 0) {
		e = errno;
		file_close(f);
		return fail(c, -e, "%s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		file_close(f);
		return fail(c, S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL, "%s: not a regular file", path);
	}
	f->size = st.st_size;
	return 0;
}

/* Exactly @len bytes at @off; the caller has checked they are in the file. */
static int file_read(struct mb_ctx *c, struct mb_file *f, uint64_t off, void *buf, uint64_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(f->fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			return fail(c, -e, "%s: read: %s", f->path, strerror(e));
		}
		if (n == 0)
			return fail(c, -EIO, "%s: file shrank while loading", f->path);
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * The header: magic, flags, checksum 4-byte aligned with the magic in the
 * first 8 KiB; a kludge header's address fields may run just past it.
 */
static int header_find(struct mb_ctx *c, struct mb_file *f,
		       struct multiboot_header *hdr, uint32_t *hdr_off)
{
	uint8_t buf[MB_SEARCH_LEN + sizeof(*hdr)];
	uint64_t len = f->size < sizeof(buf) ? f->size : sizeof(buf);
	uint64_t search = len < MB_SEARCH_LEN ? len : MB_SEARCH_LEN;
	bool bad_sum = false;
	int ret;

	ret = file_read(c, f, 0, buf, len);
	if (ret)
		return ret;
	for (uint64_t off = 0; off + 12 <= search; off += 4) {
		uint32_t w[3];

		memcpy(w, buf + off, sizeof(w));
		if (w[0] != MB_HEADER_MAGIC)
			continue;
		if ((uint32_t)(w[0] + w[1] + w[2])) {
			bad_sum = true;
			continue;
		}
		memset(hdr, 0, sizeof(*hdr));
		memcpy(hdr, buf + off, len - off < sizeof(*hdr) ? len - off : sizeof(*hdr));
		if ((hdr->flags & MB_HF_AOUT_KLUDGE) && len - off < sizeof(*hdr))
			return fail(c, -ENOEXEC, "%s: multiboot header truncated by the end of the file",
				    f->path);
		*hdr_off = off;
		return 0;
	}
	if (bad_sum)
		return fail(c, -ENOEXEC, "%s: multiboot header has a bad checksum", f->path);
	return fail(c, -ENOEXEC, "%s: no multiboot header in the first 8 KiB", f->path);
}

static int header_check_flags(struct mb_ctx *c, struct mb_file *f,
			      const struct multiboot_header *hdr)
{
	uint32_t unknown = hdr->flags & 0xFFFF & ~MB_FLAGS_KNOWN;

	if (unknown)
		return fail(c, -ENOTSUP, "%s: unsupported required multiboot header flags 0x%x",
			    f->path, unknown);
	if (hdr->flags & MB_HF_VIDEO_MODE)
		pr_warn("%s: video mode request ignored (no framebuffer)", f->path);
	return 0;
}

/* Refuse a segment that is not wholly in the file, in RAM, and clear of the info area. */
static int seg_check(struct mb_ctx *c, struct mb_file *f, uint64_t gpa, uint64_t memsz,
		     uint64_t off, uint64_t filesz)
{
	if (filesz > memsz)
		return fail(c, -ENOEXEC, "%s: segment at 0x%llx has file size 0x%llx above its memory size 0x%llx",
			    f->path, (unsigned long long)gpa, (unsigned long long)filesz,
			    (unsigned long long)memsz);
	if (off > f->size || filesz > f->size - off)
		return fail(c, -ENOEXEC, "%s: segment at 0x%llx needs file bytes 0x%llx+0x%llx, past the end of the file (0x%llx)",
			    f->path, (unsigned long long)gpa, (unsigned long long)off,
			    (unsigned long long)filesz, (unsigned long long)f->size);
	if (gpa >= MB_4G || memsz > MB_4G - gpa || !gpa_ptr(c->mem, gpa, memsz))
		return fail(c, -ENOMEM, "%s: segment 0x%llx-0x%llx lies outside guest RAM (RAM below 4 GiB ends at 0x%llx)",
			    f->path, (unsigned long long)gpa, (unsigned long long)(gpa + memsz),
			    (unsigned long long)guest_low_ram_end(c->mem));
	if (gpa < MB_INFO_END && gpa + memsz > MB_INFO_START)
		return fail(c, -EINVAL, "%s: segment 0x%llx-0x%llx overlaps the multiboot info area 0x%x-0x%x",
			    f->path, (unsigned long long)gpa, (unsigned long long)(gpa + memsz),
			    MB_INFO_START, MB_INFO_END);
	return 0;
}

/* Copy the file part, zero the rest; seg_check has passed. */
static int seg_load(struct mb_ctx *c, struct mb_file *f, uint64_t gpa, uint64_t memsz,
		    uint64_t off, uint64_t filesz, struct mb_kernel *k)
{
	uint8_t *host = gpa_ptr(c->mem, gpa, memsz);
	int ret;

	ret = file_read(c, f, off, host, filesz);
	if (ret)
		return ret;
	memset(host + filesz, 0, memsz - filesz);
	if (gpa + memsz > k->end)
		k->end = gpa + memsz;
	return 0;
}

static int aout_load(struct mb_ctx *c, struct mb_file *f, const struct multiboot_header *h,
		     uint32_t hdr_off, struct mb_kernel *k)
{
	uint64_t off, load_size, mem_size;
	int ret;

	if (h->load_addr > h->header_addr || h->header_addr - h->load_addr > hdr_off)
		return fail(c, -ENOEXEC, "%s: a.out kludge: load_addr 0x%x and header_addr 0x%x put the image start before the file start",
			    f->path, h->load_addr, h->header_addr);
	off = hdr_off - (h->header_addr - h->load_addr);
	if (h->load_end_addr) {
		if (h->load_end_addr < h->load_addr)
			return fail(c, -ENOEXEC, "%s: a.out kludge: load_end_addr 0x%x below load_addr 0x%x",
				    f->path, h->load_end_addr, h->load_addr);
		load_size = h->load_end_addr - h->load_addr;
	} else {
		load_size = f->size - off;
	}
	mem_size = load_size;
	if (h->bss_end_addr) {
		if (h->bss_end_addr < h->load_addr || h->bss_end_addr - h->load_addr < load_size)
			return fail(c, -ENOEXEC, "%s: a.out kludge: bss_end_addr 0x%x below the end of the loaded image",
				    f->path, h->bss_end_addr);
		mem_size = h->bss_end_addr - h->load_addr;
	}
	ret = seg_check(c, f, h->load_addr, mem_size, off, load_size);
	if (ret)
		return ret;
	k->entry = h->entry_addr;
	return seg_load(c, f, h->load_addr, mem_size, off, load_size, k);
}

static int elf_check_header(struct mb_ctx *c, struct mb_file *f, Elf32_Ehdr *eh)
{
	int ret;

	if (f->size < SELFMAG)
		return fail(c, -ENOEXEC, "%s: not an ELF file and no a.out kludge in its multiboot header", f->path);
	ret = file_read(c, f, 0, eh, f->size < sizeof(*eh) ? SELFMAG : sizeof(*eh));
	if (ret)
		return ret;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG))
		return fail(c, -ENOEXEC, "%s: not an ELF file and no a.out kludge in its multiboot header", f->path);
	if (f->size < sizeof(*eh))
		return fail(c, -ENOEXEC, "%s: truncated ELF header", f->path);
	if (eh->e_ident[EI_CLASS] == ELFCLASS64)
		return fail(c, -ENOEXEC, "%s: ELF64 image; multiboot v1 loads ELF32 only (or use the a.out kludge)", f->path);
	if (eh->e_ident[EI_CLASS] != ELFCLASS32 || eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return fail(c, -ENOEXEC, "%s: not a little-endian ELF32 file", f->path);
	if (eh->e_machine != EM_386)
		return fail(c, -ENOEXEC, "%s: ELF machine %u is not EM_386", f->path, eh->e_machine);
	if (eh->e_type != ET_EXEC)
		return fail(c, -ENOEXEC, "%s: ELF type %u is not an executable", f->path, eh->e_type);
	if (eh->e_phnum == 0 || eh->e_phentsize < sizeof(Elf32_Phdr))
		return fail(c, -ENOEXEC, "%s: bad ELF program header table (%u entries of %u bytes)",
			    f->path, eh->e_phnum, eh->e_phentsize);
	/* Both factors are 16 bits and the offset 32: no overflow in 64 bits. */
	if ((uint64_t)eh->e_phoff + (uint64_t)eh->e_phnum * eh->e_phentsize > f->size)
		return fail(c, -ENOEXEC, "%s: ELF program headers extend past the end of the file", f->path);
	return 0;
}

/* GRUB 2 convention: an entry inside a segment's virtual range is moved to its physical one. */
static uint32_t elf_entry(const Elf32_Ehdr *eh, const Elf32_Phdr *ph)
{
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && eh->e_entry >= ph[i].p_vaddr &&
		    eh->e_entry - ph[i].p_vaddr < ph[i].p_memsz)
			return eh->e_entry - ph[i].p_vaddr + ph[i].p_paddr;
	}
	return eh->e_entry;
}

static int elf_load(struct mb_ctx *c, struct mb_file *f, struct mb_kernel *k)
{
	Elf32_Ehdr eh;
	Elf32_Phdr *ph;
	unsigned nload = 0;
	int ret;

	ret = elf_check_header(c, f, &eh);
	if (ret)
		return ret;
	ph = calloc(eh.e_phnum, sizeof(*ph));
	if (!ph)
		return fail(c, -ENOMEM, "%s: out of memory", f->path);
	for (unsigned i = 0; i < eh.e_phnum && !ret; i++)
		ret = file_read(c, f, eh.e_phoff + (uint64_t)i * eh.e_phentsize, &ph[i], sizeof(*ph));
	/* Check every segment before writing any, so a refused image leaves RAM alone. */
	for (unsigned i = 0; i < eh.e_phnum && !ret; i++) {
		if (ph[i].p_type != PT_LOAD || !ph[i].p_memsz)
			continue;
		ret = seg_check(c, f, ph[i].p_paddr, ph[i].p_memsz, ph[i].p_offset, ph[i].p_filesz);
		nload++;
	}
	if (!ret && !nload)
		ret = fail(c, -ENOEXEC, "%s: ELF file has no loadable segments", f->path);
	for (unsigned i = 0; i < eh.e_phnum && !ret; i++) {
		if (ph[i].p_type == PT_LOAD && ph[i].p_memsz)
			ret = seg_load(c, f, ph[i].p_paddr, ph[i].p_memsz, ph[i].p_offset,
				       ph[i].p_filesz, k);
	}
	if (!ret)
		k->entry = elf_entry(&eh, ph);
	free(ph);
	return ret;
}

static int kernel_load(struct mb_ctx *c, const char *path, struct mb_kernel *k)
{
	struct multiboot_header hdr;
	struct mb_file f;
	uint32_t hdr_off;
	int ret;

	ret = file_open(c, &f, path);
	if (ret)
		return ret;
	if (!f.size)
		ret = fail(c, -ENOEXEC, "%s: empty file", path);
	if (!ret)
		ret = header_find(c, &f, &hdr, &hdr_off);
	if (!ret)
		ret = header_check_flags(c, &f, &hdr);
	if (!ret && (hdr.flags & MB_HF_AOUT_KLUDGE))
		ret = aout_load(c, &f, &hdr, hdr_off, k);
	else if (!ret)
		ret = elf_load(c, &f, k);
	file_close(&f);
	return ret;
}

/* Guest address of @len bytes in the info area, or 0 when it is full. */
static uint32_t area_alloc(struct mb_area *a, size_t len, size_t align)
{
	size_t at = align_up(a->used, align);

	if (at > sizeof(a->buf) || len > sizeof(a->buf) - at)
		return 0;
	a->used = at + len;
	return MB_INFO_START + at;
}

static void *area_host(struct mb_area *a, uint32_t gpa)
{
	return a->buf + (gpa - MB_INFO_START);
}

/* "path args" (just "path" without args), as GRUB and QEMU pass it; 0 when full. */
static uint32_t area_put_cmdline(struct mb_ctx *c, struct mb_area *a, const char *path,
				 const char *args)
{
	bool has_args = args && *args;
	size_t len = strlen(path) + (has_args ? 1 + strlen(args) : 0) + 1;
	uint32_t gpa = area_alloc(a, len, 1);

	if (!gpa) {
		fail(c, -E2BIG, "%s: command line (%zu bytes) too long for the multiboot info area (%zu bytes left)",
		     path, len, sizeof(a->buf) - a->used);
		return 0;
	}
	snprintf(area_host(a, gpa), len, "%s%s%s", path, has_args ? " " : "", has_args ? args : "");
	return gpa;
}

static void mmap_add(struct multiboot_mmap_entry *e, unsigned *n, uint64_t addr, uint64_t len,
		     uint32_t type)
{
	if (!len)
		return;
	e[*n] = (struct multiboot_mmap_entry){
		.size = sizeof(*e) - sizeof(e->size), .addr = addr, .len = len, .type = type,
	};
	(*n)++;
}

/* The map a PC BIOS reports: conventional RAM, EBDA and ROM reserved, then RAM. */
static unsigned mmap_build(const struct guest_memory *mem, struct multiboot_mmap_entry *e)
{
	uint64_t low = guest_low_ram_end(mem);
	unsigned n = 0;

	mmap_add(e, &n, 0, low < MB_EBDA ? low : MB_EBDA, MB_MMAP_RAM);
	mmap_add(e, &n, MB_EBDA, 0xA0000 - MB_EBDA, MB_MMAP_RESERVED);
	mmap_add(e, &n, MB_BIOS_ROM, MB_1M - MB_BIOS_ROM, MB_MMAP_RESERVED);
	if (low > MB_1M)
		mmap_add(e, &n, MB_1M, low - MB_1M, MB_MMAP_RAM);
	for (unsigned i = 1; i < mem->count; i++)
		mmap_add(e, &n, mem->region[i].gpa, mem->region[i].size, MB_MMAP_RAM);
	return n;
}

static int module_load(struct mb_ctx *c, const struct multiboot_module_arg *m, uint64_t *next,
		       struct multiboot_mod_list *entry)
{
	uint64_t at = align_up(*next, MB_PAGE);
	uint64_t low = guest_low_ram_end(c->mem);
	struct mb_file f;
	void *host;
	int ret;

	ret = file_open(c, &f, m->path);
	if (ret)
		return ret;
	host = at <= low && f.size <= low - at ? gpa_ptr(c->mem, at, f.size) : NULL;
	if (!host)
		ret = fail(c, -ENOMEM, "%s: module of %llu bytes does not fit in guest RAM at 0x%llx (RAM below 4 GiB ends at 0x%llx)",
			   m->path, (unsigned long long)f.size, (unsigned long long)at,
			   (unsigned long long)low);
	if (!ret)
		ret = file_read(c, &f, 0, host, f.size);
	if (!ret) {
		entry->mod_start = at;
		entry->mod_end = at + f.size;
		*next = at + f.size;
	}
	file_close(&f);
	return ret;
}

/* Modules from the first page above both the kernel and the info area. */
static int modules_load(struct mb_ctx *c, struct mb_area *a, const struct mb_kernel *k,
			const struct multiboot_module_arg *mods, unsigned nmods,
			struct multiboot_info *info)
{
	uint64_t next = k->end > MB_INFO_END ? k->end : MB_INFO_END;
	struct multiboot_mod_list *list;
	int ret;

	info->mods_count = nmods;
	info->mods_addr = area_alloc(a, nmods * sizeof(*list), 16);
	if (!info->mods_addr)
		return fail(c, -E2BIG, "%u modules do not fit in the multiboot info area", nmods);
	list = area_host(a, info->mods_addr);
	for (unsigned i = 0; i < nmods; i++) {
		ret = module_load(c, &mods[i], &next, &list[i]);
		if (ret)
			return ret;
		list[i].cmdline = area_put_cmdline(c, a, mods[i].path, mods[i].cmdline);
		if (!list[i].cmdline)
			return -E2BIG;
	}
	return 0;
}

static int info_build(struct mb_ctx *c, struct mb_area *a, const struct mb_kernel *k,
		      const char *kernel_path, const char *cmdline,
		      const struct multiboot_module_arg *mods, unsigned nmods)
{
	static const char loader_name[] = "vmm";
	struct multiboot_mmap_entry map[MB_MAX_MMAP];
	struct multiboot_info *info;
	uint64_t low = guest_low_ram_end(c->mem);
	unsigned nmap = mmap_build(c->mem, map);
	uint32_t at;

	/* The first allocations cannot fail: the area is far larger than these. */
	info = area_host(a, area_alloc(a, sizeof(*info), 16));
	info->flags = MB_INFO_MEMORY | MB_INFO_CMDLINE | MB_INFO_MODS | MB_INFO_MMAP |
		      MB_INFO_LOADER_NAME;
	/* As QEMU reports it, though the map keeps the EBDA's last KiB reserved. */
	info->mem_lower = 640;
	info->mem_upper = low > MB_1M ? (low - MB_1M) >> 10 : 0;
	info->mmap_length = nmap * sizeof(map[0]);
	info->mmap_addr = area_alloc(a, sizeof(map), 8);
	memcpy(area_host(a, info->mmap_addr), map, info->mmap_length);
	at = area_alloc(a, sizeof(loader_name), 1);
	memcpy(area_host(a, at), loader_name, sizeof(loader_name));
	info->boot_loader_name = at;

	info->cmdline = area_put_cmdline(c, a, kernel_path, cmdline);
	if (!info->cmdline)
		return -E2BIG;
	return modules_load(c, a, k, mods, nmods, info);
}

int multiboot_load(struct guest_memory *mem, const char *kernel_path, const char *cmdline,
		   const struct multiboot_module_arg *mods, unsigned nmods,
		   struct boot_entry *entry, char *err, size_t errlen)
{
	struct mb_ctx c = { .mem = mem, .err = err, .errlen = errlen };
	struct mb_kernel k = { 0 };
	struct mb_area *a;
	int ret;

	if (errlen)
		err[0] = '\0';
	ret = kernel_load(&c, kernel_path, &k);
	if (ret)
		return ret;
	a = calloc(1, sizeof(*a));
	if (!a)
		return fail(&c, -ENOMEM, "%s: out of memory", kernel_path);
	ret = info_build(&c, a, &k, kernel_path, cmdline, mods, nmods);
	if (!ret && gpa_write(mem, MB_INFO_START, a->buf, a->used))
		ret = fail(&c, -ENOMEM, "guest RAM too small for the multiboot info at 0x%x", MB_INFO_START);
	free(a);
	if (ret)
		return ret;
	*entry = (struct boot_entry){
		.eip = k.entry, .eax = MB_BOOTLOADER_MAGIC, .ebx = MB_INFO_START,
	};
	return 0;
}

int multiboot_probe(const char *kernel_path)
{
	struct mb_ctx c = { 0 };
	struct multiboot_header hdr;
	struct mb_file f;
	uint32_t off;
	int ret;

	ret = file_open(&c, &f, kernel_path);
	if (ret)
		return ret;
	ret = header_find(&c, &f, &hdr, &off);
	file_close(&f);
	if (ret == -ENOEXEC)
		return 0;
	return ret ? ret : 1;
}
