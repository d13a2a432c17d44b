/*
 * COM1 console, polled: wait for the transmitter holding register to be
 * empty (LSR bit 5), then write the byte.  The wait is bounded so that a
 * missing or broken UART model loses output instead of hanging the test.
 */
#include "guest.h"

#define UART_THR 0   /* DLAB=0 */
#define UART_DLL 0   /* DLAB=1 */
#define UART_IER 1
#define UART_DLM 1   /* DLAB=1 */
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_THRE 0x20
#define LCR_DLAB 0x80
#define LCR_8N1  0x03

void serial_init(void)
{
	outb(COM1_PORT + UART_LCR, LCR_DLAB);
	outb(COM1_PORT + UART_DLL, 1);          /* 115200 baud */
	outb(COM1_PORT + UART_DLM, 0);
	outb(COM1_PORT + UART_LCR, LCR_8N1);
	outb(COM1_PORT + UART_IER, 0);          /* polled: no interrupts */
	outb(COM1_PORT + UART_FCR, 0x07);       /* FIFO on, both cleared */
	outb(COM1_PORT + UART_MCR, 0x03);       /* DTR, RTS */
}

void serial_putc(char c)
{
	for (unsigned n = 0; n < 100000; n++)
		if (inb(COM1_PORT + UART_LSR) & LSR_THRE)
			break;
	outb(COM1_PORT + UART_THR, (uint8_t)c);
}

void serial_puts(const char *s)
{
	while (*s)
		serial_putc(*s++);
}
