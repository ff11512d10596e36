/* libvmpool: a released lease's connection, kept for the pool's next lease. */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/internal.h"

struct keep *keep_new(void)
{
	struct keep *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	pthread_mutex_init(&k->lock, NULL);
	k->refs = 1;
	return k;
}

struct keep *keep_ref(struct keep *k)
{
	if (!k)
		return NULL;
	pthread_mutex_lock(&k->lock);
	k->refs++;
	pthread_mutex_unlock(&k->lock);
	return k;
}

static void drop_kept(struct keep *k)
{
	if (!k->have)
		return;
	close(k->c.fd);
	proto_client_free(&k->c);
	k->have = false;
}

void keep_unref(struct keep *k)
{
	bool last;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	last = --k->refs == 0;
	pthread_mutex_unlock(&k->lock);
	if (!last)
		return;
	drop_kept(k);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

void keep_close(struct keep *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	k->closed = true;
	drop_kept(k);
	pthread_mutex_unlock(&k->lock);
	keep_unref(k);
}

bool keep_put(struct keep *k, struct proto_client *c)
{
	bool taken = false;

	if (!k)
		return false;
	pthread_mutex_lock(&k->lock);
	if (!k->closed && !k->have) {
		k->c = *c;
		k->have = taken = true;
		memset(c, 0, sizeof(*c));
		c->fd = -1;
	}
	pthread_mutex_unlock(&k->lock);
	return taken;
}

/* vmpoold sends nothing unasked: a kept connection with anything to
 * read has ended (vmpoold restarted, or could not take it back), and
 * writing to it would raise SIGPIPE in a program that did not expect
 * a write on a connection it never saw. */
static bool still_open(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};

	return poll(&p, 1, 0) == 0;
}

bool keep_take(struct keep *k, struct proto_client *c)
{
	bool taken = false;

	if (!k)
		return false;
	pthread_mutex_lock(&k->lock);
	if (k->have && still_open(k->c.fd)) {
		*c = k->c;
		k->have = false;
		taken = true;
	}
	drop_kept(k);
	pthread_mutex_unlock(&k->lock);
	return taken;
}
