/* Named fault points: places in write paths where a test kills us. */
#ifndef VMPOOL_SHM_FAULT_H
#define VMPOOL_SHM_FAULT_H

#include "config.h"

enum fault_action {
	FAULT_KILL, /* SIGKILL ourselves: no cleanup of any kind */
	FAULT_EXIT, /* _exit(FAULT_EXIT_CODE): exit handlers skipped too */
};

#define FAULT_EXIT_CODE 86

/* Each slot step (see pool.c) has four points, named "<step>.journaled",
 * "<step>.left" (old state's ring entry and counts gone), "<step>.moved"
 * (new state written) and "<step>.counted" (all written, journal still
 * active). */
#define FAULT_STEPS(X)                                                         \
	X(acquire_hit)                                                         \
	X(acquire_miss)                                                        \
	X(expire)                                                              \
	X(boot)                                                                \
	X(ready)                                                               \
	X(boot_fail)                                                           \
	X(release)                                                             \
	X(recycle)                                                             \
	X(evict)                                                               \
	X(exit)

/* Plus these, in the lock: */
#define FAULT_LOCK_POINTS(X)                                                   \
	X("lock.held")		/* seq odd, nothing written */                 \
	X("unlock.before_seq")	/* all written, seq still odd */               \
	X("repair.rolled_back") /* journal undone, ring not rebuilt */         \
	X("repair.rebuilt")	/* ring rebuilt, counts not recomputed */

/* Every fault point's name, NULL-terminated, for tests that visit each. */
extern const char *const fault_point_names[];

/* Nonzero while some point is armed: the one branch a disarmed point
 * costs. */
extern int fault_armed;

/* Act at the nth time (1 = first) `name` is passed; "*" counts passes
 * of any point. Up to 8 points may be armed at once. 0, or -EINVAL for
 * an unknown name or nth of 0, -ENOSPC when 8 are armed, -EOPNOTSUPP
 * when the build has no fault points. */
int fault_arm(const char *name, unsigned nth, enum fault_action action);
void fault_disarm_all(void);

/* Arm from a spec "name[:nth[:kill|exit]]" (nth 1, kill by default), as
 * found in the VMPOOL_FAULT environment variable. */
int fault_arm_spec(const char *spec);
/* fault_arm_spec(getenv("VMPOOL_FAULT")) if set; 0 when unset. */
int fault_arm_from_env(void);
/* The same, done once per process and its result remembered: called by
 * shm_create and shm_attach, so every pool process honours the variable.
 * -EOPNOTSUPP when the build has no fault points. */
int fault_arm_from_env_once(void);

/* Called by FAULT_POINT when something is armed. */
void fault_pass(const char *name);

#if VMPOOL_FAULT_POINTS
#define FAULT_POINT(name)                                                      \
	do {                                                                   \
		if (__builtin_expect(fault_armed, 0))                          \
			fault_pass(name);                                      \
		__atomic_signal_fence(__ATOMIC_SEQ_CST);                       \
	} while (0)
#else
#define FAULT_POINT(name) __atomic_signal_fence(__ATOMIC_SEQ_CST)
#endif

#endif
