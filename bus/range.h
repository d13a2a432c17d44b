/*
 * A bus keyed by address ranges: port I/O and MMIO.  Each address has at
 * most one receiver, found by binary search in a sorted table that is
 * published with RCU: lookups take no lock, registration and remapping (a
 * BAR moving at run time) copy the table and publish the new one without
 * stopping senders.  Overlapping and empty ranges are rejected.
 *
 * A range is either claimed (its device is safe on any thread and runs on
 * the sender's thread) or serialized through the bus's serializer.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "bus/bus.h"

struct range_bus;

/* Called with the message; the device sees the absolute address in it. */
typedef bool (*range_receive_fn)(void *dev, uint64_t addr, void *msg);

struct range_bus *range_bus_create(const char *name, size_t msg_size);
void range_bus_destroy(struct range_bus *rb);

/* 0, or -EINVAL for an empty or wrapping range, -EEXIST for an overlap. */
int range_bus_add(struct range_bus *rb, uint64_t base, uint64_t len,
		  range_receive_fn fn, bool claimed, void *dev);
/* Remove the range starting at @base; -ENOENT if there is none. */
int range_bus_remove(struct range_bus *rb, uint64_t base);
/* Move a range (a BAR remap): atomic for readers, -EEXIST on overlap. */
int range_bus_move(struct range_bus *rb, uint64_t old_base, uint64_t new_base);
unsigned range_bus_count(struct range_bus *rb);

void range_bus_set_serializer(struct range_bus *rb, const struct bus_serializer *ser);

/* False if no range covers @addr (the caller decides what that means). */
bool range_bus_send(struct range_bus *rb, uint64_t addr, void *msg);
bool range_bus_send_async(struct range_bus *rb, uint64_t addr, const void *msg);

struct bus_stats *range_bus_stats(struct range_bus *rb);
const char *range_bus_name(const struct range_bus *rb);
