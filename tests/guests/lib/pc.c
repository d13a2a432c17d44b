/*
 * 8259A pair, 8254 PIT and fw_cfg, programmed as a PC BIOS or kernel
 * would: Intel 8259A and 8254 datasheets, QEMU docs/specs/fw_cfg.rst.
 */
#include "guest.h"
#include "pc.h"

void pic_init(uint8_t master_base, uint8_t slave_base, bool aeoi)
{
	uint8_t icw4 = 0x01 | (aeoi ? 0x02 : 0);   /* 8086 mode, auto-EOI */

	outb(PIC_MASTER_CMD, 0x11);     /* ICW1: edge, cascade, ICW4 follows */
	outb(PIC_MASTER_DATA, master_base);
	outb(PIC_MASTER_DATA, 0x04);    /* ICW3: slave on IRQ 2 */
	outb(PIC_MASTER_DATA, icw4);
	outb(PIC_SLAVE_CMD, 0x11);
	outb(PIC_SLAVE_DATA, slave_base);
	outb(PIC_SLAVE_DATA, 0x02);     /* ICW3: slave ID 2 */
	outb(PIC_SLAVE_DATA, icw4);
	pic_mask_all();
}

void pic_set_imr(uint16_t mask)
{
	outb(PIC_MASTER_DATA, (uint8_t)mask);
	outb(PIC_SLAVE_DATA, (uint8_t)(mask >> 8));
}

uint16_t pic_imr(void)
{
	return inb(PIC_MASTER_DATA) | (uint16_t)inb(PIC_SLAVE_DATA) << 8;
}

void pic_mask_all(void)
{
	pic_set_imr(0xffff);
}

void pic_eoi(unsigned irq)
{
	if (irq >= 8)
		outb(PIC_SLAVE_CMD, PIC_EOI_NONSPEC);
	outb(PIC_MASTER_CMD, PIC_EOI_NONSPEC);
}

static uint16_t pic_read_reg(uint8_t ocw3)
{
	uint16_t v;

	outb(PIC_MASTER_CMD, ocw3);
	outb(PIC_SLAVE_CMD, ocw3);
	v = inb(PIC_MASTER_CMD) | (uint16_t)inb(PIC_SLAVE_CMD) << 8;
	/* Leave both chips reading IRR, their reset choice. */
	outb(PIC_MASTER_CMD, PIC_OCW3_READ_IRR);
	outb(PIC_SLAVE_CMD, PIC_OCW3_READ_IRR);
	return v;
}

uint16_t pic_isr(void)
{
	return pic_read_reg(PIC_OCW3_READ_ISR);
}

uint16_t pic_irr(void)
{
	return pic_read_reg(PIC_OCW3_READ_IRR);
}

void pic_set_elcr(uint16_t elcr)
{
	outb(PIC_ELCR_MASTER, (uint8_t)elcr);
	outb(PIC_ELCR_SLAVE, (uint8_t)(elcr >> 8));
}

uint16_t pic_elcr(void)
{
	return inb(PIC_ELCR_MASTER) | (uint16_t)inb(PIC_ELCR_SLAVE) << 8;
}

void pit_ch0_start(unsigned mode, uint16_t count)
{
	outb(PIT_CMD, 0x30 | (mode & 7) << 1);   /* channel 0, LSB then MSB, binary */
	outb(PIT_CH0, (uint8_t)count);
	outb(PIT_CH0, count >> 8);
}

void pit_ch0_quiet(void)
{
	pit_ch0_start(0, 0);
}

uint16_t pit_ch0_read(void)
{
	uint8_t lo;

	outb(PIT_CMD, 0x00);                     /* latch channel 0 */
	lo = inb(PIT_CH0);
	return lo | (uint16_t)inb(PIT_CH0) << 8;
}

void fw_cfg_read(uint16_t key, void *buf, unsigned len)
{
	uint8_t *p = buf;

	outw(FW_CFG_PORT_SEL, key);
	for (unsigned i = 0; i < len; i++)
		p[i] = inb(FW_CFG_PORT_DATA);
}

bool fw_cfg_present(void)
{
	char sig[4];

	fw_cfg_read(FW_CFG_SIGNATURE, sig, sizeof(sig));
	return !memcmp(sig, "QEMU", 4);
}

unsigned fw_cfg_cpus(void)
{
	uint16_t n = 0;

	if (!fw_cfg_present())
		test_fail("no fw_cfg at port 0x%x: cannot tell the number of CPUs",
			  FW_CFG_PORT_SEL);
	fw_cfg_read(FW_CFG_NB_CPUS, &n, sizeof(n));
	return n;
}

uint64_t fw_cfg_ram_size(void)
{
	uint64_t v = 0;

	fw_cfg_read(FW_CFG_RAM_SIZE, &v, sizeof(v));
	return v;
}
