/*
 * Reading and printing a vCPU's full state.  What KVM holds comes from its
 * GET ioctls; the xAPIC state (IA32_APIC_BASE, TSC deadline, the register
 * page) from our LAPIC, since KVM has no in-kernel LAPIC here and answers
 * those MSRs with values nobody uses.
 */
#include <cpuid.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include "devices/ioapic.h"
#include "devices/lapic.h"
#include "devices/pic8259.h"
#include "devices/pit8254.h"
#include "bus/call.h"
#include "vmm/global_lock.h"
#include "vmm/iothread.h"
#include "vmm/pause.h"
#include "vmm/kvm.h"
#include "vmm/state_dump.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

/* The architectural MSRs worth a look; KVM's index list filters them. */
static const struct { uint32_t index; const char *name; } dump_msrs[] = {
	{ 0x00000010, "IA32_TSC" },
	{ 0x0000003a, "IA32_FEATURE_CONTROL" },
	{ 0x0000003b, "IA32_TSC_ADJUST" },
	{ 0x00000048, "IA32_SPEC_CTRL" },
	{ 0x00000174, "IA32_SYSENTER_CS" },
	{ 0x00000175, "IA32_SYSENTER_ESP" },
	{ 0x00000176, "IA32_SYSENTER_EIP" },
	{ 0x0000017a, "IA32_MCG_STATUS" },
	{ 0x000001a0, "IA32_MISC_ENABLE" },
	{ 0x000001d9, "IA32_DEBUGCTL" },
	{ 0x00000277, "IA32_PAT" },
	{ 0x000002ff, "IA32_MTRR_DEF_TYPE" },
	{ 0x00000da0, "IA32_XSS" },
	{ 0xc0000080, "IA32_EFER" },
	{ 0xc0000081, "IA32_STAR" },
	{ 0xc0000082, "IA32_LSTAR" },
	{ 0xc0000083, "IA32_CSTAR" },
	{ 0xc0000084, "IA32_FMASK" },
	{ 0xc0000100, "IA32_FS_BASE" },
	{ 0xc0000101, "IA32_GS_BASE" },
	{ 0xc0000102, "IA32_KERNEL_GS_BASE" },
	{ 0xc0000103, "IA32_TSC_AUX" },
};

/* Registers of the xAPIC page worth printing, in page order. */
static const struct { unsigned off; const char *name; } lapic_dump_regs[] = {
	{ LAPIC_ID, "ID" }, { LAPIC_VER, "VER" }, { LAPIC_TPR, "TPR" }, { LAPIC_APR, "APR" },
	{ LAPIC_PPR, "PPR" }, { LAPIC_LDR, "LDR" }, { LAPIC_DFR, "DFR" }, { LAPIC_SVR, "SVR" },
	{ LAPIC_ESR, "ESR" }, { LAPIC_ICR_LO, "ICR" }, { LAPIC_ICR_HI, "ICR2" },
	{ LAPIC_LVT_TIMER, "LVTT" }, { LAPIC_LVT_THERMAL, "LVTTHMR" },
	{ LAPIC_LVT_PERF, "LVTPC" }, { LAPIC_LVT_LINT0, "LVT0" }, { LAPIC_LVT_LINT1, "LVT1" },
	{ LAPIC_LVT_ERROR, "LVTERR" }, { LAPIC_TMICT, "TMICT" }, { LAPIC_TMCCT, "TMCCT" },
	{ LAPIC_TDCR, "TDCR" },
};

const char *vcpu_activity_name(struct vcpu *vcpu)
{
	int state = atomic_load(&vcpu->state);

	if (state == VCPU_STOPPED)
		return "stopped";   /* left its loop (the thread may be joined) */
	if (!vcpu->started)
		return "created";
	switch (state) {
	case VCPU_PARKED: return "parked";
	case VCPU_HALTED: return "halted";
	default: return "running";
	}
}

uint64_t vcpu_exit_count(struct vcpu *vcpu)
{
	uint64_t n = 0;

	for (unsigned r = 0; r < 64; r++)
		n += atomic_load_explicit(&vcpu->runstate.exits_by_reason[r], memory_order_relaxed);
	return n;
}

const char *vcpu_run_state_name(struct vcpu *vcpu)
{
	const char *activity = vcpu_activity_name(vcpu);

	if (vm_is_paused(vcpu->vm) && strcmp(activity, "created") && strcmp(activity, "stopped"))
		return "paused";
	return activity;
}

static int kvm_ext(struct vm *vm, long cap)
{
	int fd = vm->vm_fd >= 0 ? vm->vm_fd : vm->kvm_fd;

	return fd >= 0 ? ioctl(fd, KVM_CHECK_EXTENSION, cap) : 0;
}

static void note(struct vcpu_state_dump *st, unsigned part, int ret)
{
	if (ret >= 0)
		st->have |= part;
	else if (!st->error)
		st->error = -errno;
}

static void read_sregs(struct vcpu *vcpu, struct vcpu_state_dump *st)
{
	struct kvm_sregs2 s2;

	note(st, STATE_SREGS, ioctl(vcpu->fd, KVM_GET_SREGS, &st->sregs));
	if (kvm_ext(vcpu->vm, KVM_CAP_SREGS2) <= 0 || ioctl(vcpu->fd, KVM_GET_SREGS2, &s2) < 0)
		return;
	if (s2.flags & KVM_SREGS2_FLAGS_PDPTRS_VALID) {
		memcpy(st->pdptrs, s2.pdptrs, sizeof(st->pdptrs));
		st->have |= STATE_PDPTRS;
	}
}

/* XSAVE2 sizes the buffer for every feature KVM enables (AMX is > 4 KiB). */
static void read_xsave(struct vcpu *vcpu, struct vcpu_state_dump *st)
{
	int size2 = kvm_ext(vcpu->vm, KVM_CAP_XSAVE2);
	size_t size = size2 > (int)sizeof(struct kvm_xsave) ? (size_t)size2 : sizeof(struct kvm_xsave);

	if (size2 <= 0 && kvm_ext(vcpu->vm, KVM_CAP_XSAVE) <= 0)
		return;
	st->xsave = calloc(1, size);
	if (!st->xsave) {
		note(st, STATE_XSAVE, -1);
		return;
	}
	st->xsave_size = size;
	note(st, STATE_XSAVE, ioctl(vcpu->fd, size2 > 0 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE,
				    st->xsave));
}

static struct kvm_msr_list *supported_msrs(struct vm *vm)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *list;

	if (vm->kvm_fd < 0 || (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 &&
			       errno != E2BIG) || !probe.nmsrs)
		return NULL;
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	if (!list)
		return NULL;
	list->nmsrs = probe.nmsrs;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		free(list);
		return NULL;
	}
	return list;
}

static bool msr_listed(const struct kvm_msr_list *list, uint32_t index)
{
	for (uint32_t i = 0; i < list->nmsrs; i++)
		if (list->indices[i] == index)
			return true;
	return false;
}

/* One at a time: KVM_GET_MSRS stops at the first MSR it cannot read. */
static void read_kvm_msrs(struct vcpu *vcpu, struct vcpu_state_dump *st)
{
	struct kvm_msr_list *list = supported_msrs(vcpu->vm);
	struct { struct kvm_msrs hdr; struct kvm_msr_entry e; } one;
	bool any = false;

	if (!list)
		return;
	for (size_t i = 0; i < sizeof(dump_msrs) / sizeof(dump_msrs[0]); i++) {
		if (!msr_listed(list, dump_msrs[i].index) || st->nmsrs == STATE_DUMP_MAX_MSRS)
			continue;
		memset(&one, 0, sizeof(one));
		one.hdr.nmsrs = 1;
		one.e.index = dump_msrs[i].index;
		if (ioctl(vcpu->fd, KVM_GET_MSRS, &one) != 1)
			continue;
		st->msrs[st->nmsrs++] = (struct state_msr){ .index = one.e.index,
			.value = one.e.data, .name = dump_msrs[i].name };
		any = true;
	}
	free(list);
	if (any)
		st->have |= STATE_MSRS;
}

static struct lapic *vcpu_lapic(struct vcpu *vcpu)
{
	return vcpu->irq == &lapic_irq_ops ? vcpu->irq_ctx : NULL;
}

static void add_lapic_msr(struct vcpu_state_dump *st, struct lapic *apic, uint32_t index,
			  const char *name)
{
	struct msg_cpu msg = { .type = CPU_MSG_RDMSR, .index = index };

	if (st->nmsrs < STATE_DUMP_MAX_MSRS && lapic_msr(apic, &msg) && !msg.fault)
		st->msrs[st->nmsrs++] = (struct state_msr){ .index = index, .value = msg.value,
			.name = name, .from_lapic = true };
}

/* The owner's state, read while the owner is stopped (see the header). */
static void read_lapic(struct vcpu *vcpu, struct vcpu_state_dump *st)
{
	struct lapic *apic = vcpu_lapic(vcpu);

	if (!apic)
		return;
	add_lapic_msr(st, apic, MSR_IA32_APIC_BASE, "IA32_APIC_BASE");
	add_lapic_msr(st, apic, MSR_IA32_TSC_DEADLINE, "IA32_TSC_DEADLINE");
	for (size_t i = 0; i < sizeof(lapic_dump_regs) / sizeof(lapic_dump_regs[0]); i++) {
		unsigned off = lapic_dump_regs[i].off;

		st->lapic_regs[off >> 4] = lapic_read(apic, off);
		st->lapic_valid |= 1ull << (off >> 4);
	}
	for (unsigned w = 0; w < 8; w++)
		for (unsigned reg = LAPIC_ISR; reg <= LAPIC_IRR; reg += LAPIC_TMR - LAPIC_ISR) {
			unsigned off = reg + w * 0x10;

			st->lapic_regs[off >> 4] = lapic_read(apic, off);
			st->lapic_valid |= 1ull << (off >> 4);
		}
	st->have |= STATE_LAPIC;
}

int vcpu_state_read(struct vcpu *vcpu, struct vcpu_state_dump *st)
{
	if (kvm_forbidden_here())
		return -EPERM;
	memset(st, 0, sizeof(*st));
	st->id = vcpu->id;
	st->tid = vcpu->tid;
	st->host_cpu = vcpu->host_cpu;
	st->run_state = vcpu_run_state_name(vcpu);
	st->activity = vcpu_activity_name(vcpu);
	st->exits = vcpu_exit_count(vcpu);
	if (vcpu->fd >= 0) {
		note(st, STATE_REGS, ioctl(vcpu->fd, KVM_GET_REGS, &st->regs));
		read_sregs(vcpu, st);
		note(st, STATE_FPU, ioctl(vcpu->fd, KVM_GET_FPU, &st->fpu));
		read_xsave(vcpu, st);
		if (kvm_ext(vcpu->vm, KVM_CAP_XCRS) > 0)
			note(st, STATE_XCRS, ioctl(vcpu->fd, KVM_GET_XCRS, &st->xcrs));
		note(st, STATE_DEBUGREGS, ioctl(vcpu->fd, KVM_GET_DEBUGREGS, &st->debugregs));
		note(st, STATE_EVENTS, ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &st->events));
		read_kvm_msrs(vcpu, st);
	} else if (!st->error) {
		st->error = -ENODEV;
	}
	read_lapic(vcpu, st);
	return st->error;
}

void vcpu_state_free(struct vcpu_state_dump *st)
{
	free(st->xsave);
	st->xsave = NULL;
	st->xsave_size = 0;
}

unsigned state_lapic_vectors(const struct vcpu_state_dump *st, unsigned reg,
			     uint8_t vectors[256])
{
	unsigned n = 0;

	for (unsigned v = 0; v < 256; v++) {
		unsigned slot = (reg >> 4) + v / 32;

		if ((st->lapic_valid >> slot & 1) && (st->lapic_regs[slot] >> (v % 32) & 1))
			vectors[n++] = (uint8_t)v;
	}
	return n;
}

/* ---- Text ---- */

static bool long_mode(const struct vcpu_state_dump *st)
{
	return (st->have & STATE_SREGS) && (st->sregs.efer & (1u << 10)) && st->sregs.cs.l;
}

/* QEMU's packing of the descriptor attributes (bits 8-23 of the high word). */
static uint32_t seg_flags(const struct kvm_segment *s)
{
	return (uint32_t)s->type << 8 | (uint32_t)s->s << 12 | (uint32_t)s->dpl << 13 |
	       (uint32_t)s->present << 15 | (uint32_t)s->avl << 20 | (uint32_t)s->l << 21 |
	       (uint32_t)s->db << 22 | (uint32_t)s->g << 23;
}

static void print_segment(FILE *out, const char *name, const struct kvm_segment *s, bool lm)
{
	if (lm)
		fprintf(out, "%-3s=%04x %016llx %08x %08x", name, s->selector,
			(unsigned long long)s->base, s->limit, seg_flags(s));
	else
		fprintf(out, "%-3s=%04x %08llx %08x %08x", name, s->selector,
			(unsigned long long)s->base, s->limit, seg_flags(s));
	fprintf(out, " DPL=%u %s%s\n", s->dpl, s->unusable ? "unusable" :
		!s->s ? "SYS" : s->type & 8 ? "CODE" : "DATA", s->present ? "" : " (not present)");
}

static void print_gprs(const struct vcpu_state_dump *st, FILE *out, bool lm)
{
	const struct kvm_regs *r = &st->regs;

	if (lm) {
		fprintf(out, "RAX=%016llx RBX=%016llx RCX=%016llx RDX=%016llx\n",
			r->rax, r->rbx, r->rcx, r->rdx);
		fprintf(out, "RSI=%016llx RDI=%016llx RBP=%016llx RSP=%016llx\n",
			r->rsi, r->rdi, r->rbp, r->rsp);
		fprintf(out, "R8 =%016llx R9 =%016llx R10=%016llx R11=%016llx\n",
			r->r8, r->r9, r->r10, r->r11);
		fprintf(out, "R12=%016llx R13=%016llx R14=%016llx R15=%016llx\n",
			r->r12, r->r13, r->r14, r->r15);
		fprintf(out, "RIP=%016llx RFL=%08llx", r->rip, r->rflags);
	} else {
		fprintf(out, "EAX=%08x EBX=%08x ECX=%08x EDX=%08x\n", (uint32_t)r->rax,
			(uint32_t)r->rbx, (uint32_t)r->rcx, (uint32_t)r->rdx);
		fprintf(out, "ESI=%08x EDI=%08x EBP=%08x ESP=%08x\n", (uint32_t)r->rsi,
			(uint32_t)r->rdi, (uint32_t)r->rbp, (uint32_t)r->rsp);
		fprintf(out, "EIP=%08x EFL=%08x", (uint32_t)r->rip, (uint32_t)r->rflags);
	}
}

void vcpu_state_print_registers(const struct vcpu_state_dump *st, FILE *out)
{
	const struct kvm_sregs *s = &st->sregs;
	bool lm = long_mode(st);

	if (!(st->have & STATE_REGS) || !(st->have & STATE_SREGS)) {
		fprintf(out, "vCPU %u: registers unavailable (%s)\n", st->id,
			strerror(st->error ? -st->error : EIO));
		return;
	}
	print_gprs(st, out, lm);
	fprintf(out, " CPL=%u IF=%u HLT=%u\n", s->cs.dpl, (unsigned)(st->regs.rflags >> 9 & 1),
		!strcmp(st->activity, "halted"));
	print_segment(out, "ES", &s->es, lm);
	print_segment(out, "CS", &s->cs, lm);
	print_segment(out, "SS", &s->ss, lm);
	print_segment(out, "DS", &s->ds, lm);
	print_segment(out, "FS", &s->fs, lm);
	print_segment(out, "GS", &s->gs, lm);
	print_segment(out, "LDT", &s->ldt, lm);
	print_segment(out, "TR", &s->tr, lm);
	fprintf(out, "GDT=     %016llx %08x\n", (unsigned long long)s->gdt.base, s->gdt.limit);
	fprintf(out, "IDT=     %016llx %08x\n", (unsigned long long)s->idt.base, s->idt.limit);
	fprintf(out, "CR0=%08llx CR2=%016llx CR3=%016llx CR4=%08llx CR8=%llx\n",
		s->cr0, s->cr2, s->cr3, s->cr4, s->cr8);
	if (st->have & STATE_DEBUGREGS) {
		const struct kvm_debugregs *d = &st->debugregs;

		fprintf(out, "DR0=%016llx DR1=%016llx DR2=%016llx DR3=%016llx\n",
			d->db[0], d->db[1], d->db[2], d->db[3]);
		fprintf(out, "DR6=%016llx DR7=%016llx\n", d->dr6, d->dr7);
	}
	fprintf(out, "EFER=%016llx\n", s->efer);
}

static void print_events(const struct vcpu_state_dump *st, FILE *out)
{
	const struct kvm_vcpu_events *e = &st->events;

	if (!(st->have & STATE_EVENTS))
		return;
	fprintf(out, "events: exception injected=%u pending=%u nr=%u error=%s%x"
		" | interrupt injected=%u nr=%u soft=%u shadow=%u"
		" | nmi injected=%u pending=%u masked=%u | sipi_vector=%u smm=%u"
		" triple_fault_pending=%u\n",
		e->exception.injected, e->exception.pending, e->exception.nr,
		e->exception.has_error_code ? "" : "(none) ", e->exception.error_code,
		e->interrupt.injected, e->interrupt.nr, e->interrupt.soft, e->interrupt.shadow,
		e->nmi.injected, e->nmi.pending, e->nmi.masked, e->sipi_vector, e->smi.smm,
		e->triple_fault.pending);
}

static void print_bytes(FILE *out, const uint8_t *p, size_t n)
{
	/* Little-endian registers: the most significant byte first. */
	while (n--)
		fprintf(out, "%02x", p[n]);
}

static void print_fpu(const struct vcpu_state_dump *st, FILE *out)
{
	const struct kvm_fpu *f = &st->fpu;

	if (!(st->have & STATE_FPU))
		return;
	fprintf(out, "FPU: FCW=%04x FSW=%04x FTW=%02x FOP=%04x FIP=%016llx FDP=%016llx"
		" MXCSR=%08x\n", f->fcw, f->fsw, f->ftwx, f->last_opcode,
		(unsigned long long)f->last_ip, (unsigned long long)f->last_dp, f->mxcsr);
	for (unsigned i = 0; i < 8; i++) {
		fprintf(out, "%sST%u=", i % 4 ? " " : "", i);
		print_bytes(out, f->fpr[i], 10);
		if (i % 4 == 3)
			fputc('\n', out);
	}
	for (unsigned i = 0; i < 16; i++) {
		fprintf(out, "%sXMM%02u=", i % 2 ? " " : "", i);
		print_bytes(out, f->xmm[i], 16);
		if (i % 2)
			fputc('\n', out);
	}
}

/* Components of the standard XSAVE layout: KVM uses the host's offsets. */
static void xsave_component(unsigned i, unsigned *offset, unsigned *size)
{
	unsigned eax, ebx, ecx, edx;

	*offset = *size = 0;
	if (__get_cpuid_count(0xd, i, &eax, &ebx, &ecx, &edx)) {
		*size = eax;
		*offset = ebx;
	}
}

static void print_xsave(const struct vcpu_state_dump *st, FILE *out)
{
	const uint8_t *x = (const uint8_t *)st->xsave->region;
	uint64_t bv, comp;

	memcpy(&bv, x + 512, 8);
	memcpy(&comp, x + 520, 8);
	fprintf(out, "XSAVE: %zu bytes, XSTATE_BV=%016llx XCOMP_BV=%016llx\n", st->xsave_size,
		(unsigned long long)bv, (unsigned long long)comp);
	for (unsigned i = 2; i < 64; i++) {
		unsigned offset, size;
		bool nonzero = false;

		if (!(bv >> i & 1))
			continue;
		xsave_component(i, &offset, &size);
		if (!size || offset + size > st->xsave_size) {
			fprintf(out, "  component %u: present (layout unknown)\n", i);
			continue;
		}
		for (unsigned b = 0; b < size && !nonzero; b++)
			nonzero = x[offset + b] != 0;
		if (i == 2) {   /* AVX: the upper halves of YMM0-15 */
			for (unsigned r = 0; r < 16; r++) {
				fprintf(out, "%sYMMH%02u=", r % 2 ? " " : "", r);
				print_bytes(out, x + offset + 16 * r, 16);
				if (r % 2)
					fputc('\n', out);
			}
			continue;
		}
		fprintf(out, "  component %u: %u bytes at %u, %s\n", i, size, offset,
			nonzero ? "non-zero" : "all zero");
	}
}

static void print_msrs(const struct vcpu_state_dump *st, FILE *out)
{
	for (unsigned i = 0; i < st->nmsrs; i++)
		fprintf(out, "MSR %08x %-20s = %016llx%s\n", st->msrs[i].index, st->msrs[i].name,
			(unsigned long long)st->msrs[i].value,
			st->msrs[i].from_lapic ? " (LAPIC)" : "");
}

static void print_vectors(const struct vcpu_state_dump *st, FILE *out, const char *name,
			  unsigned reg)
{
	uint8_t v[256];
	unsigned n = state_lapic_vectors(st, reg, v);

	fprintf(out, "  %s:", name);
	if (!n)
		fprintf(out, " none");
	for (unsigned i = 0; i < n; i++)
		fprintf(out, " 0x%02x", v[i]);
	fputc('\n', out);
}

void vcpu_state_print_lapic(const struct vcpu_state_dump *st, FILE *out)
{
	if (!(st->have & STATE_LAPIC)) {
		fprintf(out, "vCPU %u: no LAPIC\n", st->id);
		return;
	}
	fprintf(out, "LAPIC of vCPU %u:", st->id);
	for (size_t i = 0; i < sizeof(lapic_dump_regs) / sizeof(lapic_dump_regs[0]); i++)
		fprintf(out, "%s %s=%08x", i && i % 6 == 0 ? "\n " : "", lapic_dump_regs[i].name,
			st->lapic_regs[lapic_dump_regs[i].off >> 4]);
	fputc('\n', out);
	print_vectors(st, out, "ISR", LAPIC_ISR);
	print_vectors(st, out, "IRR", LAPIC_IRR);
	print_vectors(st, out, "TMR", LAPIC_TMR);
}

void vcpu_state_print(const struct vcpu_state_dump *st, FILE *out)
{
	fprintf(out, "=== vCPU %u: thread %d, host CPU %d, %s", st->id, st->tid, st->host_cpu,
		st->run_state);
	if (strcmp(st->run_state, st->activity))
		fprintf(out, " (%s)", st->activity);
	fprintf(out, ", %llu exits ===\n", (unsigned long long)st->exits);
	vcpu_state_print_registers(st, out);
	if (st->have & STATE_PDPTRS)
		fprintf(out, "PDPTE0=%016llx PDPTE1=%016llx PDPTE2=%016llx PDPTE3=%016llx\n",
			(unsigned long long)st->pdptrs[0], (unsigned long long)st->pdptrs[1],
			(unsigned long long)st->pdptrs[2], (unsigned long long)st->pdptrs[3]);
	print_events(st, out);
	print_fpu(st, out);
	if (st->have & STATE_XSAVE)
		print_xsave(st, out);
	if (st->have & STATE_XCRS)
		for (unsigned i = 0; i < st->xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++)
			fprintf(out, "XCR%u=%016llx\n", st->xcrs.xcrs[i].xcr,
				(unsigned long long)st->xcrs.xcrs[i].value);
	print_msrs(st, out);
	vcpu_state_print_lapic(st, out);
}

struct serialized_fn {
	void (*fn)(void *arg);
	void *arg;
};

static bool serialized_dispatch(struct bus_call *call)
{
	struct serialized_fn *s = call->target;

	s->fn(s->arg);
	return true;
}

void vm_run_serialized(struct vm *vm, void (*fn)(void *arg), void *arg)
{
	static struct bus_stats stats;
	struct serialized_fn s = { fn, arg };
	struct bus_completion done;
	struct bus_call call = { .dispatch = serialized_dispatch, .target = &s, .sync = true,
				 .vcpu = -1, .stats = &stats, .done = &done };
	const struct bus_serializer *ser = vm->io_mode == IO_MODE_THREAD && vm->iothread ?
		iothread_serializer(vm->iothread) : global_lock_serializer();

	if (global_lock_held()) {   /* not recursive: we are serialized already */
		fn(arg);
		return;
	}
	completion_init(&done);
	ser->submit(ser->ctx, &call);
}

static void print_devices(void *arg)
{
	struct { struct vm *vm; FILE *out; } *a = arg;
	struct pic *pic = pic_find(a->vm);
	struct ioapic *io = ioapic_find(a->vm);
	struct pit *pit = pit_find(a->vm);

	if (pic)
		pic_dump(pic, a->out);
	if (io)
		ioapic_dump(io, a->out);
	if (pit)
		pit_dump(pit, a->out);
}

void vm_devices_print(struct vm *vm, FILE *out)
{
	struct { struct vm *vm; FILE *out; } arg = { vm, out };

	/* The IOAPIC and the PIT keep plain state: read it where their callbacks run. */
	vm_run_serialized(vm, print_devices, &arg);
}

void vm_state_print(struct vm *vm, FILE *out)
{
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu_state_dump st;

		if (!vm->vcpu[i])
			continue;
		vcpu_state_read(vm->vcpu[i], &st);
		vcpu_state_print(&st, out);
		vcpu_state_free(&st);
	}
	vm_devices_print(vm, out);
}

int vm_state_dump(struct vm *vm, FILE *out)
{
	int err = vm_pause(vm);

	if (err)
		return err;
	vm_state_print(vm, out);
	fflush(out);
	vm_resume(vm);
	return 0;
}
