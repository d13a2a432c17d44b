/*
 * MC146818A real-time clock and CMOS RAM at ports 0x70/0x71, IRQ 8.
 *
 * State:    stable.
 * Features: port 0x70 selects one of 128 bytes and holds the NMI mask in
 *           bit 7 (rtc_nmi_masked(); the port reads as empty, it is
 *           write-only on the PC).  Time registers 0x00-0x09 and the
 *           century byte 0x32 follow the time source (UTC), in BCD or
 *           binary (register B DM) and 12- or 24-hour (B 24/12, PM in
 *           bit 7 of the hour); the day of week counts Sunday as 1.
 *           Register A: rate select and divider stored; UIP reads 1 in the
 *           last 244 us before each second, as the chip's update cycle
 *           does, so a guest that waits for an update edge (Linux's
 *           mc146818_avoid_UIP, older code that spins for UIP to rise)
 *           finds one.  Register B: SET freezes the time registers (a
 *           snapshot taken when SET rises; writes land there) and clearing
 *           it starts the clock from what they hold; setting SET clears
 *           UIE.  Time writes with SET clear take effect at once.
 *           Register C: PF, AF, UF, IRQF, cleared by reading.  PF follows
 *           the rate in A whether or not PIE is set; UF at each second
 *           (not while SET); AF when a second matches the alarm registers
 *           (0xC0-0xFF is "don't care").  IRQF = any flag whose enable
 *           (PIE, AIE, UIE) is set; IRQF rising raises IRQ 8 (an
 *           IRQ_EDGE), and as on the chip no further interrupt comes
 *           until register C is read.  Register D reads VRT = 1.
 *           CMOS RAM 0x0E-0x7F is plain storage with the bytes a PC BIOS
 *           leaves: no floppy (0x10), equipment 0x14 (FPU, VGA), base
 *           memory 640 KiB (0x15/0x16), extended memory in KiB above 1 MiB
 *           (0x17/0x18 and 0x30/0x31, at most 0xFFFF), memory above
 *           16 MiB in 64 KiB units (0x34/0x35, at most 0xFFFF), memory
 *           above 4 GiB in 64 KiB units (0x5B-0x5D), and the checksum of
 *           0x10-0x2D in 0x2E/0x2F.  The shutdown status byte 0x0F is
 *           stored only (the warm-reset vector at 0x467 is the BIOS's).
 * Time:     nothing ticks.  Registers and flags are computed from the time
 *           source when read; a timer of the timer service is armed only
 *           when an enabled interrupt can become due (and not while IRQF
 *           waits for its read), for the next periodic tick or second.
 * Missing:  the divider bits do not stop the clock (DV is stored only);
 *           daylight saving (DSE) and the square-wave output are ignored;
 *           the day of week is computed from the date, a written one is
 *           not kept; invalid BCD digits and out-of-range dates written by
 *           the guest are taken as they decode; the second CMOS bank (ports
 *           0x72/0x73) is absent.
 * Spec:     Motorola MC146818A datasheet; IBM PC/AT Technical Reference
 *           (CMOS RAM map); ACPI FADT CENTURY field (0x32).
 *
 * Snapshot: section "rtc" instance 0: CMOS RAM, the index and NMI mask,
 *           register C, and time as offsets: host_base (UTC at VM time 0)
 *           and delta_s (RTC time minus that source), plus the source times
 *           of the last flag update and of the armed timer.  The VM clock
 *           is restored before the devices load, so the guest's clock
 *           carries on from the checkpoint without a jump (it does not
 *           catch up with the host's wall clock: that is the guest's NTP
 *           job), and the timer is re-armed for the same moment.  IRQ 8 is
 *           an edge: a pending one is in the PIC/IOAPIC, IRQF here.
 *
 * Serialized: the ports and the timer receiver are unclaimed (I/O thread
 * or global lock); plain state, except the NMI mask which other threads
 * read.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bus/message.h"
#include "bus/range.h"
#include "devices/rtc_cmos.h"
#include "devices/restore.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/memory.h"
#include "vmm/timer.h"
#include "vmm/vm.h"

#define NS_PER_S     1000000000ll
#define TIMEBASE_HZ  32768        /* the divider chain's input */
#define UIP_NS       244000ll     /* UIP rises this long before the update */
#define NEVER        INT64_MAX
#define KIB          1024ull
#define MIB          (1024ull * KIB)

struct rtc {
	struct vm *vm;
	rtc_clock_fn clock;
	void *clock_ctx;
	int64_t host_base;             /* default source: UTC ns at VM time 0 */
	unsigned timer;
	_Atomic bool nmi_masked;
	/* Serialized state. */
	uint8_t index;
	uint8_t cmos[128];             /* RAM; the time registers while SET */
	int64_t delta_s;               /* RTC time minus source time, seconds */
	int64_t last;                  /* source time up to which flags are in */
	uint8_t flags;                 /* register C */
	int64_t deadline;              /* source time the timer is armed for */
};


static int64_t fdiv(__int128 a, int64_t b)
{
	__int128 q = a / b;

	return (int64_t)(a % b < 0 ? q - 1 : q);
}

static int64_t fmod64(int64_t a, int64_t b)
{
	return a - fdiv(a, b) * b;
}

static int64_t default_clock(void *ctx)
{
	struct rtc *r = ctx;

	return r->host_base + (int64_t)vm_clock_ns(r->vm);
}

static int64_t host_utc_ns(void);

static int64_t source_now(const struct rtc *r)
{
	return r->clock(r->clock_ctx);
}

/* ---- Register formats: BCD or binary, 12 or 24 hours ---- */

static bool binary(const struct rtc *r)
{
	return r->cmos[RTC_REG_B] & RTC_B_DM;
}

static uint8_t to_reg(const struct rtc *r, int v)
{
	return binary(r) ? (uint8_t)v : (uint8_t)((v / 10 % 10) << 4 | v % 10);
}

static int from_reg(const struct rtc *r, uint8_t v)
{
	return binary(r) ? v : (v >> 4) * 10 + (v & 0xf);
}

static uint8_t hour_to_reg(const struct rtc *r, int h24)
{
	int h12 = h24 % 12 ? h24 % 12 : 12;

	if (r->cmos[RTC_REG_B] & RTC_B_24H)
		return to_reg(r, h24);
	return (uint8_t)(to_reg(r, h12) | (h24 >= 12 ? 0x80 : 0));
}

static int hour_from_reg(const struct rtc *r, uint8_t v)
{
	if (r->cmos[RTC_REG_B] & RTC_B_24H)
		return from_reg(r, v);
	return from_reg(r, v & 0x7f) % 12 + (v & 0x80 ? 12 : 0);
}

/* ---- The calendar ---- */

static bool is_time_reg(unsigned idx)
{
	return idx == RTC_SECONDS || idx == RTC_MINUTES || idx == RTC_HOURS ||
	       (idx >= RTC_DAY_OF_WEEK && idx <= RTC_YEAR) || idx == RTC_CENTURY;
}

static struct tm rtc_tm(const struct rtc *r, int64_t now)
{
	time_t t = (time_t)(fdiv(now, NS_PER_S) + r->delta_s);
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		memset(&tm, 0, sizeof(tm));
	return tm;
}

static uint8_t time_reg(const struct rtc *r, const struct tm *tm, unsigned idx)
{
	int year = tm->tm_year + 1900;

	switch (idx) {
	case RTC_SECONDS:      return to_reg(r, tm->tm_sec);
	case RTC_MINUTES:      return to_reg(r, tm->tm_min);
	case RTC_HOURS:        return hour_to_reg(r, tm->tm_hour);
	case RTC_DAY_OF_WEEK:  return to_reg(r, tm->tm_wday + 1);
	case RTC_DAY_OF_MONTH: return to_reg(r, tm->tm_mday);
	case RTC_MONTH:        return to_reg(r, tm->tm_mon + 1);
	case RTC_YEAR:         return to_reg(r, year % 100);
	case RTC_CENTURY:      return to_reg(r, year / 100);
	}
	return 0;
}

/* Freeze the running time into the registers (SET rises, or a write). */
static void snapshot(struct rtc *r, int64_t now)
{
	struct tm tm = rtc_tm(r, now);

	for (unsigned idx = 0; idx < sizeof(r->cmos); idx++)
		if (is_time_reg(idx))
			r->cmos[idx] = time_reg(r, &tm, idx);
}

/* Run the clock from what the registers hold, keeping the second's phase. */
static void commit(struct rtc *r, int64_t now)
{
	struct tm tm = {
		.tm_sec = from_reg(r, r->cmos[RTC_SECONDS]),
		.tm_min = from_reg(r, r->cmos[RTC_MINUTES]),
		.tm_hour = hour_from_reg(r, r->cmos[RTC_HOURS]),
		.tm_mday = from_reg(r, r->cmos[RTC_DAY_OF_MONTH]),
		.tm_mon = from_reg(r, r->cmos[RTC_MONTH]) - 1,
		.tm_year = from_reg(r, r->cmos[RTC_CENTURY]) * 100 +
			   from_reg(r, r->cmos[RTC_YEAR]) - 1900,
	};

	r->delta_s = (int64_t)timegm(&tm) - fdiv(now, NS_PER_S);
}

/* ---- Flags: what happened between r->last and now ---- */

/* Periodic interrupt period in time-base ticks; 0 for none. */
static int64_t period_ticks(const struct rtc *r)
{
	unsigned rs = r->cmos[RTC_REG_A] & RTC_A_RS;

	if (!rs)
		return 0;
	if (rs < 3)
		rs += 7;           /* 1 and 2 repeat rates 8 and 9 */
	return 1ll << (rs - 1);
}

static int64_t timebase_tick(int64_t ns)
{
	return fdiv((__int128)ns * TIMEBASE_HZ, NS_PER_S);
}

static int alarm_field(const struct rtc *r, uint8_t v, bool hour)
{
	if ((v & 0xc0) == 0xc0)
		return -1;
	return hour ? hour_from_reg(r, v) : from_reg(r, v);
}

/* Does an RTC second in [from, to] (source seconds) match the alarm? */
static bool alarm_between(const struct rtc *r, int64_t from, int64_t to)
{
	int h = alarm_field(r, r->cmos[RTC_HOURS_ALARM], true);
	int m = alarm_field(r, r->cmos[RTC_MINUTES_ALARM], false);
	int s = alarm_field(r, r->cmos[RTC_SECONDS_ALARM], false);

	if (to - from >= 86400)
		from = to - 86399;         /* a day covers every time of day */
	for (int64_t t = from; t <= to; t++) {
		int64_t tod = fmod64(t + r->delta_s, 86400);

		if ((h < 0 || h == tod / 3600) && (m < 0 || m == tod / 60 % 60) &&
		    (s < 0 || s == tod % 60))
			return true;
	}
	return false;
}

static void advance(struct rtc *r, int64_t now)
{
	int64_t p = period_ticks(r), s0, s1;

	if (now <= r->last) {
		r->last = now;             /* a test clock went back: start over */
		return;
	}
	if (p && fdiv(timebase_tick(now), p) > fdiv(timebase_tick(r->last), p))
		r->flags |= RTC_C_PF;
	s0 = fdiv(r->last, NS_PER_S);
	s1 = fdiv(now, NS_PER_S);
	if (!(r->cmos[RTC_REG_B] & RTC_B_SET) && s1 > s0) {
		r->flags |= RTC_C_UF;
		if (alarm_between(r, s0 + 1, s1))
			r->flags |= RTC_C_AF;
	}
	r->last = now;
}

static bool uip(const struct rtc *r, int64_t now)
{
	return !(r->cmos[RTC_REG_B] & RTC_B_SET) && fmod64(now, NS_PER_S) >= NS_PER_S - UIP_NS;
}

/* IRQF rises: one edge on IRQ 8; the next waits until C is read. */
static void irq_update(struct rtc *r)
{
	struct msg_irq msg = { .line = RTC_IRQ, .action = IRQ_EDGE };
	uint8_t enabled = r->cmos[RTC_REG_B] & (RTC_B_PIE | RTC_B_AIE | RTC_B_UIE);

	if (r->flags & RTC_C_IRQF || !(r->flags & enabled))
		return;
	r->flags |= RTC_C_IRQF;
	bus_send(r->vm->bus.irq, &msg, BUS_FIFO);
}

/* When an enabled interrupt can next become due (source time), or NEVER. */
static int64_t next_event(const struct rtc *r, int64_t now)
{
	uint8_t b = r->cmos[RTC_REG_B];
	int64_t p = period_ticks(r), next = NEVER;

	if (r->flags & RTC_C_IRQF)
		return NEVER;
	if ((b & RTC_B_PIE) && p) {
		__int128 tick = ((__int128)fdiv(timebase_tick(now), p) + 1) * p;

		next = (int64_t)((tick * NS_PER_S + TIMEBASE_HZ - 1) / TIMEBASE_HZ);
	}
	if (!(b & RTC_B_SET) && (b & (RTC_B_UIE | RTC_B_AIE))) {
		int64_t second = (fdiv(now, NS_PER_S) + 1) * NS_PER_S;

		if (second < next)
			next = second;
	}
	return next;
}

static void schedule(struct rtc *r, int64_t now)
{
	int64_t next = next_event(r, now);

	if (next == r->deadline)
		return;
	r->deadline = next;
	if (next == NEVER)
		timer_cancel(r->vm, r->timer);
	else
		timer_arm(r->vm, r->timer, vm_clock_ns(r->vm) + (uint64_t)(next - now));
}

/* ---- Registers ---- */

static uint8_t reg_read(struct rtc *r, int64_t now, unsigned idx)
{
	uint8_t v;

	if (is_time_reg(idx) && !(r->cmos[RTC_REG_B] & RTC_B_SET)) {
		struct tm tm = rtc_tm(r, now);

		return time_reg(r, &tm, idx);
	}
	switch (idx) {
	case RTC_REG_A:
		return (uint8_t)(r->cmos[RTC_REG_A] | (uip(r, now) ? RTC_A_UIP : 0));
	case RTC_REG_C:
		v = r->flags;
		r->flags = 0;
		return v;
	case RTC_REG_D:
		return RTC_D_VRT;
	}
	return r->cmos[idx];
}

static void reg_b_write(struct rtc *r, int64_t now, uint8_t v)
{
	uint8_t old = r->cmos[RTC_REG_B];

	if (v & RTC_B_SET) {
		v &= (uint8_t)~RTC_B_UIE;
		if (!(old & RTC_B_SET))
			snapshot(r, now);
	}
	r->cmos[RTC_REG_B] = v;
	if ((old & RTC_B_SET) && !(v & RTC_B_SET))
		commit(r, now);        /* updates resume from here: no UF for the pause */
}

static void reg_write(struct rtc *r, int64_t now, unsigned idx, uint8_t v)
{
	if (is_time_reg(idx)) {
		bool running = !(r->cmos[RTC_REG_B] & RTC_B_SET);

		if (running)
			snapshot(r, now);
		r->cmos[idx] = v;
		if (running)
			commit(r, now);
		return;
	}
	switch (idx) {
	case RTC_REG_A:
		r->cmos[RTC_REG_A] = v & (uint8_t)~RTC_A_UIP;
		break;
	case RTC_REG_B:
		reg_b_write(r, now, v);
		break;
	case RTC_REG_C:
	case RTC_REG_D:
		break;                 /* read-only */
	default:
		r->cmos[idx] = v;
	}
}

static uint8_t rtc_port_read(struct rtc *r, int64_t now, uint16_t port)
{
	if (port != RTC_PORT_DATA)
		return 0xff;               /* 0x70 is write-only */
	return reg_read(r, now, r->index);
}

static void rtc_port_write(struct rtc *r, int64_t now, uint16_t port, uint8_t v)
{
	if (port == RTC_PORT_INDEX) {
		r->index = v & 0x7f;
		atomic_store_explicit(&r->nmi_masked, v & 0x80, memory_order_relaxed);
	} else if (port == RTC_PORT_DATA) {
		reg_write(r, now, r->index, v);
	}
}

/* Wider accesses are byte accesses to consecutive ports. */
static bool rtc_pio(void *dev, uint64_t addr, void *m)
{
	struct rtc *r = dev;
	struct msg_pio *msg = m;
	int64_t now = source_now(r);
	uint32_t value = 0;

	advance(r, now);
	for (unsigned i = 0; i < msg->size && i < 4; i++) {
		uint16_t port = (uint16_t)(addr + i);

		if (msg->write)
			rtc_port_write(r, now, port, (uint8_t)(msg->value >> (8 * i)));
		else
			value |= (uint32_t)rtc_port_read(r, now, port) << (8 * i);
	}
	if (!msg->write)
		msg->value = value;
	irq_update(r);
	schedule(r, now);
	return true;
}

static bool rtc_timer(void *dev, void *m)
{
	struct rtc *r = dev;
	const struct msg_timer *msg = m;
	int64_t now;

	if (msg->timer != r->timer)
		return false;
	now = source_now(r);
	advance(r, now);
	irq_update(r);
	r->deadline = NEVER;           /* it fired: arm again whatever comes next */
	schedule(r, now);
	return true;
}

/* ---- CMOS memory ---- */

static void put16(uint8_t *p, uint64_t v)
{
	if (v > 0xffff)
		v = 0xffff;
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* What a PC BIOS leaves in CMOS for @size bytes of RAM (vmm/memory.h layout). */
static void cmos_init(uint8_t *cmos, uint64_t size)
{
	uint64_t low = size < GUEST_PCI_HOLE_START ? size : GUEST_PCI_HOLE_START;
	uint64_t high = size - low, above4g = high / (64 * KIB);
	unsigned sum = 0;

	cmos[RTC_REG_A] = 0x26;                 /* 32.768 kHz, 1024 Hz rate */
	cmos[RTC_REG_B] = RTC_B_24H;
	cmos[0x10] = 0x00;                      /* no floppy drives */
	cmos[0x14] = 0x02;                      /* FPU, VGA, no floppy */
	put16(&cmos[0x15], 640);                /* base memory, KiB */
	put16(&cmos[0x17], low > MIB ? (low - MIB) / KIB : 0);
	memcpy(&cmos[0x30], &cmos[0x17], 2);
	put16(&cmos[0x34], low > 16 * MIB ? (low - 16 * MIB) / (64 * KIB) : 0);
	if (above4g > 0xffffff)
		above4g = 0xffffff;
	cmos[0x5b] = (uint8_t)above4g;
	cmos[0x5c] = (uint8_t)(above4g >> 8);
	cmos[0x5d] = (uint8_t)(above4g >> 16);
	for (unsigned i = 0x10; i <= 0x2d; i++)
		sum += cmos[i];
	cmos[0x2e] = (uint8_t)(sum >> 8);
	cmos[0x2f] = (uint8_t)sum;
}

/* ---- Snapshots ---- */

#define RTC_STATE_VERSION 1
#define RTC_TIME_LIMIT (1ll << 62)     /* ns: keeps source time sums in range */

static void rtc_save(struct rtc *r, struct stream *s)
{
	stream_section_begin(s, "rtc", 0, RTC_STATE_VERSION);
	stream_put_u8(s, r->index);
	stream_put_u8(s, atomic_load(&r->nmi_masked));
	stream_put_u8(s, r->flags);
	stream_put(s, r->cmos, sizeof(r->cmos));
	stream_put_u64(s, (uint64_t)r->host_base);
	stream_put_u64(s, (uint64_t)r->delta_s);
	stream_put_u64(s, (uint64_t)r->last);
	stream_put_u64(s, (uint64_t)r->deadline);
	stream_section_end(s);
}

static int rtc_load(struct rtc *r, struct stream *s)
{
	uint8_t index, nmi, flags, cmos[sizeof(r->cmos)];
	int64_t host_base, delta_s, last, deadline, now;

	if (stream_section_open(s, "rtc", 0, RTC_STATE_VERSION, NULL))
		return stream_error(s);
	index = stream_get_u8(s);
	nmi = stream_get_u8(s);
	flags = stream_get_u8(s);
	stream_get(s, cmos, sizeof(cmos));
	host_base = (int64_t)stream_get_u64(s);
	delta_s = (int64_t)stream_get_u64(s);
	last = (int64_t)stream_get_u64(s);
	deadline = (int64_t)stream_get_u64(s);
	if (stream_section_close(s))
		return stream_error(s);
	if (index > 0x7f || nmi > 1 || flags & 0x0f || cmos[RTC_REG_A] & RTC_A_UIP)
		return stream_fail(s, -EINVAL, "rtc: bad index %#x, NMI mask %u, register C "
				   "%#x or A %#x", index, nmi, flags, cmos[RTC_REG_A]);
	if (host_base < -RTC_TIME_LIMIT || host_base > RTC_TIME_LIMIT ||
	    delta_s < -RTC_TIME_LIMIT / NS_PER_S || delta_s > RTC_TIME_LIMIT / NS_PER_S)
		return stream_fail(s, -EINVAL, "rtc: time offsets out of range (%lld ns, %lld s)",
				   (long long)host_base, (long long)delta_s);
	/* The default source, from the saved base: what the saved times are in. */
	now = host_base + (int64_t)vm_clock_ns(r->vm);
	if (r->clock != default_clock)
		now = source_now(r);
	if (last > now || last < now - RTC_TIME_LIMIT ||
	    (deadline != NEVER && (deadline > last + NS_PER_S || deadline < last - NS_PER_S)))
		return stream_fail(s, -EINVAL, "rtc: flag time %lld or timer %lld does not fit "
				   "the clock (%lld)", (long long)last, (long long)deadline,
				   (long long)now);
	r->index = index;
	atomic_store(&r->nmi_masked, nmi);
	r->flags = flags;
	memcpy(r->cmos, cmos, sizeof(cmos));
	r->host_base = host_base;
	r->delta_s = delta_s;
	r->last = last;
	r->deadline = deadline;
	/* The timer the checkpoint had pending, at the same moment. */
	if (deadline == NEVER)
		timer_cancel(r->vm, r->timer);
	else
		timer_arm(r->vm, r->timer, vm_clock_ns(r->vm) +
			  (uint64_t)(deadline > now ? deadline - now : 0));
	return 0;
}

/*
 * A machine reset loads the power-on checkpoint, and the VM clock goes
 * back with it.  The RTC is battery-backed: its CMOS RAM, its registers and
 * the guest's time offset stay; only the time source is re-anchored to the
 * host clock, so the guest's date carries on instead of going back.
 */
static int rtc_keep_across_reset(struct rtc *r, struct stream *s)
{
	int64_t now;

	if (stream_section_open(s, "rtc", 0, RTC_STATE_VERSION, NULL))
		return stream_error(s);
	stream_get_ptr(s, stream_left(s));
	if (stream_section_close(s))
		return stream_error(s);
	r->host_base = host_utc_ns() - (int64_t)vm_clock_ns(r->vm);
	now = source_now(r);
	r->last = now;
	/* The armed timer is in the old clock's terms: drop it, arm afresh. */
	timer_cancel(r->vm, r->timer);
	r->deadline = NEVER;
	schedule(r, now);
	return 0;
}

static bool rtc_restore_receive(void *dev, void *msg)
{
	struct msg_restore *m = msg;
	struct rtc *r = dev;

	if (m->error)
		return true;
	if (m->type == RESTORE_SAVE)
		rtc_save(r, m->s);
	else if (m->reset)
		m->error = rtc_keep_across_reset(r, m->s);
	else
		m->error = rtc_load(r, m->s);
	return true;
}

/* ---- The device ---- */

void rtc_set_clock(struct rtc *r, rtc_clock_fn fn, void *ctx)
{
	r->clock = fn ? fn : default_clock;
	r->clock_ctx = fn ? ctx : r;
	r->last = source_now(r);
	r->deadline = NEVER;
	timer_cancel(r->vm, r->timer);
	schedule(r, r->last);
}

bool rtc_nmi_masked(struct vm *vm)
{
	struct rtc *r = rtc_find(vm);

	return r && atomic_load_explicit(&r->nmi_masked, memory_order_relaxed);
}

struct rtc *rtc_find(struct vm *vm)
{
	return vm_device_find(vm, "rtc");
}

static int64_t host_utc_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

struct rtc *rtc_create(struct vm *vm)
{
	struct rtc *r;

	if (!vm->timers)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->vm = vm;
	r->host_base = host_utc_ns() - (int64_t)vm_clock_ns(vm);
	r->clock = default_clock;
	r->clock_ctx = r;
	r->last = source_now(r);
	r->deadline = NEVER;
	cmos_init(r->cmos, vm->mem.size);
	if (vm_device_claim(vm, "rtc", r)) {
		free(r);
		return NULL;
	}
	r->timer = timer_alloc(vm);
	if (range_bus_add(vm->bus.pio, RTC_PORT_INDEX, 2, rtc_pio, false, r))
		goto fail_registry;
	if (bus_attach(vm->bus.timer, rtc_timer, NULL, r))
		goto fail_ports;
	if (bus_attach(vm->bus.restore, rtc_restore_receive, NULL, r))
		goto fail_timer;
	return r;
fail_timer:
	bus_detach(vm->bus.timer, rtc_timer, r);
fail_ports:
	range_bus_remove(vm->bus.pio, RTC_PORT_INDEX);
fail_registry:
	vm_device_release(r->vm, "rtc", r);
	free(r);
	return NULL;
}

void rtc_destroy(struct rtc *r)
{
	if (!r)
		return;
	/* Detaching waits out RCU readers: no callback can re-arm after this. */
	bus_detach(r->vm->bus.restore, rtc_restore_receive, r);
	bus_detach(r->vm->bus.timer, rtc_timer, r);
	range_bus_remove(r->vm->bus.pio, RTC_PORT_INDEX);
	if (r->vm->timers)
		timer_cancel(r->vm, r->timer);
	vm_device_release(r->vm, "rtc", r);
	free(r);
}

void rtc_dump(const struct rtc *r, FILE *f)
{
	const uint8_t *c = r->cmos;

	fprintf(f, "rtc: index %#x nmi %s, A %#x B %#x C %#x, delta %llds, timer %s\n",
		r->index, atomic_load(&r->nmi_masked) ? "masked" : "enabled", c[RTC_REG_A],
		c[RTC_REG_B], r->flags, (long long)r->delta_s,
		r->deadline == NEVER ? "idle" : "armed");
	for (unsigned i = 0; i < sizeof(r->cmos); i += 16) {
		fprintf(f, "  %02x:", i);
		for (unsigned j = 0; j < 16; j++)
			fprintf(f, " %02x", c[i + j]);
		fputc('\n', f);
	}
}

static void rtc_destroy_hook(void *ctx)
{
	rtc_destroy(ctx);
}

static int rtc_model_create(struct vm *vm, const char *args)
{
	struct rtc *r;

	if (*args) {
		pr_err("rtc: takes no arguments ('%s')", args);
		return -EINVAL;
	}
	r = rtc_create(vm);
	if (!r) {
		pr_err("rtc: cannot create (ports 0x70/0x71 taken, an RTC already there, "
		       "or no timer service)");
		return -EEXIST;
	}
	vm_at_exit(vm, rtc_destroy_hook, r);
	return 0;
}

DEVICE_MODEL(rtc_model,
	.name = "rtc",
	.help = "rtc  MC146818 RTC and CMOS RAM at 0x70/0x71 (IRQ 8, host UTC, NMI mask)",
	.create = rtc_model_create);
