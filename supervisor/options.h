/* vmpoold's settings: defaults, a key = value config file, then flags. */
#ifndef VMPOOL_SV_OPTIONS_H
#define VMPOOL_SV_OPTIONS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shm/layout.h"

#define SV_MAX_WORKER_ENV 16
#define SV_SOCKET_PATH	  108 /* sun_path */

enum sv_backend { SV_BACKEND_KVM, SV_BACKEND_NS };

struct sv_options {
	char name[SHM_NAME_MAX + 1];
	char socket_path[SV_SOCKET_PATH];
	uint32_t socket_mode;
	uint32_t backend; /* enum sv_backend */
	char kernel[PATH_MAX];
	char image[PATH_MAX];
	char worker[PATH_MAX];
	uint64_t mem;
	uint32_t vcpus;
	uint32_t min_size;
	uint32_t max_size;
	uint64_t max_idle_ns;
	uint32_t health_check_interval;
	uint32_t max_total;
	uint32_t max_leases_per_tenant;
	uint64_t acquire_timeout_ns;
	uint64_t drain_grace_ns;
	uint64_t boot_timeout_ns;   /* 0: the worker's default */
	uint64_t health_timeout_ns; /* 0: the worker's default */
	uint64_t idle_ping_ns;	    /* 0: the worker's default */
	uint64_t guest_timeout_ns;  /* 0: the worker's default */
	uint64_t poll_ns;	    /* the loop's poll window */
	uint32_t worker_nice;	    /* added to vmpoold's nice in workers */
	uint32_t verbose;	    /* 0: info, 1+: debug */
	/* "K=V" added to each worker's environment (tests arm faults). */
	char *worker_env[SV_MAX_WORKER_ENV];
	int nworker_env;
};

/* Exit codes of vmpoold, as s6 does: fixed and documented. */
#define SV_EXIT_OK    0
#define SV_EXIT_FAIL  1	 /* a runtime failure after startup */
#define SV_EXIT_USAGE 64 /* bad flag, config file or value */
#define SV_EXIT_CONFIG                                                         \
	78 /* the host or the files cannot serve this                          \
	    * configuration (e.g. kvm on a PVM host) */

/*
 * Fill o from defaults, the --config file named in argv (if any), then
 * the other flags, which override the file. exe is the path of vmpoold,
 * for the default kernel, image and worker paths. Returns 0, 1 when
 * --help was printed to stdout, or -EINVAL with the problem in err
 * ("vmpoold.conf:3: min_size: 'x' is not a number").
 */
int sv_options_parse(struct sv_options *o, int argc, char **argv,
		     const char *exe, char *err, size_t errlen);
void sv_options_free(struct sv_options *o);

/* The pool config and slot count the options ask for. */
void sv_options_pool_config(const struct sv_options *o, struct pool_config *cfg,
			    uint32_t *nslots);

const char *sv_backend_name(enum sv_backend b);

#endif
