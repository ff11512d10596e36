/* Per-sandbox memory and process limits: cgroup v2, v1, or rlimits. */
#include "worker/ns_limits.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define CG_ROOT "/sys/fs/cgroup"

static atomic_uint cgroup_seq;

static int write_text(const char *path, const char *text)
{
	int fd, err;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;

	err = write_full(fd, text, strlen(text));
	close(fd);
	return err;
}

static int read_text(const char *path, char *buf, size_t cap)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;

	n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* Whether a list separated by any of seps holds word; "" matches "". */
static bool has_word(const char *list, const char *word, const char *seps)
{
	size_t len = strlen(word);

	if (!len)
		return !*list;
	while (*list) {
		size_t n = strcspn(list, seps);

		if (n == len && !memcmp(list, word, len))
			return true;
		list += n;
		list += strspn(list, seps);
	}
	return false;
}

/* This process's cgroup in the hierarchy holding controller ("": the
 * unified one), from a /proc/self/cgroup line "id:controllers:path". */
static int own_cgroup(const char *controller, char *out, size_t cap)
{
	char line[512];
	int err = -ENOENT;
	FILE *f;

	f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return -errno;

	while (err && fgets(line, sizeof(line), f)) {
		char *ctrls = strchr(line, ':'), *path;

		path = ctrls ? strchr(ctrls + 1, ':') : NULL;
		if (!path)
			continue;
		*path++ = '\0';
		path[strcspn(path, "\n")] = '\0';
		if (has_word(ctrls + 1, controller, ",") &&
		    snprintf(out, cap, "%s", path) < (int)cap)
			err = 0;
	}
	fclose(f);
	return err;
}

/* The directory of a new cgroup `name` below our own in mount mnt. */
static int cgroup_dir(const char *mnt, const char *controller, const char *name,
		      char *out)
{
	char own[NS_CGROUP_PATH];
	int err, n;

	err = own_cgroup(controller, own, sizeof(own));
	if (err)
		return err;

	n = snprintf(out, NS_CGROUP_PATH, "%s%s/%s", mnt,
		     strcmp(own, "/") ? own : "", name);
	return n < NS_CGROUP_PATH ? 0 : -ENAMETOOLONG;
}

static int set_limit(const char *dir, const char *file,
		     unsigned long long limit)
{
	char path[NS_CGROUP_PATH + 32], num[24];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	snprintf(num, sizeof(num), "%llu", limit);
	return write_text(path, num);
}

/* Create dir and write one limit into it; nothing is left on error. */
static int make_cgroup(const char *dir, const char *file,
		       unsigned long long limit)
{
	int err;

	if (mkdir(dir, 0755) < 0)
		return -errno;

	err = set_limit(dir, file, limit);
	if (err)
		rmdir(dir);
	return err;
}

static const char *v2_mount(void)
{
	if (!access(CG_ROOT "/cgroup.controllers", F_OK))
		return CG_ROOT;
	if (!access(CG_ROOT "/unified/cgroup.controllers", F_OK))
		return CG_ROOT "/unified";
	return NULL;
}

/* Whether the parent of dir hands the controllers we need to its
 * children, enabling them if it can (it cannot when it holds tasks). */
static bool v2_delegated(const char *dir, bool mem, bool pids)
{
	char path[NS_CGROUP_PATH + 32], have[256];
	const char *slash = strrchr(dir, '/');

	snprintf(path, sizeof(path), "%.*s/cgroup.subtree_control",
		 (int)(slash - dir), dir);
	if (mem)
		write_text(path, "+memory");
	if (pids)
		write_text(path, "+pids");
	if (read_text(path, have, sizeof(have)))
		return false;
	return (!mem || has_word(have, "memory", " \n")) &&
	       (!pids || has_word(have, "pids", " \n"));
}

static int make_v2(const struct ns_opts *o, const char *name,
		   struct ns_sandbox *sb)
{
	const char *mnt = v2_mount();
	char *dir = sb->cgroups[0];
	int err;

	if (!mnt)
		return -ENOTSUP;
	err = cgroup_dir(mnt, "", name, dir);
	if (err)
		return err;
	if (!v2_delegated(dir, o->mem_limit, o->pids_limit))
		return -ENOTSUP;

	if (mkdir(dir, 0755) < 0)
		return -errno;

	if (o->mem_limit)
		err = set_limit(dir, "memory.max", o->mem_limit);
	if (!err && o->mem_limit)
		set_limit(dir, "memory.swap.max", 0);
	if (!err && o->pids_limit)
		err = set_limit(dir, "pids.max", o->pids_limit);
	if (err)
		rmdir(dir);
	return err;
}

static int make_v1(const struct ns_opts *o, const char *name,
		   struct ns_sandbox *sb)
{
	char *mem_dir = sb->cgroups[0];
	char *pids_dir = sb->cgroups[o->mem_limit ? 1 : 0];
	int err = 0;

	if (o->mem_limit) {
		err = cgroup_dir(CG_ROOT "/memory", "memory", name, mem_dir);
		if (!err)
			err = make_cgroup(mem_dir, "memory.limit_in_bytes",
					  o->mem_limit);
	}
	if (err)
		return err;

	if (o->pids_limit) {
		err = cgroup_dir(CG_ROOT "/pids", "pids", name, pids_dir);
		if (!err)
			err = make_cgroup(pids_dir, "pids.max", o->pids_limit);
	}
	if (err && o->mem_limit)
		rmdir(mem_dir);
	return err;
}

static void forget_cgroups(struct ns_sandbox *sb)
{
	for (int i = 0; i < NS_MAX_CGROUPS; i++)
		sb->cgroups[i][0] = '\0';
}

int ns_limits_create(const struct ns_opts *opts, struct ns_sandbox *sb)
{
	enum ns_limits want = opts->want;
	char name[64];

	forget_cgroups(sb);
	sb->limits = NS_LIMITS_NONE;
	if (!opts->mem_limit && !opts->pids_limit)
		return 0;
	snprintf(name, sizeof(name), "vmpool-ns.%d.%u", (int)getpid(),
		 atomic_fetch_add(&cgroup_seq, 1));

	sb->limits = NS_LIMITS_CGROUP2;
	if ((want == NS_LIMITS_NONE || want == sb->limits) &&
	    !make_v2(opts, name, sb))
		return 0;
	forget_cgroups(sb);

	sb->limits = NS_LIMITS_CGROUP1;
	if ((want == NS_LIMITS_NONE || want == sb->limits) &&
	    !make_v1(opts, name, sb))
		return 0;
	forget_cgroups(sb);

	if (want != NS_LIMITS_NONE && want != NS_LIMITS_RLIMIT)
		return -ENOTSUP;
	sb->limits = NS_LIMITS_RLIMIT;
	return 0;
}

static int join_cgroup(const char *dir, pid_t pid)
{
	char path[NS_CGROUP_PATH + 16], num[16];

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(num, sizeof(num), "%d", (int)pid);
	return write_text(path, num);
}

int ns_limits_join(const struct ns_sandbox *sb, pid_t pid)
{
	int err = 0;

	for (int i = 0; i < NS_MAX_CGROUPS && !err; i++)
		if (sb->cgroups[i][0])
			err = join_cgroup(sb->cgroups[i], pid);
	return err;
}

static int set_rlimits(const struct ns_opts *opts)
{
	struct rlimit rl = {opts->mem_limit, opts->mem_limit};

	/* RLIMIT_NPROC counts every task of uid 0 on the host, so it
	 * cannot bound one sandbox: pids_limit needs a cgroup. */
	if (opts->mem_limit && setrlimit(RLIMIT_AS, &rl) < 0)
		return -errno;
	return 0;
}

int ns_limits_enter(const struct ns_opts *opts, const struct ns_sandbox *sb)
{
	return sb->limits == NS_LIMITS_RLIMIT ? set_rlimits(opts) : 0;
}

/* A cgroup whose last task was just reaped may report busy briefly. */
static int remove_dir(const char *dir)
{
	struct timespec pause = {0, 1000000};

	for (int tries = 0; tries < 200; tries++) {
		if (!rmdir(dir) || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		nanosleep(&pause, NULL);
	}
	return -EBUSY;
}

int ns_limits_remove(struct ns_sandbox *sb)
{
	int first = 0;

	for (int i = 0; i < NS_MAX_CGROUPS; i++) {
		int err = sb->cgroups[i][0] ? remove_dir(sb->cgroups[i]) : 0;

		if (err && !first)
			first = err;
	}
	forget_cgroups(sb);
	return first;
}

/* Whether name is "vmpool-ns.<pid>.<n>" for a pid no longer running. */
static bool orphaned(const char *name)
{
	const char *prefix = "vmpool-ns.";
	char *end;
	long pid;

	if (strncmp(name, prefix, strlen(prefix)))
		return false;
	pid = strtol(name + strlen(prefix), &end, 10);
	if (*end != '.' || pid <= 0)
		return false;
	return kill(pid, 0) < 0 && errno == ESRCH;
}

static int sweep_dir(const char *mnt, const char *controller)
{
	char parent[NS_CGROUP_PATH], path[2 * NS_CGROUP_PATH];
	struct dirent *de;
	int removed = 0;
	DIR *d;

	if (cgroup_dir(mnt, controller, "", parent) || !(d = opendir(parent)))
		return 0;
	while ((de = readdir(d)))
		if (orphaned(de->d_name)) {
			snprintf(path, sizeof(path), "%s%s", parent,
				 de->d_name);
			removed += !remove_dir(path);
		}
	closedir(d);
	return removed;
}

int ns_limits_sweep(void)
{
	const char *v2 = v2_mount();
	int removed = 0;

	if (v2)
		removed += sweep_dir(v2, "");
	removed += sweep_dir(CG_ROOT "/memory", "memory");
	removed += sweep_dir(CG_ROOT "/pids", "pids");
	return removed;
}
