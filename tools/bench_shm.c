/* vmpool-bench shm: the pool's robust lock and one acquire+release, with
 * 1, 2 and 4 processes, next to a plain process-shared mutex. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "shm/pool.h"
#include "shm/shm.h"
#include "tools/bench.h"

#define MAX_PROCS 4
#define GOAL_NS	  1000 /* acquire+release, uncontended */

enum op { OP_PLAIN, OP_LOCK, OP_CYCLE };

/* Shared with the measuring processes. */
struct arena {
	pthread_mutex_t plain; /* the peer: process-shared, not robust */
	uint32_t ready;	       /* processes at the start line */
	uint32_t go;
	uint64_t ns[MAX_PROCS]; /* each process's time for its ops */
	int failed;
};

struct setup {
	struct shm *shm;
	struct arena *arena;
	long iters;
	int repeats;
};

/* Lease the most recent idle VM and give it back: three lock rounds. */
static int cycle(struct shm *shm)
{
	uint64_t t = now_ns();
	uint32_t slot;
	bool hc;

	if (pool_acquire(shm, 1000, t, &slot) != POOL_HIT)
		return -EIO;
	if (pool_release(shm, slot, t, &hc) < 0)
		return -EIO;
	return pool_recycle_done(shm, slot, RECYCLE_OK, t, NULL);
}

static int run_ops(const struct setup *s, enum op op)
{
	for (long i = 0; i < s->iters; i++) {
		if (op == OP_PLAIN) {
			pthread_mutex_lock(&s->arena->plain);
			pthread_mutex_unlock(&s->arena->plain);
		} else if (op == OP_LOCK) {
			if (shm_lock(s->shm) < 0)
				return -EIO;
			shm_unlock(s->shm);
		} else if (cycle(s->shm) < 0) {
			return -EIO;
		}
	}
	return 0;
}

static void wait_for_go(struct arena *a)
{
	__atomic_add_fetch(&a->ready, 1, __ATOMIC_ACQ_REL);
	while (!__atomic_load_n(&a->go, __ATOMIC_ACQUIRE))
		sched_yield();
}

static void child(const struct setup *s, enum op op, int index)
{
	uint64_t start;

	wait_for_go(s->arena);
	start = now_ns();
	if (run_ops(s, op) < 0)
		s->arena->failed = 1;
	s->arena->ns[index] = now_ns() - start;
	_exit(0);
}

/* Mean over the processes of their time per operation. */
static int run_once(const struct setup *s, enum op op, int procs,
		    double *ns_per_op)
{
	struct arena *a = s->arena;
	double sum = 0;

	a->ready = a->go = 0;
	for (int i = 0; i < procs; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return -errno;
		if (pid == 0)
			child(s, op, i);
	}

	while (__atomic_load_n(&a->ready, __ATOMIC_ACQUIRE) < (uint32_t)procs)
		sched_yield();
	__atomic_store_n(&a->go, 1, __ATOMIC_RELEASE);
	while (wait(NULL) > 0)
		;

	for (int i = 0; i < procs; i++)
		sum += (double)a->ns[i] / s->iters;
	*ns_per_op = sum / procs;
	return a->failed ? -EIO : 0;
}

static int by_value(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

static int measure(const struct setup *s, enum op op, int procs, double *median)
{
	double runs[32];
	int rc;

	for (int r = 0; r < s->repeats; r++) {
		rc = run_once(s, op, procs, &runs[r]);
		if (rc)
			return rc;
	}
	qsort(runs, s->repeats, sizeof(runs[0]), by_value);
	*median = runs[s->repeats / 2];
	return 0;
}

static int print_row(const struct setup *s, const char *what, enum op op,
		     int procs, double *out)
{
	double ns, peer;
	int rc;

	rc = measure(s, op, procs, &ns);
	if (!rc)
		rc = measure(s, OP_PLAIN, procs, &peer);
	if (rc)
		return rc;

	printf("%-28s %5d %10.1f %12.1f %8.2f\n", what, procs, ns, peer,
	       ns / peer);
	if (out)
		*out = ns;
	return 0;
}

static int run_table(const struct setup *s)
{
	static const int procs[] = {1, 2, 4};
	double cycle_ns = 0;
	int rc = 0;

	printf("%-28s %5s %10s %12s %8s\n", "operation", "procs", "ns/op",
	       "plain ns/op", "ratio");
	for (size_t i = 0; i < ARRAY_SIZE(procs) && !rc; i++)
		rc =
		    print_row(s, "robust lock+unlock", OP_LOCK, procs[i], NULL);
	for (size_t i = 0; i < ARRAY_SIZE(procs) && !rc; i++)
		rc = print_row(s, "acquire+release (3 locks)", OP_CYCLE,
			       procs[i], i == 0 ? &cycle_ns : NULL);
	if (rc)
		return rc;

	printf("\nplain: a process-shared, non-robust pthread mutex "
	       "lock+unlock, same processes.\n"
	       "goal: acquire+release under %d ns with 1 process: %s "
	       "(%.0f ns)\n",
	       GOAL_NS, cycle_ns < GOAL_NS ? "met" : "missed", cycle_ns);
	return 0;
}

static int init_plain(pthread_mutex_t *m)
{
	pthread_mutexattr_t attr;
	int rc;

	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	rc = pthread_mutex_init(m, &attr);
	pthread_mutexattr_destroy(&attr);
	return -rc;
}

/* A pool whose idle ring always has a VM for each process. */
static int make_pool(struct shm **out)
{
	struct pool_config cfg = {
	    .min_size = 0,
	    .max_size = 16,
	    .max_idle_ns = UINT64_MAX,
	};
	char name[SHM_NAME_MAX + 1];
	uint32_t slot;
	int rc;

	snprintf(name, sizeof(name), "bench-%d", getpid());
	rc = shm_create(name, 16, &cfg, out);
	if (rc)
		return rc;
	shm_unlink_name(name);

	for (int i = 0; i < 2 * MAX_PROCS && !rc; i++) {
		rc = pool_boot_start(*out, BOOT_WARM, now_ns(), &slot);
		if (!rc)
			rc = pool_boot_done(*out, slot, getpid(), true,
					    now_ns(), NULL);
	}
	return rc;
}

static int parse_args(int argc, char **argv, struct setup *s)
{
	uint64_t v;
	int c;

	while ((c = getopt(argc, argv, "n:r:h")) != -1) {
		if (c == 'n' && parse_u64(optarg, 1, 1ull << 32, &v) == 0)
			s->iters = v;
		else if (c == 'r' && parse_u64(optarg, 1, 31, &v) == 0)
			s->repeats = v;
		else
			return -EINVAL;
	}
	return optind == argc ? 0 : -EINVAL;
}

int bench_shm(int argc, char **argv)
{
	struct setup s = {.iters = 200000, .repeats = 5};
	int rc;

	if (parse_args(argc, argv, &s) < 0) {
		fprintf(stderr, "usage: vmpool-bench shm [-n OPS_PER_PROCESS] "
				"[-r REPEATS (median)]\n");
		return 2;
	}

	s.arena = mmap(NULL, sizeof(*s.arena), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s.arena == MAP_FAILED) {
		pr_err("mmap: %s", strerror(errno));
		return 1;
	}

	rc = init_plain(&s.arena->plain);
	if (rc) {
		pr_err("pthread_mutex_init: %s", strerror(-rc));
		return 1;
	}

	rc = make_pool(&s.shm);
	if (rc) {
		pr_err("shm_create: %s", shm_strerror(rc));
		return 1;
	}

	printf("vmpool-bench shm: %ld ops per process, median of %d runs\n\n",
	       s.iters, s.repeats);
	rc = run_table(&s);
	if (rc)
		pr_err("measuring: %s", strerror(-rc));
	shm_detach(s.shm);
	return rc ? 1 : 0;
}
