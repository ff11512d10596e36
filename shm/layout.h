/* The shared-memory segment of one pool: the ABI between its processes. */
#ifndef VMPOOL_SHM_LAYOUT_H
#define VMPOOL_SHM_LAYOUT_H

/*
 * One segment per pool, /dev/shm/vmpool.<name>, created by the supervisor.
 * Everything here is fixed-width and position independent, so a viewer
 * that includes only this header can read a snapshot of it:
 *
 *   struct shm_segment   header, config, stats, journal, event ring
 *   struct shm_slot[n]   the slot table (n = hdr.nslots)
 *   uint32_t[n]          idle ring storage
 *
 * The slot table is the truth. The idle ring, stats.idle and
 * stats.in_use are derived from it and rebuilt after a writer dies.
 * Writers hold the robust mutex in hdr.lock; readers never lock but copy
 * the segment while hdr.seq stays even and unchanged (a seqlock).
 */

#include <stddef.h>
#include <stdint.h>

#define SHM_MAGIC 0x4c4f4f504d4d5600ull /* "\0VMMPOOL" */
/* Any change to the structs below bumps the ABI version. */
#define SHM_ABI_VERSION	 1
#define SHM_MAX_SLOTS	 4096
#define SHM_EVENTS	 256 /* a power of two */
#define SHM_HIST_BUCKETS 64  /* bucket b: [2^b, 2^(b+1)) ns; 0 in 0 */
#define SHM_NAME_MAX	 32
#define SHM_LOCK_BYTES	 64
#define SHM_NO_SLOT	 UINT32_MAX

enum slot_state {
	SLOT_FREE,	/* no worker */
	SLOT_BOOTING,	/* worker forked, its VM not ready yet */
	SLOT_IDLE,	/* ready and in the idle ring */
	SLOT_LEASED,	/* owned by a tenant */
	SLOT_RECYCLING, /* released; health check and cleanup running */
	SLOT_DEAD,	/* VM to be destroyed; the worker is exiting */
	SLOT_NSTATES
};

/* Why a slot boots: decides where a ready VM goes. */
enum boot_purpose {
	BOOT_LEASE,	/* a miss: the VM goes straight to its tenant */
	BOOT_WARM,	/* warm(n): beyond max_size idle it is dropped */
	BOOT_REPLENISH, /* back to min_size: evicts the oldest when full */
	BOOT_RESPAWN,	/* replaces a lost VM; otherwise as replenish */
	BOOT_NPURPOSES
};

enum pool_event_kind {
	PEV_NONE,
	PEV_BOOT,      /* value: purpose */
	PEV_READY,     /* value: boot time in ns */
	PEV_BOOT_FAIL, /* value: boot time in ns */
	PEV_HIT,       /* value: generation */
	PEV_MISS,      /* value: generation the boot will get; slot
			* SHM_NO_SLOT when no slot was free */
	PEV_RELEASE,   /* value: lease time in ns */
	PEV_RECYCLED,  /* value: recycle time in ns */
	PEV_EVICT,     /* value: enum evict_reason */
	PEV_EXIT,      /* value: state the worker exited from */
	PEV_REPAIR,    /* value: 1 if a half-done step was rolled back */
	PEV_NKINDS
};

enum evict_reason {
	EVICT_EXPIRED,	 /* idle past max_idle */
	EVICT_CAPACITY,	 /* idle ring full (max_size) */
	EVICT_NOT_READY, /* guest no longer ready on release */
	EVICT_UNHEALTHY, /* health check failed */
	EVICT_ASKED,	 /* the supervisor asked */
	EVICT_NREASONS
};

enum pool_hist {
	HIST_BOOT,    /* boot start to ready */
	HIST_LEASE,   /* lease to release */
	HIST_RECYCLE, /* release to back in the ring */
	HIST_ACQUIRE, /* reported by the supervisor: request to lease */
	HIST_COUNT
};

/* Pool policy. Sizes count VMs; 0 in a cap means "no cap". */
struct pool_config {
	uint32_t min_size; /* kept warm in the background */
	uint32_t max_size; /* most idle VMs; at least 1 and min_size */
	uint64_t max_idle_ns;
	uint32_t health_check_interval; /* every Nth release; 0 = never */
	uint32_t max_total;		/* live workers; 0 = nslots */
	uint32_t max_leases_per_uid;	/* 0 = unlimited */
	uint32_t reserved[7];
};

struct shm_slot {
	uint8_t state;	 /* enum slot_state */
	uint8_t purpose; /* enum boot_purpose, while booting */
	uint16_t reserved;
	uint32_t pid;	     /* worker, 0 until its boot is done */
	uint32_t owner_uid;  /* tenant while leased */
	uint32_t generation; /* bumped on each lease */
	uint64_t last_used_ns;
	uint64_t since_ns; /* entered the current state */
	uint64_t idle_seq; /* push order into the idle ring */
	/* Per slot, over all the workers it has had. */
	uint32_t leases;
	uint32_t execs;
	uint32_t boots;
	uint32_t crashes;
	uint32_t reserved2[2];
};

/* Counters a step changes together; a dead writer's step is undone by
 * restoring them from the journal. */
struct pool_counters {
	uint64_t hits;
	uint64_t misses;
	uint64_t evictions; /* as the seed: expiry, capacity, recycle */
	uint64_t idle;	    /* derived: slots in SLOT_IDLE */
	uint64_t in_use;    /* derived: leased, or booting for a lease */
	uint64_t boots;	    /* started */
	uint64_t boots_ok;
	uint64_t boot_failures; /* includes workers lost while booting */
	uint64_t crashes;	/* workers lost outside SLOT_DEAD */
	uint64_t respawns;
	uint64_t hc_failures;
	uint64_t leases;
	uint64_t releases; /* drives health_check_interval */
	uint64_t leases_lost;
	uint64_t warm_dropped; /* warm boots beyond max_size */
	uint64_t idle_seq;     /* next idle ring push number */
	uint64_t evicted_by[EVICT_NREASONS];
};

struct pool_stats {
	struct pool_counters c;
	uint64_t repairs; /* locks that found a dead owner */
	uint64_t hist[HIST_COUNT][SHM_HIST_BUCKETS];
};

/* Undo record of the one slot step in progress. */
struct shm_journal {
	uint32_t active;
	uint32_t slot;
	struct shm_slot slot_before;
	struct pool_counters counters_before;
};

struct pool_event {
	uint64_t time_ns;
	uint64_t value;
	uint32_t slot;
	uint32_t pid;	/* the writer */
	uint32_t uid;	/* the tenant, when there is one */
	uint16_t kind;	/* enum pool_event_kind */
	uint16_t state; /* slot state after the event */
};

/* Deque of slot indices: back = most recently used. */
struct shm_ring {
	uint32_t head; /* index of the front in the storage */
	uint32_t count;
};

struct shm_header {
	uint64_t magic; /* written last by the creator */
	uint32_t abi_version;
	uint32_t nslots;
	uint64_t total_size;
	uint64_t slots_off;
	uint64_t ring_off;
	uint64_t created_wall_ns;
	uint32_t creator_pid;
	uint32_t reserved;
	/* A robust process-shared pthread mutex lives here. */
	uint64_t lock[SHM_LOCK_BYTES / 8] __attribute__((aligned(64)));
	/* Odd while a writer holds the lock. */
	uint64_t seq __attribute__((aligned(64)));
	uint64_t events_head; /* events written so far */
};

struct shm_segment {
	struct shm_header hdr;
	struct pool_config config;
	struct shm_ring ring;
	struct shm_journal journal;
	struct pool_stats stats;
	struct pool_event events[SHM_EVENTS];
};

static inline uint64_t shm_align64(uint64_t n)
{
	return (n + 63) & ~(uint64_t)63;
}

static inline uint64_t shm_slots_offset(void)
{
	return shm_align64(sizeof(struct shm_segment));
}

static inline uint64_t shm_ring_offset(uint32_t nslots)
{
	return shm_slots_offset() + (uint64_t)nslots * sizeof(struct shm_slot);
}

static inline uint64_t shm_total_size(uint32_t nslots)
{
	return shm_align64(shm_ring_offset(nslots) + 4ull * nslots);
}

/* Only for a segment whose header has been checked (shm_attach does). */
static inline struct shm_slot *shm_slots(const struct shm_segment *seg)
{
	return (struct shm_slot *)((char *)seg + seg->hdr.slots_off);
}

static inline uint32_t *shm_ring_buf(const struct shm_segment *seg)
{
	return (uint32_t *)((char *)seg + seg->hdr.ring_off);
}

/* The ring entry at position i from the front (0 = oldest). */
static inline uint32_t shm_ring_at(const struct shm_segment *seg, uint32_t i)
{
	return shm_ring_buf(seg)[(seg->ring.head + i) % seg->hdr.nslots];
}

static inline const char *shm_state_name(unsigned state)
{
	static const char *const names[SLOT_NSTATES] = {
	    "free", "booting", "idle", "leased", "recycling", "dead",
	};

	return state < SLOT_NSTATES ? names[state] : "?";
}

_Static_assert(sizeof(struct shm_slot) == 64, "slot is one cache line");
_Static_assert((SHM_EVENTS & (SHM_EVENTS - 1)) == 0, "events: power of 2");

#endif
