/* Tenant connections before their lease: frames, STATS, WARM, ACQUIRE. */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/tenant.h"
#include "supervisor/supervisor.h"

#define REPLY_MAX     4096
#define ACQUIRE_TRIES 3
#define MAX_WAIT_NS   (3600ull * 1000000000)
/* An ACQUIRE this long after the one before comes from a quiet pool. */
#define LONE_NS (200 * 1000ull)

static int send_frame(int fd, const void *buf, long len)
{
	if (len < 0)
		return (int)len;
	if (send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) != len)
		return errno ? -errno : -EAGAIN;
	return 0;
}

int sv_send_error(int fd, uint32_t id, uint32_t code, const char *fmt, ...)
{
	uint8_t buf[512];
	char text[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);

	return send_frame(fd, buf,
			  proto_build_error(buf, sizeof(buf), id, code, text));
}

static void tenant_free(struct sv_tenant *t)
{
	struct sv_tenant **p;

	for (p = &t->sv->tenants; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			break;
		}
	t->sv->ntenants--;
	proto_reader_free(&t->rd);
	free(t);
}

/* The fd goes now; the struct once no read of it is in flight. */
static void tenant_close(struct sv_tenant *t)
{
	if (t->worker && t->worker->parked == t)
		t->worker->parked = NULL;
	t->worker = NULL;
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->state = T_CLOSING;
	if (t->read_op.busy)
		ioloop_cancel(&t->sv->loop, &t->read_op);
	else
		tenant_free(t);
}

/* Never a byte past an ACQUIRE: the bytes after it belong to the worker
 * that gets the connection. A valid ACQUIRE is a header and a u64 and
 * every frame at least a header, so up to that many bytes from a frame's
 * start cannot pass the end of one; an ACQUIRE then takes one read. */
static size_t bytes_wanted(const struct proto_reader *r)
{
	size_t have = proto_reader_pending(r);
	struct proto_frame f;

	if (have < PROTO_HDR_SIZE)
		return PROTO_HDR_SIZE + sizeof(uint64_t) - have;
	proto_get_header(r->buf + r->start, &f);
	return PROTO_HDR_SIZE + (size_t)f.len - have;
}

static int start_read(struct sv_tenant *t)
{
	size_t want = bytes_wanted(&t->rd), room;
	uint8_t *dst = proto_reader_space(&t->rd, &room);

	return ioloop_recv(&t->sv->loop, &t->read_op, t->fd, dst,
			   MIN(want, room));
}

static void put_stat(struct proto_msg *m, const char *name, uint64_t v)
{
	proto_put_str(m, name);
	proto_put_u64(m, v);
}

static int reply_stats(struct sv_tenant *t, const struct proto_frame *f)
{
	struct sv *sv = t->sv;
	struct pool_stats st;
	uint8_t buf[REPLY_MAX];
	struct proto_msg m;
	int rc;

	if (f->len)
		return sv_send_error(t->fd, f->id, PROTO_E_BAD_PAYLOAD,
				     "STATS takes no payload");
	rc = pool_stats(sv->shm, &st);
	if (rc)
		return sv_send_error(t->fd, f->id, PROTO_E_INTERNAL,
				     "pool_stats: %s", shm_strerror(rc));

	proto_msg_begin(&m, buf, sizeof(buf), TENANT_STATS_REPLY, 0, f->id);
	proto_put_u32(&m, 18);
	put_stat(&m, "hit", st.c.hits);
	put_stat(&m, "miss", st.c.misses);
	put_stat(&m, "evict", st.c.evictions);
	put_stat(&m, "idle", st.c.idle);
	put_stat(&m, "in_use", st.c.in_use);
	put_stat(&m, "boots", st.c.boots);
	put_stat(&m, "boots_ok", st.c.boots_ok);
	put_stat(&m, "boot_failures", st.c.boot_failures);
	put_stat(&m, "crashes", st.c.crashes);
	put_stat(&m, "respawns", st.c.respawns);
	put_stat(&m, "health_check_failures", st.c.hc_failures);
	put_stat(&m, "leases", st.c.leases);
	put_stat(&m, "releases", st.c.releases);
	put_stat(&m, "leases_lost", st.c.leases_lost);
	put_stat(&m, "warm_dropped", st.c.warm_dropped);
	put_stat(&m, "repairs", st.repairs);
	put_stat(&m, "workers", sv_workers_live(sv));
	put_stat(&m, "draining", sv->draining);
	return send_frame(t->fd, buf, proto_msg_end(&m));
}

static int boot_for_warm(struct sv *sv, uint64_t now)
{
	struct sv_worker *w;
	uint32_t slot;

	if (pool_boot_start(sv->shm, BOOT_WARM, now, &slot))
		return -EAGAIN;
	if (sv_worker_spawn(sv, slot, BOOT_WARM, &w)) {
		sv_slot_abandon(sv, slot);
		return -EAGAIN;
	}
	return 0;
}

static int do_warm(struct sv_tenant *t, const struct proto_frame *f)
{
	struct sv *sv = t->sv;
	uint64_t now = now_ns();
	uint8_t buf[64];
	struct proto_msg m;
	struct proto_cur c;
	uint32_t n, started = 0;
	int want;

	proto_cur_init(&c, f);
	n = proto_get_u32(&c);
	if (proto_cur_done(&c))
		return sv_send_error(t->fd, f->id, PROTO_E_BAD_PAYLOAD,
				     "WARM takes a u32 count");
	if (sv->draining)
		return sv_send_error(t->fd, f->id, TENANT_E_DRAINING,
				     "the pool is draining");
	if (sv->permfail)
		return sv_send_error(t->fd, f->id, TENANT_E_NO_CAPACITY,
				     "the pool stopped booting VMs: %s",
				     sv->permfail_why);

	want = pool_warm_count(sv->shm, n, now);
	while (want-- > 0 && !boot_for_warm(sv, now))
		started++;

	proto_msg_begin(&m, buf, sizeof(buf), PROTO_OK, 0, f->id);
	proto_put_u32(&m, started);
	return send_frame(t->fd, buf, proto_msg_end(&m));
}

/* The connection is the worker's now: ours is closed. */
static void handed_off(struct sv_tenant *t)
{
	pool_record(t->sv->shm, HIST_ACQUIRE, now_ns() - t->t0);
	tenant_close(t);
}

void sv_tenant_boot_ready(struct sv_tenant *t, struct sv_worker *w)
{
	int rc = sv_worker_lease(w, t->fd, t->uid, t->acquire_id, t->t0, 0,
				 sv_worker_generation(w));

	t->worker = NULL;
	if (rc) {
		sv_send_error(t->fd, t->acquire_id, TENANT_E_VM_LOST,
			      "the VM's worker is gone: %s", strerror(-rc));
		tenant_close(t);
		return;
	}
	handed_off(t);
}

/* Back to reading: the tenant may ask again on the same connection. */
static void unpark(struct sv_tenant *t)
{
	if (t->worker && t->worker->parked == t)
		t->worker->parked = NULL;
	t->worker = NULL;
	t->state = T_READING;
	if (start_read(t))
		tenant_close(t);
}

void sv_tenant_boot_lost(struct sv_tenant *t, const char *why)
{
	if (sv_send_error(t->fd, t->acquire_id, TENANT_E_NO_CAPACITY,
			  "no VM: %s", why)) {
		tenant_close(t);
		return;
	}
	unpark(t);
}

static int park(struct sv_tenant *t, uint32_t slot, uint64_t timeout)
{
	struct sv *sv = t->sv;
	struct sv_worker *w;
	int rc;

	if (sv->permfail) {
		sv_slot_abandon(sv, slot);
		return sv_send_error(t->fd, t->acquire_id, TENANT_E_NO_CAPACITY,
				     "the pool stopped booting VMs: %s",
				     sv->permfail_why);
	}
	rc = sv_worker_spawn(sv, slot, BOOT_LEASE, &w);
	if (rc) {
		sv_slot_abandon(sv, slot);
		return sv_send_error(t->fd, t->acquire_id, TENANT_E_NO_CAPACITY,
				     "cannot start a worker: %s",
				     strerror(-rc));
	}
	w->parked = t;
	t->worker = w;
	t->state = T_PARKED;
	t->deadline = t->t0 + timeout;
	return 1;
}

static int acquire_error(struct sv_tenant *t, int rc)
{
	const struct sv_options *o = &t->sv->opt;

	if (rc == -EDQUOT)
		return sv_send_error(t->fd, t->acquire_id, TENANT_E_QUOTA,
				     "tenant %u holds %u leases, its cap",
				     (unsigned)t->uid,
				     o->max_leases_per_tenant);
	if (rc == -EAGAIN)
		return sv_send_error(t->fd, t->acquire_id, TENANT_E_NO_CAPACITY,
				     "no VM free: all %u slots (max_total) in "
				     "use",
				     o->max_total);
	return sv_send_error(t->fd, t->acquire_id, PROTO_E_INTERNAL,
			     "pool_acquire: %s", shm_strerror(rc));
}

/* A hit whose worker cannot take the lease (it is dying) leaves the
 * slot to that worker's exit; another try takes the next VM. */
/* A slot leased to a worker that cannot take it (stopping, or its
 * control socket failed) is evicted, so it is never leased to nobody. */
static void drop_lease(struct sv *sv, uint32_t slot)
{
	uint32_t evicted;
	bool check;
	int rc;

	rc = pool_release(sv->shm, slot, now_ns(), &check);
	if (!rc)
		rc = pool_recycle_done(sv->shm, slot, RECYCLE_NOT_READY,
				       now_ns(), &evicted);
	if (rc)
		pr_warn("slot %u: dropping a lease nobody took: %s", slot,
			shm_strerror(rc));
	if (sv->by_slot[slot])
		sv_worker_event(sv->by_slot[slot], WEV_STOP);
}

/* A hit is answered here, once the worker has the connection: the
 * tenant need not wait for the worker to wake up (control.h). */
static void send_leased(struct sv_tenant *t, uint32_t slot, uint32_t gen)
{
	uint8_t buf[PROTO_HDR_SIZE + 64];
	struct proto_msg m;
	int rc;

	proto_msg_begin(&m, buf, sizeof(buf), TENANT_LEASED, 0, t->acquire_id);
	proto_put_u32(&m, slot);
	proto_put_u32(&m, gen);
	proto_put_u8(&m, 1);
	proto_put_u64(&m, now_ns() - t->t0);
	proto_put_str(&m, sv_backend_name(t->sv->opt.backend));

	/* A tenant that cannot take it has left: its worker sees so. */
	rc = send_frame(t->fd, buf, proto_msg_end(&m));
	if (rc)
		pr_debug("slot %u: LEASED not sent: %s", slot, strerror(-rc));
}

/* The tenant hears of a hit before the worker does: waking the worker
 * costs vmpoold more than the rest of the hit, and the tenant's next
 * request waits in the socket until the worker reads it. A lone tenant
 * whose ACQUIRE woke vmpoold mostly shares its CPU, and would wait out
 * that wakeup too: vmpoold first lets it run. (With other tenants
 * about, yielding would put vmpoold behind all of them.) A worker that
 * cannot take the connection has died: the tenant sees it closed, as
 * after any worker death. 1, or -errno to close the connection. */
static int hand_hit(struct sv_tenant *t, struct sv_worker *w, uint32_t slot)
{
	uint32_t gen = sv_worker_generation(w);
	int rc;

	send_leased(t, slot, gen);
	if (t->lone && ioloop_woken_by_one(&t->sv->loop))
		sched_yield();
	rc = sv_worker_lease(w, t->fd, t->uid, t->acquire_id, t->t0,
			     CTL_LEASE_ANSWERED, gen);
	if (rc) {
		pr_warn("slot %u: the lease did not reach its worker: %s", slot,
			strerror(-rc));
		drop_lease(t->sv, slot);
		return rc;
	}
	sv_worker_event(w, WEV_LEASE);
	handed_off(t);
	return 1;
}

static int try_acquire(struct sv_tenant *t, uint64_t timeout)
{
	struct sv *sv = t->sv;
	uint32_t slot;
	int rc;

	for (int i = 0; i < ACQUIRE_TRIES; i++) {
		struct sv_worker *w;

		rc = pool_acquire(sv->shm, t->uid, now_ns(), &slot);
		if (rc < 0)
			return acquire_error(t, rc);
		if (rc == POOL_MISS)
			return park(t, slot, timeout);

		w = sv->by_slot[slot];
		if (w && sv_worker_leasable(w))
			return hand_hit(t, w, slot);
		drop_lease(sv, slot);
	}
	return sv_send_error(t->fd, t->acquire_id, TENANT_E_VM_LOST,
			     "VMs were lost while leasing one");
}

static int do_acquire(struct sv_tenant *t, const struct proto_frame *f)
{
	struct proto_cur c;
	uint64_t timeout;

	proto_cur_init(&c, f);
	timeout = proto_get_u64(&c);
	if (proto_cur_done(&c))
		return sv_send_error(t->fd, f->id, PROTO_E_BAD_PAYLOAD,
				     "ACQUIRE takes a u64 timeout");
	if (t->sv->draining)
		return sv_send_error(t->fd, f->id, TENANT_E_DRAINING,
				     "the pool is draining");

	t->acquire_id = f->id;
	t->t0 = now_ns();
	t->lone = t->t0 - t->sv->last_acquire_ns > LONE_NS;
	t->sv->last_acquire_ns = t->t0;
	if (!timeout)
		timeout = t->sv->opt.acquire_timeout_ns;
	return try_acquire(t, MIN(timeout, MAX_WAIT_NS));
}

/* 0: go on reading; 1: the connection was handed on or parked;
 * -errno: close it. */
static int on_frame(struct sv_tenant *t, const struct proto_frame *f)
{
	switch (f->type) {
	case TENANT_STATS:
		return reply_stats(t, f);
	case TENANT_WARM:
		return do_warm(t, f);
	case TENANT_ACQUIRE:
		return do_acquire(t, f);
	case TENANT_RELEASE:
	case PROTO_HELLO ... PROTO_KILL:
		return sv_send_error(t->fd, f->id, TENANT_E_NOT_LEASED,
				     "%s before ACQUIRE: no VM is leased",
				     f->type == TENANT_RELEASE
					 ? "RELEASE"
					 : proto_type_name(f->type));
	}
	return sv_send_error(t->fd, f->id, PROTO_E_BAD_TYPE,
			     "unknown request type %u", f->type);
}

static int on_bytes(struct sv_tenant *t)
{
	struct proto_frame f;
	int rc;

	while ((rc = proto_reader_next(&t->rd, &f)) == 1) {
		rc = on_frame(t, &f);
		if (rc)
			return rc;
	}
	if (rc == -EMSGSIZE) {
		sv_send_error(t->fd, f.id, PROTO_E_BAD_LENGTH,
			      "frame of %u bytes is over the limit of %u",
			      f.len, PROTO_MAX_PAYLOAD);
		return -EMSGSIZE;
	}
	return 0;
}

static void on_read(struct ioloop_op *op, int res, unsigned flags)
{
	struct sv_tenant *t = op->opaque;
	int rc;

	if (t->state == T_CLOSING) {
		tenant_free(t);
		return;
	}
	if (res <= 0) {
		if (res == 0 && proto_reader_pending(&t->rd))
			sv_send_error(t->fd, 0, PROTO_E_BAD_LENGTH,
				      "connection ended inside a frame");
		tenant_close(t);
		return;
	}

	proto_reader_commit(&t->rd, res);
	rc = on_bytes(t);
	if (rc < 0 || (rc == 0 && start_read(t)))
		tenant_close(t);
}

static void new_tenant(struct sv *sv, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct sv_tenant *t;

	if (sv->ntenants >= SV_MAX_TENANTS ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		sv_send_error(fd, 0, TENANT_E_NO_CAPACITY,
			      "too many connections");
		close(fd);
		return;
	}

	t = calloc(1, sizeof(*t));
	if (!t || proto_reader_init(&t->rd)) {
		free(t);
		close(fd);
		return;
	}
	t->sv = sv;
	t->fd = fd;
	t->uid = cred.uid;
	t->read_op.done = on_read;
	t->read_op.opaque = t;
	t->next = sv->tenants;
	sv->tenants = t;
	sv->ntenants++;

	if (start_read(t))
		tenant_close(t);
}

void sv_tenant_adopt(struct sv *sv, int fd)
{
	new_tenant(sv, fd);
}

static void on_accept(struct ioloop_op *op, int res, unsigned flags)
{
	struct sv *sv = op->opaque;

	if (res >= 0)
		new_tenant(sv, res);
	else if (res != -ECANCELED)
		pr_debug("accept: %s", strerror(-res));
}

int sv_tenants_listen(struct sv *sv)
{
	sv->accept_op.done = on_accept;
	sv->accept_op.opaque = sv;
	return ioloop_accept(&sv->loop, &sv->accept_op, sv->listen_fd);
}

uint64_t sv_tenants_tick(struct sv *sv, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	struct sv_tenant *t, *tn;

	for (t = sv->tenants; t; t = tn) {
		tn = t->next;
		if (t->state != T_PARKED)
			continue;
		if (now < t->deadline) {
			next = MIN(next, t->deadline);
			continue;
		}
		sv_tenant_boot_lost(t, "none was ready within the acquire "
				       "timeout");
	}
	return next;
}

void sv_tenants_drain(struct sv *sv)
{
	struct sv_tenant *t, *tn;

	for (t = sv->tenants; t; t = tn) {
		tn = t->next;
		if (t->state != T_PARKED)
			continue;
		sv_send_error(t->fd, t->acquire_id, TENANT_E_DRAINING,
			      "the pool is draining");
		tenant_close(t);
	}
}

/* Once the loop is gone no op completes: everything goes. */
void sv_tenants_close_all(struct sv *sv)
{
	while (sv->tenants) {
		struct sv_tenant *t = sv->tenants;

		if (t->fd >= 0)
			close(t->fd);
		tenant_free(t);
	}
}
