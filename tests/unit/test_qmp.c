/*
 * The QMP protocol layer and socket server (unix/qmp.c), without KVM:
 * a session fed malformed and well-formed input byte streams, and the
 * server on a real Unix socket with a table of test commands.
 *
 * The expected error texts are QEMU's (qapi/qmp-dispatch.c,
 * monitor/qmp.c and the QAPI input visitor): clients match on them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "unix/qmp.h"

/* ---- Test commands ---- */

static int echo_calls;

static int cmd_echo(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	(void)ctx, (void)err;
	echo_calls++;
	*ret = json_deep_copy(args);
	return 0;
}

/* Fails after producing a reply value: the dispatcher must drop it. */
static int cmd_fail(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	(void)ctx, (void)args;
	*ret = json_string("must not leak");
	qmp_error_set(err, QMP_ERR_DEVICE_NOT_FOUND, "Device '%s' not found", "x");
	return -1;
}

static int cmd_nothing(void *ctx, json_t *args, json_t **ret, struct qmp_error *err)
{
	(void)ctx, (void)args, (void)ret, (void)err;
	return 0;
}

static const struct qmp_arg echo_args[] = {
	{ "n", QMP_ARG_INT, true },
	{ "s", QMP_ARG_STR, true },
	{ "b", QMP_ARG_BOOL, true },
	{ "list", QMP_ARG_ARRAY, true },
	{ "any", QMP_ARG_ANY, true },
	{ NULL },
};

static const struct qmp_arg need_args[] = {
	{ "val", QMP_ARG_INT, false },
	{ "filename", QMP_ARG_STR, false },
	{ NULL },
};

static const struct qmp_command test_cmds[] = {
	{ "echo", cmd_echo, echo_args },
	{ "fail", cmd_fail, NULL },
	{ "nothing", cmd_nothing, NULL },
	{ "need", cmd_echo, need_args },
};
#define NCMDS (sizeof(test_cmds) / sizeof(test_cmds[0]))

/* The start of an echo request whose string argument runs on. */
#define ECHO_S "{\"execute\": \"echo\", \"arguments\": {\"s\": \""
#define ECHO_S_LEN (sizeof(ECHO_S) - 1)

/* ---- A session and the lines it emits ---- */

struct sink {
	char *line[64];
	unsigned n;
};

static void sink_emit(void *ctx, const char *line, size_t len)
{
	struct sink *k = ctx;

	assert_true(len > 0 && line[len - 1] == '\n');
	assert_null(memchr(line, '\n', len - 1));   /* one line per reply */
	assert_true(k->n < 64);
	k->line[k->n++] = strndup(line, len);
}

static void sink_clear(struct sink *k)
{
	for (unsigned i = 0; i < k->n; i++)
		free(k->line[i]);
	k->n = 0;
}

struct fix {
	struct sink sink;
	struct qmp_session *s;
};

static int setup_session(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	f->s = qmp_session_new(test_cmds, NCMDS, NULL, sink_emit, &f->sink);
	assert_non_null(f->s);
	*state = f;
	return 0;
}

static int teardown_session(void **state)
{
	struct fix *f = *state;

	sink_clear(&f->sink);
	qmp_session_free(f->s);
	free(f);
	return 0;
}

/* Feed @text; expect exactly @nreplies lines; return the last, parsed. */
static json_t *feed_n(struct fix *f, const char *text, size_t len, unsigned nreplies)
{
	json_t *r = NULL;

	sink_clear(&f->sink);
	assert_int_equal(qmp_session_input(f->s, text, len), 0);
	assert_int_equal(f->sink.n, nreplies);
	if (nreplies) {
		r = json_loads(f->sink.line[nreplies - 1], 0, NULL);
		assert_non_null(r);
	}
	return r;
}

static json_t *feed(struct fix *f, const char *text)
{
	return feed_n(f, text, strlen(text), 1);
}

static void negotiate(struct fix *f)
{
	json_t *r = feed(f, "{\"execute\": \"qmp_capabilities\"}\n");

	assert_true(json_is_object(json_object_get(r, "return")));
	assert_int_equal(json_object_size(json_object_get(r, "return")), 0);
	json_decref(r);
	assert_true(qmp_session_negotiated(f->s));
}

static void check_error(json_t *r, const char *cls, const char *desc)
{
	json_t *e = json_object_get(r, "error");

	assert_non_null(e);
	assert_null(json_object_get(r, "return"));
	assert_string_equal(json_string_value(json_object_get(e, "class")), cls);
	if (desc)
		assert_string_equal(json_string_value(json_object_get(e, "desc")), desc);
	json_decref(r);
}

static void expect_error(struct fix *f, const char *text, const char *cls, const char *desc)
{
	check_error(feed(f, text), cls, desc);
}

/* ---- Protocol ---- */

static void test_greeting(void **state)
{
	char *line = qmp_greeting_line();
	json_t *g, *qmp, *ver;

	(void)state;
	assert_non_null(line);
	assert_int_equal(line[strlen(line) - 1], '\n');
	g = json_loads(line, 0, NULL);
	qmp = json_object_get(g, "QMP");
	ver = json_object_get(json_object_get(qmp, "version"), "qemu");
	assert_true(json_is_integer(json_object_get(ver, "major")));
	assert_true(json_is_integer(json_object_get(ver, "minor")));
	assert_true(json_is_integer(json_object_get(ver, "micro")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(qmp, "version"),
							       "package")), "vmm");
	assert_true(json_is_array(json_object_get(qmp, "capabilities")));
	assert_int_equal(json_array_size(json_object_get(qmp, "capabilities")), 0);
	json_decref(g);
	free(line);
}

static void test_negotiation_required(void **state)
{
	struct fix *f = *state;

	expect_error(f, "{\"execute\": \"echo\"}", "CommandNotFound",
		     "Expecting capabilities negotiation with 'qmp_capabilities'");
	expect_error(f, "{\"execute\": \"query-commands\"}", "CommandNotFound",
		     "Expecting capabilities negotiation with 'qmp_capabilities'");
	assert_false(qmp_session_negotiated(f->s));
	assert_int_equal(echo_calls, 0);
	/* Capabilities we do not offer fail and leave the session in negotiation. */
	expect_error(f, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}}",
		     "GenericError", "Capability 'oob' not available");
	expect_error(f, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": \"oob\"}}",
		     "GenericError", "Invalid parameter type for 'enable', expected: array");
	expect_error(f, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [1]}}",
		     "GenericError", "Invalid parameter type for 'enable[0]', expected: string");
	assert_false(qmp_session_negotiated(f->s));
	negotiate(f);
	expect_error(f, "{\"execute\": \"qmp_capabilities\"}", "CommandNotFound",
		     "Capabilities negotiation is already complete, command ignored");
	assert_true(qmp_session_negotiated(f->s));
}

static void test_malformed_requests(void **state)
{
	struct fix *f = *state;
	json_t *r;

	negotiate(f);
	r = feed(f, "{\"execute\": }\n");
	check_error(r, "GenericError", NULL);
	assert_true(strstr(f->sink.line[0], "JSON parse error") != NULL);
	expect_error(f, "garbage\n", "GenericError", NULL);
	expect_error(f, "]\n", "GenericError", NULL);
	expect_error(f, "42\n", "GenericError", "QMP input must be a JSON object");
	expect_error(f, "\"execute\"\n", "GenericError", "QMP input must be a JSON object");
	expect_error(f, "[{\"execute\": \"echo\"}]", "GenericError",
		     "QMP input must be a JSON object");
	expect_error(f, "{}", "GenericError", "QMP input lacks member 'execute'");
	expect_error(f, "{\"execute\": 1}", "GenericError",
		     "QMP input member 'execute' must be a string");
	expect_error(f, "{\"execute\": null}", "GenericError",
		     "QMP input member 'execute' must be a string");
	expect_error(f, "{\"execute\": \"echo\", \"arguments\": [1]}", "GenericError",
		     "QMP input member 'arguments' must be an object");
	expect_error(f, "{\"execute\": \"echo\", \"arguments\": \"x\"}", "GenericError",
		     "QMP input member 'arguments' must be an object");
	expect_error(f, "{\"execute\": \"echo\", \"extra\": 1}", "GenericError",
		     "QMP input member 'extra' is unexpected");
	expect_error(f, "{\"exec-oob\": \"echo\"}", "GenericError",
		     "QMP input member 'exec-oob' is unexpected");
	expect_error(f, "{\"execute\": \"echo\", \"execute\": \"nothing\"}", "GenericError", NULL);
	expect_error(f, "{\"execute\": \"x-nope\"}", "CommandNotFound",
		     "The command x-nope has not been found");
	expect_error(f, "{\"execute\": \"\"}", "CommandNotFound",
		     "The command  has not been found");
	/* A NUL escape is refused by the parser, not truncated into a valid name. */
	expect_error(f, "{\"execute\": \"echo\\u0000x\"}", "GenericError", NULL);
	assert_int_equal(echo_calls, 0);
}

static void test_argument_checks(void **state)
{
	struct fix *f = *state;
	json_t *r;

	negotiate(f);
	expect_error(f, "{\"execute\": \"echo\", \"arguments\": {\"n\": \"1\"}}", "GenericError",
		     "Invalid parameter type for 'n', expected: integer");
	expect_error(f, "{\"execute\": \"echo\", \"arguments\": {\"n\": 1.5}}", "GenericError",
		     "Invalid parameter type for 'n', expected: integer");
	expect_error(f, "{\"execute\": \"echo\", \"arguments\": {\"s\": 1}}", "GenericError",
		     "Invalid parameter type for 's', expected: string");
	expect_error(f, "{\"execute\": \"echo\", \"arguments\": {\"b\": 0}}", "GenericError",
		     "Invalid parameter type for 'b', expected: boolean");
	expect_error(f, "{\"execute\": \"echo\", \"arguments\": {\"list\": {}}}", "GenericError",
		     "Invalid parameter type for 'list', expected: array");
	expect_error(f, "{\"execute\": \"echo\", \"arguments\": {\"n\": null}}", "GenericError",
		     "Invalid parameter type for 'n', expected: integer");
	expect_error(f, "{\"execute\": \"echo\", \"arguments\": {\"bogus\": 1}}", "GenericError",
		     "Parameter 'bogus' is unexpected");
	expect_error(f, "{\"execute\": \"nothing\", \"arguments\": {\"x\": 1}}", "GenericError",
		     "Parameter 'x' is unexpected");
	expect_error(f, "{\"execute\": \"need\", \"arguments\": {\"val\": 1}}", "GenericError",
		     "Parameter 'filename' is missing");
	expect_error(f, "{\"execute\": \"need\"}", "GenericError", "Parameter 'val' is missing");
	assert_int_equal(echo_calls, 0);

	r = feed(f, "{\"execute\": \"echo\", \"arguments\": {\"n\": -7, \"s\": \"x\", \"b\": true,"
		    " \"list\": [1], \"any\": {\"deep\": [null]}}}");
	assert_int_equal(echo_calls, 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "return"), "n")), -7);
	assert_non_null(json_object_get(json_object_get(json_object_get(r, "return"), "any"),
					 "deep"));
	json_decref(r);
	r = feed(f, "{\"execute\": \"need\", \"arguments\": {\"val\": 1, \"filename\": \"f\"}}");
	assert_non_null(json_object_get(r, "return"));
	json_decref(r);
}

static void test_replies_and_ids(void **state)
{
	struct fix *f = *state;
	json_t *r, *id;

	negotiate(f);
	/* Any JSON value is an id, and comes back unchanged, with errors too. */
	r = feed(f, "{\"id\": {\"a\": [1, \"two\", null]}, \"execute\": \"nothing\"}");
	id = json_loads("{\"a\": [1, \"two\", null]}", 0, NULL);
	assert_true(json_equal(json_object_get(r, "id"), id));
	assert_int_equal(json_object_size(json_object_get(r, "return")), 0);
	json_decref(r);
	r = feed(f, "{\"execute\": \"x-nope\", \"id\": {\"a\": [1, \"two\", null]}}");
	assert_true(json_equal(json_object_get(r, "id"), id));
	json_decref(id);
	check_error(r, "CommandNotFound", NULL);
	r = feed(f, "{\"execute\": \"echo\", \"arguments\": {\"n\": \"x\"}, \"id\": 5}");
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 5);
	check_error(r, "GenericError", NULL);
	/* A parse error has no id to give back. */
	r = feed(f, "{\"execute\": \"nothing\", \"id\": 5,}");
	assert_null(json_object_get(r, "id"));
	check_error(r, "GenericError", NULL);
	/* A failing command's class and text; its half-made reply is dropped. */
	expect_error(f, "{\"execute\": \"fail\"}", "DeviceNotFound", "Device 'x' not found");
	r = feed(f, "{\"execute\": \"query-commands\"}");
	{
		json_t *list = json_object_get(r, "return"), *e;
		size_t i;
		bool saw_echo = false, saw_caps = false;

		json_array_foreach(list, i, e) {
			const char *name = json_string_value(json_object_get(e, "name"));

			saw_echo |= !strcmp(name, "echo");
			saw_caps |= !strcmp(name, "qmp_capabilities");
		}
		assert_true(saw_echo && saw_caps);
		assert_int_equal(json_array_size(list), NCMDS + 3);
	}
	json_decref(r);
	r = feed(f, "{\"execute\": \"query-version\"}");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "return"),
							       "package")), "vmm");
	json_decref(r);
}

static void test_framing(void **state)
{
	struct fix *f = *state;
	static const char two[] = "{\"execute\":\"nothing\",\"id\":1}{\"execute\":\"nothing\",\"id\":2}";
	static const char tricky[] =
		" \r\n\t{\"execute\": \"echo\", \"arguments\": {\"s\": \"}{][\\\"\\\\\"}, \"id\": 3}";
	json_t *r;

	negotiate(f);
	/* Two requests back to back without a newline (qemu.qmp sends none). */
	r = feed_n(f, two, strlen(two), 2);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 2);
	json_decref(r);
	r = json_loads(f->sink.line[0], 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
	json_decref(r);
	/* Brackets, quotes and backslashes inside strings do not end the value. */
	r = feed(f, tricky);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "return"), "s")),
			    "}{][\"\\");
	json_decref(r);
	/* One byte at a time: one reply, after the last byte. */
	sink_clear(&f->sink);
	for (size_t i = 0; i < strlen(tricky); i++) {
		assert_int_equal(f->sink.n, 0);
		assert_int_equal(qmp_session_input(f->s, tricky + i, 1), 0);
	}
	assert_int_equal(f->sink.n, 1);
	/* Garbage runs to its newline; the next request is answered normally. */
	r = feed_n(f, "xx yy {\"execute\": \"nothing\"}\n{\"execute\": \"nothing\", \"id\": 9}",
		   strlen("xx yy {\"execute\": \"nothing\"}\n{\"execute\": \"nothing\", \"id\": 9}"), 2);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 9);
	json_decref(r);
	r = json_loads(f->sink.line[0], 0, NULL);
	check_error(r, "GenericError", NULL);
	/* Mismatched brackets close the value; the parser then refuses it. */
	expect_error(f, "{\"execute\": \"nothing\"]", "GenericError", NULL);
	/* Raw bytes that are not UTF-8 are a parse error, not a crash. */
	r = feed_n(f, "{\"execute\": \"\xff\xfe\"}", strlen("{\"execute\": \"\xff\xfe\"}"), 1);
	check_error(r, "GenericError", NULL);
	/* Nothing but whitespace gets no reply. */
	feed_n(f, "\n\n  \r\n", 6, 0);
}

static void test_input_limit(void **state)
{
	struct fix *f = *state;
	size_t big = QMP_MAX_INPUT + 10;
	char *buf = malloc(big);
	json_t *r;

	negotiate(f);
	/* An unterminated string grows past the limit: error, then close. */
	memset(buf, 'a', big);
	memcpy(buf, "{\"execute\": \"", 13);
	sink_clear(&f->sink);
	assert_int_equal(qmp_session_input(f->s, buf, big), -1);
	assert_int_equal(f->sink.n, 1);
	r = json_loads(f->sink.line[0], 0, NULL);
	check_error(r, "GenericError", "QMP input exceeds 65536 bytes; closing the connection");
	/* Deep nesting the same way. */
	memset(buf, '[', big);
	sink_clear(&f->sink);
	assert_int_equal(qmp_session_input(f->s, buf, big), -1);
	assert_int_equal(f->sink.n, 1);
	/* Just under the limit is fine: a request of exactly QMP_MAX_INPUT bytes. */
	memcpy(buf, ECHO_S, ECHO_S_LEN);
	memset(buf + ECHO_S_LEN, 'b', QMP_MAX_INPUT - ECHO_S_LEN - 3);
	memcpy(buf + QMP_MAX_INPUT - 3, "\"}}", 3);
	r = feed_n(f, buf, QMP_MAX_INPUT, 1);
	assert_int_equal(strlen(json_string_value(json_object_get(json_object_get(r, "return"),
								  "s"))), QMP_MAX_INPUT - ECHO_S_LEN - 3);
	json_decref(r);
	free(buf);
}

static void test_event_line(void **state)
{
	char *line = qmp_event_line("SHUTDOWN", json_pack("{s:b,s:s}", "guest", 1, "reason",
							  "guest-shutdown"));
	json_t *ev = json_loads(line, 0, NULL), *ts;

	(void)state;
	assert_int_equal(line[strlen(line) - 1], '\n');
	assert_string_equal(json_string_value(json_object_get(ev, "event")), "SHUTDOWN");
	ts = json_object_get(ev, "timestamp");
	assert_true(json_integer_value(json_object_get(ts, "seconds")) > 1600000000);
	assert_true(json_integer_value(json_object_get(ts, "microseconds")) < 1000000);
	assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "data"), "reason")),
			    "guest-shutdown");
	json_decref(ev);
	free(line);
	line = qmp_event_line("STOP", NULL);
	ev = json_loads(line, 0, NULL);
	assert_null(json_object_get(ev, "data"));
	json_decref(ev);
	free(line);
}

/* ---- The server on a real socket ---- */

struct srv_fix {
	char dir[64];
	char path[128];
	struct qmp_server *srv;
};

static int setup_server(void **state)
{
	struct srv_fix *f = calloc(1, sizeof(*f));
	char err[256] = "";

	strcpy(f->dir, "/tmp/test_qmp.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/qmp.sock", f->dir);
	f->srv = qmp_server_start(f->path, test_cmds, NCMDS, NULL, err, sizeof(err));
	if (!f->srv)
		fail_msg("qmp_server_start: %s", err);
	*state = f;
	return 0;
}

static int teardown_server(void **state)
{
	struct srv_fix *f = *state;

	qmp_server_stop(f->srv);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static int connect_to(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One line within @ms: malloc'd; NULL on EOF or timeout (*eof tells which). */
static char *read_line(int fd, int ms, bool *eof)
{
	char *buf = malloc(1 << 20);
	size_t len = 0;

	*eof = false;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, ms) <= 0)
			break;
		n = recv(fd, buf + len, 1, 0);   /* a byte at a time: leave the rest queued */
		if (n <= 0) {
			*eof = true;
			break;
		}
		if (buf[len++] == '\n') {
			buf[len] = '\0';
			return buf;
		}
		if (len == (1 << 20) - 1)
			break;
	}
	free(buf);
	return NULL;
}

static json_t *read_json(int fd)
{
	bool eof;
	char *line = read_line(fd, 10000, &eof);
	json_t *j;

	if (!line)
		fail_msg("no line from the server (%s)", eof ? "EOF" : "timeout");
	j = json_loads(line, 0, NULL);
	assert_non_null(j);
	free(line);
	return j;
}

static void send_all(int fd, const char *s)
{
	assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

static json_t *ask_fd(int fd, const char *req)
{
	json_t *r;

	send_all(fd, req);
	for (;;) {
		r = read_json(fd);
		if (!json_object_get(r, "event"))
			return r;
		json_decref(r);
	}
}

static int client(struct srv_fix *f, bool negotiated)
{
	int fd = connect_to(f->path);
	json_t *g;

	assert_true(fd >= 0);
	g = read_json(fd);
	assert_non_null(json_object_get(g, "QMP"));
	json_decref(g);
	if (negotiated) {
		g = ask_fd(fd, "{\"execute\": \"qmp_capabilities\"}\n");
		assert_non_null(json_object_get(g, "return"));
		json_decref(g);
	}
	return fd;
}

static void wait_clients(struct srv_fix *f, unsigned n)
{
	for (int i = 0; i < 1000 && qmp_server_clients(f->srv) != n; i++)
		usleep(10000);
	assert_int_equal(qmp_server_clients(f->srv), n);
}

static bool nothing_to_read(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

static void test_server_socket(void **state)
{
	struct srv_fix *f = *state;
	struct stat st;
	json_t *r;
	int fd;

	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	fd = client(f, false);
	r = ask_fd(fd, "{\"execute\": \"nothing\"}\n");
	check_error(r, "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
	r = ask_fd(fd, "{\"execute\": \"qmp_capabilities\"}");   /* no newline needed */
	assert_non_null(json_object_get(r, "return"));
	json_decref(r);
	r = ask_fd(fd, "{\"execute\": \"echo\", \"arguments\": {\"n\": 3}, \"id\": \"x\"}\r\n");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "return"), "n")), 3);
	assert_string_equal(json_string_value(json_object_get(r, "id")), "x");
	json_decref(r);
	close(fd);
	wait_clients(f, 0);
}

static void test_server_path_rules(void **state)
{
	struct srv_fix *f = *state;
	char err[256] = "", file[96], stale[96];
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct qmp_server *other;
	int fd;

	/* The path of a live server is refused. */
	other = qmp_server_start(f->path, test_cmds, NCMDS, NULL, err, sizeof(err));
	assert_null(other);
	assert_non_null(strstr(err, "in use"));
	/* A regular file is not replaced. */
	snprintf(file, sizeof(file), "%s/file", f->dir);
	fd = open(file, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep", 4), 4);
	close(fd);
	assert_null(qmp_server_start(file, test_cmds, NCMDS, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "not a socket"));
	{
		struct stat st;

		assert_int_equal(stat(file, &st), 0);
		assert_int_equal(st.st_size, 4);
	}
	unlink(file);
	/* A stale socket (nobody listening) is replaced. */
	snprintf(stale, sizeof(stale), "%s/stale", f->dir);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", stale);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);
	other = qmp_server_start(stale, test_cmds, NCMDS, NULL, err, sizeof(err));
	assert_non_null(other);
	fd = connect_to(stale);
	assert_true(fd >= 0);
	close(fd);
	qmp_server_stop(other);
	/* Stopping removes the socket. */
	assert_int_equal(access(stale, F_OK), -1);
	/* Too long a path. */
	{
		char longpath[300];

		memset(longpath, 'x', sizeof(longpath) - 1);
		longpath[0] = '/';
		longpath[sizeof(longpath) - 1] = '\0';
		assert_null(qmp_server_start(longpath, test_cmds, NCMDS, NULL, err, sizeof(err)));
	}
}

static void test_server_many_clients(void **state)
{
	struct srv_fix *f = *state;
	int fd[20];
	unsigned greeted = 0, refused = 0;

	for (int i = 0; i < 20; i++) {
		bool eof;
		char *line;

		fd[i] = connect_to(f->path);
		assert_true(fd[i] >= 0);
		line = read_line(fd[i], 10000, &eof);
		assert_non_null(line);
		if (strstr(line, "\"QMP\"")) {
			greeted++;
		} else {
			check_error(json_loads(line, 0, NULL), "GenericError", "Too many QMP clients");
			free(line);
			line = read_line(fd[i], 10000, &eof);
			assert_null(line);
			assert_true(eof);
			refused++;
		}
		free(line);
	}
	assert_int_equal(greeted, QMP_MAX_CLIENTS);
	assert_int_equal(refused, 20 - QMP_MAX_CLIENTS);
	/* Every accepted one works, all requests in flight at once. */
	for (int i = 0; i < QMP_MAX_CLIENTS; i++)
		send_all(fd[i], "{\"execute\": \"qmp_capabilities\"}{\"execute\": \"nothing\"}");
	for (int i = 0; i < QMP_MAX_CLIENTS; i++)
		for (int k = 0; k < 2; k++) {
			json_t *r = read_json(fd[i]);

			assert_non_null(json_object_get(r, "return"));
			json_decref(r);
		}
	/* Full: one leaves and a new one comes at once; the leaver's slot is reused. */
	for (int round = 0; round < 20; round++) {
		int k = round % QMP_MAX_CLIENTS;

		close(fd[k]);
		fd[k] = client(f, false);
	}
	for (int i = 0; i < 20; i++)
		close(fd[i]);
	/* The slots come back. */
	wait_clients(f, 0);
	for (int i = 0; i < QMP_MAX_CLIENTS; i++)
		fd[i] = client(f, true);
	for (int i = 0; i < QMP_MAX_CLIENTS; i++)
		close(fd[i]);
	wait_clients(f, 0);
}

struct writer {
	int fd;
	size_t len;
};

static void *write_big(void *arg)
{
	struct writer *w = arg;
	char *buf = malloc(w->len);
	size_t done = 0;

	memset(buf, 'a', w->len);
	memcpy(buf, ECHO_S, ECHO_S_LEN);
	while (done < w->len) {
		ssize_t n = send(w->fd, buf + done, w->len - done, MSG_NOSIGNAL);

		if (n <= 0)
			break;   /* the server closed on us: expected */
		done += (size_t)n;
	}
	free(buf);
	return NULL;
}

static void test_server_huge_line(void **state)
{
	struct srv_fix *f = *state;
	struct writer w = { .fd = client(f, true), .len = 1 << 20 };
	pthread_t t;
	json_t *r;
	bool eof;
	char *line;
	int fd;

	pthread_create(&t, NULL, write_big, &w);
	r = read_json(w.fd);
	check_error(r, "GenericError", "QMP input exceeds 65536 bytes; closing the connection");
	line = read_line(w.fd, 10000, &eof);
	assert_null(line);
	assert_true(eof);
	pthread_join(t, NULL);
	close(w.fd);
	wait_clients(f, 0);
	/* The server goes on. */
	fd = client(f, true);
	r = ask_fd(fd, "{\"execute\": \"nothing\"}");
	assert_non_null(json_object_get(r, "return"));
	json_decref(r);
	close(fd);
}

static void test_server_disconnects(void **state)
{
	struct srv_fix *f = *state;
	char *big = malloc(60000);
	json_t *r;
	int fd;

	/* Half a request, then gone. */
	fd = client(f, true);
	send_all(fd, "{\"execute\": \"echo\", \"argum");
	close(fd);
	/* A request with a large reply, and gone before reading it. */
	fd = client(f, true);
	memset(big, 'c', 60000);
	memcpy(big, ECHO_S, ECHO_S_LEN);
	memcpy(big + 60000 - 4, "\"}}\n", 4);
	assert_int_equal(send(fd, big, 60000, MSG_NOSIGNAL), 60000);
	close(fd);
	/* Greeted and gone at once, never read. */
	for (int i = 0; i < 10; i++)
		close(connect_to(f->path));
	/* Half-closed: sends a request, shuts down its side, still gets the reply. */
	fd = client(f, true);
	send_all(fd, "{\"execute\": \"nothing\", \"id\": 77}");
	shutdown(fd, SHUT_WR);
	r = read_json(fd);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 77);
	json_decref(r);
	close(fd);
	wait_clients(f, 0);
	fd = client(f, true);
	r = ask_fd(fd, "{\"execute\": \"nothing\"}");
	assert_non_null(json_object_get(r, "return"));
	json_decref(r);
	close(fd);
	free(big);
}

struct event_thread {
	struct qmp_server *srv;
	int n;
};

static void *send_events(void *arg)
{
	struct event_thread *e = arg;

	for (int i = 0; i < e->n; i++)
		qmp_server_event(e->srv, "TEST", json_pack("{s:i}", "n", i));
	return NULL;
}

static void test_server_events(void **state)
{
	struct srv_fix *f = *state;
	int a = client(f, true), b = client(f, true), quiet = client(f, false);
	struct event_thread e = { f->srv, 200 };
	pthread_t t;

	/* From another thread, in order, to every negotiated client. */
	pthread_create(&t, NULL, send_events, &e);
	for (int i = 0; i < e.n; i++) {
		json_t *ea = read_json(a), *eb = read_json(b);

		assert_string_equal(json_string_value(json_object_get(ea, "event")), "TEST");
		assert_int_equal(json_integer_value(json_object_get(json_object_get(ea, "data"), "n")), i);
		assert_int_equal(json_integer_value(json_object_get(json_object_get(eb, "data"), "n")), i);
		json_decref(ea);
		json_decref(eb);
	}
	pthread_join(t, NULL);
	/* Not to the one still negotiating: it was served in the same passes. */
	assert_true(nothing_to_read(quiet));
	close(a);
	close(b);
	close(quiet);
	wait_clients(f, 0);
}

static void test_server_slow_reader_dropped(void **state)
{
	struct srv_fix *f = *state;
	int slow = client(f, true), fd;
	json_t *data;
	char *pad = malloc(4096);
	json_t *r;

	/* More than QMP_MAX_OUTPUT of events to a client that never reads. */
	memset(pad, 'p', 4095);
	pad[4095] = '\0';
	data = json_pack("{s:s}", "pad", pad);
	for (unsigned i = 0; i < 2 * QMP_MAX_OUTPUT / 4096; i++)
		qmp_server_event(f->srv, "BIG", json_incref(data));
	json_decref(data);
	free(pad);
	wait_clients(f, 0);
	close(slow);
	fd = client(f, true);
	r = ask_fd(fd, "{\"execute\": \"nothing\"}");
	assert_non_null(json_object_get(r, "return"));
	json_decref(r);
	close(fd);
}

static void test_server_stop_flushes(void **state)
{
	struct srv_fix *f = *state;
	int fd = client(f, true);
	json_t *ev;
	bool eof;
	char *line;

	qmp_server_event(f->srv, "SHUTDOWN", json_pack("{s:b,s:s}", "guest", 0, "reason",
						       "host-qmp-quit"));
	qmp_server_stop(f->srv);
	f->srv = NULL;
	ev = read_json(fd);
	assert_string_equal(json_string_value(json_object_get(ev, "event")), "SHUTDOWN");
	json_decref(ev);
	line = read_line(fd, 10000, &eof);
	assert_null(line);
	assert_true(eof);
	assert_int_equal(access(f->path, F_OK), -1);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting),
		cmocka_unit_test(test_event_line),
		cmocka_unit_test_setup_teardown(test_negotiation_required, setup_session,
						teardown_session),
		cmocka_unit_test_setup_teardown(test_malformed_requests, setup_session,
						teardown_session),
		cmocka_unit_test_setup_teardown(test_argument_checks, setup_session,
						teardown_session),
		cmocka_unit_test_setup_teardown(test_replies_and_ids, setup_session,
						teardown_session),
		cmocka_unit_test_setup_teardown(test_framing, setup_session, teardown_session),
		cmocka_unit_test_setup_teardown(test_input_limit, setup_session, teardown_session),
		cmocka_unit_test_setup_teardown(test_server_socket, setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(test_server_path_rules, setup_server,
						teardown_server),
		cmocka_unit_test_setup_teardown(test_server_many_clients, setup_server,
						teardown_server),
		cmocka_unit_test_setup_teardown(test_server_huge_line, setup_server,
						teardown_server),
		cmocka_unit_test_setup_teardown(test_server_disconnects, setup_server,
						teardown_server),
		cmocka_unit_test_setup_teardown(test_server_events, setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(test_server_slow_reader_dropped, setup_server,
						teardown_server),
		cmocka_unit_test_setup_teardown(test_server_stop_flushes, setup_server,
						teardown_server),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
