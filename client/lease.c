/* libvmpool: leasing a VM, releasing it, and what went wrong on a lease. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client/internal.h"
#include "proto/tenant.h"

static void lease_err(struct vmpool_lease *l, uint32_t code, const char *fmt,
		      ...) __attribute__((format(printf, 3, 4)));

static void lease_err(struct vmpool_lease *l, uint32_t code, const char *fmt,
		      ...)
{
	va_list ap;

	l->code = code;
	va_start(ap, fmt);
	vsnprintf(l->err, sizeof(l->err), fmt, ap);
	va_end(ap);
}

static int lost(struct vmpool_lease *l, const char *what, const char *why)
{
	l->lost = true;
	lease_err(l, TENANT_E_VM_LOST, "%s: VM lost: %s", what, why);
	return -ECONNRESET;
}

int lease_done(struct vmpool_lease *l, const char *what, int r)
{
	uint32_t code = l->c.err_code;

	if (r >= 0)
		return r;
	if (r == -EPIPE || r == -ECONNRESET)
		return lost(l, what, "its worker closed the connection");
	if (r == -EPROTO && !code)
		return lost(l, what, "malformed frames from its worker");
	if (!code) {
		lease_err(l, 0, "%s: %s", what, strerror(-r));
		return r;
	}

	lease_err(l, code, "%s: %s", what, l->c.err_msg);
	if (code == TENANT_E_VM_LOST || code == TENANT_E_GUEST)
		l->lost = true;
	return client_code_errno(code);
}

int lease_begin(struct vmpool_lease *l, const char *what)
{
	l->c.err_code = 0;
	if (!l->lost)
		return 0;
	lease_err(l, TENANT_E_VM_LOST, "%s: VM lost earlier in this lease",
		  what);
	return -ECONNRESET;
}

static int parse_leased(const struct proto_frame *f,
			struct vmpool_lease_info *info)
{
	struct proto_cur cur;
	const char *backend;

	proto_cur_init(&cur, f);
	info->slot = proto_get_u32(&cur);
	info->generation = proto_get_u32(&cur);
	info->hit = proto_get_u8(&cur);
	info->wait_ns = proto_get_u64(&cur);
	backend = proto_get_str(&cur, sizeof(info->backend) - 1);
	if (!backend || proto_cur_done(&cur))
		return -EPROTO;
	strcpy(info->backend, backend);
	return 0;
}

/* A stream for the lease: the one an earlier lease kept, a fresh
 * connection, or the pool's own when it was made from an fd (the pool
 * then has none). */
static int lease_stream(struct vmpool *p, struct vmpool_lease *l)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	l->keep = keep_ref(p->keep);
	if (keep_take(l->keep, &l->c)) {
		l->fd = l->c.fd;
		l->reused = true;
		return 0;
	}
	if (!p->path[0]) {
		if (!p->have_client)
			return -ENOTCONN;
		l->c = p->c;
		l->fd = p->fd;
		p->have_client = false;
		p->fd = -1;
		return 0;
	}

	strcpy(sa.sun_path, p->path);
	l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return -errno;
	if (connect(l->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return proto_client_init(&l->c, l->fd);
}

static void drop_stream(struct vmpool_lease *l)
{
	if (l->c.out)
		proto_client_free(&l->c);
	if (l->fd >= 0)
		close(l->fd);
	memset(&l->c, 0, sizeof(l->c));
	l->fd = -1;
}

static void lease_free(struct vmpool_lease *l)
{
	drop_stream(l);
	keep_unref(l->keep);
	free(l);
}

static int acquire_failed(struct vmpool *p, struct vmpool_lease *l, int r)
{
	if (l->code)
		snprintf(p->err, sizeof(p->err), "acquire: %.240s", l->err);
	else if (r == -EPIPE || r == -ECONNRESET)
		snprintf(p->err, sizeof(p->err),
			 "acquire: vmpoold closed the connection");
	else if (r == -EPROTO)
		snprintf(p->err, sizeof(p->err),
			 "acquire: malformed reply from vmpoold");
	else
		snprintf(p->err, sizeof(p->err), "acquire: %s", strerror(-r));
	p->code = l->code;
	lease_free(l);
	return r;
}

/* A warm hit is answered within microseconds: the answer is spun for
 * (up to spin_ns) rather than slept for. */
static int ask_lease(struct vmpool_lease *l, uint64_t timeout_ns,
		     uint64_t spin_ns)
{
	struct proto_frame f;
	struct proto_msg m;
	int r;

	proto_msg_begin(&m, l->c.out, PROTO_MAX_FRAME, TENANT_ACQUIRE, 0,
			proto_client_new_id(&l->c));
	proto_put_u64(&m, timeout_ns);
	l->c.spin_ns = spin_ns;
	r = client_call(&l->c, &m, TENANT_LEASED, &f, &l->code, l->err,
			sizeof(l->err));
	l->c.spin_ns = 0;
	if (r < 0)
		return r;
	return parse_leased(&f, &l->info);
}

/* A kept connection that vmpoold closed (it restarted, or could not
 * take the connection back): the acquire is tried once more on a new
 * one, which lease_stream then dials. */
static bool stale(struct vmpool_lease *l, int r)
{
	if (!l->reused || l->code || (r != -EPIPE && r != -ECONNRESET))
		return false;
	keep_unref(l->keep);
	l->keep = NULL;
	l->reused = false;
	return true;
}

int vmpool_acquire(struct vmpool *p, uint64_t timeout_ns,
		   struct vmpool_lease **out)
{
	struct vmpool_lease *l = calloc(1, sizeof(*l));
	int r;

	*out = NULL;
	p->code = 0;
	if (!l) {
		snprintf(p->err, sizeof(p->err), "acquire: out of memory");
		return -ENOMEM;
	}
	l->fd = -1;

	r = lease_stream(p, l);
	if (r < 0)
		return acquire_failed(p, l, r);

	r = ask_lease(l, timeout_ns, p->spin_ns);
	if (r < 0 && stale(l, r)) {
		drop_stream(l);
		r = lease_stream(p, l);
		if (r == 0)
			r = ask_lease(l, timeout_ns, p->spin_ns);
	}
	if (r < 0)
		return acquire_failed(p, l, r);
	*out = l;
	return 0;
}

void vmpool_lease_info(const struct vmpool_lease *l,
		       struct vmpool_lease_info *info)
{
	*info = l->info;
}

const char *vmpool_lease_error(const struct vmpool_lease *l)
{
	return l->err;
}

uint32_t vmpool_lease_error_code(const struct vmpool_lease *l)
{
	return l->code;
}

/* RELEASE with flags (0: none sent); *kept: the worker handed the
 * connection back to vmpoold, with nothing left unread on it. */
static int release_call(struct vmpool_lease *l, uint8_t flags, bool *kept)
{
	struct proto_frame f;
	struct proto_msg m;
	int r;

	proto_msg_begin(&m, l->c.out, PROTO_MAX_FRAME, TENANT_RELEASE, 0,
			proto_client_new_id(&l->c));
	if (flags)
		proto_put_u8(&m, flags);
	r = client_call(&l->c, &m, PROTO_OK, &f, &l->c.err_code, l->c.err_msg,
			sizeof(l->c.err_msg));
	*kept = r == 0 && f.len == 1 && f.payload[0] == 1 &&
		!proto_reader_pending(&l->c.rd);
	return r;
}

/* The connection is asked back for the next lease when a pool can take
 * it; a worker older than TENANT_RELEASE_KEEP refuses the flag, and is
 * asked again without. */
int vmpool_release(struct vmpool_lease *l)
{
	uint8_t flags = l && l->keep ? TENANT_RELEASE_KEEP : 0;
	bool kept = false;
	int r;

	if (!l)
		return 0;
	r = lease_begin(l, "release");
	if (r == 0) {
		r = release_call(l, flags, &kept);
		if (r < 0 && flags && l->c.err_code == PROTO_E_BAD_PAYLOAD)
			r = release_call(l, 0, &kept);
		r = lease_done(l, "release", r);
	}
	if (kept && keep_put(l->keep, &l->c))
		l->fd = -1;
	lease_free(l);
	return r;
}

int vmpool_ping(struct vmpool_lease *l)
{
	int r = lease_begin(l, "ping");

	if (r)
		return r;
	return lease_done(l, "ping", proto_client_ping(&l->c));
}
