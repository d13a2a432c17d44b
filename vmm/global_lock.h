/*
 * The global lock: the alternative to the I/O thread (--io lock).  Every
 * unclaimed device runs on the sending thread with this one mutex held.
 * (Named apart from the I/O thread on purpose: QEMU's "iothread lock"
 * named a lock after a thread and had to be renamed.)
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "bus/bus.h"

const struct bus_serializer *global_lock_serializer(void);
/* For control work that must not race device callbacks. */
void global_lock_acquire(void);
void global_lock_release(void);
bool global_lock_held(void);
/* Nanoseconds the calling thread has waited for the lock. */
uint64_t global_lock_thread_wait_ns(void);
/* Total nanoseconds threads spent waiting for the lock. */
uint64_t global_lock_wait_ns(void);
