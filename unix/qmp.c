/*
 * QMP, the protocol layer and the socket server.  See unix/qmp.h.
 *
 * Follows QEMU's docs/interop/qmp-spec.rst (greeting, capabilities
 * negotiation, {"execute", "arguments", "id"} requests, {"return"} and
 * {"error": {"class", "desc"}} replies, events with a timestamp) and the
 * error texts of its dispatcher, so that clients which match on them keep
 * working.  JSON itself is parsed and printed by jansson; this file only
 * finds where one value ends in the byte stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "bus/bus.h"
#include "unix/qmp.h"

static const char *const error_class_names[] = {
	[QMP_ERR_GENERIC] = "GenericError",
	[QMP_ERR_COMMAND_NOT_FOUND] = "CommandNotFound",
	[QMP_ERR_DEVICE_NOT_FOUND] = "DeviceNotFound",
};

void qmp_error_set(struct qmp_error *err, enum qmp_error_class cls, const char *fmt, ...)
{
	va_list ap;

	err->cls = cls;
	va_start(ap, fmt);
	vsnprintf(err->desc, sizeof(err->desc), fmt, ap);
	va_end(ap);
}

json_t *qmp_error_reply(const struct qmp_error *err)
{
	return json_pack("{s:{s:s,s:s}}", "error", "class", error_class_names[err->cls],
			 "desc", err->desc);
}

/* ---- Framing ---- */

enum scan_state {
	SCAN_IDLE,    /* between values: whitespace is skipped */
	SCAN_VALUE,   /* inside an object or array */
	SCAN_TOKEN,   /* anything else: runs to the end of the line */
};

struct qmp_session {
	const struct qmp_command *cmds;
	size_t ncmds;
	void *ctx;
	qmp_emit_fn emit;
	void *emit_ctx;
	bool negotiated;

	enum scan_state state;
	unsigned depth;
	bool in_string, escape;
	size_t len;
	char buf[QMP_MAX_INPUT];
};

struct qmp_session *qmp_session_new(const struct qmp_command *cmds, size_t ncmds, void *ctx,
				    qmp_emit_fn emit, void *emit_ctx)
{
	struct qmp_session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cmds = cmds;
	s->ncmds = ncmds;
	s->ctx = ctx;
	s->emit = emit;
	s->emit_ctx = emit_ctx;
	return s;
}

void qmp_session_free(struct qmp_session *s)
{
	free(s);
}

bool qmp_session_negotiated(const struct qmp_session *s)
{
	return s->negotiated;
}

/* One line of compact JSON and "\n"; consumes @obj.  NULL when out of memory. */
static char *line_of(json_t *obj)
{
	char *text = obj ? json_dumps(obj, JSON_ENSURE_ASCII) : NULL;
	char *line = NULL;

	json_decref(obj);
	if (text && asprintf(&line, "%s\n", text) < 0)
		line = NULL;
	free(text);
	return line;
}

static void emit_json(struct qmp_session *s, json_t *reply)
{
	char *line = line_of(reply);

	if (line)
		s->emit(s->emit_ctx, line, strlen(line));
	free(line);
}

static void emit_error(struct qmp_session *s, enum qmp_error_class cls, const char *desc)
{
	struct qmp_error err;

	qmp_error_set(&err, cls, "%s", desc);
	emit_json(s, qmp_error_reply(&err));
}

/* One complete value is in the buffer: parse it and answer. */
static void finish_value(struct qmp_session *s)
{
	json_error_t jerr;
	json_t *req = json_loadb(s->buf, s->len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);

	s->state = SCAN_IDLE;
	s->len = 0;
	if (!req) {
		char desc[sizeof(((struct qmp_error *)0)->desc)];

		snprintf(desc, sizeof(desc), "JSON parse error, %s", jerr.text);
		emit_error(s, QMP_ERR_GENERIC, desc);
		return;
	}
	emit_json(s, qmp_session_dispatch(s, req));
	json_decref(req);
}

/* Track strings and nesting; true when the value just closed. */
static bool scan_byte(struct qmp_session *s, char c)
{
	if (s->in_string) {
		if (s->escape)
			s->escape = false;
		else if (c == '\\')
			s->escape = true;
		else if (c == '"')
			s->in_string = false;
		return false;
	}
	switch (c) {
	case '"':
		s->in_string = true;
		return false;
	case '{':
	case '[':
		s->depth++;
		return false;
	case '}':
	case ']':
		return --s->depth == 0;
	default:
		return false;
	}
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int qmp_session_input(struct qmp_session *s, const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];

		if (s->state == SCAN_IDLE) {
			if (is_space(c))
				continue;
			s->state = c == '{' || c == '[' ? SCAN_VALUE : SCAN_TOKEN;
			s->depth = 0;
			s->in_string = s->escape = false;
			s->len = 0;
		}
		if (s->state == SCAN_TOKEN && c == '\n') {
			finish_value(s);
			continue;
		}
		if (s->len == QMP_MAX_INPUT) {
			char desc[96];

			snprintf(desc, sizeof(desc), "QMP input exceeds %u bytes; closing the connection",
				 QMP_MAX_INPUT);
			emit_error(s, QMP_ERR_GENERIC, desc);
			s->state = SCAN_IDLE;
			s->len = 0;
			return -1;
		}
		s->buf[s->len++] = c;
		if (s->state == SCAN_VALUE && scan_byte(s, c))
			finish_value(s);
	}
	return 0;
}

/* ---- Dispatch ---- */

static int cmd_capabilities(void *ctx, json_t *args, json_t **ret, struct qmp_error *err);
static int cmd_query_commands(void *ctx, json_t *args, json_t **ret, struct qmp_error *err);
static int cmd_query_version(void *ctx, json_t *args, json_t **ret, struct qmp_error *err);

static const struct qmp_arg capabilities_args[] = {
	{ "enable", QMP_ARG_ARRAY, true },
	{ NULL },
};

/* Commands of the protocol itself: their context is the session. */
static const struct qmp_command builtin_cmds[] = {
	{ "qmp_capabilities", cmd_capabilities, capabilities_args },
	{ "query-commands", cmd_query_commands, NULL },
	{ "query-version", cmd_query_version, NULL },
};
#define NBUILTIN (sizeof(builtin_cmds) / sizeof(builtin_cmds[0]))

static json_t *version_object(void)
{
	return json_pack("{s:{s:i,s:i,s:i},s:s}", "qemu", "micro", 0, "minor", 0, "major", 0,
			 "package", "vmm");
}

static int cmd_capabilities(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	struct qmp_session *s = ctx;
	json_t *enable = json_object_get(args, "enable");
	size_t i;
	json_t *cap;

	(void)ret;
	/* We offer no capabilities (no "oob"): any request for one fails. */
	json_array_foreach(enable, i, cap) {
		if (!json_is_string(cap)) {
			qmp_error_set(err, QMP_ERR_GENERIC,
				      "Invalid parameter type for 'enable[%zu]', expected: string", i);
			return -1;
		}
		qmp_error_set(err, QMP_ERR_GENERIC, "Capability '%.64s' not available",
			      json_string_value(cap));
		return -1;
	}
	s->negotiated = true;
	return 0;
}

static int cmd_query_commands(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	struct qmp_session *s = ctx;
	json_t *list = json_array();

	(void)args;
	(void)err;
	for (size_t i = 0; i < NBUILTIN; i++)
		json_array_append_new(list, json_pack("{s:s}", "name", builtin_cmds[i].name));
	for (size_t i = 0; i < s->ncmds; i++)
		json_array_append_new(list, json_pack("{s:s}", "name", s->cmds[i].name));
	*ret = list;
	return 0;
}

static int cmd_query_version(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	(void)ctx;
	(void)args;
	(void)err;
	*ret = version_object();
	return 0;
}

static const char *const arg_type_names[] = {
	[QMP_ARG_INT] = "integer", [QMP_ARG_STR] = "string", [QMP_ARG_BOOL] = "boolean",
	[QMP_ARG_ARRAY] = "array", [QMP_ARG_ANY] = "any",
};

static bool arg_type_ok(enum qmp_arg_type type, const json_t *v)
{
	switch (type) {
	case QMP_ARG_INT: return json_is_integer(v);
	case QMP_ARG_STR: return json_is_string(v);
	case QMP_ARG_BOOL: return json_is_boolean(v);
	case QMP_ARG_ARRAY: return json_is_array(v);
	case QMP_ARG_ANY: return true;
	}
	return false;
}

static const struct qmp_arg *find_arg(const struct qmp_arg *args, const char *name)
{
	for (; args && args->name; args++)
		if (!strcmp(args->name, name))
			return args;
	return NULL;
}

/* QEMU's order: declared parameters first (missing, type), then extras. */
static int check_args(const struct qmp_command *cmd, json_t *args, struct qmp_error *err)
{
	const char *key;
	json_t *v;

	for (const struct qmp_arg *a = cmd->args; a && a->name; a++) {
		v = json_object_get(args, a->name);
		if (!v && !a->optional) {
			qmp_error_set(err, QMP_ERR_GENERIC, "Parameter '%s' is missing", a->name);
			return -1;
		}
		if (v && !arg_type_ok(a->type, v)) {
			qmp_error_set(err, QMP_ERR_GENERIC,
				      "Invalid parameter type for '%s', expected: %s", a->name,
				      arg_type_names[a->type]);
			return -1;
		}
	}
	json_object_foreach(args, key, v) {
		if (!find_arg(cmd->args, key)) {
			qmp_error_set(err, QMP_ERR_GENERIC, "Parameter '%.64s' is unexpected", key);
			return -1;
		}
	}
	return 0;
}

static const struct qmp_command *find_cmd(const struct qmp_command *cmds, size_t n,
					  const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

/* The members of a request, checked as QEMU's qmp_dispatch_check_obj does. */
static int parse_request(json_t *req, const char **name, json_t **args, struct qmp_error *err)
{
	const char *key;
	json_t *v;

	*name = NULL;
	*args = NULL;
	if (!json_is_object(req)) {
		qmp_error_set(err, QMP_ERR_GENERIC, "QMP input must be a JSON object");
		return -1;
	}
	json_object_foreach(req, key, v) {
		if (!strcmp(key, "execute")) {
			if (!json_is_string(v)) {
				qmp_error_set(err, QMP_ERR_GENERIC,
					      "QMP input member 'execute' must be a string");
				return -1;
			}
			*name = json_string_value(v);
		} else if (!strcmp(key, "arguments")) {
			if (!json_is_object(v)) {
				qmp_error_set(err, QMP_ERR_GENERIC,
					      "QMP input member 'arguments' must be an object");
				return -1;
			}
			*args = v;
		} else if (strcmp(key, "id")) {
			qmp_error_set(err, QMP_ERR_GENERIC, "QMP input member '%.64s' is unexpected",
				      key);
			return -1;
		}
	}
	if (!*name) {
		qmp_error_set(err, QMP_ERR_GENERIC, "QMP input lacks member 'execute'");
		return -1;
	}
	return 0;
}

static int run_request(struct qmp_session *s, json_t *req, json_t **ret, struct qmp_error *err)
{
	const struct qmp_command *cmd;
	const char *name;
	json_t *args;
	void *ctx = s;
	int rc;

	if (parse_request(req, &name, &args, err) < 0)
		return -1;
	if (!s->negotiated && strcmp(name, "qmp_capabilities")) {
		qmp_error_set(err, QMP_ERR_COMMAND_NOT_FOUND,
			      "Expecting capabilities negotiation with 'qmp_capabilities'");
		return -1;
	}
	if (s->negotiated && !strcmp(name, "qmp_capabilities")) {
		qmp_error_set(err, QMP_ERR_COMMAND_NOT_FOUND,
			      "Capabilities negotiation is already complete, command ignored");
		return -1;
	}
	cmd = find_cmd(builtin_cmds, NBUILTIN, name);
	if (!cmd) {
		cmd = find_cmd(s->cmds, s->ncmds, name);
		ctx = s->ctx;
	}
	if (!cmd) {
		qmp_error_set(err, QMP_ERR_COMMAND_NOT_FOUND, "The command %.64s has not been found",
			      name);
		return -1;
	}
	args = args ? json_incref(args) : json_object();
	rc = check_args(cmd, args, err);
	if (rc == 0) {
		rc = cmd->fn(ctx, args, ret, err) < 0 ? -1 : 0;
		if (rc < 0 && *ret) {
			json_decref(*ret);
			*ret = NULL;
		}
	}
	json_decref(args);
	return rc;
}

json_t *qmp_session_dispatch(struct qmp_session *s, json_t *req)
{
	struct qmp_error err = { QMP_ERR_GENERIC, "" };
	json_t *ret = NULL, *reply;
	json_t *id = json_is_object(req) ? json_object_get(req, "id") : NULL;

	if (run_request(s, req, &ret, &err) < 0)
		reply = qmp_error_reply(&err);
	else
		reply = json_pack("{s:o}", "return", ret ? ret : json_object());
	if (reply && id)
		json_object_set(reply, "id", id);
	return reply;
}

/* ---- Lines the server sends by itself ---- */

char *qmp_greeting_line(void)
{
	return line_of(json_pack("{s:{s:o,s:[]}}", "QMP", "version", version_object(),
				 "capabilities"));
}

char *qmp_event_line(const char *name, json_t *data)
{
	struct timespec now;
	json_t *ev;

	clock_gettime(CLOCK_REALTIME, &now);
	ev = json_pack("{s:{s:I,s:I},s:s}", "timestamp", "seconds", (json_int_t)now.tv_sec,
		       "microseconds", (json_int_t)(now.tv_nsec / 1000), "event", name);
	if (ev && data)
		json_object_set(ev, "data", data);
	json_decref(data);
	return line_of(ev);
}

/* ---- The server ---- */

struct qmp_client {
	int fd;
	struct qmp_session *session;
	char *out;
	size_t out_len, out_cap;
	bool dead;            /* close at the next chance */
};

struct queued_event {
	struct queued_event *next;
	char *line;
};

struct qmp_server {
	int listen_fd, wake_fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const struct qmp_command *cmds;
	size_t ncmds;
	void *ctx;
	pthread_t thread;
	bool running;                  /* @thread was started */
	struct qmp_client *client[QMP_MAX_CLIENTS];   /* server thread only */
	_Atomic unsigned nclients;

	pthread_mutex_t lock;          /* guards the two below */
	struct queued_event *events, **events_tail;
	bool stopping;
};

static void client_queue(struct qmp_client *c, const char *line, size_t len)
{
	if (c->dead)
		return;
	if (c->out_len + len > QMP_MAX_OUTPUT) {
		c->dead = true;        /* it stopped reading: drop it, not the VMM's memory */
		return;
	}
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *p;

		while (cap < c->out_len + len)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p) {
			c->dead = true;
			return;
		}
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, line, len);
	c->out_len += len;
}

static void client_emit(void *ctx, const char *line, size_t len)
{
	client_queue(ctx, line, len);
}

static void client_flush(struct qmp_client *c)
{
	while (c->out_len && !c->dead) {
		ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			memmove(c->out, c->out + n, c->out_len - (size_t)n);
			c->out_len -= (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				c->dead = true;   /* EPIPE: the client went away mid-reply */
			return;
		}
	}
}

static void client_close(struct qmp_server *srv, unsigned slot)
{
	struct qmp_client *c = srv->client[slot];

	close(c->fd);
	qmp_session_free(c->session);
	free(c->out);
	free(c);
	srv->client[slot] = NULL;
	atomic_fetch_sub(&srv->nclients, 1);
}

static void refuse(int fd)
{
	static const char busy[] = "{\"error\": {\"class\": \"GenericError\", \"desc\": "
				   "\"Too many QMP clients\"}}\n";

	/* Best effort: the connection is closed either way. */
	(void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static void client_read(struct qmp_client *c);

/*
 * Close the clients that have hung up, without waiting: run when every
 * slot is taken, so that a client that went away before a new one came
 * never makes the server refuse it.
 */
static void reap_closed(struct qmp_server *srv)
{
	for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++) {
		struct qmp_client *c = srv->client[i];
		struct pollfd p = { .fd = c ? c->fd : -1, .events = POLLIN };

		if (c && poll(&p, 1, 0) > 0)
			client_read(c);
		if (c && c->dead)
			client_close(srv, i);
	}
}

static unsigned free_slot(struct qmp_server *srv)
{
	unsigned slot;

	for (slot = 0; slot < QMP_MAX_CLIENTS && srv->client[slot]; slot++)
		;
	return slot;
}

static void accept_one(struct qmp_server *srv, int fd)
{
	struct qmp_client *c;
	char *greeting;
	unsigned slot = free_slot(srv);

	if (slot == QMP_MAX_CLIENTS) {
		reap_closed(srv);
		slot = free_slot(srv);
	}
	c = slot < QMP_MAX_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
	if (c)
		c->session = qmp_session_new(srv->cmds, srv->ncmds, srv->ctx, client_emit, c);
	greeting = c && c->session ? qmp_greeting_line() : NULL;
	if (!greeting) {
		if (c)
			qmp_session_free(c->session);
		free(c);
		refuse(fd);
		return;
	}
	c->fd = fd;
	srv->client[slot] = c;
	atomic_fetch_add(&srv->nclients, 1);
	client_queue(c, greeting, strlen(greeting));
	free(greeting);
	client_flush(c);
	if (c->dead)
		client_close(srv, slot);   /* gone before its greeting */
}

static void accept_clients(struct qmp_server *srv)
{
	for (;;) {
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			/* Out of descriptors: the socket stays readable, so do not spin on it. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				usleep(10000);
			return;
		}
		accept_one(srv, fd);
	}
}

/*
 * Read what is there, up to the end of the stream: a client that sent its
 * last request and closed is gone after this pass, before the server
 * accepts anyone new.  A request is at most QMP_MAX_INPUT, so the reads
 * per pass are bounded too.
 */
static void client_read(struct qmp_client *c)
{
	char buf[16384];

	for (unsigned i = 0; i <= QMP_MAX_INPUT / sizeof(buf) + 1 && !c->dead; i++) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				c->dead = true;
			break;
		}
		/* End of input, or a request over the limit: answer what came, then close. */
		if (n == 0 || qmp_session_input(c->session, buf, (size_t)n) < 0) {
			client_flush(c);
			c->dead = true;
			break;
		}
		client_flush(c);
	}
}

/* Take the queued events; true if the server is to stop. */
static bool take_events(struct qmp_server *srv, struct queued_event **list)
{
	bool stop;

	pthread_mutex_lock(&srv->lock);
	*list = srv->events;
	srv->events = NULL;
	srv->events_tail = &srv->events;
	stop = srv->stopping;
	pthread_mutex_unlock(&srv->lock);
	return stop;
}

static bool deliver_events(struct qmp_server *srv)
{
	struct queued_event *ev;
	uint64_t count;
	bool stop;

	if (read(srv->wake_fd, &count, sizeof(count)) < 0) {
		/* EAGAIN: a wake-up already consumed; the list is what counts. */
	}
	stop = take_events(srv, &ev);
	while (ev) {
		struct queued_event *next = ev->next;

		for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++) {
			struct qmp_client *c = srv->client[i];

			if (c && qmp_session_negotiated(c->session)) {
				client_queue(c, ev->line, strlen(ev->line));
				client_flush(c);
			}
		}
		free(ev->line);
		free(ev);
		ev = next;
	}
	return stop;
}

static void serve_once(struct qmp_server *srv, bool *stop)
{
	struct pollfd pfd[2 + QMP_MAX_CLIENTS];
	unsigned slot_of[2 + QMP_MAX_CLIENTS];
	unsigned n = 2;

	pfd[0] = (struct pollfd){ .fd = srv->listen_fd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = srv->wake_fd, .events = POLLIN };
	for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++) {
		struct qmp_client *c = srv->client[i];

		if (!c)
			continue;
		pfd[n] = (struct pollfd){ .fd = c->fd,
					  .events = POLLIN | (c->out_len ? POLLOUT : 0) };
		slot_of[n++] = i;
	}
	if (poll(pfd, n, -1) < 0)
		return;
	if (pfd[1].revents & POLLIN)
		*stop = deliver_events(srv);
	for (unsigned k = 2; k < n; k++) {
		struct qmp_client *c = srv->client[slot_of[k]];

		if (pfd[k].revents & POLLOUT)
			client_flush(c);
		if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))
			client_read(c);
		if (c->dead)
			client_close(srv, slot_of[k]);
	}
	if (pfd[0].revents & POLLIN)
		accept_clients(srv);
}

/* At the end: give every client up to a second to take its last lines. */
static void flush_all(struct qmp_server *srv)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd pfd[QMP_MAX_CLIENTS];
		unsigned n = 0;
		long left;

		for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++) {
			struct qmp_client *c = srv->client[i];

			if (c && !c->dead && c->out_len)
				pfd[n++] = (struct pollfd){ .fd = c->fd, .events = POLLOUT };
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = 1000 - ((now.tv_sec - start.tv_sec) * 1000 +
			       (now.tv_nsec - start.tv_nsec) / 1000000);
		if (!n || left <= 0 || poll(pfd, n, (int)left) <= 0)
			return;
		for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++)
			if (srv->client[i])
				client_flush(srv->client[i]);
	}
}

static void *server_thread(void *arg)
{
	struct qmp_server *srv = arg;
	bool stop = false;

	pthread_setname_np(pthread_self(), "qmp");
	bus_thread_enter();   /* commands send on the VM's buses */
	while (!stop)
		serve_once(srv, &stop);
	flush_all(srv);
	for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++)
		if (srv->client[i])
			client_close(srv, i);
	bus_thread_exit();
	return NULL;
}

/* A socket at @path: replace it if nobody listens there; refuse other files. */
static int clear_path(const struct sockaddr_un *addr, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (lstat(addr->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : (snprintf(err, errlen, "%s: %s", addr->sun_path,
						       strerror(errno)), -1);
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket", addr->sun_path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0) {
		close(fd);
		snprintf(err, errlen, "%s is in use by another server", addr->sun_path);
		return -1;
	}
	if (fd >= 0)
		close(fd);
	unlink(addr->sun_path);
	return 0;
}

static int listen_on(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if (!*path || strlen(path) >= sizeof(addr.sun_path)) {
		snprintf(err, errlen, "socket path '%s' is empty or longer than %zu bytes", path,
			 sizeof(addr.sun_path) - 1);
		return -1;
	}
	strcpy(addr.sun_path, path);
	if (clear_path(&addr, err, errlen) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* Linux gives the socket file the mode of the socket's inode: 0600 from the start. */
	if (fchmod(fd, 0600) < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    chmod(path, 0600) < 0 || listen(fd, QMP_MAX_CLIENTS) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

struct qmp_server *qmp_server_listen(const char *path, const struct qmp_command *cmds,
				     size_t ncmds, void *ctx, char *err, size_t errlen)
{
	struct qmp_server *srv = calloc(1, sizeof(*srv));

	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->cmds = cmds;
	srv->ncmds = ncmds;
	srv->ctx = ctx;
	srv->events_tail = &srv->events;
	pthread_mutex_init(&srv->lock, NULL);
	srv->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (srv->wake_fd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	srv->listen_fd = listen_on(path, err, errlen);
	if (srv->listen_fd < 0) {
		close(srv->wake_fd);
		goto fail;
	}
	snprintf(srv->path, sizeof(srv->path), "%s", path);
	return srv;
fail:
	pthread_mutex_destroy(&srv->lock);
	free(srv);
	return NULL;
}

int qmp_server_run(struct qmp_server *srv)
{
	int err = pthread_create(&srv->thread, NULL, server_thread, srv);

	srv->running = !err;
	return -err;
}

struct qmp_server *qmp_server_start(const char *path, const struct qmp_command *cmds,
				    size_t ncmds, void *ctx, char *err, size_t errlen)
{
	struct qmp_server *srv = qmp_server_listen(path, cmds, ncmds, ctx, err, errlen);

	if (srv && qmp_server_run(srv) < 0) {
		snprintf(err, errlen, "cannot start the QMP thread");
		qmp_server_stop(srv);
		return NULL;
	}
	return srv;
}

static void wake(struct qmp_server *srv)
{
	uint64_t one = 1;

	if (write(srv->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, so the thread will wake anyway. */
	}
}

void qmp_server_event(struct qmp_server *srv, const char *name, json_t *data)
{
	struct queued_event *ev = calloc(1, sizeof(*ev));

	if (ev)
		ev->line = qmp_event_line(name, data);
	else
		json_decref(data);
	if (!ev || !ev->line) {
		free(ev);
		return;
	}
	pthread_mutex_lock(&srv->lock);
	*srv->events_tail = ev;
	srv->events_tail = &ev->next;
	pthread_mutex_unlock(&srv->lock);
	wake(srv);
}

unsigned qmp_server_clients(struct qmp_server *srv)
{
	return atomic_load(&srv->nclients);
}

void qmp_server_stop(struct qmp_server *srv)
{
	struct queued_event *ev;

	if (!srv)
		return;
	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	pthread_mutex_unlock(&srv->lock);
	wake(srv);
	if (srv->running)
		pthread_join(srv->thread, NULL);
	close(srv->listen_fd);
	close(srv->wake_fd);
	unlink(srv->path);
	take_events(srv, &ev);
	while (ev) {
		struct queued_event *next = ev->next;

		free(ev->line);
		free(ev);
		ev = next;
	}
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}
