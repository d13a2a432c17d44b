/*
 * Local APIC (xAPIC), one per vCPU, without a lock.
 *
 * State: new; unit-tested register by register and under concurrent senders.
 * Features: the xAPIC register page (ID, version 0x14 with six LVT entries,
 *   TPR/APR/PPR, EOI, LDR/DFR, SVR, ISR/TMR/IRR, ESR, ICR, LVT timer/
 *   thermal/perf/LINT0/LINT1/error, timer count and divide); fixed,
 *   lowest-priority, NMI, INIT, SIPI and ExtINT delivery to physical and
 *   logical flat/cluster destinations, shorthands and broadcast; EOI
 *   broadcast of level-triggered vectors; the timer in one-shot, periodic
 *   and TSC-deadline mode on the VM clock, counting at 1 GHz before the
 *   divider (one tick per ns, as QEMU and KVM do); IA32_APIC_BASE with
 *   global disable (the page then reads all ones and LINT0 passes the
 *   8259's INTR straight through); the 8259 virtual wire on LINT0 (ExtINT).
 * Missing: x2APIC; moving the page (IA32_APIC_BASE records a new base, the
 *   page stays at 0xFEE00000); SMI; focus processor checking; EOI-broadcast
 *   suppression; LINT0 level trigger and remote IRR (LINT0 in fixed mode
 *   fires on INTR's rising edge); LINT1 has no source; the thermal and
 *   performance LVTs never fire; remote read (RRD reads 0); the spurious
 *   vector is never needed (an interrupt cannot vanish between pending and
 *   acknowledge here).  Periodic mode re-arms no faster than
 *   LAPIC_MIN_PERIOD_NS.
 * Spec: Intel SDM vol. 3A, "Advanced Programmable Interrupt Controller
 *   (APIC)" (chapter 10, or 11 in 2023+ editions), xAPIC mode.
 *
 * Concurrency, argued in doc/lockfree-lapic.md: other threads post vectors
 * into a pending bitmap and read registers the owner publishes; IRR, ISR,
 * TMR and PPR are the owner's alone.  The timer thread and the owner hand
 * the next expiry back and forth in one atomic word.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kvm.h>
#include "bus/bus.h"
#include "bus/call.h"
#include "devices/lapic.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/timer.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define NSLOTS          64              /* 16-byte register slots, 0x000..0x3f0 */
#define SLOT(off)       ((off) >> 4)
#define LVT_VECTOR(v)   ((v) & 0xffu)
#define LVT_DM(v)       (((v) >> 8) & 7u)
#define LVT_TIMER_MODE(v) (((v) >> 17) & 3u)
#define ICR_LOGICAL     (1u << 11)
#define ICR_ASSERT      (1u << 14)
#define ICR_LEVEL       (1u << 15)
#define BASE_WRITABLE   (0x000ffffffffff000ull | LAPIC_BASE_ENABLE | LAPIC_BASE_BSP)

enum { TIMER_ONESHOT, TIMER_PERIODIC, TIMER_TSC };

/* The count is VM-clock nanoseconds shifted by the divider. */
_Static_assert(LAPIC_BUS_HZ == 1000000000ull, "one timer tick per VM-clock ns");

struct lapic {
	/* Set at creation, then read-only. */
	struct lapic_group *group;
	struct vm *vm;
	unsigned index;               /* vCPU index, initial APIC ID */
	unsigned timer;               /* our timer id on vm->bus.timer */
	const struct lapic_cpu_ops *ops;
	void *ctx;

	/* Written by any thread: what senders post for the owner. */
	_Alignas(64) _Atomic uint64_t pir[4];     /* pending vectors */
	_Atomic uint64_t pir_level[4];            /* trigger mode of the latest post */
	_Atomic bool notify;                      /* a kick is outstanding */
	_Atomic bool extint;                      /* an ExtINT delivery waits for INTA */
	_Atomic bool intr;                        /* the 8259's INTR at LINT0 (BSP) */
	_Atomic uint32_t esr_pending;             /* errors since the last ESR write */
	_Atomic uint64_t posted, coalesced;

	/* The timer hand-off between the owner and the timer thread. */
	_Alignas(64) _Atomic uint64_t deadline;   /* next expiry, VM ns; 0: none */
	_Atomic uint64_t period;                  /* periodic re-arm step, else 0 */
	_Atomic uint64_t timer_fired;

	/* Written by the owner only, read by any thread. */
	_Alignas(64) _Atomic uint32_t reg[NSLOTS];
	_Atomic uint64_t apic_base;
	_Atomic uint32_t arb;                     /* arbitration priority (APR) */
	_Atomic uint64_t acked, extint_acked, eois, eoi_broadcasts;

	/* The owner's alone. */
	uint64_t irr[4], isr[4], tmr[4];
	uint32_t ppr;
	uint32_t esr;                             /* latched by the last ESR write */
	uint64_t timer_start;                     /* VM ns when the count was loaded */
	uint64_t tsc_deadline;                    /* IA32_TSC_DEADLINE as written */
	uint64_t tsc_deadline_ns;                 /* ... on the VM clock */
};

struct lapic_group {
	struct vm *vm;
	_Atomic(struct lapic *) apic[VM_MAX_VCPUS];
	_Atomic unsigned count;                   /* highest index + 1 */
	_Atomic unsigned rr;                      /* lowest-priority tie breaker */
	void *glue;                               /* the device model's vCPU contexts */
};

/* ---- Bitmaps of 256 vectors ---- */

static int bitmap_highest(const uint64_t *b)
{
	for (int w = 3; w >= 0; w--)
		if (b[w])
			return w * 64 + 63 - __builtin_clzll(b[w]);
	return -1;
}

static bool bitmap_test(const uint64_t *b, unsigned v)
{
	return b[v / 64] >> (v % 64) & 1;
}

static void bitmap_set(uint64_t *b, unsigned v, bool on)
{
	if (on)
		b[v / 64] |= 1ull << (v % 64);
	else
		b[v / 64] &= ~(1ull << (v % 64));
}

static uint32_t bitmap_word32(const uint64_t *b, unsigned i)
{
	return (uint32_t)(b[i / 2] >> (32 * (i & 1)));
}

/* ---- The register file ---- */

/*
 * Any thread.  Acquire pairs with the owner's release in reg_set(): a
 * register is a self-contained value, so this is more than needed, and
 * free on x86.
 */
static uint32_t reg_get(const struct lapic *a, unsigned off)
{
	return atomic_load_explicit(&a->reg[SLOT(off)], memory_order_acquire);
}

/* Owner only: the single writer of every register. */
static void reg_set(struct lapic *a, unsigned off, uint32_t v)
{
	atomic_store_explicit(&a->reg[SLOT(off)], v, memory_order_release);
}

static bool hw_enabled(const struct lapic *a)
{
	return atomic_load_explicit(&a->apic_base, memory_order_acquire) & LAPIC_BASE_ENABLE;
}

static bool sw_enabled(const struct lapic *a)
{
	return reg_get(a, LAPIC_SVR) & LAPIC_SVR_ENABLE;
}

static unsigned timer_mode(const struct lapic *a)
{
	return LVT_TIMER_MODE(reg_get(a, LAPIC_LVT_TIMER));
}

static unsigned timer_shift(const struct lapic *a)
{
	uint32_t d = reg_get(a, LAPIC_TDCR);

	/* Divide by 2 << (bits 3,1,0), where 0b111 divides by 1. */
	return (((d & 3) | ((d >> 1) & 4)) + 1) & 7;
}

/* Owner-side counters: one writer, relaxed readers. */
static void stat_inc(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* ---- Posting: any thread ---- */

/* Make sure the owner folds the pending bitmaps soon. */
static void lapic_notify(struct lapic *a)
{
	/*
	 * Only the 0 -> 1 flip kicks: while the flag is set a kick is on its
	 * way, and the owner's next lapic_pending() clears it and then folds.
	 * acq_rel: our earlier posts are released to that clearing exchange.
	 */
	if (!atomic_exchange_explicit(&a->notify, true, memory_order_acq_rel))
		a->ops->kick(a->ctx, VCPU_EV_IRQ);
}

/* Post @vector (16..255) for the owner to fold into IRR (and TMR). */
static void lapic_post(struct lapic *a, uint8_t vector, bool level)
{
	unsigned w = vector / 64;
	uint64_t bit = 1ull << (vector % 64);

	/* Relaxed: sequenced before the release below, which the owner acquires. */
	if (level)
		atomic_fetch_or_explicit(&a->pir_level[w], bit, memory_order_relaxed);
	else if (atomic_load_explicit(&a->pir_level[w], memory_order_relaxed) & bit)
		atomic_fetch_and_explicit(&a->pir_level[w], ~bit, memory_order_relaxed);
	if (atomic_fetch_or_explicit(&a->pir[w], bit, memory_order_release) & bit)
		atomic_fetch_add_explicit(&a->coalesced, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&a->posted, 1, memory_order_relaxed);
	lapic_notify(a);
}

static void lapic_error(struct lapic *a, uint32_t bits);

/* Raise the local interrupt the LVT entry at @off describes. */
static void lapic_fire_lvt(struct lapic *a, unsigned off)
{
	uint32_t lvt = reg_get(a, off);
	bool fixed_only = off == LAPIC_LVT_TIMER || off == LAPIC_LVT_ERROR;

	if (lvt & LAPIC_LVT_MASKED)
		return;
	switch (fixed_only ? APIC_DM_FIXED : LVT_DM(lvt)) {
	case APIC_DM_FIXED:
		if (LVT_VECTOR(lvt) >= 16) {
			lapic_post(a, LVT_VECTOR(lvt), false);
		} else if (off == LAPIC_LVT_ERROR) {
			/* Record it without raising the error LVT again. */
			atomic_fetch_or_explicit(&a->esr_pending, LAPIC_ESR_RECV_ILLEGAL,
						 memory_order_relaxed);
		} else {
			lapic_error(a, LAPIC_ESR_RECV_ILLEGAL);
		}
		break;
	case APIC_DM_NMI:
		a->ops->kick(a->ctx, VCPU_EV_NMI);
		break;
	case APIC_DM_INIT:
		a->ops->kick(a->ctx, VCPU_EV_INIT);
		break;
	case APIC_DM_EXTINT:
		/* lapic_pending() sees LINT0 in ExtINT mode with INTR high. */
		lapic_notify(a);
		break;
	default:
		break;  /* SMI, reserved */
	}
}

/* Record an error for the next ESR write and raise the error LVT. */
static void lapic_error(struct lapic *a, uint32_t bits)
{
	atomic_fetch_or_explicit(&a->esr_pending, bits, memory_order_relaxed);
	lapic_fire_lvt(a, LAPIC_LVT_ERROR);
}

/* ---- Priorities and the interrupt cycle: owner ---- */

static void lapic_update_priority(struct lapic *a)
{
	uint32_t tpr = reg_get(a, LAPIC_TPR) & 0xff;
	int isrv = bitmap_highest(a->isr), irrv = bitmap_highest(a->irr);
	uint32_t isrc = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
	uint32_t irrc = irrv < 0 ? 0 : (uint32_t)irrv & 0xf0;
	uint32_t apr;

	a->ppr = (tpr & 0xf0) >= isrc ? tpr : isrc;
	if ((tpr & 0xf0) >= irrc && (tpr & 0xf0) > isrc) {
		apr = tpr;
	} else {
		apr = tpr & 0xf0;
		apr = isrc > apr ? isrc : apr;
		apr = irrc > apr ? irrc : apr;
	}
	/* Relaxed: a hint for lowest-priority arbitration, nothing depends on it. */
	atomic_store_explicit(&a->arb, apr, memory_order_relaxed);
}

/* Take what other threads posted into IRR and TMR. */
static void lapic_fold(struct lapic *a)
{
	bool changed = false;

	/*
	 * A clear flag means nothing was posted since the last fold, or a
	 * sender is between its post and its flag flip and will kick us:
	 * lapic_pending() runs again after every kick.  Acquire pairs with the
	 * senders' release exchange of the flag.
	 */
	if (!atomic_exchange_explicit(&a->notify, false, memory_order_acq_rel))
		return;
	for (unsigned w = 0; w < 4; w++) {
		uint64_t p = atomic_exchange_explicit(&a->pir[w], 0, memory_order_acquire);
		uint64_t level;

		if (!p)
			continue;
		/* Ordered after the acquire: sees the trigger mode each poster wrote first. */
		level = atomic_load_explicit(&a->pir_level[w], memory_order_relaxed);
		if (p & a->irr[w])
			atomic_fetch_add_explicit(&a->coalesced, __builtin_popcountll(p & a->irr[w]),
						  memory_order_relaxed);
		a->irr[w] |= p;
		a->tmr[w] = (a->tmr[w] & ~p) | (level & p);
		changed = true;
	}
	if (changed)
		lapic_update_priority(a);
}

/*
 * INTR as the 8259 drives it now.  The INTR/DEASSERT messages can lag
 * (a de-assert waits behind another thread's delivery token), so a high
 * flag is confirmed with the PIC before anything is acknowledged.
 */
static bool intr_high(const struct lapic *a)
{
	struct msg_legacy q = { .type = LEGACY_INTR_LEVEL, .cpu = a->index };

	if (!atomic_load_explicit(&a->intr, memory_order_acquire))
		return false;
	if (!bus_send(a->vm->bus.legacy, &q, BUS_EARLY_OUT))
		return true;   /* nobody answers: trust the messages */
	return q.level;
}

static bool lint0_extint(const struct lapic *a)
{
	uint32_t lvt = reg_get(a, LAPIC_LVT_LINT0);

	return !(lvt & LAPIC_LVT_MASKED) && LVT_DM(lvt) == APIC_DM_EXTINT && intr_high(a);
}

int lapic_pending(struct lapic *a)
{
	int v;

	lapic_fold(a);
	if (!hw_enabled(a))  /* the 8259 is wired straight to the CPU */
		return intr_high(a) ? LAPIC_TOKEN_EXTINT : -1;
	/* ExtINT bypasses the priority logic, as in KVM. */
	if (atomic_load_explicit(&a->extint, memory_order_acquire) || lint0_extint(a))
		return LAPIC_TOKEN_EXTINT;
	v = bitmap_highest(a->irr);
	if (v >= 0 && ((uint32_t)v & 0xf0) > (a->ppr & 0xf0))
		return v;
	return -1;
}

/* Ask the 8259 for the vector (INTA on the legacy bus). */
static int lapic_inta(struct lapic *a)
{
	struct msg_legacy msg = { .type = LEGACY_INTA, .cpu = a->index };

	atomic_store_explicit(&a->extint, false, memory_order_relaxed);
	if (!bus_send(a->vm->bus.legacy, &msg, BUS_EARLY_OUT))
		return -1;
	stat_inc(&a->extint_acked);
	return msg.value & 0xff;
}

int lapic_acknowledge(struct lapic *a, int token)
{
	if (token == LAPIC_TOKEN_EXTINT)
		return lapic_inta(a);
	if (token < 16 || token > 255 || !bitmap_test(a->irr, token))
		return -1;
	bitmap_set(a->irr, token, false);
	bitmap_set(a->isr, token, true);
	lapic_update_priority(a);
	stat_inc(&a->acked);
	return token;
}

void lapic_eoi(struct lapic *a)
{
	int v = bitmap_highest(a->isr);

	if (v < 0)
		return;
	bitmap_set(a->isr, v, false);
	lapic_update_priority(a);
	stat_inc(&a->eois);
	if (bitmap_test(a->tmr, v)) {
		struct msg_eoi msg = { .vector = v };

		stat_inc(&a->eoi_broadcasts);
		bus_send_async(a->vm->bus.eoi, &msg, BUS_LIFO);
	}
}

/* ---- The timer ---- */

static void lapic_timer_fire(struct lapic *a)
{
	atomic_fetch_add_explicit(&a->timer_fired, 1, memory_order_relaxed);
	lapic_fire_lvt(a, LAPIC_LVT_TIMER);
}

/* Owner: the current count, from the VM clock. */
static uint32_t lapic_timer_count(struct lapic *a)
{
	uint32_t init = reg_get(a, LAPIC_TMICT);
	uint64_t ticks;

	if (!init || timer_mode(a) == TIMER_TSC)
		return 0;
	ticks = (vm_clock_ns(a->vm) - a->timer_start) >> timer_shift(a);
	if (timer_mode(a) == TIMER_PERIODIC)
		return init - ticks % init;
	return ticks >= init ? 0 : init - (uint32_t)ticks;
}

/* Owner: the first expiry after @now the registers describe (0: none). */
static uint64_t lapic_timer_next(struct lapic *a, uint64_t now, uint64_t *step)
{
	uint32_t init = reg_get(a, LAPIC_TMICT);
	uint64_t period, elapsed = now - a->timer_start;

	*step = 0;
	if (timer_mode(a) == TIMER_TSC)
		return a->tsc_deadline_ns;
	if (!init)
		return 0;
	period = (uint64_t)init << timer_shift(a);
	if (timer_mode(a) != TIMER_PERIODIC)
		return elapsed < period ? now + (period - elapsed) : 0;
	*step = period < LAPIC_MIN_PERIOD_NS ? LAPIC_MIN_PERIOD_NS : period;
	return now + (*step - elapsed % *step);
}

/*
 * Owner: publish the next expiry after a register write at VM time @now,
 * taking the old one back.  An old expiry that passed but that the timer
 * thread has not taken yet happened before this write: deliver it here.
 * @now is the instant the write took effect (the one the count was loaded
 * at), not a later clock read: a count that runs out between the two must
 * still fire.
 */
static void lapic_timer_program(struct lapic *a, uint64_t now)
{
	uint64_t step, next = lapic_timer_next(a, now, &step), old;

	atomic_store_explicit(&a->period, step, memory_order_relaxed);
	/* Release: a timer thread that acquires @next sees @step too. */
	old = atomic_exchange_explicit(&a->deadline, next, memory_order_acq_rel);
	if (old && old <= now)
		lapic_timer_fire(a);
	if (next)
		timer_arm(a->vm, a->timer, next);
	else
		timer_cancel(a->vm, a->timer);
}

/*
 * Timer thread: an expiry at @now.  Whoever moves @deadline away from an
 * expired value (this CAS, or the owner's exchange) delivers it, so each
 * expiry fires once.  The last timer_arm() must be for the current
 * deadline: after arming, re-read it and arm again if the owner moved it
 * meanwhile (timer_arm calls are ordered by the timer service's lock).
 */
static void lapic_timer_expired(struct lapic *a, uint64_t now)
{
	uint64_t d = atomic_load_explicit(&a->deadline, memory_order_acquire);

	for (;;) {
		uint64_t step, next;

		if (!d)
			return;   /* disarmed, or taken by the owner */
		if (d > now)
			break;    /* re-armed later than this expiry: keep that */
		step = atomic_load_explicit(&a->period, memory_order_relaxed);
		next = 0;
		if (step) {   /* periodic: the next period, skipping missed ones */
			next = d + step;
			if (next <= now)
				next = now + step - (now - d) % step;
		}
		if (atomic_compare_exchange_strong_explicit(&a->deadline, &d, next,
							    memory_order_acq_rel,
							    memory_order_acquire)) {
			lapic_timer_fire(a);
			d = next;
			break;
		}
	}
	while (d) {
		uint64_t cur;

		timer_arm(a->vm, a->timer, d);
		cur = atomic_load_explicit(&a->deadline, memory_order_acquire);
		if (cur == d)
			return;
		d = cur;
	}
}

/* ---- Register hooks: owner ---- */

static void write_plain(struct lapic *a, unsigned off, uint32_t v)
{
	reg_set(a, off, v);
}

static void write_tpr(struct lapic *a, unsigned off, uint32_t v)
{
	reg_set(a, off, v);
	lapic_update_priority(a);
}

static void write_eoi(struct lapic *a, unsigned off, uint32_t v)
{
	(void)off;
	(void)v;
	lapic_eoi(a);
}

static const unsigned lvt_offsets[] = {
	LAPIC_LVT_TIMER, LAPIC_LVT_THERMAL, LAPIC_LVT_PERF,
	LAPIC_LVT_LINT0, LAPIC_LVT_LINT1, LAPIC_LVT_ERROR,
};

static void write_svr(struct lapic *a, unsigned off, uint32_t v)
{
	reg_set(a, off, v);
	if (v & LAPIC_SVR_ENABLE)
		return;
	/* Software disable masks every LVT entry (they stay masked, see write_lvt). */
	for (unsigned i = 0; i < sizeof(lvt_offsets) / sizeof(lvt_offsets[0]); i++)
		reg_set(a, lvt_offsets[i], reg_get(a, lvt_offsets[i]) | LAPIC_LVT_MASKED);
}

/* Latch the errors seen since the last write; reads return the latch. */
static void write_esr(struct lapic *a, unsigned off, uint32_t v)
{
	(void)off;
	(void)v;
	a->esr = atomic_exchange_explicit(&a->esr_pending, 0, memory_order_relaxed);
}

static void lapic_send_ipi(struct lapic *a, uint32_t lo)
{
	struct msg_apic msg = {
		.vector = LVT_VECTOR(lo),
		.delivery = LVT_DM(lo),
		.shorthand = (lo >> 18) & 3,
		.logical = lo & ICR_LOGICAL,
		.dest = reg_get(a, LAPIC_ICR_HI) >> 24,
		.source = a->index,
	};

	switch (msg.delivery) {
	case APIC_DM_FIXED:
	case APIC_DM_LOWEST:
		if (msg.vector < 16) {
			lapic_error(a, LAPIC_ESR_SEND_ILLEGAL);
			return;
		}
		break;
	case APIC_DM_INIT:
		/* INIT level de-assert only resyncs arbitration IDs: nothing to do. */
		if (!(lo & ICR_ASSERT) && (lo & ICR_LEVEL))
			return;
		break;
	case APIC_DM_NMI:
	case APIC_DM_SIPI:
		break;
	default:
		return;   /* SMI is not modelled; 3 and 7 are reserved in the ICR */
	}
	/* IPIs are edge-triggered: the ICR's trigger bit only qualifies INIT. */
	bus_send(a->vm->bus.apic, &msg, BUS_LIFO);
}

static void write_icr(struct lapic *a, unsigned off, uint32_t v)
{
	reg_set(a, off, v);
	lapic_send_ipi(a, v);
}

static void write_lvt(struct lapic *a, unsigned off, uint32_t v)
{
	if (!sw_enabled(a))
		v |= LAPIC_LVT_MASKED;
	if (off == LAPIC_LVT_TIMER && LVT_TIMER_MODE(v) != timer_mode(a)) {
		/* A mode change disarms the timer (SDM; KVM does the same). */
		reg_set(a, off, v);
		reg_set(a, LAPIC_TMICT, 0);
		a->tsc_deadline = a->tsc_deadline_ns = 0;
		lapic_timer_program(a, vm_clock_ns(a->vm));
		return;
	}
	reg_set(a, off, v);
}

static void write_tmict(struct lapic *a, unsigned off, uint32_t v)
{
	if (timer_mode(a) == TIMER_TSC)
		return;   /* ignored in TSC-deadline mode */
	reg_set(a, off, v);
	a->timer_start = vm_clock_ns(a->vm);
	lapic_timer_program(a, a->timer_start);
}

/* A new divider: keep counting down from where the count is now. */
static void write_tdcr(struct lapic *a, unsigned off, uint32_t v)
{
	uint64_t now = vm_clock_ns(a->vm);
	uint32_t init = reg_get(a, LAPIC_TMICT);
	uint64_t ticks = init ? (now - a->timer_start) >> timer_shift(a) : 0;

	if (init && timer_mode(a) == TIMER_PERIODIC)
		ticks %= init;
	else if (ticks > init)
		ticks = init;
	reg_set(a, off, v);
	/* Unsigned wrap-around is fine: only now - timer_start is ever used. */
	a->timer_start = now - (ticks << timer_shift(a));
	lapic_timer_program(a, now);
}

static uint32_t read_apr(struct lapic *a, unsigned off)
{
	(void)off;
	return atomic_load_explicit(&a->arb, memory_order_relaxed);
}

static uint32_t read_ppr(struct lapic *a, unsigned off)
{
	(void)off;
	return a->ppr;
}

static uint32_t read_isr(struct lapic *a, unsigned off)
{
	return bitmap_word32(a->isr, SLOT(off - LAPIC_ISR));
}

static uint32_t read_tmr(struct lapic *a, unsigned off)
{
	return bitmap_word32(a->tmr, SLOT(off - LAPIC_TMR));
}

static uint32_t read_irr(struct lapic *a, unsigned off)
{
	return bitmap_word32(a->irr, SLOT(off - LAPIC_IRR));
}

static uint32_t read_esr(struct lapic *a, unsigned off)
{
	(void)off;
	return a->esr;
}

static uint32_t read_tmcct(struct lapic *a, unsigned off)
{
	(void)off;
	return lapic_timer_count(a);
}

/*
 * The register page: reset value, writable bits, and the hooks.  No read
 * hook: the stored value; no write hook: read-only.  Unnamed slots are
 * reserved (ESR "illegal register address").
 */
struct lapic_reg {
	const char *name;
	uint32_t reset;
	uint32_t wmask;
	uint32_t (*read)(struct lapic *a, unsigned off);
	void (*write)(struct lapic *a, unsigned off, uint32_t v);
};

#define R(off) [SLOT(off)]
#define R8(off) [SLOT(off) ... SLOT(off) + 7]
static const struct lapic_reg lapic_regs[NSLOTS] = {
	R(LAPIC_ID)          = { "ID", 0, 0xff000000, NULL, write_plain },
	R(LAPIC_VER)         = { "VER", LAPIC_VERSION, 0, NULL, NULL },
	R(LAPIC_TPR)         = { "TPR", 0, 0xff, NULL, write_tpr },
	R(LAPIC_APR)         = { "APR", 0, 0, read_apr, NULL },
	R(LAPIC_PPR)         = { "PPR", 0, 0, read_ppr, NULL },
	R(LAPIC_EOI)         = { "EOI", 0, 0, NULL, write_eoi },
	R(LAPIC_RRD)         = { "RRD", 0, 0, NULL, NULL },
	R(LAPIC_LDR)         = { "LDR", 0, 0xff000000, NULL, write_plain },
	R(LAPIC_DFR)         = { "DFR", 0xffffffff, 0xf0000000, NULL, write_plain },
	R(LAPIC_SVR)         = { "SVR", 0xff, 0x3ff, NULL, write_svr },
	R8(LAPIC_ISR)        = { "ISR", 0, 0, read_isr, NULL },
	R8(LAPIC_TMR)        = { "TMR", 0, 0, read_tmr, NULL },
	R8(LAPIC_IRR)        = { "IRR", 0, 0, read_irr, NULL },
	R(LAPIC_ESR)         = { "ESR", 0, 0, read_esr, write_esr },
	R(LAPIC_ICR_LO)      = { "ICR", 0, 0x000ccfff, NULL, write_icr },
	R(LAPIC_ICR_HI)      = { "ICR2", 0, 0xff000000, NULL, write_plain },
	R(LAPIC_LVT_TIMER)   = { "LVTT", LAPIC_LVT_MASKED, 0x000700ff, NULL, write_lvt },
	R(LAPIC_LVT_THERMAL) = { "LVTTHMR", LAPIC_LVT_MASKED, 0x000107ff, NULL, write_lvt },
	R(LAPIC_LVT_PERF)    = { "LVTPC", LAPIC_LVT_MASKED, 0x000107ff, NULL, write_lvt },
	R(LAPIC_LVT_LINT0)   = { "LVT0", LAPIC_LVT_MASKED, 0x0001a7ff, NULL, write_lvt },
	R(LAPIC_LVT_LINT1)   = { "LVT1", LAPIC_LVT_MASKED, 0x0001a7ff, NULL, write_lvt },
	R(LAPIC_LVT_ERROR)   = { "LVTERR", LAPIC_LVT_MASKED, 0x000100ff, NULL, write_lvt },
	R(LAPIC_TMICT)       = { "TMICT", 0, 0xffffffff, NULL, write_tmict },
	R(LAPIC_TMCCT)       = { "TMCCT", 0, 0, read_tmcct, NULL },
	R(LAPIC_TDCR)        = { "TDCR", 0, 0x0000000b, NULL, write_tdcr },
};

static const struct lapic_reg *lapic_reg_at(unsigned off)
{
	if (off >= NSLOTS * 16 || !lapic_regs[SLOT(off)].name)
		return NULL;
	return &lapic_regs[SLOT(off)];
}

uint32_t lapic_read(struct lapic *a, unsigned off)
{
	const struct lapic_reg *r = lapic_reg_at(off);

	if (!r) {
		lapic_error(a, LAPIC_ESR_ILLEGAL_REG);
		return 0;
	}
	return r->read ? r->read(a, off & ~0xfu) : reg_get(a, off);
}

void lapic_write(struct lapic *a, unsigned off, uint32_t value)
{
	const struct lapic_reg *r = lapic_reg_at(off);

	if (!r || (off & 0xf)) {
		lapic_error(a, LAPIC_ESR_ILLEGAL_REG);
		return;
	}
	if (r->write)
		r->write(a, off, (reg_get(a, off) & ~r->wmask) | (value & r->wmask));
}

/*
 * Registers are 32 bits at 16-byte aligned offsets.  Narrower reads get
 * their bytes of the register, bytes 4..15 of a slot read 0; writes other
 * than aligned 32-bit ones are dropped (as KVM does).
 */
bool lapic_mmio(struct lapic *a, struct msg_mmio *msg)
{
	unsigned off = msg->addr & (LAPIC_SIZE - 1), byte = off & 0xf;
	uint64_t mask = msg->size >= 8 ? ~0ull : (1ull << (8 * msg->size)) - 1;
	uint64_t v = 0;

	if (!hw_enabled(a)) {
		if (!msg->write)
			msg->value = mask;
		return true;
	}
	if (msg->write) {
		if (msg->size == 4 && !byte)
			lapic_write(a, off, (uint32_t)msg->value);
		return true;
	}
	if (byte < 4)
		v = lapic_read(a, off & ~0xfu) >> (8 * byte);
	msg->value = v & mask;
	return true;
}

/* ---- Delivery: any thread ---- */

static bool lapic_matches(const struct lapic *a, const struct msg_apic *msg)
{
	uint32_t ldr, dfr;

	switch (msg->shorthand) {
	case APIC_SH_SELF:
		return a->index == msg->source;
	case APIC_SH_ALL:
		return true;
	case APIC_SH_ALL_BUT_SELF:
		return a->index != msg->source;
	}
	if (msg->dest == 0xff)   /* broadcast, physical or logical */
		return true;
	if (msg->dest > 0xff)
		return false;
	if (!msg->logical)
		return msg->dest == reg_get(a, LAPIC_ID) >> 24;
	ldr = reg_get(a, LAPIC_LDR) >> 24;
	dfr = reg_get(a, LAPIC_DFR) >> 28;
	if (dfr == 0xf)          /* flat: one bit per CPU */
		return ldr & msg->dest;
	if (dfr == 0)            /* cluster: 4-bit cluster, 4 member bits */
		return (ldr >> 4) == (msg->dest >> 4) && (ldr & msg->dest & 0xf);
	return false;
}

static unsigned lapic_accept(struct lapic *a, const struct msg_apic *msg)
{
	switch (msg->delivery) {
	case APIC_DM_FIXED:
	case APIC_DM_LOWEST:
		/* Software-disabled, a LAPIC takes only NMI, INIT and SIPI. */
		if (!sw_enabled(a))
			return 0;
		if (msg->vector < 16) {
			lapic_error(a, LAPIC_ESR_RECV_ILLEGAL);
			return 0;
		}
		lapic_post(a, msg->vector, msg->level);
		return 1;
	case APIC_DM_NMI:
		a->ops->kick(a->ctx, VCPU_EV_NMI);
		return 1;
	case APIC_DM_INIT:
		a->ops->kick(a->ctx, VCPU_EV_INIT);
		return 1;
	case APIC_DM_SIPI:
		a->ops->sipi(a->ctx, msg->vector);
		return 1;
	case APIC_DM_EXTINT:
		atomic_store_explicit(&a->extint, true, memory_order_release);
		lapic_notify(a);
		return 1;
	default:
		return 0;   /* SMI */
	}
}

/*
 * The lowest published arbitration priority wins; ties rotate through a
 * group-wide cursor so equal CPUs share the load.
 */
static struct lapic *lapic_lowest(struct lapic_group *g, struct lapic **cand, unsigned n)
{
	unsigned start = atomic_fetch_add_explicit(&g->rr, 1, memory_order_relaxed) % n;
	struct lapic *best = NULL;
	uint32_t best_arb = UINT32_MAX;

	for (unsigned i = 0; i < n; i++) {
		struct lapic *a = cand[(start + i) % n];
		uint32_t arb = atomic_load_explicit(&a->arb, memory_order_relaxed);

		if (sw_enabled(a) && arb < best_arb) {
			best = a;
			best_arb = arb;
		}
	}
	return best;
}

unsigned lapic_deliver(struct lapic_group *g, struct msg_apic *msg)
{
	struct lapic *match[VM_MAX_VCPUS];
	unsigned n = 0, accepted = 0;
	unsigned count = atomic_load_explicit(&g->count, memory_order_acquire);

	for (unsigned i = 0; i < count; i++) {
		struct lapic *a = atomic_load_explicit(&g->apic[i], memory_order_acquire);

		if (a && hw_enabled(a) && lapic_matches(a, msg))
			match[n++] = a;
	}
	if (msg->delivery == APIC_DM_LOWEST && n) {
		match[0] = lapic_lowest(g, match, n);
		n = match[0] ? 1 : 0;
	}
	for (unsigned i = 0; i < n; i++)
		accepted += lapic_accept(match[i], msg);
	msg->accepted += accepted;
	return accepted;
}

/* ---- Reset and the base MSR: owner ---- */

static void lapic_reset_state(struct lapic *a, uint32_t id)
{
	for (unsigned s = 0; s < NSLOTS; s++)
		if (lapic_regs[s].name)
			reg_set(a, s << 4, lapic_regs[s].reset);
	reg_set(a, LAPIC_ID, id << 24);
	memset(a->irr, 0, sizeof(a->irr));
	memset(a->isr, 0, sizeof(a->isr));
	memset(a->tmr, 0, sizeof(a->tmr));
	/* Posts that raced with the reset are dropped, as they would be by a CPU in reset. */
	atomic_store_explicit(&a->notify, false, memory_order_relaxed);
	for (unsigned w = 0; w < 4; w++)
		atomic_exchange_explicit(&a->pir[w], 0, memory_order_acquire);
	atomic_store_explicit(&a->extint, false, memory_order_relaxed);
	atomic_store_explicit(&a->esr_pending, 0, memory_order_relaxed);
	a->esr = 0;
	a->timer_start = 0;
	a->tsc_deadline = a->tsc_deadline_ns = 0;
	atomic_store_explicit(&a->period, 0, memory_order_relaxed);
	atomic_exchange_explicit(&a->deadline, 0, memory_order_acq_rel);
	timer_cancel(a->vm, a->timer);
	lapic_update_priority(a);
}

/* INIT: as at power-up, but the APIC ID and IA32_APIC_BASE stay. */
void lapic_reset(struct lapic *a)
{
	lapic_reset_state(a, reg_get(a, LAPIC_ID) >> 24);
}

static void lapic_set_base(struct lapic *a, uint64_t v)
{
	uint64_t old = atomic_load_explicit(&a->apic_base, memory_order_relaxed);

	v = (v & ~LAPIC_BASE_BSP) | (old & LAPIC_BASE_BSP);   /* BSP is read-only */
	atomic_store_explicit(&a->apic_base, v, memory_order_release);
	/*
	 * Disabling loses the LAPIC's state (SDM: back to the power-up state);
	 * resetting again when re-enabling drops what raced with the disable.
	 */
	if ((old ^ v) & LAPIC_BASE_ENABLE)
		lapic_reset_state(a, a->index);
	if ((old ^ v) & ~(LAPIC_BASE_ENABLE | LAPIC_BASE_BSP))
		pr_warn("lapic %u: moving the APIC page to %#llx is not supported",
			a->index, (unsigned long long)(v & ~0xfffull));
}

static uint64_t lapic_tsc_to_ns(struct lapic *a, uint64_t tsc)
{
	uint64_t ns;

	if (!tsc)
		return 0;
	ns = a->ops->tsc_to_ns ? a->ops->tsc_to_ns(a->ctx, tsc) : tsc;
	return ns ? ns : 1;   /* 0 means "disarmed" */
}

bool lapic_msr(struct lapic *a, struct msg_cpu *msg)
{
	bool write = msg->type == CPU_MSG_WRMSR;

	switch (msg->index) {
	case MSR_IA32_APIC_BASE:
		if (!write)
			msg->value = atomic_load_explicit(&a->apic_base, memory_order_relaxed);
		else if (msg->value & ~BASE_WRITABLE)   /* reserved, or x2APIC enable */
			msg->fault = true;
		else
			lapic_set_base(a, msg->value);
		return true;
	case MSR_IA32_TSC_DEADLINE:
		/* Outside TSC-deadline mode it reads 0 and ignores writes. */
		if (!write) {
			bool armed = atomic_load_explicit(&a->deadline, memory_order_relaxed);

			msg->value = timer_mode(a) == TIMER_TSC && armed ? a->tsc_deadline : 0;
		} else if (timer_mode(a) == TIMER_TSC) {
			a->tsc_deadline = msg->value;
			a->tsc_deadline_ns = lapic_tsc_to_ns(a, msg->value);
			lapic_timer_program(a, vm_clock_ns(a->vm));
		}
		return true;
	}
	return false;
}

/* ---- The group and its receivers ---- */

static bool lapic_mmio_receive(void *dev, uint64_t addr, void *msg)
{
	struct lapic_group *g = dev;
	int cpu = bus_current_vcpu;
	struct lapic *a;

	(void)addr;
	if (cpu < 0 || cpu >= VM_MAX_VCPUS)
		return false;
	a = atomic_load_explicit(&g->apic[cpu], memory_order_acquire);
	return a && lapic_mmio(a, msg);
}

static bool lapic_apic_receive(void *dev, void *msg)
{
	return lapic_deliver(dev, msg) > 0;
}

static bool lapic_timer_receive(void *dev, void *msg)
{
	struct lapic_group *g = dev;
	const struct msg_timer *t = msg;
	unsigned count = atomic_load_explicit(&g->count, memory_order_acquire);

	for (unsigned i = 0; i < count; i++) {
		struct lapic *a = atomic_load_explicit(&g->apic[i], memory_order_acquire);

		if (a && a->timer == t->timer) {
			lapic_timer_expired(a, t->now);
			return true;
		}
	}
	return false;
}

/* INTR of the 8259 pair, wired to the BSP's LINT0 only. */
static bool lapic_legacy_receive(void *dev, void *msg)
{
	struct lapic_group *g = dev;
	const struct msg_legacy *m = msg;
	struct lapic *a = atomic_load_explicit(&g->apic[0], memory_order_acquire);

	if (!a)
		return false;
	switch (m->type) {
	case LEGACY_INTR:
		/* Release: the owner that sees INTR high sees what came before. */
		if (atomic_exchange_explicit(&a->intr, true, memory_order_acq_rel)) {
			/*
			 * Already high: the 8259 nudges when a rise may not
			 * get a message of its own.  ExtINT is level-checked
			 * at acknowledge time, so notify; fixed and NMI modes
			 * fire on the rising edge only.
			 */
			if (!hw_enabled(a) ||
			    LVT_DM(reg_get(a, LAPIC_LVT_LINT0)) == APIC_DM_EXTINT)
				lapic_notify(a);
			return true;
		}
		if (hw_enabled(a))
			lapic_fire_lvt(a, LAPIC_LVT_LINT0);
		else
			lapic_notify(a);   /* passed straight through */
		return true;
	case LEGACY_DEASSERT_INTR:
		atomic_store_explicit(&a->intr, false, memory_order_release);
		return true;
	default:
		return false;
	}
}

static bool lapic_restore_receive(void *dev, void *msg);

struct lapic_group *lapic_group_create(struct vm *vm)
{
	struct lapic_group *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->vm = vm;
	if (range_bus_add(vm->bus.mmio, LAPIC_BASE, LAPIC_SIZE, lapic_mmio_receive, true, g))
		goto out_free;
	if (bus_attach(vm->bus.apic, lapic_apic_receive, bus_claim_always, g))
		goto out_mmio;
	if (bus_attach(vm->bus.timer, lapic_timer_receive, bus_claim_always, g))
		goto out_apic;
	if (bus_attach(vm->bus.legacy, lapic_legacy_receive, bus_claim_always, g))
		goto out_timer;
	if (vm->bus.restore)
		bus_attach(vm->bus.restore, lapic_restore_receive, NULL, g);
	return g;

out_timer:
	bus_detach(vm->bus.timer, lapic_timer_receive, g);
out_apic:
	bus_detach(vm->bus.apic, lapic_apic_receive, g);
out_mmio:
	range_bus_remove(vm->bus.mmio, LAPIC_BASE);
out_free:
	free(g);
	return NULL;
}

void lapic_group_destroy(struct lapic_group *g)
{
	struct vm *vm;

	if (!g)
		return;
	vm = g->vm;
	/* Each detach waits for receivers already running (RCU grace period). */
	if (vm->bus.restore)
		bus_detach(vm->bus.restore, lapic_restore_receive, g);
	bus_detach(vm->bus.legacy, lapic_legacy_receive, g);
	bus_detach(vm->bus.timer, lapic_timer_receive, g);
	bus_detach(vm->bus.apic, lapic_apic_receive, g);
	range_bus_remove(vm->bus.mmio, LAPIC_BASE);
	for (unsigned i = 0; i < VM_MAX_VCPUS; i++) {
		struct lapic *a = atomic_load_explicit(&g->apic[i], memory_order_relaxed);

		if (!a)
			continue;
		timer_cancel(vm, a->timer);
		free(a);
	}
	free(g->glue);
	free(g);
}

struct lapic *lapic_create(struct lapic_group *g, unsigned index,
			   const struct lapic_cpu_ops *ops, void *ctx)
{
	struct lapic *a;
	unsigned count;

	if (index >= VM_MAX_VCPUS || atomic_load_explicit(&g->apic[index], memory_order_relaxed))
		return NULL;
	a = aligned_alloc(_Alignof(struct lapic), sizeof(*a));
	if (!a)
		return NULL;
	memset(a, 0, sizeof(*a));
	a->group = g;
	a->vm = g->vm;
	a->index = index;
	a->ops = ops;
	a->ctx = ctx;
	a->timer = timer_alloc(g->vm);
	atomic_store_explicit(&a->apic_base, LAPIC_BASE | LAPIC_BASE_ENABLE |
			      (index == 0 ? LAPIC_BASE_BSP : 0), memory_order_relaxed);
	lapic_reset_state(a, index);
	/* Release: senders that find the pointer see the initialised LAPIC. */
	atomic_store_explicit(&g->apic[index], a, memory_order_release);
	count = atomic_load_explicit(&g->count, memory_order_relaxed);
	if (index + 1 > count)
		atomic_store_explicit(&g->count, index + 1, memory_order_release);
	return a;
}

struct lapic *lapic_get(struct lapic_group *g, unsigned index)
{
	if (index >= VM_MAX_VCPUS)
		return NULL;
	return atomic_load_explicit(&g->apic[index], memory_order_acquire);
}

static int irq_pending(void *ctx) { return lapic_pending(ctx); }
static int irq_acknowledge(void *ctx, int token) { return lapic_acknowledge(ctx, token); }
static void irq_reset(void *ctx) { lapic_reset(ctx); }

const struct vcpu_irq_ops lapic_irq_ops = {
	.pending = irq_pending,
	.acknowledge = irq_acknowledge,
	.reset = irq_reset,
};

/* ---- State ---- */

void lapic_get_stats(const struct lapic *a, struct lapic_stats *s)
{
	s->posted = atomic_load_explicit(&a->posted, memory_order_relaxed);
	s->coalesced = atomic_load_explicit(&a->coalesced, memory_order_relaxed);
	s->acked = atomic_load_explicit(&a->acked, memory_order_relaxed);
	s->extint = atomic_load_explicit(&a->extint_acked, memory_order_relaxed);
	s->eois = atomic_load_explicit(&a->eois, memory_order_relaxed);
	s->eoi_broadcasts = atomic_load_explicit(&a->eoi_broadcasts, memory_order_relaxed);
	s->timer_fired = atomic_load_explicit(&a->timer_fired, memory_order_relaxed);
}

static void dump_bitmap(FILE *out, const char *name, const uint64_t *b)
{
	fprintf(out, "  %-4s %016llx %016llx %016llx %016llx\n", name,
		(unsigned long long)b[3], (unsigned long long)b[2],
		(unsigned long long)b[1], (unsigned long long)b[0]);
}

void lapic_dump(const struct lapic *a, FILE *out)
{
	uint64_t pir[4];
	struct lapic_stats s;

	for (unsigned w = 0; w < 4; w++)
		pir[w] = atomic_load_explicit(&a->pir[w], memory_order_relaxed);
	lapic_get_stats(a, &s);
	fprintf(out, "lapic %u: id %02x base %#llx%s%s svr %03x tpr %02x ppr %02x apr %02x"
		" ldr %08x dfr %08x esr %02x (pending %02x)%s%s\n",
		a->index, reg_get(a, LAPIC_ID) >> 24,
		(unsigned long long)atomic_load_explicit(&a->apic_base, memory_order_relaxed),
		hw_enabled(a) ? "" : " (disabled)",
		atomic_load_explicit(&a->apic_base, memory_order_relaxed) & LAPIC_BASE_BSP ?
			" bsp" : "",
		reg_get(a, LAPIC_SVR), reg_get(a, LAPIC_TPR), a->ppr,
		atomic_load_explicit(&a->arb, memory_order_relaxed),
		reg_get(a, LAPIC_LDR), reg_get(a, LAPIC_DFR), a->esr,
		atomic_load_explicit(&a->esr_pending, memory_order_relaxed),
		atomic_load_explicit(&a->intr, memory_order_relaxed) ? " intr" : "",
		atomic_load_explicit(&a->extint, memory_order_relaxed) ? " extint" : "");
	dump_bitmap(out, "IRR", a->irr);
	dump_bitmap(out, "ISR", a->isr);
	dump_bitmap(out, "TMR", a->tmr);
	dump_bitmap(out, "PIR", pir);
	fprintf(out, "  lvt timer %08x thermal %08x perf %08x lint0 %08x lint1 %08x error %08x\n",
		reg_get(a, LAPIC_LVT_TIMER), reg_get(a, LAPIC_LVT_THERMAL),
		reg_get(a, LAPIC_LVT_PERF), reg_get(a, LAPIC_LVT_LINT0),
		reg_get(a, LAPIC_LVT_LINT1), reg_get(a, LAPIC_LVT_ERROR));
	fprintf(out, "  timer tmict %08x tdcr %x deadline %llu period %llu tsc-deadline %#llx"
		" icr %08x:%08x\n",
		reg_get(a, LAPIC_TMICT), reg_get(a, LAPIC_TDCR),
		(unsigned long long)atomic_load_explicit(&a->deadline, memory_order_relaxed),
		(unsigned long long)atomic_load_explicit(&a->period, memory_order_relaxed),
		(unsigned long long)a->tsc_deadline,
		reg_get(a, LAPIC_ICR_HI), reg_get(a, LAPIC_ICR_LO));
	fprintf(out, "  posted %llu coalesced %llu acked %llu extint %llu eoi %llu"
		" (broadcast %llu) timer %llu\n",
		(unsigned long long)s.posted, (unsigned long long)s.coalesced,
		(unsigned long long)s.acked, (unsigned long long)s.extint,
		(unsigned long long)s.eois, (unsigned long long)s.eoi_broadcasts,
		(unsigned long long)s.timer_fired);
}

void lapic_group_dump(const struct lapic_group *g, FILE *out)
{
	for (unsigned i = 0; i < VM_MAX_VCPUS; i++) {
		const struct lapic *a = atomic_load_explicit(&g->apic[i], memory_order_acquire);

		if (a)
			lapic_dump(a, out);
	}
}

/* ---- The device model: one LAPIC per vCPU of the VM ---- */

struct lapic_vcpu {
	struct vcpu *vcpu;
};

static void vcpu_kick(void *ctx, uint32_t events)
{
	vcpu_post(((struct lapic_vcpu *)ctx)->vcpu, events);
}

static void vcpu_sipi(void *ctx, uint8_t vector)
{
	vcpu_post_sipi(((struct lapic_vcpu *)ctx)->vcpu, vector);
}

/*
 * Owner thread (an MSR write exit): when the guest TSC reaches @tsc.  Reads
 * the guest TSC from KVM and scales by its frequency; without KVM the TSC
 * counts VM-clock nanoseconds.
 */
static uint64_t vcpu_tsc_to_ns(void *ctx, uint64_t tsc)
{
	struct vcpu *vcpu = ((struct lapic_vcpu *)ctx)->vcpu;
	uint64_t now = vm_clock_ns(vcpu->vm), guest;
	unsigned __int128 delta;
	uint32_t khz;

	if (vcpu->fd < 0)
		return tsc;
	if (vcpu_guest_tsc(vcpu, &guest, &khz) < 0 || tsc <= guest)
		return now;
	delta = (unsigned __int128)(tsc - guest) * 1000000 / khz;
	return delta > UINT64_MAX - now ? UINT64_MAX : now + (uint64_t)delta;
}

static const struct lapic_cpu_ops lapic_vcpu_ops = {
	.kick = vcpu_kick,
	.sipi = vcpu_sipi,
	.tsc_to_ns = vcpu_tsc_to_ns,
};

static bool lapic_msr_receive(void *dev, void *msg)
{
	return lapic_msr(dev, msg);
}

static void lapic_model_exit(void *ctx)
{
	lapic_group_destroy(ctx);
}

static int lapic_model_create(struct vm *vm, const char *args)
{
	struct lapic_group *g;
	struct lapic_vcpu *glue;

	if (args && *args) {
		pr_err("lapic: takes no arguments");
		return -EINVAL;
	}
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (!vm->vcpu[i]) {
			pr_err("lapic: vCPU %u does not exist yet", i);
			return -ENODEV;
		}
	g = lapic_group_create(vm);
	if (!g)
		return -ENOMEM;
	glue = calloc(vm->ncpus ? vm->ncpus : 1, sizeof(*glue));
	if (!glue) {
		lapic_group_destroy(g);
		return -ENOMEM;
	}
	g->glue = glue;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct lapic *a;

		glue[i].vcpu = vm->vcpu[i];
		a = lapic_create(g, i, &lapic_vcpu_ops, &glue[i]);
		if (!a || bus_attach(vm->vcpu[i]->bus, lapic_msr_receive, bus_claim_always, a)) {
			pr_err("lapic: cannot create the LAPIC of vCPU %u", i);
			while (i--)
				bus_detach(vm->vcpu[i]->bus, lapic_msr_receive, lapic_get(g, i));
			lapic_group_destroy(g);
			return -ENOMEM;
		}
	}
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_set_irq_ops(vm->vcpu[i], &lapic_irq_ops, lapic_get(g, i));
	vm_at_exit(vm, lapic_model_exit, g);
	return 0;
}

DEVICE_MODEL(lapic_model,
	.name = "lapic",
	.help = "lapic  local APIC (xAPIC) of every vCPU at 0xfee00000, with its timer",
	.create = lapic_model_create);

/*
 * ---- Snapshots (vmm/snapshot.h): section "lapic", instance = vCPU index.
 * Called with the VM paused: no sender, owner or timer thread runs, so
 * the owner's fields may be read and written from here.
 */
#include "bus/message.h"
#include "vmm/stream.h"

#define LAPIC_STATE_VERSION 1

static void lapic_save(struct lapic *a, struct stream *s)
{
	stream_section_begin(s, "lapic", a->index, LAPIC_STATE_VERSION);
	for (unsigned i = 0; i < NSLOTS; i++)
		stream_put_u32(s, atomic_load(&a->reg[i]));
	for (unsigned w = 0; w < 4; w++) {
		stream_put_u64(s, atomic_load(&a->pir[w]));
		stream_put_u64(s, atomic_load(&a->pir_level[w]));
		stream_put_u64(s, a->irr[w]);
		stream_put_u64(s, a->isr[w]);
		stream_put_u64(s, a->tmr[w]);
	}
	stream_put_u8(s, atomic_load(&a->extint));
	stream_put_u8(s, atomic_load(&a->intr));
	stream_put_u32(s, atomic_load(&a->esr_pending));
	stream_put_u64(s, atomic_load(&a->deadline));
	stream_put_u64(s, atomic_load(&a->period));
	stream_put_u64(s, atomic_load(&a->apic_base));
	stream_put_u32(s, atomic_load(&a->arb));
	stream_put_u32(s, a->ppr);
	stream_put_u32(s, a->esr);
	stream_put_u64(s, a->timer_start);
	stream_put_u64(s, a->tsc_deadline);
	stream_put_u64(s, a->tsc_deadline_ns);
	stream_section_end(s);
}

static int lapic_load(struct lapic *a, struct stream *s)
{
	uint32_t reg[NSLOTS];
	uint64_t bm[5][4];

	if (stream_section_open(s, "lapic", a->index, LAPIC_STATE_VERSION, NULL))
		return stream_error(s);
	for (unsigned i = 0; i < NSLOTS; i++)
		reg[i] = stream_get_u32(s);
	for (unsigned w = 0; w < 4; w++)
		for (unsigned k = 0; k < 5; k++)
			bm[k][w] = stream_get_u64(s);
	/* Read all first: a short section changes nothing. */
	bool extint = stream_get_u8(s), intr = stream_get_u8(s);
	uint32_t esr_pending = stream_get_u32(s);
	uint64_t deadline = stream_get_u64(s), period = stream_get_u64(s);
	uint64_t apic_base = stream_get_u64(s);
	uint32_t arb = stream_get_u32(s), ppr = stream_get_u32(s), esr = stream_get_u32(s);
	uint64_t timer_start = stream_get_u64(s), tsc_deadline = stream_get_u64(s);
	uint64_t tsc_deadline_ns = stream_get_u64(s);

	if (stream_section_close(s))
		return stream_error(s);
	for (unsigned i = 0; i < NSLOTS; i++)
		atomic_store(&a->reg[i], reg[i]);
	for (unsigned w = 0; w < 4; w++) {
		atomic_store(&a->pir[w], bm[0][w]);
		atomic_store(&a->pir_level[w], bm[1][w]);
		a->irr[w] = bm[2][w];
		a->isr[w] = bm[3][w];
		a->tmr[w] = bm[4][w];
	}
	atomic_store(&a->extint, extint);
	atomic_store(&a->intr, intr);
	atomic_store(&a->esr_pending, esr_pending);
	atomic_store(&a->period, period);
	atomic_store(&a->deadline, deadline);
	atomic_store(&a->apic_base, apic_base);
	atomic_store(&a->arb, arb);
	a->ppr = ppr;
	a->esr = esr;
	a->timer_start = timer_start;
	a->tsc_deadline = tsc_deadline;
	a->tsc_deadline_ns = tsc_deadline_ns;
	/* The VM clock continues from the checkpoint: the deadline stands as saved. */
	if (deadline)
		timer_arm(a->vm, a->timer, deadline);
	else
		timer_cancel(a->vm, a->timer);
	/* Let the owner look at what is pending before its first entry. */
	atomic_store(&a->notify, false);
	if (bitmap_highest(a->irr) >= 0 || bm[0][0] | bm[0][1] | bm[0][2] | bm[0][3] || extint)
		lapic_notify(a);
	return 0;
}

static bool lapic_restore_receive(void *dev, void *msg)
{
	struct lapic_group *g = dev;
	struct msg_restore *m = msg;

	for (unsigned i = 0; i < atomic_load(&g->count) && !m->error; i++) {
		struct lapic *a = atomic_load(&g->apic[i]);

		if (!a)
			continue;
		if (m->type == RESTORE_SAVE)
			lapic_save(a, m->s);
		else
			m->error = lapic_load(a, m->s);
	}
	return true;
}
