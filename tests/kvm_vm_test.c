/* Boots of the guest kernel on real KVM: to init, into a panic, into a
 * hang that the host must stop. Runs where KVM is hardware KVM. */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "kvm/virtio_console.h"
#include "kvm/vm.h"
#include "tests/kvm_elf.h"

/* Far beyond a boot in the test host (3 s): only a broken VMM waits. */
#define BOOT_LIMIT_NS (120 * 1000000000ull)
#define STEP_NS	      (100 * 1000000ull)

static char initramfs[PATH_MAX + 32];

static void need_hardware_kvm(void)
{
	struct kvm_host h;

	if (kvm_probe(&h) || h.kind != KVM_HOST_HARDWARE)
		cr_skip_test("needs hardware KVM (kvm_intel or kvm_amd): %s",
			     h.desc);
}

static const char *test_initramfs(void)
{
	const char *vmlinux = kvm_elf_guest_vmlinux();

	if (!vmlinux)
		return NULL;
	/* <builddir>/guest/vmlinux -> <builddir>/tests/kvm_test.cpio */
	snprintf(initramfs, sizeof(initramfs), "%s", vmlinux);
	strcpy(strrchr(initramfs, '/') - strlen("guest"),
	       "tests/kvm_test.cpio");
	return access(initramfs, R_OK) == 0 ? initramfs : NULL;
}

/* A VM with the guest kernel and test initramfs loaded, not started. */
static struct vm *prepare(const char *mode)
{
	const char *vmlinux = kvm_elf_guest_vmlinux();
	const char *cpio = test_initramfs();
	struct vm_config cfg;
	char arg[64];
	struct vm *vm;

	need_hardware_kvm();
	if (!vmlinux || !cpio)
		cr_skip_test("guest/vmlinux or tests/kvm_test.cpio not built");

	vm_config_default(&cfg);
	cr_assert_eq(vm_create(&cfg, &vm), 0);
	snprintf(arg, sizeof(arg), "vmtest=%s", mode);
	cr_assert_eq(vm_cmdline_append(vm, arg), 0);
	cr_assert_eq(vm_load_kernel(vm, vmlinux, cpio, NULL), 0, "%s",
		     vm_error(vm));
	return vm;
}

static struct vm *boot(const char *mode)
{
	struct vm *vm = prepare(mode);

	cr_assert_eq(vm_start(vm), 0);
	return vm;
}

static char *console(struct vm *vm)
{
	static char log[UART_LOG_SIZE + 1];
	size_t n = vm_uart_log(vm, log, UART_LOG_SIZE);

	log[n] = '\0';
	return log;
}

Test(vm, boots_to_init_and_ends_on_its_reboot)
{
	struct vm *vm = boot("ready");
	struct vm_exit_counts n;
	struct vm_times t;
	enum vm_end end;

	cr_assert_eq(vm_wait(vm, BOOT_LIMIT_NS, &end), 0);
	cr_assert(strstr(console(vm), "vmtest: READY"), "console:\n%s",
		  console(vm));
	cr_assert_eq(end, VM_END_SHUTDOWN, "%s: %s", vm_end_name(end),
		     vm_error(vm));

	vm_exit_counts(vm, &n);
	vm_times(vm, &t);
	cr_assert_gt(n.total, 0);
	cr_assert_gt(t.entry_ns, t.created_ns);
	cr_assert_geq(t.ended_ns, t.first_uart_ns);
	cr_log_info("setup %.1f ms, entry to end %.1f ms, %llu exits",
		    (t.entry_ns - t.created_ns) / 1e6,
		    (t.ended_ns - t.entry_ns) / 1e6,
		    (unsigned long long)n.total);
	vm_destroy(vm);
}

Test(vm, guest_panic_ends_as_a_named_error)
{
	struct vm *vm = boot("exit");
	enum vm_end end;

	cr_assert_eq(vm_wait(vm, BOOT_LIMIT_NS, &end), 0);
	cr_assert_eq(end, VM_END_PANIC, "%s: %s\nconsole:\n%s",
		     vm_end_name(end), vm_error(vm), console(vm));
	cr_assert(strstr(vm_error(vm), "Attempted to kill init"), "%s",
		  vm_error(vm));
	vm_destroy(vm);
}

/* Wait until the console shows `what` or the VM ends. */
static bool wait_for_console(struct vm *vm, const char *what)
{
	uint64_t start = now_ns();

	while (now_ns() - start < BOOT_LIMIT_NS) {
		if (strstr(console(vm), what))
			return true;
		if (vm_wait(vm, STEP_NS, NULL) == 0)
			return false;
	}
	return false;
}

Test(vm, hung_guest_is_stopped_by_the_host)
{
	struct vm *vm = boot("spin");
	enum vm_end end;

	cr_assert(wait_for_console(vm, "vmtest: spinning"), "console:\n%s",
		  console(vm));
	cr_assert_eq(vm_wait(vm, STEP_NS, &end), -ETIMEDOUT);

	vm_stop(vm);
	cr_assert_eq(vm_wait(vm, BOOT_LIMIT_NS, &end), 0);
	cr_assert_eq(end, VM_END_STOPPED, "%s", vm_end_name(end));
	vm_destroy(vm);

	/* The process is still fit to run the next VM. */
	vm = boot("ready");
	cr_assert_eq(vm_wait(vm, BOOT_LIMIT_NS, &end), 0);
	cr_assert_eq(end, VM_END_SHUTDOWN);
	vm_destroy(vm);
}

struct channel {
	struct ioloop loop;
	struct virtio_console con;
	pthread_t thread;
	int sv[2];
};

static void *serve(void *arg)
{
	struct channel *ch = arg;

	ioloop_run(&ch->loop);
	return NULL;
}

/* The agent channel as a worker sets it up: a virtio console at
 * 0xd0000000 on GSI 5, served by its own io thread. */
static void attach_channel(struct vm *vm, struct channel *ch)
{
	struct virtio_console_params p = {
	    .base = 0xd0000000,
	    .gsi = 5,
	    .mem = &vm->mem,
	    .loop = &ch->loop,
	};
	struct mmio_region r;
	char arg[128];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, ch->sv), 0);
	p.host_fd = ch->sv[0];
	cr_assert_eq(ioloop_init(&ch->loop, 64), 0);
	cr_assert_eq(virtio_console_init(&ch->con, &p), 0);
	virtio_console_region(&ch->con, &r);
	cr_assert_eq(vm_add_mmio(vm, &r), 0);
	cr_assert_eq(virtio_console_attach_kvm(&ch->con, vm->fd), 0);
	cr_assert_gt(virtio_console_cmdline(&ch->con, arg, sizeof(arg)), 0);
	cr_assert_eq(vm_cmdline_append(vm, arg), 0);
	cr_assert_eq(pthread_create(&ch->thread, NULL, serve, ch), 0);
}

static void detach_channel(struct channel *ch)
{
	ioloop_stop(&ch->loop);
	pthread_join(ch->thread, NULL);
	virtio_console_exit(&ch->con);
	ioloop_exit(&ch->loop);
	close(ch->sv[0]);
	close(ch->sv[1]);
}

/* Read from fd until `what` arrived or the VM ended. */
static bool read_until(int fd, struct vm *vm, const char *what)
{
	char buf[512];
	size_t have = 0;
	uint64_t start = now_ns();

	while (now_ns() - start < BOOT_LIMIT_NS && have < sizeof(buf) - 1) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, 100) == 0) {
			if (vm_wait(vm, 1, NULL) == 0)
				return false;
			continue;
		}
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			return false;
		have += n;
		buf[have] = '\0';
		if (strstr(buf, what))
			return true;
	}
	return false;
}

Test(vm, agent_channel_on_virtio_console_carries_both_ways)
{
	struct channel *ch = calloc(1, sizeof(*ch));
	struct vm *vm = prepare("hvc");
	struct vm_times t;
	enum vm_end end;

	cr_assert_not_null(ch);
	attach_channel(vm, ch);
	cr_assert_eq(vm_start(vm), 0);

	cr_assert(read_until(ch->sv[1], vm, "HELLO"), "console:\n%s",
		  console(vm));
	cr_assert_eq(write(ch->sv[1], "ping\n", 5), 5);
	cr_assert(read_until(ch->sv[1], vm, "READY ping"), "console:\n%s",
		  console(vm));
	vm_mark_ready(vm);
	cr_assert_eq(vm_wait(vm, BOOT_LIMIT_NS, &end), 0);
	cr_assert_eq(end, VM_END_SHUTDOWN, "%s: %s", vm_end_name(end),
		     vm_error(vm));

	vm_times(vm, &t);
	cr_log_info("entry to channel READY %.1f ms",
		    (t.ready_ns - t.entry_ns) / 1e6);
	detach_channel(ch);
	vm_destroy(vm);
	free(ch);
}
