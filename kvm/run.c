/* The vCPU exit loop: port I/O, MMIO, and the exits that end a VM. */
#include "kvm/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define I8042_COMMAND 0x64
#define I8042_RESET   0xfe
#define RFLAGS_IF     0x200
#define RESET_RIP     0xfff0
#define CR0_PG	      0x80000000ull
/* How often a vCPU leaves KVM_RUN to see whether it halted for good. */
#define HALT_CHECK_S 1
/* Checks in a row that must find it halted with interrupts off: one
 * look may catch a vCPU that something is about to wake. */
#define HALT_CHECKS 3

static void bump(uint64_t *v)
{
	__atomic_store_n(v, *v + 1, __ATOMIC_RELAXED);
}

int vcpu_kick_signal(void)
{
	return SIGRTMIN;
}

static bool in_uart(uint16_t port)
{
	return port >= UART_COM1_BASE && port < UART_COM1_BASE + UART_NR_PORTS;
}

/* One byte of port I/O. Unclaimed ports read as 0xff, as on a bus with
 * nothing behind it, and are counted. */
static enum vm_end pio_byte(struct vcpu *c, uint16_t port, bool write,
			    uint8_t *b)
{
	struct uart *u = &c->vm->uart;

	if (in_uart(port) && write)
		uart_write(u, port - UART_COM1_BASE, *b);
	else if (in_uart(port))
		*b = uart_read(u, port - UART_COM1_BASE);
	else if (port == I8042_COMMAND && write && *b == I8042_RESET)
		return VM_END_RESET;
	else if (write)
		bump(&c->counts.pio_unclaimed_writes);
	else {
		*b = 0xff;
		bump(&c->counts.pio_unclaimed_reads);
	}
	return VM_END_NONE;
}

static enum vm_end handle_pio(struct vcpu *c, char *why, size_t n)
{
	struct kvm_run *run = c->run;
	uint64_t len = (uint64_t)run->io.size * run->io.count;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	enum vm_end end = VM_END_NONE;

	if (run->io.data_offset > c->run_size ||
	    len > c->run_size - run->io.data_offset) {
		snprintf(why, n, "port I/O data outside the kvm_run area");
		return VM_END_HOST_ERROR;
	}

	/* Wider accesses reach consecutive byte ports; string I/O repeats
	 * on the same port. */
	pthread_mutex_lock(&c->vm->pio_lock);
	for (uint64_t i = 0; i < len && end == VM_END_NONE; i++)
		end = pio_byte(c, run->io.port + i % run->io.size, write,
			       &data[i]);
	pthread_mutex_unlock(&c->vm->pio_lock);
	if (end == VM_END_RESET)
		snprintf(why, n, "the guest reset through the i8042");
	return end;
}

static const struct mmio_region *find_region(struct vm *vm, uint64_t addr,
					     unsigned len)
{
	for (unsigned i = 0; i < vm->nr_mmio; i++) {
		const struct mmio_region *r = &vm->mmio[i];

		if (addr >= r->base && addr - r->base < r->len &&
		    len <= r->len - (addr - r->base))
			return r;
	}
	return NULL;
}

static enum vm_end mmio_unclaimed(struct vcpu *c)
{
	if (c->run->mmio.is_write) {
		bump(&c->counts.mmio_unclaimed_writes);
	} else {
		memset(c->run->mmio.data, 0, sizeof(c->run->mmio.data));
		bump(&c->counts.mmio_unclaimed_reads);
	}
	return VM_END_NONE;
}

static enum vm_end handle_mmio(struct vcpu *c, char *why, size_t n)
{
	struct kvm_run *run = c->run;
	uint64_t addr = run->mmio.phys_addr;
	unsigned len = run->mmio.len;
	const struct mmio_region *r = find_region(c->vm, addr, len);
	bool write = run->mmio.is_write;
	int err;

	if (len > sizeof(run->mmio.data) || !r ||
	    (write ? !r->ops->write : !r->ops->read))
		return mmio_unclaimed(c);

	if (write)
		err = r->ops->write(r->opaque, addr - r->base, run->mmio.data,
				    len);
	else
		err = r->ops->read(r->opaque, addr - r->base, run->mmio.data,
				   len);
	if (!err)
		return VM_END_NONE;

	snprintf(why, n, "MMIO %s of %u bytes at %#llx refused: %s",
		 write ? "write" : "read", len, (unsigned long long)addr,
		 strerror(-err));
	return VM_END_DEVICE_ERROR;
}

static enum vm_end system_event(struct vcpu *c, char *why, size_t n)
{
	switch (c->run->system_event.type) {
	case KVM_SYSTEM_EVENT_RESET:
		snprintf(why, n, "the guest asked for a reset");
		return VM_END_RESET;
	case KVM_SYSTEM_EVENT_CRASH:
		snprintf(why, n, "the guest reported a crash");
		return VM_END_PANIC;
	default:
		snprintf(why, n, "the guest powered off");
		return VM_END_SHUTDOWN;
	}
}

static unsigned long long guest_rip(struct vcpu *c)
{
	struct kvm_regs regs;

	if (ioctl(c->fd, KVM_GET_REGS, &regs) < 0)
		return 0;
	return regs.rip;
}

/* KVM on AMD puts a vCPU through INIT at a triple fault, before it
 * reports one: what is left is the reset state, not the fault's. */
static bool reset_state(const struct kvm_sregs *s, unsigned long long rip)
{
	return rip == RESET_RIP && !(s->cr0 & CR0_PG) && !s->cr3;
}

/* A triple fault: where the vCPU was and what it was paging, for the
 * report (a reboot=t guest also ends so after a panic). */
static enum vm_end triple_fault(struct vcpu *c, char *why, size_t n)
{
	unsigned long long rip = guest_rip(c);
	struct kvm_sregs sregs;

	if (ioctl(c->fd, KVM_GET_SREGS, &sregs) < 0)
		memset(&sregs, 0, sizeof(sregs));
	if (reset_state(&sregs, rip)) {
		snprintf(why, n,
			 "vCPU %d shut down (triple fault); KVM reset it "
			 "before reporting, so where it was is lost",
			 c->id);
		return VM_END_SHUTDOWN;
	}
	snprintf(why, n,
		 "vCPU %d shut down (triple fault) at RIP %#llx, CR2 %#llx, "
		 "CR3 %#llx",
		 c->id, rip, (unsigned long long)sregs.cr2,
		 (unsigned long long)sregs.cr3);
	return VM_END_SHUTDOWN;
}

static enum vm_end internal_error(struct vcpu *c, char *why, size_t n)
{
	unsigned sub = c->run->internal.suberror;

	snprintf(why, n, "KVM internal error %u%s on vCPU %d at RIP %#llx", sub,
		 sub == KVM_INTERNAL_ERROR_EMULATION ? " (emulation failed)"
						     : "",
		 c->id, guest_rip(c));
	return VM_END_INTERNAL_ERROR;
}

static enum vm_end handle_exit(struct vcpu *c, char *why, size_t n)
{
	unsigned reason = c->run->exit_reason;

	switch (reason) {
	case KVM_EXIT_IO:
		return handle_pio(c, why, n);
	case KVM_EXIT_MMIO:
		return handle_mmio(c, why, n);
	case KVM_EXIT_INTR:
		return VM_END_NONE;
	case KVM_EXIT_HLT:
		snprintf(why, n, "vCPU %d halted at RIP %#llx", c->id,
			 guest_rip(c));
		return VM_END_HALTED;
	case KVM_EXIT_SHUTDOWN:
		return triple_fault(c, why, n);
	case KVM_EXIT_SYSTEM_EVENT:
		return system_event(c, why, n);
	case KVM_EXIT_INTERNAL_ERROR:
		return internal_error(c, why, n);
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(why, n, "vCPU %d entry failed, hardware reason %#llx",
			 c->id,
			 (unsigned long long)
			     c->run->fail_entry.hardware_entry_failure_reason);
		return VM_END_ENTRY_FAILED;
	}
	snprintf(why, n, "unhandled exit %s (%u) on vCPU %d",
		 vm_exit_reason_name(reason), reason, c->id);
	return VM_END_UNEXPECTED;
}

/* HLT with interrupts off: nothing but an NMI, which nobody sends here,
 * wakes the vCPU again. Linux halts so when told to power off on a
 * machine without ACPI, as ours is. */
static bool halted_irqs_off(struct vcpu *c)
{
	struct kvm_mp_state mp;
	struct kvm_regs regs;

	if (ioctl(c->fd, KVM_GET_MP_STATE, &mp) < 0 ||
	    mp.mp_state != KVM_MP_STATE_HALTED)
		return false;
	if (ioctl(c->fd, KVM_GET_REGS, &regs) < 0)
		return false;
	return !(regs.rflags & RFLAGS_IF);
}

static enum vm_end run_failed(struct vcpu *c, int err, char *why, size_t n)
{
	/* A kick, or any other signal: the loop checks whether to stop. */
	if (err == EINTR || err == EAGAIN) {
		bump(&c->counts.by_reason[KVM_EXIT_INTR]);
		c->halted_off = halted_irqs_off(c) ? c->halted_off + 1 : 0;
		if (c->halted_off < HALT_CHECKS)
			return VM_END_NONE;
		snprintf(why, n,
			 "vCPU %d halted with interrupts off at RIP "
			 "%#llx: the guest powered off",
			 c->id, guest_rip(c));
		return VM_END_SHUTDOWN;
	}
	snprintf(why, n, "KVM_RUN on vCPU %d: %s", c->id, strerror(err));
	return VM_END_HOST_ERROR;
}

static enum vm_end run_loop(struct vcpu *c, char *why, size_t n)
{
	enum vm_end end = VM_END_NONE;

	while (end == VM_END_NONE) {
		if (__atomic_load_n(&c->vm->stop, __ATOMIC_ACQUIRE))
			return VM_END_STOPPED;

		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			end = run_failed(c, errno, why, n);
			continue;
		}

		bump(&c->counts.total);
		if (c->run->exit_reason < VM_EXIT_REASONS)
			bump(&c->counts.by_reason[c->run->exit_reason]);
		end = handle_exit(c, why, n);
	}
	return end;
}

/*
 * With the irqchip in the kernel, KVM keeps a halted vCPU asleep inside
 * KVM_RUN and never reports the HLT: a guest that halts for good would
 * leave the VM running forever. So a timer kicks this thread out now and
 * then to look (one exit per HALT_CHECK_S).
 */
static int start_halt_check(timer_t *timer)
{
	struct sigevent ev = {
	    .sigev_notify = SIGEV_THREAD_ID,
	    .sigev_signo = vcpu_kick_signal(),
	    ._sigev_un._tid = gettid(),
	};
	struct itimerspec every = {
	    .it_interval = {.tv_sec = HALT_CHECK_S},
	    .it_value = {.tv_sec = HALT_CHECK_S},
	};

	if (timer_create(CLOCK_MONOTONIC, &ev, timer) < 0)
		return -errno;

	if (timer_settime(*timer, 0, &every, NULL) < 0) {
		int err = -errno;

		timer_delete(*timer);
		return err;
	}
	return 0;
}

void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;
	char why[256] = "";
	enum vm_end end;
	sigset_t kick;
	timer_t timer;
	int err;

	sigemptyset(&kick);
	sigaddset(&kick, vcpu_kick_signal());
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	err = start_halt_check(&timer);
	if (err) {
		snprintf(why, sizeof(why), "timer_create on vCPU %d: %s", c->id,
			 strerror(-err));
		vm_vcpu_done(c->vm, VM_END_HOST_ERROR, why);
		return NULL;
	}

	if (c->id == 0)
		__atomic_store_n(&c->vm->times.entry_ns, now_ns(),
				 __ATOMIC_RELAXED);
	end = run_loop(c, why, sizeof(why));
	timer_delete(timer);
	vm_vcpu_done(c->vm, end, why);
	return NULL;
}
