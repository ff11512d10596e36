/* The ns backend for a worker: the agent as PID 1 of fresh namespaces. */
#include "worker/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int backend_ns_start(struct backend *b, const struct backend_opts *o)
{
	struct ns_opts opts = {
	    .image = o->image,
	    .mem_limit = o->mem,
	    .log_fd = o->log_fd,
	};
	int err;

	if (access(o->image, R_OK) < 0) {
		b->why = "image";
		b->permanent = true;
		snprintf(b->detail, sizeof(b->detail), "%s", o->image);
		return -errno;
	}

	err = ns_sandbox_start(&opts, &b->sb);
	if (err) {
		b->why = b->sb.why ? b->sb.why : "ns_sandbox_start";
		return err;
	}

	if (fcntl(b->sb.chan_fd, F_SETFL, O_NONBLOCK) < 0) {
		err = -errno;
		b->why = "fcntl O_NONBLOCK";
		ns_sandbox_stop(&b->sb);
		return err;
	}
	b->chan_fd = b->sb.chan_fd;
	b->death_fd = b->sb.pidfd;
	return 0;
}

void backend_ns_stop(struct backend *b)
{
	if (b->chan_fd < 0)
		return;
	ns_sandbox_stop(&b->sb);
	b->chan_fd = -1;
	b->death_fd = -1;
}
