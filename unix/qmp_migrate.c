/*
 * QMP commands of live migration (vmm/migrate.h), with QEMU's names and
 * reply shapes (qapi/migration.json): migrate, migrate_cancel,
 * query-migrate, migrate-set-parameters, query-migrate-parameters; and
 * the MIGRATION, STOP and RESUME events the migration thread raises.
 *
 * Our parameters beyond QEMU's: "x-verify" (page checksums compared at
 * the end), "x-max-rounds" (dirty rounds before the final phase is
 * forced) and "x-dirty-tracking": "hash" (default) or "kvm" (KVM's dirty
 * log, which misses guest writes on KVM-on-PVM hosts: doc/migration.md).  Compression is QEMU's "multifd-compression": "none" | "zstd".
 */
#include <string.h>
#include "unix/qmp.h"
#include "vmm/migrate.h"

static struct vm *mig_vm;

void qmp_migrate_init(struct vm *vm)
{
	mig_vm = vm;
}

/* On the migration thread. */
static void notify(enum migrate_event ev, enum migrate_status st)
{
	switch (ev) {
	case MIGRATE_EV_STATUS:
		qmp_event("MIGRATION", json_pack("{s:s}", "status", migrate_status_name(st)));
		break;
	case MIGRATE_EV_STOP:
		qmp_event("STOP", NULL);
		break;
	case MIGRATE_EV_RESUME:
		qmp_event("RESUME", NULL);
		break;
	}
}

const char *qmp_migrate_run_status(void)
{
	struct migrate_info i;

	if (migrate_handed_over())
		return "postmigrate";
	migrate_query(&i);
	return i.status == MIGRATE_DEVICE ? "finish-migrate" : NULL;
}

int qmp_cmd_migrate(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	const char *uri = json_string_value(json_object_get(args, "uri"));
	char why[256];

	(void)ctx, (void)ret;
	if (json_is_true(json_object_get(args, "resume"))) {
		qmp_error_set(err, QMP_ERR_GENERIC, "resume is for postcopy, which is not supported");
		return -1;
	}
	if (migrate_start(mig_vm, uri, notify, why, sizeof(why)) < 0) {
		qmp_error_set(err, QMP_ERR_GENERIC, "%s", why);
		return -1;
	}
	return 0;
}

int qmp_cmd_migrate_cancel(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	(void)ctx, (void)args, (void)ret, (void)err;
	migrate_cancel();
	return 0;
}

static json_t *ram_stats(const struct migrate_info *i)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:I}",
			 "transferred", (json_int_t)i->transferred,
			 "remaining", (json_int_t)i->remaining,
			 "total", (json_int_t)i->total,
			 "duplicate", (json_int_t)i->duplicate,
			 "normal", (json_int_t)i->normal,
			 "normal-bytes", (json_int_t)(i->normal * 4096),
			 "dirty-pages-rate", (json_int_t)i->dirty_pages_rate,
			 "mbps", i->mbps,
			 "dirty-sync-count", (json_int_t)i->dirty_sync_count,
			 "page-size", (json_int_t)4096);
}

int qmp_cmd_query_migrate(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	struct migrate_info i;
	json_t *r;

	(void)ctx, (void)args, (void)err;
	migrate_query(&i);
	r = json_object();
	if (i.status == MIGRATE_NONE) {
		*ret = r;   /* QEMU: {} before the first migration */
		return 0;
	}
	json_object_set_new(r, "status", json_string(migrate_status_name(i.status)));
	json_object_set_new(r, "ram", ram_stats(&i));
	json_object_set_new(r, "total-time", json_integer((json_int_t)i.total_time_ms));
	json_object_set_new(r, "setup-time", json_integer((json_int_t)i.setup_time_ms));
	if (i.status == MIGRATE_ACTIVE || i.status == MIGRATE_DEVICE)
		json_object_set_new(r, "expected-downtime",
				    json_integer((json_int_t)i.expected_downtime_ms));
	if (i.status == MIGRATE_COMPLETED) {
		json_object_set_new(r, "downtime", json_integer((json_int_t)i.downtime_ms));
		json_object_set_new(r, "x-converged", json_boolean(i.converged));
	}
	if (i.error[0])
		json_object_set_new(r, "error-desc", json_string(i.error));
	*ret = r;
	return 0;
}

static int int_param(json_t *args, const char *key, json_int_t max, uint64_t *out,
		     struct qmp_error *err)
{
	json_t *v = json_object_get(args, key);

	if (!v)
		return 0;
	if (json_integer_value(v) < 0 || json_integer_value(v) > max) {
		qmp_error_set(err, QMP_ERR_GENERIC, "Parameter '%s' expects a value between 0 "
			      "and %lld", key, (long long)max);
		return -1;
	}
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int qmp_cmd_migrate_set_parameters(void *ctx, json_t *args, json_t **ret,
				   struct qmp_error *err)
{
	struct migrate_params p;
	const char *comp = json_string_value(json_object_get(args, "multifd-compression"));
	const char *track = json_string_value(json_object_get(args, "x-dirty-tracking"));
	json_t *verify = json_object_get(args, "x-verify");
	uint64_t rounds;

	(void)ctx, (void)ret;
	migrate_params_get(&p);
	rounds = p.max_rounds;
	if (int_param(args, "downtime-limit", 2000000, &p.downtime_limit_ms, err) ||
	    int_param(args, "max-bandwidth", INT64_MAX, &p.max_bandwidth, err) ||
	    int_param(args, "x-max-rounds", 100000, &rounds, err))
		return -1;
	if (comp && strcmp(comp, "none") && strcmp(comp, "zstd")) {
		qmp_error_set(err, QMP_ERR_GENERIC, "Parameter 'multifd-compression' does not "
			      "accept value '%s' (none or zstd)", comp);
		return -1;
	}
	if (track && strcmp(track, "hash") && strcmp(track, "kvm")) {
		qmp_error_set(err, QMP_ERR_GENERIC, "Parameter 'x-dirty-tracking' does not "
			      "accept value '%s' (hash or kvm)", track);
		return -1;
	}
	if (track)
		p.kvm_dirty_log = !strcmp(track, "kvm");
	if (comp)
		p.zstd = !strcmp(comp, "zstd");
	if (verify)
		p.verify = json_is_true(verify);
	p.max_rounds = (unsigned)rounds;
	migrate_params_set(&p);
	return 0;
}

int qmp_cmd_query_migrate_parameters(void *ctx, json_t *args, json_t **ret,
				     struct qmp_error *err)
{
	struct migrate_params p;

	(void)ctx, (void)args, (void)err;
	migrate_params_get(&p);
	*ret = json_pack("{s:I,s:I,s:s,s:b,s:I,s:s}",
			 "downtime-limit", (json_int_t)p.downtime_limit_ms,
			 "max-bandwidth", (json_int_t)p.max_bandwidth,
			 "multifd-compression", p.zstd ? "zstd" : "none",
			 "x-verify", p.verify,
			 "x-max-rounds", (json_int_t)p.max_rounds,
			 "x-dirty-tracking", p.kvm_dirty_log ? "kvm" : "hash");
	return 0;
}

const struct qmp_arg qmp_migrate_args[] = {
	{ "uri", QMP_ARG_STR, false },
	{ "detach", QMP_ARG_BOOL, true },
	{ "resume", QMP_ARG_BOOL, true },
	{ NULL },
};

const struct qmp_arg qmp_migrate_param_args[] = {
	{ "downtime-limit", QMP_ARG_INT, true },
	{ "max-bandwidth", QMP_ARG_INT, true },
	{ "multifd-compression", QMP_ARG_STR, true },
	{ "x-verify", QMP_ARG_BOOL, true },
	{ "x-max-rounds", QMP_ARG_INT, true },
	{ "x-dirty-tracking", QMP_ARG_STR, true },
	{ NULL },
};
