/*
 * The 16550A model driven through the VM's port bus as a vCPU drives it,
 * with the IRQ line and the transmit stream captured, plus the console's
 * Ctrl-A escape parser and its reader thread.  Register values are the
 * PC16550D datasheet's, restated here rather than taken from the model.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "tests/unit/pio_access.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include "bus/message.h"
#include "bus/range.h"
#include "devices/uart16550.h"
#include "unix/console.h"
#include "vmm/device.h"
#include "vmm/vm.h"
#include "restore_trip.h"

#define COM1 0x3f8
#define IRQ  4
enum { RBR, IER, IIR, LCR, MCR, LSR, MSR, SCR };
#define FCR IIR
#define THR RBR

struct capture {
	uint8_t out[8192];
	size_t out_len;
	int level[256];          /* each line as the messages left it (low at reset) */
	unsigned irq_msgs;
	unsigned bad_msgs;       /* not a level change, or output overflow */
};

struct fixture {
	struct vm vm;
	struct uart *uart;
	struct capture cap;
};

static struct fixture *f;

static void capture_out(void *ctx, const uint8_t *buf, size_t len)
{
	struct capture *c = ctx;

	if (c->out_len + len > sizeof(c->out)) {
		c->bad_msgs++;
		return;
	}
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
}

static bool capture_irq(void *dev, void *m)
{
	struct capture *c = dev;
	const struct msg_irq *msg = m;

	/* Level semantics: a message must change the line. */
	if ((msg->action != IRQ_ASSERT && msg->action != IRQ_DEASSERT) ||
	    c->level[msg->line] == (msg->action == IRQ_ASSERT))
		c->bad_msgs++;
	c->level[msg->line] = msg->action == IRQ_ASSERT;
	c->irq_msgs++;
	return true;
}

static int setup_mode(void **state, enum io_mode mode)
{
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(vm_init_buses(&f->vm, mode), 0);
	assert_int_equal(bus_attach(f->vm.bus.irq, capture_irq, bus_claim_always, &f->cap), 0);
	f->uart = uart_create(&f->vm, COM1, IRQ);
	assert_non_null(f->uart);
	uart_set_output(f->uart, capture_out, &f->cap);
	*state = f;
	return 0;
}

static int setup_lock(void **state) { return setup_mode(state, IO_MODE_LOCK); }
static int setup_thread(void **state) { return setup_mode(state, IO_MODE_THREAD); }

static int teardown(void **state)
{
	(void)state;
	assert_int_equal(f->cap.bad_msgs, 0);
	uart_destroy(f->uart);
	vm_run_exit_hooks(&f->vm);
	vm_fini_buses(&f->vm);
	free(f);
	f = NULL;
	return 0;
}

static uint32_t in_n(uint16_t port, unsigned size)
{
	return vm_pio_in(&f->vm, port, size);
}

static void out_n(uint16_t port, unsigned size, uint32_t v)
{
	vm_pio_out(&f->vm, port, size, v);
}

static uint8_t inb(unsigned reg) { return in_n(COM1 + reg, 1); }
static void outb(unsigned reg, uint8_t v) { out_n(COM1 + reg, 1, v); }

static void type(const void *bytes, size_t len)
{
	const uint8_t *p = bytes;

	while (len) {
		struct msg_console m = { .len = len < 15 ? len : 15 };

		memcpy(m.bytes, p, m.len);
		assert_true(bus_send(f->vm.bus.console, &m, BUS_FIFO));
		p += m.len;
		len -= m.len;
	}
}

static bool irq_high(void)
{
	assert_int_equal(f->cap.bad_msgs, 0);
	return f->cap.level[IRQ] == 1;
}

static void test_reset_values(void **state)
{
	(void)state;
	assert_int_equal(inb(IER), 0x00);
	assert_int_equal(inb(IIR), 0x01);
	assert_int_equal(inb(LCR), 0x00);
	assert_int_equal(inb(MCR), 0x00);
	assert_int_equal(inb(LSR), 0x60);   /* THRE | TEMT: a boot loop polls this */
	assert_int_equal(inb(MSR), 0xb0);   /* DCD, DSR, CTS of an idle line, no deltas */
	assert_int_equal(inb(SCR), 0x00);
	assert_int_equal(f->cap.irq_msgs, 0);
}

static void test_thr_output(void **state)
{
	(void)state;
	for (const char *s = "hello\n"; *s; s++) {
		outb(THR, *s);
		assert_int_equal(inb(LSR) & 0x60, 0x60);
	}
	assert_int_equal(f->cap.out_len, 6);
	assert_memory_equal(f->cap.out, "hello\n", 6);
	assert_int_equal(f->cap.irq_msgs, 0);   /* IER 0: no interrupt */
}

static void test_dlab_divisor(void **state)
{
	(void)state;
	outb(IER, 0x05);
	outb(LCR, 0x83);                      /* DLAB, 8N1 */
	outb(RBR, 0x01);                      /* DLL: 115200 baud */
	outb(IER, 0x02);                      /* DLM */
	assert_int_equal(inb(RBR), 0x01);
	assert_int_equal(inb(IER), 0x02);
	assert_int_equal(f->cap.out_len, 0);  /* DLL write is no transmit */
	outb(LCR, 0x03);
	assert_int_equal(inb(LCR), 0x03);
	assert_int_equal(inb(IER), 0x05);     /* IER kept apart from DLM */
	outb(THR, 'z');
	assert_int_equal(f->cap.out_len, 1);
	outb(LCR, 0x80);
	assert_int_equal(inb(RBR), 0x01);     /* the latch survives */
	assert_int_equal(inb(IER), 0x02);
}

static void test_scratch_and_masks(void **state)
{
	(void)state;
	outb(SCR, 0xa5);
	assert_int_equal(inb(SCR), 0xa5);
	outb(SCR, 0x5a);
	assert_int_equal(inb(SCR), 0x5a);
	outb(IER, 0xff);
	assert_int_equal(inb(IER), 0x0f);     /* bits 4-7 are always 0 */
	outb(MCR, 0xff);
	assert_int_equal(inb(MCR), 0x1f);
	outb(LSR, 0x00);                      /* writes to LSR change nothing */
	assert_int_equal(inb(LSR) & 0x60, 0x60);
}

static void test_wide_access(void **state)
{
	(void)state;
	outb(LCR, 0x03);
	outb(MCR, 0x0b);
	assert_int_equal(in_n(COM1 + LCR, 2), 0x0b03);
	out_n(COM1 + SCR - 1, 2, 0x4200);     /* MSR (read-only) and SCR */
	assert_int_equal(inb(SCR), 0x42);
}

static void test_thre_interrupt(void **state)
{
	unsigned before;

	(void)state;
	outb(MCR, 0x08);                      /* OUT2 */
	outb(IER, 0x02);
	assert_true(irq_high());              /* enabling ETBEI with THR empty */
	assert_int_equal(inb(IIR), 0x02);
	assert_false(irq_high());             /* reading IIR acknowledged it */
	assert_int_equal(inb(IIR), 0x01);

	outb(THR, 'a');                       /* sent at once: THRE again */
	assert_true(irq_high());
	before = f->cap.irq_msgs;
	outb(THR, 'b');                       /* THR write clears, then re-raises */
	assert_true(irq_high());
	assert_int_equal(f->cap.irq_msgs, before + 2);

	outb(IER, 0x00);
	assert_false(irq_high());
	assert_int_equal(inb(IIR), 0x01);
}

static void test_irq_sent_on_change_only(void **state)
{
	unsigned before;

	(void)state;
	outb(MCR, 0x08);
	type("x", 1);
	outb(IER, 0x01);
	assert_true(irq_high());
	before = f->cap.irq_msgs;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(inb(IIR), 0x04);
		assert_int_equal(inb(LSR), 0x61);
		outb(SCR, i);
	}
	assert_int_equal(f->cap.irq_msgs, before);
	assert_int_equal(inb(RBR), 'x');
	assert_false(irq_high());
	assert_int_equal(f->cap.irq_msgs, before + 1);
}

/* Loopback lets one test create every source and watch them stack. */
static void test_priorities(void **state)
{
	(void)state;
	outb(IER, 0x0f);
	outb(MCR, 0x18);                      /* loopback, OUT2 -> DCD */
	/* THRE (from ETBEI) outranks the modem status change. */
	assert_int_equal(inb(IIR), 0x02);
	assert_int_equal(inb(IIR), 0x00);     /* THRE acknowledged: MSI remains */
	assert_int_equal(inb(MSR), 0x80 | 0x03);   /* CTS, DSR fell: deltas */
	assert_int_equal(inb(IIR), 0x01);

	outb(THR, 'a');                       /* into RX, and THRE again */
	assert_int_equal(inb(IIR), 0x04);     /* received data over THRE */
	outb(THR, 'b');                       /* 16450 mode: one byte, overrun */
	assert_int_equal(inb(IIR), 0x06);     /* line status first */
	assert_int_equal(inb(LSR), 0x63);     /* OE | DR | THRE | TEMT */
	assert_int_equal(inb(LSR), 0x61);     /* OE cleared by the read */
	assert_int_equal(inb(IIR), 0x04);
	assert_int_equal(inb(RBR), 'a');      /* the byte that overran is lost */
	assert_int_equal(inb(IIR), 0x02);
	assert_int_equal(inb(IIR), 0x01);
	assert_int_equal(inb(RBR), 'a');      /* an empty RBR repeats the last */
	assert_int_equal(inb(LSR), 0x60);
}

static void test_line_status_interrupt_needs_elsi(void **state)
{
	(void)state;
	outb(MCR, 0x10);
	outb(THR, '1');
	outb(THR, '2');                       /* overrun */
	assert_int_equal(inb(IIR), 0x01);     /* nothing enabled */
	outb(IER, 0x04);
	assert_int_equal(inb(IIR), 0x06);
	inb(LSR);
	assert_int_equal(inb(IIR), 0x01);
}

static void test_rx_fifo(void **state)
{
	char buf[6] = { 0 };

	(void)state;
	outb(FCR, 0x01);                      /* FIFO on, trigger 1 */
	assert_int_equal(inb(IIR), 0xc1);
	outb(MCR, 0x08);
	outb(IER, 0x01);
	type("hello", 5);
	assert_true(irq_high());
	assert_int_equal(inb(IIR), 0xc4);
	assert_int_equal(inb(LSR), 0x61);
	for (int i = 0; i < 5; i++)
		buf[i] = inb(RBR);
	assert_string_equal(buf, "hello");
	assert_int_equal(inb(LSR), 0x60);
	assert_int_equal(inb(IIR), 0xc1);
	assert_false(irq_high());
}

static void test_rx_trigger_level(void **state)
{
	(void)state;
	outb(FCR, 0x81);                      /* trigger at 8 */
	outb(IER, 0x01);
	type("abc", 3);
	assert_int_equal(inb(IIR), 0xcc);     /* below trigger: timeout */
	type("defgh", 5);
	assert_int_equal(inb(IIR), 0xc4);     /* 8 waiting: data available */
	inb(RBR);
	assert_int_equal(inb(IIR), 0xcc);
	outb(FCR, 0xc1);                      /* trigger at 14 */
	assert_int_equal(inb(IIR), 0xcc);
	outb(FCR, 0x41);                      /* trigger at 4 */
	assert_int_equal(inb(IIR), 0xc4);
}

/* More host input than the FIFO holds waits instead of overrunning. */
static void test_console_backlog(void **state)
{
	uint8_t in[100];

	(void)state;
	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = i;
	outb(FCR, 0x07);
	type(in, sizeof(in));
	for (unsigned i = 0; i < sizeof(in); i++) {
		assert_int_equal(inb(LSR), 0x61);
		assert_int_equal(inb(RBR), i);
	}
	assert_int_equal(inb(LSR), 0x60);

	outb(FCR, 0x00);                      /* 16450 mode: one byte at a time */
	type("xyz", 3);
	assert_int_equal(inb(RBR), 'x');
	assert_int_equal(inb(RBR), 'y');
	assert_int_equal(inb(LSR), 0x61);
	assert_int_equal(inb(RBR), 'z');
	assert_int_equal(inb(LSR), 0x60);
}

static void test_console_overrun(void **state)
{
	static uint8_t in[5000];
	unsigned got = 0;

	(void)state;
	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = i % 251;
	outb(FCR, 0x01);
	type(in, sizeof(in));
	assert_int_equal(inb(LSR) & 0x03, 0x03);   /* OE: input was dropped */
	while (inb(LSR) & 0x01) {
		assert_int_equal(inb(RBR), got % 251);  /* what came, came in order */
		got++;
	}
	assert_true(got >= 16 && got < sizeof(in));
}

static void test_fifo_overrun_loopback(void **state)
{
	(void)state;
	outb(FCR, 0x01);
	outb(MCR, 0x10);
	for (int i = 0; i < 17; i++)
		outb(THR, 'A' + i);
	assert_int_equal(f->cap.out_len, 0);      /* loopback: nothing on the wire */
	assert_int_equal(inb(LSR), 0x63);
	for (int i = 0; i < 16; i++)
		assert_int_equal(inb(RBR), 'A' + i);
	assert_int_equal(inb(LSR), 0x60);         /* the 17th was lost */
}

static void test_fifo_reset(void **state)
{
	(void)state;
	outb(FCR, 0x01);
	outb(MCR, 0x10);
	outb(THR, '1');
	outb(THR, '2');
	outb(FCR, 0x03);                          /* RX reset, FIFO stays on */
	assert_int_equal(inb(LSR), 0x60);
	assert_int_equal(inb(IIR) & 0xc0, 0xc0);
	outb(THR, '3');
	outb(FCR, 0x05);                          /* TX reset only: RX kept */
	assert_int_equal(inb(LSR), 0x61);
	outb(FCR, 0x00);                          /* FIFOs off: emptied */
	assert_int_equal(inb(LSR), 0x60);
	assert_int_equal(inb(IIR) & 0xc0, 0x00);
	outb(THR, '4');
	outb(FCR, 0x02);                          /* reset without FCR0: ignored */
	assert_int_equal(inb(LSR), 0x61);
	assert_int_equal(inb(RBR), '4');
}

static void test_loopback_modem_lines(void **state)
{
	(void)state;
	outb(MCR, 0x1a);                      /* what Linux's autoconfig checks */
	assert_int_equal(inb(MSR) & 0xf0, 0x90);
	outb(MCR, 0x15);                      /* DTR, OUT1 */
	assert_int_equal(inb(MSR), 0x60 | 0x0b);  /* CTS, DCD fell; DSR rose */
	outb(MCR, 0x11);                      /* OUT1 off: RI trailing edge */
	assert_int_equal(inb(MSR), 0x20 | 0x04);
	outb(MCR, 0x00);
	assert_int_equal(inb(MSR), 0xb0 | 0x09);
	assert_int_equal(inb(MSR), 0xb0);

	outb(MCR, 0x10);                      /* host input waits out loopback */
	type("k", 1);
	assert_int_equal(inb(LSR), 0x60);
	outb(MCR, 0x00);
	assert_int_equal(inb(LSR), 0x61);
	assert_int_equal(inb(RBR), 'k');
}

static void test_out2_gates_irq(void **state)
{
	(void)state;
	outb(IER, 0x02);
	assert_int_equal(inb(IIR), 0x02);     /* pending inside the chip ... */
	outb(IER, 0x00);
	outb(IER, 0x02);
	assert_false(irq_high());             /* ... but OUT2 is off */
	outb(MCR, 0x08);
	assert_true(irq_high());
	outb(MCR, 0x00);
	assert_false(irq_high());
	outb(MCR, 0x18);                      /* loopback forces OUT2 inactive */
	assert_false(irq_high());
	outb(MCR, 0x08);
	assert_true(irq_high());
	assert_int_equal(f->cap.level[3], 0); /* only IRQ 4 moved */
}

static void test_model_registry(void **state)
{
	(void)state;
	assert_non_null(device_model_find("uart"));
	assert_int_equal(device_create(&f->vm, "uart"), -EEXIST);   /* 0x3f8 taken */
	assert_int_equal(device_create(&f->vm, "uart:0x2f8,junk"), -EINVAL);
	assert_int_equal(device_create(&f->vm, "uart:0x2f8,3"), 0);
	out_n(0x2ff, 1, 0x77);
	assert_int_equal(in_n(0x2ff, 1), 0x77);
	assert_int_equal(inb(SCR), 0x00);     /* a separate device */
	out_n(0x2fc, 1, 0x08);
	out_n(0x2f9, 1, 0x02);
	assert_int_equal(f->cap.level[3], 1);
	assert_false(irq_high());
	/* COM1 owns the console: input does not reach the second port. */
	type("q", 1);
	assert_int_equal(in_n(0x2fd, 1) & 0x01, 0);
	assert_int_equal(inb(LSR) & 0x01, 1);
}

static void test_escape_parser(void **state)
{
	struct console_escape e = { 0 };

	(void)state;
	assert_int_equal(console_escape_feed(&e, 'a'), CONSOLE_SEND);
	assert_int_equal(console_escape_feed(&e, 'x'), CONSOLE_SEND);
	assert_int_equal(console_escape_feed(&e, 0x03), CONSOLE_SEND);   /* Ctrl-C */
	assert_int_equal(console_escape_feed(&e, 0x01), CONSOLE_DROP);
	assert_int_equal(console_escape_feed(&e, 0x01), CONSOLE_SEND);   /* literal C-a */
	assert_int_equal(console_escape_feed(&e, 'x'), CONSOLE_SEND);    /* escape was used */
	assert_int_equal(console_escape_feed(&e, 0x01), CONSOLE_DROP);
	assert_int_equal(console_escape_feed(&e, 'h'), CONSOLE_HELP);
	assert_int_equal(console_escape_feed(&e, 'h'), CONSOLE_SEND);
	assert_int_equal(console_escape_feed(&e, 0x01), CONSOLE_DROP);
	assert_int_equal(console_escape_feed(&e, 'q'), CONSOLE_DROP);    /* unknown */
	assert_int_equal(console_escape_feed(&e, 'q'), CONSOLE_SEND);
	assert_int_equal(console_escape_feed(&e, 0x01), CONSOLE_DROP);
	assert_int_equal(console_escape_feed(&e, 'x'), CONSOLE_QUIT);
	assert_int_equal(console_escape_feed(&e, 'x'), CONSOLE_SEND);
}

/* No short period: a rewritten chunk must not look right. */
static uint8_t pattern(size_t i)
{
	return (uint32_t)(i * 2654435761u) >> 13;
}

struct pipe_reader {
	int fd;
	size_t got;
	bool in_order;
};

static void *drain_pipe(void *arg)
{
	struct pipe_reader *r = arg;
	uint8_t buf[4096];
	ssize_t n;

	r->in_order = true;
	while ((n = read(r->fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++, r->got++)
			if (buf[i] != pattern(r->got))
				r->in_order = false;
	return NULL;
}

static void test_console_write(void **state)
{
	static uint8_t big[200000];
	int fds[2], saved = dup(STDOUT_FILENO);
	struct pipe_reader r;
	pthread_t t;

	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = pattern(i);
	assert_int_equal(pipe(fds), 0);
	r = (struct pipe_reader){ .fd = fds[0] };
	assert_int_equal(pthread_create(&t, NULL, drain_pipe, &r), 0);
	/* Non-blocking, so the writes come back short and with EAGAIN. */
	assert_int_equal(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
	assert_true(dup2(fds[1], STDOUT_FILENO) >= 0);
	close(fds[1]);
	console_write(big, sizeof(big));      /* far more than a pipe buffer */
	assert_true(dup2(saved, STDOUT_FILENO) >= 0);   /* closes the write end */
	close(saved);
	pthread_join(t, NULL);
	close(fds[0]);
	assert_int_equal(r.got, sizeof(big));
	assert_true(r.in_order);
}

/* Generous: a guard against a hang, not a timing assertion. */
static bool wait_vm_exit(struct vm *vm, int *status)
{
	struct timespec deadline;
	bool exited;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 60;
	pthread_mutex_lock(&vm->exit_lock);
	while (!atomic_load(&vm->exiting) &&
	       pthread_cond_timedwait(&vm->exit_cond, &vm->exit_lock, &deadline) != ETIMEDOUT)
		;
	exited = atomic_load(&vm->exiting);
	*status = vm->exit_status;
	pthread_mutex_unlock(&vm->exit_lock);
	return exited;
}

/* The reader thread: stdin bytes reach COM1, Ctrl-A x ends the VM. */
static void test_console_reader(void **state)
{
	static const char input[] = "ls\r\x01\x01\x01zq\x01x";
	int fds[2], saved = dup(STDIN_FILENO), status;
	char got[8] = { 0 };

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], input, sizeof(input) - 1), sizeof(input) - 1);
	close(fds[1]);
	assert_true(dup2(fds[0], STDIN_FILENO) >= 0);
	close(fds[0]);
	assert_int_equal(console_start(&f->vm), 0);
	assert_int_equal(console_start(&f->vm), -EBUSY);
	assert_true(wait_vm_exit(&f->vm, &status));
	assert_int_equal(status, 0);
	console_stop();
	assert_true(dup2(saved, STDIN_FILENO) >= 0);
	close(saved);
	for (int i = 0; i < 5 && (inb(LSR) & 1); i++)
		got[i] = inb(RBR);
	assert_string_equal(got, "ls\r\x01q");   /* C-a C-a is one C-a; C-a z vanished */
	assert_int_equal(inb(LSR) & 1, 0);
}

static int pty_open(int *slave, struct termios *cooked)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);

	assert_true(m >= 0);
	assert_int_equal(grantpt(m), 0);
	assert_int_equal(unlockpt(m), 0);
	*slave = open(ptsname(m), O_RDWR | O_NOCTTY);
	assert_true(*slave >= 0);
	assert_int_equal(tcgetattr(*slave, cooked), 0);
	assert_true(cooked->c_lflag & ICANON);   /* a fresh pty is cooked */
	return m;
}

static void assert_same_termios(int fd, const struct termios *want)
{
	struct termios now;

	assert_int_equal(tcgetattr(fd, &now), 0);
	assert_int_equal(now.c_lflag, want->c_lflag);
	assert_int_equal(now.c_iflag, want->c_iflag);
	assert_int_equal(now.c_oflag, want->c_oflag);
	assert_int_equal(now.c_cflag, want->c_cflag);
}

/* A terminal goes raw while the console runs and comes back after. */
static void test_console_tty(void **state)
{
	struct termios cooked, raw;
	int slave, master = pty_open(&slave, &cooked), saved = dup(STDIN_FILENO), status;
	char got[4] = { 0 };

	(void)state;
	assert_true(dup2(slave, STDIN_FILENO) >= 0);
	assert_int_equal(console_start(&f->vm), 0);
	assert_int_equal(tcgetattr(slave, &raw), 0);
	assert_int_equal(raw.c_lflag & (ICANON | ECHO | ISIG), 0);
	assert_int_equal(raw.c_iflag & (ICRNL | IXON), 0);
	assert_true(raw.c_oflag & OPOST);
	/* Ctrl-C is a byte for the guest now; Ctrl-A x still quits. */
	assert_int_equal(write(master, "\x03\r\x01x", 4), 4);
	assert_true(wait_vm_exit(&f->vm, &status));
	console_stop();
	assert_same_termios(slave, &cooked);
	assert_true(dup2(saved, STDIN_FILENO) >= 0);
	close(saved);
	close(slave);
	close(master);
	for (int i = 0; i < 3 && (inb(LSR) & 1); i++)
		got[i] = inb(RBR);
	assert_string_equal(got, "\x03\r");
}

/* A fatal signal nobody handles still puts the terminal back. */
static void test_console_restore_on_signal(void **state)
{
	struct termios cooked;
	int slave, master = pty_open(&slave, &cooked), status;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static struct vm idle;       /* no input comes: never sent to */
		struct termios raw;

		dup2(slave, STDIN_FILENO);
		if (console_start(&idle) || tcgetattr(slave, &raw) || (raw.c_lflag & ICANON))
			_exit(3);
		/*
		 * raise(), not kill(getpid()): a process-directed signal may go to
		 * the console's input thread while this one reaches _exit first.
		 */
		raise(SIGTERM);
		_exit(4);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGTERM);
	assert_same_termios(slave, &cooked);
	close(slave);
	close(master);
}

/* Read every register (RBR last, so the FIFO moves) of fixture @x. */
static void read_regs(struct fixture *x, uint8_t r[8])
{
	struct fixture *keep = f;

	f = x;
	for (unsigned i = 0; i < 8; i++)
		r[i] = inb((IER + i) % 8);   /* IER .. SCR, then RBR */
	f = keep;
}

/*
 * Registers, a full FIFO with host input waiting behind it, a raised
 * line: the loaded UART reads the same, byte for byte, sends nothing on
 * load (the interrupt controllers keep the level) and saves the same.
 */
static void test_save_load(void **state)
{
	struct fixture *a = f, *b;
	uint8_t in[40], ra[8], rb[8];
	int fa;

	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(0x30 + i);
	outb(LCR, 0x83);
	outb(THR, 0x01);                      /* divisor 1 */
	outb(IER, 0x00);
	outb(LCR, 0x1b);
	outb(FCR, 0xc7);                      /* FIFO, trigger 14 */
	outb(MCR, 0x0b);
	outb(IER, 0x0f);
	outb(SCR, 0x5a);
	type(in, sizeof(in));
	assert_int_equal(inb(RBR), 0x30);
	assert_int_equal(inb(RBR), 0x31);
	assert_true(irq_high());
	fa = trip_save(&a->vm);

	setup_mode(state, IO_MODE_LOCK);
	b = f;
	f = a;
	*state = a;
	trip_reload(&b->vm, fa);
	assert_int_equal(b->cap.irq_msgs, 0);
	b->cap.level[IRQ] = 1;                /* what the PIC saved */
	for (unsigned i = 2; i < sizeof(in) + 1; i++) {
		read_regs(a, ra);
		read_regs(b, rb);
		assert_memory_equal(ra, rb, 8);
		assert_int_equal(a->cap.level[IRQ], b->cap.level[IRQ]);
	}
	assert_int_equal(ra[LSR - 1], 0x60);  /* both drained */
	assert_int_equal(a->cap.irq_msgs - b->cap.irq_msgs, 1);
	close(fa);
	f = b;
	teardown(NULL);
	f = a;
}

static void test_load_refuses(void **state)
{
	uint8_t ier = 0x10, fcr = 0x40, lsr = 0x20;
	uint32_t count = 2, big = 4097;
	int fa;

	(void)state;
	outb(FCR, 0x00);                      /* 16450 mode: a FIFO of one */
	fa = trip_save(&f->vm);
	trip_assert_patched_refused(&f->vm, fa, "uart", COM1, 1, &ier, 1, "IER 0x10");
	trip_assert_patched_refused(&f->vm, fa, "uart", COM1, 8, &fcr, 1, "FCR 0x40");
	trip_assert_patched_refused(&f->vm, fa, "uart", COM1, 9, &lsr, 1, "LSR errors 0x20");
	trip_assert_patched_refused(&f->vm, fa, "uart", COM1, 12, &count, 4,
				    "2 bytes in the receive FIFO, which holds 1");
	trip_assert_patched_refused(&f->vm, fa, "uart", COM1, 16, &big, 4, "input backlog");
	trip_assert_patched_refused(&f->vm, fa, "uart", COM1, 19, NULL, 0, "past its end");
	trip_assert_patched_refused(&f->vm, fa, "uart", COM1, 99, NULL, 0, "left unread");
	close(fa);
	/* The section of a UART at another port is not this one's. */
	fa = trip_stream_of("uart", 0x2f8, 1, "", 0);
	trip_assert_patched_refused(&f->vm, fa, "uart", 0x2f8, 0, NULL, 0,
				    "no section 'uart' instance 1016");
	close(fa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
/* Every test under both I/O modes: the global lock and the I/O thread. */
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_lock, teardown), \
	      cmocka_unit_test_setup_teardown(fn, setup_thread, teardown)
		T(test_reset_values),
		T(test_thr_output),
		T(test_dlab_divisor),
		T(test_scratch_and_masks),
		T(test_wide_access),
		T(test_thre_interrupt),
		T(test_irq_sent_on_change_only),
		T(test_priorities),
		T(test_line_status_interrupt_needs_elsi),
		T(test_rx_fifo),
		T(test_rx_trigger_level),
		T(test_console_backlog),
		T(test_console_overrun),
		T(test_fifo_overrun_loopback),
		T(test_fifo_reset),
		T(test_loopback_modem_lines),
		T(test_out2_gates_irq),
		T(test_model_registry),
		T(test_save_load),
		T(test_load_refuses),
		T(test_console_reader),
		T(test_console_tty),
		cmocka_unit_test(test_escape_parser),
		cmocka_unit_test(test_console_write),
		cmocka_unit_test(test_console_restore_on_signal),
#undef T
	};

	bus_thread_enter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
