/* vmpool-chaos against a private kvm pool, its guests broken from inside:
 * a short seeded run must pass every check. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "kvm/host.h"
#include "tests/chaos_helpers.h"

#define FAULTS 20 /* as given with -n */

static void need_kvm(void)
{
	char kernel[PATH_MAX];
	struct kvm_host h;

	kvm_probe(&h);
	if (h.kind != KVM_HOST_HARDWARE)
		cr_skip_test("needs hardware KVM; this host has %s", h.desc);
	chaos_bin_path("../guest/vmlinux", kernel, sizeof(kernel));
	if (access(kernel, R_OK))
		cr_skip_test("no guest kernel at %s", kernel);
}

TestSuite(chaos_kvm, .init = need_kvm, .timeout = 600);

static int64_t sum(json_object *doc, const char *group,
		   const char *const keys[], size_t n)
{
	int64_t total = 0;

	for (size_t i = 0; i < n; i++)
		total += MAX(chaos_count(doc, group, keys[i]), 0);
	return total;
}

Test(chaos_kvm, guests_that_panic_hang_stall_or_garble_lose_no_lease)
{
	/* Few slots: in a nested test host boots are slow, and many at
	 * once slower still. */
	const char *args[] = {"--backend", "kvm", "-n",		 "20",
			      "--seed",	   "2",	  "--max-total", "6",
			      "--json",	   NULL};
	const char *const must[] = {
	    "requests_answered",  "bad_tenants_answered",
	    "broken_guests_told", "leases_distinct",
	    "no_slot_held_twice", "pool_settled",
	    "final_invariants",	  "faulty_workers_replaced",
	    "daemon_drained",	  "segment_removed",
	    "no_process_left",	  "guest_panics_logged",
	};
	const char *const kinds[] = {
	    "kill",	     "stop-cont",      "stop-kill",	"fault-point",
	    "guest-stall",   "guest-hang",     "guest-garbage", "guest-panic",
	    "tenant-vanish", "tenant-garbage",
	};
	const char *const guest[] = {"guest-stall", "guest-hang",
				     "guest-garbage", "guest-panic"};
	struct chaos_run r;
	json_object *doc, *v;

	chaos_run(args, &r);
	doc = json_tokener_parse(r.out);
	if (!doc || r.status)
		cr_log_info("vmpool-chaos stderr:\n%s", r.err);
	cr_assert(doc, "the report is not JSON:\n%s", r.out);

	chaos_assert_checks(doc, must, ARRAY_SIZE(must));
	cr_expect_eq(sum(doc, "faults", kinds, ARRAY_SIZE(kinds)), FAULTS);
	cr_expect_gt(sum(doc, "faults", guest, ARRAY_SIZE(guest)), 0,
		     "no guest was broken");
	cr_expect_gt(chaos_count(doc, "requests", "ok"), 0);
	cr_expect(json_object_object_get_ex(doc, "leases", &v) &&
		      json_object_get_int64(v) > 0,
		  "no lease was made");

	json_object_object_get_ex(doc, "passed", &v);
	cr_expect(
	    json_object_get_boolean(v), "verdict: %s",
	    json_object_get_string(json_object_object_get(doc, "verdict")));
	cr_expect_eq(r.status, 0, "vmpool-chaos exited %d", r.status);
	json_object_put(doc);
	chaos_run_free(&r);
}
