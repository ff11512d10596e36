/* vmpool-bench subcommands: each measures one thing against a peer. */
#ifndef VMPOOL_BENCH_H
#define VMPOOL_BENCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

/* Each takes the arguments after its name (argv[0] is the name) and
 * returns the program's exit code. */
int bench_agent(int argc, char **argv);
int bench_boot(int argc, char **argv);
int bench_kvm(int argc, char **argv);
int bench_ns(int argc, char **argv);
int bench_pool(int argc, char **argv);
int bench_virtio(int argc, char **argv);
int bench_shm(int argc, char **argv);
int bench_soak(int argc, char **argv);
int bench_suite(int argc, char **argv);
int bench_worker(int argc, char **argv);

/* Shared peers. bwrap running true in fresh namespaces, the host's /usr
 * as its root (bench_ns.c): 0 and the time taken, or -errno. */
int bench_bwrap_true(uint64_t *took);

/* The kvm benchmark's peer (bench_kvm.c): QEMU -M microvm booting the
 * kernel and image in paths to the agent's HELLO `boots` times, then on
 * the last boot `execs` execs of /bin/true and a file of `size` bytes
 * written and read back; progress lines to `to`. 0 or -errno. */
struct kvm_agent_paths;
struct bench_qemu_figures {
	unsigned boots;
	double boot_p50_ms, exec_p50_ms, exec_p99_ms;
	double write_mbs, read_mbs;
};
int bench_kvm_qemu(const struct kvm_agent_paths *paths, unsigned boots,
		   unsigned execs, uint64_t size, FILE *to,
		   struct bench_qemu_figures *out);

/* Start that QEMU with the agent's channel on a stream socket: its pid,
 * with the host end in *fd, or -errno. */
pid_t bench_kvm_qemu_spawn(const struct kvm_agent_paths *paths, int *fd);

/* Latency samples that tenant threads add to at once (bench_pool.c). */
struct bench_series {
	const char *what;
	uint64_t *ns;
	size_t n;
	size_t cap;
	pthread_mutex_t lock;
};

int bench_series_init(struct bench_series *s, const char *what, size_t cap);
/* Samples beyond cap are dropped. */
void bench_series_add(struct bench_series *s, uint64_t ns);
/* Sorts the samples; p in [0, 100]; needs at least one sample. */
double bench_series_pct_us(struct bench_series *s, unsigned p);
/* The same for a plain array of n >= 1 samples: sorts ns, returns the
 * sample at p. */
uint64_t bench_pct_ns(uint64_t *ns, size_t n, unsigned p);

/* Round trips of one byte between `clients` threads, each on its own
 * unix socket, and one process polling them all, gap_ns apart per
 * client: the floor under leases (bench_peer.c). 0 or -errno. */
int bench_socket_round_trips(struct bench_series *s, size_t runs,
			     size_t clients, uint64_t gap_ns);

/* A vmpoold of our own: private name and socket in a temp dir. */
#define BENCH_DAEMON_ARGS 32
struct bench_daemon {
	pid_t pid;
	char name[32];
	char dir[64];
	char sock[96];
};

/* Fork and exec the vmpoold beside this program with args (at most
 * BENCH_DAEMON_ARGS, NULL-terminated) after --name and --socket, its
 * output dropped; returns once it accepts on its socket. */
int bench_daemon_start(struct bench_daemon *d, const char *const *args);
/* SIGTERM, reap, remove the temp dir. */
void bench_daemon_stop(struct bench_daemon *d);

/* KiB resident in mappings of exactly `size` bytes (a kvm worker's
 * guest RAM) and in all the others, from /proc/PID/smaps
 * (bench_worker.c); 0 or -errno. */
int bench_split_rss(pid_t pid, uint64_t size, long *guest, long *rest);

struct vmpool;
/* Wait until the pool holds at least n idle VMs, at most limit_ns. */
int bench_wait_idle(struct vmpool *p, uint64_t n, uint64_t limit_ns);

/* Tenants leasing in a loop: each acquire, optional exec of true,
 * release. Hits' acquire times go to lease, whole rounds to round. */
struct bench_leases {
	const char *sock;
	size_t runs;	   /* over all tenants */
	uint64_t limit_ns; /* per tenant; 0: 30 s */
	bool exec;
	bool sleep;	   /* no spinning for answers (vmpool_set_spin 0) */
	bool no_checks;	   /* the pool runs no health checks */
	uint64_t hold_ns;  /* each lease is held this long before release */
	uint64_t gap_ns;   /* and the next acquired this long after it */
	struct bench_series *lease; /* acquire, hits only; or NULL */
	struct bench_series *inside; /* vmpoold's part of each hit, or NULL */
	struct bench_series *round; /* acquire + exec true + release */
	size_t misses;
	size_t lost; /* acquires answered "VM lost", retried */
	int err;
};

/* exec true in a lease: 0, or -errno (-ECHILD: it did not exit 0). */
struct vmpool_lease;
int bench_exec_true(struct vmpool_lease *l);

/* `tenants` threads, each with its own connection, runs/tenants leases
 * each; 0 or the first tenant's -errno. */
int bench_leases_run(struct bench_leases *lp, size_t tenants);

#endif
