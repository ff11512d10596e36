/* vmpool-top --prometheus: one snapshot in the Prometheus text format. */
#include <math.h>
#include <stdio.h>

#include "common/util.h"
#include "tools/top.h"

static void family(FILE *f, const char *name, const char *type,
		   const char *help)
{
	fprintf(f, "# HELP vmpool_%s %s\n# TYPE vmpool_%s %s\n", name, help,
		name, type);
}

static void sample(FILE *f, const char *name, const char *pool,
		   unsigned long long v)
{
	fprintf(f, "vmpool_%s{pool=\"%s\"} %llu\n", name, pool, v);
}

static void health(FILE *f, const struct top_snap *snap)
{
	const struct shm_header *h = &snap->seg->hdr;

	family(f, "supervisor_up", "gauge",
	       "1 while the process that created the pool's segment runs.");
	sample(f, "supervisor_up", snap->name, snap->supervisor_alive);
	family(f, "created_timestamp_seconds", "gauge",
	       "When the pool's segment was created.");
	fprintf(f, "vmpool_created_timestamp_seconds{pool=\"%s\"} %.3f\n",
		snap->name, h->created_wall_ns / 1e9);
	family(f, "slots", "gauge", "Slots in the pool's table.");
	sample(f, "slots", snap->name, h->nslots);
}

static void config(FILE *f, const struct top_snap *snap)
{
	const struct pool_config *c = &snap->seg->config;
	const struct {
		const char *name, *help;
		uint64_t v;
	} rows[] = {
	    {"config_min_size", "VMs kept warm.", c->min_size},
	    {"config_max_size", "Most idle VMs.", c->max_size},
	    {"config_health_check_interval",
	     "Health check every Nth release; 0: never.",
	     c->health_check_interval},
	    {"config_max_total", "Most live workers; 0: one per slot.",
	     c->max_total},
	    {"config_max_leases_per_uid", "Leases per tenant; 0: unlimited.",
	     c->max_leases_per_uid},
	};

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		family(f, rows[i].name, "gauge", rows[i].help);
		sample(f, rows[i].name, snap->name, rows[i].v);
	}
	family(f, "config_max_idle_seconds", "gauge",
	       "Idle VMs older than this are evicted.");
	fprintf(f, "vmpool_config_max_idle_seconds{pool=\"%s\"} %.9g\n",
		snap->name, c->max_idle_ns / 1e9);
}

static void counters(FILE *f, const struct top_snap *snap)
{
	const struct pool_counters *c = &snap->seg->stats.c;
	char name[64];

	for (size_t i = 0; i < top_ncounters; i++) {
		snprintf(name, sizeof(name), "%s_total", top_counters[i].name);
		family(f, name, "counter", top_counters[i].help);
		sample(f, name, snap->name,
		       top_counter(snap, &top_counters[i]));
	}

	family(f, "evictions_by_reason_total", "counter",
	       "Evictions by their reason.");
	for (unsigned r = 0; r < EVICT_NREASONS; r++)
		fprintf(f,
			"vmpool_evictions_by_reason_total{pool=\"%s\","
			"reason=\"%s\"} %llu\n",
			snap->name, top_evict_reason(r),
			(unsigned long long)c->evicted_by[r]);
}

static void gauges(FILE *f, const struct top_snap *snap)
{
	const struct pool_counters *c = &snap->seg->stats.c;

	family(f, "idle", "gauge", "VMs in the idle ring.");
	sample(f, "idle", snap->name, c->idle);
	family(f, "in_use", "gauge", "VMs leased, or booting for a lease.");
	sample(f, "in_use", snap->name, c->in_use);

	family(f, "slot_states", "gauge", "Slots in each state.");
	for (unsigned s = 0; s < SLOT_NSTATES; s++)
		fprintf(f, "vmpool_slot_states{pool=\"%s\",state=\"%s\"} %u\n",
			snap->name, shm_state_name(s), snap->states[s]);
}

/* Buckets up to the highest one used, upper bounds in seconds. The pool
 * keeps no sum of its samples, so there is no _sum line. */
static void histogram(FILE *f, const struct top_snap *snap, enum pool_hist h)
{
	const uint64_t *hist = snap->seg->stats.hist[h];
	const char *name = top_hist_name(h);
	unsigned top = 0;
	uint64_t cum = 0;

	for (unsigned b = 0; b < SHM_HIST_BUCKETS; b++)
		if (hist[b])
			top = b;

	for (unsigned b = 0; b <= top && b < SHM_HIST_BUCKETS - 1; b++) {
		cum += hist[b];
		fprintf(f,
			"vmpool_%s_duration_seconds_bucket{pool=\"%s\","
			"le=\"%.9g\"} %llu\n",
			name, snap->name, ldexp(1, b + 1) / 1e9,
			(unsigned long long)cum);
	}
	fprintf(f,
		"vmpool_%s_duration_seconds_bucket{pool=\"%s\",le=\"+Inf\"} "
		"%llu\n",
		name, snap->name, (unsigned long long)top_hist_count(hist));
	fprintf(f, "vmpool_%s_duration_seconds_count{pool=\"%s\"} %llu\n", name,
		snap->name, (unsigned long long)top_hist_count(hist));
}

static void histograms(FILE *f, const struct top_snap *snap)
{
	static const char *const help[HIST_COUNT] = {
	    [HIST_BOOT] = "Boot start to ready.",
	    [HIST_LEASE] = "Lease to release.",
	    [HIST_RECYCLE] = "Release to back in the idle ring.",
	    [HIST_ACQUIRE] = "Tenant request to lease.",
	};
	char name[64];

	for (unsigned i = 0; i < HIST_COUNT; i++) {
		enum pool_hist h = top_hist_order[i];

		snprintf(name, sizeof(name), "%s_duration_seconds",
			 top_hist_name(h));
		family(f, name, "histogram", help[h]);
		histogram(f, snap, h);
	}
}

void top_prom_write(FILE *out, const struct top_snap *snap)
{
	health(out, snap);
	config(out, snap);
	counters(out, snap);
	gauges(out, snap);
	histograms(out, snap);
}
