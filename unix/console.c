/*
 * The host terminal.  One reader thread polls stdin and a stop pipe, runs
 * each byte through the escape parser and sends what is left to the guest
 * as struct msg_console on the console bus.  The terminal goes raw (no
 * echo, no line editing, no signals from Ctrl-C: they belong to the guest)
 * and comes back on every way out: console_stop(), exit(), and the fatal
 * signals nobody else handles.
 *
 * State here is process-wide on purpose: there is one stdin.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include "bus/message.h"
#include "unix/console.h"
#include "vmm/vm.h"

const char console_help_text[] =
	"\n"
	"C-a h    print this help\n"
	"C-a x    exit the VMM\n"
	"C-a C-a  send C-a to the guest\n";

static struct termios saved_termios;
static atomic_bool raw_active;
static bool restore_hooks_installed;

static struct {
	struct vm *vm;
	pthread_t thread;
	bool running;
	int stop_pipe[2];
} reader = { .stop_pipe = { -1, -1 } };

enum console_action console_escape_feed(struct console_escape *esc, uint8_t byte)
{
	if (!esc->pending) {
		if (byte != CONSOLE_ESCAPE_CHAR)
			return CONSOLE_SEND;
		esc->pending = true;
		return CONSOLE_DROP;
	}
	esc->pending = false;
	switch (byte) {
	case 'x':
		return CONSOLE_QUIT;
	case 'h':
	case '?':
		return CONSOLE_HELP;
	case CONSOLE_ESCAPE_CHAR:
		return CONSOLE_SEND;
	default:
		return CONSOLE_DROP;   /* as QEMU: unknown escapes vanish */
	}
}

void console_write(const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(STDOUT_FILENO, buf, len);

		if (n > 0) {
			buf += n;
			len -= n;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = { .fd = STDOUT_FILENO, .events = POLLOUT };

			poll(&p, 1, -1);
		} else if (n < 0 && errno != EINTR) {
			return;   /* stdout is gone; the guest keeps running */
		}
	}
}

/* Only tcsetattr and an atomic: safe in a signal handler. */
void console_restore(void)
{
	if (atomic_exchange(&raw_active, false))
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
}

/* SA_RESETHAND put the default action back: re-raise to die by it. */
static void console_fatal_signal(int sig)
{
	console_restore();
	raise(sig);
}

static void install_restore_hooks(void)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGABRT };
	struct sigaction sa = { .sa_handler = console_fatal_signal,
				.sa_flags = SA_RESETHAND };

	if (restore_hooks_installed)
		return;
	restore_hooks_installed = true;
	atexit(console_restore);
	sigemptyset(&sa.sa_mask);
	for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction old;

		/* Leave handlers the frontend (or a sanitizer) installed alone. */
		if (!sigaction(sigs[i], NULL, &old) && old.sa_handler == SIG_DFL &&
		    !(old.sa_flags & SA_SIGINFO))
			sigaction(sigs[i], &sa, NULL);
	}
}

/* As QEMU's stdio: raw input, but output keeps NL -> CR NL. */
static int terminal_make_raw(void)
{
	struct termios raw;

	if (tcgetattr(STDIN_FILENO, &saved_termios))
		return -errno;
	raw = saved_termios;
	raw.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	raw.c_oflag |= OPOST;
	raw.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	raw.c_cflag &= ~(CSIZE | PARENB);
	raw.c_cflag |= CS8;
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	install_restore_hooks();
	atomic_store(&raw_active, true);
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw)) {
		atomic_store(&raw_active, false);
		return -errno;
	}
	return 0;
}

static void send_bytes(struct vm *vm, struct msg_console *msg)
{
	if (msg->len)
		bus_send_async(vm->bus.console, msg, BUS_FIFO);
	msg->len = 0;
}

/* Feed one read's worth of input; false once the user asked to quit. */
static bool forward_input(struct vm *vm, struct console_escape *esc,
			  const uint8_t *in, size_t len)
{
	struct msg_console msg = { 0 };

	for (size_t i = 0; i < len; i++) {
		switch (console_escape_feed(esc, in[i])) {
		case CONSOLE_SEND:
			msg.bytes[msg.len++] = in[i];
			if (msg.len == sizeof(msg.bytes))
				send_bytes(vm, &msg);
			break;
		case CONSOLE_QUIT:
			send_bytes(vm, &msg);
			vm_request_exit(vm, 0);
			return false;
		case CONSOLE_HELP:
			console_write((const uint8_t *)console_help_text,
				      sizeof(console_help_text) - 1);
			break;
		case CONSOLE_DROP:
			break;
		}
	}
	send_bytes(vm, &msg);
	return true;
}

/* Wait until stdin has something (data, EOF, error); false: stop. */
static bool wait_input(int stop_fd)
{
	struct pollfd p[2] = {
		{ .fd = STDIN_FILENO, .events = POLLIN },
		{ .fd = stop_fd, .events = POLLIN },
	};

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		if (p[1].revents || (p[0].revents & POLLNVAL))
			return false;
		if (p[0].revents)
			return true;
	}
}

static void *console_reader(void *arg)
{
	struct vm *vm = arg;
	struct console_escape esc = { 0 };
	uint8_t in[256];

	pthread_setname_np(pthread_self(), "vmm-console");
	bus_thread_enter();
	while (wait_input(reader.stop_pipe[0])) {
		ssize_t n = read(STDIN_FILENO, in, sizeof(in));

		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;   /* EOF or error: the guest runs on without input */
		if (!forward_input(vm, &esc, in, n))
			break;
	}
	bus_thread_exit();
	return NULL;
}

int console_start(struct vm *vm)
{
	int err;

	if (reader.running)
		return -EBUSY;
	if (isatty(STDIN_FILENO) && (err = terminal_make_raw()))
		return err;
	if (pipe2(reader.stop_pipe, O_CLOEXEC)) {
		err = -errno;
		goto fail;
	}
	reader.vm = vm;
	err = -pthread_create(&reader.thread, NULL, console_reader, vm);
	if (err)
		goto fail_pipe;
	reader.running = true;
	return 0;
fail_pipe:
	close(reader.stop_pipe[0]);
	close(reader.stop_pipe[1]);
	reader.stop_pipe[0] = reader.stop_pipe[1] = -1;
fail:
	console_restore();
	return err;
}

void console_stop(void)
{
	if (reader.running) {
		/* A full pipe wakes the poll as well: the result does not matter. */
		ssize_t n = write(reader.stop_pipe[1], "", 1);

		(void)n;
		pthread_join(reader.thread, NULL);
		close(reader.stop_pipe[0]);
		close(reader.stop_pipe[1]);
		reader.stop_pipe[0] = reader.stop_pipe[1] = -1;
		reader.running = false;
	}
	console_restore();
}
