/* Agent protocol messages: a builder per request, a parser per reply. */
#include "proto/proto.h"

#include <errno.h>

long proto_build_empty(void *buf, size_t cap, uint16_t type, uint32_t id)
{
	struct proto_msg m;

	proto_msg_begin(&m, buf, cap, type, 0, id);
	return proto_msg_end(&m);
}

long proto_build_error(void *buf, size_t cap, uint32_t id, uint32_t code,
		       const char *msg)
{
	struct proto_msg m;

	proto_msg_begin(&m, buf, cap, PROTO_ERROR, 0, id);
	proto_put_u32(&m, code);
	proto_put_str(&m, msg);
	return proto_msg_end(&m);
}

long proto_build_data(void *buf, size_t cap, uint16_t type, uint16_t flags,
		      uint32_t id, const void *p, size_t n)
{
	struct proto_msg m;

	proto_msg_begin(&m, buf, cap, type, flags, id);
	proto_put_bytes(&m, p, n);
	return proto_msg_end(&m);
}

long proto_build_hello(void *buf, size_t cap, uint32_t id, uint64_t caps,
		       const char *text)
{
	struct proto_msg m;

	proto_msg_begin(&m, buf, cap, PROTO_HELLO, 0, id);
	proto_put_u32(&m, PROTO_VERSION);
	proto_put_u64(&m, caps);
	proto_put_str(&m, text);
	return proto_msg_end(&m);
}

static void put_strv(struct proto_msg *m, const char *const *v)
{
	uint32_t n = 0;

	while (v && v[n])
		n++;
	proto_put_u32(m, n);
	for (uint32_t i = 0; i < n; i++)
		proto_put_str(m, v[i]);
}

long proto_build_exec(void *buf, size_t cap, uint32_t id,
		      const struct proto_exec_req *req)
{
	uint32_t flags = req->flags | (req->stdin_data ? PROTO_EXEC_STDIN : 0);
	struct proto_msg m;

	proto_msg_begin(&m, buf, cap, PROTO_EXEC, 0, id);
	proto_put_u32(&m, flags);
	proto_put_u64(&m, req->timeout_ns);
	proto_put_str(&m, req->cwd ? req->cwd : "");
	put_strv(&m, req->argv);
	put_strv(&m, req->env);
	return proto_msg_end(&m);
}

long proto_build_kill(void *buf, size_t cap, uint32_t id, uint32_t sig)
{
	struct proto_msg m;

	proto_msg_begin(&m, buf, cap, PROTO_KILL, 0, id);
	proto_put_u32(&m, sig);
	return proto_msg_end(&m);
}

long proto_build_path(void *buf, size_t cap, uint16_t type, uint32_t id,
		      const char *path)
{
	struct proto_msg m;

	proto_msg_begin(&m, buf, cap, type, 0, id);
	proto_put_str(&m, path);
	return proto_msg_end(&m);
}

/* WRITE_OPEN and MKDIR share one payload: mode, flags, path. */
static long build_mode_flags_path(void *buf, size_t cap, uint16_t type,
				  uint32_t id, const char *path, uint32_t mode,
				  uint32_t flags)
{
	struct proto_msg m;

	proto_msg_begin(&m, buf, cap, type, 0, id);
	proto_put_u32(&m, mode);
	proto_put_u32(&m, flags);
	proto_put_str(&m, path);
	return proto_msg_end(&m);
}

long proto_build_write_open(void *buf, size_t cap, uint32_t id,
			    const char *path, uint32_t mode, uint32_t flags)
{
	return build_mode_flags_path(buf, cap, PROTO_WRITE_OPEN, id, path, mode,
				     flags);
}

long proto_build_read_open(void *buf, size_t cap, uint32_t id, const char *path,
			   uint64_t offset, uint64_t length)
{
	struct proto_msg m;

	proto_msg_begin(&m, buf, cap, PROTO_READ_OPEN, 0, id);
	proto_put_u64(&m, offset);
	proto_put_u64(&m, length);
	proto_put_str(&m, path);
	return proto_msg_end(&m);
}

long proto_build_mkdir(void *buf, size_t cap, uint32_t id, const char *path,
		       uint32_t mode, uint32_t flags)
{
	return build_mode_flags_path(buf, cap, PROTO_MKDIR, id, path, mode,
				     flags);
}

long proto_build_rename(void *buf, size_t cap, uint32_t id, const char *from,
			const char *to)
{
	struct proto_msg m;

	proto_msg_begin(&m, buf, cap, PROTO_RENAME, 0, id);
	proto_put_str(&m, from);
	proto_put_str(&m, to);
	return proto_msg_end(&m);
}

long proto_build_remove(void *buf, size_t cap, uint32_t id, const char *path,
			uint32_t flags)
{
	struct proto_msg m;

	proto_msg_begin(&m, buf, cap, PROTO_REMOVE, 0, id);
	proto_put_u32(&m, flags);
	proto_put_str(&m, path);
	return proto_msg_end(&m);
}

int proto_parse_hello(const struct proto_frame *f, uint32_t *version,
		      uint64_t *caps, const char **text)
{
	struct proto_cur c;

	proto_cur_init(&c, f);
	*version = proto_get_u32(&c);
	*caps = proto_get_u64(&c);
	*text = proto_get_str(&c, PROTO_MAX_PATH);
	return proto_cur_done(&c);
}

int proto_parse_error(const struct proto_frame *f, uint32_t *code,
		      const char **msg)
{
	struct proto_cur c;

	proto_cur_init(&c, f);
	*code = proto_get_u32(&c);
	*msg = proto_get_str(&c, PROTO_MAX_PAYLOAD);
	return proto_cur_done(&c);
}

int proto_parse_exit(const struct proto_frame *f, struct proto_exit *e)
{
	struct proto_cur c;

	proto_cur_init(&c, f);
	e->kind = proto_get_u8(&c);
	e->value = (int32_t)proto_get_u32(&c);
	e->duration_ns = proto_get_u64(&c);
	if (e->kind > PROTO_TIMED_OUT)
		return -EBADMSG;
	return proto_cur_done(&c);
}

static void get_stat(struct proto_cur *c, struct proto_stat *st)
{
	st->kind = proto_get_u8(c);
	st->mode = proto_get_u32(c);
	st->size = proto_get_u64(c);
	st->mtime_ns = (int64_t)proto_get_u64(c);
}

int proto_parse_stat(const struct proto_frame *f, struct proto_stat *st)
{
	struct proto_cur c;

	proto_cur_init(&c, f);
	get_stat(&c, st);
	return proto_cur_done(&c);
}

int proto_parse_u64(const struct proto_frame *f, uint64_t *v)
{
	struct proto_cur c;

	*v = 0;
	if (!f->len)
		return 0;
	proto_cur_init(&c, f);
	*v = proto_get_u64(&c);
	return proto_cur_done(&c);
}

int proto_parse_clean(const struct proto_frame *f, uint32_t *killed,
		      uint64_t *removed)
{
	struct proto_cur c;

	proto_cur_init(&c, f);
	*killed = proto_get_u32(&c);
	*removed = proto_get_u64(&c);
	return proto_cur_done(&c);
}

int proto_parse_exists(const struct proto_frame *f, bool *yes)
{
	struct proto_cur c;
	uint8_t v;

	proto_cur_init(&c, f);
	v = proto_get_u8(&c);
	*yes = v;
	return v > 1 ? -EBADMSG : proto_cur_done(&c);
}

int proto_next_entry(struct proto_cur *c, struct proto_stat *st,
		     const char **name)
{
	if (!c->left && !c->bad)
		return 0;
	get_stat(c, st);
	*name = proto_get_str(c, PROTO_MAX_PATH);
	return c->bad ? -EBADMSG : 1;
}

static int check_entries(const struct proto_frame *f)
{
	struct proto_stat st;
	struct proto_cur c;
	const char *name;
	int r;

	proto_cur_init(&c, f);
	while ((r = proto_next_entry(&c, &st, &name)) > 0)
		;
	return r;
}

int proto_check_reply(const struct proto_frame *f)
{
	struct proto_stat st;
	struct proto_exit e;
	const char *s;
	uint32_t u32;
	uint64_t u64;
	bool yes;

	switch (f->type) {
	case PROTO_HELLO:
		return proto_parse_hello(f, &u32, &u64, &s);
	case PROTO_OK:
		/* Empty, a count, or CLEAN's pair. */
		if (f->len == 12)
			return proto_parse_clean(f, &u32, &u64);
		return proto_parse_u64(f, &u64);
	case PROTO_ERROR:
		return proto_parse_error(f, &u32, &s);
	case PROTO_PONG:
		return f->len ? -EBADMSG : 0;
	case PROTO_STDOUT:
	case PROTO_STDERR:
	case PROTO_READ_DATA:
		return 0;
	case PROTO_EXIT:
		return proto_parse_exit(f, &e);
	case PROTO_READ_END:
		return f->len == 8 ? proto_parse_u64(f, &u64) : -EBADMSG;
	case PROTO_STAT_REPLY:
		return proto_parse_stat(f, &st);
	case PROTO_DIR_ENTRIES:
		return check_entries(f);
	case PROTO_EXISTS_REPLY:
		return proto_parse_exists(f, &yes);
	}
	return -EBADMSG;
}
