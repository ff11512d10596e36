/* vmpool-chaos: tenants doing honest work while the pool is broken. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/vmpool.h"
#include "common/util.h"
#include "tools/chaos.h"

#define ACQUIRE_TIMEOUT_NS (20ull * 1000000000)
#define MARK_PATH	   "/tmp/chaos.mark"
#define NO_VM_PAUSE_NS	   (50ull * 1000000)

struct load_thread {
	struct chaos *c;
	int index;
	pthread_t tid;
	struct vmpool *pool;
	uint64_t busy_since; /* atomic; 0 when between requests */
	const char *doing;   /* atomic; the pending request's name */
	bool flagged;	     /* the pending request was counted hung */
	uint64_t nleases;
	bool joined;
};

struct chaos_load {
	struct load_thread t[CHAOS_MAX_THREADS];
	int n;
	volatile bool stop;
};

/* The lease being worked on by one thread. */
struct job {
	struct load_thread *t;
	struct vmpool_lease *l;
	struct chaos_lease rec;
	char marker[96];
	bool lost;
};

static enum chaos_result classify(uint32_t code, int r)
{
	switch (code) {
	case VMPOOL_E_VM_LOST:
		return CR_VM_LOST;
	case VMPOOL_E_NO_CAPACITY:
		return CR_NO_CAPACITY;
	case VMPOOL_E_GUEST:
		return CR_GUEST;
	case 0:
		return r == -ECONNRESET ? CR_VM_LOST : CR_LOCAL;
	}
	return CR_POOL_OTHER;
}

static void count(struct load_thread *t, enum chaos_result res,
		  const char *what, const char *msg)
{
	struct chaos *c = t->c;

	pthread_mutex_lock(&c->mu);
	c->requests[res]++;
	if (res == CR_WRONG && !c->first_wrong[0])
		snprintf(c->first_wrong, sizeof(c->first_wrong), "%s: %s", what,
			 msg);
	pthread_mutex_unlock(&c->mu);
	if (res != CR_OK)
		chaos_note(c, "tenant %d: %s: %s: %s", t->index, what,
			   chaos_result_name(res), msg);
}

/* A request named `what` is pending; NULL: none is. */
static void busy(struct load_thread *t, const char *what)
{
	bool on = what != NULL;

	if (on)
		__atomic_store_n(&t->doing, what, __ATOMIC_RELAXED);
	__atomic_store_n(&t->busy_since, on ? now_ns() : 0, __ATOMIC_RELEASE);
	if (!on)
		__atomic_store_n(&t->flagged, false, __ATOMIC_RELEASE);
}

/* Count how a lease request ended; false when the lease is over. */
static bool step_done(struct job *j, const char *what, int r, uint64_t sent,
		      bool right, const char *wrong)
{
	busy(j->t, NULL);
	if (r < 0) {
		count(j->t, classify(vmpool_lease_error_code(j->l), r), what,
		      vmpool_lease_error(j->l));
		j->lost = true;
		return false;
	}
	if (!right) {
		count(j->t, CR_WRONG, what, wrong);
		return false;
	}
	j->rec.last_ok_sent_ns = sent;
	count(j->t, CR_OK, what, "");
	return true;
}

/* A file left by an earlier lease means the VM was not cleaned, or two
 * tenants share it. */
static bool check_clean(struct job *j)
{
	uint64_t sent = now_ns();
	int r;

	busy(j->t, "exists");
	r = vmpool_exists(j->l, MARK_PATH);
	return step_done(j, "exists", r, sent, r == 0,
			 "a file of an earlier tenant is in the VM");
}

static bool write_mark(struct job *j)
{
	uint64_t sent = now_ns();
	int r;

	busy(j->t, "write");
	r = vmpool_write_buf(j->l, MARK_PATH, 0, 0, j->marker,
			     strlen(j->marker));
	return step_done(j, "write", r, sent, true, "");
}

static bool read_mark(struct job *j)
{
	uint64_t sent = now_ns();
	size_t len = 0;
	void *data = NULL;
	bool same;
	int r;

	busy(j->t, "read");
	r = vmpool_read_buf(j->l, MARK_PATH, &data, &len);
	same =
	    r == 0 && len == strlen(j->marker) && !memcmp(data, j->marker, len);
	vmpool_free(data);
	return step_done(j, "read", r, sent, same,
			 "the file read back is not the one written");
}

struct out {
	char text[256];
	size_t len;
};

static void collect(void *arg, int stream, const void *data, size_t len)
{
	struct out *o = arg;

	len = MIN(len, sizeof(o->text) - 1 - o->len);
	memcpy(o->text + o->len, data, len);
	o->len += len;
	o->text[o->len] = '\0';
}

static bool exec_echo(struct job *j)
{
	char line[160], want[200];
	const char *argv[] = {line, NULL};
	struct out o = {.len = 0};
	struct vmpool_exec x = {.argv = argv,
				.flags = VMPOOL_EXEC_SHELL,
				.output = collect,
				.output_arg = &o};
	struct vmpool_result res;
	uint64_t sent = now_ns();
	int r;

	snprintf(line, sizeof(line), "echo '%s'; cat %s", j->marker, MARK_PATH);
	snprintf(want, sizeof(want), "%s\n%s", j->marker, j->marker);
	busy(j->t, "exec");
	r = vmpool_exec(j->l, &x, &res);
	return step_done(
	    j, "exec", r, sent,
	    r || (vmpool_result_code(&res) == 0 && !strcmp(o.text, want)),
	    "exec output is not the marker");
}

void chaos_record_lease(struct chaos *c, const struct chaos_lease *rec)
{
	pthread_mutex_lock(&c->mu);
	if (c->nleases == c->leases_cap) {
		size_t cap = c->leases_cap ? 2 * c->leases_cap : 256;
		struct chaos_lease *p = realloc(c->leases, cap * sizeof(*p));

		if (!p)
			goto out_unlock;
		c->leases = p;
		c->leases_cap = cap;
	}
	c->leases[c->nleases++] = *rec;
out_unlock:
	pthread_mutex_unlock(&c->mu);
}

static void end_lease(struct job *j)
{
	int r;

	chaos_record_lease(j->t->c, &j->rec);
	if (j->lost) {
		vmpool_release(j->l);
		return;
	}
	busy(j->t, "release");
	r = vmpool_release(j->l);
	busy(j->t, NULL);
	if (r < 0)
		count(j->t, classify(0, r), "release", strerror(-r));
	else
		count(j->t, CR_OK, "release", "");
}

static void one_lease(struct load_thread *t)
{
	struct vmpool_lease_info info;
	struct job j = {.t = t};
	int r;

	busy(t, "acquire");
	r = vmpool_acquire(t->pool, ACQUIRE_TIMEOUT_NS, &j.l);
	busy(t, NULL);
	if (r < 0) {
		count(t, classify(vmpool_error_code(t->pool), r), "acquire",
		      vmpool_error(t->pool));
		/* A full pool answers at once: no need to ask it hot. */
		chaos_sleep_ns(NO_VM_PAUSE_NS);
		return;
	}
	vmpool_lease_info(j.l, &info);
	j.rec = (struct chaos_lease){.slot = info.slot,
				     .generation = info.generation,
				     .leased_ns = now_ns()};
	count(t, CR_OK, "acquire", "");
	snprintf(j.marker, sizeof(j.marker), "chaos-%d-%llu-%u-%u", t->index,
		 (unsigned long long)t->nleases++, info.slot, info.generation);

	if (check_clean(&j) && write_mark(&j) && read_mark(&j))
		exec_echo(&j);
	end_lease(&j);
}

static void *load_main(void *arg)
{
	struct load_thread *t = arg;

	while (!t->c->load->stop)
		one_lease(t);
	return NULL;
}

int chaos_load_start(struct chaos *c)
{
	struct chaos_load *ld = calloc(1, sizeof(*ld));
	int err;

	if (!ld)
		return -ENOMEM;
	c->load = ld;
	for (ld->n = 0; ld->n < (int)c->o.threads; ld->n++) {
		struct load_thread *t = &ld->t[ld->n];

		*t = (struct load_thread){.c = c, .index = ld->n};
		err = vmpool_connect(c->sock, &t->pool);
		if (err) {
			vmpool_close(t->pool);
			return err;
		}
		err = -pthread_create(&t->tid, NULL, load_main, t);
		if (err) {
			vmpool_close(t->pool);
			return err;
		}
	}
	return 0;
}

static bool join_by(pthread_t tid, uint64_t deadline)
{
	struct timespec ts;

	if (!deadline)
		return pthread_join(tid, NULL) == 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (deadline - now_ns()) / 1000000000 + 1;
	return pthread_timedjoin_np(tid, NULL, &ts) == 0;
}

int chaos_load_stop(struct chaos *c, uint64_t timeout_ns)
{
	struct chaos_load *ld = c->load;
	uint64_t deadline = timeout_ns ? now_ns() + timeout_ns : 0;
	int left = 0;

	if (!ld)
		return 0;
	ld->stop = true;
	for (int i = 0; i < ld->n; i++) {
		struct load_thread *t = &ld->t[i];

		if (!t->joined && join_by(t->tid, deadline)) {
			t->joined = true;
			vmpool_close(t->pool);
		}
		left += !t->joined;
	}
	if (left)
		return left;
	free(ld);
	c->load = NULL;
	return 0;
}

void chaos_load_watch(struct chaos *c, uint64_t now)
{
	struct chaos_load *ld = c->load;

	if (!ld)
		return;
	for (int i = 0; i < ld->n; i++) {
		struct load_thread *t = &ld->t[i];
		uint64_t since =
		    __atomic_load_n(&t->busy_since, __ATOMIC_ACQUIRE);

		if (!since || now < since + c->o.hang_ns ||
		    __atomic_exchange_n(&t->flagged, true, __ATOMIC_ACQ_REL))
			continue;
		pthread_mutex_lock(&c->mu);
		c->hung++;
		if (!c->first_hung[0])
			snprintf(c->first_hung, sizeof(c->first_hung),
				 "tenant %d's %s, %.1f s into the run", i,
				 __atomic_load_n(&t->doing, __ATOMIC_RELAXED),
				 (since - c->t_start) / 1e9);
		pthread_mutex_unlock(&c->mu);
		chaos_note(c, "tenant %d: a request has waited %llu s", i,
			   (unsigned long long)(c->o.hang_ns / 1000000000));
	}
}
