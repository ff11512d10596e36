/* When busy-waiting for the next event pays, learned from the last ones. */
#include "common/spin.h"

#include "common/util.h"

void spin_budget_init(struct spin_budget *b)
{
	b->credit = SPIN_CREDIT_MAX / 2;
	b->rested = 0;
}

bool spin_budget_allows(struct spin_budget *b)
{
	if (b->credit > 0)
		return true;
	if (++b->rested < SPIN_REST_WAITS)
		return false;
	b->rested = 0;
	b->credit = 1;
	return true;
}

void spin_budget_result(struct spin_budget *b, bool found)
{
	if (found)
		b->credit = MIN(b->credit + 1, SPIN_CREDIT_MAX);
	else
		b->credit = MAX(b->credit - 2, 0);
}
