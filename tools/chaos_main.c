/* vmpool-chaos: options, the order of a run, and small shared helpers. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "config.h"
#include "shm/shm.h"
#include "tools/chaos.h"

#define SEC	     1000000000ull
#define ALL_KINDS    ((1u << CK_NKINDS) - 1)
#define STOP_NS	     (60 * SEC)
#define LATE_JOIN_NS (10 * SEC)

static const char *const kind_names[CK_NKINDS] = {
    "kill",	     "stop-cont",      "stop-kill",	"fault-point",
    "guest-stall",   "guest-hang",     "guest-garbage", "guest-panic",
    "tenant-vanish", "tenant-garbage",
};

static const char *const result_names[CR_NRESULTS] = {
    "ok", "vm_lost", "no_capacity", "guest", "pool_other", "local", "wrong",
};

const char *chaos_kind_name(enum chaos_kind k)
{
	return k < CK_NKINDS ? kind_names[k] : "?";
}

const char *chaos_result_name(enum chaos_result r)
{
	return r < CR_NRESULTS ? result_names[r] : "?";
}

/* xorshift64*: small, and the same sequence for the same seed. */
uint64_t chaos_rand(uint64_t *state, uint64_t n)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return n ? (x * 0x2545f4914f6cdd1dull) % n : 0;
}

void chaos_sleep_ns(uint64_t ns)
{
	struct timespec ts = {ns / SEC, ns % SEC};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void chaos_note(const struct chaos *c, const char *fmt, ...)
{
	char line[400];
	va_list ap;

	if (!c->o.verbose)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "[%8.3f] %s\n", (now_ns() - c->t_start) / 1e9, line);
}

/* --- options --- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vmpool-chaos [OPTION]...\n"
		"Break a vmpool pool on purpose while tenants use it, then "
		"check that no\nVM was lost or leased twice and that the pool "
		"recovers. By default a\nprivate vmpoold (ns backend) is "
		"started next to this program.\n\n"
		"  -n, --count N           faults to inject (default: 100, or "
		"unbounded with -t)\n"
		"  -t, --time DURATION     inject for this long (with -n: "
		"whichever ends first)\n"
		"  -s, --seed N            seed of the fault sequence "
		"(default: 1)\n"
		"  -i, --interval DURATION mean pause between faults "
		"(default: 200ms)\n"
		"  -j, --threads N         tenants working meanwhile "
		"(default: 3)\n"
		"      --kinds LIST        comma-separated fault kinds "
		"(default: all that apply):\n"
		"                          kill, stop-cont, stop-kill, "
		"fault-point, guest-stall,\n"
		"                          guest-hang, guest-garbage, "
		"guest-panic (kvm),\n"
		"                          tenant-vanish, tenant-garbage\n"
		"      --min N, --max N, --max-total N\n"
		"                          private pool sizes (default: 2, 4, "
		"10)\n"
		"      --backend ns|kvm    backend of the pool (default: ns); "
		"kvm guests are\n"
		"                          broken from inside, by a tenant\n"
		"      --name NAME         an existing pool instead: its "
		"segment name\n"
		"      --socket PATH       and its socket (default: vmpoold's "
		"for NAME)\n"
		"      --hang DURATION     a request pending this long is hung "
		"(default: 30s)\n"
		"      --settle DURATION   longest wait for the pool to settle "
		"(default: 30s)\n"
		"      --json              the report as JSON\n"
		"      --keep              keep the private pool's log\n"
		"  -v, --verbose           say each fault as it happens, on "
		"stderr\n"
		"  -h, --help              this text\n\n"
		"Exit status: 0 when every check passed, 1 otherwise.\n");
}

enum {
	OPT_KINDS = 256,
	OPT_MIN,
	OPT_MAX,
	OPT_TOTAL,
	OPT_BACKEND,
	OPT_NAME,
	OPT_SOCKET,
	OPT_HANG,
	OPT_SETTLE,
	OPT_JSON,
	OPT_KEEP,
};

static const struct option longopts[] = {
    {"count", required_argument, NULL, 'n'},
    {"time", required_argument, NULL, 't'},
    {"seed", required_argument, NULL, 's'},
    {"interval", required_argument, NULL, 'i'},
    {"threads", required_argument, NULL, 'j'},
    {"kinds", required_argument, NULL, OPT_KINDS},
    {"min", required_argument, NULL, OPT_MIN},
    {"max", required_argument, NULL, OPT_MAX},
    {"max-total", required_argument, NULL, OPT_TOTAL},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"name", required_argument, NULL, OPT_NAME},
    {"socket", required_argument, NULL, OPT_SOCKET},
    {"hang", required_argument, NULL, OPT_HANG},
    {"settle", required_argument, NULL, OPT_SETTLE},
    {"json", no_argument, NULL, OPT_JSON},
    {"keep", no_argument, NULL, OPT_KEEP},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse_kinds(const char *list, uint32_t *out)
{
	char copy[256], *save = NULL, *w;

	snprintf(copy, sizeof(copy), "%s", list);
	*out = 0;
	for (w = strtok_r(copy, ",", &save); w;
	     w = strtok_r(NULL, ",", &save)) {
		int k;

		for (k = 0; k < CK_NKINDS && strcmp(w, kind_names[k]); k++)
			;
		if (k == CK_NKINDS)
			return -EINVAL;
		*out |= 1u << k;
	}
	return *out ? 0 : -EINVAL;
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;
	int err = parse_u64(s, min, max, &v);

	if (!err)
		*out = v;
	return err;
}

static int set_opt(struct chaos_opts *o, int opt, const char *arg)
{
	switch (opt) {
	case 'n':
		return parse_u64(arg, 1, 1000000, &o->count);
	case 't':
		return parse_duration_ns(arg, &o->duration_ns);
	case 's':
		return parse_u64(arg, 0, UINT64_MAX, &o->seed);
	case 'i':
		return parse_duration_ns(arg, &o->interval_ns);
	case 'j':
		return parse_u32(arg, 0, CHAOS_MAX_THREADS, &o->threads);
	case OPT_KINDS:
		return parse_kinds(arg, &o->kinds);
	case OPT_MIN:
		return parse_u32(arg, 0, 64, &o->min_size);
	case OPT_MAX:
		return parse_u32(arg, 1, 64, &o->max_size);
	case OPT_TOTAL:
		return parse_u32(arg, 1, 256, &o->max_total);
	case OPT_BACKEND:
		o->backend = arg;
		o->kvm = !strcmp(arg, "kvm");
		return strcmp(arg, "ns") && !o->kvm ? -EINVAL : 0;
	case OPT_NAME:
		o->name = arg;
		return shm_name_check(arg);
	case OPT_SOCKET:
		o->socket = arg;
		return 0;
	case OPT_HANG:
		return parse_duration_ns(arg, &o->hang_ns);
	case OPT_SETTLE:
		return parse_duration_ns(arg, &o->settle_ns);
	}
	return -EINVAL;
}

static void set_defaults(struct chaos_opts *o)
{
	*o = (struct chaos_opts){
	    .backend = "ns",
	    .seed = 1,
	    .interval_ns = SEC / 5,
	    .hang_ns = 30 * SEC,
	    .settle_ns = 30 * SEC,
	    .min_size = 2,
	    .max_size = 4,
	    .max_total = 10,
	    .threads = 3,
	    .kinds = ALL_KINDS,
	};
}

/* 0 to run, 1 after --help, -EINVAL after a complaint. */
static int parse_args(struct chaos_opts *o, int argc, char **argv)
{
	int opt;

	set_defaults(o);
	while ((opt = getopt_long(argc, argv, "n:t:s:i:j:vh", longopts,
				  NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 1;
		}
		if (opt == 'v' || opt == OPT_JSON || opt == OPT_KEEP) {
			o->verbose |= opt == 'v';
			o->json |= opt == OPT_JSON;
			o->keep |= opt == OPT_KEEP;
			continue;
		}
		if (opt == '?' || set_opt(o, opt, optarg)) {
			if (opt != '?')
				pr_err("bad value for %s: '%s'",
				       argv[optind - 1], optarg);
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc || o->max_size < o->min_size ||
	    (o->socket && !o->name)) {
		pr_err("%s", optind < argc ? "unexpected argument"
			     : o->socket   ? "--socket needs --name"
					   : "--max is below --min");
		return -EINVAL;
	}
	if (!o->count && !o->duration_ns)
		o->count = 100;
	return 0;
}

/* --- the run --- */

static void default_socket(const char *name, char *buf, size_t len)
{
	const char *run = getenv("XDG_RUNTIME_DIR");

	if (geteuid() == 0)
		snprintf(buf, len, "/run/vmpool/%s.sock", name);
	else if (run && *run)
		snprintf(buf, len, "%s/vmpool/%s.sock", run, name);
	else
		snprintf(buf, len, "/tmp/vmpool-%u/%s.sock",
			 (unsigned)geteuid(), name);
}

static int find_self(struct chaos *c)
{
	ssize_t n = readlink("/proc/self/exe", c->self, sizeof(c->self) - 1);
	char *slash;

	if (n <= 0)
		return -errno;
	c->self[n] = '\0';
	snprintf(c->bindir, sizeof(c->bindir), "%s", c->self);
	slash = strrchr(c->bindir, '/');
	if (slash)
		*slash = '\0';
	return 0;
}

static const char *why_not(enum chaos_kind k)
{
	if (k == CK_FAULT_POINT)
		return "they need a private pool of a build with fault points";
	return "a kernel panic needs the kvm backend: an ns guest runs on "
	       "the host's kernel";
}

/* Kinds this pool cannot take are left out, and said so. */
static void drop_kinds(struct chaos *c)
{
	uint32_t drop = 0;

	if (!c->private_pool || !VMPOOL_FAULT_POINTS)
		drop |= 1u << CK_FAULT_POINT;
	if (!c->o.kvm)
		drop |= 1u << CK_GUEST_PANIC;
	for (int k = 0; k < CK_NKINDS; k++)
		if (c->o.kinds & drop & 1u << k)
			fprintf(stderr, "vmpool-chaos: no %s faults here: %s\n",
				kind_names[k], why_not(k));
	c->o.kinds &= ~drop;
	if (!c->o.kinds)
		c->o.kinds = 1u << CK_KILL;
}

static int setup(struct chaos *c)
{
	int err = find_self(c);

	if (err)
		return err;
	c->private_pool = !c->o.name;
	if (c->private_pool) {
		err = chaos_pool_start(c);
		if (err) {
			pr_err("starting vmpoold: %s (its log: %s/vmpoold.log)",
			       strerror(-err), c->dir);
			return err;
		}
	} else {
		snprintf(c->name, sizeof(c->name), "%s", c->o.name);
		if (c->o.socket)
			snprintf(c->sock, sizeof(c->sock), "%s", c->o.socket);
		else
			default_socket(c->name, c->sock, sizeof(c->sock));
	}

	err = chaos_pool_attach(c);
	if (err)
		pr_err("shm_attach %s: %s", c->name, shm_strerror(err));
	return err;
}

/* Faults with the workload running, then the workload's end. */
static int run(struct chaos *c)
{
	pthread_t mon;
	int err = chaos_monitor_start(c, &mon);

	if (err) {
		pr_err("pthread_create: %s", strerror(-err));
		return err;
	}
	err = chaos_load_start(c);
	if (err) {
		pr_err("starting the tenants: %s", strerror(-err));
		chaos_monitor_stop(c, mon);
		return err;
	}

	c->t_start = now_ns();
	chaos_faults_run(c);
	c->t_faults_end = now_ns();

	/* A hung tenant is counted by the monitor; the pool's stop frees it. */
	chaos_load_stop(c, c->o.hang_ns);
	chaos_check_leases(c);
	chaos_check_settled(c);
	chaos_monitor_stop(c, mon);
	return 0;
}

static void finish(struct chaos *c)
{
	int status;

	if (!c->private_pool) {
		if (chaos_load_stop(c, LATE_JOIN_NS))
			pr_warn("tenants still blocked in the pool; leaving");
		return;
	}
	status = chaos_pool_stop(c, STOP_NS);
	chaos_load_stop(c, LATE_JOIN_NS);
	chaos_check_after_stop(c, status);
}

static void init(struct chaos *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
}

static void seed_rng(struct chaos *c)
{
	/* splitmix64 of the seed: never the all-zero state xorshift needs
	 * to avoid. */
	uint64_t z = c->o.seed + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	c->rng = (z ^ (z >> 31)) | 1;
}

int main(int argc, char **argv)
{
	static struct chaos c;
	int rc;

	if (getenv(CHAOS_PLAN_ENV))
		return chaos_shim(argc, argv);

	log_init("vmpool-chaos", -1);
	init(&c);
	rc = parse_args(&c.o, argc, argv);
	if (rc)
		return rc > 0 ? 0 : 1;
	seed_rng(&c);
	signal(SIGPIPE, SIG_IGN);
	/* Whatever the pool leaves behind comes back to us, to be seen. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	c.t_start = now_ns();
	if (setup(&c)) {
		chaos_pool_cleanup(&c);
		return 1;
	}
	drop_kinds(&c);
	if (run(&c) == 0)
		finish(&c);

	chaos_report(&c);
	rc = chaos_passed(&c) ? 0 : 1;
	chaos_pool_cleanup(&c);
	return rc;
}
