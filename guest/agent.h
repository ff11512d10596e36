/* The guest agent's shared state: channel, output queue, open requests. */
#ifndef VMPOOL_AGENT_H
#define VMPOOL_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/proto.h"

/* Stop reading command output and file data above this much queued. */
#define AGENT_OUT_PAUSE (1u << 20)
/* Stop reading the channel itself above this much queued output. */
#define AGENT_OUT_STOP (4u << 20)
/* Stdin queued for one command before the channel stops being read. */
#define AGENT_STDIN_CAP (1u << 20)
/* Process groups remembered for clean. */
#define AGENT_MAX_GROUPS 1024

enum agent_req_kind { REQ_FREE, REQ_EXEC, REQ_WRITE, REQ_READ };

struct agent_exec {
	pid_t pid; /* also its process group; 0 once reaped */
	int out_fd, err_fd, in_fd;
	bool want_stdin;
	bool stdin_eof;
	bool reaped;
	uint8_t *in_buf;
	size_t in_off; /* bytes of in_buf already written */
	size_t in_len;
	uint64_t start_ns;
	uint64_t deadline_ns; /* 0: none */
	bool timed_out;
	int status;
};

struct agent_xfer {
	int fd;
	uint64_t bytes;
	uint64_t left; /* read: bytes still wanted, UINT64_MAX: to EOF */
	uint64_t offset;
	bool failed; /* write: error sent; chunks dropped until END */
};

struct agent_req {
	enum agent_req_kind kind;
	uint32_t id;
	union {
		struct agent_exec x;
		struct agent_xfer f;
	};
};

struct agent_out {
	uint8_t *data;
	size_t start;
	size_t end;
	size_t cap;
};

struct agent {
	int chan;
	int sig_fd;
	int timer_fd;
	bool pid1;
	bool channel_eof;
	bool shutting_down;
	bool hello_done;
	struct proto_reader rd;
	struct agent_out out;
	struct agent_req reqs[PROTO_MAX_INFLIGHT];

	int root_fd; /* file paths resolve beneath this */
	bool use_openat2;
	char workdir[PROTO_MAX_PATH]; /* inside the root */

	pid_t groups[AGENT_MAX_GROUPS];
	size_t ngroups;
};

/* agent_loop.c: output queue, replies, requests, the event loop. */
size_t agent_out_len(const struct agent *a);
/* Start a frame at the end of the output with room for `cap` payload
 * bytes; on allocation failure the frame overflows and is dropped. */
void agent_msg_begin(struct agent *a, struct proto_msg *m, uint16_t type,
		     uint32_t id, size_t cap);
void agent_msg_send(struct agent *a, struct proto_msg *m);
void agent_reply_empty(struct agent *a, uint16_t type, uint32_t id);
/* An ERROR reply; err is a negative errno or a proto_err code. */
void agent_reply_errno(struct agent *a, uint32_t id, int err, const char *what);
void agent_reply_error(struct agent *a, uint32_t id, uint32_t code,
		       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
struct agent_req *agent_req_new(struct agent *a, uint32_t id,
				enum agent_req_kind kind);
struct agent_req *agent_req_find(struct agent *a, uint32_t id);
void agent_req_free(struct agent_req *r);
int agent_run(struct agent *a);

/* agent_path.c: paths confined to the sandbox root. */
int agent_path_init(struct agent *a, const char *root, const char *workdir);
/* Like openat(2) on a tenant path; returns an fd or -errno. */
int agent_open(struct agent *a, const char *path, int flags, mode_t mode);
/* The directory holding path's last component (an O_PATH fd) and that
 * component; -EINVAL for "/", "." or "..". */
int agent_open_parent(struct agent *a, const char *path, char *name,
		      size_t size);
int agent_mkdirs(struct agent *a, const char *path, mode_t mode);
/* Remove name in dirfd and everything beneath; adds to *count. */
int agent_remove_tree(int dirfd, const char *name, uint64_t *count);
/* Remove what a directory holds, keeping it; adds to *count. */
int agent_empty_dir(struct agent *a, const char *path, uint64_t *count);

/* agent_exec.c: commands, their output, timeouts and reaping. */
void agent_exec_start(struct agent *a, const struct proto_frame *f);
void agent_exec_stdin(struct agent *a, const struct proto_frame *f);
void agent_exec_kill(struct agent *a, const struct proto_frame *f);
/* Reap every child that has exited, the tenant's orphans too; true
 * while some child is still running. */
bool agent_reap(struct agent *a);
void agent_check_timeouts(struct agent *a);
void agent_arm_timer(struct agent *a);
void agent_exec_output(struct agent *a, struct agent_req *r, int stream);
void agent_exec_feed(struct agent *a, struct agent_req *r);
/* Kill every group the agent started (and, as PID 1, everything). */
uint32_t agent_kill_all(struct agent *a);
/* Wait, up to timeout_ns, until no child is left; reaps on the way. */
void agent_wait_children(struct agent *a, uint64_t timeout_ns);

/* agent_files.c: file requests. */
void agent_files_request(struct agent *a, const struct proto_frame *f);
void agent_write_chunk(struct agent *a, const struct proto_frame *f);
void agent_write_end(struct agent *a, const struct proto_frame *f);
/* Queue the next chunk of an open read; false when it finished. */
bool agent_read_pump(struct agent *a, struct agent_req *r);

/* agent_ops.c: clean, reseed, shutdown. */
void agent_clean(struct agent *a, const struct proto_frame *f);
void agent_reseed(struct agent *a, const struct proto_frame *f);
/* Power off (PID 1) or exit; does not return. */
void agent_halt(struct agent *a, int code) __attribute__((noreturn));

#endif
