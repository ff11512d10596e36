/* Test harness for vmpool-worker: the test plays vmpoold for one worker. */
#ifndef VMPOOL_TESTS_WORKER_HARNESS_H
#define VMPOOL_TESTS_WORKER_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/client.h"
#include "shm/pool.h"
#include "worker/control.h"

/* A safety net against a hung worker, not a speed goal. */
#define WORKER_TEST_TIMEOUT 60
#define WAIT_MS		    (30 * 1000)
#define TENANT_UID	    1000

/* One worker as its supervisor sees it. */
struct sup {
	struct shm *shm;
	char name[SHM_NAME_MAX + 1];
	uint32_t slot;
	int ctl;
	pid_t pid;
	/* The current lease. */
	struct proto_client c;
	bool leased;
	uint32_t generation;
};

struct output {
	char out[4096];
	size_t len;
};

/* The backend workers are started with, "ns" unless sup_use_kvm ran. */
extern const char *sup_backend;
/* Start workers with --backend kvm and the built guest kernel; skips
 * the test on a host without hardware KVM. */
void sup_use_kvm(void);

/* <builddir>/rel into out; skips the test when it is not built. */
void sup_build_path(char *out, size_t cap, const char *rel);
void sup_skip_without_namespaces(void);
/* A pool config: 0..4 VMs, long max_idle, health check every Nth. */
struct pool_config sup_config(uint32_t health_every);

/* A pool with one slot booting, and its worker started on image (a path
 * under the build dir, or absolute) with extra arguments. */
void sup_spawn(struct sup *s, const struct pool_config *cfg,
	       const char *image_rel, char **extra);
/* The same with the guest image, up to CTL_READY and the slot idle. */
void sup_spawn_ready(struct sup *s, const struct pool_config *cfg,
		     char **extra);
int sup_exec_worker(struct sup *s, const char *image, char **extra);
/* Stop the worker if it runs (it must exit 0), reap its slot, check the
 * pool and drop it. */
void sup_finish(struct sup *s);
/* The worker's exit code; fails if a signal ended it. */
int sup_wait_exit(struct sup *s);

/* The next control message, failing on EOF or after WAIT_MS. */
void sup_recv_ctl(struct sup *s, struct ctl_msg *m);
void sup_expect_ctl(struct sup *s, uint32_t type, struct ctl_msg *m);
struct shm_slot sup_slot_of(struct sup *s);
void sup_assert_invariants(struct sup *s);

/* Hand a tenant connection over as vmpoold does. */
void sup_send_lease(struct sup *s, int fd, uint32_t uid, uint32_t gen);
/* pool_acquire (a hit), CTL_LEASE, and the LEASED reply checked. */
void sup_lease(struct sup *s);
/* Close the tenant's end. */
void sup_end_lease(struct sup *s);
/* RELEASE, its OK and the connection's end; the next control message
 * in m. */
void sup_release(struct sup *s, struct ctl_msg *m);
/* The same, expecting the slot back idle. */
void sup_release_recycled(struct sup *s, struct ctl_msg *m);

/* Run a shell line as the tenant: its exit code, its stdout in o. */
int sup_sh(struct sup *s, const char *line, struct output *o);
void sup_assert_sh(struct sup *s, const char *line, const char *want);
/* Raw frames as the tenant: the next frame must be of type for id. */
void sup_recv_frame(struct sup *s, struct proto_frame *f, uint16_t type,
		    uint32_t id);
void sup_send_frame(struct sup *s, const void *buf, long n);
/* The next frame must be an ERROR for id: its code. */
uint32_t sup_recv_error(struct sup *s, uint32_t id);

#endif
