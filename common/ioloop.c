/* One io_uring event loop per thread: fd polls, reads, writes, stop. */
#include "common/ioloop.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* An SQE for a one-shot request on op, or NULL when op is still in flight
 * or the ring has no room. */
static struct io_uring_sqe *one_shot_sqe(struct ioloop *loop,
					 struct ioloop_op *op)
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

int ioloop_init(struct ioloop *loop, unsigned entries)
{
	int ret;

	memset(loop, 0, sizeof(*loop));
	ret = io_uring_queue_init(entries, &loop->ring, 0);
	if (ret < 0)
		return ret;

	loop->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->stop_fd < 0) {
		ret = -errno;
		goto err_exit_ring;
	}

	loop->stop_op.done = on_stop;
	loop->stop_op.opaque = loop;
	ret = ioloop_poll(loop, &loop->stop_op, loop->stop_fd, POLLIN);
	if (ret < 0)
		goto err_close_stop;
	return 0;

err_close_stop:
	close(loop->stop_fd);
err_exit_ring:
	io_uring_queue_exit(&loop->ring);
	return ret;
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

int ioloop_read(struct ioloop *loop, struct ioloop_op *op, int fd, void *buf,
		size_t len)
{
	struct io_uring_sqe *sqe = one_shot_sqe(loop, op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, fd, buf, len > UINT32_MAX ? UINT32_MAX : len,
			   -1);
	return start(loop, op, sqe);
}

int ioloop_readv(struct ioloop *loop, struct ioloop_op *op, int fd,
		 const struct iovec *iov, unsigned niov)
{
	struct io_uring_sqe *sqe = one_shot_sqe(loop, op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_readv(sqe, fd, iov, niov, -1);
	return start(loop, op, sqe);
}

int ioloop_writev(struct ioloop *loop, struct ioloop_op *op, int fd,
		  const struct iovec *iov, unsigned niov)
{
	struct io_uring_sqe *sqe = one_shot_sqe(loop, op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_writev(sqe, fd, iov, niov, -1);
	return start(loop, op, sqe);
}

int ioloop_sendmsg(struct ioloop *loop, struct ioloop_op *op, int fd,
		   const struct msghdr *msg)
{
	struct io_uring_sqe *sqe = one_shot_sqe(loop, op);

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

static int reap(struct ioloop *loop)
{
	struct io_uring_cqe *cqe;
	int ran = 0;

	while (io_uring_peek_cqe(&loop->ring, &cqe) == 0) {
		struct ioloop_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		unsigned flags = cqe->flags;

		io_uring_cqe_seen(&loop->ring, cqe);
		if (!op)
			continue;
		complete(loop, op, res, flags);
		ran++;
	}
	return ran;
}

int ioloop_run_once(struct ioloop *loop, bool wait)
{
	int ret;

	ret = io_uring_submit_and_wait(&loop->ring, wait ? 1 : 0);
	if (ret < 0 && ret != -EINTR && ret != -EBUSY)
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
