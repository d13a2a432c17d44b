/*
 * Virtual time and timers.  The VM clock is host CLOCK_MONOTONIC minus the
 * time the VM spent paused, so every time source (LAPIC timers, PIT, PM
 * timer, RTC) stops and restarts in one place.
 *
 * A timer service thread fires expiries as struct msg_timer on the VM's
 * timer bus (asynchronously): lock-free receivers claim their timer and run
 * on the timer thread; others are serialized like any device.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

struct vm;
struct timer_service;

struct timer_service *timer_service_start(struct vm *vm);
void timer_service_stop(struct timer_service *ts);

uint64_t vm_clock_ns(struct vm *vm);
/* Stop and restart the VM clock: no timer fires while it is stopped. */
void timer_service_pause(struct timer_service *ts);
void timer_service_resume(struct timer_service *ts);
/* While paused: the VM clock reads @vm_ns, and resumes from it (snapshots). */
void timer_service_set_clock(struct timer_service *ts, uint64_t vm_ns);

/* A timer id for the caller; receivers match struct msg_timer.timer. */
unsigned timer_alloc(struct vm *vm);
/* Fire once at VM time @deadline_ns (replaces an earlier arming). */
void timer_arm(struct vm *vm, unsigned timer, uint64_t deadline_ns);
void timer_cancel(struct vm *vm, unsigned timer);
