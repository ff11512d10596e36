/* Tests for the ns backend: the agent as PID 1 of a namespace sandbox. */
#include <criterion/criterion.h>
#include <dirent.h>
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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "proto/client.h"
#include "worker/ns.h"

/* A safety net against a hung agent, not a speed goal. */
#define NS_TEST_TIMEOUT 60

struct box {
	struct ns_sandbox sb;
	struct proto_client c;
};

struct output {
	char out[65536];
	size_t out_len;
	char err[8192];
	size_t err_len;
};

static void image_path(char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	snprintf(out, cap, "%s/../guest/initramfs.cpio", dirname(exe));
	if (access(out, R_OK))
		cr_skip_test("%s is not built (ninja guest/initramfs.cpio)",
			     out);
}

static bool refused(int err)
{
	return err == -EPERM || err == -ENOSYS || err == -EACCES ||
	       err == -EINVAL;
}

/* Start a sandbox with opts (image filled in) and wait for its HELLO. */
static void start_with(struct box *b, struct ns_opts opts)
{
	char image[PATH_MAX];
	int err;

	image_path(image, sizeof(image));
	opts.image = image;
	if (!opts.log_fd)
		opts.log_fd = -1;
	err = ns_sandbox_start(&opts, &b->sb);
	if (err && refused(err) && b->sb.why && !strcmp(b->sb.why, "clone3"))
		cr_skip_test("the host refuses namespaces: clone3: %s",
			     strerror(-err));
	cr_assert_eq(err, 0, "start: %s: %s", b->sb.why, strerror(-err));

	cr_assert_eq(proto_client_init(&b->c, b->sb.chan_fd), 0);
	cr_assert_eq(proto_client_hello(&b->c, NULL), 0);
}

static void start(struct box *b)
{
	start_with(b, (struct ns_opts){.log_fd = -1});
}

static void stop(struct box *b)
{
	proto_client_free(&b->c);
	cr_assert_eq(ns_sandbox_stop(&b->sb), 0);
}

static void collect(void *arg, int stream, const void *p, size_t n)
{
	struct output *o = arg;
	char *buf = stream == 1 ? o->out : o->err;
	size_t *len = stream == 1 ? &o->out_len : &o->err_len;
	size_t cap = (stream == 1 ? sizeof(o->out) : sizeof(o->err)) - 1;

	n = MIN(n, cap - *len);
	memcpy(buf + *len, p, n);
	*len += n;
	buf[*len] = '\0';
}

/* Run a shell line in the sandbox; its exit code, or 128 + signal. */
static int sh(struct box *b, const char *line, struct output *o)
{
	const char *argv[] = {line, NULL};
	struct proto_exec_req req = {
	    .argv = argv,
	    .flags = PROTO_EXEC_SHELL,
	};
	struct proto_exit res;
	int err;

	memset(o, 0, sizeof(*o));
	err = proto_client_exec(&b->c, &req, collect, o, &res);
	cr_assert_eq(err, 0, "exec %s: %s", line, strerror(-err));
	if (res.kind == PROTO_SIGNALED)
		return 128 + res.value;
	cr_assert_eq(res.kind, PROTO_EXITED);
	return res.value;
}

static void assert_sh(struct box *b, const char *line, const char *want)
{
	struct output o;

	cr_assert_eq(sh(b, line, &o), 0, "%s: %s", line, o.err);
	cr_assert_str_eq(o.out, want, "%s", line);
}

Test(ns, agent_is_pid_1_and_answers_ping, .timeout = NS_TEST_TIMEOUT)
{
	struct box b;

	start(&b);
	cr_assert_gt(b.sb.pid, 1);
	cr_assert_eq(proto_client_ping(&b.c), 0);
	assert_sh(&b, "cat /proc/1/cmdline", "/init");
	stop(&b);
}

Test(ns, hostname_is_the_sandbox_s_own, .timeout = NS_TEST_TIMEOUT)
{
	struct box b;

	start_with(&b, (struct ns_opts){.hostname = "box-a"});
	assert_sh(&b, "hostname", "box-a\n");
	stop(&b);
}

Test(ns, root_is_the_image_not_the_host, .timeout = NS_TEST_TIMEOUT)
{
	struct box b;

	start(&b);
	assert_sh(&b, "ls /",
		  "bin\ndev\netc\ninit\nproc\nroot\nrun\nsbin\nsys\ntmp\nusr\n"
		  "work\n");
	assert_sh(&b, "cat /etc/passwd | head -n 1",
		  "root:x:0:0:root:/root:/bin/sh\n");
	stop(&b);
}

Test(ns, network_is_loopback_only_and_up, .timeout = NS_TEST_TIMEOUT)
{
	struct box b;

	start(&b);
	assert_sh(&b, "grep : /proc/net/dev | cut -d: -f1 | tr -d ' '", "lo\n");
	/* IFF_UP | IFF_LOOPBACK */
	assert_sh(&b, "cat /sys/class/net/lo/flags", "0x9\n");
	stop(&b);
}

/* Every line of text is one of the words in allowed. */
static void assert_lines_among(const char *text, const char *allowed)
{
	char *copy = strdup(text), *save, *line;

	cr_assert_not_null(copy);
	for (line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char word[64];

		snprintf(word, sizeof(word), " %s ", line);
		cr_assert_not_null(strstr(allowed, word), "unexpected: %s",
				   line);
	}
	free(copy);
}

Test(ns, host_processes_are_invisible, .timeout = NS_TEST_TIMEOUT)
{
	struct box b;
	struct output o;

	start(&b);
	cr_assert_eq(sh(&b, "ps -o comm", &o), 0, "%s", o.err);
	assert_lines_among(o.out, " COMMAND init sh ps ");
	cr_assert_eq(sh(&b, "ls /proc | grep -c '^[0-9]'", &o), 0);
	cr_assert_leq(atoi(o.out), 4, "%s processes visible", o.out);
	stop(&b);
}

static uint64_t read_number(const char *dir, const char *file)
{
	char path[PATH_MAX], buf[64];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "open %s", path);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	return strtoull(buf, NULL, 10);
}

static void assert_cgroup_limits(const struct ns_sandbox *sb)
{
	if (sb->limits == NS_LIMITS_CGROUP2) {
		cr_assert_eq(read_number(sb->cgroups[0], "memory.max"),
			     64 << 20);
		cr_assert_eq(read_number(sb->cgroups[0], "pids.max"), 32);
	} else if (sb->limits == NS_LIMITS_CGROUP1) {
		cr_assert_eq(
		    read_number(sb->cgroups[0], "memory.limit_in_bytes"),
		    64 << 20);
		cr_assert_eq(read_number(sb->cgroups[1], "pids.max"), 32);
	}
}

/* A 128 MiB buffer does not fit in 64 MiB; a 1 MiB one does. */
static void assert_memory_limited(struct box *b)
{
	struct output o;

	cr_assert_eq(sh(b, "dd if=/dev/zero of=/dev/null bs=1M count=1", &o), 0,
		     "%s", o.err);
	cr_assert_neq(sh(b, "dd if=/dev/zero of=/dev/null bs=128M count=1", &o),
		      0);
	cr_assert_eq(proto_client_ping(&b->c), 0, "the agent did not survive");
}

Test(ns, limits_are_in_effect, .timeout = NS_TEST_TIMEOUT)
{
	struct box b;
	struct output o;

	start_with(&b,
		   (struct ns_opts){.mem_limit = 64 << 20, .pids_limit = 32});
	cr_log_info("limits enforced with %s", ns_limits_name(b.sb.limits));
	if (b.sb.limits == NS_LIMITS_RLIMIT)
		cr_skip_test("no usable cgroup here; see the rlimit test");
	assert_cgroup_limits(&b.sb);
	assert_memory_limited(&b);

	sh(&b, "i=0; while [ $i -lt 64 ]; do sleep 60 & i=$((i+1)); done", &o);
	cr_assert_not_null(strstr(o.err, "fork"), "64 forks went through");
	cr_assert_eq(proto_client_ping(&b.c), 0);
	stop(&b);
}

Test(ns, rlimits_limit_memory_without_cgroups, .timeout = NS_TEST_TIMEOUT)
{
	struct box b;

	start_with(&b, (struct ns_opts){.mem_limit = 64 << 20,
					.pids_limit = 32,
					.want = NS_LIMITS_RLIMIT});
	cr_assert_eq(b.sb.limits, NS_LIMITS_RLIMIT);
	assert_memory_limited(&b);
	stop(&b);
}

/* Processes on the host in the pid namespace with inode ns_ino. */
static int count_in_pidns(ino_t ns_ino)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d))) {
		char path[300];
		struct stat st;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/pid", de->d_name);
		if (!stat(path, &st) && st.st_ino == ns_ino)
			n++;
	}
	closedir(d);
	return n;
}

static ino_t ns_inode(pid_t pid, const char *ns)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns);
	cr_assert_eq(stat(path, &st), 0, "stat %s", path);
	return st.st_ino;
}

/* Whether the host's mount table shows a sandbox's tmpfs. */
static bool host_sees_sandbox_mounts(void)
{
	char line[4096];
	bool seen = false;
	FILE *f = fopen("/proc/self/mountinfo", "r");

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, " - tmpfs vmpool ") ||
		    strstr(line, " - tmpfs vmpool-dev "))
			seen = true;
	fclose(f);
	return seen;
}

Test(ns, stop_leaves_no_process_cgroup_or_mount, .timeout = NS_TEST_TIMEOUT)
{
	char cgroups[NS_MAX_CGROUPS][NS_CGROUP_PATH];
	struct box b;
	struct output o;
	ino_t pidns;

	start_with(&b,
		   (struct ns_opts){.mem_limit = 64 << 20, .pids_limit = 32});
	memcpy(cgroups, b.sb.cgroups, sizeof(cgroups));
	sh(&b, "setsid sleep 600 & setsid sleep 600 &", &o);
	pidns = ns_inode(b.sb.pid, "pid");
	cr_assert_gt(count_in_pidns(pidns), 0);
	cr_assert_not(host_sees_sandbox_mounts());

	stop(&b);
	cr_assert_eq(count_in_pidns(pidns), 0);
	cr_assert_not(host_sees_sandbox_mounts());
	for (int i = 0; i < NS_MAX_CGROUPS; i++)
		cr_assert(!cgroups[i][0] || access(cgroups[i], F_OK),
			  "%s is left behind", cgroups[i]);
	cr_assert_eq(b.sb.chan_fd, -1);
	cr_assert_eq(b.sb.pidfd, -1);
}

Test(ns, two_sandboxes_are_isolated, .timeout = NS_TEST_TIMEOUT)
{
	static const char *const kinds[] = {"pid", "net", "mnt",
					    "ipc", "uts", "cgroup"};
	struct box a, b;
	struct output o;

	start_with(&a, (struct ns_opts){.hostname = "a"});
	start_with(&b, (struct ns_opts){.hostname = "b"});
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		ino_t ia = ns_inode(a.sb.pid, kinds[i]);

		cr_assert_neq(ia, ns_inode(b.sb.pid, kinds[i]), "%s", kinds[i]);
		cr_assert_neq(ia, ns_inode(getpid(), kinds[i]), "%s", kinds[i]);
	}

	assert_sh(&a, "echo a > /tmp/mark; setsid sleep 600 & hostname", "a\n");
	cr_assert_eq(sh(&b, "test -e /tmp/mark", &o), 1);
	cr_assert_eq(sh(&b, "ps -o comm", &o), 0);
	cr_assert_null(strstr(o.out, "sleep"), "b sees a's processes");
	assert_sh(&b, "hostname", "b\n");

	stop(&a);
	stop(&b);
}

struct orphan {
	int err;
	pid_t pid;
	char cgroups[NS_MAX_CGROUPS][NS_CGROUP_PATH];
};

/* In a child process: start a sandbox, say where it is, exit. */
static void start_and_abandon(int fd, const char *image)
{
	struct ns_opts opts = {
	    .image = image, .log_fd = -1, .mem_limit = 64 << 20};
	struct ns_sandbox sb;
	struct orphan msg = {0};

	msg.err = ns_sandbox_start(&opts, &sb);
	msg.pid = sb.pid;
	memcpy(msg.cgroups, sb.cgroups, sizeof(msg.cgroups));
	_exit(write_full(fd, &msg, sizeof(msg)) ? 1 : 0);
}

Test(ns, sandbox_dies_with_the_process_that_started_it,
     .timeout = NS_TEST_TIMEOUT)
{
	char image[PATH_MAX];
	struct orphan msg;
	struct pollfd p = {.events = POLLIN};
	int pipefd[2], status;
	pid_t child;

	image_path(image, sizeof(image));
	cr_assert_eq(pipe(pipefd), 0);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0)
		start_and_abandon(pipefd[1], image);
	cr_assert_eq(read_full(pipefd[0], &msg, sizeof(msg)), 0);
	cr_assert_eq(waitpid(child, &status, 0), child);
	if (msg.err == -EPERM)
		cr_skip_test("the host refuses namespaces");
	cr_assert_eq(msg.err, 0, "start: %s", strerror(-msg.err));

	/* Not our child: wait for its exit through a pidfd. */
	p.fd = syscall(SYS_pidfd_open, msg.pid, 0);
	if (p.fd >= 0) {
		cr_assert_eq(poll(&p, 1, NS_TEST_TIMEOUT * 1000), 1,
			     "the sandbox outlived its starter");
		close(p.fd);
	} else {
		cr_assert_eq(errno, ESRCH);
	}
	/* Its cgroups are the starter's to remove; it died: sweep them. */
	if (msg.cgroups[0][0])
		cr_assert_geq(ns_sandbox_sweep(), 1);
	for (int i = 0; i < NS_MAX_CGROUPS; i++)
		cr_assert(!msg.cgroups[i][0] || access(msg.cgroups[i], F_OK),
			  "%s is left behind", msg.cgroups[i]);
	close(pipefd[0]);
	close(pipefd[1]);
}

Test(ns, bad_images_are_refused_with_a_reason)
{
	char path[] = "/tmp/vmpool-badimage-XXXXXX";
	struct ns_opts opts = {.image = "/nonexistent/image.cpio"};
	struct ns_sandbox sb;
	int fd;

	cr_assert_eq(ns_sandbox_start(&opts, &sb), -ENOENT);
	cr_assert_str_eq(sb.why, "loading the image");
	cr_assert_eq(sb.pid, -1);

	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write_full(fd, "not a cpio archive, just text\n", 30), 0);
	close(fd);
	opts.image = path;
	cr_assert_eq(ns_sandbox_start(&opts, &sb), -EBADMSG);
	cr_assert_str_eq(sb.why, "bad magic (not cpio newc)");
	unlink(path);
}

Test(ns, limits_have_names)
{
	cr_assert_str_eq(ns_limits_name(NS_LIMITS_CGROUP2), "cgroup2");
	cr_assert_str_eq(ns_limits_name(NS_LIMITS_CGROUP1), "cgroup1");
	cr_assert_str_eq(ns_limits_name(NS_LIMITS_RLIMIT), "rlimit");
	cr_assert_str_eq(ns_limits_name(NS_LIMITS_NONE), "none");
}

Test(ns, setup_failures_name_their_step, .timeout = NS_TEST_TIMEOUT)
{
	char image[PATH_MAX], name[100];
	struct ns_opts opts = {.log_fd = -1, .hostname = name};
	struct ns_sandbox sb;

	image_path(image, sizeof(image));
	opts.image = image;
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	cr_assert_eq(ns_sandbox_start(&opts, &sb), -EINVAL);
	cr_assert_str_eq(sb.why, "sethostname");
	cr_assert_eq(sb.pid, -1);
	cr_assert_eq(sb.chan_fd, -1);
}
