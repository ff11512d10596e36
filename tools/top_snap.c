/* vmpool-top: a lock-free copy of a pool's segment and its creator's health. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "shm/shm.h"
#include "tools/top.h"

/* How much younger than the segment its creator may look: the wall
 * clock and the boot clock drift apart, and /proc counts in ticks. */
#define REUSE_SLACK_NS 2000000000ull

static int grow(struct top_snap *snap, size_t size)
{
	void *buf;

	if (snap->size >= size)
		return 0;

	buf = realloc(snap->buf, size);
	if (!buf)
		return -ENOMEM;

	snap->buf = buf;
	snap->size = size;
	return 0;
}

/* The copy was whole, but its writers are not trusted: the header must
 * still describe the mapping that was checked at attach. */
static int check_copy(const struct shm_segment *seg, size_t size)
{
	uint32_t n = seg->hdr.nslots;

	if (seg->hdr.magic != SHM_MAGIC ||
	    seg->hdr.abi_version != SHM_ABI_VERSION)
		return -EUCLEAN;
	if (n == 0 || n > SHM_MAX_SLOTS || shm_total_size(n) != size ||
	    seg->hdr.slots_off != shm_slots_offset() ||
	    seg->hdr.ring_off != shm_ring_offset(n))
		return -EUCLEAN;
	return 0;
}

static void count_states(struct top_snap *snap)
{
	memset(snap->states, 0, sizeof(snap->states));
	for (uint32_t i = 0; i < snap->nslots; i++) {
		unsigned s = snap->slots[i].state;

		snap->states[s < SLOT_NSTATES ? s : SLOT_NSTATES]++;
	}
}

static int copy_segment(struct top_snap *snap, struct shm *shm)
{
	size_t size = shm_size(shm);
	int rc = grow(snap, size);

	if (rc)
		return rc;

	/* Told apart from shm_attach's -EAGAIN: not initialised yet. */
	rc = shm_snapshot(shm, snap->buf, size);
	if (rc)
		return rc == -EAGAIN ? -EBUSY : rc;

	return check_copy(snap->buf, size);
}

int top_snap_take(struct top_snap *snap, const char *name)
{
	const struct shm_segment *seg;
	struct shm *shm;
	int rc;

	snap->seg = NULL;
	snprintf(snap->name, sizeof(snap->name), "%s", name);

	rc = shm_attach(name, SHM_RO, &shm);
	if (rc)
		return rc;

	rc = copy_segment(snap, shm);
	snap->mono_ns = now_ns();
	snap->wall_ns = wall_ns();
	shm_detach(shm);
	if (rc)
		return rc;

	seg = snap->buf;
	snap->seg = seg;
	snap->slots = shm_slots(seg);
	snap->nslots = seg->hdr.nslots;
	snap->supervisor_alive =
	    top_creator_alive(seg->hdr.creator_pid, seg->hdr.created_wall_ns);
	count_states(snap);
	return 0;
}

void top_snap_free(struct top_snap *snap)
{
	free(snap->buf);
	memset(snap, 0, sizeof(*snap));
}

/* Start of process pid on the boot clock, from field 22 of its stat. */
static int start_boottime_ns(pid_t pid, uint64_t *out)
{
	char path[64], line[1024], *paren;
	unsigned long long ticks;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	paren = fgets(line, sizeof(line), f) ? strrchr(line, ')') : NULL;
	fclose(f);

	/* After ")": state is field 3, starttime field 22. */
	if (!paren || hz <= 0 ||
	    sscanf(paren + 2,
		   "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
		   "%*s %*s %*s %*s %*s %*s %*s %llu",
		   &ticks) != 1)
		return -EINVAL;
	*out = ticks * (1000000000ull / hz);
	return 0;
}

static uint64_t boottime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

bool top_creator_alive(uint32_t pid, uint64_t created_wall_ns)
{
	uint64_t started, age, now = wall_ns();

	if (pid == 0 || pid > INT32_MAX)
		return false;
	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		return false;

	/* Alive, or another's (EPERM). Unknown start: trust the pid. */
	if (start_boottime_ns((pid_t)pid, &started) < 0 ||
	    created_wall_ns > now)
		return true;

	age = now - created_wall_ns;
	return boottime_ns() - started + REUSE_SLACK_NS >= age;
}

void top_snap_strerror(int err, const char *name, char *buf, size_t len)
{
	if (err == -ENOENT)
		snprintf(buf, len,
			 "no pool '%s': /dev/shm/vmpool.%s does not exist "
			 "(is vmpoold running?)",
			 name, name);
	else if (err == -EUCLEAN)
		snprintf(buf, len,
			 "/dev/shm/vmpool.%s: snapshot disagrees with its "
			 "header (a writer scribbled on it)",
			 name);
	else if (err == -EBUSY)
		snprintf(buf, len,
			 "/dev/shm/vmpool.%s: no consistent snapshot (writers "
			 "busy, or one died mid-write and none has locked "
			 "since)",
			 name);
	else
		snprintf(buf, len, "/dev/shm/vmpool.%s: %s", name,
			 shm_strerror(err));
}
