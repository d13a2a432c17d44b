/*
 * The VMM's QMP commands and events.  Names and reply shapes are QEMU's
 * where QEMU has the command (the qapi schema files); ours start with "x-".
 *
 * Every command runs on the QMP server thread.  Those that read vCPU state
 * pause the VM around the read (pauses nest, so a VM stopped with "stop"
 * stays stopped), because KVM's vCPU ioctls are only safe from another
 * thread while the vCPU is out of KVM_RUN.
 *
 * 64-bit register and MSR values are hex strings ("0x11111111"): jansson's
 * integers are signed 64-bit and would turn the upper half negative.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bus/range.h"
#include "devices/ioapic.h"
#include "devices/lapic.h"
#include "devices/pic8259.h"
#include "devices/pit8254.h"
#include "devices/reset.h"
#include "unix/qmp.h"
#include "vmm/global_lock.h"
#include "vmm/iothread.h"
#include "vmm/log.h"
#include "vmm/machine_reset.h"
#include "vmm/pause.h"
#include "vmm/snapshot.h"
#include "vmm/state_dump.h"
#include "vmm/timer.h"
#include "vmm/vcpu.h"
#include "vmm/vcpu_exit.h"
#include "vmm/vm.h"

/* One VM per process, one control socket. */
static struct {
	struct vm *vm;
	bool paused;              /* "stop" holds a pause (server thread only) */
	bool prelaunch;           /* --qmp-wait and no "cont" yet */
	_Atomic bool quit;        /* the exit came from "quit" */
	_Atomic bool panicked;    /* GUEST_PANICKED went out */
	pthread_mutex_t lock;     /* guards @srv against qmp_stop() */
	struct qmp_server *srv;
} qmp = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void emit_event(const char *name, json_t *data)
{
	pthread_mutex_lock(&qmp.lock);
	if (qmp.srv)
		qmp_server_event(qmp.srv, name, data);
	else
		json_decref(data);
	pthread_mutex_unlock(&qmp.lock);
}

static json_t *hex(uint64_t v)
{
	return json_sprintf("0x%llx", (unsigned long long)v);
}

static int cpu_index_arg(json_t *args, const char *key, int dflt, struct qmp_error *err)
{
	json_t *v = json_object_get(args, key);
	json_int_t i = v ? json_integer_value(v) : dflt;

	if (i < 0 || i >= (json_int_t)qmp.vm->ncpus || !qmp.vm->vcpu[i]) {
		qmp_error_set(err, QMP_ERR_GENERIC, "CPU index %lld out of range (the VM has %u)",
			      (long long)i, qmp.vm->ncpus);
		return -1;
	}
	return (int)i;
}

/* ---- Run state ---- */

static const char *run_status(void)
{
	const char *migration = qmp_migrate_run_status();

	if (atomic_load(&qmp.vm->exiting))
		return atomic_load(&qmp.panicked) ? "guest-panicked" : "shutdown";
	if (migration)
		return migration;
	if (qmp.prelaunch)
		return "prelaunch";
	/* A dump's brief pause (SIGUSR1, x-dump-state) is not a state of the VM. */
	if (qmp.paused)
		return "paused";
	return "running";
}

static int cmd_query_status(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	const char *status = run_status();

	(void)ctx, (void)args, (void)err;
	*ret = json_pack("{s:b,s:s}", "running", !strcmp(status, "running"), "status", status);
	return 0;
}

static int cmd_stop(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	(void)ctx, (void)args, (void)ret, (void)err;
	if (qmp.paused)
		return 0;
	vm_pause(qmp.vm);
	qmp.paused = true;
	emit_event("STOP", NULL);
	return 0;
}

static int cmd_cont(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	(void)ctx, (void)args, (void)ret;
	if (atomic_load(&qmp.vm->exiting)) {
		qmp_error_set(err, QMP_ERR_GENERIC, "The VM is shutting down");
		return -1;
	}
	if (!qmp.paused)
		return 0;
	qmp.paused = qmp.prelaunch = false;
	vm_resume(qmp.vm);
	emit_event("RESUME", NULL);
	return 0;
}

static int cmd_quit(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	(void)ctx, (void)args, (void)ret, (void)err;
	atomic_store(&qmp.quit, true);
	vm_request_exit(qmp.vm, 0);
	return 0;
}

/*
 * Returns at once, as QEMU's: the reset thread does the work and sends
 * RESET when the machine is back at power-on.  Unlike QEMU's -no-reboot,
 * --on-reboot exit governs only the guest's own resets: the host asked.
 */
static int cmd_system_reset(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	(void)ctx, (void)args, (void)ret;
	if (atomic_load(&qmp.vm->exiting)) {
		qmp_error_set(err, QMP_ERR_GENERIC, "The VM is shutting down");
		return -1;
	}
	if (machine_reset_request(qmp.vm, MACHINE_RESET_HOST_QMP) < 0) {
		qmp_error_set(err, QMP_ERR_GENERIC, "this VM has no power-on state to reset to");
		return -1;
	}
	return 0;
}

/* As QEMU on x86: an NMI to every CPU, past the LAPIC's LINT1 mask. */
static int cmd_inject_nmi(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	(void)ctx, (void)args, (void)ret, (void)err;
	for (unsigned i = 0; i < qmp.vm->ncpus; i++)
		if (qmp.vm->vcpu[i])
			vcpu_post(qmp.vm->vcpu[i], VCPU_EV_NMI);
	return 0;
}

/* QEMU's CpuInfoFast, plus where the vCPU runs and what it does. */
static json_t *cpu_info(struct vcpu *v)
{
	/* The state first: its acquire load orders the thread's start-up writes (tid). */
	const char *state = vcpu_run_state_name(v), *activity = vcpu_activity_name(v);

	return json_pack("{s:i,s:i,s:o,s:{s:i,s:i,s:i},s:s,s:i,s:s,s:s,s:I}",
			 "cpu-index", (int)v->id, "thread-id", (int)v->tid,
			 "qom-path", json_sprintf("/machine/cpu[%u]", v->id),
			 "props", "socket-id", (int)v->id,
			 "core-id", 0, "thread-id", 0, "target", "x86_64",
			 "x-host-cpu", v->host_cpu, "x-state", state, "x-activity", activity,
			 "x-exits", (json_int_t)vcpu_exit_count(v));
}

static int cmd_query_cpus_fast(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	json_t *list = json_array();

	(void)ctx, (void)args, (void)err;
	for (unsigned i = 0; i < qmp.vm->ncpus; i++)
		if (qmp.vm->vcpu[i])
			json_array_append_new(list, cpu_info(qmp.vm->vcpu[i]));
	*ret = list;
	return 0;
}

/* ---- Statistics ---- */

static json_t *bus_stats_json(const char *name, const struct bus_stats *s)
{
	return json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I,s:I}}", "name", name,
		"sent", (json_int_t)atomic_load(&s->sent),
		"claimed", (json_int_t)atomic_load(&s->claimed),
		"sync", (json_int_t)atomic_load(&s->sync),
		"async", (json_int_t)atomic_load(&s->async),
		"unhandled", (json_int_t)atomic_load(&s->unhandled),
		"max-queue-depth", (json_int_t)atomic_load(&s->max_depth),
		"latency-ns", "p50", (json_int_t)bus_stats_percentile(s, 50),
		"p90", (json_int_t)bus_stats_percentile(s, 90),
		"p99", (json_int_t)bus_stats_percentile(s, 99),
		"p999", (json_int_t)bus_stats_percentile(s, 99.9));
}

static json_t *vcpu_times_json(struct vcpu *v)
{
	uint64_t ns[VCPU_TIME_COUNT];
	json_t *times = json_object();

	vcpu_runstate_read(v, ns);
	for (unsigned i = 0; i < VCPU_TIME_COUNT; i++)
		json_object_set_new(times, vcpu_time_names[i], json_integer((json_int_t)ns[i]));
	return json_pack("{s:i,s:I,s:o}", "cpu-index", (int)v->id, "exits",
			 (json_int_t)vcpu_exit_count(v), "time-ns", times);
}

static int cmd_bus_stats(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	struct vm *vm = qmp.vm;
	const struct { const char *name; struct bus *bus; } buses[] = {
		{ "irq", vm->bus.irq }, { "legacy", vm->bus.legacy }, { "apic", vm->bus.apic },
		{ "eoi", vm->bus.eoi }, { "timer", vm->bus.timer }, { "console", vm->bus.console },
	};
	json_t *list = json_array(), *cpus = json_array();

	(void)ctx, (void)args, (void)err;
	json_array_append_new(list, bus_stats_json("pio", range_bus_stats(vm->bus.pio)));
	json_array_append_new(list, bus_stats_json("mmio", range_bus_stats(vm->bus.mmio)));
	for (size_t i = 0; i < sizeof(buses) / sizeof(buses[0]); i++)
		json_array_append_new(list, bus_stats_json(buses[i].name, bus_stats(buses[i].bus)));
	for (unsigned i = 0; i < vm->ncpus; i++) {
		char name[16];

		if (!vm->vcpu[i])
			continue;
		snprintf(name, sizeof(name), "cpu%u", i);
		json_array_append_new(list, bus_stats_json(name, bus_stats(vm->vcpu[i]->bus)));
		json_array_append_new(cpus, vcpu_times_json(vm->vcpu[i]));
	}
	*ret = json_pack("{s:s,s:o,s:I,s:I,s:I,s:I,s:o}",
		"io-mode", vm->io_mode == IO_MODE_THREAD ? "thread" : "lock", "buses", list,
		"iothread-queue-depth",
		(json_int_t)(vm->iothread ? iothread_queue_depth(vm->iothread) : 0),
		"global-lock-wait-ns", (json_int_t)global_lock_wait_ns(),
		"unhandled-pio", (json_int_t)vcpu_unhandled_pio(),
		"unhandled-mmio", (json_int_t)vcpu_unhandled_mmio(), "vcpus", cpus);
	return 0;
}

/* ---- State as JSON ---- */

static json_t *segment_json(const struct kvm_segment *s)
{
	return json_pack("{s:i,s:o,s:I,s:i,s:b,s:i,s:b,s:b,s:b,s:b,s:b,s:b}",
		"selector", s->selector, "base", hex(s->base), "limit", (json_int_t)s->limit,
		"type", s->type, "present", s->present, "dpl", s->dpl, "db", s->db, "s", s->s,
		"l", s->l, "g", s->g, "avl", s->avl, "unusable", s->unusable);
}

static json_t *regs_json(const struct kvm_regs *r)
{
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,"
			 "s:o,s:o}",
		"rax", hex(r->rax), "rbx", hex(r->rbx), "rcx", hex(r->rcx), "rdx", hex(r->rdx),
		"rsi", hex(r->rsi), "rdi", hex(r->rdi), "rbp", hex(r->rbp), "rsp", hex(r->rsp),
		"r8", hex(r->r8), "r9", hex(r->r9), "r10", hex(r->r10), "r11", hex(r->r11),
		"r12", hex(r->r12), "r13", hex(r->r13), "r14", hex(r->r14), "r15", hex(r->r15),
		"rip", hex(r->rip), "rflags", hex(r->rflags));
}

static json_t *sregs_json(const struct kvm_sregs *s)
{
	json_t *o = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
		"cs", segment_json(&s->cs), "ds", segment_json(&s->ds), "es", segment_json(&s->es),
		"fs", segment_json(&s->fs), "gs", segment_json(&s->gs), "ss", segment_json(&s->ss),
		"tr", segment_json(&s->tr), "ldt", segment_json(&s->ldt));

	json_object_set_new(o, "gdt", json_pack("{s:o,s:i}", "base", hex(s->gdt.base),
						"limit", s->gdt.limit));
	json_object_set_new(o, "idt", json_pack("{s:o,s:i}", "base", hex(s->idt.base),
						"limit", s->idt.limit));
	json_object_set_new(o, "cr0", hex(s->cr0));
	json_object_set_new(o, "cr2", hex(s->cr2));
	json_object_set_new(o, "cr3", hex(s->cr3));
	json_object_set_new(o, "cr4", hex(s->cr4));
	json_object_set_new(o, "cr8", hex(s->cr8));
	json_object_set_new(o, "efer", hex(s->efer));
	return o;
}

static json_t *bytes_hex(const uint8_t *p, size_t n)
{
	char buf[2 * 16 + 3] = "0x";

	/* Little-endian registers, printed most significant byte first. */
	for (size_t i = 0; i < n && i < 16; i++)
		snprintf(buf + 2 + 2 * i, 3, "%02x", p[n - 1 - i]);
	return json_string(buf);
}

static json_t *fpu_json(const struct kvm_fpu *f)
{
	json_t *st = json_array(), *xmm = json_array();

	for (unsigned i = 0; i < 8; i++)
		json_array_append_new(st, bytes_hex(f->fpr[i], 10));
	for (unsigned i = 0; i < 16; i++)
		json_array_append_new(xmm, bytes_hex(f->xmm[i], 16));
	return json_pack("{s:i,s:i,s:i,s:i,s:o,s:o,s:o,s:o,s:o}", "fcw", f->fcw, "fsw", f->fsw,
		"ftw", f->ftwx, "fop", f->last_opcode, "fip", hex(f->last_ip),
		"fdp", hex(f->last_dp), "mxcsr", hex(f->mxcsr), "st", st, "xmm", xmm);
}

static json_t *xsave_json(const struct vcpu_state_dump *st)
{
	const uint8_t *x = (const uint8_t *)st->xsave->region;
	uint64_t bv, comp;

	memcpy(&bv, x + 512, 8);
	memcpy(&comp, x + 520, 8);
	return json_pack("{s:I,s:o,s:o}", "size", (json_int_t)st->xsave_size,
			 "xstate-bv", hex(bv), "xcomp-bv", hex(comp));
}

static json_t *events_json(const struct kvm_vcpu_events *e)
{
	return json_pack("{s:{s:b,s:b,s:i,s:b,s:I},s:{s:b,s:i,s:b,s:i},s:{s:b,s:b,s:b},"
			 "s:i,s:b,s:b}",
		"exception", "injected", e->exception.injected, "pending", e->exception.pending,
		"nr", e->exception.nr, "has-error-code", e->exception.has_error_code,
		"error-code", (json_int_t)e->exception.error_code,
		"interrupt", "injected", e->interrupt.injected, "nr", e->interrupt.nr,
		"soft", e->interrupt.soft, "shadow", e->interrupt.shadow,
		"nmi", "injected", e->nmi.injected, "pending", e->nmi.pending,
		"masked", e->nmi.masked,
		"sipi-vector", (int)e->sipi_vector, "smm", e->smi.smm,
		"triple-fault-pending", e->triple_fault.pending);
}

static json_t *vectors_json(const struct vcpu_state_dump *st, unsigned reg)
{
	uint8_t v[256];
	unsigned n = state_lapic_vectors(st, reg, v);
	json_t *list = json_array();

	for (unsigned i = 0; i < n; i++)
		json_array_append_new(list, json_integer(v[i]));
	return list;
}

static json_t *lapic_json(const struct vcpu_state_dump *st)
{
	static const struct { unsigned off; const char *name; } regs[] = {
		{ LAPIC_ID, "id" }, { LAPIC_VER, "version" }, { LAPIC_TPR, "tpr" },
		{ LAPIC_APR, "apr" }, { LAPIC_PPR, "ppr" }, { LAPIC_LDR, "ldr" },
		{ LAPIC_DFR, "dfr" }, { LAPIC_SVR, "svr" }, { LAPIC_ESR, "esr" },
		{ LAPIC_ICR_LO, "icr-lo" }, { LAPIC_ICR_HI, "icr-hi" },
		{ LAPIC_LVT_TIMER, "lvt-timer" }, { LAPIC_LVT_THERMAL, "lvt-thermal" },
		{ LAPIC_LVT_PERF, "lvt-perf" }, { LAPIC_LVT_LINT0, "lvt-lint0" },
		{ LAPIC_LVT_LINT1, "lvt-lint1" }, { LAPIC_LVT_ERROR, "lvt-error" },
		{ LAPIC_TMICT, "timer-initial" }, { LAPIC_TMCCT, "timer-current" },
		{ LAPIC_TDCR, "timer-divide" },
	};
	json_t *o = json_object();

	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
		json_object_set_new(o, regs[i].name, hex(st->lapic_regs[regs[i].off >> 4]));
	json_object_set_new(o, "isr", vectors_json(st, LAPIC_ISR));
	json_object_set_new(o, "irr", vectors_json(st, LAPIC_IRR));
	json_object_set_new(o, "tmr", vectors_json(st, LAPIC_TMR));
	return o;
}

static json_t *vcpu_state_json(const struct vcpu_state_dump *st)
{
	json_t *o = json_pack("{s:i,s:i,s:i,s:s,s:s,s:I}", "cpu-index", (int)st->id,
			      "thread-id", st->tid, "host-cpu", st->host_cpu,
			      "state", st->run_state, "activity", st->activity,
			      "exits", (json_int_t)st->exits);
	json_t *msrs = json_array();

	if (st->error)
		json_object_set_new(o, "error", json_string(strerror(-st->error)));
	if (st->have & STATE_REGS)
		json_object_set_new(o, "regs", regs_json(&st->regs));
	if (st->have & STATE_SREGS)
		json_object_set_new(o, "sregs", sregs_json(&st->sregs));
	if (st->have & STATE_PDPTRS)
		json_object_set_new(o, "pdptrs", json_pack("[o,o,o,o]", hex(st->pdptrs[0]),
			hex(st->pdptrs[1]), hex(st->pdptrs[2]), hex(st->pdptrs[3])));
	if (st->have & STATE_FPU)
		json_object_set_new(o, "fpu", fpu_json(&st->fpu));
	if (st->have & STATE_XSAVE)
		json_object_set_new(o, "xsave", xsave_json(st));
	if (st->have & STATE_XCRS) {
		json_t *xcrs = json_array();

		for (unsigned i = 0; i < st->xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++)
			json_array_append_new(xcrs, json_pack("{s:i,s:o}", "xcr",
				(int)st->xcrs.xcrs[i].xcr, "value", hex(st->xcrs.xcrs[i].value)));
		json_object_set_new(o, "xcrs", xcrs);
	}
	if (st->have & STATE_DEBUGREGS)
		json_object_set_new(o, "debugregs", json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}",
			"dr0", hex(st->debugregs.db[0]), "dr1", hex(st->debugregs.db[1]),
			"dr2", hex(st->debugregs.db[2]), "dr3", hex(st->debugregs.db[3]),
			"dr6", hex(st->debugregs.dr6), "dr7", hex(st->debugregs.dr7)));
	if (st->have & STATE_EVENTS)
		json_object_set_new(o, "events", events_json(&st->events));
	for (unsigned i = 0; i < st->nmsrs; i++)
		json_array_append_new(msrs, json_pack("{s:o,s:s,s:o,s:s}",
			"index", hex(st->msrs[i].index), "name", st->msrs[i].name,
			"value", hex(st->msrs[i].value),
			"source", st->msrs[i].from_lapic ? "lapic" : "kvm"));
	json_object_set_new(o, "msrs", msrs);
	if (st->have & STATE_LAPIC)
		json_object_set_new(o, "lapic", lapic_json(st));
	return o;
}

static json_t *pic_json(struct pic *pic)
{
	struct pic_snapshot s;
	json_t *chips = json_array();

	pic_snapshot(pic, &s);
	for (unsigned i = 0; i < 2; i++)
		json_array_append_new(chips, json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:b,s:b}",
			"irr", s.irr[i], "isr", s.isr[i], "imr", s.imr[i], "level", s.level[i],
			"elcr", s.elcr[i], "vector-base", s.vector_base[i],
			"priority", s.priority[i], "auto-eoi", s.auto_eoi[i],
			"special-mask", s.special_mask[i]));
	return json_pack("{s:o,s:b}", "chips", chips, "output", s.output);
}

static json_t *ioapic_json(struct ioapic *io)
{
	struct ioapic_stats s = ioapic_stats(io);
	json_t *pins = json_array();

	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t rte = ioapic_entry(io, pin);

		json_array_append_new(pins, json_pack("{s:i,s:o,s:i,s:i,s:b,s:b,s:b,s:b,s:i}",
			"pin", (int)pin, "entry", hex(rte), "vector", (int)(rte & IOAPIC_RTE_VECTOR),
			"delivery-mode", (int)(rte >> 8 & 7), "masked", !!(rte & IOAPIC_RTE_MASKED),
			"level", !!(rte & IOAPIC_RTE_LEVEL),
			"remote-irr", !!(rte & IOAPIC_RTE_REMOTE_IRR),
			"asserted", ioapic_pin_asserted(io, pin),
			"dest", (int)(rte >> IOAPIC_RTE_DEST_SHIFT)));
	}
	return json_pack("{s:o,s:{s:I,s:I,s:I,s:I}}", "pins", pins, "stats",
		"delivered", (json_int_t)s.delivered, "undelivered", (json_int_t)s.undelivered,
		"masked", (json_int_t)s.masked, "bad-mode", (json_int_t)s.bad_mode);
}

static json_t *pit_json(struct vm *vm, struct pit *pit)
{
	const struct pit_chip *c = pit_chip(pit);
	const struct pit_irq_track *t = pit_irq_stats(pit);
	uint64_t now = vm_clock_ns(vm);
	json_t *channels = json_array();

	for (unsigned i = 0; i < 3; i++)
		json_array_append_new(channels, json_pack("{s:i,s:i,s:b,s:i,s:I,s:b,s:b}",
			"mode", c->ch[i].mode_bits, "access", c->ch[i].access, "bcd", c->ch[i].bcd,
			"reload", c->ch[i].cr, "count", (json_int_t)pit_chip_count(c, i, now),
			"gate", c->ch[i].gate, "out", pit_chip_out(c, i, now)));
	return json_pack("{s:o,s:i,s:{s:I,s:I}}", "channels", channels, "port61", c->port61,
			 "irq0", "raised", (json_int_t)t->fired, "coalesced", (json_int_t)t->coalesced);
}

struct devices_request {
	struct vm *vm;
	json_t *out;
};

static void build_devices_json(void *arg)
{
	struct devices_request *r = arg;
	struct pic *pic = pic_find(r->vm);
	struct ioapic *io = ioapic_find(r->vm);
	struct pit *pit = pit_find(r->vm);

	if (pic)
		json_object_set_new(r->out, "pic", pic_json(pic));
	if (io)
		json_object_set_new(r->out, "ioapic", ioapic_json(io));
	if (pit)
		json_object_set_new(r->out, "pit", pit_json(r->vm, pit));
}

static json_t *devices_json(struct vm *vm)
{
	struct devices_request r = { vm, json_object() };

	/* The IOAPIC and the PIT keep plain state: read it where their callbacks run. */
	vm_run_serialized(vm, build_devices_json, &r);
	return r.out;
}

/* Text output of a printer into a JSON string. */
static json_t *text_of(void (*print)(void *arg, FILE *out), void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_t *s;

	if (!f)
		return NULL;
	print(arg, f);
	fclose(f);
	s = json_stringn(buf, len);
	free(buf);
	return s;
}

struct dump_request {
	int cpu;            /* -1: all */
	bool text;
	json_t *result;
};

static void print_dump(void *arg, FILE *out)
{
	struct dump_request *r = arg;

	for (unsigned i = 0; i < qmp.vm->ncpus; i++) {
		struct vcpu_state_dump st;

		if (!qmp.vm->vcpu[i] || (r->cpu >= 0 && (unsigned)r->cpu != i))
			continue;
		vcpu_state_read(qmp.vm->vcpu[i], &st);
		vcpu_state_print(&st, out);
		vcpu_state_free(&st);
	}
	vm_devices_print(qmp.vm, out);
}

static json_t *dump_json(const struct dump_request *r)
{
	json_t *cpus = json_array(), *o;

	for (unsigned i = 0; i < qmp.vm->ncpus; i++) {
		struct vcpu_state_dump st;

		if (!qmp.vm->vcpu[i] || (r->cpu >= 0 && (unsigned)r->cpu != i))
			continue;
		vcpu_state_read(qmp.vm->vcpu[i], &st);
		json_array_append_new(cpus, vcpu_state_json(&st));
		vcpu_state_free(&st);
	}
	o = devices_json(qmp.vm);
	json_object_set_new(o, "vcpus", cpus);
	return o;
}

static int cmd_dump_state(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	struct dump_request r = { .cpu = -1 };
	json_t *format = json_object_get(args, "format");

	(void)ctx;
	if (json_object_get(args, "cpu-index") &&
	    (r.cpu = cpu_index_arg(args, "cpu-index", 0, err)) < 0)
		return -1;
	if (format && strcmp(json_string_value(format), "json") &&
	    strcmp(json_string_value(format), "text")) {
		qmp_error_set(err, QMP_ERR_GENERIC,
			      "Parameter 'format' does not accept value '%.32s' (json, text)",
			      json_string_value(format));
		return -1;
	}
	r.text = format && !strcmp(json_string_value(format), "text");
	vm_pause(qmp.vm);
	*ret = r.text ? text_of(print_dump, &r) : dump_json(&r);
	vm_resume(qmp.vm);
	if (!*ret) {
		qmp_error_set(err, QMP_ERR_GENERIC, "out of memory");
		return -1;
	}
	return 0;
}

/* ---- pmemsave: guest-physical memory to a file, as in QEMU ---- */

static int cmd_pmemsave(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	json_int_t addr = json_integer_value(json_object_get(args, "val"));
	json_int_t size = json_integer_value(json_object_get(args, "size"));
	const char *path = json_string_value(json_object_get(args, "filename"));
	uint8_t buf[65536];
	int fd;

	(void)ctx, (void)ret;
	if (addr < 0 || size < 0 || (uint64_t)size > qmp.vm->mem.size ||
	    gpa_ptr(&qmp.vm->mem, (uint64_t)addr, (uint64_t)size ? (uint64_t)size : 1) == NULL) {
		qmp_error_set(err, QMP_ERR_GENERIC, "Invalid addr 0x%llx/size %lld specified",
			      (unsigned long long)addr, (long long)size);
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		qmp_error_set(err, QMP_ERR_GENERIC, "Could not open '%.128s'", path);
		return -1;
	}
	for (json_int_t done = 0; done < size;) {
		size_t n = size - done < (json_int_t)sizeof(buf) ? (size_t)(size - done) : sizeof(buf);

		if (gpa_read(&qmp.vm->mem, (uint64_t)(addr + done), buf, n) < 0 ||
		    write(fd, buf, n) != (ssize_t)n) {
			qmp_error_set(err, QMP_ERR_GENERIC, "writing memory to '%.128s' failed", path);
			close(fd);
			return -1;
		}
		done += (json_int_t)n;
	}
	close(fd);
	return 0;
}

/* ---- human-monitor-command: the few HMP commands people reach for ---- */

struct hmp {
	const char *line;   /* after the command word */
	int cpu;
	FILE *out;
};

static int hmp_run_qmp(int (*fn)(void *, json_t *, json_t **, struct qmp_error *), FILE *out)
{
	struct qmp_error err = { QMP_ERR_GENERIC, "" };
	json_t *ret = NULL;
	int rc = fn(NULL, NULL, &ret, &err);

	json_decref(ret);
	if (rc < 0)
		fprintf(out, "Error: %s\n", err.desc);
	return rc;
}

static void hmp_registers(struct hmp *h, bool all)
{
	vm_pause(qmp.vm);
	for (unsigned i = 0; i < qmp.vm->ncpus; i++) {
		struct vcpu_state_dump st;

		if (!qmp.vm->vcpu[i] || (!all && (int)i != h->cpu))
			continue;
		vcpu_state_read(qmp.vm->vcpu[i], &st);
		if (all)
			fprintf(h->out, "\nCPU#%u\n", i);
		vcpu_state_print_registers(&st, h->out);
		vcpu_state_free(&st);
	}
	vm_resume(qmp.vm);
}

static void hmp_lapic(struct hmp *h, const char *arg)
{
	struct vcpu_state_dump st;
	char *end;
	long cpu = h->cpu;

	if (*arg) {
		cpu = strtol(arg, &end, 0);
		if (*end || cpu < 0 || cpu >= (long)qmp.vm->ncpus || !qmp.vm->vcpu[cpu]) {
			fprintf(h->out, "Invalid APIC ID '%s'\n", arg);
			return;
		}
	}
	vm_pause(qmp.vm);
	vcpu_state_read(qmp.vm->vcpu[cpu], &st);
	vm_resume(qmp.vm);
	vcpu_state_print_lapic(&st, h->out);
	vcpu_state_free(&st);
}

static void hmp_info(struct hmp *h, const char *what, const char *arg)
{
	if (!strcmp(what, "registers")) {
		hmp_registers(h, !strcmp(arg, "-a"));
	} else if (!strcmp(what, "lapic")) {
		hmp_lapic(h, arg);
	} else if (!strcmp(what, "status")) {
		fprintf(h->out, "VM status: %s\n", run_status());
	} else if (!strcmp(what, "cpus")) {
		for (unsigned i = 0; i < qmp.vm->ncpus; i++)
			if (qmp.vm->vcpu[i])
				fprintf(h->out, "%c CPU #%u: thread_id=%d\n", (int)i == h->cpu ? '*' : ' ',
					i, qmp.vm->vcpu[i]->tid);
	} else {
		fprintf(h->out, "info: unknown item '%s' (registers [-a], lapic [id], status, cpus)\n",
			what);
	}
}

static void print_hmp(void *arg, FILE *out)
{
	struct hmp *h = arg;
	char cmd[32] = "", what[32] = "", rest[64] = "";
	int n = sscanf(h->line, "%31s %31s %63[^\n]", cmd, what, rest);

	h->out = out;
	if (n < 1)
		return;
	if (!strcmp(cmd, "info") && n >= 2)
		hmp_info(h, what, rest);
	else if (!strcmp(cmd, "stop"))
		hmp_run_qmp(cmd_stop, out);
	else if (!strcmp(cmd, "cont") || !strcmp(cmd, "c"))
		hmp_run_qmp(cmd_cont, out);
	else if (!strcmp(cmd, "quit") || !strcmp(cmd, "q"))
		hmp_run_qmp(cmd_quit, out);
	else if (!strcmp(cmd, "nmi"))
		hmp_run_qmp(cmd_inject_nmi, out);
	else if (!strcmp(cmd, "system_reset"))
		hmp_run_qmp(cmd_system_reset, out);
	else if (!strcmp(cmd, "help") || !strcmp(cmd, "?") || !strcmp(cmd, "info"))
		fprintf(out, "info registers [-a] | info lapic [apic-id] | info status | info cpus"
			" | stop | cont | quit | nmi | system_reset\n");
	else
		fprintf(out, "unknown command: '%s'\n", cmd);
}

static int cmd_hmp(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	struct hmp h = { .line = json_string_value(json_object_get(args, "command-line")) };

	(void)ctx;
	if ((h.cpu = cpu_index_arg(args, "cpu-index", 0, err)) < 0)
		return -1;
	/* As QEMU: HMP's own errors are text in a successful reply. */
	*ret = text_of(print_hmp, &h);
	if (!*ret) {
		qmp_error_set(err, QMP_ERR_GENERIC, "out of memory");
		return -1;
	}
	return 0;
}

/* ---- The table ---- */

static const struct qmp_arg hmp_args[] = {
	{ "command-line", QMP_ARG_STR, false },
	{ "cpu-index", QMP_ARG_INT, true },
	{ NULL },
};

static const struct qmp_arg dump_args[] = {
	{ "cpu-index", QMP_ARG_INT, true },
	{ "format", QMP_ARG_STR, true },
	{ NULL },
};

/*
 * x-snapshot-save {"file": PATH, "stay-stopped": BOOL}: the VM pauses, is
 * saved, and runs on unless asked to stay stopped (then it is as after
 * `stop`: `cont` resumes it).
 */
static int cmd_snapshot_save(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	const char *file = json_string_value(json_object_get(args, "file"));
	bool stay = json_is_true(json_object_get(args, "stay-stopped"));
	char why[256] = "";

	(void)ctx, (void)ret;
	if (vm_snapshot_save(qmp.vm, file, stay, why, sizeof(why)) < 0) {
		qmp_error_set(err, QMP_ERR_GENERIC, "%s", why[0] ? why : "snapshot failed");
		return -1;
	}
	if (stay && qmp.paused)
		vm_resume(qmp.vm);   /* already stopped: one `cont` must undo both */
	else if (stay) {
		qmp.paused = true;
		emit_event("STOP", NULL);
	}
	return 0;
}

static const struct qmp_arg snapshot_args[] = {
	{ "file", QMP_ARG_STR, false },
	{ "stay-stopped", QMP_ARG_BOOL, true },
	{ NULL },
};

static const struct qmp_arg pmemsave_args[] = {
	{ "val", QMP_ARG_INT, false },
	{ "size", QMP_ARG_INT, false },
	{ "filename", QMP_ARG_STR, false },
	{ NULL },
};

static const struct qmp_command vmm_commands[] = {
	{ "query-status", cmd_query_status, NULL },
	{ "stop", cmd_stop, NULL },
	{ "cont", cmd_cont, NULL },
	{ "quit", cmd_quit, NULL },
	{ "system_reset", cmd_system_reset, NULL },
	{ "inject-nmi", cmd_inject_nmi, NULL },
	{ "query-cpus-fast", cmd_query_cpus_fast, NULL },
	{ "human-monitor-command", cmd_hmp, hmp_args },
	{ "pmemsave", cmd_pmemsave, pmemsave_args },
	{ "x-query-bus-stats", cmd_bus_stats, NULL },
	{ "x-dump-state", cmd_dump_state, dump_args },
	{ "x-snapshot-save", cmd_snapshot_save, snapshot_args },
	{ "migrate", qmp_cmd_migrate, qmp_migrate_args },
	{ "migrate_cancel", qmp_cmd_migrate_cancel, NULL },
	{ "query-migrate", qmp_cmd_query_migrate, NULL },
	{ "migrate-set-parameters", qmp_cmd_migrate_set_parameters, qmp_migrate_param_args },
	{ "query-migrate-parameters", qmp_cmd_query_migrate_parameters, NULL },
};

/* ---- The frontend's calls ---- */

/* The reset thread, with the machine back at power-on and not yet running. */
static void reset_done(enum machine_reset_cause cause)
{
	if (cause == MACHINE_RESET_GUEST)
		qmp_event_reset(true, "guest-reset");
	else
		qmp_event_reset(false, "host-qmp-system-reset");
}

int qmp_start(struct vm *vm, const char *spec, bool wait)
{
	char err[256] = "";
	struct qmp_server *srv;

	if (strncmp(spec, "unix:", 5)) {
		pr_err("--qmp %s: only unix:PATH is supported", spec);
		return -1;
	}
	qmp.vm = vm;
	qmp_migrate_init(vm);
	if (wait) {
		/* Before any vCPU runs: they stop at their first look at their events. */
		vm_pause(vm);
		qmp.paused = qmp.prelaunch = true;
	}
	srv = qmp_server_listen(spec + 5, vmm_commands,
				sizeof(vmm_commands) / sizeof(vmm_commands[0]), NULL, err, sizeof(err));
	if (!srv) {
		pr_err("--qmp: %s", err);
		if (wait)
			vm_resume(vm);
		qmp.paused = qmp.prelaunch = false;
		return -1;
	}
	pthread_mutex_lock(&qmp.lock);
	qmp.srv = srv;
	pthread_mutex_unlock(&qmp.lock);
	vm->crash_hook = qmp_event_guest_panicked;   /* GUEST_PANICKED at the crash */
	machine_reset_set_hook(reset_done);           /* RESET when a reset is done */
	pr_info("QMP on %s%s", spec + 5, wait ? ", waiting for 'cont'" : "");
	return 0;
}

void qmp_serve(void)
{
	int err;

	pthread_mutex_lock(&qmp.lock);
	err = qmp.srv ? qmp_server_run(qmp.srv) : 0;
	pthread_mutex_unlock(&qmp.lock);
	if (err)
		pr_warn("--qmp: cannot start the QMP thread: %s", strerror(-err));
}

void qmp_event(const char *name, json_t *data)
{
	emit_event(name, data);
}

void qmp_event_guest_panicked(const char *what)
{
	(void)what;   /* QEMU's GuestPanicInformation has no member for it */
	if (!atomic_exchange(&qmp.panicked, true))
		emit_event("GUEST_PANICKED", json_pack("{s:s}", "action", "poweroff"));
}

void qmp_event_reset(bool guest, const char *reason)
{
	emit_event("RESET", json_pack("{s:b,s:s}", "guest", guest, "reason", reason));
}

/* QEMU's ShutdownCause for how we got here. */
static const char *shutdown_reason(int status, bool *guest)
{
	*guest = false;
	if (atomic_load(&qmp.quit))
		return "host-qmp-quit";
	if (status > 128 && status < 128 + 65)
		return "host-signal";
	*guest = true;
	if (status == EXIT_GUEST_CRASH)
		return "guest-panic";
	/* Under --on-reboot restart a reset does not end the VM: a later exit is not one. */
	if (status == 0 && reset_action() == REBOOT_EXIT && reset_request_count())
		return "guest-reset";
	return "guest-shutdown";
}

void qmp_stop(int status)
{
	struct qmp_server *srv;
	const char *reason;
	bool guest;

	if (!qmp.srv)
		return;
	if (status == EXIT_GUEST_CRASH)
		qmp_event_guest_panicked(NULL);   /* once: the crash hook may have sent it */
	reason = shutdown_reason(status, &guest);
	emit_event("SHUTDOWN", json_pack("{s:b,s:s}", "guest", guest, "reason", reason));
	pthread_mutex_lock(&qmp.lock);
	srv = qmp.srv;
	qmp.srv = NULL;
	pthread_mutex_unlock(&qmp.lock);
	qmp_server_stop(srv);
}
