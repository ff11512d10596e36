/* vmpool-chaos: watch the pool during the run, check it after. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "shm/pool.h"
#include "tools/chaos.h"

#define MS	 1000000ull
#define WATCH_NS (5 * MS)
#define REAP_NS	 (5000 * MS)
#define MAX_KIDS 256

void chaos_add_check(struct chaos *c, const char *name, bool ok,
		     const char *fmt, ...)
{
	struct chaos_check *k;
	va_list ap;

	if (c->nchecks == CHAOS_MAX_CHECKS)
		return;
	k = &c->checks[c->nchecks++];
	k->name = name;
	k->ok = ok;
	va_start(ap, fmt);
	vsnprintf(k->detail, sizeof(k->detail), fmt, ap);
	va_end(ap);
}

void chaos_add_victim(struct chaos *c, enum chaos_kind kind, pid_t pid,
		      int pidfd, uint32_t slot, uint64_t t_ns)
{
	struct chaos_victim v = {.kind = kind,
				 .pid = pid,
				 .pidfd = pidfd,
				 .slot = slot,
				 .t_ns = t_ns};

	pthread_mutex_lock(&c->mu);
	/* An armed worker that dies of another fault proves no point; nor
	 * does a panic in a worker another fault reached first. */
	for (size_t i = 0; i < c->nvictims; i++) {
		const struct chaos_victim *e = &c->victims[i];

		if (e->pid != pid)
			continue;
		if (kind == CK_GUEST_PANIC &&
		    (e->kind != CK_FAULT_POINT || e->dead_ns))
			v.killed_by_us = true;
		else if (!e->dead_ns)
			c->victims[i].killed_by_us = true;
	}
	if (c->nvictims == c->victims_cap) {
		size_t cap = c->victims_cap ? 2 * c->victims_cap : 64;
		struct chaos_victim *p = realloc(c->victims, cap * sizeof(*p));

		if (!p) {
			if (pidfd >= 0)
				close(pidfd);
			goto out_unlock;
		}
		c->victims = p;
		c->victims_cap = cap;
	}
	c->victims[c->nvictims++] = v;
out_unlock:
	pthread_mutex_unlock(&c->mu);
}

/* --- the monitor --- */

struct view {
	uint32_t count[SLOT_NSTATES];
	const struct shm_segment *seg;
};

static void count_states(const struct shm_segment *seg, struct view *v)
{
	const struct shm_slot *slots = shm_slots(seg);

	memset(v, 0, sizeof(*v));
	v->seg = seg;
	for (uint32_t i = 0; i < seg->hdr.nslots; i++)
		if (slots[i].state < SLOT_NSTATES)
			v->count[slots[i].state]++;
}

static bool holds_pid(const struct shm_segment *seg, pid_t pid)
{
	const struct shm_slot *slots = shm_slots(seg);

	for (uint32_t i = 0; i < seg->hdr.nslots; i++)
		if (slots[i].state != SLOT_FREE &&
		    slots[i].pid == (uint32_t)pid)
			return true;
	return false;
}

static bool exited(int pidfd)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};

	return pidfd < 0 || poll(&p, 1, 0) > 0;
}

/* A victim has recovered once it is dead, its slot no longer names it
 * and min_size VMs are idle again. */
static void watch_victim(struct chaos *c, struct chaos_victim *v,
			 const struct view *view, uint64_t now)
{
	if (!v->dead_ns && exited(v->pidfd)) {
		v->dead_ns = now;
		if (v->kind == CK_FAULT_POINT) {
			v->t_ns = now;
			c->fp_fired += !v->killed_by_us;
		}
	}
	if (!v->dead_ns || v->recovered_ns || !view)
		return;
	if (view->count[SLOT_IDLE] < c->min_size)
		v->fell_below = true;
	else if (!holds_pid(view->seg, v->pid))
		v->recovered_ns = now;
}

static void watch_victims(struct chaos *c, const struct view *view,
			  uint64_t now)
{
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->nvictims; i++)
		watch_victim(c, &c->victims[i], view, now);
	pthread_mutex_unlock(&c->mu);
}

static void check_snapshot(struct chaos *c, const struct shm_segment *seg)
{
	char why[200];
	int err = pool_check_invariants(seg, why, sizeof(why));

	pthread_mutex_lock(&c->mu);
	c->snapshots++;
	if (err) {
		c->invariant_breaks++;
		if (!c->first_break[0])
			snprintf(c->first_break, sizeof(c->first_break), "%s",
				 why);
	}
	pthread_mutex_unlock(&c->mu);
	if (err)
		chaos_note(c, "invariant broken in a snapshot: %s", why);
}

static void *monitor_main(void *arg)
{
	struct chaos *c = arg;
	void *buf = malloc(c->snap_len);
	struct view view;

	while (buf && !c->stop_monitor) {
		uint64_t now = now_ns();
		bool have = chaos_snapshot(c, buf) == 0;

		if (have) {
			count_states(buf, &view);
			check_snapshot(c, buf);
		}
		watch_victims(c, have ? &view : NULL, now);
		chaos_load_watch(c, now);
		chaos_sleep_ns(WATCH_NS);
	}
	free(buf);
	return NULL;
}

int chaos_monitor_start(struct chaos *c, pthread_t *tid)
{
	c->stop_monitor = false;
	return -pthread_create(tid, NULL, monitor_main, c);
}

void chaos_monitor_stop(struct chaos *c, pthread_t tid)
{
	c->stop_monitor = true;
	pthread_join(tid, NULL);
}

/* --- leases: none lost, none doubled --- */

static int by_slot_generation(const void *a, const void *b)
{
	const struct chaos_lease *x = a, *y = b;

	if (x->slot != y->slot)
		return x->slot < y->slot ? -1 : 1;
	if (x->generation != y->generation)
		return x->generation < y->generation ? -1 : 1;
	return 0;
}

static int by_slot_time(const void *a, const void *b)
{
	const struct chaos_lease *x = a, *y = b;

	if (x->slot != y->slot)
		return x->slot < y->slot ? -1 : 1;
	if (x->leased_ns != y->leased_ns)
		return x->leased_ns < y->leased_ns ? -1 : 1;
	return 0;
}

static void check_distinct(struct chaos *c)
{
	struct chaos_lease *l = c->leases;
	size_t dups = 0, first = 0;

	qsort(l, c->nleases, sizeof(*l), by_slot_generation);
	for (size_t i = 1; i < c->nleases; i++)
		if (!by_slot_generation(&l[i - 1], &l[i]) && !dups++)
			first = i;
	chaos_add_check(c, "leases_distinct", !dups,
			dups ? "%zu leases repeat a (slot, generation), first "
			       "(%u, %u)"
			     : "%zu leases, each its own (slot, generation)",
			dups ? dups : c->nleases, dups ? l[first].slot : 0,
			dups ? l[first].generation : 0);
}

/* A request that succeeded was served before its lease ended, and so
 * before the slot's next lease began: one sent after that next lease
 * was granted means two tenants held the slot at once. */
static void check_overlap(struct chaos *c)
{
	struct chaos_lease *l = c->leases;
	size_t bad = 0, first = 0;

	qsort(l, c->nleases, sizeof(*l), by_slot_time);
	for (size_t i = 1; i < c->nleases; i++)
		if (l[i - 1].slot == l[i].slot &&
		    l[i - 1].last_ok_sent_ns > l[i].leased_ns && !bad++)
			first = i;
	if (bad)
		chaos_add_check(c, "no_slot_held_twice", false,
				"%zu times a request succeeded on a slot after "
				"its next lease began, first slot %u "
				"generation %u",
				bad, l[first].slot, l[first].generation);
	else
		chaos_add_check(c, "no_slot_held_twice", true,
				"no request succeeded on a slot leased to "
				"another tenant");
}

void chaos_check_leases(struct chaos *c)
{
	uint64_t answered = 0, errors = 0;

	pthread_mutex_lock(&c->mu);
	for (int r = 0; r < CR_NRESULTS; r++)
		answered += c->requests[r];
	errors = answered - c->requests[CR_OK];
	chaos_add_check(
	    c, "requests_answered", !c->hung && !c->requests[CR_WRONG],
	    "%llu answered (%llu with an error), %llu wrong, "
	    "%llu hung%s%s%s%s",
	    (unsigned long long)answered, (unsigned long long)errors,
	    (unsigned long long)c->requests[CR_WRONG],
	    (unsigned long long)c->hung,
	    c->first_wrong[0] ? "; first wrong: " : "", c->first_wrong,
	    c->first_hung[0] ? "; first hung: " : "", c->first_hung);
	chaos_add_check(c, "bad_tenants_answered", !c->bad_tenant_unanswered,
			"%llu tenants sending garbage got no answer%s%s",
			(unsigned long long)c->bad_tenant_unanswered,
			c->first_bad_tenant[0] ? ": " : "",
			c->first_bad_tenant);
	if (c->o.kvm &&
	    c->o.kinds & (1u << CK_GUEST_GARBAGE | 1u << CK_GUEST_PANIC))
		chaos_add_check(
		    c, "broken_guests_told", !c->guest_untold,
		    "%llu tenants whose guest panicked or sent garbage were "
		    "told, %llu not%s%s",
		    (unsigned long long)c->guest_told,
		    (unsigned long long)c->guest_untold,
		    c->first_untold[0] ? "; first: " : "", c->first_untold);
	check_distinct(c);
	check_overlap(c);
	pthread_mutex_unlock(&c->mu);
}
