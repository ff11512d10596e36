/* The worker's watchdog: a guest that stops answering PING is evicted. */
#include "worker/worker.h"

#include "common/log.h"

/*
 * The timer is the one boot and recycle use: in WORKER_IDLE and
 * WORKER_LEASED nothing else needs it. While leased the PING goes out at
 * every interval too, busy or not: the agent answers it while commands
 * run, and a tenant's silence says nothing of the guest's.
 */
void worker_watchdog_arm(struct worker *w)
{
	w->wd.waiting = false;
	worker_arm_timer(w, w->o.idle_ping_ns);
}

static void send_ping(struct worker *w)
{
	uint8_t buf[PROTO_HDR_SIZE];
	long n;

	w->wd.ping_id = worker_host_id(w);
	n = proto_build_empty(buf, sizeof(buf), PROTO_PING, w->wd.ping_id);
	if (n < 0) {
		worker_evict(w, "a host request does not fit a frame");
		return;
	}
	worker_to_guest(w, buf, n);
}

/* A PING still unanswered from before (a recycle came between) is
 * waited for rather than sent again: the agent answers in order. */
void worker_watchdog_tick(struct worker *w)
{
	if (w->wd.waiting) {
		pr_debug("no PONG within the guest timeout");
		worker_evict(w, "the guest stopped answering");
		return;
	}

	if (!w->wd.ping_id)
		send_ping(w);
	if (w->state == WORKER_DONE)
		return;
	w->wd.waiting = true;
	worker_arm_timer(w, w->o.guest_timeout_ns);
}

/* The PING's answer may come in any state: a recycle started while it
 * was on its way. The interval starts again only where it runs. */
bool worker_watchdog_reply(struct worker *w, const struct proto_frame *f)
{
	if (!w->wd.ping_id || f->id != w->wd.ping_id)
		return false;
	w->wd.ping_id = 0;
	if (f->type != PROTO_PONG) {
		worker_evict(w, "the guest refused the watchdog's PING");
		return true;
	}
	if (w->wd.waiting &&
	    (w->state == WORKER_IDLE || w->state == WORKER_LEASED))
		worker_watchdog_arm(w);
	return true;
}
