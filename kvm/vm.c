/* A KVM virtual machine: guest RAM, in-kernel irqchip and PIT, vCPU
 * threads, the boot UART, an MMIO registry, and why it stopped. */
#include "kvm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "kvm/vcpu.h"

/* Three pages KVM needs for real-mode emulation on Intel, placed just
 * below the BIOS area at the top of 4 GiB, far above guest RAM. */
#define TSS_ADDR	  0xfffbd000ull
#define IDENTITY_MAP_ADDR 0xfffbc000ull

static const char *const exit_names[] = {
    [KVM_EXIT_UNKNOWN] = "UNKNOWN",
    [KVM_EXIT_EXCEPTION] = "EXCEPTION",
    [KVM_EXIT_IO] = "IO",
    [KVM_EXIT_HYPERCALL] = "HYPERCALL",
    [KVM_EXIT_DEBUG] = "DEBUG",
    [KVM_EXIT_HLT] = "HLT",
    [KVM_EXIT_MMIO] = "MMIO",
    [KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN",
    [KVM_EXIT_SHUTDOWN] = "SHUTDOWN",
    [KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
    [KVM_EXIT_INTR] = "INTR",
    [KVM_EXIT_SET_TPR] = "SET_TPR",
    [KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS",
    [KVM_EXIT_NMI] = "NMI",
    [KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
    [KVM_EXIT_OSI] = "OSI",
    [KVM_EXIT_WATCHDOG] = "WATCHDOG",
    [KVM_EXIT_EPR] = "EPR",
    [KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT",
    [KVM_EXIT_IOAPIC_EOI] = "IOAPIC_EOI",
    [KVM_EXIT_HYPERV] = "HYPERV",
    [KVM_EXIT_X86_RDMSR] = "X86_RDMSR",
    [KVM_EXIT_X86_WRMSR] = "X86_WRMSR",
    [KVM_EXIT_DIRTY_RING_FULL] = "DIRTY_RING_FULL",
    [KVM_EXIT_X86_BUS_LOCK] = "X86_BUS_LOCK",
};

static const char *const end_names[] = {
    [VM_END_NONE] = "running",
    [VM_END_STOPPED] = "stopped by the host",
    [VM_END_RESET] = "guest reset",
    [VM_END_SHUTDOWN] = "guest shut down",
    [VM_END_PANIC] = "guest kernel panic",
    [VM_END_HALTED] = "guest halted",
    [VM_END_INTERNAL_ERROR] = "KVM internal error",
    [VM_END_ENTRY_FAILED] = "vCPU entry failed",
    [VM_END_DEVICE_ERROR] = "guest broke a device's rules",
    [VM_END_UNEXPECTED] = "unexpected exit",
    [VM_END_HOST_ERROR] = "host error running the vCPU",
};

const char *vm_exit_reason_name(unsigned reason)
{
	if (reason < ARRAY_SIZE(exit_names) && exit_names[reason])
		return exit_names[reason];
	return "?";
}

const char *vm_end_name(enum vm_end end)
{
	if ((unsigned)end < ARRAY_SIZE(end_names))
		return end_names[end];
	return "?";
}

const char *vm_error(struct vm *vm)
{
	return vm->why;
}

static void set_why(struct vm *vm, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_why(struct vm *vm, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vm->why, sizeof(vm->why), fmt, ap);
	va_end(ap);
}

void vm_config_default(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->mem_size = VM_DEFAULT_MEM;
	c->nr_vcpus = 1;
	c->uart_echo_fd = -1;
	c->dev = KVM_DEV_PATH;
	c->sysmod = KVM_SYSFS_PATH;
}

static int check_config(const struct vm_config *c)
{
	if (c->mem_size < BOOT_MIN_MEM || c->mem_size > BOOT_MAX_MEM ||
	    c->mem_size % 4096)
		return -EINVAL;
	if (c->nr_vcpus < 1 || c->nr_vcpus > VM_MAX_VCPUS)
		return -EINVAL;
	if (!c->dev || !c->sysmod)
		return -EINVAL;
	return 0;
}

static void uart_irq(void *opaque, int level)
{
	vm_irq_line(opaque, UART_COM1_IRQ, level);
}

static void init_fields(struct vm *vm, const struct vm_config *cfg)
{
	pthread_condattr_t attr;

	vm->times.created_ns = now_ns();
	vm->cfg = *cfg;
	vm->fd = -1;
	vm->kvm_fd = -1;
	for (unsigned i = 0; i < VM_MAX_VCPUS; i++)
		vm->vcpus[i].fd = -1;

	pthread_mutex_init(&vm->lock, NULL);
	pthread_mutex_init(&vm->pio_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&vm->ended, &attr);
	pthread_condattr_destroy(&attr);
	uart_init(&vm->uart, uart_irq, vm, cfg->uart_echo_fd);
	uart_set_mark(&vm->uart, cfg->ready_mark);
}

static int vm_ioctl(struct vm *vm, unsigned long req, unsigned long arg)
{
	if (ioctl(vm->fd, req, arg) < 0)
		return -errno;
	return 0;
}

static int open_vm(struct vm *vm)
{
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	uint64_t idmap = IDENTITY_MAP_ADDR;
	int err;

	vm->kvm_fd = open(vm->cfg.dev, O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return -errno;

	vm->fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0)
		return -errno;

	err = vm_ioctl(vm, KVM_SET_TSS_ADDR, TSS_ADDR);
	if (err)
		return err;

	err = vm_ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, (unsigned long)&idmap);
	if (err)
		return err;

	err = vm_ioctl(vm, KVM_CREATE_IRQCHIP, 0);
	if (err)
		return err;

	return vm_ioctl(vm, KVM_CREATE_PIT2, (unsigned long)&pit);
}

#define HUGE_PAGE (2ul << 20)

/* size bytes of anonymous memory starting on a huge page boundary, so
 * that guest and host huge pages line up; NULL with errno on failure. */
static void *map_aligned(size_t size)
{
	size_t room = size + HUGE_PAGE;
	uint8_t *p = mmap(NULL, room, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *at;

	if (p == MAP_FAILED)
		return NULL;
	at = (uint8_t *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
	if (at > p)
		munmap(p, at - p);
	munmap(at + size, p + room - (at + size));
	return at;
}

/* Pages are not reserved up front: a guest costs what it touches. */
static int map_memory(struct vm *vm)
{
	struct kvm_userspace_memory_region region = {
	    .slot = 0,
	    .guest_phys_addr = 0,
	    .memory_size = vm->cfg.mem_size,
	};
	void *p = map_aligned(vm->cfg.mem_size);

	if (!p)
		return -errno;
	vm->mem.host = p;
	vm->mem.size = vm->cfg.mem_size;
	/* Huge pages from the first touch, as QEMU asks for its RAM: fewer
	 * TLB misses, and khugepaged does not rebuild the guest's mappings
	 * under it later. Only advice: a host without THP ignores it. */
	madvise(p, vm->cfg.mem_size, MADV_HUGEPAGE);

	region.userspace_addr = (uintptr_t)p;
	return vm_ioctl(vm, KVM_SET_USER_MEMORY_REGION, (unsigned long)&region);
}

static int create_vcpus(struct vm *vm)
{
	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++) {
		int err = vcpu_create(vm, &vm->vcpus[i], i);

		if (err)
			return err;
		vm->nr_vcpus++;
	}
	return 0;
}

int vm_create(const struct vm_config *cfg, struct vm **out)
{
	struct vm *vm;
	int err;

	err = check_config(cfg);
	if (err)
		return err;

	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	init_fields(vm, cfg);

	err = kvm_probe_at(&vm->host, cfg->dev, cfg->sysmod);
	if (err)
		goto err_destroy;

	err = open_vm(vm);
	if (err)
		goto err_destroy;

	err = map_memory(vm);
	if (err)
		goto err_destroy;

	err = create_vcpus(vm);
	if (err)
		goto err_destroy;

	*out = vm;
	return 0;

err_destroy:
	vm_destroy(vm);
	return err;
}

static bool overlaps(const struct mmio_region *a, const struct mmio_region *b)
{
	return a->base < b->base + b->len && b->base < a->base + a->len;
}

int vm_add_mmio(struct vm *vm, const struct mmio_region *r)
{
	if (vm->started)
		return -EBUSY;
	if (!r->len || !r->ops || r->base + r->len < r->base)
		return -EINVAL;
	if (guest_mem_ok(&vm->mem, r->base, 1))
		return -EINVAL; /* a window over RAM would never exit */
	for (unsigned i = 0; i < vm->nr_mmio; i++)
		if (overlaps(&vm->mmio[i], r))
			return -EINVAL;
	if (vm->nr_mmio == VM_MAX_MMIO)
		return -ENOSPC;

	vm->mmio[vm->nr_mmio++] = *r;
	return 0;
}

int vm_cmdline_append(struct vm *vm, const char *text)
{
	size_t have = strlen(vm->cmdline_extra);

	if (vm->started)
		return -EBUSY;
	if (have + 1 + strlen(text) + 1 > sizeof(vm->cmdline_extra))
		return -E2BIG;

	snprintf(vm->cmdline_extra + have, sizeof(vm->cmdline_extra) - have,
		 "%s%s", have ? " " : "", text);
	return 0;
}

/* A PVM host runs only kernels built as PVM guests; any other kernel
 * dies deep in its boot after minutes of emulation, so refuse it now. */
static int refuse_on_pvm(struct vm *vm, int fd, const char *path)
{
	bool pvm;
	int err;

	if (vm->host.kind != KVM_HOST_PVM)
		return 0;

	err = boot_elf_is_pvm_guest(fd, &pvm);
	if (err) {
		set_why(vm, "%s: not a usable ELF vmlinux", path);
		return err;
	}
	if (pvm)
		return 0;

	set_why(vm,
		"this host's KVM is PVM (kvm_pvm), which runs only kernels "
		"built as PVM guests, and %s is not one; run on a host with "
		"hardware KVM (kvm_intel or kvm_amd)",
		path);
	return -ENOEXEC;
}

static void elf_why(struct vm *vm, const char *path, int err)
{
	if (err == -ENOEXEC)
		set_why(vm, "%s: not a loadable x86-64 ELF vmlinux", path);
	else if (err == -ERANGE)
		set_why(vm, "%s: a segment lies outside %llu MiB of guest RAM",
			path, (unsigned long long)(vm->mem.size >> 20));
	else
		set_why(vm, "%s: %s", path, strerror(-err));
}

/* The fd of a boot input, or -errno with the reason kept for the caller. */
static int open_input(struct vm *vm, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fd = -errno;
		set_why(vm, "open %s: %s", path, strerror(-fd));
	}
	return fd;
}

static int load_vmlinux(struct vm *vm, const char *path)
{
	int fd, err;

	fd = open_input(vm, path);
	if (fd < 0)
		return fd;

	err = refuse_on_pvm(vm, fd, path);
	if (!err) {
		err = boot_load_elf(fd, &vm->mem, &vm->kernel);
		if (err)
			elf_why(vm, path, err);
	}
	close(fd);
	return err;
}

static int load_initramfs(struct vm *vm, const char *path)
{
	int fd, err;

	fd = open_input(vm, path);
	if (fd < 0)
		return fd;

	err = boot_load_initrd(fd, &vm->mem, vm->kernel.end, &vm->initrd_gpa,
			       &vm->initrd_size);
	if (err == -ENOSPC)
		set_why(vm, "%s does not fit in guest RAM above the kernel",
			path);
	else if (err)
		set_why(vm, "read %s: %s", path, strerror(-err));
	close(fd);
	return err;
}

int vm_load_kernel(struct vm *vm, const char *vmlinux, const char *initramfs,
		   const char *cmdline)
{
	int err;

	if (vm->started || vm->loaded)
		return -EBUSY;
	if (!cmdline)
		cmdline = VM_DEFAULT_CMDLINE;
	if (strlen(cmdline) >= sizeof(vm->cmdline)) {
		set_why(vm, "kernel command line over %d bytes",
			BOOT_CMDLINE_SIZE - 1);
		return -E2BIG;
	}

	err = load_vmlinux(vm, vmlinux);
	if (err)
		return err;

	if (initramfs) {
		err = load_initramfs(vm, initramfs);
		if (err)
			return err;
	}

	strcpy(vm->cmdline, cmdline);
	vm->loaded = true;
	return 0;
}

static int write_boot(struct vm *vm)
{
	char line[2 * BOOT_CMDLINE_SIZE];
	int err;

	snprintf(line, sizeof(line), "%s%s%s", vm->cmdline,
		 vm->cmdline_extra[0] ? " " : "", vm->cmdline_extra);
	err = boot_write_setup(&vm->mem, line, vm->initrd_gpa, vm->initrd_size);
	if (err == -E2BIG)
		set_why(vm, "kernel command line over %d bytes",
			BOOT_CMDLINE_SIZE - 1);
	return err;
}

static int setup_vcpus(struct vm *vm)
{
	struct kvm_cpuid2 *cpuid;
	int err;

	err = vcpu_supported_cpuid(vm->kvm_fd, &cpuid);
	if (err)
		return err;

	for (unsigned i = 0; i < vm->nr_vcpus && !err; i++)
		err = vcpu_setup(&vm->vcpus[i], cpuid);
	free(cpuid);
	return err;
}

static void kick_handler(int sig)
{
}

static int install_kick_handler(void)
{
	struct sigaction sa = {.sa_handler = kick_handler};

	/* No SA_RESTART: the kick must make KVM_RUN return EINTR. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(vcpu_kick_signal(), &sa, NULL) < 0)
		return -errno;
	return 0;
}

/* vCPU threads take no process signals but the kick: SIGINT and the
 * like go to the program's own threads. */
static int spawn_threads(struct vm *vm)
{
	sigset_t all, old;
	int err = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_mutex_lock(&vm->lock);
	vm->running = vm->nr_vcpus;
	pthread_mutex_unlock(&vm->lock);

	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *c = &vm->vcpus[i];

		err = -pthread_create(&c->thread, NULL, vcpu_thread, c);
		if (err) {
			vm_stop(vm);
			for (unsigned j = i; j < vm->nr_vcpus; j++)
				vm_vcpu_done(vm, VM_END_HOST_ERROR,
					     "cannot start a vCPU thread");
			break;
		}
		__atomic_store_n(&c->joinable, true, __ATOMIC_RELEASE);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

int vm_start(struct vm *vm)
{
	int err;

	if (!vm->loaded)
		return -EINVAL;
	if (vm->started)
		return -EBUSY;

	err = write_boot(vm);
	if (err)
		return err;

	err = setup_vcpus(vm);
	if (err)
		return err;

	err = install_kick_handler();
	if (err)
		return err;

	vm->started = true;
	return spawn_threads(vm);
}

/* A reboot after a panic looks like any reset from here; the console
 * tells them apart and names the panic. */
static enum vm_end find_panic(struct vm *vm, enum vm_end end)
{
	static const char mark[] = "Kernel panic - not syncing";
	char *log = malloc(UART_LOG_SIZE + 1);
	size_t n;
	char *at;

	if (!log)
		return end;
	n = uart_log(&vm->uart, log, UART_LOG_SIZE);
	log[n] = '\0';
	at = memmem(log, n, mark, sizeof(mark) - 1);
	if (at) {
		at[strcspn(at, "\r\n")] = '\0';
		set_why(vm, "%s", at);
		end = VM_END_PANIC;
	}
	free(log);
	return end;
}

void vm_vcpu_done(struct vm *vm, enum vm_end end, const char *why)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->end == VM_END_NONE) {
		set_why(vm, "%s", why);
		if (end == VM_END_RESET || end == VM_END_SHUTDOWN ||
		    end == VM_END_HALTED)
			end = find_panic(vm, end);
		vm->end = end;
		vm->times.ended_ns = now_ns();
	}
	if (--vm->running == 0)
		pthread_cond_broadcast(&vm->ended);
	pthread_mutex_unlock(&vm->lock);

	vm_stop(vm);
}

void vm_stop(struct vm *vm)
{
	__atomic_store_n(&vm->stop, true, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *c = &vm->vcpus[i];

		if (!__atomic_load_n(&c->joinable, __ATOMIC_ACQUIRE))
			continue;
		/* If the kick lands before KVM_RUN, this makes KVM_RUN
		 * return at once. */
		__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_RELEASE);
		pthread_kill(c->thread, vcpu_kick_signal());
	}
}

static void join_vcpus(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *c = &vm->vcpus[i];

		if (!c->joinable)
			continue;
		pthread_join(c->thread, NULL);
		__atomic_store_n(&c->joinable, false, __ATOMIC_RELEASE);
	}
}

static int wait_ended(struct vm *vm, uint64_t timeout_ns)
{
	uint64_t deadline = now_ns() + timeout_ns;
	struct timespec ts = {
	    .tv_sec = deadline / 1000000000ull,
	    .tv_nsec = deadline % 1000000000ull,
	};
	int err = 0;

	pthread_mutex_lock(&vm->lock);
	while (vm->running && !err) {
		if (timeout_ns)
			err =
			    pthread_cond_timedwait(&vm->ended, &vm->lock, &ts);
		else
			err = pthread_cond_wait(&vm->ended, &vm->lock);
	}
	pthread_mutex_unlock(&vm->lock);
	return err ? -err : 0;
}

int vm_wait(struct vm *vm, uint64_t timeout_ns, enum vm_end *end)
{
	int err;

	if (!vm->started)
		return -EINVAL;

	err = wait_ended(vm, timeout_ns);
	if (err)
		return err;

	join_vcpus(vm);
	if (end)
		*end = vm->end;
	return 0;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;

	if (vm->started) {
		vm_stop(vm);
		vm_wait(vm, 0, NULL);
	}

	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	if (vm->mem.host)
		munmap(vm->mem.host, vm->mem.size);
	if (vm->fd >= 0)
		close(vm->fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);

	uart_exit(&vm->uart);
	pthread_cond_destroy(&vm->ended);
	pthread_mutex_destroy(&vm->pio_lock);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

size_t vm_uart_log(struct vm *vm, char *buf, size_t len)
{
	return uart_log(&vm->uart, buf, len);
}

static void add_counts(struct vm_exit_counts *sum,
		       const struct vm_exit_counts *c)
{
	const uint64_t *from = (const uint64_t *)c;
	uint64_t *to = (uint64_t *)sum;

	for (size_t i = 0; i < sizeof(*c) / sizeof(uint64_t); i++)
		to[i] += __atomic_load_n(&from[i], __ATOMIC_RELAXED);
}

void vm_exit_counts(struct vm *vm, struct vm_exit_counts *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		add_counts(out, &vm->vcpus[i].counts);
}

void vm_mark_ready(struct vm *vm)
{
	uint64_t zero = 0;

	__atomic_compare_exchange_n(&vm->times.ready_ns, &zero, now_ns(), false,
				    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

void vm_times(struct vm *vm, struct vm_times *out)
{
	pthread_mutex_lock(&vm->lock);
	*out = vm->times;
	pthread_mutex_unlock(&vm->lock);
	out->entry_ns = __atomic_load_n(&vm->times.entry_ns, __ATOMIC_RELAXED);
	out->ready_ns = __atomic_load_n(&vm->times.ready_ns, __ATOMIC_RELAXED);
	pthread_mutex_lock(&vm->uart.lock);
	out->first_uart_ns = vm->uart.first_byte_ns;
	if (!out->ready_ns)
		out->ready_ns = vm->uart.mark_ns;
	pthread_mutex_unlock(&vm->uart.lock);
}

int vm_irq_line(struct vm *vm, unsigned gsi, int level)
{
	struct kvm_irq_level irq = {.irq = gsi, .level = level};

	return vm_ioctl(vm, KVM_IRQ_LINE, (unsigned long)&irq);
}
