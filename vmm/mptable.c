/*
 * Intel MP configuration tables.
 *
 * State:    stable.
 * Features: floating pointer ("_MP_", spec revision 1.4, no default
 *           configuration, IMCR absent: virtual wire mode); configuration
 *           table ("PCMP") with one enabled processor per vCPU (APIC ID =
 *           index, local APIC version 0x14, BSP flag on CPU 0), the ISA
 *           bus, one IOAPIC (version 0x20), an I/O interrupt entry per ISA
 *           IRQ as the IOAPIC model wires them (IRQ 0 -> pin 2, IRQ 2 the
 *           cascade: no entry, the rest identity), ExtINT on the BSP's
 *           LINT0 and NMI on every LINT1.
 * Missing:  a PCI bus and PCI interrupt entries (no PCI devices yet);
 *           the extended table (bus hierarchy, address space mapping).
 * Spec:     Intel MultiProcessor Specification 1.4 (1997), chapter 4.
 */
#include <errno.h>
#include <string.h>
#include "vmm/mptable.h"

#define LAPIC_ADDR      0xFEE00000u
#define LAPIC_VERSION   0x14          /* as the LAPIC model: integrated xAPIC */
#define IOAPIC_VERSION  0x20          /* as the IOAPIC model */
#define ISA_BUS         0
#define ISA_IRQS        16
#define ALL_LAPICS      0xff
/* Fixed-width text fields, initialised from literals without their NUL. */
#define NONSTRING       __attribute__((nonstring))

struct mpf {
	char sig[4] NONSTRING;     /* "_MP_" */
	uint32_t config;           /* physical address of the configuration table */
	uint8_t length;            /* in 16-byte units: 1 */
	uint8_t spec_rev;          /* 4: version 1.4 */
	uint8_t checksum;
	uint8_t feature[5];        /* 1: 0 = a table is present; 2 bit 7: IMCR present */
} __attribute__((packed));

struct mpc_header {
	char sig[4] NONSTRING;     /* "PCMP" */
	uint16_t length;           /* base table, header included */
	uint8_t spec_rev;
	uint8_t checksum;
	char oem[8] NONSTRING;
	char product[12] NONSTRING;
	uint32_t oem_table;
	uint16_t oem_table_size;
	uint16_t count;            /* entries */
	uint32_t lapic_addr;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type, apic_id, apic_version, flags;
	uint32_t signature;        /* CPUID 1 EAX: family, model, stepping */
	uint32_t features;         /* CPUID 1 EDX */
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type, id;
	char name[6] NONSTRING;
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type, id, version, flags;
	uint32_t addr;
} __attribute__((packed));

/* I/O and local interrupt assignments share one layout. */
struct mpc_intsrc {
	uint8_t type, irq_type;
	uint16_t flags;            /* polarity, trigger: 0 = conforms to the bus */
	uint8_t src_bus, src_irq, dst_apic, dst_pin;
} __attribute__((packed));

_Static_assert(sizeof(struct mpf) == 16, "floating pointer");
_Static_assert(sizeof(struct mpc_header) == 44, "config header");
_Static_assert(sizeof(struct mpc_cpu) == 20, "processor entry");

enum { MP_CPU = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_INTSRC = 3, MP_LINTSRC = 4 };
enum { MP_INT = 0, MP_NMI = 1, MP_SMI = 2, MP_EXTINT = 3 };
#define CPU_ENABLED   (1u << 0)
#define CPU_BSP       (1u << 1)
#define IOAPIC_USABLE (1u << 0)
#define CPU_SIGNATURE 0x600           /* family 6, as the vCPUs report */
#define CPU_FEATURES  ((1u << 0) | (1u << 9))   /* FPU, APIC */

/* The largest table: 44 + 64 * 20 + 8 + 8 + 15 * 8 + 2 * 8 bytes. */
#define AREA_SIZE (MPTABLE_AREA_END - MPTABLE_ADDR)
_Static_assert(sizeof(struct mpf) + sizeof(struct mpc_header) +
	       MPTABLE_MAX_CPUS * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) +
	       sizeof(struct mpc_ioapic) + (ISA_IRQS + 2) * sizeof(struct mpc_intsrc)
	       <= AREA_SIZE, "MP table area");

struct table {
	uint8_t buf[AREA_SIZE];
	size_t used;
	uint16_t count;
};

static void table_add(struct table *t, const void *entry, size_t len)
{
	memcpy(t->buf + t->used, entry, len);
	t->used += len;
	t->count++;
}

static uint8_t checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return (uint8_t)-sum;
}

static void add_cpus(struct table *t, unsigned ncpus)
{
	for (unsigned i = 0; i < ncpus; i++) {
		const struct mpc_cpu c = {
			.type = MP_CPU, .apic_id = (uint8_t)i, .apic_version = LAPIC_VERSION,
			.flags = CPU_ENABLED | (i == 0 ? CPU_BSP : 0),
			.signature = CPU_SIGNATURE, .features = CPU_FEATURES,
		};

		table_add(t, &c, sizeof(c));
	}
}

/* The pin each ISA IRQ reaches, as devices/ioapic.c wires them; -1: none. */
static int isa_pin(unsigned irq)
{
	if (irq == 2)
		return -1;                 /* the 8259 cascade never reaches the IOAPIC */
	return irq == 0 ? 2 : (int)irq;
}

static void add_interrupts(struct table *t)
{
	const struct mpc_intsrc extint = {
		.type = MP_LINTSRC, .irq_type = MP_EXTINT, .src_bus = ISA_BUS,
		.dst_apic = 0, .dst_pin = 0,      /* the 8259 pair feeds the BSP's LINT0 */
	};
	const struct mpc_intsrc nmi = {
		.type = MP_LINTSRC, .irq_type = MP_NMI, .src_bus = ISA_BUS,
		.dst_apic = ALL_LAPICS, .dst_pin = 1,
	};

	for (unsigned irq = 0; irq < ISA_IRQS; irq++) {
		const struct mpc_intsrc e = {
			.type = MP_INTSRC, .irq_type = MP_INT, .flags = 0,
			.src_bus = ISA_BUS, .src_irq = (uint8_t)irq,
			.dst_apic = MPTABLE_IOAPIC_ID, .dst_pin = (uint8_t)isa_pin(irq),
		};

		if (isa_pin(irq) >= 0)
			table_add(t, &e, sizeof(e));
	}
	table_add(t, &extint, sizeof(extint));
	table_add(t, &nmi, sizeof(nmi));
}

int mptable_build(struct guest_memory *mem, unsigned ncpus, uint64_t ioapic_addr)
{
	static const struct mpc_bus isa = { .type = MP_BUS, .id = ISA_BUS, .name = "ISA   " };
	const struct mpc_ioapic io = {
		.type = MP_IOAPIC, .id = MPTABLE_IOAPIC_ID, .version = IOAPIC_VERSION,
		.flags = IOAPIC_USABLE, .addr = (uint32_t)ioapic_addr,
	};
	struct table t = { .used = sizeof(struct mpf) + sizeof(struct mpc_header) };
	struct mpf *mpf = (struct mpf *)t.buf;
	struct mpc_header *hdr = (struct mpc_header *)(t.buf + sizeof(*mpf));

	if (ncpus < 1 || ncpus > MPTABLE_MAX_CPUS || !ioapic_addr || ioapic_addr > UINT32_MAX)
		return -EINVAL;
	if (!gpa_ptr(mem, MPTABLE_ADDR, AREA_SIZE))
		return -EFAULT;
	add_cpus(&t, ncpus);
	table_add(&t, &isa, sizeof(isa));
	table_add(&t, &io, sizeof(io));
	add_interrupts(&t);

	*hdr = (struct mpc_header){
		.sig = "PCMP", .length = (uint16_t)(t.used - sizeof(*mpf)), .spec_rev = 4,
		.oem = "VMMVMM  ", .product = "VMM         ", .count = t.count,
		.lapic_addr = LAPIC_ADDR,
	};
	hdr->checksum = checksum(hdr, hdr->length);
	*mpf = (struct mpf){
		.sig = "_MP_", .config = (uint32_t)(MPTABLE_ADDR + sizeof(*mpf)),
		.length = 1, .spec_rev = 4,
	};
	mpf->checksum = checksum(mpf, sizeof(*mpf));
	return gpa_write(mem, MPTABLE_ADDR, t.buf, sizeof(t.buf));
}
