/* An agent guest booted through the worker's kvm backend, with its io
 * thread and a watchdog that turns a dead or hung guest into an error. */
#include "tests/kvm_agent_guest.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "kvm/host.h"
#include "kvm/virtio_console.h"

#define WATCH_STEP_MS 50

static int exe_dir(char *dir, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", dir, len - 1);
	char *slash;

	if (n <= 0)
		return -ENOENT;
	dir[n] = '\0';
	slash = strrchr(dir, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	return 0;
}

static int find_one(char *out, const char *dir, const char *rel, char *missing,
		    size_t len)
{
	snprintf(out, PATH_MAX, "%.3800s/../%s", dir, rel);
	if (access(out, R_OK) == 0)
		return 0;
	snprintf(missing, len, "%s", out);
	return -ENOENT;
}

int kvm_agent_find(struct kvm_agent_paths *p, char *missing, size_t len)
{
	char dir[PATH_MAX];
	int err = exe_dir(dir, sizeof(dir));

	if (err) {
		snprintf(missing, len, "/proc/self/exe");
		return err;
	}
	err = find_one(p->vmlinux, dir, "guest/vmlinux", missing, len);
	if (!err)
		err = find_one(p->image, dir, "guest/initramfs.cpio", missing,
			       len);
	if (!err)
		err = find_one(p->spin, dir, "bin/vmpool-chaos-spin", missing,
			       len);
	return err;
}

bool kvm_agent_host_ok(char *desc, size_t len)
{
	struct kvm_host h;
	int err = kvm_probe(&h);

	snprintf(desc, len, "%s", h.desc);
	return !err && h.kind == KVM_HOST_HARDWARE;
}

static void *serve(void *arg)
{
	struct kvm_agent_guest *g = arg;

	ioloop_run(&g->loop);
	return NULL;
}

static bool deadline_passed(struct kvm_agent_guest *g)
{
	uint64_t d = __atomic_load_n(&g->deadline_ns, __ATOMIC_ACQUIRE);

	return d && now_ns() > d;
}

/* Until told to quit: a dead guest shuts the channel (its peer end stays
 * open in the backend, so the client would never see EOF otherwise); a
 * passed deadline stops the VM, which then dies the same way. */
static void *watch(void *arg)
{
	struct kvm_agent_guest *g = arg;

	for (;;) {
		struct pollfd p[2] = {{.fd = g->be.death_fd, .events = POLLIN},
				      {.fd = g->quit_fd, .events = POLLIN}};

		if (poll(p, 2, WATCH_STEP_MS) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (p[0].revents) {
			shutdown(g->be.chan_fd, SHUT_RDWR);
			break;
		}
		if (deadline_passed(g)) {
			__atomic_store_n(&g->fired, true, __ATOMIC_RELEASE);
			__atomic_store_n(&g->deadline_ns, 0, __ATOMIC_RELEASE);
			vm_stop(backend_kvm_vm(&g->be));
		}
	}
	return NULL;
}

static int start_backend(struct kvm_agent_guest *g,
			 const struct kvm_agent_paths *p, int log_fd)
{
	struct backend_opts o = {
	    .kind = BACKEND_KVM,
	    .image = p->image,
	    .kernel = p->vmlinux,
	    .log_fd = log_fd,
	};
	int err;

	g->why = "ioloop_init";
	err = ioloop_init(&g->loop, 256);
	if (err)
		return err;
	g->loop_ready = true;

	g->start_ns = now_ns();
	err = backend_start(&g->be, &o, &g->loop);
	g->be_started = true;
	if (err)
		g->why = g->be.why;
	return err;
}

static int start_threads(struct kvm_agent_guest *g)
{
	int err;

	g->why = "eventfd";
	g->quit_fd = eventfd(0, EFD_CLOEXEC);
	if (g->quit_fd < 0)
		return -errno;

	g->why = "pthread_create (io)";
	err = -pthread_create(&g->io_thread, NULL, serve, g);
	if (err)
		return err;
	g->io_running = true;

	g->why = "pthread_create (watch)";
	err = -pthread_create(&g->watch_thread, NULL, watch, g);
	g->watching = !err;
	return err;
}

static int await_hello(struct kvm_agent_guest *g, uint64_t boot_ns)
{
	int err;

	g->why = "proto_client_init";
	err = proto_client_init(&g->client, g->be.chan_fd);
	if (err)
		return err;
	g->client_ready = true;

	g->why = "proto_client_hello";
	kvm_agent_guest_arm(g, boot_ns);
	err = proto_client_hello(&g->client, NULL);
	kvm_agent_guest_disarm(g);
	g->hello_ns = now_ns();
	return err;
}

int kvm_agent_guest_boot(struct kvm_agent_guest *g,
			 const struct kvm_agent_paths *p, uint64_t boot_ns,
			 int log_fd)
{
	int err;

	memset(g, 0, sizeof(*g));
	g->quit_fd = -1;

	err = start_backend(g, p, log_fd);
	if (err)
		return err;

	err = start_threads(g);
	if (err)
		return err;

	return await_hello(g, boot_ns);
}

void kvm_agent_guest_arm(struct kvm_agent_guest *g, uint64_t ns)
{
	__atomic_store_n(&g->deadline_ns, now_ns() + ns, __ATOMIC_RELEASE);
}

void kvm_agent_guest_disarm(struct kvm_agent_guest *g)
{
	__atomic_store_n(&g->deadline_ns, 0, __ATOMIC_RELEASE);
}

bool kvm_agent_guest_fired(struct kvm_agent_guest *g)
{
	return __atomic_load_n(&g->fired, __ATOMIC_ACQUIRE);
}

struct vm *kvm_agent_guest_vm(struct kvm_agent_guest *g)
{
	return backend_kvm_vm(&g->be);
}

/* vm_wait belongs to the backend's waiter thread (two threads must not
 * join the same vCPUs): its death_fd says when the VM's end is final. */
int kvm_agent_guest_wait_end(struct kvm_agent_guest *g, uint64_t timeout_ns,
			     enum vm_end *end)
{
	struct pollfd p = {.fd = g->be.death_fd, .events = POLLIN};
	struct vm *vm = backend_kvm_vm(&g->be);
	int n;

	*end = VM_END_NONE;
	do
		n = poll(&p, 1, timeout_ns / 1000000);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -errno : -ETIMEDOUT;

	pthread_mutex_lock(&vm->lock);
	*end = vm->end;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

const char *kvm_agent_guest_state(struct kvm_agent_guest *g)
{
	struct virtio_console *con = backend_kvm_console(&g->be);
	struct vm *vm = backend_kvm_vm(&g->be);
	const char *dev = con ? virtio_console_error(con) : NULL;
	enum vm_end end = VM_END_NONE;

	if (!vm)
		return "no VM";
	kvm_agent_guest_wait_end(g, 0, &end);
	snprintf(g->state, sizeof(g->state), "VM %s%s%s; console device: %s",
		 end == VM_END_NONE ? "running" : vm_end_name(end),
		 end == VM_END_NONE ? "" : ": ", vm_error(vm),
		 dev ? dev : "fine");
	return g->state;
}

static void stop_threads(struct kvm_agent_guest *g)
{
	uint64_t one = 1;

	if (g->watching && write(g->quit_fd, &one, sizeof(one)) > 0)
		pthread_join(g->watch_thread, NULL);
	g->watching = false;

	if (g->io_running) {
		ioloop_stop(&g->loop);
		pthread_join(g->io_thread, NULL);
	}
	g->io_running = false;
}

/* The VM goes before the loop, the device after it (see backend.h). */
void kvm_agent_guest_free(struct kvm_agent_guest *g)
{
	stop_threads(g);
	if (g->client_ready)
		proto_client_free(&g->client);
	if (g->be_started)
		backend_stop(&g->be);
	if (g->loop_ready)
		ioloop_exit(&g->loop);
	if (g->be_started)
		backend_free(&g->be);
	if (g->quit_fd >= 0)
		close(g->quit_fd);
	memset(g, 0, sizeof(*g));
	g->quit_fd = -1;
}
