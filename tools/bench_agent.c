/* vmpool-bench agent: exec and file throughput through the agent protocol. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/client.h"
#include "tools/bench.h"
#include "worker/ns.h"

extern char **environ;

#define DEFAULT_RUNS 2000
#define DEFAULT_SIZE (1ull << 30)
#define BLOCK	     PROTO_CHUNK

struct target {
	pid_t pid; /* the agent, as this process sees it */
	int fd;
	bool ns;
	struct ns_sandbox sb;
	struct proto_client c;
	char root[PATH_MAX]; /* native only: its temporary sandbox root */
};

struct config {
	size_t runs;
	uint64_t size;
	const char *dir;
	bool ns;
	char image[PATH_MAX];
};

static void sibling(char *out, size_t cap, const char *rel)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	exe[n > 0 ? n : 0] = '\0';
	snprintf(out, cap, "%s/../%s", dirname(exe), rel);
}

/* Fewer wakeups per MiB moved; a worker can size its socket the same. */
static void widen_buffers(int fd)
{
	int size = 4 << 20;

	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

static int start_native(struct target *t, const struct config *cfg)
{
	char bin[PATH_MAX], num[16];
	int sv[2];

	snprintf(t->root, sizeof(t->root), "%s/vmpool-bench-XXXXXX", cfg->dir);
	if (!mkdtemp(t->root))
		return -errno;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;

	widen_buffers(sv[0]);
	widen_buffers(sv[1]);
	sibling(bin, sizeof(bin), "bin/vmpool-agent");
	t->pid = fork();
	if (t->pid < 0)
		return -errno;
	if (t->pid == 0) {
		snprintf(num, sizeof(num), "%d", dup(sv[1]));
		setenv("VMPOOL_CHANNEL_FD", num, 1);
		setenv("VMPOOL_ROOT", t->root, 1);
		execl(bin, bin, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	t->fd = sv[0];
	return 0;
}

static int start_ns(struct target *t, const struct config *cfg)
{
	struct ns_opts opts = {
	    .image = cfg->image,
	    .log_fd = -1,
	    .root_size = cfg->size + (64ull << 20),
	};
	int err = ns_sandbox_start(&opts, &t->sb);

	if (err) {
		pr_err("ns_sandbox_start: %s: %s", t->sb.why, strerror(-err));
		return err;
	}
	t->pid = t->sb.pid;
	t->fd = t->sb.chan_fd;
	return 0;
}

static int start(struct target *t, const struct config *cfg)
{
	int err;

	memset(t, 0, sizeof(*t));
	t->ns = cfg->ns;
	err = t->ns ? start_ns(t, cfg) : start_native(t, cfg);
	if (err)
		return err;

	err = proto_client_init(&t->c, t->fd);
	if (!err)
		err = proto_client_hello(&t->c, NULL);
	if (err)
		pr_err("agent handshake: %s", strerror(-err));
	return err;
}

static void stop(struct target *t)
{
	char cmd[PATH_MAX + 16];

	proto_client_free(&t->c);
	if (t->ns) {
		ns_sandbox_stop(&t->sb);
		return;
	}
	close(t->fd);
	waitpid(t->pid, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->root);
	if (system(cmd) != 0)
		pr_warn("could not remove %s", t->root);
}

static long hwm_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static double p50_us(uint64_t *ns, size_t n)
{
	return bench_pct_ns(ns, n, 50) / 1e3;
}

static double p99_us(uint64_t *ns, size_t n)
{
	return bench_pct_ns(ns, n, 99) / 1e3;
}

static int native_true(uint64_t *took)
{
	uint64_t t0 = now_ns();
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	*took = now_ns() - t0;
	return WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : -EIO;
}

/* posix_spawn uses vfork semantics, as the agent does. */
static int spawn_true(uint64_t *took)
{
	static char *const argv[] = {"true", NULL};
	uint64_t t0 = now_ns();
	pid_t pid;
	int st, err = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);

	if (err)
		return -err;
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	*took = now_ns() - t0;
	return WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : -EIO;
}

static int agent_true(struct target *t, uint64_t *took)
{
	static const char *const argv[] = {"/bin/true", NULL};
	struct proto_exec_req req = {.argv = argv};
	struct proto_exit res;
	uint64_t t0 = now_ns();
	int err = proto_client_exec(&t->c, &req, NULL, NULL, &res);

	*took = now_ns() - t0;
	if (!err && (res.kind != PROTO_EXITED || res.value))
		err = -EIO;
	return err;
}

static void print_exec(uint64_t *nat, uint64_t *spw, uint64_t *agt, size_t runs)
{
	double pn = p50_us(nat, runs), ps = p50_us(spw, runs);
	double pa = p50_us(agt, runs);

	printf("exec /bin/true   fork+exec+wait p50 %8.1f us  p99 %8.1f us\n",
	       pn, p99_us(nat, runs));
	printf("                 posix_spawn    p50 %8.1f us  p99 %8.1f us\n",
	       ps, p99_us(spw, runs));
	printf("                 through agent  p50 %8.1f us  p99 %8.1f us\n",
	       pa, p99_us(agt, runs));
	printf("                 added p50 %.1f us over fork (%.2fx), %.1f us "
	       "over posix_spawn (%.2fx); goal: under 100 us added\n",
	       pa - pn, pa / pn, pa - ps, pa / ps);
}

static int bench_exec(struct target *t, size_t runs)
{
	uint64_t *nat = calloc(runs, sizeof(*nat));
	uint64_t *spw = calloc(runs, sizeof(*spw));
	uint64_t *agt = calloc(runs, sizeof(*agt));
	int err = nat && spw && agt ? 0 : -ENOMEM;

	/* Interleaved, so that all three see the same machine state. */
	for (size_t i = 0; !err && i < runs; i++) {
		err = native_true(&nat[i]);
		if (!err)
			err = spawn_true(&spw[i]);
		if (!err)
			err = agent_true(t, &agt[i]);
	}
	if (err)
		pr_err("exec /bin/true: %s", strerror(-err));
	else
		print_exec(nat, spw, agt, runs);
	free(nat);
	free(spw);
	free(agt);
	return err;
}

/* A source of size bytes copied from one prefilled block. */
struct source {
	const uint8_t *block;
	uint64_t left;
};

static ssize_t source_fill(void *arg, void *buf, size_t n)
{
	struct source *s = arg;

	n = MIN(MIN(n, (size_t)BLOCK), s->left);
	memcpy(buf, s->block, n);
	s->left -= n;
	return n;
}

static int sink_count(void *arg, const void *p, size_t n)
{
	*(uint64_t *)arg += n;
	return 0;
}

static double mbps(uint64_t bytes, uint64_t ns)
{
	return ns ? bytes / 1e6 / (ns / 1e9) : 0;
}

/* The peer: the same bytes through write(2) and read(2) on a local file. */
static int direct_io(const struct config *cfg, const uint8_t *block,
		     uint64_t *wns, uint64_t *rns)
{
	char path[PATH_MAX], *buf = malloc(BLOCK);
	uint64_t t0, left;
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/vmpool-bench-direct.%d", cfg->dir,
		 (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !buf) {
		free(buf);
		return fd < 0 ? -errno : -ENOMEM;
	}

	t0 = now_ns();
	for (left = cfg->size; !err && left; left -= MIN(left, BLOCK))
		err = write_full(fd, block, MIN(left, BLOCK));
	if (!err && fsync(fd) == 0)
		*wns = now_ns() - t0;

	t0 = now_ns();
	lseek(fd, 0, SEEK_SET);
	for (left = cfg->size; !err && left; left -= MIN(left, BLOCK))
		err = read_full(fd, buf, MIN(left, BLOCK));
	*rns = now_ns() - t0;

	close(fd);
	unlink(path);
	free(buf);
	return err;
}

static int agent_io(struct target *t, const struct config *cfg,
		    const uint8_t *block, uint64_t *wns, uint64_t *rns)
{
	struct source src = {block, cfg->size};
	uint64_t got = 0, t0 = now_ns();
	int err = proto_client_write(&t->c, "bench.bin", 0600, 0, source_fill,
				     &src, NULL);

	*wns = now_ns() - t0;
	if (err) {
		pr_err("agent write: %s (%s)", strerror(-err), t->c.err_msg);
		return err;
	}

	t0 = now_ns();
	err =
	    proto_client_read(&t->c, "bench.bin", 0, 0, sink_count, &got, NULL);
	*rns = now_ns() - t0;
	if (!err && got != cfg->size)
		err = -EIO;
	if (err)
		pr_err("agent read: %s (%s)", strerror(-err), t->c.err_msg);
	proto_client_remove(&t->c, "bench.bin", 0);
	return err;
}

static int bench_files(struct target *t, const struct config *cfg)
{
	uint8_t *block = malloc(BLOCK);
	uint64_t aw = 0, ar = 0, dw = 0, dr = 0;
	int err;

	if (!block)
		return -ENOMEM;
	for (size_t i = 0; i < BLOCK; i++)
		block[i] = i * 131 + 7;

	err = agent_io(t, cfg, block, &aw, &ar);
	if (!err)
		err = direct_io(cfg, block, &dw, &dr);
	free(block);
	if (err)
		return err;

	printf("file %4llu MiB    write through agent %7.0f MB/s, direct %7.0f "
	       "MB/s (%.2fx)\n",
	       (unsigned long long)(cfg->size >> 20), mbps(cfg->size, aw),
	       mbps(cfg->size, dw), (double)dw / aw);
	printf("                 read  through agent %7.0f MB/s, direct %7.0f "
	       "MB/s (%.2fx)\n",
	       mbps(cfg->size, ar), mbps(cfg->size, dr), (double)dr / ar);
	printf("                 agent peak RSS %ld KiB (goal: >= 500 MB/s, "
	       "bounded memory)\n",
	       hwm_kib(t->pid));
	return 0;
}

static int parse_opt(int c, const char *arg, struct config *cfg)
{
	uint64_t v;

	switch (c) {
	case 'n':
		if (parse_u64(arg, 1, 1000000, &v))
			return -EINVAL;
		cfg->runs = v;
		return 0;
	case 's':
		return parse_size(arg, &cfg->size) || !cfg->size ? -EINVAL : 0;
	case 'd':
		cfg->dir = arg;
		return 0;
	case 'N':
		cfg->ns = true;
		if (arg)
			snprintf(cfg->image, sizeof(cfg->image), "%s", arg);
		return 0;
	}
	return -EINVAL;
}

static int parse_args(int argc, char **argv, struct config *cfg)
{
	static const struct option longopts[] = {
	    {"runs", required_argument, NULL, 'n'},
	    {"size", required_argument, NULL, 's'},
	    {"dir", required_argument, NULL, 'd'},
	    {"ns", optional_argument, NULL, 'N'},
	    {0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "n:s:d:", longopts, NULL)) != -1)
		if (parse_opt(c, optarg, cfg))
			return -EINVAL;
	return optind == argc ? 0 : -EINVAL;
}

int bench_agent(int argc, char **argv)
{
	struct config cfg = {
	    .runs = DEFAULT_RUNS, .size = DEFAULT_SIZE, .dir = "/dev/shm"};
	struct target t;
	int err;

	sibling(cfg.image, sizeof(cfg.image), "guest/initramfs.cpio");
	if (parse_args(argc, argv, &cfg)) {
		fprintf(stderr, "usage: vmpool-bench agent [-n RUNS] [-s SIZE] "
				"[-d DIR] [--ns[=IMAGE]]\n");
		return 2;
	}

	err = start(&t, &cfg);
	if (err)
		return 1;
	printf("agent: %s backend, %zu exec runs, %llu MiB files, peer files "
	       "in %s\n",
	       cfg.ns ? "ns" : "native child", cfg.runs,
	       (unsigned long long)(cfg.size >> 20), cfg.dir);
	err = bench_exec(&t, cfg.runs);
	if (!err)
		err = bench_files(&t, &cfg);
	stop(&t);
	return err ? 1 : 0;
}
