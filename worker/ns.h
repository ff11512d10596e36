/* The ns backend: the guest agent as PID 1 of fresh Linux namespaces. */
#ifndef VMPOOL_NS_H
#define VMPOOL_NS_H

#include <stdint.h>
#include <sys/types.h>

/*
 * Isolation here is weaker than a VM's: the sandbox shares the host
 * kernel and runs as root of the host's user namespace, limited by
 * namespaces (pid, mount, net, ipc, uts, cgroup), a private tmpfs root,
 * a reduced capability bounding set (no CAP_SYS_ADMIN, CAP_SYS_MODULE,
 * CAP_MKNOD...) and read-only /proc/sys and /sys.
 */

/* How memory and process limits are enforced for a sandbox. */
enum ns_limits {
	NS_LIMITS_NONE,	   /* no limit was asked for */
	NS_LIMITS_CGROUP2, /* a child cgroup in the unified hierarchy */
	NS_LIMITS_CGROUP1, /* child cgroups in the v1 memory and pids trees */
	NS_LIMITS_RLIMIT,  /* RLIMIT_AS and RLIMIT_NPROC only: weak */
};

struct ns_opts {
	const char *image;    /* cpio newc archive: the sandbox's root */
	uint64_t mem_limit;   /* bytes for the whole sandbox; 0: none */
	unsigned pids_limit;  /* tasks in the sandbox; 0: none */
	uint64_t root_size;   /* bytes of the root tmpfs; 0: 256 MiB */
	const char *hostname; /* NULL: "vmpool" */
	int log_fd;	      /* the agent's stderr; -1: /dev/null */
	enum ns_limits want;  /* NS_LIMITS_NONE: the best available */
};

/* Where a sandbox's cgroup directories are (one for v2, two for v1). */
#define NS_MAX_CGROUPS 2
#define NS_CGROUP_PATH 256

struct ns_sandbox {
	int chan_fd; /* host end of the agent's channel (a stream) */
	pid_t pid;   /* the agent, PID 1 inside, as the host sees it */
	int pidfd;   /* for poll and waitid; closed by ns_sandbox_stop */
	enum ns_limits limits;
	/* After a failed start: the step that failed ("pivot_root"). */
	const char *why;
	char cgroups[NS_MAX_CGROUPS][NS_CGROUP_PATH];
};

/* The channel's fd number inside the sandbox, named by the agent's
 * environment as VMPOOL_CHANNEL_FD. */
#define NS_CHANNEL_FD 3

/*
 * Start the agent (the image's /init) as PID 1 of new namespaces on a
 * private tmpfs root holding the image. Returns once /init has been
 * executed, with the channel, pid and pidfd in *out; or -errno with
 * out->why naming the step that failed, and nothing left running.
 *
 * The sandbox gets SIGKILL when the thread that started it exits, so
 * start sandboxes from a thread that lives as long as they should. Safe
 * to call from a multithreaded process: the child allocates nothing.
 */
int ns_sandbox_start(const struct ns_opts *opts, struct ns_sandbox *out);

/* Kill every process of the sandbox, reap its PID 1, close the channel
 * and remove its cgroups. Its mounts die with its mount namespace.
 * Returns 0 or the first -errno met; everything is released anyway. */
int ns_sandbox_stop(struct ns_sandbox *sb);

/* Remove what sandboxes of crashed starters left behind (their cgroups:
 * their processes die with the starter). Call before starting new ones,
 * e.g. when a supervisor starts. Returns the number of cgroups removed. */
int ns_sandbox_sweep(void);

/* "cgroup2", "cgroup1", "rlimit" or "none". */
const char *ns_limits_name(enum ns_limits limits);

#endif
