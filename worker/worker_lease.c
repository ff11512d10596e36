/* The slot's life after boot: lease, relay, release, recycle, evict. */
#include "worker/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/tenant.h"
#include "shm/pool.h"

/* CLEAN waits up to 2 s for the tenant's processes; give it room. */
#define CLEAN_SLACK_NS (5ull * 1000000000)

/* A copy of this worker's slot, read under the lock. */
static int read_slot(struct worker *w, struct shm_slot *out)
{
	int err = shm_lock(w->shm);

	if (err < 0)
		return err;
	*out = shm_slots(shm_segment(w->shm))[w->o.slot];
	shm_unlock(w->shm);
	return 0;
}

void worker_finish(struct worker *w, int code)
{
	uint32_t ids[RELAY_MAX_OPEN];
	unsigned n = relay_tenant_ids(&w->relay, ids, RELAY_MAX_OPEN);

	if (w->state == WORKER_DONE)
		return;
	if (!w->lost_msg[0])
		snprintf(w->lost_msg, sizeof(w->lost_msg), "VM lost");
	if (w->tenant && !w->tenant->draining) {
		for (unsigned i = 0; i < n; i++)
			worker_tenant_error(w, ids[i], TENANT_E_VM_LOST,
					    w->lost_msg);
		if (!n)
			worker_tenant_error(w, 0, TENANT_E_VM_LOST,
					    w->lost_msg);
	}
	worker_tenant_close(w);
	worker_arm_timer(w, 0);
	w->state = WORKER_DONE;
	w->exit_code = code;
}

void worker_boot_failed(struct worker *w, int err, int code, const char *why)
{
	pr_err("boot failed: %s", why);
	pool_boot_done(w->shm, w->o.slot, getpid(), false, now_ns(), NULL);
	worker_send_ctl(w, CTL_BOOT_FAIL, err, 0, why);
	worker_finish(w, code);
}

void worker_guest_lost(struct worker *w, const char *why)
{
	if (w->state == WORKER_DONE)
		return;
	if (w->state == WORKER_BOOTING) {
		worker_boot_failed(w, -EPIPE, WORKER_EXIT_TEMPFAIL, why);
		return;
	}
	pr_err("%s", why);
	snprintf(w->lost_msg, sizeof(w->lost_msg), "VM lost: %s", why);
	worker_finish(w, WORKER_EXIT_GUEST_LOST);
	worker_refuse_leases(w, TENANT_E_VM_LOST, w->lost_msg);
}

/* Tell every open request of the tenant why its guest was evicted. */
static void tell_tenant_evicted(struct worker *w, const char *why)
{
	uint32_t ids[RELAY_MAX_OPEN];
	unsigned n = relay_tenant_ids(&w->relay, ids, RELAY_MAX_OPEN);
	char msg[200];

	if (!w->tenant || w->tenant->draining)
		return;
	snprintf(msg, sizeof(msg), "guest evicted: %s", why);
	for (unsigned i = 0; i < n; i++)
		worker_tenant_error(w, ids[i], TENANT_E_GUEST, msg);
	if (!n)
		worker_tenant_error(w, 0, TENANT_E_GUEST, msg);
	if (w->tenant)
		w->tenant->draining = true;
}

/* Move the slot to dead from wherever it is; result names why. */
static void slot_dead(struct worker *w, enum recycle_result result)
{
	uint64_t now = now_ns();
	bool hc;

	int err = 0;

	if (w->state == WORKER_LEASED)
		err = pool_release(w->shm, w->o.slot, now, &hc);
	if (!err && (w->state == WORKER_LEASED || w->state == WORKER_RECYCLING))
		err = pool_recycle_done(w->shm, w->o.slot, result, now, NULL);
	else if (w->state == WORKER_IDLE)
		err = pool_evict(w->shm, w->o.slot, now);
	/* The supervisor then sees a crash, and the pool stays right. */
	if (err)
		pr_warn("marking the slot dead: %s", shm_strerror(err));
}

static void evict_for(struct worker *w, enum recycle_result result,
		      const char *why)
{
	if (w->state == WORKER_DONE)
		return;
	if (w->state == WORKER_BOOTING) {
		worker_guest_lost(w, why);
		return;
	}
	pr_warn("evicting the guest: %s", why);
	tell_tenant_evicted(w, why);
	slot_dead(w, result);
	worker_send_ctl(w, CTL_EVICTED, 0, 0, why);
	snprintf(w->lost_msg, sizeof(w->lost_msg), "guest evicted: %s", why);
	worker_finish(w, WORKER_EXIT_OK);
	worker_refuse_leases(w, TENANT_E_GUEST, w->lost_msg);
}

void worker_evict(struct worker *w, const char *why)
{
	evict_for(w, RECYCLE_NOT_READY, why);
}

/* The agent said HELLO: report the boot; the pool says where it goes. */
static void boot_ready(struct worker *w, const struct proto_frame *f)
{
	uint32_t version, evicted;
	struct shm_slot s;
	const char *text;
	uint64_t caps;
	int err;

	if (f->type != PROTO_HELLO ||
	    proto_parse_hello(f, &version, &caps, &text)) {
		worker_guest_lost(w, "the agent's first frame is not a HELLO");
		return;
	}
	if (version != PROTO_VERSION) {
		/* The image does not match this build: it never will. */
		worker_boot_failed(w, -EPROTONOSUPPORT, WORKER_EXIT_PERMFAIL,
				   "the agent speaks another protocol version");
		return;
	}
	worker_arm_timer(w, 0);
	pr_info("guest ready: %s", text);

	err = pool_boot_done(w->shm, w->o.slot, getpid(), true, now_ns(),
			     &evicted);
	if (!err)
		err = read_slot(w, &s);
	if (err) {
		pr_err("pool_boot_done: %s", shm_strerror(err));
		worker_send_ctl(w, CTL_BOOT_FAIL, err, 0, "pool_boot_done");
		worker_finish(w, WORKER_EXIT_PERMFAIL);
		return;
	}

	if (s.state == SLOT_DEAD) {
		/* A warm boot beyond max_size: nobody wants this VM. */
		worker_send_ctl(w, CTL_EVICTED, 0, evicted, "not needed");
		worker_finish(w, WORKER_EXIT_OK);
		return;
	}
	w->state = WORKER_IDLE;
	w->next_lease_is_miss = s.state == SLOT_LEASED;
	worker_watchdog_arm(w);
	worker_send_ctl(w, CTL_READY, 0, evicted, text);
}

static void host_request(struct worker *w, const void *frame, long len)
{
	if (len < 0) {
		worker_evict(w, "a host request does not fit a frame");
		return;
	}
	worker_to_guest(w, frame, len);
}

/* Queued only: the request after it is sent in the same write, so the
 * agent wakes once for both. */
static void host_request_queued(struct worker *w, const void *frame, long len)
{
	if (len < 0)
		worker_evict(w, "a host request does not fit a frame");
	else if (relay_queue_put(&w->to_guest, frame, len))
		worker_evict(w, "out of memory queueing for the guest");
}

uint32_t worker_host_id(struct worker *w)
{
	w->next_host_id = (w->next_host_id + 1) & ~TENANT_ID_HOST;
	if (!w->next_host_id)
		w->next_host_id = 1;
	return TENANT_ID_HOST | w->next_host_id;
}

static void send_clean(struct worker *w)
{
	uint8_t buf[PROTO_HDR_SIZE];

	w->rc.clean_id = worker_host_id(w);
	host_request(
	    w, buf,
	    proto_build_empty(buf, sizeof(buf), PROTO_CLEAN, w->rc.clean_id));
}

/* Ping (is the guest still ready?), then the health check or the clean:
 * the agent answers in order. The clean waits for a health check to end,
 * as it kills every command. */
static void recycle_start(struct worker *w, bool health_check)
{
	const char *argv[] = {"/bin/true", NULL};
	struct proto_exec_req req = {
	    .argv = argv,
	    .timeout_ns = w->o.health_timeout_ns,
	};
	uint8_t buf[256];

	memset(&w->rc, 0, sizeof(w->rc));
	w->rc.ping_id = worker_host_id(w);
	w->rc.hc_wanted = health_check;
	w->state = WORKER_RECYCLING;
	worker_arm_timer(w, w->o.health_timeout_ns + CLEAN_SLACK_NS);

	host_request_queued(
	    w, buf,
	    proto_build_empty(buf, sizeof(buf), PROTO_PING, w->rc.ping_id));
	if (w->state != WORKER_RECYCLING)
		return;
	if (!health_check) {
		send_clean(w);
		return;
	}
	w->rc.hc_id = worker_host_id(w);
	host_request(w, buf,
		     proto_build_exec(buf, sizeof(buf), w->rc.hc_id, &req));
}

/* End the tenant's open writes in the agent, so its table empties. */
static void end_orphan_writes(struct worker *w)
{
	uint32_t ids[RELAY_MAX_OPEN];
	unsigned n = relay_orphan_all(&w->relay, ids, RELAY_MAX_OPEN);
	uint8_t buf[PROTO_HDR_SIZE];

	for (unsigned i = 0; i < n && w->state != WORKER_DONE; i++)
		worker_to_guest(w, buf,
				proto_build_empty(buf, sizeof(buf),
						  PROTO_WRITE_END, ids[i]));
}

/* The slot leaves the tenant: recycling in the pool. 0, or -errno when
 * the worker is done. */
static int lease_leave(struct worker *w, bool *health_check)
{
	int err;

	end_orphan_writes(w);
	if (w->state == WORKER_DONE)
		return -EPIPE;
	err = pool_release(w->shm, w->o.slot, now_ns(), health_check);
	if (err) {
		pr_err("pool_release: %s", shm_strerror(err));
		worker_finish(w, WORKER_EXIT_GUEST_LOST);
	}
	return err;
}

/* The lease is over (the tenant left). */
static void lease_end(struct worker *w)
{
	bool health_check = false;

	if (w->state == WORKER_LEASED && !lease_leave(w, &health_check))
		recycle_start(w, health_check);
}

void worker_tenant_gone(struct worker *w)
{
	if (w->state != WORKER_LEASED)
		return;
	pr_info("the tenant left without RELEASE");
	worker_tenant_close(w);
	lease_end(w);
}

/* RELEASE's flags: none, or one byte of TENANT_RELEASE_*; -EBADMSG. */
static int release_flags(const struct proto_frame *f, uint8_t *flags)
{
	struct proto_cur c;

	*flags = 0;
	if (!f->len)
		return 0;
	proto_cur_init(&c, f);
	*flags = proto_get_u8(&c);
	if (proto_cur_done(&c) || (*flags & ~TENANT_RELEASE_KEEP))
		return -EBADMSG;
	return 0;
}

/* The slot is released before the OK: a tenant keeping its connection
 * may ACQUIRE again as soon as it has it, and must not find its old
 * lease still counted against it. */
static void release(struct worker *w, const struct proto_frame *f)
{
	struct tenant *t = w->tenant;
	uint8_t buf[PROTO_HDR_SIZE + 1], flags;
	bool health_check = false;
	struct proto_msg m;
	long n;

	if (release_flags(f, &flags)) {
		worker_tenant_error(w, f->id, PROTO_E_BAD_PAYLOAD,
				    "RELEASE takes no payload or u8 flags");
		return;
	}
	pr_info("released");
	t->draining = true;
	/* Bytes after RELEASE were read here: the connection cannot go
	 * back without them. */
	t->keep =
	    (flags & TENANT_RELEASE_KEEP) && !proto_reader_pending(&t->rd);
	if (lease_leave(w, &health_check))
		return;

	proto_msg_begin(&m, buf, sizeof(buf), PROTO_OK, 0, f->id);
	if (t->keep)
		proto_put_u8(&m, 1);
	n = proto_msg_end(&m);
	if (!t->keep || !worker_tenant_return(w, buf, n))
		worker_to_tenant(w, buf, n);
	recycle_start(w, health_check);
}

void worker_tenant_frame(struct worker *w, const struct proto_frame *f)
{
	enum relay_verdict v;
	uint32_t code = 0;

	if (f->type == TENANT_RELEASE) {
		release(w, f);
		return;
	}

	v = relay_from_tenant(&w->relay, f, &code);
	if (v == RELAY_REFUSE) {
		pr_debug("refused: %s", w->relay.why);
		worker_tenant_error(w, f->id, code, w->relay.why);
		return;
	}
	if (v != RELAY_FORWARD)
		return;
	if (f->type == PROTO_EXEC)
		pool_note_exec(w->shm, w->o.slot);
	worker_to_guest_frame(w, f);
}

/* Recycled once every answer is in and the tenant's requests are done. */
static void recycle_check(struct worker *w)
{
	struct recycle *rc = &w->rc;
	uint32_t evicted;
	int err;

	if (rc->hc_done && !rc->hc_ok) {
		char why[160];

		snprintf(why, sizeof(why), "the health check failed: %s",
			 rc->hc_why);
		evict_for(w, RECYCLE_UNHEALTHY, why);
		return;
	}
	if (!rc->pong || !rc->cleaned || (rc->hc_wanted && !rc->hc_done) ||
	    relay_open_count(&w->relay))
		return;

	worker_arm_timer(w, 0);
	err = pool_recycle_done(w->shm, w->o.slot, RECYCLE_OK, now_ns(),
				&evicted);
	if (err) {
		pr_err("pool_recycle_done: %s", shm_strerror(err));
		worker_finish(w, WORKER_EXIT_GUEST_LOST);
		return;
	}
	/* A tenant that never read its RELEASE answer is not waited for. */
	worker_tenant_close(w);
	w->state = WORKER_IDLE;
	worker_watchdog_arm(w);
	worker_send_ctl(w, CTL_RECYCLED, 0, evicted,
			rc->hc_wanted ? "health checked" : "");
}

/* The health check's answer: EXIT 0 is healthy, anything else not. */
static void host_exit(struct worker *w, const struct proto_frame *f)
{
	struct recycle *rc = &w->rc;
	const char *msg = "malformed";
	struct proto_exit e;
	uint32_t code;

	rc->hc_done = true;
	if (f->type == PROTO_ERROR) {
		proto_parse_error(f, &code, &msg);
		snprintf(rc->hc_why, sizeof(rc->hc_why), "ERROR %s", msg);
		return;
	}
	proto_parse_exit(f, &e);
	rc->hc_ok = e.kind == PROTO_EXITED && e.value == 0;
	snprintf(rc->hc_why, sizeof(rc->hc_why), "%s %d",
		 e.kind == PROTO_EXITED	    ? "exit"
		 : e.kind == PROTO_SIGNALED ? "signal"
					    : "timed out after",
		 e.value);
}

static void health_reply(struct worker *w, const struct proto_frame *f)
{
	if (f->type == PROTO_STDOUT || f->type == PROTO_STDERR)
		return;
	if (f->type != PROTO_EXIT && f->type != PROTO_ERROR) {
		worker_evict(w, "the health check got a reply of another kind");
		return;
	}
	host_exit(w, f);
	if (w->rc.hc_ok)
		send_clean(w);
}

/* A reply to the worker's own request; anything unasked evicts. */
static void host_reply(struct worker *w, const struct proto_frame *f)
{
	struct recycle *rc = &w->rc;

	if (worker_watchdog_reply(w, f))
		return;
	if (w->state != WORKER_RECYCLING)
		worker_evict(w, "the guest answered a request never made");
	else if (f->id == rc->hc_id && !rc->hc_done)
		health_reply(w, f);
	else if (f->id == rc->ping_id && !rc->pong && f->type == PROTO_PONG)
		rc->pong = true;
	else if (f->id == rc->clean_id && !rc->cleaned && f->type == PROTO_OK)
		rc->cleaned = true;
	else if (f->type == PROTO_ERROR &&
		 (f->id == rc->ping_id || f->id == rc->clean_id))
		evict_for(w, RECYCLE_NOT_READY,
			  "the guest refused PING or CLEAN");
	else
		worker_evict(w, "the guest answered a request never made");
}

void worker_guest_frame(struct worker *w, const struct proto_frame *f)
{
	if (w->state == WORKER_BOOTING) {
		boot_ready(w, f);
		return;
	}

	switch (relay_from_guest(&w->relay, f)) {
	case RELAY_FORWARD:
		worker_to_tenant_frame(w, f);
		break;
	case RELAY_HOST:
		host_reply(w, f);
		break;
	case RELAY_EVICT:
		worker_evict(w, w->relay.why);
		return;
	default:
		break;
	}
	if (w->state == WORKER_RECYCLING)
		recycle_check(w);
}

static void send_leased(struct worker *w, const struct ctl_msg *m)
{
	uint64_t now = now_ns();
	uint8_t buf[PROTO_HDR_SIZE + 64];
	struct proto_msg msg;
	long n;

	proto_msg_begin(&msg, buf, sizeof(buf), TENANT_LEASED, 0, m->id);
	proto_put_u32(&msg, w->o.slot);
	proto_put_u32(&msg, m->generation);
	proto_put_u8(&msg, !w->next_lease_is_miss);
	proto_put_u64(&msg, m->t0 && m->t0 <= now ? now - m->t0 : 0);
	proto_put_str(&msg, backend_name(w->be.kind));
	n = proto_msg_end(&msg);
	if (n > 0)
		worker_to_tenant(w, buf, n);
}

/* The lease must be the one the pool recorded for this slot. */
static const char *lease_refusal(struct worker *w, const struct ctl_msg *m)
{
	struct shm_slot s;

	if (w->state != WORKER_IDLE)
		return "the worker is not idle";
	if (m->slot != w->o.slot)
		return "the lease names another slot";
	if (read_slot(w, &s))
		return "the pool cannot be read";
	if (s.state != SLOT_LEASED)
		return "the slot is not leased";
	if (s.owner_uid != m->uid || s.generation != m->generation)
		return "the lease is not the slot's current one";
	return NULL;
}

static void refuse_tenant(int fd, uint32_t id, const char *why)
{
	uint8_t buf[PROTO_HDR_SIZE + 128];
	long n =
	    proto_build_error(buf, sizeof(buf), id, TENANT_E_NOT_LEASED, why);

	if (n > 0 && send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		pr_debug("refusing the tenant: send: %s", strerror(errno));
	close(fd);
}

/* A refused lease must not leave the slot leased to nobody: the pool
 * gets it back as if the tenant had come and gone. */
static void recycle_unserved(struct worker *w)
{
	struct shm_slot s;

	if (w->state != WORKER_IDLE || read_slot(w, &s) ||
	    s.state != SLOT_LEASED)
		return;
	relay_init(&w->relay);
	w->state = WORKER_LEASED;
	lease_end(w);
}

void worker_lease(struct worker *w, const struct ctl_msg *m, int fd)
{
	const char *why =
	    fd < 0 ? "CTL_LEASE carried no connection" : lease_refusal(w, m);
	int err;

	if (why) {
		pr_warn("lease of uid %u refused: %s", m->uid, why);
		if (fd >= 0)
			refuse_tenant(fd, m->id, why);
		recycle_unserved(w);
		return;
	}

	err = worker_tenant_open(w, fd);
	if (err) {
		pr_err("tenant connection: %s", strerror(-err));
		refuse_tenant(fd, m->id, "the worker is out of resources");
		return;
	}
	pr_info("leased to uid %u, generation %u", m->uid, m->generation);
	relay_init(&w->relay);
	w->state = WORKER_LEASED;
	worker_watchdog_arm(w);
	if (!(m->value & CTL_LEASE_ANSWERED))
		send_leased(w, m);
	w->next_lease_is_miss = false;
	w->resume_tenant = true;
}

void worker_timeout(struct worker *w)
{
	if (w->state == WORKER_BOOTING) {
		worker_boot_failed(w, -ETIMEDOUT, WORKER_EXIT_TEMPFAIL,
				   "no HELLO from the agent in time");
		return;
	}
	if (w->state == WORKER_IDLE || w->state == WORKER_LEASED) {
		worker_watchdog_tick(w);
		return;
	}
	if (w->state != WORKER_RECYCLING)
		return;
	if (w->rc.pong && w->rc.hc_wanted && !w->rc.hc_done)
		evict_for(w, RECYCLE_UNHEALTHY, "the health check timed out");
	else
		evict_for(w, RECYCLE_NOT_READY,
			  w->rc.pong ? "the guest did not finish cleaning"
				     : "the guest did not answer PING");
}
