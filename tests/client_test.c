/* Tests for libvmpool against a real agent in an ns sandbox. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/vmpool.h"
#include "common/util.h"
#include "proto/client.h"
#include "proto/tenant.h"
#include "worker/ns.h"

/*
 * The pool side is played by a relay thread standing in for vmpoold and
 * a worker: it answers ACQUIRE, STATS, WARM and RELEASE itself and
 * passes every other frame to the agent, whose replies flow back raw.
 */
enum relay_mode {
	RELAY_NORMAL,
	RELAY_DROP_ON_EXEC, /* the worker dies when a command starts */
	RELAY_NO_CAPACITY,  /* ACQUIRE is refused */
	RELAY_BAD_STATS,    /* STATS_REPLY announces more than it holds */
	RELAY_GUEST_BROKE,  /* ERROR TENANT_E_GUEST then EOF on EXEC */
	RELAY_GUEST_GONE,   /* ERROR of id 0 (the whole lease) on EXEC */
};

struct relay {
	int tenant; /* our end of the library's connection */
	int guest;  /* the agent's channel */
	enum relay_mode mode;
	pthread_t thread;
	struct ns_sandbox sb;
};

static struct relay R;

static void send_frame(int fd, struct proto_msg *m)
{
	long n = proto_msg_end(m);

	if (n > 0)
		write_full(fd, m->buf, n);
}

static void answer_leased(int fd, uint32_t id)
{
	uint8_t buf[128];
	struct proto_msg m;

	proto_msg_begin(&m, buf, sizeof(buf), TENANT_LEASED, 0, id);
	proto_put_u32(&m, 3);
	proto_put_u32(&m, 7);
	proto_put_u8(&m, 1);
	proto_put_u64(&m, 1234);
	proto_put_str(&m, "ns");
	send_frame(fd, &m);
}

static void answer_error(int fd, uint32_t id, uint32_t code, const char *msg)
{
	uint8_t buf[256];
	long n = proto_build_error(buf, sizeof(buf), id, code, msg);

	if (n > 0)
		write_full(fd, buf, n);
}

static void answer_stats(int fd, uint32_t id, bool bad)
{
	uint8_t buf[256];
	struct proto_msg m;

	proto_msg_begin(&m, buf, sizeof(buf), TENANT_STATS_REPLY, 0, id);
	proto_put_u32(&m, bad ? 5 : 2);
	proto_put_str(&m, "hit");
	proto_put_u64(&m, 41);
	proto_put_str(&m, "miss");
	proto_put_u64(&m, 2);
	send_frame(fd, &m);
}

static void answer_ok_u32(int fd, uint32_t id, uint32_t v, bool with)
{
	uint8_t buf[64];
	struct proto_msg m;

	proto_msg_begin(&m, buf, sizeof(buf), PROTO_OK, 0, id);
	if (with)
		proto_put_u32(&m, v);
	send_frame(fd, &m);
}

/* One tenant frame; false when the relay should stop. */
static bool on_tenant_frame(struct relay *r, const struct proto_frame *f)
{
	uint8_t hdr[PROTO_HDR_SIZE];

	switch (f->type) {
	case TENANT_ACQUIRE:
		if (r->mode == RELAY_NO_CAPACITY) {
			answer_error(r->tenant, f->id, TENANT_E_NO_CAPACITY,
				     "no VM within 5 ms");
			return true;
		}
		answer_leased(r->tenant, f->id);
		return true;
	case TENANT_STATS:
		answer_stats(r->tenant, f->id, r->mode == RELAY_BAD_STATS);
		return true;
	case TENANT_WARM:
		answer_ok_u32(r->tenant, f->id, 2, true);
		return true;
	case TENANT_RELEASE:
		answer_ok_u32(r->tenant, f->id, 0, false);
		return false;
	case PROTO_EXEC:
		if (r->mode == RELAY_DROP_ON_EXEC)
			return false;
		if (r->mode == RELAY_GUEST_BROKE) {
			answer_error(r->tenant, f->id, TENANT_E_GUEST,
				     "the guest sent a malformed frame");
			return false;
		}
		if (r->mode == RELAY_GUEST_GONE) {
			answer_error(r->tenant, 0, TENANT_E_VM_LOST,
				     "VM lost: the guest has ended");
			return false;
		}
	}
	proto_put_header(hdr, f->len, f->type, f->flags, f->id);
	write_full(r->guest, hdr, sizeof(hdr));
	write_full(r->guest, f->payload, f->len);
	return true;
}

static bool from_tenant(struct relay *r, struct proto_reader *rd)
{
	struct proto_frame f;
	size_t room;
	uint8_t *dst = proto_reader_space(rd, &room);
	ssize_t n = read(r->tenant, dst, room);

	if (n <= 0)
		return false;
	proto_reader_commit(rd, n);
	while (proto_reader_next(rd, &f) == 1)
		if (!on_tenant_frame(r, &f))
			return false;
	return true;
}

static bool from_guest(struct relay *r)
{
	uint8_t buf[65536];
	ssize_t n = read(r->guest, buf, sizeof(buf));

	return n > 0 && write_full(r->tenant, buf, n) == 0;
}

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	struct proto_reader rd;
	bool go = proto_reader_init(&rd) == 0;

	while (go) {
		struct pollfd p[2] = {{.fd = r->tenant, .events = POLLIN},
				      {.fd = r->guest, .events = POLLIN}};

		if (poll(p, 2, -1) < 0)
			continue;
		if (p[0].revents)
			go = from_tenant(r, &rd);
		if (go && p[1].revents)
			go = from_guest(r);
	}
	proto_reader_free(&rd);
	close(r->tenant);
	return NULL;
}

static void image_path(char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	snprintf(out, cap, "%s/../guest/initramfs.cpio", dirname(exe));
	if (access(out, R_OK))
		cr_skip_test("%s is not built", out);
}

/* An agent in a sandbox with its HELLO read: its channel. */
static int start_agent(struct relay *r)
{
	struct ns_opts opts = {.log_fd = -1};
	struct proto_client c;
	char image[PATH_MAX];
	int err;

	image_path(image, sizeof(image));
	opts.image = image;
	err = ns_sandbox_start(&opts, &r->sb);
	if (err && r->sb.why && !strcmp(r->sb.why, "clone3"))
		cr_skip_test("the host refuses namespaces: %s", strerror(-err));
	cr_assert_eq(err, 0, "ns start: %s: %s", r->sb.why, strerror(-err));

	cr_assert_eq(proto_client_init(&c, r->sb.chan_fd), 0);
	cr_assert_eq(proto_client_hello(&c, NULL), 0);
	proto_client_free(&c);
	fcntl(r->sb.chan_fd, F_SETFL, 0);
	return r->sb.chan_fd;
}

/* A pool connected to a relay in `mode`. */
static struct vmpool *pool_with(enum relay_mode mode)
{
	struct vmpool *p;
	int sv[2];

	signal(SIGPIPE, SIG_IGN);
	memset(&R, 0, sizeof(R));
	R.mode = mode;
	R.guest = start_agent(&R);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	R.tenant = sv[0];
	cr_assert_eq(pthread_create(&R.thread, NULL, relay_main, &R), 0);
	cr_assert_eq(vmpool_connect_fd(sv[1], &p), 0, "%s", vmpool_error(p));
	return p;
}

static struct vmpool_lease *lease_with(enum relay_mode mode, struct vmpool **pp)
{
	struct vmpool_lease *l;
	struct vmpool *p = pool_with(mode);
	int r = vmpool_acquire(p, 0, &l);

	cr_assert_eq(r, 0, "acquire: %s", vmpool_error(p));
	*pp = p;
	return l;
}

static void finish(struct vmpool *p)
{
	vmpool_close(p);
	pthread_join(R.thread, NULL);
	ns_sandbox_stop(&R.sb);
}

struct captured {
	char out[65536];
	size_t out_len;
	char err[4096];
	size_t err_len;
	int calls;
};

static void capture(void *arg, int stream, const void *data, size_t len)
{
	struct captured *c = arg;
	char *dst = stream == 1 ? c->out : c->err;
	size_t *at = stream == 1 ? &c->out_len : &c->err_len;
	size_t cap = stream == 1 ? sizeof(c->out) : sizeof(c->err);

	len = MIN(len, cap - 1 - *at);
	memcpy(dst + *at, data, len);
	*at += len;
	dst[*at] = '\0';
	c->calls++;
}

static int sh(struct vmpool_lease *l, const char *line, struct captured *c,
	      struct vmpool_result *res)
{
	const char *argv[] = {line, NULL};
	struct vmpool_exec x = {.argv = argv,
				.flags = VMPOOL_EXEC_SHELL,
				.output = capture,
				.output_arg = c};

	return vmpool_exec(l, &x, res);
}

Test(client, acquire_reports_the_lease)
{
	struct vmpool_lease_info info;
	struct vmpool *p;
	struct vmpool_lease *l = lease_with(RELAY_NORMAL, &p);

	vmpool_lease_info(l, &info);
	cr_expect_eq(info.slot, 3);
	cr_expect_eq(info.generation, 7);
	cr_expect_eq(info.hit, 1);
	cr_expect_eq(info.wait_ns, 1234);
	cr_expect_str_eq(info.backend, "ns");
	cr_expect_eq(vmpool_ping(l), 0);
	cr_expect_eq(vmpool_release(l), 0);
	finish(p);
}

Test(client, exec_streams_output_and_reports_the_exit_code)
{
	struct captured c = {0};
	struct vmpool_result res;
	struct vmpool *p;
	struct vmpool_lease *l = lease_with(RELAY_NORMAL, &p);

	cr_assert_eq(sh(l, "echo out; echo err >&2; exit 3", &c, &res), 0, "%s",
		     vmpool_lease_error(l));
	cr_expect_str_eq(c.out, "out\n");
	cr_expect_str_eq(c.err, "err\n");
	cr_expect_eq(res.kind, VMPOOL_EXITED);
	cr_expect_eq(res.status, 3);
	cr_expect_eq(vmpool_result_code(&res), 3);
	vmpool_release(l);
	finish(p);
}

Test(client, exec_reports_signals_and_timeouts_as_the_shell_does)
{
	struct captured c = {0};
	struct vmpool_result res;
	const char *argv[] = {"/bin/sleep", "5", NULL};
	struct vmpool_exec x = {.argv = argv, .timeout_ns = 200000000};
	struct vmpool *p;
	struct vmpool_lease *l = lease_with(RELAY_NORMAL, &p);

	cr_assert_eq(sh(l, "kill -9 $$", &c, &res), 0);
	cr_expect_eq(res.kind, VMPOOL_SIGNALED);
	cr_expect_eq(vmpool_result_code(&res), 137);

	cr_assert_eq(vmpool_exec(l, &x, &res), 0, "%s", vmpool_lease_error(l));
	cr_expect_eq(res.kind, VMPOOL_TIMED_OUT);
	cr_expect_eq(vmpool_result_code(&res), 124);
	vmpool_release(l);
	finish(p);
}

Test(client, exec_passes_env_cwd_and_stdin)
{
	struct captured c = {0};
	struct vmpool_result res;
	const char *argv[] = {"echo $GREETING $(pwd); cat", NULL};
	const char *env[] = {"GREETING=hello", NULL};
	struct vmpool_exec x = {.argv = argv,
				.env = env,
				.cwd = "/tmp",
				.flags = VMPOOL_EXEC_SHELL,
				.stdin_data = "from stdin",
				.stdin_len = 10,
				.output = capture,
				.output_arg = &c};
	struct vmpool *p;
	struct vmpool_lease *l = lease_with(RELAY_NORMAL, &p);

	cr_assert_eq(vmpool_exec(l, &x, &res), 0, "%s", vmpool_lease_error(l));
	cr_expect_str_eq(c.out, "hello /tmp\nfrom stdin");
	cr_expect_eq(res.status, 0);
	vmpool_release(l);
	finish(p);
}

Test(client, exec_writes_output_to_fds)
{
	const char *argv[] = {"echo one; echo two >&2", NULL};
	struct vmpool_exec x = {.argv = argv,
				.flags = VMPOOL_EXEC_SHELL | VMPOOL_EXEC_TO_FDS,
				.stderr_fd = -1};
	struct vmpool_result res;
	char buf[64] = {0};
	int pfd[2];
	struct vmpool *p;
	struct vmpool_lease *l = lease_with(RELAY_NORMAL, &p);

	cr_assert_eq(pipe(pfd), 0);
	x.stdout_fd = pfd[1];
	cr_assert_eq(vmpool_exec(l, &x, &res), 0, "%s", vmpool_lease_error(l));
	close(pfd[1]);
	cr_expect_gt(read(pfd[0], buf, sizeof(buf) - 1), 0);
	cr_expect_str_eq(buf, "one\n");
	close(pfd[0]);
	vmpool_release(l);
	finish(p);
}

Test(client, exec_refuses_an_empty_argv)
{
	const char *argv[] = {NULL};
	struct vmpool_exec x = {.argv = argv};
	struct vmpool_result res;
	struct vmpool *p;
	struct vmpool_lease *l = lease_with(RELAY_NORMAL, &p);

	cr_expect_eq(vmpool_exec(l, &x, &res), -EINVAL);
	cr_expect_eq(vmpool_ping(l), 0);
	vmpool_release(l);
	finish(p);
}

Test(client, files_of_any_size_round_trip_in_chunks)
{
	size_t len = 3 * 1024 * 1024 + 12345;
	uint8_t *data = malloc(len);
	void *back = NULL;
	size_t got = 0;
	struct vmpool *p;
	struct vmpool_lease *l = lease_with(RELAY_NORMAL, &p);

	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 31 + (i >> 13));
	cr_assert_eq(vmpool_write_buf(l, "/tmp/big/blob", 0600,
				      VMPOOL_WRITE_PARENTS, data, len),
		     0, "%s", vmpool_lease_error(l));
	cr_assert_eq(vmpool_read_buf(l, "/tmp/big/blob", &back, &got), 0, "%s",
		     vmpool_lease_error(l));
	cr_expect_eq(got, len);
	cr_expect(!memcmp(back, data, len));
	vmpool_free(back);
	free(data);
	vmpool_release(l);
	finish(p);
}

Test(client, files_move_between_fds_and_the_guest)
{
	char path[] = "/tmp/vmpool-client-XXXXXX", buf[32] = {0};
	int fd = mkstemp(path);
	uint64_t n = 0;
	struct vmpool *p;
	struct vmpool_lease *l = lease_with(RELAY_NORMAL, &p);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write_full(fd, "through an fd", 13), 0);
	lseek(fd, 0, SEEK_SET);
	cr_assert_eq(vmpool_write_fd(l, "/tmp/f", 0, 0, fd, &n), 0, "%s",
		     vmpool_lease_error(l));
	cr_expect_eq(n, 13);

	cr_assert_eq(ftruncate(fd, 0), 0);
	lseek(fd, 0, SEEK_SET);
	cr_assert_eq(vmpool_read_fd(l, "/tmp/f", fd, &n), 0);
	cr_expect_eq(pread(fd, buf, sizeof(buf) - 1, 0), 13);
	cr_expect_str_eq(buf, "through an fd");
	close(fd);
	unlink(path);
	vmpool_release(l);
	finish(p);
}

static void count_entry(void *arg, const char *name,
			const struct vmpool_stat *st)
{
	if (!strcmp(name, "d2") && st->kind == VMPOOL_KIND_DIR)
		++*(int *)arg;
}

Test(client, directory_operations_work_and_errors_say_why)
{
	struct vmpool_stat st;
	int seen = 0;
	struct vmpool *p;
	struct vmpool_lease *l = lease_with(RELAY_NORMAL, &p);

	cr_assert_eq(vmpool_mkdir(l, "/tmp/a/b", 0, VMPOOL_MKDIR_PARENTS), 0,
		     "%s", vmpool_lease_error(l));
	cr_expect_eq(vmpool_exists(l, "/tmp/a/b"), 1);
	cr_assert_eq(vmpool_rename(l, "/tmp/a/b", "/tmp/a/d2"), 0);
	cr_expect_eq(vmpool_exists(l, "/tmp/a/b"), 0);
	cr_assert_eq(vmpool_list(l, "/tmp/a", count_entry, &seen), 0);
	cr_expect_eq(seen, 1);
	cr_assert_eq(vmpool_stat(l, "/tmp/a/d2", &st), 0);
	cr_expect_eq(st.kind, VMPOOL_KIND_DIR);
	cr_assert_eq(vmpool_remove(l, "/tmp/a", VMPOOL_REMOVE_RECURSIVE), 0);

	cr_expect_eq(vmpool_stat(l, "/tmp/a", &st), -ENOENT);
	cr_expect_neq(strstr(vmpool_lease_error(l), "stat: "), NULL, "%s",
		      vmpool_lease_error(l));
	cr_expect_eq(vmpool_ping(l), 0, "an agent error keeps the lease");
	vmpool_release(l);
	finish(p);
}

Test(client, eof_mid_lease_is_vm_lost)
{
	struct captured c = {0};
	struct vmpool_result res;
	struct vmpool *p;
	struct vmpool_lease *l = lease_with(RELAY_DROP_ON_EXEC, &p);

	cr_expect_eq(sh(l, "sleep 1", &c, &res), -ECONNRESET);
	cr_expect_eq(vmpool_lease_error_code(l), VMPOOL_E_VM_LOST);
	cr_expect_neq(strstr(vmpool_lease_error(l), "VM lost"), NULL, "%s",
		      vmpool_lease_error(l));
	cr_expect_eq(vmpool_ping(l), -ECONNRESET, "a lost VM stays lost");
	cr_expect_eq(vmpool_release(l), -ECONNRESET);
	finish(p);
}

Test(client, a_guest_breaking_the_protocol_ends_the_lease)
{
	struct captured c = {0};
	struct vmpool_result res;
	struct vmpool *p;
	struct vmpool_lease *l = lease_with(RELAY_GUEST_BROKE, &p);

	cr_expect_eq(sh(l, "true", &c, &res), -EPROTO);
	cr_expect_eq(vmpool_lease_error_code(l), VMPOOL_E_GUEST);
	cr_expect_neq(strstr(vmpool_lease_error(l), "malformed"), NULL);
	cr_expect_eq(vmpool_ping(l), -ECONNRESET);
	vmpool_release(l);
	finish(p);
}

/* The worker's word on the whole lease (id 0) ends the call waiting. */
Test(client, an_error_for_the_whole_lease_ends_the_call_with_its_reason)
{
	struct captured c = {0};
	struct vmpool_result res;
	struct vmpool *p;
	struct vmpool_lease *l = lease_with(RELAY_GUEST_GONE, &p);

	cr_expect_eq(sh(l, "true", &c, &res), -ECONNRESET);
	cr_expect_eq(vmpool_lease_error_code(l), VMPOOL_E_VM_LOST);
	cr_expect_str_eq(vmpool_lease_error(l),
			 "exec: VM lost: the guest has ended");
	cr_expect_eq(vmpool_ping(l), -ECONNRESET);
	vmpool_release(l);
	finish(p);
}

Test(client, acquire_refusal_carries_code_and_message)
{
	struct vmpool_lease *l = (void *)1;
	struct vmpool *p = pool_with(RELAY_NO_CAPACITY);

	cr_expect_eq(vmpool_acquire(p, 5000000, &l), -EAGAIN);
	cr_expect_null(l);
	cr_expect_eq(vmpool_error_code(p), VMPOOL_E_NO_CAPACITY);
	cr_expect_str_eq(vmpool_error(p), "acquire: no VM within 5 ms");
	finish(p);
}

Test(client, stats_and_warm_are_answered)
{
	struct vmpool_counter cs[4];
	uint32_t started = 0;
	struct vmpool_lease *l;
	struct vmpool *p = pool_with(RELAY_NORMAL);

	cr_assert_eq(vmpool_stats(p, cs, 1), 2, "%s", vmpool_error(p));
	cr_expect_str_eq(cs[0].name, "hit");
	cr_expect_eq(cs[0].value, 41);
	cr_assert_eq(vmpool_stats(p, cs, 4), 2);
	cr_expect_str_eq(cs[1].name, "miss");
	cr_assert_eq(vmpool_warm(p, 4, &started), 0, "%s", vmpool_error(p));
	cr_expect_eq(started, 2);

	cr_assert_eq(vmpool_acquire(p, 0, &l), 0);
	cr_expect_eq(vmpool_stats(p, cs, 4), -ENOTCONN,
		     "the lease took the only connection");
	vmpool_release(l);
	finish(p);
}

Test(client, a_malformed_stats_reply_is_refused)
{
	struct vmpool_counter cs[4];
	struct vmpool *p = pool_with(RELAY_BAD_STATS);

	cr_expect_eq(vmpool_stats(p, cs, 4), -EPROTO);
	cr_expect_neq(strstr(vmpool_error(p), "malformed"), NULL);
	finish(p);
}

Test(client, connecting_nowhere_names_the_socket)
{
	struct vmpool *p;
	int r = vmpool_connect("/nonexistent/vmpool.sock", &p);

	cr_expect_eq(r, -ENOENT);
	cr_expect_neq(strstr(vmpool_error(p), "/nonexistent/vmpool.sock"), NULL,
		      "%s", vmpool_error(p));
	vmpool_close(p);
}

Test(client, default_socket_follows_the_daemon)
{
	char path[256];

	cr_assert_eq(vmpool_default_socket(path, sizeof(path)), 0);
	if (geteuid() == 0)
		cr_expect_str_eq(path, "/run/vmpool/default.sock");
	cr_expect_eq(vmpool_default_socket(path, 4), -ENAMETOOLONG);
}
