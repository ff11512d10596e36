/* Tests for the guest agent: every request, run as a native child. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/agent_harness.h"

static struct agent_child t;

static void start(void)
{
	agent_child_start(&t, NULL);
}

static void stop(void)
{
	agent_child_stop(&t);
}

TestSuite(agent, .init = start, .fini = stop, .timeout = 60);

static int run(const char *const *argv, uint32_t flags, struct agent_output *o,
	       struct proto_exit *res)
{
	struct proto_exec_req req = {.argv = argv, .flags = flags};

	memset(o, 0, sizeof(*o));
	return proto_client_exec(&t.c, &req, agent_collect, o, res);
}

static int sh(const char *line, struct agent_output *o, struct proto_exit *res)
{
	const char *argv[] = {line, NULL};

	return run(argv, PROTO_EXEC_SHELL, o, res);
}

/* A file under the sandbox root, as the host sees it. */
static void host_path(char *out, size_t size, const char *rel)
{
	snprintf(out, size, "%s/%s", t.root, rel);
}

Test(agent, hello_names_version_and_capabilities)
{
	cr_assert_eq(t.c.agent_version, PROTO_VERSION);
	cr_assert(t.c.agent_caps & PROTO_CAP_EXEC);
	cr_assert(t.c.agent_caps & PROTO_CAP_FILES);
}

Test(agent, ping_answers_pong)
{
	for (int i = 0; i < 100; i++)
		cr_assert_eq(proto_client_ping(&t.c), 0);
}

Test(agent, exec_reports_exit_code_and_both_streams)
{
	struct agent_output o;
	struct proto_exit res;

	cr_assert_eq(sh("echo out; echo err >&2; exit 3", &o, &res), 0);
	cr_assert_eq(res.kind, PROTO_EXITED);
	cr_assert_eq(res.value, 3);
	cr_assert_str_eq(o.out, "out\n");
	cr_assert_str_eq(o.err, "err\n");
	cr_assert_gt(res.duration_ns, 0);
}

Test(agent, exec_runs_argv_directly_without_a_shell)
{
	const char *argv[] = {"echo", "$HOME", "a b", NULL};
	struct agent_output o;
	struct proto_exit res;

	cr_assert_eq(run(argv, 0, &o, &res), 0);
	cr_assert_str_eq(o.out, "$HOME a b\n");
}

Test(agent, exec_reports_death_by_signal)
{
	struct agent_output o;
	struct proto_exit res;

	cr_assert_eq(sh("kill -TERM $$", &o, &res), 0);
	cr_assert_eq(res.kind, PROTO_SIGNALED);
	cr_assert_eq(res.value, SIGTERM);
}

Test(agent, exec_streams_output_before_the_command_ends)
{
	static const char *const argv[] = {"echo a; read x; echo b $x", NULL};
	struct proto_exec_req req = {.argv = argv, .flags = PROTO_EXEC_SHELL};
	uint8_t frame[256];
	struct proto_frame f;
	struct proto_msg m;
	uint32_t id;

	/* Build EXEC by hand so that stdin stays open while we listen. */
	id = proto_client_new_id(&t.c);
	proto_msg_begin(&m, frame, sizeof(frame), PROTO_EXEC, 0, id);
	proto_put_u32(&m, req.flags | PROTO_EXEC_STDIN);
	proto_put_u64(&m, 0);
	proto_put_str(&m, "");
	proto_put_u32(&m, 1);
	proto_put_str(&m, argv[0]);
	proto_put_u32(&m, 0);
	cr_assert_eq(proto_client_send(&t.c, frame, proto_msg_end(&m)), 0);

	/* The command cannot finish before we answer its read. */
	agent_recv_id(&t, id, &f);
	cr_assert_eq(f.type, PROTO_STDOUT);
	cr_assert_eq(f.len, 2);
	cr_assert_eq(memcmp(f.payload, "a\n", 2), 0);

	cr_assert_eq(proto_client_send(&t.c, frame,
				       agent_frame(frame, PROTO_STDIN,
						   PROTO_F_EOF, id, "z\n", 2)),
		     0);
	agent_recv_id(&t, id, &f);
	cr_assert_eq(f.type, PROTO_STDOUT);
	cr_assert_eq(memcmp(f.payload, "b z\n", 4), 0);
	agent_recv_id(&t, id, &f);
	cr_assert_eq(f.type, PROTO_EXIT);
}

Test(agent, timeout_kills_the_process_group_and_agent_stays_usable)
{
	static const char *const argv[] = {"sleep 1000 & echo $!; wait", NULL};
	struct proto_exec_req req = {
	    .argv = argv, .flags = PROTO_EXEC_SHELL, .timeout_ns = 300000000};
	struct agent_output o = {0};
	struct proto_exit res;
	pid_t grandchild;

	cr_assert_eq(proto_client_exec(&t.c, &req, agent_collect, &o, &res), 0);
	cr_assert_eq(res.kind, PROTO_TIMED_OUT);
	cr_assert_eq(res.value, SIGKILL);
	grandchild = atoi(o.out);
	cr_assert_gt(grandchild, 0);
	cr_assert(agent_wait_gone(grandchild), "sleep %d survived", grandchild);
	cr_assert_eq(proto_client_ping(&t.c), 0);
}

Test(agent, exit_is_reported_while_a_background_child_holds_stdout)
{
	struct agent_output o;
	struct proto_exit res;
	pid_t bg;

	cr_assert_eq(sh("sleep 1000 & echo $!", &o, &res), 0);
	cr_assert_eq(res.kind, PROTO_EXITED);
	bg = atoi(o.out);
	cr_assert_gt(bg, 0);
	cr_assert_eq(kill(bg, 0), 0, "the background sleep should still run");
	cr_assert_eq(proto_client_ping(&t.c), 0);
}

Test(agent, exec_gets_clean_env_plus_request_env_and_cwd)
{
	static const char *const argv[] = {
	    "echo $FOO; echo $HOME; echo $PATH; pwd; echo ${LEAK:-none}", NULL};
	static const char *const env[] = {"FOO=bar baz", NULL};
	struct proto_exec_req req = {.argv = argv,
				     .env = env,
				     .cwd = "sub/dir",
				     .flags = PROTO_EXEC_SHELL};
	struct agent_output o = {0};
	struct proto_exit res;
	char want[512];

	setenv("LEAK", "leaked", 1);
	cr_assert_eq(
	    proto_client_mkdir(&t.c, "sub/dir", 0755, PROTO_MKDIR_PARENTS), 0);
	cr_assert_eq(proto_client_exec(&t.c, &req, agent_collect, &o, &res), 0);
	snprintf(want, sizeof(want),
		 "bar baz\n/root\n/usr/sbin:/usr/bin:/sbin:/bin\n"
		 "%s/work/sub/dir\nnone\n",
		 t.root);
	cr_assert_str_eq(o.out, want);
}

Test(agent, missing_cwd_is_an_error_reply_not_an_exit_code)
{
	static const char *const argv[] = {"true", NULL};
	struct proto_exec_req req = {.argv = argv, .cwd = "nowhere"};
	struct proto_exit res;

	cr_assert_eq(proto_client_exec(&t.c, &req, NULL, NULL, &res), -ENOENT);
	cr_assert_eq(t.c.err_code, PROTO_E_NOT_FOUND);
	cr_assert(strstr(t.c.err_msg, "nowhere"), "%s", t.c.err_msg);
}

Test(agent, missing_program_is_an_error_reply)
{
	static const char *const argv[] = {"no-such-program-here", NULL};
	struct agent_output o;
	struct proto_exit res;

	cr_assert_eq(run(argv, 0, &o, &res), -ENOENT);
	cr_assert(strstr(t.c.err_msg, "no-such-program-here"));
	cr_assert_eq(proto_client_ping(&t.c), 0);
}

Test(agent, stdin_is_streamed_to_the_command)
{
	static const char *const argv[] = {"wc", "-c", NULL};
	size_t len = 3 * 1024 * 1024 + 17;
	char *data = malloc(len);
	struct proto_exec_req req = {
	    .argv = argv, .stdin_data = data, .stdin_len = len};
	struct agent_output o = {0};
	struct proto_exit res;

	for (size_t i = 0; i < len; i++)
		data[i] = i * 7;
	cr_assert_eq(proto_client_exec(&t.c, &req, agent_collect, &o, &res), 0);
	cr_assert_eq(res.kind, PROTO_EXITED);
	cr_assert_eq(atol(o.out), (long)len);
	free(data);
}

Test(agent, stdin_is_dev_null_unless_asked_for)
{
	struct agent_output o;
	struct proto_exit res;

	cr_assert_eq(sh("cat; echo done", &o, &res), 0);
	cr_assert_str_eq(o.out, "done\n");
}

static void count_output(void *arg, int stream, const void *p, size_t n)
{
	*(size_t *)arg += n;
}

Test(agent, cat_echoes_large_stdin_without_deadlock)
{
	static const char *const argv[] = {"cat", NULL};
	size_t len = 16 * 1024 * 1024, got = 0;
	char *data = malloc(len);
	struct proto_exec_req req = {
	    .argv = argv, .stdin_data = data, .stdin_len = len};
	struct proto_exit res;

	memset(data, 'x', len);
	cr_assert_eq(proto_client_exec(&t.c, &req, count_output, &got, &res),
		     0);
	cr_assert_eq(res.kind, PROTO_EXITED);
	cr_assert_eq(res.value, 0);
	cr_assert_eq(got, len);
	free(data);
}

/* A repeatable byte stream for large transfers. */
struct gen {
	uint64_t state;
	uint64_t left;
	uint64_t sum;
};

static uint64_t mix(uint64_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sum = (sum ^ p[i]) * 0x100000001b3ull;
	return sum;
}

static ssize_t gen_fill(void *arg, void *buf, size_t n)
{
	struct gen *g = arg;
	uint8_t *p = buf;

	n = MIN(n, g->left) & ~(size_t)7;
	for (size_t i = 0; i < n; i += 8) {
		g->state ^= g->state << 13;
		g->state ^= g->state >> 7;
		g->state ^= g->state << 17;
		memcpy(p + i, &g->state, 8);
	}
	g->left -= n;
	g->sum = mix(g->sum, buf, n);
	return n;
}

static int sum_sink(void *arg, const void *p, size_t n)
{
	uint64_t *sum = arg;

	*sum = mix(*sum, p, n);
	return 0;
}

Test(agent, large_file_round_trips_in_bounded_memory)
{
	uint64_t size = 64ull << 20, written = 0, nread = 0;
	struct gen g = {.state = 88172645463325252ull,
			.left = size,
			.sum = 1469598103934665603ull};
	uint64_t sum = 1469598103934665603ull;
	struct stat st;
	char path[256];

	cr_assert_eq(proto_client_write(&t.c, "big.bin", 0600, 0, gen_fill, &g,
					&written),
		     0);
	cr_assert_eq(written, size);
	host_path(path, sizeof(path), "work/big.bin");
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, size);
	cr_assert_eq(st.st_mode & 0777, 0600);

	cr_assert_eq(proto_client_read(&t.c, "/work/big.bin", 0, 0, sum_sink,
				       &sum, &nread),
		     0);
	cr_assert_eq(nread, size);
	cr_assert_eq(sum, g.sum);
	/* Queues are bounded: the agent never holds the file. */
	cr_assert_lt(agent_child_hwm_kib(&t), 32 * 1024, "peak RSS %ld KiB",
		     agent_child_hwm_kib(&t));
}

struct mem {
	const char *p;
	size_t left;
};

static ssize_t mem_fill(void *arg, void *buf, size_t n)
{
	struct mem *m = arg;

	n = MIN(n, m->left);
	memcpy(buf, m->p, n);
	m->p += n;
	m->left -= n;
	return n;
}

static int put_text(const char *path, const char *text, uint32_t flags)
{
	struct mem m = {text, strlen(text)};

	return proto_client_write(&t.c, path, 0, flags, mem_fill, &m, NULL);
}

static int str_sink(void *arg, const void *p, size_t n)
{
	strncat(arg, p, n);
	return 0;
}

Test(agent, read_honours_offset_and_length)
{
	char buf[64] = "";

	cr_assert_eq(put_text("f.txt", "0123456789", 0), 0);
	cr_assert_eq(
	    proto_client_read(&t.c, "f.txt", 3, 4, str_sink, buf, NULL), 0);
	cr_assert_str_eq(buf, "3456");
	buf[0] = '\0';
	cr_assert_eq(put_text("f.txt", "abc", PROTO_WRITE_APPEND), 0);
	cr_assert_eq(
	    proto_client_read(&t.c, "f.txt", 8, 0, str_sink, buf, NULL), 0);
	cr_assert_str_eq(buf, "89abc");
}

Test(agent, empty_file_round_trips)
{
	char buf[8] = "";
	uint64_t n = 1;

	cr_assert_eq(put_text("empty", "", 0), 0);
	cr_assert_eq(proto_client_read(&t.c, "empty", 0, 0, str_sink, buf, &n),
		     0);
	cr_assert_eq(n, 0);
}

Test(agent, write_can_create_parent_directories)
{
	struct proto_stat st;

	cr_assert_eq(put_text("a/b/c.txt", "x", 0), -ENOENT);
	cr_assert_eq(put_text("a/b/c.txt", "x", PROTO_WRITE_PARENTS), 0);
	cr_assert_eq(proto_client_stat(&t.c, "a/b", &st), 0);
	cr_assert_eq(st.kind, PROTO_KIND_DIR);
}

static void count_entry(void *arg, const char *name,
			const struct proto_stat *st)
{
	char *seen = arg;

	strcat(seen, name);
	strcat(seen, st->kind == PROTO_KIND_DIR ? "/ " : " ");
}

Test(agent, directory_operations_work_and_fail_clearly)
{
	struct proto_stat st;
	char seen[256] = "";

	cr_assert_eq(
	    proto_client_mkdir(&t.c, "d/e/f", 0700, PROTO_MKDIR_PARENTS), 0);
	cr_assert_eq(proto_client_mkdir(&t.c, "d", 0700, 0), -EEXIST);
	cr_assert_eq(t.c.err_code, PROTO_E_EXISTS);
	cr_assert_eq(put_text("d/file", "hello", 0), 0);

	cr_assert_eq(proto_client_stat(&t.c, "d/file", &st), 0);
	cr_assert_eq(st.kind, PROTO_KIND_FILE);
	cr_assert_eq(st.size, 5);
	cr_assert_eq(proto_client_stat(&t.c, "d/nope", &st), -ENOENT);
	cr_assert_eq(proto_client_exists(&t.c, "d/file"), 1);
	cr_assert_eq(proto_client_exists(&t.c, "d/nope"), 0);
	cr_assert_eq(proto_client_exists(&t.c, "d/file/x"), 0);

	cr_assert_eq(proto_client_list(&t.c, "d", count_entry, seen), 0);
	cr_assert(strstr(seen, "e/ ") && strstr(seen, "file "), "%s", seen);

	cr_assert_eq(proto_client_rename(&t.c, "d/file", "d/e/moved"), 0);
	cr_assert_eq(proto_client_exists(&t.c, "d/e/moved"), 1);
	cr_assert_eq(proto_client_remove(&t.c, "d", 0), -ENOTEMPTY);
	cr_assert_eq(t.c.err_code, PROTO_E_NOT_EMPTY);
	cr_assert_eq(proto_client_remove(&t.c, "d", PROTO_REMOVE_RECURSIVE), 0);
	cr_assert_eq(proto_client_exists(&t.c, "d"), 0);
	cr_assert_eq(proto_client_remove(&t.c, "/", PROTO_REMOVE_RECURSIVE),
		     -EINVAL);
}

Test(agent, file_errors_map_to_clear_codes)
{
	char buf[8] = "";

	cr_assert_eq(proto_client_mkdir(&t.c, "dir", 0, 0), 0);
	cr_assert_eq(proto_client_read(&t.c, "dir", 0, 0, str_sink, buf, NULL),
		     -EISDIR);
	cr_assert_eq(t.c.err_code, PROTO_E_IS_DIR);
	cr_assert_eq(put_text("dir", "x", 0), -EISDIR);
	cr_assert_eq(proto_client_read(&t.c, "gone", 0, 0, str_sink, buf, NULL),
		     -ENOENT);
	cr_assert_eq(put_text("f", "x", 0), 0);
	cr_assert_eq(put_text("f/g", "x", 0), -ENOTDIR);
	cr_assert_eq(t.c.err_code, PROTO_E_NOT_DIR);
}

Test(agent, fifos_are_refused_without_blocking)
{
	char path[256], buf[8] = "";

	host_path(path, sizeof(path), "work/fifo");
	cr_assert_eq(mkfifo(path, 0600), 0);
	cr_assert_eq(proto_client_read(&t.c, "fifo", 0, 0, str_sink, buf, NULL),
		     -EINVAL);
	cr_assert_eq(put_text("fifo", "x", 0), -EINVAL);
	cr_assert_eq(proto_client_ping(&t.c), 0);
}

Test(agent, failed_write_absorbs_its_chunks_and_end)
{
	struct proto_frame f;
	uint8_t frame[64];
	uint32_t id;

	cr_assert_eq(proto_client_mkdir(&t.c, "dir", 0, 0), 0);
	cr_assert_eq(put_text("dir", "some bytes", 0), -EISDIR);

	/* Nothing else may follow that write's one ERROR. */
	id = proto_client_new_id(&t.c);
	cr_assert_eq(
	    proto_client_send(&t.c, frame,
			      agent_frame(frame, PROTO_PING, 0, id, NULL, 0)),
	    0);
	cr_assert_eq(proto_client_recv(&t.c, &f), 0);
	cr_assert_eq(f.type, PROTO_PONG, "got %s", proto_type_name(f.type));
	cr_assert_eq(f.id, id);
}

Test(agent, deep_tree_is_removed)
{
	char path[4096] = "deep";

	for (int i = 0; i < 300; i++)
		strcat(path, i % 2 ? "/a" : "/b");
	cr_assert_eq(proto_client_mkdir(&t.c, path, 0, PROTO_MKDIR_PARENTS), 0);
	cr_assert_eq(proto_client_remove(&t.c, "deep", PROTO_REMOVE_RECURSIVE),
		     0);
	cr_assert_eq(proto_client_exists(&t.c, "deep"), 0);
}

static void check_confinement(void)
{
	char link[256], outside[256], buf[64] = "";
	FILE *f;

	/* A file just outside the root, and links that aim at it. */
	snprintf(outside, sizeof(outside), "%s.outside", t.root);
	f = fopen(outside, "w");
	cr_assert_not_null(f);
	fputs("secret", f);
	fclose(f);
	host_path(link, sizeof(link), "work/abs");
	cr_assert_eq(symlink(outside, link), 0);
	host_path(link, sizeof(link), "work/rel");
	cr_assert_eq(symlink("../../../../../../../../../tmp", link), 0);

	cr_assert_eq(proto_client_read(&t.c, "abs", 0, 0, str_sink, buf, NULL),
		     -ENOENT);
	cr_assert_eq(proto_client_exists(&t.c, outside), 0);
	cr_assert_eq(proto_client_exists(&t.c, "../../../../etc/passwd"), 0);
	cr_assert_eq(put_text("rel/escaped", "x", 0), -ENOENT);
	cr_assert_eq(proto_client_mkdir(&t.c, "/tmp", 0, 0), 0);
	cr_assert_eq(put_text("rel/inside", "x", 0), 0);
	host_path(link, sizeof(link), "tmp/inside");
	cr_assert_eq(access(link, F_OK), 0, "rel/.. did not stay in root");
	cr_assert_eq(proto_client_exists(&t.c, "/../../work/rel/inside"), 1);
	cr_assert_str_eq(buf, "");
	unlink(outside);
}

Test(agent, paths_cannot_escape_the_root)
{
	cr_assert(t.c.agent_caps & PROTO_CAP_OPENAT2);
	check_confinement();
}

static void start_walk(void)
{
	agent_child_start(&t, "VMPOOL_NO_OPENAT2=1");
}

Test(agent_walk, paths_cannot_escape_the_root_without_openat2,
     .init = start_walk, .fini = stop, .timeout = 60)
{
	cr_assert_not(t.c.agent_caps & PROTO_CAP_OPENAT2);
	check_confinement();
}

Test(agent_walk, walk_follows_links_inside_the_root, .init = start_walk,
     .fini = stop, .timeout = 60)
{
	char link[256], buf[64] = "";

	cr_assert_eq(put_text("real/file", "data", PROTO_WRITE_PARENTS), 0);
	host_path(link, sizeof(link), "work/ln");
	cr_assert_eq(symlink("/work/real", link), 0);
	cr_assert_eq(
	    proto_client_read(&t.c, "ln/file", 0, 0, str_sink, buf, NULL), 0);
	cr_assert_str_eq(buf, "data");
}

Test(agent, requests_overlap_on_one_stream)
{
	static const char *const argv[] = {"read x; echo slow $x", NULL};
	uint8_t frame[256];
	struct agent_output o;
	struct proto_exit res;
	struct proto_frame f;
	struct proto_msg m;
	uint32_t slow = proto_client_new_id(&t.c);

	proto_msg_begin(&m, frame, sizeof(frame), PROTO_EXEC, 0, slow);
	proto_put_u32(&m, PROTO_EXEC_SHELL | PROTO_EXEC_STDIN);
	proto_put_u64(&m, 0);
	proto_put_str(&m, "");
	proto_put_u32(&m, 1);
	proto_put_str(&m, argv[0]);
	proto_put_u32(&m, 0);
	cr_assert_eq(proto_client_send(&t.c, frame, proto_msg_end(&m)), 0);

	/* While the first command waits, others come and go. */
	cr_assert_eq(proto_client_ping(&t.c), 0);
	cr_assert_eq(sh("echo fast", &o, &res), 0);
	cr_assert_str_eq(o.out, "fast\n");
	cr_assert_eq(put_text("side", "x", 0), 0);

	cr_assert_eq(
	    proto_client_send(
		&t.c, frame,
		agent_frame(frame, PROTO_STDIN, PROTO_F_EOF, slow, "1\n", 2)),
	    0);
	agent_recv_id(&t, slow, &f);
	cr_assert_eq(f.type, PROTO_STDOUT);
	cr_assert_eq(memcmp(f.payload, "slow 1\n", 7), 0);
	agent_recv_id(&t, slow, &f);
	cr_assert_eq(f.type, PROTO_EXIT);
}

Test(agent, clean_removes_tenant_files_and_background_processes)
{
	struct agent_output o;
	struct proto_exit res;
	uint32_t killed = 0;
	uint64_t removed = 0;
	char path[256];
	pid_t bg;

	cr_assert_eq(put_text("left/behind", "x", PROTO_WRITE_PARENTS), 0);
	cr_assert_eq(put_text("/tmp/junk", "x", PROTO_WRITE_PARENTS), 0);
	cr_assert_eq(sh("sleep 1000 >/dev/null 2>&1 & echo $!", &o, &res), 0);
	bg = atoi(o.out);
	cr_assert_gt(bg, 0);
	cr_assert_eq(kill(bg, 0), 0);

	cr_assert_eq(proto_client_clean(&t.c, &killed, &removed), 0);
	cr_assert_geq(killed, 1);
	cr_assert_geq(removed, 3);
	cr_assert(agent_wait_gone(bg), "background sleep %d survived", bg);
	cr_assert_eq(proto_client_exists(&t.c, "left"), 0);
	cr_assert_eq(proto_client_exists(&t.c, "/tmp/junk"), 0);
	host_path(path, sizeof(path), "work");
	cr_assert_eq(access(path, F_OK), 0, "work dir must stay");
	cr_assert_eq(proto_client_ping(&t.c), 0);
}

Test(agent, kill_signals_a_running_command)
{
	static const char *const argv[] = {"sleep", "1000", NULL};
	uint8_t frame[256];
	struct proto_frame f;
	struct proto_msg m;
	uint32_t id = proto_client_new_id(&t.c), sig = SIGTERM;
	struct proto_cur c;

	proto_msg_begin(&m, frame, sizeof(frame), PROTO_EXEC, 0, id);
	proto_put_u32(&m, 0);
	proto_put_u64(&m, 0);
	proto_put_str(&m, "");
	proto_put_u32(&m, 2);
	proto_put_str(&m, argv[0]);
	proto_put_str(&m, argv[1]);
	proto_put_u32(&m, 0);
	cr_assert_eq(proto_client_send(&t.c, frame, proto_msg_end(&m)), 0);
	cr_assert_eq(proto_client_ping(&t.c), 0);

	cr_assert_eq(
	    proto_client_send(&t.c, frame,
			      agent_frame(frame, PROTO_KILL, 0, id, &sig, 4)),
	    0);
	agent_recv_id(&t, id, &f);
	cr_assert_eq(f.type, PROTO_EXIT);
	proto_cur_init(&c, &f);
	cr_assert_eq(proto_get_u8(&c), PROTO_SIGNALED);
	cr_assert_eq(proto_get_u32(&c), SIGTERM);
}

Test(agent, reseed_adds_entropy_or_says_why_not)
{
	uint8_t seed[64];
	int r;

	/* Real randomness: this credits the host's pool when run as root. */
	cr_assert_eq(getrandom(seed, sizeof(seed), 0), (ssize_t)sizeof(seed));
	r = proto_client_reseed(&t.c, seed, sizeof(seed));
	if (geteuid() == 0)
		cr_assert_eq(r, 0, "%s", t.c.err_msg);
	else
		cr_assert_eq(r, -EPERM);
	cr_assert_eq(proto_client_reseed(&t.c, seed, 0), -EBADMSG);
}

Test(agent, shutdown_answers_then_exits)
{
	int st;

	cr_assert_eq(proto_client_shutdown(&t.c), 0);
	cr_assert_eq(waitpid(t.pid, &st, 0), t.pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	cr_assert_not_null(d);
	while ((e = readdir(d)))
		n++;
	closedir(d);
	return n;
}

Test(agent, many_requests_leak_no_descriptors)
{
	struct agent_output o;
	struct proto_exit res;
	char buf[8] = "";
	int before;

	cr_assert_eq(sh("true", &o, &res), 0);
	before = count_fds(t.pid);
	for (int i = 0; i < 200; i++) {
		cr_assert_eq(sh(i % 2 ? "true" : "echo x; exit 1", &o, &res),
			     0);
		cr_assert_eq(put_text("f", "x", 0), 0);
		cr_assert_eq(
		    proto_client_read(&t.c, "f", 0, 0, str_sink, buf, NULL), 0);
		buf[0] = '\0';
		cr_assert_eq(put_text("dir", "x", 0), 0);
		cr_assert_eq(
		    proto_client_stat(&t.c, "nope", &(struct proto_stat){0}),
		    -ENOENT);
		cr_assert_eq(proto_client_remove(&t.c, "dir", 0), 0);
	}
	cr_assert_eq(count_fds(t.pid), before);
}
