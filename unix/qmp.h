/*
 * The control socket: QEMU's Machine Protocol (QMP) on a Unix socket, so
 * socat, qmp-shell and scripts written for QEMU work unchanged.
 *
 * Two layers:
 *  - the protocol (struct qmp_session): framing of a byte stream into JSON
 *    values, the request checks and error replies QEMU gives, capabilities
 *    negotiation, argument checks against a command's declared arguments,
 *    and dispatch.  No sockets, no VM: the unit tests feed it bytes.
 *  - the server (struct qmp_server): one thread polling a listening socket
 *    (mode 0600) and up to QMP_MAX_CLIENTS connections; commands run on
 *    that thread, never on a vCPU; events from any thread go to every
 *    client that finished negotiation.
 *
 * The VMM's commands and the frontend's calls are in the last section
 * (unix/qmp_commands.c).
 *
 * Framing: each top-level JSON object or array is one request, whether or
 * not a newline ends it (QEMU's Python library sends none); anything else
 * at top level runs to the end of the line and is answered as a parse
 * error.  Replies and events are one line each, ending in "\n".
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#define QMP_MAX_INPUT   (64 * 1024)   /* one request; more closes the connection */
#define QMP_MAX_CLIENTS 16
#define QMP_MAX_OUTPUT  (4u << 20)    /* unread replies and events before a client is dropped */

enum qmp_error_class {
	QMP_ERR_GENERIC,             /* "GenericError" */
	QMP_ERR_COMMAND_NOT_FOUND,   /* "CommandNotFound" */
	QMP_ERR_DEVICE_NOT_FOUND,    /* "DeviceNotFound" */
};

struct qmp_error {
	enum qmp_error_class cls;
	char desc[256];
};

void qmp_error_set(struct qmp_error *err, enum qmp_error_class cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Argument types the dispatcher checks before a command runs. */
enum qmp_arg_type { QMP_ARG_INT, QMP_ARG_STR, QMP_ARG_BOOL, QMP_ARG_ARRAY, QMP_ARG_ANY };

struct qmp_arg {
	const char *name;
	enum qmp_arg_type type;
	bool optional;
};

struct qmp_command {
	const char *name;
	/*
	 * @args is an object whose members passed the checks of @args below.
	 * Return 0 with *ret set to a new reference (NULL answers {}), or -1
	 * with @err set.
	 */
	int (*fn)(void *ctx, json_t *args, json_t **ret, struct qmp_error *err);
	const struct qmp_arg *args;  /* ends with { NULL }; NULL: takes none */
};

/* ---- The protocol ---- */

struct qmp_session;
/* Receives each reply line (with its "\n"). */
typedef void (*qmp_emit_fn)(void *emit_ctx, const char *line, size_t len);

struct qmp_session *qmp_session_new(const struct qmp_command *cmds, size_t ncmds, void *ctx,
				    qmp_emit_fn emit, void *emit_ctx);
void qmp_session_free(struct qmp_session *s);
bool qmp_session_negotiated(const struct qmp_session *s);
/*
 * Feed received bytes: every complete request is answered through the
 * emit function before this returns.  -1 when a request grew past
 * QMP_MAX_INPUT: an error was emitted and the connection must be closed.
 */
int qmp_session_input(struct qmp_session *s, const char *buf, size_t len);
/* Answer one parsed request: the reply (new reference), or NULL for none. */
json_t *qmp_session_dispatch(struct qmp_session *s, json_t *request);

/* The greeting line a server sends first (malloc'd, with "\n"). */
char *qmp_greeting_line(void);
/* An event line with QEMU's timestamp; steals @data (may be NULL). */
char *qmp_event_line(const char *name, json_t *data);
/* {"error": {"class", "desc"}} as QEMU spells it. */
json_t *qmp_error_reply(const struct qmp_error *err);

/* ---- The server ---- */

struct qmp_server;

/*
 * Listen on the Unix socket @path (mode 0600; a stale socket there is
 * replaced, any other file is not) and serve @cmds from a thread of its
 * own.  NULL with @err set on failure.
 */
struct qmp_server *qmp_server_start(const char *path, const struct qmp_command *cmds,
				    size_t ncmds, void *ctx, char *err, size_t errlen);
/*
 * The same in two steps: listen (clients can connect and wait), then
 * serve from the thread (0 or -errno).  qmp_server_stop() takes either.
 */
struct qmp_server *qmp_server_listen(const char *path, const struct qmp_command *cmds,
				     size_t ncmds, void *ctx, char *err, size_t errlen);
int qmp_server_run(struct qmp_server *srv);
/* Deliver what is queued, close every connection, remove the socket. */
void qmp_server_stop(struct qmp_server *srv);
/* Any thread: send event @name to every negotiated client; steals @data. */
void qmp_server_event(struct qmp_server *srv, const char *name, json_t *data);
/* Connections open now (for tests). */
unsigned qmp_server_clients(struct qmp_server *srv);

/* ---- The VMM's control socket (unix/qmp_commands.c) ---- */

struct vm;

/*
 * "--qmp unix:PATH": listen for @vm.  With @wait the VM is paused before
 * its vCPUs start (status "prelaunch") until a client sends "cont".  Call
 * after the exit signals are blocked, before the vCPUs start.  0, or -1
 * with a message printed.
 */
int qmp_start(struct vm *vm, const char *spec, bool wait);
/*
 * Serve commands from now on: call once the vCPU threads were started,
 * since commands read what starting them set up.  No-op without qmp_start.
 */
void qmp_serve(void);
/*
 * The VM has stopped with @status: send GUEST_PANICKED (a crash) and
 * SHUTDOWN with the reason QEMU would give, then close the server.  Call
 * after vm_wait_exit() and before machine_stop(), so that no command
 * races the teardown.  Does nothing without a server.
 */
void qmp_stop(int status);

/* Any thread: events for the core to raise where they happen. */
void qmp_event_guest_panicked(const char *what);
void qmp_event_reset(bool guest, const char *reason);
/* Any thread: send an event to every client (no-op without a server). */
void qmp_event(const char *name, json_t *data);

/* ---- Live migration's commands (unix/qmp_migrate.c) ---- */

void qmp_migrate_init(struct vm *vm);
/* "finish-migrate" / "postmigrate" for query-status, or NULL. */
const char *qmp_migrate_run_status(void);
int qmp_cmd_migrate(void *ctx, json_t *args, json_t **ret, struct qmp_error *err);
int qmp_cmd_migrate_cancel(void *ctx, json_t *args, json_t **ret, struct qmp_error *err);
int qmp_cmd_query_migrate(void *ctx, json_t *args, json_t **ret, struct qmp_error *err);
int qmp_cmd_migrate_set_parameters(void *ctx, json_t *args, json_t **ret,
				   struct qmp_error *err);
int qmp_cmd_query_migrate_parameters(void *ctx, json_t *args, json_t **ret,
				     struct qmp_error *err);
extern const struct qmp_arg qmp_migrate_args[];
extern const struct qmp_arg qmp_migrate_param_args[];
