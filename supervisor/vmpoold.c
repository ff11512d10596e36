/* vmpoold: creates the pool, keeps it warm, leases VMs, drains on SIGTERM. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "kvm/host.h"
#include "supervisor/supervisor.h"
#include "worker/ns.h"

#define LOOP_ENTRIES 512

/* Refuse, naming the problem, what this host cannot serve. */
static int check_host(const struct sv_options *o)
{
	struct kvm_host h;

	kvm_probe(&h);
	pr_info("KVM: %s", h.desc);

	if (o->backend == SV_BACKEND_KVM &&
	    (h.kind == KVM_HOST_PVM || h.kind == KVM_HOST_NONE)) {
		pr_err("backend kvm needs hardware KVM (kvm_intel or kvm_amd), "
		       "and this host has %s; refusing to start (--backend ns "
		       "runs guests in namespaces, with weaker isolation)",
		       kvm_host_kind_name(h.kind));
		return -ENODEV;
	}
	return 0;
}

static int check_file(const char *what, const char *path, int mode)
{
	if (access(path, mode) == 0)
		return 0;
	pr_err("%s %s: %s", what, path, strerror(errno));
	return -errno;
}

static int check_files(const struct sv_options *o)
{
	if (check_file("worker program", o->worker, X_OK) ||
	    check_file("guest image", o->image, R_OK))
		return -ENOENT;
	if (o->backend == SV_BACKEND_KVM &&
	    check_file("guest kernel", o->kernel, R_OK))
		return -ENOENT;
	return 0;
}

/* The segment's creator lives on if its pid still runs vmpoold. */
static bool creator_alive(pid_t pid)
{
	char path[64], comm[32] = "";
	FILE *f;

	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return true;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	return !strncmp(comm, "vmpoold", 7);
}

static int remove_stale_pool(const char *name)
{
	struct shm *old;
	pid_t pid;
	int rc = shm_attach(name, SHM_RO, &old);

	if (rc) {
		pr_err("/dev/shm/vmpool.%s exists and is not a usable pool "
		       "(%s); remove it if no vmpoold serves it",
		       name, shm_strerror(rc));
		return rc;
	}
	pid = shm_segment(old)->hdr.creator_pid;
	shm_detach(old);

	if (creator_alive(pid)) {
		pr_err("pool %s is served by a running vmpoold (pid %d)", name,
		       (int)pid);
		return -EBUSY;
	}
	pr_info("pool %s: removing the segment of a dead vmpoold (pid %d)",
		name, (int)pid);
	return shm_unlink_name(name);
}

static int create_pool(struct sv *sv)
{
	struct pool_config cfg;
	int rc;

	sv_options_pool_config(&sv->opt, &cfg, &sv->nslots);
	rc = shm_create(sv->opt.name, sv->nslots, &cfg, &sv->shm);
	if (rc == -EEXIST) {
		rc = remove_stale_pool(sv->opt.name);
		if (rc)
			return rc;
		rc = shm_create(sv->opt.name, sv->nslots, &cfg, &sv->shm);
	}
	if (rc) {
		pr_err("shm_create %s: %s", sv->opt.name, shm_strerror(rc));
		return rc;
	}

	sv->by_slot = calloc(sv->nslots, sizeof(*sv->by_slot));
	return sv->by_slot ? 0 : -ENOMEM;
}

static void make_parent_dir(const char *path)
{
	char dir[SV_SOCKET_PATH];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return;
	*slash = '\0';
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		pr_debug("mkdir %s: %s", dir, strerror(errno));
}

/* A socket file left by a dead vmpoold; the segment check has already
 * shown that no live one serves this pool. */
static void remove_stale_socket(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
}

/* Bound and listening under a temporary name, then renamed: a tenant
 * that sees the path can connect. */
static int listen_at(const char *path, const char *tmp, mode_t mode)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd;

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", tmp);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;

	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    chmod(tmp, mode) < 0 || listen(fd, 128) < 0 ||
	    rename(tmp, path) < 0) {
		int rc = -errno;

		unlink(tmp);
		close(fd);
		return rc;
	}
	return fd;
}

static int bind_socket(struct sv *sv)
{
	const char *path = sv->opt.socket_path;
	char tmp[SV_SOCKET_PATH + 16];
	int fd;

	make_parent_dir(path);
	remove_stale_socket(path);
	snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
	if (strlen(tmp) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		pr_err("socket path %s is too long", path);
		return -ENAMETOOLONG;
	}

	fd = listen_at(path, tmp, sv->opt.socket_mode);
	if (fd < 0) {
		pr_err("listening on %s: %s", path, strerror(-fd));
		return fd;
	}
	sv->listen_fd = fd;
	return 0;
}

static void start_drain(struct sv *sv)
{
	uint64_t now = now_ns();

	if (sv->draining) {
		pr_info("second signal: stopping leases now");
		sv->drain_deadline = now;
		return;
	}
	pr_info("draining: no new leases; running ones have %llu ms",
		(unsigned long long)(sv->opt.drain_grace_ns / 1000000));
	sv->draining = true;
	sv->drain_deadline = now + sv->opt.drain_grace_ns;
	sv_tenants_drain(sv);
	sv_workers_stop_all(sv, false);
}

static void on_signal(struct ioloop_op *op, int res, unsigned flags)
{
	struct sv *sv = op->opaque;
	struct signalfd_siginfo si;

	while (read(sv->signal_fd, &si, sizeof(si)) == sizeof(si))
		start_drain(sv);
}

static int watch_signals(struct sv *sv)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);

	sv->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sv->signal_fd < 0)
		return -errno;

	sv->signal_op.done = on_signal;
	sv->signal_op.opaque = sv;
	return ioloop_poll(&sv->loop, &sv->signal_op, sv->signal_fd, POLLIN);
}

/* After every batch of completions: timers, pool duties, drain. */
static void tick(struct sv *sv)
{
	uint64_t now = now_ns();
	uint64_t next = sv_workers_tick(sv, now);

	next = MIN(next, sv_tenants_tick(sv, now));

	if (sv->draining) {
		if (now >= sv->drain_deadline)
			sv_workers_stop_all(sv, true);
		else
			next = MIN(next, sv->drain_deadline);
		if (!sv_workers_live(sv))
			sv->done = true;
	}

	if (!sv->accept_op.busy && sv_tenants_listen(sv))
		pr_debug("accept not armed");
	ioloop_timer(&sv->loop, next);
}

static int serve(struct sv *sv)
{
	int rc;

	rc = sv_tenants_listen(sv);
	if (rc)
		return rc;

	while (!sv->done) {
		tick(sv);
		if (sv->done)
			break;
		rc = ioloop_run_once(&sv->loop, true);
		if (rc < 0) {
			pr_err("io_uring_submit_and_wait: %s", strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int start(struct sv *sv)
{
	int rc;

	if (sv->opt.backend == SV_BACKEND_NS) {
		rc = ns_sandbox_sweep();
		if (rc > 0)
			pr_info("removed %d cgroups of dead sandboxes", rc);
	}

	rc = ioloop_init_single_issuer(&sv->loop, LOOP_ENTRIES);
	if (rc) {
		pr_err("io_uring_queue_init: %s", strerror(-rc));
		return rc;
	}
	sv->loop.poll_ns = sv->opt.poll_ns;
	rc = watch_signals(sv);
	if (rc)
		pr_err("signalfd: %s", strerror(-rc));
	return rc;
}

static void stop(struct sv *sv)
{
	sv_workers_kill_all(sv);
	ioloop_exit(&sv->loop);
	sv_tenants_close_all(sv);
	sv_workers_free_all(sv);
	if (sv->listen_fd >= 0) {
		close(sv->listen_fd);
		unlink(sv->opt.socket_path);
	}
	if (sv->signal_fd >= 0)
		close(sv->signal_fd);
	if (sv->shm) {
		shm_detach(sv->shm);
		shm_unlink_name(sv->opt.name);
	}
	free(sv->by_slot);
}

static int run(struct sv *sv)
{
	int rc;

	rc = check_host(&sv->opt);
	if (!rc)
		rc = check_files(&sv->opt);
	if (rc)
		return SV_EXIT_CONFIG;

	if (create_pool(sv))
		return SV_EXIT_CONFIG;
	if (bind_socket(sv) || start(sv))
		return SV_EXIT_FAIL;

	pr_info("pool %s: backend %s, min_size %u, max_size %u, max_total %u, "
		"socket %s",
		sv->opt.name, sv_backend_name(sv->opt.backend),
		sv->opt.min_size, sv->opt.max_size, sv->opt.max_total,
		sv->opt.socket_path);

	rc = serve(sv);
	pr_info("pool %s: %s", sv->opt.name,
		rc ? "stopped on an error" : "drained");
	return rc ? SV_EXIT_FAIL : SV_EXIT_OK;
}

static void self_path(const char *argv0, char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);

	if (n > 0)
		buf[n] = '\0';
	else
		snprintf(buf, len, "%s", argv0);
}

int main(int argc, char **argv)
{
	static struct sv sv = {.listen_fd = -1, .signal_fd = -1};
	char exe[PATH_MAX], err[512];
	int rc;

	log_init("vmpoold", -1);
	self_path(argv[0], exe, sizeof(exe));

	rc = sv_options_parse(&sv.opt, argc, argv, exe, err, sizeof(err));
	if (rc == 1)
		return SV_EXIT_OK;
	if (rc) {
		pr_err("%s", err);
		return SV_EXIT_USAGE;
	}
	log_set_level(sv.opt.verbose ? LOG_DEBUG : LOG_INFO);

	rc = run(&sv);
	stop(&sv);
	sv_options_free(&sv.opt);
	return rc;
}
