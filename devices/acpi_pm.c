/*
 * ACPI PM block: PM1a event and control registers and the PM timer, at
 * the ports the FADT announces (vmm/acpi.h: 0x600 by default).
 *
 * State:    stable.
 * Features: PM1_STS (base+0, 16 bits): TMR_STS set whenever bit 23 of the
 *           timer toggles, write 1 to clear; the other status bits clear
 *           the same way but no event here sets them.  PM1_EN (base+2):
 *           TMR_EN, GBL_EN, PWRBTN_EN, SLPBTN_EN, RTC_EN stored, reserved
 *           bits read 0.  PM1_CNT (base+4): SCI_EN reads 1 always (no SMM:
 *           the FADT's SMI_CMD is 0, so the OS finds ACPI mode already on),
 *           BM_RLS and SLP_TYP stored, GBL_RLS and SLP_EN write-only (read
 *           0).  SLP_EN with SLP_TYP 5 (the DSDT's \_S5) powers off: the
 *           VMM exits with status 0; other sleep types are logged and
 *           ignored.  PM_TMR (base+8): 24-bit counter at 3.579545 MHz from
 *           the VM clock (so it stops while the VM is paused), bits 24-31
 *           read 0 (the FADT leaves TMR_VAL_EXT clear).  Any access size;
 *           a wider access covers consecutive registers byte by byte.
 * Missing:  the SCI (IRQ 9): no event source raises it (no power or sleep
 *           button, no timer-carry interrupt: TMR_EN is stored only);
 *           sleep states S1-S4; GBL_RLS does not signal the BIOS (there is
 *           none); PM1b, GPE blocks.
 * Spec:     ACPI 6.4 section 4.8 (fixed hardware registers: 4.8.3.1 PM1
 *           event, 4.8.3.2 PM1 control, 4.8.3.3 PM timer); Intel 82371AB
 *           PIIX4 datasheet, power management I/O registers.
 *
 * Snapshot: section "acpipm", instance = base port: PM1_STS/EN/CNT and
 *           the timer half-period TMR_STS was last cleared in, in ticks of
 *           the VM clock; the snapshot restores that clock first, so the
 *           PM timer reads on from where it stood.  No line (no SCI).
 *
 * Ports:    base..base+5 (PM1_STS, PM1_EN, PM1_CNT) are serialized (I/O
 *           thread or global lock): plain state.  base+8..base+11 (PM_TMR)
 *           is claimed: it only reads the clock, so it runs on the vCPU
 *           thread and a guest polling it does not queue on the I/O
 *           thread.  base+6, base+7 stay unassigned (an empty port).
 */
#include <errno.h>
#include <stdlib.h>
#include "bus/message.h"
#include "bus/range.h"
#include "devices/acpi_pm.h"
#include "vmm/acpi.h"
#include "devices/restore.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/timer.h"
#include "vmm/vm.h"

#define NS_PER_S 1000000000u

/* PM1_STS bits that write-1-to-clear (ACPI table 4.16). */
#define PM1_STS_W1C   (ACPI_PM1_TMR | (1u << 4) | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | \
		       ACPI_PM1_SLPBTN | ACPI_PM1_RTC | (1u << 14) | ACPI_PM1_WAK)
/* PM1_EN bits: TMR_EN, GBL_EN, PWRBTN_EN, SLPBTN_EN, RTC_EN. */
#define PM1_EN_MASK   (ACPI_PM1_TMR | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | \
		       ACPI_PM1_RTC)
#define PM1_BM_RLS    (1u << 1)
/* PM1_CNT bits that read back as written. */
#define PM1_CNT_RW    (PM1_BM_RLS | ACPI_SLP_TYP_MASK)

#define PM1_LEN       6            /* PM1_STS, PM1_EN, PM1_CNT */
#define TMR_LEN       4

struct acpi_pm {
	struct vm *vm;
	uint16_t base;
	acpi_pm_clock_fn clock;
	void *clock_ctx;
	/* Serialized state. */
	uint16_t sts;                 /* status bits other than TMR_STS */
	uint64_t tmr_half;            /* ticks >> 23 when TMR_STS was last clear */
	uint16_t en;
	uint16_t cnt;                 /* PM1_CNT_RW bits */
};

static uint64_t ticks_at(uint64_t ns)
{
	return (uint64_t)((unsigned __int128)ns * ACPI_PM_TMR_HZ / NS_PER_S);
}

uint32_t acpi_pm_timer_at(uint64_t ns)
{
	return (uint32_t)(ticks_at(ns) & 0xffffffu);
}

static uint64_t pm_now(const struct acpi_pm *pm)
{
	return pm->clock(pm->clock_ctx);
}

static uint64_t vm_clock(void *ctx)
{
	return vm_clock_ns(ctx);
}

/* ---- PM1 event and control: 16-bit registers, written by byte lanes ---- */

static uint16_t pm1_read(const struct acpi_pm *pm, unsigned off)
{
	switch (off) {
	case ACPI_PM1_STS: {
		bool tmr = ticks_at(pm_now(pm)) >> 23 != pm->tmr_half;

		return (uint16_t)(pm->sts | (tmr ? ACPI_PM1_TMR : 0));
	}
	case ACPI_PM1_EN:
		return pm->en;
	case ACPI_PM1_CNT:
		return (uint16_t)(pm->cnt | ACPI_PM1_SCI_EN);
	}
	return 0xffff;
}

static void pm1_sleep(struct acpi_pm *pm)
{
	unsigned typ = (pm->cnt & ACPI_SLP_TYP_MASK) >> ACPI_SLP_TYP_SHIFT;

	if (typ == ACPI_SLP_TYP_S5) {
		pr_info("acpipm: guest entered S5 (soft off): exiting");
		vm_request_exit(pm->vm, 0);
		return;
	}
	pr_warn("acpipm: unsupported sleep state (SLP_TYP %u) ignored", typ);
}

/* @mask says which bits the access covers (its byte lanes). */
static void pm1_write(struct acpi_pm *pm, unsigned off, uint16_t value, uint16_t mask)
{
	value &= mask;
	switch (off) {
	case ACPI_PM1_STS:
		if (value & ACPI_PM1_TMR)
			pm->tmr_half = ticks_at(pm_now(pm)) >> 23;
		pm->sts &= (uint16_t)~(value & PM1_STS_W1C);
		break;
	case ACPI_PM1_EN:
		pm->en = (uint16_t)((pm->en & ~mask) | (value & PM1_EN_MASK));
		break;
	case ACPI_PM1_CNT:
		pm->cnt = (uint16_t)((pm->cnt & ~mask) | (value & PM1_CNT_RW));
		if (value & ACPI_SLP_EN)
			pm1_sleep(pm);
		break;
	}
}

/*
 * The write lanes of one access go to pm1_write one byte at a time; PM1_CNT
 * must see SLP_TYP and SLP_EN of a 16-bit write together, and it does: both
 * sit in the high byte.
 */
static bool pm1_pio(void *dev, uint64_t addr, void *m)
{
	struct acpi_pm *pm = dev;
	struct msg_pio *msg = m;
	unsigned first = (unsigned)(addr - pm->base);
	uint32_t value = 0;

	for (unsigned i = 0; i < msg->size && i < 4; i++) {
		unsigned off = first + i, reg = off & ~1u, shift = 8 * (off & 1);

		if (off >= PM1_LEN) {
			value |= 0xffu << (8 * i);
		} else if (msg->write) {
			uint16_t byte = (uint16_t)((msg->value >> (8 * i)) & 0xff);

			pm1_write(pm, reg, (uint16_t)(byte << shift), (uint16_t)(0xff << shift));
		} else {
			value |= (uint32_t)((pm1_read(pm, reg) >> shift) & 0xff) << (8 * i);
		}
	}
	if (!msg->write)
		msg->value = value;
	return true;
}

/* ---- PM timer: claimed, any thread ---- */

static bool tmr_pio(void *dev, uint64_t addr, void *m)
{
	struct acpi_pm *pm = dev;
	struct msg_pio *msg = m;
	unsigned first = (unsigned)(addr - pm->base - ACPI_PM_TMR);
	uint32_t tmr, value = 0;

	if (msg->write)
		return true;                 /* read-only */
	tmr = acpi_pm_timer_at(pm_now(pm));  /* one sample for every byte */
	for (unsigned i = 0; i < msg->size && i < 4; i++) {
		unsigned off = first + i;

		value |= (off < TMR_LEN ? (tmr >> (8 * off)) & 0xff : 0xff) << (8 * i);
	}
	msg->value = value;
	return true;
}

void acpi_pm_set_clock(struct acpi_pm *pm, acpi_pm_clock_fn fn, void *ctx)
{
	pm->clock = fn ? fn : vm_clock;
	pm->clock_ctx = fn ? ctx : pm->vm;
	pm->tmr_half = ticks_at(pm_now(pm)) >> 23;
}

/* ---- Snapshots (the VM is paused: neither port runs) ---- */

#define ACPI_PM_STATE_VERSION 1

static void acpi_pm_save(struct acpi_pm *pm, struct stream *s)
{
	stream_section_begin(s, "acpipm", pm->base, ACPI_PM_STATE_VERSION);
	stream_put_u32(s, pm->sts);
	stream_put_u32(s, pm->en);
	stream_put_u32(s, pm->cnt);
	stream_put_u64(s, pm->tmr_half);
	stream_section_end(s);
}

static int acpi_pm_load(struct acpi_pm *pm, struct stream *s)
{
	uint32_t sts, en, cnt;
	uint64_t half;

	if (stream_section_open(s, "acpipm", pm->base, ACPI_PM_STATE_VERSION, NULL))
		return stream_error(s);
	sts = stream_get_u32(s);
	en = stream_get_u32(s);
	cnt = stream_get_u32(s);
	half = stream_get_u64(s);
	if (stream_section_close(s))
		return stream_error(s);
	if (sts & ~(PM1_STS_W1C & ~ACPI_PM1_TMR) || en & ~PM1_EN_MASK || cnt & ~PM1_CNT_RW)
		return stream_fail(s, -EINVAL, "acpipm: bad PM1 registers (STS %#x, EN %#x, "
				   "CNT %#x)", sts, en, cnt);
	if (half > ticks_at(pm_now(pm)) >> 23)
		return stream_fail(s, -EINVAL, "acpipm: timer status from after the VM clock");
	pm->sts = (uint16_t)sts;
	pm->en = (uint16_t)en;
	pm->cnt = (uint16_t)cnt;
	pm->tmr_half = half;
	return 0;
}

RESTORE_RECEIVER(acpi_pm_restore_receive, struct acpi_pm, acpi_pm_save, acpi_pm_load)

struct acpi_pm *acpi_pm_create(struct vm *vm, uint16_t base)
{
	struct acpi_pm *pm;

	if (base > 0x10000 - ACPI_PM_SIZE)
		return NULL;
	pm = calloc(1, sizeof(*pm));
	if (!pm)
		return NULL;
	pm->vm = vm;
	pm->base = base;
	acpi_pm_set_clock(pm, NULL, NULL);
	if (range_bus_add(vm->bus.pio, base, PM1_LEN, pm1_pio, false, pm))
		goto fail;
	if (range_bus_add(vm->bus.pio, base + ACPI_PM_TMR, TMR_LEN, tmr_pio, true, pm))
		goto fail_pm1;
	if (bus_attach(vm->bus.restore, acpi_pm_restore_receive, NULL, pm))
		goto fail_tmr;
	return pm;
fail_tmr:
	range_bus_remove(vm->bus.pio, base + ACPI_PM_TMR);
fail_pm1:
	range_bus_remove(vm->bus.pio, base);
fail:
	free(pm);
	return NULL;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	if (!pm)
		return;
	bus_detach(pm->vm->bus.restore, acpi_pm_restore_receive, pm);
	range_bus_remove(pm->vm->bus.pio, pm->base + ACPI_PM_TMR);
	range_bus_remove(pm->vm->bus.pio, pm->base);
	free(pm);
}

static void acpi_pm_destroy_hook(void *ctx)
{
	acpi_pm_destroy(ctx);
}

static int acpi_pm_model_create(struct vm *vm, const char *args)
{
	unsigned long base = ACPI_PM_BASE;
	struct acpi_pm *pm;
	char *end;

	if (*args) {
		base = strtoul(args, &end, 0);
		if (end == args || *end || base > 0x10000 - ACPI_PM_SIZE) {
			pr_err("acpipm: bad base port '%s'", args);
			return -EINVAL;
		}
	}
	pm = acpi_pm_create(vm, (uint16_t)base);
	if (!pm) {
		pr_err("acpipm: ports %#lx-%#lx taken or no memory", base, base + ACPI_PM_SIZE - 1);
		return -EEXIST;
	}
	vm_at_exit(vm, acpi_pm_destroy_hook, pm);
	return 0;
}

DEVICE_MODEL(acpi_pm_model,
	.name = "acpipm",
	.help = "acpipm[:base]  ACPI PM1 event/control and PM timer (default 0x600; S5 exits 0)",
	.create = acpi_pm_model_create);
