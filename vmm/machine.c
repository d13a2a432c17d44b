#include <errno.h>
#include <string.h>
#include "bus/stats.h"
#include "vmm/global_lock.h"
#include "vmm/kvm.h"
#include "vmm/log.h"
#include "vmm/insn_fallback.h"
#include "vmm/machine.h"
#include "vmm/vcpu.h"
#include "vmm/vcpu_exit.h"

int machine_create(struct vm *vm, unsigned ncpus, uint64_t mem, enum io_mode io)
{
	char err[256] = "";
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = -1;
	vm->ncpus = ncpus;
	ret = guest_memory_init(&vm->mem, mem);
	if (ret < 0) {
		pr_err("cannot allocate %llu bytes of guest RAM: %s",
		       (unsigned long long)mem, strerror(-ret));
		return ret;
	}
	ret = kvm_vm_create(vm, err, sizeof(err));
	if (ret < 0) {
		pr_err("%s", err);
		return ret;
	}
	ret = vm_init_buses(vm, io);
	if (ret < 0) {
		pr_err("cannot set up the buses: %s", strerror(-ret));
		return ret;
	}
	for (unsigned i = 0; i < ncpus; i++) {
		vm->vcpu[i] = vcpu_create(vm, i);
		if (!vm->vcpu[i])
			return -ENODEV;
	}
	pr_info("%u vCPUs, %llu MiB, devices behind the %s", ncpus,
		(unsigned long long)(mem >> 20), io == IO_MODE_THREAD ? "I/O thread" : "global lock");
	return 0;
}

void machine_stop(struct vm *vm)
{
	vm_request_exit(vm, vm->exit_status);
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpu[i])
			vcpu_join(vm->vcpu[i]);
}

void machine_destroy(struct vm *vm)
{
	machine_stop(vm);
	vm_run_exit_hooks(vm);
	if (vm->bus.pio)
		vm_fini_buses(vm);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		vcpu_destroy(vm->vcpu[i]);
		vm->vcpu[i] = NULL;
	}
	kvm_vm_destroy(vm);
	guest_memory_free(&vm->mem);
}

static const char *const exit_names[] = {
	[KVM_EXIT_IO] = "io", [KVM_EXIT_MMIO] = "mmio", [KVM_EXIT_HLT] = "hlt",
	[KVM_EXIT_IRQ_WINDOW_OPEN] = "irq-window", [KVM_EXIT_INTR] = "intr",
	[KVM_EXIT_X86_RDMSR] = "rdmsr", [KVM_EXIT_X86_WRMSR] = "wrmsr",
};

static void print_vcpu_stats(struct vcpu *v, FILE *out)
{
	uint64_t ns[VCPU_TIME_COUNT];

	fprintf(out, "  vCPU %-3u host CPU %-3d %10llu exits:", v->id, v->host_cpu,
		(unsigned long long)v->exits);
	for (unsigned r = 0; r < 64; r++) {
		const char *name = r < sizeof(exit_names) / sizeof(exit_names[0]) ? exit_names[r] : NULL;
		uint64_t n = atomic_load(&v->runstate.exits_by_reason[r]);

		if (n)
			fprintf(out, " %s=%llu", name ? name : "other", (unsigned long long)n);
	}
	vcpu_runstate_read(v, ns);
	fprintf(out, "\n           time (ms):");
	for (unsigned i = 0; i < VCPU_TIME_COUNT; i++)
		fprintf(out, " %s=%.1f", vcpu_time_names[i], ns[i] / 1e6);
	fputc('\n', out);
}

void machine_print_stats(struct vm *vm, FILE *out)
{
	fprintf(out, "vmm statistics (%s):\n",
		vm->io_mode == IO_MODE_THREAD ? "--io thread" : "--io lock");
	bus_stats_print(out, "pio", range_bus_stats(vm->bus.pio));
	bus_stats_print(out, "mmio", range_bus_stats(vm->bus.mmio));
	bus_stats_print(out, "irq", bus_stats(vm->bus.irq));
	bus_stats_print(out, "legacy", bus_stats(vm->bus.legacy));
	bus_stats_print(out, "apic", bus_stats(vm->bus.apic));
	bus_stats_print(out, "eoi", bus_stats(vm->bus.eoi));
	bus_stats_print(out, "timer", bus_stats(vm->bus.timer));
	bus_stats_print(out, "console", bus_stats(vm->bus.console));
	for (unsigned i = 0; i < vm->ncpus; i++)
		bus_stats_print(out, "cpu", bus_stats(vm->vcpu[i]->bus));
	fprintf(out, "  unhandled: %llu port accesses, %llu MMIO accesses (reads gave all ones)\n",
		(unsigned long long)vcpu_unhandled_pio(), (unsigned long long)vcpu_unhandled_mmio());
	if (insn_fallback_count())
		fprintf(out, "  ring-0 INT3/FWAIT performed by the VMM (host emulator refused): %llu\n",
			(unsigned long long)insn_fallback_count());
	if (vm->io_mode == IO_MODE_LOCK)
		fprintf(out, "  global lock: %.3f ms waited in total\n", global_lock_wait_ns() / 1e6);
	for (unsigned i = 0; i < vm->ncpus; i++)
		print_vcpu_stats(vm->vcpu[i], out);
}
