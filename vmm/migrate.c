/*
 * Live migration, the source side (vmm/migrate.h, doc/migration.md).
 *
 * The migration thread: connect, HELLO and the destination's answer,
 * dirty log on, round 0 (every page; zero pages as markers), then rounds
 * of the pages dirtied since, until the dirty remainder at the measured
 * bandwidth fits the downtime limit (or the round limit); then pause the
 * VM, send the last dirty pages, the page checksums (x-verify) and the
 * vCPU and device state, and wait for the destination's RUNNING.
 *
 * The status, statistics and parameters live under mig.lock: the QMP
 * thread reads them while this thread writes.  The socket is shut down
 * by migrate_cancel() to wake a blocked send or receive.
 */
#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>
#include "vmm/dirty_hash.h"
#include "vmm/dirty_log.h"
#include "vmm/log.h"
#include "vmm/machine_reset.h"
#include "vmm/migrate.h"
#include "vmm/migrate_wire.h"
#include "vmm/pause.h"
#include "vmm/snapshot.h"
#include "vmm/stream.h"
#include "vmm/timer.h"
#include "vmm/vm.h"

static struct {
	pthread_mutex_t lock;
	struct migrate_params params;
	struct migrate_info info;
	pthread_t thread;
	bool joinable;            /* a thread to join before the next start */
	bool running;
	bool exit_hook;
	bool handed_over;
	bool committed;           /* STATE sent: a cancel can no longer stop it */
	_Atomic bool cancel;
	int fd;                   /* the socket while connected, else -1 */
	uint64_t start_ns;
	char uri[512];
	migrate_notify_fn notify;
} mig = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.params = { .downtime_limit_ms = 300, .max_rounds = 30 },
	.fd = -1,
};

/* The migration thread's own state. */
struct src {
	struct vm *vm;
	struct migrate_params p;
	struct mig_conn c;
	struct dirty_log dl;      /* the dirty bitmaps, from KVM or from dh */
	struct dirty_hash dh;
	const unsigned char *absent_map;   /* round 0: mincore of absent_region */
	unsigned absent_region;
	ZSTD_CCtx *zc;
	/* The batch being filled: entries, raw data, compressed data. */
	unsigned region, n, ndata;
	uint64_t entry[MIG_BATCH_PAGES];
	uint8_t *data, *zdata;
	size_t zcap;
	uint8_t *rbuf;
	size_t rcap;
	uint64_t start_ns, round_ns, round_bytes, paused_ns;
	uint64_t resets;          /* machine_reset_count() when RAM was last all sent */
	double bw;                /* wire bytes per ms, measured */
	double pps;               /* data pages per ms, measured: the convergence rule */
	uint64_t round_pages;
	bool paused;
	char err[256];
};

static const char *const status_names[] = {
	[MIGRATE_NONE] = "none", [MIGRATE_SETUP] = "setup", [MIGRATE_ACTIVE] = "active",
	[MIGRATE_DEVICE] = "device", [MIGRATE_COMPLETED] = "completed",
	[MIGRATE_FAILED] = "failed", [MIGRATE_CANCELLING] = "cancelling",
	[MIGRATE_CANCELLED] = "cancelled",
};

const char *migrate_status_name(enum migrate_status st)
{
	return status_names[st];
}

void migrate_params_get(struct migrate_params *p)
{
	pthread_mutex_lock(&mig.lock);
	*p = mig.params;
	pthread_mutex_unlock(&mig.lock);
}

void migrate_params_set(const struct migrate_params *p)
{
	pthread_mutex_lock(&mig.lock);
	mig.params = *p;
	pthread_mutex_unlock(&mig.lock);
}

void migrate_query(struct migrate_info *info)
{
	pthread_mutex_lock(&mig.lock);
	*info = mig.info;
	if (mig.running)
		info->total_time_ms = (clock_ns() - mig.start_ns) / 1000000;
	pthread_mutex_unlock(&mig.lock);
}

bool migrate_handed_over(void)
{
	pthread_mutex_lock(&mig.lock);
	bool h = mig.handed_over;
	pthread_mutex_unlock(&mig.lock);
	return h;
}

static void set_status(enum migrate_status st)
{
	pthread_mutex_lock(&mig.lock);
	mig.info.status = st;
	pthread_mutex_unlock(&mig.lock);
	if (mig.notify)
		mig.notify(MIGRATE_EV_STATUS, st);
}

static int fail(struct src *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct src *s, int err, const char *fmt, ...)
{
	va_list ap;

	if (!s->err[0]) {
		va_start(ap, fmt);
		vsnprintf(s->err, sizeof(s->err), fmt, ap);
		va_end(ap);
	}
	return err;
}

static int check_cancel(struct src *s)
{
	return atomic_load(&mig.cancel) ? fail(s, -ECANCELED, "cancelled") : 0;
}

/* ---- Sending pages ---- */

static void stats_after_batch(struct src *s, unsigned zero, unsigned data)
{
	pthread_mutex_lock(&mig.lock);
	mig.info.transferred = s->c.sent;
	mig.info.duplicate += zero;
	mig.info.normal += data;
	mig.info.remaining -= mig.info.remaining < (zero + data) * (uint64_t)MIG_PAGE ?
			      mig.info.remaining : (zero + data) * (uint64_t)MIG_PAGE;
	pthread_mutex_unlock(&mig.lock);
}

/*
 * Sleep off what max-bandwidth says this round is ahead by, in slices
 * that a cancel cuts short, watching the socket: the destination says
 * nothing during pre-copy, so anything readable is its end (or REFUSE).
 */
static int throttle(struct src *s)
{
	uint64_t want_ns;

	if (!s->p.max_bandwidth)
		return 0;
	want_ns = (uint64_t)((double)s->round_bytes * 1e9 / (double)s->p.max_bandwidth);
	while (!atomic_load(&mig.cancel)) {
		uint64_t spent = clock_ns() - s->round_ns;
		struct pollfd p = { .fd = s->c.fd, .events = POLLIN | POLLRDHUP };

		if (spent >= want_ns)
			break;
		if (poll(&p, 1, (int)((want_ns - spent) / 1000000) % 20 + 1) > 0)
			return fail(s, -ECONNRESET, "connection lost: the destination hung up");
	}
	return 0;
}

/* Compress the batch's data when that makes it smaller; returns the encoding. */
static uint32_t encode(struct src *s, const void **data, uint32_t *len)
{
	size_t raw = (size_t)s->ndata * MIG_PAGE, z;

	*data = s->data;
	*len = (uint32_t)raw;
	if (!s->zc || !raw)
		return MIG_ENC_RAW;
	z = ZSTD_compressCCtx(s->zc, s->zdata, s->zcap, s->data, raw, 1);
	if (ZSTD_isError(z) || z >= raw)
		return MIG_ENC_RAW;
	*data = s->zdata;
	*len = (uint32_t)z;
	return MIG_ENC_ZSTD;
}

static int flush_batch(struct src *s)
{
	struct { struct mig_pages h; uint64_t e[MIG_BATCH_PAGES]; } m;
	const void *data;
	uint32_t len;
	uint64_t before = s->c.sent;
	int err;

	if (!s->n)
		return 0;
	m.h = (struct mig_pages){ .region = s->region, .count = s->n };
	m.h.encoding = encode(s, &data, &len);
	m.h.data_len = len;
	memcpy(m.e, s->entry, s->n * sizeof(s->entry[0]));
	err = mig_send2(&s->c, MIG_PAGES, &m, (uint32_t)(sizeof(m.h) + s->n * sizeof(m.e[0])),
			data, len);
	if (err)
		return fail(s, err, "connection lost: %s", strerror(-err));
	s->round_bytes += s->c.sent - before;
	s->round_pages += s->ndata;
	stats_after_batch(s, s->n - s->ndata, s->ndata);
	s->n = s->ndata = 0;
	err = throttle(s);
	return err ? err : check_cancel(s);
}

/* Queue page @page of @region: a zero marker, or a copy of its data. */
static int add_page(struct src *s, unsigned region, uint64_t page)
{
	const uint8_t *p = s->vm->mem.region[region].host + page * MIG_PAGE;
	int err;

	if ((s->n && region != s->region) || s->n == MIG_BATCH_PAGES) {
		err = flush_batch(s);
		if (err)
			return err;
	}
	s->region = region;
	if (mig_page_zero(p)) {
		if (!s->p.kvm_dirty_log)
			dirty_hash_sent(&s->dh, region, page, NULL);
		s->entry[s->n++] = page | MIG_ENTRY_ZERO;
		return 0;
	}
	s->entry[s->n++] = page;
	memcpy(s->data + (size_t)s->ndata * MIG_PAGE, p, MIG_PAGE);
	/* The hash of the copy: what the destination will hold. */
	if (!s->p.kvm_dirty_log)
		dirty_hash_sent(&s->dh, region, page, s->data + (size_t)s->ndata * MIG_PAGE);
	s->ndata++;
	return 0;
}

/*
 * Round 0 sends pages that are not resident (never written, no swap) as
 * zero markers without reading them: a read would map them, and every
 * later hash sync would have to hash them.
 */
static bool absent(struct src *s, unsigned r, uint64_t pg)
{
	return s->absent_map && !(s->absent_map[pg] & 1) && r == s->absent_region;
}

static void map_residency(struct src *s, unsigned r)
{
	const struct mem_region *m = &s->vm->mem.region[r];

	s->absent_map = NULL;
	if (s->p.kvm_dirty_log || s->dh.all_resident || !s->dh.resident ||
	    mincore(m->host, m->size, s->dh.resident) < 0)
		return;
	s->absent_map = s->dh.resident;
	s->absent_region = r;
}

static int add_zero(struct src *s, unsigned region, uint64_t page)
{
	if ((s->n && region != s->region) || s->n == MIG_BATCH_PAGES) {
		int err = flush_batch(s);

		if (err)
			return err;
	}
	s->region = region;
	s->entry[s->n++] = page | MIG_ENTRY_ZERO;
	return 0;
}

/* Every page (@all) or the dirty ones of the last sync. */
static int send_pages(struct src *s, bool all)
{
	for (unsigned r = 0; r < s->vm->mem.count; r++) {
		if (all)
			map_residency(s, r);
		for (uint64_t pg = 0; pg < s->dl.npages[r]; pg++) {
			int err;

			if (all && absent(s, r, pg)) {
				err = add_zero(s, r, pg);   /* the hash already says zero */
				if (err)
					return err;
				continue;
			}
			if (!all && !s->dl.bitmap[r][pg / 64]) {
				pg |= 63;   /* skip a clean word */
				continue;
			}
			if (!all && !dirty_log_test(&s->dl, r, pg))
				continue;
			err = add_page(s, r, pg);
			if (err)
				return err;
		}
	}
	s->absent_map = NULL;
	return flush_batch(s);
}

/* ---- Rounds ---- */

static void begin_round(struct src *s)
{
	s->round_ns = clock_ns();
	s->round_bytes = s->round_pages = 0;
}

static void end_round(struct src *s)
{
	double ms = (double)(clock_ns() - s->round_ns) / 1e6;

	if (s->round_bytes && ms > 0.001)
		s->bw = (double)s->round_bytes / ms;
	/* Compression changes the bytes, not the pages: estimate in pages. */
	if (s->round_pages && ms > 0.001)
		s->pps = (double)s->round_pages / ms;
}

static int64_t sync_dirty(struct src *s, uint64_t since_ns)
{
	int64_t n = s->p.kvm_dirty_log ? dirty_log_sync(&s->dl, s->err, sizeof(s->err))
					: dirty_hash_sync(&s->dh, &s->vm->mem, s->dl.bitmap);
	double secs = (double)(clock_ns() - since_ns) / 1e9;

	if (n < 0)
		return n;
	pthread_mutex_lock(&mig.lock);
	mig.info.dirty_sync_count++;
	mig.info.remaining = (uint64_t)n * MIG_PAGE;
	mig.info.dirty_pages_rate = secs > 0 ? (uint64_t)((double)n / secs) : 0;
	mig.info.expected_downtime_ms = s->pps > 0 ? (uint64_t)((double)n / s->pps) : 0;
	mig.info.mbps = s->bw * 8 * 1000 / 1e6;
	pthread_mutex_unlock(&mig.lock);
	return n;
}

/*
 * A machine reset loads the power-on image into RAM from the VMM, which
 * KVM's dirty log does not see: after one, the next round sends all RAM.
 */
static bool reset_since(struct src *s)
{
	uint64_t n = machine_reset_count();
	bool changed = n != s->resets;

	s->resets = n;
	return changed;
}

/* Pre-copy: round 0, then dirty rounds until the rest fits the downtime limit. */
static int precopy(struct src *s)
{
	uint64_t last_sync = clock_ns();
	int err;

	begin_round(s);
	s->resets = machine_reset_count();
	err = send_pages(s, true);
	for (unsigned round = 1; !err; round++) {
		int64_t n;

		end_round(s);
		n = sync_dirty(s, last_sync);
		last_sync = clock_ns();
		if (n < 0)
			return fail(s, (int)n, "dirty log: %s", s->err);
		if (s->pps > 0 && (double)n / s->pps <= (double)s->p.downtime_limit_ms)
			return 0;
		if (round > s->p.max_rounds) {
			pthread_mutex_lock(&mig.lock);
			mig.info.converged = false;
			pthread_mutex_unlock(&mig.lock);
			pr_warn("migration: no convergence after %u rounds (%lld dirty pages): "
				"stopping anyway", s->p.max_rounds, (long long)n);
			return 0;
		}
		begin_round(s);
		err = send_pages(s, reset_since(s));
	}
	return err;
}

/* ---- The final phase ---- */

static int send_verify(struct src *s)
{
	static uint32_t crc[MIG_VERIFY_CHUNK];

	for (unsigned r = 0; r < s->vm->mem.count; r++) {
		const uint8_t *host = s->vm->mem.region[r].host;

		for (uint64_t first = 0; first < s->dl.npages[r]; first += MIG_VERIFY_CHUNK) {
			uint64_t left = s->dl.npages[r] - first;
			struct mig_verify v = { .region = r, .first = first,
				.count = (uint32_t)(left < MIG_VERIFY_CHUNK ? left : MIG_VERIFY_CHUNK) };
			int err;

			for (uint32_t i = 0; i < v.count; i++)
				crc[i] = mig_crc(host + (first + i) * MIG_PAGE, MIG_PAGE);
			err = mig_send2(&s->c, MIG_VERIFY, &v, sizeof(v), crc, v.count * 4);
			if (err)
				return fail(s, err, "connection lost: %s", strerror(-err));
		}
	}
	return 0;
}

/* The vCPU and device state through a memfd, as one STATE message. */
static int send_state(struct src *s)
{
	int fd = memfd_create("vmm-migrate-state", MFD_CLOEXEC), err;
	struct stream st;
	struct stat sb;
	void *map;

	if (fd < 0)
		return fail(s, -errno, "memfd_create: %s", strerror(errno));
	if (stream_open_write_fd(&st, fd) == 0)
		vm_state_save(s->vm, &st, VM_STATE_CPUS | VM_STATE_DEVICES);
	err = stream_close(&st);
	if (err) {
		close(fd);
		return fail(s, err, "saving the VM state: %s", stream_why(&st));
	}
	/* A reset runs under its own (nested) pause: one now would be lost. */
	if (reset_since(s)) {
		close(fd);
		return fail(s, -EAGAIN, "the machine was reset during the final phase");
	}
	fstat(fd, &sb);
	map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED || (uint64_t)sb.st_size > MIG_MAX_PAYLOAD)
		return fail(s, -ENOMEM, "the VM state (%lld bytes) cannot be sent",
			    (long long)sb.st_size);
	pthread_mutex_lock(&mig.lock);
	mig.committed = true;
	pthread_mutex_unlock(&mig.lock);
	err = mig_send(&s->c, MIG_STATE, map, (uint32_t)sb.st_size);
	munmap(map, (size_t)sb.st_size);
	return err ? fail(s, err, "connection lost: %s", strerror(-err)) : 0;
}

/* The destination's last word: RUNNING, or REFUSE with its reason. */
static int wait_running(struct src *s)
{
	struct mig_header h;
	char why[256];

	if (mig_recv(&s->c, &h, &s->rbuf, &s->rcap, why, sizeof(why)))
		return fail(s, -EIO, "no answer from the destination: %s", why);
	if (h.type == MIG_RUNNING)
		return 0;
	if (h.type == MIG_REFUSE)
		return fail(s, -EPROTO, "the destination refused: %.*s",
			    (int)(h.len < 200 ? h.len : 200), (const char *)s->rbuf);
	return fail(s, -EPROTO, "unexpected message %u from the destination", h.type);
}

static void pause_vm(struct src *s)
{
	bool was_running = !vm_is_paused(s->vm);

	vm_pause(s->vm);
	s->paused = true;
	s->paused_ns = clock_ns();
	if (was_running && mig.notify)
		mig.notify(MIGRATE_EV_STOP, MIGRATE_DEVICE);
}

static int final_phase(struct src *s)
{
	int64_t n;
	int err;

	set_status(MIGRATE_DEVICE);
	pause_vm(s);
	n = sync_dirty(s, s->paused_ns);
	if (n < 0)
		return fail(s, (int)n, "dirty log: %s", s->err);
	err = send_pages(s, reset_since(s));
	if (!err && s->p.verify)
		err = send_verify(s);
	if (!err)
		err = check_cancel(s);
	if (!err)
		err = send_state(s);
	if (!err)
		err = wait_running(s);
	if (!err) {
		pthread_mutex_lock(&mig.lock);
		mig.info.downtime_ms = (clock_ns() - s->paused_ns) / 1000000;
		pthread_mutex_unlock(&mig.lock);
	}
	return err;
}

/* ---- Set-up ---- */

static int hello(struct src *s)
{
	struct mig_hello h = { .version = MIG_VERSION, .ncpus = s->vm->ncpus,
			       .nregions = s->vm->mem.count };
	struct mig_header rh;
	char why[256];
	int err;

	memcpy(h.magic, MIG_MAGIC, sizeof(h.magic));
	h.flags = (s->p.zstd ? MIG_F_ZSTD : 0) | (s->p.verify ? MIG_F_VERIFY : 0);
	for (unsigned i = 0; i < s->vm->mem.count; i++) {
		h.region[i].gpa = s->vm->mem.region[i].gpa;
		h.region[i].size = s->vm->mem.region[i].size;
	}
	err = mig_send(&s->c, MIG_HELLO, &h, sizeof(h));
	if (err)
		return fail(s, err, "cannot send: %s", strerror(-err));
	if (mig_recv(&s->c, &rh, &s->rbuf, &s->rcap, why, sizeof(why)))
		return fail(s, -EIO, "no answer from the destination: %s", why);
	if (rh.type == MIG_REFUSE)
		return fail(s, -EPROTO, "the destination refused: %.*s",
			    (int)(rh.len < 200 ? rh.len : 200), (const char *)s->rbuf);
	if (rh.type != MIG_ACCEPT)
		return fail(s, -EPROTO, "unexpected message %u from the destination", rh.type);
	return 0;
}

static int connect_dest(struct src *s, const char *uri)
{
	int fd = mig_connect(uri, s->err, sizeof(s->err));

	if (fd < 0)
		return fd;
	pthread_mutex_lock(&mig.lock);
	mig.fd = fd;
	pthread_mutex_unlock(&mig.lock);
	s->c = (struct mig_conn){ .fd = fd };
	return check_cancel(s);
}

static int buffers(struct src *s)
{
	s->data = malloc((size_t)MIG_BATCH_PAGES * MIG_PAGE);
	s->zcap = ZSTD_compressBound((size_t)MIG_BATCH_PAGES * MIG_PAGE);
	s->zdata = s->p.zstd ? malloc(s->zcap) : NULL;
	s->zc = s->p.zstd ? ZSTD_createCCtx() : NULL;
	if (!s->data || (s->p.zstd && (!s->zdata || !s->zc)))
		return fail(s, -ENOMEM, "out of memory");
	return 0;
}

static int run_source(struct src *s, const char *uri)
{
	int err;

	set_status(MIGRATE_SETUP);
	err = buffers(s);
	if (!err)
		err = connect_dest(s, uri);
	if (!err)
		err = hello(s);
	if (!err)
		err = dirty_log_start(&s->dl, s->vm, s->p.kvm_dirty_log, s->err, sizeof(s->err));
	if (!err && !s->p.kvm_dirty_log && dirty_hash_init(&s->dh, &s->vm->mem))
		err = fail(s, -ENOMEM, "out of memory for the page hashes");
	if (err)
		return err;
	pthread_mutex_lock(&mig.lock);
	mig.info.setup_time_ms = (clock_ns() - s->start_ns) / 1000000;
	mig.info.remaining = s->vm->mem.size;
	pthread_mutex_unlock(&mig.lock);
	set_status(MIGRATE_ACTIVE);
	err = precopy(s);
	return err ? err : final_phase(s);
}

/* ---- The thread ---- */

static void finish(struct src *s, int err)
{
	bool cancelled = err == -ECANCELED;
	enum migrate_status st = !err ? MIGRATE_COMPLETED :
				 cancelled ? MIGRATE_CANCELLED : MIGRATE_FAILED;

	dirty_log_stop(&s->dl);
	dirty_hash_free(&s->dh);
	pthread_mutex_lock(&mig.lock);
	if (mig.fd >= 0)
		close(mig.fd);
	mig.fd = -1;
	mig.running = false;
	mig.handed_over = !err;
	mig.info.total_time_ms = (clock_ns() - s->start_ns) / 1000000;
	mig.info.transferred = s->c.sent;
	if (err)
		snprintf(mig.info.error, sizeof(mig.info.error), "%s", s->err[0] ? s->err :
			 strerror(-err));
	pthread_mutex_unlock(&mig.lock);
	if (err)
		pr_warn("migration %s: %s", cancelled ? "cancelled" : "failed", mig.info.error);
	if (err && s->paused) {
		vm_resume(s->vm);
		if (!vm_is_paused(s->vm) && mig.notify)
			mig.notify(MIGRATE_EV_RESUME, st);
	}
	set_status(st);
}

static void *migrate_thread(void *arg)
{
	struct src *s = arg;
	int err = run_source(s, mig.uri);

	finish(s, err);
	ZSTD_freeCCtx(s->zc);
	free(s->data);
	free(s->zdata);
	free(s->rbuf);
	free(s);
	return NULL;
}

/* At VM teardown: stop a migration still under way, before RAM goes. */
static void migrate_at_exit(void *ctx)
{
	(void)ctx;
	migrate_cancel();
	pthread_mutex_lock(&mig.lock);
	bool join = mig.joinable;
	mig.joinable = false;
	pthread_mutex_unlock(&mig.lock);
	if (join)
		pthread_join(mig.thread, NULL);
}

/* The previous migration's thread has finished (or is finishing): reap it. */
static void join_previous(void)
{
	pthread_t old;
	bool join;

	pthread_mutex_lock(&mig.lock);
	join = mig.joinable && !mig.running;
	old = mig.thread;
	if (join)
		mig.joinable = false;
	pthread_mutex_unlock(&mig.lock);
	if (join)
		pthread_join(old, NULL);
}

static int start_locked(struct vm *vm, const char *uri, migrate_notify_fn notify,
			char *err, size_t errlen)
{
	struct src *s;

	if (mig.running || mig.handed_over)
		return report_error(err, errlen, -EBUSY, mig.running ?
				    "a migration is already under way" :
				    "the VM was already migrated");
	if (strlen(uri) >= sizeof(mig.uri))
		return report_error(err, errlen, -EINVAL, "URI too long");
	s = calloc(1, sizeof(*s));
	if (!s)
		return report_error(err, errlen, -ENOMEM, "out of memory");
	*s = (struct src){ .vm = vm, .p = mig.params, .start_ns = clock_ns() };
	strcpy(mig.uri, uri);
	mig.notify = notify;
	mig.committed = false;
	mig.start_ns = s->start_ns;
	atomic_store(&mig.cancel, false);
	mig.info = (struct migrate_info){ .status = MIGRATE_SETUP, .total = vm->mem.size,
					  .converged = true };
	if (pthread_create(&mig.thread, NULL, migrate_thread, s)) {
		mig.info.status = MIGRATE_FAILED;
		free(s);
		return report_error(err, errlen, -EAGAIN, "cannot start the migration thread");
	}
	mig.running = mig.joinable = true;
	if (!mig.exit_hook)
		vm_at_exit(vm, migrate_at_exit, NULL);
	mig.exit_hook = true;
	return 0;
}

int migrate_start(struct vm *vm, const char *uri, migrate_notify_fn notify,
		  char *err, size_t errlen)
{
	int ret;

	join_previous();
	pthread_mutex_lock(&mig.lock);
	ret = start_locked(vm, uri, notify, err, errlen);
	pthread_mutex_unlock(&mig.lock);
	return ret;
}

void migrate_cancel(void)
{
	bool cancelling = false;

	pthread_mutex_lock(&mig.lock);
	if (mig.running && !mig.committed && !atomic_load(&mig.cancel)) {
		cancelling = true;
		atomic_store(&mig.cancel, true);
		mig.info.status = MIGRATE_CANCELLING;
		/* Wake a send or receive blocked on the socket. */
		if (mig.fd >= 0)
			shutdown(mig.fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&mig.lock);
	if (cancelling && mig.notify)
		mig.notify(MIGRATE_EV_STATUS, MIGRATE_CANCELLING);
}
