/* One io_uring event loop per thread: polls, accepts, I/O, a timer, stop. */
#ifndef VMPOOL_IOLOOP_H
#define VMPOOL_IOLOOP_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/spin.h"

/* One request in flight, embedded in its owner's struct. `done` runs on
 * the loop thread with the request's result (-errno on failure) and the
 * CQE flags; a multishot request (poll watch, accept) runs it once per
 * completion. `busy` stays true until the last completion: the op, and
 * its owner, must stay valid until then or until ioloop_exit. */
struct ioloop_op {
	void (*done)(struct ioloop_op *op, int res, unsigned flags);
	void *opaque;
	/* A poll watch that the kernel ended without being asked is armed
	 * again; ioloop_cancel clears this so the watch stays ended. */
	bool rearm;
	bool busy;
	int fd;
	unsigned events;
};

struct ioloop {
	struct io_uring ring;
	int stop_fd;
	struct ioloop_op stop_op;
	bool stopping;
	/* The one timer (ioloop_timer): its firing only ends the wait. */
	struct ioloop_op timer;
	uint64_t timer_at; /* CLOCK_MONOTONIC ns the armed timer fires at */
	struct __kernel_timespec timer_ts;
	/* After work, look for more for poll_ns before sleeping: a request
	 * that comes meanwhile is served without waking the thread up. 0
	 * (the default) sleeps at once. The timer's firing is not work. A
	 * window that keeps closing empty is skipped for a while (spin.h):
	 * a steady trickle of requests then costs no CPU in polls. */
	uint64_t poll_ns;
	uint64_t poll_until;
	struct spin_budget spin;
	/* The last wait found nothing ready, slept, and woke to one
	 * completion (ioloop_woken_by_one). */
	bool woken_by_one;
};

/* Set up a ring with room for `entries` requests (rounded up by the
 * kernel) and the eventfd that ioloop_stop pokes. 0 or -errno. */
int ioloop_init(struct ioloop *loop, unsigned entries);

/* Like ioloop_init, for a loop whose calling thread is the only one that
 * ever starts requests on it (ioloop_stop is still safe from anywhere):
 * completions then run only when that thread waits in ioloop_run_once,
 * instead of interrupting it while it works. Kernels before 6.1 lack
 * this and get ioloop_init's ring. */
int ioloop_init_single_issuer(struct ioloop *loop, unsigned entries);

/* Tear down the ring; requests still in flight are dropped unseen. */
void ioloop_exit(struct ioloop *loop);

/* Call `op->done` each time `fd` reports `events` (POLLIN...), until
 * ioloop_cancel. Loop thread only (or before ioloop_run starts). */
int ioloop_poll(struct ioloop *loop, struct ioloop_op *op, int fd,
		unsigned events);

/* Call `op->done` once, when `fd` reports `events`. Loop thread only. */
int ioloop_poll_once(struct ioloop *loop, struct ioloop_op *op, int fd,
		     unsigned events);

/* Multishot accept on listening socket `fd`: `op->done` gets each new
 * connection's fd (CLOEXEC), until an error or ioloop_cancel ends it
 * (then `op->busy` is false). Loop thread only. */
int ioloop_accept(struct ioloop *loop, struct ioloop_op *op, int fd);

/* One read (or readv / writev) of `fd` at the current file position;
 * `op->done` gets the byte count. Loop thread only. */
int ioloop_read(struct ioloop *loop, struct ioloop_op *op, int fd, void *buf,
		size_t len);
int ioloop_readv(struct ioloop *loop, struct ioloop_op *op, int fd,
		 const struct iovec *iov, unsigned niov);
int ioloop_writev(struct ioloop *loop, struct ioloop_op *op, int fd,
		  const struct iovec *iov, unsigned niov);

/* One recv of up to `len` bytes from socket `fd`; 0 is the peer's EOF. */
int ioloop_recv(struct ioloop *loop, struct ioloop_op *op, int fd, void *buf,
		size_t len);

/* sendmsg with MSG_NOSIGNAL: a socket whose peer left gives -EPIPE
 * instead of killing the process. `msg` must outlive the request. */
int ioloop_sendmsg(struct ioloop *loop, struct ioloop_op *op, int fd,
		   const struct msghdr *msg);

/* Ask the kernel to end `op` (its done then sees -ECANCELED or its
 * result). Loop thread only. */
int ioloop_cancel(struct ioloop *loop, struct ioloop_op *op);

/* Make the timer fire at `at` (CLOCK_MONOTONIC ns): armed, or moved
 * earlier when it is armed for later. Loop thread only. */
int ioloop_timer(struct ioloop *loop, uint64_t at);

/* Serve completions until ioloop_stop; 0 or -errno from io_uring. */
int ioloop_run(struct ioloop *loop);

/* Serve what is ready now, waiting for at least one completion when
 * `wait` is true (within the poll window, by polling first); returns
 * how many completions ran, or -errno. */
int ioloop_run_once(struct ioloop *loop, bool wait);

/* Whether the completions now running are one alone, which woke the
 * thread from sleep (not found ready, nor by polling). A thread woken
 * by a request mostly runs on the requester's CPU, which the requester
 * then waits to get back. */
static inline bool ioloop_woken_by_one(const struct ioloop *loop)
{
	return loop->woken_by_one;
}

/* Make ioloop_run return soon. Safe from any thread or signal handler. */
void ioloop_stop(struct ioloop *loop);

#endif
