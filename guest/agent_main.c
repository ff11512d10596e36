/* vmpool-agent: PID 1 of a guest (or of fresh namespaces), serving the host. */
#include "guest/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <termios.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "config.h"

static struct agent agent;

/* Keep 0-2 taken so that no channel or pipe lands on them. */
static void hold_std_fds(void)
{
	while (fcntl(2, F_GETFD) < 0) {
		int fd = open("/dev/null", O_RDWR);

		if (fd < 0)
			break;
	}
}

static void mount_one(const char *src, const char *dir, const char *type,
		      const char *opts)
{
	mkdir(dir, 0755);
	if (mount(src, dir, type, MS_NOSUID, opts) < 0 && errno != EBUSY)
		pr_warn("mount %s on %s: %s", type, dir, strerror(errno));
}

static void mount_basics(void)
{
	mount_one("proc", "/proc", "proc", NULL);
	mount_one("sysfs", "/sys", "sysfs", NULL);
	mount_one("devtmpfs", "/dev", "devtmpfs", "mode=0755");
	mount_one("tmpfs", "/tmp", "tmpfs", "mode=1777");
	mount_one("tmpfs", "/run", "tmpfs", "mode=0755");
}

static int setup_signals(struct agent *a)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;

	a->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (a->sig_fd < 0)
		return -errno;

	a->timer_fd =
	    timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	return a->timer_fd < 0 ? -errno : 0;
}

static int raw_console(int fd)
{
	struct termios t;

	if (tcgetattr(fd, &t) < 0)
		return -errno;
	cfmakeraw(&t);
	return tcsetattr(fd, TCSANOW, &t) < 0 ? -errno : 0;
}

/* The fd the host handed over, else the virtio console in raw mode. */
static int open_channel(const char **what)
{
	const char *env = getenv("VMPOOL_CHANNEL_FD");
	uint64_t v;
	int fd, err;

	if (env) {
		*what = "VMPOOL_CHANNEL_FD";
		err = parse_u64(env, 0, INT_MAX, &v);
		if (err)
			return err;
		fd = v;
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
		    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
			return -errno;
		return fd;
	}

	*what = "open /dev/hvc0";
	fd = open("/dev/hvc0", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	*what = "tcsetattr /dev/hvc0";
	err = raw_console(fd);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

static void send_hello(struct agent *a)
{
	uint64_t caps = PROTO_CAP_EXEC | PROTO_CAP_FILES | PROTO_CAP_CLEAN |
			PROTO_CAP_RESEED;
	struct proto_msg m;

	if (a->use_openat2)
		caps |= PROTO_CAP_OPENAT2;
	agent_msg_begin(a, &m, PROTO_HELLO, 0, 64);
	proto_put_u32(&m, PROTO_VERSION);
	proto_put_u64(&m, caps);
	proto_put_str(&m, "vmpool-agent " VMPOOL_VERSION);
	agent_msg_send(a, &m);
}

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v && *v ? v : def;
}

static int setup(struct agent *a, const char **what)
{
	int err;

	*what = "signalfd";
	err = setup_signals(a);
	if (err)
		return err;

	/* Orphans of the tenant come back to us, to be reaped and killed. */
	if (!a->pid1)
		prctl(PR_SET_CHILD_SUBREAPER, 1);

	a->chan = open_channel(what);
	if (a->chan < 0)
		return a->chan;

	*what = "sandbox root";
	err = agent_path_init(a, env_or("VMPOOL_ROOT", "/"),
			      env_or("VMPOOL_WORKDIR", "/work"));
	if (err)
		return err;

	*what = "frame reader";
	return proto_reader_init(&a->rd);
}

int main(int argc, char **argv)
{
	struct agent *a = &agent;
	const char *what;
	int err;

	log_init(argv[0], -1);
	if (argc > 1 && !strcmp(argv[1], "-v"))
		log_set_level(LOG_DEBUG);
	hold_std_fds();
	a->root_fd = -1;
	a->pid1 = getpid() == 1;
	if (a->pid1)
		mount_basics();

	err = setup(a, &what);
	if (err) {
		pr_err("%s: %s", what, strerror(-err));
		agent_halt(a, 1);
	}

	send_hello(a);
	err = agent_run(a);
	if (err)
		pr_err("poll: %s", strerror(-err));
	agent_halt(a, err ? 1 : 0);
}
