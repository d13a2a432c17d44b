#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "unix/options.h"
#include "vmm/device.h"

enum {
	OPT_KERNEL = 256, OPT_CMDLINE, OPT_INITRD, OPT_NO_UNPACK, OPT_PVH, OPT_ON_REBOOT, OPT_MODULE, OPT_CPUS, OPT_MEM, OPT_IO, OPT_PIN,
	OPT_STATS, OPT_DUMP_ACPI, OPT_DEVICE, OPT_NODEFAULTS, OPT_SPIN, OPT_HELP, OPT_VERSION,
	OPT_QMP, OPT_QMP_WAIT, OPT_RESTORE, OPT_INCOMING,
};

static const struct option long_options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "append", required_argument, NULL, OPT_CMDLINE },
	{ "module", required_argument, NULL, OPT_MODULE },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "no-unpack", no_argument, NULL, OPT_NO_UNPACK },
	{ "pvh", no_argument, NULL, OPT_PVH },
	{ "on-reboot", required_argument, NULL, OPT_ON_REBOOT },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "smp", required_argument, NULL, OPT_CPUS },
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "io", required_argument, NULL, OPT_IO },
	{ "pin", required_argument, NULL, OPT_PIN },
	{ "stats", no_argument, NULL, OPT_STATS },
	{ "dump-acpi", required_argument, NULL, OPT_DUMP_ACPI },
	{ "device", required_argument, NULL, OPT_DEVICE },
	{ "no-defaults", no_argument, NULL, OPT_NODEFAULTS },
	{ "spin", required_argument, NULL, OPT_SPIN },
	{ "qmp", required_argument, NULL, OPT_QMP },
	{ "qmp-wait", no_argument, NULL, OPT_QMP_WAIT },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "incoming", required_argument, NULL, OPT_INCOMING },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

void options_usage(FILE *out, const char *prog)
{
	fprintf(out,
"Usage: %s --kernel FILE [options]\n"
"       %s --incoming URI [options]\n"
"Run a guest on /dev/kvm with a user-level VMM: one thread per vCPU, devices\n"
"behind one I/O thread (or one global lock), lock-free interrupt controllers.\n"
"\n"
"Guest:\n"
"  --kernel FILE      kernel to boot: multiboot ELF, Linux bzImage or vmlinux\n"
"                     (alias -kernel)\n"
"  --cmdline STR      kernel command line (alias --append, -append)\n"
"  --module 'FILE ARGS'  multiboot module with its command line; repeatable\n"
"  --initrd FILE      Linux initial ramdisk (alias -initrd)\n"
"  --no-unpack        let a bzImage decompress itself in the guest (slow here)\n"
"                     instead of unpacking it on the host\n"
"  --pvh              enter a Linux vmlinux at its PVH entry point\n"
"  --on-reboot exit|restart  what a guest reset does (default exit)\n"
"  --cpus N           number of vCPUs, 1-%d (default 1; alias -smp)\n"
"  --mem SIZE         guest RAM, with K/M/G suffix (default 128M; alias -m)\n"
"\n"
"VMM:\n"
"  --io thread|lock   serialize devices with one I/O thread (default) or with\n"
"                     one global lock held by the calling thread\n"
"  --pin on|off|LIST  pin vCPU i to host core start+1+i, wrapping round (on,\n"
"                     the default), not at all (off), or to the cores in\n"
"                     LIST, e.g. 2,3,4\n"
"  --spin N           spin N pauses before sleeping on an I/O completion\n"
"                     (default 0: measured no better on these hosts)\n"
"  --device SPEC      add a device, SPEC is name[:args]; repeatable\n"
"  --no-defaults      do not add the default devices\n"
"  --stats            print per-bus and per-vCPU counters at exit\n"
"  --qmp unix:PATH    QMP control socket at PATH (mode 0600; see doc/qmp.md)\n"
"  --qmp-wait         start paused until a QMP client sends 'cont'\n"
"  --restore FILE     start from a snapshot (same --cpus, --mem and devices;\n"
"                     --kernel is loaded only for a later reset; doc/snapshot.md)\n"
"  --incoming tcp:HOST:PORT|unix:PATH  wait for a live migration there and run\n"
"                     it (same --cpus, --mem and devices; no --kernel needed;\n"
"                     see doc/migration.md)\n"
"  --dump-acpi DIR    write the ACPI tables to DIR/*.dat (for iasl -d)\n"
"  -v, --verbose      log what the VMM does (thread placement, devices)\n"
"  --help, --version\n"
"\n"
"Console: the guest's COM1 is the terminal. Ctrl-A x quits, Ctrl-A h helps.\n"
"Exit status: the guest's debug-exit value v gives (v << 1) | 1; 0 when the\n"
"guest powers off or Ctrl-A x; 1 on a VMM error; 2 on bad usage; 4 when the\n"
"guest crashed (triple fault, KVM emulation failure).\n"
"\n"
"Devices (--device name:args):\n", prog, prog, VM_MAX_VCPUS);
	for (const struct device_model *m = device_model_first(); m; m = m->next)
		fprintf(out, "  %s\n", m->help ? m->help : m->name);
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_pin(const char *arg, struct vmm_options *o)
{
	char buf[512], *save = NULL;

	if (!strcmp(arg, "on") || !strcmp(arg, "auto")) {
		o->pin = true;
		o->npin = 0;
		return 0;
	}
	if (!strcmp(arg, "off")) {
		o->pin = false;
		return 0;
	}
	if (strlen(arg) >= sizeof(buf))
		return -1;
	strcpy(buf, arg);
	o->npin = 0;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned long cpu;

		if (o->npin == VM_MAX_VCPUS || parse_uint(tok, 0, 4095, &cpu))
			return -1;
		o->pin_cpus[o->npin++] = (int)cpu;
	}
	o->pin = o->npin > 0;
	return o->npin ? 0 : -1;
}

static void defaults(struct vmm_options *o)
{
	memset(o, 0, sizeof(*o));
	o->cmdline = "";
	o->cpus = 1;
	o->mem = 128ull << 20;
	o->io = IO_MODE_THREAD;
	o->pin = true;
	o->default_devices = true;
	o->spin = -1;
	o->unpack = true;
}

/* Accept QEMU's single-dash spellings of the options users type most. */
static void qemu_aliases(int argc, char **argv)
{
	static const struct { const char *qemu, *ours; } aliases[] = {
		{ "-kernel", "--kernel" }, { "-append", "--append" },
		{ "-smp", "--smp" }, { "-m", "--mem" }, { "-initrd", "--initrd" },
	};

	for (int i = 1; i < argc; i++)
		for (size_t a = 0; a < sizeof(aliases) / sizeof(aliases[0]); a++)
			if (!strcmp(argv[i], aliases[a].qemu))
				argv[i] = (char *)aliases[a].ours;
}

enum opt_result options_parse(int argc, char **argv, struct vmm_options *o,
			      char *err, size_t errlen)
{
	unsigned long v;
	int c, idx = 0;

	defaults(o);
	qemu_aliases(argc, argv);
	optind = 0;     /* 0, not 1: also forgets a half-read -abc cluster */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":v", long_options, &idx)) != -1) {
		const char *arg = optarg;
		const char *name = long_options[idx].name;

		switch (c) {
		case OPT_KERNEL: o->kernel = arg; break;
		case OPT_CMDLINE: o->cmdline = arg; break;
		case OPT_INITRD: o->initrd = arg; break;
		case OPT_NO_UNPACK: o->unpack = false; break;
		case OPT_PVH: o->pvh = true; break;
		case OPT_ON_REBOOT:
			if (!strcmp(arg, "exit"))
				o->on_reboot_restart = false;
			else if (!strcmp(arg, "restart"))
				o->on_reboot_restart = true;
			else
				goto bad_value;
			break;
		case OPT_MODULE:
			if (o->nmodules == OPT_MAX_MODULES)
				goto too_many;
			o->modules[o->nmodules++] = arg;
			break;
		case OPT_CPUS:
			if (parse_uint(arg, 1, VM_MAX_VCPUS, &v))
				goto bad_value;
			o->cpus = (unsigned)v;
			break;
		case OPT_MEM:
			o->mem = parse_size(arg);
			/* A bare number means MiB, as in QEMU. */
			if (o->mem && o->mem < (1u << 20) && !parse_uint(arg, 1, 1u << 20, &v))
				o->mem = (uint64_t)v << 20;
			if (o->mem < (2u << 20) || o->mem % 4096 || o->mem > (1ull << 40))
				goto bad_value;
			break;
		case OPT_IO:
			if (!strcmp(arg, "thread"))
				o->io = IO_MODE_THREAD;
			else if (!strcmp(arg, "lock"))
				o->io = IO_MODE_LOCK;
			else
				goto bad_value;
			break;
		case OPT_PIN:
			if (parse_pin(arg, o))
				goto bad_value;
			break;
		case OPT_STATS: o->stats = true; break;
		case OPT_DUMP_ACPI: o->dump_acpi = arg; break;
		case OPT_DEVICE:
			if (o->ndevices == OPT_MAX_DEVICES)
				goto too_many;
			if (!device_model_find(arg)) {
				snprintf(err, errlen, "unknown device '%s' (see --help)", arg);
				return OPT_ERROR;
			}
			o->devices[o->ndevices++] = arg;
			break;
		case OPT_NODEFAULTS: o->default_devices = false; break;
		case OPT_SPIN:
			if (parse_uint(arg, 0, 100000000, &v))
				goto bad_value;
			o->spin = (int)v;
			break;
		case OPT_QMP:
			if (strncmp(arg, "unix:", 5) || !arg[5])
				goto bad_value;
			o->qmp = arg;
			break;
		case OPT_QMP_WAIT: o->qmp_wait = true; break;
		case OPT_RESTORE: o->restore = arg; break;
		case OPT_INCOMING:
			if ((strncmp(arg, "tcp:", 4) || !strchr(arg + 4, ':')) &&
			    (strncmp(arg, "unix:", 5) || !arg[5]))
				goto bad_value;
			o->incoming = arg;
			break;
		case 'v': o->verbose++; break;
		case OPT_HELP:
			options_usage(stdout, argv[0]);
			return OPT_EXIT_OK;
		case OPT_VERSION:
			printf("vmm 0.1\n");
			return OPT_EXIT_OK;
		case ':':
			snprintf(err, errlen, "option '%s' needs an argument", argv[optind - 1]);
			return OPT_ERROR;
		default:
			snprintf(err, errlen, "unknown option '%s'", argv[optind - 1]);
			return OPT_ERROR;
		}
		continue;
bad_value:
		snprintf(err, errlen, "bad value '%s' for --%s", arg, name);
		return OPT_ERROR;
too_many:
		snprintf(err, errlen, "too many --%s options", name);
		return OPT_ERROR;
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
		return OPT_ERROR;
	}
	if (o->incoming && o->restore) {
		snprintf(err, errlen, "--incoming and --restore both replace the guest: pick one");
		return OPT_ERROR;
	}
	if (!o->kernel && !o->incoming) {
		snprintf(err, errlen, "no kernel given (--kernel FILE)");
		return OPT_ERROR;
	}
	if (o->qmp_wait && !o->qmp) {
		snprintf(err, errlen, "--qmp-wait needs --qmp (nobody could say 'cont')");
		return OPT_ERROR;
	}
	return OPT_RUN;
}
