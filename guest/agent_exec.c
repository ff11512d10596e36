/* Commands run by the agent: start, stream output, stdin, timeouts, reap. */
#include "guest/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

extern char **environ;

static const char base_path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
static const char base_home[] = "HOME=/root";

struct exec_args {
	uint32_t flags;
	uint64_t timeout_ns;
	const char *cwd;
	char **argv;
	char **env;
};

static void free_args(struct exec_args *e)
{
	free(e->argv);
	free(e->env);
}

/* argv from the request, behind "/bin/sh -c" when a shell was asked for. */
static int parse_argv(struct proto_cur *c, struct exec_args *e)
{
	uint32_t argc = proto_get_u32(c);
	size_t at = 0;

	if (!argc || argc > PROTO_MAX_ARGS)
		return -EINVAL;
	e->argv = calloc(argc + 3, sizeof(char *));
	if (!e->argv)
		return -ENOMEM;

	if (e->flags & PROTO_EXEC_SHELL) {
		e->argv[at++] = "/bin/sh";
		e->argv[at++] = "-c";
	}
	for (uint32_t i = 0; i < argc; i++)
		e->argv[at++] = (char *)proto_get_str(c, PROTO_MAX_PAYLOAD);
	return c->bad || !*e->argv[0] ? -EINVAL : 0;
}

/* The clean base environment, then the request's "NAME=value" entries;
 * a request's PATH or HOME replaces the base one. */
static int parse_env(struct proto_cur *c, struct exec_args *e)
{
	uint32_t envc = proto_get_u32(c);
	size_t at = 2;

	if (envc > PROTO_MAX_ARGS)
		return -EINVAL;
	e->env = calloc(envc + 3, sizeof(char *));
	if (!e->env)
		return -ENOMEM;

	e->env[0] = (char *)base_path;
	e->env[1] = (char *)base_home;
	for (uint32_t i = 0; i < envc; i++) {
		char *s = (char *)proto_get_str(c, PROTO_MAX_PAYLOAD);
		char *eq = s ? strchr(s, '=') : NULL;

		if (!eq || eq == s)
			return -EINVAL;
		if (!strncmp(s, "PATH=", 5))
			e->env[0] = s;
		else if (!strncmp(s, "HOME=", 5))
			e->env[1] = s;
		else
			e->env[at++] = s;
	}
	return 0;
}

static int parse_exec(const struct proto_frame *f, struct exec_args *e)
{
	struct proto_cur c;
	int err;

	memset(e, 0, sizeof(*e));
	proto_cur_init(&c, f);
	e->flags = proto_get_u32(&c);
	e->timeout_ns = proto_get_u64(&c);
	e->cwd = proto_get_str(&c, PROTO_MAX_PATH);
	if (c.bad || (e->flags & ~(PROTO_EXEC_STDIN | PROTO_EXEC_SHELL)))
		return -EINVAL;

	err = parse_argv(&c, e);
	if (!err)
		err = parse_env(&c, e);
	if (!err && proto_cur_done(&c))
		err = -EINVAL;
	return err;
}

/* The pipes and fds a command is started with; -1 when not open. */
struct exec_fds {
	int in[2], out[2], err[2];
	int cwd;
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void close_fds(struct exec_fds *p)
{
	for (int i = 0; i < 2; i++) {
		close_fd(&p->in[i]);
		close_fd(&p->out[i]);
		close_fd(&p->err[i]);
	}
	close_fd(&p->cwd);
}

static int open_fds(struct agent *a, const struct exec_args *e,
		    struct exec_fds *p, const char **what)
{
	memset(p, -1, sizeof(*p));
	*what = *e->cwd ? e->cwd : a->workdir;
	p->cwd = agent_open(a, e->cwd, O_PATH | O_DIRECTORY, 0);
	if (p->cwd < 0)
		return p->cwd;

	*what = "pipe";
	if (e->flags & PROTO_EXEC_STDIN) {
		if (pipe2(p->in, O_CLOEXEC) < 0)
			return -errno;
	} else if ((p->in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		return -errno;
	}
	if (pipe2(p->out, O_CLOEXEC) < 0 || pipe2(p->err, O_CLOEXEC) < 0)
		return -errno;
	return 0;
}

/* Set by a vforked child whose exec failed; the parent reads it once
 * the child has exited, since the two share memory until the exec. */
static volatile int child_errno;

static void __attribute__((noreturn))
run_child(const struct exec_args *e, const struct exec_fds *p)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	setpgid(0, 0);

	if (dup2(p->in[0], 0) >= 0 && dup2(p->out[1], 1) >= 0 &&
	    dup2(p->err[1], 2) >= 0 && fchdir(p->cwd) >= 0) {
		environ = e->env;
		execvp(e->argv[0], e->argv);
	}
	child_errno = errno ? errno : EIO;
	_exit(127);
}

/*
 * vfork: the parent sleeps until the child has exec'd or exited, so an
 * exec failure is known before the request is answered, and no page of
 * the agent is copied (a page fault costs dearly in a nested guest).
 */
static pid_t start_child(const struct exec_args *e, const struct exec_fds *p,
			 int *err)
{
	char **env = environ;
	pid_t pid;

	child_errno = 0;
	pid = vfork();
	if (pid == 0)
		run_child(e, p);

	environ = env;
	*err = pid < 0 ? -errno : -child_errno;
	if (pid > 0 && *err)
		waitpid(pid, NULL, 0);
	return pid;
}

static void remember_group(struct agent *a, pid_t pgid)
{
	size_t kept = 0;

	/* When full, forget the groups that have no member left. */
	if (a->ngroups == ARRAY_SIZE(a->groups)) {
		for (size_t i = 0; i < a->ngroups; i++)
			if (kill(-a->groups[i], 0) == 0)
				a->groups[kept++] = a->groups[i];
		a->ngroups = kept;
	}
	if (a->ngroups < ARRAY_SIZE(a->groups))
		a->groups[a->ngroups++] = pgid;
}

/* Move an fd out of the set that is closed on the way out. */
static int take_fd(int *fd)
{
	int taken = *fd;

	*fd = -1;
	return taken;
}

static void set_nonblock(int fd)
{
	if (fd >= 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Fork and exec; on success the request owns the parent's pipe ends. */
static int spawn(struct agent *a, struct agent_req *r,
		 const struct exec_args *e, const char **what)
{
	struct exec_fds p;
	pid_t pid;
	int err = open_fds(a, e, &p, what);

	if (err)
		goto out_close;

	*what = e->argv[0];
	pid = start_child(e, &p, &err);
	if (err)
		goto out_close;

	r->x.pid = pid;
	r->x.out_fd = take_fd(&p.out[0]);
	r->x.err_fd = take_fd(&p.err[0]);
	r->x.in_fd = (e->flags & PROTO_EXEC_STDIN) ? take_fd(&p.in[1]) : -1;
	set_nonblock(r->x.out_fd);
	set_nonblock(r->x.err_fd);
	set_nonblock(r->x.in_fd);
	remember_group(a, pid);
out_close:
	close_fds(&p);
	return err;
}

void agent_exec_start(struct agent *a, const struct proto_frame *f)
{
	struct exec_args e;
	struct agent_req *r;
	const char *what = "fork";
	int err = parse_exec(f, &e);

	if (err) {
		free_args(&e);
		return agent_reply_error(a, f->id, PROTO_E_BAD_PAYLOAD,
					 "EXEC: malformed request");
	}
	r = agent_req_new(a, f->id, REQ_EXEC);
	if (!r) {
		free_args(&e);
		return agent_reply_error(a, f->id, PROTO_E_BUSY,
					 "EXEC: too many requests in flight");
	}

	r->x.start_ns = now_ns();
	err = spawn(a, r, &e, &what);
	if (err) {
		agent_req_free(r);
		agent_reply_errno(a, f->id, err, what);
		free_args(&e);
		return;
	}

	r->x.want_stdin = e.flags & PROTO_EXEC_STDIN;
	if (e.timeout_ns)
		r->x.deadline_ns =
		    r->x.start_ns + MIN(e.timeout_ns, 1ull << 62);
	free_args(&e);
	agent_arm_timer(a);
}

static void send_exit(struct agent *a, struct agent_req *r)
{
	int st = r->x.status;
	struct proto_msg m;
	uint8_t kind = PROTO_EXITED;
	int32_t value = WIFEXITED(st) ? WEXITSTATUS(st) : 0;

	if (r->x.timed_out)
		kind = PROTO_TIMED_OUT;
	else if (WIFSIGNALED(st))
		kind = PROTO_SIGNALED;
	if (WIFSIGNALED(st))
		value = WTERMSIG(st);

	agent_msg_begin(a, &m, PROTO_EXIT, r->id, 16);
	proto_put_u8(&m, kind);
	proto_put_u32(&m, value);
	proto_put_u64(&m, now_ns() - r->x.start_ns);
	agent_msg_send(a, &m);
}

/* Read one chunk of a command's output into a frame: bytes read, 0 at
 * EOF (the pipe is then closed), or -errno (-EAGAIN: nothing yet). */
static ssize_t read_output(struct agent *a, struct agent_req *r, int *fd,
			   uint16_t type)
{
	struct proto_msg m;
	size_t room;
	uint8_t *dst;
	ssize_t n;

	agent_msg_begin(a, &m, type, r->id, PROTO_CHUNK);
	dst = proto_msg_tail(&m, &room);
	if (!room)
		return -ENOMEM;
	do
		n = read(*fd, dst, room);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0) {
		close_fd(fd);
		return 0;
	}
	proto_msg_add(&m, n);
	agent_msg_send(a, &m);
	return n;
}

static void finish(struct agent *a, struct agent_req *r)
{
	if (!r->x.reaped || r->x.out_fd >= 0 || r->x.err_fd >= 0)
		return;
	send_exit(a, r);
	close_fd(&r->x.in_fd);
	free(r->x.in_buf);
	agent_req_free(r);
}

void agent_exec_output(struct agent *a, struct agent_req *r, int stream)
{
	int *fd = stream == 1 ? &r->x.out_fd : &r->x.err_fd;
	ssize_t n;

	if (*fd < 0)
		return;
	n = read_output(a, r, fd, stream == 1 ? PROTO_STDOUT : PROTO_STDERR);
	if (n < 0 && n != -EAGAIN)
		close_fd(fd);
	finish(a, r);
}

/*
 * What the command wrote before it exited is in its pipes; take that,
 * then stop listening, since a background process may hold the pipes
 * open for as long as it likes. The bound keeps a chatty one from
 * stalling the loop.
 */
static void drain_and_close(struct agent *a, struct agent_req *r, int *fd,
			    uint16_t type)
{
	for (int i = 0; i < 64 && *fd >= 0; i++)
		if (read_output(a, r, fd, type) <= 0)
			break;
	close_fd(fd);
}

static void on_exit_status(struct agent *a, struct agent_req *r, int st)
{
	r->x.status = st;
	r->x.reaped = true;
	drain_and_close(a, r, &r->x.out_fd, PROTO_STDOUT);
	drain_and_close(a, r, &r->x.err_fd, PROTO_STDERR);
	finish(a, r);
}

static struct agent_req *find_pid(struct agent *a, pid_t pid)
{
	for (size_t i = 0; i < ARRAY_SIZE(a->reqs); i++)
		if (a->reqs[i].kind == REQ_EXEC && a->reqs[i].x.pid == pid &&
		    !a->reqs[i].x.reaped)
			return &a->reqs[i];
	return NULL;
}

bool agent_reap(struct agent *a)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		struct agent_req *r;

		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return pid == 0;
		r = find_pid(a, pid);
		if (r)
			on_exit_status(a, r, st);
	}
}

static bool running(const struct agent_req *r)
{
	return r->kind == REQ_EXEC && !r->x.reaped;
}

void agent_arm_timer(struct agent *a)
{
	struct itimerspec its = {0};
	uint64_t next = 0;

	for (size_t i = 0; i < ARRAY_SIZE(a->reqs); i++) {
		const struct agent_req *r = &a->reqs[i];

		if (running(r) && r->x.deadline_ns && !r->x.timed_out &&
		    (!next || r->x.deadline_ns < next))
			next = r->x.deadline_ns;
	}
	its.it_value.tv_sec = next / 1000000000ull;
	its.it_value.tv_nsec = next % 1000000000ull;
	timerfd_settime(a->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

void agent_check_timeouts(struct agent *a)
{
	uint64_t now = now_ns();

	for (size_t i = 0; i < ARRAY_SIZE(a->reqs); i++) {
		struct agent_req *r = &a->reqs[i];

		if (!running(r) || !r->x.deadline_ns || r->x.timed_out ||
		    r->x.deadline_ns > now)
			continue;
		/* The whole group, so that its children die with it. */
		kill(-r->x.pid, SIGKILL);
		r->x.timed_out = true;
	}
	agent_arm_timer(a);
}

void agent_exec_feed(struct agent *a, struct agent_req *r)
{
	struct agent_exec *x = &r->x;

	while (x->in_fd >= 0 && x->in_off < x->in_len) {
		ssize_t n = write(x->in_fd, x->in_buf + x->in_off,
				  x->in_len - x->in_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			/* The command closed its stdin: drop the rest. */
			close_fd(&x->in_fd);
			break;
		}
		x->in_off += n;
	}
	x->in_off = x->in_len = 0;
	if (x->stdin_eof)
		close_fd(&x->in_fd);
}

/* Append data to the command's stdin queue. */
static int queue_stdin(struct agent_exec *x, const void *p, size_t n)
{
	uint8_t *buf;

	if (x->in_off) {
		memmove(x->in_buf, x->in_buf + x->in_off,
			x->in_len - x->in_off);
		x->in_len -= x->in_off;
		x->in_off = 0;
	}
	buf = realloc(x->in_buf, x->in_len + n);
	if (!buf && x->in_len + n)
		return -ENOMEM;
	x->in_buf = buf;
	memcpy(x->in_buf + x->in_len, p, n);
	x->in_len += n;
	return 0;
}

static struct agent_req *open_exec(struct agent *a, const struct proto_frame *f)
{
	struct agent_req *r = agent_req_find(a, f->id);
	const char *name = proto_type_name(f->type);

	if (!r)
		agent_reply_error(a, f->id, PROTO_E_UNKNOWN_ID,
				  "%s: no request %u is open", name, f->id);
	else if (r->kind != REQ_EXEC)
		agent_reply_error(a, f->id, PROTO_E_WRONG_ORDER,
				  "%s: request %u is not a command", name,
				  f->id);
	else
		return r;
	return NULL;
}

void agent_exec_stdin(struct agent *a, const struct proto_frame *f)
{
	struct agent_req *r = open_exec(a, f);

	if (!r)
		return;
	if (!r->x.want_stdin || r->x.stdin_eof)
		return agent_reply_error(
		    a, f->id, PROTO_E_WRONG_ORDER, "STDIN: stdin of %u is %s",
		    f->id, r->x.stdin_eof ? "closed" : "not open");
	if (f->flags & ~PROTO_F_EOF)
		return agent_reply_error(a, f->id, PROTO_E_INVALID,
					 "STDIN: unknown flags %#x", f->flags);

	if (r->x.in_fd >= 0 && queue_stdin(&r->x, f->payload, f->len) < 0)
		close_fd(&r->x.in_fd);
	r->x.stdin_eof = f->flags & PROTO_F_EOF;
	agent_exec_feed(a, r);
}

void agent_exec_kill(struct agent *a, const struct proto_frame *f)
{
	struct agent_req *r = open_exec(a, f);
	struct proto_cur c;
	uint32_t sig;

	if (!r)
		return;
	proto_cur_init(&c, f);
	sig = proto_get_u32(&c);
	if (proto_cur_done(&c) || sig < 1 || sig > 64)
		return agent_reply_error(a, f->id, PROTO_E_INVALID,
					 "KILL: bad signal");
	if (!r->x.reaped)
		kill(-r->x.pid, sig);
}

uint32_t agent_kill_all(struct agent *a)
{
	uint32_t n = 0;

	for (size_t i = 0; i < a->ngroups; i++)
		if (kill(-a->groups[i], SIGKILL) == 0)
			n++;
	a->ngroups = 0;

	/* As PID 1 everything else is the tenant's. */
	if (a->pid1)
		kill(-1, SIGKILL);
	return n;
}

void agent_wait_children(struct agent *a, uint64_t timeout_ns)
{
	uint64_t end = now_ns() + timeout_ns;

	while (agent_reap(a) && now_ns() < end) {
		struct timespec ts = {0, 1000000};

		nanosleep(&ts, NULL);
	}
}
