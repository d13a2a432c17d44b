/*
 * Ordering of posted writes.  A vCPU's port and MMIO writes to serialized
 * devices are posted: they travel to the I/O thread while the vCPU runs on.
 * But x86 port writes are not posted on hardware: a write that clears a
 * device's interrupt must take effect before the guest's next EOI at the
 * (claimed, lock-free) PIC.  So each vCPU thread counts its writes still in
 * flight, and its claimed accesses and interrupt injections wait for them
 * first.  Writes of other threads (the timer thread) are not tracked.
 */
#pragma once

struct bus_call;

/* Serializer, when it takes an asynchronous call over to another thread. */
void bus_posted_begin(struct bus_call *call);
/* Serializer, once the asynchronous call ran. */
void bus_posted_end(struct bus_call *call);
/* Wait until every write this thread posted has run. */
void bus_posted_fence(void);
