/* The ns backend: the guest agent as PID 1 of fresh Linux namespaces. */
#include "worker/ns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <sched.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "worker/cpio.h"
#include "worker/ns_limits.h"

#define NS_CLONE_FLAGS                                                         \
	(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC |            \
	 CLONE_NEWUTS | CLONE_PIDFD)

/* Where the root tmpfs is first mounted: any directory will do, since
 * the mount is made in the sandbox's private mount namespace. */
#define ROOT_STAGING "/tmp"

#define DEFAULT_ROOT_SIZE (256ull << 20)

/* Capabilities the agent and its commands keep; the rest of the
 * bounding set is dropped, CAP_SYS_ADMIN first among them, since with
 * it root of the host's user namespace could mount its way out. */
#define KEEP_CAPS                                                              \
	((1ull << CAP_CHOWN) | (1ull << CAP_DAC_OVERRIDE) |                    \
	 (1ull << CAP_FOWNER) | (1ull << CAP_FSETID) | (1ull << CAP_KILL) |    \
	 (1ull << CAP_SETGID) | (1ull << CAP_SETUID) | (1ull << CAP_SETPCAP) | \
	 (1ull << CAP_NET_BIND_SERVICE) | (1ull << CAP_NET_RAW) |              \
	 (1ull << CAP_SYS_CHROOT) | (1ull << CAP_AUDIT_WRITE) |                \
	 (1ull << CAP_SETFCAP))

/* Steps of the sandbox's setup; one failing is reported by name. */
enum step {
	ST_DEATHSIG,
	ST_LIMITS,
	ST_CGROUPNS,
	ST_PRIVATE,
	ST_ROOT,
	ST_EXTRACT,
	ST_PIVOT,
	ST_DEV,
	ST_PROC,
	ST_SYS,
	ST_LOOPBACK,
	ST_HOSTNAME,
	ST_FDS,
	ST_CAPS,
	ST_EXEC,
	ST_COUNT,
};

static const char *const step_names[ST_COUNT] = {
    [ST_DEATHSIG] = "prctl(PR_SET_PDEATHSIG)",
    [ST_LIMITS] = "setting rlimits",
    [ST_CGROUPNS] = "entering the sandbox's cgroup namespace",
    [ST_PRIVATE] = "making mounts private",
    [ST_ROOT] = "mounting the root tmpfs",
    [ST_EXTRACT] = "extracting the image",
    [ST_PIVOT] = "pivot_root",
    [ST_DEV] = "populating /dev",
    [ST_PROC] = "mounting /proc",
    [ST_SYS] = "mounting /sys",
    [ST_LOOPBACK] = "bringing up lo",
    [ST_HOSTNAME] = "sethostname",
    [ST_FDS] = "setting up the agent's fds",
    [ST_CAPS] = "dropping capabilities",
    [ST_EXEC] = "executing /init",
};

/* What the sandbox's first process sends back when its setup fails. */
struct report {
	int step;
	int err;
};

/* Everything the child needs, made before clone: it allocates nothing. */
struct launch {
	const struct ns_opts *opts;
	const struct ns_sandbox *sb;
	const void *image;
	size_t image_len;
	int chan[2];   /* [0] host end, [1] sandbox end */
	int report[2]; /* pipe, the child writes [1]; EOF means exec'd */
	char root_opts[64];
	char chan_env[32];
	char *envp[4];
};

/* The parent may have died before PDEATHSIG was armed: then the host end
 * of the channel, held by it alone, is closed. */
static bool parent_gone(int chan)
{
	struct pollfd p = {.fd = chan, .events = POLLIN};

	return poll(&p, 1, 0) > 0 && (p.revents & POLLHUP);
}

static int arm_deathsig(const struct launch *l)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return -errno;
	return parent_gone(l->chan[1]) ? -ESRCH : 0;
}

/* Wait until the starter has moved us into the sandbox's cgroups, then
 * take the cgroup we are in as the root of our cgroup namespace. */
static int enter_cgroup_ns(const struct launch *l)
{
	char go;
	ssize_t n;

	do
		n = read(l->chan[1], &go, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		return n < 0 ? -errno : -EPIPE;

	return unshare(CLONE_NEWCGROUP) < 0 ? -errno : 0;
}

static int extract_image(const struct launch *l)
{
	const char *why;
	int dir, err;

	dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -errno;

	err = cpio_extract(l->image, l->image_len, dir, &why);
	close(dir);
	return err;
}

static int make_root(const struct launch *l, int *step)
{
	int err;

	*step = ST_PRIVATE;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;

	*step = ST_ROOT;
	if (mount("vmpool", ROOT_STAGING, "tmpfs", MS_NOSUID | MS_NODEV,
		  l->root_opts) < 0)
		return -errno;
	if (chdir(ROOT_STAGING) < 0)
		return -errno;

	*step = ST_EXTRACT;
	err = extract_image(l);
	if (err)
		return err;

	/* Stack the new root on the old one, then drop the old one. */
	*step = ST_PIVOT;
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return -errno;
	if (umount2(".", MNT_DETACH) < 0)
		return -errno;
	return chdir("/") < 0 ? -errno : 0;
}

static const struct {
	const char *path;
	mode_t mode;
	unsigned major, minor;
} dev_nodes[] = {
    {"/dev/null", 0666, 1, 3},	  {"/dev/zero", 0666, 1, 5},
    {"/dev/full", 0666, 1, 7},	  {"/dev/random", 0666, 1, 8},
    {"/dev/urandom", 0666, 1, 9}, {"/dev/tty", 0666, 5, 0},
};

static const char *const dev_links[][2] = {
    {"/proc/self/fd", "/dev/fd"},	{"/proc/self/fd/0", "/dev/stdin"},
    {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
    {"pts/ptmx", "/dev/ptmx"},
};

/* A /dev of our own: the host's devtmpfs would expose its disks. The
 * image's /dev/console is left hidden: it is the host's console here. */
static int make_dev(void)
{
	if (mount("vmpool-dev", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC,
		  "mode=0755,size=1m") < 0)
		return -errno;

	for (size_t i = 0; i < ARRAY_SIZE(dev_nodes); i++) {
		dev_t dev = makedev(dev_nodes[i].major, dev_nodes[i].minor);

		if (mknod(dev_nodes[i].path, S_IFCHR | dev_nodes[i].mode, dev) <
			0 ||
		    chmod(dev_nodes[i].path, dev_nodes[i].mode) < 0)
			return -errno;
	}
	for (size_t i = 0; i < ARRAY_SIZE(dev_links); i++)
		if (symlink(dev_links[i][0], dev_links[i][1]) < 0)
			return -errno;

	if (mkdir("/dev/shm", 01777) < 0 || chmod("/dev/shm", 01777) < 0 ||
	    mkdir("/dev/pts", 0755) < 0)
		return -errno;
	if (mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620") < 0)
		return -errno;
	return 0;
}

static int bind_readonly(const char *path)
{
	unsigned long ro =
	    MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;

	if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
		return errno == ENOENT ? 0 : -errno;
	return mount(NULL, path, NULL, ro, NULL) < 0 ? -errno : 0;
}

/* Root here is root of the host: host-wide knobs under /proc must not
 * be writable from the sandbox. */
static int make_proc(void)
{
	static const char *const readonly[] = {
	    "/proc/sys",
	    "/proc/sysrq-trigger",
	    "/proc/irq",
	    "/proc/bus",
	};

	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL) < 0)
		return -errno;

	for (size_t i = 0; i < ARRAY_SIZE(readonly); i++) {
		int err = bind_readonly(readonly[i]);

		if (err)
			return err;
	}
	return 0;
}

static int make_sys(void)
{
	unsigned long flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;

	return mount("sysfs", "/sys", "sysfs", flags, NULL) < 0 ? -errno : 0;
}

static int loopback_up(void)
{
	struct ifreq ifr = {.ifr_name = "lo"};
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;

	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		err = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (!err && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		err = -errno;
	close(fd);
	return err;
}

static int set_hostname(const struct ns_opts *opts)
{
	const char *name = opts->hostname ? opts->hostname : "vmpool";

	return sethostname(name, strlen(name)) < 0 ? -errno : 0;
}

static int make_system(const struct launch *l, int *step)
{
	int err;

	*step = ST_DEV;
	err = make_dev();
	if (err)
		return err;

	*step = ST_PROC;
	err = make_proc();
	if (err)
		return err;

	*step = ST_SYS;
	err = make_sys();
	if (err)
		return err;

	*step = ST_LOOPBACK;
	err = loopback_up();
	if (err)
		return err;

	*step = ST_HOSTNAME;
	return set_hostname(l->opts);
}

static int move_high(int fd)
{
	int to = fcntl(fd, F_DUPFD_CLOEXEC, 10);

	return to < 0 ? -errno : to;
}

/* stdin and stdout on /dev/null, stderr on the log, the channel on
 * NS_CHANNEL_FD; every other fd closes at exec. */
static int setup_fds(struct launch *l)
{
	int null, chan, log, report;

	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return -errno;

	chan = move_high(l->chan[1]);
	log = l->opts->log_fd >= 0 ? move_high(l->opts->log_fd) : null;
	report = move_high(l->report[1]);
	if (chan < 0 || log < 0 || report < 0)
		return -EBADF;
	l->report[1] = report;

	if (dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(log, 2) < 0 ||
	    dup2(chan, NS_CHANNEL_FD) < 0)
		return -errno;
	return close_range(NS_CHANNEL_FD + 1, ~0u, CLOSE_RANGE_CLOEXEC) < 0
		   ? -errno
		   : 0;
}

static int drop_caps(void)
{
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap) >= 0; cap++)
		if (!(KEEP_CAPS & (1ull << cap)) &&
		    prctl(PR_CAPBSET_DROP, cap) < 0)
			return -errno;
	return 0;
}

static int setup(struct launch *l, int *step)
{
	int err;

	close(l->chan[0]);
	close(l->report[0]);

	*step = ST_DEATHSIG;
	err = arm_deathsig(l);
	if (err)
		return err;

	*step = ST_LIMITS;
	err = ns_limits_enter(l->opts, l->sb);
	if (!err)
		err = make_root(l, step);
	if (!err)
		err = make_system(l, step);
	if (err)
		return err;

	*step = ST_CGROUPNS;
	err = enter_cgroup_ns(l);
	if (err)
		return err;

	*step = ST_FDS;
	err = setup_fds(l);
	if (err)
		return err;

	*step = ST_CAPS;
	return drop_caps();
}

static _Noreturn void child_main(struct launch *l)
{
	char *argv[] = {"/init", NULL};
	struct report rep = {0, 0};
	ssize_t n;

	rep.err = setup(l, &rep.step);
	if (!rep.err) {
		rep.step = ST_EXEC;
		execve(argv[0], argv, l->envp);
		rep.err = -errno;
	}
	n = write(l->report[1], &rep, sizeof(rep));
	(void)n;
	_exit(127);
}

/* The image stays mapped while the child extracts it; an image replaced
 * by rename meanwhile does not disturb the mapping. */
static int load_image(const char *path, struct launch *l, const char **why)
{
	struct stat st;
	void *p;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !st.st_size) {
		close(fd);
		return errno ? -errno : -EINVAL;
	}

	p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -errno;

	err = cpio_check(p, st.st_size, why);
	if (err) {
		munmap(p, st.st_size);
		return err;
	}
	l->image = p;
	l->image_len = st.st_size;
	return 0;
}

static void prepare_child(const struct ns_opts *opts, struct launch *l)
{
	unsigned long long size =
	    opts->root_size ? opts->root_size : DEFAULT_ROOT_SIZE;

	snprintf(l->root_opts, sizeof(l->root_opts), "mode=0755,size=%llu",
		 size);
	snprintf(l->chan_env, sizeof(l->chan_env), "VMPOOL_CHANNEL_FD=%d",
		 NS_CHANNEL_FD);
	l->envp[0] = l->chan_env;
	l->envp[1] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	l->envp[2] = "HOME=/root";
	l->envp[3] = NULL;
}

static pid_t clone_sandbox(int *pidfd)
{
	struct clone_args args = {
	    .flags = NS_CLONE_FLAGS,
	    .pidfd = (uintptr_t)pidfd,
	    .exit_signal = SIGCHLD,
	};
	long pid = syscall(SYS_clone3, &args, sizeof(args));

	return pid < 0 ? -errno : (pid_t)pid;
}

/* 0 once the child has executed /init (the report pipe closed on exec),
 * or the error it reported. */
static int wait_exec(int report, struct ns_sandbox *sb)
{
	struct report rep;
	ssize_t n;

	do
		n = read(report, &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 0;

	if (n != sizeof(rep) || rep.step < 0 || rep.step >= ST_COUNT ||
	    rep.err >= 0) {
		sb->why = "reading the sandbox's setup report";
		return n < 0 ? -errno : -EPROTO;
	}
	sb->why = step_names[rep.step];
	return rep.err;
}

static int reap(int pidfd)
{
	siginfo_t info;

	while (waitid(P_PIDFD, pidfd, &info, WEXITED) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int kill_and_reap(struct ns_sandbox *sb)
{
	int err = 0;

	if (syscall(SYS_pidfd_send_signal, sb->pidfd, SIGKILL, NULL, 0) < 0 &&
	    errno != ESRCH)
		err = -errno;
	if (!err)
		err = reap(sb->pidfd);
	close(sb->pidfd);
	sb->pidfd = -1;
	sb->pid = -1;
	return err;
}

/* Move the child into its cgroups while it builds its root, then let
 * it go on; on failure it is killed. */
static int release_child(struct launch *l, struct ns_sandbox *sb)
{
	char go = 1;
	int err;

	err = ns_limits_join(sb, sb->pid);
	if (!err && send(l->chan[0], &go, 1, MSG_NOSIGNAL) != 1)
		err = -errno;
	if (err) {
		sb->why = "moving the sandbox into its cgroups";
		kill_and_reap(sb);
	}
	return err;
}

static int spawn(struct launch *l, struct ns_sandbox *sb)
{
	int err;

	sb->pid = clone_sandbox(&sb->pidfd);
	if (sb->pid == 0)
		child_main(l);
	close(l->chan[1]);
	close(l->report[1]);
	if (sb->pid < 0) {
		sb->why = "clone3";
		close(l->report[0]);
		return sb->pid;
	}

	err = release_child(l, sb);
	if (!err)
		err = wait_exec(l->report[0], sb);
	close(l->report[0]);
	if (err && sb->pidfd >= 0)
		kill_and_reap(sb);
	return err;
}

static int spawn_with_pipes(struct launch *l, struct ns_sandbox *sb)
{
	int err;

	sb->why = "socketpair";
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, l->chan) < 0)
		return -errno;

	sb->why = "pipe2";
	if (pipe2(l->report, O_CLOEXEC) < 0) {
		err = -errno;
		goto err_close_chan;
	}

	err = spawn(l, sb);
	if (err)
		goto err_close_host_end;
	sb->chan_fd = l->chan[0];
	return 0;

err_close_host_end:
	close(l->chan[0]);
	return err;
err_close_chan:
	close(l->chan[0]);
	close(l->chan[1]);
	return err;
}

int ns_sandbox_start(const struct ns_opts *opts, struct ns_sandbox *out)
{
	struct launch l = {.opts = opts, .sb = out};
	int err;

	*out = (struct ns_sandbox){.chan_fd = -1, .pid = -1, .pidfd = -1};
	out->why = "no image given";
	if (!opts->image)
		return -EINVAL;
	out->why = "loading the image";
	err = load_image(opts->image, &l, &out->why);
	if (err)
		return err;

	out->why = "creating the sandbox's cgroups";
	err = ns_limits_create(opts, out);
	if (err)
		goto err_unmap;

	prepare_child(opts, &l);
	err = spawn_with_pipes(&l, out);
	if (err)
		goto err_remove_cgroups;

	munmap((void *)l.image, l.image_len);
	out->why = NULL;
	return 0;

err_remove_cgroups:
	ns_limits_remove(out);
err_unmap:
	munmap((void *)l.image, l.image_len);
	return err;
}

int ns_sandbox_stop(struct ns_sandbox *sb)
{
	int err = 0, e;

	if (sb->pidfd >= 0)
		err = kill_and_reap(sb);
	if (sb->chan_fd >= 0)
		close(sb->chan_fd);
	sb->chan_fd = -1;

	e = ns_limits_remove(sb);
	return err ? err : e;
}

int ns_sandbox_sweep(void)
{
	return ns_limits_sweep();
}

const char *ns_limits_name(enum ns_limits limits)
{
	switch (limits) {
	case NS_LIMITS_CGROUP2:
		return "cgroup2";
	case NS_LIMITS_CGROUP1:
		return "cgroup1";
	case NS_LIMITS_RLIMIT:
		return "rlimit";
	case NS_LIMITS_NONE:
		break;
	}
	return "none";
}
