/* Per-sandbox memory and process limits: cgroup v2, v1, or rlimits. */
#ifndef VMPOOL_NS_LIMITS_H
#define VMPOOL_NS_LIMITS_H

#include "worker/ns.h"

/* In the starting process: pick the best mechanism the host offers (or
 * opts->want), create the sandbox's cgroups and write their limits.
 * Sets sb->limits and sb->cgroups; 0 or -errno. */
int ns_limits_create(const struct ns_opts *opts, struct ns_sandbox *sb);

/* In the starting process, while the sandbox sets itself up: move its
 * first process into the sandbox's cgroups (a no-op for rlimits).
 * Moving a task costs an RCU grace period, so it overlaps that setup
 * rather than preceding it; the image's pages written meanwhile stay
 * charged to the starter. 0 or -errno. */
int ns_limits_join(const struct ns_sandbox *sb, pid_t pid);

/* In the sandbox's first process, before exec: set its rlimits when no
 * cgroup is used. Allocates nothing. 0 or -errno. */
int ns_limits_enter(const struct ns_opts *opts, const struct ns_sandbox *sb);

/* Once the sandbox is reaped: remove its cgroups. 0 or -errno. */
int ns_limits_remove(struct ns_sandbox *sb);

/* Remove the cgroups of sandboxes whose starter died without stopping
 * them; returns how many were removed. */
int ns_limits_sweep(void);

#endif
