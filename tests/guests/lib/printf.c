/*
 * A small printf: enough for test reports.  64-bit numbers are divided
 * with 32-bit operations, so no libgcc helper (__udivdi3) is needed.
 */
#include "guest.h"

struct sink {
	char *buf;          /* NULL: the console */
	size_t size;
	size_t len;
};

static void sink_put(struct sink *s, char c)
{
	if (!s->buf)
		serial_putc(c);
	else if (s->len + 1 < s->size)
		s->buf[s->len] = c;
	s->len++;
}

static void sink_pad(struct sink *s, char c, int n)
{
	while (n-- > 0)
		sink_put(s, c);
}

/* *v /= base, returning the remainder; base <= 16. */
static unsigned divmod(uint64_t *v, unsigned base)
{
	uint32_t hi = *v >> 32, lo = (uint32_t)*v, r, mid, low, qhi, qmid, qlo;

	if (!hi) {
		*v = lo / base;
		return lo % base;
	}
	qhi = hi / base;
	r = hi % base;
	mid = (r << 16) | (lo >> 16);
	qmid = mid / base;
	r = mid % base;
	low = (r << 16) | (lo & 0xffff);
	qlo = low / base;
	r = low % base;
	*v = ((uint64_t)qhi << 32) | (qmid << 16) | qlo;
	return r;
}

struct spec {
	int width;
	bool zero, left, upper;
};

static void put_padded(struct sink *s, const struct spec *sp, const char *sign,
		       const char *body, int len)
{
	int slen = (int)strlen(sign), pad = sp->width - len - slen;

	if (!sp->left && !sp->zero)
		sink_pad(s, ' ', pad);
	while (*sign)
		sink_put(s, *sign++);
	if (!sp->left && sp->zero)
		sink_pad(s, '0', pad);
	for (int i = 0; i < len; i++)
		sink_put(s, body[i]);
	if (sp->left)
		sink_pad(s, ' ', pad);
}

static void put_num(struct sink *s, const struct spec *sp, uint64_t v,
		    unsigned base, const char *sign)
{
	const char *digits = sp->upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = sizeof(tmp);

	do
		tmp[--n] = digits[divmod(&v, base)];
	while (v);
	put_padded(s, sp, sign, tmp + n, (int)sizeof(tmp) - n);
}

static int format(struct sink *s, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		struct spec sp = { 0 };
		int lng = 0;
		uint64_t u;
		int64_t d;

		if (*fmt != '%') {
			sink_put(s, *fmt);
			continue;
		}
		for (fmt++; *fmt == '0' || *fmt == '-'; fmt++)
			*fmt == '0' ? (sp.zero = true) : (sp.left = true);
		for (; *fmt >= '0' && *fmt <= '9'; fmt++)
			sp.width = sp.width * 10 + (*fmt - '0');
		for (; *fmt == 'l'; fmt++)
			lng++;
		switch (*fmt) {
		case 'd':
		case 'i':
			d = lng >= 2 ? va_arg(ap, long long) : lng ? va_arg(ap, long) : va_arg(ap, int);
			u = d < 0 ? -(uint64_t)d : (uint64_t)d;
			put_num(s, &sp, u, 10, d < 0 ? "-" : "");
			break;
		case 'u':
		case 'x':
		case 'X':
			u = lng >= 2 ? va_arg(ap, unsigned long long)
			    : lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
			sp.upper = *fmt == 'X';
			put_num(s, &sp, u, *fmt == 'u' ? 10 : 16, "");
			break;
		case 'p':
			sp.width = 8;
			sp.zero = true;
			put_num(s, &sp, (uintptr_t)va_arg(ap, void *), 16, "0x");
			break;
		case 'c': {
			char c = (char)va_arg(ap, int);

			put_padded(s, &sp, "", &c, 1);
			break;
		}
		case 's': {
			const char *str = va_arg(ap, const char *);

			if (!str)
				str = "(null)";
			sp.zero = false;
			put_padded(s, &sp, "", str, (int)strlen(str));
			break;
		}
		case '%':
			sink_put(s, '%');
			break;
		case '\0':
			fmt--;
			break;
		default:
			sink_put(s, '%');
			sink_put(s, *fmt);
			break;
		}
	}
	if (s->buf && s->size)
		s->buf[s->len < s->size ? s->len : s->size - 1] = '\0';
	return (int)s->len;
}

int vprintf(const char *fmt, va_list ap)
{
	struct sink s = { 0 };

	return format(&s, fmt, ap);
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct sink s = { .buf = buf, .size = size };

	return format(&s, fmt, ap);
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
