/*
 * Device save/load round trips for device tests: drive the restore bus
 * of a VM the way vmm/snapshot.c does, into and out of a memfd stream.
 * Include after <cmocka.h>.
 *
 *   int a = trip_save(vm1);                  every device of vm1
 *   trip_reload(vm2, a);                     into vm2's fresh devices, which
 *                                            save the same bytes again
 *   trip_assert_patched_refused(vm3, a, "pit", 0, off, &bad, 1, "mode");
 */
#pragma once
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "bus/bus.h"
#include "bus/message.h"
#include "vmm/stream.h"
#include "vmm/vm.h"

static inline int trip_memfd(void)
{
	int fd = memfd_create("restore-trip", MFD_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

/* Every device of @vm saves itself into a new stream; its memfd. */
static inline int trip_save(struct vm *vm)
{
	int fd = trip_memfd();
	struct stream s;
	struct msg_restore m = { .type = RESTORE_SAVE, .s = &s };

	assert_int_equal(stream_open_write_fd(&s, fd), 0);
	bus_send(vm->bus.restore, &m, BUS_FIFO);
	assert_int_equal(m.error, 0);
	assert_int_equal(stream_close(&s), 0);
	return fd;
}

/* The devices of @vm load @fd (as a machine reset does if @reset). */
static inline int trip_load_mode(struct vm *vm, int fd, bool reset, char *why, size_t len)
{
	struct stream s;
	struct msg_restore m = { .type = RESTORE_LOAD, .reset = reset, .s = &s };
	int err;

	assert_int_equal(stream_open_read_fd(&s, fd, "trip"), 0);
	bus_send(vm->bus.restore, &m, BUS_FIFO);
	err = m.error ? m.error : stream_error(&s);
	snprintf(why, len, "%s", stream_why(&s));
	stream_close(&s);
	return err;
}

/* The devices of @vm load @fd: 0, or the error, with its reason in @why. */
static inline int trip_load_why(struct vm *vm, int fd, char *why, size_t len)
{
	return trip_load_mode(vm, fd, false, why, len);
}

static inline int trip_load(struct vm *vm, int fd)
{
	char why[256];
	int err = trip_load_why(vm, fd, why, sizeof(why));

	if (err)
		fprintf(stderr, "load failed: %s\n", why);
	return err;
}

/* A copy of the payload of @name/@instance in stream @fd (free it). */
static inline uint8_t *trip_payload(int fd, const char *name, uint32_t instance, size_t *len)
{
	struct stream s;
	const struct stream_section *sec;
	uint8_t *buf;

	assert_int_equal(stream_open_read_fd(&s, fd, "trip"), 0);
	sec = stream_section_find(&s, name, instance);
	assert_non_null(sec);
	*len = sec->length;
	buf = malloc(*len + 1);
	assert_non_null(buf);
	memcpy(buf, s.map + sec->offset, *len);
	stream_close(&s);
	return buf;
}

/* A stream holding one section with @payload. */
static inline int trip_stream_of(const char *name, uint32_t instance, uint32_t version,
				 const void *payload, size_t len)
{
	int fd = trip_memfd();
	struct stream s;

	assert_int_equal(stream_open_write_fd(&s, fd), 0);
	stream_section_begin(&s, name, instance, version);
	stream_put(&s, payload, len);
	stream_section_end(&s);
	assert_int_equal(stream_close(&s), 0);
	return fd;
}

/* Both streams hold the same sections in the same order, byte for byte. */
static inline void trip_assert_same(int fd_a, int fd_b)
{
	struct stream a, b;

	assert_int_equal(stream_open_read_fd(&a, fd_a, "a"), 0);
	assert_int_equal(stream_open_read_fd(&b, fd_b, "b"), 0);
	assert_int_equal(a.nsections, b.nsections);
	for (unsigned i = 0; i < a.nsections; i++) {
		const struct stream_section *x = &a.sections[i], *y = &b.sections[i];

		assert_string_equal(x->name, y->name);
		assert_int_equal(x->instance, y->instance);
		assert_int_equal(x->version, y->version);
		assert_int_equal(x->length, y->length);
		assert_memory_equal(a.map + x->offset, b.map + y->offset, x->length);
	}
	stream_close(&a);
	stream_close(&b);
}

/* @vm's devices load @fd and save exactly the same sections again. */
static inline void trip_reload(struct vm *vm, int fd)
{
	int again;

	assert_int_equal(trip_load(vm, fd), 0);
	again = trip_save(vm);
	trip_assert_same(fd, again);
	close(again);
}

/*
 * A copy of stream @fd (every section, for every device of a VM) in which
 * the payload of @name/@instance has @n bytes at @offset replaced by
 * @bytes; with @n == 0 it is cut to @offset bytes, or with @offset at or
 * beyond its end one byte longer.  Loading it must be refused with a
 * reason that mentions @needle.
 */
static inline void trip_assert_patched_refused(struct vm *vm, int fd, const char *name,
					       uint32_t instance, size_t offset,
					       const void *bytes, size_t n, const char *needle)
{
	size_t len;
	uint8_t *p = trip_payload(fd, name, instance, &len);
	struct stream in, out;
	char why[256];
	int bad = trip_memfd();

	if (n) {
		assert_true(offset + n <= len);
		memcpy(p + offset, bytes, n);
	} else if (offset < len) {
		len = offset;
	} else {
		p[len++] = 0;
	}
	assert_int_equal(stream_open_read_fd(&in, fd, "trip"), 0);
	assert_int_equal(stream_open_write_fd(&out, bad), 0);
	for (unsigned i = 0; i < in.nsections; i++) {
		const struct stream_section *sec = &in.sections[i];
		bool target = sec->instance == instance && !strcmp(sec->name, name);

		stream_section_begin(&out, sec->name, sec->instance, sec->version);
		stream_put(&out, target ? p : in.map + sec->offset, target ? len : sec->length);
		stream_section_end(&out);
	}
	stream_close(&in);
	assert_int_equal(stream_close(&out), 0);
	assert_int_not_equal(trip_load_why(vm, bad, why, sizeof(why)), 0);
	if (!strstr(why, needle))
		fail_msg("refused for '%s', expected a reason with '%s'", why, needle);
	close(bad);
	free(p);
}
