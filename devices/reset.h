/*
 * Machine reset: the one place every reset source the guest has ends up
 * (the PIIX/ICH Reset Control Register at 0xCF9, which is also the FADT's
 * reset register, and the 8042's reset line), and the policy the
 * frontend's --on-reboot chose for it.  A triple fault is not a reset
 * here: it stays a guest crash (vmm/vcpu_exit.c).
 *
 * One VM per process: the policy and the hooks below are process-wide
 * statics (there is no per-VM device lookup, and struct vm has no slot for
 * them).  The @vm arguments say which VM asks; they are not used to find
 * state.
 */
#pragma once
#include <stdint.h>

struct vm;

#define RESET_PORT     0xCF9          /* Reset Control Register (RCR) */
#define RCR_SYS_RST    0x02           /* with RST_CPU: a full (system) reset */
#define RCR_RST_CPU    0x04           /* writing it set resets */
#define RCR_FULL_RST   0x08           /* with RST_CPU: power-cycle */

enum reboot_action {
	REBOOT_EXIT,       /* the VMM exits with status 0 (--on-reboot exit) */
	REBOOT_RESTART,    /* restart the guest (--on-reboot restart) */
};

/*
 * The guest asked for a reset.  Any thread, any context (serialized device
 * callbacks call it).  REBOOT_EXIT: vm_request_exit(vm, 0).
 * REBOOT_RESTART: the restart handler if one is set (the frontend sets
 * one once it has the power-on checkpoint); without one it says so and
 * exits with status 0 as well.
 */
void vm_reset_request(struct vm *vm);

/* The frontend's --on-reboot; REBOOT_EXIT until called.  Any thread. */
void reset_set_action(struct vm *vm, enum reboot_action action);
enum reboot_action reset_action(void);

/*
 * What REBOOT_RESTART runs instead of exiting; NULL removes it.  It is
 * called on the thread of the reset source (often the I/O thread, which a
 * pause waits for), so it must only post the request to whoever does the
 * work (machine_reset_request).
 */
typedef void (*reset_restart_fn)(struct vm *vm);
void reset_set_restart_handler(reset_restart_fn fn);

/* Resets the guest requested since the process started (for tests, stats). */
uint64_t reset_request_count(void);
