/* Pool policy over the shared slot table: lease, recycle, evict, warm. */
#ifndef VMPOOL_POOL_H
#define VMPOOL_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shm/layout.h"
#include "shm/shm.h"

/*
 * Every function taking a struct shm locks it for the call (a repair by
 * the locker is invisible to the caller). Times are CLOCK_MONOTONIC
 * nanoseconds passed in by the caller. Slot arguments are checked:
 * -ERANGE when out of the table, -EINVAL when the slot's state refuses
 * the request (see pool_slot_next).
 */

enum slot_event {
	SEV_BOOT,	 /* free -> booting */
	SEV_READY_IDLE,	 /* booting -> idle */
	SEV_READY_LEASE, /* booting -> leased */
	SEV_BOOT_FAIL,	 /* booting -> dead */
	SEV_DISCARD,	 /* booting -> dead: ready but not wanted */
	SEV_LEASE,	 /* idle -> leased */
	SEV_RELEASE,	 /* leased -> recycling */
	SEV_RECYCLED,	 /* recycling -> idle */
	SEV_EVICT,	 /* idle, recycling -> dead */
	SEV_EXIT,	 /* worker gone: any but free -> free */
	SEV_COUNT
};

/* The one slot state machine: new state, or -EINVAL when refused. */
int pool_slot_next(enum slot_state state, enum slot_event event);

enum pool_acquire_result { POOL_HIT = 0, POOL_MISS = 1 };

enum recycle_result {
	RECYCLE_OK,	   /* clean and ready: back to the idle ring */
	RECYCLE_NOT_READY, /* guest no longer ready */
	RECYCLE_UNHEALTHY, /* the health check failed or timed out */
};

/* 0, or -EINVAL with "invalid pool config: min_size=3, max_size=2" (or
 * another reason) in err. */
int pool_config_validate(const struct pool_config *cfg, uint32_t nslots,
			 char *err, size_t errlen);

/* Expire idle VMs past max_idle, then lease the most recently used idle
 * VM to uid: POOL_HIT, *slot leased. Otherwise count a miss and reserve
 * a free slot booting for uid: POOL_MISS, the caller boots *slot and
 * reports pool_boot_done. -EAGAIN: no free slot or max_total reached
 * (the miss is counted); -EDQUOT: uid holds max_leases_per_uid. */
int pool_acquire(struct shm *shm, uint32_t uid, uint64_t now, uint32_t *slot);

/* Reserve a free slot booting for `why` (not BOOT_LEASE; see
 * pool_warm_count and pool_replenish_count). -EAGAIN when none. */
int pool_boot_start(struct shm *shm, enum boot_purpose why, uint64_t now,
		    uint32_t *slot);

/* The worker `pid` of a booting slot is ready (ok) or gave up. Ready for
 * a lease: leased. Otherwise idle, except that a warm boot finding
 * max_size idle is dropped (slot dead, not counted as an eviction) and
 * a replenish boot evicts the oldest idle VM (*evicted, else
 * SHM_NO_SLOT). Failed: dead, and a lease's in-use count rolls back. */
int pool_boot_done(struct shm *shm, uint32_t slot, pid_t pid, bool ok,
		   uint64_t now, uint32_t *evicted);

/* Leased -> recycling. *need_health_check: this is a multiple of
 * health_check_interval among all releases. */
int pool_release(struct shm *shm, uint32_t slot, uint64_t now,
		 bool *need_health_check);

/* Recycling -> idle (RECYCLE_OK; the oldest idle VM is evicted first
 * when max_size are idle: *evicted) or dead (counted as an eviction). */
int pool_recycle_done(struct shm *shm, uint32_t slot,
		      enum recycle_result result, uint64_t now,
		      uint32_t *evicted);

/* Evict one idle slot now (supervisor's choice). */
int pool_evict(struct shm *shm, uint32_t slot, uint64_t now);

/* Evict idle VMs idle for max_idle or longer, oldest first; returns how
 * many. Their slots are dead: the supervisor stops their workers. */
int pool_expire(struct shm *shm, uint64_t now);

/* The worker of `slot` has exited and been reaped: the slot is free.
 * Outside SLOT_DEAD that is a crash (and a lost lease or boot). */
int pool_exit(struct shm *shm, uint32_t slot, uint64_t now);

/* Count one command run in a leased slot. */
int pool_note_exec(struct shm *shm, uint32_t slot);

/* warm(n): expire, then how many boots to start to bring idle (counting
 * boots already under way for the pool) up to min(n, max_size). */
int pool_warm_count(struct shm *shm, uint32_t n, uint64_t now);

/* How many boots bring idle (with those under way) up to min_size. */
int pool_replenish_count(struct shm *shm);

/* Add a latency sample to a histogram. */
int pool_record(struct shm *shm, enum pool_hist hist, uint64_t ns);

/* A copy of the counters, taken under the lock. */
int pool_stats(struct shm *shm, struct pool_stats *out);

/* Used by shm_lock on a dead owner: undo the half-done step, rebuild the
 * idle ring from the slot table and recount idle and in-use. Safe to
 * repeat: a repairer that dies is repaired by the next locker. Returns
 * 1 if a step was rolled back, else 0. */
int pool_repair(struct shm_segment *seg);

/* 0 when every invariant holds in seg (live under the lock, or a
 * snapshot), else -EUCLEAN and the first broken one in why. */
int pool_check_invariants(const struct shm_segment *seg, char *why, size_t len);

/* Histogram bucket of a sample: floor(log2(ns)); 0 also for 0. */
unsigned pool_hist_bucket(uint64_t ns);

#endif
