#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include "vmm/cpu_state.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = selector, .type = type,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
}

static void system_segments(struct kvm_sregs *s)
{
	s->tr = (struct kvm_segment){ .limit = 0xffff, .type = 11, .present = 1 };
	s->ldt = (struct kvm_segment){ .limit = 0xffff, .type = 2, .present = 1 };
}

static int set_fpu_defaults(struct vcpu *vcpu)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };

	return ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0 ? -errno : 0;
}

int cpu_state_protected_flat(struct vcpu *vcpu, uint32_t eip, uint32_t eax, uint32_t ebx)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = eip, .rax = eax, .rbx = ebx, .rflags = 0x2 };

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.cs = flat_segment(0x08, 0xb);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = flat_segment(0x10, 0x3);
	system_segments(&sregs);
	sregs.cr0 = 0x11;        /* PE, ET; paging off */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0 ||
	    ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return set_fpu_defaults(vcpu);
}

static struct kvm_segment real_segment(uint16_t selector, uint8_t type)
{
	return (struct kvm_segment){
		.base = (uint64_t)selector << 4, .limit = 0xffff, .selector = selector,
		.type = type, .present = 1, .s = 1,
	};
}

int cpu_state_real_mode(struct vcpu *vcpu, uint16_t cs, uint16_t ip)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = ip, .rflags = 0x2 };

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.cs = real_segment(cs, 0xb);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = real_segment(0, 0x3);
	system_segments(&sregs);
	sregs.cr0 = 0x60000010;  /* reset value: CD, NW, ET */
	sregs.cr2 = sregs.cr3 = sregs.cr4 = 0;
	sregs.efer = 0;
	sregs.gdt = (struct kvm_dtable){ .limit = 0xffff };
	sregs.idt = (struct kvm_dtable){ .limit = 0xffff };
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0 ||
	    ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return set_fpu_defaults(vcpu);
}

static void dump_segment(FILE *out, const char *name, const struct kvm_segment *s)
{
	fprintf(out, "  %-3s sel=%04x base=%016llx limit=%08x type=%x dpl=%u p=%u db=%u l=%u g=%u\n",
		name, s->selector, (unsigned long long)s->base, s->limit, s->type, s->dpl,
		s->present, s->db, s->l, s->g);
}

/* The bytes at the guest's instruction pointer, through its page tables. */
static void dump_code(struct vcpu *vcpu, FILE *out, uint64_t linear)
{
	struct kvm_translation tr = { .linear_address = linear };
	uint8_t bytes[16];
	const uint8_t *p;

	if (ioctl(vcpu->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid) {
		fprintf(out, "  code: linear %016llx is not mapped\n", (unsigned long long)linear);
		return;
	}
	/* Stay inside the page: the next one may map elsewhere. */
	size_t off = tr.physical_address & 0xfff;
	size_t len = off + sizeof(bytes) <= 0x1000 ? sizeof(bytes) : 0x1000 - off;

	p = gpa_ptr(&vcpu->vm->mem, tr.physical_address, len);
	if (!p) {
		fprintf(out, "  code: physical %016llx is not RAM\n",
			(unsigned long long)tr.physical_address);
		return;
	}
	memcpy(bytes, p, len);
	fprintf(out, "  code at %016llx (phys %016llx):", (unsigned long long)linear,
		(unsigned long long)tr.physical_address);
	for (size_t i = 0; i < len; i++)
		fprintf(out, " %02x", bytes[i]);
	fputc('\n', out);
}

void cpu_state_dump(struct vcpu *vcpu, FILE *out)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
		fprintf(out, "  (registers unavailable: %s)\n", strerror(errno));
		return;
	}
	fprintf(out, "vCPU %u registers:\n", vcpu->id);
	fprintf(out, "  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n",
		r.rax, r.rbx, r.rcx, r.rdx);
	fprintf(out, "  rsi=%016llx rdi=%016llx rbp=%016llx rsp=%016llx\n",
		r.rsi, r.rdi, r.rbp, r.rsp);
	fprintf(out, "  r8 =%016llx r9 =%016llx r10=%016llx r11=%016llx\n",
		r.r8, r.r9, r.r10, r.r11);
	fprintf(out, "  r12=%016llx r13=%016llx r14=%016llx r15=%016llx\n",
		r.r12, r.r13, r.r14, r.r15);
	fprintf(out, "  rip=%016llx rflags=%08llx\n", r.rip, r.rflags);
	fprintf(out, "  cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx efer=%llx\n",
		s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
	dump_segment(out, "cs", &s.cs);
	dump_segment(out, "ds", &s.ds);
	dump_segment(out, "ss", &s.ss);
	dump_segment(out, "tr", &s.tr);
	fprintf(out, "  gdt=%016llx/%04x idt=%016llx/%04x\n", s.gdt.base, s.gdt.limit,
		s.idt.base, s.idt.limit);
	dump_code(vcpu, out, s.cs.base + r.rip);
}
