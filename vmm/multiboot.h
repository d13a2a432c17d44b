/*
 * Multiboot v1 loader: puts a kernel, its modules and the multiboot info
 * into guest RAM and says how the BSP must start.
 *
 * Guest-physical layout it uses:
 *   [MB_INFO_START, MB_INFO_END)  the info area, packed in this order:
 *       struct multiboot_info, the memory map, the module list, the boot
 *       loader name, the kernel command line, the module command lines.
 *       A kernel segment may not overlap it.
 *   the kernel                    where its ELF p_paddr / a.out kludge says
 *   the modules                   in order, each page-aligned, from the
 *                                 first page above both the kernel and the
 *                                 info area; all below the PCI hole.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "vmm/memory.h"

#define MB_HEADER_MAGIC      0x1BADB002u
#define MB_BOOTLOADER_MAGIC  0x2BADB002u
#define MB_SEARCH_LEN        8192

/* Header flags (bits 0-15 are required: a loader must refuse unknown ones). */
#define MB_HF_PAGE_ALIGN     (1u << 0)   /* modules page-aligned */
#define MB_HF_MEMORY_INFO    (1u << 1)   /* mem_* and mmap_* wanted */
#define MB_HF_VIDEO_MODE     (1u << 2)   /* video mode wanted: ignored here */
#define MB_HF_AOUT_KLUDGE    (1u << 16)  /* load by the header's address fields */

/* Info flags: which fields of struct multiboot_info are valid. */
#define MB_INFO_MEMORY       (1u << 0)
#define MB_INFO_BOOTDEV      (1u << 1)
#define MB_INFO_CMDLINE      (1u << 2)
#define MB_INFO_MODS         (1u << 3)
#define MB_INFO_MMAP         (1u << 6)
#define MB_INFO_LOADER_NAME  (1u << 9)
#define MB_INFO_VBE          (1u << 11)
#define MB_INFO_FRAMEBUFFER  (1u << 12)

#define MB_INFO_START        0x9000u
#define MB_INFO_END          0x10000u

/* Memory map entry types (as e820). */
#define MB_MMAP_RAM          1
#define MB_MMAP_RESERVED     2

struct multiboot_header {
	uint32_t magic;
	uint32_t flags;
	uint32_t checksum;              /* magic + flags + checksum == 0 */
	uint32_t header_addr;           /* the rest only with MB_HF_AOUT_KLUDGE */
	uint32_t load_addr;
	uint32_t load_end_addr;         /* 0: to the end of the file */
	uint32_t bss_end_addr;          /* 0: no bss */
	uint32_t entry_addr;
} __attribute__((packed));

struct multiboot_info {
	uint32_t flags;
	uint32_t mem_lower;             /* KiB below 1 MiB */
	uint32_t mem_upper;             /* KiB from 1 MiB to the first hole */
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count;
	uint32_t mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length;           /* bytes */
	uint32_t mmap_addr;
	uint32_t drives_length;
	uint32_t drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name;
	uint32_t apm_table;
	uint32_t vbe_control_info;
	uint32_t vbe_mode_info;
	uint16_t vbe_mode;
	uint16_t vbe_interface_seg;
	uint16_t vbe_interface_off;
	uint16_t vbe_interface_len;
	uint64_t framebuffer_addr;
	uint32_t framebuffer_pitch;
	uint32_t framebuffer_width;
	uint32_t framebuffer_height;
	uint8_t framebuffer_bpp;
	uint8_t framebuffer_type;
	uint8_t color_info[6];
} __attribute__((packed));

/* mmap_addr points at @size, which counts the bytes after itself (20). */
struct multiboot_mmap_entry {
	uint32_t size;
	uint64_t addr;
	uint64_t len;
	uint32_t type;
} __attribute__((packed));

struct multiboot_mod_list {
	uint32_t mod_start;
	uint32_t mod_end;               /* exclusive */
	uint32_t cmdline;
	uint32_t pad;
} __attribute__((packed));

struct boot_entry {            /* how the BSP starts: 32-bit protected mode, flat, paging off */
	uint32_t eip;
	uint32_t eax;              /* 0x2BADB002 */
	uint32_t ebx;              /* physical address of the multiboot info */
};

struct multiboot_module_arg {
	const char *path;
	const char *cmdline;       /* may be NULL */
};

/*
 * Load @kernel_path and @mods into @mem.  The kernel sees the command line
 * "kernel_path cmdline", each module "path cmdline" (as GRUB and QEMU do).
 * Returns 0, or a negative errno with a message naming the file in @err:
 *   -ENOENT etc.  the file cannot be opened or read (errno of the call)
 *   -ENOEXEC      empty file, no header, bad checksum, bad or truncated
 *                 ELF, ELF64 or not EM_386, neither ELF nor a.out kludge
 *   -ENOTSUP      a required header flag we do not implement
 *   -ENOMEM       kernel or modules outside guest RAM / not fitting in it
 *   -EINVAL       a kernel segment overlaps the info area
 *   -E2BIG        the command lines do not fit in the info area
 */
int multiboot_load(struct guest_memory *mem, const char *kernel_path, const char *cmdline,
		   const struct multiboot_module_arg *mods, unsigned nmods,
		   struct boot_entry *entry, char *err, size_t errlen);

/* 1 if the file has a multiboot v1 header in its first 8 KiB, 0 if not, <0 on I/O error */
int multiboot_probe(const char *kernel_path);
