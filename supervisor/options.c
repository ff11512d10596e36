/* vmpoold's settings: defaults, a key = value config file, then flags. */
#include "supervisor/options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "config.h"
#include "shm/pool.h"
#include "shm/shm.h"

enum opt_kind {
	OPT_NAME,
	OPT_PATH,
	OPT_U32,
	OPT_SIZE,
	OPT_DURATION,
	OPT_BACKEND,
	OPT_MODE,
	OPT_ENV,
};

struct opt_def {
	const char *key; /* in the file; the flag is --key with '-' for '_' */
	enum opt_kind kind;
	size_t off;
	size_t len;	   /* OPT_NAME, OPT_PATH: buffer size */
	uint32_t min, max; /* OPT_U32 */
	const char *arg;
	const char *help;
};

#define FIELD(f)                                                               \
	offsetof(struct sv_options, f), sizeof(((struct sv_options *)0)->f)
#define NUM(f) offsetof(struct sv_options, f), 0

static const struct opt_def opt_defs[] = {
    {"name", OPT_NAME, FIELD(name), 0, 0, "NAME",
     "pool name: segment /dev/shm/vmpool.NAME (default: default)"},
    {"socket", OPT_PATH, FIELD(socket_path), 0, 0, "PATH",
     "tenant socket (default: /run/vmpool/NAME.sock as root, else "
     "$XDG_RUNTIME_DIR/vmpool/NAME.sock or /tmp/vmpool-UID/NAME.sock)"},
    {"socket_mode", OPT_MODE, NUM(socket_mode), 0, 0, "OCTAL",
     "permissions of the socket (default: 0666)"},
    {"backend", OPT_BACKEND, NUM(backend), 0, 0, "kvm|ns",
     "kvm: a VM per worker (default); ns: namespaces, weaker isolation"},
    {"kernel", OPT_PATH, FIELD(kernel), 0, 0, "PATH",
     "guest kernel (default: DIR/../guest/vmlinux, DIR holding vmpoold)"},
    {"image", OPT_PATH, FIELD(image), 0, 0, "PATH",
     "guest image (default: DIR/../guest/initramfs.cpio)"},
    {"worker", OPT_PATH, FIELD(worker), 0, 0, "PATH",
     "worker program (default: DIR/vmpool-worker)"},
    {"mem", OPT_SIZE, NUM(mem), 0, 0, "SIZE",
     "guest memory, e.g. 256M (default: 256M)"},
    {"vcpus", OPT_U32, NUM(vcpus), 1, 64, "N",
     "vCPUs per guest (default: 1); the built guest kernel is uniprocessor "
     "and runs on the first only"},
    {"min_size", OPT_U32, NUM(min_size), 0, SHM_MAX_SLOTS, "N",
     "idle VMs kept warm in the background (default: 1)"},
    {"max_size", OPT_U32, NUM(max_size), 0, SHM_MAX_SLOTS, "N",
     "most idle VMs; at least 1 and min_size (default: 4)"},
    {"max_idle", OPT_DURATION, NUM(max_idle_ns), 0, 0, "DURATION",
     "an idle VM older than this is stopped (default: 5m)"},
    {"health_check_interval", OPT_U32, NUM(health_check_interval), 0,
     UINT32_MAX, "N", "health-check every Nth release; 0: never (default: 10)"},
    {"max_total", OPT_U32, NUM(max_total), 1, SHM_MAX_SLOTS, "N",
     "most VMs in any state, booting included (default: 32)"},
    {"max_leases_per_tenant", OPT_U32, NUM(max_leases_per_tenant), 0,
     SHM_MAX_SLOTS, "N", "leases one uid may hold; 0: no cap (default: 0)"},
    {"acquire_timeout", OPT_DURATION, NUM(acquire_timeout_ns), 0, 0, "DURATION",
     "longest wait for a VM on a miss (default: 30s)"},
    {"drain_grace", OPT_DURATION, NUM(drain_grace_ns), 0, 0, "DURATION",
     "on SIGTERM, how long running leases may go on (default: 30s)"},
    {"boot_timeout", OPT_DURATION, NUM(boot_timeout_ns), 0, 0, "DURATION",
     "passed to workers (default: the worker's)"},
    {"health_timeout", OPT_DURATION, NUM(health_timeout_ns), 0, 0, "DURATION",
     "passed to workers (default: the worker's)"},
    {"idle_ping", OPT_DURATION, NUM(idle_ping_ns), 0, 0, "DURATION",
     "workers PING their guest this often (default: the worker's, 10s)"},
    {"guest_timeout", OPT_DURATION, NUM(guest_timeout_ns), 0, 0, "DURATION",
     "a guest not answering PING in this is replaced (default: 5s)"},
    {"poll", OPT_DURATION, NUM(poll_ns), 0, 0, "DURATION",
     "after serving, look for the next request this long before sleeping: "
     "a warm hit then needs no wake-up, for at most that much CPU per "
     "request; workers get the same; 0: sleep at once (default: 50us)"},
    {"worker_nice", OPT_U32, NUM(worker_nice), 0, 19, "N",
     "workers (and their guests) run this much nicer than vmpoold, so "
     "that busy guests delay leasing less; they then also yield to the "
     "host's other processes (default: 0)"},
    {"verbose", OPT_U32, NUM(verbose), 0, 9, "N",
     "0: lifecycle lines only (default); 1: every event (-v)"},
#if VMPOOL_FAULT_POINTS
    {"worker_env", OPT_ENV, NUM(worker_env), 0, 0, "K=V",
     "add K=V to each worker's environment (test builds; repeatable)"},
#endif
};

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t len,
						      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const struct opt_def *find_def(const char *key, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(opt_defs); i++)
		if (strlen(opt_defs[i].key) == len &&
		    !strncmp(opt_defs[i].key, key, len))
			return &opt_defs[i];
	return NULL;
}

static int set_string(char *dst, size_t cap, const char *val, char *err,
		      size_t errlen)
{
	if (!*val)
		return fail(err, errlen, "empty value");
	if (strlen(val) >= cap)
		return fail(err, errlen, "'%s' is longer than %zu bytes", val,
			    cap - 1);
	strcpy(dst, val);
	return 0;
}

static int set_env(struct sv_options *o, const char *val, char *err,
		   size_t errlen)
{
	const char *eq = strchr(val, '=');

	if (!eq || eq == val)
		return fail(err, errlen, "'%s' is not K=V", val);
	if (o->nworker_env == SV_MAX_WORKER_ENV)
		return fail(err, errlen, "more than %d entries",
			    SV_MAX_WORKER_ENV);
	o->worker_env[o->nworker_env] = strdup(val);
	if (!o->worker_env[o->nworker_env])
		return fail(err, errlen, "out of memory");
	o->nworker_env++;
	return 0;
}

static int set_backend(uint32_t *dst, const char *val, char *err, size_t errlen)
{
	if (!strcmp(val, "kvm"))
		*dst = SV_BACKEND_KVM;
	else if (!strcmp(val, "ns"))
		*dst = SV_BACKEND_NS;
	else
		return fail(err, errlen, "'%s' is not kvm or ns", val);
	return 0;
}

static int set_mode(uint32_t *dst, const char *val, char *err, size_t errlen)
{
	char *end;
	unsigned long m = strtoul(val, &end, 8);

	if (!*val || *end || m > 0777)
		return fail(err, errlen, "'%s' is not an octal mode up to 0777",
			    val);
	*dst = m;
	return 0;
}

static int set_u32(uint32_t *dst, const struct opt_def *d, const char *val,
		   char *err, size_t errlen)
{
	uint64_t v;

	if (parse_u64(val, d->min, d->max, &v))
		return fail(err, errlen, "'%s' is not a number in %u..%u", val,
			    d->min, d->max);
	*dst = v;
	return 0;
}

static int set_value(struct sv_options *o, const struct opt_def *d,
		     const char *val, char *err, size_t errlen)
{
	char *field = (char *)o + d->off;

	switch (d->kind) {
	case OPT_NAME:
		if (shm_name_check(val))
			return fail(err, errlen,
				    "'%s' is not 1..%d of [A-Za-z0-9_-]", val,
				    SHM_NAME_MAX);
		return set_string(field, d->len, val, err, errlen);
	case OPT_PATH:
		return set_string(field, d->len, val, err, errlen);
	case OPT_U32:
		return set_u32((uint32_t *)field, d, val, err, errlen);
	case OPT_SIZE:
		if (parse_size(val, (uint64_t *)field) || !*(uint64_t *)field)
			return fail(err, errlen, "'%s' is not a size (256M)",
				    val);
		return 0;
	case OPT_DURATION:
		if (parse_duration_ns(val, (uint64_t *)field))
			return fail(err, errlen,
				    "'%s' is not a duration (250ms, 30s, 5m)",
				    val);
		return 0;
	case OPT_BACKEND:
		return set_backend((uint32_t *)field, val, err, errlen);
	case OPT_MODE:
		return set_mode((uint32_t *)field, val, err, errlen);
	case OPT_ENV:
		return set_env(o, val, err, errlen);
	}
	return fail(err, errlen, "unhandled option kind");
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && strchr(" \t\r\n", end[-1]))
		*--end = '\0';
	return s;
}

/* One "key = value" line (comments already cut); problem in err. */
static int parse_line(struct sv_options *o, char *line, char *err,
		      size_t errlen)
{
	char *eq = strchr(line, '='), *key, *val;
	const struct opt_def *d;
	char why[256];

	if (!eq)
		return fail(err, errlen, "expected 'key = value'");
	*eq = '\0';
	key = trim(line);
	val = trim(eq + 1);

	d = find_def(key, strlen(key));
	if (!d)
		return fail(err, errlen, "unknown key '%s'", key);
	if (set_value(o, d, val, why, sizeof(why)))
		return fail(err, errlen, "%s: %s", key, why);
	return 0;
}

static int parse_file(struct sv_options *o, const char *path, char *err,
		      size_t errlen)
{
	FILE *f = fopen(path, "re");
	char line[1024], why[384];
	int lineno = 0, rc = 0;

	if (!f)
		return fail(err, errlen, "%s: %s", path, strerror(errno));

	while (!rc && fgets(line, sizeof(line), f)) {
		char *hash = strchr(line, '#');

		lineno++;
		if (hash)
			*hash = '\0';
		if (!*trim(line))
			continue;
		if (parse_line(o, line, why, sizeof(why)))
			rc = fail(err, errlen, "%s:%d: %s", path, lineno, why);
	}

	fclose(f);
	return rc;
}

/* One option: the flag, then its text wrapped at 79 columns from
 * column HELP_COL, on the flag's line when it fits. */
#define HELP_COL 30
static void print_option(const char *flag, const char *help)
{
	int col = printf("  %s", flag);
	const char *p = help;

	while (*p) {
		int len = (int)strcspn(p, " ");

		if (col >= HELP_COL && col + 1 + len > 79)
			col = printf("\n") - 1;
		col += printf("%*s%.*s", col < HELP_COL ? HELP_COL - col : 1,
			      "", len, p);
		p += len;
		p += strspn(p, " ");
	}
	printf("\n");
}

static void print_help(const char *prog)
{
	printf("Usage: %s [OPTION]...\n"
	       "Keep a warm pool of microVMs and lease them to tenants on a "
	       "unix socket.\n\n",
	       prog);
	print_option("--config FILE",
		     "read 'key = value' lines ('#' comments; keys as the "
		     "flags below with '_' for '-'); flags override the file");
	for (size_t i = 0; i < ARRAY_SIZE(opt_defs); i++) {
		char flag[64];

		/* A file key only: the flag is -v. */
		if (opt_defs[i].kind == OPT_U32 &&
		    opt_defs[i].off == offsetof(struct sv_options, verbose))
			continue;
		snprintf(flag, sizeof(flag), "--%s %s", opt_defs[i].key,
			 opt_defs[i].arg);
		for (char *p = flag + 2; *p && *p != ' '; p++)
			if (*p == '_')
				*p = '-';
		print_option(flag, opt_defs[i].help);
	}
	print_option("-v, --verbose", "log every event (file: verbose = 1)");
	print_option("-h, --help", "this text");
	printf("\n"
	       "SIGTERM or SIGINT drains the pool: no new leases, running ones "
	       "finish\nwithin drain_grace, then every worker stops.\n\n"
	       "Exit status: 0 after a drain, 1 on a runtime failure, 64 on a "
	       "bad flag,\nconfig file or value, 78 when this host or the "
	       "files cannot serve the\nconfiguration (backend kvm without "
	       "hardware KVM, a missing image, a pool\nname held by a live "
	       "vmpoold).\n");
}

static void set_defaults(struct sv_options *o, const char *exe)
{
	char dir[PATH_MAX - 32];
	char *slash;

	memset(o, 0, sizeof(*o));
	snprintf(o->name, sizeof(o->name), "default");
	o->socket_mode = 0666;
	o->backend = SV_BACKEND_KVM;
	o->mem = 256ull << 20;
	o->vcpus = 1;
	o->min_size = 1;
	o->max_size = 4;
	o->max_idle_ns = 300ull * 1000000000;
	o->health_check_interval = 10;
	o->max_total = 32;
	o->acquire_timeout_ns = 30ull * 1000000000;
	o->drain_grace_ns = 30ull * 1000000000;
	o->poll_ns = 50000;

	snprintf(dir, sizeof(dir), "%s", exe);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	snprintf(o->kernel, sizeof(o->kernel), "%s/../guest/vmlinux", dir);
	snprintf(o->image, sizeof(o->image), "%s/../guest/initramfs.cpio", dir);
	snprintf(o->worker, sizeof(o->worker), "%s/vmpool-worker", dir);
}

static void default_socket(struct sv_options *o)
{
	const char *run = getenv("XDG_RUNTIME_DIR");

	if (o->socket_path[0])
		return;
	if (geteuid() == 0)
		snprintf(o->socket_path, sizeof(o->socket_path),
			 "/run/vmpool/%s.sock", o->name);
	else if (run && *run)
		snprintf(o->socket_path, sizeof(o->socket_path),
			 "%s/vmpool/%s.sock", run, o->name);
	else
		snprintf(o->socket_path, sizeof(o->socket_path),
			 "/tmp/vmpool-%u/%s.sock", (unsigned)geteuid(),
			 o->name);
}

/* Split "--key=value" or "--key value"; *used is 1 or 2 arguments. */
static int flag_value(int argc, char **argv, int i, const char **key,
		      size_t *keylen, const char **val, int *used)
{
	const char *eq = strchr(argv[i], '=');

	*key = argv[i] + 2;
	if (eq) {
		*keylen = eq - *key;
		*val = eq + 1;
		*used = 1;
		return 0;
	}
	*keylen = strlen(*key);
	if (i + 1 >= argc)
		return -EINVAL;
	*val = argv[i + 1];
	*used = 2;
	return 0;
}

/* The flag's key with '-' as '_', to look it up like a file key. */
static const struct opt_def *flag_def(const char *key, size_t len)
{
	char name[64];

	if (len >= sizeof(name))
		return NULL;
	for (size_t i = 0; i < len; i++)
		name[i] = key[i] == '-' ? '_' : key[i];
	return find_def(name, len);
}

static int parse_flag(struct sv_options *o, int argc, char **argv, int *i,
		      char *err, size_t errlen)
{
	const struct opt_def *d;
	const char *key, *val;
	size_t keylen;
	char why[384];
	int used;

	if (strncmp(argv[*i], "--", 2))
		return fail(err, errlen, "unexpected argument '%s'", argv[*i]);
	if (flag_value(argc, argv, *i, &key, &keylen, &val, &used))
		return fail(err, errlen, "%s needs a value", argv[*i]);

	d = flag_def(key, keylen);
	if (!d && !(keylen == 6 && !strncmp(key, "config", 6)))
		return fail(err, errlen, "unknown option '--%.*s' (see --help)",
			    (int)keylen, key);
	if (d && set_value(o, d, val, why, sizeof(why)))
		return fail(err, errlen, "--%.*s: %s", (int)keylen, key, why);
	*i += used;
	return 0;
}

/* The first pass: --help, and the config file to read before flags. */
static int find_config(int argc, char **argv, const char **config)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			*config = argv[++i];
		else if (!strncmp(argv[i], "--config=", 9))
			*config = argv[i] + 9;
	}
	return 0;
}

static int parse_flags(struct sv_options *o, int argc, char **argv, char *err,
		       size_t errlen)
{
	int i = 1, rc;

	while (i < argc) {
		if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
			o->verbose++;
			i++;
			continue;
		}
		rc = parse_flag(o, argc, argv, &i, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

static int check_pool(const struct sv_options *o, char *err, size_t errlen)
{
	struct pool_config cfg;
	uint32_t nslots;

	sv_options_pool_config(o, &cfg, &nslots);
	return pool_config_validate(&cfg, nslots, err, errlen);
}

int sv_options_parse(struct sv_options *o, int argc, char **argv,
		     const char *exe, char *err, size_t errlen)
{
	const char *config = NULL;
	int rc;

	set_defaults(o, exe);

	if (find_config(argc, argv, &config)) {
		print_help(argv[0]);
		return 1;
	}

	if (config) {
		rc = parse_file(o, config, err, errlen);
		if (rc)
			return rc;
	}

	rc = parse_flags(o, argc, argv, err, errlen);
	if (rc)
		return rc;

	default_socket(o);
	return check_pool(o, err, errlen);
}

void sv_options_free(struct sv_options *o)
{
	for (int i = 0; i < o->nworker_env; i++)
		free(o->worker_env[i]);
	o->nworker_env = 0;
}

void sv_options_pool_config(const struct sv_options *o, struct pool_config *cfg,
			    uint32_t *nslots)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->min_size = o->min_size;
	cfg->max_size = o->max_size;
	cfg->max_idle_ns = o->max_idle_ns;
	cfg->health_check_interval = o->health_check_interval;
	cfg->max_total = o->max_total;
	cfg->max_leases_per_uid = o->max_leases_per_tenant;
	*nslots = o->max_total;
}

const char *sv_backend_name(enum sv_backend b)
{
	return b == SV_BACKEND_NS ? "ns" : "kvm";
}
