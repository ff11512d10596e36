/* Starting a worker: fork, then exec vmpool-worker on its control socket. */
#ifndef VMPOOL_SV_SPAWN_H
#define VMPOOL_SV_SPAWN_H

#include <fcntl.h>
#include <stdint.h>
#include <sys/types.h>

#include "supervisor/options.h"
#include "worker/control.h"

struct sv_spawned {
	pid_t pid;
	int pidfd;  /* CLOEXEC, for POLL_ADD and waitid */
	int ctl_fd; /* our end of the SOCK_SEQPACKET pair, CLOEXEC */
};

/*
 * Fork and exec the worker for `slot` (already reserved booting in the
 * pool) with the command line of worker/control.h's contract and the
 * options' extra environment. The child gets SIGKILL when we die. An
 * exec that fails makes the child exit WORKER_EXIT_PERMFAIL. 0 or -errno.
 */
int sv_spawn(const struct sv_options *o, uint32_t slot, struct sv_spawned *out);

#endif
