/*
 * What every test kernel does around its checks: start-up, the multiboot
 * command line, the verdict lines and the exit through the debug port.
 */
#include "guest.h"

static const char *test_name = "guest";

const char *mb_cmdline(const struct mb_info *mbi)
{
	if (!mbi || !(mbi->flags & MB_INFO_CMDLINE) || !mbi->cmdline)
		return "";
	return (const char *)(uintptr_t)mbi->cmdline;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

static const char *skip_space(const char *s)
{
	while (is_space(*s))
		s++;
	return s;
}

static const char *skip_word(const char *s)
{
	while (*s && !is_space(*s))
		s++;
	return s;
}

const char *cmdline_args(const char *cmdline)
{
	return skip_space(skip_word(skip_space(cmdline)));
}

/* The word in @args that is @key or begins with "@key=", or NULL. */
static const char *find_key(const char *args, const char *key)
{
	size_t klen = strlen(key);

	for (const char *w = skip_space(args); *w; w = skip_space(skip_word(w)))
		if (!strncmp(w, key, klen) &&
		    (w[klen] == '=' || !w[klen] || is_space(w[klen])))
			return w;
	return NULL;
}

bool cmdline_has(const char *args, const char *word)
{
	return find_key(args, word) != NULL;
}

bool cmdline_uint(const char *args, const char *key, uint32_t *val)
{
	const char *w = find_key(args, key), *p;
	unsigned base = 10;
	uint32_t v = 0;

	if (!w || w[strlen(key)] != '=')
		return false;
	p = w + strlen(key) + 1;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	if (!*p || is_space(*p))
		return false;
	for (; *p && !is_space(*p); p++) {
		unsigned digit;

		if (*p >= '0' && *p <= '9')
			digit = *p - '0';
		else if (base == 16 && (*p | 0x20) >= 'a' && (*p | 0x20) <= 'f')
			digit = (*p | 0x20) - 'a' + 10;
		else
			return false;
		v = v * base + digit;
	}
	*val = v;
	return true;
}

const char *guest_start(const char *name, uint32_t magic, const struct mb_info *mbi)
{
	const char *cmdline = magic == MB_BOOT_MAGIC ? mb_cmdline(mbi) : "";

	test_name = name;
	serial_init();
	printf("== %s: command line \"%s\"\n", name, cmdline);
	if (magic != MB_BOOT_MAGIC)
		test_fail("multiboot magic is 0x%x, not 0x%x", magic, MB_BOOT_MAGIC);
	return cmdline_args(cmdline);
}

void guest_exit(int code)
{
	outb(DEBUG_EXIT_PORT, (uint8_t)code);
	/* Only reached if the VMM ignored the port. */
	for (;;)
		asm volatile("cli; hlt");
}

void test_pass(void)
{
	printf("PASS: %s\n", test_name);
	guest_exit(GUEST_PASS);
}

void test_fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: %s: ", test_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	guest_exit(GUEST_FAIL);
}
