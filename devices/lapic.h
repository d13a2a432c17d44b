/*
 * Local APIC (xAPIC), one per vCPU, lock-free.  See devices/lapic.c for
 * the model and doc/lockfree-lapic.md for the concurrency argument.
 *
 * The LAPICs of a VM form a group: the group owns the MMIO page at
 * 0xFEE00000 (one claimed range, each access goes to the LAPIC of
 * bus_current_vcpu), the apic-bus receiver (destinations are resolved once,
 * in the sender's context, over all LAPICs of the group), the timer-bus
 * receiver and the legacy-bus receiver (PIC INTR at the BSP's LINT0).
 *
 * Threads: lapic_pending/acknowledge/reset/eoi/mmio/msr/read/write are for
 * the owning vCPU thread only.  lapic_deliver (and a send on vm->bus.apic)
 * may come from any thread, as may timer expiries and PIC INTR changes.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "bus/message.h"

struct vm;
struct lapic;
struct lapic_group;
struct vcpu_irq_ops;

#define LAPIC_BASE            0xfee00000u
#define LAPIC_SIZE            0x1000u
/* What lapic_pending() returns for an interrupt the 8259 supplies (INTA). */
#define LAPIC_TOKEN_EXTINT    256
#define MSR_IA32_APIC_BASE    0x1b
#define MSR_IA32_TSC_DEADLINE 0x6e0
/* The timer counts at 1 GHz before the divider: one tick per VM-clock ns. */
#define LAPIC_BUS_HZ          1000000000ull
/* Periodic mode re-arms no faster than this (the count still uses the real period). */
#define LAPIC_MIN_PERIOD_NS   100000ull

/* Register offsets in the xAPIC page. */
enum lapic_reg_offset {
	LAPIC_ID = 0x020, LAPIC_VER = 0x030, LAPIC_TPR = 0x080, LAPIC_APR = 0x090,
	LAPIC_PPR = 0x0a0, LAPIC_EOI = 0x0b0, LAPIC_RRD = 0x0c0, LAPIC_LDR = 0x0d0,
	LAPIC_DFR = 0x0e0, LAPIC_SVR = 0x0f0, LAPIC_ISR = 0x100, LAPIC_TMR = 0x180,
	LAPIC_IRR = 0x200, LAPIC_ESR = 0x280, LAPIC_ICR_LO = 0x300, LAPIC_ICR_HI = 0x310,
	LAPIC_LVT_TIMER = 0x320, LAPIC_LVT_THERMAL = 0x330, LAPIC_LVT_PERF = 0x340,
	LAPIC_LVT_LINT0 = 0x350, LAPIC_LVT_LINT1 = 0x360, LAPIC_LVT_ERROR = 0x370,
	LAPIC_TMICT = 0x380, LAPIC_TMCCT = 0x390, LAPIC_TDCR = 0x3e0,
};

/* Register bits the tests and the harness use. */
#define LAPIC_VERSION         0x00050014u  /* version 0x14, max LVT entry 5 */
#define LAPIC_SVR_ENABLE      (1u << 8)
#define LAPIC_LVT_MASKED      (1u << 16)
#define LAPIC_TIMER_ONESHOT   (0u << 17)
#define LAPIC_TIMER_PERIODIC  (1u << 17)
#define LAPIC_TIMER_TSC       (2u << 17)
#define LAPIC_ESR_SEND_ILLEGAL (1u << 5)
#define LAPIC_ESR_RECV_ILLEGAL (1u << 6)
#define LAPIC_ESR_ILLEGAL_REG  (1u << 7)
#define LAPIC_BASE_BSP        (1ull << 8)
#define LAPIC_BASE_ENABLE     (1ull << 11)

/* How a LAPIC reaches its CPU: vcpu_post/vcpu_post_sipi, or a test's fakes. */
struct lapic_cpu_ops {
	/* Any thread: post VCPU_EV_IRQ / VCPU_EV_NMI / VCPU_EV_INIT and kick. */
	void (*kick)(void *ctx, uint32_t vcpu_events);
	/* Any thread: a Startup IPI with @vector. */
	void (*sipi)(void *ctx, uint8_t vector);
	/*
	 * Owner thread: the VM-clock time (ns) at which the guest TSC reaches
	 * @tsc.  NULL: the guest TSC counts VM-clock nanoseconds.
	 */
	uint64_t (*tsc_to_ns)(void *ctx, uint64_t tsc);
};

struct lapic_stats {
	uint64_t posted;     /* fixed/lowest/LVT interrupts that set a new pending bit */
	uint64_t coalesced;  /* ... that found their vector already pending or in IRR */
	uint64_t acked;      /* IRR -> ISR (not counting ExtINT) */
	uint64_t extint;     /* ExtINT acknowledged through the 8259 */
	uint64_t eois;       /* EOIs that cleared an ISR bit */
	uint64_t eoi_broadcasts;
	uint64_t timer_fired;
};

/* The LAPICs of @vm: attaches the MMIO page and the apic/timer/legacy receivers. */
struct lapic_group *lapic_group_create(struct vm *vm);
/* Detach everything and free the group and its LAPICs (no sender may be left). */
void lapic_group_destroy(struct lapic_group *group);
/* The LAPIC of vCPU @index (APIC ID @index, BSP if 0); before any traffic. */
struct lapic *lapic_create(struct lapic_group *group, unsigned index,
			   const struct lapic_cpu_ops *ops, void *ctx);
struct lapic *lapic_get(struct lapic_group *group, unsigned index);

/* vcpu_irq_ops, owner thread. */
int lapic_pending(struct lapic *apic);
int lapic_acknowledge(struct lapic *apic, int token);
void lapic_reset(struct lapic *apic);                 /* INIT */
extern const struct vcpu_irq_ops lapic_irq_ops;       /* ctx: struct lapic * */

/* Register and MSR accesses by the owner; true when handled. */
bool lapic_mmio(struct lapic *apic, struct msg_mmio *msg);
bool lapic_msr(struct lapic *apic, struct msg_cpu *msg);
/* 32-bit register access at @offset, as the guest's MOV would do it. */
uint32_t lapic_read(struct lapic *apic, unsigned offset);
void lapic_write(struct lapic *apic, unsigned offset, uint32_t value);
void lapic_eoi(struct lapic *apic);

/*
 * Any thread: deliver @msg to the LAPICs it addresses (what the apic-bus
 * receiver does).  Adds the number of accepting CPUs to msg->accepted and
 * returns it.  msg->source is the sender's vCPU index (for shorthands).
 */
unsigned lapic_deliver(struct lapic_group *group, struct msg_apic *msg);

/* Any thread (counters only). */
void lapic_get_stats(const struct lapic *apic, struct lapic_stats *stats);
/* Owner thread, or while the vCPU is stopped: IRR/ISR/TMR are owner state. */
void lapic_dump(const struct lapic *apic, FILE *out);
void lapic_group_dump(const struct lapic_group *group, FILE *out);
