/* The kvm backend for a worker: a VM whose agent talks on a virtio console. */
#include "worker/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kvm/host.h"
#include "kvm/virtio_console.h"
#include "kvm/vm.h"

/* Where the console's registers sit and which interrupt it raises. */
#define CONSOLE_BASE 0xd0000000ull
#define CONSOLE_GSI  5

struct kvm_guest {
	struct vm *vm;
	struct virtio_console con;
	int sv[2];  /* [0] the worker's end, [1] the device's */
	int end_fd; /* eventfd: the VM ended or the device failed */
	pthread_t waiter;
	bool waiting;
	bool con_ready; /* watched by the loop until ioloop_exit */
};

static void signal_end(int fd)
{
	uint64_t one = 1;

	/* A full counter already says the guest is gone. */
	if (write(fd, &one, sizeof(one)) < 0)
		return;
}

static void console_failed(void *opaque, const char *why)
{
	struct kvm_guest *g = opaque;

	signal_end(g->end_fd);
}

static void *wait_vm(void *arg)
{
	struct kvm_guest *g = arg;

	vm_wait(g->vm, 0, NULL);
	signal_end(g->end_fd);
	return NULL;
}

/* A PVM host runs only PVM guest kernels: ours would never boot. */
static int probe(struct backend *b)
{
	struct kvm_host h;
	int err = kvm_probe(&h);

	snprintf(b->detail, sizeof(b->detail), "%s", h.desc);
	b->permanent = true;
	if (err) {
		b->why = "kvm_probe";
		return err;
	}
	if (h.kind == KVM_HOST_PVM || h.kind == KVM_HOST_NONE) {
		b->why = "kvm_probe: no hardware KVM (use --backend ns)";
		return -ENOTSUP;
	}
	b->permanent = false;
	return 0;
}

static int make_fds(struct kvm_guest *g)
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g->sv) < 0)
		return -errno;

	g->end_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (g->end_fd < 0 || fcntl(g->sv[0], F_SETFL, O_NONBLOCK) < 0) {
		int err = -errno;

		if (g->end_fd >= 0)
			close(g->end_fd);
		close(g->sv[0]);
		close(g->sv[1]);
		return err;
	}
	return 0;
}

static void close_fds(struct kvm_guest *g)
{
	close(g->end_fd);
	close(g->sv[0]);
	close(g->sv[1]);
}

static int create_vm(struct kvm_guest *g, const struct backend_opts *o)
{
	struct vm_config cfg;

	vm_config_default(&cfg);
	if (o->mem)
		cfg.mem_size = o->mem;
	if (o->vcpus)
		cfg.nr_vcpus = o->vcpus;
	cfg.uart_echo_fd = o->log_fd;
	return vm_create(&cfg, &g->vm);
}

static int attach_console(struct backend *b, struct kvm_guest *g,
			  struct ioloop *loop)
{
	struct virtio_console_params p = {
	    .base = CONSOLE_BASE,
	    .gsi = CONSOLE_GSI,
	    .mem = &g->vm->mem,
	    .loop = loop,
	    .host_fd = g->sv[1],
	    .failed = console_failed,
	    .opaque = g,
	};
	struct mmio_region r;
	char arg[128];
	int err;

	b->why = "virtio_console_init";
	err = virtio_console_init(&g->con, &p);
	if (err)
		return err;
	g->con_ready = true;

	virtio_console_region(&g->con, &r);
	b->why = "vm_add_mmio";
	err = vm_add_mmio(g->vm, &r);
	if (!err) {
		b->why = "virtio_console_attach_kvm";
		err = virtio_console_attach_kvm(&g->con, g->vm->fd);
	}
	if (!err && virtio_console_cmdline(&g->con, arg, sizeof(arg)) > 0) {
		b->why = "vm_cmdline_append";
		err = vm_cmdline_append(g->vm, arg);
	}
	return err;
}

/* Load and start; a kernel or image that cannot be loaded never will. */
static int boot(struct backend *b, struct kvm_guest *g,
		const struct backend_opts *o)
{
	int err;

	b->why = "vm_load_kernel";
	err = vm_load_kernel(g->vm, o->kernel, o->image, NULL);
	if (err) {
		snprintf(b->detail, sizeof(b->detail), "%s", vm_error(g->vm));
		b->permanent = err == -ENOENT || err == -ENOEXEC ||
			       err == -ERANGE || err == -ENOSPC;
		return err;
	}

	b->why = "vm_start";
	err = vm_start(g->vm);
	if (err)
		return err;

	b->why = "pthread_create";
	err = -pthread_create(&g->waiter, NULL, wait_vm, g);
	g->waiting = !err;
	return err;
}

static int start_guest(struct backend *b, struct kvm_guest *g,
		       const struct backend_opts *o, struct ioloop *loop)
{
	int err;

	b->why = "vm_create";
	err = create_vm(g, o);
	if (err)
		return err;

	err = attach_console(b, g, loop);
	if (!err)
		err = boot(b, g, o);
	if (err) {
		vm_destroy(g->vm);
		g->vm = NULL;
	}
	return err;
}

int backend_kvm_start(struct backend *b, const struct backend_opts *o,
		      struct ioloop *loop)
{
	struct kvm_guest *g;
	int err;

	if (!o->kernel) {
		b->why = "--kernel is required for the kvm backend";
		b->permanent = true;
		return -EINVAL;
	}
	err = probe(b);
	if (err)
		return err;

	b->why = "calloc";
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	b->why = "socketpair";
	err = make_fds(g);
	if (err)
		goto err_free;

	err = start_guest(b, g, o, loop);
	if (err && !g->con_ready)
		goto err_close_fds;
	/* A device the loop watches is released by backend_free, once the
	 * loop is gone; so is a guest that failed after it was set up. */
	b->kvm = g;
	if (err)
		return err;
	b->chan_fd = g->sv[0];
	b->death_fd = g->end_fd;
	return 0;

err_close_fds:
	close_fds(g);
err_free:
	free(g);
	return err;
}

void backend_kvm_stop(struct backend *b)
{
	struct kvm_guest *g = b->kvm;

	if (!g || !g->vm)
		return;
	vm_stop(g->vm);
	if (g->waiting)
		pthread_join(g->waiter, NULL);
	g->waiting = false;
	vm_destroy(g->vm);
	g->vm = NULL;
}

void backend_kvm_free(struct backend *b)
{
	struct kvm_guest *g = b->kvm;

	if (!g)
		return;
	backend_kvm_stop(b);
	if (g->con_ready)
		virtio_console_exit(&g->con);
	close_fds(g);
	free(g);
	b->kvm = NULL;
	b->chan_fd = -1;
	b->death_fd = -1;
}

struct vm *backend_kvm_vm(const struct backend *b)
{
	return b->kind == BACKEND_KVM && b->kvm ? b->kvm->vm : NULL;
}

struct virtio_console *backend_kvm_console(const struct backend *b)
{
	if (b->kind != BACKEND_KVM || !b->kvm || !b->kvm->con_ready)
		return NULL;
	return &b->kvm->con;
}
