/* vmpoold's io_uring event loop: polls, accepts, receives, one timer. */
#include "supervisor/loop.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

#include "common/util.h"

/* When the submission queue is full, what is queued goes in first. */
static struct io_uring_sqe *get_sqe(struct sv_loop *loop)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);

	if (sqe)
		return sqe;
	if (io_uring_submit(&loop->ring) < 0)
		return NULL;
	return io_uring_get_sqe(&loop->ring);
}

static struct io_uring_sqe *start(struct sv_loop *loop, struct sv_op *op)
{
	struct io_uring_sqe *sqe;

	if (op->busy)
		return NULL;
	sqe = get_sqe(loop);
	if (!sqe)
		return NULL;
	io_uring_sqe_set_data(sqe, op);
	op->busy = true;
	return sqe;
}

static void on_timer(struct sv_op *op, int res, unsigned flags)
{
}

/* Completions are run only when the loop waits for them, instead of
 * interrupting vmpoold while it works; kernels before 6.1 lack that. */
int sv_loop_init(struct sv_loop *loop, unsigned entries)
{
	unsigned flags =
	    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	int rc;

	memset(loop, 0, sizeof(*loop));
	loop->timer.done = on_timer;
	loop->timer.owner = loop;
	rc = io_uring_queue_init(entries, &loop->ring, flags);
	if (rc == -EINVAL)
		rc = io_uring_queue_init(entries, &loop->ring, 0);
	return rc;
}

void sv_loop_exit(struct sv_loop *loop)
{
	io_uring_queue_exit(&loop->ring);
}

int sv_loop_poll(struct sv_loop *loop, struct sv_op *op, int fd,
		 unsigned events)
{
	struct io_uring_sqe *sqe = start(loop, op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_multishot(sqe, fd, events);
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

int sv_loop_poll_once(struct sv_loop *loop, struct sv_op *op, int fd,
		      unsigned events)
{
	struct io_uring_sqe *sqe = start(loop, op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, fd, events);
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

int sv_loop_accept(struct sv_loop *loop, struct sv_op *op, int fd)
{
	struct io_uring_sqe *sqe = start(loop, op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

int sv_loop_recv(struct sv_loop *loop, struct sv_op *op, int fd, void *buf,
		 size_t len)
{
	struct io_uring_sqe *sqe = start(loop, op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_recv(sqe, fd, buf, len, 0);
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

int sv_loop_cancel(struct sv_loop *loop, struct sv_op *op)
{
	struct io_uring_sqe *sqe;

	if (!op->busy)
		return 0;
	sqe = get_sqe(loop);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_cancel(sqe, op, 0);
	/* The cancel request's own completion carries no op. */
	io_uring_sqe_set_data(sqe, NULL);
	return 0;
}

static void set_ts(struct __kernel_timespec *ts, uint64_t at)
{
	ts->tv_sec = at / 1000000000;
	ts->tv_nsec = at % 1000000000;
}

int sv_loop_timer(struct sv_loop *loop, uint64_t at)
{
	struct io_uring_sqe *sqe;

	if (loop->timer.busy && at >= loop->timer_at)
		return 0;

	set_ts(&loop->timer_ts, at);
	if (!loop->timer.busy) {
		sqe = start(loop, &loop->timer);
		if (!sqe)
			return -EBUSY;
		io_uring_prep_timeout(sqe, &loop->timer_ts, 0,
				      IORING_TIMEOUT_ABS);
		io_uring_sqe_set_data(sqe, &loop->timer);
	} else {
		sqe = get_sqe(loop);
		if (!sqe)
			return -EBUSY;
		io_uring_prep_timeout_update(sqe, &loop->timer_ts,
					     (uint64_t)(uintptr_t)&loop->timer,
					     IORING_TIMEOUT_ABS);
		io_uring_sqe_set_data(sqe, NULL);
	}
	loop->timer_at = at;
	return 0;
}

static void complete(struct io_uring_cqe *cqe)
{
	struct sv_op *op = io_uring_cqe_get_data(cqe);

	if (!op)
		return;
	if (!(cqe->flags & IORING_CQE_F_MORE))
		op->busy = false;
	op->done(op, cqe->res, cqe->flags);
}

/* Run deferred completions until some are ready or the poll window
 * closes. */
static int poll_cq(struct sv_loop *loop)
{
	do {
		int rc = io_uring_submit_and_get_events(&loop->ring);

		if (rc < 0 && rc != -EINTR && rc != -EBUSY)
			return rc;
		if (io_uring_cq_ready(&loop->ring))
			return 0;
		sched_yield();
	} while (now_ns() < loop->poll_until);
	return 0;
}

static int wait_cq(struct sv_loop *loop)
{
	int rc = 0;

	if (loop->poll_ns && now_ns() < loop->poll_until)
		rc = poll_cq(loop);
	if (!rc && !io_uring_cq_ready(&loop->ring))
		rc = io_uring_submit_and_wait(&loop->ring, 1);
	else if (!rc)
		rc = io_uring_submit(&loop->ring);
	return rc < 0 && rc != -EINTR && rc != -EBUSY ? rc : 0;
}

int sv_loop_run_once(struct sv_loop *loop)
{
	struct io_uring_cqe *cqe;
	bool worked = false;
	int ran = 0, rc;

	rc = wait_cq(loop);
	if (rc < 0)
		return rc;

	while (io_uring_peek_cqe(&loop->ring, &cqe) == 0) {
		struct io_uring_cqe copy = *cqe;

		io_uring_cqe_seen(&loop->ring, cqe);
		worked |= io_uring_cqe_get_data(&copy) != &loop->timer;
		complete(&copy);
		ran++;
	}
	if (worked && loop->poll_ns)
		loop->poll_until = now_ns() + loop->poll_ns;
	return ran;
}
