/*
 * The guest test kernels' library: port and MMIO access, the COM1 console,
 * printf, the multiboot command line, and the exit protocol.
 *
 * Exit protocol: guest_exit(v) writes v to the debug-exit port 0xf4 and the
 * VMM exits with status (v << 1) | 1.  A passing test exits with v = 0,
 * so the VMM's status is 1; failures use v = 1 (status 3).  test_pass()
 * and test_fail() also print a marker line the harness looks for:
 * "PASS: <name>" or "FAIL: <name>: <why>".
 */
#pragma once
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_PASS 0
#define GUEST_FAIL 1

#define COM1_PORT       0x3f8
#define DEBUG_EXIT_PORT 0xf4

static inline void outb(uint16_t port, uint8_t v)
{
	asm volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	asm volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	asm volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* MMIO through volatile pointers: one access of exactly that width. */
static inline uint8_t mmio_read8(uintptr_t a) { return *(volatile uint8_t *)a; }
static inline uint16_t mmio_read16(uintptr_t a) { return *(volatile uint16_t *)a; }
static inline uint32_t mmio_read32(uintptr_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write8(uintptr_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void mmio_write16(uintptr_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline void mmio_write32(uintptr_t a, uint32_t v) { *(volatile uint32_t *)a = v; }

static inline void cpu_relax(void)
{
	asm volatile("pause" ::: "memory");
}

/* Multiboot v1 information (the fields the tests use). */
#define MB_BOOT_MAGIC    0x2BADB002
#define MB_INFO_MEMORY   (1u << 0)
#define MB_INFO_CMDLINE  (1u << 2)
#define MB_INFO_MMAP     (1u << 6)

struct mb_info {
	uint32_t flags;
	uint32_t mem_lower;     /* KiB below 1 MiB */
	uint32_t mem_upper;     /* KiB above 1 MiB */
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count;
	uint32_t mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length;
	uint32_t mmap_addr;
};

/* Console: COM1 at 115200 8N1, polled. */
void serial_init(void);
void serial_putc(char c);
void serial_puts(const char *s);

/* %d %i %u %x %X %p %s %c %%, flags '-' '0', width, 'l' and 'll'. */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

/*
 * Start-up shared by every test: console, banner with the command line,
 * and the multiboot magic check (a wrong one fails the test).  Returns the
 * arguments: the command line after the kernel's own path.
 */
const char *guest_start(const char *name, uint32_t magic, const struct mb_info *mbi);

/* The whole command line ("" if the loader gave none). */
const char *mb_cmdline(const struct mb_info *mbi);
/* Skip the first word (the kernel path, as GRUB and QEMU pass it). */
const char *cmdline_args(const char *cmdline);
/* True if @args has a word "key=value"; parses decimal or 0x hex. */
bool cmdline_uint(const char *args, const char *key, uint32_t *val);
/* True if @args has the word @word (alone, or as "word=..."). */
bool cmdline_has(const char *args, const char *word);

void guest_exit(int code) __attribute__((noreturn));
void test_pass(void) __attribute__((noreturn));
void test_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* freestanding C: gcc may call these for struct copies. */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
