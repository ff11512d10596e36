/* vmpool-chaos: guest faults made from inside a kvm guest, as a tenant can. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "client/vmpool.h"
#include "common/util.h"
#include "tools/chaos.h"

#define MS	   1000000ull
#define ACQUIRE_NS (20000 * MS)
/* The spinner's own pause before it takes the CPU, and some. */
#define SPIN_START_NS (1500 * MS)
#define SPIN_GUEST    "/tmp/chaos-spin"
#define SPIN_HOST     "vmpool-chaos-spin"

/* The agent's end of its console, where a guest process can write too. */
#define AGENT_CONSOLE "/dev/hvc0"

/* A lease the injector holds to break its guest. */
struct guest_lease {
	struct vmpool_lease *l;
	struct chaos_lease rec;
	pid_t worker;
	int pidfd; /* of the worker: taken from before the fault */
};

/* Lease a VM and find the worker that runs it. */
static int lease(struct chaos *c, struct vmpool *pool, struct guest_lease *g)
{
	struct vmpool_lease_info info;
	int err = vmpool_acquire(pool, ACQUIRE_NS, &g->l);

	if (err) {
		chaos_note(c, "no lease to break: %s", vmpool_error(pool));
		return err;
	}
	vmpool_lease_info(g->l, &info);
	g->rec = (struct chaos_lease){.slot = info.slot,
				      .generation = info.generation,
				      .leased_ns = now_ns()};

	g->worker = chaos_worker_pid(c, info.slot);
	g->pidfd = g->worker ? pidfd_open(g->worker, 0) : -1;
	if (g->pidfd >= 0)
		return 0;
	err = g->worker ? -errno : -ESRCH;
	chaos_record_lease(c, &g->rec);
	vmpool_release(g->l);
	return err;
}

/* The lease ends (its VM is gone already, or goes now); its worker is a
 * victim from t_ns, which the pool must replace. */
static void end_as_victim(struct chaos *c, struct guest_lease *g,
			  enum chaos_kind kind, uint64_t t_ns)
{
	chaos_record_lease(c, &g->rec);
	chaos_add_victim(c, kind, g->worker, g->pidfd, g->rec.slot, t_ns);
	vmpool_release(g->l);
}

static void end_unharmed(struct chaos *c, struct guest_lease *g)
{
	chaos_record_lease(c, &g->rec);
	close(g->pidfd);
	vmpool_release(g->l);
}

static int sh(struct guest_lease *g, const char *line, int *code)
{
	const char *argv[] = {line, NULL};
	struct vmpool_exec x = {.argv = argv, .flags = VMPOOL_EXEC_SHELL};
	struct vmpool_result res;
	uint64_t sent = now_ns();
	int r = vmpool_exec(g->l, &x, &res);

	if (r)
		return r;
	g->rec.last_ok_sent_ns = sent;
	*code = vmpool_result_code(&res);
	return 0;
}

/* A guest that broke under its tenant's command must cost the tenant a
 * clear error: evicted for garbage, its VM lost to a panic it names. */
static bool told(struct guest_lease *g, enum chaos_kind k, int r)
{
	uint32_t code = vmpool_lease_error_code(g->l);

	if (r >= 0)
		return false;
	if (k == CK_GUEST_GARBAGE)
		return code == VMPOOL_E_GUEST;
	return code == VMPOOL_E_VM_LOST &&
	       strstr(vmpool_lease_error(g->l), CHAOS_PANIC_MARK);
}

static void tally(struct chaos *c, struct guest_lease *g, enum chaos_kind k,
		  int r)
{
	bool ok = told(g, k, r);

	chaos_note(c, "%s in slot %u: the tenant was told: %s",
		   chaos_kind_name(k), g->rec.slot,
		   r ? vmpool_lease_error(g->l) : "nothing, it succeeded");
	pthread_mutex_lock(&c->mu);
	if (ok)
		c->guest_told++;
	else if (!c->guest_untold++)
		snprintf(c->first_untold, sizeof(c->first_untold),
			 "%s in slot %u: %s", chaos_kind_name(k), g->rec.slot,
			 r ? vmpool_lease_error(g->l)
			   : "the command succeeded");
	pthread_mutex_unlock(&c->mu);
}

/* A command that breaks the guest; the fault is done whatever the
 * tenant hears, which tally judges. */
static int break_guest(struct chaos *c, struct vmpool *pool, enum chaos_kind k,
		       const char *line)
{
	struct guest_lease g;
	uint64_t t;
	int code, r = lease(c, pool, &g);

	if (r)
		return r;
	t = now_ns();
	r = sh(&g, line, &code);
	tally(c, &g, k, r);
	end_as_victim(c, &g, k, t);
	return 0;
}

/* Out of memory with panic_on_oom: a tmpfs larger than the guest's RAM,
 * filled, panics its kernel. */
int chaos_guest_panic(struct chaos *c, struct vmpool *pool)
{
	return break_guest(
	    c, pool, CK_GUEST_PANIC,
	    "echo 1 > /proc/sys/vm/panic_on_oom && "
	    "mkdir -p /tmp/chaos-oom && "
	    "mount -t tmpfs -o size=200% chaos /tmp/chaos-oom && "
	    "cat /dev/zero > /tmp/chaos-oom/fill");
}

/* printf's octal escapes carry any byte; a subshell opens the console,
 * so the command's session does not take it as its terminal. */
static void garbage_line(struct chaos *c, char *line, size_t cap)
{
	uint8_t frame[64];
	long n = chaos_garbage_frame(c, frame, sizeof(frame));
	size_t at = snprintf(line, cap, "(printf '");

	for (long i = 0; i < n && at + 8 < cap; i++)
		at += snprintf(line + at, cap - at, "\\%03o", frame[i]);
	snprintf(line + at, cap - at, "' > %s)", AGENT_CONSOLE);
}

int chaos_guest_garbage(struct chaos *c, struct vmpool *pool)
{
	char line[400];

	garbage_line(c, line, sizeof(line));
	return break_guest(c, pool, CK_GUEST_GARBAGE, line);
}

/* The spinner, started in the background: ms of spinning, 0 for good. */
static int start_spin(struct chaos *c, struct guest_lease *g, uint64_t ms)
{
	char path[PATH_MAX + 32], line[160];
	int fd, code = 0, err;

	snprintf(path, sizeof(path), "%s/%s", c->bindir, SPIN_HOST);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = vmpool_write_fd(g->l, SPIN_GUEST, 0755, 0, fd, NULL);
	close(fd);
	if (err)
		return err;

	if (ms)
		snprintf(line, sizeof(line), "%s %llu >/dev/null 2>&1 &",
			 SPIN_GUEST, (unsigned long long)ms);
	else
		snprintf(line, sizeof(line), "%s >/dev/null 2>&1 &",
			 SPIN_GUEST);
	err = sh(g, line, &code);
	return err ? err : code ? -ENOEXEC : 0;
}

/* Lease, start a spinner that takes the CPU for good, release once it
 * has: the worker's recycle or watchdog must give up on the guest. */
int chaos_guest_hang(struct chaos *c, struct vmpool *pool)
{
	struct guest_lease g;
	int r = lease(c, pool, &g);

	if (r)
		return r;
	r = start_spin(c, &g, 0);
	if (r) {
		end_unharmed(c, &g);
		return r;
	}

	chaos_sleep_ns(SPIN_START_NS);
	chaos_note(c, "guest of slot %u hangs in a spinner, released",
		   g.rec.slot);
	end_as_victim(c, &g, CK_GUEST_HANG, now_ns());
	return 0;
}

/* A spinner that gives the CPU back within the guest timeout: the guest
 * stalls, and must then serve its tenant as before. */
int chaos_guest_stall(struct chaos *c, struct vmpool *pool)
{
	uint64_t ms = 100 + chaos_rand(&c->rng, 1401);
	struct guest_lease g;
	int code = -1, r = lease(c, pool, &g);

	if (r)
		return r;
	r = start_spin(c, &g, ms);
	if (!r) {
		chaos_sleep_ns(SPIN_START_NS - 500 * MS);
		r = sh(&g, "echo after the stall", &code);
	}
	chaos_note(c, "guest of slot %u stalled %llu ms: %s", g.rec.slot,
		   (unsigned long long)ms,
		   r ? vmpool_lease_error(g.l) : "then answered");
	end_unharmed(c, &g);
	return r;
}
