/* vmpool cp: copy a file into or out of a leased VM ("vm:" marks it). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/cli.h"
#include "common/log.h"

#define VM_PREFIX "vm:"

static const char *guest_path(const char *arg)
{
	return strncmp(arg, VM_PREFIX, strlen(VM_PREFIX))
		   ? NULL
		   : arg + strlen(VM_PREFIX);
}

static int upload(struct vmpool_lease *l, const char *src, const char *dst)
{
	struct stat st;
	uint64_t n;
	int fd = open(src, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0 || fstat(fd, &st) < 0) {
		pr_err("open %s: %s", src, strerror(errno));
		return -errno;
	}

	r = vmpool_write_fd(l, dst, st.st_mode & 07777, VMPOOL_WRITE_PARENTS,
			    fd, &n);
	close(fd);
	if (r)
		pr_err("%s -> vm:%s: %s", src, dst, vmpool_lease_error(l));
	return r;
}

/* A local destination that is a folder gets the guest file's name. */
static void local_target(const char *src, const char *dst, char *out,
			 size_t cap)
{
	struct stat st;
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", src);
	if (stat(dst, &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(out, cap, "%s/%s", dst, basename(tmp));
	else
		snprintf(out, cap, "%s", dst);
}

static int download(struct vmpool_lease *l, const char *src, const char *dst)
{
	char path[PATH_MAX];
	uint64_t n;
	int fd, r;

	local_target(src, dst, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		pr_err("open %s: %s", path, strerror(errno));
		return -errno;
	}

	r = vmpool_read_fd(l, src, fd, &n);
	if (close(fd) < 0 && !r)
		r = -errno;
	if (r)
		pr_err("vm:%s -> %s: %s", src, path,
		       r == -EIO ? strerror(EIO) : vmpool_lease_error(l));
	return r;
}

int cli_cp(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	const char *sock = NULL, *gsrc, *gdst;
	struct vmpool *p;
	struct vmpool_lease *l;
	int c, r;

	while ((c = getopt_long(argc, argv, "+s:", longopts, NULL)) != -1) {
		if (c != 's')
			return CLI_EXIT_USAGE;
		sock = optarg;
	}
	if (argc - optind != 2)
		goto usage;
	gsrc = guest_path(argv[optind]);
	gdst = guest_path(argv[optind + 1]);
	if (!gsrc == !gdst)
		goto usage;

	l = cli_lease(sock, &p);
	if (!l)
		return CLI_EXIT_FAIL;
	r = gdst ? upload(l, argv[optind], gdst)
		 : download(l, gsrc, argv[optind + 1]);
	if (cli_release(l))
		r = -EIO;
	vmpool_close(p);
	return r ? CLI_EXIT_FAIL : 0;

usage:
	fprintf(stderr, "usage: vmpool cp [--socket P] SRC DST\n"
			"exactly one of SRC and DST starts with 'vm:', the "
			"guest's side\n");
	return CLI_EXIT_USAGE;
}
