/* Test harness: the agent as a child process over a socketpair. */
#include "tests/agent_harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

/* The agent beside this test, or VMPOOL_AGENT (a sanitized build, say). */
static void agent_path(char *out, size_t size)
{
	const char *env = getenv("VMPOOL_AGENT");
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (env) {
		snprintf(out, size, "%s", env);
		return;
	}
	cr_assert_gt(n, 0);
	self[n] = '\0';
	snprintf(out, size, "%s/../bin/vmpool-agent", dirname(self));
}

static void exec_agent(struct agent_child *t, int fd, const char *extra)
{
	char bin[PATH_MAX], num[16];

	agent_path(bin, sizeof(bin));
	snprintf(num, sizeof(num), "%d", fd);
	setenv("VMPOOL_CHANNEL_FD", num, 1);
	setenv("VMPOOL_ROOT", t->root, 1);
	setenv("VMPOOL_WORKDIR", "/work", 1);
	if (extra)
		putenv((char *)extra);
	execl(bin, bin, (char *)NULL);
	_exit(127);
}

void agent_child_start(struct agent_child *t, const char *extra_env)
{
	int sv[2];

	memset(t, 0, sizeof(*t));
	snprintf(t->root, sizeof(t->root), "/tmp/vmpool-agent-XXXXXX");
	cr_assert_not_null(mkdtemp(t->root));
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);

	t->pid = fork();
	cr_assert_geq(t->pid, 0);
	if (t->pid == 0) {
		int fd = dup(sv[1]); /* without close-on-exec */

		exec_agent(t, fd, extra_env);
	}
	close(sv[1]);
	t->fd = sv[0];
	cr_assert_eq(proto_client_init(&t->c, t->fd), 0);
	cr_assert_eq(proto_client_hello(&t->c, NULL), 0, "no HELLO");
}

void agent_child_stop(struct agent_child *t)
{
	char cmd[128];
	int st;

	if (t->pid <= 0)
		return;
	proto_client_free(&t->c);
	close(t->fd);
	waitpid(t->pid, &st, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", t->root);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", t->root);
	t->pid = 0;
}

long agent_child_hwm_kib(const struct agent_child *t)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)t->pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

bool agent_wait_gone(pid_t pid)
{
	for (int i = 0; i < 5000; i++) {
		struct timespec ts = {0, 1000000};

		if (kill(pid, 0) < 0 && errno == ESRCH)
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

size_t agent_frame(void *buf, uint16_t type, uint16_t flags, uint32_t id,
		   const void *payload, size_t len)
{
	proto_put_header(buf, len, type, flags, id);
	if (len)
		memcpy((uint8_t *)buf + PROTO_HDR_SIZE, payload, len);
	return PROTO_HDR_SIZE + len;
}

void agent_recv_id(struct agent_child *t, uint32_t id, struct proto_frame *f)
{
	do
		cr_assert_eq(proto_client_recv(&t->c, f), 0, "channel closed");
	while (f->id != id);
}

uint32_t agent_error_code(const struct proto_frame *f)
{
	struct proto_cur c;
	uint32_t code;

	cr_assert_eq(f->type, PROTO_ERROR, "expected ERROR, got %s",
		     proto_type_name(f->type));
	proto_cur_init(&c, f);
	code = proto_get_u32(&c);
	cr_assert_not_null(proto_get_str(&c, 1024));
	cr_assert_eq(proto_cur_done(&c), 0);
	return code;
}

void agent_collect(void *arg, int stream, const void *p, size_t n)
{
	struct agent_output *o = arg;
	char *dst = stream == 1 ? o->out : o->err;
	size_t *len = stream == 1 ? &o->out_len : &o->err_len;
	size_t cap = stream == 1 ? sizeof(o->out) : sizeof(o->err);

	n = MIN(n, cap - 1 - *len);
	memcpy(dst + *len, p, n);
	*len += n;
	dst[*len] = '\0';
}
