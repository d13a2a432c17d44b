/*
 * The Unix frontend: parse options, build the machine from its device
 * list, load the kernel, run one thread per vCPU, wait for the exit.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "bus/completion.h"
#include "devices/reset.h"
#include "unix/console.h"
#include "unix/options.h"
#include "unix/qmp.h"
#include "vmm/acpi.h"
#include "vmm/cpu_state.h"
#include "vmm/device.h"
#include "vmm/iothread.h"
#include "vmm/kvm.h"
#include "vmm/linux_boot.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/migrate.h"
#include "vmm/machine_reset.h"
#include "vmm/multiboot.h"
#include "vmm/snapshot.h"
#include "vmm/state_dump.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"


enum { EXIT_VMM_ERROR = 1, EXIT_USAGE = 2 };

/*
 * The default PC.  Order matters: the LAPICs need the vCPUs (created with
 * the machine), and the bios initialises the devices before it.
 */
static const char *const default_devices[] = {
	"pic", "ioapic", "lapic", "pit", "fwcfg",
	"uart:0x3f8,4", "debugexit:0xf4,1", "testdev",
	"rtc", "acpipm", "reset", "i8042", "port80", "pcihost",
	"bios",
};

static int create_devices(struct vm *vm, const struct vmm_options *o)
{
	reset_set_action(vm, o->on_reboot_restart ? REBOOT_RESTART : REBOOT_EXIT);
	if (o->default_devices)
		for (size_t i = 0; i < sizeof(default_devices) / sizeof(default_devices[0]); i++)
			if (device_create(vm, default_devices[i]) < 0)
				return -1;
	for (unsigned i = 0; i < o->ndevices; i++)
		if (device_create(vm, o->devices[i]) < 0)
			return -1;
	return 0;
}

/* Split "FILE ARGS": the loader puts FILE first on the module's command line. */
static int boot_multiboot(struct vm *vm, const struct vmm_options *o)
{
	struct multiboot_module_arg mods[OPT_MAX_MODULES];
	char paths[OPT_MAX_MODULES][4096];
	struct boot_entry entry;
	char err[256] = "";

	for (unsigned i = 0; i < o->nmodules; i++) {
		size_t len = strcspn(o->modules[i], " ");

		snprintf(paths[i], sizeof(paths[i]), "%.*s", (int)len, o->modules[i]);
		mods[i] = (struct multiboot_module_arg){
			.path = paths[i],
			.cmdline = o->modules[i] + len + strspn(o->modules[i] + len, " "),
		};
	}
	if (multiboot_load(&vm->mem, o->kernel, o->cmdline, mods, o->nmodules, &entry,
			   err, sizeof(err)) < 0) {
		pr_err("%s", err[0] ? err : "cannot load the kernel");
		return -1;
	}
	return cpu_state_protected_flat(vm->vcpu[0], entry.eip, entry.eax, entry.ebx);
}

static int boot_linux(struct vm *vm, const struct vmm_options *o)
{
	struct linux_boot_args args = {
		.kernel = o->kernel, .initrd = o->initrd, .cmdline = o->cmdline,
		.unpack = o->unpack, .entry = o->pvh ? LINUX_ENTRY_PVH : LINUX_ENTRY_64,
		.rsdp = ACPI_RSDP_ADDR,
	};
	struct linux_boot_entry entry;
	char err[256] = "";

	if (linux_boot_load(&vm->mem, &args, &entry, err, sizeof(err)) < 0) {
		pr_err("%s", err[0] ? err : "cannot load the kernel");
		return -1;
	}
	return linux_boot_setup_cpu(vm->vcpu[0], &vm->mem, &entry);
}

/* A multiboot kernel, or a Linux bzImage / vmlinux; the BSP is set to enter it. */
static int load_kernel(struct vm *vm, const struct vmm_options *o)
{
	int mb = multiboot_probe(o->kernel), lx;

	if (mb > 0 && !o->initrd)
		return boot_multiboot(vm, o);
	lx = linux_probe(o->kernel);
	if (lx > 0)
		return boot_linux(vm, o);
	if (mb > 0)
		return boot_multiboot(vm, o);   /* --initrd is Linux's: say so */
	if (mb < 0 || lx < 0) {
		pr_err("%s: %s", o->kernel, strerror(-(mb < 0 ? mb : lx)));
		return -1;
	}
	/* Neither: let the multiboot loader say precisely what is wrong. */
	return boot_multiboot(vm, o);
}

/* What the guest's reset (0xCF9, the 8042) does under --on-reboot restart. */
static void restart_guest(struct vm *vm)
{
	if (machine_reset_request(vm, MACHINE_RESET_GUEST) < 0)
		vm_request_exit(vm, 0);   /* torn down already: as --on-reboot exit */
}

/* --incoming: the migration replaces RAM, vCPUs and devices; nothing ran yet. */
static int load_incoming(struct vm *vm, const struct vmm_options *o)
{
	char err[512];

	if (migrate_incoming(vm, o->incoming, err, sizeof(err)) < 0) {
		pr_err("%s", err);
		return -1;
	}
	return 0;
}

/*
 * The kernel, then the power-on checkpoint every reset goes back to; then
 * --restore replaces RAM, vCPUs and devices with the snapshot's (a reset
 * of a restored guest boots the kernel afresh).
 */
static int load_guest(struct vm *vm, const struct vmm_options *o)
{
	char err[512];

	/* --incoming without --kernel: no power-on image, a guest reset exits. */
	if (o->incoming && !o->kernel)
		return load_incoming(vm, o);
	if (load_kernel(vm, o) < 0 || machine_reset_init(vm) < 0)
		return -1;
	reset_set_restart_handler(restart_guest);
	if (o->incoming)
		return load_incoming(vm, o);
	if (!o->restore)
		return 0;
	if (vm_snapshot_restore(vm, o->restore, err, sizeof(err)) < 0) {
		pr_err("%s", err);
		return -1;
	}
	return 0;
}

static int dump_acpi(struct vm *vm, const struct vmm_options *o)
{
	int err;

	if (!o->dump_acpi)
		return 0;
	err = acpi_dump(&vm->mem, ACPI_RSDP_ADDR, o->dump_acpi);
	if (err < 0)
		pr_err("--dump-acpi %s: %s", o->dump_acpi, strerror(-err));
	return err;
}

/* Core for vCPU @i: consecutive cores after the one we started on. */
static int host_cpu_for(const struct vmm_options *o, unsigned i, int start, int ncores)
{
	if (!o->pin)
		return -1;
	if (o->npin)
		return o->pin_cpus[i % o->npin];
	return (start + 1 + (int)i) % ncores;
}

static int start_vcpus(struct vm *vm, const struct vmm_options *o)
{
	int start = sched_getcpu();
	int ncores = (int)sysconf(_SC_NPROCESSORS_ONLN);

	if (start < 0)
		start = 0;
	/*
	 * The I/O thread keeps the core the VMM started on, the vCPUs take
	 * the ones after it (as the original design placed them): under host
	 * load an unpinned I/O thread waits for a time slice behind vCPUs.
	 */
	if (o->pin && !o->npin && vm->iothread) {
		if (iothread_pin(vm->iothread, start) < 0)
			pr_warn("cannot pin the I/O thread to host CPU %d", start);
		else
			pr_info("I/O thread on host CPU %d", start);
	}
	for (unsigned i = 0; i < vm->ncpus; i++) {
		int err = vcpu_start(vm->vcpu[i], host_cpu_for(o, i, start, ncores));

		if (err) {
			pr_err("cannot start vCPU %u: %s", i, strerror(-err));
			return -1;
		}
	}
	return 0;
}

static void set_spin_budget(const struct vmm_options *o)
{
	/*
	 * Spinning can only help while the I/O thread has a core of its own,
	 * and even then `make bench` measured no better p50 and a worse p99
	 * on these hosts (doc/bench/README.md): off unless asked for.
	 */
	completion_spin_budget = o->spin >= 0 ? (unsigned)o->spin : 0;
}

/* A state dump on SIGUSR1 finishes before the teardown starts. */
static pthread_mutex_t dump_lock = PTHREAD_MUTEX_INITIALIZER;

static void control_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
}

/*
 * SIGINT/SIGTERM/SIGHUP end the VM cleanly from a thread of their own;
 * SIGUSR1 prints the state of every vCPU and device to stderr.
 */
static void *signal_thread(void *arg)
{
	struct vm *vm = arg;
	sigset_t set;
	int sig;

	control_signals(&set);
	while (sigwait(&set, &sig) == 0) {
		if (sig == SIGUSR1) {
			pthread_mutex_lock(&dump_lock);
			if (!atomic_load(&vm->exiting))
				vm_state_dump(vm, stderr);
			pthread_mutex_unlock(&dump_lock);
			continue;
		}
		pr_warn("terminating on signal %d", sig);
		vm_request_exit(vm, 128 + sig);
		break;
	}
	return NULL;
}

static void block_exit_signals(void)
{
	sigset_t set;

	control_signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static int run(struct vm *vm, const struct vmm_options *o)
{
	pthread_t sig_thread;
	bool qmp_ok;
	int status;

	/* Before any thread starts (the machine starts the I/O and timer threads). */
	block_exit_signals();
	if (machine_create(vm, o->cpus, o->mem, o->io) < 0 || create_devices(vm, o) < 0 ||
	    dump_acpi(vm, o) < 0)
		return EXIT_VMM_ERROR;
	/* --qmp-wait pauses before a --restore: the VM stays exactly as saved until 'cont'. */
	qmp_ok = !o->qmp || qmp_start(vm, o->qmp, o->qmp_wait) == 0;
	if (load_guest(vm, o) < 0) {
		qmp_stop(EXIT_VMM_ERROR);
		return EXIT_VMM_ERROR;
	}
	snapshot_signal_init(vm);
	pthread_create(&sig_thread, NULL, signal_thread, vm);
	pthread_detach(sig_thread);
	console_start(vm);
	if (!qmp_ok)
		vm_request_exit(vm, EXIT_VMM_ERROR);
	else if (start_vcpus(vm, o) < 0)
		vm_request_exit(vm, EXIT_VMM_ERROR);
	qmp_serve();
	status = vm_wait_exit(vm);
	qmp_stop(status);
	pthread_mutex_lock(&dump_lock);
	pthread_mutex_unlock(&dump_lock);
	machine_stop(vm);
	if (status == EXIT_GUEST_CRASH) {
		/* The vCPU threads are gone; the pause stops the timers and drains the devices. */
		fprintf(stderr, "vmm: state of the crashed VM:\n");
		vm_state_dump(vm, stderr);
	}
	console_stop();
	if (o->stats)
		machine_print_stats(vm, stderr);
	return status;
}

int main(int argc, char **argv)
{
	struct vmm_options opts;
	struct vm vm;
	char err[256] = "";
	int status;

	switch (options_parse(argc, argv, &opts, err, sizeof(err))) {
	case OPT_EXIT_OK:
		return 0;
	case OPT_ERROR:
		fprintf(stderr, "%s: %s\nTry '%s --help'.\n", argv[0], err, argv[0]);
		return EXIT_USAGE;
	case OPT_RUN:
		break;
	}
	log_verbose = opts.verbose;
	set_spin_budget(&opts);
	status = run(&vm, &opts);
	machine_destroy(&vm);
	return status;
}
