/*
 * The KVM system and VM file descriptors: open, create, memslots, CPUID
 * and the MSRs the VMM emulates itself.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct vm;
struct vcpu;

/* Open /dev/kvm, create the VM and map guest RAM; message in @err. */
int kvm_vm_create(struct vm *vm, char *err, size_t errlen);
void kvm_vm_destroy(struct vm *vm);
/* Memslot i is RAM region i; log writes to them (migration) or stop. */
int kvm_set_dirty_logging(struct vm *vm, bool on, char *err, size_t errlen);
/* CPUID for @vcpu: its APIC ID, no x2APIC (our LAPIC is xAPIC). */
int kvm_vcpu_set_cpuid(struct vcpu *vcpu);
/*
 * Fork safety: a forked child shares the parent's KVM file descriptors but
 * not its threads; letting it run or change the VM would corrupt it.  True
 * (after saying so on stderr) when the caller is such a child and must not
 * touch KVM.
 */
bool kvm_forbidden_here(void);
/* Return "/dev/kvm is missing", ...: why KVM cannot be used, or NULL. */
const char *kvm_unavailable_reason(void);
