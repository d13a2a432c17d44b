/*
 * The local APIC (xAPIC page at 0xFEE00000, each CPU sees its own) and the
 * I/O APIC (0xFEC00000, IOREGSEL/IOWIN) as the test kernels drive them.
 * Register names and bits follow the Intel SDM vol. 3A chapter "APIC" and
 * the 82093AA datasheet.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "guest.h"

#define APIC_BASE 0xfee00000u

enum apic_reg {
	APIC_ID = 0x020, APIC_VER = 0x030, APIC_TPR = 0x080, APIC_APR = 0x090,
	APIC_PPR = 0x0a0, APIC_EOI = 0x0b0, APIC_RRD = 0x0c0, APIC_LDR = 0x0d0,
	APIC_DFR = 0x0e0, APIC_SVR = 0x0f0, APIC_ISR = 0x100, APIC_TMR = 0x180,
	APIC_IRR = 0x200, APIC_ESR = 0x280, APIC_ICR_LO = 0x300, APIC_ICR_HI = 0x310,
	APIC_LVT_TIMER = 0x320, APIC_LVT_THERMAL = 0x330, APIC_LVT_PERF = 0x340,
	APIC_LVT_LINT0 = 0x350, APIC_LVT_LINT1 = 0x360, APIC_LVT_ERROR = 0x370,
	APIC_TMICT = 0x380, APIC_TMCCT = 0x390, APIC_TDCR = 0x3e0,
};

/* Delivery modes (ICR, LVT and redirection entries: bits 8-10). */
#define APIC_DM_FIXED     (0u << 8)
#define APIC_DM_LOWEST    (1u << 8)
#define APIC_DM_SMI       (2u << 8)
#define APIC_DM_NMI       (4u << 8)
#define APIC_DM_INIT      (5u << 8)
#define APIC_DM_SIPI      (6u << 8)
#define APIC_DM_EXTINT    (7u << 8)

#define ICR_LOGICAL       (1u << 11)
#define ICR_BUSY          (1u << 12)   /* delivery status */
#define ICR_ASSERT        (1u << 14)
#define ICR_LEVEL         (1u << 15)
#define ICR_SH_NONE       (0u << 18)
#define ICR_SH_SELF       (1u << 18)
#define ICR_SH_ALL        (2u << 18)
#define ICR_SH_OTHERS     (3u << 18)

#define LVT_MASKED        (1u << 16)
#define LVT_LEVEL         (1u << 15)
#define LVT_TIMER_ONESHOT (0u << 17)
#define LVT_TIMER_PERIODIC (1u << 17)
#define LVT_TIMER_TSC     (2u << 17)

#define SVR_ENABLE        (1u << 8)
#define ESR_SEND_ILLEGAL  (1u << 5)
#define ESR_RECV_ILLEGAL  (1u << 6)
#define ESR_ILLEGAL_REG   (1u << 7)

#define MSR_APIC_BASE     0x1b
#define MSR_TSC_DEADLINE  0x6e0
#define APIC_BASE_BSP     (1u << 8)
#define APIC_BASE_ENABLE  (1u << 11)

#define VEC_SPURIOUS      0xff

static inline uint32_t apic_read(unsigned reg)
{
	return mmio_read32(APIC_BASE + reg);
}

static inline void apic_write(unsigned reg, uint32_t v)
{
	mmio_write32(APIC_BASE + reg, v);
}

static inline void apic_eoi(void)
{
	apic_write(APIC_EOI, 0);
}

static inline unsigned apic_id(void)
{
	return apic_read(APIC_ID) >> 24;
}

/* Is @vector's bit set in the 256-bit register at @reg (ISR, TMR, IRR)? */
static inline bool apic_vector_bit(unsigned reg, unsigned vector)
{
	return apic_read(reg + (vector / 32) * 0x10) >> (vector % 32) & 1;
}

/* Software-enable this CPU's LAPIC, spurious vector VEC_SPURIOUS. */
void apic_sw_enable(void);
/* Send an IPI: ICR high = @dest << 24, then ICR low = @lo; waits while busy. */
void apic_icr(unsigned dest, uint32_t lo);
/* Latch and read ESR (a write latches the errors since the last write). */
uint32_t apic_esr(void);

/* ---- I/O APIC ---- */

#define IOAPIC_BASE       0xfec00000u
#define IOAPIC_REGSEL     0x00
#define IOAPIC_WIN        0x10
#define IOAPIC_EOIR       0x40
#define IOAPIC_REG_ID     0x00
#define IOAPIC_REG_VER    0x01
#define IOAPIC_REG_ARB    0x02
#define IOAPIC_REG_RTE(p) (0x10 + 2 * (p))

#define RTE_MASKED        (1ull << 16)
#define RTE_LEVEL         (1ull << 15)
#define RTE_REMOTE_IRR    (1ull << 14)
#define RTE_ACTIVE_LOW    (1ull << 13)
#define RTE_PENDING       (1ull << 12)
#define RTE_LOGICAL       (1ull << 11)
#define RTE_DEST(id)      ((uint64_t)(id) << 56)

uint32_t ioapic_read(unsigned reg);
void ioapic_write(unsigned reg, uint32_t v);
uint64_t ioapic_rte(unsigned pin);
/* Writes the high half first, so an unmasking low half comes last. */
void ioapic_set_rte(unsigned pin, uint64_t rte);
