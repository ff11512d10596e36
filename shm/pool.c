/* Pool policy: the warm-pool rules of the seed over the shared slot table. */
#include "shm/pool.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "common/util.h"
#include "shm/slot.h"

__attribute__((format(printf, 3, 4))) static int refuse(char *err, size_t len,
							const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int pool_config_validate(const struct pool_config *cfg, uint32_t nslots,
			 char *err, size_t errlen)
{
	if (cfg->max_size == 0 || cfg->min_size > cfg->max_size)
		return refuse(err, errlen,
			      "invalid pool config: min_size=%u, max_size=%u",
			      cfg->min_size, cfg->max_size);
	if (nslots && cfg->max_total > nslots)
		return refuse(err, errlen,
			      "invalid pool config: max_total=%u, slots=%u",
			      cfg->max_total, nslots);
	return 0;
}

unsigned pool_hist_bucket(uint64_t ns)
{
	return 63 - __builtin_clzll(ns | 1);
}

static uint64_t elapsed(uint64_t since, uint64_t now)
{
	return now > since ? now - since : 0;
}

static void hist_add(struct shm_segment *seg, enum pool_hist h, uint64_t ns)
{
	seg->stats.hist[h][pool_hist_bucket(ns)]++;
}

static struct shm_slot *slot_at(struct shm_segment *seg, uint32_t index)
{
	return &shm_slots(seg)[index];
}

/* 0 if index names a slot whose state allows event. */
static int check_slot(struct shm_segment *seg, uint32_t index,
		      enum slot_event event)
{
	if (index >= seg->hdr.nslots)
		return -ERANGE;
	return pool_slot_next(slot_at(seg, index)->state, event) < 0 ? -EINVAL
								     : 0;
}

/* First free slot, unless max_total workers are alive already. */
static uint32_t find_free(const struct shm_segment *seg)
{
	uint32_t n = seg->hdr.nslots;
	uint32_t cap = seg->config.max_total ? seg->config.max_total : n;
	uint32_t live = 0, found = SHM_NO_SLOT;

	for (uint32_t i = 0; i < n; i++) {
		if (shm_slots(seg)[i].state != SLOT_FREE)
			live++;
		else if (found == SHM_NO_SLOT)
			found = i;
	}
	return live < cap ? found : SHM_NO_SLOT;
}

static uint32_t leases_of(const struct shm_segment *seg, uint32_t uid)
{
	uint32_t held = 0;

	for (uint32_t i = 0; i < seg->hdr.nslots; i++) {
		const struct shm_slot *s = &shm_slots(seg)[i];

		held += slot_in_use(s) && s->owner_uid == uid;
	}
	return held;
}

/* Boots under way that will end in the idle ring. */
static uint32_t pending_boots(const struct shm_segment *seg)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < seg->hdr.nslots; i++) {
		const struct shm_slot *s = &shm_slots(seg)[i];

		n += s->state == SLOT_BOOTING && s->purpose != BOOT_LEASE;
	}
	return n;
}

static void evict_slot(struct shm_segment *seg, uint32_t index,
		       enum evict_reason why, const struct slot_points *pts,
		       uint64_t now)
{
	struct pool_counters *c = &seg->stats.c;
	struct slot_step st;

	slot_step_begin(&st, seg, index, pts);
	slot_move(&st, SEV_EVICT, now);
	c->evictions++;
	c->evicted_by[why]++;
	if (why == EVICT_UNHEALTHY)
		c->hc_failures++;
	slot_step_commit(&st);

	slot_event_add(seg, PEV_EVICT, index, why, now);
}

/* The seed takes expired VMs from the old end only, and counts each as
 * an eviction. */
static int expire_locked(struct shm_segment *seg, uint64_t now)
{
	int n = 0;

	while (seg->ring.count) {
		uint32_t oldest = slot_ring_front(seg);
		uint64_t used = slot_at(seg, oldest)->last_used_ns;

		if (elapsed(used, now) < seg->config.max_idle_ns)
			break;
		evict_slot(seg, oldest, EVICT_EXPIRED, &expire_pts, now);
		n++;
	}
	return n;
}

/* Making room for one more idle VM evicts the oldest. */
static uint32_t evict_if_full(struct shm_segment *seg, uint64_t now)
{
	uint32_t oldest;

	if (seg->stats.c.idle < seg->config.max_size || !seg->ring.count)
		return SHM_NO_SLOT;

	oldest = slot_ring_front(seg);
	evict_slot(seg, oldest, EVICT_CAPACITY, &evict_pts, now);
	return oldest;
}

static void count_lease(struct shm_segment *seg, struct shm_slot *slot)
{
	slot->generation++;
	slot->leases++;
	seg->stats.c.leases++;
}

static void lease_idle(struct shm_segment *seg, uint32_t index, uint32_t uid,
		       uint64_t now)
{
	struct slot_step st;

	slot_step_begin(&st, seg, index, &acquire_hit_pts);
	st.slot->owner_uid = uid;
	slot_move(&st, SEV_LEASE, now);
	count_lease(seg, st.slot);
	seg->stats.c.hits++;
	slot_step_commit(&st);

	slot_event_add(seg, PEV_HIT, index, st.slot->generation, now);
}

static void reserve_boot(struct shm_segment *seg, uint32_t index,
			 enum boot_purpose why, uint32_t uid,
			 const struct slot_points *pts, uint64_t now)
{
	struct pool_counters *c = &seg->stats.c;
	struct slot_step st;

	slot_step_begin(&st, seg, index, pts);
	st.slot->purpose = why;
	st.slot->owner_uid = uid;
	st.slot->pid = 0;
	st.slot->boots++;
	slot_move(&st, SEV_BOOT, now);
	c->boots++;
	c->misses += why == BOOT_LEASE;
	c->respawns += why == BOOT_RESPAWN;
	slot_step_commit(&st);

	if (why == BOOT_LEASE)
		slot_event_add(seg, PEV_MISS, index, st.slot->generation + 1,
			       now);
	else
		slot_event_add(seg, PEV_BOOT, index, why, now);
}

static int acquire_locked(struct shm_segment *seg, uint32_t uid, uint64_t now,
			  uint32_t *slot)
{
	uint32_t cap = seg->config.max_leases_per_uid;

	expire_locked(seg, now);

	if (cap && leases_of(seg, uid) >= cap)
		return -EDQUOT;

	if (seg->ring.count) {
		*slot = slot_ring_back(seg);
		lease_idle(seg, *slot, uid, now);
		return POOL_HIT;
	}

	*slot = find_free(seg);
	if (*slot == SHM_NO_SLOT) {
		/* As in the seed, a miss whose boot cannot start counts. */
		seg->stats.c.misses++;
		slot_event_add(seg, PEV_MISS, SHM_NO_SLOT, 0, now);
		return -EAGAIN;
	}
	reserve_boot(seg, *slot, BOOT_LEASE, uid, &acquire_miss_pts, now);
	return POOL_MISS;
}

int pool_acquire(struct shm *shm, uint32_t uid, uint64_t now, uint32_t *slot)
{
	int rc = shm_lock(shm);

	if (rc < 0)
		return rc;
	rc = acquire_locked(shm_segment(shm), uid, now, slot);
	shm_unlock(shm);
	return rc;
}

int pool_boot_start(struct shm *shm, enum boot_purpose why, uint64_t now,
		    uint32_t *slot)
{
	struct shm_segment *seg = shm_segment(shm);
	int rc;

	if (why == BOOT_LEASE || (unsigned)why >= BOOT_NPURPOSES)
		return -EINVAL;

	rc = shm_lock(shm);
	if (rc < 0)
		return rc;

	*slot = find_free(seg);
	rc = *slot == SHM_NO_SLOT ? -EAGAIN : 0;
	if (!rc)
		reserve_boot(seg, *slot, why, 0, &boot_pts, now);

	shm_unlock(shm);
	return rc;
}

static void boot_failed(struct shm_segment *seg, uint32_t index, pid_t pid,
			uint64_t now)
{
	uint64_t took = elapsed(slot_at(seg, index)->since_ns, now);
	struct slot_step st;

	slot_step_begin(&st, seg, index, &boot_fail_pts);
	st.slot->pid = pid;
	slot_move(&st, SEV_BOOT_FAIL, now);
	seg->stats.c.boot_failures++;
	slot_step_commit(&st);

	slot_event_add(seg, PEV_BOOT_FAIL, index, took, now);
}

static void boot_ready(struct shm_segment *seg, uint32_t index, pid_t pid,
		       enum slot_event event, uint64_t now)
{
	uint64_t took = elapsed(slot_at(seg, index)->since_ns, now);
	struct pool_counters *c = &seg->stats.c;
	struct slot_step st;

	slot_step_begin(&st, seg, index, &ready_pts);
	st.slot->pid = pid;
	slot_move(&st, event, now);
	c->boots_ok++;
	c->warm_dropped += event == SEV_DISCARD;
	if (event == SEV_READY_LEASE)
		count_lease(seg, st.slot);
	slot_step_commit(&st);

	hist_add(seg, HIST_BOOT, took);
	slot_event_add(seg, PEV_READY, index, took, now);
}

/* Where a ready VM goes, by why it was booted. */
static void place_ready(struct shm_segment *seg, uint32_t index, pid_t pid,
			uint64_t now, uint32_t *evicted)
{
	enum boot_purpose why = slot_at(seg, index)->purpose;
	bool full = seg->stats.c.idle >= seg->config.max_size;

	if (why == BOOT_LEASE) {
		boot_ready(seg, index, pid, SEV_READY_LEASE, now);
		return;
	}
	/* The seed's warm() drops what exceeds max_size, uncounted; its
	 * replenish pushes like a release, evicting the oldest. */
	if (why == BOOT_WARM && full) {
		boot_ready(seg, index, pid, SEV_DISCARD, now);
		return;
	}
	*evicted = evict_if_full(seg, now);
	boot_ready(seg, index, pid, SEV_READY_IDLE, now);
}

static int boot_done_locked(struct shm_segment *seg, uint32_t index, pid_t pid,
			    bool ok, uint64_t now, uint32_t *evicted)
{
	int rc = check_slot(seg, index, SEV_READY_IDLE);

	if (rc)
		return rc;

	if (ok)
		place_ready(seg, index, pid, now, evicted);
	else
		boot_failed(seg, index, pid, now);
	return 0;
}

int pool_boot_done(struct shm *shm, uint32_t slot, pid_t pid, bool ok,
		   uint64_t now, uint32_t *evicted)
{
	uint32_t ignored;
	int rc;

	evicted = evicted ? evicted : &ignored;
	*evicted = SHM_NO_SLOT;

	rc = shm_lock(shm);
	if (rc < 0)
		return rc;
	rc = boot_done_locked(shm_segment(shm), slot, pid, ok, now, evicted);
	shm_unlock(shm);
	return rc;
}

static int release_locked(struct shm_segment *seg, uint32_t index, uint64_t now,
			  bool *need_health_check)
{
	uint32_t every = seg->config.health_check_interval;
	struct pool_counters *c = &seg->stats.c;
	struct slot_step st;
	uint64_t held;
	int rc;

	rc = check_slot(seg, index, SEV_RELEASE);
	if (rc)
		return rc;

	held = elapsed(slot_at(seg, index)->since_ns, now);
	slot_step_begin(&st, seg, index, &release_pts);
	slot_move(&st, SEV_RELEASE, now);
	if (c->releases != UINT64_MAX)
		c->releases++;
	slot_step_commit(&st);

	*need_health_check = every && c->releases % every == 0;
	hist_add(seg, HIST_LEASE, held);
	slot_event_add(seg, PEV_RELEASE, index, held, now);
	return 0;
}

int pool_release(struct shm *shm, uint32_t slot, uint64_t now,
		 bool *need_health_check)
{
	int rc = shm_lock(shm);

	if (rc < 0)
		return rc;
	rc = release_locked(shm_segment(shm), slot, now, need_health_check);
	shm_unlock(shm);
	return rc;
}

static void recycled(struct shm_segment *seg, uint32_t index, uint64_t now)
{
	uint64_t took = elapsed(slot_at(seg, index)->since_ns, now);
	struct slot_step st;

	slot_step_begin(&st, seg, index, &recycle_pts);
	slot_move(&st, SEV_RECYCLED, now);
	slot_step_commit(&st);

	hist_add(seg, HIST_RECYCLE, took);
	slot_event_add(seg, PEV_RECYCLED, index, took, now);
}

static int recycle_locked(struct shm_segment *seg, uint32_t index,
			  enum recycle_result result, uint64_t now,
			  uint32_t *evicted)
{
	int rc = check_slot(seg, index, SEV_RECYCLED);

	if (rc)
		return rc;

	if (result == RECYCLE_NOT_READY || result == RECYCLE_UNHEALTHY) {
		evict_slot(seg, index,
			   result == RECYCLE_UNHEALTHY ? EVICT_UNHEALTHY
						       : EVICT_NOT_READY,
			   &recycle_pts, now);
		return 0;
	}
	if (result != RECYCLE_OK)
		return -EINVAL;

	*evicted = evict_if_full(seg, now);
	recycled(seg, index, now);
	return 0;
}

int pool_recycle_done(struct shm *shm, uint32_t slot,
		      enum recycle_result result, uint64_t now,
		      uint32_t *evicted)
{
	uint32_t ignored;
	int rc;

	evicted = evicted ? evicted : &ignored;
	*evicted = SHM_NO_SLOT;

	rc = shm_lock(shm);
	if (rc < 0)
		return rc;
	rc = recycle_locked(shm_segment(shm), slot, result, now, evicted);
	shm_unlock(shm);
	return rc;
}

/* The lock around a step that takes a slot or a count and the time. */
static int run_locked(struct shm *shm,
		      int (*step)(struct shm_segment *, uint32_t, uint64_t),
		      uint32_t arg, uint64_t now)
{
	int rc = shm_lock(shm);

	if (rc < 0)
		return rc;
	rc = step(shm_segment(shm), arg, now);
	shm_unlock(shm);
	return rc;
}

static int evict_locked(struct shm_segment *seg, uint32_t index, uint64_t now)
{
	if (index >= seg->hdr.nslots)
		return -ERANGE;
	/* A recycling VM is evicted through pool_recycle_done. */
	if (slot_at(seg, index)->state != SLOT_IDLE)
		return -EINVAL;

	evict_slot(seg, index, EVICT_ASKED, &evict_pts, now);
	return 0;
}

int pool_evict(struct shm *shm, uint32_t slot, uint64_t now)
{
	return run_locked(shm, evict_locked, slot, now);
}

int pool_expire(struct shm *shm, uint64_t now)
{
	int rc = shm_lock(shm);

	if (rc < 0)
		return rc;
	rc = expire_locked(shm_segment(shm), now);
	shm_unlock(shm);
	return rc;
}

static void count_exit(struct pool_counters *c, struct shm_slot *slot,
		       enum slot_state was)
{
	if (was == SLOT_DEAD)
		return;
	slot->crashes++;
	c->crashes++;
	c->boot_failures += was == SLOT_BOOTING;
	c->leases_lost += was == SLOT_LEASED;
}

static int exit_locked(struct shm_segment *seg, uint32_t index, uint64_t now)
{
	enum slot_state was;
	struct slot_step st;
	int rc;

	rc = check_slot(seg, index, SEV_EXIT);
	if (rc)
		return rc;

	was = slot_at(seg, index)->state;
	slot_step_begin(&st, seg, index, &exit_pts);
	slot_move(&st, SEV_EXIT, now);
	count_exit(&seg->stats.c, st.slot, was);
	st.slot->pid = 0;
	st.slot->owner_uid = 0;
	st.slot->purpose = 0;
	slot_step_commit(&st);

	slot_event_add(seg, PEV_EXIT, index, was, now);
	return 0;
}

int pool_exit(struct shm *shm, uint32_t slot, uint64_t now)
{
	return run_locked(shm, exit_locked, slot, now);
}

int pool_note_exec(struct shm *shm, uint32_t slot)
{
	struct shm_segment *seg = shm_segment(shm);
	int rc = shm_lock(shm);

	if (rc < 0)
		return rc;
	if (slot >= seg->hdr.nslots)
		rc = -ERANGE;
	else if (slot_at(seg, slot)->state != SLOT_LEASED)
		rc = -EINVAL;
	else
		slot_at(seg, slot)->execs++;
	shm_unlock(shm);
	return rc;
}

static int warm_count_locked(struct shm_segment *seg, uint32_t n, uint64_t now)
{
	uint64_t target = MIN(n, seg->config.max_size);
	uint64_t have;

	expire_locked(seg, now);

	have = seg->stats.c.idle + pending_boots(seg);
	return target > have ? (int)(target - have) : 0;
}

int pool_warm_count(struct shm *shm, uint32_t n, uint64_t now)
{
	return run_locked(shm, warm_count_locked, n, now);
}

int pool_replenish_count(struct shm *shm)
{
	struct shm_segment *seg = shm_segment(shm);
	uint64_t have;
	int rc = shm_lock(shm);

	if (rc < 0)
		return rc;
	have = seg->stats.c.idle + pending_boots(seg);
	rc = seg->config.min_size > have ? (int)(seg->config.min_size - have)
					 : 0;
	shm_unlock(shm);
	return rc;
}

int pool_record(struct shm *shm, enum pool_hist hist, uint64_t ns)
{
	int rc;

	if ((unsigned)hist >= HIST_COUNT)
		return -EINVAL;

	rc = shm_lock(shm);
	if (rc < 0)
		return rc;
	hist_add(shm_segment(shm), hist, ns);
	shm_unlock(shm);
	return 0;
}

int pool_stats(struct shm *shm, struct pool_stats *out)
{
	int rc = shm_lock(shm);

	if (rc < 0)
		return rc;
	*out = shm_segment(shm)->stats;
	shm_unlock(shm);
	return 0;
}
