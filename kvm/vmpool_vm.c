/* vmpool-vm: boot one kernel and initramfs on KVM, show its console. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "kvm/vm.h"

#define POLL_NS	       (100 * 1000000ull)
#define EXIT_GUEST_BAD 1
#define EXIT_USAGE     2
#define EXIT_HOST_BAD  3
#define EXIT_TIMEOUT   4

struct options {
	struct vm_config cfg;
	const char *vmlinux, *initramfs;
	const char *cmdline; /* NULL: VM_DEFAULT_CMDLINE */
	const char *append[16];
	unsigned nr_append;
	uint64_t timeout_ns; /* 0: none */
	bool quiet;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vmpool-vm [options] VMLINUX [INITRAMFS]\n"
		"Boot an ELF vmlinux on KVM and copy its serial console to "
		"stdout.\n"
		"  -m SIZE   guest RAM (default 128M)\n"
		"  -c N      vCPUs (default 1)\n"
		"  -C LINE   kernel command line (default \"%s\")\n"
		"  -a TEXT   append TEXT to the command line (repeatable)\n"
		"  -t DUR    stop the guest after DUR (e.g. 30s)\n"
		"  -r TEXT   time the boot until the console prints TEXT\n"
		"  -q        no live console; print its last 4 KiB at the end\n"
		"  -v        more log lines\n",
		VM_DEFAULT_CMDLINE);
}

static int parse_option(struct options *o, int c, const char *arg)
{
	uint64_t n;

	switch (c) {
	case 'm':
		return parse_size(arg, &o->cfg.mem_size);
	case 'c':
		if (parse_u64(arg, 1, VM_MAX_VCPUS, &n))
			return -EINVAL;
		o->cfg.nr_vcpus = n;
		return 0;
	case 'C':
		o->cmdline = arg;
		return 0;
	case 'a':
		if (o->nr_append == ARRAY_SIZE(o->append))
			return -E2BIG;
		o->append[o->nr_append++] = arg;
		return 0;
	case 't':
		return parse_duration_ns(arg, &o->timeout_ns);
	case 'r':
		o->cfg.ready_mark = arg;
		return 0;
	case 'q':
		o->quiet = true;
		return 0;
	case 'v':
		log_set_level(log_get_level() + 1);
		return 0;
	}
	return -EINVAL;
}

static int parse_args(struct options *o, int argc, char **argv)
{
	int c;

	vm_config_default(&o->cfg);
	while ((c = getopt(argc, argv, "m:c:C:a:t:r:qvh")) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (parse_option(o, c, optarg)) {
			pr_err("bad option -%c %s", c, optarg ? optarg : "");
			return -EINVAL;
		}
	}
	if (argc - optind < 1 || argc - optind > 2) {
		usage(stderr);
		return -EINVAL;
	}
	o->vmlinux = argv[optind];
	o->initramfs = argc - optind == 2 ? argv[optind + 1] : NULL;
	if (!o->quiet)
		o->cfg.uart_echo_fd = STDOUT_FILENO;
	return 0;
}

static int probe_host(void)
{
	struct kvm_host h;
	int err = kvm_probe(&h);

	if (err) {
		pr_err("KVM unusable: %s", h.desc);
		return err;
	}
	pr_info("host KVM: %s", h.desc);
	return 0;
}

static int build_vm(const struct options *o, struct vm **out)
{
	struct vm *vm;
	int err;

	err = vm_create(&o->cfg, &vm);
	if (err) {
		pr_err("vm_create: %s", strerror(-err));
		return err;
	}

	for (unsigned i = 0; i < o->nr_append && !err; i++)
		err = vm_cmdline_append(vm, o->append[i]);
	if (!err)
		err = vm_load_kernel(vm, o->vmlinux, o->initramfs, o->cmdline);
	if (err) {
		pr_err("load kernel: %s",
		       vm_error(vm)[0] ? vm_error(vm) : strerror(-err));
		vm_destroy(vm);
		return err;
	}
	*out = vm;
	return 0;
}

/* Wait in short steps so that ^C and the timeout can stop the guest. */
static int wait_guest(struct vm *vm, uint64_t timeout_ns, enum vm_end *end)
{
	uint64_t start = now_ns();
	int err;

	for (;;) {
		err = vm_wait(vm, POLL_NS, end);
		if (err != -ETIMEDOUT)
			return err;
		if (interrupted)
			break;
		if (timeout_ns && now_ns() - start >= timeout_ns) {
			vm_stop(vm);
			vm_wait(vm, 0, end);
			return -ETIMEDOUT;
		}
	}
	vm_stop(vm);
	return vm_wait(vm, 0, end);
}

static double ms_between(uint64_t from, uint64_t to)
{
	if (!from || !to)
		return -1;
	return (double)(to - from) / 1e6;
}

static void print_summary(struct vm *vm, enum vm_end end)
{
	struct vm_exit_counts n;
	struct vm_times t;

	vm_times(vm, &t);
	vm_exit_counts(vm, &n);
	fprintf(stderr, "vmpool-vm: %s%s%s\n", vm_end_name(end),
		vm_error(vm)[0] ? ": " : "", vm_error(vm));
	fprintf(stderr,
		"vmpool-vm: host setup %.1f ms, entry to first console "
		"byte %.1f ms, entry to end %.1f ms\n",
		ms_between(t.created_ns, t.entry_ns),
		ms_between(t.entry_ns, t.first_uart_ns),
		ms_between(t.entry_ns, t.ended_ns));
	if (t.ready_ns)
		fprintf(stderr, "vmpool-vm: entry to ready %.1f ms\n",
			ms_between(t.entry_ns, t.ready_ns));
	fprintf(stderr, "vmpool-vm: %llu exits:", (unsigned long long)n.total);
	for (unsigned i = 0; i < VM_EXIT_REASONS; i++)
		if (n.by_reason[i])
			fprintf(stderr, " %s %llu", vm_exit_reason_name(i),
				(unsigned long long)n.by_reason[i]);
	fprintf(stderr, "; unclaimed port reads %llu writes %llu\n",
		(unsigned long long)n.pio_unclaimed_reads,
		(unsigned long long)n.pio_unclaimed_writes);
}

static void print_log_tail(struct vm *vm)
{
	char buf[4096];
	size_t n = vm_uart_log(vm, buf, sizeof(buf));

	fwrite(buf, 1, n, stdout);
	fflush(stdout);
}

static int exit_code(enum vm_end end)
{
	switch (end) {
	case VM_END_RESET:
	case VM_END_SHUTDOWN:
	case VM_END_STOPPED:
		return 0;
	default:
		return EXIT_GUEST_BAD;
	}
}

int main(int argc, char **argv)
{
	struct options o = {0};
	enum vm_end end = VM_END_NONE;
	struct vm *vm;
	int err;

	log_init(argv[0], -1);
	if (parse_args(&o, argc, argv))
		return EXIT_USAGE;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	if (probe_host() || build_vm(&o, &vm))
		return EXIT_HOST_BAD;

	err = vm_start(vm);
	if (err) {
		pr_err("vm_start: %s",
		       vm_error(vm)[0] ? vm_error(vm) : strerror(-err));
		vm_destroy(vm);
		return EXIT_HOST_BAD;
	}

	err = wait_guest(vm, o.timeout_ns, &end);
	if (o.quiet)
		print_log_tail(vm);
	if (err == -ETIMEDOUT)
		pr_err("the guest did not finish within the time limit");
	print_summary(vm, end);
	vm_destroy(vm);
	return err == -ETIMEDOUT ? EXIT_TIMEOUT : exit_code(end);
}
