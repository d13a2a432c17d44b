/*
 * KVM exits become bus messages: port I/O and MMIO on the range buses,
 * MSR accesses on the vCPU's own bus.  Reads are synchronous (the vCPU
 * needs the value before re-entering); writes are posted.  Nobody
 * answering a read gives all ones, as an empty bus does on a PC.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include "bus/message.h"
#include "vmm/cpu_state.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"
#include "vmm/insn_fallback.h"
#include "vmm/vcpu_exit.h"
#include "vmm/vm.h"


static _Atomic uint64_t unhandled_pio, unhandled_mmio;

static uint64_t all_ones(unsigned size)
{
	return size >= 8 ? UINT64_MAX : (1ull << (size * 8)) - 1;
}

static void pio_one(struct vcpu *vcpu, uint16_t port, uint8_t size, bool write, uint8_t *data)
{
	struct msg_pio msg = { .port = port, .size = size, .write = write };

	if (write) {
		memcpy(&msg.value, data, size);
		if (!range_bus_send_async(vcpu->vm->bus.pio, port, &msg))
			atomic_fetch_add_explicit(&unhandled_pio, 1, memory_order_relaxed);
		return;
	}
	if (!range_bus_send(vcpu->vm->bus.pio, port, &msg)) {
		atomic_fetch_add_explicit(&unhandled_pio, 1, memory_order_relaxed);
		msg.value = (uint32_t)all_ones(size);
	}
	memcpy(data, &msg.value, size);
}

static void handle_pio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;

	/* String I/O (rep outsb/insb) arrives as @count items. */
	for (uint32_t i = 0; i < run->io.count; i++)
		pio_one(vcpu, run->io.port, run->io.size, write, data + i * run->io.size);
}

static void handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct msg_mmio msg = { .addr = run->mmio.phys_addr, .size = (uint8_t)run->mmio.len,
				.write = run->mmio.is_write };

	if (msg.size > 8)
		msg.size = 8;
	if (msg.write) {
		memcpy(&msg.value, run->mmio.data, msg.size);
		if (!range_bus_send_async(vcpu->vm->bus.mmio, msg.addr, &msg))
			atomic_fetch_add_explicit(&unhandled_mmio, 1, memory_order_relaxed);
		return;
	}
	if (!range_bus_send(vcpu->vm->bus.mmio, msg.addr, &msg)) {
		atomic_fetch_add_explicit(&unhandled_mmio, 1, memory_order_relaxed);
		msg.value = all_ones(msg.size);
	}
	memcpy(run->mmio.data, &msg.value, msg.size);
}

static void handle_msr(struct vcpu *vcpu, bool write)
{
	struct kvm_run *run = vcpu->run;
	struct msg_cpu msg = { .type = write ? CPU_MSG_WRMSR : CPU_MSG_RDMSR,
			       .index = run->msr.index, .value = run->msr.data };
	bool handled = bus_send(vcpu->bus, &msg, BUS_EARLY_OUT);

	run->msr.error = !handled || msg.fault;
	if (!write && !run->msr.error)
		run->msr.data = msg.value;
}

static bool guest_crashed(struct vcpu *vcpu, const char *what)
{
	pr_err("vCPU %u: %s", vcpu->id, what);
	cpu_state_dump(vcpu, stderr);
	if (vcpu->vm->crash_hook)
		vcpu->vm->crash_hook(what);
	vm_request_exit(vcpu->vm, EXIT_GUEST_CRASH);
	return false;
}

static bool internal_error(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char what[160];

	if (insn_fallback(vcpu)) {
		atomic_store(&vcpu->state, VCPU_RUNNING);
		return true;
	}
	int n = snprintf(what, sizeof(what), "KVM internal error, suberror %u%s",
			 run->internal.suberror,
			 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ?
			 " (instruction emulation failed)" : "");

	for (uint32_t i = 0; i < run->internal.ndata && i < 4 && n < (int)sizeof(what); i++)
		n += snprintf(what + n, sizeof(what) - (size_t)n, " data[%u]=%llx", i,
			      (unsigned long long)run->internal.data[i]);
	return guest_crashed(vcpu, what);
}

/*
 * KVM may take a HLT before it could inject an NMI we handed it (an
 * interrupt shadow): then the vCPU must not sleep, the next entry delivers.
 */
static bool nmi_still_pending(struct vcpu *vcpu)
{
	struct kvm_vcpu_events ev;

	if (!vcpu->nmi_in_flight)
		return false;
	if (ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &ev) == 0 && (ev.nmi.pending || ev.nmi.injected))
		return true;
	vcpu->nmi_in_flight = false;
	return false;
}

uint64_t vcpu_unhandled_pio(void) { return atomic_load(&unhandled_pio); }
uint64_t vcpu_unhandled_mmio(void) { return atomic_load(&unhandled_mmio); }

bool vcpu_handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char what[96];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_pio(vcpu);
		atomic_store(&vcpu->state, VCPU_COMPLETING);
		return true;
	case KVM_EXIT_MMIO:
		handle_mmio(vcpu);
		atomic_store(&vcpu->state, VCPU_COMPLETING);
		return true;
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR:
		handle_msr(vcpu, run->exit_reason == KVM_EXIT_X86_WRMSR);
		atomic_store(&vcpu->state, VCPU_COMPLETING);
		return true;
	case KVM_EXIT_HLT:
		atomic_store(&vcpu->state, nmi_still_pending(vcpu) ? VCPU_RUNNING : VCPU_HALTED);
		return true;
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_INTR:
		atomic_store(&vcpu->state, VCPU_RUNNING);
		return true;
	case KVM_EXIT_SHUTDOWN:
		return guest_crashed(vcpu, "triple fault (shutdown)");
	case KVM_EXIT_INTERNAL_ERROR:
		return internal_error(vcpu);
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "VM entry failed, hardware reason %llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return guest_crashed(vcpu, what);
	case KVM_EXIT_SYSTEM_EVENT:
		snprintf(what, sizeof(what), "system event %u", run->system_event.type);
		return guest_crashed(vcpu, what);
	default:
		snprintf(what, sizeof(what), "unexpected KVM exit reason %u", run->exit_reason);
		return guest_crashed(vcpu, what);
	}
}
