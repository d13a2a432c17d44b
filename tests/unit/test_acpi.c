/*
 * ACPI tables as a guest finds them: from the RSDP at 0xE0000 through
 * the XSDT/RSDT to every table, parsed here by the spec's byte offsets
 * (not by the builder's structs), for 1, 2, 4 and 64 CPUs.
 *
 * `test_acpi --dump-acpi DIR [NCPUS]` builds the tables and dumps them
 * for tests/acpi/run.sh instead of running the tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "vmm/acpi.h"
#include "vmm/memory.h"
#include "tests/unit/table_walk.h"

#define MiB (1ull << 20)
#define FILL 0xA5

static const unsigned cpu_counts[] = { 1, 2, 4, 64 };
#define NCOUNTS (sizeof(cpu_counts) / sizeof(cpu_counts[0]))

struct fixture {
	struct guest_memory mem;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	table_mem_init(&f->mem, 2 * MiB, FILL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	guest_memory_free(&f->mem);
	free(f);
	return 0;
}

/* ---- reading guest memory ---------------------------------------------- */

/* A table with a standard header: signature, sane length, checksum 0. */
static const uint8_t *table(const struct guest_memory *mem, uint64_t gpa, const char *sig)
{
	const uint8_t *t = at(mem, gpa, 36);
	uint32_t len = (uint32_t)le(t + 4, 4);

	assert_memory_equal(t, sig, 4);
	assert_true(len >= 36);
	assert_true(gpa >= ACPI_AREA_START && gpa + len <= ACPI_AREA_END);
	t = at(mem, gpa, len);
	assert_int_equal(sum(t, len), 0);
	assert_memory_equal(t + 10, ACPI_OEM_ID, 6);
	return t;
}

static const uint8_t *build(struct fixture *f, const struct acpi_config *cfg)
{
	uint64_t rsdp = 0;

	assert_int_equal(acpi_build(&f->mem, cfg, &rsdp), 0);
	assert_int_equal(rsdp, 0xE0000);
	return at(&f->mem, rsdp, 36);
}

/* The table the XSDT lists with signature @sig; its address in @gpa. */
static const uint8_t *find(struct fixture *f, const char *sig, uint64_t *gpa)
{
	const uint8_t *rsdp = at(&f->mem, 0xE0000, 36);
	const uint8_t *x = table(&f->mem, le(rsdp + 24, 8), "XSDT");

	for (uint32_t o = 36; o < le(x + 4, 4); o += 8) {
		uint64_t a = le(x + o, 8);

		if (!memcmp(at(&f->mem, a, 4), sig, 4)) {
			if (gpa)
				*gpa = a;
			return table(&f->mem, a, sig);
		}
	}
	fail_msg("no %s in the XSDT", sig);
	return NULL;
}

static bool contains(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
	for (size_t i = 0; i + m <= n; i++)
		if (!memcmp(hay + i, needle, m))
			return true;
	return false;
}

/* ---- RSDP, RSDT, XSDT ---------------------------------------------------- */

static void test_rsdp(void **state)
{
	struct fixture *f = *state;

	for (unsigned c = 0; c < NCOUNTS; c++) {
		struct acpi_config cfg = acpi_config_pc(cpu_counts[c]);
		const uint8_t *r = build(f, &cfg);

		assert_memory_equal(r, "RSD PTR ", 8);
		assert_int_equal(sum(r, 20), 0);          /* ACPI 1.0 checksum */
		assert_int_equal(r[15], 2);               /* revision */
		assert_int_equal(le(r + 20, 4), 36);      /* length */
		assert_int_equal(sum(r, 36), 0);          /* extended checksum */
		assert_memory_equal(r + 9, "VMMVMM", 6);
		table(&f->mem, le(r + 16, 4), "RSDT");
		table(&f->mem, le(r + 24, 8), "XSDT");
	}
}

static void test_rsdt_xsdt_agree(void **state)
{
	struct fixture *f = *state;

	for (unsigned c = 0; c < NCOUNTS; c++) {
		struct acpi_config cfg = acpi_config_pc(cpu_counts[c]);
		const uint8_t *r = build(f, &cfg);
		const uint8_t *rs = table(&f->mem, le(r + 16, 4), "RSDT");
		const uint8_t *xs = table(&f->mem, le(r + 24, 8), "XSDT");
		bool seen_facp = false, seen_apic = false;

		assert_int_equal(le(rs + 4, 4), 36 + 2 * 4);
		assert_int_equal(le(xs + 4, 4), 36 + 2 * 8);
		assert_int_equal(rs[8], 1);
		assert_int_equal(xs[8], 1);
		for (unsigned i = 0; i < 2; i++) {
			uint64_t a32 = le(rs + 36 + 4 * i, 4), a64 = le(xs + 36 + 8 * i, 8);
			const uint8_t *t = at(&f->mem, a64, 4);

			assert_int_equal(a32, a64);
			seen_facp |= !memcmp(t, "FACP", 4);
			seen_apic |= !memcmp(t, "APIC", 4);
			table(&f->mem, a64, (const char *)t);   /* its own checksum */
		}
		assert_true(seen_facp && seen_apic);
	}
}

/* ---- MADT ----------------------------------------------------------------- */

static void test_madt(void **state)
{
	struct fixture *f = *state;

	for (unsigned c = 0; c < NCOUNTS; c++) {
		unsigned n = cpu_counts[c], lapics = 0, ioapics = 0, nmis = 0;
		bool irq0 = false, sci = false;
		struct acpi_config cfg = acpi_config_pc(n);
		const uint8_t *m;
		uint32_t len;

		build(f, &cfg);
		m = find(f, "APIC", NULL);
		len = (uint32_t)le(m + 4, 4);
		assert_int_equal(len, 44 + 8 * n + 12 + 2 * 10 + 6);
		assert_int_equal(le(m + 36, 4), 0xFEE00000);
		assert_int_equal(le(m + 40, 4), 1);       /* PCAT_COMPAT */
		for (uint32_t o = 44; o < len; o += m[o + 1]) {
			const uint8_t *e = m + o;

			assert_true(e[1] >= 2 && o + e[1] <= len);
			switch (e[0]) {
			case 0:
				assert_int_equal(e[1], 8);
				assert_int_equal(e[2], lapics);      /* UID */
				assert_int_equal(e[3], lapics);      /* APIC ID */
				assert_int_equal(le(e + 4, 4), 1);   /* enabled */
				lapics++;
				break;
			case 1:
				assert_int_equal(e[1], 12);
				assert_int_equal(e[2], ACPI_IOAPIC_ID);
				assert_int_equal(le(e + 4, 4), 0xFEC00000);
				assert_int_equal(le(e + 8, 4), 0);   /* GSI base */
				ioapics++;
				break;
			case 2:
				assert_int_equal(e[1], 10);
				assert_int_equal(e[2], 0);           /* ISA */
				if (e[3] == 0) {
					assert_int_equal(le(e + 4, 4), 2);
					assert_int_equal(le(e + 8, 2), 0);     /* conforming */
					irq0 = true;
				} else {
					assert_int_equal(e[3], 9);
					assert_int_equal(le(e + 4, 4), 9);
					assert_int_equal(le(e + 8, 2), 0xd);   /* level, high */
					sci = true;
				}
				break;
			case 4:
				assert_int_equal(e[1], 6);
				assert_int_equal(e[2], 0xff);        /* all processors */
				assert_int_equal(e[5], 1);           /* LINT1 */
				nmis++;
				break;
			default:
				fail_msg("unexpected MADT entry type %u", e[0]);
			}
		}
		assert_int_equal(lapics, n);
		assert_int_equal(ioapics, 1);
		assert_int_equal(nmis, 1);
		assert_true(irq0 && sci);
	}
}

static void test_madt_config(void **state)
{
	struct fixture *f = *state;
	struct acpi_config cfg = acpi_config_pc(3);
	const uint8_t *m;
	uint32_t len;
	unsigned checked = 0;

	cfg.ioapic_addr = 0xFEC01000;
	cfg.sci_irq = 11;
	build(f, &cfg);
	m = find(f, "APIC", NULL);
	len = (uint32_t)le(m + 4, 4);
	for (uint32_t o = 44; o < len; o += m[o + 1]) {
		if (m[o] == 1) {
			assert_int_equal(le(m + o + 4, 4), 0xFEC01000);
			checked++;
		}
		if (m[o] == 2 && m[o + 3] != 0) {
			assert_int_equal(m[o + 3], 11);
			assert_int_equal(le(m + o + 4, 4), 11);
			checked++;
		}
	}
	assert_int_equal(checked, 2);
	assert_int_equal(le(find(f, "FACP", NULL) + 46, 2), 11);
}

/* ---- FADT, FACS ----------------------------------------------------------- */

static void assert_gas(const uint8_t *g, uint8_t width, uint8_t access, uint64_t addr)
{
	assert_int_equal(g[0], 1);                    /* system I/O */
	assert_int_equal(g[1], width);
	assert_int_equal(g[2], 0);
	assert_int_equal(g[3], access);
	assert_int_equal(le(g + 4, 8), addr);
}

static void test_fadt(void **state)
{
	struct fixture *f = *state;
	struct acpi_config cfg = acpi_config_pc(2);
	const uint8_t *t, *facs;
	uint32_t flags;
	uint16_t boot;

	build(f, &cfg);
	t = find(f, "FACP", NULL);
	assert_int_equal(le(t + 4, 4), 276);
	assert_int_equal(t[8], 6);                    /* revision */
	assert_int_equal(t[131], 3);                  /* minor: 6.3 */
	assert_int_equal(le(t + 46, 2), 9);           /* SCI_INT */
	assert_int_equal(le(t + 48, 4), 0);           /* SMI_CMD */
	assert_int_equal(le(t + 56, 4), 0x600);       /* PM1a_EVT_BLK */
	assert_int_equal(le(t + 60, 4), 0);           /* PM1b_EVT_BLK */
	assert_int_equal(le(t + 64, 4), 0x604);       /* PM1a_CNT_BLK */
	assert_int_equal(le(t + 68, 4), 0);
	assert_int_equal(le(t + 72, 4), 0);           /* PM2_CNT_BLK */
	assert_int_equal(le(t + 76, 4), 0x608);       /* PM_TMR_BLK */
	assert_int_equal(le(t + 80, 4), 0);           /* GPE0_BLK */
	assert_int_equal(t[88], 4);                   /* PM1_EVT_LEN */
	assert_int_equal(t[89], 2);                   /* PM1_CNT_LEN */
	assert_int_equal(t[91], 4);                   /* PM_TMR_LEN */
	assert_int_equal(t[92], 0);                   /* GPE0_BLK_LEN */
	assert_true(le(t + 96, 2) > 100 && le(t + 98, 2) > 1000);   /* no C2, C3 */
	boot = (uint16_t)le(t + 109, 2);
	assert_int_equal(boot & 0x3, 0x3);            /* legacy devices, 8042 */
	assert_int_equal(boot & (1u << 5), 0);        /* the CMOS RTC is there */
	assert_int_equal(t[108], 0);                  /* but no century register */
	flags = (uint32_t)le(t + 112, 4);
	assert_true(flags & (1u << 0));               /* WBINVD */
	assert_true(flags & (1u << 2));               /* PROC_C1 */
	assert_true(flags & (1u << 4));               /* no fixed power button */
	assert_true(flags & (1u << 5));               /* no fixed sleep button */
	assert_false(flags & (1u << 8));              /* 24-bit PM timer */
	assert_true(flags & (1u << 10));              /* RESET_REG_SUP */
	assert_false(flags & (1u << 20));             /* not hardware-reduced */
	assert_gas(t + 116, 8, 1, 0xCF9);             /* RESET_REG */
	assert_int_equal(t[128], 0x06);               /* RESET_VALUE */
	assert_gas(t + 148, 32, 2, 0x600);            /* X_PM1a_EVT_BLK */
	assert_gas(t + 172, 16, 2, 0x604);            /* X_PM1a_CNT_BLK */
	assert_gas(t + 208, 32, 3, 0x608);            /* X_PM_TMR_BLK */
	assert_int_equal(le(t + 220 + 4, 8), 0);      /* X_GPE0_BLK */

	/* DSDT and X_DSDT agree and lead to the DSDT. */
	assert_int_equal(le(t + 40, 4), le(t + 140, 8));
	table(&f->mem, le(t + 40, 4), "DSDT");

	/* FACS: 32-bit pointer only, 64-byte aligned, no checksum. */
	assert_int_equal(le(t + 132, 8), 0);
	assert_int_equal(le(t + 36, 4) % 64, 0);
	facs = at(&f->mem, le(t + 36, 4), 64);
	assert_memory_equal(facs, "FACS", 4);
	assert_int_equal(le(facs + 4, 4), 64);
	assert_int_equal(facs[32], 2);                /* version */
}

static void test_fadt_without_rtc_and_8042(void **state)
{
	struct fixture *f = *state;
	struct acpi_config cfg = acpi_config_pc(1);
	const uint8_t *t, *d;

	cfg.rtc = false;
	cfg.i8042 = false;
	cfg.pm_base = 0xb000;
	build(f, &cfg);
	t = find(f, "FACP", NULL);
	assert_int_equal(le(t + 109, 2) & 0x23, 0x21); /* legacy, no 8042, no RTC */
	assert_int_equal(le(t + 56, 4), 0xb000);
	assert_int_equal(le(t + 64, 4), 0xb004);
	assert_int_equal(le(t + 76, 4), 0xb008);
	assert_gas(t + 208, 32, 3, 0xb008);
	d = table(&f->mem, le(t + 40, 4), "DSDT");
	assert_false(contains(d, le(d + 4, 4), "RTC_", 4));
	assert_true(contains(d, le(d + 4, 4), "COM1", 4));
}

/* ---- DSDT ----------------------------------------------------------------- */

/* Decode a PkgLength at @p: the length value, and its size in @n. */
static uint32_t pkglen(const uint8_t *p, unsigned *n)
{
	unsigned follow = p[0] >> 6;
	uint32_t v = follow ? p[0] & 0xf : p[0] & 0x3f;

	for (unsigned i = 0; i < follow; i++)
		v |= (uint32_t)p[1 + i] << (4 + 8 * i);
	*n = 1 + follow;
	return v;
}

/* EisaId("PNP0A03") as it sits in the AML stream. */
static const uint8_t pnp0a03[] = { 0x0c, 0x41, 0xd0, 0x0a, 0x03 };

static void test_dsdt(void **state)
{
	struct fixture *f = *state;
	/* Name (\_S5, Package (4) { 5, 5, Zero, Zero }) */
	static const uint8_t s5[] = { 0x08, '\\', '_', 'S', '5', '_', 0x12, 0x08, 0x04,
				      0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00 };
	static const char *const devices[] = { "PCI0", "COM1", "RTC_" };
	struct acpi_config cfg = acpi_config_pc(4);
	const uint8_t *fadt, *d, *p;
	uint32_t len, scope_len;
	unsigned n, ndev = 0;

	build(f, &cfg);
	fadt = find(f, "FACP", NULL);
	d = table(&f->mem, le(fadt + 40, 4), "DSDT");
	len = (uint32_t)le(d + 4, 4);
	assert_int_equal(d[8], 2);                    /* 64-bit integers */

	/* The body: Name (\_S5 ...), then one Scope (\_SB) to the end. */
	assert_memory_equal(d + 36, s5, sizeof(s5));
	p = d + 36 + sizeof(s5);
	assert_int_equal(p[0], 0x10);                 /* ScopeOp */
	scope_len = pkglen(p + 1, &n);
	assert_int_equal(1 + scope_len, d + len - p); /* the scope ends the table */
	assert_true(n >= 2);                          /* long enough for a 2-byte PkgLength */
	assert_memory_equal(p + 1 + n, "\\_SB_", 5);

	/* The scope holds exactly the devices, back to back. */
	for (const uint8_t *q = p + 1 + n + 5; q < d + len; ndev++) {
		uint32_t dev_len;
		unsigned m;

		assert_true(ndev < 3);
		assert_int_equal(q[0], 0x5b);             /* ExtOpPrefix */
		assert_int_equal(q[1], 0x82);             /* DeviceOp */
		dev_len = pkglen(q + 2, &m);
		assert_memory_equal(q + 2 + m, devices[ndev], 4);
		assert_true(q + 2 + dev_len <= d + len);
		if (ndev == 0)
			assert_true(contains(q, 2 + dev_len, pnp0a03, sizeof(pnp0a03)));
		q += 2 + dev_len;
	}
	assert_int_equal(ndev, 3);
}

/*
 * Every Name (_CRS, Buffer) in the DSDT: its BufferSize matches the bytes
 * inside the package and they end with the end tag.  The count.
 */
static unsigned crs_buffers(const uint8_t *d, uint32_t len)
{
	unsigned count = 0;

	for (uint32_t i = 36; i + 6 < len; i++) {
		const uint8_t *b = d + i + 5;
		uint32_t pkg, size;
		unsigned n, isize;

		if (memcmp(d + i, "\x08_CRS\x11", 6))
			continue;
		pkg = pkglen(b + 1, &n);
		assert_true(b[1 + n] == 0x0a || b[1 + n] == 0x0b);   /* Byte/WordConst */
		isize = b[1 + n] == 0x0a ? 1 : 2;
		size = (uint32_t)le(b + 2 + n, isize);
		assert_int_equal(size, pkg - n - 1 - isize);
		assert_true(b + 1 + pkg <= d + len);
		assert_int_equal(b[1 + pkg - 2], 0x79);                 /* end tag */
		assert_int_equal(b[1 + pkg - 1], 0x00);
		count++;
	}
	return count;
}

/* The resource templates end with an end tag and declare what they should. */
static void test_dsdt_resources(void **state)
{
	struct fixture *f = *state;
	struct acpi_config cfg = acpi_config_pc(1);
	/* IO (Decode16, 0x3F8, 0x3F8, 1, 8), IRQNoFlags () { 4 }, EndTag */
	static const uint8_t com1[] = { 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,
					0x22, 0x10, 0x00, 0x79, 0x00 };
	/* IO (Decode16, 0xCF8, 0xCF8, 1, 8) */
	static const uint8_t cf8[] = { 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08 };
	/* WordBusNumber (ResourceProducer, MinFixed, MaxFixed, ..., 0, 0, 0xFF, 0, 0x100) */
	static const uint8_t bus[] = { 0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00,
				       0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x01 };
	const uint8_t *fadt, *d;
	uint32_t len;

	build(f, &cfg);
	fadt = find(f, "FACP", NULL);
	d = table(&f->mem, le(fadt + 40, 4), "DSDT");
	len = (uint32_t)le(d + 4, 4);
	assert_true(contains(d, len, com1, sizeof(com1)));
	assert_true(contains(d, len, cf8, sizeof(cf8)));
	assert_true(contains(d, len, bus, sizeof(bus)));
	assert_int_equal(crs_buffers(d, len), 3);     /* PCI0, COM1, RTC_ */
}

/* ---- layout and errors ---------------------------------------------------- */

static void test_tables_in_area_and_disjoint(void **state)
{
	struct fixture *f = *state;
	struct acpi_config cfg = acpi_config_pc(64);
	uint64_t start[5], end[5];
	const char *sigs[] = { "FACP", "APIC" };
	unsigned n = 0;
	const uint8_t *r = build(f, &cfg), *fadt;

	start[n] = le(r + 16, 4);
	end[n] = start[n] + le(table(&f->mem, start[n], "RSDT") + 4, 4), n++;
	start[n] = le(r + 24, 8);
	end[n] = start[n] + le(table(&f->mem, start[n], "XSDT") + 4, 4), n++;
	for (unsigned i = 0; i < 2; i++) {
		const uint8_t *t = find(f, sigs[i], &start[n]);

		end[n] = start[n] + le(t + 4, 4), n++;
	}
	fadt = find(f, "FACP", NULL);
	start[n] = le(fadt + 40, 4);
	end[n] = start[n] + le(at(&f->mem, start[n], 8) + 4, 4), n++;
	for (unsigned i = 0; i < n; i++) {
		assert_true(start[i] >= 0xE0000 + 36);    /* behind the RSDP */
		assert_true(end[i] <= ACPI_AREA_END);
		for (unsigned j = 0; j < i; j++)
			assert_true(end[i] <= start[j] || end[j] <= start[i]);
	}
}

/* A smaller machine after a larger one leaves no stale entries behind. */
static void test_rebuild_shrinks(void **state)
{
	struct fixture *f = *state;
	struct acpi_config big = acpi_config_pc(64), small = acpi_config_pc(1);
	const uint8_t *m;

	build(f, &big);
	build(f, &small);
	m = find(f, "APIC", NULL);
	assert_int_equal(le(m + 4, 4), 44 + 8 + 12 + 20 + 6);
}

static void test_bad_config(void **state)
{
	struct fixture *f = *state;
	const struct acpi_config good = acpi_config_pc(2);
	struct acpi_config cfg;
	uint64_t rsdp = 123;

	cfg = good, cfg.ncpus = 0;
	assert_int_equal(acpi_build(&f->mem, &cfg, &rsdp), -EINVAL);
	cfg = good, cfg.ncpus = 65;
	assert_int_equal(acpi_build(&f->mem, &cfg, &rsdp), -EINVAL);
	cfg = good, cfg.sci_irq = 2;
	assert_int_equal(acpi_build(&f->mem, &cfg, &rsdp), -EINVAL);
	cfg = good, cfg.sci_irq = 16;
	assert_int_equal(acpi_build(&f->mem, &cfg, &rsdp), -EINVAL);
	cfg = good, cfg.ioapic_addr = 0x100000000ull;
	assert_int_equal(acpi_build(&f->mem, &cfg, &rsdp), -EINVAL);
	cfg = good, cfg.pm_base = 0xfffa;
	assert_int_equal(acpi_build(&f->mem, &cfg, &rsdp), -EINVAL);
	assert_int_equal(rsdp, 123);
	assert_untouched(f->mem.region[0].host, f->mem.region[0].size, FILL);

	cfg = good, cfg.ncpus = 64;
	assert_int_equal(acpi_build(&f->mem, &cfg, &rsdp), 0);
}

/*
 * RAM that ends inside (or before) the ACPI area: an error, and not one
 * byte written, inside RAM or in the host buffer behind it.
 */
static void test_small_memory(void **state)
{
	static const uint64_t sizes[] = { 0xE8000, 0xE0000, 0x80000, 0xEFFFF };
	const size_t host_len = MiB;
	uint8_t *host = malloc(host_len);
	struct acpi_config cfg = acpi_config_pc(4);
	uint64_t rsdp = 0;

	(void)state;
	assert_non_null(host);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct guest_memory mem = table_mem_over(host, sizes[i]);

		memset(host, FILL, host_len);
		assert_int_equal(acpi_build(&mem, &cfg, &rsdp), -EFAULT);
		assert_untouched(host, host_len, FILL);
	}
	free(host);
}

/* ---- dump ----------------------------------------------------------------- */

static void assert_file(const char *dir, const char *name, const uint8_t *want, size_t len)
{
	char path[512];
	uint8_t buf[4096];
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "rb");
	if (!fp)
		fail_msg("%s missing", path);
	n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	assert_int_equal(n, len);
	assert_memory_equal(buf, want, len);
	unlink(path);
}

static void test_dump(void **state)
{
	struct fixture *f = *state;
	struct acpi_config cfg = acpi_config_pc(4);
	char dir[] = "/tmp/test_acpi.XXXXXX";
	char sub[64];
	const uint8_t *r, *fadt;
	static const char *const sigs[] = { "APIC", "FACP" };

	r = build(f, &cfg);
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/tables", dir);    /* created by the dump */
	assert_int_equal(acpi_dump(&f->mem, 0xE0000, sub), 0);
	assert_file(sub, "RSDP.dat", r, 36);
	assert_file(sub, "RSDT.dat", table(&f->mem, le(r + 16, 4), "RSDT"), 44);
	assert_file(sub, "XSDT.dat", table(&f->mem, le(r + 24, 8), "XSDT"), 52);
	for (unsigned i = 0; i < 2; i++) {
		const uint8_t *t = find(f, sigs[i], NULL);
		char name[16];

		snprintf(name, sizeof(name), "%s.dat", sigs[i]);
		assert_file(sub, name, t, le(t + 4, 4));
	}
	fadt = find(f, "FACP", NULL);
	assert_file(sub, "DSDT.dat", at(&f->mem, le(fadt + 40, 4), 36),
		    le(at(&f->mem, le(fadt + 40, 4), 8) + 4, 4));
	assert_file(sub, "FACS.dat", at(&f->mem, le(fadt + 36, 4), 64), 64);
	assert_int_equal(rmdir(sub), 0);              /* nothing else was written */
	assert_int_equal(rmdir(dir), 0);
}

static void remove_in(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(unlink(path), 0);
}

static void test_dump_without_tables(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/test_acpi.XXXXXX";
	struct acpi_config cfg = acpi_config_pc(1);
	uint8_t *x;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(acpi_dump(&f->mem, 0xE0000, dir), -EINVAL);     /* no RSDP */
	assert_int_equal(acpi_dump(&f->mem, 0xFFFFFFF0ull, dir), -EINVAL); /* not RAM */
	build(f, &cfg);
	/* A corrupt XSDT signature is refused, not followed. */
	x = gpa_ptr(&f->mem, le(at(&f->mem, 0xE0000, 36) + 24, 8), 4);
	x[0] = 'Y';
	assert_int_equal(acpi_dump(&f->mem, 0xE0000, dir), -EINVAL);
	remove_in(dir, "RSDP.dat");                   /* written before the XSDT */
	remove_in(dir, "RSDT.dat");
	assert_int_equal(rmdir(dir), 0);              /* and nothing else */
}

/* ---- dump mode for tests/acpi/run.sh -------------------------------------- */

static int dump_mode(const char *dir, unsigned ncpus)
{
	struct guest_memory mem;
	struct acpi_config cfg = acpi_config_pc(ncpus);
	uint64_t rsdp;
	int err = guest_memory_init(&mem, 16 * MiB);

	if (!err)
		err = acpi_build(&mem, &cfg, &rsdp);
	if (!err)
		err = acpi_dump(&mem, rsdp, dir);
	if (err)
		fprintf(stderr, "acpi dump: %s\n", strerror(-err));
	guest_memory_free(&mem);
	return err ? 1 : 0;
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_rsdp),
		T(test_rsdt_xsdt_agree),
		T(test_madt),
		T(test_madt_config),
		T(test_fadt),
		T(test_fadt_without_rtc_and_8042),
		T(test_dsdt),
		T(test_dsdt_resources),
		T(test_tables_in_area_and_disjoint),
		T(test_rebuild_shrinks),
		T(test_bad_config),
		cmocka_unit_test(test_small_memory),
		T(test_dump),
		T(test_dump_without_tables),
	};

	if (argc >= 3 && !strcmp(argv[1], "--dump-acpi"))
		return dump_mode(argv[2], argc > 3 ? (unsigned)atoi(argv[3]) : 2);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
