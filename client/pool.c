/* libvmpool: the connection to vmpoold, pool requests and leasing. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/internal.h"
#include "common/util.h"
#include "proto/tenant.h"

_Static_assert((int)VMPOOL_E_VM_LOST == (int)TENANT_E_VM_LOST, "codes match");
_Static_assert((int)VMPOOL_E_GUEST == (int)TENANT_E_GUEST, "codes match");

static void set_err(struct vmpool *p, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(struct vmpool *p, uint32_t code, const char *fmt, ...)
{
	va_list ap;

	p->code = code;
	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
}

int client_code_errno(uint32_t code)
{
	switch (code) {
	case TENANT_E_VM_LOST:
		return -ECONNRESET;
	case TENANT_E_NO_CAPACITY:
		return -EAGAIN;
	case TENANT_E_QUOTA:
		return -EDQUOT;
	case TENANT_E_DRAINING:
		return -ESHUTDOWN;
	case TENANT_E_NOT_LEASED:
		return -ENOTCONN;
	case TENANT_E_FORBIDDEN:
		return -EPERM;
	case TENANT_E_GUEST:
		return -EPROTO;
	}
	return -proto_err_to_errno(code);
}

static void keep_error(const struct proto_frame *f, uint32_t *code, char *err,
		       size_t len)
{
	const char *msg = NULL;

	if (proto_parse_error(f, code, &msg) < 0)
		*code = PROTO_E_BAD_PAYLOAD;
	snprintf(err, len, "%s", msg ? msg : proto_err_name(*code));
}

int client_call(struct proto_client *c, struct proto_msg *m, uint16_t want,
		struct proto_frame *f, uint32_t *code, char *err, size_t len)
{
	long n = proto_msg_end(m);
	struct proto_frame hdr;
	int r;

	if (n < 0)
		return n;
	proto_get_header(m->buf, &hdr);
	r = proto_client_send(c, m->buf, n);
	if (r < 0)
		return r;

	do
		r = proto_client_recv(c, f);
	while (r == 0 && f->id != hdr.id);
	if (r < 0)
		return r;

	if (f->type == PROTO_ERROR) {
		keep_error(f, code, err, len);
		return client_code_errno(*code);
	}
	return f->type == want ? 0 : -EPROTO;
}

int vmpool_default_socket(char *buf, size_t cap)
{
	const char *run = getenv("XDG_RUNTIME_DIR");
	int n;

	if (geteuid() == 0)
		n = snprintf(buf, cap, "/run/vmpool/%s.sock",
			     VMPOOL_DEFAULT_NAME);
	else if (run && *run)
		n = snprintf(buf, cap, "%s/vmpool/%s.sock", run,
			     VMPOOL_DEFAULT_NAME);
	else
		n = snprintf(buf, cap, "/tmp/vmpool-%u/%s.sock",
			     (unsigned)geteuid(), VMPOOL_DEFAULT_NAME);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* A new connection to the socket at path; the fd or -errno. */
static int dial(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;

	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int pick_path(struct vmpool *p, const char *path)
{
	const char *env = getenv(VMPOOL_SOCKET_ENV);

	if (!path && env && *env)
		path = env;
	if (!path)
		return vmpool_default_socket(p->path, sizeof(p->path));
	if (strlen(path) >= sizeof(p->path))
		return -ENAMETOOLONG;
	strcpy(p->path, path);
	return 0;
}

/* Without a keep (out of memory), every lease connects anew. */
static struct vmpool *pool_new(void)
{
	struct vmpool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->fd = -1;
	p->keep = keep_new();
	p->spin_ns = VMPOOL_SPIN_DEFAULT_NS;
	return p;
}

/* Make the protocol client for the pool connection; takes fd. */
static int attach(struct vmpool *p, int fd)
{
	int err = proto_client_init(&p->c, fd);

	if (err) {
		close(fd);
		set_err(p, 0, "setting up the connection: %s", strerror(-err));
		return err;
	}
	p->fd = fd;
	p->have_client = true;
	return 0;
}

int vmpool_connect(const char *socket_path, struct vmpool **out)
{
	struct vmpool *p = pool_new();
	int fd, err;

	*out = p;
	if (!p)
		return -ENOMEM;

	err = pick_path(p, socket_path);
	if (err) {
		set_err(p, 0, "socket path too long");
		return err;
	}

	fd = dial(p->path);
	if (fd < 0) {
		set_err(p, 0, "connecting to vmpoold at %s: %s", p->path,
			strerror(-fd));
		return fd;
	}
	return attach(p, fd);
}

int vmpool_connect_fd(int fd, struct vmpool **out)
{
	struct vmpool *p = pool_new();

	*out = p;
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	return attach(p, fd);
}

static void drop_client(struct vmpool *p)
{
	if (!p->have_client)
		return;
	proto_client_free(&p->c);
	p->have_client = false;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

void vmpool_set_spin(struct vmpool *p, uint64_t ns)
{
	p->spin_ns = ns;
}

void vmpool_close(struct vmpool *p)
{
	if (!p)
		return;
	drop_client(p);
	keep_close(p->keep);
	free(p);
}

const char *vmpool_error(const struct vmpool *p)
{
	return p ? p->err : "out of memory";
}

uint32_t vmpool_error_code(const struct vmpool *p)
{
	return p ? p->code : 0;
}

/* Ready the pool connection for a request; 0 or -errno. */
static int pool_ready(struct vmpool *p, const char *what)
{
	int fd;

	if (p->have_client)
		return 0;
	if (!p->path[0]) {
		set_err(p, 0, "%s: the connection was handed to a lease", what);
		return -ENOTCONN;
	}

	fd = dial(p->path);
	if (fd < 0) {
		set_err(p, 0, "connecting to vmpoold at %s: %s", p->path,
			strerror(-fd));
		return fd;
	}
	return attach(p, fd);
}

/* Log a failed pool request; a broken connection is dropped so the
 * next request dials again. */
static int pool_failed(struct vmpool *p, const char *what, int r)
{
	if (p->code) {
		char msg[ERR_LEN];

		snprintf(msg, sizeof(msg), "%s", p->err);
		set_err(p, p->code, "%s: %s", what, msg);
		return r;
	}
	if (r == -EPIPE || r == -ECONNRESET)
		set_err(p, 0, "%s: vmpoold closed the connection", what);
	else
		set_err(p, 0, "%s: %s", what, strerror(-r));
	drop_client(p);
	return r;
}

static int pool_call(struct vmpool *p, struct proto_msg *m, uint16_t want,
		     struct proto_frame *f, const char *what)
{
	int r;

	p->code = 0;
	r = client_call(&p->c, m, want, f, &p->code, p->err, sizeof(p->err));
	return r < 0 ? pool_failed(p, what, r) : 0;
}

/* One (name, value) pair of a STATS_REPLY into out[i] when it fits. */
static int take_counter(struct proto_cur *cur, struct vmpool_counter *out,
			size_t cap, uint32_t i)
{
	const char *name = proto_get_str(cur, PROTO_MAX_PATH);
	uint64_t v = proto_get_u64(cur);

	if (!name)
		return -EPROTO;
	if (i < cap) {
		snprintf(out[i].name, sizeof(out[i].name), "%s", name);
		out[i].value = v;
	}
	return 0;
}

static int parse_stats(const struct proto_frame *f, struct vmpool_counter *out,
		       size_t cap)
{
	struct proto_cur cur;
	uint32_t n;

	proto_cur_init(&cur, f);
	n = proto_get_u32(&cur);
	if (n > f->len / 13)
		return -EPROTO;
	for (uint32_t i = 0; i < n; i++)
		if (take_counter(&cur, out, cap, i))
			return -EPROTO;
	return proto_cur_done(&cur) ? -EPROTO : (int)n;
}

int vmpool_stats(struct vmpool *p, struct vmpool_counter *out, size_t cap)
{
	struct proto_frame f;
	struct proto_msg m;
	int r = pool_ready(p, "stats");

	if (r)
		return r;

	proto_msg_begin(&m, p->c.out, PROTO_MAX_FRAME, TENANT_STATS, 0,
			proto_client_new_id(&p->c));
	r = pool_call(p, &m, TENANT_STATS_REPLY, &f, "stats");
	if (r)
		return r;

	r = parse_stats(&f, out, cap);
	if (r < 0)
		set_err(p, 0, "stats: malformed reply from vmpoold");
	return r;
}

int vmpool_warm(struct vmpool *p, uint32_t n, uint32_t *started)
{
	struct proto_frame f;
	struct proto_cur cur;
	struct proto_msg m;
	uint32_t k;
	int r = pool_ready(p, "warm");

	if (r)
		return r;

	proto_msg_begin(&m, p->c.out, PROTO_MAX_FRAME, TENANT_WARM, 0,
			proto_client_new_id(&p->c));
	proto_put_u32(&m, n);
	r = pool_call(p, &m, PROTO_OK, &f, "warm");
	if (r)
		return r;

	proto_cur_init(&cur, &f);
	k = proto_get_u32(&cur);
	if (proto_cur_done(&cur)) {
		set_err(p, 0, "warm: malformed reply from vmpoold");
		return -EPROTO;
	}
	if (started)
		*started = k;
	return 0;
}
