/* vmpool-top: the text view of a snapshot, 80 columns, for the terminal. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/util.h"
#include "tools/top.h"

/* Events shown by a view without a height limit. */
#define ONCE_EVENTS 20

/* Counts the lines written, to fit the view to the terminal. */
struct pen {
	FILE *f;
	int lines;
};

static void __attribute__((format(printf, 2, 3)))
put(struct pen *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(p->f, fmt, ap);
	va_end(ap);
	fputc('\n', p->f);
	p->lines++;
}

static void fmt_wall(uint64_t wall, bool date, char *buf, size_t len)
{
	time_t secs = wall / 1000000000ull;
	struct tm tm;

	localtime_r(&secs, &tm);
	if (date)
		strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	else
		strftime(buf, len, "%H:%M:%S", &tm);
}

static void title(struct pen *p, const struct top_snap *snap)
{
	const struct shm_header *h = &snap->seg->hdr;
	char now[16], created[32], up[16];

	fmt_wall(snap->wall_ns, false, now, sizeof(now));
	fmt_wall(h->created_wall_ns, true, created, sizeof(created));
	top_fmt_ns(snap->wall_ns > h->created_wall_ns
		       ? snap->wall_ns - h->created_wall_ns
		       : 0,
		   up, sizeof(up));

	put(p, "vmpool-top  pool %-16s supervisor pid %-8u %-7s  %s",
	    snap->name, h->creator_pid,
	    snap->supervisor_alive ? "running" : "GONE", now);
	put(p, "created %s (up %s), %u slots, segment %zu KiB", created, up,
	    h->nslots, (size_t)(h->total_size / 1024));
}

static void health_words(uint32_t every, char *buf, size_t len)
{
	if (every == 0)
		snprintf(buf, len, "never");
	else if (every == 1)
		snprintf(buf, len, "every release");
	else
		snprintf(buf, len, "every %uth release", every);
}

static void config(struct pen *p, const struct top_snap *snap)
{
	const struct pool_config *c = &snap->seg->config;
	char idle[16], hc[32], total[32], per_uid[16];

	top_fmt_ns(c->max_idle_ns, idle, sizeof(idle));
	health_words(c->health_check_interval, hc, sizeof(hc));
	if (c->max_total)
		snprintf(total, sizeof(total), "%u", c->max_total);
	else
		snprintf(total, sizeof(total), "no cap");
	if (c->max_leases_per_uid)
		snprintf(per_uid, sizeof(per_uid), "%u", c->max_leases_per_uid);
	else
		snprintf(per_uid, sizeof(per_uid), "unlimited");

	put(p, "config: min %u  max %u  max_idle %s  health check %s",
	    c->min_size, c->max_size, c->max_idle_ns ? idle : "none", hc);
	put(p, "caps: live workers %s  leases per uid %s", total, per_uid);
}

static void rate_cell(struct pen *p, const struct top_rates *r, double v)
{
	if (r->valid)
		fprintf(p->f, "%10.1f", v);
	else
		fprintf(p->f, "%10s", "-");
}

static void stats(struct pen *p, const struct top_snap *snap,
		  const struct top_rates *r)
{
	const struct pool_counters *c = &snap->seg->stats.c;

	put(p, "%-12s%10s%10s%10s%10s%10s", "", "hits", "misses", "evictions",
	    "boots", "crashes");
	fprintf(p->f, "%-12s", "per second");
	rate_cell(p, r, r->hits);
	rate_cell(p, r, r->misses);
	rate_cell(p, r, r->evictions);
	rate_cell(p, r, r->boots);
	rate_cell(p, r, r->crashes);
	put(p, "%s", "");
	put(p, "%-12s%10llu%10llu%10llu%10llu%10llu", "total",
	    (unsigned long long)c->hits, (unsigned long long)c->misses,
	    (unsigned long long)c->evictions, (unsigned long long)c->boots,
	    (unsigned long long)c->crashes);
}

static void states(struct pen *p, const struct top_snap *snap)
{
	const struct pool_counters *c = &snap->seg->stats.c;
	const uint32_t *n = snap->states;

	put(p,
	    "slots: free %u  booting %u  idle %u  leased %u  recycling %u  "
	    "dead %u",
	    n[SLOT_FREE], n[SLOT_BOOTING], n[SLOT_IDLE], n[SLOT_LEASED],
	    n[SLOT_RECYCLING], n[SLOT_DEAD]);
	put(p,
	    "in use %llu, boot failures %llu, health check failures %llu, "
	    "repairs %llu",
	    (unsigned long long)c->in_use, (unsigned long long)c->boot_failures,
	    (unsigned long long)c->hc_failures,
	    (unsigned long long)snap->seg->stats.repairs);
}

static void latency_row(struct pen *p, const struct top_snap *snap,
			enum pool_hist h)
{
	const uint64_t *hist = snap->seg->stats.hist[h];
	static const double qs[] = {0.5, 0.9, 0.99};
	char cell[16];
	uint64_t ns;

	fprintf(p->f, "%-12s", top_hist_name(h));
	for (size_t i = 0; i < ARRAY_SIZE(qs); i++) {
		if (top_percentile(hist, qs[i], &ns))
			top_fmt_ns(ns, cell, sizeof(cell));
		else
			snprintf(cell, sizeof(cell), "-");
		fprintf(p->f, "%10s", cell);
	}
	put(p, "%10llu", (unsigned long long)top_hist_count(hist));
}

static void latency(struct pen *p, const struct top_snap *snap)
{
	put(p, "%-12s%10s%10s%10s%10s", "latency", "p50", "p90", "p99",
	    "count");
	for (unsigned i = 0; i < HIST_COUNT; i++)
		latency_row(p, snap, top_hist_order[i]);
}

static void slot_row(struct pen *p, const struct top_snap *snap, uint32_t i)
{
	const struct shm_slot *s = &snap->slots[i];
	char age[16], used[16], uid[16] = "-", pid[16] = "-";

	top_fmt_ns(top_age(snap, s->since_ns), age, sizeof(age));
	if (s->last_used_ns)
		top_fmt_ns(top_age(snap, s->last_used_ns), used, sizeof(used));
	else
		snprintf(used, sizeof(used), "never");
	if (s->state == SLOT_LEASED ||
	    (s->state == SLOT_BOOTING && s->purpose == BOOT_LEASE))
		snprintf(uid, sizeof(uid), "%u", s->owner_uid);
	if (s->pid)
		snprintf(pid, sizeof(pid), "%u", s->pid);

	put(p, "%5u %-10s %8s %8s %8s %8s %8u %8u %8u", i,
	    shm_state_name(s->state), pid, uid, age, used, s->leases, s->execs,
	    s->generation);
}

static void slot_table(struct pen *p, const struct top_snap *snap,
		       const struct top_view *v, int room)
{
	uint32_t *order = calloc(snap->nslots, sizeof(*order));
	uint32_t n;

	if (!order)
		return;
	n = top_slot_order(snap, v->sort, v->reverse, order);

	put(p, "%s", "");
	put(p, "%5s %-10s %8s %8s %8s %8s %8s %8s %8s", "SLOT", "STATE", "PID",
	    "UID", "IN STATE", "LAST USE", "LEASES", "EXECS", "GEN");
	for (uint32_t i = 0; i < n && (room < 0 || (int)i < room); i++)
		slot_row(p, snap, order[i]);
	if (room >= 0 && n > (uint32_t)room)
		put(p, "  ... %u more", n - (uint32_t)room);
	free(order);
}

static void event_row(struct pen *p, const struct top_snap *snap,
		      const struct pool_event *ev)
{
	char when[16], slot[16] = "-", words[96];

	top_fmt_time(snap, ev->time_ns, when, sizeof(when));
	if (ev->slot != SHM_NO_SLOT)
		snprintf(slot, sizeof(slot), "%u", ev->slot);
	top_event_text(ev, words, sizeof(words));

	put(p, "%s %5s  %-9s %s", when, slot, top_event_name(ev->kind), words);
}

static void events(struct pen *p, const struct top_snap *snap, uint32_t n)
{
	put(p, "%s", "");
	put(p, "%-12s %5s  %-9s %s", "EVENT TIME", "SLOT", "KIND",
	    "(newest first)");
	for (uint32_t i = 0; i < n; i++)
		event_row(p, snap, top_event(snap, i));
}

static void key_help(struct pen *p, const struct top_view *v)
{
	fprintf(p->f, "q quit  p pause  s sort (%s)  r reverse%s%s",
		top_sort_name(v->sort), v->reverse ? " (reversed)" : "",
		v->paused ? "   PAUSED" : "");
	p->lines++;
}

/* Split what is left of the screen between slots and events: events
 * get a third, or all they need when the slots need less. */
static void share_rows(int room, uint32_t slots, uint32_t evs, int *slot_rows,
		       int *ev_rows)
{
	int want_ev = (int)evs, want_slots = (int)slots + 1;

	room -= 4; /* two titles, two blank lines */
	*ev_rows = MIN(want_ev, MAX(room / 3, 3));
	*slot_rows = room - *ev_rows;
	if (want_slots < *slot_rows) {
		*slot_rows = want_slots;
		*ev_rows = MIN(want_ev, room - want_slots);
	}
	*slot_rows = MAX(*slot_rows - 1, 0); /* the "more" line */
	*ev_rows = MAX(*ev_rows, 0);
}

void top_text_write(FILE *out, const struct top_snap *snap,
		    const struct top_view *v)
{
	struct pen p = {out, 0};
	uint32_t nev = top_event_count(snap);
	uint32_t busy = snap->nslots - snap->states[SLOT_FREE];
	int slot_rows = -1, ev_rows = MIN((int)nev, ONCE_EVENTS);

	title(&p, snap);
	config(&p, snap);
	if (v->note)
		put(&p, "! %s", v->note);
	put(&p, "%s", "");
	stats(&p, snap, &v->rates);
	states(&p, snap);
	put(&p, "%s", "");
	latency(&p, snap);

	if (v->rows > 0)
		share_rows(v->rows - p.lines - (v->live ? 1 : 0), busy, nev,
			   &slot_rows, &ev_rows);
	slot_table(&p, snap, v, slot_rows);
	events(&p, snap, (uint32_t)ev_rows);
	if (v->live)
		key_help(&p, v);
}
