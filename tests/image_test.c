/* Tests for the guest image and the cpio newc reader that unpacks it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "worker/cpio.h"

/* ---- archives built in memory ---- */

struct archive {
	uint8_t buf[16384];
	size_t len;
};

static void pad4(struct archive *a)
{
	while (a->len % 4)
		a->buf[a->len++] = 0;
}

static void put_header(struct archive *a, uint32_t mode, uint32_t filesize,
		       uint32_t namesize)
{
	char h[111];

	snprintf(h, sizeof(h),
		 "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		 1u, mode, 0u, 0u, 1u, 0u, filesize, 0u, 0u, 0u, 0u, namesize,
		 0u);
	memcpy(a->buf + a->len, h, 110);
	a->len += 110;
}

static void put_member(struct archive *a, const char *name, uint32_t mode,
		       const char *data)
{
	size_t nlen = strlen(name) + 1, dlen = data ? strlen(data) : 0;

	put_header(a, mode, dlen, nlen);
	memcpy(a->buf + a->len, name, nlen);
	a->len += nlen;
	pad4(a);
	memcpy(a->buf + a->len, data ? data : "", dlen);
	a->len += dlen;
	pad4(a);
}

static void put_trailer(struct archive *a)
{
	put_member(a, "TRAILER!!!", 0, NULL);
}

static void small_archive(struct archive *a)
{
	a->len = 0;
	put_member(a, "etc", S_IFDIR | 0755, NULL);
	put_member(a, "etc/motd", S_IFREG | 0644, "hello\n");
	put_member(a, "etc/link", S_IFLNK | 0777, "motd");
	put_trailer(a);
}

static int check_one(const char *name, uint32_t mode, const char **why)
{
	static struct archive a;

	a.len = 0;
	put_member(&a, name, mode, "x");
	put_trailer(&a);
	return cpio_check(a.buf, a.len, why);
}

/* ---- the reader ---- */

Test(image, reader_accepts_a_well_formed_archive)
{
	struct archive a;
	struct cpio_reader r;
	struct cpio_entry e;

	small_archive(&a);
	cpio_reader_init(&r, a.buf, a.len);
	cr_assert_eq(cpio_next(&r, &e), 1);
	cr_assert_str_eq(e.name, "etc");
	cr_assert_eq(cpio_next(&r, &e), 1);
	cr_assert_str_eq(e.name, "etc/motd");
	cr_assert_eq(e.size, 6);
	cr_assert_eq(memcmp(e.data, "hello\n", 6), 0);
	cr_assert_eq(cpio_next(&r, &e), 1);
	cr_assert(S_ISLNK(e.mode));
	cr_assert_eq(cpio_next(&r, &e), 0);
}

Test(image, reader_rejects_every_truncation)
{
	struct archive a;
	const char *why = NULL;

	small_archive(&a);
	for (size_t len = 0; len < a.len; len++) {
		cr_assert_eq(cpio_check(a.buf, len, &why), -EBADMSG,
			     "prefix of %zu bytes accepted", len);
		cr_assert_not_null(why);
	}
	cr_assert_eq(cpio_check(a.buf, a.len, &why), 0);
}

Test(image, reader_rejects_corrupt_headers)
{
	struct archive a;
	const char *why;

	small_archive(&a);
	a.buf[0] = '1';
	cr_assert_eq(cpio_check(a.buf, a.len, &why), -EBADMSG);
	cr_assert_str_eq(why, "bad magic (not cpio newc)");

	small_archive(&a);
	a.buf[20] = 'g';
	cr_assert_eq(cpio_check(a.buf, a.len, &why), -EBADMSG);
	cr_assert_str_eq(why, "header field is not hex");

	a.len = 0;
	put_header(&a, S_IFREG | 0644, 0, 0);
	cr_assert_eq(cpio_check(a.buf, a.len, &why), -EBADMSG);
	cr_assert_str_eq(why, "name size out of range");
}

Test(image, reader_rejects_oversized_sizes)
{
	struct archive a = {.len = 0};
	const char *why;

	put_header(&a, S_IFREG | 0644, 0xffffffffu, 2);
	memcpy(a.buf + a.len, "a", 2);
	a.len += 2;
	pad4(&a);
	cr_assert_eq(cpio_check(a.buf, a.len, &why), -EBADMSG);
	cr_assert_str_eq(why, "member size runs past the end");

	a.len = 0;
	put_header(&a, S_IFREG | 0644, 0, 0xffffffffu);
	cr_assert_eq(cpio_check(a.buf, a.len, &why), -EBADMSG);
	cr_assert_str_eq(why, "name size out of range");
}

Test(image, reader_rejects_names_without_their_nul)
{
	struct archive a = {.len = 0};
	const char *why;

	put_header(&a, S_IFREG | 0644, 0, 4);
	memcpy(a.buf + a.len, "abcd", 4);
	a.len += 4;
	put_trailer(&a);
	cr_assert_eq(cpio_check(a.buf, a.len, &why), -EBADMSG);
	cr_assert_str_eq(why, "name is not one NUL-terminated string");
}

Test(image, reader_rejects_names_escaping_the_root)
{
	const char *why;

	cr_assert_eq(check_one("../etc/passwd", S_IFREG | 0644, &why), -EINVAL);
	cr_assert_str_eq(why, "'..' in member name");
	cr_assert_eq(check_one("a/../../x", S_IFREG | 0644, &why), -EINVAL);
	cr_assert_eq(check_one("./..", S_IFREG | 0644, &why), -EINVAL);
	cr_assert_eq(check_one("/etc/passwd", S_IFREG | 0644, &why), -EINVAL);
	cr_assert_str_eq(why, "absolute member name");
	cr_assert_eq(check_one("a//b", S_IFREG | 0644, &why), -EINVAL);
	cr_assert_eq(check_one("a/", S_IFREG | 0644, &why), -EINVAL);
	cr_assert_eq(check_one("./a/..b", S_IFREG | 0644, &why), 0);
}

Test(image, reader_rejects_block_devices_and_sockets)
{
	const char *why;

	cr_assert_eq(check_one("dev/sda", S_IFBLK | 0600, &why), -EINVAL);
	cr_assert_str_eq(why, "unsupported member type");
	cr_assert_eq(check_one("sock", S_IFSOCK | 0600, &why), -EINVAL);
}

static char *make_tmpdir(void)
{
	char *dir = strdup("/tmp/vmpool-image-XXXXXX");

	cr_assert_not_null(mkdtemp(dir));
	return dir;
}

static void remove_tree(const char *dir)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

Test(image, extract_never_writes_through_a_symlink)
{
	char *root = make_tmpdir(), *outside = make_tmpdir();
	char probe[PATH_MAX];
	struct archive a = {.len = 0};
	const char *why;
	int fd;

	put_member(&a, "link", S_IFLNK | 0777, outside);
	put_member(&a, "link/pwned", S_IFREG | 0644, "x");
	put_trailer(&a);

	fd = open(root, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(fd, 0);
	cr_assert_lt(cpio_extract(a.buf, a.len, fd, &why), 0);
	cr_assert_str_eq(why, "cannot open the parent directory of a member");
	snprintf(probe, sizeof(probe), "%s/pwned", outside);
	cr_assert_neq(access(probe, F_OK), 0, "wrote through the symlink");

	close(fd);
	remove_tree(root);
	remove_tree(outside);
	free(root);
	free(outside);
}

/* ---- the built image ---- */

/* A file in the build dir, found from this test's own path. */
static void build_path(const char *rel, char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	snprintf(out, cap, "%s/../%s", dirname(exe), rel);
}

static uint8_t *load(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *p;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return NULL;
	cr_assert_eq(fstat(fd, &st), 0);
	p = malloc(st.st_size + 1);
	cr_assert_not_null(p);
	cr_assert_eq(read_full(fd, p, st.st_size), 0);
	close(fd);
	*len = st.st_size;
	return p;
}

static uint8_t *built_image(size_t *len)
{
	char path[PATH_MAX];
	uint8_t *p;

	build_path("guest/initramfs.cpio", path, sizeof(path));
	p = load(path, len);
	if (!p)
		cr_skip_test("%s is not built (ninja guest/initramfs.cpio)",
			     path);
	return p;
}

/* Build the image with the same inputs as the build does. */
static void make_image(const char *out)
{
	char agent[PATH_MAX], cmd[3 * PATH_MAX];

	build_path("bin/vmpool-agent", agent, sizeof(agent));
	if (access(agent, X_OK))
		cr_skip_test("%s is not built", agent);
	snprintf(cmd, sizeof(cmd),
		 "python3 %s/guest/mkinitramfs.py "
		 "--init %s --busybox /bin/busybox -o %s",
		 VMPOOL_SRCDIR, agent, out);
	cr_assert_eq(system(cmd), 0, "%s failed", cmd);
}

Test(image, two_builds_are_byte_identical)
{
	char *dir = make_tmpdir(), a[PATH_MAX], b[PATH_MAX];
	size_t alen, blen, ilen;
	uint8_t *ap, *bp, *ip = built_image(&ilen);

	snprintf(a, sizeof(a), "%s/a.cpio", dir);
	snprintf(b, sizeof(b), "%s/b.cpio", dir);
	make_image(a);
	make_image(b);
	ap = load(a, &alen);
	bp = load(b, &blen);

	cr_assert_eq(alen, blen);
	cr_assert_eq(memcmp(ap, bp, alen), 0);
	cr_assert_eq(alen, ilen, "the built image differs from a rebuild");
	cr_assert_eq(memcmp(ap, ip, alen), 0);

	free(ap);
	free(bp);
	free(ip);
	remove_tree(dir);
	free(dir);
}

static const struct cpio_entry *find(const struct cpio_entry *all, size_t n,
				     const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(all[i].name, name))
			return &all[i];
	return NULL;
}

static size_t read_all(const uint8_t *img, size_t len, struct cpio_entry *all,
		       size_t cap)
{
	struct cpio_reader r;
	size_t n = 0;
	int rc;

	cpio_reader_init(&r, img, len);
	while (n < cap && (rc = cpio_next(&r, &all[n])) == 1)
		n++;
	cr_assert_lt(n, cap);
	cr_assert_eq(rc, 0, "image unreadable: %s", r.why);
	return n;
}

static void assert_applet(const struct cpio_entry *all, size_t n,
			  const char *name)
{
	const struct cpio_entry *e = find(all, n, name);

	cr_assert_not_null(e, "no %s", name);
	cr_assert(S_ISLNK(e->mode), "%s is not a symlink", name);
	cr_assert_eq(e->size, strlen("/bin/busybox"));
	cr_assert_eq(memcmp(e->data, "/bin/busybox", e->size), 0);
}

static void assert_node(const struct cpio_entry *all, size_t n,
			const char *name, unsigned major, unsigned minor)
{
	const struct cpio_entry *e = find(all, n, name);

	cr_assert_not_null(e, "no %s", name);
	cr_assert(S_ISCHR(e->mode));
	cr_assert_eq(e->rdev_major, major);
	cr_assert_eq(e->rdev_minor, minor);
}

Test(image, holds_init_busybox_applets_dirs_and_nodes)
{
	static struct cpio_entry all[1024];
	static const char *const dirs[] = {
	    "dev", "proc", "sys",     "tmp",	  "run",  "work",
	    "etc", "root", "usr/bin", "usr/sbin", "sbin", "bin",
	};
	static const char *const applets[] = {
	    "bin/sh",	 "bin/ls",   "bin/cat",	    "bin/sleep", "bin/true",
	    "bin/false", "bin/echo", "usr/bin/env", "bin/ps",	 "bin/hostname",
	};
	size_t len, n;
	uint8_t *img = built_image(&len);
	const struct cpio_entry *e;

	n = read_all(img, len, all, ARRAY_SIZE(all));
	e = find(all, n, "init");
	cr_assert(e && S_ISREG(e->mode) && (e->mode & 0111) && e->size);
	e = find(all, n, "bin/busybox");
	cr_assert(e && S_ISREG(e->mode) && (e->mode & 0111) && e->size);
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		e = find(all, n, dirs[i]);
		cr_assert(e && S_ISDIR(e->mode), "no dir %s", dirs[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(applets); i++)
		assert_applet(all, n, applets[i]);
	assert_node(all, n, "dev/console", 5, 1);
	assert_node(all, n, "dev/null", 1, 3);
	cr_assert_not_null(find(all, n, "etc/passwd"));
	cr_assert_not_null(find(all, n, "etc/group"));
	free(img);
}

Test(image, members_are_sorted_root_owned_and_undated)
{
	static struct cpio_entry all[1024];
	size_t len, n;
	uint8_t *img = built_image(&len);

	n = read_all(img, len, all, ARRAY_SIZE(all));
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(all[i].uid, 0);
		cr_assert_eq(all[i].gid, 0);
		cr_assert_eq(all[i].ino, i + 1);
		cr_assert_eq(all[i].mtime, all[0].mtime);
		if (i)
			cr_assert_lt(strcmp(all[i - 1].name, all[i].name), 0);
	}
	free(img);
}

static int run_chrooted(const char *root, const char *prog)
{
	int status;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (chroot(root) || chdir("/"))
			_exit(126);
		execl(prog, prog, (char *)NULL);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

Test(image, extracted_image_runs_bin_true)
{
	char *root;
	const char *why = NULL;
	size_t len;
	uint8_t *img;
	int fd;

	if (geteuid())
		cr_skip_test("chroot needs root");
	img = built_image(&len);
	root = make_tmpdir();
	fd = open(root, O_RDONLY | O_DIRECTORY);
	cr_assert_eq(cpio_extract(img, len, fd, &why), 0, "%s", why);

	cr_assert_eq(run_chrooted(root, "/bin/true"), 0);
	cr_assert_eq(run_chrooted(root, "/bin/false"), 1);

	close(fd);
	remove_tree(root);
	free(root);
	free(img);
}
