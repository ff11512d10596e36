/* Helpers shared by the shm test suites: throwaway pools and workloads. */
#ifndef VMPOOL_TESTS_SHM_HELPERS_H
#define VMPOOL_TESTS_SHM_HELPERS_H

#include <stdint.h>

#include "shm/pool.h"
#include "shm/shm.h"

/* A config most tests start from: min 1, max 3, max_idle 1000 ns. */
struct pool_config test_config(void);

/* Create a pool under a name unique to this process; its name is in
 * name (SHM_NAME_MAX + 1 bytes) and must be unlinked by the caller. */
struct shm *test_pool_named(uint32_t nslots, const struct pool_config *cfg,
			    char *name);
/* The same, with the name unlinked at once: forked children inherit
 * the mapping. */
struct shm *test_pool(uint32_t nslots, const struct pool_config *cfg);

/* Detach one pool early; detach all a test made (a suite's .fini). */
void test_pool_drop(struct shm *shm);
void test_pools_cleanup(void);

/* Boot one VM into the idle ring (purpose BOOT_WARM); returns its slot. */
uint32_t test_boot_idle(struct shm *shm, uint64_t now);

/* Lease via pool_acquire and, on a miss, finish its boot; returns the
 * slot. */
uint32_t test_lease(struct shm *shm, uint32_t uid, uint64_t now);

/* Return a leased slot to the idle ring. */
void test_give_back(struct shm *shm, uint32_t slot, uint64_t now);

/* A fixed sequence passing every kind of step, `rounds` times. Returns 0,
 * or a negative line number of the first call that failed. */
int test_scripted_workload(struct shm *shm, int rounds);

/* One random operation, as a worker or the supervisor might do it. */
void test_random_op(struct shm *shm, uint64_t *rng);

/* Lock (repairing if need be) and check every invariant: 0, or -EUCLEAN
 * with the reason in why. */
int test_check_locked(struct shm *shm, char *why, size_t len);

uint64_t test_rand(uint64_t *state);

#endif
