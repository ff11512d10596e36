/* Tests for the pool policy and the segment's create/attach rules. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm/pool.h"
#include "shm/shm.h"
#include "tests/shm_helpers.h"

TestSuite(pool, .fini = test_pools_cleanup);
TestSuite(shm, .fini = test_pools_cleanup);

static struct shm_slot *slot_of(struct shm *shm, uint32_t i)
{
	return &shm_slots(shm_segment(shm))[i];
}

static const struct pool_counters *counters(struct shm *shm)
{
	return &shm_segment(shm)->stats.c;
}

static void assert_whole(struct shm *shm)
{
	char why[200] = "";

	cr_assert_eq(test_check_locked(shm, why, sizeof(why)), 0, "%s", why);
}

Test(pool, config_refuses_zero_max_size)
{
	struct pool_config cfg = {.min_size = 0, .max_size = 0};
	char err[100];

	cr_assert_eq(pool_config_validate(&cfg, 0, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "invalid pool config: min_size=0, max_size=0");
}

Test(pool, config_refuses_min_above_max_naming_both)
{
	struct pool_config cfg = {.min_size = 3, .max_size = 2};
	struct shm *shm = NULL;
	char err[100];

	cr_assert_eq(pool_config_validate(&cfg, 8, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "invalid pool config: min_size=3, max_size=2");
	cr_assert_eq(shm_create("never", 8, &cfg, &shm), -EINVAL);
	cr_assert_null(shm);
}

Test(pool, config_accepts_min_equal_to_max)
{
	struct pool_config cfg = {.min_size = 2, .max_size = 2};

	cr_assert_eq(pool_config_validate(&cfg, 8, NULL, 0), 0);
}

Test(pool, acquire_on_empty_pool_misses_and_reserves_a_boot)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);
	uint32_t slot;

	cr_assert_eq(pool_acquire(shm, 7, 10, &slot), POOL_MISS);
	cr_assert_eq(slot_of(shm, slot)->state, SLOT_BOOTING);
	cr_assert_eq(slot_of(shm, slot)->purpose, BOOT_LEASE);
	cr_assert_eq(slot_of(shm, slot)->owner_uid, 7);
	cr_assert_eq(counters(shm)->misses, 1);
	cr_assert_eq(counters(shm)->in_use, 1);
	cr_assert_eq(counters(shm)->hits, 0);
	assert_whole(shm);
}

Test(pool, miss_boot_ready_goes_straight_to_the_tenant)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);
	uint32_t slot;

	pool_acquire(shm, 7, 10, &slot);
	cr_assert_eq(pool_boot_done(shm, slot, 4242, true, 20, NULL), 0);
	cr_assert_eq(slot_of(shm, slot)->state, SLOT_LEASED);
	cr_assert_eq(slot_of(shm, slot)->pid, 4242);
	cr_assert_eq(slot_of(shm, slot)->generation, 1);
	cr_assert_eq(counters(shm)->in_use, 1);
	cr_assert_eq(counters(shm)->idle, 0);
	assert_whole(shm);
}

Test(pool, failed_boot_rolls_back_in_use_but_keeps_the_miss)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);
	uint32_t slot;

	pool_acquire(shm, 7, 10, &slot);
	cr_assert_eq(pool_boot_done(shm, slot, 4242, false, 20, NULL), 0);
	cr_assert_eq(slot_of(shm, slot)->state, SLOT_DEAD);
	cr_assert_eq(counters(shm)->in_use, 0);
	cr_assert_eq(counters(shm)->misses, 1);
	cr_assert_eq(counters(shm)->boot_failures, 1);
	assert_whole(shm);
}

Test(pool, acquire_prefers_most_recently_used)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);
	uint32_t a = test_boot_idle(shm, 10);
	uint32_t b = test_boot_idle(shm, 20);
	uint32_t got;

	cr_assert_eq(pool_acquire(shm, 1, 30, &got), POOL_HIT);
	cr_assert_eq(got, b);
	test_give_back(shm, got, 40); /* b is again the most recent */
	cr_assert_eq(pool_acquire(shm, 1, 50, &got), POOL_HIT);
	cr_assert_eq(got, b);
	cr_assert_eq(pool_acquire(shm, 1, 60, &got), POOL_HIT);
	cr_assert_eq(got, a);
	cr_assert_eq(counters(shm)->hits, 3);
	assert_whole(shm);
}

Test(pool, hit_leases_to_the_tenant_and_bumps_generation)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);
	uint32_t a = test_boot_idle(shm, 10);
	uint32_t got;

	pool_acquire(shm, 1000, 20, &got);
	cr_assert_eq(got, a);
	cr_assert_eq(slot_of(shm, a)->owner_uid, 1000);
	cr_assert_eq(slot_of(shm, a)->generation, 1);
	test_give_back(shm, a, 30);
	pool_acquire(shm, 1001, 40, &got);
	cr_assert_eq(slot_of(shm, a)->generation, 2);
	cr_assert_eq(slot_of(shm, a)->owner_uid, 1001);
	cr_assert_eq(slot_of(shm, a)->leases, 2);
	cr_assert_eq(counters(shm)->in_use, 1);
	cr_assert_eq(counters(shm)->idle, 0);
}

Test(pool, acquire_first_expires_idle_past_max_idle)
{
	struct pool_config cfg = test_config(); /* max_idle 1000 */
	struct shm *shm = test_pool(4, &cfg);
	uint32_t old = test_boot_idle(shm, 100);
	uint32_t young = test_boot_idle(shm, 900);
	uint32_t got;

	cr_assert_eq(pool_acquire(shm, 1, 1100, &got), POOL_HIT);
	cr_assert_eq(got, young);
	cr_assert_eq(slot_of(shm, old)->state, SLOT_DEAD);
	cr_assert_eq(counters(shm)->evictions, 1);
	cr_assert_eq(counters(shm)->evicted_by[EVICT_EXPIRED], 1);
	assert_whole(shm);
}

Test(pool, expiry_counts_idle_time_of_exactly_max_idle)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);
	uint32_t a = test_boot_idle(shm, 100);

	cr_assert_eq(pool_expire(shm, 1099), 0);
	cr_assert_eq(pool_expire(shm, 1100), 1);
	cr_assert_eq(slot_of(shm, a)->state, SLOT_DEAD);
}

Test(pool, expiry_takes_the_oldest_and_stops_at_a_young_one)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);
	uint32_t a = test_boot_idle(shm, 100);
	uint32_t b = test_boot_idle(shm, 200);
	uint32_t c = test_boot_idle(shm, 300);

	cr_assert_eq(pool_expire(shm, 1250), 2);
	cr_assert_eq(slot_of(shm, a)->state, SLOT_DEAD);
	cr_assert_eq(slot_of(shm, b)->state, SLOT_DEAD);
	cr_assert_eq(slot_of(shm, c)->state, SLOT_IDLE);
	assert_whole(shm);
}

Test(pool, release_asks_for_health_check_every_nth_release)
{
	struct pool_config cfg = test_config();
	struct shm *shm = NULL;
	bool want[7] = {false, false, true, false, false, true, false};
	bool hc;

	cfg.health_check_interval = 3;
	shm = test_pool(4, &cfg);
	for (int i = 0; i < 7; i++) {
		uint32_t s = test_lease(shm, 1, 10 + i);

		cr_assert_eq(pool_release(shm, s, 10 + i, &hc), 0);
		cr_assert_eq(hc, want[i], "release %d", i + 1);
		pool_recycle_done(shm, s, RECYCLE_OK, 10 + i, NULL);
	}
}

Test(pool, release_never_asks_for_health_check_at_interval_zero)
{
	struct pool_config cfg = test_config();
	struct shm *shm = NULL;
	bool hc;

	cfg.health_check_interval = 0;
	shm = test_pool(4, &cfg);
	for (int i = 0; i < 10; i++) {
		uint32_t s = test_lease(shm, 1, 10);

		pool_release(shm, s, 10, &hc);
		cr_assert_not(hc);
		pool_recycle_done(shm, s, RECYCLE_OK, 10, NULL);
	}
	cr_assert_eq(counters(shm)->releases, 10);
}

Test(pool, release_of_a_slot_not_leased_is_refused)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);
	uint32_t a = test_boot_idle(shm, 10);
	bool hc;

	cr_assert_eq(pool_release(shm, a, 20, &hc), -EINVAL);
	cr_assert_eq(pool_release(shm, 99, 20, &hc), -ERANGE);
	cr_assert_eq(slot_of(shm, a)->state, SLOT_IDLE);
}

Test(pool, recycle_into_a_full_ring_evicts_the_oldest)
{
	struct pool_config cfg = test_config(); /* max_size 3 */
	struct shm *shm = test_pool(8, &cfg);
	uint32_t s = test_lease(shm, 1, 10);
	uint32_t a = test_boot_idle(shm, 20);
	uint32_t evicted;
	bool hc;

	test_boot_idle(shm, 30);
	test_boot_idle(shm, 40);
	pool_release(shm, s, 50, &hc);
	cr_assert_eq(pool_recycle_done(shm, s, RECYCLE_OK, 60, &evicted), 0);
	cr_assert_eq(evicted, a);
	cr_assert_eq(slot_of(shm, a)->state, SLOT_DEAD);
	cr_assert_eq(counters(shm)->idle, 3);
	cr_assert_eq(counters(shm)->evicted_by[EVICT_CAPACITY], 1);
	cr_assert_eq(shm_ring_at(shm_segment(shm), 2), s);
	assert_whole(shm);
}

Test(pool, unhealthy_recycle_is_an_eviction)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);
	uint32_t s = test_lease(shm, 1, 10);
	bool hc;

	pool_release(shm, s, 20, &hc);
	cr_assert_eq(counters(shm)->in_use, 0);
	cr_assert_eq(pool_recycle_done(shm, s, RECYCLE_UNHEALTHY, 30, NULL), 0);
	cr_assert_eq(slot_of(shm, s)->state, SLOT_DEAD);
	cr_assert_eq(counters(shm)->evictions, 1);
	cr_assert_eq(counters(shm)->hc_failures, 1);
	assert_whole(shm);
}

Test(pool, not_ready_recycle_is_an_eviction)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);
	uint32_t s = test_lease(shm, 1, 10);
	bool hc;

	pool_release(shm, s, 20, &hc);
	pool_recycle_done(shm, s, RECYCLE_NOT_READY, 30, NULL);
	cr_assert_eq(slot_of(shm, s)->state, SLOT_DEAD);
	cr_assert_eq(counters(shm)->evictions, 1);
	cr_assert_eq(counters(shm)->hc_failures, 0);
	cr_assert_eq(counters(shm)->idle, 0);
}

Test(pool, warm_count_fills_to_min_of_n_and_max_size)
{
	struct pool_config cfg = test_config(); /* max_size 3 */
	struct shm *shm = test_pool(8, &cfg);
	uint32_t s;

	cr_assert_eq(pool_warm_count(shm, 2, 10), 2);
	cr_assert_eq(pool_warm_count(shm, 10, 10), 3);
	pool_boot_start(shm, BOOT_WARM, 10, &s); /* under way: counts */
	test_boot_idle(shm, 10);
	cr_assert_eq(pool_warm_count(shm, 10, 20), 1);
	cr_assert_eq(pool_warm_count(shm, 1, 20), 0);
}

Test(pool, warm_expires_before_counting)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(8, &cfg);

	test_boot_idle(shm, 10);
	cr_assert_eq(pool_warm_count(shm, 1, 2000), 1);
	cr_assert_eq(counters(shm)->evictions, 1);
}

Test(pool, warm_boot_beyond_max_size_is_dropped_uncounted)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(8, &cfg);
	uint32_t late, evicted;

	pool_boot_start(shm, BOOT_WARM, 10, &late);
	for (int i = 0; i < 3; i++)
		test_boot_idle(shm, 20);
	cr_assert_eq(pool_boot_done(shm, late, 9, true, 30, &evicted), 0);
	cr_assert_eq(evicted, SHM_NO_SLOT);
	cr_assert_eq(slot_of(shm, late)->state, SLOT_DEAD);
	cr_assert_eq(counters(shm)->evictions, 0);
	cr_assert_eq(counters(shm)->warm_dropped, 1);
	cr_assert_eq(counters(shm)->idle, 3);
	assert_whole(shm);
}

Test(pool, replenish_boot_into_a_full_ring_evicts_the_oldest)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(8, &cfg);
	uint32_t late, evicted, oldest = SHM_NO_SLOT;

	pool_boot_start(shm, BOOT_REPLENISH, 10, &late);
	for (int i = 0; i < 3; i++) {
		uint32_t s = test_boot_idle(shm, 20 + i);

		if (i == 0)
			oldest = s;
	}
	pool_boot_done(shm, late, 9, true, 30, &evicted);
	cr_assert_eq(evicted, oldest);
	cr_assert_eq(slot_of(shm, late)->state, SLOT_IDLE);
	cr_assert_eq(counters(shm)->evictions, 1);
	assert_whole(shm);
}

Test(pool, replenish_count_reaches_min_size)
{
	struct pool_config cfg = test_config();
	struct shm *shm = NULL;
	uint32_t s;

	cfg.min_size = 2;
	shm = test_pool(8, &cfg);
	cr_assert_eq(pool_replenish_count(shm), 2);
	pool_boot_start(shm, BOOT_REPLENISH, 10, &s);
	cr_assert_eq(pool_replenish_count(shm), 1);
	test_boot_idle(shm, 10);
	cr_assert_eq(pool_replenish_count(shm), 0);
}

Test(pool, respawn_boots_are_counted)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(8, &cfg);
	uint32_t s;

	cr_assert_eq(pool_boot_start(shm, BOOT_RESPAWN, 10, &s), 0);
	cr_assert_eq(counters(shm)->respawns, 1);
	cr_assert_eq(pool_boot_start(shm, BOOT_LEASE, 10, &s), -EINVAL);
}

Test(pool, worker_lost_while_leased_is_a_crash_and_a_lost_lease)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);
	uint32_t s = test_lease(shm, 1, 10);

	cr_assert_eq(pool_exit(shm, s, 20), 0);
	cr_assert_eq(slot_of(shm, s)->state, SLOT_FREE);
	cr_assert_eq(slot_of(shm, s)->pid, 0);
	cr_assert_eq(counters(shm)->crashes, 1);
	cr_assert_eq(counters(shm)->leases_lost, 1);
	cr_assert_eq(counters(shm)->in_use, 0);
	assert_whole(shm);
}

Test(pool, worker_exit_after_eviction_is_no_crash)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);
	uint32_t s = test_boot_idle(shm, 10);

	cr_assert_eq(pool_evict(shm, s, 20), 0);
	cr_assert_eq(counters(shm)->evicted_by[EVICT_ASKED], 1);
	cr_assert_eq(pool_exit(shm, s, 30), 0);
	cr_assert_eq(counters(shm)->crashes, 0);
	cr_assert_eq(pool_exit(shm, s, 40), -EINVAL);
	assert_whole(shm);
}

Test(pool, idle_worker_lost_leaves_the_ring)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);
	uint32_t a = test_boot_idle(shm, 10);
	uint32_t b = test_boot_idle(shm, 11);
	uint32_t c = test_boot_idle(shm, 12);

	pool_exit(shm, b, 20);
	cr_assert_eq(shm_segment(shm)->ring.count, 2);
	cr_assert_eq(shm_ring_at(shm_segment(shm), 0), a);
	cr_assert_eq(shm_ring_at(shm_segment(shm), 1), c);
	cr_assert_eq(counters(shm)->crashes, 1);
	assert_whole(shm);
}

Test(pool, slot_state_machine_refuses_illegal_moves)
{
	cr_assert_eq(pool_slot_next(SLOT_FREE, SEV_BOOT), SLOT_BOOTING);
	cr_assert_eq(pool_slot_next(SLOT_IDLE, SEV_LEASE), SLOT_LEASED);
	cr_assert_eq(pool_slot_next(SLOT_LEASED, SEV_RELEASE), SLOT_RECYCLING);
	cr_assert_eq(pool_slot_next(SLOT_RECYCLING, SEV_RECYCLED), SLOT_IDLE);
	cr_assert_eq(pool_slot_next(SLOT_FREE, SEV_EXIT), -EINVAL);
	cr_assert_eq(pool_slot_next(SLOT_LEASED, SEV_LEASE), -EINVAL);
	cr_assert_eq(pool_slot_next(SLOT_DEAD, SEV_BOOT), -EINVAL);
	cr_assert_eq(pool_slot_next(SLOT_IDLE, SEV_RECYCLED), -EINVAL);
	cr_assert_eq(pool_slot_next(SLOT_NSTATES, SEV_EXIT), -EINVAL);
	for (int s = SLOT_BOOTING; s < SLOT_NSTATES; s++)
		cr_assert_eq(pool_slot_next(s, SEV_EXIT), SLOT_FREE);
}

Test(pool, out_of_range_slots_are_refused_everywhere)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);
	bool hc;

	cr_assert_eq(pool_boot_done(shm, 4, 1, true, 0, NULL), -ERANGE);
	cr_assert_eq(pool_release(shm, UINT32_MAX, 0, &hc), -ERANGE);
	cr_assert_eq(pool_recycle_done(shm, 4, RECYCLE_OK, 0, NULL), -ERANGE);
	cr_assert_eq(pool_evict(shm, 4, 0), -ERANGE);
	cr_assert_eq(pool_exit(shm, 4, 0), -ERANGE);
	cr_assert_eq(pool_note_exec(shm, 4), -ERANGE);
	cr_assert_eq(pool_record(shm, HIST_COUNT, 1), -EINVAL);
}

Test(pool, acquire_without_a_free_slot_is_a_counted_miss)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(2, &cfg);
	uint32_t s;

	test_lease(shm, 1, 10);
	test_lease(shm, 1, 10);
	cr_assert_eq(pool_acquire(shm, 1, 10, &s), -EAGAIN);
	cr_assert_eq(counters(shm)->misses, 3);
	cr_assert_eq(counters(shm)->in_use, 2);
}

Test(pool, max_total_caps_live_workers)
{
	struct pool_config cfg = test_config();
	struct shm *shm = NULL;
	uint32_t s;

	cfg.max_total = 2;
	shm = test_pool(8, &cfg);
	test_boot_idle(shm, 10);
	test_boot_idle(shm, 10);
	cr_assert_eq(pool_boot_start(shm, BOOT_WARM, 10, &s), -EAGAIN);
	cr_assert_eq(pool_acquire(shm, 1, 10, &s), POOL_HIT);
	cr_assert_eq(pool_acquire(shm, 1, 10, &s), POOL_HIT);
	cr_assert_eq(pool_acquire(shm, 1, 10, &s), -EAGAIN);
}

Test(pool, per_tenant_cap_refuses_extra_leases)
{
	struct pool_config cfg = test_config();
	struct shm *shm = NULL;
	uint32_t s;

	cfg.max_leases_per_uid = 1;
	shm = test_pool(8, &cfg);
	test_lease(shm, 1000, 10);
	cr_assert_eq(pool_acquire(shm, 1000, 10, &s), -EDQUOT);
	cr_assert_eq(pool_acquire(shm, 1001, 10, &s), POOL_MISS);
	cr_assert_eq(counters(shm)->misses, 2);
}

Test(pool, stats_count_like_the_seed)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(8, &cfg);
	struct pool_stats st;
	uint32_t a, b;
	bool hc;

	test_boot_idle(shm, 0);
	a = test_lease(shm, 1, 10); /* hit */
	b = test_lease(shm, 1, 10); /* miss */
	pool_release(shm, a, 20, &hc);
	pool_recycle_done(shm, a, RECYCLE_UNHEALTHY, 20, NULL); /* evict */
	test_give_back(shm, b, 30);
	pool_expire(shm, 5000); /* evict */

	cr_assert_eq(pool_stats(shm, &st), 0);
	cr_assert_eq(st.c.hits, 1);
	cr_assert_eq(st.c.misses, 1);
	cr_assert_eq(st.c.evictions, 2);
	cr_assert_eq(st.c.idle, 0);
	cr_assert_eq(st.c.in_use, 0);
	cr_assert_eq(st.c.leases, 2);
	cr_assert_eq(st.c.boots, 2);
}

Test(pool, each_change_is_logged_as_an_event)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);
	struct shm_segment *seg = shm_segment(shm);
	uint32_t s;

	pool_acquire(shm, 77, 10, &s);
	pool_boot_done(shm, s, 555, true, 25, NULL);
	cr_assert_eq(seg->hdr.events_head, 2);
	cr_assert_eq(seg->events[0].kind, PEV_MISS);
	cr_assert_eq(seg->events[0].uid, 77);
	cr_assert_eq(seg->events[1].kind, PEV_READY);
	cr_assert_eq(seg->events[1].value, 15);
	cr_assert_eq(seg->events[1].state, SLOT_LEASED);
	cr_assert_eq(seg->events[1].pid, getpid());
}

Test(pool, histograms_use_log2_buckets)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);

	cr_assert_eq(pool_hist_bucket(0), 0);
	cr_assert_eq(pool_hist_bucket(1), 0);
	cr_assert_eq(pool_hist_bucket(1023), 9);
	cr_assert_eq(pool_hist_bucket(1024), 10);
	cr_assert_eq(pool_hist_bucket(UINT64_MAX), 63);
	pool_record(shm, HIST_ACQUIRE, 1500);
	cr_assert_eq(shm_segment(shm)->stats.hist[HIST_ACQUIRE][10], 1);
}

Test(shm, names_are_checked)
{
	cr_assert_eq(shm_name_check("pool-1_a"), 0);
	cr_assert_eq(shm_name_check(""), SHM_EBADNAME);
	cr_assert_eq(shm_name_check("../etc"), SHM_EBADNAME);
	cr_assert_eq(shm_name_check("a/b"), SHM_EBADNAME);
	cr_assert_eq(shm_name_check("0123456789abcdef0123456789abcdefX"),
		     SHM_EBADNAME);
}

Test(shm, create_refuses_an_existing_name_and_bad_sizes)
{
	struct pool_config cfg = test_config();
	char name[SHM_NAME_MAX + 1];
	struct shm *other = NULL;

	test_pool_named(4, &cfg, name);
	cr_assert_eq(shm_create(name, 4, &cfg, &other), -EEXIST);
	cr_assert_eq(shm_create("zero-slots", 0, &cfg, &other), -EINVAL);
	cr_assert_eq(shm_create("huge", SHM_MAX_SLOTS + 1, &cfg, &other),
		     -EINVAL);
	shm_unlink_name(name);
}

Test(shm, segment_is_not_world_accessible)
{
	struct pool_config cfg = test_config();
	char name[SHM_NAME_MAX + 1], path[64];
	struct stat st;

	test_pool_named(4, &cfg, name);
	snprintf(path, sizeof(path), "/dev/shm/vmpool.%s", name);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0137, 0, "mode %o", st.st_mode & 0777);
	cr_assert_eq(st.st_size, shm_total_size(4));
	shm_unlink_name(name);
}

Test(shm, attach_sees_what_the_creator_wrote)
{
	struct pool_config cfg = test_config();
	char name[SHM_NAME_MAX + 1];
	struct shm *shm = test_pool_named(4, &cfg, name);
	struct shm *rw = NULL, *ro = NULL;
	uint32_t a = test_boot_idle(shm, 10);
	uint32_t got;

	cr_assert_eq(shm_attach(name, SHM_RW, &rw), 0);
	cr_assert_eq(shm_attach(name, SHM_RO, &ro), 0);
	cr_assert_eq(pool_acquire(rw, 1, 20, &got), POOL_HIT);
	cr_assert_eq(got, a);
	cr_assert_eq(shm_slots(shm_segment(ro))[a].state, SLOT_LEASED);
	cr_assert_eq(shm_lock(ro), -EPERM);
	shm_unlink_name(name);
	shm_detach(ro);
	shm_detach(rw);
}

/* Write a raw segment-sized file under the pool's name. */
static void write_raw(const char *name, size_t size, uint64_t magic,
		      uint32_t version)
{
	char path[64];
	struct shm_header h = {.magic = magic,
			       .abi_version = version,
			       .nslots = 4,
			       .total_size = size};
	int fd;

	snprintf(path, sizeof(path), "/vmpool.%s", name);
	fd = shm_open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, size), 0);
	cr_assert_eq(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);
}

Test(shm, attach_refuses_bad_magic_version_and_size)
{
	char name[32];
	struct shm *shm = NULL;
	size_t size = shm_total_size(4);

	snprintf(name, sizeof(name), "raw-%d", getpid());
	write_raw(name, size, 0x1234, SHM_ABI_VERSION);
	cr_assert_eq(shm_attach(name, SHM_RO, &shm), SHM_EMAGIC);
	write_raw(name, size, SHM_MAGIC, SHM_ABI_VERSION + 1);
	cr_assert_eq(shm_attach(name, SHM_RO, &shm), SHM_EVERSION);
	write_raw(name, size + 4096, SHM_MAGIC, SHM_ABI_VERSION);
	cr_assert_eq(shm_attach(name, SHM_RO, &shm), SHM_ESIZE);
	write_raw(name, size, 0, 0);
	cr_assert_eq(shm_attach(name, SHM_RO, &shm), SHM_ENOTREADY);
	cr_assert_null(shm);
	shm_unlink_name(name);
	cr_assert_eq(shm_attach(name, SHM_RO, &shm), -ENOENT);
	cr_assert_eq(shm_attach("bad/name", SHM_RO, &shm), SHM_EBADNAME);
}

Test(shm, snapshot_copies_a_consistent_segment)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);
	char why[200] = "";
	char *buf = malloc(shm_size(shm));

	test_boot_idle(shm, 10);
	test_lease(shm, 1, 20);
	cr_assert_eq(shm_snapshot(shm, buf, shm_size(shm)), 0);
	cr_assert_eq(pool_check_invariants((void *)buf, why, sizeof(why)), 0,
		     "%s", why);
	cr_assert_eq(((struct shm_segment *)buf)->stats.c.in_use, 1);
	cr_assert_eq(shm_snapshot(shm, buf, 10), -ENOBUFS);
	free(buf);
}

Test(shm, scripted_workload_keeps_every_invariant)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(12, &cfg);

	cr_assert_eq(test_scripted_workload(shm, 3), 0);
	assert_whole(shm);
	cr_assert_eq(counters(shm)->idle, 0);
	cr_assert_eq(counters(shm)->in_use, 0);
}
