/* vmpool-bench kvm: our VMM booting our kernel and agent to HELLO, exec
 * round trips with the VM exits each costs, and file throughput, next to
 * QEMU -M microvm running the same kernel and image. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "kvm/virtio_console.h"
#include "tests/kvm_agent_guest.h"
#include "tools/bench.h"

#define SEC	     1000000000ull
#define BOOT_LIMIT   (120 * SEC)
#define MAX_BOOTS    20
#define MAX_EXECS    10000
#define STATS_PINGS  1000
#define QEMU	     "qemu-system-x86_64"
#define QEMU_CMDLINE "console=ttyS0 8250.nr_uarts=1 reboot=t panic=-1 quiet"

struct kvm_bench_opts {
	unsigned boots, execs;
	uint64_t size;
	bool qemu;
	struct kvm_agent_paths paths;
};

/* One machine's figures, milliseconds and MB/s; -1 when not measured. */
struct figures {
	double boot_ms[MAX_BOOTS];
	unsigned boots;
	double exec_p50, exec_p99;
	double write_mbs, read_mbs;
};

#define MAX_STATS 128

/* Exit counters over the exec loop, per exec. */
struct exit_costs {
	double vmm, vmm_mmio, vmm_io, vmm_intr;
	double kicks, irqs, reg_accesses;
	/* KVM's own vCPU counters, exits handled in the kernel included. */
	unsigned nkvm;
	char kvm_name[MAX_STATS][48];
	double kvm[MAX_STATS];
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double percentile(double *v, size_t n, double p)
{
	if (!n)
		return -1;
	qsort(v, n, sizeof(*v), cmp_double);
	return v[(size_t)(p * (n - 1) + 0.5)];
}

/* A vCPU's binary stats: the header and descriptors, read once. */
struct vcpu_stats {
	int fd;
	struct kvm_stats_header h;
	uint8_t *desc;
	size_t desc_size;
};

static int stats_load(struct vcpu_stats *s)
{
	size_t one;

	if (pread(s->fd, &s->h, sizeof(s->h), 0) != sizeof(s->h))
		return -EIO;

	one = sizeof(struct kvm_stats_desc) + s->h.name_size;
	s->desc_size = one * s->h.num_desc;
	s->desc = malloc(s->desc_size);
	if (!s->desc)
		return -ENOMEM;
	if (pread(s->fd, s->desc, s->desc_size, s->h.desc_offset) !=
	    (ssize_t)s->desc_size)
		return -EIO;
	return 0;
}

static const struct kvm_stats_desc *stats_desc(const struct vcpu_stats *s,
					       uint32_t i)
{
	size_t one = sizeof(struct kvm_stats_desc) + s->h.name_size;

	return (const void *)(s->desc + i * one);
}

/* A count that only grows and holds one value, such as an exit kind. */
static bool is_counter(const struct kvm_stats_desc *d)
{
	return d->size == 1 &&
	       (d->flags & KVM_STATS_TYPE_MASK) == KVM_STATS_TYPE_CUMULATIVE &&
	       (d->flags & KVM_STATS_UNIT_MASK) == KVM_STATS_UNIT_NONE;
}

static void stats_names(const struct vcpu_stats *s, struct exit_costs *x)
{
	x->nkvm = MIN(s->h.num_desc, MAX_STATS);
	for (unsigned i = 0; i < x->nkvm; i++)
		snprintf(x->kvm_name[i], sizeof(x->kvm_name[i]), "%.*s",
			 (int)s->h.name_size, stats_desc(s, i)->name);
}

static void stats_sample(const struct vcpu_stats *s, uint64_t *v)
{
	uint32_t n = MIN(s->h.num_desc, MAX_STATS);

	for (uint32_t i = 0; i < n; i++) {
		const struct kvm_stats_desc *d = stats_desc(s, i);
		off_t at = s->h.data_offset + d->offset;

		if (!is_counter(d) || pread(s->fd, &v[i], 8, at) != 8)
			v[i] = 0;
	}
}

/* The fetch outlives a vCPU ioctl that never gets its turn. */
static struct {
	int vcpu_fd;
	int fd; /* the stats fd, or -errno */
	bool done;
} fetch;

static void *fetch_stats_fd(void *arg)
{
	int fd = ioctl(fetch.vcpu_fd, KVM_GET_STATS_FD, NULL);

	fetch.fd = fd < 0 ? -errno : fd;
	__atomic_store_n(&fetch.done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* A vCPU ioctl waits for KVM_RUN to return, which an idle guest never
 * does on its own: ping it (each ping leaves KVM_RUN for the console's
 * registers) until the ioctl gets its turn, or give up. */
static int stats_open(struct kvm_agent_guest *g, struct vcpu_stats *s)
{
	pthread_t t;
	int err;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	fetch.vcpu_fd = kvm_agent_guest_vm(g)->vcpus[0].fd;
	err = -pthread_create(&t, NULL, fetch_stats_fd, NULL);
	if (err)
		return err;
	pthread_detach(t);

	for (int i = 0; i < STATS_PINGS && !err; i++) {
		if (__atomic_load_n(&fetch.done, __ATOMIC_ACQUIRE))
			break;
		err = proto_client_ping(&g->client);
	}
	if (err)
		return err;
	if (!__atomic_load_n(&fetch.done, __ATOMIC_ACQUIRE))
		return -ETIMEDOUT;
	s->fd = fetch.fd;
	return s->fd < 0 ? s->fd : stats_load(s);
}

static void stats_close(struct vcpu_stats *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->desc);
}

/* The test host makes every step slow: say what is done as it is. */
static FILE *progress_to; /* NULL: stdout */

static void progress(const char *who, const char *what, double ms)
{
	FILE *to = progress_to ? progress_to : stdout;

	fprintf(to, "  %-6s %-16s %10.1f ms\n", who, what, ms);
	fflush(to);
}

static double mbs(uint64_t bytes, uint64_t ns)
{
	return ns ? bytes / 1e6 / (ns / 1e9) : -1;
}

/* Execs of /bin/true, one at a time; their times in ms into t. */
static int exec_loop(struct proto_client *c, unsigned n, double *t)
{
	const char *argv[] = {"/bin/true", NULL};
	struct proto_exec_req req = {.argv = argv};
	struct proto_exit ex;

	for (unsigned i = 0; i < n; i++) {
		uint64_t start = now_ns();
		int err = proto_client_exec(c, &req, NULL, NULL, &ex);

		if (err)
			return err;
		if (ex.kind != PROTO_EXITED || ex.value != 0)
			return -ECHILD;
		t[i] = (now_ns() - start) / 1e6;
	}
	return 0;
}

static int measure_execs(const char *who, struct proto_client *c, unsigned n,
			 struct figures *f)
{
	double *t = calloc(n, sizeof(*t));
	int err;

	if (!t)
		return -ENOMEM;
	err = exec_loop(c, n, t);
	if (!err) {
		f->exec_p50 = percentile(t, n, 0.5);
		f->exec_p99 = percentile(t, n, 0.99);
		progress(who, "exec p50", f->exec_p50);
	}
	free(t);
	return err;
}

struct zeros {
	uint64_t left;
};

static ssize_t zero_source(void *arg, void *buf, size_t n)
{
	struct zeros *z = arg;

	n = MIN(n, z->left);
	memset(buf, 0x5a, n);
	z->left -= n;
	return n;
}

static int discard(void *arg, const void *p, size_t n)
{
	return 0;
}

static int measure_files(const char *who, struct proto_client *c, uint64_t size,
			 struct figures *f)
{
	struct zeros z = {size};
	uint64_t n, start = now_ns();
	int err;

	err = proto_client_write(c, "/tmp/bench.bin", 0600, 0, zero_source, &z,
				 &n);
	if (err)
		return err;
	f->write_mbs = mbs(n, now_ns() - start);
	progress(who, "file write", (now_ns() - start) / 1e6);

	start = now_ns();
	err = proto_client_read(c, "/tmp/bench.bin", 0, 0, discard, NULL, &n);
	if (err)
		return err;
	f->read_mbs = mbs(n, now_ns() - start);
	progress(who, "file read", (now_ns() - start) / 1e6);
	return proto_client_remove(c, "/tmp/bench.bin", 0);
}

/* Counters of our VM at one moment. */
struct counts {
	struct vm_exit_counts vmm;
	struct virtio_console_stats con;
	uint64_t kvm[MAX_STATS];
};

static void sample(struct kvm_agent_guest *g, const struct vcpu_stats *s,
		   struct counts *out)
{
	vm_exit_counts(kvm_agent_guest_vm(g), &out->vmm);
	virtio_console_get_stats(backend_kvm_console(&g->be), &out->con);
	if (s->fd >= 0)
		stats_sample(s, out->kvm);
}

static double per(uint64_t after, uint64_t before, unsigned n)
{
	return (double)(after - before) / n;
}

static void exit_costs(const struct counts *a, const struct counts *b,
		       unsigned n, struct exit_costs *x)
{
	x->vmm = per(b->vmm.total, a->vmm.total, n);
	x->vmm_mmio = per(b->vmm.by_reason[KVM_EXIT_MMIO],
			  a->vmm.by_reason[KVM_EXIT_MMIO], n);
	x->vmm_io = per(b->vmm.by_reason[KVM_EXIT_IO],
			a->vmm.by_reason[KVM_EXIT_IO], n);
	x->vmm_intr = per(b->vmm.by_reason[KVM_EXIT_INTR],
			  a->vmm.by_reason[KVM_EXIT_INTR], n);
	x->kicks = per(b->con.mmio.notifications, a->con.mmio.notifications, n);
	x->irqs = per(b->con.mmio.interrupts, a->con.mmio.interrupts, n);
	x->reg_accesses =
	    per(b->con.mmio.mmio_exits, a->con.mmio.mmio_exits, n);
	for (unsigned i = 0; i < x->nkvm; i++)
		x->kvm[i] = per(b->kvm[i], a->kvm[i], n);
}

/* The exec loop on our VM, with every exit counter around it. */
static int ours_execs(struct kvm_agent_guest *g, unsigned n, struct figures *f,
		      struct exit_costs *x)
{
	struct vcpu_stats s;
	struct counts a, b;
	int err;

	err = stats_open(g, &s);
	if (err)
		pr_warn("KVM_GET_STATS_FD: %s; exits inside KVM not counted",
			strerror(-err));
	else
		stats_names(&s, x);

	sample(g, &s, &a);
	err = measure_execs("vmpool", &g->client, n, f);
	sample(g, &s, &b);
	exit_costs(&a, &b, n, x);
	stats_close(&s);
	return err;
}

static int ours_boot(const struct kvm_bench_opts *o, struct kvm_agent_guest *g,
		     struct figures *f)
{
	int err = kvm_agent_guest_boot(g, &o->paths, BOOT_LIMIT, -1);
	struct vm_exit_counts n;

	if (err) {
		pr_err("boot: %s: %s", g->why, strerror(-err));
		kvm_agent_guest_free(g);
		return err;
	}
	f->boot_ms[f->boots++] = (g->hello_ns - g->start_ns) / 1e6;
	progress("vmpool", "boot to HELLO", f->boot_ms[f->boots - 1]);

	/* Each exit costs ~0.3 ms in the test host: say where they went. */
	vm_exit_counts(kvm_agent_guest_vm(g), &n);
	printf("  %-6s %-16s %10llu (port I/O %llu, MMIO %llu)\n", "",
	       "exits to VMM", (unsigned long long)n.total,
	       (unsigned long long)n.by_reason[KVM_EXIT_IO],
	       (unsigned long long)n.by_reason[KVM_EXIT_MMIO]);
	return 0;
}

/* The peer: QEMU's microvm with the same kernel, image and console
 * kind, the agent's channel on QEMU's stdio. Without ACPI (our kernel
 * has none) QEMU names its virtio-mmio devices on the command line. */
struct qemu_vm {
	pid_t pid;
	int fd;
	struct proto_client c;
	bool client_ready;
};

/* Options and values; the kernel, image and channel are added. */
static const char *const qemu_opts[][2] = {
    {"-M", "microvm,acpi=off"},
    {"-enable-kvm", NULL},
    {"-cpu", "host"},
    {"-m", "128"},
    {"-smp", "1"},
    {"-nodefaults", NULL},
    {"-no-user-config", NULL},
    {"-nographic", NULL},
    {"-no-reboot", NULL},
    {"-append", QEMU_CMDLINE},
    {"-serial", "null"},
    {"-device", "virtio-serial-device"},
    {"-chardev", "stdio,id=agent,signal=off"},
    {"-device", "virtconsole,chardev=agent"},
};

static void qemu_exec(const struct kvm_agent_paths *paths, int chan)
{
	const char *argv[2 * ARRAY_SIZE(qemu_opts) + 6];
	size_t n = 0;

	argv[n++] = QEMU;
	for (size_t i = 0; i < ARRAY_SIZE(qemu_opts); i++) {
		argv[n++] = qemu_opts[i][0];
		if (qemu_opts[i][1])
			argv[n++] = qemu_opts[i][1];
	}
	argv[n++] = "-kernel";
	argv[n++] = paths->vmlinux;
	argv[n++] = "-initrd";
	argv[n++] = paths->image;
	argv[n] = NULL;

	if (dup2(chan, STDIN_FILENO) < 0 || dup2(chan, STDOUT_FILENO) < 0)
		_exit(126);
	execvp(QEMU, (char **)argv);
	_exit(127);
}

/* The client waits forever; a peer that never boots must not. */
static int await_bytes(int fd, uint64_t ns)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n = poll(&p, 1, ns / 1000000);

	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

static void qemu_stop(struct qemu_vm *q)
{
	if (q->pid > 0) {
		kill(q->pid, SIGKILL);
		waitpid(q->pid, NULL, 0);
	}
	if (q->client_ready)
		proto_client_free(&q->c);
	if (q->fd >= 0)
		close(q->fd);
	q->pid = -1;
	q->fd = -1;
	q->client_ready = false;
}

pid_t bench_kvm_qemu_spawn(const struct kvm_agent_paths *paths, int *fd)
{
	int sv[2], err;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;

	pid = fork();
	if (pid == 0)
		qemu_exec(paths, sv[1]);
	err = pid < 0 ? -errno : 0;
	close(sv[1]);
	if (err) {
		close(sv[0]);
		return err;
	}
	*fd = sv[0];
	return pid;
}

static int qemu_boot(const struct kvm_bench_opts *o, struct qemu_vm *q,
		     struct figures *f)
{
	uint64_t start = now_ns();
	int err;

	q->pid = bench_kvm_qemu_spawn(&o->paths, &q->fd);
	if (q->pid < 0)
		return q->pid;

	err = proto_client_init(&q->c, q->fd);
	q->client_ready = !err;
	if (!err)
		err = await_bytes(q->fd, BOOT_LIMIT);
	if (!err)
		err = proto_client_hello(&q->c, NULL);
	if (!err) {
		f->boot_ms[f->boots++] = (now_ns() - start) / 1e6;
		progress("qemu", "boot to HELLO", f->boot_ms[f->boots - 1]);
	}
	return err;
}

/* Both machines, measured in turns, so that drift in a shared host (the
 * test host) falls on both columns alike. */
struct pair {
	const struct kvm_bench_opts *o;
	struct kvm_agent_guest g;
	struct qemu_vm q;
	bool qemu_ok;
	struct figures ours, peer;
	struct exit_costs x;
};

static void qemu_failed(struct pair *p, const char *what, int err)
{
	pr_err("%s: %s; the QEMU column stays empty from here", what,
	       strerror(-err));
	p->qemu_ok = false;
	qemu_stop(&p->q);
}

/* One boot of each; the last pair stays up for the measurements. */
static int boot_pair(struct pair *p, bool keep)
{
	int err = ours_boot(p->o, &p->g, &p->ours);

	if (err)
		return err;
	if (!keep)
		kvm_agent_guest_free(&p->g);
	if (!p->qemu_ok)
		return 0;

	err = qemu_boot(p->o, &p->q, &p->peer);
	if (err)
		qemu_failed(p, QEMU " boot to HELLO", err);
	else if (!keep)
		qemu_stop(&p->q);
	return 0;
}

static int measure_pair(struct pair *p)
{
	int err = ours_execs(&p->g, p->o->execs, &p->ours, &p->x);

	if (err) {
		pr_err("exec /bin/true: %s", strerror(-err));
		return err;
	}
	if (p->qemu_ok &&
	    (err = measure_execs("qemu", &p->q.c, p->o->execs, &p->peer)))
		qemu_failed(p, "qemu: exec /bin/true", err);

	err = measure_files("vmpool", &p->g.client, p->o->size, &p->ours);
	if (err) {
		pr_err("file transfer: %s (%s)", strerror(-err),
		       p->g.client.err_msg);
		return err;
	}
	if (p->qemu_ok &&
	    (err = measure_files("qemu", &p->q.c, p->o->size, &p->peer)))
		qemu_failed(p, "qemu: file transfer", err);
	return 0;
}

static int run_pair(struct pair *p)
{
	int err = 0;

	for (unsigned i = 0; i < p->o->boots && !err; i++)
		err = boot_pair(p, i + 1 == p->o->boots);
	if (err)
		return err;

	err = measure_pair(p);
	kvm_agent_guest_free(&p->g);
	qemu_stop(&p->q);
	return err;
}

static double ratio(double a, double b)
{
	return a > 0 && b > 0 ? a / b : -1;
}

static void print_row(const char *what, double ours, double peer,
		      const char *goal)
{
	printf("%-24s %12.1f %14.1f %10.2f  %s\n", what, ours, peer,
	       ratio(ours, peer), goal);
}

static void print_table(const struct figures *a, const struct figures *b)
{
	double ba[MAX_BOOTS], bb[MAX_BOOTS];

	memcpy(ba, a->boot_ms, sizeof(ba));
	memcpy(bb, b->boot_ms, sizeof(bb));
	printf("%-24s %12s %14s %10s\n", "", "vmpool", "qemu microvm", "ratio");
	print_row("boot to HELLO p50 ms", percentile(ba, a->boots, 0.5),
		  percentile(bb, b->boots, 0.5), "goal <= 0.50");
	print_row("boot to HELLO max ms", percentile(ba, a->boots, 1),
		  percentile(bb, b->boots, 1), "");
	print_row("exec /bin/true p50 ms", a->exec_p50, b->exec_p50, "");
	print_row("exec /bin/true p99 ms", a->exec_p99, b->exec_p99, "");
	print_row("file write MB/s", a->write_mbs, b->write_mbs,
		  "higher is better");
	print_row("file read MB/s", a->read_mbs, b->read_mbs,
		  "higher is better");
}

static void print_exits(const struct exit_costs *x)
{
	printf("\nexits per exec of /bin/true (goal <= 4):\n");
	printf("  to the VMM        %5.2f  (MMIO %.2f, port I/O %.2f; "
	       "kicks out of KVM_RUN %.2f)\n",
	       x->vmm, x->vmm_mmio, x->vmm_io, x->vmm_intr);
	printf("  console           %5.2f register accesses, %.2f kicks "
	       "(ioeventfd), %.2f interrupts (irqfd)\n",
	       x->reg_accesses, x->kicks, x->irqs);
	if (!x->nkvm)
		return;

	/* Every KVM counter that moved, the total first. */
	for (unsigned i = 0; i < x->nkvm; i++)
		if (!strcmp(x->kvm_name[i], "exits"))
			printf("  inside KVM, all  %5.2f:", x->kvm[i]);
	for (unsigned i = 0; i < x->nkvm; i++)
		if (x->kvm[i] >= 0.05 && strcmp(x->kvm_name[i], "exits"))
			printf(" %s %.2f", x->kvm_name[i], x->kvm[i]);
	printf("\n");
}

static void read_through(const char *path)
{
	static char buf[1 << 16];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
}

/* The first boot would also pay for reading the kernel, the image and
 * QEMU itself from a cold cache (in the test host, over virtiofs). */
static void warm_caches(const struct kvm_bench_opts *o)
{
	pid_t pid;

	read_through(o->paths.vmlinux);
	read_through(o->paths.image);
	if (!o->qemu)
		return;

	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDOUT_FILENO);
		execlp(QEMU, QEMU, "--version", (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

static int usage(void)
{
	fprintf(stderr, "usage: vmpool-bench kvm [-b BOOTS] [-e EXECS] "
			"[-s SIZE] [--no-qemu]\n");
	return 2;
}

static int parse(struct kvm_bench_opts *o, int argc, char **argv)
{
	static const struct option longs[] = {{"no-qemu", 0, NULL, 'Q'},
					      {NULL, 0, NULL, 0}};
	uint64_t v;
	int c;

	*o = (struct kvm_bench_opts){
	    .boots = 3, .execs = 100, .size = 4 << 20, .qemu = true};
	while ((c = getopt_long(argc, argv, "b:e:s:", longs, NULL)) != -1) {
		if (c == 'b' && !parse_u64(optarg, 1, MAX_BOOTS, &v))
			o->boots = v;
		else if (c == 'e' && !parse_u64(optarg, 1, MAX_EXECS, &v))
			o->execs = v;
		else if (c == 's' && !parse_size(optarg, &o->size) && o->size)
			continue;
		else if (c == 'Q')
			o->qemu = false;
		else
			return -EINVAL;
	}
	return optind == argc ? 0 : -EINVAL;
}

int bench_kvm(int argc, char **argv)
{
	struct kvm_bench_opts o;
	char why[PATH_MAX + 64];
	struct pair *p;
	int err;

	if (parse(&o, argc, argv))
		return usage();
	if (!kvm_agent_host_ok(why, sizeof(why))) {
		pr_err("needs hardware KVM (run it in vmpool-testhost): %s",
		       why);
		return 1;
	}
	if (kvm_agent_find(&o.paths, why, sizeof(why))) {
		pr_err("not built: %s", why);
		return 1;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return 1;
	*p = (struct pair){
	    .o = &o, .q = {.pid = -1, .fd = -1}, .qemu_ok = o.qemu};

	printf("kvm: %u boots each, in turns, %u execs, %llu MiB files; peer: "
	       "%s -M microvm, same kernel and image\n",
	       o.boots, o.execs, (unsigned long long)(o.size >> 20), QEMU);
	fflush(stdout);
	warm_caches(&o);
	err = run_pair(p);
	if (!err) {
		print_table(&p->ours, &p->peer);
		print_exits(&p->x);
	}
	free(p);
	return err ? 1 : 0;
}

int bench_kvm_qemu(const struct kvm_agent_paths *paths, unsigned boots,
		   unsigned execs, uint64_t size, FILE *to,
		   struct bench_qemu_figures *out)
{
	struct kvm_bench_opts o = {.boots = MIN(boots, MAX_BOOTS),
				   .execs = MIN(execs, MAX_EXECS),
				   .size = size,
				   .qemu = true,
				   .paths = *paths};
	struct qemu_vm q = {.pid = -1, .fd = -1};
	struct figures f = {0};
	int err = 0;

	progress_to = to;
	warm_caches(&o);
	for (unsigned i = 0; i < o.boots && !err; i++) {
		if (i)
			qemu_stop(&q);
		err = qemu_boot(&o, &q, &f);
	}
	if (!err)
		err = measure_execs("qemu", &q.c, o.execs, &f);
	if (!err)
		err = measure_files("qemu", &q.c, o.size, &f);
	qemu_stop(&q);
	progress_to = NULL;

	out->boots = f.boots;
	out->boot_p50_ms = percentile(f.boot_ms, f.boots, 0.5);
	out->exec_p50_ms = f.exec_p50;
	out->exec_p99_ms = f.exec_p99;
	out->write_mbs = f.write_mbs;
	out->read_mbs = f.read_mbs;
	return err;
}
