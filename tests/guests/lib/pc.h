/*
 * The PC's legacy pieces the interrupt tests program: the 8259 pair (with
 * the ELCR), the 8254 PIT and port 0x61, and QEMU's fw_cfg (legacy ports).
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#define PIC_MASTER_CMD   0x20
#define PIC_MASTER_DATA  0x21
#define PIC_SLAVE_CMD    0xa0
#define PIC_SLAVE_DATA   0xa1
#define PIC_ELCR_MASTER  0x4d0
#define PIC_ELCR_SLAVE   0x4d1
#define PIC_EOI_NONSPEC  0x20
#define PIC_EOI_SPECIFIC 0x60
#define PIC_OCW3_READ_IRR 0x0a
#define PIC_OCW3_READ_ISR 0x0b

/* ICW1-4: cascade, vector bases, 8086 mode, auto-EOI if @aeoi; all masked. */
void pic_init(uint8_t master_base, uint8_t slave_base, bool aeoi);
/* IMR of both chips: bit n masks IRQ n (bit 2: the cascade). */
void pic_set_imr(uint16_t mask);
uint16_t pic_imr(void);
void pic_mask_all(void);
/* Non-specific EOI, to the slave too for IRQs 8-15. */
void pic_eoi(unsigned irq);
uint16_t pic_isr(void);
uint16_t pic_irr(void);
void pic_set_elcr(uint16_t elcr);
uint16_t pic_elcr(void);

#define PIT_HZ        1193182u
#define PIT_CH0       0x40
#define PIT_CH2       0x42
#define PIT_CMD       0x43
#define PORT_61       0x61

/* Channel 0 in @mode (2: rate generator, 3: square wave) with @count. */
void pit_ch0_start(unsigned mode, uint16_t count);
/* Channel 0 in mode 0 with count 0: one edge 55 ms later, then quiet. */
void pit_ch0_quiet(void);
/* The current count of channel 0 (counter latch command). */
uint16_t pit_ch0_read(void);

#define FW_CFG_PORT_SEL  0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID        0x01
#define FW_CFG_RAM_SIZE  0x03
#define FW_CFG_NB_CPUS   0x05
#define FW_CFG_MAX_CPUS  0x0f

void fw_cfg_read(uint16_t key, void *buf, unsigned len);
/* True if the signature reads "QEMU". */
bool fw_cfg_present(void);
/* The number of CPUs (FW_CFG_NB_CPUS); fails the test without fw_cfg. */
unsigned fw_cfg_cpus(void);
uint64_t fw_cfg_ram_size(void);
