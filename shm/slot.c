/* The slot state machine and the journaled steps that apply it. */
#include "shm/slot.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "shm/fault.h"

_Static_assert(SEV_COUNT == 10, "one column per event below");

#define NO -1
#define FR SLOT_FREE
#define BO SLOT_BOOTING
#define ID SLOT_IDLE
#define LE SLOT_LEASED
#define RE SLOT_RECYCLING
#define DE SLOT_DEAD

/* clang-format off */
/* The whole state machine: state x event -> new state; NO refuses. */
static const int8_t next_state[SLOT_NSTATES][SEV_COUNT] = {
	/*      boot  ready ready boot  dis-  lease rele- recy- evict exit
	 *            idle  lease fail  card        ase   cled */
	[FR] = {BO,   NO,   NO,   NO,   NO,   NO,   NO,   NO,   NO,   NO},
	[BO] = {NO,   ID,   LE,   DE,   DE,   NO,   NO,   NO,   NO,   FR},
	[ID] = {NO,   NO,   NO,   NO,   NO,   LE,   NO,   NO,   DE,   FR},
	[LE] = {NO,   NO,   NO,   NO,   NO,   NO,   RE,   NO,   NO,   FR},
	[RE] = {NO,   NO,   NO,   NO,   NO,   NO,   NO,   ID,   DE,   FR},
	[DE] = {NO,   NO,   NO,   NO,   NO,   NO,   NO,   NO,   NO,   FR},
};
/* clang-format on */

int pool_slot_next(enum slot_state state, enum slot_event event)
{
	if ((unsigned)state >= SLOT_NSTATES || (unsigned)event >= SEV_COUNT)
		return -EINVAL;
	return next_state[state][event] == NO ? -EINVAL
					      : next_state[state][event];
}

#define SLOT_POINTS_DEFINE(step)                                               \
	const struct slot_points step##_pts = {#step ".journaled",             \
					       #step ".left", #step ".moved",  \
					       #step ".counted"};
FAULT_STEPS(SLOT_POINTS_DEFINE)

bool slot_in_use(const struct shm_slot *slot)
{
	return slot->state == SLOT_LEASED ||
	       (slot->state == SLOT_BOOTING && slot->purpose == BOOT_LEASE);
}

uint32_t slot_ring_front(const struct shm_segment *seg)
{
	return shm_ring_at(seg, 0);
}

uint32_t slot_ring_back(const struct shm_segment *seg)
{
	return shm_ring_at(seg, seg->ring.count - 1);
}

void slot_ring_push_back(struct shm_segment *seg, uint32_t index)
{
	uint32_t n = seg->hdr.nslots;

	shm_ring_buf(seg)[(seg->ring.head + seg->ring.count) % n] = index;
	seg->ring.count++;
}

/* Close the gap at position pos by moving the later entries forward. */
static void ring_close_gap(struct shm_segment *seg, uint32_t pos)
{
	uint32_t *buf = shm_ring_buf(seg);
	uint32_t n = seg->hdr.nslots;

	for (uint32_t i = pos; i + 1 < seg->ring.count; i++) {
		buf[(seg->ring.head + i) % n] =
		    buf[(seg->ring.head + i + 1) % n];
	}
	seg->ring.count--;
}

/* Acquire takes the back and expiry the front: both are O(1). */
void slot_ring_remove(struct shm_segment *seg, uint32_t index)
{
	uint32_t count = seg->ring.count;

	if (count == 0)
		return;
	if (slot_ring_back(seg) == index) {
		seg->ring.count--;
		return;
	}
	if (slot_ring_front(seg) == index) {
		seg->ring.head = (seg->ring.head + 1) % seg->hdr.nslots;
		seg->ring.count--;
		return;
	}
	for (uint32_t i = 1; i < count; i++) {
		if (shm_ring_at(seg, i) == index) {
			ring_close_gap(seg, i);
			return;
		}
	}
}

void slot_step_begin(struct slot_step *st, struct shm_segment *seg,
		     uint32_t index, const struct slot_points *pts)
{
	struct shm_journal *j = &seg->journal;

	st->seg = seg;
	st->slot = &shm_slots(seg)[index];
	st->index = index;
	st->pts = pts;

	j->slot = index;
	j->slot_before = *st->slot;
	j->counters_before = seg->stats.c;
	/* The undo record is whole before it counts, and counts before any
	 * change: a death is seen only in program order. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&j->active, 1, __ATOMIC_RELAXED);
	FAULT_POINT(pts->journaled);
}

static void leave_state(struct slot_step *st)
{
	struct pool_counters *c = &st->seg->stats.c;

	if (st->slot->state == SLOT_IDLE) {
		slot_ring_remove(st->seg, st->index);
		c->idle--;
	}
	if (slot_in_use(st->slot))
		c->in_use--;
}

static void enter_state(struct slot_step *st, uint64_t now)
{
	struct pool_counters *c = &st->seg->stats.c;

	if (st->slot->state == SLOT_IDLE) {
		st->slot->idle_seq = c->idle_seq++;
		st->slot->last_used_ns = now;
		slot_ring_push_back(st->seg, st->index);
		c->idle++;
	}
	if (slot_in_use(st->slot))
		c->in_use++;
}

void slot_move(struct slot_step *st, enum slot_event event, uint64_t now)
{
	int next = pool_slot_next(st->slot->state, event);

	leave_state(st);
	FAULT_POINT(st->pts->left);

	st->slot->state = next;
	st->slot->since_ns = now;
	FAULT_POINT(st->pts->moved);

	enter_state(st, now);
}

void slot_step_commit(struct slot_step *st)
{
	FAULT_POINT(st->pts->counted);
	__atomic_store_n(&st->seg->journal.active, 0, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static pid_t cached_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void forget_pid(void)
{
	cached_pid = 0;
}

static void watch_forks(void)
{
	pthread_atfork(NULL, NULL, forget_pid);
}

/* getpid is a system call; events are written on every step. */
static pid_t self_pid(void)
{
	pthread_once(&pid_once, watch_forks);
	if (!cached_pid)
		cached_pid = getpid();
	return cached_pid;
}

void slot_event_add(struct shm_segment *seg, enum pool_event_kind kind,
		    uint32_t index, uint64_t value, uint64_t now)
{
	uint64_t head = seg->hdr.events_head;
	struct pool_event *e = &seg->events[head % SHM_EVENTS];
	bool has_slot = index < seg->hdr.nslots;
	const struct shm_slot *slot = &shm_slots(seg)[has_slot ? index : 0];

	e->time_ns = now;
	e->value = value;
	e->slot = index;
	e->pid = self_pid();
	e->uid = has_slot ? slot->owner_uid : 0;
	e->kind = kind;
	e->state = has_slot ? slot->state : SLOT_NSTATES;
	/* Entries beyond the head are never shown: a death above leaves a
	 * half-written one unseen. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	seg->hdr.events_head = head + 1;
}
