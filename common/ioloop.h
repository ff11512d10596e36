/* One io_uring event loop per thread: fd polls, reads, writes, stop. */
#ifndef VMPOOL_IOLOOP_H
#define VMPOOL_IOLOOP_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* One request in flight, embedded in its owner's struct. `done` runs on
 * the loop thread with the request's result (-errno on failure) and the
 * CQE flags; for a poll watch it runs once per readiness event. The op
 * must stay valid until its last completion or until ioloop_exit. */
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
};

/* Set up a ring with room for `entries` requests (rounded up by the
 * kernel) and the eventfd that ioloop_stop pokes. 0 or -errno. */
int ioloop_init(struct ioloop *loop, unsigned entries);

/* Tear down the ring; requests still in flight are dropped unseen. */
void ioloop_exit(struct ioloop *loop);

/* Call `op->done` each time `fd` reports `events` (POLLIN...), until
 * ioloop_cancel. Loop thread only (or before ioloop_run starts). */
int ioloop_poll(struct ioloop *loop, struct ioloop_op *op, int fd,
		unsigned events);

/* One read (or readv / writev) of `fd` at the current file position;
 * `op->done` gets the byte count. Loop thread only. */
int ioloop_read(struct ioloop *loop, struct ioloop_op *op, int fd, void *buf,
		size_t len);
int ioloop_readv(struct ioloop *loop, struct ioloop_op *op, int fd,
		 const struct iovec *iov, unsigned niov);
int ioloop_writev(struct ioloop *loop, struct ioloop_op *op, int fd,
		  const struct iovec *iov, unsigned niov);

/* sendmsg with MSG_NOSIGNAL: a socket whose peer left gives -EPIPE
 * instead of killing the process. `msg` must outlive the request. */
int ioloop_sendmsg(struct ioloop *loop, struct ioloop_op *op, int fd,
		   const struct msghdr *msg);

/* Ask the kernel to end `op` (its done then sees -ECANCELED or its
 * result). Loop thread only. */
int ioloop_cancel(struct ioloop *loop, struct ioloop_op *op);

/* Serve completions until ioloop_stop; 0 or -errno from io_uring. */
int ioloop_run(struct ioloop *loop);

/* Serve what is ready now, waiting for at least one completion when
 * `wait` is true; returns how many completions ran, or -errno. */
int ioloop_run_once(struct ioloop *loop, bool wait);

/* Make ioloop_run return soon. Safe from any thread or signal handler. */
void ioloop_stop(struct ioloop *loop);

#endif
