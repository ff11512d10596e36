/* Tests for the shared helpers: number, size and duration parsing, JSON. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/spin.h"
#include "common/util.h"

Test(util, parse_u64_accepts_whole_numbers_in_range)
{
	uint64_t v;

	cr_assert_eq(parse_u64("42", 1, 100, &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(parse_u64("0", 1, 100, &v), -ERANGE);
	cr_assert_eq(parse_u64("4x", 0, 100, &v), -EINVAL);
	cr_assert_eq(parse_u64("", 0, 100, &v), -EINVAL);
	cr_assert_eq(parse_u64("-1", 0, 100, &v), -EINVAL);
}

Test(util, parse_duration_knows_units)
{
	uint64_t v;

	cr_assert_eq(parse_duration_ns("30", &v), 0);
	cr_assert_eq(v, 30000000000ull);
	cr_assert_eq(parse_duration_ns("250ms", &v), 0);
	cr_assert_eq(v, 250000000ull);
	cr_assert_eq(parse_duration_ns("2h", &v), 0);
	cr_assert_eq(v, 7200000000000ull);
	cr_assert_eq(parse_duration_ns("3 days", &v), -EINVAL);
	cr_assert_eq(parse_duration_ns("99999999999999999h", &v), -ERANGE);
}

Test(util, parse_size_knows_binary_suffixes)
{
	uint64_t v;

	cr_assert_eq(parse_size("128M", &v), 0);
	cr_assert_eq(v, 128ull << 20);
	cr_assert_eq(parse_size("2GiB", &v), 0);
	cr_assert_eq(v, 2ull << 30);
	cr_assert_eq(parse_size("7", &v), 0);
	cr_assert_eq(v, 7);
	cr_assert_eq(parse_size("7Q", &v), -EINVAL);
}

Test(util, json_put_str_escapes_quotes_backslashes_and_controls)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	cr_assert_not_null(f);
	json_put_str(f, "a\"b\\c\n\001d");
	cr_assert_eq(fclose(f), 0);
	cr_assert_str_eq(out, "\"a\\\"b\\\\c\\u000a\\u0001d\"");
	free(out);
}

Test(spin, budget_spins_while_spins_find_work)
{
	struct spin_budget b;

	spin_budget_init(&b);
	for (int i = 0; i < 100; i++) {
		cr_assert(spin_budget_allows(&b), "spin %d refused", i);
		spin_budget_result(&b, true);
	}
}

Test(spin, budget_rests_after_empty_spins_and_probes_again)
{
	struct spin_budget b;
	int allowed = 0;

	spin_budget_init(&b);
	while (spin_budget_allows(&b)) {
		spin_budget_result(&b, false);
		cr_assert_lt(++allowed, SPIN_CREDIT_MAX, "never rests");
	}
	for (int i = 1; i < SPIN_REST_WAITS - 1; i++)
		cr_assert(!spin_budget_allows(&b), "wait %d spun", i);
	cr_assert(spin_budget_allows(&b), "no probe after a rest");
	spin_budget_result(&b, true);
	cr_assert(spin_budget_allows(&b), "a probe that paid is not kept");
}
