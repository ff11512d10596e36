/* Fault points: arm by name, then die at the chosen pass. */
#include "shm/fault.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

#define MAX_ARMED 8

#define STEP_NAMES(step)                                                       \
#step ".journaled", #step ".left", #step ".moved", #step ".counted",
#define LOCK_NAME(name) name,

const char *const fault_point_names[] = {
    FAULT_STEPS(STEP_NAMES) FAULT_LOCK_POINTS(LOCK_NAME) NULL,
};

struct armed_point {
	const char *name; /* from fault_point_names, or "*" */
	unsigned left;	  /* passes to go; 0 = slot unused */
	enum fault_action action;
};

int fault_armed;
static struct armed_point armed[MAX_ARMED];

static const char *known_name(const char *name)
{
	if (strcmp(name, "*") == 0)
		return "*";
	for (const char *const *p = fault_point_names; *p; p++) {
		if (strcmp(*p, name) == 0)
			return *p;
	}
	return NULL;
}

int fault_arm(const char *name, unsigned nth, enum fault_action action)
{
	const char *known = name ? known_name(name) : NULL;

	if (!VMPOOL_FAULT_POINTS)
		return -EOPNOTSUPP;
	if (!known || nth == 0 || action > FAULT_EXIT)
		return -EINVAL;

	for (unsigned i = 0; i < MAX_ARMED; i++) {
		if (armed[i].left)
			continue;
		armed[i] = (struct armed_point){known, nth, action};
		fault_armed = 1;
		return 0;
	}
	return -ENOSPC;
}

void fault_disarm_all(void)
{
	memset(armed, 0, sizeof(armed));
	fault_armed = 0;
}

static int split_spec(char *copy, char **fields, int max)
{
	int n = 0;
	char *save = NULL;

	for (char *f = strtok_r(copy, ":", &save); f;
	     f = strtok_r(NULL, ":", &save)) {
		if (n == max)
			return -EINVAL;
		fields[n++] = f;
	}
	return n;
}

static int parse_action(const char *s, enum fault_action *out)
{
	if (strcmp(s, "kill") == 0)
		*out = FAULT_KILL;
	else if (strcmp(s, "exit") == 0)
		*out = FAULT_EXIT;
	else
		return -EINVAL;
	return 0;
}

int fault_arm_spec(const char *spec)
{
	char copy[128];
	char *f[3];
	uint64_t nth = 1;
	enum fault_action action = FAULT_KILL;
	int n;

	if (strlen(spec) >= sizeof(copy))
		return -EINVAL;
	strcpy(copy, spec);
	n = split_spec(copy, f, 3);
	if (n < 1)
		return -EINVAL;

	if (n >= 2 && parse_u64(f[1], 1, UINT32_MAX, &nth) < 0)
		return -EINVAL;
	if (n == 3 && parse_action(f[2], &action) < 0)
		return -EINVAL;

	return fault_arm(f[0], (unsigned)nth, action);
}

int fault_arm_from_env(void)
{
	const char *spec = getenv("VMPOOL_FAULT");

	return spec && *spec ? fault_arm_spec(spec) : 0;
}

static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static int env_result;

static void arm_env(void)
{
	env_result = fault_arm_from_env();
}

int fault_arm_from_env_once(void)
{
	pthread_once(&env_once, arm_env);
	return env_result;
}

static void act(enum fault_action action)
{
	if (action == FAULT_EXIT)
		_exit(FAULT_EXIT_CODE);
	kill(getpid(), SIGKILL);
	_exit(FAULT_EXIT_CODE); /* not reached: SIGKILL cannot be caught */
}

void fault_pass(const char *name)
{
	for (unsigned i = 0; i < MAX_ARMED; i++) {
		struct armed_point *a = &armed[i];

		if (!a->left || (a->name[0] != '*' && strcmp(a->name, name)))
			continue;
		if (--a->left == 0)
			act(a->action);
	}
}
