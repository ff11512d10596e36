/* Workers as an explicit state machine: spawn, messages, reap, replenish. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "supervisor/spawn.h"
#include "supervisor/supervisor.h"

static const char *const wstate_names[W_NSTATES] = {
    "booting", "idle", "leased", "stopping", "gone",
};

static const char *const wevent_names[WEV_NEVENTS] = {
    "READY", "BOOT_FAIL", "RECYCLED", "EVICTED",
    "lease", "stop",	  "exit",     "kill",
};

/* The slot's state in the pool, read under the lock. */
static int slot_state(struct sv *sv, uint32_t slot)
{
	int state;

	if (shm_lock(sv->shm) < 0)
		return -1;
	state = shm_slots(shm_segment(sv->shm))[slot].state;
	shm_unlock(sv->shm);
	return state;
}

static int send_ctl(int fd, const struct ctl_msg *m, int pass_fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof(*m)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *c;

	if (pass_fd >= 0) {
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}

	if (sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

uint32_t sv_worker_generation(const struct sv_worker *w)
{
	uint32_t gen = 0;

	if (shm_lock(w->sv->shm) >= 0) {
		gen = shm_slots(shm_segment(w->sv->shm))[w->slot].generation;
		shm_unlock(w->sv->shm);
	}
	return gen;
}

int sv_worker_lease(struct sv_worker *w, int fd, uint32_t uid, uint32_t id,
		    uint64_t t0, uint64_t value, uint32_t generation)
{
	struct ctl_msg m = {
	    .type = CTL_LEASE,
	    .slot = w->slot,
	    .uid = uid,
	    .generation = generation,
	    .id = id,
	    .t0 = t0,
	    .value = value,
	};

	return send_ctl(w->ctl_fd, &m, fd);
}

/* --- actions: each returns the worker's next state --- */

static enum sv_wstate ignore(struct sv_worker *w)
{
	return w->state;
}

static enum sv_wstate do_stop(struct sv_worker *w)
{
	struct ctl_msg m = {.type = CTL_STOP, .slot = w->slot};
	int rc = send_ctl(w->ctl_fd, &m, -1);

	if (rc)
		pr_debug("slot %u: CTL_STOP not sent: %s", w->slot,
			 strerror(-rc));
	w->stop_ns = now_ns();
	return W_STOPPING;
}

static enum sv_wstate do_kill(struct sv_worker *w)
{
	pr_warn("slot %u: worker %d did not stop; killing it", w->slot,
		(int)w->pid);
	if (pidfd_send_signal(w->pidfd, SIGKILL, NULL, 0) < 0)
		pr_debug("slot %u: pidfd_send_signal: %s", w->slot,
			 strerror(errno));
	w->killed = true;
	return W_STOPPING;
}

static enum sv_wstate violation(struct sv_worker *w)
{
	pr_warn("slot %u: worker %d broke the control protocol; stopping it",
		w->slot, (int)w->pid);
	return do_stop(w);
}

/* A VM leased before anyone could take it (the tenant gave up or left)
 * gets a connection already closed at the far end: the worker sees a
 * tenant leave at once and puts the VM back in the idle ring. */
static int orphan_lease(struct sv_worker *w)
{
	int sp[2], rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	close(sp[1]);
	rc = sv_worker_lease(w, sp[0], 0, 0, now_ns(), 0,
			     sv_worker_generation(w));
	close(sp[0]);
	return rc;
}

static enum sv_wstate on_ready(struct sv_worker *w)
{
	struct sv *sv = w->sv;
	int state = slot_state(sv, w->slot);

	sv->boot_failures = 0;
	w->ready = true;
	pr_debug("slot %u: worker %d ready (%s)", w->slot, (int)w->pid,
		 shm_state_name(state));

	if (state == SLOT_IDLE)
		return sv->draining ? do_stop(w) : W_IDLE;
	if (state != SLOT_LEASED)
		return do_stop(w);

	if (w->parked) {
		struct sv_tenant *t = w->parked;

		w->parked = NULL;
		sv_tenant_boot_ready(t, w);
	} else if (orphan_lease(w)) {
		return do_stop(w);
	}
	return W_LEASED;
}

static enum sv_wstate on_boot_fail(struct sv_worker *w)
{
	pr_warn("slot %u: worker %d failed to boot: %s", w->slot, (int)w->pid,
		w->why);
	if (w->parked) {
		sv_tenant_boot_lost(w->parked, w->why);
		w->parked = NULL;
	}
	/* It exits by itself; the stop time starts the kill clock. */
	w->stop_ns = now_ns();
	return W_STOPPING;
}

static enum sv_wstate on_recycled(struct sv_worker *w)
{
	if (w->leases_ahead) {
		w->leases_ahead--;
		return W_LEASED;
	}
	return w->sv->draining ? do_stop(w) : W_IDLE;
}

/* The READY of a worker already leased (see sv_worker_leasable). */
static enum sv_wstate on_late_ready(struct sv_worker *w)
{
	if (!w->leases_ahead)
		return violation(w);
	w->leases_ahead--;
	w->ready = true;
	w->sv->boot_failures = 0;
	return W_LEASED;
}

static enum sv_wstate on_evicted(struct sv_worker *w)
{
	pr_debug("slot %u: worker %d evicted its VM", w->slot, (int)w->pid);
	w->stop_ns = now_ns();
	return W_STOPPING;
}

static enum sv_wstate on_lease(struct sv_worker *w)
{
	if (w->state != W_IDLE)
		w->leases_ahead++;
	return W_LEASED;
}

/*
 * The slot table is the truth: a worker makes its slot idle and then
 * says READY or RECYCLED, so the pool can lease the slot before that
 * message is read here. The worker reads our CTL_LEASE after it, so the
 * lease is safe to send; the message then arrives late and is expected.
 */
bool sv_worker_leasable(const struct sv_worker *w)
{
	if (w->state == W_IDLE)
		return true;
	if (w->parked)
		return false;
	return w->state == W_BOOTING || w->state == W_LEASED;
}

static void count_boot_failure(struct sv *sv, struct sv_worker *w)
{
	uint64_t delay;

	if (w->exit_code == WORKER_EXIT_PERMFAIL) {
		sv->permfail = true;
		snprintf(sv->permfail_why, sizeof(sv->permfail_why),
			 "worker exited %d (permanent failure)%s%s",
			 w->exit_code, w->why[0] ? ": " : "", w->why);
		pr_err("pool %s stops booting VMs: %s", sv->opt.name,
		       sv->permfail_why);
		return;
	}

	sv->boot_failures++;
	delay = SV_BACKOFF_MIN << MIN(sv->boot_failures - 1, 20u);
	delay = MIN(delay, SV_BACKOFF_MAX);
	sv->boot_resume_ns = now_ns() + delay;
	pr_warn("slot %u: boot failed (exit %d), %u in a row; next boot in "
		"%llu ms",
		w->slot, w->exit_code, sv->boot_failures,
		(unsigned long long)(delay / 1000000));
}

/* A worker that never said READY failed its boot, unless it left
 * cleanly when told to; after READY, any exit nobody asked for is a
 * crash. */
static void note_exit(struct sv *sv, struct sv_worker *w)
{
	if (!w->ready) {
		if (w->exit_code || w->boot_failed)
			count_boot_failure(sv, w);
		if (w->parked)
			sv_tenant_boot_lost(w->parked,
					    "the VM's worker died booting");
		w->parked = NULL;
		return;
	}
	if (w->state != W_STOPPING || (w->exit_code && !w->killed)) {
		pr_warn("slot %u: worker %d died (%s, exit %d)", w->slot,
			(int)w->pid, wstate_names[w->state], w->exit_code);
		sv->respawns_due++;
	}
}

static enum sv_wstate on_gone(struct sv_worker *w)
{
	struct sv *sv = w->sv;
	int rc;

	note_exit(sv, w);

	rc = pool_exit(sv->shm, w->slot, now_ns());
	if (rc)
		pr_warn("slot %u: pool_exit: %s", w->slot, shm_strerror(rc));
	sv->by_slot[w->slot] = NULL;

	ioloop_cancel(&sv->loop, &w->ctl_op);
	close(w->ctl_fd);
	close(w->pidfd);
	w->ctl_fd = w->pidfd = -1;
	return W_GONE;
}

typedef enum sv_wstate (*action_fn)(struct sv_worker *w);

/* state x event -> action. The action returns the next state. A booting
 * worker whose VM the pool did not need says EVICTED and exits; late
 * messages of a stopping worker change nothing. */
/* clang-format off */
static const action_fn transitions[W_NSTATES][WEV_NEVENTS] = {
	/*		READY	   BOOT_FAIL	 RECYCLED     EVICTED
	 *		lease	   stop		 exit	      kill */
	[W_BOOTING] = { on_ready,  on_boot_fail, violation,   on_evicted,
			on_lease,  do_stop,	 on_gone,     ignore },
	[W_IDLE] =    { violation, violation,	 violation,   violation,
			on_lease,  do_stop,	 on_gone,     ignore },
	[W_LEASED] =  { on_late_ready, violation, on_recycled, on_evicted,
			on_lease,  do_stop,	 on_gone,     ignore },
	[W_STOPPING] = { ignore,   ignore,	 ignore,      ignore,
			violation, ignore,	 on_gone,     do_kill },
	[W_GONE] =    { ignore,	   ignore,	 ignore,      ignore,
			ignore,	   ignore,	 ignore,      ignore },
};
/* clang-format on */

static void maybe_free(struct sv_worker *w)
{
	struct sv_worker **p;

	if (w->state != W_GONE || w->ctl_op.busy || w->pid_op.busy)
		return;
	for (p = &w->sv->workers; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			break;
		}
	free(w);
}

void sv_worker_event(struct sv_worker *w, enum sv_wevent ev)
{
	enum sv_wstate was = w->state;

	w->state = transitions[was][ev](w);
	if (w->state != was)
		pr_debug("slot %u: worker %d %s: %s -> %s", w->slot,
			 (int)w->pid, wevent_names[ev], wstate_names[was],
			 wstate_names[w->state]);
}

static int ctl_event(const struct ctl_msg *m, enum sv_wevent *ev)
{
	switch (m->type) {
	case CTL_READY:
		*ev = WEV_READY;
		return 0;
	case CTL_BOOT_FAIL:
		*ev = WEV_BOOT_FAIL;
		return 0;
	case CTL_RECYCLED:
		*ev = WEV_RECYCLED;
		return 0;
	case CTL_EVICTED:
		*ev = WEV_EVICTED;
		return 0;
	}
	return -EBADMSG;
}

static void on_ctl_msg(struct sv_worker *w, const struct ctl_msg *m, int fd)
{
	enum sv_wevent ev;

	if (m->type == CTL_RETURN && m->slot == w->slot && fd >= 0) {
		sv_tenant_adopt(w->sv, fd);
		return;
	}
	if (fd >= 0)
		close(fd);
	if (m->slot != w->slot || ctl_event(m, &ev)) {
		pr_warn("slot %u: worker %d sent message type %u for slot %u",
			w->slot, (int)w->pid, m->type, m->slot);
		sv_worker_event(w, WEV_STOP);
		return;
	}
	if (ev == WEV_BOOT_FAIL) {
		w->boot_failed = true;
		memcpy(w->why, m->text, sizeof(w->why));
		w->why[sizeof(w->why) - 1] = '\0';
	}
	sv_worker_event(w, ev);
}

/* One message and the fd it carried (-1: none; only the first is kept). */
static ssize_t recv_ctl(int fd, struct ctl_msg *m, int *passed)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
	struct msghdr mh = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = cbuf.buf,
	    .msg_controllen = sizeof(cbuf.buf),
	};
	struct cmsghdr *c;
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	*passed = -1;
	if (n < 0)
		return n;
	c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
	    c->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(passed, CMSG_DATA(c), sizeof(int));
	return n;
}

/* Read every message waiting; EOF means the worker is exiting, which
 * its pidfd reports. */
static void read_ctl(struct sv_worker *w)
{
	struct ctl_msg m;
	ssize_t n;
	int fd;

	while (w->state != W_GONE) {
		n = recv_ctl(w->ctl_fd, &m, &fd);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || errno != EAGAIN)
				ioloop_cancel(&w->sv->loop, &w->ctl_op);
			return;
		}
		if (n != sizeof(m)) {
			pr_warn("slot %u: worker %d sent a %zd-byte message",
				w->slot, (int)w->pid, n);
			if (fd >= 0)
				close(fd);
			sv_worker_event(w, WEV_STOP);
			continue;
		}
		on_ctl_msg(w, &m, fd);
	}
}

/* The watch stays armed (the loop arms it again when the kernel ends
 * it) until read_ctl sees EOF or the worker is gone: both cancel it. */
static void on_ctl_ready(struct ioloop_op *op, int res, unsigned flags)
{
	struct sv_worker *w = op->opaque;

	if (res > 0 && w->state != W_GONE)
		read_ctl(w);
	maybe_free(w);
}

static void reap(struct sv_worker *w)
{
	siginfo_t si = {0};

	if (waitid(P_PIDFD, w->pidfd, &si, WEXITED | WNOHANG) < 0 ||
	    si.si_pid == 0)
		return;
	w->exit_code =
	    si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
	sv_worker_event(w, WEV_EXIT);
}

static void on_pid_ready(struct ioloop_op *op, int res, unsigned flags)
{
	struct sv_worker *w = op->opaque;

	if (w->state != W_GONE)
		reap(w);
	if (w->state != W_GONE && !op->busy)
		ioloop_poll_once(&w->sv->loop, op, w->pidfd, POLLIN);
	maybe_free(w);
}

static int watch(struct sv *sv, struct sv_worker *w)
{
	int rc;

	w->ctl_op.done = on_ctl_ready;
	w->ctl_op.opaque = w;
	w->pid_op.done = on_pid_ready;
	w->pid_op.opaque = w;

	rc = ioloop_poll(&sv->loop, &w->ctl_op, w->ctl_fd, POLLIN);
	if (rc)
		return rc;
	return ioloop_poll_once(&sv->loop, &w->pid_op, w->pidfd, POLLIN);
}

void sv_slot_abandon(struct sv *sv, uint32_t slot)
{
	uint64_t now = now_ns();

	pool_boot_done(sv->shm, slot, 0, false, now, NULL);
	pool_exit(sv->shm, slot, now);
}

int sv_worker_spawn(struct sv *sv, uint32_t slot, enum boot_purpose why,
		    struct sv_worker **out)
{
	struct sv_worker *w = calloc(1, sizeof(*w));
	struct sv_spawned sp;
	int rc;

	if (!w)
		return -ENOMEM;

	rc = sv_spawn(&sv->opt, slot, &sp);
	if (rc) {
		free(w);
		return rc;
	}

	w->sv = sv;
	w->slot = slot;
	w->purpose = why;
	w->state = W_BOOTING;
	w->pid = sp.pid;
	w->pidfd = sp.pidfd;
	w->ctl_fd = sp.ctl_fd;
	w->started_ns = now_ns();
	w->next = sv->workers;
	sv->workers = w;
	sv->by_slot[slot] = w;

	/* Without its watches it could never be reaped: end it now. */
	if (watch(sv, w))
		do_kill(w);
	pr_debug("slot %u: worker %d started", slot, (int)w->pid);
	*out = w;
	return 0;
}

static enum boot_purpose next_purpose(struct sv *sv)
{
	if (sv->respawns_due) {
		sv->respawns_due--;
		return BOOT_RESPAWN;
	}
	return BOOT_REPLENISH;
}

/* What one look at the slot table under the lock tells each tick. */
struct slots_view {
	uint32_t idle;
	int recycling;
	uint64_t expiry; /* when the oldest idle VM expires */
};

static void boot_for_pool(struct sv *sv, uint64_t now, int n)
{
	for (int i = 0; i < n; i++) {
		enum boot_purpose why = next_purpose(sv);
		struct sv_worker *w;
		uint32_t slot;
		int rc;

		if (pool_boot_start(sv->shm, why, now, &slot))
			return;
		rc = sv_worker_spawn(sv, slot, why, &w);
		if (rc) {
			pr_err("slot %u: cannot start a worker: %s", slot,
			       strerror(-rc));
			sv_slot_abandon(sv, slot);
			sv->boot_resume_ns = now + SV_BACKOFF_MIN;
			return;
		}
	}
}

/*
 * Bring idle VMs, with boots under way, up to min_size; returns when to
 * look again. A VM being recycled is idle again within a few guest round
 * trips, and a shortfall that lasts less than SV_REFILL_SETTLE_NS while
 * VMs are still idle is mostly leases coming back: booting for either
 * would only make the pool evict as many VMs once they are back, and
 * tenants leasing fast would keep VMs booting. An empty ring is refilled
 * at once.
 */
static uint64_t replenish(struct sv *sv, uint64_t now,
			  const struct slots_view *v)
{
	int n = pool_replenish_count(sv->shm) - v->recycling;
	uint64_t due;

	if (n <= 0) {
		sv->short_since = 0;
		return UINT64_MAX;
	}
	if (!sv->short_since)
		sv->short_since = now;
	due = sv->short_since + SV_REFILL_SETTLE_NS;
	if (v->idle && now < due)
		return due;

	sv->short_since = 0;
	boot_for_pool(sv, now, n);
	return UINT64_MAX;
}

/* Slots the pool has marked dead (expired, evicted, dropped): their
 * workers stop. */
static void stop_dead(struct sv *sv, uint64_t now, struct slots_view *v)
{
	struct shm_segment *seg = shm_segment(sv->shm);
	uint8_t state[SHM_MAX_SLOTS];

	*v = (struct slots_view){.expiry = now + SV_TICK_NS};
	if (shm_lock(sv->shm) < 0)
		return;
	for (uint32_t i = 0; i < sv->nslots; i++)
		state[i] = shm_slots(seg)[i].state;
	v->idle = seg->ring.count;
	v->expiry = UINT64_MAX;
	if (seg->ring.count)
		v->expiry = shm_slots(seg)[shm_ring_at(seg, 0)].last_used_ns +
			    seg->config.max_idle_ns;
	shm_unlock(sv->shm);

	for (uint32_t i = 0; i < sv->nslots; i++) {
		struct sv_worker *w = sv->by_slot[i];

		v->recycling += state[i] == SLOT_RECYCLING;
		if (w && state[i] == SLOT_DEAD && w->state != W_STOPPING)
			sv_worker_event(w, WEV_STOP);
	}
}

static uint64_t kill_stuck(struct sv *sv, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (struct sv_worker *w = sv->workers; w; w = w->next) {
		uint64_t due = w->stop_ns + SV_KILL_AFTER_NS;

		if (w->state != W_STOPPING || w->killed)
			continue;
		if (now >= due)
			sv_worker_event(w, WEV_KILL);
		else
			next = MIN(next, due);
	}
	return next;
}

uint64_t sv_workers_tick(struct sv *sv, uint64_t now)
{
	uint64_t next = now + SV_TICK_NS;
	struct slots_view v;
	int rc;

	if (!sv->draining) {
		rc = pool_expire(sv->shm, now);
		if (rc > 0)
			pr_debug("%d idle VMs expired", rc);
	}

	stop_dead(sv, now, &v);
	next = MIN(next, v.expiry);
	next = MIN(next, kill_stuck(sv, now));

	if (!sv->draining && !sv->permfail) {
		if (now >= sv->boot_resume_ns)
			next = MIN(next, replenish(sv, now, &v));
		else
			next = MIN(next, sv->boot_resume_ns);
	}
	return next;
}

unsigned sv_workers_live(const struct sv *sv)
{
	unsigned n = 0;

	for (const struct sv_worker *w = sv->workers; w; w = w->next)
		n += w->state != W_GONE;
	return n;
}

void sv_workers_stop_all(struct sv *sv, bool leased_too)
{
	struct sv_worker *w, *next;

	for (w = sv->workers; w; w = next) {
		next = w->next;
		if (w->state == W_LEASED && !leased_too)
			continue;
		sv_worker_event(w, WEV_STOP);
	}
}

/* The last resort on the way out: kill, then reap every one of them. */
void sv_workers_kill_all(struct sv *sv)
{
	for (struct sv_worker *w = sv->workers; w; w = w->next) {
		if (w->state == W_GONE)
			continue;
		pidfd_send_signal(w->pidfd, SIGKILL, NULL, 0);
		waitid(P_PIDFD, w->pidfd, &(siginfo_t){0}, WEXITED);
		w->exit_code = 128 + SIGKILL;
		w->killed = true;
		w->state = W_STOPPING;
		on_gone(w);
		w->state = W_GONE;
	}
}

/* Once the loop is gone no op completes: everything goes. */
void sv_workers_free_all(struct sv *sv)
{
	while (sv->workers) {
		struct sv_worker *w = sv->workers;

		sv->workers = w->next;
		if (w->ctl_fd >= 0)
			close(w->ctl_fd);
		if (w->pidfd >= 0)
			close(w->pidfd);
		free(w);
	}
}
