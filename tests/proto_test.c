/* Tests for the protocol codec and the frame reader. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

static uint8_t buf[PROTO_MAX_FRAME + 64];

static long build_sample(uint32_t id)
{
	struct proto_msg m;

	proto_msg_begin(&m, buf, sizeof(buf), PROTO_MKDIR, 0, id);
	proto_put_u32(&m, 0755);
	proto_put_u64(&m, 0x1122334455667788ull);
	proto_put_str(&m, "a/b");
	return proto_msg_end(&m);
}

Test(proto, header_is_little_endian)
{
	long n = build_sample(0x01020304);

	cr_assert_eq(n, 12 + 4 + 8 + 4 + 4);
	cr_assert_eq(buf[0], n - 12);
	cr_assert_eq(buf[4], PROTO_MKDIR);
	cr_assert_eq(buf[8], 0x04);
	cr_assert_eq(buf[11], 0x01);
}

Test(proto, fields_round_trip)
{
	struct proto_frame f;
	struct proto_cur c;

	build_sample(7);
	proto_get_header(buf, &f);
	proto_cur_init(&c, &f);
	cr_assert_eq(proto_get_u32(&c), 0755);
	cr_assert_eq(proto_get_u64(&c), 0x1122334455667788ull);
	cr_assert_str_eq(proto_get_str(&c, 100), "a/b");
	cr_assert_eq(proto_cur_done(&c), 0);
	cr_assert_eq(f.id, 7);
}

Test(proto, short_payload_is_rejected_not_read_past)
{
	struct proto_frame f;
	struct proto_cur c;

	build_sample(7);
	proto_get_header(buf, &f);
	f.len -= 2;
	proto_cur_init(&c, &f);
	proto_get_u32(&c);
	proto_get_u64(&c);
	cr_assert_null(proto_get_str(&c, 100));
	cr_assert_eq(proto_cur_done(&c), -EBADMSG);
}

Test(proto, strings_need_terminator_and_no_inner_nul)
{
	static const uint8_t bad1[] = {3, 0, 0, 0, 'a', 'b', 'c', 'd'};
	static const uint8_t bad2[] = {3, 0, 0, 0, 'a', 0, 'c', 0};
	static const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0};
	struct proto_frame f = {.len = sizeof(bad1), .payload = bad1};
	struct proto_cur c;

	proto_cur_init(&c, &f);
	cr_assert_null(proto_get_str(&c, 100));
	f.payload = bad2;
	proto_cur_init(&c, &f);
	cr_assert_null(proto_get_str(&c, 100));
	f.payload = big;
	f.len = sizeof(big);
	proto_cur_init(&c, &f);
	cr_assert_null(proto_get_str(&c, 100));
}

Test(proto, trailing_bytes_are_an_error)
{
	struct proto_frame f;
	struct proto_cur c;

	build_sample(7);
	proto_get_header(buf, &f);
	proto_cur_init(&c, &f);
	proto_get_u32(&c);
	cr_assert_eq(proto_cur_done(&c), -EBADMSG);
}

Test(proto, builder_overflow_is_sticky)
{
	uint8_t small[20];
	struct proto_msg m;

	proto_msg_begin(&m, small, sizeof(small), PROTO_PING, 0, 1);
	proto_put_u64(&m, 1);
	proto_put_u64(&m, 2);
	proto_put_u32(&m, 3);
	cr_assert_eq(proto_msg_end(&m), -EMSGSIZE);
}

Test(proto, reader_reassembles_byte_by_byte)
{
	struct proto_reader r;
	struct proto_frame f;
	long n = build_sample(9);
	int got = 0;

	cr_assert_eq(proto_reader_init(&r), 0);
	for (int round = 0; round < 3; round++)
		for (long i = 0; i < n; i++) {
			cr_assert_eq(proto_reader_feed(&r, buf + i, 1), 1);
			while (proto_reader_next(&r, &f) == 1) {
				cr_assert_eq(f.id, 9);
				cr_assert_eq(f.type, PROTO_MKDIR);
				got++;
			}
		}
	cr_assert_eq(got, 3);
	cr_assert_eq(proto_reader_pending(&r), 0);
	proto_reader_free(&r);
}

Test(proto, reader_takes_max_frame_and_skips_oversized)
{
	struct proto_reader r;
	struct proto_frame f;
	static uint8_t junk[4096];
	uint64_t left = PROTO_MAX_PAYLOAD + 1;

	cr_assert_eq(proto_reader_init(&r), 0);
	proto_put_header(buf, PROTO_MAX_PAYLOAD + 1, PROTO_PING, 0, 5);
	proto_reader_feed(&r, buf, PROTO_HDR_SIZE);
	cr_assert_eq(proto_reader_next(&r, &f), -EMSGSIZE);
	cr_assert_eq(f.id, 5);
	while (left) {
		size_t n = left < sizeof(junk) ? left : sizeof(junk);

		cr_assert_eq(proto_reader_feed(&r, junk, n), n);
		cr_assert_eq(proto_reader_next(&r, &f), 0);
		left -= n;
	}

	proto_put_header(buf, PROTO_MAX_PAYLOAD, PROTO_STDIN, 0, 6);
	for (size_t at = 0; at < PROTO_MAX_FRAME;)
		at += proto_reader_feed(&r, buf + at, PROTO_MAX_FRAME - at);
	cr_assert_eq(proto_reader_next(&r, &f), 1);
	cr_assert_eq(f.id, 6);
	cr_assert_eq(f.len, PROTO_MAX_PAYLOAD);
	proto_reader_free(&r);
}

Test(proto, errno_maps_to_stable_codes_and_back)
{
	cr_assert_eq(proto_err_from_errno(ENOENT), PROTO_E_NOT_FOUND);
	cr_assert_eq(proto_err_from_errno(-EISDIR), PROTO_E_IS_DIR);
	cr_assert_eq(proto_err_from_errno(EHOSTDOWN), PROTO_E_INTERNAL);
	cr_assert_eq(proto_err_to_errno(PROTO_E_NO_SPACE), ENOSPC);
	cr_assert_eq(proto_err_to_errno(PROTO_E_UNKNOWN_ID), EPROTO);
	cr_assert_eq(proto_err_to_errno(999), EIO);
	cr_assert_str_eq(proto_err_name(PROTO_E_EXISTS), "exists");
	cr_assert_str_eq(proto_err_name(999), "unknown error");
	cr_assert_str_eq(proto_type_name(PROTO_EXEC), "EXEC");
	cr_assert_str_eq(proto_type_name(0xffff), "?");
}

Test(proto, exec_builder_round_trips_through_the_reader)
{
	static const char *const argv[] = {"ls", "-l", NULL};
	static const char *const env[] = {"A=b", NULL};
	struct proto_exec_req req = {.argv = argv,
				     .env = env,
				     .cwd = "/w",
				     .timeout_ns = 5,
				     .stdin_data = ""};
	struct proto_frame f;
	struct proto_cur c;
	long n = proto_build_exec(buf, sizeof(buf), 3, &req);

	cr_assert_gt(n, 0);
	proto_get_header(buf, &f);
	cr_assert_eq(f.type, PROTO_EXEC);
	proto_cur_init(&c, &f);
	cr_assert_eq(proto_get_u32(&c), PROTO_EXEC_STDIN);
	cr_assert_eq(proto_get_u64(&c), 5);
	cr_assert_str_eq(proto_get_str(&c, 99), "/w");
	cr_assert_eq(proto_get_u32(&c), 2);
	cr_assert_str_eq(proto_get_str(&c, 99), "ls");
	cr_assert_str_eq(proto_get_str(&c, 99), "-l");
	cr_assert_eq(proto_get_u32(&c), 1);
	cr_assert_str_eq(proto_get_str(&c, 99), "A=b");
	cr_assert_eq(proto_cur_done(&c), 0);
}

Test(proto, builders_refuse_what_does_not_fit)
{
	uint8_t small[32];

	cr_assert_eq(proto_build_path(small, sizeof(small), PROTO_STAT, 1,
				      "a/rather/long/path/name/here"),
		     -EMSGSIZE);
	cr_assert_eq(proto_build_data(buf, sizeof(buf), PROTO_STDIN, 0, 1, buf,
				      PROTO_MAX_PAYLOAD + 1),
		     -EMSGSIZE);
}

static struct proto_frame frame_of(uint16_t type, const void *p, size_t n)
{
	struct proto_frame f = {.len = n, .type = type, .payload = p};

	return f;
}

Test(proto, reply_checker_accepts_well_formed_replies)
{
	struct proto_frame f;
	struct proto_msg m;

	proto_msg_begin(&m, buf, sizeof(buf), PROTO_EXIT, 0, 1);
	proto_put_u8(&m, PROTO_SIGNALED);
	proto_put_u32(&m, 9);
	proto_put_u64(&m, 1000);
	proto_msg_end(&m);
	proto_get_header(buf, &f);
	cr_assert_eq(proto_check_reply(&f), 0);

	proto_msg_begin(&m, buf, sizeof(buf), PROTO_DIR_ENTRIES, 0, 1);
	for (int i = 0; i < 3; i++) {
		proto_put_u8(&m, PROTO_KIND_FILE);
		proto_put_u32(&m, 0644);
		proto_put_u64(&m, 10);
		proto_put_u64(&m, 0);
		proto_put_str(&m, "name");
	}
	proto_msg_end(&m);
	proto_get_header(buf, &f);
	cr_assert_eq(proto_check_reply(&f), 0);
	f.len -= 1;
	cr_assert_eq(proto_check_reply(&f), -EBADMSG);
}

Test(proto, reply_checker_rejects_malformed_replies)
{
	static const uint8_t junk[16] = {0xff, 0xff, 0xff, 0xff};
	struct proto_frame f;

	f = frame_of(PROTO_EXIT, junk, 13);
	cr_assert_eq(proto_check_reply(&f), -EBADMSG, "bad exit kind");
	f = frame_of(PROTO_PONG, junk, 1);
	cr_assert_eq(proto_check_reply(&f), -EBADMSG);
	f = frame_of(PROTO_ERROR, junk, 8);
	cr_assert_eq(proto_check_reply(&f), -EBADMSG);
	f = frame_of(PROTO_EXISTS_REPLY, junk + 4, 1);
	cr_assert_eq(proto_check_reply(&f), 0);
	f = frame_of(PROTO_EXISTS_REPLY, junk, 1);
	cr_assert_eq(proto_check_reply(&f), -EBADMSG);
	f = frame_of(PROTO_EXEC, junk, 0);
	cr_assert_eq(proto_check_reply(&f), -EBADMSG, "a request type");
	f = frame_of(PROTO_READ_END, junk, 4);
	cr_assert_eq(proto_check_reply(&f), -EBADMSG);
}
