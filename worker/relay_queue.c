/* Byte queues between the worker's non-blocking sockets. */
#include "worker/relay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A drained queue keeps at most this much memory for the next frames. */
#define QUEUE_KEEP (64u * 1024)

void relay_queue_free(struct relay_queue *q)
{
	free(q->buf);
	memset(q, 0, sizeof(*q));
}

size_t relay_queue_len(const struct relay_queue *q)
{
	return q->end - q->start;
}

/* Room for n more bytes at the end: slide the data down, else grow. */
static int make_room(struct relay_queue *q, size_t n)
{
	size_t len = relay_queue_len(q);
	size_t cap = q->cap ? q->cap : 4096;
	uint8_t *buf;

	if (q->cap - q->end >= n)
		return 0;
	if (q->cap - len >= n) {
		memmove(q->buf, q->buf + q->start, len);
		q->start = 0;
		q->end = len;
		return 0;
	}

	while (cap - len < n)
		cap *= 2;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	if (len)
		memcpy(buf, q->buf + q->start, len);
	free(q->buf);
	q->buf = buf;
	q->cap = cap;
	q->start = 0;
	q->end = len;
	return 0;
}

int relay_queue_put(struct relay_queue *q, const void *p, size_t n)
{
	int err = n ? make_room(q, n) : 0;

	if (err || !n)
		return err;
	memcpy(q->buf + q->end, p, n);
	q->end += n;
	return 0;
}

int relay_queue_frame(struct relay_queue *q, const struct proto_frame *f)
{
	uint8_t hdr[PROTO_HDR_SIZE];
	int err = make_room(q, PROTO_HDR_SIZE + f->len);

	if (err)
		return err;
	proto_put_header(hdr, f->len, f->type, f->flags, f->id);
	relay_queue_put(q, hdr, sizeof(hdr));
	return relay_queue_put(q, f->payload, f->len);
}

static void drained(struct relay_queue *q)
{
	q->start = q->end = 0;
	if (q->cap > QUEUE_KEEP)
		relay_queue_free(q);
}

int relay_queue_flush(struct relay_queue *q, int fd)
{
	while (relay_queue_len(q)) {
		ssize_t n = send(fd, q->buf + q->start, relay_queue_len(q),
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		q->start += n;
	}
	drained(q);
	return 0;
}
