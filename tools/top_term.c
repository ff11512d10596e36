/* vmpool-top: the terminal of the live view, with plain ANSI escapes. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "common/util.h"
#include "tools/top.h"

#define ENTER_SCREEN "\033[?1049h\033[?25l" /* alternate screen, no cursor */
#define LEAVE_SCREEN "\033[?25h\033[?1049l"
#define HOME	     "\033[H"
#define CLEAR_EOL    "\033[K"
#define CLEAR_EOS    "\033[J"

static struct termios saved;
static volatile sig_atomic_t entered;
static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t suspend_asked;

static const int end_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

/* Async-signal-safe: tcsetattr and write only. */
static void restore(void)
{
	if (!entered)
		return;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
	if (write(STDOUT_FILENO, LEAVE_SCREEN, sizeof(LEAVE_SCREEN) - 1) < 0)
		return;
}

static int make_raw(void)
{
	struct termios t = saved;

	t.c_lflag &= ~(ICANON | ECHO);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) < 0)
		return -errno;

	if (write_full(STDOUT_FILENO, ENTER_SCREEN, sizeof(ENTER_SCREEN) - 1))
		return -EIO;
	entered = 1;
	return 0;
}

static void on_end(int sig)
{
	restore();
	entered = 0;
	stop_signal = sig;
}

static void on_suspend(int sig)
{
	suspend_asked = 1;
}

/* Only wakes poll: the loop redraws. */
static void on_wake(int sig)
{
}

static void handle(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL); /* no SA_RESTART: poll must return */
}

int top_term_enter(void)
{
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return -ENOTTY;
	if (tcgetattr(STDIN_FILENO, &saved) < 0)
		return -errno;

	for (size_t i = 0; i < ARRAY_SIZE(end_signals); i++)
		handle(end_signals[i], on_end);
	handle(SIGTSTP, on_suspend);
	handle(SIGWINCH, on_wake);
	handle(SIGCONT, on_wake);

	return make_raw();
}

void top_term_leave(void)
{
	restore();
	entered = 0;
}

bool top_term_stopped(void)
{
	return stop_signal != 0;
}

/* Ctrl-Z: give the terminal back, stop, and take it again on SIGCONT. */
static void suspend(void)
{
	suspend_asked = 0;
	top_term_leave();
	raise(SIGSTOP);
	make_raw();
}

int top_term_key(int timeout_ms)
{
	struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
	unsigned char c;
	ssize_t n;
	int rc;

	rc = poll(&pfd, 1, timeout_ms);
	if (suspend_asked)
		suspend();
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	if (rc == 0)
		return 0;

	n = read(STDIN_FILENO, &c, 1);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	return n == 0 ? -EPIPE : c;
}

void top_term_size(int *rows, int *cols)
{
	struct winsize ws;

	*rows = 24;
	*cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row &&
	    ws.ws_col) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

/* One line of the frame, cut to the width, then cleared to its end. */
static void draw_line(FILE *f, const char *line, size_t len, int cols)
{
	fwrite(line, 1, MIN(len, (size_t)cols), f);
	fputs(CLEAR_EOL, f);
}

void top_term_draw(const char *frame, size_t len, int rows, int cols)
{
	const char *p = frame, *end = frame + len;
	int row = 0;

	fputs(HOME, stdout);
	while (p < end && row < rows) {
		const char *nl = memchr(p, '\n', end - p);
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (row > 0)
			fputs("\r\n", stdout);
		draw_line(stdout, p, n, cols);
		row++;
		p += n + (nl ? 1 : 0);
	}
	fputs(CLEAR_EOS, stdout);
	fflush(stdout);
}
