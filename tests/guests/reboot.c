/*
 * Machine reset (driven by tests/reset/run.sh): every boot must find the
 * machine as at power-on, then resets it again.
 *
 * 1. RAM: an initialised variable must hold its initial value and a BSS
 *    counter must read 0; both are changed right after, so a "reset" that
 *    kept RAM is caught on the next boot.
 * 2. CPUs: the AP must come up through INIT-SIPI exactly once, from a
 *    parked state, on every boot.
 * 3. Reset, by the method= on the command line: "cf9" (the Reset Control
 *    Register, as Linux's reboot=pci: 0x02 then 0x06), "kbd" (the 8042's
 *    pulse command 0xFE) or "fadt" (the reset register and value the FADT
 *    names, found from the RSDP).  The CPU must not get past the write:
 *    the VMM either restarts the machine or exits (--on-reboot).
 *
 * Output per boot: "boot: marker 0x5eed1234 counter 0 cpus 2 method M",
 * then "resetting via M".  Failures print FAIL and exit with status 3.
 * Command line: method=cf9|kbd|fadt (cf9 if absent).
 */
#include "guest.h"
#include "smp.h"
#include "time.h"

#define MARKER 0x5eed1234u

static volatile uint32_t marker = MARKER;   /* .data: from the kernel image */
static volatile uint32_t counter;           /* .bss: zero at power-on */

static const char *method_arg(const char *args)
{
	static const char *const names[] = { "cf9", "kbd", "fadt" };

	for (unsigned i = 0; i < 3; i++) {
		char word[16];

		snprintf(word, sizeof(word), "method=%s", names[i]);
		for (const char *p = args; *p; p++)
			if ((p == args || p[-1] == ' ') && !strncmp(p, word, strlen(word)) &&
			    (p[strlen(word)] == ' ' || !p[strlen(word)]))
				return names[i];
	}
	if (cmdline_has(args, "method"))
		test_fail("unknown method in '%s' (cf9, kbd, fadt)", args);
	return "cf9";
}

/* ---- The FADT's reset register, from the tables as an OS finds them ---- */

struct acpi_header {
	char sig[4];
	uint32_t length;
	uint8_t revision, checksum;
	char oem[6], oem_table[8];
	uint32_t oem_rev, creator, creator_rev;
} __attribute__((packed));

static bool sum_ok(const void *p, uint32_t len)
{
	uint8_t sum = 0;

	for (uint32_t i = 0; i < len; i++)
		sum += ((const uint8_t *)p)[i];
	return sum == 0;
}

/* The RSDP on a 16-byte boundary of the BIOS area, as ACPI says to look. */
static const uint8_t *find_rsdp(void)
{
	for (uintptr_t a = 0xe0000; a < 0x100000; a += 16)
		if (!memcmp((const void *)a, "RSD PTR ", 8) && sum_ok((const void *)a, 20))
			return (const uint8_t *)a;
	return NULL;
}

static const struct acpi_header *find_fadt(void)
{
	const uint8_t *rsdp = find_rsdp();
	const struct acpi_header *rsdt;
	uint32_t n;

	if (!rsdp)
		test_fail("no RSDP in 0xe0000-0xfffff");
	rsdt = (const struct acpi_header *)(uintptr_t)*(const uint32_t *)(rsdp + 16);
	if (memcmp(rsdt->sig, "RSDT", 4) || !sum_ok(rsdt, rsdt->length))
		test_fail("the RSDP's RSDT at %p is not a valid RSDT", (const void *)rsdt);
	n = (rsdt->length - sizeof(*rsdt)) / 4;
	for (uint32_t i = 0; i < n; i++) {
		const uint32_t *entries = (const uint32_t *)(rsdt + 1);
		const struct acpi_header *t = (const struct acpi_header *)(uintptr_t)entries[i];

		if (!memcmp(t->sig, "FACP", 4) && sum_ok(t, t->length))
			return t;
	}
	test_fail("no valid FADT in the RSDT");
}

/* FADT offsets (ACPI 6.4 table 5.9). */
#define FADT_FLAGS        112
#define FADT_RESET_REG    116    /* GAS: space, width, offset, access size, address */
#define FADT_RESET_VALUE  128
#define FADT_RESET_REG_SUP (1u << 10)

static void reset_fadt(void)
{
	const uint8_t *f = (const uint8_t *)find_fadt();
	uint32_t flags = *(const uint32_t *)(f + FADT_FLAGS);
	uint8_t space = f[FADT_RESET_REG], width = f[FADT_RESET_REG + 1];
	uint64_t addr = *(const uint64_t *)(f + FADT_RESET_REG + 4);
	uint8_t value = f[FADT_RESET_VALUE];

	if (!(flags & FADT_RESET_REG_SUP) || space != 1 || width != 8 || addr > 0xffff)
		test_fail("FADT reset register: flags 0x%x, space %u, width %u, address 0x%llx",
			  flags, space, width, (unsigned long long)addr);
	printf("FADT reset register: port 0x%x value 0x%x\n", (unsigned)addr, value);
	outb((uint16_t)addr, value);
}

static void reset_kbd(void)
{
	uint64_t end = deadline_ms(10000);

	while (inb(0x64) & 0x02)                   /* input buffer full */
		if (deadline_passed(end))
			test_fail("the 8042's input buffer never empties");
	outb(0x64, 0xfe);
}

int main(uint32_t magic, const struct mb_info *mbi)
{
	const char *method = method_arg(guest_start("reboot", magic, mbi));
	uint32_t seen_marker = marker, seen_counter = counter;
	uint64_t end;

	marker = 0;
	counter = seen_counter + 1;
	smp_init();
	if (smp_boot(2) != 2 || smp_cpus[1].boots != 1)
		test_fail("CPU 1: online %u, came up %u times, want once", smp_cpus[1].online,
			  smp_cpus[1].boots);
	printf("boot: marker 0x%x counter %u cpus %u method %s\n", seen_marker, seen_counter,
	       smp_online, method);
	if (seen_marker != MARKER || seen_counter != 0)
		test_fail("RAM was not reset: marker 0x%x counter %u", seen_marker, seen_counter);
	printf("resetting via %s\n", method);
	if (!strncmp(method, "kbd", 3))
		reset_kbd();
	else if (!strncmp(method, "fadt", 4))
		reset_fadt();
	else {
		outb(0xcf9, 0x02);
		outb(0xcf9, 0x06);
	}
	/* A generous bound: a reset stops this CPU long before it. */
	end = deadline_ms(10000);
	while (!deadline_passed(end))
		cpu_relax();
	test_fail("still running 10 s after the reset via %s", method);
}
