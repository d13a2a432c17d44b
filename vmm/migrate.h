/*
 * Live migration (doc/migration.md): pre-copy of guest RAM over a socket
 * with KVM's dirty log, then a brief pause for the last pages and the
 * vCPU and device state.
 *
 * Source: migrate_start() returns at once; the migration runs on a thread
 * of its own (never a vCPU, the I/O thread or the caller's).  It pauses
 * the VM only for the final phase; after success the VM stays paused
 * (QEMU's "postmigrate"), after a failure or a cancel it runs on.
 * One migration at a time per process.
 *
 * Destination: migrate_incoming() runs on the main thread before any vCPU
 * starts: it receives and verifies everything, applies it, and returns 0
 * only when the VM may run.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

enum migrate_status {
	MIGRATE_NONE, MIGRATE_SETUP, MIGRATE_ACTIVE, MIGRATE_DEVICE,
	MIGRATE_COMPLETED, MIGRATE_FAILED, MIGRATE_CANCELLING, MIGRATE_CANCELLED,
};

struct migrate_params {
	uint64_t downtime_limit_ms;   /* QEMU's downtime-limit (default 300) */
	uint64_t max_bandwidth;       /* bytes/s, 0 = unlimited */
	bool zstd;                    /* compress pages (multifd-compression "zstd") */
	bool verify;                  /* x-verify: page checksums compared at the end */
	unsigned max_rounds;          /* x-max-rounds: dirty rounds before stopping anyway */
	bool kvm_dirty_log;           /* x-dirty-tracking "kvm"; else "hash" (vmm/dirty_hash.h) */
};

struct migrate_info {
	enum migrate_status status;
	uint64_t transferred;         /* bytes on the wire */
	uint64_t total;               /* guest RAM bytes */
	uint64_t remaining;           /* dirty bytes still to send */
	uint64_t duplicate;           /* zero pages sent as markers */
	uint64_t normal;              /* pages sent with data */
	uint64_t dirty_pages_rate;    /* pages/s in the last round */
	uint64_t dirty_sync_count;    /* dirty log syncs (rounds) */
	double mbps;
	uint64_t total_time_ms, setup_time_ms;
	uint64_t expected_downtime_ms, downtime_ms;
	bool converged;               /* false: the round limit ended pre-copy */
	char error[256];
};

/* Events: a status change, the VM paused or resumed by the migration. */
enum migrate_event { MIGRATE_EV_STATUS, MIGRATE_EV_STOP, MIGRATE_EV_RESUME };
typedef void (*migrate_notify_fn)(enum migrate_event ev, enum migrate_status st);

const char *migrate_status_name(enum migrate_status st);
void migrate_params_get(struct migrate_params *p);
void migrate_params_set(const struct migrate_params *p);

/* -EBUSY while one runs; @notify is called on the migration thread. */
int migrate_start(struct vm *vm, const char *uri, migrate_notify_fn notify,
		  char *err, size_t errlen);
/* Ask the running migration to stop; the VM runs on.  No-op if none. */
void migrate_cancel(void);
void migrate_query(struct migrate_info *info);
/* The source VM was handed over and must not run again. */
bool migrate_handed_over(void);

/* Destination: 0 when the VM may start; else -errno with @err set. */
int migrate_incoming(struct vm *vm, const char *uri, char *err, size_t errlen);
