/* After a writer died: undo its half-done step, rebuild what is derived. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "shm/fault.h"
#include "shm/pool.h"
#include "shm/slot.h"

static int by_idle_seq(const void *a, const void *b, void *slots)
{
	const struct shm_slot *s = slots;
	uint64_t x = s[*(const uint32_t *)a].idle_seq;
	uint64_t y = s[*(const uint32_t *)b].idle_seq;

	return (x > y) - (x < y);
}

/* The ring holds the idle slots in the order they were pushed. */
static void rebuild_ring(struct shm_segment *seg)
{
	struct shm_slot *slots = shm_slots(seg);
	uint32_t *buf = shm_ring_buf(seg);
	uint32_t count = 0;

	for (uint32_t i = 0; i < seg->hdr.nslots; i++) {
		if (slots[i].state == SLOT_IDLE)
			buf[count++] = i;
	}
	qsort_r(buf, count, sizeof(*buf), by_idle_seq, slots);

	seg->ring.head = 0;
	seg->ring.count = count;
}

/* Unknown states cannot come from a step; if one is there anyway, the
 * slot's worker is told to go (dead) and the slot freed when reaped. */
static void recount(struct shm_segment *seg)
{
	struct pool_counters *c = &seg->stats.c;
	struct shm_slot *slots = shm_slots(seg);

	c->idle = 0;
	c->in_use = 0;
	for (uint32_t i = 0; i < seg->hdr.nslots; i++) {
		if (slots[i].state >= SLOT_NSTATES)
			slots[i].state = SLOT_DEAD;
		c->idle += slots[i].state == SLOT_IDLE;
		c->in_use += slot_in_use(&slots[i]);
	}
}

/* Restoring the same before-images twice gives the same result, so a
 * repairer dying here is repaired the same way by the next one. */
static int roll_back(struct shm_segment *seg)
{
	struct shm_journal *j = &seg->journal;

	if (!j->active)
		return 0;
	if (j->slot < seg->hdr.nslots)
		shm_slots(seg)[j->slot] = j->slot_before;
	seg->stats.c = j->counters_before;
	return 1;
}

int pool_repair(struct shm_segment *seg)
{
	int rolled = roll_back(seg);

	FAULT_POINT("repair.rolled_back");
	rebuild_ring(seg);
	FAULT_POINT("repair.rebuilt");
	recount(seg);

	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	seg->journal.active = 0;
	seg->stats.repairs++;
	slot_event_add(seg, PEV_REPAIR, SHM_NO_SLOT, rolled, now_ns());
	return rolled;
}
