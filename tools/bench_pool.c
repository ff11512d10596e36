/* vmpool-bench pool: lease latency through vmpoold, next to bwrap true. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/vmpool.h"
#include "common/log.h"
#include "common/util.h"
#include "tools/bench.h"

#define DEFAULT_RUNS 2000
#define CONCURRENT   16
#define COLD_RUNS    20
#define START_NS     (30ull * 1000000000)

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t bench_pct_ns(uint64_t *ns, size_t n, unsigned p)
{
	qsort(ns, n, sizeof(*ns), cmp_u64);
	return ns[MIN(n - 1, n * p / 100)];
}

double bench_series_pct_us(struct bench_series *s, unsigned p)
{
	return bench_pct_ns(s->ns, s->n, p) / 1e3;
}

static void print_series(struct bench_series *s)
{
	if (!s->n) {
		printf("%-36s no samples\n", s->what);
		return;
	}
	printf("%-36s n %5zu  p50 %9.1f us  p99 %9.1f us\n", s->what, s->n,
	       bench_series_pct_us(s, 50), bench_series_pct_us(s, 99));
}

int bench_series_init(struct bench_series *s, const char *what, size_t cap)
{
	s->what = what;
	s->n = 0;
	s->cap = cap;
	s->ns = calloc(cap, sizeof(*s->ns));
	pthread_mutex_init(&s->lock, NULL);
	return s->ns ? 0 : -ENOMEM;
}

void bench_series_add(struct bench_series *s, uint64_t ns)
{
	pthread_mutex_lock(&s->lock);
	if (s->n < s->cap)
		s->ns[s->n++] = ns;
	pthread_mutex_unlock(&s->lock);
}

static void sibling(char *out, size_t cap, const char *name)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	exe[n > 0 ? n : 0] = '\0';
	snprintf(out, cap, "%s/%s", dirname(exe), name);
}

static void nap_ms_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000,
			      .tv_nsec = ns % 1000000000};

	nanosleep(&ts, NULL);
}

static void nap_ms(long ms)
{
	nap_ms_ns(ms * 1000000ull);
}

/* The daemon's log would interleave with the figures. */
static void quiet(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
}

/* vmpoold with a private name and socket, and args added after them;
 * waits for its socket. */
int bench_daemon_start(struct bench_daemon *d, const char *const *args)
{
	const char *argv[BENCH_DAEMON_ARGS + 6];
	char bin[PATH_MAX];
	uint64_t deadline = now_ns() + START_NS;
	size_t n = 0;

	snprintf(d->dir, sizeof(d->dir), "/tmp/vmpool-bench-XXXXXX");
	if (!mkdtemp(d->dir))
		return -errno;
	snprintf(d->sock, sizeof(d->sock), "%s/s.sock", d->dir);
	snprintf(d->name, sizeof(d->name), "bench-%d", (int)getpid());
	sibling(bin, sizeof(bin), "vmpoold");
	argv[n++] = bin;
	argv[n++] = "--name";
	argv[n++] = d->name;
	argv[n++] = "--socket";
	argv[n++] = d->sock;
	while (*args && n < ARRAY_SIZE(argv) - 1)
		argv[n++] = *args++;
	argv[n] = NULL;

	d->pid = fork();
	if (d->pid < 0)
		return -errno;
	if (d->pid == 0) {
		quiet();
		execv(bin, (char **)argv);
		_exit(127);
	}

	while (now_ns() < deadline) {
		struct vmpool *p;
		int r = vmpool_connect(d->sock, &p);

		vmpool_close(p);
		if (r == 0)
			return 0;
		if (waitpid(d->pid, NULL, WNOHANG) == d->pid)
			return -ECHILD;
		nap_ms(5);
	}
	return -ETIMEDOUT;
}

/* An ns pool of its own with min_size warm VMs. */
static int daemon_start(struct bench_daemon *d, const char *min,
			const char *max, const char *poll, const char *checks)
{
	const char *args[] = {"--backend",
			      "ns",
			      "--min-size",
			      min,
			      "--max-size",
			      max,
			      "--max-total",
			      "64",
			      "--poll",
			      poll,
			      "--health-check-interval",
			      checks,
			      NULL};

	return bench_daemon_start(d, args);
}

void bench_daemon_stop(struct bench_daemon *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		waitpid(d->pid, NULL, 0);
	}
	rmdir(d->dir);
}

int bench_wait_idle(struct vmpool *p, uint64_t n, uint64_t limit_ns)
{
	uint64_t deadline = now_ns() + limit_ns;
	struct vmpool_counter cs[32];

	while (now_ns() < deadline) {
		int k = vmpool_stats(p, cs, ARRAY_SIZE(cs));

		if (k < 0)
			return k;
		for (int i = 0; i < MIN(k, (int)ARRAY_SIZE(cs)); i++)
			if (!strcmp(cs[i].name, "idle") && cs[i].value >= n)
				return 0;
		nap_ms(2);
	}
	return -ETIMEDOUT;
}

int bench_exec_true(struct vmpool_lease *l)
{
	const char *argv[] = {"true", NULL};
	struct vmpool_exec x = {.argv = argv};
	struct vmpool_result res;
	int r = vmpool_exec(l, &x, &res);

	return r ? r : (vmpool_result_code(&res) ? -ECHILD : 0);
}

/* One lease: timed acquire, optional exec, release. */
static int one_lease(struct vmpool *p, struct bench_leases *lp)
{
	struct vmpool_lease_info info;
	struct vmpool_lease *l;
	uint64_t t0 = now_ns(), t1;
	int r = vmpool_acquire(p, 0, &l);

	if (r)
		return r;
	t1 = now_ns();
	vmpool_lease_info(l, &info);
	if (!info.hit)
		lp->misses++;
	else if (lp->lease)
		bench_series_add(lp->lease, t1 - t0);
	if (info.hit && lp->inside)
		bench_series_add(lp->inside, info.wait_ns);

	r = lp->exec ? bench_exec_true(l) : 0;
	if (lp->hold_ns)
		nap_ms_ns(lp->hold_ns);
	if (vmpool_release(l) && !r)
		r = -ECONNRESET;
	if (lp->gap_ns)
		nap_ms_ns(lp->gap_ns);
	if (!r && lp->round)
		bench_series_add(lp->round, now_ns() - t0);
	return r;
}

static void *lease_loop(void *arg)
{
	struct bench_leases *lp = arg;
	uint64_t limit = lp->limit_ns ? lp->limit_ns : START_NS;
	uint64_t deadline = now_ns() + limit;
	struct vmpool *p;
	size_t done = 0;

	lp->err = vmpool_connect(lp->sock, &p);
	if (!lp->err && lp->sleep)
		vmpool_set_spin(p, 0);
	while (!lp->err && done < lp->runs && now_ns() < deadline) {
		lp->err = one_lease(p, lp);
		if (lp->err == -ECONNRESET &&
		    vmpool_error_code(p) == VMPOOL_E_VM_LOST) {
			lp->lost++;
			lp->err = 0;
			continue;
		}
		if (lp->err == -EAGAIN) {
			lp->err = 0;
			nap_ms(1);
			continue;
		}
		done++;
	}
	if (lp->err)
		pr_err("lease loop: %s", vmpool_error(p));
	else if (done < lp->runs)
		pr_warn("lease loop: %zu of %zu leases in %llu s", done,
			lp->runs, (unsigned long long)(limit / 1000000000));
	vmpool_close(p);
	return NULL;
}

/* n tenants at once, each runs/n leases. */
static int concurrent(struct bench_leases *proto, size_t n)
{
	pthread_t *th = calloc(n, sizeof(*th));
	struct bench_leases *lp = calloc(n, sizeof(*lp));
	size_t misses = 0;
	int err = th && lp ? 0 : -ENOMEM;

	for (size_t i = 0; i < n && !err; i++) {
		lp[i] = *proto;
		lp[i].runs = proto->runs / n;
		pthread_create(&th[i], NULL, lease_loop, &lp[i]);
	}
	for (size_t i = 0; i < n && th && lp; i++) {
		pthread_join(th[i], NULL);
		misses += lp[i].misses;
		proto->lost += lp[i].lost;
		err = err ? err : lp[i].err;
	}
	proto->misses = misses;
	free(lp);
	free(th);
	return err;
}

int bench_leases_run(struct bench_leases *lp, size_t tenants)
{
	if (tenants > 1)
		return concurrent(lp, tenants);
	lease_loop(lp);
	return lp->err;
}

/* VmRSS (KiB) of vmpoold's vmpool-worker children, into kib[]. */
static size_t worker_rss(pid_t daemon, uint64_t *kib, size_t cap)
{
	char path[64], buf[4096];
	size_t n = 0;
	FILE *f;
	int pid;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", daemon,
		 daemon);
	f = fopen(path, "r");
	while (f && n < cap && fscanf(f, "%d", &pid) == 1) {
		FILE *st;

		snprintf(path, sizeof(path), "/proc/%d/status", pid);
		st = fopen(path, "r");
		while (st && fgets(buf, sizeof(buf), st))
			if (sscanf(buf, "VmRSS: %" SCNu64, &kib[n]) == 1)
				n++;
		if (st)
			fclose(st);
	}
	if (f)
		fclose(f);
	return n;
}

static void report_rss(pid_t daemon)
{
	uint64_t kib[64];
	size_t n = worker_rss(daemon, kib, ARRAY_SIZE(kib));

	if (!n) {
		printf("worker RSS: no workers found\n");
		return;
	}
	qsort(kib, n, sizeof(*kib), cmp_u64);
	printf("worker RSS (ns: the worker process only): %zu workers, "
	       "min %.2f MiB  median %.2f MiB  max %.2f MiB\n",
	       n, kib[0] / 1024.0, kib[n / 2] / 1024.0, kib[n - 1] / 1024.0);
}

/* Cold misses: each lease is held, so the next finds nothing idle. */
static int cold_misses(struct bench_series *s)
{
	struct vmpool_lease *held[COLD_RUNS];
	struct bench_daemon d = {0};
	struct vmpool *p = NULL;
	size_t n = 0;
	int err = daemon_start(&d, "0", "4", "50us", "10");

	if (!err)
		err = vmpool_connect(d.sock, &p);
	for (; !err && n < COLD_RUNS; n++) {
		uint64_t t0 = now_ns();

		err = vmpool_acquire(p, 0, &held[n]);
		if (!err)
			bench_series_add(s, now_ns() - t0);
	}
	if (err)
		pr_err("cold miss: %s", p ? vmpool_error(p) : strerror(-err));
	while (n--)
		if (held[n])
			vmpool_release(held[n]);
	vmpool_close(p);
	bench_daemon_stop(&d);
	return err;
}

static int bwrap_series(struct bench_series *s, size_t runs)
{
	for (size_t i = 0; i < runs; i++) {
		uint64_t took;
		int err = bench_bwrap_true(&took);

		if (err)
			return err;
		bench_series_add(s, took);
	}
	return 0;
}

/* A pause after each release: the next acquire finds the connection
 * back in vmpoold and vmpoold asleep, as a tenant arriving later does. */
#define GAP_NS (1000 * 1000ull)

enum {
	S_HIT1,
	S_HIT1_GAP,
	S_HIT16,
	S_HIT16_HOLD,
	S_ROUND,
	S_COLD,
	S_HIT1_SLEEP,
	S_HIT16_HOLD_SLEEP,
	S_ROUND_SLEEP,
	S_BWRAP,
	S_SOCKET,
	S_SOCKET16,
	S_SOCKET16_NOW,
	S_HIT1_GAP_INSIDE,
	S_HIT1_NO_CHECKS,
	S_COUNT
};

/* Tenants that hold each lease a while, as one that runs a command. */
#define HOLD_NS (10 * 1000 * 1000ull)

/* A fresh pool per run, so that one run's leftovers cannot slow the
 * next; workers' RSS is read in the first, while they idle. */
static int with_pool(struct bench_leases *lp, size_t tenants, bool rss)
{
	struct bench_daemon d = {0};
	struct vmpool *p;
	int err = daemon_start(&d, "20", "24", lp->sleep ? "0" : "50us",
			       lp->no_checks ? "0" : "10");

	if (!err)
		err = vmpool_connect(d.sock, &p);
	if (!err) {
		err = bench_wait_idle(p, CONCURRENT + 2, START_NS);
		vmpool_close(p);
	}
	if (!err && rss)
		report_rss(d.pid);
	lp->sock = d.sock;
	if (!err)
		err = bench_leases_run(lp, tenants);
	bench_daemon_stop(&d);
	if (err)
		pr_err("pool run: %s", strerror(-err));
	return err;
}

/* Each figure twice: as shipped, and with nobody spinning for an
 * answer (vmpoold --poll 0, vmpool_set_spin 0), the peer that shows
 * what the spinning buys. */
static int measure(size_t runs, struct bench_series *s)
{
	struct bench_leases b[] = {
	    {.runs = runs, .lease = &s[S_HIT1]},
	    {.runs = runs,
	     .lease = &s[S_HIT1_GAP],
	     .inside = &s[S_HIT1_GAP_INSIDE],
	     .gap_ns = GAP_NS},
	    {.runs = runs, .lease = &s[S_HIT16]},
	    {.runs = runs, .lease = &s[S_HIT16_HOLD], .hold_ns = HOLD_NS},
	    {.runs = runs, .exec = true, .round = &s[S_ROUND]},
	    {.runs = runs, .lease = &s[S_HIT1_SLEEP], .sleep = true},
	    {.runs = runs,
	     .lease = &s[S_HIT16_HOLD_SLEEP],
	     .hold_ns = HOLD_NS,
	     .sleep = true},
	    {.runs = runs, .exec = true, .round = &s[S_ROUND_SLEEP],
	     .sleep = true},
	    {.runs = runs, .lease = &s[S_HIT1_NO_CHECKS], .no_checks = true},
	};
	static const size_t tenants[] = {1, 1, CONCURRENT, CONCURRENT,
					 1, 1, CONCURRENT, 1, 1};
	int err = 0;

	for (size_t i = 0; i < ARRAY_SIZE(b) && !err; i++)
		err = with_pool(&b[i], tenants[i], i == 0);
	printf("misses / acquires answered VM lost: 1 tenant %zu / %zu, "
	       "%d tenants %zu / %zu, exec loop %zu / %zu\n",
	       b[0].misses, b[0].lost, CONCURRENT, b[2].misses, b[2].lost,
	       b[4].misses, b[4].lost);
	if (!err)
		err = cold_misses(&s[S_COLD]);
	if (!err)
		err = bwrap_series(&s[S_BWRAP], COLD_RUNS);
	if (!err)
		err = bench_socket_round_trips(&s[S_SOCKET], runs, 1, GAP_NS);
	if (!err)
		err = bench_socket_round_trips(&s[S_SOCKET16], runs, CONCURRENT,
					       HOLD_NS);
	if (!err)
		err = bench_socket_round_trips(&s[S_SOCKET16_NOW], runs,
					       CONCURRENT, 0);
	return err;
}

/* "ratio WHAT (p50): N.Nx", num's p50 over den's, when both have some. */
static void print_ratio(struct bench_series *num, struct bench_series *den,
			const char *what)
{
	if (num->n && den->n)
		printf("ratio %s (p50): %.1fx\n", what,
		       bench_series_pct_us(num, 50) /
			   bench_series_pct_us(den, 50));
}

static void report(struct bench_series *s)
{
	for (int i = 0; i < S_COUNT; i++)
		print_series(&s[i]);
	print_ratio(&s[S_BWRAP], &s[S_ROUND],
		    "bwrap true (cold) / acquire+exec+release");
	print_ratio(&s[S_HIT1_SLEEP], &s[S_HIT1],
		    "hit sleeping / hit spinning, 1 tenant");
	print_ratio(&s[S_HIT1_GAP], &s[S_SOCKET],
		    "hit 1 ms apart / unix socket round trip");
	print_ratio(&s[S_HIT16_HOLD], &s[S_SOCKET16],
		    "hit 16 x 10 ms held / unix socket round trip, 16 x 10 ms");
	print_ratio(&s[S_HIT16], &s[S_SOCKET16_NOW],
		    "hit 16 tenants, no pause / unix socket round trip, "
		    "16 at once");
	print_ratio(&s[S_COLD], &s[S_HIT1], "cold miss / hit");
}

int bench_pool(int argc, char **argv)
{
	static const char *names[S_COUNT] = {
	    "acquire hit, 1 tenant",
	    "acquire hit, 1 tenant, 1 ms apart",
	    "acquire hit, 16 tenants, no pause",
	    "acquire hit, 16 x 10 ms held",
	    "acquire + exec true + release",
	    "acquire cold miss (ns boot)",
	    "  not spinning: hit, 1 tenant",
	    "  not spinning: hit, 16 x 10 ms held",
	    "  not spinning: acquire+exec+release",
	    "bwrap true (cold)",
	    "unix socket round trip, 1 ms apart",
	    "unix socket round trip, 16 x 10 ms",
	    "unix socket round trip, 16 at once",
	    "  in vmpoold: hit, 1 ms apart",
	    "  no health checks: hit, 1 tenant",
	};
	struct bench_series s[S_COUNT];
	size_t runs = DEFAULT_RUNS;
	uint64_t v;
	int c, err = 0;

	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c != 'n' || parse_u64(optarg, 16, 1000000, &v)) {
			fprintf(stderr, "usage: vmpool-bench pool [-n RUNS]\n");
			return 2;
		}
		runs = v;
	}
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < S_COUNT && !err; i++)
		err = bench_series_init(&s[i], names[i], 2 * runs);

	if (!err)
		err = measure(runs, s);
	if (!err)
		report(s);
	for (int i = 0; i < S_COUNT; i++)
		free(s[i].ns);
	return err ? 1 : 0;
}
