/*
 * The BSP's start state for the Linux boot entries: a boot GDT at 0x500
 * with __BOOT_CS 0x10 and __BOOT_DS 0x18 (flat 4 GiB), and for the 64-bit
 * entry identity page tables at 0x1000-0x6fff mapping the first 4 GiB in
 * 2 MiB pages (1 GiB pages triple-fault on these hosts).
 *
 * Both write guest RAM, so they run after the kernel is loaded; the Linux
 * loader keeps kernels above 1 MiB, clear of these tables.
 */
#pragma once
#include <stdint.h>
#include "vmm/memory.h"

struct vcpu;

#define BOOT_GDT_ADDR    0x500ull
#define BOOT_PML4_ADDR   0x1000ull
#define BOOT_PDPT_ADDR   0x2000ull
#define BOOT_PD_ADDR     0x3000ull     /* 4 page directories, to 0x6fff */
#define BOOT_PT_END      0x7000ull
#define BOOT_CS          0x10
#define BOOT_DS          0x18

/*
 * 64-bit boot protocol: long mode, paging on, CS 64-bit code at 0x10,
 * DS/ES/SS/FS/GS 0x18, interrupts off, RIP @rip, RSI @rsi (the zero page).
 * 0 or a negative errno (-EFAULT: RAM too small for the tables).
 */
int boot_cpu_long_mode(struct vcpu *vcpu, struct guest_memory *mem, uint64_t rip, uint64_t rsi);

/*
 * 32-bit boot protocol: flat protected mode, paging off, CS 0x10, DS/ES/SS
 * 0x18, EIP @eip, ESI @esi (the zero page), EBP/EDI/EBX zero.
 */
int boot_cpu_protected(struct vcpu *vcpu, struct guest_memory *mem, uint32_t eip, uint32_t esi);
