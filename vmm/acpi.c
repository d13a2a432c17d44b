/*
 * ACPI tables for a legacy-PC guest, built once before the guest runs.
 *
 * State:    stable.
 * Features: RSDP (revision 2, both checksums) at 0xE0000; RSDT and XSDT
 *           listing the FADT and the MADT; FADT 6.3 with the PM1a event
 *           and control blocks, the 24-bit PM timer, no GPE block, the
 *           SCI as an ISA IRQ, no SMI_CMD (always in ACPI mode), the 0xCF9
 *           reset register, 32- and 64-bit DSDT pointers; FACS (64-byte
 *           aligned); MADT with one enabled Local APIC per vCPU (APIC ID =
 *           ACPI UID = index), one IOAPIC, the IRQ 0 -> GSI 2 and SCI
 *           overrides, LINT1 NMI for every CPU, PCAT_COMPAT; a DSDT from a
 *           tiny AML emitter: \_S5, the PCI root bridge, COM1 and the RTC.
 * Missing:  processor objects in the DSDT (Linux enumerates CPUs from the
 *           MADT and there is no _CST/_PSS to offer), GPE blocks, fixed
 *           power and sleep buttons, S1-S4, PCI interrupt routing (_PRT),
 *           x2APIC entries (APIC IDs stay below 255), hotplug.
 * Spec:     ACPI 6.3: 5.2 (tables), 4.8 (fixed hardware registers),
 *           6.4 (resource descriptors), 20 (AML encoding).
 *
 * The tables are assembled in a host-side image of the whole area and
 * copied into guest RAM with one bounds-checked write, so a failure leaves
 * guest memory untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "vmm/acpi.h"

#define AREA_SIZE (ACPI_AREA_END - ACPI_AREA_START)

/* ---- table layouts (little endian, as the host: KVM on x86) ------------ */

struct acpi_header {
	char sig[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

struct rsdp {
	char sig[8];
	uint8_t checksum;          /* over the first 20 bytes (the ACPI 1.0 part) */
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt;
	uint32_t length;
	uint64_t xsdt;
	uint8_t ext_checksum;      /* over all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));

struct gas {
	uint8_t space;             /* 1: system I/O */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access;            /* 1 byte, 2 word, 3 dword */
	uint64_t addr;
} __attribute__((packed));

struct fadt {
	struct acpi_header h;
	uint32_t facs, dsdt;
	uint8_t reserved0, pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt, pm1b_evt, pm1a_cnt, pm1b_cnt, pm2_cnt, pm_tmr, gpe0, gpe1;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len;
	uint8_t gpe0_len, gpe1_len, gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_facs, x_dsdt;
	struct gas x_pm1a_evt, x_pm1b_evt, x_pm1a_cnt, x_pm1b_cnt, x_pm2_cnt, x_pm_tmr,
		   x_gpe0, x_gpe1, sleep_control, sleep_status;
	uint64_t hypervisor_id;
} __attribute__((packed));

struct facs {
	char sig[4] __attribute__((nonstring));   /* set from "FACS" */
	uint32_t length;
	uint32_t hw_signature;
	uint32_t waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_waking_vector;
	uint8_t version;
	uint8_t reserved0[3];
	uint32_t ospm_flags;
	uint8_t reserved1[24];
} __attribute__((packed));

/* The MADT's fields after the header; interrupt controller entries follow. */
struct madt_fixed {
	uint32_t lapic_addr;
	uint32_t flags;
} __attribute__((packed));

struct madt_lapic {
	uint8_t type, length, uid, apic_id;
	uint32_t flags;
} __attribute__((packed));

struct madt_ioapic {
	uint8_t type, length, id, reserved;
	uint32_t addr, gsi_base;
} __attribute__((packed));

struct madt_override {
	uint8_t type, length, bus, irq;
	uint32_t gsi;
	uint16_t flags;
} __attribute__((packed));

struct madt_lapic_nmi {
	uint8_t type, length, uid;
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_header) == 36, "ACPI header");
_Static_assert(sizeof(struct rsdp) == 36, "RSDP");
_Static_assert(sizeof(struct fadt) == 276, "FADT 6.x");
_Static_assert(sizeof(struct facs) == 64, "FACS");
_Static_assert(sizeof(struct madt_override) == 10, "MADT type 2");

enum { MADT_LAPIC = 0, MADT_IOAPIC = 1, MADT_OVERRIDE = 2, MADT_LAPIC_NMI = 4 };
#define MADT_PCAT_COMPAT    (1u << 0)
#define MADT_LAPIC_ENABLED  (1u << 0)
#define MPS_ACTIVE_HIGH     0x1
#define MPS_LEVEL           (0x3 << 2)
#define NMI_ALL_CPUS        0xff

#define FADT_WBINVD         (1u << 0)
#define FADT_PROC_C1        (1u << 2)
#define FADT_PWR_BUTTON     (1u << 4)   /* set: no fixed power button */
#define FADT_SLP_BUTTON     (1u << 5)   /* set: no fixed sleep button */
#define FADT_FIX_RTC        (1u << 6)   /* set: no RTC_STS in PM1 */
#define FADT_RESET_REG_SUP  (1u << 10)
#define BOOT_LEGACY_DEVICES (1u << 0)
#define BOOT_8042           (1u << 1)
#define BOOT_NO_VGA         (1u << 2)
#define BOOT_NO_CMOS_RTC    (1u << 5)

#define GAS_IO              1
#define GAS_BYTE            1
#define GAS_WORD            2
#define GAS_DWORD           3

/* ---- the image: a host copy of [ACPI_AREA_START, ACPI_AREA_END) -------- */

struct image {
	uint8_t buf[AREA_SIZE];
	size_t used;
	bool full;                 /* something did not fit: the build fails */
};

static uint64_t image_gpa(size_t off)
{
	return ACPI_AREA_START + off;
}

/* Append @len bytes (zeros if @src is NULL) at @align; their offset. */
static size_t image_add(struct image *img, const void *src, size_t len, size_t align)
{
	size_t off = (img->used + align - 1) & ~(align - 1);

	if (img->full || off > sizeof(img->buf) || len > sizeof(img->buf) - off) {
		img->full = true;
		return 0;
	}
	if (src)
		memcpy(img->buf + off, src, len);
	img->used = off + len;
	return off;
}

static uint8_t checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return (uint8_t)-sum;
}

static void header_fill(struct acpi_header *h, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(h->sig, sig, 4);
	h->length = len;
	h->revision = rev;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, "VMM", 3);
	memcpy(h->oem_table_id + 3, sig, 4);
	h->oem_table_id[7] = ' ';
	h->oem_revision = 1;
	memcpy(h->creator_id, "VMM ", 4);
	h->creator_revision = 1;
	h->checksum = 0;
	h->checksum = checksum(h, len);
}

/* Tables whose length is known only at the end: open, append, close. */
static size_t table_open(struct image *img)
{
	return image_add(img, NULL, sizeof(struct acpi_header), 16);
}

static void table_close(struct image *img, size_t off, const char *sig, uint8_t rev)
{
	if (!img->full)
		header_fill((struct acpi_header *)(img->buf + off), sig, img->used - off, rev);
}

/* ---- AML: just enough of the encoding for names, devices, buffers ------ */

enum {
	AML_ZERO = 0x00, AML_ONE = 0x01, AML_NAME = 0x08, AML_BYTE = 0x0a,
	AML_WORD = 0x0b, AML_DWORD = 0x0c, AML_QWORD = 0x0e, AML_SCOPE = 0x10,
	AML_BUFFER = 0x11, AML_PACKAGE = 0x12, AML_EXT = 0x5b, AML_DEVICE = 0x82,
};

static void aml_bytes(struct image *img, const void *p, size_t n)
{
	image_add(img, p, n, 1);
}

static void aml_byte(struct image *img, uint8_t b)
{
	aml_bytes(img, &b, 1);
}

/* A NameString: one 4-character segment, "\\" prefixed for the root. */
static void aml_namestring(struct image *img, const char *name)
{
	aml_bytes(img, name, strlen(name));
}

static void aml_int(struct image *img, uint64_t v)
{
	unsigned n = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffff ? 4 : 8;
	static const uint8_t prefix[9] = { [1] = AML_BYTE, [2] = AML_WORD,
					   [4] = AML_DWORD, [8] = AML_QWORD };

	if (v <= 1) {
		aml_byte(img, v ? AML_ONE : AML_ZERO);
		return;
	}
	aml_byte(img, prefix[n]);
	aml_bytes(img, &v, n);                    /* little endian */
}

/* Where the body of an object with a PkgLength begins. */
static size_t aml_open(struct image *img)
{
	return img->used;
}

/* Put the PkgLength in front of the body that started at @start. */
static void aml_close(struct image *img, size_t start)
{
	size_t body = img->used - start;
	unsigned n = body + 1 < 0x40 ? 1 : body + 2 < 0x1000 ? 2 : body + 3 < 0x100000 ? 3 : 4;
	size_t len = body + n;
	uint8_t enc[4] = { (uint8_t)len };

	if (img->full || n > sizeof(img->buf) - img->used) {
		img->full = true;
		return;
	}
	if (n > 1) {
		/* Lead byte: count of following bytes, then the low nibble. */
		enc[0] = (uint8_t)((n - 1) << 6 | (len & 0xf));
		for (unsigned i = 1; i < n; i++)
			enc[i] = (uint8_t)(len >> (4 + 8 * (i - 1)));
	}
	memmove(img->buf + start + n, img->buf + start, body);
	memcpy(img->buf + start, enc, n);
	img->used += n;
}

static size_t aml_scope_open(struct image *img, const char *name)
{
	size_t start;

	aml_byte(img, AML_SCOPE);
	start = aml_open(img);
	aml_namestring(img, name);
	return start;
}

static size_t aml_device_open(struct image *img, const char *name)
{
	size_t start;

	aml_byte(img, AML_EXT);
	aml_byte(img, AML_DEVICE);
	start = aml_open(img);
	aml_namestring(img, name);
	return start;
}

static void aml_name_int(struct image *img, const char *name, uint64_t v)
{
	aml_byte(img, AML_NAME);
	aml_namestring(img, name);
	aml_int(img, v);
}

/* EisaId("PNP0A03"): three 5-bit letters and four hex digits, big endian. */
static uint32_t eisa_id(const char *id)
{
	uint32_t v = (uint32_t)(id[0] - 0x40) << 26 | (uint32_t)(id[1] - 0x40) << 21 |
		     (uint32_t)(id[2] - 0x40) << 16;

	for (int i = 3; i < 7; i++)
		v |= (uint32_t)(id[i] <= '9' ? id[i] - '0' : id[i] - 'A' + 10) << (4 * (6 - i));
	return __builtin_bswap32(v);
}

static void aml_name_eisa(struct image *img, const char *name, const char *id)
{
	uint32_t v = eisa_id(id);

	aml_byte(img, AML_NAME);
	aml_namestring(img, name);
	aml_byte(img, AML_DWORD);                  /* always a DWord, as iasl emits it */
	aml_bytes(img, &v, 4);
}

static void aml_name_buffer(struct image *img, const char *name, const void *data, size_t len)
{
	size_t start;

	aml_byte(img, AML_NAME);
	aml_namestring(img, name);
	aml_byte(img, AML_BUFFER);
	start = aml_open(img);
	aml_int(img, len);
	aml_bytes(img, data, len);
	aml_close(img, start);
}

/* ---- resource descriptors for _CRS ------------------------------------- */

struct res {
	uint8_t b[128];
	size_t n;
};

static void res_put(struct res *r, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes && r->n < sizeof(r->b); i++)
		r->b[r->n++] = (uint8_t)(v >> (8 * i));
}

/* IO (Decode16, base, base, 1, len): a fixed range of ports. */
static void res_io(struct res *r, uint16_t base, uint8_t len)
{
	res_put(r, 0x47, 1);
	res_put(r, 1, 1);                          /* 16-bit decode */
	res_put(r, base, 2);
	res_put(r, base, 2);
	res_put(r, 1, 1);
	res_put(r, len, 1);
}

/* IRQNoFlags () { irq }: an ISA edge-triggered, active-high line. */
static void res_irq(struct res *r, unsigned irq)
{
	res_put(r, 0x22, 1);
	res_put(r, 1u << irq, 2);
}

/* Word or DWord address space, producer, fixed min and max. */
enum { RES_MEMORY = 0, RES_IO = 1, RES_BUS = 2 };
static void res_window(struct res *r, unsigned type, uint64_t min, uint64_t max,
		       uint8_t type_flags, unsigned width)
{
	res_put(r, width == 2 ? 0x88 : 0x87, 1);
	res_put(r, 3 + 5 * width, 2);              /* length after this field */
	res_put(r, type, 1);
	res_put(r, 0x0c, 1);                       /* MinFixed, MaxFixed, producer */
	res_put(r, type_flags, 1);
	res_put(r, 0, width);                      /* granularity */
	res_put(r, min, width);
	res_put(r, max, width);
	res_put(r, 0, width);                      /* translation */
	res_put(r, max - min + 1, width);
}

static void res_end(struct res *r)
{
	res_put(r, 0x79, 1);
	res_put(r, 0, 1);                          /* checksum 0: ignored */
}

/* ---- the tables --------------------------------------------------------- */

/* Where the PCI root bridge forwards memory: the hole up to the test device. */
#define PCI_MMIO_START GUEST_PCI_HOLE_START
#define PCI_MMIO_END   0xFEBEFFFFull

static void dsdt_pci_root(struct image *img)
{
	size_t dev = aml_device_open(img, "PCI0");
	struct res r = { .n = 0 };

	aml_name_eisa(img, "_HID", "PNP0A03");
	aml_name_int(img, "_UID", 0);
	aml_name_int(img, "_BBN", 0);
	res_window(&r, RES_BUS, 0, 0xff, 0, 2);
	res_io(&r, 0xcf8, 8);                      /* the configuration ports */
	res_window(&r, RES_IO, 0, 0xcf7, 3, 2);    /* ISA and PCI ranges */
	res_window(&r, RES_IO, 0xd00, 0xffff, 3, 2);
	res_window(&r, RES_MEMORY, PCI_MMIO_START, PCI_MMIO_END, 1, 4); /* read/write */
	res_end(&r);
	aml_name_buffer(img, "_CRS", r.b, r.n);
	aml_close(img, dev);
}

static void dsdt_isa_device(struct image *img, const char *name, const char *hid,
			    unsigned uid, uint16_t port, uint8_t len, unsigned irq)
{
	size_t dev = aml_device_open(img, name);
	struct res r = { .n = 0 };

	aml_name_eisa(img, "_HID", hid);
	aml_name_int(img, "_UID", uid);
	res_io(&r, port, len);
	res_irq(&r, irq);
	res_end(&r);
	aml_name_buffer(img, "_CRS", r.b, r.n);
	aml_close(img, dev);
}

static size_t build_dsdt(struct image *img, const struct acpi_config *cfg)
{
	size_t off = table_open(img);
	size_t scope, pkg;

	/* Name (\_S5, Package () { 5, 5, 0, 0 }): SLP_TYPa, SLP_TYPb. */
	aml_byte(img, AML_NAME);
	aml_namestring(img, "\\_S5_");
	aml_byte(img, AML_PACKAGE);
	pkg = aml_open(img);
	aml_byte(img, 4);
	aml_int(img, ACPI_SLP_TYP_S5);
	aml_int(img, ACPI_SLP_TYP_S5);
	aml_int(img, 0);
	aml_int(img, 0);
	aml_close(img, pkg);

	scope = aml_scope_open(img, "\\_SB_");
	dsdt_pci_root(img);
	dsdt_isa_device(img, "COM1", "PNP0501", 0, 0x3f8, 8, 4);
	if (cfg->rtc)
		dsdt_isa_device(img, "RTC_", "PNP0B00", 0, 0x70, 2, 8);
	aml_close(img, scope);

	table_close(img, off, "DSDT", 2);          /* revision 2: 64-bit integers */
	return off;
}

static size_t build_madt(struct image *img, const struct acpi_config *cfg)
{
	size_t off = table_open(img);
	const struct madt_fixed fixed = { .lapic_addr = ACPI_LAPIC_ADDR, .flags = MADT_PCAT_COMPAT };
	const struct madt_ioapic io = {
		.type = MADT_IOAPIC, .length = sizeof(io), .id = ACPI_IOAPIC_ID,
		.addr = (uint32_t)cfg->ioapic_addr, .gsi_base = 0,
	};
	/* The timer's ISA IRQ 0 arrives on pin 2, as on every PC chipset. */
	const struct madt_override irq0 = {
		.type = MADT_OVERRIDE, .length = sizeof(irq0), .bus = 0, .irq = 0, .gsi = 2,
		.flags = 0,                        /* conforms to the bus: edge, high */
	};
	/*
	 * The SCI is level triggered; active high because the PM device drives
	 * its GSI high while an enabled event is pending (as QEMU's PIIX4 and
	 * ICH9 do).  Without this entry Linux would assume active low.
	 */
	const struct madt_override sci = {
		.type = MADT_OVERRIDE, .length = sizeof(sci), .bus = 0,
		.irq = (uint8_t)cfg->sci_irq, .gsi = cfg->sci_irq,
		.flags = MPS_LEVEL | MPS_ACTIVE_HIGH,
	};
	const struct madt_lapic_nmi nmi = {
		.type = MADT_LAPIC_NMI, .length = sizeof(nmi), .uid = NMI_ALL_CPUS,
		.flags = 0, .lint = 1,
	};

	image_add(img, &fixed, sizeof(fixed), 1);
	for (unsigned i = 0; i < cfg->ncpus; i++) {
		const struct madt_lapic l = {
			.type = MADT_LAPIC, .length = sizeof(l), .uid = (uint8_t)i,
			.apic_id = (uint8_t)i, .flags = MADT_LAPIC_ENABLED,
		};

		image_add(img, &l, sizeof(l), 1);
	}
	image_add(img, &io, sizeof(io), 1);
	image_add(img, &irq0, sizeof(irq0), 1);
	image_add(img, &sci, sizeof(sci), 1);
	image_add(img, &nmi, sizeof(nmi), 1);
	table_close(img, off, "APIC", 5);
	return off;
}

static struct gas gas_io(uint16_t port, unsigned bytes, uint8_t access)
{
	return (struct gas){ .space = GAS_IO, .bit_width = (uint8_t)(8 * bytes),
			     .access = access, .addr = port };
}

static size_t build_fadt(struct image *img, const struct acpi_config *cfg,
			 size_t facs, size_t dsdt)
{
	const uint16_t pm = cfg->pm_base;
	struct fadt f = {
		.facs = (uint32_t)image_gpa(facs),
		.dsdt = (uint32_t)image_gpa(dsdt),
		.x_dsdt = image_gpa(dsdt),
		.sci_int = (uint16_t)cfg->sci_irq,
		.smi_cmd = 0,                      /* no SMM: always in ACPI mode */
		.pm1a_evt = pm + ACPI_PM1_STS, .pm1_evt_len = 4,
		.pm1a_cnt = pm + ACPI_PM1_CNT, .pm1_cnt_len = 2,
		.pm_tmr = pm + ACPI_PM_TMR, .pm_tmr_len = 4,
		.x_pm1a_evt = gas_io(pm + ACPI_PM1_STS, 4, GAS_WORD),
		.x_pm1a_cnt = gas_io(pm + ACPI_PM1_CNT, 2, GAS_WORD),
		.x_pm_tmr = gas_io(pm + ACPI_PM_TMR, 4, GAS_DWORD),
		.p_lvl2_lat = 0xfff,               /* > 100: no C2 */
		.p_lvl3_lat = 0xfff,               /* > 1000: no C3 */
		.century = 0,                      /* no century register: the RTC need not keep one */
		.boot_arch = BOOT_LEGACY_DEVICES | BOOT_NO_VGA |
			     (cfg->i8042 ? BOOT_8042 : 0) | (cfg->rtc ? 0 : BOOT_NO_CMOS_RTC),
		.flags = FADT_WBINVD | FADT_PROC_C1 | FADT_PWR_BUTTON | FADT_SLP_BUTTON |
			 FADT_FIX_RTC | FADT_RESET_REG_SUP,
		.reset_reg = gas_io(ACPI_RESET_PORT, 1, GAS_BYTE),
		.reset_value = ACPI_RESET_VALUE,
		.minor_version = 3,
	};

	header_fill(&f.h, "FACP", sizeof(f), 6);
	return image_add(img, &f, sizeof(f), 16);
}

static size_t build_facs(struct image *img)
{
	const struct facs f = { .sig = "FACS", .length = sizeof(f), .version = 2 };

	return image_add(img, &f, sizeof(f), 64);
}

/* RSDT (32-bit entries) or XSDT (64-bit) listing @n tables. */
static size_t build_sdt(struct image *img, const char *sig, unsigned width,
			const size_t *tables, unsigned n)
{
	size_t off = table_open(img);

	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = image_gpa(tables[i]);

		image_add(img, &gpa, width, 1);
	}
	table_close(img, off, sig, 1);
	return off;
}

static void build_rsdp(struct image *img, size_t rsdt, size_t xsdt)
{
	struct rsdp *r = (struct rsdp *)img->buf;

	memcpy(r->sig, "RSD PTR ", 8);
	memcpy(r->oem_id, ACPI_OEM_ID, 6);
	r->revision = 2;
	r->rsdt = (uint32_t)image_gpa(rsdt);
	r->length = sizeof(*r);
	r->xsdt = image_gpa(xsdt);
	r->checksum = checksum(r, 20);
	r->ext_checksum = checksum(r, sizeof(*r));
}

struct acpi_config acpi_config_pc(unsigned ncpus)
{
	return (struct acpi_config){
		.ncpus = ncpus, .ioapic_addr = ACPI_IOAPIC_ADDR, .sci_irq = ACPI_SCI_IRQ,
		.pm_base = ACPI_PM_BASE, .rtc = true, .i8042 = true,
	};
}

static bool config_valid(const struct acpi_config *cfg)
{
	return cfg->ncpus >= 1 && cfg->ncpus <= ACPI_MAX_CPUS &&
	       cfg->ioapic_addr && cfg->ioapic_addr <= UINT32_MAX - 0xfff &&
	       cfg->sci_irq >= 1 && cfg->sci_irq < 16 && cfg->sci_irq != 2 &&
	       cfg->pm_base && cfg->pm_base <= 0x10000 - ACPI_PM_SIZE;
}

int acpi_build(struct guest_memory *mem, const struct acpi_config *cfg, uint64_t *rsdp_gpa)
{
	struct image *img;
	size_t facs, dsdt, tables[2], rsdt, xsdt;
	int err;

	if (!config_valid(cfg))
		return -EINVAL;
	if (!gpa_ptr(mem, ACPI_AREA_START, AREA_SIZE))
		return -EFAULT;
	img = calloc(1, sizeof(*img));
	if (!img)
		return -ENOMEM;
	/* Order matters only for the RSDP: first, where the scan begins. */
	image_add(img, NULL, sizeof(struct rsdp), 16);
	facs = build_facs(img);
	dsdt = build_dsdt(img, cfg);
	tables[1] = build_madt(img, cfg);
	tables[0] = build_fadt(img, cfg, facs, dsdt);
	rsdt = build_sdt(img, "RSDT", 4, tables, 2);
	xsdt = build_sdt(img, "XSDT", 8, tables, 2);
	build_rsdp(img, rsdt, xsdt);
	err = img->full ? -ENOSPC : gpa_write(mem, ACPI_AREA_START, img->buf, sizeof(img->buf));
	free(img);
	if (!err && rsdp_gpa)
		*rsdp_gpa = ACPI_RSDP_ADDR;
	return err;
}

/* ---- dump ---------------------------------------------------------------- */

static int dump_file(const char *dir, const char *sig, const void *data, size_t len)
{
	char path[4096];
	ssize_t n;
	int fd;

	for (int i = 0; i < 4; i++)
		if (!(sig[i] >= 'A' && sig[i] <= 'Z') && !(sig[i] >= '0' && sig[i] <= '9') && sig[i] != '_')
			return -EINVAL;
	if (snprintf(path, sizeof(path), "%s/%.4s.dat", dir, sig) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	n = write(fd, data, len);
	if (n < 0 || (size_t)n != len) {
		int err = n < 0 ? -errno : -EIO;

		close(fd);
		return err;
	}
	return close(fd) ? -errno : 0;
}

/* Write the table at @gpa; -EINVAL if it is not a table or not @want. */
static int dump_table(const struct guest_memory *mem, const char *dir, uint64_t gpa,
		      const char *want, const uint8_t **table)
{
	uint32_t len;
	const uint8_t *t = gpa_ptr(mem, gpa, 8);   /* signature and length */

	if (!t)
		return -EINVAL;
	memcpy(&len, t + 4, 4);
	if (len < 36 || len > AREA_SIZE || (want && memcmp(t, want, 4)))
		return -EINVAL;
	t = gpa_ptr(mem, gpa, len);
	if (!t)
		return -EINVAL;
	if (table)
		*table = t;
	return dump_file(dir, (const char *)t, t, len);
}

static int dump_fadt_children(const struct guest_memory *mem, const char *dir,
			      const uint8_t *fadt)
{
	uint32_t len, facs, dsdt32;
	uint64_t dsdt;
	int err;

	memcpy(&len, fadt + 4, 4);
	if (len < offsetof(struct fadt, x_dsdt) + 8)
		return -EINVAL;
	memcpy(&facs, fadt + offsetof(struct fadt, facs), 4);
	memcpy(&dsdt32, fadt + offsetof(struct fadt, dsdt), 4);
	memcpy(&dsdt, fadt + offsetof(struct fadt, x_dsdt), 8);
	err = dump_table(mem, dir, dsdt ? dsdt : dsdt32, "DSDT", NULL);
	if (!err && facs)
		err = dump_table(mem, dir, facs, "FACS", NULL);
	return err;
}

int acpi_dump(const struct guest_memory *mem, uint64_t rsdp_gpa, const char *dir)
{
	struct rsdp r;
	const uint8_t *sdt, *t;
	uint32_t len;
	unsigned width;
	int err;

	if (gpa_read(mem, rsdp_gpa, &r, sizeof(r)) || memcmp(r.sig, "RSD PTR ", 8))
		return -EINVAL;
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	err = dump_file(dir, "RSDP", &r, r.revision >= 2 ? sizeof(r) : 20);
	if (!err)
		err = dump_table(mem, dir, r.rsdt, "RSDT", &sdt);
	width = 4;
	if (!err && r.revision >= 2 && r.xsdt) {
		err = dump_table(mem, dir, r.xsdt, "XSDT", &sdt);
		width = 8;
	}
	if (err)
		return err;
	memcpy(&len, sdt + 4, 4);
	for (uint32_t at = 36; !err && at + width <= len; at += width) {
		uint64_t gpa = 0;

		memcpy(&gpa, sdt + at, width);
		err = dump_table(mem, dir, gpa, NULL, &t);
		if (!err && !memcmp(t, "FACP", 4))
			err = dump_fadt_children(mem, dir, t);
	}
	return err;
}
