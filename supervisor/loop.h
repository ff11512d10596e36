/* vmpoold's io_uring event loop: polls, accepts, receives, one timer. */
#ifndef VMPOOL_SV_LOOP_H
#define VMPOOL_SV_LOOP_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One request in flight, embedded in its owner. `done` runs with the
 * request's result (-errno on failure) and the CQE flags; a multishot
 * request runs it once per completion. `busy` stays true until the last
 * completion: an owner is freed only when none of its ops is busy.
 */
struct sv_op {
	void (*done)(struct sv_op *op, int res, unsigned flags);
	void *owner;
	bool busy;
};

struct sv_loop {
	struct io_uring ring;
	struct sv_op timer;
	uint64_t timer_at; /* CLOCK_MONOTONIC ns the armed timer fires at */
	struct __kernel_timespec timer_ts;
	/* After work, look for more for poll_ns before sleeping: a request
	 * that comes meanwhile is served without waking vmpoold up. */
	uint64_t poll_ns;
	uint64_t poll_until;
};

int sv_loop_init(struct sv_loop *loop, unsigned entries);
void sv_loop_exit(struct sv_loop *loop);

/* Multishot: `done` on each readiness of fd, until cancelled. */
int sv_loop_poll(struct sv_loop *loop, struct sv_op *op, int fd,
		 unsigned events);
/* One-shot poll. */
int sv_loop_poll_once(struct sv_loop *loop, struct sv_op *op, int fd,
		      unsigned events);
/* Multishot accept: `done` gets each new connection's fd (CLOEXEC). */
int sv_loop_accept(struct sv_loop *loop, struct sv_op *op, int fd);
int sv_loop_recv(struct sv_loop *loop, struct sv_op *op, int fd, void *buf,
		 size_t len);
int sv_loop_cancel(struct sv_loop *loop, struct sv_op *op);

/* Make loop->timer fire at `at` (CLOCK_MONOTONIC ns): armed, or moved
 * earlier when it is armed for later. Its done sees -ETIME. */
int sv_loop_timer(struct sv_loop *loop, uint64_t at);

/* Submit what is queued, wait for one completion, run all that are
 * ready; returns how many ran, or -errno. */
int sv_loop_run_once(struct sv_loop *loop);

#endif
