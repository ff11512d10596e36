/* Agent protocol codec: headers, field builders and parsers, error codes. */
#include "proto/proto.h"

#include <errno.h>
#include <string.h>

#include "common/util.h"

static void put_le16(uint8_t *d, uint16_t v)
{
	d[0] = v;
	d[1] = v >> 8;
}

static void put_le32(uint8_t *d, uint32_t v)
{
	put_le16(d, v);
	put_le16(d + 2, v >> 16);
}

static void put_le64(uint8_t *d, uint64_t v)
{
	put_le32(d, v);
	put_le32(d + 4, v >> 32);
}

static uint16_t get_le16(const uint8_t *s)
{
	return s[0] | (uint16_t)s[1] << 8;
}

static uint32_t get_le32(const uint8_t *s)
{
	return get_le16(s) | (uint32_t)get_le16(s + 2) << 16;
}

static uint64_t get_le64(const uint8_t *s)
{
	return get_le32(s) | (uint64_t)get_le32(s + 4) << 32;
}

void proto_put_header(uint8_t *dst, uint32_t len, uint16_t type, uint16_t flags,
		      uint32_t id)
{
	put_le32(dst, len);
	put_le16(dst + 4, type);
	put_le16(dst + 6, flags);
	put_le32(dst + 8, id);
}

void proto_get_header(const uint8_t *src, struct proto_frame *f)
{
	f->len = get_le32(src);
	f->type = get_le16(src + 4);
	f->flags = get_le16(src + 6);
	f->id = get_le32(src + 8);
	f->payload = src + PROTO_HDR_SIZE;
}

void proto_msg_begin(struct proto_msg *m, void *buf, size_t cap, uint16_t type,
		     uint16_t flags, uint32_t id)
{
	m->buf = buf;
	m->cap = MIN(cap, (size_t)PROTO_MAX_FRAME);
	m->len = PROTO_HDR_SIZE;
	m->overflow = m->cap < PROTO_HDR_SIZE;
	if (!m->overflow)
		proto_put_header(m->buf, 0, type, flags, id);
}

/* Reserve n bytes at the end, or mark the message as overflowed. */
static uint8_t *reserve(struct proto_msg *m, size_t n)
{
	uint8_t *p;

	if (m->overflow || n > m->cap - m->len) {
		m->overflow = true;
		return NULL;
	}
	p = m->buf + m->len;
	m->len += n;
	return p;
}

void proto_put_u8(struct proto_msg *m, uint8_t v)
{
	uint8_t *p = reserve(m, 1);

	if (p)
		*p = v;
}

void proto_put_u32(struct proto_msg *m, uint32_t v)
{
	uint8_t *p = reserve(m, 4);

	if (p)
		put_le32(p, v);
}

void proto_put_u64(struct proto_msg *m, uint64_t v)
{
	uint8_t *p = reserve(m, 8);

	if (p)
		put_le64(p, v);
}

void proto_put_bytes(struct proto_msg *m, const void *src, size_t n)
{
	uint8_t *p = reserve(m, n);

	if (p && n)
		memcpy(p, src, n);
}

void proto_put_str(struct proto_msg *m, const char *s)
{
	size_t n = strlen(s);

	if (n > UINT32_MAX) {
		m->overflow = true;
		return;
	}
	proto_put_u32(m, n);
	proto_put_bytes(m, s, n + 1);
}

uint8_t *proto_msg_tail(struct proto_msg *m, size_t *room)
{
	*room = m->overflow ? 0 : m->cap - m->len;
	return m->buf + m->len;
}

void proto_msg_add(struct proto_msg *m, size_t n)
{
	reserve(m, n);
}

long proto_msg_end(struct proto_msg *m)
{
	if (m->overflow)
		return -EMSGSIZE;
	put_le32(m->buf, m->len - PROTO_HDR_SIZE);
	return m->len;
}

void proto_cur_init(struct proto_cur *c, const struct proto_frame *f)
{
	c->p = f->payload;
	c->left = f->len;
	c->bad = false;
}

/* The next n bytes, or NULL (and the cursor marked bad) if short. */
static const uint8_t *take(struct proto_cur *c, size_t n)
{
	const uint8_t *p;

	if (c->bad || n > c->left) {
		c->bad = true;
		return NULL;
	}
	p = c->p;
	c->p += n;
	c->left -= n;
	return p;
}

uint8_t proto_get_u8(struct proto_cur *c)
{
	const uint8_t *p = take(c, 1);

	return p ? *p : 0;
}

uint32_t proto_get_u32(struct proto_cur *c)
{
	const uint8_t *p = take(c, 4);

	return p ? get_le32(p) : 0;
}

uint64_t proto_get_u64(struct proto_cur *c)
{
	const uint8_t *p = take(c, 8);

	return p ? get_le64(p) : 0;
}

const char *proto_get_str(struct proto_cur *c, size_t max)
{
	uint32_t n = proto_get_u32(c);
	const uint8_t *p;

	if (c->bad || n > max || n >= c->left) {
		c->bad = true;
		return NULL;
	}
	p = take(c, (size_t)n + 1);
	if (p[n] != '\0' || memchr(p, '\0', n)) {
		c->bad = true;
		return NULL;
	}
	return (const char *)p;
}

const uint8_t *proto_get_rest(struct proto_cur *c, size_t *n)
{
	*n = c->bad ? 0 : c->left;
	return take(c, *n);
}

int proto_cur_done(const struct proto_cur *c)
{
	return c->bad || c->left ? -EBADMSG : 0;
}

static const struct {
	int err;
	enum proto_err code;
} errno_map[] = {
    {ENOENT, PROTO_E_NOT_FOUND},
    {ESRCH, PROTO_E_NOT_FOUND},
    {EACCES, PROTO_E_PERMISSION},
    {EPERM, PROTO_E_PERMISSION},
    {EROFS, PROTO_E_PERMISSION},
    {ENOSPC, PROTO_E_NO_SPACE},
    {EDQUOT, PROTO_E_NO_SPACE},
    {EISDIR, PROTO_E_IS_DIR},
    {ENOTDIR, PROTO_E_NOT_DIR},
    {EEXIST, PROTO_E_EXISTS},
    {EINVAL, PROTO_E_INVALID},
    {E2BIG, PROTO_E_TOO_LARGE},
    {EFBIG, PROTO_E_TOO_LARGE},
    {EMSGSIZE, PROTO_E_TOO_LARGE},
    {ENAMETOOLONG, PROTO_E_TOO_LARGE},
    {ETIMEDOUT, PROTO_E_TIMED_OUT},
    {EBUSY, PROTO_E_BUSY},
    {EAGAIN, PROTO_E_BUSY},
    {ENOTEMPTY, PROTO_E_NOT_EMPTY},
    {ELOOP, PROTO_E_LOOP},
    {EXDEV, PROTO_E_CROSS_DEVICE},
    {EIO, PROTO_E_IO},
    {ENOMEM, PROTO_E_NO_MEMORY},
    {ENOSYS, PROTO_E_UNSUPPORTED},
    {EOPNOTSUPP, PROTO_E_UNSUPPORTED},
    {EBADMSG, PROTO_E_BAD_PAYLOAD},
    {EPROTO, PROTO_E_VERSION},
};

enum proto_err proto_err_from_errno(int err)
{
	if (err < 0)
		err = -err;
	if (!err)
		return PROTO_E_OK;
	for (size_t i = 0; i < ARRAY_SIZE(errno_map); i++)
		if (errno_map[i].err == err)
			return errno_map[i].code;
	return PROTO_E_INTERNAL;
}

int proto_err_to_errno(uint32_t code)
{
	switch (code) {
	case PROTO_E_OK:
		return 0;
	case PROTO_E_BAD_TYPE:
	case PROTO_E_BAD_LENGTH:
	case PROTO_E_UNKNOWN_ID:
	case PROTO_E_DUPLICATE_ID:
	case PROTO_E_WRONG_ORDER:
		return EPROTO;
	}
	for (size_t i = 0; i < ARRAY_SIZE(errno_map); i++)
		if (errno_map[i].code == code)
			return errno_map[i].err;
	return EIO;
}

static const char *const err_names[] = {
    [PROTO_E_OK] = "ok",
    [PROTO_E_INTERNAL] = "internal error",
    [PROTO_E_NOT_FOUND] = "not found",
    [PROTO_E_PERMISSION] = "permission denied",
    [PROTO_E_NO_SPACE] = "no space",
    [PROTO_E_IS_DIR] = "is a directory",
    [PROTO_E_NOT_DIR] = "not a directory",
    [PROTO_E_EXISTS] = "exists",
    [PROTO_E_INVALID] = "invalid",
    [PROTO_E_TOO_LARGE] = "too large",
    [PROTO_E_TIMED_OUT] = "timed out",
    [PROTO_E_BUSY] = "busy",
    [PROTO_E_NOT_EMPTY] = "not empty",
    [PROTO_E_LOOP] = "too many symlinks",
    [PROTO_E_IO] = "I/O error",
    [PROTO_E_NO_MEMORY] = "out of memory",
    [PROTO_E_CROSS_DEVICE] = "cross-device",
    [PROTO_E_UNSUPPORTED] = "unsupported",
    [PROTO_E_BAD_TYPE] = "unknown frame type",
    [PROTO_E_BAD_LENGTH] = "bad frame length",
    [PROTO_E_BAD_PAYLOAD] = "malformed payload",
    [PROTO_E_UNKNOWN_ID] = "unknown request id",
    [PROTO_E_DUPLICATE_ID] = "duplicate request id",
    [PROTO_E_WRONG_ORDER] = "frame out of order",
    [PROTO_E_VERSION] = "protocol version mismatch",
};

const char *proto_err_name(uint32_t code)
{
	if (code >= ARRAY_SIZE(err_names) || !err_names[code])
		return "unknown error";
	return err_names[code];
}

static const char *const type_names[] = {
    [PROTO_HELLO] = "HELLO",
    [PROTO_PING] = "PING",
    [PROTO_EXEC] = "EXEC",
    [PROTO_STDIN] = "STDIN",
    [PROTO_WRITE_OPEN] = "WRITE_OPEN",
    [PROTO_WRITE_CHUNK] = "WRITE_CHUNK",
    [PROTO_WRITE_END] = "WRITE_END",
    [PROTO_READ_OPEN] = "READ_OPEN",
    [PROTO_LIST] = "LIST",
    [PROTO_STAT] = "STAT",
    [PROTO_EXISTS] = "EXISTS",
    [PROTO_MKDIR] = "MKDIR",
    [PROTO_RENAME] = "RENAME",
    [PROTO_REMOVE] = "REMOVE",
    [PROTO_CLEAN] = "CLEAN",
    [PROTO_RESEED] = "RESEED",
    [PROTO_SHUTDOWN] = "SHUTDOWN",
    [PROTO_KILL] = "KILL",
    [PROTO_OK] = "OK",
    [PROTO_ERROR] = "ERROR",
    [PROTO_PONG] = "PONG",
    [PROTO_STDOUT] = "STDOUT",
    [PROTO_STDERR] = "STDERR",
    [PROTO_EXIT] = "EXIT",
    [PROTO_READ_DATA] = "READ_DATA",
    [PROTO_READ_END] = "READ_END",
    [PROTO_STAT_REPLY] = "STAT_REPLY",
    [PROTO_DIR_ENTRIES] = "DIR_ENTRIES",
    [PROTO_EXISTS_REPLY] = "EXISTS_REPLY",
};

const char *proto_type_name(uint16_t type)
{
	if (type >= ARRAY_SIZE(type_names) || !type_names[type])
		return "?";
	return type_names[type];
}
