/*
 * The full state of a vCPU as KVM and our LAPIC hold it, read into one
 * structure and printed for people: registers, segments, control and debug
 * registers, descriptor tables, FPU/XSAVE, XCRs, pending events, the
 * architectural MSRs and the LAPIC's registers; plus the PIC, IOAPIC and
 * PIT of the VM.
 *
 * Threads: KVM's vCPU ioctls from another thread are only safe while the
 * vCPU is outside KVM_RUN.  vcpu_state_read() is for the vCPU's own thread,
 * or for a control thread while the VM is paused (vmm/pause.h) or its vCPU
 * threads have finished (after machine_stop).  vm_state_dump() pauses and
 * resumes by itself.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/kvm.h>

struct vm;
struct vcpu;

/*
 * The VMM's exit status when the guest crashed (triple fault, emulation
 * failure): vmm/vcpu_exit.c exits with it, the frontend dumps on it.
 */
#ifndef EXIT_GUEST_CRASH
#define EXIT_GUEST_CRASH 4
#endif

#define STATE_DUMP_MAX_MSRS   32
#define STATE_DUMP_LAPIC_REGS 64     /* one word per 16-byte slot of the page */

/* Parts of struct vcpu_state_dump that were read (bits of @have). */
enum {
	STATE_REGS = 1u << 0,
	STATE_SREGS = 1u << 1,
	STATE_FPU = 1u << 2,
	STATE_XSAVE = 1u << 3,
	STATE_XCRS = 1u << 4,
	STATE_DEBUGREGS = 1u << 5,
	STATE_EVENTS = 1u << 6,
	STATE_MSRS = 1u << 7,
	STATE_LAPIC = 1u << 8,
	STATE_PDPTRS = 1u << 9,      /* sregs came from KVM_GET_SREGS2 */
};

struct state_msr {
	uint32_t index;
	uint64_t value;
	const char *name;
	bool from_lapic;             /* answered by our LAPIC, not KVM */
};

struct vcpu_state_dump {
	unsigned id;
	int tid;                     /* host thread, 0 if never started */
	int host_cpu;                /* pinned core, -1 if not pinned */
	const char *run_state;       /* vcpu_run_state_name() */
	const char *activity;        /* below a pause: "running", "halted", "parked", ... */
	uint64_t exits;
	unsigned have;               /* STATE_* bits */
	int error;                   /* -errno of the first part that failed, or 0 */

	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint64_t pdptrs[4];
	struct kvm_fpu fpu;
	struct kvm_xsave *xsave;     /* malloc'd, @xsave_size bytes */
	size_t xsave_size;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs debugregs;
	struct kvm_vcpu_events events;
	unsigned nmsrs;
	struct state_msr msrs[STATE_DUMP_MAX_MSRS];
	/* The LAPIC page: lapic_regs[off >> 4]; valid where lapic_valid is set. */
	uint32_t lapic_regs[STATE_DUMP_LAPIC_REGS];
	uint64_t lapic_valid;
};

/*
 * Read everything of @vcpu that KVM and the LAPIC give (see the thread
 * rule above).  Parts that fail are left out of @have; returns 0 if all
 * were read, else the -errno of the first failure.  vcpu_state_free()
 * afterwards in any case.
 */
int vcpu_state_read(struct vcpu *vcpu, struct vcpu_state_dump *st);
void vcpu_state_free(struct vcpu_state_dump *st);

/* The whole dump as text. */
void vcpu_state_print(const struct vcpu_state_dump *st, FILE *out);
/* QEMU's "info registers" layout: general, segment, control registers. */
void vcpu_state_print_registers(const struct vcpu_state_dump *st, FILE *out);
/* Our LAPIC's registers, ISR/IRR/TMR as vector lists. */
void vcpu_state_print_lapic(const struct vcpu_state_dump *st, FILE *out);

/* Vectors set in a 256-bit LAPIC register (ISR 0x100, TMR 0x180, IRR 0x200). */
unsigned state_lapic_vectors(const struct vcpu_state_dump *st, unsigned reg,
			     uint8_t vectors[256]);
/*
 * A vCPU's run state as a word: "created" (thread not started), "stopped"
 * (left its loop), "paused" (the VM is paused), else its activity.
 */
const char *vcpu_run_state_name(struct vcpu *vcpu);
/* What the vCPU does, paused or not: "running", "halted", "parked", ... */
const char *vcpu_activity_name(struct vcpu *vcpu);
/* Exits so far, from the atomic per-reason counters: any thread. */
uint64_t vcpu_exit_count(struct vcpu *vcpu);

/* The PIC, IOAPIC and PIT of @vm as text (those that exist), read serialized. */
void vm_devices_print(struct vm *vm, FILE *out);
/*
 * Run @fn(@arg) where unclaimed device callbacks run (the I/O thread, or
 * under the global lock) and wait for it: to read serialized device state
 * from a control thread.  Not from a device callback of the I/O thread's.
 */
void vm_run_serialized(struct vm *vm, void (*fn)(void *arg), void *arg);
/*
 * Every vCPU and the devices as text.  The caller makes sure no vCPU is in
 * KVM_RUN: the VM is paused, or its vCPU threads have finished.
 */
void vm_state_print(struct vm *vm, FILE *out);
/* Pause the VM, print its state, resume: for a control thread only. */
int vm_state_dump(struct vm *vm, FILE *out);
