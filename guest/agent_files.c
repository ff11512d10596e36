/* File requests: stream writes and reads, list, stat, mkdir, rename, rm. */
#include "guest/agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

static void bad_payload(struct agent *a, const struct proto_frame *f)
{
	agent_reply_error(a, f->id, PROTO_E_BAD_PAYLOAD,
			  "%s: malformed request", proto_type_name(f->type));
}

/*
 * Open a file for a transfer without blocking: a FIFO or a terminal the
 * tenant left in place must not stall the agent, so only regular files
 * are accepted. Returns the fd or -errno.
 */
static int open_regular(struct agent *a, const char *path, int flags,
			mode_t mode)
{
	int fd = agent_open(a, path, flags | O_NONBLOCK | O_NOCTTY, mode);
	struct stat st;
	int err = 0;

	if (fd < 0)
		return fd == -ENXIO ? -EINVAL : fd;
	if (fstat(fd, &st) < 0)
		err = -errno;
	else if (S_ISDIR(st.st_mode))
		err = -EISDIR;
	else if (!S_ISREG(st.st_mode))
		err = -EINVAL;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

static void write_open(struct agent *a, const struct proto_frame *f,
		       struct proto_cur *c)
{
	uint32_t mode = proto_get_u32(c);
	uint32_t flags = proto_get_u32(c);
	const char *path = proto_get_str(c, PROTO_MAX_PATH);
	int oflags = O_WRONLY | O_CREAT, fd, err = 0;
	char parent[PROTO_MAX_PATH];
	struct agent_req *r;

	if (proto_cur_done(c) || mode > 07777 ||
	    (flags & ~(PROTO_WRITE_APPEND | PROTO_WRITE_PARENTS)))
		return bad_payload(a, f);
	oflags |= (flags & PROTO_WRITE_APPEND) ? O_APPEND : O_TRUNC;

	if (flags & PROTO_WRITE_PARENTS) {
		snprintf(parent, sizeof(parent), "%s", path);
		if (strrchr(parent, '/')) {
			*strrchr(parent, '/') = '\0';
			err = agent_mkdirs(a, parent, 0755);
		}
	}
	fd = err ? err : open_regular(a, path, oflags, mode ? mode : 0644);

	/* Even a failed write stays open, to absorb its chunks until END. */
	r = agent_req_new(a, f->id, REQ_WRITE);
	if (!r) {
		if (fd >= 0)
			close(fd);
		return agent_reply_error(a, f->id, PROTO_E_BUSY,
					 "WRITE_OPEN: too many requests");
	}
	r->f.fd = fd;
	r->f.failed = fd < 0;
	if (fd < 0)
		agent_reply_errno(a, f->id, fd, path);
}

static struct agent_req *open_write(struct agent *a,
				    const struct proto_frame *f)
{
	struct agent_req *r = agent_req_find(a, f->id);
	const char *name = proto_type_name(f->type);

	if (!r)
		agent_reply_error(a, f->id, PROTO_E_UNKNOWN_ID,
				  "%s: no write %u is open", name, f->id);
	else if (r->kind != REQ_WRITE)
		agent_reply_error(a, f->id, PROTO_E_WRONG_ORDER,
				  "%s: request %u is not a write", name, f->id);
	else
		return r;
	return NULL;
}

void agent_write_chunk(struct agent *a, const struct proto_frame *f)
{
	struct agent_req *r = open_write(a, f);
	int err;

	if (!r || r->f.failed)
		return;
	err = write_full(r->f.fd, f->payload, f->len);
	if (err) {
		/* Reported now; the rest of the stream is dropped. */
		r->f.failed = true;
		agent_reply_errno(a, f->id, err, "WRITE_CHUNK");
		return;
	}
	r->f.bytes += f->len;
}

void agent_write_end(struct agent *a, const struct proto_frame *f)
{
	struct agent_req *r = open_write(a, f);
	struct proto_msg m;
	uint64_t bytes;
	bool failed;
	int err;

	if (!r)
		return;
	failed = r->f.failed;
	bytes = r->f.bytes;
	err = r->f.fd >= 0 && close(r->f.fd) < 0 ? -errno : 0;
	agent_req_free(r);
	if (failed)
		return;
	if (f->len)
		return agent_reply_error(a, f->id, PROTO_E_BAD_PAYLOAD,
					 "WRITE_END: takes no payload");
	if (err)
		return agent_reply_errno(a, f->id, err, "WRITE_END");

	agent_msg_begin(a, &m, PROTO_OK, f->id, 8);
	proto_put_u64(&m, bytes);
	agent_msg_send(a, &m);
}

static void read_open(struct agent *a, const struct proto_frame *f,
		      struct proto_cur *c)
{
	uint64_t offset = proto_get_u64(c);
	uint64_t length = proto_get_u64(c);
	const char *path = proto_get_str(c, PROTO_MAX_PATH);
	struct agent_req *r;
	int fd;

	if (proto_cur_done(c) || offset > INT64_MAX)
		return bad_payload(a, f);
	fd = open_regular(a, path, O_RDONLY, 0);
	if (fd < 0)
		return agent_reply_errno(a, f->id, fd, path);

	r = agent_req_new(a, f->id, REQ_READ);
	if (!r) {
		close(fd);
		return agent_reply_error(a, f->id, PROTO_E_BUSY,
					 "READ_OPEN: too many requests");
	}
	r->f.fd = fd;
	r->f.offset = offset;
	r->f.left = length ? length : UINT64_MAX;
}

static void read_done(struct agent *a, struct agent_req *r, int err)
{
	struct proto_msg m;

	if (err) {
		agent_reply_errno(a, r->id, err, "READ");
	} else {
		agent_msg_begin(a, &m, PROTO_READ_END, r->id, 8);
		proto_put_u64(&m, r->f.bytes);
		agent_msg_send(a, &m);
	}
	close(r->f.fd);
	agent_req_free(r);
}

bool agent_read_pump(struct agent *a, struct agent_req *r)
{
	struct proto_msg m;
	size_t room;
	uint8_t *dst;
	ssize_t n;

	agent_msg_begin(a, &m, PROTO_READ_DATA, r->id, PROTO_CHUNK);
	dst = proto_msg_tail(&m, &room);
	room = MIN(room, r->f.left);
	if (!room && r->f.left) {
		read_done(a, r, -ENOMEM);
		return false;
	}

	do
		n = pread(r->f.fd, dst, room, r->f.offset);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		read_done(a, r, n < 0 ? -errno : 0);
		return false;
	}

	proto_msg_add(&m, n);
	agent_msg_send(a, &m);
	r->f.offset += n;
	r->f.bytes += n;
	r->f.left -= n;
	if (r->f.left)
		return true;
	read_done(a, r, 0);
	return false;
}

static uint8_t kind_of(mode_t mode)
{
	if (S_ISREG(mode))
		return PROTO_KIND_FILE;
	if (S_ISDIR(mode))
		return PROTO_KIND_DIR;
	if (S_ISLNK(mode))
		return PROTO_KIND_SYMLINK;
	return PROTO_KIND_OTHER;
}

static void put_stat(struct proto_msg *m, const struct stat *st)
{
	proto_put_u8(m, kind_of(st->st_mode));
	proto_put_u32(m, st->st_mode & 07777);
	proto_put_u64(m, st->st_size);
	proto_put_u64(m, (uint64_t)st->st_mtim.tv_sec * 1000000000ull +
			     st->st_mtim.tv_nsec);
}

/* Entries are packed into frames of about a chunk each. */
static void list_entries(struct agent *a, uint32_t id, DIR *d)
{
	struct proto_msg m;
	struct dirent *e;
	uint64_t count = 0;

	agent_msg_begin(a, &m, PROTO_DIR_ENTRIES, id, PROTO_CHUNK);
	while ((e = readdir(d))) {
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (m.len > PROTO_CHUNK - 512) {
			agent_msg_send(a, &m);
			agent_msg_begin(a, &m, PROTO_DIR_ENTRIES, id,
					PROTO_CHUNK);
		}
		put_stat(&m, &st);
		proto_put_str(&m, e->d_name);
		count++;
	}
	if (m.len > PROTO_HDR_SIZE)
		agent_msg_send(a, &m);

	agent_msg_begin(a, &m, PROTO_OK, id, 8);
	proto_put_u64(&m, count);
	agent_msg_send(a, &m);
}

static void list(struct agent *a, const struct proto_frame *f, const char *path)
{
	int fd = agent_open(a, path, O_RDONLY | O_DIRECTORY, 0);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);

	if (!d) {
		if (fd >= 0)
			close(fd);
		return agent_reply_errno(a, f->id, fd < 0 ? fd : -errno, path);
	}
	list_entries(a, f->id, d);
	closedir(d);
}

/* lstat inside the root: 0 or -errno. */
static int stat_path(struct agent *a, const char *path, struct stat *st)
{
	int fd = agent_open(a, path, O_PATH | O_NOFOLLOW, 0);
	int err = 0;

	if (fd < 0)
		return fd;
	if (fstatat(fd, "", st, AT_EMPTY_PATH) < 0)
		err = -errno;
	close(fd);
	return err;
}

static void stat_reply(struct agent *a, const struct proto_frame *f,
		       const char *path)
{
	struct proto_msg m;
	struct stat st;
	int err = stat_path(a, path, &st);

	if (err)
		return agent_reply_errno(a, f->id, err, path);
	agent_msg_begin(a, &m, PROTO_STAT_REPLY, f->id, 32);
	put_stat(&m, &st);
	agent_msg_send(a, &m);
}

static void exists_reply(struct agent *a, const struct proto_frame *f,
			 const char *path)
{
	struct proto_msg m;
	struct stat st;
	int err = stat_path(a, path, &st);

	if (err && err != -ENOENT && err != -ENOTDIR)
		return agent_reply_errno(a, f->id, err, path);
	agent_msg_begin(a, &m, PROTO_EXISTS_REPLY, f->id, 1);
	proto_put_u8(&m, !err);
	agent_msg_send(a, &m);
}

static int mkdir_path(struct agent *a, const char *path, uint32_t mode,
		      uint32_t flags)
{
	char name[NAME_MAX + 1];
	int dir, err = 0;

	if (flags & PROTO_MKDIR_PARENTS)
		return agent_mkdirs(a, path, mode);

	dir = agent_open_parent(a, path, name, sizeof(name));
	if (dir < 0)
		return dir;
	if (mkdirat(dir, name, mode) < 0)
		err = -errno;
	close(dir);
	return err;
}

static void mkdir_req(struct agent *a, const struct proto_frame *f,
		      struct proto_cur *c)
{
	uint32_t mode = proto_get_u32(c);
	uint32_t flags = proto_get_u32(c);
	const char *path = proto_get_str(c, PROTO_MAX_PATH);
	int err;

	if (proto_cur_done(c) || mode > 07777 || (flags & ~PROTO_MKDIR_PARENTS))
		return bad_payload(a, f);
	err = mkdir_path(a, path, mode ? mode : 0755, flags);
	if (err)
		return agent_reply_errno(a, f->id, err, path);
	agent_reply_empty(a, PROTO_OK, f->id);
}

static int rename_path(struct agent *a, const char *from, const char *to)
{
	char name1[NAME_MAX + 1], name2[NAME_MAX + 1];
	int d1 = agent_open_parent(a, from, name1, sizeof(name1));
	int d2 = d1 < 0 ? d1 : agent_open_parent(a, to, name2, sizeof(name2));
	int err = d2;

	if (d2 >= 0) {
		err = renameat(d1, name1, d2, name2) < 0 ? -errno : 0;
		close(d2);
	}
	if (d1 >= 0)
		close(d1);
	return err;
}

static void rename_req(struct agent *a, const struct proto_frame *f,
		       struct proto_cur *c)
{
	const char *from = proto_get_str(c, PROTO_MAX_PATH);
	const char *to = proto_get_str(c, PROTO_MAX_PATH);
	int err;

	if (proto_cur_done(c))
		return bad_payload(a, f);
	err = rename_path(a, from, to);
	if (err)
		return agent_reply_errno(a, f->id, err, from);
	agent_reply_empty(a, PROTO_OK, f->id);
}

static int remove_path(struct agent *a, const char *path, uint32_t flags)
{
	char name[NAME_MAX + 1];
	uint64_t count = 0;
	int dir = agent_open_parent(a, path, name, sizeof(name));
	int err = 0;

	if (dir < 0)
		return dir;
	if (flags & PROTO_REMOVE_RECURSIVE)
		err = agent_remove_tree(dir, name, &count);
	else if (unlinkat(dir, name, 0) < 0 &&
		 (errno != EISDIR || unlinkat(dir, name, AT_REMOVEDIR) < 0))
		err = -errno;
	close(dir);
	return err;
}

static void remove_req(struct agent *a, const struct proto_frame *f,
		       struct proto_cur *c)
{
	uint32_t flags = proto_get_u32(c);
	const char *path = proto_get_str(c, PROTO_MAX_PATH);
	int err;

	if (proto_cur_done(c) || (flags & ~PROTO_REMOVE_RECURSIVE))
		return bad_payload(a, f);
	err = remove_path(a, path, flags);
	if (err)
		return agent_reply_errno(a, f->id, err, path);
	agent_reply_empty(a, PROTO_OK, f->id);
}

/* Requests whose whole payload is one path. */
static void path_req(struct agent *a, const struct proto_frame *f,
		     struct proto_cur *c)
{
	const char *path = proto_get_str(c, PROTO_MAX_PATH);

	if (proto_cur_done(c))
		return bad_payload(a, f);
	if (f->type == PROTO_LIST)
		list(a, f, path);
	else if (f->type == PROTO_STAT)
		stat_reply(a, f, path);
	else
		exists_reply(a, f, path);
}

void agent_files_request(struct agent *a, const struct proto_frame *f)
{
	struct proto_cur c;

	proto_cur_init(&c, f);
	switch (f->type) {
	case PROTO_WRITE_OPEN:
		return write_open(a, f, &c);
	case PROTO_READ_OPEN:
		return read_open(a, f, &c);
	case PROTO_MKDIR:
		return mkdir_req(a, f, &c);
	case PROTO_RENAME:
		return rename_req(a, f, &c);
	case PROTO_REMOVE:
		return remove_req(a, f, &c);
	default:
		return path_req(a, f, &c);
	}
}
