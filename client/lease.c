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

/* A stream for the lease: a fresh connection, or the pool's own when
 * it was made from an fd (the pool then has none). */
static int lease_stream(struct vmpool *p, struct vmpool_lease *l)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

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

static void lease_free(struct vmpool_lease *l)
{
	if (l->c.out)
		proto_client_free(&l->c);
	if (l->fd >= 0)
		close(l->fd);
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

static int ask_lease(struct vmpool_lease *l, uint64_t timeout_ns)
{
	struct proto_frame f;
	struct proto_msg m;
	int r;

	proto_msg_begin(&m, l->c.out, PROTO_MAX_FRAME, TENANT_ACQUIRE, 0,
			proto_client_new_id(&l->c));
	proto_put_u64(&m, timeout_ns);
	r = client_call(&l->c, &m, TENANT_LEASED, &f, &l->code, l->err,
			sizeof(l->err));
	if (r < 0)
		return r;
	return parse_leased(&f, &l->info);
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

	r = ask_lease(l, timeout_ns);
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

int vmpool_release(struct vmpool_lease *l)
{
	struct proto_frame f;
	struct proto_msg m;
	int r;

	if (!l)
		return 0;
	r = lease_begin(l, "release");
	if (r == 0) {
		proto_msg_begin(&m, l->c.out, PROTO_MAX_FRAME, TENANT_RELEASE,
				0, proto_client_new_id(&l->c));
		r = client_call(&l->c, &m, PROTO_OK, &f, &l->c.err_code,
				l->c.err_msg, sizeof(l->c.err_msg));
		r = lease_done(l, "release", r);
	}
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
