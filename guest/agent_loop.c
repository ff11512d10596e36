/* The agent's event loop: channel I/O, output queue, request dispatch. */
#include "guest/agent.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/util.h"

size_t agent_out_len(const struct agent *a)
{
	return a->out.end - a->out.start;
}

/* Make room for n more bytes at the end of the output queue. */
static int out_reserve(struct agent_out *o, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (o->start && o->cap - o->end < n) {
		memmove(o->data, o->data + o->start, o->end - o->start);
		o->end -= o->start;
		o->start = 0;
	}
	if (o->cap - o->end >= n)
		return 0;

	cap = MAX(o->cap * 2, o->end + n);
	p = realloc(o->data, cap);
	if (!p)
		return -ENOMEM;
	o->data = p;
	o->cap = cap;
	return 0;
}

void agent_msg_begin(struct agent *a, struct proto_msg *m, uint16_t type,
		     uint32_t id, size_t cap)
{
	struct agent_out *o = &a->out;

	cap = MIN(cap, (size_t)PROTO_MAX_PAYLOAD) + PROTO_HDR_SIZE;
	if (out_reserve(o, cap) < 0)
		cap = 0;
	proto_msg_begin(m, o->data + o->end, cap, type, 0, id);
}

void agent_msg_send(struct agent *a, struct proto_msg *m)
{
	long n = proto_msg_end(m);

	if (n > 0)
		a->out.end += n;
}

void agent_reply_empty(struct agent *a, uint16_t type, uint32_t id)
{
	struct proto_msg m;

	agent_msg_begin(a, &m, type, id, 0);
	agent_msg_send(a, &m);
}

static void reply_error_v(struct agent *a, uint32_t id, uint32_t code,
			  const char *fmt, va_list ap)
{
	char msg[512];
	struct proto_msg m;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	agent_msg_begin(a, &m, PROTO_ERROR, id, sizeof(msg) + 16);
	proto_put_u32(&m, code);
	proto_put_str(&m, msg);
	agent_msg_send(a, &m);
}

void agent_reply_error(struct agent *a, uint32_t id, uint32_t code,
		       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_error_v(a, id, code, fmt, ap);
	va_end(ap);
}

void agent_reply_errno(struct agent *a, uint32_t id, int err, const char *what)
{
	agent_reply_error(a, id, proto_err_from_errno(err), "%s: %s", what,
			  strerror(err < 0 ? -err : err));
}

struct agent_req *agent_req_find(struct agent *a, uint32_t id)
{
	for (size_t i = 0; i < ARRAY_SIZE(a->reqs); i++)
		if (a->reqs[i].kind != REQ_FREE && a->reqs[i].id == id)
			return &a->reqs[i];
	return NULL;
}

struct agent_req *agent_req_new(struct agent *a, uint32_t id,
				enum agent_req_kind kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(a->reqs); i++) {
		struct agent_req *r = &a->reqs[i];

		if (r->kind != REQ_FREE)
			continue;
		memset(r, 0, sizeof(*r));
		r->kind = kind;
		r->id = id;
		return r;
	}
	return NULL;
}

void agent_req_free(struct agent_req *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = REQ_FREE;
}

static void on_hello(struct agent *a, const struct proto_frame *f)
{
	struct proto_cur c;
	uint32_t version;
	const char *root;
	int err;

	proto_cur_init(&c, f);
	version = proto_get_u32(&c);
	proto_get_u64(&c);
	root = proto_get_str(&c, PROTO_MAX_PATH);
	if (proto_cur_done(&c))
		return agent_reply_error(a, f->id, PROTO_E_BAD_PAYLOAD,
					 "HELLO: malformed payload");
	if (version != PROTO_VERSION)
		return agent_reply_error(a, f->id, PROTO_E_VERSION,
					 "HELLO: version %u, agent speaks %u",
					 version, PROTO_VERSION);
	if (a->hello_done)
		return agent_reply_error(a, f->id, PROTO_E_WRONG_ORDER,
					 "HELLO: already answered");

	a->hello_done = true;
	err = *root ? agent_path_init(a, root, a->workdir) : 0;
	if (err)
		return agent_reply_errno(a, f->id, err, "HELLO: sandbox root");
	agent_reply_empty(a, PROTO_OK, f->id);
}

static void on_ping(struct agent *a, const struct proto_frame *f)
{
	if (f->len)
		return agent_reply_error(a, f->id, PROTO_E_BAD_PAYLOAD,
					 "PING: takes no payload");
	agent_reply_empty(a, PROTO_PONG, f->id);
}

static void on_shutdown(struct agent *a, const struct proto_frame *f)
{
	if (f->len)
		return agent_reply_error(a, f->id, PROTO_E_BAD_PAYLOAD,
					 "SHUTDOWN: takes no payload");
	agent_reply_empty(a, PROTO_OK, f->id);
	a->shutting_down = true;
}

static const struct {
	void (*fn)(struct agent *a, const struct proto_frame *f);
	bool opens; /* starts a request under a fresh id */
} handlers[] = {
    [PROTO_HELLO] = {on_hello, true},
    [PROTO_PING] = {on_ping, true},
    [PROTO_EXEC] = {agent_exec_start, true},
    [PROTO_STDIN] = {agent_exec_stdin, false},
    [PROTO_KILL] = {agent_exec_kill, false},
    [PROTO_WRITE_OPEN] = {agent_files_request, true},
    [PROTO_WRITE_CHUNK] = {agent_write_chunk, false},
    [PROTO_WRITE_END] = {agent_write_end, false},
    [PROTO_READ_OPEN] = {agent_files_request, true},
    [PROTO_LIST] = {agent_files_request, true},
    [PROTO_STAT] = {agent_files_request, true},
    [PROTO_EXISTS] = {agent_files_request, true},
    [PROTO_MKDIR] = {agent_files_request, true},
    [PROTO_RENAME] = {agent_files_request, true},
    [PROTO_REMOVE] = {agent_files_request, true},
    [PROTO_CLEAN] = {agent_clean, true},
    [PROTO_RESEED] = {agent_reseed, true},
    [PROTO_SHUTDOWN] = {on_shutdown, true},
};

static void handle_frame(struct agent *a, const struct proto_frame *f)
{
	const char *name = proto_type_name(f->type);

	if (f->type >= ARRAY_SIZE(handlers) || !handlers[f->type].fn)
		return agent_reply_error(a, f->id, PROTO_E_BAD_TYPE,
					 "frame type %u is not a request",
					 f->type);
	if (handlers[f->type].opens && f->id == 0)
		return agent_reply_error(a, f->id, PROTO_E_INVALID,
					 "%s: request id 0 is reserved", name);
	if (handlers[f->type].opens && agent_req_find(a, f->id))
		return agent_reply_error(a, f->id, PROTO_E_DUPLICATE_ID,
					 "%s: request id %u is in use", name,
					 f->id);
	if (a->shutting_down)
		return agent_reply_error(a, f->id, PROTO_E_BUSY,
					 "%s: shutting down", name);
	handlers[f->type].fn(a, f);
}

static void read_channel(struct agent *a)
{
	struct proto_frame f;
	size_t room;
	uint8_t *dst = proto_reader_space(&a->rd, &room);
	ssize_t n = read(a->chan, dst, room);
	int r;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		a->channel_eof = true;
		return;
	}
	proto_reader_commit(&a->rd, n);

	while ((r = proto_reader_next(&a->rd, &f)) != 0) {
		if (r > 0)
			handle_frame(a, &f);
		else
			agent_reply_error(a, f.id, PROTO_E_BAD_LENGTH,
					  "%s: payload of %u bytes exceeds %u",
					  proto_type_name(f.type), f.len,
					  PROTO_MAX_PAYLOAD);
	}
}

static void flush_out(struct agent *a)
{
	struct agent_out *o = &a->out;

	while (o->end > o->start) {
		ssize_t n =
		    write(a->chan, o->data + o->start, o->end - o->start);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* Nobody is listening: drop what is queued. */
			a->channel_eof = true;
			o->start = o->end = 0;
			return;
		}
		o->start += n;
	}
	o->start = o->end = 0;
}

/* Queue file data for open reads; true when some still want more. */
static bool pump_reads(struct agent *a)
{
	bool active = true;

	while (active && agent_out_len(a) < AGENT_OUT_PAUSE) {
		active = false;
		for (size_t i = 0; i < ARRAY_SIZE(a->reqs); i++)
			if (a->reqs[i].kind == REQ_READ)
				active |= agent_read_pump(a, &a->reqs[i]);
	}
	return active;
}

static bool stdin_backlog(const struct agent *a)
{
	for (size_t i = 0; i < ARRAY_SIZE(a->reqs); i++)
		if (a->reqs[i].kind == REQ_EXEC &&
		    a->reqs[i].x.in_len >= AGENT_STDIN_CAP)
			return true;
	return false;
}

enum watch { W_CHAN, W_SIGNAL, W_TIMER, W_STDOUT, W_STDERR, W_STDIN };

struct poll_set {
	struct pollfd fds[3 + 3 * PROTO_MAX_INFLIGHT];
	struct agent_req *req[3 + 3 * PROTO_MAX_INFLIGHT];
	enum watch what[3 + 3 * PROTO_MAX_INFLIGHT];
	size_t n;
};

static void watch(struct poll_set *s, int fd, short events, struct agent_req *r,
		  enum watch what)
{
	if (fd < 0 || !events)
		return;
	s->fds[s->n] = (struct pollfd){.fd = fd, .events = events};
	s->req[s->n] = r;
	s->what[s->n] = what;
	s->n++;
}

static void watch_exec(struct agent *a, struct poll_set *s, struct agent_req *r)
{
	bool room = agent_out_len(a) < AGENT_OUT_PAUSE;

	if (room) {
		watch(s, r->x.out_fd, POLLIN, r, W_STDOUT);
		watch(s, r->x.err_fd, POLLIN, r, W_STDERR);
	}
	if (r->x.in_len || r->x.stdin_eof)
		watch(s, r->x.in_fd, POLLOUT, r, W_STDIN);
}

static void build_polls(struct agent *a, struct poll_set *s)
{
	short chan = POLLIN;

	if (agent_out_len(a) >= AGENT_OUT_STOP || stdin_backlog(a) ||
	    a->shutting_down)
		chan = 0;
	if (agent_out_len(a))
		chan |= POLLOUT;

	s->n = 0;
	watch(s, a->chan, chan, NULL, W_CHAN);
	watch(s, a->sig_fd, POLLIN, NULL, W_SIGNAL);
	watch(s, a->timer_fd, POLLIN, NULL, W_TIMER);
	for (size_t i = 0; i < ARRAY_SIZE(a->reqs); i++)
		if (a->reqs[i].kind == REQ_EXEC)
			watch_exec(a, s, &a->reqs[i]);
}

static void drain_fd(int fd)
{
	uint8_t buf[sizeof(struct signalfd_siginfo) * 8];
	ssize_t n;

	do
		n = read(fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
}

static void handle_event(struct agent *a, struct poll_set *s, size_t i)
{
	struct agent_req *r = s->req[i];

	switch (s->what[i]) {
	case W_CHAN:
		if (s->fds[i].revents & POLLOUT)
			flush_out(a);
		if (s->fds[i].revents & (POLLIN | POLLHUP | POLLERR))
			read_channel(a);
		break;
	case W_SIGNAL:
		drain_fd(a->sig_fd);
		agent_reap(a);
		break;
	case W_TIMER:
		drain_fd(a->timer_fd);
		agent_check_timeouts(a);
		break;
	case W_STDOUT:
	case W_STDERR:
		/* An earlier event may have finished this request. */
		if (r->kind == REQ_EXEC)
			agent_exec_output(a, r, s->what[i] == W_STDOUT ? 1 : 2);
		break;
	case W_STDIN:
		if (r->kind == REQ_EXEC)
			agent_exec_feed(a, r);
		break;
	}
}

int agent_run(struct agent *a)
{
	struct poll_set *s = malloc(sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (;;) {
		bool reading = pump_reads(a);
		int timeout;

		flush_out(a);
		if (a->channel_eof || (a->shutting_down && !agent_out_len(a)))
			break;

		build_polls(a, s);
		timeout =
		    reading && agent_out_len(a) < AGENT_OUT_PAUSE ? 0 : -1;
		if (poll(s->fds, s->n, timeout) < 0 && errno != EINTR) {
			free(s);
			return -errno;
		}
		for (size_t i = 0; i < s->n; i++)
			if (s->fds[i].revents)
				handle_event(a, s, i);
	}
	free(s);
	return 0;
}
