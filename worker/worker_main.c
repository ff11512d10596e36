/* vmpool-worker: boots one guest and serves its tenants until told to stop. */
#include "worker/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "shm/pool.h"

/* Requests in flight on the loop: a handful of watches and the device. */
#define LOOP_ENTRIES 32

static struct worker worker;

/* Never outlive vmpoold: its death kills us, even one before this. */
static int tie_to_parent(void)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return -errno;
	if (getppid() == 1)
		return -ESRCH;
	return 0;
}

/* The control fd must be the supervisor's SOCK_SEQPACKET end. */
static int check_ctl_fd(int fd)
{
	socklen_t len = sizeof(int);
	int type;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -errno;
	return type == SOCK_SEQPACKET ? 0 : -EPROTOTYPE;
}

/* The slot must be booting: the supervisor reserved it for us. */
static int attach_pool(struct worker *w)
{
	struct shm_segment *seg;
	uint8_t state;
	int err;

	err = shm_attach(w->o.pool, SHM_RW, &w->shm);
	if (err)
		return err;
	seg = shm_segment(w->shm);
	if (w->o.slot >= seg->hdr.nslots)
		return -ERANGE;

	err = shm_lock(w->shm);
	if (err < 0)
		return err;
	state = shm_slots(seg)[w->o.slot].state;
	shm_unlock(w->shm);
	return state == SLOT_BOOTING ? 0 : -EINVAL;
}

static int setup_loop(struct worker *w)
{
	int err = ioloop_init(&w->loop, LOOP_ENTRIES);

	if (err)
		return err;
	w->loop.poll_ns = w->o.poll_ns;

	w->timer_fd =
	    timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (w->timer_fd < 0) {
		err = -errno;
		ioloop_exit(&w->loop);
	}
	return err;
}

/* A step of the boot failed: the exit code. */
static int boot_failed(struct worker *w, int err, const char *why)
{
	char text[512];

	snprintf(text, sizeof(text), "%s: %s%s%s", why, strerror(-err),
		 w->be.detail[0] ? ": " : "", w->be.detail);
	worker_boot_failed(w, err,
			   w->be.permanent ? WORKER_EXIT_PERMFAIL
					   : WORKER_EXIT_TEMPFAIL,
			   text);
	return w->exit_code;
}

static int boot(struct worker *w)
{
	int err;

	err = proto_reader_init(&w->guest_rd);
	if (err)
		return boot_failed(w, err, "proto_reader_init");

	err = backend_start(&w->be, &w->o.be, &w->loop);
	if (err)
		return boot_failed(w, err, w->be.why);

	err = worker_watch(w);
	if (err)
		return boot_failed(w, err, "io_uring poll");
	worker_arm_timer(w, w->o.boot_timeout_ns);
	return 0;
}

static int serve(struct worker *w)
{
	while (w->state != WORKER_DONE) {
		int ret = ioloop_run_once(&w->loop, true);

		if (ret < 0) {
			pr_err("io_uring_submit_and_wait: %s", strerror(-ret));
			worker_finish(w, WORKER_EXIT_GUEST_LOST);
			break;
		}
		if (w->resume_guest && w->state != WORKER_DONE) {
			w->resume_guest = false;
			worker_guest_resume(w);
		}
		if (w->resume_tenant && w->state != WORKER_DONE) {
			w->resume_tenant = false;
			worker_tenant_resume(w);
		}
		worker_reap_tenants(w, false);
	}
	return w->exit_code;
}

static void teardown(struct worker *w)
{
	worker_tenant_close(w);
	backend_stop(&w->be);
	ioloop_exit(&w->loop);
	worker_reap_tenants(w, true);
	backend_free(&w->be);
	close(w->timer_fd);
	proto_reader_free(&w->guest_rd);
	relay_queue_free(&w->to_guest);
	shm_detach(w->shm);
}

static void usage(void)
{
	fprintf(stderr, "usage: vmpool-worker --pool NAME --slot N --ctl-fd FD "
			"--backend ns|kvm --image CPIO [--kernel VMLINUX] "
			"[--mem BYTES] [--vcpus N] [--health-timeout DURATION] "
			"[--boot-timeout DURATION] [--idle-ping DURATION] "
			"[--guest-timeout DURATION] [--poll DURATION] [-v]\n");
}

/* Options, the pool and the loop; a failure here is permanent. */
static int start(struct worker *w, int argc, char **argv)
{
	char why[160];
	int err;

	err = worker_parse_args(argc, argv, &w->o, why, sizeof(why));
	if (err) {
		pr_err("%s", why);
		usage();
		return err;
	}
	log_set_slot(w->o.slot);
	if (w->o.verbose) {
		log_set_level(LOG_DEBUG);
		w->o.be.log_fd = STDERR_FILENO;
	}

	err = check_ctl_fd(w->o.ctl_fd);
	if (err) {
		pr_err("--ctl-fd %d: %s", w->o.ctl_fd, strerror(-err));
		return err;
	}
	err = tie_to_parent();
	if (err) {
		pr_err("prctl PR_SET_PDEATHSIG: %s", strerror(-err));
		return err;
	}
	err = attach_pool(w);
	if (err) {
		pr_err("pool %s, slot %u: %s", w->o.pool, w->o.slot,
		       err == -EINVAL ? "slot is not booting"
				      : shm_strerror(err));
		return err;
	}
	err = setup_loop(w);
	if (err)
		pr_err("io_uring_queue_init: %s", strerror(-err));
	return err;
}

int main(int argc, char **argv)
{
	struct worker *w = &worker;
	int code;

	log_init("vmpool-worker", -1);
	signal(SIGPIPE, SIG_IGN);
	w->state = WORKER_BOOTING;
	if (start(w, argc, argv)) {
		if (w->shm)
			shm_detach(w->shm);
		return WORKER_EXIT_PERMFAIL;
	}

	code = boot(w);
	if (!code)
		code = serve(w);
	teardown(w);
	pr_info("exit %d", code);
	return code;
}
