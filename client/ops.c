/* libvmpool: commands and file operations inside a leased VM. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/internal.h"
#include "common/util.h"

_Static_assert((int)VMPOOL_EXITED == (int)PROTO_EXITED, "kinds match");
_Static_assert((int)VMPOOL_TIMED_OUT == (int)PROTO_TIMED_OUT, "kinds match");
_Static_assert((int)VMPOOL_KIND_SYMLINK == (int)PROTO_KIND_SYMLINK,
	       "kinds match");
_Static_assert((int)VMPOOL_WRITE_APPEND == (int)PROTO_WRITE_APPEND,
	       "flags match");
_Static_assert((int)VMPOOL_WRITE_PARENTS == (int)PROTO_WRITE_PARENTS,
	       "flags match");
_Static_assert((int)VMPOOL_MKDIR_PARENTS == (int)PROTO_MKDIR_PARENTS,
	       "flags match");
_Static_assert((int)VMPOOL_REMOVE_RECURSIVE == (int)PROTO_REMOVE_RECURSIVE,
	       "flags");

/* Output to the caller's fds; a failing fd drops its stream only. */
static void to_fds(void *arg, int stream, const void *p, size_t n)
{
	const struct vmpool_exec *x = arg;
	int fd = stream == 1 ? x->stdout_fd : x->stderr_fd;

	if (fd >= 0)
		write_full(fd, p, n);
}

static void to_callback(void *arg, int stream, const void *p, size_t n)
{
	const struct vmpool_exec *x = arg;

	x->output(x->output_arg, stream, p, n);
}

static int check_exec(const struct vmpool_exec *x)
{
	if (!x || !x->argv || !x->argv[0])
		return -EINVAL;
	if ((x->flags & VMPOOL_EXEC_TO_FDS) && x->output)
		return -EINVAL;
	return 0;
}

int vmpool_exec(struct vmpool_lease *l, const struct vmpool_exec *x,
		struct vmpool_result *res)
{
	struct proto_exec_req req = {0};
	struct proto_exit e = {0};
	proto_output_fn *out = NULL;
	int r = lease_begin(l, "exec");

	if (r)
		return r;
	if (check_exec(x))
		return lease_done(l, "exec", -EINVAL);

	req.argv = x->argv;
	req.env = x->env;
	req.cwd = x->cwd;
	req.timeout_ns = x->timeout_ns;
	req.flags = x->flags & VMPOOL_EXEC_SHELL ? PROTO_EXEC_SHELL : 0;
	req.stdin_data = x->stdin_data;
	req.stdin_len = x->stdin_len;
	if (x->output)
		out = to_callback;
	else if (x->flags & VMPOOL_EXEC_TO_FDS)
		out = to_fds;

	r = proto_client_exec(&l->c, &req, out, (void *)x, &e);
	if (r == 0 && res) {
		res->kind = e.kind;
		res->status = e.value;
		res->duration_ns = e.duration_ns;
	}
	return lease_done(l, "exec", r);
}

int vmpool_result_code(const struct vmpool_result *res)
{
	switch (res->kind) {
	case VMPOOL_EXITED:
		return res->status & 0xff;
	case VMPOOL_SIGNALED:
		return 128 + (res->status & 0x7f);
	}
	return 124;
}

struct buf_src {
	const uint8_t *p;
	size_t left;
};

static ssize_t from_buf(void *arg, void *dst, size_t n)
{
	struct buf_src *s = arg;

	n = MIN(n, s->left);
	memcpy(dst, s->p, n);
	s->p += n;
	s->left -= n;
	return n;
}

static ssize_t from_fd(void *arg, void *dst, size_t n)
{
	ssize_t got;

	do
		got = read(*(int *)arg, dst, n);
	while (got < 0 && errno == EINTR);
	return got < 0 ? -errno : got;
}

int vmpool_write_buf(struct vmpool_lease *l, const char *path, uint32_t mode,
		     uint32_t flags, const void *data, size_t len)
{
	struct buf_src s = {.p = data, .left = len};
	uint64_t n = 0;
	int r = lease_begin(l, "write");

	if (r)
		return r;
	r = proto_client_write(&l->c, path, mode, flags, from_buf, &s, &n);
	if (r == 0 && n != len)
		r = -EIO;
	return lease_done(l, "write", r);
}

int vmpool_write_fd(struct vmpool_lease *l, const char *path, uint32_t mode,
		    uint32_t flags, int fd, uint64_t *written)
{
	int r = lease_begin(l, "write");

	if (r)
		return r;
	r = proto_client_write(&l->c, path, mode, flags, from_fd, &fd, written);
	return lease_done(l, "write", r);
}

struct grow_buf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

static int to_buf(void *arg, const void *src, size_t n)
{
	struct grow_buf *b = arg;

	if (b->len + n > b->cap) {
		size_t cap = MAX(b->cap * 2, b->len + n);
		uint8_t *p = realloc(b->p, cap);

		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
	return 0;
}

static int to_fd(void *arg, const void *src, size_t n)
{
	return write_full(*(int *)arg, src, n);
}

int vmpool_read_buf(struct vmpool_lease *l, const char *path, void **data,
		    size_t *len)
{
	struct grow_buf b = {0};
	int r = lease_begin(l, "read");

	*data = NULL;
	*len = 0;
	if (r)
		return r;

	r = proto_client_read(&l->c, path, 0, 0, to_buf, &b, NULL);
	if (r < 0) {
		free(b.p);
		return lease_done(l, "read", r);
	}
	*data = b.p ? b.p : malloc(1);
	*len = b.len;
	return *data ? 0 : lease_done(l, "read", -ENOMEM);
}

int vmpool_read_fd(struct vmpool_lease *l, const char *path, int fd,
		   uint64_t *nread)
{
	int r = lease_begin(l, "read");

	if (r)
		return r;
	r = proto_client_read(&l->c, path, 0, 0, to_fd, &fd, nread);
	return lease_done(l, "read", r);
}

void vmpool_free(void *p)
{
	free(p);
}

static void put_stat(struct vmpool_stat *out, const struct proto_stat *st)
{
	out->kind = st->kind;
	out->mode = st->mode;
	out->size = st->size;
	out->mtime_ns = st->mtime_ns;
}

struct list_ctx {
	vmpool_entry_fn *fn;
	void *arg;
};

static void on_entry(void *arg, const char *name, const struct proto_stat *st)
{
	struct list_ctx *x = arg;
	struct vmpool_stat vs;

	put_stat(&vs, st);
	x->fn(x->arg, name, &vs);
}

int vmpool_list(struct vmpool_lease *l, const char *path, vmpool_entry_fn *fn,
		void *arg)
{
	struct list_ctx x = {.fn = fn, .arg = arg};
	int r = lease_begin(l, "list");

	if (r)
		return r;
	r = proto_client_list(&l->c, path, fn ? on_entry : NULL, &x);
	return lease_done(l, "list", r);
}

int vmpool_stat(struct vmpool_lease *l, const char *path,
		struct vmpool_stat *st)
{
	struct proto_stat ps;
	int r = lease_begin(l, "stat");

	if (r)
		return r;
	r = proto_client_stat(&l->c, path, &ps);
	if (r == 0)
		put_stat(st, &ps);
	return lease_done(l, "stat", r);
}

int vmpool_exists(struct vmpool_lease *l, const char *path)
{
	int r = lease_begin(l, "exists");

	if (r)
		return r;
	return lease_done(l, "exists", proto_client_exists(&l->c, path));
}

int vmpool_mkdir(struct vmpool_lease *l, const char *path, uint32_t mode,
		 uint32_t flags)
{
	int r = lease_begin(l, "mkdir");

	if (r)
		return r;
	r = proto_client_mkdir(&l->c, path, mode, flags);
	return lease_done(l, "mkdir", r);
}

int vmpool_rename(struct vmpool_lease *l, const char *from, const char *to)
{
	int r = lease_begin(l, "rename");

	if (r)
		return r;
	return lease_done(l, "rename", proto_client_rename(&l->c, from, to));
}

int vmpool_remove(struct vmpool_lease *l, const char *path, uint32_t flags)
{
	int r = lease_begin(l, "remove");

	if (r)
		return r;
	return lease_done(l, "remove", proto_client_remove(&l->c, path, flags));
}
