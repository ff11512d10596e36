/* End to end on real KVM: our VMM boots our kernel with the agent as
 * /init, through the worker's kvm backend, and serves every kind of
 * request over the virtio console; a guest that panics or hangs ends in
 * a named error and leaves the process fit to boot the next one. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "kvm/virtio_console.h"
#include "tests/kvm_agent_guest.h"

#define SEC 1000000000ull
/* Far beyond anything the test host needs: only a broken VMM waits. */
#define BOOT_LIMIT   (180 * SEC)
#define END_LIMIT    (60 * SEC)
#define ANSWER_LIMIT (20 * SEC)
#define FILE_SIZE    (16u << 20)
#define EXEC_ROUNDS  50

static struct kvm_agent_paths paths;

/* Skips unless this host runs our guest and the build has its parts. */
static void need_guest(void)
{
	char why[PATH_MAX + 64];

	if (!kvm_agent_host_ok(why, sizeof(why)))
		cr_skip_test("needs hardware KVM (kvm_intel or kvm_amd): %s",
			     why);
	if (kvm_agent_find(&paths, why, sizeof(why)))
		cr_skip_test("not built: %s", why);
	/* A guest that died mid-request is a failure to report with its
	 * console, not a SIGPIPE that ends the test as a crash. */
	signal(SIGPIPE, SIG_IGN);
}

static const char *console(struct vm *vm)
{
	static char log[UART_LOG_SIZE + 1];

	log[vm_uart_log(vm, log, UART_LOG_SIZE)] = '\0';
	return log;
}

static struct kvm_agent_guest *boot(void)
{
	struct kvm_agent_guest *g = calloc(1, sizeof(*g));
	int err;

	cr_assert_not_null(g);
	/* VMPOOL_KVM_CONSOLE=1 shows the guest's boot log on stderr. */
	err = kvm_agent_guest_boot(g, &paths, BOOT_LIMIT,
				   getenv("VMPOOL_KVM_CONSOLE") ? 2 : -1);
	cr_assert_eq(err, 0, "boot to HELLO: %s: %s; %s", g->why,
		     strerror(-err), kvm_agent_guest_state(g));
	return g;
}

/* Why a request failed: the error, the agent's message, the guest. */
static const char *failure(struct kvm_agent_guest *g, int err)
{
	static char text[1024];

	snprintf(text, sizeof(text), "%s (agent: '%s'); %s", strerror(-err),
		 g->client.err_msg, kvm_agent_guest_state(g));
	return text;
}

static void release(struct kvm_agent_guest *g)
{
	kvm_agent_guest_free(g);
	free(g);
}

/* What a command printed, per stream. */
struct output {
	char text[3][4096];
	size_t len[3];
	unsigned chunks[3];
};

static void collect(void *arg, int stream, const void *p, size_t n)
{
	struct output *o = arg;
	size_t room;

	if (stream < 1 || stream > 2)
		return;
	room = sizeof(o->text[stream]) - 1 - o->len[stream];
	n = MIN(n, room);
	memcpy(o->text[stream] + o->len[stream], p, n);
	o->len[stream] += n;
	o->text[stream][o->len[stream]] = '\0';
	o->chunks[stream]++;
}

/* Run a shell line; the exit status comes back, output into o. */
static int sh(struct kvm_agent_guest *g, const char *line,
	      const char *const *env, const char *cwd, uint64_t timeout_ns,
	      struct output *o, struct proto_exit *ex)
{
	const char *argv[] = {line, NULL};
	struct proto_exec_req req = {
	    .argv = argv,
	    .env = env,
	    .cwd = cwd,
	    .timeout_ns = timeout_ns,
	    .flags = PROTO_EXEC_SHELL,
	};

	memset(o, 0, sizeof(*o));
	return proto_client_exec(&g->client, &req, collect, o, ex);
}

static void step_exec_output_and_status(struct kvm_agent_guest *g)
{
	struct proto_exit ex;
	struct output o;
	int err;

	err = sh(g, "echo out; echo err >&2; exit 3", NULL, NULL, 0, &o, &ex);
	cr_assert_eq(err, 0, "exec: %s", failure(g, err));
	cr_assert_str_eq(o.text[1], "out\n", "stdout: '%s'", o.text[1]);
	cr_assert_str_eq(o.text[2], "err\n", "stderr: '%s'", o.text[2]);
	cr_assert(ex.kind == PROTO_EXITED && ex.value == 3,
		  "exit status: kind %u value %d, not exited with 3", ex.kind,
		  ex.value);

	err = sh(g, "kill -9 $$", NULL, NULL, 0, &o, &ex);
	cr_assert_eq(err, 0, "exec kill: %s", failure(g, err));
	cr_assert(ex.kind == PROTO_SIGNALED && ex.value == SIGKILL,
		  "a killed command: kind %u value %d, not signal 9", ex.kind,
		  ex.value);
}

static void step_exec_env_and_cwd(struct kvm_agent_guest *g)
{
	const char *env[] = {"GREETING=hello from the host", NULL};
	struct proto_exit ex;
	struct output o;
	int err;

	err = sh(g, "echo \"$GREETING\"; pwd", env, "/tmp", 0, &o, &ex);
	cr_assert_eq(err, 0, "exec with env and cwd: %s", failure(g, err));
	cr_assert_str_eq(o.text[1], "hello from the host\n/tmp\n",
			 "env and cwd not applied: '%s'", o.text[1]);
	cr_assert(ex.kind == PROTO_EXITED && ex.value == 0);

	err = sh(g, "true", NULL, "/no/such/dir", 0, &o, &ex);
	cr_assert_lt(err, 0, "a missing cwd was accepted");
	cr_assert_neq(g->client.err_msg[0], '\0', "error without a message");
}

static void step_timeout_keeps_the_vm(struct kvm_agent_guest *g)
{
	struct proto_exit ex;
	struct output o;
	int err;

	err = sh(g, "echo started; sleep 30", NULL, NULL, SEC / 2, &o, &ex);
	cr_assert_eq(err, 0, "exec with timeout: %s", failure(g, err));
	cr_assert_eq(ex.kind, PROTO_TIMED_OUT,
		     "a 30 s sleep under a 0.5 s "
		     "timeout ended as kind %u value %d",
		     ex.kind, ex.value);
	cr_assert_str_eq(o.text[1], "started\n");

	err = proto_client_ping(&g->client);
	cr_assert_eq(err, 0, "no PONG after a command timed out: %s",
		     failure(g, err));
}

/* The next frame of request `id`. */
static void next_frame(struct kvm_agent_guest *g, uint32_t id,
		       struct proto_frame *f)
{
	int err;

	do {
		err = proto_client_recv(&g->client, f);
		cr_assert_eq(err, 0, "while streaming: %s", failure(g, err));
	} while (f->id != id);
}

static void send_frame(struct kvm_agent_guest *g, const void *p, long n)
{
	cr_assert_gt(n, 0, "frame did not build: %s", strerror((int)-n));
	cr_assert_eq(proto_client_send(&g->client, p, n), 0);
}

/* The first line must arrive while the command still waits for input
 * that the host sends only after seeing it: output is live. */
static void step_live_streaming(struct kvm_agent_guest *g)
{
	const char *argv[] = {"echo first; read x; echo second $x", NULL};
	struct proto_exec_req req = {
	    .argv = argv, .flags = PROTO_EXEC_SHELL | PROTO_EXEC_STDIN};
	uint32_t id = proto_client_new_id(&g->client);
	static uint8_t buf[4096];
	struct proto_frame f;
	struct proto_exit ex;

	send_frame(g, buf, proto_build_exec(buf, sizeof(buf), id, &req));
	next_frame(g, id, &f);
	cr_assert_eq(f.type, PROTO_STDOUT,
		     "first reply was type %#x, not "
		     "STDOUT: output is not streamed live",
		     f.type);
	cr_assert(f.len == 6 && !memcmp(f.payload, "first\n", 6));

	send_frame(g, buf,
		   proto_build_data(buf, sizeof(buf), PROTO_STDIN, PROTO_F_EOF,
				    id, "now\n", 4));
	next_frame(g, id, &f);
	cr_assert_eq(f.type, PROTO_STDOUT, "type %#x after stdin", f.type);
	cr_assert(f.len == 11 && !memcmp(f.payload, "second now\n", 11),
		  "second line: '%.*s'", (int)f.len, f.payload);
	next_frame(g, id, &f);
	cr_assert_eq(f.type, PROTO_EXIT);
	cr_assert_eq(proto_parse_exit(&f, &ex), 0);
	cr_assert(ex.kind == PROTO_EXITED && ex.value == 0);
}

/* A stream of FILE_SIZE bytes no shorter period could reproduce, hashed
 * (FNV-1a) on the way out and on the way back. */
struct stream {
	uint64_t off, hash, seed;
};

static uint8_t pattern_byte(uint64_t off, uint64_t seed)
{
	uint64_t z = (off / 8 + seed) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (uint8_t)((z ^ (z >> 31)) >> (off % 8 * 8));
}

static void hash_bytes(struct stream *s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s->hash = (s->hash ^ p[i]) * 0x100000001b3ull;
	s->off += n;
}

static ssize_t pattern_source(void *arg, void *buf, size_t n)
{
	struct stream *s = arg;
	uint8_t *p = buf;

	n = MIN(n, FILE_SIZE - s->off);
	for (size_t i = 0; i < n; i++)
		p[i] = pattern_byte(s->off + i, s->seed);
	hash_bytes(s, p, n);
	return n;
}

static int hash_sink(void *arg, const void *p, size_t n)
{
	hash_bytes(arg, p, n);
	return 0;
}

static void step_file_round_trip(struct kvm_agent_guest *g)
{
	struct stream out = {.hash = 0xcbf29ce484222325ull, .seed = now_ns()};
	struct stream in = {.hash = 0xcbf29ce484222325ull};
	uint64_t written = 0, nread = 0;
	struct proto_stat st;
	int err;

	err = proto_client_write(&g->client, "/tmp/blob", 0600, 0,
				 pattern_source, &out, &written);
	cr_assert_eq(err, 0, "write 16 MiB: %s", failure(g, err));
	cr_assert_eq(written, FILE_SIZE);

	cr_assert_eq(proto_client_stat(&g->client, "/tmp/blob", &st), 0);
	cr_assert_eq(st.size, FILE_SIZE, "the guest holds %llu bytes",
		     (unsigned long long)st.size);

	err = proto_client_read(&g->client, "/tmp/blob", 0, 0, hash_sink, &in,
				&nread);
	cr_assert_eq(err, 0, "read back after %llu bytes: %s",
		     (unsigned long long)in.off, failure(g, err));
	cr_assert_eq(nread, FILE_SIZE);
	cr_assert_eq(in.hash, out.hash, "the file came back changed");
	cr_assert_eq(proto_client_remove(&g->client, "/tmp/blob", 0), 0);
}

static void step_many_execs(struct kvm_agent_guest *g)
{
	const char *argv[] = {"/bin/true", NULL};
	struct proto_exec_req req = {.argv = argv};
	struct vm_exit_counts a, b;
	struct proto_exit ex;

	vm_exit_counts(kvm_agent_guest_vm(g), &a);
	for (int i = 0; i < EXEC_ROUNDS; i++) {
		int err = proto_client_exec(&g->client, &req, NULL, NULL, &ex);

		cr_assert_eq(err, 0, "exec %d of %d: %s", i + 1, EXEC_ROUNDS,
			     failure(g, err));
		cr_assert(ex.kind == PROTO_EXITED && ex.value == 0,
			  "exec %d: kind %u value %d", i + 1, ex.kind,
			  ex.value);
	}
	vm_exit_counts(kvm_agent_guest_vm(g), &b);
	cr_log_info("%d execs of /bin/true: %.1f exits to the VMM each",
		    EXEC_ROUNDS, (double)(b.total - a.total) / EXEC_ROUNDS);
}

static void step_shutdown_ends_cleanly(struct kvm_agent_guest *g)
{
	struct vm *vm = kvm_agent_guest_vm(g);
	enum vm_end end;
	int err;

	cr_assert_eq(proto_client_shutdown(&g->client), 0,
		     "SHUTDOWN was not acknowledged");
	err = kvm_agent_guest_wait_end(g, END_LIMIT, &end);
	cr_assert_eq(err, 0, "no end after the agent powered off; console:\n%s",
		     console(vm));
	cr_assert_eq(end, VM_END_SHUTDOWN, "ended as %s: %s", vm_end_name(end),
		     vm_error(vm));
	cr_assert(!backend_alive(&g->be), "death_fd not readable at the end");
}

/* In order, on one VM: the test host makes each boot cost seconds. */
static const struct {
	const char *name;
	void (*run)(struct kvm_agent_guest *g);
} steps[] = {
    {"exec output and status", step_exec_output_and_status},
    {"exec env and cwd", step_exec_env_and_cwd},
    {"timeout keeps the VM", step_timeout_keeps_the_vm},
    {"live streaming", step_live_streaming},
    {"16 MiB file round trip", step_file_round_trip},
    {"50 execs", step_many_execs},
    {"shutdown ends cleanly", step_shutdown_ends_cleanly},
};

Test(kvm_agent, boots_and_serves_every_request_over_the_console,
     .timeout = 300)
{
	struct kvm_agent_guest *g;
	int err;

	need_guest();
	g = boot();
	cr_assert(g->client.agent_caps & PROTO_CAP_EXEC);
	cr_log_info("boot to HELLO %.1f ms", (g->hello_ns - g->start_ns) / 1e6);

	err = proto_client_ping(&g->client);
	cr_assert_eq(err, 0, "no PONG: %s", failure(g, err));
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		uint64_t t = now_ns();

		steps[i].run(g);
		cr_log_info("%s: %.0f ms", steps[i].name, (now_ns() - t) / 1e6);
	}
	release(g);
}

static ssize_t file_source(void *arg, void *buf, size_t n)
{
	size_t got = fread(buf, 1, n, arg);

	return got || !ferror(arg) ? (ssize_t)got : -EIO;
}

static void upload_spin(struct kvm_agent_guest *g)
{
	FILE *f = fopen(paths.spin, "rb");
	uint64_t n;
	int err;

	cr_assert_not_null(f, "%s: %s", paths.spin, strerror(errno));
	err = proto_client_write(&g->client, "/tmp/spin", 0755, 0, file_source,
				 f, &n);
	fclose(f);
	cr_assert_eq(err, 0, "upload the spin helper: %s", failure(g, err));
}

/* The spinner starts a second after its shell returns; from then on no
 * PONG comes, the watchdog stops the VM and the blocked ping fails. */
static void hang_is_stopped(struct kvm_agent_guest *g)
{
	struct vm *vm = kvm_agent_guest_vm(g);
	struct proto_exit ex;
	struct output o;
	enum vm_end end;
	int err, i;

	upload_spin(g);
	err = sh(g, "/tmp/spin &", NULL, NULL, 0, &o, &ex);
	cr_assert_eq(err, 0, "start the spinner: %s", failure(g, err));

	for (i = 0; i < 60; i++) {
		kvm_agent_guest_arm(g, ANSWER_LIMIT);
		err = proto_client_ping(&g->client);
		kvm_agent_guest_disarm(g);
		if (err)
			break;
		usleep(500 * 1000);
	}
	cr_assert_eq(err, -EPIPE, "ping %d: %s, not a broken channel", i,
		     failure(g, err));
	cr_assert(kvm_agent_guest_fired(g),
		  "the channel broke before the watchdog fired: %s",
		  vm_error(vm));
	cr_assert_eq(kvm_agent_guest_wait_end(g, END_LIMIT, &end), 0);
	cr_assert_eq(end, VM_END_STOPPED, "a hung guest ended as %s: %s",
		     vm_end_name(end), vm_error(vm));
}

/* Out of memory with panic_on_oom: a real kernel panic under the agent,
 * in the middle of a request. */
static void panic_is_named(struct kvm_agent_guest *g)
{
	struct vm *vm = kvm_agent_guest_vm(g);
	struct proto_exit ex;
	struct output o;
	enum vm_end end;
	int err;

	err = sh(g,
		 "echo 1 > /proc/sys/vm/panic_on_oom && mkdir -p /tmp/m && "
		 "mount -t tmpfs -o size=1g m /tmp/m && cat /dev/zero > "
		 "/tmp/m/fill",
		 NULL, NULL, 0, &o, &ex);
	cr_assert_eq(err, -EPIPE,
		     "exec in a panicking guest: %s (exit kind %u value %d, "
		     "stderr '%s')",
		     strerror(-err), ex.kind, ex.value, o.text[2]);
	cr_assert_eq(kvm_agent_guest_wait_end(g, END_LIMIT, &end), 0);
	cr_assert_eq(end, VM_END_PANIC, "ended as %s: %s\nconsole:\n%s",
		     vm_end_name(end), vm_error(vm), console(vm));
	cr_assert(strstr(vm_error(vm), "panic_on_oom"), "why: %s",
		  vm_error(vm));
	cr_assert(!backend_alive(&g->be));
}

Test(kvm_agent, hung_or_panicked_guest_ends_named_and_the_next_boots,
     .timeout = 300)
{
	struct kvm_agent_guest *g;

	need_guest();
	g = boot();
	hang_is_stopped(g);
	release(g);

	g = boot();
	panic_is_named(g);
	release(g);

	g = boot();
	cr_assert_eq(proto_client_ping(&g->client), 0,
		     "a VM booted after a hang and a panic does not answer");
	release(g);
}
