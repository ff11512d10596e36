/* /init for the VMM's boot tests: does what `vmtest=` on the kernel
 * command line says (the kernel hands such words to init's environment). */
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <unistd.h>

static void say(const char *s)
{
	if (write(STDOUT_FILENO, s, strlen(s)) < 0)
		_exit(2);
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
	say("vmtest: READY\n");
	reboot(RB_AUTOBOOT);
	return 0;
}
