/* A runaway guest task, uploaded by vmpool-chaos and the kvm agent suite:
 * after a pause it takes the only CPU at real-time priority, so the agent
 * (PID 1) stops answering while the vCPU stays busy; for good, or for the
 * milliseconds given as its one argument. */
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* The kernel keeps 5% of each second for other tasks unless told not
 * to; a hang must be a hang. */
static void allow_full_rt(void)
{
	int fd = open("/proc/sys/kernel/sched_rt_runtime_us", O_WRONLY);

	if (fd < 0)
		_exit(2);
	if (write(fd, "-1", 2) != 2)
		_exit(3);
	close(fd);
}

static unsigned long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	struct sched_param p = {.sched_priority = 99};
	unsigned long long end = 0;

	allow_full_rt();

	/* Leave the host time to see the command that started us end. */
	sleep(1);

	if (argc > 1)
		end = now_ms() + strtoull(argv[1], NULL, 10);
	if (sched_setscheduler(0, SCHED_FIFO, &p) < 0)
		return 4;
	while (!end || now_ms() < end)
		__asm__ volatile("" ::: "memory");
	return 0;
}
