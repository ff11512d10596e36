/* Running vmpool-chaos from a test and reading its JSON report. */
#include "tests/chaos_helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Enough for the report of any run these tests make. */
#define OUT_MAX (256 * 1024)

void chaos_bin_path(const char *name, char *buf, size_t len)
{
	char exe[PATH_MAX - 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	cr_assert(n > 0, "readlink /proc/self/exe");
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	*slash = '\0';
	snprintf(buf, len, "%s/../bin/%s", exe, name);
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

/* stdout through a pipe, stderr through a file read once it has
 * exited. */
void chaos_run(const char *const *args, struct chaos_run *r)
{
	char path[PATH_MAX], errpath[] = "/tmp/chaos-test-err-XXXXXX";
	const char *argv[32] = {path};
	int out[2], errfd = mkstemp(errpath), status, i;
	pid_t pid;

	chaos_bin_path("vmpool-chaos", path, sizeof(path));
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

void chaos_run_free(struct chaos_run *r)
{
	free(r->out);
	free(r->err);
}

int64_t chaos_count(json_object *doc, const char *group, const char *key)
{
	json_object *g, *v;

	if (!json_object_object_get_ex(doc, group, &g) ||
	    !json_object_object_get_ex(g, key, &v))
		return -1;
	return json_object_get_int64(v);
}

void chaos_assert_checks(json_object *doc, const char *const must[], size_t n)
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
