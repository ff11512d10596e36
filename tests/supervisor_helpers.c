/* Helpers for the vmpoold suites: run a real daemon, talk to it raw. */
#include "tests/supervisor_helpers.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/tenant.h"
#include "shm/pool.h"
#include "shm/shm.h"

#define POLL_MS 10

static char bindir[PATH_MAX];

const char *daemon_backend = "--backend=ns";

static const char *bin_dir(void)
{
	char exe[PATH_MAX - 16];
	ssize_t n;
	char *slash;

	if (bindir[0])
		return bindir;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	cr_assert(n > 0, "readlink /proc/self/exe");
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	*slash = '\0';
	/* <builddir>/tests/x -> <builddir>/bin */
	snprintf(bindir, sizeof(bindir), "%s/../bin", exe);
	return bindir;
}

const char *test_vmpoold_path(void)
{
	static char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/vmpoold", bin_dir());
	return path;
}

bool test_have_worker(void)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/vmpool-worker", bin_dir());
	return access(path, X_OK) == 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static pid_t spawn(const char *const *args, const char *out_path)
{
	pid_t pid = fork();

	cr_assert(pid >= 0, "fork");
	if (pid == 0) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		/* A test that times out must not leave its daemon behind. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
			_exit(127);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execv(test_vmpoold_path(), (char *const *)args);
		_exit(127);
	}
	return pid;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);
	size_t n;

	cr_assert(buf);
	if (!f)
		return buf;
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

int test_vmpoold_run(const char *const *args, char **out)
{
	char path[] = "/tmp/vmpoold-out-XXXXXX";
	const char *argv[64] = {test_vmpoold_path()};
	int fd = mkstemp(path), status, i;
	pid_t pid;

	cr_assert(fd >= 0, "mkstemp");
	close(fd);
	for (i = 0; args[i] && i < 62; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;

	pid = spawn(argv, path);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	*out = slurp(path);
	unlink(path);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int wait_socket(const struct daemon *d, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += POLL_MS) {
		int status;

		if (access(d->sock, F_OK) == 0)
			return 0;
		if (waitpid(d->pid, &status, WNOHANG) == d->pid)
			return -ECHILD;
		sleep_ms(POLL_MS);
	}
	return -ETIMEDOUT;
}

void daemon_start(struct daemon *d, const char *const *args)
{
	static int seq;
	const char *argv[64];
	int n = 0, rc;

	if (!test_have_worker())
		cr_skip_test("vmpool-worker is not built");

	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "svt%d_%d", (int)getpid(), seq++);
	snprintf(d->dir, sizeof(d->dir), "/tmp/%s.XXXXXX", d->name);
	cr_assert(mkdtemp(d->dir), "mkdtemp");
	snprintf(d->sock, sizeof(d->sock), "%s/s.sock", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/log", d->dir);

	argv[n++] = test_vmpoold_path();
	argv[n++] = daemon_backend;
	argv[n++] = "--name";
	argv[n++] = d->name;
	argv[n++] = "--socket";
	argv[n++] = d->sock;
	argv[n++] = "-v";
	for (int i = 0; args && args[i] && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;

	d->pid = spawn(argv, d->log);
	rc = wait_socket(d, 10000);
	if (rc) {
		daemon_show_log(d);
		cr_assert_fail("vmpoold did not start: %s", strerror(-rc));
	}
}

void daemon_show_log(const struct daemon *d)
{
	char *log = slurp(d->log);

	cr_log_error("vmpoold log:\n%s", log);
	free(log);
}

int daemon_wait(struct daemon *d, int timeout_ms)
{
	int status;

	for (int t = 0; t <= timeout_ms; t += POLL_MS) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status)
						 : 128 + WTERMSIG(status);
		}
		sleep_ms(POLL_MS);
	}
	return -1;
}

void daemon_stop(struct daemon *d)
{
	char path[160];

	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = 0;
	}
	shm_unlink_name(d->name);
	unlink(d->sock);
	/* VMPOOL_TEST_KEEP_LOGS=1 keeps the daemon's log to read. */
	if (getenv("VMPOOL_TEST_KEEP_LOGS")) {
		cr_log_info("vmpoold log: %s", d->log);
		return;
	}
	snprintf(path, sizeof(path), "%s", d->log);
	unlink(path);
	rmdir(d->dir);
}

bool daemon_log_has(const struct daemon *d, const char *text)
{
	char *log = slurp(d->log);
	bool found = strstr(log, text) != NULL;

	free(log);
	return found;
}

bool wait_log(const struct daemon *d, const char *text, int timeout_ms)
{
	for (int t = 0; t <= timeout_ms; t += POLL_MS) {
		if (daemon_log_has(d, text))
			return true;
		sleep_ms(POLL_MS);
	}
	return false;
}

int pool_view_take(const char *name, struct pool_view *v)
{
	struct shm *shm;
	int rc = shm_attach(name, SHM_RO, &shm);

	memset(v, 0, sizeof(*v));
	if (rc)
		return rc;
	v->buf = malloc(shm_size(shm));
	rc = v->buf ? shm_snapshot(shm, v->buf, shm_size(shm)) : -ENOMEM;
	shm_detach(shm);
	if (rc) {
		free(v->buf);
		v->buf = NULL;
		return rc;
	}

	v->seg = v->buf;
	for (uint32_t i = 0; i < v->seg->hdr.nslots; i++)
		v->count[shm_slots(v->seg)[i].state % SLOT_NSTATES]++;
	return 0;
}

void pool_view_free(struct pool_view *v)
{
	free(v->buf);
	v->buf = NULL;
}

int wait_for_state(const char *name, enum slot_state state, uint32_t n,
		   int timeout_ms)
{
	int have = 0;

	for (int t = 0; t <= timeout_ms; t += POLL_MS) {
		struct pool_view v;

		if (pool_view_take(name, &v) == 0) {
			have = v.count[state];
			pool_view_free(&v);
			if ((uint32_t)have >= n)
				return have;
		}
		sleep_ms(POLL_MS);
	}
	return have;
}

pid_t pool_pid_in(const char *name, enum slot_state state)
{
	struct pool_view v;
	pid_t pid = 0;

	if (pool_view_take(name, &v))
		return 0;
	for (uint32_t i = 0; i < v.seg->hdr.nslots && !pid; i++)
		if (shm_slots(v.seg)[i].state == state)
			pid = shm_slots(v.seg)[i].pid;
	pool_view_free(&v);
	return pid;
}

void assert_pool_sound(const char *name)
{
	struct pool_view v;
	char why[256] = "";
	int rc = pool_view_take(name, &v);

	cr_assert_eq(rc, 0, "snapshot of pool %s: %s", name, strerror(-rc));
	rc = pool_check_invariants(v.seg, why, sizeof(why));
	pool_view_free(&v);
	cr_assert_eq(rc, 0, "pool invariant broken: %s", why);
}

bool pid_gone(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;
	char *paren;
	bool zombie = false;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	if (fgets(buf, sizeof(buf), f)) {
		paren = strrchr(buf, ')');
		zombie = paren && paren[1] == ' ' && paren[2] == 'Z';
	}
	fclose(f);
	return zombie;
}

bool wait_pid_gone(pid_t pid, int timeout_ms)
{
	for (int t = 0; t <= timeout_ms; t += POLL_MS) {
		if (pid_gone(pid))
			return true;
		sleep_ms(POLL_MS);
	}
	return false;
}

int children_of(pid_t pid, pid_t *out, int max)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return 0;
	while ((e = readdir(dir)) && n < max) {
		char cpath[600];
		FILE *f;
		int child;

		if (e->d_name[0] == '.')
			continue;
		snprintf(cpath, sizeof(cpath), "%s/%s/children", path,
			 e->d_name);
		f = fopen(cpath, "r");
		if (!f)
			continue;
		while (n < max && fscanf(f, "%d", &child) == 1)
			out[n++] = child;
		fclose(f);
	}
	closedir(dir);
	return n;
}

int tenant_connect(const struct daemon *d, struct proto_client *c)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0, "socket");
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", d->sock);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	cr_assert_eq(proto_client_init(c, fd), 0);
	return 0;
}

/* The final answer to request id: ERROR's code (> 0) or 0 (*type). */
static int answer(struct proto_client *c, uint32_t id, struct proto_frame *f)
{
	for (;;) {
		int rc = proto_client_recv(c, f);
		const char *msg;
		uint32_t code;

		if (rc)
			return rc;
		if (f->id != id)
			continue;
		if (f->type != PROTO_ERROR)
			return 0;
		cr_assert_eq(proto_parse_error(f, &code, &msg), 0);
		snprintf(c->err_msg, sizeof(c->err_msg), "%s", msg);
		c->err_code = code;
		return (int)code;
	}
}

int tenant_acquire(struct proto_client *c, uint64_t timeout_ns, bool *hit)
{
	uint32_t id = proto_client_new_id(c);
	struct proto_frame f;
	struct proto_msg m;
	struct proto_cur cur;
	int rc;

	proto_msg_begin(&m, c->out, PROTO_MAX_FRAME, TENANT_ACQUIRE, 0, id);
	proto_put_u64(&m, timeout_ns);
	rc = proto_client_send(c, c->out, proto_msg_end(&m));
	if (rc)
		return rc;

	rc = answer(c, id, &f);
	if (rc)
		return rc;
	cr_assert_eq(f.type, TENANT_LEASED, "ACQUIRE answered %s",
		     proto_type_name(f.type));
	proto_cur_init(&cur, &f);
	proto_get_u32(&cur); /* slot */
	proto_get_u32(&cur); /* generation */
	*hit = proto_get_u8(&cur);
	return 0;
}

int tenant_release(struct proto_client *c)
{
	uint32_t reply;
	struct proto_frame f;
	int rc = tenant_request(c, TENANT_RELEASE, &reply);

	if (rc)
		return rc;
	/* After OK the worker closes the connection. */
	return proto_client_recv(c, &f) == -EPIPE ? 0 : -EPROTO;
}

static int request(struct proto_client *c, uint16_t type, struct proto_frame *f)
{
	uint32_t id = proto_client_new_id(c);
	long n = proto_build_empty(c->out, PROTO_MAX_FRAME, type, id);
	int rc = proto_client_send(c, c->out, n);

	return rc ? rc : answer(c, id, f);
}

int tenant_request(struct proto_client *c, uint16_t type, uint32_t *reply)
{
	struct proto_frame f = {0};
	int rc = request(c, type, &f);

	*reply = f.type;
	return rc;
}

int64_t tenant_stat(struct proto_client *c, const char *name)
{
	struct proto_frame f;
	struct proto_cur cur;
	uint32_t count;

	if (request(c, TENANT_STATS, &f) || f.type != TENANT_STATS_REPLY)
		return -1;
	proto_cur_init(&cur, &f);
	count = proto_get_u32(&cur);
	for (uint32_t i = 0; i < count && !cur.bad; i++) {
		const char *key = proto_get_str(&cur, 64);
		uint64_t v = proto_get_u64(&cur);

		if (key && !strcmp(key, name))
			return (int64_t)v;
	}
	return -1;
}
