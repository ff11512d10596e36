/* vmpoold on real KVM: leases served by VMs, run where KVM is hardware. */
#include <criterion/criterion.h>
#include <signal.h>
#include <unistd.h>

#include "kvm/host.h"
#include "proto/tenant.h"
#include "tests/supervisor_helpers.h"

/* Bounds on waits for things that must happen, not speed goals: a boot
 * inside the test host takes seconds. */
#define BOOT_WAIT_MS 120000
#define GONE_WAIT_MS 20000

static struct daemon d;

static void setup(void)
{
	struct kvm_host h;

	kvm_probe(&h);
	if (h.kind != KVM_HOST_HARDWARE)
		cr_skip_test("needs hardware KVM; this host has %s", h.desc);
	daemon_backend = "--backend=kvm";
	/* A VM that died under a tenant is a failure to report, not a
	 * SIGPIPE that ends the test as a crash. */
	signal(SIGPIPE, SIG_IGN);
}

static void teardown(void)
{
	daemon_stop(&d);
}

TestSuite(vmpoold_kvm, .init = setup, .fini = teardown, .timeout = 600);

Test(vmpoold_kvm, serves_a_lease_from_a_warm_vm)
{
	const char *args[] = {"--min-size", "1",    "--max-total", "2",
			      "--mem",	    "128M", NULL};
	struct proto_client c;
	bool hit = false;

	daemon_start(&d, args);
	cr_assert_eq(wait_for_state(d.name, SLOT_IDLE, 1, BOOT_WAIT_MS), 1);
	cr_expect(daemon_log_has(&d, "KVM: hardware"), "names the KVM found");

	cr_assert_eq(tenant_connect(&d, &c), 0);
	cr_assert_eq(tenant_acquire(&c, 0, &hit), 0, "%s", c.err_msg);
	cr_expect(hit);
	if (proto_client_ping(&c)) {
		daemon_show_log(&d);
		cr_assert_fail("the leased VM does not answer a ping: %s",
			       c.err_msg);
	}
	cr_expect_eq(tenant_release(&c), 0);
	proto_client_free(&c);
	assert_pool_sound(d.name);

	cr_assert_eq(kill(d.pid, SIGTERM), 0);
	cr_expect_eq(daemon_wait(&d, GONE_WAIT_MS), 0);
}

Test(vmpoold_kvm, replaces_a_vm_whose_worker_was_killed)
{
	const char *args[] = {"--min-size", "1",    "--max-total", "2",
			      "--mem",	    "128M", NULL};
	pid_t pid, again = 0;

	daemon_start(&d, args);
	cr_assert_eq(wait_for_state(d.name, SLOT_IDLE, 1, BOOT_WAIT_MS), 1);
	pid = pool_pid_in(d.name, SLOT_IDLE);
	cr_assert_gt(pid, 0);

	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert(wait_pid_gone(pid, GONE_WAIT_MS));
	for (int i = 0; i < BOOT_WAIT_MS / 10 && (!again || again == pid);
	     i++) {
		usleep(10000);
		again = pool_pid_in(d.name, SLOT_IDLE);
	}
	cr_expect(again && again != pid, "a new VM is idle");
	assert_pool_sound(d.name);
}
