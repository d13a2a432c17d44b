/*
 * Migration sockets and message framing (vmm/migrate_wire.h).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <zlib.h>
#include "vmm/log.h"
#include "vmm/migrate_wire.h"

uint32_t mig_crc(const void *p, size_t len)
{
	uLong crc = crc32(0, Z_NULL, 0);

	/* zlib takes uInt lengths. */
	for (const uint8_t *b = p; len; ) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		crc = crc32(crc, b, n);
		b += n;
		len -= n;
	}
	return (uint32_t)crc;
}

bool mig_page_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (unsigned i = 0; i < MIG_PAGE / 8; i += 4)
		if (q[i] | q[i + 1] | q[i + 2] | q[i + 3])
			return false;
	return true;
}

/* ---- Addresses ---- */

static int unix_addr(const char *path, struct sockaddr_un *sun, char *err, size_t errlen)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (!*path || strlen(path) >= sizeof(sun->sun_path))
		return report_error(err, errlen, -EINVAL, "bad unix socket path '%s'", path);
	strcpy(sun->sun_path, path);
	return 0;
}

/* "HOST:PORT" or "[V6]:PORT" into getaddrinfo results. */
static int tcp_addr(const char *spec, bool passive, struct addrinfo **res,
		    char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = passive ? AI_PASSIVE : 0 };
	char host[256];
	const char *colon = strrchr(spec, ':');
	size_t hlen;
	int rc;

	if (!colon || !colon[1])
		return report_error(err, errlen, -EINVAL, "tcp:%s: expected tcp:HOST:PORT", spec);
	hlen = (size_t)(colon - spec);
	if (hlen >= 2 && spec[0] == '[' && spec[hlen - 1] == ']')
		spec++, hlen -= 2;
	if (hlen >= sizeof(host))
		return report_error(err, errlen, -EINVAL, "tcp: host name too long");
	memcpy(host, spec, hlen);
	host[hlen] = 0;
	rc = getaddrinfo(hlen ? host : NULL, colon + 1, &hints, res);
	if (rc)
		return report_error(err, errlen, -EINVAL, "tcp:%s: %s", spec, gai_strerror(rc));
	return 0;
}

static void tune(int fd)
{
	int one = 1;

	/* Small replies (ACCEPT, RUNNING) must not wait behind Nagle. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Connect @fd to @addr, or (@listening) bind it there and listen for one peer. */
static int attach(int fd, const struct sockaddr *addr, socklen_t len, bool listening)
{
	int one = 1;

	if (!listening)
		return connect(fd, addr, len);
	if (addr->sa_family != AF_UNIX &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		return -1;
	return bind(fd, addr, len) || listen(fd, 1) ? -1 : 0;
}

/* A socket connected to, or listening at, @uri (tcp:HOST:PORT or unix:PATH). */
static int open_socket(const char *uri, bool listening, char *err, size_t errlen)
{
	struct addrinfo *res, *ai;
	struct sockaddr_un sun;
	int fd = -1, e = 0;

	if (!strncmp(uri, "unix:", 5)) {
		if (unix_addr(uri + 5, &sun, err, errlen))
			return -EINVAL;
		if (listening)
			unlink(sun.sun_path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && attach(fd, (struct sockaddr *)&sun, sizeof(sun), listening) == 0)
			return fd;
		e = errno;
		if (fd >= 0)
			close(fd);
		return report_error(err, errlen, -e, "%s: %s", uri, strerror(e));
	}
	if (strncmp(uri, "tcp:", 4))
		return report_error(err, errlen, -EINVAL, "'%s': expected tcp:HOST:PORT or unix:PATH",
				    uri);
	if (tcp_addr(uri + 4, listening, &res, err, errlen))
		return -EINVAL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd >= 0 && attach(fd, ai->ai_addr, ai->ai_addrlen, listening) == 0)
			break;
		e = errno;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return report_error(err, errlen, -e, "%s: %s", uri, strerror(e));
	return fd;
}

int mig_connect(const char *uri, char *err, size_t errlen)
{
	int fd = open_socket(uri, false, err, errlen);

	if (fd >= 0)
		tune(fd);
	return fd;
}

static bool exit_signal_pending(void)
{
	sigset_t set;

	sigpending(&set);
	return sigismember(&set, SIGINT) || sigismember(&set, SIGTERM) ||
	       sigismember(&set, SIGHUP);
}

int mig_accept(const char *uri, char *err, size_t errlen)
{
	int lfd = open_socket(uri, true, err, errlen), fd = -1;

	if (lfd < 0)
		return lfd;
	while (fd < 0) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };

		if (exit_signal_pending()) {
			fd = report_error(err, errlen, -EINTR, "interrupted by a signal while waiting "
					  "for the migration source");
			break;
		}
		if (poll(&p, 1, 100) <= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0 && errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
			fd = report_error(err, errlen, -errno, "accept: %s", strerror(errno));
	}
	close(lfd);
	if (!strncmp(uri, "unix:", 5))
		unlink(uri + 5);
	if (fd >= 0)
		tune(fd);
	return fd;
}

/* ---- Framing ---- */

static int write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EPIPE;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++, n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	for (uint8_t *p = buf; len; ) {
		ssize_t r = read(fd, p, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -ECONNRESET;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

int mig_send2(struct mig_conn *c, uint32_t type, const void *a, uint32_t alen,
	      const void *b, uint32_t blen)
{
	struct mig_header h = { .type = type, .len = alen + blen };
	struct iovec iov[3] = {
		{ &h, sizeof(h) }, { (void *)a, alen }, { (void *)b, blen },
	};
	uLong crc = crc32(0, Z_NULL, 0);
	int err;

	if (alen)
		crc = crc32(crc, a, alen);
	if (blen)
		crc = crc32(crc, b, blen);
	h.crc = (uint32_t)crc;
	h.hdr_crc = mig_crc(&h, offsetof(struct mig_header, hdr_crc));
	err = write_all(c->fd, iov, 3);
	if (!err)
		c->sent += sizeof(h) + alen + blen;
	return err;
}

int mig_send(struct mig_conn *c, uint32_t type, const void *payload, uint32_t len)
{
	return mig_send2(c, type, payload, len, NULL, 0);
}

int mig_recv(struct mig_conn *c, struct mig_header *h, uint8_t **buf, size_t *cap,
	     char *err, size_t errlen)
{
	int e = read_all(c->fd, h, sizeof(*h));

	if (e)
		return report_error(err, errlen, e, "connection lost: %s",
				    e == -ECONNRESET ? "closed by the peer" : strerror(-e));
	if (h->hdr_crc != mig_crc(h, offsetof(struct mig_header, hdr_crc)) ||
	    h->type == 0 || h->type >= MIG_TYPE_MAX || h->len > MIG_MAX_PAYLOAD)
		return report_error(err, errlen, -EBADMSG, "bad message header (type %u, "
				    "length %u)", h->type, h->len);
	if (h->len > *cap) {
		uint8_t *n = realloc(*buf, h->len);

		if (!n)
			return report_error(err, errlen, -ENOMEM, "out of memory");
		*buf = n;
		*cap = h->len;
	}
	e = read_all(c->fd, *buf, h->len);
	if (e)
		return report_error(err, errlen, e, "connection lost in a message: %s",
				    e == -ECONNRESET ? "closed by the peer" : strerror(-e));
	if (mig_crc(*buf, h->len) != h->crc)
		return report_error(err, errlen, -EBADMSG, "message type %u: payload checksum "
				    "mismatch", h->type);
	return 0;
}
