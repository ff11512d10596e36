/* A blocking client for the agent protocol: one request at a time. */
#include "proto/client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

/*
 * What the client waits for: the frames of one request id. Replies are
 * consumed while a request's data is still being sent, so an agent that
 * streams output back never deadlocks against a client that is writing.
 */
struct waiter {
	uint32_t id;
	bool done;
	int rc;
	int (*on_frame)(struct proto_client *c, struct waiter *w,
			const struct proto_frame *f);
	void *ctx;
};

int proto_client_init(struct proto_client *c, int fd)
{
	int flags = fcntl(fd, F_GETFL);
	int err;

	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->next_id = 1;
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;

	err = proto_reader_init(&c->rd);
	if (err)
		return err;

	c->out = malloc(PROTO_MAX_FRAME);
	if (!c->out) {
		proto_reader_free(&c->rd);
		return -ENOMEM;
	}
	return 0;
}

void proto_client_free(struct proto_client *c)
{
	proto_reader_free(&c->rd);
	free(c->out);
	c->out = NULL;
}

uint32_t proto_client_new_id(struct proto_client *c)
{
	uint32_t id = c->next_id++;

	if (!c->next_id)
		c->next_id = 1;
	return id;
}

static int wait_fd(struct proto_client *c, short events)
{
	struct pollfd p = {.fd = c->fd, .events = events};
	int n;

	do
		n = poll(&p, 1, -1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (p.revents & POLLNVAL)
		return -EBADF;
	return p.revents;
}

/* Read what the fd has into the reader: 0, -EAGAIN, -EPIPE at EOF. */
static int fill(struct proto_client *c)
{
	size_t room;
	uint8_t *dst = proto_reader_space(&c->rd, &room);
	ssize_t n = read(c->fd, dst, room);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -EPIPE;
	proto_reader_commit(&c->rd, n);
	return 0;
}

/* Threads of this process spinning now: more than one would take the
 * CPUs the answers need, on a host with few of them. */
static atomic_uint spinners;

/* Read again and again for up to c->spin_ns before giving up with
 * -EAGAIN, for an answer that is about to come; only one thread of the
 * process spins at a time, the others sleep at once. */
static int spin_fill(struct proto_client *c)
{
	uint64_t until = now_ns() + c->spin_ns;
	int r = -EAGAIN;

	if (atomic_fetch_add(&spinners, 1) == 0) {
		do {
			sched_yield();
			r = fill(c);
		} while (r == -EAGAIN && now_ns() < until);
	}
	atomic_fetch_sub(&spinners, 1);
	return r;
}

/* What the fd has, or the next that comes to it; 0 or -errno. */
static int fill_or_wait(struct proto_client *c)
{
	int r = fill(c);

	if (r == -EAGAIN && c->spin_ns)
		r = spin_fill(c);
	if (r == -EAGAIN)
		r = wait_fd(c, POLLIN);
	return r < 0 ? r : 0;
}

int proto_client_recv(struct proto_client *c, struct proto_frame *f)
{
	for (;;) {
		int r = proto_reader_next(&c->rd, f);

		if (r == 1)
			return 0;
		if (r < 0)
			return -EPROTO;

		r = fill_or_wait(c);
		if (r < 0)
			return r;
	}
}

static void keep_error(struct proto_client *c, const struct proto_frame *f)
{
	const char *msg;

	if (proto_parse_error(f, &c->err_code, &msg))
		msg = NULL;
	snprintf(c->err_msg, sizeof(c->err_msg), "%s",
		 msg ? msg : proto_err_name(c->err_code));
}

/* Hand every complete buffered frame to the waiter; 0 or -errno. */
static int dispatch(struct proto_client *c, struct waiter *w)
{
	struct proto_frame f;
	int r;

	while (!w->done && (r = proto_reader_next(&c->rd, &f)) != 0) {
		if (r < 0)
			return -EPROTO;
		/* An ERROR of id 0 ends the connection, whatever was asked. */
		if (f.id != w->id && !(f.id == 0 && f.type == PROTO_ERROR))
			continue;
		if (f.type == PROTO_ERROR) {
			keep_error(c, &f);
			w->done = true;
			w->rc = -proto_err_to_errno(c->err_code);
			continue;
		}
		r = w->on_frame(c, w, &f);
		if (r < 0) {
			w->done = true;
			w->rc = r;
		}
	}
	return 0;
}

/* Write a whole buffer, consuming replies for w while the fd is full. */
static int send_all(struct proto_client *c, const void *buf, size_t len,
		    struct waiter *w)
{
	const uint8_t *p = buf;

	while (len && !(w && w->done)) {
		ssize_t n = write(c->fd, p, len);
		int ev;

		if (n > 0) {
			p += n;
			len -= n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;

		ev = wait_fd(c, POLLOUT | (w ? POLLIN : 0));
		if (ev < 0)
			return ev;
		if ((ev & POLLIN) && (ev = fill(c)) < 0 && ev != -EAGAIN)
			return ev;
		if (w && (ev = dispatch(c, w)) < 0)
			return ev;
	}
	return 0;
}

int proto_client_send(struct proto_client *c, const void *frame, size_t n)
{
	return send_all(c, frame, n, NULL);
}
/* Receive until the waiter's request is finished. */
static int wait_done(struct proto_client *c, struct waiter *w)
{
	while (!w->done) {
		int r = dispatch(c, w);

		if (r < 0 || w->done)
			return r;
		r = fill_or_wait(c);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Send the n-byte frame built in c->out as w's request, then wait. */
static int request(struct proto_client *c, long n, struct waiter *w)
{
	struct proto_frame hdr;
	int r;

	if (n < 0)
		return n;
	proto_get_header(c->out, &hdr);
	w->id = hdr.id;
	r = send_all(c, c->out, n, w);
	if (r < 0)
		return r;
	r = wait_done(c, w);
	return r < 0 ? r : w->rc;
}

/* For requests whose whole answer is one frame of type ctx->type. */
static int on_single(struct proto_client *c, struct waiter *w,
		     const struct proto_frame *f)
{
	struct proto_frame *out = w->ctx;

	if (f->type != out->type)
		return -EPROTO;
	*out = *f;
	w->done = true;
	return 0;
}

/* Send the request in c->out; *reply gets its one reply of `type`. */
static int call(struct proto_client *c, long n, uint16_t type,
		struct proto_frame *reply)
{
	struct waiter w = {.on_frame = on_single, .ctx = reply};

	reply->type = type;
	return request(c, n, &w);
}

static int on_hello(struct proto_client *c, struct waiter *w,
		    const struct proto_frame *f)
{
	const char *text;

	if (f->type != PROTO_HELLO ||
	    proto_parse_hello(f, &c->agent_version, &c->agent_caps, &text))
		return -EPROTO;
	w->done = true;
	return c->agent_version == PROTO_VERSION ? 0 : -EPROTO;
}

int proto_client_hello(struct proto_client *c, const char *root)
{
	struct waiter w = {.id = 0, .on_frame = on_hello};
	struct proto_frame reply;
	int r = wait_done(c, &w);

	if (r < 0 || w.rc < 0 || !root)
		return r < 0 ? r : w.rc;
	return call(c,
		    proto_build_hello(c->out, PROTO_MAX_FRAME,
				      proto_client_new_id(c), 0, root),
		    PROTO_OK, &reply);
}

int proto_client_ping(struct proto_client *c)
{
	struct proto_frame reply;

	return call(c,
		    proto_build_empty(c->out, PROTO_MAX_FRAME, PROTO_PING,
				      proto_client_new_id(c)),
		    PROTO_PONG, &reply);
}

struct exec_ctx {
	proto_output_fn *out;
	void *arg;
	struct proto_exit *res;
	const uint8_t *in;
	size_t in_len;
};

static int on_exec(struct proto_client *c, struct waiter *w,
		   const struct proto_frame *f)
{
	struct exec_ctx *x = w->ctx;

	if (f->type == PROTO_STDOUT || f->type == PROTO_STDERR) {
		if (x->out)
			x->out(x->arg, f->type == PROTO_STDOUT ? 1 : 2,
			       f->payload, f->len);
		return 0;
	}
	if (f->type != PROTO_EXIT || proto_parse_exit(f, x->res))
		return -EPROTO;
	w->done = true;
	return 0;
}

/* Stream stdin as STDIN frames, the last one flagged EOF. */
static int send_stdin(struct proto_client *c, struct waiter *w,
		      const uint8_t *p, size_t len)
{
	do {
		size_t n = MIN(len, (size_t)PROTO_CHUNK);
		long size =
		    proto_build_data(c->out, PROTO_MAX_FRAME, PROTO_STDIN,
				     n == len ? PROTO_F_EOF : 0, w->id, p, n);
		int r = send_all(c, c->out, size, w);

		if (r < 0)
			return r;
		p += n;
		len -= n;
	} while (len && !w->done);
	return 0;
}

int proto_client_exec(struct proto_client *c, const struct proto_exec_req *req,
		      proto_output_fn *out, void *arg, struct proto_exit *res)
{
	struct exec_ctx x = {.out = out, .arg = arg, .res = res};
	struct waiter w = {.on_frame = on_exec, .ctx = &x};
	uint32_t id = proto_client_new_id(c);
	long n = proto_build_exec(c->out, PROTO_MAX_FRAME, id, req);
	int r;

	if (n < 0)
		return n;
	w.id = id;
	r = send_all(c, c->out, n, &w);
	if (r == 0 && req->stdin_data)
		r = send_stdin(c, &w, req->stdin_data, req->stdin_len);
	if (r < 0)
		return r;
	r = wait_done(c, &w);
	return r < 0 ? r : w.rc;
}

static int on_write_end(struct proto_client *c, struct waiter *w,
			const struct proto_frame *f)
{
	if (f->type != PROTO_OK || proto_parse_u64(f, w->ctx))
		return -EPROTO;
	w->done = true;
	return 0;
}

/* Send WRITE_CHUNK frames filled straight from the source. */
static int send_chunks(struct proto_client *c, struct waiter *w,
		       proto_source_fn *src, void *arg)
{
	for (;;) {
		struct proto_msg m;
		size_t room;
		uint8_t *dst;
		ssize_t n;
		int r;

		proto_msg_begin(&m, c->out, PROTO_HDR_SIZE + PROTO_CHUNK,
				PROTO_WRITE_CHUNK, 0, w->id);
		dst = proto_msg_tail(&m, &room);
		n = src(arg, dst, room);
		if (n <= 0)
			return n;
		proto_msg_add(&m, n);
		r = send_all(c, c->out, proto_msg_end(&m), w);
		if (r < 0 || w->done)
			return r;
	}
}

int proto_client_write(struct proto_client *c, const char *path, uint32_t mode,
		       uint32_t flags, proto_source_fn *src, void *arg,
		       uint64_t *written)
{
	uint64_t total = 0;
	struct waiter w = {.on_frame = on_write_end, .ctx = &total};
	long n;
	int r, end;

	w.id = proto_client_new_id(c);
	n = proto_build_write_open(c->out, PROTO_MAX_FRAME, w.id, path, mode,
				   flags);
	r = send_all(c, c->out, n, &w);
	if (r == 0)
		r = send_chunks(c, &w, src, arg);

	/* The agent holds the write open until END, even after a failure. */
	n = proto_build_empty(c->out, PROTO_MAX_FRAME, PROTO_WRITE_END, w.id);
	end = send_all(c, c->out, n, NULL);
	if (r < 0 || end < 0)
		return r < 0 ? r : end;

	r = wait_done(c, &w);
	if (r < 0 || w.rc < 0)
		return r < 0 ? r : w.rc;
	if (written)
		*written = total;
	return 0;
}

struct read_ctx {
	proto_sink_fn *sink;
	void *arg;
	uint64_t got;
	uint64_t total;
};

static int on_read(struct proto_client *c, struct waiter *w,
		   const struct proto_frame *f)
{
	struct read_ctx *x = w->ctx;

	if (f->type == PROTO_READ_DATA) {
		x->got += f->len;
		return x->sink(x->arg, f->payload, f->len);
	}
	if (f->type != PROTO_READ_END || proto_parse_u64(f, &x->total) ||
	    x->total != x->got)
		return -EPROTO;
	w->done = true;
	return 0;
}

int proto_client_read(struct proto_client *c, const char *path, uint64_t offset,
		      uint64_t length, proto_sink_fn *sink, void *arg,
		      uint64_t *nread)
{
	struct read_ctx x = {.sink = sink, .arg = arg};
	struct waiter w = {.on_frame = on_read, .ctx = &x};
	int r = request(c,
			proto_build_read_open(c->out, PROTO_MAX_FRAME,
					      proto_client_new_id(c), path,
					      offset, length),
			&w);

	if (r == 0 && nread)
		*nread = x.total;
	return r;
}

struct list_ctx {
	proto_entry_fn *fn;
	void *arg;
};

static int on_list(struct proto_client *c, struct waiter *w,
		   const struct proto_frame *f)
{
	struct list_ctx *x = w->ctx;
	struct proto_stat st;
	struct proto_cur cur;
	const char *name;
	uint64_t count;
	int r;

	if (f->type == PROTO_OK) {
		w->done = true;
		return proto_parse_u64(f, &count) ? -EPROTO : 0;
	}
	if (f->type != PROTO_DIR_ENTRIES)
		return -EPROTO;

	proto_cur_init(&cur, f);
	while ((r = proto_next_entry(&cur, &st, &name)) > 0)
		if (x->fn)
			x->fn(x->arg, name, &st);
	return r < 0 ? -EPROTO : 0;
}

int proto_client_list(struct proto_client *c, const char *path,
		      proto_entry_fn *fn, void *arg)
{
	struct list_ctx x = {.fn = fn, .arg = arg};
	struct waiter w = {.on_frame = on_list, .ctx = &x};

	return request(c,
		       proto_build_path(c->out, PROTO_MAX_FRAME, PROTO_LIST,
					proto_client_new_id(c), path),
		       &w);
}

int proto_client_stat(struct proto_client *c, const char *path,
		      struct proto_stat *st)
{
	struct proto_frame reply;
	int r = call(c,
		     proto_build_path(c->out, PROTO_MAX_FRAME, PROTO_STAT,
				      proto_client_new_id(c), path),
		     PROTO_STAT_REPLY, &reply);

	if (r < 0)
		return r;
	return proto_parse_stat(&reply, st) ? -EPROTO : 0;
}

int proto_client_exists(struct proto_client *c, const char *path)
{
	struct proto_frame reply;
	bool yes;
	int r = call(c,
		     proto_build_path(c->out, PROTO_MAX_FRAME, PROTO_EXISTS,
				      proto_client_new_id(c), path),
		     PROTO_EXISTS_REPLY, &reply);

	if (r < 0)
		return r;
	return proto_parse_exists(&reply, &yes) ? -EPROTO : yes;
}

int proto_client_mkdir(struct proto_client *c, const char *path, uint32_t mode,
		       uint32_t flags)
{
	struct proto_frame reply;

	return call(c,
		    proto_build_mkdir(c->out, PROTO_MAX_FRAME,
				      proto_client_new_id(c), path, mode,
				      flags),
		    PROTO_OK, &reply);
}

int proto_client_rename(struct proto_client *c, const char *from,
			const char *to)
{
	struct proto_frame reply;

	return call(c,
		    proto_build_rename(c->out, PROTO_MAX_FRAME,
				       proto_client_new_id(c), from, to),
		    PROTO_OK, &reply);
}

int proto_client_remove(struct proto_client *c, const char *path,
			uint32_t flags)
{
	struct proto_frame reply;

	return call(c,
		    proto_build_remove(c->out, PROTO_MAX_FRAME,
				       proto_client_new_id(c), path, flags),
		    PROTO_OK, &reply);
}

int proto_client_clean(struct proto_client *c, uint32_t *killed,
		       uint64_t *removed)
{
	struct proto_frame reply;
	uint32_t k;
	uint64_t n;
	int r = call(c,
		     proto_build_empty(c->out, PROTO_MAX_FRAME, PROTO_CLEAN,
				       proto_client_new_id(c)),
		     PROTO_OK, &reply);

	if (r < 0)
		return r;
	if (proto_parse_clean(&reply, &k, &n))
		return -EPROTO;
	if (killed)
		*killed = k;
	if (removed)
		*removed = n;
	return 0;
}

int proto_client_reseed(struct proto_client *c, const void *p, size_t n)
{
	struct proto_frame reply;

	return call(c,
		    proto_build_data(c->out, PROTO_MAX_FRAME, PROTO_RESEED, 0,
				     proto_client_new_id(c), p, n),
		    PROTO_OK, &reply);
}

int proto_client_shutdown(struct proto_client *c)
{
	struct proto_frame reply;

	return call(c,
		    proto_build_empty(c->out, PROTO_MAX_FRAME, PROTO_SHUTDOWN,
				      proto_client_new_id(c)),
		    PROTO_OK, &reply);
}
