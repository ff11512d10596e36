/* vmpool-chaos: the pool under test, its processes and the fault plan. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "config.h"
#include "shm/shm.h"
#include "tools/chaos.h"
#include "worker/control.h"

#define POLL_NS	     (10ull * 1000000)
#define START_NS     (15ull * 1000000000)
#define MAX_CHILDREN 256

/* --- the worker side of the fault plan --- */

static void take_planned_fault(const char *plan)
{
	char next[PATH_MAX], taken[PATH_MAX], spec[128];
	int fd, n;

	snprintf(next, sizeof(next), "%s/fault.next", plan);
	snprintf(taken, sizeof(taken), "%s/fault.taken.%d", plan,
		 (int)getpid());
	/* Opened before the rename: the planner may remove the taken file
	 * as soon as it sees it. */
	fd = open(next, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;

	/* rename is atomic: of the workers starting now, one gets it. */
	n = rename(next, taken) < 0 ? -1 : read(fd, spec, sizeof(spec) - 1);
	close(fd);
	if (n <= 0)
		return;
	spec[n] = '\0';
	setenv("VMPOOL_FAULT", spec, 1);
}

int chaos_shim(int argc, char **argv)
{
	const char *plan = getenv(CHAOS_PLAN_ENV);
	const char *worker = getenv(CHAOS_WORKER_ENV);
	char path[PATH_MAX];

	if (!plan || !worker || argc < 1) {
		fprintf(stderr, "vmpool-chaos: worker mode needs %s and %s\n",
			CHAOS_PLAN_ENV, CHAOS_WORKER_ENV);
		return WORKER_EXIT_PERMFAIL;
	}
	snprintf(path, sizeof(path), "%s", worker);

	unsetenv("VMPOOL_FAULT");
	take_planned_fault(plan);
	unsetenv(CHAOS_PLAN_ENV);
	unsetenv(CHAOS_WORKER_ENV);

	argv[0] = path;
	execv(path, argv);
	fprintf(stderr, "vmpool-chaos: execv %s: %s\n", path, strerror(errno));
	return WORKER_EXIT_PERMFAIL;
}

/* --- starting and stopping a private pool --- */

struct daemon_argv {
	const char *argv[48];
	int argc;
	char min[16], max[16], total[16], plan[2 * PATH_MAX],
	    worker[2 * PATH_MAX], self[PATH_MAX];
};

static void add(struct daemon_argv *a, const char *s)
{
	if (a->argc < (int)ARRAY_SIZE(a->argv) - 1)
		a->argv[a->argc++] = s;
	a->argv[a->argc] = NULL;
}

static void add2(struct daemon_argv *a, const char *flag, const char *v)
{
	add(a, flag);
	add(a, v);
}

/* Fault points reach the workers through this program as their worker
 * (see chaos_shim); builds without them run the plain worker. */
static void add_fault_route(struct chaos *c, struct daemon_argv *a)
{
	if (!VMPOOL_FAULT_POINTS)
		return;
	snprintf(a->self, sizeof(a->self), "%s", c->self);
	snprintf(a->plan, sizeof(a->plan), "%s=%s", CHAOS_PLAN_ENV, c->dir);
	snprintf(a->worker, sizeof(a->worker), "%s=%s/vmpool-worker",
		 CHAOS_WORKER_ENV, c->bindir);
	add2(a, "--worker", a->self);
	add2(a, "--worker-env", a->plan);
	add2(a, "--worker-env", a->worker);
}

/* Small guests, so that a full pool fits the test host; a guest that
 * stops answering is given up on within seconds, and one that stalls
 * for less than that is not. */
static void add_kvm_limits(struct chaos *c, struct daemon_argv *a)
{
	if (!c->o.kvm)
		return;
	add2(a, "--mem", "64M");
	add2(a, "--idle-ping", "1s");
	add2(a, "--guest-timeout", "3s");
}

static void build_argv(struct chaos *c, struct daemon_argv *a,
		       const char *vmpoold)
{
	snprintf(a->min, sizeof(a->min), "%u", c->o.min_size);
	snprintf(a->max, sizeof(a->max), "%u", c->o.max_size);
	snprintf(a->total, sizeof(a->total), "%u", c->o.max_total);

	a->argc = 0;
	add(a, vmpoold);
	add2(a, "--backend", c->o.backend);
	add2(a, "--name", c->name);
	add2(a, "--socket", c->sock);
	add2(a, "--min-size", a->min);
	add2(a, "--max-size", a->max);
	add2(a, "--max-total", a->total);
	/* Short timeouts, so hung guests are found within the run. */
	add2(a, "--health-timeout", "1s");
	/* Guests of a nested test host boot in seconds, longer when many
	 * boot at once. */
	add2(a, "--boot-timeout", c->o.kvm ? "30s" : "10s");
	add2(a, "--acquire-timeout", "20s");
	add2(a, "--drain-grace", "5s");
	add2(a, "--health-check-interval", "3");
	add(a, "-v");
	add_kvm_limits(c, a);
	add_fault_route(c, a);
}

static pid_t spawn_daemon(struct chaos *c, const char *log)
{
	char vmpoold[PATH_MAX + 16];
	struct daemon_argv a;
	pid_t pid;

	snprintf(vmpoold, sizeof(vmpoold), "%s/vmpoold", c->bindir);
	build_argv(c, &a, vmpoold);

	pid = fork();
	if (pid != 0)
		return pid < 0 ? -errno : pid;

	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	/* Killed or interrupted, we leave no pool behind: it drains. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || fd < 0 || dup2(fd, 1) < 0 ||
	    dup2(fd, 2) < 0)
		_exit(127);
	unsetenv("VMPOOL_FAULT");
	execv(vmpoold, (char *const *)a.argv);
	_exit(127);
}

static int wait_socket(struct chaos *c)
{
	uint64_t end = now_ns() + START_NS;
	int status;

	while (now_ns() < end) {
		if (access(c->sock, F_OK) == 0)
			return 0;
		if (waitpid(c->daemon_pid, &status, WNOHANG) == c->daemon_pid) {
			c->daemon_pid = 0;
			return -ECHILD;
		}
		chaos_sleep_ns(POLL_NS);
	}
	return -ETIMEDOUT;
}

int chaos_pool_start(struct chaos *c)
{
	char log[128];
	pid_t pid;

	snprintf(c->dir, sizeof(c->dir), "/tmp/vmpool-chaos.XXXXXX");
	if (!mkdtemp(c->dir))
		return -errno;
	snprintf(c->name, sizeof(c->name), "chaos%d", (int)getpid());
	snprintf(c->sock, sizeof(c->sock), "%s/s.sock", c->dir);
	snprintf(log, sizeof(log), "%s/vmpoold.log", c->dir);
	c->private_pool = true;

	pid = spawn_daemon(c, log);
	if (pid < 0)
		return pid;
	c->daemon_pid = pid;
	return wait_socket(c);
}

int chaos_pool_attach(struct chaos *c)
{
	const struct shm_segment *seg;
	uint64_t end = now_ns() + START_NS;
	int err;

	do {
		err = shm_attach(c->name, SHM_RO, &c->shm);
		if (err != SHM_ENOTREADY && err != -ENOENT)
			break;
		chaos_sleep_ns(POLL_NS);
	} while (now_ns() < end);
	if (err)
		return err;

	seg = shm_segment(c->shm);
	c->snap_len = shm_size(c->shm);
	c->creator_pid = seg->hdr.creator_pid;
	c->min_size = seg->config.min_size;
	return 0;
}

int chaos_pool_stop(struct chaos *c, uint64_t timeout_ns)
{
	uint64_t end = now_ns() + timeout_ns;
	int status = 0;

	if (c->daemon_pid <= 0)
		return -ECHILD;
	kill(c->daemon_pid, SIGTERM);
	while (waitpid(c->daemon_pid, &status, WNOHANG) == 0) {
		if (now_ns() > end) {
			kill(c->daemon_pid, SIGKILL);
			waitpid(c->daemon_pid, &status, 0);
			c->daemon_pid = 0;
			return -ETIMEDOUT;
		}
		chaos_sleep_ns(POLL_NS);
	}
	c->daemon_pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(dir);
}

void chaos_pool_cleanup(struct chaos *c)
{
	if (c->shm)
		shm_detach(c->shm);
	c->shm = NULL;
	if (c->daemon_pid > 0) {
		kill(c->daemon_pid, SIGKILL);
		waitpid(c->daemon_pid, NULL, 0);
		c->daemon_pid = 0;
	}
	if (!c->private_pool)
		return;
	if (c->o.keep)
		fprintf(stderr, "vmpool-chaos: the daemon's log is in %s\n",
			c->dir);
	else
		remove_dir(c->dir);
}

int chaos_snapshot(struct chaos *c, void *buf)
{
	return shm_snapshot(c->shm, buf, c->snap_len);
}

/* --- processes of the pool --- */

int chaos_children(pid_t pid, pid_t *out, int max)
{
	char path[64], buf[4096];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d)) && n < max) {
		char *p, *end;
		int fd;
		ssize_t len;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/children",
			 (int)pid, e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[len > 0 ? len : 0] = '\0';
		for (p = buf; n < max; p = end) {
			long v = strtol(p, &end, 10);

			if (end == p)
				break;
			out[n++] = v;
		}
	}
	closedir(d);
	return n;
}

/* The N of "--slot N" in a process's command line, or -1. */
static long slot_of(pid_t pid)
{
	char path[64], buf[4096];
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return -1;
	buf[len] = '\0';

	for (char *p = buf; p < buf + len; p += strlen(p) + 1)
		if (!strcmp(p, "--slot") && p + strlen(p) + 1 < buf + len)
			return strtol(p + strlen(p) + 1, NULL, 10);
	return -1;
}

pid_t chaos_worker_pid(struct chaos *c, uint32_t slot)
{
	pid_t kids[MAX_CHILDREN];
	pid_t sv = c->daemon_pid > 0 ? c->daemon_pid : c->creator_pid;
	int n = chaos_children(sv, kids, MAX_CHILDREN);

	for (int i = 0; i < n; i++)
		if (slot_of(kids[i]) == (long)slot) {
			chaos_seen(c, kids[i]);
			return kids[i];
		}
	return 0;
}

pid_t chaos_guest_pid(struct chaos *c, pid_t worker)
{
	pid_t kids[8];

	if (chaos_children(worker, kids, ARRAY_SIZE(kids)) < 1)
		return 0;
	chaos_seen(c, kids[0]);
	return kids[0];
}

int chaos_proc_stat(pid_t pid, pid_t *ppid, uint64_t *start)
{
	char path[64], buf[1024], *p;
	unsigned long long t;
	ssize_t n;
	int fd, pp;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';

	/* The command name may hold anything: fields follow its last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1,
			 " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u "
			 "%*d %*d %*d %*d %*d %*d %llu",
			 &pp, &t) != 2)
		return -EINVAL;
	*ppid = pp;
	*start = t;
	return 0;
}

bool chaos_proc_alive(const struct chaos_proc *p)
{
	uint64_t start;
	pid_t ppid;

	return chaos_proc_stat(p->pid, &ppid, &start) == 0 && start == p->start;
}

void chaos_seen(struct chaos *c, pid_t pid)
{
	struct chaos_proc proc = {.pid = pid};
	pid_t ppid;

	if (chaos_proc_stat(pid, &ppid, &proc.start))
		return;
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->nseen; i++)
		if (c->seen[i].pid == pid && c->seen[i].start == proc.start)
			goto out_unlock;
	if (c->nseen == c->seen_cap) {
		size_t cap = c->seen_cap ? 2 * c->seen_cap : 64;
		struct chaos_proc *p = realloc(c->seen, cap * sizeof(*p));

		if (!p)
			goto out_unlock;
		c->seen = p;
		c->seen_cap = cap;
	}
	c->seen[c->nseen++] = proc;
out_unlock:
	pthread_mutex_unlock(&c->mu);
}

/* --- the fault plan: a file the next worker renames to take it --- */

int chaos_plan_fault(struct chaos *c, const char *spec)
{
	char tmp[PATH_MAX], next[PATH_MAX];
	int fd, err = 0;

	snprintf(tmp, sizeof(tmp), "%s/fault.tmp", c->dir);
	snprintf(next, sizeof(next), "%s/fault.next", c->dir);

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	err = write_full(fd, spec, strlen(spec));
	close(fd);
	if (err)
		return err;

	if (rename(tmp, next) < 0)
		return -errno;
	return 0;
}

/* The pid in the name of a "fault.taken.PID" file, which goes. */
static pid_t collect_taken(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX];
	pid_t pid = 0;

	if (!d)
		return 0;
	while (!pid && (e = readdir(d))) {
		if (strncmp(e->d_name, "fault.taken.", 12))
			continue;
		pid = strtol(e->d_name + 12, NULL, 10);
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	return pid;
}

pid_t chaos_plan_taken(struct chaos *c)
{
	char next[PATH_MAX];

	snprintf(next, sizeof(next), "%s/fault.next", c->dir);
	if (access(next, F_OK) == 0)
		return 0;
	return collect_taken(c->dir);
}

int chaos_plan_withdraw(struct chaos *c)
{
	char next[PATH_MAX];

	snprintf(next, sizeof(next), "%s/fault.next", c->dir);
	return unlink(next) < 0 ? -errno : 0;
}
