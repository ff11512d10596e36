/* The relay's request table: what a tenant may send, what a guest may answer.
 */
#include "worker/relay.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "proto/tenant.h"

static const char *T(const struct proto_frame *f)
{
	return proto_type_name(f->type);
}

void relay_init(struct relay *r)
{
	memset(r, 0, sizeof(*r));
}

static struct relay_entry *find(struct relay *r, uint32_t id)
{
	for (unsigned i = 0; i < RELAY_MAX_OPEN; i++)
		if (r->open[i].type && r->open[i].id == id)
			return &r->open[i];
	return NULL;
}

static struct relay_entry *add(struct relay *r, uint32_t id, uint16_t type)
{
	for (unsigned i = 0; i < RELAY_MAX_OPEN; i++) {
		struct relay_entry *e = &r->open[i];

		if (e->type)
			continue;
		memset(e, 0, sizeof(*e));
		e->id = id;
		e->type = type;
		r->nopen++;
		return e;
	}
	return NULL;
}

static void close_entry(struct relay *r, struct relay_entry *e)
{
	r->recent[r->recent_next++ % RELAY_RECENT] = e->id;
	e->type = 0;
	r->nopen--;
}

static bool recently_closed(const struct relay *r, uint32_t id)
{
	for (unsigned i = 0; i < MIN(r->recent_next, RELAY_RECENT); i++)
		if (r->recent[i] == id)
			return true;
	return false;
}

static __attribute__((format(printf, 4, 5))) enum relay_verdict
refuse(struct relay *r, uint32_t *code, uint32_t why_code, const char *fmt, ...)
{
	va_list ap;

	*code = why_code;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	return RELAY_REFUSE;
}

static bool opens_request(uint16_t type)
{
	switch (type) {
	case PROTO_PING:
	case PROTO_EXEC:
	case PROTO_WRITE_OPEN:
	case PROTO_READ_OPEN:
	case PROTO_LIST:
	case PROTO_STAT:
	case PROTO_EXISTS:
	case PROTO_MKDIR:
	case PROTO_RENAME:
	case PROTO_REMOVE:
		return true;
	}
	return false;
}

static bool host_only(uint16_t type)
{
	return type == PROTO_HELLO || type == PROTO_CLEAN ||
	       type == PROTO_RESEED || type == PROTO_SHUTDOWN;
}

static enum relay_verdict
open_request(struct relay *r, const struct proto_frame *f, uint32_t *code)
{
	struct relay_entry *e;

	if (find(r, f->id))
		return refuse(r, code, PROTO_E_DUPLICATE_ID,
			      "%s: request id %u is in use", T(f), f->id);
	e = add(r, f->id, f->type);
	if (!e)
		return refuse(r, code, PROTO_E_BUSY,
			      "%s %u: too many requests open", T(f), f->id);

	/* The agent answers a malformed EXEC itself, under this id. */
	if (f->type == PROTO_EXEC && f->len >= 4) {
		struct proto_cur c;

		proto_cur_init(&c, f);
		e->stdin_open = proto_get_u32(&c) & PROTO_EXEC_STDIN;
	}
	return RELAY_FORWARD;
}

/* The open request a follow-up frame belongs to, of the wanted type. */
static struct relay_entry *follow_up(struct relay *r,
				     const struct proto_frame *f, uint16_t want,
				     uint32_t *code)
{
	struct relay_entry *e = find(r, f->id);

	if (!e || e->orphan)
		refuse(r, code, PROTO_E_UNKNOWN_ID, "%s: no request %u is open",
		       T(f), f->id);
	else if (e->type != want)
		refuse(r, code, PROTO_E_WRONG_ORDER,
		       "%s: request %u is of another kind", T(f), f->id);
	else
		return e;
	return NULL;
}

static enum relay_verdict
tenant_stdin(struct relay *r, const struct proto_frame *f, uint32_t *code)
{
	struct relay_entry *e = follow_up(r, f, PROTO_EXEC, code);

	if (!e)
		return RELAY_REFUSE;
	if (!e->stdin_open)
		return refuse(r, code, PROTO_E_WRONG_ORDER,
			      "%s: stdin of %u is not open", T(f), f->id);
	if (f->flags & ~PROTO_F_EOF)
		return refuse(r, code, PROTO_E_INVALID, "%s %u: unknown flags",
			      T(f), f->id);
	if (f->flags & PROTO_F_EOF)
		e->stdin_open = false;
	return RELAY_FORWARD;
}

static enum relay_verdict
tenant_kill(struct relay *r, const struct proto_frame *f, uint32_t *code)
{
	struct relay_entry *e = follow_up(r, f, PROTO_EXEC, code);
	struct proto_cur c;
	uint32_t sig;

	if (!e)
		return RELAY_REFUSE;
	proto_cur_init(&c, f);
	sig = proto_get_u32(&c);
	if (proto_cur_done(&c) || sig < 1 || sig > 64)
		return refuse(r, code, PROTO_E_INVALID, "%s %u: bad signal",
			      T(f), f->id);
	return RELAY_FORWARD;
}

/* Chunks of a failed write are dropped, as the agent would drop them. */
static enum relay_verdict
tenant_write(struct relay *r, const struct proto_frame *f, uint32_t *code)
{
	struct relay_entry *e = follow_up(r, f, PROTO_WRITE_OPEN, code);

	if (!e)
		return RELAY_REFUSE;
	if (e->ended)
		return refuse(r, code, PROTO_E_WRONG_ORDER,
			      "%s: write %u has ended", T(f), f->id);
	if (f->type == PROTO_WRITE_CHUNK)
		return e->failed ? RELAY_DROP : RELAY_FORWARD;

	/* END frees the agent's side even after a failure. */
	e->ended = true;
	if (e->failed)
		close_entry(r, e);
	return RELAY_FORWARD;
}

enum relay_verdict
relay_from_tenant(struct relay *r, const struct proto_frame *f, uint32_t *code)
{
	if (host_only(f->type))
		return refuse(r, code, TENANT_E_FORBIDDEN,
			      "%s (request %u): only the host may ask", T(f),
			      f->id);
	if (f->id & TENANT_ID_HOST)
		return refuse(r, code, TENANT_E_FORBIDDEN,
			      "%s: id %#x is reserved for the host", T(f),
			      f->id);
	if (f->id == 0)
		return refuse(r, code, PROTO_E_INVALID,
			      "%s: request id %u is reserved", T(f), f->id);

	if (opens_request(f->type))
		return open_request(r, f, code);
	switch (f->type) {
	case PROTO_STDIN:
		return tenant_stdin(r, f, code);
	case PROTO_KILL:
		return tenant_kill(r, f, code);
	case PROTO_WRITE_CHUNK:
	case PROTO_WRITE_END:
		return tenant_write(r, f, code);
	}
	return refuse(r, code, PROTO_E_BAD_TYPE,
		      "frame type %s (request %u) is not a request", T(f),
		      f->id);
}

static __attribute__((format(printf, 2, 3))) enum relay_verdict
evict(struct relay *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	return RELAY_EVICT;
}

/* Whether a reply of this type ends the request (true), streams within
 * it (false), or does not belong to it (-1). */
static int reply_fits(const struct relay_entry *e, uint16_t type)
{
	switch (e->type) {
	case PROTO_EXEC:
		if (type == PROTO_STDOUT || type == PROTO_STDERR)
			return false;
		return type == PROTO_EXIT ? true : -1;
	case PROTO_READ_OPEN:
		if (type == PROTO_READ_DATA)
			return false;
		return type == PROTO_READ_END ? true : -1;
	case PROTO_LIST:
		if (type == PROTO_DIR_ENTRIES)
			return false;
		return type == PROTO_OK ? true : -1;
	case PROTO_WRITE_OPEN:
		return type == PROTO_OK && e->ended ? true : -1;
	case PROTO_PING:
		return type == PROTO_PONG ? true : -1;
	case PROTO_STAT:
		return type == PROTO_STAT_REPLY ? true : -1;
	case PROTO_EXISTS:
		return type == PROTO_EXISTS_REPLY ? true : -1;
	}
	return type == PROTO_OK ? true : -1;
}

/* An ERROR ends every request but a write, which stays open (failed)
 * until the tenant's WRITE_END. */
static enum relay_verdict guest_error(struct relay *r, struct relay_entry *e)
{
	bool orphan = e->orphan;

	if (e->type != PROTO_WRITE_OPEN) {
		close_entry(r, e);
		return orphan ? RELAY_DROP : RELAY_FORWARD;
	}
	if (e->failed)
		return RELAY_DROP;
	e->failed = true;
	if (e->ended)
		close_entry(r, e);
	return orphan ? RELAY_DROP : RELAY_FORWARD;
}

enum relay_verdict relay_from_guest(struct relay *r,
				    const struct proto_frame *f)
{
	struct relay_entry *e;
	bool orphan;
	int fits;

	if (proto_check_reply(f))
		return evict(r, "malformed %s frame (id %u)", T(f), f->id);
	if (f->type == PROTO_HELLO)
		return evict(r, "%s (id %u) after the boot", T(f), f->id);
	if (f->id & TENANT_ID_HOST)
		return RELAY_HOST;

	e = find(r, f->id);
	if (!e && f->type == PROTO_ERROR && recently_closed(r, f->id))
		return RELAY_DROP;
	if (!e)
		return evict(r, "%s for request %u that is not open", T(f),
			     f->id);
	if (f->type == PROTO_ERROR)
		return guest_error(r, e);

	fits = reply_fits(e, f->type);
	if (fits < 0)
		return evict(r, "%s answers request %u, a %s", T(f), f->id,
			     proto_type_name(e->type));
	orphan = e->orphan;
	if (fits)
		close_entry(r, e);
	return orphan ? RELAY_DROP : RELAY_FORWARD;
}

unsigned relay_orphan_all(struct relay *r, uint32_t *ids, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < RELAY_MAX_OPEN; i++) {
		struct relay_entry *e = &r->open[i];

		if (!e->type || e->orphan)
			continue;
		e->orphan = true;
		if (e->type != PROTO_WRITE_OPEN || e->ended)
			continue;
		e->ended = true;
		if (n < max)
			ids[n++] = e->id;
		if (e->failed)
			close_entry(r, e);
	}
	return n;
}

unsigned relay_open_count(const struct relay *r)
{
	return r->nopen;
}

unsigned relay_tenant_ids(const struct relay *r, uint32_t *ids, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < RELAY_MAX_OPEN && n < max; i++)
		if (r->open[i].type && !r->open[i].orphan)
			ids[n++] = r->open[i].id;
	return n;
}
