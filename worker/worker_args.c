/* The worker's command line, the contract with the supervisor that execs it. */
#include "worker/worker.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

#define DEFAULT_HEALTH_TIMEOUT_NS (5ull * 1000000000)
#define DEFAULT_BOOT_TIMEOUT_NS	  (30ull * 1000000000)
#define DEFAULT_IDLE_PING_NS	  (10ull * 1000000000)
#define DEFAULT_GUEST_TIMEOUT_NS  (5ull * 1000000000)

enum {
	OPT_POOL = 1,
	OPT_SLOT,
	OPT_CTL_FD,
	OPT_BACKEND,
	OPT_IMAGE,
	OPT_KERNEL,
	OPT_MEM,
	OPT_VCPUS,
	OPT_HEALTH_TIMEOUT,
	OPT_BOOT_TIMEOUT,
	OPT_IDLE_PING,
	OPT_GUEST_TIMEOUT,
	OPT_POLL,
};

static const struct option long_opts[] = {
    {"pool", required_argument, NULL, OPT_POOL},
    {"slot", required_argument, NULL, OPT_SLOT},
    {"ctl-fd", required_argument, NULL, OPT_CTL_FD},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"image", required_argument, NULL, OPT_IMAGE},
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"mem", required_argument, NULL, OPT_MEM},
    {"vcpus", required_argument, NULL, OPT_VCPUS},
    {"health-timeout", required_argument, NULL, OPT_HEALTH_TIMEOUT},
    {"boot-timeout", required_argument, NULL, OPT_BOOT_TIMEOUT},
    {"idle-ping", required_argument, NULL, OPT_IDLE_PING},
    {"guest-timeout", required_argument, NULL, OPT_GUEST_TIMEOUT},
    {"poll", required_argument, NULL, OPT_POLL},
    {NULL, 0, NULL, 0},
};

/* A zero timeout would disarm the timer instead. */
static int nonzero_duration(const char *arg, uint64_t *ns)
{
	int err = parse_duration_ns(arg, ns);

	return err ? err : (*ns ? 0 : -EINVAL);
}

/* One option's value into o; -EINVAL when it does not parse. */
static int take(struct worker_opts *o, int opt, const char *arg)
{
	uint64_t v = 0;
	int err = 0;

	switch (opt) {
	case OPT_POOL:
		o->pool = arg;
		return shm_name_check(arg);
	case OPT_SLOT:
		err = parse_u64(arg, 0, SHM_MAX_SLOTS - 1, &v);
		o->slot = v;
		return err;
	case OPT_CTL_FD:
		err = parse_u64(arg, 0, INT32_MAX, &v);
		o->ctl_fd = v;
		return err;
	case OPT_BACKEND:
		return backend_parse(arg, &o->be.kind);
	case OPT_IMAGE:
		o->be.image = arg;
		return 0;
	case OPT_KERNEL:
		o->be.kernel = arg;
		return 0;
	case OPT_MEM:
		return parse_size(arg, &o->be.mem);
	case OPT_VCPUS:
		err = parse_u64(arg, 1, 64, &v);
		o->be.vcpus = v;
		return err;
	case OPT_HEALTH_TIMEOUT:
		return nonzero_duration(arg, &o->health_timeout_ns);
	case OPT_BOOT_TIMEOUT:
		return nonzero_duration(arg, &o->boot_timeout_ns);
	case OPT_IDLE_PING:
		return nonzero_duration(arg, &o->idle_ping_ns);
	case OPT_GUEST_TIMEOUT:
		return nonzero_duration(arg, &o->guest_timeout_ns);
	case OPT_POLL:
		return parse_duration_ns(arg, &o->poll_ns);
	}
	return -EINVAL;
}

static int missing(const struct worker_opts *o, char *err, size_t errlen)
{
	const char *what = !o->pool		   ? "--pool"
			   : o->slot == UINT32_MAX ? "--slot"
			   : o->ctl_fd < 0	   ? "--ctl-fd"
			   : !o->be.image	   ? "--image"
						   : NULL;

	if (!what)
		return 0;
	snprintf(err, errlen, "%s is required", what);
	return -EINVAL;
}

int worker_parse_args(int argc, char **argv, struct worker_opts *o, char *err,
		      size_t errlen)
{
	int opt;

	memset(o, 0, sizeof(*o));
	o->slot = UINT32_MAX;
	o->ctl_fd = -1;
	o->be.kind = BACKEND_KVM;
	o->be.log_fd = -1;
	o->health_timeout_ns = DEFAULT_HEALTH_TIMEOUT_NS;
	o->boot_timeout_ns = DEFAULT_BOOT_TIMEOUT_NS;
	o->idle_ping_ns = DEFAULT_IDLE_PING_NS;
	o->guest_timeout_ns = DEFAULT_GUEST_TIMEOUT_NS;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "v", long_opts, NULL)) != -1) {
		if (opt == 'v') {
			o->verbose = true;
			continue;
		}
		if (opt == '?' || opt == ':') {
			snprintf(err, errlen,
				 "unknown option or missing value: %s",
				 argv[optind - 1]);
			return -EINVAL;
		}
		if (take(o, opt, optarg)) {
			snprintf(err, errlen, "bad value for --%s: '%s'",
				 long_opts[opt - 1].name, optarg);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument: %s", argv[optind]);
		return -EINVAL;
	}
	return missing(o, err, errlen);
}
