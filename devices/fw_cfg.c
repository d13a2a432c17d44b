/*
 * fwcfg: QEMU's firmware configuration device, legacy port interface.
 *
 * State: stable for the items below.
 * Features: selector port 0x510 (a write of the key, 16 bits, selects an
 *   item and rewinds it), data port 0x511 (each byte read returns the next
 *   byte of the item, then zeros; wider reads stream several bytes, low
 *   byte first).  Items: signature "QEMU", ID 1 (traditional interface),
 *   RAM size (u64), number of CPUs and maximum CPUs (u16, both vm->ncpus:
 *   no CPU hotplug).  Items are built when selected, from the VM as it is
 *   then.  Unknown keys read as zeros.
 * Missing: the DMA interface (0x514) and ID bit 1; the file directory
 *   (0x0019) and every file item; writes to items (ignored, as QEMU does
 *   since 2.4); the arch-local keys (0x8000 and up read as zeros).
 * Spec: QEMU docs/specs/fw_cfg.rst ("Selector Register", "Data Register",
 *   "Selector Register/Data Register Interface").
 *
 * Snapshot: section "fwcfg" instance 0: the selected key and the read
 *   offset.  The item is rebuilt from the VM on load (a restore runs on
 *   the same machine configuration), so only the position is state.
 *
 * Serialized (unclaimed range): plain state, one thread at a time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "bus/message.h"
#include "bus/range.h"
#include "devices/fw_cfg.h"
#include "devices/restore.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#define FW_CFG_ITEM_MAX 8

struct fw_cfg {
	struct vm *vm;
	uint16_t key;
	uint32_t offset;
	uint32_t len;
	uint8_t item[FW_CFG_ITEM_MAX];
};

static void put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Build the selected item; an unknown key is an empty one. */
static void fw_cfg_select(struct fw_cfg *fw, uint16_t key)
{
	fw->key = key;
	fw->offset = 0;
	fw->len = 0;
	memset(fw->item, 0, sizeof(fw->item));
	switch (key) {
	case FW_CFG_SIGNATURE:
		memcpy(fw->item, "QEMU", 4);
		fw->len = 4;
		break;
	case FW_CFG_ID:
		put_le(fw->item, 1, 4);
		fw->len = 4;
		break;
	case FW_CFG_RAM_SIZE:
		put_le(fw->item, fw->vm->mem.size, 8);
		fw->len = 8;
		break;
	case FW_CFG_NB_CPUS:
	case FW_CFG_MAX_CPUS:
		put_le(fw->item, fw->vm->ncpus, 2);
		fw->len = 2;
		break;
	default:
		pr_info("fwcfg: unknown key %#x reads as zeros", key);
	}
}

static uint8_t fw_cfg_next_byte(struct fw_cfg *fw)
{
	if (fw->offset >= fw->len)
		return 0;
	return fw->item[fw->offset++];
}

static bool fw_cfg_pio(void *dev, uint64_t addr, void *msg)
{
	struct fw_cfg *fw = dev;
	struct msg_pio *m = msg;

	if (addr == FW_CFG_PORT_SEL) {
		if (m->write)
			fw_cfg_select(fw, (uint16_t)m->value);
		else
			m->value = 0;
		return true;
	}
	if (m->write)   /* item writes are not supported */
		return true;
	m->value = 0;
	for (unsigned i = 0; i < m->size && i < 4; i++)
		m->value |= (uint32_t)fw_cfg_next_byte(fw) << (8 * i);
	return true;
}

/* ---- Snapshots ---- */

#define FW_CFG_STATE_VERSION 1

static void fw_cfg_save(struct fw_cfg *fw, struct stream *s)
{
	stream_section_begin(s, "fwcfg", 0, FW_CFG_STATE_VERSION);
	stream_put_u32(s, fw->key);
	stream_put_u32(s, fw->offset);
	stream_section_end(s);
}

static int fw_cfg_load(struct fw_cfg *fw, struct stream *s)
{
	struct fw_cfg n = { .vm = fw->vm };
	uint32_t key, offset;

	if (stream_section_open(s, "fwcfg", 0, FW_CFG_STATE_VERSION, NULL))
		return stream_error(s);
	key = stream_get_u32(s);
	offset = stream_get_u32(s);
	if (stream_section_close(s))
		return stream_error(s);
	if (key > 0xffff)
		return stream_fail(s, -EINVAL, "fwcfg: bad selector %#x", key);
	fw_cfg_select(&n, (uint16_t)key);
	if (offset > n.len)
		return stream_fail(s, -EINVAL, "fwcfg: offset %u beyond item %#x (%u bytes)",
				   offset, key, n.len);
	n.offset = offset;
	*fw = n;
	return 0;
}

RESTORE_RECEIVER(fw_cfg_restore_receive, struct fw_cfg, fw_cfg_save, fw_cfg_load)

struct fw_cfg *fw_cfg_create(struct vm *vm)
{
	struct fw_cfg *fw = calloc(1, sizeof(*fw));

	if (!fw)
		return NULL;
	fw->vm = vm;
	if (range_bus_add(vm->bus.pio, FW_CFG_PORT_SEL, 2, fw_cfg_pio, false, fw)) {
		free(fw);
		return NULL;
	}
	if (bus_attach(vm->bus.restore, fw_cfg_restore_receive, NULL, fw)) {
		range_bus_remove(vm->bus.pio, FW_CFG_PORT_SEL);
		free(fw);
		return NULL;
	}
	fw_cfg_select(fw, FW_CFG_SIGNATURE);
	return fw;
}

void fw_cfg_destroy(struct fw_cfg *fw)
{
	if (!fw)
		return;
	bus_detach(fw->vm->bus.restore, fw_cfg_restore_receive, fw);
	range_bus_remove(fw->vm->bus.pio, FW_CFG_PORT_SEL);
	free(fw);
}

void fw_cfg_dump(const struct fw_cfg *fw, FILE *f)
{
	fprintf(f, "fwcfg: key %#06x offset %u of %u\n", fw->key, fw->offset, fw->len);
}

static int fw_cfg_model_create(struct vm *vm, const char *args)
{
	struct fw_cfg *fw;

	if (args && *args) {
		pr_err("fwcfg: takes no arguments ('%s')", args);
		return -EINVAL;
	}
	fw = fw_cfg_create(vm);
	if (!fw) {
		pr_err("fwcfg: ports %#x-%#x taken, or out of memory",
		       FW_CFG_PORT_SEL, FW_CFG_PORT_DATA);
		return -EEXIST;
	}
	vm_at_exit(vm, free, fw);
	return 0;
}

DEVICE_MODEL(fw_cfg_model,
	.name = "fwcfg",
	.help = "fwcfg  QEMU firmware config, ports 0x510/0x511: signature, RAM size, CPUs",
	.create = fw_cfg_model_create)
