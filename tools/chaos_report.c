/* vmpool-chaos: the report, as text or JSON, and the verdict. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "tools/chaos.h"

#define MS 1e6

/* Durations in ns, sorted, for percentiles. */
struct series {
	uint64_t *v;
	size_t n;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(const struct series *s, unsigned p)
{
	return s->n ? s->v[(s->n - 1) * p / 100] : 0;
}

static uint64_t next_lease_after(const struct chaos *c, uint64_t t)
{
	uint64_t best = 0;

	for (size_t i = 0; i < c->nleases; i++)
		if (c->leases[i].leased_ns > t &&
		    (!best || c->leases[i].leased_ns < best))
			best = c->leases[i].leased_ns;
	return best;
}

struct figures {
	struct series idle;  /* death to min_size idle, when it fell below */
	struct series lease; /* death to the next lease */
	struct series evict; /* bad guest to its worker's end */
};

static int series_init(struct series *s, size_t n)
{
	s->v = calloc(n + 1, sizeof(uint64_t));
	s->n = 0;
	return s->v ? 0 : -1;
}

static void series_add(struct series *s, uint64_t v)
{
	if (s->v)
		s->v[s->n++] = v;
}

static void series_sort(struct series *s)
{
	if (s->v)
		qsort(s->v, s->n, sizeof(uint64_t), cmp_u64);
}

/* Recovery after each worker death: to min_size idle (when the death
 * took it below), to the next lease; and how long misbehaving guests
 * took to be evicted. */
static void gather(const struct chaos *c, struct figures *f)
{
	size_t n = c->nvictims;

	series_init(&f->idle, n);
	series_init(&f->lease, n);
	series_init(&f->evict, n);
	for (size_t i = 0; i < n; i++) {
		const struct chaos_victim *v = &c->victims[i];
		uint64_t next;

		if (!v->dead_ns ||
		    (v->kind == CK_FAULT_POINT && v->killed_by_us))
			continue;
		if (v->recovered_ns && v->fell_below)
			series_add(&f->idle, v->recovered_ns - v->dead_ns);
		next = next_lease_after(c, v->dead_ns);
		if (next)
			series_add(&f->lease, next - v->dead_ns);
		if (v->kind == CK_GUEST_HANG || v->kind == CK_GUEST_GARBAGE ||
		    v->kind == CK_GUEST_PANIC)
			series_add(&f->evict, v->dead_ns - v->t_ns);
	}
	series_sort(&f->idle);
	series_sort(&f->lease);
	series_sort(&f->evict);
}

static void release_figures(struct figures *f)
{
	free(f->idle.v);
	free(f->lease.v);
	free(f->evict.v);
}

bool chaos_passed(const struct chaos *c)
{
	for (int i = 0; i < c->nchecks; i++)
		if (!c->checks[i].ok)
			return false;
	return c->nchecks > 0;
}

static uint64_t total(const uint64_t *v, int n)
{
	uint64_t sum = 0;

	for (int i = 0; i < n; i++)
		sum += v[i];
	return sum;
}

static void verdict(const struct chaos *c, char *buf, size_t len)
{
	uint64_t req = total(c->requests, CR_NRESULTS);

	for (int i = 0; i < c->nchecks; i++)
		if (!c->checks[i].ok) {
			snprintf(buf, len, "FAIL: %s: %s", c->checks[i].name,
				 c->checks[i].detail);
			return;
		}
	snprintf(buf, len,
		 "PASS: %llu faults, %llu requests (%llu clear errors), "
		 "%zu leases, none lost or doubled; pool settled in %.1f s",
		 (unsigned long long)total(c->faults, CK_NKINDS),
		 (unsigned long long)req,
		 (unsigned long long)(req - c->requests[CR_OK]), c->nleases,
		 c->settle_ns / 1e9);
}

static void text_faults(const struct chaos *c)
{
	printf("faults (injected / found nothing to hit):\n");
	for (int k = 0; k < CK_NKINDS; k++) {
		if (!c->faults[k] && !c->skipped[k])
			continue;
		printf("  %-15s %5llu / %llu", chaos_kind_name(k),
		       (unsigned long long)c->faults[k],
		       (unsigned long long)c->skipped[k]);
		if (k == CK_FAULT_POINT)
			printf("   (armed %llu, worker died armed %llu; "
			       "armed to exit %llu, exits logged %llu)",
			       (unsigned long long)c->fp_armed,
			       (unsigned long long)c->fp_fired,
			       (unsigned long long)c->fp_exit_armed,
			       (unsigned long long)c->fp_exit_seen);
		if (k == CK_GUEST_PANIC)
			printf("   (panics logged %llu)",
			       (unsigned long long)c->panics_logged);
		printf("\n");
	}
}

static void text_requests(const struct chaos *c)
{
	printf("requests: %llu ok, %llu errors, %llu hung\n",
	       (unsigned long long)c->requests[CR_OK],
	       (unsigned long long)(total(c->requests, CR_NRESULTS) -
				    c->requests[CR_OK]),
	       (unsigned long long)c->hung);
	for (int r = 1; r < CR_NRESULTS; r++)
		if (c->requests[r])
			printf("  %-15s %5llu\n", chaos_result_name(r),
			       (unsigned long long)c->requests[r]);
}

static void text_series(const char *what, const struct series *s)
{
	printf("  %-28s n=%-4zu p50 %8.1f ms  p99 %8.1f ms  max %8.1f ms\n",
	       what, s->n, pct(s, 50) / MS, pct(s, 99) / MS, pct(s, 100) / MS);
}

static void text_report(const struct chaos *c, const struct figures *f)
{
	char v[400];

	printf("vmpool-chaos: pool %s (%s, %s), seed %llu, %u tenants, "
	       "%.1f s of faults\n",
	       c->name, c->private_pool ? "private" : "existing", c->o.backend,
	       (unsigned long long)c->o.seed, c->o.threads,
	       (c->t_faults_end - c->t_start) / 1e9);
	text_faults(c);
	text_requests(c);
	printf("leases: %zu; snapshots checked: %llu, invariants broken in "
	       "%llu\n",
	       c->nleases, (unsigned long long)c->snapshots,
	       (unsigned long long)c->invariant_breaks);
	printf("recovery after a worker died:\n");
	text_series("back to min_size idle", &f->idle);
	text_series("to the next lease", &f->lease);
	text_series("bad guest evicted after", &f->evict);
	printf("checks:\n");
	for (int i = 0; i < c->nchecks; i++)
		printf("  [%s] %-24s %s\n", c->checks[i].ok ? " ok " : "FAIL",
		       c->checks[i].name, c->checks[i].detail);
	verdict(c, v, sizeof(v));
	printf("verdict: %s\n", v);
}

static void json_series(const char *name, const struct series *s, bool comma)
{
	printf("    \"%s\": {\"n\": %zu, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
	       "\"max_ms\": %.3f}%s\n",
	       name, s->n, pct(s, 50) / MS, pct(s, 99) / MS, pct(s, 100) / MS,
	       comma ? "," : "");
}

static void json_counts(const char *name, const uint64_t *v, int n,
			const char *(*label)(int))
{
	printf("  \"%s\": {", name);
	for (int i = 0; i < n; i++)
		printf("%s\"%s\": %llu", i ? ", " : "", label(i),
		       (unsigned long long)v[i]);
	printf("},\n");
}

static const char *kind_label(int k)
{
	return chaos_kind_name(k);
}

static const char *result_label(int r)
{
	return chaos_result_name(r);
}

static void json_report(const struct chaos *c, const struct figures *f)
{
	char v[400];

	verdict(c, v, sizeof(v));
	printf("{\n  \"pool\": ");
	json_put_str(stdout, c->name);
	printf(",\n  \"private\": %s,\n  \"backend\": \"%s\",\n"
	       "  \"seed\": %llu,\n  \"tenants\": %u,\n"
	       "  \"fault_seconds\": %.3f,\n",
	       c->private_pool ? "true" : "false", c->o.backend,
	       (unsigned long long)c->o.seed, c->o.threads,
	       (c->t_faults_end - c->t_start) / 1e9);
	json_counts("faults", c->faults, CK_NKINDS, kind_label);
	json_counts("skipped", c->skipped, CK_NKINDS, kind_label);
	printf("  \"fault_points\": {\"armed\": %llu, \"died_armed\": %llu, "
	       "\"exit_armed\": %llu, \"exit_logged\": %llu},\n",
	       (unsigned long long)c->fp_armed, (unsigned long long)c->fp_fired,
	       (unsigned long long)c->fp_exit_armed,
	       (unsigned long long)c->fp_exit_seen);
	printf("  \"broken_guests\": {\"told\": %llu, \"untold\": %llu, "
	       "\"panics_logged\": %llu},\n",
	       (unsigned long long)c->guest_told,
	       (unsigned long long)c->guest_untold,
	       (unsigned long long)c->panics_logged);
	json_counts("requests", c->requests, CR_NRESULTS, result_label);
	printf("  \"hung\": %llu,\n  \"leases\": %zu,\n  \"snapshots\": %llu,\n"
	       "  \"invariant_breaks\": %llu,\n  \"settle_seconds\": %.3f,\n",
	       (unsigned long long)c->hung, c->nleases,
	       (unsigned long long)c->snapshots,
	       (unsigned long long)c->invariant_breaks, c->settle_ns / 1e9);
	printf("  \"recovery\": {\n");
	json_series("to_min_idle", &f->idle, true);
	json_series("to_next_lease", &f->lease, true);
	json_series("bad_guest_evicted", &f->evict, false);
	printf("  },\n  \"checks\": [\n");
	for (int i = 0; i < c->nchecks; i++) {
		printf("    {\"name\": \"%s\", \"ok\": %s, \"detail\": ",
		       c->checks[i].name, c->checks[i].ok ? "true" : "false");
		json_put_str(stdout, c->checks[i].detail);
		printf("}%s\n", i + 1 < c->nchecks ? "," : "");
	}
	printf("  ],\n  \"passed\": %s,\n  \"verdict\": ",
	       chaos_passed(c) ? "true" : "false");
	json_put_str(stdout, v);
	printf("\n}\n");
}

void chaos_report(struct chaos *c)
{
	struct figures f;

	pthread_mutex_lock(&c->mu);
	gather(c, &f);
	if (c->o.json)
		json_report(c, &f);
	else
		text_report(c, &f);
	pthread_mutex_unlock(&c->mu);
	release_figures(&f);
	fflush(stdout);
}
