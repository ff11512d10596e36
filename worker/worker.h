/* vmpool-worker: one process owning one guest for its whole life. */
#ifndef VMPOOL_WORKER_H
#define VMPOOL_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/ioloop.h"
#include "proto/proto.h"
#include "shm/shm.h"
#include "worker/backend.h"
#include "worker/control.h"
#include "worker/relay.h"

/* The guest died under the worker: a crash as far as the pool goes. */
#define WORKER_EXIT_GUEST_LOST 70

/* Stop reading one side while this much waits for the other. */
#define WORKER_QUEUE_HIGH (1u << 20)

struct worker_opts {
	const char *pool;
	uint32_t slot;
	int ctl_fd;
	struct backend_opts be;
	uint64_t health_timeout_ns;
	uint64_t boot_timeout_ns;
	uint64_t idle_ping_ns;	   /* the watchdog's PING interval */
	uint64_t guest_timeout_ns; /* ...and how long its PONG may take */
	uint64_t poll_ns;	   /* the loop's poll window; 0: none */
	bool verbose;
};

/* Parse the command line; 0, or -EINVAL with the reason in err. */
int worker_parse_args(int argc, char **argv, struct worker_opts *o, char *err,
		      size_t errlen);

enum worker_state {
	WORKER_BOOTING,	  /* waiting for the agent's HELLO */
	WORKER_IDLE,	  /* in the pool, waiting for CTL_LEASE */
	WORKER_LEASED,	  /* serving a tenant */
	WORKER_RECYCLING, /* health check and clean after a lease */
	WORKER_DONE,	  /* leaving with exit_code */
};

/* The connection of the leasing tenant. Freed once its poll has ended. */
struct tenant {
	struct worker *w;
	int fd;
	struct ioloop_op op;
	struct ioloop_op out_op; /* POLLOUT, while out holds bytes */
	struct proto_reader rd;
	struct relay_queue out;
	struct tenant *next; /* in worker.closed */
	bool closing;	     /* lease over: fd closed, waiting for the poll */
	bool draining; /* RELEASE answered: send what is queued, then close */
	bool keep;     /* ...or hand it back to vmpoold instead of closing */
};

/* The worker's own requests while recycling. */
struct recycle {
	uint32_t ping_id, hc_id, clean_id;
	bool pong, hc_wanted, hc_done, hc_ok, cleaned;
	char hc_why[96]; /* how the health check ended, when it failed */
};

/* The watchdog's PING while idle or leased. */
struct watchdog {
	uint32_t ping_id; /* unanswered, or 0 */
	bool waiting;	  /* the timer runs for its PONG */
};

struct worker {
	struct worker_opts o;
	struct shm *shm;
	struct ioloop loop;
	struct backend be;
	struct relay relay;
	enum worker_state state;
	int exit_code;
	char lost_msg[200]; /* what a tenant hears when the VM ends */
	uint32_t next_host_id;

	struct ioloop_op guest_op;
	struct ioloop_op guest_out_op; /* POLLOUT, while to_guest holds bytes */
	struct proto_reader guest_rd;
	struct relay_queue to_guest;

	struct ioloop_op death_op;
	struct ioloop_op ctl_op;
	int timer_fd;
	struct ioloop_op timer_op;

	struct tenant *tenant;
	struct tenant *closed;	      /* closed, to be freed by the main loop */
	struct proto_reader spare_rd; /* a closed tenant's, for the next */
	bool resume_guest;	 /* a paused side may read again: the main */
	bool resume_tenant;	 /* loop does it, outside any frame handler */
	bool next_lease_is_miss; /* booted for a lease not yet served */
	struct recycle rc;
	struct watchdog wd;
};

/* worker_io.c: the channel, tenant and control sockets on the loop. */
int worker_watch(struct worker *w);
void worker_arm_timer(struct worker *w, uint64_t ns);
int worker_send_ctl(struct worker *w, uint32_t type, int32_t err,
		    uint64_t value, const char *text);
/* Queue a frame for the guest and try to send it. */
void worker_to_guest(struct worker *w, const void *frame, size_t len);
void worker_to_guest_frame(struct worker *w, const struct proto_frame *f);
/* Queue a frame for the tenant, if there is one, and try to send it. */
void worker_to_tenant(struct worker *w, const void *frame, size_t len);
void worker_to_tenant_frame(struct worker *w, const struct proto_frame *f);
void worker_tenant_error(struct worker *w, uint32_t id, uint32_t code,
			 const char *msg);
/* Start serving a tenant's connection; -errno. */
int worker_tenant_open(struct worker *w, int fd);
/* Close the tenant's connection now. */
void worker_tenant_close(struct worker *w);
/* Hand the connection back to vmpoold, then send it ok (a kept
 * RELEASE's answer); 0 when it cannot be done at once. */
int worker_tenant_return(struct worker *w, const void *ok, size_t len);
/* Read whatever a side has waiting; never from inside a frame handler
 * (set resume_guest / resume_tenant instead). */
void worker_guest_resume(struct worker *w);
void worker_tenant_resume(struct worker *w);
/* Free closed tenant connections that no poll holds any more (all:
 * every one, once the loop is gone). */
void worker_reap_tenants(struct worker *w, bool all);

/* worker_lease.c: the slot's life after boot. */
void worker_guest_frame(struct worker *w, const struct proto_frame *f);
void worker_tenant_frame(struct worker *w, const struct proto_frame *f);
void worker_tenant_gone(struct worker *w);
void worker_lease(struct worker *w, const struct ctl_msg *m, int fd);
void worker_timeout(struct worker *w);
/* The guest broke the protocol or is not fit: evict it and leave. */
void worker_evict(struct worker *w, const char *why);
/* Report a failed boot to the pool and the supervisor; leave with code. */
void worker_boot_failed(struct worker *w, int err, int code, const char *why);
/* The guest is gone: tell the tenant, leave as a crash. */
void worker_guest_lost(struct worker *w, const char *why);
/* Leave with code; the tenant, if any, is told the VM is lost. */
void worker_finish(struct worker *w, int code);
/* Answer leases still queued on the control socket with an ERROR. */
void worker_refuse_leases(struct worker *w, uint32_t code, const char *msg);
/* A fresh id for the worker's own requests (TENANT_ID_HOST set). */
uint32_t worker_host_id(struct worker *w);

/* worker_watchdog.c: a guest hung while idle or leased is evicted. */
/* Start the PING interval: on entering WORKER_IDLE or WORKER_LEASED. */
void worker_watchdog_arm(struct worker *w);
/* The timer fired while idle or leased. */
void worker_watchdog_tick(struct worker *w);
/* A host reply: true when it answers the watchdog's PING. */
bool worker_watchdog_reply(struct worker *w, const struct proto_frame *f);

#endif
