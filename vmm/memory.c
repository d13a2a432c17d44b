/*
 * Guest RAM and bounds-checked guest-physical access.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "vmm/memory.h"

static int map_region(struct guest_memory *mem, uint64_t gpa, uint64_t size)
{
	void *host = mmap(NULL, size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (host == MAP_FAILED)
		return -errno;
	madvise(host, size, MADV_MERGEABLE);
	mem->region[mem->count++] = (struct mem_region){ .gpa = gpa, .size = size, .host = host };
	return 0;
}

int guest_memory_init(struct guest_memory *mem, uint64_t size)
{
	uint64_t low = size < GUEST_PCI_HOLE_START ? size : GUEST_PCI_HOLE_START;
	int err;

	memset(mem, 0, sizeof(*mem));
	if (size < (1u << 20) || size % 4096)
		return -EINVAL;
	mem->size = size;
	err = map_region(mem, 0, low);
	if (!err && size > low)
		err = map_region(mem, GUEST_HIGH_RAM_START, size - low);
	if (err)
		guest_memory_free(mem);
	return err;
}

void guest_memory_free(struct guest_memory *mem)
{
	for (unsigned i = 0; i < mem->count; i++)
		munmap(mem->region[i].host, mem->region[i].size);
	mem->count = 0;
}

void *gpa_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < mem->count; i++) {
		const struct mem_region *r = &mem->region[i];

		/* Written so that no sum can overflow. */
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

int gpa_read(const struct guest_memory *mem, uint64_t gpa, void *buf, uint64_t len)
{
	void *p = gpa_ptr(mem, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(buf, p, len);
	return 0;
}

int gpa_write(const struct guest_memory *mem, uint64_t gpa, const void *buf, uint64_t len)
{
	void *p = gpa_ptr(mem, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, buf, len);
	return 0;
}

uint64_t guest_low_ram_end(const struct guest_memory *mem)
{
	return mem->count ? mem->region[0].size : 0;
}

uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !isdigit((unsigned char)*s))
		return 0;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno)
		return 0;
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	case '\0': break;
	default: return 0;
	}
	if ((*end == 'B' || *end == 'b') && shift)
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return 0;
	return (uint64_t)v << shift;
}
