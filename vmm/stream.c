/*
 * The snapshot stream's section format (see vmm/stream.h).  The VMM runs
 * on x86 only, so integers are stored in host (little-endian) order.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "vmm/stream.h"

struct file_header {
	char magic[8];
	uint32_t version;
	uint32_t flags;
};

struct section_header {
	char name[STREAM_NAME_MAX];
	uint32_t instance;
	uint32_t version;
	uint64_t length;
	uint32_t crc;
	uint32_t header_crc;       /* of the fields above */
};

static uint32_t crc(uint32_t c, const void *buf, uint64_t len)
{
	const uint8_t *p = buf;

	/* zlib takes the length as uInt: feed big payloads in pieces. */
	while (len) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		c = (uint32_t)crc32(c, p, n);
		p += n;
		len -= n;
	}
	return c;
}

int stream_fail(struct stream *s, int err, const char *fmt, ...)
{
	va_list ap;

	if (s->error)
		return err;
	s->error = err < 0 ? err : -EINVAL;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
	return err;
}

int stream_error(const struct stream *s)
{
	return s->error;
}

const char *stream_why(const struct stream *s)
{
	return s->error ? s->why : "no error";
}

/* Writing. */

static int open_write(struct stream *s, FILE *f, const char *what)
{
	struct file_header h = { .magic = STREAM_MAGIC, .version = STREAM_FORMAT_VERSION };

	memset(s, 0, sizeof(*s));
	s->writing = true;
	s->sec_start = -1;
	s->f = f;
	if (!s->f)
		return stream_fail(s, -errno, "%s: %s", what, strerror(errno));
	if (fwrite(&h, sizeof(h), 1, s->f) != 1)
		return stream_fail(s, -EIO, "%s: write failed", what);
	return 0;
}

int stream_open_write(struct stream *s, const char *path)
{
	char *tmp = NULL;
	FILE *f = NULL;
	int fd = -1;

	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
		tmp = NULL;
	else if ((fd = mkstemp(tmp)) >= 0) {
		f = fdopen(fd, "w+b");
		if (!f) {
			close(fd);
			unlink(tmp);
		}
	}
	if (open_write(s, f, path)) {
		free(tmp);
		return s->error;
	}
	s->tmp_path = tmp;
	s->path = strdup(path);
	if (!s->path)
		return stream_fail(s, -ENOMEM, "out of memory");
	return 0;
}

/* stream_open_write's file: in place if all went well, else gone. */
static void finish_file(struct stream *s)
{
	if (s->tmp_path && !s->error && rename(s->tmp_path, s->path) < 0)
		stream_fail(s, -errno, "%s: rename: %s", s->path, strerror(errno));
	if (s->tmp_path && s->error)
		unlink(s->tmp_path);
	free(s->tmp_path);
	free(s->path);
	s->tmp_path = s->path = NULL;
}

int stream_open_write_fd(struct stream *s, int fd)
{
	int own = dup(fd);
	FILE *f = own >= 0 ? fdopen(own, "w+b") : NULL;

	if (!f && own >= 0)
		close(own);
	return open_write(s, f, "snapshot fd");
}

static void write_raw(struct stream *s, const void *buf, size_t len)
{
	if (!s->error && len && fwrite(buf, len, 1, s->f) != 1)
		stream_fail(s, -EIO, "write failed: %s", strerror(errno));
}

void stream_section_begin(struct stream *s, const char *name, uint32_t instance,
			  uint32_t version)
{
	struct section_header h = { .instance = instance, .version = version };

	if (s->error)
		return;
	if (s->sec_start >= 0 || strlen(name) >= STREAM_NAME_MAX) {
		stream_fail(s, -EINVAL, "section '%s': nested or name too long", name);
		return;
	}
	strncpy(h.name, name, sizeof(h.name) - 1);
	s->sec_start = ftell(s->f);
	s->sec_len = 0;
	s->sec_crc = crc(0, NULL, 0);
	write_raw(s, &h, sizeof(h));
}

void stream_section_end(struct stream *s)
{
	struct section_header h;
	long end;

	if (s->error)
		return;
	end = ftell(s->f);
	if (fseek(s->f, s->sec_start, SEEK_SET) || fread(&h, sizeof(h), 1, s->f) != 1) {
		stream_fail(s, -EIO, "cannot patch section header");
		return;
	}
	h.length = s->sec_len;
	h.crc = s->sec_crc;
	h.header_crc = crc(0, &h, offsetof(struct section_header, header_crc));
	if (fseek(s->f, s->sec_start, SEEK_SET)) {
		stream_fail(s, -EIO, "cannot patch section header");
		return;
	}
	write_raw(s, &h, sizeof(h));
	if (fseek(s->f, end, SEEK_SET))
		stream_fail(s, -EIO, "cannot seek");
	s->sec_start = -1;
}

void stream_put(struct stream *s, const void *buf, size_t len)
{
	if (s->error)
		return;
	if (s->sec_start < 0) {
		stream_fail(s, -EINVAL, "data outside a section");
		return;
	}
	write_raw(s, buf, len);
	s->sec_crc = crc(s->sec_crc, buf, len);
	s->sec_len += len;
}

void stream_put_u8(struct stream *s, uint8_t v) { stream_put(s, &v, sizeof(v)); }
void stream_put_u32(struct stream *s, uint32_t v) { stream_put(s, &v, sizeof(v)); }
void stream_put_u64(struct stream *s, uint64_t v) { stream_put(s, &v, sizeof(v)); }

void stream_put_align(struct stream *s, uint64_t align)
{
	static const uint8_t zero[4096];
	long pos;

	if (s->error || !s->f)
		return;
	pos = ftell(s->f);
	if (pos < 0) {
		stream_fail(s, -EIO, "cannot tell the file offset");
		return;
	}
	for (uint64_t pad = -(uint64_t)pos & (align - 1); pad && !s->error;) {
		uint64_t n = pad < sizeof(zero) ? pad : sizeof(zero);

		stream_put(s, zero, n);
		pad -= n;
	}
}

void stream_put_section(struct stream *s, struct stream *from,
			const struct stream_section *sec)
{
	stream_section_begin(s, sec->name, sec->instance, sec->version);
	stream_put(s, from->map + sec->offset, sec->length);
	stream_section_end(s);
}

static void close_read(struct stream *s)
{
	if (s->map && s->owns_map)
		munmap((void *)s->map, s->size);
	if (s->owns_fd && s->fd >= 0)
		close(s->fd);
	free(s->sections);
	s->map = NULL;
	s->sections = NULL;
	s->fd = -1;
}

int stream_close(struct stream *s)
{
	if (!s->writing) {
		close_read(s);
		return s->error;
	}
	if (!s->f) {
		finish_file(s);
		return s->error;
	}
	if (!s->error) {
		stream_section_begin(s, "end", 0, 1);
		stream_section_end(s);
	}
	if (fflush(s->f) || fsync(fileno(s->f)))
		stream_fail(s, -EIO, "flush failed: %s", strerror(errno));
	if (fclose(s->f))
		stream_fail(s, -EIO, "close failed: %s", strerror(errno));
	s->f = NULL;
	finish_file(s);
	return s->error;
}

/* Reading. */

/* Walk every section: headers, bounds, checksums, and a final "end". */
static int verify(struct stream *s)
{
	uint64_t off = sizeof(struct file_header);

	for (;;) {
		struct section_header h;
		struct stream_section *sec;

		if (s->size - off < sizeof(h))
			return stream_fail(s, -EINVAL, "truncated: section header at %llu cut off",
					   (unsigned long long)off);
		memcpy(&h, s->map + off, sizeof(h));
		if (h.header_crc != crc(0, &h, offsetof(struct section_header, header_crc)))
			return stream_fail(s, -EINVAL, "corrupt section header at offset %llu",
					   (unsigned long long)off);
		if (memchr(h.name, 0, sizeof(h.name)) == NULL)
			return stream_fail(s, -EINVAL, "bad section name at offset %llu",
					   (unsigned long long)off);
		off += sizeof(h);
		if (h.length > s->size - off)
			return stream_fail(s, -EINVAL, "truncated: section '%s' needs %llu bytes, %llu left",
					   h.name, (unsigned long long)h.length,
					   (unsigned long long)(s->size - off));
		if (h.crc != crc(crc(0, NULL, 0), s->map + off, h.length))
			return stream_fail(s, -EINVAL, "section '%s' instance %u: checksum mismatch",
					   h.name, h.instance);
		if (!strcmp(h.name, "end"))
			return off + h.length == s->size ? 0 :
			       stream_fail(s, -EINVAL, "trailing bytes after the end section");
		if (s->nsections == STREAM_MAX_SECTIONS)
			return stream_fail(s, -E2BIG, "too many sections");
		sec = &s->sections[s->nsections++];
		memcpy(sec->name, h.name, sizeof(sec->name));
		sec->instance = h.instance;
		sec->version = h.version;
		sec->length = h.length;
		sec->crc = h.crc;
		sec->offset = off;
		off += h.length;
	}
}

/* The file header, then every section (s->map and s->size are set). */
static int open_mapped(struct stream *s, const char *path)
{
	struct file_header h;

	if (s->size < sizeof(h))
		return stream_fail(s, -EINVAL, "%s: too short for a snapshot", path);
	memcpy(&h, s->map, sizeof(h));
	if (memcmp(h.magic, STREAM_MAGIC, sizeof(h.magic)))
		return stream_fail(s, -EINVAL, "%s: not a snapshot (bad magic)", path);
	if (h.version != STREAM_FORMAT_VERSION || h.flags)
		return stream_fail(s, -EINVAL, "%s: snapshot format version %u flags %#x, this VMM reads %u",
				   path, h.version, h.flags, STREAM_FORMAT_VERSION);
	s->sections = calloc(STREAM_MAX_SECTIONS, sizeof(*s->sections));
	if (!s->sections)
		return stream_fail(s, -ENOMEM, "out of memory");
	return verify(s);
}

int stream_open_read_fd(struct stream *s, int fd, const char *what)
{
	struct stat st;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	if (fstat(fd, &st) < 0)
		return stream_fail(s, -errno, "%s: %s", what, strerror(errno));
	if (st.st_size < (off_t)sizeof(struct file_header))
		return stream_fail(s, -EINVAL, "%s: too short for a snapshot", what);
	s->size = (size_t)st.st_size;
	s->map = mmap(NULL, s->size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (s->map == MAP_FAILED) {
		s->map = NULL;
		return stream_fail(s, -errno, "%s: mmap: %s", what, strerror(errno));
	}
	s->owns_map = true;
	s->fd = fd;
	return open_mapped(s, what);
}

int stream_open_read(struct stream *s, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0) {
		memset(s, 0, sizeof(*s));
		s->fd = -1;
		return stream_fail(s, -errno, "%s: %s", path, strerror(errno));
	}
	/* Kept open until stream_close: RAM may be mapped from it. */
	ret = stream_open_read_fd(s, fd, path);
	if (s->fd == fd)
		s->owns_fd = true;
	else
		close(fd);
	return ret;
}

int stream_open_read_mem(struct stream *s, const void *buf, size_t size, const char *what)
{
	memset(s, 0, sizeof(*s));
	s->map = buf;
	s->size = size;
	s->fd = -1;
	return open_mapped(s, what);
}

const struct stream_section *stream_section_find(const struct stream *s, const char *name,
						 uint32_t instance)
{
	for (unsigned i = 0; i < s->nsections; i++)
		if (s->sections[i].instance == instance && !strcmp(s->sections[i].name, name))
			return &s->sections[i];
	return NULL;
}

int stream_section_open(struct stream *s, const char *name, uint32_t instance,
			uint32_t max_version, uint32_t *version)
{
	struct stream_section *sec;

	if (s->error)
		return s->error;
	sec = (struct stream_section *)stream_section_find(s, name, instance);
	if (!sec)
		return stream_fail(s, -ENOENT, "no section '%s' instance %u in the snapshot",
				   name, instance);
	if (sec->version > max_version || sec->version == 0)
		return stream_fail(s, -EINVAL, "section '%s' has version %u, this VMM reads up to %u",
				   name, sec->version, max_version);
	sec->used = true;
	s->cur = sec;
	s->pos = 0;
	if (version)
		*version = sec->version;
	return 0;
}

int stream_section_close(struct stream *s)
{
	if (!s->error && s->cur && s->pos != s->cur->length)
		stream_fail(s, -EINVAL, "section '%s' instance %u: %llu bytes left unread",
			    s->cur->name, s->cur->instance,
			    (unsigned long long)(s->cur->length - s->pos));
	s->cur = NULL;
	return s->error;
}

uint64_t stream_left(const struct stream *s)
{
	return s->cur && !s->error ? s->cur->length - s->pos : 0;
}

const void *stream_get_ptr(struct stream *s, size_t len)
{
	const void *p;

	if (s->error)
		return NULL;
	if (!s->cur || len > s->cur->length - s->pos) {
		stream_fail(s, -EINVAL, "section '%s': read past its end",
			    s->cur ? s->cur->name : "(none)");
		return NULL;
	}
	p = s->map + s->cur->offset + s->pos;
	s->pos += len;
	return p;
}

void stream_get(struct stream *s, void *buf, size_t len)
{
	const void *p = stream_get_ptr(s, len);

	if (p)
		memcpy(buf, p, len);
	else
		memset(buf, 0, len);
}

uint8_t stream_get_u8(struct stream *s) { uint8_t v; stream_get(s, &v, sizeof(v)); return v; }
uint32_t stream_get_u32(struct stream *s) { uint32_t v; stream_get(s, &v, sizeof(v)); return v; }
uint64_t stream_get_u64(struct stream *s) { uint64_t v; stream_get(s, &v, sizeof(v)); return v; }

void stream_get_align(struct stream *s, uint64_t align)
{
	if (s->cur && !s->error)
		stream_get_ptr(s, -(s->cur->offset + s->pos) & (align - 1));
}

int stream_file_of(const struct stream *s, const void *p, uint64_t *offset)
{
	/*
	 * Only a file this stream opened itself: a caller's fd (a memfd
	 * reused for the next checkpoint) could change under a private map.
	 */
	if (!s->owns_fd || s->fd < 0 || !s->map || (const uint8_t *)p < s->map ||
	    (const uint8_t *)p >= s->map + s->size)
		return -1;
	*offset = (uint64_t)((const uint8_t *)p - s->map);
	return s->fd;
}

const struct stream_section *stream_unused_section(const struct stream *s)
{
	for (unsigned i = 0; i < s->nsections; i++)
		if (!s->sections[i].used)
			return &s->sections[i];
	return NULL;
}
