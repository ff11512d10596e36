/* Tests for the io_uring loop: polls, accepts, I/O, timer, cancel, stop. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "common/ioloop.h"

static struct ioloop loop;

static void setup(void)
{
	cr_assert_eq(ioloop_init(&loop, 16), 0);
}

static void teardown(void)
{
	ioloop_exit(&loop);
}

TestSuite(ioloop, .init = setup, .fini = teardown, .timeout = 30);

struct record {
	int calls;
	int last_res;
	int fd;
};

static void count(struct ioloop_op *op, int res, unsigned flags)
{
	struct record *r = op->opaque;
	uint64_t v;

	r->calls++;
	r->last_res = res;
	if (r->fd >= 0 && res > 0 && read(r->fd, &v, sizeof(v)) < 0)
		r->last_res = -errno;
}

static void poke(int fd)
{
	uint64_t one = 1;

	cr_assert_eq(write(fd, &one, sizeof(one)), sizeof(one));
}

Test(ioloop, poll_handler_runs_for_each_readiness)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	struct record r = {.fd = efd};
	struct ioloop_op op = {.done = count, .opaque = &r};
	int i;

	cr_assert_eq(ioloop_poll(&loop, &op, efd, POLLIN), 0);
	for (i = 0; i < 3; i++) {
		poke(efd);
		while (r.calls == i)
			cr_assert_geq(ioloop_run_once(&loop, true), 0);
	}
	cr_assert_eq(r.calls, 3);
	cr_assert(op.busy);
	close(efd);
}

Test(ioloop, cancel_ends_a_poll_watch)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	struct record r = {.fd = efd};
	struct ioloop_op op = {.done = count, .opaque = &r};

	cr_assert_eq(ioloop_poll(&loop, &op, efd, POLLIN), 0);
	cr_assert_geq(ioloop_run_once(&loop, false), 0);
	cr_assert_eq(ioloop_cancel(&loop, &op), 0);
	while (op.busy)
		cr_assert_geq(ioloop_run_once(&loop, true), 0);
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(r.last_res, -ECANCELED);

	poke(efd);
	cr_assert_eq(ioloop_run_once(&loop, false), 0);
	cr_assert_eq(r.calls, 1);
	close(efd);
}

Test(ioloop, read_and_writev_complete_with_byte_counts)
{
	struct record rr = {.fd = -1}, wr = {.fd = -1};
	struct ioloop_op rop = {.done = count, .opaque = &rr};
	struct ioloop_op wop = {.done = count, .opaque = &wr};
	struct iovec iov[2] = {{"hel", 3}, {"lo", 2}};
	char buf[16] = "";
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(ioloop_read(&loop, &rop, sv[1], buf, sizeof(buf)), 0);
	cr_assert_eq(ioloop_read(&loop, &rop, sv[1], buf, 1), -EBUSY);
	cr_assert_eq(ioloop_writev(&loop, &wop, sv[0], iov, 2), 0);
	while (rop.busy || wop.busy)
		cr_assert_geq(ioloop_run_once(&loop, true), 0);

	cr_assert_eq(wr.last_res, 5);
	cr_assert_eq(rr.last_res, 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	close(sv[0]);
	close(sv[1]);
}

Test(ioloop, sendmsg_to_closed_peer_gives_epipe_not_a_signal)
{
	struct record r = {.fd = -1};
	struct ioloop_op op = {.done = count, .opaque = &r};
	struct iovec iov = {"x", 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[0]);
	cr_assert_eq(ioloop_sendmsg(&loop, &op, sv[1], &msg), 0);
	while (op.busy)
		cr_assert_geq(ioloop_run_once(&loop, true), 0);
	cr_assert_eq(r.last_res, -EPIPE);
	close(sv[1]);
}

static void *stopper(void *arg)
{
	ioloop_stop(arg);
	return NULL;
}

Test(ioloop, stop_from_another_thread_ends_run)
{
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, stopper, &loop), 0);
	cr_assert_eq(ioloop_run(&loop), 0);
	pthread_join(t, NULL);
}

Test(ioloop, stop_before_run_still_ends_it_and_run_can_resume)
{
	ioloop_stop(&loop);
	cr_assert_eq(ioloop_run(&loop), 0);
	ioloop_stop(&loop);
	cr_assert_eq(ioloop_run(&loop), 0);
}

Test(ioloop, more_requests_than_ring_entries_all_complete)
{
	struct record r[40];
	struct ioloop_op ops[40];
	int efd[40];
	int i, total = 0;

	for (i = 0; i < 40; i++) {
		efd[i] = eventfd(1, EFD_NONBLOCK);
		r[i] = (struct record){.fd = efd[i]};
		ops[i] = (struct ioloop_op){.done = count, .opaque = &r[i]};
		cr_assert_eq(ioloop_poll(&loop, &ops[i], efd[i], POLLIN), 0);
	}
	while (total < 40) {
		cr_assert_geq(ioloop_run_once(&loop, true), 0);
		for (total = 0, i = 0; i < 40; i++)
			total += r[i].calls;
	}
	for (i = 0; i < 40; i++)
		close(efd[i]);
}

Test(ioloop, poll_once_runs_done_once)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	struct record r = {.fd = -1};
	struct ioloop_op op = {.done = count, .opaque = &r};

	cr_assert_eq(ioloop_poll_once(&loop, &op, efd, POLLIN), 0);
	cr_assert_eq(ioloop_poll_once(&loop, &op, efd, POLLIN), -EBUSY);
	poke(efd);
	while (op.busy)
		cr_assert_geq(ioloop_run_once(&loop, true), 0);

	poke(efd);
	cr_assert_eq(ioloop_run_once(&loop, false), 0);
	cr_assert_eq(r.calls, 1);
	cr_assert(r.last_res & POLLIN);
	close(efd);
}

Test(ioloop, recv_gets_the_bytes_then_zero_at_eof)
{
	struct record r = {.fd = -1};
	struct ioloop_op op = {.done = count, .opaque = &r};
	char buf[8] = "";
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(write(sv[0], "abc", 3), 3);
	cr_assert_eq(ioloop_recv(&loop, &op, sv[1], buf, sizeof(buf)), 0);
	while (op.busy)
		cr_assert_geq(ioloop_run_once(&loop, true), 0);
	cr_assert_eq(r.last_res, 3);
	cr_assert_eq(memcmp(buf, "abc", 3), 0);

	close(sv[0]);
	cr_assert_eq(ioloop_recv(&loop, &op, sv[1], buf, sizeof(buf)), 0);
	while (op.busy)
		cr_assert_geq(ioloop_run_once(&loop, true), 0);
	cr_assert_eq(r.last_res, 0);
	close(sv[1]);
}

/* A listening socket at a kernel-chosen abstract address. */
static int listener(struct sockaddr_un *addr, socklen_t *len)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	addr->sun_family = AF_UNIX;
	cr_assert_eq(bind(fd, (struct sockaddr *)addr, sizeof(sa_family_t)), 0);
	*len = sizeof(*addr);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)addr, len), 0);
	cr_assert_eq(listen(fd, 4), 0);
	return fd;
}

static int dial(const struct sockaddr_un *addr, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (const struct sockaddr *)addr, len), 0);
	return fd;
}

static void close_accepted(struct ioloop_op *op, int res, unsigned flags)
{
	count(op, res, flags);
	if (res >= 0)
		close(res);
}

Test(ioloop, accept_hands_over_each_connection_until_cancelled)
{
	struct record r = {.fd = -1};
	struct ioloop_op op = {.done = close_accepted, .opaque = &r};
	struct sockaddr_un addr = {0};
	socklen_t len;
	int lfd = listener(&addr, &len);
	int c1, c2;

	cr_assert_eq(ioloop_accept(&loop, &op, lfd), 0);
	c1 = dial(&addr, len);
	c2 = dial(&addr, len);
	while (r.calls < 2)
		cr_assert_geq(ioloop_run_once(&loop, true), 0);
	cr_assert_geq(r.last_res, 0);
	cr_assert(op.busy);

	cr_assert_eq(ioloop_cancel(&loop, &op), 0);
	while (op.busy)
		cr_assert_geq(ioloop_run_once(&loop, true), 0);
	cr_assert_eq(r.calls, 3);
	cr_assert_eq(r.last_res, -ECANCELED);
	close(c1);
	close(c2);
	close(lfd);
}

Test(ioloop, timer_moves_earlier_never_later_and_fires)
{
	uint64_t now = now_ns();
	uint64_t hour = 3600ull * 1000000000;

	cr_assert_eq(ioloop_timer(&loop, now + hour), 0);
	cr_assert_eq(ioloop_timer(&loop, now + 2 * hour), 0);
	cr_assert_eq(loop.timer_at, now + hour);
	cr_assert_geq(ioloop_run_once(&loop, false), 0);

	cr_assert_eq(ioloop_timer(&loop, now), 0);
	cr_assert_eq(loop.timer_at, now);
	while (loop.timer.busy)
		cr_assert_geq(ioloop_run_once(&loop, true), 0);
}

Test(ioloop, single_issuer_loop_serves_polls_and_stops_from_a_thread)
{
	struct ioloop own;
	int efd = eventfd(0, EFD_NONBLOCK);
	struct record r = {.fd = efd};
	struct ioloop_op op = {.done = count, .opaque = &r};
	pthread_t t;

	cr_assert_eq(ioloop_init_single_issuer(&own, 16), 0);
	cr_assert_eq(ioloop_poll(&own, &op, efd, POLLIN), 0);
	poke(efd);
	while (r.calls == 0)
		cr_assert_geq(ioloop_run_once(&own, true), 0);

	cr_assert_eq(pthread_create(&t, NULL, stopper, &own), 0);
	cr_assert_eq(ioloop_run(&own), 0);
	pthread_join(t, NULL);
	ioloop_exit(&own);
	close(efd);
}

Test(ioloop, loop_with_a_poll_window_still_sleeps_until_stopped)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	struct record r = {.fd = efd};
	struct ioloop_op op = {.done = count, .opaque = &r};
	pthread_t t;

	loop.poll_ns = 1000000;
	cr_assert_eq(ioloop_poll(&loop, &op, efd, POLLIN), 0);
	poke(efd);
	while (r.calls == 0)
		cr_assert_geq(ioloop_run_once(&loop, true), 0);
	cr_assert_neq(loop.poll_until, 0);

	cr_assert_eq(pthread_create(&t, NULL, stopper, &loop), 0);
	cr_assert_eq(ioloop_run(&loop), 0);
	pthread_join(t, NULL);
	close(efd);
}

struct woken {
	int calls;
	bool by_one;
};

static void note_woken(struct ioloop_op *op, int res, unsigned flags)
{
	struct woken *w = op->opaque;
	uint64_t v;

	(void)flags;
	w->calls++;
	w->by_one = ioloop_woken_by_one(&loop);
	if (res > 0)
		cr_assert_eq(read(op->fd, &v, sizeof(v)), sizeof(v));
}

static void *poke_later(void *arg)
{
	usleep(20 * 1000);
	poke(*(int *)arg);
	return NULL;
}

Test(ioloop, woken_by_one_only_when_a_lone_completion_ended_a_sleep)
{
	int a = eventfd(0, EFD_NONBLOCK), b = eventfd(0, EFD_NONBLOCK);
	struct woken wa = {0}, wb = {0};
	struct ioloop_op oa = {.done = note_woken, .opaque = &wa, .fd = a};
	struct ioloop_op ob = {.done = note_woken, .opaque = &wb, .fd = b};
	pthread_t t;

	cr_assert_eq(ioloop_poll(&loop, &oa, a, POLLIN), 0);
	cr_assert_eq(ioloop_poll(&loop, &ob, b, POLLIN), 0);
	poke(a);
	poke(b);
	while (wa.calls + wb.calls < 2)
		cr_assert_geq(ioloop_run_once(&loop, true), 0);
	cr_assert(!wa.by_one && !wb.by_one);

	cr_assert_eq(pthread_create(&t, NULL, poke_later, &a), 0);
	while (wa.calls < 2)
		cr_assert_geq(ioloop_run_once(&loop, true), 0);
	pthread_join(t, NULL);
	cr_assert(wa.by_one);
	close(a);
	close(b);
}
