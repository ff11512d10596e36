/* The segment's life: create, attach, lock (with repair), snapshot. */
#include "shm/shm.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "shm/fault.h"
#include "shm/pool.h"

/* Snapshot attempts before giving up; the first few only spin. */
#define SNAPSHOT_TRIES 2000
#define SNAPSHOT_SPINS 16

_Static_assert(sizeof(pthread_mutex_t) <= SHM_LOCK_BYTES,
	       "the robust mutex fits its place in the header");

struct shm {
	struct shm_segment *seg;
	size_t size;
	bool writable;
};

int shm_name_check(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > SHM_NAME_MAX)
		return SHM_EBADNAME;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
		    !(c >= '0' && c <= '9') && c != '-' && c != '_')
			return SHM_EBADNAME;
	}
	return 0;
}

static int shm_path(const char *name, char *path, size_t len)
{
	int rc = shm_name_check(name);

	if (rc)
		return rc;
	snprintf(path, len, "/vmpool.%s", name);
	return 0;
}

static pthread_mutex_t *seg_mutex(struct shm_segment *seg)
{
	return (pthread_mutex_t *)(void *)seg->hdr.lock;
}

static int map_segment(int fd, enum shm_mode mode, size_t size,
		       struct shm **out)
{
	int prot = mode == SHM_RW ? PROT_READ | PROT_WRITE : PROT_READ;
	struct shm *shm = calloc(1, sizeof(*shm));
	void *p;

	if (!shm)
		return -ENOMEM;

	p = mmap(NULL, size, prot, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		free(shm);
		return -errno;
	}

	shm->seg = p;
	shm->size = size;
	shm->writable = mode == SHM_RW;
	*out = shm;
	return 0;
}

static int init_lock(struct shm_segment *seg)
{
	pthread_mutexattr_t attr;
	int rc;

	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	rc = pthread_mutex_init(seg_mutex(seg), &attr);
	pthread_mutexattr_destroy(&attr);
	return -rc;
}

/* The segment is zero-filled: every slot is free, the ring empty. */
static int init_segment(struct shm_segment *seg, uint32_t nslots,
			const struct pool_config *cfg)
{
	int rc;

	seg->hdr.abi_version = SHM_ABI_VERSION;
	seg->hdr.nslots = nslots;
	seg->hdr.total_size = shm_total_size(nslots);
	seg->hdr.slots_off = shm_slots_offset();
	seg->hdr.ring_off = shm_ring_offset(nslots);
	seg->hdr.created_wall_ns = wall_ns();
	seg->hdr.creator_pid = getpid();
	seg->config = *cfg;

	rc = init_lock(seg);
	if (rc)
		return rc;

	/* Attachers check the magic first: it goes in once all is set. */
	__atomic_store_n(&seg->hdr.magic, SHM_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

static int check_create(uint32_t nslots, const struct pool_config *cfg)
{
	if (nslots == 0 || nslots > SHM_MAX_SLOTS ||
	    pool_config_validate(cfg, nslots, NULL, 0))
		return -EINVAL;
	return fault_arm_from_env_once();
}

int shm_create(const char *name, uint32_t nslots, const struct pool_config *cfg,
	       struct shm **out)
{
	size_t size = shm_total_size(nslots);
	char path[SHM_NAME_MAX + 16];
	int fd, rc;

	rc = shm_path(name, path, sizeof(path));
	if (!rc)
		rc = check_create(nslots, cfg);
	if (rc)
		return rc;

	fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;

	if (ftruncate(fd, size) < 0) {
		rc = -errno;
		goto err_unlink;
	}

	rc = map_segment(fd, SHM_RW, size, out);
	if (rc)
		goto err_unlink;

	rc = init_segment((*out)->seg, nslots, cfg);
	if (rc)
		goto err_unmap;

	close(fd);
	return 0;

err_unmap:
	shm_detach(*out);
	*out = NULL;
err_unlink:
	shm_unlink(path);
	close(fd);
	return rc;
}

static int check_header(const struct shm_segment *seg, size_t size)
{
	uint64_t magic = __atomic_load_n(&seg->hdr.magic, __ATOMIC_ACQUIRE);
	uint32_t n = seg->hdr.nslots;

	if (magic == 0)
		return SHM_ENOTREADY;
	if (magic != SHM_MAGIC)
		return SHM_EMAGIC;
	if (seg->hdr.abi_version != SHM_ABI_VERSION)
		return SHM_EVERSION;
	if (n == 0 || n > SHM_MAX_SLOTS || seg->hdr.total_size != size ||
	    shm_total_size(n) != size ||
	    seg->hdr.slots_off != shm_slots_offset() ||
	    seg->hdr.ring_off != shm_ring_offset(n))
		return SHM_ESIZE;
	return 0;
}

static int file_size(int fd, size_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size == 0)
		return SHM_ENOTREADY;
	if ((size_t)st.st_size < sizeof(struct shm_segment))
		return SHM_ESIZE;
	*size = st.st_size;
	return 0;
}

int shm_attach(const char *name, enum shm_mode mode, struct shm **out)
{
	int flags = (mode == SHM_RW ? O_RDWR : O_RDONLY) | O_CLOEXEC;
	char path[SHM_NAME_MAX + 16];
	size_t size = 0;
	int fd, rc;

	rc = shm_path(name, path, sizeof(path));
	if (!rc)
		rc = fault_arm_from_env_once();
	if (rc)
		return rc;

	fd = shm_open(path, flags, 0);
	if (fd < 0)
		return -errno;

	rc = file_size(fd, &size);
	if (rc)
		goto out_close;

	rc = map_segment(fd, mode, size, out);
	if (rc)
		goto out_close;

	rc = check_header((*out)->seg, size);
	if (rc) {
		shm_detach(*out);
		*out = NULL;
	}

out_close:
	close(fd);
	return rc;
}

void shm_detach(struct shm *shm)
{
	if (!shm)
		return;
	munmap(shm->seg, shm->size);
	free(shm);
}

int shm_unlink_name(const char *name)
{
	char path[SHM_NAME_MAX + 16];
	int rc = shm_path(name, path, sizeof(path));

	if (rc)
		return rc;
	return shm_unlink(path) < 0 ? -errno : 0;
}

/* Make the sequence odd before any data store is visible. A writer that
 * died mid-write left it odd already: this write simply continues it. */
static void write_begin(struct shm_segment *seg)
{
	uint64_t seq = __atomic_load_n(&seg->hdr.seq, __ATOMIC_RELAXED);

	if (!(seq & 1))
		__atomic_store_n(&seg->hdr.seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

/* Data stores are visible before the sequence turns even. */
static void write_end(struct shm_segment *seg)
{
	uint64_t seq = __atomic_load_n(&seg->hdr.seq, __ATOMIC_RELAXED);

	__atomic_store_n(&seg->hdr.seq, seq + 1, __ATOMIC_RELEASE);
}

static int repair(struct shm *shm)
{
	int rc;

	pool_repair(shm->seg);

	rc = pthread_mutex_consistent(seg_mutex(shm->seg));
	if (rc) {
		write_end(shm->seg);
		pthread_mutex_unlock(seg_mutex(shm->seg));
		return -rc;
	}
	return 1;
}

int shm_lock(struct shm *shm)
{
	int rc;

	if (!shm->writable)
		return -EPERM;

	rc = pthread_mutex_lock(seg_mutex(shm->seg));
	if (rc != 0 && rc != EOWNERDEAD)
		return -rc;

	write_begin(shm->seg);
	FAULT_POINT("lock.held");

	return rc == EOWNERDEAD ? repair(shm) : 0;
}

void shm_unlock(struct shm *shm)
{
	FAULT_POINT("unlock.before_seq");
	write_end(shm->seg);
	pthread_mutex_unlock(seg_mutex(shm->seg));
}

struct shm_segment *shm_segment(const struct shm *shm)
{
	return shm->seg;
}

size_t shm_size(const struct shm *shm)
{
	return shm->size;
}

static bool copy_once(const struct shm_segment *seg, void *buf, size_t len)
{
	uint64_t before = __atomic_load_n(&seg->hdr.seq, __ATOMIC_ACQUIRE);

	if (before & 1)
		return false;

	memcpy(buf, seg, len);

	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return __atomic_load_n(&seg->hdr.seq, __ATOMIC_RELAXED) == before;
}

int shm_snapshot(const struct shm *shm, void *buf, size_t len)
{
	if (len < shm->size)
		return -ENOBUFS;

	for (int i = 0; i < SNAPSHOT_TRIES; i++) {
		if (copy_once(shm->seg, buf, shm->size))
			return 0;
		if (i >= SNAPSHOT_SPINS)
			sched_yield();
	}
	return -EAGAIN;
}

const char *shm_strerror(int err)
{
	switch (err) {
	case SHM_EMAGIC:
		return "not a vmpool segment (bad magic)";
	case SHM_EVERSION:
		return "vmpool segment of another ABI version";
	case SHM_ESIZE:
		return "vmpool segment size disagrees with its header";
	case SHM_ENOTREADY:
		return "vmpool segment not initialised yet, or busy";
	case SHM_EBADNAME:
		return "invalid pool name or argument, or VMPOOL_FAULT spec";
	case -EOPNOTSUPP:
		return "VMPOOL_FAULT set, but built without fault points";
	default:
		return strerror(-err);
	}
}
