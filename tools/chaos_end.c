/* vmpool-chaos: after the faults, the pool must settle and leave nothing. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "shm/fault.h"
#include "shm/pool.h"
#include "tools/chaos.h"

#define MS	 1000000ull
#define POLL_NS	 (20 * MS)
#define REAP_NS	 (5000 * MS)
#define MAX_KIDS 256

struct counts {
	uint32_t n[SLOT_NSTATES];
};

static void count_states(const struct shm_segment *seg, struct counts *k)
{
	const struct shm_slot *slots = shm_slots(seg);

	memset(k, 0, sizeof(*k));
	for (uint32_t i = 0; i < seg->hdr.nslots; i++)
		if (slots[i].state < SLOT_NSTATES)
			k->n[slots[i].state]++;
}

static bool settled(const struct counts *k, uint32_t min_size)
{
	return !k->n[SLOT_LEASED] && !k->n[SLOT_BOOTING] &&
	       !k->n[SLOT_RECYCLING] && !k->n[SLOT_DEAD] &&
	       k->n[SLOT_IDLE] >= min_size;
}

static void check_final_snapshot(struct chaos *c, const struct shm_segment *seg)
{
	char why[200];
	int err = pool_check_invariants(seg, why, sizeof(why));

	if (!err && seg->stats.c.in_use) {
		snprintf(why, sizeof(why), "stats say %llu in use",
			 (unsigned long long)seg->stats.c.in_use);
		err = -EUCLEAN;
	}
	chaos_add_check(c, "final_invariants", !err, "%s",
			err ? why : "every invariant holds, nothing in use");
}

static bool dead(int pidfd)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};

	return pidfd < 0 || poll(&p, 1, 0) > 0;
}

/* Workers hit by a fault must be gone: killed, or their misbehaving
 * guest evicted. An armed fault point may never have been reached. */
static void check_victims(struct chaos *c)
{
	size_t n = 0, alive = 0, first = 0;

	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->nvictims; i++) {
		struct chaos_victim *v = &c->victims[i];

		if (v->kind == CK_FAULT_POINT)
			continue;
		n++;
		if (!dead(v->pidfd) && !alive++)
			first = i;
	}
	if (alive)
		chaos_add_check(c, "faulty_workers_replaced", false,
				"%zu of %zu workers hit still run, first %d "
				"(%s)",
				alive, n, (int)c->victims[first].pid,
				chaos_kind_name(c->victims[first].kind));
	else
		chaos_add_check(c, "faulty_workers_replaced", true,
				"all %zu workers killed, or holding a guest "
				"that hung or sent garbage, are gone",
				n);
	pthread_mutex_unlock(&c->mu);
}

/* Name the slots that kept the pool from settling. */
static void note_stuck(struct chaos *c, const struct shm_segment *seg)
{
	const struct shm_slot *slots = shm_slots(seg);

	for (uint32_t i = 0; i < seg->hdr.nslots; i++)
		if (slots[i].state != SLOT_FREE && slots[i].state != SLOT_IDLE)
			chaos_note(c,
				   "slot %u stuck %s: worker %u, generation "
				   "%u, for %.1f s",
				   i, shm_state_name(slots[i].state),
				   slots[i].pid, slots[i].generation,
				   (now_ns() - slots[i].since_ns) / 1e9);
}

void chaos_check_settled(struct chaos *c)
{
	void *buf = malloc(c->snap_len);
	uint64_t start = now_ns(), now = start;
	struct counts k = {{0}};
	bool have = false, ok = false;

	while (buf && !ok && now < start + c->o.settle_ns) {
		have = chaos_snapshot(c, buf) == 0;
		if (have)
			count_states(buf, &k);
		ok = have && settled(&k, c->min_size);
		if (!ok)
			chaos_sleep_ns(POLL_NS);
		now = now_ns();
	}
	c->settle_ns = now - start;

	chaos_add_check(c, "pool_settled", ok,
			"%s %.1f s: %u idle (min_size %u), %u leased, %u "
			"booting, %u recycling, %u dead",
			ok ? "after" : "still not after", c->settle_ns / 1e9,
			k.n[SLOT_IDLE], c->min_size, k.n[SLOT_LEASED],
			k.n[SLOT_BOOTING], k.n[SLOT_RECYCLING], k.n[SLOT_DEAD]);
	if (have && !ok)
		note_stuck(c, buf);
	if (have)
		check_final_snapshot(c, buf);
	else
		chaos_add_check(c, "final_invariants", false,
				"no snapshot of the pool could be taken");
	check_victims(c);
	free(buf);
}

/* --- after the private pool stopped --- */

static void reap_orphans(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static size_t seen_alive(struct chaos *c, pid_t *first)
{
	size_t n = 0;

	for (size_t i = 0; i < c->nseen; i++)
		if (chaos_proc_alive(&c->seen[i]) && !n++)
			*first = c->seen[i].pid;
	return n;
}

/* We are the subreaper of everything the pool started: whatever is
 * left comes back to us as a child. */
static void check_processes(struct chaos *c)
{
	uint64_t end = now_ns() + REAP_NS;
	pid_t kids[MAX_KIDS], first = 0;
	size_t alive;
	int n;

	do {
		reap_orphans();
		n = chaos_children(getpid(), kids, MAX_KIDS);
		alive = seen_alive(c, &first);
		if (!n && !alive)
			break;
		chaos_sleep_ns(POLL_NS);
	} while (now_ns() < end);

	if (n || alive)
		chaos_add_check(c, "no_process_left", false,
				"%d processes of the pool outlived it, %zu of "
				"the %zu seen still run (first %d)",
				n, alive, c->nseen, (int)(n ? kids[0] : first));
	else
		chaos_add_check(c, "no_process_left", true,
				"none of the %zu workers and guests seen "
				"outlived the pool",
				c->nseen);
}

/* Lines of the pool's log holding needle. */
static uint64_t count_in_log(const struct chaos *c, const char *needle)
{
	char path[96], line[512];
	uint64_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/vmpoold.log", c->dir);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* The guest-panic victims no other fault reached first. */
static uint64_t panics_made(struct chaos *c)
{
	uint64_t n = 0;

	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->nvictims; i++)
		n += c->victims[i].kind == CK_GUEST_PANIC &&
		     !c->victims[i].killed_by_us;
	pthread_mutex_unlock(&c->mu);
	return n;
}

/* The worker of a panicked guest logs the panic as the reason its guest
 * ended (the guest's console, copied there too, may be cut up by other
 * lines). */
static void check_panics(struct chaos *c)
{
	uint64_t made = panics_made(c);

	c->panics_logged =
	    count_in_log(c, "the guest has ended: " CHAOS_PANIC_MARK);
	if (!(c->o.kinds & 1u << CK_GUEST_PANIC))
		return;
	chaos_add_check(c, "guest_panics_logged", c->panics_logged >= made,
			"%llu kernel panics in the pool's log for %llu "
			"guest-panic faults",
			(unsigned long long)c->panics_logged,
			(unsigned long long)made);
}

void chaos_check_after_stop(struct chaos *c, int status)
{
	char path[64], exits[32];
	bool gone;

	chaos_add_check(c, "daemon_drained", status == 0,
			status == -ETIMEDOUT
			    ? "vmpoold did not exit after SIGTERM; killed"
			    : "vmpoold exited with status %d after SIGTERM",
			status);

	snprintf(path, sizeof(path), "/dev/shm/vmpool.%s", c->name);
	gone = access(path, F_OK) < 0 && errno == ENOENT;
	chaos_add_check(c, "segment_removed", gone, "%s %s", path,
			gone ? "is gone" : "is still there");
	check_processes(c);
	check_panics(c);
	/* Workers that left through a fault point's _exit, as vmpoold
	 * logged their exits ("... exit 86)"). */
	snprintf(exits, sizeof(exits), "exit %d)", FAULT_EXIT_CODE);
	c->fp_exit_seen = count_in_log(c, exits);
}
