/* vmpool-top: watch a pool live from its shared memory, or print it once. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "config.h"
#include "shm/shm.h"
#include "tools/top.h"

#define EXIT_ERROR 1
#define EXIT_USAGE 2

#define MIN_INTERVAL_NS 50000000ull /* 50 ms */
#define BUSY_TRIES	10
#define BUSY_PAUSE_NS	20000000 /* 20 ms */

enum format { FMT_LIVE, FMT_TEXT, FMT_JSON, FMT_PROMETHEUS };

struct options {
	const char *name;
	uint64_t interval_ns;
	bool once;
	enum format format;
};

/* The live view: what is shown and what it is compared with. */
struct live {
	struct top_snap shown, next;
	struct top_view view;
	char note[192];
	char restarted[96]; /* kept once seen */
	int rows, cols;
};

static int usage(FILE *f, int code)
{
	fprintf(f,
		"usage: vmpool-top [-n NAME] [-d SECONDS] [--once] [--json | "
		"--prometheus] [NAME]\n"
		"\n"
		"Shows the pool in /dev/shm/vmpool.NAME (default: default), "
		"read-only.\n"
		"  -n, --name NAME    pool name\n"
		"  -d, --delay SECS   refresh interval: 1, 0.5, 250ms "
		"(default 1 s)\n"
		"      --once         print one text view and exit\n"
		"      --json         one snapshot as JSON (implies --once)\n"
		"      --prometheus   one snapshot in Prometheus text format "
		"(implies --once)\n"
		"  -h, --help         this help;  -V, --version\n"
		"\n"
		"Keys: q quit, p pause, s (S) next (previous) sort column, r reverse.\n"
		"Exit: 0 ok, 1 error (no such pool, unreadable), 2 usage.\n");
	return code;
}

/* Seconds with a fraction, or any duration parse_duration_ns takes. */
static int parse_interval(const char *s, uint64_t *ns)
{
	char *end;
	double secs;

	if (parse_duration_ns(s, ns) == 0)
		return *ns >= MIN_INTERVAL_NS ? 0 : -ERANGE;

	errno = 0;
	secs = strtod(s, &end);
	if (errno || end == s || *end || !(secs * 1e9 >= MIN_INTERVAL_NS) ||
	    secs > 86400)
		return -EINVAL;
	*ns = (uint64_t)(secs * 1e9);
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"delay", required_argument, NULL, 'd'},
	    {"once", no_argument, NULL, 'o'},
	    {"json", no_argument, NULL, 'j'},
	    {"prometheus", no_argument, NULL, 'P'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "n:d:hV", longs, NULL)) != -1) {
		switch (c) {
		case 'n':
			o->name = optarg;
			break;
		case 'd':
			if (parse_interval(optarg, &o->interval_ns)) {
				fprintf(stderr, "vmpool-top: bad delay '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'o':
			o->once = true;
			break;
		case 'j':
			o->format = FMT_JSON;
			break;
		case 'P':
			o->format = FMT_PROMETHEUS;
			break;
		case 'h':
			exit(usage(stdout, 0));
		case 'V':
			printf("vmpool-top %s\n", VMPOOL_VERSION);
			exit(0);
		default:
			return usage(stderr, EXIT_USAGE);
		}
	}
	return 0;
}

static int check_options(int argc, char **argv, struct options *o)
{
	if (optind < argc)
		o->name = argv[optind++];
	if (optind < argc)
		return usage(stderr, EXIT_USAGE);

	if (shm_name_check(o->name)) {
		fprintf(stderr,
			"vmpool-top: bad pool name '%s': letters, digits, "
			"'-' and '_', at most %d\n",
			o->name, SHM_NAME_MAX);
		return EXIT_USAGE;
	}
	if (o->format == FMT_LIVE && o->once)
		o->format = FMT_TEXT;
	return 0;
}

static void log_take_error(int err, const char *name)
{
	char words[256];

	top_snap_strerror(err, name, words, sizeof(words));
	pr_err("%s", words);
}

static void gone_note(const struct top_snap *snap, char *buf, size_t len)
{
	snprintf(buf, len,
		 "supervisor gone: pid %u no longer runs; the pool is frozen",
		 snap->seg->hdr.creator_pid);
}

/* A busy pool gets a few more chances, a little apart. */
static int take_patiently(struct top_snap *snap, const char *name)
{
	const struct timespec pause = {0, BUSY_PAUSE_NS};
	int rc = top_snap_take(snap, name);

	for (int i = 1; rc == -EBUSY && i < BUSY_TRIES; i++) {
		nanosleep(&pause, NULL);
		rc = top_snap_take(snap, name);
	}
	return rc;
}

static int print_once(const struct options *o)
{
	struct top_snap snap = {0};
	struct top_view view = {0};
	char note[128];
	int rc = take_patiently(&snap, o->name);

	if (rc) {
		log_take_error(rc, o->name);
		top_snap_free(&snap);
		return EXIT_ERROR;
	}

	if (o->format == FMT_JSON)
		top_json_write(stdout, &snap);
	else if (o->format == FMT_PROMETHEUS)
		top_prom_write(stdout, &snap);
	else {
		if (!snap.supervisor_alive) {
			gone_note(&snap, note, sizeof(note));
			view.note = note;
		}
		top_text_write(stdout, &snap, &view);
	}
	top_snap_free(&snap);

	return fflush(stdout) == 0 ? 0 : EXIT_ERROR;
}

/* A new creation time means a new segment: its supervisor restarted. */
static void note_restart(struct live *l, const struct top_snap *cur)
{
	const struct shm_header *h = &cur->seg->hdr;
	time_t secs = h->created_wall_ns / 1000000000ull;
	char when[16];
	struct tm tm;

	localtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	snprintf(l->restarted, sizeof(l->restarted),
		 "supervisor restarted: pool recreated at %s by pid %u", when,
		 h->creator_pid);
}

static void set_note(struct live *l)
{
	if (!l->shown.supervisor_alive)
		gone_note(&l->shown, l->note, sizeof(l->note));
	else
		snprintf(l->note, sizeof(l->note), "%s", l->restarted);
}

/* Take a new snapshot; on success it becomes the one shown. A failure
 * keeps the last one on screen under the error. */
static void refresh(struct live *l, const char *name)
{
	struct top_snap old;
	int rc = top_snap_take(&l->next, name);

	if (rc) {
		top_snap_strerror(rc, name, l->note, sizeof(l->note));
		l->view.rates.valid = false;
		return;
	}

	if (l->shown.seg) {
		top_rates_between(&l->shown, &l->next, &l->view.rates);
		if (l->shown.seg->hdr.created_wall_ns !=
		    l->next.seg->hdr.created_wall_ns)
			note_restart(l, &l->next);
	}

	old = l->shown;
	l->shown = l->next;
	l->next = old;
	set_note(l);
}

static void draw(struct live *l)
{
	char *frame = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&frame, &len);

	if (!f)
		return;
	top_term_size(&l->rows, &l->cols);
	l->view.rows = l->rows;
	l->view.note = l->note[0] ? l->note : NULL;

	top_text_write(f, &l->shown, &l->view);
	fclose(f);

	top_term_draw(frame, len, l->rows, l->cols);
	free(frame);
}

/* A key's effect on the view; false to quit. */
static bool on_key(struct live *l, int key)
{
	switch (key) {
	case 'q':
	case 'Q':
		return false;
	case 'p':
	case 'P':
	case ' ':
		l->view.paused = !l->view.paused;
		break;
	case 's':
		l->view.sort = (l->view.sort + 1) % SORT_COUNT;
		break;
	case 'S':
		l->view.sort = (l->view.sort + SORT_COUNT - 1) % SORT_COUNT;
		break;
	case 'r':
	case 'R':
		l->view.reverse = !l->view.reverse;
		break;
	}
	return true;
}

/* Redraw on every key or signal; refresh when the interval is up. */
static int watch(struct live *l, const struct options *o)
{
	uint64_t due = now_ns() + o->interval_ns;
	int key = 0;

	while (!top_term_stopped()) {
		uint64_t now = now_ns();

		if (now >= due) {
			if (!l->view.paused)
				refresh(l, o->name);
			due = now + o->interval_ns;
		}
		draw(l);

		key = top_term_key((int)((due - MIN(due, now_ns())) / 1000000));
		if (key < 0)
			return key;
		if (key > 0 && !on_key(l, key))
			return 0;
	}
	return 0;
}

/* The first snapshot comes before the screen: a pool that is not
 * there is an error, as in --once. */
static int run_live(const struct options *o)
{
	struct live l = {.view = {.live = true}};
	int rc = take_patiently(&l.shown, o->name);
	int code = EXIT_ERROR;

	if (rc) {
		log_take_error(rc, o->name);
		goto out_free;
	}
	set_note(&l);

	rc = top_term_enter();
	if (rc == -ENOTTY) {
		pr_err("the live view needs a terminal; use --once");
		code = EXIT_USAGE;
		goto out_free;
	}
	if (rc) {
		top_term_leave();
		pr_err("terminal setup: %s", strerror(-rc));
		goto out_free;
	}

	rc = watch(&l, o);
	top_term_leave();
	if (rc)
		pr_err("reading keys: %s", strerror(-rc));

out_free:
	top_snap_free(&l.shown);
	top_snap_free(&l.next);
	return rc ? code : 0;
}

int main(int argc, char **argv)
{
	struct options o = {
	    .name = "default",
	    .interval_ns = 1000000000ull,
	};
	int rc;

	log_init(argv[0], -1);
	rc = parse_options(argc, argv, &o);
	if (!rc)
		rc = check_options(argc, argv, &o);
	if (rc)
		return rc;

	return o.format == FMT_LIVE ? run_live(&o) : print_once(&o);
}
