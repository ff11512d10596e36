/* Tests for vmpool-worker on real KVM: a VM per worker, its agent on virtio. */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "proto/tenant.h"
#include "tests/worker_harness.h"

Test(worker_kvm, boots_leases_runs_and_recycles, .timeout = WORKER_TEST_TIMEOUT)
{
	struct pool_config cfg = sup_config(1);
	struct ctl_msg m;
	struct sup s;

	sup_use_kvm();
	sup_spawn_ready(&s, &cfg, NULL);
	sup_lease(&s);
	cr_assert_eq(proto_client_ping(&s.c), 0);
	sup_assert_sh(&s, "echo hello from $(uname -s)", "hello from Linux\n");
	sup_assert_sh(&s, "echo secret > /tmp/left; echo ok", "ok\n");
	sup_release_recycled(&s, &m);
	cr_assert_str_eq(m.text, "health checked");

	sup_lease(&s);
	cr_assert_eq(proto_client_exists(&s.c, "/tmp/left"), 0);
	sup_release_recycled(&s, &m);
	sup_finish(&s);
}

Test(worker_kvm, guest_writing_junk_on_its_console_is_evicted,
     .timeout = WORKER_TEST_TIMEOUT)
{
	const char *argv[] = {"printf 'junk junk junk' > /dev/hvc0", NULL};
	struct proto_exec_req req = {.argv = argv, .flags = PROTO_EXEC_SHELL};
	struct pool_config cfg = sup_config(0);
	struct proto_exit res;
	struct ctl_msg m;
	struct sup s;

	sup_use_kvm();
	sup_spawn_ready(&s, &cfg, NULL);
	sup_lease(&s);
	/* In a VM the tenant can reach the agent's channel itself. */
	cr_assert_lt(proto_client_exec(&s.c, &req, NULL, NULL, &res), 0);
	cr_assert_eq(s.c.err_code, TENANT_E_GUEST, "%s", s.c.err_msg);
	sup_end_lease(&s);
	sup_expect_ctl(&s, CTL_EVICTED, &m);
	cr_assert_eq(sup_wait_exit(&s), WORKER_EXIT_OK);
	sup_finish(&s);
}
