/* Helpers shared by the shm test suites: throwaway pools and workloads. */
#include "tests/shm_helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

#include "common/util.h"

struct pool_config test_config(void)
{
	return (struct pool_config){
	    .min_size = 1,
	    .max_size = 3,
	    .max_idle_ns = 1000,
	    .health_check_interval = 2,
	};
}

/* Pools a test made, detached by test_pools_cleanup. */
static struct shm *made_pools[8];

static void track(struct shm *shm)
{
	for (unsigned i = 0; i < ARRAY_SIZE(made_pools); i++) {
		if (!made_pools[i]) {
			made_pools[i] = shm;
			return;
		}
	}
	cr_assert_fail("more than %zu pools at once", ARRAY_SIZE(made_pools));
}

struct shm *test_pool_named(uint32_t nslots, const struct pool_config *cfg,
			    char *name)
{
	static unsigned made;
	struct shm *shm = NULL;
	int rc;

	snprintf(name, SHM_NAME_MAX + 1, "test-%d-%u", getpid(), made++);
	shm_unlink_name(name);
	rc = shm_create(name, nslots, cfg, &shm);
	cr_assert_eq(rc, 0, "shm_create: %s", shm_strerror(rc));
	track(shm);
	return shm;
}

void test_pool_drop(struct shm *shm)
{
	for (unsigned i = 0; i < ARRAY_SIZE(made_pools); i++) {
		if (made_pools[i] == shm)
			made_pools[i] = NULL;
	}
	shm_detach(shm);
}

void test_pools_cleanup(void)
{
	for (unsigned i = 0; i < ARRAY_SIZE(made_pools); i++)
		test_pool_drop(made_pools[i]);
}

struct shm *test_pool(uint32_t nslots, const struct pool_config *cfg)
{
	char name[SHM_NAME_MAX + 1];
	struct shm *shm = test_pool_named(nslots, cfg, name);

	shm_unlink_name(name);
	return shm;
}

uint32_t test_boot_idle(struct shm *shm, uint64_t now)
{
	uint32_t slot;

	cr_assert_eq(pool_boot_start(shm, BOOT_WARM, now, &slot), 0);
	cr_assert_eq(pool_boot_done(shm, slot, 100 + slot, true, now, NULL), 0);
	cr_assert_eq(shm_slots(shm_segment(shm))[slot].state, SLOT_IDLE);
	return slot;
}

uint32_t test_lease(struct shm *shm, uint32_t uid, uint64_t now)
{
	uint32_t slot;
	int rc = pool_acquire(shm, uid, now, &slot);

	cr_assert(rc == POOL_HIT || rc == POOL_MISS, "acquire: %d", rc);
	if (rc == POOL_MISS)
		cr_assert_eq(
		    pool_boot_done(shm, slot, 100 + slot, true, now, NULL), 0);
	cr_assert_eq(shm_slots(shm_segment(shm))[slot].state, SLOT_LEASED);
	return slot;
}

void test_give_back(struct shm *shm, uint32_t slot, uint64_t now)
{
	bool hc;

	cr_assert_eq(pool_release(shm, slot, now, &hc), 0);
	cr_assert_eq(pool_recycle_done(shm, slot, RECYCLE_OK, now, NULL), 0);
}

uint64_t test_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

int test_check_locked(struct shm *shm, char *why, size_t len)
{
	int rc = shm_lock(shm);

	if (rc < 0)
		return rc;
	rc = pool_check_invariants(shm_segment(shm), why, len);
	shm_unlock(shm);
	return rc;
}

/* Racy peek at the table: the call that follows checks under the lock. */
static uint8_t peek_state(struct shm *shm, uint32_t i)
{
	return __atomic_load_n(&shm_slots(shm_segment(shm))[i].state,
			       __ATOMIC_RELAXED);
}

static uint32_t pick(struct shm *shm, int state, uint64_t *rng)
{
	uint32_t n = shm_segment(shm)->hdr.nslots;
	uint32_t start = test_rand(rng) % n;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t s = (start + i) % n;

		if (state < 0 ? peek_state(shm, s) != SLOT_FREE
			      : peek_state(shm, s) == state)
			return s;
	}
	return start;
}

void test_random_op(struct shm *shm, uint64_t *rng)
{
	uint64_t r = test_rand(rng), t = now_ns();
	uint32_t out;
	bool hc;

	switch (r % 10) {
	case 0:
	case 1:
		pool_acquire(shm, r / 16 % 4, t, &out);
		break;
	case 2:
		pool_boot_start(shm, BOOT_WARM + r / 16 % 3, t, &out);
		break;
	case 3:
		pool_boot_done(shm, pick(shm, SLOT_BOOTING, rng), 1000,
			       r / 16 % 4 != 0, t, NULL);
		break;
	case 4:
		pool_release(shm, pick(shm, SLOT_LEASED, rng), t, &hc);
		break;
	case 5:
		pool_recycle_done(shm, pick(shm, SLOT_RECYCLING, rng),
				  r / 16 % 3, t, NULL);
		break;
	case 6:
		pool_evict(shm, pick(shm, SLOT_IDLE, rng), t);
		break;
	case 7:
		pool_expire(shm, t);
		break;
	case 8:
		pool_exit(shm, pick(shm, SLOT_DEAD, rng), t);
		break;
	case 9:
		pool_exit(shm, pick(shm, r / 16 % 8 ? SLOT_DEAD : -1, rng), t);
		break;
	}
}

#define TRY(call)                                                              \
	do {                                                                   \
		if ((call) < 0)                                                \
			return -__LINE__;                                      \
	} while (0)

/* Reap every dead slot, as the supervisor does after waitpid. */
static int reap_dead(struct shm *shm, uint64_t now)
{
	for (uint32_t i = 0; i < shm_segment(shm)->hdr.nslots; i++) {
		if (peek_state(shm, i) == SLOT_DEAD)
			TRY(pool_exit(shm, i, now));
	}
	return 0;
}

/* Warm to max_size, then one dropped warm boot, one replenish evicting
 * the oldest, one failed respawn. */
static int script_boots(struct shm *shm, uint64_t *t)
{
	uint32_t s, ev;
	int n;

	TRY(n = pool_warm_count(shm, 3, ++*t));
	for (int i = 0; i < n; i++) {
		TRY(pool_boot_start(shm, BOOT_WARM, ++*t, &s));
		TRY(pool_boot_done(shm, s, 200, true, ++*t, NULL));
	}
	TRY(pool_boot_start(shm, BOOT_WARM, ++*t, &s));
	TRY(pool_boot_done(shm, s, 201, true, ++*t, NULL));
	TRY(pool_boot_start(shm, BOOT_REPLENISH, ++*t, &s));
	TRY(pool_boot_done(shm, s, 202, true, ++*t, &ev));
	TRY(pool_boot_start(shm, BOOT_RESPAWN, ++*t, &s));
	TRY(pool_boot_done(shm, s, 203, false, ++*t, NULL));
	TRY(pool_boot_start(shm, BOOT_WARM, ++*t, &s));
	TRY(pool_exit(shm, s, ++*t)); /* lost while booting */
	return reap_dead(shm, ++*t);
}

/* Hits, a miss, each recycle result, a crash, an eviction. */
static int script_leases(struct shm *shm, uint64_t *t)
{
	uint32_t a, b, c;
	bool hc;

	TRY(pool_acquire(shm, 1, ++*t, &a));
	TRY(pool_note_exec(shm, a));
	TRY(pool_release(shm, a, ++*t, &hc));
	TRY(pool_recycle_done(shm, a, RECYCLE_OK, ++*t, NULL));
	TRY(pool_acquire(shm, 1, ++*t, &a));
	TRY(pool_release(shm, a, ++*t, &hc));
	TRY(pool_recycle_done(shm, a, RECYCLE_UNHEALTHY, ++*t, NULL));
	TRY(pool_acquire(shm, 2, ++*t, &a));
	TRY(pool_acquire(shm, 2, ++*t, &b));
	TRY(pool_acquire(shm, 3, ++*t, &c)); /* a miss */
	TRY(pool_boot_done(shm, c, 204, true, ++*t, NULL));
	TRY(pool_release(shm, c, ++*t, &hc));
	TRY(pool_recycle_done(shm, c, RECYCLE_NOT_READY, ++*t, NULL));
	TRY(pool_release(shm, a, ++*t, &hc));
	TRY(pool_recycle_done(shm, a, RECYCLE_OK, ++*t, NULL));
	TRY(pool_exit(shm, b, ++*t)); /* crash of a leased VM */
	TRY(pool_evict(shm, a, ++*t));
	return reap_dead(shm, ++*t);
}

/* Refill, then let everything expire. */
static int script_expiry(struct shm *shm, uint64_t *t)
{
	uint32_t s;

	TRY(pool_boot_start(shm, BOOT_WARM, ++*t, &s));
	TRY(pool_boot_done(shm, s, 205, true, ++*t, NULL));
	*t += shm_segment(shm)->config.max_idle_ns;
	TRY(pool_expire(shm, *t));
	return reap_dead(shm, ++*t);
}

int test_scripted_workload(struct shm *shm, int rounds)
{
	uint64_t t = 1000000;

	for (int i = 0; i < rounds; i++) {
		TRY(script_boots(shm, &t));
		TRY(script_leases(shm, &t));
		TRY(script_expiry(shm, &t));
	}
	return 0;
}
