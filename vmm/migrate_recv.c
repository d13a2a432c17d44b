/*
 * Live migration, the destination side (vmm/migrate.h, doc/migration.md).
 *
 * Runs on the main thread before any vCPU starts: accept one connection,
 * check HELLO against this machine (refusing a different shape), take in
 * PAGES and VERIFY messages, and on STATE verify that stream completely
 * and apply it.  Only then does it answer RUNNING and return 0, so the
 * caller starts the vCPUs; any failure answers REFUSE with the reason
 * (best effort: the source may be gone) and the VM never runs.
 *
 * Everything read from the socket is untrusted: every region, page index,
 * count and length is checked against this machine's RAM layout before a
 * byte of guest RAM is written.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zstd.h>
#include "vmm/log.h"
#include "vmm/migrate.h"
#include "vmm/migrate_wire.h"
#include "vmm/pause.h"
#include "vmm/snapshot.h"
#include "vmm/stream.h"
#include "vmm/vm.h"

struct dst {
	struct vm *vm;
	struct mig_conn c;
	uint32_t flags;                 /* HELLO's */
	uint8_t *buf;                   /* the last message */
	size_t cap;
	uint8_t *scratch;               /* one batch, decompressed */
	ZSTD_DCtx *zd;
	uint64_t pages_in, verified, bad_pages, first_bad_gpa;
	uint64_t *written[GUEST_MAX_REGIONS];   /* pages given data since RAM was zeroed */
	char err[256];
};

static int dfail(struct dst *d, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int dfail(struct dst *d, int err, const char *fmt, ...)
{
	va_list ap;

	if (!d->err[0]) {
		va_start(ap, fmt);
		vsnprintf(d->err, sizeof(d->err), fmt, ap);
		va_end(ap);
	}
	return err;
}

static int check_hello(struct dst *d, const struct mig_hello *h, uint32_t len)
{
	struct vm *vm = d->vm;

	if (len != sizeof(*h) || memcmp(h->magic, MIG_MAGIC, sizeof(h->magic)))
		return dfail(d, -EPROTO, "not a migration stream (bad HELLO)");
	if (h->version != MIG_VERSION)
		return dfail(d, -EPROTO, "migration format version %u, this VMM speaks %u",
			     h->version, MIG_VERSION);
	if (h->flags & ~(MIG_F_ZSTD | MIG_F_VERIFY))
		return dfail(d, -EPROTO, "unknown migration flags %#x", h->flags);
	if (h->ncpus != vm->ncpus)
		return dfail(d, -EINVAL, "the source has %u vCPUs, this machine %u (--cpus)",
			     h->ncpus, vm->ncpus);
	if (h->nregions != vm->mem.count)
		return dfail(d, -EINVAL, "the source has %u RAM regions, this machine %u (--mem)",
			     h->nregions, vm->mem.count);
	for (unsigned i = 0; i < vm->mem.count; i++)
		if (h->region[i].gpa != vm->mem.region[i].gpa ||
		    h->region[i].size != vm->mem.region[i].size)
			return dfail(d, -EINVAL, "RAM region %u: the source has %llu MiB at %#llx, "
				     "this machine %llu MiB at %#llx (--mem)", i,
				     (unsigned long long)(h->region[i].size >> 20),
				     (unsigned long long)h->region[i].gpa,
				     (unsigned long long)(vm->mem.region[i].size >> 20),
				     (unsigned long long)vm->mem.region[i].gpa);
	d->flags = h->flags;
	return 0;
}

/* The page data of a PAGES message, checked and decompressed: NULL on failure. */
static const uint8_t *pages_data(struct dst *d, const struct mig_pages *h, const uint8_t *data,
				 unsigned ndata)
{
	size_t want = (size_t)ndata * MIG_PAGE, got;

	if (h->encoding == MIG_ENC_RAW) {
		if (h->data_len != want)
			return dfail(d, -EPROTO, "PAGES: %u data bytes for %u pages", h->data_len,
				     ndata), NULL;
		return data;
	}
	if (h->encoding != MIG_ENC_ZSTD || !(d->flags & MIG_F_ZSTD))
		return dfail(d, -EPROTO, "PAGES: unknown encoding %u", h->encoding), NULL;
	got = ZSTD_decompressDCtx(d->zd, d->scratch, want, data, h->data_len);
	if (ZSTD_isError(got) || got != want)
		return dfail(d, -EPROTO, "PAGES: corrupt zstd data (%s)",
			     ZSTD_isError(got) ? ZSTD_getErrorName(got) : "wrong size"), NULL;
	return d->scratch;
}

static void apply_pages(struct dst *d, const struct mig_pages *h, const uint64_t *entry,
			const uint8_t *data)
{
	uint8_t *host = d->vm->mem.region[h->region].host;

	for (uint32_t i = 0; i < h->count; i++) {
		uint8_t *page = host + (entry[i] & ~MIG_ENTRY_ZERO) * MIG_PAGE;

		uint64_t idx = entry[i] & ~MIG_ENTRY_ZERO, *w = &d->written[h->region][idx / 64];

		if (!(entry[i] & MIG_ENTRY_ZERO)) {
			memcpy(page, data, MIG_PAGE);
			data += MIG_PAGE;
			*w |= 1ull << (idx % 64);
		} else if (*w >> (idx % 64) & 1) {
			/* Never-written pages are zero already: not even read (a fault each). */
			memset(page, 0, MIG_PAGE);
			*w &= ~(1ull << (idx % 64));
		}
	}
	d->pages_in += h->count;
}

static int recv_pages(struct dst *d, const uint8_t *p, uint32_t len)
{
	static uint64_t entry[MIG_BATCH_PAGES];
	struct mig_pages h;
	const uint8_t *data;
	unsigned ndata = 0;
	uint64_t npages;

	if (len < sizeof(h))
		return dfail(d, -EPROTO, "PAGES: short message");
	memcpy(&h, p, sizeof(h));
	if (h.region >= d->vm->mem.count || !h.count || h.count > MIG_BATCH_PAGES ||
	    len - sizeof(h) < h.count * sizeof(entry[0]) ||
	    len - sizeof(h) - h.count * sizeof(entry[0]) != h.data_len)
		return dfail(d, -EPROTO, "PAGES: bad header (region %u, %u pages, %u bytes)",
			     h.region, h.count, h.data_len);
	memcpy(entry, p + sizeof(h), h.count * sizeof(entry[0]));
	npages = d->vm->mem.region[h.region].size / MIG_PAGE;
	for (uint32_t i = 0; i < h.count; i++) {
		if ((entry[i] & ~MIG_ENTRY_ZERO) >= npages)
			return dfail(d, -EPROTO, "PAGES: page %llu outside RAM region %u",
				     (unsigned long long)(entry[i] & ~MIG_ENTRY_ZERO), h.region);
		ndata += !(entry[i] & MIG_ENTRY_ZERO);
	}
	data = pages_data(d, &h, p + sizeof(h) + h.count * sizeof(entry[0]), ndata);
	if (!data)
		return -EPROTO;
	apply_pages(d, &h, entry, data);
	return 0;
}

static int recv_verify(struct dst *d, const uint8_t *p, uint32_t len)
{
	struct mig_verify v;
	const struct mem_region *r;
	uint64_t npages;

	if (!(d->flags & MIG_F_VERIFY) || len < sizeof(v))
		return dfail(d, -EPROTO, "VERIFY: unexpected");
	memcpy(&v, p, sizeof(v));
	if (v.region >= d->vm->mem.count || v.count > MIG_VERIFY_CHUNK ||
	    len != sizeof(v) + (uint64_t)v.count * 4)
		return dfail(d, -EPROTO, "VERIFY: bad header");
	r = &d->vm->mem.region[v.region];
	npages = r->size / MIG_PAGE;
	if (v.first > npages || v.count > npages - v.first)
		return dfail(d, -EPROTO, "VERIFY: pages outside RAM region %u", v.region);
	for (uint32_t i = 0; i < v.count; i++) {
		uint32_t want;

		memcpy(&want, p + sizeof(v) + i * 4, 4);
		if (mig_crc(r->host + (v.first + i) * MIG_PAGE, MIG_PAGE) == want)
			continue;
		if (!d->bad_pages++)
			d->first_bad_gpa = r->gpa + (v.first + i) * MIG_PAGE;
	}
	d->verified += v.count;
	return 0;
}

static int verify_result(struct dst *d)
{
	if (!(d->flags & MIG_F_VERIFY))
		return 0;
	if (d->bad_pages)
		return dfail(d, -EIO, "verify: %llu pages differ from the source's, the first at "
			     "gpa %#llx", (unsigned long long)d->bad_pages,
			     (unsigned long long)d->first_bad_gpa);
	if (d->verified != d->vm->mem.size / MIG_PAGE)
		return dfail(d, -EPROTO, "verify: %llu of %llu pages checked",
			     (unsigned long long)d->verified,
			     (unsigned long long)(d->vm->mem.size / MIG_PAGE));
	return 0;
}

/* Apply the STATE stream; the VM has not run and must not if this fails. */
static int apply_state(struct dst *d, const uint8_t *p, uint32_t len)
{
	struct stream st;
	bool applied = false;
	int err;

	vm_pause(d->vm);
	err = stream_open_read_mem(&st, p, len, "migration state");
	if (!err)
		err = vm_state_load(d->vm, &st, VM_STATE_CPUS | VM_STATE_DEVICES, &applied);
	if (err)
		dfail(d, err, "the VM state: %s", stream_why(&st));
	stream_close(&st);
	vm_resume(d->vm);
	return err;
}

/* HELLO first, then PAGES/VERIFY until STATE: 0 when STATE was applied. */
static int receive(struct dst *d)
{
	struct mig_header h;
	int err;

	for (bool hello = false;;) {
		if (mig_recv(&d->c, &h, &d->buf, &d->cap, d->err, sizeof(d->err)))
			return -EIO;
		if (!hello && h.type != MIG_HELLO)
			return dfail(d, -EPROTO, "expected HELLO, got message %u", h.type);
		switch (h.type) {
		case MIG_HELLO:
			err = hello ? dfail(d, -EPROTO, "a second HELLO")
				    : check_hello(d, (const struct mig_hello *)d->buf, h.len);
			if (!err)
				err = mig_send(&d->c, MIG_ACCEPT, NULL, 0);
			hello = true;
			break;
		case MIG_PAGES: err = recv_pages(d, d->buf, h.len); break;
		case MIG_VERIFY: err = recv_verify(d, d->buf, h.len); break;
		case MIG_STATE:
			err = verify_result(d);
			return err ? err : apply_state(d, d->buf, h.len);
		default:
			err = dfail(d, -EPROTO, "unexpected message %u", h.type);
		}
		if (err)
			return dfail(d, err, "%s", strerror(-err));
	}
}

/* RAM starts zeroed whatever set-up wrote (firmware tables): the stream is all of it. */
static void zero_ram(struct vm *vm)
{
	for (unsigned i = 0; i < vm->mem.count; i++)
		madvise(vm->mem.region[i].host, vm->mem.region[i].size, MADV_DONTNEED);
}

int migrate_incoming(struct vm *vm, const char *uri, char *err, size_t errlen)
{
	struct dst d = { .vm = vm };
	int fd, ret;

	fprintf(stderr, "vmm: waiting for the migration on %s\n", uri);
	fd = mig_accept(uri, err, errlen);
	if (fd < 0)
		return fd;
	d.c.fd = fd;
	d.scratch = malloc((size_t)MIG_BATCH_PAGES * MIG_PAGE);
	d.zd = ZSTD_createDCtx();
	zero_ram(vm);
	ret = d.scratch && d.zd ? 0 : -ENOMEM;
	for (unsigned i = 0; i < vm->mem.count && !ret; i++) {
		d.written[i] = calloc((vm->mem.region[i].size / MIG_PAGE + 63) / 64, 8);
		ret = d.written[i] ? 0 : -ENOMEM;
	}
	ret = ret ? dfail(&d, ret, "out of memory") : receive(&d);
	/* The source resumes unless it hears RUNNING: without it, do not run. */
	if (!ret && mig_send(&d.c, MIG_RUNNING, NULL, 0))
		ret = dfail(&d, -EPIPE, "the source went away before the hand-over");
	if (ret) {
		mig_send(&d.c, MIG_REFUSE, d.err, (uint32_t)strlen(d.err));
		snprintf(err, errlen, "incoming migration: %s", d.err);
	} else {
		fprintf(stderr, "vmm: migration in: %llu pages received, running\n",
			(unsigned long long)d.pages_in);
	}
	close(fd);
	ZSTD_freeDCtx(d.zd);
	free(d.scratch);
	free(d.buf);
	for (unsigned i = 0; i < GUEST_MAX_REGIONS; i++)
		free(d.written[i]);
	return ret;
}
