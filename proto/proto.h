/* The agent protocol: frame layout, message types, codec and frame reader. */
#ifndef VMPOOL_PROTO_H
#define VMPOOL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * A byte stream of frames. Every frame is a 12-byte little-endian header
 * followed by `len` bytes of payload:
 *
 *	u32 len    payload bytes, at most PROTO_MAX_PAYLOAD
 *	u16 type   enum proto_type
 *	u16 flags  PROTO_F_*
 *	u32 id     request id chosen by the host; 0 only for the agent's HELLO
 *
 * Payload fields are packed little-endian integers and strings. A string
 * is a u32 byte count, the bytes (no NUL among them), then one NUL byte,
 * so a parser can hand out pointers into the frame without copying.
 *
 * Every request gets exactly one final reply (OK or a typed reply, or
 * ERROR), carrying the request's id; streamed replies (STDOUT, STDERR,
 * READ_DATA, DIR_ENTRIES) come before it. Requests may overlap: the host
 * sends several with distinct ids and the agent answers each as it can.
 * A frame the agent cannot accept (unknown type, payload over the limit
 * or malformed, id unknown, in use or in the wrong state) gets an ERROR
 * under its id, and the stream goes on.
 */

#define PROTO_VERSION	  1
#define PROTO_HDR_SIZE	  12u
#define PROTO_MAX_PAYLOAD (256u * 1024)
#define PROTO_MAX_FRAME	  (PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD)
/* Data chunks (stdin, stdout, file data) carry at most this much. */
#define PROTO_CHUNK (128u * 1024)
/* Requests that stay open at once (exec, write, read) per agent. */
#define PROTO_MAX_INFLIGHT 64
#define PROTO_MAX_ARGS	   4096
#define PROTO_MAX_PATH	   4096
#define PROTO_MAX_ENTROPY  512

enum proto_type {
	/* Host to agent. HELLO also flows agent to host, unsolicited. */
	PROTO_HELLO = 1,
	PROTO_PING = 2,
	PROTO_EXEC = 3,
	PROTO_STDIN = 4,
	PROTO_WRITE_OPEN = 5,
	PROTO_WRITE_CHUNK = 6,
	PROTO_WRITE_END = 7,
	PROTO_READ_OPEN = 8,
	PROTO_LIST = 9,
	PROTO_STAT = 10,
	PROTO_EXISTS = 11,
	PROTO_MKDIR = 12,
	PROTO_RENAME = 13,
	PROTO_REMOVE = 14,
	PROTO_CLEAN = 15,
	PROTO_RESEED = 16,
	PROTO_SHUTDOWN = 17,
	PROTO_KILL = 18,

	/* Agent to host. */
	PROTO_OK = 0x80,
	PROTO_ERROR = 0x81,
	PROTO_PONG = 0x82,
	PROTO_STDOUT = 0x83,
	PROTO_STDERR = 0x84,
	PROTO_EXIT = 0x85,
	PROTO_READ_DATA = 0x86,
	PROTO_READ_END = 0x87,
	PROTO_STAT_REPLY = 0x88,
	PROTO_DIR_ENTRIES = 0x89,
	PROTO_EXISTS_REPLY = 0x8a,
};

/* Header flags. EOF on STDIN closes the command's stdin after the data. */
#define PROTO_F_EOF 0x0001u

/*
 * Payloads, in wire order ("str" as described above):
 *
 * HELLO	u32 version, u64 caps, str text
 *		agent: text names the agent; host (optional answer, once,
 *		gets OK): text is a sandbox root for file paths, found
 *		inside the current one, or empty
 * PING		(none)				-> PONG (none)
 * EXEC		u32 flags (PROTO_EXEC_*), u64 timeout_ns (0: none),
 *		str cwd (empty: work dir), u32 argc, argc x str,
 *		u32 envc, envc x str ("NAME=value"), added to a clean
 *		PATH=/usr/sbin:/usr/bin:/sbin:/bin and HOME=/root
 *		-> STDOUT / STDERR (raw bytes)..., then EXIT or ERROR
 * STDIN	raw bytes; flag EOF on the last	(no reply unless wrong)
 * KILL		u32 signal, to the group of the exec with this id
 *		(no reply unless wrong: the EXIT shows its effect)
 * WRITE_OPEN	u32 mode (0: 0644), u32 flags (PROTO_WRITE_*), str path
 * WRITE_CHUNK	raw bytes			(no reply)
 * WRITE_END	(none)				-> OK u64 bytes, or ERROR
 *		A failure anywhere is reported once, as soon as it happens;
 *		later chunks of that id are dropped and END gets no reply.
 * READ_OPEN	u64 offset, u64 length (0: to the end), str path
 *		-> READ_DATA (raw bytes)..., then READ_END u64 bytes, or ERROR
 * LIST		str path	-> DIR_ENTRIES (entries)..., then OK u64 count
 *		entry: u8 kind, u32 mode, u64 size, s64 mtime_ns, str name
 * STAT		str path	-> STAT_REPLY u8 kind, u32 mode, u64 size,
 *				   s64 mtime_ns (the link itself, not followed)
 * EXISTS	str path	-> EXISTS_REPLY u8 (0 or 1)
 * MKDIR	u32 mode (0: 0755), u32 flags (PROTO_MKDIR_PARENTS), str path
 *		-> OK
 * RENAME	str from, str to				  -> OK
 * REMOVE	u32 flags (PROTO_REMOVE_RECURSIVE), str path	  -> OK
 * CLEAN	(none)		-> OK u32 groups killed, u64 entries removed
 * RESEED	raw entropy bytes (1..PROTO_MAX_ENTROPY)	  -> OK
 * SHUTDOWN	(none)		-> OK, then the agent powers off or exits
 * ERROR	u32 code (enum proto_err), str message
 * EXIT		u8 kind (enum proto_exit_kind), s32 value (exit code or
 *		signal number), u64 duration_ns
 *
 * Relative paths are relative to the agent's work dir; absolute paths
 * and symlinks are resolved inside the sandbox root when there is one.
 */

#define PROTO_CAP_EXEC	 (1ull << 0)
#define PROTO_CAP_FILES	 (1ull << 1)
#define PROTO_CAP_CLEAN	 (1ull << 2)
#define PROTO_CAP_RESEED (1ull << 3)
/* Paths are confined with openat2(RESOLVE_IN_ROOT), not a userspace walk. */
#define PROTO_CAP_OPENAT2 (1ull << 4)

#define PROTO_EXEC_STDIN 0x1u /* STDIN frames follow; else /dev/null */
/* argv[0] is a line for /bin/sh -c; further args become $0, $1... */
#define PROTO_EXEC_SHELL 0x2u

#define PROTO_WRITE_APPEND  0x1u
#define PROTO_WRITE_PARENTS 0x2u /* create missing parent directories */

#define PROTO_MKDIR_PARENTS    0x1u
#define PROTO_REMOVE_RECURSIVE 0x1u

enum proto_exit_kind {
	PROTO_EXITED = 0,
	PROTO_SIGNALED = 1,
	PROTO_TIMED_OUT = 2,
};

enum proto_kind {
	PROTO_KIND_OTHER = 0,
	PROTO_KIND_FILE = 1,
	PROTO_KIND_DIR = 2,
	PROTO_KIND_SYMLINK = 3,
};

/* Error codes on the wire; stable, never renumbered. */
enum proto_err {
	PROTO_E_OK = 0,
	PROTO_E_INTERNAL = 1,
	PROTO_E_NOT_FOUND = 2,
	PROTO_E_PERMISSION = 3,
	PROTO_E_NO_SPACE = 4,
	PROTO_E_IS_DIR = 5,
	PROTO_E_NOT_DIR = 6,
	PROTO_E_EXISTS = 7,
	PROTO_E_INVALID = 8,
	PROTO_E_TOO_LARGE = 9,
	PROTO_E_TIMED_OUT = 10,
	PROTO_E_BUSY = 11,
	PROTO_E_NOT_EMPTY = 12,
	PROTO_E_LOOP = 13,
	PROTO_E_IO = 14,
	PROTO_E_NO_MEMORY = 15,
	PROTO_E_CROSS_DEVICE = 16,
	PROTO_E_UNSUPPORTED = 17,
	/* Protocol violations. */
	PROTO_E_BAD_TYPE = 32,
	PROTO_E_BAD_LENGTH = 33,
	PROTO_E_BAD_PAYLOAD = 34,
	PROTO_E_UNKNOWN_ID = 35,
	PROTO_E_DUPLICATE_ID = 36,
	PROTO_E_WRONG_ORDER = 37,
	PROTO_E_VERSION = 38,
};

/* Map an errno value (positive) to a wire code, and back. */
enum proto_err proto_err_from_errno(int err);
int proto_err_to_errno(uint32_t code);
/* A short stable name for a wire code ("not found"). */
const char *proto_err_name(uint32_t code);
/* A name for a frame type ("EXEC"), or "?" */
const char *proto_type_name(uint16_t type);

struct proto_exit {
	uint8_t kind; /* enum proto_exit_kind */
	int32_t value;
	uint64_t duration_ns;
};

struct proto_stat {
	uint8_t kind; /* enum proto_kind */
	uint32_t mode;
	uint64_t size;
	int64_t mtime_ns;
};

struct proto_exec_req {
	const char *const *argv; /* NULL-terminated */
	const char *const *env;	 /* NULL-terminated "NAME=value", or NULL */
	const char *cwd;	 /* NULL: the work dir */
	uint64_t timeout_ns;	 /* 0: none */
	uint32_t flags;		 /* PROTO_EXEC_*; STDIN added for stdin_data */
	const void *stdin_data;	 /* sent whole, then EOF; NULL: /dev/null */
	size_t stdin_len;
};

/* A decoded frame; payload points into the reader's buffer. */
struct proto_frame {
	uint32_t len;
	uint16_t type;
	uint16_t flags;
	uint32_t id;
	const uint8_t *payload;
};

void proto_put_header(uint8_t *dst, uint32_t len, uint16_t type, uint16_t flags,
		      uint32_t id);
void proto_get_header(const uint8_t *src, struct proto_frame *f);

/*
 * Builds one frame into a caller-supplied buffer. Overflow is sticky:
 * proto_msg_end then fails with -EMSGSIZE, so callers check once.
 */
struct proto_msg {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool overflow;
};

void proto_msg_begin(struct proto_msg *m, void *buf, size_t cap, uint16_t type,
		     uint16_t flags, uint32_t id);
void proto_put_u8(struct proto_msg *m, uint8_t v);
void proto_put_u32(struct proto_msg *m, uint32_t v);
void proto_put_u64(struct proto_msg *m, uint64_t v);
void proto_put_bytes(struct proto_msg *m, const void *p, size_t n);
/* A NUL-terminated C string, as a wire string. */
void proto_put_str(struct proto_msg *m, const char *s);
/* Room left for raw bytes, and a pointer to it (fill, then proto_msg_add). */
uint8_t *proto_msg_tail(struct proto_msg *m, size_t *room);
void proto_msg_add(struct proto_msg *m, size_t n);
/* Patch the header's length; the frame's total size, or -EMSGSIZE. */
long proto_msg_end(struct proto_msg *m);

/*
 * Reads fields from a received payload. Running past the end is sticky
 * too: every later get returns zero/NULL and proto_cur_done reports it.
 */
struct proto_cur {
	const uint8_t *p;
	size_t left;
	bool bad;
};

void proto_cur_init(struct proto_cur *c, const struct proto_frame *f);
uint8_t proto_get_u8(struct proto_cur *c);
uint32_t proto_get_u32(struct proto_cur *c);
uint64_t proto_get_u64(struct proto_cur *c);
/* A wire string: NUL-terminated, no inner NUL, at most max bytes. */
const char *proto_get_str(struct proto_cur *c, size_t max);
/* The rest of the payload. */
const uint8_t *proto_get_rest(struct proto_cur *c, size_t *n);
/* 0 when every field was there and nothing is left over, else -EBADMSG. */
int proto_cur_done(const struct proto_cur *c);

/*
 * Reassembles frames from a byte stream fed in arbitrary pieces: write
 * into proto_reader_space, commit what arrived, then pull frames with
 * proto_reader_next until it returns 0. A frame stays valid until the
 * next call to proto_reader_space.
 */
struct proto_reader {
	uint8_t *buf;
	size_t cap;
	size_t start;
	size_t end;
	uint64_t skip; /* payload bytes of an oversized frame still to drop */
};

int proto_reader_init(struct proto_reader *r);
void proto_reader_free(struct proto_reader *r);
/* Where the next bytes go, and how many fit (always > 0). */
uint8_t *proto_reader_space(struct proto_reader *r, size_t *room);
void proto_reader_commit(struct proto_reader *r, size_t n);
/* Copying form of space + commit; returns bytes taken (may be < n). */
size_t proto_reader_feed(struct proto_reader *r, const void *p, size_t n);
/*
 * 1 and a frame, 0 when more bytes are needed, or -EMSGSIZE for a header
 * announcing more than PROTO_MAX_PAYLOAD: `f` then holds that header and
 * the reader drops its payload as it arrives, so the stream stays in
 * step. A host talking to an untrusted guest treats that as fatal.
 */
int proto_reader_next(struct proto_reader *r, struct proto_frame *f);
/* Bytes buffered but not yet returned as frames. */
size_t proto_reader_pending(const struct proto_reader *r);

/*
 * Builders: one request frame into buf (at most cap bytes). Each returns
 * the frame's size, or -EMSGSIZE when it does not fit a frame.
 */
long proto_build_empty(void *buf, size_t cap, uint16_t type, uint32_t id);
/* ERROR with a code and a message. */
long proto_build_error(void *buf, size_t cap, uint32_t id, uint32_t code,
		       const char *msg);
/* Raw payload: STDIN (flags PROTO_F_EOF), WRITE_CHUNK, RESEED. */
long proto_build_data(void *buf, size_t cap, uint16_t type, uint16_t flags,
		      uint32_t id, const void *p, size_t n);
long proto_build_hello(void *buf, size_t cap, uint32_t id, uint64_t caps,
		       const char *text);
long proto_build_exec(void *buf, size_t cap, uint32_t id,
		      const struct proto_exec_req *req);
long proto_build_kill(void *buf, size_t cap, uint32_t id, uint32_t sig);
/* LIST, STAT, EXISTS. */
long proto_build_path(void *buf, size_t cap, uint16_t type, uint32_t id,
		      const char *path);
long proto_build_write_open(void *buf, size_t cap, uint32_t id,
			    const char *path, uint32_t mode, uint32_t flags);
long proto_build_read_open(void *buf, size_t cap, uint32_t id, const char *path,
			   uint64_t offset, uint64_t length);
long proto_build_mkdir(void *buf, size_t cap, uint32_t id, const char *path,
		       uint32_t mode, uint32_t flags);
long proto_build_rename(void *buf, size_t cap, uint32_t id, const char *from,
			const char *to);
long proto_build_remove(void *buf, size_t cap, uint32_t id, const char *path,
			uint32_t flags);

/*
 * Parsers for the agent's frames: 0, or -EBADMSG when the payload does
 * not have exactly the expected shape. Strings point into the frame.
 */
int proto_parse_hello(const struct proto_frame *f, uint32_t *version,
		      uint64_t *caps, const char **text);
int proto_parse_error(const struct proto_frame *f, uint32_t *code,
		      const char **msg);
int proto_parse_exit(const struct proto_frame *f, struct proto_exit *e);
int proto_parse_stat(const struct proto_frame *f, struct proto_stat *st);
/* OK with a count (WRITE_END, LIST), READ_END; empty OK gives 0. */
int proto_parse_u64(const struct proto_frame *f, uint64_t *v);
int proto_parse_clean(const struct proto_frame *f, uint32_t *killed,
		      uint64_t *removed);
int proto_parse_exists(const struct proto_frame *f, bool *yes);
/* The next DIR_ENTRIES entry: 1, 0 at the end, or -EBADMSG. */
int proto_next_entry(struct proto_cur *c, struct proto_stat *st,
		     const char **name);
/*
 * Check any frame the agent sent: a known agent-to-host type whose
 * payload has that type's shape. A host relaying an untrusted guest's
 * frames uses this before acting on them; 0 or -EBADMSG.
 */
int proto_check_reply(const struct proto_frame *f);

#endif
