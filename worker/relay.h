/* The worker's relay: which tenant and guest frames pass, and byte queues. */
#ifndef VMPOOL_RELAY_H
#define VMPOOL_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

/*
 * The relay keeps a table of the tenant's open requests, so that every
 * guest frame can be checked against a question somebody asked. A guest
 * answering an id nobody asked, or with a reply that does not fit the
 * request, has broken the protocol and is evicted.
 *
 * Tenant follow-ups (STDIN, KILL, WRITE_CHUNK, WRITE_END) are checked
 * here before the agent sees them, so that the agent's only ERROR under
 * an open id is its final answer. The two races left (a KILL or STDIN
 * crossing the command's EXIT, chunks after a failed write) make the
 * agent answer ERROR to an id just closed: such errors are dropped.
 */

/* Open requests at once: the agent's own limit plus quick ones. */
#define RELAY_MAX_OPEN (2 * PROTO_MAX_INFLIGHT)
/* Ids closed lately whose stray ERROR is still expected. */
#define RELAY_RECENT 64

struct relay_entry {
	uint32_t id;
	uint16_t type;	 /* the request that opened it; 0: free */
	bool orphan;	 /* its tenant left: replies are dropped */
	bool stdin_open; /* EXEC with stdin, no EOF sent yet */
	bool ended;	 /* WRITE_END sent */
	bool failed;	 /* a write that got its ERROR */
};

struct relay {
	struct relay_entry open[RELAY_MAX_OPEN];
	unsigned nopen;
	uint32_t recent[RELAY_RECENT];
	unsigned recent_next;
	char why[160]; /* reason of the last REFUSE or EVICT */
};

enum relay_verdict {
	RELAY_FORWARD, /* pass the frame on unchanged */
	RELAY_REFUSE,  /* tenant frame: answer ERROR code + why instead */
	RELAY_DROP,    /* say nothing */
	RELAY_HOST,    /* guest frame for the worker's own request */
	RELAY_EVICT,   /* the guest broke the protocol: why */
};

void relay_init(struct relay *r);

/* Judge one tenant frame (a tenant-protocol type such as RELEASE is the
 * caller's to handle first). REFUSE sets *code to the wire code. */
enum relay_verdict
relay_from_tenant(struct relay *r, const struct proto_frame *f, uint32_t *code);

/* Judge one guest frame; the caller has not checked it yet. */
enum relay_verdict relay_from_guest(struct relay *r,
				    const struct proto_frame *f);

/* The tenant left: replies to its requests are dropped from now on.
 * Returns how many writes it left without WRITE_END; their ids are put
 * in ids (at most max), for the caller to end them in the agent. */
unsigned relay_orphan_all(struct relay *r, uint32_t *ids, unsigned max);

/* Requests still open (the tenant's, or orphans still finishing). */
unsigned relay_open_count(const struct relay *r);

/* Ids of the tenant's open requests (not orphans), at most max. */
unsigned relay_tenant_ids(const struct relay *r, uint32_t *ids, unsigned max);

/*
 * A byte queue for one direction of a non-blocking stream socket. It
 * grows as needed and gives its memory back once drained.
 */
struct relay_queue {
	uint8_t *buf;
	size_t start, end, cap;
};

void relay_queue_free(struct relay_queue *q);
size_t relay_queue_len(const struct relay_queue *q);
/* Append bytes; 0 or -ENOMEM. */
int relay_queue_put(struct relay_queue *q, const void *p, size_t n);
/* Append a frame: f's header and payload. */
int relay_queue_frame(struct relay_queue *q, const struct proto_frame *f);
/* Send what is queued with MSG_DONTWAIT | MSG_NOSIGNAL: 0 when empty,
 * -EAGAIN when the socket is full, else -errno (-EPIPE: peer gone). */
int relay_queue_flush(struct relay_queue *q, int fd);

#endif
