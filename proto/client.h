/* A blocking client for the agent protocol: one request at a time. */
#ifndef VMPOOL_PROTO_CLIENT_H
#define VMPOOL_PROTO_CLIENT_H

#include <stdint.h>
#include <sys/types.h>

#include "proto/proto.h"

/*
 * Used by tests, benchmarks and the CLI over a stream fd (socketpair,
 * unix socket, console). Functions return 0 or -errno; when the agent
 * answered ERROR, the wire code and message are kept in the client.
 * Frames for other request ids that arrive while waiting are dropped.
 */
struct proto_client {
	int fd;
	struct proto_reader rd;
	uint32_t next_id;
	uint32_t agent_version;
	uint64_t agent_caps;
	uint32_t err_code;
	char err_msg[256];
	uint8_t *out; /* one frame being built */
	/* How long to keep reading before sleeping when an answer is due:
	 * a sleeping process takes tens of microseconds to wake on some
	 * hosts, far more than a quick answer takes to come. 0: sleep. */
	uint64_t spin_ns;
};

/* Output as it arrives: stream 1 is stdout, 2 is stderr. */
typedef void proto_output_fn(void *arg, int stream, const void *p, size_t n);
/* Fill buf with up to n bytes; 0 at the end, or -errno. */
typedef ssize_t proto_source_fn(void *arg, void *buf, size_t n);
/* Take n bytes; 0 or -errno (stops the transfer). */
typedef int proto_sink_fn(void *arg, const void *p, size_t n);
typedef void proto_entry_fn(void *arg, const char *name,
			    const struct proto_stat *st);

int proto_client_init(struct proto_client *c, int fd);
void proto_client_free(struct proto_client *c);
/* Wait for the agent's HELLO; then, when root is not NULL, answer with
 * ours naming the sandbox root for file paths. */
int proto_client_hello(struct proto_client *c, const char *root);

/* Raw access, for tests that build their own frames. */
int proto_client_send(struct proto_client *c, const void *frame, size_t n);
/* The next frame of any id; valid until the next receive. */
int proto_client_recv(struct proto_client *c, struct proto_frame *f);
uint32_t proto_client_new_id(struct proto_client *c);

int proto_client_ping(struct proto_client *c);
int proto_client_exec(struct proto_client *c, const struct proto_exec_req *req,
		      proto_output_fn *out, void *arg, struct proto_exit *res);
/* When src fails, the transfer ends there and its error is returned; the
 * file keeps what was sent before. */
int proto_client_write(struct proto_client *c, const char *path, uint32_t mode,
		       uint32_t flags, proto_source_fn *src, void *arg,
		       uint64_t *written);
int proto_client_read(struct proto_client *c, const char *path, uint64_t offset,
		      uint64_t length, proto_sink_fn *sink, void *arg,
		      uint64_t *nread);
int proto_client_list(struct proto_client *c, const char *path,
		      proto_entry_fn *fn, void *arg);
int proto_client_stat(struct proto_client *c, const char *path,
		      struct proto_stat *st);
/* 1 when it exists, 0 when not, or -errno. */
int proto_client_exists(struct proto_client *c, const char *path);
int proto_client_mkdir(struct proto_client *c, const char *path, uint32_t mode,
		       uint32_t flags);
int proto_client_rename(struct proto_client *c, const char *from,
			const char *to);
int proto_client_remove(struct proto_client *c, const char *path,
			uint32_t flags);
int proto_client_clean(struct proto_client *c, uint32_t *killed,
		       uint64_t *removed);
int proto_client_reseed(struct proto_client *c, const void *p, size_t n);
int proto_client_shutdown(struct proto_client *c);

#endif
