/*
 * The snapshot stream: a file header (magic, format version) followed by
 * sections, each with a name, an instance, a version, a length and a
 * CRC-32 of its payload, closed by an "end" section.
 *
 *   file    := "VMMSNAP\0" u32 format-version u32 0  section*  end
 *   section := char name[24] u32 instance u32 version u64 length
 *              u32 payload-crc u32 header-crc  payload[length]
 *
 * Integers are little-endian.  Writing goes straight to a file (RAM is
 * not buffered); the payload CRC and length are patched into the section
 * header when the section ends.  Reading maps the whole file and checks
 * every header, length and checksum in stream_open_read() before anybody
 * reads a byte of payload, so a corrupt file is refused before anything
 * of it is applied.
 *
 * Errors stick: after the first failure every put/get is a no-op (gets
 * return zeros) and stream_error() says what went wrong.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define STREAM_MAGIC "VMMSNAP"
#define STREAM_FORMAT_VERSION 1
#define STREAM_NAME_MAX 24
#define STREAM_MAX_SECTIONS 4096

struct stream_section {
	char name[STREAM_NAME_MAX];
	uint32_t instance;
	uint32_t version;
	uint64_t length;
	uint32_t crc;
	uint64_t offset;           /* of the payload in the file */
	bool used;                 /* a loader consumed it */
};

struct stream {
	bool writing;
	int error;                 /* -errno of the first failure, or 0 */
	char why[256];
	/* Writing. */
	FILE *f;
	char *path, *tmp_path;     /* stream_open_write: renamed from tmp to path on close */
	long sec_start;            /* file offset of the open section's header, or -1 */
	uint64_t sec_len;
	uint32_t sec_crc;
	/* Reading. */
	const uint8_t *map;
	size_t size;
	bool owns_map;             /* unmapped on close (not for a caller's buffer) */
	int fd;                    /* the file behind @map while open, else -1 */
	bool owns_fd;              /* closed on close (stream_open_read's own) */
	unsigned nsections;
	struct stream_section *sections;
	struct stream_section *cur;
	uint64_t pos;              /* read position within @cur's payload */
};

/*
 * Write a new file at @path: the stream goes to a temporary file beside
 * it, renamed over @path by a successful stream_close (removed on
 * failure), so the old file stays whole until then and a VM whose RAM
 * is mapped from it (vmm/snapshot.c) never sees it change.
 */
int stream_open_write(struct stream *s, const char *path);
/* Write into a seekable file the caller keeps open (a memfd, a temp file). */
int stream_open_write_fd(struct stream *s, int fd);
/* Map @path and verify its structure and every checksum. */
int stream_open_read(struct stream *s, const char *path);
/* The same for an open file (the caller closes it after stream_close). */
int stream_open_read_fd(struct stream *s, int fd, const char *what);
/* The same for a stream already in memory (a buffer the caller owns). */
int stream_open_read_mem(struct stream *s, const void *buf, size_t size, const char *what);
/* Writing: flush, fsync and close; the first error (or 0). */
int stream_close(struct stream *s);

/* Record a failure (the first one wins); returns @err. */
int stream_fail(struct stream *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int stream_error(const struct stream *s);
const char *stream_why(const struct stream *s);

/* Writing sections. */
void stream_section_begin(struct stream *s, const char *name, uint32_t instance,
			  uint32_t version);
void stream_section_end(struct stream *s);
void stream_put(struct stream *s, const void *buf, size_t len);
void stream_put_u8(struct stream *s, uint8_t v);
void stream_put_u32(struct stream *s, uint32_t v);
void stream_put_u64(struct stream *s, uint64_t v);
/*
 * Pad with zeros until the file offset is a multiple of @align (a power
 * of two), so that what follows can be mapped from the file.
 */
void stream_put_align(struct stream *s, uint64_t align);
/* Copy the section @sec of the read stream @from, as it is. */
void stream_put_section(struct stream *s, struct stream *from,
			const struct stream_section *sec);

/*
 * Reading: open the section @name/@instance for reading.  Fails (and
 * records why) if it is missing or its version is above @max_version;
 * the version found is returned in @version.
 */
int stream_section_open(struct stream *s, const char *name, uint32_t instance,
			uint32_t max_version, uint32_t *version);
/* The whole payload of the open section was read (else a failure). */
int stream_section_close(struct stream *s);
const struct stream_section *stream_section_find(const struct stream *s, const char *name,
						 uint32_t instance);
/* The payload still to read in the open section. */
uint64_t stream_left(const struct stream *s);
void stream_get(struct stream *s, void *buf, size_t len);
/* A pointer to the next @len payload bytes (in the mapping), or NULL. */
const void *stream_get_ptr(struct stream *s, size_t len);
uint8_t stream_get_u8(struct stream *s);
uint32_t stream_get_u32(struct stream *s);
uint64_t stream_get_u64(struct stream *s);
/* Skip the padding stream_put_align() wrote. */
void stream_get_align(struct stream *s, uint64_t align);
/*
 * The file behind the payload at @p (from stream_get_ptr) and its offset
 * in it, for mmap: only for a file stream_open_read() opened (a caller's
 * fd may be rewritten later); -1 otherwise.
 */
int stream_file_of(const struct stream *s, const void *p, uint64_t *offset);
/* The first section nobody opened, or NULL: a device that is missing. */
const struct stream_section *stream_unused_section(const struct stream *s);
