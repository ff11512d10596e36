/* Slot steps: one journaled state change, its ring entry and counts. */
#ifndef VMPOOL_SHM_SLOT_H
#define VMPOOL_SHM_SLOT_H

#include <stdbool.h>
#include <stdint.h>

#include "shm/layout.h"
#include "shm/fault.h"
#include "shm/pool.h"

/* The fault points of one kind of step, "<step>.journaled" etc. */
struct slot_points {
	const char *journaled;
	const char *left;
	const char *moved;
	const char *counted;
};

#define SLOT_POINTS_DECLARE(step) extern const struct slot_points step##_pts;
FAULT_STEPS(SLOT_POINTS_DECLARE)
#undef SLOT_POINTS_DECLARE

/*
 * A step changes one slot and the counters, nothing else that is not
 * derived. slot_step_begin saves both in the journal; slot_move does the
 * state change with its ring entry and derived counts; the caller then
 * adds its own counts; slot_step_commit drops the journal. A writer
 * dying anywhere in between is undone by pool_repair.
 */
struct slot_step {
	struct shm_segment *seg;
	struct shm_slot *slot;
	uint32_t index;
	const struct slot_points *pts;
};

void slot_step_begin(struct slot_step *st, struct shm_segment *seg,
		     uint32_t index, const struct slot_points *pts);
/* The event must be allowed (pool_slot_next) in the slot's state. */
void slot_move(struct slot_step *st, enum slot_event event, uint64_t now);
void slot_step_commit(struct slot_step *st);

/* Whether a slot in this state counts as idle, or in use. */
bool slot_in_use(const struct shm_slot *slot);

void slot_ring_push_back(struct shm_segment *seg, uint32_t index);
void slot_ring_remove(struct shm_segment *seg, uint32_t index);
uint32_t slot_ring_front(const struct shm_segment *seg);
uint32_t slot_ring_back(const struct shm_segment *seg);

void slot_event_add(struct shm_segment *seg, enum pool_event_kind kind,
		    uint32_t index, uint64_t value, uint64_t now);

#endif
