/* Test harness: the agent as a child process over a socketpair. */
#ifndef VMPOOL_AGENT_HARNESS_H
#define VMPOOL_AGENT_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

#include "proto/client.h"

struct agent_child {
	pid_t pid;
	int fd;
	char root[64]; /* a fresh temporary sandbox root */
	struct proto_client c;
};

/* Start the agent with a temporary root and /work as its work dir;
 * extra_env ("NAME=value" or NULL) is added to its environment. */
void agent_child_start(struct agent_child *t, const char *extra_env);
/* Close the channel, wait for the agent to exit, remove the root. */
void agent_child_stop(struct agent_child *t);
/* The agent's peak resident memory in KiB, from /proc. */
long agent_child_hwm_kib(const struct agent_child *t);
/* Wait (bounded) until pid is gone; true when it is. */
bool agent_wait_gone(pid_t pid);

/* Build one frame into buf; returns its size. */
size_t agent_frame(void *buf, uint16_t type, uint16_t flags, uint32_t id,
		   const void *payload, size_t len);
/* Receive frames until one with this id arrives. */
void agent_recv_id(struct agent_child *t, uint32_t id, struct proto_frame *f);
/* The error code of an ERROR frame (fails the test if not ERROR). */
uint32_t agent_error_code(const struct proto_frame *f);

/* Collects a command's output. */
struct agent_output {
	char out[1 << 16];
	size_t out_len;
	char err[1 << 12];
	size_t err_len;
};

void agent_collect(void *arg, int stream, const void *p, size_t n);

#endif
