/* Split virtqueues in guest memory, read with every guest value checked. */
#ifndef VMPOOL_VIRTQUEUE_H
#define VMPOOL_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "kvm/guest_mem.h"

/* The largest queue any vmpool device offers; chains are never longer. */
#define VIRTQ_MAX_SIZE 256

#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4

#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

/* One guest buffer of a chain, already checked to lie inside RAM. */
struct virtq_buf {
	uint64_t gpa;
	uint32_t len;
	bool write; /* the device writes it (a receive buffer) */
};

/* A descriptor chain taken from the avail ring. Readable buffers come
 * first (n_read of them), then writable ones. */
struct virtq_chain {
	uint16_t head;
	unsigned n;
	unsigned n_read;
	uint32_t read_len;
	uint32_t write_len;
	struct virtq_buf bufs[VIRTQ_MAX_SIZE];
};

/* The device side of one queue. The guest may rewrite its rings at any
 * moment, so every value is read once into host memory, then checked. */
struct virtq {
	const struct guest_mem *mem;
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint8_t *desc, *avail, *used;
	uint16_t last_avail;
	uint16_t used_idx;
	bool started;
	/* The first rule the guest broke on this queue, or NULL. */
	const char *error;
};

/* Check a queue layout the driver proposes and start serving it from
 * index 0: size a power of two in 1..max_size (max_size is at most
 * VIRTQ_MAX_SIZE), each ring aligned as the spec asks and wholly inside
 * RAM. 0, or -EINVAL with q->error saying why. */
int virtq_start(struct virtq *q, const struct guest_mem *mem, uint16_t size,
		uint16_t max_size, uint64_t desc, uint64_t avail,
		uint64_t used);

/* Forget the layout and the indexes (device reset). */
void virtq_stop(struct virtq *q);

/* Take the next available chain. 1 when one was taken, 0 when the ring
 * is empty, -EINVAL when the guest broke a rule (q->error says which;
 * the queue then refuses all further work until started again). */
int virtq_pop(struct virtq *q, struct virtq_chain *c);

/* How many chains the guest has made available; -EINVAL as virtq_pop. */
int virtq_avail_count(struct virtq *q);

/* Give a chain back, telling the guest `len` bytes were written to it.
 * 0, or -EINVAL when the queue is not running. */
int virtq_push(struct virtq *q, uint16_t head, uint32_t len);

/* A device-level rule the guest broke on this queue (for instance the
 * wrong buffer direction): the queue stops as for a ring error. Returns
 * -EINVAL. */
int virtq_fail(struct virtq *q, const char *why);

/* After pushes: whether the guest wants an interrupt for them. */
bool virtq_wants_interrupt(struct virtq *q);

#endif
