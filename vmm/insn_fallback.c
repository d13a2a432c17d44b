/*
 * Instructions some hosts' KVM refuses to emulate in guest ring 0.
 *
 * Where guest ring 0 runs in KVM's instruction emulator (KVM on PVM, see
 * doc/host-notes.md), a few instructions stop the guest with an emulation
 * failure although their effect is simple and architectural.  A stock
 * Linux kernel executes two of them early: the INT3 of its boot-time INT3
 * self-test (and of every live text patch), and FWAIT when a task's FPU
 * state is dropped.  Here the VMM performs them the way the CPU would:
 *
 *   INT3 (CC)   a trap: RIP moves past the instruction and #BP is raised,
 *               so the guest's own handler runs and returns after it.
 *   FWAIT (9B)  raises #MF if an unmasked x87 exception is pending (the
 *               FSW's ES bit), else does nothing.
 *
 * Anything else stays an emulation failure.  On hosts with hardware
 * virtualization these instructions never exit, so this never runs.
 * Runs on the vCPU's own thread, with the vCPU out of KVM_RUN.
 */
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include "vmm/insn_fallback.h"
#include "vmm/memory.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define INSN_INT3   0xCC
#define INSN_FWAIT  0x9B
#define VEC_BP      3
#define VEC_MF      16
#define FSW_ES      0x80

static _Atomic uint64_t performed;

/* The first byte of the failed instruction: from KVM if it says, else read. */
static int first_byte(struct vcpu *vcpu, const struct kvm_sregs *s, const struct kvm_regs *r)
{
	struct kvm_run *run = vcpu->run;
	struct kvm_translation tr = { .linear_address = s->cs.base + r->rip };
	uint8_t b;

#ifdef KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES
	if (run->internal.ndata >= 2 &&
	    (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) &&
	    run->emulation_failure.insn_size >= 1)
		return run->emulation_failure.insn_bytes[0];
#endif
	if (ioctl(vcpu->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid ||
	    gpa_read(&vcpu->vm->mem, tr.physical_address, &b, 1) < 0)
		return -1;
	return b;
}

/* Raise exception @vector (no error code) at @rip, as KVM would deliver it. */
static bool raise_exception(struct vcpu *vcpu, struct kvm_regs *r, uint8_t vector)
{
	struct kvm_vcpu_events ev;

	if (ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &ev) < 0 || ev.exception.injected ||
	    ev.exception.pending)
		return false;
	if (ioctl(vcpu->fd, KVM_SET_REGS, r) < 0)
		return false;
	ev.exception.injected = 1;
	ev.exception.nr = vector;
	ev.exception.has_error_code = 0;
	ev.exception.error_code = 0;
	ev.flags &= ~(uint32_t)(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
				KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM);
	return ioctl(vcpu->fd, KVM_SET_VCPU_EVENTS, &ev) == 0;
}

static bool fwait(struct vcpu *vcpu, struct kvm_regs *r)
{
	struct kvm_fpu fpu;

	if (ioctl(vcpu->fd, KVM_GET_FPU, &fpu) < 0)
		return false;
	r->rip += 1;
	if (fpu.fsw & FSW_ES)
		return raise_exception(vcpu, r, VEC_MF);
	return ioctl(vcpu->fd, KVM_SET_REGS, r) == 0;
}

bool insn_fallback(struct vcpu *vcpu)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	int byte;

	if (vcpu->run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION ||
	    ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0 ||
	    (s.cs.selector & 3) != 0)
		return false;
	byte = first_byte(vcpu, &s, &r);
	switch (byte) {
	case INSN_INT3:
		r.rip += 1;
		if (!raise_exception(vcpu, &r, VEC_BP))
			return false;
		break;
	case INSN_FWAIT:
		if (!fwait(vcpu, &r))
			return false;
		break;
	default:
		return false;
	}
	atomic_fetch_add(&performed, 1);
	return true;
}

uint64_t insn_fallback_count(void)
{
	return atomic_load(&performed);
}
