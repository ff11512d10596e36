/* /init for the VMM's boot tests: does what `vmtest=` on the kernel
 * command line says (the kernel hands such words to init's environment). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define HVC_MAJOR 229

static void say(const char *s)
{
	if (write(STDOUT_FILENO, s, strlen(s)) < 0)
		_exit(2);
}

/* Say HELLO on the virtio console (hvc0), then answer one line from the
 * host with "READY <line>": both directions and the device interrupt. */
static void hvc_echo(void)
{
	char line[64] = "READY ";
	size_t at = strlen(line);
	int fd;

	mknod("/dev/hvc0", S_IFCHR | 0600, makedev(HVC_MAJOR, 0));
	fd = open("/dev/hvc0", O_RDWR | O_NOCTTY);
	if (fd < 0 || write(fd, "HELLO\n", 6) != 6) {
		say("vmtest: no /dev/hvc0\n");
		return;
	}
	while (at < sizeof(line) - 1 && read(fd, &line[at], 1) == 1)
		if (line[at++] == '\n')
			break;
	if (write(fd, line, at) != (ssize_t)at)
		say("vmtest: hvc0 write failed\n");
	close(fd);
}

int main(void)
{
	const char *mode = getenv("vmtest");

	if (!mode)
		mode = "ready";
	say("vmtest: init running\n");

	/* Exiting PID 1 makes the kernel panic. */
	if (!strcmp(mode, "exit"))
		return 1;
	if (!strcmp(mode, "spin")) {
		say("vmtest: spinning\n");
		for (;;)
			;
	}
	if (!strcmp(mode, "hvc"))
		hvc_echo();
	say("vmtest: READY\n");
	reboot(RB_AUTOBOOT);
	return 0;
}
