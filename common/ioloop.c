/* One io_uring event loop per thread: polls, accepts, I/O, a timer, stop. */
#include "common/ioloop.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/spin.h"
#include "common/util.h"

/* An SQE for a new request; when the ring is full the prepared ones go to
 * the kernel first to make room. */
static struct io_uring_sqe *get_sqe(struct ioloop *loop)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);

	if (sqe)
		return sqe;

	if (io_uring_submit(&loop->ring) < 0)
		return NULL;
	return io_uring_get_sqe(&loop->ring);
}

static int start(struct ioloop *loop, struct ioloop_op *op,
		 struct io_uring_sqe *sqe)
{
	io_uring_sqe_set_data(sqe, op);
	op->busy = true;
	return 0;
}

/* An SQE for a request on op that the loop never arms again by itself,
 * or NULL when op is still in flight or the ring has no room. */
static struct io_uring_sqe *plain_sqe(struct ioloop *loop, struct ioloop_op *op)
{
	struct io_uring_sqe *sqe;

	if (op->busy)
		return NULL;
	sqe = get_sqe(loop);
	if (sqe)
		op->rearm = false;
	return sqe;
}

static void on_stop(struct ioloop_op *op, int res, unsigned flags)
{
	struct ioloop *loop = op->opaque;
	uint64_t count;

	if (read(loop->stop_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return;
	loop->stopping = true;
}

static void on_timer(struct ioloop_op *op, int res, unsigned flags)
{
}

static int watch_stop(struct ioloop *loop)
{
	int ret;

	loop->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->stop_fd < 0)
		return -errno;

	loop->stop_op.done = on_stop;
	loop->stop_op.opaque = loop;
	ret = ioloop_poll(loop, &loop->stop_op, loop->stop_fd, POLLIN);
	if (ret < 0)
		close(loop->stop_fd);
	return ret;
}

static int setup(struct ioloop *loop, unsigned entries, unsigned flags)
{
	int ret;

	memset(loop, 0, sizeof(*loop));
	spin_budget_init(&loop->spin);
	loop->timer.done = on_timer;
	loop->timer.opaque = loop;

	ret = io_uring_queue_init(entries, &loop->ring, flags);
	if (ret == -EINVAL && flags)
		ret = io_uring_queue_init(entries, &loop->ring, 0);
	if (ret < 0)
		return ret;

	ret = watch_stop(loop);
	if (ret < 0)
		io_uring_queue_exit(&loop->ring);
	return ret;
}

int ioloop_init(struct ioloop *loop, unsigned entries)
{
	return setup(loop, entries, 0);
}

int ioloop_init_single_issuer(struct ioloop *loop, unsigned entries)
{
	return setup(loop, entries,
		     IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
}

void ioloop_exit(struct ioloop *loop)
{
	io_uring_queue_exit(&loop->ring);
	close(loop->stop_fd);
}

static int arm_poll(struct ioloop *loop, struct ioloop_op *op)
{
	struct io_uring_sqe *sqe = get_sqe(loop);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_multishot(sqe, op->fd, op->events);
	return start(loop, op, sqe);
}

int ioloop_poll(struct ioloop *loop, struct ioloop_op *op, int fd,
		unsigned events)
{
	if (op->busy)
		return -EBUSY;
	op->fd = fd;
	op->events = events;
	op->rearm = true;
	return arm_poll(loop, op);
}

int ioloop_poll_once(struct ioloop *loop, struct ioloop_op *op, int fd,
		     unsigned events)
{
	struct io_uring_sqe *sqe = plain_sqe(loop, op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, fd, events);
	return start(loop, op, sqe);
}

int ioloop_accept(struct ioloop *loop, struct ioloop_op *op, int fd)
{
	struct io_uring_sqe *sqe = plain_sqe(loop, op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
	return start(loop, op, sqe);
}

int ioloop_read(struct ioloop *loop, struct ioloop_op *op, int fd, void *buf,
		size_t len)
{
	struct io_uring_sqe *sqe = plain_sqe(loop, op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, fd, buf, len > UINT32_MAX ? UINT32_MAX : len,
			   -1);
	return start(loop, op, sqe);
}

int ioloop_readv(struct ioloop *loop, struct ioloop_op *op, int fd,
		 const struct iovec *iov, unsigned niov)
{
	struct io_uring_sqe *sqe = plain_sqe(loop, op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_readv(sqe, fd, iov, niov, -1);
	return start(loop, op, sqe);
}

int ioloop_writev(struct ioloop *loop, struct ioloop_op *op, int fd,
		  const struct iovec *iov, unsigned niov)
{
	struct io_uring_sqe *sqe = plain_sqe(loop, op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_writev(sqe, fd, iov, niov, -1);
	return start(loop, op, sqe);
}

int ioloop_recv(struct ioloop *loop, struct ioloop_op *op, int fd, void *buf,
		size_t len)
{
	struct io_uring_sqe *sqe = plain_sqe(loop, op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_recv(sqe, fd, buf, len > UINT32_MAX ? UINT32_MAX : len,
			   0);
	return start(loop, op, sqe);
}

int ioloop_sendmsg(struct ioloop *loop, struct ioloop_op *op, int fd,
		   const struct msghdr *msg)
{
	struct io_uring_sqe *sqe = plain_sqe(loop, op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_sendmsg(sqe, fd, msg, MSG_NOSIGNAL);
	return start(loop, op, sqe);
}

int ioloop_cancel(struct ioloop *loop, struct ioloop_op *op)
{
	struct io_uring_sqe *sqe;

	op->rearm = false;
	if (!op->busy)
		return 0;

	sqe = get_sqe(loop);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_cancel(sqe, op, 0);
	/* Completions of the cancel request itself carry no op. */
	io_uring_sqe_set_data(sqe, NULL);
	return 0;
}

static int arm_timer(struct ioloop *loop)
{
	struct io_uring_sqe *sqe = plain_sqe(loop, &loop->timer);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_timeout(sqe, &loop->timer_ts, 0, IORING_TIMEOUT_ABS);
	return start(loop, &loop->timer, sqe);
}

static int move_timer(struct ioloop *loop)
{
	struct io_uring_sqe *sqe = get_sqe(loop);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_timeout_update(sqe, &loop->timer_ts,
				     (uint64_t)(uintptr_t)&loop->timer,
				     IORING_TIMEOUT_ABS);
	/* Like a cancel, the update's own completion carries no op. */
	io_uring_sqe_set_data(sqe, NULL);
	return 0;
}

int ioloop_timer(struct ioloop *loop, uint64_t at)
{
	int ret;

	if (loop->timer.busy && at >= loop->timer_at)
		return 0;

	loop->timer_ts.tv_sec = at / 1000000000;
	loop->timer_ts.tv_nsec = at % 1000000000;
	ret = loop->timer.busy ? move_timer(loop) : arm_timer(loop);
	if (ret == 0)
		loop->timer_at = at;
	return ret;
}

/* A multishot poll ends for reasons of its own (overflow, some file
 * types); a watch nobody cancelled is armed again. */
static void complete(struct ioloop *loop, struct ioloop_op *op, int res,
		     unsigned flags)
{
	if (!(flags & IORING_CQE_F_MORE)) {
		op->busy = false;
		if (op->rearm && res >= 0 && arm_poll(loop, op) < 0)
			op->rearm = false;
	}
	op->done(op, res, flags);
}

/* Run every completion that is ready; any but the timer's opens the
 * poll window again. */
static int reap(struct ioloop *loop)
{
	struct io_uring_cqe *cqe;
	bool worked = false;
	int ran = 0;

	while (io_uring_peek_cqe(&loop->ring, &cqe) == 0) {
		struct ioloop_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		unsigned flags = cqe->flags;

		io_uring_cqe_seen(&loop->ring, cqe);
		worked |= op != &loop->timer;
		if (!op)
			continue;
		complete(loop, op, res, flags);
		ran++;
	}
	if (worked && loop->poll_ns)
		loop->poll_until = now_ns() + loop->poll_ns;
	return ran;
}

/* Errors that only mean "look again": a signal, or a full CQ ring. */
static int real_error(int ret)
{
	return ret < 0 && ret != -EINTR && ret != -EBUSY ? ret : 0;
}

/* Run deferred completions until some are ready or the poll window
 * closes. */
static int poll_cq(struct ioloop *loop)
{
	do {
		int ret = io_uring_submit_and_get_events(&loop->ring);

		if (real_error(ret))
			return ret;
		if (io_uring_cq_ready(&loop->ring))
			return 0;
		sched_yield();
	} while (now_ns() < loop->poll_until);
	return 0;
}

static int wait_cq(struct ioloop *loop)
{
	int ret = 0;

	if (loop->poll_ns && now_ns() < loop->poll_until &&
	    spin_budget_allows(&loop->spin)) {
		ret = poll_cq(loop);
		if (ret < 0)
			return ret;
		spin_budget_result(&loop->spin, io_uring_cq_ready(&loop->ring));
	}

	if (io_uring_cq_ready(&loop->ring))
		return real_error(io_uring_submit(&loop->ring));
	ret = io_uring_submit_and_wait(&loop->ring, 1);
	loop->woken_by_one = io_uring_cq_ready(&loop->ring) == 1;
	return real_error(ret);
}

/* Deferred completions run only when the ring is asked for events. */
static int look(struct ioloop *loop)
{
	int ret;

	if (loop->ring.flags & IORING_SETUP_DEFER_TASKRUN)
		ret = io_uring_submit_and_get_events(&loop->ring);
	else
		ret = io_uring_submit_and_wait(&loop->ring, 0);
	return real_error(ret);
}

int ioloop_run_once(struct ioloop *loop, bool wait)
{
	int ret;

	loop->woken_by_one = false;
	ret = wait ? wait_cq(loop) : look(loop);

	if (ret < 0)
		return ret;
	return reap(loop);
}

int ioloop_run(struct ioloop *loop)
{
	loop->stopping = false;
	while (!loop->stopping) {
		int ret = ioloop_run_once(loop, true);

		if (ret < 0)
			return ret;
	}
	return 0;
}

void ioloop_stop(struct ioloop *loop)
{
	uint64_t one = 1;

	/* The counter cannot overflow in practice; a failed write means the
	 * loop is already being told to stop. */
	if (write(loop->stop_fd, &one, sizeof(one)) < 0)
		return;
}
