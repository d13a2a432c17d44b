/*
 * The I/O thread: one thread that owns every device not safe to call
 * concurrently.  Senders hand it struct bus_call records through a
 * wait-free multi-producer queue; synchronous senders wait on a completion
 * on their own stack.  Sends made from the I/O thread itself run inline.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "bus/bus.h"

struct iothread;

struct iothread *iothread_start(void);
/* Pin the I/O thread to host core @cpu; -errno on failure. */
int iothread_pin(struct iothread *it, int cpu);
/* Run what is queued, then stop the thread. */
void iothread_stop(struct iothread *it);
const struct bus_serializer *iothread_serializer(struct iothread *it);
bool iothread_is_current(void);
/* Return once every call queued before it has run. */
void iothread_barrier(struct iothread *it);
/* Nanoseconds the calling thread has waited for the I/O thread. */
uint64_t iothread_thread_wait_ns(void);
/* Calls waiting in the queue right now (for drain checks and stats). */
unsigned long iothread_queue_depth(struct iothread *it);
