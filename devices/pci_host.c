/*
 * PCI configuration mechanism #1 (ports 0xCF8/0xCFC) with a host bridge
 * at 00:00.0 and nothing else on the bus.
 *
 * State:    stable.
 * Features: CONFIG_ADDRESS: dword accesses at 0xCF8 write it and read it
 *           back with the reserved bits (30-24, 1-0) as 0.  CONFIG_DATA:
 *           byte, word and dword accesses at 0xCFC-0xCFF reach the
 *           register CONFIG_ADDRESS selects plus the port's offset, when
 *           the enable bit (31) is set.  Every bus/device/function reads
 *           all ones (vendor 0xFFFF: no device) and ignores writes, except
 *           the host bridge: Intel 82441FX (i440FX, 8086:1237, revision 2,
 *           class 06 00 00), header type 0, no BARs, no capabilities; the
 *           command register (I/O, memory, bus master), cache line size,
 *           latency timer and interrupt line are writable, the rest reads
 *           as the table below has it.  "pcihost:nobridge" leaves 00:00.0
 *           empty as well.
 * Why a bridge: Linux accepts mechanism #1 only if, after the 0x80000000
 *           read-back test, bus 0 holds a host bridge, a VGA device or an
 *           Intel/Compaq device (pci_sanity_check(), skipped only when the
 *           DMI BIOS date is 2001 or later: we have no DMI).  Without one
 *           it finds no config access at all ("PCI: Fatal: No config space
 *           access function found"), though the DSDT declares a PCI root
 *           bridge.  The i440FX is the host bridge Linux knows best
 *           (QEMU's default machine).
 * Missing:  any other device; the i440FX's chipset registers (PAM, SMRAM,
 *           DRAM rows) read 0 and ignore writes; status register error
 *           bits; mechanism #2 (byte accesses to 0xCF8 and 0xCFA-0xCFB are
 *           not decoded: reads give all ones, so Linux's mechanism #2 probe
 *           fails, as it should); MMCONFIG (no MCFG table).
 * Spec:     PCI Local Bus Specification 3.0, section 3.2.2.3.2
 *           (configuration mechanism #1) and chapter 6 (the header);
 *           Intel 82441FX PCMC datasheet (IDs).
 *
 * Snapshot: section "pcihost" instance 0: CONFIG_ADDRESS (the latch a
 *           guest may be between writing and using) and the bridge's
 *           config space; its read-only bytes must load as they are, and
 *           "nobridge" must match.
 *
 * Ports:    0xCF8 (1 port: dword accesses start here), 0xCFA-0xCFB and
 *           0xCFC-0xCFF; 0xCF9 in between is the Reset Control Register
 *           (reset.c).  The port bus routes an access by its first port,
 *           which is how the PIIX decodes them: a dword at 0xCF8 is
 *           CONFIG_ADDRESS, a byte at 0xCF9 is the RCR.  Serialized (I/O
 *           thread or global lock): the address/data pair is plain state.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "bus/message.h"
#include "bus/range.h"
#include "devices/restore.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#define PCI_CONFIG_ADDRESS 0xCF8
#define PCI_CONFIG_HIGH    0xCFA       /* bytes 2-3 of the CONFIG_ADDRESS dword */
#define PCI_CONFIG_DATA    0xCFC
#define CA_ENABLE          0x80000000u
#define CA_MASK            0x80fffffcu /* enable, bus, device, function, register */

/* The host bridge's header: offset, size, value, writable bits. */
struct cfg_reg {
	uint8_t off, size;
	uint32_t value, wmask;
};

static const struct cfg_reg bridge_regs[] = {
	{ 0x00, 2, 0x8086, 0 },          /* vendor: Intel */
	{ 0x02, 2, 0x1237, 0 },          /* device: 82441FX */
	{ 0x04, 2, 0x0006, 0x0007 },     /* command: memory + master, as a BIOS leaves it */
	{ 0x06, 2, 0x0000, 0 },          /* status: no capabilities */
	{ 0x08, 1, 0x02, 0 },            /* revision */
	{ 0x09, 3, 0x060000, 0 },        /* class: host bridge */
	{ 0x0c, 1, 0x00, 0xff },         /* cache line size */
	{ 0x0d, 1, 0x00, 0xff },         /* latency timer */
	{ 0x0e, 1, 0x00, 0 },            /* header type 0, single function */
	{ 0x3c, 1, 0x00, 0xff },         /* interrupt line */
};

struct pci_host {
	struct vm *vm;
	uint32_t address;               /* CONFIG_ADDRESS */
	bool bridge;
	uint8_t cfg[256], wmask[256];   /* the bridge's config space */
};

static void bridge_init(struct pci_host *h)
{
	for (size_t i = 0; i < sizeof(bridge_regs) / sizeof(bridge_regs[0]); i++) {
		const struct cfg_reg *r = &bridge_regs[i];

		for (unsigned b = 0; b < r->size; b++) {
			h->cfg[r->off + b] = (uint8_t)(r->value >> (8 * b));
			h->wmask[r->off + b] = (uint8_t)(r->wmask >> (8 * b));
		}
	}
}

/* The register CONFIG_ADDRESS selects, if it is the bridge's; else -1. */
static int bridge_offset(const struct pci_host *h)
{
	if (!h->bridge || !(h->address & CA_ENABLE) || (h->address & 0x00ffff00u))
		return -1;                       /* disabled, or not bus 0 dev 0 fn 0 */
	return (int)(h->address & 0xfc);
}

static void data_access(struct pci_host *h, unsigned lane, struct msg_pio *msg)
{
	int base = bridge_offset(h);
	uint32_t value = 0;

	for (unsigned i = 0; i < msg->size && i < 4; i++) {
		unsigned off = (unsigned)base + lane + i;
		uint8_t byte = (uint8_t)(msg->value >> (8 * i));

		if (base < 0 || lane + i >= 4) {
			value |= 0xffu << (8 * i);   /* no device, or past 0xCFF */
		} else if (msg->write) {
			h->cfg[off] = (uint8_t)((h->cfg[off] & ~h->wmask[off]) |
						(byte & h->wmask[off]));
		} else {
			value |= (uint32_t)h->cfg[off] << (8 * i);
		}
	}
	if (!msg->write)
		msg->value = value;
}

static bool pci_host_pio(void *dev, uint64_t addr, void *m)
{
	struct pci_host *h = dev;
	struct msg_pio *msg = m;

	if (addr >= PCI_CONFIG_DATA) {
		data_access(h, (unsigned)(addr - PCI_CONFIG_DATA), msg);
	} else if (addr == PCI_CONFIG_ADDRESS && msg->size == 4) {
		if (msg->write)
			h->address = msg->value & CA_MASK;
		else
			msg->value = h->address;
	} else if (!msg->write) {
		msg->value = 0xffffffffu;        /* not CONFIG_ADDRESS: an empty port */
		if (msg->size < 4)
			msg->value &= (1u << (8 * msg->size)) - 1;
	}
	return true;
}

/* ---- Snapshots ---- */

#define PCI_HOST_STATE_VERSION 1

static void pci_host_save(struct pci_host *h, struct stream *s)
{
	stream_section_begin(s, "pcihost", 0, PCI_HOST_STATE_VERSION);
	stream_put_u32(s, h->address);
	stream_put_u8(s, h->bridge);
	stream_put(s, h->cfg, sizeof(h->cfg));
	stream_section_end(s);
}

static int pci_host_load(struct pci_host *h, struct stream *s)
{
	uint8_t cfg[sizeof(h->cfg)], bridge;
	uint32_t address;

	if (stream_section_open(s, "pcihost", 0, PCI_HOST_STATE_VERSION, NULL))
		return stream_error(s);
	address = stream_get_u32(s);
	bridge = stream_get_u8(s);
	stream_get(s, cfg, sizeof(cfg));
	if (stream_section_close(s))
		return stream_error(s);
	if (address & ~CA_MASK || bridge != h->bridge)
		return stream_fail(s, -EINVAL, "pcihost: bad CONFIG_ADDRESS %#x, or a host bridge "
				   "%s", address, bridge ? "where there is none" : "missing");
	for (unsigned i = 0; i < sizeof(cfg); i++)
		if ((cfg[i] ^ h->cfg[i]) & ~h->wmask[i])
			return stream_fail(s, -EINVAL, "pcihost: read-only config byte %#x "
					   "changed (%#x)", i, cfg[i]);
	h->address = address;
	memcpy(h->cfg, cfg, sizeof(cfg));
	return 0;
}

RESTORE_RECEIVER(pci_host_restore_receive, struct pci_host, pci_host_save, pci_host_load)

static const struct { uint16_t port, len; } ranges[] = {
	{ PCI_CONFIG_ADDRESS, 1 }, { PCI_CONFIG_HIGH, 2 }, { PCI_CONFIG_DATA, 4 },
};

static void pci_host_destroy(void *ctx)
{
	struct pci_host *h = ctx;

	bus_detach(h->vm->bus.restore, pci_host_restore_receive, h);
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
		range_bus_remove(h->vm->bus.pio, ranges[i].port);
	free(h);
}

static int pci_host_create(struct vm *vm, const char *args)
{
	struct pci_host *h;
	size_t i;

	if (*args && strcmp(args, "nobridge")) {
		pr_err("pcihost: unknown argument '%s' (want nothing or 'nobridge')", args);
		return -EINVAL;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->vm = vm;
	h->bridge = !*args;
	if (h->bridge)
		bridge_init(h);
	for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		const uint16_t port = ranges[i].port, len = ranges[i].len;

		if (range_bus_add(vm->bus.pio, port, len, pci_host_pio, false, h))
			goto fail;
	}
	if (bus_attach(vm->bus.restore, pci_host_restore_receive, NULL, h))
		goto fail;
	vm_at_exit(vm, pci_host_destroy, h);
	return 0;
fail:
	while (i--)
		range_bus_remove(vm->bus.pio, ranges[i].port);
	pr_err("pcihost: ports 0xcf8, 0xcfa-0xcff taken");
	free(h);
	return -EEXIST;
}

DEVICE_MODEL(pci_host_model,
	.name = "pcihost",
	.help = "pcihost[:nobridge]  PCI config mechanism #1 at 0xcf8/0xcfc: i440FX host bridge "
		"at 00:00.0, nothing else",
	.create = pci_host_create);
