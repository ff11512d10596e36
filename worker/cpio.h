/* A bounds-checked reader and extractor for cpio "newc" archives. */
#ifndef VMPOOL_CPIO_H
#define VMPOOL_CPIO_H

#include <stddef.h>
#include <stdint.h>

/* Longest member name accepted, counting its NUL. */
#define CPIO_NAME_MAX 4096

struct cpio_entry {
	const char *name; /* NUL-terminated, points into the archive */
	uint32_t ino;
	uint32_t mode; /* file type and permission bits */
	uint32_t uid;
	uint32_t gid;
	uint32_t mtime;
	uint32_t rdev_major;
	uint32_t rdev_minor;
	const void *data; /* file contents or symlink target */
	size_t size;
};

struct cpio_reader {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	/* After an error: a short description of what was wrong. */
	const char *why;
};

void cpio_reader_init(struct cpio_reader *r, const void *buf, size_t len);

/* Read the next member. Returns 1 and fills *e, 0 at the trailer, or
 * -EBADMSG (truncated or corrupt header, sizes past the end) with r->why
 * set. Every pointer in *e lies inside the archive. */
int cpio_next(struct cpio_reader *r, struct cpio_entry *e);

/* Check that a member name stays below the root it is extracted into:
 * relative, no "..", no empty components. 0 or -EINVAL with *why set. */
int cpio_check_name(const char *name, const char **why);

/* Walk the whole archive as cpio_extract would, touching nothing:
 * 0, or -EBADMSG / -EINVAL with *why set. */
int cpio_check(const void *buf, size_t len, const char **why);

/* Create every member of the archive below the directory dirfd. Paths
 * are resolved without following symlinks and never leave dirfd, so a
 * hostile archive cannot write outside it. Regular files, directories,
 * symlinks, fifos and character devices are supported; hard links are
 * written as separate copies. Returns 0, or -errno with *why saying what
 * failed (-EBADMSG corrupt, -EINVAL bad name or type, else the failing
 * call's errno). */
int cpio_extract(const void *buf, size_t len, int dirfd, const char **why);

#endif
