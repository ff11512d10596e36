/* End to end: many tenants at once, tenants that die, tenants that lie. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "proto/tenant.h"
#include "shm/layout.h"
#include "tests/e2e_helpers.h"

#define TENANTS 32
#define ROUNDS	4

static struct daemon d;
static struct vmpool *pool;

static void teardown(void)
{
	vmpool_close(pool);
	pool = NULL;
	daemon_stop(&d);
}

TestSuite(e2e_tenants, .fini = teardown, .timeout = 180);

static void start(const char *const *args)
{
	signal(SIGPIPE, SIG_IGN);
	daemon_start(&d, args);
	pool = e2e_pool(&d);
}

struct tally {
	atomic_int leases;
	atomic_int hits;
	atomic_int wrong; /* saw another tenant's marker, or none */
	atomic_int failed;
	char why[256];
};

static struct tally T;
/* When tenants stop retrying a full pool (CLOCK_MONOTONIC ns). */
static uint64_t give_up_at;

static void note_failure(const char *what, const char *msg)
{
	if (atomic_fetch_add(&T.failed, 1) == 0)
		snprintf(T.why, sizeof(T.why), "%s: %s", what, msg);
}

/* A lease, retried (for a bounded time) while the pool is at its cap. */
static struct vmpool_lease *lease_retrying(struct vmpool *p)
{
	struct timespec nap = {.tv_nsec = 1000000};
	struct vmpool_lease *l = NULL;
	int r;

	for (;;) {
		r = vmpool_acquire(p, 0, &l);
		if (r == -EAGAIN && now_ns() > give_up_at)
			break;
		if (r != -EAGAIN)
			break;
		nanosleep(&nap, NULL);
	}
	if (r)
		note_failure("acquire", vmpool_error(p));
	return l;
}

/* Mark the VM as ours, then list the marks: only ours may be there. */
static void one_round(struct vmpool_lease *l, int tenant, int round)
{
	char mark[64], want[64];
	struct e2e_out out;
	int code;

	snprintf(mark, sizeof(mark), "/tmp/marks/t%d-r%d", tenant, round);
	snprintf(want, sizeof(want), "t%d-r%d\n", tenant, round);
	if (vmpool_write_buf(l, mark, 0, VMPOOL_WRITE_PARENTS, "x", 1)) {
		note_failure("write", vmpool_lease_error(l));
		return;
	}
	if (e2e_sh(l, "ls /tmp/marks", &out, &code) || code) {
		note_failure("exec", vmpool_lease_error(l));
		return;
	}
	if (strcmp(out.text, want))
		atomic_fetch_add(&T.wrong, 1);
}

static void *tenant_main(void *arg)
{
	int tenant = (int)(intptr_t)arg;
	struct vmpool *p;

	if (vmpool_connect(d.sock, &p)) {
		note_failure("connect", vmpool_error(p));
		vmpool_close(p);
		return NULL;
	}
	for (int round = 0; round < ROUNDS; round++) {
		struct vmpool_lease_info info;
		struct vmpool_lease *l = lease_retrying(p);

		if (!l)
			break;
		vmpool_lease_info(l, &info);
		atomic_fetch_add(&T.leases, 1);
		atomic_fetch_add(&T.hits, info.hit);
		one_round(l, tenant, round);
		if (vmpool_release(l))
			note_failure("release", "VM lost");
	}
	vmpool_close(p);
	return NULL;
}

Test(e2e_tenants, concurrent_tenants_never_share_a_lease)
{
	const char *args[] = {"--min-size",  "4",  "--max-size",	"8",
			      "--max-total", "12", "--acquire-timeout", "60s",
			      NULL};
	pthread_t th[TENANTS];

	start(args);
	memset(&T, 0, sizeof(T));
	give_up_at = now_ns() + E2E_WAIT_MS * 3000000ull;
	for (intptr_t i = 0; i < TENANTS; i++)
		cr_assert_eq(
		    pthread_create(&th[i], NULL, tenant_main, (void *)i), 0);
	for (int i = 0; i < TENANTS; i++)
		pthread_join(th[i], NULL);

	cr_assert_eq(T.failed, 0, "%d failures, first: %s", T.failed, T.why);
	cr_expect_eq(T.leases, TENANTS * ROUNDS);
	cr_expect_eq(T.wrong, 0, "a VM showed another tenant's marks");
	cr_expect_eq(e2e_counter(pool, "leases"), TENANTS * ROUNDS,
		     "leases %lld", (long long)e2e_counter(pool, "leases"));
	cr_expect_eq(e2e_counter(pool, "hit"), T.hits, "hit %lld, seen %d",
		     (long long)e2e_counter(pool, "hit"), (int)T.hits);
	cr_expect_geq(e2e_counter(pool, "miss"), TENANTS * ROUNDS - T.hits);
	cr_expect_eq(e2e_wait_counter(pool, "releases", TENANTS * ROUNDS),
		     TENANTS * ROUNDS, "releases %lld",
		     (long long)e2e_counter(pool, "releases"));
	cr_expect_eq(e2e_counter(pool, "in_use"), 0);
	cr_expect_eq(e2e_counter(pool, "crashes"), 0);
	assert_pool_sound(d.name);
}

/* In a child: lease, leave a file and a background process, start a
 * long command, tell the parent the slot, and wait to be killed. */
static void doomed_tenant(int tell)
{
	const char *argv[] = {"touch /tmp/secret; sleep 300 & echo go; wait",
			      NULL};
	struct vmpool_exec x = {.argv = argv,
				.flags = VMPOOL_EXEC_SHELL | VMPOOL_EXEC_TO_FDS,
				.stdout_fd = tell,
				.stderr_fd = -1};
	struct vmpool_lease_info info;
	struct vmpool_lease *l;
	struct vmpool_result res;
	struct vmpool *p;

	if (vmpool_connect(d.sock, &p) || vmpool_acquire(p, 0, &l))
		_exit(1);
	vmpool_lease_info(l, &info);
	if (write_full(tell, &info.slot, sizeof(info.slot)))
		_exit(1);
	vmpool_exec(l, &x, &res);
	_exit(1);
}

Test(e2e_tenants, a_tenant_killed_mid_exec_leaves_nothing_behind)
{
	const char *args[] = {"--min-size", "0", NULL};
	struct vmpool_lease_info info;
	struct vmpool_lease *l;
	struct e2e_out out;
	uint32_t slot;
	char go[3];
	int pfd[2], code;
	pid_t pid;

	start(args);
	cr_assert_eq(vmpool_warm(pool, 1, NULL), 0);
	cr_assert_geq(wait_for_state(d.name, SLOT_IDLE, 1, E2E_WAIT_MS), 1);
	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		doomed_tenant(pfd[1]);
	close(pfd[1]);
	cr_assert_eq(read_full(pfd[0], &slot, sizeof(slot)), 0);
	cr_assert_eq(read_full(pfd[0], go, 3), 0, "the command started");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(pfd[0]);

	cr_assert_eq(e2e_wait_counter(pool, "releases", 1), 1);
	cr_assert_geq(wait_for_state(d.name, SLOT_IDLE, 1, E2E_WAIT_MS), 1);
	l = e2e_lease(pool, &info);
	cr_expect_eq(info.slot, slot, "the same VM, recycled");
	cr_assert_eq(e2e_sh(l, "test -e /tmp/secret", &out, &code), 0);
	cr_expect_neq(code, 0, "the dead tenant's file is gone");
	cr_assert_eq(e2e_sh(l, "cat /proc/[0-9]*/comm", &out, &code), 0);
	cr_expect_null(strstr(out.text, "sleep"), "left running:\n%s",
		       out.text);
	cr_assert_eq(vmpool_release(l), 0);
	assert_pool_sound(d.name);
}

/* A raw connection to the daemon. */
static int raw_connect(struct proto_client *c)
{
	cr_assert_eq(tenant_connect(&d, c), 0);
	return c->fd;
}

/* The answer to id: ERROR's code, 0 for another frame, -errno at EOF. */
static int answer_to(struct proto_client *c, uint32_t id)
{
	struct proto_frame f;
	int r;

	do
		r = proto_client_recv(c, &f);
	while (r == 0 && f.id != id && f.type != PROTO_ERROR);
	if (r)
		return r;
	if (f.type != PROTO_ERROR)
		return 0;
	uint32_t code;
	const char *msg;

	cr_assert_eq(proto_parse_error(&f, &code, &msg), 0);
	cr_expect_gt(strlen(msg), 0, "an error says why");
	return code;
}

/* Only EOF follows: the daemon closed this connection. */
static bool closed_after(struct proto_client *c)
{
	struct proto_frame f;
	int r;

	while ((r = proto_client_recv(c, &f)) == 0)
		;
	return r == -EPIPE || r == -ECONNRESET;
}

/* After each abuse: the pool still leases and runs commands. */
static void pool_still_serves(void)
{
	struct vmpool_lease *l = e2e_lease(pool, NULL);
	struct e2e_out out;
	int code;

	cr_expect_eq(e2e_sh(l, "echo fine", &out, &code), 0);
	cr_expect_str_eq(out.text, "fine\n");
	cr_expect_eq(vmpool_release(l), 0);
	assert_pool_sound(d.name);
}

static void raw_send(struct proto_client *c, const void *p, size_t n)
{
	cr_assert_eq(write_full(c->fd, p, n), 0);
}

Test(e2e_tenants, garbage_and_oversized_frames_get_an_error_and_a_close)
{
	const char garbage[] = "GET / HTTP/1.1\r\nHost: vmpool\r\n\r\n";
	uint8_t hdr[PROTO_HDR_SIZE];
	struct proto_client c;

	start(NULL);
	raw_connect(&c);
	raw_send(&c, garbage, sizeof(garbage) - 1);
	cr_expect_eq(answer_to(&c, 0), PROTO_E_BAD_LENGTH);
	cr_expect(closed_after(&c));
	proto_client_free(&c);
	close(c.fd);

	raw_connect(&c);
	proto_put_header(hdr, PROTO_MAX_PAYLOAD + 1, TENANT_ACQUIRE, 0, 9);
	raw_send(&c, hdr, sizeof(hdr));
	cr_expect_eq(answer_to(&c, 9), PROTO_E_BAD_LENGTH);
	cr_expect(closed_after(&c));
	proto_client_free(&c);
	close(c.fd);
	pool_still_serves();
}

Test(e2e_tenants, a_truncated_frame_disturbs_nothing)
{
	uint8_t frame[PROTO_HDR_SIZE + 10] = {0};
	struct proto_client c;

	start(NULL);
	raw_connect(&c);
	proto_put_header(frame, 100, TENANT_ACQUIRE, 0, 1);
	raw_send(&c, frame, sizeof(frame));
	shutdown(c.fd, SHUT_WR);
	cr_expect(closed_after(&c));
	proto_client_free(&c);
	close(c.fd);
	pool_still_serves();
	cr_expect_eq(e2e_counter(pool, "leases"), 1);
}

/* Send a frame built into c->out; its id. */
static uint32_t send_built(struct proto_client *c, long n)
{
	struct proto_frame f;

	cr_assert_gt(n, 0);
	proto_get_header(c->out, &f);
	cr_assert_eq(proto_client_send(c, c->out, n), 0);
	return f.id;
}

Test(e2e_tenants, requests_out_of_order_are_refused)
{
	const char *argv[] = {"true", NULL};
	struct proto_exec_req req = {.argv = argv};
	struct proto_client c;
	uint32_t id;

	start(NULL);
	raw_connect(&c);
	id = send_built(&c, proto_build_exec(c.out, PROTO_MAX_FRAME,
					     proto_client_new_id(&c), &req));
	cr_expect_eq(answer_to(&c, id), TENANT_E_NOT_LEASED);
	proto_client_free(&c);
	close(c.fd);

	raw_connect(&c);
	id = send_built(&c, proto_build_empty(c.out, PROTO_MAX_FRAME,
					      TENANT_RELEASE,
					      proto_client_new_id(&c)));
	cr_expect_eq(answer_to(&c, id), TENANT_E_NOT_LEASED);
	proto_client_free(&c);
	close(c.fd);
	pool_still_serves();
}

Test(e2e_tenants, claiming_a_slot_in_acquire_is_refused)
{
	struct proto_client c;
	struct proto_msg m;
	uint32_t id;

	start(NULL);
	raw_connect(&c);
	id = proto_client_new_id(&c);
	proto_msg_begin(&m, c.out, PROTO_MAX_FRAME, TENANT_ACQUIRE, 0, id);
	proto_put_u64(&m, 0);
	proto_put_u32(&m, 0); /* "slot 0, please" */
	send_built(&c, proto_msg_end(&m));
	cr_expect_eq(answer_to(&c, id), PROTO_E_BAD_PAYLOAD);
	proto_client_free(&c);
	close(c.fd);
	pool_still_serves();
	cr_expect_eq(e2e_counter(pool, "leases"), 1);
}

/* Tenant B tries what only A's lease or the host may do. */
static void meddle(struct proto_client *b)
{
	uint32_t id;

	for (uint32_t other = 1; other <= 4; other++) {
		id = send_built(b, proto_build_kill(b->out, PROTO_MAX_FRAME,
						    other, SIGKILL));
		cr_expect_gt(answer_to(b, id), 0, "KILL of id %u", other);
	}
	id = send_built(b, proto_build_empty(b->out, PROTO_MAX_FRAME,
					     PROTO_PING, TENANT_ID_HOST | 1));
	cr_expect_gt(answer_to(b, id), 0, "a host id is refused");
	id = send_built(b,
			proto_build_empty(b->out, PROTO_MAX_FRAME, PROTO_CLEAN,
					  proto_client_new_id(b)));
	cr_expect_eq(answer_to(b, id), TENANT_E_FORBIDDEN);
	id = send_built(b, proto_build_hello(b->out, PROTO_MAX_FRAME,
					     proto_client_new_id(b), 0, "/"));
	cr_expect_eq(answer_to(b, id), TENANT_E_FORBIDDEN);
	cr_expect_eq(proto_client_exists(b, "/tmp/only-a"), 0,
		     "B's VM is not A's");
}

Test(e2e_tenants, a_tenant_cannot_reach_another_tenants_lease)
{
	const char *args[] = {"--min-size", "2", NULL};
	struct vmpool_lease *a;
	struct proto_client b;
	struct e2e_out out;
	bool hit;
	int code;

	start(args);
	a = e2e_lease(pool, NULL);
	cr_assert_eq(vmpool_write_buf(a, "/tmp/only-a", 0, 0, "a", 1), 0);

	raw_connect(&b);
	cr_assert_eq(tenant_acquire(&b, 0, &hit), 0);
	meddle(&b);
	cr_expect_eq(tenant_release(&b), 0);
	proto_client_free(&b);
	close(b.fd);

	cr_expect_eq(vmpool_exists(a, "/tmp/only-a"), 1, "%s",
		     vmpool_lease_error(a));
	cr_expect_eq(e2e_sh(a, "echo still mine", &out, &code), 0);
	cr_expect_str_eq(out.text, "still mine\n");
	cr_expect_eq(vmpool_release(a), 0);
	assert_pool_sound(d.name);
}
