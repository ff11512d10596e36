/* vmpool-chaos: break a live pool on purpose, then prove nothing was lost. */
#ifndef VMPOOL_TOOLS_CHAOS_H
#define VMPOOL_TOOLS_CHAOS_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shm/layout.h"

#define CHAOS_MAX_THREADS 32
#define CHAOS_MAX_CHECKS  16

/* The environment of a worker started through vmpool-chaos itself: it
 * takes the next planned fault point, then becomes vmpool-worker. */
#define CHAOS_PLAN_ENV	 "VMPOOL_CHAOS_PLAN"
#define CHAOS_WORKER_ENV "VMPOOL_CHAOS_WORKER"

/* How a guest kernel's panic begins; the worker passes it on. */
#define CHAOS_PANIC_MARK "Kernel panic - not syncing"

enum chaos_kind {
	CK_KILL,	   /* SIGKILL a worker */
	CK_STOP_CONT,	   /* SIGSTOP a worker, SIGCONT it a while later */
	CK_STOP_KILL,	   /* SIGSTOP a worker, SIGKILL it a while later */
	CK_FAULT_POINT,	   /* the next worker spawned dies at a named point */
	CK_GUEST_STALL,	   /* the guest's init stopped a while, then resumed */
	CK_GUEST_HANG,	   /* the guest's init stopped for good at release */
	CK_GUEST_GARBAGE,  /* a frame no agent sends, from the guest's end */
	CK_GUEST_PANIC,	   /* the guest kernel panics under a tenant (kvm) */
	CK_TENANT_VANISH,  /* a tenant leaves in the middle of a request */
	CK_TENANT_GARBAGE, /* a tenant sends frames that make no sense */
	CK_NKINDS
};

/* How one workload request ended. */
enum chaos_result {
	CR_OK,
	CR_VM_LOST,	/* the pool said so: its worker or VM died */
	CR_NO_CAPACITY, /* no VM within the acquire timeout */
	CR_GUEST,	/* the guest broke the protocol and was evicted */
	CR_POOL_OTHER,	/* another error code from the pool */
	CR_LOCAL,	/* an errno with no code from the pool */
	CR_WRONG,	/* an answer that is not what was asked for */
	CR_NRESULTS
};

struct chaos_opts {
	const char *name;   /* an existing pool's segment; NULL: private */
	const char *socket; /* an existing pool's socket */
	const char *backend;
	uint64_t count;	      /* faults to inject; 0: until duration */
	uint64_t duration_ns; /* 0: until count */
	uint64_t seed;
	uint64_t interval_ns; /* mean pause between faults */
	uint64_t hang_ns;     /* a request pending this long is hung */
	uint64_t settle_ns;   /* longest wait for the pool to settle */
	uint32_t min_size, max_size, max_total;
	uint32_t threads;
	uint32_t kinds; /* bit per enum chaos_kind */
	bool kvm; /* backend kvm: guest faults come from inside the guest */
	bool json;
	bool verbose;
	bool keep;
};

/* A successful lease as its tenant saw it. */
struct chaos_lease {
	uint32_t slot;
	uint32_t generation;
	uint64_t leased_ns;	  /* LEASED received */
	uint64_t last_ok_sent_ns; /* latest request sent that succeeded */
};

/* A worker a fault should end; its pool must recover. */
struct chaos_victim {
	enum chaos_kind kind;
	pid_t pid;
	int pidfd;
	uint32_t slot;
	uint64_t t_ns;	       /* fault injected (or the armed worker died) */
	uint64_t dead_ns;      /* 0: still running */
	uint64_t recovered_ns; /* back to min_size idle; 0: not yet */
	bool killed_by_us;     /* fault points: it died of another fault */
	bool fell_below;       /* idle went under min_size after its death */
};

/* A process, told apart from a later one with its pid by its start. */
struct chaos_proc {
	pid_t pid;
	uint64_t start; /* clock ticks after boot */
};

struct chaos_check {
	const char *name;
	bool ok;
	char detail[240];
};

struct chaos_load; /* the workload threads (chaos_load.c) */
struct vmpool;	   /* client/vmpool.h */

struct chaos {
	struct chaos_opts o;
	char name[SHM_NAME_MAX + 1];
	char sock[108];
	char self[PATH_MAX];   /* this program */
	char bindir[PATH_MAX]; /* where vmpoold and vmpool-worker are */
	bool private_pool;
	char dir[64];	   /* private pool: socket, log, fault plan */
	pid_t daemon_pid;  /* private pool: ours to reap */
	pid_t creator_pid; /* the supervisor, from the segment */
	struct shm *shm;   /* read-only */
	size_t snap_len;
	uint32_t min_size;
	uint64_t rng;
	uint64_t t_start, t_faults_end;

	pthread_mutex_t mu; /* everything below */
	uint64_t faults[CK_NKINDS];
	uint64_t skipped[CK_NKINDS];
	uint64_t requests[CR_NRESULTS];
	uint64_t hung;
	uint64_t fp_armed, fp_fired;
	/* Armed to _exit(FAULT_EXIT_CODE), and exits with it the pool's log
	 * shows (private pools: what is certain to have died at a point). */
	uint64_t fp_exit_armed, fp_exit_seen;
	uint64_t bad_tenant_unanswered;
	/* kvm: tenants whose guest panicked or sent garbage, told why by
	 * the pool or not; panics the workers logged. */
	uint64_t guest_told, guest_untold, panics_logged;
	char first_untold[240];
	char first_wrong[240];
	char first_hung[120];
	char first_bad_tenant[240];
	struct chaos_lease *leases;
	size_t nleases, leases_cap;
	struct chaos_victim *victims;
	size_t nvictims, victims_cap;
	struct chaos_proc *seen; /* workers and guests met: the leak check */
	size_t nseen, seen_cap;
	uint64_t snapshots, invariant_breaks;
	char first_break[240];

	volatile bool stop_monitor;
	struct chaos_load *load;

	struct chaos_check checks[CHAOS_MAX_CHECKS];
	int nchecks;
	uint64_t settle_ns;
};

/* chaos_main.c */
const char *chaos_kind_name(enum chaos_kind k);
const char *chaos_result_name(enum chaos_result r);
/* A seeded draw in [0, n); callers hold c->mu or own the state. */
uint64_t chaos_rand(uint64_t *state, uint64_t n);
void chaos_sleep_ns(uint64_t ns);
__attribute__((format(printf, 2, 3))) void chaos_note(const struct chaos *c,
						      const char *fmt, ...);

/* chaos_pool.c: the pool under test and its processes. */
/* Become vmpool-worker, armed with the planned fault point if any. */
int chaos_shim(int argc, char **argv);
int chaos_pool_start(struct chaos *c);
int chaos_pool_attach(struct chaos *c);
/* Drain the private pool (SIGTERM) and reap it: its exit status. */
int chaos_pool_stop(struct chaos *c, uint64_t timeout_ns);
void chaos_pool_cleanup(struct chaos *c);
/* A consistent copy of the segment into buf (c->snap_len bytes). */
int chaos_snapshot(struct chaos *c, void *buf);
/* The worker of slot (from the supervisor's children), or 0. */
pid_t chaos_worker_pid(struct chaos *c, uint32_t slot);
/* The guest's init under a worker (ns: the sandbox's PID 1), or 0. */
pid_t chaos_guest_pid(struct chaos *c, pid_t worker);
/* Children of pid over all its threads; how many were found. */
int chaos_children(pid_t pid, pid_t *out, int max);
/* A process's parent and start time, from /proc; 0 or -errno. */
int chaos_proc_stat(pid_t pid, pid_t *ppid, uint64_t *start);
/* Whether p still runs (the same process, not a reuse of its pid). */
bool chaos_proc_alive(const struct chaos_proc *p);
/* Remember a pid for the leak check. */
void chaos_seen(struct chaos *c, pid_t pid);
/* Ask the private pool's next worker to die at spec; 0 or -errno. */
int chaos_plan_fault(struct chaos *c, const char *spec);
/* The pid that took the planned fault, 0 while nobody has, -ENOENT
 * once withdrawn. */
pid_t chaos_plan_taken(struct chaos *c);
int chaos_plan_withdraw(struct chaos *c);

/* chaos_load.c: tenants doing honest work alongside. */
/* Keep a lease for the checks of leases_distinct and no_slot_held_twice. */
void chaos_record_lease(struct chaos *c, const struct chaos_lease *rec);
int chaos_load_start(struct chaos *c);
/* Ask the tenants to finish their lease and wait for them at most
 * timeout_ns (0: for ever); how many are still running. */
int chaos_load_stop(struct chaos *c, uint64_t timeout_ns);
/* Requests pending longer than the hang limit: counted once each. */
void chaos_load_watch(struct chaos *c, uint64_t now);

/* chaos_tenant.c: tenants that misbehave. */
int chaos_tenant_vanish(struct chaos *c, uint64_t *rng);
int chaos_tenant_garbage(struct chaos *c, uint64_t *rng);

/* chaos_faults.c: the injector. */
void chaos_faults_run(struct chaos *c);
/* A frame no agent sends (oversized, of an unknown type, or answering
 * nothing); its length. */
long chaos_garbage_frame(struct chaos *c, uint8_t *buf, size_t cap);

/* chaos_guest.c: guest faults made from inside a kvm guest, as a tenant
 * can, on a lease of pool; 0 or -errno when nothing was done. */
int chaos_guest_panic(struct chaos *c, struct vmpool *pool);
int chaos_guest_hang(struct chaos *c, struct vmpool *pool);
int chaos_guest_garbage(struct chaos *c, struct vmpool *pool);
int chaos_guest_stall(struct chaos *c, struct vmpool *pool);

/* chaos_check.c: the monitor during the run, the checks after it. */
int chaos_monitor_start(struct chaos *c, pthread_t *tid);
void chaos_monitor_stop(struct chaos *c, pthread_t tid);
/* Track a worker a fault should end; takes pidfd (opened before the
 * fault, so a reused pid cannot be mistaken for it). */
void chaos_add_victim(struct chaos *c, enum chaos_kind kind, pid_t pid,
		      int pidfd, uint32_t slot, uint64_t t_ns);
void chaos_check_leases(struct chaos *c);
void chaos_check_settled(struct chaos *c);
void chaos_check_after_stop(struct chaos *c, int daemon_status);
void chaos_add_check(struct chaos *c, const char *name, bool ok,
		     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* chaos_report.c */
void chaos_report(struct chaos *c);
bool chaos_passed(const struct chaos *c);

#endif
