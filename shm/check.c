/* The invariants that say a pool segment is whole. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "shm/pool.h"
#include "shm/slot.h"

/* Tallies of the slot table, to compare with the counters. */
struct tally {
	uint64_t in_state[SLOT_NSTATES];
	uint64_t in_use;
	uint64_t live;
};

__attribute__((format(printf, 3, 4))) static int broken(char *why, size_t len,
							const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return -EUCLEAN;
}

static int check_header(const struct shm_segment *seg, char *why, size_t len)
{
	const struct shm_header *h = &seg->hdr;

	if (h->magic != SHM_MAGIC || h->abi_version != SHM_ABI_VERSION)
		return broken(why, len, "bad magic or version");
	if (h->nslots == 0 || h->nslots > SHM_MAX_SLOTS ||
	    h->slots_off != shm_slots_offset() ||
	    h->ring_off != shm_ring_offset(h->nslots))
		return broken(why, len, "bad geometry: %u slots", h->nslots);
	if (seg->journal.active)
		return broken(why, len, "journal of slot %u still active",
			      seg->journal.slot);
	return 0;
}

static int check_slots(const struct shm_segment *seg, struct tally *t,
		       char *why, size_t len)
{
	memset(t, 0, sizeof(*t));
	for (uint32_t i = 0; i < seg->hdr.nslots; i++) {
		const struct shm_slot *s = &shm_slots(seg)[i];

		if (s->state >= SLOT_NSTATES)
			return broken(why, len, "slot %u: state %u", i,
				      s->state);
		if (s->state == SLOT_BOOTING && s->purpose >= BOOT_NPURPOSES)
			return broken(why, len, "slot %u: purpose %u", i,
				      s->purpose);
		if (s->state == SLOT_FREE && s->pid)
			return broken(why, len, "slot %u: free with pid %u", i,
				      s->pid);
		t->in_state[s->state]++;
		t->in_use += slot_in_use(s);
		t->live += s->state != SLOT_FREE;
	}
	return 0;
}

/* Each idle slot exactly once, oldest first, nothing else. */
static int check_ring(const struct shm_segment *seg, const struct tally *t,
		      char *why, size_t len)
{
	uint8_t seen[SHM_MAX_SLOTS / 8] = {0};
	uint32_t n = seg->hdr.nslots;
	uint64_t prev = 0;

	if (seg->ring.head >= n || seg->ring.count != t->in_state[SLOT_IDLE])
		return broken(why, len, "ring head %u count %u, %llu idle",
			      seg->ring.head, seg->ring.count,
			      (unsigned long long)t->in_state[SLOT_IDLE]);

	for (uint32_t i = 0; i < seg->ring.count; i++) {
		uint32_t x = shm_ring_at(seg, i);
		const struct shm_slot *s = &shm_slots(seg)[x < n ? x : 0];

		if (x >= n || s->state != SLOT_IDLE || seen[x / 8] & 1 << x % 8)
			return broken(why, len,
				      "ring[%u] = slot %u, not a "
				      "distinct idle slot",
				      i, x);
		if ((i && s->idle_seq <= prev) ||
		    s->idle_seq >= seg->stats.c.idle_seq)
			return broken(why, len,
				      "ring[%u] = slot %u out of "
				      "order",
				      i, x);
		seen[x / 8] |= 1 << x % 8;
		prev = s->idle_seq;
	}
	return 0;
}

#define CHECK_EQ(a, b)                                                         \
	do {                                                                   \
		if ((a) != (b))                                                \
			return broken(why, len, "%s = %llu but %s = %llu", #a, \
				      (unsigned long long)(a), #b,             \
				      (unsigned long long)(b));                \
	} while (0)

static int check_counts(const struct shm_segment *seg, const struct tally *t,
			char *why, size_t len)
{
	const struct pool_counters *c = &seg->stats.c;
	const struct pool_config *cfg = &seg->config;

	CHECK_EQ(c->idle, t->in_state[SLOT_IDLE]);
	CHECK_EQ(c->in_use, t->in_use);
	CHECK_EQ(c->boots,
		 c->boots_ok + c->boot_failures + t->in_state[SLOT_BOOTING]);
	CHECK_EQ(c->leases,
		 c->releases + c->leases_lost + t->in_state[SLOT_LEASED]);
	if (c->idle > cfg->max_size)
		return broken(why, len, "%llu idle over max_size %u",
			      (unsigned long long)c->idle, cfg->max_size);
	if (cfg->max_total && t->live > cfg->max_total)
		return broken(why, len, "%llu live over max_total %u",
			      (unsigned long long)t->live, cfg->max_total);
	return 0;
}

int pool_check_invariants(const struct shm_segment *seg, char *why, size_t len)
{
	struct tally t;
	int rc;

	rc = check_header(seg, why, len);
	if (!rc)
		rc = check_slots(seg, &t, why, len);
	if (!rc)
		rc = check_ring(seg, &t, why, len);
	if (!rc)
		rc = check_counts(seg, &t, why, len);
	return rc;
}
