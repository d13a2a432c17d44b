/*
 * Multiprocessor support for the test kernels: AP start-up by INIT-SIPI-
 * SIPI through a real-mode trampoline at 0x8000, per-CPU stacks, and a
 * small "run this on CPU n" service.
 *
 * CPU numbers are APIC IDs (the VMM gives vCPU i the APIC ID i, the BSP is
 * 0).  An AP that is up loads the shared IDT, software-enables its LAPIC
 * and then idles in "sti; hlt", waking on VEC_WAKE to run what
 * smp_call_async() gave it.  Functions run on an AP with interrupts
 * enabled.
 */
#pragma once

#define SMP_MAX_CPUS     64
#define SMP_TRAMPOLINE   0x8000    /* page-aligned, below the multiboot info */
#define VEC_WAKE         0xf1      /* "look at your work slot" */

#ifndef __ASSEMBLER__
#include <stdbool.h>
#include <stdint.h>

typedef void (*smp_fn)(void *arg);

struct smp_cpu {
	volatile uint32_t online;      /* reached C and ran the AP hook */
	volatile uint32_t boots;       /* times it came up (INIT-SIPI again: 2) */
	volatile uint32_t apic_id;     /* the LAPIC ID register, as it read it */
	volatile uint32_t cpuid_apic_id;  /* CPUID.1:EBX[31:24] */
	volatile uint64_t apic_base;   /* IA32_APIC_BASE */
	smp_fn volatile fn;
	void *volatile arg;
	volatile uint32_t req, done;   /* work sequence numbers */
};

extern struct smp_cpu smp_cpus[SMP_MAX_CPUS];
/* CPUs up, the BSP included. */
extern volatile uint32_t smp_online;
/* Run on each AP when it comes up, before it idles (may be NULL). */
extern void (*smp_ap_hook)(unsigned cpu);

/*
 * The BSP's set-up: our GDT (with the 16-bit segments nmi_unmask needs),
 * the trampoline page, the 8259 pair masked, the IDT (built and loaded),
 * its LAPIC software-enabled, the wake vector, TSC calibration.
 * Interrupts stay disabled.
 */
void smp_init(void);
/* This CPU's number, from its stack (cheap: no APIC access). */
unsigned smp_cpu_id(void);

/* Copy the trampoline to SMP_TRAMPOLINE and clear its entry counter. */
void smp_prepare_trampoline(void);
/* How many times an AP entered the trampoline since the last prepare. */
uint32_t smp_trampoline_entries(void);
/* INIT (assert, de-assert), 10 ms, SIPI, 200 us, SIPI: to APIC ID @dest. */
void smp_start_ap(unsigned dest);
/* The same with the "all excluding self" shorthand. */
void smp_start_all_aps(void);
/*
 * Start APs 1..@ncpus-1 one after the other, waiting for each (fails the
 * test after a generous timeout).  Returns the number of CPUs online.
 */
unsigned smp_boot(unsigned ncpus);
/* Wait until @n CPUs are online, or fail after @ms milliseconds. */
void smp_wait_online(unsigned n, unsigned ms);

/* Give AP @cpu a function to run (the previous one must be done). */
void smp_call_async(unsigned cpu, smp_fn fn, void *arg);
/* Wait for AP @cpu to finish what it was given. */
void smp_call_wait(unsigned cpu);
void smp_call(unsigned cpu, smp_fn fn, void *arg);
/* Run @fn on every online CPU at once (the BSP's part here), and wait. */
void smp_call_all(smp_fn fn, void *arg);

/* A test-and-set lock (for printing from several CPUs). */
void spin_lock(volatile uint32_t *lock);
void spin_unlock(volatile uint32_t *lock);
extern volatile uint32_t print_lock;
#endif
