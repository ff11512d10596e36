/* Virtio over MMIO (version 2): registers, features, queues, interrupts. */
#ifndef VMPOOL_VIRTIO_MMIO_H
#define VMPOOL_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvm/guest_mem.h"
#include "kvm/mmio.h"
#include "kvm/virtqueue.h"

/* Register offsets, from the virtio spec's "MMIO Device Register Layout". */
#define VIRTIO_MMIO_MAGIC_VALUE		0x000
#define VIRTIO_MMIO_VERSION		0x004
#define VIRTIO_MMIO_DEVICE_ID		0x008
#define VIRTIO_MMIO_VENDOR_ID		0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES	0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES	0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL		0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX	0x034
#define VIRTIO_MMIO_QUEUE_NUM		0x038
#define VIRTIO_MMIO_QUEUE_READY		0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY	0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS	0x060
#define VIRTIO_MMIO_INTERRUPT_ACK	0x064
#define VIRTIO_MMIO_STATUS		0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW	0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH	0x084
#define VIRTIO_MMIO_QUEUE_AVAIL_LOW	0x090
#define VIRTIO_MMIO_QUEUE_AVAIL_HIGH	0x094
#define VIRTIO_MMIO_QUEUE_USED_LOW	0x0a0
#define VIRTIO_MMIO_QUEUE_USED_HIGH	0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION	0x0fc
#define VIRTIO_MMIO_CONFIG		0x100

#define VIRTIO_MMIO_MAGIC  0x74726976 /* "virt" */
#define VIRTIO_MMIO_SIZE   0x1000
#define VIRTIO_MMIO_VENDOR 0x4c504d56 /* "VMPL"; guests match on the id */

#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER	  2
#define VIRTIO_STATUS_DRIVER_OK	  4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED	  128

#define VIRTIO_INT_USED	  1
#define VIRTIO_INT_CONFIG 2

#define VIRTIO_F_VERSION_1 32

#define VIRTIO_MMIO_MAX_QUEUES 2

/* What a device behind the transport provides. Every hook runs with the
 * device lock held: reset and driver_ok on the vCPU thread, failed on
 * whichever thread found the broken rule. Hooks may be NULL. */
struct virtio_mmio_ops {
	/* The device is reset: drop whatever refers to its queues. */
	void (*reset)(void *opaque);
	/* The driver set DRIVER_OK: the queues are running. */
	void (*driver_ok)(void *opaque);
	/* The guest broke a rule (`why`) and the device stopped. */
	void (*failed)(void *opaque, const char *why);
};

/* One queue as the transport keeps it. */
struct virtio_mmio_queue {
	struct virtq vq;
	/* What the driver wrote, checked when it sets QueueReady. */
	uint32_t num;
	uint64_t desc, avail, used;
	bool ready;
	/* An eventfd that becomes readable when the guest notifies the
	 * queue: KVM signals it (ioeventfd) or the register write does. */
	int notify_fd;
	/* Bumped on every reset so work started before it is dropped. */
	uint32_t generation;
};

/* Counters a benchmark reads; updated with atomic adds. */
struct virtio_mmio_stats {
	uint64_t notifications; /* guest kicks seen by the device */
	uint64_t interrupts;	/* interrupts injected */
	uint64_t mmio_exits;	/* register reads/writes on the vCPU thread */
};

struct virtio_mmio_params {
	uint64_t base; /* guest physical base of the 4 KiB window */
	unsigned gsi;  /* interrupt line */
	uint32_t device_id;
	uint64_t features; /* device features; VERSION_1 is always added */
	unsigned nqueues;  /* 1..VIRTIO_MMIO_MAX_QUEUES */
	uint16_t queue_max;
	const void *config; /* device config space, read-only to the guest */
	size_t config_len;
	const struct guest_mem *mem;
	const struct virtio_mmio_ops *ops;
	void *opaque;
};

struct virtio_mmio {
	struct virtio_mmio_params p;
	/* Guards everything below against the vCPU and the io thread. */
	pthread_mutex_t lock;
	uint64_t driver_features;
	uint32_t device_features_sel, driver_features_sel;
	uint32_t queue_sel;
	uint32_t status;
	uint32_t interrupt_status;
	uint32_t config_generation;
	struct virtio_mmio_queue queues[VIRTIO_MMIO_MAX_QUEUES];
	/* KVM injects the device's interrupt when this eventfd is written. */
	int irq_fd;
	int vm_fd; /* -1 until virtio_mmio_attach_kvm */
	/* The first rule the guest broke, for the log; NULL while fine. */
	const char *error;
	struct virtio_mmio_stats stats;
};

/* Make the eventfds and set the registers to their reset values. The
 * config and mem the params point to must outlive the device. 0/-errno. */
int virtio_mmio_init(struct virtio_mmio *dev,
		     const struct virtio_mmio_params *p);

/* Detach from KVM if attached and close the eventfds. */
void virtio_mmio_exit(struct virtio_mmio *dev);

/* The window to give the VMM (vm_add_mmio) for register exits. */
void virtio_mmio_region(struct virtio_mmio *dev, struct mmio_region *r);

/* Route the device through KVM: QueueNotify writes signal the queues'
 * eventfds in the kernel (KVM_IOEVENTFD, matched on the queue index) and
 * the irq eventfd raises the GSI (KVM_IRQFD; needs the in-kernel irqchip).
 * 0 or -errno from the ioctl, with nothing left registered. */
int virtio_mmio_attach_kvm(struct virtio_mmio *dev, int vm_fd);

/* Undo virtio_mmio_attach_kvm; harmless when not attached. */
void virtio_mmio_detach_kvm(struct virtio_mmio *dev);

/* Format the kernel command-line argument that tells Linux where the
 * device is, e.g. "virtio_mmio.device=4K@0xd0000000:5". Returns the
 * length, or -ENOSPC when buf is too small. */
int virtio_mmio_cmdline(const struct virtio_mmio *dev, char *buf, size_t size);

void virtio_mmio_lock(struct virtio_mmio *dev);
void virtio_mmio_unlock(struct virtio_mmio *dev);

/* With the lock held: the queue when it is running (driver OK, queue
 * ready, no broken rule), else NULL. */
struct virtq *virtio_mmio_queue(struct virtio_mmio *dev, unsigned index);

/* With the lock held: tell the guest its used rings moved. */
void virtio_mmio_interrupt(struct virtio_mmio *dev);

/* With the lock held: the guest broke a rule (`why`). The device stops
 * serving queues and shows NEEDS_RESET until the driver resets it. */
void virtio_mmio_fail(struct virtio_mmio *dev, const char *why);

/* Count a notification taken from a queue's eventfd; io thread. */
void virtio_mmio_count_notify(struct virtio_mmio *dev, uint64_t n);

/* A consistent copy of the counters, from any thread. */
void virtio_mmio_get_stats(struct virtio_mmio *dev,
			   struct virtio_mmio_stats *out);

#endif
