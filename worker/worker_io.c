/* The worker's sockets on its io_uring loop: guest, tenant, control, timer. */
#include "worker/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "kvm/vm.h"
#include "proto/tenant.h"

/* POLLOUT is watched apart, and only while bytes wait (watch_out). */
#define WATCH_EVENTS (POLLIN | POLLRDHUP)

/* Read what the socket holds into the frame reader, handing each frame
 * to fn; stops early while `paused` says so. 0, -EAGAIN when drained,
 * -EPIPE at end of file, or -errno. */
static int pump(int fd, struct proto_reader *rd, void *arg,
		void (*fn)(void *arg, const struct proto_frame *f, int err),
		bool (*paused)(void *arg))
{
	while (!paused(arg)) {
		struct proto_frame f;
		size_t room;
		uint8_t *dst = proto_reader_space(rd, &room);
		ssize_t n = read(fd, dst, room);
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		if (n == 0)
			return -EPIPE;
		proto_reader_commit(rd, n);

		while ((r = proto_reader_next(rd, &f)) != 0)
			fn(arg, &f, r < 0 ? r : 0);

		/* A short read took all there was: the socket's watch says
		 * when more comes, no need to ask it again now. */
		if ((size_t)n < room)
			return -EAGAIN;
	}
	return 0;
}

static void on_guest_frame(void *arg, const struct proto_frame *f, int err)
{
	struct worker *w = arg;

	if (w->state == WORKER_DONE)
		return;
	if (err) {
		worker_evict(w, "the guest sent an oversized frame");
		return;
	}
	worker_guest_frame(w, f);
}

static bool guest_paused(void *arg)
{
	struct worker *w = arg;

	if (w->state == WORKER_DONE)
		return true;
	return w->tenant &&
	       relay_queue_len(&w->tenant->out) > WORKER_QUEUE_HIGH;
}

/*
 * Watch fd for POLLOUT while bytes wait for it, else not: a watch armed
 * all along would wake the worker each time the peer reads. A watch
 * being cancelled is armed again by its handler, once it has ended.
 */
static int watch_out(struct worker *w, struct ioloop_op *op, int fd,
		     bool waiting)
{
	if (waiting && !op->busy)
		return ioloop_poll(&w->loop, op, fd, POLLOUT);
	if (!waiting && op->busy && op->rearm)
		return ioloop_cancel(&w->loop, op);
	return 0;
}

static void flush_guest(struct worker *w)
{
	bool was_high = relay_queue_len(&w->to_guest) > WORKER_QUEUE_HIGH;
	int err = relay_queue_flush(&w->to_guest, w->be.chan_fd);

	if (err && err != -EAGAIN) {
		worker_guest_lost(w, "the guest channel failed");
		return;
	}
	if (watch_out(w, &w->guest_out_op, w->be.chan_fd, err == -EAGAIN)) {
		worker_guest_lost(w, "the guest channel cannot be watched");
		return;
	}
	if (was_high && relay_queue_len(&w->to_guest) <= WORKER_QUEUE_HIGH)
		w->resume_tenant = true;
}

void worker_guest_resume(struct worker *w)
{
	int err =
	    pump(w->be.chan_fd, &w->guest_rd, w, on_guest_frame, guest_paused);

	if (err == -EPIPE || (err && err != -EAGAIN))
		worker_guest_lost(w, "the guest closed its channel");
}

/* The guest channel has room, or its watch ended: send what waits. */
static void on_guest_out(struct ioloop_op *op, int res, unsigned flags)
{
	struct worker *w = op->opaque;

	if (w->state != WORKER_DONE)
		flush_guest(w);
}

static void on_guest(struct ioloop_op *op, int res, unsigned flags)
{
	struct worker *w = op->opaque;

	if (res < 0 || w->state == WORKER_DONE)
		return;
	if (res & POLLOUT)
		flush_guest(w);
	if (w->state != WORKER_DONE &&
	    (res & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)))
		worker_guest_resume(w);
}

void worker_to_guest(struct worker *w, const void *frame, size_t len)
{
	if (relay_queue_put(&w->to_guest, frame, len)) {
		worker_evict(w, "out of memory queueing for the guest");
		return;
	}
	flush_guest(w);
}

void worker_to_guest_frame(struct worker *w, const struct proto_frame *f)
{
	if (relay_queue_frame(&w->to_guest, f)) {
		worker_evict(w, "out of memory queueing for the guest");
		return;
	}
	flush_guest(w);
}

/* A VM that ended names why, a panic with the kernel's own words: the
 * log and the tenant hear it. */
static void on_death(struct ioloop_op *op, int res, unsigned flags)
{
	struct worker *w = op->opaque;
	struct vm *vm = backend_kvm_vm(&w->be);
	char why[200];

	if (res < 0 || w->state == WORKER_DONE)
		return;
	snprintf(why, sizeof(why), "the guest has ended%s%s",
		 vm && vm_error(vm)[0] ? ": " : "", vm ? vm_error(vm) : "");
	worker_guest_lost(w, why);
}

static void on_timer(struct ioloop_op *op, int res, unsigned flags)
{
	struct worker *w = op->opaque;
	uint64_t n;

	if (res < 0 || read(w->timer_fd, &n, sizeof(n)) != sizeof(n))
		return;
	if (w->state != WORKER_DONE)
		worker_timeout(w);
}

void worker_arm_timer(struct worker *w, uint64_t ns)
{
	struct itimerspec its = {
	    .it_value.tv_sec = ns / 1000000000,
	    .it_value.tv_nsec = ns % 1000000000,
	};

	/* Zero disarms, as timerfd_settime itself has it. */
	timerfd_settime(w->timer_fd, 0, &its, NULL);
}

int worker_send_ctl(struct worker *w, uint32_t type, int32_t err,
		    uint64_t value, const char *text)
{
	struct ctl_msg m = {
	    .type = type,
	    .slot = w->o.slot,
	    .err = err,
	    .t0 = now_ns(),
	    .value = value,
	};

	if (text)
		snprintf(m.text, sizeof(m.text), "%s", text);
	if (send(w->o.ctl_fd, &m, sizeof(m), MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

/* CTL_RETURN with the tenant's connection; 0 or -errno. */
static int send_return(struct worker *w)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct ctl_msg m = {.type = CTL_RETURN, .slot = w->o.slot};
	struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
	struct msghdr mh = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = cbuf,
	    .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &w->tenant->fd, sizeof(int));

	m.t0 = now_ns();
	if (sendmsg(w->o.ctl_fd, &mh, MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

/* The tenant's connection goes back to vmpoold; ours is closed either
 * way: a tenant whose connection could not be passed on sees it end,
 * as after a RELEASE without TENANT_RELEASE_KEEP. */
static void hand_back(struct worker *w)
{
	int err = send_return(w);

	if (err)
		pr_debug("CTL_RETURN: sendmsg: %s", strerror(-err));
	worker_tenant_close(w);
}

/*
 * The OK of a RELEASE that keeps the connection, sent after the
 * connection went back: vmpoold is then awake to read the tenant's next
 * request by the time the tenant has the OK, instead of waiting for this
 * worker to be scheduled again. Only when nothing else waits for the
 * tenant and its socket has room, so that the OK cannot be held up once
 * vmpoold has the connection. 1 when done (and closed here), 0 when the
 * OK must go the usual way.
 */
int worker_tenant_return(struct worker *w, const void *ok, size_t len)
{
	struct tenant *t = w->tenant;
	struct pollfd p = {.fd = t->fd, .events = POLLOUT};

	if (relay_queue_len(&t->out) || poll(&p, 1, 0) != 1 ||
	    p.revents != POLLOUT || send_return(w))
		return 0;

	/* Cannot happen with room for it; the tenant then sees the end. */
	if (send(t->fd, ok, len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)len)
		shutdown(t->fd, SHUT_RDWR);
	worker_tenant_close(w);
	return 1;
}

/* The fds a control message carried: the first in *fd, others closed. */
static void take_fds(struct msghdr *mh, int *fd)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		int *fds = (int *)CMSG_DATA(c);
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			if (*fd < 0)
				*fd = fds[i];
			else
				close(fds[i]);
		}
	}
}

/* One message: 1 with *fd (-1: none), 0 when none is waiting, -EPIPE
 * when the supervisor has gone, -EBADMSG for a wrong size. */
static int recv_ctl(struct worker *w, struct ctl_msg *m, int *fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} cbuf;
	struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
	struct msghdr mh = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = cbuf.buf,
	    .msg_controllen = sizeof(cbuf.buf),
	};
	ssize_t n = recvmsg(w->o.ctl_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	*fd = -1;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -EPIPE;
	take_fds(&mh, fd);
	if (n != sizeof(*m) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		if (*fd >= 0)
			close(*fd);
		return -EBADMSG;
	}
	return 1;
}

static void ctl_message(struct worker *w, const struct ctl_msg *m, int fd)
{
	switch (m->type) {
	case CTL_LEASE:
		worker_lease(w, m, fd);
		return;
	case CTL_STOP:
		pr_info("asked to stop");
		worker_finish(w, WORKER_EXIT_OK);
		break;
	default:
		pr_warn("control message of unknown type %u ignored", m->type);
	}
	if (fd >= 0)
		close(fd);
}

/* A guest that ended while leases were on their way to this worker:
 * each leasing tenant hears why (on the ACQUIRE it still waits on, or
 * as the connection's end when vmpoold already answered it). */
void worker_refuse_leases(struct worker *w, uint32_t code, const char *msg)
{
	uint8_t buf[PROTO_HDR_SIZE + sizeof(w->lost_msg) + 8];
	struct ctl_msg c;
	int fd;

	while (recv_ctl(w, &c, &fd) > 0) {
		uint32_t id = c.value & CTL_LEASE_ANSWERED ? 0 : c.id;
		long n = proto_build_error(buf, sizeof(buf), id, code, msg);

		if (fd < 0)
			continue;
		if (c.type == CTL_LEASE && n > 0)
			send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		close(fd);
	}
}

static void on_ctl(struct ioloop_op *op, int res, unsigned flags)
{
	struct worker *w = op->opaque;
	struct ctl_msg m;
	int fd, r;

	if (res < 0)
		return;
	while (w->state != WORKER_DONE && (r = recv_ctl(w, &m, &fd)) != 0) {
		if (r == -EBADMSG) {
			pr_warn("control message of a wrong size ignored");
			continue;
		}
		if (r < 0) {
			pr_info("the supervisor has gone: %s", strerror(-r));
			worker_finish(w, WORKER_EXIT_OK);
			return;
		}
		ctl_message(w, &m, fd);
	}
}

static void on_tenant_frame(void *arg, const struct proto_frame *f, int err)
{
	struct tenant *t = arg;

	if (t->closing || t->draining || t->w->state != WORKER_LEASED)
		return;
	if (err) {
		worker_tenant_error(t->w, f->id, PROTO_E_BAD_LENGTH,
				    "frame payload over the limit");
		return;
	}
	worker_tenant_frame(t->w, f);
}

static bool tenant_paused(void *arg)
{
	struct tenant *t = arg;

	if (t->closing || t->draining || t->w->state != WORKER_LEASED)
		return true;
	return relay_queue_len(&t->w->to_guest) > WORKER_QUEUE_HIGH;
}

void worker_tenant_resume(struct worker *w)
{
	struct tenant *t = w->tenant;
	int err;

	if (!t)
		return;
	err = pump(t->fd, &t->rd, t, on_tenant_frame, tenant_paused);
	if (w->tenant == t && !t->closing && err && err != -EAGAIN)
		worker_tenant_gone(w);
}

/* Send what is queued for the tenant; a drained RELEASE closes. */
static void flush_tenant(struct worker *w)
{
	struct tenant *t = w->tenant;
	bool was_high = relay_queue_len(&t->out) > WORKER_QUEUE_HIGH;
	int err = relay_queue_flush(&t->out, t->fd);
	bool waiting = err == -EAGAIN;

	if (!err || waiting)
		err = watch_out(w, &t->out_op, t->fd, waiting);
	if (err) {
		if (t->draining)
			worker_tenant_close(w);
		else
			worker_tenant_gone(w);
		return;
	}
	if (!waiting && t->draining) {
		if (t->keep)
			hand_back(w);
		else
			worker_tenant_close(w);
		return;
	}
	if (was_high && relay_queue_len(&t->out) <= WORKER_QUEUE_HIGH)
		w->resume_guest = true;
}

/* The last tenant's frame reader, emptied, when there is one: a lease
 * then neither grows the heap nor faults its first pages in again. */
static int reader_open(struct worker *w, struct proto_reader *rd)
{
	if (!w->spare_rd.buf)
		return proto_reader_init(rd);
	*rd = w->spare_rd;
	rd->start = rd->end = rd->skip = 0;
	w->spare_rd.buf = NULL;
	return 0;
}

static void tenant_free(struct worker *w, struct tenant *t)
{
	if (!w->spare_rd.buf)
		w->spare_rd = t->rd;
	else
		proto_reader_free(&t->rd);
	relay_queue_free(&t->out);
	free(t);
}

/* The tenant's socket has room, or its watch ended: send what waits. */
static void on_tenant_out(struct ioloop_op *op, int res, unsigned flags)
{
	struct tenant *t = op->opaque;

	if (!t->closing && t->w->tenant == t)
		flush_tenant(t->w);
}

static void on_tenant(struct ioloop_op *op, int res, unsigned flags)
{
	struct tenant *t = op->opaque;
	struct worker *w = t->w;

	if (t->closing || res < 0)
		return;
	if (res & POLLOUT)
		flush_tenant(w);
	if (w->tenant == t && (res & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)))
		worker_tenant_resume(w);
}

int worker_tenant_open(struct worker *w, int fd)
{
	struct tenant *t = calloc(1, sizeof(*t));
	int err;

	if (!t)
		return -ENOMEM;
	t->w = w;
	t->fd = fd;
	t->op.done = on_tenant;
	t->op.opaque = t;
	t->out_op.done = on_tenant_out;
	t->out_op.opaque = t;
	err = fcntl(fd, F_SETFL, O_NONBLOCK) < 0 ? -errno : 0;
	if (!err)
		err = reader_open(w, &t->rd);
	if (err)
		goto err_free;

	err = ioloop_poll(&w->loop, &t->op, fd, WATCH_EVENTS);
	if (err)
		goto err_free_reader;
	w->tenant = t;
	return 0;

err_free_reader:
	w->spare_rd = t->rd;
err_free:
	free(t);
	return err;
}

/* The caller may still be reading t's frames, and its poll may still be
 * in flight: t is freed by the main loop once nothing uses it. */
void worker_tenant_close(struct worker *w)
{
	struct tenant *t = w->tenant;

	if (!t)
		return;
	w->tenant = NULL;
	t->closing = true;
	close(t->fd);
	ioloop_cancel(&w->loop, &t->op);
	ioloop_cancel(&w->loop, &t->out_op);
	t->next = w->closed;
	w->closed = t;
	w->resume_guest = true;
}

void worker_reap_tenants(struct worker *w, bool all)
{
	struct tenant **p = &w->closed;

	while (*p) {
		struct tenant *t = *p;

		if ((t->op.busy || t->out_op.busy) && !all) {
			p = &t->next;
			continue;
		}
		*p = t->next;
		tenant_free(w, t);
	}
	if (all)
		proto_reader_free(&w->spare_rd);
}

void worker_to_tenant(struct worker *w, const void *frame, size_t len)
{
	if (!w->tenant || w->tenant->closing)
		return;
	if (relay_queue_put(&w->tenant->out, frame, len)) {
		worker_tenant_gone(w);
		return;
	}
	flush_tenant(w);
}

void worker_to_tenant_frame(struct worker *w, const struct proto_frame *f)
{
	if (!w->tenant || w->tenant->closing)
		return;
	if (relay_queue_frame(&w->tenant->out, f)) {
		worker_tenant_gone(w);
		return;
	}
	flush_tenant(w);
}

void worker_tenant_error(struct worker *w, uint32_t id, uint32_t code,
			 const char *msg)
{
	uint8_t buf[PROTO_HDR_SIZE + 256];
	long n = proto_build_error(buf, sizeof(buf), id, code, msg);

	if (n > 0)
		worker_to_tenant(w, buf, n);
}

int worker_watch(struct worker *w)
{
	int err;

	w->guest_op = (struct ioloop_op){.done = on_guest, .opaque = w};
	w->guest_out_op = (struct ioloop_op){.done = on_guest_out, .opaque = w};
	w->death_op = (struct ioloop_op){.done = on_death, .opaque = w};
	w->ctl_op = (struct ioloop_op){.done = on_ctl, .opaque = w};
	w->timer_op = (struct ioloop_op){.done = on_timer, .opaque = w};

	err = ioloop_poll(&w->loop, &w->guest_op, w->be.chan_fd, WATCH_EVENTS);
	if (!err)
		err =
		    ioloop_poll(&w->loop, &w->death_op, w->be.death_fd, POLLIN);
	if (!err)
		err = ioloop_poll(&w->loop, &w->ctl_op, w->o.ctl_fd, POLLIN);
	if (!err)
		err = ioloop_poll(&w->loop, &w->timer_op, w->timer_fd, POLLIN);
	return err;
}
