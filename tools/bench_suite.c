/* vmpool-bench suite: the headline figures of one backend through the
 * real vmpoold, in one table, next to a peer measured in the same run. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "client/vmpool.h"
#include "common/log.h"
#include "common/util.h"
#include "shm/shm.h"
#include "tests/kvm_agent_guest.h"
#include "tools/bench.h"

#define SEC		1000000000ull
#define GIB		(1024.0 * 1024 * 1024)
#define MAX_TENANTS	64
#define MAX_KILLS	50
#define MAX_DESCENDANTS 256
#define RECOVER_SLOWEST (120 * SEC)

/* What to run; the defaults differ by backend (see defaults()). */
struct suite_opts {
	bool kvm, json;
	size_t n;	/* leases per phase, execs in one lease */
	unsigned kills; /* idle workers killed, one at a time */
	unsigned idle;	/* VMs the pool keeps warm */
	unsigned peer_runs;
	uint64_t file_size;
	uint64_t mem;	   /* kvm guest RAM */
	uint64_t limit_ns; /* for a warm-up or one phase of leases */
	struct kvm_agent_paths paths;
};

/* Everything measured on our side; times in ns. */
struct suite_figures {
	struct bench_series boot, hit[3], hot, exec, recover;
	size_t misses[3], lost[3];
	double write_mbs, read_mbs;
	struct bench_series rss; /* worker KiB, guest RAM excluded */
	uint64_t cost_kib;	 /* all the idle VMs together */
	unsigned measured_vms;
};

/* The peer's p50 figures, NAN when not measured. */
struct peer_figures {
	const char *what;
	unsigned runs;
	double start_ms; /* a cold start to the first command */
	double hot_ms;	 /* start, then exec true */
	double exec_ms;
	double write_mbs, read_mbs;
};

static const unsigned tenant_counts[3] = {1, 16, MAX_TENANTS};

static void nap_us(long us)
{
	struct timespec ts = {.tv_sec = us / 1000000,
			      .tv_nsec = us % 1000000 * 1000};

	nanosleep(&ts, NULL);
}

/* A consistent copy of the segment; writers may keep it busy a while. */
static int snap(const struct shm *shm, struct shm_segment *buf)
{
	int err;

	for (int i = 0; i < 1000; i++) {
		err = shm_snapshot(shm, buf, shm_size(shm));
		if (err != -EAGAIN)
			return err;
		nap_us(100);
	}
	return err;
}

static unsigned idle_count(const struct shm_segment *seg)
{
	const struct shm_slot *slots = shm_slots(seg);
	unsigned n = 0;

	for (uint32_t i = 0; i < seg->hdr.nslots; i++)
		n += slots[i].state == SLOT_IDLE;
	return n;
}

static bool has_pid(const struct shm_segment *seg, uint32_t pid)
{
	const struct shm_slot *slots = shm_slots(seg);

	for (uint32_t i = 0; i < seg->hdr.nslots; i++)
		if (slots[i].state != SLOT_FREE && slots[i].pid == pid)
			return true;
	return false;
}

/* Worker pids of idle slots, at most cap. */
static size_t idle_pids(const struct shm_segment *seg, pid_t *out, size_t cap)
{
	const struct shm_slot *slots = shm_slots(seg);
	size_t n = 0;

	for (uint32_t i = 0; i < seg->hdr.nslots && n < cap; i++)
		if (slots[i].state == SLOT_IDLE && slots[i].pid)
			out[n++] = slots[i].pid;
	return n;
}

/* SIGKILL one idle worker; the time until the pool holds `want` idle
 * VMs again, none of them the killed one. */
static int one_kill(const struct shm *shm, struct shm_segment *seg,
		    unsigned want, uint64_t *took)
{
	uint64_t t0, deadline;
	pid_t pid;
	int err = snap(shm, seg);

	if (err)
		return err;
	if (!idle_pids(seg, &pid, 1))
		return -ESRCH;

	t0 = now_ns();
	if (kill(pid, SIGKILL) < 0)
		return -errno;

	deadline = t0 + RECOVER_SLOWEST;
	while (now_ns() < deadline) {
		err = snap(shm, seg);
		if (err)
			return err;
		if (!has_pid(seg, pid) && idle_count(seg) >= want) {
			*took = now_ns() - t0;
			return 0;
		}
		nap_us(200);
	}
	return -ETIMEDOUT;
}

/* Boot times the pool logged since `since` (PEV_READY events). */
static void ready_events(const struct shm_segment *seg, uint64_t since,
			 struct bench_series *boot)
{
	uint64_t head = seg->hdr.events_head;
	uint64_t first = head > SHM_EVENTS ? head - SHM_EVENTS : 0;

	for (uint64_t i = first; i < head; i++) {
		const struct pool_event *e = &seg->events[i % SHM_EVENTS];

		if (e->kind == PEV_READY && e->time_ns >= since)
			bench_series_add(boot, e->value);
	}
}

/* Recovery after kills, and the boots that replaced the killed VMs:
 * each boot runs alone on an otherwise idle pool. */
static int recoveries(const char *name, const struct suite_opts *o,
		      struct suite_figures *f)
{
	struct shm_segment *seg = NULL;
	struct shm *shm;
	uint64_t since = now_ns(), took = 0;
	int err = shm_attach(name, SHM_RO, &shm);

	if (err)
		return err;
	seg = malloc(shm_size(shm));
	err = seg ? 0 : -ENOMEM;
	for (unsigned i = 0; i < o->kills && !err; i++) {
		err = one_kill(shm, seg, o->idle, &took);
		if (!err)
			bench_series_add(&f->recover, took);
	}
	if (!err)
		err = snap(shm, seg);
	if (!err)
		ready_events(seg, since, &f->boot);
	free(seg);
	shm_detach(shm);
	return err;
}

/* KiB from /proc/PID/smaps_rollup. */
struct rollup {
	uint64_t rss, pss, pss_shmem;
};

static int read_rollup(pid_t pid, struct rollup *r)
{
	char path[64], line[256];
	uint64_t v;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	memset(r, 0, sizeof(*r));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Rss: %" SCNu64, &v) == 1)
			r->rss = v;
		else if (sscanf(line, "Pss: %" SCNu64, &v) == 1)
			r->pss = v;
		else if (sscanf(line, "Pss_Shmem: %" SCNu64, &v) == 1)
			r->pss_shmem = v;
	}
	fclose(f);
	return 0;
}

/* Children of every thread of pid, then theirs: a worker starts its
 * sandbox from a thread. */
static size_t descendants(pid_t pid, pid_t *out, size_t n, size_t cap)
{
	char path[64];
	struct dirent *t;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d && (t = readdir(d))) {
		FILE *f;
		int child;

		if (t->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/children",
			 (int)pid, t->d_name);
		f = fopen(path, "re");
		while (f && n < cap && fscanf(f, "%d", &child) == 1) {
			out[n++] = child;
			n = descendants(child, out, n, cap);
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

/* KiB used on the file system at pid's root, when it is not the
 * host's (a sandbox's private tmpfs) and not yet counted. */
static uint64_t root_kib(pid_t pid, dev_t host, dev_t *seen, size_t *nseen)
{
	char path[64];
	struct statfs fs;
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/root/", (int)pid);
	if (stat(path, &st) || st.st_dev == host)
		return 0;
	for (size_t i = 0; i < *nseen; i++)
		if (seen[i] == st.st_dev)
			return 0;
	if (*nseen < MAX_DESCENDANTS)
		seen[(*nseen)++] = st.st_dev;
	if (statfs(path, &fs))
		return 0;
	return (fs.f_blocks - fs.f_bfree) * fs.f_bsize / 1024;
}

/* What an ns sandbox costs beyond its worker: its processes' PSS and
 * its tmpfs. Tmpfs pages the processes map (busybox, the agent) are in
 * their Pss_Shmem as well as in the tmpfs: counted once, as tmpfs. */
static uint64_t sandbox_kib(pid_t worker, dev_t host)
{
	static pid_t kids[MAX_DESCENDANTS];
	static dev_t seen[MAX_DESCENDANTS];
	size_t n = descendants(worker, kids, 0, MAX_DESCENDANTS), nseen = 0;
	uint64_t kib = 0;

	for (size_t i = 0; i < n; i++) {
		struct rollup r;

		if (!read_rollup(kids[i], &r))
			kib += r.pss - MIN(r.pss, r.pss_shmem);
		kib += root_kib(kids[i], host, seen, &nseen);
	}
	return kib;
}

/* One idle VM: its worker's RSS without guest RAM into f->rss; all it
 * costs, guest RAM touched and sandbox included, into f->cost_kib. */
static int measure_vm(pid_t pid, const struct suite_opts *o, dev_t host,
		      struct suite_figures *f)
{
	struct rollup r;
	long guest, rest;
	int err = read_rollup(pid, &r);

	if (err)
		return err;
	if (o->kvm) {
		err = bench_split_rss(pid, o->mem, &guest, &rest);
		if (err)
			return err;
		bench_series_add(&f->rss, rest);
	} else {
		bench_series_add(&f->rss, r.rss);
	}
	f->cost_kib += r.pss + (o->kvm ? 0 : sandbox_kib(pid, host));
	f->measured_vms++;
	return 0;
}

static int measure_memory(const char *name, const struct suite_opts *o,
			  struct suite_figures *f)
{
	static pid_t pids[SHM_MAX_SLOTS];
	struct shm_segment *seg;
	struct stat host;
	struct shm *shm;
	size_t n = 0;
	int err = shm_attach(name, SHM_RO, &shm);

	if (err)
		return err;
	seg = malloc(shm_size(shm));
	err = seg ? snap(shm, seg) : -ENOMEM;
	if (!err)
		n = idle_pids(seg, pids, ARRAY_SIZE(pids));
	if (!err && stat("/", &host))
		err = -errno;
	for (size_t i = 0; i < n && !err; i++)
		err = measure_vm(pids[i], o, host.st_dev, f);
	free(seg);
	shm_detach(shm);
	return err;
}

/* One lease: n execs of true, each timed, then a file written and read
 * back whole. */
static int exec_and_files(struct vmpool_lease *l, const struct suite_opts *o,
			  struct suite_figures *f)
{
	uint64_t t0;
	void *back = NULL;
	size_t len = 0;
	char *data;
	int err = 0;

	for (size_t i = 0; i < o->n && !err; i++) {
		t0 = now_ns();
		err = bench_exec_true(l);
		bench_series_add(&f->exec, now_ns() - t0);
	}
	data = err ? NULL : malloc(o->file_size);
	if (!err && !data)
		err = -ENOMEM;
	if (err)
		return err;

	memset(data, 0x5a, o->file_size);
	t0 = now_ns();
	err =
	    vmpool_write_buf(l, "/tmp/suite.bin", 0600, 0, data, o->file_size);
	f->write_mbs = o->file_size / 1e6 / ((now_ns() - t0) / 1e9);
	t0 = now_ns();
	if (!err)
		err = vmpool_read_buf(l, "/tmp/suite.bin", &back, &len);
	f->read_mbs = len / 1e6 / ((now_ns() - t0) / 1e9);
	if (!err && len != o->file_size)
		err = -EIO;
	vmpool_free(back);
	free(data);
	return err ? err : vmpool_remove(l, "/tmp/suite.bin", 0);
}

static int one_long_lease(const char *sock, const struct suite_opts *o,
			  struct suite_figures *f)
{
	struct vmpool_lease *l;
	struct vmpool *p;
	int err = vmpool_connect(sock, &p);

	if (!err)
		err = vmpool_acquire(p, 0, &l);
	if (err) {
		pr_err("exec and files: acquire: %s", vmpool_error(p));
		vmpool_close(p);
		return err;
	}
	err = exec_and_files(l, o, f);
	if (err)
		pr_err("exec and files: %s", vmpool_lease_error(l));
	vmpool_release(l);
	vmpool_close(p);
	return err;
}

static int wait_full(const char *sock, const struct suite_opts *o)
{
	struct vmpool *p;
	int err = vmpool_connect(sock, &p);

	if (!err)
		err = bench_wait_idle(p, o->idle, o->limit_ns);
	vmpool_close(p);
	return err;
}

/* Leases at 1, 16 and 64 tenants, then acquire + exec + release; the
 * pool is refilled before each so every phase starts alike. */
static int lease_phases(const char *sock, const struct suite_opts *o,
			struct suite_figures *f)
{
	int err = 0;

	for (int i = 0; i < 4 && !err; i++) {
		unsigned tenants = i < 3 ? tenant_counts[i] : 1;
		struct bench_leases lp = {
		    .sock = sock,
		    .runs = MAX(o->n, tenants),
		    .limit_ns = o->limit_ns,
		    .exec = i == 3,
		    .lease = i < 3 ? &f->hit[i] : NULL,
		    .round = i == 3 ? &f->hot : NULL,
		};

		err = wait_full(sock, o);
		if (!err)
			err = bench_leases_run(&lp, tenants);
		if (i < 3) {
			f->misses[i] = lp.misses;
			f->lost[i] = lp.lost;
		}
	}
	return err;
}

static void daemon_args(const struct suite_opts *o, char nums[3][16],
			const char **args)
{
	size_t n = 0;

	snprintf(nums[0], sizeof(nums[0]), "%u", o->idle);
	snprintf(nums[1], sizeof(nums[1]), "%u", o->idle + 2);
	snprintf(nums[2], sizeof(nums[2]), "%llu",
		 (unsigned long long)(o->mem >> 20) ?: 1);
	args[n++] = "--backend";
	args[n++] = o->kvm ? "kvm" : "ns";
	args[n++] = "--min-size";
	args[n++] = nums[0];
	/* Room for misses at 64 tenants without a host-sized burst. */
	args[n++] = "--max-size";
	args[n++] = nums[1];
	args[n++] = "--max-total";
	args[n++] = nums[1];
	args[n++] = "--max-idle";
	args[n++] = "1h";
	if (o->kvm) {
		args[n++] = "--kernel";
		args[n++] = o->paths.vmlinux;
		args[n++] = "--image";
		args[n++] = o->paths.image;
		args[n++] = "--mem";
		strcat(nums[2], "M");
		args[n++] = nums[2];
	}
	args[n] = NULL;
}

/* The pool side: one vmpoold for every figure. Memory and kills come
 * first, while the pool holds exactly min_size idle VMs: later a lease
 * leaves one more behind (its replacement was booted meanwhile), and a
 * kill would then not bring idle below min_size. */
static int measure_pool(const struct suite_opts *o, struct suite_figures *f)
{
	const char *args[BENCH_DAEMON_ARGS];
	struct bench_daemon d = {0};
	char nums[3][16];
	const char *step = "starting vmpoold";
	int err;

	daemon_args(o, nums, args);
	err = bench_daemon_start(&d, args);
	if (!err && !(err = wait_full(d.sock, o)))
		step = "memory of idle VMs";
	if (!err && !(err = measure_memory(d.name, o, f)))
		step = "worker kills";
	if (!err && !(err = recoveries(d.name, o, f)))
		step = "lease phases";
	if (!err && !(err = lease_phases(d.sock, o, f)))
		step = "exec and files";
	if (!err)
		err = one_long_lease(d.sock, o, f);
	if (err)
		pr_err("%s: %s", step, strerror(-err));
	bench_daemon_stop(&d);
	return err;
}

static double p50_ms(struct bench_series *s)
{
	return s->n ? bench_series_pct_us(s, 50) / 1e3 : NAN;
}

static int peer_bwrap(const struct suite_opts *o, struct peer_figures *pf)
{
	struct bench_series s;
	int err = bench_series_init(&s, "bwrap true", o->peer_runs);

	for (unsigned i = 0; i < o->peer_runs && !err; i++) {
		uint64_t took;

		err = bench_bwrap_true(&took);
		if (!err)
			bench_series_add(&s, took);
	}
	pf->what = "bwrap true (cold)";
	pf->runs = s.n;
	pf->start_ms = pf->hot_ms = p50_ms(&s);
	free(s.ns);
	return err;
}

static int peer_qemu(const struct suite_opts *o, struct peer_figures *pf)
{
	struct bench_qemu_figures q;
	int err = bench_kvm_qemu(&o->paths, o->peer_runs, o->n, o->file_size,
				 stderr, &q);

	pf->what = "qemu -M microvm, same kernel and image";
	pf->runs = q.boots;
	if (err)
		return err;
	pf->start_ms = q.boot_p50_ms;
	pf->exec_ms = q.exec_p50_ms;
	pf->hot_ms = q.boot_p50_ms + q.exec_p50_ms;
	pf->write_mbs = q.write_mbs;
	pf->read_mbs = q.read_mbs;
	return 0;
}

/* One line of the table: a distribution (p50, p99) or one figure. */
struct row {
	const char *key, *what, *unit;
	size_t n;
	double p50, p99; /* p99 NAN: one figure, in p50 */
	double peer;	 /* the peer's p50; NAN: none */
	bool rate;	 /* more is better */
	long misses;	 /* lease rows; -1 elsewhere */
};

/* Samples in raw units (ns, KiB) shown divided by div. */
static struct row dist(const char *key, const char *what, const char *unit,
		       struct bench_series *s, double div, double peer)
{
	struct row r = {key, what, unit, s->n, NAN, NAN, peer, false, -1};

	if (s->n) {
		r.p50 = bench_series_pct_us(s, 50) * 1e3 / div;
		r.p99 = bench_series_pct_us(s, 99) * 1e3 / div;
	}
	return r;
}

static struct row one(const char *key, const char *what, const char *unit,
		      size_t n, double v, double peer, bool rate)
{
	return (struct row){key, what, unit, n, v, NAN, peer, rate, -1};
}

/* > 1 when vmpool is ahead: peer / ours for times, ours / peer for
 * rates; NAN without a peer. */
static double ratio(const struct row *r)
{
	if (!(r->peer > 0) || !(r->p50 > 0))
		return NAN;
	return r->rate ? r->p50 / r->peer : r->peer / r->p50;
}

#define NROWS 12

static size_t make_rows(struct suite_figures *f, const struct peer_figures *pf,
			struct row *r)
{
	static const char *const hit_keys[3] = {"lease_hit_1", "lease_hit_16",
						"lease_hit_64"};
	static const char *const hit_what[3] = {
	    "lease (acquire hit), 1 tenant", "lease (acquire hit), 16 tenants",
	    "lease (acquire hit), 64 tenants"};
	double per_vm =
	    f->measured_vms ? f->cost_kib / 1024.0 / f->measured_vms : NAN;
	size_t n = 0;

	r[n++] = dist("boot_ready", "boot to READY", "ms", &f->boot, 1e6,
		      pf->start_ms);
	for (int i = 0; i < 3; i++) {
		r[n] =
		    dist(hit_keys[i], hit_what[i], "us", &f->hit[i], 1e3, NAN);
		r[n++].misses = f->misses[i];
	}
	r[n++] = dist("hot_path", "acquire + exec true + release", "us",
		      &f->hot, 1e3, pf->hot_ms * 1e3);
	r[n++] = dist("exec", "exec true round trip", "us", &f->exec, 1e3,
		      pf->exec_ms * 1e3);
	r[n++] = one("file_write", "file write", "MB/s", 1, f->write_mbs,
		     pf->write_mbs, true);
	r[n++] = one("file_read", "file read", "MB/s", 1, f->read_mbs,
		     pf->read_mbs, true);
	r[n++] = dist("recovery", "recovery after a worker SIGKILL", "ms",
		      &f->recover, 1e6, NAN);
	r[n++] = dist("worker_rss", "worker RSS, guest RAM excluded", "MiB",
		      &f->rss, 1024, NAN);
	r[n++] = one("memory_per_vm", "memory per idle VM, all counted", "MiB",
		     f->measured_vms, per_vm, NAN, false);
	r[n++] = one("idle_vms_per_gib", "idle VMs per GiB of host memory",
		     "VMs", f->measured_vms, 1024 / per_vm, NAN, true);
	return n;
}

struct run_info {
	const struct suite_opts *o;
	const struct peer_figures *pf;
	double load[2][3]; /* at the start, at the end */
	bool peer_failed;
};

static void print_num(double v)
{
	if (isnan(v))
		printf(" %9s", "-");
	else
		printf(" %9.*f", fabs(v) < 10 ? 2 : 1, v);
}

static void print_table(const struct run_info *ri, const struct row *r,
			size_t n)
{
	const struct suite_opts *o = ri->o;

	printf("vmpool-bench suite: backend %s, N %zu, %u idle VMs, %u kills, "
	       "%llu MiB files, %ld CPUs\n",
	       o->kvm ? "kvm" : "ns", o->n, o->idle, o->kills,
	       (unsigned long long)(o->file_size >> 20),
	       sysconf(_SC_NPROCESSORS_ONLN));
	printf("load average %.2f %.2f %.2f at start, %.2f %.2f %.2f at end\n",
	       ri->load[0][0], ri->load[0][1], ri->load[0][2], ri->load[1][0],
	       ri->load[1][1], ri->load[1][2]);
	printf("peer: %s, %u runs%s\n\n", ri->pf->what, ri->pf->runs,
	       ri->peer_failed ? " (failed: its column is empty)" : "");
	printf("%-34s %-4s %5s %9s %9s %9s %9s\n", "", "unit", "n", "p50",
	       "p99", "peer p50", "ratio");
	for (size_t i = 0; i < n; i++) {
		printf("%-34s %-4s %5zu", r[i].what, r[i].unit, r[i].n);
		print_num(r[i].p50);
		print_num(r[i].p99);
		print_num(r[i].peer);
		print_num(ratio(&r[i]));
		if (r[i].misses >= 0)
			printf("  misses %ld", r[i].misses);
		printf("\n");
	}
	printf("\nratio: peer / vmpool for times, vmpool / peer for rates "
	       "(> 1: vmpool ahead); lease rows count hits only; memory is "
	       "PSS of the idle VMs' workers%s\n",
	       o->kvm ? " (guest RAM touched included)"
		      : ", their sandboxes' processes and tmpfs");
	if (o->idle + 2 < MAX_TENANTS)
		printf("only %u VMs for up to %u tenants: an acquire finding "
		       "none free is refused and retried, so hits there wait "
		       "behind the others\n",
		       o->idle + 2, MAX_TENANTS);
}

static void json_num(const char *key, double v)
{
	if (isnan(v) || isinf(v))
		printf(",\"%s\":null", key);
	else
		printf(",\"%s\":%.6g", key, v);
}

static void print_json(const struct run_info *ri, const struct row *r, size_t n)
{
	const struct suite_opts *o = ri->o;

	printf("{\"backend\":\"%s\",\"n\":%zu,\"idle_vms\":%u,\"kills\":%u,"
	       "\"file_bytes\":%llu,\"cpus\":%ld",
	       o->kvm ? "kvm" : "ns", o->n, o->idle, o->kills,
	       (unsigned long long)o->file_size, sysconf(_SC_NPROCESSORS_ONLN));
	for (int i = 0; i < 2; i++)
		printf(",\"loadavg_%s\":[%.2f,%.2f,%.2f]", i ? "end" : "start",
		       ri->load[i][0], ri->load[i][1], ri->load[i][2]);
	printf(",\"peer\":{\"what\":\"%s\",\"runs\":%u,\"failed\":%s}",
	       ri->pf->what, ri->pf->runs, ri->peer_failed ? "true" : "false");
	printf(",\"figures\":{");
	for (size_t i = 0; i < n; i++) {
		printf("%s\"%s\":{\"unit\":\"%s\",\"n\":%zu", i ? "," : "",
		       r[i].key, r[i].unit, r[i].n);
		json_num(isnan(r[i].p99) ? "value" : "p50", r[i].p50);
		if (!isnan(r[i].p99))
			json_num("p99", r[i].p99);
		json_num("peer_p50", r[i].peer);
		json_num("ratio", ratio(&r[i]));
		if (r[i].misses >= 0)
			printf(",\"misses\":%ld", r[i].misses);
		printf("}");
	}
	printf("}}\n");
}

static void defaults(struct suite_opts *o)
{
	o->n = o->kvm ? 40 : 1000;
	o->kills = o->kvm ? 3 : 20;
	o->idle = o->kvm ? 4 : MAX_TENANTS + 2;
	o->peer_runs = o->kvm ? 3 : 30;
	o->file_size = (o->kvm ? 4ull : 16ull) << 20;
	o->mem = 128ull << 20;
	o->limit_ns = (o->kvm ? 900 : 60) * SEC;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: vmpool-bench suite [--backend ns|kvm] [--json] [-n N] "
		"[--kills K] [--idle VMS] [--peer-runs R] [--file-size SIZE]\n"
		"  kvm needs hardware KVM: run it inside the test host,\n"
		"  tools/vmpool-testhost -- BUILD/bin/vmpool-bench suite "
		"--backend kvm\n");
	return 2;
}

/* The backend first: it sets the defaults the other options change. */
static int parse_backend(struct suite_opts *o, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *v = NULL;

		if (!strncmp(argv[i], "--backend=", 10))
			v = argv[i] + 10;
		else if (!strcmp(argv[i], "--backend") && i + 1 < argc)
			v = argv[i + 1];
		if (v && strcmp(v, "ns") && strcmp(v, "kvm"))
			return -EINVAL;
		if (v)
			o->kvm = !strcmp(v, "kvm");
	}
	defaults(o);
	return 0;
}

static int parse(struct suite_opts *o, int argc, char **argv)
{
	static const struct option longs[] = {
	    {"backend", required_argument, NULL, 'b'},
	    {"json", no_argument, NULL, 'j'},
	    {"kills", required_argument, NULL, 'k'},
	    {"idle", required_argument, NULL, 'i'},
	    {"peer-runs", required_argument, NULL, 'p'},
	    {"file-size", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0}};
	uint64_t v;
	int c;

	if (parse_backend(o, argc, argv))
		return -EINVAL;
	while ((c = getopt_long(argc, argv, "n:", longs, NULL)) != -1) {
		if (c == 'b')
			continue;
		else if (c == 'j')
			o->json = true;
		else if (c == 'n' && !parse_u64(optarg, 1, 1000000, &v))
			o->n = v;
		else if (c == 'k' && !parse_u64(optarg, 1, MAX_KILLS, &v))
			o->kills = v;
		else if (c == 'i' && !parse_u64(optarg, 1, 1024, &v))
			o->idle = v;
		else if (c == 'p' && !parse_u64(optarg, 1, 100, &v))
			o->peer_runs = v;
		else if (c == 's' && !parse_size(optarg, &o->file_size) &&
			 o->file_size && o->file_size <= (1ull << 30))
			continue;
		else
			return -EINVAL;
	}
	return optind == argc ? 0 : -EINVAL;
}

/* The kvm backend runs our guest: hardware KVM and a built kernel. */
static int check_kvm(struct suite_opts *o)
{
	char why[PATH_MAX + 64];

	if (!kvm_agent_host_ok(why, sizeof(why))) {
		pr_err("--backend kvm needs hardware KVM, this host has: %s; "
		       "run it inside the test host (tools/vmpool-testhost -- "
		       "BUILD/bin/vmpool-bench suite --backend kvm)",
		       why);
		return -ENOTSUP;
	}
	if (kvm_agent_find(&o->paths, why, sizeof(why))) {
		pr_err("not built: %s", why);
		return -ENOENT;
	}
	return 0;
}

static int series_all(struct suite_figures *f, const struct suite_opts *o)
{
	size_t leases = MAX(o->n, MAX_TENANTS);
	int err = bench_series_init(&f->boot, "boot", o->kills + o->idle);

	for (int i = 0; i < 3 && !err; i++)
		err = bench_series_init(&f->hit[i], "hit", leases);
	if (!err)
		err = bench_series_init(&f->hot, "hot", leases);
	if (!err)
		err = bench_series_init(&f->exec, "exec", o->n);
	if (!err)
		err = bench_series_init(&f->recover, "recover", o->kills);
	if (!err)
		err = bench_series_init(&f->rss, "rss", SHM_MAX_SLOTS);
	return err;
}

static void series_free(struct suite_figures *f)
{
	struct bench_series *all[] = {&f->boot,	   &f->hit[0], &f->hit[1],
				      &f->hit[2],  &f->hot,    &f->exec,
				      &f->recover, &f->rss};

	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		free(all[i]->ns);
}

/* Ours first, then the peer, each alone on the machine. */
static int run(struct run_info *ri, struct suite_figures *f,
	       struct peer_figures *pf)
{
	const struct suite_opts *o = ri->o;
	int err;

	if (getloadavg(ri->load[0], 3) < 0)
		memset(ri->load[0], 0, sizeof(ri->load[0]));
	err = measure_pool(o, f);
	if (err)
		return err;

	err = o->kvm ? peer_qemu(o, pf) : peer_bwrap(o, pf);
	if (err) {
		pr_warn("peer %s: %s", pf->what, strerror(-err));
		ri->peer_failed = true;
	}
	if (getloadavg(ri->load[1], 3) < 0)
		memset(ri->load[1], 0, sizeof(ri->load[1]));
	return 0;
}

int bench_suite(int argc, char **argv)
{
	struct suite_opts o = {0};
	struct suite_figures f = {0};
	struct peer_figures pf = {.start_ms = NAN,
				  .hot_ms = NAN,
				  .exec_ms = NAN,
				  .write_mbs = NAN,
				  .read_mbs = NAN};
	struct run_info ri = {.o = &o, .pf = &pf};
	struct row rows[NROWS];
	size_t n;
	int err;

	if (parse(&o, argc, argv))
		return usage();
	if (o.kvm && check_kvm(&o))
		return 1;
	signal(SIGPIPE, SIG_IGN);

	err = series_all(&f, &o);
	if (!err)
		err = run(&ri, &f, &pf);
	if (!err) {
		n = make_rows(&f, &pf, rows);
		if (o.json)
			print_json(&ri, rows, n);
		else
			print_table(&ri, rows, n);
	}
	series_free(&f);
	return err ? 1 : 0;
}
