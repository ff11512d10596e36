/* Create, attach, lock and snapshot the pool's shared-memory segment. */
#ifndef VMPOOL_SHM_H
#define VMPOOL_SHM_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "shm/layout.h"

struct shm; /* one process's view of a segment */

enum shm_mode { SHM_RW, SHM_RO };

/* Errors beyond -errno of the underlying calls. */
#define SHM_EBADNAME  (-EINVAL)		 /* name not [A-Za-z0-9_-]{1,32} */
#define SHM_EMAGIC    (-EBADMSG)	 /* not a vmpool segment */
#define SHM_EVERSION  (-EPROTONOSUPPORT) /* another ABI version */
#define SHM_ESIZE     (-EMSGSIZE)	 /* size disagrees with header */
#define SHM_ENOTREADY (-EAGAIN)		 /* creator still initialising */

/* 0 if `name` may follow "/vmpool." (letters, digits, '-', '_'; at most
 * SHM_NAME_MAX), else SHM_EBADNAME. */
int shm_name_check(const char *name);

/* Create /dev/shm/vmpool.<name> (must not exist) with nslots slots
 * (1..SHM_MAX_SLOTS), mode 0640, all slots free. The config must pass
 * pool_config_validate. */
int shm_create(const char *name, uint32_t nslots, const struct pool_config *cfg,
	       struct shm **out);

/* Map an existing segment, checking magic, version and size. SHM_RO maps
 * it PROT_READ: such a handle can snapshot but never lock.
 * Both calls first arm the fault points named in VMPOOL_FAULT (see
 * shm/fault.h), failing with its error when the spec is bad. */
int shm_attach(const char *name, enum shm_mode mode, struct shm **out);
void shm_detach(struct shm *shm);
int shm_unlink_name(const char *name);

/* Take the writers' lock; the seqlock counter is odd until shm_unlock.
 * Returns 0, 1 when the previous owner had died and this call repaired
 * the pool (see pool_repair), or -errno (-EPERM on a read-only handle). */
int shm_lock(struct shm *shm);
void shm_unlock(struct shm *shm);

struct shm_segment *shm_segment(const struct shm *shm);
size_t shm_size(const struct shm *shm);

/* Copy a consistent image of the whole segment into buf (shm_size bytes)
 * without locking. -EAGAIN when writers kept it busy for too long, or
 * one died mid-write and nobody has locked since. */
int shm_snapshot(const struct shm *shm, void *buf, size_t len);

/* Words for the SHM_E* errors and plain errno values. */
const char *shm_strerror(int err);

#endif
