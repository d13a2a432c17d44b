/*
 * Port 0x80, the POST code port.  "port80" creates it through the device
 * registry; the calls below are for the tests and statistics.
 */
#pragma once
#include <stdint.h>

struct vm;
struct port80;

#define PORT80_PORT 0x80

struct port80 *port80_create(struct vm *vm);
void port80_destroy(struct port80 *p);
/* Bytes the guest wrote, and the last of them (0xff before the first). */
uint64_t port80_writes(const struct port80 *p);
uint8_t port80_last(const struct port80 *p);
