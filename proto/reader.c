/* Frame reader: reassembles whole frames from a byte stream fed in pieces. */
#include "proto/proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int proto_reader_init(struct proto_reader *r)
{
	memset(r, 0, sizeof(*r));
	r->cap = PROTO_MAX_FRAME;
	r->buf = malloc(r->cap);
	if (!r->buf)
		return -ENOMEM;
	return 0;
}

void proto_reader_free(struct proto_reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

uint8_t *proto_reader_space(struct proto_reader *r, size_t *room)
{
	/* Moving the partial frame to the front keeps a whole frame's room. */
	if (r->start) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	*room = r->cap - r->end;
	return r->buf + r->end;
}

/* Drop buffered bytes that belong to an oversized frame's payload. */
static void drop_skipped(struct proto_reader *r)
{
	size_t n = MIN(r->skip, (uint64_t)(r->end - r->start));

	r->start += n;
	r->skip -= n;
}

void proto_reader_commit(struct proto_reader *r, size_t n)
{
	r->end += MIN(n, r->cap - r->end);
	drop_skipped(r);
}

size_t proto_reader_feed(struct proto_reader *r, const void *p, size_t n)
{
	size_t room;
	uint8_t *dst = proto_reader_space(r, &room);

	n = MIN(n, room);
	memcpy(dst, p, n);
	proto_reader_commit(r, n);
	return n;
}

int proto_reader_next(struct proto_reader *r, struct proto_frame *f)
{
	size_t have = r->end - r->start;

	if (r->skip || have < PROTO_HDR_SIZE)
		return 0;
	proto_get_header(r->buf + r->start, f);
	if (f->len > PROTO_MAX_PAYLOAD) {
		r->start += PROTO_HDR_SIZE;
		r->skip = f->len;
		f->payload = NULL;
		drop_skipped(r);
		return -EMSGSIZE;
	}
	if (have - PROTO_HDR_SIZE < f->len)
		return 0;
	r->start += PROTO_HDR_SIZE + f->len;
	return 1;
}

size_t proto_reader_pending(const struct proto_reader *r)
{
	return r->end - r->start;
}
