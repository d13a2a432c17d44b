/*
 * Local and I/O APIC access for the test kernels.  The I/O APIC's
 * IOREGSEL/IOWIN pair is not safe against two CPUs at once: the tests
 * touch it from one CPU only.
 */
#include "apic.h"
#include "cpu.h"

void apic_sw_enable(void)
{
	apic_write(APIC_SVR, SVR_ENABLE | VEC_SPURIOUS);
}

void apic_icr(unsigned dest, uint32_t lo)
{
	while (apic_read(APIC_ICR_LO) & ICR_BUSY)
		cpu_relax();
	apic_write(APIC_ICR_HI, dest << 24);
	apic_write(APIC_ICR_LO, lo);
	while (apic_read(APIC_ICR_LO) & ICR_BUSY)
		cpu_relax();
}

uint32_t apic_esr(void)
{
	apic_write(APIC_ESR, 0);
	return apic_read(APIC_ESR);
}

uint32_t ioapic_read(unsigned reg)
{
	mmio_write32(IOAPIC_BASE + IOAPIC_REGSEL, reg);
	return mmio_read32(IOAPIC_BASE + IOAPIC_WIN);
}

void ioapic_write(unsigned reg, uint32_t v)
{
	mmio_write32(IOAPIC_BASE + IOAPIC_REGSEL, reg);
	mmio_write32(IOAPIC_BASE + IOAPIC_WIN, v);
}

uint64_t ioapic_rte(unsigned pin)
{
	uint32_t lo = ioapic_read(IOAPIC_REG_RTE(pin));

	return (uint64_t)ioapic_read(IOAPIC_REG_RTE(pin) + 1) << 32 | lo;
}

void ioapic_set_rte(unsigned pin, uint64_t rte)
{
	/* Mask while the halves disagree, unless the entry stays masked anyway. */
	ioapic_write(IOAPIC_REG_RTE(pin), (uint32_t)ioapic_rte(pin) | (uint32_t)RTE_MASKED);
	ioapic_write(IOAPIC_REG_RTE(pin) + 1, (uint32_t)(rte >> 32));
	ioapic_write(IOAPIC_REG_RTE(pin), (uint32_t)rte);
}
