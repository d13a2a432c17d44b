/*
 * QEMU's firmware configuration interface, legacy port form (selector
 * 0x510, data 0x511).  "fwcfg" creates one through the device registry.
 */
#pragma once
#include <stdint.h>
#include <stdio.h>

struct vm;
struct fw_cfg;

enum fw_cfg_key {
	FW_CFG_SIGNATURE = 0x0000,   /* "QEMU" */
	FW_CFG_ID = 0x0001,          /* feature bits: 1 = traditional interface */
	FW_CFG_RAM_SIZE = 0x0003,    /* u64: total RAM in bytes */
	FW_CFG_NB_CPUS = 0x0005,     /* u16: vCPUs at boot */
	FW_CFG_MAX_CPUS = 0x000f,    /* u16: vCPUs possible (no hotplug: the same) */
};

#define FW_CFG_PORT_SEL  0x510
#define FW_CFG_PORT_DATA 0x511

/* Attach to @vm's port bus (serialized); NULL if the ports are taken. */
struct fw_cfg *fw_cfg_create(struct vm *vm);
/* Detach and free; no call runs on it afterwards. */
void fw_cfg_destroy(struct fw_cfg *fw);
void fw_cfg_dump(const struct fw_cfg *fw, FILE *f);
