/* vmpool-chaos as a soak test: a short seeded run must pass every check. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"

/* Enough for the report of any run these tests make. */
#define OUT_MAX (256 * 1024)

struct run {
	int status; /* exit code, or 128 + signal */
	char *out;  /* stdout */
	char *err;  /* stderr */
};

static void chaos_path(char *buf, size_t len)
{
	char exe[PATH_MAX - 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	cr_assert(n > 0, "readlink /proc/self/exe");
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	*slash = '\0';
	/* <builddir>/tests/x -> <builddir>/bin/vmpool-chaos */
	snprintf(buf, len, "%s/../bin/vmpool-chaos", exe);
}

static char *slurp(int fd)
{
	char *buf = calloc(1, OUT_MAX + 1);
	size_t len = 0;
	ssize_t n;

	cr_assert(buf);
	while (len < OUT_MAX && (n = read(fd, buf + len, OUT_MAX - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += n;
	}
	close(fd);
	return buf;
}

/* Run vmpool-chaos with args (NULL-terminated); stdout through a pipe,
 * stderr through a file read once it has exited. */
static void run_chaos(const char *const *args, struct run *r)
{
	char path[PATH_MAX], errpath[] = "/tmp/chaos-test-err-XXXXXX";
	const char *argv[32] = {path};
	int out[2], errfd = mkstemp(errpath), status, i;
	pid_t pid;

	chaos_path(path, sizeof(path));
	if (access(path, X_OK))
		cr_skip_test("vmpool-chaos is not built");
	cr_assert(errfd >= 0 && pipe2(out, O_CLOEXEC) == 0);
	for (i = 0; args[i] && i < 30; i++)
		argv[i + 1] = args[i];

	pid = fork();
	cr_assert(pid >= 0, "fork");
	if (pid == 0) {
		if (dup2(out[1], 1) < 0 || dup2(errfd, 2) < 0)
			_exit(127);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	r->out = slurp(out[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	r->status =
	    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	lseek(errfd, 0, SEEK_SET);
	r->err = slurp(errfd);
	unlink(errpath);
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static int64_t count_in(json_object *doc, const char *group, const char *key)
{
	json_object *g, *v;

	if (!json_object_object_get_ex(doc, group, &g) ||
	    !json_object_object_get_ex(g, key, &v))
		return -1;
	return json_object_get_int64(v);
}

/* Every check named in the report passed; a failed one is named. */
static void assert_checks(json_object *doc, const char *must[], size_t n)
{
	json_object *checks;
	size_t found = 0;

	cr_assert(json_object_object_get_ex(doc, "checks", &checks));
	for (size_t i = 0; i < json_object_array_length(checks); i++) {
		json_object *c = json_object_array_get_idx(checks, i), *v;
		const char *name, *detail;

		json_object_object_get_ex(c, "name", &v);
		name = json_object_get_string(v);
		json_object_object_get_ex(c, "detail", &v);
		detail = json_object_get_string(v);
		json_object_object_get_ex(c, "ok", &v);
		cr_expect(json_object_get_boolean(v), "check %s: %s", name,
			  detail);
		for (size_t k = 0; k < n; k++)
			found += !strcmp(name, must[k]);
	}
	cr_assert_eq(found, n, "the report lacks some of the %zu checks", n);
}

Test(chaos, short_seeded_run_loses_and_doubles_no_lease, .timeout = 300)
{
	const char *args[] = {"-n", "40", "--seed", "1", "--json", NULL};
	const char *must[] = {
	    "requests_answered",
	    "bad_tenants_answered",
	    "leases_distinct",
	    "no_slot_held_twice",
	    "pool_settled",
	    "final_invariants",
	    "faulty_workers_replaced",
	    "daemon_drained",
	    "segment_removed",
	    "no_process_left",
	};
	const char *kinds[] = {
	    "kill",	     "stop-cont",     "stop-kill",
	    "fault-point",   "guest-stall",   "guest-hang",
	    "guest-garbage", "tenant-vanish", "tenant-garbage",
	};
	struct run r;
	json_object *doc, *v;
	int64_t faults = 0;

	run_chaos(args, &r);
	doc = json_tokener_parse(r.out);
	if (!doc || r.status)
		cr_log_info("vmpool-chaos stderr:\n%s", r.err);
	cr_assert(doc, "the report is not JSON:\n%s", r.out);

	assert_checks(doc, must, ARRAY_SIZE(must));
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		faults += MAX(count_in(doc, "faults", kinds[i]), 0);
	cr_expect_eq(faults, 40, "faults injected: %lld", (long long)faults);
	cr_expect_gt(count_in(doc, "requests", "ok"), 0);
	cr_expect(json_object_object_get_ex(doc, "leases", &v) &&
		      json_object_get_int64(v) > 0,
		  "no lease was made");

	json_object_object_get_ex(doc, "passed", &v);
	cr_expect(
	    json_object_get_boolean(v), "verdict: %s",
	    json_object_get_string(json_object_object_get(doc, "verdict")));
	cr_expect_eq(r.status, 0, "vmpool-chaos exited %d", r.status);
	json_object_put(doc);
	run_free(&r);
}

Test(chaos, unknown_fault_kind_is_refused)
{
	const char *args[] = {"--kinds", "kill,meteor", NULL};
	struct run r;

	run_chaos(args, &r);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "--kinds"), "stderr: %s", r.err);
	cr_expect_eq(r.out[0], '\0', "nothing on stdout: %s", r.out);
	run_free(&r);
}
