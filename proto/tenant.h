/* The tenant protocol: pool requests on top of the agent protocol. */
#ifndef VMPOOL_TENANT_H
#define VMPOOL_TENANT_H

#include "proto/proto.h"

/*
 * A tenant speaks the agent protocol's framing (proto.h) on vmpoold's
 * unix socket. Before a lease it may ask for STATS or WARM (answered by
 * the supervisor) and then sends ACQUIRE. The supervisor hands the
 * connection to the worker owning the leased VM; LEASED comes from the
 * supervisor on a hit (as soon as the worker has the connection) and
 * from the worker after a miss's boot. The worker from then on relays
 * the tenant's agent requests (PING, EXEC, STDIN, KILL, WRITE_*,
 * READ_OPEN, LIST, STAT, EXISTS, MKDIR, RENAME, REMOVE) to its guest and
 * the guest's replies back. Requests that only the host may make
 * (HELLO, CLEAN, RESEED, SHUTDOWN) are refused with TENANT_E_FORBIDDEN.
 * RELEASE (or EOF) ends the lease: the worker answers OK and closes the
 * connection, or, when the tenant asked to keep it, hands it back to
 * the supervisor, which reads the next request on it as on a new
 * connection (a tenant leasing again saves a connect). Ids with
 * TENANT_ID_HOST set are the worker's own and refused from a tenant.
 *
 * Payloads:
 *
 * ACQUIRE	u64 timeout_ns (0: the daemon's default)
 *		-> LEASED u32 slot, u32 generation, u8 hit, u64 wait_ns,
 *		   str backend ("kvm" or "ns"); or ERROR
 * RELEASE	(none)			-> OK, then the connection closes
 *		u8 flags		-> with TENANT_RELEASE_KEEP: OK u8 1
 *					   when the connection stays open,
 *					   back with the supervisor; OK with
 *					   no payload when it closes anyway
 *					   (bytes sent after RELEASE before
 *					   its OK). Older workers answer
 *					   ERROR PROTO_E_BAD_PAYLOAD.
 * STATS	(none)			-> STATS_REPLY u32 count, count x
 *					   (str name, u64 value)
 * WARM		u32 n			-> OK u32 boots started
 */

#define TENANT_ACQUIRE	   0x40
#define TENANT_RELEASE	   0x41
#define TENANT_STATS	   0x42
#define TENANT_WARM	   0x43
#define TENANT_LEASED	   0xc0
#define TENANT_STATS_REPLY 0xc2

#define TENANT_ID_HOST 0x80000000u

/* RELEASE flags. */
#define TENANT_RELEASE_KEEP 0x1u

/* Error codes beyond enum proto_err, in the same ERROR frame. */
enum tenant_err {
	TENANT_E_VM_LOST = 64,	   /* the VM or its worker died mid-lease */
	TENANT_E_NO_CAPACITY = 65, /* no VM within the acquire timeout */
	TENANT_E_QUOTA = 66,	   /* this tenant holds its lease cap */
	TENANT_E_DRAINING = 67,	   /* the daemon is shutting down */
	TENANT_E_NOT_LEASED = 68,  /* a VM request before ACQUIRE */
	TENANT_E_FORBIDDEN = 69,   /* a request only the host may make */
	TENANT_E_GUEST = 70,	   /* the guest broke the protocol */
};

#endif
