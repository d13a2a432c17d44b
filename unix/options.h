/*
 * Command-line options of the frontend.  Spellings follow QEMU and
 * kvmtool where they have one (-kernel, -append, -smp, -m are aliases).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vmm/vm.h"

#define OPT_MAX_DEVICES 32
#define OPT_MAX_MODULES 16

enum opt_result { OPT_RUN = 0, OPT_EXIT_OK = 1, OPT_ERROR = -1 };

struct vmm_options {
	const char *kernel;
	const char *cmdline;
	const char *initrd;                      /* Linux only */
	bool unpack;                             /* decompress a bzImage on the host */
	bool pvh;                                /* enter a vmlinux at its PVH note */
	bool on_reboot_restart;                  /* else a guest reset exits the VMM */
	const char *modules[OPT_MAX_MODULES];   /* "FILE [args]" */
	unsigned nmodules;
	unsigned cpus;
	uint64_t mem;
	enum io_mode io;
	bool pin;                                /* pin vCPUs to host cores */
	int pin_cpus[VM_MAX_VCPUS];              /* explicit cores, or -1 */
	unsigned npin;
	bool stats;
	const char *dump_acpi;                   /* write the ACPI tables here */
	bool default_devices;
	const char *devices[OPT_MAX_DEVICES];
	unsigned ndevices;
	int spin;                                /* completion spin budget, -1 = auto */
	const char *qmp;                         /* "unix:PATH": the QMP control socket */
	bool qmp_wait;                           /* start paused until QMP "cont" */
	const char *restore;                     /* start from this snapshot (vmm/snapshot.h) */
	const char *incoming;                    /* live migration in (vmm/migrate.h) */
	int verbose;
};

/* Parse argv; on OPT_ERROR @err says why, on OPT_EXIT_OK help/version was printed. */
enum opt_result options_parse(int argc, char **argv, struct vmm_options *opts,
			      char *err, size_t errlen);
void options_usage(FILE *out, const char *prog);
