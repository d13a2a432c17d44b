/*
 * CPU entry state for the Linux 32-bit and 64-bit boot protocols.
 *
 * Spec: Documentation/arch/x86/boot.rst "32-bit BOOT PROTOCOL" and "64-bit
 * BOOT PROTOCOL"; Intel SDM vol. 3 4.5 (4-level paging) and 9.8.5
 * (initializing IA-32e mode).
 * State: stable.
 *
 * The common part (TR, LDT, FPU, flags) comes from cpu_state_protected_flat;
 * this adds the boot GDT, the boot selectors, paging and long mode.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include "vmm/boot_cpu.h"
#include "vmm/cpu_state.h"
#include "vmm/vcpu.h"

#define CR0_PE   (1ull << 0)
#define CR0_ET   (1ull << 4)
#define CR0_PG   (1ull << 31)
#define CR4_PAE  (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

#define PTE_P    (1ull << 0)
#define PTE_RW   (1ull << 1)
#define PTE_PS   (1ull << 7)

/* Flat descriptors: base 0, limit 0xfffff pages, present, ring 0. */
#define GDT_CODE32 0x00cf9b000000ffffull    /* G, D, type 0xb (exec/read, accessed) */
#define GDT_CODE64 0x00af9b000000ffffull    /* G, L */
#define GDT_DATA   0x00cf93000000ffffull    /* G, B, type 3 (read/write, accessed) */

/* The hidden parts KVM loads must match the descriptors in the GDT. */
static struct kvm_segment boot_segment(uint16_t sel, uint8_t type, int long_mode)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type, .present = 1,
		.s = 1, .g = 1, .db = !long_mode, .l = long_mode,
	};
}

static int gdt_write(struct guest_memory *mem, int long_mode)
{
	uint64_t gdt[4] = { 0, 0, long_mode ? GDT_CODE64 : GDT_CODE32, GDT_DATA };

	return gpa_write(mem, BOOT_GDT_ADDR, gdt, sizeof(gdt));
}

/* PML4[0] -> PDPT, PDPT[0..3] -> 4 PDs of 512 2 MiB pages each: 0-4 GiB. */
static int page_tables_write(struct guest_memory *mem)
{
	uint64_t *pml4 = gpa_ptr(mem, BOOT_PML4_ADDR, BOOT_PT_END - BOOT_PML4_ADDR);
	uint64_t *pdpt, *pd;

	if (!pml4)
		return -EFAULT;
	memset(pml4, 0, BOOT_PT_END - BOOT_PML4_ADDR);
	pdpt = pml4 + (BOOT_PDPT_ADDR - BOOT_PML4_ADDR) / 8;
	pd = pml4 + (BOOT_PD_ADDR - BOOT_PML4_ADDR) / 8;
	pml4[0] = BOOT_PDPT_ADDR | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (BOOT_PD_ADDR + i * 0x1000) | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | PTE_P | PTE_RW | PTE_PS;
	return 0;
}

static int set_boot_state(struct vcpu *vcpu, int long_mode, uint64_t rip, uint64_t rsi)
{
	struct kvm_sregs s;
	struct kvm_regs r;
	int ret;

	ret = cpu_state_protected_flat(vcpu, (uint32_t)rip, 0, 0);
	if (ret)
		return ret;
	if (ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0 || ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0)
		return -errno;
	s.cs = boot_segment(BOOT_CS, 0xb, long_mode);
	s.ds = s.es = s.fs = s.gs = s.ss = boot_segment(BOOT_DS, 0x3, 0);
	s.gdt = (struct kvm_dtable){ .base = BOOT_GDT_ADDR, .limit = 4 * 8 - 1 };
	s.cr0 = CR0_PE | CR0_ET;
	if (long_mode) {
		s.cr3 = BOOT_PML4_ADDR;
		s.cr4 = CR4_PAE;
		s.cr0 |= CR0_PG;
		s.efer = EFER_LME | EFER_LMA;
	}
	/* Interrupts stay off (RFLAGS 0x2 from cpu_state_protected_flat). */
	r.rip = rip;
	r.rsi = rsi;
	r.rax = r.rbx = r.rdi = r.rbp = 0;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &s) < 0 || ioctl(vcpu->fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	return 0;
}

int boot_cpu_long_mode(struct vcpu *vcpu, struct guest_memory *mem, uint64_t rip, uint64_t rsi)
{
	int ret = gdt_write(mem, 1);

	if (!ret)
		ret = page_tables_write(mem);
	return ret ? ret : set_boot_state(vcpu, 1, rip, rsi);
}

int boot_cpu_protected(struct vcpu *vcpu, struct guest_memory *mem, uint32_t eip, uint32_t esi)
{
	int ret = gdt_write(mem, 0);

	return ret ? ret : set_boot_state(vcpu, 0, eip, esi);
}
