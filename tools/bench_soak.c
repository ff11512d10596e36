/* vmpool-bench kvm-soak: file uploads and read-backs on one agent guest
 * until it dies or the time is up, on our VMM or on QEMU -M microvm. */
#include <errno.h>
#include <getopt.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "kvm/virtio_console.h"
#include "tests/kvm_agent_guest.h"
#include "tools/bench.h"

#define SEC	      1000000000ull
#define BOOT_LIMIT    (180 * SEC)
#define FNV_BASIS     0xcbf29ce484222325ull
#define FNV_PRIME     0x100000001b3ull
#define CONSOLE_TAIL  2048
#define DEFAULT_SIZE  (16ull << 20)
#define DEFAULT_TIME  (600 * SEC)
#define DEFAULT_LIMIT (120 * SEC)
#define SMALL_FILE    (900ull << 10)
#define SPIN_WATCH    (15 * SEC)
#define SPIN_PINGS    20
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1 */
#endif

struct soak_opts {
	uint64_t size, time_ns, limit_ns;
	uint64_t rounds; /* round trips per boot; 0: one boot for all */
	bool qemu, keep_going, collapse, spin;
	int console_fd;
	struct kvm_agent_paths paths;
};

/* The machine under test: one of ours, or a QEMU child. */
struct soak_vm {
	struct kvm_agent_guest *g;
	pid_t qemu;
	int qemu_fd;
	struct proto_client qc;
	struct proto_client *c;
};

struct soak_count {
	uint64_t boots, deaths, transfers, bytes, busy_ns;
};

/* The QEMU peer has no watchdog of its own: a hang ends in SIGKILL. */
static volatile pid_t alarm_victim;
static volatile sig_atomic_t alarm_fired;

static void on_alarm(int sig)
{
	alarm_fired = 1;
	if (alarm_victim > 0)
		kill(alarm_victim, SIGKILL);
}

static void arm(struct soak_vm *m, uint64_t ns)
{
	alarm_fired = 0;
	if (m->g)
		kvm_agent_guest_arm(m->g, ns);
	else
		alarm((ns + SEC - 1) / SEC);
}

static void disarm(struct soak_vm *m)
{
	if (m->g)
		kvm_agent_guest_disarm(m->g);
	else
		alarm(0);
}

/* A file of `size` bytes drawn from `seed`, FNV-1a hashed as it goes;
 * each piece moved gives the machine `limit_ns` more. */
struct stream {
	uint64_t off, size, seed, hash;
	struct soak_vm *m;
	uint64_t limit_ns;
};

static uint8_t pattern_byte(uint64_t off, uint64_t seed)
{
	uint64_t z = (off / 8 + seed) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (uint8_t)((z ^ (z >> 31)) >> (off % 8 * 8));
}

static void hash_bytes(struct stream *s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s->hash = (s->hash ^ p[i]) * FNV_PRIME;
	s->off += n;
	arm(s->m, s->limit_ns);
}

static ssize_t pattern_source(void *arg, void *buf, size_t n)
{
	struct stream *s = arg;
	uint8_t *p = buf;

	n = MIN(n, s->size - s->off);
	for (size_t i = 0; i < n; i++)
		p[i] = pattern_byte(s->off + i, s->seed);
	hash_bytes(s, p, n);
	return n;
}

static int hash_sink(void *arg, const void *p, size_t n)
{
	hash_bytes(arg, p, n);
	return 0;
}

static int qemu_start(const struct soak_opts *o, struct soak_vm *m)
{
	struct sigaction sa = {.sa_handler = on_alarm};
	int err;

	m->qemu = bench_kvm_qemu_spawn(&o->paths, &m->qemu_fd);
	if (m->qemu < 0)
		return m->qemu;
	alarm_victim = m->qemu;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) < 0)
		return -errno;

	err = proto_client_init(&m->qc, m->qemu_fd);
	if (err)
		return err;
	m->c = &m->qc;
	arm(m, BOOT_LIMIT);
	err = proto_client_hello(m->c, NULL);
	disarm(m);
	return err;
}

static int vm_boot(const struct soak_opts *o, struct soak_vm *m)
{
	int err;

	m->qemu = -1;
	m->qemu_fd = -1;
	if (o->qemu)
		return qemu_start(o, m);

	m->g = calloc(1, sizeof(*m->g));
	if (!m->g)
		return -ENOMEM;
	err = kvm_agent_guest_boot(m->g, &o->paths, BOOT_LIMIT, o->console_fd);
	if (err)
		pr_err("boot: %s: %s; %s", m->g->why, strerror(-err),
		       kvm_agent_guest_state(m->g));
	m->c = &m->g->client;
	return err;
}

static void vm_free(struct soak_vm *m)
{
	if (m->g) {
		kvm_agent_guest_free(m->g);
		free(m->g);
	}
	if (m->c == &m->qc)
		proto_client_free(&m->qc);
	if (m->qemu > 0) {
		kill(m->qemu, SIGKILL);
		waitpid(m->qemu, NULL, 0);
	}
	if (m->qemu_fd >= 0)
		close(m->qemu_fd);
}

static void count(struct soak_count *n, uint64_t bytes, uint64_t since)
{
	n->transfers++;
	n->bytes += bytes;
	n->busy_ns += now_ns() - since;
}

/* Odd rounds upload a file of about a static binary's size, even ones
 * the full size: the sizes the end-to-end suite moves. */
static uint64_t round_size(const struct soak_opts *o, uint64_t seed)
{
	return seed % 2 ? MIN(o->size, SMALL_FILE) : o->size;
}

/* One upload of `size` bytes and its read-back, compared by hash. */
static int round_trip(const struct soak_opts *o, struct soak_vm *m,
		      uint64_t seed, struct soak_count *n)
{
	uint64_t size = round_size(o, seed);
	struct stream out = {.size = size,
			     .seed = seed,
			     .hash = FNV_BASIS,
			     .m = m,
			     .limit_ns = o->limit_ns};
	struct stream in = {.hash = FNV_BASIS, .m = m, .limit_ns = o->limit_ns};
	uint64_t done = 0, t = now_ns();
	int err;

	err = proto_client_write(m->c, "/tmp/soak", 0600, 0, pattern_source,
				 &out, &done);
	if (err) {
		pr_err("upload %llu: %s after %llu bytes",
		       (unsigned long long)seed, strerror(-err),
		       (unsigned long long)out.off);
		return err;
	}
	count(n, done, t);

	t = now_ns();
	err = proto_client_read(m->c, "/tmp/soak", 0, 0, hash_sink, &in, &done);
	if (err) {
		pr_err("read-back %llu: %s after %llu bytes",
		       (unsigned long long)seed, strerror(-err),
		       (unsigned long long)in.off);
		return err;
	}
	count(n, done, t);
	if (in.hash != out.hash || in.off != size) {
		pr_err("read-back %llu: the file came back changed",
		       (unsigned long long)seed);
		return -EIO;
	}
	return 0;
}

static void print_figures(const char *who, const struct soak_count *n,
			  uint64_t elapsed_ns)
{
	printf("kvm-soak %s: %llu boots, %llu deaths, %llu transfers, %.0f "
	       "MiB, %.1f MB/s, %.0f s\n",
	       who, (unsigned long long)n->boots, (unsigned long long)n->deaths,
	       (unsigned long long)n->transfers, n->bytes / 1048576.0,
	       n->busy_ns ? n->bytes / 1e6 / (n->busy_ns / 1e9) : 0.0,
	       elapsed_ns / 1e9);
	fflush(stdout);
}

static void dump_regs(int fd)
{
	struct kvm_regs r;

	if (ioctl(fd, KVM_GET_REGS, &r) < 0)
		return;
	printf("  rip %#llx rsp %#llx rflags %#llx rax %#llx rbx %#llx\n"
	       "  rcx %#llx rdx %#llx rsi %#llx rdi %#llx rbp %#llx\n",
	       r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi,
	       r.rbp);
}

static void dump_sregs(int fd)
{
	struct kvm_sregs s;

	if (ioctl(fd, KVM_GET_SREGS, &s) < 0)
		return;
	printf("  cr0 %#llx cr2 %#llx cr3 %#llx cr4 %#llx efer %#llx\n"
	       "  cs %#x ss %#x idt %#llx/%#x gdt %#llx/%#x tr %#x\n",
	       s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.cs.selector, s.ss.selector,
	       s.idt.base, s.idt.limit, s.gdt.base, s.gdt.limit, s.tr.selector);
}

static void dump_events(int fd)
{
	struct kvm_vcpu_events e;

	if (ioctl(fd, KVM_GET_VCPU_EVENTS, &e) < 0)
		return;
	printf("  exception injected %u nr %u has_error %u error %#x "
	       "pending %u\n"
	       "  interrupt injected %u nr %u shadow %u; nmi injected %u "
	       "pending %u masked %u\n",
	       e.exception.injected, e.exception.nr, e.exception.has_error_code,
	       e.exception.error_code, e.exception.pending,
	       e.interrupt.injected, e.interrupt.nr, e.interrupt.shadow,
	       e.nmi.injected, e.nmi.pending, e.nmi.masked);
}

static void dump_queue(struct virtio_console *con, unsigned i)
{
	struct virtio_mmio_queue *mq = &con->mmio.queues[i];
	struct virtq *q = &mq->vq;

	if (!q->started)
		return;
	printf("  queue %u: size %u avail idx %u flags %#x, used idx %u "
	       "flags %#x; device took %u gave %u; generation %u\n",
	       i, q->size, *(volatile uint16_t *)(q->avail + 2),
	       *(volatile uint16_t *)q->avail,
	       *(volatile uint16_t *)(q->used + 2),
	       *(volatile uint16_t *)q->used, q->last_avail, q->used_idx,
	       mq->generation);
}

/* The console device as the io thread left it (read without its lock:
 * the guest is gone, so it no longer moves). */
static void dump_console(struct virtio_console *con)
{
	struct virtio_console_stats st;

	virtio_console_get_stats(con, &st);
	printf("console: status %#x irq status %#x, %llu kicks %llu irqs, "
	       "rx %llu tx %llu bytes, host error %d eof %d\n",
	       con->mmio.status, con->mmio.interrupt_status,
	       (unsigned long long)st.mmio.notifications,
	       (unsigned long long)st.mmio.interrupts,
	       (unsigned long long)st.rx_bytes, (unsigned long long)st.tx_bytes,
	       st.host_error, st.host_eof);
	printf("  tx: write busy %d, %u iovs from %u, %u heads, gen %u; "
	       "rx: read busy %d, staged %u of %u; kick ops busy %d %d\n",
	       con->host_write.busy, con->tx_niov, con->tx_pos, con->tx_nheads,
	       con->tx_generation, con->host_read.busy, con->rx_off,
	       con->rx_len, con->rx_kick.busy, con->tx_kick.busy);
	for (unsigned i = 0; i < 2; i++)
		dump_queue(con, i);
}

/* Where each vCPU of a dead VM of ours stood, and the console's end. */
static void post_mortem(struct soak_vm *m)
{
	static char log[UART_LOG_SIZE + 1];
	struct vm *vm = kvm_agent_guest_vm(m->g);
	enum vm_end end;
	size_t n;

	if (!vm) {
		printf("kvm-soak: %s\n", kvm_agent_guest_state(m->g));
		return;
	}
	dump_console(backend_kvm_console(&m->g->be));
	kvm_agent_guest_wait_end(m->g, 10 * SEC, &end);
	printf("kvm-soak: %s\n", kvm_agent_guest_state(m->g));
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		printf("vCPU %u:\n", i);
		dump_regs(vm->vcpus[i].fd);
		dump_sregs(vm->vcpus[i].fd);
		dump_events(vm->vcpus[i].fd);
	}
	n = vm_uart_log(vm, log, UART_LOG_SIZE);
	log[n] = '\0';
	printf("console tail:\n%s\n",
	       log + (n > CONSOLE_TAIL ? n - CONSOLE_TAIL : 0));
}

/* Round trips on one guest until its share is done, the time is up or
 * it dies. */
static int soak_one(const struct soak_opts *o, struct soak_vm *m,
		    uint64_t *seed, uint64_t start, struct soak_count *n)
{
	uint64_t first = *seed;
	int err = 0;

	while (!err && now_ns() - start < o->time_ns &&
	       (!o->rounds || *seed - first < o->rounds)) {
		arm(m, o->limit_ns);
		err = round_trip(o, m, *seed, n);
		disarm(m);
		(*seed)++;
	}
	return err;
}

static ssize_t file_source(void *arg, void *buf, size_t n)
{
	size_t got = fread(buf, 1, n, arg);

	return got || !ferror(arg) ? (ssize_t)got : -EIO;
}

static bool watchdog_fired(struct soak_vm *m)
{
	return m->g ? kvm_agent_guest_fired(m->g) : alarm_fired;
}

/* A task that takes the guest's only CPU for good: the agent must stop
 * answering and the guest must stay up until the watchdog ends it. */
static int spin_phase(const struct soak_opts *o, struct soak_vm *m)
{
	const char *argv[] = {"/tmp/spin &", NULL};
	struct proto_exec_req req = {.argv = argv, .flags = PROTO_EXEC_SHELL};
	FILE *f = fopen(o->paths.spin, "rb");
	struct proto_exit ex;
	uint64_t n;
	int err;

	if (!f)
		return -errno;
	err =
	    proto_client_write(m->c, "/tmp/spin", 0755, 0, file_source, f, &n);
	fclose(f);
	if (!err)
		err = proto_client_exec(m->c, &req, NULL, NULL, &ex);
	if (err) {
		pr_err("start the spinner: %s", strerror(-err));
		return err;
	}

	/* It takes the CPU a second after its shell returns. */
	for (int i = 0; !err && i < SPIN_PINGS; i++) {
		usleep(500 * 1000);
		arm(m, SPIN_WATCH);
		err = proto_client_ping(m->c);
		disarm(m);
	}
	if (watchdog_fired(m))
		return 0;
	pr_err("the guest died under the spinner: %s",
	       err ? strerror(-err) : "it still answers");
	return -EIO;
}

/* Huge pages built out of guest RAM while the guest runs, as khugepaged
 * does on its own now and then: the window in which a host page under
 * the guest is replaced. */
struct collapser {
	pthread_t thread;
	struct vm *vm;
	bool stop;
};

static void *collapse_loop(void *arg)
{
	struct collapser *k = arg;
	uint64_t huge = 2ull << 20;

	while (!__atomic_load_n(&k->stop, __ATOMIC_ACQUIRE)) {
		uint8_t *base = k->vm->mem.host;
		uintptr_t at = ((uintptr_t)base + huge - 1) & ~(huge - 1);

		for (; at + huge <= (uintptr_t)base + k->vm->mem.size;
		     at += huge)
			madvise((void *)at, huge, MADV_COLLAPSE);
		usleep(20000);
	}
	return NULL;
}

static int one_boot(const struct soak_opts *o, uint64_t *seed, uint64_t start,
		    struct soak_count *n)
{
	const char *who = o->qemu ? "qemu" : "vmpool";
	struct collapser k = {0};
	struct soak_vm m = {0};
	bool collapsing = false;
	int err;

	err = vm_boot(o, &m);
	if (!err && o->collapse && m.g) {
		k.vm = kvm_agent_guest_vm(m.g);
		collapsing =
		    !pthread_create(&k.thread, NULL, collapse_loop, &k);
	}
	if (!err) {
		n->boots++;
		err = soak_one(o, &m, seed, start, n);
	}
	if (!err && o->spin)
		err = spin_phase(o, &m);
	if (collapsing) {
		__atomic_store_n(&k.stop, true, __ATOMIC_RELEASE);
		pthread_join(k.thread, NULL);
	}
	if (err) {
		n->deaths++;
		printf("kvm-soak %s: a guest died after %llu transfers\n", who,
		       (unsigned long long)n->transfers);
	}
	if (err && m.g)
		post_mortem(&m);
	print_figures(who, n, now_ns() - start);
	vm_free(&m);
	return err;
}

static int soak(const struct soak_opts *o)
{
	uint64_t start = now_ns(), seed = 1;
	struct soak_count n = {0};
	int err = 0;

	while ((!err || o->keep_going) && now_ns() - start < o->time_ns)
		err = one_boot(o, &seed, start, &n) || err;
	return n.deaths ? -EIO : 0;
}

static int usage(void)
{
	fprintf(
	    stderr,
	    "usage: vmpool-bench kvm-soak [-s SIZE] [-r ROUNDS] "
	    "[-t DURATION] [-l LIMIT] [--qemu] [--console]\n"
	    "       [--keep-going] [--collapse] [--spin]\n"
	    "Upload files to an agent guest and read them back, 900K and "
	    "SIZE (default\n16M) in turns, ROUNDS times (default 2) per "
	    "fresh boot, 0 for one boot\nonly, for DURATION (default 10m) "
	    "or until a guest dies; a transfer that\nmoves nothing for LIMIT "
	    "(default 2m) counts as a death.\n"
	    "--qemu runs the guest on QEMU -M microvm instead of our "
	    "VMM;\n--console copies our guest's console to stderr;\n"
	    "--keep-going boots a new guest after a death and counts "
	    "them;\n--collapse makes huge pages of our guest's RAM while "
	    "it runs;\n--spin ends each boot with a task that takes the "
	    "guest's CPU for good,\nwhich the watchdog must catch.\n");
	return 2;
}

static int parse(struct soak_opts *o, int argc, char **argv)
{
	static const struct option longs[] = {
	    {"qemu", 0, NULL, 'Q'},	  {"console", 0, NULL, 'C'},
	    {"keep-going", 0, NULL, 'k'}, {"collapse", 0, NULL, 'H'},
	    {"spin", 0, NULL, 'S'},	  {NULL, 0, NULL, 0}};
	int c;

	*o = (struct soak_opts){.size = DEFAULT_SIZE,
				.time_ns = DEFAULT_TIME,
				.limit_ns = DEFAULT_LIMIT,
				.rounds = 2,
				.console_fd = -1};
	while ((c = getopt_long(argc, argv, "s:r:t:l:", longs, NULL)) != -1) {
		if (c == 's' && !parse_size(optarg, &o->size) && o->size)
			continue;
		else if (c == 'r' &&
			 !parse_u64(optarg, 0, UINT32_MAX, &o->rounds))
			continue;
		else if (c == 't' && !parse_duration_ns(optarg, &o->time_ns))
			continue;
		else if (c == 'l' && !parse_duration_ns(optarg, &o->limit_ns) &&
			 o->limit_ns)
			continue;
		else if (c == 'Q')
			o->qemu = true;
		else if (c == 'C')
			o->console_fd = STDERR_FILENO;
		else if (c == 'k')
			o->keep_going = true;
		else if (c == 'H')
			o->collapse = true;
		else if (c == 'S')
			o->spin = true;
		else
			return -EINVAL;
	}
	return optind == argc ? 0 : -EINVAL;
}

int bench_soak(int argc, char **argv)
{
	struct soak_opts o;
	char why[PATH_MAX + 64];

	if (parse(&o, argc, argv))
		return usage();
	/* A guest that dies mid-transfer must not take us with it. */
	signal(SIGPIPE, SIG_IGN);
	if (!kvm_agent_host_ok(why, sizeof(why))) {
		pr_err("needs hardware KVM (run it in vmpool-testhost): %s",
		       why);
		return 1;
	}
	if (kvm_agent_find(&o.paths, why, sizeof(why))) {
		pr_err("not built: %s", why);
		return 1;
	}

	printf("kvm-soak: 900K and %llu-byte files up and back, %llu round "
	       "trips a boot, on %s\n",
	       (unsigned long long)o.size, (unsigned long long)o.rounds,
	       o.qemu ? "QEMU -M microvm" : "our VMM");
	fflush(stdout);
	return soak(&o) ? 1 : 0;
}
