/* Messages between vmpoold and its workers on a SOCK_SEQPACKET pair. */
#ifndef VMPOOL_CONTROL_H
#define VMPOOL_CONTROL_H

#include <stdint.h>

/*
 * One fixed-size struct ctl_msg per packet. The worker updates the
 * slot's state in shared memory itself (boot done, release, recycle
 * done); these messages tell the other side what it must act on.
 *
 *  worker -> supervisor
 *   CTL_READY	    booted; the slot is idle or (a miss) leased
 *   CTL_BOOT_FAIL  boot failed; err is -errno, text says why; the
 *		    worker then exits with WORKER_EXIT_TEMPFAIL/PERMFAIL
 *   CTL_RECYCLED   a lease ended and the slot is idle again
 *   CTL_EVICTED    a lease ended and the VM was not fit to keep; the
 *		    worker exits
 *   CTL_RETURN	    the tenant's connection (SCM_RIGHTS, one fd) after
 *		    its RELEASE with TENANT_RELEASE_KEEP was answered and
 *		    the slot released: the supervisor reads its next
 *		    request as on a new connection
 *  supervisor -> worker
 *   CTL_LEASE	    a tenant's connection (SCM_RIGHTS, one fd) for uid,
 *		    generation; t0 is when the supervisor read ACQUIRE
 *		    (CLOCK_MONOTONIC ns), id the tenant's request id
 *   CTL_STOP	    destroy the VM and exit 0 (expiry, eviction, drain)
 *
 * Worker to supervisor, also: value of CTL_READY and CTL_RECYCLED is a
 * slot the step evicted to stay within max_size (its worker must be
 * stopped), else SHM_NO_SLOT; text of CTL_RECYCLED is "health checked"
 * when the recycle ran the health check; CTL_EVICTED after a boot means
 * a warm VM nobody needs (slot dead). A CTL_LEASE the worker refuses
 * (uid or generation not the slot's) gets ERROR TENANT_E_NOT_LEASED on
 * the connection; a slot still leased is then recycled (CTL_RECYCLED).
 *
 * Value of CTL_LEASE: CTL_LEASE_ANSWERED when vmpoold has already sent
 * the tenant LEASED (a hit: the tenant need not wait for the worker to
 * wake), so the worker must not send it again; 0: the worker answers.
 * A refused answered lease still gets the ERROR, then the close.
 */

enum ctl_type {
	CTL_READY = 1,
	CTL_BOOT_FAIL = 2,
	CTL_RECYCLED = 3,
	CTL_EVICTED = 4,
	CTL_RETURN = 5,
	CTL_LEASE = 16,
	CTL_STOP = 17,
};

#define CTL_LEASE_ANSWERED 1u

struct ctl_msg {
	uint32_t type;
	uint32_t slot;
	uint32_t uid;
	uint32_t generation;
	uint32_t id;
	int32_t err;
	uint64_t t0;
	uint64_t value;
	char text[160];
};

/* Worker exit codes: the supervisor respawns after TEMPFAIL (with
 * backoff) and quarantines the configuration after PERMFAIL. Any other
 * exit or signal is a crash. */
#define WORKER_EXIT_OK	     0
#define WORKER_EXIT_PERMFAIL 78 /* bad config, kernel or image missing */
#define WORKER_EXIT_TEMPFAIL 75 /* boot failed; may work next time */

#endif
