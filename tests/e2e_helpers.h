/* Helpers for the end-to-end suites: libvmpool against a real vmpoold. */
#ifndef VMPOOL_TESTS_E2E_HELPERS_H
#define VMPOOL_TESTS_E2E_HELPERS_H

#include <stdbool.h>
#include <stdint.h>

#include "client/vmpool.h"
#include "tests/supervisor_helpers.h"

/* Bounds on waits for things that must happen, not speed goals. */
#define E2E_WAIT_MS 20000

/* A pool handle on d's socket; asserts. */
struct vmpool *e2e_pool(const struct daemon *d);
/* The value of one counter, or -1 when vmpoold sends none by that name. */
int64_t e2e_counter(struct vmpool *p, const char *name);
/* Wait (bounded) until counter `name` reaches at least v; the value. */
int64_t e2e_wait_counter(struct vmpool *p, const char *name, int64_t v);
/* Lease a VM (asserts) and give its info. */
struct vmpool_lease *e2e_lease(struct vmpool *p, struct vmpool_lease_info *i);

struct e2e_out {
	char text[8192];
	size_t len;
};

/* Run a shell line in the lease, output (both streams) into out;
 * returns vmpool_exec's result and the exit code in *code. */
int e2e_sh(struct vmpool_lease *l, const char *line, struct e2e_out *out,
	   int *code);

#endif
