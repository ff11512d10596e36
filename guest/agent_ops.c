/* Agent requests that act on the whole guest: clean, reseed, halt. */
#include "guest/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <unistd.h>

#include "common/util.h"

/* How long clean waits for killed processes to be reaped. */
#define CLEAN_WAIT_NS (2ull * 1000000000)

/* Empty a directory the tenant may write to; a missing one is fine. */
static int empty(struct agent *a, const char *path, uint64_t *count)
{
	int err = agent_empty_dir(a, path, count);

	return err == -ENOENT ? 0 : err;
}

void agent_clean(struct agent *a, const struct proto_frame *f)
{
	struct proto_msg m;
	uint64_t removed = 0;
	uint32_t killed;
	int err;

	if (f->len)
		return agent_reply_error(a, f->id, PROTO_E_BAD_PAYLOAD,
					 "CLEAN: takes no payload");

	killed = agent_kill_all(a);
	agent_wait_children(a, CLEAN_WAIT_NS);

	err = empty(a, a->workdir, &removed);
	if (!err)
		err = empty(a, "/tmp", &removed);
	if (!err)
		err = agent_mkdirs(a, a->workdir, 0755);
	if (err)
		return agent_reply_errno(a, f->id, err, "CLEAN");

	agent_msg_begin(a, &m, PROTO_OK, f->id, 12);
	proto_put_u32(&m, killed);
	proto_put_u64(&m, removed);
	agent_msg_send(a, &m);
}

/* Credit the host's bytes as entropy: needs CAP_SYS_ADMIN. */
static int add_entropy(const void *p, size_t n)
{
	union {
		struct rand_pool_info info;
		uint8_t raw[sizeof(struct rand_pool_info) + PROTO_MAX_ENTROPY];
	} u;
	int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return -errno;
	u.info.entropy_count = n * 8;
	u.info.buf_size = n;
	memcpy(u.info.buf, p, n);
	if (ioctl(fd, RNDADDENTROPY, &u.info) < 0)
		err = -errno;
	close(fd);
	return err;
}

void agent_reseed(struct agent *a, const struct proto_frame *f)
{
	int err;

	if (!f->len || f->len > PROTO_MAX_ENTROPY)
		return agent_reply_error(a, f->id, PROTO_E_BAD_PAYLOAD,
					 "RESEED: 1 to %u bytes of entropy",
					 PROTO_MAX_ENTROPY);
	err = add_entropy(f->payload, f->len);
	if (err)
		return agent_reply_errno(a, f->id, err,
					 "RESEED: ioctl RNDADDENTROPY");
	agent_reply_empty(a, PROTO_OK, f->id);
}

void agent_halt(struct agent *a, int code)
{
	agent_kill_all(a);
	if (!a->pid1)
		exit(code);

	/* PID 1 of a VM must not exit: that would panic the guest kernel.
	 * PID 1 of a pid namespace may lack CAP_SYS_BOOT; exiting is its
	 * way to power off. */
	sync();
	reboot(RB_POWER_OFF);
	exit(code);
}
