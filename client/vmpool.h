/* libvmpool: lease a warm microVM from vmpoold and run commands in it. */
#ifndef VMPOOL_H
#define VMPOOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A plain C ABI: opaque handles, functions returning 0 (or a count) on
 * success and a negative errno value on failure, and a message saying
 * what failed kept in the handle (vmpool_error, vmpool_lease_error).
 * The library never prints and installs no signal handlers; a program
 * writing to sockets should ignore SIGPIPE or accept -EPIPE.
 *
 * struct vmpool is a connection to vmpoold for pool requests (stats,
 * warm); each lease has a connection of its own, handed by vmpoold to
 * the worker that owns the leased VM, and on release back to vmpoold,
 * kept for the pool's next lease. A handle is used by one thread at a
 * time; different handles are independent (a lease may be released on
 * another thread than its pool's).
 */
struct vmpool;
struct vmpool_lease;

#define VMPOOL_API __attribute__((visibility("default")))

/* Where vmpoold listens when neither the caller nor $VMPOOL_SOCKET
 * names a socket: /run/vmpool/default.sock for root, else
 * $XDG_RUNTIME_DIR/vmpool/default.sock, else /tmp/vmpool-UID/default.sock. */
#define VMPOOL_DEFAULT_NAME "default"
#define VMPOOL_SOCKET_ENV   "VMPOOL_SOCKET"

/* Error codes from the pool beyond errno values, read with
 * vmpool_lease_error_code / vmpool_error_code (0: a local failure). */
enum vmpool_code {
	VMPOOL_E_VM_LOST = 64,	   /* -ECONNRESET: VM or worker died */
	VMPOOL_E_NO_CAPACITY = 65, /* -EAGAIN: no VM within the timeout */
	VMPOOL_E_QUOTA = 66,	   /* -EDQUOT: this tenant's lease cap */
	VMPOOL_E_DRAINING = 67,	   /* -ESHUTDOWN: vmpoold is stopping */
	VMPOOL_E_NOT_LEASED = 68,  /* -ENOTCONN */
	VMPOOL_E_FORBIDDEN = 69,   /* -EPERM: only the host may ask this */
	VMPOOL_E_GUEST = 70,	   /* -EPROTO: the guest broke the protocol */
};

/* The socket path vmpoold uses by default, written into buf. */
VMPOOL_API int vmpool_default_socket(char *buf, size_t cap);

/* Connect to vmpoold at socket_path (NULL: $VMPOOL_SOCKET or the
 * default). On failure *out is still a handle holding the message
 * (free it with vmpool_close) unless the failure was -ENOMEM. */
VMPOOL_API int vmpool_connect(const char *socket_path, struct vmpool **out);
/* The same over an already connected stream socket; takes the fd. */
VMPOOL_API int vmpool_connect_fd(int fd, struct vmpool **out);
VMPOOL_API void vmpool_close(struct vmpool *p);
/* How long vmpool_acquire keeps checking for its answer before the
 * thread sleeps (default VMPOOL_SPIN_DEFAULT_NS; 0: sleep at once). A
 * warm hit then costs no wake-up, which on some hosts takes longer than
 * the answer itself; the price is that much CPU per acquire at most, and
 * only one thread of a process spins at a time. */
#define VMPOOL_SPIN_DEFAULT_NS 50000u
VMPOOL_API void vmpool_set_spin(struct vmpool *p, uint64_t ns);
/* The message of the last failure on p ("" if none). */
VMPOOL_API const char *vmpool_error(const struct vmpool *p);
VMPOOL_API uint32_t vmpool_error_code(const struct vmpool *p);

struct vmpool_counter {
	char name[48];
	uint64_t value;
};

/* Pool counters (hit, miss, evict, idle, in_use, ...): up to cap of
 * them into out; returns how many vmpoold sent (may exceed cap). */
VMPOOL_API int vmpool_stats(struct vmpool *p, struct vmpool_counter *out,
			    size_t cap);
/* Bring idle VMs up to min(n, max_size); *started: boots begun. */
VMPOOL_API int vmpool_warm(struct vmpool *p, uint32_t n, uint32_t *started);

/*
 * Lease a VM, waiting at most timeout_ns (0: vmpoold's default). Uses
 * the connection an earlier lease of p left when released, else opens
 * one to the socket p was made with; a pool made with vmpool_connect_fd
 * leases over that fd and is then unusable for stats, and can lease
 * again once a lease gave its connection back. On failure the message
 * is in vmpool_error(p).
 */
VMPOOL_API int vmpool_acquire(struct vmpool *p, uint64_t timeout_ns,
			      struct vmpool_lease **out);

struct vmpool_lease_info {
	uint32_t slot;
	uint32_t generation;
	uint32_t hit; /* 1: served from the warm pool */
	uint64_t wait_ns;
	char backend[8]; /* "kvm" or "ns" */
};

VMPOOL_API void vmpool_lease_info(const struct vmpool_lease *l,
				  struct vmpool_lease_info *info);

/* End the lease: the VM is cleaned and goes back to the pool, and the
 * connection to its pool when that is still open. Frees l whatever
 * happens; a VM already lost gives -ECONNRESET. */
VMPOOL_API int vmpool_release(struct vmpool_lease *l);
VMPOOL_API const char *vmpool_lease_error(const struct vmpool_lease *l);
VMPOOL_API uint32_t vmpool_lease_error_code(const struct vmpool_lease *l);

VMPOOL_API int vmpool_ping(struct vmpool_lease *l);

/* Live output: stream 1 is stdout, 2 is stderr. */
typedef void vmpool_output_fn(void *arg, int stream, const void *data,
			      size_t len);

#define VMPOOL_EXEC_SHELL  0x1u /* argv[0] is a line for /bin/sh -c */
#define VMPOOL_EXEC_TO_FDS 0x2u /* output to stdout_fd / stderr_fd */

struct vmpool_exec {
	const char *const *argv; /* NULL-terminated, argv[0] non-NULL */
	const char *const *env;	 /* "NAME=value", NULL-terminated; or NULL */
	const char *cwd;	 /* NULL: the guest's work dir */
	uint64_t timeout_ns;	 /* 0: none */
	uint32_t flags;		 /* VMPOOL_EXEC_* */
	const void *stdin_data;	 /* sent whole, then EOF; NULL: /dev/null */
	size_t stdin_len;
	vmpool_output_fn *output; /* called as output arrives, or NULL */
	void *output_arg;
	int stdout_fd; /* with VMPOOL_EXEC_TO_FDS; -1 drops that stream */
	int stderr_fd;
};

enum vmpool_exit_kind {
	VMPOOL_EXITED = 0,
	VMPOOL_SIGNALED = 1,
	VMPOOL_TIMED_OUT = 2,
};

struct vmpool_result {
	uint32_t kind;	/* enum vmpool_exit_kind */
	int32_t status; /* exit code, or signal number */
	uint64_t duration_ns;
};

/* Run a command and wait for it. 0 means it ran: see res for how it
 * ended (a non-zero exit code is not a failure of the call). */
VMPOOL_API int vmpool_exec(struct vmpool_lease *l, const struct vmpool_exec *x,
			   struct vmpool_result *res);
/* The shell's convention: the exit code, 128+signal, 124 timed out. */
VMPOOL_API int vmpool_result_code(const struct vmpool_result *res);

#define VMPOOL_WRITE_APPEND  0x1u
#define VMPOOL_WRITE_PARENTS 0x2u /* create missing parent directories */

/* Write a guest file (mode 0: 0644) from a buffer or from an fd until
 * its EOF, in chunks; *written (may be NULL) gets the bytes stored. */
VMPOOL_API int vmpool_write_buf(struct vmpool_lease *l, const char *path,
				uint32_t mode, uint32_t flags, const void *data,
				size_t len);
VMPOOL_API int vmpool_write_fd(struct vmpool_lease *l, const char *path,
			       uint32_t mode, uint32_t flags, int fd,
			       uint64_t *written);
/* Read a whole guest file into a malloc'd buffer (free with
 * vmpool_free), or to an fd. */
VMPOOL_API int vmpool_read_buf(struct vmpool_lease *l, const char *path,
			       void **data, size_t *len);
VMPOOL_API int vmpool_read_fd(struct vmpool_lease *l, const char *path, int fd,
			      uint64_t *nread);
VMPOOL_API void vmpool_free(void *p);

enum vmpool_kind {
	VMPOOL_KIND_OTHER = 0,
	VMPOOL_KIND_FILE = 1,
	VMPOOL_KIND_DIR = 2,
	VMPOOL_KIND_SYMLINK = 3,
};

struct vmpool_stat {
	uint32_t kind; /* enum vmpool_kind */
	uint32_t mode;
	uint64_t size;
	int64_t mtime_ns;
};

typedef void vmpool_entry_fn(void *arg, const char *name,
			     const struct vmpool_stat *st);

VMPOOL_API int vmpool_list(struct vmpool_lease *l, const char *path,
			   vmpool_entry_fn *fn, void *arg);
/* The entry itself, a symlink not followed. */
VMPOOL_API int vmpool_stat(struct vmpool_lease *l, const char *path,
			   struct vmpool_stat *st);
/* 1 when path exists, 0 when not, or -errno. */
VMPOOL_API int vmpool_exists(struct vmpool_lease *l, const char *path);
#define VMPOOL_MKDIR_PARENTS 0x1u
VMPOOL_API int vmpool_mkdir(struct vmpool_lease *l, const char *path,
			    uint32_t mode, uint32_t flags);
VMPOOL_API int vmpool_rename(struct vmpool_lease *l, const char *from,
			     const char *to);
#define VMPOOL_REMOVE_RECURSIVE 0x1u
VMPOOL_API int vmpool_remove(struct vmpool_lease *l, const char *path,
			     uint32_t flags);

#ifdef __cplusplus
}
#endif

#endif
