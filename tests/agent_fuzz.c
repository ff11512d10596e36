/* Tests that the agent rejects malformed frames and survives random ones. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/agent_harness.h"

static struct agent_child t;

static void start(void)
{
	agent_child_start(&t, NULL);
}

static void stop(void)
{
	agent_child_stop(&t);
}

TestSuite(agent_input, .init = start, .fini = stop, .timeout = 120);

static uint8_t frame[PROTO_MAX_FRAME + 16];

/* Send one frame and return the code of the ERROR it must get. */
static uint32_t rejected(uint16_t type, uint16_t flags, uint32_t id,
			 const void *payload, size_t len)
{
	struct proto_frame f;

	cr_assert_eq(
	    proto_client_send(
		&t.c, frame, agent_frame(frame, type, flags, id, payload, len)),
	    0);
	agent_recv_id(&t, id, &f);
	return agent_error_code(&f);
}

Test(agent_input, unknown_and_reply_types_are_rejected)
{
	cr_assert_eq(rejected(999, 0, 1, NULL, 0), PROTO_E_BAD_TYPE);
	cr_assert_eq(rejected(0, 0, 2, NULL, 0), PROTO_E_BAD_TYPE);
	cr_assert_eq(rejected(PROTO_EXIT, 0, 3, NULL, 0), PROTO_E_BAD_TYPE);
	cr_assert_eq(rejected(PROTO_ERROR, 0, 4, "xxxx", 4), PROTO_E_BAD_TYPE);
	cr_assert_eq(proto_client_ping(&t.c), 0);
}

Test(agent_input, oversized_frame_is_skipped_whole)
{
	struct proto_frame f;
	size_t len = PROTO_MAX_PAYLOAD + 100;

	proto_put_header(frame, len, PROTO_PING, 0, 9);
	cr_assert_eq(proto_client_send(&t.c, frame, PROTO_HDR_SIZE), 0);
	/* The payload may even look like frames: it must be ignored. */
	for (size_t at = 0; at < len; at += PROTO_HDR_SIZE) {
		size_t n = MIN((size_t)PROTO_HDR_SIZE, len - at);

		proto_put_header(frame, 0, PROTO_PING, 0, 10);
		cr_assert_eq(proto_client_send(&t.c, frame, n), 0);
	}
	agent_recv_id(&t, 9, &f);
	cr_assert_eq(agent_error_code(&f), PROTO_E_BAD_LENGTH);
	cr_assert_eq(proto_client_ping(&t.c), 0);
}

Test(agent_input, bad_payloads_are_rejected)
{
	static const uint8_t junk[] = {1, 2, 3};
	static const uint8_t huge_str[] = {0xff, 0xff, 0xff, 0x7f, 'a', 0};

	cr_assert_eq(rejected(PROTO_PING, 0, 1, junk, 1), PROTO_E_BAD_PAYLOAD);
	cr_assert_eq(rejected(PROTO_EXEC, 0, 2, junk, 3), PROTO_E_BAD_PAYLOAD);
	cr_assert_eq(rejected(PROTO_STAT, 0, 3, huge_str, sizeof(huge_str)),
		     PROTO_E_BAD_PAYLOAD);
	cr_assert_eq(rejected(PROTO_MKDIR, 0, 4, junk, 3), PROTO_E_BAD_PAYLOAD);
	cr_assert_eq(rejected(PROTO_RESEED, 0, 5, NULL, 0),
		     PROTO_E_BAD_PAYLOAD);
	cr_assert_eq(rejected(PROTO_CLEAN, 0, 6, junk, 2), PROTO_E_BAD_PAYLOAD);
	cr_assert_eq(rejected(PROTO_PING, 0, 0, NULL, 0), PROTO_E_INVALID);
	cr_assert_eq(proto_client_ping(&t.c), 0);
}

Test(agent_input, exec_with_empty_argv_or_bad_env_is_rejected)
{
	uint8_t buf[256];
	struct proto_frame f;
	struct proto_msg m;

	proto_msg_begin(&m, buf, sizeof(buf), PROTO_EXEC, 0, 7);
	proto_put_u32(&m, 0);
	proto_put_u64(&m, 0);
	proto_put_str(&m, "");
	proto_put_u32(&m, 1);
	proto_put_str(&m, "true");
	proto_put_u32(&m, 1);
	proto_put_str(&m, "NOEQUALS");
	cr_assert_eq(proto_client_send(&t.c, buf, proto_msg_end(&m)), 0);
	agent_recv_id(&t, 7, &f);
	cr_assert_eq(agent_error_code(&f), PROTO_E_BAD_PAYLOAD);

	proto_msg_begin(&m, buf, sizeof(buf), PROTO_EXEC, 0, 8);
	proto_put_u32(&m, 0);
	proto_put_u64(&m, 0);
	proto_put_str(&m, "");
	proto_put_u32(&m, 0);
	proto_put_u32(&m, 0);
	cr_assert_eq(proto_client_send(&t.c, buf, proto_msg_end(&m)), 0);
	agent_recv_id(&t, 8, &f);
	cr_assert_eq(agent_error_code(&f), PROTO_E_BAD_PAYLOAD);
}

Test(agent_input, chunks_for_unopened_ids_are_rejected)
{
	cr_assert_eq(rejected(PROTO_STDIN, 0, 40, "x", 1), PROTO_E_UNKNOWN_ID);
	cr_assert_eq(rejected(PROTO_WRITE_CHUNK, 0, 41, "x", 1),
		     PROTO_E_UNKNOWN_ID);
	cr_assert_eq(rejected(PROTO_WRITE_END, 0, 42, NULL, 0),
		     PROTO_E_UNKNOWN_ID);
	cr_assert_eq(rejected(PROTO_KILL, 0, 43, "\x09\0\0\0", 4),
		     PROTO_E_UNKNOWN_ID);
}

/* Open a write under id and leave it open. */
static void open_write(uint32_t id, const char *path)
{
	uint8_t buf[256];
	struct proto_msg m;

	proto_msg_begin(&m, buf, sizeof(buf), PROTO_WRITE_OPEN, 0, id);
	proto_put_u32(&m, 0644);
	proto_put_u32(&m, 0);
	proto_put_str(&m, path);
	cr_assert_eq(proto_client_send(&t.c, buf, proto_msg_end(&m)), 0);
}

Test(agent_input, duplicate_ids_and_wrong_order_are_rejected)
{
	struct proto_frame f;

	open_write(50, "w");
	cr_assert_eq(rejected(PROTO_PING, 0, 50, NULL, 0),
		     PROTO_E_DUPLICATE_ID);
	cr_assert_eq(rejected(PROTO_STDIN, 0, 50, "x", 1), PROTO_E_WRONG_ORDER);
	cr_assert_eq(rejected(PROTO_KILL, 0, 50, "\x09\0\0\0", 4),
		     PROTO_E_WRONG_ORDER);

	/* The write itself is unharmed. */
	cr_assert_eq(proto_client_send(&t.c, frame,
				       agent_frame(frame, PROTO_WRITE_CHUNK, 0,
						   50, "abc", 3)),
		     0);
	cr_assert_eq(proto_client_send(
			 &t.c, frame,
			 agent_frame(frame, PROTO_WRITE_END, 0, 50, NULL, 0)),
		     0);
	agent_recv_id(&t, 50, &f);
	cr_assert_eq(f.type, PROTO_OK);
	cr_assert_eq(proto_client_exists(&t.c, "w"), 1);
}

Test(agent_input, too_many_open_requests_get_busy)
{
	struct proto_frame f;
	char name[16];

	for (uint32_t i = 0; i < PROTO_MAX_INFLIGHT; i++) {
		snprintf(name, sizeof(name), "w%u", i);
		open_write(100 + i, name);
	}
	open_write(1000, "one-too-many");
	agent_recv_id(&t, 1000, &f);
	cr_assert_eq(agent_error_code(&f), PROTO_E_BUSY);
	cr_assert_eq(proto_client_ping(&t.c), 0);
}

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	r->s ^= r->s << 13;
	r->s ^= r->s >> 7;
	r->s ^= r->s << 17;
	return r->s;
}

/* A payload that parses far enough to reach the handlers: small
 * numbers and short paths over a tiny alphabet, inside the root. */
static size_t plausible_payload(struct rng *r, uint8_t *p)
{
	static const char alphabet[] = "ab/.";
	struct proto_msg m;
	char path[16];
	size_t n = rnd(r) % sizeof(path);

	for (size_t i = 0; i < n; i++)
		path[i] = alphabet[rnd(r) % 4];
	path[n] = '\0';
	proto_msg_begin(&m, p - PROTO_HDR_SIZE, 256, 0, 0, 0);
	for (int i = rnd(r) % 3; i > 0; i--)
		proto_put_u32(&m, rnd(r) % 4);
	proto_put_str(&m, path);
	if (rnd(r) % 2)
		proto_put_str(&m, path);
	return m.len - PROTO_HDR_SIZE;
}

static size_t random_frame(struct rng *r, uint8_t *buf)
{
	static const uint16_t types[] = {
	    1,	  2,	3,    4,    5,	  6,  7,  8,   9,
	    10,	  11,	12,   13,   14,	  15, 16, 18,  0x80,
	    0x81, 0x82, 0x85, 0x86, 0x8a, 0,  19, 999, 0xffff,
	};
	uint16_t type = types[rnd(r) % ARRAY_SIZE(types)];
	uint16_t flags = rnd(r) % 4 ? 0 : rnd(r);
	uint32_t id = rnd(r) % 8 ? 1 + rnd(r) % 200 : rnd(r) % 0x7fffffff;
	uint8_t *p = buf + PROTO_HDR_SIZE;
	size_t len;

	if (rnd(r) % 2) {
		len = plausible_payload(r, p);
	} else {
		len = rnd(r) % 8 ? rnd(r) % 48 : rnd(r) % 2048;
		for (size_t i = 0; i < len; i++)
			p[i] = rnd(r);
	}
	proto_put_header(buf, len, type, flags, id);
	return PROTO_HDR_SIZE + len;
}

#define LAST_ID 0x7fffffffu

struct drain {
	int fd;
	unsigned long frames;
	bool bad_reply;
};

/* Read every reply until the final PONG, checking each is well formed. */
static void *drain_replies(void *arg)
{
	struct drain *d = arg;
	struct proto_reader rd;
	struct proto_frame f;

	proto_reader_init(&rd);
	for (;;) {
		size_t room;
		uint8_t *dst = proto_reader_space(&rd, &room);
		struct pollfd p = {.fd = d->fd, .events = POLLIN};
		ssize_t n;
		int r;

		poll(&p, 1, -1);
		n = read(d->fd, dst, room);
		if (n == 0)
			break;
		if (n < 0)
			continue;
		proto_reader_commit(&rd, n);
		while ((r = proto_reader_next(&rd, &f)) != 0) {
			d->frames++;
			if (r < 0 || proto_check_reply(&f))
				d->bad_reply = true;
			if (r > 0 && f.id == LAST_ID && f.type == PROTO_PONG)
				goto out;
		}
	}
out:
	proto_reader_free(&rd);
	return NULL;
}

Test(agent_input, random_frames_never_crash_or_hang_the_agent)
{
	struct drain d = {.fd = t.fd};
	struct rng r = {.s = 0x9e3779b97f4a7c15ull};
	uint8_t *buf = malloc(PROTO_MAX_FRAME);
	pthread_t th;
	int st;

	cr_assert_eq(pthread_create(&th, NULL, drain_replies, &d), 0);
	for (int i = 0; i < 100000; i++) {
		size_t n = random_frame(&r, buf);

		cr_assert_eq(proto_client_send(&t.c, buf, n), 0,
			     "agent stopped reading at frame %d", i);
	}
	cr_assert_eq(
	    proto_client_send(
		&t.c, buf, agent_frame(buf, PROTO_PING, 0, LAST_ID, NULL, 0)),
	    0);
	pthread_join(th, NULL);

	cr_assert_not(d.bad_reply, "the agent sent a malformed frame");
	cr_assert_gt(d.frames, 50000);
	cr_assert_eq(waitpid(t.pid, &st, WNOHANG), 0, "the agent died");
	cr_assert_eq(proto_client_ping(&t.c), 0);
	free(buf);
}
