/* Tests for the worker's relay: what a tenant may send, what a guest may
 * answer. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/tenant.h"
#include "worker/relay.h"

static struct relay r;

static void setup(void)
{
	relay_init(&r);
}

TestSuite(relay, .init = setup);

static struct proto_frame frame(uint16_t type, uint32_t id, const void *p,
				uint32_t len)
{
	return (struct proto_frame){
	    .len = len, .type = type, .id = id, .payload = p};
}

static enum relay_verdict tenant(uint16_t type, uint32_t id, uint32_t *code)
{
	struct proto_frame f = frame(type, id, NULL, 0);

	return relay_from_tenant(&r, &f, code);
}

static enum relay_verdict tenant_data(uint16_t type, uint32_t id, const void *p,
				      uint32_t len, uint32_t *code)
{
	struct proto_frame f = frame(type, id, p, len);

	return relay_from_tenant(&r, &f, code);
}

static enum relay_verdict guest(uint16_t type, uint32_t id)
{
	struct proto_frame f = frame(type, id, NULL, 0);

	return relay_from_guest(&r, &f);
}

static enum relay_verdict guest_error(uint32_t id)
{
	uint8_t buf[64];
	long n = proto_build_path(buf, sizeof(buf), PROTO_STAT, id, "x");
	struct proto_frame f;

	/* An ERROR payload: u32 code, str message ("x"). */
	cr_assert_gt(n, 0);
	proto_get_header(buf, &f);
	f.type = PROTO_ERROR;
	f.payload = buf + PROTO_HDR_SIZE;
	memcpy(buf + PROTO_HDR_SIZE, "\001\000\000\000\001\000\000\000x", 9);
	f.len = 10;
	buf[PROTO_HDR_SIZE + 9] = 0;
	return relay_from_guest(&r, &f);
}

static enum relay_verdict guest_exit(uint32_t id)
{
	uint8_t p[13] = {0};
	struct proto_frame f = frame(PROTO_EXIT, id, p, sizeof(p));

	return relay_from_guest(&r, &f);
}

static void open_exec(uint32_t id, uint32_t flags)
{
	uint32_t code;

	/* Only the flags word matters to the relay. */
	cr_assert_eq(tenant_data(PROTO_EXEC, id, &flags, 4, &code),
		     RELAY_FORWARD);
}

Test(relay, requests_pass_and_their_replies_come_back)
{
	uint32_t code;

	cr_assert_eq(tenant(PROTO_PING, 1, &code), RELAY_FORWARD);
	cr_assert_eq(relay_open_count(&r), 1);
	cr_assert_eq(guest(PROTO_PONG, 1), RELAY_FORWARD);
	cr_assert_eq(relay_open_count(&r), 0);
}

Test(relay, host_only_requests_and_host_ids_are_forbidden)
{
	uint16_t types[] = {PROTO_HELLO, PROTO_CLEAN, PROTO_RESEED,
			    PROTO_SHUTDOWN};
	uint32_t code;

	for (unsigned i = 0; i < 4; i++) {
		cr_assert_eq(tenant(types[i], 5, &code), RELAY_REFUSE);
		cr_assert_eq(code, TENANT_E_FORBIDDEN);
	}
	cr_assert_eq(tenant(PROTO_PING, TENANT_ID_HOST | 5, &code),
		     RELAY_REFUSE);
	cr_assert_eq(code, TENANT_E_FORBIDDEN);
	cr_assert_eq(tenant(PROTO_PING, 0, &code), RELAY_REFUSE);
	cr_assert_eq(code, PROTO_E_INVALID);
	cr_assert_eq(tenant(PROTO_OK, 3, &code), RELAY_REFUSE);
	cr_assert_eq(code, PROTO_E_BAD_TYPE);
	cr_assert_eq(relay_open_count(&r), 0);
}

Test(relay, duplicate_ids_are_refused)
{
	uint32_t code;

	cr_assert_eq(tenant(PROTO_PING, 1, &code), RELAY_FORWARD);
	cr_assert_eq(tenant(PROTO_STAT, 1, &code), RELAY_REFUSE);
	cr_assert_eq(code, PROTO_E_DUPLICATE_ID);
}

Test(relay, table_full_is_busy)
{
	uint32_t code;

	for (uint32_t id = 1; id <= RELAY_MAX_OPEN; id++)
		cr_assert_eq(tenant(PROTO_PING, id, &code), RELAY_FORWARD);
	cr_assert_eq(tenant(PROTO_PING, 999, &code), RELAY_REFUSE);
	cr_assert_eq(code, PROTO_E_BUSY);
}

Test(relay, stdin_needs_an_exec_that_asked_for_it)
{
	uint32_t code;

	cr_assert_eq(tenant(PROTO_STDIN, 4, &code), RELAY_REFUSE);
	cr_assert_eq(code, PROTO_E_UNKNOWN_ID);
	open_exec(4, 0);
	cr_assert_eq(tenant(PROTO_STDIN, 4, &code), RELAY_REFUSE);
	cr_assert_eq(code, PROTO_E_WRONG_ORDER);

	open_exec(5, PROTO_EXEC_STDIN);
	cr_assert_eq(tenant(PROTO_STDIN, 5, &code), RELAY_FORWARD);
	{
		struct proto_frame f = frame(PROTO_STDIN, 5, NULL, 0);

		f.flags = PROTO_F_EOF;
		cr_assert_eq(relay_from_tenant(&r, &f, &code), RELAY_FORWARD);
	}
	cr_assert_eq(tenant(PROTO_STDIN, 5, &code), RELAY_REFUSE);
	cr_assert_eq(code, PROTO_E_WRONG_ORDER);
}

Test(relay, kill_needs_a_valid_signal)
{
	uint32_t sig = 9, bad = 0, code;

	open_exec(4, 0);
	cr_assert_eq(tenant_data(PROTO_KILL, 4, &sig, 4, &code), RELAY_FORWARD);
	cr_assert_eq(tenant_data(PROTO_KILL, 4, &bad, 4, &code), RELAY_REFUSE);
	cr_assert_eq(code, PROTO_E_INVALID);
	cr_assert_eq(tenant_data(PROTO_KILL, 4, &sig, 2, &code), RELAY_REFUSE);
}

Test(relay, output_streams_until_exit)
{
	open_exec(4, 0);
	cr_assert_eq(guest(PROTO_STDOUT, 4), RELAY_FORWARD);
	cr_assert_eq(guest(PROTO_STDERR, 4), RELAY_FORWARD);
	cr_assert_eq(guest_exit(4), RELAY_FORWARD);
	cr_assert_eq(relay_open_count(&r), 0);
	cr_assert_eq(guest(PROTO_STDOUT, 4), RELAY_EVICT);
}

Test(relay, replies_nobody_asked_for_evict)
{
	cr_assert_eq(guest(PROTO_PONG, 9), RELAY_EVICT);
	cr_assert_eq(guest_error(9), RELAY_EVICT);
	cr_assert_eq(guest(0x99, 9), RELAY_EVICT);
	cr_assert(strstr(r.why, "malformed"), "%s", r.why);
}

Test(relay, replies_of_the_wrong_kind_evict)
{
	uint32_t code;

	cr_assert_eq(tenant(PROTO_PING, 1, &code), RELAY_FORWARD);
	cr_assert_eq(guest(PROTO_STDOUT, 1), RELAY_EVICT);
	cr_assert(strstr(r.why, "PING"), "%s", r.why);
}

Test(relay, hello_after_boot_evicts)
{
	uint8_t buf[64];
	long n = proto_build_hello(buf, sizeof(buf), 0, 0, "again");
	struct proto_frame f;

	cr_assert_gt(n, 0);
	proto_get_header(buf, &f);
	f.payload = buf + PROTO_HDR_SIZE;
	cr_assert_eq(relay_from_guest(&r, &f), RELAY_EVICT);
}

Test(relay, host_ids_go_to_the_host)
{
	cr_assert_eq(guest(PROTO_PONG, TENANT_ID_HOST | 1), RELAY_HOST);
}

Test(relay, error_crossing_a_closed_request_is_dropped)
{
	uint32_t sig = 9, code;

	open_exec(4, 0);
	cr_assert_eq(tenant_data(PROTO_KILL, 4, &sig, 4, &code), RELAY_FORWARD);
	cr_assert_eq(guest_exit(4), RELAY_FORWARD);
	/* The agent answers the KILL it saw after the exit. */
	cr_assert_eq(guest_error(4), RELAY_DROP);
}

Test(relay, failed_write_drops_chunks_until_its_end)
{
	uint32_t code;

	cr_assert_eq(tenant(PROTO_WRITE_OPEN, 6, &code), RELAY_FORWARD);
	cr_assert_eq(tenant(PROTO_WRITE_CHUNK, 6, &code), RELAY_FORWARD);
	cr_assert_eq(guest_error(6), RELAY_FORWARD);
	cr_assert_eq(guest_error(6), RELAY_DROP);
	cr_assert_eq(tenant(PROTO_WRITE_CHUNK, 6, &code), RELAY_DROP);
	cr_assert_eq(tenant(PROTO_WRITE_END, 6, &code), RELAY_FORWARD);
	cr_assert_eq(relay_open_count(&r), 0);
	cr_assert_eq(guest_error(6), RELAY_DROP);
}

Test(relay, write_ends_with_ok_only_after_write_end)
{
	uint32_t code;

	cr_assert_eq(tenant(PROTO_WRITE_OPEN, 6, &code), RELAY_FORWARD);
	cr_assert_eq(guest(PROTO_OK, 6), RELAY_EVICT);
	relay_init(&r);
	cr_assert_eq(tenant(PROTO_WRITE_OPEN, 6, &code), RELAY_FORWARD);
	cr_assert_eq(tenant(PROTO_WRITE_END, 6, &code), RELAY_FORWARD);
	cr_assert_eq(tenant(PROTO_WRITE_CHUNK, 6, &code), RELAY_REFUSE);
	cr_assert_eq(guest(PROTO_OK, 6), RELAY_FORWARD);
	cr_assert_eq(relay_open_count(&r), 0);
}

Test(relay, orphans_are_dropped_and_open_writes_named)
{
	uint32_t ids[4], code;

	open_exec(4, 0);
	cr_assert_eq(tenant(PROTO_WRITE_OPEN, 6, &code), RELAY_FORWARD);
	cr_assert_eq(relay_orphan_all(&r, ids, 4), 1);
	cr_assert_eq(ids[0], 6);
	cr_assert_eq(relay_tenant_ids(&r, ids, 4), 0);
	cr_assert_eq(guest(PROTO_STDOUT, 4), RELAY_DROP);
	cr_assert_eq(guest_exit(4), RELAY_DROP);
	cr_assert_eq(guest(PROTO_OK, 6), RELAY_DROP);
	cr_assert_eq(relay_open_count(&r), 0);
}

Test(relay, queue_sends_everything_in_order)
{
	struct relay_queue q = {0};
	char big[100000], got[100000];
	int sv[2], small = 4096;
	size_t total = 0;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)i;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(
	    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	cr_assert_eq(relay_queue_put(&q, big, sizeof(big)), 0);
	cr_assert_eq(relay_queue_len(&q), sizeof(big));
	cr_assert_eq(relay_queue_flush(&q, sv[0]), -EAGAIN,
		     "a socket buffer smaller than the data");
	cr_assert_eq(relay_queue_put(&q, "tail", 4), 0);

	while (total < sizeof(big)) {
		ssize_t n = read(sv[1], got + total, sizeof(got) - total);

		cr_assert_gt(n, 0);
		total += n;
		relay_queue_flush(&q, sv[0]);
	}
	cr_assert_eq(memcmp(got, big, sizeof(big)), 0);
	cr_assert_eq(relay_queue_flush(&q, sv[0]), 0);
	cr_assert_eq(read(sv[1], got, 4), 4);
	cr_assert_eq(memcmp(got, "tail", 4), 0);
	relay_queue_free(&q);
	close(sv[0]);
	close(sv[1]);
}

Test(relay, queue_reports_a_peer_that_left)
{
	struct relay_queue q = {0};
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	cr_assert_eq(relay_queue_put(&q, "x", 1), 0);
	cr_assert_eq(relay_queue_flush(&q, sv[0]), -EPIPE);
	relay_queue_free(&q);
	close(sv[0]);
}
