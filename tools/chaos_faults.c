/* vmpool-chaos: the injector, one seeded fault after another. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "client/vmpool.h"
#include "common/util.h"
#include "config.h"
#include "proto/proto.h"
#include "tools/chaos.h"
#include "worker/ns.h"

#define MS		   1000000ull
#define PLAN_WAIT_NS	   (3000 * MS)
#define ACQUIRE_TIMEOUT_NS (20000 * MS)
/* Targets come from the first slots only: more than a chaos pool uses. */
#define PICK_SLOTS 512

#define ANY_STATE                                                              \
	(1u << SLOT_IDLE | 1u << SLOT_LEASED | 1u << SLOT_BOOTING |            \
	 1u << SLOT_RECYCLING)
#define READY_STATE (1u << SLOT_IDLE | 1u << SLOT_LEASED)

struct injector {
	struct chaos *c;
	void *snap;
	struct vmpool *pool;
};

struct target {
	uint32_t slot;
	uint8_t state;
	pid_t worker;
	int pidfd; /* of the process the fault hits */
};

/* Relative odds of each kind, among those enabled and possible here. */
static const unsigned kind_weight[CK_NKINDS] = {
    [CK_KILL] = 4,	     [CK_STOP_CONT] = 1,   [CK_STOP_KILL] = 1,
    [CK_FAULT_POINT] = 3,    [CK_GUEST_STALL] = 1, [CK_GUEST_HANG] = 1,
    [CK_GUEST_GARBAGE] = 2,  [CK_GUEST_PANIC] = 1, [CK_TENANT_VANISH] = 2,
    [CK_TENANT_GARBAGE] = 2,
};

/* Points a worker passes (the supervisor's own would end the pool), and
 * the most passes to let by before dying. */
static const struct {
	const char *name;
	unsigned max_nth;
} points[] = {
    {"ready.journaled", 1},   {"ready.left", 1},
    {"ready.moved", 1},	      {"ready.counted", 1},
    {"release.journaled", 2}, {"release.left", 2},
    {"release.moved", 2},     {"release.counted", 2},
    {"recycle.journaled", 2}, {"recycle.left", 2},
    {"recycle.moved", 2},     {"recycle.counted", 2},
    {"lock.held", 10},	      {"unlock.before_seq", 10},
    {"evict.moved", 1},	      {"repair.rolled_back", 1},
    {"repair.rebuilt", 1},
};

static int pid_signal(int pidfd, int sig)
{
	return pidfd_send_signal(pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

static uint64_t rand_ms(struct chaos *c, uint64_t lo, uint64_t hi)
{
	return (lo + chaos_rand(&c->rng, hi - lo + 1)) * MS;
}

/* A pidfd for the target's worker, once sure the pid is still a child of
 * the supervisor and not a stranger that got it after the worker died. */
static int open_worker(struct chaos *c, struct target *t)
{
	uint64_t start;
	pid_t ppid;

	t->pidfd = pidfd_open(t->worker, 0);
	if (t->pidfd < 0)
		return -errno;
	if (chaos_proc_stat(t->worker, &ppid, &start) ||
	    ppid != c->creator_pid) {
		close(t->pidfd);
		return -ESRCH;
	}
	chaos_seen(c, t->worker);
	return 0;
}

/* A random slot in one of the states of mask, chosen state first so rare
 * states get their turn; its worker's pid and a pidfd for it. */
static int pick(struct injector *in, unsigned mask, struct target *t)
{
	const struct shm_segment *seg = in->snap;
	uint32_t by_state[SLOT_NSTATES][PICK_SLOTS], n[SLOT_NSTATES] = {0};
	unsigned states[SLOT_NSTATES], nstates = 0;
	const struct shm_slot *slots;
	int err = chaos_snapshot(in->c, in->snap);

	if (err)
		return err;
	slots = shm_slots(seg);
	for (uint32_t i = 0; i < MIN(seg->hdr.nslots, PICK_SLOTS); i++)
		if (slots[i].state < SLOT_NSTATES &&
		    (mask >> slots[i].state & 1))
			by_state[slots[i].state][n[slots[i].state]++] = i;
	for (unsigned s = 0; s < SLOT_NSTATES; s++)
		if (n[s])
			states[nstates++] = s;
	if (!nstates)
		return -ENOENT;

	t->state = states[chaos_rand(&in->c->rng, nstates)];
	t->slot = by_state[t->state][chaos_rand(&in->c->rng, n[t->state])];
	t->worker = slots[t->slot].pid;
	if (!t->worker)
		t->worker = chaos_worker_pid(in->c, t->slot);
	if (!t->worker)
		return -ESRCH;
	return open_worker(in->c, t);
}

static int do_kill(struct injector *in)
{
	struct target t;
	int err = pick(in, ANY_STATE, &t);

	if (err)
		return err;
	err = pid_signal(t.pidfd, SIGKILL);
	if (err) {
		close(t.pidfd);
		return err;
	}
	chaos_note(in->c, "SIGKILL worker %d of slot %u (%s)", (int)t.worker,
		   t.slot, shm_state_name(t.state));
	chaos_add_victim(in->c, CK_KILL, t.worker, t.pidfd, t.slot, now_ns());
	return 0;
}

/* A stopped worker may hold the pool's lock: everyone waits for it. */
static int do_stop(struct injector *in, bool then_kill)
{
	struct chaos *c = in->c;
	uint64_t pause = rand_ms(c, 50, then_kill ? 500 : 1500);
	struct target t;
	int err = pick(in, ANY_STATE, &t);

	if (err)
		return err;
	err = pid_signal(t.pidfd, SIGSTOP);
	chaos_note(c, "SIGSTOP worker %d of slot %u (%s) for %llu ms",
		   (int)t.worker, t.slot, shm_state_name(t.state),
		   (unsigned long long)(pause / MS));
	chaos_sleep_ns(pause);
	if (!then_kill) {
		pid_signal(t.pidfd, SIGCONT);
		close(t.pidfd);
		return err;
	}
	pid_signal(t.pidfd, SIGKILL);
	chaos_add_victim(c, CK_STOP_KILL, t.worker, t.pidfd, t.slot, now_ns());
	return err;
}

/* --- fault points, through the next worker spawned --- */

static void fault_spec(struct chaos *c, char *spec, size_t len)
{
	unsigned i = chaos_rand(&c->rng, ARRAY_SIZE(points));
	unsigned nth = 1 + chaos_rand(&c->rng, points[i].max_nth);

	snprintf(spec, len, "%s:%u:%s", points[i].name, nth,
		 chaos_rand(&c->rng, 2) ? "kill" : "exit");
}

/* Wait for a worker to take the plan; a warm request starts boots when
 * nothing else does. The taker's pid, or -errno. */
static pid_t wait_taken(struct injector *in)
{
	uint64_t start = now_ns();
	bool warmed = false;
	uint32_t started;
	pid_t pid;

	while ((pid = chaos_plan_taken(in->c)) == 0) {
		if (now_ns() > start + PLAN_WAIT_NS)
			break;
		if (!warmed && now_ns() > start + PLAN_WAIT_NS / 3) {
			vmpool_warm(in->pool, in->c->o.max_size, &started);
			warmed = true;
		}
		chaos_sleep_ns(5 * MS);
	}
	if (pid)
		return pid;
	/* Gone meanwhile: a worker took it after all. */
	if (chaos_plan_withdraw(in->c) != -ENOENT)
		return -ETIMEDOUT;
	pid = chaos_plan_taken(in->c);
	return pid > 0 ? pid : -ESRCH;
}

static int do_fault_point(struct injector *in)
{
	struct chaos *c = in->c;
	char spec[96];
	pid_t pid;
	int pidfd, err;

	fault_spec(c, spec, sizeof(spec));
	err = chaos_plan_fault(c, spec);
	if (err)
		return err;

	pid = wait_taken(in);
	chaos_note(c, "fault point %s armed in worker %d", spec, (int)pid);
	if (pid <= 0)
		return pid ? pid : -ESRCH;
	chaos_seen(c, pid);

	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0 && errno != ESRCH)
		return -errno;
	pthread_mutex_lock(&c->mu);
	c->fp_armed++;
	c->fp_exit_armed += strstr(spec, ":exit") != NULL;
	pthread_mutex_unlock(&c->mu);
	/* Its death, if the point is reached, is noticed by the monitor. */
	chaos_add_victim(c, CK_FAULT_POINT, pid, pidfd, SHM_NO_SLOT, 0);
	return 0;
}

/* --- the guest: stalls, hangs and garbage (ns backend) --- */

static int guest_of(struct injector *in, struct target *t, int *gfd)
{
	pid_t g = chaos_guest_pid(in->c, t->worker);

	if (!g)
		return -ESRCH;
	*gfd = pidfd_open(g, 0);
	return *gfd < 0 ? -errno : 0;
}

static int do_guest_stall(struct injector *in)
{
	uint64_t pause = rand_ms(in->c, 100, 1500);
	struct target t;
	int gfd, err = pick(in, READY_STATE, &t);

	if (err)
		return err;
	close(t.pidfd);
	err = guest_of(in, &t, &gfd);
	if (err)
		return err;

	err = pid_signal(gfd, SIGSTOP);
	chaos_note(in->c, "guest of slot %u (%s) stopped for %llu ms", t.slot,
		   shm_state_name(t.state), (unsigned long long)(pause / MS));
	chaos_sleep_ns(pause);
	pid_signal(gfd, SIGCONT);
	close(gfd);
	return err;
}

/* Lease a VM, stop its guest for good and release it: the worker's
 * recycle must give up on the guest and evict it. */
static int do_guest_hang(struct injector *in)
{
	struct vmpool_lease_info info;
	struct vmpool_lease *l;
	struct target t = {0};
	int gfd, err;

	err = vmpool_acquire(in->pool, ACQUIRE_TIMEOUT_NS, &l);
	if (err)
		return err;
	vmpool_lease_info(l, &info);
	t.slot = info.slot;
	t.worker = chaos_worker_pid(in->c, t.slot);
	t.pidfd = t.worker ? pidfd_open(t.worker, 0) : -1;
	err = t.pidfd < 0 ? -ESRCH : guest_of(in, &t, &gfd);
	if (err)
		goto out_release;

	err = pid_signal(gfd, SIGSTOP);
	close(gfd);
	chaos_note(in->c, "guest of slot %u stopped for good, then released",
		   t.slot);
	chaos_add_victim(in->c, CK_GUEST_HANG, t.worker, t.pidfd, t.slot,
			 now_ns());
	t.pidfd = -1;
out_release:
	if (t.pidfd >= 0)
		close(t.pidfd);
	vmpool_release(l);
	return err;
}

long chaos_garbage_frame(struct chaos *c, uint8_t *buf, size_t cap)
{
	switch (chaos_rand(&c->rng, 3)) {
	case 0: /* longer than any frame may be */
		proto_put_header(buf, PROTO_MAX_PAYLOAD + 1, PROTO_PONG, 0, 1);
		return PROTO_HDR_SIZE;
	case 1: /* a type no agent sends */
		return proto_build_empty(buf, cap, 0x7e7e, 1);
	default: /* an answer to a request nobody made */
		return proto_build_empty(buf, cap, PROTO_PONG, 0x7fff0001);
	}
}

/* Write into the guest's end of its channel, as if the agent had. */
static int do_guest_garbage(struct injector *in)
{
	uint8_t buf[64];
	struct target t;
	int gfd, chan, err = pick(in, READY_STATE, &t);
	long n;

	if (err)
		return err;
	err = guest_of(in, &t, &gfd);
	if (err)
		goto out_close;

	chan = pidfd_getfd(gfd, NS_CHANNEL_FD, 0);
	close(gfd);
	if (chan < 0) {
		err = -errno;
		goto out_close;
	}
	n = chaos_garbage_frame(in->c, buf, sizeof(buf));
	err = write_full(chan, buf, n);
	close(chan);
	chaos_note(in->c, "guest of slot %u (%s) sent %ld bytes of garbage",
		   t.slot, shm_state_name(t.state), n);
	if (!err) {
		chaos_add_victim(in->c, CK_GUEST_GARBAGE, t.worker, t.pidfd,
				 t.slot, now_ns());
		return 0;
	}
out_close:
	close(t.pidfd);
	return err;
}

/* On kvm the guest runs inside its worker: a tenant breaks it from
 * within. */
static int inject_kvm_guest(struct injector *in, enum chaos_kind k)
{
	switch (k) {
	case CK_GUEST_STALL:
		return chaos_guest_stall(in->c, in->pool);
	case CK_GUEST_HANG:
		return chaos_guest_hang(in->c, in->pool);
	case CK_GUEST_GARBAGE:
		return chaos_guest_garbage(in->c, in->pool);
	case CK_GUEST_PANIC:
		return chaos_guest_panic(in->c, in->pool);
	default:
		return -EINVAL;
	}
}

static int inject(struct injector *in, enum chaos_kind k)
{
	if (in->c->o.kvm && k >= CK_GUEST_STALL && k <= CK_GUEST_PANIC)
		return inject_kvm_guest(in, k);
	switch (k) {
	case CK_KILL:
		return do_kill(in);
	case CK_STOP_CONT:
		return do_stop(in, false);
	case CK_STOP_KILL:
		return do_stop(in, true);
	case CK_FAULT_POINT:
		return do_fault_point(in);
	case CK_GUEST_STALL:
		return do_guest_stall(in);
	case CK_GUEST_HANG:
		return do_guest_hang(in);
	case CK_GUEST_GARBAGE:
		return do_guest_garbage(in);
	case CK_TENANT_VANISH:
		return chaos_tenant_vanish(in->c, &in->c->rng);
	case CK_TENANT_GARBAGE:
		return chaos_tenant_garbage(in->c, &in->c->rng);
	default:
		return -EINVAL;
	}
}

static enum chaos_kind pick_kind(struct chaos *c)
{
	unsigned total = 0, r;

	for (int k = 0; k < CK_NKINDS; k++)
		if (c->o.kinds >> k & 1)
			total += kind_weight[k];
	r = chaos_rand(&c->rng, total);
	for (int k = 0; k < CK_NKINDS; k++) {
		if (!(c->o.kinds >> k & 1))
			continue;
		if (r < kind_weight[k])
			return k;
		r -= kind_weight[k];
	}
	return CK_KILL;
}

static bool more(struct chaos *c, uint64_t done, uint64_t tries, uint64_t end)
{
	if (c->o.count && done >= c->o.count)
		return false;
	/* Faults that find nothing to hit must not spin for ever. */
	if (c->o.count && tries >= 4 * c->o.count + 20)
		return false;
	return now_ns() < end;
}

void chaos_faults_run(struct chaos *c)
{
	struct injector in = {.c = c, .snap = malloc(c->snap_len)};
	uint64_t end =
	    c->o.duration_ns ? now_ns() + c->o.duration_ns : UINT64_MAX;
	uint64_t done = 0, tries = 0;

	if (!in.snap || vmpool_connect(c->sock, &in.pool)) {
		chaos_note(c, "the injector cannot start: %s",
			   in.pool ? vmpool_error(in.pool) : "out of memory");
		goto out_free;
	}

	for (; more(c, done, tries, end); tries++) {
		enum chaos_kind k;
		int err;

		chaos_sleep_ns(c->o.interval_ns / 2 +
			       chaos_rand(&c->rng, c->o.interval_ns + 1));
		k = pick_kind(c);
		err = inject(&in, k);
		pthread_mutex_lock(&c->mu);
		if (err)
			c->skipped[k]++;
		else
			c->faults[k]++;
		pthread_mutex_unlock(&c->mu);
		done += !err;
		if (err)
			chaos_note(c, "%s: nothing done: %s",
				   chaos_kind_name(k), strerror(-err));
	}
out_free:
	vmpool_close(in.pool);
	free(in.snap);
}
