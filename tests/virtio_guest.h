/* A fake guest for the virtio tests: heap RAM and the driver's side. */
#ifndef VMPOOL_TESTS_VIRTIO_GUEST_H
#define VMPOOL_TESTS_VIRTIO_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "kvm/guest_mem.h"
#include "kvm/mmio.h"

#define FAKE_RAM_SIZE (1u << 20)

/* Guest RAM: FAKE_RAM_SIZE bytes, zeroed, page aligned. */
void fake_mem_init(struct guest_mem *mem);
void fake_mem_free(struct guest_mem *mem);

/* The driver's view of one split ring laid out from `base`. */
struct fake_ring {
	struct guest_mem *mem;
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t avail_idx;
	uint16_t used_seen;
};

void fake_ring_init(struct fake_ring *r, struct guest_mem *mem, uint16_t size,
		    uint64_t base);
void fake_ring_desc(struct fake_ring *r, uint16_t i, uint64_t addr,
		    uint32_t len, uint16_t flags, uint16_t next);
/* Publish a chain head in the avail ring. */
void fake_ring_add(struct fake_ring *r, uint16_t head);
/* Move the avail index by hand, as a hostile driver might. */
void fake_ring_set_avail_idx(struct fake_ring *r, uint16_t idx);
/* The next used element the device returned, if any. */
bool fake_ring_used(struct fake_ring *r, uint32_t *id, uint32_t *len);
uint16_t fake_ring_used_idx(struct fake_ring *r);

/* Register access through a device's MMIO window. */
uint32_t fake_rd(const struct mmio_region *w, uint64_t off);
void fake_wr(const struct mmio_region *w, uint64_t off, uint32_t v);

/* What a Linux driver does to bring a device up: reset, acknowledge,
 * accept VERSION_1 only, FEATURES_OK, set up and enable the queues,
 * DRIVER_OK. Returns the status read back at the end. */
uint32_t fake_driver_start(const struct mmio_region *w, struct fake_ring *rings,
			   unsigned n);

#endif
