/* A fake guest for the virtio tests: heap RAM and the driver's side. */
#include "tests/virtio_guest.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kvm/virtio_mmio.h"
#include "kvm/virtqueue.h"

void fake_mem_init(struct guest_mem *mem)
{
	mem->host = aligned_alloc(4096, FAKE_RAM_SIZE);
	cr_assert_not_null(mem->host);
	memset(mem->host, 0, FAKE_RAM_SIZE);
	mem->size = FAKE_RAM_SIZE;
}

void fake_mem_free(struct guest_mem *mem)
{
	free(mem->host);
	mem->host = NULL;
}

static void *at(struct fake_ring *r, uint64_t gpa)
{
	return r->mem->host + gpa;
}

void fake_ring_init(struct fake_ring *r, struct guest_mem *mem, uint16_t size,
		    uint64_t base)
{
	memset(r, 0, sizeof(*r));
	r->mem = mem;
	r->size = size;
	r->desc = base;
	r->avail = base + 16ull * size;
	r->used = (r->avail + 6 + 2ull * size + 3) & ~3ull;
}

void fake_ring_desc(struct fake_ring *r, uint16_t i, uint64_t addr,
		    uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = at(r, r->desc + 16ull * i);

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

void fake_ring_set_avail_idx(struct fake_ring *r, uint16_t idx)
{
	r->avail_idx = idx;
	__atomic_store_n((uint16_t *)at(r, r->avail + 2), idx,
			 __ATOMIC_RELEASE);
}

void fake_ring_add(struct fake_ring *r, uint16_t head)
{
	uint16_t *ring = at(r, r->avail + 4);

	ring[r->avail_idx % r->size] = head;
	fake_ring_set_avail_idx(r, r->avail_idx + 1);
}

uint16_t fake_ring_used_idx(struct fake_ring *r)
{
	return __atomic_load_n((uint16_t *)at(r, r->used + 2),
			       __ATOMIC_ACQUIRE);
}

bool fake_ring_used(struct fake_ring *r, uint32_t *id, uint32_t *len)
{
	uint32_t *elem;

	if (fake_ring_used_idx(r) == r->used_seen)
		return false;
	elem = at(r, r->used + 4 + 8ull * (r->used_seen % r->size));
	*id = elem[0];
	*len = elem[1];
	r->used_seen++;
	return true;
}

uint32_t fake_rd(const struct mmio_region *w, uint64_t off)
{
	uint32_t v = 0;

	cr_assert_eq(w->ops->read(w->opaque, off, &v, 4), 0);
	return v;
}

void fake_wr(const struct mmio_region *w, uint64_t off, uint32_t v)
{
	cr_assert_eq(w->ops->write(w->opaque, off, &v, 4), 0);
}

static void start_queue(const struct mmio_region *w, unsigned i,
			const struct fake_ring *r)
{
	fake_wr(w, VIRTIO_MMIO_QUEUE_SEL, i);
	cr_assert_geq(fake_rd(w, VIRTIO_MMIO_QUEUE_NUM_MAX), r->size);
	cr_assert_eq(fake_rd(w, VIRTIO_MMIO_QUEUE_READY), 0);
	fake_wr(w, VIRTIO_MMIO_QUEUE_NUM, r->size);
	fake_wr(w, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)r->desc);
	fake_wr(w, VIRTIO_MMIO_QUEUE_DESC_HIGH, r->desc >> 32);
	fake_wr(w, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)r->avail);
	fake_wr(w, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, r->avail >> 32);
	fake_wr(w, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)r->used);
	fake_wr(w, VIRTIO_MMIO_QUEUE_USED_HIGH, r->used >> 32);
	fake_wr(w, VIRTIO_MMIO_QUEUE_READY, 1);
}

uint32_t fake_driver_start(const struct mmio_region *w, struct fake_ring *rings,
			   unsigned n)
{
	unsigned i;

	fake_wr(w, VIRTIO_MMIO_STATUS, 0);
	fake_wr(w, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	fake_wr(w, VIRTIO_MMIO_STATUS,
		VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	fake_wr(w, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	fake_wr(w, VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	fake_wr(w, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	fake_wr(w, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	fake_wr(w, VIRTIO_MMIO_STATUS,
		VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		    VIRTIO_STATUS_FEATURES_OK);

	for (i = 0; i < n; i++)
		start_queue(w, i, &rings[i]);

	fake_wr(w, VIRTIO_MMIO_STATUS,
		VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	return fake_rd(w, VIRTIO_MMIO_STATUS);
}
