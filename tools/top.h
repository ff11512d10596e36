/* vmpool-top's parts: a private snapshot of a pool and the views of it. */
#ifndef VMPOOL_TOP_H
#define VMPOOL_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shm/layout.h"

/* A consistent copy of one pool's segment, read without taking its lock.
 * Everything in it came from other processes: indices and enums are
 * checked where they are used. */
struct top_snap {
	char name[SHM_NAME_MAX + 1];
	void *buf; /* the copy, owned */
	size_t size;
	const struct shm_segment *seg;
	const struct shm_slot *slots;
	uint32_t nslots;
	uint64_t mono_ns; /* when taken, on the clock of the segment's times */
	uint64_t wall_ns;
	bool supervisor_alive;
	uint32_t states[SLOT_NSTATES + 1]; /* the last: unknown states */
};

/* Attach read-only, copy, detach. The snapshot's buffer is reused when
 * big enough. Errors: those of shm_attach; -EBUSY when writers left no
 * quiet moment to copy in; -EUCLEAN when the copy disagrees with its
 * own header. A failed take leaves the snapshot empty (seg NULL). */
int top_snap_take(struct top_snap *snap, const char *name);
void top_snap_free(struct top_snap *snap);

/* Whether pid still runs the process that created a segment at wall time
 * created_wall_ns; a pid reused by a younger process counts as gone. */
bool top_creator_alive(uint32_t pid, uint64_t created_wall_ns);

/* One line of error words for a failed take of pool `name`. */
void top_snap_strerror(int err, const char *name, char *buf, size_t len);

/* The pool's counters, described once for every output format. */
struct top_counter {
	const char *name; /* JSON key; Prometheus: vmpool_<name>_total */
	const char *help;
	size_t off; /* of a uint64_t in struct pool_stats */
};

extern const struct top_counter top_counters[];
extern const size_t top_ncounters;

uint64_t top_counter(const struct top_snap *snap, const struct top_counter *c);

/* Latency histograms in display order, with their names. */
extern const enum pool_hist top_hist_order[HIST_COUNT];
const char *top_hist_name(enum pool_hist h);

uint64_t top_hist_count(const uint64_t hist[SHM_HIST_BUCKETS]);

/* The q-quantile (0 < q <= 1) of a log2 histogram, interpolated inside
 * its bucket, so within a factor of two. false when it is empty. */
bool top_percentile(const uint64_t hist[SHM_HIST_BUCKETS], double q,
		    uint64_t *ns);

const char *top_event_name(unsigned kind);
const char *top_evict_reason(uint64_t reason);
const char *top_purpose_name(uint64_t purpose);

/* The event in words: "hit, generation 4", "evicted: expired"... */
void top_event_text(const struct pool_event *ev, char *buf, size_t len);

/* Events newest first: how many there are, and the i-th of them. */
uint32_t top_event_count(const struct top_snap *snap);
const struct pool_event *top_event(const struct top_snap *snap, uint32_t i);

/* Nanoseconds from `then` to the snapshot; 0 for the future or unset. */
uint64_t top_age(const struct top_snap *snap, uint64_t then);

/* A wall clock time for an event time, as 17:28:03.123. */
void top_fmt_time(const struct top_snap *snap, uint64_t mono, char *buf,
		  size_t len);

/* A duration in at most 6 characters: 850ns 12.3us 4.5ms 1.23s 5m03s. */
void top_fmt_ns(uint64_t ns, char *buf, size_t len);

enum top_sort {
	SORT_SLOT,
	SORT_STATE,
	SORT_PID,
	SORT_UID,
	SORT_AGE,
	SORT_LAST_USE,
	SORT_LEASES,
	SORT_EXECS,
	SORT_GEN,
	SORT_COUNT
};

const char *top_sort_name(enum top_sort sort);

/* The slots that are not free, in the given order: how many, in order
 * (nslots entries). */
uint32_t top_slot_order(const struct top_snap *snap, enum top_sort sort,
			bool reverse, uint32_t *order);

/* Hits, misses and evictions per second between two snapshots of the
 * same segment. */
struct top_rates {
	bool valid;
	double hits, misses, evictions, boots, crashes;
};

void top_rates_between(const struct top_snap *old, const struct top_snap *cur,
		       struct top_rates *out);

/* How the text view is drawn. rows 0: as long as it takes. */
struct top_view {
	enum top_sort sort;
	bool reverse;
	bool paused;
	bool live; /* the key help line */
	int rows;
	const char *note; /* a warning under the title, or NULL */
	struct top_rates rates;
};

void top_text_write(FILE *out, const struct top_snap *snap,
		    const struct top_view *view);
void top_json_write(FILE *out, const struct top_snap *snap);
void top_prom_write(FILE *out, const struct top_snap *snap);

/* The terminal of the live view: noncanonical, no echo, alternate
 * screen, restored by top_term_leave and on SIGINT, SIGTERM, SIGHUP,
 * SIGQUIT (which end the view: top_term_stopped) and SIGTSTP. */
int top_term_enter(void);
void top_term_leave(void);
bool top_term_stopped(void);

/* A key pressed within timeout_ms: the key, 0 on timeout or a signal
 * (resize, continue: redraw), or -errno. */
int top_term_key(int timeout_ms);

/* Lines and columns of the terminal (24 x 80 when unknown). */
void top_term_size(int *rows, int *cols);

/* Draw a frame from the top left, each line cut to cols and cleared to
 * its end, at most rows lines. */
void top_term_draw(const char *frame, size_t len, int rows, int cols);

#endif
