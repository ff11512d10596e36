/* Guest physical memory as the VMM sees it: one bounds-checked window. */
#ifndef VMPOOL_GUEST_MEM_H
#define VMPOOL_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Guest RAM mapped at host address `host`, guest physical 0..size. */
struct guest_mem {
	uint8_t *host;
	uint64_t size;
};

/* True when [gpa, gpa + len) lies wholly inside guest RAM. Every address
 * and length that comes from the guest goes through here before use. */
static inline bool guest_mem_ok(const struct guest_mem *m, uint64_t gpa,
				uint64_t len)
{
	return gpa <= m->size && len <= m->size - gpa;
}

/* Host pointer for [gpa, gpa + len), or NULL when it is out of bounds. */
static inline void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa,
				  uint64_t len)
{
	if (!guest_mem_ok(m, gpa, len))
		return NULL;
	return m->host + gpa;
}

#endif
