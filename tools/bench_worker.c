/* vmpool-bench worker: a lease through vmpool-worker, next to the bare agent.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "kvm/vm.h"
#include "proto/client.h"
#include "proto/tenant.h"
#include "shm/pool.h"
#include "tools/bench.h"
#include "worker/control.h"
#include "worker/ns.h"

#define DEFAULT_RUNS 200
#define CTL_WAIT_MS  (30 * 1000)
#define BENCH_UID    1000

/* The benchmark plays vmpoold for one ns worker. */
struct sup {
	struct shm *shm;
	char pool[SHM_NAME_MAX + 1];
	uint32_t slot;
	int ctl;
	pid_t pid;
	struct proto_client c;
	const char *kernel; /* the kvm backend's; NULL: ns */
};

struct series {
	const char *what;
	uint64_t *ns;
	size_t n;
};

static double p_us(struct series *s, unsigned p)
{
	return bench_pct_ns(s->ns, s->n, p) / 1e3;
}

static void print_series(struct series *s)
{
	printf("  %-28s runs %5zu  p50 %9.1f us  p99 %9.1f us\n", s->what, s->n,
	       p_us(s, 50), p_us(s, 99));
}

static void sibling(char *out, size_t cap, const char *rel)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	exe[n > 0 ? n : 0] = '\0';
	snprintf(out, cap, "%s/../%s", dirname(exe), rel);
}

/* kB of a /proc/PID/status field ("VmRSS"), or -1. */
static long status_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t len = strlen(field);
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, len) && line[len] == ':')
			kb = strtol(line + len + 1, NULL, 10);
	fclose(f);
	return kb;
}

int bench_split_rss(pid_t pid, uint64_t size, long *guest, long *rest)
{
	unsigned long lo, hi;
	char path[64], line[256];
	bool in_guest = false;
	FILE *f;
	long kb;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	*guest = *rest = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			in_guest = hi - lo == size;
		else if (sscanf(line, "Rss: %ld kB", &kb) == 1)
			*(in_guest ? guest : rest) += kb;
	}
	fclose(f);
	return 0;
}

static int recv_ctl(struct sup *s, struct ctl_msg *m)
{
	struct pollfd p = {.fd = s->ctl, .events = POLLIN};

	if (poll(&p, 1, CTL_WAIT_MS) != 1)
		return -ETIMEDOUT;
	if (recv(s->ctl, m, sizeof(*m), 0) != sizeof(*m))
		return -EPIPE;
	return 0;
}

static void exec_worker(struct sup *s, const char *image, int fd)
{
	char worker[PATH_MAX], slot[16], fdarg[16];
	char *argv[] = {worker,	       "--pool",    s->pool, "--slot",
			slot,	       "--ctl-fd",  fdarg,   "--image",
			(char *)image, "--backend", "ns",    NULL,
			NULL,	       NULL};

	sibling(worker, sizeof(worker), "bin/vmpool-worker");
	snprintf(slot, sizeof(slot), "%u", s->slot);
	snprintf(fdarg, sizeof(fdarg), "%d", fd);
	if (s->kernel) {
		argv[10] = "kvm";
		argv[11] = "--kernel";
		argv[12] = (char *)s->kernel;
	}
	fcntl(fd, F_SETFD, 0);
	execv(worker, argv);
	_exit(127);
}

/* A one-slot pool and its worker, up to CTL_READY. */
static int start_worker(struct sup *s, const char *image, uint64_t *boot)
{
	struct pool_config cfg = {.max_size = 1, .max_idle_ns = UINT64_MAX};
	uint64_t t0 = now_ns();
	struct ctl_msg m;
	int sv[2], err;

	snprintf(s->pool, sizeof(s->pool), "bench-%d", getpid());
	shm_unlink_name(s->pool);
	err = shm_create(s->pool, 1, &cfg, &s->shm);
	if (!err)
		err = pool_boot_start(s->shm, BOOT_WARM, now_ns(), &s->slot);
	if (!err && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		err = -errno;
	if (err)
		return err;

	s->pid = fork();
	if (s->pid == 0)
		exec_worker(s, image, sv[1]);
	close(sv[1]);
	s->ctl = sv[0];
	err = recv_ctl(s, &m);
	*boot = now_ns() - t0;
	return err ? err : (m.type == CTL_READY ? 0 : -EIO);
}

static void stop_worker(struct sup *s)
{
	struct ctl_msg m = {.type = CTL_STOP, .slot = s->slot};

	send(s->ctl, &m, sizeof(m), MSG_NOSIGNAL);
	waitpid(s->pid, NULL, 0);
	close(s->ctl);
	shm_detach(s->shm);
	shm_unlink_name(s->pool);
}

static int send_lease(struct sup *s, int fd, uint32_t generation)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct ctl_msg m = {.type = CTL_LEASE,
			    .slot = s->slot,
			    .uid = BENCH_UID,
			    .generation = generation,
			    .id = 1,
			    .t0 = now_ns()};
	struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf.buf,
			    .msg_controllen = sizeof(cbuf.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(s->ctl, &mh, 0) == sizeof(m) ? 0 : -errno;
}

/* pool_acquire, CTL_LEASE, LEASED: the lease as the worker serves it. */
static int lease(struct sup *s, uint64_t *took)
{
	struct proto_frame f;
	uint32_t slot;
	uint64_t t0;
	int sv[2], err;

	if (pool_acquire(s->shm, BENCH_UID, now_ns(), &slot) != POOL_HIT)
		return -EAGAIN;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	t0 = now_ns();
	err = send_lease(s, sv[1],
			 shm_slots(shm_segment(s->shm))[slot].generation);
	close(sv[1]);
	if (!err)
		err = proto_client_init(&s->c, sv[0]);
	if (!err)
		err = proto_client_recv(&s->c, &f);
	*took = now_ns() - t0;
	if (!err && f.type != TENANT_LEASED)
		err = -EPROTO;
	return err;
}

/* RELEASE until the worker reports the slot recycled. */
static int release(struct sup *s, uint64_t *took)
{
	uint8_t buf[PROTO_HDR_SIZE];
	uint64_t t0 = now_ns();
	struct ctl_msg m;
	int err;

	err = proto_client_send(
	    &s->c, buf, proto_build_empty(buf, sizeof(buf), TENANT_RELEASE, 9));
	if (!err)
		err = recv_ctl(s, &m);
	*took = now_ns() - t0;
	close(s->c.fd);
	proto_client_free(&s->c);
	if (!err && m.type != CTL_RECYCLED)
		err = -EIO;
	return err;
}

static int round_trips(struct proto_client *c, struct series *ping,
		       struct series *exec, size_t runs)
{
	const char *argv[] = {"true", NULL};
	struct proto_exec_req req = {.argv = argv};
	struct proto_exit res;
	int err = 0;

	for (size_t i = 0; !err && i < runs; i++) {
		uint64_t t0 = now_ns();

		err = proto_client_ping(c);
		ping->ns[ping->n++] = now_ns() - t0;
		if (err || i % 4)
			continue;
		t0 = now_ns();
		err = proto_client_exec(c, &req, NULL, NULL, &res);
		exec->ns[exec->n++] = now_ns() - t0;
	}
	return err;
}

/* The peer: the same agent in a sandbox, with nobody between. */
static int direct(const char *image, struct series *ping, struct series *exec,
		  size_t runs)
{
	struct ns_opts opts = {.image = image, .log_fd = -1};
	struct ns_sandbox sb;
	struct proto_client c;
	int err;

	err = ns_sandbox_start(&opts, &sb);
	if (err) {
		pr_err("ns_sandbox_start: %s: %s", sb.why, strerror(-err));
		return err;
	}
	err = proto_client_init(&c, sb.chan_fd);
	if (!err)
		err = proto_client_hello(&c, NULL);
	if (!err)
		err = round_trips(&c, ping, exec, runs);
	proto_client_free(&c);
	ns_sandbox_stop(&sb);
	return err;
}

/* Lease, a few requests, release: runs/4 cycles. */
static int cycles(struct sup *s, struct series *ls, struct series *rs,
		  struct series *ping, struct series *exec, size_t runs)
{
	int err = 0;

	for (size_t i = 0; !err && i < runs / 4; i++) {
		err = lease(s, &ls->ns[ls->n++]);
		if (!err)
			err = round_trips(&s->c, ping, exec, 4);
		if (!err)
			err = release(s, &rs->ns[rs->n++]);
	}
	return err;
}

static struct series *new_series(struct series *s, const char *what, size_t cap)
{
	s->what = what;
	s->n = 0;
	s->ns = calloc(cap, sizeof(*s->ns));
	return s->ns ? s : NULL;
}

static int alloc_series(struct series s[6], size_t runs)
{
	if (!new_series(&s[0], "lease (CTL_LEASE to LEASED)", runs) ||
	    !new_series(&s[1], "release to CTL_RECYCLED", runs) ||
	    !new_series(&s[2], "ping via worker", 2 * runs) ||
	    !new_series(&s[3], "exec true via worker", 2 * runs) ||
	    !new_series(&s[4], "ping direct", 2 * runs) ||
	    !new_series(&s[5], "exec true direct", 2 * runs))
		return -ENOMEM;
	return 0;
}

struct figures {
	uint64_t boot;
	long rss[2];	  /* KiB after boot, after the runs */
	long guest, rest; /* KiB in the guest's RAM, and the rest */
};

static void report(struct sup *sup, struct series s[6], struct figures *fg)
{
	printf("worker: %s backend, boot to READY %.1f ms\n",
	       sup->kernel ? "kvm" : "ns", fg->boot / 1e6);
	printf("  worker RSS: %ld KiB after boot, %ld KiB after the runs\n",
	       fg->rss[0], fg->rss[1]);
	if (sup->kernel)
		printf("  of which guest RAM %ld KiB; the worker itself %ld "
		       "KiB (%.1f%% of the total)\n",
		       fg->guest, fg->rest,
		       100.0 * fg->rest / (fg->rest + fg->guest));
	for (int i = 0; i < (sup->kernel ? 4 : 6); i++)
		print_series(&s[i]);
	if (!sup->kernel)
		printf(
		    "  through the worker / direct: ping %.2fx, exec %.2fx\n",
		    p_us(&s[2], 50) / p_us(&s[4], 50),
		    p_us(&s[3], 50) / p_us(&s[5], 50));
}

static int parse_args(int argc, char **argv, size_t *runs, char *image,
		      size_t cap, struct sup *sup)
{
	uint64_t v;
	int c;

	while ((c = getopt(argc, argv, "n:i:k:")) != -1) {
		if (c == 'n' && !parse_u64(optarg, 4, 1000000, &v))
			*runs = v;
		else if (c == 'i')
			snprintf(image, cap, "%s", optarg);
		else if (c == 'k')
			sup->kernel = optarg;
		else
			return -EINVAL;
	}
	return 0;
}

/* Lease cycles, then one long lease; the worker's memory around them. */
static int through_worker(struct sup *sup, const char *image,
			  struct series s[6], size_t runs, struct figures *fg)
{
	int err = start_worker(sup, image, &fg->boot);

	if (err) {
		pr_err("starting vmpool-worker: %s", strerror(-err));
		return err;
	}
	fg->rss[0] = status_kb(sup->pid, "VmRSS");
	err = cycles(sup, &s[0], &s[1], &s[2], &s[3], runs);
	if (!err)
		err = lease(sup, &s[0].ns[s[0].n++]);
	if (!err)
		err = round_trips(&sup->c, &s[2], &s[3], runs);
	if (!err)
		err = release(sup, &s[1].ns[s[1].n++]);
	fg->rss[1] = status_kb(sup->pid, "VmRSS");
	bench_split_rss(sup->pid, VM_DEFAULT_MEM, &fg->guest, &fg->rest);
	stop_worker(sup);
	return err;
}

int bench_worker(int argc, char **argv)
{
	char image[PATH_MAX];
	struct series s[6];
	size_t runs = DEFAULT_RUNS;
	struct figures fg = {0};
	struct sup sup = {0};
	int err;

	sibling(image, sizeof(image), "guest/initramfs.cpio");
	if (parse_args(argc, argv, &runs, image, sizeof(image), &sup)) {
		fprintf(stderr, "usage: vmpool-bench worker [-n RUNS] "
				"[-i IMAGE] [-k VMLINUX (kvm backend)]\n");
		return 2;
	}
	if (alloc_series(s, runs))
		return 1;

	err = through_worker(&sup, image, s, runs, &fg);
	if (!err && !sup.kernel)
		err = direct(image, &s[4], &s[5], runs + runs / 4 * 4);
	if (err) {
		pr_err("worker benchmark: %s", strerror(-err));
		return 1;
	}
	report(&sup, s, &fg);
	return 0;
}
