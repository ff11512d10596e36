/* Running vmpool-chaos from a test and reading its JSON report. */
#ifndef VMPOOL_TESTS_CHAOS_HELPERS_H
#define VMPOOL_TESTS_CHAOS_HELPERS_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

struct chaos_run {
	int status; /* exit code, or 128 + signal */
	char *out;  /* stdout */
	char *err;  /* stderr */
};

/* <builddir>/bin/NAME, beside the test's <builddir>/tests. */
void chaos_bin_path(const char *name, char *buf, size_t len);

/* Run vmpool-chaos with args (NULL-terminated, at most 30); skips the
 * test when it is not built. */
void chaos_run(const char *const *args, struct chaos_run *r);
void chaos_run_free(struct chaos_run *r);

/* doc.group.key as a number, or -1. */
int64_t chaos_count(json_object *doc, const char *group, const char *key);

/* Every check of the report passed (a failed one is named), and each of
 * the n names in must is among them. */
void chaos_assert_checks(json_object *doc, const char *const must[], size_t n);

#endif
