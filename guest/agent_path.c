/* Tenant paths resolved beneath the sandbox root, never escaping it. */
#include "guest/agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"

#define MAX_LINKS 40

static int sys_openat2(int dirfd, const char *path, int flags, mode_t mode,
		       uint64_t resolve)
{
	struct open_how how = {
	    .flags = flags | O_CLOEXEC,
	    .mode = flags & (O_CREAT | O_TMPFILE) ? mode : 0,
	    .resolve = resolve,
	};
	long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

/* Relative paths start at the work dir; the result is absolute. */
static int join(const struct agent *a, const char *path, char *out, size_t size)
{
	int n;

	if (path[0] == '/')
		n = snprintf(out, size, "%s", path);
	else
		n = snprintf(out, size, "%s/%s", a->workdir, path);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static bool is_root(const struct agent *a, int fd)
{
	struct stat st, root;

	return !fstat(fd, &st) && !fstat(a->root_fd, &root) &&
	       st.st_dev == root.st_dev && st.st_ino == root.st_ino;
}

static int dup_root(const struct agent *a)
{
	int fd = fcntl(a->root_fd, F_DUPFD_CLOEXEC, 0);

	return fd < 0 ? -errno : fd;
}

/* Step from dir to its parent, but never above the root. */
static int step_up(const struct agent *a, int dir)
{
	int up;

	if (is_root(a, dir))
		return dir;
	up = openat(dir, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
	close(dir);
	return up < 0 ? -errno : up;
}

struct walk {
	const struct agent *a;
	char rest[PROTO_MAX_PATH * 2];
	char *p;
	int dir;
	int links;
};

/* Copy the next component into comp: 1, 0 at the end, or -errno. */
static int next_comp(struct walk *w, char *comp, bool *last)
{
	size_t n;

	w->p += strspn(w->p, "/");
	if (!*w->p)
		return 0;

	n = strcspn(w->p, "/");
	if (n > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(comp, w->p, n);
	comp[n] = '\0';
	w->p += n;
	*last = !w->p[strspn(w->p, "/")];
	return 1;
}

/* When comp is a symlink, put its target in front of the rest: 1, 0 when
 * it is not a link, or -errno. */
static int follow(struct walk *w, const char *comp)
{
	char target[PROTO_MAX_PATH], tmp[sizeof(w->rest)];
	ssize_t len = readlinkat(w->dir, comp, target, sizeof(target) - 1);
	int n;

	if (len < 0)
		return 0;
	if (++w->links > MAX_LINKS)
		return -ELOOP;

	target[len] = '\0';
	n = snprintf(tmp, sizeof(tmp), "%s/%s", target, w->p);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(w->rest, tmp, n + 1);
	w->p = w->rest;

	if (target[0] == '/') {
		close(w->dir);
		w->dir = dup_root(w->a);
	}
	return w->dir < 0 ? w->dir : 1;
}

/* Open comp in the current directory: the result when last, else move
 * into it and return 0. */
static int descend(struct walk *w, const char *comp, bool last, int flags,
		   mode_t mode)
{
	int next;

	if (last)
		next =
		    openat(w->dir, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	else
		next = openat(w->dir, comp,
			      O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (next < 0)
		return -errno;
	if (last)
		return next;

	close(w->dir);
	w->dir = next;
	return 0;
}

/* The walk ended on a directory it already holds: reopen it as asked. */
static int open_held(struct walk *w, int flags)
{
	int fd = openat(w->dir, ".",
			(flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/*
 * Resolve one component at a time with O_NOFOLLOW, expanding symlinks
 * here so that ".." and absolute targets stop at the root. Used only
 * where openat2 is missing (kernels before 5.6).
 */
static int walk_open(const struct agent *a, const char *path, int flags,
		     mode_t mode)
{
	struct walk w = {.a = a, .dir = dup_root(a)};
	char comp[NAME_MAX + 1];
	bool last = false;
	int r;

	snprintf(w.rest, sizeof(w.rest), "%s", path);
	w.p = w.rest;
	while (w.dir >= 0 && (r = next_comp(&w, comp, &last)) > 0) {
		if (!strcmp(comp, "."))
			continue;
		if (!strcmp(comp, "..")) {
			w.dir = step_up(a, w.dir);
			continue;
		}
		if (!(last && (flags & O_NOFOLLOW))) {
			r = follow(&w, comp);
			if (r > 0)
				continue;
			if (r < 0)
				goto done;
		}
		r = descend(&w, comp, last, flags, mode);
		if (r)
			goto done;
	}
	if (w.dir < 0)
		return w.dir;
	r = r < 0 ? r : open_held(&w, flags);
done:
	if (w.dir >= 0)
		close(w.dir);
	return r;
}

static int resolve(const struct agent *a, const char *abs, int flags,
		   mode_t mode)
{
	if (a->use_openat2)
		return sys_openat2(a->root_fd, abs, flags, mode,
				   RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
	return walk_open(a, abs, flags, mode);
}

int agent_open(struct agent *a, const char *path, int flags, mode_t mode)
{
	char abs[PROTO_MAX_PATH];
	int err = join(a, path, abs, sizeof(abs));

	return err ? err : resolve(a, abs, flags, mode);
}

int agent_open_parent(struct agent *a, const char *path, char *name,
		      size_t size)
{
	char abs[PROTO_MAX_PATH];
	char *slash;
	size_t n;
	int err = join(a, path, abs, sizeof(abs));

	if (err)
		return err;
	for (n = strlen(abs); n > 1 && abs[n - 1] == '/';)
		abs[--n] = '\0';

	slash = strrchr(abs, '/');
	if (!strcmp(slash + 1, "") || !strcmp(slash + 1, ".") ||
	    !strcmp(slash + 1, ".."))
		return -EINVAL;
	if (strlen(slash + 1) >= size)
		return -ENAMETOOLONG;
	strcpy(name, slash + 1);

	slash[slash == abs ? 1 : 0] = '\0';
	return resolve(a, abs, O_PATH | O_DIRECTORY, 0);
}

static int mkdir_one(struct agent *a, const char *path, mode_t mode)
{
	char name[NAME_MAX + 1];
	int dir = agent_open_parent(a, path, name, sizeof(name));
	int err = 0;

	if (dir < 0)
		return dir == -EINVAL ? 0 : dir;
	if (mkdirat(dir, name, mode) < 0 && errno != EEXIST)
		err = -errno;
	close(dir);
	return err;
}

int agent_mkdirs(struct agent *a, const char *path, mode_t mode)
{
	char abs[PROTO_MAX_PATH];
	int err = join(a, path, abs, sizeof(abs));
	int fd;

	for (char *p = abs + 1; !err && *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		err = mkdir_one(a, abs, mode);
		*p = '/';
	}
	if (!err)
		err = mkdir_one(a, abs, mode);
	if (err)
		return err;

	fd = resolve(a, abs, O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		return fd == -ENOTDIR ? -EEXIST : fd;
	close(fd);
	return 0;
}

/* Unlink every non-directory in dir: 1 and a subdirectory's name in sub
 * when one is left, 0 when dir is empty, or -errno. */
static int empty_level(int dir, char *sub, uint64_t *count)
{
	int fd = fcntl(dir, F_DUPFD_CLOEXEC, 0);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *e;
	int r = 0;

	if (!d) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	rewinddir(d);
	while (!r && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!unlinkat(dir, e->d_name, 0)) {
			(*count)++;
		} else if (errno == EISDIR) {
			strcpy(sub, e->d_name);
			r = 1;
		} else if (errno != ENOENT) {
			r = -errno;
		}
	}
	closedir(d);
	return r;
}

struct name_stack {
	char (*v)[NAME_MAX + 1];
	size_t n;
	size_t cap;
};

static int push_name(struct name_stack *s, const char *name)
{
	if (s->n == s->cap) {
		size_t cap = s->cap * 2 + 16;
		void *p = realloc(s->v, cap * sizeof(*s->v));

		if (!p)
			return -ENOMEM;
		s->v = p;
		s->cap = cap;
	}
	strcpy(s->v[s->n++], name);
	return 0;
}

/* Open name in the directory fd, closing fd: the new fd or -errno. */
static int move_to(int fd, const char *name)
{
	int next =
	    openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r = next < 0 ? -errno : next;

	close(fd);
	return r;
}

/*
 * Empty the directory open in fd (consumed). Goes depth first holding one
 * fd and a stack of names, so a tree of any depth is removed without
 * running out of descriptors.
 */
static int empty_tree(int fd, uint64_t *count)
{
	struct name_stack s = {0};
	char sub[NAME_MAX + 1];
	int r;

	while ((r = empty_level(fd, sub, count)) >= 0) {
		if (r == 1 && (r = push_name(&s, sub)) == 0) {
			fd = move_to(fd, sub);
		} else if (r == 0 && s.n) {
			fd = move_to(fd, "..");
			if (fd >= 0 && unlinkat(fd, s.v[--s.n], AT_REMOVEDIR))
				r = -errno;
			else if (fd >= 0)
				(*count)++;
		} else {
			break;
		}
		if (fd < 0 || r < 0) {
			r = fd < 0 ? fd : r;
			break;
		}
	}
	if (fd >= 0)
		close(fd);
	free(s.v);
	return r < 0 ? r : 0;
}

int agent_remove_tree(int dirfd, const char *name, uint64_t *count)
{
	int fd, err;

	if (!unlinkat(dirfd, name, 0)) {
		(*count)++;
		return 0;
	}
	if (errno != EISDIR)
		return -errno;

	fd = openat(dirfd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = empty_tree(fd, count);
	if (err)
		return err;

	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
		return -errno;
	(*count)++;
	return 0;
}

int agent_empty_dir(struct agent *a, const char *path, uint64_t *count)
{
	int fd = agent_open(a, path, O_RDONLY | O_DIRECTORY, 0);

	if (fd < 0)
		return fd;
	return empty_tree(fd, count);
}

static bool openat2_works(int dirfd)
{
	int fd;

	if (getenv("VMPOOL_NO_OPENAT2"))
		return false;
	fd = sys_openat2(dirfd, ".", O_PATH, 0, RESOLVE_IN_ROOT);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int agent_path_init(struct agent *a, const char *root, const char *workdir)
{
	char wd[PROTO_MAX_PATH];
	int fd;

	if (workdir[0] != '/' || strlen(workdir) >= sizeof(wd))
		return -EINVAL;
	snprintf(wd, sizeof(wd), "%s", workdir);

	/* A root given later narrows the current one, never widens it. */
	if (a->root_fd >= 0)
		fd = agent_open(a, root, O_PATH | O_DIRECTORY, 0);
	else if ((fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		fd = -errno;
	if (fd < 0)
		return fd;

	if (a->root_fd >= 0)
		close(a->root_fd);
	a->root_fd = fd;
	a->use_openat2 = openat2_works(fd);
	memcpy(a->workdir, wd, sizeof(wd));
	return agent_mkdirs(a, a->workdir, 0755);
}
