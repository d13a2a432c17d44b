/*
 * snapcmp A B: compare two snapshots section by section (vmm/stream.h).
 * Both must pass the stream's own checks; every section of one must be
 * in the other with the same version, length and payload.  Prints the
 * first difference (the section and the first differing byte) and exits
 * 1, or prints the number of identical sections and exits 0; 2 for usage
 * or an unreadable file.
 */
#include <stdio.h>
#include <string.h>
#include "vmm/stream.h"

static int open_one(struct stream *s, const char *path)
{
	if (stream_open_read(s, path) == 0)
		return 0;
	fprintf(stderr, "snapcmp: %s\n", stream_why(s));
	stream_close(s);
	return -1;
}

static unsigned long long first_diff(const uint8_t *a, const uint8_t *b, uint64_t len)
{
	uint64_t i = 0;

	while (i < len && a[i] == b[i])
		i++;
	return (unsigned long long)i;
}

/* Every section of @a against @b: 0 if all match. */
static int compare(struct stream *a, struct stream *b, const char *an, const char *bn)
{
	for (unsigned i = 0; i < a->nsections; i++) {
		const struct stream_section *x = &a->sections[i];
		const struct stream_section *y = stream_section_find(b, x->name, x->instance);

		if (!y) {
			printf("section %s/%u: in %s only\n", x->name, x->instance, an);
			return 1;
		}
		if (x->version != y->version || x->length != y->length) {
			printf("section %s/%u: version %u length %llu in %s, version %u length %llu "
			       "in %s\n", x->name, x->instance, x->version,
			       (unsigned long long)x->length, an, y->version,
			       (unsigned long long)y->length, bn);
			return 1;
		}
		if (x->crc != y->crc || memcmp(a->map + x->offset, b->map + y->offset, x->length)) {
			printf("section %s/%u: differs at payload byte %llu of %llu\n", x->name,
			       x->instance, first_diff(a->map + x->offset, b->map + y->offset,
						       x->length), (unsigned long long)x->length);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct stream a, b;
	int ret;

	if (argc != 3) {
		fprintf(stderr, "usage: snapcmp SNAPSHOT-A SNAPSHOT-B\n");
		return 2;
	}
	if (open_one(&a, argv[1]))
		return 2;
	if (open_one(&b, argv[2])) {
		stream_close(&a);
		return 2;
	}
	ret = compare(&a, &b, argv[1], argv[2]);
	if (!ret)
		ret = compare(&b, &a, argv[2], argv[1]);
	if (!ret)
		printf("%u sections identical\n", a.nsections);
	stream_close(&a);
	stream_close(&b);
	return ret;
}
