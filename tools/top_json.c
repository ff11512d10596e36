/* vmpool-top --json: one snapshot as a JSON document for scripts. */
#include <stdio.h>

#include "common/util.h"
#include "tools/top.h"

#define JSON_DEPTH 8
#define FLAT_DEPTH 3 /* objects this deep go on one line */

/* Remembers where a comma is due, and indents. */
struct jw {
	FILE *f;
	int depth;
	bool first[JSON_DEPTH];
};

/* Start a member (key) or an array element (key NULL). */
static void member(struct jw *w, const char *key)
{
	bool first = w->first[w->depth];

	w->first[w->depth] = false;
	if (!first)
		fputc(',', w->f);
	if (w->depth < FLAT_DEPTH)
		fprintf(w->f, "\n%*s", 2 * w->depth, "");
	else if (!first)
		fputc(' ', w->f);
	if (key) {
		json_put_str(w->f, key);
		fputs(": ", w->f);
	}
}

static void open_(struct jw *w, const char *key, char brace)
{
	member(w, key);
	fputc(brace, w->f);
	if (w->depth + 1 < JSON_DEPTH)
		w->depth++;
	w->first[w->depth] = true;
}

static void close_(struct jw *w, char brace)
{
	bool empty = w->first[w->depth];

	w->depth--;
	if (!empty && w->depth + 1 < FLAT_DEPTH)
		fprintf(w->f, "\n%*s", 2 * w->depth, "");
	fputc(brace, w->f);
}

static void u64(struct jw *w, const char *key, uint64_t v)
{
	member(w, key);
	fprintf(w->f, "%llu", (unsigned long long)v);
}

static void str(struct jw *w, const char *key, const char *s)
{
	member(w, key);
	json_put_str(w->f, s);
}

static void null(struct jw *w, const char *key)
{
	member(w, key);
	fputs("null", w->f);
}

static void boolean(struct jw *w, const char *key, bool v)
{
	member(w, key);
	fputs(v ? "true" : "false", w->f);
}

static void segment(struct jw *w, const struct top_snap *snap)
{
	const struct shm_header *h = &snap->seg->hdr;
	char path[64];

	snprintf(path, sizeof(path), "/dev/shm/vmpool.%s", snap->name);
	open_(w, "segment", '{');
	str(w, "path", path);
	u64(w, "abi_version", h->abi_version);
	u64(w, "nslots", h->nslots);
	u64(w, "size", h->total_size);
	u64(w, "created_wall_ns", h->created_wall_ns);
	u64(w, "creator_pid", h->creator_pid);
	u64(w, "events_written", h->events_head);
	close_(w, '}');

	open_(w, "supervisor", '{');
	u64(w, "pid", h->creator_pid);
	boolean(w, "alive", snap->supervisor_alive);
	str(w, "status", snap->supervisor_alive ? "running" : "gone");
	close_(w, '}');
}

static void config(struct jw *w, const struct pool_config *c)
{
	open_(w, "config", '{');
	u64(w, "min_size", c->min_size);
	u64(w, "max_size", c->max_size);
	u64(w, "max_idle_ns", c->max_idle_ns);
	u64(w, "health_check_interval", c->health_check_interval);
	u64(w, "max_total", c->max_total);
	u64(w, "max_leases_per_uid", c->max_leases_per_uid);
	close_(w, '}');
}

static void stats(struct jw *w, const struct top_snap *snap)
{
	const struct pool_counters *c = &snap->seg->stats.c;

	open_(w, "stats", '{');
	for (size_t i = 0; i < top_ncounters; i++)
		u64(w, top_counters[i].name,
		    top_counter(snap, &top_counters[i]));
	u64(w, "idle", c->idle);
	u64(w, "in_use", c->in_use);
	open_(w, "evicted_by", '{');
	for (unsigned r = 0; r < EVICT_NREASONS; r++)
		u64(w, top_evict_reason(r), c->evicted_by[r]);
	close_(w, '}');
	close_(w, '}');

	open_(w, "states", '{');
	for (unsigned s = 0; s < SLOT_NSTATES; s++)
		u64(w, shm_state_name(s), snap->states[s]);
	u64(w, "unknown", snap->states[SLOT_NSTATES]);
	close_(w, '}');
}

static void percentile(struct jw *w, const char *key, const uint64_t *hist,
		       double q)
{
	uint64_t ns;

	if (top_percentile(hist, q, &ns)) {
		u64(w, key, ns);
		return;
	}
	null(w, key);
}

static void latency(struct jw *w, const struct top_snap *snap)
{
	open_(w, "latency", '{');
	for (unsigned i = 0; i < HIST_COUNT; i++) {
		enum pool_hist h = top_hist_order[i];
		const uint64_t *hist = snap->seg->stats.hist[h];

		open_(w, top_hist_name(h), '{');
		u64(w, "count", top_hist_count(hist));
		percentile(w, "p50_ns", hist, 0.5);
		percentile(w, "p90_ns", hist, 0.9);
		percentile(w, "p99_ns", hist, 0.99);
		close_(w, '}');
	}
	close_(w, '}');
}

static void slot(struct jw *w, const struct top_snap *snap, uint32_t i)
{
	const struct shm_slot *s = &snap->slots[i];

	open_(w, NULL, '{');
	u64(w, "slot", i);
	str(w, "state", shm_state_name(s->state));
	u64(w, "pid", s->pid);
	u64(w, "uid", s->owner_uid);
	u64(w, "generation", s->generation);
	if (s->state == SLOT_BOOTING)
		str(w, "purpose", top_purpose_name(s->purpose));
	u64(w, "in_state_ns", top_age(snap, s->since_ns));
	u64(w, "since_last_use_ns", top_age(snap, s->last_used_ns));
	u64(w, "leases", s->leases);
	u64(w, "execs", s->execs);
	u64(w, "boots", s->boots);
	u64(w, "crashes", s->crashes);
	close_(w, '}');
}

static void event(struct jw *w, const struct top_snap *snap,
		  const struct pool_event *ev)
{
	char words[128];

	top_event_text(ev, words, sizeof(words));
	open_(w, NULL, '{');
	u64(w, "time_ns", ev->time_ns);
	u64(w, "age_ns", top_age(snap, ev->time_ns));
	str(w, "kind", top_event_name(ev->kind));
	if (ev->slot == SHM_NO_SLOT) {
		null(w, "slot");
		null(w, "state");
	} else {
		u64(w, "slot", ev->slot);
		str(w, "state", shm_state_name(ev->state));
	}
	u64(w, "value", ev->value);
	u64(w, "pid", ev->pid);
	u64(w, "uid", ev->uid);
	str(w, "text", words);
	close_(w, '}');
}

/* Events oldest first, as a log reads. */
static void events(struct jw *w, const struct top_snap *snap)
{
	uint32_t n = top_event_count(snap);

	open_(w, "events", '[');
	for (uint32_t i = n; i > 0; i--)
		event(w, snap, top_event(snap, i - 1));
	close_(w, ']');
}

void top_json_write(FILE *out, const struct top_snap *snap)
{
	struct jw w = {.f = out, .depth = 1, .first = {[1] = true}};

	fputc('{', out);
	str(&w, "pool", snap->name);
	u64(&w, "time_wall_ns", snap->wall_ns);
	u64(&w, "time_mono_ns", snap->mono_ns);
	segment(&w, snap);
	config(&w, &snap->seg->config);
	stats(&w, snap);
	latency(&w, snap);

	open_(&w, "slots", '[');
	for (uint32_t i = 0; i < snap->nslots; i++)
		slot(&w, snap, i);
	close_(&w, ']');

	events(&w, snap);
	fputs("\n}\n", out);
}
