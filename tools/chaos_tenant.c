/* vmpool-chaos: tenants that leave mid-request or send nonsense. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "proto/proto.h"
#include "proto/tenant.h"
#include "tools/chaos.h"

#define ANSWER_NS  (5ull * 1000000000)
#define ACQUIRE_NS (20ull * 1000000000)

/* A raw tenant connection with deadlines, which proto_client lacks. */
struct conn {
	int fd;
	struct proto_reader rd;
	uint8_t buf[512];
	int32_t slot; /* leased, or -1 */
};

static int dial(struct conn *k, const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int err;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	k->slot = -1;
	k->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (k->fd < 0)
		return -errno;

	if (connect(k->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		err = -errno;
		close(k->fd);
		return err;
	}

	err = proto_reader_init(&k->rd);
	if (err)
		close(k->fd);
	return err;
}

static void hang_up(struct conn *k)
{
	close(k->fd);
	proto_reader_free(&k->rd);
}

static int send_raw(struct conn *k, const void *p, long n)
{
	if (n < 0)
		return (int)n;
	return write_full(k->fd, p, n);
}

/* The next frame before the deadline: 1, 0 at EOF, -ETIMEDOUT, or -EPROTO
 * for a frame over the limit. */
static int next_frame(struct conn *k, struct proto_frame *f, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = {.fd = k->fd, .events = POLLIN};
		uint64_t now = now_ns();
		size_t room;
		uint8_t *dst;
		ssize_t n;
		int r = proto_reader_next(&k->rd, f);

		if (r)
			return r < 0 ? -EPROTO : 1;
		if (now >= deadline)
			return -ETIMEDOUT;
		if (poll(&p, 1, (deadline - now) / 1000000 + 1) <= 0)
			continue;

		dst = proto_reader_space(&k->rd, &room);
		n = read(k->fd, dst, room);
		if (n < 0 && errno != EINTR)
			return errno == ECONNRESET ? 0 : -errno;
		if (n == 0)
			return 0;
		if (n > 0)
			proto_reader_commit(&k->rd, n);
	}
}

/* Wait for the answer to id: its type, 0 at EOF, or -errno; a LEASED
 * answer names the slot. */
static int answer(struct conn *k, uint32_t id, uint64_t within)
{
	uint64_t deadline = now_ns() + within;
	struct proto_frame f;
	struct proto_cur cur;
	int r;

	while ((r = next_frame(k, &f, deadline)) == 1) {
		if (f.id != id)
			continue;
		if (f.type == TENANT_LEASED) {
			proto_cur_init(&cur, &f);
			k->slot = proto_get_u32(&cur);
		}
		return f.type;
	}
	return r;
}

static int acquire(struct conn *k, bool wait)
{
	struct proto_msg m;
	int r;

	proto_msg_begin(&m, k->buf, sizeof(k->buf), TENANT_ACQUIRE, 0, 1);
	proto_put_u64(&m, 0);
	r = send_raw(k, k->buf, proto_msg_end(&m));
	if (r || !wait)
		return r;

	r = answer(k, 1, ACQUIRE_NS);
	if (r == TENANT_LEASED)
		return 0;
	return r < 0 ? r : -EAGAIN;
}

static int send_exec(struct conn *k, uint32_t id, const char *line)
{
	const char *argv[] = {line, NULL};
	struct proto_exec_req req = {.argv = argv, .flags = PROTO_EXEC_SHELL};

	return send_raw(k, k->buf,
			proto_build_exec(k->buf, sizeof(k->buf), id, &req));
}

static int start_write(struct conn *k)
{
	static const char data[256] = "half a file";
	int r = send_raw(k, k->buf,
			 proto_build_write_open(k->buf, sizeof(k->buf), 2,
						"/tmp/half", 0, 0));

	if (r)
		return r;
	return send_raw(k, k->buf,
			proto_build_data(k->buf, sizeof(k->buf),
					 PROTO_WRITE_CHUNK, 0, 2, data,
					 sizeof(data)));
}

/* Leave at one of several points; the pool must take the VM back. */
static int vanish(struct conn *k, unsigned how)
{
	uint8_t half[5] = {0};
	int r;

	switch (how) {
	case 0: /* ACQUIRE sent, its answer never read */
		return acquire(k, false);
	case 1: /* half a header */
		return write_full(k->fd, half, sizeof(half));
	case 2: /* a command running */
		r = acquire(k, true);
		return r ? r : send_exec(k, 2, "sleep 3");
	case 3: /* a command flooding its output */
		r = acquire(k, true);
		return r ? r : send_exec(k, 2, "head -c 8000000 /dev/zero");
	default: /* a file half written */
		r = acquire(k, true);
		return r ? r : start_write(k);
	}
}

int chaos_tenant_vanish(struct chaos *c, uint64_t *rng)
{
	unsigned how = chaos_rand(rng, 5);
	struct conn k;
	int r = dial(&k, c->sock);

	if (r)
		return r;
	r = vanish(&k, how);
	chaos_note(c, "tenant vanished (way %u): %s", how,
		   r ? strerror(-r) : "ok");
	if (how >= 2 && !r)
		chaos_sleep_ns(chaos_rand(rng, 200) * 1000000);
	hang_up(&k);
	return r;
}

/* --- garbage --- */

/* An answer is an ERROR for the frame, or the connection closed. */
static bool answered(int r)
{
	return r == PROTO_ERROR || r == 0 || r == -ECONNRESET || r == -EPIPE;
}

static int bad_frame(struct conn *k, unsigned how, uint64_t *rng, uint32_t *id)
{
	uint8_t junk[64];

	*id = 7;
	switch (how % 4) {
	case 0: /* a type nobody knows */
		return send_raw(
		    k, k->buf,
		    proto_build_empty(k->buf, sizeof(k->buf), 0x7777, *id));
	case 1: /* a payload over the limit */
		proto_put_header(k->buf, PROTO_MAX_PAYLOAD + 1, PROTO_PING, 0,
				 *id);
		return send_raw(k, k->buf, PROTO_HDR_SIZE);
	case 2: /* a request only the host may make, under a host id */
		*id = TENANT_ID_HOST | 7;
		return send_raw(k, k->buf,
				proto_build_empty(k->buf, sizeof(k->buf),
						  PROTO_CLEAN, *id));
	default: /* an EXEC whose payload is random bytes */
		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = chaos_rand(rng, 256);
		return send_raw(k, k->buf,
				proto_build_data(k->buf, sizeof(k->buf),
						 PROTO_EXEC, 0, *id, junk,
						 sizeof(junk)));
	}
}

static int garbage(struct conn *k, unsigned how, uint64_t *rng)
{
	uint32_t id;
	int r;

	if (how >= 4) {
		r = acquire(k, true);
		if (r)
			return r;
	}
	r = bad_frame(k, how, rng, &id);
	if (r)
		return r == -EPIPE ? 0 : r;
	r = answer(k, id, ANSWER_NS);
	if (!answered(r))
		return r == -EPROTO ? -EPROTO : -ETIMEDOUT;
	/* After an oversized header the next bytes are its payload, to be
	 * dropped: a RELEASE now would be read as part of it. */
	if (r != PROTO_ERROR || how < 4 || how % 4 == 1)
		return 0;

	/* Still leased after a refused frame: RELEASE must work. */
	r = send_raw(
	    k, k->buf,
	    proto_build_empty(k->buf, sizeof(k->buf), TENANT_RELEASE, 8));
	if (r)
		return r == -EPIPE ? 0 : r;
	r = answer(k, 8, ANSWER_NS);
	return r == PROTO_OK || answered(r) ? 0 : -ETIMEDOUT;
}

int chaos_tenant_garbage(struct chaos *c, uint64_t *rng)
{
	unsigned how = chaos_rand(rng, 8);
	struct conn k;
	int r = dial(&k, c->sock);

	if (r)
		return r;
	r = garbage(&k, how, rng);
	hang_up(&k);
	chaos_note(c, "tenant garbage (way %u, %s lease, slot %d): %s", how % 4,
		   how >= 4 ? "in a" : "before a", (int)k.slot,
		   r ? strerror(-r) : "answered");
	if (r == -ETIMEDOUT || r == -EPROTO) {
		pthread_mutex_lock(&c->mu);
		c->bad_tenant_unanswered++;
		if (!c->first_bad_tenant[0])
			snprintf(c->first_bad_tenant,
				 sizeof(c->first_bad_tenant),
				 "way %u %s a lease: %s", how % 4,
				 how >= 4 ? "in" : "before", strerror(-r));
		pthread_mutex_unlock(&c->mu);
	}
	return r;
}
