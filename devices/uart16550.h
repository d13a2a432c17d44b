/*
 * The 16550A serial port.  "uart:port,irq" creates one through the device
 * registry; the frontend and the tests use the calls below directly when
 * they need the handle (an output file, a captured transmit stream).
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct vm;
struct uart;

/* Where transmitted bytes go; called on the device's (serialized) thread. */
typedef void (*uart_output_fn)(void *ctx, const uint8_t *buf, size_t len);

/*
 * Create a UART at @port (8 ports) raising GSI @irq, attached to @vm's
 * buses.  The first UART of a VM also takes the host console's input.
 * Output goes to the host console until uart_set_output() says otherwise.
 * NULL on failure (the port range taken, no memory).
 */
struct uart *uart_create(struct vm *vm, uint16_t port, uint8_t irq);
/* Detach from the buses and free; no device call runs on it afterwards. */
void uart_destroy(struct uart *uart);
/* Replace the sink (NULL: discard output).  Set it before the guest runs. */
void uart_set_output(struct uart *uart, uart_output_fn out, void *ctx);
