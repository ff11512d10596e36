/* Tests for the shared helpers: number, size and duration parsing, JSON. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

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
