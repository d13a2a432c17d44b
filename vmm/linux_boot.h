/*
 * Linux loader: a bzImage or an uncompressed ELF64 vmlinux, a command
 * line and an initrd go into guest RAM; the result says how the BSP must
 * start.
 *
 * Three ways in, by struct linux_boot_args:
 *   unpack, LINUX_ENTRY_64 (the default)  a bzImage's payload is
 *       decompressed here and its vmlinux loaded at its physical
 *       addresses (as is a vmlinux file); the BSP enters startup_64 (ELF
 *       e_entry) in long mode with RSI = the zero page.
 *   unpack, LINUX_ENTRY_PVH  the same kernel, entered at its Xen PVH
 *       entry (ELF note XEN_ELFNOTE_PHYS32_ENTRY) in 32-bit protected mode
 *       with EBX = struct hvm_start_info.
 *   !unpack (bzImage only)  the protected-mode part is loaded at 1 MiB
 *       (or pref_address if relocatable) and entered at its 32-bit entry
 *       with ESI = the zero page: the kernel decompresses itself.
 *
 * Guest-physical layout (doc/memory-map.md, doc/boot.md):
 *   0x0500            boot GDT                   (linux_boot_setup_cpu)
 *   0x1000-0x6fff     identity page tables       (64-bit entry only)
 *   0x7000            zero page, or hvm_start_info + module + memory map
 *   0x20000           command line (up to 64 KiB)
 *   >= 1 MiB          the kernel
 *   top of low RAM    the initrd, page-aligned, below initrd_addr_max
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vmm/decompress.h"
#include "vmm/memory.h"

struct vcpu;

#define LINUX_ZERO_PAGE_ADDR   0x7000ull
#define LINUX_PVH_INFO_ADDR    0x7000ull
#define LINUX_PVH_MODLIST_ADDR 0x7040ull
#define LINUX_PVH_MEMMAP_ADDR  0x7080ull
#define LINUX_CMDLINE_ADDR     0x20000ull
#define LINUX_CMDLINE_AREA     0x10000ull
#define LINUX_KERNEL_MIN       0x100000ull    /* nothing of the kernel below 1 MiB */
#define LINUX_INITRD_CEILING   0xc0000000ull  /* the PCI hole */
#define LINUX_MAX_FILE         (1ull << 30)   /* kernel file size we read */
/* What a vmlinux without a setup header is told (the x86_64 defaults). */
#define LINUX_DEFAULT_CMDLINE_SIZE   2047u
#define LINUX_DEFAULT_INITRD_MAX     0x7fffffffu

#define XEN_ELFNOTE_PHYS32_ENTRY     18
#define XEN_HVM_START_MAGIC          0x336ec578u

/* Xen's public arch-x86/hvm/start_info.h, version 1 (with the memory map). */
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;             /* e820 types */
	uint32_t reserved;
};

enum linux_entry { LINUX_ENTRY_64, LINUX_ENTRY_PVH };

struct linux_boot_args {
	const char *kernel;        /* bzImage or ELF64 vmlinux */
	const char *initrd;        /* NULL: none */
	const char *cmdline;       /* NULL: empty */
	bool unpack;               /* decompress a bzImage here (else its 32-bit entry) */
	enum linux_entry entry;
	uint64_t rsdp;             /* ACPI RSDP address for the kernel, 0: let it scan */
};

enum linux_cpu_mode {
	LINUX_CPU_LONG64,          /* boot_cpu_long_mode(ip, rsi = info) */
	LINUX_CPU_PROT32,          /* boot_cpu_protected(ip, esi = info) */
	LINUX_CPU_PVH,             /* cpu_state_protected_flat(ip, ebx = info) */
};

struct linux_boot_entry {
	enum linux_cpu_mode mode;
	uint64_t ip;
	uint64_t info;             /* zero page or hvm_start_info */
	uint64_t kernel_start;     /* what the kernel occupies */
	uint64_t kernel_end;
	uint64_t initrd_addr;      /* 0 when no initrd */
	uint64_t initrd_size;
	enum kcomp compression;    /* the unpacked payload's, else KCOMP_NONE */
};

/*
 * Load per @a.  Returns 0, or a negative errno with a message naming the
 * file in @err:
 *   -ENOENT etc.  a file cannot be opened or read
 *   -ENOEXEC      neither a bzImage nor an ELF64 x86-64 vmlinux, truncated,
 *                 bad ELF, entry outside the kernel, unknown compression
 *   -ENOTSUP      protocol older than 2.06 (2.08 to unpack), zImage,
 *                 bzip2/lzo payload, PVH asked for but no PVH note
 *   -EBADMSG      corrupt compressed payload
 *   -EFBIG        payload decompresses past init_size: refused
 *   -ENOMEM       kernel outside guest RAM, initrd does not fit
 *   -EINVAL       a kernel segment below 1 MiB (the boot area)
 *   -E2BIG        command line longer than the kernel's cmdline_size
 */
int linux_boot_load(struct guest_memory *mem, const struct linux_boot_args *a,
		    struct linux_boot_entry *out, char *err, size_t errlen);

/* Set the BSP's registers for @e (writes the boot GDT and page tables). */
int linux_boot_setup_cpu(struct vcpu *bsp, struct guest_memory *mem,
			 const struct linux_boot_entry *e);

/* 1: bzImage, 2: ELF64 x86-64 (a vmlinux), 0: neither, <0: -errno. */
int linux_probe(const char *path);

/* The PVH entry of an ELF64 image: 1 and *entry, 0 if none, -ENOEXEC if malformed. */
int linux_pvh_entry(const void *elf, size_t size, uint32_t *entry);
