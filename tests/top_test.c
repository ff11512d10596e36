/* vmpool-top: its outputs for real segments, driven by the pool policy. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "shm/pool.h"
#include "shm/shm.h"
#include "tests/shm_helpers.h"
#include "tools/top.h"

#define OUT_MAX (4 << 20)

extern char **environ;

/* Pools named by a test, unlinked when it ends however it ends. */
static char names[4][SHM_NAME_MAX + 1];
static pid_t writer_pid;

static void stop_writer(void)
{
	if (writer_pid > 0) {
		kill(writer_pid, SIGKILL);
		waitpid(writer_pid, NULL, 0);
	}
	writer_pid = 0;
}

static void unlink_names(void)
{
	stop_writer();
	for (unsigned i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i][0])
			shm_unlink_name(names[i]);
	test_pools_cleanup();
}

TestSuite(top, .fini = unlink_names);

static struct shm *named_pool(unsigned which, uint32_t nslots,
			      const struct pool_config *cfg)
{
	return test_pool_named(nslots, cfg, names[which]);
}

/* The vmpool-top beside this test, or VMPOOL_TOP. */
static void top_path(char *out, size_t size)
{
	const char *env = getenv("VMPOOL_TOP");
	char self[4096];
	ssize_t n;

	if (env) {
		snprintf(out, size, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	cr_assert_gt(n, 0);
	self[n] = '\0';
	snprintf(out, size, "%s/../bin/vmpool-top", dirname(self));
	if (access(out, X_OK))
		cr_skip_test("%s not built", out);
}

struct run {
	int status; /* exit code, or 128 + signal */
	char *out, *err;
};

static char *slurp(int fd)
{
	off_t len = lseek(fd, 0, SEEK_END);
	char *buf;

	cr_assert(len >= 0 && len < OUT_MAX, "output of %lld bytes",
		  (long long)len);
	buf = calloc(1, len + 1);
	cr_assert_eq(pread(fd, buf, len, 0), len);
	close(fd);
	return buf;
}

/* Run vmpool-top with args (NULL-terminated), capturing both outputs. */
static struct run run_top(const char *const *args)
{
	char path[4096];
	const char *argv[16] = {"vmpool-top"};
	int out = memfd_create("out", MFD_CLOEXEC);
	int err = memfd_create("err", MFD_CLOEXEC);
	posix_spawn_file_actions_t fa;
	struct run r = {0};
	pid_t pid;

	top_path(path, sizeof(path));
	for (int i = 0; args[i]; i++)
		argv[i + 1] = args[i];
	cr_assert(out >= 0 && err >= 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out, STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, err, STDERR_FILENO);
	cr_assert_eq(posix_spawn(&pid, path, &fa, NULL, (char **)argv, environ),
		     0);
	posix_spawn_file_actions_destroy(&fa);

	cr_assert_eq(waitpid(pid, &r.status, 0), pid);
	r.status = WIFEXITED(r.status) ? WEXITSTATUS(r.status)
				       : 128 + WTERMSIG(r.status);
	r.out = slurp(out);
	r.err = slurp(err);
	return r;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static json_object *run_json(const char *name)
{
	const char *args[] = {"--once", "--json", "--name", name, NULL};
	struct run r = run_top(args);
	json_object *doc;

	cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
	doc = json_tokener_parse(r.out);
	cr_assert_not_null(doc, "not JSON:\n%s", r.out);
	run_free(&r);
	return doc;
}

/* The value at a path of keys and array indices: "slots", "3", "state". */
static json_object *at(json_object *o, const char *path)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k;
	     k = strtok_r(NULL, ".", &save)) {
		json_object *next = NULL;
		bool found;

		if (json_object_is_type(o, json_type_array)) {
			next = json_object_array_get_idx(o, atoi(k));
			found = next != NULL;
		} else {
			found = json_object_object_get_ex(o, k, &next);
		}
		cr_assert(found, "no %s in the JSON", path);
		o = next;
	}
	return o;
}

static int64_t num(json_object *o, const char *path)
{
	return json_object_get_int64(at(o, path));
}

static const char *text(json_object *o, const char *path)
{
	return json_object_get_string(at(o, path));
}

static void slot_state_is(json_object *doc, uint32_t slot, const char *state)
{
	char path[64];

	snprintf(path, sizeof(path), "slots.%u.state", slot);
	cr_expect_str_eq(text(doc, path), state, "slot %u", slot);
}

/* Two idle VMs, one leased by a hit, one by a miss, one recycling. */
static struct shm *busy_pool(unsigned which, uint32_t *s)
{
	struct pool_config cfg = test_config();
	struct shm *shm;
	bool hc;

	cfg.max_idle_ns = 3600000000000ull;
	cfg.max_size = 4;
	shm = named_pool(which, 8, &cfg);
	s[0] = test_boot_idle(shm, 10);
	s[1] = test_boot_idle(shm, 20);
	s[2] = test_boot_idle(shm, 30);
	s[3] = test_lease(shm, 1000, 40); /* hit: s[2], most recent */
	s[4] = test_lease(shm, 1001, 50); /* hit: s[1] */
	s[5] = test_lease(shm, 1002, 60); /* hit: s[0] */
	s[6] = test_lease(shm, 1003, 70); /* miss */
	cr_assert_eq(pool_note_exec(shm, s[6]), 0);
	test_give_back(shm, s[3], 80);
	cr_assert_eq(pool_release(shm, s[4], 90, &hc), 0);
	return shm;
}

Test(top, json_shows_slot_states_and_counts)
{
	uint32_t s[7];
	json_object *doc;

	busy_pool(0, s);
	doc = run_json(names[0]);

	cr_expect_str_eq(text(doc, "pool"), names[0]);
	cr_expect_eq(num(doc, "segment.nslots"), 8);
	cr_expect_eq(num(doc, "segment.creator_pid"), getpid());
	cr_expect_str_eq(text(doc, "supervisor.status"), "running");
	cr_expect_eq(num(doc, "config.max_size"), 4);
	cr_expect_eq(num(doc, "config.health_check_interval"), 2);
	cr_expect_eq(num(doc, "stats.hits"), 3);
	cr_expect_eq(num(doc, "stats.misses"), 1);
	cr_expect_eq(num(doc, "stats.leases"), 4);
	cr_expect_eq(num(doc, "states.idle"), 1);
	cr_expect_eq(num(doc, "states.leased"), 2);
	cr_expect_eq(num(doc, "states.recycling"), 1);
	cr_expect_eq(num(doc, "states.free"), 4);
	slot_state_is(doc, s[3], "idle");
	slot_state_is(doc, s[4], "recycling");
	slot_state_is(doc, s[5], "leased");
	slot_state_is(doc, s[6], "leased");
	cr_expect_eq(num(doc, "slots.3.uid"), 1003);
	cr_expect_eq(s[6], 3);
	cr_expect_eq(num(doc, "slots.3.execs"), 1);
	cr_expect_eq(num(doc, "latency.boot.count"), 4);
	cr_expect_eq(json_object_array_length(at(doc, "events")), 14);
	cr_expect_str_eq(text(doc, "events.13.kind"), "release");
	json_object_put(doc);
}

Test(top, json_percentiles_come_from_the_histograms)
{
	struct pool_config cfg = test_config();
	struct shm *shm = named_pool(0, 2, &cfg);
	json_object *doc;

	for (int i = 0; i < 90; i++)
		cr_assert_eq(pool_record(shm, HIST_ACQUIRE, 1000), 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(pool_record(shm, HIST_ACQUIRE, 1000000), 0);
	doc = run_json(names[0]);

	cr_expect_eq(num(doc, "latency.acquire.count"), 100);
	cr_expect(num(doc, "latency.acquire.p50_ns") >= 512 &&
		      num(doc, "latency.acquire.p50_ns") <= 1024,
		  "p50 %lld", (long long)num(doc, "latency.acquire.p50_ns"));
	cr_expect(num(doc, "latency.acquire.p99_ns") >= 524288 &&
		      num(doc, "latency.acquire.p99_ns") <= 1048576,
		  "p99 %lld", (long long)num(doc, "latency.acquire.p99_ns"));
	cr_expect(json_object_is_type(at(doc, "latency.boot.p50_ns"),
				      json_type_null));
	json_object_put(doc);
}

static void has_line(const char *out, const char *line)
{
	char want[256];

	snprintf(want, sizeof(want), "\n%s\n", line);
	cr_expect_not_null(strstr(out, want), "no line '%s' in:\n%s", line,
			   out);
}

Test(top, prometheus_has_metric_lines)
{
	const char *args[] = {"--prometheus", "-n", names[0], NULL};
	char line[256];
	uint32_t s[7];
	struct run r;

	busy_pool(0, s);
	r = run_top(args);
	cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);

	has_line(r.out, "# TYPE vmpool_hits_total counter");
	cr_expect_not_null(strstr(r.out, "# HELP vmpool_hits_total "));
#define LINE(fmt, ...)                                                         \
	(snprintf(line, sizeof(line), fmt, names[0], __VA_ARGS__), line)
	has_line(r.out, LINE("vmpool_hits_total{pool=\"%s\"} %d", 3));
	has_line(r.out, LINE("vmpool_misses_total{pool=\"%s\"} %d", 1));
	has_line(r.out, LINE("vmpool_supervisor_up{pool=\"%s\"} %d", 1));
	has_line(r.out, LINE("vmpool_slots{pool=\"%s\"} %d", 8));
	has_line(r.out, LINE("vmpool_slot_states{pool=\"%s\",state=\"%s\"} 2",
			     "leased"));
	has_line(r.out, LINE("vmpool_boot_duration_seconds_count{pool=\"%s\"} "
			     "%d",
			     4));
	has_line(r.out,
		 LINE("vmpool_boot_duration_seconds_bucket{pool=\"%s\",le=\"%s"
		      "\"} 4",
		      "+Inf"));
#undef LINE
	has_line(r.out, "# TYPE vmpool_boot_duration_seconds histogram");
	run_free(&r);
}

/* A segment made by a process that has exited since. */
static void pool_of_dead_creator(unsigned which)
{
	struct pool_config cfg = test_config();
	int status;
	pid_t pid;

	snprintf(names[which], sizeof(names[which]), "test-%d-gone", getpid());
	shm_unlink_name(names[which]);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		struct shm *shm;

		_exit(shm_create(names[which], 2, &cfg, &shm) ? 1 : 0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

Test(top, dead_creator_is_reported_as_supervisor_gone)
{
	const char *args[] = {"--once", names[0], NULL};
	json_object *doc;
	struct run r;

	pool_of_dead_creator(0);
	doc = run_json(names[0]);
	cr_expect_str_eq(text(doc, "supervisor.status"), "gone");
	cr_expect_eq(json_object_get_boolean(at(doc, "supervisor.alive")), 0);
	json_object_put(doc);

	r = run_top(args);
	cr_expect_eq(r.status, 0, "exit %d: %s", r.status, r.err);
	cr_expect_not_null(strstr(r.out, "supervisor gone"), "%s", r.out);
	run_free(&r);
}

Test(top, creator_pid_reused_by_a_younger_process_is_gone)
{
	/* No process of ours ran thirty years ago: that creator is gone. */
	cr_expect(top_creator_alive(getpid(), wall_ns()));
	cr_expect(!top_creator_alive(getpid(), wall_ns() - 3600000000000ull *
							       24 * 365 * 30));
	cr_expect(!top_creator_alive(0, wall_ns()));
}

Test(top, missing_pool_is_a_clear_error)
{
	const char *args[] = {"--once", "--json", "--name", "no-such-pool-x",
			      NULL};
	struct run r = run_top(args);

	cr_expect_eq(r.status, 1);
	cr_expect_str_empty(r.out);
	cr_expect_not_null(strstr(r.err, "/dev/shm/vmpool.no-such-pool-x"),
			   "%s", r.err);
	cr_expect_not_null(strstr(r.err, "does not exist"), "%s", r.err);
	run_free(&r);
}

/* A file of the right size but not a pool. */
static void write_junk_segment(unsigned which)
{
	char path[128];
	int fd;

	snprintf(names[which], sizeof(names[which]), "test-%d-junk", getpid());
	snprintf(path, sizeof(path), "/dev/shm/vmpool.%s", names[which]);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, shm_total_size(4)), 0);
	cr_assert_eq(pwrite(fd, "junkjunk", 8, 0), 8);
	close(fd);
}

Test(top, wrong_magic_or_version_is_told_in_words)
{
	const char *junk[] = {"--once", names[0], NULL};
	const char *old[] = {"--once", names[1], NULL};
	struct pool_config cfg = test_config();
	struct shm *shm;
	struct run r;

	write_junk_segment(0);
	r = run_top(junk);
	cr_expect_eq(r.status, 1);
	cr_expect_not_null(strstr(r.err, "not a vmpool segment"), "%s", r.err);
	run_free(&r);

	shm = named_pool(1, 2, &cfg);
	shm_segment(shm)->hdr.abi_version = SHM_ABI_VERSION + 1;
	r = run_top(old);
	cr_expect_eq(r.status, 1);
	cr_expect_not_null(strstr(r.err, "another ABI version"), "%s", r.err);
	run_free(&r);
}

Test(top, bad_usage_exits_2)
{
	const char *bad_opt[] = {"--frobnicate", NULL};
	const char *bad_name[] = {"--once", "../etc", NULL};
	const char *bad_delay[] = {"-d", "0", NULL};
	const char *const *cases[] = {bad_opt, bad_name, bad_delay};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct run r = run_top(cases[i]);

		cr_expect_eq(r.status, 2, "case %zu: exit %d", i, r.status);
		cr_expect_str_empty(r.out);
		run_free(&r);
	}
}

Test(top, text_view_fits_80_columns)
{
	const char *args[] = {"--once", names[0], NULL};
	uint32_t s[7];
	struct run r;

	busy_pool(0, s);
	r = run_top(args);
	cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
	for (char *line = r.out, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		cr_assert_not_null(nl);
		cr_expect_leq(nl - line, 80, "%.*s", (int)(nl - line), line);
	}
	cr_expect_not_null(strstr(r.out, "leased"));
	cr_expect_not_null(strstr(r.out, "hit, generation"));
	run_free(&r);
}

/* A writer in another process mutating until killed (stop_writer). */
static void spawn_writer(struct shm *shm)
{
	pid_t pid = fork();

	cr_assert_neq(pid, -1);
	if (pid == 0) {
		uint64_t rng = 0x9e3779b97f4a7c15ull ^ getpid();

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			test_random_op(shm, &rng);
	}
	writer_pid = pid;
}

Test(top, snapshots_are_whole_while_another_process_writes)
{
	struct pool_config cfg = test_config();
	struct shm *shm = named_pool(0, 16, &cfg);
	struct top_snap snap = {0};
	char why[200] = "";
	int whole = 0;

	spawn_writer(shm);
	for (int i = 0; i < 2000; i++) {
		int rc = top_snap_take(&snap, names[0]);

		if (rc == -EBUSY)
			continue;
		cr_assert_eq(rc, 0, "take: %d", rc);
		cr_assert_eq(pool_check_invariants(snap.seg, why, sizeof(why)),
			     0, "snapshot %d: %s", i, why);
		cr_assert_eq(snap.states[SLOT_IDLE], snap.seg->stats.c.idle);
		whole++;
	}
	stop_writer();
	top_snap_free(&snap);
	cr_expect_gt(whole, 0, "no snapshot got through");
}

Test(top, json_stays_consistent_while_another_process_writes)
{
	struct pool_config cfg = test_config();
	struct shm *shm = named_pool(0, 16, &cfg);
	spawn_writer(shm);
	for (int i = 0; i < 20; i++) {
		json_object *doc = run_json(names[0]);
		int64_t sum = 0;

		for (unsigned st = 0; st < SLOT_NSTATES; st++) {
			char path[32];

			snprintf(path, sizeof(path), "states.%s",
				 shm_state_name(st));
			sum += num(doc, path);
		}
		cr_expect_eq(sum, 16);
		cr_expect_eq(num(doc, "states.idle"), num(doc, "stats.idle"));
		json_object_put(doc);
	}
	stop_writer();
}

Test(top, percentile_falls_in_the_bucket_of_its_rank)
{
	uint64_t hist[SHM_HIST_BUCKETS] = {0}, ns;

	cr_expect(!top_percentile(hist, 0.5, &ns));
	hist[pool_hist_bucket(3000)] = 99; /* [2048, 4096) */
	hist[pool_hist_bucket(5e9)] = 1;
	cr_assert(top_percentile(hist, 0.5, &ns));
	cr_expect(ns >= 2048 && ns < 4096, "p50 %llu", (unsigned long long)ns);
	cr_assert(top_percentile(hist, 0.99, &ns));
	cr_expect(ns >= 2048 && ns <= 4096, "p99 %llu", (unsigned long long)ns);
	cr_assert(top_percentile(hist, 1.0, &ns));
	cr_expect(ns >= (1ull << 32) && ns <= (1ull << 33), "p100 %llu",
		  (unsigned long long)ns);
}

Test(top, events_out_of_range_are_told_not_trusted)
{
	struct pool_event ev = {.kind = 999, .value = 7, .slot = 3};
	char buf[96];

	top_event_text(&ev, buf, sizeof(buf));
	cr_expect_str_eq(buf, "unknown event 999, value 7");
	ev.kind = PEV_EVICT;
	ev.value = 1234;
	top_event_text(&ev, buf, sizeof(buf));
	cr_expect_str_eq(buf, "evicted: ?");
	cr_expect_str_eq(top_event_name(PEV_NKINDS), "?");
}
