/* Helpers for the vmpoold suites: run a real daemon, talk to it raw. */
#ifndef VMPOOL_TESTS_SUPERVISOR_HELPERS_H
#define VMPOOL_TESTS_SUPERVISOR_HELPERS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/client.h"
#include "shm/layout.h"

struct daemon {
	pid_t pid;
	char name[SHM_NAME_MAX + 1];
	char dir[64];
	char sock[108];
	char log[96]; /* its stderr */
};

/* Paths of the build's programs, found next to the test binary. */
const char *test_vmpoold_path(void);
bool test_have_worker(void);

/* Run vmpoold with argv (NULL-terminated) and wait for its exit; its
 * stdout and stderr go to *out (malloc'd). Returns the exit status. */
int test_vmpoold_run(const char *const *args, char **out);

/* "--backend=ns" unless a suite picks another. */
extern const char *daemon_backend;

/* Start vmpoold (daemon_backend) with a unique name and socket, plus args
 * (NULL-terminated). Skips the test when vmpool-worker is not built. */
void daemon_start(struct daemon *d, const char *const *args);
/* Wait for its exit (bounded): the exit status, or -1. */
int daemon_wait(struct daemon *d, int timeout_ms);
/* SIGKILL it if still running, remove what it left. */
void daemon_stop(struct daemon *d);
/* Its log (the first 64 KiB) into the test's output, to say why. */
void daemon_show_log(const struct daemon *d);
/* Does its log hold `text`? */
bool daemon_log_has(const struct daemon *d, const char *text);
/* Wait (bounded) until its log holds `text`. */
bool wait_log(const struct daemon *d, const char *text, int timeout_ms);

/* A consistent copy of the pool's slot table and stats. */
struct pool_view {
	void *buf;
	struct shm_segment *seg;
	uint32_t count[SLOT_NSTATES];
};

/* Snapshot the pool (read-only attach); 0 or -errno. */
int pool_view_take(const char *name, struct pool_view *v);
void pool_view_free(struct pool_view *v);
/* Wait (bounded) until `state` has at least n slots and none booting
 * beyond that; returns the count reached. */
int wait_for_state(const char *name, enum slot_state state, uint32_t n,
		   int timeout_ms);
/* The worker pid of the first slot in `state`, or 0. */
pid_t pool_pid_in(const char *name, enum slot_state state);
/* Check every invariant on a fresh snapshot; asserts. */
void assert_pool_sound(const char *name);

/* Is pid gone (or a zombie nobody reaped yet)? */
bool pid_gone(pid_t pid);
/* Wait (bounded) for pid to be gone. */
bool wait_pid_gone(pid_t pid, int timeout_ms);
/* Children of pid (reads /proc/pid/task/x/children); count found. */
int children_of(pid_t pid, pid_t *out, int max);

/* A tenant connection. */
int tenant_connect(const struct daemon *d, struct proto_client *c);
/* Send ACQUIRE (timeout_ns) and wait for the answer: LEASED gives 0 and
 * *hit, ERROR gives its code (> 0), a lost connection -errno. */
int tenant_acquire(struct proto_client *c, uint64_t timeout_ns, bool *hit);
/* RELEASE: 0 once OK came back and the connection ended. */
int tenant_release(struct proto_client *c);
/* Send a frame of `type` with an empty payload; the reply's ERROR code,
 * 0 for another reply, -errno when the connection ended. */
int tenant_request(struct proto_client *c, uint16_t type, uint32_t *reply);
/* The value of one STATS entry, or -1. */
int64_t tenant_stat(struct proto_client *c, const char *name);

#endif
