/* libvmpool's handles and the helpers its files share. */
#ifndef VMPOOL_CLIENT_INTERNAL_H
#define VMPOOL_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/un.h>

#include "client/vmpool.h"
#include "proto/client.h"

#define ERR_LEN 256

/*
 * A connection that vmpoold took back after a lease's RELEASE, ready for
 * the pool's next ACQUIRE (no connect). The pool and its leases share
 * it, leases possibly on other threads; the last reference frees it.
 * All take NULL (nothing is kept then).
 */
struct keep {
	pthread_mutex_t lock;
	unsigned refs;
	bool closed; /* the pool is closed: nothing more is kept */
	bool have;
	struct proto_client c;
};

struct keep *keep_new(void);
struct keep *keep_ref(struct keep *k);
void keep_unref(struct keep *k);
/* The pool is closed: drop what is kept, and the pool's reference. */
void keep_close(struct keep *k);
/* Keep c (moved out of *c) unless one is kept already: true if kept. */
bool keep_put(struct keep *k, struct proto_client *c);
/* Move the kept connection into *c: true, or false when none. */
bool keep_take(struct keep *k, struct proto_client *c);

struct vmpool {
	int fd; /* the pool connection; -1 once a lease took it */
	bool have_client;
	struct proto_client c;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint32_t code;
	char err[ERR_LEN];
	struct keep *keep;
	uint64_t spin_ns; /* how long an acquire spins for its answer */
};

struct vmpool_lease {
	int fd;
	struct proto_client c;
	struct keep *keep; /* where RELEASE leaves the connection */
	bool reused;	   /* the connection was kept from an earlier lease */
	struct vmpool_lease_info info;
	bool lost;
	uint32_t code;
	char err[ERR_LEN];
};

/* The errno value (negative) for an ERROR frame's wire code, tenant
 * codes included. */
int client_code_errno(uint32_t code);

/* Send the frame built in c->out and wait for the reply to its id: 0
 * and the reply (of type want) in *f, or -errno with *code and err
 * filled when the peer answered ERROR. */
int client_call(struct proto_client *c, struct proto_msg *m, uint16_t want,
		struct proto_frame *f, uint32_t *code, char *err, size_t len);

/* Whether a lease operation may start (not after the VM was lost);
 * clears the last agent error. 0 or -ECONNRESET. */
int lease_begin(struct vmpool_lease *l, const char *what);

/* Record how a lease operation named `what` ended; returns r, or
 * -ECONNRESET once the VM is lost. */
int lease_done(struct vmpool_lease *l, const char *what, int r);

#endif
