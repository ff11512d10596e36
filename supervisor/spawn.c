/* Starting a worker: fork, then exec vmpool-worker on its control socket. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "supervisor/spawn.h"

struct worker_argv {
	char *argv[32];
	int argc;
	char slot[16], fd[16], mem[32], vcpus[16], boot[32], health[32];
	char ping[32], guest[32], poll[32];
};

static void add(struct worker_argv *a, const char *s)
{
	if (a->argc < (int)(sizeof(a->argv) / sizeof(a->argv[0])) - 1)
		a->argv[a->argc++] = (char *)s;
	a->argv[a->argc] = NULL;
}

static void add_duration(struct worker_argv *a, const char *flag, char *buf,
			 size_t len, uint64_t ns)
{
	if (!ns)
		return;
	snprintf(buf, len, "%lluns", (unsigned long long)ns);
	add(a, flag);
	add(a, buf);
}

static void build_argv(struct worker_argv *a, const struct sv_options *o,
		       uint32_t slot, int ctl_fd)
{
	snprintf(a->slot, sizeof(a->slot), "%u", slot);
	snprintf(a->fd, sizeof(a->fd), "%d", ctl_fd);
	snprintf(a->mem, sizeof(a->mem), "%llu", (unsigned long long)o->mem);
	snprintf(a->vcpus, sizeof(a->vcpus), "%u", o->vcpus);

	a->argc = 0;
	add(a, o->worker);
	add(a, "--pool");
	add(a, o->name);
	add(a, "--slot");
	add(a, a->slot);
	add(a, "--ctl-fd");
	add(a, a->fd);
	add(a, "--backend");
	add(a, sv_backend_name(o->backend));
	add(a, "--image");
	add(a, o->image);
	if (o->backend == SV_BACKEND_KVM) {
		add(a, "--kernel");
		add(a, o->kernel);
	}
	add(a, "--mem");
	add(a, a->mem);
	add(a, "--vcpus");
	add(a, a->vcpus);
	add_duration(a, "--boot-timeout", a->boot, sizeof(a->boot),
		     o->boot_timeout_ns);
	add_duration(a, "--health-timeout", a->health, sizeof(a->health),
		     o->health_timeout_ns);
	add_duration(a, "--idle-ping", a->ping, sizeof(a->ping),
		     o->idle_ping_ns);
	add_duration(a, "--guest-timeout", a->guest, sizeof(a->guest),
		     o->guest_timeout_ns);
	add_duration(a, "--poll", a->poll, sizeof(a->poll), o->poll_ns);
	if (o->verbose)
		add(a, "-v");
}

/* In the child: nothing here may return. The supervisor is single
 * threaded, so the child may still call into libc freely. */
static __attribute__((noreturn)) void
exec_worker(const struct sv_options *o, uint32_t slot, int ctl_fd, pid_t parent)
{
	struct worker_argv a;
	sigset_t none;

	/* The worker must not outlive us, even before it sets this itself. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(WORKER_EXIT_TEMPFAIL);

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	if (fcntl(ctl_fd, F_SETFD, 0) < 0)
		_exit(WORKER_EXIT_TEMPFAIL);
	errno = 0;
	if (nice((int)o->worker_nice) == -1 && errno)
		_exit(WORKER_EXIT_TEMPFAIL);

	for (int i = 0; i < o->nworker_env; i++)
		putenv(o->worker_env[i]);

	build_argv(&a, o, slot, ctl_fd);
	execv(o->worker, a.argv);
	log_signal_safe("vmpoold: cannot execute the worker, errno ", errno);
	_exit(WORKER_EXIT_PERMFAIL);
}

int sv_spawn(const struct sv_options *o, uint32_t slot, struct sv_spawned *out)
{
	pid_t parent = getpid();
	int sp[2], rc;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;

	out->pid = fork();
	if (out->pid < 0) {
		rc = -errno;
		goto err_close_pair;
	}
	if (out->pid == 0) {
		close(sp[0]);
		exec_worker(o, slot, sp[1], parent);
	}
	close(sp[1]);

	out->pidfd = pidfd_open(out->pid, 0);
	if (out->pidfd < 0) {
		rc = -errno;
		goto err_kill;
	}

	out->ctl_fd = sp[0];
	return 0;

err_kill:
	kill(out->pid, SIGKILL);
	waitpid(out->pid, NULL, 0);
	close(sp[0]);
	return rc;
err_close_pair:
	close(sp[0]);
	close(sp[1]);
	return rc;
}
