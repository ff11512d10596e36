/* vmpool-bench boot: guest boots with a quiet console, next to the same
 * boots printing the whole kernel log on the UART. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "kvm/vm.h"
#include "tools/bench.h"

#define MAX_RUNS      50
#define READY_MARK    "vmtest: READY"
#define BOOT_LIMIT_NS (120 * 1000000000ull)

/* One boot's figures, in milliseconds but for the exit counts. */
struct boot_run {
	double setup, first_byte, ready;
	uint64_t exits, io_exits;
};

struct boot_opts {
	unsigned runs;
	char vmlinux[PATH_MAX], initramfs[PATH_MAX];
};

/* Default inputs sit beside the program: <builddir>/bin/vmpool-bench. */
static int default_inputs(struct boot_opts *o)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return -ENOENT;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	snprintf(o->vmlinux, sizeof(o->vmlinux), "%.3800s/../guest/vmlinux",
		 exe);
	snprintf(o->initramfs, sizeof(o->initramfs),
		 "%.3800s/../tests/kvm_test.cpio", exe);
	return 0;
}

static int parse(struct boot_opts *o, int argc, char **argv)
{
	uint64_t n;
	int c;

	o->runs = 5;
	default_inputs(o);
	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c != 'n' || parse_u64(optarg, 1, MAX_RUNS, &n))
			return -EINVAL;
		o->runs = n;
	}
	if (argc - optind == 2) {
		snprintf(o->vmlinux, sizeof(o->vmlinux), "%s", argv[optind]);
		snprintf(o->initramfs, sizeof(o->initramfs), "%s",
			 argv[optind + 1]);
	} else if (argc != optind) {
		return -EINVAL;
	}
	return 0;
}

static double ms(uint64_t from, uint64_t to)
{
	return from && to ? (double)(to - from) / 1e6 : -1;
}

static void collect(struct vm *vm, struct boot_run *r)
{
	struct vm_exit_counts n;
	struct vm_times t;

	vm_times(vm, &t);
	vm_exit_counts(vm, &n);
	r->setup = ms(t.created_ns, t.entry_ns);
	r->first_byte = ms(t.entry_ns, t.first_uart_ns);
	r->ready = ms(t.entry_ns, t.ready_ns);
	r->exits = n.total;
	r->io_exits = n.by_reason[KVM_EXIT_IO];
}

static int boot_once(const struct boot_opts *o, const char *cmdline,
		     struct boot_run *r)
{
	struct vm_config cfg;
	enum vm_end end;
	struct vm *vm;
	int err;

	vm_config_default(&cfg);
	cfg.ready_mark = READY_MARK;
	err = vm_create(&cfg, &vm);
	if (err) {
		pr_err("vm_create: %s", strerror(-err));
		return err;
	}

	err = vm_load_kernel(vm, o->vmlinux, o->initramfs, cmdline);
	if (!err)
		err = vm_start(vm);
	if (!err)
		err = vm_wait(vm, BOOT_LIMIT_NS, &end);
	if (err)
		pr_err("boot: %s",
		       vm_error(vm)[0] ? vm_error(vm) : strerror(-err));
	else
		collect(vm, r);
	vm_destroy(vm);
	return err;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of one field across runs. */
static double median(const struct boot_run *runs, unsigned n, size_t off)
{
	double v[MAX_RUNS];

	for (unsigned i = 0; i < n; i++)
		memcpy(&v[i], (const char *)&runs[i] + off, sizeof(double));
	qsort(v, n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void report(const char *name, const struct boot_run *runs, unsigned n)
{
	printf("%-6s setup %7.1f ms  first byte %7.1f ms  READY %7.1f ms  "
	       "exits %llu (port I/O %llu)\n",
	       name, median(runs, n, offsetof(struct boot_run, setup)),
	       median(runs, n, offsetof(struct boot_run, first_byte)),
	       median(runs, n, offsetof(struct boot_run, ready)),
	       (unsigned long long)runs[0].exits,
	       (unsigned long long)runs[0].io_exits);
}

static int need_hardware_kvm(void)
{
	struct kvm_host h;

	if (kvm_probe(&h) == 0 && h.kind == KVM_HOST_HARDWARE)
		return 0;
	pr_err("boot needs hardware KVM, this host has: %s; run it inside "
	       "the test host (tools/vmpool-testhost -- vmpool-bench boot)",
	       h.desc);
	return -ENOTSUP;
}

int bench_boot(int argc, char **argv)
{
	static struct boot_run quiet[MAX_RUNS], loud[MAX_RUNS];
	char loud_line[BOOT_CMDLINE_SIZE];
	struct boot_opts o;

	if (parse(&o, argc, argv)) {
		fprintf(stderr, "usage: vmpool-bench boot [-n RUNS] "
				"[VMLINUX INITRAMFS]\n");
		return 2;
	}
	if (need_hardware_kvm())
		return 2;

	/* The same line without "quiet": the kernel logs every step. */
	snprintf(loud_line, sizeof(loud_line), "%s",
		 "console=ttyS0 8250.nr_uarts=1 reboot=t panic=-1");

	/* Interleaved, so that drift of the machine hits both alike. */
	for (unsigned i = 0; i < o.runs; i++) {
		if (boot_once(&o, NULL, &quiet[i]) ||
		    boot_once(&o, loud_line, &loud[i]))
			return 1;
	}

	printf("boot: %u runs each, medians, entry = first vCPU entry\n",
	       o.runs);
	report("quiet", quiet, o.runs);
	report("full", loud, o.runs);
	printf("full/quiet: READY %.2fx, exits %.1fx\n",
	       median(loud, o.runs, offsetof(struct boot_run, ready)) /
		   median(quiet, o.runs, offsetof(struct boot_run, ready)),
	       (double)loud[0].exits / (double)(quiet[0].exits ?: 1));
	return 0;
}
