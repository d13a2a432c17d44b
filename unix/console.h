/*
 * The host terminal: guest serial output to stdout, stdin to the guest
 * through the console bus, and QEMU's Ctrl-A escapes (x quits, h helps,
 * Ctrl-A Ctrl-A sends a Ctrl-A).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

/*
 * Put a terminal stdin in raw mode (restored at exit and on SIGTERM, SIGINT,
 * SIGHUP, SIGQUIT, SIGABRT where nobody else handles them) and start the
 * thread that forwards stdin to @vm's console bus.  Input that is not a
 * terminal is forwarded too, until EOF.  0 or a negative errno.
 */
int console_start(struct vm *vm);
/* Stop the reader and restore the terminal; call before the buses go. */
void console_stop(void);
/* Restore the terminal now.  Idempotent and async-signal-safe. */
void console_restore(void);
/* Write all of @buf to stdout (retrying short writes and EINTR). */
void console_write(const uint8_t *buf, size_t len);

/* The escape parser, a state machine fed one input byte at a time. */
#define CONSOLE_ESCAPE_CHAR 0x01   /* Ctrl-A */

enum console_action {
	CONSOLE_DROP,   /* swallowed: an escape prefix or an unknown command */
	CONSOLE_SEND,   /* pass the input byte to the guest */
	CONSOLE_QUIT,   /* Ctrl-A x */
	CONSOLE_HELP,   /* Ctrl-A h */
};

struct console_escape {
	bool pending;   /* the last byte was an unescaped Ctrl-A */
};

enum console_action console_escape_feed(struct console_escape *esc, uint8_t byte);
/* The help text Ctrl-A h prints (raw mode keeps output processing: NL). */
extern const char console_help_text[];
