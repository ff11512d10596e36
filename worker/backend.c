/* Backend choice and the calls common to both backends. */
#include "worker/backend.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

static const char *const names[] = {
    [BACKEND_NS] = "ns",
    [BACKEND_KVM] = "kvm",
};

int backend_parse(const char *name, enum backend_kind *kind)
{
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(name, names[i])) {
			*kind = i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *backend_name(enum backend_kind kind)
{
	return kind == BACKEND_KVM ? "kvm" : "ns";
}

int backend_start(struct backend *b, const struct backend_opts *o,
		  struct ioloop *loop)
{
	memset(b, 0, sizeof(*b));
	b->kind = o->kind;
	b->chan_fd = -1;
	b->death_fd = -1;
	if (o->kind == BACKEND_KVM)
		return backend_kvm_start(b, o, loop);
	return backend_ns_start(b, o);
}

bool backend_alive(const struct backend *b)
{
	struct pollfd p = {.fd = b->death_fd, .events = POLLIN};

	if (b->death_fd < 0)
		return false;
	return poll(&p, 1, 0) == 0;
}

void backend_stop(struct backend *b)
{
	if (b->kind == BACKEND_KVM)
		backend_kvm_stop(b);
	else
		backend_ns_stop(b);
}

void backend_free(struct backend *b)
{
	if (b->kind == BACKEND_KVM)
		backend_kvm_free(b);
}
