/* End to end: the vmpool command line against vmpoold, or on its own. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "kvm/host.h"
#include "tests/e2e_helpers.h"

static struct daemon d;

static void teardown(void)
{
	daemon_stop(&d);
}

TestSuite(e2e_cli, .fini = teardown, .timeout = 120);

static const char *cli_path(void)
{
	static char path[PATH_MAX];
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	exe[n > 0 ? n : 0] = '\0';
	snprintf(path, sizeof(path), "%s/../bin/vmpool", dirname(exe));
	if (access(path, X_OK))
		cr_skip_test("%s is not built", path);
	return path;
}

struct cli {
	pid_t pid;
	int out; /* its stdout */
	int err; /* its stderr */
};

/* Start vmpool with args, stdin from `input` (NULL: /dev/null). */
static void cli_spawn(struct cli *c, const char *const *args, const char *input)
{
	const char *argv[32] = {cli_path()};
	int o[2], e[2], i[2];

	for (int k = 0; args[k] && k < 30; k++)
		argv[k + 1] = args[k];
	cr_assert_eq(
	    pipe2(o, O_CLOEXEC) | pipe2(e, O_CLOEXEC) | pipe2(i, O_CLOEXEC), 0);
	c->pid = fork();
	cr_assert_geq(c->pid, 0);
	if (c->pid == 0) {
		dup2(i[0], 0);
		dup2(o[1], 1);
		dup2(e[1], 2);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	close(o[1]);
	close(e[1]);
	close(i[0]);
	if (input)
		write_full(i[1], input, strlen(input));
	close(i[1]);
	c->out = o[0];
	c->err = e[0];
}

/* Drain a pipe into a malloc'd string. */
static char *slurp_fd(int fd)
{
	size_t len = 0, cap = 4096;
	char *s = malloc(cap);
	ssize_t n;

	while ((n = read(fd, s + len, cap - len - 1)) > 0) {
		len += n;
		if (len + 1 == cap)
			s = realloc(s, cap *= 2);
	}
	s[len] = '\0';
	close(fd);
	return s;
}

/* Wait for its end: the exit status, its output in *out and *err. */
static int cli_finish(struct cli *c, char **out, char **err)
{
	int status;

	*out = slurp_fd(c->out);
	*err = slurp_fd(c->err);
	cr_assert_eq(waitpid(c->pid, &status, 0), c->pid);
	cr_assert(WIFEXITED(status), "vmpool died: %#x", status);
	return WEXITSTATUS(status);
}

static int cli(const char *const *args, const char *input, char **out,
	       char **err)
{
	struct cli c;

	cli_spawn(&c, args, input);
	return cli_finish(&c, out, err);
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

Test(e2e_cli, run_exits_with_the_commands_code_env_and_cwd)
{
	const char *args[] = {"run",
			      "--socket",
			      d.sock,
			      "--env",
			      "A=b",
			      "--cwd",
			      "/tmp",
			      "--",
			      "sh",
			      "-c",
			      "echo $A $(pwd); echo oops >&2; exit 5",
			      NULL};
	char *out, *err;

	daemon_start(&d, NULL);
	cr_expect_eq(cli(args, NULL, &out, &err), 5, "%s", err);
	cr_expect_str_eq(out, "b /tmp\n");
	cr_expect_str_eq(err, "oops\n");
	free(out);
	free(err);
}

Test(e2e_cli, run_reports_signals_timeouts_and_missing_commands)
{
	const char *killed[] = {"run", "--socket", d.sock,	 "--",
				"sh",  "-c",	   "kill -9 $$", NULL};
	const char *slow[] = {"run", "--socket", d.sock, "--timeout", "200ms",
			      "--",  "sleep",	 "30",	 NULL};
	const char *missing[] = {"run", "--socket",	    d.sock,
				 "--",	"/no/such/program", NULL};
	char *out, *err;

	daemon_start(&d, NULL);
	cr_expect_eq(cli(killed, NULL, &out, &err), 137, "%s", err);
	free(out);
	free(err);
	cr_expect_eq(cli(slow, NULL, &out, &err), 124, "%s", err);
	free(out);
	free(err);
	cr_expect_eq(cli(missing, NULL, &out, &err), 127, "%s", err);
	cr_expect(strstr(err, "/no/such/program"), "%s", err);
	free(out);
	free(err);
}

Test(e2e_cli, run_streams_output_while_the_command_runs)
{
	const char *args[] = {"run",
			      "--socket",
			      d.sock,
			      "--",
			      "sh",
			      "-c",
			      "echo first; sleep 5; echo second",
			      NULL};
	char first[7] = {0}, *out, *err;
	struct cli c;

	daemon_start(&d, NULL);
	cli_spawn(&c, args, NULL);
	cr_assert_eq(read_full(c.out, first, 6), 0);
	cr_expect_str_eq(first, "first\n");
	cr_expect_eq(waitpid(c.pid, NULL, WNOHANG), 0,
		     "output came before the command ended");
	cr_expect_eq(cli_finish(&c, &out, &err), 0);
	cr_expect_str_eq(out, "second\n");
	free(out);
	free(err);
}

Test(e2e_cli, run_passes_stdin_when_asked)
{
	const char *args[] = {"run", "--socket", d.sock, "--stdin", "--",
			      "tr",  "a-z",	 "A-Z",	 NULL};
	char *out, *err;

	daemon_start(&d, NULL);
	cr_expect_eq(cli(args, "shout\n", &out, &err), 0, "%s", err);
	cr_expect_str_eq(out, "SHOUT\n");
	free(out);
	free(err);
}

static bool kvm_runs_guest(struct kvm_host *h)
{
	kvm_probe(h);
	return h->kind == KVM_HOST_HARDWARE || h->kind == KVM_HOST_UNKNOWN;
}

Test(e2e_cli, without_a_daemon_run_brings_its_own_pool)
{
	const char *args[] = {"run", "--", "uname", "-s", NULL};
	struct kvm_host h;
	char *out, *err;

	setenv(VMPOOL_SOCKET_ENV, "/nonexistent/vmpool.sock", 1);
	if (kvm_runs_guest(&h))
		cr_skip_test("this host's KVM runs the guest (%s): the "
			     "private pool would boot VMs",
			     h.desc);
	cr_expect_eq(cli(args, NULL, &out, &err), 0, "%s", err);
	cr_expect_str_eq(out, "Linux\n");
	cr_expect_eq(count_lines(err), 1, "one notice line:\n%s", err);
	cr_expect(strstr(err, "ns backend"), "%s", err);
	cr_expect(strstr(err, "weaker isolation"), "%s", err);
	free(out);
	free(err);
}

Test(e2e_cli, an_explicit_kvm_backend_fails_clearly_where_kvm_cannot_run)
{
	const char *args[] = {"run", "--backend=kvm", "--", "true", NULL};
	struct kvm_host h;
	char *out, *err;

	setenv(VMPOOL_SOCKET_ENV, "/nonexistent/vmpool.sock", 1);
	if (kvm_runs_guest(&h))
		cr_skip_test("this host's KVM runs the guest (%s)", h.desc);
	cr_expect_eq(cli(args, NULL, &out, &err), 125);
	cr_expect(strstr(err, "--backend=kvm"), "%s", err);
	cr_expect(strstr(err, "cannot run the vmpool guest"), "%s", err);
	free(out);
	free(err);
}

Test(e2e_cli, cp_moves_files_both_ways)
{
	char dir[] = "/tmp/vmpool-cp-XXXXXX", src[64], dst[64];
	const char *up[] = {"cp", "--socket", d.sock, src, "vm:/tmp/a/b", NULL};
	const char *down[] = {"cp", "--socket", d.sock, "vm:/init", dst, NULL};
	const char *both[] = {"cp", "--socket", d.sock, "vm:/x", "vm:/y", NULL};
	struct stat st;
	char *out, *err;

	daemon_start(&d, NULL);
	cr_assert(mkdtemp(dir));
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(dst, sizeof(dst), "%s/init", dir);
	cr_assert_eq(close(open(src, O_CREAT | O_WRONLY, 0600)), 0);

	cr_expect_eq(cli(up, NULL, &out, &err), 0, "%s", err);
	free(out);
	free(err);
	cr_expect_eq(cli(down, NULL, &out, &err), 0, "%s", err);
	cr_expect_eq(stat(dst, &st), 0);
	cr_expect_gt(st.st_size, 100000, "the agent binary, chunked");
	free(out);
	free(err);
	cr_expect_eq(cli(both, NULL, &out, &err), 2);
	free(out);
	free(err);
	unlink(src);
	unlink(dst);
	rmdir(dir);
}

Test(e2e_cli, shell_runs_lines_and_keeps_the_directory)
{
	const char *args[] = {"shell", "--socket", d.sock, NULL};
	char *out, *err;

	daemon_start(&d, NULL);
	cr_expect_eq(
	    cli(args, "cd /tmp\nmkdir -p x && cd x\npwd\nexit 3\n", &out, &err),
	    3, "%s", err);
	cr_expect_str_eq(out, "/tmp/x\n");
	free(out);
	free(err);
}

Test(e2e_cli, stats_prints_counters_for_people_and_programs)
{
	const char *plain[] = {"stats", "--socket", d.sock, NULL};
	const char *json[] = {"stats", "--json", "--socket", d.sock, NULL};
	char *out, *err;

	daemon_start(&d, NULL);
	cr_expect_eq(cli(plain, NULL, &out, &err), 0, "%s", err);
	cr_expect(strstr(out, "hit "), "%s", out);
	free(out);
	free(err);
	cr_expect_eq(cli(json, NULL, &out, &err), 0, "%s", err);
	cr_expect_eq(out[0], '{', "%s", out);
	cr_expect(strstr(out, "\"miss\": "), "%s", out);
	free(out);
	free(err);
}
