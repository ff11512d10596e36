/* The contract between the VMM's exit loop and its MMIO devices. */
#ifndef VMPOOL_MMIO_H
#define VMPOOL_MMIO_H

#include <stdint.h>

/* Handlers run on the vCPU thread for a KVM_EXIT_MMIO inside the device's
 * window; `off` is relative to the window base, len is 1, 2, 4 or 8. A
 * read fills data (little endian). Return 0, or -errno when the guest
 * broke the device's rules (the VMM then stops the VM). */
struct mmio_ops {
	int (*read)(void *opaque, uint64_t off, void *data, unsigned len);
	int (*write)(void *opaque, uint64_t off, const void *data,
		     unsigned len);
};

/* One registered window. */
struct mmio_region {
	uint64_t base;
	uint64_t len;
	const struct mmio_ops *ops;
	void *opaque;
};

#endif
