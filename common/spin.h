/* When busy-waiting for the next event pays, learned from the last ones. */
#ifndef VMPOOL_SPIN_H
#define VMPOOL_SPIN_H

#include <stdbool.h>

/*
 * A loop spins for the next event only while recent spins found one:
 * each spin that found work earns credit, each that found none costs
 * twice that, and at no credit the loop sleeps at once. After
 * SPIN_REST_WAITS such sleeps it tries one spin again, so a burst of
 * work is noticed without a steady trickle of wasted spins.
 */
#define SPIN_CREDIT_MAX 8
#define SPIN_REST_WAITS 64

struct spin_budget {
	int credit;
	unsigned rested;
};

void spin_budget_init(struct spin_budget *b);
/* Whether to spin before this wait. */
bool spin_budget_allows(struct spin_budget *b);
/* What the spin allowed last found: an event, or nothing in time. */
void spin_budget_result(struct spin_budget *b, bool found);

#endif
