/* vmpool-top: what a snapshot means: counters, percentiles, events, order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "tools/top.h"

#define COUNTER(field, key, words)                                             \
	{                                                                      \
		key, words, offsetof(struct pool_stats, field)                 \
	}

const struct top_counter top_counters[] = {
    COUNTER(c.hits, "hits", "Acquires served by an idle VM."),
    COUNTER(c.misses, "misses", "Acquires that found no idle VM."),
    COUNTER(c.evictions, "evictions",
	    "Idle or recycled VMs evicted: expiry, capacity, failed recycle."),
    COUNTER(c.boots, "boots", "VM boots started."),
    COUNTER(c.boots_ok, "boots_ok", "VM boots that reached ready."),
    COUNTER(c.boot_failures, "boot_failures",
	    "VM boots that failed, or whose worker was lost while booting."),
    COUNTER(c.crashes, "crashes", "Workers lost outside the dead state."),
    COUNTER(c.respawns, "respawns", "Boots replacing a lost VM."),
    COUNTER(c.hc_failures, "health_check_failures",
	    "Health checks that failed or timed out."),
    COUNTER(c.leases, "leases", "VMs leased to tenants."),
    COUNTER(c.releases, "releases", "Leases released."),
    COUNTER(c.leases_lost, "leases_lost",
	    "Leases ended by the loss of their VM."),
    COUNTER(c.warm_dropped, "warm_dropped",
	    "Warm boots dropped because max_size VMs were idle."),
    COUNTER(repairs, "lock_repairs",
	    "Locks taken over from a writer that died holding them."),
};

const size_t top_ncounters = ARRAY_SIZE(top_counters);

uint64_t top_counter(const struct top_snap *snap, const struct top_counter *c)
{
	const char *stats = (const char *)&snap->seg->stats;
	uint64_t v;

	memcpy(&v, stats + c->off, sizeof(v));
	return v;
}

const enum pool_hist top_hist_order[HIST_COUNT] = {
    HIST_BOOT,
    HIST_ACQUIRE,
    HIST_LEASE,
    HIST_RECYCLE,
};

const char *top_hist_name(enum pool_hist h)
{
	static const char *const names[HIST_COUNT] = {
	    [HIST_BOOT] = "boot",
	    [HIST_LEASE] = "lease",
	    [HIST_RECYCLE] = "recycle",
	    [HIST_ACQUIRE] = "acquire",
	};

	return (unsigned)h < HIST_COUNT ? names[h] : "?";
}

uint64_t top_hist_count(const uint64_t hist[SHM_HIST_BUCKETS])
{
	uint64_t n = 0;

	for (unsigned b = 0; b < SHM_HIST_BUCKETS; b++)
		n += hist[b];
	return n;
}

bool top_percentile(const uint64_t hist[SHM_HIST_BUCKETS], double q,
		    uint64_t *ns)
{
	uint64_t total = top_hist_count(hist), below = 0;
	double rank = ceil(q * (double)total), lo, hi, v;
	unsigned b;

	if (total == 0)
		return false;
	if (rank < 1)
		rank = 1;

	for (b = 0; b < SHM_HIST_BUCKETS - 1; b++) {
		if ((double)(below + hist[b]) >= rank)
			break;
		below += hist[b];
	}

	/* Bucket b holds [2^b, 2^(b+1)); bucket 0 also holds 0. */
	lo = b == 0 ? 0 : ldexp(1, b);
	hi = ldexp(1, b + 1);
	v = hist[b] ? lo + (hi - lo) * (rank - below) / hist[b] : hi;
	*ns = v >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)v;
	return true;
}

const char *top_event_name(unsigned kind)
{
	static const char *const names[PEV_NKINDS] = {
	    [PEV_NONE] = "none",       [PEV_BOOT] = "boot",
	    [PEV_READY] = "ready",     [PEV_BOOT_FAIL] = "boot-fail",
	    [PEV_HIT] = "hit",	       [PEV_MISS] = "miss",
	    [PEV_RELEASE] = "release", [PEV_RECYCLED] = "recycled",
	    [PEV_EVICT] = "evict",     [PEV_EXIT] = "exit",
	    [PEV_REPAIR] = "repair",
	};

	return kind < PEV_NKINDS ? names[kind] : "?";
}

const char *top_evict_reason(uint64_t reason)
{
	static const char *const names[EVICT_NREASONS] = {
	    [EVICT_EXPIRED] = "expired",     [EVICT_CAPACITY] = "capacity",
	    [EVICT_NOT_READY] = "not_ready", [EVICT_UNHEALTHY] = "unhealthy",
	    [EVICT_ASKED] = "asked",
	};

	return reason < EVICT_NREASONS ? names[reason] : "?";
}

const char *top_purpose_name(uint64_t purpose)
{
	static const char *const names[BOOT_NPURPOSES] = {
	    [BOOT_LEASE] = "lease",
	    [BOOT_WARM] = "warm",
	    [BOOT_REPLENISH] = "replenish",
	    [BOOT_RESPAWN] = "respawn",
	};

	return purpose < BOOT_NPURPOSES ? names[purpose] : "?";
}

static void event_value_text(const struct pool_event *ev, char *buf, size_t len)
{
	char t[16];

	top_fmt_ns(ev->value, t, sizeof(t));
	switch (ev->kind) {
	case PEV_BOOT:
		snprintf(buf, len, "boot for %s", top_purpose_name(ev->value));
		break;
	case PEV_READY:
		snprintf(buf, len, "ready after %s", t);
		break;
	case PEV_BOOT_FAIL:
		snprintf(buf, len, "boot failed after %s", t);
		break;
	case PEV_HIT:
		snprintf(buf, len, "hit, generation %llu",
			 (unsigned long long)ev->value);
		break;
	case PEV_MISS:
		if (ev->slot == SHM_NO_SLOT)
			snprintf(buf, len, "miss, no free slot");
		else
			snprintf(buf, len, "miss, booting generation %llu",
				 (unsigned long long)ev->value);
		break;
	case PEV_RELEASE:
		snprintf(buf, len, "released after %s", t);
		break;
	case PEV_RECYCLED:
		snprintf(buf, len, "recycled in %s", t);
		break;
	case PEV_EVICT:
		snprintf(buf, len, "evicted: %s", top_evict_reason(ev->value));
		break;
	case PEV_EXIT:
		snprintf(buf, len, "worker exited while %s",
			 shm_state_name(ev->value));
		break;
	case PEV_REPAIR:
		snprintf(buf, len, "lock repaired%s",
			 ev->value ? ", half-done step rolled back" : "");
		break;
	default:
		snprintf(buf, len, "unknown event %u, value %llu", ev->kind,
			 (unsigned long long)ev->value);
	}
}

void top_event_text(const struct pool_event *ev, char *buf, size_t len)
{
	size_t n;

	event_value_text(ev, buf, len);

	n = strlen(buf);
	if (ev->uid && n < len &&
	    (ev->kind == PEV_HIT || ev->kind == PEV_MISS ||
	     ev->kind == PEV_RELEASE))
		snprintf(buf + n, len - n, ", uid %u", ev->uid);
}

uint32_t top_event_count(const struct top_snap *snap)
{
	uint64_t head = snap->seg->hdr.events_head;

	return head < SHM_EVENTS ? (uint32_t)head : SHM_EVENTS;
}

const struct pool_event *top_event(const struct top_snap *snap, uint32_t i)
{
	uint64_t head = snap->seg->hdr.events_head;

	return &snap->seg->events[(head - 1 - i) % SHM_EVENTS];
}

uint64_t top_age(const struct top_snap *snap, uint64_t then)
{
	return then && then < snap->mono_ns ? snap->mono_ns - then : 0;
}

void top_fmt_time(const struct top_snap *snap, uint64_t mono, char *buf,
		  size_t len)
{
	uint64_t wall = snap->wall_ns - MIN(top_age(snap, mono), snap->wall_ns);
	time_t secs = wall / 1000000000ull;
	struct tm tm;

	localtime_r(&secs, &tm);
	snprintf(buf, len, "%02d:%02d:%02d.%03u", tm.tm_hour, tm.tm_min,
		 tm.tm_sec, (unsigned)(wall / 1000000 % 1000));
}

void top_fmt_ns(uint64_t ns, char *buf, size_t len)
{
	uint64_t s = ns / 1000000000ull;

	if (ns < 1000)
		snprintf(buf, len, "%uns", (unsigned)ns);
	else if (ns < 1000000)
		snprintf(buf, len, "%.1fus", ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, len, "%.1fms", ns / 1e6);
	else if (s < 60)
		snprintf(buf, len, "%.2fs", ns / 1e9);
	else if (s < 3600)
		snprintf(buf, len, "%um%02us", (unsigned)(s / 60),
			 (unsigned)(s % 60));
	else if (s < 86400)
		snprintf(buf, len, "%uh%02um", (unsigned)(s / 3600),
			 (unsigned)(s / 60 % 60));
	else
		snprintf(buf, len, "%ud%02uh", (unsigned)MIN(s / 86400, 999),
			 (unsigned)(s / 3600 % 24));
}

const char *top_sort_name(enum top_sort sort)
{
	static const char *const names[SORT_COUNT] = {
	    "slot",	"state",  "pid",   "uid", "in state",
	    "last use", "leases", "execs", "gen",
	};

	return (unsigned)sort < SORT_COUNT ? names[sort] : "?";
}

/* The sort key of a slot; larger ages sort later. */
static uint64_t sort_key(const struct top_snap *snap, uint32_t i,
			 enum top_sort sort)
{
	const struct shm_slot *s = &snap->slots[i];

	switch (sort) {
	case SORT_STATE:
		return s->state;
	case SORT_PID:
		return s->pid;
	case SORT_UID:
		return s->owner_uid;
	case SORT_AGE:
		return top_age(snap, s->since_ns);
	case SORT_LAST_USE:
		return top_age(snap, s->last_used_ns);
	case SORT_LEASES:
		return s->leases;
	case SORT_EXECS:
		return s->execs;
	case SORT_GEN:
		return s->generation;
	default:
		return i;
	}
}

struct sort_ctx {
	const struct top_snap *snap;
	enum top_sort sort;
	bool reverse;
};

static int compare_slots(const void *a, const void *b, void *arg)
{
	const struct sort_ctx *ctx = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	uint64_t kx = sort_key(ctx->snap, x, ctx->sort);
	uint64_t ky = sort_key(ctx->snap, y, ctx->sort);
	int c = kx < ky ? -1 : kx > ky ? 1 : (x > y) - (x < y);

	return ctx->reverse ? -c : c;
}

uint32_t top_slot_order(const struct top_snap *snap, enum top_sort sort,
			bool reverse, uint32_t *order)
{
	struct sort_ctx ctx = {snap, sort, reverse};
	uint32_t n = 0;

	for (uint32_t i = 0; i < snap->nslots; i++)
		if (snap->slots[i].state != SLOT_FREE)
			order[n++] = i;

	qsort_r(order, n, sizeof(*order), compare_slots, &ctx);
	return n;
}

static double per_sec(uint64_t old, uint64_t cur, double secs)
{
	return cur >= old ? (double)(cur - old) / secs : 0;
}

void top_rates_between(const struct top_snap *old, const struct top_snap *cur,
		       struct top_rates *out)
{
	const struct pool_counters *a = &old->seg->stats.c;
	const struct pool_counters *b = &cur->seg->stats.c;
	double secs = (double)(cur->mono_ns - old->mono_ns) / 1e9;

	memset(out, 0, sizeof(*out));
	if (cur->mono_ns <= old->mono_ns ||
	    old->seg->hdr.created_wall_ns != cur->seg->hdr.created_wall_ns)
		return;

	out->valid = true;
	out->hits = per_sec(a->hits, b->hits, secs);
	out->misses = per_sec(a->misses, b->misses, secs);
	out->evictions = per_sec(a->evictions, b->evictions, secs);
	out->boots = per_sec(a->boots, b->boots, secs);
	out->crashes = per_sec(a->crashes, b->crashes, secs);
}
