/*
 * The KVM system and VM file descriptors: open, create, memslots, CPUID
 * and the MSRs the VMM emulates itself.
 */
#pragma once
#include <stddef.h>

struct vm;
struct vcpu;

/* Open /dev/kvm, create the VM and map guest RAM; message in @err. */
int kvm_vm_create(struct vm *vm, char *err, size_t errlen);
void kvm_vm_destroy(struct vm *vm);
/* CPUID for @vcpu: its APIC ID, no x2APIC (our LAPIC is xAPIC). */
int kvm_vcpu_set_cpuid(struct vcpu *vcpu);
/* Return "/dev/kvm is missing", ...: why KVM cannot be used, or NULL. */
const char *kvm_unavailable_reason(void);
