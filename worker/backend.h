/* What runs the guest for a worker: an ns sandbox or a KVM VM. */
#ifndef VMPOOL_BACKEND_H
#define VMPOOL_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "common/ioloop.h"
#include "worker/ns.h"

enum backend_kind { BACKEND_NS, BACKEND_KVM };

struct backend_opts {
	enum backend_kind kind;
	const char *image;  /* cpio: the guest's initramfs or sandbox root */
	const char *kernel; /* kvm: an ELF vmlinux */
	uint64_t mem;	    /* bytes; 0: the backend's default */
	unsigned vcpus;	    /* kvm; 0: one */
	int log_fd;	    /* guest console or agent stderr; -1: none */
};

struct kvm_guest; /* backend_kvm.c */
struct vm;
struct virtio_console;

struct backend {
	enum backend_kind kind;
	/* The host end of the agent's channel: a non-blocking stream. */
	int chan_fd;
	/* Readable once the guest is gone (pidfd, or an eventfd). */
	int death_fd;
	/* After a failed start: the step that failed, and whether trying
	 * again cannot help (bad image, no usable KVM). */
	const char *why;
	bool permanent;
	char detail[192];

	struct ns_sandbox sb;
	struct kvm_guest *kvm;
};

/* "ns" or "kvm" into *kind; -EINVAL for anything else. */
int backend_parse(const char *name, enum backend_kind *kind);
const char *backend_name(enum backend_kind kind);

/*
 * Start the guest. The kvm backend serves its console on `loop`, so the
 * caller runs the loop to see the agent's first bytes; the worker waits
 * for the agent's HELLO itself. Returns 0, or -errno with why (and
 * perhaps detail) set and nothing left running.
 */
int backend_start(struct backend *b, const struct backend_opts *o,
		  struct ioloop *loop);

/* Whether the guest still runs (its death_fd is not readable). */
bool backend_alive(const struct backend *b);

/* Stop the guest and close the channel. The loop may still hold
 * requests for the device: call backend_free after ioloop_exit. */
void backend_stop(struct backend *b);
void backend_free(struct backend *b);

/* The kvm guest's VM and agent console, for end reasons and counters
 * (tests, benchmarks); NULL for the ns backend or a failed start. */
struct vm *backend_kvm_vm(const struct backend *b);
struct virtio_console *backend_kvm_console(const struct backend *b);

/* Per backend, called through the functions above. */
int backend_ns_start(struct backend *b, const struct backend_opts *o);
void backend_ns_stop(struct backend *b);
int backend_kvm_start(struct backend *b, const struct backend_opts *o,
		      struct ioloop *loop);
void backend_kvm_stop(struct backend *b);
void backend_kvm_free(struct backend *b);

#endif
