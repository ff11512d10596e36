/* vmpoold's state: the pool, its workers, its tenants and the loop. */
#ifndef VMPOOL_SUPERVISOR_H
#define VMPOOL_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/ioloop.h"
#include "proto/proto.h"
#include "shm/pool.h"
#include "shm/shm.h"
#include "supervisor/options.h"
#include "worker/control.h"

#define SV_MAX_TENANTS	 1024
#define SV_KILL_AFTER_NS (2ull * 1000000000) /* CTL_STOP, then SIGKILL */
#define SV_BACKOFF_MIN	 (100ull * 1000000)  /* after a failed boot */
#define SV_BACKOFF_MAX	 (30ull * 1000000000)
#define SV_TICK_NS	 (1000ull * 1000000) /* longest sleep */
/* How long idle VMs may stay short of min_size before boots start. */
#define SV_REFILL_SETTLE_NS (50ull * 1000000)

/* What vmpoold knows of a worker; the slot table has the pool's view. */
enum sv_wstate {
	W_BOOTING,  /* forked; waiting for CTL_READY */
	W_IDLE,	    /* ready, in the idle ring */
	W_LEASED,   /* holds a tenant's connection, or recycles it */
	W_STOPPING, /* told to stop, or exiting on its own */
	W_GONE,	    /* reaped; freed when its ops are done */
	W_NSTATES
};

enum sv_wevent {
	WEV_READY,     /* CTL_READY */
	WEV_BOOT_FAIL, /* CTL_BOOT_FAIL */
	WEV_RECYCLED,  /* CTL_RECYCLED */
	WEV_EVICTED,   /* CTL_EVICTED */
	WEV_LEASE,     /* a tenant's connection goes to it */
	WEV_STOP,      /* expiry, eviction, drain */
	WEV_EXIT,      /* its pidfd said it exited */
	WEV_KILL,      /* CTL_STOP went unanswered for SV_KILL_AFTER_NS */
	WEV_NEVENTS
};

struct sv_tenant;

struct sv_worker {
	struct sv *sv;
	uint32_t slot;
	uint32_t purpose; /* enum boot_purpose */
	enum sv_wstate state;
	pid_t pid;
	int pidfd;
	int ctl_fd;
	uint64_t started_ns;
	uint64_t stop_ns; /* when CTL_STOP went out; 0: not sent */
	bool killed;
	bool ready;		  /* it sent CTL_READY */
	bool boot_failed;	  /* it sent CTL_BOOT_FAIL */
	unsigned leases_ahead;	  /* READY or RECYCLED messages still due
				   * from before a lease (see
				   * sv_worker_leasable) */
	int exit_code;		  /* from waitid: code, or 128 + signal */
	struct sv_tenant *parked; /* waiting for this miss boot */
	struct ioloop_op ctl_op;
	struct ioloop_op pid_op;
	char why[160]; /* the worker's CTL_BOOT_FAIL text */
	struct sv_worker *next;
};

enum sv_tstate {
	T_READING, /* frames before ACQUIRE */
	T_PARKED,  /* waiting for a miss boot */
	T_CLOSING, /* fd closed; freed when its read is done */
};

struct sv_tenant {
	struct sv *sv;
	int fd;
	uid_t uid;
	enum sv_tstate state;
	struct proto_reader rd;
	struct ioloop_op read_op;
	uint32_t acquire_id;	  /* the ACQUIRE's request id */
	uint64_t t0;		  /* when ACQUIRE was read */
	bool lone;		  /* no other ACQUIRE shortly before */
	uint64_t deadline;	  /* parked: NO_CAPACITY after this */
	struct sv_worker *worker; /* parked on */
	struct sv_tenant *next;
};

struct sv {
	struct sv_options opt;
	struct shm *shm;
	uint32_t nslots;
	struct ioloop loop;
	int listen_fd;
	int signal_fd;
	struct ioloop_op accept_op;
	struct ioloop_op signal_op;

	struct sv_worker **by_slot; /* live (not reaped) workers */
	struct sv_worker *workers;  /* all, reaped ones until freed */
	struct sv_tenant *tenants;
	unsigned ntenants;

	/* Boot failures in a row, and when booting may resume. */
	unsigned boot_failures;
	uint64_t boot_resume_ns;
	bool permfail;
	char permfail_why[200];
	unsigned respawns_due;
	uint64_t short_since; /* since when idle VMs are short; 0: not */
	uint64_t last_acquire_ns;

	bool draining;
	uint64_t drain_deadline;
	bool done;
	int exit_code;
};

/* workers.c */
int sv_worker_spawn(struct sv *sv, uint32_t slot, enum boot_purpose why,
		    struct sv_worker **out);
void sv_worker_event(struct sv_worker *w, enum sv_wevent ev);
/* Whether a slot the pool has just leased can go to this worker. */
bool sv_worker_leasable(const struct sv_worker *w);
/* The generation of the worker's slot, read under the lock. */
uint32_t sv_worker_generation(const struct sv_worker *w);
/* Hand a tenant's connection to the worker of a leased slot of that
 * generation; value is CTL_LEASE's (CTL_LEASE_ANSWERED or 0). 0 or
 * -errno. */
int sv_worker_lease(struct sv_worker *w, int fd, uint32_t uid, uint32_t id,
		    uint64_t t0, uint64_t value, uint32_t generation);
/* Periodic duties: expiry, replenish, stop dead slots, kill stuck
 * stoppers; returns the next time they are due. */
uint64_t sv_workers_tick(struct sv *sv, uint64_t now);
unsigned sv_workers_live(const struct sv *sv);
void sv_workers_stop_all(struct sv *sv, bool leased_too);
void sv_workers_kill_all(struct sv *sv);
void sv_workers_free_all(struct sv *sv);
/* Undo a boot reservation nobody will run. */
void sv_slot_abandon(struct sv *sv, uint32_t slot);

/* tenants.c */
int sv_tenants_listen(struct sv *sv);
/* A tenant's connection back from a worker after a RELEASE that kept
 * it: read like a new one. Takes fd. */
void sv_tenant_adopt(struct sv *sv, int fd);
/* A parked tenant's boot is ready (leased to it) or lost. */
void sv_tenant_boot_ready(struct sv_tenant *t, struct sv_worker *w);
void sv_tenant_boot_lost(struct sv_tenant *t, const char *why);
uint64_t sv_tenants_tick(struct sv *sv, uint64_t now);
void sv_tenants_drain(struct sv *sv);
void sv_tenants_close_all(struct sv *sv);

/* Reply ERROR to a tenant; 0 or -errno. */
int sv_send_error(int fd, uint32_t id, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
