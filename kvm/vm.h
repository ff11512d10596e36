/* A KVM virtual machine: guest RAM, in-kernel irqchip and PIT, vCPU
 * threads, the boot UART, an MMIO registry, and why it stopped. */
#ifndef VMPOOL_KVM_VM_H
#define VMPOOL_KVM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvm/boot.h"
#include "kvm/guest_mem.h"
#include "kvm/host.h"
#include "kvm/mmio.h"
#include "kvm/uart.h"

#define VM_DEFAULT_MEM	(128ull << 20)
#define VM_MAX_VCPUS	8
#define VM_MAX_MMIO	16
#define VM_EXIT_REASONS 64
/* Guest console on the UART, silent unless something goes wrong; a
 * panic resets at once (reboot by triple fault needs no device). */
#define VM_DEFAULT_CMDLINE                                                     \
	"console=ttyS0 8250.nr_uarts=1 reboot=t panic=-1 quiet"

/* Why a VM is no longer running. */
enum vm_end {
	VM_END_NONE,	       /* not started, or still running */
	VM_END_STOPPED,	       /* vm_stop() was called */
	VM_END_RESET,	       /* the guest asked for a reset */
	VM_END_SHUTDOWN,       /* triple fault or power off */
	VM_END_PANIC,	       /* the guest kernel panicked */
	VM_END_HALTED,	       /* a vCPU halted with interrupts off */
	VM_END_INTERNAL_ERROR, /* KVM could not run the guest's code */
	VM_END_ENTRY_FAILED,   /* the hardware refused the vCPU state */
	VM_END_DEVICE_ERROR,   /* the guest broke a device's rules */
	VM_END_UNEXPECTED,     /* an exit this VMM does not handle */
	VM_END_HOST_ERROR,     /* KVM_RUN itself failed */
};

struct vm_config {
	uint64_t mem_size; /* bytes; BOOT_MIN_MEM..BOOT_MAX_MEM */
	/* No MP table is written: the guest starts one CPU and any more
	 * stay parked in their local APICs. */
	unsigned nr_vcpus;  /* 1..VM_MAX_VCPUS */
	int uart_echo_fd;   /* guest console copied here live; -1: none */
	const char *dev;    /* KVM_DEV_PATH, or another for tests */
	const char *sysmod; /* KVM_SYSFS_PATH, or another for tests */
	/* Console text that counts as "ready" for guests without an agent
	 * (tests, benchmarks); NULL: only vm_mark_ready() counts. */
	const char *ready_mark;
};

struct vm_exit_counts {
	uint64_t total;
	uint64_t by_reason[VM_EXIT_REASONS]; /* index: KVM_EXIT_* */
	uint64_t pio_unclaimed_reads, pio_unclaimed_writes;
	uint64_t mmio_unclaimed_reads, mmio_unclaimed_writes;
};

/* CLOCK_MONOTONIC stamps (now_ns); 0 when it has not happened. */
struct vm_times {
	uint64_t created_ns; /* vm_create() began */
	uint64_t entry_ns;   /* the boot vCPU is about to enter the guest */
	uint64_t first_uart_ns;
	uint64_t ready_ns; /* vm_mark_ready(), or the console's mark */
	uint64_t ended_ns;
};

struct vcpu {
	struct vm *vm;
	int id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool joinable;
	/* Written by this vCPU's thread only, read with relaxed atomics. */
	struct vm_exit_counts counts;
	/* Halt checks in a row that found it halted with interrupts off. */
	unsigned halted_off;
};

struct vm {
	int fd; /* the KVM VM: for KVM_IRQFD, KVM_IOEVENTFD, KVM_IRQ_LINE */
	int kvm_fd;
	struct guest_mem mem;
	struct kvm_host host;
	struct vm_config cfg;
	struct uart uart;
	/* Serializes port I/O devices between vCPU threads. */
	pthread_mutex_t pio_lock;

	struct mmio_region mmio[VM_MAX_MMIO];
	unsigned nr_mmio;

	char cmdline[BOOT_CMDLINE_SIZE];
	char cmdline_extra[BOOT_CMDLINE_SIZE];
	struct boot_kernel kernel;
	uint64_t initrd_gpa, initrd_size;
	bool loaded, started;

	unsigned nr_vcpus;
	struct vcpu vcpus[VM_MAX_VCPUS];

	/* Guards the end state below and the running count. */
	pthread_mutex_t lock;
	pthread_cond_t ended;
	unsigned running;
	enum vm_end end;
	char why[256];
	bool stop;

	struct vm_times times;
};

/* Defaults: 128 MiB, one vCPU, no console echo, the real /dev/kvm. */
void vm_config_default(struct vm_config *c);

/* Probe KVM (see kvm_probe) and make a VM with RAM, irqchip, PIT and
 * vCPUs. -EINVAL for a bad config, else -errno from the failed call;
 * kvm_probe() tells the operator why KVM itself is unusable. */
int vm_create(const struct vm_config *cfg, struct vm **out);

/* Register an MMIO device window before vm_start; -EINVAL for an empty
 * or overlapping window, -ENOSPC when VM_MAX_MMIO are registered. */
int vm_add_mmio(struct vm *vm, const struct mmio_region *r);

/* Add text (e.g. "virtio_mmio.device=4K@0xd0000000:5") to the kernel
 * command line, before vm_start; -E2BIG when it would not fit. */
int vm_cmdline_append(struct vm *vm, const char *text);

/* Load an ELF vmlinux and (if not NULL) an initramfs; cmdline NULL means
 * VM_DEFAULT_CMDLINE. -ENOEXEC for a malformed kernel or one this host
 * cannot run (vm_error says which), -ERANGE for one that does not fit
 * in RAM, -ENOSPC for an initramfs that does not. */
int vm_load_kernel(struct vm *vm, const char *vmlinux, const char *initramfs,
		   const char *cmdline);

/* Write the boot tables and start one thread per vCPU. */
int vm_start(struct vm *vm);

/* Wait until every vCPU has stopped, at most timeout_ns (0: forever).
 * 0 with *end set, or -ETIMEDOUT with the VM still running. */
int vm_wait(struct vm *vm, uint64_t timeout_ns, enum vm_end *end);

/* Ask every vCPU to stop; returns at once (vm_wait to see them gone).
 * Safe from any thread, and more than once. */
void vm_stop(struct vm *vm);

/* Stop, wait and free; vm may be NULL. */
void vm_destroy(struct vm *vm);

/* The newest guest console output, oldest byte first; returns its
 * length (at most len, at most UART_LOG_SIZE). */
size_t vm_uart_log(struct vm *vm, char *buf, size_t len);

/* Exits so far, summed over vCPUs; may be called while running. */
void vm_exit_counts(struct vm *vm, struct vm_exit_counts *out);

/* Record that the guest's agent is ready (a device calls this on the
 * agent's first message); the first call counts. */
void vm_mark_ready(struct vm *vm);
void vm_times(struct vm *vm, struct vm_times *out);

/* Set the level of an interrupt line (GSI) on the in-kernel irqchip. */
int vm_irq_line(struct vm *vm, unsigned gsi, int level);

const char *vm_end_name(enum vm_end end);
/* One line on why the VM ended or why loading failed ("" if nothing). */
const char *vm_error(struct vm *vm);
const char *vm_exit_reason_name(unsigned reason);

#endif
