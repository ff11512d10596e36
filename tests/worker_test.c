/* Tests for vmpool-worker: the test plays vmpoold, the ns backend the guest. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "proto/client.h"
#include "proto/tenant.h"
#include "shm/pool.h"
#include "tests/shm_helpers.h"
#include "worker/control.h"

/* A safety net against a hung worker, not a speed goal. */
#define WORKER_TEST_TIMEOUT 60
#define WAIT_MS		    (30 * 1000)
#define TENANT_UID	    1000

/* One worker as its supervisor sees it. */
struct sup {
	struct shm *shm;
	char name[SHM_NAME_MAX + 1];
	uint32_t slot;
	int ctl;
	pid_t pid;
	/* The current lease. */
	struct proto_client c;
	bool leased;
	uint32_t generation;
};

struct output {
	char out[4096];
	size_t len;
};

static void build_path(char *out, size_t cap, const char *rel)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	snprintf(out, cap, "%s/../%s", dirname(exe), rel);
	if (access(out, R_OK))
		cr_skip_test("%s is not built", out);
}

static void skip_without_namespaces(void)
{
	if (access("/proc/self/ns/pid", R_OK))
		cr_skip_test("no namespaces on this host");
}

static int exec_worker(struct sup *s, const char *image, char **extra)
{
	char worker[PATH_MAX], slot[16], fd[16];
	char *argv[32] = {worker, "--pool",   s->name,	    "--slot",
			  slot,	  "--ctl-fd", fd,	    "--backend",
			  "ns",	  "--image",  (char *)image};
	int sv[2];
	int n = 11;

	build_path(worker, sizeof(worker), "bin/vmpool-worker");
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
static void spawn(struct sup *s, const struct pool_config *cfg,
		  const char *image_rel, char **extra)
{
	char image[PATH_MAX];
	int err;

	skip_without_namespaces();
	if (image_rel[0] == '/')
		snprintf(image, sizeof(image), "%s", image_rel);
	else
		build_path(image, sizeof(image), image_rel);
	memset(s, 0, sizeof(*s));
	s->ctl = -1;
	s->shm = test_pool_named(4, cfg, s->name);
	err = pool_boot_start(s->shm, BOOT_WARM, now_ns(), &s->slot);
	cr_assert_eq(err, 0, "pool_boot_start: %s", strerror(-err));
	exec_worker(s, image, extra);
}

static struct pool_config config(uint32_t health_every)
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
static void recv_ctl(struct sup *s, struct ctl_msg *m)
{
	struct pollfd p = {.fd = s->ctl, .events = POLLIN};
	ssize_t n;

	cr_assert_eq(poll(&p, 1, WAIT_MS), 1, "no message from the worker");
	n = recv(s->ctl, m, sizeof(*m), 0);
	cr_assert_eq(n, (ssize_t)sizeof(*m), "control message: %zd", n);
	cr_assert_eq(m->slot, s->slot);
}

static void expect_ctl(struct sup *s, uint32_t type, struct ctl_msg *m)
{
	recv_ctl(s, m);
	cr_assert_eq(m->type, type, "message %u (%s), want %u", m->type,
		     m->text, type);
}

static struct shm_slot slot_of(struct sup *s)
{
	struct shm_slot copy;

	cr_assert_geq(shm_lock(s->shm), 0);
	copy = shm_slots(shm_segment(s->shm))[s->slot];
	shm_unlock(s->shm);
	return copy;
}

static void assert_invariants(struct sup *s)
{
	char why[256];

	cr_assert_eq(test_check_locked(s->shm, why, sizeof(why)), 0, "%s", why);
}

static void spawn_ready(struct sup *s, const struct pool_config *cfg,
			char **extra)
{
	struct ctl_msg m;

	spawn(s, cfg, "guest/initramfs.cpio", extra);
	expect_ctl(s, CTL_READY, &m);
	cr_assert_eq(slot_of(s).state, SLOT_IDLE);
	cr_assert_eq(slot_of(s).pid, (uint32_t)s->pid);
	assert_invariants(s);
}

static int wait_exit(struct sup *s)
{
	int status;

	cr_assert_eq(waitpid(s->pid, &status, 0), s->pid);
	s->pid = 0;
	cr_assert(WIFEXITED(status), "worker died of signal %d",
		  WTERMSIG(status));
	return WEXITSTATUS(status);
}

static void end_lease(struct sup *s)
{
	close(s->c.fd);
	proto_client_free(&s->c);
	s->leased = false;
}

/* Reap the worker as vmpoold would and drop the pool. */
static void finish(struct sup *s)
{
	if (s->leased)
		end_lease(s);
	if (s->pid > 0) {
		struct ctl_msg m = {.type = CTL_STOP, .slot = s->slot};

		send(s->ctl, &m, sizeof(m), MSG_NOSIGNAL);
		cr_assert_eq(wait_exit(s), WORKER_EXIT_OK);
	}
	if (slot_of(s).state != SLOT_FREE)
		cr_assert_eq(pool_exit(s->shm, s->slot, now_ns()), 0);
	assert_invariants(s);
	close(s->ctl);
	shm_unlink_name(s->name);
	test_pool_drop(s->shm);
}

static void send_lease(struct sup *s, int fd, uint32_t uid, uint32_t gen)
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
static void lease(struct sup *s)
{
	struct proto_frame f;
	struct proto_cur c;
	uint32_t slot;
	int sv[2];

	cr_assert_eq(pool_acquire(s->shm, TENANT_UID, now_ns(), &slot),
		     POOL_HIT);
	cr_assert_eq(slot, s->slot);
	s->generation = slot_of(s).generation;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	send_lease(s, sv[1], TENANT_UID, s->generation);
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
	cr_assert_str_eq(proto_get_str(&c, 16), "ns");
	cr_assert_eq(proto_cur_done(&c), 0);
}

/* RELEASE: OK, then the connection closes; the slot goes back idle. */
static void release(struct sup *s, struct ctl_msg *m)
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
	end_lease(s);
	recv_ctl(s, m);
}

static void release_recycled(struct sup *s, struct ctl_msg *m)
{
	release(s, m);
	cr_assert_eq(m->type, CTL_RECYCLED, "%s", m->text);
	cr_assert_eq(slot_of(s).state, SLOT_IDLE);
	assert_invariants(s);
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
static int sh(struct sup *s, const char *line, struct output *o)
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

static void assert_sh(struct sup *s, const char *line, const char *want)
{
	struct output o;
	int code = sh(s, line, &o);

	cr_assert_eq(code, 0, "%s: exit %d: %s", line, code, o.out);
	cr_assert_str_eq(o.out, want, "%s", line);
}

/* The next frame for id, skipping none: the worker must not invent any. */
static void recv_frame(struct sup *s, struct proto_frame *f, uint16_t type,
		       uint32_t id)
{
	cr_assert_eq(proto_client_recv(&s->c, f), 0);
	cr_assert_eq(f->type, type, "got %s, want %s", proto_type_name(f->type),
		     proto_type_name(type));
	cr_assert_eq(f->id, id);
}

static void send_frame(struct sup *s, const void *buf, long n)
{
	cr_assert_gt(n, 0);
	cr_assert_eq(proto_client_send(&s->c, buf, n), 0);
}

static uint32_t recv_error(struct sup *s, uint32_t id)
{
	struct proto_frame f;
	const char *msg;
	uint32_t code;

	recv_frame(s, &f, PROTO_ERROR, id);
	cr_assert_eq(proto_parse_error(&f, &code, &msg), 0);
	return code;
}

Test(worker, boots_idle_and_reports_ready, .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = config(0);
	struct sup s;

	spawn_ready(&s, &cfg, NULL);
	finish(&s);
}

Test(worker, lease_relays_commands_and_their_exit,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = config(0);
	struct output o;
	struct sup s;

	spawn_ready(&s, &cfg, NULL);
	lease(&s);
	cr_assert_eq(proto_client_ping(&s.c), 0);
	assert_sh(&s, "echo hello; echo oops >&2", "hello\n");
	cr_assert_eq(sh(&s, "exit 3", &o), 3);
	cr_assert_eq(slot_of(&s).execs, 2);
	finish(&s);
}

Test(worker, output_is_relayed_while_the_command_runs,
     .timeout = WORKER_TEST_TIMEOUT)
{
	const char *argv[] = {"echo first; read x; echo second $x", NULL};
	struct proto_exec_req req = {
	    .argv = argv,
	    .flags = PROTO_EXEC_SHELL | PROTO_EXEC_STDIN,
	};
	struct pool_config cfg = config(0);
	uint8_t buf[512];
	struct proto_frame f;
	struct sup s;

	spawn_ready(&s, &cfg, NULL);
	lease(&s);
	send_frame(&s, buf, proto_build_exec(buf, sizeof(buf), 5, &req));

	/* "first" arrives while the command still waits for its stdin. */
	recv_frame(&s, &f, PROTO_STDOUT, 5);
	cr_assert_eq(f.len, 6);
	cr_assert_eq(memcmp(f.payload, "first\n", 6), 0);
	send_frame(&s, buf,
		   proto_build_data(buf, sizeof(buf), PROTO_STDIN, PROTO_F_EOF,
				    5, "go\n", 3));
	recv_frame(&s, &f, PROTO_STDOUT, 5);
	cr_assert_eq(f.len, 10);
	cr_assert_eq(memcmp(f.payload, "second go\n", 10), 0);
	recv_frame(&s, &f, PROTO_EXIT, 5);
	finish(&s);
}

static ssize_t source(void *arg, void *buf, size_t n)
{
	size_t *left = arg;

	n = MIN(n, *left);
	memset(buf, 'x', n);
	*left -= n;
	return n;
}

static int sink(void *arg, const void *p, size_t n)
{
	uint64_t *sum = arg;

	for (size_t i = 0; i < n; i++)
		*sum += ((const uint8_t *)p)[i] == 'x';
	return 0;
}

Test(worker, files_written_are_read_back, .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = config(0);
	size_t left = 300 * 1024;
	uint64_t written, nread, xs = 0;
	struct sup s;

	spawn_ready(&s, &cfg, NULL);
	lease(&s);
	cr_assert_eq(proto_client_write(&s.c, "/tmp/f", 0644, 0, source, &left,
					&written),
		     0);
	cr_assert_eq(written, 300 * 1024);
	cr_assert_eq(proto_client_read(&s.c, "/tmp/f", 0, 0, sink, &xs, &nread),
		     0);
	cr_assert_eq(nread, 300 * 1024);
	cr_assert_eq(xs, 300 * 1024);
	cr_assert_eq(proto_client_exists(&s.c, "/tmp/f"), 1);
	finish(&s);
}

Test(worker, host_only_requests_and_host_ids_are_refused,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = config(0);
	uint8_t buf[64];
	struct sup s;

	spawn_ready(&s, &cfg, NULL);
	lease(&s);
	send_frame(&s, buf,
		   proto_build_empty(buf, sizeof(buf), PROTO_CLEAN, 5));
	cr_assert_eq(recv_error(&s, 5), TENANT_E_FORBIDDEN);
	send_frame(&s, buf,
		   proto_build_empty(buf, sizeof(buf), PROTO_SHUTDOWN, 6));
	cr_assert_eq(recv_error(&s, 6), TENANT_E_FORBIDDEN);
	send_frame(&s, buf,
		   proto_build_empty(buf, sizeof(buf), PROTO_PING,
				     TENANT_ID_HOST | 1));
	cr_assert_eq(recv_error(&s, TENANT_ID_HOST | 1), TENANT_E_FORBIDDEN);
	send_frame(
	    &s, buf,
	    proto_build_data(buf, sizeof(buf), PROTO_STDIN, 0, 8, "x", 1));
	cr_assert_eq(recv_error(&s, 8), PROTO_E_UNKNOWN_ID);

	/* The lease goes on. */
	cr_assert_eq(proto_client_ping(&s.c), 0);
	finish(&s);
}

Test(worker, release_cleans_files_and_processes_for_the_next_lease,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = config(0);
	struct ctl_msg m;
	struct output o;
	struct sup s;

	spawn_ready(&s, &cfg, NULL);
	lease(&s);
	assert_sh(&s, "echo secret > /tmp/left; sleep 1000 >/dev/null 2>&1 &",
		  "");
	assert_sh(&s, "ps -o comm | grep -q sleep && echo running",
		  "running\n");
	release_recycled(&s, &m);

	lease(&s);
	cr_assert_eq(proto_client_exists(&s.c, "/tmp/left"), 0);
	cr_assert_eq(sh(&s, "ps -o comm | grep sleep", &o), 1, "left: %s",
		     o.out);
	release_recycled(&s, &m);
	cr_assert_eq(slot_of(&s).leases, 2);
	finish(&s);
}

Test(worker, tenant_leaving_mid_command_recycles_the_vm,
     .timeout = WORKER_TEST_TIMEOUT)
{
	const char *argv[] = {"echo started; sleep 1000", NULL};
	struct proto_exec_req req = {.argv = argv, .flags = PROTO_EXEC_SHELL};
	struct pool_config cfg = config(0);
	uint8_t buf[256];
	struct proto_frame f;
	struct ctl_msg m;
	struct output o;
	struct sup s;

	spawn_ready(&s, &cfg, NULL);
	lease(&s);
	send_frame(&s, buf, proto_build_exec(buf, sizeof(buf), 3, &req));
	recv_frame(&s, &f, PROTO_STDOUT, 3);
	end_lease(&s);

	expect_ctl(&s, CTL_RECYCLED, &m);
	cr_assert_eq(slot_of(&s).state, SLOT_IDLE);
	assert_invariants(&s);

	/* The next tenant may use the same ids: nothing old reaches it. */
	lease(&s);
	cr_assert_eq(sh(&s, "ps -o comm | grep sleep", &o), 1, "left: %s",
		     o.out);
	finish(&s);
}

Test(worker, health_check_runs_every_nth_release,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = config(2);
	struct ctl_msg m;
	struct pool_stats st;
	struct sup s;

	spawn_ready(&s, &cfg, NULL);
	for (int i = 1; i <= 4; i++) {
		lease(&s);
		release_recycled(&s, &m);
		cr_assert_str_eq(m.text, i % 2 ? "" : "health checked",
				 "release %d", i);
	}

	/* A guest whose /bin/true is gone fails its next check, not before. */
	lease(&s);
	assert_sh(&s, "rm /bin/true && echo gone", "gone\n");
	release_recycled(&s, &m);
	lease(&s);
	release(&s, &m);
	cr_assert_eq(m.type, CTL_EVICTED, "%s", m.text);
	cr_assert_eq(wait_exit(&s), WORKER_EXIT_OK);
	cr_assert_eq(slot_of(&s).state, SLOT_DEAD);
	cr_assert_eq(pool_stats(s.shm, &st), 0);
	cr_assert_eq(st.c.hc_failures, 1);
	cr_assert_eq(st.c.evicted_by[EVICT_UNHEALTHY], 1);
	finish(&s);
}

Test(worker, guest_breaking_the_protocol_is_evicted,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = config(0);
	uint8_t buf[64];
	struct ctl_msg m;
	struct sup s;

	spawn(&s, &cfg, "tests/worker_junk.cpio", NULL);
	expect_ctl(&s, CTL_READY, &m);
	lease(&s);
	send_frame(&s, buf, proto_build_empty(buf, sizeof(buf), PROTO_PING, 4));
	cr_assert_eq(recv_error(&s, 4), TENANT_E_GUEST);
	end_lease(&s);

	expect_ctl(&s, CTL_EVICTED, &m);
	cr_assert_eq(wait_exit(&s), WORKER_EXIT_OK);
	cr_assert_eq(slot_of(&s).state, SLOT_DEAD);
	finish(&s);
}

Test(worker, guest_without_hello_fails_its_boot, .timeout = WORKER_TEST_TIMEOUT)
{
	char *extra[] = {"--boot-timeout", "500ms", NULL};
	struct pool_config cfg = config(0);
	struct ctl_msg m;
	struct sup s;

	spawn(&s, &cfg, "tests/worker_mute.cpio", extra);
	expect_ctl(&s, CTL_BOOT_FAIL, &m);
	cr_assert_eq(wait_exit(&s), WORKER_EXIT_TEMPFAIL);
	cr_assert_eq(slot_of(&s).state, SLOT_DEAD);
	finish(&s);
}

/* The host pid of the sandbox's PID 1: the worker's only child. */
static pid_t sandbox_pid(struct sup *s)
{
	char path[64];
	FILE *f;
	int pid = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", s->pid,
		 s->pid);
	f = fopen(path, "r");
	if (!f)
		cr_skip_test("%s: %s", path, strerror(errno));
	cr_assert_eq(fscanf(f, "%d", &pid), 1, "the worker has no child");
	fclose(f);
	return pid;
}

Test(worker, stop_exits_zero_and_leaves_no_sandbox,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = config(0);
	struct ctl_msg m = {.type = CTL_STOP};
	struct sup s;
	pid_t box;

	spawn_ready(&s, &cfg, NULL);
	box = sandbox_pid(&s);
	cr_assert_eq(kill(box, 0), 0);
	cr_assert_eq(pool_evict(s.shm, s.slot, now_ns()), 0);
	m.slot = s.slot;
	cr_assert_eq(send(s.ctl, &m, sizeof(m), 0), (ssize_t)sizeof(m));
	cr_assert_eq(wait_exit(&s), WORKER_EXIT_OK);
	cr_assert_eq(kill(box, 0), -1, "sandbox %d is still there", box);
	cr_assert_eq(errno, ESRCH);
	finish(&s);
}

Test(worker, guest_death_ends_the_lease_as_a_crash,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = config(0);
	struct proto_frame f;
	struct pool_stats st;
	struct sup s;

	spawn_ready(&s, &cfg, NULL);
	lease(&s);
	cr_assert_eq(kill(sandbox_pid(&s), SIGKILL), 0);
	cr_assert_neq(wait_exit(&s), WORKER_EXIT_OK);
	cr_assert_eq(proto_client_recv(&s.c, &f), 0);
	cr_assert_eq(f.type, PROTO_ERROR);
	cr_assert_eq(proto_client_recv(&s.c, &f), -EPIPE);

	/* The supervisor's view: a crash that lost a lease. */
	cr_assert_eq(slot_of(&s).state, SLOT_LEASED);
	cr_assert_eq(pool_exit(s.shm, s.slot, now_ns()), 0);
	cr_assert_eq(pool_stats(s.shm, &st), 0);
	cr_assert_eq(st.c.crashes, 1);
	cr_assert_eq(st.c.leases_lost, 1);
	finish(&s);
}

Test(worker, lease_for_another_generation_is_refused,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = config(0);
	struct proto_client c;
	struct proto_frame f;
	uint32_t slot;
	struct sup s;
	int sv[2];

	spawn_ready(&s, &cfg, NULL);
	cr_assert_eq(pool_acquire(s.shm, TENANT_UID, now_ns(), &slot),
		     POOL_HIT);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	send_lease(&s, sv[1], TENANT_UID, slot_of(&s).generation + 1);
	close(sv[1]);
	cr_assert_eq(proto_client_init(&c, sv[0]), 0);
	cr_assert_eq(proto_client_recv(&c, &f), 0);
	cr_assert_eq(f.type, PROTO_ERROR);
	cr_assert_eq(proto_client_recv(&c, &f), -EPIPE);
	close(sv[0]);
	proto_client_free(&c);

	/* The right lease still works. */
	s.generation = slot_of(&s).generation;
	finish(&s);
}

static int run_worker(char **args)
{
	char worker[PATH_MAX];
	char *argv[16] = {worker};
	int status, n = 1;
	pid_t pid;

	build_path(worker, sizeof(worker), "bin/vmpool-worker");
	for (; *args && n < 15; args++)
		argv[n++] = *args;
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDERR_FILENO);
		execv(worker, argv);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

Test(worker, bad_arguments_are_a_permanent_failure)
{
	char *none[] = {NULL};
	char *no_pool[] = {"--slot",  "0", "--ctl-fd", "3",
			   "--image", "x", NULL};
	char *bad_slot[] = {"--pool", "p",	 "--slot", "-1", "--ctl-fd",
			    "3",      "--image", "x",	   NULL};
	char *bad_backend[] = {"--pool",    "p",    "--slot",  "0",
			       "--ctl-fd",  "3",    "--image", "x",
			       "--backend", "qemu", NULL};
	char *stray[] = {"--pool", "p",	      "--slot", "0",	 "--ctl-fd",
			 "3",	   "--image", "x",	"extra", NULL};
	char *no_pool_shm[] = {
	    "--pool", "no-such-pool", "--slot", "0", "--ctl-fd",
	    "3",      "--image",      "x",	NULL};

	cr_assert_eq(run_worker(none), WORKER_EXIT_PERMFAIL);
	cr_assert_eq(run_worker(no_pool), WORKER_EXIT_PERMFAIL);
	cr_assert_eq(run_worker(bad_slot), WORKER_EXIT_PERMFAIL);
	cr_assert_eq(run_worker(bad_backend), WORKER_EXIT_PERMFAIL);
	cr_assert_eq(run_worker(stray), WORKER_EXIT_PERMFAIL);
	cr_assert_eq(run_worker(no_pool_shm), WORKER_EXIT_PERMFAIL);
}

Test(worker, missing_image_fails_the_boot_permanently,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = config(0);
	struct ctl_msg m;
	struct sup s;

	spawn(&s, &cfg, "/nonexistent/image.cpio", NULL);
	expect_ctl(&s, CTL_BOOT_FAIL, &m);
	cr_assert(strstr(m.text, "image"), "%s", m.text);
	cr_assert_eq(wait_exit(&s), WORKER_EXIT_PERMFAIL);
	finish(&s);
}

Test(worker, kvm_backend_on_a_pvm_host_is_refused,
     .timeout = WORKER_TEST_TIMEOUT)
{
	char *extra[] = {"--backend", "kvm", "--kernel", "/nonexistent", NULL};
	struct pool_config cfg = config(0);
	struct ctl_msg m;
	struct sup s;

	if (access("/sys/module/kvm_pvm", F_OK))
		cr_skip_test("this host's KVM is not PVM");
	spawn(&s, &cfg, "guest/initramfs.cpio", extra);
	expect_ctl(&s, CTL_BOOT_FAIL, &m);
	cr_assert(strstr(m.text, "hardware KVM"), "%s", m.text);
	cr_assert_eq(wait_exit(&s), WORKER_EXIT_PERMFAIL);
	finish(&s);
}
