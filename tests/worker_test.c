/* Tests for vmpool-worker: the test plays vmpoold, the ns backend the guest. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
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
#include "proto/tenant.h"
#include "tests/worker_harness.h"

Test(worker, boots_idle_and_reports_ready, .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = sup_config(0);
	struct sup s;

	sup_spawn_ready(&s, &cfg, NULL);
	sup_finish(&s);
}

Test(worker, lease_relays_commands_and_their_exit,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = sup_config(0);
	struct output o;
	struct sup s;

	sup_spawn_ready(&s, &cfg, NULL);
	sup_lease(&s);
	cr_assert_eq(proto_client_ping(&s.c), 0);
	sup_assert_sh(&s, "echo hello; echo oops >&2", "hello\n");
	cr_assert_eq(sup_sh(&s, "exit 3", &o), 3);
	cr_assert_eq(sup_slot_of(&s).execs, 2);
	sup_finish(&s);
}

Test(worker, output_is_relayed_while_the_command_runs,
     .timeout = WORKER_TEST_TIMEOUT)
{
	const char *argv[] = {"echo first; read x; echo second $x", NULL};
	struct proto_exec_req req = {
	    .argv = argv,
	    .flags = PROTO_EXEC_SHELL | PROTO_EXEC_STDIN,
	};
	struct pool_config cfg = sup_config(0);
	uint8_t buf[512];
	struct proto_frame f;
	struct sup s;

	sup_spawn_ready(&s, &cfg, NULL);
	sup_lease(&s);
	sup_send_frame(&s, buf, proto_build_exec(buf, sizeof(buf), 5, &req));

	/* "first" arrives while the command still waits for its stdin. */
	sup_recv_frame(&s, &f, PROTO_STDOUT, 5);
	cr_assert_eq(f.len, 6);
	cr_assert_eq(memcmp(f.payload, "first\n", 6), 0);
	sup_send_frame(&s, buf,
		       proto_build_data(buf, sizeof(buf), PROTO_STDIN,
					PROTO_F_EOF, 5, "go\n", 3));
	sup_recv_frame(&s, &f, PROTO_STDOUT, 5);
	cr_assert_eq(f.len, 10);
	cr_assert_eq(memcmp(f.payload, "second go\n", 10), 0);
	sup_recv_frame(&s, &f, PROTO_EXIT, 5);
	sup_finish(&s);
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
	struct pool_config cfg = sup_config(0);
	size_t left = 300 * 1024;
	uint64_t written, nread, xs = 0;
	struct sup s;

	sup_spawn_ready(&s, &cfg, NULL);
	sup_lease(&s);
	cr_assert_eq(proto_client_write(&s.c, "/tmp/f", 0644, 0, source, &left,
					&written),
		     0);
	cr_assert_eq(written, 300 * 1024);
	cr_assert_eq(proto_client_read(&s.c, "/tmp/f", 0, 0, sink, &xs, &nread),
		     0);
	cr_assert_eq(nread, 300 * 1024);
	cr_assert_eq(xs, 300 * 1024);
	cr_assert_eq(proto_client_exists(&s.c, "/tmp/f"), 1);
	sup_finish(&s);
}

static void count_bytes(void *arg, int stream, const void *p, size_t n)
{
	uint64_t *count = arg;

	if (stream == 1)
		*count += n;
}

/* More than the worker buffers either way: its pauses must not lose or
 * wedge anything. */
Test(worker, bulk_output_and_files_pass_intact, .timeout = WORKER_TEST_TIMEOUT)
{
	const char *argv[] = {"head -c 20000000 /dev/zero", NULL};
	struct proto_exec_req req = {.argv = argv, .flags = PROTO_EXEC_SHELL};
	struct pool_config cfg = sup_config(0);
	size_t left = 12 << 20;
	uint64_t n = 0, written, nread, xs = 0;
	struct proto_exit res;
	struct sup s;

	uint8_t buf[256];
	struct proto_frame f;

	sup_spawn_ready(&s, &cfg, NULL);
	sup_lease(&s);
	sup_send_frame(&s, buf, proto_build_exec(buf, sizeof(buf), 2, &req));
	/* A tenant slow to read: the worker's queue for it fills up. */
	usleep(300 * 1000);
	do {
		cr_assert_eq(proto_client_recv(&s.c, &f), 0);
		cr_assert_eq(f.id, 2);
		if (f.type == PROTO_STDOUT)
			n += f.len;
	} while (f.type == PROTO_STDOUT);
	cr_assert_eq(f.type, PROTO_EXIT);
	cr_assert_eq(n, 20000000);
	cr_assert_eq(proto_client_exec(&s.c, &req, count_bytes, &n, &res), 0);
	cr_assert_eq(n, 40000000);
	cr_assert_eq(proto_client_write(&s.c, "/tmp/big", 0644, 0, source,
					&left, &written),
		     0);
	cr_assert_eq(written, 12 << 20);
	cr_assert_eq(
	    proto_client_read(&s.c, "/tmp/big", 0, 0, sink, &xs, &nread), 0);
	cr_assert_eq(xs, 12 << 20);
	sup_finish(&s);
}

Test(worker, host_only_requests_and_host_ids_are_refused,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = sup_config(0);
	uint8_t buf[64];
	struct sup s;

	sup_spawn_ready(&s, &cfg, NULL);
	sup_lease(&s);
	sup_send_frame(&s, buf,
		       proto_build_empty(buf, sizeof(buf), PROTO_CLEAN, 5));
	cr_assert_eq(sup_recv_error(&s, 5), TENANT_E_FORBIDDEN);
	sup_send_frame(&s, buf,
		       proto_build_empty(buf, sizeof(buf), PROTO_SHUTDOWN, 6));
	cr_assert_eq(sup_recv_error(&s, 6), TENANT_E_FORBIDDEN);
	sup_send_frame(&s, buf,
		       proto_build_empty(buf, sizeof(buf), PROTO_PING,
					 TENANT_ID_HOST | 1));
	cr_assert_eq(sup_recv_error(&s, TENANT_ID_HOST | 1),
		     TENANT_E_FORBIDDEN);
	sup_send_frame(
	    &s, buf,
	    proto_build_data(buf, sizeof(buf), PROTO_STDIN, 0, 8, "x", 1));
	cr_assert_eq(sup_recv_error(&s, 8), PROTO_E_UNKNOWN_ID);

	/* The lease goes on. */
	cr_assert_eq(proto_client_ping(&s.c), 0);
	sup_finish(&s);
}

Test(worker, release_cleans_files_and_processes_for_the_next_lease,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = sup_config(0);
	struct ctl_msg m;
	struct output o;
	struct sup s;

	sup_spawn_ready(&s, &cfg, NULL);
	sup_lease(&s);
	sup_assert_sh(
	    &s, "echo secret > /tmp/left; sleep 1000 >/dev/null 2>&1 &", "");
	/* The background sleep may not have been started yet: wait. */
	sup_assert_sh(
	    &s,
	    "for i in $(seq 200); do ps -o args | grep -q '[s]leep 1000' && "
	    "{ echo running; exit; }; sleep 0.02; done",
	    "running\n");
	sup_release_recycled(&s, &m);

	sup_lease(&s);
	cr_assert_eq(proto_client_exists(&s.c, "/tmp/left"), 0);
	cr_assert_eq(sup_sh(&s, "ps -o comm | grep sleep", &o), 1, "left: %s",
		     o.out);
	sup_release_recycled(&s, &m);
	cr_assert_eq(sup_slot_of(&s).leases, 2);
	sup_finish(&s);
}

Test(worker, tenant_leaving_mid_command_recycles_the_vm,
     .timeout = WORKER_TEST_TIMEOUT)
{
	const char *argv[] = {"echo started; sleep 1000", NULL};
	struct proto_exec_req req = {.argv = argv, .flags = PROTO_EXEC_SHELL};
	struct pool_config cfg = sup_config(0);
	uint8_t buf[256];
	struct proto_frame f;
	struct ctl_msg m;
	struct output o;
	struct sup s;

	sup_spawn_ready(&s, &cfg, NULL);
	sup_lease(&s);
	sup_send_frame(&s, buf, proto_build_exec(buf, sizeof(buf), 3, &req));
	sup_recv_frame(&s, &f, PROTO_STDOUT, 3);
	sup_end_lease(&s);

	sup_expect_ctl(&s, CTL_RECYCLED, &m);
	cr_assert_eq(sup_slot_of(&s).state, SLOT_IDLE);
	sup_assert_invariants(&s);

	/* The next tenant may use the same ids: nothing old reaches it. */
	sup_lease(&s);
	cr_assert_eq(sup_sh(&s, "ps -o comm | grep sleep", &o), 1, "left: %s",
		     o.out);
	sup_finish(&s);
}

Test(worker, health_check_runs_every_nth_release,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = sup_config(2);
	struct ctl_msg m;
	struct pool_stats st;
	struct sup s;

	sup_spawn_ready(&s, &cfg, NULL);
	for (int i = 1; i <= 4; i++) {
		sup_lease(&s);
		sup_release_recycled(&s, &m);
		cr_assert_str_eq(m.text, i % 2 ? "" : "health checked",
				 "release %d", i);
	}

	/* A guest whose /bin/true is gone fails its next check, not before. */
	sup_lease(&s);
	sup_assert_sh(&s, "rm /bin/true && echo gone", "gone\n");
	sup_release_recycled(&s, &m);
	sup_lease(&s);
	sup_release(&s, &m);
	cr_assert_eq(m.type, CTL_EVICTED, "%s", m.text);
	cr_assert_eq(sup_wait_exit(&s), WORKER_EXIT_OK);
	cr_assert_eq(sup_slot_of(&s).state, SLOT_DEAD);
	cr_assert_eq(pool_stats(s.shm, &st), 0);
	cr_assert_eq(st.c.hc_failures, 1);
	cr_assert_eq(st.c.evicted_by[EVICT_UNHEALTHY], 1);
	sup_finish(&s);
}

Test(worker, guest_breaking_the_protocol_is_evicted,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = sup_config(0);
	uint8_t buf[64];
	struct ctl_msg m;
	struct sup s;

	sup_spawn(&s, &cfg, "tests/worker_junk.cpio", NULL);
	sup_expect_ctl(&s, CTL_READY, &m);
	sup_lease(&s);
	sup_send_frame(&s, buf,
		       proto_build_empty(buf, sizeof(buf), PROTO_PING, 4));
	cr_assert_eq(sup_recv_error(&s, 4), TENANT_E_GUEST);
	sup_end_lease(&s);

	sup_expect_ctl(&s, CTL_EVICTED, &m);
	cr_assert_eq(sup_wait_exit(&s), WORKER_EXIT_OK);
	cr_assert_eq(sup_slot_of(&s).state, SLOT_DEAD);
	sup_finish(&s);
}

Test(worker, guest_without_hello_fails_its_boot, .timeout = WORKER_TEST_TIMEOUT)
{
	char *extra[] = {"--boot-timeout", "500ms", NULL};
	struct pool_config cfg = sup_config(0);
	struct ctl_msg m;
	struct sup s;

	sup_spawn(&s, &cfg, "tests/worker_mute.cpio", extra);
	sup_expect_ctl(&s, CTL_BOOT_FAIL, &m);
	cr_assert_eq(sup_wait_exit(&s), WORKER_EXIT_TEMPFAIL);
	cr_assert_eq(sup_slot_of(&s).state, SLOT_DEAD);
	sup_finish(&s);
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
	struct pool_config cfg = sup_config(0);
	struct ctl_msg m = {.type = CTL_STOP};
	struct sup s;
	pid_t box;

	sup_spawn_ready(&s, &cfg, NULL);
	box = sandbox_pid(&s);
	cr_assert_eq(kill(box, 0), 0);
	cr_assert_eq(pool_evict(s.shm, s.slot, now_ns()), 0);
	m.slot = s.slot;
	cr_assert_eq(send(s.ctl, &m, sizeof(m), 0), (ssize_t)sizeof(m));
	cr_assert_eq(sup_wait_exit(&s), WORKER_EXIT_OK);
	cr_assert_eq(kill(box, 0), -1, "sandbox %d is still there", box);
	cr_assert_eq(errno, ESRCH);
	sup_finish(&s);
}

Test(worker, stop_during_a_lease_tells_the_tenant_its_vm_is_lost,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct ctl_msg m = {.type = CTL_STOP};
	struct pool_config cfg = sup_config(0);
	struct proto_frame f;
	struct sup s;

	sup_spawn_ready(&s, &cfg, NULL);
	sup_lease(&s);
	m.slot = s.slot;
	cr_assert_eq(send(s.ctl, &m, sizeof(m), 0), (ssize_t)sizeof(m));
	cr_assert_eq(sup_wait_exit(&s), WORKER_EXIT_OK);
	cr_assert_eq(sup_recv_error(&s, 0), TENANT_E_VM_LOST);
	cr_assert_eq(proto_client_recv(&s.c, &f), -EPIPE);
	sup_finish(&s);
}

Test(worker, guest_death_ends_the_lease_as_a_crash,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = sup_config(0);
	struct proto_frame f;
	struct pool_stats st;
	struct sup s;

	sup_spawn_ready(&s, &cfg, NULL);
	sup_lease(&s);
	cr_assert_eq(kill(sandbox_pid(&s), SIGKILL), 0);
	cr_assert_neq(sup_wait_exit(&s), WORKER_EXIT_OK);
	cr_assert_eq(proto_client_recv(&s.c, &f), 0);
	cr_assert_eq(f.type, PROTO_ERROR);
	cr_assert_eq(proto_client_recv(&s.c, &f), -EPIPE);

	/* The supervisor's view: a crash that lost a lease. */
	cr_assert_eq(sup_slot_of(&s).state, SLOT_LEASED);
	cr_assert_eq(pool_exit(s.shm, s.slot, now_ns()), 0);
	cr_assert_eq(pool_stats(s.shm, &st), 0);
	cr_assert_eq(st.c.crashes, 1);
	cr_assert_eq(st.c.leases_lost, 1);
	sup_finish(&s);
}

/* The guest dies while the worker is stopped and a lease is on its way:
 * whichever the worker sees first, the tenant hears why, not only that
 * the connection ended. */
Test(worker, lease_arriving_as_the_guest_dies_is_told_why,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = sup_config(0);
	struct proto_frame f;
	const char *msg;
	uint32_t code, slot;
	int sv[2];
	struct sup s;

	sup_spawn_ready(&s, &cfg, NULL);
	cr_assert_eq(kill(s.pid, SIGSTOP), 0);
	cr_assert_eq(kill(sandbox_pid(&s), SIGKILL), 0);
	cr_assert_eq(pool_acquire(s.shm, TENANT_UID, now_ns(), &slot),
		     POOL_HIT);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	sup_send_lease(&s, sv[1], TENANT_UID, sup_slot_of(&s).generation);
	close(sv[1]);
	cr_assert_eq(proto_client_init(&s.c, sv[0]), 0);
	s.leased = true;
	cr_assert_eq(kill(s.pid, SIGCONT), 0);

	do
		cr_assert_eq(proto_client_recv(&s.c, &f), 0,
			     "the connection ended without a reason");
	while (f.type == TENANT_LEASED);
	cr_assert_eq(f.type, PROTO_ERROR, "got %s", proto_type_name(f.type));
	cr_assert_eq(proto_parse_error(&f, &code, &msg), 0);
	cr_assert_eq(code, TENANT_E_VM_LOST);
	cr_assert(!strncmp(msg, "VM lost: the guest", 18), "message: %s", msg);
	cr_assert_neq(sup_wait_exit(&s), WORKER_EXIT_OK);
	sup_finish(&s);
}

Test(worker, lease_for_another_generation_is_refused,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = sup_config(0);
	struct proto_client c;
	struct proto_frame f;
	uint32_t slot;
	struct ctl_msg m;
	struct sup s;
	int sv[2];

	sup_spawn_ready(&s, &cfg, NULL);
	cr_assert_eq(pool_acquire(s.shm, TENANT_UID, now_ns(), &slot),
		     POOL_HIT);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	sup_send_lease(&s, sv[1], TENANT_UID, sup_slot_of(&s).generation + 1);
	close(sv[1]);
	cr_assert_eq(proto_client_init(&c, sv[0]), 0);
	cr_assert_eq(proto_client_recv(&c, &f), 0);
	cr_assert_eq(f.type, PROTO_ERROR);
	cr_assert_eq(proto_client_recv(&c, &f), -EPIPE);
	close(sv[0]);
	proto_client_free(&c);

	/* The slot is not left leased to nobody. */
	sup_expect_ctl(&s, CTL_RECYCLED, &m);
	cr_assert_eq(sup_slot_of(&s).state, SLOT_IDLE);
	sup_lease(&s);
	sup_finish(&s);
}

/* CTL_RETURN from the worker: the message and the fd it carries. */
static int recv_returned(struct sup *s, struct ctl_msg *m)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf.buf,
			    .msg_controllen = sizeof(cbuf.buf)};
	struct pollfd p = {.fd = s->ctl, .events = POLLIN};
	struct cmsghdr *c;
	int fd = -1;

	cr_assert_eq(poll(&p, 1, 5000), 1, "no message from the worker");
	cr_assert_eq(recvmsg(s->ctl, &mh, MSG_CMSG_CLOEXEC),
		     (ssize_t)sizeof(*m));
	cr_assert_eq(m->type, CTL_RETURN, "message %u, want CTL_RETURN",
		     m->type);
	c = CMSG_FIRSTHDR(&mh);
	cr_assert(c && c->cmsg_type == SCM_RIGHTS, "CTL_RETURN has no fd");
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	return fd;
}

Test(worker, release_keeping_the_connection_hands_it_back_released,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = sup_config(0);
	uint8_t buf[PROTO_HDR_SIZE + 1], got[PROTO_HDR_SIZE];
	struct proto_frame f;
	struct proto_msg msg;
	struct ctl_msg m;
	struct sup s;
	int back;

	sup_spawn_ready(&s, &cfg, NULL);
	sup_lease(&s);
	proto_msg_begin(&msg, buf, sizeof(buf), TENANT_RELEASE, 0, 99);
	proto_put_u8(&msg, TENANT_RELEASE_KEEP);
	sup_send_frame(&s, buf, proto_msg_end(&msg));
	sup_recv_frame(&s, &f, PROTO_OK, 99);
	cr_assert_eq(f.len, 1);
	cr_assert_eq(f.payload[0], 1, "OK says the connection stays open");

	/* Released before the hand-back: the tenant may lease again. */
	back = recv_returned(&s, &m);
	cr_assert_neq(sup_slot_of(&s).state, SLOT_LEASED);
	sup_expect_ctl(&s, CTL_RECYCLED, &m);

	/* The same connection, with nothing read from it by the worker. */
	sup_send_frame(&s, buf,
		       proto_build_empty(buf, sizeof(buf), TENANT_ACQUIRE, 5));
	cr_assert_eq(read(back, got, sizeof(got)), (ssize_t)sizeof(got));
	proto_get_header(got, &f);
	cr_assert_eq(f.type, TENANT_ACQUIRE);
	cr_assert_eq(f.id, 5);
	close(back);
	sup_end_lease(&s);
	sup_finish(&s);
}

Test(worker, release_with_unknown_flags_is_refused_and_the_lease_goes_on,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = sup_config(0);
	uint8_t buf[PROTO_HDR_SIZE + 1];
	struct proto_frame f;
	struct proto_msg msg;
	struct ctl_msg m;
	struct sup s;

	sup_spawn_ready(&s, &cfg, NULL);
	sup_lease(&s);
	proto_msg_begin(&msg, buf, sizeof(buf), TENANT_RELEASE, 0, 98);
	proto_put_u8(&msg, 0x80);
	sup_send_frame(&s, buf, proto_msg_end(&msg));
	sup_recv_frame(&s, &f, PROTO_ERROR, 98);
	cr_assert_eq(proto_client_ping(&s.c), 0, "still leased");
	sup_release_recycled(&s, &m);
	sup_finish(&s);
}

static int run_worker(char **args)
{
	char worker[PATH_MAX];
	char *argv[16] = {worker};
	int status, n = 1;
	pid_t pid;

	sup_build_path(worker, sizeof(worker), "bin/vmpool-worker");
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
	struct pool_config cfg = sup_config(0);
	struct ctl_msg m;
	struct sup s;

	sup_spawn(&s, &cfg, "/nonexistent/image.cpio", NULL);
	sup_expect_ctl(&s, CTL_BOOT_FAIL, &m);
	cr_assert(strstr(m.text, "image"), "%s", m.text);
	cr_assert_eq(sup_wait_exit(&s), WORKER_EXIT_PERMFAIL);
	sup_finish(&s);
}

Test(worker, kvm_backend_on_a_pvm_host_is_refused,
     .timeout = WORKER_TEST_TIMEOUT)
{
	char *extra[] = {"--backend", "kvm", "--kernel", "/nonexistent", NULL};
	struct pool_config cfg = sup_config(0);
	struct ctl_msg m;
	struct sup s;

	if (access("/sys/module/kvm_pvm", F_OK))
		cr_skip_test("this host's KVM is not PVM");
	sup_spawn(&s, &cfg, "guest/initramfs.cpio", extra);
	sup_expect_ctl(&s, CTL_BOOT_FAIL, &m);
	cr_assert(strstr(m.text, "hardware KVM"), "%s", m.text);
	cr_assert_eq(sup_wait_exit(&s), WORKER_EXIT_PERMFAIL);
	sup_finish(&s);
}

/* Watchdog intervals short enough for a test, long enough for a slow
 * sanitizer build not to miss a PONG. */
static char *watchdog_args[] = {"--idle-ping", "200ms", "--guest-timeout", "1s",
				NULL};

Test(worker, live_guest_answers_the_watchdog_idle_and_leased,
     .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = sup_config(0);
	struct ctl_msg m;
	struct sup s;

	sup_spawn_ready(&s, &cfg, watchdog_args);
	usleep(700 * 1000);
	cr_assert_eq(sup_slot_of(&s).state, SLOT_IDLE);

	/* Pings go on while the command runs; no PONG reaches the tenant. */
	sup_lease(&s);
	sup_assert_sh(&s, "sleep 1; echo done", "done\n");
	sup_release_recycled(&s, &m);
	sup_finish(&s);
}

Test(worker, guest_hung_while_idle_is_evicted, .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = sup_config(0);
	struct ctl_msg m;
	struct sup s;

	sup_spawn_ready(&s, &cfg, watchdog_args);
	cr_assert_eq(kill(sandbox_pid(&s), SIGSTOP), 0);

	sup_expect_ctl(&s, CTL_EVICTED, &m);
	cr_assert_eq(sup_wait_exit(&s), WORKER_EXIT_OK);
	cr_assert_eq(sup_slot_of(&s).state, SLOT_DEAD);
	sup_assert_invariants(&s);
	sup_finish(&s);
}

Test(worker, guest_hung_during_a_command_ends_the_lease_and_is_evicted,
     .timeout = WORKER_TEST_TIMEOUT)
{
	const char *argv[] = {"echo started; sleep 1000", NULL};
	struct proto_exec_req req = {.argv = argv, .flags = PROTO_EXEC_SHELL};
	struct pool_config cfg = sup_config(0);
	uint8_t buf[256];
	struct proto_frame f;
	struct ctl_msg m;
	struct sup s;

	sup_spawn_ready(&s, &cfg, watchdog_args);
	sup_lease(&s);
	sup_send_frame(&s, buf, proto_build_exec(buf, sizeof(buf), 3, &req));
	sup_recv_frame(&s, &f, PROTO_STDOUT, 3);
	cr_assert_eq(kill(sandbox_pid(&s), SIGSTOP), 0);

	cr_assert_eq(sup_recv_error(&s, 3), TENANT_E_GUEST);
	cr_assert_eq(proto_client_recv(&s.c, &f), -EPIPE);
	sup_expect_ctl(&s, CTL_EVICTED, &m);
	cr_assert_eq(sup_wait_exit(&s), WORKER_EXIT_OK);
	cr_assert_eq(sup_slot_of(&s).state, SLOT_DEAD);
	sup_assert_invariants(&s);
	sup_finish(&s);
}
