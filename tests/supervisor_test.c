/* vmpoold end to end: a real daemon with ns workers, spoken to raw. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "kvm/host.h"
#include "proto/tenant.h"
#include "shm/pool.h"
#include "tests/supervisor_helpers.h"

/* Bounds on waits for things that must happen, not speed goals. */
#define BOOT_WAIT_MS 20000
#define GONE_WAIT_MS 10000

static struct daemon d;

static void teardown(void)
{
	daemon_stop(&d);
}

TestSuite(vmpoold, .fini = teardown, .timeout = 90);

Test(vmpoold, refuses_backend_kvm_without_hardware_kvm)
{
	const char *args[] = {"--name", "svt_kvm", "--socket",
			      "/tmp/svt_kvm.sock", NULL};
	struct kvm_host h;
	char *out;
	int rc;

	kvm_probe(&h);
	if (h.kind == KVM_HOST_HARDWARE || h.kind == KVM_HOST_UNKNOWN)
		cr_skip_test("this host has usable KVM (%s)", h.desc);

	rc = test_vmpoold_run(args, &out);
	cr_expect_eq(rc, 78, "exit %d, output:\n%s", rc, out);
	cr_expect(strstr(out, "KVM:"), "names the KVM found:\n%s", out);
	cr_expect(strstr(out, "backend kvm needs hardware KVM"),
		  "says why:\n%s", out);
	cr_expect(access("/dev/shm/vmpool.svt_kvm", F_OK) < 0);
	free(out);
}

Test(vmpoold, refuses_sizes_naming_both)
{
	const char *args[] = {"--backend",  "ns", "--min-size", "5",
			      "--max-size", "2",  NULL};
	char *out;

	cr_expect_eq(test_vmpoold_run(args, &out), 64);
	cr_expect(strstr(out, "min_size=5, max_size=2"), "%s", out);
	free(out);
}

Test(vmpoold, refuses_bad_values_naming_the_option)
{
	const char *args[] = {"--backend", "xen", NULL};
	const char *args2[] = {"--mem", "lots", NULL};
	const char *args3[] = {"--no-such-option", "1", NULL};
	char *out;

	cr_expect_eq(test_vmpoold_run(args, &out), 64);
	cr_expect(strstr(out, "--backend: 'xen' is not kvm or ns"), "%s", out);
	free(out);
	cr_expect_eq(test_vmpoold_run(args2, &out), 64);
	cr_expect(strstr(out, "--mem: 'lots'"), "%s", out);
	free(out);
	cr_expect_eq(test_vmpoold_run(args3, &out), 64);
	cr_expect(strstr(out, "unknown option '--no-such-option'"), "%s", out);
	free(out);
}

Test(vmpoold, config_file_errors_name_the_line)
{
	char path[] = "/tmp/svt-conf-XXXXXX";
	const char *args[] = {"--config", path, NULL};
	int fd = mkstemp(path);
	const char text[] = "# a pool\nmin_size = 1\n\nmax_idle = soon\n";
	char *out;

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, sizeof(text) - 1), sizeof(text) - 1);
	close(fd);

	cr_expect_eq(test_vmpoold_run(args, &out), 64);
	cr_expect(strstr(out, ":4: max_idle: 'soon' is not a duration"), "%s",
		  out);
	free(out);
	unlink(path);
}

Test(vmpoold, flags_override_the_config_file)
{
	char path[] = "/tmp/svt-conf-XXXXXX";
	const char *args[] = {"--config", path, "--max-size", "8", NULL};
	int fd = mkstemp(path);
	const char text[] = "backend = ns\nmin_size = 6\nmax_size = 2\n"
			    "worker = /nonexistent/vmpool-worker\n";
	char *out;

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, sizeof(text) - 1), sizeof(text) - 1);
	close(fd);

	/* Sizes from the file alone are invalid; the flag makes them fit,
	 * so the next complaint is the worker the file names. */
	cr_expect_eq(test_vmpoold_run(args, &out), 78);
	cr_expect(strstr(out, "worker program /nonexistent/vmpool-worker"),
		  "%s", out);
	free(out);
	unlink(path);
}

Test(vmpoold, help_documents_every_option)
{
	const char *args[] = {"--help", NULL};
	const char *opts[] = {
	    "--config",
	    "--name",
	    "--socket",
	    "--backend",
	    "--kernel",
	    "--image",
	    "--mem",
	    "--vcpus",
	    "--min-size",
	    "--max-size",
	    "--max-idle",
	    "--health-check-interval",
	    "--max-total",
	    "--max-leases-per-tenant",
	    "--acquire-timeout",
	    "--drain-grace",
	    "-v",
	};
	char *out;

	cr_expect_eq(test_vmpoold_run(args, &out), 0);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		cr_expect(strstr(out, opts[i]), "--help lacks %s", opts[i]);
	free(out);
}

Test(vmpoold, keeps_min_size_warm_from_the_start)
{
	const char *args[] = {"--min-size", "2", "--max-size", "3", NULL};

	daemon_start(&d, args);
	cr_assert_eq(wait_for_state(d.name, SLOT_IDLE, 2, BOOT_WAIT_MS), 2);
	assert_pool_sound(d.name);
	cr_expect(daemon_log_has(&d, "KVM:"), "startup names the KVM found");
}

Test(vmpoold, workers_run_nicer_than_vmpoold_by_worker_nice)
{
	const char *args[] = {"--min-size", "1", "--worker-nice", "7", NULL};
	pid_t pid;

	daemon_start(&d, args);
	cr_assert_eq(wait_for_state(d.name, SLOT_IDLE, 1, BOOT_WAIT_MS), 1);
	pid = pool_pid_in(d.name, SLOT_IDLE);
	cr_assert_gt(pid, 0);
	errno = 0;
	cr_expect_eq(getpriority(PRIO_PROCESS, pid),
		     getpriority(PRIO_PROCESS, d.pid) + 7);
	cr_expect_eq(errno, 0);
}

Test(vmpoold, acquire_hit_leases_a_warm_vm_and_replenishes)
{
	const char *args[] = {"--min-size", "1", NULL};
	struct proto_client c;
	bool hit = false;

	daemon_start(&d, args);
	cr_assert_eq(wait_for_state(d.name, SLOT_IDLE, 1, BOOT_WAIT_MS), 1);

	cr_assert_eq(tenant_connect(&d, &c), 0);
	cr_assert_eq(tenant_acquire(&c, 0, &hit), 0, "%s", c.err_msg);
	cr_expect(hit);
	/* The hit is replaced in the background while the lease runs. */
	cr_expect_eq(wait_for_state(d.name, SLOT_IDLE, 1, BOOT_WAIT_MS), 1);
	cr_expect_eq(proto_client_ping(&c), 0);
	cr_expect_eq(tenant_release(&c), 0);
	proto_client_free(&c);
	assert_pool_sound(d.name);
}

/* RELEASE with TENANT_RELEASE_KEEP: OK u8 1, the connection stays. */
static void release_keeping(struct proto_client *c)
{
	uint32_t id = proto_client_new_id(c);
	struct proto_frame f;
	struct proto_msg m;

	proto_msg_begin(&m, c->out, PROTO_MAX_FRAME, TENANT_RELEASE, 0, id);
	proto_put_u8(&m, TENANT_RELEASE_KEEP);
	cr_assert_eq(proto_client_send(c, c->out, proto_msg_end(&m)), 0);
	cr_assert_eq(proto_client_recv(c, &f), 0);
	cr_assert_eq(f.type, PROTO_OK, "RELEASE answered %s",
		     proto_type_name(f.type));
	cr_assert_eq(f.id, id);
	cr_assert_eq(f.len, 1);
	cr_assert_eq(f.payload[0], 1, "the connection is kept");
}

Test(vmpoold, a_connection_kept_on_release_leases_again)
{
	const char *args[] = {"--min-size", "1", "--max-leases-per-tenant", "1",
			      NULL};
	struct proto_client c;
	bool hit = false;

	daemon_start(&d, args);
	cr_assert_eq(wait_for_state(d.name, SLOT_IDLE, 1, BOOT_WAIT_MS), 1);
	cr_assert_eq(tenant_connect(&d, &c), 0);

	for (int i = 0; i < 3; i++) {
		cr_assert_eq(tenant_acquire(&c, 0, &hit), 0, "lease %d: %s", i,
			     c.err_msg);
		cr_expect_eq(proto_client_ping(&c), 0);
		/* The old lease no longer counts against the cap. */
		release_keeping(&c);
	}
	cr_expect_gt(tenant_stat(&c, "hit"), 0);
	cr_assert_eq(tenant_acquire(&c, 0, &hit), 0, "%s", c.err_msg);
	cr_expect_eq(tenant_release(&c), 0, "a plain RELEASE still closes");
	proto_client_free(&c);
	assert_pool_sound(d.name);
}

Test(vmpoold, acquire_miss_boots_a_vm)
{
	const char *args[] = {"--min-size", "0", NULL};
	struct proto_client c;
	bool hit = true;

	daemon_start(&d, args);
	cr_assert_eq(tenant_connect(&d, &c), 0);
	cr_assert_eq(tenant_acquire(&c, 0, &hit), 0, "%s", c.err_msg);
	cr_expect_not(hit);
	cr_expect_eq(proto_client_ping(&c), 0);
	cr_expect_eq(tenant_release(&c), 0);
	proto_client_free(&c);

	cr_assert_eq(tenant_connect(&d, &c), 0);
	cr_expect_eq(tenant_stat(&c, "miss"), 1);
	cr_expect_eq(tenant_stat(&c, "hit"), 0);
	proto_client_free(&c);
	assert_pool_sound(d.name);
}

Test(vmpoold, stats_reports_the_seed_counters)
{
	const char *names[] = {"hit", "miss", "evict", "idle", "in_use"};
	const char *args[] = {"--min-size", "1", NULL};
	struct proto_client c;

	daemon_start(&d, args);
	cr_assert_eq(wait_for_state(d.name, SLOT_IDLE, 1, BOOT_WAIT_MS), 1);
	cr_assert_eq(tenant_connect(&d, &c), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		cr_expect_geq(tenant_stat(&c, names[i]), 0, "no %s", names[i]);
	cr_expect_eq(tenant_stat(&c, "idle"), 1);
	proto_client_free(&c);
}

Test(vmpoold, warm_starts_boots_up_to_the_request)
{
	const char *args[] = {"--min-size", "0", "--max-size", "3", NULL};
	struct proto_client c;
	struct proto_frame f;
	struct proto_msg m;
	struct proto_cur cur;
	uint32_t id;

	daemon_start(&d, args);
	cr_assert_eq(tenant_connect(&d, &c), 0);
	id = proto_client_new_id(&c);
	proto_msg_begin(&m, c.out, PROTO_MAX_FRAME, TENANT_WARM, 0, id);
	proto_put_u32(&m, 2);
	cr_assert_eq(proto_client_send(&c, c.out, proto_msg_end(&m)), 0);
	cr_assert_eq(proto_client_recv(&c, &f), 0);
	cr_assert_eq(f.type, PROTO_OK);
	proto_cur_init(&cur, &f);
	cr_expect_eq(proto_get_u32(&cur), 2);
	proto_client_free(&c);

	cr_expect_eq(wait_for_state(d.name, SLOT_IDLE, 2, BOOT_WAIT_MS), 2);
}

Test(vmpoold, refuses_requests_before_acquire)
{
	const char *args[] = {"--min-size", "0", NULL};
	struct proto_client c;
	uint32_t reply;

	daemon_start(&d, args);
	cr_assert_eq(tenant_connect(&d, &c), 0);

	cr_expect_eq(tenant_request(&c, PROTO_PING, &reply),
		     TENANT_E_NOT_LEASED);
	cr_expect_eq(tenant_request(&c, TENANT_RELEASE, &reply),
		     TENANT_E_NOT_LEASED);
	cr_expect_eq(tenant_request(&c, 0x3f, &reply), PROTO_E_BAD_TYPE);
	cr_expect_eq(tenant_request(&c, TENANT_ACQUIRE, &reply),
		     PROTO_E_BAD_PAYLOAD, "ACQUIRE without its timeout");
	/* Nothing was disturbed: the same connection still works. */
	cr_expect_geq(tenant_stat(&c, "hit"), 0);
	proto_client_free(&c);
}

Test(vmpoold, closes_on_an_oversized_frame)
{
	const char *args[] = {"--min-size", "0", NULL};
	struct proto_client c, c2;
	struct proto_frame f;
	uint8_t hdr[PROTO_HDR_SIZE];
	uint32_t code;
	const char *msg;

	daemon_start(&d, args);
	cr_assert_eq(tenant_connect(&d, &c), 0);
	proto_put_header(hdr, PROTO_MAX_PAYLOAD + 1, TENANT_STATS, 0, 7);
	cr_assert_eq(proto_client_send(&c, hdr, sizeof(hdr)), 0);

	cr_assert_eq(proto_client_recv(&c, &f), 0);
	cr_expect_eq(f.type, PROTO_ERROR);
	cr_assert_eq(proto_parse_error(&f, &code, &msg), 0);
	cr_expect_eq(code, PROTO_E_BAD_LENGTH);
	cr_expect_eq(proto_client_recv(&c, &f), -EPIPE, "connection closed");
	proto_client_free(&c);

	cr_assert_eq(tenant_connect(&d, &c2), 0);
	cr_expect_geq(tenant_stat(&c2, "hit"), 0, "others are served");
	proto_client_free(&c2);
}

Test(vmpoold, per_tenant_cap_gives_quota)
{
	const char *args[] = {"--min-size", "2", "--max-leases-per-tenant", "1",
			      NULL};
	struct proto_client a, b;
	bool hit;

	daemon_start(&d, args);
	cr_assert_eq(wait_for_state(d.name, SLOT_IDLE, 2, BOOT_WAIT_MS), 2);
	cr_assert_eq(tenant_connect(&d, &a), 0);
	cr_assert_eq(tenant_acquire(&a, 0, &hit), 0, "%s", a.err_msg);
	cr_assert_eq(tenant_connect(&d, &b), 0);
	cr_expect_eq(tenant_acquire(&b, 0, &hit), TENANT_E_QUOTA);
	proto_client_free(&b);
	proto_client_free(&a);
}

Test(vmpoold, total_cap_gives_no_capacity)
{
	const char *args[] = {"--min-size",  "1", "--max-size", "1",
			      "--max-total", "1", NULL};
	struct proto_client a, b;
	bool hit;

	daemon_start(&d, args);
	cr_assert_eq(wait_for_state(d.name, SLOT_IDLE, 1, BOOT_WAIT_MS), 1);
	cr_assert_eq(tenant_connect(&d, &a), 0);
	cr_assert_eq(tenant_acquire(&a, 0, &hit), 0, "%s", a.err_msg);
	cr_assert_eq(tenant_connect(&d, &b), 0);
	cr_expect_eq(tenant_acquire(&b, 0, &hit), TENANT_E_NO_CAPACITY);
	proto_client_free(&b);
	proto_client_free(&a);
}

/* Kill a worker, then prove the pool still serves and is whole. */
static void expect_serving(void)
{
	struct proto_client c;
	bool hit;

	cr_assert_eq(tenant_connect(&d, &c), 0);
	cr_expect_eq(tenant_acquire(&c, 0, &hit), 0, "%s", c.err_msg);
	cr_expect_eq(proto_client_ping(&c), 0);
	cr_expect_eq(tenant_release(&c), 0);
	proto_client_free(&c);
	assert_pool_sound(d.name);
}

Test(vmpoold, replaces_a_worker_killed_while_idle)
{
	const char *args[] = {"--min-size", "1", NULL};
	pid_t pid, again;

	daemon_start(&d, args);
	cr_assert_eq(wait_for_state(d.name, SLOT_IDLE, 1, BOOT_WAIT_MS), 1);
	pid = pool_pid_in(d.name, SLOT_IDLE);
	cr_assert_gt(pid, 0);

	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert(wait_pid_gone(pid, GONE_WAIT_MS));
	for (int i = 0; i < BOOT_WAIT_MS / 10; i++) {
		again = pool_pid_in(d.name, SLOT_IDLE);
		if (again && again != pid)
			break;
		usleep(10000);
	}
	cr_expect(again && again != pid, "a new worker is idle");
	assert_pool_sound(d.name);
	expect_serving();
}

Test(vmpoold, tenant_sees_the_end_when_its_worker_dies)
{
	const char *args[] = {"--min-size", "1", NULL};
	struct proto_client c;
	struct proto_frame f;
	bool hit;
	pid_t pid;

	daemon_start(&d, args);
	cr_assert_eq(wait_for_state(d.name, SLOT_IDLE, 1, BOOT_WAIT_MS), 1);
	cr_assert_eq(tenant_connect(&d, &c), 0);
	cr_assert_eq(tenant_acquire(&c, 0, &hit), 0, "%s", c.err_msg);
	pid = pool_pid_in(d.name, SLOT_LEASED);
	cr_assert_gt(pid, 0);

	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_expect_eq(proto_client_recv(&c, &f), -EPIPE,
		     "the tenant's connection ends");
	proto_client_free(&c);

	cr_assert(wait_pid_gone(pid, GONE_WAIT_MS));
	expect_serving();
	cr_assert_eq(tenant_connect(&d, &c), 0);
	cr_expect_eq(tenant_stat(&c, "leases_lost"), 1);
	proto_client_free(&c);
}

Test(vmpoold, recovers_when_a_worker_dies_holding_the_lock)
{
	const char *args[] = {"--min-size", "1", "--worker-env",
			      "VMPOOL_FAULT=release.moved:1:kill", NULL};
	struct proto_client c;
	bool hit;
	pid_t pid;

	if (!VMPOOL_FAULT_POINTS)
		cr_skip_test("built with --no-fault-points");
	daemon_start(&d, args);
	cr_assert_eq(wait_for_state(d.name, SLOT_IDLE, 1, BOOT_WAIT_MS), 1);
	cr_assert_eq(tenant_connect(&d, &c), 0);
	cr_assert_eq(tenant_acquire(&c, 0, &hit), 0, "%s", c.err_msg);
	pid = pool_pid_in(d.name, SLOT_LEASED);
	cr_assert_gt(pid, 0);

	/* The worker dies inside pool_release, holding the lock. */
	tenant_release(&c);
	proto_client_free(&c);
	cr_assert(wait_pid_gone(pid, GONE_WAIT_MS));

	cr_assert_eq(tenant_connect(&d, &c), 0);
	cr_expect_eq(tenant_acquire(&c, 0, &hit), 0, "%s", c.err_msg);
	cr_expect_eq(proto_client_ping(&c), 0);
	proto_client_free(&c);
	assert_pool_sound(d.name);

	cr_assert_eq(tenant_connect(&d, &c), 0);
	cr_expect_geq(tenant_stat(&c, "repairs"), 1, "the lock was repaired");
	proto_client_free(&c);
}

/* The daemon's child that is not yet in the slot table: booting. */
static pid_t booting_worker(void)
{
	pid_t kids[64];
	int n = children_of(d.pid, kids, 64);

	for (int i = 0; i < n; i++)
		if (pool_pid_in(d.name, SLOT_IDLE) != kids[i])
			return kids[i];
	return 0;
}

Test(vmpoold, recovers_from_a_worker_killed_while_booting)
{
	const char *args[] = {"--min-size", "0", NULL};
	struct proto_client c;
	struct proto_frame f;
	struct proto_msg m;
	pid_t pid;

	daemon_start(&d, args);
	cr_assert_eq(tenant_connect(&d, &c), 0);
	proto_msg_begin(&m, c.out, PROTO_MAX_FRAME, TENANT_WARM, 0, 1);
	proto_put_u32(&m, 1);
	cr_assert_eq(proto_client_send(&c, c.out, proto_msg_end(&m)), 0);
	cr_assert_eq(proto_client_recv(&c, &f), 0);
	pid = booting_worker();
	cr_assert_gt(pid, 0);
	if (pool_pid_in(d.name, SLOT_IDLE) == pid)
		cr_skip_test("the worker booted before it could be killed");
	kill(pid, SIGKILL);
	proto_client_free(&c);
	cr_assert(wait_pid_gone(pid, GONE_WAIT_MS));

	expect_serving();
	cr_assert_eq(tenant_connect(&d, &c), 0);
	cr_expect_geq(tenant_stat(&c, "boot_failures"), 1);
	proto_client_free(&c);
}

Test(vmpoold, no_worker_survives_a_killed_daemon)
{
	const char *args[] = {"--min-size", "2", NULL};
	pid_t kids[64], grandkids[64];
	int n, ng = 0;

	daemon_start(&d, args);
	cr_assert_eq(wait_for_state(d.name, SLOT_IDLE, 2, BOOT_WAIT_MS), 2);
	n = children_of(d.pid, kids, 64);
	cr_assert_geq(n, 2);
	for (int i = 0; i < n; i++)
		ng += children_of(kids[i], grandkids + ng, 64 - ng);

	kill(d.pid, SIGKILL);
	daemon_wait(&d, GONE_WAIT_MS);
	for (int i = 0; i < n; i++)
		cr_expect(wait_pid_gone(kids[i], GONE_WAIT_MS),
			  "worker %d survived", kids[i]);
	for (int i = 0; i < ng; i++)
		cr_expect(wait_pid_gone(grandkids[i], GONE_WAIT_MS),
			  "sandbox process %d survived", grandkids[i]);
}

Test(vmpoold, sigterm_drains_and_removes_segment_and_socket)
{
	const char *args[] = {"--min-size", "2", NULL};
	char path[64];

	daemon_start(&d, args);
	cr_assert_eq(wait_for_state(d.name, SLOT_IDLE, 2, BOOT_WAIT_MS), 2);

	cr_assert_eq(kill(d.pid, SIGTERM), 0);
	cr_expect_eq(daemon_wait(&d, GONE_WAIT_MS), 0);
	snprintf(path, sizeof(path), "/dev/shm/vmpool.%s", d.name);
	cr_expect(access(path, F_OK) < 0, "segment removed");
	cr_expect(access(d.sock, F_OK) < 0, "socket removed");
}

Test(vmpoold, drain_lets_a_running_lease_finish)
{
	const char *args[] = {"--min-size", "1", "--drain-grace", "60s", NULL};
	struct proto_client a, b;
	bool hit;

	daemon_start(&d, args);
	cr_assert_eq(wait_for_state(d.name, SLOT_IDLE, 1, BOOT_WAIT_MS), 1);
	cr_assert_eq(tenant_connect(&d, &a), 0);
	cr_assert_eq(tenant_acquire(&a, 0, &hit), 0, "%s", a.err_msg);

	cr_assert_eq(kill(d.pid, SIGTERM), 0);
	cr_assert_eq(tenant_connect(&d, &b), 0);
	cr_expect_eq(tenant_acquire(&b, 0, &hit), TENANT_E_DRAINING);
	proto_client_free(&b);

	cr_expect_eq(proto_client_ping(&a), 0, "the lease goes on");
	cr_expect_eq(tenant_release(&a), 0);
	proto_client_free(&a);
	cr_expect_eq(daemon_wait(&d, GONE_WAIT_MS), 0);
}

/* A stand-in worker program that exits or hangs as told. */
static void script_worker(char *path, size_t len, const char *body)
{
	FILE *f;

	snprintf(path, len, "/tmp/svt-worker-%d-%d", (int)getpid(), rand());
	f = fopen(path, "w");
	cr_assert(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	cr_assert_eq(chmod(path, 0755), 0);
}

Test(vmpoold, backs_off_after_failed_boots)
{
	char worker[64];
	const char *args[] = {"--min-size", "1", "--worker", worker, NULL};

	script_worker(worker, sizeof(worker), "exit 75");
	daemon_start(&d, args);
	cr_expect(wait_log(&d, "next boot in 100 ms", BOOT_WAIT_MS));
	cr_expect(wait_log(&d, "next boot in 200 ms", BOOT_WAIT_MS));
	cr_expect(wait_log(&d, "next boot in 400 ms", BOOT_WAIT_MS));
	assert_pool_sound(d.name);
	unlink(worker);
}

Test(vmpoold, stops_booting_after_a_permanent_failure)
{
	char worker[64];
	const char *args[] = {"--min-size", "1", "--worker", worker, NULL};
	struct proto_client c;
	bool hit;

	script_worker(worker, sizeof(worker), "exit 78");
	daemon_start(&d, args);
	cr_assert(wait_log(&d, "stops booting VMs", BOOT_WAIT_MS));

	cr_assert_eq(tenant_connect(&d, &c), 0);
	cr_expect_eq(tenant_acquire(&c, 0, &hit), TENANT_E_NO_CAPACITY);
	cr_expect(strstr(c.err_msg, "stopped booting"), "%s", c.err_msg);
	proto_client_free(&c);
	assert_pool_sound(d.name);
	unlink(worker);
}

Test(vmpoold, miss_without_a_vm_in_time_gives_no_capacity)
{
	char worker[64];
	const char *args[] = {"--min-size",    "0", "--worker", worker,
			      "--drain-grace", "0", NULL};
	struct proto_client c;
	bool hit;

	/* A worker that never becomes ready nor answers CTL_STOP. */
	script_worker(worker, sizeof(worker), "exec sleep 1000");
	daemon_start(&d, args);

	cr_assert_eq(tenant_connect(&d, &c), 0);
	cr_expect_eq(tenant_acquire(&c, 200000000, &hit), TENANT_E_NO_CAPACITY);
	cr_expect(strstr(c.err_msg, "acquire timeout"), "%s", c.err_msg);
	proto_client_free(&c);

	/* Drain stops it anyway: SIGKILL after CTL_STOP went unheeded. */
	cr_assert_eq(kill(d.pid, SIGTERM), 0);
	cr_expect_eq(daemon_wait(&d, GONE_WAIT_MS), 0);
	unlink(worker);
}
