/*
 * The classic I/O thread, for comparison only: built the way the original
 * user-level VMMs did it (Vancouver/Seoul's unix/iothread.cc, early QEMU):
 * a queue of records behind one mutex, a counting semaphore the worker
 * waits on (one post per message), and one semaphore per waiting caller.
 * It plugs into the bus as a serializer, so the benchmark drives it through
 * exactly the same send path as vmm/iothread.c.
 */
#pragma once
#include "bus/bus.h"

struct classic_iothread;

struct classic_iothread *classic_iothread_start(void);
/* Run what is queued, then stop the worker. */
void classic_iothread_stop(struct classic_iothread *ct);
const struct bus_serializer *classic_iothread_serializer(struct classic_iothread *ct);
