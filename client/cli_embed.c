/* vmpool run's private pool: a vmpoold of its own for one command. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/cli.h"
#include "common/log.h"
#include "common/util.h"
#include "kvm/host.h"

/* Generous: a kvm pool boots its first VM before it listens. */
#define EMBED_START_NS (60ull * 1000000000)
#define EMBED_STOP_NS  (30ull * 1000000000)

const char *embed_backend(const char *asked)
{
	struct kvm_host h;
	bool usable;

	if (asked && !strcmp(asked, "ns"))
		return "ns";

	kvm_probe(&h);
	usable = h.kind == KVM_HOST_HARDWARE || h.kind == KVM_HOST_UNKNOWN;
	if (usable)
		return "kvm";
	if (asked) {
		pr_err("--backend=kvm: this host cannot run the vmpool guest "
		       "(%s); --backend=ns runs it in namespaces instead, with "
		       "weaker isolation than a VM",
		       h.desc);
		return NULL;
	}
	pr_warn("this host's KVM cannot run the vmpool guest (%s): using the "
		"ns backend (namespaces, weaker isolation than a VM)",
		h.desc);
	return "ns";
}

static void sibling(char *out, size_t cap, const char *name)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	exe[n > 0 ? n : 0] = '\0';
	snprintf(out, cap, "%s/%s", dirname(exe), name);
}

/* In the child: the daemon logs to a file, dies with us, and sees no
 * terminal input. Never returns. */
static void exec_daemon(const struct embed *e, const char *backend,
			const char *bin)
{
	char name[32];
	int fd = open(e->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 ||
	    dup2(fd, 2) < 0)
		_exit(127);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	snprintf(name, sizeof(name), "run-%d", (int)getppid());
	execl(bin, bin, "--name", name, "--socket", e->sock, "--backend",
	      backend, "--min-size", "1", (char *)NULL);
	_exit(127);
}

/* The daemon's last log line, to say why it stopped. */
static void last_line(const char *path, char *out, size_t cap)
{
	char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : pread(fd, buf, sizeof(buf) - 1, 0);
	char *end, *start;

	if (fd >= 0)
		close(fd);
	out[0] = '\0';
	if (n <= 0)
		return;
	buf[n] = '\0';
	end = buf + n;
	while (end > buf && end[-1] == '\n')
		*--end = '\0';
	start = strrchr(buf, '\n');
	snprintf(out, cap, "%.500s", start ? start + 1 : buf);
}

static void nap_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = ms % 1000 * 1000000};

	nanosleep(&ts, NULL);
}

/* Poll for the socket until the daemon listens, exits, or is late. */
static int wait_ready(struct embed *e)
{
	uint64_t deadline = now_ns() + EMBED_START_NS;
	char why[512];
	int status;

	while (now_ns() < deadline) {
		struct vmpool *p;
		int r = vmpool_connect(e->sock, &p);

		vmpool_close(p);
		if (r == 0)
			return 0;
		if (waitpid(e->pid, &status, WNOHANG) == e->pid) {
			e->pid = 0;
			last_line(e->log, why, sizeof(why));
			pr_err("vmpoold exited (status %#x) before it "
			       "listened: %s",
			       status, why);
			return -ECHILD;
		}
		nap_ms(5);
	}
	pr_err("vmpoold did not listen on %s within %llu s", e->sock,
	       (unsigned long long)(EMBED_START_NS / 1000000000));
	return -ETIMEDOUT;
}

int embed_start(struct embed *e, const char *backend)
{
	char bin[PATH_MAX];

	snprintf(e->dir, sizeof(e->dir), "/tmp/vmpool-run-XXXXXX");
	if (!mkdtemp(e->dir)) {
		pr_err("mkdtemp(%s): %s", e->dir, strerror(errno));
		return -errno;
	}
	snprintf(e->sock, sizeof(e->sock), "%s/vmpool.sock", e->dir);
	snprintf(e->log, sizeof(e->log), "%s/vmpoold.log", e->dir);
	sibling(bin, sizeof(bin), "vmpoold");
	if (access(bin, X_OK)) {
		pr_err("cannot start a private pool: %s: %s", bin,
		       strerror(errno));
		rmdir(e->dir);
		return -errno;
	}

	e->pid = fork();
	if (e->pid < 0) {
		pr_err("fork: %s", strerror(errno));
		e->pid = 0;
		return -errno;
	}
	if (e->pid == 0)
		exec_daemon(e, backend, bin);
	return wait_ready(e);
}

/* Wait for the daemon's drain, SIGKILL when it takes too long. */
static void reap(pid_t pid)
{
	uint64_t deadline = now_ns() + EMBED_STOP_NS;

	while (waitpid(pid, NULL, WNOHANG) == 0) {
		if (now_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return;
		}
		nap_ms(2);
	}
}

void embed_stop(struct embed *e)
{
	if (e->pid > 0) {
		kill(e->pid, SIGTERM);
		reap(e->pid);
	}
	unlink(e->log);
	unlink(e->sock);
	rmdir(e->dir);
}
