/* vmpool-bench ns: sandbox start to HELLO, next to bwrap running true. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/client.h"
#include "tools/bench.h"
#include "worker/ns.h"

extern char **environ;

#define DEFAULT_RUNS 50

/* bwrap with the same namespaces as a sandbox, the host's /usr as its
 * root and a fresh /proc and /dev: the nearest off-the-shelf peer. */
static char *const bwrap_argv[] = {
    "bwrap",
    "--unshare-pid",
    "--unshare-net",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup",
    "--ro-bind",
    "/usr",
    "/usr",
    "--symlink",
    "usr/bin",
    "/bin",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--die-with-parent",
    "/usr/bin/true",
    NULL,
};

struct series {
	const char *what;
	uint64_t *ns;
	size_t n;
};

/* Sorts the series; p in [0, 100]. */
static double percentile_ms(struct series *s, unsigned p)
{
	return bench_pct_ns(s->ns, s->n, p) / 1e6;
}

static void print_series(struct series *s)
{
	printf("%-22s runs %4zu  p50 %8.2f ms  p99 %8.2f ms\n", s->what, s->n,
	       percentile_ms(s, 50), percentile_ms(s, 99));
}

/* One sandbox: start it, wait for the agent's HELLO, stop it. */
static int one_sandbox(const struct ns_opts *opts, uint64_t *to_hello,
		       uint64_t *to_stop, enum ns_limits *limits)
{
	struct ns_sandbox sb;
	struct proto_client c;
	uint64_t t0 = now_ns(), t1;
	int err;

	err = ns_sandbox_start(opts, &sb);
	if (err) {
		pr_err("ns_sandbox_start: %s: %s", sb.why, strerror(-err));
		return err;
	}

	*limits = sb.limits;
	err = proto_client_init(&c, sb.chan_fd);
	if (!err) {
		err = proto_client_hello(&c, NULL);
		proto_client_free(&c);
	}
	*to_hello = now_ns() - t0;
	if (err)
		pr_err("waiting for HELLO: %s", strerror(-err));

	t1 = now_ns();
	ns_sandbox_stop(&sb);
	*to_stop = now_ns() - t1;
	return err;
}

int bench_bwrap_true(uint64_t *took)
{
	uint64_t t0 = now_ns();
	int status, err;
	pid_t pid;

	err = posix_spawnp(&pid, "bwrap", NULL, NULL, bwrap_argv, environ);
	if (err) {
		pr_err("posix_spawnp(bwrap): %s", strerror(err));
		return -err;
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	*took = now_ns() - t0;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		pr_err("bwrap ... true failed (status %#x)", status);
		return -ECHILD;
	}
	return 0;
}

static void default_image(char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	exe[n > 0 ? n : 0] = '\0';
	snprintf(out, cap, "%s/../guest/initramfs.cpio", dirname(exe));
}

struct config {
	struct ns_opts opts;
	enum ns_limits limits;
	size_t runs;
	char image[PATH_MAX];
};

static int parse_args(int argc, char **argv, struct config *cfg)
{
	static const struct option longopts[] = {
	    {"runs", required_argument, NULL, 'n'},
	    {"image", required_argument, NULL, 'i'},
	    {"mem", required_argument, NULL, 'm'},
	    {"pids", required_argument, NULL, 'p'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "n:i:m:p:", longopts, NULL)) !=
	       -1) {
		if (c == 'n' && !parse_u64(optarg, 1, 100000, &v))
			cfg->runs = v;
		else if (c == 'i')
			snprintf(cfg->image, sizeof(cfg->image), "%s", optarg);
		else if (c == 'm' && !parse_size(optarg, &v))
			cfg->opts.mem_limit = v;
		else if (c == 'p' && !parse_u64(optarg, 0, 1 << 22, &v))
			cfg->opts.pids_limit = v;
		else
			return -EINVAL;
	}
	return 0;
}

/* Alternate the two so that drift on the host hits both alike. */
static int measure(struct config *cfg, struct series s[3])
{
	uint64_t warm, warm2;
	int err;

	err = one_sandbox(&cfg->opts, &warm, &warm2, &cfg->limits);
	if (!err)
		err = bench_bwrap_true(&warm);
	for (size_t i = 0; !err && i < cfg->runs; i++) {
		err = one_sandbox(&cfg->opts, &s[0].ns[i], &s[1].ns[i],
				  &cfg->limits);
		if (!err)
			err = bench_bwrap_true(&s[2].ns[i]);
		s[0].n = s[1].n = s[2].n = i + 1;
	}
	return err;
}

static void report(const struct config *cfg, struct series s[3])
{
	double ns50, bw50;

	printf("ns sandbox: image %s, limits by %s\n", cfg->image,
	       ns_limits_name(cfg->limits));
	print_series(&s[0]);
	print_series(&s[1]);
	print_series(&s[2]);
	ns50 = percentile_ms(&s[0], 50);
	bw50 = percentile_ms(&s[2], 50);
	printf("ratio start-to-HELLO / bwrap true (p50): %.2fx\n", ns50 / bw50);
}

int bench_ns(int argc, char **argv)
{
	struct config cfg = {
	    .opts = {.log_fd = -1,
		     .mem_limit = 512ull << 20,
		     .pids_limit = 1024},
	    .runs = DEFAULT_RUNS,
	};
	struct series s[3] = {
	    {.what = "ns start to HELLO"},
	    {.what = "ns stop"},
	    {.what = "bwrap true (cold)"},
	};
	int err = 0;

	default_image(cfg.image, sizeof(cfg.image));
	if (parse_args(argc, argv, &cfg)) {
		fprintf(stderr, "usage: vmpool-bench ns [-n RUNS] [-i IMAGE] "
				"[-m MEM] [-p PIDS]\n");
		return 2;
	}
	cfg.opts.image = cfg.image;
	for (int i = 0; i < 3 && !err; i++) {
		s[i].ns = calloc(cfg.runs, sizeof(uint64_t));
		err = s[i].ns ? 0 : -ENOMEM;
	}

	if (!err)
		err = measure(&cfg, s);
	if (!err)
		report(&cfg, s);
	for (int i = 0; i < 3; i++)
		free(s[i].ns);
	return err ? 1 : 0;
}
