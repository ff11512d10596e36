/* An agent guest booted through the worker's kvm backend, with its io
 * thread and a watchdog: shared by the end-to-end suite and the kvm
 * benchmark. */
#ifndef VMPOOL_TESTS_KVM_AGENT_GUEST_H
#define VMPOOL_TESTS_KVM_AGENT_GUEST_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/ioloop.h"
#include "kvm/vm.h"
#include "proto/client.h"
#include "worker/backend.h"

struct kvm_agent_guest {
	struct ioloop loop;
	struct backend be;
	struct proto_client client;
	bool loop_ready, be_started, client_ready;

	pthread_t io_thread, watch_thread;
	bool io_running, watching;
	int quit_fd; /* eventfd: ends the watch thread */
	/* CLOCK_MONOTONIC time after which the watch thread stops the VM
	 * (0: never); atomic, as is `fired`. */
	uint64_t deadline_ns;
	bool fired;

	uint64_t start_ns, hello_ns; /* backend_start began; HELLO came */
	char state[512];
	const char *why; /* the step that failed */
};

struct kvm_agent_paths {
	char vmlinux[PATH_MAX];
	char image[PATH_MAX];
	char spin[PATH_MAX];
};

/* The build's guest kernel, agent image and spin helper, found beside
 * the running program (<builddir>/tests or <builddir>/bin); 0, or
 * -ENOENT when one is missing (its path says which). */
int kvm_agent_find(struct kvm_agent_paths *p, char *missing, size_t len);

/* Whether this host runs our guest: hardware KVM (kvm_intel, kvm_amd).
 * desc says what was found. */
bool kvm_agent_host_ok(char *desc, size_t len);

/*
 * Boot through backend_start, serve the console on a thread and wait
 * for the agent's HELLO, at most boot_ns. When the guest dies, or the
 * watchdog stops it, the channel is shut so a blocked client call
 * returns -EPIPE instead of waiting forever. 0, or -errno with g->why
 * naming the step; kvm_agent_guest_free in both cases.
 */
int kvm_agent_guest_boot(struct kvm_agent_guest *g,
			 const struct kvm_agent_paths *p, uint64_t boot_ns,
			 int log_fd);

/* Stop the VM if no disarm comes within ns; a hang becomes an end. */
void kvm_agent_guest_arm(struct kvm_agent_guest *g, uint64_t ns);
void kvm_agent_guest_disarm(struct kvm_agent_guest *g);
bool kvm_agent_guest_fired(struct kvm_agent_guest *g);

/* The VM, for vm_wait, vm_error, vm_exit_counts. */
struct vm *kvm_agent_guest_vm(struct kvm_agent_guest *g);

/* Wait up to timeout_ns for the guest to be gone (death_fd); *end is
 * VM_END_NONE when only the console device failed. 0 or -ETIMEDOUT. */
int kvm_agent_guest_wait_end(struct kvm_agent_guest *g, uint64_t timeout_ns,
			     enum vm_end *end);

/* One line on whether the guest runs, and if not why it ended (the
 * VM's end, the console device's error), kept in g->state. */
const char *kvm_agent_guest_state(struct kvm_agent_guest *g);

/* Stop everything and release it; g may be half booted. */
void kvm_agent_guest_free(struct kvm_agent_guest *g);

#endif
