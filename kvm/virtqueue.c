/* Split virtqueues in guest memory, read with every guest value checked. */
#include "kvm/virtqueue.h"

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

/* Ring layouts from the virtio spec ("Split Virtqueues"). */
#define DESC_SIZE      16
#define AVAIL_IDX_OFF  2
#define AVAIL_RING_OFF 4
#define USED_IDX_OFF   2
#define USED_RING_OFF  4
#define USED_ELEM_SIZE 8
#define DESC_ALIGN     16
#define AVAIL_ALIGN    2
#define USED_ALIGN     4

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static int broken(struct virtq *q, const char *why)
{
	if (!q->error)
		q->error = why;
	return -EINVAL;
}

/* Each ring plus its trailing event field, used with EVENT_IDX. */
static uint64_t avail_bytes(uint16_t size)
{
	return AVAIL_RING_OFF + 2ull * size + 2;
}

static uint64_t used_bytes(uint16_t size)
{
	return USED_RING_OFF + (uint64_t)USED_ELEM_SIZE * size + 2;
}

static int check_layout(struct virtq *q, uint16_t size, uint16_t max_size)
{
	if (size == 0 || size > max_size || size > VIRTQ_MAX_SIZE)
		return broken(q, "queue size out of range");
	if (size & (size - 1))
		return broken(q, "queue size is not a power of two");

	if (q->desc_gpa % DESC_ALIGN || q->avail_gpa % AVAIL_ALIGN ||
	    q->used_gpa % USED_ALIGN)
		return broken(q, "ring address misaligned");

	q->desc =
	    guest_mem_ptr(q->mem, q->desc_gpa, (uint64_t)DESC_SIZE * size);
	q->avail = guest_mem_ptr(q->mem, q->avail_gpa, avail_bytes(size));
	q->used = guest_mem_ptr(q->mem, q->used_gpa, used_bytes(size));
	if (!q->desc || !q->avail || !q->used)
		return broken(q, "ring outside guest RAM");
	return 0;
}

int virtq_start(struct virtq *q, const struct guest_mem *mem, uint16_t size,
		uint16_t max_size, uint64_t desc, uint64_t avail, uint64_t used)
{
	int ret;

	memset(q, 0, sizeof(*q));
	q->mem = mem;
	q->desc_gpa = desc;
	q->avail_gpa = avail;
	q->used_gpa = used;

	ret = check_layout(q, size, max_size);
	if (ret < 0)
		return ret;

	q->size = size;
	q->started = true;
	return 0;
}

void virtq_stop(struct virtq *q)
{
	memset(q, 0, sizeof(*q));
}

/* The guest writes these concurrently: one atomic load each, so a value
 * is checked and used as the same value. */
static uint16_t load16(const uint8_t *p, int order)
{
	return le16toh(__atomic_load_n((const uint16_t *)p, order));
}

static void store16(uint8_t *p, uint16_t v, int order)
{
	__atomic_store_n((uint16_t *)p, htole16(v), order);
}

int virtq_avail_count(struct virtq *q)
{
	uint16_t idx, count;

	if (!q->started || q->error)
		return -EINVAL;

	/* Acquire: ring entries written before idx are visible after it. */
	idx = load16(q->avail + AVAIL_IDX_OFF, __ATOMIC_ACQUIRE);
	count = idx - q->last_avail;
	if (count > q->size)
		return broken(q,
			      "avail index moved by more than the queue size");
	return count;
}

static void read_desc(const struct virtq *q, uint16_t i, struct desc *d)
{
	const uint8_t *p = q->desc + (uint64_t)i * DESC_SIZE;

	d->addr =
	    le64toh(__atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED));
	d->len = le32toh(
	    __atomic_load_n((const uint32_t *)(p + 8), __ATOMIC_RELAXED));
	d->flags = load16(p + 12, __ATOMIC_RELAXED);
	d->next = load16(p + 14, __ATOMIC_RELAXED);
}

static int add_buf(struct virtq *q, struct virtq_chain *c, const struct desc *d)
{
	bool write = d->flags & VIRTQ_DESC_F_WRITE;
	uint32_t *total = write ? &c->write_len : &c->read_len;

	if (d->flags & VIRTQ_DESC_F_INDIRECT)
		return broken(q, "indirect descriptor, not offered");
	if (!guest_mem_ok(q->mem, d->addr, d->len))
		return broken(q, "buffer outside guest RAM");
	if (!write && c->n > c->n_read)
		return broken(q, "readable descriptor after a writable one");
	if (d->len > UINT32_MAX - *total)
		return broken(q, "chain longer than 4 GiB");

	*total += d->len;
	c->bufs[c->n] = (struct virtq_buf){d->addr, d->len, write};
	c->n++;
	if (!write)
		c->n_read++;
	return 0;
}

/* A chain visits at most `size` descriptors: one more means a loop. */
static int walk_chain(struct virtq *q, struct virtq_chain *c, uint16_t head)
{
	uint16_t i = head;
	struct desc d;

	memset(c, 0, offsetof(struct virtq_chain, bufs));
	c->head = head;
	for (;;) {
		if (i >= q->size)
			return broken(q, "descriptor index out of range");
		if (c->n >= q->size)
			return broken(q,
				      "descriptor chain longer than the queue");

		read_desc(q, i, &d);
		if (add_buf(q, c, &d) < 0)
			return -EINVAL;

		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		i = d.next;
	}
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
	int count = virtq_avail_count(q);
	uint16_t slot, head;

	if (count <= 0)
		return count;

	slot = q->last_avail % q->size;
	head = load16(q->avail + AVAIL_RING_OFF + 2u * slot, __ATOMIC_RELAXED);
	if (walk_chain(q, c, head) < 0)
		return -EINVAL;

	q->last_avail++;
	return 1;
}

int virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	uint8_t *elem;
	uint32_t v[2];

	if (!q->started || q->error)
		return -EINVAL;
	if (head >= q->size)
		return broken(q, "device gave back a bad head");

	elem = q->used + USED_RING_OFF +
	       (uint64_t)(q->used_idx % q->size) * USED_ELEM_SIZE;
	v[0] = htole32(head);
	v[1] = htole32(len);
	memcpy(elem, v, sizeof(v));

	/* Release: the element is visible before the index that covers it. */
	q->used_idx++;
	store16(q->used + USED_IDX_OFF, q->used_idx, __ATOMIC_RELEASE);
	return 0;
}

int virtq_fail(struct virtq *q, const char *why)
{
	return broken(q, why);
}

bool virtq_wants_interrupt(struct virtq *q)
{
	if (!q->started)
		return false;

	/* The used index store must be ordered before the flags load, or a
	 * guest re-enabling interrupts could be missed. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return !(load16(q->avail, __ATOMIC_RELAXED) &
		 VIRTQ_AVAIL_F_NO_INTERRUPT);
}
