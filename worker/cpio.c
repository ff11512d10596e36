/* A bounds-checked reader and extractor for cpio "newc" archives. */
#include "worker/cpio.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/util.h"

#define NEWC_MAGIC   "070701"
#define NEWC_HDR_LEN 110
#define NEWC_NFIELDS 13
#define NEWC_TRAILER "TRAILER!!!"

/* Field order in a newc header, after the magic. */
enum {
	F_INO,
	F_MODE,
	F_UID,
	F_GID,
	F_NLINK,
	F_MTIME,
	F_FILESIZE,
	F_DEVMAJOR,
	F_DEVMINOR,
	F_RDEVMAJOR,
	F_RDEVMINOR,
	F_NAMESIZE,
	F_CHECK,
};

void cpio_reader_init(struct cpio_reader *r, const void *buf, size_t len)
{
	r->buf = buf;
	r->len = len;
	r->pos = 0;
	r->why = NULL;
}

static int fail(struct cpio_reader *r, const char *why)
{
	r->why = why;
	return -EBADMSG;
}

static bool parse_hex8(const uint8_t *p, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 8; i++) {
		int c = p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return false;
		v = v << 4 | d;
	}
	*out = v;
	return true;
}

static size_t align4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

static int read_header(struct cpio_reader *r, uint32_t f[NEWC_NFIELDS])
{
	const uint8_t *h = r->buf + r->pos;
	size_t left = r->len - r->pos;

	if (memcmp(h, NEWC_MAGIC, MIN(left, 6)))
		return fail(r, "bad magic (not cpio newc)");
	if (left < NEWC_HDR_LEN)
		return fail(r, "truncated header");
	for (int i = 0; i < NEWC_NFIELDS; i++)
		if (!parse_hex8(h + 6 + 8 * i, &f[i]))
			return fail(r, "header field is not hex");
	return 0;
}

static int read_name(struct cpio_reader *r, uint32_t namesize,
		     const char **name)
{
	size_t at = r->pos + NEWC_HDR_LEN;
	const char *s = (const char *)r->buf + at;

	if (namesize < 2 || namesize > CPIO_NAME_MAX)
		return fail(r, "name size out of range");
	if (r->len - at < namesize)
		return fail(r, "truncated name");
	if (s[namesize - 1] || strlen(s) != namesize - 1)
		return fail(r, "name is not one NUL-terminated string");
	*name = s;
	return 0;
}

int cpio_next(struct cpio_reader *r, struct cpio_entry *e)
{
	uint32_t f[NEWC_NFIELDS];
	size_t data;
	int err;

	if (r->pos >= r->len)
		return fail(r, "archive ends without a trailer");
	err = read_header(r, f);
	if (!err)
		err = read_name(r, f[F_NAMESIZE], &e->name);
	if (err)
		return err;

	data = align4(r->pos + NEWC_HDR_LEN + f[F_NAMESIZE]);
	if (data > r->len || f[F_FILESIZE] > r->len - data)
		return fail(r, "member size runs past the end");
	if (!strcmp(e->name, NEWC_TRAILER))
		return 0;

	e->ino = f[F_INO];
	e->mode = f[F_MODE];
	e->uid = f[F_UID];
	e->gid = f[F_GID];
	e->mtime = f[F_MTIME];
	e->rdev_major = f[F_RDEVMAJOR];
	e->rdev_minor = f[F_RDEVMINOR];
	e->data = r->buf + data;
	e->size = f[F_FILESIZE];
	r->pos = MIN(align4(data + e->size), r->len);
	return 1;
}

int cpio_check_name(const char *name, const char **why)
{
	const char *p = name;

	if (*p == '/') {
		*why = "absolute member name";
		return -EINVAL;
	}
	for (;;) {
		size_t n = strcspn(p, "/");

		if (n == 0) {
			*why = "empty path component";
			return -EINVAL;
		}
		if (n == 2 && !memcmp(p, "..", 2)) {
			*why = "'..' in member name";
			return -EINVAL;
		}
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

/* The directory last opened for a member, kept for its siblings: the
 * archive is sorted, so most members share their parent's fd. */
struct parent {
	int fd; /* -1: none */
	size_t len;
	char path[CPIO_NAME_MAX];
};

/* The directory holding path below root, opened without following any
 * symlink; root itself for a top-level name. */
static int open_parent(int root, const char *path, struct parent *p,
		       const char **base)
{
	struct open_how how = {
	    .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
		       RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	const char *slash = strrchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : 0;
	long fd;

	*base = slash ? slash + 1 : path;
	if (!slash)
		return root;
	if (p->fd >= 0 && p->len == len && !memcmp(p->path, path, len))
		return p->fd;

	if (p->fd >= 0)
		close(p->fd);
	memcpy(p->path, path, len);
	p->path[len] = '\0';
	p->len = len;
	fd = syscall(SYS_openat2, root, p->path, &how, sizeof(how));
	p->fd = fd < 0 ? -1 : (int)fd;
	return fd < 0 ? -errno : (int)fd;
}

static int write_file(int dir, const char *base, const struct cpio_entry *e)
{
	int fd, err;

	fd = openat(dir, base,
		    O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    e->mode & 07777);
	if (fd < 0)
		return -errno;

	err = write_full(fd, e->data, e->size);
	if (!err && fchmod(fd, e->mode & 07777) < 0)
		err = -errno;
	close(fd);
	return err;
}

static int make_dir(int dir, const char *base, const struct cpio_entry *e)
{
	if (mkdirat(dir, base, e->mode & 07777) < 0 && errno != EEXIST)
		return -errno;
	if (fchmodat(dir, base, e->mode & 07777, AT_SYMLINK_NOFOLLOW) < 0 &&
	    errno != EOPNOTSUPP)
		return -errno;
	return 0;
}

static int make_symlink(int dir, const char *base, const struct cpio_entry *e)
{
	char target[CPIO_NAME_MAX];

	if (e->size == 0 || e->size >= sizeof(target) ||
	    memchr(e->data, '\0', e->size))
		return -EINVAL;
	memcpy(target, e->data, e->size);
	target[e->size] = '\0';

	/* A later member replaces an earlier one of the same name. */
	if (symlinkat(target, dir, base) < 0 &&
	    (errno != EEXIST || unlinkat(dir, base, 0) < 0 ||
	     symlinkat(target, dir, base) < 0))
		return -errno;
	return 0;
}

static int make_node(int dir, const char *base, const struct cpio_entry *e)
{
	dev_t dev = makedev(e->rdev_major, e->rdev_minor);

	dev = S_ISCHR(e->mode) ? dev : 0;
	if (mknodat(dir, base, e->mode, dev) < 0 &&
	    (errno != EEXIST || unlinkat(dir, base, 0) < 0 ||
	     mknodat(dir, base, e->mode, dev) < 0))
		return -errno;
	return fchmodat(dir, base, e->mode & 07777, 0) < 0 ? -errno : 0;
}

static int create_member(int dir, const char *base, const struct cpio_entry *e,
			 const char **why)
{
	int err;

	switch (e->mode & S_IFMT) {
	case S_IFREG:
		err = write_file(dir, base, e);
		*why = "cannot write a file";
		break;
	case S_IFDIR:
		err = make_dir(dir, base, e);
		*why = "cannot make a directory";
		break;
	case S_IFLNK:
		err = make_symlink(dir, base, e);
		*why = "cannot make a symlink";
		break;
	case S_IFCHR:
	case S_IFIFO:
		err = make_node(dir, base, e);
		*why = "cannot make a device node or fifo";
		break;
	default:
		err = -EINVAL;
		*why = "unsupported member type";
	}
	return err;
}

/* The path a member is created at, or NULL for the root itself; names
 * from `find .` start with "./". Sets *err when the name is unsafe. */
static const char *member_path(const struct cpio_entry *e, int *err,
			       const char **why)
{
	const char *name = e->name;

	while (!strncmp(name, "./", 2))
		name += 2;
	*err = 0;
	if (!strcmp(name, ".") || !*name)
		return NULL;
	*err = cpio_check_name(name, why);
	return *err ? NULL : name;
}

static bool supported_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
	case S_IFLNK:
	case S_IFCHR:
	case S_IFIFO:
		return true;
	}
	return false;
}

static int extract_one(int root, const struct cpio_entry *e, struct parent *p,
		       const char **why)
{
	const char *name, *base;
	int dir, err;

	name = member_path(e, &err, why);
	if (!name)
		return err;

	dir = open_parent(root, name, p, &base);
	if (dir < 0) {
		*why = "cannot open the parent directory of a member";
		return dir;
	}

	return create_member(dir, base, e, why);
}

int cpio_check(const void *buf, size_t len, const char **why)
{
	struct cpio_reader r;
	struct cpio_entry e;
	int n, err;

	cpio_reader_init(&r, buf, len);
	while ((n = cpio_next(&r, &e)) == 1) {
		member_path(&e, &err, why);
		if (err)
			return err;
		if (!supported_type(e.mode)) {
			*why = "unsupported member type";
			return -EINVAL;
		}
	}
	if (n < 0)
		*why = r.why;
	return n;
}

int cpio_extract(const void *buf, size_t len, int dirfd, const char **why)
{
	struct parent p = {.fd = -1};
	struct cpio_reader r;
	struct cpio_entry e;
	int n, err = 0;

	cpio_reader_init(&r, buf, len);
	while (!err && (n = cpio_next(&r, &e)) == 1)
		err = extract_one(dirfd, &e, &p, why);
	if (!err && n < 0) {
		*why = r.why;
		err = n;
	}

	if (p.fd >= 0)
		close(p.fd);
	return err;
}
