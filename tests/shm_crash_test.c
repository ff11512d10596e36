/* Crash safety across processes: deaths at every fault point, random
 * deaths under contention, and lock-free snapshots while writers run. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "config.h"
#include "shm/fault.h"
#include "shm/pool.h"
#include "shm/shm.h"
#include "tests/shm_helpers.h"

#define EXIT_UNREACHED 3 /* the armed point was never passed */
#define EXIT_BROKEN    4 /* a child found an invariant broken */

static void skip_without_fault_points(void)
{
	if (!VMPOOL_FAULT_POINTS)
		cr_skip_test("built with --no-fault-points");
}

static void assert_whole(struct shm *shm)
{
	char why[200] = "";

	cr_assert_eq(test_check_locked(shm, why, sizeof(why)), 0, "%s", why);
}

/* Fork a child that arms `point` and runs the scripted workload. */
static pid_t spawn_scripted(struct shm *shm, const char *point,
			    enum fault_action action)
{
	pid_t pid = fork();

	cr_assert_neq(pid, -1);
	if (pid == 0) {
		if (fault_arm(point, 1, action) < 0)
			_exit(1);
		test_scripted_workload(shm, 2);
		_exit(EXIT_UNREACHED);
	}
	return pid;
}

static void assert_died_as_armed(pid_t pid, const char *point,
				 enum fault_action action)
{
	int status;

	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_neq(WIFEXITED(status) &&
			  WEXITSTATUS(status) == EXIT_UNREACHED,
		      1, "%s never reached", point);
	if (action == FAULT_KILL)
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			  "%s: status %#x", point, status);
	else
		cr_assert(WIFEXITED(status) &&
			      WEXITSTATUS(status) == FAULT_EXIT_CODE,
			  "%s: status %#x", point, status);
}

/* Every death holds the lock: the next locker repairs, and the pool is
 * whole and still works. */
static void die_at_each_point(enum fault_action action)
{
	struct pool_config cfg = test_config();

	skip_without_fault_points();
	for (const char *const *p = fault_point_names; *p; p++) {
		struct shm *shm = test_pool(12, &cfg);
		bool in_repair = strncmp(*p, "repair.", 7) == 0;

		/* A repair point needs an owner that died before. */
		if (in_repair)
			assert_died_as_armed(
			    spawn_scripted(shm, "lock.held", action),
			    "lock.held", action);
		assert_died_as_armed(spawn_scripted(shm, *p, action), *p,
				     action);

		cr_assert_eq(shm_lock(shm), 1, "%s: no repair", *p);
		shm_unlock(shm);
		assert_whole(shm);
		cr_assert_eq(test_scripted_workload(shm, 1), 0, "after %s", *p);
		assert_whole(shm);
		test_pool_drop(shm);
	}
}

Test(shm, sigkill_at_each_fault_point_is_repaired)
{
	die_at_each_point(FAULT_KILL);
}

Test(shm, exit_at_each_fault_point_is_repaired)
{
	die_at_each_point(FAULT_EXIT);
}

Test(shm, death_mid_acquire_leaves_the_vm_idle)
{
	struct pool_config cfg = test_config();
	struct shm *shm = test_pool(4, &cfg);
	uint32_t a = test_boot_idle(shm, 10);
	uint32_t got;
	pid_t pid;

	skip_without_fault_points();
	pid = fork();
	if (pid == 0) {
		fault_arm("acquire_hit.moved", 1, FAULT_KILL);
		pool_acquire(shm, 1, 20, &got);
		_exit(EXIT_UNREACHED);
	}
	assert_died_as_armed(pid, "acquire_hit.moved", FAULT_KILL);

	cr_assert_eq(shm_lock(shm), 1);
	shm_unlock(shm);
	cr_assert_eq(shm_slots(shm_segment(shm))[a].state, SLOT_IDLE);
	cr_assert_eq(shm_segment(shm)->stats.c.hits, 0);
	cr_assert_eq(shm_segment(shm)->stats.repairs, 1);
	cr_assert_eq(pool_acquire(shm, 1, 30, &got), POOL_HIT);
	cr_assert_eq(got, a);
	assert_whole(shm);
}

Test(shm, fault_specs_are_parsed_and_checked)
{
	skip_without_fault_points();
	cr_assert_eq(fault_arm_spec("lock.held"), 0);
	cr_assert_eq(fault_arm_spec("release.moved:3:exit"), 0);
	cr_assert_eq(fault_arm_spec("*:50:kill"), 0);
	cr_assert_eq(fault_arm_spec("no.such.point"), -EINVAL);
	cr_assert_eq(fault_arm_spec("lock.held:0"), -EINVAL);
	cr_assert_eq(fault_arm_spec("lock.held:2:explode"), -EINVAL);
	cr_assert_eq(fault_arm_spec("lock.held:2:kill:more"), -EINVAL);
	fault_disarm_all();
	cr_assert_eq(fault_armed, 0);
}

/* shm_create and shm_attach arm from the variable too, once per process
 * (this one's was used up when the test made its pool). */
Test(shm, fault_env_variable_arms_a_process)
{
	struct pool_config cfg = test_config();
	char name[SHM_NAME_MAX + 1];
	struct shm *rw = NULL;
	uint32_t slot;
	pid_t pid;

	skip_without_fault_points();
	test_pool_named(4, &cfg, name);
	pid = fork();
	if (pid == 0) {
		setenv("VMPOOL_FAULT", "acquire_miss.left:1:exit", 1);
		if (fault_arm_from_env() < 0 ||
		    shm_attach(name, SHM_RW, &rw) < 0)
			_exit(1);
		pool_acquire(rw, 1, 10, &slot);
		_exit(EXIT_UNREACHED);
	}
	assert_died_as_armed(pid, "acquire_miss.left", FAULT_EXIT);
	shm_unlink_name(name);
}

/* Arm a random point (or, failing that, the nth pass of any) and work
 * until death, checking the invariants after every repair. */
static void random_child(struct shm *shm, uint64_t seed, int pause)
{
	uint64_t rng = seed * 0x9e3779b97f4a7c15ull | 1;
	int npoints = 0;
	char why[200];

	while (fault_point_names[npoints])
		npoints++;
	fault_arm(fault_point_names[test_rand(&rng) % npoints],
		  1 + test_rand(&rng) % 4, test_rand(&rng) % 2);
	fault_arm("*", 1 + test_rand(&rng) % 300, test_rand(&rng) % 2);

	for (;;) {
		int rc = shm_lock(shm);

		if (rc == 1 &&
		    pool_check_invariants(shm_segment(shm), why, sizeof(why))) {
			fprintf(stderr, "after repair: %s\n", why);
			_exit(EXIT_BROKEN);
		}
		if (rc >= 0)
			shm_unlock(shm);
		test_random_op(shm, &rng);
		for (volatile int spin = 0; spin < pause; spin++)
			;
	}
}

static void reap_one(int *deaths)
{
	int status;

	cr_assert_gt(wait(&status), 0);
	cr_assert_not(WIFEXITED(status) &&
			  WEXITSTATUS(status) != FAULT_EXIT_CODE,
		      "child exited %d", WEXITSTATUS(status));
	(*deaths)++;
}

Test(shm, ten_thousand_random_deaths_keep_every_invariant, .timeout = 600)
{
	struct pool_config cfg = test_config();
	const int want = 10000, procs = 4;
	struct shm *shm = NULL;
	int deaths = 0, live = 0;
	uint64_t seed = 1;

	skip_without_fault_points();
	cfg.max_size = 5;
	cfg.max_idle_ns = 200000;
	shm = test_pool(16, &cfg);

	while (deaths < want) {
		for (; live < procs; live++) {
			pid_t pid = fork();

			cr_assert_neq(pid, -1);
			if (pid == 0)
				random_child(shm, seed, 0);
			seed++;
		}
		reap_one(&deaths);
		live--;
	}
	while (live--)
		reap_one(&deaths);

	assert_whole(shm);
	cr_log_info("%d deaths, %llu repairs", deaths,
		    (unsigned long long)shm_segment(shm)->stats.repairs);
	cr_assert_gt(shm_segment(shm)->stats.repairs, want / 4);
}

/* A writer with pauses, so readers find quiet moments. */
static void writer_child(struct shm *shm, uint64_t seed, int ops)
{
	uint64_t rng = seed;

	for (int i = 0; i < ops; i++) {
		test_random_op(shm, &rng);
		for (volatile int spin = 0; spin < 2000; spin++)
			;
	}
	_exit(0);
}

Test(shm, snapshots_are_never_torn_while_writers_run, .timeout = 60)
{
	struct pool_config cfg = test_config();
	struct shm *shm = NULL;
	char *buf = NULL;
	int copies = 0, busy = 0, status;
	char why[200];
	pid_t w[2];

	cfg.max_idle_ns = 200000;
	shm = test_pool(16, &cfg);
	buf = malloc(shm_size(shm));
	for (int i = 0; i < 2; i++) {
		w[i] = fork();
		if (w[i] == 0)
			writer_child(shm, 77 + i, 20000);
	}

	while (waitpid(w[0], &status, WNOHANG) == 0 ||
	       waitpid(w[1], &status, WNOHANG) == 0) {
		if (shm_snapshot(shm, buf, shm_size(shm)) < 0) {
			busy++;
			continue;
		}
		copies++;
		cr_assert_eq(
		    pool_check_invariants((void *)buf, why, sizeof(why)), 0,
		    "snapshot %d: %s", copies, why);
	}
	waitpid(-1, &status, 0);
	cr_log_info("%d snapshots checked, %d gave up", copies, busy);
	cr_assert_gt(copies, 100);
	free(buf);
}

/* Keep `procs` random dying children running until `deaths` have died,
 * snapshotting between reaps; every snapshot taken must be whole. */
Test(shm, snapshots_stay_whole_while_writers_die, .timeout = 300)
{
	struct pool_config cfg = test_config();
	int deaths = 0, live = 0, copies = 0, status;
	struct shm *shm = NULL;
	uint64_t seed = 5000;
	char *buf = NULL;
	char why[200];

	skip_without_fault_points();
	cfg.max_idle_ns = 200000;
	shm = test_pool(16, &cfg);
	buf = malloc(shm_size(shm));

	while (deaths < 500) {
		for (; live < 2; live++, seed++) {
			if (fork() == 0)
				random_child(shm, seed, 2000);
		}
		if (waitpid(-1, &status, WNOHANG) > 0) {
			deaths++;
			live--;
		}
		if (shm_snapshot(shm, buf, shm_size(shm)) < 0)
			continue;
		copies++;
		cr_assert_eq(
		    pool_check_invariants((void *)buf, why, sizeof(why)), 0,
		    "snapshot %d: %s", copies, why);
	}
	while (live-- > 0)
		wait(&status);
	cr_log_info("%d snapshots checked across %d deaths", copies, deaths);
	cr_assert_gt(copies, 0);
	free(buf);
}
