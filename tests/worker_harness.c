/* Test harness for vmpool-worker: the test plays vmpoold for one worker. */
#include "tests/worker_harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "proto/tenant.h"
#include "tests/shm_helpers.h"

const char *sup_backend = "ns";
static char kernel[PATH_MAX];

void sup_build_path(char *out, size_t cap, const char *rel)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	snprintf(out, cap, "%s/../%s", dirname(exe), rel);
	if (access(out, R_OK))
		cr_skip_test("%s is not built", out);
}

void sup_skip_without_namespaces(void)
{
	if (access("/proc/self/ns/pid", R_OK))
		cr_skip_test("no namespaces on this host");
}

int sup_exec_worker(struct sup *s, const char *image, char **extra)
{
	char worker[PATH_MAX], slot[16], fd[16];
	char *argv[32] = {worker,    "--pool",	   s->name,
			  "--slot",  slot,	   "--ctl-fd",
			  fd,	     "--backend",  (char *)sup_backend,
			  "--image", (char *)image};
	int sv[2];
	int n = 11;

	sup_build_path(worker, sizeof(worker), "bin/vmpool-worker");
	if (kernel[0]) {
		argv[n++] = "--kernel";
		argv[n++] = kernel;
	}
	for (; extra && *extra && n < 30; extra++)
		argv[n++] = *extra;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv),
		     0);
	snprintf(slot, sizeof(slot), "%u", s->slot);
	snprintf(fd, sizeof(fd), "%d", sv[1]);

	s->pid = fork();
	cr_assert_geq(s->pid, 0);
	if (s->pid == 0) {
		fcntl(sv[1], F_SETFD, 0);
		execv(worker, argv);
		_exit(127);
	}
	close(sv[1]);
	s->ctl = sv[0];
	return 0;
}

/* A pool with one slot booting for the worker, which is started. */
void sup_spawn(struct sup *s, const struct pool_config *cfg,
	       const char *image_rel, char **extra)
{
	char image[PATH_MAX];
	int err;

	if (!strcmp(sup_backend, "ns"))
		sup_skip_without_namespaces();
	if (image_rel[0] == '/')
		snprintf(image, sizeof(image), "%s", image_rel);
	else
		sup_build_path(image, sizeof(image), image_rel);
	memset(s, 0, sizeof(*s));
	s->ctl = -1;
	s->shm = test_pool_named(4, cfg, s->name);
	err = pool_boot_start(s->shm, BOOT_WARM, now_ns(), &s->slot);
	cr_assert_eq(err, 0, "pool_boot_start: %s", strerror(-err));
	sup_exec_worker(s, image, extra);
}

struct pool_config sup_config(uint32_t health_every)
{
	struct pool_config cfg = {
	    .min_size = 0,
	    .max_size = 4,
	    .max_idle_ns = 3600ull * 1000000000,
	    .health_check_interval = health_every,
	};

	return cfg;
}

/* The next control message from the worker; fails on EOF or timeout. */
void sup_recv_ctl(struct sup *s, struct ctl_msg *m)
{
	struct pollfd p = {.fd = s->ctl, .events = POLLIN};
	ssize_t n;

	cr_assert_eq(poll(&p, 1, WAIT_MS), 1, "no message from the worker");
	n = recv(s->ctl, m, sizeof(*m), 0);
	cr_assert_eq(n, (ssize_t)sizeof(*m), "control message: %zd", n);
	cr_assert_eq(m->slot, s->slot);
}

void sup_expect_ctl(struct sup *s, uint32_t type, struct ctl_msg *m)
{
	sup_recv_ctl(s, m);
	cr_assert_eq(m->type, type, "message %u (%s), want %u", m->type,
		     m->text, type);
}

struct shm_slot sup_slot_of(struct sup *s)
{
	struct shm_slot copy;

	cr_assert_geq(shm_lock(s->shm), 0);
	copy = shm_slots(shm_segment(s->shm))[s->slot];
	shm_unlock(s->shm);
	return copy;
}

void sup_assert_invariants(struct sup *s)
{
	char why[256];

	cr_assert_eq(test_check_locked(s->shm, why, sizeof(why)), 0, "%s", why);
}

void sup_spawn_ready(struct sup *s, const struct pool_config *cfg, char **extra)
{
	struct ctl_msg m;

	sup_spawn(s, cfg, "guest/initramfs.cpio", extra);
	sup_expect_ctl(s, CTL_READY, &m);
	cr_assert_eq(sup_slot_of(s).state, SLOT_IDLE);
	cr_assert_eq(sup_slot_of(s).pid, (uint32_t)s->pid);
	sup_assert_invariants(s);
}

int sup_wait_exit(struct sup *s)
{
	int status;

	cr_assert_eq(waitpid(s->pid, &status, 0), s->pid);
	s->pid = 0;
	cr_assert(WIFEXITED(status), "worker died of signal %d",
		  WTERMSIG(status));
	return WEXITSTATUS(status);
}

void sup_end_lease(struct sup *s)
{
	close(s->c.fd);
	proto_client_free(&s->c);
	s->leased = false;
}

/* Reap the worker as vmpoold would and drop the pool. */
void sup_finish(struct sup *s)
{
	if (s->leased)
		sup_end_lease(s);
	if (s->pid > 0) {
		struct ctl_msg m = {.type = CTL_STOP, .slot = s->slot};

		send(s->ctl, &m, sizeof(m), MSG_NOSIGNAL);
		cr_assert_eq(sup_wait_exit(s), WORKER_EXIT_OK);
	}
	if (sup_slot_of(s).state != SLOT_FREE)
		cr_assert_eq(pool_exit(s->shm, s->slot, now_ns()), 0);
	sup_assert_invariants(s);
	close(s->ctl);
	shm_unlink_name(s->name);
	test_pool_drop(s->shm);
}

void sup_send_lease(struct sup *s, int fd, uint32_t uid, uint32_t gen)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct ctl_msg m = {
	    .type = CTL_LEASE,
	    .slot = s->slot,
	    .uid = uid,
	    .generation = gen,
	    .id = 7,
	    .t0 = now_ns(),
	};
	struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
	struct msghdr mh = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = cbuf.buf,
	    .msg_controllen = sizeof(cbuf.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	cr_assert_eq(sendmsg(s->ctl, &mh, 0), (ssize_t)sizeof(m));
}

/* Lease the idle slot as vmpoold does and check the LEASED reply. */
void sup_lease(struct sup *s)
{
	struct proto_frame f;
	struct proto_cur c;
	uint32_t slot;
	int sv[2];

	cr_assert_eq(pool_acquire(s->shm, TENANT_UID, now_ns(), &slot),
		     POOL_HIT);
	cr_assert_eq(slot, s->slot);
	s->generation = sup_slot_of(s).generation;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	sup_send_lease(s, sv[1], TENANT_UID, s->generation);
	close(sv[1]);

	cr_assert_eq(proto_client_init(&s->c, sv[0]), 0);
	s->leased = true;
	cr_assert_eq(proto_client_recv(&s->c, &f), 0);
	cr_assert_eq(f.type, TENANT_LEASED, "got %s", proto_type_name(f.type));
	cr_assert_eq(f.id, 7);
	proto_cur_init(&c, &f);
	cr_assert_eq(proto_get_u32(&c), s->slot);
	cr_assert_eq(proto_get_u32(&c), s->generation);
	cr_assert_eq(proto_get_u8(&c), 1, "a warm VM is a hit");
	proto_get_u64(&c);
	cr_assert_str_eq(proto_get_str(&c, 16), sup_backend);
	cr_assert_eq(proto_cur_done(&c), 0);
}

/* RELEASE: OK, then the connection closes; the slot goes back idle. */
void sup_release(struct sup *s, struct ctl_msg *m)
{
	uint8_t buf[PROTO_HDR_SIZE];
	struct proto_frame f;
	long n = proto_build_empty(buf, sizeof(buf), TENANT_RELEASE, 99);

	cr_assert_eq(proto_client_send(&s->c, buf, n), 0);
	cr_assert_eq(proto_client_recv(&s->c, &f), 0);
	cr_assert_eq(f.type, PROTO_OK);
	cr_assert_eq(f.id, 99);
	cr_assert_eq(proto_client_recv(&s->c, &f), -EPIPE,
		     "the connection closes after RELEASE");
	sup_end_lease(s);
	sup_recv_ctl(s, m);
}

void sup_release_recycled(struct sup *s, struct ctl_msg *m)
{
	sup_release(s, m);
	cr_assert_eq(m->type, CTL_RECYCLED, "%s", m->text);
	cr_assert_eq(sup_slot_of(s).state, SLOT_IDLE);
	sup_assert_invariants(s);
}

static void collect(void *arg, int stream, const void *p, size_t n)
{
	struct output *o = arg;

	if (stream != 1)
		return;
	n = MIN(n, sizeof(o->out) - 1 - o->len);
	memcpy(o->out + o->len, p, n);
	o->len += n;
	o->out[o->len] = '\0';
}

/* Run a shell line; its stdout in o, its exit code returned. */
int sup_sh(struct sup *s, const char *line, struct output *o)
{
	const char *argv[] = {line, NULL};
	struct proto_exec_req req = {.argv = argv, .flags = PROTO_EXEC_SHELL};
	struct proto_exit res;
	int err;

	memset(o, 0, sizeof(*o));
	err = proto_client_exec(&s->c, &req, collect, o, &res);
	cr_assert_eq(err, 0, "exec %s: %s (%s)", line, strerror(-err),
		     s->c.err_msg);
	cr_assert_eq(res.kind, PROTO_EXITED);
	return res.value;
}

void sup_assert_sh(struct sup *s, const char *line, const char *want)
{
	struct output o;
	int code = sup_sh(s, line, &o);

	cr_assert_eq(code, 0, "%s: exit %d: %s", line, code, o.out);
	cr_assert_str_eq(o.out, want, "%s", line);
}

/* The next frame for id, skipping none: the worker must not invent any. */
void sup_recv_frame(struct sup *s, struct proto_frame *f, uint16_t type,
		    uint32_t id)
{
	cr_assert_eq(proto_client_recv(&s->c, f), 0);
	cr_assert_eq(f->type, type, "got %s, want %s", proto_type_name(f->type),
		     proto_type_name(type));
	cr_assert_eq(f->id, id);
}

void sup_send_frame(struct sup *s, const void *buf, long n)
{
	cr_assert_gt(n, 0);
	cr_assert_eq(proto_client_send(&s->c, buf, n), 0);
}

uint32_t sup_recv_error(struct sup *s, uint32_t id)
{
	struct proto_frame f;
	const char *msg;
	uint32_t code;

	sup_recv_frame(s, &f, PROTO_ERROR, id);
	cr_assert_eq(proto_parse_error(&f, &code, &msg), 0);
	return code;
}

void sup_use_kvm(void)
{
	if (access("/dev/kvm", R_OK | W_OK) ||
	    (access("/sys/module/kvm_amd", F_OK) &&
	     access("/sys/module/kvm_intel", F_OK)))
		cr_skip_test("needs hardware KVM (kvm_intel or kvm_amd)");
	sup_build_path(kernel, sizeof(kernel), "guest/vmlinux");
	sup_backend = "kvm";
}
