/*
 * The live-migration wire format (doc/migration.md) and the socket
 * helpers both ends share.
 *
 * Every message is a 16-byte header followed by @len payload bytes:
 *
 *   u32 type   u32 len   u32 payload-crc   u32 header-crc
 *
 * CRC-32 (zlib) of the payload, and of the first 12 header bytes.
 * Integers are little-endian (both ends are x86).  The receiver checks
 * the header CRC, the type and the length limit before it reads the
 * payload, and the payload CRC before it looks inside.
 *
 * Source → destination: HELLO, then PAGES (and VERIFY) in any number,
 * then STATE.  Destination → source: ACCEPT or REFUSE after HELLO, and
 * RUNNING or REFUSE after STATE.  REFUSE carries the reason as text.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vmm/memory.h"

#define MIG_MAGIC "VMMMIGR"            /* 8 bytes with the NUL */
#define MIG_VERSION 1
#define MIG_PAGE 4096u
#define MIG_BATCH_PAGES 256u           /* pages per PAGES message */
#define MIG_MAX_PAYLOAD (16u << 20)    /* anything longer is refused */
#define MIG_VERIFY_CHUNK 65536u        /* page checksums per VERIFY message */

enum mig_type {
	MIG_HELLO = 1,    /* struct mig_hello */
	MIG_ACCEPT,       /* empty */
	MIG_REFUSE,       /* the reason, text without NUL */
	MIG_PAGES,        /* struct mig_pages, u64 entry[count], page data */
	MIG_VERIFY,       /* struct mig_verify, u32 crc[count] */
	MIG_STATE,        /* a vm_state stream (vCPUs and devices), vmm/stream.h */
	MIG_RUNNING,      /* empty: the destination applied everything and runs */
	MIG_TYPE_MAX,
};

struct mig_header {
	uint32_t type;
	uint32_t len;
	uint32_t crc;
	uint32_t hdr_crc;
};

/* HELLO flags. */
#define MIG_F_ZSTD   1u   /* PAGES data may be zstd frames */
#define MIG_F_VERIFY 2u   /* VERIFY messages come before STATE */

struct mig_hello {
	char magic[8];
	uint32_t version;
	uint32_t flags;
	uint32_t ncpus;
	uint32_t nregions;
	struct { uint64_t gpa, size; } region[GUEST_MAX_REGIONS];
};

/*
 * PAGES: @count entries, each a page index within @region with
 * MIG_ENTRY_ZERO set for a page of zeros (no data); then the data of the
 * other pages in entry order, raw or (MIG_ENC_ZSTD) one zstd frame of
 * exactly their size.
 */
#define MIG_ENTRY_ZERO (1ull << 63)
enum { MIG_ENC_RAW = 0, MIG_ENC_ZSTD = 1 };

struct mig_pages {
	uint32_t region;
	uint32_t count;
	uint32_t encoding;
	uint32_t data_len;
};

/* VERIFY: CRC-32 of pages [first, first + count) of @region. */
struct mig_verify {
	uint32_t region;
	uint32_t count;
	uint64_t first;
};

struct mig_conn {
	int fd;
	uint64_t sent;        /* bytes written, headers included */
};

/* "tcp:HOST:PORT" (HOST may be empty or [v6]) or "unix:PATH". */
int mig_connect(const char *uri, char *err, size_t errlen);
/* Listen on @uri and accept one connection; polls so that a pending
 * SIGINT/SIGTERM/SIGHUP (blocked in this thread) aborts the wait. */
int mig_accept(const char *uri, char *err, size_t errlen);

int mig_send(struct mig_conn *c, uint32_t type, const void *payload, uint32_t len);
/* The same with the payload in two pieces (a message header, then data). */
int mig_send2(struct mig_conn *c, uint32_t type, const void *a, uint32_t alen,
	      const void *b, uint32_t blen);
/*
 * Receive one message into *@buf (grown as needed, up to MIG_MAX_PAYLOAD).
 * 0 with @hdr filled, or -errno with @err saying why (a bad header or
 * checksum is -EBADMSG).
 */
int mig_recv(struct mig_conn *c, struct mig_header *hdr, uint8_t **buf, size_t *cap,
	     char *err, size_t errlen);

uint32_t mig_crc(const void *p, size_t len);
bool mig_page_zero(const uint8_t *p);
