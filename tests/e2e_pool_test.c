/* End to end: the seed's pool semantics through libvmpool and vmpoold. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shm/layout.h"
#include "tests/e2e_helpers.h"

static struct daemon d;
static struct vmpool *pool;

static void teardown(void)
{
	vmpool_close(pool);
	pool = NULL;
	daemon_stop(&d);
}

TestSuite(e2e_pool, .fini = teardown, .timeout = 120);

static void start(const char *const *args)
{
	daemon_start(&d, args);
	pool = e2e_pool(&d);
}

/* Release and wait until the pool has `idle` idle VMs again. */
static void release_until_idle(struct vmpool_lease *l, int64_t idle)
{
	cr_assert_eq(vmpool_release(l), 0);
	cr_assert_geq(wait_for_state(d.name, SLOT_IDLE, idle, E2E_WAIT_MS),
		      idle);
}

static void warm(uint32_t n, uint32_t expect)
{
	uint32_t started = 0;

	cr_assert_eq(vmpool_warm(pool, n, &started), 0, "%s",
		     vmpool_error(pool));
	cr_expect_eq(started, expect);
}

Test(e2e_pool, a_boot_is_a_miss_and_a_warm_vm_a_hit)
{
	const char *args[] = {"--min-size", "0", NULL};
	struct vmpool_lease_info info;
	struct vmpool_lease *l;

	start(args);
	l = e2e_lease(pool, &info);
	cr_expect_eq(info.hit, 0);
	cr_expect_str_eq(info.backend, "ns");
	release_until_idle(l, 1);

	l = e2e_lease(pool, &info);
	cr_expect_eq(info.hit, 1);
	cr_expect_eq(e2e_counter(pool, "hit"), 1);
	cr_expect_eq(e2e_counter(pool, "miss"), 1);
	cr_expect_eq(e2e_counter(pool, "in_use"), 1);
	cr_assert_eq(vmpool_release(l), 0);
	assert_pool_sound(d.name);
}

Test(e2e_pool, acquire_prefers_the_most_recently_used_vm)
{
	const char *args[] = {"--min-size", "0", "--max-size", "4", NULL};
	struct vmpool_lease_info a, b, again;
	struct vmpool_lease *la, *lb;

	start(args);
	warm(2, 2);
	cr_assert_geq(wait_for_state(d.name, SLOT_IDLE, 2, E2E_WAIT_MS), 2);
	la = e2e_lease(pool, &a);
	lb = e2e_lease(pool, &b);
	cr_assert_neq(a.slot, b.slot);

	release_until_idle(la, 1);
	release_until_idle(lb, 2);
	la = e2e_lease(pool, &again);
	cr_expect_eq(again.slot, b.slot, "MRU slot %u, got %u", b.slot,
		     again.slot);
	cr_expect_eq(again.hit, 1);
	cr_assert_eq(vmpool_release(la), 0);
	assert_pool_sound(d.name);
}

Test(e2e_pool, idle_vms_expire_after_max_idle)
{
	const char *args[] = {"--min-size", "0", "--max-idle", "300ms", NULL};

	start(args);
	warm(1, 1);
	cr_assert_geq(wait_for_state(d.name, SLOT_IDLE, 1, E2E_WAIT_MS), 1);
	cr_expect_geq(e2e_wait_counter(pool, "evict", 1), 1);
	cr_expect_eq(e2e_counter(pool, "idle"), 0);
	assert_pool_sound(d.name);
}

Test(e2e_pool, the_oldest_idle_vm_is_evicted_at_max_size)
{
	const char *args[] = {"--min-size",  "0", "--max-size", "2",
			      "--max-total", "4", NULL};
	struct vmpool_lease_info i[3], next;
	struct vmpool_lease *l[3];

	start(args);
	for (int k = 0; k < 3; k++)
		l[k] = e2e_lease(pool, &i[k]);
	release_until_idle(l[0], 1);
	release_until_idle(l[1], 2);
	cr_assert_eq(vmpool_release(l[2]), 0);
	cr_expect_geq(e2e_wait_counter(pool, "evict", 1), 1);
	cr_expect_eq(e2e_counter(pool, "evict"), 1);

	for (int k = 2; k >= 1; k--) {
		l[k] = e2e_lease(pool, &next);
		cr_expect_eq(next.slot, i[k].slot, "lease %d: slot %u, not %u",
			     k, next.slot, i[k].slot);
		cr_expect_neq(next.slot, i[0].slot, "the oldest was kept");
	}
	vmpool_release(l[1]);
	vmpool_release(l[2]);
	assert_pool_sound(d.name);
}

Test(e2e_pool, min_size_is_kept_warm_behind_a_lease)
{
	const char *args[] = {"--min-size", "2", "--max-size", "4", NULL};
	struct vmpool_lease_info info;
	struct vmpool_lease *l;

	start(args);
	cr_assert_geq(wait_for_state(d.name, SLOT_IDLE, 2, E2E_WAIT_MS), 2);
	l = e2e_lease(pool, &info);
	cr_expect_eq(info.hit, 1);
	cr_expect_geq(wait_for_state(d.name, SLOT_IDLE, 2, E2E_WAIT_MS), 2,
		      "idle refilled while the lease is held");
	cr_expect_geq(e2e_counter(pool, "boots"), 3);
	cr_assert_eq(vmpool_release(l), 0);
	assert_pool_sound(d.name);
}

Test(e2e_pool, warm_fills_idle_up_to_max_size)
{
	const char *args[] = {"--min-size", "0", "--max-size", "3", NULL};

	start(args);
	warm(5, 3);
	cr_expect_geq(wait_for_state(d.name, SLOT_IDLE, 3, E2E_WAIT_MS), 3);
	warm(5, 0);
	warm(1, 0);
	cr_expect_eq(e2e_counter(pool, "idle"), 3);
	assert_pool_sound(d.name);
}

Test(e2e_pool, every_nth_release_checks_health_and_a_failed_check_evicts)
{
	const char *args[] = {"--min-size", "0", "--health-check-interval", "2",
			      NULL};
	struct vmpool_lease_info first, second;
	struct vmpool_lease *l;
	struct e2e_out out;
	int code;

	start(args);
	warm(1, 1);
	cr_assert_geq(wait_for_state(d.name, SLOT_IDLE, 1, E2E_WAIT_MS), 1);

	/* A tenant breaks the health check's command for whoever is next;
	 * the first release is not checked, so the VM stays. */
	l = e2e_lease(pool, &first);
	cr_assert_eq(e2e_sh(l, "rm -f /bin/true /usr/bin/true", &out, &code),
		     0);
	release_until_idle(l, 1);
	cr_expect_eq(e2e_counter(pool, "health_check_failures"), 0);
	cr_expect_eq(e2e_counter(pool, "evict"), 0);

	l = e2e_lease(pool, &second);
	cr_expect_eq(second.slot, first.slot);
	cr_expect_eq(e2e_sh(l, "test -e /bin/true", &out, &code), 0);
	cr_expect_neq(code, 0, "clean does not restore /bin/true");
	cr_assert_eq(vmpool_release(l), 0);

	cr_expect_eq(e2e_wait_counter(pool, "health_check_failures", 1), 1);
	cr_expect_geq(e2e_wait_counter(pool, "evict", 1), 1);
	assert_pool_sound(d.name);
}

Test(e2e_pool, a_lease_after_vmpoold_restarted_connects_anew)
{
	const char *args[] = {"--min-size", "1", NULL};
	struct vmpool_lease_info info;
	struct vmpool_lease *l;
	struct vmpool *p;
	char link[64];

	/* The pool's path stays; the daemon behind it changes. */
	snprintf(link, sizeof(link), "/tmp/e2e-restart-%d.sock", (int)getpid());
	start(args);
	unlink(link);
	cr_assert_eq(symlink(d.sock, link), 0);
	cr_assert_eq(vmpool_connect(link, &p), 0, "%s", vmpool_error(p));
	l = e2e_lease(p, &info);
	cr_assert_eq(vmpool_release(l), 0);

	vmpool_close(pool);
	pool = NULL;
	daemon_stop(&d);
	start(args);
	unlink(link);
	cr_assert_eq(symlink(d.sock, link), 0);

	l = e2e_lease(p, &info);
	cr_expect_eq(vmpool_release(l), 0);
	vmpool_close(p);
	unlink(link);
	assert_pool_sound(d.name);
}
