/* vmpool-chaos as a soak test: a short seeded run must pass every check. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <string.h>

#include "common/util.h"
#include "tests/chaos_helpers.h"

Test(chaos, short_seeded_run_loses_and_doubles_no_lease, .timeout = 300)
{
	const char *args[] = {"-n", "40", "--seed", "1", "--json", NULL};
	const char *const must[] = {
	    "requests_answered",
	    "bad_tenants_answered",
	    "leases_distinct",
	    "no_slot_held_twice",
	    "pool_settled",
	    "final_invariants",
	    "faulty_workers_replaced",
	    "daemon_drained",
	    "segment_removed",
	    "no_process_left",
	};
	const char *kinds[] = {
	    "kill",	     "stop-cont",     "stop-kill",
	    "fault-point",   "guest-stall",   "guest-hang",
	    "guest-garbage", "tenant-vanish", "tenant-garbage",
	};
	struct chaos_run r;
	json_object *doc, *v;
	int64_t faults = 0;

	chaos_run(args, &r);
	doc = json_tokener_parse(r.out);
	if (!doc || r.status)
		cr_log_info("vmpool-chaos stderr:\n%s", r.err);
	cr_assert(doc, "the report is not JSON:\n%s", r.out);

	chaos_assert_checks(doc, must, ARRAY_SIZE(must));
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		faults += MAX(chaos_count(doc, "faults", kinds[i]), 0);
	cr_expect_eq(faults, 40, "faults injected: %lld", (long long)faults);
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

Test(chaos, unknown_fault_kind_is_refused)
{
	const char *args[] = {"--kinds", "kill,meteor", NULL};
	struct chaos_run r;

	chaos_run(args, &r);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "--kinds"), "stderr: %s", r.err);
	cr_expect_eq(r.out[0], '\0', "nothing on stdout: %s", r.out);
	chaos_run_free(&r);
}
